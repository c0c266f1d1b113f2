//! The election wire layer on loopback: real sockets, Apache's handshake and framing.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use zk_proto::election::Notification;
use zk_server::host::quorum::election::{elect, ElectionNet};
use zk_server::zab::{Election, PeerState, QuorumConfig, QuorumServer};

async fn listeners(n: i64) -> (Vec<TcpListener>, BTreeMap<i64, SocketAddr>) {
    let mut ls = Vec::new();
    let mut addrs = BTreeMap::new();
    for sid in 1..=n {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        addrs.insert(sid, l.local_addr().unwrap());
        ls.push(l);
    }
    (ls, addrs)
}

fn config(me: i64, addrs: &BTreeMap<i64, SocketAddr>) -> QuorumConfig {
    let servers = addrs.iter().map(|(sid, a)| {
        QuorumServer::parse(*sid, &format!("127.0.0.1:{}:{}", 1, a.port())).unwrap()
    });
    QuorumConfig::new(me, servers)
}

#[tokio::test]
async fn three_election_cores_elect_a_leader_over_sockets() {
    let (ls, addrs) = listeners(3).await;
    let mut tasks = Vec::new();
    let all_done = Arc::new(tokio::sync::Barrier::new(3));
    for (i, l) in ls.into_iter().enumerate() {
        let sid = i as i64 + 1;
        let addrs = addrs.clone();
        let all_done = all_done.clone();
        tasks.push(tokio::spawn(async move {
            let mut net = ElectionNet::start(sid, l, addrs.clone());
            let mut e = Election::new(Arc::new(config(sid, &addrs)), 0, 0);
            // Server 2 has the most recent history.
            let zxid = if sid == 2 {
                0x1_0000_0004
            } else {
                0x1_0000_0002
            };
            let d = elect(&mut net, &mut e, zxid, 1).await;
            // Keep answering a little so slower peers finish too.
            let until = tokio::time::Instant::now() + Duration::from_millis(600);
            while let Ok(Some((from, n))) = tokio::time::timeout_at(until, net.recv()).await {
                let mut out = Vec::new();
                e.on_notification(0, from, &n, &mut out);
                for a in out {
                    if let zk_server::zab::Action::SendNotification { to, n } = a {
                        net.send(to, &n);
                    }
                }
            }
            // Every net stays up until all three have decided, so a peer that finished
            // early cannot take its connections down before the others look at theirs.
            all_done.wait().await;
            let settle = tokio::time::Instant::now() + Duration::from_secs(2);
            while net.connected().len() < 2 && tokio::time::Instant::now() < settle {
                let _ = tokio::time::timeout(Duration::from_millis(20), net.recv()).await;
            }
            let connected = net.connected();
            all_done.wait().await;
            (sid, d, connected)
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        let r = tokio::time::timeout(Duration::from_secs(10), t)
            .await
            .expect("election finished in time")
            .unwrap();
        results.push(r);
    }
    for (sid, d, connected) in &results {
        assert_eq!(d.vote.leader, 2, "server {sid}");
        let expected = if *sid == 2 {
            PeerState::Leading
        } else {
            PeerState::Following
        };
        assert_eq!(d.state, expected);
        assert_eq!(
            connected.len(),
            2,
            "server {sid} keeps one connection per peer"
        );
    }
}

#[tokio::test]
async fn handshake_and_framing_match_apache() {
    // We play server 5 (larger sid) calling server 1: our connection is kept and we get
    // length-prefixed notifications back.
    let (mut ls, mut addrs) = listeners(1).await;
    let l = ls.remove(0);
    let fake = TcpListener::bind("127.0.0.1:0").await.unwrap();
    addrs.insert(5, fake.local_addr().unwrap());
    let mut net = ElectionNet::start(1, l, addrs.clone());
    let mut s = TcpStream::connect(addrs[&1]).await.unwrap();
    let mut hs = Vec::new();
    hs.extend_from_slice(&(-65536i64).to_be_bytes());
    hs.extend_from_slice(&5i64.to_be_bytes());
    let me = b"127.0.0.1:9";
    hs.extend_from_slice(&(me.len() as i32).to_be_bytes());
    hs.extend_from_slice(me);
    s.write_all(&hs).await.unwrap();
    let n = Notification {
        state: 0,
        leader: 5,
        zxid: 7,
        election_epoch: 1,
        peer_epoch: 0,
        version: 2,
        config: Bytes::from_static(b"version=0"),
    };
    let mut body = bytes::BytesMut::new();
    n.write(&mut body);
    s.write_all(&(body.len() as i32).to_be_bytes())
        .await
        .unwrap();
    s.write_all(&body).await.unwrap();
    let (from, got) = tokio::time::timeout(Duration::from_secs(5), net.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((from, got), (5, n.clone()));
    // Server 1 answers on the same connection.
    net.send(5, &n);
    let len = tokio::time::timeout(Duration::from_secs(5), s.read_i32())
        .await
        .unwrap()
        .unwrap();
    let mut back = vec![0u8; len as usize];
    s.read_exact(&mut back).await.unwrap();
    assert_eq!(Notification::decode(Bytes::from(back)).unwrap(), n);

    // A smaller sid calling server 1 is dropped, and server 1 calls back (to our fake
    // listener, registered as sid 5 here, so use a second fake as sid 0).
    let (mut ls2, mut addrs2) = listeners(1).await;
    let l2 = ls2.remove(0);
    let callback = TcpListener::bind("127.0.0.1:0").await.unwrap();
    addrs2.insert(0, callback.local_addr().unwrap());
    let _net2 = ElectionNet::start(1, l2, addrs2.clone());
    let mut small = TcpStream::connect(addrs2[&1]).await.unwrap();
    let mut hs = Vec::new();
    hs.extend_from_slice(&(-65536i64).to_be_bytes());
    hs.extend_from_slice(&0i64.to_be_bytes());
    hs.extend_from_slice(&0i32.to_be_bytes());
    small.write_all(&hs).await.unwrap();
    let mut buf = [0u8; 1];
    let closed = tokio::time::timeout(Duration::from_secs(5), small.read(&mut buf))
        .await
        .unwrap();
    assert!(
        matches!(closed, Ok(0) | Err(_)),
        "smaller sid's connection is closed"
    );
    let (mut cb, _) = tokio::time::timeout(Duration::from_secs(5), callback.accept())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cb.read_i64().await.unwrap(), -65536);
    assert_eq!(cb.read_i64().await.unwrap(), 1);
}
