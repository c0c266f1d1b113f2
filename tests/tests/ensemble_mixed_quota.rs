//! Quotas in a mixed ensemble: two Apache ZooKeeper 3.8 members and one `zk-server`
//! member, all with `zookeeper.enforceQuota=true`. The quota usage in `zookeeper_stats`
//! is replicated state that each member computes itself as it applies txns, so every
//! member must hold the same bytes after writes through each of them, with either kind
//! leading, after a DIFF and after a SNAP in both directions (loading a snapshot recounts
//! the usage); and a write past a hard limit fails whichever member it came through.

use std::time::Duration;

use tests::mixed::{Kind, MixedEnsemble};
use zk_client::{Acl, Client, CreateMode, ErrorCode};

const T: Duration = Duration::from_secs(30);
const STATS: &str = "/zookeeper/quota/qa/zookeeper_stats";

async fn client(port: u16) -> Client {
    tokio::time::timeout(T, Client::connect(&format!("127.0.0.1:{port}")))
        .await
        .expect("connect in time")
        .expect("connect")
}

/// Nodes and bytes under /qa (itself included), counted from the tree as `c` sees it.
async fn recount(c: &Client) -> String {
    let (mut count, mut bytes) = (0, 0);
    let mut todo = vec!["/qa".to_string()];
    while let Some(p) = todo.pop() {
        let (data, _) = c.get_data(&p, false).await.expect("get");
        count += 1;
        bytes += data.len();
        for k in c.get_children(&p, false).await.expect("children") {
            todo.push(format!("{p}/{k}"));
        }
    }
    format!("count={count},bytes={bytes}")
}

/// Every running member's usage of /qa, after a sync; all equal to a recount of the tree.
async fn same_usage_everywhere(ens: &MixedEnsemble) -> String {
    let mut seen = Vec::new();
    for m in ens.members.iter().filter(|m| m.is_started()) {
        let c = client(m.port).await;
        c.sync(STATS).await.expect("sync");
        let (data, _) = c.get_data(STATS, false).await.expect("stats");
        let usage = String::from_utf8_lossy(&data).into_owned();
        let counted = recount(&c).await;

        assert_eq!(usage, counted, "{:?} member :{}", m.kind, m.port);
        seen.push((m.kind, m.port, usage));
        let _ = c.close().await;
    }
    let first = seen[0].2.clone();
    assert!(seen.iter().all(|(_, _, u)| *u == first), "{seen:?}");
    first
}

/// Writes under /qa through the member on `port`: creates, data changes, a delete, a
/// multi, an ephemeral that goes with its session. `tag` keeps the names apart.
async fn writes(port: u16, tag: &str) {
    let c = client(port).await;
    let open = Acl::open_unsafe();
    for i in 0..3 {
        c.create(
            &format!("/qa/{tag}{i}"),
            format!("{tag}-{i}").as_bytes(),
            &open,
            CreateMode::Persistent,
        )
        .await
        .expect("create");
    }
    c.set_data(&format!("/qa/{tag}0"), b"longer data here", None)
        .await
        .expect("set");
    c.delete(&format!("/qa/{tag}1"), None)
        .await
        .expect("delete");
    c.multi()
        .create(&format!("/qa/{tag}m"), b"m", &open, CreateMode::Persistent)
        .set_data(&format!("/qa/{tag}2"), b"", None)
        .commit()
        .await
        .expect("multi");
    let e = client(port).await;
    e.create(&format!("/qa/{tag}e"), b"eph", &open, CreateMode::Ephemeral)
        .await
        .expect("ephemeral");
    e.close().await.expect("close");
    let _ = c.close().await;
}

/// Fills /qa up to its hard count limit through `port`; the next create fails.
async fn fill_to_the_limit(port: u16, limit: usize) {
    let c = client(port).await;
    c.sync("/qa").await.expect("sync");
    let count: usize = recount(&c)
        .await
        .strip_prefix("count=")
        .and_then(|s| s.split(',').next())
        .and_then(|s| s.parse().ok())
        .expect("count");
    for i in count..limit {
        c.create(
            &format!("/qa/fill-{port}-{i}"),
            b"",
            &Acl::open_unsafe(),
            CreateMode::Persistent,
        )
        .await
        .expect("create within the limit");
    }
    let over = c
        .create(
            &format!("/qa/over-{port}"),
            b"",
            &Acl::open_unsafe(),
            CreateMode::Persistent,
        )
        .await
        .expect_err("past the hard limit");
    assert_eq!(over.code(), Some(ErrorCode::QuotaExceeded), "{over}");
    let _ = c.close().await;
}

/// Frees room under /qa: deletes the nodes `fill_to_the_limit` made through `port`.
async fn free(port: u16) {
    let c = client(port).await;
    for k in c.get_children("/qa", false).await.expect("children") {
        if k.starts_with("fill-") {
            c.delete(&format!("/qa/{k}"), None).await.expect("delete");
        }
    }
    let _ = c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_ensemble_keeps_the_same_quota_usage_on_every_member() {
    let mut ens = MixedEnsemble::configure(&[Kind::Apache, Kind::Apache, Kind::ZkServer]);
    for m in ens.members.iter_mut() {
        m.props = vec!["-Dzookeeper.enforceQuota=true".into()];
    }
    ens.start_all();
    // Equally empty: the highest id, the zk-server member, leads.
    assert_eq!(ens.wait_roles(T), 2, "zk-server (id 3) should lead");
    let port = |ens: &MixedEnsemble, i: usize| ens.members[i].port;

    // `setquota -N 40 /qa` as zkCli writes it, through an Apache follower.
    let c = client(port(&ens, 0)).await;
    let open = Acl::open_unsafe();
    for (p, d) in [
        ("/qa", Some("top")),
        ("/zookeeper/quota/qa", None),
        (
            "/zookeeper/quota/qa/zookeeper_limits",
            Some("count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=40"),
        ),
        (STATS, Some("count=0,bytes=0")),
    ] {
        let data = d.map(str::as_bytes).unwrap_or_default();
        c.create(p, data, &open, CreateMode::Persistent)
            .await
            .expect("quota setup");
    }
    let _ = c.close().await;
    assert_eq!(same_usage_everywhere(&ens).await, "count=1,bytes=3");

    // Writes through an Apache follower and through our leader.
    writes(port(&ens, 0), "a").await;
    writes(port(&ens, 2), "b").await;
    let u = same_usage_everywhere(&ens).await;
    assert_eq!(u, "count=7,bytes=37", "1 + 2 x (a0 a2 am), data 3 + 2 x 17");
    // Our leader refuses the create past the limit, also one forwarded by Apache.
    fill_to_the_limit(port(&ens, 1), 40).await;
    same_usage_everywhere(&ens).await;
    free(port(&ens, 1)).await;

    // Our leader dies: an Apache member leads; ours catches up by DIFF.
    ens.members[2].kill();
    let leader = ens.wait_roles(T);
    assert!(leader < 2);
    writes(port(&ens, 0), "c").await;
    ens.members[2].start();
    ens.wait_roles(T);
    same_usage_everywhere(&ens).await;
    // The Apache leader refuses a create forwarded by our follower.
    fill_to_the_limit(port(&ens, 2), 40).await;
    free(port(&ens, 2)).await;

    // Wiped, ours is synced by the Apache leader's SNAP, and recounts it.
    ens.members[2].wipe();
    writes(port(&ens, leader), "d").await;
    ens.members[2].start();
    ens.wait_roles(T);
    assert!(
        ens.members[2].log().contains("(SNAP)"),
        "zk-server should sync by SNAP"
    );
    writes(port(&ens, 2), "e").await;
    same_usage_everywhere(&ens).await;

    // The Apache leader dies: ours leads again; the Apache member comes back empty and
    // loads our SNAP.
    ens.members[leader].kill();
    assert_eq!(ens.wait_roles(T), 2, "zk-server should lead again");
    writes(port(&ens, 2), "f").await;
    ens.members[leader].wipe();
    ens.members[leader].start();
    ens.wait_roles(T);
    assert!(
        ens.members[leader]
            .log()
            .contains("Getting a snapshot from leader"),
        "the Apache member should load our SNAP"
    );
    writes(port(&ens, leader), "g").await;
    let u = same_usage_everywhere(&ens).await;
    assert_eq!(u, "count=22,bytes=122", "1 + 7 x 3 nodes, 3 + 7 x 17 bytes");
}
