//! The `zk-server` binary: zoo.cfg and -D properties, clear config errors, SIGTERM.

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use support::{four_letter, free_port, read_frame, Proc};
use zk_proto::ops::CreateTtlRequest;
use zk_proto::{
    write_frame, Acl, ConnectRequest, ConnectResponse, CreateMode, ErrorCode, OpCode, Record,
    ReplyHeader, RequestHeader,
};

/// Creates a TTL node through a raw session: works only with extended types on.
fn create_ttl(port: u16, path: &str) -> ErrorCode {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut b = BytesMut::new();
    write_frame(&mut b, |w| {
        ConnectRequest {
            timeout: 4000,
            passwd: vec![0; 16].into(),
            ..Default::default()
        }
        .write(w)
    });
    write_frame(&mut b, |w| {
        RequestHeader {
            xid: 1,
            opcode: OpCode::CreateTtl,
        }
        .write(w);
        CreateTtlRequest {
            path: path.into(),
            data: None,
            acl: Acl::open_unsafe(),
            flags: CreateMode::PersistentWithTtl.to_flags(),
            ttl: 60_000,
        }
        .write(w);
    });
    s.write_all(&b).unwrap();
    let resp = ConnectResponse::decode(read_frame(&mut s).unwrap()).unwrap();
    assert!(resp.timeout > 0);
    let frame = read_frame(&mut s).unwrap();
    let mut r = zk_proto::JuteReader::new(frame);
    ReplyHeader::read(&mut r).unwrap().err
}

fn wait_serving(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !four_letter(port, "srvr").contains("Mode: standalone") {
        assert!(Instant::now() < deadline, "server did not come up");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn runs_from_zoo_cfg_with_properties_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = dir.path().join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "# a comment\ntickTime=500\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n4lw.commands.whitelist=srvr, conf, ruok\nadmin.enableServer=false\nserverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory\n",
            dir.path().display()
        ),
    )
    .unwrap();
    std::fs::write(dir.path().join("myid"), "7\n").unwrap();
    let mut p = Proc::start_with(
        &cfg,
        &["-Dzookeeper.extendedTypesEnabled=true", "-Dsome.unknown=1"],
    );
    wait_serving(port);
    let conf = four_letter(port, "conf");
    assert!(conf.contains(&format!("clientPort={port}")), "{conf}");
    assert!(conf.contains("tickTime=500"), "{conf}");
    assert!(conf.contains("minSessionTimeout=1000"), "{conf}");
    assert!(conf.contains("serverId=7"), "{conf}");
    assert_eq!(four_letter(port, "ruok"), "imok");
    assert_eq!(
        four_letter(port, "stat"),
        "stat is not executed because it is not in the whitelist.\n"
    );
    assert_eq!(
        create_ttl(port, "/ttl"),
        ErrorCode::Ok,
        "-D property enabled TTL nodes"
    );

    let pid = p.0.as_ref().unwrap().id();
    let st = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let code = loop {
        if let Some(code) = p.0.as_mut().unwrap().try_wait().unwrap() {
            break code;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    p.0.take();
    assert!(code.success(), "{code:?}");

    // Restarted on the same dataDir (now with three runtime workers), the node is still
    // there (NodeExists).
    let p = Proc::start_with(
        &cfg,
        &[
            "-Dzookeeper.extendedTypesEnabled=true",
            "-Dzookeeper.serverThreads=3",
        ],
    );
    wait_serving(port);
    assert_eq!(create_ttl(port, "/ttl"), ErrorCode::NodeExists);
    assert_eq!(runtime_workers(p.0.as_ref().unwrap().id()), 3);
}

/// Threads of a process named as tokio's multi-thread runtime names its workers.
fn runtime_workers(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.unwrap().path().join("comm")).ok())
        .filter(|name| name.trim() == "tokio-rt-worker")
        .count()
}

#[test]
fn zoo_cfg_keys_map_to_properties() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = dir.path().join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!("dataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\nextendedTypesEnabled=true\nserverThreads=1\n", dir.path().display()),
    )
    .unwrap();
    let p = Proc::start_with(&cfg, &[]);
    wait_serving(port);
    assert_eq!(create_ttl(port, "/t"), ErrorCode::Ok);
    // One thread runs everything: no runtime worker threads.
    assert_eq!(runtime_workers(p.0.as_ref().unwrap().id()), 0);
}

#[test]
fn malformed_config_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("zoo.cfg");
    std::fs::write(&cfg, "tickTime=2000\ndataDir=/tmp/x\nthis line is wrong\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_zk-server"))
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 3"), "{err}");

    std::fs::write(&cfg, "clientPort=notaport\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_zk-server"))
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("clientPort"));

    let out = Command::new(env!("CARGO_BIN_EXE_zk-server"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage"));
}
