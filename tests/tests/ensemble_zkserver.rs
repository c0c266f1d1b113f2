//! zk-client against a 3-member in-process zk-server ensemble
//! (`zk_server::testkit::Ensemble`): writes through the leader and through followers,
//! reads on every member, an ephemeral node and a watch surviving the leader's death,
//! writes after re-election, and a restarted member catching up.

use std::time::Duration;

use zk_client::{Acl, Client, CreateMode, EventType};
use zk_server::testkit::Ensemble;

const T: Duration = Duration::from_secs(10);

async fn connect(hosts: &str) -> Client {
    tests::client::connect(hosts, Duration::from_secs(10)).await
}

/// What a fresh client on member `i` reads at `path` right after a sync (which goes
/// through the leader, so every write acknowledged before it is visible).
async fn seen_on(ens: &Ensemble, i: usize, path: &str) -> Vec<u8> {
    let addr = ens.client_addr(i).expect("member exists").to_string();
    let c = connect(&addr).await;
    c.sync(path).await.expect("sync");
    let (data, _) = c
        .get_data(path, false)
        .await
        .unwrap_or_else(|e| panic!("member {i} does not have {path} after a sync: {e}"));
    c.close().await.expect("close");
    data.to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_serve_clients_and_survive_the_leader() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let mut ens = Ensemble::start(3).await.expect("ensemble starts");
    let leader = ens.wait_for_leader(T).await.expect("a leader");
    let follower = (0..3).find(|i| *i != leader).expect("a follower");
    let acl = Acl::open_unsafe();

    // Writes through the leader and through a follower.
    let on_leader = connect(&ens.client_addr(leader).unwrap().to_string()).await;
    let on_follower = connect(&ens.client_addr(follower).unwrap().to_string()).await;
    on_leader
        .create("/via-leader", b"L", &acl, CreateMode::Persistent)
        .await
        .expect("create on the leader");
    on_follower
        .create("/via-follower", b"F", &acl, CreateMode::Persistent)
        .await
        .expect("create through a follower");
    // A follower client sees its own write at once, and a set through it.
    let (d, _) = on_follower.get_data("/via-follower", false).await.unwrap();
    assert_eq!(&d[..], b"F");
    let st = on_follower
        .set_data("/via-leader", b"L2", Some(0))
        .await
        .expect("set through a follower");
    assert_eq!(st.version, 1);

    // Every member has both.
    for i in 0..3 {
        assert_eq!(seen_on(&ens, i, "/via-leader").await, b"L2");
        assert_eq!(seen_on(&ens, i, "/via-follower").await, b"F");
    }

    // A client on every host, leader first: it holds an ephemeral and a watch.
    let mut hosts = vec![ens.client_addr(leader).unwrap().to_string()];
    hosts.extend(
        (0..3)
            .filter(|i| *i != leader)
            .map(|i| ens.client_addr(i).unwrap().to_string()),
    );
    let c = connect(&hosts.join(",")).await;
    let session = c.session_id();
    c.create("/eph", b"", &acl, CreateMode::Ephemeral)
        .await
        .expect("ephemeral");
    let (_, _, watch) = c.get_data_watched("/via-follower").await.expect("watch");

    ens.kill(leader);
    drop(on_leader);
    let new_leader = ens.wait_for_leader(T).await.expect("a new leader");
    assert_ne!(new_leader, leader);

    // The session moved with its ephemeral; writes go on.
    let deadline = tokio::time::Instant::now() + T;
    loop {
        match c.exists("/eph", false).await {
            Ok(Some(st)) => {
                assert_eq!(st.ephemeral_owner, session);
                break;
            }
            Ok(None) => panic!("the ephemeral node was lost with the leader"),
            Err(e) if tokio::time::Instant::now() >= deadline => panic!("no failover: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    assert_eq!(c.session_id(), session);
    c.create("/after", b"A", &acl, CreateMode::Persistent)
        .await
        .expect("write after re-election");

    // The watch survived: a change made elsewhere fires it.
    let other = (0..3).find(|i| *i != leader).unwrap();
    let w = connect(&ens.client_addr(other).unwrap().to_string()).await;
    w.set_data("/via-follower", b"F2", None)
        .await
        .expect("set after re-election");
    let ev = tokio::time::timeout(T, watch)
        .await
        .expect("watch fires in time")
        .expect("watch event");
    assert_eq!(ev.event_type, EventType::NodeDataChanged);
    assert_eq!(ev.path, "/via-follower");

    // The old leader comes back and catches up.
    ens.restart(leader).await.expect("restart");
    assert!(ens.wait_for_leader(T).await.is_some());
    assert_eq!(seen_on(&ens, leader, "/after").await, b"A");
    assert_eq!(seen_on(&ens, leader, "/via-follower").await, b"F2");

    // Closing the session removes its ephemeral everywhere.
    c.close().await.expect("close");
    let r = connect(&ens.client_addr(leader).unwrap().to_string()).await;
    r.sync("/eph").await.expect("sync");
    assert!(
        r.exists("/eph", false).await.expect("exists").is_none(),
        "ephemeral outlived its session"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_sessions_live_by_touches_and_expire_on_the_leader() {
    let mut ens = Ensemble::start(3).await.expect("ensemble starts");
    let leader = ens.wait_for_leader(T).await.expect("a leader");
    let follower = (0..3).find(|i| *i != leader).expect("a follower");
    let acl = Acl::open_unsafe();
    let c = tokio::time::timeout(
        T,
        Client::builder(&ens.client_addr(follower).unwrap().to_string())
            .session_timeout(Duration::from_millis(1000))
            .connect(),
    )
    .await
    .expect("connect in time")
    .expect("connects");
    c.create("/short", b"", &acl, CreateMode::Ephemeral)
        .await
        .expect("ephemeral through a follower");

    // Pipelined writes through the follower come back in order.
    c.create("/q", b"", &acl, CreateMode::Persistent)
        .await
        .expect("parent");
    let writes: Vec<_> = (0..50)
        .map(|i| {
            let c = c.clone();
            let acl = acl.clone();
            async move {
                c.create(
                    "/q/seq-",
                    format!("{i}").as_bytes(),
                    &acl,
                    CreateMode::PersistentSequential,
                )
                .await
            }
        })
        .collect();
    let paths = futures::future::join_all(writes).await;
    for (i, p) in paths.into_iter().enumerate() {
        assert_eq!(p.expect("sequential create"), format!("/q/seq-{i:010}"));
    }

    // Idle for three session timeouts: the follower's touches keep it alive on the leader.
    tokio::time::sleep(Duration::from_millis(3000)).await;
    assert_eq!(seen_on(&ens, leader, "/short").await, b"");

    // With its member gone and no other host to move to, the session expires on the
    // leader and its ephemeral node goes everywhere.
    ens.kill(follower);
    drop(c);
    let r = connect(&ens.client_addr(leader).unwrap().to_string()).await;
    let deadline = tokio::time::Instant::now() + T;
    while r.exists("/short", false).await.expect("exists").is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the session never expired"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_on_disk_recover_their_log_after_a_kill() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut ens = Ensemble::start_on_disk(3, dir.path())
        .await
        .expect("ensemble starts");
    ens.wait_for_leader(T).await.expect("a leader");
    let acl = Acl::open_unsafe();
    let c = connect(&ens.connect_string()).await;
    for i in 0..20 {
        c.create(&format!("/d{i}"), b"x", &acl, CreateMode::Persistent)
            .await
            .expect("create");
    }
    // Every member logged the txns in Apache's layout.
    for i in 0..3 {
        let logs = std::fs::read_dir(dir.path().join(format!("member-{i}/version-2")))
            .expect("version-2")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("log."))
            .count();
        assert!(logs >= 1, "member {i} has no txn log");
    }

    // Kill everyone, restart from disk only: the data and the epochs come back.
    for i in 0..3 {
        ens.kill(i);
    }
    for i in 0..3 {
        ens.restart(i).await.expect("restart");
    }
    assert!(ens.wait_for_leader(T).await.is_some());
    for i in 0..3 {
        assert_eq!(seen_on(&ens, i, "/d19").await, b"x");
    }
    let c = connect(&ens.connect_string()).await;
    c.create("/after-restart", b"y", &acl, CreateMode::Persistent)
        .await
        .expect("write after a full restart");
}
