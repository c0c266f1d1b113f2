//! [`NodeDisk`]: what a server keeps across a restart, the one storage of standalone
//! servers and ensemble members alike: the epochs (members), the latest snapshot and the
//! txns logged after it.
//!
//! With a data directory this is Apache's layout (`version-2/log.*`, `snapshot.*`, epoch
//! files, via [`Storage`]); without one it lives in memory, shaped the same way (one
//! snapshot image plus the txns after it; [`MemoryStore`] is such a disk, shared so a test
//! can restart a server over it). Either way memory stays bounded: the disk keeps no txn
//! history beyond the last `commitLogCount` txns a restarted member needs for fast DIFF,
//! older DIFF ranges are read back from the log, and snapshots follow Apache's
//! `SyncRequestProcessor` policy: one when more than `snapCount/2 + rand(snapCount/2)` txns
//! or `snapSizeLimitInKb/2 + rand(snapSizeLimitInKb/2)` of them were logged since the
//! last one; in memory a snapshot also drops the txns before it.
//!
//! All writing happens on the server's one disk thread
//! ([`crate::storage::disk_thread::DiskThread`]): group-committed appends, the pieces of
//! a fuzzy snapshot file the node task walks ([`NodeDisk::begin_snapshot`],
//! [`NodeDisk::snapshot_nodes`], [`NodeDisk::end_snapshot`]) and autopurge
//! ([`NodeDisk::purge`]), in the order the node task queued them. The one exception is
//! the end of a snapshot file (the copy of its node records into the file, its syncs and
//! its publication), which takes seconds for a big tree and runs on a thread of its own
//! so appends do not wait for it ([`NodeDisk::end_snapshot`]). The lock only
//! serialises the disk thread with the node task's reads and replacements of the log
//! (DIFF, TRUNC, SNAP), which it does after waiting for the thread to drain.
//!
//! A restart loads the newest snapshot and replays the log after it as it reads it; a
//! SNAP from a leader replaces snapshot and log at once.
//!
//! On disk, the files stay bounded by autopurge (run on [`crate::storage::PurgeTimer`]):
//! the newest `autopurge.snapRetainCount` snapshots and the logs to replay from the
//! oldest of them are kept. A lagging learner whose DIFF would need a purged log gets a
//! SNAP instead ([`NodeDisk::read_log`] says the log no longer reaches back).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::BytesMut;
use zk_proto::txn::TxnEntry;

use crate::config::ServerConfig;
use crate::error::{Result, ServerError};
use crate::state::database::{DatabaseImage, ZkDatabase};
use crate::storage::database_builder::DatabaseBuilder;
use crate::storage::disk_thread::DiskJobs;
use crate::storage::snapshot::{FinishingSnapshot, PieceGuard};
use crate::storage::snapshot_reader::{read_snap_body, ReadError};
use crate::storage::{
    read_epoch_file, write_epoch_file, Autopurge, EpochFile, SnapshotData, SnapshotStream, Storage,
    StorageOptions,
};
use crate::zab::broadcast::{DiskState, Proposal};
use crate::zab::Zxid;

/// Apache's default `snapCount`.
pub const DEFAULT_SNAP_COUNT: u64 = 100_000;

/// Apache's default `snapSizeLimitInKb` (4 GiB of logged txns), in bytes.
pub const DEFAULT_SNAP_SIZE_LIMIT: u64 = 4 * 1024 * 1024 * 1024;

/// What a disk held at open: the database of its newest snapshot (with the logged txns
/// replayed as they were read) and the txns logged after the snapshot that are kept for
/// a member's DIFF window.
#[derive(Debug, Default, Clone)]
pub struct Recovered {
    /// The state the newest valid snapshot holds (the fresh database without one), and
    /// possibly some of `txns` already applied.
    pub database: ZkDatabase,
    /// Txns after the snapshot, in order (those not yet applied are applied by
    /// [`Recovered::into_database`]).
    pub txns: Vec<TxnEntry>,
}

impl Recovered {
    /// What a disk holding `snapshot` (if any) and `txns` recovers.
    pub fn from_image(snapshot: Option<&DatabaseImage>, txns: Vec<TxnEntry>) -> Self {
        Recovered {
            database: snapshot.map_or_else(ZkDatabase::new, ZkDatabase::from_image),
            txns,
        }
    }

    /// The database: the snapshot's, with the txns after it applied.
    pub fn into_database(self) -> ZkDatabase {
        let mut db = self.database;
        // Each txn is dropped once applied, so the memory of the txns still to replay
        // goes to the nodes they create instead of adding to the peak.
        for t in self.txns {
            if t.header.zxid > db.last_zxid() {
                db.apply(&t);
            }
        }
        db
    }
}

/// Converts a database image into the snapshot file's shape.
pub fn to_snapshot(img: &DatabaseImage) -> SnapshotData {
    SnapshotData {
        last_zxid: img.last_zxid,
        sessions: img.sessions.clone(),
        acls: img.acls.clone(),
        nodes: img.nodes.clone(),
    }
}

/// Converts a snapshot read from disk into a database image.
pub fn from_snapshot(snap: SnapshotData) -> DatabaseImage {
    DatabaseImage {
        last_zxid: snap.last_zxid,
        sessions: snap.sessions,
        acls: snap.acls,
        nodes: snap.nodes,
    }
}

/// Where the snapshot and log live.
#[derive(Debug)]
enum Log {
    /// In memory: [`DiskData::snapshot`] and [`DiskData::txns`].
    Memory,
    /// Apache's files; `restored` is what opening them found, until the member starts.
    Disk {
        storage: Box<Storage>,
        restored: Option<Box<Recovered>>,
    },
    /// A data directory that failed to open (every operation logs and does nothing).
    Broken,
}

/// A fuzzy snapshot file being written, on a thread of its own, from the pieces its walk
/// sends.
#[derive(Debug)]
struct Streaming {
    /// Gives the snapshot's duration in ms once published.
    stream: SnapshotStream<Option<u64>>,
    zxid: i64,
}

/// A snapshot whose walk is complete, being sealed, synced and published on its thread
/// ([`NodeDisk::end_snapshot`]); the disk thread goes on with the appends meanwhile.
#[derive(Debug)]
struct Finishing {
    zxid: i64,
    /// Gives the snapshot's duration in ms once published.
    file: FinishingSnapshot<Option<u64>>,
}

/// The operator's line for a snapshot on disk: where, how big, how long it took.
fn log_snapshot_written(path: &Path, zxid: i64, started: std::time::Instant) {
    let bytes = std::fs::metadata(path).map_or(0, |m| m.len());
    tracing::info!(
        "snapshot {zxid:#x} written to {}: {bytes} bytes in {} ms",
        path.display(),
        started.elapsed().as_millis()
    );
}

fn elapsed_ms(since: std::time::Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// The state behind a [`NodeDisk`] (a [`MemoryStore`]'s `state()`).
#[derive(Debug)]
pub struct DiskData {
    accepted: i64,
    current: i64,
    dir: Option<PathBuf>,
    /// Where the txn log goes when not in `dir` (zoo.cfg's dataLogDir).
    log_dir: Option<PathBuf>,
    /// `preAllocSize` of the txn log files.
    prealloc_size: u64,
    /// `fsync.warningthresholdms`: a txn log sync slower than this is logged.
    fsync_warning_ms: u64,
    /// Txns after the snapshot a restart keeps besides the tree (a member's DIFF window,
    /// `commitLogCount`); the rest are replayed and dropped as the log is read.
    keep_recent: usize,
    log: Log,
    snap_count: u64,
    /// `snapSizeLimitInKb` in bytes (0: snapshots by count only).
    snap_size_limit: u64,
    /// Extra time each append takes (tests of group commit, see
    /// [`NodeDisk::set_append_delay`]).
    append_delay: std::time::Duration,
    /// Txns (and their bytes) logged since the last snapshot, and how many (how many
    /// bytes) trigger the next one.
    since_snapshot: u64,
    snapshot_due: u64,
    since_snapshot_bytes: u64,
    snapshot_size_due: u64,
    /// Bumped whenever the count restarts (a snapshot taken or installed, a restart):
    /// names the snapshot an append reports due, so a stale report is ignored.
    due_round: u64,
    /// Log appends so far (each one write + sync of a whole batch: group commit).
    pub appends: u64,
    /// In memory: the latest snapshot (`None`: the empty database).
    pub snapshot: Option<DatabaseImage>,
    /// In memory: the txns logged after it.
    pub txns: Vec<TxnEntry>,
    /// Snapshots taken (periodic) and received from a leader (SNAP).
    snapshots_taken: u64,
    snapshots_installed: u64,
    /// Sync and snapshot timings (`fsynctime`, `snapshottime` in `mntr`).
    timings: crate::admin::stats::DiskTimings,
    /// Bumped by every restart: an earlier run's disk thread (still finishing after a
    /// kill) must not append to the recovered log.
    incarnation: u64,
    /// The snapshot file being written, if any.
    streaming: Option<Streaming>,
    /// The snapshot file being finished off the disk thread, if any.
    finishing: Option<Finishing>,
    /// Extra time each snapshot's finishing takes (tests, see
    /// [`NodeDisk::set_snapshot_finish_delay`]).
    finish_delay: std::time::Duration,
    /// `autopurge.*`: what purges keep and how often the driver runs them.
    autopurge: Autopurge,
    /// Purges run and files they removed.
    purges: u64,
    files_purged: u64,
    /// Txns not yet written because the disk was full, in zxid order: written first by
    /// the next append (or [`NodeDisk::retry_held`]) once space returns.
    held: Vec<Proposal>,
    /// Bytes of `held`.
    held_bytes: u64,
    /// Since when the disk is full (`None`: it is not).
    no_space_since: Option<std::time::Instant>,
    /// Set when txns were lost for good (more held than [`MAX_HELD_BYTES`], a SNAP that
    /// could not be written): no append is durable any more until a restart.
    lost: Option<String>,
}

impl Drop for DiskData {
    fn drop(&mut self) {
        // A disk going away (its server stopped) leaves no snapshot being written behind.
        if let Some(f) = self.finishing.take() {
            f.file.cancel();
        }
    }
}

/// Most bytes of txns a full disk holds in memory for when space returns; beyond it the
/// disk gives up (crash-stop), as memory must stay bounded.
pub const MAX_HELD_BYTES: u64 = 256 * 1024 * 1024;

/// What an append came to ([`NodeDisk::append_txns`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// Durable, with every txn held before; `Some(round)` when a snapshot is due (see
    /// [`NodeDisk::append`]).
    Durable(Option<u64>),
    /// The disk is full: the txns are held in memory, in order behind any held before,
    /// and written by a later append or [`NodeDisk::retry_held`] once space returns.
    NoSpace,
    /// Not durable, and holding them would not help (a failed device, a txn that cannot
    /// be logged, a stale incarnation).
    Failed,
}

impl Default for DiskData {
    fn default() -> Self {
        let mut d = DiskData {
            accepted: 0,
            current: 0,
            dir: None,
            log_dir: None,
            prealloc_size: 0,
            fsync_warning_ms: 1000,
            keep_recent: usize::MAX,
            log: Log::Memory,
            snapshot: None,
            txns: Vec::new(),
            snap_count: DEFAULT_SNAP_COUNT,
            snap_size_limit: DEFAULT_SNAP_SIZE_LIMIT,
            append_delay: std::time::Duration::ZERO,
            since_snapshot: 0,
            snapshot_due: 0,
            since_snapshot_bytes: 0,
            snapshot_size_due: 0,
            due_round: 0,
            appends: 0,
            snapshots_taken: 0,
            snapshots_installed: 0,
            timings: Default::default(),
            incarnation: 0,
            streaming: None,
            finishing: None,
            finish_delay: std::time::Duration::ZERO,
            autopurge: Autopurge::default(),
            purges: 0,
            files_purged: 0,
            held: Vec::new(),
            held_bytes: 0,
            no_space_since: None,
            lost: None,
        };
        d.next_snapshot_due();
        d
    }
}

fn encode(e: &TxnEntry) -> Proposal {
    let mut b = BytesMut::new();
    e.write(&mut b);
    Proposal {
        zxid: e.header.zxid,
        data: b.freeze(),
    }
}

/// `first..last` zxids of a batch, for log lines.
fn zxid_range(txns: &[Proposal]) -> String {
    match (txns.first(), txns.last()) {
        (Some(a), Some(b)) => format!("{:#x}..{:#x}", a.zxid, b.zxid),
        _ => "(none)".to_string(),
    }
}

fn decode_all(txns: &[Proposal]) -> Vec<TxnEntry> {
    txns.iter()
        .filter_map(|p| match TxnEntry::decode(p.data.clone()) {
            Ok(e) => Some(e),
            Err(e) => {
                tracing::error!("undecodable txn {:#x}: {e}", p.zxid);
                None
            }
        })
        .collect()
}

impl DiskData {
    /// Apache's `SyncRequestProcessor` rolls at `snapCount/2 + rand(snapCount/2)` txns (or
    /// `snapSizeLimit/2 + rand(snapSizeLimit/2)` bytes) so the members of an ensemble do
    /// not all snapshot at once.
    fn next_snapshot_due(&mut self) {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::from(d.subsec_nanos()))
            .unwrap_or(0)
            .wrapping_add(self.due_round.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let half = (self.snap_count / 2).max(1);
        self.snapshot_due = half + seed % half;
        let half_size = self.snap_size_limit / 2;
        self.snapshot_size_due = match half_size {
            0 => u64::MAX,
            h => h + seed.rotate_left(17) % h,
        };
        self.since_snapshot = 0;
        self.since_snapshot_bytes = 0;
        self.due_round += 1;
    }

    fn snapshot_is_due(&self) -> bool {
        self.since_snapshot >= self.snapshot_due
            || self.since_snapshot_bytes >= self.snapshot_size_due
    }

    /// Abandons the snapshot file being written (the partial file goes), and the one
    /// being finished unless it is published already (waiting for its thread, which
    /// stops at its next chunk or after its sync), so no file of the state being replaced
    /// appears later.
    fn abandon_snapshot(&mut self) {
        // Its thread logs that it was abandoned.
        self.streaming = None;
        if let Some(f) = self.finishing.take() {
            self.record_finished(f, true);
        }
    }

    /// Records the snapshot finished off the disk thread, once its thread is done.
    fn harvest_finished(&mut self) {
        if self
            .finishing
            .as_ref()
            .is_some_and(|f| f.file.is_finished())
        {
            if let Some(f) = self.finishing.take() {
                self.record_finished(f, false);
            }
        }
    }

    /// Waits for a snapshot being finished (first giving it up with `cancel`) and
    /// records how long it took.
    fn record_finished(&mut self, f: Finishing, cancel: bool) {
        let outcome = if cancel {
            f.file.cancel()
        } else {
            f.file.join()
        };
        match outcome {
            Some(Some(ms)) => self.timings.snapshot.record(ms),
            Some(None) => {}
            None => tracing::error!("snapshot {:#x}: its writer panicked", f.zxid),
        }
    }

    /// Appends (after the txns held while the disk was full). On disk the proposals'
    /// bytes are framed as they are (they are the txns as the log holds them); only the
    /// in-memory log keeps decoded txns.
    fn append(&mut self, txns: &[Proposal]) -> Appended {
        self.harvest_finished();
        if let Some(why) = &self.lost {
            tracing::error!(
                "disk trouble in dataDir {}: txns {} not logged: {why}",
                self.dir_name(),
                zxid_range(txns)
            );
            return Appended::Failed;
        }
        self.appends += 1;
        let batch: std::borrow::Cow<'_, [Proposal]> = if self.held.is_empty() {
            std::borrow::Cow::Borrowed(txns)
        } else {
            let mut all = std::mem::take(&mut self.held);
            all.extend_from_slice(txns);
            self.held_bytes = 0;
            std::borrow::Cow::Owned(all)
        };
        let res = match &mut self.log {
            Log::Memory => {
                self.txns.extend(decode_all(&batch));
                Ok(())
            }
            Log::Disk { storage, .. } => {
                let encoded: Vec<(i64, &[u8])> =
                    batch.iter().map(|p| (p.zxid, &p.data[..])).collect();
                let r = storage.append_encoded(&encoded);
                if r.is_ok() {
                    let ms = storage.sync_stats().last_sync_ms;
                    self.timings.fsync.record(ms);
                    self.timings.batch_size.record(batch.len() as u64);
                }
                r
            }
            Log::Broken => Err(ServerError::Storage(
                "the data directory did not open".into(),
            )),
        };
        match res {
            Ok(()) => {
                self.since_snapshot += batch.len() as u64;
                self.since_snapshot_bytes += batch.iter().map(|p| p.data.len() as u64).sum::<u64>();
                if let Some(since) = self.no_space_since.take() {
                    tracing::info!(
                        "disk space returned in dataDir {}: txns {} written to the txn log \
                         after {} ms without space; writes are accepted again",
                        self.dir_name(),
                        zxid_range(&batch),
                        since.elapsed().as_millis()
                    );
                }
                Appended::Durable(self.snapshot_is_due().then_some(self.due_round))
            }
            Err(ServerError::Io { context, source }) if super::fault::is_no_space(&source) => {
                let bytes: u64 = batch.iter().map(|p| p.data.len() as u64).sum();
                if bytes > MAX_HELD_BYTES {
                    let why = format!(
                        "the disk stayed full while {bytes} bytes of txns waited for it \
                         (at most {MAX_HELD_BYTES} are held in memory); restart once there \
                         is space"
                    );
                    tracing::error!(
                        "disk trouble in dataDir {}: {context}: {source}; {why}",
                        self.dir_name()
                    );
                    self.lost = Some(why);
                    return Appended::Failed;
                }
                if self.no_space_since.is_none() {
                    // One line per episode, naming the directory, the file and the cause.
                    tracing::error!(
                        "disk full in dataDir {} (dataLogDir {}): {context}: {source}; \
                         txns {} are held in memory and written once space returns; writes \
                         are refused meanwhile, reads and sessions go on",
                        self.dir_name(),
                        self.log_dir_name(),
                        zxid_range(&batch)
                    );
                    self.no_space_since = Some(std::time::Instant::now());
                }
                self.held = batch.into_owned();
                self.held_bytes = bytes;
                Appended::NoSpace
            }
            Err(e) => {
                // The log is unusable from here on (Storage refuses later appends after a
                // failed sync), or this batch holds a txn it cannot log: this member stops
                // acknowledging until it restarts and recovers.
                let errno = match &e {
                    ServerError::Io { source, .. } => source.raw_os_error(),
                    _ => None,
                };
                tracing::error!(
                    "disk trouble in dataDir {}: txn log append failed ({e}; errno {}): no \
                     write is acknowledged from here on until the server restarts",
                    self.dir_name(),
                    errno.map_or("-".to_string(), |n| n.to_string())
                );
                Appended::Failed
            }
        }
    }

    fn dir_name(&self) -> String {
        self.dir
            .as_deref()
            .map_or("(in memory)".to_string(), |d| d.display().to_string())
    }

    fn log_dir_name(&self) -> String {
        match &self.log_dir {
            Some(d) => d.display().to_string(),
            None => self.dir_name(),
        }
    }

    /// The snapshot and txns to start from; on disk, what opening found (read again
    /// if already used).
    fn recovered(&mut self) -> Recovered {
        match &mut self.log {
            Log::Memory => Recovered::from_image(self.snapshot.as_ref(), self.txns.clone()),
            Log::Disk { storage, restored } => match restored.take() {
                Some(r) => *r,
                None => match storage.load_with(DatabaseBuilder::new) {
                    Ok(r) => Recovered {
                        database: r.snapshot.unwrap_or_default(),
                        txns: r.txns,
                    },
                    Err(e) => {
                        tracing::error!("reading the data directory failed: {e}");
                        Recovered::default()
                    }
                },
            },
            Log::Broken => Recovered::default(),
        }
    }
}

/// A server's durable state (memory or a data directory), shared with whoever restarts
/// the server over it (the in-process ensemble, a test's [`MemoryStore`]).
#[derive(Debug, Clone, Default)]
pub struct NodeDisk {
    /// Taken once per batch by the disk thread, which holds it across the write and
    /// sync. It is off the write path of the node task: that task hands txns over by
    /// channel ([`crate::storage::disk_thread::DiskThread::submit`]) and is told of
    /// syncs and due snapshots by channel (`on_disk` travels with the report); autopurge
    /// timing is read from `purge_clock`. The node task takes the lock only for what
    /// needs the log drained or replaced first, after waiting for the thread anyway
    /// (DIFF reads, TRUNC, SNAP installs, epochs during a sync with the leader), for an
    /// in-memory snapshot once per `snapCount` txns, and for `stats` (read by tests).
    /// So per write the lock is uncontended.
    data: Arc<Mutex<DiskData>>,
    /// What the node task's tick reads to time autopurge, outside the lock: appends hold
    /// it across a sync, which must not stall the node task.
    purge_clock: Arc<PurgeClock>,
}

/// Where the node task sends the pieces of a fuzzy snapshot file it walks: each goes to
/// the disk thread, in order with the appends, and from there to the file's own writer
/// thread. Dropping it before [`SnapshotFeed::end`] abandons the file.
#[derive(Debug)]
pub struct SnapshotFeed {
    disk: NodeDisk,
    jobs: DiskJobs,
    zxid: i64,
    ended: bool,
    /// Pieces handed over and not yet written.
    backlog: Arc<std::sync::atomic::AtomicUsize>,
    /// Set when the disk writes no file for this walk (see [`SnapshotFeed::given_up`]).
    given_up: Arc<std::sync::atomic::AtomicBool>,
}

impl SnapshotFeed {
    /// Starts snapshot `round` (see [`NodeDisk::begin_snapshot`]) of the database as of
    /// `zxid` with its `sessions` and the ACL table `acls` its walk fixed at the start.
    pub fn begin(
        disk: &NodeDisk,
        jobs: &DiskJobs,
        round: u64,
        zxid: i64,
        sessions: Vec<(i64, i32)>,
        acls: Vec<(i64, Vec<zk_proto::Acl>)>,
    ) -> SnapshotFeed {
        let d = disk.clone();
        let given_up: Arc<std::sync::atomic::AtomicBool> = Arc::default();
        let flag = given_up.clone();
        jobs.run(move || {
            if !d.begin_snapshot(round, zxid, sessions, acls) {
                flag.store(true, Ordering::SeqCst);
            }
        });
        SnapshotFeed {
            disk: disk.clone(),
            jobs: jobs.clone(),
            zxid,
            ended: false,
            backlog: Arc::default(),
            given_up,
        }
    }

    /// Whether the disk writes no file for this walk (the snapshot was skipped or failed
    /// to start): walking on would spend a core on records nobody writes.
    pub fn given_up(&self) -> bool {
        self.given_up.load(Ordering::SeqCst)
    }

    /// Node records, as [`crate::storage::snapshot_walk::SnapshotWalk::step`] writes them.
    pub fn nodes(&self, records: bytes::Bytes) {
        let (d, zxid) = (self.disk.clone(), self.zxid);
        let guard = PieceGuard::new(&self.backlog);
        self.jobs
            .run(move || d.snapshot_nodes(zxid, records, guard));
    }

    /// Pieces given to [`SnapshotFeed::nodes`] not written yet. The walk waits while
    /// there are a few: appends queue behind them on the disk thread, and a walk running
    /// ahead of the disk would hold the tree's records in memory and make the file's
    /// writeback, and so the txn log's syncs, wait for more at once.
    pub fn backlog(&self) -> usize {
        self.backlog.load(Ordering::SeqCst)
    }

    /// The walk is complete: the file is sealed and published.
    pub fn end(mut self) {
        self.ended = true;
        let (d, zxid) = (self.disk.clone(), self.zxid);
        self.jobs.run(move || d.end_snapshot(zxid));
    }
}

impl Drop for SnapshotFeed {
    fn drop(&mut self) {
        if !self.ended {
            let (d, zxid) = (self.disk.clone(), self.zxid);
            self.jobs.run(move || d.abandon_snapshot(zxid));
        }
    }
}

/// Autopurge inputs readable without the disk's lock.
#[derive(Debug, Default)]
struct PurgeClock {
    /// `autopurge.purgeInterval` in ms (0: off).
    interval_ms: AtomicU64,
    /// Snapshot files completed on disk.
    snapshots_written: AtomicU64,
}

/// A server's in-memory disk, durable for the life of the process only: pass the same
/// store again to restart a server over it (`Server::start_in_memory`).
#[derive(Debug, Clone, Default)]
pub struct MemoryStore(NodeDisk);

/// What a [`MemoryStore`] holds (its counters: `appends`).
pub type MemoryState = DiskData;

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store whose appends take `delay`, standing in for an fsync (tests of group
    /// commit need a commit path slower than the requests arriving).
    pub fn with_append_delay(delay: std::time::Duration) -> Self {
        let s = Self::default();
        s.0.set_append_delay(delay);
        s
    }

    /// The shared state.
    pub fn state(&self) -> Arc<Mutex<MemoryState>> {
        self.0.data.clone()
    }

    /// What a server starting over this store would recover.
    pub fn recover(&self) -> Recovered {
        self.0.lock().recovered()
    }

    /// The disk a server runs on.
    pub fn disk(&self) -> NodeDisk {
        self.0.clone()
    }
}

impl NodeDisk {
    fn lock(&self) -> MutexGuard<'_, DiskData> {
        self.data.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A disk in `dir` (Apache layout: `version-2/log.*`, `snapshot.*`, epoch files),
    /// recovered from what is there.
    pub fn open(dir: &Path) -> Result<NodeDisk> {
        let d = NodeDisk::default();
        d.lock().dir = Some(dir.to_path_buf());
        d.recover()?;
        Ok(d)
    }

    /// Like [`NodeDisk::open`], with the txn log in `log_dir` (zoo.cfg's `dataLogDir`)
    /// and the snapshots and epoch files in `data_dir`.
    pub fn open_split(data_dir: &Path, log_dir: &Path) -> Result<NodeDisk> {
        let d = NodeDisk::default();
        {
            let mut g = d.lock();
            g.dir = Some(data_dir.to_path_buf());
            g.log_dir = Some(log_dir.to_path_buf());
        }
        d.recover()?;
        Ok(d)
    }

    /// The disk zoo.cfg describes: `dataDir`, `dataLogDir`, `preAllocSize`, `snapCount`,
    /// `snapSizeLimitInKb`, `autopurge.*`, and `keep_recent` txns kept for a member's
    /// DIFF window (`commitLogCount`; 0 for a standalone server), recovered.
    pub fn open_configured(config: &ServerConfig, keep_recent: usize) -> Result<NodeDisk> {
        let d = NodeDisk::default();
        {
            let mut g = d.lock();
            g.dir = Some(config.data_dir.clone());
            g.log_dir = Some(config.data_log_dir.clone());
            g.prealloc_size = config.prealloc_size;
            g.fsync_warning_ms = config.fsync_warning_ms;
            g.keep_recent = keep_recent;
            g.snap_size_limit = config.snap_size_limit_kb.saturating_mul(1024);
        }
        d.set_autopurge(Autopurge::from_config(config));
        d.set_snap_count(config.snap_count);
        d.recover()?;
        Ok(d)
    }

    /// The data directory and the txn log directory, when on disk (`conf`, `dirs`).
    pub fn dirs(&self) -> Option<(PathBuf, PathBuf)> {
        let guard = self.lock();
        let d = &*guard;
        let dir = d.dir.clone()?;
        let log = d.log_dir.clone().unwrap_or_else(|| dir.clone());
        Some((dir, log))
    }

    /// Sets `fsync.warningthresholdms`: a txn log sync slower than `ms` is logged.
    pub fn set_fsync_warning(&self, ms: u64) {
        let mut guard = self.lock();
        let d = &mut *guard;
        d.fsync_warning_ms = ms;
        if let Log::Disk { storage, .. } = &mut d.log {
            storage.set_fsync_warning(std::time::Duration::from_millis(ms));
        }
    }

    /// Sets `snapCount`: roughly how many txns between snapshots (Apache's default
    /// 100,000).
    pub fn set_snap_count(&self, n: u64) {
        let mut guard = self.lock();
        let d = &mut *guard;
        d.snap_count = n.max(2);
        d.next_snapshot_due();
    }

    /// Sets `snapSizeLimitInKb` in bytes: roughly how many bytes of logged txns between
    /// snapshots (Apache's default 4 GiB; 0 counts txns only).
    pub fn set_snap_size_limit(&self, bytes: u64) {
        let mut guard = self.lock();
        let d = &mut *guard;
        d.snap_size_limit = bytes;
        d.next_snapshot_due();
    }

    /// Sets autopurge (`autopurge.snapRetainCount`, `autopurge.purgeInterval`); the
    /// member's driver reads the interval at each tick, so this applies while running.
    pub fn set_autopurge(&self, a: Autopurge) {
        let ms = u64::try_from(a.interval.as_millis()).unwrap_or(u64::MAX);
        self.purge_clock.interval_ms.store(ms, Ordering::SeqCst);
        let mut guard = self.lock();
        let d = &mut *guard;
        d.autopurge = a;
        if let Log::Disk { storage, .. } = &mut d.log {
            storage.set_snap_retain_count(a.snap_retain_count);
        }
    }

    /// The autopurge settings.
    pub fn autopurge(&self) -> Autopurge {
        self.lock().autopurge
    }

    /// `autopurge.purgeInterval` (zero: off), without taking the disk's lock.
    pub fn purge_interval(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.purge_clock.interval_ms.load(Ordering::SeqCst))
    }

    /// Snapshot files completed on disk so far (each makes a purge due), without taking
    /// the disk's lock.
    pub fn snapshots_written(&self) -> u64 {
        self.purge_clock.snapshots_written.load(Ordering::SeqCst)
    }

    /// Autopurge: deletes snapshots beyond the newest `snapRetainCount` and the logs no
    /// kept snapshot needs (see [`Storage::purge`]); returns the removed files. Runs on
    /// the disk thread, after the snapshot queued before it is complete, and under the
    /// disk's lock, so no DIFF read or TRUNC sees a log vanish midway. A failure is
    /// logged, never fatal; in memory there is nothing to purge.
    ///
    /// A snapshot still being finished ([`NodeDisk::end_snapshot`]) is waited for first,
    /// so the purge counts it. That is its seal and last sync only (its data went to the
    /// disk as it was written), so appends queued meanwhile wait a few ms at most.
    pub fn purge(&self) -> Vec<PathBuf> {
        let mut guard = self.lock();
        let d = &mut *guard;
        if let Some(f) = d.finishing.take() {
            d.record_finished(f, false);
        }
        let Log::Disk { storage, .. } = &mut d.log else {
            return Vec::new();
        };
        let removed = match storage.purge() {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("autopurge failed: {e}");
                Vec::new()
            }
        };
        d.purges += 1;
        d.files_purged += removed.len() as u64;
        if !removed.is_empty() {
            tracing::info!("autopurge removed {} files", removed.len());
        }
        removed
    }

    /// Makes every later append take `delay` longer, like a slow disk: tests of group
    /// commit need syncs slower than the requests arriving.
    pub fn set_append_delay(&self, delay: std::time::Duration) {
        self.lock().append_delay = delay;
    }

    /// What a restart does: with a data directory, forget what is in memory and read
    /// the epochs, snapshot and txn log back from disk (fixing torn log tails).
    pub fn recover(&self) -> Result<()> {
        let mut guard = self.lock();
        let d = &mut *guard;
        d.incarnation += 1;
        d.abandon_snapshot();
        d.held.clear();
        d.held_bytes = 0;
        d.no_space_since = None;
        d.lost = None;
        let Some(dir) = d.dir.clone() else {
            return Ok(());
        };
        d.log = Log::Broken;
        let opts = StorageOptions {
            prealloc_size: d.prealloc_size,
            snap_retain_count: d.autopurge.snap_retain_count,
        };
        let log_dir = d.log_dir.clone().unwrap_or_else(|| dir.clone());
        // The log is replayed into the tree as it is read, so a restart peaks near the
        // final tree; only the last `keep_recent` txns are kept besides it.
        let keep = d.keep_recent;
        let mut recent = std::collections::VecDeque::new();
        let started = std::time::Instant::now();
        // (zxid of the snapshot, txns replayed, first and last replayed)
        let mut replay: Option<(i64, u64, i64, i64)> = None;
        // The snapshot is read before the first txn of the log is handed over.
        let mut snap_loaded: Option<std::time::Instant> = None;
        let (mut storage, restored) = Storage::open_replaying(
            &dir,
            &log_dir,
            opts,
            DatabaseBuilder::new,
            |db: &mut ZkDatabase, t: TxnEntry| {
                snap_loaded.get_or_insert_with(std::time::Instant::now);
                if t.header.zxid > db.last_zxid() {
                    let z = t.header.zxid;
                    let r = replay.get_or_insert((db.last_zxid(), 0, z, z));
                    r.1 += 1;
                    r.3 = z;
                    db.apply(&t);
                }
                if keep > 0 {
                    if recent.len() == keep {
                        recent.pop_front();
                    }
                    recent.push_back(t);
                }
            },
        )?;
        storage.set_fsync_warning(std::time::Duration::from_millis(d.fsync_warning_ms));
        let ms = started.elapsed().as_millis();
        d.timings.db_init.record(elapsed_ms(started));
        d.timings.txns_loaded.record(replay.map_or(0, |r| r.1));
        let snap_done = snap_loaded.unwrap_or_else(std::time::Instant::now);
        d.timings.snap_load.record(
            u64::try_from(snap_done.duration_since(started).as_millis()).unwrap_or(u64::MAX),
        );
        d.timings
            .txns_load
            .record(u64::try_from(snap_done.elapsed().as_millis()).unwrap_or(u64::MAX));
        match (replay, restored.snapshot.as_ref()) {
            (Some((snap, n, first, last)), _) => tracing::info!(
                "recovered to zxid {last:#x} in {ms} ms: snapshot {snap:#x}, then {n} txns \
                 replayed from the txn log ({first:#x}..{last:#x})"
            ),
            (None, Some(db)) => tracing::info!(
                "recovered to zxid {:#x} in {ms} ms: snapshot {:#x}, no txns to replay",
                db.last_zxid(),
                db.last_zxid()
            ),
            (None, None) => {}
        }
        d.accepted = read_epoch_file(&dir, EpochFile::Accepted)?.unwrap_or(0);
        d.current = read_epoch_file(&dir, EpochFile::Current)?.unwrap_or(0);
        d.log = Log::Disk {
            storage: Box::new(storage),
            restored: Some(Box::new(Recovered {
                database: restored.snapshot.unwrap_or_default(),
                txns: recent.into(),
            })),
        };
        d.next_snapshot_due();
        Ok(())
    }

    /// The database to start from (snapshot plus the txns after it) and what the quorum
    /// core needs: epochs, last zxid and the last `recent` logged txns (its in-memory
    /// window for DIFF).
    pub fn load(&self, recent: usize) -> (ZkDatabase, DiskState) {
        let (rec, accepted, current) = {
            let mut guard = self.lock();
            let d = &mut *guard;
            (d.recovered(), d.accepted, d.current)
        };
        let skip = rec.txns.len().saturating_sub(recent);
        let window: Vec<Proposal> = rec.txns[skip..].iter().map(encode).collect();
        let db = rec.into_database();
        let state = DiskState {
            accepted_epoch: accepted,
            current_epoch: current,
            last_zxid: db.last_zxid(),
            recent: window
                .into_iter()
                .filter(|p| p.zxid <= db.last_zxid())
                .collect(),
        };
        (db, state)
    }

    /// The incarnation appends must carry (see [`NodeDisk::append`]).
    pub fn incarnation(&self) -> u64 {
        self.lock().incarnation
    }

    /// Appends txns with one write and one sync (dropped when `incarnation` is given and
    /// stale). Returns `None` when they are not durable (stale incarnation, disk error),
    /// else `Some(round)` when a snapshot is due: pass `round` to
    /// [`NodeDisk::begin_snapshot`] or [`NodeDisk::take_snapshot_if_due`], which do
    /// nothing once that snapshot was taken.
    pub fn append(&self, incarnation: Option<u64>, txns: &[Proposal]) -> Option<Option<u64>> {
        match self.append_txns(incarnation, txns) {
            Appended::Durable(due) => Some(due),
            Appended::NoSpace | Appended::Failed => None,
        }
    }

    /// [`NodeDisk::append`], telling a full disk (the txns are held for when space
    /// returns) from a failed one.
    pub fn append_txns(&self, incarnation: Option<u64>, txns: &[Proposal]) -> Appended {
        let mut guard = self.lock();
        let delay = guard.append_delay;
        if !delay.is_zero() {
            drop(guard);
            std::thread::sleep(delay);
            guard = self.lock();
        }
        let d = &mut *guard;
        if incarnation.is_some_and(|i| i != d.incarnation) {
            return Appended::Failed;
        }
        d.append(txns)
    }

    /// Writes the txns held while the disk was full; returns what the append came to and
    /// the last zxid now durable (`None` when nothing was held).
    pub fn retry_held(&self, incarnation: Option<u64>) -> Option<(Appended, Zxid)> {
        let mut guard = self.lock();
        let d = &mut *guard;
        let last = d.held.last()?.zxid;
        if incarnation.is_some_and(|i| i != d.incarnation) {
            return None;
        }
        Some((d.append(&[]), last))
    }

    /// Whether txns wait for disk space.
    pub fn has_held(&self) -> bool {
        !self.lock().held.is_empty()
    }

    /// Whether snapshots go to a data directory (written with
    /// [`NodeDisk::begin_snapshot`]) rather than memory ([`NodeDisk::take_snapshot`]).
    pub fn on_disk(&self) -> bool {
        matches!(self.lock().log, Log::Disk { .. })
    }

    /// Starts the fuzzy snapshot file `zxid` of snapshot `round` (from
    /// [`NodeDisk::append`]; nothing happens if that snapshot was taken already), for a
    /// walk the node task carries out a slice at a time between its other work: the log
    /// rolls here, in order with the appends (this runs on the disk thread), and the file
    /// is written on a thread of its own: its header now (`sessions` and the ACL table
    /// `acls`, fixed when the walk began), the pieces [`NodeDisk::snapshot_nodes`] hands
    /// it, and the rest at [`NodeDisk::end_snapshot`]. Txns keep being applied during the
    /// walk; a restart replays the log from `zxid` over the file, as Apache does with its
    /// fuzzy snapshots. False when no file is being written (taken already, skipped
    /// because the last one is still being finished, or failed to start).
    pub fn begin_snapshot(
        &self,
        round: u64,
        zxid: i64,
        sessions: Vec<(i64, i32)>,
        acls: Vec<(i64, Vec<zk_proto::Acl>)>,
    ) -> bool {
        let mut guard = self.lock();
        let d = &mut *guard;
        if d.due_round != round {
            // Taken already, or the log was replaced since it was due.
            return false;
        }
        d.harvest_finished();
        if let Some(f) = &d.finishing {
            // As Apache's "Too busy to snap": the count starts again.
            tracing::info!(
                "snapshot {zxid:#x} skipped: snapshot {:#x} is still being written",
                f.zxid
            );
            d.next_snapshot_due();
            return false;
        }
        d.abandon_snapshot();
        d.next_snapshot_due();
        d.snapshots_taken += 1;
        let Log::Disk { storage, .. } = &mut d.log else {
            return false;
        };
        storage.roll_log();
        let started = std::time::Instant::now();
        let clock = self.purge_clock.clone();
        let done = move |res: Result<PathBuf>, given_up: bool| match res {
            Ok(p) => {
                clock.snapshots_written.fetch_add(1, Ordering::SeqCst);
                log_snapshot_written(&p, zxid, started);
                Some(elapsed_ms(started))
            }
            Err(_) if given_up => {
                tracing::info!("snapshot {zxid:#x} abandoned");
                None
            }
            Err(e) => {
                tracing::error!("snapshot {zxid:#x} failed: {e}");
                None
            }
        };
        let writer = storage.snapshot_writer();
        match writer.stream(zxid, &sessions, &acls, d.finish_delay, done) {
            Ok(stream) => {
                d.streaming = Some(Streaming { stream, zxid });
                true
            }
            Err(e) => {
                tracing::error!("snapshot {zxid:#x} failed: {e}");
                false
            }
        }
    }

    /// Node records of snapshot `zxid`, as
    /// [`crate::storage::snapshot_walk::SnapshotWalk::step`] writes them; `guard` counts
    /// them until they are written (or dropped with a file given up).
    pub fn snapshot_nodes(&self, zxid: i64, records: bytes::Bytes, guard: PieceGuard) {
        let d = self.lock();
        if let Some(s) = d.streaming.as_ref().filter(|s| s.zxid == zxid) {
            s.stream.nodes(records, guard);
        }
    }

    /// Completes snapshot `zxid`: its thread seals, syncs and publishes the file while
    /// the disk thread goes on with the appends. Anything that replaces the log or the
    /// database waits for it or gives it up first ([`DiskData::abandon_snapshot`]); a
    /// snapshot due before it is done is skipped.
    pub fn end_snapshot(&self, zxid: i64) {
        let mut guard = self.lock();
        let d = &mut *guard;
        let Some(s) = d.streaming.take_if(|s| s.zxid == zxid) else {
            return;
        };
        d.harvest_finished();
        if let Some(file) = s.stream.end() {
            d.finishing = Some(Finishing { zxid, file });
        }
    }

    /// Makes each snapshot's finishing (see [`NodeDisk::end_snapshot`]) start `delay`
    /// late (tests of what happens meanwhile).
    pub fn set_snapshot_finish_delay(&self, delay: std::time::Duration) {
        self.lock().finish_delay = delay;
    }

    /// Abandons snapshot `zxid` (its walk stopped: the database was replaced, or the
    /// server stopped); the partial file goes.
    pub fn abandon_snapshot(&self, zxid: i64) {
        let mut guard = self.lock();
        let d = &mut *guard;
        if d.streaming.as_ref().is_some_and(|s| s.zxid == zxid) {
            d.abandon_snapshot();
        }
    }

    /// Saves a snapshot of the database (its state as applied, which may run ahead of
    /// the log on a follower: a restart replays the log after the snapshot's zxid). On
    /// disk the log is rolled and the file written here.
    pub fn take_snapshot(&self, image: DatabaseImage) {
        self.take_snapshot_if_due(None, || image);
    }

    /// [`NodeDisk::take_snapshot`] of the image `image` makes, unless `round` (from
    /// [`NodeDisk::append`]) is given and that snapshot was taken already.
    pub fn take_snapshot_if_due(&self, round: Option<u64>, image: impl FnOnce() -> DatabaseImage) {
        let mut guard = self.lock();
        let d = &mut *guard;
        if round.is_some_and(|r| r != d.due_round) {
            return;
        }
        let image = image();
        d.next_snapshot_due();
        d.snapshots_taken += 1;
        let zxid = image.last_zxid;
        match &mut d.log {
            Log::Memory => {
                d.txns.retain(|t| t.header.zxid > zxid);
                d.snapshot = Some(image);
            }
            Log::Disk { storage, .. } => {
                storage.roll_log();
                let started = std::time::Instant::now();
                match storage.snapshot_writer().write(&to_snapshot(&image)) {
                    Ok(p) => {
                        self.purge_clock
                            .snapshots_written
                            .fetch_add(1, Ordering::SeqCst);
                        log_snapshot_written(&p, zxid, started);
                        d.timings.snapshot.record(elapsed_ms(started));
                    }
                    Err(e) => tracing::error!("snapshot {zxid:#x} failed: {e}"),
                }
            }
            Log::Broken => {}
        }
    }

    /// The logged txns with `from <= zxid <= to`, starting exactly at `from`; `None` when
    /// the log no longer holds `from` (it is only in a snapshot).
    pub fn read_log(&self, from: Zxid, to: Zxid) -> Option<Vec<Proposal>> {
        let mut guard = self.lock();
        let d = &mut *guard;
        let entries: Vec<TxnEntry> = match &mut d.log {
            Log::Memory => {
                let start = d.txns.partition_point(|t| t.header.zxid < from);
                d.txns[start..]
                    .iter()
                    .take_while(|t| t.header.zxid <= to)
                    .cloned()
                    .collect()
            }
            Log::Disk { storage, .. } => match storage.txns_after(from.saturating_sub(1)) {
                Ok(mut v) => {
                    v.retain(|t| t.header.zxid <= to);
                    v
                }
                Err(ServerError::TxnsUnavailable { .. }) => return None,
                Err(e) => {
                    tracing::error!("reading the txn log failed: {e}");
                    return None;
                }
            },
            Log::Broken => return None,
        };
        let mut txns: Vec<Proposal> = entries.iter().map(encode).collect();
        // Txns still held for want of space are part of the log as far as a DIFF goes.
        let after = txns.last().map_or(from - 1, |p| p.zxid);
        txns.extend(
            d.held
                .iter()
                .filter(|p| p.zxid > after && p.zxid >= from && p.zxid <= to)
                .cloned(),
        );
        (txns.first().map(|p| p.zxid) == Some(from)).then_some(txns)
    }

    /// TRUNC: drops every logged txn after `zxid`; returns the database rebuilt to it.
    pub fn truncate(&self, zxid: Zxid) -> ZkDatabase {
        let mut guard = self.lock();
        let d = &mut *guard;
        d.abandon_snapshot();
        // Held txns after `zxid` are dropped with the logged ones; those before it are
        // still to be written.
        d.held.retain(|p| p.zxid <= zxid);
        d.held_bytes = d.held.iter().map(|p| p.data.len() as u64).sum();
        match &mut d.log {
            Log::Memory => {
                d.txns.retain(|t| t.header.zxid <= zxid);
                if d.snapshot.as_ref().is_some_and(|s| s.last_zxid > zxid) {
                    tracing::error!("TRUNC to {zxid:#x} below the snapshot: keeping it");
                }
            }
            Log::Disk { storage, restored } => {
                *restored = None;
                if let Err(e) = storage.truncate_after(zxid) {
                    tracing::error!("txn log truncation failed: {e}");
                }
            }
            Log::Broken => {}
        }
        d.recovered().into_database()
    }

    /// SNAP: the leader's database as of `zxid` (the SNAP body as received, see
    /// `crate::storage::snap_stream`) replaces snapshot and log durably; returns it.
    /// The tree is built straight from the received bytes and the file written from
    /// them, so the member holds those bytes and the tree, not a decoded copy of every
    /// node. A body that does not decode changes nothing and is the error.
    pub fn install(&self, zxid: i64, body: &[u8]) -> std::result::Result<ZkDatabase, String> {
        let decode = || {
            read_snap_body(body, zxid, DatabaseBuilder::new()).map_err(|e| match e {
                ReadError::Corrupt(reason) => reason,
                ReadError::Io(e) => e.to_string(),
            })
        };
        let mut guard = self.lock();
        let d = &mut *guard;
        let dir = d
            .dir
            .as_deref()
            .map_or(String::new(), |p| p.display().to_string());
        let (db, prepared) = match &d.log {
            Log::Memory | Log::Broken => (decode()?, None),
            Log::Disk { storage, .. } => {
                // The tree is built while the file is written and fsynced (under a
                // scratch name): each takes about as long as the other. A body that does
                // not decode leaves the files as they were.
                let storage = &**storage;
                let (db, written) = std::thread::scope(|scope| {
                    let writer = scope.spawn(|| storage.prepare_snapshot(zxid, body));
                    let db = decode();
                    let written = match writer.join() {
                        Ok(r) => r.map_err(|e| e.to_string()),
                        Err(_) => Err("the snapshot writer panicked".to_string()),
                    };
                    (db, written)
                });
                (db?, Some(written))
            }
        };
        d.abandon_snapshot();
        d.snapshots_installed += 1;
        d.next_snapshot_due();
        match &mut d.log {
            Log::Memory => {
                d.txns.clear();
                d.snapshot = Some(db.image());
            }
            Log::Disk { storage, restored } => {
                *restored = None;
                d.held.clear();
                d.held_bytes = 0;
                let installed = match prepared {
                    Some(Ok(p)) => storage
                        .install_prepared_snapshot(zxid, p)
                        .map(|_| ())
                        .map_err(|e| e.to_string()),
                    Some(Err(e)) => Err(e),
                    None => Ok(()),
                };
                if let Err(e) = installed {
                    // The old log is gone and the new snapshot is not there: logging on
                    // would leave a gap a restart replays over. Crash-stop instead.
                    let why = format!("the leader's snapshot {zxid:#x} could not be written: {e}");
                    tracing::error!(
                        "disk trouble in dataDir {dir}: {why}; no write is acknowledged from \
                         here on until the server restarts"
                    );
                    d.lost = Some(why);
                }
            }
            Log::Broken => {}
        }
        Ok(db)
    }

    /// Durably records acceptedEpoch; an error when it could not be (the member must
    /// then take no further part: it would answer for an epoch it could forget).
    pub fn save_accepted_epoch(&self, e: i64) -> Result<()> {
        self.save_epoch(EpochFile::Accepted, e)
    }

    /// Durably records currentEpoch (an error as [`NodeDisk::save_accepted_epoch`]).
    pub fn save_current_epoch(&self, e: i64) -> Result<()> {
        self.save_epoch(EpochFile::Current, e)
    }

    fn save_epoch(&self, which: EpochFile, e: i64) -> Result<()> {
        let mut guard = self.lock();
        let d = &mut *guard;
        match which {
            EpochFile::Accepted => d.accepted = e,
            EpochFile::Current => d.current = e,
        }
        if let (Some(dir), Log::Disk { .. }) = (d.dir.as_deref(), &d.log) {
            if let Err(err) = write_epoch_file(dir, which, e) {
                tracing::error!(
                    "disk trouble in dataDir {}: writing {} failed: {err}",
                    dir.display(),
                    which.file_name()
                );
                return Err(err);
            }
        }
        Ok(())
    }

    /// What the disk timed so far (`fsynctime`, `snapshottime`).
    pub fn timings(&self) -> crate::admin::stats::DiskTimings {
        let mut d = self.lock();
        d.harvest_finished();
        d.timings.clone()
    }

    /// Forgets the timings (`srst`).
    pub fn reset_timings(&self) {
        self.lock().timings = Default::default();
    }

    /// Counters of what the disk did.
    pub fn stats(&self) -> DiskStats {
        let guard = self.lock();
        let d = &*guard;
        let (txns_in_memory, fsyncs) = match &d.log {
            Log::Memory => (d.txns.len(), 0),
            Log::Disk { storage, .. } => (0, storage.sync_stats().log_syncs),
            Log::Broken => (0, 0),
        };
        DiskStats {
            appends: d.appends,
            fdatasyncs: fsyncs,
            txns_in_memory,
            snapshots_taken: d.snapshots_taken,
            snapshots_installed: d.snapshots_installed,
            purges: d.purges,
            files_purged: d.files_purged,
        }
    }
}

/// What a member's disk did so far ([`NodeDisk::stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiskStats {
    /// Log appends, each one write and one sync of a whole batch (group commit).
    pub appends: u64,
    /// fdatasync calls on txn log files (on disk only).
    pub fdatasyncs: u64,
    /// Txns held in memory after the latest snapshot (memory mode only).
    pub txns_in_memory: usize,
    /// Periodic snapshots taken.
    pub snapshots_taken: u64,
    /// Snapshots received from a leader (SNAP).
    pub snapshots_installed: u64,
    /// Autopurge runs (on disk only).
    pub purges: u64,
    /// Files those runs deleted.
    pub files_purged: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::time::{Duration, Instant};
    use zk_proto::txn::{CreateTxn, Txn, TxnHeader};
    use zk_proto::{Acl, OpCode};

    fn create(zxid: i64) -> Proposal {
        encode(&TxnEntry {
            header: TxnHeader {
                client_id: 1,
                cxid: zxid as i32,
                zxid,
                time: zxid,
                txn_type: OpCode::Create,
            },
            txn: Txn::Create(CreateTxn {
                path: format!("/n{zxid}"),
                data: Some(Bytes::new()),
                acl: Acl::open_unsafe(),
                ephemeral: false,
                parent_c_version: -1,
            }),
            digest: None,
        })
    }

    /// Logs creates `first..=last`, then snapshots the database at `last` and waits for
    /// the file.
    fn round(disk: &NodeDisk, db: &mut ZkDatabase, first: i64, last: i64) {
        let ps: Vec<Proposal> = (first..=last).map(create).collect();
        assert!(disk.append(None, &ps).is_some());
        for e in decode_all(&ps) {
            db.apply(&e);
        }
        let before = disk.snapshots_written();
        disk.take_snapshot(db.image());
        let deadline = Instant::now() + Duration::from_secs(10);
        while disk.snapshots_written() == before {
            assert!(Instant::now() < deadline, "snapshot {last:#x} not written");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with("log.") || n.starts_with("snapshot."))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_due_snapshot_is_taken_once_however_many_appends_report_it() {
        let disk = NodeDisk::default();
        disk.set_snap_count(2);
        let mut db = ZkDatabase::new();
        let mut rounds = Vec::new();
        for z in 1..=3 {
            let ps = vec![create(z)];
            for e in decode_all(&ps) {
                db.apply(&e);
            }
            rounds.push(disk.append(None, &ps).expect("durable"));
        }
        // Every append past the count reports the same snapshot due.
        let round = rounds[0].expect("due after one txn");
        assert!(rounds.iter().all(|r| *r == Some(round)), "{rounds:?}");
        for _ in &rounds {
            disk.take_snapshot_if_due(Some(round), || db.image());
        }
        let stats = disk.stats();
        assert_eq!(stats.snapshots_taken, 1);
        assert_eq!(stats.txns_in_memory, 0);
        // The next one is a new round.
        let next = disk.append(None, &[create(4)]).expect("durable");
        assert!(next.is_some_and(|r| r != round), "{next:?}");
    }

    #[test]
    fn proposals_are_logged_as_carried_and_one_naming_another_zxid_is_never_durable() {
        let dir = tempfile::tempdir().unwrap();
        let disk = NodeDisk::open(dir.path()).unwrap();
        assert!(disk.append(None, &[create(1)]).is_some());
        // A leader's bytes for txn 4 proposed as txn 3: the batch is not durable (so
        // never acknowledged) and nothing of it is logged.
        let wrong = Proposal {
            zxid: 3,
            data: create(4).data,
        };
        assert!(disk.append(None, &[create(2), wrong]).is_none());
        assert!(disk.append(None, &[create(2), create(3)]).is_some());
        disk.recover().unwrap();
        let (db, state) = disk.load(10);
        assert_eq!(state.last_zxid, 3);
        let logged: Vec<Proposal> = (1..=3).map(create).collect();
        assert_eq!(
            state.recent, logged,
            "the bytes come back as they were proposed"
        );
        assert!(db.tree.node_count() >= 3);
    }

    #[test]
    fn purge_keeps_what_a_restart_needs_and_a_failure_is_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let v2 = dir.path().join("version-2");
        let disk = NodeDisk::open(dir.path()).unwrap();
        disk.set_autopurge(Autopurge {
            snap_retain_count: 3,
            interval: Duration::from_millis(1),
        });
        let mut db = ZkDatabase::new();
        for r in 0..5 {
            round(&disk, &mut db, r * 10 + 1, r * 10 + 10);
        }
        assert_eq!(disk.purge().len(), 5, "{:?}", names(&v2));
        assert_eq!(
            names(&v2),
            [
                "log.15",
                "log.1f",
                "log.29",
                "snapshot.1e",
                "snapshot.28",
                "snapshot.32"
            ]
        );
        disk.recover().unwrap();
        let (back, state) = disk.load(10);
        assert_eq!(state.last_zxid, 50);
        assert_eq!(back.tree.node_count(), db.tree.node_count());

        // Something autopurge cannot delete (a directory named like an old snapshot): it
        // is skipped, the other old files still go, and the member goes on.
        std::fs::create_dir(v2.join("snapshot.2")).unwrap();
        round(&disk, &mut db, 51, 60);
        assert_eq!(disk.purge().len(), 2, "{:?}", names(&v2));
        assert_eq!(
            names(&v2),
            [
                "log.1f",
                "log.29",
                "log.33",
                "snapshot.2",
                "snapshot.28",
                "snapshot.32",
                "snapshot.3c"
            ]
        );
        // A failure of the whole purge (the directory cannot be listed) is not fatal.
        let moved = dir.path().join("moved");
        std::fs::rename(&v2, &moved).unwrap();
        std::fs::write(&v2, b"not a directory").unwrap();
        assert!(disk.purge().is_empty());
        std::fs::remove_file(&v2).unwrap();
        std::fs::rename(&moved, &v2).unwrap();
        round(&disk, &mut db, 61, 70);
        let s = disk.stats();
        assert_eq!((s.purges, s.files_purged), (3, 7));
        disk.recover().unwrap();
        let (back, state) = disk.load(10);
        assert_eq!(state.last_zxid, 70);
        assert_eq!(back.tree.node_count(), db.tree.node_count());
    }

    fn tmp_files(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with('.') || n.starts_with("corrupt."))
            .collect()
    }

    #[test]
    fn a_full_disk_holds_txns_leaves_no_torn_record_and_writes_them_when_space_returns() {
        let dir = tempfile::tempdir().unwrap();
        let v2 = dir.path().join("version-2");
        let disk = NodeDisk::open(dir.path()).unwrap();
        assert_eq!(
            disk.append_txns(None, &[create(1), create(2)]),
            Appended::Durable(None)
        );
        crate::storage::fault::fail_writes_under(dir.path(), 28);
        // The batch that finds the disk full, and the ones after it, are held in order.
        assert_eq!(
            disk.append_txns(None, &[create(3), create(4)]),
            Appended::NoSpace
        );
        assert_eq!(disk.append_txns(None, &[create(5)]), Appended::NoSpace);
        assert!(disk.has_held());
        assert!(disk
            .retry_held(None)
            .is_some_and(|(r, _)| r == Appended::NoSpace));
        // The half-written entries were cut off: the log reads cleanly, strict tail check
        // included, and holds what was durable.
        let logs: Vec<String> = names(&v2)
            .into_iter()
            .filter(|n| n.starts_with("log."))
            .collect();
        assert_eq!(logs, ["log.1"]);
        let scan = crate::storage::txn_log::scan(&v2.join("log.1"), true).unwrap();
        assert_eq!(scan.damage, None);
        assert_eq!(scan.entries.len(), 2);
        // A DIFF still sees the held txns.
        let diff: Vec<Zxid> = disk
            .read_log(2, 5)
            .unwrap()
            .iter()
            .map(|p| p.zxid)
            .collect();
        assert_eq!(diff, [2, 3, 4, 5]);
        // A snapshot cannot be written either, and leaves nothing behind.
        let mut db = ZkDatabase::new();
        for e in decode_all(&(1..=5).map(create).collect::<Vec<_>>()) {
            db.apply(&e);
        }
        disk.take_snapshot(db.image());
        assert_eq!(
            names(&v2)
                .iter()
                .filter(|n| n.starts_with("snapshot."))
                .count(),
            1,
            "only snapshot.0: {:?}",
            names(&v2)
        );
        assert!(tmp_files(&v2).is_empty(), "{:?}", tmp_files(&v2));
        // Space returns: the held txns are written by the retry, then appends go on.
        crate::storage::fault::clear_writes_under(dir.path());
        assert_eq!(disk.retry_held(None), Some((Appended::Durable(None), 5)));
        assert!(!disk.has_held());
        assert!(disk.retry_held(None).is_none());
        assert_eq!(
            disk.append_txns(None, &[create(6)]),
            Appended::Durable(None)
        );
        disk.recover().unwrap();
        let (back, state) = disk.load(10);
        assert_eq!(state.last_zxid, 6);
        assert_eq!(back.tree.node_count(), db.tree.node_count() + 1);
        assert!(tmp_files(&v2).is_empty(), "{:?}", tmp_files(&v2));
    }

    /// Walks `db` into a snapshot file the way the node task does (begin, nodes, end).
    fn stream_snapshot(disk: &NodeDisk, db: &ZkDatabase) {
        let round = disk.lock().due_round;
        let mut snap = db.begin_file_snapshot();
        disk.begin_snapshot(
            round,
            snap.last_zxid,
            snap.sessions.clone(),
            snap.walk.acl_table(),
        );
        let mut nodes = BytesMut::new();
        snap.walk.step(&db.tree, &mut nodes, usize::MAX);
        let written = Arc::default();
        disk.snapshot_nodes(snap.last_zxid, nodes.freeze(), PieceGuard::new(&written));
        disk.end_snapshot(snap.last_zxid);
    }

    #[test]
    fn appends_go_on_while_a_snapshot_is_finished_and_a_trunc_gives_it_up() {
        let dir = tempfile::tempdir().unwrap();
        let v2 = dir.path().join("version-2");
        let disk = NodeDisk::open(dir.path()).unwrap();
        let mut db = ZkDatabase::new();
        let ps: Vec<Proposal> = (1..=100).map(create).collect();
        assert_eq!(disk.append_txns(None, &ps), Appended::Durable(None));
        for e in decode_all(&ps) {
            db.apply(&e);
        }
        // The file of snapshot 0x64 takes a long time to finish...
        disk.set_snapshot_finish_delay(Duration::from_secs(60));
        stream_snapshot(&disk, &db);
        let taken = disk.stats().snapshots_taken;
        // ...and appends do not wait for it.
        let started = Instant::now();
        assert_eq!(
            disk.append_txns(None, &[create(101)]),
            Appended::Durable(None)
        );
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(!names(&v2).contains(&"snapshot.64".to_string()));
        // A snapshot due meanwhile is skipped, not written beside it.
        for e in decode_all(&[create(101)]) {
            db.apply(&e);
        }
        stream_snapshot(&disk, &db);
        assert_eq!(disk.stats().snapshots_taken, taken);
        // A TRUNC gives it up at once: no file of the replaced state appears later.
        let started = Instant::now();
        let db = disk.truncate(100);
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(
            !names(&v2).iter().any(|n| n.starts_with("snapshot.6")),
            "{:?}",
            names(&v2)
        );
        assert!(tmp_files(&v2).is_empty(), "{:?}", tmp_files(&v2));
        // Finished promptly, it is published and counted, and a restart loads it.
        disk.set_snapshot_finish_delay(Duration::ZERO);
        let before = disk.snapshots_written();
        stream_snapshot(&disk, &db);
        let deadline = Instant::now() + Duration::from_secs(10);
        while disk.snapshots_written() == before {
            assert!(Instant::now() < deadline, "snapshot 0x64 not written");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(names(&v2).contains(&"snapshot.64".to_string()));
        assert!(disk.timings().snapshot.count > 0);
        disk.recover().unwrap();
        let (back, state) = disk.load(10);
        assert_eq!(state.last_zxid, 100);
        assert_eq!(back.tree.node_count(), db.tree.node_count());
        assert!(tmp_files(&v2).is_empty(), "{:?}", tmp_files(&v2));
    }

    #[test]
    fn a_trunc_drops_held_txns_after_its_zxid_and_keeps_those_before() {
        let dir = tempfile::tempdir().unwrap();
        let disk = NodeDisk::open(dir.path()).unwrap();
        assert!(disk.append(None, &[create(1)]).is_some());
        crate::storage::fault::fail_writes_under(dir.path(), 28);
        assert_eq!(
            disk.append_txns(None, &[create(2), create(3)]),
            Appended::NoSpace
        );
        let db = disk.truncate(2);
        assert_eq!(db.last_zxid(), 1);
        crate::storage::fault::clear_writes_under(dir.path());
        assert_eq!(disk.retry_held(None), Some((Appended::Durable(None), 2)));
        disk.recover().unwrap();
        assert_eq!(disk.load(10).1.last_zxid, 2);
    }

    /// A leader's database: random sessions, ephemerals, ACLs and levels.
    fn leader_db() -> ZkDatabase {
        let mut g = crate::state::database::tests::Gen::new(7);
        for _ in 0..400 {
            g.random_op();
        }
        g.db
    }

    #[test]
    fn snap_install_builds_the_tree_from_the_received_bytes_and_writes_them_durably() {
        use crate::state::database::tests::canon;
        let leader = leader_db();
        let image = leader.image();
        let body = crate::storage::snap_stream::encode(&to_snapshot(&image));

        let dir = tempfile::tempdir().unwrap();
        let v2 = dir.path().join("version-2");
        let disk = NodeDisk::open(dir.path()).unwrap();
        let mut own = ZkDatabase::new();
        round(&disk, &mut own, 1, 5);
        let before = names(&v2);

        // Damaged bodies are refused and leave the files as they were.
        let mut out_of_order = to_snapshot(&image);
        out_of_order.nodes.swap(1, 2);
        let bad = [
            body.slice(..body.len() - 3),
            crate::storage::snap_stream::encode(&out_of_order),
            [&body[..], b"x"].concat().into(),
        ];
        for b in bad {
            assert!(disk.install(image.last_zxid, &b).is_err());
            assert_eq!(names(&v2), before);
        }

        let got = disk.install(image.last_zxid, &body).unwrap();
        assert_eq!(canon(&got), canon(&leader));
        // The snapshot replaced the old log (older snapshots stay for autopurge), and a
        // restart loads it.
        let mut want: Vec<String> = before
            .into_iter()
            .filter(|n| n.starts_with("snapshot."))
            .collect();
        want.push(format!("snapshot.{:x}", image.last_zxid));
        want.sort();
        assert_eq!(names(&v2), want);
        disk.recover().unwrap();
        let (back, state) = disk.load(10);
        assert_eq!(state.last_zxid, image.last_zxid);
        assert_eq!(canon(&back), canon(&leader));
        // The file is Apache's format: the whole-file reader accepts it too.
        let file = v2.join(format!("snapshot.{:x}", image.last_zxid));
        let read = crate::storage::snapshot::read_snapshot(&file, image.last_zxid).unwrap();
        assert_eq!(read.nodes.len(), image.nodes.len());
        assert_eq!(read.sessions, image.sessions);

        // Without a data directory the image is kept in memory.
        let mem = NodeDisk::default();
        let got = mem.install(image.last_zxid, &body).unwrap();
        assert_eq!(canon(&got), canon(&leader));
        let (back, _) = mem.load(10);
        assert_eq!(canon(&back), canon(&leader));
    }
}
