//! ACL checks and auth providers: world, auth, digest, ip and the super user.

pub mod digest;
pub mod ip;

use zk_proto::{Acl, ClientInfo, ErrorCode, Id, Perms};

/// Apache's `checkACL`: whether identities `ids` hold any of the bits of `perm` on a node
/// with ACL `acl`. Super users and empty ACLs pass.
pub fn check(acl: &[Acl], perm: Perms, ids: &[Id]) -> bool {
    if acl.is_empty() || ids.iter().any(|i| i.scheme == "super") {
        return true;
    }
    acl.iter().any(|a| {
        a.perms & perm.0 != 0
            && ((a.id.scheme == "world" && a.id.id == "anyone")
                || ids.iter().any(|i| {
                    i.scheme == a.id.scheme && provider_matches(&i.scheme, &i.id, &a.id.id)
                }))
    })
}

fn provider_matches(scheme: &str, have: &str, acl_id: &str) -> bool {
    match scheme {
        "digest" => have == acl_id,
        "ip" => ip::matches(have, acl_id),
        // Apache's X509AuthenticationProvider: the certificate's DN, exactly.
        "x509" => have == acl_id,
        _ => false,
    }
}

/// Whether a scheme's identities count for the `auth` pseudo-scheme (Apache's
/// `isAuthenticated`: digest and x509 yes, ip no).
fn is_authenticated(scheme: &str) -> bool {
    scheme == "digest" || scheme == "x509"
}

/// Apache's `fixupACL`: drop duplicates, expand `auth` into the caller's authenticated ids,
/// validate the rest. Any problem is InvalidACL.
pub fn fixup(acl: &[Acl], ids: &[Id]) -> Result<Vec<Acl>, ErrorCode> {
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
                    .filter(|i| is_authenticated(&i.scheme))
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
            // Apache accepts any name `X500Principal` parses: at least one `type=value`.
            "x509" if a.id.id.contains('=') => out.push(a.clone()),
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
        assert!(check(&acl, Perms::READ, std::slice::from_ref(&bob)));
        assert!(!check(&acl, Perms::WRITE, std::slice::from_ref(&bob)));
        assert!(!check(&acl, Perms::READ, &[Id::new("ip", "127.0.0.1")]));
        assert!(check(&acl, Perms::WRITE, &[Id::new("super", "")]));
        assert!(check(&Acl::open_unsafe(), Perms::ALL, &[]));
        assert!(check(&[], Perms::ADMIN, &[]));
        let ipacl = vec![Acl::new(Perms::ALL, "ip", "127.0.0.0/8")];
        assert!(check(&ipacl, Perms::READ, &[Id::new("ip", "127.0.0.1")]));
        // READ|ADMIN means either bit.
        assert!(check(&acl, Perms::READ | Perms::ADMIN, &[bob]));
    }

    #[test]
    fn fixup_rules() {
        assert_eq!(fixup(&[], &[]), Err(ErrorCode::InvalidAcl));
        assert_eq!(
            fixup(&Acl::creator_all(), &[Id::new("ip", "1.2.3.4")]),
            Err(ErrorCode::InvalidAcl)
        );
        let bob = digest_id("bob:pw");
        let fixed = fixup(
            &Acl::creator_all(),
            &[Id::new("ip", "1.2.3.4"), bob.clone()],
        )
        .unwrap();
        assert_eq!(fixed, vec![Acl { perms: 31, id: bob }]);
        assert_eq!(
            fixup(&[Acl::new(Perms::ALL, "world", "bob")], &[]),
            Err(ErrorCode::InvalidAcl)
        );
        assert_eq!(
            fixup(&[Acl::new(Perms::ALL, "foo", "x")], &[]),
            Err(ErrorCode::InvalidAcl)
        );
        assert_eq!(
            fixup(&[Acl::new(Perms::ALL, "digest", "nocolon")], &[]),
            Err(ErrorCode::InvalidAcl)
        );
        let dup = vec![Acl::new(Perms::ALL, "world", "anyone"); 2];
        assert_eq!(fixup(&dup, &[]).unwrap().len(), 1);
    }

    #[test]
    fn x509_ids_match_exactly_and_count_as_authenticated() {
        let alice = Id::new("x509", "CN=alice,O=zk");
        let acl = vec![Acl::new(Perms::ALL, "x509", "CN=alice,O=zk")];
        assert!(check(&acl, Perms::READ, std::slice::from_ref(&alice)));
        assert!(!check(&acl, Perms::READ, &[Id::new("x509", "CN=alice")]));
        assert!(!check(&acl, Perms::READ, &[Id::new("ip", "127.0.0.1")]));
        // `auth` expands to the certificate identity; a malformed DN is InvalidACL.
        let fixed = fixup(&Acl::creator_all(), &[Id::new("ip", "::1"), alice.clone()]).unwrap();
        assert_eq!(
            fixed,
            vec![Acl {
                perms: Perms::ALL.0,
                id: alice
            }]
        );
        assert_eq!(
            fixup(&[Acl::new(Perms::ALL, "x509", "alice")], &[]),
            Err(ErrorCode::InvalidAcl)
        );
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
