//! [`Storage`]: the data directories of one server, read and written like Apache's
//! `FileTxnSnapLog` (snapshots in `<dataDir>/version-2`, txn logs in
//! `<dataLogDir>/version-2`).

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use zk_proto::txn::TxnEntry;

use super::autopurge::MIN_SNAP_RETAIN_COUNT;
use super::file_names::{list, version_dir, DataFile, CORRUPT_PREFIX, LOG_PREFIX, SNAPSHOT_PREFIX};
use super::fs_util::{create_dir, remove_file, rename_durably, sync_dir};
use super::snapshot::{
    PreparedSnapshot, SnapshotCollector, SnapshotData, SnapshotWriter, TMP_SUFFIX,
};
use super::snapshot_reader::{load_snapshot, SnapshotSink};
use super::txn_log::{self, LogWriter, SyncStats};
use crate::error::{Result, ServerError};

/// Tuning knobs, with Apache's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageOptions {
    /// Log files grow in chunks of this many bytes (`zookeeper.preAllocSize`, 64 MiB);
    /// 0 disables preallocation.
    pub prealloc_size: u64,
    /// Snapshots kept by [`Storage::purge`] (`autopurge.snapRetainCount`, 3; fewer than 3
    /// counts as 3, as in Apache).
    pub snap_retain_count: usize,
}

impl Default for StorageOptions {
    fn default() -> Self {
        StorageOptions {
            prealloc_size: 64 * 1024 * 1024,
            snap_retain_count: 3,
        }
    }
}

/// What [`Storage::open`] found on disk: the snapshot as a [`SnapshotData`], or as what
/// the [`SnapshotSink`] given to [`Storage::open_with`] made of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored<T = SnapshotData> {
    /// The newest valid snapshot. On a fresh data dir this is [`SnapshotData::initial`],
    /// which `open` has just written as `snapshot.0` (as Apache does), so `None` only comes
    /// from [`Storage::load`] racing an external deletion.
    pub snapshot: Option<T>,
    /// Txns logged after the snapshot, in zxid order, to replay on top of it.
    pub txns: Vec<TxnEntry>,
}

/// The txn log and snapshots of one server.
///
/// Appending needs `&mut self`; snapshots can be written concurrently from another thread
/// through a [`SnapshotWriter`] (see [`Storage::snapshot_writer`]).
#[derive(Debug)]
pub struct Storage {
    snap_dir: PathBuf,
    log_dir: PathBuf,
    opts: StorageOptions,
    log: LogWriter,
    snapshots: SnapshotWriter,
    last_zxid: i64,
}

impl Storage {
    /// Opens (creating if needed) `<data_dir>/version-2` and `<data_log_dir>/version-2`,
    /// repairs torn log tails, and returns the newest valid snapshot plus the txns logged
    /// after it.
    ///
    /// Like Apache: a corrupt newest snapshot falls back to an older one; a fresh directory
    /// gets `snapshot.0` of the initial tree; logs without any snapshot, or snapshots of
    /// which none is valid, are refused. Unlike Apache, a damaged log entry (torn write,
    /// checksum mismatch, missing 'B') is never an error: the file is cut back to the last
    /// valid entry, the cut bytes are saved as `corrupt.log.<zxid>.<offset>`, and later log
    /// files are only replayed when they continue without a gap.
    pub fn open(
        data_dir: &Path,
        data_log_dir: &Path,
        opts: StorageOptions,
    ) -> Result<(Storage, Restored)> {
        Self::open_with(data_dir, data_log_dir, opts, SnapshotCollector::default)
    }

    /// [`Storage::open`], reading the snapshot into a fresh sink from `new_sink` as the
    /// file is read (one sink per snapshot file tried: a corrupt file's sink is dropped
    /// and an older file is read into a new one).
    pub fn open_with<S: SnapshotSink>(
        data_dir: &Path,
        data_log_dir: &Path,
        opts: StorageOptions,
        new_sink: impl FnMut() -> S,
    ) -> Result<(Storage, Restored<S::Output>)> {
        Self::open_inner(data_dir, data_log_dir, opts, new_sink, None)
    }

    /// [`Storage::open_with`], handing every txn logged after the snapshot to `replay`
    /// with the snapshot, in order, as the log is read: a restart never holds the log
    /// besides the tree. [`Restored::txns`] is then empty.
    pub fn open_replaying<S: SnapshotSink>(
        data_dir: &Path,
        data_log_dir: &Path,
        opts: StorageOptions,
        new_sink: impl FnMut() -> S,
        mut replay: impl FnMut(&mut S::Output, TxnEntry),
    ) -> Result<(Storage, Restored<S::Output>)> {
        Self::open_inner(data_dir, data_log_dir, opts, new_sink, Some(&mut replay))
    }

    fn open_inner<S: SnapshotSink>(
        data_dir: &Path,
        data_log_dir: &Path,
        opts: StorageOptions,
        mut new_sink: impl FnMut() -> S,
        replay: Option<Replay<'_, S::Output>>,
    ) -> Result<(Storage, Restored<S::Output>)> {
        let snap_dir = version_dir(data_dir);
        let log_dir = version_dir(data_log_dir);
        create_dir(&snap_dir)?;
        create_dir(&log_dir)?;
        remove_stale_tmp_snapshots(&snap_dir)?;
        let mut loaded = restore(&snap_dir, &log_dir, true, &mut new_sink, replay)?;
        if loaded.restored.snapshot.is_none() {
            let initial = SnapshotData::initial();
            SnapshotWriter::new(snap_dir.clone()).write(&initial)?;
            loaded.last_zxid = loaded.last_zxid.max(initial.last_zxid);
            let fed = initial.feed(new_sink()).map_err(|reason| {
                ServerError::Storage(format!("loading the initial snapshot: {reason}"))
            })?;
            loaded.restored.snapshot = Some(fed);
        }
        let storage = Storage {
            log: LogWriter::new(log_dir.clone(), opts.prealloc_size),
            snapshots: SnapshotWriter::new(snap_dir.clone()),
            snap_dir,
            log_dir,
            opts,
            last_zxid: loaded.last_zxid,
        };
        Ok((storage, loaded.restored))
    }

    /// Reads the snapshot and the txns after it again (e.g. after [`Storage::truncate_after`]),
    /// without repairing anything.
    pub fn load(&self) -> Result<Restored> {
        self.load_with(SnapshotCollector::default)
    }

    /// [`Storage::load`] into sinks from `new_sink` (see [`Storage::open_with`]).
    pub fn load_with<S: SnapshotSink>(
        &self,
        mut new_sink: impl FnMut() -> S,
    ) -> Result<Restored<S::Output>> {
        Ok(restore(&self.snap_dir, &self.log_dir, false, &mut new_sink, None)?.restored)
    }

    /// Appends txns with one write and one fdatasync (group commit); they are durable when
    /// this returns. Zxids must increase strictly. After a failed write or sync every later
    /// call fails: the server must restart and recover from disk.
    pub fn append(&mut self, entries: &[TxnEntry]) -> Result<()> {
        let last = self.check_order(entries.iter().map(|e| e.header.zxid))?;
        self.log.append(entries)?;
        self.last_zxid = last;
        Ok(())
    }

    /// [`Storage::append`] of txns already serialized (`(zxid, bytes)`, the bytes as
    /// [`TxnEntry::write`] makes them, e.g. a proposal's): written as they are, with the
    /// same framing and checks (each one's header must name its zxid), so the file is
    /// the same as if the decoded txns were appended.
    pub fn append_encoded(&mut self, txns: &[(i64, &[u8])]) -> Result<()> {
        let last = self.check_order(txns.iter().map(|t| t.0))?;
        self.log.append_encoded(txns)?;
        self.last_zxid = last;
        Ok(())
    }

    /// The last of `zxids` if they increase strictly from the last one on disk.
    fn check_order(&self, zxids: impl Iterator<Item = i64>) -> Result<i64> {
        let mut last = self.last_zxid;
        for z in zxids {
            if z <= last {
                return Err(ServerError::Storage(format!(
                    "zxid {z:#x} does not follow {last:#x}"
                )));
            }
            last = z;
        }
        Ok(last)
    }

    /// Zxid of the newest txn on disk (logged, or covered by a snapshot); a fresh store
    /// starts at 0 (its `snapshot.0`).
    pub fn last_zxid(&self) -> i64 {
        self.last_zxid
    }

    /// Counts of the syncs issued so far.
    pub fn sync_stats(&self) -> SyncStats {
        self.log.stats()
    }

    /// `<dataDir>/version-2`.
    pub fn snap_dir(&self) -> &Path {
        &self.snap_dir
    }

    /// `<dataLogDir>/version-2`.
    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }

    /// Closes the current log file; the next append starts `log.<its zxid>`. Call this when
    /// taking a snapshot so purging can later drop the older logs.
    pub fn roll_log(&mut self) {
        self.log.roll();
    }

    /// A handle writing snapshots from any thread, e.g.
    /// `storage.roll_log(); let w = storage.snapshot_writer();
    /// spawn_blocking(move || w.write(&snap))` while appends continue.
    pub fn snapshot_writer(&self) -> SnapshotWriter {
        self.snapshots.clone()
    }

    /// Rolls the log and writes `snapshot.<snap.last_zxid hex>` atomically, on this thread.
    pub fn save_snapshot(&mut self, snap: &SnapshotData) -> Result<PathBuf> {
        self.roll_log();
        self.snapshots.write(snap)
    }

    /// Replaces the whole history with a snapshot received from an ensemble leader
    /// (SNAP): every log file and every snapshot at or above its zxid are deleted first,
    /// then the snapshot is written atomically; the next append starts a new log. A crash
    /// in between leaves an older snapshot without logs (an older, consistent state),
    /// never the leader's snapshot mixed with txns it superseded.
    /// The snapshot is the leader's SNAP body as received (see
    /// [`SnapshotWriter::write_body`]), so no decoded copy of the tree is needed.
    pub fn install_snapshot(&mut self, last_zxid: i64, body: &[u8]) -> Result<PathBuf> {
        let prepared = self.prepare_snapshot(last_zxid, body)?;
        self.install_prepared_snapshot(last_zxid, prepared)
    }

    /// Writes a leader's SNAP body to a complete, fsynced file under a scratch name,
    /// touching nothing else: safe beside appends, and undone by dropping the result.
    pub fn prepare_snapshot(&self, last_zxid: i64, body: &[u8]) -> Result<PreparedSnapshot> {
        self.snapshots.prepare_body(last_zxid, body)
    }

    /// [`Storage::install_snapshot`] with the file already written by
    /// [`Storage::prepare_snapshot`].
    pub fn install_prepared_snapshot(
        &mut self,
        last_zxid: i64,
        prepared: PreparedSnapshot,
    ) -> Result<PathBuf> {
        self.log.roll();
        for l in list(&self.log_dir, LOG_PREFIX)? {
            remove_file(&l.path)?;
        }
        for s in list(&self.snap_dir, SNAPSHOT_PREFIX)? {
            if s.zxid >= last_zxid {
                remove_file(&s.path)?;
            }
        }
        sync_dir(&self.log_dir)?;
        sync_dir(&self.snap_dir)?;
        let path = prepared.commit()?;
        self.last_zxid = last_zxid;
        tracing::info!(
            zxid = format_args!("{:#x}", last_zxid),
            "installed a leader's snapshot"
        );
        Ok(path)
    }

    /// Sets how long a txn log sync may take before it is logged as slow.
    pub fn set_fsync_warning(&mut self, threshold: std::time::Duration) {
        self.log.set_fsync_warning(threshold);
    }

    /// Sets how many snapshots [`Storage::purge`] keeps (`autopurge.snapRetainCount`).
    pub fn set_snap_retain_count(&mut self, n: usize) {
        self.opts.snap_retain_count = n;
    }

    /// Autopurge (Apache's `PurgeTxnLog`): keeps the `snap_retain_count` (at least 3, as
    /// Apache) newest complete snapshots and the logs needed to replay from the oldest of
    /// them (the newest log starting at or before it, and every later one); deletes older
    /// snapshots and logs. Returns the removed files; one that cannot be removed is
    /// logged and skipped.
    ///
    /// Safe while appends go on and while a snapshot is being written: the current log is
    /// always the newest one, and a snapshot still being written does not count yet.
    pub fn purge(&mut self) -> Result<Vec<PathBuf>> {
        // Never fewer than 3: a newest snapshot that turns out damaged falls back to an
        // older one, which needs its logs.
        let keep = self.opts.snap_retain_count.max(MIN_SNAP_RETAIN_COUNT);
        let snaps = list(&self.snap_dir, SNAPSHOT_PREFIX)?;
        let mut kept = Vec::new();
        for s in snaps.iter().rev() {
            if !s.has_extension && looks_complete(&s.path) {
                kept.push(s.zxid);
                if kept.len() == keep {
                    break;
                }
            }
        }
        let Some(&least) = kept.last() else {
            return Ok(Vec::new());
        };
        let logs = list(&self.log_dir, LOG_PREFIX)?;
        let retained_log = logs.iter().rev().find(|l| l.zxid <= least).map(|l| l.zxid);
        let doomed = snaps.iter().filter(|s| s.zxid < least).chain(
            logs.iter()
                .filter(|l| l.zxid < least && Some(l.zxid) != retained_log),
        );
        let mut removed = Vec::new();
        for f in doomed {
            // One file that cannot go must not keep the others (as Apache, which
            // reports it and goes on).
            match remove_file(&f.path) {
                Ok(()) => {
                    tracing::info!(file = %f.path.display(), "purged");
                    removed.push(f.path.clone());
                }
                Err(e) => tracing::warn!(file = %f.path.display(), error = %e, "cannot purge"),
            }
        }
        Ok(removed)
    }

    /// True when the logs hold every txn after `zxid`, so [`Storage::txns_after`] can serve
    /// a DIFF; false when older logs were purged (sync with a snapshot instead).
    pub fn covers(&self, zxid: i64) -> Result<bool> {
        if zxid >= self.last_zxid {
            return Ok(true);
        }
        let logs = list(&self.log_dir, LOG_PREFIX)?;
        Ok(logs.iter().any(|l| l.zxid <= zxid.saturating_add(1)))
    }

    /// Every logged txn with a zxid above `zxid`, in order, read from disk. Fails with
    /// [`ServerError::TxnsUnavailable`] when the logs no longer reach back that far.
    pub fn txns_after(&self, zxid: i64) -> Result<Vec<TxnEntry>> {
        if zxid >= self.last_zxid {
            return Ok(Vec::new());
        }
        let logs = list(&self.log_dir, LOG_PREFIX)?;
        let Some(first) = logs.iter().rposition(|l| l.zxid <= zxid.saturating_add(1)) else {
            return Err(ServerError::TxnsUnavailable { after: zxid });
        };
        let mut out = Vec::new();
        for l in &logs[first..] {
            let scan = txn_log::scan(&l.path, false)?;
            out.extend(
                scan.entries
                    .into_iter()
                    .map(|t| t.entry)
                    .filter(|e| e.header.zxid > zxid),
            );
        }
        Ok(out)
    }

    /// Removes every txn above `zxid` (the ensemble's TRUNC): later log files are deleted,
    /// the file holding `zxid` is cut right after it, and snapshots above `zxid` are deleted
    /// (they contain the removed txns). Call [`Storage::load`] to rebuild the tree.
    pub fn truncate_after(&mut self, zxid: i64) -> Result<()> {
        self.log.roll();
        let logs = list(&self.log_dir, LOG_PREFIX)?;
        for l in logs.iter().rev() {
            if l.zxid > zxid {
                remove_file(&l.path)?;
                continue;
            }
            let scan = txn_log::scan(&l.path, false)?;
            if scan.entries.iter().any(|t| t.entry.header.zxid > zxid) {
                let end = scan
                    .entries
                    .iter()
                    .take_while(|t| t.entry.header.zxid <= zxid)
                    .last()
                    .map_or(0, |t| t.end);
                txn_log::cut(&l.path, end)?;
            }
            break;
        }
        for s in list(&self.snap_dir, SNAPSHOT_PREFIX)? {
            if s.zxid > zxid {
                remove_file(&s.path)?;
            }
        }
        sync_dir(&self.log_dir)?;
        sync_dir(&self.snap_dir)?;
        self.last_zxid = newest_zxid(&self.snap_dir, &self.log_dir)?;
        tracing::info!(
            zxid = format_args!("{zxid:#x}"),
            last = format_args!("{:#x}", self.last_zxid),
            "txn log truncated"
        );
        Ok(())
    }
}

/// Apache's quick validity test (`SnapStream.isValidCheckedStream`): at least 10 bytes,
/// ending with the seal's `"/"` (int 1, byte '/').
fn looks_complete(path: &Path) -> bool {
    let check = || -> std::io::Result<bool> {
        let mut f = std::fs::File::open(path)?;
        let len = f.metadata()?.len();
        if len < 10 {
            return Ok(false);
        }
        f.seek(SeekFrom::Start(len - 5))?;
        let mut tail = [0u8; 5];
        f.read_exact(&mut tail)?;
        Ok(tail == [0, 0, 0, 1, b'/'])
    };
    check().unwrap_or(false)
}

/// Temporary snapshot files left by a crash (no writer can be running before `open`).
fn remove_stale_tmp_snapshots(snap_dir: &Path) -> Result<()> {
    let Ok(rd) = std::fs::read_dir(snap_dir) else {
        return Ok(());
    };
    for ent in rd.flatten() {
        let name = ent.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with(&format!(".{SNAPSHOT_PREFIX}.")) && name.ends_with(TMP_SUFFIX) {
            remove_file(&ent.path())?;
        }
    }
    Ok(())
}

/// Highest zxid on disk: the newest log entry or snapshot.
fn newest_zxid(snap_dir: &Path, log_dir: &Path) -> Result<i64> {
    let mut newest = list(snap_dir, SNAPSHOT_PREFIX)?
        .last()
        .map_or(-1, |s| s.zxid);
    for l in list(log_dir, LOG_PREFIX)?.iter().rev() {
        let scan = txn_log::scan(&l.path, false)?;
        if let Some(t) = scan.entries.last() {
            newest = newest.max(t.entry.header.zxid);
            break;
        }
    }
    Ok(newest)
}

/// Applies a txn read from the log to the snapshot being restored.
type Replay<'a, T> = &'a mut dyn FnMut(&mut T, TxnEntry);

struct Loaded<T> {
    restored: Restored<T>,
    last_zxid: i64,
}

fn epoch(zxid: i64) -> i64 {
    zxid >> 32
}

/// Finds the newest valid snapshot (falling back to older ones) and the txns after it.
/// With `repair`, damaged log tails are cut off and unreplayable files set aside.
/// With `replay`, the txns after the snapshot are handed to it with the snapshot as they
/// are read (none is kept in [`Restored::txns`]).
fn restore<S: SnapshotSink>(
    snap_dir: &Path,
    log_dir: &Path,
    repair: bool,
    new_sink: &mut impl FnMut() -> S,
    mut replay: Option<Replay<'_, S::Output>>,
) -> Result<Loaded<S::Output>> {
    let snaps = list(snap_dir, SNAPSHOT_PREFIX)?;
    let mut snapshot = None;
    let mut problems = Vec::new();
    for s in snaps.iter().rev() {
        if s.has_extension {
            problems.push(format!(
                "{}: compressed snapshots are not supported",
                s.path.display()
            ));
            tracing::warn!(file = %s.path.display(), "skipping compressed snapshot (unsupported)");
            continue;
        }
        match load_snapshot(&s.path, s.zxid, new_sink()) {
            Ok(snap) => {
                snapshot = Some((s.zxid, snap));
                break;
            }
            Err(e) => {
                tracing::warn!(file = %s.path.display(), error = %e, "invalid snapshot, trying an older one");
                problems.push(e.to_string());
            }
        }
    }
    let snap_zxid = snapshot.as_ref().map_or(-1, |(zxid, _)| *zxid);
    let mut snapshot = snapshot.map(|(_, snap)| snap);

    let logs = list(log_dir, LOG_PREFIX)?;
    let mut txns = Vec::new();
    let mut first_kept = None;
    let mut last_logged = -1i64;
    let mut prev_damaged = false;
    for (i, f) in logs.iter().enumerate() {
        // A log followed by one starting at or before the txn after the snapshot holds
        // only txns the snapshot has: not read at all (Apache's `getLogFiles`), so a
        // restart does not scan the preallocated tails of every old log.
        if snapshot.is_some() && logs.get(i + 1).is_some_and(|n| n.zxid <= snap_zxid + 1) {
            prev_damaged = false;
            continue;
        }
        // Entries are taken as they are read; a log cut off after a damaged one (see below)
        // is recognised at its first entry, before any of its entries is taken.
        let mut first = None;
        let mut gap = false;
        let scan = txn_log::scan_each(&f.path, repair, |t| {
            let z = t.entry.header.zxid;
            if first.is_none() {
                first = Some(z);
                gap = prev_damaged
                    && last_logged >= 0
                    && z > last_logged + 1
                    && epoch(z) == epoch(last_logged);
            }
            if gap {
                return;
            }
            if z <= last_logged {
                tracing::warn!(
                    file = %f.path.display(),
                    zxid = format_args!("{z:#x}"),
                    "skipping txn that does not follow {last_logged:#x}"
                );
                return;
            }
            last_logged = z;
            if z > snap_zxid {
                first_kept.get_or_insert(z);
                match (&mut replay, &mut snapshot) {
                    (Some(apply), Some(snap)) => apply(snap, t.entry),
                    _ => txns.push(t.entry),
                }
            }
        })?;
        if gap {
            tracing::error!(
                file = %f.path.display(),
                missing_from = format_args!("{:#x}", last_logged + 1),
                "txns missing after a damaged log: later logs cannot be replayed"
            );
            if repair {
                set_aside(&logs[i..])?;
            }
            break;
        }
        if repair {
            if scan.damage.is_some() {
                txn_log::repair(&f.path, &scan)?;
            } else if first.is_none() {
                // A header-only file holds nothing; removing it keeps log names unique.
                remove_file(&f.path)?;
            }
        }
        prev_damaged = scan.damage.is_some();
    }

    if snapshot.is_none() {
        if !problems.is_empty() {
            return Err(ServerError::Corrupt {
                file: snap_dir.to_owned(),
                reason: format!("no valid snapshot: {}", problems.join("; ")),
            });
        }
        if last_logged >= 0 {
            return Err(ServerError::Corrupt {
                file: log_dir.to_owned(),
                reason: "no snapshot found, but there are log entries".into(),
            });
        }
    }
    if let (Some(z), true) = (first_kept, snapshot.is_some()) {
        if z > snap_zxid + 1 && epoch(z) == epoch(snap_zxid) {
            tracing::error!(
                snapshot = format_args!("{snap_zxid:#x}"),
                first_txn = format_args!("{z:#x}"),
                "the logs do not continue the snapshot: txns are missing"
            );
        }
    }
    Ok(Loaded {
        last_zxid: snap_zxid.max(last_logged),
        restored: Restored { snapshot, txns },
    })
}

/// Renames log files that cannot be replayed to `corrupt.<name>` so neither we nor Apache
/// load them, while keeping their bytes.
fn set_aside(files: &[DataFile]) -> Result<()> {
    for f in files {
        let Some(name) = f.path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let to = f.path.with_file_name(format!("{CORRUPT_PREFIX}.{name}"));
        tracing::error!(file = %f.path.display(), to = %to.display(), "setting unreplayable log aside");
        rename_durably(&f.path, &to)?;
    }
    Ok(())
}
