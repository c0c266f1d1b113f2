//! TLS from Apache's keys: the rustls configurations built from `ssl.*` (the client
//! port) or `ssl.quorum.*` (the links between ensemble members, which also dial: a client
//! configuration presenting our certificate, and both ends checking the other's address
//! against its certificate as `QuorumX509Util` does), rebuilt when a store file changes
//! (certificate rotation without a restart), and the `x509` identity of a client that
//! presented a certificate.

/// Keystore and truststore files (also read by the `zkcli` binary for its client side).
pub mod stores;
use zk_proto::x509::v1;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use zk_proto::Id;

use crate::config::tls::{ClientAuth, SslConfig, TlsVersion};

/// What identifies one version of a file (a rotation usually renames a new file in place,
/// which changes the inode; an in-place rewrite changes the time or size).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    #[cfg(unix)]
    inode: u64,
}

fn stamp(path: &PathBuf) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    Some(Stamp {
        modified: m.modified().ok(),
        len: m.len(),
        #[cfg(unix)]
        inode: std::os::unix::fs::MetadataExt::ino(&m),
    })
}

/// The host names of the ensemble's members by address (from their `server.N` lines):
/// a member's certificate may name its host rather than its address.
#[derive(Debug, Clone, Default)]
pub struct PeerNames(BTreeMap<IpAddr, Vec<String>>);

impl PeerNames {
    /// Records that `host` is at `ip`.
    pub fn add(&mut self, ip: IpAddr, host: &str) {
        let names = self.0.entry(ip).or_default();
        if host.parse::<IpAddr>().is_err() && !names.iter().any(|n| n == host) {
            names.push(host.to_owned());
        }
    }

    /// The names a certificate of a peer at `ip` may carry instead of the address:
    /// its configured host names, and `localhost` for a loopback address (what Java's
    /// reverse lookup gives there).
    fn of(&self, ip: IpAddr) -> Vec<String> {
        let mut v = self.0.get(&ip).cloned().unwrap_or_default();
        if ip.is_loopback() && !v.iter().any(|n| n == "localhost") {
            v.push("localhost".to_owned());
        }
        v
    }

    /// Whether `cert` is valid for a peer at `ip` (its address, else one of its names),
    /// as Java's `ZKTrustManager` checks a quorum peer.
    fn matches(&self, cert: &CertificateDer<'_>, ip: IpAddr) -> bool {
        let Ok(parsed) = ParsedCertificate::try_from(cert) else {
            return false;
        };
        if rustls::client::verify_server_name(&parsed, &ServerName::IpAddress(ip.into())).is_ok() {
            return true;
        }
        self.of(ip).iter().any(|n| {
            ServerName::try_from(n.as_str())
                .is_ok_and(|name| rustls::client::verify_server_name(&parsed, &name).is_ok())
        })
    }
}

/// Checks a member's certificate when we dial it: the chain against the quorum
/// truststore, and (with `ssl.quorum.hostnameVerification`) its address or host name.
#[derive(Debug)]
struct PeerVerifier {
    inner: Arc<WebPkiServerVerifier>,
    names: Arc<PeerNames>,
    verify_names: bool,
}

impl ServerCertVerifier for PeerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // The chain is checked before the name: a name error means a trusted chain.
        match self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.verify_names => Ok(ServerCertVerified::assertion()),
            Err(
                e @ rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName
                    | CertificateError::NotValidForNameContext { .. },
                ),
            ) => match server_name {
                ServerName::IpAddress(ip) if self.names.matches(end_entity, (*ip).into()) => {
                    Ok(ServerCertVerified::assertion())
                }
                _ => Err(e),
            },
            r => r,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// TLS settings and the configurations currently in force: the acceptor's, and for the
/// quorum links the dialer's too.
pub struct TlsContext {
    ssl: SslConfig,
    /// Quorum links only: the members' names, for the dialer and for checking a peer.
    peers: Option<Arc<PeerNames>>,
    current: RwLock<Arc<ServerConfig>>,
    client: RwLock<Option<Arc<ClientConfig>>>,
}

impl std::fmt::Debug for TlsContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsContext")
            .field("key_store", &self.ssl.key_store.location)
            .field("trust_store", &self.ssl.trust_store.location)
            .finish()
    }
}

/// The ring provider restricted to `ssl.ciphersuites`.
fn provider(ssl: &SslConfig) -> Arc<CryptoProvider> {
    // ring, as zk-client: deprecated only for lacking post-quantum key exchange, which
    // Java clients do not offer either.
    #[allow(deprecated)]
    let mut p = rustls::crypto::ring::default_provider();
    if let Some(wanted) = &ssl.cipher_suites {
        // Java lists TLS 1.3 suites as TLS_AES_..., rustls as TLS13_AES_....
        let java_name =
            |s: &rustls::SupportedCipherSuite| format!("{:?}", s.suite()).replace("TLS13_", "TLS_");
        p.cipher_suites.retain(|s| wanted.contains(&java_name(s)));
    }
    Arc::new(p)
}

fn versions(ssl: &SslConfig) -> Vec<&'static rustls::SupportedProtocolVersion> {
    ssl.versions
        .iter()
        .map(|v| match v {
            TlsVersion::V12 => &rustls::version::TLS12,
            TlsVersion::V13 => &rustls::version::TLS13,
        })
        .collect()
}

/// The truststore's CAs.
fn roots(ssl: &SslConfig) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for (i, c) in stores::trust_store(&ssl.trust_store, ssl.prefix)?
        .into_iter()
        .enumerate()
    {
        roots.add(c).map_err(|e| {
            format!(
                "truststore {}: certificate {} is not a usable CA: {e}",
                ssl.trust_store
                    .location
                    .as_deref()
                    .unwrap_or(std::path::Path::new(""))
                    .display(),
                i + 1
            )
        })?;
    }
    Ok(roots)
}

fn key_path(ssl: &SslConfig) -> std::path::Display<'_> {
    ssl.key_store
        .location
        .as_deref()
        .unwrap_or(std::path::Path::new(""))
        .display()
}

/// Builds the rustls server configuration from the stores on disk.
fn build(ssl: &SslConfig) -> Result<ServerConfig, String> {
    let provider = provider(ssl);
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions(ssl))
        .map_err(|e| {
            format!(
                "{} / {}: {e}",
                ssl.key("ciphersuites"),
                ssl.key("enabledProtocols")
            )
        })?;
    let builder = match ssl.client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        auth => {
            let roots = Arc::new(roots(ssl)?);
            let v = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone());
            let v = match auth {
                ClientAuth::Want => v.allow_unauthenticated(),
                _ => v,
            };
            let inner = v
                .build()
                .map_err(|e| format!("client certificate verifier: {e}"))?;
            // Version 1 client certificates as Java accepts them (see `v1`).
            builder.with_client_cert_verifier(Arc::new(v1::ClientVerifier {
                inner,
                roots,
                algs: provider.signature_verification_algorithms,
            }))
        }
    };
    let keys = stores::key_store(&ssl.key_store, ssl.prefix)?;
    let key = v1::certified_key(&provider, keys.chain, keys.key)
        .map_err(|e| format!("keystore {}: {e}", key_path(ssl)))?;
    Ok(builder.with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(key))))
}

/// Builds the dialer's configuration of a quorum link: our certificate for the peer's
/// check, the peer's checked by [`PeerVerifier`].
fn build_client(ssl: &SslConfig, names: &Arc<PeerNames>) -> Result<ClientConfig, String> {
    let provider = provider(ssl);
    let inner =
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots(ssl)?), provider.clone())
            .build()
            .map_err(|e| format!("peer certificate verifier: {e}"))?;
    let verifier = Arc::new(PeerVerifier {
        inner,
        names: names.clone(),
        verify_names: ssl.hostname_verification,
    });
    let keys = stores::key_store(&ssl.key_store, ssl.prefix)?;
    ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions(ssl))
        .map_err(|e| {
            format!(
                "{} / {}: {e}",
                ssl.key("ciphersuites"),
                ssl.key("enabledProtocols")
            )
        })?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(keys.chain, keys.key)
        .map_err(|e| format!("keystore {}: {e}", key_path(ssl)))
}

/// Both configurations of a context.
fn build_all(
    ssl: &SslConfig,
    peers: Option<&Arc<PeerNames>>,
) -> Result<(ServerConfig, Option<ClientConfig>), String> {
    let server = build(ssl)?;
    let client = peers.map(|p| build_client(ssl, p)).transpose()?;
    Ok((server, client))
}

impl TlsContext {
    /// Reads the stores; an error names the file and the cause.
    pub fn new(ssl: &SslConfig) -> Result<Arc<TlsContext>, String> {
        Self::with_peers(ssl, None)
    }

    /// The context of the quorum links (`ssl.quorum.*`): it also dials, and checks a
    /// peer's certificate against its address or one of `names`.
    pub fn for_quorum(ssl: &SslConfig, names: PeerNames) -> Result<Arc<TlsContext>, String> {
        Self::with_peers(ssl, Some(Arc::new(names)))
    }

    fn with_peers(
        ssl: &SslConfig,
        peers: Option<Arc<PeerNames>>,
    ) -> Result<Arc<TlsContext>, String> {
        ssl.validate()?;
        let (server, client) = build_all(ssl, peers.as_ref())?;
        Ok(Arc::new(TlsContext {
            ssl: ssl.clone(),
            peers,
            current: RwLock::new(Arc::new(server)),
            client: RwLock::new(client.map(Arc::new)),
        }))
    }

    /// The settings this context was built from.
    pub fn settings(&self) -> &SslConfig {
        &self.ssl
    }

    /// A connector with the certificates currently in force (quorum contexts only).
    pub fn connector(&self) -> Option<TlsConnector> {
        let c = self.client.read().unwrap_or_else(|e| e.into_inner());
        c.clone().map(TlsConnector::from)
    }

    /// Quorum links: whether a peer that connected from `ip` presented a certificate
    /// valid for that address (or a name of it), when `ssl.quorum.hostnameVerification`
    /// asks (Java's `QuorumX509Util` checks the connecting member too). Err: why not.
    pub fn check_peer_name(
        &self,
        ip: IpAddr,
        chain: Option<&[CertificateDer<'_>]>,
    ) -> Result<(), String> {
        let Some(peers) = &self.peers else {
            return Ok(());
        };
        if !self.ssl.hostname_verification {
            return Ok(());
        }
        match chain.and_then(|c| c.first()) {
            // Without a certificate the verifier has already decided (clientAuth=want/none).
            None => Ok(()),
            Some(cert) if peers.matches(cert, ip) => Ok(()),
            Some(_) => Err(format!(
                "its certificate is not valid for {ip}{} ({} is on)",
                match peers.of(ip).as_slice() {
                    [] => String::new(),
                    names => format!(" nor for {}", names.join(", ")),
                },
                self.ssl.key("hostnameVerification")
            )),
        }
    }

    /// An acceptor with the certificates currently in force.
    pub fn acceptor(&self) -> TlsAcceptor {
        let c = self.current.read().unwrap_or_else(|e| e.into_inner());
        TlsAcceptor::from(c.clone())
    }

    /// How long a connection may take to show how it speaks and finish its handshake.
    pub fn handshake_timeout(&self) -> Duration {
        self.ssl.handshake_timeout
    }

    fn files(&self) -> Vec<PathBuf> {
        let mut v = Vec::new();
        v.extend(self.ssl.key_store.location.clone());
        if self.ssl.client_auth != ClientAuth::None || self.peers.is_some() {
            v.extend(self.ssl.trust_store.location.clone());
        }
        v
    }

    /// Re-reads the stores whenever one of their files changes, as Apache's
    /// `FileChangeWatcher` does; a store that cannot be read leaves the previous
    /// certificates in force. Runs until dropped.
    pub async fn watch(self: Arc<Self>) {
        let files = self.files();
        let mut seen: Vec<Option<Stamp>> = files.iter().map(stamp).collect();
        let mut tick = tokio::time::interval(self.ssl.reload_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now: Vec<Option<Stamp>> = files.iter().map(stamp).collect();
            let changed: Vec<String> = files
                .iter()
                .zip(seen.iter().zip(now.iter()))
                .filter(|(_, (a, b))| a != b)
                .map(|(f, _)| f.display().to_string())
                .collect();
            if changed.is_empty() {
                continue;
            }
            let ssl = self.ssl.clone();
            let peers = self.peers.clone();
            match tokio::task::spawn_blocking(move || build_all(&ssl, peers.as_ref())).await {
                Ok(Ok((server, client))) => {
                    *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(server);
                    *self.client.write().unwrap_or_else(|e| e.into_inner()) = client.map(Arc::new);
                    tracing::info!(
                        "TLS: {} changed, reloaded the {} certificates",
                        changed.join(", "),
                        if self.peers.is_some() {
                            "quorum links'"
                        } else {
                            "client port's"
                        }
                    );
                    seen = now;
                }
                // A half-written file: keep serving the old certificates and retry at the
                // next tick (`seen` is left as is, so the change is seen again).
                Ok(Err(e)) => tracing::warn!(
                    "TLS: {} changed but cannot be loaded, keeping the previous \
                     certificates: {e}",
                    changed.join(", ")
                ),
                Err(e) => tracing::error!("TLS: reloading {} failed: {e}", changed.join(", ")),
            }
        }
    }

    /// The identities of a client from its certificate chain (Apache's
    /// `X509AuthenticationProvider`): `x509:<subject DN>`, and `super:<DN>` when the DN is
    /// `X509AuthenticationProvider.superUser`. None without a certificate.
    pub fn identities(
        &self,
        chain: Option<&[rustls_pki_types::CertificateDer<'_>]>,
    ) -> Result<Vec<Id>, String> {
        let Some(cert) = chain.and_then(|c| c.first()) else {
            return Ok(Vec::new());
        };
        let dn = zk_proto::x509::der::rfc2253(zk_proto::x509::der::subject(cert.as_ref())?)?;
        let mut ids = Vec::new();
        if self.ssl.x509_super_user.as_deref() == Some(dn.as_str()) {
            ids.push(Id::new("super", dn.clone()));
        }
        ids.push(Id::new("x509", dn));
        Ok(ids)
    }
}
