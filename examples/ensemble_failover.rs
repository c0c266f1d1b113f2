//! Failover with the embedded test ensemble (`zk_server::testkit::Ensemble`): three
//! zk-server members in this process on loopback, a zk-client session holding an
//! ephemeral node and a watch; the leader is killed (the session moves on with its
//! ephemeral), restarted (it catches up), then the new leader is cut off from the others
//! and healed (it rejoins as a follower). This is how to write your own failover tests.
//!
//! `cargo run -p examples --example ensemble_failover` (it always starts its own ensemble:
//! it needs to kill and isolate members, so it takes no `--hosts`).

use std::time::{Duration, Instant};

use zk_client::{Acl, Client, CreateMode, Error};
use zk_server::testkit::Ensemble;

const WAIT: Duration = Duration::from_secs(10);

/// Creates `path`, retrying while the ensemble elects a leader; returns how long it took.
async fn create_retrying(c: &Client, path: &str, data: &[u8]) -> Result<Duration, Error> {
    let start = Instant::now();
    loop {
        match c
            .create(path, data, &Acl::open_unsafe(), CreateMode::Persistent)
            .await
        {
            Ok(_) | Err(Error::NodeExists { .. }) => return Ok(start.elapsed()),
            Err(e) if e.is_retryable() && start.elapsed() < WAIT => {
                tokio::time::sleep(Duration::from_millis(10)).await
            }
            Err(e) => return Err(e),
        }
    }
}

/// What member `i` serves at `path`, read through a client of that member only.
async fn read_on(ens: &Ensemble, i: usize, path: &str) -> Result<String, Error> {
    let addr = ens
        .client_addr(i)
        .map(|a| a.to_string())
        .unwrap_or_default();
    let c = Client::connect(&addr).await?;
    c.sync(path).await?;
    let (data, _) = c.get_data(path, false).await?;
    c.close().await?;
    Ok(String::from_utf8_lossy(&data).into_owned())
}

fn roles(ens: &Ensemble) -> String {
    (0..ens.len())
        .map(|i| match ens.status(i) {
            Some(s) if s.serving => format!("{i}:{:?}", s.state),
            Some(_) => format!("{i}:not-serving"),
            None => format!("{i}:down"),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut ens = Ensemble::start(3).await?;
    let leader = ens.wait_for_leader(WAIT).await.ok_or("no leader")?;
    println!("ensemble at {}: {}", ens.connect_string(), roles(&ens));

    let client = Client::builder(&ens.connect_string())
        .session_timeout(Duration::from_secs(10))
        .connect()
        .await?;
    let session = client.session_id();
    let acl = Acl::open_unsafe();
    println!("session 0x{session:x}");
    if client.exists("/failover", false).await?.is_none() {
        client
            .create("/failover", b"", &acl, CreateMode::Persistent)
            .await?;
    }
    client
        .create("/failover/worker", b"me", &acl, CreateMode::Ephemeral)
        .await?;
    let (_, _, watch) = client.get_data_watched("/failover").await?;

    // 1. The leader crashes: the others elect, the session moves with its ephemeral node.
    ens.kill(leader);
    println!("killed leader {leader}");
    let took = create_retrying(&client, "/failover/after-kill", b"1").await?;
    let new = ens.wait_for_leader(WAIT).await.ok_or("no new leader")?;
    println!(
        "first write acknowledged {took:?} after the kill; new leader {new}: {}",
        roles(&ens)
    );
    let eph = client.exists("/failover/worker", false).await?;
    println!(
        "same session: {}, ephemeral still owned by it: {}",
        client.session_id() == session,
        eph.is_some_and(|s| s.ephemeral_owner == session)
    );
    // The watch set before the crash still fires.
    client.set_data("/failover", b"changed", None).await?;
    let ev = tokio::time::timeout(WAIT, watch).await??;
    println!("watch from before the crash fired: {:?}", ev.event_type);

    // 2. The old leader comes back and catches up.
    ens.restart(leader).await?;
    ens.wait_for_leader(WAIT).await.ok_or("no leader")?;
    println!(
        "restarted {leader}: {}; it reads /failover/after-kill = {:?}",
        roles(&ens),
        read_on(&ens, leader, "/failover/after-kill").await?
    );

    // 3. A network partition around the current leader, then the heal.
    ens.isolate(new);
    println!("isolated leader {new}");
    let took = create_retrying(&client, "/failover/after-isolate", b"2").await?;
    let newer = ens.wait_for_leader(WAIT).await.ok_or("no leader")?;
    println!(
        "first write acknowledged {took:?} after the partition; leader {newer}: {}",
        roles(&ens)
    );
    ens.heal();
    ens.wait_for_leader(WAIT)
        .await
        .ok_or("no leader after heal")?;
    println!(
        "healed: {}; {new} reads /failover/after-isolate = {:?}",
        roles(&ens),
        read_on(&ens, new, "/failover/after-isolate").await?
    );

    let same = client.session_id() == session;
    client.close().await?;
    println!("ensemble_failover: done, one session throughout: {same}");
    if !same {
        return Err("the session changed".into());
    }
    Ok(())
}
