//! Disk trouble: a txn log fdatasync that fails (injected through the storage layer with
//! `zk_server::testkit::fail_txn_log_syncs_under`) is logged as an ERROR naming the file
//! and errno, and no client ever gets an OK for a write that is not durable: a
//! standalone server closes its clients' connections instead of answering, and an
//! ensemble member stops acknowledging, so a write lacking a durable quorum is never
//! answered. In-process `zk_server::testkit` servers.

mod log_capture;

use std::time::Duration;

use log_capture::{log, log_text};
use zk_client::{Acl, CreateMode};
use zk_server::testkit::{fail_txn_log_syncs_under, Ensemble, TestServer};
use zk_server::zab::PeerState;

const EIO: i32 = 5;

/// The ERROR lines about disk trouble with a txn log under `dir`.
fn disk_errors(dir: &std::path::Path) -> Vec<String> {
    let text = log_text();
    text.lines()
        .filter(|l| l.contains("ERROR") && l.contains("disk trouble"))
        .filter(|l| l.contains(&dir.display().to_string()))
        .map(str::to_string)
        .collect()
}

async fn wait_for_errors(dir: &std::path::Path) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let e = disk_errors(dir);
        if !e.is_empty() || tokio::time::Instant::now() >= deadline {
            return e;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_never_acknowledges_a_write_its_fsync_failed() {
    let _ = log();
    let s = TestServer::start().await.expect("server");
    let c = tests::client::connect(&s.connect_string(), Duration::from_secs(10)).await;
    c.create("/before", b"x", &Acl::open_unsafe(), CreateMode::Persistent)
        .await
        .expect("a write while the disk is fine");
    let dir = s.server_config().data_log_dir.clone();
    fail_txn_log_syncs_under(&dir, EIO);
    let r = tokio::time::timeout(
        Duration::from_secs(10),
        c.create("/lost", b"x", &Acl::open_unsafe(), CreateMode::Persistent),
    )
    .await;
    assert!(
        !matches!(r, Ok(Ok(_))),
        "a write whose fsync failed was acknowledged: {r:?}"
    );
    // The server stops serving (Apache's shuts down), and tells its owner.
    tokio::time::timeout(Duration::from_secs(10), s.handle().failed())
        .await
        .expect("the handle reports the failure");
    assert!(s.handle().has_failed());
    let errors = wait_for_errors(&dir).await;
    let line = errors.first().expect("an ERROR line about the failed sync");
    assert!(
        line.contains("fsync txn log") && line.contains("/log."),
        "{line}"
    );
    assert!(line.contains("errno 5"), "{line}");
    // Later writes are refused too, a new session (a txn itself) included: the log
    // stays unusable until a restart.
    let r = tokio::time::timeout(
        Duration::from_secs(5),
        zk_client::Client::builder(&s.connect_string())
            .session_timeout(Duration::from_secs(4))
            .connect(),
    )
    .await;
    assert!(
        !matches!(r, Ok(Ok(_))),
        "a session was created on a disk that cannot sync"
    );
    // Nor is any handshake answered (a read-only one needs no txn): the server
    // answers nobody any more.
    let hello = zk_proto::ConnectRequest {
        timeout: 4000,
        passwd: vec![0u8; 16].into(),
        read_only: Some(true),
        ..Default::default()
    };
    let r = tests::raw::RawClient::handshake(s.addr(), hello).await;
    assert!(r.is_err(), "a failed server answered a handshake");
    zk_server::testkit::heal_txn_log_syncs_under(&dir);
    s.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_whose_fsync_fails_stop_acknowledging() {
    let _ = log();
    let root = tempfile::tempdir().expect("temp dir");
    let ens = Ensemble::start_on_disk(3, root.path())
        .await
        .expect("ensemble");
    let leader = ens
        .wait_for_leader(Duration::from_secs(15))
        .await
        .expect("leader");
    let (f1, f2) = ((leader + 1) % 3, (leader + 2) % 3);
    let addr = ens.client_addr(leader).expect("leader").to_string();
    let c = tests::client::connect(&addr, Duration::from_secs(10)).await;
    c.create("/p", b"", &Acl::open_unsafe(), CreateMode::Persistent)
        .await
        .expect("a write while every disk is fine");

    // One follower's disk fails: the leader and the other follower are a durable
    // quorum, so writes go on; the failing member says why it stopped acking.
    let d1 = root.path().join(format!("member-{f1}"));
    fail_txn_log_syncs_under(&d1, EIO);
    c.create("/p/a", b"x", &Acl::open_unsafe(), CreateMode::Persistent)
        .await
        .expect("a quorum is durable without the failing follower");
    let errors = wait_for_errors(&d1).await;
    let line = errors
        .first()
        .expect("an ERROR line from the failing member");
    assert!(line.contains("errno 5") && line.contains("/log."), "{line}");

    // It left the ensemble (crash-stop): it serves no client any more.
    wait_not_serving(&ens, f1).await;

    // The second follower's disk fails too: only the leader's log is durable, which is
    // no quorum, so the write must never be answered OK.
    let d2 = root.path().join(format!("member-{f2}"));
    fail_txn_log_syncs_under(&d2, EIO);
    let r = tokio::time::timeout(
        Duration::from_secs(4),
        c.create("/p/b", b"x", &Acl::open_unsafe(), CreateMode::Persistent),
    )
    .await;
    assert!(
        !matches!(r, Ok(Ok(_))),
        "a write durable on one member of three was acknowledged: {r:?}"
    );
    assert!(!wait_for_errors(&d2).await.is_empty());
    zk_server::testkit::heal_txn_log_syncs_under(&d1);
    zk_server::testkit::heal_txn_log_syncs_under(&d2);
}

/// Waits until member `i` reports no serving role (it left the ensemble).
async fn wait_not_serving(ens: &Ensemble, i: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let st = ens.status(i).expect("member");
        if !st.serving && st.state == PeerState::Looking {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "member {i} still in its role: {st:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The last zxid in the txn logs under `dir`.
fn last_logged(dir: &std::path::Path) -> i64 {
    let v2 = dir.join("version-2");
    std::fs::read_dir(&v2)
        .expect("version-2")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("log."))
        .filter_map(|e| {
            let scan = zk_server::storage::txn_log::scan(&e.path(), false).ok()?;
            scan.entries.last().map(|t| t.entry.header.zxid)
        })
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_fsync_fails_leaves_and_the_others_elect_a_leader_and_commit() {
    let _ = log();
    let root = tempfile::tempdir().expect("temp dir");
    let ens = Ensemble::start_on_disk(3, root.path())
        .await
        .expect("ensemble");
    let leader = ens
        .wait_for_leader(Duration::from_secs(15))
        .await
        .expect("leader");
    let others: Vec<usize> = (0..3).filter(|i| *i != leader).collect();
    let hosts = others
        .iter()
        .map(|i| ens.client_addr(*i).expect("member").to_string())
        .collect::<Vec<_>>()
        .join(",");
    let c = tests::client::connect(&hosts, Duration::from_secs(10)).await;
    c.create("/p", b"", &Acl::open_unsafe(), CreateMode::Persistent)
        .await
        .expect("a write while every disk is fine");

    let dl = root.path().join(format!("member-{leader}"));
    let before = last_logged(&dl);
    fail_txn_log_syncs_under(&dl, EIO);
    // Writes keep being retried until they commit: the first ones may meet the leader
    // failing, later ones the election; a new leader among the two others commits them.
    let acl = Acl::open_unsafe();
    for i in 0..10 {
        let path = format!("/p/n{i}");
        // A retried create that had committed before the connection dropped finds its node.
        tests::client::retry(
            "a write around the leader's failure",
            Duration::from_secs(30),
            || async {
                match c.create(&path, b"x", &acl, CreateMode::Persistent).await {
                    Err(e) if e.code() == Some(zk_client::ErrorCode::NodeExists) => {
                        Ok(path.clone())
                    }
                    r => r,
                }
            },
        )
        .await;
    }
    // The failed leader said why it left, naming its directory and the cause...
    let errors = wait_for_errors(&dl).await;
    assert!(
        errors
            .iter()
            .any(|l| l.contains("errno 5") && l.contains("/log.")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|l| l.contains("stops being leader") && l.contains("leaves the ensemble")),
        "{errors:?}"
    );
    // ...and dropped its role; another member leads.
    wait_not_serving(&ens, leader).await;
    // (The failed member still runs, so `wait_for_leader`, which waits for every running
    // member to serve, would not do.)
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let next = loop {
        if let Some(l) = ens.leader().filter(|l| *l != leader) {
            break l;
        }
        assert!(tokio::time::Instant::now() < deadline, "no new leader");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_ne!(next, leader);
    for i in 10..20 {
        c.create(&format!("/p/n{i}"), b"x", &acl, CreateMode::Persistent)
            .await
            .expect("the new leader commits");
    }
    let kids = c.get_children("/p", false).await.expect("children");
    assert_eq!(kids.len(), 20);
    // The failed member never made another txn durable (its log stops where the failing
    // sync began), so it acknowledged none, and it stays out of every role.
    let new_epoch = zk_server::zab::zxid::epoch_of(
        c.exists("/p/n19", false)
            .await
            .expect("exists")
            .expect("node")
            .mzxid,
    );
    let logged = last_logged(&dl);
    assert!(logged >= before);
    assert!(
        zk_server::zab::zxid::epoch_of(logged) < new_epoch,
        "the failed member logged {logged:#x}, in the new leader's epoch {new_epoch:#x}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!ens.status(leader).expect("member").serving);
    zk_server::testkit::heal_txn_log_syncs_under(&dl);
}
