//! Service registration + discovery with least-loaded routing, all in one process:
//! four TCP "servers" of different speeds register under `/services/echo` and publish
//! their number of in-flight requests; three clients discover them through a cache and
//! send each request to the least-loaded instance. Early on, the fastest server is taken
//! out of rotation for a while (still registered: drained, as for maintenance) and put
//! back; halfway through, one server crashes (its session is closed) and the clients stop
//! routing to it.
//!
//! `cargo run -p examples --example service_discovery [-- --hosts h:p,...]`

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use zk_recipes::balancing::{LeastLoaded, LoadPublisher, ServiceProvider};
use zk_recipes::discovery::{
    DiscoveryEvent, Registration, ServiceCache, ServiceInstance, ServiceRegistry,
};
use zk_recipes::Session;

type Tally = Arc<Mutex<BTreeMap<String, u32>>>;

/// One echo server: registers itself, publishes its in-flight count, answers slowly.
async fn server(
    hosts: String,
    id: String,
    service_ms: u64,
) -> Result<(Session, LoadPublisher, Arc<Registration>), Box<dyn std::error::Error>> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let session = Session::connect(&hosts).await?;
    let registration = ServiceRegistry::new(&session, "/services")
        .register(
            ServiceInstance::new("echo", &id, "127.0.0.1", port)
                .with_payload(serde_json::json!({ "service_ms": service_ms })),
        )
        .await?;
    let registration = Arc::new(registration);
    let publisher = LoadPublisher::start(
        registration.clone(),
        0,
        Duration::from_millis(20),  // at most 50 load writes per second
        Duration::from_millis(500), // heartbeat even when the load is unchanged
    );
    let tracker = publisher.handle();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let tracker = tracker.clone();
            let id = id.clone();
            tokio::spawn(async move {
                let _busy = tracker.track();
                let (r, mut w) = sock.into_split();
                let mut line = String::new();
                if BufReader::new(r).read_line(&mut line).await.is_ok() {
                    tokio::time::sleep(Duration::from_millis(service_ms)).await;
                    let _ = w.write_all(format!("{id}\n").as_bytes()).await;
                }
            });
        }
    });
    Ok((session, publisher, registration))
}

/// One client: picks the least-loaded instance for every request.
async fn client(provider: Arc<ServiceProvider>, requests: u32, tally: Tally) {
    let mut tasks = Vec::new();
    for _ in 0..requests {
        let Some(instance) = provider.pick() else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let tally = tally.clone();
        tasks.push(tokio::spawn(async move {
            let Ok(mut sock) = TcpStream::connect(instance.endpoint()).await else {
                return;
            };
            if sock.write_all(b"ping\n").await.is_err() {
                return;
            }
            let mut answer = String::new();
            if BufReader::new(sock).read_line(&mut answer).await.is_ok() && !answer.is_empty() {
                *tally
                    .lock()
                    .unwrap()
                    .entry(answer.trim().to_owned())
                    .or_default() += 1;
            }
        }));
        tokio::time::sleep(Duration::from_millis(4)).await;
    }
    for t in tasks {
        let _ = t.await;
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let target = examples::target().await?;
    let hosts = target.hosts.clone();

    // Servers: s1 is fast, s4 slow.
    let mut servers = Vec::new();
    for (id, ms) in [("s1", 10), ("s2", 20), ("s3", 40), ("s4", 80)] {
        servers.push((id, server(hosts.clone(), id.to_owned(), ms).await?));
        println!("server {id} up (service time {ms} ms)");
    }

    // Clients share one session; each has its own cache and balancer.
    let session = Session::connect(&hosts).await?;
    let registry = ServiceRegistry::new(&session, "/services");
    let watch = ServiceCache::start(&registry, "echo").await?;
    // The current instances first, then every change: no gap between the two.
    let mut events = watch.stream();
    tokio::spawn(async move {
        let mut enabled = BTreeMap::new();
        while let Some(ev) = events.next().await {
            match ev {
                DiscoveryEvent::Up(i) => {
                    println!("  [discovery] up   {} {}", i.id, i.endpoint());
                    enabled.insert(i.id, i.enabled);
                }
                DiscoveryEvent::Initialized => println!("  [discovery] initial set complete"),
                DiscoveryEvent::Changed(i) => {
                    if enabled.insert(i.id.clone(), i.enabled) != Some(i.enabled) {
                        let what = if i.enabled {
                            "back in rotation"
                        } else {
                            "out of rotation"
                        };
                        println!("  [discovery] {} {what}", i.id);
                    }
                }
                DiscoveryEvent::Down(i) => println!("  [discovery] down {}", i.id),
                DiscoveryEvent::Session(_) => {}
            }
        }
    });
    let tally: Tally = Arc::default();
    let mut clients = Vec::new();
    for _ in 0..3 {
        let cache = ServiceCache::start(&registry, "echo").await?;
        let provider = Arc::new(ServiceProvider::new(
            cache,
            LeastLoaded::new(Duration::from_secs(2)),
        ));
        clients.push(tokio::spawn(client(provider, 300, tally.clone())));
    }

    // Drain s1 for a while: registered, but no client picks it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let s1 = servers[0].1 .2.clone();
    s1.set_enabled(false).await?;
    println!("server s1 drained (out of rotation)");
    tokio::time::sleep(Duration::from_millis(300)).await;
    s1.set_enabled(true).await?;
    println!("server s1 back in rotation");

    // Crash s2 halfway: its ephemeral registration disappears with its session.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (_, (s2_session, _s2_pub, _)) = servers.remove(1);
    s2_session.close().await?;
    println!("server s2 crashed");

    for c in clients {
        c.await?;
    }
    println!("requests served per server (faster servers carry more):");
    for (id, n) in tally.lock().unwrap().iter() {
        println!("  {id}: {n}");
    }
    for (_, (s, p, _)) in servers {
        drop(p);
        s.close().await?;
    }
    session.close().await?;
    target.shutdown().await;
    Ok(())
}
