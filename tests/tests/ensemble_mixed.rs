//! The mixed ensemble: two Apache ZooKeeper 3.8 servers (`QuorumPeerMain`) and one
//! `zk-server` process form one ensemble. They elect over Apache's election protocol,
//! replicate over its quorum packets, and sync each other by DIFF and by SNAP (Apache's
//! snapshot stream) in both directions, with the zk-server member as leader and as
//! follower. A zk-client reads the same data through every member after each step.

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
}

impl Member {
    fn start(&mut self) {
        self.kill();
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
}

impl Drop for Member {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Members 1 and 2 are Apache, member 3 is zk-server (the highest id, so it wins an
/// election between equally up-to-date servers).
fn configure(root: &Path) -> Vec<Member> {
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
                     standaloneEnabled=false\ncnxTimeout=1000\n{servers}",
                    data.display()
                ),
            )
            .expect("zoo.cfg");
            Member {
                apache: i < 2,
                dir,
                port: ports[3 * i],
                child: None,
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
