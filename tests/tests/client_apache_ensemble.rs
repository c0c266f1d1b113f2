//! zk-client against a 3-node Apache ZooKeeper 3.8 ensemble (QuorumPeerMain): kill the
//! server the client is connected to; the session, its ephemerals and every watch survive,
//! each missed change fires exactly once (`client_scenarios/failover.rs`); then reconfigure
//! the dead server away (Apache only: zk-server has no reconfig), and stop every server
//! past the session timeout and observe Expired.

mod client_scenarios;

use client_scenarios::failover::{self, next_node_event};
use tests::apache::ApacheEnsemble;
use zk_client::{Error, EventType};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_and_expiry_on_apache_ensemble() {
    // A super user (digest super:pw) may reconfigure the ensemble.
    let mut ens = ApacheEnsemble::start_with(
        3,
        &["-Dzookeeper.DigestAuthenticationProvider.superDigest=super:0bX78nEegDzJM3ju0iLBEJdWzjg="],
        &[],
    )
    .expect("ensemble");
    let hosts = ens.connect_string();
    let failover::FailedOver {
        client: c,
        mut events,
        victim,
    } = failover::member_killed_under_a_session(&hosts, |port| {
        ens.node_by_port(port).expect("victim node").kill();
    })
    .await;

    // Dynamic reconfiguration: drop the dead server from the membership, watched.
    let (cfg, stat) = c.get_config(true).await.unwrap();
    let cfg = String::from_utf8_lossy(&cfg).into_owned();
    let victim_id = ens
        .nodes
        .iter()
        .find(|n| n.client_port == victim)
        .map(|n| n.id)
        .unwrap();
    assert!(cfg.contains(&format!("server.{victim_id}=")), "{cfg}");
    assert_eq!(
        c.reconfig(None, Some(&victim_id.to_string()), None, None)
            .await
            .unwrap_err(),
        Error::NoAuth {
            path: "/zookeeper/config".into()
        }
    );
    c.add_auth("digest", b"super:pw").await.unwrap();
    assert_eq!(
        c.reconfig(
            None,
            Some(&victim_id.to_string()),
            None,
            Some(stat.mzxid + 1000)
        )
        .await
        .unwrap_err(),
        Error::BadVersion {
            path: "/zookeeper/config".into()
        }
    );
    let (new_cfg, _) = c
        .reconfig(None, Some(&victim_id.to_string()), None, None)
        .await
        .unwrap();
    let new_cfg = String::from_utf8_lossy(&new_cfg).into_owned();
    assert!(
        !new_cfg.contains(&format!("server.{victim_id}=")),
        "{new_cfg}"
    );
    assert_eq!(
        next_node_event(&mut events).await,
        (
            EventType::NodeDataChanged,
            zk_client::CONFIG_NODE.to_owned()
        )
    );
    let (now_cfg, _) = c.get_config(false).await.unwrap();
    assert_eq!(String::from_utf8_lossy(&now_cfg), new_cfg);

    failover::expires_when_every_member_stops(&c, || {
        for n in &mut ens.nodes {
            n.kill();
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synced_reads_across_apache_members() {
    let ens = tests::apache::ApacheEnsemble::start_n(3).expect("ensemble");
    let host = |i: usize| format!("127.0.0.1:{}", ens.nodes[i].client_port);
    client_scenarios::synced_reads(&host(0), &host(1)).await;
}
