//! zk-client against a 3-member in-process zk-server ensemble (`zk_server::testkit::Ensemble`):
//! the same scenarios as against a standalone server and Apache (`client_scenarios/`), the
//! suites through one follower (writes forwarded to the leader, sessions tracked by it), and
//! the failover of a session whose member is killed, then its expiry with every member down.

mod client_scenarios;

use client_scenarios::failover;
use zk_server::testkit::Ensemble;

/// TTL nodes (`ops_suite`) need extended types, as Apache's `zookeeper.extendedTypesEnabled`.
async fn ensemble() -> Ensemble {
    let ens = Ensemble::start_with_core(3, |s| s.prep.extended_types = true)
        .await
        .expect("ensemble");
    ens.wait_for_leader(failover::WAIT).await.expect("leader");
    ens
}

/// `127.0.0.1:port` of a member that follows.
fn follower(ens: &Ensemble) -> String {
    let leader = ens.leader().expect("leader");
    let f = (leader + 1) % ens.len();
    ens.client_addr(f).expect("member").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_against_an_ensemble_follower() {
    let ens = ensemble().await;
    client_scenarios::ops_suite(&follower(&ens)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_and_proxy_failover_against_an_ensemble_follower() {
    let ens = ensemble().await;
    client_scenarios::watch_suite(&follower(&ens)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_fails_over_to_another_member_then_expires() {
    let mut ens = ensemble().await;
    let hosts = ens.connect_string();
    let moved = failover::member_killed_under_a_session(&hosts, |port| {
        let i = (0..ens.len())
            .find(|i| ens.client_addr(*i).is_some_and(|a| a.port() == port))
            .expect("member serving the victim port");
        ens.kill(i);
    })
    .await;
    failover::expires_when_every_member_stops(&moved.client, || {
        for i in 0..ens.len() {
            ens.kill(i);
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synced_reads_on_a_follower_see_writes_acknowledged_by_the_leader() {
    let ens = ensemble().await;
    let leader = ens.leader().expect("leader");
    let writer = ens.client_addr(leader).expect("leader addr").to_string();
    client_scenarios::synced_reads(&writer, &follower(&ens)).await;
}
