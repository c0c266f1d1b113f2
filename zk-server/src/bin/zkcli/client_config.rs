//! `-client-configuration <file>`: the Java properties file of `zookeeper.*` client keys
//! Apache's `ZKClientConfig` reads, mapped onto zk-client's settings. TLS
//! (`zookeeper.client.secure`, `zookeeper.ssl.*` stores in PEM, PKCS12 or JKS), SASL
//! DIGEST-MD5 through the JAAS file Java clients use, the request timeout and
//! `jute.maxbuffer`. A key asking for protection zk-client does not give (CRL / OCSP
//! checks, named cipher suites, TLS versions other than 1.2 / 1.3) is refused with its
//! name, so nothing connects with less security than the file asked for.
//!
//! The same keys are read as Java system properties first: the `-Dzookeeper.*=` words of
//! `CLIENT_JVMFLAGS` and `JVMFLAGS`, the variables zkCli.sh hands to Java, so an Apache
//! user's `CLIENT_JVMFLAGS="-Dzookeeper.client.secure=true
//! -Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty
//! -Dzookeeper.ssl.keyStore.location=... -Djava.security.auth.login.config=..."` works
//! unchanged; a `-client-configuration` file overrides them key by key, as Apache's
//! `ZKClientConfig` does. `zookeeper.clientCnxnSocket` names a Java socket class and means
//! nothing here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use zk_client::{ClientBuilder, TlsConfig};
use zk_server::config::tls::{StoreSpec, StoreType};
use zk_server::host::client::tls::stores;

/// What the file (and the environment, for the JAAS file) asks of the client.
#[derive(Debug, Clone, Default)]
pub struct ClientSettings {
    tls: Option<TlsConfig>,
    jaas: Option<(PathBuf, String)>,
    request_timeout: Option<Duration>,
    max_frame: Option<usize>,
}

impl ClientSettings {
    /// Settings without a file: the system properties of the environment's JVM flags
    /// ([`jvm_properties`]) and the JAAS `Client` section they (or `ZK_CLIENT_JAAS`)
    /// name, as zkCli.sh passes them to Java. The error names the variables and the key.
    pub fn from_env() -> Result<ClientSettings, String> {
        Self::from_properties(&jvm_properties(|v| std::env::var(v).ok()))
            .map_err(|e| format!("Error while processing {JVM_FLAGS_VARS}: {e}"))
    }

    /// Reads a properties file over the environment's system properties (the file wins
    /// key by key); the error names the file and the key.
    pub fn load(path: &Path) -> Result<ClientSettings, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("Error while processing {}: {e}", path.display()))?;
        let mut p = jvm_properties(|v| std::env::var(v).ok());
        p.extend(parse_properties(&text));
        Self::from_properties(&p)
            .map_err(|e| format!("Error while processing {}: {e}", path.display()))
    }

    fn from_properties(p: &BTreeMap<String, String>) -> Result<ClientSettings, String> {
        let mut s = ClientSettings {
            jaas: zk_client::sasl::jaas_from_env(),
            ..ClientSettings::default()
        };
        let get = |k: &str| p.get(k).map(String::as_str);
        let flag =
            |k: &str, default: bool| get(k).map_or(default, |v| v.eq_ignore_ascii_case("true"));
        for key in ["zookeeper.ssl.crl", "zookeeper.ssl.ocsp"] {
            if flag(key, false) {
                return Err(format!(
                    "{key}=true: certificate revocation checks are not supported by zkcli"
                ));
            }
        }
        if let Some(v) = get("zookeeper.ssl.ciphersuites") {
            return Err(format!(
                "zookeeper.ssl.ciphersuites={v}: zkcli cannot restrict its cipher suites \
                 (it offers rustls's AEAD suites); remove the key"
            ));
        }
        for key in ["zookeeper.ssl.protocol", "zookeeper.ssl.enabledProtocols"] {
            if let Some(v) = get(key) {
                if let Some(bad) = v
                    .split(',')
                    .map(str::trim)
                    .find(|p| !matches!(*p, "TLSv1.2" | "TLSv1.3" | "TLS"))
                {
                    return Err(format!(
                        "{key}={v}: {bad} is not supported (zkcli speaks TLSv1.2 and TLSv1.3)"
                    ));
                }
            }
        }
        if flag("zookeeper.client.secure", false) {
            s.tls = Some(tls(p)?);
        }
        if !flag("zookeeper.sasl.client", true) {
            s.jaas = None;
        } else if let (Some(section), Some((path, _))) =
            (get("zookeeper.sasl.clientconfig"), s.jaas.clone())
        {
            s.jaas = Some((path, section.to_string()));
        }
        if let Some(v) = get("zookeeper.request.timeout") {
            let ms: u64 = v
                .parse()
                .map_err(|_| format!("zookeeper.request.timeout={v} is not a number"))?;
            if ms > 0 {
                s.request_timeout = Some(Duration::from_millis(ms));
            }
        }
        if let Some(v) = get("jute.maxbuffer") {
            s.max_frame = Some(
                v.parse()
                    .map_err(|_| format!("jute.maxbuffer={v} is not a number"))?,
            );
        }
        Ok(s)
    }

    /// Applies the settings to a client builder.
    pub fn apply(&self, mut b: ClientBuilder) -> ClientBuilder {
        if let Some(t) = &self.tls {
            b = b.tls(t.clone());
        }
        if let Some((path, section)) = &self.jaas {
            b = b.jaas_file(path, section);
        }
        if let Some(t) = self.request_timeout {
            b = b.request_timeout(t);
        }
        if let Some(m) = self.max_frame {
            b = b.max_frame(m);
        }
        b
    }
}

/// The variables whose `-D` words zkCli.sh passes to Java, in its order.
const JVM_FLAGS_VARS: &str = "CLIENT_JVMFLAGS / JVMFLAGS";

/// The `-Dkey=value` system properties in `CLIENT_JVMFLAGS` then `JVMFLAGS` (split on
/// whitespace, as the unquoted variables in zkCli.sh are; a later one wins, as in Java).
/// A bare `-Dkey` is `key=""`, as Java has it.
pub fn jvm_properties(var: impl Fn(&str) -> Option<String>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for name in ["CLIENT_JVMFLAGS", "JVMFLAGS"] {
        let Some(flags) = var(name) else { continue };
        for word in flags.split_whitespace() {
            let Some(prop) = word.strip_prefix("-D") else {
                continue;
            };
            let (k, v) = prop.split_once('=').unwrap_or((prop, ""));
            if !k.is_empty() {
                out.insert(k.to_string(), v.to_string());
            }
        }
    }
    out
}

fn store_spec(p: &BTreeMap<String, String>, which: &str) -> Result<Option<StoreSpec>, String> {
    let key = |k: &str| format!("zookeeper.ssl.{which}.{k}");
    let Some(location) = p.get(&key("location")) else {
        return Ok(None);
    };
    let password = match (p.get(&key("password")), p.get(&key("passwordPath"))) {
        (Some(pw), _) => Some(pw.clone()),
        (None, Some(file)) => Some(
            std::fs::read_to_string(file)
                .map_err(|e| format!("{}: cannot read {file}: {e}", key("passwordPath")))?
                .trim_end_matches(['\r', '\n'])
                .to_string(),
        ),
        (None, None) => None,
    };
    let kind = match p.get(&key("type")) {
        Some(t) => Some(
            StoreType::from_name(t)
                .ok_or_else(|| format!("{}={t}: unknown store type", key("type")))?,
        ),
        None => None,
    };
    Ok(Some(StoreSpec {
        location: Some(PathBuf::from(location)),
        password,
        kind,
    }))
}

fn tls(p: &BTreeMap<String, String>) -> Result<TlsConfig, String> {
    let trust = store_spec(p, "trustStore")?.ok_or(
        "zookeeper.client.secure=true needs zookeeper.ssl.trustStore.location (the CA that \
         signs the servers' certificates)",
    )?;
    let cas = stores::trust_store(&trust, "ssl.")?;
    let ca_pem: String = cas.iter().map(|c| pem("CERTIFICATE", c)).collect();
    let mut cfg = TlsConfig::new(ca_pem.as_bytes());
    if let Some(spec) = store_spec(p, "keyStore")? {
        let m = stores::key_store(&spec, "ssl.")?;
        let chain: String = m.chain.iter().map(|c| pem("CERTIFICATE", c)).collect();
        let label = match &m.key {
            rustls_pki_types::PrivateKeyDer::Pkcs1(_) => "RSA PRIVATE KEY",
            rustls_pki_types::PrivateKeyDer::Sec1(_) => "EC PRIVATE KEY",
            _ => "PRIVATE KEY",
        };
        let key = pem(label, m.key.secret_der());
        cfg = cfg.client_cert(chain.as_bytes(), key.as_bytes());
    }
    let verify = p
        .get("zookeeper.ssl.hostnameVerification")
        .is_none_or(|v| v.eq_ignore_ascii_case("true"));
    Ok(cfg.verify_hostname(verify))
}

/// DER to a PEM block.
fn pem(label: &str, der: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::with_capacity(der.len() * 4 / 3 + 4);
    for chunk in der.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                b64.push('=');
            }
        }
    }
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Java `Properties.load`, enough for configuration files: `key=value`, `key: value` or
/// `key value`, `#` / `!` comments, `\` line continuations, keys and values trimmed.
pub fn parse_properties(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut logical = String::new();
    for raw in text.lines() {
        let line = raw.trim_start();
        if logical.is_empty() && (line.is_empty() || line.starts_with('#') || line.starts_with('!'))
        {
            continue;
        }
        if let Some(cont) = line.strip_suffix('\\') {
            logical.push_str(cont);
            continue;
        }
        logical.push_str(line);
        let entry = std::mem::take(&mut logical);
        let split = entry
            .find(|c: char| c == '=' || c == ':' || c.is_whitespace())
            .unwrap_or(entry.len());
        let key = entry[..split].trim();
        let rest = entry[split..].trim_start();
        let value = rest.strip_prefix(['=', ':']).unwrap_or(rest).trim();
        out.insert(key.to_string(), value.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_as_java() {
        let p = parse_properties(
            "# c\nzookeeper.client.secure=true\n a.b : c \nlong=x\\\n  y\nsp value here\n",
        );
        assert_eq!(p["zookeeper.client.secure"], "true");
        assert_eq!(p["a.b"], "c");
        assert_eq!(p["long"], "xy");
        assert_eq!(p["sp"], "value here");
    }

    #[test]
    fn jvm_flags_are_system_properties() {
        let env = |v: &str| match v {
            "CLIENT_JVMFLAGS" => Some(
                "-Xmx64m -Dzookeeper.client.secure=true \
                 -Dzookeeper.ssl.trustStore.location=/a.pem -Dflag"
                    .to_string(),
            ),
            "JVMFLAGS" => Some("-Dzookeeper.ssl.trustStore.location=/b.pem".to_string()),
            _ => None,
        };
        let p = jvm_properties(env);
        assert_eq!(p["zookeeper.client.secure"], "true");
        // JVMFLAGS comes later on zkCli.sh's java line: it wins.
        assert_eq!(p["zookeeper.ssl.trustStore.location"], "/b.pem");
        assert_eq!(p["flag"], "");
        assert!(!p.contains_key("-Xmx64m") && !p.contains_key("Xmx64m"));
        assert!(jvm_properties(|_| None).is_empty());
    }

    #[test]
    fn pem_round_trips_base64() {
        let text = pem("X", b"hello world!?");
        assert!(text.contains("aGVsbG8gd29ybGQhPw==\n"), "{text}");
    }

    #[test]
    fn unsupported_protection_is_refused_by_key() {
        let mut p = BTreeMap::new();
        p.insert("zookeeper.ssl.crl".to_string(), "true".to_string());
        assert!(ClientSettings::from_properties(&p)
            .unwrap_err()
            .contains("zookeeper.ssl.crl"));
        let mut p = BTreeMap::new();
        p.insert("zookeeper.client.secure".to_string(), "true".to_string());
        assert!(ClientSettings::from_properties(&p)
            .unwrap_err()
            .contains("trustStore"));
    }
}
