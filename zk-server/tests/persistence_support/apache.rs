//! Runs Apache ZooKeeper 3.8 (Debian's jars, Java 17) on a data dir, and its Java CLI.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const JARS: &str = "/usr/share/java";

/// The classpath for the server and the CLI. Panics with instructions when the Debian
/// packages are missing: these tests must fail, not pass, without Apache.
pub fn classpath() -> String {
    let names = [
        "zookeeper.jar",
        "zookeeper-jute.jar",
        "slf4j-api.jar",
        "slf4j-simple.jar",
        "commons-cli.jar",
        "metrics-core.jar",
    ];
    let mut missing = Vec::new();
    let mut parts = Vec::new();
    for n in names {
        let p = Path::new(JARS).join(n);
        if !p.exists() {
            missing.push(p.display().to_string());
        }
        parts.push(p.display().to_string());
    }
    assert!(
        missing.is_empty(),
        "Apache ZooKeeper jars missing ({}): install the Debian packages `zookeeper`, \
         `libslf4j-java`, `libcommons-cli-java` and a Java 17 runtime",
        missing.join(", ")
    );
    let java = Command::new("java").arg("-version").output();
    assert!(
        java.map(|o| o.status.success()).unwrap_or(false),
        "`java` not found: install a Java 17 runtime (openjdk-17-jre-headless)"
    );
    parts.join(":")
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    l.local_addr().expect("local addr").port()
}

/// A running `ZooKeeperServerMain`, killed (by pid) when dropped.
pub struct ApacheServer {
    child: Child,
    /// Client port on 127.0.0.1.
    pub port: u16,
    log: PathBuf,
}

impl ApacheServer {
    /// Starts Apache standalone on `data_dir` (also its log dir) with extra `-D` properties,
    /// and waits until it serves clients.
    pub fn start(data_dir: &Path, props: &[&str]) -> ApacheServer {
        let cp = classpath();
        let log = data_dir.with_extension("server.log");
        let port = free_port();
        let out = std::fs::File::create(&log).expect("server log");
        let mut cmd = Command::new("java");
        cmd.arg("-cp")
            .arg(&cp)
            .arg("-Xmx256m")
            .arg("-Dzookeeper.admin.enableServer=false")
            .arg("-Dorg.slf4j.simpleLogger.defaultLogLevel=info");
        for p in props {
            cmd.arg(p);
        }
        let child = cmd
            .arg("org.apache.zookeeper.server.ZooKeeperServerMain")
            .arg(port.to_string())
            .arg(data_dir)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("dup log"))
            .stderr(out)
            .spawn()
            .expect("spawn java");
        let mut server = ApacheServer { child, port, log };
        server.wait_ready();
        server
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "Apache ZooKeeper exited with {status} before serving:\n{}",
                    self.log_text()
                );
            }
            // Only trust the port once our own server says it is bound, so a stranger
            // that grabbed the port in between is never talked to.
            let bound = format!(":{}", self.port);
            if self
                .log_text()
                .lines()
                .any(|l| l.contains("binding to port") && l.ends_with(&bound))
            {
                if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                    // A server still starting up may accept and never answer.
                    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
                    let _ = s.write_all(b"srvr");
                    let mut buf = String::new();
                    let _ = std::io::Read::read_to_string(&mut s, &mut buf);
                    if buf.contains("Mode: standalone") {
                        return;
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "Apache ZooKeeper did not start within 30 s:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The server's output so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs Java CLI commands (one JVM, commands on stdin) and returns stdout + stderr.
    pub fn cli(&mut self, commands: &[&str]) -> String {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("Apache ZooKeeper died ({status}):\n{}", self.log_text());
        }
        // `timeout` bounds a CLI that never gets an answer.
        let mut child = Command::new("timeout")
            .arg("60")
            .arg("java")
            .arg("-cp")
            .arg(classpath())
            .arg("-Dorg.slf4j.simpleLogger.defaultLogLevel=warn")
            .arg("org.apache.zookeeper.ZooKeeperMain")
            .arg("-server")
            .arg(format!("127.0.0.1:{}", self.port))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn java cli");
        let guard = KillOnDrop(child.id());
        {
            let mut stdin = child.stdin.take().expect("cli stdin");
            for c in commands {
                writeln!(stdin, "{c}").expect("write cli command");
            }
            writeln!(stdin, "quit").expect("write quit");
        }
        let out = child.wait_with_output().expect("cli output");
        std::mem::forget(guard);
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// Stops the server (SIGKILL: Apache fsyncs every commit, and this is also a crash).
    pub fn stop(mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ApacheServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Kills a process by pid if the test panics while it runs.
struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-9")
            .arg(self.0.to_string())
            .status();
    }
}
