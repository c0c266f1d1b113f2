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
