//! Shared by the `server_*` suites: an in-process server ([`TestServer`]; it needs
//! `zk-server`, which the kit in `tests/src` does not depend on) and the odd requests the
//! suites compare between servers. The raw client itself is the kit's [`tests::raw`].
#![allow(dead_code)]

// Not every suite uses all three.
#[allow(unused_imports)]
pub use tests::raw::{RawClient, Reply, WAIT};

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use zk_proto::OpCode;
use zk_server::config::ServerConfig;
use zk_server::storage::store::MemoryStore;
use zk_server::{Server, ServerHandle};

/// An in-process server over a temp dir.
pub struct TestServer {
    pub handle: Option<ServerHandle>,
    pub dir: tempfile::TempDir,
    pub store: MemoryStore,
}

impl TestServer {
    /// Starts with the test defaults (tick 200 ms, every 4lw) adjusted by `f`.
    pub async fn start_with(f: impl FnOnce(&mut ServerConfig)) -> TestServer {
        Self::start_with_store(MemoryStore::new(), f).await
    }

    /// Starts over a given in-memory store.
    pub async fn start_with_store(
        store: MemoryStore,
        f: impl FnOnce(&mut ServerConfig),
    ) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cfg = ServerConfig::for_tests(dir.path());
        f(&mut cfg);
        let handle = Server::start_in_memory(cfg, store.clone())
            .await
            .expect("server starts");
        TestServer {
            handle: Some(handle),
            dir,
            store,
        }
    }

    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    pub fn addr(&self) -> SocketAddr {
        self.handle.as_ref().expect("running").local_addr()
    }

    pub fn port(&self) -> u16 {
        self.addr().port()
    }

    pub async fn stop(&mut self) {
        if let Some(h) = self.handle.take() {
            h.stop().await.expect("clean stop");
        }
    }
}

/// A request real clients never send: name, xid, opcode and raw body.
pub type OddRequest = (&'static str, i32, i32, Vec<u8>);

/// The [`odd_cases`] check outside a multi, which takes an Apache ensemble's quorum down.
pub const BARE_CHECK: &str = "bare check";

/// Requests real clients never send: unknown, notification-only and server-only opcodes,
/// and bodies or xids Apache treats specially.
pub fn odd_cases() -> Vec<OddRequest> {
    vec![
        ("unknown opcode", 5, 999, vec![]),
        ("notification opcode", 6, 0, vec![]),
        ("createSession opcode", 7, -10, vec![]),
        ("sasl", 8, 102, vec![0, 0, 0, 1, b'x']),
        ("deleteContainer raw path", 9, 20, b"/nonexist".to_vec()),
        ("ping with xid 12", 12, 11, vec![]),
        (
            "auth ip",
            -4,
            100,
            vec![0, 0, 0, 0, 0, 0, 0, 2, b'i', b'p', 0, 0, 0, 0],
        ),
        (
            "auth unknown scheme",
            -4,
            100,
            vec![0, 0, 0, 0, 0, 0, 0, 1, b'q', 0, 0, 0, 0],
        ),
        (BARE_CHECK, 13, 13, vec![0, 0, 0, 1, b'/', 0, 0, 0, 0]),
    ]
}

/// Sends one odd request on a new session: the reply (zxid masked to its sign, as it
/// depends on the server's history) and whether the server closed the connection.
pub async fn odd_request(addr: SocketAddr, case: OddRequest) -> String {
    odd_request_on(RawClient::connect(addr).await, case).await
}

/// [`odd_request`] on a session the caller opened (to connect to several servers before
/// any of them sees the request).
pub async fn odd_request_on(mut c: RawClient, (name, xid, op, body): OddRequest) -> String {
    use bytes::BufMut;
    let mut b = BytesMut::new();
    b.put_i32(xid);
    b.put_i32(op);
    b.put_slice(&body);
    c.pending_op(xid, OpCode::from_i32(op));
    c.send_raw(b.freeze()).await;
    let reply = match c.try_recv().await {
        Ok(r) => format!(
            "xid={} zxid={} err={:?} body={:?}",
            r.header.xid,
            if r.header.zxid > 0 { 1 } else { r.header.zxid },
            r.err(),
            r.body
        ),
        Err(e) => e,
    };
    let closed = c.closed_within(Duration::from_millis(800)).await;
    format!("{name}: {reply} closed={closed}")
}

/// Every [`odd_cases`] request, each on its own connection, all at once (the close checks
/// wait). Suites compare these lines with Apache's.
pub async fn odd_requests(addr: SocketAddr) -> Vec<String> {
    futures::future::join_all(odd_cases().into_iter().map(|c| odd_request(addr, c))).await
}
