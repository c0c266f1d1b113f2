//! The AdminServer and the Prometheus `/metrics` endpoint, against Apache ZooKeeper 3.8's
//! run side by side: every command's JSON has Apache's keys and value types (recursively)
//! for a standalone server and for an ensemble's leader and follower, under the same
//! client load; the command list and aliases match; `/metrics` parses as Prometheus text
//! with Apache's names and types and moves with the load; both endpoints stay closed when
//! disabled by zoo.cfg or `-D`; a taken port is handled as Apache handles it.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use tests::apache::{ApacheEnsemble, ApacheServer};
use tests::http::{self, HttpResponse};
use tests::ports::{free_port, free_ports};
use zk_client::{Acl, Client, CreateMode};
use zk_server::admin::commands::{self, COMMANDS};
use zk_server::admin::four_letter::mntr_omits;
use zk_server::host::member::from_config;
use zk_server::{Server, ServerConfig, ServerError};

/// The shape of a JSON value: its keys and value types, recursively. Objects whose keys
/// are data (session ids, paths, server ids, expiry times) are maps: the shape of their
/// values, merged. Arrays: the merged shape of their elements.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Shape {
    Null,
    Bool,
    Int,
    Float,
    Str,
    Array(Option<Box<Shape>>),
    Map(Option<Box<Shape>>),
    Object(BTreeMap<String, Shape>),
    Mixed(BTreeSet<Shape>),
}

fn data_keys(m: &serde_json::Map<String, Value>) -> bool {
    !m.is_empty()
        && m.keys()
            .all(|k| k.starts_with('/') || (!k.is_empty() && k.bytes().all(|b| b.is_ascii_digit())))
}

fn merge(a: Shape, b: Shape) -> Shape {
    let both = |x: Option<Box<Shape>>, y: Option<Box<Shape>>| match (x, y) {
        (Some(x), Some(y)) => Some(Box::new(merge(*x, *y))),
        (x, y) => x.or(y),
    };
    match (a, b) {
        (Shape::Array(x), Shape::Array(y)) => Shape::Array(both(x, y)),
        (Shape::Map(x), Shape::Map(y)) => Shape::Map(both(x, y)),
        (Shape::Object(x), Shape::Object(y)) if x.keys().eq(y.keys()) => Shape::Object(
            x.into_iter()
                .zip(y)
                .map(|((k, a), (_, b))| (k, merge(a, b)))
                .collect(),
        ),
        (a, b) if a == b => a,
        (Shape::Mixed(mut s), b) | (b, Shape::Mixed(mut s)) => {
            s.insert(b);
            Shape::Mixed(s)
        }
        (a, b) => Shape::Mixed([a, b].into_iter().collect()),
    }
}

fn shape(v: &Value) -> Shape {
    match v {
        Value::Null => Shape::Null,
        Value::Bool(_) => Shape::Bool,
        Value::Number(n) if n.is_f64() => Shape::Float,
        Value::Number(_) => Shape::Int,
        Value::String(_) => Shape::Str,
        Value::Array(a) => Shape::Array(a.iter().map(shape).reduce(merge).map(Box::new)),
        Value::Object(m) if data_keys(m) => {
            Shape::Map(m.values().map(shape).reduce(merge).map(Box::new))
        }
        Value::Object(m) => Shape::Object(m.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
    }
}

/// Drops the top-level keys `keep` rejects.
fn without(v: &Value, keep: impl Fn(&str) -> bool) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| keep(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

async fn get(addr: SocketAddr, path: &str) -> HttpResponse {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || http::get(addr, &path))
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("GET {addr}: {e}"))
}

async fn command(addr: SocketAddr, name: &str) -> Value {
    let r = get(addr, &format!("/commands/{name}")).await;
    assert_eq!(r.status, 200, "{name}: {}", r.body);
    assert_eq!(r.header("content-type"), Some("application/json"), "{name}");
    r.json()
}

/// The same client activity on any server: a session with an ephemeral node, data,
/// child and exists watches, a write. The client must live while the server is compared.
async fn load(hosts: &str, tag: &str) -> Client {
    let c = tests::client::connect(hosts, Duration::from_secs(10)).await;
    let open = Acl::open_unsafe();
    match c.create("/app", b"x", &open, CreateMode::Persistent).await {
        Ok(_) | Err(zk_client::Error::NodeExists { .. }) => {}
        Err(e) => panic!("create /app: {e}"),
    }
    c.create(
        &format!("/app/eph-{tag}"),
        b"e",
        &open,
        CreateMode::Ephemeral,
    )
    .await
    .expect("ephemeral");
    c.get_data("/app", true).await.expect("get /app");
    c.exists("/nothere", true).await.expect("exists");
    c.get_children("/app", true).await.expect("children");
    c.set_data("/app", b"y", None).await.expect("set");
    c.get_data("/app", true).await.expect("get /app again");
    c
}

/// Every command of both servers, compared by shape. `situation` names the case in
/// failure messages.
async fn compare_all(situation: &str, apache: SocketAddr, ours: SocketAddr) {
    // The command list: the same names in the same order.
    let links = |body: &str| -> Vec<String> {
        body.lines()
            .filter_map(|l| l.split('>').nth(1))
            .filter_map(|l| l.split('<').next())
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let theirs_list = get(apache, "/commands").await;
    let our_list = get(ours, "/commands").await;
    assert_eq!(
        links(&our_list.body),
        links(&theirs_list.body),
        "{situation}"
    );
    assert_eq!(our_list.body, theirs_list.body, "{situation}: list page");

    let mut differences = Vec::new();
    for (names, _) in COMMANDS {
        let name = names[0];
        let (theirs, mine) = (command(apache, name).await, command(ours, name).await);
        // Aliases answer as the command they stand for, on both.
        for alias in &names[1..] {
            let (t, m) = (command(apache, alias).await, command(ours, alias).await);
            assert_eq!(
                t["command"],
                Value::from(name),
                "{situation}: Apache's {alias}"
            );
            assert_eq!(m["command"], t["command"], "{situation}: {alias}");
        }
        let (theirs, mine) = match name {
            "environment" => (without(&theirs, |k| !commands::jvm_only(k)), mine),
            "monitor" => (without(&theirs, |k| !mntr_omits(&format!("zk_{k}"))), mine),
            "system_properties" => {
                // Ours are the process's -D properties and what the OS says; Apache's
                // add the JVM's. Every one of ours that Apache has too is a string there.
                let t = theirs.as_object().unwrap();
                for (k, v) in mine.as_object().unwrap() {
                    if let Some(tv) = t.get(k) {
                        assert_eq!(shape(tv), shape(v), "{situation}: system property {k}");
                    }
                }
                for k in [
                    "os.name",
                    "os.arch",
                    "os.version",
                    "user.dir",
                    "user.home",
                    "user.name",
                ] {
                    assert!(
                        t.contains_key(k) && mine.get(k).is_some(),
                        "{situation}: {k}"
                    );
                }
                continue;
            }
            _ => (theirs, mine),
        };
        if shape(&theirs) != shape(&mine) {
            differences.push(format!(
                "{name}:\n  Apache: {theirs}\n  ours:   {mine}\n  Apache shape: {:?}\n  our shape:    {:?}",
                shape(&theirs),
                shape(&mine)
            ));
        }
    }
    // With a trace mask given, and an unknown command.
    for path in [
        "/commands/set_trace_mask?traceMask=306",
        "/commands/nope",
        "/commands/stmk?traceMask=x",
    ] {
        let (t, m) = (get(apache, path).await.json(), get(ours, path).await.json());
        assert_eq!(m, t, "{situation}: {path}");
    }
    assert!(
        differences.is_empty(),
        "{situation}: {} commands differ from Apache's:\n{}",
        differences.len(),
        differences.join("\n")
    );
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

/// A zoo.cfg for an in-process server of ours with the AdminServer on `admin_port`.
fn standalone_cfg(dir: &Path, client_port: u16, admin_port: u16, extra: &str) -> ServerConfig {
    let cfg = dir.join("zoo.cfg");
    write(
        &cfg,
        &format!(
            "tickTime=200\ndataDir={}\nclientPort={client_port}\nclientPortAddress=127.0.0.1\n\
             4lw.commands.whitelist=*\nadmin.serverPort={admin_port}\n\
             admin.serverAddress=127.0.0.1\n{extra}",
            dir.join("data").display()
        ),
    );
    ServerConfig::from_file(&cfg, &[]).expect("config")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_commands_match_apache() {
    let apache = tokio::task::spawn_blocking(|| ApacheServer::start_with_admin(&[], &[]))
        .await
        .unwrap()
        .expect("Apache with its AdminServer");
    let apache_admin = SocketAddr::from(([127, 0, 0, 1], apache.node.admin_port.unwrap()));

    let dir = tempfile::tempdir().unwrap();
    let (client_port, admin_port) = (free_port().unwrap(), free_port().unwrap());
    let cfg = standalone_cfg(dir.path(), client_port, admin_port, "");
    let ours = Server::start(cfg).await.expect("zk-server");
    let our_admin = ours.admin_addr().expect("AdminServer on by default");
    assert_eq!(our_admin.port(), admin_port);

    // Idle first, then under the same load.
    compare_all("standalone, idle", apache_admin, our_admin).await;
    let _theirs = load(&apache.connect_string(), "a").await;
    let _mine = load(&ours.connect_string(), "a").await;

    // Values, not only shapes: what the session did is there (before compare_all, which
    // runs the resets too).
    let dump = command(our_admin, "dump").await;
    let eph = dump["session_id_to_ephemeral_paths"].as_object().unwrap();
    assert_eq!(
        eph.values().next().unwrap(),
        &serde_json::json!(["/app/eph-a"])
    );
    let wchp = command(our_admin, "watches_by_path").await;
    assert!(wchp["path_to_session_ids"]["/app"].is_array(), "{wchp}");
    let stat = command(our_admin, "stats").await;
    assert_eq!(stat["server_stats"]["server_state"], "standalone");
    assert_eq!(stat["connections"].as_array().unwrap().len(), 1);
    let icfg = command(our_admin, "icfg").await;
    assert!(icfg["initial_configuration"]
        .as_str()
        .unwrap()
        .contains(&format!("admin.serverPort={admin_port}")));

    compare_all("standalone, one session", apache_admin, our_admin).await;

    // Resets and the trace mask act.
    assert!(stat["server_stats"]["packets_received"].as_i64().unwrap() > 0);
    command(our_admin, "srst").await;
    let after = command(our_admin, "srvr").await;
    assert_eq!(after["server_stats"]["packets_received"], 0, "{after}");
    let t = get(our_admin, "/commands/stmk?traceMask=4").await.json();
    assert_eq!(t["tracemask"], 4);
    assert_eq!(command(our_admin, "gtmk").await["tracemask"], 4);
    get(our_admin, "/commands/stmk?traceMask=306").await;

    // Not a command: 404, as Jetty; not a GET: refused.
    assert_eq!(get(our_admin, "/other").await.status, 404);
    let post =
        tokio::task::spawn_blocking(move || http::request(our_admin, "POST", "/commands/ruok"))
            .await
            .unwrap()
            .unwrap();
    assert_eq!(post.status, 405);
    ours.stop().await.unwrap();
}

/// Three of our members from zoo.cfg files, as the binary starts them, each with its
/// AdminServer; the ports of (client, admin) per member.
async fn our_ensemble(root: &Path) -> (Vec<zk_server::host::member::node::Node>, Vec<(u16, u16)>) {
    let p = free_ports(15).unwrap();
    let servers: String = (0..3)
        .map(|i| {
            format!(
                "server.{}=127.0.0.1:{}:{}:participant;127.0.0.1:{}\n",
                i + 1,
                p[5 * i + 1],
                p[5 * i + 2],
                p[5 * i]
            )
        })
        .collect();
    let mut nodes = Vec::new();
    let mut ports = Vec::new();
    for i in 0..3 {
        let dir = root.join(format!("m{}", i + 1));
        std::fs::create_dir_all(dir.join("data")).unwrap();
        write(&dir.join("data/myid"), &format!("{}\n", i + 1));
        let cfg = dir.join("zoo.cfg");
        write(
            &cfg,
            &format!(
                "tickTime=200\ninitLimit=20\nsyncLimit=10\ndataDir={}\n4lw.commands.whitelist=*\n\
                 admin.serverPort={}\nadmin.serverAddress=127.0.0.1\n{servers}",
                dir.join("data").display(),
                p[5 * i + 3]
            ),
        );
        let config = ServerConfig::from_file(&cfg, &[]).unwrap();
        nodes.push(from_config::start_member(&config).await.expect("member"));
        ports.push((p[5 * i], p[5 * i + 3]));
    }
    (nodes, ports)
}

async fn mode_of(port: u16) -> Option<String> {
    tokio::task::spawn_blocking(move || tests::apache::mode(port))
        .await
        .unwrap()
}

/// (leader, a follower) among client ports, once every member serves.
async fn roles(ports: &[u16]) -> (usize, usize) {
    for _ in 0..300 {
        let mut modes = Vec::new();
        for p in ports {
            modes.push(mode_of(*p).await);
        }
        let leader = modes.iter().position(|m| m.as_deref() == Some("leader"));
        let follower = modes.iter().position(|m| m.as_deref() == Some("follower"));
        let all = modes.iter().all(|m| m.is_some());
        if let (Some(l), Some(f), true) = (leader, follower, all) {
            return (l, f);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no serving ensemble");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ensemble_commands_match_apache() {
    let apache = tokio::task::spawn_blocking(|| ApacheEnsemble::start_with_admin(3))
        .await
        .unwrap()
        .expect("Apache ensemble with AdminServers");
    let apache_ports: Vec<u16> = apache.nodes.iter().map(|n| n.client_port).collect();
    let (al, af) = roles(&apache_ports).await;
    let admin_of = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
    let theirs_leader = admin_of(apache.nodes[al].admin_port.unwrap());
    let theirs_follower = admin_of(apache.nodes[af].admin_port.unwrap());

    let root = tempfile::tempdir().unwrap();
    let (_nodes, ports) = our_ensemble(root.path()).await;
    let client_ports: Vec<u16> = ports.iter().map(|p| p.0).collect();
    let (ol, of) = roles(&client_ports).await;
    let ours_leader = admin_of(ports[ol].1);
    let ours_follower = admin_of(ports[of].1);

    // A session on the leader and one on the follower, on both ensembles.
    let at = |port: u16| format!("127.0.0.1:{port}");
    let _t1 = load(&at(apache_ports[al]), "l").await;
    let _t2 = load(&at(apache_ports[af]), "f").await;
    let _o1 = load(&at(client_ports[ol]), "l").await;
    let _o2 = load(&at(client_ports[of]), "f").await;

    // What the leader proposed (before compare_all resets it with srst).
    let stats = command(ours_leader, "stats").await;
    assert_eq!(stats["server_stats"]["server_state"], "leader");
    assert!(
        stats["proposal_stats"]["max_buffer_size"].as_i64().unwrap() > 0,
        "{stats}"
    );

    compare_all("leader", theirs_leader, ours_leader).await;
    compare_all("follower", theirs_follower, ours_follower).await;

    // The ensemble's facts, not only their shapes.
    let lead = command(ours_follower, "lead").await;
    assert_eq!(lead["is_leader"], false);
    assert_eq!(lead["leader_id"], (ol + 1) as i64);
    assert_eq!(lead["leader_ip"], "127.0.0.1");
    let view = command(ours_leader, "voting_view").await;
    assert_eq!(view["current_config"].as_object().unwrap().len(), 3);
    let zab = command(ours_leader, "zabstate").await;
    assert_eq!(
        (zab["is_leader"].clone(), zab["zabstate"].clone()),
        (true.into(), "broadcast".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_without_quorum_answers_as_apache() {
    // One member of three, alone: LOOKING, as Apache's answers it (captured from 3.8).
    let root = tempfile::tempdir().unwrap();
    let p = free_ports(10).unwrap();
    let dir = root.path().join("m1");
    std::fs::create_dir_all(dir.join("data")).unwrap();
    write(&dir.join("data/myid"), "1\n");
    let servers: String = (0..3)
        .map(|i| {
            format!(
                "server.{}=127.0.0.1:{}:{};127.0.0.1:{}\n",
                i + 1,
                p[3 * i + 1],
                p[3 * i + 2],
                p[3 * i]
            )
        })
        .collect();
    let cfg = dir.join("zoo.cfg");
    write(
        &cfg,
        &format!(
            "tickTime=200\ninitLimit=20\nsyncLimit=10\ndataDir={}\nadmin.serverPort={}\n\
             admin.serverAddress=127.0.0.1\n{servers}",
            dir.join("data").display(),
            p[9]
        ),
    );
    let config = ServerConfig::from_file(&cfg, &[]).unwrap();
    let _node = from_config::start_member(&config).await.expect("member");
    let admin = SocketAddr::from(([127, 0, 0, 1], p[9]));
    for name in [
        "stats",
        "ruok",
        "leader",
        "monitor",
        "voting_view",
        "dump",
        "isro",
    ] {
        let r = command(admin, name).await;
        assert_eq!(
            r["error"], "This ZooKeeper instance is not currently serving requests",
            "{name}: {r}"
        );
    }
    let zab = command(admin, "zabstate").await;
    assert_eq!(
        zab,
        serde_json::json!({"voting": false, "zabstate": "", "command": "zabstate", "error": null})
    );
    assert!(command(admin, "environment").await["error"].is_null());
}

/// Apache 3.8's Prometheus metric types for the names this server exports, from
/// `ServerMetrics` (counters, summaries) and the gauges `ZooKeeperServer`,
/// `LeaderZooKeeperServer` and `QuorumZooKeeperServer` register (the Debian packages ship
/// no Prometheus client, so Apache's `/metrics` cannot run here).
const APACHE_TYPES: &[(&str, &str)] = &[
    ("avg_latency", "gauge"),
    ("max_latency", "gauge"),
    ("min_latency", "gauge"),
    ("packets_received", "gauge"),
    ("packets_sent", "gauge"),
    ("num_alive_connections", "gauge"),
    ("outstanding_requests", "gauge"),
    ("uptime", "gauge"),
    ("znode_count", "gauge"),
    ("watch_count", "gauge"),
    ("ephemerals_count", "gauge"),
    ("approximate_data_size", "gauge"),
    ("global_sessions", "gauge"),
    ("local_sessions", "gauge"),
    ("open_file_descriptor_count", "gauge"),
    ("max_file_descriptor_count", "gauge"),
    ("last_client_response_size", "gauge"),
    ("max_client_response_size", "gauge"),
    ("min_client_response_size", "gauge"),
    ("learners", "gauge"),
    ("synced_followers", "gauge"),
    ("synced_non_voting_followers", "gauge"),
    ("synced_observers", "gauge"),
    ("pending_syncs", "gauge"),
    ("leader_uptime", "gauge"),
    ("last_proposal_size", "gauge"),
    ("max_proposal_size", "gauge"),
    ("min_proposal_size", "gauge"),
    ("quorum_size", "gauge"),
    ("proposal_count", "counter"),
    ("looking_count", "counter"),
    ("connection_request_count", "counter"),
    ("connection_revalidate_count", "counter"),
    ("response_bytes", "counter"),
    ("diff_count", "counter"),
    ("snap_count", "counter"),
    ("readlatency", "summary"),
    ("updatelatency", "summary"),
    ("fsynctime", "summary"),
    ("snapshottime", "summary"),
    ("election_time", "summary"),
    ("startup_txns_loaded", "summary"),
    ("dbinittime", "summary"),
    ("sync_processor_batch_size", "summary"),
    ("proposal_latency", "summary"),
    ("commit_propagation_latency", "summary"),
    ("connection_rejected", "counter"),
    ("sessionless_connections_expired", "counter"),
    ("learner_proposal_received_count", "counter"),
    ("bytes_received_count", "counter"),
    ("learner_commit_received_count", "counter"),
    ("unsuccessful_handshake", "counter"),
    ("commit_count", "counter"),
    ("revalidate_count", "counter"),
    ("leader_unavailable_time", "summary"),
    ("node_created_watch_count", "summary"),
    ("node_deleted_watch_count", "summary"),
    ("startup_txns_load_time", "summary"),
    ("follower_sync_time", "summary"),
    ("unavailable_time", "summary"),
    ("node_children_watch_count", "summary"),
    ("observer_sync_time", "summary"),
    ("node_changed_watch_count", "summary"),
    ("startup_snap_load_time", "summary"),
    ("quorum_ack_latency", "summary"),
    ("ensemble_auth_success", "counter"),
    ("ensemble_auth_fail", "counter"),
    ("ensemble_auth_skip", "counter"),
];

struct Scrape {
    text: String,
    types: BTreeMap<String, String>,
    values: BTreeMap<String, f64>,
}

async fn scrape(addr: SocketAddr) -> Scrape {
    let r = get(addr, "/metrics").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let lines = r.body.lines().map(|l| Ok(l.to_owned()));
    let parsed = prometheus_parse::Scrape::parse(lines).expect("Prometheus text format");
    let types = r
        .body
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .map(|(n, t)| (n.to_owned(), t.to_owned()))
        .collect();
    let mut values = BTreeMap::new();
    for s in &parsed.samples {
        let v = match &s.value {
            prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Untyped(v) => *v,
            prometheus_parse::Value::Summary(qs) => {
                for q in qs {
                    values.insert(format!("{}{{quantile={}}}", s.metric, q.quantile), q.count);
                }
                continue;
            }
            prometheus_parse::Value::Histogram(_) => panic!("no histograms in Apache's metrics"),
        };
        values.insert(s.metric.clone(), v);
    }
    Scrape {
        text: r.body,
        types,
        values,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_have_apache_names_and_move_with_load() {
    let dir = tempfile::tempdir().unwrap();
    let (client_port, metrics_port) = (free_port().unwrap(), free_port().unwrap());
    let cfg = standalone_cfg(
        dir.path(),
        client_port,
        free_port().unwrap(),
        &format!(
            "admin.enableServer=false\n\
             metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider\n\
             metricsProvider.httpHost=127.0.0.1\nmetricsProvider.httpPort={metrics_port}\n\
             metricsProvider.exportJvmInfo=false\n"
        ),
    );
    let server = Server::start(cfg).await.expect("zk-server");
    assert_eq!(server.admin_addr(), None);
    let addr = server.metrics_addr().expect("metrics endpoint");
    assert_eq!(addr.port(), metrics_port);

    let before = scrape(addr).await;
    for (name, kind) in &before.types {
        let apache = APACHE_TYPES.iter().find(|(n, _)| n == name);
        assert_eq!(
            apache.map(|(_, t)| *t),
            Some(kind.as_str()),
            "{name} is exported as a {kind}; Apache's type differs or Apache has no such metric"
        );
    }
    for name in [
        "znode_count",
        "watch_count",
        "num_alive_connections",
        "outstanding_requests",
        "ephemerals_count",
        "approximate_data_size",
        "readlatency",
        "updatelatency",
        "fsynctime",
        "snapshottime",
        "election_time",
        "proposal_latency",
        "diff_count",
        "snap_count",
    ] {
        assert!(
            before.types.contains_key(name),
            "{name} missing:\n{}",
            before.text
        );
    }
    // Apache's quantile labels: 0.5, 0.9, 0.99 for the detailed summaries.
    for q in ["0.5", "0.9", "0.99"] {
        assert!(
            before
                .text
                .contains(&format!("readlatency{{quantile=\"{q}\"}}")),
            "{}",
            before.text
        );
    }
    assert_eq!(before.values["readlatency_count"], 0.0);
    // Apache's basic summaries (fsynctime...) export the median only.
    assert!(before.text.contains("fsynctime{quantile=\"0.5\"}"));
    assert!(!before.text.contains("fsynctime{quantile=\"0.9\"}"));

    let c = tests::client::connect(&server.connect_string(), Duration::from_secs(10)).await;
    c.create("/m", b"x", &Acl::open_unsafe(), CreateMode::Persistent)
        .await
        .unwrap();
    c.get_data("/m", false).await.unwrap();
    let after = scrape(addr).await;
    let moved = |k: &str| (before.values[k], after.values[k]);
    assert!(
        after.values["readlatency_count"] >= 1.0,
        "a get is a read: {:?}",
        moved("readlatency_count")
    );
    assert!(
        after.values["updatelatency_count"] >= 2.0,
        "session + create: {:?}",
        moved("updatelatency_count")
    );
    assert_eq!(
        after.values["znode_count"],
        before.values["znode_count"] + 1.0
    );
    assert_eq!(after.values["num_alive_connections"], 1.0);
    assert_eq!(after.values["global_sessions"], 1.0);
    assert!(after.values["connection_request_count"] >= 1.0);
    assert!(after.values["response_bytes"] > before.values["response_bytes"]);
    // The create was made durable by a timed fdatasync.
    assert!(
        after.values["fsynctime_count"] > before.values["fsynctime_count"],
        "a write is fsynced: {:?}",
        moved("fsynctime_count")
    );
    assert!(!after.values["fsynctime{quantile=0.5}"].is_nan());
    // Once there are samples, quantiles are numbers (NaN before, as Apache's client).
    assert!(!after.values["readlatency{quantile=0.5}"].is_nan());
    assert_eq!(get(addr, "/other").await.status, 404);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_endpoints_bind_nothing() {
    // By zoo.cfg, and by -D property (zoo.cfg asking for a port all the same).
    for (line, props) in [
        ("admin.enableServer=false\n", vec![]),
        (
            "",
            vec![(
                "zookeeper.admin.enableServer".to_owned(),
                "false".to_owned(),
            )],
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let admin_port = free_port().unwrap();
        let cfg = dir.path().join("zoo.cfg");
        write(
            &cfg,
            &format!(
                "tickTime=200\ndataDir={}\nclientPort=0\nclientPortAddress=127.0.0.1\n\
                 admin.serverPort={admin_port}\nadmin.serverAddress=127.0.0.1\n{line}",
                dir.path().display()
            ),
        );
        let config = ServerConfig::from_file(&cfg, &props).unwrap();
        assert!(
            config.metrics.is_none(),
            "no metricsProvider.className: no endpoint"
        );
        let server = Server::start(config).await.unwrap();
        assert_eq!(server.admin_addr(), None);
        let addr = SocketAddr::from(([127, 0, 0, 1], admin_port));
        let open = tokio::task::spawn_blocking(move || http::listening(addr))
            .await
            .unwrap();
        assert!(
            !open,
            "{line}{props:?}: the AdminServer port must stay closed"
        );
        server.stop().await.unwrap();
    }
    // And Apache's default provider exports nothing either.
    let text = "dataDir=/tmp/x\nmetricsProvider.className=org.apache.zookeeper.metrics.impl.DefaultMetricsProvider\n";
    assert!(ServerConfig::parse(text, &[]).unwrap().metrics.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taken_ports_are_handled_as_apache_does() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    // A standalone server does not start (Apache exits with code 4).
    let dir = tempfile::tempdir().unwrap();
    let cfg = standalone_cfg(dir.path(), free_port().unwrap(), port, "");
    match Server::start(cfg).await {
        Err(e @ ServerError::Endpoint { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains("admin.serverPort") && msg.contains(&port.to_string()),
                "{msg}"
            );
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("started with its AdminServer port taken"),
    }
    // Nor with its metrics port taken.
    let dir = tempfile::tempdir().unwrap();
    let cfg = standalone_cfg(
        dir.path(),
        free_port().unwrap(),
        free_port().unwrap(),
        &format!(
            "admin.enableServer=false\n\
             metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider\n\
             metricsProvider.httpHost=127.0.0.1\nmetricsProvider.httpPort={port}\n"
        ),
    );
    let e = Server::start(cfg).await.err().expect("refused");
    assert!(e.to_string().contains("metricsProvider.httpPort"), "{e}");

    // An ensemble member goes on without its AdminServer (Apache logs a warning).
    let root = tempfile::tempdir().unwrap();
    let p = free_ports(6).unwrap();
    let data = root.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    write(&data.join("myid"), "1\n");
    let cfg = root.path().join("zoo.cfg");
    write(
        &cfg,
        &format!(
            "tickTime=200\ndataDir={}\nadmin.serverPort={port}\nadmin.serverAddress=127.0.0.1\n\
             server.1=127.0.0.1:{}:{};127.0.0.1:{}\nserver.2=127.0.0.1:{}:{};127.0.0.1:{}\n",
            data.display(),
            p[0],
            p[1],
            p[2],
            p[3],
            p[4],
            p[5]
        ),
    );
    let config = ServerConfig::from_file(&cfg, &[]).unwrap();
    let node = from_config::start_member(&config).await;
    assert!(node.is_ok(), "a member starts without its AdminServer");
    drop(taken);
}

#[test]
fn binary_exits_4_when_its_admin_port_is_taken() {
    // As Apache's ZooKeeperServerMain ("Unable to start AdminServer, exiting abnormally").
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("zoo.cfg");
    write(
        &cfg,
        &format!(
            "dataDir={}\nclientPort={}\nclientPortAddress=127.0.0.1\nadmin.serverPort={port}\n\
             admin.serverAddress=127.0.0.1\n",
            dir.path().join("data").display(),
            free_port().unwrap()
        ),
    );
    let mut child = std::process::Command::new(tests::zk_processes::zk_server_bin().unwrap())
        .arg(&cfg)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("zk-server kept running with its AdminServer port taken");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(4), "{err}");
    assert!(err.contains("admin.serverPort"), "{err}");
    // Nothing was written: the port is checked before dataDir is touched.
    assert!(!dir.path().join("data").join("version-2").exists());
}
