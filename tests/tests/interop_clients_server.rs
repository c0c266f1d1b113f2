//! Real Apache clients against our server: the Java CLI (`ZooKeeperMain`), the C CLI
//! (`cli_mt`) and kazoo (Python) run the same scripts against Apache ZooKeeper 3.8 and
//! against our server; their outputs must match once times and session ids are masked.

mod server_support;

use server_support::*;
use tests::apache::ApacheServer;
use tokio::process::Command;

use tests::apache::run_feeding as run;

/// Masks what legitimately differs between two servers: times, session ids, ports.
fn mask(text: &str, port: u16) -> String {
    let mut out = Vec::new();
    for line in text.lines() {
        let l = line.replace(&port.to_string(), "PORT");
        let lower = l.to_lowercase();
        if lower.contains("time")
            || lower.trim_start().starts_with("file \"")
            || lower.contains("session id")
            || lower.contains("sessionid")
            || lower.starts_with("watcher session_event")
        {
            continue;
        }
        // Hex numbers longer than 10 digits are session ids (ephemeral owners).
        let masked: Vec<String> = l
            .split(' ')
            .map(|w| {
                if w.starts_with("0x") && w.len() > 10 {
                    "0xSESSION".to_string()
                } else {
                    w.to_string()
                }
            })
            .collect();
        out.push(masked.join(" "));
    }
    out.join("\n")
}

async fn start_both() -> (ApacheServer, TestServer) {
    let apache = tokio::task::spawn_blocking(ApacheServer::start)
        .await
        .unwrap()
        .expect("apache starts");
    let ours = TestServer::start_with(|c| c.extended_types = true).await;
    (apache, ours)
}

const JAVA_SCRIPT: &str = "create /j data\n\
create -e /j/eph e\n\
create -s /j/seq- s\n\
create -s /j/seq- s\n\
create -c /cont\n\
create -t 100000 /ttl t\n\
create /j x\n\
get -s /j\n\
ls -R /j\n\
ls -s /\n\
getEphemerals /\n\
getAllChildrenNumber /j\n\
get -w /j\n\
set /j changed\n\
set -v 7 /j nope\n\
stat /j\n\
whoami\n\
addauth digest bob:pw\n\
whoami\n\
create /bob b auth::cdrwa\n\
getAcl /bob\n\
setAcl /j world:anyone:r\n\
getAcl -s /j\n\
set /j denied\n\
addWatch -m PERSISTENT_RECURSIVE /j\n\
sync /j\n\
delete /j\n\
deleteall /cont\n\
ls /\n\
get /missing\n\
create /bad/child x\n\
close\n\
quit\n";

async fn java_cli(port: u16) -> String {
    let cmd = Command::from(tests::apache::cli_command(&format!("127.0.0.1:{port}")));
    mask(&run(cmd, JAVA_SCRIPT).await, port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn java_cli_sees_the_same_server() {
    let (apache, ours) = start_both().await;
    let theirs = java_cli(apache.port()).await;
    let mine = java_cli(ours.port()).await;
    assert!(mine.contains("Created /j/seq-0000000002"), "{mine}");
    assert!(mine.contains("digest: bob"), "{mine}");
    assert!(mine.contains("Insufficient permission : /j"), "{mine}");
    assert!(
        mine.contains("WatchedEvent state:SyncConnected type:NodeDataChanged path:/j"),
        "{mine}"
    );
    // The CLI prints watch events from its event thread, so where they land among the
    // command output depends on timing: compare the events and the rest separately.
    assert_eq!(
        tests::apache::split_cli_events(&mine),
        tests::apache::split_cli_events(&theirs)
    );
}

async fn kazoo(port: u16) -> String {
    const SCRIPT: &str = r#"
import sys, time
from kazoo.client import KazooClient
from kazoo.exceptions import *
from kazoo.security import make_digest_acl
events = []
z = KazooClient(hosts="127.0.0.1:%s" % sys.argv[1], timeout=5)
z.start()
def st(s):
    d = s._asdict(); d.pop("ctime"); d.pop("mtime")
    if d["ephemeralOwner"]: d["ephemeralOwner"] = "owner"
    return d
z.ensure_path("/k/a/b")
print("seq", z.create("/k/s-", b"x", sequence=True), z.create("/k/s-", b"y", sequence=True, ephemeral=True))
print("get", z.get("/k/a")[0], st(z.get("/k/a")[1]))
for n in ["zeta", "alpha", "m", "b12", "lock-0000000001", "x", "queue-", "aa", "node10", "node2"]:
    z.create("/k/order/" + n, makepath=True)
z.delete("/k/order/x")
print("children", z.get_children("/k"), z.get_children("/k/order"))
z.DataWatch("/k/w", lambda data, stat, event: events.append(("data", data, event.type if event else None)))
z.ChildrenWatch("/k", lambda ch: events.append(("children", sorted(ch))))
def wait_events(n):
    # Each change waits for its watch callbacks, so the sequence does not depend on how fast
    # the server answers kazoo's re-reads.
    deadline = time.time() + 10
    while len(events) < n and time.time() < deadline:
        time.sleep(0.01)
wait_events(2)
z.create("/k/w", b"1")
wait_events(4)
z.set("/k/w", b"2")
wait_events(5)
z.delete("/k/w")
wait_events(7)
for exc, f in [("exists", lambda: z.create("/k")), ("nonode", lambda: z.get("/none")),
               ("version", lambda: z.set("/k", b"", version=42)), ("notempty", lambda: z.delete("/k")),
               ("eph", lambda: z.create("/k/e", ephemeral=True) and z.create("/k/e/c"))]:
    try:
        f(); print(exc, "no error")
    except KazooException as e:
        print(exc, type(e).__name__)
wait_events(8)
t = z.transaction()
t.create("/k/t1", b"a"); t.set_data("/k/a", b"v"); t.check("/k/a", 0); t.delete("/k/a/b")
print("txn", t.commit())
t = z.transaction()
t.create("/k/t2"); t.delete("/missing")
print("txn-fail", [type(r).__name__ for r in t.commit()])
acl = make_digest_acl("alice", "pw", all=True)
z.create("/k/secret", b"s", acl=[acl])
z2 = KazooClient(hosts="127.0.0.1:%s" % sys.argv[1], timeout=5); z2.start()
try:
    z2.get("/k/secret"); print("acl", "readable")
except NoAuthError:
    print("acl", "NoAuth")
z2.add_auth("digest", "alice:pw")
print("acl-auth", z2.get("/k/secret")[0])
print("acls", z2.get_acls("/k/secret")[0])
z2.stop()
wait_events(9)
print("events", events)
print("sync", z.sync("/k"))
z.stop()
"#;
    let mut cmd = Command::new("python3");
    cmd.args(["-c", SCRIPT, &port.to_string()]);
    mask(&run(cmd, "").await, port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kazoo_sees_the_same_server() {
    let (apache, ours) = start_both().await;
    let theirs = kazoo(apache.port()).await;
    let mine = kazoo(ours.port()).await;
    assert!(
        mine.contains("seq /k/s-0000000001 /k/s-0000000002"),
        "{mine}"
    );
    assert!(mine.contains("acl NoAuth"), "{mine}");
    assert_eq!(mine, theirs);
}

async fn c_cli(port: u16) -> String {
    let mut all = String::new();
    for cmd in [
        "create /c1",
        "create +e /c1-eph",
        "create +s /c1/seq",
        "create2 /c2",
        "set /c1 hello",
        "get /c1",
        "ls /c1",
        "ls2 /c1",
        "delete /c1/seq0000000000",
        "delete /c1",
        "sync /c2",
        "delete /c2",
        "ls /",
    ] {
        let mut c = Command::new("/usr/lib/zookeeper/bin/cli_mt");
        c.args([format!("127.0.0.1:{port}"), format!("cmd:{cmd}")]);
        all.push_str(&format!("$ {cmd}\n"));
        all.push_str(&run(c, "").await);
    }
    let masked = mask(&all, port);
    // cli_mt prints absolute times and ctime/mtime inside stats.
    masked
        .lines()
        .filter(|l| {
            !l.contains("ctime") && !l.contains("mtime") && !l.contains("Got a new session")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_cli_sees_the_same_server() {
    let (apache, ours) = start_both().await;
    let theirs = c_cli(apache.port()).await;
    let mine = c_cli(ours.port()).await;
    assert!(mine.contains("rc = 0"), "{mine}");
    assert_eq!(mine, theirs);
}

#[test]
fn watch_events_split_wherever_they_land() {
    let early = "3\ndata\n\nWATCHER::\n\nWatchedEvent path:/j\ncZxid = 0x2\nmZxid = 0x9\n";
    let late = "3\ndata\ncZxid = 0x2\n\nWATCHER::\n\nWatchedEvent path:/j\nmZxid = 0x9\n";
    // Inside a line `ls` prints in pieces, and with output between the block's lines.
    let inside = "3\ndata\ncZxid\nWATCHER::\n = 0x2\n\nWatchedEvent path:/j\nmZxid = 0x9";
    let split = tests::apache::split_cli_events;
    assert_eq!(split(early), split(late));
    assert_eq!(split(early), split(inside));
    assert_eq!(
        split(early),
        (
            vec!["3", "data", "cZxid = 0x2", "mZxid = 0x9"]
                .into_iter()
                .map(String::from)
                .collect::<Vec<_>>(),
            vec!["WatchedEvent path:/j".to_string()]
        )
    );
}
