//! How ensemble members store and ship their history (zk-client against in-process
//! `zk_server::testkit::Ensemble`s):
//!
//! - group commit: many concurrent writes share log syncs on the leader and followers;
//! - a follower that missed more txns than the in-memory committed log holds is synced by
//!   DIFF read from the leader's txn log on disk;
//! - SNAP ships the serialized database (nodes, ACLs, sessions), the learner writes it as
//!   its snapshot and restarts from it, and serves as soon as it is installed (not after
//!   initLimit ticks);
//! - periodic snapshots (snapCount) bound what a member keeps in memory, and a restart
//!   recovers from snapshot + log;
//! - autopurge (snapRetainCount, purgeInterval) bounds what a member keeps on disk, in
//!   process and from zoo.cfg, without losing what restarts and lagging learners need.

use std::path::Path;
use std::time::Duration;

use tests::zk_processes::{Options, ProcessEnsemble};
use zk_client::{Acl, Client, CreateMode, Stat};
use zk_server::storage::Autopurge;
use zk_server::testkit::Ensemble;

const T: Duration = Duration::from_secs(10);

async fn connect(hosts: &str) -> Client {
    tokio::time::timeout(
        T,
        Client::builder(hosts)
            .session_timeout(Duration::from_secs(10))
            .connect(),
    )
    .await
    .expect("connect in time")
    .expect("connects")
}

async fn client_on(ens: &Ensemble, i: usize) -> Client {
    connect(&ens.client_addr(i).expect("member exists").to_string()).await
}

/// The children of `path` with their data and Stat, and the Stat of `path` itself, as
/// member `i` has them after a sync.
async fn children_on(ens: &Ensemble, i: usize, path: &str) -> (Vec<(String, Vec<u8>, Stat)>, Stat) {
    let c = client_on(ens, i).await;
    c.sync(path).await.expect("sync");
    let mut kids = c.get_children(path, false).await.expect("children");
    kids.sort();
    let mut out = Vec::new();
    for k in kids {
        let (d, st) = c
            .get_data(&format!("{path}/{k}"), false)
            .await
            .expect("data");
        out.push((k, d.to_vec(), st));
    }
    let (_, parent) = c.get_data(path, false).await.expect("parent");
    c.close().await.expect("close");
    (out, parent)
}

/// The children of `path` with their data, as member `i` has them after a sync.
async fn tree_on(ens: &Ensemble, i: usize, path: &str) -> Vec<(String, Vec<u8>)> {
    let (kids, _) = children_on(ens, i, path).await;
    kids.into_iter().map(|(k, d, _)| (k, d)).collect()
}

/// `n` creates under `/p` through `c`, all in flight at once.
async fn create_many(c: &Client, prefix: &str, n: usize) {
    let acl = Acl::open_unsafe();
    let writes = (0..n).map(|i| {
        let c = c.clone();
        let acl = acl.clone();
        async move {
            c.create(
                &format!("/p/{prefix}{i:05}"),
                format!("v{i}").as_bytes(),
                &acl,
                CreateMode::Persistent,
            )
            .await
        }
    });
    for r in futures::future::join_all(writes).await {
        r.expect("create");
    }
}

/// Kills and restarts every member, then checks each one recovered `/p` as `expected`
/// and that the ensemble takes writes again.
async fn restart_all_and_check(ens: &mut Ensemble, expected: &[(String, Vec<u8>)]) {
    for i in 0..3 {
        ens.kill(i);
    }
    for i in 0..3 {
        ens.restart(i).await.expect("restart");
    }
    let leader = ens.wait_for_leader(T).await.expect("a leader again");
    for i in 0..3 {
        assert_eq!(tree_on(ens, i, "/p").await, expected, "member {i}");
    }
    let c = client_on(ens, leader).await;
    c.create("/p/z", b"", &Acl::open_unsafe(), CreateMode::Persistent)
        .await
        .expect("writes go on");
}

fn follower_of(leader: usize) -> usize {
    (leader + 1) % 3
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_share_log_syncs_on_every_member() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ens = Ensemble::start_on_disk(3, dir.path())
        .await
        .expect("starts");
    let leader = ens.wait_for_leader(T).await.expect("a leader");
    let c = client_on(&ens, follower_of(leader)).await;
    c.create("/p", b"", &Acl::open_unsafe(), CreateMode::Persistent)
        .await
        .expect("parent");
    // A slow disk (5 ms per sync) makes the batching independent of this machine's disk.
    for i in 0..3 {
        ens.disk(i)
            .unwrap()
            .set_append_delay(Duration::from_millis(5));
    }
    let before: Vec<_> = (0..3).map(|i| ens.disk(i).unwrap().stats()).collect();
    let n = 600;
    create_many(&c, "g", n).await;
    let all = tree_on(&ens, leader, "/p").await;
    assert_eq!(all.len(), n);
    for (i, b) in before.iter().enumerate() {
        assert_eq!(tree_on(&ens, i, "/p").await, all, "member {i}");
        let s = ens.disk(i).unwrap().stats();
        let appends = s.appends - b.appends;
        let syncs = s.fdatasyncs - b.fdatasyncs;
        println!("member {i}: {n} writes, {appends} log appends, {syncs} fdatasyncs");
        assert!(
            appends * 4 < n as u64,
            "member {i}: {appends} log appends for {n} concurrent writes"
        );
        assert!(syncs <= appends + 2, "member {i}: {syncs} fdatasyncs");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_beyond_the_in_memory_window_is_read_from_the_leaders_log() {
    let dir = tempfile::tempdir().expect("temp dir");
    // The leader keeps only the last 10 committed proposals in memory.
    let mut ens = Ensemble::start_tuned(3, Some(dir.path()), |q| q.committed_log_size = 10)
        .await
        .expect("starts");
    let (leader, lagging, c) = with_parent(&ens).await;
    ens.kill(lagging);
    create_many(&c, "d", 300).await;

    ens.restart(lagging).await.expect("restart");
    assert_eq!(ens.wait_for_leader(T).await, Some(leader));
    assert_eq!(
        tree_on(&ens, lagging, "/p").await,
        tree_on(&ens, leader, "/p").await
    );
    assert_eq!(tree_on(&ens, lagging, "/p").await.len(), 300);
    // 300 txns behind, 10 in memory: only the txn log on disk could DIFF it.
    assert_eq!(ens.disk(lagging).unwrap().stats().snapshots_installed, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snap_ships_the_database_and_the_learner_restarts_from_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (mut ens, leader, lagging, c) = lagging_needs_snap(Some(dir.path())).await;
    create_many(&c, "s", 50).await;
    // An ephemeral (its session travels in the snapshot) and a node readable by all
    // but writable by nobody (its ACL travels in the ACL cache).
    let owner = client_on(&ens, leader).await;
    owner
        .create("/p/eph", b"e", &Acl::open_unsafe(), CreateMode::Ephemeral)
        .await
        .expect("ephemeral");
    c.create("/p/ro", b"r", &Acl::read_unsafe(), CreateMode::Persistent)
        .await
        .expect("read-only node");

    ens.restart(lagging).await.expect("restart");
    assert_eq!(ens.wait_for_leader(T).await, Some(leader));
    let expected = tree_on(&ens, leader, "/p").await;
    assert_eq!(expected.len(), 52);
    assert_eq!(tree_on(&ens, lagging, "/p").await, expected);
    assert_eq!(ens.disk(lagging).unwrap().stats().snapshots_installed, 1);
    let r = client_on(&ens, lagging).await;
    r.sync("/p").await.expect("sync");
    let eph = r.exists("/p/eph", false).await.unwrap().expect("ephemeral");
    assert_eq!(eph.ephemeral_owner, owner.session_id());
    let (acl, _) = r.get_acl("/p/ro").await.expect("acl");
    assert_eq!(acl, Acl::read_unsafe());
    r.close().await.expect("close");

    // The snapshot is on its disk, in Apache's layout.
    let snaps: Vec<String> =
        std::fs::read_dir(dir.path().join(format!("member-{lagging}/version-2")))
            .expect("data dir")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with("snapshot.") && n != "snapshot.0")
            .collect();
    assert_eq!(snaps.len(), 1, "{snaps:?}");

    // Restarted again (the others keep going), it starts from that snapshot plus what it
    // logged since: no second SNAP.
    c.create(
        "/p/after",
        b"a",
        &Acl::open_unsafe(),
        CreateMode::Persistent,
    )
    .await
    .expect("write after the SNAP");
    ens.kill(lagging);
    ens.restart(lagging).await.expect("restart");
    assert_eq!(ens.wait_for_leader(T).await, Some(leader));
    assert_eq!(
        tree_on(&ens, lagging, "/p").await,
        tree_on(&ens, leader, "/p").await
    );
    assert_eq!(ens.disk(lagging).unwrap().stats().snapshots_installed, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snap_serialized_while_the_leader_keeps_committing_converges() {
    // The leader walks its tree for a SNAP on another thread while it goes on committing
    // (a fuzzy snapshot, as Apache's); the learner replays what is queued behind the SNAP,
    // some of which the walk may already have seen, and must end identical: data and
    // every Stat field (versions, cversion, pzxid).
    let (mut ens, leader, lagging, c) = lagging_needs_snap(None).await;
    // Enough data that the walk takes many slices.
    let acl = Acl::open_unsafe();
    let big = vec![b'x'; 2048];
    let writes = (0..3000).map(|i| {
        let (c, acl, big) = (c.clone(), acl.clone(), big.clone());
        async move {
            c.create(&format!("/p/s{i:05}"), &big, &acl, CreateMode::Persistent)
                .await
        }
    });
    for r in futures::future::join_all(writes).await {
        r.expect("create");
    }

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (c, stop) = (c.clone(), stop.clone());
        tokio::spawn(async move {
            let acl = Acl::open_unsafe();
            let mut i = 0usize;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let (target, fresh) = (format!("/p/s{:05}", (i * 7) % 3000), format!("/p/w{i}"));
                let set = c.set_data(&target, b"new", None);
                let create = c.create(&fresh, b"w", &acl, CreateMode::Persistent);
                let (set, create) = futures::join!(set, create);
                set.expect("setData under load");
                create.expect("create under load");
                if i >= 3 {
                    c.delete(&format!("/p/w{}", i - 3), None)
                        .await
                        .expect("delete under load");
                }
                i += 1;
            }
            i
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    ens.restart(lagging).await.expect("restart");
    assert_eq!(ens.wait_for_leader(T).await, Some(leader));
    // Keep writing a while after it synced, then compare.
    let deadline = tokio::time::Instant::now() + T;
    while ens.disk(lagging).unwrap().stats().snapshots_installed == 0 {
        assert!(tokio::time::Instant::now() < deadline, "no SNAP installed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let rounds = load.await.expect("load task");
    assert!(rounds > 10, "the load ran ({rounds} rounds)");
    let expected = children_on(&ens, leader, "/p").await;
    assert_eq!(children_on(&ens, lagging, "/p").await, expected);
    assert_eq!(ens.disk(lagging).unwrap().stats().snapshots_installed, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_synced_by_snap_serves_well_before_init_limit_ticks() {
    // Production-like timing: initLimit x tickTime = 20 s. A SNAP-synced follower must
    // ack NEWLEADER and get UPTODATE as soon as the snapshot is installed, not sit until
    // the leader gives up on it after initLimit ticks and resyncs it by DIFF.
    let dir = tempfile::tempdir().expect("temp dir");
    let mut ens = Ensemble::start_tuned(3, Some(dir.path()), |q| {
        q.tick_time = 2000;
        q.init_limit = 10;
        q.sync_limit = 5;
        q.committed_log_size = 10;
        q.txn_log_sync = false;
    })
    .await
    .expect("starts");
    let (leader, lagging, c) = with_parent(&ens).await;
    ens.kill(lagging);
    create_many(&c, "s", 50).await;
    c.create(
        "/p/last",
        b"latest",
        &Acl::open_unsafe(),
        CreateMode::Persistent,
    )
    .await
    .expect("last write");
    // Idle from here on: nothing the leader broadcasts can unblock a stuck learner.
    ens.restart(lagging).await.expect("restart");
    let took = time_to_serve(&ens, lagging, "/p/last", b"latest", Duration::from_secs(5))
        .await
        .unwrap_or_else(|| {
            panic!(
                "member {lagging} not serving 5 s after its restart (initLimit x tickTime \
                 = 20 s): {:?}",
                ens.status(lagging)
            )
        });
    println!("SNAP-synced follower serving after {took:?}");
    assert_eq!(ens.leader(), Some(leader));
    assert_eq!(ens.disk(lagging).unwrap().stats().snapshots_installed, 1);
}

/// Polls until member `i` answers `srvr` as a follower and a client pinned to it (no
/// sync: what the member itself holds) reads `want` at `path`; returns how long that
/// took, or `None` when `within` passes first.
async fn time_to_serve(
    ens: &Ensemble,
    i: usize,
    path: &str,
    want: &[u8],
    within: Duration,
) -> Option<Duration> {
    let start = tokio::time::Instant::now();
    let deadline = start + within;
    let port = ens.client_addr(i)?.port();
    let hosts = ens.client_addr(i)?.to_string();
    while tokio::time::Instant::now() < deadline {
        let srvr = tokio::task::spawn_blocking(move || tests::apache::four_letter(port, "srvr"))
            .await
            .expect("four-letter task");
        if srvr.contains("Mode: follower") {
            let read = async {
                let c = Client::builder(&hosts)
                    .session_timeout(Duration::from_secs(10))
                    .connect()
                    .await
                    .ok()?;
                let got = c.get_data(path, false).await.ok().map(|(d, _)| d);
                let _ = c.close().await;
                got
            };
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if let Ok(Some(d)) = tokio::time::timeout(left, read).await {
                if d[..] == *want {
                    return Some(start.elapsed());
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn periodic_snapshots_bound_memory_and_restarts_recover_from_them() {
    // In-memory disks: without snapshots they would hold every txn ever logged.
    let mut ens = Ensemble::start(3).await.expect("starts");
    for i in 0..3 {
        ens.disk(i).unwrap().set_snap_count(100);
    }
    let leader = ens.wait_for_leader(T).await.expect("a leader");
    let c = client_on(&ens, follower_of(leader)).await;
    c.create("/p", b"", &Acl::open_unsafe(), CreateMode::Persistent)
        .await
        .expect("parent");
    for round in 0..10 {
        create_many(&c, &format!("m{round}-"), 100).await;
    }
    let expected = tree_on(&ens, leader, "/p").await;
    assert_eq!(expected.len(), 1000);
    for i in 0..3 {
        assert_eq!(tree_on(&ens, i, "/p").await, expected);
        let s = ens.disk(i).unwrap().stats();
        assert!(s.snapshots_taken >= 5, "member {i}: {s:?}");
        // About snapCount at most (a batch may overshoot): not the 1,000 txns logged.
        assert!(s.txns_in_memory < 200, "member {i}: {s:?}");
    }

    // Every member restarts from its snapshot plus the txns after it.
    restart_all_and_check(&mut ens, &expected).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_disk_members_snapshot_per_snap_count_and_recover() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut ens = Ensemble::start_on_disk(3, dir.path())
        .await
        .expect("starts");
    for i in 0..3 {
        ens.disk(i).unwrap().set_snap_count(100);
    }
    let leader = ens.wait_for_leader(T).await.expect("a leader");
    let c = client_on(&ens, leader).await;
    c.create("/p", b"", &Acl::open_unsafe(), CreateMode::Persistent)
        .await
        .expect("parent");
    for round in 0..4 {
        create_many(&c, &format!("k{round}-"), 100).await;
    }
    // Changes and deletes in flight while the snapshots are walked (they are fuzzy: a
    // restart replays the log over them).
    let names: Vec<String> = (0..4)
        .flat_map(|r| (0..100).map(move |i| format!("/p/k{r}-{i:05}")))
        .collect();
    let sets = names.iter().map(|p| c.set_data(p, b"changed", None));
    for r in futures::future::join_all(sets).await {
        r.expect("set");
    }
    let deletes = names.iter().step_by(3).map(|p| c.delete(p, None));
    for r in futures::future::join_all(deletes).await {
        r.expect("delete");
    }
    let expected = tree_on(&ens, leader, "/p").await;
    assert_eq!(expected.len(), 400 - 134);
    assert!(expected.iter().all(|(_, d)| d == b"changed"));
    for i in 0..3 {
        assert_eq!(tree_on(&ens, i, "/p").await, expected);
    }
    for i in 0..3 {
        ens.kill(i);
    }
    for i in 0..3 {
        let v2 = dir.path().join(format!("member-{i}/version-2"));
        let snaps = std::fs::read_dir(&v2)
            .expect("data dir")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with("snapshot.") && n != "snapshot.0")
            .count();
        assert!(snaps >= 2, "member {i}: {snaps} snapshots");
    }
    for i in 0..3 {
        ens.restart(i).await.expect("restart");
    }
    ens.wait_for_leader(T).await.expect("a leader again");
    for i in 0..3 {
        assert_eq!(tree_on(&ens, i, "/p").await, expected, "member {i}");
    }
}

/// Zxids of the `<prefix>.<hex>` files in `dir`, ascending.
fn zxids_in(dir: &Path, prefix: &str) -> Vec<i64> {
    let mut z: Vec<i64> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter_map(|n| {
                    let hex = n.strip_prefix(prefix)?.strip_prefix('.')?;
                    i64::from_str_radix(hex, 16).ok()
                })
                .collect()
        })
        .unwrap_or_default();
    z.sort();
    z
}

/// Waits until `snap_dir` holds exactly `keep` snapshots (purges run on a timer and after
/// snapshots complete) and the logs in `log_dir` are exactly those a restart from the
/// oldest kept snapshot needs: the newest log starting at or before it, and every later
/// one. Polled, so a snapshot completing between the two listings cannot fool it.
async fn assert_purged_to(snap_dir: &Path, log_dir: &Path, keep: usize, what: &str) {
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let snaps = zxids_in(snap_dir, "snapshot");
        let logs = zxids_in(log_dir, "log");
        let least = snaps.first().copied().unwrap_or(-1);
        let older = logs.iter().filter(|z| **z <= least).count();
        if snaps.len() == keep && least > 0 && older == 1 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: snapshots {snaps:x?}, logs {logs:x?}: want {keep} snapshots (not \
             snapshot.0) and one log at or before the oldest"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An on-disk ensemble snapshotting every 40 txns and purging every 100 ms down to 3
/// snapshots, with a short in-memory committed log (so a lagging follower is synced from
/// the disk only), and `/p` created: (ensemble, leader, a follower, a client of the leader).
async fn purging_ensemble(dir: &Path) -> (Ensemble, usize, usize, Client) {
    let ens = Ensemble::start_tuned(3, Some(dir), |q| q.committed_log_size = 10)
        .await
        .expect("starts");
    ens.set_snap_count(40);
    ens.set_autopurge(Autopurge {
        snap_retain_count: 3,
        interval: Duration::from_millis(100),
    });
    let (leader, lagging, c) = with_parent(&ens).await;
    (ens, leader, lagging, c)
}

/// Waits for a leader, connects to it and creates `/p`: (leader, a follower, the client).
async fn with_parent(ens: &Ensemble) -> (usize, usize, Client) {
    let leader = ens.wait_for_leader(T).await.expect("a leader");
    let c = client_on(ens, leader).await;
    c.create("/p", b"", &Acl::open_unsafe(), CreateMode::Persistent)
        .await
        .expect("parent");
    (leader, follower_of(leader), c)
}

/// An ensemble (on `dir`, or in memory) whose leader never DIFFs from its txn log
/// (Apache's snapshotSizeFactor < 0) and keeps a short committed log, with `/p` created
/// and the follower `lagging` killed: a few dozen txns later it must get a SNAP.
async fn lagging_needs_snap(dir: Option<&Path>) -> (Ensemble, usize, usize, Client) {
    let mut ens = Ensemble::start_tuned(3, dir, |q| {
        q.committed_log_size = 10;
        q.txn_log_sync = false;
    })
    .await
    .expect("starts");
    let (leader, lagging, c) = with_parent(&ens).await;
    ens.kill(lagging);
    (ens, leader, lagging, c)
}

fn member_dir(root: &Path, i: usize) -> std::path::PathBuf {
    root.join(format!("member-{i}/version-2"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autopurge_keeps_snap_retain_count_snapshots_and_what_restarts_need() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (mut ens, leader, lagging, c) = purging_ensemble(dir.path()).await;
    // Away while the others go through many snapshots and purges: the logs it would
    // need for a DIFF are gone, so it must get a SNAP.
    ens.kill(lagging);
    for round in 0..10 {
        create_many(&c, &format!("a{round}-"), 40).await;
    }
    let expected = tree_on(&ens, leader, "/p").await;
    assert_eq!(expected.len(), 400);
    for i in (0..3).filter(|i| *i != lagging) {
        let s = ens.disk(i).unwrap().stats();
        assert!(s.snapshots_taken >= 8, "member {i}: {s:?}");
        let v2 = member_dir(dir.path(), i);
        assert_purged_to(&v2, &v2, 3, &format!("member {i}")).await;
        let s = ens.disk(i).unwrap().stats();
        assert!(s.purges >= 2 && s.files_purged >= 8, "member {i}: {s:?}");
    }

    ens.restart(lagging).await.expect("restart");
    assert_eq!(ens.wait_for_leader(T).await, Some(leader));
    assert_eq!(tree_on(&ens, lagging, "/p").await, expected);
    assert_eq!(ens.disk(lagging).unwrap().stats().snapshots_installed, 1);

    // Every member restarts from what autopurge left.
    restart_all_and_check(&mut ens, &expected).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_behind_by_less_than_the_kept_logs_still_gets_a_diff() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (mut ens, leader, lagging, c) = purging_ensemble(dir.path()).await;
    for round in 0..6 {
        create_many(&c, &format!("b{round}-"), 40).await;
    }
    ens.kill(lagging);
    // 30 txns behind: more than the leader keeps in memory, fewer than the two snapshot
    // intervals (at least 20 txns each) its kept logs span.
    create_many(&c, "late", 30).await;
    let v2 = member_dir(dir.path(), leader);
    assert_purged_to(&v2, &v2, 3, "leader").await;

    ens.restart(lagging).await.expect("restart");
    assert_eq!(ens.wait_for_leader(T).await, Some(leader));
    let expected = tree_on(&ens, leader, "/p").await;
    assert_eq!(expected.len(), 270);
    assert_eq!(tree_on(&ens, lagging, "/p").await, expected);
    assert_eq!(
        ens.disk(lagging).unwrap().stats().snapshots_installed,
        0,
        "synced by a DIFF read from the leader's kept logs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_from_zoo_cfg_autopurge_their_data_and_log_dirs() {
    let mut o = Options::members(3);
    o.extra_cfg = "snapCount=40\nautopurge.snapRetainCount=3\nautopurge.purgeInterval=1\n".into();
    let mut ens = ProcessEnsemble::start(o).await.expect("ensemble");
    let leader = ens.wait_for_leader(T * 2).await.expect("a leader");
    let c = connect(&ens.connect_string()).await;
    c.create("/p", b"", &Acl::open_unsafe(), CreateMode::Persistent)
        .await
        .expect("parent");
    for round in 0..8 {
        create_many(&c, &format!("c{round}-"), 40).await;
    }
    c.sync("/p").await.expect("sync");
    let expected = c.get_children("/p", false).await.expect("children").len();
    assert_eq!(expected, 320);
    // The process members keep snapshots in dataDir and logs in dataLogDir.
    for i in 0..3 {
        let m = ens.root().join(format!("m{}", i + 1));
        assert_purged_to(
            &m.join("data/version-2"),
            &m.join("log/version-2"),
            3,
            &format!("member {i}"),
        )
        .await;
    }
    // A member killed and restarted recovers everything from what was kept.
    let follower = follower_of(leader);
    ens.kill9(follower);
    ens.restart(follower).expect("restart");
    ens.wait_for_leader(T * 2).await.expect("a leader again");
    let r = connect(&ens.client_addr(follower).to_string()).await;
    r.sync("/p").await.expect("sync");
    assert_eq!(
        r.get_children("/p", false).await.expect("children").len(),
        expected
    );
}
