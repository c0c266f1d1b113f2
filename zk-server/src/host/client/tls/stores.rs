//! Apache's store keys (`<prefix>keyStore.*`, `<prefix>trustStore.*`) read into rustls
//! material: the file as the keys name it, read by `zk_proto::x509::store` (shared with
//! zk-client), errors naming the key and the file.

use std::path::Path;

use rustls_pki_types::CertificateDer;
use zk_proto::x509::store;

pub use zk_proto::x509::store::KeyMaterial;

use crate::config::tls::StoreSpec;

fn read(path: &Path, key: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{key}.location: cannot read {}: {e}", path.display()))
}

/// Reads `<prefix>keyStore.*` (`prefix` is `ssl.` or `ssl.quorum.`).
pub fn key_store(spec: &StoreSpec, prefix: &str) -> Result<KeyMaterial, String> {
    let key = format!("{prefix}keyStore");
    let kind = spec.store_type(key.trim_start_matches("ssl."))?;
    let path = spec.location.as_deref().unwrap_or(Path::new(""));
    let data = read(path, &key)?;
    store::key_store(&data, kind, spec.password.as_deref().unwrap_or(""))
        .map_err(|e| format!("keystore {} ({kind:?}, {key}.*): {e}", path.display()))
}

/// Reads `<prefix>trustStore.*`: the CA certificates peer certificates must chain to.
pub fn trust_store(spec: &StoreSpec, prefix: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let key = format!("{prefix}trustStore");
    let kind = spec.store_type(key.trim_start_matches("ssl."))?;
    let path = spec.location.as_deref().unwrap_or(Path::new(""));
    let data = read(path, &key)?;
    store::trust_store(&data, kind, spec.password.as_deref())
        .map_err(|e| format!("truststore {} ({kind:?}, {key}.*): {e}", path.display()))
}
