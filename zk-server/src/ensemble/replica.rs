//! [`ServerReplica`]: the server core seen from the quorum driver. Committed txns go
//! through the [`Processor`] (so client replies and watches fire), role changes switch it
//! between leading and forwarding, and learners' forwarded writes go to the node task.
//!
//! Epochs, snapshots and the txn log are the member's [`NodeDisk`] (in memory, or Apache's
//! files in a data directory); txns are appended on the driver's disk thread with group
//! commit. SNAP sends the database serialized as Apache streams it, and installing one
//! replaces the member's snapshot and log.

use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::mpsc::UnboundedSender;
use zk_proto::quorum::QuorumPacket;
use zk_proto::txn::TxnEntry;

use crate::database::ZkDatabase;
use crate::pipeline::{CoreSettings, Output, Processor, WriteMode};
use crate::quorum::net::driver::{LogAppender, PeerStatus, Replica};
use crate::quorum::net::snap_stream;
use crate::quorum::zab::Proposal;
use crate::quorum::{PeerState, Zxid};
use crate::server::now_ms;
use crate::session::owner::LearnerConn;
use crate::session::SessionOwners;

pub use super::member_disk::{DiskStats, NodeDisk};

/// Messages from the peer side (and from processor calls) to the node task, in the order
/// the processor produced them.
#[derive(Debug)]
pub enum NodeMsg {
    /// Outputs of the processor.
    Outputs(Vec<Output>),
    /// A learner (its connection to us) forwarded a write (we lead).
    Forwarded(LearnerConn, QuorumPacket),
    /// The leader answered our REVALIDATE of a session a client moved here with.
    Revalidated {
        /// The session.
        session: i64,
        /// Whether it is still alive.
        valid: bool,
    },
    /// The peer changed role.
    Role(PeerStatus),
    /// The leader answered our oldest forwarded sync.
    SyncDone,
}

/// The processor plus the channel its outputs go to; always used under one lock so the
/// node task sees outputs in processor order.
pub struct Core {
    /// The server core.
    pub processor: Processor,
    /// Leader: which member each session's client is on.
    pub owners: SessionOwners,
    /// The peer's latest role, as the replica saw it change.
    pub role: PeerStatus,
    /// Since when the peer has been LOOKING (ms; read-only mode starts after a grace).
    pub looking_since: i64,
    /// Serving read-only clients while cut off from a quorum.
    pub read_only: bool,
    settings: CoreSettings,
    out: UnboundedSender<NodeMsg>,
}

impl Core {
    /// Wraps a processor.
    pub fn new(
        processor: Processor,
        settings: CoreSettings,
        out: UnboundedSender<NodeMsg>,
    ) -> Self {
        Core {
            processor,
            owners: SessionOwners::default(),
            role: PeerStatus {
                state: PeerState::Looking,
                leader: None,
                serving: false,
            },
            looking_since: now_ms(),
            read_only: false,
            settings,
            out,
        }
    }

    /// Starts serving read-only clients (the peer is still LOOKING: checked by the caller
    /// under this same lock, so a role change cannot slip in between).
    pub fn enter_read_only(&mut self) {
        self.reset();
        self.processor.set_write_mode(WriteMode::ReadOnly);
        self.read_only = true;
    }

    /// Sends processor outputs to the node task.
    pub fn emit(&self, out: Vec<Output>) {
        if !out.is_empty() {
            let _ = self.out.send(NodeMsg::Outputs(out));
        }
    }

    fn send(&self, m: NodeMsg) {
        let _ = self.out.send(m);
    }

    /// Rebuilds the processor over its own database, dropping connections, queues,
    /// waiters and prepared-but-uncommitted changes: when a member stops serving its
    /// clients are disconnected, and what it proposed as leader may never commit.
    fn reset(&mut self) {
        let db = std::mem::take(&mut self.processor.db);
        let mut p = Processor::new(db, self.settings.clone(), now_ms());
        p.set_write_mode(WriteMode::Forward);
        self.processor = p;
    }

    /// Rebuilds the processor over `db` (after TRUNC / SNAP; clients are disconnected
    /// then, as the member is not serving).
    fn reload(&mut self, db: ZkDatabase) {
        let mut p = Processor::new(db, self.settings.clone(), now_ms());
        p.set_write_mode(WriteMode::Forward);
        self.processor = p;
    }
}

/// The shared core.
pub type SharedCore = Arc<Mutex<Core>>;

/// Locks the shared core (a poisoned lock is still usable: the state is consistent
/// between calls).
pub fn lock(c: &SharedCore) -> MutexGuard<'_, Core> {
    c.lock().unwrap_or_else(|p| p.into_inner())
}

/// The server core as the quorum driver's [`Replica`].
pub struct ServerReplica {
    disk: NodeDisk,
    core: SharedCore,
}

impl ServerReplica {
    /// A replica over a member's disk and core (whose database came from
    /// [`NodeDisk::load`]).
    pub fn new(disk: NodeDisk, core: SharedCore) -> Self {
        ServerReplica { disk, core }
    }
}

/// Appends (one write + one sync for the batch), then starts the periodic snapshot when
/// `snapCount` txns went by: on disk a fuzzy one, written a slice at a time on its own
/// thread (the core is locked per slice, never for the whole tree); in memory a copy.
///
/// Returns whether the txns are durable.
fn append(disk: &NodeDisk, core: &SharedCore, incarnation: Option<u64>, txns: &[Proposal]) -> bool {
    /// Bytes of node records per slice (as the standalone server).
    const SLICE_BYTES: usize = 256 * 1024;
    let Some(snapshot_due) = disk.append(incarnation, txns) else {
        return false;
    };
    if !snapshot_due {
        return true;
    }
    if disk.on_disk() {
        let snap = lock(core).processor.db.begin_snapshot();
        let core = core.clone();
        disk.stream_snapshot(snap, move |walk, buf| {
            let c = lock(&core);
            walk.step(&c.processor.db.tree, buf, SLICE_BYTES)
        });
    } else {
        let image = lock(core).processor.db.image();
        disk.take_snapshot(image);
    }
    true
}

/// The disk thread's side of a member: its disk, and the core for periodic snapshots.
struct MemberAppender {
    disk: NodeDisk,
    core: SharedCore,
    incarnation: u64,
}

impl LogAppender for MemberAppender {
    fn append(&mut self, txns: &[Proposal]) -> bool {
        append(&self.disk, &self.core, Some(self.incarnation), txns)
    }
}

impl Replica for ServerReplica {
    fn persist(&mut self, p: &Proposal) {
        // The driver persists here only without a disk thread (see `log_appender`); this
        // path cannot report a failed sync.
        append(&self.disk, &self.core, None, std::slice::from_ref(p));
    }

    fn persist_batch(&mut self, ps: &[Proposal]) {
        append(&self.disk, &self.core, None, ps);
    }

    fn log_appender(&mut self) -> Option<Box<dyn LogAppender>> {
        Some(Box::new(MemberAppender {
            disk: self.disk.clone(),
            core: self.core.clone(),
            incarnation: self.disk.incarnation(),
        }))
    }

    fn apply(&mut self, p: &Proposal) {
        match TxnEntry::decode(p.data.clone()) {
            Ok(e) => {
                let mut c = lock(&self.core);
                let out = c.processor.committed(std::slice::from_ref(&e), now_ms());
                c.emit(out);
            }
            Err(e) => tracing::error!("undecodable committed txn {:#x}: {e}", p.zxid),
        }
    }

    fn snapshot(&self) -> Bytes {
        // The whole tree in one walk under the lock: SNAP is the database as of the zxid
        // the core sends with it.
        let (snap, nodes) = {
            let c = lock(&self.core);
            let mut snap = c.processor.db.begin_snapshot();
            let mut nodes = bytes::BytesMut::new();
            snap.walk.step(&c.processor.db.tree, &mut nodes, usize::MAX);
            (snap, nodes)
        };
        snap_stream::encode_parts(&snap.sessions, &snap.walk.acl_table(), &nodes)
    }

    fn install_snapshot(&mut self, zxid: Zxid, data: Bytes) {
        // The driver checked the stream's structure, so this only fails on a bug.
        match self.disk.install(zxid, &data) {
            Ok(db) => lock(&self.core).reload(db),
            Err(e) => tracing::error!("undecodable snapshot {zxid:#x} from the leader: {e}"),
        }
    }

    fn truncate(&mut self, zxid: Zxid) {
        let db = self.disk.truncate(zxid);
        lock(&self.core).reload(db);
    }

    fn read_log(&self, from: Zxid, to: Zxid) -> Option<Vec<Proposal>> {
        self.disk.read_log(from, to)
    }

    fn save_accepted_epoch(&mut self, e: i64) {
        self.disk.save_accepted_epoch(e);
    }

    fn save_current_epoch(&mut self, e: i64) {
        self.disk.save_current_epoch(e);
    }

    fn role_changed(&mut self, status: PeerStatus, next_zxid: Option<Zxid>) {
        let mut c = lock(&self.core);
        if c.read_only {
            // Any role change ends read-only mode (Apache shuts its read-only server down
            // when the election ends): local sessions go, their clients reconnect.
            c.read_only = false;
            c.reset();
        }
        if status.state == PeerState::Looking && c.role.state != PeerState::Looking {
            c.looking_since = now_ms();
        }
        c.role = status;
        match next_zxid {
            Some(z) if status.serving && status.state == PeerState::Leading => {
                let now = now_ms();
                // A new leadership knows no session owners yet: the first member to use
                // a session claims it (as Apache's session tracker).
                c.owners.clear();
                let p = &mut c.processor;
                p.set_write_mode(WriteMode::Local);
                p.set_next_zxid(z);
                // Sessions get a fresh timeout under a new leader (as in Apache), so
                // clients of the old leader have time to move over.
                let sessions: Vec<(i64, i32)> =
                    p.db.sessions().iter().map(|(s, t)| (*s, *t)).collect();
                for (s, t) in sessions {
                    if !p.touch_session(s, now) {
                        p.sessions.add(s, t, now);
                    }
                }
            }
            _ if !status.serving => c.reset(),
            _ => c.processor.set_write_mode(WriteMode::Forward),
        }
        c.send(NodeMsg::Role(status));
    }

    fn learner_request(&mut self, learner: LearnerConn, packet: &QuorumPacket) {
        lock(&self.core).send(NodeMsg::Forwarded(learner, packet.clone()));
    }

    fn revalidate(&mut self, learner: LearnerConn, session_id: i64, timeout: i32) -> bool {
        let mut c = lock(&self.core);
        let valid = touch(&mut c.processor, session_id, timeout, now_ms());
        if valid {
            c.owners
                .set(session_id, crate::session::Owner::Learner(learner));
        }
        valid
    }

    fn revalidated(&mut self, session_id: i64, valid: bool) {
        lock(&self.core).send(NodeMsg::Revalidated {
            session: session_id,
            valid,
        });
    }

    fn sessions_touched(&mut self, sessions: &[(i64, i32)]) {
        let now = now_ms();
        let mut c = lock(&self.core);
        for (s, t) in sessions {
            touch(&mut c.processor, *s, *t, now);
        }
    }

    fn sync_done(&mut self) {
        lock(&self.core).send(NodeMsg::SyncDone);
    }
}

/// Leader: a learner's session activity. The timeout its connection negotiated (learners
/// send it clamped) becomes the session's, as Apache's `touchSession(id, timeout)`; a
/// packet without one keeps the old timeout.
fn touch(p: &mut crate::pipeline::Processor, session: i64, timeout: i32, now: i64) -> bool {
    if timeout > 0 {
        p.touch_session_with(session, timeout, now)
    } else {
        p.touch_session(session, now)
    }
}
