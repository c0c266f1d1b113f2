//! The tokio driver of a whole [`QuorumPeer`]: election connections, the quorum port,
//! leader-learner connections, timers and the caller's replica (database + disk).
//!
//! The driver owns the peer in one task; everything else talks to it through channels.
//! Txn log appends are group commits: the `Persist` actions of a round go to disk together,
//! on a disk thread ([`crate::storage::disk_thread`]) when the replica offers a
//! [`LogAppender`] (the driver keeps receiving while the log syncs, and confirms with
//! `on_persisted` when the sync reports back), else with one
//! [`Replica::persist_batch`] on the driver task, confirmed right after the round.
//!
//! Wire: election as in [`super::election`]; leader-learner QuorumPackets as bare jute
//! records. SNAP is followed by the database as Apache streams it ([`crate::storage::snap_stream`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::codec::Decoder;
use zk_proto::jute::{JuteWrite, Record};
use zk_proto::quorum::{QuorumPacket, QuorumPacketType};

use super::early_votes::EarlyVotes;
use super::election::ElectionNet;
use super::packet_codec::QuorumPacketCodec;
use super::parked::ParkedLearners;
use crate::storage::disk_thread::DiskThread;
pub use crate::storage::disk_thread::LogAppender;
use crate::storage::snap_stream;
use crate::zab::broadcast::leader::ProposeError;
use crate::zab::broadcast::{DiskState, Proposal};
use crate::zab::{Action, ConnId, PeerState, QuorumConfig, QuorumPeer, Sid, ZabMessage, Zxid};

/// Largest snapshot accepted from a leader.
const MAX_SNAPSHOT: usize = 1 << 30;

/// How old a LOOKING vote received just before we started looking may be to still be
/// handed to the new round (see [`EarlyVotes`]).
const EARLY_VOTE_MAX_AGE: u64 = 1000;

/// A SNAP body still being produced (see [`Replica::snapshot`]), as parts written one
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

/// The caller's database and disk, as the driver needs them.
pub trait Replica: Send + 'static {
    /// Appends a txn to the log and makes it durable.
    fn persist(&mut self, p: &Proposal);
    /// Appends txns (ascending) and makes them durable, ideally with one write and one
    /// sync (group commit).
    fn persist_batch(&mut self, ps: &[Proposal]) {
        for p in ps {
            self.persist(p);
        }
    }
    /// An appender the driver runs on its disk thread, so appends and their syncs happen
    /// while the driver goes on; `None` (the default) persists on the driver task with
    /// [`Replica::persist_batch`]. Called once when the peer starts.
    fn log_appender(&mut self) -> Option<Box<dyn LogAppender>> {
        None
    }
    /// Applies a committed txn to the database.
    fn apply(&mut self, p: &Proposal);
    /// Serializes the database as a SNAP body: sessions, ACL cache and nodes as Apache
    /// streams them ([`crate::storage::snap_stream`]). The body may be produced off the driver's
    /// task, so a large tree does not stall the member; it then holds every txn applied
    /// so far and possibly later ones (a fuzzy snapshot, as Apache's: the learner
    /// replays the txns queued after it, and replaying a txn is harmless). The
    /// learner's connection sends it when ready, before anything queued after it; a
    /// dropped sender closes that connection.
    fn snapshot(&self) -> PendingSnapshot;
    /// Replaces the database with a leader's snapshot (a SNAP body), durably.
    fn install_snapshot(&mut self, zxid: Zxid, data: Bytes);
    /// Drops logged txns after `zxid` and reloads the database to `zxid`.
    fn truncate(&mut self, zxid: Zxid);
    /// The logged txns with `from <= zxid <= to`, or `None` when the log (after purging
    /// and snapshots) no longer holds `from`.
    fn read_log(&self, from: Zxid, to: Zxid) -> Option<Vec<Proposal>>;
    /// Durably records acceptedEpoch.
    fn save_accepted_epoch(&mut self, e: i64);
    /// Durably records currentEpoch.
    fn save_current_epoch(&mut self, e: i64);
    /// The peer changed role; `next_zxid` is what the next proposal will get (an
    /// established leader only). Lets a server core switch between leading and forwarding.
    fn role_changed(&mut self, _status: PeerStatus, _next_zxid: Option<Zxid>) {}
    /// Leader side: a learner (its connection `learner`) forwarded a client write
    /// (REQUEST other than sync); the server core prepares it and proposes the txn.
    fn learner_request(&mut self, _learner: ConnId, _packet: &QuorumPacket) {}
    /// Leader side: a learner (connection `learner`) asks whether a session moving to it
    /// is still valid (REVALIDATE); a valid session is then owned by that learner.
    fn revalidate(&mut self, _learner: ConnId, _session_id: i64, _timeout: i32) -> bool {
        true
    }
    /// Learner side: the leader answered our REVALIDATE.
    fn revalidated(&mut self, _session_id: i64, _valid: bool) {}
    /// Learner side: the leader answered our oldest forwarded sync (everything committed
    /// before it has been applied).
    fn sync_done(&mut self) {}
    /// Leader side: a learner reports these sessions alive (session id, timeout).
    fn sessions_touched(&mut self, _sessions: &[(i64, i32)]) {}
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

enum Command {
    Propose(Bytes, oneshot::Sender<Result<Zxid, ProposeError>>),
    Forward(QuorumPacket),
    TouchSession(i64, i32),
    LeaderStats(oneshot::Sender<Option<LeaderStats>>),
}

enum NetEvent {
    LeaderConnected(ConnId, mpsc::UnboundedSender<Outgoing>),
    LearnerConnected(ConnId, mpsc::UnboundedSender<Outgoing>),
    Message(ConnId, bool, ZabMessage),
    Closed(ConnId, bool),
}

/// A running peer.
pub struct PeerHandle {
    cmds: mpsc::UnboundedSender<Command>,
    isolated: Arc<AtomicBool>,
    status: watch::Receiver<PeerStatus>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for PeerHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl PeerHandle {
    /// The latest status.
    pub fn status(&self) -> PeerStatus {
        *self.status.borrow()
    }

    /// Waits until `f` holds for the status, or `timeout` passes.
    pub async fn wait_for(&mut self, timeout: Duration, f: impl Fn(&PeerStatus) -> bool) -> bool {
        tokio::time::timeout(timeout, self.status.wait_for(|s| f(s)))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Proposes a serialized txn (leader only); resolves once it is proposed.
    pub async fn propose(&self, data: Bytes) -> Result<Zxid, ProposeError> {
        let (tx, rx) = oneshot::channel();
        if self.cmds.send(Command::Propose(data, tx)).is_err() {
            return Err(ProposeError::NotEstablished);
        }
        rx.await.unwrap_or(Err(ProposeError::NotEstablished))
    }

    /// Learner: forwards a packet (a client's REQUEST) to the leader; dropped when not
    /// following an established leader.
    pub fn forward(&self, p: QuorumPacket) {
        let _ = self.cmds.send(Command::Forward(p));
    }

    /// Learner: a local client touched a session (reported to the leader with PINGs).
    pub fn touch_session(&self, session_id: i64, timeout: i32) {
        let _ = self.cmds.send(Command::TouchSession(session_id, timeout));
    }

    /// The leader's learner counts (`None` when not leading).
    pub async fn leader_stats(&self) -> Option<LeaderStats> {
        let (tx, rx) = oneshot::channel();
        self.cmds.send(Command::LeaderStats(tx)).ok()?;
        rx.await.ok().flatten()
    }

    /// Cuts (or restores) all of this peer's traffic, both ways, like a network
    /// partition around it: messages in either direction are dropped meanwhile.
    pub fn isolate(&self, on: bool) {
        self.isolated.store(on, Ordering::SeqCst);
    }

    /// A switch for [`PeerHandle::isolate`] that can be kept apart from the handle.
    pub fn isolation_switch(&self) -> IsolationSwitch {
        IsolationSwitch(self.isolated.clone())
    }

    /// Stops the peer at once (like a crash: connections drop, nothing is flushed).
    pub fn kill(self) {
        self.task.abort();
    }
}

/// Cuts (or restores) one peer's traffic, like [`PeerHandle::isolate`]; cloneable.
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

/// Network addresses of the ensemble.
#[derive(Debug, Clone)]
pub struct PeerAddrs {
    /// Election address of every server.
    pub election: BTreeMap<Sid, SocketAddr>,
    /// Quorum (leader-learner) address of every server.
    pub quorum: BTreeMap<Sid, SocketAddr>,
}

/// Starts a peer on already-bound listeners.
pub fn spawn_peer<R: Replica>(
    cfg: QuorumConfig,
    disk: DiskState,
    replica: R,
    election_listener: TcpListener,
    quorum_listener: TcpListener,
    addrs: PeerAddrs,
) -> PeerHandle {
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (status_tx, status_rx) = watch::channel(PeerStatus {
        state: PeerState::Looking,
        leader: None,
        serving: false,
    });
    let isolated = Arc::new(AtomicBool::new(false));
    let task = tokio::spawn(run(
        isolated.clone(),
        cfg,
        disk,
        replica,
        election_listener,
        quorum_listener,
        addrs,
        cmd_rx,
        status_tx,
    ));
    PeerHandle {
        cmds: cmd_tx,
        isolated,
        status: status_rx,
        task,
    }
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

fn spawn_conn(
    stream: TcpStream,
    conn: ConnId,
    to_leader_side: bool,
    events: mpsc::UnboundedSender<NetEvent>,
) -> mpsc::UnboundedSender<Outgoing> {
    let _ = stream.set_nodelay(true);
    let (rd, mut wr) = stream.into_split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Outgoing>();
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
            if wr.write_all(&buf).await.is_err() {
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
    tokio::spawn(read_conn(rd, conn, to_leader_side, events));
    tx
}

async fn read_conn(
    mut rd: OwnedReadHalf,
    conn: ConnId,
    leader_side: bool,
    events: mpsc::UnboundedSender<NetEvent>,
) {
    read_messages(&mut rd, conn, |msg| {
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
    mut deliver: impl FnMut(ZabMessage) -> bool,
) {
    const READ_CHUNK: usize = 8 * 1024;
    let mut codec = QuorumPacketCodec::default();
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
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

#[allow(clippy::too_many_arguments)]
async fn run<R: Replica>(
    isolated: Arc<AtomicBool>,
    cfg: QuorumConfig,
    disk: DiskState,
    mut replica: R,
    election_listener: TcpListener,
    quorum_listener: TcpListener,
    addrs: PeerAddrs,
    mut cmds: mpsc::UnboundedReceiver<Command>,
    status: watch::Sender<PeerStatus>,
) {
    let start = tokio::time::Instant::now();
    let now = || start.elapsed().as_millis() as u64;
    let me = cfg.my_sid;
    let mut net = ElectionNet::start(me, election_listener, addrs.election.clone());
    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel::<NetEvent>();
    let accept_tx = ev_tx.clone();
    let acceptor = tokio::spawn(async move {
        let mut next: u64 = 0;
        while let Ok((s, _)) = quorum_listener.accept().await {
            next += 1;
            let conn = (1u64 << 63) | next;
            let tx = spawn_conn(s, conn, true, accept_tx.clone());
            if accept_tx
                .send(NetEvent::LearnerConnected(conn, tx))
                .is_err()
            {
                break;
            }
        }
    });
    let _acceptor_guard = AbortOnDrop(acceptor);
    let init_timeout = cfg.init_timeout();
    let (mut peer, first) = QuorumPeer::new(cfg, disk, now());
    // Syncs of the disk thread report here; `durable_tx` stays alive so the channel only
    // ends with the driver.
    let (durable_tx, mut durable_rx) = mpsc::unbounded_channel::<(u64, Zxid)>();
    let mut disk =
        replica
            .log_appender()
            .and_then(|a| match DiskThread::start(a, durable_tx.clone()) {
                Ok(d) => Some(d),
                Err(e) => {
                    tracing::warn!("peer {me}: no disk thread ({e}); syncing on the driver");
                    None
                }
            });
    // Txns to persist, collected over a round of actions.
    let mut to_log: Vec<Proposal> = Vec::new();
    // Learners that connect while we are still looking (see `parked`).
    let mut parked = ParkedLearners::default();
    // Votes of peers that started looking before we did (see `early_votes`).
    let mut early = EarlyVotes::default();
    let mut writers: BTreeMap<ConnId, mpsc::UnboundedSender<Outgoing>> = BTreeMap::new();
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let mut pending = first;
    loop {
        if !parked.is_empty() && peer.state() != PeerState::Looking {
            // The election ended: a leader takes the early learners, anyone else closes
            // them (on_learner_connected does either).
            for (conn, msgs) in parked.take_all() {
                pending.extend(peer.on_learner_connected(now(), conn));
                for m in msgs {
                    pending.extend(peer.on_learner_message(now(), conn, m));
                }
            }
        }
        // Perform actions until none are left (persist confirmations may produce more).
        while !pending.is_empty() {
            let mut persisted: Option<Zxid> = None;
            let cut = isolated.load(Ordering::SeqCst);
            let batch = std::mem::take(&mut pending);
            if let Some(st) = stops_after_fast_forward(&batch) {
                // A role that ends applies what it logged (Apache's fastForwardDataBase)
                // before it announces LOOKING. Stop serving first: a client waiting for
                // one of those txns must not hear that it committed, as no quorum
                // acknowledged it (the next leader may well truncate it).
                replica.role_changed(st, None);
            }
            for a in batch {
                match a {
                    Action::SendNotification { to, n } => {
                        if !cut || to == me {
                            net.send(to, &n)
                        }
                    }
                    Action::ConnectLeader { leader, conn } => {
                        let addr = if cut {
                            None
                        } else {
                            addrs.quorum.get(&leader).copied()
                        };
                        let tx = ev_tx.clone();
                        tokio::spawn(async move {
                            let s = match addr {
                                Some(a) => {
                                    tokio::time::timeout(
                                        Duration::from_secs(2),
                                        TcpStream::connect(a),
                                    )
                                    .await
                                }
                                None => return,
                            };
                            match s {
                                Ok(Ok(s)) => {
                                    let w = spawn_conn(s, conn, false, tx.clone());
                                    let _ = tx.send(NetEvent::LeaderConnected(conn, w));
                                }
                                _ => {
                                    let _ = tx.send(NetEvent::Closed(conn, false));
                                }
                            }
                        });
                    }
                    Action::Send { conn, msg } if !cut => {
                        if let Some(w) = writers.get(&conn) {
                            let _ = w.send(Outgoing::Message(msg));
                        }
                    }
                    Action::Send { .. } => {}
                    Action::SendSnapshot { conn, zxid } if !cut => {
                        if let Some(w) = writers.get(&conn) {
                            let _ = w.send(Outgoing::Snapshot {
                                zxid,
                                body: replica.snapshot(),
                            });
                        }
                    }
                    Action::SendSnapshot { .. } => {}
                    Action::Close { conn } => {
                        writers.remove(&conn);
                    }
                    Action::Persist(p) => to_log.push(p),
                    Action::ReadLog { conn, from, to } => {
                        // The log must hold everything handed over so far.
                        if let Some(z) = settle(&mut to_log, &mut disk, &mut replica) {
                            persisted = persisted.max(Some(z));
                        }
                        let txns = replica.read_log(from, to);
                        pending_later(&mut pending, peer.on_log_read(now(), conn, txns));
                    }
                    Action::Truncate(z) => {
                        settle(&mut to_log, &mut disk, &mut replica);
                        replica.truncate(z);
                    }
                    Action::InstallSnapshot { zxid, data } => {
                        settle(&mut to_log, &mut disk, &mut replica);
                        replica.install_snapshot(zxid, data);
                    }
                    Action::Deliver(p) => replica.apply(&p),
                    Action::SaveAcceptedEpoch(e) => replica.save_accepted_epoch(e),
                    Action::SaveCurrentEpoch(e) => replica.save_current_epoch(e),
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
                        if state == PeerState::Looking && !cut {
                            for (from, n) in early.take_recent(now(), EARLY_VOTE_MAX_AGE) {
                                pending.extend(peer.on_notification(now(), from, &n));
                            }
                        }
                        if state == PeerState::Looking {
                            let why = peer.last_role_end().map(|e| e.to_string());
                            tracing::info!(
                                "peer {me}: LOOKING ({})",
                                why.as_deref().unwrap_or("start")
                            );
                        } else {
                            tracing::info!(
                                "peer {me}: {state:?}, leader {leader:?}, serving {serving}"
                            );
                        }
                        replica.role_changed(st, peer.next_zxid());
                        let _ = status.send(st);
                    }
                    Action::LearnerRequest { conn, packet, .. } => {
                        // REQUEST data: sessionId, cxid, type, request. Forwarded writes
                        // go to the server core; syncs are answered once everything
                        // proposed before them is committed.
                        if request_type(&packet) == Some(zk_proto::OpCode::Sync.to_i32()) {
                            pending_later(&mut pending, peer.sync_request(now(), conn));
                        } else {
                            replica.learner_request(conn, &packet);
                        }
                    }
                    Action::Revalidate {
                        conn,
                        session_id,
                        timeout,
                    } => {
                        let valid = replica.revalidate(conn, session_id, timeout);
                        pending_later(
                            &mut pending,
                            peer.revalidate_reply(now(), conn, session_id, valid),
                        );
                    }
                    Action::SyncDone => replica.sync_done(),
                    Action::SessionsTouched { sessions, .. } => replica.sessions_touched(&sessions),
                    Action::Revalidated { session_id, valid } => {
                        replica.revalidated(session_id, valid)
                    }
                }
            }
            if let Some(z) = flush(&mut to_log, &disk, &mut replica) {
                persisted = persisted.max(Some(z));
            }
            if let Some(z) = persisted {
                pending.extend(peer.on_persisted(now(), z));
            }
        }
        tokio::select! {
            d = durable_rx.recv(), if disk.is_some() => {
                if let Some((generation, z)) = d {
                    if disk.as_ref().is_some_and(|d| d.is_current(generation)) {
                        pending = peer.on_persisted(now(), z);
                    }
                }
            }
            m = net.recv() => match m {
                Some((from, n)) => {
                    tracing::debug!(
                        "notification from {from}: state {} leader {} zxid 0x{:x} round {} epoch {}",
                        n.state, n.leader, n.zxid, n.election_epoch, n.peer_epoch
                    );
                    if !isolated.load(Ordering::SeqCst) || from == me {
                        if from != me && peer.state() != PeerState::Looking {
                            early.record(from, &n, now());
                        }
                        pending = peer.on_notification(now(), from, &n);
                    }
                }
                None => return,
            },
            e = ev_rx.recv() => match e {
                Some(NetEvent::LeaderConnected(conn, w)) => {
                    writers.insert(conn, w);
                    pending = peer.on_leader_connected(now(), conn);
                }
                Some(NetEvent::LearnerConnected(conn, w)) => {
                    writers.insert(conn, w);
                    if peer.state() == PeerState::Looking {
                        parked.park(conn, now());
                    } else {
                        pending = peer.on_learner_connected(now(), conn);
                    }
                }
                Some(NetEvent::Message(..)) if isolated.load(Ordering::SeqCst) => {}
                Some(NetEvent::Message(conn, true, m)) if parked.contains(conn) => {
                    parked.message(conn, m);
                }
                Some(NetEvent::Closed(conn, true)) if parked.contains(conn) => {
                    parked.closed(conn);
                    writers.remove(&conn);
                }
                Some(NetEvent::Message(conn, leader_side, m)) => {
                    if !leader_side {
                        log_sync_mode(&m);
                    }
                    pending = if leader_side {
                        peer.on_learner_message(now(), conn, m)
                    } else {
                        peer.on_leader_message(now(), conn, m)
                    };
                }
                Some(NetEvent::Closed(conn, leader_side)) => {
                    writers.remove(&conn);
                    pending = if leader_side {
                        peer.on_learner_disconnected(now(), conn)
                    } else {
                        peer.on_leader_disconnected(now(), conn)
                    };
                }
                None => return,
            },
            c = cmds.recv() => match c {
                Some(Command::Propose(data, reply)) => {
                    let (r, out) = peer.propose(now(), data);
                    pending = out;
                    let _ = reply.send(r);
                }
                Some(Command::Forward(p)) => {
                    if !isolated.load(Ordering::SeqCst) {
                        pending = peer.forward(now(), p).1;
                    }
                }
                Some(Command::TouchSession(s, t)) => peer.touch_session(s, t),
                Some(Command::LeaderStats(reply)) => {
                    let stats = peer.as_leader().map(|l| {
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
                    });
                    let _ = reply.send(stats);
                }
                None => return,
            },
            _ = tick.tick() => {
                for conn in parked.expired(now(), init_timeout) {
                    writers.remove(&conn);
                }
                pending = peer.tick(now());
            }
        }
    }
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

/// Hands the round's txns to the disk: to the disk thread (confirmed when its sync reports
/// back), or persisted here with one batch; then returns the zxid now durable.
fn flush<R: Replica>(
    batch: &mut Vec<Proposal>,
    disk: &Option<DiskThread>,
    replica: &mut R,
) -> Option<Zxid> {
    let last = batch.last()?.zxid;
    match disk {
        Some(d) => {
            d.submit(std::mem::take(batch));
            None
        }
        None => {
            replica.persist_batch(batch);
            batch.clear();
            Some(last)
        }
    }
}

/// Flushes and waits until everything handed to the disk is durable (before reading,
/// truncating or replacing the log); returns the last zxid durable.
fn settle<R: Replica>(
    batch: &mut Vec<Proposal>,
    disk: &mut Option<DiskThread>,
    replica: &mut R,
) -> Option<Zxid> {
    let here = flush(batch, disk, replica);
    match disk {
        Some(d) => d.barrier(),
        None => here,
    }
}

fn pending_later(pending: &mut Vec<Action>, more: Vec<Action>) {
    pending.extend(more);
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
            read_messages(&mut rx, 1, |m| got_tx.send(m).is_ok()).await;
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
