//! Reading a snapshot file as a stream (format in [`super::snapshot`]): the file goes
//! through a window of bounded size, the Adler-32 seals are checked as the bytes go by, and
//! each node record is handed to a [`SnapshotSink`] as soon as it is decoded. A sink that
//! builds the data tree directly (`crate::storage::database_builder`) restarts a server with the
//! tree plus one window in memory, instead of the file, every decoded record and the tree.
//!
//! Every check of the whole-file decoder is kept: magic, counts bounded by the bytes left
//! before anything is allocated for them, both seals (the second one, after the digest
//! section of Apache 3.6+, only when present), nothing after the end. The pre-order of the
//! nodes is checked by the sink, which knows what it has kept so far.

use std::io::Read;
use std::path::Path;

use bytes::{Buf, Bytes, BytesMut};
use zk_proto::persistence::{DataNodeRecord, FileHeader, SNAP_MAGIC};
use zk_proto::{Acl, JuteReader, ProtoError, Record};

use super::adler32::Adler32;
use crate::error::{Result, ServerError};

/// Bytes read from the file at a time; a record larger than what is buffered makes the
/// window double until it fits (never past the end of the file).
const CHUNK: usize = 256 * 1024;
/// Path that ends the node list and the seals.
const END_PATH: &[u8] = b"/";
/// Most entries reserved up front for a list whose count comes from the file.
const MAX_RESERVE: usize = 4096;

/// Why [`SnapshotSink::node`] refused a node that is out of pre-order (the reader prefixes
/// the node's path and position).
pub const NOT_IN_PRE_ORDER: &str = "is not in pre-order (root \"\" first, parents before children)";

/// Receives a snapshot as it is read. A failed read drops the sink with whatever it has
/// built so far.
pub trait SnapshotSink {
    /// What a complete snapshot becomes.
    type Output;
    /// Sessions `(id, timeout)` and the ACL cache `(index, list)`, both before any node.
    fn begin(&mut self, sessions: Vec<(i64, i32)>, acls: Vec<(i64, Vec<Acl>)>);
    /// One node in file order; the root's path is `""`. `Err` refuses the file, with a
    /// reason such as [`NOT_IN_PRE_ORDER`].
    fn node(&mut self, path: &str, node: DataNodeRecord) -> std::result::Result<(), String>;
    /// Called once the whole file has been read and verified; `last_zxid` names the file.
    fn finish(self, last_zxid: i64) -> std::result::Result<Self::Output, String>;
}

/// Why a snapshot could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// Reading the source failed.
    Io(std::io::Error),
    /// The bytes are not a valid snapshot; the reason says where.
    Corrupt(String),
}

impl From<String> for ReadError {
    fn from(reason: String) -> Self {
        ReadError::Corrupt(reason)
    }
}

/// Reads and verifies a whole snapshot of `len` bytes from `src`, feeding `sink`.
pub fn read_snapshot_from<R: Read, S: SnapshotSink>(
    src: R,
    len: u64,
    file_zxid: i64,
    sink: S,
) -> std::result::Result<S::Output, ReadError> {
    read_counting(src, len, file_zxid, sink).map(|(out, _)| out)
}

/// Reads a database as a leader's SNAP stream carries it: a snapshot file's body (sessions,
/// ACL cache, nodes up to the `"/"` end marker) without the file header and seals. The
/// tree is built as the records are decoded, so a follower holds the received bytes and
/// the tree, never a decoded copy of every node.
pub fn read_snap_body<S: SnapshotSink>(
    body: &[u8],
    last_zxid: i64,
    sink: S,
) -> std::result::Result<S::Output, ReadError> {
    let mut r = SealedReader::new(body, body.len() as u64);
    let (sink, _) = read_tree(&mut r, sink)?;
    if !r.at_end() {
        return Err(format!("{} bytes after the end of the tree", r.left()).into());
    }
    Ok(sink.finish(last_zxid)?)
}

/// Sessions, ACL cache and node records up to the end marker, fed to `sink`; returns the
/// sink and the number of nodes.
fn read_tree<R: Read, S: SnapshotSink>(
    r: &mut SealedReader<R>,
    mut sink: S,
) -> std::result::Result<(S, u64), ReadError> {
    let n = r.count(12)?;
    let mut sessions = Vec::with_capacity(n.min(MAX_RESERVE));
    for _ in 0..n {
        sessions.push(r.record(|j| Ok((j.read_i64()?, j.read_i32()?)))?);
    }
    let n = r.count(12)?;
    let mut acls = Vec::with_capacity(n.min(MAX_RESERVE));
    for _ in 0..n {
        acls.push(r.record(|j| Ok((j.read_i64()?, j.read_vec::<Acl>()?)))?);
    }
    sink.begin(sessions, acls);
    let mut position = 0u64;
    loop {
        // A ustring has a buffer's encoding; read as one, the path is not copied.
        let item = r.record(|j| {
            let path = j.read_opt_buffer()?.unwrap_or_default();
            if path == END_PATH {
                return Ok(None);
            }
            Ok(Some((path, DataNodeRecord::read(j)?)))
        })?;
        let Some((path, node)) = item else { break };
        let path = std::str::from_utf8(&path).map_err(|_| ProtoError::InvalidUtf8.to_string())?;
        sink.node(path, node)
            .map_err(|why| format!("node {path:?} at position {position} {why}"))?;
        position += 1;
    }
    Ok((sink, position))
}

/// [`read_snapshot_from`], also returning the number of node records.
fn read_counting<R: Read, S: SnapshotSink>(
    src: R,
    len: u64,
    file_zxid: i64,
    sink: S,
) -> std::result::Result<(S::Output, u64), ReadError> {
    let mut r = SealedReader::new(src, len);
    let hdr = r.record(FileHeader::read)?;
    if hdr.magic != SNAP_MAGIC {
        return Err(format!("bad magic {:#x}", hdr.magic).into());
    }
    let (sink, position) = read_tree(&mut r, sink)?;
    r.seal()?;
    if !r.at_end() {
        // Digest section (Apache 3.6+): an older snapshot simply ends after the seal.
        r.record(|j| {
            j.read_i64()?; // zxid
            if j.read_i32()? < 2 {
                j.read_opt_string()?;
            } else {
                j.read_i64()?;
            }
            Ok(())
        })?;
        r.seal()?;
    }
    if !r.at_end() {
        return Err(format!("{} trailing bytes", r.left()).into());
    }
    Ok((sink.finish(file_zxid)?, position))
}

/// Reads and verifies the snapshot file at `path` into `sink`; a damaged file is
/// [`ServerError::Corrupt`] naming it.
pub fn load_snapshot<S: SnapshotSink>(path: &Path, file_zxid: i64, sink: S) -> Result<S::Output> {
    let io = |e| ServerError::io(format!("read snapshot {}", path.display()), e);
    let started = std::time::Instant::now();
    let f = std::fs::File::open(path).map_err(io)?;
    let len = f.metadata().map_err(io)?.len();
    let (out, nodes) = read_counting(f, len, file_zxid, sink).map_err(|e| match e {
        ReadError::Io(e) => io(e),
        ReadError::Corrupt(reason) => ServerError::Corrupt {
            file: path.to_owned(),
            reason,
        },
    })?;
    tracing::info!(
        file = %path.display(),
        nodes,
        bytes = len,
        ms = started.elapsed().as_millis() as u64,
        "loaded snapshot"
    );
    Ok(out)
}

/// A window over the source: records are decoded from the bytes read so far, and the
/// checksum covers every byte consumed.
struct SealedReader<R> {
    src: R,
    /// Read from the source, not yet consumed.
    window: Bytes,
    /// Bytes of the source not read yet.
    unread: u64,
    sum: Adler32,
}

impl<R: Read> SealedReader<R> {
    fn new(src: R, len: u64) -> Self {
        SealedReader {
            src,
            window: Bytes::new(),
            unread: len,
            sum: Adler32::new(),
        }
    }

    /// Bytes not consumed yet.
    fn left(&self) -> u64 {
        self.window.len() as u64 + self.unread
    }

    fn at_end(&self) -> bool {
        self.left() == 0
    }

    /// Decodes one record with `f`, reading more of the source while the record does not
    /// fit in the window. Node data in the result shares the window's memory.
    fn record<T>(
        &mut self,
        f: impl Fn(&mut JuteReader) -> std::result::Result<T, ProtoError>,
    ) -> std::result::Result<T, ReadError> {
        loop {
            let mut j = JuteReader::new(self.window.clone());
            let err = match f(&mut j) {
                Ok(v) => {
                    let used = self.window.len() - j.remaining();
                    self.sum.update(&self.window[..used]);
                    self.window.advance(used);
                    return Ok(v);
                }
                Err(e) => e,
            };
            let more = self.unread;
            let err = match err {
                ProtoError::Truncated { .. } if more > 0 => None,
                // Worth reading on only if the rest of the file could hold it.
                ProtoError::LengthTooLarge { len, remaining } => {
                    let fits = u64::try_from(len).is_ok_and(|l| l <= remaining as u64 + more);
                    if fits && more > 0 {
                        None
                    } else {
                        Some(ProtoError::LengthTooLarge {
                            len,
                            remaining: usize::try_from(remaining as u64 + more)
                                .unwrap_or(usize::MAX),
                        })
                    }
                }
                e => Some(e),
            };
            match err {
                None => self.grow()?,
                Some(e) => return Err(ReadError::Corrupt(e.to_string())),
            }
        }
    }

    /// Reads more of the source into the window: a chunk, or twice the window.
    fn grow(&mut self) -> std::result::Result<(), ReadError> {
        let have = self.window.len();
        let want = have.saturating_mul(2).max(CHUNK) - have;
        let add = usize::try_from(self.unread).map_or(want, |u| u.min(want));
        let mut buf = BytesMut::with_capacity(have + add);
        buf.extend_from_slice(&self.window);
        buf.resize(have + add, 0);
        let mut filled = have;
        while filled < buf.len() {
            match self.src.read(&mut buf[filled..]) {
                Ok(0) => {
                    return Err(ReadError::Corrupt(format!(
                        "file ended {} bytes early (shrank while read)",
                        self.unread
                    )))
                }
                Ok(n) => {
                    filled += n;
                    self.unread = self.unread.saturating_sub(n as u64);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ReadError::Io(e)),
            }
        }
        self.window = buf.freeze();
        Ok(())
    }

    /// A count checked against the bytes left, `min` bytes per element.
    fn count(&mut self, min: u64) -> std::result::Result<usize, ReadError> {
        let n = self.record(JuteReader::read_i32)?;
        let n = usize::try_from(n).map_err(|_| format!("negative count {n}"))?;
        if (n as u64).saturating_mul(min) > self.left() {
            return Err(format!("count {n} exceeds the bytes left").into());
        }
        Ok(n)
    }

    /// Reads a seal (`long checksum; ustring "/"`) and compares it with the checksum of
    /// every byte before it.
    fn seal(&mut self) -> std::result::Result<(), ReadError> {
        let expected = self.sum.value();
        let (val, path) = self.record(|j| Ok((j.read_i64()?, j.read_opt_buffer()?)))?;
        let path = path.unwrap_or_default();
        if path != END_PATH {
            return Err(format!(
                "seal ends with {:?} instead of \"/\"",
                String::from_utf8_lossy(&path)
            )
            .into());
        }
        if val != i64::from(expected) {
            return Err(
                format!("checksum mismatch: stored {val:#x}, computed {expected:#x}").into(),
            );
        }
        Ok(())
    }
}
