//! Just enough DER to read a certificate's fields, a JKS key's wrapping, and to print a
//! subject as Java's `X500Principal.getName()` does (RFC 2253), which is the `x509`
//! identity Apache gives a client. Every read checks its length against the bytes left.

/// Tags used here.
pub mod tag {
    /// `INTEGER`.
    pub const INTEGER: u8 = 0x02;
    /// `BIT STRING`.
    pub const BIT_STRING: u8 = 0x03;
    /// `OCTET STRING`.
    pub const OCTET_STRING: u8 = 0x04;
    /// `OBJECT IDENTIFIER`.
    pub const OID: u8 = 0x06;
    /// `UTCTime`.
    pub const UTC_TIME: u8 = 0x17;
    /// `GeneralizedTime`.
    pub const GENERALIZED_TIME: u8 = 0x18;
    /// `SEQUENCE`.
    pub const SEQUENCE: u8 = 0x30;
    /// `SET`.
    pub const SET: u8 = 0x31;
    /// `[0]` constructed (a certificate's version).
    pub const CONTEXT_0: u8 = 0xa0;
}

/// One tag-length-value: its tag, contents, and the whole encoding.
#[derive(Debug, Clone, Copy)]
pub struct Tlv<'a> {
    /// The (single-byte) tag.
    pub tag: u8,
    /// The value's contents.
    pub content: &'a [u8],
    /// Tag, length and contents.
    pub whole: &'a [u8],
}

/// Reads DER values one after another.
pub struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    /// Reads `b` from its start.
    pub fn new(b: &'a [u8]) -> Self {
        Reader(b)
    }

    /// Whether every value has been read.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The next value; errors on truncated input or lengths beyond 4 bytes.
    pub fn read(&mut self) -> Result<Tlv<'a>, String> {
        let b = self.0;
        let (&tag, rest) = b.split_first().ok_or("truncated DER: no tag")?;
        if tag & 0x1f == 0x1f {
            return Err("DER: multi-byte tags are not supported".into());
        }
        let (&first, mut rest) = rest.split_first().ok_or("truncated DER: no length")?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return Err("DER: bad length".into());
            }
            let mut len = 0usize;
            for &x in &rest[..n] {
                len = (len << 8) | usize::from(x);
            }
            rest = &rest[n..];
            len
        };
        if rest.len() < len {
            return Err("truncated DER value".into());
        }
        let header = b.len() - rest.len();
        let t = Tlv {
            tag,
            content: &rest[..len],
            whole: &b[..header + len],
        };
        self.0 = &rest[len..];
        Ok(t)
    }

    /// The next value, which must carry `want`.
    pub fn expect(&mut self, want: u8, what: &str) -> Result<Tlv<'a>, String> {
        let t = self.read()?;
        if t.tag != want {
            return Err(format!(
                "DER: expected {what} (tag {want:#04x}), found tag {:#04x}",
                t.tag
            ));
        }
        Ok(t)
    }
}

/// The DER of a certificate's subject `Name`.
pub fn subject(cert: &[u8]) -> Result<&[u8], String> {
    let c = Reader::new(cert).expect(tag::SEQUENCE, "Certificate")?;
    let mut tbs = Reader::new(
        Reader::new(c.content)
            .expect(tag::SEQUENCE, "TBSCertificate")?
            .content,
    );
    let mut t = tbs.read()?;
    if t.tag == tag::CONTEXT_0 {
        t = tbs.read()?; // version
    }
    if t.tag != tag::INTEGER {
        return Err("DER: certificate without a serial number".into());
    }
    tbs.expect(tag::SEQUENCE, "signature algorithm")?;
    tbs.expect(tag::SEQUENCE, "issuer")?;
    tbs.expect(tag::SEQUENCE, "validity")?;
    Ok(tbs.expect(tag::SEQUENCE, "subject")?.whole)
}

/// Dotted form of an OID's contents.
pub fn oid_string(b: &[u8]) -> String {
    let mut parts: Vec<u64> = Vec::new();
    let mut v: u64 = 0;
    for &x in b {
        v = (v << 7) | u64::from(x & 0x7f);
        if x & 0x80 == 0 {
            if parts.is_empty() {
                let first = (v / 40).min(2);
                parts.push(first);
                parts.push(v - first * 40);
            } else {
                parts.push(v);
            }
            v = 0;
        }
    }
    parts
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

/// The keyword Java prints for an attribute type in RFC 2253 form; others print as OIDs.
fn rfc2253_keyword(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => return None,
    })
}

/// The value of a string-typed attribute as Java prints it; `None` for other types
/// (printed as `#hex`). Java's `AVA.toRFC2253String` decodes every string type's bytes as
/// UTF-8, so a BMPString prints with `\00` escapes; so must we, to give the same identity.
fn string_value(t: &Tlv<'_>) -> Option<String> {
    match t.tag {
        // PrintableString, T61String, IA5String, GeneralString, BMPString, UTF8String
        0x13 | 0x14 | 0x16 | 0x1b | 0x1e | 0x0c => {
            Some(String::from_utf8_lossy(t.content).into_owned())
        }
        _ => None,
    }
}

/// Java's `AVA.toRFC2253String` escaping.
fn escape(value: &str) -> String {
    const ESCAPEES: &str = ",=+<>#;\"\\";
    let mut chars: Vec<String> = Vec::new();
    for c in value.chars() {
        if ESCAPEES.contains(c) {
            chars.push(format!("\\{c}"));
        } else if c == '\0' {
            chars.push("\\00".into());
        } else {
            chars.push(c.to_string());
        }
    }
    let ws = |s: &String| s == " " || s == "\r";
    let lead = chars.iter().take_while(|s| ws(s)).count();
    let trail = chars.iter().rev().take_while(|s| ws(s)).count();
    let n = chars.len();
    let mut out = String::with_capacity(value.len() + 4);
    for (i, s) in chars.iter().enumerate() {
        if i < lead || i >= n - trail {
            out.push('\\');
        }
        out.push_str(s);
    }
    out
}

/// A DER `Name` as `X500Principal.getName()` prints it: RDNs last first, joined by `,`;
/// the attributes of a multi-valued RDN in encoded order, joined by `+`.
pub fn rfc2253(name: &[u8]) -> Result<String, String> {
    let seq = Reader::new(name).expect(tag::SEQUENCE, "Name")?;
    let mut rdns = Vec::new();
    let mut r = Reader::new(seq.content);
    while !r.is_empty() {
        let set = r.expect(tag::SET, "RelativeDistinguishedName")?;
        let mut avas = Vec::new();
        let mut s = Reader::new(set.content);
        while !s.is_empty() {
            let ava = s.expect(tag::SEQUENCE, "AttributeTypeAndValue")?;
            let mut a = Reader::new(ava.content);
            let oid = oid_string(a.expect(tag::OID, "attribute type")?.content);
            let value = a.read()?;
            let keyword = rfc2253_keyword(&oid);
            let text = match (keyword, string_value(&value)) {
                (Some(k), Some(v)) => format!("{k}={}", escape(&v)),
                (k, _) => {
                    let hex: String = value.whole.iter().map(|b| format!("{b:02x}")).collect();
                    format!("{}=#{hex}", k.unwrap_or(&oid))
                }
            };
            avas.push(text);
        }
        rdns.push(avas.join("+"));
    }
    rdns.reverse();
    Ok(rdns.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        if content.len() < 0x80 {
            v.push(content.len() as u8);
        } else {
            v.push(0x81);
            v.push(content.len() as u8);
        }
        v.extend_from_slice(content);
        v
    }

    fn ava(oid: &[u8], tag: u8, value: &str) -> Vec<u8> {
        let mut c = tlv(0x06, oid);
        c.extend(tlv(tag, value.as_bytes()));
        tlv(0x30, &c)
    }

    #[test]
    fn names_print_as_java_does() {
        let c = ava(&[0x55, 0x04, 0x06], 0x13, "DE");
        let o = ava(&[0x55, 0x04, 0x0a], 0x0c, "Acme, Inc.");
        let ou = ava(&[0x55, 0x04, 0x0b], 0x0c, "ops");
        let cn = ava(&[0x55, 0x04, 0x03], 0x0c, " zk+client ");
        let email = ava(
            &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01],
            0x16,
            "a@b",
        );
        let mut name = Vec::new();
        name.extend(tlv(0x31, &c));
        name.extend(tlv(0x31, &o));
        name.extend(tlv(0x31, &[ou, email].concat()));
        name.extend(tlv(0x31, &cn));
        let name = tlv(0x30, &name);
        assert_eq!(
            rfc2253(&name).unwrap(),
            "CN=\\ zk\\+client\\ ,OU=ops+1.2.840.113549.1.9.1=#1603614062,O=Acme\\, Inc.,C=DE"
        );
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        for b in [
            &[][..],
            &[0x30],
            &[0x30, 0x85, 1, 1, 1, 1, 1],
            &[0x30, 0x05, 0x31],
        ] {
            assert!(rfc2253(b).is_err());
            assert!(subject(b).is_err());
        }
    }
}
