//! The tokio side of a [`QuorumPeer`]: election connections, the quorum port,
//! leader-learner connections, the disk thread and the peer's timer ([`QuorumIo`]).
//!
//! The peer itself and the database belong to the owner of the [`QuorumIo`] (a member's
//! node task, or the test ensemble's peer task), which performs the peer's actions: the
//! network and log ones through the `QuorumIo`, the others (deliveries, role changes,
//! learner requests, SNAP bodies) with direct calls on what it owns. Txn log appends are
//! group commits: the `Persist` actions of a round go to disk together on a disk thread
//! ([`crate::storage::disk_thread`]), and the peer keeps receiving while the log syncs
//! (`on_persisted` follows when the sync reports back).
//!
//! Wire: election as in [`super::election`]; leader-learner QuorumPackets as bare jute
//! records. SNAP is followed by the database as Apache streams it ([`crate::storage::snap_stream`]).
//! Both kinds of link are secured as [`super::link`] says (TLS, quorum SASL).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::Decoder;
use zk_proto::election::Notification;
use zk_proto::jute::{JuteWrite, Record};
use zk_proto::quorum::{QuorumPacket, QuorumPacketType};

use super::early_votes::EarlyVotes;
use super::election::ElectionNet;
use super::link::{DialError, LinkKind, LinkReader, QuorumSecurity, QuorumStream};
use super::packet_codec::QuorumPacketCodec;
use super::parked::ParkedLearners;
pub use crate::storage::disk_thread::LogAppender;
use crate::storage::disk_thread::{DiskJobs, DiskThread};
use crate::storage::snap_stream;
use crate::zab::broadcast::Proposal;
use crate::zab::{Action, ConnId, PeerState, QuorumConfig, QuorumPeer, Sid, ZabMessage, Zxid};

/// Largest snapshot accepted from a leader.
const MAX_SNAPSHOT: usize = 1 << 30;

/// How old a LOOKING vote received just before we started looking may be to still be
/// handed to the new round (see [`EarlyVotes`]).
const EARLY_VOTE_MAX_AGE: u64 = 1000;

/// A SNAP body still being produced (see [`QuorumIo::send_snapshot`]), as parts written one
/// after the other (so a body assembled from pieces is never copied into one buffer).
pub type PendingSnapshot = oneshot::Receiver<Vec<Bytes>>;

/// What a connection's writer task sends, in order.
enum Outgoing {
    Message(ZabMessage),
    /// SNAP, written once its body is ready; what is queued behind it waits.
    Snapshot {
        zxid: Zxid,
        body: PendingSnapshot,
    },
}

/// What a leader reports about its learners (`mntr`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LeaderStats {
    /// Learners connected and identified.
    pub learners: usize,
    /// Of those, voting followers.
    pub followers: usize,
    /// Of those, observers.
    pub observers: usize,
    /// Learner syncs waiting for earlier proposals to commit.
    pub pending_syncs: usize,
}

/// What the driver publishes about the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerStatus {
    /// Current state.
    pub state: PeerState,
    /// The leader, when known.
    pub leader: Option<Sid>,
    /// Whether clients may be served.
    pub serving: bool,
}

enum NetEvent {
    LeaderConnected(ConnId, mpsc::UnboundedSender<Outgoing>),
    LearnerConnected(ConnId, mpsc::UnboundedSender<Outgoing>),
    Message(ConnId, bool, ZabMessage),
    Closed(ConnId, bool),
}

/// Cuts (or restores) one peer's traffic, like a network partition around it; cloneable.
#[derive(Debug, Clone)]
pub struct IsolationSwitch(Arc<AtomicBool>);

impl IsolationSwitch {
    /// Cuts (true) or restores (false) the peer's traffic with the other peers.
    pub fn set(&self, on: bool) {
        self.0.store(on, Ordering::SeqCst);
    }

    /// Whether the peer is cut off.
    pub fn is_on(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Network addresses of the ensemble, and how the links to them are secured.
#[derive(Debug, Clone)]
pub struct PeerAddrs {
    /// Election address of every server.
    pub election: BTreeMap<Sid, SocketAddr>,
    /// Quorum (leader-learner) address of every server.
    pub quorum: BTreeMap<Sid, SocketAddr>,
    /// TLS and quorum SASL on both kinds of link ([`QuorumSecurity::plaintext`]: none).
    pub security: QuorumSecurity,
}

/// The SNAP packet; the database follows it (see [`snap_stream`]).
fn snap_packet(zxid: Zxid) -> QuorumPacket {
    QuorumPacket {
        packet_type: QuorumPacketType::Snap,
        zxid,
        data: None,
        authinfo: None,
    }
}

/// Appends a message's wire form to `b`.
fn encode_into(msg: &ZabMessage, b: &mut BytesMut) {
    match msg {
        ZabMessage::Packet(p) => p.write(b),
        ZabMessage::Snapshot { zxid, data } => {
            snap_packet(*zxid).write(b);
            b.extend_from_slice(data);
            b.write_string(snap_stream::SIGNATURE);
        }
    }
}

/// Starts the reader and writer of a leader-learner link and announces it (before any
/// of its messages); `ahead` holds bytes of the link already read.
fn spawn_conn(
    stream: QuorumStream,
    conn: ConnId,
    to_leader_side: bool,
    events: mpsc::UnboundedSender<NetEvent>,
    ahead: Vec<u8>,
) {
    let (rd, mut wr) = stream.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Outgoing>();
    let connected = if to_leader_side {
        NetEvent::LearnerConnected(conn, tx)
    } else {
        NetEvent::LeaderConnected(conn, tx)
    };
    if events.send(connected).is_err() {
        return;
    }
    let ev = events.clone();
    tokio::spawn(async move {
        // Everything queued goes out with one write (up to a bound): under load a
        // leader's PROPOSALs and COMMITs, or a follower's ACKs, share syscalls.
        const COALESCE: usize = 64 * 1024;
        let mut buf = BytesMut::new();
        'conn: while let Some(mut m) = rx.recv().await {
            loop {
                match m {
                    Outgoing::Message(m) => encode_into(&m, &mut buf),
                    Outgoing::Snapshot { zxid, body } => {
                        snap_packet(zxid).write(&mut buf);
                        // What is already encoded goes out while the body is produced.
                        if wr.write_all(&buf).await.is_err() {
                            break 'conn;
                        }
                        buf.clear();
                        let Ok(parts) = body.await else {
                            tracing::warn!("snapshot {zxid:#x} for a learner was abandoned");
                            break 'conn;
                        };
                        for part in parts {
                            if wr.write_all(&part).await.is_err() {
                                break 'conn;
                            }
                        }
                        buf.write_string(snap_stream::SIGNATURE);
                    }
                }
                if buf.len() >= COALESCE {
                    break;
                }
                match rx.try_recv() {
                    Ok(next) => m = next,
                    Err(_) => break,
                }
            }
            // The flush matters on TLS links, whose records may wait in the session.
            if wr.write_all(&buf).await.is_err() || wr.flush().await.is_err() {
                break;
            }
            buf.clear();
            if buf.capacity() > 4 * COALESCE {
                // Do not keep a snapshot-sized buffer around.
                buf = BytesMut::new();
            }
        }
        let _ = ev.send(NetEvent::Closed(conn, to_leader_side));
    });
    tokio::spawn(read_conn(rd, conn, to_leader_side, events, ahead));
}

async fn read_conn(
    mut rd: LinkReader,
    conn: ConnId,
    leader_side: bool,
    events: mpsc::UnboundedSender<NetEvent>,
    ahead: Vec<u8>,
) {
    read_messages(&mut rd, conn, ahead, |msg| {
        events
            .send(NetEvent::Message(conn, leader_side, msg))
            .is_ok()
    })
    .await;
    let _ = events.send(NetEvent::Closed(conn, leader_side));
}

/// Reads the units of a leader-learner stream and hands each to `deliver`, until the
/// stream ends or breaks, or `deliver` returns false.
///
/// Everything already buffered is decoded before the socket is read again. That matters
/// after a SNAP: the read that finds the end of the database usually also holds the
/// packets written right behind it (NEWLEADER), and the leader sends nothing more until
/// the learner acks that NEWLEADER. (A `FramedRead` rebuilt around those leftover bytes
/// would first wait for the socket, so the learner sat on NEWLEADER until the leader
/// dropped it after initLimit ticks.)
async fn read_messages<R: AsyncRead + Unpin>(
    rd: &mut R,
    conn: ConnId,
    ahead: Vec<u8>,
    mut deliver: impl FnMut(ZabMessage) -> bool,
) {
    const READ_CHUNK: usize = 8 * 1024;
    let mut codec = QuorumPacketCodec::default();
    let mut buf = BytesMut::with_capacity(READ_CHUNK.max(ahead.len()));
    buf.extend_from_slice(&ahead);
    loop {
        let p = match codec.decode(&mut buf) {
            Ok(Some(p)) => p,
            Ok(None) => {
                buf.reserve(READ_CHUNK);
                match rd.read_buf(&mut buf).await {
                    Ok(0) => return,
                    Ok(_) => continue,
                    Err(e) => {
                        tracing::debug!("connection {conn:#x}: read failed: {e}");
                        return;
                    }
                }
            }
            Err(e) => {
                tracing::warn!("connection {conn:#x}: bad quorum packet: {e}");
                return;
            }
        };
        let msg = if p.packet_type == QuorumPacketType::Snap {
            // The database follows as Apache streams it (see `snap_stream`).
            match snap_stream::read_stream(rd, std::mem::take(&mut buf), MAX_SNAPSHOT).await {
                Ok((data, rest)) => {
                    buf = rest;
                    ZabMessage::Snapshot { zxid: p.zxid, data }
                }
                Err(e) => {
                    tracing::warn!(
                        "connection {conn:#x}: bad snapshot stream for 0x{:x}: {e}",
                        p.zxid
                    );
                    return;
                }
            }
        } else {
            ZabMessage::Packet(p)
        };
        if !deliver(msg) {
            return;
        }
    }
}

/// Where a round's txns go to be logged.
enum LogSink {
    /// The disk thread: appends group-commit there and report back on `durable`.
    Thread(DiskThread),
    /// No thread could be started: appends run inline, on the owner's task.
    Inline(Box<dyn LogAppender>),
}

/// What [`QuorumIo::next`] waits for: one input to the peer.
pub struct QuorumEvent(Event);

enum Event {
    Durable(u64, Zxid),
    Notification(Sid, Notification),
    Net(NetEvent),
    Tick,
}

/// The I/O side of a [`QuorumPeer`]: election connections, the quorum port,
/// leader-learner connections, the disk thread for txn log appends and the peer's timer.
///
/// Its owner (the member's node task, or the test ensemble's peer task) owns the peer
/// too, and drives both: it waits on [`QuorumIo::next`], feeds the event to the peer with
/// [`QuorumIo::handle`], and performs the resulting actions with [`QuorumIo::begin_round`],
/// [`QuorumIo::perform`] and [`QuorumIo::end_round`]. `perform` carries out the network
/// and logging actions itself and hands the others (deliveries, role changes, learner
/// requests, SNAP bodies, log reads, epochs) back to the owner, which handles them with
/// direct calls on the data it owns.
pub struct QuorumIo {
    me: Sid,
    start: tokio::time::Instant,
    isolated: Arc<AtomicBool>,
    addrs: PeerAddrs,
    net: ElectionNet,
    ev_tx: mpsc::UnboundedSender<NetEvent>,
    ev_rx: mpsc::UnboundedReceiver<NetEvent>,
    _acceptor: AbortOnDrop,
    init_timeout: u64,
    /// Kept so the channel only ends with the driver.
    _durable_tx: mpsc::UnboundedSender<(u64, Zxid)>,
    durable_rx: mpsc::UnboundedReceiver<(u64, Zxid)>,
    log: LogSink,
    /// Txns to persist, collected over a round of actions.
    to_log: Vec<Proposal>,
    /// The last zxid known durable during the current round (inline appends, barriers).
    persisted: Option<Zxid>,
    /// Whether the peer was cut off when the round began.
    cut: bool,
    /// Actions for the next round (votes taken over from before we were looking).
    deferred: Vec<Action>,
    /// Learners that connect while we are still looking (see `parked`).
    parked: ParkedLearners,
    /// Votes of peers that started looking before we did (see `early_votes`).
    early: EarlyVotes,
    writers: BTreeMap<ConnId, mpsc::UnboundedSender<Outgoing>>,
    tick: tokio::time::Interval,
    /// When the current election began (ms on [`Self::now`]'s clock), for the log line
    /// saying how long it took; `None` once the new role serves.
    looking_since: Option<u64>,
    /// When the election named the role now syncing, for `follower_sync_time`.
    role_since: Option<u64>,
    /// Elections, proposal latencies and learner syncs, for `mntr` and `/metrics`.
    timings: crate::admin::stats::QuorumTimings,
}

impl QuorumIo {
    /// Starts the network side of peer `cfg.my_sid` on already-bound listeners; txns are
    /// logged by an appender from `appender` on a disk thread (by another one inline, if
    /// no thread can be started).
    pub fn start(
        cfg: &QuorumConfig,
        appender: impl Fn() -> Box<dyn LogAppender>,
        election_listener: TcpListener,
        quorum_listener: TcpListener,
        addrs: PeerAddrs,
    ) -> QuorumIo {
        let me = cfg.my_sid;
        let net = ElectionNet::start_secured(
            me,
            election_listener,
            addrs.election.clone(),
            addrs.security.clone(),
        );
        let (ev_tx, ev_rx) = mpsc::unbounded_channel::<NetEvent>();
        let accept_tx = ev_tx.clone();
        let security = addrs.security.clone();
        let acceptor = tokio::spawn(async move {
            let mut next: u64 = 0;
            while let Ok((s, peer)) = quorum_listener.accept().await {
                if accept_tx.is_closed() {
                    break;
                }
                next += 1;
                let conn = (1u64 << 63) | next;
                let (security, tx) = (security.clone(), accept_tx.clone());
                // TLS and SASL take round trips: never in the accept loop.
                tokio::spawn(async move {
                    let Some(mut stream) = security.accept(s, peer, LinkKind::Quorum).await else {
                        return;
                    };
                    let who = format!("learner {peer} (quorum port)");
                    match security.check_login(&mut stream, &who).await {
                        Ok(ahead) => spawn_conn(stream, conn, true, tx, ahead),
                        Err(why) => tracing::warn!("refusing {who}: {why}"),
                    }
                });
            }
        });
        let (durable_tx, durable_rx) = mpsc::unbounded_channel::<(u64, Zxid)>();
        let log = match DiskThread::start(appender(), durable_tx.clone()) {
            Ok(d) => LogSink::Thread(d),
            Err(e) => {
                tracing::warn!("peer {me}: no disk thread ({e}); logging on the peer's task");
                LogSink::Inline(appender())
            }
        };
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        QuorumIo {
            me,
            start: tokio::time::Instant::now(),
            isolated: Arc::new(AtomicBool::new(false)),
            addrs,
            net,
            ev_tx,
            ev_rx,
            _acceptor: AbortOnDrop(acceptor),
            init_timeout: cfg.init_timeout(),
            _durable_tx: durable_tx,
            durable_rx,
            log,
            to_log: Vec::new(),
            persisted: None,
            cut: false,
            deferred: Vec::new(),
            parked: ParkedLearners::default(),
            early: EarlyVotes::default(),
            writers: BTreeMap::new(),
            tick,
            looking_since: Some(0),
            role_since: None,
            timings: Default::default(),
        }
    }

    /// What this side measured (`election_time`, `proposal_latency`, `diff_count`...).
    pub fn timings(&self) -> &crate::admin::stats::QuorumTimings {
        &self.timings
    }

    /// Forgets the timings (`srst`).
    pub fn reset_timings(&mut self) {
        self.timings = Default::default();
    }

    /// Learner: records a committed txn's trip from the leader's clock to here
    /// (`commit_propagation_latency`).
    pub fn record_commit_propagation(&mut self, header_time: i64, now_ms: i64) {
        if let Some(ms) = crate::admin::stats::since_txn_time(header_time, now_ms) {
            self.timings.commit_propagation.record(ms);
        }
    }

    /// The peer's monotonic clock (ms since the driver started).
    pub fn now(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// Makes the members of `cfg` reachable (a reconfig brought them): their election
    /// and quorum addresses, resolved now. Addresses that do not resolve are left out
    /// (with a warning) and tried no more.
    pub fn set_members(&mut self, cfg: &QuorumConfig) {
        use std::net::ToSocketAddrs;
        let resolve = |a: String| match a.to_socket_addrs().map(|mut i| i.next()) {
            Ok(Some(s)) => Some(s),
            _ => {
                tracing::warn!("peer {}: member address {a} does not resolve", self.me);
                None
            }
        };
        let mut election = BTreeMap::new();
        for s in cfg.servers.values() {
            self.addrs.security.set_member_host(s.sid, &s.host);
            if s.sid == self.me {
                continue;
            }
            if let Some(e) = resolve(s.election_addr()) {
                election.insert(s.sid, e);
            }
            if let Some(q) = resolve(s.quorum_addr()) {
                self.addrs.quorum.insert(s.sid, q);
            }
        }
        self.addrs
            .election
            .extend(election.iter().map(|(k, v)| (*k, *v)));
        self.net.set_peers(&election);
    }

    /// A switch cutting this peer's traffic with the others (a simulated partition).
    pub fn isolation_switch(&self) -> IsolationSwitch {
        IsolationSwitch(self.isolated.clone())
    }

    /// Queues other disk work (snapshot files, purges) on the disk thread, behind the
    /// appends handed to it so far.
    pub fn disk_jobs(&self) -> DiskJobs {
        match &self.log {
            LogSink::Thread(d) => d.jobs(),
            LogSink::Inline(_) => DiskJobs::inline(),
        }
    }

    fn is_isolated(&self) -> bool {
        self.isolated.load(Ordering::SeqCst)
    }

    /// The next input for the peer; `None` when the election network is gone. Cancel
    /// safe: every branch is a channel receive or a timer tick.
    pub async fn next(&mut self) -> Option<QuorumEvent> {
        let ev = tokio::select! {
            d = self.durable_rx.recv() => match d {
                Some((g, z)) => Event::Durable(g, z),
                None => return None,
            },
            m = self.net.recv() => match m {
                Some((from, n)) => Event::Notification(from, n),
                None => return None,
            },
            e = self.ev_rx.recv() => match e {
                Some(e) => Event::Net(e),
                None => return None,
            },
            _ = self.tick.tick() => Event::Tick,
        };
        Some(QuorumEvent(ev))
    }

    /// Feeds an event to the peer; returns the actions to perform.
    pub fn handle(&mut self, peer: &mut QuorumPeer, ev: QuorumEvent) -> Vec<Action> {
        let now = self.now();
        let mut out = match ev.0 {
            Event::Durable(generation, z) => match &self.log {
                LogSink::Thread(d) if d.is_current(generation) => peer.on_persisted(now, z),
                _ => Vec::new(),
            },
            Event::Notification(from, n) => {
                tracing::debug!(
                    "peer {}: notification from {from}: state {} leader {} zxid {:#x} round {} epoch {}",
                    self.me, n.state, n.leader, n.zxid, n.election_epoch, n.peer_epoch
                );
                if self.is_isolated() && from != self.me {
                    Vec::new()
                } else {
                    if from != self.me && peer.state() != PeerState::Looking {
                        self.early.record(from, &n, now);
                    }
                    peer.on_notification(now, from, &n)
                }
            }
            Event::Net(e) => self.net_event(peer, now, e),
            Event::Tick => {
                for conn in self.parked.expired(now, self.init_timeout) {
                    self.writers.remove(&conn);
                }
                peer.tick(now)
            }
        };
        if !self.parked.is_empty() && peer.state() != PeerState::Looking {
            // The election ended: a leader takes the early learners, anyone else closes
            // them (on_learner_connected does either).
            for (conn, msgs) in self.parked.take_all() {
                out.extend(peer.on_learner_connected(now, conn));
                for m in msgs {
                    out.extend(peer.on_learner_message(now, conn, m));
                }
            }
        }
        out
    }

    fn net_event(&mut self, peer: &mut QuorumPeer, now: u64, e: NetEvent) -> Vec<Action> {
        match e {
            NetEvent::LeaderConnected(conn, w) => {
                self.writers.insert(conn, w);
                peer.on_leader_connected(now, conn)
            }
            NetEvent::LearnerConnected(conn, w) => {
                self.writers.insert(conn, w);
                if peer.state() == PeerState::Looking {
                    self.parked.park(conn, now);
                    Vec::new()
                } else {
                    peer.on_learner_connected(now, conn)
                }
            }
            NetEvent::Message(..) if self.is_isolated() => Vec::new(),
            NetEvent::Message(conn, true, m) if self.parked.contains(conn) => {
                self.parked.message(conn, m);
                Vec::new()
            }
            NetEvent::Closed(conn, true) if self.parked.contains(conn) => {
                self.parked.closed(conn);
                self.writers.remove(&conn);
                Vec::new()
            }
            NetEvent::Message(conn, true, m) => peer.on_learner_message(now, conn, m),
            NetEvent::Message(conn, false, m) => {
                log_sync_mode(&m);
                if peer.is_serving() {
                    self.record_proposal_latency(&m);
                    if let ZabMessage::Packet(p) = &m {
                        match p.packet_type {
                            QuorumPacketType::Proposal => {
                                self.timings.learner_proposals_received += 1
                            }
                            QuorumPacketType::Commit | QuorumPacketType::Inform => {
                                self.timings.learner_commits_received += 1
                            }
                            _ => {}
                        }
                    }
                }
                peer.on_leader_message(now, conn, m)
            }
            NetEvent::Closed(conn, leader_side) => {
                self.writers.remove(&conn);
                if leader_side {
                    peer.on_learner_disconnected(now, conn)
                } else {
                    peer.on_leader_disconnected(now, conn)
                }
            }
        }
    }

    /// Learner, once synced: a PROPOSAL's trip from the leader's clock (its txn
    /// header's time) to here, as Apache's `Follower` measures `proposal_latency`.
    fn record_proposal_latency(&mut self, m: &ZabMessage) {
        let ZabMessage::Packet(p) = m else { return };
        if p.packet_type != QuorumPacketType::Proposal {
            return;
        }
        let time = p
            .data
            .as_deref()
            .and_then(crate::admin::stats::txn_header_time);
        let now = crate::host::server::now_ms();
        if let Some(ms) = time.and_then(|t| crate::admin::stats::since_txn_time(t, now)) {
            self.timings.proposal_latency.record(ms);
        }
    }

    /// Learner: forwards a packet (a client's REQUEST, a REVALIDATE) to the leader;
    /// dropped when cut off or not following an established leader.
    pub fn forward(&mut self, peer: &mut QuorumPeer, p: QuorumPacket) -> Vec<Action> {
        if self.is_isolated() {
            return Vec::new();
        }
        peer.forward(self.now(), p).1
    }

    /// Starts performing a batch of actions. Returns the status to switch to before the
    /// batch's deliveries when the batch ends a role after delivering txns: a role that
    /// ends applies what it logged (Apache's fastForwardDataBase) before it announces
    /// LOOKING, and the owner must stop serving first: a client waiting for one of those
    /// txns must not hear that it committed, as no quorum acknowledged it (the next
    /// leader may well truncate it).
    pub fn begin_round(&mut self, batch: &[Action]) -> Option<PeerStatus> {
        self.cut = self.is_isolated();
        self.persisted = None;
        stops_after_fast_forward(batch)
    }

    /// Performs one action of the round: network sends and log appends here; the rest
    /// is returned for the owner to handle, in order. Before a [`Action::ReadLog`],
    /// [`Action::Truncate`] or [`Action::InstallSnapshot`] is returned, everything handed
    /// to the log so far is durable. A returned [`Action::SendSnapshot`] is answered with
    /// [`QuorumIo::send_snapshot`].
    pub fn perform(&mut self, peer: &mut QuorumPeer, a: Action) -> Option<Action> {
        let cut = self.cut;
        match a {
            Action::SendNotification { to, n } => {
                if !cut || to == self.me {
                    self.net.send(to, &n)
                }
                None
            }
            Action::ConnectLeader { leader, conn } => {
                let addr = if cut {
                    None
                } else {
                    self.addrs.quorum.get(&leader).copied()
                };
                self.connect_leader(addr, leader, conn);
                None
            }
            Action::Send { conn, msg } => {
                // Apache counts each learner sync by how it is done (its LearnerHandler).
                if let ZabMessage::Packet(p) = &msg {
                    if matches!(
                        p.packet_type,
                        QuorumPacketType::Diff | QuorumPacketType::Trunc
                    ) {
                        self.timings.diff_count += 1;
                    }
                }
                if !cut {
                    if let Some(w) = self.writers.get(&conn) {
                        let _ = w.send(Outgoing::Message(msg));
                    }
                }
                None
            }
            Action::SendSnapshot { .. } if cut => None,
            a @ Action::SendSnapshot { .. } => {
                self.timings.snap_count += 1;
                Some(a)
            }
            Action::Close { conn } => {
                self.writers.remove(&conn);
                None
            }
            Action::Persist(p) => {
                self.to_log.push(p);
                None
            }
            a @ (Action::ReadLog { .. } | Action::Truncate(_) | Action::InstallSnapshot { .. }) => {
                // The log must hold everything handed over so far.
                let z = self.settle();
                self.persisted = self.persisted.max(z);
                Some(a)
            }
            Action::StateChanged {
                state,
                leader,
                serving,
            } => {
                let now = self.now();
                if state == PeerState::Looking {
                    if !cut {
                        for (from, n) in self.early.take_recent(now, EARLY_VOTE_MAX_AGE) {
                            // Performed in the next round (`end_round` returns them).
                            let more = peer.on_notification(now, from, &n);
                            self.deferred.extend(more);
                        }
                    }
                    let why = peer.last_role_end().map(|e| e.to_string());
                    self.looking_since.get_or_insert(now);
                    tracing::info!(
                        "peer {}: LOOKING ({}), last zxid {:#x}",
                        self.me,
                        why.as_deref().unwrap_or("start"),
                        peer.history().last_logged()
                    );
                } else {
                    self.log_role(peer, now, state, leader, serving);
                }
                Some(Action::StateChanged {
                    state,
                    leader,
                    serving,
                })
            }
            Action::Deliver(p) => {
                // Apache's leader counts each txn it commits, and times its quorum.
                if peer.state() == PeerState::Leading && peer.is_serving() {
                    self.timings.commit_count += 1;
                    let now = crate::host::server::now_ms();
                    if let Some(ms) = crate::admin::stats::txn_header_time(&p.data)
                        .and_then(|t| crate::admin::stats::since_txn_time(t, now))
                    {
                        self.timings.quorum_ack_latency.record(ms);
                    }
                }
                Some(Action::Deliver(p))
            }
            a @ Action::Revalidate { .. } => {
                self.timings.revalidate_count += 1;
                Some(a)
            }
            a => Some(a),
        }
    }

    /// The operator's lines for a role: who won the election and how long it took, then
    /// (once synced) the epoch served; what Apache logs as `LEADING - LEADER ELECTION TOOK`.
    fn log_role(
        &mut self,
        peer: &QuorumPeer,
        now: u64,
        state: PeerState,
        leader: Option<Sid>,
        serving: bool,
    ) {
        let role = match state {
            PeerState::Leading => "LEADING",
            PeerState::Following => "FOLLOWING",
            PeerState::Observing => "OBSERVING",
            PeerState::Looking => "LOOKING",
        };
        let leader = leader.map_or("-".to_string(), |l| l.to_string());
        let took = self.looking_since.map(|t| now.saturating_sub(t));
        if !serving {
            if let Some(ms) = took {
                self.timings.election.record(ms);
            }
            self.role_since = Some(now);
            tracing::info!(
                "peer {}: election won by server {leader}: {role} (election took {} ms, \
                 election epoch {:#x})",
                self.me,
                took.unwrap_or(0),
                peer.election().logical_clock()
            );
            return;
        }
        self.looking_since = None;
        if let Some(ms) = took {
            self.timings.unavailable.record(ms);
            if state == PeerState::Leading {
                self.timings.leader_unavailable.record(ms);
            }
        }
        if let Some(since) = self.role_since.take() {
            let ms = now.saturating_sub(since);
            match state {
                PeerState::Following => self.timings.follower_sync.record(ms),
                PeerState::Observing => self.timings.observer_sync.record(ms),
                _ => {}
            }
        }
        tracing::info!(
            "peer {}: {role} leader {leader}, serving epoch {:#x}, last zxid {:#x} ({} ms \
             after the election began)",
            self.me,
            peer.serving_epoch().unwrap_or(-1),
            peer.history().last_logged(),
            took.unwrap_or(0)
        );
    }

    /// Sends SNAP on `conn` with a body still being produced: what is queued behind it
    /// waits until the body is ready; a dropped sender closes the connection.
    pub fn send_snapshot(&mut self, conn: ConnId, zxid: Zxid, body: PendingSnapshot) {
        if let Some(w) = self.writers.get(&conn) {
            let _ = w.send(Outgoing::Snapshot { zxid, body });
        }
    }

    /// Ends a round: hands its txns to the log and returns the peer's reaction to what
    /// became durable (and to votes taken over from before we were looking).
    pub fn end_round(&mut self, peer: &mut QuorumPeer) -> Vec<Action> {
        let mut out = std::mem::take(&mut self.deferred);
        let z = self.flush();
        self.persisted = self.persisted.max(z);
        if let Some(z) = self.persisted.take() {
            out.extend(peer.on_persisted(self.now(), z));
        }
        out
    }

    fn connect_leader(&self, addr: Option<SocketAddr>, leader: Sid, conn: ConnId) {
        let tx = self.ev_tx.clone();
        let security = self.addrs.security.clone();
        tokio::spawn(async move {
            let Some(a) = addr else {
                return;
            };
            let link = async {
                let mut s = security
                    .dial(a, LinkKind::Quorum, Duration::from_secs(2))
                    .await?;
                security
                    .login(&mut s, &format!("the leader at {a} (quorum port)"), leader)
                    .await
                    .map_err(|e| DialError::Refused(e.to_string()))?;
                Ok::<_, DialError>(s)
            };
            match link.await {
                Ok(s) => spawn_conn(s, conn, false, tx, Vec::new()),
                Err(e) => {
                    if let DialError::Refused(why) = &e {
                        tracing::warn!("cannot follow the leader at {a}: {why}");
                    }
                    let _ = tx.send(NetEvent::Closed(conn, false));
                }
            }
        });
    }

    /// Hands the round's txns to the log: to the disk thread (confirmed when its sync
    /// reports back), or appended inline; returns the zxid now durable.
    fn flush(&mut self) -> Option<Zxid> {
        let last = self.to_log.last()?.zxid;
        let batch = std::mem::take(&mut self.to_log);
        match &mut self.log {
            LogSink::Thread(d) => {
                d.submit(batch);
                None
            }
            LogSink::Inline(a) => a.append(&batch).then_some(last),
        }
    }

    /// Flushes and waits until everything handed to the log is durable (before reading,
    /// truncating or replacing the log); returns the last zxid durable.
    fn settle(&mut self) -> Option<Zxid> {
        let here = self.flush();
        match &mut self.log {
            LogSink::Thread(d) => d.barrier(),
            LogSink::Inline(_) => here,
        }
    }
}

/// What a leader reports about its learners (`mntr`); `None` when not leading.
pub fn leader_stats(peer: &QuorumPeer) -> Option<LeaderStats> {
    peer.as_leader().map(|l| {
        let learners = l.learners();
        let observers = learners
            .iter()
            .filter(|(_, k)| *k == crate::zab::LearnerType::Observer)
            .count();
        LeaderStats {
            learners: learners.len(),
            followers: learners.len() - observers,
            observers,
            pending_syncs: l.pending_syncs(),
        }
    })
}

/// Leader: whether a learner's REQUEST is a sync (answered by the peer once everything
/// proposed before it is committed) rather than a write for the server core.
pub fn is_sync_request(p: &QuorumPacket) -> bool {
    request_type(p) == Some(zk_proto::OpCode::Sync.to_i32())
}

/// The status to switch to before a batch's deliveries, when the batch ends a role after
/// delivering txns (see the caller).
fn stops_after_fast_forward(batch: &[Action]) -> Option<PeerStatus> {
    let stop = batch.iter().position(|a| {
        matches!(
            a,
            Action::StateChanged {
                state: PeerState::Looking,
                ..
            }
        )
    })?;
    let delivers = batch
        .get(..stop)?
        .iter()
        .any(|a| matches!(a, Action::Deliver(_)));
    delivers.then_some(PeerStatus {
        state: PeerState::Looking,
        leader: None,
        serving: false,
    })
}

/// Learner side: says how the leader syncs us (as Apache logs it), so operators and
/// tests can tell a DIFF from a SNAP.
fn log_sync_mode(m: &ZabMessage) {
    match m {
        ZabMessage::Snapshot { zxid, .. } => {
            tracing::info!("Getting a snapshot from leader 0x{zxid:x} (SNAP)")
        }
        ZabMessage::Packet(p) if p.packet_type == QuorumPacketType::Diff => {
            tracing::info!("Getting a diff from the leader 0x{:x} (DIFF)", p.zxid)
        }
        ZabMessage::Packet(p) if p.packet_type == QuorumPacketType::Trunc => {
            tracing::info!("Truncating log to 0x{:x} (TRUNC)", p.zxid)
        }
        ZabMessage::Packet(_) => {}
    }
}

/// The op type of a forwarded REQUEST.
fn request_type(p: &QuorumPacket) -> Option<i32> {
    let d = p.data.as_deref()?;
    let b = d.get(12..16)?;
    Some(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zab::broadcast::Proposal;

    fn deliver(z: Zxid) -> Action {
        Action::Deliver(Proposal {
            zxid: z,
            data: Bytes::new(),
        })
    }

    fn state(state: PeerState, serving: bool) -> Action {
        Action::StateChanged {
            state,
            leader: None,
            serving,
        }
    }

    fn packet(ty: QuorumPacketType, zxid: Zxid) -> ZabMessage {
        ZabMessage::Packet(QuorumPacket {
            packet_type: ty,
            zxid,
            data: None,
            authinfo: None,
        })
    }

    /// Reads `wire` from a stream that stays open afterwards (as the leader's does while
    /// it waits for the NEWLEADER ack), in writes of `chunk` bytes; returns what was
    /// delivered within a second (stopping at `n` messages).
    async fn read_open_stream(wire: Vec<u8>, chunk: usize, n: usize) -> Vec<ZabMessage> {
        let (mut tx, mut rx) = tokio::io::duplex(wire.len() + 1);
        for part in wire.chunks(chunk) {
            tx.write_all(part).await.unwrap();
        }
        let (got_tx, mut got_rx) = mpsc::unbounded_channel();
        let reader = tokio::spawn(async move {
            read_messages(&mut rx, 1, Vec::new(), |m| got_tx.send(m).is_ok()).await;
        });
        let mut got = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
        while got.len() < n {
            match tokio::time::timeout_at(deadline, got_rx.recv()).await {
                Ok(Some(m)) => got.push(m),
                _ => break,
            }
        }
        reader.abort();
        drop(tx);
        got
    }

    #[tokio::test]
    async fn packets_behind_a_snapshot_are_delivered_without_more_bytes() {
        let body = snap_stream::encode(&crate::storage::SnapshotData::initial());
        let snap = ZabMessage::Snapshot {
            zxid: 0x1_0000_0005,
            data: body,
        };
        let new_leader = packet(QuorumPacketType::NewLeader, 0x2_0000_0000);
        let mut wire = BytesMut::new();
        encode_into(&packet(QuorumPacketType::Diff, 7), &mut wire);
        encode_into(&snap, &mut wire);
        encode_into(&new_leader, &mut wire);
        let want = vec![
            packet(QuorumPacketType::Diff, 7),
            snap.clone(),
            new_leader.clone(),
        ];
        // All in one read (the usual case: the leader writes NEWLEADER right behind the
        // signature), and split at awkward places.
        for chunk in [wire.len(), 1, 3, 17, 64] {
            assert_eq!(
                read_open_stream(wire.to_vec(), chunk, want.len()).await,
                want,
                "writes of {chunk} bytes"
            );
        }
    }

    #[test]
    fn stops_serving_before_fast_forwarded_deliveries_only() {
        // A role ends after delivering what it logged: stop serving first.
        let ended = [deliver(5), deliver(6), state(PeerState::Looking, false)];
        assert_eq!(
            stops_after_fast_forward(&ended).map(|s| (s.state, s.serving)),
            Some((PeerState::Looking, false))
        );
        // Ordinary commits, or a role ending with nothing to deliver: nothing special.
        assert!(stops_after_fast_forward(&[deliver(5)]).is_none());
        assert!(stops_after_fast_forward(&[state(PeerState::Looking, false)]).is_none());
        assert!(
            stops_after_fast_forward(&[state(PeerState::Looking, false), deliver(5)]).is_none()
        );
        assert!(
            stops_after_fast_forward(&[deliver(5), state(PeerState::Following, true)]).is_none()
        );
    }
}
