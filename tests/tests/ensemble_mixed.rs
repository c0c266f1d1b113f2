//! The mixed ensemble: two Apache ZooKeeper 3.8 servers (`QuorumPeerMain`) and one
//! `zk-server` process form one ensemble. They elect over Apache's election protocol,
//! replicate over its quorum packets, and sync each other by DIFF and by SNAP (Apache's
//! snapshot stream) in both directions, with the zk-server member as leader and as
//! follower. A zk-client reads the same data through every member after each step.
//!
//! And the operator's path of the README: an Apache ensemble replaced by zk-server member by
//! member, each keeping its zoo.cfg and dataDir, under a live session; then rolled back.

use std::time::{Duration, Instant};

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

/// The README's operator guide, step by step: a running Apache ensemble becomes a zk-server
/// ensemble one member at a time (followers first, the leader last), each started with the
/// zoo.cfg and dataDir its Apache server used; then goes back to Apache the same way. A
/// client session with an ephemeral node and a watch lives through all six swaps, every
/// swapped member serves within seconds, and no write is lost.
///
/// With `reconfigEnabled=true`, as here, Apache moves the member list out of zoo.cfg into
/// `zoo.cfg.dynamic.<version>` on first start: zk-server must follow `dynamicConfigFile`
/// (ignoring it once started a member as a standalone server on the ensemble's data).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apache_ensemble_is_replaced_member_by_member_and_back() {
    let mut ens = MixedEnsemble::configure(&[Kind::Apache, Kind::Apache, Kind::Apache]);
    for m in ens.members.iter_mut() {
        m.extra_cfg = "reconfigEnabled=true\n".into();
    }
    ens.start_all();
    wait_roles(&ens);
    for m in ens.members.iter_mut() {
        let cfg = std::fs::read_to_string(m.dir.join("zoo.cfg")).expect("zoo.cfg");
        assert!(
            cfg.contains("dynamicConfigFile=") && !cfg.contains("\nserver."),
            "Apache should have moved the members out of zoo.cfg:\n{cfg}"
        );
        // From now on every server starts on the files the previous one left.
        m.rewrite_cfg = false;
    }
    write(ens.members[0].port, "a", 100).await;

    let hosts: Vec<String> = ens
        .members
        .iter()
        .map(|m| format!("127.0.0.1:{}", m.port))
        .collect();
    let session = tokio::time::timeout(
        T,
        Client::builder(&hosts.join(","))
            .session_timeout(Duration::from_secs(4))
            .connect(),
    )
    .await
    .expect("connect in time")
    .expect("connect");
    let id = session.session_id();
    session
        .create(
            "/rolling-owner",
            b"",
            &Acl::open_unsafe(),
            CreateMode::Ephemeral,
        )
        .await
        .expect("ephemeral");

    let mut written = 100;
    let mut last_tag = String::from("a");
    for (kind, step) in [
        (Kind::ZkServer, "to zk-server"),
        (Kind::Apache, "back to Apache"),
    ] {
        // Followers first, the leader last: one election per direction, as the guide says.
        let leader = wait_roles(&ens);
        let order: Vec<usize> = (0..3).filter(|&i| i != leader).chain([leader]).collect();
        for i in order {
            let (_, _, watched) = session
                .get_data_watched("/mixed")
                .await
                .expect("watch /mixed");
            ens.members[i].kill();
            ens.members[i].kind = kind;
            let started = Instant::now();
            ens.members[i].start();
            wait_roles(&ens);
            let took = started.elapsed();
            assert!(
                took < Duration::from_secs(15),
                "member {} ({step}) served only after {took:?}:\n{}",
                i + 1,
                ens.members[i].run_log()
            );
            eprintln!("member {} {step}: serving after {took:?}", i + 1);
            last_tag = format!("{}{}", if kind == Kind::Apache { "j" } else { "r" }, i + 1);
            // Writes through the member just swapped (forwarded if it follows).
            write(ens.members[i].port, &last_tag, 20).await;
            written += 20;
            check(&ens.members, written, &last_tag).await;
            tokio::time::timeout(T, watched)
                .await
                .expect("the watch on /mixed fired in time")
                .expect("watch event");
        }
        for m in ens.members.iter().filter(|m| m.kind == Kind::ZkServer) {
            let log = m.run_log();
            assert!(
                !log.contains("ERROR") && !log.contains("panicked"),
                "zk-server member on :{} logged an error:\n{log}",
                m.port,
            );
        }
    }
    // The same session, never expired, still owns its ephemeral on every member.
    assert_eq!(session.session_id(), id);
    for m in &ens.members {
        let c = client(m.port).await;
        c.sync("/rolling-owner").await.expect("sync");
        let stat = c
            .exists("/rolling-owner", false)
            .await
            .expect("exists")
            .expect("the ephemeral outlived six member swaps");
        assert_eq!(stat.ephemeral_owner, id);
        let _ = c.close().await;
    }
    check(&ens.members, written, &last_tag).await;
}
