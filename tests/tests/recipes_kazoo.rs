//! zk-recipes share locks and elections with kazoo (Python): a kazoo process and Rust
//! contenders on the same paths against Apache ZooKeeper 3.8 exclude each other and take
//! turns in sequence order; kazoo's read-write lock, semaphore, counter and queue read
//! and write the same nodes as ours.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use tests::apache::ApacheServer;
use zk_recipes::counter::Counter;
use zk_recipes::election::LeaderLatch;
use zk_recipes::lock::Lock;
use zk_recipes::queue::Queue;
use zk_recipes::rwlock::RwLock;
use zk_recipes::semaphore::Semaphore;
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
        Kazoo::run("lock_election.py", hosts)
    }

    fn run(script: &str, hosts: &str) -> Kazoo {
        let script = format!("{}/tests/kazoo/{script}", env!("CARGO_MANIFEST_DIR"));
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
    kz.go_on();
    assert_eq!(kz.expect("ECONTENDERS"), "ECONTENDERS rust");
    kz.silent_for(Duration::from_millis(500));
    rust.close().await.unwrap();
    kz.expect("LEADER");
    let follower = LeaderLatch::start(&session, "/kz/election", "rust-2");
    let deadline = std::time::Instant::now() + WAIT;
    while follower.contenders().await.unwrap() != ["python", "rust-2"] {
        assert!(
            std::time::Instant::now() < deadline,
            "rust-2 queues behind python"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!follower.is_leader());
    kz.go_on();
    kz.expect("DONE");
    follower.wait_leader(WAIT).await.unwrap();
    follower.close().await.unwrap();
    session.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rwlock_semaphore_counter_queue_shared_with_kazoo() {
    let zk = ApacheServer::start().expect("apache");
    let hosts = zk.connect_string();
    let session = Session::connect(&hosts).await.unwrap();

    // Read lock shared with kazoo's ReadLock; our writer waits for it.
    let rw = RwLock::new(&session, "/kz/rw", "rust");
    rw.read.acquire().await.unwrap();
    let mut kz = Kazoo::run("layouts.py", &hosts);
    kz.expect("RLOCKED");
    rw.read.release().await.unwrap();
    assert!(!rw
        .write
        .try_acquire(Duration::from_millis(300))
        .await
        .unwrap());
    kz.go_on();
    kz.expect("RUNLOCKED");
    assert!(rw.write.try_acquire(WAIT).await.unwrap());
    rw.write.release().await.unwrap();
    // kazoo's writer queues behind our reader.
    rw.read.acquire().await.unwrap();
    kz.go_on();
    kz.expect("WWAITING");
    kz.silent_for(Duration::from_millis(500));
    rw.read.release().await.unwrap();
    kz.expect("WLOCKED");

    // Semaphore of 2 leases: we hold both, kazoo waits for one.
    let s1 = Semaphore::new(&session, "/kz/sem", "rust-1", 2);
    let s2 = Semaphore::new(&session, "/kz/sem", "rust-2", 2);
    assert!(s1.acquire(WAIT).await.unwrap());
    assert!(s2.acquire(WAIT).await.unwrap());
    kz.go_on();
    kz.expect("SWAITING");
    kz.silent_for(Duration::from_millis(500));
    s1.release().await.unwrap();
    assert_eq!(kz.expect("SACQUIRED"), "SACQUIRED py,rust-2");
    let s3 = Semaphore::new(&session, "/kz/sem", "rust-3", 2);
    assert!(!s3.acquire(Duration::from_millis(300)).await.unwrap());
    kz.go_on();
    kz.expect("SRELEASED");
    assert!(s3.acquire(WAIT).await.unwrap());

    // Counter.
    let counter = Counter::new(&session, "/kz/counter");
    counter.add(7).await.unwrap();
    kz.go_on();
    assert_eq!(kz.expect("COUNTER"), "COUNTER 12");
    assert_eq!(counter.get().await.unwrap().0, 12);

    // Queue: priority then FIFO, both ways.
    let q = Queue::new(&session, "/kz/queue");
    q.put(b"r-low", 200).await.unwrap();
    q.put(b"r-high", 1).await.unwrap();
    q.put(b"r-mid", 100).await.unwrap();
    kz.go_on();
    assert_eq!(kz.expect("QUEUE"), "QUEUE r-high,r-mid,r-low");
    kz.expect("QPUT");
    assert_eq!(
        q.take().await.unwrap().as_deref(),
        Some(&b"from-python"[..])
    );
    kz.go_on();
    session.close().await.unwrap();
}
