//! zk-recipes share locks and elections with kazoo (Python): a kazoo process and Rust
//! contenders on the same paths against Apache ZooKeeper 3.8 exclude each other and take
//! turns in sequence order.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use tests::apache::ApacheServer;
use zk_recipes::election::LeaderLatch;
use zk_recipes::lock::Lock;
use zk_recipes::Session;

const WAIT: Duration = Duration::from_secs(20);

/// The python process, killed by pid on Drop.
struct Kazoo {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
}

impl Kazoo {
    fn start(hosts: &str) -> Kazoo {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/kazoo/lock_election.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(hosts)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Kazoo {
            child,
            stdin,
            lines,
        }
    }

    fn expect(&self, prefix: &str) -> String {
        let line = self
            .lines
            .recv_timeout(WAIT)
            .unwrap_or_else(|_| panic!("kazoo never said {prefix}"));
        assert!(line.starts_with(prefix), "expected {prefix}, got {line}");
        line
    }

    fn silent_for(&self, d: Duration) {
        if let Ok(line) = self.lines.recv_timeout(d) {
            panic!("kazoo said {line} too early");
        }
    }

    fn go_on(&mut self) {
        self.stdin.write_all(b"\n").unwrap();
        self.stdin.flush().unwrap();
    }
}

impl Drop for Kazoo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_and_election_shared_with_kazoo() {
    let zk = ApacheServer::start().expect("apache");
    let hosts = zk.connect_string();
    let session = Session::connect(&hosts).await.unwrap();

    // Lock: Rust holds it, kazoo queues behind and waits.
    let lock = Lock::new(&session, "/kz/lock", "rust");
    lock.acquire().await.unwrap();
    let mut kz = Kazoo::start(&hosts);
    assert_eq!(kz.expect("CONTENDERS"), "CONTENDERS rust");
    kz.silent_for(Duration::from_millis(700));
    assert_eq!(lock.contenders().await.unwrap(), ["rust", "python"]);
    lock.release().await.unwrap();
    kz.expect("ACQUIRED");
    // Now kazoo holds it: Rust must wait until kazoo releases.
    assert!(!lock.try_acquire(Duration::from_millis(300)).await.unwrap());
    let waiter = {
        let s = session.clone();
        tokio::spawn(async move {
            let l = Lock::new(&s, "/kz/lock", "rust-2");
            l.acquire().await.map(|_| l)
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiter.is_finished());
    kz.go_on();
    kz.expect("RELEASED");
    let l2 = tokio::time::timeout(WAIT, waiter)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(l2.is_held());
    l2.release().await.unwrap();

    // Election: Rust leads, kazoo queues; Rust leaves, kazoo leads; Rust follows.
    let rust = LeaderLatch::start(&session, "/kz/election", "rust");
    rust.wait_leader(WAIT).await.unwrap();
    // kazoo reads the contenders once it has finished with the lock.
    assert_eq!(kz.expect("ECONTENDERS"), "ECONTENDERS rust");
    kz.silent_for(Duration::from_millis(500));
    rust.close().await.unwrap();
    kz.expect("LEADER");
    let follower = LeaderLatch::start(&session, "/kz/election", "rust-2");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!follower.is_leader());
    assert_eq!(follower.contenders().await.unwrap(), ["python", "rust-2"]);
    kz.go_on();
    kz.expect("DONE");
    follower.wait_leader(WAIT).await.unwrap();
    follower.close().await.unwrap();
    session.close().await.unwrap();
}
