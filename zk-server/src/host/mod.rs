//! All the tokio code: sockets, tasks and threads around the sans-IO cores.
//!
//! - [`client`]: the client port: listener, connections (framing, throttling), the table of
//!   client connections, and the messages connections send the server task.
//! - [`server`]: the embeddable standalone [`server::Server`] / [`server::ServerHandle`].
//! - [`quorum`]: the quorum wire layer (election connections, leader-learner framing, the
//!   whole-peer driver).
//! - [`http`]: the AdminServer and the Prometheus `/metrics` endpoint.
//! - [`member`]: the server as an ensemble member: node task, the core as the driver's
//!   replica, start from zoo.cfg.

pub mod client;
pub mod http;
pub mod member;
pub mod quorum;
pub mod server;

/// Connections the kernel queues for a client port until they are accepted. A member
/// that dies sends its clients to the others all at once; a short queue drops their SYNs,
/// and each dropped one costs its client a 1 s retransmission (Java's default queue of 50
/// is what Apache runs with; tokio's is 1,024). The kernel caps it at
/// `net.core.somaxconn`.
pub(crate) const ACCEPT_BACKLOG: u32 = 8192;

/// A listening socket on `addr` with room for [`ACCEPT_BACKLOG`] pending connections.
pub(crate) fn listen(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = match addr {
        std::net::SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        std::net::SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    // As std's bind: a restarted server rebinds while old connections sit in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(ACCEPT_BACKLOG)
}

/// Binds `addr` (see [`listen`]), retrying for up to 2 s while the socket of a member
/// that just died (or restarts in place) lingers.
pub(crate) async fn bind(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let mut tries = 0;
    loop {
        match listen(addr) {
            Ok(l) => return Ok(l),
            Err(e) if tries >= 100 => return Err(e),
            Err(_) => {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A burst of reconnects larger than tokio's default queue (1,024) all connect while
    /// nothing is accepted yet: none waits for a SYN retransmission.
    #[tokio::test]
    async fn a_client_port_queues_a_reconnect_storm() {
        let somaxconn: u32 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(4096);
        let l = listen("127.0.0.1:0".parse().unwrap()).unwrap();
        let port = l.local_addr().unwrap().port();
        let burst = 2_000;
        assert!(
            somaxconn >= 2_064,
            "net.core.somaxconn={somaxconn} caps every accept queue below this storm"
        );
        let started = std::time::Instant::now();
        let conns = futures::future::join_all(
            (0..burst).map(|_| tokio::net::TcpStream::connect(("127.0.0.1", port))),
        )
        .await;
        let elapsed = started.elapsed();
        assert!(conns.iter().all(|c| c.is_ok()));
        // A dropped SYN is retried after 1 s; the whole burst is queued well before.
        assert!(
            elapsed < std::time::Duration::from_millis(900),
            "{elapsed:?}"
        );
        drop(l);
    }
}
