//! Quorum SASL (`quorum.auth.*`, zoo.cfg keys as Apache's `QuorumPeerConfig` reads them):
//! DIGEST-MD5 logins between ensemble members on the election and quorum links. A member
//! dialing another logs in with the JAAS `QuorumLearner` section's `username` / `password`
//! (when `quorum.auth.learnerRequireSasl`); a member accepting checks them against the
//! `QuorumServer` section's `user_<name>` entries, and with `quorum.auth.serverRequireSasl`
//! refuses a peer that does not log in.

use super::Secret;
use crate::state::acl::sasl::SaslUsers;

/// `quorum.auth.learner.saslLoginContext`'s default.
pub const DEFAULT_LEARNER_SECTION: &str = "QuorumLearner";
/// `quorum.auth.server.saslLoginContext`'s default.
pub const DEFAULT_SERVER_SECTION: &str = "QuorumServer";

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
    /// The users of the server section (loaded).
    pub users: Option<SaslUsers>,
    /// The learner section's credentials (loaded).
    pub login: Option<(String, Secret)>,
}

impl Default for QuorumSaslConfig {
    fn default() -> Self {
        QuorumSaslConfig {
            enabled: false,
            learner_require: false,
            server_require: false,
            learner_section: DEFAULT_LEARNER_SECTION.to_owned(),
            server_section: DEFAULT_SERVER_SECTION.to_owned(),
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
        let users = SaslUsers::from_section(&server, None, None).map_err(|e| {
            format!(
                "JAAS section {:?} of {file}: {e}",
                self.server_section.as_str()
            )
        })?;
        let learner = section(
            &self.learner_section,
            "quorum.auth.learner.saslLoginContext",
        )?;
        let login = zk_proto::sasl::jaas::digest_login(&learner)
            .map_err(|e| format!("JAAS section {:?} of {file}: {e}", self.learner_section))?
            .ok_or_else(|| {
                format!(
                    "JAAS section {:?} of {file}: only \
                     org.apache.zookeeper.server.auth.DigestLoginModule (DIGEST-MD5) logins \
                     between members are provided by zk-server, not {}",
                    self.learner_section,
                    learner.first().map(|e| e.module.as_str()).unwrap_or("?")
                )
            })?;
        self.users = Some(users);
        self.login = Some((login.0, Secret(login.1)));
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
        assert_eq!(c.login.as_ref().map(|l| l.0.as_str()), Some("zkpeer"));
        // No file at all, a missing section, a Kerberos section: all refused.
        assert!(c.load(None, "-").unwrap_err().contains("JAAS"));
        c.apply("quorum.auth.learner.saslLoginContext", "Nope")
            .unwrap();
        let e = c.load(Some(JAAS), "jaas.conf").unwrap_err();
        assert!(e.contains("'Nope' could not be found"), "{e}");
        c.apply("quorum.auth.learner.saslLoginContext", "Kerb")
            .unwrap();
        let e = c.load(Some(JAAS), "jaas.conf").unwrap_err();
        assert!(e.contains("Krb5LoginModule"), "{e}");
        c.apply("quorum.auth.learner.saslLoginContext", "QuorumLearner")
            .unwrap();
        c.apply("quorum.auth.server.saslLoginContext", "Kerb")
            .unwrap();
        let e = c.load(Some(JAAS), "jaas.conf").unwrap_err();
        assert!(e.contains("Kerberos"), "{e}");
        // Disabled: nothing is read.
        let mut off = QuorumSaslConfig::default();
        off.load(None, "-").unwrap();
        assert!(off.users.is_none());
    }
}
