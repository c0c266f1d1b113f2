//! Durable file-system steps shared by the log, snapshots and epoch files.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use crate::error::{Result, ServerError};

/// Fsyncs a directory so that files created, renamed or removed in it survive a crash.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| ServerError::io(format!("fsync directory {}", dir.display()), e))
}

/// Creates `dir` and its parents.
pub fn create_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| ServerError::io(format!("create directory {}", dir.display()), e))
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory is written,
/// fsynced and renamed over `path`, then the directory is fsynced.
pub fn write_atomic(path: &Path, tmp: &Path, bytes: &[u8]) -> Result<()> {
    let ctx = |what: &str| format!("{what} {}", tmp.display());
    let mut f = File::create(tmp).map_err(|e| ServerError::io(ctx("create"), e))?;
    if let Some(e) = super::fault::write_fault(tmp) {
        drop(f);
        let _ = std::fs::remove_file(tmp);
        return Err(ServerError::io(ctx("write"), e));
    }
    f.write_all(bytes)
        .map_err(|e| ServerError::io(ctx("write"), e))?;
    f.sync_all().map_err(|e| ServerError::io(ctx("fsync"), e))?;
    drop(f);
    rename_durably(tmp, path)
}

/// Renames `from` to `to` and fsyncs the directory of `to`.
pub fn rename_durably(from: &Path, to: &Path) -> Result<()> {
    std::fs::rename(from, to).map_err(|e| {
        ServerError::io(format!("rename {} to {}", from.display(), to.display()), e)
    })?;
    match to.parent() {
        Some(dir) => sync_dir(dir),
        None => Ok(()),
    }
}

/// Removes a file; a file already gone is fine.
pub fn remove_file(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ServerError::io(format!("remove {}", path.display()), e)),
    }
}

/// Total size of the files in a directory tree (`dirs`, `conf`).
pub fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}
