//! A full disk (ENOSPC on a txn log or snapshot write; an fsync failure is another matter,
//! see `server_disk_faults.rs`). Apache exits; zk-server keeps serving:
//! - standalone: writes are refused with OperationTimeout (retried by Curator's and kazoo's
//!   retry loops, and never ambiguous: the write was not proposed) while reads, watches and
//!   existing sessions go on; the write that found the disk full is held and answered once
//!   space returns, with no restart; no half-written entry stays in the log (a restart reads
//!   it cleanly, no `corrupt.*` file);
//! - an ensemble member whose disk is full (leader or follower) acknowledges only what it
//!   logged, keeps serving reads, and catches up by itself when space returns; writes go on
//!   while a quorum of the other members can log them.
//!
//! The disk fills through the storage layer's fault injection
//! (`zk_server::testkit::fill_disk_under`) and, where the machine allows mounting one, on a
//! real 8 MiB tmpfs.

mod log_capture;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use log_capture::{log, log_text};
use zk_client::{Acl, Client, CreateMode, ErrorCode};
use zk_server::testkit::{fill_disk_under, free_disk_under, Ensemble, TestServer};

/// Log lines containing `what` and naming `dir`.
fn lines(what: &str, dir: &Path) -> Vec<String> {
    let text = log_text();
    text.lines()
        .filter(|l| l.contains(what) && l.contains(&dir.display().to_string()))
        .map(str::to_string)
        .collect()
}

async fn wait_for_line(what: &str, dir: &Path) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(l) = lines(what, dir).into_iter().next() {
            return l;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no log line with {what:?} naming {}",
            dir.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn open() -> Vec<Acl> {
    Acl::open_unsafe()
}

/// Every txn log under `dir` (recursively) reads back without a torn or damaged entry,
/// and no damaged bytes were ever set aside; returns the last zxid logged.
fn logs_read_cleanly(dir: &Path) -> i64 {
    let mut last = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read dir").flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().to_string();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            assert!(
                !name.starts_with("corrupt."),
                "damaged bytes set aside: {p:?}"
            );
            if name.starts_with("log.") {
                let scan = zk_server::storage::txn_log::scan(&p, true).expect("scan");
                assert_eq!(scan.damage, None, "{p:?}");
                if let Some(t) = scan.entries.last() {
                    last = last.max(t.entry.header.zxid);
                }
            }
        }
    }
    last
}

/// The server's standalone config over `dir` (for restarts over the same directory).
fn config(dir: &Path) -> zk_server::ServerConfig {
    let mut c = TestServer::config(dir);
    c.client_port = 0;
    c
}

/// Writes that found the disk full: the first (of `holder`) is held, answered once space
/// returns (its session's later requests wait behind it, in order); later ones (of `c`)
/// are refused at once with OperationTimeout. Returns the held write's task.
async fn writes_are_refused(
    holder: &Client,
    c: &Client,
    dir: &Path,
) -> Vec<tokio::task::JoinHandle<bool>> {
    let mut held = Vec::new();
    // The write that discovers the full disk waits for space (its txn is held).
    let first = holder.clone();
    held.push(tokio::spawn(async move {
        first
            .create("/held", b"h", &Acl::open_unsafe(), CreateMode::Persistent)
            .await
            .is_ok()
    }));
    let line = wait_for_line("disk full in dataDir", dir).await;
    assert!(
        line.contains("/log.") && line.contains("No space left on device"),
        "the line names the file and the cause: {line}"
    );
    // From then on writes are refused at once, with a code retry loops retry.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let r = tokio::time::timeout(
            Duration::from_secs(3),
            c.create("/refused", b"r", &open(), CreateMode::Persistent),
        )
        .await
        .expect("a write on a full disk is answered, not left hanging");
        match r {
            Err(e) if e.code() == Some(ErrorCode::OperationTimeout) => break,
            other => assert!(
                tokio::time::Instant::now() < deadline,
                "writes not refused: {other:?}"
            ),
        }
    }
    for op in 0..3 {
        let r = match op {
            0 => c.set_data("/a", b"x", None).await.map(|_| ()),
            1 => c.delete("/a", None).await,
            _ => c
                .create("/b", b"", &open(), CreateMode::Ephemeral)
                .await
                .map(|_| ()),
        };
        let e = r.expect_err("refused");
        assert_eq!(e.code(), Some(ErrorCode::OperationTimeout), "{e}");
    }
    held
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_on_a_full_disk_refuses_writes_serves_reads_and_recovers_by_itself() {
    let _ = log();
    let dir = tempfile::tempdir().expect("temp dir");
    let s = zk_server::Server::start(config(dir.path()))
        .await
        .expect("server");
    let hosts = s.connect_string();
    let c = tests::client::connect(&hosts, Duration::from_secs(10)).await;
    c.create("/a", b"before", &open(), CreateMode::Persistent)
        .await
        .expect("a write while there is space");
    // A second session with a short timeout: it must outlive the full disk.
    let short = tests::client::connect(&hosts, Duration::from_millis(1200)).await;
    let session = short.session_id();
    let (_, _, watch) = short.get_data_watched("/a").await.expect("watch");

    let holder = tests::client::connect(&hosts, Duration::from_secs(30)).await;
    fill_disk_under(dir.path());
    let held = writes_are_refused(&holder, &c, dir.path()).await;

    // Reads and sessions go on: both clients read, the short session outlives several of
    // its timeouts.
    for _ in 0..4 {
        let (data, _) = short
            .get_data("/a", false)
            .await
            .expect("a read on a full disk");
        assert_eq!(&data[..], b"before");
        assert!(c.exists("/a", false).await.expect("exists").is_some());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(short.session_id(), session);
    // A new session is a txn: refused (the client tries elsewhere), not left hanging.
    let r = tokio::time::timeout(
        Duration::from_secs(2),
        Client::builder(&hosts)
            .session_timeout(Duration::from_secs(4))
            .connect(),
    )
    .await;
    assert!(!matches!(r, Ok(Ok(_))), "a new session on a full disk");
    // Nothing half-written is left in the log while the disk is full.
    logs_read_cleanly(dir.path());

    // Space returns: the held write is answered, writes work again, no restart.
    free_disk_under(dir.path());
    for h in held {
        let ok = tokio::time::timeout(Duration::from_secs(10), h)
            .await
            .expect("the held write is answered once space returns")
            .expect("task");
        assert!(ok, "the held write succeeded");
    }
    tests::client::retry(
        "a write after space returned",
        Duration::from_secs(10),
        || c.set_data("/a", b"after", None),
    )
    .await;
    let e = tokio::time::timeout(Duration::from_secs(5), watch)
        .await
        .expect("the watch fires")
        .expect("event");
    assert_eq!(e.path, "/a");
    assert!(!s.has_failed());
    let fresh = tests::client::connect(&hosts, Duration::from_secs(4)).await;
    fresh.close().await.expect("close");
    let line = wait_for_line("disk space returned in dataDir", dir.path()).await;
    assert!(line.contains("writes are accepted again"), "{line}");

    // A restart reads the log cleanly and finds every acknowledged write.
    drop(short);
    drop(holder);
    c.close().await.expect("close");
    s.stop().await.expect("stop");
    logs_read_cleanly(dir.path());
    let s = zk_server::Server::start(config(dir.path()))
        .await
        .expect("restart");
    let c = tests::client::connect(&s.connect_string(), Duration::from_secs(10)).await;
    assert_eq!(&c.get_data("/a", false).await.expect("/a").0[..], b"after");
    assert!(c.exists("/held", false).await.expect("exists").is_some());
    assert!(c.exists("/refused", false).await.expect("exists").is_none());
    logs_read_cleanly(dir.path());
    s.stop().await.expect("stop");
}

/// The last zxid in member `i`'s txn log.
fn logged(root: &Path, i: usize) -> i64 {
    logs_read_cleanly(&root.join(format!("member-{i}")))
}

async fn wait_until(what: &str, within: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while !ok() {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The zxid of the last write: a node's mzxid.
async fn zxid_of(c: &Client, path: &str) -> i64 {
    c.exists(path, false)
        .await
        .expect("exists")
        .expect("node")
        .mzxid
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_on_a_full_disk_never_acks_keeps_serving_reads_and_catches_up() {
    let _ = log();
    let root = tempfile::tempdir().expect("temp dir");
    let ens = Ensemble::start_on_disk(3, root.path())
        .await
        .expect("ensemble");
    let leader = ens
        .wait_for_leader(Duration::from_secs(15))
        .await
        .expect("leader");
    let (f1, f2) = ((leader + 1) % 3, (leader + 2) % 3);
    let at = |i: usize| ens.client_addr(i).expect("member").to_string();
    let cl = tests::client::connect(&at(leader), Duration::from_secs(10)).await;
    let cf = tests::client::connect(&at(f1), Duration::from_secs(10)).await;
    cl.create("/before", b"b", &open(), CreateMode::Persistent)
        .await
        .expect("a write while every disk has space");
    let before = zxid_of(&cl, "/before").await;

    let d1 = root.path().join(format!("member-{f1}"));
    fill_disk_under(&d1);
    // The leader and the other follower are a quorum: writes go on, also through the
    // full follower (it forwards them).
    for i in 0..20 {
        cl.create(&format!("/w{i}"), b"x", &open(), CreateMode::Persistent)
            .await
            .expect("a quorum logs it without the full follower");
    }
    cf.create("/via-full", b"x", &open(), CreateMode::Persistent)
        .await
        .expect("a write through the full follower");
    let line = wait_for_line("disk full in dataDir", &d1).await;
    assert!(line.contains("No space left on device"), "{line}");
    let last = zxid_of(&cl, "/via-full").await;
    // Its log holds nothing past the fill (so it acknowledged nothing past it: a member
    // acks only what it logged), and nothing half-written.
    assert!(logged(root.path(), f1) < last);
    assert!(logged(root.path(), f1) >= before);
    assert!(ens.disk(f1).expect("disk").has_held());
    // It keeps serving reads of what it has.
    assert_eq!(
        &cf.get_data("/before", false).await.expect("read").0[..],
        b"b"
    );
    assert!(cf.exists("/w19", false).await.expect("read").is_some());

    // With the second follower's disk full too, no quorum can log: no write is
    // acknowledged.
    let d2 = root.path().join(format!("member-{f2}"));
    fill_disk_under(&d2);
    let stuck = {
        let cl = cl.clone();
        tokio::spawn(async move {
            cl.create(
                "/no-quorum",
                b"x",
                &Acl::open_unsafe(),
                CreateMode::Persistent,
            )
            .await
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        !stuck.is_finished(),
        "a write only the leader logged was answered"
    );

    // Space returns on the first follower: it logs what it held, acks, and the stuck
    // write commits; its log catches up with the leader's without a restart.
    free_disk_under(&d1);
    let r = tokio::time::timeout(Duration::from_secs(10), stuck)
        .await
        .expect("the write commits once a quorum can log it")
        .expect("task");
    r.expect("committed");
    let end = zxid_of(&cl, "/no-quorum").await;
    wait_until(
        "the follower's log catches up",
        Duration::from_secs(10),
        || logged(root.path(), f1) >= end,
    )
    .await;
    assert!(!ens.disk(f1).expect("disk").has_held());
    free_disk_under(&d2);
    wait_until(
        "the second follower's log catches up",
        Duration::from_secs(10),
        || logged(root.path(), f2) >= end,
    )
    .await;
    assert_eq!(ens.leader(), Some(leader), "nobody lost their role");
    cl.create("/after", b"x", &open(), CreateMode::Persistent)
        .await
        .expect("a write after space returned");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_on_a_full_disk_keeps_committing_through_its_followers_and_catches_up() {
    let _ = log();
    let root = tempfile::tempdir().expect("temp dir");
    let mut ens = Ensemble::start_on_disk(3, root.path())
        .await
        .expect("ensemble");
    let leader = ens
        .wait_for_leader(Duration::from_secs(15))
        .await
        .expect("leader");
    let cl = tests::client::connect(
        &ens.client_addr(leader).expect("leader").to_string(),
        Duration::from_secs(10),
    )
    .await;
    cl.create("/before", b"b", &open(), CreateMode::Persistent)
        .await
        .expect("a write while every disk has space");
    let dl = root.path().join(format!("member-{leader}"));
    fill_disk_under(&dl);
    for i in 0..20 {
        cl.create(&format!("/w{i}"), b"x", &open(), CreateMode::Persistent)
            .await
            .expect("the followers are a quorum");
    }
    let line = wait_for_line("disk full in dataDir", &dl).await;
    assert!(line.contains("No space left on device"), "{line}");
    let last = zxid_of(&cl, "/w19").await;
    assert!(logged(root.path(), leader) < last);
    assert_eq!(&cl.get_data("/w19", false).await.expect("read").0[..], b"x");
    assert_eq!(ens.leader(), Some(leader));

    free_disk_under(&dl);
    wait_until(
        "the leader's log catches up",
        Duration::from_secs(10),
        || logged(root.path(), leader) >= last,
    )
    .await;
    cl.create("/after", b"x", &open(), CreateMode::Persistent)
        .await
        .expect("a write after space returned");
    // Every member restarts from its own files with every write.
    let after = zxid_of(&cl, "/after").await;
    drop(cl);
    for i in 0..3 {
        ens.kill(i);
    }
    for i in 0..3 {
        ens.restart(i).await.expect("restart");
    }
    let l = ens
        .wait_for_leader(Duration::from_secs(15))
        .await
        .expect("leader after restart");
    let c = tests::client::connect(
        &ens.client_addr(l).expect("leader").to_string(),
        Duration::from_secs(10),
    )
    .await;
    tests::client::retry("read after restart", Duration::from_secs(10), || {
        c.exists("/after", false)
    })
    .await
    .expect("/after survived");
    for i in 0..3 {
        assert!(logged(root.path(), i) >= after, "member {i}");
    }
}

/// A tmpfs of `size` mounted on a fresh directory, unmounted when dropped.
struct SmallFs {
    dir: PathBuf,
    _parent: tempfile::TempDir,
}

impl SmallFs {
    fn mount(size: &str) -> Result<SmallFs, String> {
        let parent = tempfile::tempdir().map_err(|e| e.to_string())?;
        let dir = parent.path().join("fs");
        std::fs::create_dir(&dir).map_err(|e| e.to_string())?;
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(SmallFs {
            dir,
            _parent: parent,
        })
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.dir)
            .status();
    }
}

/// Fills the filesystem of `dir` with `filler` until a write finds no space.
fn fill(filler: &Path) {
    let mut f = std::fs::File::create(filler).expect("filler");
    let chunk = vec![0xabu8; 64 * 1024];
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(28) => break,
            Err(e) => panic!("filling: {e}"),
        }
    }
    let _ = f.sync_all();
    // Also the last partial page of the filesystem.
    loop {
        match f.write(&[1u8; 512]) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_on_a_real_full_filesystem_recovers_when_space_returns() {
    let _ = log();
    let fs = match SmallFs::mount("8m") {
        Ok(fs) => fs,
        Err(why) => {
            println!("SKIPPED (the injected-ENOSPC tests still ran): {why}");
            return;
        }
    };
    let dir = fs.dir.join("data");
    let mut cfg = config(&dir);
    cfg.prealloc_size = 64 * 1024;
    let s = zk_server::Server::start(cfg.clone()).await.expect("server");
    let c = tests::client::connect(&s.connect_string(), Duration::from_secs(10)).await;
    // Writes until one finds the disk full; its session waits behind it.
    let w = tests::client::connect(&s.connect_string(), Duration::from_secs(30)).await;
    c.create("/a", b"before", &open(), CreateMode::Persistent)
        .await
        .expect("a write while there is space");
    let filler = fs.dir.join("filler");
    fill(&filler);

    // Writes of 4 KiB: the first ones may still fit the log's last pages; then one
    // finds the disk full and is held, and writes after it are refused.
    let data = vec![7u8; 4096];
    let mut acked = Vec::new();
    let mut held = Vec::new();
    for i in 0..400 {
        let path = format!("/n{i}");
        let (w2, d, p) = (w.clone(), data.clone(), path.clone());
        let mut t = tokio::spawn(async move {
            w2.create(&p, &d, &Acl::open_unsafe(), CreateMode::Persistent)
                .await
        });
        match tokio::time::timeout(Duration::from_millis(500), &mut t).await {
            Ok(r) => {
                r.expect("task").expect("a write before the disk is full");
                acked.push(path);
            }
            Err(_) => {
                held.push((path, t));
                break;
            }
        }
    }
    assert_eq!(held.len(), 1, "no write found the filesystem full");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let r = tokio::time::timeout(
            Duration::from_secs(3),
            c.create("/refused", &data, &open(), CreateMode::Persistent),
        )
        .await
        .expect("a write on a full disk is answered");
        match r {
            Err(e) if e.code() == Some(ErrorCode::OperationTimeout) => break,
            other => assert!(tokio::time::Instant::now() < deadline, "{other:?}"),
        }
    }
    let line = wait_for_line("disk full in dataDir", &dir).await;
    assert!(line.contains("No space left on device"), "{line}");
    assert_eq!(
        &c.get_data("/a", false).await.expect("read").0[..],
        b"before"
    );
    logs_read_cleanly(&dir);

    std::fs::remove_file(&filler).expect("space returns");
    for (path, t) in held {
        tokio::time::timeout(Duration::from_secs(10), t)
            .await
            .expect("answered once space returns")
            .expect("task")
            .expect("the held write succeeded");
        acked.push(path);
    }
    let acl = open();
    tests::client::retry(
        "a write after space returned",
        Duration::from_secs(10),
        || c.create("/after", b"x", &acl, CreateMode::Persistent),
    )
    .await;
    c.close().await.expect("close");
    s.stop().await.expect("stop");
    logs_read_cleanly(&dir);
    let s = zk_server::Server::start(cfg).await.expect("restart");
    let c = tests::client::connect(&s.connect_string(), Duration::from_secs(10)).await;
    for p in acked.iter().chain(std::iter::once(&"/after".to_string())) {
        assert!(
            c.exists(p, false).await.expect("exists").is_some(),
            "{p} lost"
        );
    }
    c.close().await.expect("close");
    s.stop().await.expect("stop");
    for l in lines("", &dir) {
        println!("{l}");
    }
    drop(fs);
}

/// kazoo's retry helper, as applications use it.
const KAZOO_RETRY: &str = r#"
import sys
from kazoo.client import KazooClient
from kazoo.retry import KazooRetry
zk = KazooClient(hosts=sys.argv[1])
zk.start(timeout=10)
print("connected", flush=True)
sys.stdin.readline()
seen = []
def create():
    try:
        return zk.create("/kazoo", b"x")
    except Exception as e:
        seen.append(type(e).__name__)
        raise
KazooRetry(max_tries=-1, delay=0.05, max_delay=0.2)(create)
print("created after refusals: " + ",".join(sorted(set(seen))) + " x" + str(len(seen)))
zk.stop()
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kazoo_retries_the_refusal_and_its_write_lands_once_space_returns() {
    let _ = log();
    let dir = tempfile::tempdir().expect("temp dir");
    let s = zk_server::Server::start(config(dir.path()))
        .await
        .expect("server");
    let hosts = s.connect_string();
    let holder = tests::client::connect(&hosts, Duration::from_secs(30)).await;
    // kazoo's session exists before the disk fills (a new session is refused then).
    let mut py = tokio::process::Command::new("python3")
        .arg("-c")
        .arg(KAZOO_RETRY)
        .arg(&hosts)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 runs");
    let mut stdin = py.stdin.take().expect("stdin");
    let mut stdout = tokio::io::BufReader::new(py.stdout.take().expect("stdout"));
    let mut first = String::new();
    tokio::time::timeout(
        Duration::from_secs(20),
        tokio::io::AsyncBufReadExt::read_line(&mut stdout, &mut first),
    )
    .await
    .expect("kazoo connects")
    .expect("read");
    assert_eq!(first.trim(), "connected");
    fill_disk_under(dir.path());
    let held = {
        let h = holder.clone();
        tokio::spawn(async move {
            h.create("/held", b"", &Acl::open_unsafe(), CreateMode::Persistent)
                .await
        })
    };
    wait_for_line("disk full in dataDir", dir.path()).await;
    tokio::io::AsyncWriteExt::write_all(&mut stdin, b"go\n")
        .await
        .expect("go");
    // kazoo keeps retrying the refused write until space returns.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        py.try_wait().expect("wait").is_none(),
        "kazoo gave up or succeeded on a full disk"
    );
    free_disk_under(dir.path());
    let status = tokio::time::timeout(Duration::from_secs(20), py.wait())
        .await
        .expect("kazoo finishes once space returns")
        .expect("wait");
    let mut rest = String::new();
    let _ = tokio::io::AsyncReadExt::read_to_string(&mut stdout, &mut rest).await;
    let mut err = String::new();
    if let Some(mut e) = py.stderr.take() {
        let _ = tokio::io::AsyncReadExt::read_to_string(&mut e, &mut err).await;
    }
    let out = (status, rest, err);
    let (status, stdout, stderr) = out;
    assert!(status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("created after refusals: OperationTimeoutError x"),
        "{stdout}"
    );
    held.await.expect("task").expect("the held write lands");
    let c = tests::client::connect(&hosts, Duration::from_secs(10)).await;
    assert!(c.exists("/kazoo", false).await.expect("exists").is_some());
    s.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_member_that_cannot_record_a_new_epoch_leaves_and_the_others_go_on() {
    let _ = log();
    let root = tempfile::tempdir().expect("temp dir");
    let mut ens = Ensemble::start_on_disk(3, root.path())
        .await
        .expect("ensemble");
    let leader = ens
        .wait_for_leader(Duration::from_secs(15))
        .await
        .expect("leader");
    let (full, other) = ((leader + 1) % 3, (leader + 2) % 3);
    let d = root.path().join(format!("member-{full}"));
    fill_disk_under(&d);
    // A new epoch: the full member cannot write acceptedEpoch, so it must not take part
    // (it could forget the epoch it acknowledged); the two others are a quorum.
    ens.kill(leader);
    ens.restart(leader).await.expect("restart");
    let line = wait_for_line("cannot be written", &d).await;
    assert!(line.contains("leaves the ensemble"), "{line}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let next = loop {
        if let Some(l) = ens.leader().filter(|l| *l != full) {
            break l;
        }
        assert!(tokio::time::Instant::now() < deadline, "no leader");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(!ens.status(full).expect("member").serving);
    let hosts = [next, other]
        .iter()
        .map(|i| ens.client_addr(*i).expect("member").to_string())
        .collect::<Vec<_>>()
        .join(",");
    let c = tests::client::connect(&hosts, Duration::from_secs(10)).await;
    let acl = open();
    tests::client::retry("a write in the new epoch", Duration::from_secs(20), || {
        c.create("/new-epoch", b"x", &acl, CreateMode::Persistent)
    })
    .await;
    free_disk_under(&d);
}
