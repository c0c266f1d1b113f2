//! kazoo's own test suite, in full, against 3-member zk-server ensembles started by kazoo's
//! harness (through `tests::kazoo`'s `java` shim): every test file kazoo installs, with its
//! gevent and eventlet handler variants, `TestSSLClient` over the TLS port with the
//! harness's JKS stores and X.509 v1 certificates, SASL DIGEST-MD5, and `test_build` (its
//! version check runs with `CI` set), and its Kerberos tests with a KDC of kazoo's realm
//! (`tests::kerberos`). Zero failures, zero errors and zero skips.
//!
//! The 493 tests take about 4 minutes in one pytest run on two cores; they are split into
//! two halves, one per test here, each on its own cluster and ports, which cargo runs side
//! by side (about 4 minutes in all on a busy two-core machine, the longer half 2m45s).

use std::collections::BTreeSet;

use std::path::PathBuf;

use tests::kazoo::{tests_dir, Harness};
use tests::kerberos::Kdc;
use tests::zk_processes::zk_server_bin;

/// The half that reruns `test_client.py` under each handler.
const CLIENT_FILES: &[&str] = &[
    "test_client.py",
    "test_gevent_handler.py",
    "test_eventlet_handler.py",
];

/// Every other test file of kazoo, listed so that a file added by a newer kazoo fails the
/// coverage check below instead of going unrun.
const OTHER_FILES: &[&str] = &[
    "test_barrier.py",
    "test_build.py",
    "test_cache.py",
    "test_connection.py",
    "test_counter.py",
    "test_election.py",
    "test_exceptions.py",
    "test_hosts.py",
    "test_interrupt.py",
    "test_lease.py",
    "test_lock.py",
    "test_partitioner.py",
    "test_party.py",
    "test_paths.py",
    "test_queue.py",
    "test_retry.py",
    "test_sasl.py",
    "test_security.py",
    "test_selectors_select.py",
    "test_threading_handler.py",
    "test_utils.py",
    "test_watchers.py",
];

/// Runs `files` of kazoo's suite with `env` set; panics with pytest's report unless every
/// test passed (a skipped test did not run: that fails too).
fn run(files: &[&str], env: &[(&str, PathBuf)]) {
    let dir = tests_dir().expect("kazoo's tests");
    let bin = zk_server_bin().expect("zk-server binary");
    let mut harness = Harness::new(&bin).expect("java shim");
    for (k, v) in env {
        harness = harness.env(k, v);
    }
    let paths: Vec<String> = files
        .iter()
        .map(|f| dir.join(f).display().to_string())
        .collect();
    let args: Vec<&str> = paths.iter().map(String::as_str).collect();
    let out = harness.pytest(&args).expect("pytest runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = format!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let summary = stdout
        .lines()
        .rev()
        .find(|l| l.contains(" passed") || l.contains(" failed") || l.contains(" error"))
        .unwrap_or("");
    assert!(
        out.status.success() && !summary.contains("failed") && !summary.contains("error"),
        "kazoo's {files:?} against zk-server: {summary}\n{report}"
    );
    if let Some(skip) = stdout.lines().find(|l| l.starts_with("SKIPPED")) {
        panic!("a kazoo test did not run: {skip}\n{report}");
    }
    let words: Vec<&str> = summary.split_whitespace().collect();
    let passed: u32 = words
        .windows(2)
        .find(|w| w[1].trim_end_matches(',') == "passed")
        .and_then(|w| w[0].parse().ok())
        .unwrap_or(0);
    assert!(passed > 50, "kazoo ran too few tests: {summary}\n{report}");
}

#[test]
fn kazoo_suite_lists_every_test_file() {
    let dir = tests_dir().expect("kazoo's tests");
    let installed: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("test_") && n.ends_with(".py"))
        .collect();
    let ours: BTreeSet<String> = CLIENT_FILES
        .iter()
        .chain(OTHER_FILES)
        .map(|s| s.to_string())
        .collect();
    assert_eq!(installed, ours, "kazoo's test files in {}", dir.display());
}

#[test]
fn kazoo_client_tests_pass_against_zk_server() {
    run(CLIENT_FILES, &[]);
}

#[test]
fn kazoo_recipe_connection_and_security_tests_pass_against_zk_server() {
    // kazoo's GSSAPI tests: its realm, `zookeeper/127.0.0.1` for the members (their JAAS
    // `Server` section names `${KRB5_TEST_ENV}/server.keytab`) and `client`, whose keytab
    // the tests kinit from into the ticket cache `KRB5CCNAME`.
    let kdc = Kdc::start_realm("KAZOOTEST.ORG").expect("KDC");
    kdc.keytab("server.keytab", &["zookeeper/127.0.0.1"])
        .expect("server keytab");
    kdc.keytab("client.keytab", &["client"])
        .expect("client keytab");
    let ccache = kdc.dir().join("ccache");
    run(
        OTHER_FILES,
        &[
            ("KRB5_TEST_ENV", kdc.dir().to_path_buf()),
            ("KRB5_CONFIG", kdc.krb5_conf()),
            (
                "KRB5CCNAME",
                PathBuf::from(format!("FILE:{}", ccache.display())),
            ),
        ],
    );
}
