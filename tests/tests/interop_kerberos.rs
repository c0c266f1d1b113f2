//! Kerberos v5 (SASL GSSAPI) logins against a real MIT KDC (`tests::kerberos`, a realm per
//! test): zk-client against Apache ZooKeeper 3.8, Apache's Java client and kazoo against
//! zk-server, zk-client against zk-server; `sasl:` ACLs on Kerberos ids as Apache has them;
//! wrong keytabs and unknown principals refused with the cause.

use std::path::PathBuf;
use std::time::Duration;

use tests::apache::ApacheServer;
use tests::kerberos::{Kdc, REALM, SERVER_PRINCIPAL};
use tests::sasl::{assert_sasl_identity, SASL_PROVIDER};
use zk_client::{Acl, Client, CreateMode, Error, GssapiConfig, Perms};
use zk_server::testkit::TestServer;

/// Upper bound for anything that must not hang.
const WITHIN: Duration = Duration::from_secs(30);

/// The server's JAAS file: `Server` with the keytab of `zookeeper/localhost`.
fn server_jaas(kdc: &Kdc) -> PathBuf {
    let keytab = kdc
        .keytab("zookeeper.keytab", &[SERVER_PRINCIPAL])
        .expect("server keytab");
    let path = kdc.dir().join("server_jaas.conf");
    std::fs::write(
        &path,
        Kdc::jaas_keytab_section("Server", SERVER_PRINCIPAL, &keytab),
    )
    .expect("write server jaas");
    path
}

/// Apache 3.8 standalone taking Kerberos logins.
fn apache_with_kerberos(kdc: &Kdc, extra: &[&str]) -> ApacheServer {
    let jaas = server_jaas(kdc);
    let mut props = kdc.java_props();
    props.push(format!(
        "-Djava.security.auth.login.config={}",
        jaas.display()
    ));
    props.push(format!("-Dzookeeper.authProvider.1={SASL_PROVIDER}"));
    props.extend(extra.iter().map(|s| s.to_string()));
    let props: Vec<&str> = props.iter().map(String::as_str).collect();
    ApacheServer::start_with(&props, &[]).expect("start apache with kerberos")
}

fn keytab_login(kdc: &Kdc, principal: &str) -> GssapiConfig {
    let file = format!("{}.keytab", principal.replace('/', "_"));
    let kt = kdc.keytab(&file, &[principal]).expect("client keytab");
    GssapiConfig::keytab(&format!("{principal}@{REALM}"), kt)
}

async fn connect(hosts: &str, login: GssapiConfig) -> zk_client::Result<Client> {
    let b = Client::builder(hosts)
        .sasl_gssapi(login)
        .session_timeout(Duration::from_secs(4));
    tokio::time::timeout(WITHIN, b.connect())
        .await
        .expect("connect does not hang")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zk_client_logs_in_to_apache_with_a_keytab() {
    let kdc = Kdc::start_in_process().expect("kdc");
    let zk = apache_with_kerberos(&kdc, &[]);
    let c = connect(&zk.connect_string(), keytab_login(&kdc, "alice"))
        .await
        .unwrap_or_else(|e| panic!("login: {e}\n{}", zk.log_text()));
    assert_sasl_identity(&c, &format!("alice@{REALM}")).await;
    let acl = vec![Acl::new(Perms::ALL, "sasl", &format!("alice@{REALM}"))];
    c.create("/k", b"x", &acl, CreateMode::Persistent)
        .await
        .expect("create");
    assert_eq!(&c.get_data("/k", false).await.expect("read").0[..], b"x");
    c.close().await.expect("close");
}

/// zk-server (in this process) taking Kerberos logins; `props` are `zookeeper.*`
/// properties (e.g. `superUser`, `kerberos.removeHostFromPrincipal`).
async fn zk_server_with_kerberos(kdc: &Kdc, props: &[(&str, &str)]) -> TestServer {
    let jaas = server_jaas(kdc);
    let props: Vec<(String, String)> = props
        .iter()
        .map(|(k, v)| (format!("zookeeper.{k}"), v.to_string()))
        .chain([("zookeeper.authProvider.1".into(), SASL_PROVIDER.into())])
        .collect();
    TestServer::start_with(move |cfg| {
        cfg.jaas_file = Some(jaas);
        for (k, v) in &props {
            assert!(cfg.apply_property(k, v, None).expect("property"), "{k}");
        }
        cfg.load_security().expect("Kerberos settings");
    })
    .await
    .expect("start zk-server with kerberos")
}

/// Java's CLI logging in with a keytab (JAAS `Client` section), fed `script`.
async fn java_cli(kdc: &Kdc, port: u16, principal: &str, script: &str) -> String {
    let file = format!("{}.keytab", principal.replace('/', "_"));
    let kt = kdc.keytab(&file, &[principal]).expect("client keytab");
    let jaas = kdc
        .dir()
        .join(format!("client_{}.conf", principal.replace('/', "_")));
    std::fs::write(&jaas, Kdc::jaas_keytab_section("Client", principal, &kt)).expect("jaas");
    let mut cmd = tokio::process::Command::new("java");
    cmd.args(kdc.java_props())
        .arg(format!(
            "-Djava.security.auth.login.config={}",
            jaas.display()
        ))
        .args([
            "-cp",
            &tests::apache::classpath(),
            "org.apache.zookeeper.ZooKeeperMain",
            "-server",
            &format!("127.0.0.1:{port}"),
        ]);
    tests::apache::run_feeding(cmd, script).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn java_cli_logs_in_to_zk_server_as_to_apache() {
    let kdc = Kdc::start_in_process().expect("kdc");
    let srv = zk_server_with_kerberos(&kdc, &[]).await;
    let apache = apache_with_kerberos(&kdc, &[]);
    let script =
        format!("whoami\ncreate /x data sasl:alice@{REALM}:cdrwa\nget /x\ngetAcl /x\nquit\n");
    for (who, port) in [("zk-server", srv.addr().port()), ("apache", apache.port())] {
        let out = java_cli(&kdc, port, "alice", &script).await;
        for want in [
            format!("sasl: alice@{REALM}"),
            "Created /x".into(),
            "\ndata\n".into(),
            format!("'sasl,'alice@{REALM}\n: cdrwa"),
        ] {
            assert!(out.contains(&want), "{who}: no {want:?} in\n{out}");
        }
        // Another principal logs in and is refused by the ACL, on both.
        let out = java_cli(&kdc, port, "bob", "whoami\nget /x\nquit\n").await;
        assert!(
            out.contains(&format!("sasl: bob@{REALM}"))
                && out.contains("Insufficient permission : /x"),
            "{who}: {out}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zk_client_logs_in_to_zk_server_with_keytab_and_ticket_cache() {
    let kdc = Kdc::start_in_process().expect("kdc");
    let srv = zk_server_with_kerberos(&kdc, &[]).await;
    let alice = connect(&srv.connect_string(), keytab_login(&kdc, "alice"))
        .await
        .expect("alice logs in with her keytab");
    assert_sasl_identity(&alice, &format!("alice@{REALM}")).await;
    let acl = vec![Acl::new(Perms::ALL, "sasl", &format!("alice@{REALM}"))];
    alice
        .create("/only-alice", b"a", &acl, CreateMode::Persistent)
        .await
        .expect("create");
    // Bob logs in from a ticket cache (kinit), as a user would; the ACL refuses him.
    let bob_kt = kdc.keytab("bob.keytab", &["bob"]).expect("keytab");
    let cache = format!("FILE:{}", kdc.dir().join("bob.ccache").display());
    kdc.kinit("bob", &bob_kt, &cache).expect("kinit");
    let bob = connect(
        &srv.connect_string(),
        GssapiConfig::ticket_cache(Some(&cache)),
    )
    .await
    .expect("bob logs in from his ticket cache");
    assert_sasl_identity(&bob, &format!("bob@{REALM}")).await;
    assert_eq!(
        bob.get_data("/only-alice", false).await.map(|_| ()),
        Err(Error::NoAuth {
            path: "/only-alice".into()
        })
    );
    assert_eq!(
        &alice.get_data("/only-alice", false).await.expect("read").0[..],
        b"a"
    );
    bob.close().await.expect("close");
    alice.close().await.expect("close");
}

/// The ids a Kerberos principal gets under Apache's name settings, and superUser with a
/// Kerberos id: zk-server and Apache side by side give the same answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kerberos_ids_and_super_user_match_apache() {
    let kdc = Kdc::start_in_process().expect("kdc");
    let cases: [(&[(&str, &str)], &str); 3] = [
        (&[], "zkcli/localhost@ZK.TEST"),
        (
            &[
                ("kerberos.removeHostFromPrincipal", "true"),
                ("kerberos.removeRealmFromPrincipal", "true"),
            ],
            "zkcli",
        ),
        (
            &[(
                "security.auth_to_local",
                "RULE:[2:$1@$0](zkcli@ZK\\.TEST)s/.*/ops/ DEFAULT",
            )],
            "ops/localhost@ZK.TEST",
        ),
    ];
    for (props, want) in cases {
        let srv = zk_server_with_kerberos(&kdc, props).await;
        let jvm: Vec<String> = props
            .iter()
            .map(|(k, v)| format!("-Dzookeeper.{k}={v}"))
            .collect();
        let jvm: Vec<&str> = jvm.iter().map(String::as_str).collect();
        let apache = apache_with_kerberos(&kdc, &jvm);
        for (who, hosts) in [
            ("zk-server", srv.connect_string()),
            ("apache", apache.connect_string()),
        ] {
            let c = connect(&hosts, keytab_login(&kdc, "zkcli/localhost"))
                .await
                .unwrap_or_else(|e| panic!("{who} {props:?}: {e}"));
            let ids = c.who_am_i().await.expect("whoami");
            assert!(
                ids.iter()
                    .any(|i| i.auth_scheme == "sasl" && i.user == want),
                "{who} {props:?}: want sasl:{want}, got {ids:?}"
            );
            c.close().await.expect("close");
        }
        srv.stop().await.expect("stop");
    }
    // superUser names a Kerberos id: that principal passes every ACL.
    let sup = format!("alice@{REALM}");
    let srv = zk_server_with_kerberos(&kdc, &[("superUser", &sup)]).await;
    let apache = apache_with_kerberos(&kdc, &[&format!("-Dzookeeper.superUser={sup}")]);
    for (who, hosts) in [
        ("zk-server", srv.connect_string()),
        ("apache", apache.connect_string()),
    ] {
        let bob = connect(&hosts, keytab_login(&kdc, "bob"))
            .await
            .expect("bob");
        let acl = vec![Acl::new(Perms::ALL, "sasl", &format!("bob@{REALM}"))];
        bob.create("/bobs", b"b", &acl, CreateMode::Persistent)
            .await
            .expect("create");
        let alice = connect(&hosts, keytab_login(&kdc, "alice"))
            .await
            .expect("alice");
        assert_eq!(
            &alice
                .get_data("/bobs", false)
                .await
                .unwrap_or_else(|e| panic!("{who}: {e}"))
                .0[..],
            b"b",
            "{who}"
        );
        let carol = connect(&hosts, keytab_login(&kdc, "carol"))
            .await
            .expect("carol");
        assert_eq!(
            carol.get_data("/bobs", false).await.map(|_| ()),
            Err(Error::NoAuth {
                path: "/bobs".into()
            }),
            "{who}"
        );
    }
}

/// Credentials that cannot work are refused with the cause: an unknown client principal,
/// a stale client key, a server principal the KDC does not know; a server whose keytab
/// lacks its principal does not start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_are_refused_with_the_cause() {
    let kdc = Kdc::start_in_process().expect("kdc");
    let srv = zk_server_with_kerberos(&kdc, &[]).await;
    let hosts = srv.connect_string();
    let expect_auth_error = |r: zk_client::Result<Client>, needle: &str| match r {
        Err(Error::Auth { reason, .. }) => {
            assert!(reason.contains(needle), "want {needle:?} in {reason}")
        }
        Err(e) => panic!("want an auth error naming {needle:?}, got {e}"),
        Ok(_) => panic!("login accepted; want {needle:?}"),
    };
    // A principal the KDC does not know (its keytab came from elsewhere: alice's keytab
    // does not hold mallory's key).
    let alice_kt = kdc.keytab("alice.keytab", &["alice"]).expect("keytab");
    expect_auth_error(
        connect(
            &hosts,
            GssapiConfig::keytab(&format!("mallory@{REALM}"), &alice_kt),
        )
        .await,
        "mallory",
    );
    // A stale keytab: the KDC changed dave's key after it was written.
    let dave_kt = kdc.keytab("dave.keytab", &["dave"]).expect("keytab");
    kdc.rekey("dave").expect("rekey");
    expect_auth_error(
        connect(
            &hosts,
            GssapiConfig::keytab(&format!("dave@{REALM}"), &dave_kt),
        )
        .await,
        "dave",
    );
    // A service name with no principal in the realm.
    expect_auth_error(
        connect(&hosts, keytab_login(&kdc, "alice").service_name("zk")).await,
        "zk/localhost@ZK.TEST not found in Kerberos database",
    );
    // The server's keytab lacks its principal: no start, the cause named.
    let wrong = kdc
        .keytab("wrong.keytab", &["zookeeper/otherhost"])
        .expect("keytab");
    let jaas = kdc.dir().join("wrong_jaas.conf");
    std::fs::write(
        &jaas,
        Kdc::jaas_keytab_section("Server", SERVER_PRINCIPAL, &wrong),
    )
    .expect("jaas");
    let e = zk_server::config::ServerConfig::parse(
        &format!("dataDir=/nonexistent\nauthProvider.1={SASL_PROVIDER}\n"),
        &[(
            "java.security.auth.login.config".into(),
            jaas.display().to_string(),
        )],
    )
    .expect_err("a keytab without the principal")
    .to_string();
    assert!(
        e.contains("No key table entry found for zookeeper/localhost@ZK.TEST"),
        "{e}"
    );
}

/// A zk-server process whose host has no usable MIT Kerberos library refuses a Kerberos
/// config at start with the reason (what a build without the `kerberos` feature does too),
/// and one with it starts.
#[test]
fn server_without_kerberos_refuses_to_start() {
    let kdc = Kdc::start().expect("kdc");
    let jaas = server_jaas(&kdc);
    let data = tempfile::tempdir().expect("tempdir");
    let cfg = data.path().join("zoo.cfg");
    let port = tests::ports::free_port().expect("port");
    std::fs::write(
        &cfg,
        format!(
            "dataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
             authProvider.1={SASL_PROVIDER}\n",
            data.path().join("data").display()
        ),
    )
    .expect("cfg");
    let out = std::process::Command::new(tests::zk_processes::zk_server_bin().expect("bin"))
        .arg(format!(
            "-Djava.security.auth.login.config={}",
            jaas.display()
        ))
        .arg(&cfg)
        .env("KRB5_CONFIG", kdc.krb5_conf())
        .env(
            zk_proto::gssapi::LIBRARY_ENV,
            "/nonexistent/libgssapi_krb5.so.2",
        )
        .output()
        .expect("run zk-server");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started without Kerberos: {err}");
    assert!(
        err.contains("Krb5LoginModule") && err.contains("cannot load"),
        "{err}"
    );
    assert!(
        !data.path().join("data").exists(),
        "nothing written to dataDir"
    );
}
