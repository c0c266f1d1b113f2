//! The same request sequence against Apache ZooKeeper 3.8 and against our server, over raw
//! frames: error codes, bodies and Stats must be identical (zxids included, since both start
//! fresh; only times and session-dependent owners are masked). Four-letter words must have
//! Apache's shapes.

mod server_support;

use std::collections::BTreeSet;
use std::net::SocketAddr;

use bytes::Bytes;
use server_support::*;
use tests::apache::ApacheServer;
use zk_proto::ops::*;
use zk_proto::watch::{AddWatchRequest, RemoveWatchesRequest};
use zk_proto::{
    Acl, AddWatchMode, CreateMode, MultiOp, MultiRequest, OpCode, OpResult, Perms, Request,
    Response, Stat, WatcherType,
};

fn mask(s: &Stat) -> Stat {
    Stat {
        ctime: 0,
        mtime: 0,
        ephemeral_owner: if s.ephemeral_owner != 0 { 1 } else { 0 },
        ..s.clone()
    }
}

fn normalize(body: &Response) -> String {
    let b = match body.clone() {
        Response::Create2(mut c) => {
            c.stat = mask(&c.stat);
            Response::Create2(c)
        }
        Response::Stat(mut s) => {
            s.stat = mask(&s.stat);
            Response::Stat(s)
        }
        Response::GetData(mut d) => {
            d.stat = mask(&d.stat);
            Response::GetData(d)
        }
        // Children are compared in server order: ours reproduces Apache's set order.
        Response::GetChildren2(mut c) => {
            c.stat = mask(&c.stat);
            Response::GetChildren2(c)
        }
        Response::GetAcl(mut a) => {
            a.stat = mask(&a.stat);
            Response::GetAcl(a)
        }
        Response::Multi(mut m) => {
            for r in m.results.iter_mut() {
                match r {
                    OpResult::Create2(_, s) | OpResult::SetData(s) | OpResult::GetData(_, s) => {
                        *s = mask(s)
                    }
                    _ => {}
                }
            }
            Response::Multi(m)
        }
        other => other,
    };
    format!("{b:?}")
}

fn create(path: &str, data: Option<&str>, acl: Vec<Acl>, mode: CreateMode) -> CreateRequest {
    CreateRequest {
        path: path.into(),
        data: data.map(|d| Bytes::copy_from_slice(d.as_bytes())),
        acl,
        flags: mode.to_flags(),
    }
}

fn pw(path: &str, watch: bool) -> PathWatchRequest {
    PathWatchRequest {
        path: path.into(),
        watch,
    }
}

fn script() -> Vec<Request> {
    let open = Acl::open_unsafe;
    vec![
        Request::Exists(pw("/", false)),
        Request::GetChildren2(pw("/zookeeper", false)),
        Request::GetAcl(PathRequest {
            path: "/zookeeper/config".into(),
        }),
        Request::GetData(pw("/zookeeper/config", false)),
        Request::Create(create("/a", Some("x"), open(), CreateMode::Persistent)),
        Request::Create2(create("/a", Some("x"), open(), CreateMode::Persistent)),
        Request::Create2(create("/a/b", None, open(), CreateMode::Persistent)),
        Request::Create2(create(
            "/a/s-",
            Some(""),
            open(),
            CreateMode::PersistentSequential,
        )),
        Request::Create2(create(
            "/a/e-",
            Some(""),
            open(),
            CreateMode::EphemeralSequential,
        )),
        Request::Create2(create("/e", Some("eph"), open(), CreateMode::Ephemeral)),
        Request::Create2(create("/e/c", None, open(), CreateMode::Persistent)),
        Request::Create2(create("/missing/c", None, open(), CreateMode::Persistent)),
        Request::Create2(create("/a/", None, open(), CreateMode::Persistent)),
        Request::Create2(create("/a//b", None, open(), CreateMode::Persistent)),
        Request::Create2(create("/q", None, vec![], CreateMode::Persistent)),
        Request::Create2(create(
            "/q",
            None,
            Acl::creator_all(),
            CreateMode::Persistent,
        )),
        Request::Create2(create(
            "/q",
            None,
            vec![Acl::new(Perms::ALL, "world", "nobody")],
            CreateMode::Persistent,
        )),
        Request::Create(CreateRequest {
            path: "/f".into(),
            data: None,
            acl: open(),
            flags: 77,
        }),
        Request::CreateContainer(create("/c", None, open(), CreateMode::Container)),
        Request::CreateTtl(CreateTtlRequest {
            path: "/t".into(),
            data: None,
            acl: open(),
            flags: CreateMode::PersistentWithTtl.to_flags(),
            ttl: 100_000,
        }),
        Request::CreateTtl(CreateTtlRequest {
            path: "/t2".into(),
            data: None,
            acl: open(),
            flags: CreateMode::PersistentWithTtl.to_flags(),
            ttl: -4,
        }),
        Request::CreateTtl(CreateTtlRequest {
            path: "/t3".into(),
            data: None,
            acl: open(),
            flags: CreateMode::Persistent.to_flags(),
            ttl: 100,
        }),
        Request::GetData(pw("/a", false)),
        Request::SetData(SetDataRequest {
            path: "/a".into(),
            data: Some("y".into()),
            version: 0,
        }),
        Request::SetData(SetDataRequest {
            path: "/a".into(),
            data: Some("z".into()),
            version: 0,
        }),
        Request::SetData(SetDataRequest {
            path: "/nope".into(),
            data: None,
            version: -1,
        }),
        Request::SetData(SetDataRequest {
            path: "/a/".into(),
            data: None,
            version: -1,
        }),
        Request::GetChildren2(pw("/a", false)),
        Request::GetChildren(pw("/", false)),
        Request::Delete(DeleteRequest {
            path: "/a".into(),
            version: -1,
        }),
        Request::Delete(DeleteRequest {
            path: "/a/b".into(),
            version: 3,
        }),
        Request::Delete(DeleteRequest {
            path: "/a/b".into(),
            version: 0,
        }),
        Request::Delete(DeleteRequest {
            path: "/a/b".into(),
            version: -1,
        }),
        Request::Delete(DeleteRequest {
            path: "/zookeeper".into(),
            version: -1,
        }),
        Request::Delete(DeleteRequest {
            path: "/zookeeper/quota".into(),
            version: -1,
        }),
        Request::Delete(DeleteRequest {
            path: "/".into(),
            version: -1,
        }),
        Request::Exists(pw("/a", false)),
        Request::Create2(create(
            "/a/s-",
            Some(""),
            open(),
            CreateMode::PersistentSequential,
        )),
        Request::Multi(MultiRequest {
            ops: vec![
                MultiOp::Create(
                    OpCode::Create,
                    create("/m", None, open(), CreateMode::Persistent),
                ),
                MultiOp::Create(
                    OpCode::Create2,
                    create("/m/x-", None, open(), CreateMode::PersistentSequential),
                ),
                MultiOp::Create(
                    OpCode::CreateContainer,
                    create("/m/c", None, open(), CreateMode::Container),
                ),
                MultiOp::SetData(SetDataRequest {
                    path: "/m".into(),
                    data: Some("d".into()),
                    version: -1,
                }),
                MultiOp::Check(CheckVersionRequest {
                    path: "/m".into(),
                    version: 1,
                }),
                MultiOp::Delete(DeleteRequest {
                    path: "/m/c".into(),
                    version: -1,
                }),
            ],
        }),
        Request::Multi(MultiRequest {
            ops: vec![
                MultiOp::Create(
                    OpCode::Create,
                    create("/n", None, open(), CreateMode::Persistent),
                ),
                MultiOp::Delete(DeleteRequest {
                    path: "/nothing".into(),
                    version: -1,
                }),
                MultiOp::SetData(SetDataRequest {
                    path: "/m".into(),
                    data: None,
                    version: -1,
                }),
            ],
        }),
        Request::Multi(MultiRequest { ops: vec![] }),
        Request::Multi(MultiRequest {
            ops: vec![MultiOp::GetData(pw("/m", false))],
        }),
        Request::MultiRead(MultiRequest {
            ops: vec![
                MultiOp::GetData(pw("/m", false)),
                MultiOp::Delete(DeleteRequest {
                    path: "/m".into(),
                    version: -1,
                }),
            ],
        }),
        Request::MultiRead(MultiRequest { ops: vec![] }),
        Request::MultiRead(MultiRequest {
            ops: vec![MultiOp::Delete(DeleteRequest {
                path: "/m".into(),
                version: -1,
            })],
        }),
        Request::MultiRead(MultiRequest {
            ops: vec![
                MultiOp::GetData(pw("/m", false)),
                MultiOp::GetChildren(pw("/m", false)),
                MultiOp::GetData(pw("/none", false)),
            ],
        }),
        Request::Exists(pw("/n", false)),
        Request::SetAcl(SetAclRequest {
            path: "/m".into(),
            acl: vec![Acl::new(Perms::READ | Perms::ADMIN, "world", "anyone")],
            version: 0,
        }),
        Request::SetAcl(SetAclRequest {
            path: "/m".into(),
            acl: open(),
            version: 0,
        }),
        Request::GetAcl(PathRequest { path: "/m".into() }),
        Request::SetData(SetDataRequest {
            path: "/m".into(),
            data: None,
            version: -1,
        }),
        Request::Create2(create("/m/k", None, open(), CreateMode::Persistent)),
        Request::Create2(create(
            "/ip",
            None,
            vec![Acl::new(Perms::READ, "ip", "10.0.0.0/8")],
            CreateMode::Persistent,
        )),
        Request::GetData(pw("/ip", false)),
        Request::Create2(create(
            "/ipbad",
            None,
            vec![Acl::new(Perms::READ, "ip", "10.0.0.0/99")],
            CreateMode::Persistent,
        )),
        Request::Create2(create(
            "/dig",
            None,
            vec![Acl::new(Perms::ALL, "digest", "bob:abc")],
            CreateMode::Persistent,
        )),
        Request::GetAcl(PathRequest {
            path: "/dig".into(),
        }),
        Request::Create2(create(
            "/digbad",
            None,
            vec![Acl::new(Perms::ALL, "digest", "bob")],
            CreateMode::Persistent,
        )),
        Request::Sync(PathRequest { path: "/a".into() }),
        Request::GetAllChildrenNumber(PathRequest { path: "/".into() }),
        Request::GetAllChildrenNumber(PathRequest { path: "/a".into() }),
        Request::GetAllChildrenNumber(PathRequest { path: "/zz".into() }),
        Request::GetEphemerals(PathRequest { path: "/".into() }),
        Request::GetEphemerals(PathRequest { path: "/a".into() }),
        Request::WhoAmI,
        Request::CheckWatches(RemoveWatchesRequest {
            path: "/a".into(),
            watcher_type: WatcherType::Data,
        }),
        Request::AddWatch(AddWatchRequest {
            path: "/m".into(),
            mode: AddWatchMode::Persistent,
        }),
        Request::CheckWatches(RemoveWatchesRequest {
            path: "/m".into(),
            watcher_type: WatcherType::Data,
        }),
        Request::CheckWatches(RemoveWatchesRequest {
            path: "/m".into(),
            watcher_type: WatcherType::Children,
        }),
        Request::CheckWatches(RemoveWatchesRequest {
            path: "/m".into(),
            watcher_type: WatcherType::PersistentRecursive,
        }),
        Request::RemoveWatches(RemoveWatchesRequest {
            path: "/m".into(),
            watcher_type: WatcherType::Data,
        }),
        Request::CheckWatches(RemoveWatchesRequest {
            path: "/m".into(),
            watcher_type: WatcherType::Persistent,
        }),
        Request::CheckWatches(RemoveWatchesRequest {
            path: "/m".into(),
            watcher_type: WatcherType::Any,
        }),
        Request::RemoveWatches(RemoveWatchesRequest {
            path: "/m".into(),
            watcher_type: WatcherType::Persistent,
        }),
        Request::CheckWatches(RemoveWatchesRequest {
            path: "/m".into(),
            watcher_type: WatcherType::Any,
        }),
        Request::GetData(pw("/m", true)),
        Request::CheckWatches(RemoveWatchesRequest {
            path: "/m".into(),
            watcher_type: WatcherType::Persistent,
        }),
        Request::RemoveWatches(RemoveWatchesRequest {
            path: "/m".into(),
            watcher_type: WatcherType::Children,
        }),
        Request::RemoveWatches(RemoveWatchesRequest {
            path: "/m".into(),
            watcher_type: WatcherType::Data,
        }),
        Request::AddWatch(AddWatchRequest {
            path: "/a".into(),
            mode: AddWatchMode::PersistentRecursive,
        }),
        Request::CheckWatches(RemoveWatchesRequest {
            path: "/a".into(),
            watcher_type: WatcherType::PersistentRecursive,
        }),
        Request::RemoveWatches(RemoveWatchesRequest {
            path: "/a".into(),
            watcher_type: WatcherType::PersistentRecursive,
        }),
        Request::RemoveWatches(RemoveWatchesRequest {
            path: "/a".into(),
            watcher_type: WatcherType::Any,
        }),
        Request::Reconfig(ReconfigRequest {
            joining_servers: None,
            leaving_servers: Some("3".into()),
            new_members: None,
            cur_config_id: -1,
        }),
        Request::Exists(pw("/a", false)),
    ]
}

async fn run(addr: SocketAddr) -> Vec<String> {
    let mut c = RawClient::connect(addr).await;
    let mut out = Vec::new();
    for (i, req) in script().into_iter().enumerate() {
        let r = c.call(req.clone()).await;
        let line = format!(
            "#{i} {:?} -> {:?} zxid={} {}",
            req.opcode(),
            r.err(),
            r.header.zxid,
            normalize(&r.body)
        );
        eprintln!("{addr}: {line}");
        out.push(line);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_results_as_apache() {
    let apache = tokio::task::spawn_blocking(ApacheServer::start)
        .await
        .unwrap()
        .expect("apache starts");
    let ours = TestServer::start_with(|c| c.extended_types = true).await;
    let theirs = run(apache.connect_string().parse().unwrap()).await;
    let mine = run(ours.addr()).await;
    let mut diffs = Vec::new();
    for (a, b) in theirs.iter().zip(&mine) {
        if a != b {
            diffs.push(format!("apache: {a}\nours:   {b}"));
        }
    }
    assert!(
        diffs.is_empty(),
        "{} differences:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
    assert_eq!(theirs.len(), mine.len());
}

async fn watch_script(addr: SocketAddr) -> Vec<String> {
    let mut w = RawClient::connect(addr).await;
    let mut c = RawClient::connect(addr).await;
    let mut out = Vec::new();
    c.create("/w", "", CreateMode::Persistent).await;
    w.exists("/w/x", true).await;
    w.get("/w", true).await;
    w.children("/w", true).await;
    w.call(Request::AddWatch(AddWatchRequest {
        path: "/w".into(),
        mode: AddWatchMode::PersistentRecursive,
    }))
    .await;
    c.create("/w/x", "", CreateMode::Persistent).await;
    c.set("/w/x", "1", -1).await;
    c.set("/w", "1", -1).await;
    c.delete("/w/x", -1).await;
    w.get("/w", true).await;
    c.delete("/w", -1).await;
    for e in w.drain_events().await {
        out.push(format!("{:?} {:?} {}", e.event_type, e.state, e.path));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_watch_events_as_apache() {
    let apache = tokio::task::spawn_blocking(ApacheServer::start)
        .await
        .unwrap()
        .expect("apache starts");
    let ours = TestServer::start().await;
    let theirs = watch_script(apache.connect_string().parse().unwrap()).await;
    let mine = watch_script(ours.addr()).await;
    assert_eq!(mine, theirs);
    assert!(!mine.is_empty());
}

fn keys(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.split(['\t', '=', ':']).next())
        .filter(|k| {
            !k.trim().is_empty()
                && !k.starts_with(' ')
                && !k.starts_with('/')
                && !k.starts_with("0x")
        })
        .map(|k| k.to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_letter_words_have_apache_shapes() {
    let apache = tokio::task::spawn_blocking(ApacheServer::start)
        .await
        .unwrap()
        .expect("apache starts");
    let ours = TestServer::start().await;
    let (ap, op) = (apache.port(), ours.port());
    let fl = |port: u16, cmd: &'static str| {
        tokio::task::spawn_blocking(move || tests::apache::four_letter(port, cmd))
    };
    // On fresh servers srvr is identical but for the version line.
    // (Received/Sent depend on how often the launcher polled.)
    let strip = |t: String| {
        t.lines()
            .skip(1)
            .filter(|l| !l.starts_with("Received") && !l.starts_with("Sent"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        strip(fl(op, "srvr").await.unwrap()),
        strip(fl(ap, "srvr").await.unwrap())
    );
    for cmd in [
        "ruok", "isro", "srvr", "stat", "conf", "wchs", "dirs", "crst", "srst",
    ] {
        let a = fl(ap, cmd).await.unwrap();
        let o = fl(op, cmd).await.unwrap();
        assert_eq!(keys(&o), keys(&a), "{cmd}:\napache:\n{a}\nours:\n{o}");
    }
    // mntr: ours reports a subset of Apache's keys, with the core ones present.
    let a = keys(&fl(ap, "mntr").await.unwrap());
    let o = keys(&fl(op, "mntr").await.unwrap());
    for k in [
        "zk_version",
        "zk_server_state",
        "zk_znode_count",
        "zk_watch_count",
        "zk_avg_latency",
        "zk_num_alive_connections",
    ] {
        assert!(o.contains(k), "mntr lacks {k}");
    }
    assert!(
        o.is_subset(&a),
        "keys Apache does not have: {:?}",
        o.difference(&a).collect::<Vec<_>>()
    );
    assert_eq!(fl(op, "ruok").await.unwrap(), "imok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_requests_like_apache() {
    let apache = tokio::task::spawn_blocking(ApacheServer::start)
        .await
        .unwrap()
        .expect("apache starts");
    let ours = TestServer::start().await;
    let (theirs, mine) = tokio::join!(
        odd_requests(apache.connect_string().parse().unwrap()),
        odd_requests(ours.addr())
    );
    assert_eq!(mine, theirs);
}

/// Reconnect flows: SetWatches after changes, session resumption, expiry of ephemerals.
async fn session_script(addr: SocketAddr) -> Vec<String> {
    use zk_proto::watch::{SetWatches, SetWatches2};
    let mut out = Vec::new();
    let mut c = RawClient::connect(addr).await;
    for p in ["/sw", "/sw/same", "/sw/changed", "/sw/gone", "/sw/kids"] {
        c.create(p, "", CreateMode::Persistent).await;
    }
    let seen = c.exists("/sw", false).await.header.zxid;
    c.set("/sw/changed", "x", -1).await;
    c.delete("/sw/gone", -1).await;
    c.create("/sw/kids/k", "", CreateMode::Persistent).await;
    c.create("/sw/born", "", CreateMode::Persistent).await;

    let mut w = RawClient::connect(addr).await;
    w.send_xid(
        zk_proto::xid::SET_WATCHES,
        &Request::SetWatches(SetWatches {
            relative_zxid: seen,
            data_watches: vec!["/sw/changed".into(), "/sw/same".into(), "/sw/gone".into()],
            exist_watches: vec!["/sw/born".into(), "/sw/unborn".into()],
            child_watches: vec!["/sw/kids".into(), "/sw".into()],
        }),
    )
    .await;
    let r = w.recv().await;
    out.push(format!(
        "setWatches reply xid={} err={:?}",
        r.header.xid,
        r.err()
    ));
    let mut evs: Vec<String> = w
        .drain_events()
        .await
        .iter()
        .map(|e| format!("{:?} {}", e.event_type, e.path))
        .collect();
    evs.sort();
    out.extend(evs);
    w.send_xid(
        zk_proto::xid::SET_WATCHES,
        &Request::SetWatches2(SetWatches2 {
            relative_zxid: 0,
            persistent_watches: vec!["/sw/same".into()],
            persistent_recursive_watches: vec!["/sw/kids".into()],
            ..Default::default()
        }),
    )
    .await;
    let r = w.recv().await;
    out.push(format!(
        "setWatches2 reply xid={} err={:?}",
        r.header.xid,
        r.err()
    ));
    c.set("/sw/same", "1", -1).await;
    c.create("/sw/unborn", "", CreateMode::Persistent).await;
    c.create("/sw/kids/k2", "", CreateMode::Persistent).await;
    c.set("/sw/same", "2", -1).await;
    for e in w.drain_events().await {
        out.push(format!("{:?} {}", e.event_type, e.path));
    }

    // Resume a session on a new connection; its ephemerals stay; then it expires.
    let (mut short, r) = RawClient::handshake(
        addr,
        zk_proto::ConnectRequest {
            timeout: 500,
            passwd: vec![0; 16].into(),
            ..Default::default()
        },
    )
    .await
    .expect("connect");
    out.push(format!("negotiated {}", r.timeout));
    short.create("/sw/eph", "", CreateMode::Ephemeral).await;
    let (mut again, r2) = short.reconnect(addr).await.expect("resume");
    out.push(format!(
        "resumed same={} timeout={}",
        r2.session_id == r.session_id,
        r2.timeout
    ));
    out.push(format!(
        "old connection closed={}",
        short.closed_within(std::time::Duration::from_secs(2)).await
    ));
    out.push(format!(
        "ephemeral kept: {:?}",
        again.exists("/sw/eph", false).await.err()
    ));
    w.exists("/sw/eph", true).await;
    drop(again);
    let e = w.event(std::time::Duration::from_secs(5)).await;
    out.push(format!(
        "after expiry: {:?}",
        e.map(|e| (e.event_type, e.path))
    ));
    let (_x, r3) = short.reconnect(addr).await.expect("answered");
    out.push(format!("expired session reconnect timeout={}", r3.timeout));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_session_and_set_watches_behaviour_as_apache() {
    let apache = tokio::task::spawn_blocking(ApacheServer::start)
        .await
        .unwrap()
        .expect("apache starts");
    let ours = TestServer::start().await;
    let (theirs, mine) = tokio::join!(
        session_script(apache.connect_string().parse().unwrap()),
        session_script(ours.addr())
    );
    assert_eq!(mine, theirs);
    for want in [
        "NodeDataChanged /sw/changed",
        "NodeCreated /sw/born",
        "NodeDeleted /sw/gone",
        "negotiated 500",
    ] {
        assert!(
            mine.iter().any(|l| l == want),
            "{want} missing from {mine:#?}"
        );
    }
    assert!(
        mine.iter()
            .any(|l| l.starts_with("after expiry: Some((NodeDeleted")),
        "{mine:#?}"
    );
}

/// getEphemerals order and the order of NodeDeleted events when a session closes.
async fn ephemeral_script(addr: SocketAddr) -> Vec<String> {
    let mut out = Vec::new();
    let mut w = RawClient::connect(addr).await;
    let mut e = RawClient::connect(addr).await;
    w.create("/eo", "", CreateMode::Persistent).await;
    let names = [
        "q",
        "lock-17",
        "b",
        "member_0003",
        "zz",
        "a1",
        "n",
        "x-y",
        "queue",
        "c",
        "election",
        "k9",
        "ttt",
        "m",
    ];
    for n in names {
        e.create(&format!("/eo/{n}"), "", CreateMode::Ephemeral)
            .await;
        w.exists(&format!("/eo/{n}"), true).await;
    }
    let r = e
        .call(Request::GetEphemerals(PathRequest { path: "/".into() }))
        .await;
    if let Response::GetEphemerals(g) = r.body {
        out.push(format!("ephemerals {:?}", g.ephemerals));
    }
    let r = e
        .call(Request::GetEphemerals(PathRequest {
            path: "/eo/m".into(),
        }))
        .await;
    if let Response::GetEphemerals(g) = r.body {
        out.push(format!("prefix {:?}", g.ephemerals));
    }
    e.close().await;
    for ev in w.drain_events().await {
        out.push(format!("{:?} {}", ev.event_type, ev.path));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_ephemeral_order_as_apache() {
    let apache = tokio::task::spawn_blocking(ApacheServer::start)
        .await
        .unwrap()
        .expect("apache starts");
    let ours = TestServer::start().await;
    let theirs = ephemeral_script(apache.connect_string().parse().unwrap()).await;
    let mine = ephemeral_script(ours.addr()).await;
    assert_eq!(mine, theirs);
    assert_eq!(mine.len(), 2 + 14);
}
