//! zk-client against a secured Apache ZooKeeper 3.8: TLS on `secureClientPort` (CA, server
//! and client certificates made per test with rcgen, handed to Apache as PEM stores) and
//! SASL DIGEST-MD5 logins (`SASLAuthenticationProvider` with a JAAS `Server` section).
//! Bad input must give a clear error naming the host and the cause, never a hang.

use std::time::Duration;

use tests::apache::ApacheServer;
use tests::ports::free_port;
use tests::sasl::assert_sasl_identity;
use tests::tls::Ca;
use zk_client::{Acl, Client, CreateMode, Error, EventType, Perms, SessionState, TlsConfig};

/// Upper bound for anything that must not hang (connects that fail, logins).
const WITHIN: Duration = Duration::from_secs(20);
const SESSION: Duration = Duration::from_secs(4);

/// Apache with a TLS port beside its plain one, and the PKI the test made for it.
struct TlsServer {
    zk: ApacheServer,
    secure_port: u16,
    ca: Ca,
    _dir: tempfile::TempDir,
}

impl TlsServer {
    /// `client_auth`: Apache's `ssl.clientAuth` (`need`, `want`, `none`).
    fn start(client_auth: &str, expired_server_cert: bool) -> TlsServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = Ca::new("zk-rs test CA");
        let (cert, key) = ca.leaf("zk-server", expired_server_cert);
        let keystore = dir.path().join("server.pem");
        std::fs::write(&keystore, format!("{key}{cert}")).expect("write keystore");
        let truststore = dir.path().join("ca.pem");
        std::fs::write(&truststore, ca.pem()).expect("write truststore");
        let secure_port = free_port().expect("free port");
        let props = [
            "-Dzookeeper.serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory"
                .to_owned(),
            format!("-Dzookeeper.ssl.keyStore.location={}", keystore.display()),
            "-Dzookeeper.ssl.keyStore.type=PEM".to_owned(),
            format!(
                "-Dzookeeper.ssl.trustStore.location={}",
                truststore.display()
            ),
            "-Dzookeeper.ssl.trustStore.type=PEM".to_owned(),
            format!("-Dzookeeper.ssl.clientAuth={client_auth}"),
        ];
        let props: Vec<&str> = props.iter().map(String::as_str).collect();
        let cfg = [
            format!("secureClientPort={secure_port}"),
            "secureClientPortAddress=127.0.0.1".to_owned(),
        ];
        let cfg: Vec<&str> = cfg.iter().map(String::as_str).collect();
        let zk = ApacheServer::start_with(&props, &cfg).expect("start apache with TLS");
        TlsServer {
            zk,
            secure_port,
            ca,
            _dir: dir,
        }
    }

    fn secure_address(&self) -> String {
        format!("127.0.0.1:{}", self.secure_port)
    }

    /// A client configuration trusting this server's CA, with a client certificate.
    fn client_tls(&self) -> TlsConfig {
        let (cert, key) = self.ca.leaf("zk-client", false);
        TlsConfig::new(self.ca.pem().as_bytes()).client_cert(cert.as_bytes(), key.as_bytes())
    }
}

/// Connects, failing the test on a hang; the result is the client's own.
async fn try_connect(builder: zk_client::ClientBuilder) -> zk_client::Result<Client> {
    tokio::time::timeout(WITHIN, builder.session_timeout(SESSION).connect())
        .await
        .expect("connect returns within the deadline: no hang")
}

/// The `Error::Connect` of a refused connection, checked to name `host`.
fn connect_cause(res: zk_client::Result<Client>, host: &str) -> String {
    match res {
        Err(Error::Connect { host: h, cause }) => {
            assert_eq!(h, host, "the error names the host");
            let msg = Error::Connect {
                host: h.clone(),
                cause: cause.clone(),
            }
            .to_string();
            assert!(msg.contains(host) && msg.contains(&cause), "{msg}");
            eprintln!("refused as expected: {msg}");
            cause
        }
        Err(e) => panic!("expected a connection error naming {host}, got {e:?}"),
        Ok(_) => panic!("connection to {host} should have been refused"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_client_certificate_does_every_day_work() {
    let srv = TlsServer::start("need", false);
    let host = srv.secure_address();

    // ssl.clientAuth=need: no certificate, no session, and the error says why.
    let no_cert =
        try_connect(Client::builder(&host).tls(TlsConfig::new(srv.ca.pem().as_bytes()))).await;
    let cause = connect_cause(no_cert, &host);
    assert!(
        cause.contains("tls handshake failed")
            || cause.contains("before the session was established"),
        "{cause}\n{}",
        srv.zk.node.log()
    );

    let c = try_connect(Client::builder(&host).tls(srv.client_tls()))
        .await
        .unwrap_or_else(|e| panic!("TLS connect: {e}\n{}", srv.zk.node.log()));
    assert_eq!(
        c.connected_host().map(|h| h.port),
        Some(srv.secure_port),
        "connected over the TLS port"
    );
    c.create("/tls", b"v1", &Acl::open_unsafe(), CreateMode::Persistent)
        .await
        .expect("create over TLS");
    let (data, stat, watch) = c.get_data_watched("/tls").await.expect("get over TLS");
    assert_eq!(&data[..], b"v1");
    // A second client over TLS changes the node; the first one's watch fires.
    let other = try_connect(Client::builder(&host).tls(srv.client_tls()))
        .await
        .expect("second TLS client");
    other
        .set_data("/tls", b"v2", Some(stat.version))
        .await
        .expect("set over TLS");
    let ev = tokio::time::timeout(WITHIN, watch)
        .await
        .expect("watch fires in time")
        .expect("watch event");
    assert_eq!(ev.event_type, EventType::NodeDataChanged);
    assert_eq!(&c.get_data("/tls", false).await.expect("get").0[..], b"v2");
    // Apache's X509AuthenticationProvider saw our certificate.
    let ids = c.who_am_i().await.expect("whoami over TLS");
    assert!(
        ids.iter()
            .any(|i| i.auth_scheme == "x509" && i.user.contains("zk-client")),
        "{ids:?}"
    );
    c.close().await.expect("close");
    other.close().await.expect("close");
}

/// Java users' stores: a JKS keystore and truststore made by `keytool`, given to zk-client
/// as files (type from the extension, with passwords), against Apache with
/// `ssl.clientAuth=need`; a wrong keystore password is a clear configuration error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_jks_keystore_and_truststore() {
    let srv = TlsServer::start("need", false);
    let host = srv.secure_address();
    let dir = tempfile::tempdir().unwrap();
    let (keystore, truststore) =
        tests::tls::java_stores(dir.path(), &srv.ca, "client", "jks-client", "storepw");
    let tls =
        TlsConfig::trust_store(&truststore, Some("storepw")).key_store(&keystore, Some("storepw"));
    let c = try_connect(Client::builder(&host).tls(tls))
        .await
        .unwrap_or_else(|e| panic!("TLS connect with JKS stores: {e}\n{}", srv.zk.node.log()));
    c.create("/jks", b"v", &Acl::open_unsafe(), CreateMode::Persistent)
        .await
        .expect("create over TLS");
    let ids = c.who_am_i().await.expect("whoami over TLS");
    assert!(
        ids.iter()
            .any(|i| i.auth_scheme == "x509" && i.user.contains("CN=jks-client")),
        "the keystore's certificate was presented: {ids:?}"
    );
    c.close().await.expect("close");

    let wrong =
        TlsConfig::trust_store(&truststore, Some("storepw")).key_store(&keystore, Some("nope"));
    match try_connect(Client::builder(&host).tls(wrong)).await {
        Err(Error::InvalidConfig(msg)) => assert!(
            msg.contains("client.keystore.jks") && msg.contains("password"),
            "{msg}"
        ),
        other => panic!("a wrong keystore password must be a config error: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_untrusted_ca_and_wrong_hostname_give_clear_errors() {
    let srv = TlsServer::start("none", false);
    let host = srv.secure_address();

    let stranger = Ca::new("some other CA");
    let res =
        try_connect(Client::builder(&host).tls(TlsConfig::new(stranger.pem().as_bytes()))).await;
    let cause = connect_cause(res, &host);
    assert!(
        cause.contains("tls handshake failed") && cause.contains("UnknownIssuer"),
        "{cause}"
    );

    let wrong_name = TlsConfig::new(srv.ca.pem().as_bytes()).server_name("zk.example.com");
    let cause = connect_cause(
        try_connect(Client::builder(&host).tls(wrong_name.clone())).await,
        &host,
    );
    assert!(
        cause.contains("tls handshake failed") && cause.contains("not valid for name"),
        "{cause}"
    );
    // Hostname verification is on by default and only an explicit opt-out accepts it; the
    // chain is still checked.
    let c = try_connect(Client::builder(&host).tls(wrong_name.verify_hostname(false)))
        .await
        .expect("connects without hostname verification");
    assert!(c.exists("/", false).await.expect("exists").is_some());
    c.close().await.expect("close");
    let still_untrusted = TlsConfig::new(stranger.pem().as_bytes()).verify_hostname(false);
    let cause = connect_cause(
        try_connect(Client::builder(&host).tls(still_untrusted)).await,
        &host,
    );
    assert!(cause.contains("UnknownIssuer"), "{cause}");

    // A plain client on the TLS port and a TLS client on the plain port fail, not hang.
    let plain = format!("127.0.0.1:{}", srv.zk.port());
    let res = try_connect(Client::builder(&plain).tls(srv.client_tls())).await;
    let cause = connect_cause(res, &plain);
    assert!(cause.contains("tls handshake failed"), "{cause}");

    // A TLS failure moves on to the next host, as a refused connection does.
    let both = format!("{plain},{host}");
    let c = try_connect(Client::builder(&both).tls(srv.client_tls()))
        .await
        .expect("the TLS host of the list");
    assert_eq!(c.connected_host().map(|h| h.port), Some(srv.secure_port));
    c.close().await.expect("close");

    // A CA file without certificates is refused before anything is sent.
    let bad = Client::builder(&host)
        .tls(TlsConfig::new(b"not a pem"))
        .build()
        .map(|_| ())
        .expect_err("bad CA bundle");
    assert!(
        matches!(bad, Error::InvalidConfig(ref m) if m.contains("CA")),
        "{bad}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_expired_server_certificate_is_refused() {
    let srv = TlsServer::start("none", true);
    let host = srv.secure_address();
    let res = try_connect(Client::builder(&host).tls(srv.client_tls())).await;
    let cause = connect_cause(res, &host);
    assert!(
        cause.contains("tls handshake failed") && cause.to_lowercase().contains("expired"),
        "{cause}\n{}",
        srv.zk.node.log()
    );
}

/// Apache with `SASLAuthenticationProvider` and DIGEST-MD5 users alice/secret, bob/builder.
struct SaslServer {
    zk: ApacheServer,
    dir: tempfile::TempDir,
}

impl SaslServer {
    fn start() -> SaslServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let jaas = dir.path().join("server_jaas.conf");
        std::fs::write(
            &jaas,
            "Server {\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n  \
             user_alice=\"secret\"\n  user_bob=\"builder\";\n};\n",
        )
        .expect("write jaas");
        let props = [
            format!("-Djava.security.auth.login.config={}", jaas.display()),
            "-Dzookeeper.authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider"
                .to_owned(),
        ];
        let props: Vec<&str> = props.iter().map(String::as_str).collect();
        let zk = ApacheServer::start_with(&props, &[]).expect("start apache with SASL");
        SaslServer { zk, dir }
    }

    /// A Java client's JAAS file, as `-Djava.security.auth.login.config` would name it.
    fn client_jaas(&self, user: &str, password: &str) -> std::path::PathBuf {
        let path = self.dir.path().join(format!("client_{user}.conf"));
        std::fs::write(
            &path,
            format!(
                "Client {{\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n  \
                 username=\"{user}\"\n  password=\"{password}\";\n}};\n"
            ),
        )
        .expect("write client jaas");
        path
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_digest_login_whoami_and_acl() {
    let srv = SaslServer::start();
    let host = srv.zk.connect_string();
    let alice = try_connect(Client::builder(&host).sasl_digest("alice", "secret"))
        .await
        .unwrap_or_else(|e| panic!("SASL login: {e}\n{}", srv.zk.node.log()));
    assert_eq!(alice.state(), SessionState::Connected);
    assert_sasl_identity(&alice, "alice").await;

    let acl = vec![Acl::new(Perms::ALL, "sasl", "alice")];
    alice
        .create("/alice", b"hers", &acl, CreateMode::Persistent)
        .await
        .expect("create with sasl ACL");
    assert_eq!(
        &alice.get_data("/alice", false).await.expect("read").0[..],
        b"hers"
    );

    let anonymous = try_connect(Client::builder(&host))
        .await
        .expect("anonymous");
    assert_eq!(
        anonymous.get_data("/alice", false).await.map(|_| ()),
        Err(Error::NoAuth {
            path: "/alice".into()
        })
    );
    // Bob logs in through a Java client's JAAS file, unchanged; the ACL refuses him too.
    let jaas = srv.client_jaas("bob", "builder");
    let bob = try_connect(Client::builder(&host).jaas_file(&jaas, "Client"))
        .await
        .expect("JAAS login");
    assert_sasl_identity(&bob, "bob").await;
    assert_eq!(
        bob.set_data("/alice", b"mine", None).await.map(|_| ()),
        Err(Error::NoAuth {
            path: "/alice".into()
        })
    );
    // A JAAS file without the section is a configuration error, before anything is sent.
    let e = Client::builder(&host)
        .jaas_file(&jaas, "NoSuchSection")
        .build()
        .map(|_| ())
        .expect_err("missing section");
    assert!(
        matches!(e, Error::InvalidConfig(ref m) if m.contains("NoSuchSection")),
        "{e}"
    );
    for c in [alice, anonymous, bob] {
        c.close().await.expect("close");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_wrong_password_is_auth_failed_with_the_reason() {
    let srv = SaslServer::start();
    let host = srv.zk.connect_string();
    let res = try_connect(Client::builder(&host).sasl_digest("alice", "wrong")).await;
    match res {
        Err(Error::Auth { host: h, reason }) => {
            eprintln!("refused as expected: {reason}");
            assert_eq!(h, host);
            assert!(
                reason.contains("rejected")
                    && reason.contains("alice")
                    && reason.contains("AUTHFAILED"),
                "{reason}"
            );
        }
        Err(e) => panic!("expected Error::Auth, got {e:?}"),
        Ok(_) => panic!("a wrong password must not log in"),
    }
    // A client built without waiting: the request issued at once waits for the login and
    // fails with its reason; the state is terminal and later calls fail the same way.
    let c = Client::builder(&host)
        .session_timeout(SESSION)
        .sasl_digest("nobody", "x")
        .build()
        .expect("build");
    let early = tokio::time::timeout(WITHIN, c.exists("/", false))
        .await
        .expect("no hang");
    assert!(matches!(early, Err(Error::Auth { .. })), "{early:?}");
    let state = c.wait_for_state(WITHIN, SessionState::is_terminal).await;
    assert_eq!(state, Ok(SessionState::AuthFailed));
    let late = c.exists("/", false).await;
    assert!(
        matches!(late, Err(Error::Auth { ref reason, .. }) if reason.contains("nobody")),
        "{late:?}"
    );
    assert!(late.unwrap_err().is_terminal());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_login_is_replayed_after_the_connection_drops() {
    let srv = SaslServer::start();
    let target = srv.zk.connect_string().parse().expect("address");
    tests::sasl::login_is_replayed_after_the_connection_drops(target).await;
}

/// Apache serving a version 1 certificate on its TLS port (`ssl.clientAuth=none`).
fn apache_v1(certs: &tests::tls::V1ServerCerts, keystore: &str) -> (ApacheServer, u16) {
    let port = free_port().expect("free port");
    let props = [
        "-Dzookeeper.serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory"
            .to_owned(),
        format!(
            "-Dzookeeper.ssl.keyStore.location={}",
            certs.path(keystore).display()
        ),
        format!(
            "-Dzookeeper.ssl.trustStore.location={}",
            certs.path("ca.pem").display()
        ),
        "-Dzookeeper.ssl.clientAuth=none".to_owned(),
    ];
    let props: Vec<&str> = props.iter().map(String::as_str).collect();
    let cfg = [
        format!("secureClientPort={port}"),
        "secureClientPortAddress=127.0.0.1".to_owned(),
    ];
    let cfg: Vec<&str> = cfg.iter().map(String::as_str).collect();
    let zk = ApacheServer::start_with(&props, &cfg).expect("start apache with a v1 certificate");
    (zk, port)
}

/// zk-client accepts Apache serving a version 1 certificate (what kazoo's harness and
/// `openssl x509 -req` without extensions make), as Java's client does, and still checks
/// its chain, its name and its dates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_version1_server_certificate_is_checked_as_java_checks_it() {
    let certs = tests::tls::V1ServerCerts::new();
    let (zk, port) = apache_v1(&certs, "server.pem");
    tests::tls::v1_server_certificate_is_checked(port, &certs).await;
    zk.stop();
    let (zk, port) = apache_v1(&certs, "old.pem");
    tests::tls::v1_expired_server_certificate_is_refused(port, &certs).await;
    zk.stop();
}
