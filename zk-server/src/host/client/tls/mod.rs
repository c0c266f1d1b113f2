//! TLS on the client port: the rustls server configuration built from Apache's `ssl.*`
//! keys, rebuilt when a store file changes (certificate rotation without a restart), and
//! the `x509` identity of a client that presented a certificate.

mod der;
/// Keystore and truststore files (also read by the `zkcli` binary for its client side).
pub mod stores;

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;
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

/// The client port's TLS settings and the server configuration currently in force.
pub struct TlsContext {
    ssl: SslConfig,
    current: RwLock<Arc<ServerConfig>>,
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

/// Builds the rustls server configuration from the stores on disk.
fn build(ssl: &SslConfig) -> Result<ServerConfig, String> {
    let provider = provider(ssl);
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = ssl
        .versions
        .iter()
        .map(|v| match v {
            TlsVersion::V12 => &rustls::version::TLS12,
            TlsVersion::V13 => &rustls::version::TLS13,
        })
        .collect();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| format!("ssl.ciphersuites / ssl.enabledProtocols: {e}"))?;
    let builder = match ssl.client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        auth => {
            let mut roots = RootCertStore::empty();
            for (i, c) in stores::trust_store(&ssl.trust_store)?
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
            let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let v = match auth {
                ClientAuth::Want => v.allow_unauthenticated(),
                _ => v,
            };
            builder.with_client_cert_verifier(
                v.build()
                    .map_err(|e| format!("client certificate verifier: {e}"))?,
            )
        }
    };
    let keys = stores::key_store(&ssl.key_store)?;
    builder.with_single_cert(keys.chain, keys.key).map_err(|e| {
        format!(
            "keystore {}: {e}",
            ssl.key_store
                .location
                .as_deref()
                .unwrap_or(std::path::Path::new(""))
                .display()
        )
    })
}

impl TlsContext {
    /// Reads the stores; an error names the file and the cause.
    pub fn new(ssl: &SslConfig) -> Result<Arc<TlsContext>, String> {
        ssl.validate()?;
        let config = build(ssl)?;
        Ok(Arc::new(TlsContext {
            ssl: ssl.clone(),
            current: RwLock::new(Arc::new(config)),
        }))
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
        if self.ssl.client_auth != ClientAuth::None {
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
            match tokio::task::spawn_blocking(move || build(&ssl)).await {
                Ok(Ok(config)) => {
                    *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(config);
                    tracing::info!(
                        "TLS: {} changed, reloaded the client port's certificates",
                        changed.join(", ")
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
        let dn = der::rfc2253(der::subject(cert.as_ref())?)?;
        let mut ids = Vec::new();
        if self.ssl.x509_super_user.as_deref() == Some(dn.as_str()) {
            ids.push(Id::new("super", dn.clone()));
        }
        ids.push(Id::new("x509", dn));
        Ok(ids)
    }
}
