//! TLS settings for connections to an ensemble's `secureClientPort` (rustls, ring provider).
//!
//! ```no_run
//! use zk_client::{Client, TlsConfig};
//! # async fn f() -> zk_client::Result<()> {
//! let ca = std::fs::read("ca.pem").unwrap();
//! let tls = TlsConfig::new(&ca)
//!     .client_cert(&std::fs::read("client.pem").unwrap(), &std::fs::read("client.key").unwrap());
//! let client = Client::builder("zk1:2281,zk2:2281").tls(tls).connect().await?;
//! // Or Java's stores, as a Java client's `zookeeper.ssl.*` properties name them:
//! let tls = TlsConfig::trust_store("truststore.jks", Some("secret"))
//!     .key_store("keystore.jks", Some("secret"));
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use zk_proto::x509::store::{self, KeyMaterial};

pub use zk_proto::x509::store::StoreType;

use crate::error::{Error, Result};

/// TLS settings: the CA certificates that sign the servers' certificates (PEM, or a
/// truststore file), an optional client certificate (for `ssl.clientAuth=need`: PEM, or a
/// keystore file), hostname verification (on by default) and an optional server name
/// override. Store files are JKS, PKCS12 or PEM, the type inferred from the extension as
/// Apache infers it (`.jks`, `.p12`/`.pfx`, `.pem`/`.crt`) unless given.
#[derive(Clone)]
pub struct TlsConfig {
    trust: Trust,
    client: Option<ClientKeys>,
    verify_hostname: bool,
    server_name: Option<String>,
}

/// Where the CA certificates come from.
#[derive(Clone)]
enum Trust {
    Pem(Vec<u8>),
    Store(StoreFile),
}

/// Where the client certificate and key come from.
#[derive(Clone)]
enum ClientKeys {
    Pem(Vec<u8>, Vec<u8>),
    Store(StoreFile),
}

/// A keystore or truststore file, read when the client is built.
#[derive(Clone)]
struct StoreFile {
    path: PathBuf,
    kind: Option<StoreType>,
    password: Option<String>,
}

impl StoreFile {
    fn new(path: &Path, password: Option<&str>) -> StoreFile {
        StoreFile {
            path: path.to_owned(),
            kind: None,
            password: password.map(str::to_owned),
        }
    }

    /// The file's bytes and type; errors name the file.
    fn read(&self, what: &str) -> std::result::Result<(Vec<u8>, StoreType), String> {
        let kind = self
            .kind
            .or_else(|| StoreType::from_path(&self.path))
            .ok_or_else(|| {
                format!(
                    "{what} {}: cannot infer its type from the file name (use .jks, .p12, \
                     .pfx, .pem or .crt, or give the type)",
                    self.path.display()
                )
            })?;
        let data = std::fs::read(&self.path)
            .map_err(|e| format!("{what} {}: cannot read: {e}", self.path.display()))?;
        Ok((data, kind))
    }
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the private key or a password.
        f.debug_struct("TlsConfig")
            .field("client_cert", &self.client.is_some())
            .field("verify_hostname", &self.verify_hostname)
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl TlsConfig {
    /// Trusts the CA certificates in `ca_pem` (one or more `CERTIFICATE` blocks).
    pub fn new(ca_pem: &[u8]) -> Self {
        TlsConfig {
            trust: Trust::Pem(ca_pem.to_vec()),
            client: None,
            verify_hostname: true,
            server_name: None,
        }
    }

    /// Trusts the certificates of a truststore file (Apache's `zookeeper.ssl.trustStore.*`):
    /// JKS, PKCS12 or PEM by its extension. Without a password a JKS file's integrity
    /// check is skipped, as Java does. Read when the client is built.
    pub fn trust_store(path: impl AsRef<Path>, password: Option<&str>) -> Self {
        TlsConfig {
            trust: Trust::Store(StoreFile::new(path.as_ref(), password)),
            client: None,
            verify_hostname: true,
            server_name: None,
        }
    }

    /// The truststore's type, for a file whose extension does not tell (no effect on PEM
    /// given with [`TlsConfig::new`]).
    pub fn trust_store_type(mut self, kind: StoreType) -> Self {
        if let Trust::Store(f) = &mut self.trust {
            f.kind = Some(kind);
        }
        self
    }

    /// Presents this certificate chain (leaf first) and PKCS#8, PKCS#1 or SEC1 private key.
    pub fn client_cert(mut self, chain_pem: &[u8], key_pem: &[u8]) -> Self {
        self.client = Some(ClientKeys::Pem(chain_pem.to_vec(), key_pem.to_vec()));
        self
    }

    /// Presents the first private key and its chain from a keystore file (Apache's
    /// `zookeeper.ssl.keyStore.*`): JKS, PKCS12 or PEM by its extension. Read when the
    /// client is built.
    pub fn key_store(mut self, path: impl AsRef<Path>, password: Option<&str>) -> Self {
        self.client = Some(ClientKeys::Store(StoreFile::new(path.as_ref(), password)));
        self
    }

    /// The keystore's type, for a file whose extension does not tell.
    pub fn key_store_type(mut self, kind: StoreType) -> Self {
        if let Some(ClientKeys::Store(f)) = &mut self.client {
            f.kind = Some(kind);
        }
        self
    }

    /// Whether the server certificate must name the host connected to (default: true).
    /// Turning it off still checks the chain against the CA; it only accepts any name, as
    /// Apache's `zookeeper.ssl.hostnameVerification=false` does.
    pub fn verify_hostname(mut self, on: bool) -> Self {
        self.verify_hostname = on;
        self
    }

    /// Checks every server's certificate against this name instead of the host of the
    /// connect string (e.g. connecting by IP to servers whose certificates carry a DNS name).
    pub fn server_name(mut self, name: &str) -> Self {
        self.server_name = Some(name.to_owned());
        self
    }

    /// The CA certificates.
    fn roots(&self) -> std::result::Result<Vec<CertificateDer<'static>>, String> {
        match &self.trust {
            Trust::Pem(pem) => {
                let certs = CertificateDer::pem_slice_iter(pem)
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|e| format!("CA bundle: {e}"))?;
                if certs.is_empty() {
                    return Err("CA bundle has no CERTIFICATE block".into());
                }
                Ok(certs)
            }
            Trust::Store(f) => {
                let (data, kind) = f.read("truststore")?;
                store::trust_store(&data, kind, f.password.as_deref())
                    .map_err(|e| format!("truststore {} ({kind:?}): {e}", f.path.display()))
            }
        }
    }

    /// The client certificate chain and key, if any.
    fn client_keys(&self) -> std::result::Result<Option<KeyMaterial>, String> {
        match &self.client {
            None => Ok(None),
            Some(ClientKeys::Pem(chain_pem, key_pem)) => {
                let chain = CertificateDer::pem_slice_iter(chain_pem)
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|e| format!("client certificate: {e}"))?;
                if chain.is_empty() {
                    return Err("client certificate has no CERTIFICATE block".into());
                }
                let key = PrivateKeyDer::from_pem_slice(key_pem)
                    .map_err(|e| format!("client key: {e}"))?;
                Ok(Some(KeyMaterial { chain, key }))
            }
            Some(ClientKeys::Store(f)) => {
                let (data, kind) = f.read("keystore")?;
                store::key_store(&data, kind, f.password.as_deref().unwrap_or(""))
                    .map(Some)
                    .map_err(|e| format!("keystore {} ({kind:?}): {e}", f.path.display()))
            }
        }
    }

    /// Reads the certificates and builds the connector (at `build`, so bad files fail
    /// early).
    pub(crate) fn connector(&self) -> Result<Connector> {
        let bad = |what: String| Error::InvalidConfig(format!("tls: {what}"));
        // ring, not aws-lc-rs: no cmake/C toolchain beyond cc. Its provider is deprecated
        // only for lacking post-quantum key exchange, which ZooKeeper servers do not offer.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        for cert in self.roots().map_err(bad)? {
            roots
                .add(cert)
                .map_err(|e| bad(format!("CA certificate: {e}")))?;
        }
        let roots = Arc::new(roots);
        let verifier = WebPkiServerVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(|e| bad(format!("CA bundle: {e}")))?;
        let inner: Arc<dyn ServerCertVerifier> = if self.verify_hostname {
            verifier
        } else {
            Arc::new(AnyName(verifier))
        };
        // Version 1 server certificates as Java's client accepts them (webpki refuses
        // them); every v3 certificate still goes to webpki.
        let verifier: Arc<dyn ServerCertVerifier> = Arc::new(zk_proto::x509::v1::ServerVerifier {
            inner,
            roots,
            algs: provider.signature_verification_algorithms,
            check_name: self.verify_hostname,
        });
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| bad(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let config = match self.client_keys().map_err(bad)? {
            None => builder.with_no_client_auth(),
            Some(m) => builder
                .with_client_auth_cert(m.chain, m.key)
                .map_err(|e| bad(format!("client certificate and key: {e}")))?,
        };
        let server_name = match &self.server_name {
            Some(n) => Some(
                ServerName::try_from(n.clone())
                    .map_err(|e| bad(format!("server name {n:?}: {e}")))?,
            ),
            None => None,
        };
        Ok(Connector {
            inner: tokio_rustls::TlsConnector::from(Arc::new(config)),
            server_name,
        })
    }
}

/// A parsed [`TlsConfig`], shared by every connection attempt of a client.
#[derive(Clone)]
pub(crate) struct Connector {
    pub inner: tokio_rustls::TlsConnector,
    server_name: Option<ServerName<'static>>,
}

impl Connector {
    /// The name the certificate of `host` must carry.
    pub fn name_for(&self, host: &str) -> std::result::Result<ServerName<'static>, String> {
        match &self.server_name {
            Some(n) => Ok(n.clone()),
            None => ServerName::try_from(host.to_owned())
                .map_err(|e| format!("{host:?} is not a valid TLS server name: {e}")),
        }
    }
}

/// Full chain verification, any subject name (hostname verification turned off).
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        // webpki checks the chain before the name, so a name error means the chain is good.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}
