//! An embedded test ensemble: N peers in-process on loopback, each with an in-memory
//! database and disk ([`MemReplica`]); find the leader, write, kill / restart / isolate a
//! server, heal.
//!
//! Each peer runs in one small owner task ([`PeerHandle`]) holding the [`QuorumPeer`], its
//! [`QuorumIo`] and its replica, as a member's node task does with the server core.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::net::TcpListener;

use super::{txn_list_snapshot, txn_payload};
use crate::host::quorum::driver::{
    is_sync_request, IsolationSwitch, LogAppender, PeerAddrs, PeerStatus, PendingSnapshot, QuorumIo,
};
use crate::zab::broadcast::leader::ProposeError;
use crate::zab::broadcast::{DiskState, Proposal};
use crate::zab::{Action, LearnerType, QuorumConfig, QuorumPeer, QuorumServer, Sid, Zxid};
use tokio::sync::{mpsc, oneshot, watch};

#[derive(Debug, Default)]
struct MemDisk {
    accepted: i64,
    current: i64,
    log: Vec<Proposal>,
    applied: Vec<Proposal>,
    snapshots_installed: usize,
    /// Log appends (one per group commit).
    syncs: usize,
    /// How long each append takes (standing in for an fsync).
    sync_delay: Duration,
    /// Bumped by every restart: appends of an earlier run's disk thread are dropped (a
    /// crashed process's unsynced writes never happened).
    incarnation: u64,
}

impl MemDisk {
    fn append(&mut self, txns: &[Proposal]) {
        self.log.extend_from_slice(txns);
        self.syncs += 1;
    }
}

/// The disk thread's side of a [`MemReplica`].
struct MemAppender {
    replica: MemReplica,
    incarnation: u64,
}

impl LogAppender for MemAppender {
    fn append(&mut self, txns: &[Proposal]) -> bool {
        let delay = self.replica.with(|m| m.sync_delay);
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        self.replica.with(|m| {
            let current = m.incarnation == self.incarnation;
            if current {
                m.append(txns);
            }
            current
        })
    }
}

/// A database that is the list of applied txns, and a disk that is a list of logged txns;
/// both survive a kill so a restart finds them.
#[derive(Debug, Clone, Default)]
pub struct MemReplica(Arc<Mutex<MemDisk>>);

impl MemReplica {
    fn with<T>(&self, f: impl FnOnce(&mut MemDisk) -> T) -> T {
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g)
    }

    /// The applied txns.
    pub fn applied(&self) -> Vec<Proposal> {
        self.with(|m| m.applied.clone())
    }

    /// Zxid of the last applied txn (0 if none).
    pub fn last_applied(&self) -> Zxid {
        self.with(|m| m.applied.last().map(|p| p.zxid).unwrap_or(0))
    }

    /// How many snapshots a leader sent us (SNAP syncs).
    pub fn snapshots_installed(&self) -> usize {
        self.with(|m| m.snapshots_installed)
    }

    /// Number of logged txns.
    pub fn logged(&self) -> usize {
        self.with(|m| m.log.len())
    }

    /// Number of log appends so far (each one write + sync of a whole batch).
    pub fn syncs(&self) -> usize {
        self.with(|m| m.syncs)
    }

    /// Makes every later append take `delay`, like a slow fsync.
    pub fn set_sync_delay(&self, delay: Duration) {
        self.with(|m| m.sync_delay = delay);
    }

    /// What a restart finds on disk; the database is rebuilt by replaying the log.
    pub fn restart(&self) -> DiskState {
        self.with(|m| {
            m.incarnation += 1;
            m.applied = m.log.clone();
            DiskState {
                accepted_epoch: m.accepted,
                current_epoch: m.current,
                last_zxid: m.log.last().map(|p| p.zxid).unwrap_or(0),
                recent: m.log.clone(),
            }
        })
    }
}

impl MemReplica {
    fn appender(&self) -> Box<dyn LogAppender> {
        Box::new(MemAppender {
            replica: self.clone(),
            incarnation: self.with(|m| m.incarnation),
        })
    }
    fn apply(&self, p: &Proposal) {
        self.with(|m| m.applied.push(p.clone()));
    }
    fn snapshot(&self) -> PendingSnapshot {
        let (tx, rx) = oneshot::channel();
        let _ = tx.send(vec![self.with(|m| txn_list_snapshot::encode(&m.applied))]);
        rx
    }
    fn install_snapshot(&self, data: Bytes) {
        let txns = txn_list_snapshot::decode(data);
        self.with(|m| {
            m.log = txns.clone();
            m.applied = txns;
            m.snapshots_installed += 1;
        });
    }
    fn truncate(&self, zxid: Zxid) {
        self.with(|m| {
            m.log.retain(|p| p.zxid <= zxid);
            m.applied.retain(|p| p.zxid <= zxid);
        });
    }
    fn read_log(&self, from: Zxid, to: Zxid) -> Option<Vec<Proposal>> {
        self.with(|m| {
            let txns: Vec<Proposal> = m
                .log
                .iter()
                .filter(|p| p.zxid >= from && p.zxid <= to)
                .cloned()
                .collect();
            (txns.first().map(|p| p.zxid) == Some(from)).then_some(txns)
        })
    }
}

/// A command to a peer's owner task.
type Propose = (Bytes, oneshot::Sender<Result<Zxid, ProposeError>>);

/// A running test peer: its owner task, proposals into it, its status out.
pub struct PeerHandle {
    proposals: mpsc::UnboundedSender<Propose>,
    isolation: IsolationSwitch,
    status: watch::Receiver<PeerStatus>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for PeerHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl PeerHandle {
    /// Starts a peer on already-bound listeners over `replica`, restarted from `disk`.
    pub fn spawn(
        cfg: QuorumConfig,
        disk: DiskState,
        replica: MemReplica,
        election: TcpListener,
        quorum: TcpListener,
        addrs: PeerAddrs,
    ) -> PeerHandle {
        let io = QuorumIo::start(&cfg, || replica.appender(), election, quorum, addrs);
        let (peer, first) = QuorumPeer::new(cfg, disk, io.now());
        let (proposals, rx) = mpsc::unbounded_channel();
        let (status_tx, status) = watch::channel(PeerStatus {
            state: crate::zab::PeerState::Looking,
            leader: None,
            serving: false,
        });
        let isolation = io.isolation_switch();
        let owner = PeerTask {
            peer,
            io,
            replica,
            status: status_tx,
        };
        let task = tokio::spawn(owner.run(first, rx));
        PeerHandle {
            proposals,
            isolation,
            status,
            task,
        }
    }

    /// The latest status.
    pub fn status(&self) -> PeerStatus {
        *self.status.borrow()
    }

    /// Proposes a txn carrying `payload` (a `SetData` txn for the zxid it gets, see
    /// [`txn_payload::set_data`]; leader only); resolves once it is proposed.
    pub async fn propose(&self, payload: Bytes) -> Result<Zxid, ProposeError> {
        let (tx, rx) = oneshot::channel();
        if self.proposals.send((payload, tx)).is_err() {
            return Err(ProposeError::NotEstablished);
        }
        rx.await.unwrap_or(Err(ProposeError::NotEstablished))
    }

    /// Cuts (or restores) all of this peer's traffic, both ways.
    pub fn isolate(&self, on: bool) {
        self.isolation.set(on);
    }

    /// Stops the peer at once (like a crash: connections drop, nothing is flushed).
    pub fn kill(self) {
        self.task.abort();
    }
}

/// The owner of one test peer: the peer, its I/O and its replica.
struct PeerTask {
    peer: QuorumPeer,
    io: QuorumIo,
    replica: MemReplica,
    status: watch::Sender<PeerStatus>,
}

impl PeerTask {
    async fn run(mut self, first: Vec<Action>, mut proposals: mpsc::UnboundedReceiver<Propose>) {
        self.perform(first);
        loop {
            let actions = tokio::select! {
                ev = self.io.next() => match ev {
                    Some(ev) => self.io.handle(&mut self.peer, ev),
                    None => return,
                },
                p = proposals.recv() => match p {
                    Some((payload, reply)) => {
                        // A real txn for the zxid it gets: learners decode what they log.
                        let now = self.io.now();
                        let (r, out) = match self.peer.next_zxid() {
                            Some(z) => self.peer.propose_txn(now, z, txn_payload::set_data(z, &payload)),
                            // Refused: the peer says why (not leading, counter used up).
                            None => self.peer.propose(now, payload),
                        };
                        let _ = reply.send(r);
                        out
                    }
                    None => return,
                },
            };
            self.perform(actions);
        }
    }

    /// Performs actions until none are left (persist confirmations may produce more).
    fn perform(&mut self, mut pending: Vec<Action>) {
        while !pending.is_empty() {
            let batch = std::mem::take(&mut pending);
            if let Some(st) = self.io.begin_round(&batch) {
                let _ = self.status.send(st);
            }
            for a in batch {
                if let Some(a) = self.io.perform(&mut self.peer, a) {
                    pending.extend(self.replica_action(a));
                }
            }
            pending.extend(self.io.end_round(&mut self.peer));
        }
    }

    /// The actions `QuorumIo` leaves to the owner: the replica's part.
    fn replica_action(&mut self, a: Action) -> Vec<Action> {
        let now = self.io.now();
        match a {
            Action::Deliver(p) => self.replica.apply(&p),
            Action::SendSnapshot { conn, zxid } => {
                let body = self.replica.snapshot();
                self.io.send_snapshot(conn, zxid, body);
            }
            Action::InstallSnapshot { data, .. } => self.replica.install_snapshot(data),
            Action::Truncate(z) => self.replica.truncate(z),
            Action::ReadLog { conn, from, to } => {
                let txns = self.replica.read_log(from, to);
                return self.peer.on_log_read(now, conn, txns);
            }
            Action::SaveAcceptedEpoch(e) => self.replica.with(|m| m.accepted = e),
            Action::SaveCurrentEpoch(e) => self.replica.with(|m| m.current = e),
            Action::StateChanged {
                state,
                leader,
                serving,
            } => {
                let _ = self.status.send(PeerStatus {
                    state,
                    leader,
                    serving,
                });
            }
            // No server core here: forwarded writes are dropped, sessions always valid.
            Action::LearnerRequest { conn, packet, .. } if is_sync_request(&packet) => {
                return self.peer.sync_request(now, conn);
            }
            Action::Revalidate {
                conn, session_id, ..
            } => return self.peer.revalidate_reply(now, conn, session_id, true),
            _ => {}
        }
        Vec::new()
    }
}

/// N peers on loopback.
pub struct TestEnsemble {
    addrs: PeerAddrs,
    configs: BTreeMap<Sid, QuorumConfig>,
    replicas: BTreeMap<Sid, MemReplica>,
    peers: BTreeMap<Sid, PeerHandle>,
    isolated: BTreeSet<Sid>,
    /// Listeners bound at start, used by the first launch (no window for another process
    /// to take the port).
    reserved: BTreeMap<Sid, (TcpListener, TcpListener)>,
}

impl TestEnsemble {
    /// Starts `voters` + `observers` peers with fast timing (tickTime 100 ms); `tune` may
    /// adjust each config.
    pub async fn start(
        voters: usize,
        observers: usize,
        tune: impl Fn(&mut QuorumConfig),
    ) -> std::io::Result<Self> {
        let mut election = BTreeMap::new();
        let mut quorum = BTreeMap::new();
        let mut servers = Vec::new();
        let mut reserved = BTreeMap::new();
        for i in 1..=(voters + observers) {
            let sid = i as Sid;
            let el = TcpListener::bind("127.0.0.1:0").await?;
            let ql = TcpListener::bind("127.0.0.1:0").await?;
            let (e, q) = (el.local_addr()?, ql.local_addr()?);
            reserved.insert(sid, (el, ql));
            election.insert(sid, e);
            quorum.insert(sid, q);
            servers.push(QuorumServer {
                sid,
                host: "127.0.0.1".into(),
                quorum_port: q.port(),
                election_port: e.port(),
                learner_type: if i > voters {
                    LearnerType::Observer
                } else {
                    LearnerType::Participant
                },
                client_addr: None,
            });
        }
        let mut configs = BTreeMap::new();
        for s in &servers {
            let mut c = QuorumConfig::new(s.sid, servers.clone());
            c.tick_time = 100;
            c.max_notification_interval = 400;
            tune(&mut c);
            configs.insert(s.sid, c);
        }
        let mut ens = TestEnsemble {
            addrs: PeerAddrs {
                election,
                quorum,
                security: crate::host::quorum::QuorumSecurity::plaintext(),
            },
            replicas: configs
                .keys()
                .map(|s| (*s, MemReplica::default()))
                .collect(),
            configs,
            peers: BTreeMap::new(),
            isolated: BTreeSet::new(),
            reserved,
        };
        let sids: Vec<Sid> = ens.configs.keys().copied().collect();
        for sid in sids {
            ens.restart(sid).await?;
        }
        Ok(ens)
    }

    /// All sids.
    pub fn sids(&self) -> Vec<Sid> {
        self.configs.keys().copied().collect()
    }

    /// The replica (database and disk) of `sid`.
    pub fn replica(&self, sid: Sid) -> Option<&MemReplica> {
        self.replicas.get(&sid)
    }

    /// Status of a running peer.
    pub fn status(&self, sid: Sid) -> Option<PeerStatus> {
        self.peers.get(&sid).map(|p| p.status())
    }

    /// (Re)starts `sid` from its disk.
    pub async fn restart(&mut self, sid: Sid) -> std::io::Result<()> {
        let (Some(cfg), Some(replica)) = (self.configs.get(&sid), self.replicas.get(&sid)) else {
            return Ok(());
        };
        self.peers.remove(&sid);
        let (Some(e), Some(q)) = (self.addrs.election.get(&sid), self.addrs.quorum.get(&sid))
        else {
            return Ok(());
        };
        let (el, ql) = match self.reserved.remove(&sid) {
            Some(pair) => pair,
            None => (crate::host::bind(*e).await?, crate::host::bind(*q).await?),
        };
        let disk = replica.restart();
        let h = PeerHandle::spawn(
            cfg.clone(),
            disk,
            replica.clone(),
            el,
            ql,
            self.addrs.clone(),
        );
        self.isolated.remove(&sid);
        self.peers.insert(sid, h);
        Ok(())
    }

    /// Kills `sid` (its disk stays for a restart).
    pub fn kill(&mut self, sid: Sid) {
        if let Some(p) = self.peers.remove(&sid) {
            p.kill();
        }
        self.isolated.remove(&sid);
    }

    /// Cuts `sid` off from everyone.
    pub fn isolate(&mut self, sid: Sid) {
        if let Some(p) = self.peers.get(&sid) {
            p.isolate(true);
            self.isolated.insert(sid);
        }
    }

    /// Ends every isolation.
    pub fn heal(&mut self) {
        for p in self.peers.values() {
            p.isolate(false);
        }
        self.isolated.clear();
    }

    /// Waits until every running, connected peer serves under one leader (not
    /// `exclude`); returns it.
    pub async fn wait_for_leader(&self, timeout: Duration, exclude: Option<Sid>) -> Option<Sid> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let st: Vec<PeerStatus> = self
                .peers
                .iter()
                .filter(|(s, _)| !self.isolated.contains(s))
                .map(|(_, p)| p.status())
                .collect();
            if !st.is_empty() && st.iter().all(|s| s.serving) {
                let l = st[0].leader;
                if st.iter().all(|s| s.leader == l) && l.is_some() && l != exclude {
                    return l;
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Proposes a txn carrying `payload` on `sid` (must be the leader; see
    /// [`PeerHandle::propose`]).
    pub async fn propose(&self, sid: Sid, payload: Bytes) -> Result<Zxid, ProposeError> {
        match self.peers.get(&sid) {
            Some(p) => p.propose(payload).await,
            None => Err(ProposeError::NotEstablished),
        }
    }

    /// Waits until every running, connected peer applied `zxid`.
    pub async fn wait_applied(&self, zxid: Zxid, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let done = self
                .peers
                .keys()
                .filter(|s| !self.isolated.contains(s))
                .all(|s| {
                    self.replicas
                        .get(s)
                        .is_some_and(|r| r.last_applied() >= zxid)
                });
            if done {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
