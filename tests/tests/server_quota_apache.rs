//! Quotas against Apache ZooKeeper 3.8: one sequence of writes (creates, deletes, setData,
//! multis, an ephemeral whose session closes, a hand-edited usage, a removed limit) run
//! over raw frames against Apache's standalone server and the `zk-server` binary, with
//! `zookeeper.enforceQuota` off and on. After every step the error codes and the
//! `zookeeper_stats` nodes (data, version, length, mzxid) must be identical; after a
//! restart (loading a snapshot taken mid-scenario, which recounts the usage, and replaying
//! the txn log after it) the usage must still be the same on both.
//! With enforcement on, both servers log the soft-limit warning in Apache's words.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tests::apache::{four_letter, ApacheServer};
use tests::ports::free_port;
use tests::raw::RawClient;
use tests::zk_processes::ServerProcess;
use zk_proto::ops::{CreateRequest, DeleteRequest, SetDataRequest};
use zk_proto::{Acl, CreateMode, MultiOp, MultiRequest, OpCode, OpResult, Request, Response};

const Q_STATS: &str = "/zookeeper/quota/q/zookeeper_stats";
const H_STATS: &str = "/zookeeper/quota/h/zookeeper_stats";

/// A limits node as zkCli 3.8 writes `setquota -N 3 -B 10`.
const HARD_LIMITS: &str = "count=-1,bytes=-1=;byteHardLimit=10;countHardLimit=3";

fn create(path: &str, data: Option<&str>, mode: CreateMode) -> CreateRequest {
    CreateRequest {
        path: path.into(),
        data: data.map(|d| Bytes::copy_from_slice(d.as_bytes())),
        acl: Acl::open_unsafe(),
        flags: mode.to_flags(),
    }
}

fn set(path: &str, data: Option<&str>, version: i32) -> SetDataRequest {
    SetDataRequest {
        path: path.into(),
        data: data.map(|d| Bytes::copy_from_slice(d.as_bytes())),
        version,
    }
}

fn delete(path: &str) -> DeleteRequest {
    DeleteRequest {
        path: path.into(),
        version: -1,
    }
}

/// Data, version, data length and mzxid of both stats nodes, or `-` where absent.
async fn usage(c: &mut RawClient) -> String {
    let mut out = Vec::new();
    for p in [Q_STATS, H_STATS] {
        let r = c.get(p, false).await;
        if r.err() != zk_proto::ErrorCode::Ok {
            out.push(format!("{p}: {:?}", r.err()));
            continue;
        }
        let data = String::from_utf8_lossy(&r.data().unwrap_or_default()).into_owned();
        let st = r.stat();
        out.push(format!(
            "{p}: {data:?} v{} len{} mzxid{:#x}",
            st.version, st.data_length, st.mzxid
        ));
    }
    out.join(" | ")
}

/// What a reply says: its code, and for a multi the code of every op.
fn outcome(r: &tests::raw::Reply) -> String {
    match &r.body {
        Response::Multi(m) => {
            // Times differ between the runs: the rest of each Stat must not.
            let results: Vec<OpResult> = m
                .results
                .iter()
                .cloned()
                .map(|mut o| {
                    if let OpResult::SetData(s) | OpResult::Create2(_, s) = &mut o {
                        (s.ctime, s.mtime) = (0, 0);
                    }
                    o
                })
                .collect();
            format!("{:?} {results:?}", r.err())
        }
        Response::Create(c) => format!("{:?} {}", r.err(), c.path),
        Response::Create2(c) => format!("{:?} {}", r.err(), c.path),
        _ => format!("{:?}", r.err()),
    }
}

/// Runs the writes, noting after each what it returned and the usage it left.
async fn scenario(addr: SocketAddr) -> Vec<String> {
    let mut c = RawClient::connect(addr).await;
    let mut log = Vec::new();
    let p = CreateMode::Persistent;
    let mut steps: Vec<(String, Request)> = vec![
        ("create /q", Request::Create(create("/q", Some("abc"), p))),
        (
            "create /q/a",
            Request::Create(create("/q/a", Some("12345"), p)),
        ),
        ("create /h", Request::Create(create("/h", Some(""), p))),
        // `setquota -n 3 -b 10 /q` as zkCli does it: the path, the limits, zeroed stats.
        (
            "quota path /q",
            Request::Create(create("/zookeeper/quota/q", None, p)),
        ),
        (
            "limits /q",
            Request::Create(create(
                "/zookeeper/quota/q/zookeeper_limits",
                Some("count=3,bytes=10"),
                p,
            )),
        ),
        (
            "stats /q",
            Request::Create(create(Q_STATS, Some("count=0,bytes=0"), p)),
        ),
        (
            "quota path /h",
            Request::Create(create("/zookeeper/quota/h", None, p)),
        ),
        (
            "limits /h",
            Request::Create(create(
                "/zookeeper/quota/h/zookeeper_limits",
                Some(HARD_LIMITS),
                p,
            )),
        ),
        (
            "stats /h",
            Request::Create(create(H_STATS, Some("count=0,bytes=0"), p)),
        ),
        // Soft limits: the writes pass, the usage goes beyond them.
        (
            "create /q/b",
            Request::Create(create("/q/b", Some("xy"), p)),
        ),
        ("create /q/c", Request::Create(create("/q/c", Some("z"), p))),
        ("set /q", Request::SetData(set("/q", Some("abcdef"), -1))),
        ("set /q/a null", Request::SetData(set("/q/a", None, -1))),
        ("delete /q/c", Request::Delete(delete("/q/c"))),
        (
            "sequential /q/s",
            Request::Create(create("/q/s", Some("1"), CreateMode::PersistentSequential)),
        ),
        (
            "create /q/b/c",
            Request::Create(create("/q/b/c", Some("c"), p)),
        ),
        // Hard limits: count 3 and 10 bytes under /h (itself included).
        (
            "create /h/1",
            Request::Create(create("/h/1", Some("12345"), p)),
        ),
        // Checked against the applied tree, as Apache does: each op of this multi sees
        // 2 nodes, so both pass and the usage ends at 4.
        (
            "multi two creates /h",
            Request::Multi(MultiRequest {
                ops: vec![
                    MultiOp::Create(OpCode::Create, create("/h/m1", None, p)),
                    MultiOp::Create(OpCode::Create, create("/h/m2", None, p)),
                ],
            }),
        ),
        ("create /h/x", Request::Create(create("/h/x", None, p))),
        (
            "create2 /h/y in a multi",
            Request::Multi(MultiRequest {
                ops: vec![
                    MultiOp::SetData(set("/q", Some("q"), -1)),
                    MultiOp::Create(OpCode::Create2, create("/h/y", None, p)),
                ],
            }),
        ),
        ("delete /h/m1", Request::Delete(delete("/h/m1"))),
        ("delete /h/m2", Request::Delete(delete("/h/m2"))),
        // 5 bytes now: 5 more fit, 6 do not; the quota is checked before the version.
        (
            "set /h/1 +5 bytes, bad version",
            Request::SetData(set("/h/1", Some("1234567890"), 9)),
        ),
        (
            "set /h/1 +6 bytes, bad version",
            Request::SetData(set("/h/1", Some("12345678901"), 9)),
        ),
        (
            "set /h/1 +6 bytes",
            Request::SetData(set("/h/1", Some("12345678901"), -1)),
        ),
        (
            "set /h shrink",
            Request::SetData(set("/h/1", Some("1"), -1)),
        ),
        ("create /h/2", Request::Create(create("/h/2", Some("2"), p))),
        // A failed multi changes nothing; a mixed one counts each op.
        (
            "failed multi",
            Request::Multi(MultiRequest {
                ops: vec![
                    MultiOp::Create(OpCode::Create, create("/q/m", Some("x"), p)),
                    MultiOp::Delete(delete("/q/nope")),
                ],
            }),
        ),
        (
            "mixed multi",
            Request::Multi(MultiRequest {
                ops: vec![
                    MultiOp::Create(OpCode::Create, create("/q/n", Some("1"), p)),
                    MultiOp::SetData(set("/q/b", Some("xyz"), -1)),
                    MultiOp::Delete(delete("/q/a")),
                ],
            }),
        ),
    ]
    .into_iter()
    .map(|(w, r)| (w.to_string(), r))
    .collect();
    for (what, req) in steps.drain(..) {
        let r = c.call(req).await;
        log.push(format!(
            "{what}: {} => {}",
            outcome(&r),
            usage(&mut c).await
        ));
    }

    // An ephemeral under the quota: counted, then uncounted when its session closes.
    let mut other = RawClient::connect(addr).await;
    let r = other.create("/q/e", "eph", CreateMode::Ephemeral).await;
    log.push(format!(
        "ephemeral: {} => {}",
        outcome(&r),
        usage(&mut c).await
    ));
    other.close().await;
    log.push(format!("session closed => {}", usage(&mut c).await));

    // A hand-edited usage is added to, not recounted, while the server runs; put back.
    let before = c.get(Q_STATS, false).await.data().unwrap_or_default();
    let r = c.set(Q_STATS, "count=40,bytes=0", -1).await;
    log.push(format!(
        "hand-edit: {} => {}",
        outcome(&r),
        usage(&mut c).await
    ));
    let r = c.create("/q/d", "1", CreateMode::Persistent).await;
    log.push(format!(
        "create /q/d: {} => {}",
        outcome(&r),
        usage(&mut c).await
    ));
    let r = c.delete("/q/d", -1).await;
    log.push(format!(
        "delete /q/d: {} => {}",
        outcome(&r),
        usage(&mut c).await
    ));
    let r = c.set(Q_STATS, &String::from_utf8_lossy(&before), -1).await;
    log.push(format!(
        "restored: {} => {}",
        outcome(&r),
        usage(&mut c).await
    ));

    // Without its limits node /h has no quota: nothing counted, nothing refused.
    let r = c.delete("/zookeeper/quota/h/zookeeper_limits", -1).await;
    log.push(format!(
        "delquota /h: {} => {}",
        outcome(&r),
        usage(&mut c).await
    ));
    for (i, d) in ["abcdefghijklmnop", "x", "y"].iter().enumerate() {
        let r = c
            .create(&format!("/h/after{i}"), d, CreateMode::Persistent)
            .await;
        log.push(format!(
            "create /h/after{i}: {} => {}",
            outcome(&r),
            usage(&mut c).await
        ));
    }
    log
}

/// The usage lines alone (what must survive a restart).
async fn usage_now(addr: SocketAddr) -> String {
    let mut c = RawClient::connect(addr).await;
    let u = usage(&mut c).await;
    c.close().await;
    // mzxid and version are the stats node's own; the data is the usage.
    u
}

fn wait_serving(port: u16, log: &std::path::Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !four_letter(port, "srvr").contains("Mode: standalone") {
        assert!(
            Instant::now() < deadline,
            "zk-server did not come up:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// The scenario on Apache: transcript, usage after a restart, and its log before it.
async fn on_apache(enforce: bool) -> (Vec<String>, String, String) {
    // Snapshots every few txns, so the restart loads one taken mid-scenario and
    // recounts the usage from its tree before replaying the rest.
    let mut props = vec!["-Dzookeeper.snapCount=4"];
    if enforce {
        props.push("-Dzookeeper.enforceQuota=true");
    }
    let mut zk = tokio::task::spawn_blocking(move || ApacheServer::start_with(&props, &[]))
        .await
        .expect("join")
        .expect("apache");
    let a = addr(zk.port());
    let transcript = scenario(a).await;
    let log = zk.log_text();
    let zk = tokio::task::spawn_blocking(move || {
        zk.node.restart().expect("restart apache");
        zk.wait_serving().expect("apache serving");
        zk
    })
    .await
    .expect("join");
    let after = usage_now(a).await;
    zk.stop();
    (transcript, after, log)
}

/// The scenario on the `zk-server` binary; `enforceQuota` in zoo.cfg, as an operator
/// would write it (Apache turns unknown zoo.cfg keys into `zookeeper.` properties).
async fn on_zk_server(enforce: bool) -> (Vec<String>, String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port().expect("port");
    let cfg = dir.path().join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=200\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
             4lw.commands.whitelist=*\nadmin.enableServer=false\nenforceQuota={enforce}\nsnapCount=4\n",
            dir.path().join("data").display()
        ),
    )
    .expect("zoo.cfg");
    let log = dir.path().join("server.log");
    let mut server = ServerProcess::start_logging(&cfg, &[], &log, "info").expect("zk-server");
    wait_serving(port, &log);
    let transcript = scenario(addr(port)).await;
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    // A crash: the restart loads the last snapshot and replays the txn log after it.
    server.kill9();
    let mut server = ServerProcess::start_logging(&cfg, &[], &log, "info").expect("zk-server");
    wait_serving(port, &log);
    let after = usage_now(addr(port)).await;
    server.kill9();
    (transcript, after, text)
}

async fn same_as_apache(enforce: bool) -> Vec<String> {
    let (theirs, their_after, their_log) = on_apache(enforce).await;
    let (ours, our_after, our_log) = on_zk_server(enforce).await;
    for (i, (o, t)) in ours.iter().zip(&theirs).enumerate() {
        assert_eq!(o, t, "step {i} differs (enforceQuota={enforce})");
    }
    assert_eq!(ours.len(), theirs.len());
    assert_eq!(our_after, their_after, "usage after a restart");
    // The restart kept what the last step left (no write came between).
    let last = ours.last().expect("steps");
    assert!(last.ends_with(&our_after), "{last}\n{our_after}");
    // Soft limits are only checked (and so only logged) with enforcement on, as in 3.8.
    let soft = "Quota exceeded: /q [current count=4, softCountLimit=3]";
    for (who, log) in [("apache", &their_log), ("zk-server", &our_log)] {
        assert_eq!(log.contains(soft), enforce, "{who} log:\n{log}");
    }
    ours
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_usage_and_errors_match_apache_without_enforcement() {
    let t = same_as_apache(false).await;
    assert!(!t.iter().any(|l| l.contains("QuotaExceeded")), "{t:#?}");
    // The usage really moved: /q ended with 5 nodes (q, a deleted, b, b/c, s, n).
    assert!(
        t.iter()
            .any(|l| l.starts_with("create /q/b:") && l.contains("\"count=3,bytes=10\"")),
        "{t:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_usage_and_errors_match_apache_with_enforcement() {
    let t = same_as_apache(true).await;
    let refused: Vec<&String> = t.iter().filter(|l| l.contains("QuotaExceeded")).collect();
    assert!(refused.len() >= 3, "{t:#?}");
    assert!(
        t.iter()
            .any(|l| l.starts_with("create /h/x: QuotaExceeded")),
        "{t:#?}"
    );
    assert!(
        t.iter().any(|l| l.starts_with("create /h/after0: Ok")),
        "{t:#?}"
    );
}
