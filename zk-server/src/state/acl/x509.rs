//! The `x509` scheme's ACL ids: distinguished names as Java's `X500Principal(String)`
//! (Apache's `X509AuthenticationProvider.isValid`) accepts them, in RFC 1779 / 2253 form.

/// The attribute keywords Java's parser knows (others must be given as OIDs).
const KEYWORDS: &[&str] = &[
    "CN",
    "C",
    "L",
    "S",
    "ST",
    "O",
    "OU",
    "T",
    "IP",
    "STREET",
    "DC",
    "DNQUALIFIER",
    "DNQ",
    "SURNAME",
    "GIVENNAME",
    "INITIALS",
    "GENERATION",
    "EMAIL",
    "EMAILADDRESS",
    "UID",
    "SERIALNUMBER",
];

/// Whether `dn` is a distinguished name Apache accepts in an `x509` ACL: the empty name, or
/// RDNs (`,` or `;` apart) of `type=value` pairs (`+` apart), each type a known keyword or
/// an OID, each value a string (with `\` escapes), a quoted string or `#` and hex DER.
pub fn is_valid_id(dn: &str) -> bool {
    dn.is_empty()
        || split(dn, &[',', ';'])
            .iter()
            .all(|rdn| split(rdn, &['+']).iter().all(|ava| valid_ava(ava)))
}

/// `s` cut at the separators that are neither escaped nor quoted.
fn split<'a>(s: &'a str, seps: &[char]) -> Vec<&'a str> {
    let (mut parts, mut start, mut quoted, mut escaped) = (Vec::new(), 0, false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            c if !quoted && seps.contains(&c) => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

fn valid_ava(ava: &str) -> bool {
    let Some((keyword, value)) = ava.split_once('=') else {
        return false;
    };
    let keyword = keyword.trim();
    let oid = keyword
        .strip_prefix("OID.")
        .or_else(|| keyword.strip_prefix("oid."));
    let keyword_ok = match oid {
        Some(oid) => valid_oid(oid),
        None if keyword.starts_with(|c: char| c.is_ascii_digit()) => valid_oid(keyword),
        None => KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(keyword)),
    };
    keyword_ok && valid_value(value.trim())
}

/// At least two arcs, the first 0, 1 or 2 (Java's `ObjectIdentifier`).
fn valid_oid(oid: &str) -> bool {
    let arcs: Vec<&str> = oid.split('.').collect();
    arcs.len() >= 2
        && arcs
            .iter()
            .all(|a| !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit()))
        && matches!(arcs[0], "0" | "1" | "2")
}

fn valid_value(v: &str) -> bool {
    if let Some(hex) = v.strip_prefix('#') {
        return valid_der_hex(hex);
    }
    if let Some(inner) = v.strip_prefix('"') {
        // A closing quote, unescaped, ends the value.
        let Some(body) = inner.strip_suffix('"') else {
            return false;
        };
        return escapes_complete(body);
    }
    escapes_complete(v)
}

/// No dangling `\` at the end.
fn escapes_complete(s: &str) -> bool {
    let mut escaped = false;
    for c in s.chars() {
        escaped = !escaped && c == '\\';
    }
    !escaped
}

/// Hex digits that decode to exactly one DER value (tag, length, contents).
fn valid_der_hex(hex: &str) -> bool {
    if hex.is_empty() || !hex.len().is_multiple_of(2) || !hex.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return false;
    }
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or(0))
        .collect();
    let Some(&first_len) = bytes.get(1) else {
        return false;
    };
    let (len, header) = if first_len < 0x80 {
        (first_len as usize, 2)
    } else {
        let n = (first_len & 0x7f) as usize;
        if n == 0 || n > 4 || bytes.len() < 2 + n {
            return false;
        }
        let len = bytes[2..2 + n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | *b as usize);
        (len, 2 + n)
    };
    bytes.len() == header + len
}

#[cfg(test)]
mod tests {
    use super::is_valid_id;

    #[test]
    fn names_java_accepts_and_refuses() {
        for ok in [
            "",
            "CN=",
            "CN=alice,O=zk",
            "cn=alice; o=zk",
            "CN=a+O=b",
            "2.5.4.3=alice",
            "OID.2.5.4.3=alice",
            "CN=a\\,b",
            "CN=\"a,b\"",
            "CN=#0403616263",
            " CN = a , O = b ",
        ] {
            assert!(is_valid_id(ok), "{ok:?}");
        }
        for bad in [
            "alice",
            "CN=a,,O=b",
            "CN=a,",
            ",CN=a",
            "CN=a+",
            "FOO=bar",
            "1=x",
            "CN=a\\",
            "CN=\"a",
            "CN=#zz",
            "CN=#04",
        ] {
            assert!(!is_valid_id(bad), "{bad:?}");
        }
    }
}
