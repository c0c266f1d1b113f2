//! zk-server's TLS client ports (`secureClientPort`, `client.portUnification`) with
//! Apache's `ssl.*` settings: zk-client, Apache's Java client and kazoo over TLS, client
//! certificates as `x509` identities (whoami, ACLs, super user), PKCS12 and JKS stores,
//! certificate rotation without a restart, and bad input (plaintext on the TLS port, TLS
//! on the plain port, untrusted and expired certificates, a stalled handshake), each
//! closed with a log line naming the peer while everyone else is served.

use std::net::{IpAddr, Ipv4Addr};
use std::process::Stdio;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, KeyPair, KeyUsagePurpose,
};
use tests::tls::{openssl_ca, openssl_v1_leaf, run_tool, write, Ca, Pki};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use zk_client::{Acl, Client, CreateMode, Error, Id, Perms, TlsConfig};
use zk_server::config::tls::ClientAuth;
use zk_server::config::ServerConfig;
use zk_server::storage::store::MemoryStore;
use zk_server::{Server, ServerHandle};

/// Upper bound for anything that must happen (a connect, a log line, a reload).
const WITHIN: Duration = Duration::from_secs(20);
const SESSION: Duration = Duration::from_secs(4);

// ---- logs: every server in this binary logs into one buffer the tests search ----

static LOGS: Mutex<String> = Mutex::new(String::new());

struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        eprint!("{text}");
        LOGS.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_str(&text);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn init_logs() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
            .with_ansi(false)
            .with_writer(|| LogWriter)
            .try_init();
    });
}

/// Waits for a log line containing every one of `parts`; returns it.
async fn log_line(parts: &[&str]) -> String {
    let deadline = Instant::now() + WITHIN;
    loop {
        if let Some(l) = LOGS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .lines()
            .find(|l| parts.iter().all(|p| l.contains(p)))
        {
            return l.to_string();
        }
        assert!(Instant::now() < deadline, "no log line with {parts:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---- certificates: tests::tls ----

/// A config with a TLS-only port beside the plain one, stores as PEM.
fn config(pki: &Pki, auth: ClientAuth) -> ServerConfig {
    let mut cfg = ServerConfig::for_tests(pki.dir.path());
    cfg.secure_client_port = Some(0);
    cfg.secure_client_port_address = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
    cfg.ssl.key_store.location = Some(pki.path("server.pem"));
    cfg.ssl.trust_store.location = Some(pki.path("ca.pem"));
    cfg.ssl.client_auth = auth;
    cfg
}

async fn start(cfg: ServerConfig) -> ServerHandle {
    init_logs();
    Server::start_in_memory(cfg, MemoryStore::new())
        .await
        .expect("TLS server starts")
}

fn secure_host(s: &ServerHandle) -> String {
    s.secure_addr().expect("secure port").to_string()
}

async fn connect(host: &str, tls: Option<TlsConfig>) -> zk_client::Result<Client> {
    let mut b = Client::builder(host).session_timeout(SESSION);
    if let Some(t) = tls {
        b = b.tls(t);
    }
    tokio::time::timeout(WITHIN, b.connect())
        .await
        .expect("connect returns within the deadline")
}

async fn x509_ids(c: &Client) -> Vec<String> {
    c.who_am_i()
        .await
        .expect("whoami")
        .into_iter()
        .filter(|i| i.auth_scheme == "x509")
        .map(|i| i.user)
        .collect()
}

// ---- zk-client ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zk_client_over_tls_with_client_auth_need_want_none() {
    let pki = Pki::new();
    for auth in [ClientAuth::Need, ClientAuth::Want, ClientAuth::None] {
        let server = start(config(&pki, auth)).await;
        let host = secure_host(&server);
        let with_cert = connect(&host, Some(pki.ca.client("alice")))
            .await
            .unwrap_or_else(|e| panic!("{auth:?}: client with a certificate: {e}"));
        let path = format!("/tls-{auth:?}");
        with_cert
            .create(&path, b"v", &Acl::open_unsafe(), CreateMode::Persistent)
            .await
            .expect("create over TLS");
        // The certificate is an identity only when the server asked for it.
        let ids = x509_ids(&with_cert).await;
        match auth {
            ClientAuth::None => assert!(ids.is_empty(), "{ids:?}"),
            _ => assert_eq!(ids, ["CN=alice,O=zk-rs"], "{auth:?}"),
        }
        let anonymous = connect(&host, Some(TlsConfig::new(pki.ca.pem().as_bytes()))).await;
        match auth {
            ClientAuth::Need => {
                assert!(
                    anonymous.is_err(),
                    "need: a client without certificate is refused"
                );
            }
            _ => {
                let c = anonymous.unwrap_or_else(|e| panic!("{auth:?}: anonymous TLS: {e}"));
                assert_eq!(&c.get_data(&path, false).await.expect("get").0[..], b"v");
                assert!(x509_ids(&c).await.is_empty());
                c.close().await.expect("close");
            }
        }
        // The plain port beside it still serves plaintext.
        let plain = connect(&server.connect_string(), None)
            .await
            .expect("plain");
        assert_eq!(
            &plain.get_data(&path, false).await.expect("get").0[..],
            b"v"
        );
        plain.close().await.expect("close");
        with_cert.close().await.expect("close");
        server.stop().await.expect("stop");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x509_acl_admits_the_certificate_holder_and_super_user() {
    let pki = Pki::new();
    let mut cfg = config(&pki, ClientAuth::Want);
    cfg.ssl.x509_super_user = Some("CN=root,O=zk-rs".into());
    let server = start(cfg).await;
    let host = secure_host(&server);
    let alice = connect(&host, Some(pki.ca.client("alice")))
        .await
        .expect("alice");
    let dn = "CN=alice,O=zk-rs";
    let acl = vec![Acl::new(Perms::ALL, "x509", dn)];
    alice
        .create("/alice", b"secret", &acl, CreateMode::Persistent)
        .await
        .expect("create with an x509 ACL");
    assert_eq!(
        &alice.get_data("/alice", false).await.expect("read").0[..],
        b"secret"
    );
    // `auth` expands to the certificate identity, as Apache's x509 provider is authenticated.
    alice
        .create(
            "/alice-auth",
            b"",
            &Acl::creator_all(),
            CreateMode::Persistent,
        )
        .await
        .expect("create with auth ACL");
    let (acl_back, _) = alice.get_acl("/alice-auth").await.expect("getAcl");
    assert_eq!(acl_back[0].id, Id::new("x509", dn));

    let anonymous = connect(&host, Some(TlsConfig::new(pki.ca.pem().as_bytes())))
        .await
        .expect("anonymous TLS");
    assert_eq!(
        anonymous.get_data("/alice", false).await,
        Err(Error::NoAuth {
            path: "/alice".into()
        })
    );
    let bob = connect(&host, Some(pki.ca.client("bob")))
        .await
        .expect("bob");
    assert_eq!(
        bob.get_data("/alice", false).await,
        Err(Error::NoAuth {
            path: "/alice".into()
        })
    );
    let plain = connect(&server.connect_string(), None)
        .await
        .expect("plain");
    assert_eq!(
        plain.get_data("/alice", false).await,
        Err(Error::NoAuth {
            path: "/alice".into()
        })
    );

    let root = connect(&host, Some(pki.ca.client("root")))
        .await
        .expect("root");
    let who = root.who_am_i().await.expect("whoami");
    assert!(
        who.iter()
            .any(|i| i.auth_scheme == "super" && i.user == "CN=root,O=zk-rs"),
        "{who:?}"
    );
    assert_eq!(
        &root.get_data("/alice", false).await.expect("super reads").0[..],
        b"secret"
    );
    for c in [alice, anonymous, bob, plain, root] {
        c.close().await.expect("close");
    }
    server.stop().await.expect("stop");
}

// ---- bad input ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_logged_and_everyone_else_is_served() {
    let pki = Pki::new();
    let mut cfg = config(&pki, ClientAuth::Need);
    cfg.ssl.handshake_timeout = Duration::from_millis(500);
    let server = start(cfg).await;
    let host = secure_host(&server);
    let good = connect(&host, Some(pki.ca.client("alice")))
        .await
        .expect("good client");

    // Plaintext (a ZooKeeper handshake frame) on the TLS-only port.
    let mut s = TcpStream::connect(server.secure_addr().unwrap())
        .await
        .unwrap();
    let me = s.local_addr().unwrap().to_string();
    s.write_all(&[0, 0, 0, 44, 0, 0, 0, 0]).await.unwrap();
    assert_closed(&mut s).await;
    log_line(&[&me, "plaintext on the TLS-only client port"]).await;

    // A TLS ClientHello on the plaintext port.
    let mut s = TcpStream::connect(server.local_addr()).await.unwrap();
    let me = s.local_addr().unwrap().to_string();
    s.write_all(&[0x16, 0x03, 0x01, 0x00, 0xf0, 0x01])
        .await
        .unwrap();
    assert_closed(&mut s).await;
    log_line(&[&me, "TLS handshake on the plaintext client port"]).await;

    // A client that stops halfway through its handshake is cut off by the timeout.
    let mut s = TcpStream::connect(server.secure_addr().unwrap())
        .await
        .unwrap();
    let me = s.local_addr().unwrap().to_string();
    s.write_all(&[0x16, 0x03, 0x01]).await.unwrap();
    let started = Instant::now();
    assert_closed(&mut s).await;
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "closed by the timeout"
    );
    log_line(&[&me, "no TLS handshake within 500 ms"]).await;

    // A certificate from a CA the server does not trust.
    let stranger = Ca::new("stranger CA");
    let (cert, key) = stranger.leaf("mallory", false);
    let untrusted =
        TlsConfig::new(pki.ca.pem().as_bytes()).client_cert(cert.as_bytes(), key.as_bytes());
    assert!(connect(&host, Some(untrusted)).await.is_err());
    log_line(&["TLS handshake failed", "UnknownIssuer"]).await;

    // An expired certificate from the trusted CA.
    let (cert, key) = pki.ca.leaf("old", true);
    let expired =
        TlsConfig::new(pki.ca.pem().as_bytes()).client_cert(cert.as_bytes(), key.as_bytes());
    assert!(connect(&host, Some(expired)).await.is_err());
    let line = log_line(&["TLS handshake failed", "xpired"]).await;
    assert!(line.contains("127.0.0.1:"), "names the peer: {line}");

    // Through all of it the good client kept working, and new ones are served.
    good.create("/still", b"ok", &Acl::open_unsafe(), CreateMode::Persistent)
        .await
        .expect("good client still served");
    let again = connect(&host, Some(pki.ca.client("carol")))
        .await
        .expect("new client");
    assert_eq!(&again.get_data("/still", false).await.unwrap().0[..], b"ok");
    again.close().await.unwrap();
    good.close().await.unwrap();
    server.stop().await.unwrap();
}

/// Waits until the server closes `s` (EOF or reset).
async fn assert_closed(s: &mut TcpStream) {
    let mut buf = [0u8; 256];
    let deadline = Instant::now() + WITHIN;
    loop {
        match tokio::time::timeout_at(deadline.into(), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(_)) => continue, // a TLS alert, say
            Err(_) => panic!("server did not close the connection"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_stores_stop_the_server_naming_the_file() {
    let pki = Pki::new();
    init_logs();
    let mut cfg = config(&pki, ClientAuth::Need);
    cfg.ssl.key_store.location = Some(pki.path("missing.pem"));
    let e = Server::start_in_memory(cfg, MemoryStore::new())
        .await
        .err()
        .expect("missing keystore refused")
        .to_string();
    assert!(e.contains("missing.pem"), "{e}");
    let mut cfg = config(&pki, ClientAuth::Need);
    cfg.ssl.trust_store.location = Some(write(pki.dir.path(), "junk.pem", "not a certificate"));
    let e = Server::start_in_memory(cfg, MemoryStore::new())
        .await
        .err()
        .expect("empty truststore refused")
        .to_string();
    assert!(e.contains("junk.pem"), "{e}");
}

// ---- rotation ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaced_keystore_is_served_to_new_connections() {
    let pki = Pki::new();
    let mut cfg = config(&pki, ClientAuth::None);
    cfg.ssl.reload_interval = Duration::from_millis(100);
    let server = start(cfg).await;
    let host = secure_host(&server);
    let old = connect(&host, Some(TlsConfig::new(pki.ca.pem().as_bytes())))
        .await
        .expect("trusting the first CA");
    let next_ca = Ca::new("next CA");
    let trusts_next = TlsConfig::new(next_ca.pem().as_bytes());
    assert!(connect(&host, Some(trusts_next.clone())).await.is_err());

    // As a rotation does: write the new store aside, rename it over the old one.
    let (cert, key) = next_ca.leaf("zk-server-2", false);
    let tmp = write(pki.dir.path(), "server.pem.new", &format!("{key}{cert}"));
    std::fs::rename(&tmp, pki.path("server.pem")).unwrap();
    let keystore = pki.path("server.pem").display().to_string();
    log_line(&[&keystore, "reloaded"]).await;
    let deadline = Instant::now() + WITHIN;
    let fresh = loop {
        match connect(&host, Some(trusts_next.clone())).await {
            Ok(c) => break c,
            Err(e) => assert!(
                Instant::now() < deadline,
                "new certificate never served: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        connect(&host, Some(TlsConfig::new(pki.ca.pem().as_bytes())))
            .await
            .is_err()
    );
    // The connection made before the rotation carries on.
    old.create("/rotated", b"", &Acl::open_unsafe(), CreateMode::Persistent)
        .await
        .expect("old connection still served");
    fresh
        .exists("/rotated", false)
        .await
        .expect("exists")
        .expect("seen");
    // A broken replacement keeps the previous certificates in force.
    write(pki.dir.path(), "server.pem", "garbage");
    log_line(&[&keystore, "cannot be loaded, keeping the previous"]).await;
    connect(&host, Some(trusts_next))
        .await
        .expect("still the second certificate");
    server.stop().await.unwrap();
}

/// zk-client with Java's stores (a JKS keystore and truststore made by `keytool`) against
/// zk-server with `ssl.clientAuth=need`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zk_client_with_jks_keystore_and_truststore() {
    let pki = Pki::new();
    let server = start(config(&pki, ClientAuth::Need)).await;
    let (keystore, truststore) =
        tests::tls::java_stores(pki.dir.path(), &pki.ca, "client", "jks-client", "storepw");
    let tls =
        TlsConfig::trust_store(&truststore, Some("storepw")).key_store(&keystore, Some("storepw"));
    let c = connect(&secure_host(&server), Some(tls))
        .await
        .expect("TLS connect with JKS stores");
    assert_eq!(x509_ids(&c).await, ["CN=jks-client,O=zk-rs"]);
    c.close().await.unwrap();
    server.stop().await.unwrap();
}

// ---- PKCS12 and JKS stores (made by openssl and keytool, as operators make them) ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pkcs12_and_jks_stores() {
    let pki = Pki::new();
    let d = pki.dir.path();
    let (cert, key) = pki.ca.leaf("zk-server", false);
    write(d, "leaf.crt", &cert);
    write(d, "leaf.key", &key);
    run_tool(
        std::process::Command::new("openssl")
            .args(["pkcs12", "-export"])
            .args([
                "-in",
                &d.join("leaf.crt").display().to_string(),
                "-inkey",
                &d.join("leaf.key").display().to_string(),
                "-name",
                "zk",
                "-passout",
                "pass:p12secret",
                "-out",
                &d.join("server.p12").display().to_string(),
            ]),
    );
    run_tool(std::process::Command::new("keytool").args([
        "-importkeystore",
        "-srckeystore",
        &d.join("server.p12").display().to_string(),
        "-srcstoretype",
        "PKCS12",
        "-srcstorepass",
        "p12secret",
        "-destkeystore",
        &d.join("server.jks").display().to_string(),
        "-deststoretype",
        "JKS",
        "-deststorepass",
        "jkssecret",
        "-destkeypass",
        "jkssecret",
        "-noprompt",
    ]));
    for (kind, ext) in [("PKCS12", "p12"), ("JKS", "jks")] {
        run_tool(std::process::Command::new("keytool").args([
            "-importcert",
            "-noprompt",
            "-alias",
            "ca",
            "-file",
            &d.join("ca.pem").display().to_string(),
            "-keystore",
            &d.join(format!("trust.{ext}")).display().to_string(),
            "-storetype",
            kind,
            "-storepass",
            "trustsecret",
        ]));
    }
    // Types from the extension; PKCS12 keystore with a JKS truststore, then the reverse.
    for (keystore, pw, truststore) in [
        ("server.p12", "p12secret", "trust.jks"),
        ("server.jks", "jkssecret", "trust.p12"),
    ] {
        let mut cfg = config(&pki, ClientAuth::Need);
        cfg.ssl.key_store.location = Some(d.join(keystore));
        cfg.ssl.key_store.password = Some(pw.into());
        cfg.ssl.trust_store.location = Some(d.join(truststore));
        cfg.ssl.trust_store.password = Some("trustsecret".into());
        let server = start(cfg).await;
        let c = connect(&secure_host(&server), Some(pki.ca.client("alice")))
            .await
            .unwrap_or_else(|e| panic!("{keystore} + {truststore}: {e}"));
        assert_eq!(x509_ids(&c).await, ["CN=alice,O=zk-rs"]);
        c.close().await.unwrap();
        server.stop().await.unwrap();
    }
    // A wrong password stops the server naming the store.
    let mut cfg = config(&pki, ClientAuth::Need);
    cfg.ssl.key_store.location = Some(d.join("server.jks"));
    cfg.ssl.key_store.password = Some("wrong".into());
    let e = Server::start_in_memory(cfg, MemoryStore::new())
        .await
        .err()
        .expect("wrong JKS password refused")
        .to_string();
    assert!(e.contains("server.jks") && e.contains("password"), "{e}");
}

// ---- Apache's Java client and kazoo ----

async fn run_with_stdin(mut cmd: tokio::process::Command, stdin: &str) -> String {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().expect("spawn");
    let mut input = child.stdin.take().expect("stdin");
    input
        .write_all(stdin.as_bytes())
        .await
        .expect("write stdin");
    drop(input);
    let out = tokio::time::timeout(Duration::from_secs(90), child.wait_with_output())
        .await
        .expect("client exits within 90 s")
        .expect("client output");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apache_java_client_over_tls() {
    let pki = Pki::new();
    let server = start(config(&pki, ClientAuth::Need)).await;
    let (cert, key) = pki.ca.leaf("java", false);
    let client_pem = write(pki.dir.path(), "java.pem", &format!("{key}{cert}"));
    let mut cmd = tokio::process::Command::new("java");
    cmd.args([
        "-cp",
        &tests::apache::classpath(),
        "-Dzookeeper.client.secure=true",
        "-Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty",
        &format!("-Dzookeeper.ssl.keyStore.location={}", client_pem.display()),
        "-Dzookeeper.ssl.keyStore.type=PEM",
        &format!(
            "-Dzookeeper.ssl.trustStore.location={}",
            pki.path("ca.pem").display()
        ),
        "-Dzookeeper.ssl.trustStore.type=PEM",
        "org.apache.zookeeper.ZooKeeperMain",
        "-server",
        &secure_host(&server),
    ]);
    let out = run_with_stdin(
        cmd,
        // The CLI splits ACLs at commas, so the DN comes in through `auth`.
        "create /java-tls data\nwhoami\ncreate /java-x509 x auth::cdrwa\ngetAcl /java-x509\nget /java-x509\nquit\n",
    )
    .await;
    assert!(out.contains("Created /java-tls"), "{out}");
    assert!(
        out.contains("x509") && out.contains("CN=java,O=zk-rs"),
        "{out}"
    );
    assert!(out.contains("Created /java-x509"), "{out}");
    // The CLI prints the comma of the DN URL-encoded.
    assert!(out.contains("'x509,'CN=java%2CO=zk-rs"), "{out}");
    let plain = connect(&server.connect_string(), None)
        .await
        .expect("plain");
    assert_eq!(
        &plain.get_data("/java-tls", false).await.unwrap().0[..],
        b"data"
    );
    assert_eq!(
        plain.get_data("/java-x509", false).await,
        Err(Error::NoAuth {
            path: "/java-x509".into()
        })
    );
    plain.close().await.unwrap();
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kazoo_over_tls() {
    let pki = Pki::new();
    let server = start(config(&pki, ClientAuth::Need)).await;
    let (cert, key) = pki.ca.leaf("kazoo", false);
    let certfile = write(pki.dir.path(), "kazoo.crt", &cert);
    let keyfile = write(pki.dir.path(), "kazoo.key", &key);
    const SCRIPT: &str = r#"
import sys
from kazoo.client import KazooClient
z = KazooClient(hosts=sys.argv[1], use_ssl=True, ca=sys.argv[2], certfile=sys.argv[3],
                keyfile=sys.argv[4], timeout=10)
z.start(timeout=15)
z.create("/kazoo-tls", b"from-kazoo")
print("got", z.get("/kazoo-tls")[0].decode())
z.stop()
"#;
    let mut cmd = tokio::process::Command::new("python3");
    cmd.arg("-c")
        .arg(SCRIPT)
        .arg(secure_host(&server))
        .arg(pki.path("ca.pem"))
        .arg(&certfile)
        .arg(&keyfile);
    let out = run_with_stdin(cmd, "").await;
    assert!(out.contains("got from-kazoo"), "{out}");
    server.stop().await.unwrap();
}

// ---- an ensemble member: TLS and plaintext on one port ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ensemble_members_unify_tls_and_plaintext() {
    use tests::zk_processes::{Options, ProcessEnsemble};
    let pki = Pki::new();
    let mut opts = Options::members(3);
    opts.extra_cfg = format!(
        "client.portUnification=true\nssl.keyStore.location={}\nssl.trustStore.location={}\n\
         ssl.clientAuth=want\n",
        pki.path("server.pem").display(),
        pki.path("ca.pem").display()
    );
    init_logs();
    let ens = ProcessEnsemble::start(opts).await.expect("ensemble starts");
    ens.wait_for_leader(WITHIN).await.expect("a leader");
    let member0 = ens.client_addr(0).to_string();
    let tls = connect(&member0, Some(pki.ca.client("alice")))
        .await
        .expect("TLS to a member");
    assert_eq!(x509_ids(&tls).await, ["CN=alice,O=zk-rs"]);
    let acl = vec![Acl::new(Perms::ALL, "x509", "CN=alice,O=zk-rs")];
    tls.create("/member-tls", b"m", &acl, CreateMode::Persistent)
        .await
        .expect("write through a member");
    // Plaintext on another member's same port, and TLS without a certificate there.
    let plain = connect(&ens.client_addr(1).to_string(), None)
        .await
        .expect("plaintext on a unified port");
    tokio::time::timeout(WITHIN, plain.sync("/member-tls"))
        .await
        .expect("sync in time")
        .expect("sync");
    assert_eq!(
        plain.get_data("/member-tls", false).await,
        Err(Error::NoAuth {
            path: "/member-tls".into()
        })
    );
    let anon = connect(
        &ens.client_addr(2).to_string(),
        Some(TlsConfig::new(pki.ca.pem().as_bytes())),
    )
    .await
    .expect("anonymous TLS to a member");
    anon.sync("/member-tls").await.expect("sync");
    assert_eq!(
        anon.get_data("/member-tls", false).await,
        Err(Error::NoAuth {
            path: "/member-tls".into()
        })
    );
    assert_eq!(
        &tls.get_data("/member-tls", false).await.unwrap().0[..],
        b"m"
    );
    for c in [tls, plain, anon] {
        c.close().await.unwrap();
    }
}

// ---- the x509 identity is the DN exactly as Apache prints it ----

/// A client certificate whose subject exercises Java's RFC 2253 printing: string types,
/// escapes, leading and trailing spaces, a non-RFC 2253 attribute (printed as `OID=#hex`).
fn tricky_client(ca: &Ca) -> TlsConfig {
    let key = KeyPair::generate().expect("key");
    let mut p = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CountryName,
        rcgen::DnValue::PrintableString("DE".try_into().expect("printable")),
    );
    dn.push(DnType::OrganizationName, "Acme, Inc.");
    dn.push(DnType::OrganizationalUnitName, " ops+dev ");
    dn.push(
        DnType::LocalityName,
        rcgen::DnValue::BmpString("Zürich".try_into().expect("bmp")),
    );
    dn.push(
        DnType::CustomDnType(vec![1, 2, 840, 113549, 1, 9, 1]),
        rcgen::DnValue::Ia5String("alice@example.com".try_into().expect("ia5")),
    );
    dn.push(DnType::CommonName, "alice;#1 <x>");
    p.distinguished_name = dn;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let cert = p.signed_by(&key, &ca.cert, &ca.key).expect("cert");
    TlsConfig::new(ca.pem().as_bytes())
        .client_cert(cert.pem().as_bytes(), key.serialize_pem().as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x509_identity_matches_apache() {
    let pki = Pki::new();
    let server = start(config(&pki, ClientAuth::Need)).await;
    let secure_port = tests::ports::free_port().expect("free port");
    let props = pki.apache_props();
    let props: Vec<&str> = props.iter().map(String::as_str).collect();
    let cfg = [
        format!("secureClientPort={secure_port}"),
        "secureClientPortAddress=127.0.0.1".to_owned(),
    ];
    let cfg: Vec<&str> = cfg.iter().map(String::as_str).collect();
    let apache = tests::apache::ApacheServer::start_with(&props, &cfg).expect("Apache with TLS");
    let client = tricky_client(&pki.ca);
    let theirs = connect(&format!("127.0.0.1:{secure_port}"), Some(client.clone()))
        .await
        .expect("TLS to Apache");
    let ours = connect(&secure_host(&server), Some(client))
        .await
        .expect("TLS to zk-server");
    let want = x509_ids(&theirs).await;
    assert_eq!(want.len(), 1, "Apache gives one x509 identity: {want:?}");
    assert_eq!(x509_ids(&ours).await, want);
    theirs.close().await.unwrap();
    ours.close().await.unwrap();
    drop(apache);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_only_server_from_apache_zoo_cfg_lines() {
    let pki = Pki::new();
    let port = tests::ports::free_port().expect("free port");
    let text = format!(
        "tickTime=200\ndataDir={}\nsecureClientPort={port}\nsecureClientPortAddress=127.0.0.1\n\
         serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory\n\
         ssl.keyStore.location={}\nssl.keyStore.type=PEM\nssl.trustStore.location={}\n\
         ssl.clientAuth=need\nssl.enabledProtocols=TLSv1.2\n\
         ssl.ciphersuites=TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256\n\
         authProvider.x509=org.apache.zookeeper.server.auth.X509AuthenticationProvider\n\
         admin.enableServer=false\n",
        pki.dir.path().display(),
        pki.path("server.pem").display(),
        pki.path("ca.pem").display(),
    );
    let cfg = ServerConfig::parse(&text, &[]).expect("Apache's TLS lines parse");
    assert!(
        !cfg.plain_client_port,
        "only secureClientPort: no plaintext port"
    );
    let server = start(cfg).await;
    assert_eq!(server.local_addr(), server.secure_addr().unwrap());
    assert_eq!(server.local_addr().port(), port);
    let c = connect(&secure_host(&server), Some(pki.ca.client("alice")))
        .await
        .expect("TLS 1.2 with the one suite offered");
    assert_eq!(x509_ids(&c).await, ["CN=alice,O=zk-rs"]);
    c.close().await.unwrap();
    server.stop().await.unwrap();
}

// ---- X.509 version 1 certificates (kazoo's harness, `openssl x509 -req` without extensions) ----

/// kazoo over TLS with a client certificate: its output ("ok <x509 id>" or the error).
async fn kazoo_tls(
    host: &str,
    ca: &std::path::Path,
    cert: &std::path::Path,
    key: &std::path::Path,
) -> String {
    const SCRIPT: &str = r#"
import sys
from kazoo.client import KazooClient
z = KazooClient(hosts=sys.argv[1], use_ssl=True, ca=sys.argv[2], certfile=sys.argv[3],
                keyfile=sys.argv[4], timeout=4, connection_retry={"max_tries": 1})
try:
    z.start(timeout=6)
except Exception as e:
    print("refused", type(e).__name__)
    sys.exit(0)
z.create("/v1-" + sys.argv[5], b"x")
print("ok", z.exists("/v1-" + sys.argv[5]) is not None)
z.stop()
"#;
    let mut cmd = tokio::process::Command::new("python3");
    cmd.arg("-c")
        .arg(SCRIPT)
        .arg(host)
        .arg(ca)
        .arg(cert)
        .arg(key)
        .arg(cert.file_stem().unwrap());
    run_with_stdin(cmd, "").await
}

/// kazoo's harness signs version 1 server and client certificates with a v3 CA, which
/// Java accepts and webpki refuses. zk-server serves a v1 certificate and admits a v1
/// client certificate signed by a CA of its truststore; a v1 certificate with the right
/// issuer name but another CA's signature, or an expired one, is refused, naming why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version1_certificates_are_checked_as_java_checks_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    openssl_ca(d, "ca", "v1 test CA");
    // Same name, other key: only the signature tells them apart.
    openssl_ca(d, "impostor", "v1 test CA");
    openssl_v1_leaf(d, "ca", "server", "localhost", 2);
    openssl_v1_leaf(d, "ca", "good", "v1-client", 2);
    openssl_v1_leaf(d, "impostor", "forged", "v1-client", 2);
    openssl_v1_leaf(d, "ca", "old", "v1-client", -1);
    let server_pem = format!(
        "{}{}",
        std::fs::read_to_string(d.join("server.key")).unwrap(),
        std::fs::read_to_string(d.join("server.crt")).unwrap()
    );
    write(d, "server.pem", &server_pem);
    let mut cfg = ServerConfig::for_tests(d);
    cfg.secure_client_port = Some(0);
    cfg.secure_client_port_address = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
    cfg.ssl.key_store.location = Some(d.join("server.pem"));
    cfg.ssl.trust_store.location = Some(d.join("ca.pem"));
    cfg.ssl.client_auth = ClientAuth::Need;
    let server = start(cfg).await;
    let host = secure_host(&server);
    let ca = d.join("ca.pem");
    let run = |name: &str| {
        let (cert, key) = (d.join(format!("{name}.crt")), d.join(format!("{name}.key")));
        let (host, ca) = (host.clone(), ca.clone());
        async move { kazoo_tls(&host, &ca, &cert, &key).await }
    };
    let out = run("good").await;
    assert!(
        out.contains("ok True"),
        "v1 client certificate admitted: {out}"
    );
    let out = run("forged").await;
    assert!(out.contains("refused"), "forged v1 certificate: {out}");
    log_line(&[
        "TLS handshake failed",
        "X.509 v1 certificate: bad signature",
    ])
    .await;
    let out = run("old").await;
    assert!(out.contains("refused"), "expired v1 certificate: {out}");
    log_line(&["TLS handshake failed", "X.509 v1 certificate: expired"]).await;
    server.stop().await.unwrap();
}

/// zk-client accepts a zk-server serving a version 1 certificate, as Java's client does,
/// and still checks its chain, its name and its dates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zk_client_checks_a_version1_server_certificate_as_java_does() {
    let certs = tests::tls::V1ServerCerts::new();
    let serve = |keystore: &str| {
        let mut cfg = ServerConfig::for_tests(certs.dir.path());
        cfg.secure_client_port = Some(0);
        cfg.secure_client_port_address = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
        cfg.ssl.key_store.location = Some(certs.path(keystore));
        cfg.ssl.trust_store.location = Some(certs.path("ca.pem"));
        cfg.ssl.client_auth = ClientAuth::None;
        start(cfg)
    };
    let server = serve("server.pem").await;
    let port = server.secure_addr().expect("secure port").port();
    tests::tls::v1_server_certificate_is_checked(port, &certs).await;
    server.stop().await.unwrap();
    let expired = serve("old.pem").await;
    let port = expired.secure_addr().expect("secure port").port();
    tests::tls::v1_expired_server_certificate_is_refused(port, &certs).await;
    expired.stop().await.unwrap();
}
