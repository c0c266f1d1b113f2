//! The mixed ensemble: two Apache ZooKeeper 3.8 servers (`QuorumPeerMain`) and one
//! `zk-server` process form one ensemble. They elect over Apache's election protocol,
//! replicate over its quorum packets, and sync each other by DIFF and by SNAP (Apache's
//! snapshot stream) in both directions, with the zk-server member as leader and as
//! follower. A zk-client reads the same data through every member after each step.
//!
//! And the operator's path of the README: an Apache ensemble replaced by zk-server member by
//! member, each keeping its zoo.cfg and dataDir, under a live session; then rolled back.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tests::apache::mode;
use tests::zk_processes::zk_server_bin;
use zk_client::{Acl, Client, CreateMode};

const T: Duration = Duration::from_secs(30);

/// One member: an Apache JVM or a zk-server process, SIGKILLed (by its own handle) on drop.
struct Member {
    apache: bool,
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
    /// Length of server.log when the current process started (the log is appended to).
    run_start: usize,
}

impl Member {
    fn start(&mut self) {
        self.kill();
        self.run_start = self.log().len();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("server.log"))
            .expect("log");
        let cfg = self.dir.join("zoo.cfg");
        let mut cmd = if self.apache {
            let mut args = tests::apache::TEST_JVM_ARGS.to_vec();
            args.push("-Dzookeeper.admin.enableServer=false");
            tests::apache::java(&args, "org.apache.zookeeper.server.quorum.QuorumPeerMain")
        } else {
            let mut c = Command::new(zk_server_bin().expect("zk-server binary"));
            c.env("RUST_LOG", "info");
            c
        };
        let child = cmd
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn member");
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills the member and removes its logs and snapshots (keeping myid), so that it
    /// comes back empty and must be synced by SNAP.
    fn wipe(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(self.dir.join("data").join("version-2"));
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// What the current process logged.
    fn run_log(&self) -> String {
        self.log()
            .get(self.run_start..)
            .unwrap_or_default()
            .to_owned()
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Members 1 and 2 are Apache, member 3 is zk-server (the highest id, so it wins an
/// election between equally up-to-date servers).
fn configure(root: &Path) -> Vec<Member> {
    configure_with(root, |i| i < 2, "")
}

/// Three members in the 3.5+ server-line format; `apache(i)` says which run Apache;
/// `extra` is appended to every zoo.cfg.
fn configure_with(root: &Path, apache: impl Fn(usize) -> bool, extra: &str) -> Vec<Member> {
    let ports = tests::ports::free_ports(9).expect("ports");
    let servers: String = (0..3)
        .map(|i| {
            format!(
                "server.{}=127.0.0.1:{}:{}:participant;127.0.0.1:{}\n",
                i + 1,
                ports[3 * i + 1],
                ports[3 * i + 2],
                ports[3 * i]
            )
        })
        .collect();
    (0..3)
        .map(|i| {
            let dir = root.join(format!("m{}", i + 1));
            let data = dir.join("data");
            std::fs::create_dir_all(&data).expect("mkdir");
            std::fs::write(data.join("myid"), format!("{}\n", i + 1)).expect("myid");
            std::fs::write(
                dir.join("zoo.cfg"),
                format!(
                    "tickTime=200\ninitLimit=20\nsyncLimit=10\ndataDir={}\n\
                     4lw.commands.whitelist=*\nadmin.enableServer=false\n\
                     standaloneEnabled=false\ncnxTimeout=1000\n{extra}{servers}",
                    data.display()
                ),
            )
            .expect("zoo.cfg");
            Member {
                apache: apache(i),
                dir,
                port: ports[3 * i],
                child: None,
                run_start: 0,
            }
        })
        .collect()
}

/// Waits until the running members show one leader and followers; returns the leader.
fn wait_roles(members: &[Member]) -> usize {
    let deadline = Instant::now() + T;
    loop {
        let modes: Vec<Option<String>> = members
            .iter()
            .map(|m| m.child.as_ref().and_then(|_| mode(m.port)))
            .collect();
        let running = members.iter().filter(|m| m.child.is_some()).count();
        let leaders: Vec<usize> = (0..members.len())
            .filter(|&i| modes[i].as_deref() == Some("leader"))
            .collect();
        let followers = modes
            .iter()
            .filter(|m| m.as_deref() == Some("follower"))
            .count();
        if leaders.len() == 1 && followers + 1 == running {
            return leaders[0];
        }
        if Instant::now() > deadline {
            for m in members {
                eprintln!("---- member on {} ----\n{}", m.port, m.log());
            }
            panic!("no leader with followers: {modes:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

async fn client(port: u16) -> Client {
    tokio::time::timeout(T, Client::connect(&format!("127.0.0.1:{port}")))
        .await
        .expect("connect in time")
        .expect("connect")
}

/// Creates `n` nodes `/mixed/{tag}-i` and sets `/mixed` to `tag` through the member on `port`.
async fn write(port: u16, tag: &str, n: usize) {
    let c = client(port).await;
    match c
        .create("/mixed", b"", &Acl::open_unsafe(), CreateMode::Persistent)
        .await
    {
        Ok(_) | Err(zk_client::Error::NodeExists { .. }) => {}
        Err(e) => panic!("create /mixed: {e}"),
    }
    for i in 0..n {
        c.create(
            &format!("/mixed/{tag}-{i}"),
            format!("v{i}").as_bytes(),
            &Acl::open_unsafe(),
            CreateMode::Persistent,
        )
        .await
        .expect("create");
    }
    c.set_data("/mixed", tag.as_bytes(), None)
        .await
        .expect("set");
    let _ = c.close().await;
}

/// Every running member serves `children` children under /mixed with data `tag`, and
/// the same sample of node data.
async fn check(members: &[Member], children: usize, tag: &str) {
    for m in members.iter().filter(|m| m.child.is_some()) {
        let c = client(m.port).await;
        c.sync("/mixed").await.expect("sync");
        let kids = c.get_children("/mixed", false).await.expect("children");
        assert_eq!(kids.len(), children, "children on member :{}", m.port);
        let (data, _) = c.get_data("/mixed", false).await.expect("get");
        assert_eq!(&data[..], tag.as_bytes(), "data on member :{}", m.port);
        let (d0, _) = c.get_data("/mixed/a-7", false).await.expect("get a-7");
        assert_eq!(&d0[..], b"v7");
        let _ = c.close().await;
    }
}

fn logged(m: &Member, what: &str) -> bool {
    m.log().contains(what)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_apache_servers_and_one_zk_server_form_one_ensemble() {
    let root = tempfile::tempdir().expect("tempdir");
    // Resolve (maybe build) the binary first, and start our member before the JVMs: two
    // Apache servers are a majority and would elect without it if it came up late.
    zk_server_bin().expect("zk-server binary");
    let mut m = configure(root.path());
    for x in m.iter_mut().rev() {
        x.start();
    }
    // Equally empty servers: the highest id, our member, leads the two Apache ones.
    assert_eq!(wait_roles(&m), 2, "zk-server (id 3) should lead");
    // Writes through an Apache follower (forwarded to our leader) and through our leader.
    write(m[0].port, "a", 100).await;
    write(m[2].port, "b", 100).await;
    check(&m, 200, "b").await;

    // Our leader dies: the Apache servers elect one of them and keep serving.
    m[2].kill();
    let leader = wait_roles(&m);
    assert!(leader < 2);
    write(m[0].port, "c", 50).await;
    // Back, it follows the Apache leader and catches up by DIFF.
    m[2].start();
    wait_roles(&m);
    check(&m, 250, "c").await;
    assert!(logged(&m[2], "(DIFF)"), "zk-server should sync by DIFF");

    // Wiped, it is synced by an Apache leader's SNAP.
    m[2].wipe();
    write(m[leader].port, "d", 300).await;
    m[2].start();
    wait_roles(&m);
    check(&m, 550, "d").await;
    assert!(logged(&m[2], "(SNAP)"), "zk-server should sync by SNAP");

    // The Apache leader dies: our member (same zxid, higher id) leads the other Apache.
    m[leader].kill();
    assert_eq!(wait_roles(&m), 2, "zk-server should lead again");
    write(m[2].port, "e", 100).await;
    // The dead Apache server comes back empty: our leader sends it a SNAP it loads.
    m[leader].wipe();
    m[leader].start();
    wait_roles(&m);
    check(&m, 650, "e").await;
    assert!(
        logged(&m[leader], "Getting a snapshot from leader"),
        "the Apache server should load our SNAP"
    );
}

/// The README's operator guide, step by step: a running Apache ensemble becomes a zk-server
/// ensemble one member at a time (followers first, the leader last), each started with the
/// zoo.cfg and dataDir its Apache server used; then goes back to Apache the same way. A
/// client session with an ephemeral node and a watch lives through all six swaps, every
/// swapped member serves within seconds, and no write is lost.
///
/// With `reconfigEnabled=true`, as here, Apache moves the member list out of zoo.cfg into
/// `zoo.cfg.dynamic.<version>` on first start: zk-server must follow `dynamicConfigFile`
/// (ignoring it once started a member as a standalone server on the ensemble's data).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apache_ensemble_is_replaced_member_by_member_and_back() {
    let root = tempfile::tempdir().expect("tempdir");
    zk_server_bin().expect("zk-server binary");
    let mut m = configure_with(root.path(), |_| true, "reconfigEnabled=true\n");
    for x in m.iter_mut() {
        x.start();
    }
    wait_roles(&m);
    for x in &m {
        let cfg = std::fs::read_to_string(x.dir.join("zoo.cfg")).expect("zoo.cfg");
        assert!(
            cfg.contains("dynamicConfigFile=") && !cfg.contains("\nserver."),
            "Apache should have moved the members out of zoo.cfg:\n{cfg}"
        );
    }
    write(m[0].port, "a", 100).await;

    let hosts: Vec<String> = m.iter().map(|x| format!("127.0.0.1:{}", x.port)).collect();
    let session = tokio::time::timeout(
        T,
        Client::builder(&hosts.join(","))
            .session_timeout(Duration::from_secs(4))
            .connect(),
    )
    .await
    .expect("connect in time")
    .expect("connect");
    let id = session.session_id();
    session
        .create(
            "/rolling-owner",
            b"",
            &Acl::open_unsafe(),
            CreateMode::Ephemeral,
        )
        .await
        .expect("ephemeral");

    let mut written = 100;
    let mut last_tag = String::from("a");
    for (to_apache, step) in [(false, "to zk-server"), (true, "back to Apache")] {
        // Followers first, the leader last: one election per direction, as the guide says.
        let leader = wait_roles(&m);
        let order: Vec<usize> = (0..3).filter(|&i| i != leader).chain([leader]).collect();
        for i in order {
            let (_, _, watched) = session
                .get_data_watched("/mixed")
                .await
                .expect("watch /mixed");
            m[i].kill();
            m[i].apache = to_apache;
            let started = Instant::now();
            m[i].start();
            wait_roles(&m);
            let took = started.elapsed();
            assert!(
                took < Duration::from_secs(15),
                "member {} ({step}) served only after {took:?}:\n{}",
                i + 1,
                m[i].run_log()
            );
            eprintln!("member {} {step}: serving after {took:?}", i + 1);
            last_tag = format!("{}{}", if to_apache { "j" } else { "r" }, i + 1);
            // Writes through the member just swapped (forwarded if it follows).
            write(m[i].port, &last_tag, 20).await;
            written += 20;
            check(&m, written, &last_tag).await;
            tokio::time::timeout(T, watched)
                .await
                .expect("the watch on /mixed fired in time")
                .expect("watch event");
        }
        for x in m.iter().filter(|x| !x.apache) {
            let log = x.run_log();
            assert!(
                !log.contains("ERROR") && !log.contains("panicked"),
                "zk-server member on :{} logged an error:\n{log}",
                x.port,
            );
        }
    }
    // The same session, never expired, still owns its ephemeral on every member.
    assert_eq!(session.session_id(), id);
    for x in &m {
        let c = client(x.port).await;
        c.sync("/rolling-owner").await.expect("sync");
        let stat = c
            .exists("/rolling-owner", false)
            .await
            .expect("exists")
            .expect("the ephemeral outlived six member swaps");
        assert_eq!(stat.ephemeral_owner, id);
        let _ = c.close().await;
    }
    check(&m, written, &last_tag).await;
}
