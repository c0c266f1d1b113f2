//! Read-only mode against an Apache 3.8 ensemble with `readonlymode.enabled`: a client that
//! allows read-only servers connects to a partitioned node (ConnectedReadOnly, reads work,
//! writes fail with NotReadOnly) and moves to a read-write server once the quorum is back.

use std::time::Duration;

use tests::apache::ApacheEnsemble;
use zk_client::{Acl, Client, CreateMode, Error, SessionState};

const WAIT: Duration = Duration::from_secs(40);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_server_then_back_to_read_write() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    // A read-only server can only create local sessions.
    let mut ens = ApacheEnsemble::start_with(
        3,
        &["-Dreadonlymode.enabled=true"],
        &[
            "localSessionsEnabled=true",
            "localSessionsUpgradingEnabled=true",
        ],
    )
    .expect("ensemble");
    let w = Client::connect(&ens.connect_string()).await.unwrap();
    w.create("/ro", b"v", &Acl::open_unsafe(), CreateMode::Persistent)
        .await
        .unwrap();
    w.close().await.unwrap();

    // Partition: only node 1 is left; it turns read-only.
    let survivor = ens.nodes[0].client_port;
    ens.nodes[1].kill();
    ens.nodes[2].kill();
    ens.wait_mode(survivor, "read-only", WAIT)
        .expect("read-only mode");

    let c = Client::builder(&ens.connect_string())
        .read_only(true)
        .session_timeout(Duration::from_secs(4))
        .connect()
        .await;
    let c = match c {
        Ok(c) => c,
        Err(e) => {
            let log = ens.nodes[0].log();
            let tail: Vec<&str> = log
                .lines()
                .filter(|l| {
                    !l.contains("QuorumCnxManager")
                        && !l.contains("srvr")
                        && !l.starts_with('\t')
                        && !l.contains("Notification")
                })
                .rev()
                .take(25)
                .collect();
            panic!("{e}: {}", tail.join("\n"));
        }
    };
    assert_eq!(c.state(), SessionState::ConnectedReadOnly);
    assert_eq!(&c.get_data("/ro", false).await.unwrap().0[..], b"v");
    assert_eq!(c.set_data("/ro", b"x", None).await, Err(Error::NotReadOnly));

    // Without read-only allowed, the same servers are refused.
    let strict = Client::builder(&ens.connect_string())
        .session_timeout(Duration::from_secs(1))
        .connect()
        .await;
    assert!(strict.is_err(), "{strict:?}");

    // Quorum back: the client ends up on a read-write server and can write.
    ens.nodes[1].restart().unwrap();
    ens.nodes[2].restart().unwrap();
    c.wait_for_state(WAIT, |s| s == SessionState::Connected)
        .await
        .unwrap();
    ens.wait_quorum(WAIT).unwrap();
    let mut ok = false;
    for _ in 0..100 {
        match c.set_data("/ro", b"x", None).await {
            Ok(_) => {
                ok = true;
                break;
            }
            Err(e) if e.is_retryable() || e == Error::NotReadOnly => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(ok);
    assert_eq!(&c.get_data("/ro", false).await.unwrap().0[..], b"x");
}
