//! Apache's file layout: `version-2/` directories holding `log.<zxid hex>` and
//! `snapshot.<zxid hex>` files, found and sorted by the zxid in their names.

use std::path::{Path, PathBuf};

use crate::error::{Result, ServerError};

/// Sub-directory Apache keeps its files in (`FileTxnSnapLog.version + VERSION`).
pub const VERSION_DIR: &str = "version-2";
/// Prefix of txn log files.
pub const LOG_PREFIX: &str = "log";
/// Prefix of snapshot files.
pub const SNAPSHOT_PREFIX: &str = "snapshot";
/// Prefix given to bytes and files set aside because they failed validation. Apache only
/// looks at names starting with `log.` or `snapshot.`, so it ignores them too.
pub const CORRUPT_PREFIX: &str = "corrupt";

/// `<dir>/version-2`.
pub fn version_dir(dir: &Path) -> PathBuf {
    dir.join(VERSION_DIR)
}

/// `log.<zxid hex>` (lower case, no padding, as Java's `Long.toHexString`).
pub fn log_name(zxid: i64) -> String {
    format!("{LOG_PREFIX}.{zxid:x}")
}

/// `snapshot.<zxid hex>` (the uncompressed form).
pub fn snapshot_name(zxid: i64) -> String {
    format!("{SNAPSHOT_PREFIX}.{zxid:x}")
}

/// The zxid in `<prefix>.<hex>[.<ext>]`, like Apache's `Util.getZxidFromName`, plus whether
/// an extension (a compression method) follows.
pub fn zxid_from_name(name: &str, prefix: &str) -> Option<(i64, bool)> {
    let mut parts = name.split('.');
    if parts.next()? != prefix {
        return None;
    }
    let hex = parts.next()?;
    // Java's Long.parseLong(s, 16) accepts a sign; real files never carry one.
    if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let zxid = u64::from_str_radix(hex, 16).ok()?;
    let zxid = i64::try_from(zxid).ok()?;
    Some((zxid, parts.next().is_some()))
}

/// A data file found in a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataFile {
    /// Zxid from the name.
    pub zxid: i64,
    /// Full path.
    pub path: PathBuf,
    /// The name carries an extension (e.g. a compressed snapshot `snapshot.1f.gz`).
    pub has_extension: bool,
}

/// Files named `<prefix>.<hex>[.ext]` in `dir`, sorted by zxid ascending.
pub fn list(dir: &Path, prefix: &str) -> Result<Vec<DataFile>> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(ServerError::io(format!("list {}", dir.display()), e)),
    };
    let mut out = Vec::new();
    for ent in rd {
        let ent = ent.map_err(|e| ServerError::io(format!("list {}", dir.display()), e))?;
        let name = ent.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some((zxid, has_extension)) = zxid_from_name(name, prefix) {
            out.push(DataFile {
                zxid,
                path: ent.path(),
                has_extension,
            });
        }
    }
    out.sort_by(|a, b| a.zxid.cmp(&b.zxid).then_with(|| a.path.cmp(&b.path)));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_apache() {
        assert_eq!(log_name(0x1_0000_0001), "log.100000001");
        assert_eq!(snapshot_name(0), "snapshot.0");
        assert_eq!(
            zxid_from_name("snapshot.1a2b", SNAPSHOT_PREFIX),
            Some((0x1a2b, false))
        );
        assert_eq!(
            zxid_from_name("snapshot.1a.gz", SNAPSHOT_PREFIX),
            Some((0x1a, true))
        );
        assert_eq!(zxid_from_name("log.zz", LOG_PREFIX), None);
        assert_eq!(zxid_from_name("corrupt.log.1", LOG_PREFIX), None);
        assert_eq!(zxid_from_name(".snapshot.1.tmp", SNAPSHOT_PREFIX), None);
    }
}
