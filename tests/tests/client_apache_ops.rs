//! zk-client against a standalone Apache ZooKeeper 3.8: every operation and its errors,
//! chroot, auth, multi, TTL/container nodes, misuse rejected before sending
//! (scenarios in `client_scenarios/`).

mod client_scenarios;

use tests::apache::ApacheServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_against_apache_standalone() {
    let zk = ApacheServer::start().expect("start apache");
    client_scenarios::ops_suite(&zk.connect_string()).await;
}
