//! Watch scenarios: every kind of watch, failover through the fault proxy (missed events
//! fire once, auth replayed, ephemerals kept), blackhole detection by the read timeout,
//! self-reported expiry.

use std::time::Duration;

use futures::StreamExt;
use tests::proxy::Proxy;
use zk_client::{
    Acl, AddWatchMode, Client, CreateMode, Error, EventStream, EventType, SessionState,
    WatchedEvent,
};

const WAIT: Duration = Duration::from_secs(10);

fn open() -> Vec<Acl> {
    Acl::open_unsafe()
}

async fn next_node_event(events: &mut EventStream) -> WatchedEvent {
    loop {
        let ev = tokio::time::timeout(WAIT, events.recv())
            .await
            .expect("event in time")
            .expect("stream open");
        if ev.event_type != EventType::None {
            return ev;
        }
    }
}

async fn no_more_node_events(events: &mut EventStream) {
    while let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(300), events.recv()).await {
        assert_eq!(
            ev.event_type,
            EventType::None,
            "unexpected extra event {ev:?}"
        );
    }
}

async fn client(hosts: &str, timeout_ms: u64) -> Client {
    Client::builder(hosts)
        .session_timeout(Duration::from_millis(timeout_ms))
        .connect()
        .await
        .expect("connect")
}

/// All watch scenarios against the server at `hosts` (a single `ip:port`, proxied).
pub async fn watch_suite(hosts: &str) {
    let writer = client(hosts, 4000).await;
    every_kind(&writer, hosts).await;
    failover_keeps_session_ephemerals_and_watches(&writer, hosts).await;
    blackhole_is_detected_by_read_timeout(&writer, hosts).await;
    slow_link_below_read_timeout_keeps_the_connection(hosts).await;
    requests_wait_for_reconnection(hosts).await;
    slow_consumers_do_not_block_the_connection(&writer, hosts).await;
    many_watches_survive_failover_in_batches(&writer, hosts).await;
    cut_off_past_session_timeout_reports_expired(hosts).await;
}

pub async fn every_kind(w: &Client, hosts: &str) {
    let c = client(hosts, 4000).await;
    let mut events = c.events();
    w.create("/k", b"0", &open(), CreateMode::Persistent)
        .await
        .unwrap();
    // Default watcher (Java style), one-shot: data change.
    c.get_data("/k", true).await.unwrap();
    // Per-call watchers.
    let (_, _, data_w) = c.get_data_watched("/k").await.unwrap();
    let (none, exists_w) = c.exists_watched("/k/new").await.unwrap();
    assert!(none.is_none());
    let (_, _, child_w) = c.get_children_watched("/k").await.unwrap();
    // Persistent and recursive.
    let mut pers = c.add_watch("/k", AddWatchMode::Persistent).await.unwrap();
    // Apache keeps one watch mode per (connection, path), so the recursive watch goes on a
    // path of its own.
    w.create("/r", b"", &open(), CreateMode::Persistent)
        .await
        .unwrap();
    let mut rec = c
        .add_watch("/r", AddWatchMode::PersistentRecursive)
        .await
        .unwrap();

    w.set_data("/k", b"1", None).await.unwrap();
    let ev = next_node_event(&mut events).await;
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (EventType::NodeDataChanged, "/k")
    );
    let ev = tokio::time::timeout(WAIT, data_w).await.unwrap().unwrap();
    assert_eq!(ev.event_type, EventType::NodeDataChanged);
    w.create("/k/new", b"", &open(), CreateMode::Persistent)
        .await
        .unwrap();
    let ev = tokio::time::timeout(WAIT, exists_w).await.unwrap().unwrap();
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (EventType::NodeCreated, "/k/new")
    );
    let ev = tokio::time::timeout(WAIT, child_w).await.unwrap().unwrap();
    assert_eq!(ev.event_type, EventType::NodeChildrenChanged);
    w.create("/k/new/deep", b"", &open(), CreateMode::Persistent)
        .await
        .unwrap();
    w.set_data("/k", b"2", None).await.unwrap();
    w.create("/r/a", b"", &open(), CreateMode::Persistent)
        .await
        .unwrap();
    w.create("/r/a/b", b"", &open(), CreateMode::Persistent)
        .await
        .unwrap();
    w.set_data("/r", b"x", None).await.unwrap();
    w.delete("/r/a/b", None).await.unwrap();
    // The one-shot default watch already fired: a second change brings nothing.
    no_more_node_events(&mut events).await;
    // Persistent on /k: data change, children change, data change.
    let mut got = Vec::new();
    for _ in 0..3 {
        let ev = tokio::time::timeout(WAIT, pers.next())
            .await
            .unwrap()
            .unwrap();
        got.push((ev.event_type, ev.path));
    }
    assert_eq!(
        got,
        vec![
            (EventType::NodeDataChanged, "/k".to_owned()),
            (EventType::NodeChildrenChanged, "/k".to_owned()),
            (EventType::NodeDataChanged, "/k".to_owned()),
        ]
    );
    // Recursive: the whole subtree, no child events.
    let mut got = Vec::new();
    for _ in 0..4 {
        let ev = tokio::time::timeout(WAIT, rec.next())
            .await
            .unwrap()
            .unwrap();
        got.push((ev.event_type, ev.path));
    }
    assert_eq!(
        got,
        vec![
            (EventType::NodeCreated, "/r/a".to_owned()),
            (EventType::NodeCreated, "/r/a/b".to_owned()),
            (EventType::NodeDataChanged, "/r".to_owned()),
            (EventType::NodeDeleted, "/r/a/b".to_owned()),
        ]
    );
    // Deletion reaches data and child watches.
    c.get_children("/k/new/deep", true).await.unwrap();
    w.delete("/k/new/deep", None).await.unwrap();
    let ev = next_node_event(&mut events).await;
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (EventType::NodeDeleted, "/k/new/deep")
    );
    // Session end ends the streams and fails pending watch futures.
    let (_, _, pending) = c.get_data_watched("/k").await.unwrap();
    c.close().await.unwrap();
    assert_eq!(pending.await, Err(Error::Closed));
    let mut saw_end = false;
    while let Ok(Some(ev)) = tokio::time::timeout(WAIT, rec.next()).await {
        if ev.event_type == EventType::None && ev.state == SessionState::Closed {
            saw_end = true;
        }
    }
    assert!(saw_end);
    let states: Vec<SessionState> = {
        let mut v = Vec::new();
        while let Ok(Some(ev)) =
            tokio::time::timeout(Duration::from_millis(500), events.recv()).await
        {
            v.push(ev.state);
        }
        v
    };
    assert_eq!(states.last(), Some(&SessionState::Closed));
}

pub async fn failover_keeps_session_ephemerals_and_watches(w: &Client, hosts: &str) {
    let proxy = Proxy::start(hosts.parse().unwrap()).await.unwrap();
    let c = client(&proxy.addr().to_string(), 4000).await;
    let sid = c.session_id();
    let mut events = c.events();
    c.add_auth("digest", b"bob:pw").await.unwrap();
    c.create("/f", b"0", &Acl::creator_all(), CreateMode::Persistent)
        .await
        .unwrap();
    c.create("/f/eph", b"", &open(), CreateMode::Ephemeral)
        .await
        .unwrap();
    c.create("/fp", b"", &open(), CreateMode::Persistent)
        .await
        .unwrap();
    c.get_data("/f", true).await.unwrap(); // data watch
    c.exists("/f-new", true).await.unwrap(); // exist watch
    c.get_children("/fp", true).await.unwrap(); // child watch
    let mut rec = c
        .add_watch("/fp", AddWatchMode::PersistentRecursive)
        .await
        .unwrap();

    // Cut the client off; while it is away, change everything it watches.
    proxy.set_refuse(true);
    proxy.drop_connections();
    c.wait_for_state(WAIT, |s| s == SessionState::Disconnected)
        .await
        .unwrap();
    w.add_auth("digest", b"bob:pw").await.unwrap();
    w.set_data("/f", b"1", None).await.unwrap();
    w.create("/f-new", b"", &open(), CreateMode::Persistent)
        .await
        .unwrap();
    w.create("/fp/c", b"", &open(), CreateMode::Persistent)
        .await
        .unwrap();
    proxy.set_refuse(false);
    c.wait_for_state(WAIT, SessionState::is_connected)
        .await
        .unwrap();
    assert_eq!(c.session_id(), sid, "same session after reconnect");
    // Every one-shot watch fires exactly once for the missed changes.
    let mut got = Vec::new();
    for _ in 0..3 {
        let ev = next_node_event(&mut events).await;
        got.push((ev.event_type, ev.path));
    }
    got.sort_by_key(|(t, p)| (t.to_i32(), p.clone()));
    assert_eq!(
        got,
        vec![
            (EventType::NodeCreated, "/f-new".to_owned()),
            (EventType::NodeDataChanged, "/f".to_owned()),
            (EventType::NodeChildrenChanged, "/fp".to_owned()),
        ]
    );
    no_more_node_events(&mut events).await;
    // The persistent watch was re-registered: later changes reach it.
    w.set_data("/fp/c", b"x", None).await.unwrap();
    let ev = tokio::time::timeout(WAIT, rec.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (EventType::NodeDataChanged, "/fp/c")
    );
    // The ephemeral survived and auth was replayed (the node needs bob's credentials).
    let st = w.exists("/f/eph", false).await.unwrap().unwrap();
    assert_eq!(st.ephemeral_owner, sid);
    assert_eq!(&c.get_data("/f", false).await.unwrap().0[..], b"1");
    c.close().await.unwrap();
    assert_eq!(w.exists("/f/eph", false).await.unwrap(), None);
}

pub async fn blackhole_is_detected_by_read_timeout(w: &Client, hosts: &str) {
    let proxy = Proxy::start(hosts.parse().unwrap()).await.unwrap();
    let c = client(&proxy.addr().to_string(), 3000).await;
    let sid = c.session_id();
    let read_timeout = c.negotiated_timeout() * 2 / 3;
    c.create("/bh", b"", &open(), CreateMode::Ephemeral)
        .await
        .unwrap();
    proxy.set_blackhole(true);
    let started = std::time::Instant::now();
    // In flight on the dead connection: fails with ConnectionLoss, not replayed.
    let r = c.set_data("/bh", b"lost", None).await;
    assert_eq!(r, Err(Error::ConnectionLoss));
    let waited = started.elapsed();
    assert!(
        waited <= read_timeout + Duration::from_millis(1500),
        "detected after {waited:?} (read timeout {read_timeout:?})"
    );
    proxy.set_blackhole(false);
    c.wait_for_state(WAIT, SessionState::is_connected)
        .await
        .unwrap();
    assert_eq!(c.session_id(), sid);
    assert_eq!(w.get_data("/bh", false).await.unwrap().0.len(), 0);
    c.close().await.unwrap();
}

pub async fn cut_off_past_session_timeout_reports_expired(hosts: &str) {
    let proxy = Proxy::start(hosts.parse().unwrap()).await.unwrap();
    let c = client(&proxy.addr().to_string(), 1000).await;
    let mut events = c.events();
    let states_stream = c.state_changes();
    let (_, _, watch) = c.get_data_watched("/").await.unwrap();
    proxy.set_refuse(true);
    proxy.drop_connections();
    let s = c.wait_for_state(WAIT, |s| s == SessionState::Expired).await;
    assert_eq!(s, Ok(SessionState::Expired));
    assert_eq!(c.state(), SessionState::Expired);
    assert_eq!(watch.await, Err(Error::SessionExpired));
    assert_eq!(c.exists("/", false).await, Err(Error::SessionExpired));
    let mut states = Vec::new();
    while let Ok(Some(ev)) = tokio::time::timeout(Duration::from_secs(1), events.recv()).await {
        states.push(ev.state);
    }
    assert_eq!(
        states,
        vec![SessionState::Disconnected, SessionState::Expired]
    );
    let from_stream: Vec<SessionState> = states_stream.collect().await;
    assert_eq!(from_stream, states);
}

/// A request issued while disconnected is sent after the reconnect (not failed), and one
/// that waits longer than the request timeout fails with Timeout.
pub async fn requests_wait_for_reconnection(hosts: &str) {
    let proxy = Proxy::start(hosts.parse().unwrap()).await.unwrap();
    let c = Client::builder(&proxy.addr().to_string())
        .session_timeout(Duration::from_millis(4000))
        .request_timeout(Duration::from_millis(1500))
        .connect()
        .await
        .unwrap();
    proxy.set_refuse(true);
    proxy.drop_connections();
    c.wait_for_state(WAIT, |s| s == SessionState::Disconnected)
        .await
        .unwrap();
    let waiting = {
        let c = c.clone();
        tokio::spawn(async move { c.exists("/", false).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    proxy.set_refuse(false);
    assert!(waiting.await.unwrap().unwrap().is_some());
    // Cut off again, for longer than the request timeout.
    proxy.set_refuse(true);
    proxy.drop_connections();
    c.wait_for_state(WAIT, |s| s == SessionState::Disconnected)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    assert_eq!(c.exists("/", false).await, Err(Error::Timeout));
    assert!(started.elapsed() >= Duration::from_millis(1400));
    proxy.set_refuse(false);
    c.wait_for_state(WAIT, SessionState::is_connected)
        .await
        .unwrap();
    c.close().await.unwrap();
}

/// More watches than fit in one SetWatches packet (128 KiB of paths): after a failover every
/// one of them fires exactly once for a change made while the client was away.
pub async fn many_watches_survive_failover_in_batches(w: &Client, hosts: &str) {
    const N: usize = 1500;
    let long = "x".repeat(100);
    let paths: Vec<String> = (0..N).map(|i| format!("/many/{long}{i:05}")).collect();
    let total: usize = paths.iter().map(|p| p.len() + 4).sum();
    assert!(total > 128 * 1024, "needs more than one SetWatches packet");
    w.create("/many", b"", &open(), CreateMode::Persistent)
        .await
        .unwrap();
    let acl = open();
    futures::stream::iter(paths.iter())
        .map(|p| w.create(p, b"", &acl, CreateMode::Persistent))
        .buffer_unordered(128)
        .for_each(|r| {
            r.unwrap();
            async {}
        })
        .await;
    let proxy = Proxy::start(hosts.parse().unwrap()).await.unwrap();
    let c = client(&proxy.addr().to_string(), 4000).await;
    let mut events = c.events();
    futures::stream::iter(paths.iter())
        .map(|p| c.get_data(p, true))
        .buffer_unordered(128)
        .for_each(|r| {
            r.unwrap();
            async {}
        })
        .await;
    proxy.set_refuse(true);
    proxy.drop_connections();
    c.wait_for_state(WAIT, |s| s == SessionState::Disconnected)
        .await
        .unwrap();
    futures::stream::iter(paths.iter())
        .map(|p| w.set_data(p, b"changed", None))
        .buffer_unordered(128)
        .for_each(|r| {
            r.unwrap();
            async {}
        })
        .await;
    proxy.set_refuse(false);
    let mut seen = std::collections::HashSet::new();
    while seen.len() < N {
        let ev = next_node_event(&mut events).await;
        assert_eq!(ev.event_type, EventType::NodeDataChanged);
        assert!(
            seen.insert(ev.path.clone()),
            "duplicate event for {}",
            ev.path
        );
    }
    no_more_node_events(&mut events).await;
    c.close().await.unwrap();
}

/// Nobody reads the watch stream or the event stream while hundreds of events arrive: the
/// connection keeps serving requests, and afterwards every event is there, in order.
pub async fn slow_consumers_do_not_block_the_connection(w: &Client, hosts: &str) {
    const N: usize = 500;
    let c = client(hosts, 4000).await;
    w.create("/slow", b"", &open(), CreateMode::Persistent)
        .await
        .unwrap();
    let mut unread = c
        .add_watch("/slow", AddWatchMode::Persistent)
        .await
        .unwrap();
    let _unread_events = c.events();
    for i in 0..N {
        w.set_data("/slow", i.to_string().as_bytes(), None)
            .await
            .unwrap();
    }
    // The client is still responsive and has seen every write.
    let (data, stat) = tokio::time::timeout(WAIT, c.get_data("/slow", false))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stat.version as usize, N);
    assert_eq!(data, (N - 1).to_string().as_bytes());
    for _ in 0..N {
        let ev = tokio::time::timeout(WAIT, unread.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(ev.event_type, EventType::NodeDataChanged);
    }
    c.close().await.unwrap();
}

/// A slow link (every chunk delayed, well under the read timeout) is not mistaken for a dead
/// server: no reconnect, no ConnectionLoss, pings keep the session alive.
pub async fn slow_link_below_read_timeout_keeps_the_connection(hosts: &str) {
    let proxy = Proxy::start(hosts.parse().unwrap()).await.unwrap();
    let c = client(&proxy.addr().to_string(), 3000).await;
    let mut states = Box::pin(c.state_changes());
    proxy.set_delay(Duration::from_millis(200));
    for i in 0..5 {
        c.exists("/", false).await.unwrap();
        if i == 2 {
            // Idle for longer than the ping interval.
            tokio::time::sleep(c.negotiated_timeout() / 2).await;
        }
    }
    assert_eq!(proxy.accepted(), 1, "never reconnected");
    assert_eq!(c.state(), SessionState::Connected);
    assert!(
        tokio::time::timeout(Duration::from_millis(100), states.next())
            .await
            .is_err(),
        "no state change"
    );
    c.close().await.unwrap();
}
