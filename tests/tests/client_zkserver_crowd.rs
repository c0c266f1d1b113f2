//! zk-client's reconnect jitter against the in-process zk-server: a crowd of clients
//! loses its server at once (`client_scenarios/stampede.rs`). In a binary of its own so
//! that no other test competes for the CPU while the crowd is measured.

mod client_scenarios;

/// 300 clients lose their server at once: their reconnections spread over the 1 s
/// jitter window (the default bound; 10 s sessions), none expires. The same crowd without
/// jitter is measured for comparison only: on a loaded machine its spread is how long the
/// proxy and server take to work through the burst, not anything the client chose.
/// (1,000 clients pass too on an idle machine, but on a shared 2-core CI box merely
/// noticing a thousand dropped connections in a debug build takes longer than the
/// window, which measures the machine rather than the jitter.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_jitter_spreads_a_crowd_against_zk_server() {
    use client_scenarios::stampede;
    use std::time::Duration;
    let server = zk_server::testkit::TestServer::start_with(|cfg| cfg.max_client_cnxns = 0)
        .await
        .unwrap();
    let hosts = server.connect_string();
    let session = Duration::from_secs(10);
    let jittered = tokio::time::timeout(
        Duration::from_secs(120),
        stampede::reconnect_after_server_loss(
            &hosts,
            300,
            session,
            zk_client::builder::DEFAULT_RECONNECT_JITTER,
        ),
    )
    .await
    .expect("the jittered crowd was measured within 120 s");
    assert_eq!(jittered.window_ms, 1000.0);
    stampede::assert_spread(&jittered);
    let burst = tokio::time::timeout(
        Duration::from_secs(120),
        stampede::reconnect_after_server_loss(&hosts, 300, session, Duration::ZERO),
    )
    .await
    .expect("the crowd without jitter was measured within 120 s");
    eprintln!(
        "without jitter: p10 {:.0} ms, p90 {:.0} ms, last {:.0} ms",
        burst.quantile(0.1),
        burst.quantile(0.9),
        burst.attempts_ms[299]
    );
    // Bounded: once (out of dozens of runs) this test hung after its measurements with
    // no socket and no timer left in the process; fail there, naming the step, instead.
    tokio::time::timeout(Duration::from_secs(30), server.stop())
        .await
        .expect("the server stopped within 30 s")
        .unwrap();
}
