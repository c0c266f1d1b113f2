//! Bad input and load: malformed or oversized frames close the connection like Apache,
//! bad requests get clear error codes, the server never hangs or dies; maxClientCnxns and
//! globalOutstandingLimit.

mod server_support;

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use server_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use zk_proto::ops::{PathWatchRequest, SetDataRequest};
use zk_proto::{CreateMode, ErrorCode, Request};

async fn still_serving(s: &TestServer) {
    let mut c = RawClient::connect(s.addr()).await;
    assert_eq!(c.exists("/", false).await.err(), ErrorCode::Ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_negative_frames_close_the_connection() {
    let s = TestServer::start_with(|c| c.jute_max_buffer = 4096).await;
    let mut c = RawClient::connect(s.addr()).await;
    c.create("/a", "", CreateMode::Persistent).await;
    c.send(&Request::SetData(SetDataRequest {
        path: "/a".into(),
        data: Some(vec![7u8; 5000].into()),
        version: -1,
    }))
    .await;
    assert!(
        c.closed_within(WAIT).await,
        "oversized packet closes the connection"
    );

    let mut raw = TcpStream::connect(s.addr()).await.unwrap();
    raw.write_all(&(-5i32).to_be_bytes()).await.unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(WAIT, raw.read(&mut buf))
        .await
        .expect("closed, not hung");
    assert_eq!(n.unwrap_or(0), 0);

    // Just under the limit is fine.
    let mut c = RawClient::connect(s.addr()).await;
    assert_eq!(
        c.set("/a", &"x".repeat(3000), -1).await.err(),
        ErrorCode::Ok
    );
    still_serving(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests() {
    let s = TestServer::start().await;
    // Unknown opcode: a clear error, then (like Apache) the connection is closed.
    let mut c = RawClient::connect(s.addr()).await;
    let mut b = BytesMut::new();
    b.put_i32(77);
    b.put_i32(999);
    c.send_raw(b.freeze()).await;
    let r = c.try_recv().await.expect("answered");
    assert_eq!(
        (r.header.xid, r.header.zxid, r.err()),
        (77, -1, ErrorCode::Unimplemented)
    );
    assert!(c.closed_within(WAIT).await);
    let mut c = RawClient::connect(s.addr()).await;

    // Truncated body of a known opcode: closed.
    let mut b = BytesMut::new();
    b.put_i32(78);
    b.put_i32(4); // getData
    b.put_i32(100); // path length beyond the frame
    c.send_raw(b.freeze()).await;
    assert!(c.closed_within(WAIT).await);

    // Truncated header: closed.
    let mut c = RawClient::connect(s.addr()).await;
    c.send_raw(Bytes::from_static(&[0, 0])).await;
    assert!(c.closed_within(WAIT).await);

    // Garbage handshake: closed.
    let mut raw = TcpStream::connect(s.addr()).await.unwrap();
    raw.write_all(&[0, 0, 0, 3, 1, 2, 3]).await.unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(WAIT, raw.read(&mut buf))
        .await
        .expect("not hung");
    assert_eq!(n.unwrap_or(0), 0);

    // Invalid paths and versions: error codes.
    let mut c = RawClient::connect(s.addr()).await;
    assert_eq!(
        c.set("/bad//path", "", -1).await.err(),
        ErrorCode::BadArguments
    );
    assert_eq!(
        c.set("relative", "", -1).await.err(),
        ErrorCode::BadArguments
    );
    assert_eq!(
        c.create("/x\u{1}", "", CreateMode::Persistent).await.err(),
        ErrorCode::BadArguments
    );
    assert_eq!(
        c.create("/zookeeper/..", "", CreateMode::Persistent)
            .await
            .err(),
        ErrorCode::BadArguments
    );
    assert_eq!(c.get("no-slash", false).await.err(), ErrorCode::NoNode);
    still_serving(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_garbage_never_kills_the_server() {
    let s = TestServer::start().await;
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for round in 0..40 {
        let mut raw = TcpStream::connect(s.addr()).await.unwrap();
        let junk = rng.bytes(1, 300);
        if round % 2 == 0 {
            // A plausible length prefix, then junk.
            let len = junk.len() as i32;
            raw.write_all(&len.to_be_bytes()).await.unwrap();
        }
        let _ = raw.write_all(&junk).await;
        drop(raw);
    }
    // And junk after a valid handshake.
    for _ in 0..20 {
        let mut c = RawClient::connect(s.addr()).await;
        let junk = rng.bytes(8, 200);
        c.send_raw(Bytes::from(junk)).await;
        let _ = c.closed_within(Duration::from_millis(50)).await;
    }
    still_serving(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_client_cnxns_per_ip() {
    let s = TestServer::start_with(|c| c.max_client_cnxns = 2).await;
    let a = RawClient::connect(s.addr()).await;
    let b = RawClient::connect(s.addr()).await;
    assert!(
        RawClient::handshake(s.addr(), Default::default())
            .await
            .is_err(),
        "third connection refused"
    );
    drop(a);
    // A slot frees up once a connection closes.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match RawClient::handshake(
            s.addr(),
            zk_proto::ConnectRequest {
                timeout: 4000,
                passwd: vec![0; 16].into(),
                ..Default::default()
            },
        )
        .await
        {
            Ok(_) => break,
            Err(_) => {
                assert!(tokio::time::Instant::now() < deadline, "slot never freed");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    drop(b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_outstanding_limit_throttles_without_losing_requests() {
    let s = TestServer::start_with(|c| c.global_outstanding_limit = 2).await;
    let mut c = RawClient::connect(s.addr()).await;
    let mut xids = Vec::new();
    for i in 0..200 {
        let req = if i % 3 == 0 {
            Request::Create(zk_proto::ops::CreateRequest {
                path: format!("/t{i}"),
                data: None,
                acl: zk_proto::Acl::open_unsafe(),
                flags: 0,
            })
        } else {
            Request::Exists(PathWatchRequest {
                path: "/".into(),
                watch: false,
            })
        };
        xids.push(c.send(&req).await);
    }
    for xid in xids {
        let r = c.recv().await;
        assert_eq!(r.header.xid, xid);
        assert_eq!(r.err(), ErrorCode::Ok);
    }
}

/// Seeded, dependency-free pseudo-random bytes.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn bytes(&mut self, min: usize, max: usize) -> Vec<u8> {
        let n = min + (self.next() as usize) % (max - min);
        (0..n).map(|_| self.next() as u8).collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_pings_do_not_leak_throttle_slots() {
    let s = TestServer::start_with(|c| c.global_outstanding_limit = 3).await;
    let mut c = RawClient::connect(s.addr()).await;
    for _ in 0..3 {
        for _ in 0..10 {
            c.send_xid(zk_proto::xid::PING, &Request::Ping).await;
        }
        for _ in 0..10 {
            let r = c.recv().await;
            assert_eq!((r.header.xid, r.err()), (-2, ErrorCode::Ok));
        }
    }
    // Had the replies not released their slots, the reader would now be stuck.
    assert_eq!(c.exists("/", false).await.err(), ErrorCode::Ok);
}

/// A `mntr` value; retried while the server refuses the connection (a slot of a closed
/// connection may take a moment to come back).
async fn mntr_value(port: u16, key: &str) -> u64 {
    mntr_value_after_refusals(port, key).await.0
}

/// [`mntr_value`] and how many attempts the server refused first.
async fn mntr_value_after_refusals(port: u16, key: &str) -> (u64, u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut text;
    let mut refused = 0;
    loop {
        text = tokio::task::spawn_blocking(move || tests::apache::four_letter(port, "mntr"))
            .await
            .unwrap();
        if !text.is_empty() || std::time::Instant::now() > deadline {
            break;
        }
        refused += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let v = text
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('\t'))
        .unwrap_or_else(|| panic!("mntr lacks {key}: {text}"))
        .parse()
        .unwrap();
    (v, refused)
}

/// Whether the server closes `s` (EOF or reset) within `wait`.
async fn closed_within(s: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(wait, s.read(&mut buf)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

/// A connection that never sends its handshake is closed after the sessionless
/// connection timeout (Apache's `zookeeper.nio.sessionlessCnxnTimeout`), so idle sockets
/// cannot hold the server's slots; `maxCnxns` caps connections over every IP. Both are
/// counted in `mntr` as Apache counts them, and the server keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_surplus_connections_are_closed_and_counted() {
    let s = TestServer::start_with(|c| {
        c.sessionless_cnxn_timeout_ms = 300;
        c.max_cnxns = 3;
    })
    .await;
    let started = std::time::Instant::now();
    let mut idle = TcpStream::connect(s.addr()).await.unwrap();
    assert!(closed_within(&mut idle, Duration::from_secs(5)).await);
    assert!(started.elapsed() >= Duration::from_millis(250));
    // Half a handshake: the length, then nothing.
    let mut half = TcpStream::connect(s.addr()).await.unwrap();
    half.write_all(&44i32.to_be_bytes()).await.unwrap();
    assert!(closed_within(&mut half, Duration::from_secs(5)).await);
    assert_eq!(
        mntr_value(s.port(), "zk_sessionless_connections_expired").await,
        2
    );

    // Three sessions fill maxCnxns; a fourth connection is closed at once.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(RawClient::connect(s.addr()).await);
    }
    let mut surplus = TcpStream::connect(s.addr()).await.unwrap();
    assert!(closed_within(&mut surplus, Duration::from_millis(250)).await);
    // A slot comes back when a connection closes.
    drop(held.pop());
    let (rejected, refused) = mntr_value_after_refusals(s.port(), "zk_connection_rejected").await;
    assert_eq!(rejected, 1 + refused);
    let mut c = held.pop().unwrap();
    assert_eq!(c.exists("/", false).await.err(), ErrorCode::Ok);
}
