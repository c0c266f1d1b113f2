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

/// Binds `addr`, retrying for up to 2 s while the socket of a member that just died (or
/// restarts in place) lingers.
pub(crate) async fn bind(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let mut tries = 0;
    loop {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => return Ok(l),
            Err(e) if tries >= 100 => return Err(e),
            Err(_) => {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    }
}
