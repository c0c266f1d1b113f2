//! Durability: acknowledged writes survive a restart on the same data dir, sessions too;
//! snapshots every snapCount txns, autopurge keeps snapRetainCount; the files are Apache's
//! (Apache 3.8 reads what we wrote).

mod server_support;

use std::path::Path;
use std::time::{Duration, Instant};

use server_support::*;
use zk_proto::{CreateMode, ErrorCode};
use zk_server::config::ServerConfig;
use zk_server::Server;

fn files(dir: &Path, prefix: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir.join("version-2"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_on_same_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ServerConfig::for_tests(dir.path());
    let t = Instant::now();
    let h = Server::start(cfg.clone()).await.unwrap();
    eprintln!("fresh start took {:?}", t.elapsed());
    let mut c = RawClient::connect(h.local_addr()).await;
    c.create("/keep", "v1", CreateMode::Persistent).await;
    c.set("/keep", "v2", -1).await;
    c.create("/eph", "", CreateMode::Ephemeral).await;
    let seq = c
        .create("/s-", "", CreateMode::PersistentSequential)
        .await
        .path();
    for n in [
        "zeta", "alpha", "m", "b12", "x", "queue-", "aa", "node10", "node2",
    ] {
        c.create(&format!("/keep/{n}"), "", CreateMode::Persistent)
            .await;
    }
    c.delete("/keep/x", -1).await;
    let order = c.children("/keep", false).await.children();
    let last = c.exists("/keep", false).await.header.zxid;
    h.stop().await.unwrap();
    assert!(!files(dir.path(), "log.").is_empty(), "txn log written");

    let t = Instant::now();
    let h = Server::start(cfg.clone()).await.unwrap();
    eprintln!("restart took {:?}", t.elapsed());
    // The session survives the restart: same id and password resume it.
    let (mut c2, r) = c.reconnect(h.local_addr()).await.expect("resume");
    assert_eq!(r.session_id, c.session_id);
    assert!(r.timeout > 0);
    // Children come back in the same (Apache hash-set) order after the restart.
    assert_eq!(c2.children("/keep", false).await.children(), order);
    let got = c2.get("/keep", false).await;
    assert_eq!(got.data().as_deref(), Some(&b"v2"[..]));
    assert_eq!(got.stat().version, 1);
    assert_eq!(
        c2.exists("/eph", false).await.stat().ephemeral_owner,
        c.session_id
    );
    assert_eq!(c2.exists(&seq, false).await.err(), ErrorCode::Ok);
    // Zxids continue where they stopped.
    let next = c2.create("/after", "", CreateMode::Persistent).await;
    assert_eq!(next.stat().czxid, last + 1);
    c2.close().await;
    h.stop().await.unwrap();

    let h = Server::start(cfg).await.unwrap();
    let mut c3 = RawClient::connect(h.local_addr()).await;
    assert_eq!(
        c3.exists("/eph", false).await.err(),
        ErrorCode::NoNode,
        "closed session's ephemerals stay gone"
    );
    h.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_and_autopurge() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = ServerConfig::for_tests(dir.path());
    cfg.snap_count = 20;
    cfg.snap_retain_count = 3;
    cfg.purge_interval_hours = 1;
    cfg.prealloc_size = 64 * 1024;
    let h = Server::start(cfg.clone()).await.unwrap();
    let mut c = RawClient::connect(h.local_addr()).await;
    for i in 0..150 {
        assert_eq!(
            c.create(&format!("/n{i}"), "x", CreateMode::Persistent)
                .await
                .err(),
            ErrorCode::Ok
        );
    }
    // Snapshots are written in the background.
    let deadline = Instant::now() + WAIT;
    while files(dir.path(), "snapshot.").len() < 3 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    h.stop().await.unwrap();
    let snaps = files(dir.path(), "snapshot.");
    // Exactly snapRetainCount: a purge asked for while the newest file was still being
    // written waits for it.
    assert_eq!(snaps.len(), 3, "{snaps:?}");
    assert!(
        !snaps.contains(&"snapshot.0".to_string()),
        "old snapshots purged: {snaps:?}"
    );

    let h = Server::start(cfg).await.unwrap();
    let mut c = RawClient::connect(h.local_addr()).await;
    for i in [0, 77, 149] {
        assert_eq!(
            c.exists(&format!("/n{i}"), false).await.err(),
            ErrorCode::Ok
        );
    }
    let n = c.children("/", false).await.children().len();
    assert_eq!(n, 151);
    h.stop().await.unwrap();
}

/// Apache 3.8 opens the data dir our server wrote and serves the same tree.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apache_reads_our_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ServerConfig::for_tests(dir.path());
    let h = Server::start(cfg.clone()).await.unwrap();
    let mut c = RawClient::connect(h.local_addr()).await;
    c.create("/from-rust", "hello apache", CreateMode::Persistent)
        .await;
    c.create("/from-rust/child", "", CreateMode::Persistent)
        .await;
    c.set("/from-rust", "hello again", 0).await;
    let ours = c.get("/from-rust", false).await.stat();
    h.stop().await.unwrap();

    let java = tests::apache::ApacheServer::start_on(dir.path(), &[]).expect("apache starts");
    let port = java.port();
    let mut a = RawClient::connect(format!("127.0.0.1:{port}").parse().unwrap()).await;
    let got = a.get("/from-rust", false).await;
    assert_eq!(got.data().as_deref(), Some(&b"hello again"[..]));
    assert_eq!(got.stat(), ours);
    assert_eq!(
        a.children("/from-rust", false).await.children(),
        vec!["child".to_string()]
    );
    java.stop();
}
