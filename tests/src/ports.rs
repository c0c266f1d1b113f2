//! Loopback ports for servers a test starts as separate processes (Apache, `zk-server`),
//! which must be told their ports before they bind them. In-process servers bind port 0
//! themselves and need none of this.

use std::io;
use std::net::TcpListener;

/// A loopback TCP port that was free a moment ago (bound to port 0, then released).
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `n` distinct free loopback ports: every listener is held until all are chosen, so the
/// kernel cannot hand out one port twice.
pub fn free_ports(n: usize) -> io::Result<Vec<u16>> {
    let held = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<io::Result<Vec<_>>>()?;
    held.iter().map(|l| Ok(l.local_addr()?.port())).collect()
}
