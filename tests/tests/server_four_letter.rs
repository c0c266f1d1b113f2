//! Four-letter words: whitelist, and the contents of the reports (watches, sessions,
//! ephemerals, connections, resets).

mod server_support;

use server_support::*;
use zk_proto::CreateMode;

async fn fl(port: u16, cmd: &'static str) -> String {
    tokio::task::spawn_blocking(move || tests::apache::four_letter(port, cmd))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whitelist_is_enforced() {
    let s = TestServer::start_with(|c| {
        c.four_letter_whitelist = ["srvr".to_string()].into_iter().collect();
    })
    .await;
    assert!(fl(s.port(), "srvr").await.contains("Mode: standalone"));
    assert_eq!(
        fl(s.port(), "ruok").await,
        "ruok is not executed because it is not in the whitelist.\n"
    );
    assert_eq!(
        fl(s.port(), "dump").await,
        "dump is not executed because it is not in the whitelist.\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_reflect_server_state() {
    let s = TestServer::start().await;
    let mut c = RawClient::connect(s.addr()).await;
    c.create("/w", "", CreateMode::Persistent).await;
    c.create("/eph", "", CreateMode::Ephemeral).await;
    c.get("/w", true).await;
    c.children("/w", true).await;
    let sid = format!("0x{:x}", c.session_id);

    let wchs = fl(s.port(), "wchs").await;
    // Like Apache, the watch reports cover data watches only.
    assert_eq!(wchs, "1 connections watching 1 paths\nTotal watches:1\n");
    let wchc = fl(s.port(), "wchc").await;
    assert_eq!(wchc, format!("{sid}\n\t/w\n\n"));
    let wchp = fl(s.port(), "wchp").await;
    assert_eq!(wchp, format!("/w\n\t{sid}\n\n"));
    let dump = fl(s.port(), "dump").await;
    assert!(
        dump.starts_with("SessionTracker dump:\nSession Sets ("),
        "{dump}"
    );
    assert!(dump.contains(&format!("{sid}:\n\t/eph\n")), "{dump}");
    let cons = fl(s.port(), "cons").await;
    assert!(cons.contains(&format!("sid={sid}")), "{cons}");
    assert!(
        cons.contains("[0](queued=0,recved=1,sent=0)"),
        "asking connection listed: {cons}"
    );
    let mntr = fl(s.port(), "mntr").await;
    assert!(mntr.contains("zk_ephemerals_count\t1\n"), "{mntr}");
    assert!(mntr.contains("zk_watch_count\t2\n"), "{mntr}");
    assert!(mntr.contains("zk_znode_count\t7\n"), "{mntr}");
    let srvr = fl(s.port(), "srvr").await;
    assert!(srvr.contains("Connections: 2\n"), "{srvr}");
    assert!(
        srvr.contains(&format!("Zxid: 0x{:x}\n", c.last_zxid)),
        "{srvr}"
    );
    assert_eq!(fl(s.port(), "srst").await, "Server stats reset.\n");
    assert!(fl(s.port(), "srvr").await.contains("Received: 1\n"));
    assert_eq!(fl(s.port(), "crst").await, "Connection stats reset.\n");
    assert_eq!(fl(s.port(), "isro").await, "rw");
    assert!(fl(s.port(), "envi")
        .await
        .starts_with("Environment:\nzookeeper.version="));
    assert!(fl(s.port(), "conf")
        .await
        .contains(&format!("clientPort={}\n", s.port())));
    assert!(fl(s.port(), "dirs").await.starts_with("datadir_size: "));
}

/// The same traffic on a server: a session with writes, reads and a ping, a second
/// session with a failed addauth (which closes its connection), then the first session
/// resumed on a new connection.
async fn mntr_traffic(addr: std::net::SocketAddr) {
    let mut c = RawClient::connect(addr).await;
    c.create("/m", "x", CreateMode::Persistent).await;
    c.set("/m", "yy", -1).await;
    c.get("/m", false).await;
    c.exists("/m", false).await;
    c.ping().await;
    let mut bad = RawClient::connect(addr).await;
    assert_eq!(
        bad.add_auth("no-such-scheme", "x").await.err(),
        zk_proto::ErrorCode::AuthFailed
    );
    c.children("/", false).await;
    // The session resumed on a new connection.
    let (mut c2, r) = c.reconnect(addr).await.expect("resumed");
    assert_eq!(r.session_id, c.session_id);
    c2.get("/m", false).await;
}

/// Watches firing: one NodeCreated, one NodeDataChanged, NodeDeleted in both tables (a
/// data and a child watch on the node) and one NodeChildrenChanged (on `/`).
async fn watch_traffic(addr: std::net::SocketAddr) {
    let mut c = RawClient::connect(addr).await;
    c.exists("/w", true).await;
    c.create("/w", "", CreateMode::Persistent).await;
    c.get("/w", true).await;
    c.set("/w", "z", -1).await;
    c.get("/w", true).await;
    c.children("/w", true).await;
    c.children("/", true).await;
    c.delete("/w", -1).await;
    let mut events = c.drain_events().await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while events.len() < 4 && std::time::Instant::now() < deadline {
        if let Some(e) = c.event(std::time::Duration::from_millis(200)).await {
            events.push(e);
        }
    }
    // One NodeDeleted: the session watches /w in both tables, and hears it once.
    assert_eq!(events.len(), 4, "{events:?}");
}

fn mntr_map(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn value<'a>(m: &'a [(String, String)], k: &str) -> &'a str {
    m.iter()
        .find(|(key, _)| key == k)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("mntr lacks {k}"))
}

/// `mntr` prints every key a real Apache 3.8 standalone server prints, in Apache's order,
/// except the documented omissions (`four_letter::mntr_omits`), with values that follow
/// the traffic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mntr_has_apaches_keys_minus_documented_omissions() {
    use zk_server::admin::four_letter::{mntr_omits, MNTR_OMITTED_KEYS};
    let apache = tokio::task::spawn_blocking(tests::apache::ApacheServer::start)
        .await
        .unwrap()
        .expect("apache server");
    let s = TestServer::start().await;
    let apache_addr: std::net::SocketAddr = format!("127.0.0.1:{}", apache.port()).parse().unwrap();
    // Apache's start polls it with `ruok`: compare the bytes received from here on.
    let bytes =
        |m: &[(String, String)]| -> u64 { value(m, "zk_bytes_received_count").parse().unwrap() };
    let a0 = bytes(&mntr_map(&fl(apache.port(), "mntr").await));
    let o0 = bytes(&mntr_map(&fl(s.port(), "mntr").await));
    mntr_traffic(apache_addr).await;
    mntr_traffic(s.addr()).await;
    watch_traffic(apache_addr).await;
    watch_traffic(s.addr()).await;
    let a = mntr_map(&fl(apache.port(), "mntr").await);
    let o = mntr_map(&fl(s.port(), "mntr").await);
    assert!(a.len() > 400, "Apache's mntr: {a:?}");
    let want: Vec<&str> = a
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| !mntr_omits(k))
        .collect();
    let got: Vec<&str> = o.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(got, want, "our mntr keys vs Apache's minus the omissions");
    // The omission list names only keys Apache really prints (no stale entries).
    for k in MNTR_OMITTED_KEYS {
        assert!(a.iter().any(|(ak, _)| ak == k), "{k} is not an Apache key");
    }

    // Values: the same counts as Apache where the traffic fixes them.
    for k in [
        "zk_server_state",
        "zk_znode_count",
        "zk_ephemerals_count",
        "zk_watch_count",
        "zk_cnt_updatelatency",
        "zk_local_sessions",
        "zk_connection_request_count",
        "zk_connection_revalidate_count",
        "zk_cnt_node_created_watch_count",
        "zk_sum_node_created_watch_count",
        "zk_cnt_node_deleted_watch_count",
        "zk_sum_node_deleted_watch_count",
        "zk_cnt_node_changed_watch_count",
        "zk_cnt_node_children_watch_count",
        "zk_sum_node_children_watch_count",
        "zk_connection_rejected",
        "zk_sessionless_connections_expired",
        "zk_commit_count",
        "zk_learner_proposal_received_count",
        "zk_cnt_unavailable_time",
    ] {
        assert_eq!(value(&o, k), value(&a, k), "{k}");
    }
    // The same packets: the same bytes (each four-letter word counts its 4).
    assert_eq!(bytes(&o) - o0, bytes(&a) - a0, "bytes received");
    assert!(bytes(&o) - o0 > 200, "{}", bytes(&o) - o0);
    assert_eq!(value(&o, "zk_cnt_node_deleted_watch_count"), "2");
    assert_eq!(value(&o, "zk_sum_node_changed_watch_count"), "1");
    // Three sessions, create and set, then create, set and delete; reads are the rest
    // (get, exists, ping, getChildren, ...).
    assert_eq!(value(&o, "zk_cnt_updatelatency"), "8");
    let reads: u64 = value(&o, "zk_cnt_readlatency").parse().unwrap();
    assert!(reads >= 4, "reads {reads}");
    assert_eq!(value(&o, "zk_connection_request_count"), "4");
    assert_eq!(value(&o, "zk_connection_revalidate_count"), "1");
    assert_eq!(value(&o, "zk_looking_count"), "0");
    let size = |k: &str| value(&o, k).parse::<i64>().unwrap();
    // The smallest reply is a bare 16-byte header (Apache's too), the largest carries a
    // stat (16 + 68 and more).
    assert_eq!(size("zk_min_client_response_size"), 16);
    assert_eq!(
        size("zk_min_client_response_size"),
        value(&a, "zk_min_client_response_size")
            .parse::<i64>()
            .unwrap()
    );
    assert!(size("zk_max_client_response_size") >= 84);
    let open: u64 = value(&o, "zk_open_file_descriptor_count").parse().unwrap();
    let max: u64 = value(&o, "zk_max_file_descriptor_count").parse().unwrap();
    assert!(open > 3 && open <= max, "{open} of {max}");
    assert_eq!(value(&o, "zk_proposal_count"), "0");
    let p = |k: &str| value(&o, k).parse::<u64>().unwrap();
    assert!(p("zk_p50_readlatency") <= p("zk_p99_readlatency"));
    assert!(p("zk_p999_readlatency") <= p("zk_max_readlatency"));

    // This server keeps its log in memory: nothing is fsynced (as Apache with
    // forceSync=no, which times no syncs either).
    assert_eq!(p("zk_cnt_fsynctime"), 0);
    // A standalone server is in no election and syncs no learner.
    assert_eq!(p("zk_cnt_election_time"), 0);
    assert_eq!(value(&o, "zk_diff_count"), "0");
    assert_eq!(value(&o, "zk_snap_count"), "0");

    // srst resets the counters and summaries.
    fl(s.port(), "srst").await;
    let o = mntr_map(&fl(s.port(), "mntr").await);
    assert_eq!(value(&o, "zk_cnt_readlatency"), "0");
    assert_eq!(value(&o, "zk_max_client_response_size"), "-1");
}

/// On disk, every write batch is made durable by one timed fdatasync (`fsynctime`,
/// `sync_processor_batch_size`), and a write raises the count; `srst` starts it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mntr_times_txn_log_fsyncs_on_disk() {
    let s = zk_server::testkit::TestServer::start()
        .await
        .expect("on-disk server");
    let port = s.addr().port();
    let before = mntr_map(&fl(port, "mntr").await);
    let n = |m: &[(String, String)], k: &str| value(m, k).parse::<u64>().unwrap();
    mntr_traffic(s.addr()).await;
    let after = mntr_map(&fl(port, "mntr").await);
    let fsyncs = n(&after, "zk_cnt_fsynctime");
    assert!(
        fsyncs > n(&before, "zk_cnt_fsynctime"),
        "writes raise fsynctime: {fsyncs}"
    );
    assert_eq!(n(&after, "zk_cnt_sync_processor_batch_size"), fsyncs);
    // Two sessions, a create, a set, two closes: every txn was in some batch.
    assert!(n(&after, "zk_sum_sync_processor_batch_size") >= 4);
    assert!(n(&after, "zk_max_fsynctime") >= n(&after, "zk_min_fsynctime"));
    let mut c = RawClient::connect(s.addr()).await;
    c.create("/fsync", "x", CreateMode::Persistent).await;
    let later = mntr_map(&fl(port, "mntr").await);
    assert!(n(&later, "zk_cnt_fsynctime") > fsyncs);
    fl(port, "srst").await;
    let reset = mntr_map(&fl(port, "mntr").await);
    assert_eq!(n(&reset, "zk_cnt_fsynctime"), 0);
    s.stop().await.expect("stop");
}

/// The start is timed too: reading the data directory back (`dbinittime`) and the txns
/// replayed from the log (`startup_txns_loaded`), once per start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mntr_times_the_database_load_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = zk_server::ServerConfig::for_tests(dir.path());
    let s = zk_server::Server::start(cfg.clone()).await.expect("start");
    let n = |m: &[(String, String)], k: &str| value(m, k).parse::<u64>().unwrap();
    let fresh = mntr_map(&fl(s.local_addr().port(), "mntr").await);
    assert_eq!(n(&fresh, "zk_cnt_dbinittime"), 1);
    assert_eq!(n(&fresh, "zk_cnt_startup_txns_loaded"), 1);
    assert_eq!(
        n(&fresh, "zk_sum_startup_txns_loaded"),
        0,
        "nothing to replay"
    );
    mntr_traffic(s.local_addr()).await;
    s.stop().await.expect("stop");
    let s = zk_server::Server::start(cfg).await.expect("restart");
    let again = mntr_map(&fl(s.local_addr().port(), "mntr").await);
    assert_eq!(n(&again, "zk_cnt_dbinittime"), 1);
    // Apache times the two halves of that load apart, once per start.
    assert_eq!(n(&again, "zk_cnt_startup_snap_load_time"), 1);
    assert_eq!(n(&again, "zk_cnt_startup_txns_load_time"), 1);
    assert!(
        n(&again, "zk_sum_startup_snap_load_time") + n(&again, "zk_sum_startup_txns_load_time")
            <= n(&again, "zk_sum_dbinittime") + 1
    );
    // Sessions, a create, a set and the closes were replayed.
    assert!(
        n(&again, "zk_sum_startup_txns_loaded") >= 4,
        "{}",
        value(&again, "zk_sum_startup_txns_loaded")
    );
    s.stop().await.expect("stop");
}
