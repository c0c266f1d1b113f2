//! Watches: one-shot data/exist/child with exact event types, persistent and recursive
//! watches, checkWatches/removeWatches, and SetWatches on reconnect.

mod server_support;

use std::time::Duration;

use server_support::*;
use zk_proto::watch::{AddWatchRequest, RemoveWatchesRequest, SetWatches, SetWatches2};
use zk_proto::{AddWatchMode, CreateMode, ErrorCode, EventType, KeeperState, Request, WatcherType};

fn ev(e: &zk_proto::WatcherEvent) -> (EventType, &str) {
    assert_eq!(e.state, KeeperState::SyncConnected);
    (e.event_type, e.path.as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_shot_watches() {
    let s = TestServer::start().await;
    let mut w = RawClient::connect(s.addr()).await;
    let mut c = RawClient::connect(s.addr()).await;

    // exists on a missing node waits for its creation.
    assert_eq!(w.exists("/a", true).await.err(), ErrorCode::NoNode);
    w.children("/", true).await;
    c.create("/a", "", CreateMode::Persistent).await;
    let evs = w.drain_events().await;
    let got: Vec<_> = evs.iter().map(ev).collect();
    assert_eq!(
        got,
        vec![
            (EventType::NodeCreated, "/a"),
            (EventType::NodeChildrenChanged, "/")
        ]
    );

    // Data watch fires once.
    w.get("/a", true).await;
    c.set("/a", "1", -1).await;
    c.set("/a", "2", -1).await;
    let evs = w.drain_events().await;
    assert_eq!(
        evs.iter().map(ev).collect::<Vec<_>>(),
        vec![(EventType::NodeDataChanged, "/a")]
    );

    // Deleting fires NodeDeleted once to a session holding both data and child watches.
    w.get("/a", true).await;
    w.children("/a", true).await;
    c.delete("/a", -1).await;
    let evs = w.drain_events().await;
    assert_eq!(
        evs.iter().map(ev).collect::<Vec<_>>(),
        vec![(EventType::NodeDeleted, "/a")]
    );

    // getData on a missing node leaves no watch.
    assert_eq!(w.get("/a", true).await.err(), ErrorCode::NoNode);
    c.create("/a", "", CreateMode::Persistent).await;
    assert!(w.drain_events().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_and_recursive_watches() {
    let s = TestServer::start().await;
    let mut w = RawClient::connect(s.addr()).await;
    let mut c = RawClient::connect(s.addr()).await;
    c.create("/p", "", CreateMode::Persistent).await;
    let r = w
        .call(Request::AddWatch(AddWatchRequest {
            path: "/p".into(),
            mode: AddWatchMode::Persistent,
        }))
        .await;
    assert_eq!(r.err(), ErrorCode::Ok);
    let r = w
        .call(Request::AddWatch(AddWatchRequest {
            path: "/r".into(),
            mode: AddWatchMode::PersistentRecursive,
        }))
        .await;
    assert_eq!(r.err(), ErrorCode::Ok);

    c.set("/p", "1", -1).await;
    c.set("/p", "2", -1).await;
    c.create("/p/kid", "", CreateMode::Persistent).await;
    let evs = w.drain_events().await;
    assert_eq!(
        evs.iter().map(ev).collect::<Vec<_>>(),
        vec![
            (EventType::NodeDataChanged, "/p"),
            (EventType::NodeDataChanged, "/p"),
            (EventType::NodeChildrenChanged, "/p"),
        ]
    );

    c.create("/r", "", CreateMode::Persistent).await;
    c.create("/r/a", "", CreateMode::Persistent).await;
    c.create("/r/a/b", "", CreateMode::Persistent).await;
    c.set("/r/a/b", "x", -1).await;
    c.delete("/r/a/b", -1).await;
    let evs = w.drain_events().await;
    // Recursive watches never report child-list changes.
    assert_eq!(
        evs.iter().map(ev).collect::<Vec<_>>(),
        vec![
            (EventType::NodeCreated, "/r"),
            (EventType::NodeCreated, "/r/a"),
            (EventType::NodeCreated, "/r/a/b"),
            (EventType::NodeDataChanged, "/r/a/b"),
            (EventType::NodeDeleted, "/r/a/b"),
        ]
    );

    let chk = |t| {
        Request::CheckWatches(RemoveWatchesRequest {
            path: "/p".into(),
            watcher_type: t,
        })
    };
    let rm = |t| {
        Request::RemoveWatches(RemoveWatchesRequest {
            path: "/p".into(),
            watcher_type: t,
        })
    };
    // A persistent watch shows as both a data and a child watch.
    assert_eq!(w.call(chk(WatcherType::Data)).await.err(), ErrorCode::Ok);
    assert_eq!(
        w.call(chk(WatcherType::Children)).await.err(),
        ErrorCode::Ok
    );
    // Apache 3.8 cannot decode the persistent watcher types here.
    assert_eq!(
        w.call(chk(WatcherType::Persistent)).await.err(),
        ErrorCode::MarshallingError
    );
    assert_eq!(
        w.call(rm(WatcherType::PersistentRecursive)).await.err(),
        ErrorCode::MarshallingError
    );
    assert_eq!(w.call(rm(WatcherType::Any)).await.err(), ErrorCode::Ok);
    assert_eq!(
        w.call(rm(WatcherType::Any)).await.err(),
        ErrorCode::NoWatcher
    );
    assert_eq!(
        w.call(chk(WatcherType::Data)).await.err(),
        ErrorCode::NoWatcher
    );
    c.set("/p", "3", -1).await;
    assert!(w.drain_events().await.is_empty());

    w.get("/p", true).await;
    let rm = w
        .call(Request::RemoveWatches(RemoveWatchesRequest {
            path: "/p".into(),
            watcher_type: WatcherType::Any,
        }))
        .await;
    assert_eq!(rm.err(), ErrorCode::Ok);
    c.set("/p", "4", -1).await;
    assert!(w.drain_events().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_watches_fires_missed_events() {
    let s = TestServer::start().await;
    let mut c = RawClient::connect(s.addr()).await;
    c.create("/changed", "", CreateMode::Persistent).await;
    c.create("/same", "", CreateMode::Persistent).await;
    c.create("/gone", "", CreateMode::Persistent).await;
    c.create("/kids", "", CreateMode::Persistent).await;
    let seen = c.exists("/same", false).await.header.zxid;

    c.set("/changed", "x", -1).await;
    c.delete("/gone", -1).await;
    c.create("/kids/k", "", CreateMode::Persistent).await;
    c.create("/born", "", CreateMode::Persistent).await;

    let mut w = RawClient::connect(s.addr()).await;
    let req = Request::SetWatches(SetWatches {
        relative_zxid: seen,
        data_watches: vec!["/changed".into(), "/same".into(), "/gone".into()],
        exist_watches: vec!["/born".into(), "/unborn".into()],
        child_watches: vec!["/kids".into()],
    });
    w.send_xid(zk_proto::xid::SET_WATCHES, &req).await;
    let reply = w.recv().await;
    assert_eq!((reply.header.xid, reply.err()), (-8, ErrorCode::Ok));
    let mut got: Vec<(EventType, String)> = w
        .drain_events()
        .await
        .iter()
        .map(|e| (e.event_type, e.path.clone()))
        .collect();
    got.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(
        got,
        vec![
            (EventType::NodeCreated, "/born".into()),
            (EventType::NodeDataChanged, "/changed".into()),
            (EventType::NodeDeleted, "/gone".into()),
            (EventType::NodeChildrenChanged, "/kids".into()),
        ]
    );
    // The unchanged ones are registered.
    c.set("/same", "y", -1).await;
    c.create("/unborn", "", CreateMode::Persistent).await;
    let got: Vec<_> = w
        .drain_events()
        .await
        .iter()
        .map(|e| (e.event_type, e.path.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            (EventType::NodeDataChanged, "/same".into()),
            (EventType::NodeCreated, "/unborn".into())
        ]
    );

    // SetWatches2 registers persistent ones without firing.
    let req = Request::SetWatches2(SetWatches2 {
        relative_zxid: 0,
        persistent_recursive_watches: vec!["/kids".into()],
        ..Default::default()
    });
    w.send_xid(zk_proto::xid::SET_WATCHES, &req).await;
    assert_eq!(w.recv().await.err(), ErrorCode::Ok);
    assert!(w.drain_events().await.is_empty());
    c.create("/kids/k2", "", CreateMode::Persistent).await;
    let e = w.event(WAIT).await.expect("recursive watch restored");
    assert_eq!(
        (e.event_type, e.path.as_str()),
        (EventType::NodeCreated, "/kids/k2")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_end_with_the_connection() {
    let s = TestServer::start().await;
    let mut c = RawClient::connect(s.addr()).await;
    c.create("/a", "", CreateMode::Persistent).await;
    let mut w = RawClient::connect(s.addr()).await;
    w.get("/a", true).await;
    let (mut w2, resp) = w.reconnect(s.addr()).await.expect("reconnect");
    assert_eq!(resp.session_id, w.session_id);
    assert!(
        w.closed_within(WAIT).await,
        "old connection of a moved session is closed"
    );
    c.set("/a", "x", -1).await;
    assert!(w2.event(Duration::from_millis(300)).await.is_none());
}
