//! Locks and leader election.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use zk_recipes::election::{LeaderLatch, Leadership};
use zk_recipes::lock::Lock;

use super::{expire, recv_until, session, WAIT};

/// Mutual exclusion, fairness, reentrancy, and the holder's session expiring.
pub async fn lock(hosts: &str) {
    let s1 = session(hosts, 2000).await;
    let s2 = session(hosts, 2000).await;
    let s3 = session(hosts, 2000).await;
    let l1 = Arc::new(Lock::new(&s1, "/locks/res", "one"));
    let l2 = Arc::new(Lock::new(&s2, "/locks/res", "two"));
    let l3 = Arc::new(Lock::new(&s3, "/locks/res", "three"));

    l1.acquire().await.unwrap();
    assert!(l1.is_held());
    // Reentrant within the owner.
    l1.acquire().await.unwrap();
    assert!(!l2.try_acquire(Duration::ZERO).await.unwrap());
    assert!(!l2.try_acquire(Duration::from_millis(200)).await.unwrap());

    // Fair order: two queues before three.
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let t2 = {
        let (l, o) = (l2.clone(), order.clone());
        tokio::spawn(async move {
            l.acquire().await.unwrap();
            o.lock().unwrap().push("two");
            tokio::time::sleep(Duration::from_millis(100)).await;
            l.release().await.unwrap();
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t3 = {
        let (l, o) = (l3.clone(), order.clone());
        tokio::spawn(async move {
            l.acquire().await.unwrap();
            o.lock().unwrap().push("three");
            l.release().await.unwrap();
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(l1.contenders().await.unwrap(), ["one", "two", "three"]);
    l1.release().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(order.lock().unwrap().is_empty(), "still held once");
    l1.release().await.unwrap();
    tokio::time::timeout(WAIT, t2).await.unwrap().unwrap();
    tokio::time::timeout(WAIT, t3).await.unwrap().unwrap();
    assert_eq!(*order.lock().unwrap(), ["two", "three"]);

    // The holder's session expires: the waiter gets the lock, the holder learns it lost it.
    l1.acquire().await.unwrap();
    let waiter = {
        let l = l2.clone();
        tokio::spawn(async move { l.acquire().await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiter.is_finished());
    expire(&s1.client(), hosts).await;
    tokio::time::timeout(WAIT, l1.lost()).await.unwrap();
    tokio::time::timeout(WAIT, waiter)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(l2.is_held());
    assert!(!l1.is_held());
    // The old holder queues again on its new session and gets it after release.
    let again = {
        let l = l1.clone();
        tokio::spawn(async move { l.acquire().await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!again.is_finished());
    l2.release().await.unwrap();
    tokio::time::timeout(WAIT, again)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(l1.is_held());
    l1.release().await.unwrap();
    assert!(l1.contenders().await.unwrap().is_empty());
    for s in [s1, s2, s3] {
        s.close().await.unwrap();
    }
}

/// Two contenders; the leader's session expires; the other takes over; the first comes
/// back as follower; resign hands leadership over.
pub async fn election(hosts: &str) {
    let s1 = session(hosts, 2000).await;
    let s2 = session(hosts, 2000).await;
    let a = LeaderLatch::start(&s1, "/election/svc", "a");
    a.wait_leader(WAIT).await.unwrap();
    let b = LeaderLatch::start(&s2, "/election/svc", "b");
    let mut bev = b.events();
    let mut aev = a.events();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(a.is_leader() && !b.is_leader());
    assert_eq!(a.contenders().await.unwrap(), ["a", "b"]);

    expire(&s1.client(), hosts).await;
    recv_until(&mut aev, "a revoked", |e| *e == Leadership::Revoked).await;
    recv_until(&mut bev, "b elected", |e| *e == Leadership::Elected).await;
    assert!(b.is_leader());
    // a re-joined on its new session behind b.
    let deadline = tokio::time::Instant::now() + WAIT;
    while a.contenders().await.unwrap() != ["b", "a"] {
        assert!(tokio::time::Instant::now() < deadline, "a re-queues");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!a.is_leader());

    // Exactly one leader at any time while leadership moves back and forth.
    let both = Arc::new(AtomicUsize::new(0));
    b.resign();
    recv_until(&mut aev, "a elected", |e| *e == Leadership::Elected).await;
    if a.is_leader() && b.is_leader() {
        both.fetch_add(1, Ordering::SeqCst);
    }
    assert_eq!(both.load(Ordering::SeqCst), 0);
    a.close().await.unwrap();
    recv_until(&mut bev, "b elected again", |e| *e == Leadership::Elected).await;
    assert_eq!(b.contenders().await.unwrap(), ["b"]);
    b.close().await.unwrap();
    s1.close().await.unwrap();
    s2.close().await.unwrap();
}
