//! Keystores and truststores in the formats Apache reads: PEM, PKCS12 (via `p12-keystore`)
//! and Java's JKS (read here: no maintained crate reads it). Store files are input we do
//! not control: a truncated or corrupt one is an error naming what is wrong, never a
//! panic, and nothing is allocated from a length field before the bytes it claims are
//! there.

use std::path::Path;

use p12_keystore::{KeyStore, KeyStoreEntry, Pkcs12ImportPolicy};
use ring::digest;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::der::{self, tag, Reader};

/// A keystore or truststore file format (Apache's `ssl.keyStore.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreType {
    /// PEM certificates (and, for a keystore, an unencrypted private key).
    Pem,
    /// PKCS#12 (`.p12`, `.pfx`).
    Pkcs12,
    /// Java's JKS.
    Jks,
}

impl StoreType {
    /// Apache's `KeyStoreFileType.fromPropertyValue` (case-insensitive).
    pub fn from_name(v: &str) -> Option<StoreType> {
        match v.trim().to_ascii_uppercase().as_str() {
            "PEM" => Some(StoreType::Pem),
            "PKCS12" => Some(StoreType::Pkcs12),
            "JKS" => Some(StoreType::Jks),
            _ => None,
        }
    }

    /// The type Apache infers from a file name when no type is configured
    /// (`KeyStoreFileType.fromFilename`).
    pub fn from_path(p: &Path) -> Option<StoreType> {
        let ext = p.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "pem" | "crt" => Some(StoreType::Pem),
            "p12" | "pfx" => Some(StoreType::Pkcs12),
            "jks" => Some(StoreType::Jks),
            _ => None,
        }
    }
}

/// A certificate chain and its private key (a server's, or a client's certificate).
pub struct KeyMaterial {
    /// Leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's key.
    pub key: PrivateKeyDer<'static>,
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the private key.
        f.debug_struct("KeyMaterial")
            .field("chain", &self.chain.len())
            .finish_non_exhaustive()
    }
}

/// Reads a keystore's first private key and its chain from `data` (the file's bytes).
/// `password` opens PKCS12 and JKS files (PEM keys must be unencrypted).
pub fn key_store(data: &[u8], kind: StoreType, password: &str) -> Result<KeyMaterial, String> {
    let m = match kind {
        StoreType::Pem => pem_key_store(data),
        StoreType::Pkcs12 => pkcs12_key_store(data, password),
        StoreType::Jks => jks(data, password, true).and_then(|j| {
            j.key
                .ok_or_else(|| "holds no private key entry".to_string())
        }),
    }?;
    if m.chain.is_empty() {
        return Err("holds no certificate for its private key".into());
    }
    Ok(m)
}

/// Reads a truststore's certificates from `data`. Without a password a JKS file's
/// integrity check is skipped, as Java does.
pub fn trust_store(
    data: &[u8],
    kind: StoreType,
    password: Option<&str>,
) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = match kind {
        StoreType::Pem => pem_certs(data),
        StoreType::Pkcs12 => pkcs12_certs(data, password.unwrap_or("")),
        StoreType::Jks => jks(data, password.unwrap_or(""), password.is_some()).map(|j| j.certs),
    }?;
    if certs.is_empty() {
        return Err("holds no certificate".into());
    }
    Ok(certs)
}

fn pem_certs(data: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_slice_iter(data)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("bad PEM certificate: {e}"))
}

fn pem_key_store(data: &[u8]) -> Result<KeyMaterial, String> {
    if data
        .windows(b"ENCRYPTED PRIVATE KEY".len())
        .any(|w| w == b"ENCRYPTED PRIVATE KEY")
    {
        return Err(
            "encrypted PEM private keys are not supported; use an unencrypted PEM key \
             or a PKCS12 / JKS keystore with a password"
                .into(),
        );
    }
    let key =
        PrivateKeyDer::from_pem_slice(data).map_err(|e| format!("no usable private key: {e}"))?;
    Ok(KeyMaterial {
        chain: pem_certs(data)?,
        key,
    })
}

fn pkcs12_key_store(data: &[u8], password: &str) -> Result<KeyMaterial, String> {
    let ks = KeyStore::from_pkcs12(data, password, Pkcs12ImportPolicy::Strict)
        .map_err(|e| format!("cannot open (wrong keystore password?): {e}"))?;
    let (_, chain) = ks
        .private_key_chain()
        .ok_or("holds no private key with its certificate")?;
    Ok(KeyMaterial {
        chain: chain
            .certs()
            .iter()
            .map(|c| CertificateDer::from(c.as_der().to_vec()))
            .collect(),
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(chain.key().as_der().to_vec())),
    })
}

fn pkcs12_certs(data: &[u8], password: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let ks = KeyStore::from_pkcs12(data, password, Pkcs12ImportPolicy::Raw)
        .map_err(|e| format!("cannot open (wrong truststore password?): {e}"))?;
    let mut out = Vec::new();
    for (_, e) in ks.entries() {
        match e {
            KeyStoreEntry::Certificate(c) => out.push(CertificateDer::from(c.as_der().to_vec())),
            KeyStoreEntry::PrivateKeyChain(k) => out.extend(
                k.certs()
                    .iter()
                    .map(|c| CertificateDer::from(c.as_der().to_vec())),
            ),
            KeyStoreEntry::Secret(_) => {}
        }
    }
    Ok(out)
}

/// What a JKS file holds: its first private key entry (with chain) and every certificate.
struct Jks {
    key: Option<KeyMaterial>,
    certs: Vec<CertificateDer<'static>>,
}

struct Bytes<'a>(&'a [u8]);

impl<'a> Bytes<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("truncated JKS file".into());
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u16(&mut self) -> Result<usize, String> {
        let b = self.take(2)?;
        Ok(usize::from(u16::from_be_bytes([b[0], b[1]])))
    }
    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn blob(&mut self) -> Result<&'a [u8], String> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    /// A certificate: its type name (version 2 files only), then its DER.
    fn cert(&mut self, version: u32) -> Result<CertificateDer<'static>, String> {
        if version == 2 {
            let kind_len = self.u16()?;
            let kind = self.take(kind_len)?;
            if kind != b"X.509" {
                return Err(format!(
                    "certificate of type {} (only X.509 is read)",
                    String::from_utf8_lossy(kind)
                ));
            }
        }
        Ok(CertificateDer::from(self.blob()?.to_vec()))
    }
}

fn utf16be(password: &str) -> Vec<u8> {
    password.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

fn sha1(parts: &[&[u8]]) -> digest::Digest {
    let mut ctx = digest::Context::new(&digest::SHA1_FOR_LEGACY_USE_ONLY);
    for p in parts {
        ctx.update(p);
    }
    ctx.finish()
}

/// Java's `KeyStore` of type JKS: magic, version, entries, then SHA-1 over the password
/// (UTF-16BE), "Mighty Aphrodite" and everything before it.
fn jks(data: &[u8], password: &str, check: bool) -> Result<Jks, String> {
    const MAGIC: u32 = 0xfeed_feed;
    if data.len() < 32 {
        return Err("too short for a JKS file".into());
    }
    let (body, mac) = data.split_at(data.len() - 20);
    let mut b = Bytes(body);
    match b.u32()? {
        MAGIC => {}
        0xcece_cece => return Err("JCEKS keystores are not supported; use JKS or PKCS12".into()),
        _ => return Err("not a JKS file (bad magic)".into()),
    }
    let version = b.u32()?;
    if version != 1 && version != 2 {
        return Err(format!("JKS version {version} is not supported"));
    }
    let pw = utf16be(password);
    if check && sha1(&[&pw, b"Mighty Aphrodite", body]).as_ref() != mac {
        return Err("integrity check failed (wrong password?)".into());
    }
    let count = b.u32()?;
    let mut out = Jks {
        key: None,
        certs: Vec::new(),
    };
    for _ in 0..count {
        let entry = b.u32()?;
        let alias_len = b.u16()?;
        b.take(alias_len)?;
        b.take(8)?; // creation date
        match entry {
            1 => {
                let protected = b.blob()?;
                let n = b.u32()?;
                let mut chain = Vec::new();
                for _ in 0..n {
                    chain.push(b.cert(version)?);
                }
                out.certs.extend(chain.iter().cloned());
                if out.key.is_none() {
                    let key = unprotect_key(protected, &pw)?;
                    out.key = Some(KeyMaterial { chain, key });
                }
            }
            2 => out.certs.push(b.cert(version)?),
            t => return Err(format!("unknown JKS entry type {t}")),
        }
    }
    Ok(out)
}

/// Sun's `KeyProtector`: an `EncryptedPrivateKeyInfo` whose data is salt (20 bytes),
/// the key XORed with a SHA-1 chain seeded by the salt, and SHA-1(password, key).
fn unprotect_key(info: &[u8], pw: &[u8]) -> Result<PrivateKeyDer<'static>, String> {
    const SUN_JKS_ALGO: &str = "1.3.6.1.4.1.42.2.17.1.1";
    let seq = Reader::new(info).expect(tag::SEQUENCE, "EncryptedPrivateKeyInfo")?;
    let mut r = Reader::new(seq.content);
    let alg = r.expect(tag::SEQUENCE, "key algorithm")?;
    let oid = der::oid_string(
        Reader::new(alg.content)
            .expect(tag::OID, "algorithm")?
            .content,
    );
    if oid != SUN_JKS_ALGO {
        return Err(format!(
            "private key protected by {oid}, not Sun's JKS key protector"
        ));
    }
    let data = r.expect(tag::OCTET_STRING, "encrypted key")?.content;
    if data.len() < 41 {
        return Err("protected private key too short".into());
    }
    let (salt, rest) = data.split_at(20);
    let (enc, check) = rest.split_at(rest.len() - 20);
    let mut key = Vec::with_capacity(enc.len());
    let mut d = salt.to_vec();
    while key.len() < enc.len() {
        d = sha1(&[pw, &d]).as_ref().to_vec();
        for &x in d.iter().take(enc.len() - key.len()) {
            key.push(enc[key.len()] ^ x);
        }
    }
    if sha1(&[pw, &key]).as_ref() != check {
        return Err("cannot recover the private key (wrong keystore password?)".into());
    }
    Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes a JKS file as Java does, with one key entry protected by Sun's protector.
    fn make_jks(password: &str, key: &[u8], cert: &[u8]) -> Vec<u8> {
        let pw = utf16be(password);
        let salt = [7u8; 20];
        let mut enc = Vec::new();
        let mut d = salt.to_vec();
        while enc.len() < key.len() {
            d = sha1(&[&pw, &d]).as_ref().to_vec();
            for &x in d.iter().take(key.len() - enc.len()) {
                enc.push(key[enc.len()] ^ x);
            }
        }
        let mut data = salt.to_vec();
        data.extend(&enc);
        data.extend(sha1(&[&pw, key]).as_ref());
        let oid = [0x2b, 0x06, 0x01, 0x04, 0x01, 0x2a, 0x02, 0x11, 0x01, 0x01];
        let der = |t: u8, c: &[u8]| {
            let mut v = vec![t, 0x82, (c.len() >> 8) as u8, c.len() as u8];
            v.extend(c);
            v
        };
        let alg = der(0x30, &[der(0x06, &oid), vec![0x05, 0x00]].concat());
        let info = der(0x30, &[alg, der(0x04, &data)].concat());
        let mut f = Vec::new();
        f.extend(0xfeed_feedu32.to_be_bytes());
        f.extend(2u32.to_be_bytes());
        f.extend(1u32.to_be_bytes());
        f.extend(1u32.to_be_bytes());
        f.extend(3u16.to_be_bytes());
        f.extend(b"zk1");
        f.extend(0u64.to_be_bytes());
        f.extend((info.len() as u32).to_be_bytes());
        f.extend(&info);
        f.extend(1u32.to_be_bytes());
        f.extend(5u16.to_be_bytes());
        f.extend(b"X.509");
        f.extend((cert.len() as u32).to_be_bytes());
        f.extend(cert);
        let mac = sha1(&[&pw, b"Mighty Aphrodite", &f]);
        f.extend(mac.as_ref());
        f
    }

    #[test]
    fn jks_round_trip_and_wrong_password() {
        let key = b"0123456789-pkcs8-key-bytes-longer-than-one-sha1-block".to_vec();
        let f = make_jks("secret", &key, b"cert-der");
        let j = jks(&f, "secret", true).unwrap();
        let m = j.key.unwrap();
        assert_eq!(m.key.secret_der(), &key[..]);
        assert_eq!(m.chain[0].as_ref(), b"cert-der");
        assert_eq!(j.certs.len(), 1);
        let e = jks(&f, "wrong", true).err().unwrap();
        assert!(e.contains("integrity"), "{e}");
        // Without the integrity check, the key protector still refuses a wrong password.
        let e = jks(&f, "wrong", false).err().unwrap();
        assert!(e.contains("password"), "{e}");
        for cut in [0, 10, 30, f.len() - 21] {
            assert!(jks(&f[..cut], "secret", false).is_err());
        }
    }

    const KINDS: [StoreType; 3] = [StoreType::Pem, StoreType::Pkcs12, StoreType::Jks];

    /// Every reader on `data`: must return (Ok or Err), never panic.
    fn read_all_ways(data: &[u8]) {
        for kind in KINDS {
            let _ = key_store(data, kind, "secret");
            let _ = trust_store(data, kind, None);
            let _ = trust_store(data, kind, Some("secret"));
        }
    }

    #[test]
    fn truncated_and_corrupt_stores_are_errors_not_panics() {
        let key = b"0123456789-pkcs8-key-bytes-longer-than-one-sha1-block".to_vec();
        let f = make_jks("secret", &key, b"cert-der");
        for cut in 0..f.len() {
            read_all_ways(&f[..cut]);
            assert!(key_store(&f[..cut], StoreType::Jks, "secret").is_err());
        }
        // Any flipped byte fails the integrity check; unchecked, it still never panics.
        for i in 0..f.len() {
            let mut g = f.clone();
            g[i] ^= 0x5a;
            assert!(key_store(&g, StoreType::Jks, "secret").is_err(), "byte {i}");
            read_all_ways(&g);
        }
        // Length and count fields claiming far more than the file holds.
        let mut huge = Vec::new();
        huge.extend(0xfeed_feedu32.to_be_bytes());
        huge.extend(2u32.to_be_bytes());
        huge.extend(u32::MAX.to_be_bytes()); // entries
        huge.extend(1u32.to_be_bytes()); // a key entry
        huge.extend(u16::MAX.to_be_bytes()); // alias length
        huge.extend([0u8; 40]);
        read_all_ways(&huge);
        assert!(trust_store(&huge, StoreType::Jks, None).is_err());
        // Deterministic garbage, and garbage behind each format's first bytes.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for len in [0usize, 1, 7, 32, 33, 100, 1000] {
            let magic = 0xfeed_feedu32.to_be_bytes();
            let prefixes: [&[u8]; 4] = [b"", &magic, b"\x30\x82", b"-----BEGIN CERTIFICATE-----\n"];
            for prefix in prefixes {
                let mut g = prefix.to_vec();
                for _ in 0..len {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    g.push(x as u8);
                }
                read_all_ways(&g);
            }
        }
    }

    #[test]
    fn types_are_inferred_from_the_file_name_as_apache_does() {
        for (name, kind) in [
            ("a.jks", Some(StoreType::Jks)),
            ("a.JKS", Some(StoreType::Jks)),
            ("a.p12", Some(StoreType::Pkcs12)),
            ("a.pfx", Some(StoreType::Pkcs12)),
            ("a.pem", Some(StoreType::Pem)),
            ("a.crt", Some(StoreType::Pem)),
            ("a.keystore", None),
            ("a", None),
        ] {
            assert_eq!(StoreType::from_path(Path::new(name)), kind, "{name}");
        }
        assert_eq!(StoreType::from_name(" pkcs12 "), Some(StoreType::Pkcs12));
        assert_eq!(StoreType::from_name("JCEKS"), None);
    }
}
