//! The simulated world: servers with disks, a network of election datagrams and
//! leader-learner connections, clients writing to the leader, and a fault injector, all
//! driven by one seeded event queue.
//!
//! Network model: election notifications are datagrams that may be lost, duplicated,
//! delayed and reordered. A leader-learner connection behaves like TCP: FIFO in each
//! direction, delayed; a partitioned direction stalls (data waits until the partition
//! heals); a connection reset drops everything in flight and tells both ends.
//!
//! Disk model: Persist goes to a buffer, made durable by a later fsync event (then the
//! peer hears `on_persisted`); a crash loses the buffer; epochs, TRUNC and SNAP are
//! durable at once. A restart replays the durable log into the state machine, as Apache
//! does.
//!
//! Client model (when [`SimConfig::reconnect_interval`] is set): sessions move to
//! serving followers, with reads and syncs pipelined behind the handshake. Each member
//! holds them in a real [`MemberGate`] exactly where its node task does (handshakes
//! until the leader's REVALIDATE answer, requests behind a sync forwarded to the
//! leader), and the checks are that answers pair with handshakes in order per session,
//! requests are answered only after their handshake and in order, and, once the
//! ensemble serves again, no open connection still waits for anything.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, VecDeque};

use bytes::{Bytes, BytesMut};
use zk_proto::election::Notification;
use zk_proto::jute::{JuteReader, JuteWrite};

use zk_proto::ops::{PathRequest, PathWatchRequest};
use zk_proto::quorum::{QuorumPacket, QuorumPacketType};
use zk_proto::{ConnectRequest, Request};

use super::checker::{Checker, Entry};
use super::rng::SimRng;
use super::SimConfig;
use crate::core::member_gate::MemberGate;
use crate::testkit::txn_payload;
use crate::zab::broadcast::{packets, DiskState, Proposal};
use crate::zab::zxid::{counter_of, epoch_of};
use crate::zab::{
    Action, ConnId, Millis, PeerState, QuorumConfig, QuorumPeer, QuorumServer, Sid, ZabMessage,
    Zxid,
};

#[derive(Debug, Clone)]
enum Event {
    Tick(Sid),
    Election {
        from: Sid,
        to: Sid,
        n: Notification,
    },
    Connect {
        conn: ConnId,
        learner: Sid,
        leader: Sid,
        inc: u32,
    },
    Deliver {
        conn: ConnId,
        to_leader: bool,
    },
    Fsync {
        sid: Sid,
        inc: u32,
        zxid: Zxid,
    },
    LogRead {
        sid: Sid,
        inc: u32,
        conn: ConnId,
        txns: Option<Vec<Proposal>>,
    },
    Fault,
    Write,
    Reconnect,
}

#[derive(Debug, Clone)]
enum Item {
    Msg(ZabMessage),
    Close,
}

#[derive(Debug)]
struct Conn {
    learner: Sid,
    leader: Sid,
    learner_inc: u32,
    leader_inc: u32,
    /// [to leader, to learner]: (ready time, item).
    queues: [VecDeque<(Millis, Item)>; 2],
    /// Whether each end ([leader, learner]) still reads from it.
    open: [bool; 2],
}

#[derive(Debug, Default, Clone)]
struct Disk {
    accepted_epoch: i64,
    current_epoch: i64,
    durable: Vec<Proposal>,
    buffer: Vec<Proposal>,
}

struct Node {
    sid: Sid,
    /// The committed config as on disk (the dynamic file): a restart reads it back.
    cfg: QuorumConfig,
    /// The config last seen proposed (`.dynamic.next`), read back on restart.
    next: Option<QuorumConfig>,
    inc: u32,
    peer: Option<QuorumPeer>,
    disk: Disk,
    applied: Vec<Entry>,
    applied_data: Vec<Proposal>,
    /// What the member holds back for its clients while the quorum answers (a fresh
    /// one per incarnation).
    gate: MemberGate,
}

/// Where a simulated client connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientState {
    /// Its handshake waits for the leader's REVALIDATE answer.
    Handshaking,
    /// The handshake was answered: the session lives here now.
    Connected,
    /// The leader said the session expired; the connection was closed.
    Expired,
    /// The member closed the connection (it stopped serving or crashed).
    Closed,
}

/// A session moving to a follower: its handshake and the requests the client pipelined
/// right behind it (they wait in the socket until the handshake is answered, as the
/// member's connections do), each a read or a sync.
#[derive(Debug)]
struct SimClient {
    sid: Sid,
    inc: u32,
    session: i64,
    /// xids 1.. of the pipelined requests, whether each is a sync.
    sent: Vec<bool>,
    /// How many were answered (always the first ones: replies come in order).
    answered: usize,
    state: ClientState,
}

/// Counters of one run.
#[derive(Debug, Default, Clone, Copy)]
pub struct RunStats {
    /// Events processed.
    pub steps: u64,
    /// Simulated milliseconds.
    pub sim_ms: Millis,
    /// Txns in the final committed history.
    pub committed: usize,
    /// Distinct epochs that got an established leader.
    pub epochs: usize,
    /// Crashes injected.
    pub crashes: u64,
    /// Partitions injected.
    pub partitions: u64,
    /// SNAP syncs performed.
    pub snaps: u64,
    /// TRUNC syncs performed.
    pub truncs: u64,
    /// Syncs that read the leader's txn log for a DIFF.
    pub log_diffs: u64,
    /// Sessions that moved to a follower ([`super::SimConfig::reconnect_interval`]).
    pub clients: usize,
    /// Their handshakes the leader revalidated (the session lives there now).
    pub clients_connected: usize,
    /// Requests pipelined behind those handshakes and answered, syncs among them.
    pub client_requests_answered: usize,
    /// Reconfig txns proposed.
    pub reconfigs: u64,
    /// Config activations (a server putting a new config in force).
    pub activations: u64,
    /// Reconfigs proposed that remove the proposing leader or make it an observer.
    pub leader_removals: u64,
    /// Leaders whose zxid counter was moved near the limit ([`super::SimConfig::counter_seed`]).
    pub counter_seeds: u64,
    /// Epochs of the committed history that used their last counter (0xfffffffe) and were
    /// followed by another epoch: rollovers completed.
    pub rollovers: usize,
    /// Committed txns with counter 0xffffffff (must stay 0).
    pub counter_limit_used: usize,
}

/// One simulation run.
pub struct World {
    cfg: SimConfig,
    rng: SimRng,
    now: Millis,
    seq: u64,
    queue: BinaryHeap<Reverse<(Millis, u64)>>,
    events: BTreeMap<u64, Event>,
    nodes: BTreeMap<Sid, Node>,
    conns: BTreeMap<ConnId, Conn>,
    blocked: BTreeSet<(Sid, Sid)>,
    checker: Checker,
    writes: u64,
    faults_on: bool,
    stats: RunStats,
    trace: VecDeque<String>,
    violation: Option<String>,
    /// Client connections of [`SimConfig::reconnect_interval`], by id.
    clients: BTreeMap<ClientConn, SimClient>,
    /// Every server, as a member spec (reconfigs pick among them).
    pool: Vec<QuorumServer>,
    /// The members of every config version activated anywhere: one version, one config.
    configs: BTreeMap<i64, BTreeMap<Sid, QuorumServer>>,
}

/// A simulated client connection's id (the member gate's connection id).
type ClientConn = u64;

/// Sessions the simulated clients use: few, so handshakes of one session queue up on a
/// member. The leader calls sessions divisible by this expired.
const CLIENT_SESSIONS: u64 = 5;

fn hash(data: &[u8]) -> u64 {
    // FNV-1a: stable and cheap.
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn encode_snapshot(txns: &[Proposal]) -> Bytes {
    let mut b = BytesMut::new();
    b.write_i32(i32::try_from(txns.len()).unwrap_or(i32::MAX));
    for p in txns {
        b.write_i64(p.zxid);
        b.write_buffer(&p.data);
    }
    b.freeze()
}

fn decode_snapshot(data: Bytes) -> Result<Vec<Proposal>, String> {
    let mut r = JuteReader::new(data);
    let n = r.read_i32().map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for _ in 0..n.max(0) {
        let zxid = r.read_i64().map_err(|e| e.to_string())?;
        let data = r.read_buffer().map_err(|e| e.to_string())?;
        out.push(Proposal { zxid, data });
    }
    Ok(out)
}

impl World {
    /// Builds the ensemble for `seed` and starts every server.
    pub fn new(cfg: SimConfig, seed: u64) -> Self {
        let total = cfg.voters + cfg.observers;
        let servers: Vec<QuorumServer> = (1..=total as Sid)
            .map(|i| QuorumServer {
                sid: i,
                host: "sim".into(),
                quorum_port: 2000 + i as u16,
                election_port: 3000 + i as u16,
                learner_type: if i as usize > cfg.voters {
                    crate::zab::LearnerType::Observer
                } else {
                    crate::zab::LearnerType::Participant
                },
                client_addr: None,
            })
            .collect();
        let mut w = World {
            rng: SimRng::new(seed),
            cfg,
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            events: BTreeMap::new(),
            nodes: BTreeMap::new(),
            conns: BTreeMap::new(),
            blocked: BTreeSet::new(),
            checker: Checker::default(),
            writes: 0,
            faults_on: true,
            stats: RunStats::default(),
            trace: VecDeque::new(),
            violation: None,
            clients: BTreeMap::new(),
            pool: servers.clone(),
            configs: BTreeMap::new(),
        };
        for s in &servers {
            let mut qc = QuorumConfig::new(s.sid, servers.clone());
            qc.tick_time = w.cfg.tick_time;
            qc.init_limit = w.cfg.init_limit;
            qc.sync_limit = w.cfg.sync_limit;
            qc.finalize_wait = w.cfg.finalize_wait;
            qc.max_notification_interval = w.cfg.max_notification_interval;
            qc.committed_log_size = w.cfg.committed_log_size;
            qc.txn_log_sync = w.cfg.txn_log_sync;
            qc.reconfig_enabled = w.cfg.reconfig_rate > 0.0;
            qc.standalone_enabled = false;
            w.nodes.insert(
                s.sid,
                Node {
                    sid: s.sid,
                    cfg: qc,
                    next: None,
                    inc: 0,
                    peer: None,
                    disk: Disk::default(),
                    applied: Vec::new(),
                    applied_data: Vec::new(),
                    gate: MemberGate::new(0, 0),
                },
            );
        }
        let sids: Vec<Sid> = w.nodes.keys().copied().collect();
        for sid in sids {
            w.start_node(sid);
        }
        let first_fault = w.rng.range(w.cfg.fault_interval.0, w.cfg.fault_interval.1);
        w.schedule(first_fault, Event::Fault);
        w.schedule(w.cfg.write_interval, Event::Write);
        if w.cfg.reconnect_interval > 0 {
            w.schedule(w.cfg.reconnect_interval, Event::Reconnect);
        }
        w
    }

    fn schedule(&mut self, delay: Millis, e: Event) {
        self.seq += 1;
        self.queue.push(Reverse((self.now + delay, self.seq)));
        self.events.insert(self.seq, e);
    }

    fn note(&mut self, s: String) {
        if self.trace.len() >= 60 {
            self.trace.pop_front();
        }
        self.trace.push_back(format!("t={} {s}", self.now));
    }

    /// The last notable events (for failure reports).
    pub fn trace(&self) -> Vec<String> {
        self.trace.iter().cloned().collect()
    }

    /// Counters so far.
    pub fn stats(&self) -> RunStats {
        let mut s = self.stats;
        s.sim_ms = self.now;
        s.committed = self.checker.committed().len();
        s.epochs = self.checker.leaders().len();
        let committed = self.checker.committed();
        s.rollovers = committed
            .windows(2)
            .filter(|w| counter_of(w[0].0) == 0xffff_fffe && epoch_of(w[1].0) > epoch_of(w[0].0))
            .count();
        s.counter_limit_used = committed
            .iter()
            .filter(|e| counter_of(e.0) == 0xffff_ffff)
            .count();
        s.clients = self.clients.len();
        s.clients_connected = self
            .clients
            .values()
            .filter(|c| c.state == ClientState::Connected)
            .count();
        s.client_requests_answered = self.clients.values().map(|c| c.answered).sum();
        s
    }

    fn start_node(&mut self, sid: Sid) {
        let now = self.now;
        let Some(node) = self.nodes.get_mut(&sid) else {
            return;
        };
        node.inc += 1;
        node.disk.buffer.clear();
        let d = &node.disk;
        let keep = node.cfg.committed_log_size;
        let recent = d.durable[d.durable.len().saturating_sub(keep)..].to_vec();
        let disk = DiskState {
            accepted_epoch: d.accepted_epoch,
            current_epoch: d.current_epoch,
            last_zxid: d.durable.last().map(|p| p.zxid).unwrap_or(0),
            recent,
        };
        node.applied_data = d.durable.clone();
        node.applied = node
            .applied_data
            .iter()
            .map(|p| (p.zxid, hash(&p.data)))
            .collect();
        let (mut peer, out) = QuorumPeer::new(node.cfg.clone(), disk, now);
        if let Some(next) = node.next.clone() {
            peer.restore_last_seen(next);
        }
        node.peer = Some(peer);
        node.gate = MemberGate::new(i64::MAX, now as i64);
        self.checker.reset(sid);
        let jitter = self.rng.range(1, self.cfg.node_tick);
        self.schedule(jitter, Event::Tick(sid));
        self.perform(sid, out);
    }

    fn crash(&mut self, sid: Sid) {
        let Some(node) = self.nodes.get_mut(&sid) else {
            return;
        };
        if node.peer.take().is_none() {
            return;
        }
        node.disk.buffer.clear();
        self.stats.crashes += 1;
        self.note(format!("crash {sid}"));
        self.close_clients(sid);
        let conns: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.learner == sid || c.leader == sid)
            .map(|(id, _)| *id)
            .collect();
        for id in conns {
            self.close_from(id, sid);
        }
    }

    fn alive(&self, sid: Sid) -> bool {
        self.nodes.get(&sid).is_some_and(|n| n.peer.is_some())
    }

    fn link_ok(&self, from: Sid, to: Sid) -> bool {
        !self.blocked.contains(&(from, to))
    }

    /// Performs a peer's actions.
    fn perform(&mut self, sid: Sid, actions: Vec<Action>) {
        for a in actions {
            self.perform_one(sid, a);
        }
    }

    fn perform_one(&mut self, sid: Sid, a: Action) {
        match a {
            Action::SendNotification { to, n } => {
                if to == sid {
                    self.schedule(0, Event::Election { from: sid, to, n });
                    return;
                }
                if self.faults_on && self.rng.chance(self.cfg.drop_rate) {
                    return;
                }
                let copies = if self.faults_on && self.rng.chance(self.cfg.dup_rate) {
                    2
                } else {
                    1
                };
                for _ in 0..copies {
                    let d = self.rng.range(1, self.cfg.max_delay);
                    self.schedule(
                        d,
                        Event::Election {
                            from: sid,
                            to,
                            n: n.clone(),
                        },
                    );
                }
            }
            Action::ConnectLeader { leader, conn } => {
                let inc = self.nodes.get(&sid).map(|n| n.inc).unwrap_or(0);
                let d = self.rng.range(1, self.cfg.max_delay);
                self.schedule(
                    d,
                    Event::Connect {
                        conn,
                        learner: sid,
                        leader,
                        inc,
                    },
                );
            }
            Action::Send { conn, msg } => self.conn_send(conn, sid, Item::Msg(msg)),
            Action::SendSnapshot { conn, zxid } => {
                let Some(node) = self.nodes.get(&sid) else {
                    return;
                };
                let last = node.applied_data.last().map(|p| p.zxid).unwrap_or(0);
                if last != zxid {
                    self.violation = Some(format!(
                        "server {sid}: snapshot requested at {zxid:x} but its state is at {last:x}"
                    ));
                }
                let data = encode_snapshot(&node.applied_data);
                self.stats.snaps += 1;
                self.conn_send(conn, sid, Item::Msg(ZabMessage::Snapshot { zxid, data }));
            }
            Action::Close { conn } => self.close_from(conn, sid),
            Action::Persist(p) => {
                let inc = self.nodes.get(&sid).map(|n| n.inc).unwrap_or(0);
                let zxid = p.zxid;
                if let Some(n) = self.nodes.get_mut(&sid) {
                    n.disk.buffer.push(p);
                }
                let d = self.rng.range(1, self.cfg.max_fsync);
                self.schedule(d, Event::Fsync { sid, inc, zxid });
            }
            Action::ReadLog { conn, from, to } => {
                let Some(n) = self.nodes.get(&sid) else {
                    return;
                };
                let txns: Vec<Proposal> = n
                    .disk
                    .durable
                    .iter()
                    .chain(n.disk.buffer.iter())
                    .filter(|p| p.zxid >= from && p.zxid <= to)
                    .cloned()
                    .collect();
                let txns = (txns.first().map(|p| p.zxid) == Some(from)).then_some(txns);
                if txns.is_some() {
                    self.stats.log_diffs += 1;
                }
                let inc = n.inc;
                let d = self.rng.range(1, self.cfg.max_fsync);
                self.schedule(
                    d,
                    Event::LogRead {
                        sid,
                        inc,
                        conn,
                        txns,
                    },
                );
            }
            Action::Truncate(z) => {
                self.stats.truncs += 1;
                if let Some(n) = self.nodes.get_mut(&sid) {
                    n.disk.durable.retain(|p| p.zxid <= z);
                    n.disk.buffer.retain(|p| p.zxid <= z);
                    n.applied_data.retain(|p| p.zxid <= z);
                    n.applied.retain(|e| e.0 <= z);
                }
                self.checker.reset(sid);
            }
            Action::InstallSnapshot { zxid: _, data } => {
                let txns = decode_snapshot(data).unwrap_or_default();
                if let Some(n) = self.nodes.get_mut(&sid) {
                    n.applied = txns.iter().map(|p| (p.zxid, hash(&p.data))).collect();
                    n.disk.durable = txns.clone();
                    n.disk.buffer.clear();
                    n.applied_data = txns;
                }
                self.checker.reset(sid);
            }
            Action::Deliver(p) => {
                if let Some(n) = self.nodes.get_mut(&sid) {
                    n.applied.push((p.zxid, hash(&p.data)));
                    n.applied_data.push(p);
                }
            }
            Action::SaveAcceptedEpoch(e) => {
                if let Some(n) = self.nodes.get_mut(&sid) {
                    n.disk.accepted_epoch = e;
                }
            }
            Action::SaveCurrentEpoch(e) => {
                if let Some(n) = self.nodes.get_mut(&sid) {
                    n.disk.current_epoch = e;
                }
            }
            Action::StateChanged {
                state,
                leader,
                serving,
            } => {
                if state != PeerState::Looking || serving {
                    self.note(format!(
                        "{sid} -> {state:?} leader={leader:?} serving={serving}"
                    ));
                }
                // As the node task does: a member that stops serving drops what its
                // clients wait for and closes their connections.
                let now = self.now as i64;
                if let Some(n) = self.nodes.get_mut(&sid) {
                    n.gate
                        .role_changed(state == PeerState::Looking, serving, now);
                }
                if !serving {
                    self.close_clients(sid);
                }
            }
            Action::LearnerRequest { conn, .. } => {
                let now = self.now;
                if let Some(p) = self.nodes.get_mut(&sid).and_then(|n| n.peer.as_mut()) {
                    let out = p.sync_request(now, conn);
                    self.perform(sid, out);
                }
            }
            Action::Revalidate {
                conn, session_id, ..
            } => {
                let now = self.now;
                let valid = !(session_id as u64).is_multiple_of(CLIENT_SESSIONS);
                if let Some(p) = self.nodes.get_mut(&sid).and_then(|n| n.peer.as_mut()) {
                    let out = p.revalidate_reply(now, conn, session_id, valid);
                    self.perform(sid, out);
                }
            }
            Action::Revalidated { session_id, valid } => self.revalidated(sid, session_id, valid),
            Action::SyncDone => self.sync_done(sid),
            Action::SessionsTouched { .. } => {}
            // The simulated network reaches every server; configs change no address, but
            // they are kept on disk as a member keeps its dynamic files.
            Action::ConfigSeen(qv) => {
                if let Some(n) = self.nodes.get_mut(&sid) {
                    n.next = Some((*qv).clone());
                }
            }
            Action::ConfigActivated(qv) => {
                self.stats.activations += 1;
                self.note(format!("{sid} activates config {:x}", qv.version));
                match self.configs.get(&qv.version) {
                    Some(members) if *members != qv.servers => {
                        self.violation = Some(format!(
                            "server {sid}: config {:x} with members {:?}, elsewhere {:?}",
                            qv.version,
                            qv.servers.keys().collect::<Vec<_>>(),
                            members.keys().collect::<Vec<_>>()
                        ));
                    }
                    Some(_) => {}
                    None => {
                        self.configs.insert(qv.version, qv.servers.clone());
                    }
                }
                if let Some(n) = self.nodes.get_mut(&sid) {
                    n.cfg = (*qv).clone();
                    if n.next.as_ref().is_some_and(|x| x.version <= qv.version) {
                        n.next = None;
                    }
                }
            }
        }
    }

    fn conn_send(&mut self, id: ConnId, from: Sid, item: Item) {
        let delay = self.rng.range(1, self.cfg.max_delay);
        let now = self.now;
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let to_leader = from == c.learner;
        let (qi, receiver_end) = if to_leader { (0, 0) } else { (1, 1) };
        if !c.open[receiver_end] {
            return;
        }
        let q = &mut c.queues[qi];
        let ready = q.back().map(|(t, _)| *t).unwrap_or(0).max(now + delay);
        let was_empty = q.is_empty();
        q.push_back((ready, item));
        if was_empty {
            self.schedule(
                ready - now,
                Event::Deliver {
                    conn: id,
                    to_leader,
                },
            );
        }
    }

    /// `sid` closes its end: it reads nothing more; the other end gets a Close after the
    /// data already sent.
    fn close_from(&mut self, id: ConnId, sid: Sid) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let mine = if sid == c.leader { 0 } else { 1 };
        if !c.open[mine] {
            return;
        }
        c.open[mine] = false;
        c.queues[mine].clear();
        self.conn_send(id, sid, Item::Close);
        if let Some(c) = self.conns.get(&id) {
            if !c.open[0] && !c.open[1] {
                self.conns.remove(&id);
            }
        }
    }

    fn reset_conn(&mut self, id: ConnId) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        c.queues[0].clear();
        c.queues[1].clear();
        let (l, f) = (c.leader, c.learner);
        self.note(format!("reset connection {f}->{l}"));
        // Both ends see the reset.
        self.close_from(id, l);
        self.close_from(id, f);
    }

    fn deliver(&mut self, id: ConnId, to_leader: bool) {
        let now = self.now;
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let qi = if to_leader { 0 } else { 1 };
        let Some((ready, _)) = c.queues[qi].front() else {
            return;
        };
        if *ready > now {
            let d = *ready - now;
            self.schedule(
                d,
                Event::Deliver {
                    conn: id,
                    to_leader,
                },
            );
            return;
        }
        let (from, to, to_inc) = if to_leader {
            (c.learner, c.leader, c.leader_inc)
        } else {
            (c.leader, c.learner, c.learner_inc)
        };
        if !self.link_ok(from, to) {
            // A partitioned direction stalls, like TCP retransmitting.
            self.schedule(
                self.cfg.max_delay.max(10),
                Event::Deliver {
                    conn: id,
                    to_leader,
                },
            );
            return;
        }
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let Some((_, item)) = c.queues[qi].pop_front() else {
            return;
        };
        let next = c.queues[qi].front().map(|(t, _)| t.saturating_sub(now));
        if matches!(item, Item::Close) {
            c.open[qi] = false;
            c.queues[qi].clear();
            if !c.open[0] && !c.open[1] {
                self.conns.remove(&id);
            }
        } else if let Some(d) = next {
            self.schedule(
                d,
                Event::Deliver {
                    conn: id,
                    to_leader,
                },
            );
        }
        let Some(node) = self.nodes.get_mut(&to) else {
            return;
        };
        if node.inc != to_inc {
            return;
        }
        let Some(peer) = node.peer.as_mut() else {
            return;
        };
        let out = match (item, to_leader) {
            (Item::Msg(m), true) => peer.on_learner_message(now, id, m),
            (Item::Msg(m), false) => peer.on_leader_message(now, id, m),
            (Item::Close, true) => peer.on_learner_disconnected(now, id),
            (Item::Close, false) => peer.on_leader_disconnected(now, id),
        };
        self.perform(to, out);
    }

    fn connect(&mut self, conn: ConnId, learner: Sid, leader: Sid, inc: u32) {
        let now = self.now;
        let learner_inc = match self.nodes.get(&learner) {
            Some(n) if n.inc == inc && n.peer.is_some() => n.inc,
            _ => return,
        };
        let reachable =
            self.alive(leader) && self.link_ok(learner, leader) && self.link_ok(leader, learner);
        if !reachable {
            if let Some(p) = self.nodes.get_mut(&learner).and_then(|n| n.peer.as_mut()) {
                let out = p.on_leader_disconnected(now, conn);
                self.perform(learner, out);
            }
            return;
        }
        let leader_inc = self.nodes.get(&leader).map(|n| n.inc).unwrap_or(0);
        self.conns.insert(
            conn,
            Conn {
                learner,
                leader,
                learner_inc,
                leader_inc,
                queues: [VecDeque::new(), VecDeque::new()],
                open: [true, true],
            },
        );
        if let Some(p) = self.nodes.get_mut(&leader).and_then(|n| n.peer.as_mut()) {
            let out = p.on_learner_connected(now, conn);
            self.perform(leader, out);
        }
        if let Some(p) = self.nodes.get_mut(&learner).and_then(|n| n.peer.as_mut()) {
            let out = p.on_leader_connected(now, conn);
            self.perform(learner, out);
        }
    }

    fn fault(&mut self) {
        let sids: Vec<Sid> = self.nodes.keys().copied().collect();
        let alive: Vec<Sid> = sids.iter().copied().filter(|s| self.alive(*s)).collect();
        let dead: Vec<Sid> = sids.iter().copied().filter(|s| !self.alive(*s)).collect();
        match self.rng.range(0, 9) {
            0 | 1 => {
                // Prefer crashing the leader half of the time.
                let leader = alive.iter().copied().find(|s| {
                    self.nodes[s]
                        .peer
                        .as_ref()
                        .is_some_and(|p| p.state() == PeerState::Leading)
                });
                let victim = match leader {
                    Some(l) if self.rng.chance(0.5) => Some(l),
                    _ => self.rng.pick(&alive).copied(),
                };
                if let Some(v) = victim {
                    self.crash(v);
                }
            }
            2 | 3 => {
                if let Some(s) = self.rng.pick(&dead).copied() {
                    self.note(format!("restart {s}"));
                    self.start_node(s);
                }
            }
            4 => {
                // Symmetric partition into two sides.
                self.blocked.clear();
                let side: Vec<Sid> = sids
                    .iter()
                    .copied()
                    .filter(|_| self.rng.chance(0.5))
                    .collect();
                for a in &sids {
                    for b in &sids {
                        if side.contains(a) != side.contains(b) {
                            self.blocked.insert((*a, *b));
                        }
                    }
                }
                self.stats.partitions += 1;
                self.note(format!("partition {side:?} | rest"));
            }
            5 => {
                // Asymmetric: some directed links fail.
                let k = self.rng.range(1, sids.len() as u64);
                for _ in 0..k {
                    let a = *self.rng.pick(&sids).unwrap_or(&1);
                    let b = *self.rng.pick(&sids).unwrap_or(&1);
                    if a != b {
                        self.blocked.insert((a, b));
                    }
                }
                self.stats.partitions += 1;
                self.note(format!("asymmetric blocks {:?}", self.blocked));
            }
            6 => {
                // Isolate the leader (or anyone).
                let target = alive
                    .iter()
                    .copied()
                    .find(|s| {
                        self.nodes[s]
                            .peer
                            .as_ref()
                            .is_some_and(|p| p.state() == PeerState::Leading)
                    })
                    .or_else(|| self.rng.pick(&sids).copied());
                if let Some(t) = target {
                    for s in &sids {
                        if *s != t {
                            self.blocked.insert((t, *s));
                            self.blocked.insert((*s, t));
                        }
                    }
                    self.stats.partitions += 1;
                    self.note(format!("isolate {t}"));
                }
            }
            7 => {
                self.blocked.clear();
                self.note("heal".into());
            }
            _ => {
                let ids: Vec<ConnId> = self.conns.keys().copied().collect();
                if let Some(id) = self.rng.pick(&ids).copied() {
                    self.reset_conn(id);
                }
            }
        }
        let next = self
            .rng
            .range(self.cfg.fault_interval.0, self.cfg.fault_interval.1);
        self.schedule(next, Event::Fault);
    }

    fn write(&mut self) {
        let now = self.now;
        let leaders: Vec<Sid> = self
            .nodes
            .values()
            .filter(|n| n.peer.as_ref().is_some_and(|p| p.next_zxid().is_some()))
            .map(|n| n.sid)
            .collect();
        if let Some(l) = self.rng.pick(&leaders).copied() {
            if self.rng.chance(self.cfg.reconfig_rate) && self.reconfig(l) {
                let d = self.rng.range(1, 2 * self.cfg.write_interval);
                self.schedule(d, Event::Write);
                return;
            }
            self.writes += 1;
            let payload = format!("w{}@{l}", self.writes);
            if let Some(p) = self.nodes.get_mut(&l).and_then(|n| n.peer.as_mut()) {
                let seed = i64::from(self.cfg.counter_seed);
                if seed > 0 && p.next_zxid().is_some_and(|z| counter_of(z) < seed) {
                    self.stats.counter_seeds +=
                        u64::from(p.seed_counter(self.cfg.counter_seed).is_some());
                }
                // A real txn for the zxid it gets: learners decode what they log.
                if let Some(z) = p.next_zxid() {
                    let data = txn_payload::set_data(z, payload.as_bytes());
                    let (_, out) = p.propose_txn(now, z, data);
                    self.perform(l, out);
                }
            }
        }
        let d = self.rng.range(1, 2 * self.cfg.write_interval);
        self.schedule(d, Event::Write);
    }

    /// Has leader `l` propose a reconfig, as a client's would be prepared: none in
    /// progress, at least one voter left, a synced quorum of the new voters. False when
    /// none was proposed.
    fn reconfig(&mut self, l: Sid) -> bool {
        let now = self.now;
        let Some(p) = self.nodes.get(&l).and_then(|n| n.peer.as_ref()) else {
            return false;
        };
        let (committed, last_seen) = (p.config_arc(), p.last_seen_config());
        if committed.version != last_seen.version {
            return false;
        }
        let Some(synced) = p.synced_sids(now) else {
            return false;
        };
        let Some(zxid) = p.next_zxid() else {
            return false;
        };
        let mut members = last_seen.servers.clone();
        let pick = self.rng.pick(&self.pool).cloned();
        let Some(target) = pick else { return false };
        let how = match members.get(&target.sid) {
            None => {
                // Back in, as a participant or an observer.
                let mut s = target.clone();
                if self.rng.chance(0.3) {
                    s.learner_type = crate::zab::LearnerType::Observer;
                } else {
                    s.learner_type = crate::zab::LearnerType::Participant;
                }
                members.insert(s.sid, s);
                "add"
            }
            Some(_) if self.rng.chance(0.5) => {
                members.remove(&target.sid);
                "remove"
            }
            Some(s) => {
                let mut s = s.clone();
                s.learner_type = match s.learner_type {
                    crate::zab::LearnerType::Observer => crate::zab::LearnerType::Participant,
                    crate::zab::LearnerType::Participant => crate::zab::LearnerType::Observer,
                };
                members.insert(s.sid, s);
                "flip"
            }
        };
        let qv = committed.with_members(members, zxid);
        let voters: BTreeSet<Sid> = qv.voters().collect();
        let synced_voters: BTreeSet<Sid> = synced.intersection(&voters).copied().collect();
        if voters.is_empty() || !qv.contains_quorum(&synced_voters) {
            return false;
        }
        let entry = zk_proto::txn::TxnEntry {
            header: zk_proto::txn::TxnHeader {
                client_id: 0,
                cxid: 0,
                zxid,
                time: 0,
                txn_type: zk_proto::OpCode::Reconfig,
            },
            txn: zk_proto::txn::Txn::SetData(zk_proto::txn::SetDataTxn {
                path: "/zookeeper/config".into(),
                data: Some(Bytes::from(qv.to_config_string())),
                version: -1,
            }),
            digest: None,
        };
        let mut b = BytesMut::new();
        entry.write(&mut b);
        self.stats.reconfigs += 1;
        if target.sid == l && how != "add" {
            self.stats.leader_removals += 1;
        }
        self.note(format!(
            "{l} proposes reconfig {zxid:x}: {how} {} -> voters {voters:?}",
            target.sid
        ));
        if let Some(p) = self.nodes.get_mut(&l).and_then(|n| n.peer.as_mut()) {
            let (_, out) = p.propose_reconfig(now, zxid, b.freeze(), qv);
            self.perform(l, out);
        }
        true
    }

    /// Processes one event; `Ok(false)` when the queue is empty.
    pub fn step(&mut self) -> Result<bool, String> {
        let Some(Reverse((t, id))) = self.queue.pop() else {
            return Ok(false);
        };
        let Some(e) = self.events.remove(&id) else {
            return Ok(true);
        };
        self.now = t;
        self.stats.steps += 1;
        match e {
            Event::Tick(sid) => {
                let now = self.now;
                if let Some(p) = self.nodes.get_mut(&sid).and_then(|n| n.peer.as_mut()) {
                    let out = p.tick(now);
                    self.perform(sid, out);
                    self.schedule(self.cfg.node_tick, Event::Tick(sid));
                }
            }
            Event::Election { from, to, n } => {
                let now = self.now;
                if from == to || self.link_ok(from, to) {
                    if let Some(p) = self.nodes.get_mut(&to).and_then(|n| n.peer.as_mut()) {
                        let out = p.on_notification(now, from, &n);
                        self.perform(to, out);
                    }
                }
            }
            Event::Connect {
                conn,
                learner,
                leader,
                inc,
            } => self.connect(conn, learner, leader, inc),
            Event::Deliver { conn, to_leader } => self.deliver(conn, to_leader),
            Event::Fsync { sid, inc, zxid } => {
                let now = self.now;
                if let Some(n) = self.nodes.get_mut(&sid) {
                    if n.inc == inc && n.peer.is_some() {
                        let upto = n.disk.buffer.iter().take_while(|p| p.zxid <= zxid).count();
                        let moved: Vec<Proposal> = n.disk.buffer.drain(..upto).collect();
                        let mut last = n.disk.durable.last().map(|p| p.zxid).unwrap_or(i64::MIN);
                        for p in &moved {
                            if p.zxid <= last {
                                self.violation = Some(format!(
                                    "server {sid}: txn {:x} logged after {last:x}",
                                    p.zxid
                                ));
                            }
                            last = p.zxid;
                        }
                        n.disk.durable.extend(moved);
                        if let Some(p) = n.peer.as_mut() {
                            let out = p.on_persisted(now, zxid);
                            self.perform(sid, out);
                        }
                    }
                }
            }
            Event::LogRead {
                sid,
                inc,
                conn,
                txns,
            } => {
                let now = self.now;
                if let Some(n) = self.nodes.get_mut(&sid) {
                    if n.inc == inc {
                        if let Some(p) = n.peer.as_mut() {
                            let out = p.on_log_read(now, conn, txns);
                            self.perform(sid, out);
                        }
                    }
                }
            }
            Event::Fault => {
                if self.faults_on {
                    self.fault();
                }
            }
            Event::Write => self.write(),
            Event::Reconnect => self.reconnect(),
        }
        self.check()?;
        Ok(true)
    }

    /// Checks every invariant.
    fn check(&mut self) -> Result<(), String> {
        if let Some(v) = self.violation.take() {
            return Err(v);
        }
        for n in self.nodes.values() {
            let Some(p) = n.peer.as_ref() else { continue };
            if let Some(epoch) = p.serving_epoch() {
                if p.state() == PeerState::Leading {
                    self.checker.leader(epoch, n.sid)?;
                }
                self.checker.serving(n.sid, &n.applied)?;
            }
        }
        Ok(())
    }

    /// Stops injecting faults, heals the network and restarts crashed servers.
    pub fn heal(&mut self) {
        self.faults_on = false;
        self.blocked.clear();
        self.note("final heal".into());
        let dead: Vec<Sid> = self
            .nodes
            .keys()
            .copied()
            .filter(|s| !self.alive(*s))
            .collect();
        for s in dead {
            self.start_node(s);
        }
    }

    /// Current simulated time.
    pub fn now(&self) -> Millis {
        self.now
    }

    /// Whether every server serves under one leader with identical state, and the
    /// committed history grew since `since` entries.
    pub fn converged(&self, since: usize) -> bool {
        let mut leader = None;
        let mut state: Option<&Vec<Entry>> = None;
        let mut config = None;
        for n in self.nodes.values() {
            let Some(p) = n.peer.as_ref() else {
                return false;
            };
            if !p.is_serving() {
                return false;
            }
            // Every member ends on the same committed config.
            let v = p.config().version;
            if config.is_some_and(|c| c != v) {
                return false;
            }
            config = Some(v);
            if leader.is_some() && leader != p.leader() {
                return false;
            }
            leader = p.leader();
            match state {
                Some(s) if s != &n.applied => return false,
                _ => state = Some(&n.applied),
            }
        }
        self.unsettled_clients().is_empty() && self.checker.committed().len() > since
    }

    /// Client connections still open and waiting: for their handshake, or for an
    /// answer to a request. Once the ensemble serves again there must be none.
    pub fn unsettled_clients(&self) -> Vec<String> {
        self.clients
            .iter()
            .filter(|(_, c)| {
                c.state == ClientState::Handshaking
                    || (c.state == ClientState::Connected && c.answered < c.sent.len())
            })
            .map(|(id, c)| {
                format!(
                    "client {id} of session {:#x} on server {}: {:?}, {} of {} requests answered",
                    c.session,
                    c.sid,
                    c.state,
                    c.answered,
                    c.sent.len()
                )
            })
            .collect()
    }

    /// Size of the committed history.
    pub fn committed_len(&self) -> usize {
        self.checker.committed().len()
    }

    /// One line per server for failure reports.
    pub fn describe(&self) -> Vec<String> {
        self.nodes
            .values()
            .map(|n| match &n.peer {
                None => format!("server {}: down", n.sid),
                Some(p) => format!(
                    "server {}: {:?} config={:x} next={:x?} voters={:?} round={} proposal={:?} leader={:?} serving={} applied={} last={:x} epochs a={} c={} end={:?}",
                    n.sid,
                    p.state(),
                    p.config().version,
                    (p.last_seen_config().version, p.last_seen_config().voters().collect::<Vec<_>>()),
                    p.config().voters().collect::<Vec<_>>(),
                    p.election().logical_clock(),
                    (p.election().proposal(), p.election().is_looking(), p.election().next_deadline(), p.as_leader().map(|l| (l.oldest_outstanding(), l.learners()))),
                    p.leader(),
                    p.is_serving(),
                    n.applied.len(),
                    n.applied.last().map(|e| e.0).unwrap_or(0),
                    n.disk.accepted_epoch,
                    n.disk.current_epoch,
                    p.last_role_end().map(|e| e.0.clone()),
                ),
            })
            .chain(self.unsettled_clients())
            .collect()
    }
}

/// A simulated member's client side, as its node task drives the member gate: a moving
/// session's handshake waits for the leader's REVALIDATE answer with the requests
/// pipelined behind it unread; a follower's sync goes through the leader and the
/// connection's later requests wait behind it.
impl World {
    /// A session moves to a random serving follower, its requests pipelined behind the
    /// handshake.
    fn reconnect(&mut self) {
        if !self.faults_on {
            return;
        }
        let d = self.rng.range(1, 2 * self.cfg.reconnect_interval);
        self.schedule(d, Event::Reconnect);
        let followers: Vec<Sid> = self
            .nodes
            .values()
            .filter(|n| {
                n.peer
                    .as_ref()
                    .is_some_and(|p| p.is_serving() && p.state() != PeerState::Leading)
            })
            .map(|n| n.sid)
            .collect();
        let Some(sid) = self.rng.pick(&followers).copied() else {
            return;
        };
        let session = self.rng.range(1, CLIENT_SESSIONS * 2) as i64;
        let n = self.rng.range(1, 6) as usize;
        let sent: Vec<bool> = (0..n).map(|_| self.rng.chance(0.3)).collect();
        let id = self.clients.len() as ClientConn + 1;
        let inc = self.nodes[&sid].inc;
        self.clients.insert(
            id,
            SimClient {
                sid,
                inc,
                session,
                sent,
                answered: 0,
                state: ClientState::Handshaking,
            },
        );
        self.note(format!(
            "client {id} moves session {session:#x} to {sid} with {n} requests"
        ));
        let handshake = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout: 4000,
            session_id: session,
            passwd: vec![0u8; 16].into(),
            read_only: None,
        };
        if let Some(node) = self.nodes.get_mut(&sid) {
            node.gate.await_revalidation(session, id, handshake);
        }
        self.forward(sid, packets::revalidate_request(session, 4000));
    }

    /// A learner's packet to its leader (dropped when it has none, as a member's is).
    fn forward(&mut self, sid: Sid, p: QuorumPacket) {
        let now = self.now;
        let Some(peer) = self.nodes.get_mut(&sid).and_then(|n| n.peer.as_mut()) else {
            return;
        };
        let (sent, out) = peer.forward(now, p);
        if !sent {
            self.note(format!("{sid}: forward to the leader dropped"));
        }
        self.perform(sid, out);
    }

    /// The member's connections close (it stopped serving, or crashed).
    fn close_clients(&mut self, sid: Sid) {
        for c in self.clients.values_mut() {
            if c.sid == sid && matches!(c.state, ClientState::Handshaking | ClientState::Connected)
            {
                c.state = ClientState::Closed;
            }
        }
    }

    /// Whether client `id` is connected to `sid`'s current incarnation, still open.
    fn client_open_on(&self, id: ClientConn, sid: Sid) -> bool {
        self.clients.get(&id).is_some_and(|c| {
            c.sid == sid
                && self.nodes.get(&sid).is_some_and(|n| n.inc == c.inc)
                && matches!(c.state, ClientState::Handshaking | ClientState::Connected)
        })
    }

    /// The leader answered a REVALIDATE of `session`: the oldest handshake of it waiting
    /// here is answered, then the requests behind it are read.
    fn revalidated(&mut self, sid: Sid, session: i64, valid: bool) {
        let Some((id, _)) = self
            .nodes
            .get_mut(&sid)
            .and_then(|n| n.gate.revalidated(session))
        else {
            return;
        };
        if !self.client_open_on(id, sid) {
            // The client is gone; the answer was its.
            return;
        }
        // Answers pair with handshakes in order: no older one of the session may still
        // wait on this member.
        let inc = self.nodes[&sid].inc;
        if let Some((older, _)) = self.clients.range(..id).find(|(_, c)| {
            c.sid == sid
                && c.inc == inc
                && c.session == session
                && c.state == ClientState::Handshaking
        }) {
            self.violation = Some(format!(
                "server {sid}: REVALIDATE answer of session {session:#x} went to client {id} \
                 while the older client {older} still waits"
            ));
            return;
        }
        let Some(c) = self.clients.get_mut(&id) else {
            return;
        };
        if !valid {
            c.state = ClientState::Expired;
            return;
        }
        c.state = ClientState::Connected;
        let n = c.sent.len();
        for xid in 1..=n as i32 {
            self.client_request(sid, id, xid);
        }
    }

    /// A request of client `id` reaches the member: held behind a forwarded sync, a sync
    /// forwarded to the leader, or answered.
    fn client_request(&mut self, sid: Sid, id: ClientConn, xid: i32) {
        let Some(sync) = self
            .clients
            .get(&id)
            .and_then(|c| c.sent.get(xid as usize - 1).copied())
        else {
            return;
        };
        let req = if sync {
            Request::Sync(PathRequest { path: "/".into() })
        } else {
            Request::GetData(PathWatchRequest {
                path: "/".into(),
                watch: false,
            })
        };
        let Some(node) = self.nodes.get_mut(&sid) else {
            return;
        };
        let Some((xid, req)) = node.gate.hold(id, xid, req) else {
            return;
        };
        let leading = node
            .peer
            .as_ref()
            .is_some_and(|p| p.state() == PeerState::Leading);
        if matches!(req, Request::Sync(_)) && !leading {
            let session = self.clients[&id].session;
            let mut b = BytesMut::new();
            b.write_i64(session);
            b.write_i32(xid);
            b.write_i32(zk_proto::OpCode::Sync.to_i32());
            let p = packets::with_data(QuorumPacketType::Request, 0, b.freeze());
            if let Some(node) = self.nodes.get_mut(&sid) {
                node.gate.sync_forwarded(id, xid, req);
            }
            self.forward(sid, p);
            return;
        }
        self.answer(id, xid);
    }

    /// The leader answered the oldest forwarded sync: it is answered, and what waited
    /// behind it goes on.
    fn sync_done(&mut self, sid: Sid) {
        let Some((id, mut q)) = self.nodes.get_mut(&sid).and_then(|n| n.gate.sync_done()) else {
            return;
        };
        if !self.client_open_on(id, sid) {
            return;
        }
        if let Some((xid, _)) = q.pop_front() {
            self.answer(id, xid);
        }
        for (xid, _) in q {
            self.client_request(sid, id, xid);
        }
    }

    /// Client `id` gets the answer to `xid`, which must be its next one.
    fn answer(&mut self, id: ClientConn, xid: i32) {
        let Some(c) = self.clients.get_mut(&id) else {
            return;
        };
        if c.state != ClientState::Connected || xid as usize != c.answered + 1 {
            self.violation = Some(format!(
                "client {id} of session {:#x} on server {}: request {xid} answered while \
                 {:?} with {} answered",
                c.session, c.sid, c.state, c.answered
            ));
            return;
        }
        c.answered += 1;
    }
}
