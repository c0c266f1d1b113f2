//! One server node serving clients: the client listener, and one node task owning the
//! request [`Processor`], its disk ([`NodeDisk`] and the one disk thread) and, for an
//! ensemble member, the [`QuorumPeer`] (with its [`QuorumIo`]). A standalone server is a
//! node without a peer: its writes go straight to its disk thread and commit once
//! durable. A member performs the peer's actions with direct calls on the processor
//! (commits, role changes, learners' writes and revalidations, SNAP bodies walked a slice
//! at a time between its other events) and carries out the processor's outputs (frames
//! to connections, proposals to the peer, forwards to the leader). Nothing of it sits
//! behind a lock.
//!
//! Sessions are global in an ensemble: a client reconnecting to a member with a session
//! is revalidated by the leader (REVALIDATE), which then records this member as the
//! session's owner; a write still arriving through the member the client left fails with
//! SessionMoved, and that member closes the stale connection (as Apache). With read-only
//! mode enabled, a member LOOKING for longer than a grace period serves read-only clients
//! until it rejoins a quorum.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::net::TcpListener;
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use zk_proto::quorum::QuorumPacket;
use zk_proto::txn::TxnEntry;
use zk_proto::{ConnectRequest, ConnectResponse, ErrorCode, Request};

use super::replica::{DiskAppender, DiskEvent, NodeDisk, Walks, SLICE_BYTES};
use super::request_packet::{self, Forwarded};
use crate::admin::four_letter::{self, QuorumView, Role};
use crate::config::{ServerConfig, ALL_FOUR_LETTER_WORDS};
use crate::core::clock::Now;
use crate::core::member_gate::MemberGate;
use crate::core::processor::{is_write, ConnId, CoreSettings, Output, Processor, WriteMode};
use crate::core::session::owner::LearnerConn;
use crate::core::session::{session_password, Owner, SessionOwners};
use crate::host::client::clients::{self, Clients};
use crate::host::client::connection::{ConnSettings, Throttle};
use crate::host::client::listener::ClientPorts;
use crate::host::client::ClientMsg;
use crate::host::quorum::driver::{
    is_sync_request, leader_stats, IsolationSwitch, LeaderStats, PeerAddrs, PeerStatus,
    QuorumEvent, QuorumIo,
};
use crate::host::server::now_ms;
use crate::state::database::ZkDatabase;
use crate::storage::disk::SnapshotFeed;
use crate::storage::disk_thread::{DiskJobs, DiskThread};
use crate::storage::PurgeTimer;
use crate::zab::broadcast::leader::ProposeError;
use crate::zab::broadcast::packets::revalidate_request;
use crate::zab::broadcast::Proposal;
use crate::zab::zxid::{epoch_of, make_zxid};
use crate::zab::{Action, LearnerType, PeerState, QuorumConfig, QuorumPeer, Zxid};

/// Everything a member needs to start.
pub struct NodeSetup {
    /// Its quorum config.
    pub quorum: QuorumConfig,
    /// Core settings (server id, timeouts).
    pub settings: CoreSettings,
    /// Its durable state.
    pub disk: NodeDisk,
    /// Bound client ports (a plain listener converts with `.into()`).
    pub client: ClientPorts,
    /// Bound election listener.
    pub election: TcpListener,
    /// Bound quorum listener.
    pub quorum_listener: TcpListener,
    /// Ensemble addresses.
    pub addrs: PeerAddrs,
}

/// A running node; dropping it stops it like a crash ([`Node::stop`] stops it cleanly).
pub struct Node {
    status: watch::Receiver<PeerStatus>,
    /// Set once a standalone node's txn log failed ([`Node::failed`]).
    failed: watch::Receiver<bool>,
    /// The node task's inbox, for the HTTP endpoints.
    requests: UnboundedSender<ClientMsg>,
    /// The AdminServer and metrics tasks ([`Node::serve_http`]).
    http: Vec<JoinHandle<()>>,
    read_only_enabled: Arc<AtomicBool>,
    isolation: Option<IsolationSwitch>,
    control: UnboundedSender<Control>,
    task: Option<JoinHandle<()>>,
    listener: JoinHandle<()>,
}

/// What [`Node`] asks its task.
enum Control {
    /// Close the clients, make the writes in flight durable, close the disk, then answer.
    Stop(oneshot::Sender<()>),
    /// Test kit: move the zxid counter forward (see [`Node::seed_zxid_counter`]).
    SeedCounter(u32, oneshot::Sender<Option<Zxid>>),
    /// Test kit: propose bytes as they are (see [`Node::propose_raw_txn`]).
    ProposeRaw(Bytes, oneshot::Sender<Option<Zxid>>),
}

impl Drop for Node {
    fn drop(&mut self) {
        self.listener.abort();
        for t in &self.http {
            t.abort();
        }
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// The server config a member reports in `conf` when started without one.
fn default_config(s: &NodeSetup, client: Option<SocketAddr>) -> ServerConfig {
    let (data_dir, data_log_dir) = s.disk.dirs().unwrap_or_default();
    ServerConfig {
        data_dir,
        data_log_dir,
        client_port: client.map(|a| a.port()).unwrap_or(0),
        client_port_address: client.map(|a| a.ip()),
        tick_time: u32::try_from(s.quorum.tick_time).unwrap_or(u32::MAX),
        init_limit: u32::try_from(s.quorum.init_limit).unwrap_or(u32::MAX),
        sync_limit: u32::try_from(s.quorum.sync_limit).unwrap_or(u32::MAX),
        min_session_timeout: s.settings.min_timeout,
        max_session_timeout: s.settings.max_timeout,
        my_id: s.quorum.my_sid as u64,
        four_letter_whitelist: ALL_FOUR_LETTER_WORDS
            .iter()
            .map(|w| w.to_string())
            .collect(),
        ..ServerConfig::default()
    }
}

impl Node {
    /// Starts a member from its disk (every four-letter word allowed, read-only mode off
    /// until [`Node::set_read_only_mode`]).
    pub fn start(s: NodeSetup) -> Node {
        let client = s.client.plain_addr().or(s.client.secure_addr());
        let config = default_config(&s, client);
        Self::start_configured(s, config)
    }

    /// Starts a member from its disk with its zoo.cfg settings (four-letter whitelist,
    /// `maxClientCnxns`, `readonlymode.enabled`, directories reported by `conf`).
    pub fn start_configured(s: NodeSetup, config: ServerConfig) -> Node {
        let (db, disk_state) = s.disk.load(s.quorum.committed_log_size);
        let now = now_ms();
        let mut processor = Processor::new(db, s.settings.clone(), Now::new(0, now));
        processor.set_write_mode(WriteMode::Forward);
        // As Apache's QuorumPeerMain: the config in force is in /zookeeper/config.
        let _ = processor.init_config_node(&s.quorum.to_config_string(), s.quorum.version, now);
        let quorum = quorum_view(&s.quorum);
        let tick_ms = s.quorum.tick_time;
        let (disk_tx, disk_rx) = mpsc::unbounded_channel();
        let appender_disk = s.disk.clone();
        let io = QuorumIo::start(
            &s.quorum,
            || Box::new(DiskAppender::new(appender_disk.clone(), disk_tx.clone())),
            s.election,
            s.quorum_listener,
            s.addrs,
        );
        let (peer, first) = QuorumPeer::new(s.quorum, disk_state, io.now());
        // Apache waits max(2 s, tickTime) of LOOKING before serving read-only.
        let gate = MemberGate::new((tick_ms as i64).max(2000), io.now() as i64);
        let isolation = io.isolation_switch();
        let jobs = io.disk_jobs();
        let looking = PeerStatus {
            state: PeerState::Looking,
            leader: None,
            serving: false,
        };
        let repl = Replication::Member(Box::new(Member {
            peer,
            io,
            actions: first,
            owners: SessionOwners::default(),
            gate,
            quorum,
            last_owner_prune: now,
            leading_since: None,
            last_state: None,
        }));
        Self::spawn(
            repl,
            processor,
            s.settings,
            s.disk,
            jobs,
            s.client,
            config,
            looking,
            Some(isolation),
            disk_rx,
        )
    }

    /// Starts a standalone server (a node without a peer) over `disk`, serving on the
    /// bound `client` ports with `config`'s settings.
    pub fn start_standalone(disk: NodeDisk, client: ClientPorts, config: ServerConfig) -> Node {
        let (db, _) = disk.load(0);
        let settings = CoreSettings::from_config(&config);
        let processor = Processor::new(db, settings.clone(), Now::new(0, now_ms()));
        let (disk_tx, disk_rx) = mpsc::unbounded_channel();
        let (durable_tx, durable) = mpsc::unbounded_channel();
        let appender = || Box::new(DiskAppender::new(disk.clone(), disk_tx.clone()));
        let log = match DiskThread::start(appender(), durable_tx.clone()) {
            Ok(t) => LogSink::Thread(t),
            Err(e) => {
                tracing::warn!("no disk thread ({e}): logging on the node task");
                LogSink::Inline(appender())
            }
        };
        let jobs = match &log {
            LogSink::Thread(t) => t.jobs(),
            LogSink::Inline(_) => DiskJobs::inline(),
        };
        let repl = Replication::Standalone(LocalLog {
            log,
            _durable_tx: durable_tx,
            durable,
            to_log: Vec::new(),
            pending: VecDeque::new(),
        });
        let serving = PeerStatus {
            state: PeerState::Leading,
            leader: None,
            serving: true,
        };
        Self::spawn(
            repl, processor, settings, disk, jobs, client, config, serving, None, disk_rx,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn spawn(
        repl: Replication,
        processor: Processor,
        settings: CoreSettings,
        disk: NodeDisk,
        jobs: DiskJobs,
        client: ClientPorts,
        config: ServerConfig,
        role: PeerStatus,
        isolation: Option<IsolationSwitch>,
        disk_rx: UnboundedReceiver<DiskEvent>,
    ) -> Node {
        let now = now_ms();
        let (core_tx, core_rx) = mpsc::unbounded_channel();
        let throttle = Arc::new(Throttle::default());
        let conn_settings = Arc::new(ConnSettings::from_config(&config));
        let net_counters = conn_settings.counters.clone();
        let listener = client.spawn(core_tx.clone(), conn_settings, throttle.clone());
        let (status_tx, status) = watch::channel(role);
        let (failed_tx, failed) = watch::channel(false);
        let (control, control_rx) = mpsc::unbounded_channel();
        let read_only_enabled = Arc::new(AtomicBool::new(config.read_only_mode));
        let tick = Duration::from_millis(u64::from(config.tick_time / 4).clamp(5, 50));
        let task = NodeTask {
            processor,
            settings,
            repl,
            walks: Walks::default(),
            clients: Clients::new(throttle, net_counters),
            role,
            status: status_tx,
            failed: failed_tx,
            read_only_enabled: read_only_enabled.clone(),
            config,
            started: now,
            disk,
            jobs,
            claimed_round: 0,
            snapshots_done: 0,
            clock: tokio::time::Instant::now(),
            purge_timer: PurgeTimer::new(),
            left: false,
        };
        let task = tokio::spawn(async move {
            if let Some(done) = task.run(core_rx, disk_rx, control_rx, tick).await {
                let _ = done.send(());
            }
        });
        Node {
            status,
            failed,
            requests: core_tx,
            http: Vec::new(),
            read_only_enabled,
            isolation,
            control,
            task: Some(task),
            listener,
        }
    }

    /// Serves the AdminServer and `/metrics` on the bound `endpoints`, answered by this
    /// node; they stop with it.
    pub fn serve_http(&mut self, endpoints: crate::host::http::HttpEndpoints) {
        self.http.extend(endpoints.spawn(self.requests.clone()));
    }

    /// The peer's latest role (a standalone server always leads and serves).
    pub fn status(&self) -> PeerStatus {
        *self.status.borrow()
    }

    /// Whether the node stopped serving because its txn log could not be made durable
    /// (see [`Node::failed`]).
    pub fn has_failed(&self) -> bool {
        *self.failed.borrow()
    }

    /// Resolves once the node's txn log could not be made durable: from then on it
    /// answers no client (Apache's standalone server shuts down then), and a member has
    /// left the ensemble; its owner should stop it. Pending forever otherwise.
    pub async fn failed(&self) {
        let mut rx = self.failed.clone();
        if rx.wait_for(|f| *f).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Turns read-only mode (`readonlymode.enabled`) on or off: when on, a member LOOKING
    /// for a while serves clients that allow read-only connections.
    pub fn set_read_only_mode(&self, on: bool) {
        self.read_only_enabled.store(on, Ordering::SeqCst);
    }

    /// Cuts (true) or restores (false) this member's traffic with the other members, like
    /// a network partition around it; its clients still reach it.
    pub fn isolate(&self, on: bool) {
        if let Some(i) = &self.isolation {
            i.set(on);
        }
    }

    /// Stops accepting, closes every connection, waits for the writes in flight to be
    /// durable and closes the disk.
    pub async fn stop(mut self) {
        self.listener.abort();
        for t in self.http.drain(..) {
            t.abort();
        }
        let (tx, rx) = oneshot::channel();
        if self.control.send(Control::Stop(tx)).is_ok() {
            let _ = rx.await;
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }

    /// Test kit: makes the next write of this node get zxid counter `counter` in its
    /// current epoch, to test the counter rollover without billions of writes. Only an
    /// established leader or a standalone server with nothing in flight moves its counter,
    /// and only forward. Returns the next zxid, or `None` when it did not move.
    pub async fn seed_zxid_counter(&self, counter: u32) -> Option<Zxid> {
        let (tx, rx) = oneshot::channel();
        self.control.send(Control::SeedCounter(counter, tx)).ok()?;
        rx.await.ok().flatten()
    }

    /// Test kit: a faulty leader. An established leader with nothing in flight proposes
    /// `data` as its next txn, unchecked (it need not decode), and logs it as it logs any
    /// proposal. Returns its zxid, or `None` when this node did not propose it.
    pub async fn propose_raw_txn(&self, data: Bytes) -> Option<Zxid> {
        let (tx, rx) = oneshot::channel();
        self.control.send(Control::ProposeRaw(data, tx)).ok()?;
        rx.await.ok().flatten()
    }

    /// Like [`Node::stop`], without waiting for it.
    pub fn stop_in_background(mut self) {
        self.listener.abort();
        for t in self.http.drain(..) {
            t.abort();
        }
        let (tx, _rx) = oneshot::channel();
        let _ = self.control.send(Control::Stop(tx));
        // Detached: the task finishes the stop on its own.
        drop(self.task.take());
    }
}

/// The static part of what `conf` / `mntr` report about the ensemble.
fn quorum_view(q: &QuorumConfig) -> QuorumView {
    let me = q.servers.get(&q.my_sid);
    let membership = q
        .servers
        .values()
        .map(|s| {
            let kind = match s.learner_type {
                LearnerType::Participant => "participant",
                LearnerType::Observer => "observer",
            };
            let client = s
                .client_addr
                .as_ref()
                .map(|c| format!(";{c}"))
                .unwrap_or_default();
            format!(
                "server.{}={}:{}:{}:{kind}{client}",
                s.sid, s.host, s.quorum_port, s.election_port
            )
        })
        .collect();
    QuorumView {
        peer_state: String::new(),
        init_limit: q.init_limit,
        sync_limit: q.sync_limit,
        election_port: me.map(|s| s.election_port).unwrap_or(0),
        quorum_port: me.map(|s| s.quorum_port).unwrap_or(0),
        peer_type: u8::from(me.is_some_and(|s| s.learner_type == LearnerType::Observer)),
        membership,
        quorum_size: q.voters().count(),
        leader: None,
        leader_uptime_ms: 0,
        proposal_sizes: Default::default(),
        proposal_count: 0,
        looking_count: 0,
        servers: q.servers.values().cloned().collect(),
        my_id: q.my_sid,
        leader_id: None,
    }
}

/// Where a standalone node's txn log appends go.
enum LogSink {
    /// The disk thread (group commit), reporting syncs on `LocalLog::durable`.
    Thread(DiskThread),
    /// No thread could be started: appends run on the node task.
    Inline(Box<DiskAppender>),
}

/// A standalone node's commit path: its writes go to the disk thread and commit (are
/// applied and answered) once durable, in order.
struct LocalLog {
    log: LogSink,
    /// Kept so the channel only ends with the node.
    _durable_tx: UnboundedSender<(u64, Zxid)>,
    durable: UnboundedReceiver<(u64, Zxid)>,
    /// Txns proposed since the last hand-over to the disk thread.
    to_log: Vec<Proposal>,
    /// Txns handed over and not yet durable, in zxid order.
    pending: VecDeque<TxnEntry>,
}

impl LocalLog {
    /// Hands the txns proposed so far to the disk thread (one sync for all of them and
    /// whatever else is queued meanwhile); inline, returns the zxid now durable.
    fn flush(&mut self) -> Option<Zxid> {
        if self.to_log.is_empty() {
            return None;
        }
        let batch = std::mem::take(&mut self.to_log);
        let last = batch.last().map(|p| p.zxid);
        match &mut self.log {
            LogSink::Thread(t) => {
                t.submit(batch);
                None
            }
            LogSink::Inline(a) => {
                use crate::storage::disk_thread::LogAppender;
                a.append(&batch).then_some(last).flatten()
            }
        }
    }

    /// The pending txns up to `zxid`, now durable.
    fn durable_up_to(&mut self, zxid: Zxid) -> Vec<TxnEntry> {
        let n = self
            .pending
            .iter()
            .take_while(|e| e.header.zxid <= zxid)
            .count();
        self.pending.drain(..n).collect()
    }
}

/// An ensemble member's side of the node: the quorum peer, its I/O, and what the member
/// holds for its clients while the quorum answers.
struct Member {
    /// The quorum peer (sans-IO).
    peer: QuorumPeer,
    /// The peer's network, disk thread and timer.
    io: QuorumIo,
    /// Peer actions still to perform (see [`NodeTask::drive`]).
    actions: Vec<Action>,
    /// Leader: which member each session's client is on.
    owners: SessionOwners,
    /// Held syncs, handshakes waiting on the quorum, read-only timing (sans-IO, on the
    /// peer's monotonic clock).
    gate: MemberGate,
    quorum: QuorumView,
    last_owner_prune: i64,
    /// Since when this member leads a serving quorum (`zk_leader_uptime`).
    leading_since: Option<i64>,
    /// The peer's state in its latest role report (elections counted in `mntr`).
    last_state: Option<PeerState>,
}

/// How a node replicates its writes: alone, or through the quorum.
enum Replication {
    Standalone(LocalLog),
    Member(Box<Member>),
}

/// An input for the node task from its replication side.
enum ReplEvent {
    Quorum(QuorumEvent),
    Durable(u64, Zxid),
}

impl Replication {
    /// The next event (`None`: the network or disk thread is gone).
    async fn next(&mut self) -> Option<ReplEvent> {
        match self {
            Replication::Member(m) => m.io.next().await.map(ReplEvent::Quorum),
            Replication::Standalone(l) => l
                .durable
                .recv()
                .await
                .map(|(g, z)| ReplEvent::Durable(g, z)),
        }
    }
}

/// One node's task: the processor, its disk, the clients and, for a member, the peer.
struct NodeTask {
    /// The server core.
    processor: Processor,
    /// Its settings (to rebuild it when the member stops serving or reloads).
    settings: CoreSettings,
    /// Standalone commit path, or the quorum peer.
    repl: Replication,
    /// Fuzzy snapshot walks in progress (SNAP bodies, snapshot files).
    walks: Walks,
    clients: Clients,
    /// The peer's latest role (a standalone node: leading, serving).
    role: PeerStatus,
    /// The role, published for [`Node::status`].
    status: watch::Sender<PeerStatus>,
    /// Set when a standalone node's txn log fails ([`Node::failed`]).
    failed: watch::Sender<bool>,
    read_only_enabled: Arc<AtomicBool>,
    config: ServerConfig,
    started: i64,
    /// The node's durable state (log reads, TRUNC, SNAP installs, epochs, snapshots,
    /// autopurge; appends go through the disk thread).
    disk: NodeDisk,
    /// Snapshot pieces and purges for the disk thread, queued behind the appends.
    jobs: DiskJobs,
    /// The latest snapshot round taken (later reports of it are ignored).
    claimed_round: u64,
    /// Snapshots handed to the disk completely (each makes a purge due).
    snapshots_done: u64,
    /// A standalone node's monotonic clock starts here (a member's is its peer's).
    clock: tokio::time::Instant,
    /// When autopurge runs next (at start, every purgeInterval, after each snapshot).
    purge_timer: PurgeTimer,
    /// Set once a member's disk failed: it left the ensemble (see [`NodeTask::leave`]).
    left: bool,
}

impl NodeTask {
    /// The time for the processor: the monotonic clock for timeouts, the wall clock for
    /// txn times.
    fn now(&self) -> Now {
        Now::new(self.mono(), now_ms())
    }

    /// The node's monotonic clock (ms): a member's peer clock, so the processor, the
    /// gate and the peer share one timeline.
    fn mono(&self) -> i64 {
        match &self.repl {
            Replication::Member(m) => m.io.now() as i64,
            Replication::Standalone(_) => self.clock.elapsed().as_millis() as i64,
        }
    }

    fn member(&mut self) -> Option<&mut Member> {
        match &mut self.repl {
            Replication::Member(m) => Some(&mut **m),
            Replication::Standalone(_) => None,
        }
    }

    fn read_only(&self) -> bool {
        matches!(&self.repl, Replication::Member(m) if m.gate.read_only())
    }

    fn serving(&self) -> bool {
        self.role.serving
    }

    fn leading(&self) -> bool {
        self.role.serving && self.role.state == PeerState::Leading
    }

    async fn run(
        mut self,
        mut clients: UnboundedReceiver<ClientMsg>,
        mut disk_events: UnboundedReceiver<DiskEvent>,
        mut control: UnboundedReceiver<Control>,
        tick: Duration,
    ) -> Option<oneshot::Sender<()>> {
        let mut ticker = tokio::time::interval(tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.drive();
        loop {
            if self.walks.is_busy() {
                // One slice per event: a large tree never stalls the node.
                if self.walks.step(self.processor.db(), SLICE_BYTES) {
                    self.snapshot_written();
                }
            }
            // A snapshot file's walk keeps pace with the disk thread; while it waits the
            // task looks again shortly rather than spinning.
            let waits = self.walks.waits_for_disk();
            let busy = self.walks.is_busy() && !waits;
            tokio::select! {
                ev = self.repl.next() => match ev {
                    Some(ReplEvent::Quorum(ev)) => {
                        if let Replication::Member(m) = &mut self.repl {
                            let more = m.io.handle(&mut m.peer, ev);
                            m.actions.extend(more);
                        }
                    }
                    Some(ReplEvent::Durable(g, z)) => self.durable(g, z),
                    None => return None,
                },
                m = clients.recv() => match m {
                    Some(m) => {
                        self.client_msg(m);
                        // Take everything already queued, so txns that arrived together
                        // share one sync.
                        while let Ok(m) = clients.try_recv() {
                            self.client_msg(m);
                        }
                    }
                    None => return None,
                },
                Some(e) = disk_events.recv() => match e {
                    DiskEvent::SnapshotDue { round, on_disk } => self.snapshot_due(round, on_disk),
                    DiskEvent::AppendFailed => {
                        if self.append_failed() {
                            // A member whose disk failed leaves the ensemble: its
                            // connections close and the others go on without it.
                            return None;
                        }
                    }
                    DiskEvent::NoSpace => self.no_space(true),
                    DiskEvent::SpaceReturned => self.no_space(false),
                },
                Some(c) = control.recv() => match c {
                    Control::Stop(done) => {
                        self.stop();
                        return Some(done);
                    }
                    Control::SeedCounter(counter, done) => {
                        let _ = done.send(self.seed_counter(counter));
                    }
                    Control::ProposeRaw(data, done) => {
                        let _ = done.send(self.propose_raw(data));
                    }
                },
                _ = ticker.tick() => self.tick(),
                // Walks go on while nothing else is ready, yielding to the runtime between
                // slices: a task that never returns Pending holds its worker thread, and
                // the connection tasks it wakes wait in that worker's slot meanwhile.
                _ = tokio::task::yield_now(), if busy => {}
                _ = tokio::time::sleep(Duration::from_millis(1)), if waits => {}
            }
            self.drive();
            if self.left {
                return None;
            }
        }
    }

    /// Performs the peer's actions until none are left (each may lead to more: durable
    /// txns, log reads, the processor's proposals); a standalone node hands its new txns
    /// to the disk thread.
    fn drive(&mut self) {
        if let Replication::Standalone(l) = &mut self.repl {
            if let Some(z) = l.flush() {
                self.committed_up_to(z);
            }
            return;
        }
        loop {
            let Some(m) = self.member() else { return };
            if m.actions.is_empty() {
                return;
            }
            let batch = std::mem::take(&mut m.actions);
            if let Some(st) = m.io.begin_round(&batch) {
                self.role_changed(st, None);
            }
            for a in batch {
                if self.left {
                    // Crash-stopped: nothing of the batch goes out.
                    return;
                }
                let Some(m) = self.member() else { return };
                if let Some(a) = m.io.perform(&mut m.peer, a) {
                    self.peer_action(a);
                }
            }
            let Some(m) = self.member() else { return };
            let more = m.io.end_round(&mut m.peer);
            m.actions.extend(more);
        }
    }

    /// Standalone: the disk thread made txns up to `zxid` durable.
    fn durable(&mut self, generation: u64, zxid: Zxid) {
        if let Replication::Standalone(LocalLog {
            log: LogSink::Thread(t),
            ..
        }) = &self.repl
        {
            if t.is_current(generation) {
                self.committed_up_to(zxid);
            }
        }
    }

    /// Standalone: applies and answers the pending txns up to `zxid`.
    fn committed_up_to(&mut self, zxid: Zxid) {
        let Replication::Standalone(l) = &mut self.repl else {
            return;
        };
        let entries = l.durable_up_to(zxid);
        if !entries.is_empty() {
            let out = self.processor.committed(&entries, self.now());
            self.outputs(out);
        }
    }

    /// The disk could not make txns durable. A standalone server stops serving, as
    /// Apache's shuts down when it cannot log: an unlogged write is never acknowledged,
    /// every connection closes and later ones are refused ([`Node::failed`] tells the
    /// owner, which stops it). A member's peer never acknowledges them, and the member
    /// drops out of the quorum's acks until restarted.
    ///
    /// A member crash-stops as Apache's leaves: it stops acknowledging, drops its role
    /// (leader or follower) and takes no further part, so the others elect a leader
    /// among themselves; returns true then (the node task ends).
    fn append_failed(&mut self) -> bool {
        let dir = self
            .disk
            .dirs()
            .map_or("(in memory)".to_string(), |(d, _)| d.display().to_string());
        match &mut self.repl {
            Replication::Standalone(l) => {
                if !*self.failed.borrow() {
                    tracing::error!(
                        "disk trouble in dataDir {dir}: the txn log cannot be written; this \
                         server stops serving clients (restart it once the disk is fixed)"
                    );
                }
                l.pending.clear();
                self.clients.close_all();
                self.failed.send_replace(true);
                false
            }
            Replication::Member(_) => {
                self.leave("the txn log cannot be made durable");
                true
            }
        }
    }

    /// A member's disk failed (`why`): it crash-stops as Apache's leaves. It drops its
    /// role, performs no further peer action (no ack, no vote), closes its clients, and
    /// the node task ends once back in its loop.
    fn leave(&mut self, why: &str) {
        if self.left {
            return;
        }
        self.left = true;
        let dir = self
            .disk
            .dirs()
            .map_or("(in memory)".to_string(), |(d, _)| d.display().to_string());
        let role = match self.role.state {
            PeerState::Leading => "leader",
            PeerState::Following => "follower",
            PeerState::Observing => "observer",
            PeerState::Looking => "looking member",
        };
        let sid = self.member().map_or(0, |m| m.peer.sid());
        tracing::error!(
            "disk trouble in dataDir {dir}: {why} (cause logged above); peer {sid} stops \
             being {role} and leaves the ensemble (crash-stop: it acknowledges nothing \
             more); restart it once the disk is fixed"
        );
        self.clients.close_all();
        self.walks.cancel();
        if let Some(m) = self.member() {
            m.actions.clear();
        }
        let down = PeerStatus {
            state: PeerState::Looking,
            leader: None,
            serving: false,
        };
        self.role = down;
        let _ = self.status.send(down);
        self.failed.send_replace(true);
    }

    /// The disk filled up (`full`) or has space again. A standalone server refuses
    /// writes meanwhile with OperationTimeout: Curator's and kazoo's retry loops retry
    /// it (as ConnectionLoss), and unlike ConnectionLoss it never leaves the client
    /// wondering whether the write happened (it was never proposed). Reads, pings and
    /// existing sessions go on; a new session, itself a txn, is refused. A member keeps
    /// its role: it acknowledges only what it logged, so writes go on while a quorum of
    /// other members can log them, and it catches up when space returns.
    fn no_space(&mut self, full: bool) {
        if let Replication::Standalone(_) = &self.repl {
            let code = full.then_some(ErrorCode::OperationTimeout);
            self.processor.refuse_writes(code);
        }
    }

    /// A clean stop: clients closed, writes in flight made durable (and applied), the
    /// snapshot being walked abandoned; the disk thread finishes what it was handed when
    /// the task drops it.
    fn stop(&mut self) {
        self.clients.close_all();
        if let Replication::Standalone(l) = &mut self.repl {
            let flushed = l.flush();
            let last = match &mut l.log {
                LogSink::Thread(t) => t.barrier(),
                LogSink::Inline(_) => flushed,
            };
            if let Some(z) = last {
                self.committed_up_to(z);
            }
        }
        self.walks.cancel();
        for c in self.clients.ids() {
            self.clients.disconnected(c);
        }
    }

    /// The peer's actions that concern the server: the database, the disk, the clients.
    fn peer_action(&mut self, a: Action) {
        let Some(now) = self.member().map(|m| m.io.now()) else {
            return;
        };
        match a {
            Action::Deliver(p) => match TxnEntry::decode(p.data.clone()) {
                Ok(e) => {
                    // A synced learner's commits (Apache's FollowerZooKeeperServer
                    // times them; replayed sync history would only add noise).
                    let learner = !self.leading() && self.serving();
                    if let Some(m) = self.member().filter(|_| learner) {
                        m.io.record_commit_propagation(e.header.time, now_ms());
                    }
                    let out = self
                        .processor
                        .committed(std::slice::from_ref(&e), self.now());
                    self.outputs(out);
                }
                Err(e) => tracing::error!("undecodable committed txn {:#x}: {e}", p.zxid),
            },
            Action::SendSnapshot { conn, zxid } => {
                // Walked a slice at a time by this task, so the member keeps serving and
                // committing meanwhile; it starts now, with every txn up to the SNAP's
                // zxid applied.
                let body = self.walks.for_learner(self.processor.db());
                if let Some(m) = self.member() {
                    m.io.send_snapshot(conn, zxid, body);
                }
            }
            Action::InstallSnapshot { zxid, data } => {
                // Walks over the old tree stop before the disk is replaced.
                self.walks.cancel();
                // The driver checked the stream's structure, so this only fails on a bug.
                match self.disk.install(zxid, &data) {
                    Ok(db) => self.reload(db),
                    Err(e) => {
                        tracing::error!("undecodable snapshot {zxid:#x} from the leader: {e}")
                    }
                }
            }
            Action::Truncate(zxid) => {
                self.walks.cancel();
                let db = self.disk.truncate(zxid);
                self.reload(db);
            }
            Action::ReadLog { conn, from, to } => {
                let txns = self.disk.read_log(from, to);
                if let Some(m) = self.member() {
                    let more = m.peer.on_log_read(now, conn, txns);
                    m.actions.extend(more);
                }
            }
            Action::SaveAcceptedEpoch(e) => {
                if self.disk.save_accepted_epoch(e).is_err() {
                    self.leave("acceptedEpoch cannot be written");
                }
            }
            Action::SaveCurrentEpoch(e) => {
                if self.disk.save_current_epoch(e).is_err() {
                    self.leave("currentEpoch cannot be written");
                }
            }
            Action::StateChanged {
                state,
                leader,
                serving,
            } => {
                let st = PeerStatus {
                    state,
                    leader,
                    serving,
                };
                let next = self.member().and_then(|m| m.peer.next_zxid());
                self.role_changed(st, next);
            }
            Action::LearnerRequest { conn, packet, .. } => {
                // Syncs are answered once everything proposed before them is committed;
                // writes are prepared here and proposed.
                if is_sync_request(&packet) {
                    if let Some(m) = self.member() {
                        let more = m.peer.sync_request(now, conn);
                        m.actions.extend(more);
                    }
                } else {
                    self.forwarded(conn, &packet);
                }
            }
            Action::Revalidate {
                conn,
                session_id,
                timeout,
            } => {
                let at = self.now();
                // Only global sessions move (Apache's checkIfValidGlobalSession): a local
                // session of the leader's is unknown to the member asking.
                let valid = !self.processor.is_local_session(session_id)
                    && touch(&mut self.processor, session_id, timeout, at);
                let Some(m) = self.member() else { return };
                if valid {
                    m.owners.set(session_id, Owner::Learner(conn));
                }
                let more = m.peer.revalidate_reply(now, conn, session_id, valid);
                m.actions.extend(more);
            }
            Action::SyncDone => self.sync_done(),
            Action::SessionsTouched { sessions, .. } => {
                let now = self.now();
                for (s, t) in sessions {
                    touch(&mut self.processor, s, t, now);
                }
            }
            Action::Revalidated { session_id, valid } => self.revalidated(session_id, valid),
            Action::ConfigSeen(cfg) => {
                if let Some(m) = self.member() {
                    m.io.set_members(&cfg);
                }
                if let Some(file) = self.dynamic_files() {
                    let next = crate::config::dynamic::next_file(&file);
                    if let Err(e) =
                        crate::config::dynamic::write_config(&next, &cfg.to_config_string(), true)
                    {
                        tracing::error!(
                            "cannot record the proposed config {:#x}: {e}",
                            cfg.version
                        );
                    }
                }
            }
            Action::ConfigActivated(cfg) => self.config_activated(&cfg),
            // Network and log actions are the QuorumIo's.
            other => tracing::debug!("peer action left unhandled: {other:?}"),
        }
    }

    /// zoo.cfg, when this member keeps Apache's dynamic config files beside it (read from
    /// a file, with reconfig enabled).
    fn dynamic_files(&self) -> Option<std::path::PathBuf> {
        self.config
            .reconfig_enabled
            .then(|| self.config.config_file.clone())
            .flatten()
    }

    /// A new config is in force: in `/zookeeper/config`, in the dynamic file zoo.cfg now
    /// points at, in the addresses the member reaches, in what `conf` reports.
    fn config_activated(&mut self, cfg: &crate::zab::QuorumConfig) {
        let now = now_ms();
        let out = self
            .processor
            .init_config_node(&cfg.to_config_string(), cfg.version, now);
        self.outputs(out);
        if let Some(m) = self.member() {
            m.io.set_members(cfg);
            let counts = (
                m.quorum.proposal_sizes,
                m.quorum.proposal_count,
                m.quorum.looking_count,
            );
            m.quorum = quorum_view(cfg);
            (
                m.quorum.proposal_sizes,
                m.quorum.proposal_count,
                m.quorum.looking_count,
            ) = counts;
        }
        if let Some(file) = self.dynamic_files() {
            use crate::config::dynamic;
            let dynamic_file = dynamic::committed_file(&file, cfg.version);
            // Apache erases clientPort from zoo.cfg once the member's spec carries it.
            let erase = cfg
                .servers
                .get(&cfg.my_sid)
                .is_some_and(|s| s.client_addr.is_some());
            let r = dynamic::write_config(&dynamic_file, &cfg.to_config_string(), false)
                .and_then(|_| dynamic::edit_static_config(&file, &dynamic_file, erase));
            match r {
                Ok(()) => {
                    let next = dynamic::next_file(&file);
                    if next.exists() {
                        let _ = std::fs::remove_file(next);
                    }
                }
                Err(e) => tracing::error!("cannot record config {:#x}: {e}", cfg.version),
            }
        }
    }

    /// Leader: what the processor needs for a reconfig request (None on others).
    fn set_reconfig_context(&mut self) {
        let leading = self.leading();
        let ctx = match self.member() {
            Some(m) if leading => {
                let now = m.io.now();
                m.peer
                    .synced_sids(now)
                    .map(|synced| crate::core::prep::ReconfigContext {
                        committed: m.peer.config_arc(),
                        last_seen: m.peer.last_seen_config(),
                        synced,
                    })
            }
            _ => None,
        };
        self.processor.set_reconfig_context(ctx);
    }

    /// The peer changed role; `next_zxid` is what the next proposal gets (an established
    /// leader only). Switches the processor between leading and forwarding, and ends
    /// what the old role's clients were waiting for when the member stops serving.
    fn role_changed(&mut self, st: PeerStatus, next_zxid: Option<Zxid>) {
        tracing::debug!("member role: {st:?}");
        let looking = st.state == PeerState::Looking;
        let mono = self.mono();
        let Some(m) = self.member() else { return };
        let was_read_only = m.gate.role_changed(looking, st.serving, mono);
        if was_read_only {
            // Any role change ends read-only mode (Apache shuts its read-only server down
            // when the election ends): local sessions go, their clients reconnect.
            self.reset();
        }
        self.role = st;
        match next_zxid {
            Some(z) if st.serving && st.state == PeerState::Leading => self.lead(z),
            _ if !st.serving => self.reset(),
            _ => self.processor.set_write_mode(WriteMode::Forward),
        }
        let _ = self.status.send(st);
        let Some(m) = self.member() else { return };
        if st.state == PeerState::Looking && m.last_state != Some(PeerState::Looking) {
            m.quorum.looking_count += 1;
        }
        m.last_state = Some(st.state);
        let leads = st.serving && st.state == PeerState::Leading;
        m.leading_since = match leads {
            true => m.leading_since.or(Some(now_ms())),
            false => None,
        };
        if !st.serving || was_read_only {
            // Our clients' requests would hang without a quorum, and read-only
            // sessions end with read-only mode: let the clients move. Handshakes held
            // for the member to serve stay.
            match &self.repl {
                Replication::Member(m) => {
                    let gate = &m.gate;
                    self.clients.close_all_but(|conn| gate.awaits_serving(conn));
                }
                Replication::Standalone(_) => self.clients.close_all(),
            }
        }
        if st.serving {
            self.answer_awaiting_serving();
        }
    }

    /// Answers the handshakes that waited for the member to serve (or to serve
    /// read-only clients).
    fn answer_awaiting_serving(&mut self) {
        let Some(m) = self.member() else { return };
        let held = m.gate.take_awaiting_serving();
        if !held.is_empty() {
            tracing::info!(
                "answering {} handshakes that waited for this member to serve",
                held.len()
            );
        }
        for (conn, req) in held {
            if self.clients.contains(conn) {
                self.connect(conn, req);
            }
        }
    }

    /// [`Node::seed_zxid_counter`]: the peer (a member) checks and moves its counter,
    /// then the processor assigns from the same zxid.
    fn seed_counter(&mut self, counter: u32) -> Option<Zxid> {
        if self.processor.outstanding() > 0 {
            return None;
        }
        let next = match &mut self.repl {
            Replication::Standalone(l) => {
                if !l.to_log.is_empty() || !l.pending.is_empty() {
                    return None;
                }
                let cur = self.processor.next_zxid();
                let next = make_zxid(epoch_of(cur), i64::from(counter));
                (next > cur).then_some(next)?
            }
            Replication::Member(m) => m.peer.seed_counter(counter)?,
        };
        self.processor.set_next_zxid(next);
        Some(next)
    }

    /// [`Node::propose_raw_txn`]: the processor hands out the zxid after it, so later
    /// writes follow on.
    fn propose_raw(&mut self, data: Bytes) -> Option<Zxid> {
        if self.processor.outstanding() > 0 || !self.leading() {
            return None;
        }
        let zxid = self.processor.next_zxid();
        let m = self.member()?;
        let (r, more) = m.peer.propose_txn(m.io.now(), zxid, data);
        m.actions.extend(more);
        r.ok()?;
        self.processor.set_next_zxid(zxid + 1);
        Some(zxid)
    }

    /// Starts leading: proposals get zxids from `next_zxid` on.
    fn lead(&mut self, next_zxid: Zxid) {
        let now = self.now();
        // A new leadership knows no session owners yet: the first member to use a
        // session claims it (as Apache's session tracker).
        if let Some(m) = self.member() {
            m.owners.clear();
        }
        let p = &mut self.processor;
        p.set_write_mode(WriteMode::Local);
        p.set_next_zxid(next_zxid);
        p.renew_sessions(now);
    }

    /// Rebuilds the processor over its own database, dropping connections, queues,
    /// waiters and prepared-but-uncommitted changes: when a member stops serving its
    /// clients are disconnected, and what it proposed as leader may never commit.
    fn reset(&mut self) {
        let empty = Processor::new(ZkDatabase::new(), self.settings.clone(), self.now());
        let mut old = std::mem::replace(&mut self.processor, empty);
        self.processor
            .restore_transport_auth(old.take_transport_auth());
        self.rebuild(old.into_db());
    }

    /// Rebuilds the processor over `db` (after TRUNC / SNAP; clients are disconnected
    /// then, as the member is not serving). Walks over the old tree stop.
    fn reload(&mut self, db: ZkDatabase) {
        self.walks.cancel();
        self.rebuild(db);
    }

    fn rebuild(&mut self, db: ZkDatabase) {
        let mut p = Processor::new(db, self.settings.clone(), self.now());
        p.restore_transport_auth(self.processor.take_transport_auth());
        p.set_write_mode(WriteMode::Forward);
        if let Replication::Member(m) = &self.repl {
            // As Apache's learners after a sync: the config in force, not the leader's.
            let cfg = m.peer.config();
            let _ = p.init_config_node(&cfg.to_config_string(), cfg.version, now_ms());
        }
        self.processor = p;
    }

    /// The disk logged enough txns since the last snapshot (Apache's randomised
    /// `snapCount` / `snapSizeLimitInKb`): on disk a fuzzy snapshot file, walked a slice
    /// at a time by this task and written by the disk thread; in memory a copy.
    fn snapshot_due(&mut self, round: u64, on_disk: bool) {
        if round <= self.claimed_round || self.walks.writing_file() {
            // Taken already, or the previous file is still being walked (the next append
            // asks again).
            return;
        }
        self.claimed_round = round;
        if on_disk {
            let snap = self.processor.db().begin_file_snapshot();
            let (sessions, acls) = (snap.sessions.clone(), snap.walk.acl_table());
            let feed = SnapshotFeed::begin(
                &self.disk,
                &self.jobs,
                round,
                snap.last_zxid,
                sessions,
                acls,
            );
            self.walks.to_file(snap, feed);
        } else {
            let db = self.processor.db();
            self.disk.take_snapshot_if_due(Some(round), || db.image());
            self.snapshot_written();
        }
    }

    /// A snapshot was handed to the disk whole: a purge is due right behind it.
    fn snapshot_written(&mut self) {
        self.snapshots_done += 1;
        self.autopurge(self.mono());
    }

    fn tick(&mut self) {
        let now = now_ms();
        let mono = self.mono();
        let enabled = self.read_only_enabled.load(Ordering::SeqCst);
        if let Some(m) = self.member() {
            if let Some(looked) = m.gate.enter_read_only(enabled, mono) {
                tracing::info!(
                    "peer {}: no quorum for {looked} ms: serving read-only clients",
                    m.peer.sid()
                );
                self.reset();
                self.processor.set_write_mode(WriteMode::ReadOnly);
                self.answer_awaiting_serving();
            }
        }
        if let Some(m) = self.member() {
            let due = m.gate.awaiting_serving_due(mono);
            if !due.is_empty() {
                tracing::info!(
                    "closing {} connections whose handshake waited {} ms for this member \
                     to serve: clients try other members",
                    due.len(),
                    m.gate.grace()
                );
            }
            for conn in due {
                self.clients.close(conn);
            }
        }
        if let Replication::Member(m) = &mut self.repl {
            if now - m.last_owner_prune >= 1000 {
                m.last_owner_prune = now;
                let sessions = self.processor.sessions();
                m.owners.retain(|s| sessions.contains(s));
            }
        }
        let out = self.processor.tick(self.now());
        self.outputs(out);
        self.retry_unapplied();
        self.autopurge(mono);
    }

    /// Queues a purge on the disk thread when one is due (at start, every
    /// purgeInterval, after each snapshot): behind the snapshot just completed, and off
    /// this task, as deleting files must not hold up clients.
    fn autopurge(&mut self, now: i64) {
        // Lock-free read: the disk's lock may be held across a sync.
        let interval = self.disk.purge_interval();
        if self.purge_timer.due(now, interval, self.snapshots_done) {
            let disk = self.disk.clone();
            self.jobs.run(move || {
                disk.purge();
            });
        }
    }

    fn client_msg(&mut self, msg: ClientMsg) {
        let now = now_ms();
        match msg {
            ClientMsg::Accepted {
                conn,
                peer,
                tx,
                auth,
            } => {
                self.clients.accepted(conn, peer, tx, now);
                self.processor.transport_auth(conn, auth);
            }
            ClientMsg::Connect { conn, req } => {
                self.clients.connect_received(conn, req.session_id == 0);
                self.connect(conn, req);
            }
            ClientMsg::Request { conn, xid, req } => {
                self.clients.request_received(conn, xid, req.opcode());
                self.request(conn, xid, req);
            }
            ClientMsg::Unknown {
                conn,
                xid,
                marshalling,
            } => {
                self.clients
                    .request_received(conn, xid, zk_proto::OpCode::Error);
                let out = self.processor.unknown_request(conn, xid, marshalling);
                self.outputs(out);
            }
            ClientMsg::Disconnected { conn } => {
                self.clients.disconnected(conn);
                if let Some(m) = self.member() {
                    m.gate.disconnected(conn);
                }
                self.processor.disconnected(conn);
            }
            ClientMsg::Admin { request, reply } => {
                let body = self.admin(request);
                let _ = reply.send(body);
            }
            ClientMsg::FourLetter { cmd, peer, reply } => {
                let text = self.four_letter(&cmd, peer);
                let _ = reply.send(text);
                // ... and its answer as a sent one (seen by the next command).
                self.clients.stats.packets_sent += 1;
            }
        }
    }

    /// The mode `srvr` reports, or `None` when the member serves no clients.
    fn mode(&self) -> Option<&'static str> {
        let Replication::Member(_) = &self.repl else {
            return Some("standalone");
        };
        if self.read_only() {
            return Some("read-only");
        }
        let s = self.role;
        match s.state {
            _ if !s.serving => None,
            PeerState::Leading => Some("leader"),
            PeerState::Observing => Some("observer"),
            _ => Some("follower"),
        }
    }

    fn four_letter(&mut self, cmd: &str, peer: SocketAddr) -> String {
        let leading = self.leading();
        if cmd == "srst" {
            // Apache's srst resets the leader's proposal sizes along with the server stats
            // (and every ServerMetrics summary: the timings).
            self.reset_timings();
        }
        let Some(mode) = self.mode() else {
            self.clients.four_letter(cmd);
            return match cmd {
                // Apache's answer when no server is running behind the peer.
                "isro" => "null".to_string(),
                c if four_letter::needs_serving(c) => four_letter::NOT_SERVING.to_string(),
                _ => self.render(cmd, peer, "standalone", None),
            };
        };
        self.clients.four_letter(cmd);
        let leader = match self.member() {
            Some(m) if cmd == "mntr" && leading => leader_stats(&m.peer),
            _ => None,
        };
        self.render(cmd, peer, mode, leader)
    }

    fn render(
        &mut self,
        cmd: &str,
        peer: SocketAddr,
        mode: &str,
        leader: Option<LeaderStats>,
    ) -> String {
        let now = now_ms();
        let quorum = self.quorum_now(mode, leader, now);
        let asking = clients::asking(peer, now);
        let mut view = four_letter::View::of(
            &self.processor,
            &self.config,
            &self.clients,
            &asking,
            self.started,
            now,
        );
        (view.disk, view.quorum) = self.timings();
        let role = Role {
            mode,
            quorum: quorum.as_ref(),
        };
        four_letter::render_as(cmd, &view, role)
    }

    /// What the disk and (on a member) the quorum side measured, for `mntr` and
    /// `/metrics`.
    fn timings(
        &self,
    ) -> (
        crate::admin::stats::DiskTimings,
        crate::admin::stats::QuorumTimings,
    ) {
        let quorum = match &self.repl {
            Replication::Member(m) => m.io.timings().clone(),
            Replication::Standalone(_) => Default::default(),
        };
        (self.disk.timings(), quorum)
    }

    /// `srst`: the leader's proposal sizes and every timing start again.
    fn reset_timings(&mut self) {
        self.disk.reset_timings();
        self.processor.reset_metrics();
        if let Some(m) = self.member() {
            m.quorum.proposal_sizes = Default::default();
            m.io.reset_timings();
        }
    }

    /// What `mntr`, `conf` and the AdminServer report about the ensemble now, for a
    /// member in `mode` (`None` for a standalone node).
    fn quorum_now(&self, mode: &str, leader: Option<LeaderStats>, now: i64) -> Option<QuorumView> {
        let Replication::Member(m) = &self.repl else {
            return None;
        };
        let mut quorum = m.quorum.clone();
        quorum.peer_state = match mode {
            "leader" => "leading - broadcast",
            "observer" => "observing - broadcast",
            _ => "following - broadcast",
        }
        .to_string();
        quorum.leader = leader;
        quorum.leader_uptime_ms = m.leading_since.map(|t| now - t).unwrap_or(0);
        quorum.leader_id = self.role.leader;
        Some(quorum)
    }

    /// An AdminServer command or a metrics scrape, rendered from the same view as the
    /// four-letter words.
    fn admin(&mut self, request: crate::admin::commands::AdminRequest) -> String {
        use crate::admin::commands::{self, AdminRequest};
        let mode = self.mode();
        let leading = self.leading();
        let leader = match self.member() {
            Some(m) if leading => leader_stats(&m.peer),
            _ => None,
        };
        if let (AdminRequest::Command { name, .. }, Some(_)) = (&request, mode) {
            match commands::resolve(name).map(|(c, _)| c) {
                Some("stat_reset") => {
                    self.clients.stats.reset();
                    self.clients.net.reset();
                    self.reset_timings();
                }
                Some("connection_stat_reset") => self.clients.reset_connection_stats(),
                _ => {}
            }
        }
        let now = now_ms();
        let quorum = self.quorum_now(mode.unwrap_or("looking"), leader, now);
        let mut view = four_letter::View::without_asking(
            &self.processor,
            &self.config,
            &self.clients,
            self.started,
            now,
        );
        (view.disk, view.quorum) = self.timings();
        let role = mode.map(|mode| Role {
            mode,
            quorum: quorum.as_ref(),
        });
        match request {
            AdminRequest::Metrics => {
                let role = role.unwrap_or(Role {
                    mode: "looking",
                    quorum: quorum.as_ref(),
                });
                crate::admin::metrics::exposition(&view, role)
            }
            AdminRequest::Command { name, params } => {
                let json = commands::render(&name, &params, &view, role);
                serde_json::to_string_pretty(&json).unwrap_or_default()
            }
        }
    }

    /// A handshake. A learner asks the leader to revalidate a session moving here; the
    /// leader records itself as the owner of a session reconnecting to it. A standalone
    /// node answers it at once.
    fn connect(&mut self, conn: ConnId, req: ConnectRequest) {
        if *self.failed.borrow() {
            // The txn log failed: no session is served any more.
            self.clients.close(conn);
            return;
        }
        let read_only = self.read_only();
        if !self.serving() && !read_only {
            // Not part of an established quorum (yet): wait for it to serve, for a while
            // (see `MemberGate::await_serving`), else the client tries another member.
            let now = self.mono();
            if let Some(m) = self.member() {
                if m.gate.await_serving(conn, req, now) {
                    return;
                }
            }
            self.clients.close(conn);
            return;
        }
        if req.session_id == 0 && self.processor.writes_refused().is_some() {
            // The disk is full: a new session is a txn that could not be logged.
            tracing::info!("refusing a new session from connection {conn}: the disk is full");
            self.clients.close(conn);
            return;
        }
        let leading = self.leading();
        let session = req.session_id;
        // The password is derived from the session id: every member can check it.
        let password_ok =
            session != 0 && req.passwd.as_ref() == session_password(session).as_slice();
        let contains = self.processor.sessions().contains(session);
        let timeout = self.processor.negotiated_timeout(req.timeout);
        // A local session lives here only: nothing for the leader to revalidate.
        let local = self.processor.is_local_session(session);
        if let (Some(m), true) = (self.member(), password_ok && !read_only && !local) {
            if !leading {
                // Apache's learners check the password locally, then ask the leader
                // with the timeout this connection negotiates.
                m.gate.await_revalidation(session, conn, req.clone());
                self.forward(revalidate_request(session, timeout));
                return;
            }
            if contains {
                m.owners.set(session, Owner::Leader);
            }
        }
        self.finish_connect(conn, req);
    }

    /// Answers a handshake whose session (if any) is valid ensemble-wide: a session the
    /// leader knows but whose createSession is not applied here yet waits for it, so a
    /// client moving right after creating its session is not told it expired.
    fn finish_connect(&mut self, conn: ConnId, req: ConnectRequest) {
        let session = req.session_id;
        let applied = self.processor.db().sessions().contains_key(&session)
            || self.processor.is_local_session(session);
        let member = matches!(self.repl, Replication::Member(_)) && !self.read_only();
        if member && session != 0 && !applied {
            let known = !self.leading() || self.processor.sessions().contains(session);
            if known {
                let now = self.mono();
                if let Some(m) = self.member() {
                    m.gate.await_apply(conn, req, now);
                }
                return;
            }
        }
        let ip = self.clients.ip(conn);
        let out = self.processor.connect(conn, &ip, &req, self.now());
        self.outputs(out);
        if member && session != 0 && !self.processor.is_local_session(session) {
            // The timeout this connection negotiated (clamped), which the session's
            // expiry follows from now on.
            let t = self
                .processor
                .sessions()
                .timeout(session)
                .unwrap_or(req.timeout);
            if let Some(m) = self.member() {
                m.peer.touch_session(session, t);
            }
        }
    }

    /// Retries the handshakes waiting for their session's createSession to be applied;
    /// past their deadline they are answered (as expired, by the processor).
    fn retry_unapplied(&mut self) {
        let now = self.now();
        let Replication::Member(m) = &mut self.repl else {
            return;
        };
        if !m.gate.awaits_apply() {
            return;
        }
        let ready = {
            let sessions = self.processor.db().sessions();
            let clients = &self.clients;
            m.gate.applied_or_due(
                m.io.now() as i64,
                |s| sessions.contains_key(&s),
                |c| clients.contains(c),
            )
        };
        for (conn, req) in ready {
            let ip = self.clients.ip(conn);
            let out = self.processor.connect(conn, &ip, &req, now);
            self.outputs(out);
        }
    }

    /// The leader answered a REVALIDATE: finish the oldest handshake waiting on it.
    fn revalidated(&mut self, session: i64, valid: bool) {
        let Some(m) = self.member() else { return };
        let Some((conn, req)) = m.gate.revalidated(session) else {
            return;
        };
        if !self.clients.contains(conn) {
            // The client gave up meanwhile.
            return;
        }
        if valid {
            self.finish_connect(conn, req);
        } else {
            // Expired on the leader: Apache's "session expired" handshake reply.
            self.outputs(vec![
                Output::Connected {
                    conn,
                    resp: ConnectResponse {
                        protocol_version: 0,
                        timeout: 0,
                        session_id: 0,
                        passwd: vec![0u8; zk_proto::PASSWORD_LEN].into(),
                        read_only: req.read_only.map(|_| false),
                    },
                },
                Output::Close { conn },
            ]);
        }
    }

    /// A client request: held behind a sync forwarded to the leader, or processed.
    fn request(&mut self, conn: ConnId, xid: i32, req: Request) {
        let read_only = self.read_only();
        let leading = self.leading();
        let session = self.processor.session_of(conn);
        let timeout = session.and_then(|s| self.processor.sessions().timeout(s));
        let local = session.is_some_and(|s| self.processor.is_local_session(s));
        if let Some(m) = self.member() {
            let Some((xid, req)) = m.gate.hold(conn, xid, req) else {
                return;
            };
            if !read_only {
                // The leader hears of global sessions only (Apache's learner touch table).
                if let (Some(s), false) = (session, local) {
                    m.peer.touch_session(s, timeout.unwrap_or(0));
                }
                if let (Some(s), true) = (session, leading && is_write(&req)) {
                    if !m.owners.check(s, Owner::Leader) {
                        // The client moved to another member: this connection is stale.
                        // Apache fails the write with SessionMoved by closing the
                        // connection.
                        tracing::info!("session {s:#x} moved: closing its old connection {conn}");
                        self.clients.close(conn);
                        return;
                    }
                }
                // With linearizableReads a read waits for a read index as a sync does,
                // and is itself what the gate releases when the leader answers.
                let read_index = matches!(req, Request::Sync(_))
                    || (self.config.linearizable_reads && is_read(&req));
                if let (true, Some(s), false) = (read_index, session, leading) {
                    // A follower's sync goes through the leader: once it answers,
                    // everything committed before the sync has been applied here. Later
                    // requests of the connection wait behind it to keep replies in order.
                    let sync = Request::Sync(zk_proto::ops::PathRequest { path: "/".into() });
                    let ask = if matches!(req, Request::Sync(_)) {
                        &req
                    } else {
                        &sync
                    };
                    self.forward(request_packet::write(s, xid, ask, Vec::new()));
                    if let Some(m) = self.member() {
                        m.gate.sync_forwarded(conn, xid, req);
                    }
                    return;
                }
                if let (true, Some(_), true) = (read_index, session, leading) {
                    // The leader's own clients' syncs wait for a read index as learners'
                    // do (zab::broadcast::leader): a deposed leader must not answer one.
                    if let Some(m) = self.member() {
                        let more = m.peer.local_sync(m.io.now());
                        m.actions.extend(more);
                        m.gate.sync_forwarded(conn, xid, req);
                    }
                    return;
                }
            }
            tracing::trace!("request {conn} xid {xid}: {:?}", req.opcode());
            if matches!(req, Request::Reconfig(_)) {
                self.set_reconfig_context();
            }
            let out = self.processor.request(conn, xid, req, self.now());
            self.outputs(out);
            return;
        }
        let out = self.processor.request(conn, xid, req, self.now());
        self.outputs(out);
    }

    /// The leader answered the oldest forwarded sync: answer it and release what waited.
    fn sync_done(&mut self) {
        let Some(m) = self.member() else { return };
        let Some((conn, mut q)) = m.gate.sync_done() else {
            return;
        };
        if let Some((xid, req)) = q.pop_front() {
            let out = self.processor.request(conn, xid, req, self.now());
            self.outputs(out);
        }
        for (xid, req) in q {
            self.request(conn, xid, req);
        }
    }

    /// Leader: a write a learner forwarded. A session whose client has moved to another
    /// member gets a SessionMoved error txn, which closes the stale connection there.
    fn forwarded(&mut self, learner: LearnerConn, p: &QuorumPacket) {
        let Some(f) = request_packet::decode(p) else {
            tracing::warn!("dropping a malformed forwarded request");
            return;
        };
        let now = self.now();
        let Some(m) = self.member() else { return };
        let owner = Owner::Learner(learner);
        let e = match f {
            Forwarded::CreateSession { session, timeout } => {
                m.owners.set(session, owner);
                self.processor.prepare_create_session(session, timeout, now)
            }
            Forwarded::Write { session, cxid, .. } if !m.owners.check(session, owner) => {
                tracing::info!("session {session:#x} moved: failing a write from its old member");
                self.processor
                    .prepare_error(session, cxid, ErrorCode::SessionMoved, now)
            }
            Forwarded::Write {
                session,
                cxid,
                request,
                auth,
            } => {
                if matches!(request, Request::Reconfig(_)) {
                    self.set_reconfig_context();
                }
                self.processor
                    .prepare_forwarded(session, cxid, &request, &auth, now)
            }
        };
        self.propose(e);
    }

    /// Learner: forwards a packet to the leader (dropped when cut off or not following).
    fn forward(&mut self, p: QuorumPacket) {
        if let Some(m) = self.member() {
            let more = m.io.forward(&mut m.peer, p);
            m.actions.extend(more);
        }
    }

    /// Proposes a txn the processor prepared: a leader to its quorum, a standalone node
    /// to its log.
    fn propose(&mut self, e: TxnEntry) {
        let zxid = e.header.zxid;
        let e_session = e.header.client_id;
        let mut b = BytesMut::new();
        e.write(&mut b);
        let m = match &mut self.repl {
            Replication::Standalone(l) => {
                l.to_log.push(Proposal {
                    zxid,
                    data: b.freeze(),
                });
                l.pending.push_back(e);
                return;
            }
            Replication::Member(m) => m,
        };
        m.quorum.proposal_sizes.record(b.len());
        m.quorum.proposal_count += 1;
        // The processor assigned the zxid; the peer only checks that it is the next one.
        let data = b.freeze();
        let reconfig = (e.header.txn_type == zk_proto::OpCode::Reconfig)
            .then(|| crate::zab::broadcast::reconfig_of(m.peer.config(), &data))
            .flatten();
        let (r, more) = match reconfig {
            Some(qv) => m.peer.propose_reconfig(m.io.now(), zxid, data, qv),
            None => m.peer.propose_txn(m.io.now(), zxid, data),
        };
        m.actions.extend(more);
        match r {
            Ok(_) => {}
            Err(e @ ProposeError::OutOfOrder { .. }) => tracing::error!(
                "peer {}: txn {zxid:#x} of session {:#x} not proposed: {e:?}",
                m.peer.sid(),
                e_session
            ),
            // The txn's client is answered by the step-down that follows (its connection
            // closes and it retries on the next epoch's leader).
            Err(ProposeError::CounterExhausted) => tracing::info!(
                "peer {}: write of session {e_session:#x} not proposed: the zxid counter of \
                 this epoch is used up; stepping down for a new epoch once the proposals in \
                 flight are committed",
                m.peer.sid()
            ),
            // Leadership is gone; the role change disconnects the clients.
            Err(e) => tracing::warn!(
                "peer {}: cannot propose {zxid:#x} of session {e_session:#x}: {e:?}",
                m.peer.sid()
            ),
        }
    }

    fn outputs(&mut self, out: Vec<Output>) {
        for o in out {
            self.output(o);
        }
    }

    fn output(&mut self, o: Output) {
        match o {
            Output::Propose(e) => self.propose(e),
            Output::Forward {
                session,
                cxid,
                request,
                auth,
            } => self.forward(request_packet::write(session, cxid, &request, auth)),
            Output::ForwardCreateSession { session, timeout } => {
                self.forward(request_packet::create_session(session, timeout))
            }
            // Apache's learners close a connection whose session moved elsewhere instead
            // of answering it.
            Output::Reply { conn, header, .. } if header.err == ErrorCode::SessionMoved => {
                tracing::info!("session moved: closing the old connection {conn}");
                self.clients.close(conn);
            }
            Output::Reply { conn, header, body } => self.clients.reply(conn, header, &body),
            Output::Connected { conn, resp } => self.clients.connected(conn, &resp),
            Output::Event { conn, event } => self.clients.event(conn, &event),
            Output::Close { conn } => {
                tracing::debug!("processor closes {conn}");
                self.clients.close(conn)
            }
        }
    }
}

/// Leader: a learner's session activity. The timeout its connection negotiated (learners
/// send it clamped) becomes the session's, as Apache's `touchSession(id, timeout)`; a
/// packet without one keeps the old timeout.
fn touch(p: &mut Processor, session: i64, timeout: i32, now: Now) -> bool {
    if timeout > 0 {
        p.touch_session_with(session, timeout, now)
    } else {
        p.touch_session(session, now)
    }
}

/// Reads that `linearizableReads` serves only after a read index.
fn is_read(req: &Request) -> bool {
    matches!(
        req,
        Request::Exists(_)
            | Request::GetData(_)
            | Request::GetAcl(_)
            | Request::GetChildren(_)
            | Request::GetChildren2(_)
            | Request::MultiRead(_)
            | Request::GetEphemerals(_)
            | Request::GetAllChildrenNumber(_)
    )
}
