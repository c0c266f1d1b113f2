//! The `sasl` scheme: DIGEST-MD5 and Kerberos (GSSAPI) logins on the client port, as
//! Apache's server runs them.
//!
//! Apache's server speaks one mechanism: GSSAPI when its JAAS section logs in with
//! `Krb5LoginModule` (see [`super::sasl_kerberos`] for the ids), DIGEST-MD5 otherwise.
//!
//! Apache creates one `SaslServer("DIGEST-MD5", "zookeeper", "zk-sasl-md5")` per connection
//! when the JAAS section `Server` (or `zookeeper.sasl.serverconfig`) exists; its users are
//! the `user_<name>="<password>"` options of that section (`SaslServerCallbackHandler`). The
//! exchange (opcode `sasl`): the client sends an empty token, the server answers with a
//! challenge, the client with a digest response, the server with `rspauth`, and the
//! connection then carries `sasl:<name>`. Any failure ends the exchange for good (Java's
//! `DigestMD5Server` aborts), so the connection is closed by the caller.

use std::collections::HashMap;
use std::sync::Arc;

use zk_proto::sasl::{
    constant_time_eq, digest_response, jaas, parse_directives, DigestInput, DigestService,
};

use super::sasl_kerberos::{KerberosServer, KerberosSettings};

/// Largest client token Java's `DigestMD5Server` evaluates (`MAX_RESPONSE_LENGTH`).
pub const MAX_TOKEN: usize = 4096;
/// JAAS section Apache's server reads unless `zookeeper.sasl.serverconfig` names another.
pub const DEFAULT_SECTION: &str = "Server";
/// The only login module whose users we can serve: DIGEST-MD5 with passwords in the file.
const DIGEST_LOGIN_MODULE: &str = "org.apache.zookeeper.server.auth.DigestLoginModule";

/// Who may log in through a JAAS `Server` section: its DIGEST-MD5 users, or its Kerberos
/// keytab. `Debug` never shows passwords.
#[derive(Clone, PartialEq, Eq)]
pub struct SaslUsers {
    passwords: Arc<HashMap<String, String>>,
    kerberos: Option<KerberosServer>,
}

impl std::fmt::Debug for SaslUsers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&String> = self.passwords.keys().collect();
        names.sort();
        f.debug_struct("SaslUsers")
            .field("users", &names)
            .field("kerberos", &self.kerberos)
            .finish_non_exhaustive()
    }
}

impl SaslUsers {
    /// Users from the login modules of a JAAS section: `DigestLoginModule` users, and with
    /// `kerberos` (the name-rule settings; `None` where Kerberos is not served) a
    /// `Krb5LoginModule` keytab, whose key is checked now. Other modules are refused with the
    /// reason, as are DIGEST-MD5 user names Apache would rewrite through Kerberos name rules
    /// (`/` or `@`). `super_password` is `zookeeper.SASLAuthenticationProvider.superPassword`,
    /// which Apache uses for a configured user `super`.
    pub fn from_section(
        entries: &[jaas::Entry],
        super_password: Option<&str>,
        kerberos: Option<&KerberosSettings>,
    ) -> Result<SaslUsers, String> {
        let mut passwords = HashMap::new();
        let mut krb = None;
        for e in entries {
            if e.module.ends_with("Krb5LoginModule") {
                let Some(settings) = kerberos else {
                    return Err(format!(
                        "{}: Kerberos (GSSAPI) logins are not provided here by zk-server; only \
                         {} (DIGEST-MD5) is",
                        e.module, DIGEST_LOGIN_MODULE
                    ));
                };
                if e.module != jaas::KRB5_LOGIN_MODULE {
                    return Err(format!(
                        "login module {} is not provided by zk-server; Kerberos logins use {}",
                        e.module,
                        jaas::KRB5_LOGIN_MODULE
                    ));
                }
                krb = Some(
                    KerberosServer::from_options(&e.options, settings)
                        .map_err(|err| format!("{}: {err}", e.module))?,
                );
                continue;
            }
            if e.module != DIGEST_LOGIN_MODULE {
                return Err(format!(
                    "login module {} is not provided by zk-server; only {} (DIGEST-MD5) is",
                    e.module, DIGEST_LOGIN_MODULE
                ));
            }
            for (k, v) in &e.options {
                if let Some(name) = k.strip_prefix("user_") {
                    if name.contains(['/', '@']) {
                        return Err(format!(
                            "user {name:?}: names with '/' or '@' go through Kerberos name \
                             rules in Apache, which zk-server does not implement"
                        ));
                    }
                    passwords.insert(name.to_owned(), v.clone());
                }
            }
        }
        if let (Some(p), Some(slot)) = (super_password, passwords.get_mut("super")) {
            *slot = p.to_owned();
        }
        Ok(SaslUsers {
            passwords: Arc::new(passwords),
            kerberos: krb,
        })
    }

    /// The Kerberos side, when the section logs in with a keytab.
    pub fn kerberos(&self) -> Option<&KerberosServer> {
        self.kerberos.as_ref()
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.passwords.len()
    }

    /// Whether no one can log in (no DIGEST-MD5 users and no keytab).
    pub fn is_empty(&self) -> bool {
        self.passwords.is_empty() && self.kerberos.is_none()
    }
}

/// Where one connection's DIGEST-MD5 exchange is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum DigestServer {
    /// Nothing received yet.
    #[default]
    Start,
    /// The challenge carrying this nonce was sent.
    Challenged {
        /// Our nonce.
        nonce: String,
    },
    /// Authenticated; a further token is an error.
    Done,
    /// Failed; a further token is an error.
    Failed,
}

/// One step's result.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Send this token and wait for the next.
    Continue(Vec<u8>),
    /// Send this token (DIGEST-MD5's `rspauth`; GSSAPI's last answer has none); the
    /// client is `user`.
    Complete {
        /// Final token.
        token: Option<Vec<u8>>,
        /// Authenticated user name (the `sasl` id).
        user: String,
        /// The mechanism, for logs.
        mechanism: &'static str,
    },
}

/// A failed step: the reason (for logs; holds no secret) and the user name it claimed.
#[derive(Debug, PartialEq, Eq)]
pub struct Failure {
    /// Why.
    pub reason: String,
    /// The `username` of the response, when it got that far.
    pub user: Option<String>,
}

impl DigestServer {
    /// Evaluates a client token. `nonce` makes a fresh server nonce (only called for the
    /// first token); it must come from a cryptographic source.
    pub fn evaluate(
        &mut self,
        token: &[u8],
        users: &SaslUsers,
        nonce: impl FnOnce() -> String,
    ) -> Result<Step, Failure> {
        self.evaluate_for(&DigestService::CLIENT, token, users, nonce)
    }

    /// [`DigestServer::evaluate`] for another service (the quorum's
    /// `zookeeper-quorum/zk-quorum-sasl-md5`): its realm and `digest-uri` are expected.
    pub fn evaluate_for(
        &mut self,
        service: &DigestService,
        token: &[u8],
        users: &SaslUsers,
        nonce: impl FnOnce() -> String,
    ) -> Result<Step, Failure> {
        let state = std::mem::replace(self, DigestServer::Failed);
        let fail = |reason: String| Failure { reason, user: None };
        if token.len() > MAX_TOKEN {
            return Err(fail(format!(
                "token of {} bytes is longer than {MAX_TOKEN}",
                token.len()
            )));
        }
        match state {
            // Java 17's DigestMD5Server ignores an initial response, and its challenge
            // leaves qop out (auth is the default); both checked against Apache.
            DigestServer::Start => {
                let nonce = nonce();
                let challenge = format!(
                    "realm=\"{}\",nonce=\"{nonce}\",charset=utf-8,algorithm=md5-sess",
                    service.server_name
                );
                *self = DigestServer::Challenged { nonce };
                Ok(Step::Continue(challenge.into_bytes()))
            }
            DigestServer::Challenged { nonce } => {
                let (user, rspauth) = check_response(service, token, &nonce, users)?;
                *self = DigestServer::Done;
                Ok(Step::Complete {
                    token: Some(format!("rspauth={rspauth}").into_bytes()),
                    user,
                    mechanism: "DIGEST-MD5",
                })
            }
            DigestServer::Done | DigestServer::Failed => Err(fail(
                "a SASL token after the exchange ended (server at illegal state)".into(),
            )),
        }
    }
}

/// One connection's SASL exchange, whichever mechanism the server speaks.
#[derive(Debug, Default)]
pub enum SaslServer {
    /// Nothing received yet.
    #[default]
    Start,
    /// A DIGEST-MD5 exchange.
    Digest(DigestServer),
    /// A Kerberos exchange.
    #[cfg(feature = "kerberos")]
    Gss(Box<zk_proto::gssapi::SaslServer>),
    /// Failed (or a token came without a SASL server); further tokens are errors.
    Failed,
}

impl SaslServer {
    /// Evaluates a client token: GSSAPI when `users` has a keytab, else DIGEST-MD5.
    /// `nonce` makes a DIGEST-MD5 server nonce (cryptographic source).
    pub fn evaluate(
        &mut self,
        token: &[u8],
        users: &SaslUsers,
        nonce: impl FnOnce() -> String,
    ) -> Result<Step, Failure> {
        let state = std::mem::replace(self, SaslServer::Failed);
        let state = match state {
            SaslServer::Start => match &users.kerberos {
                #[cfg(feature = "kerberos")]
                Some(k) => SaslServer::Gss(Box::new(k.exchange())),
                #[cfg(not(feature = "kerberos"))]
                Some(_) => SaslServer::Failed,
                None => SaslServer::Digest(DigestServer::Start),
            },
            other => other,
        };
        match state {
            SaslServer::Digest(mut d) => {
                let r = d.evaluate(token, users, nonce);
                if r.is_ok() {
                    *self = SaslServer::Digest(d);
                }
                r
            }
            #[cfg(feature = "kerberos")]
            SaslServer::Gss(mut g) => {
                let ids = users.kerberos.as_ref().map(|k| &k.ids);
                match (g.step(token), ids) {
                    (Ok(zk_proto::gssapi::ServerStep::Continue(t)), _) => {
                        *self = SaslServer::Gss(g);
                        Ok(Step::Continue(t))
                    }
                    (
                        Ok(zk_proto::gssapi::ServerStep::Complete { principal, authzid }),
                        Some(ids),
                    ) => {
                        let user = ids.id_of(&principal);
                        if authzid != principal {
                            tracing::info!(
                                "Kerberos principal {principal:?} asked for authorization id \
                                 {authzid:?}; its sasl id is {user:?} (Apache's rules)"
                            );
                        }
                        Ok(Step::Complete {
                            token: None,
                            user,
                            mechanism: "GSSAPI",
                        })
                    }
                    (Ok(_), None) => Err(Failure {
                        reason: "no Kerberos settings".into(),
                        user: None,
                    }),
                    (Err(reason), _) => Err(Failure { reason, user: None }),
                }
            }
            SaslServer::Start | SaslServer::Failed => Err(Failure {
                reason: "a SASL token after the exchange ended (server at illegal state)".into(),
                user: None,
            }),
        }
    }
}

/// Validates a digest response against our nonce: `(user, rspauth)`.
fn check_response(
    service: &DigestService,
    token: &[u8],
    nonce: &str,
    users: &SaslUsers,
) -> Result<(String, String), Failure> {
    let fail = |reason: String, user: Option<&str>| Failure {
        reason,
        user: user.map(str::to_owned),
    };
    let d = parse_directives(token, MAX_TOKEN).map_err(|e| fail(e, None))?;
    for (i, (k, _)) in d.iter().enumerate() {
        if d[..i].iter().any(|(p, _)| p == k) {
            return Err(fail(format!("duplicate directive {k:?}"), None));
        }
    }
    let get = |k: &str| d.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    let user = get("username").ok_or_else(|| fail("no username".into(), None))?;
    let u = Some(user);
    let utf8 = match get("charset") {
        None => false,
        Some(c) if c.eq_ignore_ascii_case("utf-8") => true,
        Some(c) => return Err(fail(format!("charset {c:?} is not utf-8"), u)),
    };
    let realm = get("realm").unwrap_or("");
    if realm != service.server_name {
        return Err(fail(format!("realm {realm:?} is not ours"), u));
    }
    if !get("nonce").is_some_and(|n| constant_time_eq(n.as_bytes(), nonce.as_bytes())) {
        return Err(fail("the nonce is not the one we sent".into(), u));
    }
    let cnonce = get("cnonce").ok_or_else(|| fail("no cnonce".into(), u))?;
    let nc = get("nc").unwrap_or("");
    if u32::from_str_radix(nc, 16) != Ok(1) {
        return Err(fail(format!("nonce count {nc:?} is not 1"), u));
    }
    let qop = get("qop").unwrap_or("auth");
    if qop != "auth" {
        return Err(fail(format!("qop {qop:?} was not offered"), u));
    }
    let uri = get("digest-uri").ok_or_else(|| fail("no digest-uri".into(), u))?;
    let expected_uri = service.digest_uri();
    if !uri.eq_ignore_ascii_case(&expected_uri) {
        return Err(fail(
            format!("digest-uri {uri:?} is not {expected_uri:?}"),
            u,
        ));
    }
    let response = get("response").ok_or_else(|| fail("no response".into(), u))?;
    let password = users
        .passwords
        .get(user)
        .ok_or_else(|| fail("no such DIGEST-MD5 user".into(), u))?;
    let latin1 = |s: &str| -> Option<Vec<u8>> {
        s.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect()
    };
    let enc = |s: &str| {
        if utf8 {
            Some(s.as_bytes().to_vec())
        } else {
            latin1(s)
        }
    };
    let (Some(ub), Some(rb), Some(pb)) = (enc(user), enc(realm), enc(password)) else {
        return Err(fail(
            "credentials are not ISO 8859-1 and no utf-8".into(),
            u,
        ));
    };
    let authzid = get("authzid").map(str::as_bytes);
    let (expected, rspauth) = digest_response(&DigestInput {
        username: &ub,
        realm: &rb,
        password: &pb,
        nonce,
        cnonce,
        nc,
        qop,
        digest_uri: uri,
        authzid,
    });
    if !constant_time_eq(
        response.to_ascii_lowercase().as_bytes(),
        expected.as_bytes(),
    ) {
        return Err(fail("wrong password (digest response mismatch)".into(), u));
    }
    Ok((user.to_owned(), rspauth))
}

/// Apache's `SASLAuthenticationProvider.matches`: the id itself, any ACL for the SASL user
/// `super`, and the ACL id `zookeeper.letAnySaslUserDoX` names for every SASL user.
pub fn matches(id: &str, acl_id: &str, any_user_acl: Option<&str>) -> bool {
    id == "super" || id == acl_id || any_user_acl == Some(acl_id)
}

/// Apache's `SASLAuthenticationProvider.isValid`: a `KerberosName` parses it, i.e. it has
/// no `@`, or is `service[/host]@REALM` with no further `/` or `@`.
pub fn is_valid_id(id: &str) -> bool {
    let Some((head, realm)) = id.split_once('@') else {
        return true;
    };
    if realm.contains(['/', '@']) {
        return false;
    }
    match head.split_once('/') {
        Some((service, host)) => !service.contains('@') && !host.contains(['/', '@']),
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> SaslUsers {
        let e = jaas::section(
            r#"Server { org.apache.zookeeper.server.auth.DigestLoginModule required
                 user_alice="secret" user_super="x"; };"#,
            "Server",
        )
        .unwrap()
        .unwrap();
        SaslUsers::from_section(&e, Some("sup"), None).unwrap()
    }

    /// The client side of the exchange, computed independently of `check_response`.
    fn answer(
        challenge: &[u8],
        user: &str,
        password: &str,
        nonce_override: Option<&str>,
    ) -> Vec<u8> {
        let d = parse_directives(challenge, MAX_TOKEN).unwrap();
        let nonce = d.iter().find(|(k, _)| k == "nonce").unwrap().1.clone();
        let nonce = nonce_override.unwrap_or(&nonce);
        let (response, _) = digest_response(&DigestInput {
            username: user.as_bytes(),
            realm: b"zk-sasl-md5",
            password: password.as_bytes(),
            nonce,
            cnonce: "cn0",
            nc: "00000001",
            qop: "auth",
            digest_uri: "zookeeper/zk-sasl-md5",
            authzid: None,
        });
        format!(
            "charset=utf-8,username=\"{user}\",realm=\"zk-sasl-md5\",nonce=\"{nonce}\",\
             nc=00000001,cnonce=\"cn0\",digest-uri=\"zookeeper/zk-sasl-md5\",maxbuf=65536,\
             response={response},qop=auth"
        )
        .into_bytes()
    }

    #[test]
    fn full_exchange_and_rspauth() {
        let u = users();
        let mut s = DigestServer::default();
        let Step::Continue(ch) = s.evaluate(b"", &u, || "n1".into()).unwrap() else {
            panic!("challenge expected")
        };
        assert_eq!(
            ch,
            b"realm=\"zk-sasl-md5\",nonce=\"n1\",charset=utf-8,algorithm=md5-sess"
        );
        let Step::Complete { token, user, .. } = s
            .evaluate(&answer(&ch, "alice", "secret", None), &u, || unreachable!())
            .unwrap()
        else {
            panic!("complete expected")
        };
        assert_eq!(user, "alice");
        let (_, rspauth) = digest_response(&DigestInput {
            username: b"alice",
            realm: b"zk-sasl-md5",
            password: b"secret",
            nonce: "n1",
            cnonce: "cn0",
            nc: "00000001",
            qop: "auth",
            digest_uri: "zookeeper/zk-sasl-md5",
            authzid: None,
        });
        assert_eq!(token, Some(format!("rspauth={rspauth}").into_bytes()));
        // The exchange is over: anything more is an error.
        assert!(s.evaluate(b"", &u, || "n".into()).is_err());
    }

    #[test]
    fn super_password_property_replaces_the_file_password() {
        let u = users();
        let mut s = DigestServer::default();
        let Ok(Step::Continue(ch)) = s.evaluate(b"", &u, || "n2".into()) else {
            panic!()
        };
        assert!(s
            .evaluate(&answer(&ch, "super", "sup", None), &u, || unreachable!())
            .is_ok());
        let mut s = DigestServer::default();
        let Ok(Step::Continue(ch)) = s.evaluate(b"", &u, || "n3".into()) else {
            panic!()
        };
        assert!(s
            .evaluate(&answer(&ch, "super", "x", None), &u, || unreachable!())
            .is_err());
    }

    #[test]
    fn failures_name_the_cause_and_user_never_the_password() {
        let u = users();
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (
                answer(b"nonce=\"n\"", "alice", "wrong", Some("n")),
                "wrong password",
            ),
            (
                answer(b"nonce=\"n\"", "alice", "secret", Some("other")),
                "nonce",
            ),
            (answer(b"nonce=\"n\"", "mallory", "x", Some("n")), "no such"),
            (b"username=\"alice\",username=\"bob\"".to_vec(), "duplicate"),
            (b"garbage".to_vec(), "no value"),
            (b"\xff\xfe\x00".to_vec(), "UTF-8"),
            (vec![b'a'; MAX_TOKEN + 1], "longer"),
            (
                b"username=\"alice\",realm=\"zk-sasl-md5\"".to_vec(),
                "nonce",
            ),
        ];
        for (token, why) in cases {
            let mut s = DigestServer::default();
            s.evaluate(b"", &u, || "n".into()).unwrap();
            let e = s.evaluate(&token, &u, || unreachable!()).unwrap_err();
            assert!(e.reason.contains(why), "{why}: {e:?}");
            assert!(!e.reason.contains("secret"), "{e:?}");
            assert_eq!(s, DigestServer::Failed);
            assert!(
                s.evaluate(b"", &u, || "n".into()).is_err(),
                "failed for good"
            );
        }
        // An initial response is ignored, as Java does.
        let mut s = DigestServer::default();
        assert!(matches!(
            s.evaluate(b"x", &u, || "n".into()),
            Ok(Step::Continue(_))
        ));
    }

    #[test]
    fn jaas_modules_we_cannot_serve_are_refused() {
        let krb = jaas::section(
            "Server { com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true; };",
            "Server",
        )
        .unwrap()
        .unwrap();
        assert!(SaslUsers::from_section(&krb, None, None)
            .unwrap_err()
            .contains("GSSAPI"));
        // Where Kerberos is served, a keytab is required (a server accepts with its key).
        let e =
            SaslUsers::from_section(&krb, None, Some(&KerberosSettings::default())).unwrap_err();
        assert!(e.contains("keyTab"), "{e}");
        let other = jaas::section("Server { a.B required; };", "Server")
            .unwrap()
            .unwrap();
        assert!(SaslUsers::from_section(&other, None, None).is_err());
        let at = jaas::section(
            "Server { org.apache.zookeeper.server.auth.DigestLoginModule required user_a@R=\"x\"; };",
            "Server",
        )
        .unwrap()
        .unwrap();
        assert!(SaslUsers::from_section(&at, None, None).is_err());
        assert!(!format!("{:?}", users()).contains("secret"));
    }

    #[test]
    fn provider_matches_and_validity() {
        assert!(matches("alice", "alice", None));
        assert!(!matches("alice", "bob", None));
        assert!(matches("super", "bob", None));
        assert!(matches("alice", "anyone", Some("anyone")));
        assert!(is_valid_id("alice"));
        assert!(is_valid_id("zk/host@REALM"));
        assert!(is_valid_id("a@R"));
        assert!(!is_valid_id("a@b@c"));
        assert!(!is_valid_id("a/b/c@R"));
    }
}
