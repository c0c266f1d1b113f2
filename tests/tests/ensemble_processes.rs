//! Real `zk-server` processes on loopback as 3- and 5-member ensembles
//! (`tests::zk_processes`), with zk-client sessions:
//! - kill -9 of the leader under a write load: a new leader, the sessions keep their ids
//!   and ephemerals, and every acknowledged write is on every surviving member;
//! - the leader partitioned from the others by fault-injecting proxies: the majority
//!   elects and writes, the old leader stops serving writes, and after the heal it follows
//!   and holds the same data (its unacknowledged write is gone);
//! - a follower that missed thousands of txns syncs by DIFF, one that missed more than
//!   the committed log (with txn-log sync off) by SNAP; both end equal to the leader;
//! - a follower whose version-2 was wiped serves within seconds of its SNAP even with
//!   initLimit x tickTime = 20 s (it must not wait for the leader to drop it);
//! - 5 members: two killed (the leader among them) still serve, a third leaves no quorum
//!   (writes fail), one restarted serves again;
//! - a TLS client held while its member rejoins keeps its certificate's x509 identity.
//!
//! The tests run one at a time (the machine may have few cores; they time elections).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tests::zk_processes::{Options, ProcessEnsemble};
use zk_client::{Acl, Client, CreateMode, Error};

const T: Duration = Duration::from_secs(20);

/// One test at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Session timeouts up to 10 s (the default max is 20 ticks = 4 s at tickTime 200).
const CFG: &str = "maxSessionTimeout=10000\n";

fn options(n: usize) -> Options {
    let mut o = Options::members(n);
    o.extra_cfg = CFG.into();
    o
}

async fn connect(hosts: &str) -> Client {
    tests::client::connect(hosts, Duration::from_secs(8)).await
}

/// Retries `f` while the ensemble has no quorum (connection loss, timeouts).
async fn retry<F, Fut, V>(what: &str, f: F) -> V
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<V, Error>>,
{
    tests::client::retry(what, T, f).await
}

/// A client of member `i` only.
async fn member_client(ens: &ProcessEnsemble, i: usize) -> Client {
    connect(&ens.client_addr(i).to_string()).await
}

/// Everything under `parent` as member `i` serves it after a sync: (child, data).
async fn contents(ens: &ProcessEnsemble, i: usize, parent: &str) -> Vec<(String, Vec<u8>)> {
    let c = member_client(ens, i).await;
    retry("sync", || c.sync(parent)).await;
    let mut names = retry("children", || c.get_children(parent, false)).await;
    names.sort();
    let reads = names.iter().map(|n| {
        let c = c.clone();
        let path = format!("{parent}/{n}");
        async move { c.get_data(&path, false).await.map(|(d, _)| d.to_vec()) }
    });
    let datas = futures::future::join_all(reads).await;
    let out = names
        .into_iter()
        .zip(datas)
        .map(|(n, d)| {
            let d = d.unwrap_or_else(|e| panic!("member {i}: reading {parent}/{n}: {e}"));
            (n, d)
        })
        .collect();
    let _ = c.close().await;
    out
}

/// Writes recorded by the load: paths created and acknowledged, and for each writer the
/// last acknowledged value of its counter node.
#[derive(Default)]
struct Acked {
    created: BTreeSet<String>,
    counters: Vec<u64>,
    /// (sent, acknowledged) of every acknowledged write.
    times: Vec<(Instant, Instant)>,
}

/// Writer `k`: creates `/load/w{k}-{i}` and sets `/load/c{k}` to `i`, one request at a
/// time, until `stop`; failures (no quorum for a moment) are retried with the next `i`.
async fn writer(k: usize, c: Client, acked: Arc<Mutex<Acked>>, stop: Arc<AtomicBool>) {
    let acl = Acl::open_unsafe();
    let counter = format!("/load/c{k}");
    let mut i: u64 = 0;
    while !stop.load(Ordering::SeqCst) {
        i += 1;
        let path = format!("/load/w{k}-{i:06}");
        let sent = Instant::now();
        let r = c
            .create(
                &path,
                i.to_string().as_bytes(),
                &acl,
                CreateMode::Persistent,
            )
            .await;
        match r {
            Ok(_) => {
                let mut a = acked.lock().unwrap();
                a.created
                    .insert(path.trim_start_matches("/load/").to_string());
                a.times.push((sent, Instant::now()));
            }
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        }
        let sent = Instant::now();
        if c.set_data(&counter, i.to_string().as_bytes(), None)
            .await
            .is_ok()
        {
            let mut a = acked.lock().unwrap();
            a.counters[k] = i;
            a.times.push((sent, Instant::now()));
        }
    }
}

/// Kills the leader of an `n`-member ensemble under the write load of four sessions;
/// returns the kill → first acknowledged write time.
async fn kill_leader_under_load(n: usize) -> Duration {
    let mut ens = ProcessEnsemble::start(options(n)).await.expect("ensemble");
    let leader = ens.wait_for_leader(T).await.expect("a leader");
    let acl = Acl::open_unsafe();

    let writers = 4;
    let mut clients = Vec::new();
    for _ in 0..writers {
        clients.push(connect(&ens.connect_string()).await);
    }
    let c0 = clients[0].clone();
    retry("parent", || async {
        match c0.create("/load", b"", &acl, CreateMode::Persistent).await {
            Err(Error::NodeExists { .. }) => Ok(String::new()),
            r => r,
        }
    })
    .await;
    for k in 0..writers {
        c0.create(&format!("/load/c{k}"), b"0", &acl, CreateMode::Persistent)
            .await
            .expect("counter");
    }
    // Every session holds an ephemeral node.
    let mut sessions = Vec::new();
    for (k, c) in clients.iter().enumerate() {
        c.create(&format!("/eph-{k}"), b"", &acl, CreateMode::Ephemeral)
            .await
            .expect("ephemeral");
        sessions.push(c.session_id());
    }

    let acked = Arc::new(Mutex::new(Acked {
        counters: vec![0; writers],
        ..Acked::default()
    }));
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = clients
        .iter()
        .enumerate()
        .map(|(k, c)| tokio::spawn(writer(k, c.clone(), acked.clone(), stop.clone())))
        .collect();

    tokio::time::sleep(Duration::from_millis(800)).await;
    let before = acked.lock().unwrap().created.len();
    assert!(before > 0, "no write acknowledged before the kill");
    let killed_at = Instant::now();
    ens.kill9(leader);
    let survivors: Vec<usize> = (0..n).filter(|i| *i != leader).collect();
    let new_leader = ens
        .wait_for_leader_among(&survivors, T)
        .await
        .expect("a new leader");
    assert_ne!(new_leader, leader);
    let elected_in = killed_at.elapsed();

    // Keep writing until well after the failover.
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let after = acked
            .lock()
            .unwrap()
            .times
            .iter()
            .filter(|(s, _)| *s > killed_at)
            .count();
        if after >= 100 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "writes did not resume after the leader was killed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.expect("writer");
    }
    let acked = Arc::try_unwrap(acked)
        .ok()
        .expect("writers done")
        .into_inner()
        .unwrap();
    let first_write = acked
        .times
        .iter()
        .filter(|(s, _)| *s >= killed_at)
        .map(|(_, a)| *a - killed_at)
        .min()
        .expect("a write after the kill");
    println!(
        "{n} members: leader killed -> new leader serving in {elected_in:?}, first acknowledged write after {first_write:?} ({} creates acknowledged, {before} before the kill)",
        acked.created.len()
    );

    // The sessions survived with their ephemerals.
    for (k, c) in clients.iter().enumerate() {
        assert_eq!(c.session_id(), sessions[k], "session {k} changed");
        let path = format!("/eph-{k}");
        let st = retry("ephemeral", || c.exists(&path, false))
            .await
            .unwrap_or_else(|| panic!("ephemeral of session {k} lost"));
        assert_eq!(st.ephemeral_owner, sessions[k]);
    }

    // Every acknowledged write is on every surviving member, which all agree.
    let mut reference: Option<Vec<(String, Vec<u8>)>> = None;
    for &i in &survivors {
        let data = contents(&ens, i, "/load").await;
        let names: BTreeSet<&str> = data.iter().map(|(n, _)| n.as_str()).collect();
        let lost: Vec<&String> = acked
            .created
            .iter()
            .filter(|p| !names.contains(p.as_str()))
            .collect();
        assert!(
            lost.is_empty(),
            "member {i} lost acknowledged creates: {lost:?}"
        );
        for (k, last) in acked.counters.iter().enumerate() {
            let name = format!("c{k}");
            let v: u64 = data
                .iter()
                .find(|(n, _)| *n == name)
                .and_then(|(_, d)| std::str::from_utf8(d).ok()?.parse().ok())
                .expect("counter value");
            assert!(
                v >= *last,
                "member {i}: counter {k} is {v}, acknowledged {last}"
            );
        }
        match &reference {
            None => reference = Some(data),
            Some(r) => assert!(*r == data, "members disagree on /load"),
        }
    }
    for c in clients {
        let _ = c.close().await;
    }
    first_write
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_leader_under_write_load_three_members() {
    let _g = SERIAL.lock().await;
    let mut times = Vec::new();
    for _ in 0..3 {
        times.push(kill_leader_under_load(3).await);
    }
    times.sort();
    println!("3 members, kill -9 leader -> first acknowledged write: {times:?}");
    // Wall-clock bound only against hangs; the figures are printed above.
    assert!(times.iter().all(|t| *t < Duration::from_secs(10)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_leader_under_write_load_five_members() {
    let _g = SERIAL.lock().await;
    let t = kill_leader_under_load(5).await;
    assert!(t < Duration::from_secs(10));
}

/// Creates `count` children `n{i:05}` of `parent` through `c`, many in flight at once.
async fn create_many(c: &Client, parent: &str, count: usize) {
    let acl = Acl::open_unsafe();
    for chunk in (0..count).collect::<Vec<_>>().chunks(250) {
        let writes = chunk.iter().map(|i| {
            let path = format!("{parent}/n{i:05}");
            let acl = acl.clone();
            async move {
                c.create(
                    &path,
                    i.to_string().as_bytes(),
                    &acl,
                    CreateMode::Persistent,
                )
                .await
            }
        });
        for r in futures::future::join_all(writes).await {
            r.expect("create while the quorum is up");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitioned_leader_stops_serving_and_rejoins_after_heal() {
    let _g = SERIAL.lock().await;
    let mut o = options(3);
    o.proxied = true;
    let mut ens = ProcessEnsemble::start(o).await.expect("ensemble");
    let old = ens.wait_for_leader(T).await.expect("a leader");
    let others: Vec<usize> = (0..3).filter(|i| *i != old).collect();
    let acl = Acl::open_unsafe();

    let c = connect(&ens.connect_string()).await;
    let session = c.session_id();
    c.create("/part", b"", &acl, CreateMode::Persistent)
        .await
        .expect("parent");
    c.create("/part-eph", b"", &acl, CreateMode::Ephemeral)
        .await
        .expect("ephemeral");
    c.create("/part/before", b"b", &acl, CreateMode::Persistent)
        .await
        .expect("write before the partition");
    let on_old = member_client(&ens, old).await;

    ens.partition(old);
    let cut_at = Instant::now();
    // A write through the old leader gets no quorum: never acknowledged.
    let r = tokio::time::timeout(
        Duration::from_secs(10),
        on_old.create("/part/on-old", b"x", &acl, CreateMode::Persistent),
    )
    .await;
    assert!(
        !matches!(r, Ok(Ok(_))),
        "a partitioned leader acknowledged a write: {r:?} after {:?}",
        cut_at.elapsed()
    );
    drop(on_old);

    // The majority elects a new leader; the old one stops serving.
    let new = ens
        .wait_for_leader_among(&others, T)
        .await
        .expect("the majority elects a leader");
    let deadline = tokio::time::Instant::now() + T;
    while ens.mode(old).await.is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the partitioned leader kept serving"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "partition: majority leader serving {:?} after the cut",
        cut_at.elapsed()
    );

    // The session moves to the majority and writes go on.
    let mut acked = Vec::new();
    for i in 0..50 {
        let path = format!("/part/during-{i:02}");
        retry("write in the majority", || async {
            match c.create(&path, b"d", &acl, CreateMode::Persistent).await {
                Err(Error::NodeExists { .. }) => Ok(String::new()),
                r => r,
            }
        })
        .await;
        acked.push(format!("during-{i:02}"));
    }
    assert_eq!(c.session_id(), session);

    ens.heal();
    let leader = ens.wait_for_leader(T).await.expect("one ensemble again");
    assert_eq!(leader, new, "the old leader disturbed the new one");
    let after = retry("write after the heal", || {
        c.create("/part/after", b"a", &acl, CreateMode::Persistent)
    })
    .await;
    assert_eq!(after, "/part/after");

    // Same data everywhere; the unacknowledged write of the old leader is gone.
    let reference = contents(&ens, new, "/part").await;
    for i in 0..3 {
        let data = contents(&ens, i, "/part").await;
        assert_eq!(data, reference, "member {i} differs from the leader");
    }
    let names: BTreeSet<&str> = reference.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        !names.contains("on-old"),
        "an unacknowledged write survived"
    );
    for p in acked.iter().map(String::as_str).chain(["before", "after"]) {
        assert!(names.contains(p), "acknowledged write {p} lost");
    }
    assert_eq!(c.session_id(), session);
    let st = retry("ephemeral", || c.exists("/part-eph", false))
        .await
        .expect("the session's ephemeral survived");
    assert_eq!(st.ephemeral_owner, session);
    let _ = c.close().await;
}

/// Kills a follower, writes `missed` txns, restarts it; returns its log of that run
/// after checking it holds what the leader holds.
async fn follower_catch_up(ens: &mut ProcessEnsemble, parent: &str, missed: usize) -> String {
    let leader = ens.wait_for_leader(T).await.expect("a leader");
    let follower = (leader + 1) % ens.len();
    let up: Vec<String> = (0..ens.len())
        .filter(|i| *i != follower)
        .map(|i| ens.client_addr(i).to_string())
        .collect();
    let c = connect(&up.join(",")).await;
    c.create(parent, b"", &Acl::open_unsafe(), CreateMode::Persistent)
        .await
        .expect("parent");
    ens.kill9(follower);
    create_many(&c, parent, missed).await;
    ens.restart(follower).expect("restart");
    assert_eq!(ens.wait_for_leader(T).await, Some(leader));
    let on_leader = contents(ens, leader, parent).await;
    assert_eq!(on_leader.len(), missed);
    assert_eq!(
        contents(ens, follower, parent).await,
        on_leader,
        "the restarted follower differs from the leader"
    );
    assert_eq!(ens.zxid(follower).await, ens.zxid(leader).await);
    let _ = c.close().await;
    ens.last_run_log(follower)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_missing_thousands_of_txns_syncs_by_diff() {
    let _g = SERIAL.lock().await;
    let mut ens = ProcessEnsemble::start(options(3)).await.expect("ensemble");
    // 3000 txns: far more than the committed log in memory (500); the leader reads the
    // rest back from its txn log.
    let log = follower_catch_up(&mut ens, "/diff", 3000).await;
    assert!(
        log.contains("(DIFF)"),
        "no DIFF in the follower's log:\n{log}"
    );
    assert!(!log.contains("(SNAP)"), "unexpected SNAP:\n{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_missing_more_than_the_committed_log_syncs_by_snap() {
    let _g = SERIAL.lock().await;
    let mut o = options(3);
    // A committed log of 100 txns and no txn-log sync: older learners need a SNAP.
    o.props = vec![
        "-Dzookeeper.commitLogCount=100".into(),
        "-Dzookeeper.snapshotSizeFactor=-1".into(),
    ];
    let mut ens = ProcessEnsemble::start(o).await.expect("ensemble");
    let log = follower_catch_up(&mut ens, "/snap", 600).await;
    assert!(
        log.contains("(SNAP)"),
        "no SNAP in the follower's log:\n{log}"
    );
    // Within the committed log it is a DIFF again.
    let log = follower_catch_up(&mut ens, "/small", 40).await;
    assert!(
        log.contains("(DIFF)"),
        "no DIFF in the follower's log:\n{log}"
    );
    assert!(!log.contains("(SNAP)"), "unexpected SNAP:\n{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_with_wiped_data_serves_soon_after_its_snap() {
    let _g = SERIAL.lock().await;
    // Production timing: initLimit x tickTime = 20 s, so a learner stuck until the leader
    // gives up on it cannot pass.
    let mut o = options(3);
    o.tick_time = 2000;
    o.init_limit = 10;
    o.sync_limit = 5;
    o.extra_cfg = "maxSessionTimeout=40000\n".into();
    let mut ens = ProcessEnsemble::start(o).await.expect("ensemble");
    let leader = ens.wait_for_leader(T).await.expect("a leader");
    let follower = (leader + 1) % ens.len();
    let c = member_client(&ens, leader).await;
    c.create("/wiped", b"", &Acl::open_unsafe(), CreateMode::Persistent)
        .await
        .expect("parent");
    create_many(&c, "/wiped", 1000).await;
    c.create(
        "/wiped-last",
        b"latest",
        &Acl::open_unsafe(),
        CreateMode::Persistent,
    )
    .await
    .expect("last write");

    ens.kill9(follower);
    let member = ens.root().join(format!("m{}", follower + 1));
    for dir in ["data", "log"] {
        let v2 = member.join(dir).join("version-2");
        if v2.exists() {
            std::fs::remove_dir_all(&v2).expect("wipe version-2");
        }
    }
    let started = Instant::now();
    ens.restart(follower).expect("restart");
    // Serving: `srvr` says follower and a client pinned to it reads the latest write
    // from its own database (no sync).
    let bound = Duration::from_secs(5);
    let deadline = started + bound;
    let took = loop {
        if ens.mode(follower).await.as_deref() == Some("follower") {
            let addr = ens.client_addr(follower).to_string();
            let read = async {
                let r = Client::builder(&addr)
                    .session_timeout(Duration::from_secs(8))
                    .connect()
                    .await
                    .ok()?;
                let got = r.get_data("/wiped-last", false).await.ok();
                let _ = r.close().await;
                got
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if let Ok(Some((d, _))) = tokio::time::timeout(left, read).await {
                if &d[..] == b"latest" {
                    break started.elapsed();
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "member {follower} not serving {bound:?} after its restart with an empty \
             version-2 (initLimit x tickTime = 20 s); its log:\n{}",
            ens.last_run_log(follower)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    println!("follower with wiped data serving after {took:?}");
    let log = ens.last_run_log(follower);
    assert!(
        log.contains("(SNAP)"),
        "no SNAP in the follower's log:\n{log}"
    );
    assert!(
        !log.contains("(DIFF)"),
        "synced twice (SNAP, then DIFF after being dropped):\n{log}"
    );
    assert_eq!(
        contents(&ens, follower, "/wiped").await.len(),
        1000,
        "the follower holds the whole tree"
    );
    let _ = c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_members_serve_with_two_down_and_stop_without_quorum() {
    let _g = SERIAL.lock().await;
    let mut ens = ProcessEnsemble::start(options(5)).await.expect("ensemble");
    let leader = ens.wait_for_leader(T).await.expect("a leader");
    let acl = Acl::open_unsafe();
    let c = connect(&ens.connect_string()).await;
    let session = c.session_id();
    c.create("/five", b"", &acl, CreateMode::Persistent)
        .await
        .expect("parent");
    c.create("/five-eph", b"", &acl, CreateMode::Ephemeral)
        .await
        .expect("ephemeral");
    c.create("/five/a", b"", &acl, CreateMode::Persistent)
        .await
        .expect("write with five");

    // The leader and a follower die: three of five still serve.
    let follower = (leader + 1) % 5;
    ens.kill9(leader);
    ens.kill9(follower);
    let three: Vec<usize> = (0..5).filter(|i| *i != leader && *i != follower).collect();
    let new = ens
        .wait_for_leader_among(&three, T)
        .await
        .expect("three of five elect");
    retry("write with three", || {
        c.create("/five/b", b"", &acl, CreateMode::Persistent)
    })
    .await;

    // A third dies (the new leader): no quorum, no writes.
    let hosts: Vec<String> = three
        .iter()
        .map(|i| ens.client_addr(*i).to_string())
        .collect();
    let probe = tokio::time::timeout(
        T,
        Client::builder(&hosts.join(","))
            .session_timeout(Duration::from_secs(8))
            .request_timeout(Duration::from_secs(1))
            .connect(),
    )
    .await
    .expect("connect in time")
    .expect("connects");
    ens.kill9(new);
    let two: Vec<usize> = three.iter().copied().filter(|i| *i != new).collect();
    let deadline = tokio::time::Instant::now() + T;
    for &i in &two {
        while ens.mode(i).await.is_some() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "member {i} serves without a quorum"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let r = tokio::time::timeout(
        Duration::from_secs(5),
        probe.create("/five/none", b"", &acl, CreateMode::Persistent),
    )
    .await;
    assert!(
        !matches!(r, Ok(Ok(_))),
        "a write succeeded without a quorum"
    );
    drop(probe);

    // One comes back: three of five serve again, the session is still there.
    ens.restart(leader).expect("restart");
    let mut running = two.clone();
    running.push(leader);
    ens.wait_for_leader_among(&running, T)
        .await
        .expect("quorum again");
    retry("write after the restart", || {
        c.create("/five/c", b"", &acl, CreateMode::Persistent)
    })
    .await;
    assert_eq!(c.session_id(), session);
    let st = retry("ephemeral", || c.exists("/five-eph", false))
        .await
        .expect("the session's ephemeral survived");
    assert_eq!(st.ephemeral_owner, session);
    let reference = contents(&ens, running[0], "/five").await;
    for &i in &running {
        assert_eq!(contents(&ens, i, "/five").await, reference, "member {i}");
    }
    let names: BTreeSet<&str> = reference.iter().map(|(n, _)| n.as_str()).collect();
    for p in ["a", "b", "c"] {
        assert!(names.contains(p), "acknowledged write /five/{p} lost");
    }
    let _ = c.close().await;
}

/// A TLS client with a certificate connecting to a member while it rejoins (cut off, then
/// healed) is held until the member serves, and its session carries the certificate's
/// `x509` identity: the member rebuilds its processor over the synced database meanwhile,
/// and the connection's transport identity must survive that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_tls_handshake_keeps_its_certificate_identity() {
    let _one = SERIAL.lock().await;
    let pki = tests::tls::Pki::new();
    let mut o = options(3);
    o.proxied = true;
    o.extra_cfg.push_str(&format!(
        "client.portUnification=true\nssl.keyStore.location={}\nssl.trustStore.location={}\nssl.clientAuth=want\n",
        pki.path("server.pem").display(),
        pki.path("ca.pem").display()
    ));
    let mut ens = ProcessEnsemble::start(o).await.expect("ensemble");
    let leader = ens.wait_for_leader(T).await.expect("a leader");
    let cut = (leader + 1) % 3;
    let not_serving = "This ZooKeeper instance is not currently serving requests\n";
    ens.partition(cut);
    let deadline = Instant::now() + T;
    while ens.four_letter(cut, "srvr").await != not_serving {
        assert!(Instant::now() < deadline, "the cut member kept serving");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let host = ens.client_addr(cut).to_string();
    let tls = pki.ca.client("alice");
    let connecting = tokio::spawn(async move {
        Client::builder(&host)
            .session_timeout(Duration::from_secs(10))
            .tls(tls)
            .connect()
            .await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    ens.heal();
    let c = tokio::time::timeout(T, connecting)
        .await
        .expect("connected in time")
        .expect("task")
        .expect("connected");
    let ids: Vec<String> = c
        .who_am_i()
        .await
        .expect("whoami")
        .into_iter()
        .filter(|i| i.auth_scheme == "x509")
        .map(|i| i.user)
        .collect();
    assert_eq!(ids, ["CN=alice,O=zk-rs"]);
    assert!(
        ens.log_text(cut)
            .contains("handshakes that waited for this member to serve"),
        "the member logs the held handshake"
    );
    c.close().await.expect("close");
}
