//! The I/O half of a Kerberos login, run by the driver off the async executor when a
//! connection is made: the server's canonical host name (reverse and forward DNS, as
//! Java's `InetAddress.getCanonicalHostName`), the client's credentials (acquired once per
//! client and reused), and the first token (a service ticket from the KDC). What follows
//! is computation only and runs in the session.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use crate::sasl::GssapiConfig;

#[cfg(feature = "kerberos")]
pub(crate) use zk_proto::gssapi::SaslClient as GssClient;

/// Stand-in when built without Kerberos: no value exists, every start fails.
#[cfg(not(feature = "kerberos"))]
#[derive(Debug)]
pub(crate) enum GssClient {}

#[cfg(not(feature = "kerberos"))]
impl GssClient {
    pub(crate) fn step(&mut self, _: &[u8]) -> Result<Option<Vec<u8>>, String> {
        match *self {}
    }
    pub(crate) fn is_complete(&self) -> bool {
        match *self {}
    }
    pub(crate) fn principal(&self) -> &str {
        match *self {}
    }
}

/// A started exchange: the client and its first token, or why it could not start.
pub(crate) type GssStart = Result<(Box<GssClient>, Vec<u8>), String>;

/// Credentials shared by a client's connections.
#[cfg(feature = "kerberos")]
pub(crate) type CredsCache = Arc<Mutex<Option<Arc<zk_proto::gssapi::Credentials>>>>;
/// Credentials shared by a client's connections (none without Kerberos).
#[cfg(not(feature = "kerberos"))]
pub(crate) type CredsCache = Arc<Mutex<Option<()>>>;

/// The host part of the server principal for a connection to `host` (as written) that
/// reached `peer`.
#[cfg_attr(not(feature = "kerberos"), allow(dead_code))]
pub(crate) fn principal_host(cfg: &GssapiConfig, host: &str, peer: SocketAddr) -> String {
    if !cfg.canonicalize {
        return host.to_owned();
    }
    match canonical_name(peer) {
        Some(name) if name != peer.ip().to_string() => name,
        _ => host.to_owned(),
    }
}

/// Reverse lookup of `peer`, kept only if the name resolves back to the same address.
#[cfg_attr(not(feature = "kerberos"), allow(dead_code))]
fn canonical_name(peer: SocketAddr) -> Option<String> {
    let name = reverse_lookup(peer)?;
    let forward = std::net::ToSocketAddrs::to_socket_addrs(&(name.as_str(), 0)).ok()?;
    forward
        .map(|a| a.ip())
        .any(|ip| ip == peer.ip())
        .then_some(name)
}

#[cfg(feature = "kerberos")]
fn reverse_lookup(peer: SocketAddr) -> Option<String> {
    let ip = peer.ip();
    let mut host = [0 as libc::c_char; 1025];
    // SAFETY: sockaddr structs built here live across the call; host is a sized buffer.
    let rc = unsafe {
        match ip {
            std::net::IpAddr::V4(v4) => {
                let mut sa: libc::sockaddr_in = std::mem::zeroed();
                sa.sin_family = libc::AF_INET as libc::sa_family_t;
                sa.sin_addr.s_addr = u32::from_ne_bytes(v4.octets());
                libc::getnameinfo(
                    &sa as *const _ as *const libc::sockaddr,
                    std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
                    host.as_mut_ptr(),
                    host.len() as libc::socklen_t,
                    std::ptr::null_mut(),
                    0,
                    libc::NI_NAMEREQD,
                )
            }
            std::net::IpAddr::V6(v6) => {
                let mut sa: libc::sockaddr_in6 = std::mem::zeroed();
                sa.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                sa.sin6_addr.s6_addr = v6.octets();
                libc::getnameinfo(
                    &sa as *const _ as *const libc::sockaddr,
                    std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
                    host.as_mut_ptr(),
                    host.len() as libc::socklen_t,
                    std::ptr::null_mut(),
                    0,
                    libc::NI_NAMEREQD,
                )
            }
        }
    };
    if rc != 0 {
        return None;
    }
    // SAFETY: getnameinfo wrote a NUL-terminated name into host.
    let name = unsafe { std::ffi::CStr::from_ptr(host.as_ptr()) };
    name.to_str().ok().map(str::to_owned)
}

#[cfg(not(feature = "kerberos"))]
#[allow(dead_code)]
fn reverse_lookup(_: SocketAddr) -> Option<String> {
    None
}

/// Blocking: starts the exchange with the server reached at `peer` (named `host`).
#[cfg(feature = "kerberos")]
pub(crate) fn start(
    cfg: &GssapiConfig,
    host: &str,
    peer: SocketAddr,
    cache: &CredsCache,
) -> GssStart {
    use zk_proto::gssapi::{Credentials, SaslClient};
    let creds = {
        let mut slot = cache
            .lock()
            .map_err(|_| "credential cache poisoned".to_owned())?;
        match &*slot {
            Some(c) => c.clone(),
            None => {
                let c = Arc::new(
                    Credentials::initiator(&cfg.login)
                        .map_err(|e| format!("Kerberos login failed: {e}"))?,
                );
                *slot = Some(c.clone());
                c
            }
        }
    };
    let server = cfg.server_principal(&principal_host(cfg, host, peer), creds.principal());
    match SaslClient::start(creds, &server) {
        Ok((c, token)) => Ok((Box::new(c), token)),
        Err(e) => {
            // Expired or revoked credentials: get fresh ones on the next attempt.
            if let Ok(mut slot) = cache.lock() {
                *slot = None;
            }
            Err(e)
        }
    }
}

/// Without Kerberos support every start fails with the reason.
#[cfg(not(feature = "kerberos"))]
pub(crate) fn start(_: &GssapiConfig, _: &str, _: SocketAddr, _: &CredsCache) -> GssStart {
    Err("zk-client was built without the `kerberos` feature: GSSAPI logins are unavailable".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_principal_as_java_forms_it() {
        let cfg = GssapiConfig::keytab("alice@EXAMPLE.COM", "/k");
        assert_eq!(
            cfg.server_principal("zk1.example.com", "alice@EXAMPLE.COM"),
            "zookeeper/zk1.example.com@EXAMPLE.COM"
        );
        let cfg = cfg.service_name("zk").server_realm("OTHER");
        assert_eq!(cfg.server_principal("h", "alice@EXAMPLE.COM"), "zk/h@OTHER");
        let lo: SocketAddr = "127.0.0.1:2181".parse().unwrap();
        let off = GssapiConfig::keytab("a", "/k").canonicalize_hostname(false);
        assert_eq!(principal_host(&off, "127.0.0.1", lo), "127.0.0.1");
    }

    #[cfg(feature = "kerberos")]
    #[test]
    fn loopback_canonicalises_to_its_name() {
        // /etc/hosts maps 127.0.0.1 to localhost on every Debian machine.
        let lo: SocketAddr = "127.0.0.1:2181".parse().unwrap();
        let on = GssapiConfig::keytab("a", "/k");
        assert_eq!(principal_host(&on, "127.0.0.1", lo), "localhost");
    }
}
