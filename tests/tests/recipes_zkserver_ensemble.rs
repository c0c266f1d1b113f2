//! zk-recipes on a 3-member in-process zk-server ensemble with the member serving the
//! leader's session killed (scenario in `recipes_scenarios/failover.rs`).

mod recipes_scenarios;

use recipes_scenarios::WAIT;
use zk_server::testkit::Ensemble;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recipes_survive_a_killed_zk_server_member() {
    let mut ens = Ensemble::start(3).await.expect("ensemble");
    ens.wait_for_leader(WAIT).await.expect("leader");
    let hosts = ens.connect_string();
    recipes_scenarios::failover::recipes_survive_a_killed_member(&hosts, |port| {
        let member = (0..ens.len())
            .find(|i| ens.client_addr(*i).is_some_and(|a| a.port() == port))
            .expect("member serving the victim port");
        ens.kill(member);
    })
    .await;
}
