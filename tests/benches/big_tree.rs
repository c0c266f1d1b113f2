//! Big trees, zk-server against Apache ZooKeeper 3.8 in one run (issue 12), one server
//! after the other (never both at once). For each:
//!
//! 1. fill: N znodes of 100 B (N/1000 parents of 1,000 children, one multi of 1,000
//!    creates per parent, 32 multis in flight) into a standalone server (processes,
//!    tickTime=2000); time, RSS after and peak RSS (VmHWM);
//! 2. writes across a snapshot: W writers (own sessions, P requests in flight each) set
//!    random znodes of the fill to 100 B while `snapCount` (S, chosen so that no snapshot
//!    is due during the fill but one is a few seconds into the writes) makes the server
//!    take a snapshot of the whole tree. A snapshot runs from the moment its file (for
//!    zk-server its temporary file `.snapshot.<zxid>.….tmp`) appears in `version-2` to the moment
//!    it is complete: zk-server's final `snapshot.<zxid>` appears (renamed in after its
//!    fsync), Apache logs `Snapshot taken in N ms`. The writes stop 3 s after the first
//!    snapshot completes. Reported: p50/p99/p999/max of the writes issued while a snapshot
//!    was being written, and of the others; the issue's target is p999 < 50 ms during a
//!    snapshot;
//! 3. restart: `kill -9`, start again on the same data dir, time until a client reads
//!    the last-written znode with its latest data; the restarted process's peak RSS;
//! 4. full sync of a new member: a 3-member ensemble (tickTime=2000, initLimit=30,
//!    syncLimit=10) whose member 3 is stopped and wiped before the other two are filled
//!    with M znodes (M = N unless `--sync-znodes` says less: Apache needs three heaps for
//!    it); the time from that member's start to it serving the last znode (`srvr` says
//!    `follower` and a client pinned to it reads it), its peak RSS and the leader's during
//!    the sync.
//!
//! ```sh
//! cargo bench -p tests --bench big_tree -- [--znodes 10000000] [--sync-znodes 2000000] \
//!     [--writers 4] [--pipeline 1] [--snap-count S] [--window-max 240] \
//!     [--apache-heap-mib H] [--apache-sync-heap-mib H3] [--only zk|apache]
//! ```
//!
//! Apache runs with the JVM's own collector and full JIT (G1, as `zkServer.sh` starts
//! it), not the test kit's small-heap settings, and `-Xmx` of H MiB standalone (default
//! 1,228 MiB per million znodes, at least 3 GiB) and H3 MiB per ensemble member (default
//! 1,536 MiB per million, at least 3 GiB). The zk-server binary is `ZK_SERVER_BIN`, else
//! built in release mode into this bench's target directory.

use std::collections::HashSet;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tests::apache::{ApacheEnsemble, ApacheServer};
use tests::bench::{
    arg, bench_client, bench_runtime, fill_and_mark, fill_path, reset_peak_rss, rss_mib,
    status_mib, sync_kind, wait_quorum, wait_serving, Cluster,
};
use tests::zk_processes::{Options, ProcessEnsemble, ServerProcess};
use zk_client::Client;

/// Apache's JVM options besides `-Xmx`: the stock collector and JIT.
const APACHE_JVM: &[&str] = &[
    "-XX:-UseSerialGC",
    "-XX:+UseG1GC",
    "-XX:TieredStopAtLevel=4",
];

/// The fill's root.
const ROOT: &str = "/big";

/// How long a server may take to serve again (a restart or a sync of a big tree).
const SERVE_TIMEOUT: Duration = Duration::from_secs(900);

/// A standalone server of either kind, on a data dir of its own.
trait Standalone {
    fn port(&self) -> u16;
    fn pid(&self) -> u32;
    /// The directory its snapshots go to.
    fn snap_dir(&self) -> PathBuf;
    /// How its snapshots show that they are complete.
    fn snap_done(&self) -> SnapDone;
    /// `kill -9`, then a start on the same data dir (not waiting for it to serve).
    fn kill_and_restart(&mut self);
}

/// How a snapshot's completion shows.
#[derive(Clone)]
enum SnapDone {
    /// zk-server: the file is written as `.snapshot.<zxid>.….tmp` first, and the final
    /// `snapshot.<zxid>` is renamed in once complete and fsynced.
    RenamedIn,
    /// Apache: `snapshot.<zxid>` is written in place; the log says `Snapshot taken in`.
    LogLine(PathBuf),
}

struct ZkStandalone {
    dir: tempfile::TempDir,
    port: u16,
    process: ServerProcess,
}

impl ZkStandalone {
    fn start(snap_count: u64) -> ZkStandalone {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = tests::ports::free_port().expect("port");
        std::fs::write(
            dir.path().join("zoo.cfg"),
            format!(
                "tickTime=2000\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
                 maxClientCnxns=0\n4lw.commands.whitelist=*\nadmin.enableServer=false\n\
                 snapCount={snap_count}\n",
                dir.path().join("data").display()
            ),
        )
        .expect("zoo.cfg");
        let process = Self::spawn(dir.path());
        let s = ZkStandalone { dir, port, process };
        let deadline = Instant::now() + Duration::from_secs(30);
        while tests::apache::four_letter(port, "ruok") != "imok" {
            assert!(Instant::now() < deadline, "zk-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        s
    }

    fn spawn(dir: &Path) -> ServerProcess {
        ServerProcess::start_logging(
            &dir.join("zoo.cfg"),
            &[],
            &dir.join("server.log"),
            &std::env::var("ZK_PROCESSES_LOG").unwrap_or_else(|_| "info".into()),
        )
        .expect("start zk-server")
    }
}

impl Standalone for ZkStandalone {
    fn port(&self) -> u16 {
        self.port
    }
    fn pid(&self) -> u32 {
        self.process.id().expect("zk-server runs")
    }
    fn snap_dir(&self) -> PathBuf {
        self.dir.path().join("data").join("version-2")
    }
    fn snap_done(&self) -> SnapDone {
        SnapDone::RenamedIn
    }
    fn kill_and_restart(&mut self) {
        self.process.kill9();
        self.process = Self::spawn(self.dir.path());
    }
}

impl Standalone for ApacheServer {
    fn port(&self) -> u16 {
        ApacheServer::port(self)
    }
    fn pid(&self) -> u32 {
        self.node.pid().expect("apache runs")
    }
    fn snap_dir(&self) -> PathBuf {
        self.node.data_dir().join("version-2")
    }
    fn snap_done(&self) -> SnapDone {
        SnapDone::LogLine(self.node.log_path().to_path_buf())
    }
    fn kill_and_restart(&mut self) {
        self.node.restart().expect("restart apache");
    }
}

/// One snapshot seen in the data dir.
#[derive(Clone, Debug)]
struct Snap {
    zxid: String,
    start: Instant,
    end: Option<Instant>,
}

/// Watches a data dir (every 5 ms, on a thread of its own) for snapshots starting and
/// completing after it was made.
struct SnapWatch {
    seen: Arc<Mutex<Vec<Snap>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn names(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|r| {
            r.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
}

impl SnapWatch {
    fn start(dir: PathBuf, done: SnapDone) -> SnapWatch {
        let seen = Arc::new(Mutex::new(Vec::<Snap>::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let baseline: HashSet<String> = names(&dir).into_iter().collect();
        let mut log_at = match &done {
            SnapDone::LogLine(p) => std::fs::metadata(p).map_or(0, |m| m.len()),
            SnapDone::RenamedIn => 0,
        };
        let thread = {
            let (seen, stop) = (seen.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut carry = String::new();
                while !stop.load(Ordering::Relaxed) {
                    let now = Instant::now();
                    let mut snaps = seen.lock().expect("snapshots");
                    let begin = |zxid: &str, snaps: &mut Vec<Snap>| {
                        if !snaps.iter().any(|s| s.zxid == zxid) {
                            snaps.push(Snap {
                                zxid: zxid.to_owned(),
                                start: now,
                                end: None,
                            });
                        }
                    };
                    for name in names(&dir) {
                        if baseline.contains(&name) {
                            continue;
                        }
                        if let Some(rest) = name.strip_prefix(".snapshot.") {
                            let zxid = rest.split('.').next().unwrap_or("");
                            if rest.ends_with(".tmp") && is_hex(zxid) {
                                begin(zxid, &mut snaps);
                            }
                        } else if let Some(rest) = name.strip_prefix("snapshot.") {
                            let zxid = rest.split('.').next().unwrap_or("");
                            if !is_hex(zxid) {
                                continue;
                            }
                            begin(zxid, &mut snaps);
                            if matches!(done, SnapDone::RenamedIn) && is_hex(rest) {
                                for s in snaps.iter_mut().filter(|s| s.zxid == zxid) {
                                    s.end.get_or_insert(now);
                                }
                            }
                        }
                    }
                    if let SnapDone::LogLine(log) = &done {
                        if let Ok(mut f) = std::fs::File::open(log) {
                            let mut more = String::new();
                            if f.seek(SeekFrom::Start(log_at)).is_ok() {
                                if let Ok(n) = f.read_to_string(&mut more) {
                                    log_at += n as u64;
                                }
                            }
                            carry.push_str(&more);
                            while let Some(nl) = carry.find('\n') {
                                if carry[..nl].contains("Snapshot taken in") {
                                    if let Some(s) = snaps.iter_mut().find(|s| s.end.is_none()) {
                                        s.end = Some(now);
                                    }
                                }
                                carry.drain(..=nl);
                            }
                        }
                    }
                    drop(snaps);
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        };
        SnapWatch {
            seen,
            stop,
            thread: Some(thread),
        }
    }

    fn snaps(&self) -> Vec<Snap> {
        self.seen.lock().expect("snapshots").clone()
    }

    fn finish(mut self) -> Vec<Snap> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().expect("snapshot watch");
        }
        self.snaps()
    }
}

/// p50/p99/p999/max of a set of latencies, ms.
#[derive(Default, Clone, Copy)]
struct Lat {
    n: usize,
    p50: f64,
    p99: f64,
    p999: f64,
    max: f64,
}

fn lat(mut v: Vec<f64>) -> Lat {
    if v.is_empty() {
        return Lat::default();
    }
    v.sort_by(f64::total_cmp);
    let q = |p: f64| v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    Lat {
        n: v.len(),
        p50: q(0.50),
        p99: q(0.99),
        p999: q(0.999),
        max: v[v.len() - 1],
    }
}

/// The writes of step 2.
struct WriteWindow {
    snapshots_s: Vec<f64>,
    during: Lat,
    outside: Lat,
    writes_per_s: f64,
    window_s: f64,
    peak_mib: f64,
}

struct Settings {
    n: usize,
    writers: usize,
    pipeline: usize,
    window_max: Duration,
}

/// Sets random znodes of the fill from W×P loops until the first snapshot after the start
/// has been complete for 3 s (or `window_max`).
async fn write_window(s: &dyn Standalone, set: &Settings) -> WriteWindow {
    let host = format!("127.0.0.1:{}", s.port());
    let mut clients = Vec::new();
    for _ in 0..set.writers {
        clients.push(Arc::new(bench_client(&host).await));
    }
    let pid = s.pid();
    reset_peak_rss(pid);
    let watch = SnapWatch::start(s.snap_dir(), s.snap_done());
    let stop = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for (w, c) in clients.iter().enumerate() {
        for k in 0..set.pipeline {
            let (c, stop, n) = (c.clone(), stop.clone(), set.n);
            let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ ((w * 131 + k) as u64 + 1);
            tasks.push(tokio::spawn(async move {
                let data = [b'y'; 100];
                let mut out: Vec<(Instant, f64)> = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    // xorshift64*
                    x ^= x >> 12;
                    x ^= x << 25;
                    x ^= x >> 27;
                    let i = (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as usize % n;
                    let at = Instant::now();
                    c.set_data(&fill_path(ROOT, i), &data, None)
                        .await
                        .expect("setData");
                    out.push((at, at.elapsed().as_secs_f64() * 1e3));
                }
                out
            }));
        }
    }
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let done = watch
            .snaps()
            .iter()
            .filter_map(|s| s.end)
            .min()
            .is_some_and(|e| e.elapsed() >= Duration::from_secs(3));
        if done || t0.elapsed() >= set.window_max {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut samples = Vec::new();
    for t in tasks {
        samples.extend(t.await.expect("writer"));
    }
    let window_s = t0.elapsed().as_secs_f64();
    let peak_mib = status_mib(pid, "VmHWM:");
    let snaps = watch.finish();
    for c in clients {
        let _ = c.close().await;
    }
    let now = Instant::now();
    let in_snapshot = |at: Instant| {
        snaps
            .iter()
            .any(|s| at >= s.start && at <= s.end.unwrap_or(now))
    };
    // Where the slowest writes fall, for reading stalls: issued how long after the
    // window's start, and relative to each snapshot's start and end.
    let mut slowest: Vec<&(Instant, f64)> = samples.iter().collect();
    slowest.sort_by(|a, b| b.1.total_cmp(&a.1));
    for (at, ms) in slowest.into_iter().take(5) {
        let rel: Vec<String> = snaps
            .iter()
            .map(|s| {
                let from_start = at.saturating_duration_since(s.start).as_secs_f64()
                    - s.start.saturating_duration_since(*at).as_secs_f64();
                let end = s.end.unwrap_or(now);
                let from_end = at.saturating_duration_since(end).as_secs_f64()
                    - end.saturating_duration_since(*at).as_secs_f64();
                format!("snapshot start {from_start:+.3} s, end {from_end:+.3} s")
            })
            .collect();
        println!(
            "    slow write {ms:.1} ms issued at {:.3} s ({})",
            at.duration_since(t0).as_secs_f64(),
            rel.join("; ")
        );
    }
    let (mut during, mut outside) = (Vec::new(), Vec::new());
    for (at, ms) in &samples {
        match in_snapshot(*at) {
            true => during.push(*ms),
            false => outside.push(*ms),
        }
    }
    WriteWindow {
        snapshots_s: snaps
            .iter()
            .map(|s| s.end.unwrap_or(now).duration_since(s.start).as_secs_f64())
            .collect(),
        during: lat(during),
        outside: lat(outside),
        writes_per_s: samples.len() as f64 / window_s,
        window_s,
        peak_mib,
    }
}

/// Steps 1 to 3 on one standalone server.
struct StandaloneFigures {
    fill_s: f64,
    fill_rss_mib: f64,
    fill_peak_mib: f64,
    window: WriteWindow,
    restart_s: f64,
    restart_peak_mib: f64,
    restart_rss_mib: f64,
}

async fn standalone(name: &str, s: &mut dyn Standalone, set: &Settings) -> StandaloneFigures {
    let host = format!("127.0.0.1:{}", s.port());
    let w = bench_client(&host).await;
    let fill_s = fill_and_mark(&w, ROOT, set.n, b"filled").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let pid = s.pid();
    let (fill_rss_mib, fill_peak_mib) = (rss_mib(pid), status_mib(pid, "VmHWM:"));
    println!(
        "  {name}: {} znodes of 100 B in {fill_s:.1} s, RSS {fill_rss_mib:.0} MiB (peak {fill_peak_mib:.0})",
        set.n
    );

    let window = write_window(s, set).await;
    println!(
        "  {name}: snapshots in the write window: {:?} s; during p50/p99/p999/max {:.2}/{:.2}/{:.2}/{:.2} ms \
         ({} writes); outside {:.2}/{:.2}/{:.2}/{:.2} ms ({} writes); {:.0} writes/s over {:.1} s",
        window.snapshots_s,
        window.during.p50,
        window.during.p99,
        window.during.p999,
        window.during.max,
        window.during.n,
        window.outside.p50,
        window.outside.p99,
        window.outside.p999,
        window.outside.max,
        window.outside.n,
        window.writes_per_s,
        window.window_s,
    );
    w.set_data("/last", b"after the window", None)
        .await
        .expect("write /last");
    let _ = w.close().await;

    s.kill_and_restart();
    let took = wait_serving(
        s.port(),
        "standalone",
        "/last",
        b"after the window",
        SERVE_TIMEOUT,
    )
    .await;
    let pid = s.pid();
    let restart_peak_mib = status_mib(pid, "VmHWM:");
    let restart_rss_mib = rss_mib(pid);
    println!(
        "  {name}: restart to serving {:.2} s, peak RSS {restart_peak_mib:.0} MiB",
        took.as_secs_f64()
    );
    StandaloneFigures {
        fill_s,
        fill_rss_mib,
        fill_peak_mib,
        window,
        restart_s: took.as_secs_f64(),
        restart_peak_mib,
        restart_rss_mib,
    }
}

/// Step 4.
struct SyncFigures {
    fill_s: f64,
    serve_s: f64,
    how: String,
    member_peak_mib: f64,
    leader_peak_mib: f64,
}

async fn full_sync(c: &mut dyn Cluster, m: usize) -> SyncFigures {
    let ports = c.ports();
    let leader = wait_quorum(c, Duration::from_secs(60));
    let f = (0..ports.len())
        .rev()
        .find(|i| *i != leader)
        .expect("a follower");
    c.kill(f);
    for d in c.dirs(f) {
        let v2 = d.join("version-2");
        if v2.exists() {
            std::fs::remove_dir_all(&v2).expect("wipe version-2");
        }
    }
    let w: Client = bench_client(&format!("127.0.0.1:{}", ports[leader])).await;
    let fill_s = fill_and_mark(&w, ROOT, m, b"synced").await;
    println!(
        "  {}: {m} znodes of 100 B through 2 of 3 members in {fill_s:.1} s",
        c.name()
    );
    let _ = w.close().await;
    let lpid = c.pid(leader).expect("leader runs");
    reset_peak_rss(lpid);
    c.restart(f);
    let took = wait_serving(ports[f], "follower", "/last", b"synced", SERVE_TIMEOUT).await;
    let fpid = c.pid(f).expect("new member runs");
    let figures = SyncFigures {
        fill_s,
        serve_s: took.as_secs_f64(),
        how: sync_kind(&c.last_log(f)),
        member_peak_mib: status_mib(fpid, "VmHWM:"),
        leader_peak_mib: status_mib(lpid, "VmHWM:"),
    };
    println!(
        "  {}: new member serving after {:.2} s ({})",
        c.name(),
        figures.serve_s,
        figures.how
    );
    figures
}

fn loadavg() -> String {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    load.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn main() {
    let n: usize = arg("--znodes", 10_000_000);
    let m: usize = arg("--sync-znodes", n);
    let set = Settings {
        n,
        writers: arg("--writers", 4),
        pipeline: arg("--pipeline", 1),
        window_max: Duration::from_secs(arg("--window-max", 240)),
    };
    // No snapshot due during the fill (N/1000 + 1 txns), one due 20,000 to 40,000 writes
    // into the window (at snapCount/2 + rand(snapCount/2) txns, on both servers).
    let snap_count: u64 = arg("--snap-count", 2 * (n as u64 / 1000) + 40_000);
    let heap: u64 = arg(
        "--apache-heap-mib",
        ((n as u64 * 1228) / 1_000_000).max(3072),
    );
    let sync_heap: u64 = arg(
        "--apache-sync-heap-mib",
        ((m as u64 * 1536) / 1_000_000).max(3072),
    );
    let only: String = arg("--only", String::new());
    let rt = bench_runtime();
    println!(
        "{n} znodes of 100 B (standalone), {m} in the 3-member ensemble; snapCount={snap_count}; \
         {} writers x {} in flight; Apache -Xmx{heap}m standalone, -Xmx{sync_heap}m per member, {}; \
         {} CPUs; load average {}",
        set.writers,
        set.pipeline,
        APACHE_JVM.join(" "),
        std::thread::available_parallelism().map_or(0, |p| p.get()),
        loadavg()
    );
    let ensemble_cfg = ["tickTime=2000", "initLimit=30", "syncLimit=10"];

    let ours = (only != "apache").then(|| {
        rt.block_on(async {
            let mut z = ZkStandalone::start(snap_count);
            let a = standalone("zk-server", &mut z, &set).await;
            drop(z);
            let mut e = ProcessEnsemble::start(Options {
                tick_time: 2000,
                init_limit: 30,
                sync_limit: 10,
                ..Options::members(3)
            })
            .await
            .expect("zk-server ensemble");
            let b = full_sync(&mut e, m).await;
            (a, b)
        })
    });
    let apache = (only != "zk").then(|| {
        rt.block_on(async {
            let mut jvm: Vec<String> = APACHE_JVM.iter().map(|s| s.to_string()).collect();
            jvm.push(format!("-Xmx{heap}m"));
            jvm.push(format!("-Dzookeeper.snapCount={snap_count}"));
            let jvm: Vec<&str> = jvm.iter().map(String::as_str).collect();
            let snap_line = format!("snapCount={snap_count}");
            let mut s = ApacheServer::start_with(
                &jvm,
                &["tickTime=2000", "maxSessionTimeout=40000", &snap_line],
            )
            .expect("apache standalone");
            let a = standalone("Apache 3.8", &mut s, &set).await;
            drop(s);
            let mut jvm: Vec<String> = APACHE_JVM.iter().map(|s| s.to_string()).collect();
            jvm.push(format!("-Xmx{sync_heap}m"));
            let jvm: Vec<&str> = jvm.iter().map(String::as_str).collect();
            let mut e =
                ApacheEnsemble::start_with(3, &jvm, &ensemble_cfg).expect("apache ensemble");
            let b = full_sync(&mut e, m).await;
            (a, b)
        })
    });

    println!();
    println!("load average after: {}", loadavg());
    println!();
    println!("| step | measure | zk-server | Apache 3.8 | ratio |");
    println!("|---|---|---|---|---|");
    let cell = |v: Option<f64>, prec: usize| v.map_or("-".into(), |v| format!("{v:.prec$}"));
    let row = |step: &str, what: &str, o: Option<f64>, a: Option<f64>, prec: usize| {
        let ratio = match (o, a) {
            (Some(o), Some(a)) if a > 0.0 => format!("{:.2}x", o / a),
            _ => String::new(),
        };
        println!(
            "| {step} | {what} | {} | {} | {ratio} |",
            cell(o, prec),
            cell(a, prec)
        );
    };
    let (o1, o4) = (ours.as_ref().map(|x| &x.0), ours.as_ref().map(|x| &x.1));
    let (a1, a4) = (apache.as_ref().map(|x| &x.0), apache.as_ref().map(|x| &x.1));
    let fill = format!("fill {n}");
    row(
        &fill,
        "time, s",
        o1.map(|x| x.fill_s),
        a1.map(|x| x.fill_s),
        1,
    );
    row(
        &fill,
        "RSS after, MiB",
        o1.map(|x| x.fill_rss_mib),
        a1.map(|x| x.fill_rss_mib),
        0,
    );
    row(
        &fill,
        "peak RSS, MiB",
        o1.map(|x| x.fill_peak_mib),
        a1.map(|x| x.fill_peak_mib),
        0,
    );
    let snaps = |x: Option<&StandaloneFigures>| {
        x.map_or("-".into(), |x| {
            x.window
                .snapshots_s
                .iter()
                .map(|s| format!("{s:.1}"))
                .collect::<Vec<_>>()
                .join(" + ")
        })
    };
    println!(
        "| writes across a snapshot | snapshot(s) written, s | {} | {} | |",
        snaps(o1),
        snaps(a1)
    );
    for (what, pick) in [
        (
            "during a snapshot",
            (|w: &WriteWindow| w.during) as fn(&WriteWindow) -> Lat,
        ),
        ("outside snapshots", |w: &WriteWindow| w.outside),
    ] {
        let l = |x: Option<&StandaloneFigures>| x.map(|x| pick(&x.window));
        let step = format!("writes {what}");
        row(
            &step,
            "count",
            l(o1).map(|l| l.n as f64),
            l(a1).map(|l| l.n as f64),
            0,
        );
        row(
            &step,
            "p50, ms",
            l(o1).map(|l| l.p50),
            l(a1).map(|l| l.p50),
            2,
        );
        row(
            &step,
            "p99, ms",
            l(o1).map(|l| l.p99),
            l(a1).map(|l| l.p99),
            2,
        );
        row(
            &step,
            "p999, ms",
            l(o1).map(|l| l.p999),
            l(a1).map(|l| l.p999),
            2,
        );
        row(
            &step,
            "max, ms",
            l(o1).map(|l| l.max),
            l(a1).map(|l| l.max),
            2,
        );
    }
    row(
        "writes across a snapshot",
        "writes/s",
        o1.map(|x| x.window.writes_per_s),
        a1.map(|x| x.window.writes_per_s),
        0,
    );
    row(
        "writes across a snapshot",
        "peak RSS, MiB",
        o1.map(|x| x.window.peak_mib),
        a1.map(|x| x.window.peak_mib),
        0,
    );
    row(
        "restart (kill -9)",
        "to serving the last write, s",
        o1.map(|x| x.restart_s),
        a1.map(|x| x.restart_s),
        2,
    );
    row(
        "restart (kill -9)",
        "peak RSS, MiB",
        o1.map(|x| x.restart_peak_mib),
        a1.map(|x| x.restart_peak_mib),
        0,
    );
    row(
        "restart (kill -9)",
        "RSS when serving, MiB",
        o1.map(|x| x.restart_rss_mib),
        a1.map(|x| x.restart_rss_mib),
        0,
    );
    let sync = format!("full sync, {m} znodes");
    row(
        &sync,
        "fill through 2 of 3, s",
        o4.map(|x| x.fill_s),
        a4.map(|x| x.fill_s),
        1,
    );
    println!(
        "| {sync} | synced by | {} | {} | |",
        o4.map_or("-", |x| x.how.as_str()),
        a4.map_or("-", |x| x.how.as_str())
    );
    row(
        &sync,
        "new member start to serving, s",
        o4.map(|x| x.serve_s),
        a4.map(|x| x.serve_s),
        2,
    );
    row(
        &sync,
        "new member peak RSS, MiB",
        o4.map(|x| x.member_peak_mib),
        a4.map(|x| x.member_peak_mib),
        0,
    );
    row(
        &sync,
        "leader peak RSS during the sync, MiB",
        o4.map(|x| x.leader_peak_mib),
        a4.map(|x| x.leader_peak_mib),
        0,
    );
    println!();
    println!(
        "command: cargo bench -p tests --bench big_tree -- --znodes {n} --sync-znodes {m} \
         --writers {} --pipeline {} --snap-count {snap_count} --apache-heap-mib {heap} \
         --apache-sync-heap-mib {sync_heap}",
        set.writers, set.pipeline
    );
}
