//! The files Apache keeps for a member list that reconfig may change: the committed
//! config in `<zoo.cfg>.dynamic.<version>` (its `server.N` lines, sorted), the one
//! proposed and not yet committed in `<zoo.cfg>.dynamic.next` (with its `version=` line),
//! and zoo.cfg itself rewritten to point at the former (`dynamicConfigFile=`), without
//! member lines (Apache's `writeDynamicConfig` / `editStaticConfig`).

use std::path::{Path, PathBuf};

use crate::error::{Result, ServerError};

/// `<zoo.cfg>.dynamic.<hex version>`.
pub fn committed_file(config_file: &Path, version: i64) -> PathBuf {
    let mut s = config_file.as_os_str().to_owned();
    s.push(format!(".dynamic.{version:x}"));
    PathBuf::from(s)
}

/// `<zoo.cfg>.dynamic.next`.
pub fn next_file(config_file: &Path) -> PathBuf {
    let mut s = config_file.as_os_str().to_owned();
    s.push(".dynamic.next");
    PathBuf::from(s)
}

/// Writes `path` through a temporary file and a rename, so a crash leaves the old or the
/// new file, never half of one.
fn write_atomic(path: &Path, text: &str) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, text)
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| ServerError::io(format!("writing {}", path.display()), e))
}

/// Writes a config (`/zookeeper/config` text: `server.N=` lines and `version=`) as
/// Apache does: lines sorted, the version kept only when `keep_version` (the `.next`
/// file).
pub fn write_config(path: &Path, config_text: &str, keep_version: bool) -> Result<()> {
    let mut lines: Vec<&str> = config_text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && (keep_version || !l.starts_with("version")))
        .collect();
    lines.sort_unstable();
    write_atomic(path, &lines.join("\n"))
}

/// Rewrites zoo.cfg as Apache's `editStaticConfig`: member lines (`server.`, `group`,
/// `weight`, `peerType`) and the old `dynamicConfigFile` go, as do `clientPort` /
/// `clientPortAddress` when `erase_client` (the member's spec carries its client address
/// now); `dynamicConfigFile=<dynamic>` (absolute) is appended. Comments are dropped, as
/// Java's Properties round trip drops them.
pub fn edit_static_config(config_file: &Path, dynamic: &Path, erase_client: bool) -> Result<()> {
    let text = std::fs::read_to_string(config_file)
        .map_err(|e| ServerError::io(format!("reading {}", config_file.display()), e))?;
    let mut out = String::new();
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let key = line
            .split(['=', ':'])
            .next()
            .map(str::trim)
            .unwrap_or_default();
        let dropped = [
            "server.",
            "group",
            "weight",
            "dynamicConfigFile",
            "peerType",
        ]
        .iter()
        .any(|p| key.starts_with(p))
            || (erase_client && key.starts_with("clientPort"));
        if dropped {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    let dynamic = std::fs::canonicalize(dynamic).unwrap_or_else(|_| dynamic.to_owned());
    out.push_str(&format!("dynamicConfigFile={}\n", dynamic.display()));
    write_atomic(config_file, &out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_written_as_apache_writes_them() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("zoo.cfg");
        std::fs::write(
            &cfg,
            "# members\ntickTime=2000\nclientPort=2181\ndataDir=/d\nserver.2=b:1:2\n\
             server.1=a:1:2\npeerType=participant\nreconfigEnabled=true\n",
        )
        .unwrap();
        let text = "server.2=b:1:2:participant;0.0.0.0:2182\nserver.1=a:1:2:participant;0.0.0.0:2181\nversion=100000000";
        let dynamic = committed_file(&cfg, 0x1_0000_0000);
        assert!(dynamic
            .to_string_lossy()
            .ends_with("zoo.cfg.dynamic.100000000"));
        write_config(&dynamic, text, false).unwrap();
        assert_eq!(
            std::fs::read_to_string(&dynamic).unwrap(),
            "server.1=a:1:2:participant;0.0.0.0:2181\nserver.2=b:1:2:participant;0.0.0.0:2182"
        );
        write_config(&next_file(&cfg), text, true).unwrap();
        assert!(std::fs::read_to_string(next_file(&cfg))
            .unwrap()
            .ends_with("version=100000000"));
        edit_static_config(&cfg, &dynamic, true).unwrap();
        let edited = std::fs::read_to_string(&cfg).unwrap();
        let canonical = std::fs::canonicalize(&dynamic).unwrap();
        assert_eq!(
            edited,
            format!(
                "tickTime=2000\ndataDir=/d\nreconfigEnabled=true\ndynamicConfigFile={}\n",
                canonical.display()
            )
        );
        // The rewritten pair reads back as the same members.
        let c = super::super::ServerConfig::parse(&edited, &[]).unwrap();
        assert_eq!(c.servers.len(), 2);
        assert_eq!(c.config_version, Some(0x1_0000_0000));
    }
}
