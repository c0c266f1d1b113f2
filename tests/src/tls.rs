//! Test certificates made with rcgen: a CA ([`Ca`]) issuing loopback leaves for servers and
//! clients (subject `O=zk-rs, CN=<cn>`, which Java prints `CN=<cn>,O=zk-rs`), and a temp dir
//! with a server keystore and truststore as PEM ([`Pki`]) that zk-server and Apache (its
//! `ssl.keyStore.type=PEM`) both load.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};
use zk_client::TlsConfig;

/// A certificate authority.
pub struct Ca {
    /// Its self-signed certificate.
    pub cert: Certificate,
    /// Its key.
    pub key: KeyPair,
}

impl Ca {
    /// A fresh CA named `CN=<name>`.
    pub fn new(name: &str) -> Ca {
        let key = KeyPair::generate().expect("CA key");
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, name);
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = p.self_signed(&key).expect("CA cert");
        Ca { cert, key }
    }

    /// The CA certificate as PEM.
    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// A leaf for `127.0.0.1` / `localhost` with subject `O=zk-rs, CN=<cn>` (Java prints
    /// it `CN=<cn>,O=zk-rs`), its key; `expired` makes it valid only in 2020.
    pub fn leaf(&self, cn: &str, expired: bool) -> (String, String) {
        self.leaf_for(cn, &["127.0.0.1", "localhost"], expired)
    }

    /// Like [`Ca::leaf`], for the given subject alternative names (addresses or DNS names).
    pub fn leaf_for(&self, cn: &str, names: &[&str], expired: bool) -> (String, String) {
        let key = KeyPair::generate().expect("leaf key");
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut p = CertificateParams::new(names).expect("leaf params");
        // Fresh: rcgen's default name would put its CN first.
        p.distinguished_name = DistinguishedName::new();
        p.distinguished_name.push(DnType::OrganizationName, "zk-rs");
        p.distinguished_name.push(DnType::CommonName, cn);
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        if expired {
            p.not_before = rcgen::date_time_ymd(2020, 1, 1);
            p.not_after = rcgen::date_time_ymd(2020, 12, 31);
        }
        let cert = p.signed_by(&key, &self.cert, &self.key).expect("leaf cert");
        (cert.pem(), key.serialize_pem())
    }

    /// A client configuration trusting this CA, with a client certificate for `cn`.
    pub fn client(&self, cn: &str) -> TlsConfig {
        let (cert, key) = self.leaf(cn, false);
        TlsConfig::new(self.pem().as_bytes()).client_cert(cert.as_bytes(), key.as_bytes())
    }
}

/// Writes `text` to `dir/name`; its path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write test file");
    p
}

/// A CA, a server keystore (`server.pem`: key and certificate) and truststore (`ca.pem`).
pub struct Pki {
    /// The CA that signed the server's certificate; issue clients from it.
    pub ca: Ca,
    /// Where the stores are.
    pub dir: tempfile::TempDir,
}

impl Pki {
    /// A fresh CA and server certificate (`CN=zk-server,O=zk-rs`).
    pub fn new() -> Pki {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = Ca::new("zk-rs test CA");
        let (cert, key) = ca.leaf("zk-server", false);
        write(dir.path(), "server.pem", &format!("{key}{cert}"));
        write(dir.path(), "ca.pem", &ca.pem());
        Pki { ca, dir }
    }

    /// A file in the store dir.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The `-D` properties that give Apache a Netty TLS port with these stores (the port
    /// itself is the zoo.cfg line `secureClientPort`).
    pub fn apache_props(&self) -> Vec<String> {
        vec![
            "-Dzookeeper.serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory"
                .to_owned(),
            format!(
                "-Dzookeeper.ssl.keyStore.location={}",
                self.path("server.pem").display()
            ),
            format!(
                "-Dzookeeper.ssl.trustStore.location={}",
                self.path("ca.pem").display()
            ),
        ]
    }
}

impl Default for Pki {
    fn default() -> Self {
        Self::new()
    }
}

/// Java's stores for a client or server, made as Java users make them (`openssl pkcs12`,
/// then `keytool -importkeystore` and `keytool -importcert`): `<name>.keystore.jks` with
/// the key and certificate of a fresh leaf of `ca` for `cn`, and `<name>.truststore.jks`
/// with `ca`'s certificate, both under `password`. Their paths.
pub fn java_stores(
    dir: &Path,
    ca: &Ca,
    name: &str,
    cn: &str,
    password: &str,
) -> (PathBuf, PathBuf) {
    let (cert, key) = ca.leaf(cn, false);
    let leaf = write(dir, &format!("{name}.leaf.pem"), &format!("{key}{cert}"));
    let ca_pem = write(dir, &format!("{name}.ca.pem"), &ca.pem());
    let p12 = dir.join(format!("{name}.p12"));
    let keystore = dir.join(format!("{name}.keystore.jks"));
    let truststore = dir.join(format!("{name}.truststore.jks"));
    let pass = format!("pass:{password}");
    tool(
        "openssl",
        &[
            "pkcs12",
            "-export",
            "-in",
            &s(&leaf),
            "-name",
            name,
            "-passout",
            &pass,
            "-out",
            &s(&p12),
        ],
    );
    tool(
        "keytool",
        &[
            "-importkeystore",
            "-noprompt",
            "-srckeystore",
            &s(&p12),
            "-srcstoretype",
            "PKCS12",
            "-srcstorepass",
            password,
            "-destkeystore",
            &s(&keystore),
            "-deststoretype",
            "JKS",
            "-deststorepass",
            password,
            "-destkeypass",
            password,
        ],
    );
    tool(
        "keytool",
        &[
            "-importcert",
            "-noprompt",
            "-alias",
            "ca",
            "-file",
            &s(&ca_pem),
            "-keystore",
            &s(&truststore),
            "-storetype",
            "JKS",
            "-storepass",
            password,
        ],
    );
    (keystore, truststore)
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// Runs a store tool; panics with its output when it fails.
fn tool(prog: &str, args: &[&str]) {
    let out = std::process::Command::new(prog)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{prog} (install openssl and a JRE's keytool): {e}"));
    assert!(
        out.status.success(),
        "{prog} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs a tool (openssl, keytool), failing the test with its stderr.
pub fn run_tool(cmd: &mut std::process::Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `openssl x509 -req` without extensions: a version 1 certificate for a fresh key with
/// subject `/CN=<cn>`, signed by `ca` (`ca.pem`/`ca.key` names in `d`); valid for `days`
/// (negative: expired). Writes `<name>.crt` and `<name>.key`.
pub fn openssl_v1_leaf(d: &std::path::Path, ca: &str, name: &str, cn: &str, days: i32) {
    let p = |f: String| d.join(f).display().to_string();
    run_tool(std::process::Command::new("openssl").args([
        "req",
        "-new",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        &p(format!("{name}.key")),
        "-out",
        &p(format!("{name}.csr")),
        "-subj",
        &format!("/CN={cn}"),
    ]));
    run_tool(std::process::Command::new("openssl").args([
        "x509",
        "-req",
        "-in",
        &p(format!("{name}.csr")),
        "-CA",
        &p(format!("{ca}.pem")),
        "-CAkey",
        &p(format!("{ca}.key")),
        "-set_serial",
        "7",
        "-days",
        &days.to_string(),
        "-out",
        &p(format!("{name}.crt")),
    ]));
    let text = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in", &p(format!("{name}.crt"))])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("Version: 1 (0x0)"),
        "openssl made a version 1 certificate"
    );
}

/// A self-signed (version 3) CA `/CN=<cn>` as `<name>.pem` / `<name>.key`.
pub fn openssl_ca(d: &std::path::Path, name: &str, cn: &str) {
    let p = |f: String| d.join(f).display().to_string();
    run_tool(std::process::Command::new("openssl").args([
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        &p(format!("{name}.key")),
        "-out",
        &p(format!("{name}.pem")),
        "-subj",
        &format!("/CN={cn}"),
        "-days",
        "2",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]));
}

/// X.509 version 1 server certificates, as `openssl x509 -req` without extensions makes
/// them (kazoo's harness, older recipes): a v3 CA `ca.pem` signing `server.pem` (key and
/// v1 certificate for `CN=localhost`, valid) and `old.pem` (the same, expired), and an
/// unrelated CA `stranger.pem`.
pub struct V1ServerCerts {
    /// Where the files are.
    pub dir: tempfile::TempDir,
}

impl V1ServerCerts {
    /// Makes the certificates with openssl.
    pub fn new() -> V1ServerCerts {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        openssl_ca(d, "ca", "v1 test CA");
        openssl_ca(d, "stranger", "stranger CA");
        for (name, days) in [("server", 2), ("old", -1)] {
            openssl_v1_leaf(d, "ca", name, "localhost", days);
            let pem = format!(
                "{}{}",
                std::fs::read_to_string(d.join(format!("{name}.key"))).expect("key"),
                std::fs::read_to_string(d.join(format!("{name}.crt"))).expect("crt")
            );
            write(d, &format!("{name}.pem"), &pem);
        }
        V1ServerCerts { dir }
    }

    /// A file of the set (`ca.pem`, `server.pem`, `old.pem`, `stranger.pem`).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A client trusting the CA file `ca` of the set.
    pub fn client(&self, ca: &str) -> TlsConfig {
        TlsConfig::new(&std::fs::read(self.path(ca)).expect("CA file"))
    }
}

impl Default for V1ServerCerts {
    fn default() -> Self {
        Self::new()
    }
}

/// Connects zk-client to `host` with `tls` (4 s sessions; a hang fails the test).
async fn v1_connect(host: &str, tls: TlsConfig) -> zk_client::Result<zk_client::Client> {
    tokio::time::timeout(
        std::time::Duration::from_secs(20),
        zk_client::Client::builder(host)
            .session_timeout(std::time::Duration::from_secs(4))
            .tls(tls)
            .connect(),
    )
    .await
    .expect("connect returns within 20 s: no hang")
}

/// The cause of a refused connection to `host`, checked to name the host.
fn v1_refusal(res: zk_client::Result<zk_client::Client>, host: &str) -> String {
    match res {
        Err(zk_client::Error::Connect { host: h, cause }) => {
            assert_eq!(h, host, "the error names the host");
            eprintln!("refused as expected: {cause}");
            cause
        }
        Err(e) => panic!("expected a connection error naming {host}, got {e:?}"),
        Ok(_) => panic!("the connection to {host} should have been refused"),
    }
}

/// zk-client against a server on `localhost:<port>` serving [`V1ServerCerts`]'
/// `server.pem`: it connects, writes and reads as Java's client does; a client trusting
/// another CA, or expecting another host name, is refused with the reason (and connects
/// once hostname verification is off, the chain still checked).
pub async fn v1_server_certificate_is_checked(port: u16, certs: &V1ServerCerts) {
    use zk_client::{Acl, CreateMode};
    let host = format!("localhost:{port}");
    let c = v1_connect(&host, certs.client("ca.pem"))
        .await
        .expect("zk-client accepts a v1 server certificate signed by its CA");
    let path = format!("/v1-{port}");
    c.create(&path, b"v1", &Acl::open_unsafe(), CreateMode::Persistent)
        .await
        .expect("create over TLS");
    assert_eq!(&c.get_data(&path, false).await.expect("get").0[..], b"v1");
    c.close().await.expect("close");

    let cause = v1_refusal(v1_connect(&host, certs.client("stranger.pem")).await, &host);
    assert!(
        cause.contains("tls handshake failed")
            && cause.contains("X.509 v1 certificate: its issuer is not a CA of the truststore"),
        "{cause}"
    );
    let other_name = certs.client("ca.pem").server_name("zk.example.com");
    let cause = v1_refusal(v1_connect(&host, other_name.clone()).await, &host);
    assert!(
        cause.contains("tls handshake failed")
            && cause.contains("made out to CN=localhost, not to zk.example.com"),
        "{cause}"
    );
    let c = v1_connect(&host, other_name.verify_hostname(false))
        .await
        .expect("without hostname verification the name is not checked");
    c.close().await.expect("close");
    let cause = v1_refusal(
        v1_connect(&host, certs.client("stranger.pem").verify_hostname(false)).await,
        &host,
    );
    assert!(
        cause.contains("its issuer is not a CA of the truststore"),
        "{cause}"
    );
}

/// zk-client against a server on `localhost:<port>` serving [`V1ServerCerts`]' expired
/// `old.pem`: refused, saying so.
pub async fn v1_expired_server_certificate_is_refused(port: u16, certs: &V1ServerCerts) {
    let host = format!("localhost:{port}");
    let cause = v1_refusal(v1_connect(&host, certs.client("ca.pem")).await, &host);
    assert!(
        cause.contains("tls handshake failed") && cause.contains("X.509 v1 certificate: expired"),
        "{cause}"
    );
}
