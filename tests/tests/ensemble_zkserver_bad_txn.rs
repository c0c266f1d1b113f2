//! A faulty leader sends a txn that does not decode (through the test kit's
//! `Ensemble::leader_proposes_raw`). As Apache's Learner, each follower decodes the txn
//! before logging it, leaves that leader with an ERROR naming the leader, the zxid and the
//! decode error, and never logs it: once the faulty leader is gone the others serve, and
//! each of them restarts from its own txn log (one that held the txn could not). In-process
//! `zk_server::testkit::Ensemble` with its txn logs on disk.

mod log_capture;

use std::time::Duration;

use bytes::Bytes;
use log_capture::{log, log_text};
use zk_client::{Acl, Client, CreateMode};
use zk_server::testkit::Ensemble;
use zk_server::zab::zxid::hex;

const T: Duration = Duration::from_secs(10);

async fn connect(hosts: &str) -> Client {
    tests::client::connect(hosts, T).await
}

/// The ERROR line of follower `sid` leaving leader `leader` over txn `zxid`, once it is
/// in the log.
async fn left_the_leader(sid: usize, leader: usize, zxid: i64) -> Option<String> {
    let needle = format!(
        "learner {sid}: leader {leader} sent an undecodable txn {}",
        hex(zxid)
    );
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let line = log_text()
            .lines()
            .find(|l| l.contains("ERROR") && l.contains(&needle))
            .map(str::to_string);
        if line.is_some() || tokio::time::Instant::now() >= deadline {
            return line;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Creates `path` through `c`, retrying while the session moves between members.
async fn create(c: &Client, path: &str) {
    let deadline = tokio::time::Instant::now() + T;
    loop {
        match c
            .create(path, b"v", &Acl::open_unsafe(), CreateMode::Persistent)
            .await
        {
            Ok(_) => return,
            Err(e) if e.is_retryable() && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(e) => panic!("create {path}: {e}"),
        }
    }
}

/// Member `i` serves every node in `paths` (after a sync, so it caught up).
async fn holds(ens: &Ensemble, i: usize, paths: &[String]) {
    let c = connect(&ens.client_addr(i).expect("member").to_string()).await;
    c.sync("/").await.expect("sync");
    for p in paths {
        assert!(
            c.exists(p, false).await.expect("exists").is_some(),
            "member {i} lacks {p}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_refuse_an_undecodable_txn_unlogged_and_restart_from_their_logs() {
    let _ = log();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut ens = Ensemble::start_on_disk(3, dir.path())
        .await
        .expect("ensemble");
    let faulty = ens.wait_for_leader(T).await.expect("leader");
    let c = connect(&ens.connect_string()).await;
    create(&c, "/before").await;

    let zxid = ens
        .leader_proposes_raw(Bytes::from_static(b"not a txn"))
        .await
        .expect("the leader proposes it");
    let followers: Vec<usize> = (0..3).filter(|i| *i != faulty).collect();
    for &f in &followers {
        let line = left_the_leader(f + 1, faulty + 1, zxid).await;
        let line = line.unwrap_or_else(|| {
            panic!(
                "follower {} never left leader {} over {}:\n{}",
                f + 1,
                faulty + 1,
                hex(zxid),
                log_text()
            )
        });
        // The decoder's own words: 9 bytes are no TxnHeader.
        assert!(
            line.contains("(Proposal while Broadcast): truncated input"),
            "no decode error in {line}"
        );
    }

    // Without the faulty leader the two others elect one of them and take writes.
    ens.kill(faulty);
    let leader = ens.wait_for_leader(T).await.expect("a new leader");
    assert!(followers.contains(&leader));
    create(&c, "/after").await;

    // Neither logged the bad txn: each restarts from its own log, in turn, and serves
    // everything acknowledged.
    let other = followers.iter().copied().find(|f| *f != leader).unwrap();
    for i in [other, leader] {
        ens.kill(i);
        ens.restart(i)
            .await
            .unwrap_or_else(|e| panic!("member {} does not restart: {e}", i + 1));
        ens.wait_for_leader(T)
            .await
            .expect("leader after a restart");
        create(&c, &format!("/restarted-{i}")).await;
    }
    let restarted = [
        "/before".to_string(),
        "/after".to_string(),
        format!("/restarted-{other}"),
        format!("/restarted-{leader}"),
    ];
    for i in [other, leader] {
        holds(&ens, i, &restarted).await;
    }
}
