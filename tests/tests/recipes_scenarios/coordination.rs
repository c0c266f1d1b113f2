//! Locks and leader election.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use zk_recipes::election::{LeaderLatch, Leadership};
use zk_recipes::lock::Lock;

use super::{expire, recv_until, session, until_async, WAIT};

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
    until_async("three contenders queued", || async {
        l1.contenders().await.unwrap() == ["one", "two", "three"]
    })
    .await;
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
    until_async("b queues behind a", || async {
        a.contenders().await.unwrap() == ["a", "b"]
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(a.is_leader() && !b.is_leader());

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

/// Readers share, writers exclude, in sequence order.
pub async fn rwlock(hosts: &str) {
    use zk_recipes::rwlock::RwLock;
    let s1 = session(hosts, 4000).await;
    let s2 = session(hosts, 4000).await;
    let a = RwLock::new(&s1, "/rw/res", "a");
    let b = Arc::new(RwLock::new(&s2, "/rw/res", "b"));
    a.read.acquire().await.unwrap();
    // Readers share.
    assert!(b.read.try_acquire(Duration::ZERO).await.unwrap());
    // A writer waits for both readers.
    assert!(!b
        .write
        .try_acquire(Duration::from_millis(200))
        .await
        .unwrap());
    b.read.release().await.unwrap();
    let writer = {
        let b = b.clone();
        tokio::spawn(async move { b.write.acquire().await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!writer.is_finished(), "writer waits for the reader");
    // A reader arriving after the queued writer waits behind it.
    let c = RwLock::new(&s1, "/rw/res", "c");
    assert!(!c
        .read
        .try_acquire(Duration::from_millis(200))
        .await
        .unwrap());
    a.read.release().await.unwrap();
    tokio::time::timeout(WAIT, writer)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(!a
        .read
        .try_acquire(Duration::from_millis(100))
        .await
        .unwrap());
    b.write.release().await.unwrap();
    assert!(a.read.try_acquire(Duration::from_secs(5)).await.unwrap());
    a.read.release().await.unwrap();
    s1.close().await.unwrap();
    s2.close().await.unwrap();
}

/// At most `n` holders; a freed lease goes to a waiter; a holder's expiry frees its lease.
pub async fn semaphore(hosts: &str) {
    use zk_recipes::semaphore::Semaphore;
    let sessions = [
        session(hosts, 2000).await,
        session(hosts, 2000).await,
        session(hosts, 2000).await,
    ];
    let sems: Vec<Semaphore> = sessions
        .iter()
        .enumerate()
        .map(|(i, s)| Semaphore::new(s, "/sem/pool", &format!("h{i}"), 2))
        .collect();
    assert!(sems[0].acquire(WAIT).await.unwrap());
    assert!(sems[1].acquire(WAIT).await.unwrap());
    assert!(!sems[2].acquire(Duration::from_millis(300)).await.unwrap());
    assert_eq!(sems[0].holders().await.unwrap(), ["h0", "h1"]);
    sems[0].release().await.unwrap();
    assert!(sems[2].acquire(WAIT).await.unwrap());
    // A holder's session expires: its lease is freed.
    assert!(!sems[0].acquire(Duration::from_millis(200)).await.unwrap());
    expire(&sessions[1].client(), hosts).await;
    assert!(sems[0].acquire(WAIT).await.unwrap());
    assert_eq!(sems[0].holders().await.unwrap(), ["h0", "h2"]);
    // A different lease count is refused.
    let wrong = Semaphore::new(&sessions[0], "/sem/pool", "x", 3);
    assert!(wrong.acquire(Duration::ZERO).await.is_err());
    for s in &sessions {
        s.close().await.unwrap();
    }
}

/// Barrier: waiters pass when it is removed. Double barrier: 3 participants enter
/// together and leave together.
pub async fn barriers(hosts: &str) {
    use zk_recipes::barrier::Barrier;
    use zk_recipes::double_barrier::DoubleBarrier;
    let s = session(hosts, 4000).await;
    let b = Barrier::new(&s, "/barrier/start");
    assert!(b.wait(Duration::ZERO).await.unwrap(), "no barrier, no wait");
    b.raise().await.unwrap();
    assert!(!b.wait(Duration::from_millis(200)).await.unwrap());
    let waiter = {
        let b = b.clone();
        tokio::spawn(async move { b.wait(WAIT).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(b.remove().await.unwrap());
    assert!(tokio::time::timeout(WAIT, waiter)
        .await
        .unwrap()
        .unwrap()
        .unwrap());
    assert!(!b.remove().await.unwrap());

    let entered = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..3 {
        let ps = session(hosts, 4000).await;
        let entered = entered.clone();
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(150 * i)).await;
            let d = DoubleBarrier::new(&ps, "/barrier/double", 3, &format!("p{i}"));
            d.enter(WAIT).await.unwrap();
            // Everyone has at least arrived when anyone gets through.
            let n = entered.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::time::sleep(Duration::from_millis(100 * i)).await;
            d.leave(WAIT).await.unwrap();
            let after = entered.load(Ordering::SeqCst);
            ps.close().await.unwrap();
            (n, after)
        }));
    }
    for t in tasks {
        let (_, after) = tokio::time::timeout(WAIT, t).await.unwrap().unwrap();
        assert_eq!(after, 3, "nobody leaves before all entered");
    }
    let children = s
        .client()
        .get_children("/barrier/double", false)
        .await
        .unwrap();
    assert!(children.is_empty(), "{children:?}");
    s.close().await.unwrap();
}

/// Fencing tokens: a lock holder whose session expires has a lower token than the next
/// holder, and a downstream fence refuses it once the next holder has written; the token is
/// the holder node's czxid; a reentrant hold keeps it. Leadership terms likewise.
pub async fn fencing(hosts: &str) {
    use zk_recipes::fencing::{Fence, FencingToken};

    let s1 = session(hosts, 2000).await;
    let s2 = session(hosts, 2000).await;
    let l1 = Arc::new(Lock::new(&s1, "/fenced/res", "one"));
    let l2 = Arc::new(Lock::new(&s2, "/fenced/res", "two"));
    assert_eq!(l1.fencing_token(), None);
    l1.acquire().await.unwrap();
    let t1 = l1.fencing_token().expect("token while held");
    // The token is the holder node's czxid.
    let client = s2.client();
    let children = client.get_children("/fenced/res", false).await.unwrap();
    assert_eq!(children.len(), 1);
    let stat = client
        .exists(&format!("/fenced/res/{}", children[0]), false)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(t1, FencingToken::new(stat.czxid));
    l1.acquire().await.unwrap();
    assert_eq!(
        l1.fencing_token(),
        Some(t1),
        "reentrant hold keeps its token"
    );

    // The downstream resource: writes carry the token.
    let storage = Fence::new();
    storage.check(t1).unwrap();

    // Two queues; one's session expires while it holds the lock.
    let waiter = {
        let l2 = l2.clone();
        tokio::spawn(async move { l2.acquire().await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!l2.is_held());
    expire(&s1.client(), hosts).await;
    tokio::time::timeout(WAIT, waiter)
        .await
        .expect("next holder in time")
        .unwrap()
        .unwrap();
    let t2 = l2.fencing_token().expect("new holder's token");
    assert!(
        t2 > t1,
        "next holder's token {t2} must exceed the expired holder's {t1}"
    );
    assert_eq!(l1.fencing_token(), None, "expired holder holds nothing");
    assert_eq!(
        l1.last_fencing_token(),
        Some(t1),
        "but remembers what it held"
    );
    storage.check(t2).unwrap();
    // The stale holder, unaware, writes with its old token: refused.
    let stale = storage.check(l1.last_fencing_token().unwrap()).unwrap_err();
    assert!(
        matches!(stale, zk_recipes::Error::StaleToken { presented, accepted } if presented == t1 && accepted == t2),
        "{stale}"
    );
    storage.check(t2).unwrap();
    // Queuing again after expiry gets a new, greater token.
    l2.release().await.unwrap();
    l1.acquire().await.unwrap();
    let t3 = l1.fencing_token().unwrap();
    assert!(t3 > t2);
    l1.release().await.unwrap();
    l1.release().await.unwrap();
    assert_eq!(l1.fencing_token(), None);

    // Leadership terms.
    let e1 = session(hosts, 2000).await;
    let e2 = session(hosts, 2000).await;
    let a = LeaderLatch::start(&e1, "/fenced/election", "a");
    a.wait_leader(WAIT).await.unwrap();
    let b = LeaderLatch::start(&e2, "/fenced/election", "b");
    let ta = a.fencing_token().expect("leader's token");
    until_async("b queued", || async {
        b.contenders().await.map(|c| c.len() == 2).unwrap_or(false)
    })
    .await;
    assert_eq!(b.fencing_token(), None, "no token while not leading");
    expire(&e1.client(), hosts).await;
    b.wait_leader(WAIT).await.unwrap();
    let tb = b.fencing_token().unwrap();
    assert!(tb > ta, "{tb} vs {ta}");
    until_async("a revoked", || async { a.fencing_token().is_none() }).await;
    assert!(storage.check(tb).is_ok() && storage.check(ta).is_err());
}
