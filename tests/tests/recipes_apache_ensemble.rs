//! zk-recipes on a 3-node Apache ZooKeeper 3.8 ensemble with the server of the leader's
//! session killed (scenario in `recipes_scenarios/failover.rs`).

mod recipes_scenarios;

use recipes_scenarios::WAIT;
use tests::apache::ApacheEnsemble;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recipes_survive_a_killed_ensemble_member() {
    let mut ens = ApacheEnsemble::start().expect("ensemble");
    ens.wait_quorum(WAIT).expect("quorum");
    let hosts = ens.connect_string();
    recipes_scenarios::failover::recipes_survive_a_killed_member(&hosts, |port| {
        ens.node_by_port(port).expect("victim").kill();
    })
    .await;
}
