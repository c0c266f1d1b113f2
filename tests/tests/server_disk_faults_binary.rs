//! Disk trouble in a real process, zk-server's binary beside Apache 3.8's standalone
//! server: once the txn log's fdatasync fails with EIO (`tests::disk_faults`, a preload
//! library), the failed write is never acknowledged, the server logs an ERROR and ends
//! (Apache: "Severe unrecoverable error" and exit code 0; zk-server: a `disk trouble`
//! line with the file and errno, and exit code 1 so a supervisor sees a failure), and a
//! restart on a healthy disk still has every acknowledged write.

use std::path::Path;
use std::time::{Duration, Instant};

use tests::apache::ApacheServer;
use tests::disk_faults::FailingFsync;
use tests::zk_processes::ServerProcess;
use zk_client::{Acl, Client, CreateMode};

async fn connect(hosts: &str) -> Client {
    tests::client::connect(hosts, Duration::from_secs(10)).await
}

/// Writes `/ok`, pulls the disk, tries `/lost`: the second write must get no OK.
async fn write_then_fail(hosts: &str, fault: &FailingFsync, who: &str) {
    let c = connect(hosts).await;
    c.create(
        "/ok",
        b"durable",
        &Acl::open_unsafe(),
        CreateMode::Persistent,
    )
    .await
    .expect("a write on a healthy disk");
    fault.start_failing().expect("flag file");
    let r = tokio::time::timeout(
        Duration::from_secs(10),
        c.create("/lost", b"x", &Acl::open_unsafe(), CreateMode::Persistent),
    )
    .await;
    assert!(
        !matches!(r, Ok(Ok(_))),
        "{who} acknowledged a write its fsync failed: {r:?}"
    );
}

/// The acknowledged write is there after a restart on a healthy disk.
async fn acknowledged_write_survives(hosts: &str) {
    let c = connect(hosts).await;
    let (data, _) = c.get_data("/ok", false).await.expect("/ok after restart");
    assert_eq!(&data[..], b"durable");
}

fn wait_serving(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while tests::apache::mode(port).as_deref() != Some("standalone") {
        assert!(Instant::now() < deadline, "not serving on {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn zoo_cfg(dir: &Path, port: u16) -> std::path::PathBuf {
    let cfg = dir.join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=200\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
             admin.enableServer=false\n4lw.commands.whitelist=*\n",
            dir.join("data").display()
        ),
    )
    .expect("zoo.cfg");
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zk_server_binary_stops_and_exits_1_when_its_txn_log_cannot_sync() {
    let fault = FailingFsync::new().expect("preload library (needs cc)");
    let dir = tempfile::tempdir().expect("tempdir");
    let port = tests::ports::free_port().expect("port");
    let cfg = zoo_cfg(dir.path(), port);
    let log = dir.path().join("server.log");
    let mut server =
        ServerProcess::start_logging_with_env(&cfg, &log, "info", &fault.env()).expect("zk-server");
    tokio::task::spawn_blocking(move || wait_serving(port))
        .await
        .unwrap();
    let hosts = format!("127.0.0.1:{port}");
    write_then_fail(&hosts, &fault, "zk-server").await;

    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        let child = server.child().expect("process");
        if let Some(st) = child.try_wait().expect("try_wait") {
            server.forget();
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "zk-server still runs after disk trouble"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.code(), Some(1), "exit status {status}");
    let text = std::fs::read_to_string(&log).expect("log");
    let line = text
        .lines()
        .find(|l| l.contains("ERROR") && l.contains("disk trouble") && l.contains("errno 5"))
        .unwrap_or_else(|| panic!("no disk trouble ERROR line:\n{text}"));
    assert!(
        line.contains(&format!(
            "{}/version-2/log.",
            dir.path().join("data").display()
        )),
        "the line names the file: {line}"
    );
    assert!(!text.contains("\u{1b}["), "no colour codes in a log file");

    let _server = ServerProcess::start_logging(&cfg, &[], &log, "info").expect("restart");
    tokio::task::spawn_blocking(move || wait_serving(port))
        .await
        .unwrap();
    acknowledged_write_survives(&hosts).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apache_standalone_stops_when_its_txn_log_cannot_sync() {
    let fault = FailingFsync::new().expect("preload library (needs cc)");
    let mut apache = tokio::task::spawn_blocking(ApacheServer::start)
        .await
        .unwrap()
        .expect("apache");
    // Restarted with the library loaded (the flag is not there yet).
    apache.node.env = fault.env();
    apache.node.restart().expect("restart with the library");
    let port = apache.port();
    tokio::task::spawn_blocking(move || wait_serving(port))
        .await
        .unwrap();
    let hosts = apache.connect_string();
    write_then_fail(&hosts, &fault, "Apache").await;
    let status = tokio::task::spawn_blocking(move || {
        let st = apache.node.wait_exit(Duration::from_secs(20));
        (st, apache)
    })
    .await
    .unwrap();
    let (status, mut apache) = status;
    let status = status.expect("Apache exits after disk trouble");
    // Apache ends "normally": exit code 0 (zk-server exits 1).
    assert_eq!(status.code(), Some(0), "{status}");
    let text = apache.node.log();
    assert!(
        text.contains("Severe unrecoverable error, from thread : SyncThread"),
        "{text}"
    );
    apache.node.env.clear();
    apache.node.restart().expect("restart on a healthy disk");
    tokio::task::spawn_blocking(move || wait_serving(port))
        .await
        .unwrap();
    acknowledged_write_survives(&hosts).await;
}
