//! zk-client against the in-process zk-server: the same scenarios as against Apache
//! (`client_scenarios/`): every operation and error, every kind of watch, failover through
//! the fault proxy, read timeout, expiry.

mod client_scenarios;

use zk_server::config::ServerConfig;
use zk_server::storage::store::MemoryStore;
use zk_server::{Server, ServerHandle};

async fn start(dir: &tempfile::TempDir) -> ServerHandle {
    let mut cfg = ServerConfig::for_tests(dir.path());
    cfg.extended_types = true;
    Server::start_in_memory(cfg, MemoryStore::new())
        .await
        .expect("zk-server starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_against_zk_server() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(&dir).await;
    client_scenarios::ops_suite(&s.connect_string()).await;
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_and_failover_against_zk_server() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(&dir).await;
    client_scenarios::watch_suite(&s.connect_string()).await;
    s.stop().await.unwrap();
}

/// 1,000 clients lose their server at once: their reconnections spread over the 1 s
/// jitter window (the default bound; 10 s sessions), none expires. The same crowd without
/// jitter is measured for comparison only: on a loaded machine its spread is how long the
/// proxy and server take to work through the burst, not anything the client chose.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_jitter_spreads_a_crowd_against_zk_server() {
    use client_scenarios::stampede;
    use std::time::Duration;
    let server = zk_server::testkit::TestServer::start_with(|cfg| cfg.max_client_cnxns = 0)
        .await
        .unwrap();
    let hosts = server.connect_string();
    let session = Duration::from_secs(10);
    let jittered = stampede::reconnect_after_server_loss(
        &hosts,
        1000,
        session,
        zk_client::builder::DEFAULT_RECONNECT_JITTER,
    )
    .await;
    assert_eq!(jittered.window_ms, 1000.0);
    stampede::assert_spread(&jittered);
    let burst = stampede::reconnect_after_server_loss(&hosts, 1000, session, Duration::ZERO).await;
    eprintln!(
        "without jitter: p10 {:.0} ms, p90 {:.0} ms, last {:.0} ms",
        burst.quantile(0.1),
        burst.quantile(0.9),
        burst.attempts_ms[999]
    );
    server.stop().await.unwrap();
}

/// Request and connection spans with their fields, and the client's counters.
#[tokio::test]
async fn spans_and_counters_against_zk_server() {
    let server = zk_server::testkit::TestServer::start().await.unwrap();
    client_scenarios::observability::spans_and_counters(&server.connect_string()).await;
    server.stop().await.unwrap();
}
