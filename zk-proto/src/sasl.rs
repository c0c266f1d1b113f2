//! Pure pieces of ZooKeeper's SASL DIGEST-MD5 (RFC 2831, `qop=auth`, `md5-sess`) shared by
//! the client and the server: the directive syntax, the digest computations and the JAAS
//! configuration syntax both sides read. No I/O, no randomness; every parser is bounded and
//! returns errors, never panics.

use std::fmt::Write as _;

use md5::{Digest, Md5};

/// SASL protocol (service) name of ZooKeeper.
pub const SERVICE: &str = "zookeeper";
/// Server name (and realm) Apache's server and Java's client use for DIGEST-MD5: the
/// `digest-uri` is `zookeeper/zk-sasl-md5`.
pub const DIGEST_SERVER_NAME: &str = "zk-sasl-md5";

/// Which DIGEST-MD5 service an exchange is for: the protocol and server name fix the
/// realm and `digest-uri`, so a response made for one service is refused by the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigestService {
    /// SASL protocol name (`zookeeper`, `zookeeper-quorum`).
    pub protocol: &'static str,
    /// Server name, also the realm (`zk-sasl-md5`, `zk-quorum-sasl-md5`).
    pub server_name: &'static str,
}

impl DigestService {
    /// Client logins on the client port (`zookeeper/zk-sasl-md5`).
    pub const CLIENT: DigestService = DigestService {
        protocol: SERVICE,
        server_name: DIGEST_SERVER_NAME,
    };
    /// Member logins between ensemble members, Apache's `SaslQuorumAuthLearner` /
    /// `SaslQuorumAuthServer` (`zookeeper-quorum/zk-quorum-sasl-md5`).
    pub const QUORUM: DigestService = DigestService {
        protocol: "zookeeper-quorum",
        server_name: "zk-quorum-sasl-md5",
    };

    /// `protocol/server_name`.
    pub fn digest_uri(&self) -> String {
        format!("{}/{}", self.protocol, self.server_name)
    }
}

/// Largest server token the client side accepts (RFC 2831 caps a challenge at 2048 bytes).
pub const MAX_CHALLENGE: usize = 2048;

/// Text as the server expects it: UTF-8 when it offered `charset=utf-8`, else ISO 8859-1.
fn encode_charset(s: &str, utf8: bool) -> Result<Vec<u8>, String> {
    if utf8 {
        return Ok(s.as_bytes().to_vec());
    }
    s.chars()
        .map(|c| u8::try_from(u32::from(c)).ok())
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(|| "the server did not offer UTF-8 and a credential is not Latin-1".into())
}

/// The client side: answers a server's challenge for `service` with
/// `(response token, expected rspauth)`. `cnonce` must come from a cryptographic source.
pub fn answer_challenge(
    service: &DigestService,
    challenge: &[u8],
    username: &str,
    password: &str,
    cnonce: &str,
) -> Result<(Vec<u8>, String), String> {
    let d = parse_directives(challenge, MAX_CHALLENGE)?;
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
    let digest_uri = service.digest_uri();
    let (user_b, realm_b, pass_b) = (
        encode_charset(username, utf8)?,
        encode_charset(realm, utf8)?,
        encode_charset(password, utf8)?,
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
        authzid: None,
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

/// The client side: checks the server's final `rspauth=...` token.
pub fn check_rspauth(token: &[u8], expected: &str) -> Result<(), String> {
    let d = parse_directives(token, MAX_CHALLENGE)?;
    match d.iter().find(|(k, _)| k == "rspauth") {
        Some((_, v))
            if constant_time_eq(v.to_ascii_lowercase().as_bytes(), expected.as_bytes()) =>
        {
            Ok(())
        }
        Some(_) => Err("the server's rspauth does not match: it does not know our password".into()),
        None => Err("the server's last token has no rspauth".into()),
    }
}

/// Parses `key=value, key="quoted, value", ...` (RFC 2831 section 7.1) of at most
/// `max_len` bytes; keys come out lower-cased.
pub fn parse_directives(text: &[u8], max_len: usize) -> Result<Vec<(String, String)>, String> {
    if text.len() > max_len {
        return Err(format!(
            "token of {} bytes is longer than {max_len}",
            text.len()
        ));
    }
    let text = std::str::from_utf8(text).map_err(|_| "token is not UTF-8".to_owned())?;
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

/// Quotes a directive value (backslash before `"` and `\`).
pub fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
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
pub struct DigestInput<'a> {
    /// User name, in the negotiated charset.
    pub username: &'a [u8],
    /// Realm, in the negotiated charset.
    pub realm: &'a [u8],
    /// Password, in the negotiated charset.
    pub password: &'a [u8],
    /// Server nonce.
    pub nonce: &'a str,
    /// Client nonce.
    pub cnonce: &'a str,
    /// Nonce count (`00000001`).
    pub nc: &'a str,
    /// Quality of protection (`auth`).
    pub qop: &'a str,
    /// `zookeeper/zk-sasl-md5`.
    pub digest_uri: &'a str,
    /// Authorization id, when the client sent one (it then enters A1).
    pub authzid: Option<&'a [u8]>,
}

/// `(response, rspauth)` of RFC 2831 section 2.1.2.1 (md5-sess).
pub fn digest_response(i: &DigestInput<'_>) -> (String, String) {
    let secret = md5(&[i.username, b":", i.realm, b":", i.password]);
    let a1 = match i.authzid {
        Some(z) => md5(&[
            &secret,
            b":",
            i.nonce.as_bytes(),
            b":",
            i.cnonce.as_bytes(),
            b":",
            z,
        ]),
        None => md5(&[&secret, b":", i.nonce.as_bytes(), b":", i.cnonce.as_bytes()]),
    };
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

/// Compares two strings in time independent of where they differ (digests are secrets'
/// images: an early-exit comparison would tell a peer how many leading characters it got
/// right).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A small JAAS configuration parser: `Name { module flag key="value" ...; ... };`,
/// with `//` and `/* */` comments.
pub mod jaas {
    /// One login module line.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Entry {
        /// Login module class.
        pub module: String,
        /// Control flag (`required`, `optional`, ...).
        pub flag: String,
        /// Options in file order.
        pub options: Vec<(String, String)>,
    }

    impl Entry {
        /// The value of option `key`.
        pub fn option(&self, key: &str) -> Option<&str> {
            self.options
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        }
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
                let flag = word(it.next(), "a control flag (required, optional...)")?;
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
                entries.push(Entry {
                    module,
                    flag,
                    options,
                });
            }
            if it.peek() == Some(&Tok::Punct(';')) {
                it.next();
            }
            sections.push((name, entries));
        }
        Ok(sections)
    }

    /// The `username` and `password` options of a section whose first login module is
    /// ZooKeeper's `DigestLoginModule` (a DIGEST-MD5 client's credentials, as Java's
    /// client and quorum learner read them); `Ok(None)` when that module is another one.
    pub fn digest_login(entries: &[Entry]) -> Result<Option<(String, String)>, String> {
        let entry = entries.first().ok_or("the section has no login module")?;
        if !entry.module.ends_with("DigestLoginModule") {
            return Ok(None);
        }
        let opt = |k: &str| {
            entry
                .option(k)
                .map(str::to_owned)
                .ok_or_else(|| format!("{}: no {k} option", entry.module))
        };
        Ok(Some((opt("username")?, opt("password")?)))
    }

    /// Where a client's Kerberos credentials come from: the options of a JAAS
    /// `com.sun.security.auth.module.Krb5LoginModule` entry, or the builder's equivalents.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct KerberosLogin {
        /// `principal`: who logs in (`alice@REALM`, `zkcli/host@REALM`); `None`: the
        /// ticket cache's principal, or the keytab's first entry.
        pub principal: Option<String>,
        /// `useKeyTab=true` with `keyTab=FILE`: get a ticket with this keytab's key.
        pub keytab: Option<std::path::PathBuf>,
        /// `useTicketCache=true`: use the tickets of a cache (tried before the keytab).
        pub use_ticket_cache: bool,
        /// `ticketCache=NAME`: that cache instead of the default (`KRB5CCNAME`).
        pub ticket_cache: Option<String>,
    }

    /// Options of Java's `Krb5LoginModule` this crate acts on; the others (`storeKey`,
    /// `doNotPrompt`, `debug`, `refreshKrb5Config`, ...) change nothing here.
    pub const KRB5_LOGIN_MODULE: &str = "com.sun.security.auth.module.Krb5LoginModule";

    impl KerberosLogin {
        /// Reads a `Krb5LoginModule` entry's options. A module that could only prompt for a
        /// password (neither `useKeyTab` nor `useTicketCache`) is an error.
        pub fn from_options(options: &[(String, String)]) -> Result<KerberosLogin, String> {
            let get = |k: &str| {
                options
                    .iter()
                    .find(|(key, _)| key == k)
                    .map(|(_, v)| v.as_str())
            };
            let flag = |k: &str| get(k).is_some_and(|v| v.eq_ignore_ascii_case("true"));
            let keytab = if flag("useKeyTab") {
                let path =
                    get("keyTab").ok_or("useKeyTab=true without keyTab: name the keytab file")?;
                Some(std::path::PathBuf::from(
                    path.strip_prefix("FILE:").unwrap_or(path),
                ))
            } else {
                None
            };
            let login = KerberosLogin {
                principal: get("principal").map(str::to_owned),
                keytab,
                use_ticket_cache: flag("useTicketCache"),
                ticket_cache: get("ticketCache").map(str::to_owned),
            };
            if login.keytab.is_none() && !login.use_ticket_cache {
                return Err(
                    "neither useKeyTab=true nor useTicketCache=true: Krb5LoginModule would \
                     prompt for a password, which a non-interactive login cannot do"
                        .into(),
                );
            }
            Ok(login)
        }
    }

    /// The login modules of section `name`, if the text has it.
    pub fn section(text: &str, name: &str) -> Result<Option<Vec<Entry>>, String> {
        Ok(parse(text)?
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, e)| e))
    }
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
            authzid: None,
        });
        assert_eq!(response, "d388dad90d4bbd760a152321f2143af7");
        assert_eq!(rspauth, "ea40f60335c427b5527b84dbabcdfffd");
    }

    #[test]
    fn directives_are_bounded_and_never_panic() {
        let d = parse_directives(br#"a=1, B="x,\"y", c = z"#, 100).unwrap();
        assert_eq!(
            d,
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x,\"y".into()),
                ("c".into(), "z".into())
            ]
        );
        assert!(parse_directives(&[b'a'; 101], 100).is_err());
        for bad in [&b"nonce"[..], b"nonce=\"x", b"\xff\xfe", b"a=\"\\"] {
            assert!(parse_directives(bad, 100).is_err(), "{bad:?}");
        }
        assert!(constant_time_eq(b"ab", b"ab"));
        assert!(!constant_time_eq(b"ab", b"ac"));
        assert!(!constant_time_eq(b"ab", b"abc"));
    }

    #[test]
    fn krb5_login_module_options() {
        use jaas::KerberosLogin;
        let opts = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let l = KerberosLogin::from_options(&opts(&[
            ("useKeyTab", "true"),
            ("keyTab", "/etc/zk.keytab"),
            ("storeKey", "true"),
            ("principal", "zkcli@EXAMPLE.COM"),
        ]))
        .unwrap();
        assert_eq!(l.keytab, Some("/etc/zk.keytab".into()));
        assert_eq!(l.principal.as_deref(), Some("zkcli@EXAMPLE.COM"));
        assert!(!l.use_ticket_cache);
        let l = KerberosLogin::from_options(&opts(&[
            ("useTicketCache", "TRUE"),
            ("ticketCache", "/tmp/cc"),
        ]))
        .unwrap();
        assert!(l.use_ticket_cache && l.keytab.is_none());
        let e = KerberosLogin::from_options(&opts(&[("useKeyTab", "true")])).unwrap_err();
        assert!(e.contains("keyTab"), "{e}");
        let e = KerberosLogin::from_options(&opts(&[("principal", "a@B")])).unwrap_err();
        assert!(e.contains("prompt"), "{e}");
    }

    #[test]
    fn jaas_sections() {
        let text = r#"
            // comment
            Server {
              org.apache.zookeeper.server.auth.DigestLoginModule required
              user_alice="secret" user_bob="b\"c";
            };
            /* block */ Client { m optional a=b; };
        "#;
        let s = jaas::section(text, "Server").unwrap().unwrap();
        assert_eq!(s[0].flag, "required");
        assert_eq!(s[0].option("user_bob"), Some("b\"c"));
        assert_eq!(jaas::section(text, "Nope").unwrap(), None);
        assert!(jaas::parse("Client { x").is_err());
        assert!(jaas::parse("Client { a b c=; };").is_err());
        assert!(jaas::parse("/* open").is_err());
    }
}
