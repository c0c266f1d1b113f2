//! Reconnect storms, zk-server against Apache ZooKeeper 3.8 in one run (issue 12): a
//! 3-member ensemble of each (processes, tickTime=2000, `maxClientCnxns=0`), N sessions
//! (zk-client, the three members in the connect string, 30 s session timeout), each with a
//! data watch on its own znode. Two storms per ensemble:
//!
//! - `kill -9` of the follower holding the most sessions;
//! - then, with that member back, `kill -9` of the leader.
//!
//! At the kill a separate client sets every session's znode (retrying until the ensemble
//! takes writes again). A storm is over when every session is connected again and its watch
//! has fired; the figure is the time from the kill to that point (and the p50 / p99 of the
//! per-session times). Also reported: sessions that expired (there should be none), where
//! the sessions landed (spread over the survivors), the survivors' CPU time during the
//! storm and their RSS after it.
//!
//! ```sh
//! cargo bench -p tests --bench reconnect_storm -- [--sessions 5000] [--jitter-ms 0] [--retry-ms 0]
//! ```
//!
//! The zk-server binary is `ZK_SERVER_BIN`, else built in release mode into this bench's
//! target directory. Apache runs with `-Xmx1000m`, as its start script.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;
use tests::apache::ApacheEnsemble;
use tests::bench::{arg, bench_runtime, cpu_secs, rss_mib, wait_quorum, Cluster};
use tests::zk_processes::{Options, ProcessEnsemble};
use zk_client::{Acl, Client, CreateMode, SessionState};

struct Session {
    client: Client,
    path: String,
}

/// Opens `n` sessions, each watching its own znode.
async fn open_sessions(
    hosts: &str,
    n: usize,
    jitter: Duration,
    retry: Option<Duration>,
) -> Vec<Arc<Session>> {
    let admin = admin(hosts).await;
    let _ = admin
        .create("/storm", b"", &Acl::open_unsafe(), CreateMode::Persistent)
        .await;
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let mut t = admin.multi();
        for i in chunk {
            t = t.create(
                &format!("/storm/s{i}"),
                b"",
                &Acl::open_unsafe(),
                CreateMode::Persistent,
            );
        }
        t.commit().await.expect("create the watched nodes");
    }
    let mut sessions = Vec::new();
    for chunk in (0..n).collect::<Vec<_>>().chunks(250) {
        let opened = join_all(chunk.iter().map(|i| async move {
            let mut b = Client::builder(hosts)
                .session_timeout(Duration::from_secs(30))
                .reconnect_jitter(jitter);
            if let Some(r) = retry {
                b = b.retry_policy(zk_client::RetryPolicy::fixed(r));
            }
            let client = b.connect().await.expect("session");
            Arc::new(Session {
                client,
                path: format!("/storm/s{i}"),
            })
        }))
        .await;
        sessions.extend(opened);
    }
    sessions
}

async fn admin(hosts: &str) -> Client {
    Client::builder(hosts)
        .session_timeout(Duration::from_secs(30))
        .retry_policy(zk_client::RetryPolicy::fixed(Duration::from_millis(10)))
        .connect()
        .await
        .expect("admin session")
}

/// Which member (by client port) each session is connected to.
fn spread(sessions: &[Arc<Session>], ports: &[u16]) -> Vec<usize> {
    let mut counts = vec![0; ports.len()];
    for s in sessions {
        if let Some(h) = s.client.connected_host() {
            if let Some(i) = ports.iter().position(|p| *p == h.port) {
                counts[i] += 1;
            }
        }
    }
    counts
}

/// One storm's figures.
struct Storm {
    what: String,
    moved: usize,
    all_ms: f64,
    p50_ms: f64,
    p99_ms: f64,
    expired: usize,
    spread_after: Vec<usize>,
    cpu_secs: f64,
    rss_mib: Vec<f64>,
}

/// Arms every watch, kills member `victim`, triggers every watch and waits for every
/// session to be connected with its watch fired.
async fn storm(c: &mut dyn Cluster, sessions: &[Arc<Session>], victim: usize, what: &str) -> Storm {
    let ports = c.ports();
    let before = spread(sessions, &ports);
    let watches: Vec<_> = join_all(sessions.iter().map(|s| async move {
        let (_, _, w) = s.client.get_data_watched(&s.path).await.expect("arm watch");
        // Wrapped: the watch is awaited later, in the storm.
        Some(w)
    }))
    .await;
    let survivors: Vec<usize> = (0..ports.len()).filter(|i| *i != victim).collect();
    let cpu0: f64 = survivors
        .iter()
        .filter_map(|i| c.pid(*i))
        .map(cpu_secs)
        .sum();
    let survivor_hosts = survivors
        .iter()
        .map(|i| format!("127.0.0.1:{}", ports[*i]))
        .collect::<Vec<_>>()
        .join(",");
    let trigger = admin(&survivor_hosts).await;
    let t0 = Instant::now();
    c.kill(victim);
    // Every session: connected again and its watch fired (ms after the kill).
    let waits = sessions.iter().zip(watches).map(|(s, w)| {
        let s = s.clone();
        async move {
            if let Some(w) = w {
                let _ = tokio::time::timeout(Duration::from_secs(120), w).await;
            }
            let mut st = s.client.state_watch();
            let _ = tokio::time::timeout(
                Duration::from_secs(120),
                st.wait_for(|v| v.is_connected() || *v == SessionState::Expired),
            )
            .await;
            t0.elapsed().as_secs_f64() * 1000.0
        }
    });
    let paths: Vec<String> = sessions.iter().map(|s| s.path.clone()).collect();
    let writer = async {
        for chunk in paths.chunks(500) {
            loop {
                let mut t = trigger.multi();
                for p in chunk {
                    t = t.set_data(p, b"x", None);
                }
                match t.commit().await {
                    Ok(_) => break,
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                }
            }
        }
    };
    let (mut times, ()) = tokio::join!(join_all(waits), writer);
    let cpu1: f64 = survivors
        .iter()
        .filter_map(|i| c.pid(*i))
        .map(cpu_secs)
        .sum();
    times.sort_by(f64::total_cmp);
    let pick = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    let expired = sessions
        .iter()
        .filter(|s| s.client.state() == SessionState::Expired)
        .count();
    let _ = trigger.close().await;
    Storm {
        what: what.to_string(),
        moved: before[victim],
        all_ms: *times.last().unwrap_or(&0.0),
        p50_ms: pick(0.5),
        p99_ms: pick(0.99),
        expired,
        spread_after: survivors
            .iter()
            .map(|i| spread(sessions, &ports)[*i])
            .collect(),
        cpu_secs: cpu1 - cpu0,
        rss_mib: survivors
            .iter()
            .filter_map(|i| c.pid(*i))
            .map(rss_mib)
            .collect(),
    }
}

async fn measure(
    c: &mut dyn Cluster,
    n: usize,
    jitter: Duration,
    retry: Option<Duration>,
) -> Vec<Storm> {
    let ports = c.ports();
    let leader = wait_quorum(c, Duration::from_secs(60));
    let hosts = ports
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(",");
    let opened = Instant::now();
    let sessions = open_sessions(&hosts, n, jitter, retry).await;
    println!(
        "  {}: {n} sessions open in {:.1} s, spread {:?} (leader {leader})",
        c.name(),
        opened.elapsed().as_secs_f64(),
        spread(&sessions, &ports)
    );
    let counts = spread(&sessions, &ports);
    let follower = (0..ports.len())
        .filter(|i| *i != leader)
        .max_by_key(|i| counts[*i])
        .expect("a follower");
    let mut out = Vec::new();
    out.push(storm(c, &sessions, follower, "kill -9 the busiest follower").await);
    c.restart(follower);
    let leader = wait_quorum(c, Duration::from_secs(60));
    out.push(storm(c, &sessions, leader, "kill -9 the leader").await);
    join_all(sessions.iter().map(|s| s.client.close())).await;
    out
}

fn main() {
    let n: usize = arg("--sessions", 5000);
    // zk-client spreads reconnections over up to 1 s by default; 0 makes the storm a
    // burst, the server's worst case (and what clients without jitter do).
    let jitter = Duration::from_millis(arg("--jitter-ms", 0));
    // zk-client retries a refused connection with exponential backoff up to 1 s by
    // default (members refuse clients while they elect); a fixed delay shows the servers'
    // own recovery instead of the backoff's steps.
    let retry = match arg("--retry-ms", 0u64) {
        0 => None,
        ms => Some(Duration::from_millis(ms)),
    };
    let rt = bench_runtime();
    println!(
        "3-member ensembles, tickTime=2000; {n} sessions, a data watch each, reconnect jitter {} ms, retry {}",
        jitter.as_millis(),
        retry.map_or("zk-client's default backoff".to_string(), |r| format!("every {} ms", r.as_millis()))
    );
    let apache = rt.block_on(async {
        let mut a = ApacheEnsemble::start_with(
            3,
            &["-Xmx1000m"],
            &[
                "tickTime=2000",
                "initLimit=10",
                "syncLimit=5",
                "maxClientCnxns=0",
            ],
        )
        .expect("apache ensemble");
        measure(&mut a, n, jitter, retry).await
    });
    let ours = rt.block_on(async {
        let mut z = ProcessEnsemble::start(Options {
            tick_time: 2000,
            log_filter: std::env::var("ZK_STORM_LOG").unwrap_or_else(|_| "warn".into()),
            extra_cfg: "maxClientCnxns=0\n".into(),
            ..Options::members(3)
        })
        .await
        .expect("zk-server ensemble");
        let figures = measure(&mut z, n, jitter, retry).await;
        if std::env::var_os("ZK_STORM_LOG").is_some() {
            for i in 0..z.len() {
                println!("--- member {i}:\n{}", z.log_text(i));
            }
        }
        figures
    });
    let mut rows: BTreeMap<usize, (&Storm, &Storm)> = BTreeMap::new();
    for (i, (o, a)) in ours.iter().zip(&apache).enumerate() {
        rows.insert(i, (o, a));
    }
    println!();
    println!("| storm | measure | zk-server | Apache 3.8 | ratio |");
    println!("|---|---|---|---|---|");
    for (o, a) in rows.values() {
        let w = &o.what;
        println!("| {w} | sessions on it | {} | {} | |", o.moved, a.moved);
        println!(
            "| {w} | all reconnected, watch fired, ms | {:.0} | {:.0} | {:.2}x |",
            o.all_ms,
            a.all_ms,
            o.all_ms / a.all_ms
        );
        println!(
            "| {w} | p50 / p99 ms | {:.0} / {:.0} | {:.0} / {:.0} | |",
            o.p50_ms, o.p99_ms, a.p50_ms, a.p99_ms
        );
        println!("| {w} | expired | {} | {} | |", o.expired, a.expired);
        println!(
            "| {w} | sessions per survivor | {:?} | {:?} | |",
            o.spread_after, a.spread_after
        );
        println!(
            "| {w} | survivors' CPU s | {:.2} | {:.2} | {:.2}x |",
            o.cpu_secs,
            a.cpu_secs,
            o.cpu_secs / a.cpu_secs
        );
        println!(
            "| {w} | survivors' RSS MiB | {:?} | {:?} | |",
            o.rss_mib.iter().map(|v| v.round()).collect::<Vec<_>>(),
            a.rss_mib.iter().map(|v| v.round()).collect::<Vec<_>>()
        );
    }
}
