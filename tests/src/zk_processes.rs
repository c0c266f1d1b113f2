//! Real `zk-server` processes as an ensemble on loopback, for multi-process failover tests:
//! each member gets its own zoo.cfg (`server.N` lines, `myid`), data and log directories
//! and a stderr log file; members are killed with SIGKILL by their own child handle
//! ([`ProcessEnsemble::kill9`], and all of them on Drop).
//!
//! With [`Options::proxied`], every member reaches every other member's quorum and
//! election ports through its own fault-injecting [`Proxy`] (member A's zoo.cfg names
//! the proxies of the A→B links; its own line names its real ports), so
//! [`ProcessEnsemble::partition`] can cut one member off from all others while clients
//! still reach it directly.
//!
//! When a test panics (or `ZK_PROCESSES_SHOW_LOGS` is set) the members' stderr is printed
//! as the ensemble is dropped; `ZK_PROCESSES_LOG` sets their `RUST_LOG` (e.g.
//! `info,zk_server::host::quorum::driver=debug` shows every election notification).
//!
//! The binary is found by [`zk_server_bin`]: `ZK_SERVER_BIN` when set, else it is built
//! once per test process with `cargo build -p zk-server --bin zk-server` (a no-op when
//! `cargo test --workspace` already built it).
//!
//! ```no_run
//! # async fn f() -> std::io::Result<()> {
//! use tests::zk_processes::{Options, ProcessEnsemble};
//! let mut ens = ProcessEnsemble::start(Options::members(3)).await?;
//! let leader = ens.wait_for_leader(std::time::Duration::from_secs(20)).await.unwrap();
//! ens.kill9(leader);
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::ports::free_ports;
use crate::proxy::Proxy;

/// The `zk-server` binary: `ZK_SERVER_BIN`, or built once with cargo (same target dir
/// and profile as the running tests' `dev` build).
pub fn zk_server_bin() -> io::Result<PathBuf> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    package_bin(&BIN, "ZK_SERVER_BIN", "zk-server")
}

/// The `zkcli` binary (zk-server's zkCli.sh): `ZKCLI_BIN`, or built once as
/// [`zk_server_bin`] is.
pub fn zkcli_bin() -> io::Result<PathBuf> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    package_bin(&BIN, "ZKCLI_BIN", "zkcli")
}

fn package_bin(
    cell: &OnceLock<Result<PathBuf, String>>,
    env: &str,
    name: &str,
) -> io::Result<PathBuf> {
    cell.get_or_init(|| {
        if let Some(p) = std::env::var_os(env) {
            return Ok(PathBuf::from(p));
        }
        build_zk_server_bin(name)
    })
    .clone()
    .map_err(io::Error::other)
}

fn build_zk_server_bin(name: &str) -> Result<PathBuf, String> {
    // Cargo releases its build lock before running tests, so a nested build is safe;
    // when the workspace build already made the binary it is a quick freshness check.
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["build", "-q", "-p", "zk-server", "--bin", name])
        .arg("--manifest-path")
        .arg(&manifest);
    if let Some(dir) = running_target_dir() {
        // The target dir this test binary was built in (even when given by --target-dir).
        cmd.arg("--target-dir").arg(dir);
    }
    let out = cmd
        .args(["--message-format", "json"])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("running cargo build for {name}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo build -p zk-server --bin {name} failed: {}",
            out.status
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter(|l| l.contains("\"reason\":\"compiler-artifact\""))
        .filter_map(|l| {
            let start = l.find("\"executable\":\"")? + "\"executable\":\"".len();
            let rest = l.get(start..)?;
            let end = rest.find('"')?;
            Some(PathBuf::from(rest.get(..end)?))
        })
        .find(|p| p.file_name().is_some_and(|n| n == name))
        .ok_or_else(|| format!("cargo build did not report the {name} executable"))
}

/// `<target>` when this test binary is `<target>/<profile>/deps/<name>`.
fn running_target_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let deps = exe.parent()?;
    if deps.file_name()? != "deps" {
        return None;
    }
    Some(deps.parent()?.parent()?.to_path_buf())
}

/// One `zk-server` process on a zoo.cfg the test wrote (standalone, or one member of an
/// ensemble the test configures itself), SIGKILLed by its own child handle on Drop.
#[derive(Debug)]
pub struct ServerProcess {
    child: Option<Child>,
}

impl ServerProcess {
    /// Runs `zk-server [props...] <cfg>`, its output discarded. Unless the zoo.cfg or the
    /// properties say something about the AdminServer, it runs without one
    /// (`-Dzookeeper.admin.enableServer=false`): parallel tests must not race for port 8080.
    pub fn start_with(cfg: &Path, props: &[&str]) -> io::Result<ServerProcess> {
        let text = std::fs::read_to_string(cfg).unwrap_or_default();
        let admin_set = text.lines().any(|l| l.trim_start().starts_with("admin."))
            || props.iter().any(|p| p.starts_with("-Dzookeeper.admin."));
        let quiet_admin = (!admin_set).then_some("-Dzookeeper.admin.enableServer=false");
        let child = Command::new(zk_server_bin()?)
            .args(quiet_admin)
            .args(props)
            .arg(cfg)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        Ok(ServerProcess { child: Some(child) })
    }

    /// Runs `zk-server [props...] <cfg>` with `RUST_LOG=rust_log`, appending its stdout
    /// and stderr to `log` (a file, as an operator's service manager would).
    pub fn start_logging(
        cfg: &Path,
        props: &[&str],
        log: &Path,
        rust_log: &str,
    ) -> io::Result<ServerProcess> {
        let file = OpenOptions::new().create(true).append(true).open(log)?;
        let child = Command::new(zk_server_bin()?)
            .args(props)
            .arg(cfg)
            .env("RUST_LOG", rust_log)
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()?;
        Ok(ServerProcess { child: Some(child) })
    }

    /// [`ServerProcess::start_logging`] with extra environment variables (e.g.
    /// [`crate::disk_faults::FailingFsync::env`]).
    pub fn start_logging_with_env(
        cfg: &Path,
        log: &Path,
        rust_log: &str,
        env: &[(String, String)],
    ) -> io::Result<ServerProcess> {
        let file = OpenOptions::new().create(true).append(true).open(log)?;
        let child = Command::new(zk_server_bin()?)
            .arg(cfg)
            .env("RUST_LOG", rust_log)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()?;
        Ok(ServerProcess { child: Some(child) })
    }

    /// Runs `zk-server <cfg>`.
    pub fn start(cfg: &Path) -> io::Result<ServerProcess> {
        Self::start_with(cfg, &[])
    }

    /// The process id, while it runs.
    pub fn id(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The process, while it runs (e.g. to `try_wait` after a signal).
    pub fn child(&mut self) -> Option<&mut Child> {
        self.child.as_mut()
    }

    /// Forgets a process that has exited (reaped by the caller).
    pub fn forget(&mut self) {
        self.child = None;
    }

    /// Kills the process with SIGKILL and reaps it.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// How to start the ensemble.
#[derive(Debug, Clone)]
pub struct Options {
    /// Number of voting members (numbered `0..members`).
    pub members: usize,
    /// Number of observers (numbered after the voters): their `server.N` lines end in
    /// `:observer` and their own zoo.cfg says `peerType=observer`.
    pub observers: usize,
    /// `tickTime` in ms.
    pub tick_time: u32,
    /// `initLimit` in ticks.
    pub init_limit: u32,
    /// `syncLimit` in ticks.
    pub sync_limit: u32,
    /// Extra zoo.cfg lines (e.g. `snapCount=100\n`).
    pub extra_cfg: String,
    /// `-Dname=value` arguments for every member.
    pub props: Vec<String>,
    /// Route member-to-member traffic through per-link proxies (see the module docs).
    pub proxied: bool,
    /// `RUST_LOG` of the members (default: `ZK_PROCESSES_LOG`, else `info`).
    pub log_filter: String,
}

impl Options {
    /// `n` voting members and no observers, tickTime 200 ms, initLimit 10, syncLimit 5, no proxies.
    pub fn members(n: usize) -> Options {
        Options {
            members: n,
            observers: 0,
            tick_time: 200,
            init_limit: 10,
            sync_limit: 5,
            extra_cfg: String::new(),
            props: Vec::new(),
            proxied: false,
            log_filter: std::env::var("ZK_PROCESSES_LOG").unwrap_or_else(|_| "info".into()),
        }
    }
}

/// The proxies carrying one member's traffic to another's quorum and election ports.
#[derive(Debug)]
pub struct Link {
    /// To the other member's quorum port.
    pub quorum: Proxy,
    /// To the other member's election port.
    pub election: Proxy,
}

#[derive(Debug)]
struct Member {
    cfg: PathBuf,
    client: SocketAddr,
    log: PathBuf,
    child: Option<Child>,
    starts: usize,
}

/// Running `zk-server` members; members are numbered `0..n` (server id `i + 1`).
#[derive(Debug)]
pub struct ProcessEnsemble {
    bin: PathBuf,
    opts: Options,
    members: Vec<Member>,
    /// `(from, to)` → proxies, when proxied.
    links: BTreeMap<(usize, usize), Link>,
    /// Members cut off by [`ProcessEnsemble::partition`].
    cut: BTreeSet<usize>,
    root: tempfile::TempDir,
}

impl Drop for ProcessEnsemble {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill9(i);
        }
        if std::thread::panicking() || std::env::var_os("ZK_PROCESSES_SHOW_LOGS").is_some() {
            // The temp dir goes with us: show what the members said.
            for i in 0..self.members.len() {
                let text = self.log_text(i);
                let lines: Vec<&str> = text.lines().collect();
                let tail = lines.len().saturating_sub(80);
                eprintln!("----- member {} (server.{}) stderr -----", i, i + 1);
                for l in lines.get(tail..).unwrap_or_default() {
                    eprintln!("{l}");
                }
            }
        }
    }
}

struct Ports {
    client: u16,
    quorum: u16,
    election: u16,
}

impl ProcessEnsemble {
    /// Writes every member's zoo.cfg and myid and starts them all.
    pub async fn start(opts: Options) -> io::Result<ProcessEnsemble> {
        let bin = zk_server_bin()?;
        let root = tempfile::tempdir()?;
        let voters = opts.members;
        let n = voters + opts.observers;
        let ports: Vec<Ports> = free_ports(3 * n)?
            .chunks(3)
            .map(|p| Ports {
                client: p[0],
                quorum: p[1],
                election: p[2],
            })
            .collect();
        let mut links = BTreeMap::new();
        if opts.proxied {
            for from in 0..n {
                for (to, p) in ports.iter().enumerate() {
                    if from != to {
                        let quorum = Proxy::start(loopback(p.quorum)).await?;
                        let election = Proxy::start(loopback(p.election)).await?;
                        links.insert((from, to), Link { quorum, election });
                    }
                }
            }
        }
        let mut members = Vec::new();
        for i in 0..n {
            let dir = root.path().join(format!("m{}", i + 1));
            let data = dir.join("data");
            let logs = dir.join("log");
            std::fs::create_dir_all(&data)?;
            std::fs::create_dir_all(&logs)?;
            std::fs::write(data.join("myid"), format!("{}\n", i + 1))?;
            let mut servers = String::new();
            for (j, p) in ports.iter().enumerate() {
                let (q, e) = match links.get(&(i, j)) {
                    Some(l) => (l.quorum.addr().port(), l.election.addr().port()),
                    None => (p.quorum, p.election),
                };
                let kind = if j < voters { "" } else { ":observer" };
                servers.push_str(&format!(
                    "server.{}=127.0.0.1:{q}:{e}{kind};127.0.0.1:{}\n",
                    j + 1,
                    p.client
                ));
            }
            if i >= voters {
                servers.push_str("peerType=observer\n");
            }
            let cfg = dir.join("zoo.cfg");
            std::fs::write(
                &cfg,
                format!(
                    "tickTime={}\ninitLimit={}\nsyncLimit={}\ndataDir={}\ndataLogDir={}\n\
                     4lw.commands.whitelist=srvr,ruok\nadmin.enableServer=false\n{}{servers}",
                    opts.tick_time,
                    opts.init_limit,
                    opts.sync_limit,
                    data.display(),
                    logs.display(),
                    opts.extra_cfg,
                ),
            )?;
            members.push(Member {
                cfg,
                client: loopback(ports[i].client),
                log: dir.join("stderr.log"),
                child: None,
                starts: 0,
            });
        }
        let mut ens = ProcessEnsemble {
            bin,
            opts,
            members,
            links,
            cut: BTreeSet::new(),
            root,
        };
        for i in 0..n {
            ens.restart(i)?;
        }
        Ok(ens)
    }

    /// Whether member `i` is an observer.
    pub fn is_observer(&self, i: usize) -> bool {
        i >= self.opts.members && i < self.members.len()
    }

    /// Number of members (voters and observers).
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether there are no members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The temp dir holding every member's files.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// `host:port,...` of every member's client port.
    pub fn connect_string(&self) -> String {
        let v: Vec<String> = self.members.iter().map(|m| m.client.to_string()).collect();
        v.join(",")
    }

    /// Client address of member `i`.
    pub fn client_addr(&self, i: usize) -> SocketAddr {
        self.members[i].client
    }

    /// Member `i`'s process id while it runs (to read its CPU time and memory).
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.members.get(i)?.child.as_ref().map(Child::id)
    }

    /// Member `i`'s `dataDir` and `dataLogDir` (each gets its own `version-2`).
    pub fn data_dirs(&self, i: usize) -> [PathBuf; 2] {
        let dir = self.members[i].cfg.with_file_name("");
        [dir.join("data"), dir.join("log")]
    }

    /// Whether member `i` was started and not killed.
    pub fn is_running(&self, i: usize) -> bool {
        self.members.get(i).is_some_and(|m| m.child.is_some())
    }

    /// The proxies of the `from` → `to` link (proxied ensembles only).
    pub fn link(&self, from: usize, to: usize) -> Option<&Link> {
        self.links.get(&(from, to))
    }

    /// (Re)starts member `i` from its directories; stderr is appended to its log file.
    pub fn restart(&mut self, i: usize) -> io::Result<()> {
        self.kill9(i);
        let m = &mut self.members[i];
        m.starts += 1;
        let mut log = OpenOptions::new().create(true).append(true).open(&m.log)?;
        writeln!(log, "===== start {} =====", m.starts)?;
        let child = Command::new(&self.bin)
            .args(&self.opts.props)
            .arg(&m.cfg)
            .env("RUST_LOG", &self.opts.log_filter)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()?;
        m.child = Some(child);
        Ok(())
    }

    /// Kills member `i` with SIGKILL (by its child handle) and reaps it.
    pub fn kill9(&mut self, i: usize) {
        if let Some(mut c) = self.members.get_mut(i).and_then(|m| m.child.take()) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops member `i` with SIGSTOP (a stalled process: its sockets stay open and mute),
    /// by its own pid; false when it is not running. [`ProcessEnsemble::resume`] continues
    /// it; a stopped member is still killed on Drop (SIGKILL ends stopped processes too).
    pub fn pause(&mut self, i: usize) -> bool {
        self.signal(i, libc::SIGSTOP)
    }

    /// Continues member `i` after [`ProcessEnsemble::pause`] (SIGCONT).
    pub fn resume(&mut self, i: usize) -> bool {
        self.signal(i, libc::SIGCONT)
    }

    fn signal(&mut self, i: usize, sig: libc::c_int) -> bool {
        let Some(c) = self.members.get_mut(i).and_then(|m| m.child.as_mut()) else {
            return false;
        };
        // Not yet reaped (we hold the Child), so the pid cannot have been reused.
        if !matches!(c.try_wait(), Ok(None)) {
            return false;
        }
        let Ok(pid) = libc::pid_t::try_from(c.id()) else {
            return false;
        };
        // SAFETY: kill(2) with our own child's pid and a valid signal number.
        unsafe { libc::kill(pid, sig) == 0 }
    }

    /// Member `i`'s stderr so far (all its runs).
    pub fn log_text(&self, i: usize) -> String {
        std::fs::read_to_string(&self.members[i].log).unwrap_or_default()
    }

    /// Member `i`'s stderr of its latest run.
    pub fn last_run_log(&self, i: usize) -> String {
        let text = self.log_text(i);
        let marker = format!("===== start {} =====", self.members[i].starts);
        match text.find(&marker) {
            Some(at) => text[at..].to_string(),
            None => text,
        }
    }

    /// Sends a four-letter word to member `i`; empty when it does not answer.
    pub async fn four_letter(&self, i: usize, cmd: &str) -> String {
        let addr = self.members[i].client;
        let talk = async {
            let mut s = TcpStream::connect(addr).await?;
            s.write_all(cmd.as_bytes()).await?;
            let mut out = String::new();
            s.read_to_string(&mut out).await?;
            Ok::<String, io::Error>(out)
        };
        match tokio::time::timeout(Duration::from_secs(2), talk).await {
            Ok(Ok(s)) => s,
            _ => String::new(),
        }
    }

    /// `Mode:` of member `i` (`leader`, `follower`, `observer`), `None` when it is not serving.
    pub async fn mode(&self, i: usize) -> Option<String> {
        if !self.is_running(i) {
            return None;
        }
        self.four_letter(i, "srvr")
            .await
            .lines()
            .find_map(|l| l.strip_prefix("Mode: ").map(str::to_owned))
    }

    /// Last zxid member `i` reports in `srvr`.
    pub async fn zxid(&self, i: usize) -> Option<i64> {
        let text = self.four_letter(i, "srvr").await;
        let z = text.lines().find_map(|l| l.strip_prefix("Zxid: 0x"))?;
        i64::from_str_radix(z.trim(), 16).ok()
    }

    /// Waits until every running member serves (voters as leader or follower, observers
    /// as observer), exactly one as leader; returns it.
    pub async fn wait_for_leader(&self, timeout: Duration) -> Option<usize> {
        let running: Vec<usize> = (0..self.len()).filter(|i| self.is_running(*i)).collect();
        self.wait_for_leader_among(&running, timeout).await
    }

    /// Waits until `members` all serve, exactly one of them as leader (observers among
    /// them as observers); returns it.
    pub async fn wait_for_leader_among(
        &self,
        members: &[usize],
        timeout: Duration,
    ) -> Option<usize> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let mut leaders = Vec::new();
            let mut followers = 0;
            for &i in members {
                match self.mode(i).await.as_deref() {
                    Some("leader") => leaders.push(i),
                    Some("follower") if !self.is_observer(i) => followers += 1,
                    Some("observer") if self.is_observer(i) => followers += 1,
                    _ => {}
                }
            }
            if leaders.len() == 1 && followers + 1 == members.len() {
                return Some(leaders[0]);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Cuts member `i` off from every other member (both directions, quorum and
    /// election links; proxied ensembles only). Its client port stays reachable.
    pub fn partition(&mut self, i: usize) {
        self.cut.insert(i);
        for ((from, to), l) in &self.links {
            if *from == i || *to == i {
                l.quorum.set_blackhole(true);
                l.election.set_blackhole(true);
            }
        }
    }

    /// Ends every partition. The connections that were cut are closed first (a blackhole
    /// drops bytes, which TCP never does), so the members reconnect on clean streams.
    pub fn heal(&mut self) {
        let cut = std::mem::take(&mut self.cut);
        for ((from, to), l) in &self.links {
            if !cut.contains(from) && !cut.contains(to) {
                continue;
            }
            l.quorum.drop_connections();
            l.election.drop_connections();
            l.quorum.set_blackhole(false);
            l.election.set_blackhole(false);
        }
    }
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}
