//! Linearizable reads on a 3-member `zk-server` ensemble (three processes): what they cost
//! against a plain read, done two ways:
//!
//! - `sync + getData` from the client (`Client::get_data_synced`: both sent at once) on
//!   members with the default settings;
//! - a plain `getData` on members with `linearizableReads=true`, where the member takes a
//!   read index from the leader (a quorum-confirmed sync) before it serves the read;
//! - and a plain `getData` on default members, which is only sequentially consistent.
//!
//! Sessions are pinned to members round-robin (one-host connect strings); each sends
//! one read after another for `--secs`. Reported: reads/s and p50 / p99 latency, for one
//! session on a follower and for `--sessions` sessions at once.
//!
//! ```sh
//! cargo build --release -p zk-server --bin zk-server
//! ZK_SERVER_BIN=target/release/zk-server cargo bench -p tests --bench linearizable_reads -- [--secs 3] [--sessions 12]
//! ```
//!
//! Without `ZK_SERVER_BIN` the test kit's (debug) binary is used.

use std::time::{Duration, Instant};

use tests::zk_processes::{Options, ProcessEnsemble};
use zk_client::{Acl, Client, CreateMode};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Plain,
    ClientSync,
    ServerReadIndex,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Plain => "getData (default members; not linearizable)",
            Mode::ClientSync => "sync + getData (client side)",
            Mode::ServerReadIndex => "getData on linearizableReads=true members",
        }
    }
}

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Runs `hosts.len()` sessions (one per host string) for `secs`; (reads/s, p50, p99).
async fn run(mode: Mode, hosts: &[String], secs: u64) -> (f64, Duration, Duration) {
    let mut tasks = Vec::new();
    let start = Instant::now();
    let until = start + Duration::from_secs(secs);
    for h in hosts {
        let c = Client::connect(h).await.expect("connect");
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while Instant::now() < until {
                let t = Instant::now();
                let r = match mode {
                    Mode::ClientSync => c.get_data_synced("/bench").await,
                    _ => c.get_data("/bench", false).await,
                };
                r.expect("read");
                lat.push(t.elapsed());
            }
            let _ = c.close().await;
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("reader"));
    }
    let took = start.elapsed().as_secs_f64();
    all.sort();
    (
        all.len() as f64 / took,
        percentile(&all, 0.5),
        percentile(&all, 0.99),
    )
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let secs = arg("--secs", 3);
    let sessions = arg("--sessions", 12) as usize;
    println!("linearizable reads: 3 zk-server members, {secs} s per run\n");
    println!(
        "| {:<46} | {:>22} | {:>22} |",
        "read",
        "1 session on a follower",
        format!("{sessions} sessions, all members")
    );
    println!("| {:-<46} | {:->22} | {:->22} |", "", "", "");
    for lin in [false, true] {
        let mut opts = Options::members(3);
        if lin {
            opts.extra_cfg = "linearizableReads=true\n".into();
        }
        let ens = ProcessEnsemble::start(opts).await.expect("ensemble");
        let leader = ens
            .wait_for_leader(Duration::from_secs(30))
            .await
            .expect("leader");
        let admin = Client::connect(&ens.connect_string()).await.expect("admin");
        admin
            .create(
                "/bench",
                &[7u8; 100],
                &Acl::open_unsafe(),
                CreateMode::Persistent,
            )
            .await
            .expect("create");
        admin.close().await.expect("close");
        let follower = (0..ens.len()).find(|i| *i != leader).expect("follower");
        let modes: &[Mode] = if lin {
            &[Mode::ServerReadIndex]
        } else {
            &[Mode::Plain, Mode::ClientSync]
        };
        for &mode in modes {
            let one = vec![ens.client_addr(follower).to_string()];
            let many: Vec<String> = (0..sessions)
                .map(|i| ens.client_addr(i % ens.len()).to_string())
                .collect();
            let (r1, p50_1, p99_1) = run(mode, &one, secs).await;
            let (rn, p50_n, p99_n) = run(mode, &many, secs).await;
            let cell = |r: f64, a: Duration, b: Duration| {
                format!(
                    "{r:>6.0}/s {:>5.0}/{:>5.0} µs",
                    a.as_secs_f64() * 1e6,
                    b.as_secs_f64() * 1e6
                )
            };
            println!(
                "| {:<46} | {:>22} | {:>22} |",
                mode.name(),
                cell(r1, p50_1, p99_1),
                cell(rn, p50_n, p99_n)
            );
        }
        drop(ens);
    }
    println!("\n(cells: reads/s, p50/p99 latency)");
}
