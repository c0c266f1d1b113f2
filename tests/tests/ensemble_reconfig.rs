//! Dynamic reconfiguration (`reconfig`) against zk-server ensembles started with
//! `reconfigEnabled=true`: kazoo's own `TestReconfig` passes against zk-server processes
//! started by kazoo's test harness, and every reconfig error case (and an observer added
//! then removed) gets the same answer from a zk-server ensemble as from Apache 3.8.

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

/// The directory of kazoo's own tests (installed with kazoo).
fn kazoo_tests_dir() -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "import os, kazoo.tests; print(os.path.dirname(kazoo.tests.__file__))",
        ])
        .output()
        .expect("python3 runs");
    assert!(out.status.success(), "kazoo is not installed");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A `java` that kazoo's harness runs as `java -cp .. QuorumPeerMain zoo.cfg`: it starts
/// zk-server on that zoo.cfg with the `-D` properties instead. The harness's TLS port
/// goes: it makes X.509 v1 certificates, which rustls refuses (TestReconfig uses no TLS).
fn java_shim(dir: &Path, bin: &Path) {
    let shim = dir.join("java");
    std::fs::write(
        &shim,
        format!(
            "#!/bin/sh\nprops=\"\"\ncfg=\"\"\nfor a in \"$@\"; do\n  case \"$a\" in\n    \
             -D*) props=\"$props $a\" ;;\n    *) cfg=\"$a\" ;;\n  esac\ndone\n\
             sed -i '/^secureClientPort=/d; /^ssl\\./d' \"$cfg\"\nexec {} $props \"$cfg\"\n",
            bin.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn kazoo_test_reconfig_passes_against_zk_server() {
    let bin = zk_server_bin().expect("zk-server binary");
    let dir = tempfile::tempdir().unwrap();
    java_shim(dir.path(), &bin);
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // kazoo's cluster takes client ports offset+0..2, and more above: a free block.
    let offset = free_ports(1).unwrap()[0].saturating_sub(100).max(20000);
    let tests = kazoo_tests_dir();
    let out = Command::new("python3")
        .args([
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-W",
            "ignore",
            &format!("{tests}/test_client.py"),
            "-k",
            "TestReconfig",
        ])
        .current_dir(dir.path())
        .env("PATH", path)
        .env("ZOOKEEPER_VERSION", "3.8.0")
        .env("ZOOKEEPER_CLASSPATH", tests::apache::classpath())
        .env("ZOOKEEPER_PORT_OFFSET", offset.to_string())
        .env("RUST_LOG", "warn")
        .output()
        .expect("pytest runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("3 passed"),
        "kazoo's TestReconfig against zk-server:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
