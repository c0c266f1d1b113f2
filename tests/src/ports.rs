//! Loopback ports for servers a test starts as separate processes (Apache, `zk-server`),
//! which must be told their ports before they bind them. In-process servers bind port 0
//! themselves and need none of this.
//!
//! A port is picked below the kernel's ephemeral range (`net.ipv4.ip_local_port_range`,
//! 32768-60999 by default). Binding port 0 and releasing it hands out a port from that
//! range, where the local end of any outgoing connection (a client, a peer link, a proxy)
//! may take it before the server process binds it: member processes then failed to start
//! with "Address already in use" about once in a few full test runs. Below the range only
//! another picker can collide, and one process-wide counter keeps the pickers of a test
//! binary apart; every candidate is still checked by binding it.

use std::io;
use std::net::TcpListener;
use std::sync::atomic::{AtomicU32, Ordering};

/// The lowest port handed out; the pool runs from here to the ephemeral range.
const POOL_START: u32 = 10_000;

/// Where the kernel's ephemeral ports begin (the pool's end).
fn ephemeral_start() -> u32 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768)
}

/// The next candidate of this process: a pool walk starting at an offset derived from
/// the pid, so test binaries run one after the other do not start on the same ports.
fn next_candidate(pool: u32) -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let start = std::process::id().wrapping_mul(7_919) % pool;
    let _ = NEXT.compare_exchange(u32::MAX, start, Ordering::SeqCst, Ordering::SeqCst);
    NEXT.fetch_add(1, Ordering::SeqCst) % pool
}

/// A free loopback TCP port that no outgoing connection can take before its server
/// binds it (see the module docs); falls back to the kernel's pick when the ephemeral
/// range leaves no pool below it.
pub fn free_port() -> io::Result<u16> {
    let end = ephemeral_start();
    if end <= POOL_START + 1_000 {
        return Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port());
    }
    let pool = end - POOL_START;
    for _ in 0..pool {
        let Ok(port) = u16::try_from(POOL_START + next_candidate(pool)) else {
            continue;
        };
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AddrInUse,
        format!("no free loopback port in {POOL_START}..{end}"),
    ))
}

/// `n` distinct free loopback ports.
pub fn free_ports(n: usize) -> io::Result<Vec<u16>> {
    // The counter never repeats a port within a walk of the pool, so these are distinct.
    (0..n).map(|_| free_port()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_bindable_and_below_the_ephemeral_range() {
        let ports = free_ports(50).expect("ports");
        let set: std::collections::BTreeSet<_> = ports.iter().collect();
        assert_eq!(set.len(), ports.len(), "{ports:?}");
        for p in &ports {
            assert!(u32::from(*p) < ephemeral_start(), "{p}");
            TcpListener::bind(("127.0.0.1", *p)).expect("bindable");
        }
    }
}
