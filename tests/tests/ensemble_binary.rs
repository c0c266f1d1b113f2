//! Three `zk-server` processes started from zoo.cfg files with `server.N` lines and
//! `myid` form an ensemble: one leads (`srvr` says so), writes through one member are
//! read on another, `kill -9` of the leader leaves a working majority, and the killed
//! member catches up from its on-disk txn log when restarted.
//!
//! The zoo.cfg files are written here rather than by `tests::zk_processes::ProcessEnsemble`:
//! what is tested is the config shape itself (member 1 names its client port with
//! `clientPort=`, the others in their `server.N` line; `dataLogDir` apart from `dataDir`).

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tests::apache::four_letter;
use tests::ports::free_ports;
use tests::raw::read_frame;
use tests::zk_processes::ServerProcess;
use zk_proto::ops::{CreateRequest, GetDataResponse, PathWatchRequest};
use zk_proto::{
    write_frame, Acl, ConnectRequest, ConnectResponse, CreateMode, ErrorCode, JuteReader, OpCode,
    Record, ReplyHeader, RequestHeader,
};

fn mode(port: u16) -> Option<String> {
    four_letter(port, "srvr")
        .lines()
        .find_map(|l| l.strip_prefix("Mode: ").map(str::to_owned))
}

/// One request on a fresh session; `None` when the member is not serving (it closes
/// the connection) or the connection broke.
fn call(port: u16, op: OpCode, body: impl Fn(&mut BytesMut)) -> Option<(ErrorCode, JuteReader)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut b = BytesMut::new();
    write_frame(&mut b, |w| {
        ConnectRequest {
            timeout: 4000,
            passwd: vec![0; 16].into(),
            read_only: Some(false),
            ..Default::default()
        }
        .write(w)
    });
    s.write_all(&b).ok()?;
    let resp = ConnectResponse::decode(read_frame(&mut s).ok()?).ok()?;
    if resp.timeout <= 0 {
        return None;
    }
    let mut b = BytesMut::new();
    write_frame(&mut b, |w| {
        RequestHeader { xid: 1, opcode: op }.write(w);
        body(w);
    });
    s.write_all(&b).ok()?;
    let mut r = JuteReader::new(read_frame(&mut s).ok()?);
    let h = ReplyHeader::read(&mut r).ok()?;
    Some((h.err, r))
}

fn poll<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Creates `path` through member `port`, retrying while it has no quorum.
fn create(port: u16, path: &str, data: &str) {
    poll(&format!("create {path} on :{port}"), || {
        let (err, _) = call(port, OpCode::Create, |w| {
            CreateRequest {
                path: path.into(),
                data: Some(data.as_bytes().to_vec().into()),
                acl: Acl::open_unsafe(),
                flags: CreateMode::Persistent.to_flags(),
            }
            .write(w)
        })?;
        // NodeExists: an earlier try committed but its reply was lost with the quorum.
        (err == ErrorCode::Ok || err == ErrorCode::NodeExists).then_some(())
    });
}

/// Waits until member `port` serves `path` with `data`.
fn read(port: u16, path: &str, data: &str) {
    poll(&format!("{path} on :{port}"), || {
        let (err, mut body) = call(port, OpCode::GetData, |w| {
            PathWatchRequest {
                path: path.into(),
                watch: false,
            }
            .write(w)
        })?;
        if err != ErrorCode::Ok {
            return None;
        }
        let d = GetDataResponse::read(&mut body).ok()?;
        (d.data.as_deref() == Some(data.as_bytes())).then_some(())
    });
}

/// Waits until the members on `ports` report one leader and followers; returns the
/// leader's index.
fn wait_roles(ports: &[(usize, u16)]) -> usize {
    poll("one leader and followers", || {
        let modes: Vec<(usize, Option<String>)> =
            ports.iter().map(|(i, p)| (*i, mode(*p))).collect();
        let leaders: Vec<usize> = modes
            .iter()
            .filter(|(_, m)| m.as_deref() == Some("leader"))
            .map(|(i, _)| *i)
            .collect();
        let followers = modes
            .iter()
            .filter(|(_, m)| m.as_deref() == Some("follower"))
            .count();
        (leaders.len() == 1 && followers == ports.len() - 1).then(|| leaders[0])
    })
}

struct Member {
    cfg: PathBuf,
    client: u16,
    data_log_dir: PathBuf,
    data_dir: PathBuf,
}

fn write_configs(root: &Path, n: usize) -> Vec<Member> {
    let ports: Vec<(u16, u16, u16)> = free_ports(3 * n)
        .unwrap()
        .chunks(3)
        .map(|p| (p[0], p[1], p[2]))
        .collect();
    // Member 1's line has no `;clientPort` (it uses clientPort=); the others' do.
    let servers: String = ports
        .iter()
        .enumerate()
        .map(|(i, (c, q, e))| {
            let suffix = if i == 0 {
                String::new()
            } else {
                format!(";127.0.0.1:{c}")
            };
            format!("server.{}=127.0.0.1:{q}:{e}{suffix}\n", i + 1)
        })
        .collect();
    ports
        .iter()
        .enumerate()
        .map(|(i, (c, _, _))| {
            let dir = root.join(format!("m{}", i + 1));
            let data_dir = dir.join("data");
            let data_log_dir = dir.join("log");
            std::fs::create_dir_all(&data_dir).unwrap();
            std::fs::write(data_dir.join("myid"), format!("{}\n", i + 1)).unwrap();
            let client_line = if i == 0 {
                format!("clientPort={c}\nclientPortAddress=127.0.0.1\n")
            } else {
                String::new()
            };
            let cfg = dir.join("zoo.cfg");
            std::fs::write(
                &cfg,
                format!(
                    "tickTime=200\ninitLimit=10\nsyncLimit=5\ndataDir={}\ndataLogDir={}\n{client_line}{servers}",
                    data_dir.display(),
                    data_log_dir.display()
                ),
            )
            .unwrap();
            Member {
                cfg,
                client: *c,
                data_log_dir,
                data_dir,
            }
        })
        .collect()
}

#[test]
fn three_processes_elect_replicate_survive_leader_kill_and_catch_up() {
    let root = tempfile::tempdir().unwrap();
    let members = write_configs(root.path(), 3);
    let mut procs: Vec<ServerProcess> = members
        .iter()
        .map(|m| ServerProcess::start(&m.cfg).unwrap())
        .collect();
    let all: Vec<(usize, u16)> = members.iter().map(|m| m.client).enumerate().collect();

    let leader = wait_roles(&all);
    let follower = (leader + 1) % 3;
    let other = (leader + 2) % 3;
    // A write through a follower (forwarded to the leader) is read on the other one.
    create(members[follower].client, "/a", "one");
    read(members[other].client, "/a", "one");
    read(members[leader].client, "/a", "one");

    // The txn log went to dataLogDir and the epoch files to dataDir.
    for m in &members {
        let logs = std::fs::read_dir(m.data_log_dir.join("version-2"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| e.file_name().to_string_lossy().starts_with("log."))
                    .count()
            })
            .unwrap_or(0);
        assert!(logs > 0, "no txn log in {}", m.data_log_dir.display());
        assert!(
            m.data_dir.join("version-2").join("currentEpoch").exists(),
            "no currentEpoch in {}",
            m.data_dir.display()
        );
    }

    procs[leader].kill9();
    let survivors = [
        (follower, members[follower].client),
        (other, members[other].client),
    ];
    wait_roles(&survivors);
    create(members[other].client, "/b", "two");
    read(members[follower].client, "/b", "two");
    read(members[follower].client, "/a", "one");

    procs[leader] = ServerProcess::start(&members[leader].cfg).unwrap();
    read(members[leader].client, "/a", "one");
    read(members[leader].client, "/b", "two");
    // ... and it writes again as part of the ensemble.
    create(members[leader].client, "/c", "three");
    read(members[follower].client, "/c", "three");
    read(members[other].client, "/c", "three");
    wait_roles(&all);
}
