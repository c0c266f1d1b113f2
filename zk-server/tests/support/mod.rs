//! Helpers shared by the tests that run the `zk-server` binary as a process.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;

/// One `zk-server` process, killed with SIGKILL (by its own handle) on drop.
pub struct Proc(pub Option<Child>);

impl Proc {
    /// Runs `zk-server [props...] <cfg>`.
    pub fn start_with(cfg: &Path, props: &[&str]) -> Proc {
        let child = Command::new(env!("CARGO_BIN_EXE_zk-server"))
            .args(props)
            .arg(cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn zk-server");
        Proc(Some(child))
    }

    /// Runs `zk-server <cfg>`.
    pub fn start(cfg: &Path) -> Proc {
        Self::start_with(cfg, &[])
    }

    /// The process id, while it runs.
    pub fn id(&self) -> Option<u32> {
        self.0.as_ref().map(Child::id)
    }

    /// Kills the process with SIGKILL and reaps it.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Takes the child out (for tests that signal it themselves).
    pub fn take(&mut self) -> Option<Child> {
        self.0.take()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A free loopback port (bound and released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Sends a four-letter word; empty when nothing answers.
pub fn four_letter(port: u16, cmd: &str) -> String {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = s.write_all(cmd.as_bytes());
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// Reads one length-prefixed frame (refusing absurd lengths).
pub fn read_frame(s: &mut TcpStream) -> std::io::Result<Bytes> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len)?;
    let n = u32::from_be_bytes(len) as usize;
    if n > 1 << 21 {
        return Err(std::io::Error::other("frame too long"));
    }
    let mut body = vec![0u8; n];
    s.read_exact(&mut body)?;
    Ok(body.into())
}
