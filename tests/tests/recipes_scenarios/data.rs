//! Counter, queue and tree cache.

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use tests::proxy::Proxy;
use zk_client::{Acl, CreateMode};
use zk_recipes::counter::Counter;
use zk_recipes::queue::Queue;
use zk_recipes::tree_cache::{TreeCache, TreeEvent};

use super::{addr, expire, recv_until, session, until, WAIT};

/// Concurrent increments from several sessions all count (versioned CAS).
pub async fn counter(hosts: &str) {
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let s = session(hosts, 4000).await;
        tasks.push(tokio::spawn(async move {
            let c = Counter::new(&s, "/counters/hits");
            for _ in 0..25 {
                c.add(1).await.unwrap();
            }
            s.close().await.unwrap();
        }));
    }
    for t in tasks {
        tokio::time::timeout(WAIT, t).await.unwrap().unwrap();
    }
    let s = session(hosts, 4000).await;
    let c = Counter::new(&s, "/counters/hits");
    assert_eq!(c.get().await.unwrap().0, 100);
    assert_eq!(c.add(-10).await.unwrap(), (100, 90));
    // kazoo's format: ASCII decimal.
    let (data, _) = s.client().get_data("/counters/hits", false).await.unwrap();
    assert_eq!(&data[..], b"90");
    s.close().await.unwrap();
}

/// Priorities then FIFO; each entry to exactly one of several consumers.
pub async fn queue(hosts: &str) {
    let s = session(hosts, 4000).await;
    let q = Queue::new(&s, "/queues/jobs");
    assert_eq!(q.take().await.unwrap(), None);
    q.put(b"low-1", 200).await.unwrap();
    q.put(b"high-1", 10).await.unwrap();
    q.put(b"low-2", 200).await.unwrap();
    q.put(b"high-2", 10).await.unwrap();
    assert_eq!(q.len().await.unwrap(), 4);
    let order: Vec<Bytes> = [
        q.take().await.unwrap(),
        q.take().await.unwrap(),
        q.take().await.unwrap(),
        q.take().await.unwrap(),
    ]
    .into_iter()
    .flatten()
    .collect();
    assert_eq!(
        order,
        ["high-1", "high-2", "low-1", "low-2"].map(Bytes::from)
    );
    assert!(q.put(b"x", 1000).await.is_err());

    // A blocked consumer wakes on put.
    let waiter = {
        let q = q.clone();
        tokio::spawn(async move { q.take_wait(WAIT).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    q.put(b"late", 100).await.unwrap();
    let got = tokio::time::timeout(WAIT, waiter)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(got.as_deref(), Some(&b"late"[..]));

    // 3 consumers, 60 entries: each taken exactly once.
    for i in 0..60 {
        q.put(format!("e{i}").as_bytes(), 100).await.unwrap();
    }
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let cs = session(hosts, 4000).await;
        tasks.push(tokio::spawn(async move {
            let q = Queue::new(&cs, "/queues/jobs");
            let mut got = Vec::new();
            while let Some(v) = q.take().await.unwrap() {
                got.push(String::from_utf8(v.to_vec()).unwrap());
            }
            cs.close().await.unwrap();
            got
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(tokio::time::timeout(WAIT, t).await.unwrap().unwrap());
    }
    let unique: BTreeSet<&String> = all.iter().collect();
    assert_eq!(all.len(), 60);
    assert_eq!(unique.len(), 60);
    s.close().await.unwrap();
}

/// The cache follows creations, updates and deletions at any depth, catches up after a
/// connection drop (changes made meanwhile) and after its session expires.
pub async fn tree_cache(hosts: &str) {
    let w = session(hosts, 4000).await;
    let wc = w.client();
    let open = Acl::open_unsafe();
    let proxy = Proxy::start(addr(hosts)).await.unwrap();
    let cs = session(&proxy.addr().to_string(), 2000).await;
    wc.create("/tree", b"root", &open, CreateMode::Persistent)
        .await
        .unwrap();
    wc.create("/tree/a", b"1", &open, CreateMode::Persistent)
        .await
        .unwrap();
    let cache = TreeCache::start(&cs, "/tree").await.unwrap();
    assert_eq!(cache.get("/tree/a").unwrap().data, Bytes::from("1"));
    let mut ev = cache.events();

    wc.create("/tree/a/b", b"2", &open, CreateMode::Persistent)
        .await
        .unwrap();
    recv_until(
        &mut ev,
        "deep add",
        |e| matches!(e, TreeEvent::Added(p, _) if p == "/tree/a/b"),
    )
    .await;
    wc.set_data("/tree/a", b"1b", None).await.unwrap();
    recv_until(
        &mut ev,
        "update",
        |e| matches!(e, TreeEvent::Updated(p, n) if p == "/tree/a" && n.data == "1b"),
    )
    .await;
    wc.delete("/tree/a/b", None).await.unwrap();
    recv_until(
        &mut ev,
        "remove",
        |e| matches!(e, TreeEvent::Removed(p, _) if p == "/tree/a/b"),
    )
    .await;

    // Changes while the cache is cut off are caught up after reconnecting.
    proxy.set_refuse(true);
    proxy.drop_connections();
    wc.create("/tree/c", b"3", &open, CreateMode::Persistent)
        .await
        .unwrap();
    wc.set_data("/tree/a", b"1c", None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.set_refuse(false);
    until("caught up after reconnect", || {
        cache.get("/tree/c").is_some()
            && cache.get("/tree/a").map(|n| n.data) == Some(Bytes::from("1c"))
    })
    .await;

    // And after its session expires.
    expire(&cs.client(), hosts).await;
    wc.delete("/tree/c", None).await.unwrap();
    wc.create("/tree/d", b"4", &open, CreateMode::Persistent)
        .await
        .unwrap();
    until("caught up on the new session", || {
        cache.get("/tree/c").is_none() && cache.get("/tree/d").is_some()
    })
    .await;
    let names: Vec<String> = cache
        .children("/tree")
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["a", "d"]);
    assert_eq!(cache.snapshot().len(), 3);
    cs.close().await.unwrap();
    w.close().await.unwrap();
}
