//! The in-process `zk_server::testkit::Ensemble`'s isolate / heal with zk-client: the
//! isolated leader stops serving and its unacknowledged write is never acknowledged, the
//! others elect and serve the client's session, and after the heal the old leader follows
//! the new one with the same data.

use std::time::Duration;

use zk_client::{Acl, Client, CreateMode, Error};
use zk_server::testkit::Ensemble;

const T: Duration = Duration::from_secs(10);

async fn connect(hosts: &str) -> Client {
    tests::client::connect(hosts, Duration::from_secs(10)).await
}

/// Children of `parent` with their data, as member `i` serves them after a sync.
async fn contents(ens: &Ensemble, i: usize, parent: &str) -> Vec<(String, Vec<u8>)> {
    let c = connect(&ens.client_addr(i).expect("member").to_string()).await;
    c.sync(parent).await.expect("sync");
    let mut names = c.get_children(parent, false).await.expect("children");
    names.sort();
    let mut out = Vec::new();
    for n in names {
        let (d, _) = c
            .get_data(&format!("{parent}/{n}"), false)
            .await
            .expect("data");
        out.push((n, d.to_vec()));
    }
    let _ = c.close().await;
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolated_leader_is_replaced_and_rejoins_after_heal() {
    let mut ens = Ensemble::start(3).await.expect("ensemble starts");
    let old = ens.wait_for_leader(T).await.expect("a leader");
    let acl = Acl::open_unsafe();
    let c = connect(&ens.connect_string()).await;
    let session = c.session_id();
    c.create("/iso", b"", &acl, CreateMode::Persistent)
        .await
        .expect("parent");
    c.create("/iso-eph", b"", &acl, CreateMode::Ephemeral)
        .await
        .expect("ephemeral");
    let on_old = connect(&ens.client_addr(old).unwrap().to_string()).await;

    ens.isolate(old);
    assert!(ens.is_isolated(old));
    // The isolated leader cannot commit: its client never hears of this write.
    let r = tokio::time::timeout(
        T,
        on_old.create("/iso/lost", b"", &acl, CreateMode::Persistent),
    )
    .await;
    assert!(
        !matches!(r, Ok(Ok(_))),
        "an isolated leader acknowledged a write: {r:?}"
    );
    drop(on_old);

    let new = ens.wait_for_leader(T).await.expect("the others elect");
    assert_ne!(new, old);
    let deadline = tokio::time::Instant::now() + T;
    while ens.status(old).is_some_and(|s| s.serving) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the isolated leader kept serving"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The session carries on with the majority.
    for i in 0..20 {
        let path = format!("/iso/n{i:02}");
        let deadline = tokio::time::Instant::now() + T;
        loop {
            match c.create(&path, b"x", &acl, CreateMode::Persistent).await {
                Ok(_) | Err(Error::NodeExists { .. }) => break,
                Err(e) if e.is_retryable() && tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                Err(e) => panic!("write with the majority: {e}"),
            }
        }
    }
    assert_eq!(c.session_id(), session);

    ens.heal();
    assert!(!ens.is_isolated(old));
    assert_eq!(
        ens.wait_for_leader(T).await,
        Some(new),
        "the heal moved the leader"
    );
    let st = ens.status(old).expect("running");
    assert!(st.serving && st.leader == Some((new + 1) as i64), "{st:?}");
    c.create("/iso/after", b"a", &acl, CreateMode::Persistent)
        .await
        .expect("write after the heal");

    let reference = contents(&ens, new, "/iso").await;
    assert_eq!(reference.len(), 21);
    assert!(reference.iter().all(|(n, _)| n != "lost"));
    for i in 0..3 {
        assert_eq!(contents(&ens, i, "/iso").await, reference, "member {i}");
    }
    let st = c
        .exists("/iso-eph", false)
        .await
        .expect("exists")
        .expect("the ephemeral survived");
    assert_eq!(st.ephemeral_owner, session);
    let _ = c.close().await;
}
