//! Starts real Apache ZooKeeper 3.8 servers (Debian's jars in /usr/share/java): a
//! standalone server or a 3-node ensemble (QuorumPeerMain), each on free loopback ports
//! with its own temp dir. Processes are killed by pid on Drop.
//!
//! ```no_run
//! let zk = tests::apache::ApacheServer::start().unwrap();
//! let hosts = zk.connect_string(); // "127.0.0.1:PORT"
//! ```

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Tick time of the servers started here: short, so session timeouts can be short
/// (the server clamps them to [2, 20] ticks = [400 ms, 4 s]).
pub const TICK_MS: u64 = 200;

const JAVA_DIR: &str = "/usr/share/java";

/// The Java classpath that runs Apache ZooKeeper 3.8 from Debian's jars.
pub fn classpath() -> String {
    [
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
    ]
    .iter()
    .map(|j| format!("{JAVA_DIR}/{j}"))
    .collect::<Vec<_>>()
    .join(":")
}

/// A free loopback TCP port (bound and released; good enough for tests).
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
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
    cfg: PathBuf,
    log: PathBuf,
    main_class: &'static str,
    jvm_props: Vec<String>,
    child: Option<Child>,
}

impl ApacheNode {
    fn spawn(&mut self) -> io::Result<()> {
        let log = std::fs::File::create(&self.log)?;
        let child = Command::new("java")
            .args([
                "-Xmx256m",
                "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1",
                "-Dzookeeper.extendedTypesEnabled=true",
                "-Dzookeeper.admin.enableServer=false",
                "-Dzookeeper.4lw.commands.whitelist=*",
            ])
            .args(&self.jvm_props)
            .args(["-cp", &classpath(), self.main_class])
            .arg(&self.cfg)
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

    /// `127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
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
        let port = free_port()?;
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data)?;
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
            .collect::<Vec<String>>(),
        )?;
        let mut node = ApacheNode {
            id: 0,
            client_port: port,
            cfg,
            log: dir.path().join("server.log"),
            main_class: "org.apache.zookeeper.server.ZooKeeperServerMain",
            jvm_props: jvm_props.iter().map(|p| p.to_string()).collect(),
            child: None,
        };
        node.spawn()?;
        let s = ApacheServer { node, _dir: dir };
        s.wait_serving()?;
        Ok(s)
    }

    /// Waits until `srvr` reports standalone mode.
    pub fn wait_serving(&self) -> io::Result<()> {
        let port = self.node.client_port;
        wait_until("apache standalone", Duration::from_secs(30), || {
            mode(port).as_deref() == Some("standalone")
        })
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
}

impl ApacheEnsemble {
    /// Starts three servers and waits until one leads and two follow.
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
        let dir = tempfile::tempdir()?;
        let mut ports = Vec::new();
        // Hold all listeners while choosing, so the 3n ports are distinct.
        let mut held = Vec::new();
        for _ in 0..(3 * n) {
            let l = TcpListener::bind("127.0.0.1:0")?;
            ports.push(l.local_addr()?.port());
            held.push(l);
        }
        drop(held);
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
            lines.extend(servers.iter().cloned());
            write_cfg(&cfg, &lines)?;
            nodes.push(ApacheNode {
                id: i + 1,
                client_port: ports[(3 * i) as usize],
                cfg,
                log: ndir.join("server.log"),
                main_class: "org.apache.zookeeper.server.quorum.QuorumPeerMain",
                jvm_props: jvm_props.iter().map(|p| p.to_string()).collect(),
                child: None,
            });
        }
        for node in &mut nodes {
            node.spawn()?;
        }
        let e = ApacheEnsemble { nodes, _dir: dir };
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
