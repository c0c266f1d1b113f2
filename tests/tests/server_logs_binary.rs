//! What an operator reads in the `zk-server` binary's log at `RUST_LOG=info`, written to a
//! file as a service manager would: the start line and bound ports, sessions established
//! (id in hex, client address, timeout), expired and closed, snapshots written (size and
//! time), new txn log files, slow fsyncs (`fsync.warningthresholdms=0` makes every sync
//! slow), the replay at a restart (from which snapshot, how many txns, how long), and in an
//! ensemble the election after the leader is killed (who won, the epoch, how long it
//! took). No line carries an ANSI escape.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use tests::apache::four_letter;
use tests::ports::free_port;
use tests::raw::RawClient;
use tests::zk_processes::{Options, ProcessEnsemble, ServerProcess};
use zk_proto::{ConnectRequest, CreateMode, ErrorCode};

fn read(log: &Path) -> String {
    std::fs::read_to_string(log).unwrap_or_default()
}

/// Waits until the log has a line containing every one of `parts`; returns that line.
fn wait_line(log: &Path, parts: &[&str], within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let text = read(log);
        if let Some(l) = text.lines().find(|l| parts.iter().all(|p| l.contains(p))) {
            return l.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no log line with {parts:?} after {within:?}:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_serving(port: u16, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !four_letter(port, "srvr").contains("Mode: standalone") {
        assert!(
            Instant::now() < deadline,
            "zk-server did not come up:\n{}",
            read(log)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn no_ansi(text: &str) {
    assert!(!text.contains('\u{1b}'), "ANSI escape in the log:\n{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standalone_server_logs_sessions_disk_and_replay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port().expect("port");
    let cfg = dir.path().join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=200\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
             4lw.commands.whitelist=*\nadmin.enableServer=false\nsnapCount=4\n\
             fsync.warningthresholdms=0\n",
            dir.path().join("data").display()
        ),
    )
    .expect("zoo.cfg");
    let log = dir.path().join("server.log");
    let mut server = ServerProcess::start_logging(&cfg, &[], &log, "info").expect("zk-server");
    wait_serving(port, &log);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let within = Duration::from_secs(10);

    // The start line and the port.
    wait_line(
        &log,
        &["zk-server 0.", "starting from", "clientPort="],
        within,
    );
    wait_line(
        &log,
        &["listening on 127.0.0.1:", &port.to_string()],
        within,
    );

    // A session that owns an ephemeral, then stops pinging and expires.
    let (mut c, resp) = RawClient::handshake(
        addr,
        ConnectRequest {
            timeout: 1000,
            passwd: vec![0u8; 16].into(),
            read_only: Some(false),
            ..Default::default()
        },
    )
    .await
    .expect("connect");
    let id = format!("{:#x}", resp.session_id);
    let line = wait_line(&log, &["session", &id, "established"], within);
    assert!(
        line.contains("client 127.0.0.1:") && line.contains("timeout 1000 ms"),
        "{line}"
    );
    for i in 0..6 {
        let r = c
            .create(&format!("/n{i}"), "data", CreateMode::Persistent)
            .await;
        assert_eq!(r.err(), ErrorCode::Ok);
    }
    let r = c.create("/eph", "mine", CreateMode::Ephemeral).await;
    assert_eq!(r.err(), ErrorCode::Ok);
    wait_line(
        &log,
        &["session", &id, "expired: timeout of 1000 ms exceeded"],
        within,
    );
    wait_line(&log, &["session", &id, "closed"], within);

    // A session its client closes.
    let other = RawClient::connect(addr).await;
    let other_id = format!("{:#x}", other.session_id);
    other.close().await;
    wait_line(
        &log,
        &["session", &other_id, "closed (client 127.0.0.1)"],
        within,
    );

    // The disk: new log files, snapshots with size and time, slow syncs.
    wait_line(&log, &["creating new txn log", "log."], within);
    let snap = wait_line(
        &log,
        &["snapshot 0x", "written to", "bytes in", " ms"],
        within,
    );
    assert!(snap.contains("snapshot."), "{snap}");
    wait_line(
        &log,
        &["WARN", "fsync of txn log", "threshold 0 ms"],
        within,
    );

    // A crash, then a restart replays the txn log after the last snapshot.
    server.kill9();
    let before = read(&log).len();
    let mut server = ServerProcess::start_logging(&cfg, &[], &log, "info").expect("restart");
    wait_serving(port, &log);
    let restart = read(&log)[before..].to_string();
    let line = restart
        .lines()
        .find(|l| l.contains("recovered to zxid"))
        .unwrap_or_else(|| panic!("no replay line:\n{restart}"));
    assert!(
        line.contains("snapshot 0x") && line.contains(" ms"),
        "{line}\n{restart}"
    );
    assert!(
        line.contains("txns replayed from the txn log") || line.contains("no txns to replay"),
        "{line}"
    );
    assert!(restart.contains("loaded snapshot"), "{restart}");
    // The expired session's ephemeral stayed deleted through the replay.
    let mut c = RawClient::connect(addr).await;
    assert_eq!(c.exists("/eph", false).await.err(), ErrorCode::NoNode);
    assert_eq!(c.exists("/n5", false).await.err(), ErrorCode::Ok);
    server.kill9();
    no_ansi(&read(&log));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ensemble_logs_its_elections() {
    let mut opts = Options::members(3);
    opts.log_filter = "info".into();
    let mut ens = ProcessEnsemble::start(opts).await.expect("ensemble");
    let leader = ens
        .wait_for_leader(Duration::from_secs(30))
        .await
        .expect("leader");
    let first = ens.log_text(leader);
    // Ports, the election won and the epoch served.
    assert!(
        first.contains("election on")
            && first.contains("quorum on")
            && first.contains("clients on"),
        "{first}"
    );
    let sid = (leader + 1).to_string();
    let won = first
        .lines()
        .find(|l| l.contains("election won by server") && l.contains("LEADING"))
        .unwrap_or_else(|| panic!("no election line:\n{first}"));
    assert!(
        won.contains(&format!("server {sid}:")) && won.contains("election took"),
        "{won}"
    );
    assert!(
        first
            .lines()
            .any(|l| l.contains("LEADING leader") && l.contains("serving epoch 0x1")),
        "{first}"
    );

    // The leader dies: a follower logs the new election, who won, the new epoch and how
    // long it took.
    ens.kill9(leader);
    let survivors: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    let next = ens
        .wait_for_leader_among(&survivors, Duration::from_secs(30))
        .await
        .expect("new leader");
    let deadline = Instant::now() + Duration::from_secs(10);
    for &i in &survivors {
        let role = if i == next { "LEADING" } else { "FOLLOWING" };
        loop {
            let text = ens.log_text(i);
            let looking = text
                .lines()
                .any(|l| l.contains("LOOKING (") && !l.contains("(start)"));
            let won = text.lines().any(|l| {
                l.contains(&format!("election won by server {}: {role}", next + 1))
                    && l.contains("election took")
            });
            let serving = text.lines().any(|l| {
                l.contains(&format!("{role} leader {}", next + 1))
                    && l.contains("serving epoch 0x2")
            });
            if looking && won && serving {
                break;
            }
            assert!(Instant::now() < deadline, "member {i} ({role}):\n{text}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    for i in 0..3 {
        no_ansi(&ens.log_text(i));
    }
}
