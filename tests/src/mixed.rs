//! Ensembles whose members are Apache ZooKeeper 3.8 servers (`QuorumPeerMain`) and
//! `zk-server` processes in any mix, each with its own extra zoo.cfg lines and `-D`
//! properties (TLS stores, quorum SASL, a member configured differently from the rest),
//! which a test may change between restarts (rolling an ensemble to TLS). Members are
//! numbered `0..n` (server id `i + 1`), listen on loopback, log to `server.log` in their
//! directory, and are SIGKILLed by their own child handle on Drop.
//!
//! ```no_run
//! use tests::mixed::{Kind, MixedEnsemble};
//! let mut ens = MixedEnsemble::configure(&[Kind::Apache, Kind::Apache, Kind::ZkServer]);
//! ens.start_all();
//! let leader = ens.wait_roles(std::time::Duration::from_secs(60));
//! ```

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::apache::mode;
use crate::zk_processes::zk_server_bin;

/// What runs a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Apache ZooKeeper 3.8's `QuorumPeerMain`.
    Apache,
    /// The `zk-server` binary.
    ZkServer,
}

/// One member.
#[derive(Debug)]
pub struct Member {
    /// What runs it.
    pub kind: Kind,
    /// Its directory (zoo.cfg, `data/`, `server.log`).
    pub dir: PathBuf,
    /// Its client port.
    pub port: u16,
    /// Extra zoo.cfg lines for its next start.
    pub extra_cfg: String,
    /// `-Dname=value` arguments for its next start (the JVM's, or zk-server's).
    pub props: Vec<String>,
    /// Whether a start writes zoo.cfg afresh (default). Off, the next start uses the file
    /// as the last server left it (Apache rewrites it with `reconfigEnabled=true`).
    pub rewrite_cfg: bool,
    servers: String,
    child: Option<Child>,
    /// Length of server.log when the current process started (the log is appended to).
    run_start: usize,
}

impl Member {
    fn write_cfg(&self) {
        let data = self.dir.join("data");
        std::fs::write(
            self.dir.join("zoo.cfg"),
            format!(
                "tickTime=200\ninitLimit=20\nsyncLimit=10\ndataDir={}\n\
                 4lw.commands.whitelist=*\nadmin.enableServer=false\n\
                 standaloneEnabled=false\ncnxTimeout=1000\n{}{}",
                data.display(),
                self.extra_cfg,
                self.servers
            ),
        )
        .expect("write zoo.cfg");
    }

    /// (Re)starts the member with its current zoo.cfg lines and properties.
    pub fn start(&mut self) {
        self.kill();
        if self.rewrite_cfg || !self.dir.join("zoo.cfg").exists() {
            self.write_cfg();
        }
        self.run_start = self.log().len();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("server.log"))
            .expect("log");
        let cfg = self.dir.join("zoo.cfg");
        let props: Vec<&str> = self.props.iter().map(String::as_str).collect();
        let mut cmd = match self.kind {
            Kind::Apache => {
                let mut args = crate::apache::TEST_JVM_ARGS.to_vec();
                args.push("-Dzookeeper.admin.enableServer=false");
                args.extend(&props);
                crate::apache::java(&args, "org.apache.zookeeper.server.quorum.QuorumPeerMain")
            }
            Kind::ZkServer => {
                let mut c = Command::new(zk_server_bin().expect("zk-server binary"));
                c.env("RUST_LOG", "info").args(&props);
                c
            }
        };
        let child = cmd
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn member");
        self.child = Some(child);
    }

    /// SIGKILLs the member (by its own handle) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Whether it was started and not killed (it may have exited on its own).
    pub fn is_started(&self) -> bool {
        self.child.is_some()
    }

    /// Whether its process has exited by itself (e.g. refused its config).
    pub fn has_exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))))
    }

    /// Kills the member and removes its logs and snapshots (keeping myid), so that it
    /// comes back empty and must be synced by SNAP.
    pub fn wipe(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(self.dir.join("data").join("version-2"));
    }

    /// Everything it logged, over all its starts.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// What its current process logged.
    pub fn run_log(&self) -> String {
        self.log()
            .get(self.run_start..)
            .unwrap_or_default()
            .to_owned()
    }

    /// Replaces the `server.N` lines its next fresh zoo.cfg lists (a member joining by
    /// reconfig knows the ensemble and itself; the ensemble does not list it yet).
    pub fn set_servers(&mut self, lines: String) {
        self.servers = lines;
    }

    /// Its role from `srvr` (`leader`, `follower`, ...), None when it does not serve.
    pub fn mode(&self) -> Option<String> {
        self.child.as_ref().and_then(|_| mode(self.port))
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The members, in a temp dir of their own.
#[derive(Debug)]
pub struct MixedEnsemble {
    /// Member `i` has server id `i + 1`.
    pub members: Vec<Member>,
    /// Member `i`'s spec (`host:quorumPort:electionPort:participant;host:clientPort`).
    specs: Vec<String>,
    root: tempfile::TempDir,
    // Last: released after the members are killed.
    _turn: Option<crate::apache::EnsembleTurn>,
}

impl MixedEnsemble {
    /// Configures one member of each kind given (not started): `server.N` lines on free
    /// loopback ports, `myid`, tickTime 200 ms. With Apache members it waits while
    /// another Apache ensemble of this test process runs (two cores cannot carry two).
    pub fn configure(kinds: &[Kind]) -> MixedEnsemble {
        let turn = kinds
            .contains(&Kind::Apache)
            .then(crate::apache::EnsembleTurn::take);
        if kinds.contains(&Kind::ZkServer) {
            // Built (if needed) before any JVM starts: a slow build must not make our
            // member arrive after the others elected without it.
            zk_server_bin().expect("zk-server binary");
        }
        let root = tempfile::tempdir().expect("tempdir");
        let n = kinds.len();
        let ports = crate::ports::free_ports(3 * n).expect("ports");
        let specs: Vec<String> = (0..n)
            .map(|i| {
                format!(
                    "127.0.0.1:{}:{}:participant;127.0.0.1:{}",
                    ports[3 * i + 1],
                    ports[3 * i + 2],
                    ports[3 * i]
                )
            })
            .collect();
        let servers: String = specs
            .iter()
            .enumerate()
            .map(|(i, s)| format!("server.{}={s}\n", i + 1))
            .collect();
        let members = kinds
            .iter()
            .enumerate()
            .map(|(i, &kind)| {
                let dir = root.path().join(format!("m{}", i + 1));
                let data = dir.join("data");
                std::fs::create_dir_all(&data).expect("mkdir");
                std::fs::write(data.join("myid"), format!("{}\n", i + 1)).expect("myid");
                Member {
                    kind,
                    dir,
                    port: ports[3 * i],
                    extra_cfg: String::new(),
                    props: Vec::new(),
                    rewrite_cfg: true,
                    servers: servers.clone(),
                    child: None,
                    run_start: 0,
                }
            })
            .collect();
        MixedEnsemble {
            members,
            specs,
            root,
            _turn: turn,
        }
    }

    /// Member `i`'s spec, as its `server.{i+1}=` line and Apache's config text write it.
    pub fn spec(&self, i: usize) -> &str {
        &self.specs[i]
    }

    /// `server.N=spec` lines of the members `ids` (indices).
    pub fn server_lines(&self, ids: &[usize]) -> String {
        ids.iter()
            .map(|&i| format!("server.{}={}\n", i + 1, self.specs[i]))
            .collect()
    }

    /// The directory holding the members' directories (a place for shared files).
    pub fn root(&self) -> &std::path::Path {
        self.root.path()
    }

    /// Starts every member, the last first (zk-server members are usually given the
    /// highest ids, so they are up before the JVMs can elect without them).
    pub fn start_all(&mut self) {
        for m in self.members.iter_mut().rev() {
            m.start();
        }
    }

    /// Waits until the started members show one leader and the rest followers; returns
    /// the leader. Panics (printing every member's log) after `timeout`.
    pub fn wait_roles(&self, timeout: Duration) -> usize {
        self.wait_roles_of(&self.started(), timeout)
    }

    /// The members that were started and not killed.
    pub fn started(&self) -> Vec<usize> {
        (0..self.members.len())
            .filter(|&i| self.members[i].is_started())
            .collect()
    }

    /// Waits until `among` show one leader and the rest followers; returns the leader.
    pub fn wait_roles_of(&self, among: &[usize], timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            let modes: Vec<Option<String>> =
                among.iter().map(|&i| self.members[i].mode()).collect();
            let leaders: Vec<usize> = (0..among.len())
                .filter(|&k| modes[k].as_deref() == Some("leader"))
                .map(|k| among[k])
                .collect();
            let followers = modes
                .iter()
                .filter(|m| m.as_deref() == Some("follower"))
                .count();
            if leaders.len() == 1 && followers + 1 == among.len() {
                return leaders[0];
            }
            if Instant::now() > deadline {
                self.print_logs();
                panic!("no leader with followers among {among:?}: {modes:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Prints every member's log to stderr (for a failing test).
    pub fn print_logs(&self) {
        for (i, m) in self.members.iter().enumerate() {
            eprintln!(
                "---- member {i} ({:?}, server.{}, client port {}) ----\n{}",
                m.kind,
                i + 1,
                m.port,
                m.log()
            );
        }
    }

    /// Waits until member `i`'s log contains `what`; false after `timeout`.
    pub fn wait_logged(&self, i: usize, what: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.members[i].log().contains(what) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }
}
