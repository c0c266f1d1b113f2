//! In-process ensembles over loopback sockets (the embedded test-ensemble API):
//! election, sync, broadcast, leader loss, leader isolation, observers, and restarted
//! servers catching up from their disk by DIFF or SNAP.

use std::time::Duration;

use bytes::Bytes;
use zk_server::testkit::quorum_ensemble::TestEnsemble;
use zk_server::zab::zxid::epoch_of;
use zk_server::zab::{PeerState, Sid, Zxid};

const T: Duration = Duration::from_secs(20);

async fn write(ens: &TestEnsemble, leader: Sid, n: usize, tag: &str) -> Zxid {
    let mut last = 0;
    for i in 0..n {
        last = ens
            .propose(leader, Bytes::from(format!("{tag}{i}")))
            .await
            .expect("leader proposes");
    }
    last
}

fn same_everywhere(ens: &TestEnsemble, count: usize) {
    let sids = ens.sids();
    let reference = ens.replica(sids[0]).unwrap().applied();
    assert_eq!(reference.len(), count);
    for s in sids {
        assert_eq!(ens.replica(s).unwrap().applied(), reference, "server {s}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_peers_elect_replicate_fail_over_and_catch_up() {
    let mut ens = TestEnsemble::start(3, 0, |_| {}).await.unwrap();
    let leader = ens.wait_for_leader(T, None).await.expect("leader");
    assert_eq!(ens.status(leader).unwrap().state, PeerState::Leading);
    let z = write(&ens, leader, 50, "a").await;
    assert!(ens.wait_applied(z, T).await);
    same_everywhere(&ens, 50);

    // Kill the leader: the other two elect a new one in a later epoch and keep going.
    ens.kill(leader);
    let second = ens
        .wait_for_leader(T, Some(leader))
        .await
        .expect("new leader");
    let z2 = write(&ens, second, 30, "b").await;
    assert!(epoch_of(z2) > epoch_of(z), "new epoch");
    assert!(ens.wait_applied(z2, T).await);

    // The old leader restarts from its disk and catches up as a follower (DIFF), without
    // disturbing the leader.
    ens.restart(leader).await.unwrap();
    assert_eq!(ens.wait_for_leader(T, None).await, Some(second));
    let z3 = write(&ens, second, 10, "c").await;
    assert!(ens.wait_applied(z3, T).await);
    same_everywhere(&ens, 90);
}

/// A follower misses `missed` txns while the leader keeps only 20 in memory.
async fn restart_after_missing(missed: usize, txn_log_sync: bool) {
    let mut ens = TestEnsemble::start(3, 0, |c| {
        c.committed_log_size = 20;
        c.txn_log_sync = txn_log_sync;
    })
    .await
    .unwrap();
    let leader = ens.wait_for_leader(T, None).await.expect("leader");
    write(&ens, leader, 5, "a").await;
    let follower = ens.sids().into_iter().find(|s| *s != leader).unwrap();
    // The 5 commits needed only the other follower: wait until this one logged them too, so
    // that it comes back with a zxid the leader's log holds (with none it would come back at
    // zxid 0, which no log holds, and get a SNAP, as from Apache).
    logged_at_least(&ens, follower, 5).await;
    ens.kill(follower);
    let z = write(&ens, leader, missed, "b").await;
    assert!(ens.wait_applied(z, T).await);
    ens.restart(follower).await.unwrap();
    assert_eq!(ens.wait_for_leader(T, None).await, Some(leader));
    let z = write(&ens, leader, 5, "c").await;
    assert!(ens.wait_applied(z, T).await);
    same_everywhere(&ens, missed + 10);
    // A follower applies a commit once a quorum logged the txn, which need not include
    // itself yet (as Apache's): its own disk thread may still be appending the last batch.
    logged_at_least(&ens, follower, missed + 10).await;
    assert_eq!(ens.replica(follower).unwrap().logged(), missed + 10);
    let snaps = ens.replica(follower).unwrap().snapshots_installed();
    if txn_log_sync {
        assert_eq!(snaps, 0, "a DIFF from the leader's log, not a SNAP");
    } else {
        assert_eq!(snaps, 1, "SNAP without txn-log sync");
    }
}

/// Waits (up to `T`) until `sid`'s own log holds `n` txns.
async fn logged_at_least(ens: &TestEnsemble, sid: Sid, n: usize) {
    let replica = ens.replica(sid).expect("replica");
    let deadline = tokio::time::Instant::now() + T;
    while replica.logged() < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "server {sid} logged {} of {n} txns",
            replica.logged()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_that_missed_more_than_the_committed_log_gets_a_snapshot() {
    restart_after_missing(100, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_that_missed_thousands_of_txns_gets_a_diff_from_the_log() {
    restart_after_missing(2000, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolated_leader_steps_down_and_rejoins_after_heal_with_observer() {
    let mut ens = TestEnsemble::start(3, 1, |_| {}).await.unwrap();
    let leader = ens.wait_for_leader(T, None).await.expect("leader");
    assert_eq!(ens.status(4).unwrap().state, PeerState::Observing);
    let z = write(&ens, leader, 20, "a").await;
    assert!(ens.wait_applied(z, T).await);

    ens.isolate(leader);
    let second = ens
        .wait_for_leader(T, Some(leader))
        .await
        .expect("majority elects");
    // The isolated leader lost its quorum and stopped leading.
    let deadline = tokio::time::Instant::now() + T;
    while ens.status(leader).unwrap().state == PeerState::Leading {
        assert!(
            tokio::time::Instant::now() < deadline,
            "old leader never stepped down"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ens
        .propose(leader, Bytes::from_static(b"lost"))
        .await
        .is_err());
    let z2 = write(&ens, second, 20, "b").await;
    assert!(ens.wait_applied(z2, T).await);

    ens.heal();
    assert_eq!(ens.wait_for_leader(T, None).await, Some(second));
    let z3 = write(&ens, second, 5, "c").await;
    assert!(ens.wait_applied(z3, T).await);
    same_everywhere(&ens, 45);
}

/// Group commit: with a slow "fsync" (5 ms per append), 400 concurrent proposals share
/// syncs on every member instead of costing one each, and every txn still reaches every
/// member once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_proposals_share_log_syncs() {
    let ens = TestEnsemble::start(3, 0, |_| {}).await.unwrap();
    let leader = ens.wait_for_leader(T, None).await.expect("leader");
    for s in ens.sids() {
        ens.replica(s)
            .unwrap()
            .set_sync_delay(Duration::from_millis(5));
    }
    let before: Vec<usize> = ens
        .sids()
        .iter()
        .map(|s| ens.replica(*s).unwrap().syncs())
        .collect();
    let n = 400;
    let proposals = (0..n).map(|i| ens.propose(leader, Bytes::from(format!("g{i}"))));
    let zxids: Vec<Zxid> = futures::future::join_all(proposals)
        .await
        .into_iter()
        .map(|r| r.expect("proposed"))
        .collect();
    let last = *zxids.iter().max().unwrap();
    assert!(ens.wait_applied(last, T).await);
    same_everywhere(&ens, n);
    for (i, s) in ens.sids().iter().enumerate() {
        let syncs = ens.replica(*s).unwrap().syncs() - before[i];
        assert!(
            syncs * 4 < n,
            "server {s}: {syncs} log syncs for {n} concurrent proposals"
        );
    }
}
