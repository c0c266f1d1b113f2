//! Quorum SASL (`quorum.auth.*`, zoo.cfg keys as Apache's `QuorumPeerConfig` reads them):
//! logins between ensemble members on the election and quorum links, DIGEST-MD5 or Kerberos
//! (GSSAPI). A member dialing another logs in with the JAAS `QuorumLearner` section (when
//! `quorum.auth.learnerRequireSasl`): `DigestLoginModule`'s `username` / `password`, or
//! `Krb5LoginModule`'s keytab and principal, asking for a ticket to
//! `quorum.auth.kerberos.servicePrincipal` (`_HOST` replaced by the dialed member's host).
//! A member accepting checks the login against the `QuorumServer` section (its
//! `user_<name>` entries, or its own keytab and principal), and with
//! `quorum.auth.serverRequireSasl` refuses a peer that does not log in.

use super::Secret;
use crate::state::acl::sasl::SaslUsers;
use crate::state::acl::sasl_kerberos::KerberosSettings;
use zk_proto::sasl::jaas::{KerberosLogin, KRB5_LOGIN_MODULE};

/// `quorum.auth.learner.saslLoginContext`'s default.
pub const DEFAULT_LEARNER_SECTION: &str = "QuorumLearner";
/// `quorum.auth.server.saslLoginContext`'s default.
pub const DEFAULT_SERVER_SECTION: &str = "QuorumServer";
/// `quorum.auth.kerberos.servicePrincipal`'s default (Apache's).
pub const DEFAULT_SERVICE_PRINCIPAL: &str = "zkquorum/localhost";
/// What Apache replaces by the dialed member's host in the service principal.
pub const HOST_PATTERN: &str = "_HOST";

/// The principal a learner asks a ticket for when it dials the member whose `server.N`
/// line names `host`, as Apache's `SecurityUtils.getServerPrincipal`: `service/_HOST`
/// becomes `service/<host in lower case>`; anything else (`_HOST` with a realm written
/// after it included) is used as written.
pub fn service_principal_for(config: &str, host: &str) -> String {
    // Java's split drops trailing empty parts: "zk/" is one part, used as written.
    let parts: Vec<&str> = config.trim_end_matches('/').split('/').collect();
    match parts[..] {
        [service, HOST_PATTERN] => format!("{service}/{}", host.to_lowercase()),
        _ => config.to_owned(),
    }
}

/// The learner's credentials, as the `QuorumLearner` section gives them.
#[derive(Debug, Clone)]
pub enum LearnerLogin {
    /// `DigestLoginModule`: user name and password.
    Digest(String, Secret),
    /// `Krb5LoginModule`: the keytab (or ticket cache) and principal.
    Kerberos(KerberosLogin),
}

/// The quorum SASL settings, and once loaded the JAAS sections they name.
#[derive(Debug, Clone)]
pub struct QuorumSaslConfig {
    /// `quorum.auth.enableSasl`.
    pub enabled: bool,
    /// `quorum.auth.learnerRequireSasl`: we log in when we dial a member.
    pub learner_require: bool,
    /// `quorum.auth.serverRequireSasl`: members dialing us must log in.
    pub server_require: bool,
    /// `quorum.auth.learner.saslLoginContext`.
    pub learner_section: String,
    /// `quorum.auth.server.saslLoginContext`.
    pub server_section: String,
    /// `quorum.auth.kerberos.servicePrincipal`: whom a Kerberos learner logs in to.
    pub service_principal: String,
    /// `quorum.cnxn.threads.size`: Apache's pool of threads for quorum connections. Read
    /// and checked as Apache does; each connection here is a task, so it sizes nothing.
    pub cnxn_threads: Option<u32>,
    /// The server section (loaded): its DIGEST-MD5 users, or its Kerberos keytab.
    pub users: Option<SaslUsers>,
    /// The learner section's credentials (loaded).
    pub login: Option<LearnerLogin>,
}

impl Default for QuorumSaslConfig {
    fn default() -> Self {
        QuorumSaslConfig {
            enabled: false,
            learner_require: false,
            server_require: false,
            learner_section: DEFAULT_LEARNER_SECTION.to_owned(),
            server_section: DEFAULT_SERVER_SECTION.to_owned(),
            service_principal: DEFAULT_SERVICE_PRINCIPAL.to_owned(),
            cnxn_threads: None,
            users: None,
            login: None,
        }
    }
}

/// The zoo.cfg keys read here (Apache reads them from zoo.cfg only, never as `-D`
/// properties).
pub const KEYS: &[&str] = &[
    "quorum.auth.enableSasl",
    "quorum.auth.learnerRequireSasl",
    "quorum.auth.serverRequireSasl",
    "quorum.auth.learner.saslLoginContext",
    "quorum.auth.server.saslLoginContext",
    "quorum.auth.kerberos.servicePrincipal",
    "quorum.cnxn.threads.size",
];

fn flag(key: &str, v: &str) -> Result<bool, String> {
    // Apache's parseBoolean: anything but true/false is a config error.
    match v.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("{key}: '{v}' is not true or false")),
    }
}

impl QuorumSaslConfig {
    /// Applies a zoo.cfg key: Ok(false) when it is not one of [`KEYS`].
    pub fn apply(&mut self, key: &str, value: &str) -> Result<bool, String> {
        let v = value.trim();
        match key {
            "quorum.auth.enableSasl" => self.enabled = flag(key, v)?,
            "quorum.auth.learnerRequireSasl" => self.learner_require = flag(key, v)?,
            "quorum.auth.serverRequireSasl" => self.server_require = flag(key, v)?,
            "quorum.auth.learner.saslLoginContext" => self.learner_section = v.to_owned(),
            "quorum.auth.server.saslLoginContext" => self.server_section = v.to_owned(),
            "quorum.auth.kerberos.servicePrincipal" => {
                if v.is_empty() {
                    return Err(format!("{key} is empty"));
                }
                self.service_principal = v.to_owned()
            }
            "quorum.cnxn.threads.size" => {
                // Apache: Integer.parseInt; a pool needs at least one thread.
                let n: u32 = v
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("{key}: '{v}' is not a positive number"))?;
                self.cnxn_threads = Some(n);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Apache's `QuorumPeerConfig` checks of how the switches combine.
    pub fn validate(&self) -> Result<(), String> {
        if !self.enabled && self.server_require {
            return Err("quorum.auth.enableSasl is disabled, so cannot enable \
                        quorum.auth.serverRequireSasl"
                .into());
        }
        if !self.enabled && self.learner_require {
            return Err("quorum.auth.enableSasl is disabled, so cannot enable \
                        quorum.auth.learnerRequireSasl"
                .into());
        }
        // A member that requires logins but does not log in itself could never join.
        if !self.learner_require && self.server_require {
            return Err(
                "quorum.auth.learnerRequireSasl is disabled, so cannot enable \
                        quorum.auth.serverRequireSasl"
                    .into(),
            );
        }
        Ok(())
    }

    /// Reads both JAAS sections from `text` (the file `file`), as Apache's
    /// `SaslQuorumAuthServer` / `SaslQuorumAuthLearner` do when quorum SASL is enabled: a
    /// missing section or a login module we cannot run stops the server.
    pub fn load(&mut self, text: Option<&str>, file: &str) -> Result<(), String> {
        self.users = None;
        self.login = None;
        if !self.enabled {
            return Ok(());
        }
        let Some(text) = text else {
            return Err("quorum.auth.enableSasl=true needs a JAAS file with the \
                        QuorumServer and QuorumLearner sections: pass \
                        -Djava.security.auth.login.config=FILE"
                .into());
        };
        let section = |name: &str, key: &str| {
            zk_proto::sasl::jaas::section(text, name)
                .map_err(|e| format!("JAAS file {file}: {e}"))?
                .filter(|e| !e.is_empty())
                .ok_or_else(|| {
                    format!(
                        "{key}={name}: SASL-authentication failed because the JAAS section \
                         '{name}' could not be found in {file}"
                    )
                })
        };
        let server = section(&self.server_section, "quorum.auth.server.saslLoginContext")?;
        // A Krb5LoginModule entry makes it a Kerberos server (its keytab is checked now);
        // DigestLoginModule entries list the DIGEST-MD5 users; anything else stops us.
        let users = SaslUsers::from_section(&server, None, Some(&KerberosSettings::default()))
            .map_err(|e| {
                format!(
                    "JAAS section {:?} of {file}: {e}",
                    self.server_section.as_str()
                )
            })?;
        let learner = section(
            &self.learner_section,
            "quorum.auth.learner.saslLoginContext",
        )?;
        let in_learner =
            |e: String| format!("JAAS section {:?} of {file}: {e}", self.learner_section);
        let login = match learner.first() {
            Some(e) if e.module == KRB5_LOGIN_MODULE => LearnerLogin::Kerberos(
                KerberosLogin::from_options(&e.options)
                    .map_err(|err| in_learner(format!("{}: {err}", e.module)))?,
            ),
            _ => {
                let (user, password) = zk_proto::sasl::jaas::digest_login(&learner)
                    .map_err(in_learner)?
                    .ok_or_else(|| {
                        in_learner(format!(
                            "login module {} is not provided by zk-server between members; \
                             use org.apache.zookeeper.server.auth.DigestLoginModule \
                             (DIGEST-MD5) or {KRB5_LOGIN_MODULE} (Kerberos)",
                            learner.first().map(|e| e.module.as_str()).unwrap_or("?")
                        ))
                    })?;
                LearnerLogin::Digest(user, Secret(password))
            }
        };
        self.users = Some(users);
        self.login = Some(login);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JAAS: &str = r#"
        QuorumServer {
          org.apache.zookeeper.server.auth.DigestLoginModule required
          user_zkpeer="peer-secret";
        };
        QuorumLearner {
          org.apache.zookeeper.server.auth.DigestLoginModule required
          username="zkpeer"
          password="peer-secret";
        };
        Kerb {
          com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true;
        };
        KerbLearner {
          com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true
          keyTab="/nonexistent.keytab" principal="learner/h@R";
        };
        Other {
          com.example.Login required;
        };
    "#;

    fn sasl(lines: &[(&str, &str)]) -> Result<QuorumSaslConfig, String> {
        let mut c = QuorumSaslConfig::default();
        for (k, v) in lines {
            assert!(c.apply(k, v)?, "{k}");
        }
        c.validate()?;
        Ok(c)
    }

    #[test]
    fn host_pattern_is_replaced_as_apache_does() {
        let p = |c: &str| service_principal_for(c, "ZK1.Example.COM");
        assert_eq!(p("zkquorum/_HOST"), "zkquorum/zk1.example.com");
        assert_eq!(p("zkquorum/localhost"), "zkquorum/localhost");
        // Apache substitutes only `service/_HOST`: with a realm written, used as is.
        assert_eq!(
            p("zkquorum/_HOST@EXAMPLE.COM"),
            "zkquorum/_HOST@EXAMPLE.COM"
        );
        assert_eq!(p("_HOST"), "_HOST");
        assert_eq!(p("a/b/_HOST"), "a/b/_HOST");
        assert_eq!(
            service_principal_for("zkquorum/_HOST", "127.0.0.1"),
            "zkquorum/127.0.0.1"
        );
    }

    #[test]
    fn switches_combine_as_in_apache() {
        let e = sasl(&[("quorum.auth.serverRequireSasl", "true")]).unwrap_err();
        assert!(e.contains("quorum.auth.enableSasl is disabled"), "{e}");
        let e = sasl(&[
            ("quorum.auth.enableSasl", "true"),
            ("quorum.auth.serverRequireSasl", "true"),
        ])
        .unwrap_err();
        assert!(e.contains("learnerRequireSasl is disabled"), "{e}");
        assert!(sasl(&[("quorum.auth.enableSasl", "yes")]).is_err());
        sasl(&[
            ("quorum.auth.enableSasl", "true"),
            ("quorum.auth.learnerRequireSasl", "true"),
            ("quorum.auth.serverRequireSasl", "true"),
        ])
        .unwrap();
    }

    #[test]
    fn sections_load_or_stop_the_server() {
        let mut c = sasl(&[("quorum.auth.enableSasl", "true")]).unwrap();
        c.load(Some(JAAS), "jaas.conf").unwrap();
        assert_eq!(c.users.as_ref().map(|u| u.len()), Some(1));
        assert!(matches!(&c.login, Some(LearnerLogin::Digest(u, _)) if u == "zkpeer"));
        // No file at all, a missing section, a Kerberos section without its keytab: all
        // refused.
        assert!(c.load(None, "-").unwrap_err().contains("JAAS"));
        c.apply("quorum.auth.learner.saslLoginContext", "Nope")
            .unwrap();
        let e = c.load(Some(JAAS), "jaas.conf").unwrap_err();
        assert!(e.contains("'Nope' could not be found"), "{e}");
        c.apply("quorum.auth.learner.saslLoginContext", "Kerb")
            .unwrap();
        let e = c.load(Some(JAAS), "jaas.conf").unwrap_err();
        assert!(e.contains("Krb5LoginModule") && e.contains("keyTab"), "{e}");
        c.apply("quorum.auth.learner.saslLoginContext", "KerbLearner")
            .unwrap();
        c.load(Some(JAAS), "jaas.conf").unwrap();
        assert!(matches!(
            &c.login,
            Some(LearnerLogin::Kerberos(k)) if k.principal.as_deref() == Some("learner/h@R")
        ));
        c.apply("quorum.auth.learner.saslLoginContext", "Other")
            .unwrap();
        let e = c.load(Some(JAAS), "jaas.conf").unwrap_err();
        assert!(e.contains("com.example.Login is not provided"), "{e}");
        c.apply("quorum.auth.learner.saslLoginContext", "QuorumLearner")
            .unwrap();
        c.apply("quorum.auth.server.saslLoginContext", "Kerb")
            .unwrap();
        let e = c.load(Some(JAAS), "jaas.conf").unwrap_err();
        assert!(e.contains("Krb5LoginModule") && e.contains("keyTab"), "{e}");
        // The service principal and the thread pool size, as Apache reads them.
        c.apply("quorum.auth.kerberos.servicePrincipal", "zkq/_HOST")
            .unwrap();
        assert_eq!(c.service_principal, "zkq/_HOST");
        assert!(c.apply("quorum.cnxn.threads.size", "x").is_err());
        assert!(c.apply("quorum.cnxn.threads.size", "0").is_err());
        c.apply("quorum.cnxn.threads.size", "20").unwrap();
        assert_eq!(c.cnxn_threads, Some(20));
        // Disabled: nothing is read.
        let mut off = QuorumSaslConfig::default();
        off.load(None, "-").unwrap();
        assert!(off.users.is_none());
    }
}
