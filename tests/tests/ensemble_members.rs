//! Ensemble members as clients see them (in-process `zk_server::testkit::Ensemble`):
//! read-only mode of a member cut off from its quorum, sessions moving between members
//! (revalidation, SessionMoved on the old connection), and four-letter words with
//! Apache 3.8's shapes on leader, followers and a read-only member.

mod server_support;

use std::time::Duration;

use server_support::RawClient;
use tests::apache::four_letter;
use zk_client::{Acl, Client, CreateMode, Error, SessionState};
use zk_proto::ops::{CreateRequest, PathWatchRequest};
use zk_proto::{ConnectRequest, CreateMode as ProtoMode, ErrorCode, Request};
use zk_server::admin::four_letter::mntr_omits;
use zk_server::testkit::Ensemble;

const T: Duration = Duration::from_secs(15);

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

async fn connect(hosts: &str) -> Client {
    tests::client::connect(hosts, Duration::from_secs(10)).await
}

fn port(ens: &Ensemble, i: usize) -> u16 {
    ens.client_addr(i).expect("member").port()
}

/// Sends a four-letter word off the runtime's threads (the helper blocks).
async fn word(port: u16, cmd: &'static str) -> String {
    tokio::task::spawn_blocking(move || four_letter(port, cmd))
        .await
        .expect("four-letter task")
}

async fn wait_word(port: u16, cmd: &'static str, want: &str, timeout: Duration) -> String {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let got = word(port, cmd).await;
        if got == want || tokio::time::Instant::now() >= deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn create(path: &str) -> Request {
    Request::Create(CreateRequest {
        path: path.into(),
        data: Some(b"x".to_vec().into()),
        acl: zk_proto::Acl::open_unsafe(),
        flags: ProtoMode::Persistent.to_flags(),
    })
}

fn exists(path: &str) -> Request {
    Request::Exists(PathWatchRequest {
        path: path.into(),
        watch: false,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitioned_member_serves_read_only_clients_until_the_quorum_is_back() {
    init_tracing();
    let mut ens = Ensemble::start(3).await.expect("ensemble");
    ens.set_read_only_mode(true);
    let leader = ens.wait_for_leader(T).await.expect("leader");
    let w = connect(&ens.connect_string()).await;
    w.create("/ro", b"v", &Acl::open_unsafe(), CreateMode::Persistent)
        .await
        .unwrap();
    w.close().await.unwrap();
    assert_eq!(word(port(&ens, leader), "isro").await, "rw");

    // Only one member is left: LOOKING ("null"), then read-only after the grace period.
    let survivor = (leader + 1) % 3;
    for i in (0..3).filter(|i| *i != survivor) {
        ens.kill(i);
    }
    let p = port(&ens, survivor);
    assert_eq!(wait_word(p, "isro", "ro", T).await, "ro");
    let srvr = word(p, "srvr").await;
    assert!(
        srvr.contains("READ-ONLY mode; serving only read-only clients\n")
            && srvr.contains("Mode: read-only\n"),
        "{srvr}"
    );
    assert!(word(p, "mntr")
        .await
        .contains("zk_server_state\tread-only\n"));

    // A client allowing read-only servers reads, and its writes fail with NotReadOnly.
    let c = tokio::time::timeout(
        T,
        Client::builder(&ens.connect_string())
            .read_only(true)
            .session_timeout(Duration::from_secs(4))
            .connect(),
    )
    .await
    .expect("read-only connect in time")
    .expect("read-only connect");
    assert_eq!(c.state(), SessionState::ConnectedReadOnly);
    assert_eq!(&c.get_data("/ro", false).await.unwrap().0[..], b"v");
    assert_eq!(c.set_data("/ro", b"x", None).await, Err(Error::NotReadOnly));
    assert_eq!(
        c.create("/new", b"", &Acl::open_unsafe(), CreateMode::Persistent)
            .await,
        Err(Error::NotReadOnly)
    );
    assert!(word(p, "mntr").await.contains("zk_local_sessions\t1\n"));

    // Clients that do not allow read-only are refused.
    let strict = tokio::time::timeout(
        Duration::from_secs(3),
        Client::builder(&ens.connect_string())
            .session_timeout(Duration::from_secs(1))
            .connect(),
    )
    .await;
    assert!(!matches!(strict, Ok(Ok(_))), "a strict client got in");
    // So is a global session's reconnection (Apache 3.8 refuses it in read-only mode).
    let refused = RawClient::handshake(
        ens.client_addr(survivor).unwrap(),
        ConnectRequest {
            timeout: 4000,
            session_id: 0x0100_0000_0000_0001,
            passwd: zk_server::core::session::session_password(0x0100_0000_0000_0001)
                .to_vec()
                .into(),
            read_only: Some(true),
            ..Default::default()
        },
    )
    .await;
    assert!(refused.is_err(), "{:?}", refused.map(|r| r.1));

    // Quorum back: read-only sessions are closed, the client finds a read-write server.
    for i in (0..3).filter(|i| *i != survivor) {
        ens.restart(i).await.unwrap();
    }
    c.wait_for_state(T, |s| s == SessionState::Connected)
        .await
        .expect("back to read-write");
    ens.wait_for_leader(T).await.expect("leader again");
    assert_eq!(wait_word(p, "isro", "rw", T).await, "rw");
    let mut done = false;
    for _ in 0..100 {
        match c.set_data("/ro", b"x", None).await {
            Ok(_) => {
                done = true;
                break;
            }
            Err(e) if e.is_retryable() || e == Error::NotReadOnly => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(done, "no write after the quorum came back");
    assert_eq!(&c.get_data("/ro", false).await.unwrap().0[..], b"x");
}

/// Connects a session on member `a`, re-attaches it on member `b`, then writes on `a`'s
/// stale connection: `a` closes it without applying the write (Apache's SessionMoved
/// handling), while `b` serves the session.
async fn moved_session(ens: &Ensemble, a: usize, b: usize) {
    let (aa, ba) = (ens.client_addr(a).unwrap(), ens.client_addr(b).unwrap());
    moved_session_between(aa, ba).await;
}

/// The same between any two servers (ours or Apache's).
async fn moved_session_between(aa: std::net::SocketAddr, ba: std::net::SocketAddr) {
    let (a, b) = (aa.port(), ba.port());
    let mut on_a = RawClient::connect(aa).await;
    assert_eq!(
        on_a.call(create(&format!("/from-{a}"))).await.err(),
        ErrorCode::Ok
    );
    // A member that has not applied the client's last zxid yet refuses it (as Apache):
    // the client tries again.
    let mut attempt = 0;
    let (mut on_b, resp) = loop {
        match on_a.reconnect(ba).await {
            Ok(r) => break r,
            Err(e) if attempt < 50 => {
                attempt += 1;
                tracing::debug!("re-attach refused ({e}), retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("re-attach: {e}"),
        }
    };
    assert!(resp.timeout > 0, "revalidation failed: {resp:?}");
    assert_eq!(resp.session_id, on_a.session_id);

    let stale = format!("/stale-{a}-{b}");
    on_a.send(&create(&stale)).await;
    assert!(
        on_a.closed_within(Duration::from_secs(5)).await,
        "member {a} kept the moved session's connection"
    );
    assert_eq!(
        on_b.call(create(&format!("/on-{b}-{a}"))).await.err(),
        ErrorCode::Ok
    );
    assert_eq!(on_b.call(exists(&stale)).await.err(), ErrorCode::NoNode);
    // The session still belongs to b: its next write works too.
    assert_eq!(
        on_b.call(create(&format!("/again-{b}-{a}"))).await.err(),
        ErrorCode::Ok
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_move_between_members_and_the_old_connection_is_closed() {
    init_tracing();
    let ens = Ensemble::start(3).await.expect("ensemble");
    let leader = ens.wait_for_leader(T).await.expect("leader");
    let f: Vec<usize> = (0..3).filter(|i| *i != leader).collect();
    // Follower to follower, leader to follower, follower to leader.
    moved_session(&ens, f[0], f[1]).await;
    moved_session(&ens, leader, f[0]).await;
    moved_session(&ens, f[1], leader).await;

    // A wrong password is refused as expired, by followers and the leader alike.
    let owner = RawClient::connect(ens.client_addr(f[0]).unwrap()).await;
    for m in [f[1], leader] {
        let (_, resp) = RawClient::handshake(
            ens.client_addr(m).unwrap(),
            ConnectRequest {
                timeout: 4000,
                session_id: owner.session_id,
                passwd: vec![7u8; 16].into(),
                read_only: Some(false),
                ..Default::default()
            },
        )
        .await
        .expect("an answer");
        assert_eq!((resp.timeout, resp.session_id), (0, 0), "member {m}");
    }
    // A session the leader no longer knows is refused as expired by a follower.
    let gone = owner.session_id + 1_000;
    let (_, resp) = RawClient::handshake(
        ens.client_addr(f[1]).unwrap(),
        ConnectRequest {
            timeout: 4000,
            session_id: gone,
            passwd: zk_server::core::session::session_password(gone)
                .to_vec()
                .into(),
            read_only: Some(false),
            ..Default::default()
        },
    )
    .await
    .expect("an answer");
    assert_eq!(resp.timeout, 0);
}

/// The behaviour the test above expects is Apache 3.8's: checked against a real ensemble.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apache_ensemble_closes_a_moved_sessions_old_connection_too() {
    init_tracing();
    let apache = tokio::task::spawn_blocking(tests::apache::ApacheEnsemble::start)
        .await
        .expect("apache task")
        .expect("apache ensemble");
    let addr = |p: u16| std::net::SocketAddr::from(([127, 0, 0, 1], p));
    let ports: Vec<u16> = apache.nodes.iter().map(|n| n.client_port).collect();
    let leader = ports
        .iter()
        .copied()
        .find(|p| tests::apache::mode(*p).as_deref() == Some("leader"))
        .expect("apache leader");
    let f: Vec<u16> = ports.iter().copied().filter(|p| *p != leader).collect();
    moved_session_between(addr(f[0]), addr(f[1])).await;
    moved_session_between(addr(leader), addr(f[0])).await;
    moved_session_between(addr(f[1]), addr(leader)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zk_client_moves_its_session_to_another_member() {
    init_tracing();
    let ens = Ensemble::start(3).await.expect("ensemble");
    let leader = ens.wait_for_leader(T).await.expect("leader");
    let f = (leader + 1) % 3;
    let c = connect(&ens.client_addr(f).unwrap().to_string()).await;
    c.create("/e", b"", &Acl::open_unsafe(), CreateMode::Ephemeral)
        .await
        .unwrap();
    // Another client takes over the session on the leader: the first one's connection is
    // stale, its next write closes it, and the session (with its ephemeral) lives on.
    let mut moved = RawClient::handshake(
        ens.client_addr(leader).unwrap(),
        ConnectRequest {
            timeout: 10_000,
            session_id: c.session_id(),
            passwd: c.session_password().to_vec().into(),
            read_only: Some(false),
            ..Default::default()
        },
    )
    .await
    .expect("re-attach")
    .0;
    assert!(moved.timeout > 0);
    assert_eq!(moved.call(exists("/e")).await.err(), ErrorCode::Ok);
    let r = c
        .create(
            "/from-stale",
            b"",
            &Acl::open_unsafe(),
            CreateMode::Persistent,
        )
        .await;
    assert!(r.is_err(), "the stale connection wrote: {r:?}");
    assert_eq!(
        moved.call(exists("/from-stale")).await.err(),
        ErrorCode::NoNode
    );
}

fn keys(text: &str) -> Vec<&str> {
    text.lines()
        .map(|l| l.split(['\t', ':', '=']).next().unwrap_or(""))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_letter_words_on_members_have_apache_shapes() {
    init_tracing();
    let ens = Ensemble::start(3).await.expect("ensemble");
    let leader = ens.wait_for_leader(T).await.expect("leader");
    let follower = (leader + 1) % 3;
    let (lp, fp) = (port(&ens, leader), port(&ens, follower));
    let c = connect(&ens.client_addr(follower).unwrap().to_string()).await;
    c.create("/w", b"", &Acl::open_unsafe(), CreateMode::Persistent)
        .await
        .unwrap();
    c.get_data("/w", true).await.unwrap();

    for (p, mode) in [(lp, "leader"), (fp, "follower")] {
        let srvr = word(p, "srvr").await;
        let mut want = vec![
            "Zookeeper version",
            "Latency min/avg/max",
            "Received",
            "Sent",
            "Connections",
            "Outstanding",
            "Zxid",
            "Mode",
            "Node count",
        ];
        if mode == "leader" {
            want.push("Proposal sizes last/min/max");
        }
        assert_eq!(keys(&srvr), want, "{srvr}");
        assert!(srvr.contains(&format!("Mode: {mode}\n")), "{srvr}");
        assert!(srvr.contains("Node count: 6\n"), "{srvr}");
        let stat = word(p, "stat").await;
        assert!(stat.contains("Clients:\n") && stat.contains(&format!("Mode: {mode}\n")));
        assert_eq!(word(p, "ruok").await, "imok");
        assert_eq!(word(p, "isro").await, "rw");
        assert!(word(p, "envi").await.starts_with("Environment:\n"));
        assert!(word(p, "dirs").await.starts_with("datadir_size: "));
        assert_eq!(word(p, "crst").await, "Connection stats reset.\n");
        assert_eq!(word(p, "srst").await, "Server stats reset.\n");

        let conf = word(p, "conf").await;
        let conf_keys = keys(&conf);
        for k in [
            "clientPort",
            "serverId",
            "initLimit",
            "syncLimit",
            "electionAlg",
            "electionPort",
            "quorumPort",
            "peerType",
            "membership",
            "version",
        ] {
            assert!(conf_keys.contains(&k), "conf lacks {k}: {conf}");
        }
        assert_eq!(conf.matches("\nserver.").count(), 3, "{conf}");
        assert!(conf.contains(":participant;127.0.0.1:"), "{conf}");

        let mntr = word(p, "mntr").await;
        assert!(
            mntr.contains(&format!("zk_server_state\t{mode}\n")),
            "{mntr}"
        );
        assert!(
            mntr.contains(
                &format!("zk_peer_state\t{mode}ing - broadcast\n")
                    .replace("leadering", "leading")
                    .replace("followering", "following")
            ),
            "{mntr}"
        );
        assert!(mntr.contains("zk_quorum_size\t3\n"), "{mntr}");
        let leader_keys = [
            "zk_learners\t2\n",
            "zk_synced_followers\t2\n",
            "zk_synced_observers\t0\n",
            "zk_pending_syncs\t0\n",
        ];
        for k in leader_keys {
            assert_eq!(
                mntr.contains(k),
                mode == "leader",
                "{k} on the {mode}: {mntr}"
            );
        }
        let dump = word(p, "dump").await;
        let tracker = if mode == "leader" {
            "SessionTracker dump:\nSession Sets ("
        } else {
            "SessionTracker dump:\nGlobal Sessions(1):\n"
        };
        assert!(dump.starts_with(tracker), "{dump}");
        assert!(dump.contains("ephemeral nodes dump:\n"), "{dump}");
    }
    // The watch lives on the follower the client is connected to.
    let cons = word(fp, "cons").await;
    assert!(
        cons.contains(&format!("sid=0x{:x}", c.session_id())),
        "{cons}"
    );
    assert_eq!(
        word(fp, "wchs").await,
        "1 connections watching 1 paths\nTotal watches:1\n"
    );
    assert_eq!(
        word(fp, "wchp").await,
        format!("/w\n\t0x{:x}\n\n", c.session_id())
    );
    assert_eq!(
        word(fp, "wchc").await,
        format!("0x{:x}\n\t/w\n\n", c.session_id())
    );
    assert_eq!(
        word(lp, "wchs").await,
        "0 connections watching 0 paths\nTotal watches:0\n"
    );
}

/// Keys of a `key<TAB>value` / `key: value` / `key=value` report, without the lines whose
/// keys name members (`server.N`).
fn key_set(text: &str) -> std::collections::BTreeSet<String> {
    keys(text)
        .into_iter()
        .filter(|k| !k.is_empty() && !k.starts_with("server."))
        .map(str::to_string)
        .collect()
}

/// What a member answers, for the words whose shape does not depend on the traffic.
async fn shapes(port: u16) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for w in ["srvr", "stat", "mntr", "conf", "isro", "ruok", "dump"] {
        out.push((w, word(port, w).await));
    }
    out
}

/// Compares our member's answers with Apache's member in the same role: the same
/// `srvr` / `stat` / `conf` keys in the same order, `mntr` keys Apache's in its order
/// minus the documented omissions (`four_letter::mntr_omits`), the same `isro`,
/// `ruok` and the same session tracker header in `dump`.
fn same_shapes(role: &str, ours: &[(&str, String)], apache: &[(&str, String)]) {
    for ((w, o), (_, a)) in ours.iter().zip(apache) {
        match *w {
            "srvr" | "stat" | "conf" => assert_eq!(
                keys(o)
                    .into_iter()
                    .filter(|k| !k.starts_with("server.") && !k.starts_with(" /"))
                    .collect::<Vec<_>>(),
                keys(a)
                    .into_iter()
                    .filter(|k| !k.starts_with("server.") && !k.starts_with(" /"))
                    .collect::<Vec<_>>(),
                "{role} {w}:\nours:\n{o}\napache:\n{a}"
            ),
            "mntr" => {
                // Apache's keys in Apache's order, minus the documented omissions.
                let want: Vec<&str> = keys(a)
                    .into_iter()
                    .filter(|k| !k.is_empty() && !mntr_omits(k))
                    .collect();
                let got: Vec<&str> = keys(o).into_iter().filter(|k| !k.is_empty()).collect();
                assert_eq!(
                    got, want,
                    "{role} mntr keys vs Apache's minus the omissions"
                );
                let (ok, ak) = (key_set(o), key_set(a));
                for k in [
                    "zk_server_state",
                    "zk_peer_state",
                    "zk_quorum_size",
                    "zk_learners",
                    "zk_synced_followers",
                    "zk_synced_observers",
                    "zk_pending_syncs",
                ] {
                    assert_eq!(ok.contains(k), ak.contains(k), "{role} mntr {k}");
                }
                let state = |t: &str| {
                    t.lines()
                        .find(|l| l.starts_with("zk_server_state"))
                        .map(str::to_string)
                };
                assert_eq!(state(o), state(a), "{role} zk_server_state");
            }
            // Our read-only sessions are local, as Apache's with localSessionsEnabled (the
            // setting its read-only mode needs to create sessions): its dump then starts
            // with a "Local Session Sets" section that this Apache (without it) lacks.
            "dump" if role == "read-only" => {
                assert!(
                    o.starts_with("SessionTracker dump:\nLocal Session Sets ("),
                    "{o}"
                );
                assert!(
                    a.starts_with("SessionTracker dump:\nGlobal Sessions("),
                    "{a}"
                );
                assert!(o.contains("\nGlobal Sessions("), "{o}");
            }
            "dump" => {
                let head = |t: &str| {
                    t.lines()
                        .take(2)
                        .map(|l| l.split(['(', ' ']).next().unwrap_or("").to_string())
                        .collect::<Vec<_>>()
                };
                assert_eq!(head(o), head(a), "{role} dump:\nours:\n{o}\napache:\n{a}");
            }
            _ => assert_eq!(o, a, "{role} {w}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_letter_shapes_match_an_apache_ensemble() {
    init_tracing();
    let mut apache = tokio::task::spawn_blocking(|| {
        tests::apache::ApacheEnsemble::start_with(3, &["-Dreadonlymode.enabled=true"], &[])
    })
    .await
    .expect("apache task")
    .expect("apache ensemble");
    let mut ens = Ensemble::start(3).await.expect("ensemble");
    ens.set_read_only_mode(true);
    let leader = ens.wait_for_leader(T).await.expect("leader");

    let apache_ports: Vec<u16> = apache.nodes.iter().map(|n| n.client_port).collect();
    let mut apache_leader = None;
    let mut apache_follower = None;
    for p in &apache_ports {
        match tests::apache::mode(*p).as_deref() {
            Some("leader") => apache_leader = Some(*p),
            Some("follower") => apache_follower = Some(*p),
            _ => {}
        }
    }
    let (al, af) = (
        apache_leader.expect("apache leader"),
        apache_follower.expect("apache follower"),
    );
    let follower = (leader + 1) % 3;
    same_shapes(
        "leader",
        &shapes(port(&ens, leader)).await,
        &shapes(al).await,
    );
    same_shapes(
        "follower",
        &shapes(port(&ens, follower)).await,
        &shapes(af).await,
    );

    // Cut one member of each off: both turn read-only.
    let survivor = apache_ports
        .iter()
        .position(|p| *p == af)
        .expect("apache follower index");
    for (i, n) in apache.nodes.iter_mut().enumerate() {
        if i != survivor {
            n.kill();
        }
    }
    for i in (0..3).filter(|i| *i != follower) {
        ens.kill(i);
    }
    assert_eq!(wait_word(af, "isro", "ro", T * 2).await, "ro");
    assert_eq!(wait_word(port(&ens, follower), "isro", "ro", T).await, "ro");
    same_shapes(
        "read-only",
        &shapes(port(&ens, follower)).await,
        &shapes(af).await,
    );
}

/// The `zk-server` binary as Apache is run: `-Dreadonlymode.enabled=true` on every member
/// of a 3-process ensemble; the one left alone after two `kill -9`s serves read-only
/// clients, and turns read-write again when the others come back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_member_with_readonlymode_enabled_serves_read_only_clients() {
    init_tracing();
    let mut opts = tests::zk_processes::Options::members(3);
    opts.props = vec!["-Dreadonlymode.enabled=true".into()];
    opts.extra_cfg = "4lw.commands.whitelist=*\n".into();
    let mut ens = tests::zk_processes::ProcessEnsemble::start(opts)
        .await
        .expect("processes");
    let leader = ens.wait_for_leader(T).await.expect("leader");
    let w = connect(&ens.connect_string()).await;
    w.create("/bin-ro", b"v", &Acl::open_unsafe(), CreateMode::Persistent)
        .await
        .unwrap();
    w.close().await.unwrap();

    let survivor = (leader + 1) % 3;
    for i in (0..3).filter(|i| *i != survivor) {
        ens.kill9(i);
    }
    let mut isro = String::new();
    for _ in 0..150 {
        isro = ens.four_letter(survivor, "isro").await;
        if isro == "ro" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(isro, "ro", "{}", ens.last_run_log(survivor));
    assert!(ens
        .four_letter(survivor, "srvr")
        .await
        .contains("Mode: read-only\n"));
    let c = tokio::time::timeout(
        T,
        Client::builder(&ens.client_addr(survivor).to_string())
            .read_only(true)
            .session_timeout(Duration::from_secs(4))
            .connect(),
    )
    .await
    .expect("read-only connect in time")
    .expect("read-only connect");
    assert_eq!(c.state(), SessionState::ConnectedReadOnly);
    assert_eq!(&c.get_data("/bin-ro", false).await.unwrap().0[..], b"v");
    assert_eq!(
        c.set_data("/bin-ro", b"x", None).await,
        Err(Error::NotReadOnly)
    );

    for i in (0..3).filter(|i| *i != survivor) {
        ens.restart(i).expect("restart");
    }
    ens.wait_for_leader(T).await.expect("leader again");
    let mut mode = String::new();
    for _ in 0..100 {
        mode = ens.four_letter(survivor, "isro").await;
        if mode == "rw" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(mode, "rw");
}

/// A member cut off by a partition (not killed): read-only while isolated, stale reads
/// allowed, then back to read-write with the majority's writes once healed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolated_member_is_read_only_until_the_partition_heals() {
    init_tracing();
    let mut ens = Ensemble::start(3).await.expect("ensemble");
    ens.set_read_only_mode(true);
    let leader = ens.wait_for_leader(T).await.expect("leader");
    let cut = (leader + 1) % 3;
    let p = port(&ens, cut);
    ens.isolate(cut);
    assert_eq!(wait_word(p, "isro", "ro", T).await, "ro");

    // Only the cut member in the connect string: the client stays on it.
    let ro = tokio::time::timeout(
        T,
        Client::builder(&ens.client_addr(cut).unwrap().to_string())
            .read_only(true)
            .session_timeout(Duration::from_secs(10))
            .connect(),
    )
    .await
    .expect("read-only connect in time")
    .expect("read-only connect");
    assert_eq!(ro.state(), SessionState::ConnectedReadOnly);
    let majority: Vec<String> = (0..3)
        .filter(|i| *i != cut)
        .map(|i| ens.client_addr(i).unwrap().to_string())
        .collect();
    let w = connect(&majority.join(",")).await;
    w.create("/during", b"d", &Acl::open_unsafe(), CreateMode::Persistent)
        .await
        .expect("the majority writes");
    // The cut member serves what it had: the majority's write is not there.
    assert_eq!(ro.exists("/during", false).await.unwrap(), None);
    assert_eq!(
        ro.create("/x", b"", &Acl::open_unsafe(), CreateMode::Persistent)
            .await,
        Err(Error::NotReadOnly)
    );

    ens.heal();
    ro.wait_for_state(T, |s| s == SessionState::Connected)
        .await
        .expect("read-write after the heal");
    assert_eq!(word(p, "isro").await, "rw");
    ro.sync("/during").await.expect("sync");
    assert_eq!(&ro.get_data("/during", false).await.unwrap().0[..], b"d");
    ro.create("/after", b"", &Acl::open_unsafe(), CreateMode::Persistent)
        .await
        .expect("writes after the heal");
}

/// A session resumed on another follower asking a shorter timeout expires by the timeout
/// that member negotiated (the leader takes it from the revalidation and the learner
/// pings), not by the one it was created with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_resumed_on_a_follower_with_a_shorter_timeout_expires_by_it() {
    init_tracing();
    let ens = Ensemble::start(3).await.expect("ensemble");
    let leader = ens.wait_for_leader(T).await.expect("leader");
    let f1 = (leader + 1) % 3;
    let f2 = (leader + 2) % 3;
    let (a, b) = (ens.client_addr(f1).unwrap(), ens.client_addr(f2).unwrap());
    let (mut c, r) = RawClient::handshake(
        a,
        ConnectRequest {
            timeout: 8000,
            passwd: vec![0; 16].into(),
            read_only: Some(false),
            ..Default::default()
        },
    )
    .await
    .expect("session");
    assert_eq!(r.timeout, 8000);
    let eph = Request::Create(CreateRequest {
        path: "/short".into(),
        data: Some(Vec::new().into()),
        acl: Acl::open_unsafe(),
        flags: ProtoMode::Ephemeral.to_flags(),
    });
    assert_eq!(c.call(eph).await.err(), ErrorCode::Ok);
    let (session, passwd, last_zxid) = (c.session_id, c.passwd.clone(), c.last_zxid);
    drop(c);
    // Let the first follower's pings carrying this session's activity (with its 8 s
    // timeout) reach the leader first: as in Apache, the latest touch sets the timeout.
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Asks 10 ms on the other follower: clamped to the member's minimum (400 ms). It may
    // refuse until it has applied the client's last zxid: try again.
    let mut tries = 0;
    let (c2, r) = loop {
        match RawClient::handshake(
            b,
            ConnectRequest {
                timeout: 10,
                session_id: session,
                passwd: passwd.clone(),
                last_zxid_seen: last_zxid,
                read_only: Some(false),
                ..Default::default()
            },
        )
        .await
        {
            Ok(x) if x.1.timeout > 0 => break x,
            other if tries < 50 => {
                tries += 1;
                tracing::debug!("resume refused ({:?}), retrying", other.map(|x| x.1));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => panic!("resume: {:?}", other.map(|x| x.1)),
        }
    };
    assert_eq!((r.session_id, r.timeout), (session, 400));
    let resumed = std::time::Instant::now();
    // No pings from here on. The ephemeral goes with the session, long before 8 s.
    let watcher = connect(&ens.client_addr(leader).unwrap().to_string()).await;
    loop {
        if watcher
            .exists("/short", false)
            .await
            .expect("exists")
            .is_none()
        {
            break;
        }
        assert!(
            resumed.elapsed() < Duration::from_secs(5),
            "the session still lives {:?} after resuming with 400 ms",
            resumed.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(c2);
}

/// Moves a session created on `from` to `to` the way the Java client does: the
/// ConnectRequest with auth (when `with_auth`), SetWatches and reads right behind it in one
/// write. `to` must answer every request in xid order after the handshake, keep the
/// connection open, and fire the re-registered watch.
async fn pipelined_reconnect_between(
    from: std::net::SocketAddr,
    to: std::net::SocketAddr,
    with_auth: bool,
) {
    use zk_proto::watch::{EventType, SetWatches, SetWatches2};
    let tag = format!("{}-{}-{with_auth}", from.port(), to.port());
    let watched = format!("/pipelined-{tag}");
    let secret = format!("/pipelined-secret-{tag}");
    let mut owner = RawClient::connect(from).await;
    assert_eq!(
        owner.add_auth("digest", "pipe:pw").await.err(),
        ErrorCode::Ok
    );
    assert_eq!(owner.call(create(&watched)).await.err(), ErrorCode::Ok);
    // Readable only by connections authenticated as pipe:pw.
    assert_eq!(
        owner
            .create_acl(&secret, zk_proto::Acl::creator_all())
            .await
            .err(),
        ErrorCode::Ok
    );
    // `to` refuses a client that saw a zxid it has not applied (as Apache): wait for it,
    // so that a closed connection below can only mean the pipelining was refused.
    let mut probe = RawClient::connect(to).await;
    let deadline = tokio::time::Instant::now() + T;
    while probe.exists(&secret, false).await.err() != ErrorCode::Ok {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{to} never applied {secret}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let get = |path: &str| {
        Request::GetData(PathWatchRequest {
            path: path.into(),
            watch: false,
        })
    };
    let mut pipelined = Vec::new();
    if with_auth {
        pipelined.push((
            zk_proto::xid::AUTH,
            Request::Auth(zk_proto::AuthPacket {
                auth_type: 0,
                scheme: "digest".into(),
                auth: b"pipe:pw".to_vec().into(),
            }),
        ));
        pipelined.push((
            zk_proto::xid::SET_WATCHES,
            Request::SetWatches2(SetWatches2 {
                relative_zxid: owner.last_zxid,
                data_watches: vec![watched.clone()],
                exist_watches: Vec::new(),
                child_watches: Vec::new(),
                persistent_watches: Vec::new(),
                persistent_recursive_watches: Vec::new(),
            }),
        ));
        pipelined.push((1, get(&watched)));
        // Only readable if the auth behind the handshake ran before it.
        pipelined.push((2, get(&secret)));
    } else {
        pipelined.push((
            zk_proto::xid::SET_WATCHES,
            Request::SetWatches(SetWatches {
                relative_zxid: owner.last_zxid,
                data_watches: vec![watched.clone()],
                exist_watches: Vec::new(),
                child_watches: Vec::new(),
            }),
        ));
        pipelined.push((1, exists(&watched)));
        pipelined.push((2, get(&watched)));
    }
    let req = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: owner.last_zxid,
        timeout: owner.timeout,
        session_id: owner.session_id,
        passwd: owner.passwd.clone(),
        read_only: Some(false),
    };
    let (mut moved, resp) = RawClient::handshake_pipelined(to, req, &pipelined)
        .await
        .unwrap_or_else(|e| panic!("{to} did not answer the pipelined handshake: {e}"));
    assert_eq!(
        (resp.session_id, resp.timeout > 0),
        (owner.session_id, true),
        "{to} did not keep the session: {resp:?}"
    );
    for (xid, r) in &pipelined {
        let reply = moved
            .try_recv()
            .await
            .unwrap_or_else(|e| panic!("{to}: no reply to {:?} (xid {xid}): {e}", r.opcode()));
        assert_eq!(
            (reply.header.xid, reply.err()),
            (*xid, ErrorCode::Ok),
            "{to}: reply to {:?}",
            r.opcode()
        );
        if let Request::GetData(g) = r {
            if g.path == watched {
                assert_eq!(reply.data().as_deref(), Some(&b"x"[..]));
            }
        }
    }
    // The watch registered by SetWatches fires on the new member.
    let mut writer = RawClient::connect(from).await;
    assert_eq!(writer.set(&watched, "v1", -1).await.err(), ErrorCode::Ok);
    let ev = moved
        .event(T)
        .await
        .unwrap_or_else(|| panic!("{to}: the re-registered watch on {watched} never fired"));
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (EventType::NodeDataChanged, watched.as_str())
    );
    assert_eq!(
        moved.ping().await.err(),
        ErrorCode::Ok,
        "{to} closed the moved session"
    );
}

/// The leader and a follower of an Apache ensemble, as socket addresses.
async fn apache_roles(
    apache: &tests::apache::ApacheEnsemble,
) -> (std::net::SocketAddr, Vec<std::net::SocketAddr>) {
    let addr = |p: u16| std::net::SocketAddr::from(([127, 0, 0, 1], p));
    let ports: Vec<u16> = apache.nodes.iter().map(|n| n.client_port).collect();
    let modes = tokio::task::spawn_blocking({
        let ports = ports.clone();
        move || {
            ports
                .iter()
                .map(|p| tests::apache::mode(*p))
                .collect::<Vec<_>>()
        }
    })
    .await
    .expect("srvr task");
    let leader = ports
        .iter()
        .zip(&modes)
        .find(|(_, m)| m.as_deref() == Some("leader"))
        .map(|(p, _)| *p)
        .expect("apache leader");
    let followers = ports
        .iter()
        .copied()
        .filter(|p| *p != leader)
        .map(addr)
        .collect();
    (addr(leader), followers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_pipelined_behind_a_reconnect_to_a_follower_wait_for_revalidation() {
    init_tracing();
    let ens = Ensemble::start(3).await.expect("ensemble");
    let leader = ens.wait_for_leader(T).await.expect("leader");
    let addr = |i: usize| ens.client_addr(i).unwrap();
    let (f1, f2) = (addr((leader + 1) % 3), addr((leader + 2) % 3));
    for with_auth in [false, true] {
        // Leader to follower, and follower to follower.
        pipelined_reconnect_between(addr(leader), f1, with_auth).await;
        pipelined_reconnect_between(f1, f2, with_auth).await;
    }
}

/// The behaviour the test above expects is Apache 3.8's: checked against a real ensemble.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apache_followers_answer_requests_pipelined_behind_a_reconnect_too() {
    init_tracing();
    let apache = tokio::task::spawn_blocking(tests::apache::ApacheEnsemble::start)
        .await
        .expect("apache task")
        .expect("apache ensemble");
    let (leader, f) = apache_roles(&apache).await;
    for with_auth in [false, true] {
        pipelined_reconnect_between(leader, f[0], with_auth).await;
        pipelined_reconnect_between(f[0], f[1], with_auth).await;
    }
}

/// Session ids a member lists in `cons`.
async fn sessions_on(port: u16) -> std::collections::BTreeSet<i64> {
    word(port, "cons")
        .await
        .split("sid=0x")
        .skip(1)
        .filter_map(|s| {
            let hex: String = s.chars().take_while(|c| c.is_ascii_hexdigit()).collect();
            u64::from_str_radix(&hex, 16).ok().map(|v| v as i64)
        })
        .collect()
}

/// `zookeeper-client` sessions (auth and a data watch each) given only the two followers:
/// when one follower dies its sessions must land on the other, which they pick, although
/// they pipeline auth and SetWatches behind the handshake. A follower closing them while
/// it revalidates would leave them bouncing between a dead member and a closing one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zookeeper_client_sessions_with_watches_move_to_the_follower_they_pick() {
    init_tracing();
    const N: usize = 50;
    let mut ens = Ensemble::start(3).await.expect("ensemble");
    let leader = ens.wait_for_leader(T).await.expect("leader");
    let (victim, other) = ((leader + 1) % 3, (leader + 2) % 3);
    let hosts = format!(
        "{},{}",
        ens.client_addr(victim).unwrap(),
        ens.client_addr(other).unwrap()
    );
    let setup = connect(&ens.client_addr(leader).unwrap().to_string()).await;
    setup
        .create("/moving", b"0", &Acl::open_unsafe(), CreateMode::Persistent)
        .await
        .unwrap();
    let mut clients = Vec::new();
    for _ in 0..N {
        let c = zookeeper_client::Client::connector()
            .with_session_timeout(Duration::from_secs(10))
            .connect(&hosts)
            .await
            .expect("zookeeper-client session");
        // Added once connected (not pipelined behind the first handshake): re-sent
        // behind every later one.
        c.auth("digest", b"moving:pw").await.expect("auth");
        let (_, _, watch) = c.get_and_watch_data("/moving").await.expect("watch");
        clients.push((c, watch));
    }
    let ids: Vec<i64> = clients.iter().map(|(c, _)| c.session_id().0).collect();
    let moving: Vec<i64> = {
        let on_victim = sessions_on(port(&ens, victim)).await;
        ids.iter()
            .copied()
            .filter(|s| on_victim.contains(s))
            .collect()
    };
    assert!(!moving.is_empty(), "no session started on member {victim}");

    ens.kill(victim);
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let on_other = sessions_on(port(&ens, other)).await;
        let missing: Vec<String> = ids
            .iter()
            .filter(|s| !on_other.contains(s))
            .map(|s| format!("{s:#x}"))
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {} sessions moving off member {victim} never settled on member {other}: \
             {missing:?}",
            missing.len(),
            moving.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The watches came along with the sessions (SetWatches after auth, on `other`).
    setup.set_data("/moving", b"1", None).await.unwrap();
    for (i, (_, watch)) in clients.into_iter().enumerate() {
        let ev = tokio::time::timeout(T, watch.changed())
            .await
            .unwrap_or_else(|_| panic!("session {:#x}: the watch never fired", ids[i]));
        assert_eq!(
            ev.event_type,
            zookeeper_client::EventType::NodeDataChanged,
            "session {:#x}",
            ids[i]
        );
    }
    assert!(
        sessions_on(port(&ens, leader))
            .await
            .iter()
            .all(|s| !ids.contains(s)),
        "a session fell through to the leader"
    );
}

/// zk-client's seeded host list decides where a session goes: sessions with watches on a
/// member that dies land on the member their own list draws after the server closed them
/// (`HostList::scatter`, then round-robin past the dead one), follower or leader, and
/// keep their watches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zk_client_sessions_with_watches_land_on_the_member_their_list_draws() {
    use zk_client::hosts::{ConnectString, HostList};
    init_tracing();
    const N: usize = 50;
    let mut ens = Ensemble::start(3).await.expect("ensemble");
    let leader = ens.wait_for_leader(T).await.expect("leader");
    let victim = (leader + 1) % 3;
    let cs = ens.connect_string();
    let hosts = ConnectString::parse(&cs).expect("connect string").hosts;
    let victim_host = ens.client_addr(victim).unwrap().to_string();
    // Seeds whose shuffled list starts on the victim; the walk after the scatter, past
    // the victim, gives the member each client must land on.
    let picks: Vec<(u64, String)> = (0u64..)
        .filter_map(|seed| {
            let mut list = HostList::new(hosts.clone(), seed);
            let (first, _) = list.next_host()?;
            if first.to_string() != victim_host {
                return None;
            }
            list.scatter();
            let lands = std::iter::from_fn(|| list.next_host())
                .map(|(h, _)| h.to_string())
                .find(|h| *h != victim_host)?;
            Some((seed, lands))
        })
        .take(N)
        .collect();
    let setup = connect(&ens.client_addr(leader).unwrap().to_string()).await;
    setup
        .create("/picked", b"0", &Acl::open_unsafe(), CreateMode::Persistent)
        .await
        .unwrap();
    let mut clients = Vec::new();
    for (seed, _) in &picks {
        let c = tokio::time::timeout(
            T,
            Client::builder(&cs)
                .seed(*seed)
                .session_timeout(Duration::from_secs(10))
                .auth("digest", "picked:pw")
                .connect(),
        )
        .await
        .expect("connect in time")
        .expect("connect");
        assert_eq!(
            c.connected_host().map(|h| h.to_string()),
            Some(victim_host.clone())
        );
        let (_, _, watch) = c.get_data_watched("/picked").await.expect("watch");
        clients.push((c, watch));
    }
    ens.kill(victim);
    let deadline = tokio::time::Instant::now() + T;
    for ((c, _), (_, want)) in clients.iter().zip(&picks) {
        while c.state() != SessionState::Connected
            || c.connected_host().map(|h| h.to_string()).as_deref() == Some(&victim_host)
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "session {:#x} did not reconnect",
                c.session_id()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            c.connected_host().map(|h| h.to_string()).as_deref(),
            Some(want.as_str()),
            "session {:#x} did not land on the member it picked",
            c.session_id()
        );
    }
    setup.set_data("/picked", b"1", None).await.unwrap();
    for (c, watch) in clients {
        let ev = tokio::time::timeout(T, watch)
            .await
            .unwrap_or_else(|_| panic!("session {:#x}: the watch never fired", c.session_id()))
            .expect("watch event");
        assert_eq!(ev.path, "/picked");
    }
}

/// A new session's handshake with auth and a read pipelined behind it (as
/// `zookeeper-client` sends `with_auth` credentials): the ConnectResponse comes first,
/// then the replies in order.
async fn new_session_with_pipelined_auth(addr: std::net::SocketAddr) {
    let pipelined = [
        (
            zk_proto::xid::AUTH,
            Request::Auth(zk_proto::AuthPacket {
                auth_type: 0,
                scheme: "digest".into(),
                auth: b"fresh:pw".to_vec().into(),
            }),
        ),
        (1, exists("/")),
    ];
    let req = ConnectRequest {
        timeout: 4000,
        passwd: vec![0u8; 16].into(),
        read_only: Some(false),
        ..Default::default()
    };
    let (mut c, resp) = RawClient::handshake_pipelined(addr, req, &pipelined)
        .await
        .unwrap_or_else(|e| panic!("{addr}: no ConnectResponse first: {e}"));
    assert!(resp.timeout > 0 && resp.session_id != 0, "{addr}: {resp:?}");
    for (xid, _) in &pipelined {
        let r = c
            .try_recv()
            .await
            .unwrap_or_else(|e| panic!("{addr}: no reply to xid {xid}: {e}"));
        assert_eq!((r.header.xid, r.err()), (*xid, ErrorCode::Ok), "{addr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_pipelined_behind_a_new_session_is_answered_after_the_handshake() {
    init_tracing();
    let ens = Ensemble::start(3).await.expect("ensemble");
    ens.wait_for_leader(T).await.expect("leader");
    for i in 0..3 {
        new_session_with_pipelined_auth(ens.client_addr(i).unwrap()).await;
    }
    let apache = tokio::task::spawn_blocking(tests::apache::ApacheEnsemble::start)
        .await
        .expect("apache task")
        .expect("apache ensemble");
    let (leader, f) = apache_roles(&apache).await;
    for a in [leader, f[0], f[1]] {
        new_session_with_pipelined_auth(a).await;
    }
}

/// Waits until `addr` grants sessions: a member reports its role in `srvr` before it has
/// synced with its leader, and refuses clients until then.
async fn accepts_sessions(addr: std::net::SocketAddr) {
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let hello = ConnectRequest {
            timeout: 4000,
            passwd: vec![0u8; 16].into(),
            read_only: Some(false),
            ..Default::default()
        };
        match RawClient::handshake(addr, hello).await {
            Ok((c, r)) if r.timeout > 0 => {
                c.close().await;
                return;
            }
            other => assert!(
                tokio::time::Instant::now() < deadline,
                "{addr} grants no session: {:?}",
                other.map(|(_, r)| r)
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The client port of the Apache member in `mode` ("leader" or "follower").
fn apache_member(apache: &tests::apache::ApacheEnsemble, mode: &str) -> std::net::SocketAddr {
    let n = apache
        .nodes
        .iter()
        .find(|n| tests::apache::mode(n.client_port).as_deref() == Some(mode))
        .unwrap_or_else(|| panic!("no apache {mode}"));
    n.address().parse().expect("address")
}

/// Requests with unknown or server-only opcodes (and the other odd requests of
/// `interop_side_by_side_server`) get the same answers and disconnects from our leader and
/// follower as from Apache's: learners forward some opcodes to the leader, so both roles
/// are checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_requests_like_an_apache_ensemble() {
    init_tracing();
    let apache = tokio::task::spawn_blocking(tests::apache::ApacheEnsemble::start)
        .await
        .expect("apache task")
        .expect("apache ensemble");
    let ens = Ensemble::start(3).await.expect("ensemble");
    let leader = ens.wait_for_leader(T).await.expect("leader");
    let follower = (leader + 1) % 3;
    let ours = |i: usize| ens.client_addr(i).expect("member");
    let (al, af) = tokio::task::block_in_place(|| {
        (
            apache_member(&apache, "leader"),
            apache_member(&apache, "follower"),
        )
    });
    for a in [al, af, ours(leader), ours(follower)] {
        accepts_sessions(a).await;
    }

    // Apache proposes a bare check as a txn its followers cannot read ("Unsupported Txn
    // with type=13"): they drop out, the quorum is lost and every connection to the
    // ensemble closes, and it did not re-form within 30 s when tried (the txn stays in
    // the leader's log, and followers fail on it again as they sync).
    // That case therefore runs last, once the others are answered, on both roles at once
    // (either copy alone takes the ensemble down, so each sees the same thing).
    let (breaker, cases): (Vec<_>, Vec<_>) = server_support::odd_cases()
        .into_iter()
        .partition(|c| c.0 == server_support::BARE_CHECK);
    let run = |addr, cases: Vec<server_support::OddRequest>| {
        futures::future::join_all(
            cases
                .into_iter()
                .map(move |c| server_support::odd_request(addr, c)),
        )
    };
    let (theirs_l, theirs_f, mine_l, mine_f) = tokio::join!(
        run(al, cases.clone()),
        run(af, cases.clone()),
        run(ours(leader), cases.clone()),
        run(ours(follower), cases.clone()),
    );
    eprintln!("apache leader: {theirs_l:#?}\napache follower: {theirs_f:#?}");
    assert_eq!(mine_l, theirs_l, "leader");
    assert_eq!(mine_f, theirs_f, "follower");

    // The breaker: every session is open before either Apache member sees it, so neither
    // connect races the quorum loss the other one causes.
    let [breaker] = <[_; 1]>::try_from(breaker).expect("one bare check case");
    let (cal, caf, cml, cmf) = tokio::join!(
        RawClient::connect(al),
        RawClient::connect(af),
        RawClient::connect(ours(leader)),
        RawClient::connect(ours(follower)),
    );
    let (theirs_l, theirs_f, mine_l, mine_f) = tokio::join!(
        server_support::odd_request_on(cal, breaker.clone()),
        server_support::odd_request_on(caf, breaker.clone()),
        server_support::odd_request_on(cml, breaker.clone()),
        server_support::odd_request_on(cmf, breaker),
    );
    eprintln!("apache bare check: leader {theirs_l}, follower {theirs_f}");
    assert_eq!(mine_l, theirs_l, "leader, bare check");
    assert_eq!(mine_f, theirs_f, "follower, bare check");
    // Ours refuses the request instead of replicating it: the quorum stays.
    assert_eq!(ens.wait_for_leader(T).await, Some(leader));
}

/// A `mntr` value as a number.
fn mntr_num(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('\t'))
        .unwrap_or_else(|| panic!("mntr lacks {key}:\n{text}"))
        .parse()
        .unwrap_or_else(|e| panic!("{key}: {e}"))
}

/// `mntr` counts the quorum's work as Apache's `ServerMetrics` do: the leader its commits
/// (each timed to its quorum of acks), the sessions learners asked it to revalidate and
/// the one time it became available; followers the proposals and commits they received,
/// their sync with the leader and their own time unavailable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mntr_counts_the_quorums_work_on_each_member() {
    init_tracing();
    let ens = Ensemble::start(3).await.expect("ensemble");
    let leader = ens.wait_for_leader(T).await.expect("leader");
    let f: Vec<usize> = (0..3).filter(|i| *i != leader).collect();
    for &m in &f {
        let srvr = wait_word(port(&ens, m), "isro", "rw", T).await;
        assert_eq!(srvr, "rw", "member {m} serves");
    }
    let mut c = RawClient::connect(ens.client_addr(leader).unwrap()).await;
    for i in 0..20 {
        assert_eq!(c.call(create(&format!("/q{i}"))).await.err(), ErrorCode::Ok);
    }
    // A session moving to a follower is revalidated by the leader.
    moved_session(&ens, leader, f[0]).await;

    let lm = word(port(&ens, leader), "mntr").await;
    let commits = mntr_num(&lm, "zk_commit_count");
    assert!(
        commits >= 21,
        "20 creates and a session at least: {commits}"
    );
    assert_eq!(mntr_num(&lm, "zk_cnt_quorum_ack_latency"), commits);
    assert!(mntr_num(&lm, "zk_revalidate_count") >= 1, "{lm}");
    assert_eq!(mntr_num(&lm, "zk_cnt_leader_unavailable_time"), 1);
    assert_eq!(mntr_num(&lm, "zk_cnt_unavailable_time"), 1);
    assert_eq!(mntr_num(&lm, "zk_cnt_follower_sync_time"), 0);
    assert_eq!(mntr_num(&lm, "zk_learner_proposal_received_count"), 0);
    for &m in &f {
        // The last COMMIT may still be on its way.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let fm = loop {
            let fm = word(port(&ens, m), "mntr").await;
            let (p, c) = (
                mntr_num(&fm, "zk_learner_proposal_received_count"),
                mntr_num(&fm, "zk_learner_commit_received_count"),
            );
            if (p == c && c >= 20) || tokio::time::Instant::now() > deadline {
                break fm;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let received = mntr_num(&fm, "zk_learner_commit_received_count");
        assert_eq!(
            mntr_num(&fm, "zk_learner_proposal_received_count"),
            received,
            "member {m}: every proposal it received was committed"
        );
        assert!(received >= 20, "member {m}: {received}");
        assert!(received <= commits, "member {m}: {received} of {commits}");
        assert_eq!(mntr_num(&fm, "zk_commit_count"), 0);
        assert_eq!(mntr_num(&fm, "zk_cnt_follower_sync_time"), 1, "member {m}");
        assert_eq!(mntr_num(&fm, "zk_cnt_unavailable_time"), 1, "member {m}");
        assert_eq!(mntr_num(&fm, "zk_cnt_leader_unavailable_time"), 0);
        assert_eq!(mntr_num(&fm, "zk_cnt_quorum_ack_latency"), 0);
    }
    // srst starts them again.
    word(port(&ens, leader), "srst").await;
    let lm = word(port(&ens, leader), "mntr").await;
    assert_eq!(mntr_num(&lm, "zk_cnt_quorum_ack_latency"), 0);
    assert_eq!(mntr_num(&lm, "zk_cnt_unavailable_time"), 0);
}

/// A handshake asking `timeout` ms for `session` (0: a new one).
async fn hello(
    addr: std::net::SocketAddr,
    session: i64,
    timeout: i32,
) -> (Option<RawClient>, zk_proto::ConnectResponse) {
    let req = ConnectRequest {
        timeout,
        session_id: session,
        passwd: match session {
            0 => vec![0u8; 16].into(),
            s => zk_server::core::session::session_password(s)
                .to_vec()
                .into(),
        },
        read_only: Some(false),
        ..Default::default()
    };
    match RawClient::handshake(addr, req).await {
        Ok((c, r)) => (Some(c), r),
        Err(e) => panic!("handshake with {addr}: {e}"),
    }
}

/// `localSessionsEnabled=true` as users of it see it, on any ensemble whose leader and
/// two followers are given: a session opened on a follower is local there (it cannot
/// move, `zk_local_sessions` counts it), it reads and writes, an ephemeral node upgrades it
/// to a global session (which then moves), a close of a local session needs no txn, and a
/// local session expires on its member. Returns what happened, step by step.
async fn local_session_story(
    leader: std::net::SocketAddr,
    f1: std::net::SocketAddr,
    f2: std::net::SocketAddr,
    tag: &str,
) -> Vec<String> {
    let mut story = Vec::new();
    let local = |m: &str| -> u64 { mntr_num(m, "zk_local_sessions") };
    let (c, r) = hello(f1, 0, 10_000).await;
    let mut c = c.expect("session");
    let sid = r.session_id;
    story.push(format!("opened: timeout {}", r.timeout));
    story.push(format!(
        "local on f1: {}",
        local(&word(f1.port(), "mntr").await)
    ));
    let p = format!("/ls-{tag}");
    story.push(format!(
        "create persistent: {:?}",
        c.create(&p, "x", ProtoMode::Persistent).await.err()
    ));
    story.push(format!("exists: {:?}", c.exists(&p, false).await.err()));
    // Not known anywhere else: the move is refused as expired.
    let (_, moved) = hello(f2, sid, 10_000).await;
    story.push(format!(
        "local session moved to f2: timeout {}",
        moved.timeout
    ));
    story.push(format!(
        "still served on f1: {:?}",
        c.exists("/", false).await.err()
    ));
    // An ephemeral node makes it global.
    let e = format!("/ls-eph-{tag}");
    story.push(format!(
        "create ephemeral: {:?}",
        c.create(&e, "", ProtoMode::Ephemeral).await.err()
    ));
    let mut on_leader = RawClient::connect(leader).await;
    let seen = on_leader.exists(&e, false).await;
    let owner = (seen.err() == ErrorCode::Ok).then(|| seen.stat().ephemeral_owner);
    story.push(format!(
        "owner on the leader is the session: {}",
        owner == Some(sid)
    ));
    story.push(format!(
        "local on f1 after upgrade: {}",
        local(&word(f1.port(), "mntr").await)
    ));
    let (moved_c, moved) = hello(f2, sid, 10_000).await;
    story.push(format!("global session moved to f2: {}", moved.timeout > 0));
    let mut moved_c = moved_c.expect("moved");
    story.push(format!(
        "ephemeral seen on f2: {:?}",
        moved_c.exists(&e, false).await.err()
    ));

    // A local session's close: answered Ok, no txn (the leader's zxid stays).
    let zxid_before = on_leader.exists("/", false).await.header.zxid;
    let (c2, _) = hello(f1, 0, 10_000).await;
    let reply = c2.expect("second session").close().await;
    story.push(format!("local close: {:?}", reply.err()));
    let zxid_after = on_leader.exists("/", false).await.header.zxid;
    story.push(format!("close made a txn: {}", zxid_after != zxid_before));

    // A local session that stops pinging expires on its member, which closes it.
    let (c3, r3) = hello(f1, 0, 1).await;
    let mut c3 = c3.expect("third session");
    let wait = Duration::from_millis(u64::try_from(r3.timeout).unwrap() * 3 + 5_000);
    story.push(format!(
        "idle local session closed: {}",
        c3.closed_within(wait).await
    ));
    story.push(format!(
        "local on f1 at the end: {}",
        local(&word(f1.port(), "mntr").await)
    ));
    story
}

/// Local sessions behave on zk-server members exactly as on Apache 3.8 members with
/// `localSessionsEnabled=true` (the story above, run on both side by side).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_sessions_behave_as_apaches() {
    init_tracing();
    let apache = tokio::task::spawn_blocking(|| {
        tests::apache::ApacheEnsemble::start_with(
            3,
            &[],
            &[
                "localSessionsEnabled=true",
                "localSessionsUpgradingEnabled=true",
            ],
        )
    })
    .await
    .expect("apache task")
    .expect("apache ensemble");
    let ens = Ensemble::start_with_core(3, |s| {
        s.local_sessions = true;
        s.local_sessions_upgrading = true;
    })
    .await
    .expect("ensemble");
    let leader = ens.wait_for_leader(T).await.expect("leader");
    for m in 0..3 {
        assert_eq!(wait_word(port(&ens, m), "isro", "rw", T).await, "rw");
    }
    let f: Vec<usize> = (0..3).filter(|i| *i != leader).collect();
    let addr = |p: u16| -> std::net::SocketAddr { format!("127.0.0.1:{p}").parse().unwrap() };
    let mut roles = std::collections::BTreeMap::new();
    for n in &apache.nodes {
        let mode = tests::apache::mode(n.client_port).unwrap_or_default();
        roles
            .entry(mode)
            .or_insert_with(Vec::new)
            .push(n.client_port);
    }
    let (al, af) = (&roles["leader"], &roles["follower"]);
    let theirs = local_session_story(addr(al[0]), addr(af[0]), addr(af[1]), "a").await;
    let ours = local_session_story(
        ens.client_addr(leader).unwrap(),
        ens.client_addr(f[0]).unwrap(),
        ens.client_addr(f[1]).unwrap(),
        "z",
    )
    .await;
    // Timeouts are negotiated from each side's tickTime; the rest must match.
    let without_timeout = |s: &[String]| -> Vec<String> { s[1..].to_vec() };
    assert_eq!(without_timeout(&ours), without_timeout(&theirs));
    assert_eq!(ours[1], "local on f1: 1", "{ours:#?}");
    assert_eq!(ours[5], "still served on f1: Ok", "{ours:#?}");
    assert!(
        ours.contains(&"local on f1 after upgrade: 0".to_string()),
        "{ours:#?}"
    );
    assert!(
        ours.contains(&"close made a txn: false".to_string()),
        "{ours:#?}"
    );
    assert!(
        ours.contains(&"idle local session closed: true".to_string()),
        "{ours:#?}"
    );
}

/// With `localSessionsUpgradingEnabled=false`, a local session's ephemeral create fails
/// with EphemeralOnLocalSession (-120) and the session stays local and served; a session
/// opened on the leader is local too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_sessions_without_upgrading_refuse_ephemerals() {
    init_tracing();
    let ens = Ensemble::start_with_core(3, |s| {
        s.local_sessions = true;
        s.local_sessions_upgrading = false;
    })
    .await
    .expect("ensemble");
    let leader = ens.wait_for_leader(T).await.expect("leader");
    for m in 0..3 {
        assert_eq!(wait_word(port(&ens, m), "isro", "rw", T).await, "rw");
        let (c, _) = hello(ens.client_addr(m).unwrap(), 0, 10_000).await;
        let mut c = c.expect("session");
        assert_eq!(
            c.create(&format!("/e{m}"), "", ProtoMode::Ephemeral)
                .await
                .err(),
            ErrorCode::EphemeralOnLocalSession,
            "member {m} (leader {leader})"
        );
        assert_eq!(
            c.create(&format!("/p{m}"), "", ProtoMode::Persistent)
                .await
                .err(),
            ErrorCode::Ok
        );
        let mntr = word(port(&ens, m), "mntr").await;
        assert_eq!(mntr_num(&mntr, "zk_local_sessions"), 1, "member {m}");
        assert_eq!(mntr_num(&mntr, "zk_global_sessions"), 0, "member {m}");
    }
}

/// A handshake that reaches a member while it cannot serve (here: cut off, then healed)
/// waits for it to serve and is answered on the same connection, as soon as it serves;
/// Apache closes it at once and the client backs off and retries. Past the grace period
/// (max(2 s, tickTime) after the member stopped serving) a cut-off member closes new
/// handshakes at once, as Apache does, so clients move on to members that serve.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handshake_waits_for_the_member_to_serve_within_the_grace_period() {
    init_tracing();
    let mut ens = Ensemble::start(3).await.expect("ensemble");
    let leader = ens.wait_for_leader(T).await.expect("leader");
    let cut = (leader + 1) % 3;
    let addr = ens.client_addr(cut).expect("member");
    let not_serving = "This ZooKeeper instance is not currently serving requests\n";
    let handshake = ConnectRequest {
        timeout: 10_000,
        passwd: vec![0u8; 16].into(),
        ..Default::default()
    };

    ens.isolate(cut);
    assert_eq!(
        wait_word(addr.port(), "srvr", not_serving, T).await,
        not_serving
    );
    let waiting = tokio::spawn(tests::raw::RawClient::handshake(addr, handshake.clone()));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiting.is_finished(), "held, neither answered nor closed");
    let healed = std::time::Instant::now();
    ens.heal();
    let (mut c, resp) = tokio::time::timeout(T, waiting)
        .await
        .expect("answered in time")
        .expect("task")
        .expect("answered, not closed");
    let waited = healed.elapsed();
    assert!(resp.timeout > 0, "a session: {resp:?}");
    assert_ne!(
        word(addr.port(), "srvr").await,
        not_serving,
        "it serves now"
    );
    let r = c.call(create("/after-heal")).await;
    assert_eq!(r.err(), ErrorCode::Ok, "the session works");
    eprintln!("handshake answered {waited:?} after the heal");

    // Cut off past the grace period: closed at once.
    ens.isolate(cut);
    assert_eq!(
        wait_word(addr.port(), "srvr", not_serving, T).await,
        not_serving
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let asked = std::time::Instant::now();
    let refused = tokio::time::timeout(
        Duration::from_secs(5),
        tests::raw::RawClient::handshake(addr, handshake.clone()),
    )
    .await
    .expect("not held past the grace period");
    assert!(refused.is_err(), "closed, as Apache does");
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "{:?}",
        asked.elapsed()
    );
    ens.heal();
}
