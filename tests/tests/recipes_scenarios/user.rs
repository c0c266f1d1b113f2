//! The five user recipes: naming, config watch, membership, discovery, balancing.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tests::proxy::Proxy;
use zk_recipes::balancing::{LeastLoaded, LoadPublisher, Random, RoundRobin, ServiceProvider};
use zk_recipes::config::{Config, ConfigEvent, Json};
use zk_recipes::discovery::{DiscoveryEvent, ServiceCache, ServiceInstance, ServiceRegistry};
use zk_recipes::ephemeral::EphemeralEvent;
use zk_recipes::membership::{Group, MembershipEvent};
use zk_recipes::naming::Names;
use zk_recipes::SessionEvent;

use super::{addr, expire, recv_until, session, until, until_async, WAIT};

/// Bind, rebind, resolve, list, unique names; an ephemeral binding survives expiry.
pub async fn naming(hosts: &str) {
    let s = session(hosts, 4000).await;
    let names = Names::new(&s, "/naming/app");
    names.bind("db", b"10.0.0.1:5432").await.unwrap();
    assert_eq!(
        names.resolve("db").await.unwrap().as_deref(),
        Some(&b"10.0.0.1:5432"[..])
    );
    names.bind("db", b"10.0.0.2:5432").await.unwrap();
    assert_eq!(
        names.resolve("db").await.unwrap().as_deref(),
        Some(&b"10.0.0.2:5432"[..])
    );
    assert_eq!(names.resolve("nope").await.unwrap(), None);
    let u1 = names.unique("job-", b"a").await.unwrap();
    let u2 = names.unique("job-", b"b").await.unwrap();
    assert!(
        u1.starts_with("job-") && u2.starts_with("job-") && u1 < u2,
        "{u1} {u2}"
    );
    assert_eq!(
        names.resolve(&u2).await.unwrap().as_deref(),
        Some(&b"b"[..])
    );
    assert!(names.bind("a/b", b"").await.is_err());

    let eph = names.bind_ephemeral("endpoint", b"h:1").await.unwrap();
    let listed = names.list().await.unwrap();
    assert_eq!(listed, vec!["db".to_owned(), "endpoint".into(), u1, u2]);

    let mut ev = eph.events();
    let old_id = s.client().session_id();
    expire(&s.client(), hosts).await;
    recv_until(&mut ev, "re-created after expiry", |e| {
        *e == EphemeralEvent::Recreated
    })
    .await;
    let c = s.client();
    assert_ne!(c.session_id(), old_id);
    let stat = c
        .exists("/naming/app/endpoint", false)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stat.ephemeral_owner, c.session_id());
    assert_eq!(
        names.resolve("endpoint").await.unwrap().as_deref(),
        Some(&b"h:1"[..])
    );
    eph.delete().await.unwrap();
    assert_eq!(names.resolve("endpoint").await.unwrap(), None);
    assert!(names.unbind("db").await.unwrap());
    assert!(!names.unbind("db").await.unwrap());
    s.close().await.unwrap();
}

/// A config changed 1,000 times quickly while the watcher's connection is dropped again
/// and again and its session expires once: the watcher sees strictly increasing versions,
/// never one twice, and ends on the last value.
pub async fn config_watch(hosts: &str) {
    let writer_s = session(hosts, 4000).await;
    let proxy = Proxy::start(addr(hosts)).await.unwrap();
    let watcher_hosts = proxy.addr().to_string();
    let watcher_s = session(&watcher_hosts, 2000).await;

    let writer: Config<String> = Config::new(&writer_s, "/cfg/app/limit");
    let reader: Config<String> = Config::new(&watcher_s, "/cfg/app/limit");
    let mut stream = reader.watch();
    // Missing at first.
    let first = tokio::time::timeout(WAIT, stream.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first, ConfigEvent::Absent);
    writer.set(&"init".to_string(), None).await.unwrap();

    let collector = tokio::spawn(async move {
        let mut values: Vec<(i64, String)> = Vec::new();
        let mut sessions = Vec::new();
        while let Some(ev) = stream.next().await {
            match ev {
                ConfigEvent::Changed(v) => {
                    let done = v.value == "999";
                    values.push((v.mzxid, v.value));
                    if done {
                        break;
                    }
                }
                ConfigEvent::Session(s) => sessions.push(s),
                other => panic!("unexpected {other:?}"),
            }
        }
        (values, sessions)
    });

    for i in 0..1000u32 {
        writer.set(&i.to_string(), None).await.unwrap();
        if i % 150 == 75 {
            proxy.drop_connections();
        }
        if i == 500 {
            expire(&watcher_s.client(), hosts).await;
        }
    }
    let (values, sessions) = tokio::time::timeout(WAIT, collector)
        .await
        .expect("watcher reaches the last value")
        .unwrap();
    assert_eq!(values.last().map(|v| v.1.as_str()), Some("999"));
    assert!(
        values.windows(2).all(|w| w[0].0 < w[1].0),
        "versions strictly increase, none twice"
    );
    let numbers: Vec<i64> = values
        .iter()
        .filter_map(|v| v.1.parse::<i64>().ok())
        .collect();
    assert!(numbers.windows(2).all(|w| w[0] < w[1]));
    assert!(sessions.contains(&SessionEvent::Suspended), "{sessions:?}");
    assert!(sessions.contains(&SessionEvent::Expired), "{sessions:?}");
    assert!(
        sessions
            .iter()
            .any(|s| matches!(s, SessionEvent::NewSession { .. })),
        "{sessions:?}"
    );

    // Typed JSON values, conditional writes.
    let j: Config<Json<serde_json::Value>> = Config::new(&writer_s, "/cfg/app/json");
    let v0 = j
        .set(&Json(serde_json::json!({"replicas": 3})), None)
        .await
        .unwrap();
    let got = j.get().await.unwrap().unwrap();
    assert_eq!(got.value.0["replicas"], 3);
    assert_eq!(got.version, v0);
    j.set(&Json(serde_json::json!({"replicas": 4})), Some(got.version))
        .await
        .unwrap();
    let stale = j
        .set(&Json(serde_json::json!({"replicas": 5})), Some(got.version))
        .await;
    assert!(stale.is_err(), "stale conditional write must fail");
    // Undecodable data is reported, not fatal.
    writer_s
        .client()
        .set_data("/cfg/app/json", b"{oops", None)
        .await
        .unwrap();
    assert!(j.get().await.is_err());

    watcher_s.close().await.unwrap();
    writer_s.close().await.unwrap();
}

/// Join, update, leave, expiry (leave + re-join), and the member stream.
pub async fn membership(hosts: &str) {
    let observer = session(hosts, 4000).await;
    let a = session(hosts, 4000).await;
    let b = session(hosts, 4000).await;
    let group = Group::new(&observer, "/groups/workers");
    let watch = group.watch().await.unwrap();
    let mut events = watch.events();
    recv_until(&mut events, "initialized", |e| {
        *e == MembershipEvent::Initialized
    })
    .await;

    let ma = Group::new(&a, "/groups/workers")
        .join("a", b"cpu=4")
        .await
        .unwrap();
    let mb = Group::new(&b, "/groups/workers")
        .join("b", b"cpu=8")
        .await
        .unwrap();
    assert!(Group::new(&observer, "/groups/workers")
        .join("a", b"dup")
        .await
        .is_err());
    for id in ["a", "b"] {
        recv_until(
            &mut events,
            "join",
            |e| matches!(e, MembershipEvent::Joined(m) if m.id == id),
        )
        .await;
    }
    let ids: Vec<String> = group
        .members()
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(ids, ["a", "b"]);
    assert_eq!(watch.members().len(), 2);

    ma.update(b"cpu=16").await.unwrap();
    let up = recv_until(&mut events, "update", |e| {
        matches!(e, MembershipEvent::Updated(_))
    })
    .await;
    assert!(matches!(up, MembershipEvent::Updated(m) if m.id == "a" && &m.data[..] == b"cpu=16"));

    // b's session expires: it leaves, then re-joins on its new session with its data.
    let mut bev = mb.events();
    expire(&b.client(), hosts).await;
    recv_until(
        &mut events,
        "b left",
        |e| matches!(e, MembershipEvent::Left(m) if m.id == "b"),
    )
    .await;
    let back = recv_until(
        &mut events,
        "b re-joined",
        |e| matches!(e, MembershipEvent::Joined(m) if m.id == "b"),
    )
    .await;
    assert!(matches!(back, MembershipEvent::Joined(m) if &m.data[..] == b"cpu=8"));
    recv_until(&mut bev, "b told of expiry", |e| {
        *e == EphemeralEvent::Session(SessionEvent::Expired)
    })
    .await;

    ma.leave().await.unwrap();
    recv_until(
        &mut events,
        "a left",
        |e| matches!(e, MembershipEvent::Left(m) if m.id == "a"),
    )
    .await;
    until("one member left", || watch.members().len() == 1).await;
    drop(mb);
    b.close().await.unwrap();
    a.close().await.unwrap();
    observer.close().await.unwrap();
}

/// 100 instances registered, 10 of them crash (their connections go silent and their
/// sessions expire on the server): the cache converges to the 90 live ones with exactly
/// 10 down events. A registration whose session expires comes back by itself.
pub async fn discovery(hosts: &str) {
    let observer = session(hosts, 4000).await;
    let registry = ServiceRegistry::new(&observer, "/services");
    let cache = ServiceCache::start(&registry, "api").await.unwrap();
    let mut events = cache.events();

    let proxy = Proxy::start(addr(hosts)).await.unwrap();
    let victim_hosts = proxy.addr().to_string();
    let mut servers = Vec::new();
    for i in 0..100u16 {
        let via_proxy = i % 10 == 3;
        let s = if via_proxy {
            session(&victim_hosts, 800).await
        } else {
            session(hosts, 6000).await
        };
        let reg = ServiceRegistry::new(&s, "/services")
            .register(
                ServiceInstance::new("api", &format!("i{i:03}"), "10.0.0.1", 9000 + i)
                    .with_payload(serde_json::json!({"zone": i % 3})),
            )
            .await
            .unwrap();
        servers.push((s, reg, via_proxy));
    }
    until("100 instances cached", || cache.instances().len() == 100).await;
    assert_eq!(registry.instances("api").await.unwrap().len(), 100);
    assert_eq!(registry.service_names().await.unwrap(), ["api"]);
    let inst = cache
        .instances()
        .into_iter()
        .find(|i| i.id == "i042")
        .unwrap();
    assert_eq!(inst.endpoint(), "10.0.0.1:9042");
    assert_eq!(inst.payload, Some(serde_json::json!({"zone": 0})));

    // Crash 10 servers: a silent partition, so only session expiry removes them.
    proxy.set_blackhole(true);
    let mut down = BTreeSet::new();
    while down.len() < 10 {
        let ev = recv_until(&mut events, "down events", |e| {
            matches!(e, DiscoveryEvent::Down(_))
        })
        .await;
        if let DiscoveryEvent::Down(i) = ev {
            down.insert(i.id);
        }
    }
    let expected: BTreeSet<String> = (0..100)
        .filter(|i| i % 10 == 3)
        .map(|i| format!("i{i:03}"))
        .collect();
    assert_eq!(down, expected);
    until("90 instances cached", || cache.instances().len() == 90).await;
    assert!(cache.instances().iter().all(|i| !expected.contains(&i.id)));

    // A live server's session expires: down, then up again by itself.
    let (s0, _, _) = &servers[0];
    expire(&s0.client(), hosts).await;
    recv_until(
        &mut events,
        "i000 down",
        |e| matches!(e, DiscoveryEvent::Down(i) if i.id == "i000"),
    )
    .await;
    recv_until(
        &mut events,
        "i000 up again",
        |e| matches!(e, DiscoveryEvent::Up(i) if i.id == "i000"),
    )
    .await;
    until("back to 90", || cache.instances().len() == 90).await;

    // Clean unregistration.
    let (s1, r1, _) = servers.remove(1);
    r1.unregister().await.unwrap();
    recv_until(
        &mut events,
        "i001 down",
        |e| matches!(e, DiscoveryEvent::Down(i) if i.id == "i001"),
    )
    .await;
    s1.close().await.unwrap();
    for (s, reg, victim) in servers {
        drop(reg);
        if !victim {
            s.close().await.unwrap();
        }
    }
    observer.close().await.unwrap();
}

/// Published loads drive least-loaded picks; stale reports lose to fresh ones; own picks
/// count until the next report; round-robin and random cover the live instances.
pub async fn balancing(hosts: &str) {
    let s = session(hosts, 4000).await;
    let registry = ServiceRegistry::new(&s, "/services");
    let mut regs = Vec::new();
    for id in ["a", "b", "c"] {
        let r = registry
            .register(ServiceInstance::new("calc", id, "127.0.0.1", 1))
            .await
            .unwrap();
        regs.push(Arc::new(r));
    }
    let heartbeat = Duration::from_millis(150);
    let pubs: Vec<LoadPublisher> = regs
        .iter()
        .zip([5u64, 1, 3])
        .map(|(r, l)| LoadPublisher::start(r.clone(), l, Duration::from_millis(20), heartbeat))
        .collect();

    let loaded = |cache: &ServiceCache, want: [u64; 3]| {
        let got: Vec<Option<u64>> = cache
            .instances()
            .iter()
            .map(|i| i.load.as_ref().map(|l| l.value))
            .collect();
        got == want.iter().map(|v| Some(*v)).collect::<Vec<_>>()
    };
    let cache = ServiceCache::start(&registry, "calc").await.unwrap();
    until("loads 5,1,3 visible", || loaded(&cache, [5, 1, 3])).await;
    let exact = ServiceProvider::new(
        cache,
        LeastLoaded::seeded(Duration::from_secs(5), 7).count_own_picks(false),
    );
    for _ in 0..20 {
        assert_eq!(exact.pick().unwrap().id, "b");
    }
    // Loads move: the picks follow.
    pubs[0].set(0);
    pubs[1].set(9);
    until("loads 0,9,3 visible", || loaded(exact.cache(), [0, 9, 3])).await;
    assert_eq!(exact.pick().unwrap().id, "a");
    // A tie is broken at random: both tied instances get picked.
    pubs[2].set(0);
    until("loads 0,9,0 visible", || loaded(exact.cache(), [0, 9, 0])).await;
    let picked: BTreeSet<String> = (0..40).map(|_| exact.pick().unwrap().id).collect();
    assert_eq!(picked, BTreeSet::from(["a".to_owned(), "c".to_owned()]));

    // Own picks count as load until the next report: loads a=0, c=0 -> a burst spreads.
    let counting = ServiceProvider::new(
        ServiceCache::start(&registry, "calc").await.unwrap(),
        LeastLoaded::seeded(Duration::from_secs(5), 9),
    );
    pubs[0].set(2);
    pubs[2].set(0);
    until("loads 2,9,0 visible", || {
        loaded(counting.cache(), [2, 9, 0])
    })
    .await;
    // Stop reports changing the node versions mid-burst.
    drop(pubs);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let burst: Vec<String> = (0..6).map(|_| counting.pick().unwrap().id).collect();
    let c_count = burst.iter().filter(|i| *i == "c").count();
    let a_count = burst.iter().filter(|i| *i == "a").count();
    // c starts 2 lower: it takes the first two, then they alternate (b at 9 never).
    assert_eq!((a_count, c_count), (2, 4), "{burst:?}");

    // Stale reports: only b keeps heartbeating; a and c (lower loads) go stale.
    let hb = LoadPublisher::start(regs[1].clone(), 9, Duration::from_millis(20), heartbeat);
    let stale_aware = ServiceProvider::new(
        ServiceCache::start(&registry, "calc").await.unwrap(),
        LeastLoaded::seeded(Duration::from_millis(600), 3).count_own_picks(false),
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    for _ in 0..10 {
        assert_eq!(stale_aware.pick().unwrap().id, "b", "fresh beats stale");
    }
    drop(hb);

    // Round robin cycles; random stays within the live set.
    let rr = ServiceProvider::new(
        ServiceCache::start(&registry, "calc").await.unwrap(),
        RoundRobin::default(),
    );
    let cycle: Vec<String> = (0..6).map(|_| rr.pick().unwrap().id).collect();
    assert_eq!(cycle, ["a", "b", "c", "a", "b", "c"]);
    let rnd = ServiceProvider::new(
        ServiceCache::start(&registry, "calc").await.unwrap(),
        Random::seeded(1),
    );
    let seen: BTreeSet<String> = (0..60).map(|_| rnd.pick().unwrap().id).collect();
    assert_eq!(seen.len(), 3);
    // A server going away is never picked again.
    let gone = regs.remove(0);
    Arc::try_unwrap(gone).unwrap().unregister().await.unwrap();
    until("a gone", || rnd.cache().instances().len() == 2).await;
    assert!((0..30).all(|_| rnd.pick().unwrap().id != "a"));
    drop(regs);
    s.close().await.unwrap();
}

/// A consumer's view built only from [`ServiceCache::stream`] events; panics on an event
/// that does not fit the view (an `Up` of a listed id, a `Changed` or `Down` of an unlisted
/// one), i.e. on a doubled or missed event.
#[derive(Default, Debug)]
struct StreamView {
    view: std::collections::BTreeMap<String, ServiceInstance>,
    initialized: bool,
}

impl StreamView {
    fn apply(&mut self, ev: DiscoveryEvent) {
        match ev {
            DiscoveryEvent::Up(i) => {
                let id = i.id.clone();
                assert!(
                    self.view.insert(id.clone(), i).is_none(),
                    "Up of {id} twice"
                );
            }
            DiscoveryEvent::Changed(i) => {
                let id = i.id.clone();
                assert!(
                    self.view.insert(id.clone(), i).is_some(),
                    "Changed of unknown {id}"
                );
            }
            DiscoveryEvent::Down(i) => {
                assert!(
                    self.view.remove(&i.id).is_some(),
                    "Down of unknown {}",
                    i.id
                );
            }
            DiscoveryEvent::Initialized => {
                assert!(!self.initialized, "Initialized twice");
                self.initialized = true;
            }
            DiscoveryEvent::Session(_) => {}
        }
    }

    /// Applies what is queued on `stream` until the view equals `want` (panics after WAIT).
    async fn catch_up(
        &mut self,
        stream: &mut zk_recipes::EventStream<DiscoveryEvent>,
        want: &std::collections::BTreeMap<String, ServiceInstance>,
    ) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !(self.initialized && &self.view == want) {
            let ev = tokio::time::timeout_at(deadline, stream.recv())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "view never matched: have {:?}, want {:?}",
                        self.view.keys().collect::<Vec<_>>(),
                        want.keys().collect::<Vec<_>>()
                    )
                })
                .expect("stream open");
            self.apply(ev);
        }
    }
}

fn by_id(v: Vec<ServiceInstance>) -> std::collections::BTreeMap<String, ServiceInstance> {
    v.into_iter().map(|i| (i.id.clone(), i)).collect()
}

/// `ServiceCache::stream`: the current set first, then changes in order; and, with 100
/// instances registering and leaving while consumers subscribe, every consumer's view
/// equals the registry at each quiescent point, with no event missed or doubled.
pub async fn discovery_stream(hosts: &str) {
    let observer = session(hosts, 4000).await;
    let servers = session(hosts, 4000).await;
    let registry = ServiceRegistry::new(&observer, "/services");
    let server_side = ServiceRegistry::new(&servers, "/services");
    let inst = |i: u16| ServiceInstance::new("feed", &format!("f{i:03}"), "10.0.0.2", 7000 + i);

    // Registered before the cache exists: delivered first, sorted, then Initialized.
    let mut regs = std::collections::BTreeMap::new();
    for i in [3u16, 1, 2] {
        regs.insert(i, server_side.register(inst(i)).await.unwrap());
    }
    let cache = ServiceCache::start(&registry, "feed").await.unwrap();
    let mut stream = cache.stream();
    let mut first = Vec::new();
    loop {
        let ev = recv_until(&mut stream, "initial set", |_| true).await;
        if ev == DiscoveryEvent::Initialized {
            break;
        }
        match ev {
            DiscoveryEvent::Up(i) => first.push(i.id),
            other => panic!("before Initialized: {other:?}"),
        }
    }
    assert_eq!(first, ["f001", "f002", "f003"]);

    // Changes after, in order: up, changed, down.
    regs.insert(4, server_side.register(inst(4)).await.unwrap());
    regs[&1].report_load(7).await.unwrap();
    regs.remove(&2).unwrap().unregister().await.unwrap();
    let mut changes = Vec::new();
    while changes.len() < 3 {
        match recv_until(&mut stream, "changes", |_| true).await {
            DiscoveryEvent::Up(i) => changes.push(format!("up {}", i.id)),
            DiscoveryEvent::Changed(i) => {
                changes.push(format!("changed {} {:?}", i.id, i.load.map(|l| l.value)))
            }
            DiscoveryEvent::Down(i) => changes.push(format!("down {}", i.id)),
            DiscoveryEvent::Session(_) => {}
            DiscoveryEvent::Initialized => panic!("Initialized twice"),
        }
    }
    assert_eq!(changes, ["up f004", "changed f001 Some(7)", "down f002"]);

    // The race: consumers subscribe while 100 instances register and leave. Each round
    // churns, subscribes in the middle of it, then quiesces and compares every view with
    // the registry as read from the server.
    let mut consumers: Vec<(StreamView, zk_recipes::EventStream<DiscoveryEvent>)> = Vec::new();
    let mut kept = Vec::new();
    for round in 0..3u16 {
        let churn = {
            let server_side = server_side.clone();
            tokio::spawn(async move {
                let mut live = Vec::new();
                for k in 0..100u16 {
                    let id = 100 + round * 100 + k;
                    live.push(server_side.register(inst(id)).await.unwrap());
                    // Every third step one leaves (oldest first), the rest stay a while.
                    if k % 3 == 2 {
                        live.remove(0).unregister().await.unwrap();
                    }
                }
                // Leave with half of them still registered for the next round's start.
                let keep = live.split_off(live.len() / 2);
                for r in live {
                    r.unregister().await.unwrap();
                }
                keep
            })
        };
        // Subscribe repeatedly while the churn runs.
        while !churn.is_finished() {
            consumers.push((StreamView::default(), cache.stream()));
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
        kept.extend(churn.await.unwrap());
        let truth = by_id(registry.instances("feed").await.unwrap());
        assert_eq!(truth.len(), 3 + kept.len());
        until("cache matches the registry", || {
            by_id(cache.instances()) == truth
        })
        .await;
        for (view, stream) in consumers.iter_mut() {
            view.catch_up(stream, &truth).await;
        }
        // Nothing more is queued (no doubled event waiting behind the match).
        tokio::time::sleep(Duration::from_millis(200)).await;
        for (view, stream) in consumers.iter_mut() {
            while let Ok(Some(ev)) =
                tokio::time::timeout(Duration::from_millis(1), stream.recv()).await
            {
                view.apply(ev);
            }
            assert_eq!(view.view, truth);
        }
        eprintln!(
            "round {round}: {} consumers agree on {} instances",
            consumers.len(),
            truth.len()
        );
    }
    assert!(
        consumers.len() >= 6,
        "only {} subscriptions raced",
        consumers.len()
    );
}

/// Out of rotation without unregistering (CURATOR-38/275): a disabled instance stays
/// registered and listed, every picker skips it, it comes back when enabled, and stays
/// disabled across its session's expiry. Health-driven: a failing check takes an
/// instance out after `fall` failures and back after `rise` passes; an operator's
/// disable wins over a passing check.
pub async fn rotation(hosts: &str) {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use zk_recipes::discovery::{HealthMonitor, HealthOptions};

    let observer = session(hosts, 4000).await;
    let registry = ServiceRegistry::new(&observer, "/services");
    let mut sessions = Vec::new();
    let mut regs = Vec::new();
    for (id, load) in [("a", 5u64), ("b", 0), ("c", 9)] {
        let s = session(hosts, 4000).await;
        let r = ServiceRegistry::new(&s, "/services")
            .register(ServiceInstance::new("rot", id, "10.0.0.3", 80))
            .await
            .unwrap();
        r.report_load(load).await.unwrap();
        sessions.push(s);
        regs.push(Arc::new(r));
    }
    let enabled_ids = |cache: &ServiceCache| -> Vec<String> {
        cache.enabled().into_iter().map(|i| i.id).collect()
    };
    let picks = |p: &ServiceProvider| -> BTreeSet<String> {
        (0..60).filter_map(|_| p.pick()).map(|i| i.id).collect()
    };
    let providers = [
        ServiceProvider::new(
            ServiceCache::start(&registry, "rot").await.unwrap(),
            RoundRobin::default(),
        ),
        ServiceProvider::new(
            ServiceCache::start(&registry, "rot").await.unwrap(),
            Random::seeded(9),
        ),
        ServiceProvider::new(
            ServiceCache::start(&registry, "rot").await.unwrap(),
            LeastLoaded::seeded(Duration::from_secs(30), 1).count_own_picks(false),
        ),
    ];
    for p in &providers {
        until("all three cached", || p.cache().instances().len() == 3).await;
    }

    // Take b (the least loaded) out by hand.
    regs[1].set_enabled(false).await.unwrap();
    assert!(!regs[1].is_enabled());
    for p in &providers {
        until("b out of rotation", || enabled_ids(p.cache()) == ["a", "c"]).await;
        assert_eq!(p.cache().instances().len(), 3, "b stays listed");
        let got = picks(p);
        assert!(!got.contains("b"), "picked a disabled instance: {got:?}");
    }
    let listed = registry.instances("rot").await.unwrap();
    let b = listed
        .iter()
        .find(|i| i.id == "b")
        .expect("b still registered");
    assert!(!b.enabled);
    assert_eq!(b.load.as_ref().map(|l| l.value), Some(0), "load kept");
    // Least-loaded now goes to a (5) rather than c (9).
    assert_eq!(picks(&providers[2]), BTreeSet::from(["a".to_owned()]));

    // Its session expires: the re-created node is still out of rotation.
    expire(&sessions[1].client(), hosts).await;
    until_async("b re-registered on a new session", || async {
        registry
            .instances("rot")
            .await
            .unwrap()
            .iter()
            .any(|i| i.id == "b" && !i.enabled)
            && sessions[1].client().session_id() != 0
            && sessions[1].client().state().is_connected()
    })
    .await;
    regs[1].set_enabled(true).await.unwrap();
    for p in &providers[..2] {
        until("b back", || enabled_ids(p.cache()) == ["a", "b", "c"]).await;
        assert!(picks(p).contains("b"));
    }

    // Health-driven: c's check fails, c leaves after 2 failures; passes, back after 2.
    let ok = Arc::new(AtomicBool::new(true));
    let checks = Arc::new(AtomicUsize::new(0));
    let monitor = {
        let (ok, checks) = (ok.clone(), checks.clone());
        HealthMonitor::start(
            regs[2].clone(),
            HealthOptions {
                interval: Duration::from_millis(50),
                timeout: Duration::from_millis(500),
                fall: 2,
                rise: 2,
            },
            move || {
                let (ok, checks) = (ok.clone(), checks.clone());
                async move {
                    checks.fetch_add(1, Ordering::SeqCst);
                    ok.load(Ordering::SeqCst)
                }
            },
        )
    };
    until("checks run", || checks.load(Ordering::SeqCst) >= 3).await;
    assert!(monitor.is_healthy());
    assert_eq!(enabled_ids(providers[0].cache()), ["a", "b", "c"]);
    ok.store(false, Ordering::SeqCst);
    until("c unhealthy", || !monitor.is_healthy()).await;
    for p in &providers {
        until("c out", || enabled_ids(p.cache()) == ["a", "b"]).await;
        assert!(!picks(p).contains("c"));
    }
    assert_eq!(p_listed(&registry, "c").await, Some(false));
    ok.store(true, Ordering::SeqCst);
    until("c healthy", || monitor.is_healthy()).await;
    until("c back", || {
        enabled_ids(providers[0].cache()) == ["a", "b", "c"]
    })
    .await;
    // The operator's disable wins over a passing check.
    regs[2].set_enabled(false).await.unwrap();
    let seen = checks.load(Ordering::SeqCst);
    until("more checks", || checks.load(Ordering::SeqCst) >= seen + 4).await;
    assert!(monitor.is_healthy());
    assert_eq!(p_listed(&registry, "c").await, Some(false));
    assert_eq!(
        enabled_ids(providers[0].cache())
            .iter()
            .filter(|i| *i == "c")
            .count(),
        0
    );
    drop(monitor);
}

/// `enabled` of instance `id` of service "rot" as read from the server.
async fn p_listed(registry: &ServiceRegistry, id: &str) -> Option<bool> {
    registry
        .instances("rot")
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.id == id)
        .map(|i| i.enabled)
}
