//! The main job: a tour of the client against a server, with watches, an ephemeral node and
//! an atomic multi.
//!
//! `cargo run -p examples --example quickstart` starts an embedded zk-server;
//! `cargo run -p examples --example quickstart -- --hosts 127.0.0.1:2181` uses a real one.

use std::time::Duration;

use zk_client::{Acl, Client, CreateMode, EventType};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let target = examples::target().await?;
    let client = Client::builder(&target.hosts)
        .session_timeout(Duration::from_secs(10))
        .connect()
        .await?;
    println!(
        "connected: session 0x{:x}, negotiated timeout {:?}",
        client.session_id(),
        client.negotiated_timeout()
    );

    let root = "/quickstart";
    if client.exists(root, false).await?.is_some() {
        for child in client.get_children(root, false).await? {
            client.delete(&format!("{root}/{child}"), None).await?;
        }
        client.delete(root, None).await?;
    }
    let acl = Acl::open_unsafe();
    client
        .create(root, b"hello", &acl, CreateMode::Persistent)
        .await?;

    // A one-shot watch, Java style: the event arrives on the session's event stream.
    let mut events = client.events();
    let (data, stat) = client.get_data(root, true).await?;
    println!(
        "read {root} = {:?} (version {})",
        String::from_utf8_lossy(&data),
        stat.version
    );
    let stat = client.set_data(root, b"world", Some(stat.version)).await?;
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await?
            .ok_or("event stream ended")?;
        if ev.event_type == EventType::NodeDataChanged {
            println!("watch fired: {:?} on {}", ev.event_type, ev.path);
            break;
        }
    }

    // An ephemeral sequential member and an atomic multi with a version check.
    let member = client
        .create(
            &format!("{root}/member-"),
            b"10.0.0.1:8080",
            &acl,
            CreateMode::EphemeralSequential,
        )
        .await?;
    println!("registered ephemeral {member}");
    let results = client
        .multi()
        .check(root, Some(stat.version))
        .create(&format!("{root}/a"), b"1", &acl, CreateMode::Persistent)
        .set_data(root, b"after-multi", Some(stat.version))
        .commit()
        .await?;
    println!("multi committed {} ops", results.len());
    let mut children = client.get_children(root, false).await?;
    children.sort();
    println!("children of {root}: {children:?}");
    let (data, stat) = client.get_data(root, false).await?;
    println!(
        "final {root} = {:?} (version {}, {} children)",
        String::from_utf8_lossy(&data),
        stat.version,
        stat.num_children
    );

    client.close().await?;
    target.shutdown().await;
    println!("quickstart done");
    Ok(())
}
