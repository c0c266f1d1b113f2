//! One client connection: the handshake (or a four-letter word), then a reader turning
//! frames into requests for the core and a writer sending what the core produces.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc::{self, UnboundedSender};
use tokio::sync::{oneshot, Notify};
use tokio_util::codec::FramedRead;
use zk_proto::{
    ConnectRequest, FrameCodec, Id, JuteReader, OpCode, ProtoError, Record, Request, RequestHeader,
};

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

    async fn wait_below(&self, limit: usize) {
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

/// Bytes of replies gathered into one write at most.
const WRITE_BATCH_BYTES: usize = 64 * 1024;

/// First capacity of a connection's read buffer.
const READ_BUFFER_START: usize = 512;

/// Writes `batch` (framed replies) with one write, then empties it: a lone frame as it
/// is, several joined into one buffer freed right after.
async fn write_batch<W: AsyncWrite + Unpin>(
    w: &mut W,
    batch: &mut Vec<Bytes>,
) -> std::io::Result<()> {
    match batch.len() {
        0 => {}
        1 => w.write_all(&batch[0]).await?,
        _ => {
            let mut joined = Vec::with_capacity(batch.iter().map(Bytes::len).sum());
            for b in batch.iter() {
                joined.extend_from_slice(b);
            }
            w.write_all(&joined).await?;
        }
    }
    batch.clear();
    Ok(())
}

/// Serves one connection until either side closes it.
pub async fn run<M: From<ClientMsg> + Send + 'static, S: ClientStream>(
    mut stream: S,
    who: Peer,
    core: UnboundedSender<M>,
    settings: Arc<ConnSettings>,
    throttle: Arc<Throttle>,
) {
    let Peer {
        addr: peer,
        conn,
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
        Ok(Err(_)) => return,
        Err(_) => return expired(),
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
                return;
            }
            rx.await.unwrap_or_default()
        } else {
            format!("{cmd} is not executed because it is not in the whitelist.\n")
        };
        let _ = stream.write_all(text.as_bytes()).await;
        let _ = stream.shutdown().await;
        return;
    }
    // The handshake frame is read by hand: its length prefix is already consumed.
    let len = i32::from_be_bytes(first);
    if !tls && first[0] == 0x16 && first[1] == 0x03 {
        tracing::warn!(
            "closing {peer}: TLS handshake on the plaintext client port (connect to \
             secureClientPort, or set client.portUnification=true)"
        );
        return;
    }
    if len < 0 || len as usize > settings.max_frame {
        tracing::info!("closing {peer}: handshake frame length {len}");
        return;
    }
    let mut body = vec![0u8; len as usize];
    match tokio::time::timeout(limit, stream.read_exact(&mut body)).await {
        Ok(Ok(_)) => {}
        Ok(Err(_)) => return,
        Err(_) => return expired(),
    }
    NetCounters::add(&settings.counters.bytes_received, len as u64);
    let connect = match ConnectRequest::decode(body.into()) {
        Ok(c) => c,
        Err(e) => {
            tracing::info!("bad connect request from {peer}: {e}");
            return;
        }
    };
    let (rd, wr) = stream.split_io();
    // A small first buffer: it grows with the frames, and idle connections are many.
    let mut frames =
        FramedRead::with_capacity(rd, FrameCodec::new(settings.max_frame), READ_BUFFER_START);
    let (tx, mut rx) = mpsc::unbounded_channel::<ConnCmd>();
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
    let (established_tx, established) = oneshot::channel::<()>();
    let writer = tokio::spawn(async move {
        let mut w = wr;
        let mut established_tx = Some(established_tx);
        // Replies queued together go out in one write. Nothing is buffered between
        // bursts: an idle connection (most of them, with thousands of sessions) holds
        // no write buffer.
        let mut batch: Vec<Bytes> = Vec::new();
        'outer: while let Some(cmd) = rx.recv().await {
            let mut next = Some(cmd);
            let mut close = false;
            let mut bytes = 0;
            while let Some(cmd) = next {
                match cmd {
                    ConnCmd::Frame(b) => {
                        bytes += b.len();
                        batch.push(b);
                        if bytes >= WRITE_BATCH_BYTES {
                            if write_batch(&mut w, &mut batch).await.is_err() {
                                break 'outer;
                            }
                            bytes = 0;
                        }
                    }
                    ConnCmd::Established => {
                        if let Some(t) = established_tx.take() {
                            let _ = t.send(());
                        }
                    }
                    ConnCmd::Close => {
                        close = true;
                        break;
                    }
                }
                next = rx.try_recv().ok();
            }
            if write_batch(&mut w, &mut batch).await.is_err() || w.flush().await.is_err() {
                break;
            }
            if batch.capacity() > 64 {
                batch = Vec::new();
            }
            if close {
                let _ = w.shutdown().await;
                break;
            }
        }
    });
    let reader = async {
        // Requests pipelined behind the handshake wait in the socket until it is
        // answered (see `ConnCmd::Established`): a learner revalidating the session
        // with its leader has no session to run them against yet.
        if established.await.is_err() {
            tracing::debug!(
                "connection {conn} from {peer} closed before its handshake \
                 (session {session_id:#x}) got a live session"
            );
            return;
        }
        loop {
            throttle.wait_below(settings.global_outstanding_limit).await;
            let frame = match frames.next().await {
                Some(Ok(f)) => f,
                Some(Err(e)) => {
                    tracing::info!("closing {peer}: {e}");
                    break;
                }
                None => break,
            };
            NetCounters::add(&settings.counters.bytes_received, 4 + frame.len() as u64);
            let mut r = JuteReader::new(frame);
            let Ok(h) = RequestHeader::read(&mut r) else {
                tracing::info!("closing {peer}: truncated request header");
                break;
            };
            let msg = match h.opcode {
                // Apache reads deleteContainer's body as the raw path bytes.
                OpCode::DeleteContainer => ClientMsg::Request {
                    conn,
                    xid: h.xid,
                    req: Request::DeleteContainer(zk_proto::ops::PathRequest {
                        path: String::from_utf8_lossy(&r.take_rest()).into_owned(),
                    }),
                },
                op => match Request::read(op, &mut r) {
                    Ok(req) => ClientMsg::Request {
                        conn,
                        xid: h.xid,
                        req,
                    },
                    Err(e) if !op.is_known() || op == OpCode::Notification => {
                        tracing::info!("unknown opcode {} from {peer}: {e}", op.to_i32());
                        ClientMsg::Unknown {
                            conn,
                            xid: h.xid,
                            marshalling: false,
                        }
                    }
                    Err(ProtoError::InvalidValue {
                        what: "request opcode",
                        ..
                    }) => ClientMsg::Unknown {
                        conn,
                        xid: h.xid,
                        marshalling: true,
                    },
                    Err(e) => {
                        tracing::info!("closing {peer}: malformed {op:?} request: {e}");
                        break;
                    }
                },
            };
            throttle.add();
            if core.send(M::from(msg)).is_err() {
                break;
            }
        }
    };
    tokio::select! {
        _ = reader => {}
        _ = async { let _ = writer.await; } => {}
    }
    let _ = core.send(M::from(ClientMsg::Disconnected { conn }));
}
