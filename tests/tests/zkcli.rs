//! `zkcli` (zk-server's second binary) against Apache 3.8's own zkCli (`ZooKeeperMain`):
//! the same command scripts, piped and one command per process, through both CLIs
//! against the same server, Apache's standalone server and zk-server alike; stdout,
//! stderr and exit codes must match once what legitimately differs is masked (zxids,
//! times, session ids, the version line, and the connect / close events whose printing
//! races with Java's exit). Then zkcli in a real terminal (tmux): tab completion of a
//! command and of a znode path, history recall, the prompt.

use std::process::Output;
use std::time::Duration;

use tests::apache::{cli_command, run_feeding_output, ApacheServer};
use tests::zk_processes::zkcli_bin;
use zk_client::{Client, Error};

/// `super:pw`, so the harness can clear nodes a script locked with ACLs.
const SUPER_DIGEST: &str = "super:0bX78nEegDzJM3ju0iLBEJdWzjg=";

/// One CLI run: stdout (masked), stderr, exit code, and how many Closed events it
/// printed (their place in Java's output races its next command: counted, not placed).
#[derive(Debug, PartialEq, Eq)]
struct Run {
    out: String,
    err: String,
    code: Option<i32>,
    closed: usize,
}

fn run_of(o: Output) -> Run {
    let raw = String::from_utf8_lossy(&o.stdout);
    Run {
        out: mask(&raw),
        err: String::from_utf8_lossy(&o.stderr).into_owned(),
        code: o.status.code(),
        // Counted by their event line: Java prints a block's lines one by one, and
        // another thread's output can come between them. The one printed at exit (when
        // the output ends with it) is not counted.
        closed: {
            let lines: Vec<&str> = raw.lines().filter(|l| !l.is_empty()).collect();
            let is_closed = |l: &str| l.starts_with("WatchedEvent state:Closed");
            lines.iter().filter(|l| is_closed(l)).count()
                - usize::from(lines.last().is_some_and(|l| is_closed(l)))
        },
    }
}

async fn apache_cli(connect: &str, args: &[&str], stdin: &str) -> Run {
    let mut cmd = tokio::process::Command::from(cli_command(connect));
    cmd.args(args);
    run_of(run_feeding_output(cmd, stdin).await)
}

async fn zkcli(connect: &str, args: &[&str], stdin: &str) -> Run {
    let mut cmd = tokio::process::Command::new(zkcli_bin().expect("zkcli binary"));
    cmd.args(["-server", connect]).args(args).env("TZ", "UTC");
    run_of(run_feeding_output(cmd, stdin).await)
}

const CONNECTED: &str = "\nWATCHER::\n\nWatchedEvent state:SyncConnected type:None path:null\n";
const CLOSED: &str = "\nWATCHER::\n\nWatchedEvent state:Closed type:None path:null\n";

/// Masks what differs between two runs of the same script: zxids, times and session ids
/// in Stat lines, the version line; drops the first connect event (Java prints it from
/// another thread, racing its first command in one-shot mode) and the Closed events
/// (Java's event thread prints them while its next command runs; `Run::closed` counts
/// them).
fn mask(s: &str) -> String {
    let s = s.replacen(CONNECTED, "", 1).replace(CLOSED, "");
    s.lines()
        .map(|l| {
            for key in [
                "cZxid = ",
                "mZxid = ",
                "pZxid = ",
                "ctime = ",
                "mtime = ",
                "ephemeralOwner = ",
            ] {
                if l.starts_with(key) {
                    let zero = l.ends_with("= 0x0");
                    return format!("{key}{}", if zero { "0" } else { "_" });
                }
            }
            if l.starts_with("ZooKeeper CLI version: ") {
                return "ZooKeeper CLI version: _".into();
            }
            l.to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// [`tests::apache::split_cli_events`] without Closed events: `Run::closed` counts them.
fn split_events(out: &str) -> (Vec<String>, Vec<String>) {
    let (plain, mut events) = tests::apache::split_cli_events(out);
    events.retain(|e| !e.contains("state:Closed"));
    (plain, events)
}

/// Removes what a script left (as super: scripts lock nodes with ACLs).
async fn wipe(connect: &str) {
    let c = Client::builder(connect)
        .auth("digest", "super:pw")
        .connect()
        .await
        .expect("super client");
    for root in ["/t", "/zookeeper/quota/t"] {
        delete_tree(&c, root).await;
    }
    c.close().await.expect("close");
}

async fn delete_tree(c: &Client, root: &str) {
    let mut order = vec![root.to_string()];
    let mut i = 0;
    while i < order.len() {
        match c.get_children(&order[i], false).await {
            Ok(kids) => {
                let base = order[i].clone();
                order.extend(kids.into_iter().map(|k| format!("{base}/{k}")));
            }
            Err(Error::NoNode { .. }) => {}
            Err(e) => panic!("listing {}: {e}", order[i]),
        }
        i += 1;
    }
    for p in order.iter().rev() {
        match c.delete(p, None).await {
            Ok(()) | Err(Error::NoNode { .. }) => {}
            Err(e) => panic!("deleting {p}: {e}"),
        }
    }
}

/// Runs `script` (lines, `{HOST}` replaced by the connect string) through both CLIs, each
/// on a clean tree, and compares.
async fn same_script(connect: &str, name: &str, script: &str) {
    let script = script.replace("{HOST}", connect);
    wipe(connect).await;
    let theirs = apache_cli(connect, &[], &script).await;
    wipe(connect).await;
    let ours = zkcli(connect, &[], &script).await;
    wipe(connect).await;
    // Java prints watch events from its event thread, racing the main thread's output of
    // the next commands: compare the command output in order and the events as a set. Its
    // printwatches flag is read when the event thread gets to an event, so scripts `sync`
    // (whose answer comes through that thread) before they flip it.
    assert_eq!(
        split_events(&ours.out),
        split_events(&theirs.out),
        "stdout of script {name} differs on {connect}\n--- zkcli:\n{}\n--- zkCli:\n{}",
        ours.out,
        theirs.out
    );
    assert_eq!(
        ours.err, theirs.err,
        "stderr of script {name} differs on {connect}"
    );
    assert_eq!(
        ours.code, theirs.code,
        "exit code of script {name} differs on {connect}"
    );
    assert_eq!(
        ours.closed, theirs.closed,
        "Closed events of script {name} on {connect}"
    );
    // A script that printed nothing compared nothing.
    assert!(ours.out.lines().count() > 3, "{name}: {}", ours.out);
    if script.contains("\nclose\n") {
        assert_eq!(ours.closed, 1, "{name}: `close` prints the Closed event");
    }
}

/// Nodes, data, reads, writes, deletes, and the errors and usage lines of misuse.
const NODES: &str = r#"create /t
create /t/a hello
create /t/a again
create /t/b
get /t/b
create /t/c "two words"
get /t/c
create /t/d ''
get /t/d
get -s /t/a
set /t/a world
set -s /t/a again
set -v 7 /t/a nope
set -v 2 /t/a ok
set -v1 /t/a glued
get /t/a
ls /t
ls -s /t
ls -R /t
ls /t watchme
create /t/a/x
create /t/a/x/y
stat /t/a
stat /t/nope
stat /t/a extra
set /t/a changed
getAllChildrenNumber /t
getAllChildrenNumber /t/nope
getAllChildrenNumber
delete /t/a
delete -v 5 /t/b
delete /t/b 3
delete /t/nope
deleteall /t/a -b 1
ls /t
deleteall /t/nope
deleteall -b x /t/c
sync /t
ls
get
set /t
create
ls -x /t
set -v /t/c
ls t
get /t/
create /t//x
create -s /t/
bogus
whoami
version
config
config -c
config -s
reconfig -remove 3
reconfig
history
redo 3
redo 999
redo
printwatches
getEphemerals
"#;

/// Every create mode, TTLs, containers, ephemerals, create-time ACLs.
const CREATE_MODES: &str = r#"create /t
create -e /t/e1 eph
create -s /t/s- seq
create -s /t/s- seq
create -e -s /t/es- x
create -c /t/cont
create -t 5000 /t/ttl
create -s -t 5000 /t/ttls-
create -c -e /t/bad
create -t abc /t/bad
create -t 0 /t/bad
create -e -t 100 /t/bad
create -c -t 100 /t/bad
create /t/e1/child
getEphemerals
getEphemerals /t/e
getEphemerals /nothere
stat /t/e1
ls /t
get -s /t/cont
create /t/acl1 x world:anyone:r
getAcl /t/acl1
create /t/acl2 x bad
create /t/acl3 x world:anyone:rq
getAcl /t/acl3
create /t/acl4 x auth::cdrwa
"#;

/// ACLs, digest auth, whoami, permission errors, close and connect.
const ACLS: &str = r#"create /t
create /t/p data
getAcl -s /t/p
setAcl /t/p world:anyone:r
getAcl /t/p
set /t/p x
setAcl -s /t/p world:anyone:cdrwa
create /t/q x
addauth digest u:p
whoami
setAcl /t/q auth::cdrwa
getAcl /t/q
setAcl -v 9 /t/q world:anyone:cdrwa
setAcl /t/q digest:u:Jq7wMyA/w2Vd5WIDAKdu4OIIFEQ=:cdrwa,world:anyone:r
getAcl -s /t/q
setAcl /t/q bad
setAcl -R /t world:anyone:cdrwa
getAcl /t/p
getAcl /t/nope
close
ls /t
history
connect {HOST}
ls /t
whoami
get /t/q
"#;

/// One-shot and persistent watches, their removal, printwatches, close and reconnect.
const WATCHES: &str = r#"create /t
create /t/w v
get -w /t/w
set /t/w v2
ls -w /t
create /t/w2
stat -w /t/new
create /t/new
addWatch /t/w
set /t/w v3
set /t/w v4
get -w /t/w
set /t/w v5
addWatch -m persistent_recursive /t
create /t/w2/deep
addWatch -m bogus /t
addWatch
removewatches /t/w
removewatches /t/w
removewatches /t -a
get -w /t/w
removewatches /t/w -d
ls -w /t
removewatches /t -c
removewatches /t/nowatch
sync /t
printwatches off
get -w /t/w
set /t/w silent
sync /t
get /t/w
printwatches on
printwatches
delete /t/w2/deep
close
ls /t
connect {HOST}
ls /t
"#;

/// Quotas as zkCli writes them under /zookeeper/quota, the usage the server keeps as
/// nodes are written under a quota, and (the servers run with `zookeeper.enforceQuota`)
/// writes refused past a hard limit.
const QUOTAS: &str = r#"create /t
create /t/q
create /t/q/x "hello world"
setquota -n 5 /t/q
setquota /t/q
setquota -n 5 -b 10 /t/q
setquota -n 0 /t/q
setquota -b abc /t/q
setquota -N 3 /t/q/x
setquota -B 100 /t/q
setquota -n 2 /t/nope
setquota -n 2 /zookeeper/quota/x
listquota /t/q
listquota /t/q/x
listquota /t/nope
get /zookeeper/quota/t/q/zookeeper_limits
delquota -n /t/q
listquota /t/q
delquota -b -n /t/q
delquota /t/q
listquota /t/q
delquota /t/q
ls /zookeeper/quota
setquota -n 3 /t/q
create /t/q/y 12345
create /t/q/z
set /t/q/x hi
create /t/q/y/deep 1
listquota /t/q
get /zookeeper/quota/t/q/zookeeper_stats
delete /t/q/y/deep
set /t/q/y ""
listquota /t/q
delquota /t/q
setquota -N 7 /t
create /t/w
create /t/w2
create /t/w3
listquota /t
setquota -B 30 /t
listquota /t
set /t/w 0123456789012345678901234567890123456789
set /t/w 0123456789
delquota -N /t
create /t/w3 x
listquota /t
delquota /t
create /t/w4
listquota /t
"#;

const SCRIPTS: &[(&str, &str)] = &[
    ("nodes", NODES),
    ("create_modes", CREATE_MODES),
    ("acls", ACLS),
    ("watches", WATCHES),
    ("quotas", QUOTAS),
];

/// One command per process: output and exit code (0, 1, or 127 for an unknown command).
const ONE_SHOT: &[&[&str]] = &[
    &["create", "/t", "top"],
    &["create", "/t/one", "x y"],
    &["get", "-s", "/t/one"],
    &["ls", "/t"],
    &["get", "/t/nope"],
    &["create", "/t/one"],
    &["set", "-v", "9", "/t/one", "z"],
    &["ls"],
    &["bogus", "x"],
    &["ls", "-R", "/t"],
    &["stat", "/t"],
    &["getAcl", "/t"],
    &["delete", "/t"],
    &["deleteall", "/t"],
    &["ls", "/t"],
    &["getAllChildrenNumber", "/"],
    &["whoami"],
];

/// One-shot runs match but for Java's SyncConnected block: Java exits right after the
/// command's answer, and its event thread prints that block only when it got to the event
/// first (a CI run caught it between `get -s`'s data and its stat).
fn same_one_shot(ours: &Run, theirs: &Run, what: &str) {
    let connected = "WatchedEvent state:SyncConnected type:None path:null";
    let (ours_plain, ours_events) = split_events(&ours.out);
    let (theirs_plain, mut theirs_events) = split_events(&theirs.out);
    if !ours_events.iter().any(|e| e == connected) {
        theirs_events.retain(|e| e != connected);
    }
    assert_eq!(
        (ours_plain, ours_events),
        (theirs_plain, theirs_events),
        "{what}\n--- zkcli:\n{}\n--- zkCli:\n{}",
        ours.out,
        theirs.out
    );
    assert_eq!(
        (&ours.err, ours.code, ours.closed),
        (&theirs.err, theirs.code, theirs.closed),
        "{what}"
    );
}

async fn compare_one_shot(connect: &str) {
    wipe(connect).await;
    let mut java = Vec::new();
    for args in ONE_SHOT {
        java.push(apache_cli(connect, args, "").await);
    }
    wipe(connect).await;
    for (args, theirs) in ONE_SHOT.iter().zip(java) {
        let ours = zkcli(connect, args, "").await;
        same_one_shot(
            &ours,
            &theirs,
            &format!("one-shot `{}` on {connect}", args.join(" ")),
        );
    }
    // -r (read-only allowed) against a read-write server works as without it.
    let theirs = apache_cli(connect, &["-r", "ls", "/zookeeper"], "").await;
    let ours = zkcli(connect, &["-r", "ls", "/zookeeper"], "").await;
    same_one_shot(
        &ours,
        &theirs,
        &format!("one-shot `-r ls /zookeeper` on {connect}"),
    );
    assert_eq!(ours.code, Some(0));
    wipe(connect).await;
}

async fn compare_all(connect: &str) {
    for (name, script) in SCRIPTS {
        same_script(connect, name, script).await;
    }
    compare_one_shot(connect).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zkcli_matches_apache_zkcli_on_apache_server() {
    let prop = format!("-Dzookeeper.DigestAuthenticationProvider.superDigest={SUPER_DIGEST}");
    let zk = tokio::task::spawn_blocking(move || {
        ApacheServer::start_with(&[&prop, "-Dzookeeper.enforceQuota=true"], &[])
    })
    .await
    .expect("join")
    .expect("apache server");
    compare_all(&zk.connect_string()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zkcli_matches_apache_zkcli_on_zk_server() {
    let server = zk_server::testkit::TestServer::start_with(|c| {
        c.extended_types = true;
        c.super_digest = Some(SUPER_DIGEST.into());
        c.enforce_quota = true;
    })
    .await
    .expect("zk-server");
    compare_all(&server.connect_string()).await;
    server.stop().await.expect("stop");
}

/// The quota script through zkcli against Apache's server and against zk-server: the
/// same output, so the usage `listquota` prints and the refused writes are the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zkcli_quota_output_is_the_same_on_both_servers() {
    let zk = tokio::task::spawn_blocking(|| {
        ApacheServer::start_with(&["-Dzookeeper.enforceQuota=true"], &[])
    })
    .await
    .expect("join")
    .expect("apache server");
    let server = zk_server::testkit::TestServer::start_with(|c| c.enforce_quota = true)
        .await
        .expect("zk-server");
    let mut theirs = zkcli(&zk.connect_string(), &[], QUOTAS).await;
    let mut ours = zkcli(&server.connect_string(), &[], QUOTAS).await;
    for run in [&mut theirs, &mut ours] {
        // "Connecting to 127.0.0.1:PORT": the one line that names the server.
        run.out = run.out.lines().skip(1).collect::<Vec<_>>().join("\n");
    }
    assert_eq!(
        ours, theirs,
        "zkcli on zk-server:\n{}\nzkcli on Apache:\n{}",
        ours.out, theirs.out
    );
    for line in [
        "Output stat for /t/q count=5,bytes=8",
        "Output stat for /t/q count=4,bytes=2",
        "Output stat for /t count=8,bytes=13",
        "Quota has exceeded : /t/w3",
        "Quota has exceeded : /t/w\n",
    ] {
        assert!(
            ours.out.contains(line) || ours.err.contains(line),
            "{line}: {ours:?}"
        );
    }
    server.stop().await.expect("stop");
}

/// Exit codes where no server answers: Java's zkCli fails the command with
/// ConnectionLoss (1); with `-waitforconnection` it gives up after `-timeout` (1), printing
/// the Closed event. zkcli does the same (its message is one line, not Java's stack trace).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zkcli_without_a_server_fails_as_zkcli() {
    let port = tests::ports::free_port().expect("port");
    let dead = format!("127.0.0.1:{port}");
    let theirs = apache_cli(&dead, &["ls", "/"], "").await;
    let ours = zkcli(&dead, &["ls", "/"], "").await;
    assert_eq!(ours, theirs);
    assert_eq!(ours.err, "KeeperErrorCode = ConnectionLoss for /\n");
    assert_eq!(ours.code, Some(1));

    let args = ["-waitforconnection", "-timeout", "1000", "ls", "/"];
    let theirs = apache_cli(&dead, &args, "").await;
    let ours = zkcli(&dead, &args, "").await;
    assert_eq!(ours.code, theirs.code);
    assert_eq!(ours.code, Some(1));
    assert!(ours.err.contains("ConnectionLoss"), "{ours:?}");
    // Both print the Closed event of the session given up on (`mask` drops it as
    // racing in other runs: look at the raw output here).
    let mut cmd = tokio::process::Command::new(zkcli_bin().expect("zkcli binary"));
    cmd.args(["-server", &dead]).args(args);
    let raw = String::from_utf8_lossy(&run_feeding_output(cmd, "").await.stdout).into_owned();
    assert!(raw.ends_with(CLOSED), "{raw}");
}

/// The interactive shell in a real terminal: completion of a command and of a znode
/// path, the prompt, history recall with the up arrow, `history`, `quit`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zkcli_in_a_terminal_completes_and_recalls() {
    let server = zk_server::testkit::TestServer::start()
        .await
        .expect("zk-server");
    let connect = server.connect_string();
    let c = Client::connect(&connect).await.expect("client");
    c.create(
        "/tmuxnode",
        b"from-tmux",
        &zk_client::Acl::open_unsafe(),
        zk_client::CreateMode::Persistent,
    )
    .await
    .expect("create");
    let bin = zkcli_bin().expect("zkcli binary");
    let socket = format!("zkcli-test-{}", std::process::id());
    /// Ends this test's own tmux server (by its socket name) however the test ends.
    struct TmuxServer(String);
    impl Drop for TmuxServer {
        fn drop(&mut self) {
            let _ = std::process::Command::new("tmux")
                .args(["-L", &self.0, "kill-server"])
                .output();
        }
    }
    let _tmux_server = TmuxServer(socket.clone());
    let tmux = |args: &[&str]| {
        let out = std::process::Command::new("tmux")
            .args(["-L", &socket])
            .args(args)
            .output()
            .expect("tmux (apt-get install tmux)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let screen = || tmux(&["capture-pane", "-p", "-t", "zk"]);
    let wait_for = |what: &str| {
        for _ in 0..300 {
            let s = screen();
            if s.contains(what) {
                return s;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("terminal never showed {what:?}:\n{}", screen());
    };
    tmux(&[
        "new-session",
        "-d",
        "-s",
        "zk",
        "-x",
        "160",
        "-y",
        "40",
        &format!("{} -server {connect}", bin.display()),
    ]);
    // The first prompt may still say CONNECTING, as zkCli's does.
    let s = tokio::task::block_in_place(|| wait_for(&format!("[zk: {connect}(")));
    tokio::task::block_in_place(|| wait_for("type:None path:null"));
    assert!(s.contains("JLine support is enabled"), "{s}");
    // "ge" + Tab lists get, getAcl, ...; "get " then a path prefix + Tab completes it.
    tmux(&["send-keys", "-t", "zk", "getA", "Tab", "Tab"]);
    tokio::task::block_in_place(|| wait_for("getAcl"));
    tmux(&["send-keys", "-t", "zk", "C-u"]);
    tmux(&["send-keys", "-t", "zk", "get /tmu", "Tab"]);
    tokio::task::block_in_place(|| wait_for("get /tmuxnode"));
    tmux(&["send-keys", "-t", "zk", "Enter"]);
    let s = tokio::task::block_in_place(|| wait_for(&format!("[zk: {connect}(CONNECTED) 1]")));
    assert!(s.contains("from-tmux"), "{s}");
    // The up arrow brings the last line back.
    tmux(&["send-keys", "-t", "zk", "Up", "Enter"]);
    let s = tokio::task::block_in_place(|| wait_for(&format!("[zk: {connect}(CONNECTED) 2]")));
    assert_eq!(s.matches("from-tmux").count(), 2, "{s}");
    tmux(&["send-keys", "-t", "zk", "history", "Enter"]);
    let s = tokio::task::block_in_place(|| wait_for("2 - history"));
    assert!(
        s.contains("0 - get /tmuxnode") && s.contains("1 - get /tmuxnode"),
        "{s}"
    );
    // A watch firing while the prompt waits is printed above it.
    tmux(&["send-keys", "-t", "zk", "get -w /tmuxnode", "Enter"]);
    tokio::task::block_in_place(|| wait_for(&format!("[zk: {connect}(CONNECTED) 4]")));
    c.set_data("/tmuxnode", b"changed", None)
        .await
        .expect("set");
    tokio::task::block_in_place(|| wait_for("type:NodeDataChanged path:/tmuxnode"));
    tmux(&["send-keys", "-t", "zk", "quit", "Enter"]);
    for _ in 0..50 {
        if !tmux(&["list-sessions"]).contains("zk:") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let left = tmux(&["list-sessions"]);
    assert!(!left.contains("zk:"), "zkcli did not quit: {left}");
    server.stop().await.expect("stop");
}

/// The CI failure this shape came from: Java's event thread printed its block between
/// `ls`'s `[` and the names.
#[test]
fn split_events_cuts_a_block_out_of_a_line() {
    let java = "Not connected\n[\nWATCHER::\np, q]\n\nWatchedEvent state:SyncConnected type:None path:null\nx";
    let plain_order = "Not connected\n[p, q]\n\nWATCHER::\n\nWatchedEvent state:SyncConnected type:None path:null\nx";
    let (plain, events) = split_events(java);
    assert_eq!(plain, ["Not connected", "[p, q]", "x"]);
    assert_eq!(
        events,
        ["WatchedEvent state:SyncConnected type:None path:null"]
    );
    assert_eq!(split_events(plain_order), (plain, events));
}

/// The one-shot CI failure: Java printed its SyncConnected block inside `get -s`'s output.
#[test]
fn one_shot_runs_match_whether_or_not_java_printed_its_connected_block() {
    let run = |out: &str| Run {
        out: out.into(),
        err: String::new(),
        code: Some(0),
        closed: 0,
    };
    let ours = run("Connecting to h\nx y\ncZxid = _\nnumChildren = 0");
    let theirs = run(
        "Connecting to h\n\nWATCHER::\nx y\n\nWatchedEvent state:SyncConnected type:None path:null\ncZxid = _\nnumChildren = 0",
    );
    same_one_shot(&ours, &theirs, "with the block");
    same_one_shot(&ours, &ours, "without it");
    let other = run("Connecting to h\nx z\ncZxid = _\nnumChildren = 0");
    assert!(std::panic::catch_unwind(|| same_one_shot(&other, &theirs, "")).is_err());
}
