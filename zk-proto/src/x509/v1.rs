//! X.509 version 1 end-entity certificates, which Java accepts and webpki refuses.
//!
//! webpki (under rustls) only parses version 3 certificates, except as trust anchors.
//! Java's PKIX validator accepts a version 1 certificate as a leaf: kazoo's test harness
//! (and older `openssl x509 -req` recipes without `-extfile`) make exactly those, a v3 CA
//! signing v1 server and client certificates, and Apache serves and admits them. So that
//! the same stores work here, a v1 *end-entity* certificate is checked by this module
//! instead of webpki, no less strictly than Java: it must be signed directly by a trust
//! anchor of the truststore (no intermediates: Java refuses a v1 certificate as a CA, and
//! we do not build longer paths for one), with a signature algorithm of the provider
//! matching the anchor's key, and be within its validity period. A v1 certificate has no
//! extensions, so there is no key usage or name constraint to honour; an anchor that
//! carries name constraints is never used for a v1 leaf (we could not check them). Every
//! version 3 certificate still goes to webpki unchanged.
//!
//! The server uses [`ClientVerifier`] for client certificates and [`certified_key`] to
//! serve a v1 certificate; the client uses [`ServerVerifier`], which also checks the
//! server's name as Java's ZooKeeper client (`ZKHostnameVerifier`) does for a certificate
//! without subject alternative names: against the subject's most specific common name
//! (`*` matching within one label).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore};
use rustls_pki_types::{CertificateDer, ServerName, SubjectPublicKeyInfoDer, UnixTime};

use crate::x509::der::tag::{BIT_STRING, GENERALIZED_TIME, UTC_TIME};
use crate::x509::der::{tag, Reader, Tlv};

/// The parts of a version 1 certificate that its checks need.
#[derive(Debug)]
pub struct V1Cert<'a> {
    /// The whole `TBSCertificate`: what the issuer signed.
    tbs: &'a [u8],
    /// Contents of the signature `AlgorithmIdentifier`.
    sig_alg: &'a [u8],
    /// Contents of the issuer `Name`.
    issuer: &'a [u8],
    /// Contents of the subject `Name`.
    subject: &'a [u8],
    not_before: u64,
    not_after: u64,
    /// The whole `SubjectPublicKeyInfo`.
    spki: &'a [u8],
    signature: &'a [u8],
}

/// The bits of a `BIT STRING` with no unused bits.
fn bits<'a>(t: &Tlv<'a>) -> Result<&'a [u8], String> {
    match t.content.split_first() {
        Some((0, rest)) => Ok(rest),
        _ => Err("DER: bit string with unused bits".into()),
    }
}

/// Parses a version 1 certificate; an error for a v3 one or malformed input (which is
/// then left to webpki and its errors).
pub fn parse(cert: &[u8]) -> Result<V1Cert<'_>, String> {
    let mut outer = Reader::new(cert);
    let c = outer.expect(tag::SEQUENCE, "Certificate")?;
    if !outer.is_empty() {
        return Err("DER: data after the certificate".into());
    }
    let mut r = Reader::new(c.content);
    let tbs = r.expect(tag::SEQUENCE, "TBSCertificate")?;
    let sig_alg = r.expect(tag::SEQUENCE, "signatureAlgorithm")?;
    let signature = bits(&r.expect(BIT_STRING, "signature")?)?;
    if !r.is_empty() {
        return Err("DER: data after the signature".into());
    }
    let mut t = Reader::new(tbs.content);
    // A v1 certificate starts with its serial number; v2 and v3 with `[0] version`.
    t.expect(tag::INTEGER, "serialNumber (a version 1 certificate)")?;
    let inner_alg = t.expect(tag::SEQUENCE, "signature")?;
    if inner_alg.content != sig_alg.content {
        return Err("the certificate's two signature algorithms differ".into());
    }
    let issuer = t.expect(tag::SEQUENCE, "issuer")?;
    let mut validity = Reader::new(t.expect(tag::SEQUENCE, "validity")?.content);
    let not_before = time(&validity.read()?)?;
    let not_after = time(&validity.read()?)?;
    let subject = t.expect(tag::SEQUENCE, "subject")?;
    let spki = t.expect(tag::SEQUENCE, "subjectPublicKeyInfo")?;
    if !t.is_empty() {
        // Unique identifiers and extensions belong to v2 and v3 only.
        return Err("DER: a version 1 certificate with fields after its key".into());
    }
    Ok(V1Cert {
        tbs: tbs.whole,
        sig_alg: sig_alg.content,
        issuer: issuer.content,
        subject: subject.content,
        not_before,
        not_after,
        spki: spki.whole,
        signature,
    })
}

/// Seconds since the epoch of a `UTCTime` or `GeneralizedTime` in the `...Z` form
/// RFC 5280 requires.
fn time(t: &Tlv<'_>) -> Result<u64, String> {
    let s = std::str::from_utf8(t.content).map_err(|_| "DER: time is not ASCII")?;
    let (year, rest) = match t.tag {
        UTC_TIME if s.len() == 13 => {
            let yy: u64 = digits(&s[..2])?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &s[2..])
        }
        GENERALIZED_TIME if s.len() == 15 => (digits(&s[..4])?, &s[4..]),
        _ => return Err(format!("DER: unsupported time {s:?}")),
    };
    if !rest.ends_with('Z') {
        return Err(format!("DER: time {s:?} is not in UTC"));
    }
    let f = |i: usize| digits(&rest[i..i + 2]);
    let (month, day, hour, min, sec) = (f(0)?, f(2)?, f(4)?, f(6)?, f(8)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 59 {
        return Err(format!("DER: bad time {s:?}"));
    }
    Ok(days_from_civil(year, month, day) * 86_400 + hour * 3600 + min * 60 + sec)
}

fn digits(s: &str) -> Result<u64, String> {
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("DER: {s:?} is not a number"));
    }
    s.parse().map_err(|_| format!("DER: {s:?} is not a number"))
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar (years >= 1970).
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe).saturating_sub(719_468)
}

/// The algorithm (contents of its identifier) and key bits of a `SubjectPublicKeyInfo`
/// given with (`whole`) or without its outer header.
fn key_parts(spki: &[u8], whole: bool) -> Result<(&[u8], &[u8]), String> {
    let content = if whole {
        Reader::new(spki)
            .expect(tag::SEQUENCE, "SubjectPublicKeyInfo")?
            .content
    } else {
        spki
    };
    let mut r = Reader::new(content);
    let alg = r.expect(tag::SEQUENCE, "key algorithm")?.content;
    let key = bits(&r.expect(BIT_STRING, "subjectPublicKey")?)?;
    Ok((alg, key))
}

fn bad(e: impl Into<String>) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(Arc::new(
        V1Error(e.into()),
    ))))
}

/// Why a version 1 certificate was refused.
struct V1Error(String);

// rustls logs an `Other` certificate error with `Debug`: the reason, readable.
impl std::fmt::Debug for V1Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl std::fmt::Display for V1Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "X.509 v1 certificate: {}", self.0)
    }
}

impl std::error::Error for V1Error {}

/// Checks a v1 end-entity certificate against the trust anchors at `now` (see the
/// module's comment for what is checked, and why).
pub fn verify(
    cert: &V1Cert<'_>,
    roots: &RootCertStore,
    algs: &WebPkiSupportedAlgorithms,
    now: UnixTime,
) -> Result<(), rustls::Error> {
    let now = now.as_secs();
    if now < cert.not_before {
        return Err(bad(format!(
            "not valid before {} s after the epoch (now {now})",
            cert.not_before
        )));
    }
    if now > cert.not_after {
        return Err(bad(format!(
            "expired {} s after the epoch (now {now})",
            cert.not_after
        )));
    }
    let mut issuers = roots
        .roots
        .iter()
        .filter(|a| a.subject.as_ref() == cert.issuer)
        .peekable();
    if issuers.peek().is_none() {
        return Err(bad("its issuer is not a CA of the truststore"));
    }
    for anchor in issuers {
        if anchor.name_constraints.is_some() {
            continue;
        }
        let Ok((key_alg, key)) = key_parts(anchor.subject_public_key_info.as_ref(), false) else {
            continue;
        };
        for alg in algs.all.iter().filter(|a| {
            a.signature_alg_id().as_ref() == cert.sig_alg
                && a.public_key_alg_id().as_ref() == key_alg
        }) {
            if alg.verify_signature(key, cert.tbs, cert.signature).is_ok() {
                return Ok(());
            }
        }
    }
    Err(bad(
        "bad signature: not signed by the truststore's CA of its issuer's name",
    ))
}

/// Checks a handshake signature made with a v1 certificate's key (TLS 1.2: any of the
/// provider's algorithms for the scheme that fits the key).
/// A TLS 1.3 handshake signature by a v1 certificate's key.
fn verify_tls13(
    message: &[u8],
    cert: &V1Cert<'_>,
    dss: &DigitallySignedStruct,
    algs: &WebPkiSupportedAlgorithms,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    rustls::crypto::verify_tls13_signature_with_raw_key(
        message,
        &SubjectPublicKeyInfoDer::from(cert.spki),
        dss,
        algs,
    )
}

fn verify_tls12(
    message: &[u8],
    cert: &V1Cert<'_>,
    dss: &DigitallySignedStruct,
    algs: &WebPkiSupportedAlgorithms,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    let (key_alg, key) = key_parts(cert.spki, true).map_err(bad)?;
    let candidates = algs
        .mapping
        .iter()
        .filter(|(s, _)| *s == dss.scheme)
        .flat_map(|(_, a)| a.iter())
        .filter(|a| a.public_key_alg_id().as_ref() == key_alg);
    for alg in candidates {
        if alg.verify_signature(key, message, dss.signature()).is_ok() {
            return Ok(HandshakeSignatureValid::assertion());
        }
    }
    Err(rustls::Error::InvalidCertificate(
        CertificateError::BadSignature,
    ))
}

/// A client certificate verifier: webpki's for every certificate but a v1 one, which
/// is checked by [`verify`] (see the module's comment).
#[derive(Debug)]
pub struct ClientVerifier {
    /// webpki's verifier, for version 3 certificates.
    pub inner: Arc<dyn ClientCertVerifier>,
    /// The trust anchors a v1 certificate must be signed by.
    pub roots: Arc<RootCertStore>,
    /// The provider's signature algorithms.
    pub algs: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for ClientVerifier {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        match parse(end_entity) {
            Ok(v1) => {
                verify(&v1, &self.roots, &self.algs, now).map(|()| ClientCertVerified::assertion())
            }
            Err(_) => self
                .inner
                .verify_client_cert(end_entity, intermediates, now),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        match parse(cert) {
            Ok(v1) => verify_tls12(message, &v1, dss, &self.algs),
            Err(_) => self.inner.verify_tls12_signature(message, cert, dss),
        }
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        match parse(cert) {
            Ok(v1) => verify_tls13(message, &v1, dss, &self.algs),
            Err(_) => self.inner.verify_tls13_signature(message, cert, dss),
        }
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The `commonName` attribute's OID (2.5.4.3), DER contents.
const CN_OID: &[u8] = &[0x55, 0x04, 0x03];

/// The most specific (last) common name of a `Name`'s contents, as Java's
/// `ZKHostnameVerifier.extractCN` takes it.
fn common_name(name: &[u8]) -> Result<Option<String>, String> {
    let mut cn = None;
    let mut rdns = Reader::new(name);
    while !rdns.is_empty() {
        let set = rdns.expect(tag::SET, "RelativeDistinguishedName")?;
        let mut atvs = Reader::new(set.content);
        while !atvs.is_empty() {
            let atv = atvs.expect(tag::SEQUENCE, "AttributeTypeAndValue")?;
            let mut r = Reader::new(atv.content);
            let oid = r.expect(tag::OID, "attribute type")?;
            let value = r.read()?;
            if oid.content == CN_OID {
                cn = Some(match value.tag {
                    // BMPString: UTF-16BE.
                    0x1e => {
                        let units: Vec<u16> = value
                            .content
                            .chunks(2)
                            .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))
                            .collect();
                        String::from_utf16_lossy(&units)
                    }
                    _ => String::from_utf8_lossy(value.content).into_owned(),
                });
            }
        }
    }
    Ok(cn)
}

/// Java's `matchIdentity` (strict): a case-insensitive match, one `*` standing for part
/// of a single label.
fn name_matches(host: &str, identity: &str) -> bool {
    let (host, identity) = (host.to_ascii_lowercase(), identity.to_ascii_lowercase());
    match identity.split_once('*') {
        None => host == identity,
        Some((prefix, suffix)) => {
            host.len() >= prefix.len() + suffix.len()
                && host.starts_with(prefix)
                && host.ends_with(suffix)
                && !host[prefix.len()..host.len() - suffix.len()].contains('.')
        }
    }
}

/// Checks that a v1 certificate is valid for `server_name`: its common name must name it.
pub fn verify_name(cert: &V1Cert<'_>, server_name: &ServerName<'_>) -> Result<(), rustls::Error> {
    let host = match server_name {
        ServerName::DnsName(d) => d.as_ref().to_owned(),
        ServerName::IpAddress(ip) => std::net::IpAddr::from(*ip).to_string(),
        _ => return Err(bad("an unsupported kind of server name")),
    };
    match common_name(cert.subject).map_err(bad)? {
        Some(cn) if name_matches(&host, &cn) => Ok(()),
        Some(cn) => Err(bad(format!(
            "made out to CN={cn}, not to {host} (a version 1 certificate has no subject \
             alternative names; its common name must name the server)"
        ))),
        None => Err(bad(format!(
            "its subject has no common name to match {host} (and a version 1 certificate \
             has no subject alternative names)"
        ))),
    }
}

/// A server certificate verifier for the client: webpki's (`inner`, with its hostname
/// check or without) for every certificate but a v1 one, which is checked by [`verify`]
/// and, when `check_name`, [`verify_name`].
#[derive(Debug)]
pub struct ServerVerifier {
    /// webpki's verifier, for version 3 certificates.
    pub inner: Arc<dyn ServerCertVerifier>,
    /// The trust anchors a v1 certificate must be signed by.
    pub roots: Arc<RootCertStore>,
    /// The provider's signature algorithms.
    pub algs: WebPkiSupportedAlgorithms,
    /// Whether a v1 certificate's common name must name the server.
    pub check_name: bool,
}

impl ServerCertVerifier for ServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match parse(end_entity) {
            Ok(v1) => {
                verify(&v1, &self.roots, &self.algs, now)?;
                if self.check_name {
                    verify_name(&v1, server_name)?;
                }
                Ok(ServerCertVerified::assertion())
            }
            Err(_) => self.inner.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            ),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        match parse(cert) {
            Ok(v1) => verify_tls12(message, &v1, dss, &self.algs),
            Err(_) => self.inner.verify_tls12_signature(message, cert, dss),
        }
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        match parse(cert) {
            Ok(v1) => verify_tls13(message, &v1, dss, &self.algs),
            Err(_) => self.inner.verify_tls13_signature(message, cert, dss),
        }
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Our own certificate and key for the acceptor. rustls checks that the key matches the
/// certificate by parsing it with webpki, which refuses a v1 certificate; for one of
/// those the match is checked here instead (serving a v1 certificate weakens no one's
/// verification: the peer decides whether to trust it, as Java's clients do).
pub fn certified_key(
    provider: &rustls::crypto::CryptoProvider,
    chain: Vec<CertificateDer<'static>>,
    key: rustls_pki_types::PrivateKeyDer<'static>,
) -> Result<rustls::sign::CertifiedKey, rustls::Error> {
    let Some(v1) = chain.first().and_then(|c| parse(c).ok()) else {
        return rustls::sign::CertifiedKey::from_der(chain, key, provider);
    };
    let spki = v1.spki.to_vec();
    let signing = provider.key_provider.load_private_key(key)?;
    match signing.public_key() {
        Some(k) if k.as_ref() != spki.as_slice() => Err(rustls::Error::InconsistentKeys(
            rustls::InconsistentKeys::KeyMismatch,
        )),
        _ => Ok(rustls::sign::CertifiedKey::new(chain, signing)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_count_from_the_epoch() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        let t = Tlv {
            tag: UTC_TIME,
            content: b"491231235959Z",
            whole: b"",
        };
        assert_eq!(time(&t).unwrap(), 2_524_607_999);
        let g = Tlv {
            tag: GENERALIZED_TIME,
            content: b"20240229120000Z",
            whole: b"",
        };
        assert_eq!(time(&g).unwrap(), 1_709_208_000);
        for bad in [
            &b"2402291200Z"[..],
            b"240229120000+",
            b"24a229120000Z",
            b"241329120000Z",
        ] {
            let t = Tlv {
                tag: UTC_TIME,
                content: bad,
                whole: b"",
            };
            assert!(time(&t).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names_match_as_java_matches_them() {
        assert!(name_matches("zk1.example.com", "ZK1.example.com"));
        assert!(name_matches("zk1.example.com", "*.example.com"));
        assert!(name_matches("zk1.example.com", "zk*.example.com"));
        assert!(!name_matches("a.zk1.example.com", "*.example.com"));
        assert!(!name_matches("example.com", "*.example.com"));
        assert!(!name_matches("zk2.example.com", "zk1.example.com"));
        assert!(name_matches("127.0.0.1", "127.0.0.1"));
    }

    #[test]
    fn the_most_specific_common_name_is_taken() {
        // Name: CN=outer, O=x, CN=inner (DER order).
        let atv = |oid: &[u8], v: &[u8]| {
            let mut a = vec![0x06, oid.len() as u8];
            a.extend_from_slice(oid);
            a.extend_from_slice(&[0x0c, v.len() as u8]);
            a.extend_from_slice(v);
            let mut seq = vec![0x30, a.len() as u8];
            seq.extend(a);
            let mut set = vec![0x31, seq.len() as u8];
            set.extend(seq);
            set
        };
        let mut name = atv(CN_OID, b"outer");
        name.extend(atv(&[0x55, 0x04, 0x0a], b"x"));
        name.extend(atv(CN_OID, b"inner"));
        assert_eq!(common_name(&name).unwrap().as_deref(), Some("inner"));
        assert_eq!(common_name(&atv(&[0x55, 0x04, 0x0a], b"x")).unwrap(), None);
        for n in 0..name.len() {
            let _ = common_name(&name[..n]);
        }
    }

    #[test]
    fn garbage_and_truncation_are_errors_not_panics() {
        let mut cert = vec![0x30, 0x82, 0x01, 0x00];
        cert.extend(std::iter::repeat_n(0x30, 256));
        for n in 0..cert.len() {
            let _ = parse(&cert[..n]);
        }
        assert!(parse(&[]).is_err());
        assert!(parse(&[0x30, 0x03, 0x30, 0x01, 0x02]).is_err());
    }
}
