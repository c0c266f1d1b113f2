//! zk-client against a 3-node Apache ZooKeeper 3.8 ensemble (QuorumPeerMain): kill the
//! server the client is connected to; the session, its ephemerals and every watch survive,
//! each missed change fires exactly once; then stop every server past the session timeout
//! and observe Expired.

use std::time::Duration;

use tests::apache::ApacheEnsemble;
use zk_client::{Acl, Client, CreateMode, Error, EventStream, EventType, SessionState};

const WAIT: Duration = Duration::from_secs(15);

async fn next_node_event(events: &mut EventStream) -> (EventType, String) {
    loop {
        let ev = tokio::time::timeout(WAIT, events.recv())
            .await
            .expect("event in time")
            .expect("stream open");
        if ev.event_type != EventType::None {
            return (ev.event_type, ev.path);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_and_expiry_on_apache_ensemble() {
    // A super user (digest super:pw) may reconfigure the ensemble.
    let mut ens = ApacheEnsemble::start_with(
        3,
        &["-Dzookeeper.DigestAuthenticationProvider.superDigest=super:0bX78nEegDzJM3ju0iLBEJdWzjg="],
        &[],
    )
    .expect("ensemble");
    let c = Client::builder(&ens.connect_string())
        .session_timeout(Duration::from_millis(4000))
        .connect()
        .await
        .unwrap();
    let sid = c.session_id();
    let mut events = c.events();
    let open = Acl::open_unsafe();
    c.create("/e", b"0", &open, CreateMode::Persistent)
        .await
        .unwrap();
    c.create("/e/eph", b"", &open, CreateMode::Ephemeral)
        .await
        .unwrap();
    c.get_data("/e", true).await.unwrap();
    c.exists("/e-new", true).await.unwrap();
    c.get_children("/e", true).await.unwrap();

    // Kill the server the client talks to; write through the others meanwhile.
    let victim = c.connected_host().expect("connected host").port;
    let others: Vec<String> = ens
        .nodes
        .iter()
        .filter(|n| n.client_port != victim)
        .map(|n| n.address())
        .collect();
    ens.node_by_port(victim).expect("victim node").kill();
    let w = Client::builder(&others.join(","))
        .session_timeout(Duration::from_millis(4000))
        .connect()
        .await
        .unwrap();
    w.set_data("/e", b"1", None).await.unwrap();
    w.create("/e-new", b"", &open, CreateMode::Persistent)
        .await
        .unwrap();

    c.wait_for_state(WAIT, SessionState::is_connected)
        .await
        .unwrap();
    let mut got = Vec::new();
    for _ in 0..2 {
        got.push(next_node_event(&mut events).await);
    }
    got.sort_by_key(|(t, p)| (t.to_i32(), p.clone()));
    assert_eq!(
        got,
        vec![
            (EventType::NodeCreated, "/e-new".to_owned()),
            (EventType::NodeDataChanged, "/e".to_owned()),
        ]
    );
    assert_ne!(c.connected_host().unwrap().port, victim);
    assert_eq!(c.session_id(), sid);
    // The child watch is still armed (it did not fire: no child change yet) and fires once.
    w.create("/e/kid", b"", &open, CreateMode::Persistent)
        .await
        .unwrap();
    assert_eq!(
        next_node_event(&mut events).await,
        (EventType::NodeChildrenChanged, "/e".to_owned())
    );
    assert_eq!(
        w.exists("/e/eph", false)
            .await
            .unwrap()
            .unwrap()
            .ephemeral_owner,
        sid
    );
    while let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(300), events.recv()).await {
        assert_eq!(ev.event_type, EventType::None, "duplicate event {ev:?}");
    }
    drop(w);

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
        Error::NoAuth
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
        Error::BadVersion
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

    // Stop every server: past the session timeout the client reports Expired itself.
    for n in &mut ens.nodes {
        n.kill();
    }
    let started = std::time::Instant::now();
    let s = c.wait_for_state(WAIT, |s| s == SessionState::Expired).await;
    assert_eq!(s, Ok(SessionState::Expired));
    assert!(started.elapsed() <= c.negotiated_timeout() + Duration::from_secs(2));
    assert_eq!(c.get_data("/e", false).await, Err(Error::SessionExpired));
}
