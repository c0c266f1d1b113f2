//! Failover of a session between ensemble members, for any ensemble: the member the client
//! is connected to is killed; the session, its ephemerals and every watch survive on
//! another member, and each change missed meanwhile fires exactly once. Then, with every
//! member stopped past the session timeout, the client reports Expired itself.

use std::time::Duration;

use zk_client::{Acl, Client, CreateMode, Error, EventStream, EventType, SessionState};

/// How long a failover step may take (an election included).
pub const WAIT: Duration = Duration::from_secs(15);

/// The next event about a node (session state events skipped).
pub async fn next_node_event(events: &mut EventStream) -> (EventType, String) {
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

/// The client that failed over, for the steps a caller adds.
pub struct FailedOver {
    /// The session that moved to another member.
    pub client: Client,
    /// Its events, everything up to the failover consumed.
    pub events: EventStream,
    /// Client port of the member that was killed.
    pub victim: u16,
}

/// Runs the failover against `hosts` (every member's `127.0.0.1:port`); `kill` stops the
/// member serving the given client port.
pub async fn member_killed_under_a_session(hosts: &str, kill: impl FnOnce(u16)) -> FailedOver {
    let c = Client::builder(hosts)
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
    let others: Vec<&str> = hosts
        .split(',')
        .filter(|h| *h != format!("127.0.0.1:{victim}"))
        .collect();
    assert_eq!(others.len() + 1, hosts.split(',').count(), "{hosts}");
    kill(victim);
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
    FailedOver {
        client: c,
        events,
        victim,
    }
}

/// `stop_all` stops every member: past the session timeout the client reports Expired
/// itself.
pub async fn expires_when_every_member_stops(c: &Client, stop_all: impl FnOnce()) {
    stop_all();
    let started = std::time::Instant::now();
    let s = c.wait_for_state(WAIT, |s| s == SessionState::Expired).await;
    assert_eq!(s, Ok(SessionState::Expired));
    assert!(started.elapsed() <= c.negotiated_timeout() + Duration::from_secs(2));
    assert_eq!(c.get_data("/e", false).await, Err(Error::SessionExpired));
}
