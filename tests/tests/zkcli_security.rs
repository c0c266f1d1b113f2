//! `zkcli` against secured servers, configured the way an Apache zkCli.sh user does it:
//! `-Dzookeeper.*` system properties in `CLIENT_JVMFLAGS` (TLS: `zookeeper.client.secure`,
//! `zookeeper.clientCnxnSocket`, PEM key and trust stores; SASL: a JAAS file with a
//! `Client` section through `-Djava.security.auth.login.config`), against zk-server and
//! Apache 3.8 alike: a TLS port with `ssl.clientAuth=need`, and DIGEST-MD5 logins whose
//! identity `whoami` shows as Apache's own zkCli shows it.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::Duration;

use tests::apache::{run_feeding_output, ApacheServer};
use tests::sasl::{client_jaas, server_jaas, SASL_PROVIDER};
use tests::tls::{write, Pki};
use tests::zk_processes::zkcli_bin;
use zk_server::config::tls::ClientAuth;
use zk_server::config::ServerConfig;
use zk_server::storage::store::MemoryStore;
use zk_server::Server;

#[derive(Debug)]
struct Run {
    out: String,
    err: String,
    code: Option<i32>,
}

/// zkcli `args` against `server` with `CLIENT_JVMFLAGS` set to `flags` (and nothing else
/// from this process's environment that zkcli reads).
async fn zkcli(server: &str, flags: &str, args: &[&str]) -> Run {
    let mut cmd = tokio::process::Command::new(zkcli_bin().expect("zkcli binary"));
    cmd.args(["-server", server])
        .args(args)
        .env("CLIENT_JVMFLAGS", flags)
        .env_remove("JVMFLAGS")
        .env_remove("ZK_CLIENT_JAAS");
    let o = tokio::time::timeout(Duration::from_secs(60), run_feeding_output(cmd, ""))
        .await
        .expect("zkcli ends");
    Run {
        out: String::from_utf8_lossy(&o.stdout).into_owned(),
        err: String::from_utf8_lossy(&o.stderr).into_owned(),
        code: o.status.code(),
    }
}

/// The JVM flags of an Apache TLS client with these stores.
fn tls_flags(pki: &Pki, key_store: Option<&Path>) -> String {
    let mut f = format!(
        "-Dzookeeper.client.secure=true \
         -Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty \
         -Dzookeeper.ssl.trustStore.location={} -Dzookeeper.ssl.trustStore.type=PEM",
        pki.path("ca.pem").display()
    );
    if let Some(k) = key_store {
        f.push_str(&format!(
            " -Dzookeeper.ssl.keyStore.location={} -Dzookeeper.ssl.keyStore.type=PEM",
            k.display()
        ));
    }
    f
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zkcli_over_tls_with_client_auth_need_on_both_servers() {
    let pki = Pki::new();
    let (cert, key) = pki.ca.leaf("zkcli-user", false);
    let client_pem = write(pki.dir.path(), "client.pem", &format!("{key}{cert}"));

    let mut cfg = ServerConfig::for_tests(pki.dir.path());
    cfg.secure_client_port = Some(0);
    cfg.secure_client_port_address = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
    cfg.ssl.key_store.location = Some(pki.path("server.pem"));
    cfg.ssl.trust_store.location = Some(pki.path("ca.pem"));
    cfg.ssl.client_auth = ClientAuth::Need;
    let ours = Server::start_in_memory(cfg, MemoryStore::new())
        .await
        .expect("zk-server with TLS");
    let ours_addr = ours.secure_addr().expect("secure port").to_string();

    let secure_port = tests::ports::free_port().expect("port");
    let mut props = pki.apache_props();
    props.push("-Dzookeeper.ssl.clientAuth=need".into());
    let cfg_lines = [
        format!("secureClientPort={secure_port}"),
        "secureClientPortAddress=127.0.0.1".to_owned(),
    ];
    // Kept to the end of the test (the server runs while it lives).
    let _apache = tokio::task::spawn_blocking(move || {
        let props: Vec<&str> = props.iter().map(String::as_str).collect();
        let cfg: Vec<&str> = cfg_lines.iter().map(String::as_str).collect();
        ApacheServer::start_with(&props, &cfg)
    })
    .await
    .unwrap()
    .expect("Apache with secureClientPort");
    let apache_addr = format!("127.0.0.1:{secure_port}");

    for (name, addr) in [("zk-server", &ours_addr), ("apache", &apache_addr)] {
        let with_cert = tls_flags(&pki, Some(&client_pem));
        let r = zkcli(addr, &with_cert, &["create", "/tls", "over-tls"]).await;
        assert_eq!(r.code, Some(0), "{name}: {r:?}");
        // zkCli prints it on stderr.
        assert!(r.err.contains("Created /tls"), "{name}: {r:?}");
        let r = zkcli(addr, &with_cert, &["get", "/tls"]).await;
        assert_eq!(r.code, Some(0), "{name}: {r:?}");
        assert!(r.out.contains("over-tls\n"), "{name}: {r:?}");
        // clientAuth=need: without a certificate there is no session.
        let quick = ["-timeout", "3000", "ls", "/"];
        let r = zkcli(addr, &tls_flags(&pki, None), &quick).await;
        assert_ne!(
            r.code,
            Some(0),
            "{name} accepted a client without a certificate"
        );
        assert!(!r.out.contains("[tls, zookeeper]"), "{name}: {r:?}");
        // A plaintext zkcli does not get through a TLS port either.
        let r = zkcli(addr, "", &quick).await;
        assert_ne!(r.code, Some(0), "{name}: plaintext on the TLS port: {r:?}");
    }
    // A key zkcli cannot honour is refused with its name, before connecting.
    let flags = format!(
        "{} -Dzookeeper.ssl.crl=true",
        tls_flags(&pki, Some(&client_pem))
    );
    let r = zkcli(&ours_addr, &flags, &["ls", "/"]).await;
    assert_eq!(r.code, Some(2), "{r:?}");
    assert!(
        r.err.contains("zookeeper.ssl.crl") && r.err.contains("CLIENT_JVMFLAGS"),
        "{r:?}"
    );
    ours.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zkcli_sasl_digest_whoami_on_both_servers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let jaas = server_jaas(dir.path());
    let ours = {
        let jaas = jaas.clone();
        zk_server::testkit::TestServer::start_with(move |cfg| {
            cfg.jaas_file = Some(jaas);
            assert!(cfg
                .apply_property("zookeeper.authProvider.1", SASL_PROVIDER, None)
                .expect("property"));
            cfg.load_security().expect("SASL settings");
        })
        .await
        .expect("zk-server with SASL")
    };
    let props = [
        format!("-Djava.security.auth.login.config={}", jaas.display()),
        format!("-Dzookeeper.authProvider.1={SASL_PROVIDER}"),
    ];
    let apache = tokio::task::spawn_blocking(move || {
        let props: Vec<&str> = props.iter().map(String::as_str).collect();
        ApacheServer::start_with(&props, &[])
    })
    .await
    .unwrap()
    .expect("Apache with SASL");

    let client = client_jaas(dir.path(), "alice", "secret");
    let flags = format!("-Djava.security.auth.login.config={}", client.display());
    // Apache's own zkCli with the same JAAS file, for the line to expect.
    let mut java = tokio::process::Command::from(tests::apache::java(
        &[
            "-Dorg.slf4j.simpleLogger.defaultLogLevel=off",
            &format!("-Djava.security.auth.login.config={}", client.display()),
        ],
        "org.apache.zookeeper.ZooKeeperMain",
    ));
    java.args(["-server", &apache.connect_string(), "whoami"]);
    let theirs = String::from_utf8_lossy(&run_feeding_output(java, "").await.stdout).into_owned();
    assert!(
        theirs.lines().any(|l| l == "sasl: alice"),
        "Apache's zkCli: {theirs}"
    );
    for (name, addr) in [
        ("zk-server", ours.connect_string()),
        ("apache", apache.connect_string()),
    ] {
        let r = zkcli(&addr, &flags, &["whoami"]).await;
        assert_eq!(r.code, Some(0), "{name}: {r:?}");
        assert!(
            r.out.lines().any(|l| l == "sasl: alice"),
            "{name}: whoami shows the SASL id: {r:?}"
        );
        // Without the JAAS file the session has no SASL identity.
        let r = zkcli(&addr, "", &["whoami"]).await;
        assert_eq!(r.code, Some(0), "{name}: {r:?}");
        assert!(!r.out.contains("sasl:"), "{name}: {r:?}");
        // A wrong password is refused, as Apache refuses it.
        let bad = client_jaas(dir.path(), "bob", "wrong");
        let bad_flags = format!("-Djava.security.auth.login.config={}", bad.display());
        let r = zkcli(&addr, &bad_flags, &["whoami"]).await;
        assert!(!r.out.contains("sasl: bob"), "{name}: {r:?}");
    }
    ours.stop().await.expect("stop");
}
