//! The `zk-server` binary: zoo.cfg and -D properties, clear config errors, SIGTERM.

use std::io::Write;
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tests::apache::four_letter;
use tests::ports::free_port;
use tests::raw::read_frame;
use tests::zk_processes::{zk_server_bin, ServerProcess};
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
    let port = free_port().unwrap();
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
    let mut p = ServerProcess::start_with(
        &cfg,
        &["-Dzookeeper.extendedTypesEnabled=true", "-Dsome.unknown=1"],
    )
    .unwrap();
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

    let pid = p.id().unwrap();
    let st = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let code = loop {
        if let Some(code) = p.child().unwrap().try_wait().unwrap() {
            break code;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    p.forget();
    assert!(code.success(), "{code:?}");

    // Restarted on the same dataDir (now with three runtime workers), the node is still
    // there (NodeExists).
    let p = ServerProcess::start_with(
        &cfg,
        &[
            "-Dzookeeper.extendedTypesEnabled=true",
            "-Dzookeeper.serverThreads=3",
        ],
    )
    .unwrap();
    wait_serving(port);
    assert_eq!(create_ttl(port, "/ttl"), ErrorCode::NodeExists);
    assert_eq!(runtime_workers(p.id().unwrap()), 3);
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
    let port = free_port().unwrap();
    let cfg = dir.path().join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!("dataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\nextendedTypesEnabled=true\nserverThreads=1\n", dir.path().display()),
    )
    .unwrap();
    let p = ServerProcess::start_with(&cfg, &[]).unwrap();
    wait_serving(port);
    assert_eq!(create_ttl(port, "/t"), ErrorCode::Ok);
    // One thread runs everything: no runtime worker threads.
    assert_eq!(runtime_workers(p.id().unwrap()), 0);
}

#[test]
fn malformed_config_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("zoo.cfg");
    std::fs::write(&cfg, "tickTime=2000\ndataDir=/tmp/x\nthis line is wrong\n").unwrap();
    let out = Command::new(zk_server_bin().unwrap())
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 3"), "{err}");

    std::fs::write(&cfg, "clientPort=notaport\n").unwrap();
    let out = Command::new(zk_server_bin().unwrap())
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("clientPort"));

    let out = Command::new(zk_server_bin().unwrap()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage"));
}

/// Runs the binary on `cfg_text` (written to a zoo.cfg in `dir`), expecting it to refuse
/// to start: its exit code and stderr.
fn refused(dir: &std::path::Path, cfg_text: &str, props: &[&str]) -> (Option<i32>, String) {
    let cfg = dir.join("zoo.cfg");
    std::fs::write(&cfg, cfg_text).unwrap();
    let mut child = Command::new(zk_server_bin().unwrap())
        .args(props)
        .arg(&cfg)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("zk-server started on a config it should refuse:\n{cfg_text}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// The config an operator of a secured Apache ensemble has: zk-server must not serve it
/// in plaintext without authentication. It stops before binding anything or touching
/// dataDir, naming the key and its line.
#[test]
fn secured_config_fails_closed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let port = free_port().unwrap();
    let base = format!(
        "tickTime=2000\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n",
        data.display()
    );
    let cases: &[(&str, &[&str], &str)] = &[
        ("ssl.crl=true\n", &[], "line 5"),
        ("authProvider.1=com.example.MyAuthProvider\n", &[], "line 5"),
        ("requireClientAuthScheme=sasl\n", &[], "line 5"),
        // Quorum TLS without its stores, or with checks we do not provide.
        ("sslQuorum=true\n", &[], "ssl.quorum.keyStore.location"),
        (
            "portUnification=true\n",
            &[],
            "ssl.quorum.keyStore.location",
        ),
        ("ssl.quorum.crl=true\n", &[], "line 5"),
        (
            "",
            &["-Dzookeeper.ssl.quorum.ocsp=true"],
            "-Dzookeeper.ssl.quorum.ocsp",
        ),
        // Where Apache would not read them, the quorum switches are refused.
        ("", &["-DsslQuorum=true"], "-DsslQuorum"),
        (
            "",
            &["-Dquorum.auth.enableSasl=true"],
            "-Dquorum.auth.enableSasl",
        ),
        // Kerberos between members: a key Apache does not have, and the service
        // principal where Apache does not read it.
        (
            "quorum.auth.kerberos.keytab=/etc/zk.keytab\n",
            &[],
            "line 5",
        ),
        (
            "",
            &["-Dquorum.auth.kerberos.servicePrincipal=zkquorum/_HOST"],
            "-Dquorum.auth.kerberos.servicePrincipal",
        ),
        // Enforcement without schemes, or of sasl without its provider, as Apache.
        ("enforce.auth.enabled=true\n", &[], "enforce.auth.schemes"),
        (
            "enforce.auth.enabled=true\nenforce.auth.schemes=sasl\n",
            &[],
            "sasl is not available",
        ),
        // Quorum SASL without its JAAS sections, or inconsistently switched, as Apache.
        (
            "quorum.auth.enableSasl=true\n",
            &[],
            "-Djava.security.auth.login.config",
        ),
        (
            "quorum.auth.serverRequireSasl=true\n",
            &[],
            "quorum.auth.enableSasl is disabled",
        ),
        (
            "",
            &["-Djava.security.auth.login.config=/etc/zk/jaas.conf"],
            "-Djava.security.auth.login.config",
        ),
        ("", &["-Dzookeeper.ssl.ocsp=true"], "-Dzookeeper.ssl.ocsp"),
    ];
    for (extra, props, place) in cases {
        let (code, err) = refused(dir.path(), &format!("{base}{extra}"), props);
        assert_eq!(code, Some(2), "{extra}{props:?}: {err}");
        let key = extra
            .split('=')
            .next()
            .filter(|k| !k.is_empty())
            .unwrap_or(place);
        assert!(
            err.contains(place) && err.contains(key) && err.contains("refusing to start"),
            "{extra}{props:?}: {err}"
        );
        assert!(
            TcpStream::connect(("127.0.0.1", port)).is_err(),
            "plain client port open"
        );
        assert_eq!(
            std::fs::read_dir(&data).unwrap().count(),
            0,
            "dataDir written"
        );
    }
    // An ensemble member whose quorum stores cannot be read: stopped before it binds.
    let member_dir = tempfile::tempdir().unwrap();
    let member_data = member_dir.path().join("data");
    std::fs::create_dir(&member_data).unwrap();
    std::fs::write(member_data.join("myid"), "1\n").unwrap();
    let p = tests::ports::free_ports(4).unwrap();
    let (code, err) = refused(
        member_dir.path(),
        &format!(
            "tickTime=2000\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
             server.1=127.0.0.1:{}:{}\nserver.2=127.0.0.1:{}:{}\nsslQuorum=true\n\
             ssl.quorum.keyStore.location=/nonexistent/quorum.pem\n\
             ssl.quorum.trustStore.location=/nonexistent/ca.pem\n",
            member_data.display(),
            p[0],
            p[1],
            p[2],
            p[3]
        ),
        &[],
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("ssl.quorum.trustStore.location: cannot read /nonexistent/ca.pem")
            && err.contains("refusing to start"),
        "{err}"
    );
    for q in [port, p[0], p[1]] {
        assert!(
            TcpStream::connect(("127.0.0.1", q)).is_err(),
            "port {q} open"
        );
    }
    // TLS asked for with a keystore that cannot be read: stopped, naming the file.
    let (code, err) = refused(
        dir.path(),
        &format!("{base}secureClientPort={}\nssl.keyStore.location=/nonexistent/ks.jks\nssl.clientAuth=none\n", free_port().expect("free port")),
        &[],
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("/nonexistent/ks.jks"), "{err}");
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "plain client port open"
    );
    assert_eq!(
        std::fs::read_dir(&data).unwrap().count(),
        0,
        "dataDir written"
    );
}

/// No dataDir is an error, as in Apache, rather than a silent /tmp/zookeeper; and a server
/// that cannot bind its port leaves dataDir as it found it.
#[test]
fn data_dir_required_and_untouched_when_the_port_is_taken() {
    let dir = tempfile::tempdir().unwrap();
    let (code, err) = refused(dir.path(), "tickTime=2000\nclientPort=2181\n", &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("dataDir is not set"), "{err}");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let (code, err) = refused(
        dir.path(),
        &format!(
            "dataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n",
            data.display()
        ),
        &[],
    );
    assert_ne!(code, Some(0), "{err}");
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert_eq!(
        std::fs::read_dir(&data).unwrap().count(),
        0,
        "dataDir written"
    );
}

/// What an operator types first: `--help` and `--version` answer on stdout and exit 0; an
/// unknown option is named and exits 2 (it never opens a file called `--help`).
#[test]
fn help_and_version_flags() {
    let bin = zk_server_bin().unwrap();
    for flag in ["--help", "-h"] {
        let out = Command::new(&bin).arg(flag).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{flag}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.starts_with("usage: zk-server") && text.contains("--log-format"),
            "{flag}: {text}"
        );
    }
    for flag in ["--version", "-V"] {
        let out = Command::new(&bin).arg(flag).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{flag}");
        let text = String::from_utf8_lossy(&out.stdout);
        // zk-server 0.1.0 (git 0123456789ab, built 2026-12-04 23:59 UTC); ...
        let re_date = text
            .split("built ")
            .nth(1)
            .and_then(|t| t.get(..10))
            .unwrap_or("");
        assert!(
            text.starts_with(&format!("zk-server {} (git ", env!("CARGO_PKG_VERSION"))),
            "{text}"
        );
        assert!(
            re_date.len() == 10 && re_date.as_bytes()[4] == b'-' && !re_date.starts_with("1970"),
            "a real build date: {text}"
        );
    }
    let out = Command::new(&bin).arg("--frobnicate").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown option --frobnicate") && err.contains("usage"),
        "{err}"
    );
}

/// Logs written to a pipe or a file carry no terminal escape codes; `--log-format json`
/// writes one JSON object per line; the first line names the version and the effective
/// settings, and the version matches what `srvr` reports.
#[test]
fn logs_are_plain_when_piped_and_json_on_request() {
    for json in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port().unwrap();
        let cfg = dir.path().join("zoo.cfg");
        std::fs::write(
            &cfg,
            format!(
                "tickTime=500\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
                 admin.enableServer=false\n",
                dir.path().display()
            ),
        )
        .unwrap();
        let log = dir.path().join("server.log");
        let file = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(zk_server_bin().unwrap());
        if json {
            cmd.args(["--log-format", "json"]);
        }
        // Killed by its handle even if an assertion below fails first.
        struct Killed(std::process::Child);
        impl Drop for Killed {
            fn drop(&mut self) {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
        let child = Killed(
            cmd.arg(&cfg)
                .env("RUST_LOG", "info")
                .stdout(file.try_clone().unwrap())
                .stderr(file)
                .spawn()
                .unwrap(),
        );
        wait_serving(port);
        let srvr = four_letter(port, "srvr");
        drop(child);
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(
            !text.contains('\u{1b}'),
            "escape codes in a log file:\n{text}"
        );
        let first = text.lines().next().unwrap_or_default();
        assert!(
            first.contains("starting from")
                && first.contains(&format!("clientPort={port}"))
                && first.contains("tickTime=500"),
            "{first}"
        );
        // srvr: "Zookeeper version: 3.8.0-zk-rs-0.1.0-<commit>, built on <date> UTC"
        let version = srvr
            .lines()
            .find_map(|l| l.strip_prefix("Zookeeper version: 3.8.0-zk-rs-"))
            .unwrap_or_else(|| panic!("{srvr}"));
        let commit = version
            .split(',')
            .next()
            .and_then(|v| v.rsplit('-').next())
            .unwrap_or_default();
        assert!(
            first.contains(&format!("git {commit}")),
            "{first} vs {srvr}"
        );
        if json {
            for line in text.lines() {
                assert!(
                    line.starts_with('{') && line.ends_with('}') && line.contains("\"level\":"),
                    "not a JSON line: {line}"
                );
            }
        }
    }
}
