//! The mixed ensemble: two Apache ZooKeeper 3.8 servers (`QuorumPeerMain`) and one
//! `zk-server` process form one ensemble. They elect over Apache's election protocol,
//! replicate over its quorum packets, and sync each other by DIFF and by SNAP (Apache's
//! snapshot stream) in both directions, with the zk-server member as leader and as
//! follower. A zk-client reads the same data through every member after each step.

use std::time::Duration;

use tests::mixed::{Kind, Member, MixedEnsemble};
use zk_client::{Acl, Client, CreateMode};

const T: Duration = Duration::from_secs(30);

/// Waits until the running members show one leader and followers; returns the leader.
fn wait_roles(ens: &MixedEnsemble) -> usize {
    ens.wait_roles(T)
}

async fn client(port: u16) -> Client {
    tokio::time::timeout(T, Client::connect(&format!("127.0.0.1:{port}")))
        .await
        .expect("connect in time")
        .expect("connect")
}

/// Creates `n` nodes `/mixed/{tag}-i` and sets `/mixed` to `tag` through the member on `port`.
async fn write(port: u16, tag: &str, n: usize) {
    let c = client(port).await;
    match c
        .create("/mixed", b"", &Acl::open_unsafe(), CreateMode::Persistent)
        .await
    {
        Ok(_) | Err(zk_client::Error::NodeExists { .. }) => {}
        Err(e) => panic!("create /mixed: {e}"),
    }
    for i in 0..n {
        c.create(
            &format!("/mixed/{tag}-{i}"),
            format!("v{i}").as_bytes(),
            &Acl::open_unsafe(),
            CreateMode::Persistent,
        )
        .await
        .expect("create");
    }
    c.set_data("/mixed", tag.as_bytes(), None)
        .await
        .expect("set");
    let _ = c.close().await;
}

/// Every running member serves `children` children under /mixed with data `tag`, and
/// the same sample of node data.
async fn check(members: &[Member], children: usize, tag: &str) {
    for m in members.iter().filter(|m| m.is_started()) {
        let c = client(m.port).await;
        c.sync("/mixed").await.expect("sync");
        let kids = c.get_children("/mixed", false).await.expect("children");
        assert_eq!(kids.len(), children, "children on member :{}", m.port);
        let (data, _) = c.get_data("/mixed", false).await.expect("get");
        assert_eq!(&data[..], tag.as_bytes(), "data on member :{}", m.port);
        let (d0, _) = c.get_data("/mixed/a-7", false).await.expect("get a-7");
        assert_eq!(&d0[..], b"v7");
        let _ = c.close().await;
    }
}

fn logged(m: &Member, what: &str) -> bool {
    m.log().contains(what)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_apache_servers_and_one_zk_server_form_one_ensemble() {
    // Members 1 and 2 are Apache, member 3 is zk-server (the highest id, so it wins an
    // election between equally up-to-date servers). It starts first: two Apache servers
    // are a majority and would elect without it if it came up late.
    let mut ens = MixedEnsemble::configure(&[Kind::Apache, Kind::Apache, Kind::ZkServer]);
    ens.start_all();
    // Equally empty servers: the highest id, our member, leads the two Apache ones.
    assert_eq!(wait_roles(&ens), 2, "zk-server (id 3) should lead");
    let port = |ens: &MixedEnsemble, i: usize| ens.members[i].port;
    // Writes through an Apache follower (forwarded to our leader) and through our leader.
    write(port(&ens, 0), "a", 100).await;
    write(port(&ens, 2), "b", 100).await;
    check(&ens.members, 200, "b").await;

    // Our leader dies: the Apache servers elect one of them and keep serving.
    ens.members[2].kill();
    let leader = wait_roles(&ens);
    assert!(leader < 2);
    write(port(&ens, 0), "c", 50).await;
    // Back, it follows the Apache leader and catches up by DIFF.
    ens.members[2].start();
    wait_roles(&ens);
    check(&ens.members, 250, "c").await;
    assert!(
        logged(&ens.members[2], "(DIFF)"),
        "zk-server should sync by DIFF"
    );

    // Wiped, it is synced by an Apache leader's SNAP.
    ens.members[2].wipe();
    write(port(&ens, leader), "d", 300).await;
    ens.members[2].start();
    wait_roles(&ens);
    check(&ens.members, 550, "d").await;
    assert!(
        logged(&ens.members[2], "(SNAP)"),
        "zk-server should sync by SNAP"
    );

    // The Apache leader dies: our member (same zxid, higher id) leads the other Apache.
    ens.members[leader].kill();
    assert_eq!(wait_roles(&ens), 2, "zk-server should lead again");
    write(port(&ens, 2), "e", 100).await;
    // The dead Apache server comes back empty: our leader sends it a SNAP it loads.
    ens.members[leader].wipe();
    ens.members[leader].start();
    wait_roles(&ens);
    check(&ens.members, 650, "e").await;
    assert!(
        logged(&ens.members[leader], "Getting a snapshot from leader"),
        "the Apache server should load our SNAP"
    );
}
