//! Observers serving clients: 3 voters + 1 observer, in-process
//! (`zk_server::testkit::Ensemble::start_with_observers`) and as real `zk-server`
//! processes (`tests::zk_processes` with `Options::observers`).
//!
//! - the observer's `srvr` says `Mode: observer`;
//! - a zk-client connected only to the observer reads there, its writes are forwarded to
//!   the leader and acknowledged, it sees other members' writes (INFORM), and `sync` then
//!   read sees everything committed before the sync;
//! - the observer never votes: with 2 of 3 voters down there is no quorum although the
//!   observer runs (it stops serving, writes fail); a restarted voter brings it back;
//! - killing the leader: the observer follows the new leader and its client keeps its
//!   session.

use std::time::Duration;

use tests::apache::four_letter;
use tests::zk_processes::{Options, ProcessEnsemble};
use zk_client::{Acl, Client, CreateMode, Error};
use zk_server::testkit::Ensemble;

const T: Duration = Duration::from_secs(20);

/// The observer's index with 3 voters.
const OBSERVER: usize = 3;

/// One test at a time (they time elections on a small machine).
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

async fn connect(host: &str) -> Client {
    tests::client::connect(host, Duration::from_secs(8)).await
}

/// Sends a four-letter word off the runtime's threads (the helper blocks).
async fn word(port: u16, cmd: &'static str) -> String {
    tokio::task::spawn_blocking(move || four_letter(port, cmd))
        .await
        .expect("four-letter task")
}

fn mode(srvr: &str) -> Option<&str> {
    srvr.lines().find_map(|l| l.strip_prefix("Mode: "))
}

/// Waits until `port`'s `srvr` reports `want` as its mode (`None`: not serving).
async fn wait_mode(port: u16, want: Option<&str>) -> String {
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let got = word(port, "srvr").await;
        if mode(&got) == want || tokio::time::Instant::now() >= deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Retries `f` while the ensemble has no quorum (connection loss, timeouts).
async fn retry<F, Fut, V>(what: &str, f: F) -> V
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<V, Error>>,
{
    tests::client::retry(what, T, f).await
}

async fn create(c: &Client, path: &str, data: &[u8]) -> Result<(), Error> {
    c.create(path, data, &Acl::open_unsafe(), CreateMode::Persistent)
        .await
        .map(|_| ())
}

/// Reads, writes, INFORM and sync through a client attached only to the observer;
/// `leader_host` is a voter's client address for the "other member" client.
async fn observer_serves_a_client(observer_host: &str, other_host: &str) {
    let obs = connect(observer_host).await;
    let other = connect(other_host).await;

    // Its writes are forwarded to the leader, acknowledged, and visible everywhere.
    create(&obs, "/from-observer", b"o")
        .await
        .expect("write via observer");
    let (data, stat) = obs.get_data("/from-observer", false).await.expect("read");
    assert_eq!(&data[..], b"o");
    other
        .sync("/from-observer")
        .await
        .expect("sync on the voter");
    let (d2, s2) = other.get_data("/from-observer", false).await.expect("read");
    assert_eq!((&d2[..], s2.czxid), (&b"o"[..], stat.czxid));
    obs.set_data("/from-observer", b"o2", Some(0))
        .await
        .expect("set via observer");

    // Writes made through another member reach the observer (INFORM).
    create(&other, "/from-voter", b"v").await.expect("write");
    let deadline = tokio::time::Instant::now() + T;
    while obs
        .exists("/from-voter", false)
        .await
        .expect("exists")
        .is_none()
    {
        assert!(tokio::time::Instant::now() < deadline, "INFORM never came");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // sync then read sees everything committed before the sync, every time.
    for i in 0..20 {
        let path = format!("/synced-{i}");
        create(&other, &path, format!("{i}").as_bytes())
            .await
            .expect("write");
        other
            .set_data("/from-voter", format!("v{i}").as_bytes(), None)
            .await
            .expect("set");
        obs.sync(&path).await.expect("sync via observer");
        let (d, _) = obs.get_data(&path, false).await.expect("read after sync");
        assert_eq!(d, format!("{i}").as_bytes());
        let (d, _) = obs.get_data("/from-voter", false).await.expect("read");
        assert_eq!(d, format!("v{i}").as_bytes(), "stale read after sync");
    }
    let children = obs.get_children("/", false).await.expect("children");
    assert_eq!(
        children.iter().filter(|c| c.starts_with("synced-")).count(),
        20
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_observer_serves_clients() {
    let _serial = SERIAL.lock().await;
    init_tracing();
    let ens = Ensemble::start_with_observers(3, 1)
        .await
        .expect("ensemble");
    assert!(ens.is_observer(OBSERVER) && !ens.is_observer(0));
    let leader = ens.wait_for_leader(T).await.expect("leader");
    assert!(leader < OBSERVER);
    let port = ens.client_addr(OBSERVER).expect("observer").port();
    let srvr = wait_mode(port, Some("observer")).await;
    assert_eq!(mode(&srvr), Some("observer"), "{srvr}");
    let conf = word(port, "conf").await;
    assert!(conf.contains("peerType=1"), "{conf}");
    assert!(conf.contains(":observer;"), "{conf}");
    let voter = (leader + 1) % 3;
    observer_serves_a_client(
        &ens.client_addr(OBSERVER).unwrap().to_string(),
        &ens.client_addr(voter).unwrap().to_string(),
    )
    .await;
    // The leader's mntr counts the observer and the txns it proposed.
    let mntr = word(ens.client_addr(leader).unwrap().port(), "mntr").await;
    let val = |k: &str| -> i64 {
        mntr.lines()
            .find_map(|l| l.strip_prefix(k)?.strip_prefix('\t')?.parse().ok())
            .unwrap_or_else(|| panic!("{k} in {mntr}"))
    };
    assert_eq!(val("zk_synced_observers"), 1, "{mntr}");
    assert_eq!(val("zk_synced_followers"), 2, "{mntr}");
    assert_eq!(val("zk_learners"), 3, "{mntr}");
    assert!(val("zk_proposal_count") >= 44, "{mntr}");
    assert!(val("zk_min_proposal_size") > 0, "{mntr}");
    assert!(val("zk_max_proposal_size") >= val("zk_min_proposal_size"));
    assert!(val("zk_leader_uptime") > 0, "{mntr}");
    let obs_mntr = word(port, "mntr").await;
    assert!(
        obs_mntr.contains("zk_server_state\tobserver\n"),
        "{obs_mntr}"
    );
    assert!(obs_mntr.contains("zk_peer_state\tobserving - broadcast\n"));
    assert!(obs_mntr.contains("zk_proposal_count\t0\n"), "{obs_mntr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_observer_never_votes() {
    let _serial = SERIAL.lock().await;
    init_tracing();
    let mut ens = Ensemble::start_with_observers(3, 1)
        .await
        .expect("ensemble");
    let leader = ens.wait_for_leader(T).await.expect("leader");
    let port = ens.client_addr(OBSERVER).expect("observer").port();
    let obs = connect(&ens.client_addr(OBSERVER).unwrap().to_string()).await;
    create(&obs, "/before", b"").await.expect("write");

    // Two voters down (the leader among them): one voter and the observer run, 2 of 4
    // servers but 1 of 3 votes.
    let survivor = (leader + 1) % 3;
    for v in (0..3).filter(|v| *v != survivor) {
        ens.kill(v);
    }
    let srvr = wait_mode(port, None).await;
    assert_eq!(mode(&srvr), None, "observer still serving: {srvr}");
    // No member serves: the write cannot be acknowledged (the client keeps it queued and
    // may send it once a quorum is back, so it is not checked afterwards).
    let w = tokio::time::timeout(Duration::from_secs(3), create(&obs, "/no-quorum", b"")).await;
    assert!(
        !matches!(w, Ok(Ok(()))),
        "write acknowledged without quorum"
    );
    assert!(ens.leader().is_none());
    // The survivor and the observer together still do not elect anybody.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(ens.leader().is_none(), "a leader without a voter quorum");
    let st = ens.status(OBSERVER).expect("observer runs");
    assert!(!st.serving, "{st:?}");

    // One voter back: quorum again, the observer serves and the client writes.
    let back = (0..3).find(|v| *v != survivor).expect("a killed voter");
    ens.restart(back).await.expect("restart");
    ens.wait_for_leader(T).await.expect("leader again");
    let srvr = wait_mode(port, Some("observer")).await;
    assert_eq!(mode(&srvr), Some("observer"), "{srvr}");
    retry("write after quorum is back", || create(&obs, "/after", b"")).await;
    assert!(obs
        .exists("/before", false)
        .await
        .expect("exists")
        .is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_observer_follows_a_new_leader() {
    let _serial = SERIAL.lock().await;
    init_tracing();
    let mut ens = Ensemble::start_with_observers(3, 1)
        .await
        .expect("ensemble");
    let old = ens.wait_for_leader(T).await.expect("leader");
    let obs = connect(&ens.client_addr(OBSERVER).unwrap().to_string()).await;
    let session = obs.session_id();
    create(&obs, "/e", b"").await.expect("write");
    obs.create("/eph", b"", &Acl::open_unsafe(), CreateMode::Ephemeral)
        .await
        .expect("ephemeral");
    let looking = |text: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix("zk_looking_count\t")?.parse().ok())
            .unwrap_or_else(|| panic!("zk_looking_count in {text}"))
    };
    let obs_port = ens.client_addr(OBSERVER).unwrap().port();
    let before = looking(&word(obs_port, "mntr").await);
    assert!(before >= 1, "the observer looked for its first leader");
    ens.kill(old);
    let new = ens.wait_for_leader(T).await.expect("new leader");
    assert_ne!(new, old);
    let after = looking(&word(obs_port, "mntr").await);
    assert!(after > before, "looking count {before} -> {after}");
    let st = ens.status(OBSERVER).expect("observer");
    assert_eq!(st.leader, Some((new + 1) as i64), "{st:?}");
    retry("write via observer under the new leader", || {
        create(&obs, "/after-failover", b"")
    })
    .await;
    assert_eq!(obs.session_id(), session, "the session changed");
    assert!(obs.exists("/eph", false).await.expect("exists").is_some());
    let voter = (0..3).find(|v| *v != old).expect("voter");
    let other = connect(&ens.client_addr(voter).unwrap().to_string()).await;
    other.sync("/").await.expect("sync");
    assert!(other
        .exists("/after-failover", false)
        .await
        .unwrap()
        .is_some());
    assert!(other.exists("/eph", false).await.unwrap().is_some());
}

fn process_options() -> Options {
    let mut o = Options::members(3);
    o.observers = 1;
    o.extra_cfg = "maxSessionTimeout=10000\n".into();
    o
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_observer_serves_clients_and_follows_a_new_leader() {
    let _serial = SERIAL.lock().await;
    let mut ens = ProcessEnsemble::start(process_options())
        .await
        .expect("ensemble");
    assert!(ens.is_observer(OBSERVER) && !ens.is_observer(2));
    let leader = ens.wait_for_leader(T).await.expect("leader");
    assert!(leader < OBSERVER);
    assert_eq!(ens.mode(OBSERVER).await.as_deref(), Some("observer"));
    let cfg = std::fs::read_to_string(ens.root().join("m4/zoo.cfg")).expect("zoo.cfg");
    assert!(cfg.contains("peerType=observer"), "{cfg}");
    assert!(cfg.contains(":observer;"), "{cfg}");
    let voter = (leader + 1) % 3;
    let obs_host = ens.client_addr(OBSERVER).to_string();
    observer_serves_a_client(&obs_host, &ens.client_addr(voter).to_string()).await;

    // kill -9 the leader: the observer follows the new one, its client keeps its session.
    let obs = connect(&obs_host).await;
    let session = obs.session_id();
    obs.create("/eph", b"", &Acl::open_unsafe(), CreateMode::Ephemeral)
        .await
        .expect("ephemeral");
    ens.kill9(leader);
    let new = ens.wait_for_leader(T).await.expect("new leader");
    assert_ne!(new, leader);
    assert_eq!(ens.mode(OBSERVER).await.as_deref(), Some("observer"));
    retry("write via observer under the new leader", || {
        create(&obs, "/after-failover", b"")
    })
    .await;
    assert_eq!(obs.session_id(), session);
    assert!(obs.exists("/eph", false).await.expect("exists").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_observer_never_votes() {
    let _serial = SERIAL.lock().await;
    let mut ens = ProcessEnsemble::start(process_options())
        .await
        .expect("ensemble");
    let leader = ens.wait_for_leader(T).await.expect("leader");
    let obs = connect(&ens.client_addr(OBSERVER).to_string()).await;
    create(&obs, "/before", b"").await.expect("write");
    let survivor = (leader + 1) % 3;
    for v in (0..3).filter(|v| *v != survivor) {
        ens.kill9(v);
    }
    let port = ens.client_addr(OBSERVER).port();
    let srvr = wait_mode(port, None).await;
    assert_eq!(mode(&srvr), None, "observer still serving: {srvr}");
    let w = tokio::time::timeout(Duration::from_secs(3), create(&obs, "/no-quorum", b"")).await;
    assert!(
        !matches!(w, Ok(Ok(()))),
        "write acknowledged without quorum"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(ens.mode(survivor).await, None, "survivor leads alone");
    assert_eq!(ens.mode(OBSERVER).await, None, "observer serves");

    let back = (0..3).find(|v| *v != survivor).expect("a killed voter");
    ens.restart(back).expect("restart");
    ens.wait_for_leader_among(&[survivor, back, OBSERVER], T)
        .await
        .expect("leader again");
    retry("write after quorum is back", || create(&obs, "/after", b"")).await;
    assert!(obs
        .exists("/before", false)
        .await
        .expect("exists")
        .is_some());
}
