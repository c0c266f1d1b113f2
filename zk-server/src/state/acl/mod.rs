//! ACL checks and auth providers: world, auth, digest, ip, sasl, x509 and the super user.

pub mod digest;
pub mod ip;
pub mod sasl;
pub mod sasl_kerberos;
pub mod x509;

use zk_proto::{Acl, ClientInfo, ErrorCode, Id, Perms};

/// The auth providers registered besides the built-in `digest`, `ip` and `x509` (Apache's
/// `ProviderRegistry`): a scheme without a provider matches no ACL and is no valid ACL id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schemes {
    /// `authProvider.N=...SASLAuthenticationProvider`: the `sasl` scheme.
    pub sasl: bool,
    /// `zookeeper.letAnySaslUserDoX`: a `sasl` ACL id every SASL user matches.
    pub sasl_any_user: Option<String>,
}

impl Schemes {
    /// Whether `scheme` has a provider.
    pub fn has(&self, scheme: &str) -> bool {
        matches!(scheme, "digest" | "ip" | "x509") || (scheme == "sasl" && self.sasl)
    }
}

/// Apache's `checkACL`: whether identities `ids` hold any of the bits of `perm` on a node
/// with ACL `acl`. Super users and empty ACLs pass.
pub fn check(acl: &[Acl], perm: Perms, ids: &[Id], schemes: &Schemes) -> bool {
    if acl.is_empty() || ids.iter().any(|i| i.scheme == "super") {
        return true;
    }
    acl.iter().any(|a| {
        a.perms & perm.0 != 0
            && ((a.id.scheme == "world" && a.id.id == "anyone")
                || ids.iter().any(|i| {
                    i.scheme == a.id.scheme && provider_matches(&i.scheme, &i.id, &a.id.id, schemes)
                }))
    })
}

fn provider_matches(scheme: &str, have: &str, acl_id: &str, schemes: &Schemes) -> bool {
    match scheme {
        "digest" => have == acl_id,
        "ip" => ip::matches(have, acl_id),
        "sasl" if schemes.sasl => sasl::matches(have, acl_id, schemes.sasl_any_user.as_deref()),
        // Apache's X509AuthenticationProvider: the certificate's DN, exactly.
        "x509" => have == acl_id,
        _ => false,
    }
}

/// Whether a scheme's identities count for the `auth` pseudo-scheme (Apache's
/// `isAuthenticated`: digest, x509 and sasl yes, ip no; a scheme without provider no).
fn is_authenticated(scheme: &str, schemes: &Schemes) -> bool {
    scheme == "digest" || scheme == "x509" || (scheme == "sasl" && schemes.sasl)
}

/// Apache's `fixupACL`: drop duplicates, expand `auth` into the caller's authenticated ids,
/// validate the rest. Any problem is InvalidACL.
pub fn fixup(acl: &[Acl], ids: &[Id], schemes: &Schemes) -> Result<Vec<Acl>, ErrorCode> {
    if acl.is_empty() {
        return Err(ErrorCode::InvalidAcl);
    }
    let mut uniq: Vec<&Acl> = Vec::with_capacity(acl.len());
    for a in acl {
        if !uniq.contains(&a) {
            uniq.push(a);
        }
    }
    let mut out = Vec::with_capacity(uniq.len());
    for a in uniq {
        match a.id.scheme.as_str() {
            "world" if a.id.id == "anyone" => out.push(a.clone()),
            "auth" => {
                let mut any = false;
                for id in java_set_order(ids)
                    .into_iter()
                    .filter(|i| is_authenticated(&i.scheme, schemes))
                {
                    any = true;
                    out.push(Acl { perms: a.perms, id });
                }
                if !any {
                    return Err(ErrorCode::InvalidAcl);
                }
            }
            "digest" if digest::is_valid_id(&a.id.id) => out.push(a.clone()),
            "ip" if ip::is_valid_id(&a.id.id) => out.push(a.clone()),
            "sasl" if schemes.sasl && sasl::is_valid_id(&a.id.id) => out.push(a.clone()),
            "x509" if x509::is_valid_id(&a.id.id) => out.push(a.clone()),
            _ => return Err(ErrorCode::InvalidAcl),
        }
    }
    Ok(out)
}

/// Handles `addauth scheme auth`: the identities to add to the connection, or AuthFailed.
/// `super_digest` is `zookeeper.DigestAuthenticationProvider.superDigest` (`user:hash`).
pub fn authenticate(
    scheme: &str,
    auth: &[u8],
    client_ip: &str,
    super_digest: Option<&str>,
) -> Result<Vec<Id>, ErrorCode> {
    match scheme {
        "digest" => {
            let text = String::from_utf8_lossy(auth);
            let id = digest::generate_digest(&text);
            let mut out = Vec::new();
            if super_digest == Some(id.as_str()) {
                out.push(Id::new("super", ""));
            }
            out.push(Id::new("digest", id));
            Ok(out)
        }
        "ip" => Ok(vec![Id::new("ip", client_ip)]),
        _ => Err(ErrorCode::AuthFailed),
    }
}

/// Java's `String.hashCode` over UTF-16 code units.
fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// The jute-generated `Id.hashCode`.
fn java_id_hash(id: &Id) -> i32 {
    let r = 17i32
        .wrapping_mul(37)
        .wrapping_add(java_string_hash(&id.scheme));
    r.wrapping_mul(37).wrapping_add(java_string_hash(&id.id))
}

/// Orders a connection's identities as Apache iterates them: its `authInfo` is a set
/// backed by a `ConcurrentHashMap`, so whoAmI and the `auth` ACL expansion list ids by
/// hash bucket, then insertion order.
pub fn java_set_order(ids: &[Id]) -> Vec<Id> {
    let mut cap = 16usize;
    while ids.len() >= cap * 3 / 4 {
        cap *= 2;
    }
    let mut keyed: Vec<(usize, usize, &Id)> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let h = java_id_hash(id);
            let spread = (h ^ ((h as u32) >> 16) as i32) & 0x7fff_ffff;
            (spread as usize & (cap - 1), i, id)
        })
        .collect();
    keyed.sort_by_key(|(bucket, i, _)| (*bucket, *i));
    keyed.into_iter().map(|(_, _, id)| id.clone()).collect()
}

/// The whoAmI view of a connection's identities.
pub fn client_info(ids: &[Id]) -> Vec<ClientInfo> {
    java_set_order(ids)
        .iter()
        .map(|i| ClientInfo {
            auth_scheme: i.scheme.clone(),
            user: if i.scheme == "digest" {
                digest::user_name(&i.id).to_string()
            } else {
                i.id.clone()
            },
        })
        .collect()
}

/// Apache hides digest hashes from callers that may read but not administer a node.
pub fn redact_digests(acl: &[Acl]) -> Vec<Acl> {
    acl.iter()
        .map(|a| {
            if a.id.scheme == "digest" {
                Acl {
                    perms: a.perms,
                    id: Id::new("digest", format!("{}:x", digest::user_name(&a.id.id))),
                }
            } else {
                a.clone()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chk(acl: &[Acl], perm: Perms, ids: &[Id]) -> bool {
        check(acl, perm, ids, &Schemes::default())
    }

    fn fx(acl: &[Acl], ids: &[Id]) -> Result<Vec<Acl>, ErrorCode> {
        fixup(acl, ids, &Schemes::default())
    }

    #[test]
    fn sasl_needs_its_provider() {
        let alice = Id::new("sasl", "alice");
        let acl = vec![Acl::new(Perms::ALL, "sasl", "alice")];
        let on = Schemes {
            sasl: true,
            sasl_any_user: None,
        };
        assert!(!chk(&acl, Perms::READ, std::slice::from_ref(&alice)));
        assert!(check(&acl, Perms::READ, std::slice::from_ref(&alice), &on));
        assert!(!check(&acl, Perms::READ, &[Id::new("sasl", "bob")], &on));
        assert!(check(&acl, Perms::READ, &[Id::new("sasl", "super")], &on));
        let any = Schemes {
            sasl: true,
            sasl_any_user: Some("alice".into()),
        };
        assert!(check(&acl, Perms::READ, &[Id::new("sasl", "bob")], &any));
        assert_eq!(fx(&acl, &[]), Err(ErrorCode::InvalidAcl));
        assert_eq!(fixup(&acl, &[], &on).unwrap(), acl);
        assert_eq!(
            fixup(&[Acl::new(Perms::ALL, "sasl", "a@b@c")], &[], &on),
            Err(ErrorCode::InvalidAcl)
        );
        // `auth` expands to the sasl identity only with the provider.
        let ids = [Id::new("ip", "127.0.0.1"), alice.clone()];
        assert_eq!(fx(&Acl::creator_all(), &ids), Err(ErrorCode::InvalidAcl));
        assert_eq!(
            fixup(&Acl::creator_all(), &ids, &on).unwrap(),
            vec![Acl {
                perms: 31,
                id: alice
            }]
        );
    }

    fn digest_id(up: &str) -> Id {
        Id::new("digest", digest::generate_digest(up))
    }

    #[test]
    fn world_digest_ip_super() {
        let bob = digest_id("bob:pw");
        let acl = vec![Acl {
            perms: Perms::READ.0,
            id: bob.clone(),
        }];
        assert!(chk(&acl, Perms::READ, std::slice::from_ref(&bob)));
        assert!(!chk(&acl, Perms::WRITE, std::slice::from_ref(&bob)));
        assert!(!chk(&acl, Perms::READ, &[Id::new("ip", "127.0.0.1")]));
        assert!(chk(&acl, Perms::WRITE, &[Id::new("super", "")]));
        assert!(chk(&Acl::open_unsafe(), Perms::ALL, &[]));
        assert!(chk(&[], Perms::ADMIN, &[]));
        let ipacl = vec![Acl::new(Perms::ALL, "ip", "127.0.0.0/8")];
        assert!(chk(&ipacl, Perms::READ, &[Id::new("ip", "127.0.0.1")]));
        // READ|ADMIN means either bit.
        assert!(chk(&acl, Perms::READ | Perms::ADMIN, &[bob]));
    }

    #[test]
    fn fixup_rules() {
        assert_eq!(fx(&[], &[]), Err(ErrorCode::InvalidAcl));
        assert_eq!(
            fx(&Acl::creator_all(), &[Id::new("ip", "1.2.3.4")]),
            Err(ErrorCode::InvalidAcl)
        );
        let bob = digest_id("bob:pw");
        let fixed = fx(
            &Acl::creator_all(),
            &[Id::new("ip", "1.2.3.4"), bob.clone()],
        )
        .unwrap();
        assert_eq!(fixed, vec![Acl { perms: 31, id: bob }]);
        assert_eq!(
            fx(&[Acl::new(Perms::ALL, "world", "bob")], &[]),
            Err(ErrorCode::InvalidAcl)
        );
        assert_eq!(
            fx(&[Acl::new(Perms::ALL, "foo", "x")], &[]),
            Err(ErrorCode::InvalidAcl)
        );
        assert_eq!(
            fx(&[Acl::new(Perms::ALL, "digest", "nocolon")], &[]),
            Err(ErrorCode::InvalidAcl)
        );
        let dup = vec![Acl::new(Perms::ALL, "world", "anyone"); 2];
        assert_eq!(fx(&dup, &[]).unwrap().len(), 1);
    }

    #[test]
    fn x509_ids_match_exactly_and_count_as_authenticated() {
        let alice = Id::new("x509", "CN=alice,O=zk");
        let acl = vec![Acl::new(Perms::ALL, "x509", "CN=alice,O=zk")];
        let none = Schemes::default();
        assert!(check(
            &acl,
            Perms::READ,
            std::slice::from_ref(&alice),
            &none
        ));
        assert!(!check(
            &acl,
            Perms::READ,
            &[Id::new("x509", "CN=alice")],
            &none
        ));
        assert!(!check(
            &acl,
            Perms::READ,
            &[Id::new("ip", "127.0.0.1")],
            &none
        ));
        // `auth` expands to the certificate identity; a malformed DN is InvalidACL.
        let fixed = fx(&Acl::creator_all(), &[Id::new("ip", "::1"), alice.clone()]).unwrap();
        assert_eq!(
            fixed,
            vec![Acl {
                perms: Perms::ALL.0,
                id: alice
            }]
        );
        assert_eq!(
            fx(&[Acl::new(Perms::ALL, "x509", "alice")], &[]),
            Err(ErrorCode::InvalidAcl)
        );
        assert!(fx(&[Acl::new(Perms::ALL, "x509", "")], &[]).is_ok());
    }

    #[test]
    fn authenticate_schemes() {
        let sup = digest::generate_digest("super:secret");
        let ids = authenticate("digest", b"super:secret", "1.1.1.1", Some(&sup)).unwrap();
        assert_eq!(ids[0], Id::new("super", ""));
        assert_eq!(
            authenticate("nope", b"", "1.1.1.1", None),
            Err(ErrorCode::AuthFailed)
        );
        let info = client_info(&[digest_id("bob:pw"), Id::new("ip", "1.1.1.1")]);
        assert_eq!(info[0].user, "bob");
        assert_eq!(info[1].user, "1.1.1.1");
    }
}
