//! Sessions: negotiation, expiry in tick buckets, reconnect, passwords, the lastZxidSeen
//! guard, per-session FIFO replies, pings, close.

mod server_support;

use std::time::Duration;

use bytes::Bytes;
use server_support::*;
use zk_proto::ops::{PathWatchRequest, SetDataRequest};
use zk_proto::{ConnectRequest, CreateMode, ErrorCode, EventType, Request, Response};

fn connect_req(timeout: i32) -> ConnectRequest {
    ConnectRequest {
        timeout,
        passwd: vec![0u8; 16].into(),
        read_only: Some(false),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_is_clamped() {
    // Test tick is 200 ms: bounds are [400, 4000].
    let s = TestServer::start().await;
    let (_c, r) = RawClient::handshake(s.addr(), connect_req(10))
        .await
        .unwrap();
    assert_eq!(r.timeout, 400);
    let (_c, r) = RawClient::handshake(s.addr(), connect_req(1_000_000))
        .await
        .unwrap();
    assert_eq!(r.timeout, 4000);
    let (_c, r) = RawClient::handshake(s.addr(), connect_req(1234))
        .await
        .unwrap();
    assert_eq!(r.timeout, 1234);
    assert_eq!(r.passwd.len(), 16);
    assert_ne!(r.session_id, 0);
    // Old clients send no read-only byte.
    let mut old = connect_req(2000);
    old.read_only = None;
    let (_c, r) = RawClient::handshake(s.addr(), old).await.unwrap();
    assert!(r.timeout > 0);
    // ... and get no read-only byte back, like Apache (old C clients reset on it).
    assert_eq!(r.read_only, None);
    let (_c, r) = RawClient::handshake(s.addr(), connect_req(2000))
        .await
        .unwrap();
    assert_eq!(r.read_only, Some(false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_removes_ephemerals_and_notifies() {
    let s = TestServer::start().await;
    let mut watcher = RawClient::connect(s.addr()).await;
    let (mut short, r) = RawClient::handshake(s.addr(), connect_req(400))
        .await
        .unwrap();
    assert_eq!(r.timeout, 400);
    short.create("/eph", "", CreateMode::Ephemeral).await;
    watcher.exists("/eph", true).await;
    watcher.children("/", true).await;
    // No pings: the session expires; its connection is closed.
    assert!(short.closed_within(WAIT).await);
    let evs = watcher.drain_events().await;
    let mut got: Vec<_> = evs.iter().map(|e| (e.event_type, e.path.clone())).collect();
    got.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(
        got,
        vec![
            (EventType::NodeChildrenChanged, "/".into()),
            (EventType::NodeDeleted, "/eph".into())
        ]
    );
    assert_eq!(watcher.exists("/eph", false).await.err(), ErrorCode::NoNode);
    // Reconnecting to the expired session is refused with timeout 0.
    let (_c, r) = short.reconnect(s.addr()).await.expect("answered");
    assert_eq!(r.timeout, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_keep_a_session_alive() {
    let s = TestServer::start().await;
    // 1 s sessions, pinged every 150 ms for 3 s: alive only thanks to the pings.
    let (mut c, _) = RawClient::handshake(s.addr(), connect_req(1000))
        .await
        .unwrap();
    c.create("/e", "", CreateMode::Ephemeral).await;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(c.ping().await.err(), ErrorCode::Ok);
    }
    assert_eq!(c.exists("/e", false).await.err(), ErrorCode::Ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_with_password() {
    let s = TestServer::start().await;
    let mut c = RawClient::connect(s.addr()).await;
    c.create("/e", "", CreateMode::Ephemeral).await;
    let (mut c2, r) = c.reconnect(s.addr()).await.expect("resumed");
    assert_eq!(r.session_id, c.session_id);
    assert_eq!(r.passwd, c.passwd);
    assert_eq!(
        c2.exists("/e", false).await.stat().ephemeral_owner,
        c.session_id
    );

    // Wrong password: expired.
    let mut bad = c2.passwd.to_vec();
    bad[0] ^= 1;
    let (_x, r) = RawClient::handshake(
        s.addr(),
        ConnectRequest {
            session_id: c2.session_id,
            passwd: Bytes::from(bad),
            timeout: 4000,
            ..Default::default()
        },
    )
    .await
    .expect("answered");
    assert_eq!(r.timeout, 0);
    // Unknown session: expired.
    let (_x, r) = RawClient::handshake(
        s.addr(),
        ConnectRequest {
            session_id: 12345,
            passwd: vec![0; 16].into(),
            timeout: 4000,
            ..Default::default()
        },
    )
    .await
    .expect("answered");
    assert_eq!(r.timeout, 0);

    // A client that saw a newer zxid than ours is refused (connection closed).
    let mut ahead = connect_req(4000);
    ahead.last_zxid_seen = c2.last_zxid + 1000;
    assert!(RawClient::handshake(s.addr(), ahead).await.is_err());

    let closed = c2.close().await;
    assert_eq!(closed.err(), ErrorCode::Ok);
    let mut o = RawClient::connect(s.addr()).await;
    assert_eq!(o.exists("/e", false).await.err(), ErrorCode::NoNode);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_are_fifo_per_session() {
    let s = TestServer::start().await;
    let mut c = RawClient::connect(s.addr()).await;
    c.create("/f", "0", CreateMode::Persistent).await;
    // Pipeline writes and reads without waiting: every read must see the writes sent
    // before it, and replies come back in request order.
    let mut xids = Vec::new();
    for i in 1..=50 {
        xids.push(
            c.send(&Request::SetData(SetDataRequest {
                path: "/f".into(),
                data: Some(i.to_string().into()),
                version: -1,
            }))
            .await,
        );
        xids.push(
            c.send(&Request::GetData(PathWatchRequest {
                path: "/f".into(),
                watch: false,
            }))
            .await,
        );
    }
    let mut last_zxid = 0;
    for (n, xid) in xids.iter().enumerate() {
        let r = c.recv().await;
        assert_eq!(r.header.xid, *xid, "reply {n} out of order");
        assert!(r.header.zxid >= last_zxid);
        last_zxid = r.header.zxid;
        if let Response::GetData(d) = &r.body {
            let expect = (n / 2 + 1).to_string();
            assert_eq!(d.data.as_deref(), Some(expect.as_bytes()));
            assert_eq!(d.stat.version as usize, n / 2 + 1);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_from_many_sessions_share_fsyncs() {
    // Each append takes 5 ms, like a slow fsync: writes arriving meanwhile must share the
    // next one.
    let store = zk_server::storage::store::MemoryStore::with_append_delay(Duration::from_millis(5));
    let s = TestServer::start_with_store(store, |_| {}).await;
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(RawClient::connect(s.addr()).await);
    }
    let appends_before = s.store.state().lock().unwrap().appends;
    for (i, c) in clients.iter_mut().enumerate() {
        for j in 0..50 {
            c.send(&Request::Create(zk_proto::ops::CreateRequest {
                path: format!("/n{i}-{j}"),
                data: None,
                acl: zk_proto::Acl::open_unsafe(),
                flags: 0,
            }))
            .await;
        }
    }
    for c in clients.iter_mut() {
        for _ in 0..50 {
            assert_eq!(c.recv().await.err(), ErrorCode::Ok);
        }
    }
    let st = s.store.state();
    let st = st.lock().unwrap();
    let txns = st.txns.len();
    assert!(txns >= 204);
    // Group commit: far fewer appends (fsyncs) than txns.
    assert!(
        st.appends - appends_before < 60,
        "{} appends for 200 txns",
        st.appends - appends_before
    );
}

/// A client reconnecting with a session asks another timeout: Apache negotiates the new
/// one (clamped to the server's bounds) and from then on the session expires by it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_with_a_shorter_timeout_expires_by_the_new_one() {
    // Test tick is 200 ms: bounds are [400, 4000].
    let s = TestServer::start().await;
    let mut watcher = RawClient::connect(s.addr()).await;
    let (mut c, r) = RawClient::handshake(s.addr(), connect_req(4000))
        .await
        .unwrap();
    assert_eq!(r.timeout, 4000);
    c.create("/eph", "", CreateMode::Ephemeral).await;
    let (session, passwd) = (c.session_id, c.passwd.clone());
    drop(c);
    // Asks 10 ms: clamped to 400.
    let (mut c2, r) = RawClient::handshake(
        s.addr(),
        ConnectRequest {
            timeout: 10,
            session_id: session,
            passwd,
            read_only: Some(false),
            ..Default::default()
        },
    )
    .await
    .expect("resumed");
    assert_eq!((r.session_id, r.timeout), (session, 400));
    let reconnected = std::time::Instant::now();
    watcher.exists("/eph", true).await;
    // No pings from here: expired by 400 ms (plus its tick bucket and the expiry tick),
    // long before the 4 s it was created with.
    assert!(c2.closed_within(Duration::from_millis(2500)).await);
    let took = reconnected.elapsed();
    assert!(took < Duration::from_millis(2000), "expired after {took:?}");
    let ev = watcher.event(WAIT).await.expect("deleted event");
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (EventType::NodeDeleted, "/eph")
    );
    assert!(reconnected.elapsed() < Duration::from_millis(3000));
    let (_x, r) = c2.reconnect(s.addr()).await.expect("answered");
    assert_eq!(r.timeout, 0, "the session should have expired");

    // The other way round: a session created with 400 ms and resumed asking 3 s lives
    // through a second without pings.
    let (mut c, _) = RawClient::handshake(s.addr(), connect_req(400))
        .await
        .unwrap();
    c.create("/eph2", "", CreateMode::Ephemeral).await;
    let (mut c2, r) = RawClient::handshake(
        s.addr(),
        ConnectRequest {
            timeout: 3000,
            session_id: c.session_id,
            passwd: c.passwd.clone(),
            read_only: Some(false),
            ..Default::default()
        },
    )
    .await
    .expect("resumed");
    drop(c);
    assert_eq!(r.timeout, 3000);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(c2.exists("/eph2", false).await.err(), ErrorCode::Ok);
}
