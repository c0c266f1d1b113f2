//! `acceptedEpoch` / `currentEpoch`: the ensemble's epoch files, as Apache's `QuorumPeer`
//! keeps them in `<dataDir>/version-2` (a decimal number, no newline, written atomically).

use std::path::{Path, PathBuf};

use super::file_names::version_dir;
use super::fs_util::{create_dir, write_atomic};
use crate::error::{Result, ServerError};

/// Which epoch file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpochFile {
    /// `acceptedEpoch`: the newest epoch this server acknowledged (LEADERINFO / NEWEPOCH).
    Accepted,
    /// `currentEpoch`: the epoch whose leader this server has synced with (NEWLEADER).
    Current,
}

impl EpochFile {
    /// The file name Apache uses.
    pub fn file_name(self) -> &'static str {
        match self {
            EpochFile::Accepted => "acceptedEpoch",
            EpochFile::Current => "currentEpoch",
        }
    }

    fn paths(self, data_dir: &Path) -> (PathBuf, PathBuf) {
        let dir = version_dir(data_dir);
        (
            dir.join(self.file_name()),
            // Apache's AtomicFileOutputStream names its temporary file `<name>.tmp`, and
            // QuorumPeer recovers `currentEpoch` from it after a crash mid-rename.
            dir.join(format!("{}.tmp", self.file_name())),
        )
    }
}

/// Reads an epoch file from `<data_dir>/version-2`; `None` when it does not exist. Like
/// Apache, a `currentEpoch.tmp` left by a crash right before its rename is used (and
/// installed) when `currentEpoch` itself is missing.
pub fn read_epoch_file(data_dir: &Path, which: EpochFile) -> Result<Option<i64>> {
    let (path, tmp) = which.paths(data_dir);
    if let Some(v) = read_number(&path)? {
        return Ok(Some(v));
    }
    if which == EpochFile::Current {
        if let Some(v) = read_number(&tmp)? {
            tracing::warn!(file = %tmp.display(), epoch = v, "recovering currentEpoch from its temporary file");
            write_epoch_file(data_dir, which, v)?;
            return Ok(Some(v));
        }
    }
    Ok(None)
}

/// Writes an epoch file atomically (temporary file, fsync, rename, fsync of the directory).
pub fn write_epoch_file(data_dir: &Path, which: EpochFile, epoch: i64) -> Result<()> {
    let (path, tmp) = which.paths(data_dir);
    create_dir(&version_dir(data_dir))?;
    write_atomic(&path, &tmp, epoch.to_string().as_bytes())
}

fn read_number(path: &Path) -> Result<Option<i64>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ServerError::io(format!("read {}", path.display()), e)),
    };
    // Apache reads the first line; tolerate a trailing newline written by hand.
    let line = text.lines().next().unwrap_or("").trim();
    line.parse::<i64>()
        .map(Some)
        .map_err(|_| ServerError::Corrupt {
            file: path.to_owned(),
            reason: format!("expected an epoch number, found {line:?}"),
        })
}
