//! Kerberos logins in the `sasl` scheme: the server's keytab credentials (a JAAS `Server`
//! section with `Krb5LoginModule`) and the ACL id a Kerberos principal gets, by Apache's
//! rules (`SaslServerCallbackHandler` with `KerberosName`):
//!
//! - the principal `service[/host]@REALM` is mapped to a short name by the
//!   `zookeeper.security.auth_to_local` rules (default `DEFAULT`: the first component when
//!   the realm is the default realm of the Kerberos configuration);
//! - then `/host` is appended unless `zookeeper.kerberos.removeHostFromPrincipal=true`, and
//!   `@REALM` unless `zookeeper.kerberos.removeRealmFromPrincipal=true`.
//!
//! So by default `alice@EXAMPLE.COM` is `sasl:alice@EXAMPLE.COM` and
//! `zkcli/host1@EXAMPLE.COM` is `sasl:zkcli/host1@EXAMPLE.COM`. Where no rule applies
//! Apache falls back to the authorization id the client sent; we use the authenticated
//! principal itself (what an honest client sends), never a name the client merely claims.

use std::path::PathBuf;
use std::sync::Arc;

use regex::Regex;

/// A principal split as Apache's `KerberosName` splits it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KerberosName {
    /// First component.
    pub service: String,
    /// Second component, if any.
    pub host: Option<String>,
    /// Realm, if written.
    pub realm: Option<String>,
}

impl KerberosName {
    /// Parses `service[/host]@REALM` or a name without realm (taken whole as the service).
    pub fn parse(name: &str) -> Result<KerberosName, String> {
        let Some((head, realm)) = name.split_once('@') else {
            return Ok(KerberosName {
                service: name.to_owned(),
                host: None,
                realm: None,
            });
        };
        let bad = || format!("Malformed Kerberos name: {name}");
        if realm.contains(['/', '@']) {
            return Err(bad());
        }
        let (service, host) = match head.split_once('/') {
            Some((s, h)) if !h.contains('/') => (s, Some(h.to_owned())),
            Some(_) => return Err(bad()),
            None => (head, None),
        };
        Ok(KerberosName {
            service: service.to_owned(),
            host,
            realm: Some(realm.to_owned()),
        })
    }
}

/// One `auth_to_local` rule.
#[derive(Debug, Clone)]
enum Rule {
    /// `DEFAULT`: the first component, for principals of the default realm.
    Default,
    /// `RULE:[n:format](match)s/from/to/g`.
    Rule {
        components: usize,
        format: String,
        matches: Option<Regex>,
        subst: Option<(Regex, String, bool)>,
        text: String,
    },
}

/// The `zookeeper.security.auth_to_local` rules and the default realm they compare with.
#[derive(Debug, Clone)]
pub struct NameRules {
    rules: Vec<Rule>,
    text: String,
    default_realm: String,
}

impl PartialEq for NameRules {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text && self.default_realm == other.default_realm
    }
}
impl Eq for NameRules {}

impl NameRules {
    /// Parses rules in Apache's syntax (`DEFAULT`, `RULE:[n:fmt](regex)s/a/b/g`, separated
    /// by white space); `default_realm` is the Kerberos configuration's.
    pub fn parse(text: &str, default_realm: &str) -> Result<NameRules, String> {
        let syntax = Regex::new(
            r"^\s*(?:(DEFAULT)|RULE:\[(\d*):([^\]]*)\](?:\(([^)]*)\))?(?:s/([^/]*)/([^/]*)/(g)?)?)",
        )
        .expect("rule syntax");
        let mut rules = Vec::new();
        let mut rest = text;
        while !rest.trim().is_empty() {
            let c = syntax
                .captures(rest)
                .ok_or_else(|| format!("Invalid rule: {}", rest.trim()))?;
            let whole = c.get(0).map_or("", |m| m.as_str());
            if c.get(1).is_some() {
                rules.push(Rule::Default);
            } else {
                let regex = |s: &str| {
                    Regex::new(&format!("^(?:{s})$"))
                        .map_err(|e| format!("Invalid rule: {}: {e}", whole.trim()))
                };
                let components = c[2]
                    .parse()
                    .map_err(|_| format!("Invalid rule: {}", whole.trim()))?;
                let matches = c.get(4).map(|m| regex(m.as_str())).transpose()?;
                let subst = match c.get(5) {
                    Some(from) => Some((
                        Regex::new(from.as_str())
                            .map_err(|e| format!("Invalid rule: {}: {e}", whole.trim()))?,
                        java_replacement(c.get(6).map_or("", |m| m.as_str())),
                        c.get(7).is_some(),
                    )),
                    None => None,
                };
                rules.push(Rule::Rule {
                    components,
                    format: c[3].to_owned(),
                    matches,
                    subst,
                    text: whole.trim().to_owned(),
                });
            }
            rest = &rest[whole.len()..];
        }
        Ok(NameRules {
            rules,
            text: text.to_owned(),
            default_realm: default_realm.to_owned(),
        })
    }

    /// Apache's `KerberosName.getShortName`.
    pub fn short_name(&self, name: &KerberosName) -> Result<String, String> {
        let Some(realm) = &name.realm else {
            if name.host.is_none() {
                return Ok(name.service.clone());
            }
            return Err(format!("No rules applied to {}", display(name)));
        };
        let mut params = vec![realm.as_str(), name.service.as_str()];
        if let Some(h) = &name.host {
            params.push(h);
        }
        for rule in &self.rules {
            let result = match rule {
                Rule::Default => (realm == &self.default_realm).then(|| name.service.clone()),
                Rule::Rule {
                    components,
                    format,
                    matches,
                    subst,
                    text,
                } => {
                    if params.len() - 1 != *components {
                        continue;
                    }
                    let base = expand(format, &params)?;
                    if matches.as_ref().is_some_and(|m| !m.is_match(&base)) {
                        continue;
                    }
                    let out = match subst {
                        None => base,
                        Some((from, to, true)) => from.replace_all(&base, to.as_str()).into(),
                        Some((from, to, false)) => from.replace(&base, to.as_str()).into(),
                    };
                    if out.contains(['/', '@']) {
                        return Err(format!(
                            "Non-simple name {out} after auth_to_local rule {text}"
                        ));
                    }
                    Some(out)
                }
            };
            if let Some(r) = result {
                return Ok(r);
            }
        }
        Err(format!("No rules applied to {}", display(name)))
    }
}

fn display(n: &KerberosName) -> String {
    let mut s = n.service.clone();
    if let Some(h) = &n.host {
        s.push('/');
        s.push_str(h);
    }
    if let Some(r) = &n.realm {
        s.push('@');
        s.push_str(r);
    }
    s
}

/// `$0` is the realm, `$1`.. the components (Apache's `replaceParameters`).
fn expand(format: &str, params: &[&str]) -> Result<String, String> {
    let mut out = String::new();
    let mut it = format.chars().peekable();
    while let Some(c) = it.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        let mut digits = String::new();
        while let Some(d) = it.peek().filter(|d| d.is_ascii_digit()) {
            digits.push(*d);
            it.next();
        }
        if digits.is_empty() {
            out.push('$');
            continue;
        }
        let i: usize = digits
            .parse()
            .map_err(|_| format!("bad parameter ${digits}"))?;
        let p = params
            .get(i)
            .ok_or_else(|| format!("index {i} from {format} is outside of the valid range"))?;
        out.push_str(p);
    }
    Ok(out)
}

/// Java's `$1` group references in a replacement, in the `regex` crate's `${1}` form.
fn java_replacement(to: &str) -> String {
    let mut out = String::new();
    let mut it = to.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '\\' => {
                if let Some(n) = it.next() {
                    if n == '$' {
                        out.push_str("$$");
                    } else {
                        out.push(n);
                    }
                }
            }
            '$' => {
                let mut digits = String::new();
                while let Some(d) = it.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    it.next();
                }
                out.push_str(&format!("${{{digits}}}"));
            }
            c => out.push(c),
        }
    }
    out
}

/// How Kerberos principals become `sasl` ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KerberosIds {
    /// The auth_to_local rules.
    pub rules: NameRules,
    /// `zookeeper.kerberos.removeHostFromPrincipal=true`.
    pub remove_host: bool,
    /// `zookeeper.kerberos.removeRealmFromPrincipal=true`.
    pub remove_realm: bool,
}

impl KerberosIds {
    /// The `sasl` id of an authenticated principal.
    pub fn id_of(&self, principal: &str) -> String {
        let Ok(name) = KerberosName::parse(principal) else {
            return principal.to_owned();
        };
        match self.rules.short_name(&name) {
            Ok(short) => {
                let mut id = short;
                if let (false, Some(h)) = (self.remove_host, &name.host) {
                    id.push('/');
                    id.push_str(h);
                }
                if let (false, Some(r)) = (self.remove_realm, &name.realm) {
                    id.push('@');
                    id.push_str(r);
                }
                id
            }
            Err(e) => {
                tracing::warn!(
                    "Kerberos name rules give {principal:?} no short name ({e}); its sasl id \
                     is the principal itself"
                );
                principal.to_owned()
            }
        }
    }
}

/// A server's Kerberos side: its principal and keytab and how ids are formed.
#[derive(Clone)]
pub struct KerberosServer {
    /// `principal` of the JAAS entry (`zookeeper/host@REALM`).
    pub principal: String,
    /// `keyTab` of the JAAS entry.
    pub keytab: PathBuf,
    /// The id rules.
    pub ids: KerberosIds,
    #[cfg(feature = "kerberos")]
    creds: Arc<zk_proto::gssapi::Credentials>,
    #[cfg(not(feature = "kerberos"))]
    _creds: Arc<()>,
}

impl std::fmt::Debug for KerberosServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KerberosServer")
            .field("principal", &self.principal)
            .field("keytab", &self.keytab)
            .finish_non_exhaustive()
    }
}

impl PartialEq for KerberosServer {
    fn eq(&self, other: &Self) -> bool {
        self.principal == other.principal && self.keytab == other.keytab && self.ids == other.ids
    }
}
impl Eq for KerberosServer {}

/// Settings of the Kerberos name rules, as the config read them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KerberosSettings {
    /// `zookeeper.security.auth_to_local` (`DEFAULT` if unset).
    pub auth_to_local: Option<String>,
    /// `zookeeper.kerberos.removeHostFromPrincipal`.
    pub remove_host: bool,
    /// `zookeeper.kerberos.removeRealmFromPrincipal`.
    pub remove_realm: bool,
}

impl KerberosServer {
    /// The server side of a `Krb5LoginModule` entry: its keytab must hold the key of its
    /// principal (`service/host@REALM`, as Apache requires), checked now so that a wrong
    /// keytab stops the server at start, naming the cause.
    pub fn from_options(
        options: &[(String, String)],
        settings: &KerberosSettings,
    ) -> Result<KerberosServer, String> {
        let login = zk_proto::sasl::jaas::KerberosLogin::from_options(options)?;
        let keytab = login
            .keytab
            .ok_or("a server needs useKeyTab=true and keyTab=FILE (it accepts with the key)")?;
        let principal = login
            .principal
            .ok_or("no principal option (zookeeper/host@REALM)")?;
        let head = principal.split('@').next().unwrap_or("");
        if !head.contains('/') {
            return Err(format!(
                "principal {principal:?} has no host part: Apache needs service/host@REALM"
            ));
        }
        #[cfg(feature = "kerberos")]
        {
            let realm = zk_proto::gssapi::default_realm().unwrap_or_default();
            let rules = NameRules::parse(
                settings.auth_to_local.as_deref().unwrap_or("DEFAULT"),
                &realm,
            )
            .map_err(|e| format!("zookeeper.security.auth_to_local: {e}"))?;
            let creds = zk_proto::gssapi::Credentials::acceptor(&principal, &keytab)?;
            Ok(KerberosServer {
                principal: creds.principal().to_owned(),
                keytab,
                ids: KerberosIds {
                    rules,
                    remove_host: settings.remove_host,
                    remove_realm: settings.remove_realm,
                },
                creds: Arc::new(creds),
            })
        }
        #[cfg(not(feature = "kerberos"))]
        {
            let _ = (settings, keytab);
            Err(NOT_BUILT.to_owned())
        }
    }

    /// A fresh exchange for one connection.
    #[cfg(feature = "kerberos")]
    pub fn exchange(&self) -> zk_proto::gssapi::SaslServer {
        zk_proto::gssapi::SaslServer::new(self.creds.clone())
    }
}

/// Why a Kerberos config is refused by a build without Kerberos.
#[cfg(not(feature = "kerberos"))]
pub const NOT_BUILT: &str = "zk-server was built without the `kerberos` feature, so it cannot \
     accept Kerberos (GSSAPI) logins; rebuild with default features";

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(rules: &str, host: bool, realm: bool) -> KerberosIds {
        KerberosIds {
            rules: NameRules::parse(rules, "EXAMPLE.COM").unwrap(),
            remove_host: host,
            remove_realm: realm,
        }
    }

    #[test]
    fn default_rule_ids_as_apache_forms_them() {
        let d = ids("DEFAULT", false, false);
        assert_eq!(d.id_of("alice@EXAMPLE.COM"), "alice@EXAMPLE.COM");
        assert_eq!(d.id_of("zkcli/h1@EXAMPLE.COM"), "zkcli/h1@EXAMPLE.COM");
        // Another realm: no rule applies; the principal itself.
        assert_eq!(d.id_of("bob@OTHER.ORG"), "bob@OTHER.ORG");
        let short = ids("DEFAULT", true, true);
        assert_eq!(short.id_of("zkcli/h1@EXAMPLE.COM"), "zkcli");
        assert_eq!(short.id_of("alice@EXAMPLE.COM"), "alice");
        assert_eq!(
            ids("DEFAULT", true, false).id_of("a/h@EXAMPLE.COM"),
            "a@EXAMPLE.COM"
        );
    }

    #[test]
    fn auth_to_local_rules() {
        let r = ids(
            "RULE:[2:$1@$0](zk@OTHER\\.ORG)s/.*/zookeeper/ RULE:[1:$1](b.*)s/b/B/g DEFAULT",
            true,
            true,
        );
        assert_eq!(r.id_of("zk/host@OTHER.ORG"), "zookeeper");
        assert_eq!(r.id_of("bob@OTHER.ORG"), "BoB");
        assert_eq!(r.id_of("alice@EXAMPLE.COM"), "alice");
        assert!(NameRules::parse("RULE:[x:$1]", "R").is_err());
        assert!(NameRules::parse("NOPE", "R").is_err());
        let nonsimple = NameRules::parse("RULE:[1:$1@$0]", "R").unwrap();
        let e = nonsimple
            .short_name(&KerberosName::parse("a@R").unwrap())
            .unwrap_err();
        assert!(e.contains("Non-simple"), "{e}");
    }

    #[test]
    fn names_parse_as_kerberos_name_does() {
        let n = KerberosName::parse("zk/h@R").unwrap();
        assert_eq!(
            (n.service.as_str(), n.host.as_deref(), n.realm.as_deref()),
            ("zk", Some("h"), Some("R"))
        );
        assert!(KerberosName::parse("a/b/c@R").is_err());
        assert!(KerberosName::parse("a@b@c").is_err());
        assert_eq!(KerberosName::parse("plain").unwrap().realm, None);
    }
}
