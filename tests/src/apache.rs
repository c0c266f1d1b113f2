//! The one place that runs Apache ZooKeeper 3.8 (Debian's jars in /usr/share/java): a
//! standalone server ([`ApacheServer`], on a fresh or a given data dir), a 3-node ensemble
//! ([`ApacheEnsemble`], QuorumPeerMain), its Java CLI ([`cli_command`], [`ApacheServer::cli`]),
//! and the `java` command line for anything else that runs its classes ([`java`], e.g. the
//! Apache members of a mixed ensemble). Servers listen on free loopback ports with their
//! own temp dirs and are killed by their child handle on Drop.
//!
//! ```no_run
//! let zk = tests::apache::ApacheServer::start().unwrap();
//! let hosts = zk.connect_string(); // "127.0.0.1:PORT"
//! ```

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::ports::{free_port, free_ports};

/// Tick time of the servers started here: short, so session timeouts can be short
/// (the server clamps them to [2, 20] ticks = [400 ms, 4 s]).
pub const TICK_MS: u64 = 200;

const JAVA_DIR: &str = "/usr/share/java";

const JARS: &[&str] = &[
    "zookeeper.jar",
    "zookeeper-jute.jar",
    "slf4j-api.jar",
    "slf4j-simple.jar",
    "netty-all.jar",
    // Debian's netty-all.jar is an empty aggregate: the Netty connection factory (which
    // `secureClientPort`, TLS, needs) loads these.
    "netty-buffer.jar",
    "netty-codec.jar",
    "netty-common.jar",
    "netty-handler.jar",
    "netty-resolver.jar",
    "netty-transport.jar",
    "netty-transport-native-epoll.jar",
    "netty-transport-native-unix-common.jar",
    "metrics-core.jar",
    "commons-cli.jar",
    // The AdminServer (Jetty, Jackson): off unless a test asks for it.
    "jetty9-server.jar",
    "jetty9-servlet.jar",
    "jetty9-http.jar",
    "jetty9-io.jar",
    "jetty9-util.jar",
    "jetty9-util-ajax.jar",
    "jetty9-security.jar",
    "servlet-api.jar",
    "jackson-core.jar",
    "jackson-databind.jar",
    "jackson-annotations.jar",
];

/// JVM options of the servers started here unless a caller passes its own to [`java`]:
/// a small heap and a fast start (C1 only), which is what tests want (a benchmark wants
/// the full JIT instead).
pub const TEST_JVM_ARGS: &[&str] = &["-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"];

/// The Java classpath that runs Apache ZooKeeper 3.8 (server and CLI) from Debian's jars.
pub fn classpath() -> String {
    JARS.iter()
        .map(|j| format!("{JAVA_DIR}/{j}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Ok when `java` runs and every jar of [`classpath`] is there; else an error naming what
/// to install. Interop suites fail (never skip) without Apache.
pub fn installed() -> io::Result<()> {
    let missing: Vec<String> = JARS
        .iter()
        .map(|j| Path::new(JAVA_DIR).join(j))
        .filter(|p| !p.exists())
        .map(|p| p.display().to_string())
        .collect();
    if !missing.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "Apache ZooKeeper jars missing ({}): install the Debian packages `zookeeper`, \
                 `libslf4j-java`, `libcommons-cli-java`, `libnetty-java` (see .ci/run)",
                missing.join(", ")
            ),
        ));
    }
    let java = Command::new("java").arg("-version").output();
    if !java.map(|o| o.status.success()).unwrap_or(false) {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "`java` not found: install a Java 17 runtime (default-jre-headless)",
        ));
    }
    Ok(())
}

/// `java <jvm_args> -cp <classpath> <main_class>`: the one command line that runs
/// Apache's classes; callers add the program's own arguments (e.g. a zoo.cfg).
pub fn java(jvm_args: &[&str], main_class: &str) -> Command {
    let mut cmd = Command::new("java");
    cmd.args(jvm_args).args(["-cp", &classpath(), main_class]);
    cmd
}

/// The Java CLI's output without its `WATCHER::` blocks (and without blank lines, which
/// those blocks are made of), and the blocks' event lines, sorted. Java prints each line
/// of a block as one `println("\n" + line)` from its event thread, so a block can land
/// anywhere in the main thread's output, even inside a line that a command prints piece
/// by piece (`ls` prints `[`, then the names), and other output can come between a
/// block's two lines: the blocks are cut out of the text, not out of its lines.
pub fn split_cli_events(out: &str) -> (Vec<String>, Vec<String>) {
    const WATCHER: &str = "\nWATCHER::\n";
    let mut text = format!("\n{out}\n");
    while let Some(i) = text.find(WATCHER) {
        text.replace_range(i..i + WATCHER.len(), "");
    }
    let mut events = Vec::new();
    while let Some(i) = text.find("\nWatchedEvent ") {
        // `text` ends with a newline, so every event line has its end.
        let end = text[i + 1..]
            .find('\n')
            .map_or(text.len() - 1, |e| i + 1 + e);
        events.push(text[i + 1..end].to_owned());
        text.replace_range(i..=end, "");
    }
    let plain = text
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    events.sort();
    (plain, events)
}

/// Apache's Java CLI (`ZooKeeperMain -server <connect>`), its logging off so that its
/// output is only what the commands print (suites compare it between servers).
pub fn cli_command(connect: &str) -> Command {
    let mut cmd = java(
        &["-Dorg.slf4j.simpleLogger.defaultLogLevel=off"],
        "org.apache.zookeeper.ZooKeeperMain",
    );
    cmd.args(["-server", connect]);
    cmd
}

/// Sends a four-letter word and returns the text answer ("" if the server is not up).
pub fn four_letter(port: u16, cmd: &str) -> String {
    let Ok(mut s) = TcpStream::connect_timeout(
        &format!("127.0.0.1:{port}")
            .parse()
            .expect("loopback address"),
        Duration::from_millis(500),
    ) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(cmd.as_bytes()).is_err() {
        return String::new();
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// The server's mode from `srvr` ("standalone", "leader", "follower"), if serving.
pub fn mode(port: u16) -> Option<String> {
    let out = four_letter(port, "srvr");
    out.lines()
        .find_map(|l| l.strip_prefix("Mode: "))
        .map(|m| m.trim().to_owned())
}

/// One Apache server process and its files.
#[derive(Debug)]
pub struct ApacheNode {
    /// 1-based server id (0 for standalone).
    pub id: u32,
    /// Client port.
    pub client_port: u16,
    /// AdminServer port, when started with one ([`ApacheServer::start_with_admin`],
    /// [`ApacheEnsemble::start_with_admin`]).
    pub admin_port: Option<u16>,
    /// Extra environment of the process from its next (re)start on (e.g.
    /// [`crate::disk_faults::FailingFsync::env`]).
    pub env: Vec<(String, String)>,
    cfg: PathBuf,
    log: PathBuf,
    main_class: &'static str,
    jvm_props: Vec<String>,
    child: Option<Child>,
}

impl ApacheNode {
    fn spawn(&mut self) -> io::Result<()> {
        installed()?;
        let log = std::fs::File::create(&self.log)?;
        let mut args: Vec<&str> = TEST_JVM_ARGS.to_vec();
        args.extend([
            "-Dzookeeper.extendedTypesEnabled=true",
            "-Dzookeeper.admin.enableServer=false",
            "-Dzookeeper.4lw.commands.whitelist=*",
        ]);
        args.extend(self.jvm_props.iter().map(String::as_str));
        let child = java(&args, self.main_class)
            .arg(&self.cfg)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        self.child = Some(child);
        Ok(())
    }

    /// True while the process runs.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The JVM's process id while it runs (to read its CPU time and memory).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// An error with the log when the process exited by itself (e.g. a bad config).
    fn check_alive(&mut self) -> io::Result<()> {
        if let Some(c) = self.child.as_mut() {
            if let Some(status) = c.try_wait()? {
                self.child = None;
                return Err(io::Error::other(format!(
                    "Apache ZooKeeper exited with {status}:\n{}",
                    self.log()
                )));
            }
        }
        Ok(())
    }

    /// Waits up to `timeout` for the process to exit by itself; its status if it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            let status = self.child.as_mut()?.try_wait().ok().flatten();
            if let Some(st) = status {
                self.child = None;
                return Some(st);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the process (SIGKILL, by pid) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the process again with the same config and data.
    pub fn restart(&mut self) -> io::Result<()> {
        self.kill();
        self.spawn()
    }

    /// The node's `dataDir` (myid, and `version-2` with snapshots and txn logs).
    pub fn data_dir(&self) -> PathBuf {
        self.cfg.with_file_name("data")
    }

    /// `127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    /// The server log's file (truncated at each (re)start).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The server log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ApacheNode {
    fn drop(&mut self) {
        self.kill();
    }
}

fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) -> io::Result<()> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(io::Error::new(
        io::ErrorKind::TimedOut,
        format!("{what} not ready after {timeout:?}"),
    ))
}

fn write_cfg(path: &Path, lines: &[String]) -> io::Result<()> {
    std::fs::write(path, lines.join("\n") + "\n")
}

/// zoo.cfg lines turning the AdminServer on at `port` on loopback (they come after the
/// kit's `admin.enableServer=false`, and a later line wins).
fn admin_lines(port: u16) -> Vec<String> {
    vec![
        "admin.enableServer=true".into(),
        format!("admin.serverPort={port}"),
        "admin.serverAddress=127.0.0.1".into(),
    ]
}

/// A standalone Apache ZooKeeper 3.8 server.
#[derive(Debug)]
pub struct ApacheServer {
    /// The process.
    pub node: ApacheNode,
    _dir: tempfile::TempDir,
}

impl ApacheServer {
    /// Starts a standalone server on a free port and waits until it serves.
    pub fn start() -> io::Result<Self> {
        Self::start_with(&[], &[])
    }

    /// Like [`Self::start`] with extra JVM `-D` properties (e.g. a super digest) and extra
    /// zoo.cfg lines.
    pub fn start_with(jvm_props: &[&str], cfg_lines: &[&str]) -> io::Result<Self> {
        let dir = tempfile::tempdir()?;
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data)?;
        Self::launch(dir, &data, jvm_props, cfg_lines, None)
    }

    /// Like [`Self::start_with`] with the AdminServer on a free loopback port
    /// (`node.admin_port`).
    pub fn start_with_admin(jvm_props: &[&str], cfg_lines: &[&str]) -> io::Result<Self> {
        let dir = tempfile::tempdir()?;
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data)?;
        Self::launch(dir, &data, jvm_props, cfg_lines, Some(free_port()?))
    }

    /// Starts a standalone server on an existing `data_dir` (snapshots and txn logs both
    /// there, as `ZooKeeperServerMain <port> <dir>` has them), e.g. one another server
    /// wrote; the zoo.cfg and log go to a temp dir of their own.
    pub fn start_on(data_dir: &Path, jvm_props: &[&str]) -> io::Result<Self> {
        Self::launch(tempfile::tempdir()?, data_dir, jvm_props, &[], None)
    }

    fn launch(
        dir: tempfile::TempDir,
        data: &Path,
        jvm_props: &[&str],
        cfg_lines: &[&str],
        admin_port: Option<u16>,
    ) -> io::Result<Self> {
        let port = free_port()?;
        let cfg = dir.path().join("zoo.cfg");
        write_cfg(
            &cfg,
            &[
                format!("tickTime={TICK_MS}"),
                format!("dataDir={}", data.display()),
                format!("clientPort={port}"),
                "clientPortAddress=127.0.0.1".into(),
                "admin.enableServer=false".into(),
                "4lw.commands.whitelist=*".into(),
                "extendedTypesEnabled=true".into(),
                "maxClientCnxns=0".into(),
            ]
            .into_iter()
            .chain(cfg_lines.iter().map(|l| l.to_string()))
            .chain(admin_port.map(admin_lines).unwrap_or_default())
            .collect::<Vec<String>>(),
        )?;
        let mut node = ApacheNode {
            id: 0,
            client_port: port,
            admin_port,
            cfg,
            log: dir.path().join("server.log"),
            main_class: "org.apache.zookeeper.server.ZooKeeperServerMain",
            jvm_props: jvm_props.iter().map(|p| p.to_string()).collect(),
            env: Vec::new(),
            child: None,
        };
        node.spawn()?;
        let mut s = ApacheServer { node, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        while mode(port).as_deref() != Some("standalone") {
            s.node.check_alive()?;
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "apache standalone not serving after 30 s:\n{}",
                        s.node.log()
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(s)
    }

    /// Waits until `srvr` reports standalone mode.
    pub fn wait_serving(&self) -> io::Result<()> {
        let port = self.node.client_port;
        wait_until("apache standalone", Duration::from_secs(30), || {
            mode(port).as_deref() == Some("standalone")
        })
    }

    /// Runs Java CLI commands against this server (one JVM, commands on stdin, then
    /// `quit`) and returns its stdout and stderr; panics if the server died or the CLI
    /// runs for over 60 s.
    pub fn cli(&mut self, commands: &[&str]) -> String {
        if let Err(e) = self.node.check_alive() {
            panic!("{e}");
        }
        let mut child = cli_command(&self.connect_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn java cli");
        {
            let mut stdin = child.stdin.take().expect("cli stdin");
            for c in commands {
                writeln!(stdin, "{c}").expect("write cli command");
            }
            writeln!(stdin, "quit").expect("write quit");
        }
        let (mut out, mut err) = (
            child.stdout.take().expect("cli stdout"),
            child.stderr.take().expect("cli stderr"),
        );
        let readers = std::thread::spawn(move || {
            let mut o = Vec::new();
            let _ = out.read_to_end(&mut o);
            let _ = err.read_to_end(&mut o);
            o
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        while child.try_wait().expect("cli status").is_none() {
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("Java CLI still running after 60 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        String::from_utf8_lossy(&readers.join().expect("cli output")).into_owned()
    }

    /// The server's output so far (for failure messages and log checks).
    pub fn log_text(&self) -> String {
        self.node.log()
    }

    /// Stops the server with SIGKILL (Apache fsyncs every commit: this is a crash that
    /// loses nothing acknowledged).
    pub fn stop(mut self) {
        self.node.kill();
    }

    /// `127.0.0.1:PORT`.
    pub fn connect_string(&self) -> String {
        self.node.address()
    }

    /// Client port.
    pub fn port(&self) -> u16 {
        self.node.client_port
    }
}

/// A 3-node Apache ZooKeeper 3.8 ensemble (QuorumPeerMain).
#[derive(Debug)]
pub struct ApacheEnsemble {
    /// The servers, ids 1..=3.
    pub nodes: Vec<ApacheNode>,
    _dir: tempfile::TempDir,
    // Last: released after the nodes are killed.
    _turn: EnsembleTurn,
}

/// One Apache ensemble at a time per test process. Several at once (the tests of a binary
/// run in parallel) put nine JVMs and our own members on two cores: a starved follower
/// misses syncLimit (2 s here), drops out and closes its clients, and a test that
/// connects then sees "closed" for reasons that are not the behaviour under test.
#[derive(Debug)]
pub(crate) struct EnsembleTurn;

static TURN_TAKEN: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
static TURN_FREE: std::sync::Condvar = std::sync::Condvar::new();

impl EnsembleTurn {
    /// Blocks until no other Apache ensemble of this process is running.
    pub(crate) fn take() -> EnsembleTurn {
        let mut taken = TURN_TAKEN.lock().unwrap_or_else(|e| e.into_inner());
        while *taken {
            taken = TURN_FREE.wait(taken).unwrap_or_else(|e| e.into_inner());
        }
        *taken = true;
        EnsembleTurn
    }
}

impl Drop for EnsembleTurn {
    fn drop(&mut self) {
        *TURN_TAKEN.lock().unwrap_or_else(|e| e.into_inner()) = false;
        TURN_FREE.notify_one();
    }
}

impl ApacheEnsemble {
    /// Starts three servers and waits until one leads and two follow. Blocks while another
    /// Apache ensemble of this process runs (see `EnsembleTurn`): call it from
    /// `spawn_blocking` in async tests.
    pub fn start() -> io::Result<Self> {
        Self::start_n(3)
    }

    /// Starts `n` servers and waits for a quorum with every node serving.
    pub fn start_n(n: u32) -> io::Result<Self> {
        Self::start_with(n, &[], &[])
    }

    /// Like [`Self::start_n`] with extra JVM `-D` properties and extra zoo.cfg lines on every
    /// node (e.g. `-Dreadonlymode.enabled=true` and `localSessionsEnabled=true`, which a
    /// read-only server needs to create sessions).
    pub fn start_with(n: u32, jvm_props: &[&str], cfg_lines: &[&str]) -> io::Result<Self> {
        Self::launch(n, jvm_props, cfg_lines, false)
    }

    /// Like [`Self::start_n`] with each node's AdminServer on a free loopback port
    /// (`nodes[i].admin_port`).
    pub fn start_with_admin(n: u32) -> io::Result<Self> {
        Self::launch(n, &[], &[], true)
    }

    fn launch(n: u32, jvm_props: &[&str], cfg_lines: &[&str], admin: bool) -> io::Result<Self> {
        let turn = EnsembleTurn::take();
        let dir = tempfile::tempdir()?;
        let ports = free_ports(3 * n as usize)?;
        let servers: Vec<String> = (0..n)
            .map(|i| {
                let b = (3 * i) as usize;
                format!(
                    "server.{}=127.0.0.1:{}:{}:participant;127.0.0.1:{}",
                    i + 1,
                    ports[b + 1],
                    ports[b + 2],
                    ports[b]
                )
            })
            .collect();
        let mut nodes = Vec::new();
        for i in 0..n {
            let ndir = dir.path().join(format!("n{}", i + 1));
            let data = ndir.join("data");
            std::fs::create_dir_all(&data)?;
            std::fs::write(data.join("myid"), format!("{}\n", i + 1))?;
            let cfg = ndir.join("zoo.cfg");
            let mut lines = vec![
                format!("tickTime={TICK_MS}"),
                "initLimit=20".to_owned(),
                "syncLimit=10".to_owned(),
                format!("dataDir={}", data.display()),
                "admin.enableServer=false".into(),
                "4lw.commands.whitelist=*".into(),
                "extendedTypesEnabled=true".into(),
                "maxClientCnxns=0".into(),
                "standaloneEnabled=false".into(),
                "reconfigEnabled=true".into(),
                "skipACL=no".into(),
                "quorumListenOnAllIPs=false".into(),
                "cnxTimeout=1000".into(),
            ];
            lines.extend(cfg_lines.iter().map(|l| l.to_string()));
            let admin_port = match admin {
                true => Some(free_port()?),
                false => None,
            };
            lines.extend(admin_port.map(admin_lines).unwrap_or_default());
            lines.extend(servers.iter().cloned());
            write_cfg(&cfg, &lines)?;
            nodes.push(ApacheNode {
                id: i + 1,
                client_port: ports[(3 * i) as usize],
                admin_port,
                cfg,
                log: ndir.join("server.log"),
                main_class: "org.apache.zookeeper.server.quorum.QuorumPeerMain",
                jvm_props: jvm_props.iter().map(|p| p.to_string()).collect(),
                env: Vec::new(),
                child: None,
            });
        }
        for node in &mut nodes {
            node.spawn()?;
        }
        let e = ApacheEnsemble {
            nodes,
            _dir: dir,
            _turn: turn,
        };
        e.wait_quorum(Duration::from_secs(60))?;
        Ok(e)
    }

    /// Waits until the node with `port` reports `mode` in `srvr` (e.g. "read-only").
    pub fn wait_mode(&self, port: u16, want: &str, timeout: Duration) -> io::Result<()> {
        wait_until(want, timeout, || mode(port).as_deref() == Some(want))
    }

    /// Waits until every running node serves as leader or follower.
    pub fn wait_quorum(&self, timeout: Duration) -> io::Result<()> {
        wait_until("apache ensemble", timeout, || {
            self.nodes.iter().filter(|n| n.is_running()).all(|n| {
                matches!(
                    mode(n.client_port).as_deref(),
                    Some("leader") | Some("follower")
                )
            })
        })
    }

    /// `127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3`.
    pub fn connect_string(&self) -> String {
        self.nodes
            .iter()
            .map(|n| n.address())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The node with this client port.
    pub fn node_by_port(&mut self, port: u16) -> Option<&mut ApacheNode> {
        self.nodes.iter_mut().find(|n| n.client_port == port)
    }
}

/// Runs a client program (the Java or C CLI, a Python script), feeding it `stdin`; its
/// stdout then stderr. Killed if it runs over a minute, so a hung client fails the test.
pub async fn run_feeding(cmd: tokio::process::Command, stdin: &str) -> String {
    let out = run_feeding_output(cmd, stdin).await;
    let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
    s.push_str(&String::from_utf8_lossy(&out.stderr));
    s
}

/// Like [`run_feeding`], keeping stdout, stderr and the exit status apart (for comparing
/// two command-line clients stream by stream, exit codes included).
pub async fn run_feeding_output(
    mut cmd: tokio::process::Command,
    stdin: &str,
) -> std::process::Output {
    use tokio::io::AsyncWriteExt;
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().expect("spawn client");
    if let Some(mut i) = child.stdin.take() {
        i.write_all(stdin.as_bytes()).await.expect("stdin");
    }
    tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("client finished")
        .expect("client output")
}
