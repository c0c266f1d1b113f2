//! A 3-member zk-server ensemble (three `zk-server` processes) against a 3-node Apache
//! ZooKeeper 3.8 ensemble (three `QuorumPeerMain` JVMs), one after the other in the same run
//! on the same machine, both with tickTime=2000 and their txn logs fsynced on the same disk:
//!
//! - failover: `kill -9` of the leader while a zk-client writes through the two other
//!   members; the time from the kill to the first acknowledged write issued after it;
//! - throughput: sessions spread round-robin over the three members, each with requests in
//!   flight, setData (every write goes through the leader and a quorum of fsyncs) and
//!   getData (served locally by each member).
//!
//! ```sh
//! cargo bench -p tests --bench ensemble_vs_apache -- [--rounds 7] [--secs 5] [--sessions 9] [--inflight 32]
//! ```
//!
//! The zk-server binary is taken from `ZK_SERVER_BIN`, else built in release mode into the
//! target directory this bench runs in. Apache runs with JVM defaults (G1, full JIT) and `-Xmx1000m` as its start script.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tests::apache::ApacheEnsemble;
use tests::bench::{arg, bench_runtime, wait_quorum, Cluster};
use tests::zk_processes::{Options, ProcessEnsemble};
use zk_client::{Acl, Client, CreateMode};

fn hosts(ports: &[u16]) -> String {
    ports
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(",")
}

async fn client(hosts: &str) -> Client {
    Client::builder(hosts)
        .session_timeout(Duration::from_secs(10))
        .retry_policy(zk_client::RetryPolicy::fixed(Duration::from_millis(10)))
        .connect()
        .await
        .expect("connect")
}

/// One failover round: returns ms from the kill to the first acknowledged write issued after it.
async fn failover_round(c: &mut dyn Cluster) -> f64 {
    let leader = wait_quorum(c, Duration::from_secs(60));
    let ports = c.ports();
    let others: Vec<u16> = (0..ports.len())
        .filter(|&i| i != leader)
        .map(|i| ports[i])
        .collect();
    let zk = client(&hosts(&others)).await;
    match zk
        .create(
            "/failover",
            b"0",
            &Acl::open_unsafe(),
            CreateMode::Persistent,
        )
        .await
    {
        Ok(_) | Err(zk_client::Error::NodeExists { .. }) => {}
        Err(e) => panic!("create /failover: {e}"),
    }
    let start = Instant::now();
    // Nanoseconds since `start` at which the leader was killed (0: not yet).
    let killed_at = Arc::new(AtomicU64::new(0));
    let writer = {
        let zk = zk.clone();
        let killed_at = killed_at.clone();
        tokio::spawn(async move {
            loop {
                let issued = start.elapsed().as_nanos() as u64;
                let res = zk.set_data("/failover", b"x", None).await;
                let k = killed_at.load(Ordering::SeqCst);
                if res.is_ok() && k != 0 && issued > k {
                    return start.elapsed().as_nanos() as u64 - k;
                }
                if res.is_err() {
                    tokio::task::yield_now().await;
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    c.kill(leader);
    killed_at.store(start.elapsed().as_nanos() as u64, Ordering::SeqCst);
    let ns = tokio::time::timeout(Duration::from_secs(60), writer)
        .await
        .expect("a write within 60 s of the kill")
        .expect("writer task");
    let _ = zk.close().await;
    c.restart(leader);
    wait_quorum(c, Duration::from_secs(60));
    ns as f64 / 1e6
}

/// Ops/s and p50/p99 latency (µs) of `sessions` sessions spread over the members.
async fn throughput(
    ports: &[u16],
    set: bool,
    sessions: usize,
    inflight: usize,
    secs: f64,
) -> (f64, u64, u64) {
    let mut clients = Vec::new();
    for i in 0..sessions {
        let zk = client(&format!("127.0.0.1:{}", ports[i % ports.len()])).await;
        let path = format!("/bench-{i}");
        match zk
            .create(
                &path,
                &[7u8; 100],
                &Acl::open_unsafe(),
                CreateMode::Persistent,
            )
            .await
        {
            Ok(_) | Err(zk_client::Error::NodeExists { .. }) => {}
            Err(e) => panic!("create {path}: {e}"),
        }
        clients.push((zk, path));
    }
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let t = Instant::now();
    let mut tasks = Vec::new();
    for (zk, path) in &clients {
        for _ in 0..inflight {
            let zk = zk.clone();
            let path = path.clone();
            tasks.push(tokio::spawn(async move {
                let payload = [9u8; 100];
                let mut lat = Vec::new();
                while Instant::now() < deadline {
                    let s = Instant::now();
                    let r = if set {
                        zk.set_data(&path, &payload, None).await.map(|_| ())
                    } else {
                        zk.get_data(&path, false).await.map(|_| ())
                    };
                    r.expect("request");
                    lat.push(s.elapsed().as_micros() as u64);
                }
                lat
            }));
        }
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.expect("task"));
    }
    let elapsed = t.elapsed().as_secs_f64();
    for (zk, _) in clients {
        let _ = zk.close().await;
    }
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    (lat.len() as f64 / elapsed, pct(0.5), pct(0.99))
}

struct Figures {
    failover_ms: Vec<f64>,
    set: (f64, u64, u64),
    get: (f64, u64, u64),
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

async fn measure(
    c: &mut dyn Cluster,
    rounds: usize,
    secs: f64,
    sessions: usize,
    inflight: usize,
) -> Figures {
    wait_quorum(c, Duration::from_secs(60));
    let ports = c.ports();
    // Warm-up (the JVM compiles its hot paths; both sides get the same).
    throughput(&ports, true, sessions, inflight, secs / 2.0).await;
    throughput(&ports, false, sessions, inflight, secs / 2.0).await;
    let set = throughput(&ports, true, sessions, inflight, secs).await;
    let get = throughput(&ports, false, sessions, inflight, secs).await;
    let mut failover_ms = Vec::new();
    for r in 0..rounds {
        let ms = failover_round(c).await;
        println!("  {} failover round {}: {ms:.0} ms", c.name(), r + 1);
        failover_ms.push(ms);
    }
    Figures {
        failover_ms,
        set,
        get,
    }
}

fn main() {
    let rounds: usize = arg("--rounds", 7);
    let secs: f64 = arg("--secs", 5.0);
    let sessions: usize = arg("--sessions", 9);
    let inflight: usize = arg("--inflight", 32);
    let rt = bench_runtime();
    println!("3-member ensembles, tickTime=2000; {sessions} sessions x {inflight} in flight, 100 B, {secs} s per workload; {rounds} failover rounds");

    let apache = rt.block_on(async {
        let mut a = ApacheEnsemble::start_with(
            3,
            &["-Xmx1000m", "-XX:-UseSerialGC", "-XX:TieredStopAtLevel=4"],
            &["tickTime=2000", "initLimit=10", "syncLimit=5"],
        )
        .expect("apache ensemble");
        measure(&mut a, rounds, secs, sessions, inflight).await
    });
    let ours = rt.block_on(async {
        let mut z = ProcessEnsemble::start(Options {
            tick_time: 2000,
            log_filter: "warn".into(),
            ..Options::members(3)
        })
        .await
        .expect("zk-server ensemble");
        measure(&mut z, rounds, secs, sessions, inflight).await
    });

    println!();
    println!("| measure | zk-server | Apache | ratio |");
    println!("|---|---|---|---|");
    let (zf, af) = (median(&ours.failover_ms), median(&apache.failover_ms));
    println!(
        "| failover: kill -9 leader → first acked write, median ms | {zf:.0} | {af:.0} | {:.2}x |",
        zf / af
    );
    let minmax = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        format!("{:.0}–{:.0}", v[0], v[v.len() - 1])
    };
    println!(
        "| failover range, ms | {} | {} | |",
        minmax(&ours.failover_ms),
        minmax(&apache.failover_ms)
    );
    for (name, o, a) in [
        ("setData", ours.set, apache.set),
        ("getData", ours.get, apache.get),
    ] {
        println!(
            "| {name} ops/s | {:.0} | {:.0} | {:.2}x |",
            o.0,
            a.0,
            o.0 / a.0
        );
        println!(
            "| {name} p50 / p99 µs | {} / {} | {} / {} | |",
            o.1, o.2, a.1, a.2
        );
    }
}
