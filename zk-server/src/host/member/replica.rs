//! A node's replica side, as its node task runs it: the snapshot walks it carries out a
//! slice at a time ([`Walks`]: SNAP bodies for learners, periodic fuzzy snapshot files)
//! and the disk thread's appender ([`DiskAppender`]).
//!
//! Epochs, snapshots and the txn log are the node's [`NodeDisk`] (in memory, or Apache's
//! files in a data directory); txns are appended on the node's disk thread with group
//! commit: when a snapshot is due it asks the node task, which owns the database, to walk
//! it, and the pieces go back to the disk thread.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::oneshot;

use crate::host::quorum::driver::{LogAppender, PendingSnapshot};
use crate::state::database::{FuzzySnapshot, ZkDatabase};
use crate::storage::disk::{Appended, SnapshotFeed};
use crate::storage::snap_stream;
use crate::zab::broadcast::Proposal;
use crate::zab::Zxid;

pub use crate::storage::disk::{DiskStats, NodeDisk};

/// Bytes of node records per slice of a snapshot walk: the node task does one slice
/// between two of its events, so every request waits for up to a slice at each of its
/// steps (about 0.3 ms here; at 256 KiB a write's median went from 0.5 to 2.2 ms while a
/// 10M-znode snapshot was written).
pub const SLICE_BYTES: usize = 64 * 1024;

/// Slices of a snapshot file handed over and not yet written beyond which the walk waits
/// ([`SnapshotFeed::backlog`]), so the walk keeps pace with the disk and never holds
/// more of the tree's records than these in memory.
pub const MAX_FILE_BACKLOG: usize = 8;

/// Where a walk's records go.
enum Target {
    /// A SNAP body for a learner, sent whole once walked.
    Learner {
        nodes: BytesMut,
        body: oneshot::Sender<Vec<Bytes>>,
    },
    /// A snapshot file, fed slice by slice.
    File(SnapshotFeed),
}

struct Walk {
    snap: FuzzySnapshot,
    target: Target,
}

impl Walk {
    /// A snapshot file's walk whose slices the disk thread has not caught up with.
    fn waits_for_disk(&self) -> bool {
        matches!(&self.target, Target::File(f) if f.backlog() >= MAX_FILE_BACKLOG)
    }
}

/// The fuzzy snapshot walks in progress over the member's database. Each starts with
/// every txn applied so far; txns applied during the walk may be in it too (a fuzzy
/// snapshot, as Apache's: a learner replays the txns queued after its SNAP, a restart
/// replays the log after the file's zxid, and replaying a txn is harmless).
#[derive(Default)]
pub struct Walks {
    active: VecDeque<Walk>,
}

impl Walks {
    /// Whether a walk has slices left.
    pub fn is_busy(&self) -> bool {
        !self.active.is_empty()
    }

    /// Whether every walk with slices left waits for the disk thread to write what it
    /// was given ([`MAX_FILE_BACKLOG`]): [`Walks::step`] does nothing until then.
    pub fn waits_for_disk(&self) -> bool {
        self.is_busy() && self.active.iter().all(Walk::waits_for_disk)
    }

    /// Whether a snapshot file is being walked (one at a time).
    pub fn writing_file(&self) -> bool {
        self.active
            .iter()
            .any(|w| matches!(w.target, Target::File(_)))
    }

    /// Starts walking `db` for a SNAP; the body arrives on the returned receiver once
    /// walked (dropped, closing the learner's connection, if the walk is cancelled).
    pub fn for_learner(&mut self, db: &ZkDatabase) -> PendingSnapshot {
        let (body, rx) = oneshot::channel();
        self.active.push_back(Walk {
            snap: db.begin_snapshot(),
            target: Target::Learner {
                nodes: BytesMut::new(),
                body,
            },
        });
        rx
    }

    /// Starts walking `snap` into a snapshot file.
    pub fn to_file(&mut self, snap: FuzzySnapshot, feed: SnapshotFeed) {
        self.active.push_back(Walk {
            snap,
            target: Target::File(feed),
        });
    }

    /// Walks one slice (about `slice` bytes) of the oldest walk over `db` that does not
    /// wait for the disk, the database every walk began on; finished walks deliver their
    /// body or complete their file. True when a snapshot file was completed.
    pub fn step(&mut self, db: &ZkDatabase, slice: usize) -> bool {
        let Some(i) = self.active.iter().position(|w| !w.waits_for_disk()) else {
            return false;
        };
        let Some(mut w) = self.active.remove(i) else {
            return false;
        };
        let done = match &mut w.target {
            // The learner's connection is gone: nobody waits for the body.
            Target::Learner { body, .. } if body.is_closed() => return false,
            // The disk writes no file for it (skipped: the last one is still finishing).
            Target::File(feed) if feed.given_up() => return false,
            Target::Learner { nodes, .. } => w.snap.walk.step(&db.tree, nodes, slice),
            Target::File(feed) => {
                let mut buf = BytesMut::new();
                let done = w.snap.walk.step(&db.tree, &mut buf, slice);
                feed.nodes(buf.freeze());
                done
            }
        };
        if !done {
            self.active.push_back(w);
            return false;
        }
        let acls = w.snap.walk.acl_table();
        match w.target {
            Target::Learner { nodes, body } => {
                let pieces = snap_stream::body_pieces(&w.snap.sessions, &acls, nodes.freeze());
                let _ = body.send(pieces);
                false
            }
            Target::File(feed) => {
                let (locked, left) = w.snap.walk.deferred_to_replay();
                if locked + left > 0 {
                    tracing::info!(
                        "snapshot {:#x}: {locked} nodes whose ACL changed during the walk \
                         written locked and {left} created during it left out, for the \
                         log replay after it to set",
                        w.snap.last_zxid
                    );
                }
                feed.end();
                true
            }
        }
    }

    /// Stops every walk: the database they walk is being replaced (TRUNC, SNAP), the node
    /// stops, or the member stopped leading (a SNAP's learner is gone then too). Files in progress are
    /// abandoned and learners waiting for a body see their connection close.
    pub fn cancel(&mut self) {
        self.active.clear();
    }
}

/// What the disk thread tells the node task.
#[derive(Debug)]
pub enum DiskEvent {
    /// Enough txns were logged since the last snapshot: take one (a file when the disk is
    /// a data directory, else an image in memory).
    SnapshotDue {
        /// Which snapshot (see [`NodeDisk::append`]): reports queued behind the one that
        /// took it are ignored.
        round: u64,
        /// Whether snapshots go to a data directory (read here, on the disk thread, so
        /// the node task does not wait for the disk's lock across a sync to learn it).
        on_disk: bool,
    },
    /// Txns could not be made durable, and never will be (a failed device): crash-stop.
    AppendFailed,
    /// The disk is full: txns are held in memory until space returns (writes should be
    /// refused meanwhile).
    NoSpace,
    /// Space returned: the held txns are durable, and writes may be accepted again.
    SpaceReturned,
}

/// The disk thread's side of a node: appends with one write + one sync per batch, and
/// tells the node task when a snapshot is due.
pub struct DiskAppender {
    disk: NodeDisk,
    incarnation: u64,
    events: UnboundedSender<DiskEvent>,
    /// Whether the last append found the disk full.
    no_space: bool,
}

impl DiskAppender {
    /// An appender for `disk` as it is now (an earlier run's appender, still finishing
    /// after a kill, is refused by the disk).
    pub fn new(disk: NodeDisk, events: UnboundedSender<DiskEvent>) -> Self {
        let incarnation = disk.incarnation();
        DiskAppender {
            disk,
            incarnation,
            events,
            no_space: false,
        }
    }

    /// Tells the node task what an append came to; true when durable.
    fn report(&mut self, r: Appended) -> bool {
        match r {
            Appended::Durable(due) => {
                if std::mem::take(&mut self.no_space) {
                    let _ = self.events.send(DiskEvent::SpaceReturned);
                }
                if let Some(round) = due {
                    let on_disk = self.disk.on_disk();
                    let _ = self.events.send(DiskEvent::SnapshotDue { round, on_disk });
                }
                true
            }
            Appended::NoSpace => {
                if !std::mem::replace(&mut self.no_space, true) {
                    let _ = self.events.send(DiskEvent::NoSpace);
                }
                false
            }
            Appended::Failed => {
                self.no_space = false;
                let _ = self.events.send(DiskEvent::AppendFailed);
                false
            }
        }
    }
}

impl LogAppender for DiskAppender {
    fn append(&mut self, txns: &[Proposal]) -> bool {
        let r = self.disk.append_txns(Some(self.incarnation), txns);
        self.report(r)
    }

    fn holding(&self) -> bool {
        self.no_space && self.disk.has_held()
    }

    fn retry(&mut self) -> Option<Zxid> {
        let (r, last) = self.disk.retry_held(Some(self.incarnation))?;
        self.report(r).then_some(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::database::tests::{canon, Gen};
    use crate::storage::database_builder::DatabaseBuilder;
    use crate::storage::snapshot_reader::read_snap_body;
    use zk_proto::txn::TxnEntry;

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
        let mut db = replay(&g.log[..half]);
        let start = canon(&db);
        let mut walks = Walks::default();
        let mut body = walks.for_learner(&db);
        let snap_zxid = db.last_zxid();
        assert_eq!(snap_zxid, g.log[half - 1].header.zxid);
        let mut later = g.log[half..].iter();
        let mut during = 0;
        while walks.is_busy() {
            walks.step(&db, 200);
            if !walks.is_busy() {
                break;
            }
            if let Some(e) = later.next() {
                db.apply(e);
                during += 1;
            }
        }
        for e in later {
            db.apply(e);
        }
        let leader = canon(&db);
        assert_eq!(leader, canon(&g.db));
        assert!(during > 100, "txns committed during the walk: {during}");

        // What the learner does: build from the body, then apply what was queued after.
        let body = body.try_recv().expect("walked").concat();
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
    fn a_snapshot_file_walk_keeps_pace_with_the_disk_thread() {
        use crate::storage::disk_thread::DiskThread;
        let mut g = Gen::new(7);
        for _ in 0..500 {
            g.random_op();
        }
        let db = replay(&g.log);
        let dir = tempfile::tempdir().unwrap();
        let disk = NodeDisk::open(dir.path()).unwrap();
        disk.set_snap_count(2);
        let first = &g.log[0];
        let mut data = BytesMut::new();
        first.write(&mut data);
        let logged = Proposal {
            zxid: first.header.zxid,
            data: data.freeze(),
        };
        let round = disk
            .append(None, &[logged])
            .expect("durable")
            .expect("a snapshot is due");
        let (events, _) = tokio::sync::mpsc::unbounded_channel();
        let (durable, _) = tokio::sync::mpsc::unbounded_channel();
        let thread =
            DiskThread::start(Box::new(DiskAppender::new(disk.clone(), events)), durable).unwrap();
        let jobs = thread.jobs();
        // The disk thread is busy (a long sync, say) while the walk starts.
        let (release, hold) = std::sync::mpsc::channel::<()>();
        jobs.run(move || {
            let _ = hold.recv();
        });
        let snap = db.begin_file_snapshot();
        let (sessions, acls) = (snap.sessions.clone(), snap.walk.acl_table());
        let feed = SnapshotFeed::begin(&disk, &jobs, round, snap.last_zxid, sessions, acls);
        let mut walks = Walks::default();
        walks.to_file(snap, feed);
        for _ in 0..50 {
            assert!(!walks.step(&db, 100));
        }
        // It stopped after MAX_FILE_BACKLOG slices instead of queueing the whole tree
        // ahead of the appends.
        assert!(walks.is_busy());
        assert!(walks.waits_for_disk());
        release.send(()).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut steps = 0;
        while walks.is_busy() {
            assert!(std::time::Instant::now() < deadline, "the walk did not end");
            if walks.waits_for_disk() {
                std::thread::sleep(std::time::Duration::from_millis(1));
            } else {
                walks.step(&db, 100);
                steps += 1;
            }
        }
        assert!(steps > 50, "slices: {steps}");
        while disk.snapshots_written() == 0 {
            assert!(std::time::Instant::now() < deadline, "no snapshot file");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        // A walk the disk writes no file for (its round was taken already; a snapshot
        // due while the last is being finished is skipped the same way) stops within a
        // few slices instead of walking the whole tree for nothing.
        let snap = db.begin_file_snapshot();
        let (sessions, acls) = (snap.sessions.clone(), snap.walk.acl_table());
        let feed = SnapshotFeed::begin(&disk, &jobs, round, snap.last_zxid, sessions, acls);
        walks.to_file(snap, feed);
        let mut slices = 0;
        while walks.is_busy() {
            assert!(
                std::time::Instant::now() < deadline,
                "the walk did not stop"
            );
            if walks.waits_for_disk() {
                std::thread::sleep(std::time::Duration::from_millis(1));
            } else {
                walks.step(&db, 100);
                slices += 1;
            }
        }
        assert!(
            slices <= 2 * MAX_FILE_BACKLOG,
            "{slices} of {steps} slices walked"
        );
        assert_eq!(disk.snapshots_written(), 1);
        drop(thread);
        disk.recover().unwrap();
        let (back, state) = disk.load(10);
        assert_eq!(state.last_zxid, db.last_zxid());
        assert_eq!(canon(&back), canon(&db));
    }

    #[test]
    fn a_walk_stops_when_the_database_is_replaced() {
        let mut g = Gen::new(5);
        for _ in 0..500 {
            g.random_op();
        }
        let db = replay(&g.log);
        let mut walks = Walks::default();
        let mut body = walks.for_learner(&db);
        walks.step(&db, 100);
        assert!(walks.is_busy());
        walks.cancel();
        assert!(!walks.is_busy());
        assert!(matches!(
            body.try_recv(),
            Err(oneshot::error::TryRecvError::Closed)
        ));
    }

    #[test]
    fn a_walk_for_a_learner_that_left_is_dropped() {
        let mut g = Gen::new(6);
        for _ in 0..500 {
            g.random_op();
        }
        let db = replay(&g.log);
        let mut walks = Walks::default();
        drop(walks.for_learner(&db));
        walks.step(&db, 100);
        assert!(!walks.is_busy());
    }
}
