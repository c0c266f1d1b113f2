//! SASL for ZooKeeper: the DIGEST-MD5 client (RFC 2831, `qop=auth`) as Java's client runs
//! it against a server with `SASLAuthenticationProvider`, and the JAAS `Client` section
//! that configures it.
//!
//! The exchange (opcode `sasl`, normal xids, right after the ConnectResponse): the client
//! sends an empty token, the server answers with a challenge (realm, nonce), the client
//! answers with a digest response, the server answers with `rspauth`, which the client
//! checks. The session's id is then `sasl:<username>`.

use std::fmt::Write as _;
use std::path::Path;

use md5::{Digest, Md5};

use crate::error::{Error, Result};

/// SASL protocol name Java's client uses (the `digest-uri` is `zookeeper/zk-sasl-md5`).
pub const SERVICE: &str = "zookeeper";
/// SASL server name Java's client uses for DIGEST-MD5.
pub const DIGEST_SERVER_NAME: &str = "zk-sasl-md5";
/// JAAS section Java's client reads unless `zookeeper.sasl.clientconfig` says otherwise.
pub const DEFAULT_JAAS_SECTION: &str = "Client";
/// Environment variable naming a JAAS file (this crate's; Apache names the file with the
/// JVM property `java.security.auth.login.config` only).
pub const JAAS_ENV: &str = "ZK_CLIENT_JAAS";

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
}

impl std::fmt::Debug for SaslConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SaslConfig::DigestMd5 { username, .. } => f
                .debug_struct("DigestMd5")
                .field("username", username)
                .finish_non_exhaustive(),
        }
    }
}

impl SaslConfig {
    /// The mechanism name, for messages.
    pub fn mechanism(&self) -> &'static str {
        match self {
            SaslConfig::DigestMd5 { .. } => "DIGEST-MD5",
        }
    }

    /// Reads `section` (normally `Client`) of the JAAS file at `path`.
    pub fn from_jaas_file(path: &Path, section: &str) -> Result<SaslConfig> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::InvalidConfig(format!("JAAS file {}: {e}", path.display())))?;
        Self::from_jaas(&text, section)
            .map_err(|e| Error::InvalidConfig(format!("JAAS file {}: {e}", path.display())))
    }

    /// Parses `section` of a JAAS configuration text. Only ZooKeeper's
    /// `DigestLoginModule` (with `username` and `password` options) is supported;
    /// `Krb5LoginModule` (GSSAPI) is rejected with a clear error.
    pub fn from_jaas(text: &str, section: &str) -> std::result::Result<SaslConfig, String> {
        let sections = jaas::parse(text)?;
        let entries = sections
            .iter()
            .find(|(name, _)| name == section)
            .map(|(_, e)| e)
            .ok_or_else(|| format!("no {section:?} section"))?;
        let entry = entries
            .first()
            .ok_or_else(|| format!("section {section:?} has no login module"))?;
        let opt = |k: &str| {
            entry
                .options
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        if entry.module.ends_with("DigestLoginModule") {
            let username =
                opt("username").ok_or_else(|| format!("{}: no username option", entry.module))?;
            let password =
                opt("password").ok_or_else(|| format!("{}: no password option", entry.module))?;
            Ok(SaslConfig::DigestMd5 { username, password })
        } else if entry.module.ends_with("Krb5LoginModule") {
            Err(format!(
                "{}: GSSAPI (Kerberos) is not supported by zk-client yet",
                entry.module
            ))
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

/// A small JAAS configuration parser: `Name { module flag key="value" ...; ... };`,
/// with `//` and `/* */` comments.
mod jaas {
    /// One login module line.
    pub struct Entry {
        pub module: String,
        pub options: Vec<(String, String)>,
    }

    #[derive(Debug, PartialEq)]
    enum Tok {
        Word(String),
        Quoted(String),
        Punct(char),
    }

    fn lex(text: &str) -> Result<Vec<Tok>, String> {
        let mut out = Vec::new();
        let mut it = text.chars().peekable();
        while let Some(c) = it.next() {
            match c {
                c if c.is_whitespace() => {}
                '/' if it.peek() == Some(&'/') => {
                    for c in it.by_ref() {
                        if c == '\n' {
                            break;
                        }
                    }
                }
                '/' if it.peek() == Some(&'*') => {
                    it.next();
                    let mut prev = ' ';
                    loop {
                        match it.next() {
                            Some('/') if prev == '*' => break,
                            Some(c) => prev = c,
                            None => return Err("unterminated comment".into()),
                        }
                    }
                }
                '"' => {
                    let mut s = String::new();
                    loop {
                        match it.next() {
                            Some('"') => break,
                            Some('\\') => match it.next() {
                                Some(c) => s.push(c),
                                None => return Err("unterminated string".into()),
                            },
                            Some(c) => s.push(c),
                            None => return Err("unterminated string".into()),
                        }
                    }
                    out.push(Tok::Quoted(s));
                }
                '{' | '}' | ';' | '=' => out.push(Tok::Punct(c)),
                _ => {
                    let mut s = String::from(c);
                    while let Some(&n) = it.peek() {
                        if n.is_whitespace() || "{};=\"".contains(n) {
                            break;
                        }
                        s.push(n);
                        it.next();
                    }
                    out.push(Tok::Word(s));
                }
            }
        }
        Ok(out)
    }

    /// Sections in file order, each with its login modules.
    pub fn parse(text: &str) -> Result<Vec<(String, Vec<Entry>)>, String> {
        let toks = lex(text)?;
        let mut it = toks.into_iter().peekable();
        let mut sections = Vec::new();
        let word = |t: Option<Tok>, what: &str| match t {
            Some(Tok::Word(w)) | Some(Tok::Quoted(w)) => Ok(w),
            other => Err(format!("expected {what}, found {other:?}")),
        };
        while it.peek().is_some() {
            let name = word(it.next(), "a section name")?;
            if it.next() != Some(Tok::Punct('{')) {
                return Err(format!("expected '{{' after {name:?}"));
            }
            let mut entries = Vec::new();
            loop {
                if it.peek() == Some(&Tok::Punct('}')) {
                    it.next();
                    break;
                }
                let module = word(it.next(), "a login module class")?;
                let _flag = word(it.next(), "a control flag (required, optional...)")?;
                let mut options = Vec::new();
                loop {
                    match it.next() {
                        Some(Tok::Punct(';')) => break,
                        Some(Tok::Word(k)) => {
                            if it.next() != Some(Tok::Punct('=')) {
                                return Err(format!("expected '=' after option {k:?}"));
                            }
                            let v = word(it.next(), "an option value")?;
                            options.push((k, v));
                        }
                        other => {
                            return Err(format!("in {module}: unexpected {other:?}"));
                        }
                    }
                }
                entries.push(Entry { module, options });
            }
            if it.peek() == Some(&Tok::Punct(';')) {
                it.next();
            }
            sections.push((name, entries));
        }
        Ok(sections)
    }
}

/// Where a DIGEST-MD5 exchange is.
#[derive(Debug)]
pub(crate) enum DigestStep {
    /// The empty first token was sent; the server's challenge is next.
    AwaitChallenge,
    /// The response was sent; the server's `rspauth` is next, it must equal this.
    AwaitRspAuth(String),
}

/// Largest challenge accepted (RFC 2831 caps it at 2048 bytes).
const MAX_CHALLENGE: usize = 2048;

/// Parses `key=value, key="quoted, value", ...` (RFC 2831 section 7.1).
pub(crate) fn parse_directives(text: &[u8]) -> std::result::Result<Vec<(String, String)>, String> {
    if text.len() > MAX_CHALLENGE {
        return Err(format!("challenge of {} bytes is too long", text.len()));
    }
    let text = std::str::from_utf8(text).map_err(|_| "challenge is not UTF-8".to_owned())?;
    let mut out = Vec::new();
    let mut it = text.chars().peekable();
    loop {
        while it.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            it.next();
        }
        if it.peek().is_none() {
            return Ok(out);
        }
        let mut key = String::new();
        while let Some(&c) = it.peek() {
            if c == '=' || c == ',' || c.is_whitespace() {
                break;
            }
            key.push(c);
            it.next();
        }
        while it.peek().is_some_and(|c| c.is_whitespace()) {
            it.next();
        }
        if it.next() != Some('=') {
            return Err(format!("directive {key:?} has no value"));
        }
        while it.peek().is_some_and(|c| c.is_whitespace()) {
            it.next();
        }
        let mut value = String::new();
        if it.peek() == Some(&'"') {
            it.next();
            loop {
                match it.next() {
                    Some('"') => break,
                    Some('\\') => match it.next() {
                        Some(c) => value.push(c),
                        None => return Err("unterminated quoted value".into()),
                    },
                    Some(c) => value.push(c),
                    None => return Err("unterminated quoted value".into()),
                }
            }
        } else {
            while let Some(&c) = it.peek() {
                if c == ',' || c.is_whitespace() {
                    break;
                }
                value.push(c);
                it.next();
            }
        }
        out.push((key.to_ascii_lowercase(), value));
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn md5(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = Md5::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// Everything the response and `rspauth` depend on.
pub(crate) struct DigestInput<'a> {
    pub username: &'a [u8],
    pub realm: &'a [u8],
    pub password: &'a [u8],
    pub nonce: &'a str,
    pub cnonce: &'a str,
    pub nc: &'a str,
    pub qop: &'a str,
    pub digest_uri: &'a str,
}

/// `(response, rspauth)` of RFC 2831 section 2.1.2.1 (md5-sess, no authzid).
pub(crate) fn digest_response(i: &DigestInput<'_>) -> (String, String) {
    let secret = md5(&[i.username, b":", i.realm, b":", i.password]);
    let a1 = md5(&[&secret, b":", i.nonce.as_bytes(), b":", i.cnonce.as_bytes()]);
    let ha1 = hex(&a1);
    let kd = |a2: &[u8]| {
        let ha2 = hex(&md5(&[a2]));
        hex(&md5(&[
            ha1.as_bytes(),
            b":",
            i.nonce.as_bytes(),
            b":",
            i.nc.as_bytes(),
            b":",
            i.cnonce.as_bytes(),
            b":",
            i.qop.as_bytes(),
            b":",
            ha2.as_bytes(),
        ]))
    };
    let response = kd(format!("AUTHENTICATE:{}", i.digest_uri).as_bytes());
    let rspauth = kd(format!(":{}", i.digest_uri).as_bytes());
    (response, rspauth)
}

/// Text as the server expects it: UTF-8 when it offered `charset=utf-8`, else ISO 8859-1.
fn encode(s: &str, utf8: bool) -> std::result::Result<Vec<u8>, String> {
    if utf8 {
        return Ok(s.as_bytes().to_vec());
    }
    s.chars()
        .map(|c| u8::try_from(u32::from(c)).ok())
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(|| "the server did not offer UTF-8 and a credential is not Latin-1".into())
}

fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Answers the server's challenge: `(response token, expected rspauth)`.
pub(crate) fn answer_challenge(
    challenge: &[u8],
    username: &str,
    password: &str,
    cnonce: &str,
) -> std::result::Result<(Vec<u8>, String), String> {
    let d = parse_directives(challenge)?;
    let get = |k: &str| d.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    let nonce = get("nonce").ok_or("challenge has no nonce")?;
    match get("algorithm") {
        Some(a) if a.eq_ignore_ascii_case("md5-sess") => {}
        other => return Err(format!("challenge algorithm is {other:?}, not md5-sess")),
    }
    let qops: Vec<&str> = d
        .iter()
        .filter(|(k, _)| k == "qop")
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .collect();
    if !qops.is_empty() && !qops.contains(&"auth") {
        return Err(format!("server offers qop {qops:?} but not auth"));
    }
    let realm = get("realm").unwrap_or("");
    let utf8 = get("charset").is_some_and(|c| c.eq_ignore_ascii_case("utf-8"));
    let digest_uri = format!("{SERVICE}/{DIGEST_SERVER_NAME}");
    let (user_b, realm_b, pass_b) = (
        encode(username, utf8)?,
        encode(realm, utf8)?,
        encode(password, utf8)?,
    );
    let nc = "00000001";
    let (response, rspauth) = digest_response(&DigestInput {
        username: &user_b,
        realm: &realm_b,
        password: &pass_b,
        nonce,
        cnonce,
        nc,
        qop: "auth",
        digest_uri: &digest_uri,
    });
    let mut out = format!("username=\"{}\"", quote(username));
    if get("realm").is_some() {
        let _ = write!(out, ",realm=\"{}\"", quote(realm));
    }
    let _ = write!(
        out,
        ",nonce=\"{}\",nc={nc},cnonce=\"{}\",digest-uri=\"{}\",maxbuf=65536,response={response},qop=auth",
        quote(nonce),
        quote(cnonce),
        quote(&digest_uri)
    );
    if utf8 {
        out.push_str(",charset=utf-8");
    }
    Ok((out.into_bytes(), rspauth))
}

/// Checks the server's final `rspauth=...` token.
pub(crate) fn check_rspauth(token: &[u8], expected: &str) -> std::result::Result<(), String> {
    let d = parse_directives(token)?;
    match d.iter().find(|(k, _)| k == "rspauth") {
        Some((_, v)) if v.eq_ignore_ascii_case(expected) => Ok(()),
        Some(_) => Err("the server's rspauth does not match: it does not know our password".into()),
        None => Err("the server's last token has no rspauth".into()),
    }
}

/// A fresh client nonce.
pub(crate) fn cnonce() -> String {
    hex(&rand::random::<[u8; 16]>())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2831 section 4, example 1 (IMAP): the published response and rspauth.
    #[test]
    fn rfc2831_example_response_and_rspauth() {
        let (response, rspauth) = digest_response(&DigestInput {
            username: b"chris",
            realm: b"elwood.innosoft.com",
            password: b"secret",
            nonce: "OA6MG9tEQGm2hh",
            cnonce: "OA6MHXh6VqTrRk",
            nc: "00000001",
            qop: "auth",
            digest_uri: "imap/elwood.innosoft.com",
        });
        assert_eq!(response, "d388dad90d4bbd760a152321f2143af7");
        assert_eq!(rspauth, "ea40f60335c427b5527b84dbabcdfffd");
    }

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
        let krb =
            "Client { com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true; };";
        let e = SaslConfig::from_jaas(krb, "Client").unwrap_err();
        assert!(e.contains("GSSAPI"), "{e}");
        assert!(SaslConfig::from_jaas("Client { x", "Client").is_err());
        assert!(SaslConfig::from_jaas("Client { a b c=; };", "Client").is_err());
    }
}
