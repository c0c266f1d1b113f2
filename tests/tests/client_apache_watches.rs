//! zk-client watches against Apache ZooKeeper 3.8, and failover through the fault proxy:
//! every kind of watch fires exactly once (persistent ones on every change), watches set
//! before a connection loss fire for changes made while disconnected, auth is replayed,
//! a blackholed server is detected by the read timeout, and a client cut off longer than
//! the session timeout reports Expired (scenarios in `client_scenarios/watches.rs`).

mod client_scenarios;

use tests::apache::ApacheServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_of_every_kind_and_failover_through_proxy() {
    let zk = ApacheServer::start().expect("apache");
    client_scenarios::watch_suite(&zk.connect_string()).await;
}
