//! SASL for ZooKeeper as Java's client runs it against a server with
//! `SASLAuthenticationProvider`: DIGEST-MD5 (RFC 2831, `qop=auth`) and GSSAPI (Kerberos v5,
//! RFC 4752, no security layer), and the JAAS `Client` section that configures either.
//!
//! DIGEST-MD5 (opcode `sasl`, normal xids, right after the ConnectResponse): the client
//! sends an empty token, the server answers with a challenge (realm, nonce), the client
//! answers with a digest response, the server answers with `rspauth`, which the client
//! checks. The session's id is then `sasl:<username>`.
//!
//! GSSAPI: the client logs in to the server principal `<service>/<host>@<realm>`, where
//! the service is `zookeeper` (`zookeeper.sasl.client.username`), the host is the server's
//! canonical name (the reverse lookup of the address connected to, kept only when it
//! resolves back to that address, as Java's `getCanonicalHostName`; the name as written
//! when canonicalisation is off or finds nothing), and the realm is the client principal's
//! (`zookeeper.server.realm` overrides it). See [`zk_proto::gssapi`] for the exchange.

use std::path::{Path, PathBuf};

#[cfg(test)]
pub(crate) use zk_proto::sasl::{digest_response, DigestInput};
use zk_proto::sasl::{hex, jaas, DigestService};

use crate::error::{Error, Result};

pub use zk_proto::sasl::{DIGEST_SERVER_NAME, SERVICE};
/// JAAS section Java's client reads unless `zookeeper.sasl.clientconfig` says otherwise.
pub const DEFAULT_JAAS_SECTION: &str = "Client";
/// Environment variable naming a JAAS file (this crate's; Apache names the file with the
/// JVM property `java.security.auth.login.config` only).
pub const JAAS_ENV: &str = "ZK_CLIENT_JAAS";

/// The service part of the server principal unless `zookeeper.sasl.client.username`
/// says otherwise.
pub const DEFAULT_SERVICE_NAME: &str = "zookeeper";

/// SASL credentials of a client.
#[derive(Clone, PartialEq, Eq)]
pub enum SaslConfig {
    /// DIGEST-MD5 against the server's `user_<name>="<password>"` JAAS entries.
    DigestMd5 {
        /// User name.
        username: String,
        /// Password.
        password: String,
    },
    /// Kerberos v5 (SASL GSSAPI), Java's `Krb5LoginModule`.
    Gssapi(GssapiConfig),
}

impl std::fmt::Debug for SaslConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SaslConfig::DigestMd5 { username, .. } => f
                .debug_struct("DigestMd5")
                .field("username", username)
                .finish_non_exhaustive(),
            SaslConfig::Gssapi(g) => g.fmt(f),
        }
    }
}

/// A Kerberos (SASL GSSAPI) login: where the client's credentials come from and how the
/// server principal is formed.
///
/// ```
/// use zk_client::sasl::GssapiConfig;
/// let login = GssapiConfig::keytab("zkcli@EXAMPLE.COM", "/etc/zkcli.keytab")
///     .service_name("zookeeper")          // the default
///     .canonicalize_hostname(true);       // the default, as Java's client
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GssapiConfig {
    /// The client's credentials (the options of a `Krb5LoginModule` entry).
    pub login: zk_proto::sasl::jaas::KerberosLogin,
    /// Service part of the server principal (`zookeeper.sasl.client.username`).
    pub service: String,
    /// Use the server's canonical host name (`zookeeper.sasl.client.canonicalize.hostname`).
    pub canonicalize: bool,
    /// Realm of the server principal (`zookeeper.server.realm`); `None`: the client's.
    pub server_realm: Option<String>,
}

impl GssapiConfig {
    /// Credentials as Java's `Krb5LoginModule` gets them from these options.
    pub fn new(login: zk_proto::sasl::jaas::KerberosLogin) -> Self {
        GssapiConfig {
            login,
            service: DEFAULT_SERVICE_NAME.to_owned(),
            canonicalize: true,
            server_realm: None,
        }
    }

    /// Logs in as `principal` with its key in `keytab` (`useKeyTab=true keyTab=...
    /// principal=...`); the ticket stays in memory, never in the user's cache.
    pub fn keytab(principal: &str, keytab: impl Into<PathBuf>) -> Self {
        Self::new(zk_proto::sasl::jaas::KerberosLogin {
            principal: Some(principal.to_owned()),
            keytab: Some(keytab.into()),
            use_ticket_cache: false,
            ticket_cache: None,
        })
    }

    /// Uses the tickets of a credential cache (`useTicketCache=true`): `cache` names it
    /// (`FILE:/tmp/krb5cc_1000`), `None` is the default one (`KRB5CCNAME`), as after `kinit`.
    pub fn ticket_cache(cache: Option<&str>) -> Self {
        Self::new(zk_proto::sasl::jaas::KerberosLogin {
            principal: None,
            keytab: None,
            use_ticket_cache: true,
            ticket_cache: cache.map(str::to_owned),
        })
    }

    /// The service part of the server principal (default `zookeeper`).
    pub fn service_name(mut self, service: &str) -> Self {
        self.service = service.to_owned();
        self
    }

    /// Whether the server principal's host is the server's canonical name (default true).
    pub fn canonicalize_hostname(mut self, on: bool) -> Self {
        self.canonicalize = on;
        self
    }

    /// The realm of the server principal (default: the client principal's).
    pub fn server_realm(mut self, realm: &str) -> Self {
        self.server_realm = Some(realm.to_owned());
        self
    }

    /// The server principal for a client whose principal is `client` connected to `host`
    /// (already canonicalised).
    pub fn server_principal(&self, host: &str, client: &str) -> String {
        let realm = self
            .server_realm
            .clone()
            .or_else(|| client.rsplit_once('@').map(|(_, r)| r.to_owned()));
        match realm {
            Some(r) => format!("{}/{host}@{r}", self.service),
            None => format!("{}/{host}", self.service),
        }
    }
}

impl SaslConfig {
    /// The mechanism name, for messages.
    pub fn mechanism(&self) -> &'static str {
        match self {
            SaslConfig::DigestMd5 { .. } => "DIGEST-MD5",
            SaslConfig::Gssapi(_) => "GSSAPI",
        }
    }

    /// Reads `section` (normally `Client`) of the JAAS file at `path`.
    pub fn from_jaas_file(path: &Path, section: &str) -> Result<SaslConfig> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::InvalidConfig(format!("JAAS file {}: {e}", path.display())))?;
        Self::from_jaas(&text, section)
            .map_err(|e| Error::InvalidConfig(format!("JAAS file {}: {e}", path.display())))
    }

    /// Parses `section` of a JAAS configuration text: ZooKeeper's `DigestLoginModule`
    /// (`username`, `password`) or Java's `Krb5LoginModule` (`useKeyTab`, `keyTab`,
    /// `principal`, `useTicketCache`, `ticketCache`); other modules are refused.
    pub fn from_jaas(text: &str, section: &str) -> std::result::Result<SaslConfig, String> {
        let sections = jaas::parse(text)?;
        let entries = sections
            .iter()
            .find(|(name, _)| name == section)
            .map(|(_, e)| e)
            .ok_or_else(|| format!("no {section:?} section"))?;
        if let Some((username, password)) =
            jaas::digest_login(entries).map_err(|e| format!("section {section:?}: {e}"))?
        {
            return Ok(SaslConfig::DigestMd5 { username, password });
        }
        let entry = entries
            .first()
            .ok_or_else(|| format!("section {section:?} has no login module"))?;
        if entry.module == zk_proto::sasl::jaas::KRB5_LOGIN_MODULE {
            let login = zk_proto::sasl::jaas::KerberosLogin::from_options(&entry.options)
                .map_err(|e| format!("section {section:?}: {}: {e}", entry.module))?;
            Ok(SaslConfig::Gssapi(GssapiConfig::new(login)))
        } else {
            Err(format!("unsupported login module {}", entry.module))
        }
    }
}

/// The JAAS file named by [`JAAS_ENV`], or by `-Djava.security.auth.login.config=` in
/// `CLIENT_JVMFLAGS` / `JVMFLAGS` (the variables Apache's `zkCli.sh` passes to the JVM), so a
/// Java client's setup works unchanged. The section is `-Dzookeeper.sasl.clientconfig=` from
/// the same flags, else `Client`.
pub fn jaas_from_env() -> Option<(std::path::PathBuf, String)> {
    jaas_from_vars(|v| std::env::var(v).ok())
}

/// [`jaas_from_env`] over any variable lookup (testable without touching the process).
fn jaas_from_vars(var: impl Fn(&str) -> Option<String>) -> Option<(std::path::PathBuf, String)> {
    let flags: Vec<String> = ["CLIENT_JVMFLAGS", "JVMFLAGS"]
        .iter()
        .filter_map(|v| var(v))
        .collect();
    let prop = |name: &str| {
        let key = format!("-D{name}=");
        flags
            .iter()
            .flat_map(|f| f.split_whitespace())
            .find_map(|w| w.strip_prefix(key.as_str()).map(str::to_owned))
    };
    let section =
        prop("zookeeper.sasl.clientconfig").unwrap_or_else(|| DEFAULT_JAAS_SECTION.to_owned());
    let file = var(JAAS_ENV)
        .filter(|v| !v.is_empty())
        .or_else(|| prop("java.security.auth.login.config"))?;
    Some((file.into(), section))
}

/// Where a SASL exchange is.
#[derive(Debug)]
pub(crate) enum SaslStep {
    /// DIGEST-MD5: the empty first token was sent; the server's challenge is next.
    AwaitChallenge,
    /// DIGEST-MD5: the response was sent; the server's `rspauth` is next, it must equal this.
    AwaitRspAuth(String),
    /// GSSAPI: a token was sent; the exchange answers the server's next one.
    Gss(Box<crate::sasl_gssapi::GssClient>),
}

/// Parses a server token (RFC 2831 section 7.1), bounded.
#[cfg(test)]
pub(crate) fn parse_directives(text: &[u8]) -> std::result::Result<Vec<(String, String)>, String> {
    zk_proto::sasl::parse_directives(text, zk_proto::sasl::MAX_CHALLENGE)
}

/// Answers the server's challenge: `(response token, expected rspauth)`.
pub(crate) fn answer_challenge(
    challenge: &[u8],
    username: &str,
    password: &str,
    cnonce: &str,
) -> std::result::Result<(Vec<u8>, String), String> {
    zk_proto::sasl::answer_challenge(
        &DigestService::CLIENT,
        challenge,
        username,
        password,
        cnonce,
    )
}

pub(crate) use zk_proto::sasl::check_rspauth;

/// A fresh client nonce.
pub(crate) fn cnonce() -> String {
    hex(&rand::random::<[u8; 16]>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_a_zookeeper_challenge() {
        let challenge =
            br#"realm="zk-sasl-md5",nonce="abc\"d",qop="auth",charset=utf-8,algorithm=md5-sess"#;
        let (resp, rspauth) = answer_challenge(challenge, "alice", "secret", "cn").unwrap();
        let d = parse_directives(&resp).unwrap();
        let get = |k: &str| d.iter().find(|(key, _)| key == k).unwrap().1.clone();
        assert_eq!(get("username"), "alice");
        assert_eq!(get("realm"), "zk-sasl-md5");
        assert_eq!(get("nonce"), "abc\"d");
        assert_eq!(get("digest-uri"), "zookeeper/zk-sasl-md5");
        assert_eq!(get("qop"), "auth");
        assert_eq!(get("charset"), "utf-8");
        let (expected, rsp) = digest_response(&DigestInput {
            username: b"alice",
            realm: b"zk-sasl-md5",
            password: b"secret",
            nonce: "abc\"d",
            cnonce: "cn",
            nc: "00000001",
            qop: "auth",
            digest_uri: "zookeeper/zk-sasl-md5",
            authzid: None,
        });
        assert_eq!(get("response"), expected);
        assert_eq!(rspauth, rsp);
        assert!(check_rspauth(format!("rspauth={rsp}").as_bytes(), &rspauth).is_ok());
        assert!(check_rspauth(b"rspauth=00", &rspauth).is_err());
    }

    #[test]
    fn bad_challenges_are_errors_not_panics() {
        for c in [
            &b""[..],
            b"nonce",
            b"nonce=\"x",
            b"realm=x,algorithm=md5-sess",
            b"nonce=x,algorithm=md5",
            b"nonce=x,algorithm=md5-sess,qop=auth-conf",
            b"\xff\xfe",
            &[b'a'; 4096],
        ] {
            assert!(answer_challenge(c, "u", "p", "c").is_err(), "{c:?}");
        }
    }

    #[test]
    fn jaas_file_named_like_java_clients_do() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(jaas_from_vars(env(&[])), None);
        assert_eq!(
            jaas_from_vars(env(&[(
                "CLIENT_JVMFLAGS",
                "-Xmx1g -Djava.security.auth.login.config=/etc/zk/jaas.conf"
            )])),
            Some(("/etc/zk/jaas.conf".into(), "Client".into()))
        );
        assert_eq!(
            jaas_from_vars(env(&[
                ("JVMFLAGS", "-Dzookeeper.sasl.clientconfig=ZkApp"),
                ("ZK_CLIENT_JAAS", "/x.conf")
            ])),
            Some(("/x.conf".into(), "ZkApp".into()))
        );
    }

    #[test]
    fn jaas_client_section() {
        let text = r#"
            // Java's file, unchanged
            Server {
              org.apache.zookeeper.server.auth.DigestLoginModule required
              user_alice="secret";
            };
            /* the client */
            Client {
              org.apache.zookeeper.server.auth.DigestLoginModule required
              username="alice"
              password="s\"3";
            };
        "#;
        assert_eq!(
            SaslConfig::from_jaas(text, "Client").unwrap(),
            SaslConfig::DigestMd5 {
                username: "alice".into(),
                password: "s\"3".into()
            }
        );
        let e = SaslConfig::from_jaas(text, "Other").unwrap_err();
        assert!(e.contains("no \"Other\" section"), "{e}");
        // Kerberos, as Java users write it.
        let krb = r#"Client {
              com.sun.security.auth.module.Krb5LoginModule required
              useKeyTab=true keyTab="/etc/zkcli.keytab" storeKey=true
              useTicketCache=false principal="zkcli@EXAMPLE.COM";
            };"#;
        assert_eq!(
            SaslConfig::from_jaas(krb, "Client").unwrap(),
            SaslConfig::Gssapi(GssapiConfig::keytab(
                "zkcli@EXAMPLE.COM",
                "/etc/zkcli.keytab"
            ))
        );
        // A module that could only prompt for a password is refused, saying why.
        let e = SaslConfig::from_jaas(
            "Client { com.sun.security.auth.module.Krb5LoginModule required; };",
            "Client",
        )
        .unwrap_err();
        assert!(e.contains("prompt"), "{e}");
        let e = SaslConfig::from_jaas(
            "Client { com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true; };",
            "Client",
        )
        .unwrap_err();
        assert!(e.contains("keyTab"), "{e}");
        assert!(SaslConfig::from_jaas("Client { x", "Client").is_err());
        assert!(SaslConfig::from_jaas("Client { a b c=; };", "Client").is_err());
    }
}
