//! Power loss under a concurrent write load (the class of ZOOKEEPER-2355, -3642, -3911 and
//! -4785: acknowledged writes lost, or a server refusing to start, after a crash of the
//! machine). The storage layer records which length of every txn log and snapshot file was
//! made durable (`zk_server::testkit::track_durability_under`); a power loss stops the
//! servers abruptly, then cuts every file back to that length, with garbage after it as
//! torn pages, and deletes files whose directory entry was never synced
//! (`zk_server::testkit::power_loss`). After the restart every write a client saw
//! acknowledged must be there, and the servers start without help.
//!
//! Snapshots are taken every few dozen txns, so logs roll and snapshots are written while
//! the power goes.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use zk_client::{Acl, CreateMode, ErrorCode};
use zk_server::testkit::{power_loss, track_durability_under, Ensemble, TestServer};

/// What the writers saw acknowledged: created paths, and per writer the last value its
/// key was acknowledged set to.
#[derive(Default)]
struct Acked {
    created: Vec<String>,
    last_set: BTreeMap<usize, u64>,
}

/// Starts `hosts.len()` writers, writer `w` on `hosts[w]`: each creates `/load/w<w>-<n>`
/// and sets `/key<w>` to `n`, one write after another, recording what was acknowledged,
/// until `stop` is set or its server goes.
async fn writers(
    hosts: &[String],
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Acked>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let setup = tests::client::connect(&hosts[0], Duration::from_secs(10)).await;
    for path in
        std::iter::once("/load".to_string()).chain((0..hosts.len()).map(|w| format!("/key{w}")))
    {
        match setup
            .create(&path, b"0", &Acl::open_unsafe(), CreateMode::Persistent)
            .await
        {
            Ok(_) => {}
            Err(e) if e.code() == Some(ErrorCode::NodeExists) => {}
            Err(e) => panic!("{path}: {e}"),
        }
    }
    let _ = setup.close().await;
    let mut tasks = Vec::new();
    for (w, h) in hosts.iter().enumerate() {
        let c = tests::client::connect(h, Duration::from_secs(10)).await;
        let (stop, acked) = (stop.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            let acl = Acl::open_unsafe();
            for n in 1u64.. {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let path = format!("/load/w{w}-{n}");
                let write = async {
                    c.create(&path, b"x", &acl, CreateMode::Persistent).await?;
                    acked.lock().unwrap().created.push(path.clone());
                    c.set_data(&format!("/key{w}"), n.to_string().as_bytes(), None)
                        .await?;
                    acked.lock().unwrap().last_set.insert(w, n);
                    Ok::<_, zk_client::Error>(())
                };
                match tokio::time::timeout(Duration::from_secs(2), write).await {
                    Ok(Ok(())) => {}
                    // The server is gone (the power went).
                    _ => break,
                }
            }
            let _ = tokio::time::timeout(Duration::from_millis(200), c.close()).await;
        }));
    }
    tasks
}

/// Checks that every acknowledged write is present through `hosts`.
async fn all_acknowledged_writes_present(hosts: &str, acked: &Mutex<Acked>) {
    let acked = {
        let a = acked.lock().unwrap();
        Acked {
            created: a.created.clone(),
            last_set: a.last_set.clone(),
        }
    };
    let c = tests::client::connect(hosts, Duration::from_secs(10)).await;
    c.sync("/").await.expect("sync");
    let kids: std::collections::HashSet<String> = c
        .get_children("/load", false)
        .await
        .expect("children")
        .into_iter()
        .map(|k| format!("/load/{k}"))
        .collect();
    let lost: Vec<&String> = acked
        .created
        .iter()
        .filter(|p| !kids.contains(*p))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged creates lost, e.g. {:?}",
        lost.len(),
        acked.created.len(),
        &lost[..lost.len().min(5)]
    );
    for (w, n) in &acked.last_set {
        let (data, _) = c.get_data(&format!("/key{w}"), false).await.expect("key");
        let got: u64 = String::from_utf8_lossy(&data).parse().expect("number");
        assert!(got >= *n, "/key{w} is {got}, but {n} was acknowledged");
    }
    let _ = c.close().await;
}

fn config(dir: &Path) -> zk_server::ServerConfig {
    let mut c = TestServer::config(dir);
    c.client_port = 0;
    c.snap_count = 40;
    // Preallocated space after the last entry: where torn pages land.
    c.prealloc_size = 64 * 1024;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_power_loss_under_load_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().expect("temp dir");
    track_durability_under(dir.path());
    let acked = Arc::new(Mutex::new(Acked::default()));
    for (round, seed) in [11u64, 12, 13].into_iter().enumerate() {
        let s = zk_server::Server::start(config(dir.path()))
            .await
            .unwrap_or_else(|e| panic!("start after power loss {round}: {e}"));
        let hosts = vec![s.connect_string(); 4];
        if round > 0 {
            all_acknowledged_writes_present(&hosts[0], &acked).await;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = writers(&hosts, stop.clone(), acked.clone()).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        // The power goes: no clean stop, the writers are cut off mid-write.
        drop(s);
        stop.store(true, Ordering::SeqCst);
        for t in tasks {
            t.await.expect("writer");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let lost = power_loss(dir.path(), true, seed).expect("power loss");
        assert!(
            lost.garbage > 0,
            "no torn page written: the test would prove little ({lost:?})"
        );
        assert!(
            acked.lock().unwrap().created.len() > 20 * (round + 1),
            "too little load"
        );
    }
    let s = zk_server::Server::start(config(dir.path()))
        .await
        .expect("start after the last power loss");
    all_acknowledged_writes_present(&s.connect_string(), &acked).await;
    s.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ensemble_power_loss_of_every_member_at_once_loses_no_acknowledged_write() {
    let root = tempfile::tempdir().expect("temp dir");
    track_durability_under(root.path());
    let mut ens = Ensemble::start_on_disk(3, root.path())
        .await
        .expect("ensemble");
    ens.set_snap_count(40);
    let acked = Arc::new(Mutex::new(Acked::default()));
    for (round, seed) in [21u64, 22].into_iter().enumerate() {
        ens.wait_for_leader(Duration::from_secs(20))
            .await
            .unwrap_or_else(|| panic!("no leader after power loss {round}"));
        let hosts: Vec<String> = (0..3)
            .map(|i| ens.client_addr(i).expect("member").to_string())
            .collect();
        if round > 0 {
            all_acknowledged_writes_present(&hosts.join(","), &acked).await;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = writers(&hosts, stop.clone(), acked.clone()).await;
        tokio::time::sleep(Duration::from_millis(2000)).await;
        // Every member loses power at once.
        for i in 0..3 {
            ens.kill(i);
        }
        stop.store(true, Ordering::SeqCst);
        for t in tasks {
            t.await.expect("writer");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let lost = power_loss(root.path(), true, seed).expect("power loss");
        println!("power loss {round}: {lost:?}");
        assert!(
            acked.lock().unwrap().created.len() > 20 * (round + 1),
            "too little load"
        );
        for i in 0..3 {
            ens.restart(i)
                .await
                .unwrap_or_else(|e| panic!("member {i} restarts after power loss {round}: {e}"));
        }
    }
    ens.wait_for_leader(Duration::from_secs(20))
        .await
        .expect("a leader after the last power loss");
    let hosts: Vec<String> = (0..3)
        .map(|i| ens.client_addr(i).expect("member").to_string())
        .collect();
    all_acknowledged_writes_present(&hosts.join(","), &acked).await;
}
