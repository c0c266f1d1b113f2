//! Snapshots in Apache's `FileSnap` format (uncompressed `SnapStream` mode):
//!
//! ```text
//! FileHeader{"ZKSN", 2, -1}
//! int sessionCount; { long id; int timeout }*
//! int aclCount; { long index; vector<ACL> }*          (ReferenceCountedACLCache)
//! { ustring path; DataNode{buffer data; long acl; StatPersisted stat} }*   pre-order, root ""
//! ustring "/"                                           end of nodes
//! long adler32(all bytes so far); ustring "/"           seal
//! long zxid; int digestVersion; long digest             ZxidDigest (3.6+, digest enabled)
//! long adler32(all bytes so far); ustring "/"           second seal
//! ```

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use zk_proto::persistence::{DataNodeRecord, FileHeader, FILE_VERSION, SNAP_MAGIC};
use zk_proto::{Acl, JuteReader, JuteWrite, Perms, ProtoError, Record, StatPersisted};

use super::adler32::Adler32;
use super::file_names::snapshot_name;
use super::fs_util::{remove_file, rename_durably};
use super::snapshot_reader::{
    load_snapshot, read_snapshot_from, ReadError, SnapshotSink, NOT_IN_PRE_ORDER,
};
use crate::error::{Result, ServerError};

/// dbid Apache writes in snapshot headers (`FileSnap.dbId`; txn logs carry 0).
pub const SNAP_DBID: i64 = -1;
/// Path that ends the node list and the seals.
const END_PATH: &str = "/";
/// Version of Apache's tree digest (`DigestCalculator.DIGEST_VERSION`).
pub const DIGEST_VERSION: i32 = 2;
/// ACL index meaning `world:anyone` with every permission, never stored in the cache.
pub const OPEN_ACL_INDEX: i64 = -1;

/// Everything a snapshot holds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SnapshotData {
    /// Zxid of the last txn applied to the tree; names the file.
    pub last_zxid: i64,
    /// Live sessions: (session id, timeout ms).
    pub sessions: Vec<(i64, i32)>,
    /// The ACL cache: index -> ACL list. Index -1 (open ACL) is implicit and never listed.
    pub acls: Vec<(i64, Vec<Acl>)>,
    /// Nodes in pre-order (each parent before its children), with paths as Apache writes
    /// them: the root is `""`, then `/zookeeper`, `/zookeeper/quota`, `/a`, `/a/b`...
    pub nodes: Vec<(String, DataNodeRecord)>,
}

impl SnapshotData {
    /// The tree Apache 3.8 starts from and snapshots as `snapshot.0` on a fresh data dir:
    /// the root, `/zookeeper`, `/zookeeper/quota` and `/zookeeper/config` (read-only for
    /// everyone, aversion -1, as `DataTree.addConfigNode` leaves it).
    pub fn initial() -> Self {
        let empty = |acl: i64, aversion: i32| DataNodeRecord {
            data: Some(Bytes::new()),
            acl,
            stat: StatPersisted {
                aversion,
                ..StatPersisted::default()
            },
        };
        SnapshotData {
            last_zxid: 0,
            sessions: Vec::new(),
            acls: vec![(1, vec![Acl::new(Perms::READ, "world", "anyone")])],
            nodes: vec![
                (String::new(), empty(OPEN_ACL_INDEX, 0)),
                ("/zookeeper".into(), empty(OPEN_ACL_INDEX, 0)),
                // Java's HashSet happens to iterate `config` before `quota`; same order
                // here makes this byte-identical to Apache's own snapshot.0.
                ("/zookeeper/config".into(), empty(1, -1)),
                ("/zookeeper/quota".into(), empty(OPEN_ACL_INDEX, 0)),
            ],
        }
    }

    /// Serializes the snapshot, sealed, into `w`.
    pub fn write_to(&self, w: impl Write) -> std::io::Result<()> {
        check_order(&self.nodes)
            .map_err(|reason| std::io::Error::new(std::io::ErrorKind::InvalidInput, reason))?;
        let mut out = SealedWriter::new(w);
        let mut b = BytesMut::new();
        write_head(&mut b, &self.sessions, &self.acls)?;
        out.put(&mut b)?;
        for (path, node) in &self.nodes {
            b.write_string(path);
            node.write(&mut b);
            if b.len() >= 1 << 16 {
                out.put(&mut b)?;
            }
        }
        out.put(&mut b)?;
        write_tail(out)
    }

    /// Decodes a whole snapshot file held in memory, checking its header, structure and
    /// seals (the same reader as [`read_snapshot`]).
    pub fn decode(file_zxid: i64, buf: Bytes) -> std::result::Result<Self, String> {
        let len = buf.len() as u64;
        read_snapshot_from(&buf[..], len, file_zxid, SnapshotCollector::default()).map_err(|e| {
            match e {
                ReadError::Corrupt(reason) => reason,
                ReadError::Io(e) => e.to_string(),
            }
        })
    }

    /// Feeds this snapshot to `sink` as if it had been read from a file (e.g. the initial
    /// tree a fresh data dir starts from).
    pub fn feed<S: SnapshotSink>(self, mut sink: S) -> std::result::Result<S::Output, String> {
        sink.begin(self.sessions, self.acls);
        for (position, (path, node)) in self.nodes.into_iter().enumerate() {
            sink.node(&path, node)
                .map_err(|why| format!("node {path:?} at position {position} {why}"))?;
        }
        sink.finish(self.last_zxid)
    }
}

/// A [`SnapshotSink`] keeping everything as a [`SnapshotData`], node data detached from
/// the read buffer; the pre-order is checked once all nodes are in.
#[derive(Debug, Default)]
pub struct SnapshotCollector {
    snap: SnapshotData,
}

impl SnapshotSink for SnapshotCollector {
    type Output = SnapshotData;

    fn begin(&mut self, sessions: Vec<(i64, i32)>, acls: Vec<(i64, Vec<Acl>)>) {
        self.snap.sessions = sessions;
        self.snap.acls = acls;
    }

    fn node(&mut self, path: &str, mut node: DataNodeRecord) -> std::result::Result<(), String> {
        node.data = node.data.map(|d| Bytes::copy_from_slice(&d));
        self.snap.nodes.push((path.to_owned(), node));
        Ok(())
    }

    fn finish(mut self, last_zxid: i64) -> std::result::Result<SnapshotData, String> {
        check_order(&self.snap.nodes)?;
        self.snap.last_zxid = last_zxid;
        Ok(self.snap)
    }
}

/// File header, sessions and ACL cache: everything before the node records.
fn write_head(
    b: &mut BytesMut,
    sessions: &[(i64, i32)],
    acls: &[(i64, Vec<Acl>)],
) -> std::io::Result<()> {
    FileHeader {
        magic: SNAP_MAGIC,
        version: FILE_VERSION,
        dbid: SNAP_DBID,
    }
    .write(b);
    b.write_i32(jute_count(sessions.len())?);
    for &(id, timeout) in sessions {
        b.write_i64(id);
        b.write_i32(timeout);
    }
    b.write_i32(jute_count(acls.len())?);
    for (index, list) in acls {
        b.write_i64(*index);
        b.write_vec(list);
    }
    Ok(())
}

/// Everything after the node records: end marker, seal, digest, second seal.
fn write_tail<W: Write>(mut out: SealedWriter<W>) -> std::io::Result<()> {
    let mut b = BytesMut::new();
    b.write_string(END_PATH);
    out.put(&mut b)?;
    write_seals(out)
}

/// Everything after the end marker: seal, digest, second seal.
fn write_seals<W: Write>(mut out: SealedWriter<W>) -> std::io::Result<()> {
    let mut b = BytesMut::new();
    out.seal()?;
    // An empty ZxidDigest, exactly what Apache writes when it has no digest yet: Apache
    // then skips the comparison instead of checking a tree digest we do not compute.
    b.write_i64(0);
    b.write_i32(DIGEST_VERSION);
    b.write_i64(0);
    out.put(&mut b)?;
    out.seal()?;
    out.inner.flush()
}

/// Sessions, ACL cache and node records of a serialized database.
pub(crate) type DatabaseParts = (
    Vec<(i64, i32)>,
    Vec<(i64, Vec<Acl>)>,
    Vec<(String, DataNodeRecord)>,
);

/// Reads a serialized database as both a snapshot file and a leader's SNAP stream carry it:
/// sessions, the ACL cache, then node records up to the `"/"` end marker. Counts are checked
/// against the bytes left before anything is allocated.
pub(crate) fn read_database(r: &mut JuteReader) -> std::result::Result<DatabaseParts, String> {
    let e = |err: ProtoError| err.to_string();
    let n = bounded_count(r, 12)?;
    let mut sessions = Vec::with_capacity(n);
    for _ in 0..n {
        sessions.push((r.read_i64().map_err(e)?, r.read_i32().map_err(e)?));
    }
    let n = bounded_count(r, 12)?;
    let mut acls = Vec::with_capacity(n);
    for _ in 0..n {
        let index = r.read_i64().map_err(e)?;
        let list: Vec<Acl> = r.read_vec().map_err(e)?;
        acls.push((index, list));
    }
    let mut nodes = Vec::new();
    loop {
        let path = r.read_string().map_err(e)?;
        if path == END_PATH {
            break;
        }
        let mut node = DataNodeRecord::read(r).map_err(e)?;
        // Detach node data from the input buffer so it can be freed.
        node.data = node.data.map(|d| Bytes::copy_from_slice(&d));
        nodes.push((path, node));
    }
    Ok((sessions, acls, nodes))
}

fn bounded_count(r: &mut JuteReader, min: usize) -> std::result::Result<usize, String> {
    let n = r.read_i32().map_err(|e| e.to_string())?;
    let n = usize::try_from(n).map_err(|_| format!("negative count {n}"))?;
    if n.saturating_mul(min) > r.remaining() {
        return Err(format!("count {n} exceeds the bytes left"));
    }
    Ok(n)
}

fn jute_count(n: usize) -> std::io::Result<i32> {
    i32::try_from(n)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "too many entries"))
}

/// Apache refuses a tree whose nodes do not come root first and parents before children.
pub(crate) fn check_order(nodes: &[(String, DataNodeRecord)]) -> std::result::Result<(), String> {
    let mut seen: HashSet<&str> = HashSet::with_capacity(nodes.len());
    for (i, (path, _)) in nodes.iter().enumerate() {
        let ok = match path.rfind('/') {
            None => i == 0 && path.is_empty(),
            Some(slash) => !path.ends_with('/') && seen.contains(&path[..slash]),
        };
        if !ok {
            return Err(format!("node {path:?} at position {i} {NOT_IN_PRE_ORDER}"));
        }
        seen.insert(path);
    }
    Ok(())
}

/// Writes through a buffer while keeping the running Adler-32 for the seals.
struct SealedWriter<W: Write> {
    inner: BufWriter<W>,
    sum: Adler32,
    /// Bytes put so far (buffered ones included).
    written: u64,
}

impl<W: Write> SealedWriter<W> {
    fn new(w: W) -> Self {
        SealedWriter {
            inner: BufWriter::with_capacity(1 << 16, w),
            sum: Adler32::new(),
            written: 0,
        }
    }

    fn put(&mut self, b: &mut BytesMut) -> std::io::Result<()> {
        self.put_slice(b)?;
        b.clear();
        Ok(())
    }

    fn put_slice(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.sum.update(b);
        self.written += b.len() as u64;
        self.inner.write_all(b)
    }

    fn written(&self) -> u64 {
        self.written
    }

    fn seal(&mut self) -> std::io::Result<()> {
        let mut b = BytesMut::new();
        b.write_i64(i64::from(self.sum.value()));
        b.write_string(END_PATH);
        self.put(&mut b)
    }
}

/// Writes snapshot files into a `version-2` directory. Cheap to clone and usable from any
/// thread: it only creates new files (under a unique temporary name, then renamed), so it
/// can run on a blocking thread while [`super::Storage`] keeps appending to the log.
#[derive(Debug, Clone)]
pub struct SnapshotWriter {
    dir: PathBuf,
    counter: Arc<AtomicU64>,
}

impl SnapshotWriter {
    pub(crate) fn new(dir: PathBuf) -> Self {
        SnapshotWriter {
            dir,
            counter: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Writes `snapshot.<last_zxid hex>` atomically (temporary file, fsync, rename, fsync of
    /// the directory) and returns its path. A crash leaves either no file or a complete one.
    pub fn write(&self, snap: &SnapshotData) -> Result<PathBuf> {
        self.write_file(snap.last_zxid, |f, _| snap.write_to(f))
    }

    /// Writes `snapshot.<last_zxid hex>` from a serialized database that already ends with
    /// the end marker (a leader's SNAP body, see `crate::storage::snap_stream`): the
    /// file is the header, those bytes unchanged, and the seals. The caller has checked the
    /// body (e.g. by building the tree from it).
    pub fn write_body(&self, last_zxid: i64, body: &[u8]) -> Result<PathBuf> {
        self.prepare_body(last_zxid, body)?.commit()
    }

    /// [`SnapshotWriter::write_body`] up to the file being complete and fsynced under a
    /// scratch name; [`PreparedSnapshot::commit`] puts it in place. Lets a follower write
    /// a SNAP while it checks the body, and keep its files as they were if the body is bad.
    pub fn prepare_body(&self, last_zxid: i64, body: &[u8]) -> Result<PreparedSnapshot> {
        self.prepare_file(last_zxid, |f, _| {
            let mut out = SealedWriter::new(f);
            let mut b = BytesMut::new();
            FileHeader {
                magic: SNAP_MAGIC,
                version: FILE_VERSION,
                dbid: SNAP_DBID,
            }
            .write(&mut b);
            out.put(&mut b)?;
            out.put_slice(body)?;
            write_seals(out)
        })
    }

    /// A snapshot file written as its nodes come, a slice at a time (see
    /// [`crate::storage::snapshot_walk::SnapshotWalk::for_file`]), on a thread of its own:
    /// the header with `sessions` and the ACL table `acls` (fixed when the walk began) is
    /// written now, the node records as [`SnapshotStream::nodes`] hands them over, and
    /// [`SnapshotStream::end`] seals, syncs and publishes the file. `done` runs on that
    /// thread with the outcome once the file is published or not, and whether it was
    /// given up meanwhile; what it returns is what [`SnapshotStream::end`]'s handle gives.
    pub fn stream<T: Send + 'static>(
        &self,
        last_zxid: i64,
        sessions: &[(i64, i32)],
        acls: &[(i64, Vec<Acl>)],
        finish_delay: std::time::Duration,
        done: impl FnOnce(Result<PathBuf>, bool) -> T + Send + 'static,
    ) -> Result<SnapshotStream<T>> {
        let mut head = BytesMut::new();
        write_head(&mut head, sessions, acls).map_err(|e| ServerError::io("snapshot header", e))?;
        let (tx, rx) = std::sync::mpsc::channel();
        let cancel = Arc::new(AtomicBool::new(false));
        let (writer, stop) = (self.clone(), cancel.clone());
        let thread = std::thread::Builder::new()
            .name("zk-snapshot".into())
            .spawn(move || {
                let res = writer.write_streamed(last_zxid, head, &rx, &stop, finish_delay);
                done(res, stop.load(Ordering::SeqCst))
            })
            .map_err(|e| ServerError::io("start a snapshot writer thread", e))?;
        Ok(SnapshotStream {
            tx: Some(tx),
            cancel,
            thread: Some(thread),
        })
    }

    /// The body of [`SnapshotWriter::stream`]'s thread.
    fn write_streamed(
        &self,
        last_zxid: i64,
        mut head: BytesMut,
        rx: &std::sync::mpsc::Receiver<Piece>,
        cancel: &AtomicBool,
        finish_delay: std::time::Duration,
    ) -> Result<PathBuf> {
        let abandoned = || std::io::Error::other("abandoned");
        self.write_file(last_zxid, |f, path| {
            let mut out = SealedWriter::new(f);
            out.put(&mut head)?;
            let mut writeback = Writeback::new(f);
            lower_priority();
            let started = std::time::Instant::now();
            // Every piece is received (and dropped, which counts it written) whatever
            // happens, so the walk feeding them never waits for a writer that failed.
            let mut failed = None;
            let ended = loop {
                match rx.recv() {
                    Ok(Piece::Nodes(records, _written)) => {
                        if failed.is_some() {
                            continue;
                        }
                        if cancel.load(Ordering::Relaxed) {
                            failed = Some(abandoned());
                        } else if let Some(e) = super::fault::write_fault(path) {
                            failed = Some(e);
                        } else if let Err(e) = out.put_slice(&records) {
                            failed = Some(e);
                        } else {
                            let on_file = out.written() - out.inner.buffer().len() as u64;
                            writeback.advance(on_file);
                            keep_to_rate(started, out.written());
                        }
                    }
                    Ok(Piece::End) => break true,
                    Err(_) => break false,
                }
            };
            if let Some(e) = failed {
                return Err(e);
            }
            if !ended {
                return Err(abandoned());
            }
            let paused = std::time::Instant::now();
            while paused.elapsed() < finish_delay && !cancel.load(Ordering::SeqCst) {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            if cancel.load(Ordering::SeqCst) {
                return Err(abandoned());
            }
            write_tail(out)
        })
    }

    /// Where snapshot `zxid` is written before it is renamed into place.
    fn tmp_path(&self, zxid: i64) -> PathBuf {
        self.dir.join(format!(
            ".{}.{}.{}{TMP_SUFFIX}",
            snapshot_name(zxid),
            std::process::id(),
            self.counter.fetch_add(1, Ordering::Relaxed)
        ))
    }

    fn write_file(
        &self,
        last_zxid: i64,
        fill: impl FnOnce(&File, &Path) -> std::io::Result<()>,
    ) -> Result<PathBuf> {
        self.prepare_file(last_zxid, fill)?.commit()
    }

    fn prepare_file(
        &self,
        last_zxid: i64,
        fill: impl FnOnce(&File, &Path) -> std::io::Result<()>,
    ) -> Result<PreparedSnapshot> {
        if last_zxid < 0 {
            // Apache could not parse the file name (and would ignore the snapshot).
            return Err(ServerError::Storage(format!(
                "snapshot zxid {last_zxid} is negative"
            )));
        }
        let path = self.dir.join(snapshot_name(last_zxid));
        let tmp = self.tmp_path(last_zxid);
        let res = (|| {
            let f = File::create(&tmp)?;
            if let Some(e) = super::fault::write_fault(&tmp) {
                // A filesystem out of blocks: part of the file, then the error.
                (&f).write_all(&[0x5a; 4096])?;
                return Err(e);
            }
            fill(&f, &tmp)?;
            f.sync_all()
        })();
        if let Err(e) = res {
            let _ = remove_file(&tmp);
            return Err(ServerError::io(
                format!("write snapshot {}", tmp.display()),
                e,
            ));
        }
        Ok(PreparedSnapshot {
            tmp: Some(tmp),
            path,
            last_zxid,
        })
    }
}

/// A snapshot file complete and fsynced under a scratch name; dropped uncommitted, it
/// is removed.
#[derive(Debug)]
pub struct PreparedSnapshot {
    tmp: Option<PathBuf>,
    path: PathBuf,
    last_zxid: i64,
}

impl PreparedSnapshot {
    /// Renames it into place, durably.
    pub fn commit(mut self) -> Result<PathBuf> {
        let Some(tmp) = self.tmp.take() else {
            return Ok(self.path.clone());
        };
        if let Err(e) = rename_durably(&tmp, &self.path) {
            let _ = remove_file(&tmp);
            return Err(e);
        }
        let len = std::fs::metadata(&self.path).map_or(0, |m| m.len());
        super::fault::synced(&self.path, len, true);
        tracing::debug!(zxid = format_args!("{:#x}", self.last_zxid), file = %self.path.display(), "snapshot written");
        Ok(self.path.clone())
    }
}

impl Drop for PreparedSnapshot {
    fn drop(&mut self) {
        if let Some(tmp) = self.tmp.take() {
            let _ = remove_file(&tmp);
        }
    }
}

/// Bytes of a streamed snapshot pushed to the disk at a time. Left to the kernel, a big
/// file's data is written back gigabytes at once (or by one sync at the end), and the txn
/// log's syncs wait behind it (ext4 orders a journal commit after the data it covers);
/// a MiB at a time, with at most two in flight, they wait for a few ms at most.
const WRITEBACK_STEP: u64 = 1 << 20;

/// Bytes per second a snapshot file is written at most (Apache writes a 10M-znode tree in
/// about 12 s, ~160 MB/s here). At full speed the walk and this thread take most of two
/// cores and the disk's queue, and the txn log's syncs, which every write waits for, took
/// 40-135 ms instead of 1-5 ms while a 10M-znode snapshot was written; the walk keeps
/// pace with this thread, so it slows down too.
pub const SNAPSHOT_WRITE_RATE: u64 = 160 << 20;

/// Sleeps while `written` bytes since `started` are ahead of [`SNAPSHOT_WRITE_RATE`].
fn keep_to_rate(started: std::time::Instant, written: u64) {
    let due = std::time::Duration::from_secs_f64(written as f64 / SNAPSHOT_WRITE_RATE as f64);
    if let Some(ahead) = due.checked_sub(started.elapsed()) {
        std::thread::sleep(ahead);
    }
}

/// Makes the calling thread (a snapshot's writer) yield the CPU to the request path.
#[cfg(target_os = "linux")]
fn lower_priority() {
    // SAFETY: plain syscalls on the calling thread; failure only leaves its priority.
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 10);
    }
}

/// Elsewhere a thread's priority is left as it is.
#[cfg(not(target_os = "linux"))]
fn lower_priority() {}

/// Pushes a file's data to the disk as it is written, [`WRITEBACK_STEP`] at a time.
struct Writeback<'a> {
    file: &'a File,
    /// Bytes whose writeback was started.
    started: u64,
}

impl<'a> Writeback<'a> {
    fn new(file: &'a File) -> Self {
        Writeback { file, started: 0 }
    }

    /// The file now holds `len` bytes: starts the writeback of each whole step written
    /// since, and waits for the step before each (so two at most are in flight).
    #[cfg(target_os = "linux")]
    fn advance(&mut self, len: u64) {
        while len - self.started >= WRITEBACK_STEP {
            let from = self.started;
            self.sync_range(from, libc::SYNC_FILE_RANGE_WRITE);
            if from >= WRITEBACK_STEP {
                self.sync_range(
                    from - WRITEBACK_STEP,
                    libc::SYNC_FILE_RANGE_WAIT_BEFORE
                        | libc::SYNC_FILE_RANGE_WRITE
                        | libc::SYNC_FILE_RANGE_WAIT_AFTER,
                );
            }
            self.started += WRITEBACK_STEP;
        }
    }

    /// Elsewhere the kernel writes the data back as it sees fit (and the final sync).
    #[cfg(not(target_os = "linux"))]
    fn advance(&mut self, len: u64) {
        let _ = (self.file, len, self.started);
    }

    /// A hint only: the final sync makes the file durable, so a failure here (a
    /// filesystem without the call) changes nothing but the pacing.
    #[cfg(target_os = "linux")]
    fn sync_range(&self, from: u64, flags: libc::c_uint) {
        use std::os::fd::AsRawFd;
        let (Ok(offset), Ok(len)) = (
            libc::off64_t::try_from(from),
            libc::off64_t::try_from(WRITEBACK_STEP),
        ) else {
            return;
        };
        // SAFETY: a plain syscall on a file descriptor this thread holds open.
        unsafe {
            libc::sync_file_range(self.file.as_raw_fd(), offset, len, flags);
        }
    }
}

/// What a snapshot's walk hands to its writer thread.
enum Piece {
    /// Node records; the guard counts them written once dropped.
    Nodes(Bytes, PieceGuard),
    /// The walk is complete.
    End,
}

/// Counts a piece of node records from the walk until its writer is done with it
/// (written, or dropped unwritten because the file was given up), so the walk can keep
/// pace with the disk (see [`SnapshotStream::nodes`]).
#[derive(Debug)]
pub struct PieceGuard(Arc<AtomicUsize>);

impl PieceGuard {
    /// A piece counted in `pending` until the guard is dropped.
    pub fn new(pending: &Arc<AtomicUsize>) -> Self {
        pending.fetch_add(1, Ordering::SeqCst);
        PieceGuard(pending.clone())
    }
}

impl Drop for PieceGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A snapshot file being written by its own thread from the node records of a walk (see
/// [`SnapshotWriter::stream`]); dropped before [`SnapshotStream::end`], it is given up
/// and its partial file removed.
#[derive(Debug)]
pub struct SnapshotStream<T> {
    tx: Option<std::sync::mpsc::Sender<Piece>>,
    cancel: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<T>>,
}

/// A [`SnapshotStream`] whose walk is complete, being sealed, synced and published.
#[derive(Debug)]
pub struct FinishingSnapshot<T> {
    cancel: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<T>,
}

impl<T> FinishingSnapshot<T> {
    /// Whether its thread is done (joining it will not wait).
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }

    /// Waits for the outcome; `None` if the thread panicked.
    pub fn join(self) -> Option<T> {
        self.thread.join().ok()
    }

    /// Gives the file up unless published already (its thread stops at its next step),
    /// and waits for the outcome.
    pub fn cancel(self) -> Option<T> {
        self.cancel.store(true, Ordering::SeqCst);
        self.join()
    }
}

impl<T> SnapshotStream<T> {
    /// Node records (`ustring path; DataNode`), parents before children; `guard` counts
    /// them until written.
    pub fn nodes(&self, records: Bytes, guard: PieceGuard) {
        if let Some(tx) = &self.tx {
            // A writer that is gone drops the piece, and so counts it.
            let _ = tx.send(Piece::Nodes(records, guard));
        }
    }

    /// The walk is complete: the file is sealed, synced and published.
    pub fn end(mut self) -> Option<FinishingSnapshot<T>> {
        let tx = self.tx.take()?;
        let _ = tx.send(Piece::End);
        let thread = self.thread.take()?;
        Some(FinishingSnapshot {
            cancel: self.cancel.clone(),
            thread,
        })
    }
}

impl<T> Drop for SnapshotStream<T> {
    fn drop(&mut self) {
        // Not ended: given up.
        if let Some(t) = self.thread.take() {
            self.cancel.store(true, Ordering::SeqCst);
            self.tx = None;
            let _ = t.join();
        }
    }
}

/// Ending of snapshots being written; such files start with '.' so Apache ignores them.
pub const TMP_SUFFIX: &str = ".tmp";

/// Reads and fully validates the snapshot at `path`, keeping it whole (see
/// [`load_snapshot`] to build something else from it as it is read).
pub fn read_snapshot(path: &Path, file_zxid: i64) -> Result<SnapshotData> {
    load_snapshot(path, file_zxid, SnapshotCollector::default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::database::ZkDatabase;
    use std::time::Duration;

    /// Nodes with their ACL lists resolved, so tables numbered differently compare equal.
    fn resolved(snap: &SnapshotData) -> Vec<(String, Option<Bytes>, Vec<Acl>, StatPersisted)> {
        let table: std::collections::HashMap<i64, Vec<Acl>> = snap.acls.iter().cloned().collect();
        snap.nodes
            .iter()
            .map(|(p, n)| {
                let acl = table.get(&n.acl).cloned().unwrap_or_else(Acl::open_unsafe);
                (p.clone(), n.data.clone(), acl, n.stat.clone())
            })
            .collect()
    }

    fn big_db(nodes: usize) -> ZkDatabase {
        let mut db = ZkDatabase::new();
        let mut tr = Vec::new();
        for i in 0..nodes {
            let acl = if i % 7 == 0 {
                vec![Acl::new(Perms::READ, "digest", "u:x")]
            } else {
                Acl::open_unsafe()
            };
            db.tree
                .create_node(
                    &format!("/n{i:06}"),
                    Some(Bytes::from(vec![b'v'; 200])),
                    acl,
                    0,
                    -1,
                    i as i64 + 1,
                    i as i64 + 1,
                    &mut tr,
                )
                .unwrap();
        }
        db
    }

    fn leftovers(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with('.'))
            .collect()
    }

    /// A stream of `snap` into `dir`, its outcome given as `(result, given up)`.
    fn stream_of(
        dir: &Path,
        snap: &crate::state::database::FuzzySnapshot,
    ) -> SnapshotStream<(Result<PathBuf>, bool)> {
        SnapshotWriter::new(dir.to_path_buf())
            .stream(
                snap.last_zxid,
                &snap.sessions,
                &snap.walk.acl_table(),
                Duration::ZERO,
                |res, given_up| (res, given_up),
            )
            .expect("stream")
    }

    /// Walks `db` into `stream` in pieces of `piece` bytes counted in `pending`; calls
    /// `after` with each piece's number; returns how many pieces there were.
    fn walk_into<T>(
        stream: &SnapshotStream<T>,
        snap: &mut crate::state::database::FuzzySnapshot,
        db: &ZkDatabase,
        piece: usize,
        pending: &Arc<AtomicUsize>,
        mut after: impl FnMut(usize),
    ) -> usize {
        let mut pieces = 0;
        loop {
            let mut records = BytesMut::new();
            let done = snap.walk.step(&db.tree, &mut records, piece);
            stream.nodes(records.freeze(), PieceGuard::new(pending));
            pieces += 1;
            after(pieces);
            if done {
                return pieces;
            }
        }
    }

    /// Several MiB in small pieces (so the writeback steps run many times) give the same
    /// snapshot as the image written at once.
    #[test]
    fn a_streamed_snapshot_reads_back_as_the_tree() {
        let dir = tempfile::tempdir().unwrap();
        let db = big_db(30_000);
        let mut snap = db.begin_file_snapshot();
        let pending = Arc::new(AtomicUsize::new(0));
        let stream = stream_of(dir.path(), &snap);
        walk_into(&stream, &mut snap, &db, 64 * 1024, &pending, |_| {});
        let (res, given_up) = stream.end().unwrap().join().unwrap();
        assert!(!given_up);
        let path = res.unwrap();
        assert!(std::fs::metadata(&path).unwrap().len() > 6 << 20);
        assert_eq!(pending.load(Ordering::SeqCst), 0);
        let back = read_snapshot(&path, snap.last_zxid).unwrap();
        let whole = crate::storage::disk::to_snapshot(&db.image());
        assert_eq!(resolved(&back), resolved(&whole));
        assert!(leftovers(dir.path()).is_empty());
    }

    /// A write failing midway: the file is not published, nothing is left behind, and
    /// every piece handed over is still counted done, so the walk does not wait forever.
    #[test]
    fn a_stream_whose_writes_fail_publishes_nothing_and_counts_every_piece() {
        let dir = tempfile::tempdir().unwrap();
        let db = big_db(5_000);
        let mut snap = db.begin_file_snapshot();
        let pending = Arc::new(AtomicUsize::new(0));
        let stream = stream_of(dir.path(), &snap);
        let pieces = walk_into(&stream, &mut snap, &db, 16 * 1024, &pending, |n| {
            if n == 3 {
                super::super::fault::fail_writes_under(dir.path(), 28);
            }
        });
        assert!(pieces > 10);
        let (res, given_up) = stream.end().unwrap().join().unwrap();
        super::super::fault::clear_writes_under(dir.path());
        assert!(!given_up);
        let err = res.unwrap_err().to_string();
        assert!(err.contains("write snapshot"), "{err}");
        assert_eq!(pending.load(Ordering::SeqCst), 0);
        assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
    }

    /// Dropped before its end (the walk was cancelled): given up, nothing left behind.
    #[test]
    fn a_stream_dropped_before_its_end_is_given_up() {
        let dir = tempfile::tempdir().unwrap();
        let db = big_db(100);
        let mut snap = db.begin_file_snapshot();
        let outcome = Arc::new(std::sync::Mutex::new(None));
        let seen = outcome.clone();
        let stream = SnapshotWriter::new(dir.path().to_path_buf())
            .stream(
                snap.last_zxid,
                &snap.sessions,
                &snap.walk.acl_table(),
                Duration::ZERO,
                move |res: Result<PathBuf>, given_up| {
                    *seen.lock().unwrap() = Some((res.is_ok(), given_up));
                },
            )
            .unwrap();
        let mut piece = BytesMut::new();
        snap.walk.step(&db.tree, &mut piece, 1024);
        let pending = Arc::new(AtomicUsize::new(0));
        stream.nodes(piece.freeze(), PieceGuard::new(&pending));
        drop(stream);
        assert_eq!(*outcome.lock().unwrap(), Some((false, true)));
        assert_eq!(pending.load(Ordering::SeqCst), 0);
        assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
    }
}
