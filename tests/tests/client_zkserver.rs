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
