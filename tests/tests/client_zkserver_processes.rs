//! zk-client against three `zk-server` processes (`tests::zk_processes`): the same scenarios
//! as against a standalone server and Apache (`client_scenarios/`), the suites through one
//! follower, and the failover of a session whose member is killed with SIGKILL, then its
//! expiry with every member down.

mod client_scenarios;

use client_scenarios::failover;
use tests::zk_processes::{Options, ProcessEnsemble};

/// TTL nodes (`ops_suite`) need extended types, as in Apache.
async fn ensemble() -> ProcessEnsemble {
    let mut opts = Options::members(3);
    opts.extra_cfg = "extendedTypesEnabled=true\n".into();
    let ens = ProcessEnsemble::start(opts).await.expect("ensemble");
    ens.wait_for_leader(failover::WAIT).await.expect("leader");
    ens
}

/// `127.0.0.1:port` of a member that follows.
async fn follower(ens: &ProcessEnsemble) -> String {
    let leader = ens.wait_for_leader(failover::WAIT).await.expect("leader");
    ens.client_addr((leader + 1) % ens.len()).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_against_a_process_follower() {
    let ens = ensemble().await;
    client_scenarios::ops_suite(&follower(&ens).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_and_proxy_failover_against_a_process_follower() {
    let ens = ensemble().await;
    client_scenarios::watch_suite(&follower(&ens).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_fails_over_to_another_process_then_expires() {
    let mut ens = ensemble().await;
    let hosts = ens.connect_string();
    let moved = failover::member_killed_under_a_session(&hosts, |port| {
        let i = (0..ens.len())
            .find(|i| ens.client_addr(*i).port() == port)
            .expect("member serving the victim port");
        ens.kill9(i);
    })
    .await;
    failover::expires_when_every_member_stops(&moved.client, || {
        for i in 0..ens.len() {
            ens.kill9(i);
        }
    })
    .await;
}
