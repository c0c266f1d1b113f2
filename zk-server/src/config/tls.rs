//! Apache's TLS keys, checked when read so that a value we cannot honour stops the server
//! with the key (and line) named: `ssl.*` for the client port and `ssl.quorum.*` for the
//! links between ensemble members (Apache's `ClientX509Util` and `QuorumX509Util`: the
//! same keys under two prefixes), as zoo.cfg keys or `-Dzookeeper.ssl.*` properties. The
//! stores themselves are read when the port starts ([`crate::host::client::tls`]).

use std::path::PathBuf;
use std::time::Duration;

/// A keystore or truststore file format (`ssl.keyStore.type`, `ssl.trustStore.type`),
/// shared with zk-client.
pub use zk_proto::x509::store::StoreType;

/// One store's three keys (`location`, `password` or `passwordPath`, `type`).
#[derive(Debug, Clone, Default)]
pub struct StoreSpec {
    /// `ssl.*Store.location`.
    pub location: Option<PathBuf>,
    /// `ssl.*Store.password` (or the contents of `ssl.*Store.passwordPath`).
    pub password: Option<String>,
    /// `ssl.*Store.type`; inferred from the extension when absent.
    pub kind: Option<StoreType>,
}

impl StoreSpec {
    /// The configured type, else the one the file name implies.
    pub fn store_type(&self, key: &str) -> Result<StoreType, String> {
        let Some(path) = &self.location else {
            return Err(format!("ssl.{key}.location is not set"));
        };
        self.kind
            .or_else(|| StoreType::from_path(path))
            .ok_or_else(|| {
                format!(
                    "ssl.{key}.type is not set and cannot be inferred from {} \
                 (use .pem, .crt, .p12, .pfx or .jks, or set ssl.{key}.type)",
                    path.display()
                )
            })
    }
}

/// `ssl.clientAuth`: whether a client certificate is asked for and required.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    /// Required and verified (Apache's default).
    #[default]
    Need,
    /// Asked for; verified when given, anonymous clients are served.
    Want,
    /// Not asked for.
    None,
}

/// TLS protocol versions rustls speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    /// TLSv1.2.
    V12,
    /// TLSv1.3.
    V13,
}

fn tls_version(v: &str) -> Option<TlsVersion> {
    match v.trim() {
        "TLSv1.2" => Some(TlsVersion::V12),
        "TLSv1.3" => Some(TlsVersion::V13),
        _ => None,
    }
}

/// Cipher suites zk-server can offer, by their Java (IANA) name; the TLS 1.3 ones also by
/// rustls's `TLS13_` spelling.
pub const CIPHER_SUITES: &[&str] = &[
    "TLS_AES_256_GCM_SHA384",
    "TLS_AES_128_GCM_SHA256",
    "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
];

/// TLS settings of the client port (`ssl.*`) or of the quorum links (`ssl.quorum.*`).
#[derive(Debug, Clone)]
pub struct SslConfig {
    /// The key prefix these settings are read under (`ssl.` or `ssl.quorum.`), for
    /// messages.
    pub prefix: &'static str,
    /// `ssl.keyStore.*`: the server's certificate chain and key.
    pub key_store: StoreSpec,
    /// `ssl.trustStore.*`: CAs client certificates must chain to.
    pub trust_store: StoreSpec,
    /// `ssl.clientAuth`.
    pub client_auth: ClientAuth,
    /// Versions offered (`ssl.protocol`, `ssl.enabledProtocols`), ascending.
    pub versions: Vec<TlsVersion>,
    /// `ssl.ciphersuites`, Java names; `None`: rustls's defaults.
    pub cipher_suites: Option<Vec<String>>,
    /// `ssl.hostnameVerification`. Apache 3.8 never checks a client's host name on the
    /// client port (`ClientX509Util.shouldVerifyClientHostname()` is false), so neither
    /// value changes what the client port accepts. On the quorum links
    /// (`ssl.quorum.hostnameVerification`) both ends check the other's certificate
    /// against its address, as `QuorumX509Util` does.
    pub hostname_verification: bool,
    /// `ssl.handshakeDetectionTimeoutMillis`: how long a connection may take to show
    /// TLS or plaintext and finish its handshake.
    pub handshake_timeout: Duration,
    /// How often the store files are checked for changes (zk-server only:
    /// `ssl.storeCheckIntervalMillis`).
    pub reload_interval: Duration,
    /// `X509AuthenticationProvider.superUser`: the certificate DN with super rights.
    pub x509_super_user: Option<String>,
}

impl Default for SslConfig {
    fn default() -> Self {
        SslConfig {
            prefix: CLIENT_PREFIX,
            key_store: StoreSpec::default(),
            trust_store: StoreSpec::default(),
            client_auth: ClientAuth::Need,
            versions: vec![TlsVersion::V12, TlsVersion::V13],
            cipher_suites: None,
            hostname_verification: true,
            handshake_timeout: Duration::from_millis(5000),
            reload_interval: Duration::from_millis(1000),
            x509_super_user: None,
        }
    }
}

fn read_password_file(key: &str, path: &str) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map(|s| s.trim_end_matches(['\r', '\n']).to_string())
        .map_err(|e| format!("{key}: cannot read {path}: {e}"))
}

/// Prefix of the client port's keys.
pub const CLIENT_PREFIX: &str = "ssl.";
/// Prefix of the quorum links' keys.
pub const QUORUM_PREFIX: &str = "ssl.quorum.";

/// The settings a key names under `ssl.` that `ssl.quorum.` has too (the quorum links
/// have no x509 ACL provider and no store check interval of their own).
const QUORUM_KEYS: &[&str] = &[
    "keyStore.location",
    "keyStore.password",
    "keyStore.passwordPath",
    "keyStore.type",
    "trustStore.location",
    "trustStore.password",
    "trustStore.passwordPath",
    "trustStore.type",
    "clientAuth",
    "protocol",
    "enabledProtocols",
    "ciphersuites",
    "hostnameVerification",
    "handshakeDetectionTimeoutMillis",
    "crl",
    "ocsp",
];

impl SslConfig {
    /// Settings of the quorum links (`ssl.quorum.*`), Apache's defaults.
    pub fn quorum() -> SslConfig {
        SslConfig {
            prefix: QUORUM_PREFIX,
            ..SslConfig::default()
        }
    }

    /// The full name of setting `name` (e.g. `keyStore.location`) under our prefix.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Applies `full` (the key without `zookeeper.`) if it is one of our TLS keys:
    /// Ok(false) when it is not one, Err with the reason when the value cannot be honoured.
    pub fn apply(&mut self, full: &str, value: &str) -> Result<bool, String> {
        if full == "X509AuthenticationProvider.superUser" && self.prefix == CLIENT_PREFIX {
            self.x509_super_user = Some(value.trim().to_string());
            return Ok(true);
        }
        let Some(rest) = full.strip_prefix(self.prefix) else {
            return Ok(false);
        };
        if self.prefix == QUORUM_PREFIX && !QUORUM_KEYS.contains(&rest) {
            return Ok(false);
        }
        if self.prefix == CLIENT_PREFIX && rest.starts_with("quorum.") {
            return Ok(false);
        }
        // Matched by the client port's names below; messages keep the full key.
        let short = format!("ssl.{rest}");
        let short = short.as_str();
        let v = value.trim();
        let bad = |what: &str| Err(format!("{full}={v}: {what}"));
        match short {
            "ssl.keyStore.location" => self.key_store.location = Some(PathBuf::from(v)),
            "ssl.keyStore.password" => self.key_store.password = Some(v.to_string()),
            "ssl.keyStore.passwordPath" => {
                self.key_store.password = Some(read_password_file(full, v)?)
            }
            "ssl.trustStore.location" => self.trust_store.location = Some(PathBuf::from(v)),
            "ssl.trustStore.password" => self.trust_store.password = Some(v.to_string()),
            "ssl.trustStore.passwordPath" => {
                self.trust_store.password = Some(read_password_file(full, v)?)
            }
            "ssl.keyStore.type" | "ssl.trustStore.type" => {
                let kind = match v {
                    "" => None,
                    t => Some(StoreType::from_name(t).ok_or_else(|| {
                        format!("{full}={v}: zk-server reads PEM, PKCS12 and JKS stores")
                    })?),
                };
                if short == "ssl.keyStore.type" {
                    self.key_store.kind = kind;
                } else {
                    self.trust_store.kind = kind;
                }
            }
            "ssl.clientAuth" => {
                self.client_auth = match v.to_ascii_lowercase().as_str() {
                    "" | "need" | "required" => ClientAuth::Need,
                    "want" => ClientAuth::Want,
                    "none" => ClientAuth::None,
                    _ => return bad("expected need, want or none"),
                }
            }
            "ssl.protocol" => {
                // As Apache: TLSv1.3 (or plain TLS) also enables 1.2; TLSv1.2 only 1.2.
                self.versions = match v {
                    "TLSv1.3" | "TLS" => vec![TlsVersion::V12, TlsVersion::V13],
                    "TLSv1.2" => vec![TlsVersion::V12],
                    _ => return bad("zk-server speaks TLSv1.2 and TLSv1.3 only"),
                }
            }
            "ssl.enabledProtocols" => {
                let mut versions = Vec::new();
                for p in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    let Some(t) = tls_version(p) else {
                        return bad(&format!(
                            "protocol {p} is not supported (TLSv1.2 and TLSv1.3 are)"
                        ));
                    };
                    versions.push(t);
                }
                if versions.is_empty() {
                    return bad("names no protocol");
                }
                versions.sort();
                versions.dedup();
                self.versions = versions;
            }
            "ssl.ciphersuites" => {
                let mut suites = Vec::new();
                for s in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    let java = s.replace("TLS13_", "TLS_");
                    if !CIPHER_SUITES.contains(&java.as_str()) {
                        return bad(&format!(
                            "cipher suite {s} is not supported; zk-server offers {}",
                            CIPHER_SUITES.join(", ")
                        ));
                    }
                    suites.push(java);
                }
                if suites.is_empty() {
                    return bad("names no cipher suite");
                }
                self.cipher_suites = Some(suites);
            }
            "ssl.hostnameVerification" => self.hostname_verification = parse_flag(full, v)?,
            "ssl.handshakeDetectionTimeoutMillis" => {
                let ms: u64 = v
                    .parse()
                    .map_err(|_| format!("{full}: '{v}' is not a valid number"))?;
                self.handshake_timeout = Duration::from_millis(ms.max(1));
            }
            "ssl.storeCheckIntervalMillis" => {
                let ms: u64 = v
                    .parse()
                    .map_err(|_| format!("{full}: '{v}' is not a valid number"))?;
                self.reload_interval = Duration::from_millis(ms.max(10));
            }
            "ssl.authProvider" => {
                if v != "x509" {
                    return bad("only the x509 provider authenticates TLS clients here");
                }
            }
            // Off only: `true` is refused by the protection rules before it gets here.
            "ssl.crl" | "ssl.ocsp" => {}
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Checks what must hold together once every key is read.
    pub fn validate(&self) -> Result<(), String> {
        let what = if self.prefix == QUORUM_PREFIX {
            "TLS between ensemble members (sslQuorum / portUnification)"
        } else {
            "TLS on the client port"
        };
        if self.key_store.location.is_none() {
            return Err(format!(
                "{what} needs {} (this server's certificate and key)",
                self.key("keyStore.location")
            ));
        }
        let store_key = |k: &str| self.key(k).trim_start_matches("ssl.").to_string();
        self.key_store.store_type(&store_key("keyStore"))?;
        if self.trust_store.location.is_some() {
            self.trust_store.store_type(&store_key("trustStore"))?;
        } else if self.prefix == QUORUM_PREFIX {
            // Members verify each other's certificates both ways, and we have no JDK CA
            // list to fall back to.
            return Err(format!(
                "{what} needs {} (the CAs members' certificates chain to)",
                self.key("trustStore.location")
            ));
        } else if self.client_auth != ClientAuth::None {
            // Apache would fall back to the JDK's CA list; we have none to fall back to.
            return Err(format!(
                "ssl.clientAuth={} verifies client certificates, which needs \
                 ssl.trustStore.location (or set ssl.clientAuth=none)",
                match self.client_auth {
                    ClientAuth::Need => "need",
                    _ => "want",
                }
            ));
        }
        if let Some(suites) = &self.cipher_suites {
            let tls13 = suites.iter().any(|s| !s.starts_with("TLS_ECDHE_"));
            let tls12 = suites.iter().any(|s| s.starts_with("TLS_ECDHE_"));
            let usable = self.versions.iter().any(|v| match v {
                TlsVersion::V13 => tls13,
                TlsVersion::V12 => tls12,
            });
            if !usable {
                return Err(format!(
                    "{} names no suite of the enabled protocols ({} / {})",
                    self.key("ciphersuites"),
                    self.key("enabledProtocols"),
                    self.key("protocol")
                ));
            }
        }
        Ok(())
    }
}

fn parse_flag(key: &str, v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("{key}: '{v}' is not true or false")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_types_from_names_and_extensions() {
        assert_eq!(StoreType::from_name("pkcs12"), Some(StoreType::Pkcs12));
        assert_eq!(StoreType::from_name("BCFKS"), None);
        for (f, t) in [
            ("/a/k.pem", StoreType::Pem),
            ("/a/k.CRT", StoreType::Pem),
            ("/a/k.p12", StoreType::Pkcs12),
            ("/a/k.pfx", StoreType::Pkcs12),
            ("/a/k.jks", StoreType::Jks),
        ] {
            assert_eq!(
                StoreType::from_path(std::path::Path::new(f)),
                Some(t),
                "{f}"
            );
        }
        let spec = StoreSpec {
            location: Some("/a/keys".into()),
            ..Default::default()
        };
        let e = spec.store_type("keyStore").unwrap_err();
        assert!(e.contains("ssl.keyStore.type"), "{e}");
    }

    #[test]
    fn protocols_and_suites() {
        let mut c = SslConfig::default();
        c.apply("ssl.protocol", "TLSv1.2").unwrap();
        assert_eq!(c.versions, vec![TlsVersion::V12]);
        c.apply("ssl.enabledProtocols", "TLSv1.3, TLSv1.2").unwrap();
        assert_eq!(c.versions, vec![TlsVersion::V12, TlsVersion::V13]);
        let e = c.apply("ssl.enabledProtocols", "TLSv1.1").unwrap_err();
        assert!(
            e.contains("ssl.enabledProtocols") && e.contains("TLSv1.1"),
            "{e}"
        );
        let e = c.apply("ssl.protocol", "SSLv3").unwrap_err();
        assert!(e.contains("ssl.protocol"), "{e}");
        c.apply(
            "ssl.ciphersuites",
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS13_AES_128_GCM_SHA256",
        )
        .unwrap();
        assert_eq!(
            c.cipher_suites.as_deref().unwrap(),
            [
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                "TLS_AES_128_GCM_SHA256"
            ]
        );
        let e = c
            .apply("ssl.ciphersuites", "TLS_RSA_WITH_AES_128_CBC_SHA")
            .unwrap_err();
        assert!(e.contains("TLS_RSA_WITH_AES_128_CBC_SHA"), "{e}");
        let e = c.apply("ssl.clientAuth", "sometimes").unwrap_err();
        assert!(e.contains("ssl.clientAuth"), "{e}");
    }

    #[test]
    fn validation_names_what_is_missing() {
        let mut c = SslConfig::default();
        assert!(c.validate().unwrap_err().contains("ssl.keyStore.location"));
        c.apply("ssl.keyStore.location", "/k.pem").unwrap();
        assert!(c
            .validate()
            .unwrap_err()
            .contains("ssl.trustStore.location"));
        c.apply("ssl.clientAuth", "none").unwrap();
        c.validate().unwrap();
        c.apply("ssl.protocol", "TLSv1.2").unwrap();
        c.apply("ssl.ciphersuites", "TLS_AES_128_GCM_SHA256")
            .unwrap();
        assert!(c.validate().unwrap_err().contains("ssl.ciphersuites"));
    }
}
