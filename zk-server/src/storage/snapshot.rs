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
use std::sync::atomic::{AtomicU64, Ordering};
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
}

impl<W: Write> SealedWriter<W> {
    fn new(w: W) -> Self {
        SealedWriter {
            inner: BufWriter::with_capacity(1 << 16, w),
            sum: Adler32::new(),
        }
    }

    fn put(&mut self, b: &mut BytesMut) -> std::io::Result<()> {
        self.put_slice(b)?;
        b.clear();
        Ok(())
    }

    fn put_slice(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.sum.update(b);
        self.inner.write_all(b)
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
        self.write_file(snap.last_zxid, |f| snap.write_to(f))
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
        self.prepare_file(last_zxid, |f| {
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

    /// A snapshot written as its nodes come, a slice at a time (see
    /// [`crate::storage::snapshot_walk::SnapshotWalk`]): node records go to a scratch file, and
    /// [`SnapshotStream::finish`] writes the real file once the ACL cache the nodes refer
    /// to is known (it precedes the nodes in the format).
    pub fn stream(&self, last_zxid: i64) -> Result<SnapshotStream> {
        let body_path = self.tmp_path(last_zxid, ".nodes");
        // Read back by `finish`, so opened for both.
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&body_path)
            .map_err(|e| {
                ServerError::io(
                    format!("create snapshot scratch {}", body_path.display()),
                    e,
                )
            })?;
        Ok(SnapshotStream {
            writer: self.clone(),
            last_zxid,
            body: Some(BufWriter::with_capacity(1 << 16, f)),
            body_path,
        })
    }

    fn tmp_path(&self, zxid: i64, what: &str) -> PathBuf {
        self.dir.join(format!(
            ".{}.{}.{}{what}{TMP_SUFFIX}",
            snapshot_name(zxid),
            std::process::id(),
            self.counter.fetch_add(1, Ordering::Relaxed)
        ))
    }

    fn write_file(
        &self,
        last_zxid: i64,
        fill: impl FnOnce(&File) -> std::io::Result<()>,
    ) -> Result<PathBuf> {
        self.prepare_file(last_zxid, fill)?.commit()
    }

    fn prepare_file(
        &self,
        last_zxid: i64,
        fill: impl FnOnce(&File) -> std::io::Result<()>,
    ) -> Result<PreparedSnapshot> {
        if last_zxid < 0 {
            // Apache could not parse the file name (and would ignore the snapshot).
            return Err(ServerError::Storage(format!(
                "snapshot zxid {last_zxid} is negative"
            )));
        }
        let path = self.dir.join(snapshot_name(last_zxid));
        let tmp = self.tmp_path(last_zxid, "");
        let res = (|| {
            let f = File::create(&tmp)?;
            if let Some(e) = super::fault::write_fault(&tmp) {
                // A filesystem out of blocks: part of the file, then the error.
                (&f).write_all(&[0x5a; 4096])?;
                return Err(e);
            }
            fill(&f)?;
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

/// Bytes of a streamed snapshot copied into its file between two syncs of it: many small
/// flushes rather than one of the whole file at the end, which would hold the txn log's
/// syncs up behind gigabytes of writeback.
const FINISH_SYNC_BYTES: usize = 32 << 20;

/// A snapshot being written from a stream of node records; dropping it unfinished leaves
/// no snapshot behind.
#[derive(Debug)]
pub struct SnapshotStream {
    writer: SnapshotWriter,
    last_zxid: i64,
    body: Option<BufWriter<File>>,
    body_path: PathBuf,
}

impl SnapshotStream {
    /// Appends node records (`ustring path; DataNode`), parents before children.
    pub fn nodes(&mut self, records: &[u8]) -> Result<()> {
        let body = self
            .body
            .as_mut()
            .ok_or_else(|| ServerError::Storage("snapshot stream already finished".into()))?;
        let ctx = || format!("write snapshot scratch {}", self.body_path.display());
        if let Some(e) = super::fault::write_fault(&self.body_path) {
            return Err(ServerError::io(ctx(), e));
        }
        body.write_all(records)
            .map_err(|e| ServerError::io(ctx(), e))
    }

    /// Writes the snapshot file: header with `sessions` and `acls`, the nodes, the seals.
    pub fn finish(self, sessions: &[(i64, i32)], acls: &[(i64, Vec<Acl>)]) -> Result<PathBuf> {
        self.finish_unless(sessions, acls, &std::sync::atomic::AtomicBool::new(false))
    }

    /// [`SnapshotStream::finish`], given up (nothing published, the partial file removed)
    /// if `cancel` is set before the nodes are all copied.
    pub fn finish_unless(
        mut self,
        sessions: &[(i64, i32)],
        acls: &[(i64, Vec<Acl>)],
        cancel: &std::sync::atomic::AtomicBool,
    ) -> Result<PathBuf> {
        use std::io::{Read, Seek};
        let body = self
            .body
            .take()
            .ok_or_else(|| ServerError::Storage("snapshot stream already finished".into()))?;
        let mut body = body
            .into_inner()
            .map_err(|e| ServerError::io("flush snapshot scratch", e.into_error()))?;
        body.seek(std::io::SeekFrom::Start(0))
            .map_err(|e| ServerError::io("rewind snapshot scratch", e))?;
        self.writer.write_file(self.last_zxid, |f| {
            let mut out = SealedWriter::new(f);
            let mut b = BytesMut::new();
            write_head(&mut b, sessions, acls)?;
            out.put(&mut b)?;
            let mut chunk = vec![0u8; 1 << 20];
            let mut unsynced = 0;
            loop {
                if cancel.load(Ordering::Relaxed) {
                    return Err(std::io::Error::other("abandoned"));
                }
                let n = body.read(&mut chunk)?;
                if n == 0 {
                    break;
                }
                out.put_slice(&chunk[..n])?;
                unsynced += n;
                if unsynced >= FINISH_SYNC_BYTES {
                    f.sync_data()?;
                    unsynced = 0;
                }
            }
            write_tail(out)
        })
    }
}

impl Drop for SnapshotStream {
    fn drop(&mut self) {
        self.body = None;
        let _ = remove_file(&self.body_path);
    }
}

/// Ending of snapshots being written; such files start with '.' so Apache ignores them.
pub const TMP_SUFFIX: &str = ".tmp";

/// Reads and fully validates the snapshot at `path`, keeping it whole (see
/// [`load_snapshot`] to build something else from it as it is read).
pub fn read_snapshot(path: &Path, file_zxid: i64) -> Result<SnapshotData> {
    load_snapshot(path, file_zxid, SnapshotCollector::default())
}
