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

/// 200 clients of Apache lose their connections at once: their reconnections spread over
/// the jitter window (4 s sessions: the 1 s bound is capped at 800 ms), none expires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_jitter_spreads_a_crowd_against_apache() {
    let zk = ApacheServer::start().expect("start apache");
    let s = client_scenarios::stampede::reconnect_after_server_loss(
        &zk.connect_string(),
        200,
        std::time::Duration::from_secs(4),
        zk_client::builder::DEFAULT_RECONNECT_JITTER,
    )
    .await;
    assert_eq!(s.window_ms, 800.0);
    client_scenarios::stampede::assert_spread(&s);
}
