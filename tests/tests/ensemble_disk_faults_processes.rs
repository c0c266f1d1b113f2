//! A member process whose txn log cannot sync (`tests::disk_faults`, a preload library
//! every member loads; the fault is switched on for the leader's dataLogDir only) leaves
//! the ensemble as Apache's member does: it logs why, naming its directory, and the
//! `zk-server` binary exits 1; the two others elect a leader and go on committing.
//! In its own test binary: the library reaches the members through this process's
//! environment.

use std::time::{Duration, Instant};

use tests::disk_faults::FailingFsync;
use tests::zk_processes::{Options, ProcessEnsemble};
use zk_client::{Acl, CreateMode, ErrorCode};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_process_whose_fsync_fails_exits_1_and_the_others_elect_and_commit() {
    let fault = FailingFsync::new().expect("preload library (needs cc)");
    // Built (if need be) before the library is in the environment cargo inherits.
    tests::zk_processes::zk_server_bin().expect("zk-server binary");
    for (k, v) in fault.env() {
        // The members inherit it; nothing else in this binary starts processes.
        std::env::set_var(k, v);
    }
    let ens = ProcessEnsemble::start(Options::members(3))
        .await
        .expect("ensemble");
    let leader = ens
        .wait_for_leader(Duration::from_secs(30))
        .await
        .expect("leader");
    let c = tests::client::connect(&ens.connect_string(), Duration::from_secs(10)).await;
    c.create("/p", b"", &Acl::open_unsafe(), CreateMode::Persistent)
        .await
        .expect("a write while every disk is fine");
    // Member i's txn logs are under `m<i+1>/log/version-2`.
    fault
        .start_failing_under(&format!("/m{}/log/version-2/", leader + 1))
        .expect("flag file");
    let acl = Acl::open_unsafe();
    for i in 0..10 {
        let path = format!("/p/n{i}");
        tests::client::retry(
            "a write around the leader's failure",
            Duration::from_secs(30),
            || async {
                match c.create(&path, b"x", &acl, CreateMode::Persistent).await {
                    Err(e) if e.code() == Some(ErrorCode::NodeExists) => Ok(path.clone()),
                    r => r,
                }
            },
        )
        .await;
    }
    // The failed leader said why and ended with code 1; its port is closed.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let text = ens.log_text(leader);
        if text.contains("shutting down, exit code 1") {
            let line = text
                .lines()
                .find(|l| l.contains("leaves the ensemble"))
                .unwrap_or_else(|| panic!("no line saying it left:\n{text}"));
            assert!(
                line.contains("stops being leader") && line.contains("/m"),
                "{line}"
            );
            assert!(text.contains("errno 5"), "the cause is logged:\n{text}");
            break;
        }
        assert!(Instant::now() < deadline, "still running:\n{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(ens.client_addr(leader)).is_ok() {
        assert!(Instant::now() < deadline, "the failed member still listens");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let others: Vec<usize> = (0..3).filter(|i| *i != leader).collect();
    let next = ens
        .wait_for_leader_among(&others, Duration::from_secs(30))
        .await
        .expect("a leader among the two others");
    assert_ne!(next, leader);
    for i in 10..15 {
        c.create(&format!("/p/n{i}"), b"x", &acl, CreateMode::Persistent)
            .await
            .expect("the new leader commits");
    }
    assert_eq!(
        c.get_children("/p", false).await.expect("children").len(),
        15
    );
}
