//! kazoo's own test suite (installed with kazoo) run against `zk-server` processes.
//!
//! kazoo's harness starts its ZooKeeper members as `java -cp .. QuorumPeerMain zoo.cfg`
//! with `-D` system properties. [`Harness`] puts a `java` first on the `PATH` that starts
//! `zk-server` on that zoo.cfg with those properties instead, so kazoo's tests, cluster,
//! TLS stores (JKS) and restarts run unchanged against zk-server. Every member the shim
//! starts writes its pid to the harness's directory; dropping the harness kills those that
//! are still running (kazoo stops its own, unless pytest itself was cut short).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

use crate::ports::free_port;

/// The directory of kazoo's installed tests (`kazoo/tests`).
pub fn tests_dir() -> std::io::Result<PathBuf> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import os, kazoo.tests; print(os.path.dirname(kazoo.tests.__file__))",
        ])
        .output()?;
    if !out.status.success() {
        return Err(std::io::Error::other(format!(
            "kazoo's tests are not installed (pip install kazoo): {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// A base port with `n` free loopback ports above it (kazoo's cluster takes
/// `offset..offset+10*size`), overlapping no block handed out before in this process: two
/// harnesses run side by side, and neither binds its ports until its cluster starts.
fn free_block(n: u16) -> std::io::Result<u16> {
    static GIVEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    // The block stays below the ephemeral range, as `free_port`'s ports do.
    let ephemeral: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768);
    for _ in 0..2000 {
        let base = free_port()?;
        if base.checked_add(n).is_none_or(|end| end > ephemeral)
            || given
                .iter()
                .any(|&g| base < g.saturating_add(n) && g < base + n)
        {
            continue;
        }
        if (base..base + n).all(|p| TcpListener::bind(("127.0.0.1", p)).is_ok()) {
            given.push(base);
            return Ok(base);
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AddrInUse,
        format!("no block of {n} free loopback ports"),
    ))
}

/// A directory holding the `java` shim (and the pids of the members it started).
pub struct Harness {
    dir: tempfile::TempDir,
    env: Vec<(String, std::ffi::OsString)>,
}

impl Harness {
    /// Writes the shim that starts `zk_server` (the binary) in place of Java.
    pub fn new(zk_server: &Path) -> std::io::Result<Harness> {
        let dir = tempfile::tempdir()?;
        let shim = dir.path().join("java");
        std::fs::write(
            &shim,
            format!(
                "#!/bin/sh\n\
                 # kazoo's harness: java -cp CP [-Dprop ...] QuorumPeerMain zoo.cfg\n\
                 props=\"\"\ncfg=\"\"\n\
                 for a in \"$@\"; do\n  case \"$a\" in\n    -D*) props=\"$props $a\" ;;\n    \
                 *) cfg=\"$a\" ;;\n  esac\ndone\n\
                 echo $$ >> '{pids}'\n\
                 exec '{bin}' $props \"$cfg\"\n",
                pids = dir.path().join("pids").display(),
                bin = zk_server.display()
            ),
        )?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755))?;
        Ok(Harness {
            dir,
            env: Vec::new(),
        })
    }

    /// Sets `key` in pytest's environment (and so in the members' too): kazoo's Kerberos
    /// tests read `KRB5_TEST_ENV`, `KRB5_CONFIG`, `KRB5CCNAME`.
    pub fn env(mut self, key: &str, value: impl Into<std::ffi::OsString>) -> Harness {
        self.env.push((key.to_owned(), value.into()));
        self
    }

    /// Runs `pytest` on `args` (test files under [`tests_dir`], `-k` expressions) with a
    /// 3-member cluster of zk-server on a free block of ports.
    pub fn pytest(&self, args: &[&str]) -> std::io::Result<Output> {
        let path = format!(
            "{}:{}",
            self.dir.path().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let offset = free_block(40)?;
        Command::new("python3")
            .args([
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "-W",
                "ignore",
                "-rfEs",
            ])
            .args(args)
            .current_dir(self.dir.path())
            .env("PATH", path)
            // The harness picks its ZooKeeper options by version; 3.8 is what we mirror.
            .env("ZOOKEEPER_VERSION", "3.8.0")
            .env("ZOOKEEPER_CLASSPATH", crate::apache::classpath())
            .env("ZOOKEEPER_PORT_OFFSET", offset.to_string())
            .env("RUST_LOG", "warn")
            // kazoo's test_build checks the server's version only when CI is set.
            .env("CI", "true")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let Ok(pids) = std::fs::read_to_string(self.dir.path().join("pids")) else {
            return;
        };
        for pid in pids.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            // Only our members: the shim's pid became zk-server's by `exec`.
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains("zk-server") {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
        }
    }
}
