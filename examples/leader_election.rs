//! Leader election: three contenders in one process (each with its own session) on a
//! kazoo-compatible election path. The leader works for a while and resigns; then the
//! next leader's process "crashes" (its session closes) and leadership moves on again.
//!
//! `cargo run -p examples --example leader_election [-- --hosts h:p,...]`

use std::time::Duration;

use futures::StreamExt;
use zk_recipes::election::{LeaderLatch, Leadership};
use zk_recipes::Session;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let target = examples::target().await?;
    let mut nodes = Vec::new();
    for name in ["alpha", "beta", "gamma"] {
        let session = Session::connect(&target.hosts).await?;
        let latch = LeaderLatch::start(&session, "/election/scheduler", name);
        let mut events = latch.events();
        let who = name.to_owned();
        tokio::spawn(async move {
            while let Some(ev) = events.next().await {
                match ev {
                    Leadership::Elected => println!("{who}: I am the leader"),
                    Leadership::Revoked => println!("{who}: no longer leader"),
                    Leadership::Suspended => println!("{who}: connection lost, pausing"),
                    Leadership::Resumed => println!("{who}: reconnected, still leader"),
                }
            }
        });
        // Join one after the other so the queue order is alpha, beta, gamma.
        tokio::time::sleep(Duration::from_millis(200)).await;
        nodes.push((name, session, latch));
    }
    println!("contenders: {:?}", nodes[0].2.contenders().await?);

    let leader = |nodes: &[(&str, Session, LeaderLatch)]| {
        nodes
            .iter()
            .find(|n| n.2.is_leader())
            .map(|n| n.0.to_owned())
    };
    println!("leader: {:?}", leader(&nodes));

    // The leader resigns: it queues again at the back.
    nodes[0].2.resign();
    nodes[1].2.wait_leader(Duration::from_secs(10)).await?;
    println!("after resign, leader: {:?}", leader(&nodes));
    println!("contenders: {:?}", nodes[1].2.contenders().await?);

    // The new leader's process dies: its session ends, its node goes, the next one leads.
    let (name, session, latch) = nodes.remove(1);
    drop(latch);
    session.close().await?;
    println!("{name} crashed");
    nodes[1].2.wait_leader(Duration::from_secs(10)).await?;
    println!("leader: {:?}", leader(&nodes));

    for (_, session, latch) in nodes {
        latch.close().await?;
        session.close().await?;
    }
    target.shutdown().await;
    Ok(())
}
