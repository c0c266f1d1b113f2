//! The `mntr` keys that need a clock or count learner syncs, on an in-process on-disk
//! `zk_server::testkit::Ensemble`: they move when what they measure happens (Apache
//! 3.8's names; their place among Apache's keys is checked in `ensemble_members.rs` and
//! `server_four_letter.rs`).
//!
//! - every member times its election (`election_time`), and a forced election adds one;
//! - a write is fsynced on every member (`fsynctime`, `sync_processor_batch_size`) and a
//!   follower times its proposal and commit (`proposal_latency`,
//!   `commit_propagation_latency`);
//! - the leader counts learners synced by DIFF (`diff_count`) and by SNAP (`snap_count`).

use std::time::Duration;

use tests::apache::four_letter;
use zk_client::{Acl, Client, CreateMode};
use zk_server::testkit::Ensemble;

const T: Duration = Duration::from_secs(15);

fn port(ens: &Ensemble, i: usize) -> u16 {
    ens.client_addr(i).expect("member").port()
}

/// `mntr` of member `i` as a map.
async fn mntr(ens: &Ensemble, i: usize) -> std::collections::BTreeMap<String, i64> {
    let p = port(ens, i);
    let text = tokio::task::spawn_blocking(move || four_letter(p, "mntr"))
        .await
        .expect("four-letter task");
    text.lines()
        .filter_map(|l| l.split_once('\t'))
        .filter_map(|(k, v)| Some((k.to_string(), v.parse::<i64>().ok()?)))
        .collect()
}

async fn value(ens: &Ensemble, i: usize, key: &str) -> i64 {
    let m = mntr(ens, i).await;
    *m.get(key)
        .unwrap_or_else(|| panic!("member {i}: mntr lacks {key}: {m:?}"))
}

/// Waits until `key` on member `i` reaches at least `want`; returns the last value.
async fn wait_at_least(ens: &Ensemble, i: usize, key: &str, want: i64) -> i64 {
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let got = match ens.status(i).filter(|s| s.serving) {
            Some(_) => mntr(ens, i).await.get(key).copied().unwrap_or(-1),
            None => -1,
        };
        if got >= want || tokio::time::Instant::now() >= deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn connect(ens: &Ensemble, i: usize) -> Client {
    let addr = ens.client_addr(i).expect("member").to_string();
    tests::client::connect(&addr, Duration::from_secs(10)).await
}

async fn create_many(c: &Client, prefix: &str, n: usize) {
    for i in 0..n {
        c.create(
            &format!("/p/{prefix}{i:03}"),
            b"v",
            &Acl::open_unsafe(),
            CreateMode::Persistent,
        )
        .await
        .expect("create");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_timings_move_with_elections_writes_and_syncs() {
    let dir = tempfile::tempdir().expect("temp dir");
    // A short committed log and no DIFF from the txn log: a member that missed a few
    // dozen txns must be synced by SNAP.
    let mut ens = Ensemble::start_tuned(3, Some(dir.path()), |q| {
        q.committed_log_size = 10;
        q.txn_log_sync = false;
    })
    .await
    .expect("ensemble");
    let leader = ens.wait_for_leader(T).await.expect("leader");
    let (follower, lagging) = ((leader + 1) % 3, (leader + 2) % 3);
    for i in 0..3 {
        assert!(
            wait_at_least(&ens, i, "zk_cnt_election_time", 1).await >= 1,
            "member {i} timed its first election"
        );
    }
    // Both followers joined by DIFF (empty or not), none by SNAP.
    assert_eq!(wait_at_least(&ens, leader, "zk_diff_count", 2).await, 2);
    assert_eq!(value(&ens, leader, "zk_snap_count").await, 0);
    // Only the leader serves syncs.
    assert_eq!(value(&ens, follower, "zk_diff_count").await, 0);

    // A write: every member syncs its log; the follower times the txn's trip.
    let before_leader = mntr(&ens, leader).await;
    let before_follower = mntr(&ens, follower).await;
    let c = connect(&ens, leader).await;
    c.create("/p", b"", &Acl::open_unsafe(), CreateMode::Persistent)
        .await
        .expect("create /p");
    create_many(&c, "w", 5).await;
    let synced = |m: &std::collections::BTreeMap<String, i64>| m["zk_cnt_fsynctime"];
    let after_leader = mntr(&ens, leader).await;
    assert!(
        synced(&after_leader) > synced(&before_leader),
        "leader fsynctime: {} -> {}",
        synced(&before_leader),
        synced(&after_leader)
    );
    // Each sync made at least one txn durable.
    assert_eq!(
        after_leader["zk_cnt_sync_processor_batch_size"],
        after_leader["zk_cnt_fsynctime"]
    );
    assert!(
        after_leader["zk_sum_sync_processor_batch_size"]
            >= before_leader["zk_sum_sync_processor_batch_size"] + 6,
        "{after_leader:?}"
    );
    let want = synced(&before_follower) + 1;
    assert!(wait_at_least(&ens, follower, "zk_cnt_fsynctime", want).await >= want);
    let want = before_follower["zk_cnt_commit_propagation_latency"] + 6;
    assert!(wait_at_least(&ens, follower, "zk_cnt_commit_propagation_latency", want).await >= want);
    let f = mntr(&ens, follower).await;
    assert!(
        f["zk_cnt_proposal_latency"] >= before_follower["zk_cnt_proposal_latency"] + 6,
        "{f:?}"
    );
    assert!(f["zk_max_proposal_latency"] >= f["zk_min_proposal_latency"]);
    // The leader proposes; it neither receives proposals nor commits from a leader.
    assert_eq!(after_leader["zk_cnt_proposal_latency"], 0);
    assert_eq!(after_leader["zk_cnt_commit_propagation_latency"], 0);

    // A member that missed more than the committed log holds is synced by SNAP.
    ens.kill(lagging);
    create_many(&c, "s", 30).await;
    ens.restart(lagging).await.expect("restart");
    assert_eq!(wait_at_least(&ens, leader, "zk_snap_count", 1).await, 1);
    assert_eq!(value(&ens, leader, "zk_diff_count").await, 2);
    assert!(wait_at_least(&ens, lagging, "zk_cnt_election_time", 1).await >= 1);

    // A forced election: the survivors time another one.
    let before = value(&ens, follower, "zk_cnt_election_time").await;
    c.close().await.ok();
    ens.kill(leader);
    let deadline = tokio::time::Instant::now() + T;
    while ens.leader().is_none_or(|l| l == leader) {
        assert!(tokio::time::Instant::now() < deadline, "no new leader");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let got = wait_at_least(&ens, follower, "zk_cnt_election_time", before + 1).await;
    assert!(got > before, "election_time count {before} -> {got}");
    // srst starts every timing again.
    let p = port(&ens, follower);
    tokio::task::spawn_blocking(move || four_letter(p, "srst"))
        .await
        .unwrap();
    let m = mntr(&ens, follower).await;
    assert_eq!(m["zk_cnt_election_time"], 0);
    assert_eq!(m["zk_cnt_fsynctime"], 0);
}
