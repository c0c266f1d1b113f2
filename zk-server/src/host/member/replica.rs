//! [`ServerReplica`]: the server core seen from the quorum driver. Committed txns go
//! through the [`Processor`] (so client replies and watches fire), role changes switch it
//! between leading and forwarding, and learners' forwarded writes go to the node task.
//!
//! Epochs, snapshots and the txn log are the member's [`NodeDisk`] (in memory, or Apache's
//! files in a data directory); txns are appended on the driver's disk thread with group
//! commit. SNAP sends the database serialized as Apache streams it, walked fuzzily on its
//! own thread so a large tree does not stall the leader, and installing one replaces the
//! member's snapshot and log.

use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::mpsc::UnboundedSender;
use zk_proto::quorum::QuorumPacket;
use zk_proto::txn::TxnEntry;

use crate::core::processor::{CoreSettings, Output, Processor, WriteMode};
use crate::core::session::owner::LearnerConn;
use crate::core::session::SessionOwners;
use crate::host::quorum::driver::{LogAppender, PeerStatus, PendingSnapshot, Replica};
use crate::host::server::now_ms;
use crate::state::database::{FuzzySnapshot, ZkDatabase};
use crate::storage::snap_stream;
use crate::zab::broadcast::Proposal;
use crate::zab::{PeerState, Zxid};

pub use crate::storage::member_disk::{DiskStats, NodeDisk};

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
    /// Bumped when the database is replaced (TRUNC, SNAP): a snapshot walk in progress
    /// over the old tree stops.
    reloads: u64,
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
            reloads: 0,
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
        self.reloads += 1;
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

/// Bytes of node records per slice of a snapshot walk (as the standalone server): the
/// core's lock is held for one slice at a time.
const SLICE_BYTES: usize = 256 * 1024;

/// Appends (one write + one sync for the batch), then starts the periodic snapshot when
/// `snapCount` txns went by: on disk a fuzzy one, written a slice at a time on its own
/// thread (the core is locked per slice, never for the whole tree); in memory a copy.
///
/// Returns whether the txns are durable.
fn append(disk: &NodeDisk, core: &SharedCore, incarnation: Option<u64>, txns: &[Proposal]) -> bool {
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

/// Serializes the tree for a SNAP `slice` bytes at a time, the core locked for one slice
/// only; `between` runs between slices, unlocked. `None` when the database was replaced
/// meanwhile (the member stopped leading, so the SNAP's learner is gone too).
fn walk_for_snap(
    core: &SharedCore,
    mut snap: FuzzySnapshot,
    reloads: u64,
    slice: usize,
    mut between: impl FnMut(),
) -> Option<Vec<Bytes>> {
    let mut nodes = bytes::BytesMut::new();
    loop {
        let c = lock(core);
        if c.reloads != reloads {
            return None;
        }
        let done = snap.walk.step(&c.processor.db.tree, &mut nodes, slice);
        drop(c);
        if done {
            break;
        }
        between();
    }
    let acls = snap.walk.acl_table();
    Some(snap_stream::body_pieces(
        &snap.sessions,
        &acls,
        nodes.freeze(),
    ))
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

    fn snapshot(&self) -> PendingSnapshot {
        // A fuzzy walk on its own thread, the core locked one slice at a time, so the
        // member keeps serving and committing meanwhile. It starts now, with every txn up
        // to the SNAP's zxid applied; txns applied during the walk may be in it too, and
        // the learner replays them after it (queued behind the SNAP), as with Apache.
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (snap, reloads) = {
            let c = lock(&self.core);
            (c.processor.db.begin_snapshot(), c.reloads)
        };
        let core = self.core.clone();
        let walk = move || {
            // The lock is not fair: yielding lets a commit waiting for it in.
            if let Some(body) =
                walk_for_snap(&core, snap, reloads, SLICE_BYTES, std::thread::yield_now)
            {
                let _ = tx.send(body);
            }
        };
        if let Err(e) = std::thread::Builder::new()
            .name("zk-snap-send".into())
            .spawn(walk)
        {
            // The sender is dropped with the closure: the learner's connection closes and
            // it syncs again.
            tracing::error!("cannot start a thread to serialize a SNAP: {e}");
        }
        rx
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
                .set(session_id, crate::core::session::Owner::Learner(learner));
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
fn touch(p: &mut crate::core::processor::Processor, session: i64, timeout: i32, now: i64) -> bool {
    if timeout > 0 {
        p.touch_session_with(session, timeout, now)
    } else {
        p.touch_session(session, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::database::tests::{canon, Gen};
    use crate::storage::database_builder::DatabaseBuilder;
    use crate::storage::snapshot_reader::read_snap_body;

    fn core_over(db: ZkDatabase) -> SharedCore {
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let settings = CoreSettings::default();
        let p = Processor::new(db, settings.clone(), 0);
        Arc::new(Mutex::new(Core::new(p, settings, tx)))
    }

    fn replay(txns: &[TxnEntry]) -> ZkDatabase {
        let mut db = ZkDatabase::new();
        for e in txns {
            db.apply(e);
        }
        db
    }

    #[test]
    fn a_snap_walked_while_txns_commit_plus_the_replay_of_those_txns_is_the_leader_state() {
        let mut g = Gen::new(21);
        for _ in 0..4000 {
            g.random_op();
        }
        // The leader has applied the first half when the SNAP starts; the rest commits
        // during the walk (one txn between slices) and after it.
        let half = g.log.len() / 2;
        let core = core_over(replay(&g.log[..half]));
        let start = canon(&lock(&core).processor.db);
        let (snap, reloads) = {
            let c = lock(&core);
            (c.processor.db.begin_snapshot(), c.reloads)
        };
        let snap_zxid = snap.last_zxid;
        assert_eq!(snap_zxid, g.log[half - 1].header.zxid);
        let mut later = g.log[half..].iter();
        let mut during = 0;
        let body = walk_for_snap(&core, snap, reloads, 200, || {
            if let Some(e) = later.next() {
                lock(&core).processor.committed(std::slice::from_ref(e), 0);
                during += 1;
            }
        })
        .expect("walked");
        for e in later {
            lock(&core).processor.committed(std::slice::from_ref(e), 0);
        }
        let leader = canon(&lock(&core).processor.db);
        assert_eq!(leader, canon(&g.db));
        assert!(during > 100, "txns committed during the walk: {during}");

        // What the learner does: build from the body, then apply what was queued after.
        let body = body.concat();
        let fuzzy =
            read_snap_body(&body, snap_zxid, DatabaseBuilder::new()).expect("the body reads back");
        let seen = canon(&fuzzy);
        assert_ne!(seen, start, "the walk saw txns after its start");
        assert_ne!(seen, leader, "the walk ended before the last txns");
        let mut learner = fuzzy;
        for e in &g.log[half..] {
            learner.apply(e);
        }
        assert_eq!(canon(&learner), leader);
    }

    #[test]
    fn a_walk_stops_when_the_database_is_replaced() {
        let mut g = Gen::new(5);
        for _ in 0..500 {
            g.random_op();
        }
        let core = core_over(replay(&g.log));
        let (snap, reloads) = {
            let c = lock(&core);
            (c.processor.db.begin_snapshot(), c.reloads)
        };
        let mut reloaded = false;
        let body = walk_for_snap(&core, snap, reloads, 100, || {
            if !reloaded {
                lock(&core).reload(ZkDatabase::new());
                reloaded = true;
            }
        });
        assert!(body.is_none());
    }
}
