//! Accepts client connections on the plain, TLS-only (`secureClientPort`) and unified
//! (`client.portUnification`) ports, and enforces `maxClientCnxns` per client IP.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;

use super::connection::{self, ConnSettings, Peer, Throttle};
use super::tls::TlsContext;
use super::ClientMsg;
use crate::admin::stats::NetCounters;
use crate::config::ServerConfig;
use crate::error::{Result, ServerError};

/// Live connections per client IP.
#[derive(Debug, Default)]
pub struct IpCounts(Mutex<HashMap<IpAddr, usize>>);

impl IpCounts {
    /// Counts a new connection unless the IP is at `max` (0: unlimited).
    pub fn try_add(&self, ip: IpAddr, max: usize) -> bool {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = m.entry(ip).or_insert(0);
        if max > 0 && *n >= max {
            return false;
        }
        *n += 1;
        true
    }

    /// Forgets a closed connection.
    pub fn remove(&self, ip: IpAddr) {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = m.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&ip);
            }
        }
    }
}

/// A connection's place under `maxClientCnxns` (per IP) and `maxCnxns`, given back
/// when it is dropped: with the connection's task, however the connection ended.
#[derive(Debug)]
pub struct ConnSlot {
    counts: Arc<IpCounts>,
    settings: Arc<ConnSettings>,
    ip: IpAddr,
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        self.counts.remove(self.ip);
        self.settings.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// How a port speaks.
#[derive(Debug, Clone)]
pub enum PortKind {
    /// Plaintext only.
    Plain,
    /// TLS only (`secureClientPort`).
    Tls(Arc<TlsContext>),
    /// TLS or plaintext, told apart by the first byte (`client.portUnification`).
    Unified(Arc<TlsContext>),
}

/// The client ports of one server (standalone or ensemble member), bound.
#[derive(Debug)]
pub struct ClientPorts {
    plain: Option<(TcpListener, PortKind)>,
    secure: Option<(TcpListener, PortKind)>,
    tls: Option<Arc<TlsContext>>,
}

impl From<TcpListener> for ClientPorts {
    fn from(l: TcpListener) -> Self {
        ClientPorts {
            plain: Some((l, PortKind::Plain)),
            secure: None,
            tls: None,
        }
    }
}

impl ClientPorts {
    /// Reads the TLS stores (if `config` asks for TLS) and binds the plain port at
    /// `plain` and `secureClientPort`; `retry` keeps trying a port still held by a
    /// process that just died.
    pub async fn bind(
        config: &ServerConfig,
        plain: Option<SocketAddr>,
        retry: bool,
    ) -> Result<ClientPorts> {
        let tls = if config.tls_enabled() {
            Some(
                TlsContext::new(&config.ssl).map_err(|message| ServerError::Config {
                    line: None,
                    message,
                })?,
            )
        } else {
            None
        };
        let bind = |addr: SocketAddr| async move {
            let l = if retry {
                crate::host::bind(addr).await
            } else {
                crate::host::listen(addr)
            };
            l.map_err(|e| ServerError::io(format!("binding {addr}"), e))
        };
        let plain = match plain {
            Some(a) => Some((
                bind(a).await?,
                match (&tls, config.port_unification) {
                    (Some(t), true) => PortKind::Unified(t.clone()),
                    _ => PortKind::Plain,
                },
            )),
            None => None,
        };
        let secure = match (config.secure_client_addr(), &tls) {
            (Some(a), Some(t)) => Some((bind(a).await?, PortKind::Tls(t.clone()))),
            _ => None,
        };
        if plain.is_none() && secure.is_none() {
            return Err(ServerError::Config {
                line: None,
                message: "no client port: set clientPort or secureClientPort".into(),
            });
        }
        Ok(ClientPorts { plain, secure, tls })
    }

    /// The plain (or unified) port's address.
    pub fn plain_addr(&self) -> Option<SocketAddr> {
        self.plain.as_ref().and_then(|(l, _)| l.local_addr().ok())
    }

    /// The TLS-only port's address.
    pub fn secure_addr(&self) -> Option<SocketAddr> {
        self.secure.as_ref().and_then(|(l, _)| l.local_addr().ok())
    }

    /// Serves every port (and watches the TLS stores for rotation) until aborted.
    pub fn spawn<M: From<ClientMsg> + Send + 'static>(
        self,
        core: UnboundedSender<M>,
        settings: Arc<ConnSettings>,
        throttle: Arc<Throttle>,
    ) -> JoinHandle<()> {
        let ids = Arc::new(AtomicU64::new(1));
        let mut ports = Vec::new();
        for (l, kind) in self.plain.into_iter().chain(self.secure) {
            ports.push(serve(
                l,
                kind,
                ids.clone(),
                core.clone(),
                settings.clone(),
                throttle.clone(),
            ));
        }
        let watch = self.tls.map(TlsContext::watch);
        tokio::spawn(async move {
            let ports = futures::future::join_all(ports);
            match watch {
                Some(w) => {
                    tokio::join!(ports, w);
                }
                None => {
                    ports.await;
                }
            }
        })
    }
}

/// Accept loop of a plain port: one task per connection.
pub async fn run<M: From<ClientMsg> + Send + 'static>(
    listener: TcpListener,
    core: UnboundedSender<M>,
    settings: Arc<ConnSettings>,
    throttle: Arc<Throttle>,
) {
    let ids = Arc::new(AtomicU64::new(1));
    serve(listener, PortKind::Plain, ids, core, settings, throttle).await
}

/// Accept loop: one task per connection; `ids` numbers connections across the ports of
/// one server.
async fn serve<M: From<ClientMsg> + Send + 'static>(
    listener: TcpListener,
    kind: PortKind,
    ids: Arc<AtomicU64>,
    core: UnboundedSender<M>,
    settings: Arc<ConnSettings>,
    throttle: Arc<Throttle>,
) {
    let counts = Arc::new(IpCounts::default());
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let open = settings.open.fetch_add(1, Ordering::AcqRel);
        if settings.max_cnxns > 0 && open >= settings.max_cnxns {
            settings.open.fetch_sub(1, Ordering::AcqRel);
            NetCounters::add(&settings.counters.connection_rejected, 1);
            tracing::warn!(
                "closing {peer}: too many connections, max allowed is {} (maxCnxns)",
                settings.max_cnxns
            );
            drop(stream);
            continue;
        }
        if !counts.try_add(peer.ip(), settings.max_client_cnxns) {
            settings.open.fetch_sub(1, Ordering::AcqRel);
            NetCounters::add(&settings.counters.connection_rejected, 1);
            tracing::warn!(
                "too many connections from {} - max is {}",
                peer.ip(),
                settings.max_client_cnxns
            );
            drop(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        let id = ids.fetch_add(1, Ordering::Relaxed);
        let slot = ConnSlot {
            counts: counts.clone(),
            settings: settings.clone(),
            ip: peer.ip(),
        };
        let core = core.clone();
        let settings = settings.clone();
        let throttle = throttle.clone();
        let kind = kind.clone();
        // This task does the handshake; an established connection gets a task of its own.
        let fut = async move {
            let mut who = Peer {
                addr: peer,
                conn: id,
                auth: Vec::new(),
                tls: false,
            };
            match kind {
                PortKind::Plain => {
                    connection::run(stream, who, core, settings, throttle, slot).await;
                }
                // Boxed: the TLS handshake's state is large.
                PortKind::Tls(ref ctx) | PortKind::Unified(ref ctx) => {
                    let unified = matches!(kind, PortKind::Unified(_));
                    let ctx = ctx.clone();
                    Box::pin(async move {
                        match secure(stream, peer, &ctx, unified, &settings.counters).await {
                            Some(Secured::Plain(s)) => {
                                connection::run(s, who, core, settings, throttle, slot).await
                            }
                            Some(Secured::Tls(s, auth)) => {
                                who.auth = auth;
                                who.tls = true;
                                connection::run(*s, who, core, settings, throttle, slot).await
                            }
                            None => {}
                        }
                    })
                    .await
                }
            }
        };
        tokio::spawn(fut);
    }
}

/// A connection on a TLS or unified port after its first bytes.
enum Secured {
    /// Plaintext on a unified port.
    Plain(TcpStream),
    /// A finished TLS handshake and the identities the client's certificate proves.
    Tls(
        Box<tokio_rustls::server::TlsStream<TcpStream>>,
        Vec<zk_proto::Id>,
    ),
}

/// The first byte of a TLS connection: a handshake record.
const TLS_HANDSHAKE: u8 = 0x16;

/// Tells TLS from plaintext (unified ports) and runs the TLS handshake, within the
/// handshake timeout so a client stopping halfway frees its connection. None: closed,
/// with a log line saying why.
async fn secure(
    stream: TcpStream,
    peer: SocketAddr,
    ctx: &TlsContext,
    unified: bool,
    counters: &NetCounters,
) -> Option<Secured> {
    let limit = ctx.handshake_timeout();
    let handshake = async {
        let mut first = [0u8; 1];
        match stream.peek(&mut first).await {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
        if first[0] != TLS_HANDSHAKE {
            if unified {
                return Some(Secured::Plain(stream));
            }
            tracing::warn!(
                "closing {peer}: plaintext on the TLS-only client port (first byte {:#04x}, \
                 not a TLS handshake); plaintext clients use clientPort",
                first[0]
            );
            return None;
        }
        let tls = match ctx.acceptor().accept(stream).await {
            Ok(t) => t,
            Err(e) => {
                NetCounters::add(&counters.unsuccessful_handshake, 1);
                tracing::warn!("closing {peer}: TLS handshake failed: {e}");
                return None;
            }
        };
        match ctx.identities(tls.get_ref().1.peer_certificates()) {
            Ok(auth) => {
                if let Some(id) = auth.iter().find(|i| i.scheme == "x509") {
                    tracing::debug!("TLS client {peer} authenticated as x509:{}", id.id);
                }
                Some(Secured::Tls(Box::new(tls), auth))
            }
            Err(e) => {
                tracing::warn!("closing {peer}: cannot read its certificate's subject: {e}");
                None
            }
        }
    };
    match tokio::time::timeout(limit, handshake).await {
        Ok(s) => s,
        Err(_) => {
            NetCounters::add(&counters.unsuccessful_handshake, 1);
            tracing::warn!(
                "closing {peer}: no TLS handshake within {} ms \
                 (ssl.handshakeDetectionTimeoutMillis)",
                limit.as_millis()
            );
            None
        }
    }
}
