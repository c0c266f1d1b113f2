//! One scenario for any ensemble: the server of the leader's session is killed; sessions
//! fail over, so registrations, leadership and the lock survive, the config watcher gets the
//! change made during the failover, and the service cache keeps every instance.

use std::time::Duration;

use super::{recv_until, session, until, WAIT};
use zk_recipes::config::{Config, ConfigEvent};
use zk_recipes::discovery::{DiscoveryEvent, ServiceCache, ServiceInstance, ServiceRegistry};
use zk_recipes::election::LeaderLatch;
use zk_recipes::lock::Lock;

/// Runs the scenario against `hosts`; `kill` stops the member serving the given client port.
pub async fn recipes_survive_a_killed_member(hosts: &str, mut kill: impl FnMut(u16)) {
    let hosts = hosts.to_string();
    let observer = session(&hosts, 4000).await;
    let registry = ServiceRegistry::new(&observer, "/services");
    let cache = ServiceCache::start(&registry, "db").await.unwrap();
    let mut discovery = cache.events();
    let mut servers = Vec::new();
    for i in 0..5u16 {
        let s = session(&hosts, 4000).await;
        let r = ServiceRegistry::new(&s, "/services")
            .register(ServiceInstance::new(
                "db",
                &format!("db{i}"),
                "10.1.0.1",
                5000 + i,
            ))
            .await
            .unwrap();
        servers.push((s, r));
    }
    until("5 instances", || cache.instances().len() == 5).await;

    let sa = session(&hosts, 4000).await;
    let sb = session(&hosts, 4000).await;
    let a = LeaderLatch::start(&sa, "/election/ens", "a");
    a.wait_leader(WAIT).await.unwrap();
    let b = LeaderLatch::start(&sb, "/election/ens", "b");
    let lock = Lock::new(&sa, "/locks/ens", "a");
    lock.acquire().await.unwrap();

    let writer: Config<String> = Config::new(&sb, "/cfg/ens");
    writer.set(&"before".to_string(), None).await.unwrap();
    let watcher: Config<String> = Config::new(&observer, "/cfg/ens");
    let mut updates = watcher.watch();

    // Kill the server the leader's session is on, and change the config meanwhile.
    let victim = sa.client().connected_host().expect("connected").port;
    kill(victim);
    writer
        .set(&"during-failover".to_string(), None)
        .await
        .unwrap();

    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let ev = tokio::time::timeout_at(deadline, futures::StreamExt::next(&mut updates))
            .await
            .expect("config change arrives")
            .expect("stream open");
        if matches!(&ev, ConfigEvent::Changed(v) if v.value == "during-failover") {
            break;
        }
    }
    // The config change can reach the observer before the leader's session has even seen
    // its server go away; what matters is that it moves to a survivor.
    until("the leader's session moves off the killed member", || {
        sa.client()
            .connected_host()
            .is_some_and(|h| h.port != victim)
    })
    .await;
    // Same session: leadership and the lock were never lost.
    assert_eq!(sa.epoch().generation, 0, "leader's session survived");
    a.wait_leader(WAIT).await.unwrap();
    assert!(!b.is_leader());
    assert!(lock.is_held());
    assert_eq!(a.contenders().await.unwrap(), ["a", "b"]);
    // Every instance is still registered (each session failed over).
    until("all 5 instances still registered", || {
        cache.instances().len() == 5
    })
    .await;
    while let Ok(Some(ev)) =
        tokio::time::timeout(Duration::from_millis(100), discovery.recv()).await
    {
        assert!(
            !matches!(ev, DiscoveryEvent::Down(_)),
            "no instance went down: {ev:?}"
        );
    }

    // Leadership still moves correctly afterwards.
    let mut bev = b.events();
    a.close().await.unwrap();
    recv_until(&mut bev, "b elected", |e| {
        *e == zk_recipes::election::Leadership::Elected
    })
    .await;
    lock.release().await.unwrap();
    b.close().await.unwrap();
    for (s, r) in servers {
        r.unregister().await.unwrap();
        s.close().await.unwrap();
    }
    sa.close().await.unwrap();
    sb.close().await.unwrap();
    observer.close().await.unwrap();
}
