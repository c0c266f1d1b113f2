//! What the side-by-side benches (`tests/benches/*`) share: one view of a zk-server or
//! Apache ensemble of processes, the release zk-server binary, command-line numbers, and
//! a process's CPU time and memory read from `/proc`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use zk_client::{Acl, Client, CreateMode};

use crate::apache::{mode, ApacheEnsemble};
use crate::zk_processes::ProcessEnsemble;

/// What a bench needs from an ensemble of either kind, members numbered from 0.
pub trait Cluster {
    /// The server's name in result tables.
    fn name(&self) -> &'static str;
    /// Every member's client port.
    fn ports(&self) -> Vec<u16>;
    /// Member `i`'s process id while it runs.
    fn pid(&self, i: usize) -> Option<u32>;
    /// Whether member `i` runs (started and not killed).
    fn running(&self, i: usize) -> bool;
    /// `kill -9` of member `i`.
    fn kill(&mut self, i: usize);
    /// Starts member `i` again on its directories.
    fn restart(&mut self, i: usize);
    /// Member `i`'s directories holding `version-2`.
    fn dirs(&self, i: usize) -> Vec<PathBuf>;
    /// Member `i`'s log of its latest run.
    fn last_log(&self, i: usize) -> String;
}

impl Cluster for ApacheEnsemble {
    fn name(&self) -> &'static str {
        "Apache 3.8"
    }
    fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|n| n.client_port).collect()
    }
    fn pid(&self, i: usize) -> Option<u32> {
        self.nodes[i].pid()
    }
    fn running(&self, i: usize) -> bool {
        self.nodes[i].is_running()
    }
    fn kill(&mut self, i: usize) {
        self.nodes[i].kill();
    }
    fn restart(&mut self, i: usize) {
        self.nodes[i].restart().expect("restart apache node");
    }
    fn dirs(&self, i: usize) -> Vec<PathBuf> {
        vec![self.nodes[i].data_dir()]
    }
    fn last_log(&self, i: usize) -> String {
        // The log file is truncated at each (re)start.
        self.nodes[i].log()
    }
}

impl Cluster for ProcessEnsemble {
    fn name(&self) -> &'static str {
        "zk-server"
    }
    fn ports(&self) -> Vec<u16> {
        (0..self.len())
            .map(|i| self.client_addr(i).port())
            .collect()
    }
    fn pid(&self, i: usize) -> Option<u32> {
        ProcessEnsemble::pid(self, i)
    }
    fn running(&self, i: usize) -> bool {
        self.is_running(i)
    }
    fn kill(&mut self, i: usize) {
        self.kill9(i);
    }
    fn restart(&mut self, i: usize) {
        ProcessEnsemble::restart(self, i).expect("restart zk-server member");
    }
    fn dirs(&self, i: usize) -> Vec<PathBuf> {
        self.data_dirs(i).to_vec()
    }
    fn last_log(&self, i: usize) -> String {
        self.last_run_log(i)
    }
}

/// The release zk-server binary: `ZK_SERVER_BIN`, or built into the target directory of
/// the bench running (`<target>/release/deps/<bench>`); the test kit would build a debug
/// one.
pub fn release_zk_server_bin() -> PathBuf {
    if let Ok(p) = std::env::var("ZK_SERVER_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target profile dir");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "-p",
            "zk-server",
            "--bin",
            "zk-server",
        ])
        .env(
            "CARGO_TARGET_DIR",
            profile_dir.parent().expect("target dir"),
        )
        .status()
        .expect("cargo build zk-server");
    assert!(status.success(), "building zk-server failed");
    profile_dir.join("zk-server")
}

/// The value after `name` on the command line, or `default`.
pub fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Waits until every running member is leader or follower and exactly one leads; returns
/// the leader's index. Panics after `timeout`.
pub fn wait_quorum(c: &dyn Cluster, timeout: Duration) -> usize {
    let deadline = Instant::now() + timeout;
    loop {
        let ports = c.ports();
        let modes: Vec<Option<String>> = (0..ports.len())
            .map(|i| c.running(i).then(|| mode(ports[i])).flatten())
            .collect();
        let leaders: Vec<usize> = (0..ports.len())
            .filter(|&i| modes[i].as_deref() == Some("leader"))
            .collect();
        let all_up = (0..ports.len())
            .all(|i| !c.running(i) || matches!(modes[i].as_deref(), Some("leader" | "follower")));
        if all_up && leaders.len() == 1 {
            return leaders[0];
        }
        assert!(
            Instant::now() < deadline,
            "{}: no quorum within {timeout:?}: {modes:?}",
            c.name()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// CPU time (user + system) of a process so far, in seconds.
pub fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): the state is field 3.
    let rest = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15, i.e. 11 and 12 after the state.
    (ticks(11) + ticks(12)) as f64 / 100.0
}

/// A `/proc/PID/status` memory field in MiB (`VmRSS:`, `VmHWM:`); 0 when unreadable.
pub fn status_mib(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

/// Resident memory of a process now, MiB.
pub fn rss_mib(pid: u32) -> f64 {
    status_mib(pid, "VmRSS:")
}

/// Resets a process's peak RSS (VmHWM) to its current RSS, so that a later VmHWM is the
/// peak of what happened in between.
pub fn reset_peak_rss(pid: u32) {
    if let Err(e) = std::fs::write(format!("/proc/{pid}/clear_refs"), "5") {
        eprintln!("could not reset VmHWM of {pid} ({e}): its peak covers its whole run");
    }
}

/// Children per parent znode (and creates per multi) in [`fill`].
pub const FANOUT: usize = 1000;

/// A zk-client session for a bench: 30 s timeout (the server may clamp it), a fixed
/// 10 ms retry.
pub async fn bench_client(hosts: &str) -> Client {
    Client::builder(hosts)
        .session_timeout(Duration::from_secs(30))
        .retry_policy(zk_client::RetryPolicy::fixed(Duration::from_millis(10)))
        .connect()
        .await
        .expect("session")
}

/// The path [`fill`] gives znode `i` under `root`.
pub fn fill_path(root: &str, i: usize) -> String {
    format!("{root}/p{}/n{i}", i / FANOUT)
}

/// Creates `count` znodes of 100 B under `root` (parents of [`FANOUT`] children, one multi
/// per parent, 32 in flight).
pub async fn fill(c: &Client, root: &str, count: usize) {
    let acl = Acl::open_unsafe();
    c.create(root, b"", &acl, CreateMode::Persistent)
        .await
        .expect("create the fill's root");
    let data = [b'x'; 100];
    let parents = count.div_ceil(FANOUT);
    let mut t = c.multi();
    for p in 0..parents {
        t = t.create(&format!("{root}/p{p}"), b"", &acl, CreateMode::Persistent);
    }
    t.commit().await.expect("create the fill's parents");
    let results: Vec<()> = stream::iter(0..parents)
        .map(|p| {
            let acl = &acl;
            async move {
                let mut t = c.multi();
                for i in p * FANOUT..((p + 1) * FANOUT).min(count) {
                    t = t.create(&fill_path(root, i), &data, acl, CreateMode::Persistent);
                }
                t.commit().await.expect("fill multi");
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    assert_eq!(results.len(), parents);
}

/// Waits until the server on `port` says `want_mode` in `srvr` and a client pinned to it
/// reads `want` at `path`; the time that took. Panics after `timeout`.
pub async fn wait_serving(
    port: u16,
    want_mode: &str,
    path: &str,
    want: &[u8],
    timeout: Duration,
) -> Duration {
    let t0 = Instant::now();
    let host = format!("127.0.0.1:{port}");
    let mut pinned: Option<Client> = None;
    loop {
        assert!(
            t0.elapsed() < timeout,
            "server on port {port} does not serve {path} within {timeout:?}"
        );
        let serves = tokio::task::spawn_blocking(move || mode(port))
            .await
            .expect("srvr")
            .is_some_and(|m| m == want_mode);
        if serves && pinned.is_none() {
            let connect = Client::builder(&host)
                .session_timeout(Duration::from_secs(30))
                .retry_policy(zk_client::RetryPolicy::fixed(Duration::from_millis(10)))
                .connect();
            if let Ok(Ok(c)) = tokio::time::timeout(Duration::from_secs(2), connect).await {
                pinned = Some(c);
            }
        }
        if let Some(c) = &pinned {
            if let Ok(Ok((data, _))) =
                tokio::time::timeout(Duration::from_secs(2), c.get_data(path, false)).await
            {
                if data.as_ref() == want {
                    let took = t0.elapsed();
                    let _ = c.close().await;
                    return took;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// How a follower's latest run was synced, from its log (`SNAP`, `DIFF`, `TRUNC`, in
/// order; `?` when the log says nothing), for zk-server's and Apache's logs alike.
pub fn sync_kind(log: &str) -> String {
    let mut kinds: Vec<&str> = Vec::new();
    for l in log.lines() {
        let k = if l.contains("Getting a snapshot from leader") {
            "SNAP"
        } else if l.contains("Getting a diff from the leader") {
            "DIFF"
        } else if l.contains("Truncating log") || l.contains("Getting a truncate") {
            "TRUNC"
        } else {
            continue;
        };
        kinds.push(k);
    }
    match kinds.is_empty() {
        true => "?".into(),
        false => kinds.join(", then "),
    }
}

/// What every side-by-side bench starts with: `ZK_SERVER_BIN` pointing at a release build
/// (the test kit starts members from it; set before any thread starts), and a 2-thread
/// runtime, as the machine the figures are measured on has 2 cores.
pub fn bench_runtime() -> tokio::runtime::Runtime {
    std::env::set_var("ZK_SERVER_BIN", release_zk_server_bin());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// [`fill`], then `/last` created with `mark`: the znode a catch-up or a restart is timed
/// by. Seconds the whole took.
pub async fn fill_and_mark(c: &Client, root: &str, count: usize, mark: &[u8]) -> f64 {
    let started = Instant::now();
    fill(c, root, count).await;
    c.create("/last", mark, &Acl::open_unsafe(), CreateMode::Persistent)
        .await
        .expect("create /last");
    started.elapsed().as_secs_f64()
}

/// A raw session's handshake for the memory benches: a 600 s timeout, so sessions that
/// send nothing (not even pings) outlive the measurement.
pub fn long_session_request() -> zk_proto::ConnectRequest {
    zk_proto::ConnectRequest {
        timeout: 600_000,
        passwd: vec![0u8; 16].into(),
        ..Default::default()
    }
}

/// Creates `/w/n0 .. /w/n{z-1}` (100 B each) through `addr`, 1,000 requests in flight.
pub async fn fill_znodes(addr: std::net::SocketAddr, z: usize) {
    use zk_proto::ops::CreateRequest;
    use zk_proto::Request;
    let (mut c, _) = crate::raw::RawClient::handshake(addr, long_session_request())
        .await
        .expect("filler session");
    let create = |path: String| {
        Request::Create(CreateRequest {
            path,
            data: Some(vec![b'x'; 100].into()),
            acl: zk_proto::Acl::open_unsafe(),
            flags: zk_proto::CreateMode::Persistent.to_flags(),
        })
    };
    c.call(create("/w".into())).await;
    for chunk in (0..z).collect::<Vec<_>>().chunks(1000) {
        for i in chunk {
            c.send(&create(format!("/w/n{i}"))).await;
        }
        for _ in chunk {
            c.recv().await;
        }
    }
}

/// Sets `per` data watches on each of `sessions` (session `i`, counted from `first`,
/// watches `/w/n{(i * per + k) % z}`), 500 sessions' requests in flight at once.
pub async fn watch_znodes(
    sessions: &mut [crate::raw::RawClient],
    first: usize,
    per: usize,
    z: usize,
) {
    use zk_proto::ops::PathWatchRequest;
    use zk_proto::Request;
    for (ci, chunk) in sessions.chunks_mut(500).enumerate() {
        futures::future::join_all(chunk.iter_mut().enumerate().map(|(j, c)| async move {
            let i = first + ci * 500 + j;
            for k in 0..per {
                let path = format!("/w/n{}", (i * per + k) % z);
                c.send(&Request::GetData(PathWatchRequest { path, watch: true }))
                    .await;
            }
            for _ in 0..per {
                c.recv().await;
            }
        }))
        .await;
    }
}

/// Opens `n` raw sessions (see [`long_session_request`]) to `addr` from `source`, 500
/// handshakes in flight at once.
pub async fn open_raw_sessions(
    addr: std::net::SocketAddr,
    source: std::net::SocketAddr,
    n: usize,
) -> Vec<crate::raw::RawClient> {
    let mut sessions = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let opened = futures::future::join_all(chunk.iter().map(|_| async {
            crate::raw::RawClient::handshake_from(source, addr, long_session_request())
                .await
                .expect("session")
                .0
        }))
        .await;
        sessions.extend(opened);
    }
    sessions
}

/// The value of `key` (e.g. `zk_global_sessions`) in `mntr` of the server on `port`, or
/// `?` when it is missing.
pub fn mntr_value(port: u16, key: &str) -> String {
    crate::apache::four_letter(port, "mntr")
        .lines()
        .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
        .unwrap_or_else(|| "?".into())
}
