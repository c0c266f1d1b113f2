//! A failing disk for server processes (zk-server and Apache alike): a small preload
//! library, built here with the system C compiler, makes `fdatasync` / `fsync` of txn
//! log files (paths containing `/log.`) fail with EIO once a flag file exists, so a test
//! lets a server start and take writes, then pulls the disk from under it.
//! (In-process servers use `zk_server::testkit::fail_txn_log_syncs_under` instead.)

use std::io;
use std::path::PathBuf;
use std::process::Command;

const SHIM: &str = r#"
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failing(int fd) {
    const char *flag = getenv("ZK_TEST_FAIL_FSYNC_FLAG");
    if (!flag || access(flag, F_OK) != 0) return 0;
    char link[64], target[4096], only[1024] = {0};
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n < 0) return 0;
    target[n] = 0;
    /* A non-empty flag file names what the failing paths contain. */
    FILE *f = fopen(flag, "r");
    if (f) {
        size_t got = fread(only, 1, sizeof only - 1, f);
        only[got] = 0;
        fclose(f);
    }
    if (only[0] && strstr(target, only) == NULL) return 0;
    return strstr(target, "/log.") != NULL;
}

int fdatasync(int fd) {
    if (failing(fd)) { errno = EIO; return -1; }
    int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    return real(fd);
}

int fsync(int fd) {
    if (failing(fd)) { errno = EIO; return -1; }
    int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    return real(fd);
}
"#;

/// The preload library and its flag file.
pub struct FailingFsync {
    dir: tempfile::TempDir,
    lib: PathBuf,
}

impl FailingFsync {
    /// Builds the library with `cc` (an error names what is missing).
    pub fn new() -> io::Result<FailingFsync> {
        let dir = tempfile::tempdir()?;
        let src = dir.path().join("fail_fsync.c");
        std::fs::write(&src, SHIM)?;
        let lib = dir.path().join("fail_fsync.so");
        let out = Command::new("cc")
            .args(["-shared", "-fPIC", "-o"])
            .arg(&lib)
            .arg(&src)
            .arg("-ldl")
            .output()
            .map_err(|e| io::Error::new(e.kind(), format!("running cc (a C compiler): {e}")))?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "cc failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(FailingFsync { dir, lib })
    }

    /// The environment that loads the library into a process.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("LD_PRELOAD".into(), self.lib.display().to_string()),
            (
                "ZK_TEST_FAIL_FSYNC_FLAG".into(),
                self.dir.path().join("failing").display().to_string(),
            ),
        ]
    }

    /// From now on, txn log syncs of the processes started with [`Self::env`] fail.
    pub fn start_failing(&self) -> io::Result<()> {
        std::fs::write(self.dir.path().join("failing"), b"")
    }

    /// From now on, syncs of the txn logs whose path contains `part` fail (one member of
    /// an ensemble whose members all load the library).
    pub fn start_failing_under(&self, part: &str) -> io::Result<()> {
        std::fs::write(self.dir.path().join("failing"), part.as_bytes())
    }
}
