//! Settings that ask for protection zk-server does not give yet: TLS settings beyond the
//! keystores, truststores, client authentication, protocols and cipher suites (revocation
//! checks, custom SSL contexts), quorum SASL keys beyond Apache's, other authentication
//! providers, audit logs; and security keys Apache 3.8 does not read where they were
//! written (`sslQuorum` or `quorum.auth.*` as `-D` properties, `requireClientAuthScheme`).
//!
//! A drop-in replacement that read such a zoo.cfg and started anyway would serve plaintext,
//! unauthenticated, to an operator who believes the data is protected. So these keys fail
//! closed: the server refuses to start and names the key and its line. The list shrinks as
//! the features land; a key that only switches protection *off* (`sslQuorum=false`) asks for
//! nothing and passes.

/// One family of keys and the protection it asks for.
struct Rule {
    /// Whether a key (without the `zookeeper.` prefix) belongs to this family.
    matches: fn(&str) -> bool,
    /// A switch: the value `false` asks for nothing and is accepted.
    switch: bool,
    /// What the key asks for, for the error message.
    asks_for: &'static str,
    /// Why it is refused when the reason is not "not provided yet".
    note: Option<&'static str>,
}

/// The client-port TLS keys zk-server implements (see [`super::tls`]).
const IMPLEMENTED_SSL: &[&str] = &[
    "ssl.keyStore.location",
    "ssl.keyStore.password",
    "ssl.keyStore.passwordPath",
    "ssl.keyStore.type",
    "ssl.trustStore.location",
    "ssl.trustStore.password",
    "ssl.trustStore.passwordPath",
    "ssl.trustStore.type",
    "ssl.clientAuth",
    "ssl.protocol",
    "ssl.enabledProtocols",
    "ssl.ciphersuites",
    "ssl.hostnameVerification",
    "ssl.handshakeDetectionTimeoutMillis",
    "ssl.authProvider",
    "ssl.storeCheckIntervalMillis",
];

/// The quorum-link TLS keys zk-server implements (`ssl.quorum.*`, see [`super::tls`]).
const IMPLEMENTED_SSL_QUORUM: &[&str] = &[
    "ssl.quorum.keyStore.location",
    "ssl.quorum.keyStore.password",
    "ssl.quorum.keyStore.passwordPath",
    "ssl.quorum.keyStore.type",
    "ssl.quorum.trustStore.location",
    "ssl.quorum.trustStore.password",
    "ssl.quorum.trustStore.passwordPath",
    "ssl.quorum.trustStore.type",
    "ssl.quorum.clientAuth",
    "ssl.quorum.protocol",
    "ssl.quorum.enabledProtocols",
    "ssl.quorum.ciphersuites",
    "ssl.quorum.hostnameVerification",
    "ssl.quorum.handshakeDetectionTimeoutMillis",
];

/// Keys zk-server implements when written as zoo.cfg lines, the only place Apache's
/// `QuorumPeerConfig` reads them (see [`super::quorum_auth`] for `quorum.auth.*`).
const IMPLEMENTED_FILE_KEYS: &[&str] = &[
    "sslQuorum",
    "portUnification",
    "sslQuorumReloadCertFiles",
    "quorum.auth.enableSasl",
    "quorum.auth.learnerRequireSasl",
    "quorum.auth.serverRequireSasl",
    "quorum.auth.learner.saslLoginContext",
    "quorum.auth.server.saslLoginContext",
    "quorum.auth.kerberos.servicePrincipal",
];

/// Said of a zoo.cfg-only key given elsewhere.
const FILE_ONLY_NOTE: &str = "but Apache reads this key only as a zoo.cfg line (as a \
    property, or with a zookeeper. prefix, nothing reads it and the link runs without it); \
    write it in zoo.cfg";

const RULES: &[Rule] = &[
    Rule {
        matches: |k| matches!(k, "admin.portUnification" | "admin.forceHttps"),
        switch: true,
        asks_for: "HTTPS on the AdminServer",
        note: Some("which zk-server does not provide (its AdminServer speaks plain HTTP)"),
    },
    Rule {
        matches: |k| k.starts_with("metricsProvider.https") || k.starts_with("metricsProvider.ssl"),
        switch: false,
        asks_for: "HTTPS on the metrics endpoint",
        note: Some("which zk-server does not provide (its /metrics is plain HTTP)"),
    },
    Rule {
        matches: |k| {
            matches!(
                k,
                "ssl.crl" | "ssl.ocsp" | "ssl.quorum.crl" | "ssl.quorum.ocsp"
            )
        },
        switch: true,
        asks_for: "revocation checks of peer certificates (CRL / OCSP)",
        note: None,
    },
    Rule {
        matches: |k| {
            (k.starts_with("ssl.quorum.") && !IMPLEMENTED_SSL_QUORUM.contains(&k))
                || k == "ssl.quorum"
        },
        switch: false,
        asks_for: "a quorum TLS setting beyond the keystore, truststore, client \
                   authentication, host name verification, protocols and cipher suites",
        note: None,
    },
    Rule {
        matches: |k| {
            (k.starts_with("ssl.")
                && !k.starts_with("ssl.quorum.")
                && !IMPLEMENTED_SSL.contains(&k))
                || k == "ssl"
        },
        switch: false,
        asks_for: "a TLS setting beyond the client port's keystore, truststore, client \
                   authentication, protocols and cipher suites",
        note: None,
    },
    Rule {
        matches: |k| k.starts_with("sslQuorum"),
        switch: true,
        asks_for: "TLS between ensemble members",
        note: Some(FILE_ONLY_NOTE),
    },
    Rule {
        matches: |k| k == "portUnification",
        switch: true,
        asks_for: "TLS and plaintext on one quorum port",
        note: Some(FILE_ONLY_NOTE),
    },
    Rule {
        matches: |k| k.starts_with("authProvider."),
        switch: false,
        asks_for: "an authentication provider other than digest, ip, x509, sasl and ensemble",
        note: None,
    },
    Rule {
        matches: |k| k == "requireClientAuthScheme",
        switch: false,
        asks_for: "clients to authenticate before they are served",
        note: Some(
            "but Apache 3.8 ignores this key and would serve anonymous clients; say \
             sessionRequireClientSASLAuth=true, or enforce.auth.enabled=true with \
             enforce.auth.schemes=sasl",
        ),
    },
    Rule {
        matches: |k| k.starts_with("quorum.auth."),
        switch: true,
        asks_for: "SASL authentication between ensemble members (quorum SASL)",
        note: Some(
            "but zk-server (as Apache) reads only quorum.auth.enableSasl, \
             learnerRequireSasl, serverRequireSasl, learner.saslLoginContext, \
             server.saslLoginContext and kerberos.servicePrincipal, and only as zoo.cfg \
             lines",
        ),
    },
    Rule {
        matches: |k| k == "java.security.auth.login.config",
        switch: false,
        asks_for: "SASL logins from a JAAS file",
        note: Some(
            "but Apache reads the JAAS file only from the JVM property (in zoo.cfg the key \
             becomes zookeeper.java.security.auth.login.config, which nothing reads); pass \
             -Djava.security.auth.login.config=FILE",
        ),
    },
    Rule {
        matches: |k| k == "audit.enable",
        switch: true,
        asks_for: "an audit log of who changed what",
        note: None,
    },
];

/// Apache's built-in providers, which zk-server implements (the `digest`, `ip` and
/// `x509` schemes): naming them in `authProvider.N` asks for nothing new.
const IMPLEMENTED_PROVIDERS: &[&str] = &[
    "org.apache.zookeeper.server.auth.DigestAuthenticationProvider",
    "org.apache.zookeeper.server.auth.IPAuthenticationProvider",
    "org.apache.zookeeper.server.auth.X509AuthenticationProvider",
];

/// The SASL provider (the `sasl` scheme): implemented, and recorded by the config.
pub(super) const SASL_PROVIDER: &str =
    "org.apache.zookeeper.server.auth.SASLAuthenticationProvider";

/// The ensemble-name check (the `ensemble` scheme): implemented, and recorded by the
/// config.
pub(super) const ENSEMBLE_PROVIDER: &str =
    "org.apache.zookeeper.server.auth.EnsembleAuthenticationProvider";

/// What a protection setting means here.
pub(super) enum Verdict {
    /// Not a protection setting.
    Other,
    /// A protection setting that asks for nothing we lack (a switch set to `false`, a
    /// provider we implement): accepted as is.
    Given,
    /// Stops the server: the reason.
    Refused(String),
}

/// Where a setting was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Source {
    /// A zoo.cfg line.
    File,
    /// A `-D` system property.
    Property,
}

/// Judges `name = value` written in `source`; `name` may carry the `zookeeper.` prefix of
/// its system-property form.
pub(super) fn judge(name: &str, value: &str, source: Source) -> Verdict {
    let key = name.strip_prefix("zookeeper.").unwrap_or(name);
    let value = value.trim();
    if source == Source::File && IMPLEMENTED_FILE_KEYS.contains(&name) {
        return Verdict::Other;
    }
    let Some(rule) = RULES.iter().find(|r| (r.matches)(key)) else {
        return Verdict::Other;
    };
    if (rule.switch && value.eq_ignore_ascii_case("false"))
        || (key.starts_with("authProvider.") && IMPLEMENTED_PROVIDERS.contains(&value))
    {
        return Verdict::Given;
    }
    if key.starts_with("authProvider.") && (value == SASL_PROVIDER || value == ENSEMBLE_PROVIDER) {
        return Verdict::Other;
    }
    Verdict::Refused(format!(
        "{name}={value} asks for {}, {}; refusing to start rather than run with less \
         protection than the config asks for (remove the setting to run without it)",
        rule.asks_for,
        rule.note.unwrap_or("which zk-server does not provide yet")
    ))
}

#[cfg(test)]
mod tests {
    use super::{judge, Source, Verdict};

    fn refusal_from(k: &str, v: &str, source: Source) -> Option<String> {
        match judge(k, v, source) {
            Verdict::Refused(why) => Some(why),
            Verdict::Other | Verdict::Given => None,
        }
    }

    fn refusal(k: &str, v: &str) -> Option<String> {
        refusal_from(k, v, Source::File)
    }

    #[test]
    fn protection_keys_are_refused() {
        for (k, v) in [
            ("ssl.crl", "true"),
            ("zookeeper.ssl.ocsp", "true"),
            ("ssl.quorum.crl", "true"),
            ("zookeeper.ssl.quorum.ocsp", "true"),
            ("ssl.quorum.context.supplier.class", "com.example.Ctx"),
            ("ssl.quorum.keyStore.algorithm", "SunX509"),
            ("ssl.quorum.storeCheckIntervalMillis", "10"),
            ("ssl.context.supplier.class", "com.example.Ctx"),
            ("ssl.keyStore.algorithm", "SunX509"),
            ("authProvider.x", "com.example.MyProvider"),
            ("requireClientAuthScheme", "sasl"),
            ("quorum.auth.kerberos.keytab", "/etc/zk.keytab"),
            ("quorum.auth.digest.something", "x"),
            ("java.security.auth.login.config", "/etc/jaas.conf"),
            ("audit.enable", "true"),
        ] {
            let why = refusal(k, v).unwrap_or_else(|| panic!("{k}={v} accepted"));
            assert!(
                why.contains(k) && why.contains("refusing to start"),
                "{why}"
            );
        }
        // A Kerberos key Apache does not have is named with the ones it has.
        let why = refusal("quorum.auth.kerberos.keytab", "/k").unwrap();
        assert!(why.contains("kerberos.servicePrincipal"), "{why}");
    }

    #[test]
    fn quorum_keys_only_where_apache_reads_them() {
        // Implemented as zoo.cfg lines...
        for (k, v) in [
            ("sslQuorum", "true"),
            ("portUnification", "true"),
            ("sslQuorumReloadCertFiles", "true"),
            ("quorum.auth.enableSasl", "true"),
            ("quorum.auth.learnerRequireSasl", "true"),
            ("quorum.auth.serverRequireSasl", "true"),
            ("quorum.auth.learner.saslLoginContext", "QuorumLearner"),
            ("quorum.auth.server.saslLoginContext", "QuorumServer"),
            ("quorum.auth.kerberos.servicePrincipal", "zkquorum/_HOST"),
        ] {
            assert_eq!(refusal(k, v), None, "{k}={v}");
            // ...but Apache ignores them as properties or with the zookeeper. prefix, so
            // asking for protection there is refused; switching it off is not.
            for (name, source) in [
                (k.to_string(), Source::Property),
                (format!("zookeeper.{k}"), Source::Property),
                (format!("zookeeper.{k}"), Source::File),
            ] {
                let why = refusal_from(&name, v, source)
                    .unwrap_or_else(|| panic!("{name}={v} from {source:?} accepted"));
                assert!(why.contains("zoo.cfg"), "{why}");
            }
            assert_eq!(refusal_from(k, "false", Source::Property), None);
        }
    }

    #[test]
    fn switches_off_and_implemented_keys_pass() {
        for (k, v) in [
            ("sslQuorum", "false"),
            ("portUnification", "false"),
            ("quorum.auth.enableSasl", "false"),
            ("enforce.auth.enabled", "false"),
            ("audit.enable", "false"),
            (
                "authProvider.1",
                "org.apache.zookeeper.server.auth.DigestAuthenticationProvider",
            ),
            ("tickTime", "2000"),
            ("DigestAuthenticationProvider.superDigest", "super:x"),
            // Implemented now: judged by the config as it reads them.
            (
                "authProvider.1",
                "org.apache.zookeeper.server.auth.SASLAuthenticationProvider",
            ),
            (
                "authProvider.2",
                "org.apache.zookeeper.server.auth.EnsembleAuthenticationProvider",
            ),
            ("enforce.auth.enabled", "true"),
            ("zookeeper.enforce.auth.schemes", "sasl"),
            ("zookeeper.superUser", "admin"),
            ("zookeeper.sessionRequireClientSASLAuth", "true"),
            ("quorumListenOnAllIPs", "true"),
            ("quorum.cnxn.threads.size", "20"),
            ("secureClientPort", "2281"),
            ("secureClientPortAddress", "0.0.0.0"),
            ("client.portUnification", "true"),
            ("ssl.keyStore.location", "/k.jks"),
            ("zookeeper.ssl.trustStore.type", "PEM"),
            ("ssl.clientAuth", "want"),
            ("ssl.crl", "false"),
            ("ssl.ocsp", "false"),
            ("ssl.quorum.crl", "false"),
            ("zookeeper.ssl.quorum.keyStore.location", "/k.jks"),
            ("ssl.quorum.trustStore.location", "/ca.pem"),
            ("ssl.quorum.hostnameVerification", "false"),
            ("ssl.quorum.clientAuth", "need"),
            ("zookeeper.X509AuthenticationProvider.superUser", "CN=admin"),
            (
                "zookeeper.authProvider.x509",
                "org.apache.zookeeper.server.auth.X509AuthenticationProvider",
            ),
        ] {
            assert_eq!(refusal(k, v), None, "{k}={v}");
        }
        // ssl.quorum.* are properties in Apache: accepted either way.
        assert_eq!(
            refusal_from(
                "zookeeper.ssl.quorum.keyStore.location",
                "/k",
                Source::Property
            ),
            None
        );
    }
}
