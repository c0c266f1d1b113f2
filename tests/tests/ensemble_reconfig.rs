//! Dynamic reconfiguration (`reconfig`) against zk-server ensembles started with
//! `reconfigEnabled=true`: kazoo's own `TestReconfig` passes against zk-server processes
//! started by kazoo's test harness, and every reconfig error case (and an observer added
//! then removed) gets the same answer from a zk-server ensemble as from Apache 3.8; and
//! Apache's Java CLI prints the same for a `reconfig` script against either.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use tests::apache::ApacheEnsemble;
use tests::ports::free_ports;
use tests::zk_processes::{zk_server_bin, Options, ProcessEnsemble};

/// `super:test` (kazoo's harness gives Apache this super user).
const SUPER_DIGEST: &str =
    "-Dzookeeper.DigestAuthenticationProvider.superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU=";

/// Runs `reconfig_errors.py` against `hosts`; its lines, or the script's failure.
fn reconfig_cases(hosts: &str) -> Vec<String> {
    let script = format!(
        "{}/tests/kazoo/reconfig_errors.py",
        env!("CARGO_MANIFEST_DIR")
    );
    let spare: Vec<String> = free_ports(3)
        .expect("free ports")
        .iter()
        .map(|p| p.to_string())
        .collect();
    let out = Command::new("python3")
        .arg(script)
        .arg(hosts)
        .args(&spare)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "reconfig_errors.py against {hosts} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

async fn wait_for_leader(ens: &ProcessEnsemble) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut modes = Vec::new();
        for i in 0..ens.len() {
            modes.push(ens.mode(i).await);
        }
        let leaders = modes
            .iter()
            .filter(|m| m.as_deref() == Some("leader"))
            .count();
        let followers = modes
            .iter()
            .filter(|m| m.as_deref() == Some("follower"))
            .count();
        if leaders == 1 && followers == ens.len() - 1 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no serving quorum: {modes:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconfig_answers_like_apache() {
    let apache =
        tokio::task::spawn_blocking(|| ApacheEnsemble::start_with(3, &[SUPER_DIGEST], &[]))
            .await
            .unwrap()
            .expect("apache ensemble");
    let hosts = apache.connect_string();
    let want = tokio::task::spawn_blocking(move || reconfig_cases(&hosts))
        .await
        .unwrap();
    drop(apache);

    let mut opts = Options::members(3);
    opts.extra_cfg = "reconfigEnabled=true\nstandaloneEnabled=false\n".into();
    opts.props = vec![SUPER_DIGEST.to_owned()];
    let ens = ProcessEnsemble::start(opts)
        .await
        .expect("zk-server ensemble");
    wait_for_leader(&ens).await;
    let hosts = ens.connect_string();
    let got = tokio::task::spawn_blocking(move || reconfig_cases(&hosts))
        .await
        .unwrap();
    assert_eq!(got, want, "zk-server (left) and Apache (right) differ");
    // The cases themselves are what we think they are.
    for line in [
        "not super: NoAuthError",
        "not a server spec: BadArgumentsError",
        "leave every participant: BadArgumentsError",
        "future fromConfig: BadVersionError",
        "new voters not running: NewConfigNoQuorumError",
        "add observer: ok True",
        "remove observer: ok True",
    ] {
        assert!(got.iter().any(|l| l == line), "{line:?} not in {got:#?}");
    }
    // Each member wrote the config in force beside its zoo.cfg, as Apache does, and
    // zoo.cfg now points at it.
    for i in 0..ens.len() {
        let cfg = ens.root().join(format!("m{}", i + 1)).join("zoo.cfg");
        let text = std::fs::read_to_string(&cfg).unwrap();
        let dynamic = text
            .lines()
            .find_map(|l| l.strip_prefix("dynamicConfigFile="))
            .unwrap_or_else(|| panic!("{} not rewritten:\n{text}", cfg.display()));
        assert!(!text.contains("server."), "{text}");
        let members = std::fs::read_to_string(dynamic).unwrap();
        assert_eq!(members.lines().count(), 3, "{members}");
    }
}

#[test]
fn kazoo_test_reconfig_passes_against_zk_server() {
    let bin = zk_server_bin().expect("zk-server binary");
    let harness = tests::kazoo::Harness::new(&bin).expect("java shim");
    let tests = tests::kazoo::tests_dir().expect("kazoo's tests");
    let file = tests.join("test_client.py").display().to_string();
    let out = harness
        .pytest(&[&file, "-k", "TestReconfig"])
        .expect("pytest runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("3 passed"),
        "kazoo's TestReconfig against zk-server:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One zk-server member started from its own zoo.cfg (killed by pid on drop).
struct Grown {
    id: usize,
    client: u16,
    spec: String,
    cfg: std::path::PathBuf,
    process: tests::zk_processes::ServerProcess,
}

/// Starts member `id` of the servers `known` (its own spec among them) in `root`.
fn start_member(root: &Path, id: usize, ports: &[u16], known: &[usize]) -> Grown {
    let spec = |i: usize| {
        let p = &ports[3 * (i - 1)..3 * i];
        format!("127.0.0.1:{}:{}:participant;127.0.0.1:{}", p[1], p[2], p[0])
    };
    let dir = root.join(format!("m{id}"));
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("myid"), format!("{id}\n")).unwrap();
    let servers: String = known
        .iter()
        .map(|i| format!("server.{i}={}\n", spec(*i)))
        .collect();
    let cfg = dir.join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=200\ninitLimit=10\nsyncLimit=5\ndataDir={}\nreconfigEnabled=true\n\
             standaloneEnabled=false\nmaxClientCnxns=0\n4lw.commands.whitelist=*\n{servers}",
            data.display()
        ),
    )
    .unwrap();
    let process = tests::zk_processes::ServerProcess::start_with(&cfg, &[SUPER_DIGEST]).unwrap();
    Grown {
        id,
        client: ports[3 * (id - 1)],
        spec: spec(id),
        cfg,
        process,
    }
}

fn wait_mode(port: u16, want: &[&str]) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(m) = tests::apache::mode(port) {
            if want.contains(&m.as_str()) {
                return m;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "member on {port} never became {want:?} (now {:?})",
            tests::apache::mode(port)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn version_of(config: &[u8]) -> i64 {
    let text = String::from_utf8_lossy(config);
    let v = text
        .lines()
        .last()
        .and_then(|l| l.strip_prefix("version="))
        .unwrap_or_else(|| panic!("no version line in {text:?}"));
    i64::from_str_radix(v, 16).unwrap()
}

/// A quorum of one (standaloneEnabled=false) grows to three members by reconfig under a
/// write load, then its first leader is removed and hands over to a designated successor:
/// no acknowledged write is lost, the ephemeral's session survives, every member ends on
/// the same config, and watchers of the config hear each change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quorum_of_one_grows_to_three_and_hands_over_its_leadership() {
    use zk_client::{Acl, Client, CreateMode, EventType};

    let root = tempfile::tempdir().unwrap();
    let ports = free_ports(9).unwrap();
    let mut members = vec![start_member(root.path(), 1, &ports, &[1])];
    tokio::task::spawn_blocking({
        let p = members[0].client;
        move || wait_mode(p, &["leader"])
    })
    .await
    .unwrap();
    let hosts: Vec<String> = (0..3)
        .map(|i| format!("127.0.0.1:{}", ports[3 * i]))
        .collect();
    let client = Client::builder(&hosts.join(","))
        .session_timeout(Duration::from_secs(10))
        .connect()
        .await
        .expect("connect");
    client.add_auth("digest", b"super:test").await.unwrap();
    client
        .create("/owner", b"", &Acl::open_unsafe(), CreateMode::Ephemeral)
        .await
        .unwrap();
    let session = client.session_id();
    let (first, _) = client.get_config(false).await.unwrap();
    assert!(
        version_of(&first) > 0,
        "the first leadership sets a version"
    );

    // A writer acknowledging writes all along.
    let writer = {
        let c = Client::connect(&hosts.join(",")).await.unwrap();
        tokio::spawn(async move {
            let mut acked = Vec::new();
            let _ = c
                .create("/w", b"", &Acl::open_unsafe(), CreateMode::Persistent)
                .await;
            for i in 0..100_000 {
                match c
                    .create(
                        &format!("/w/n{i}"),
                        b"x",
                        &Acl::open_unsafe(),
                        CreateMode::Persistent,
                    )
                    .await
                {
                    Ok(_) => acked.push(i),
                    Err(zk_client::Error::NodeExists { .. }) => acked.push(i),
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
                if c.exists("/stop", false).await.ok().flatten().is_some() {
                    break;
                }
            }
            acked
        })
    };

    let mut events = client.events();
    for id in [2, 3] {
        let known: Vec<usize> = (1..=id).collect();
        members.push(start_member(root.path(), id, &ports, &known));
        // It syncs as a non-voting follower before it is added.
        let p = members[id - 1].client;
        tokio::task::spawn_blocking(move || wait_mode(p, &["follower"]))
            .await
            .unwrap();
        let (before, _) = client.get_config(true).await.unwrap();
        let joining = format!("server.{id}={}", members[id - 1].spec);
        let (after, _) = client
            .reconfig(Some(&joining), None, None, Some(version_of(&before)))
            .await
            .unwrap_or_else(|e| panic!("adding server.{id}: {e}"));
        let text = String::from_utf8_lossy(&after).into_owned();
        assert!(text.contains(&joining), "{text}");
        assert!(version_of(&after) > version_of(&before));
        // The config watch fires for the change.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let ev = tokio::time::timeout_at(deadline, events.recv())
                .await
                .expect("config watch fired")
                .expect("event stream");
            if ev.event_type == EventType::NodeDataChanged && ev.path == "/zookeeper/config" {
                break;
            }
        }
    }
    // The first leader leaves; a member that acked the reconfig leads from then on.
    let (before, _) = client.get_config(false).await.unwrap();
    let (after, _) = client.reconfig(None, Some("1"), None, None).await.unwrap();
    let text = String::from_utf8_lossy(&after).into_owned();
    assert!(!text.contains("server.1="), "{text}");
    assert!(version_of(&after) > version_of(&before));
    // server.2 is designated (the smallest new voter that acked) and leads first; on a
    // loaded machine a later election may hand the lead to server.3, which is just as
    // correct. One of the two new voters leads, the other follows, and server.1 follows
    // without a vote.
    let modes = tokio::task::spawn_blocking({
        let ports: Vec<u16> = members.iter().map(|m| m.client).collect();
        move || {
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            loop {
                let m: Vec<Option<String>> =
                    ports.iter().map(|p| tests::apache::mode(*p)).collect();
                let pair = (m[1].as_deref(), m[2].as_deref());
                let voters_ok = matches!(
                    pair,
                    (Some("leader"), Some("follower")) | (Some("follower"), Some("leader"))
                );
                if (voters_ok && m[0].as_deref() == Some("follower"))
                    || std::time::Instant::now() > deadline
                {
                    break m;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    })
    .await
    .unwrap();
    let leaders = modes
        .iter()
        .filter(|m| m.as_deref() == Some("leader"))
        .count();
    assert_eq!(leaders, 1, "one leader among the new voters: {modes:?}");
    assert_ne!(modes[0].as_deref(), Some("leader"), "{modes:?}");
    assert_eq!(
        modes[0].as_deref(),
        Some("follower"),
        "server.1 follows: {modes:?}"
    );

    client
        .create("/stop", b"", &Acl::open_unsafe(), CreateMode::Persistent)
        .await
        .unwrap();
    let acked = writer.await.unwrap();
    assert!(acked.len() > 10, "the load ran: {} writes", acked.len());
    let stat = client.exists("/w", false).await.unwrap().expect("/w");
    assert!(stat.num_children as usize >= acked.len());
    for i in &acked {
        assert!(
            client
                .exists(&format!("/w/n{i}"), false)
                .await
                .unwrap()
                .is_some(),
            "acknowledged write /w/n{i} lost"
        );
    }
    assert_eq!(client.session_id(), session);
    assert!(client.exists("/owner", false).await.unwrap().is_some());
    // Every member ends on the same config, and wrote it beside its zoo.cfg.
    let want = version_of(&after);
    for m in &members {
        let c = Client::connect(&format!("127.0.0.1:{}", m.client))
            .await
            .unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            c.sync("/").await.unwrap();
            let (cfg, _) = c.get_config(false).await.unwrap();
            if version_of(&cfg) == want {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "server.{} stays on {}",
                m.id,
                String::from_utf8_lossy(&cfg)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let zoo = std::fs::read_to_string(&m.cfg).unwrap();
        assert!(
            zoo.contains("dynamicConfigFile=") && zoo.contains(&format!("{want:x}")),
            "server.{}: {zoo}",
            m.id
        );
    }
    for m in &mut members {
        m.process.kill9();
    }
}

/// Members 1-3 (reconfigEnabled, `super:test`) elect among themselves; member 4 knows all
/// four, adopts the ensemble's config (gossiped in the election) and follows without a
/// vote until a reconfig adds it.
async fn three_voters_and_a_joiner(
    kinds: [tests::mixed::Kind; 4],
    t: Duration,
) -> tests::mixed::MixedEnsemble {
    let mut ens =
        tokio::task::spawn_blocking(move || tests::mixed::MixedEnsemble::configure(&kinds))
            .await
            .unwrap();
    let three = ens.server_lines(&[0, 1, 2]);
    let four = ens.server_lines(&[0, 1, 2, 3]);
    for (i, m) in ens.members.iter_mut().enumerate() {
        m.extra_cfg = "reconfigEnabled=true\n".into();
        m.props = vec![SUPER_DIGEST.to_owned()];
        m.set_servers(if i < 3 { three.clone() } else { four.clone() });
    }
    tokio::task::spawn_blocking(move || {
        for m in ens.members[..3].iter_mut().rev() {
            m.start();
        }
        ens.wait_roles(t);
        ens.members[3].start();
        ens.wait_roles(t);
        ens
    })
    .await
    .unwrap()
}

/// Three members of one kind take a fourth of the other kind in by reconfig (it syncs as
/// a non-voting follower first), then the leader is removed and hands over: the two
/// implementations agree on every config byte, and writes go through all of it.
async fn mixed_grow_and_remove_leader(first: tests::mixed::Kind, joiner: tests::mixed::Kind) {
    use zk_client::{Acl, Client, CreateMode};

    let t = Duration::from_secs(60);
    let ens = three_voters_and_a_joiner([first, first, first, joiner], t).await;
    let hosts: Vec<String> = ens
        .members
        .iter()
        .map(|m| format!("127.0.0.1:{}", m.port))
        .collect();
    let admin = Client::connect(&hosts[..3].join(",")).await.unwrap();
    admin.add_auth("digest", b"super:test").await.unwrap();
    let joining = format!("server.4={}", ens.spec(3));
    let (added, _) = admin
        .reconfig(Some(&joining), None, None, None)
        .await
        .unwrap_or_else(|e| panic!("adding a {joiner:?} member to a {first:?} ensemble: {e}"));
    let added = String::from_utf8_lossy(&added).into_owned();
    assert!(added.contains(&joining), "{added}");
    // The joiner votes now and serves writes.
    let via_joiner = Client::connect(&hosts[3]).await.unwrap();
    via_joiner
        .create("/joined", b"x", &Acl::open_unsafe(), CreateMode::Persistent)
        .await
        .unwrap();

    let (ens, leader) = tokio::task::spawn_blocking(move || {
        let l = ens.wait_roles(t);
        (ens, l)
    })
    .await
    .unwrap();
    // Removing the leader makes every member change leader; Apache's followers close their
    // clients for that, so the reply can be lost with the reconfig committed. As a user
    // would, read the config back after a lost connection.
    let survivor = (0..3).find(|&i| i != leader).unwrap();
    let reply = admin
        .reconfig(None, Some(&(leader + 1).to_string()), None, None)
        .await;
    let removed = match reply {
        Ok((cfg, _)) => String::from_utf8_lossy(&cfg).into_owned(),
        Err(zk_client::Error::ConnectionLoss) => {
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            loop {
                let read = async {
                    let c = Client::connect(&hosts[survivor]).await?;
                    c.sync("/zookeeper/config").await?;
                    c.get_config(false).await
                };
                if let Ok((cfg, _)) = read.await {
                    let cfg = String::from_utf8_lossy(&cfg).into_owned();
                    if !cfg.contains(&format!("server.{}=", leader + 1)) {
                        break cfg;
                    }
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "the {:?} leader was never removed",
                    ens.members[leader].kind
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        Err(e) => panic!("removing the {:?} leader: {e}", ens.members[leader].kind),
    };
    assert!(
        !removed.contains(&format!("server.{}=", leader + 1)),
        "{removed}"
    );
    let voters: Vec<usize> = (0..4).filter(|&i| i != leader).collect();
    let (ens, new_leader) = tokio::task::spawn_blocking(move || {
        let l = ens.wait_roles_of(&voters, t);
        (ens, l)
    })
    .await
    .unwrap();
    assert_ne!(new_leader, leader);
    eprintln!(
        "{first:?} ensemble, {joiner:?} joiner: leader server.{} ({:?}) removed, server.{} ({:?}) leads; config now:\n{removed}",
        leader + 1,
        ens.members[leader].kind,
        new_leader + 1,
        ens.members[new_leader].kind
    );
    let via_new = Client::connect(&hosts[new_leader]).await.unwrap();
    via_new
        .create(
            "/handed-over",
            b"x",
            &Acl::open_unsafe(),
            CreateMode::Persistent,
        )
        .await
        .unwrap();
    // Every member, of either kind, holds the same config text, byte for byte.
    for (i, h) in hosts.iter().enumerate() {
        let c = Client::connect(h).await.unwrap();
        c.sync("/").await.unwrap();
        let (cfg, _) = c.get_config(false).await.unwrap();
        assert_eq!(
            String::from_utf8_lossy(&cfg),
            removed,
            "server.{} ({:?})",
            i + 1,
            ens.members[i].kind
        );
        assert!(c.exists("/joined", false).await.unwrap().is_some());
        assert!(c.exists("/handed-over", false).await.unwrap().is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zk_server_ensemble_takes_in_an_apache_member_and_loses_its_leader() {
    use tests::mixed::Kind;
    mixed_grow_and_remove_leader(Kind::ZkServer, Kind::Apache).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apache_ensemble_takes_in_a_zk_server_member_and_loses_its_leader() {
    use tests::mixed::Kind;
    mixed_grow_and_remove_leader(Kind::Apache, Kind::ZkServer).await;
}

/// Clients per member port, from each client's own view of where it is connected.
fn spread(clients: &[zk_client::Client], members: &[Grown]) -> Vec<(usize, usize)> {
    members
        .iter()
        .map(|m| {
            let n = clients
                .iter()
                .filter(|c| c.connected_host().is_some_and(|h| h.port == m.client))
                .count();
            (m.id, n)
        })
        .collect()
}

/// Waits until `ok` holds for the spread of `clients` over `members` with every client
/// connected, or fails after 30 s naming the last spread.
async fn wait_spread(
    clients: &[zk_client::Client],
    members: &[Grown],
    what: &str,
    ok: impl Fn(&[(usize, usize)]) -> bool,
) -> Vec<(usize, usize)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let s = spread(clients, members);
        let all = s.iter().map(|(_, n)| n).sum::<usize>() == clients.len();
        if all && ok(&s) {
            // Still so a moment later: no move in flight.
            tokio::time::sleep(Duration::from_millis(500)).await;
            let again = spread(clients, members);
            if again == s {
                return s;
            }
            continue;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: clients per member {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// ZOOKEEPER-1355 end to end: 100 clients that follow the ensemble
/// (`ClientBuilder::follow_ensemble`) connect to three members; the ensemble grows to
/// five by reconfig and the new members get about their fair share (a fifth each), then a
/// member is removed and its clients move to the others. No session is lost on the way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn following_clients_rebalance_when_the_ensemble_grows_and_shrinks() {
    use zk_client::Client;

    let root = tempfile::tempdir().unwrap();
    let ports = free_ports(15).unwrap();
    let mut members: Vec<Grown> = (1..=3)
        .map(|id| start_member(root.path(), id, &ports, &[1, 2, 3]))
        .collect();
    let first: Vec<u16> = members.iter().map(|m| m.client).collect();
    tokio::task::spawn_blocking(move || {
        for p in first {
            wait_mode(p, &["leader", "follower"]);
        }
    })
    .await
    .unwrap();
    let hosts3: String = (0..3)
        .map(|i| format!("127.0.0.1:{}", ports[3 * i]))
        .collect::<Vec<_>>()
        .join(",");
    let admin = Client::builder(&hosts3)
        .session_timeout(Duration::from_secs(20))
        .connect()
        .await
        .unwrap();
    admin.add_auth("digest", b"super:test").await.unwrap();

    let mut clients = Vec::new();
    for i in 0..100u64 {
        let c = Client::builder(&hosts3)
            .session_timeout(Duration::from_secs(20))
            .follow_ensemble(true)
            .seed(0x1355 + i)
            .connect()
            .await
            .unwrap_or_else(|e| panic!("client {i}: {e}"));
        clients.push(c);
    }
    let sessions: Vec<i64> = clients.iter().map(|c| c.session_id()).collect();
    let before = wait_spread(&clients, &members, "initial spread", |s| {
        s.iter().all(|(_, n)| *n > 0)
    })
    .await;

    // Grow to five: both join in one reconfig once they synced as non-voters.
    for id in [4, 5] {
        let known: Vec<usize> = (1..=id).collect();
        members.push(start_member(root.path(), id, &ports, &known));
        let p = members[id - 1].client;
        tokio::task::spawn_blocking(move || wait_mode(p, &["follower"]))
            .await
            .unwrap();
    }
    let joining = format!("server.4={},server.5={}", members[3].spec, members[4].spec);
    admin
        .reconfig(Some(&joining), None, None, None)
        .await
        .unwrap_or_else(|e| panic!("adding 4 and 5: {e}"));
    // A fifth each is 20; with 100 independent draws 8..=34 is beyond four standard
    // deviations either way. The old members keep about three fifths of theirs.
    let grown = wait_spread(&clients, &members, "after growing to five", |s| {
        s[3].1 >= 8 && s[4].1 >= 8
    })
    .await;
    println!("clients per member: 3 members {before:?}, grown to 5 {grown:?}");
    for (id, n) in &grown {
        assert!(
            (8..=34).contains(n),
            "server.{id} holds {n} of 100 clients after growing to five: {grown:?}"
        );
    }

    // Remove a member that does not lead: its clients go to the four left.
    let mut removed = 0;
    for m in &members[..3] {
        if tests::apache::mode(m.client).as_deref() == Some("follower") {
            removed = m.id;
            break;
        }
    }
    assert!(removed > 0, "a follower among the first three");
    admin
        .reconfig(None, Some(&removed.to_string()), None, None)
        .await
        .unwrap_or_else(|e| panic!("removing server.{removed}: {e}"));
    let shrunk = wait_spread(&clients, &members, "after removing a member", |s| {
        s[removed - 1].1 == 0
    })
    .await;
    println!("after removing server.{removed}: {shrunk:?}");
    for (id, n) in &shrunk {
        if *id != removed {
            assert!(
                (10..=42).contains(n),
                "server.{id} holds {n} of 100 clients after server.{removed} left: {shrunk:?}"
            );
        }
    }

    // Nobody lost a session: every client is connected with the session it began with.
    for (i, c) in clients.iter().enumerate() {
        assert!(c.state().is_connected(), "client {i}: {:?}", c.state());
        assert_eq!(c.session_id(), sessions[i], "client {i} changed session");
        c.exists("/", false)
            .await
            .unwrap_or_else(|e| panic!("client {i}: {e}"));
    }
    drop(clients);
    for m in &mut members {
        m.process.kill9();
    }
}

/// Member `id` of `known` started from a zoo.cfg with `dynamicConfigFile=` naming a file
/// of its `server.N` lines, as kazoo and Apache's docs start 3.5+ ensembles.
fn start_member_dynamic(root: &Path, id: usize, ports: &[u16], known: &[usize]) -> Grown {
    let spec = |i: usize| {
        let p = &ports[3 * (i - 1)..3 * i];
        format!("127.0.0.1:{}:{}:participant;127.0.0.1:{}", p[1], p[2], p[0])
    };
    let dir = root.join(format!("m{id}"));
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("myid"), format!("{id}\n")).unwrap();
    let dynamic = dir.join("zoo.cfg.dynamic");
    let servers: String = known
        .iter()
        .map(|i| format!("server.{i}={}\n", spec(*i)))
        .collect();
    std::fs::write(&dynamic, servers).unwrap();
    let cfg = dir.join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=200\ninitLimit=10\nsyncLimit=5\ndataDir={}\nreconfigEnabled=true\n\
             standaloneEnabled=false\nmaxClientCnxns=0\n4lw.commands.whitelist=*\n\
             dynamicConfigFile={}\n",
            data.display(),
            dynamic.display()
        ),
    )
    .unwrap();
    let process = start_logged(&cfg);
    Grown {
        id,
        client: ports[3 * (id - 1)],
        spec: spec(id),
        cfg,
        process,
    }
}

/// Starts the member of `cfg`, its output appended to `server.log` beside it.
fn start_logged(cfg: &Path) -> tests::zk_processes::ServerProcess {
    let log = cfg.with_file_name("server.log");
    tests::zk_processes::ServerProcess::start_logging(
        cfg,
        &[SUPER_DIGEST, "-Dzookeeper.admin.enableServer=false"],
        &log,
        "info",
    )
    .unwrap()
}

/// Waits until member `m` serves (leads, follows or observes); its log on failure.
async fn wait_serving(m: &Grown) {
    let (port, log) = (m.client, m.cfg.with_file_name("server.log"));
    let id = m.id;
    tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(40);
        loop {
            if let Some(mode) = tests::apache::mode(port) {
                if ["leader", "follower", "observer"].contains(&mode.as_str()) {
                    return;
                }
            }
            if std::time::Instant::now() > deadline {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(40).collect();
                panic!(
                    "server.{id} never served; its log ends:\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    })
    .await
    .unwrap();
}

/// The member list file a member's zoo.cfg names now (it moves to
/// `zoo.cfg.dynamic.<version>` once a config is committed).
fn dynamic_file_of(m: &Grown) -> std::path::PathBuf {
    let zoo = std::fs::read_to_string(&m.cfg).unwrap();
    let path = zoo
        .lines()
        .find_map(|l| l.strip_prefix("dynamicConfigFile="))
        .unwrap_or_else(|| panic!("server.{} zoo.cfg names no dynamic file: {zoo}", m.id));
    std::path::PathBuf::from(path.trim())
}

/// Waits until some member leads and a write through `c` commits.
async fn wait_commits(c: &zk_client::Client, what: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match c.set_data("/rolling", what.as_bytes(), None).await {
            Ok(_) => return,
            Err(e) => assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: no write commits: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// ZOOKEEPER-3829 replayed on members started with `reconfigEnabled` and a
/// `dynamicConfigFile`, under a zk-client write load: servers 1-3 run with config {1,2,3};
/// server 4 starts with {1,2,3,4} and joins (by reconfig, as reconfig is enabled); then 1,
/// 2 and 3 are restarted one at a time (in Apache 3.5/3.6 server.4 ended up leading and
/// unable to commit anything). Then every member is restarted once more, one at a time,
/// the leader included. Afterwards: exactly one leader, a write commits through every
/// member, no acknowledged write is lost and every member holds the same config version,
/// the one with server.4.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restarts_lose_nothing_and_leave_one_leader_that_commits() {
    use zk_client::{Acl, Client, CreateMode};

    let root = tempfile::tempdir().unwrap();
    let ports = free_ports(12).unwrap();
    let mut members: Vec<Grown> = (1..=3)
        .map(|id| start_member_dynamic(root.path(), id, &ports, &[1, 2, 3]))
        .collect();
    for m in &members {
        wait_serving(m).await;
    }
    let all_hosts: String = (0..4)
        .map(|i| format!("127.0.0.1:{}", ports[3 * i]))
        .collect::<Vec<_>>()
        .join(",");
    let client = Client::builder(&all_hosts)
        .session_timeout(Duration::from_secs(20))
        .connect()
        .await
        .unwrap();
    client
        .create("/rolling", b"", &Acl::open_unsafe(), CreateMode::Persistent)
        .await
        .unwrap();

    // The load: sequential creates, each recorded once acknowledged.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let c = Client::builder(&all_hosts)
            .session_timeout(Duration::from_secs(20))
            .connect()
            .await
            .unwrap();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut acked = Vec::new();
            let (mut attempts, mut i) = (0u64, 0u64);
            c.create("/w", b"", &Acl::open_unsafe(), CreateMode::Persistent)
                .await
                .unwrap();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                attempts += 1;
                let path = format!("/w/n{i}");
                match c
                    .create(&path, b"x", &Acl::open_unsafe(), CreateMode::Persistent)
                    .await
                {
                    Ok(_) | Err(zk_client::Error::NodeExists { .. }) => {
                        acked.push(path);
                        i += 1;
                    }
                    // Not acknowledged: retried under the same name (it may have
                    // committed, then NodeExists acknowledges it).
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
            (acked, attempts)
        })
    };

    // ZOOKEEPER-3829: a fourth member starts with {1,2,3,4} and syncs as a non-voter
    // (the ensemble's config has the higher version); with reconfig enabled it joins by
    // reconfig, then 1, 2 and 3 are restarted one at a time, as in the JIRA.
    members.push(start_member_dynamic(root.path(), 4, &ports, &[1, 2, 3, 4]));
    wait_serving(&members[3]).await;
    wait_commits(&client, "server.4 started").await;
    let admin = Client::builder(&all_hosts)
        .session_timeout(Duration::from_secs(20))
        .connect()
        .await
        .unwrap();
    admin.add_auth("digest", b"super:test").await.unwrap();
    let joining = format!("server.4={}", members[3].spec);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let added = loop {
        match admin.reconfig(Some(&joining), None, None, None).await {
            Ok((cfg, _)) => break cfg,
            // Not synced yet, or the reply lost with a connection: retried.
            Err(e) => assert!(
                tokio::time::Instant::now() < deadline,
                "adding server.4: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert!(String::from_utf8_lossy(&added).contains(&joining));
    for m in &mut members[..3] {
        m.process.kill9();
        m.process = start_logged(&m.cfg);
        wait_serving(m).await;
        wait_commits(&client, &format!("server.{} restarted", m.id)).await;
    }
    // Every member once more, one at a time, the leader among them.
    for m in &mut members {
        m.process.kill9();
        tokio::time::sleep(Duration::from_millis(300)).await;
        m.process = start_logged(&m.cfg);
        wait_serving(m).await;
        wait_commits(&client, &format!("server.{} restarted again", m.id)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (acked, attempts) = writer.await.unwrap();
    println!(
        "rolling restarts: {} writes acknowledged of {attempts} attempts",
        acked.len()
    );
    assert!(acked.len() > 20, "the load ran: {} writes", acked.len());

    // Exactly one leader, and it commits through every member.
    let modes: Vec<Option<String>> = members
        .iter()
        .map(|m| tests::apache::mode(m.client))
        .collect();
    assert_eq!(
        modes
            .iter()
            .filter(|m| m.as_deref() == Some("leader"))
            .count(),
        1,
        "exactly one leader: {modes:?}"
    );
    let mut version = None;
    for m in &members {
        let c = Client::builder(&format!("127.0.0.1:{}", m.client))
            .session_timeout(Duration::from_secs(20))
            .connect()
            .await
            .unwrap_or_else(|e| panic!("server.{}: {e}", m.id));
        c.set_data("/rolling", format!("via {}", m.id).as_bytes(), None)
            .await
            .unwrap_or_else(|e| panic!("a write through server.{}: {e}", m.id));
        c.sync("/").await.unwrap();
        let (cfg, _) = c.get_config(false).await.unwrap();
        let v = version_of(&cfg);
        assert!(
            String::from_utf8_lossy(&cfg).contains(&joining),
            "server.{} config lacks server.4: {}",
            m.id,
            String::from_utf8_lossy(&cfg)
        );
        assert!(
            version.is_none() || version == Some(v),
            "server.{} holds config {v:x}, others {version:x?}: {}",
            m.id,
            String::from_utf8_lossy(&cfg)
        );
        version = Some(v);
        let file = dynamic_file_of(m);
        assert!(
            file.to_string_lossy().ends_with(&format!(".dynamic.{v:x}")),
            "server.{} zoo.cfg names {}, not config {v:x}",
            m.id,
            file.display()
        );
        let n = c.get_all_children_number("/w").await.unwrap();
        assert!(
            n as usize >= acked.len(),
            "server.{} holds {n} of {} acknowledged writes",
            m.id,
            acked.len()
        );
        for path in &acked {
            assert!(
                c.exists(path, false).await.unwrap().is_some(),
                "acknowledged write {path} lost on server.{}",
                m.id
            );
        }
    }
    println!(
        "every member on config version {:x}: {modes:?}",
        version.unwrap()
    );
    for m in &mut members {
        m.process.kill9();
    }
}

/// A quorum of one grows to three, then five members, then shrinks back to three, by
/// reconfig under a write load of clients that know only the first member's address and
/// follow the ensemble: no acknowledged write is lost, the ephemeral's session survives,
/// and every member (the two removed ones too, now non-voting) reports the same config.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_grows_to_three_then_five_and_shrinks_back_to_three_under_load() {
    use zk_client::{Acl, Client, CreateMode};

    let root = tempfile::tempdir().unwrap();
    let ports = free_ports(15).unwrap();
    let mut members = vec![start_member(root.path(), 1, &ports, &[1])];
    let p1 = members[0].client;
    tokio::task::spawn_blocking(move || wait_mode(p1, &["leader"]))
        .await
        .unwrap();
    let first = format!("127.0.0.1:{p1}");
    let client = Client::builder(&first)
        .session_timeout(Duration::from_secs(20))
        .follow_ensemble(true)
        .seed(1)
        .connect()
        .await
        .unwrap();
    client.add_auth("digest", b"super:test").await.unwrap();
    client
        .create("/owner", b"", &Acl::open_unsafe(), CreateMode::Ephemeral)
        .await
        .unwrap();
    let session = client.session_id();

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let c = Client::builder(&first)
            .session_timeout(Duration::from_secs(20))
            .follow_ensemble(true)
            .seed(2)
            .connect()
            .await
            .unwrap();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut i = 0u64;
            let began = c.session_id();
            c.create("/w", b"", &Acl::open_unsafe(), CreateMode::Persistent)
                .await
                .unwrap();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let path = format!("/w/n{i}");
                match c
                    .create(&path, b"x", &Acl::open_unsafe(), CreateMode::Persistent)
                    .await
                {
                    Ok(_) | Err(zk_client::Error::NodeExists { .. }) => {
                        acked.push(path);
                        i += 1;
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
            assert!(c.state().is_connected(), "writer: {:?}", c.state());
            (acked, began, c.session_id())
        })
    };

    let reconfig = |joining: Option<String>, leaving: Option<String>| {
        let client = client.clone();
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            loop {
                match client
                    .reconfig(joining.as_deref(), leaving.as_deref(), None, None)
                    .await
                {
                    Ok((cfg, _)) => return cfg,
                    Err(e) => assert!(
                        tokio::time::Instant::now() < deadline,
                        "reconfig +{joining:?} -{leaving:?}: {e}"
                    ),
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
    };
    let mut versions = Vec::new();
    for group in [&[2usize, 3][..], &[4, 5][..]] {
        for &id in group {
            let known: Vec<usize> = (1..=id).collect();
            members.push(start_member(root.path(), id, &ports, &known));
            let p = members[id - 1].client;
            tokio::task::spawn_blocking(move || wait_mode(p, &["follower"]))
                .await
                .unwrap();
        }
        let joining: Vec<String> = group
            .iter()
            .map(|&id| format!("server.{id}={}", members[id - 1].spec))
            .collect();
        let cfg = reconfig(Some(joining.join(",")), None).await;
        versions.push(version_of(&cfg));
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let shrunk = reconfig(None, Some("4,5".into())).await;
    let text = String::from_utf8_lossy(&shrunk).into_owned();
    assert!(
        !text.contains("server.4=") && !text.contains("server.5="),
        "{text}"
    );
    versions.push(version_of(&shrunk));
    assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:x?}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (acked, began, ended) = writer.await.unwrap();
    assert_eq!(began, ended, "the writer's session survives");
    println!(
        "1 -> 3 -> 5 -> 3: {} writes acknowledged, configs {versions:x?}",
        acked.len()
    );
    assert!(acked.len() > 20, "the load ran: {} writes", acked.len());

    assert_eq!(client.session_id(), session);
    assert!(client.state().is_connected(), "{:?}", client.state());
    assert!(client.exists("/owner", false).await.unwrap().is_some());
    let want = version_of(&shrunk);
    for m in &members {
        let c = Client::connect(&format!("127.0.0.1:{}", m.client))
            .await
            .unwrap_or_else(|e| panic!("server.{}: {e}", m.id));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            c.sync("/").await.unwrap();
            let (cfg, _) = c.get_config(false).await.unwrap();
            if version_of(&cfg) == want {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "server.{} stays on {}",
                m.id,
                String::from_utf8_lossy(&cfg)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for path in &acked {
            assert!(
                c.exists(path, false).await.unwrap().is_some(),
                "acknowledged write {path} lost on server.{}",
                m.id
            );
        }
        let owner = c.exists("/owner", false).await.unwrap().expect("/owner");
        assert_eq!(owner.ephemeral_owner, session, "server.{}", m.id);
    }
    for m in &mut members {
        m.process.kill9();
    }
}

/// The Java CLI script of [`java_cli_reconfig_prints_the_same_against_zk_server_and_apache`]:
/// `{SPEC<n>}` is member n's spec, `{V1}` the config version before the script ran.
const CLI_RECONFIG_SCRIPT: &str = "addauth digest super:test
config
reconfig -add server.4={SPEC4}
config
reconfig -remove 4
config
reconfig -members server.1={SPEC1},server.2={SPEC2},server.3={SPEC3},server.4={SPEC4}
config
reconfig -add server.5=127.0.0.1:notaport
reconfig -add server.5
reconfig -remove 1,2,3,4
reconfig -v {V1} -remove 3
config
";

/// The same without `addauth`: a non-super caller.
const CLI_RECONFIG_NOAUTH: &str = "reconfig -remove 3
reconfig -add server.5=127.0.0.1:1:2;3
config
";

/// Java CLI output with what must differ between two ensembles masked: every port of
/// `specs` (member n's client, quorum and election ports become `c<n>`, `q<n>`, `e<n>`),
/// and each config version, which becomes `V<k>` by its order of first appearance (so
/// that the same version printed twice still reads the same). Watcher blocks are dropped:
/// Java prints them from its event thread, racing the commands' output.
fn mask_cli(out: &str, specs: &[String], versions: &mut Vec<String>) -> Vec<String> {
    let mut ports = std::collections::HashMap::new();
    for (i, spec) in specs.iter().enumerate() {
        // host:quorum:election:role;host:client
        let (quorum, client) = spec.split_once(';').unwrap();
        let q: Vec<&str> = quorum.split(':').collect();
        let c = client.rsplit(':').next().unwrap();
        ports.insert(q[1].to_owned(), format!("q{}", i + 1));
        ports.insert(q[2].to_owned(), format!("e{}", i + 1));
        ports.insert(c.to_owned(), format!("c{}", i + 1));
    }
    let mut lines = Vec::new();
    let (plain, _events) = tests::apache::split_cli_events(out);
    for l in plain.iter().map(String::as_str) {
        if let Some(v) = l.strip_prefix("version=") {
            let k = match versions.iter().position(|x| x == v) {
                Some(k) => k,
                None => {
                    versions.push(v.to_owned());
                    versions.len() - 1
                }
            };
            lines.push(format!("version=V{}", k + 1));
            continue;
        }
        // Every run of digits after a ':' that is one of the ensemble's ports.
        let mut masked = String::new();
        let mut rest = l;
        while let Some(at) = rest.find(':') {
            masked.push_str(&rest[..=at]);
            rest = &rest[at + 1..];
            let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            match ports.get(&rest[..digits]) {
                Some(name) => masked.push_str(name),
                None => masked.push_str(&rest[..digits]),
            }
            rest = &rest[digits..];
        }
        masked.push_str(rest);
        lines.push(masked);
    }
    lines
}

/// Runs the reconfig CLI scripts against a 3-member ensemble of `kind` (reconfigEnabled,
/// `super:test`), a fourth member of the same kind started and synced as a non-voter
/// first (as a joiner must be); returns the masked output of the super script then of the
/// non-super one, the raw outputs (for failure messages) and the config versions in the
/// order they first appeared.
async fn cli_reconfig_run(kind: tests::mixed::Kind) -> (Vec<String>, String, Vec<i64>) {
    let t = Duration::from_secs(60);
    let ens = three_voters_and_a_joiner([kind; 4], t).await;
    let specs: Vec<String> = (0..4).map(|i| ens.spec(i).to_owned()).collect();
    let connect: String = ens.members[..3]
        .iter()
        .map(|m| format!("127.0.0.1:{}", m.port))
        .collect::<Vec<_>>()
        .join(",");
    let c = zk_client::Client::connect(&connect).await.unwrap();
    let (first, _) = c.get_config(false).await.unwrap();
    c.close().await.unwrap();
    let mut script = CLI_RECONFIG_SCRIPT.replace("{V1}", &format!("{:x}", version_of(&first)));
    for (i, s) in specs.iter().enumerate() {
        script = script.replace(&format!("{{SPEC{}}}", i + 1), s);
    }
    let mut raw = String::new();
    let mut versions = Vec::new();
    let mut masked = Vec::new();
    for (name, script) in [
        ("super", script.as_str()),
        ("not super", CLI_RECONFIG_NOAUTH),
    ] {
        let cmd = tokio::process::Command::from(tests::apache::cli_command(&connect));
        let out = tests::apache::run_feeding(cmd, script).await;
        raw.push_str(&format!("---- {name} script:\n{out}"));
        masked.push(format!("---- {name} script"));
        masked.extend(mask_cli(&out, &specs, &mut versions));
    }
    drop(ens);
    let versions = versions
        .iter()
        .map(|v| i64::from_str_radix(v, 16).unwrap())
        .collect();
    (masked, raw, versions)
}

/// Apache's own Java CLI (`ZooKeeperMain`) runs the same `reconfig` script against a
/// zk-server ensemble and an Apache 3.8 one, configured alike: `config`, `reconfig -add`
/// of a synced joiner, `-remove`, `-members` with the full list, a malformed spec, leaving
/// every participant, a stale `-v`, and a caller who is not super. Both print the same
/// lines once ports and config versions (numbered by first appearance) are masked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn java_cli_reconfig_prints_the_same_against_zk_server_and_apache() {
    use tests::mixed::Kind;
    let (want, want_raw, want_versions) = cli_reconfig_run(Kind::Apache).await;
    let (got, got_raw, got_versions) = cli_reconfig_run(Kind::ZkServer).await;
    eprintln!("==== Apache:\n{want_raw}\n==== zk-server:\n{got_raw}");
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "line {i}: zk-server (left) and Apache (right) differ");
    }
    assert_eq!(
        got.len(),
        want.len(),
        "zk-server:\n{got:#?}\nApache:\n{want:#?}"
    );
    // The script did what it says, on Apache (so on both): three reconfigs committed, each
    // a new, higher version; the three bad ones, the stale one and the two non-super ones
    // refused, leaving the config of the last good one.
    let count = |what: &str| want.iter().filter(|l| *l == what).count();
    assert_eq!(count("Committed new configuration:"), 3, "{want_raw}");
    assert_eq!(count("Arguments are not valid : "), 3, "{want_raw}");
    assert_eq!(count("version No is not valid : "), 1, "{want_raw}");
    assert_eq!(count("Insufficient permission : "), 2, "{want_raw}");
    assert_eq!(count("version=V4"), 4, "{want_raw}");
    for versions in [&want_versions, &got_versions] {
        assert_eq!(versions.len(), 4, "{versions:x?}");
        assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:x?}");
    }
    assert_eq!(
        want.iter().filter(|l| l.starts_with("server.4=")).count(),
        6,
        "server.4 listed after -add and -members (reply and config), and in the last two configs"
    );
}
