//! Recipe scenarios run against Apache ZooKeeper 3.8 (`recipes_apache.rs`) and the
//! in-process zk-server (`recipes_zkserver.rs`). Each takes a connect string.
#![allow(dead_code)]

pub mod coordination;
pub mod data;
pub mod failover;
pub mod user;

use std::net::SocketAddr;
use std::time::Duration;

use zk_client::Client;
use zk_recipes::Session;

/// Upper bound of every wait.
pub const WAIT: Duration = Duration::from_secs(15);

/// A renewing session with the given session timeout.
pub async fn session(hosts: &str, timeout_ms: u64) -> Session {
    let h = hosts.to_owned();
    Session::with_builder(move || {
        Client::builder(&h).session_timeout(Duration::from_millis(timeout_ms))
    })
    .await
    .expect("session")
}

/// Expires `client`'s session on the server: resume it from a second client and close it,
/// until `client` reports `Expired`. (The original client may reconnect and take the
/// session back while the second one is closing it; the server then drops the second
/// connection and its close answers ConnectionLoss, so the close is retried.)
pub async fn expire(client: &Client, hosts: &str) {
    for _ in 0..5 {
        let other = Client::builder(hosts)
            .session(client.session_id(), client.session_password())
            .connect()
            .await;
        if let Ok(other) = other {
            match other.close().await {
                Ok(()) | Err(zk_client::Error::ConnectionLoss) => {}
                Err(e) => panic!("close resumed session: {e}"),
            }
        }
        let expired = client
            .wait_for_state(Duration::from_secs(3), |s| {
                s == zk_client::SessionState::Expired
            })
            .await;
        if expired.is_ok() {
            return;
        }
    }
    panic!("could not expire session {:#x}", client.session_id());
}

/// Polls `cond` until true (panics after [`WAIT`]).
pub async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls the async `cond` until true (panics after [`WAIT`]): for conditions that need a
/// server round trip, so a slow machine waits longer instead of failing.
pub async fn until_async<F: std::future::Future<Output = bool>>(
    what: &str,
    mut cond: impl FnMut() -> F,
) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The first host of a connect string as an address (for the proxy).
pub fn addr(hosts: &str) -> SocketAddr {
    hosts
        .split(',')
        .next()
        .and_then(|h| h.parse().ok())
        .expect("host:port")
}

/// Receives from a recipe stream until `pred` matches (panics after [`WAIT`]).
pub async fn recv_until<T: std::fmt::Debug>(
    stream: &mut zk_recipes::EventStream<T>,
    what: &str,
    mut pred: impl FnMut(&T) -> bool,
) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let ev = tokio::time::timeout_at(deadline, stream.recv())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
            .unwrap_or_else(|| panic!("stream ended waiting for {what}"));
        if pred(&ev) {
            return ev;
        }
    }
}
