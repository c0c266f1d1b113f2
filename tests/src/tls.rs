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
