//! Follower catch-up, zk-server against Apache ZooKeeper 3.8 in one run (issue 12): a
//! 3-member ensemble of each (processes, tickTime=2000), filled with N znodes of 100 B
//! (pipelined multis from zk-client, many in flight). Two catch-ups per ensemble, of the
//! same follower:
//!
//! - SNAP: the follower is stopped (SIGKILL), its `version-2` directories are wiped, one
//!   more write goes through the others, and it is started again;
//! - DIFF: the follower is stopped, K more znodes are written through the others, and it is
//!   started again.
//!
//! The figure is the time from the restart to the follower serving the full tree: `srvr`
//! says `follower` and a client pinned to it reads the last-written znode with its latest
//! data. Also reported: the follower's and the leader's peak RSS (VmHWM; the leader's is
//! reset through `/proc/PID/clear_refs` just before the restart, so it is the sync's peak)
//! and the leader's CPU time from the restart to serving, and how the follower was synced
//! (from its log).
//!
//! ```sh
//! cargo bench -p tests --bench catch_up -- [--znodes 1000000] [--diff 10000]
//! ```
//!
//! The zk-server binary is `ZK_SERVER_BIN`, else built in release mode into this bench's
//! target directory; its members log at `ZK_PROCESSES_LOG` (default `info`), printed with
//! `ZK_CATCHUP_SHOW_LOGS=1`. Apache runs with `-Xmx3g` and the JVM's own defaults (G1, full
//! JIT) as `zkServer.sh` starts it, not the test kit's small-heap settings.

use std::time::Duration;

use tests::apache::ApacheEnsemble;
use tests::bench::{
    arg, bench_client, bench_runtime, cpu_secs, fill, fill_and_mark, reset_peak_rss, status_mib,
    sync_kind, wait_quorum, wait_serving, Cluster,
};
use tests::zk_processes::{Options, ProcessEnsemble};

/// Apache's JVM options here: a heap for 1M znodes on the leader (its snapshot serializer
/// and the follower's deserialized tree), and the stock collector and JIT.
const APACHE_JVM: &[&str] = &[
    "-Xmx3g",
    "-XX:-UseSerialGC",
    "-XX:+UseG1GC",
    "-XX:TieredStopAtLevel=4",
];

/// One catch-up's figures.
struct CatchUp {
    serve_s: f64,
    follower_peak_mib: f64,
    leader_peak_mib: f64,
    leader_cpu_s: f64,
    how: String,
}

/// Restarts member `f` and waits for it to serve `want` at `path`, with the figures.
async fn catch_up(
    c: &mut dyn Cluster,
    f: usize,
    leader: usize,
    path: &str,
    want: &[u8],
) -> CatchUp {
    let port = c.ports()[f];
    let lpid = c.pid(leader).expect("leader runs");
    reset_peak_rss(lpid);
    let cpu0 = cpu_secs(lpid);
    c.restart(f);
    let took = wait_serving(port, "follower", path, want, Duration::from_secs(300)).await;
    let cpu1 = cpu_secs(lpid);
    let fpid = c.pid(f).expect("follower runs");
    CatchUp {
        serve_s: took.as_secs_f64(),
        follower_peak_mib: status_mib(fpid, "VmHWM:"),
        leader_peak_mib: status_mib(lpid, "VmHWM:"),
        leader_cpu_s: cpu1 - cpu0,
        how: sync_kind(&c.last_log(f)),
    }
}

/// Fill time and the SNAP and DIFF catch-ups of one ensemble.
async fn measure(c: &mut dyn Cluster, n: usize, k: usize) -> (f64, CatchUp, CatchUp) {
    let ports = c.ports();
    let leader = wait_quorum(c, Duration::from_secs(60));
    let lhost = format!("127.0.0.1:{}", ports[leader]);
    let w = bench_client(&lhost).await;
    let fill_s = fill_and_mark(&w, "/catch", n, b"filled").await;
    println!(
        "  {}: {n} znodes of 100 B in {fill_s:.1} s (leader {leader})",
        c.name()
    );
    let f = (0..ports.len()).find(|i| *i != leader).expect("a follower");

    // SNAP: a follower with nothing on disk.
    c.kill(f);
    for d in c.dirs(f) {
        let v2 = d.join("version-2");
        if v2.exists() {
            std::fs::remove_dir_all(&v2).expect("wipe version-2");
        }
    }
    w.set_data("/last", b"after the wipe", None)
        .await
        .expect("write after the wipe");
    let snap = catch_up(c, f, leader, "/last", b"after the wipe").await;
    println!("  {}: SNAP {:.2} s ({})", c.name(), snap.serve_s, snap.how);

    // DIFF: a follower that missed K writes.
    let leader = wait_quorum(c, Duration::from_secs(60));
    c.kill(f);
    fill(&w, "/lagged", k).await;
    w.set_data("/last", b"after the lag", None)
        .await
        .expect("write after the lag");
    let diff = catch_up(c, f, leader, "/last", b"after the lag").await;
    println!("  {}: DIFF {:.2} s ({})", c.name(), diff.serve_s, diff.how);
    let _ = w.close().await;
    (fill_s, snap, diff)
}

fn main() {
    let n: usize = arg("--znodes", 1_000_000);
    let k: usize = arg("--diff", 10_000);
    let rt = bench_runtime();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "3-member ensembles, tickTime=2000; {n} znodes of 100 B, {k} more while a follower is down; \
         Apache {}; load average {}",
        APACHE_JVM.join(" "),
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
    let apache = rt.block_on(async {
        let mut a = ApacheEnsemble::start_with(
            3,
            APACHE_JVM,
            &["tickTime=2000", "initLimit=10", "syncLimit=5"],
        )
        .expect("apache ensemble");
        let figures = measure(&mut a, n, k).await;
        if std::env::var_os("ZK_CATCHUP_SHOW_LOGS").is_some() {
            for i in 0..a.nodes.len() {
                println!("--- Apache member {i}:\n{}", a.last_log(i));
            }
        }
        figures
    });
    let ours = rt.block_on(async {
        let mut z = ProcessEnsemble::start(Options {
            tick_time: 2000,
            ..Options::members(3)
        })
        .await
        .expect("zk-server ensemble");
        let figures = measure(&mut z, n, k).await;
        if std::env::var_os("ZK_CATCHUP_SHOW_LOGS").is_some() {
            for i in 0..z.len() {
                println!("--- zk-server member {i}:\n{}", z.log_text(i));
            }
        }
        figures
    });
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!();
    println!(
        "load average after: {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!();
    println!("| catch-up | measure | zk-server | Apache 3.8 | ratio |");
    println!("|---|---|---|---|---|");
    println!(
        "| fill | {n} znodes of 100 B, s | {:.1} | {:.1} | {:.2}x |",
        ours.0,
        apache.0,
        ours.0 / apache.0
    );
    for (what, o, a) in [
        ("SNAP (wiped follower)", &ours.1, &apache.1),
        (
            &format!("DIFF ({k} znodes behind)") as &str,
            &ours.2,
            &apache.2,
        ),
    ] {
        println!("| {what} | synced by | {} | {} | |", o.how, a.how);
        println!(
            "| {what} | restart to serving, s | {:.2} | {:.2} | {:.2}x |",
            o.serve_s,
            a.serve_s,
            o.serve_s / a.serve_s
        );
        println!(
            "| {what} | follower peak RSS, MiB | {:.0} | {:.0} | {:.2}x |",
            o.follower_peak_mib,
            a.follower_peak_mib,
            o.follower_peak_mib / a.follower_peak_mib
        );
        println!(
            "| {what} | leader peak RSS during sync, MiB | {:.0} | {:.0} | {:.2}x |",
            o.leader_peak_mib,
            a.leader_peak_mib,
            o.leader_peak_mib / a.leader_peak_mib
        );
        println!(
            "| {what} | leader CPU during sync, s | {:.2} | {:.2} | {:.2}x |",
            o.leader_cpu_s,
            a.leader_cpu_s,
            o.leader_cpu_s / a.leader_cpu_s
        );
    }
    println!();
    println!("command: cargo bench -p tests --bench catch_up -- --znodes {n} --diff {k}");
}
