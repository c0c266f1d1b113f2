//! One client connection: the handshake (or a four-letter word), then a reader turning
//! frames into requests for the core and a writer sending what the core produces.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::{oneshot, Notify};
use zk_proto::{ConnectRequest, Id, Record};

use super::duplex::{Duplex, Link};
use super::listener::ConnSlot;
use super::ClientMsg;
use super::ConnCmd;
use crate::admin::stats::NetCounters;

/// Settings every connection needs.
#[derive(Debug)]
pub struct ConnSettings {
    /// Largest frame (`jute.maxbuffer`).
    pub max_frame: usize,
    /// `maxClientCnxns`.
    pub max_client_cnxns: usize,
    /// Whitelisted four-letter words.
    pub four_letter_whitelist: BTreeSet<String>,
    /// `globalOutstandingLimit`.
    pub global_outstanding_limit: usize,
    /// `maxCnxns` over every client IP (0: unlimited).
    pub max_cnxns: usize,
    /// How long a connection may take to send its handshake or four-letter word.
    pub sessionless_timeout: std::time::Duration,
    /// Counters the connection tasks keep (`mntr`), shared with the core.
    pub counters: Arc<NetCounters>,
    /// Client connections open now, for `maxCnxns`.
    pub open: AtomicUsize,
}

impl ConnSettings {
    /// The connection limits a server (standalone or ensemble member) runs with.
    pub fn from_config(config: &crate::config::ServerConfig) -> Self {
        ConnSettings {
            max_frame: config.jute_max_buffer,
            max_client_cnxns: config.max_client_cnxns,
            four_letter_whitelist: config.four_letter_whitelist.clone(),
            global_outstanding_limit: config.global_outstanding_limit,
            max_cnxns: config.max_cnxns,
            sessionless_timeout: std::time::Duration::from_millis(
                config.sessionless_cnxn_timeout_ms.max(1),
            ),
            counters: Arc::default(),
            open: AtomicUsize::new(0),
        }
    }
}

/// Requests in flight across all connections; readers pause above the limit
/// (`globalOutstandingLimit`), as Apache stops reading sockets.
#[derive(Debug, Default)]
pub struct Throttle {
    outstanding: AtomicUsize,
    notify: Notify,
}

impl Throttle {
    /// Counts a request in.
    pub fn add(&self) {
        self.outstanding.fetch_add(1, Ordering::AcqRel);
    }

    /// Counts `n` requests out.
    pub fn done(&self, n: usize) {
        if n > 0 {
            self.outstanding.fetch_sub(n, Ordering::AcqRel);
            self.notify.notify_waiters();
        }
    }

    /// Requests in flight.
    pub fn current(&self) -> usize {
        self.outstanding.load(Ordering::Acquire)
    }

    /// Returns once fewer than `limit` requests are in flight (0: no limit).
    pub(super) async fn wait_below(&self, limit: usize) {
        while limit > 0 && self.current() >= limit {
            let n = self.notify.notified();
            if self.current() < limit {
                break;
            }
            let _ = tokio::time::timeout(std::time::Duration::from_millis(50), n).await;
        }
    }
}

/// A client stream (plain TCP or TLS) that splits into a reader and a writer.
pub trait ClientStream: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// Reading half.
    type Read: AsyncRead + Unpin + Send + 'static;
    /// Writing half.
    type Write: AsyncWrite + Unpin + Send + 'static;
    /// Splits the stream.
    fn split_io(self) -> (Self::Read, Self::Write);
}

impl ClientStream for TcpStream {
    type Read = tokio::net::tcp::OwnedReadHalf;
    type Write = tokio::net::tcp::OwnedWriteHalf;
    fn split_io(self) -> (Self::Read, Self::Write) {
        self.into_split()
    }
}

impl ClientStream for tokio_rustls::server::TlsStream<TcpStream> {
    type Read = tokio::io::ReadHalf<Self>;
    type Write = tokio::io::WriteHalf<Self>;
    fn split_io(self) -> (Self::Read, Self::Write) {
        tokio::io::split(self)
    }
}

/// Who is on the other end of a connection.
#[derive(Debug, Clone)]
pub struct Peer {
    /// Its address.
    pub addr: SocketAddr,
    /// Connection id.
    pub conn: u64,
    /// Identities the transport proved (`x509` from a client certificate).
    pub auth: Vec<Id>,
    /// Whether the connection speaks TLS.
    pub tls: bool,
}

fn four_letter(b: &[u8; 4]) -> Option<&'static str> {
    crate::config::ALL_FOUR_LETTER_WORDS
        .iter()
        .find(|w| w.as_bytes() == b)
        .copied()
}

/// Serves one connection: reads its handshake (or answers a four-letter word), then
/// spawns the established connection as a task of its own, which holds `slot` until the
/// connection ends.
pub async fn run<M: From<ClientMsg> + Send + 'static, S: ClientStream>(
    mut stream: S,
    who: Peer,
    core: UnboundedSender<M>,
    settings: Arc<ConnSettings>,
    throttle: Arc<Throttle>,
    slot: ConnSlot,
) {
    let (conn, peer) = (who.conn, who.addr);
    let Some((connect, auth)) = handshake(&mut stream, who, &core, &settings).await else {
        return;
    };
    let (rd, wr) = stream.split_io();
    let (tx, rx) = futures::channel::mpsc::unbounded::<ConnCmd>();
    let session_id = connect.session_id;
    if core
        .send(M::from(ClientMsg::Accepted {
            conn,
            peer,
            tx,
            auth,
        }))
        .is_err()
        || core
            .send(M::from(ClientMsg::Connect { conn, req: connect }))
            .is_err()
    {
        return;
    }
    // Its own task: what an idle connection costs is this task's size (a few hundred
    // bytes), not that of the handshake's timers and buffers.
    tokio::spawn(Duplex::new(
        Link {
            conn,
            peer,
            session_id,
            slot,
        },
        rd,
        wr,
        rx,
        core,
        settings,
        throttle,
    ));
}

/// Reads the handshake, or answers a four-letter word; `None` when the connection is
/// done with. On success the connection is announced to the core with its handshake.
async fn handshake<M: From<ClientMsg> + Send + 'static, S: ClientStream>(
    stream: &mut S,
    who: Peer,
    core: &UnboundedSender<M>,
    settings: &ConnSettings,
) -> Option<(ConnectRequest, Vec<Id>)> {
    let Peer {
        addr: peer,
        conn: _,
        auth,
        tls,
    } = who;
    // Apache closes a connection that sends no handshake within its sessionless
    // connection timeout; without one an idle socket would hold its slot forever.
    let limit = settings.sessionless_timeout;
    let expired = || {
        NetCounters::add(&settings.counters.sessionless_expired, 1);
        tracing::info!(
            "closing {peer}: no handshake within {} ms (zookeeper.nio.sessionlessCnxnTimeout)",
            limit.as_millis()
        );
    };
    let mut first = [0u8; 4];
    match tokio::time::timeout(limit, stream.read_exact(&mut first)).await {
        Ok(Ok(_)) => {}
        Ok(Err(_)) => return None,
        Err(_) => {
            expired();
            return None;
        }
    }
    NetCounters::add(&settings.counters.bytes_received, 4);
    if let Some(cmd) = four_letter(&first) {
        let text = if settings.four_letter_whitelist.contains(cmd) {
            let (tx, rx) = oneshot::channel();
            if core
                .send(M::from(ClientMsg::FourLetter {
                    cmd: cmd.to_string(),
                    peer,
                    reply: tx,
                }))
                .is_err()
            {
                return None;
            }
            rx.await.unwrap_or_default()
        } else {
            format!("{cmd} is not executed because it is not in the whitelist.\n")
        };
        let _ = stream.write_all(text.as_bytes()).await;
        let _ = stream.shutdown().await;
        return None;
    }
    // The handshake frame is read by hand: its length prefix is already consumed.
    let len = i32::from_be_bytes(first);
    if !tls && first[0] == 0x16 && first[1] == 0x03 {
        tracing::warn!(
            "closing {peer}: TLS handshake on the plaintext client port (connect to \
             secureClientPort, or set client.portUnification=true)"
        );
        return None;
    }
    if len < 0 || len as usize > settings.max_frame {
        tracing::info!("closing {peer}: handshake frame length {len}");
        return None;
    }
    let mut body = vec![0u8; len as usize];
    match tokio::time::timeout(limit, stream.read_exact(&mut body)).await {
        Ok(Ok(_)) => {}
        Ok(Err(_)) => return None,
        Err(_) => {
            expired();
            return None;
        }
    }
    NetCounters::add(&settings.counters.bytes_received, len as u64);
    let connect = match ConnectRequest::decode(body.into()) {
        Ok(c) => c,
        Err(e) => {
            tracing::info!("bad connect request from {peer}: {e}");
            return None;
        }
    };
    Some((connect, auth))
}
