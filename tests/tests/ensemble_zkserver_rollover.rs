//! The 32-bit zxid counter running out (ZOOKEEPER-2789), with the counter started near
//! the limit through the test kit (`seed_leader_counter`, `seed_zxid_counter`; Apache has
//! no config key for it). A 3-member in-process ensemble must never issue counter
//! 0xffffffff nor carry into the epoch bits: it moves to epoch + 1, counter from 0, no
//! acknowledged write lost, and the pause is measured. A standalone server has no epochs:
//! like Apache's (`hzxid.incrementAndGet()`), its zxid simply carries on into the high bits.

use std::time::{Duration, Instant};

use zk_client::{Acl, Client, CreateMode};
use zk_proto::ErrorCode;
use zk_server::config::ServerConfig;
use zk_server::host::server::Server;
use zk_server::testkit::Ensemble;
use zk_server::zab::zxid::{counter_of, epoch_of, hex};

const T: Duration = Duration::from_secs(10);
/// Writes per test: the counter is seeded `LEFT` short of the limit.
const WRITES: usize = 40;
const LEFT: u32 = 12;
/// Concurrent write loops in the ensemble test.
const WRITERS: usize = 4;

async fn connect(hosts: &str) -> Client {
    tests::client::connect(hosts, Duration::from_secs(10)).await
}

/// One acknowledged create: its index, czxid and when the answer came.
struct Acked {
    i: usize,
    zxid: i64,
    at: Instant,
}

/// Creates `/roll/nNNN` for every index of `range` in turn, retrying connection trouble
/// (a create that turns out to exist was made by an attempt whose answer was lost: not
/// counted as acknowledged).
async fn write_range(c: &Client, range: std::ops::Range<usize>) -> Vec<Acked> {
    let acl = Acl::open_unsafe();
    let mut acked = Vec::new();
    for i in range {
        let path = format!("/roll/n{i:03}");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match c
                .create_with_stat(&path, b"v", &acl, CreateMode::Persistent)
                .await
            {
                Ok((_, st)) => {
                    acked.push(Acked {
                        i,
                        zxid: st.czxid,
                        at: Instant::now(),
                    });
                    break;
                }
                Err(e) if e.code() == Some(ErrorCode::NodeExists) => break,
                Err(e) if e.is_retryable() && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(5)).await
                }
                Err(e) => panic!("create {path}: {e}"),
            }
        }
    }
    acked
}

/// All `WRITES` creates, one after another.
async fn write_all(c: &Client) -> Vec<Acked> {
    write_range(c, 0..WRITES).await
}

/// All `WRITES` creates from `WRITERS` concurrent loops on one session (so proposals are
/// in flight when the counter runs out), sorted by zxid.
async fn write_concurrently(c: &Client) -> Vec<Acked> {
    let per = WRITES / WRITERS;
    let loops = (0..WRITERS).map(|w| write_range(c, w * per..(w + 1) * per));
    let mut acked: Vec<Acked> = futures::future::join_all(loops)
        .await
        .into_iter()
        .flatten()
        .collect();
    acked.sort_by_key(|a| a.zxid);
    acked
}

/// Zxids grow strictly and the epoch moves by exactly one. Returns the old epoch.
fn check_zxids(acked: &[Acked]) -> i64 {
    for w in acked.windows(2) {
        assert!(
            w[1].zxid > w[0].zxid,
            "zxids must grow: {} then {}",
            hex(w[0].zxid),
            hex(w[1].zxid)
        );
    }
    let first = epoch_of(acked.first().expect("writes acknowledged").zxid);
    let last = epoch_of(acked.last().expect("writes acknowledged").zxid);
    assert_eq!(last, first + 1, "one new epoch after the rollover");
    first
}

/// Time between the last answer to a write of epoch `old` and the first of the next.
fn pause(acked: &[Acked], old: i64) -> Duration {
    let last_old = acked
        .iter()
        .filter(|a| epoch_of(a.zxid) == old)
        .map(|a| a.at)
        .max();
    let first_new = acked
        .iter()
        .filter(|a| epoch_of(a.zxid) == old + 1)
        .map(|a| a.at)
        .min();
    let (Some(last_old), Some(first_new)) = (last_old, first_new) else {
        panic!("writes acknowledged in both epochs");
    };
    assert!(
        first_new > last_old,
        "an old-epoch write answered after the new epoch began"
    );
    first_new - last_old
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ensemble_rolls_into_a_new_epoch_without_losing_a_write() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let ens = Ensemble::start(3).await.expect("ensemble starts");
    ens.wait_for_leader(T).await.expect("a leader");
    let hosts: Vec<String> = (0..3)
        .map(|i| ens.client_addr(i).unwrap().to_string())
        .collect();
    let c = connect(&hosts.join(",")).await;
    tests::client::retry("create /roll", T, || async {
        match c
            .create("/roll", b"", &Acl::open_unsafe(), CreateMode::Persistent)
            .await
        {
            Err(e) if e.code() == Some(ErrorCode::NodeExists) => Ok(String::new()),
            r => r,
        }
    })
    .await;
    let seeded = ens
        .seed_leader_counter(u32::MAX - LEFT)
        .await
        .expect("the leader takes the seed");
    assert_eq!(counter_of(seeded), i64::from(u32::MAX - LEFT));

    let acked = write_concurrently(&c).await;
    let old = check_zxids(&acked);
    assert_eq!(epoch_of(seeded), old);
    // The leader never issues counter 0xffffffff: one more would carry into the epoch.
    for a in &acked {
        assert_ne!(
            counter_of(a.zxid),
            0xffff_ffff,
            "write {} got {}",
            a.i,
            hex(a.zxid)
        );
    }
    let new_counters: Vec<i64> = acked
        .iter()
        .filter(|a| epoch_of(a.zxid) == old + 1)
        .map(|a| counter_of(a.zxid))
        .collect();
    assert!(
        new_counters.iter().all(|n| *n < 1_000),
        "the new epoch counts from 0: {new_counters:?}"
    );
    let p = pause(&acked, old);
    eprintln!(
        "zxid rollover, 3 in-process members, {WRITERS} concurrent writers: {} acknowledged of \
         {WRITES}, last of epoch {old} to first of epoch {}: {p:?}",
        acked.len(),
        old + 1
    );
    assert!(p < Duration::from_secs(2), "rollover pause {p:?}");

    // Every write, acknowledged or not, is on every member with the czxid its client saw.
    for (m, host) in hosts.iter().enumerate() {
        let on = connect(host).await;
        on.sync("/roll").await.expect("sync");
        for i in 0..WRITES {
            let path = format!("/roll/n{i:03}");
            let st = on
                .exists(&path, false)
                .await
                .expect("exists")
                .unwrap_or_else(|| panic!("member {m} lacks {path}"));
            if let Some(a) = acked.iter().find(|a| a.i == i) {
                assert_eq!(st.czxid, a.zxid, "member {m}: {path}");
            }
        }
        on.close().await.expect("close");
    }
    c.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standalone_server_carries_its_counter_on_and_keeps_every_write() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ServerConfig::for_tests(dir.path());
    let h = Server::start(cfg.clone()).await.unwrap();
    let c = connect(&h.connect_string()).await;
    c.create("/roll", b"", &Acl::open_unsafe(), CreateMode::Persistent)
        .await
        .expect("create /roll");
    let seeded = h
        .seed_zxid_counter(u32::MAX - LEFT)
        .await
        .expect("the server takes the seed");
    // Back is refused.
    assert_eq!(h.seed_zxid_counter(5).await, None);
    let t0 = Instant::now();
    let acked = write_all(&c).await;
    let took = t0.elapsed();
    assert_eq!(acked.len(), WRITES, "standalone never refuses a write");
    assert_eq!(acked[0].zxid, seeded);
    let old = check_zxids(&acked);
    // No gap at all: the zxid is one 64-bit counter there (Apache's standalone
    // getNextZxid is hzxid.incrementAndGet(); only its Leader.propose checks the counter),
    // so 0xffffffff is used and the next write carries into the epoch bits.
    for w in acked.windows(2) {
        assert_eq!(w[1].zxid, w[0].zxid + 1);
    }
    assert!(acked.iter().any(|a| counter_of(a.zxid) == 0xffff_ffff));
    eprintln!(
        "standalone: {WRITES} writes across the carry into epoch {} in {took:?}",
        old + 1
    );
    c.close().await.expect("close");
    h.stop().await.unwrap();

    // A restart replays the log across the carry.
    let h = Server::start(cfg).await.unwrap();
    let c = connect(&h.connect_string()).await;
    for a in &acked {
        let path = format!("/roll/n{:03}", a.i);
        let st = c.exists(&path, false).await.expect("exists");
        assert_eq!(st.map(|s| s.czxid), Some(a.zxid), "{path} after restart");
    }
    c.close().await.expect("close");
    h.stop().await.unwrap();
}
