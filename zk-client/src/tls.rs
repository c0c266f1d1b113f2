//! TLS settings for connections to an ensemble's `secureClientPort` (rustls, ring provider).
//!
//! ```no_run
//! use zk_client::{Client, TlsConfig};
//! # async fn f() -> zk_client::Result<()> {
//! let ca = std::fs::read("ca.pem").unwrap();
//! let tls = TlsConfig::new(&ca)
//!     .client_cert(&std::fs::read("client.pem").unwrap(), &std::fs::read("client.key").unwrap());
//! let client = Client::builder("zk1:2281,zk2:2281").tls(tls).connect().await?;
//! # Ok(()) }
//! ```

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use crate::error::{Error, Result};

/// TLS settings: the CA bundle that signs the servers' certificates, an optional client
/// certificate (for `ssl.clientAuth=need`), hostname verification (on by default) and an
/// optional server name override. Everything is PEM; keystores (JKS/PKCS12) are not read:
/// convert them with `openssl pkcs12 -in ks.p12 -nodes`.
#[derive(Clone)]
pub struct TlsConfig {
    ca_pem: Vec<u8>,
    client: Option<(Vec<u8>, Vec<u8>)>,
    verify_hostname: bool,
    server_name: Option<String>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the private key.
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
            ca_pem: ca_pem.to_vec(),
            client: None,
            verify_hostname: true,
            server_name: None,
        }
    }

    /// Presents this certificate chain (leaf first) and PKCS#8, PKCS#1 or SEC1 private key.
    pub fn client_cert(mut self, chain_pem: &[u8], key_pem: &[u8]) -> Self {
        self.client = Some((chain_pem.to_vec(), key_pem.to_vec()));
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

    /// Parses the PEM and builds the connector (at `build`, so bad files fail early).
    pub(crate) fn connector(&self) -> Result<Connector> {
        let bad = |what: String| Error::InvalidConfig(format!("tls: {what}"));
        // ring, not aws-lc-rs: no cmake/C toolchain beyond cc. Its provider is deprecated
        // only for lacking post-quantum key exchange, which ZooKeeper servers do not offer.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&self.ca_pem) {
            let cert = cert.map_err(|e| bad(format!("CA bundle: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| bad(format!("CA certificate: {e}")))?;
        }
        if roots.is_empty() {
            return Err(bad("CA bundle has no CERTIFICATE block".into()));
        }
        let verifier =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| bad(format!("CA bundle: {e}")))?;
        let verifier: Arc<dyn ServerCertVerifier> = if self.verify_hostname {
            verifier
        } else {
            Arc::new(AnyName(verifier))
        };
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| bad(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let config = match &self.client {
            None => builder.with_no_client_auth(),
            Some((chain_pem, key_pem)) => {
                let chain = CertificateDer::pem_slice_iter(chain_pem)
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|e| bad(format!("client certificate: {e}")))?;
                if chain.is_empty() {
                    return Err(bad("client certificate has no CERTIFICATE block".into()));
                }
                let key = PrivateKeyDer::from_pem_slice(key_pem)
                    .map_err(|e| bad(format!("client key: {e}")))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| bad(format!("client certificate and key: {e}")))?
            }
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
