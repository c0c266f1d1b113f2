//! The txn log in Apache's `FileTxnLog` format: writing with group commit and
//! preallocation, and reading back the valid prefix of a file.
//!
//! File: `FileHeader{"ZKLG", 2, 0}`, then entries
//! `long adler32(txn) | int len | txn bytes | byte 'B'`, then zeros (preallocated space).
//! A zero length, zero padding or the end of the file ends the log.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use bytes::{BufMut, Bytes, BytesMut};
use zk_proto::persistence::{FileHeader, FILE_VERSION, LOG_ENTRY_END, TXNLOG_MAGIC};
use zk_proto::txn::TxnEntry;
use zk_proto::Record;

use super::adler32::adler32;
use super::file_names::{log_name, CORRUPT_PREFIX};
use super::fs_util::{remove_file, sync_dir};
use crate::error::{Result, ServerError};

/// How the context of a failed txn log write starts (a failed sync's says "fsync").
const WRITE_CONTEXT: &str = "write txn log";

/// Bytes of the file header.
pub const HEADER_LEN: u64 = 16;
/// Bytes around each entry's txn bytes: checksum, length and the 'B'.
const ENTRY_OVERHEAD: u64 = 8 + 4 + 1;
/// Apache grows the file again once a write comes within this many bytes of its end.
const PREALLOC_SLACK: u64 = 4096;

/// Appends one framed entry (checksum, length, txn bytes, 'B') to `out`.
pub fn encode_entry(entry: &TxnEntry, out: &mut BytesMut) -> Result<()> {
    let mut body = BytesMut::new();
    entry.write(&mut body);
    frame(entry.header.zxid, &body, out)
}

/// Bytes of a serialized `TxnHeader` (client id, cxid, zxid, time, type).
const TXN_HEADER_LEN: usize = 8 + 4 + 8 + 8 + 4;
/// Where the zxid sits in a serialized `TxnHeader`.
const HEADER_ZXID_AT: usize = 8 + 4;

/// Frames `body`, the serialized txn `zxid`, as one log entry (checksum, length, the
/// bytes, 'B') onto `out`.
fn frame(zxid: i64, body: &[u8], out: &mut BytesMut) -> Result<()> {
    let len = i32::try_from(body.len()).map_err(|_| {
        ServerError::Storage(format!(
            "txn {zxid:#x} is {} bytes, too large to log",
            body.len()
        ))
    })?;
    out.reserve(body.len() + ENTRY_OVERHEAD as usize);
    out.put_i64(i64::from(adler32(body)));
    out.put_i32(len);
    out.put_slice(body);
    out.put_u8(LOG_ENTRY_END);
    Ok(())
}

/// Frames `body`, txn `zxid` serialized as [`TxnEntry::write`] does (a proposal's
/// bytes), without decoding it: only its header is checked to name `zxid`, so a log
/// entry can never claim another zxid than the one the log orders it by.
pub fn frame_encoded(zxid: i64, body: &[u8], out: &mut BytesMut) -> Result<()> {
    let named = body
        .get(HEADER_ZXID_AT..HEADER_ZXID_AT + 8)
        .filter(|_| body.len() >= TXN_HEADER_LEN)
        .map(|b| i64::from_be_bytes(b.try_into().unwrap_or_default()));
    if named != Some(zxid) {
        return Err(ServerError::Storage(format!(
            "txn {zxid:#x} not logged: its {} bytes do not start with a txn header for \
             that zxid (header names {})",
            body.len(),
            named.map_or("none".to_string(), |z| format!("{z:#x}"))
        )));
    }
    frame(zxid, body, out)
}

/// Counts of the syncs the log writer issued; group commit means one `log_syncs` per
/// [`super::Storage::append`] call, whatever the batch size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncStats {
    /// fdatasync calls on txn log files.
    pub log_syncs: u64,
    /// fsync calls on the log directory (one per new log file).
    pub dir_syncs: u64,
    /// How long the latest fdatasync took, ms (`fsynctime` in `mntr`).
    pub last_sync_ms: u64,
}

/// The file being appended to.
#[derive(Debug)]
struct OpenLog {
    file: File,
    path: PathBuf,
    /// Where the next entry goes.
    pos: u64,
    /// Current file length including preallocated zeros.
    allocated: u64,
}

/// Appends entries to the newest log file, starting a new file after [`LogWriter::roll`].
#[derive(Debug)]
pub struct LogWriter {
    dir: PathBuf,
    prealloc: u64,
    current: Option<OpenLog>,
    stats: SyncStats,
    /// Set after a failed write or sync: the file's state is unknown, so nothing more may be
    /// appended (Linux may drop dirty pages after a failed fsync).
    failed: Option<String>,
    /// A sync slower than this is logged (`fsync.warningthresholdms`, 1000 ms).
    fsync_warning: std::time::Duration,
}

impl LogWriter {
    /// A writer for `dir` (a `version-2` directory). The first append creates a new file, as
    /// Apache does after a restart, so existing files are never appended to.
    pub fn new(dir: PathBuf, prealloc: u64) -> Self {
        LogWriter {
            dir,
            prealloc,
            current: None,
            stats: SyncStats::default(),
            failed: None,
            fsync_warning: std::time::Duration::from_millis(1000),
        }
    }

    /// Sets how long a sync may take before it is logged as slow
    /// (`zookeeper.fsync.warningthresholdms`).
    pub fn set_fsync_warning(&mut self, threshold: std::time::Duration) {
        self.fsync_warning = threshold;
    }

    /// Sync counters.
    pub fn stats(&self) -> SyncStats {
        self.stats
    }

    /// Closes the current file; the next append starts `log.<its first zxid>`.
    pub fn roll(&mut self) {
        self.current = None;
    }

    /// Writes every entry with one write and one fdatasync. Durable on return.
    pub fn append(&mut self, entries: &[TxnEntry]) -> Result<()> {
        let first = entries.first().map(|e| e.header.zxid);
        self.append_framed(first, entries.len(), |buf, starts| {
            for e in entries {
                starts.push(buf.len() as u64);
                encode_entry(e, buf)?;
            }
            Ok(())
        })
    }

    /// [`LogWriter::append`] of txns already serialized (`(zxid, bytes)`, as proposals
    /// carry them): the bytes are framed as they are, not decoded and encoded again.
    pub fn append_encoded(&mut self, txns: &[(i64, &[u8])]) -> Result<()> {
        let first = txns.first().map(|t| t.0);
        self.append_framed(first, txns.len(), |buf, starts| {
            for (zxid, body) in txns {
                starts.push(buf.len() as u64);
                frame_encoded(*zxid, body, buf)?;
            }
            Ok(())
        })
    }

    /// One write + fdatasync of the `count` entries `fill` frames (pushing where each
    /// starts), after the file header when a new file begins with `first_zxid`.
    fn append_framed(
        &mut self,
        first_zxid: Option<i64>,
        count: usize,
        fill: impl FnOnce(&mut BytesMut, &mut Vec<u64>) -> Result<()>,
    ) -> Result<()> {
        if let Some(why) = &self.failed {
            return Err(ServerError::Storage(format!(
                "txn log unusable after an earlier failure ({why}); restart to recover"
            )));
        }
        let Some(first) = first_zxid else {
            return Ok(());
        };
        let mut buf = BytesMut::new();
        let new_file = self.current.is_none();
        if new_file {
            FileHeader {
                magic: TXNLOG_MAGIC,
                version: FILE_VERSION,
                dbid: 0,
            }
            .write(&mut buf);
        }
        // Entry boundaries, so preallocation grows exactly where Apache's would. A txn
        // that cannot be framed fails the batch before anything is written.
        let mut starts = Vec::with_capacity(count);
        fill(&mut buf, &mut starts)?;
        let res = self.write_and_sync(first, &buf, &starts);
        match &res {
            Ok(()) => {}
            // The disk is full: nothing of the batch is in the file any more (see
            // `roll_back`), so the same txns can be written again once space returns.
            Err(ServerError::Io { context, source })
                if context.starts_with(WRITE_CONTEXT) && super::fault::is_no_space(source) =>
            {
                if let Err(e) = self.roll_back() {
                    self.failed = Some(e.to_string());
                    self.current = None;
                }
            }
            Err(e) => {
                self.failed = Some(e.to_string());
                self.current = None;
            }
        }
        res
    }

    /// Undoes a write that failed for want of space: the file is cut back to the end of
    /// its last whole entry (a new file with no entry goes), so no partly written entry
    /// stays behind to be read as a torn record, and later appends continue right after
    /// the last good one. Shrinking a file needs no space.
    fn roll_back(&mut self) -> Result<()> {
        let Some(log) = self.current.as_mut() else {
            return Ok(());
        };
        if log.pos == 0 {
            let path = log.path.clone();
            self.current = None;
            return remove_file(&path);
        }
        log.file
            .set_len(log.pos)
            .map_err(|e| ServerError::io(format!("roll back txn log {}", log.path.display()), e))?;
        log.allocated = log.pos;
        tracing::debug!(
            "txn log {} cut back to its last whole entry at offset {} after a write that \
             found no space",
            log.path.display(),
            log.pos
        );
        Ok(())
    }

    fn write_and_sync(&mut self, first_zxid: i64, buf: &[u8], starts: &[u64]) -> Result<()> {
        if self.current.is_none() {
            let path = self.dir.join(log_name(first_zxid));
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
                .map_err(|e| ServerError::io(format!("create txn log {}", path.display()), e))?;
            tracing::info!("creating new txn log {}", path.display());
            super::fault::created(&path);
            self.current = Some(OpenLog {
                file,
                path,
                pos: 0,
                allocated: 0,
            });
        }
        let Some(log) = self.current.as_mut() else {
            return Err(ServerError::Storage("no open txn log".into()));
        };
        let end = log.pos + buf.len() as u64;
        // Apache pads before each entry, from the position the entry starts at; its
        // starting size is the header's length.
        let mut wanted = log.allocated.max(HEADER_LEN);
        for &start in starts {
            wanted = padded_size(log.pos + start, wanted, self.prealloc);
        }
        wanted = wanted.max(end);
        let write_err = |e| ServerError::io(format!("{WRITE_CONTEXT} {}", log.path.display()), e);
        if wanted != log.allocated {
            log.file.set_len(wanted).map_err(write_err)?;
            log.allocated = wanted;
        }
        if let Some(e) = super::fault::write_fault(&log.path) {
            // What a filesystem running out of blocks mid-write leaves: part of the bytes.
            let _ = log.file.write_all_at(&buf[..buf.len() / 2], log.pos);
            return Err(write_err(e));
        }
        log.file.write_all_at(buf, log.pos).map_err(write_err)?;
        let started = std::time::Instant::now();
        super::fault::sync_fault(&log.path)
            .map_or_else(|| log.file.sync_data(), Err)
            .map_err(|e| ServerError::io(format!("fsync txn log {}", log.path.display()), e))?;
        let took = started.elapsed();
        if took > self.fsync_warning {
            // Apache's warning: every write waits for this sync.
            tracing::warn!(
                "fsync of txn log {} took {} ms (threshold {} ms), which slows every write; \
                 file size {} bytes",
                log.path.display(),
                took.as_millis(),
                self.fsync_warning.as_millis(),
                log.allocated
            );
        }
        self.stats.log_syncs += 1;
        self.stats.last_sync_ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
        let created = log.pos == 0;
        log.pos = end;
        if created {
            sync_dir(&self.dir)?;
            self.stats.dir_syncs += 1;
        }
        super::fault::synced(&log.path, end, created);
        Ok(())
    }
}

/// The file size before writing an entry at `pos`, as Apache's
/// `FilePadding.calculateFileSizeWithPadding` computes it: grow by a preallocation chunk
/// once the position comes within 4 KiB of the end.
pub fn padded_size(pos: u64, allocated: u64, prealloc: u64) -> u64 {
    if prealloc == 0 || pos + PREALLOC_SLACK < allocated {
        return allocated;
    }
    if pos > allocated {
        let size = pos + prealloc;
        size - size % prealloc
    } else {
        allocated + prealloc
    }
}

/// One entry read back from a log file.
#[derive(Debug, Clone)]
pub struct LoggedTxn {
    /// The decoded txn.
    pub entry: TxnEntry,
    /// Offset just past the entry's 'B'.
    pub end: u64,
}

/// Where and why a file stops being a valid log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// First offset that is not part of the valid prefix.
    pub offset: u64,
    /// What was found there.
    pub reason: String,
}

/// The valid prefix of one log file.
#[derive(Debug)]
pub struct LogScan {
    /// Valid entries in file order.
    pub entries: Vec<LoggedTxn>,
    /// Offset just past the last valid entry (or the header).
    pub valid_end: u64,
    /// Set when bytes other than zero padding follow the valid prefix: a torn or corrupt
    /// write that must not be loaded.
    pub damage: Option<Damage>,
}

/// Reads `n` bytes or as many as the file has left.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Reads the valid prefix of a log file. With `check_tail`, the bytes after a clean end
/// are checked to be zeros (what a crash mid-write leaves behind is reported as damage).
///
/// Fails (without touching the file) on a foreign header, or on an entry whose checksum
/// and end marker are intact but which does not decode: that is no torn write, and
/// truncating it could throw away committed txns.
pub fn scan(path: &Path, check_tail: bool) -> Result<LogScan> {
    let mut entries = Vec::new();
    let mut out = scan_each(path, check_tail, |t| entries.push(t))?;
    out.entries = entries;
    Ok(out)
}

/// [`scan`], handing each valid entry to `on_entry` as it is read instead of keeping it
/// (the returned [`LogScan::entries`] is empty), so a restart can replay a long log
/// without holding all of it.
pub fn scan_each(
    path: &Path,
    check_tail: bool,
    mut on_entry: impl FnMut(LoggedTxn),
) -> Result<LogScan> {
    let ctx = |what: &str| format!("{what} txn log {}", path.display());
    let file = File::open(path).map_err(|e| ServerError::io(ctx("open"), e))?;
    let file_len = file
        .metadata()
        .map_err(|e| ServerError::io(ctx("stat"), e))?
        .len();
    let mut r = BufReader::with_capacity(1 << 16, file);
    let mut out = LogScan {
        entries: Vec::new(),
        valid_end: 0,
        damage: None,
    };
    let mut header = [0u8; HEADER_LEN as usize];
    let got = read_up_to(&mut r, &mut header).map_err(|e| ServerError::io(ctx("read"), e))?;
    let hdr = FileHeader::decode(Bytes::copy_from_slice(&header[..got]));
    match hdr {
        Ok(h) if h.magic == TXNLOG_MAGIC && h.version == FILE_VERSION => {}
        Ok(h) if h.magic != 0 || h.version != 0 => {
            return Err(ServerError::Corrupt {
                file: path.to_owned(),
                reason: format!(
                    "not a version-{FILE_VERSION} txn log (magic {:#x}, version {})",
                    h.magic, h.version
                ),
            })
        }
        _ => {
            // A header never made it to disk: the file was created right before a crash.
            out.damage = Some(Damage {
                offset: 0,
                reason: "missing file header".into(),
            });
            return Ok(out);
        }
    }
    let mut pos = HEADER_LEN;
    out.valid_end = pos;
    loop {
        let mut head = [0u8; 12];
        let got = read_up_to(&mut r, &mut head).map_err(|e| ServerError::io(ctx("read"), e))?;
        if got < head.len() {
            if head[..got].iter().any(|&b| b != 0) {
                out.damage = Some(Damage {
                    offset: pos,
                    reason: "truncated entry header".into(),
                });
            }
            return Ok(out);
        }
        let crc = i64::from_be_bytes([
            head[0], head[1], head[2], head[3], head[4], head[5], head[6], head[7],
        ]);
        let len = i32::from_be_bytes([head[8], head[9], head[10], head[11]]);
        if len == 0 {
            // Apache's end of log. Anything but zeros after it is a torn write.
            if check_tail {
                if crc != 0 {
                    out.damage = Some(Damage {
                        offset: pos,
                        reason: "zero-length entry with a checksum".into(),
                    });
                } else if let Some(at) =
                    first_non_zero(&mut r, pos + 12).map_err(|e| ServerError::io(ctx("read"), e))?
                {
                    out.damage = Some(Damage {
                        offset: pos,
                        reason: format!("non-zero bytes at offset {at} after the end of the log"),
                    });
                }
            }
            return Ok(out);
        }
        let left = file_len.saturating_sub(pos + 12);
        if len < 0 || u64::from(len.unsigned_abs()) + 1 > left {
            out.damage = Some(Damage {
                offset: pos,
                reason: format!("entry length {len} does not fit the {left} bytes left"),
            });
            return Ok(out);
        }
        let n = len.unsigned_abs() as usize;
        let mut body = vec![0u8; n + 1];
        let got = read_up_to(&mut r, &mut body).map_err(|e| ServerError::io(ctx("read"), e))?;
        if got < body.len() {
            out.damage = Some(Damage {
                offset: pos,
                reason: "truncated entry".into(),
            });
            return Ok(out);
        }
        if body.pop() != Some(LOG_ENTRY_END) {
            out.damage = Some(Damage {
                offset: pos,
                reason: "entry lacks its end marker 'B'".into(),
            });
            return Ok(out);
        }
        if i64::from(adler32(&body)) != crc {
            out.damage = Some(Damage {
                offset: pos,
                reason: "checksum mismatch".into(),
            });
            return Ok(out);
        }
        let entry = TxnEntry::decode(Bytes::from(body)).map_err(|e| ServerError::Corrupt {
            file: path.to_owned(),
            reason: format!("entry at offset {pos} has a valid checksum but does not decode: {e}"),
        })?;
        pos += ENTRY_OVERHEAD + n as u64;
        out.valid_end = pos;
        on_entry(LoggedTxn { entry, end: pos });
    }
}

/// Offset of the first non-zero byte read from `r` (which is at offset `start`).
fn first_non_zero(r: &mut impl Read, start: u64) -> std::io::Result<Option<u64>> {
    let mut buf = vec![0u8; 1 << 16];
    let mut off = start;
    loop {
        let n = read_up_to(r, &mut buf)?;
        if n == 0 {
            return Ok(None);
        }
        if let Some(i) = buf[..n].iter().position(|&b| b != 0) {
            return Ok(Some(off + i as u64));
        }
        off += n as u64;
    }
}

/// Cuts a damaged file back to its valid prefix. The cut-off bytes (up to the last
/// non-zero one) are first saved next to it as `corrupt.<file name>.<offset>`, so a bad
/// entry in the middle of a log loses nothing for good. A file left without entries is
/// removed. Returns true when the file was removed.
pub fn repair(path: &Path, scan: &LogScan) -> Result<bool> {
    let Some(damage) = &scan.damage else {
        return Ok(false);
    };
    let ctx = |what: &str| format!("{what} txn log {}", path.display());
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| ServerError::io(ctx("open"), e))?;
    let len = file
        .metadata()
        .map_err(|e| ServerError::io(ctx("stat"), e))?
        .len();
    let mut rest = Vec::new();
    {
        let mut r = BufReader::new(&file);
        std::io::Seek::seek(&mut r, std::io::SeekFrom::Start(damage.offset))
            .map_err(|e| ServerError::io(ctx("seek"), e))?;
        // The damaged region is what precedes the zero padding; bounded by the file size.
        let mut chunk = vec![0u8; 1 << 16];
        let mut pending_zeros = 0usize;
        loop {
            let n = read_up_to(&mut r, &mut chunk).map_err(|e| ServerError::io(ctx("read"), e))?;
            if n == 0 {
                break;
            }
            for &b in &chunk[..n] {
                if b == 0 {
                    pending_zeros += 1;
                } else {
                    rest.resize(rest.len() + pending_zeros, 0);
                    pending_zeros = 0;
                    rest.push(b);
                }
            }
        }
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("log");
    if !rest.is_empty() {
        let keep = dir.join(format!("{CORRUPT_PREFIX}.{name}.{}", damage.offset));
        std::fs::write(&keep, &rest)
            .and_then(|()| File::open(&keep)?.sync_all())
            .map_err(|e| ServerError::io(format!("save damaged bytes to {}", keep.display()), e))?;
        tracing::warn!(
            file = %path.display(),
            offset = damage.offset,
            reason = %damage.reason,
            bytes = rest.len(),
            saved = %keep.display(),
            "txn log damaged: truncating to the last valid entry"
        );
    } else {
        tracing::warn!(
            file = %path.display(),
            offset = damage.offset,
            reason = %damage.reason,
            "txn log damaged: truncating to the last valid entry"
        );
    }
    // No valid entry (also after a scan_each, which keeps none).
    let removed = if scan.valid_end <= HEADER_LEN {
        drop(file);
        remove_file(path)?;
        true
    } else {
        file.set_len(damage.offset.min(len))
            .and_then(|()| file.sync_all())
            .map_err(|e| ServerError::io(ctx("truncate"), e))?;
        super::fault::synced(path, damage.offset.min(len), true);
        false
    };
    sync_dir(dir)?;
    Ok(removed)
}

/// Truncates `path` right after the entry ending at `end` (used by TRUNC), or removes the
/// file when `end` is at or before the header.
pub fn cut(path: &Path, end: u64) -> Result<()> {
    if end <= HEADER_LEN {
        return remove_file(path);
    }
    OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| {
            f.set_len(end)?;
            f.sync_all()
        })
        .map_err(|e| ServerError::io(format!("truncate txn log {}", path.display()), e))?;
    super::fault::synced(path, end, true);
    Ok(())
}
