//! zk-client's tracing spans and counters (`client_scenarios/observability.rs`), against
//! the in-process zk-server and against Apache ZooKeeper 3.8.
//!
//! One test in a binary of its own: the scenario captures spans with a thread-local
//! subscriber, and another test of the same process hitting the client's span callsites
//! at the same moment (with no subscriber of its own) can leave them disabled for every
//! thread (tracing caches a callsite's interest process-wide).

mod client_scenarios;

#[tokio::test]
async fn spans_and_counters_against_zk_server_and_apache() {
    let server = zk_server::testkit::TestServer::start().await.unwrap();
    client_scenarios::observability::spans_and_counters(&server.connect_string()).await;
    server.stop().await.unwrap();

    let zk = tests::apache::ApacheServer::start().expect("start apache");
    client_scenarios::observability::spans_and_counters(&zk.connect_string()).await;
}
