//! Disk faults injected by tests: txn log fdatasyncs under a directory fail with an
//! errno, as a dying disk's would, so a test can watch what the server does about it
//! (crash-stop: no write acknowledged that is not durable). Reached through
//! [`crate::testkit::fail_txn_log_syncs_under`]; without a registered fault the check
//! costs one atomic load per sync.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

static ANY: AtomicBool = AtomicBool::new(false);
static FAULTS: Mutex<Vec<(PathBuf, i32)>> = Mutex::new(Vec::new());

/// From now on, in this process, every fdatasync of a txn log file under `dir` fails
/// with `errno` (e.g. `libc::EIO`, 5).
pub fn fail_syncs_under(dir: &Path, errno: i32) {
    let mut f = FAULTS.lock().unwrap_or_else(|e| e.into_inner());
    f.push((dir.to_path_buf(), errno));
    ANY.store(true, Ordering::SeqCst);
}

/// Removes the faults registered for `dir`.
pub fn clear_under(dir: &Path) {
    let mut f = FAULTS.lock().unwrap_or_else(|e| e.into_inner());
    f.retain(|(d, _)| d != dir);
    ANY.store(!f.is_empty(), Ordering::SeqCst);
}

/// The injected error for a sync of `file`, if a fault covers it.
pub fn sync_fault(file: &Path) -> Option<std::io::Error> {
    if !ANY.load(Ordering::Relaxed) {
        return None;
    }
    let f = FAULTS.lock().unwrap_or_else(|e| e.into_inner());
    f.iter()
        .find(|(d, _)| file.starts_with(d))
        .map(|(_, errno)| std::io::Error::from_raw_os_error(*errno))
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
    }
}
