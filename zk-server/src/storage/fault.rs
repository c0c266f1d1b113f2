//! Disk faults injected by tests, so a test can watch what the server does about them:
//!
//! - failing fdatasyncs of txn logs under a directory, as a dying disk's (crash-stop: no
//!   write acknowledged that is not durable; [`fail_syncs_under`]);
//! - a full disk: txn log and snapshot writes under a directory fail with `ENOSPC` after
//!   writing part of their bytes, as a filesystem running out of blocks mid-write does,
//!   until the space returns ([`fail_writes_under`], [`clear_writes_under`]);
//! - power loss: which length of each txn log and snapshot file under a tracked directory
//!   was made durable (fsync of the data, and of the directory for a new file), so a test
//!   can cut every file back to it, optionally with garbage after it as torn pages
//!   ([`track_durability_under`], [`power_loss`]).
//!
//! Reached through `crate::testkit`. Without a registered fault each check costs one
//! atomic load.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

static ANY: AtomicBool = AtomicBool::new(false);
static FAULTS: Mutex<Vec<(PathBuf, i32)>> = Mutex::new(Vec::new());
static ANY_WRITE: AtomicBool = AtomicBool::new(false);
static WRITE_FAULTS: Mutex<Vec<(PathBuf, i32)>> = Mutex::new(Vec::new());
static TRACKING: AtomicBool = AtomicBool::new(false);
static DURABLE: Mutex<Option<Journal>> = Mutex::new(None);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// From now on, in this process, every fdatasync of a txn log file under `dir` fails
/// with `errno` (e.g. `libc::EIO`, 5).
pub fn fail_syncs_under(dir: &Path, errno: i32) {
    let mut f = lock(&FAULTS);
    f.push((dir.to_path_buf(), errno));
    ANY.store(true, Ordering::SeqCst);
}

/// Removes the sync faults registered for `dir`.
pub fn clear_under(dir: &Path) {
    let mut f = lock(&FAULTS);
    f.retain(|(d, _)| d != dir);
    ANY.store(!f.is_empty(), Ordering::SeqCst);
}

/// The injected error for a sync of `file`, if a fault covers it.
pub fn sync_fault(file: &Path) -> Option<std::io::Error> {
    if !ANY.load(Ordering::Relaxed) {
        return None;
    }
    let f = lock(&FAULTS);
    f.iter()
        .find(|(d, _)| file.starts_with(d))
        .map(|(_, errno)| std::io::Error::from_raw_os_error(*errno))
}

/// From now on every txn log and snapshot write under `dir` fails with `errno` (28,
/// `ENOSPC`, for a full disk) after writing about half of its bytes.
pub fn fail_writes_under(dir: &Path, errno: i32) {
    let mut f = lock(&WRITE_FAULTS);
    f.push((dir.to_path_buf(), errno));
    ANY_WRITE.store(true, Ordering::SeqCst);
}

/// Ends the write faults registered for `dir` (the space returns).
pub fn clear_writes_under(dir: &Path) {
    let mut f = lock(&WRITE_FAULTS);
    f.retain(|(d, _)| d != dir);
    ANY_WRITE.store(!f.is_empty(), Ordering::SeqCst);
}

/// The injected error for a write to `file`, if a fault covers it: the writer writes
/// part of its bytes, then fails with it.
pub fn write_fault(file: &Path) -> Option<std::io::Error> {
    if !ANY_WRITE.load(Ordering::Relaxed) {
        return None;
    }
    let f = lock(&WRITE_FAULTS);
    f.iter()
        .find(|(d, _)| file.starts_with(d))
        .map(|(_, errno)| std::io::Error::from_raw_os_error(*errno))
}

/// Whether an error means the filesystem is out of space (`ENOSPC`, or a quota's
/// `EDQUOT`): a condition that ends when space returns, unlike a failing device.
pub fn is_no_space(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(28) | Some(122))
}

/// What is durable of the files under the tracked directories.
#[derive(Debug, Default)]
struct Journal {
    dirs: Vec<PathBuf>,
    /// Per file: bytes whose data was synced, and whether its directory entry was.
    files: HashMap<PathBuf, (u64, bool)>,
}

impl Journal {
    fn covers(&self, file: &Path) -> bool {
        self.dirs.iter().any(|d| file.starts_with(d))
    }
}

/// From now on, records which length of each txn log and snapshot file under `dir` is
/// durable, for [`power_loss`].
pub fn track_durability_under(dir: &Path) {
    let mut j = lock(&DURABLE);
    j.get_or_insert_with(Journal::default)
        .dirs
        .push(dir.to_path_buf());
    TRACKING.store(true, Ordering::SeqCst);
}

/// Records a file just created: its name is not durable until its directory is synced.
pub fn created(file: &Path) {
    if !TRACKING.load(Ordering::Relaxed) {
        return;
    }
    if let Some(j) = lock(&DURABLE).as_mut().filter(|j| j.covers(file)) {
        j.files.insert(file.to_path_buf(), (0, false));
    }
}

/// Records that the first `len` bytes of `file` are durable (an fdatasync returned), and
/// with `named`, its directory entry too (the directory was synced after it was created
/// or renamed into place).
pub fn synced(file: &Path, len: u64, named: bool) {
    if !TRACKING.load(Ordering::Relaxed) {
        return;
    }
    if let Some(j) = lock(&DURABLE).as_mut().filter(|j| j.covers(file)) {
        let e = j.files.entry(file.to_path_buf()).or_insert((0, false));
        e.0 = len;
        e.1 |= named;
    }
}

/// What [`power_loss`] did to the files under a directory.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PowerLoss {
    /// Files whose name was never made durable, deleted.
    pub deleted: Vec<PathBuf>,
    /// Files cut back to their durable length: (file, bytes dropped).
    pub cut: Vec<(PathBuf, u64)>,
    /// Bytes of garbage written after the durable length (torn pages).
    pub garbage: u64,
}

/// A power loss under `dir`: every tracked txn log and snapshot file loses what was not
/// made durable: a file whose name never was is deleted, the others are cut to their
/// durable length; with `torn_pages`, up to a page of pseudo-random bytes (from `seed`)
/// follows that length where the file extended beyond it, as a half-written page would.
/// Files never written while tracked are left alone. Stop the servers using `dir` first.
pub fn power_loss(dir: &Path, torn_pages: bool, seed: u64) -> std::io::Result<PowerLoss> {
    use std::os::unix::fs::FileExt;
    let mut out = PowerLoss::default();
    let mut guard = lock(&DURABLE);
    let Some(j) = guard.as_mut() else {
        return Ok(out);
    };
    let mut rng = seed | 1;
    let mut next = move || {
        // xorshift64: reproducible garbage from the seed.
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut files: Vec<(PathBuf, (u64, bool))> = j
        .files
        .iter()
        .filter(|(p, _)| p.starts_with(dir))
        .map(|(p, v)| (p.clone(), *v))
        .collect();
    files.sort();
    for (path, (len, named)) in files {
        let Ok(meta) = std::fs::metadata(&path) else {
            j.files.remove(&path);
            continue;
        };
        if !named {
            std::fs::remove_file(&path)?;
            j.files.remove(&path);
            out.deleted.push(path);
            continue;
        }
        let cur = meta.len();
        if cur <= len {
            continue;
        }
        let f = std::fs::OpenOptions::new().write(true).open(&path)?;
        f.set_len(len)?;
        if torn_pages {
            let n = (cur - len).min(512 + next() % 3584);
            let junk: Vec<u8> = (0..n).map(|_| (next() >> 24) as u8).collect();
            f.write_all_at(&junk, len)?;
            out.garbage += n;
        }
        f.sync_all()?;
        out.cut.push((path, cur - len));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_cover_their_directory_only() {
        let dir = Path::new("/nonexistent/fault-test");
        assert!(sync_fault(&dir.join("log.1")).is_none());
        fail_syncs_under(dir, 5);
        let e = sync_fault(&dir.join("version-2/log.1")).expect("covered");
        assert_eq!(e.raw_os_error(), Some(5));
        assert!(sync_fault(Path::new("/nonexistent/other/log.1")).is_none());
        clear_under(dir);
        assert!(sync_fault(&dir.join("log.1")).is_none());

        fail_writes_under(dir, 28);
        let e = write_fault(&dir.join("version-2/snapshot.1")).expect("covered");
        assert!(is_no_space(&e));
        assert!(write_fault(Path::new("/nonexistent/other/log.1")).is_none());
        clear_writes_under(dir);
        assert!(write_fault(&dir.join("version-2/log.1")).is_none());
    }

    #[test]
    fn power_loss_keeps_only_what_was_made_durable() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        track_durability_under(d);
        let (named, unnamed, untracked) = (d.join("log.1"), d.join("log.2"), d.join("log.3"));
        std::fs::write(&named, [7u8; 100]).unwrap();
        created(&named);
        synced(&named, 40, true);
        std::fs::write(&unnamed, [7u8; 10]).unwrap();
        created(&unnamed);
        synced(&unnamed, 10, false);
        std::fs::write(&untracked, [7u8; 10]).unwrap();
        let lost = power_loss(d, true, 3).unwrap();
        assert_eq!(lost.deleted, vec![unnamed.clone()]);
        assert_eq!(lost.cut, vec![(named.clone(), 60)]);
        let bytes = std::fs::read(&named).unwrap();
        assert_eq!(&bytes[..40], &[7u8; 40][..]);
        assert_eq!(bytes.len() as u64, 40 + lost.garbage);
        assert!(lost.garbage > 0 && lost.garbage <= 60);
        assert!(!unnamed.exists());
        assert_eq!(std::fs::read(&untracked).unwrap().len(), 10);
    }
}
