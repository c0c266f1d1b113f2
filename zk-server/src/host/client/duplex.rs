//! An established connection's reading and writing, polled as one hand-written future.
//!
//! Most connections of a busy server are idle, so what one costs between requests is
//! what matters: one task per connection (not a reader and a writer task), no read
//! buffer while the socket has nothing to read, no write buffer between bursts, and
//! futures' channel (a node per queued message) rather than tokio's (a 32-slot block per
//! channel up front). An `async` reader and writer joined by `select` took 1.5 KB of task
//! state here: rustc keeps room for each sub-future twice across the `pin!` moves.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures::channel::mpsc::UnboundedReceiver;
use futures::{Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::codec::FramedRead;
use zk_proto::{FrameCodec, JuteReader, OpCode, ProtoError, Record, Request, RequestHeader};

use super::connection::{ConnSettings, Throttle};
use super::listener::ConnSlot;
use super::{ClientMsg, ConnCmd};
use crate::admin::stats::NetCounters;

/// Bytes of replies gathered into one write at most.
const WRITE_BATCH_BYTES: usize = 64 * 1024;

/// Read buffer taken while the socket is read; given back when it has nothing more.
const READ_BUFFER: usize = 8 * 1024;

/// Why a connection's reading stopped (it is then closed once its queued replies are out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadEnd {
    /// The peer closed, or sent something this server closes connections for.
    Peer,
    /// The core task is gone.
    Core,
}

/// Who an established connection is, and its place under the connection limits.
pub(super) struct Link {
    /// Connection id.
    pub conn: u64,
    /// The client.
    pub peer: SocketAddr,
    /// The session its handshake asked for (0: a new one), for the log.
    pub session_id: i64,
    /// Given back when the connection ends (held for its `Drop`).
    #[allow(dead_code)]
    pub slot: ConnSlot,
}

/// One established connection: requests from `frames` go to the core, what the core
/// queues on `rx` is written to `w`. Completes, having told the core, when the
/// connection is done with.
pub(super) struct Duplex<M, R, W> {
    link: Link,
    frames: FramedRead<R, FrameCodec>,
    w: W,
    rx: UnboundedReceiver<ConnCmd>,
    core: UnboundedSender<M>,
    settings: Arc<ConnSettings>,
    throttle: Arc<Throttle>,
    /// Bytes being written and how many have gone.
    out: Option<(Bytes, usize)>,
    /// Written bytes not yet flushed (TLS buffers records).
    unflushed: bool,
    /// The core answered the handshake with a live session: read requests. Until then
    /// they stay in the socket (see [`ConnCmd::Established`]).
    reading: bool,
    /// Why reading stopped, once it has.
    read_end: Option<ReadEnd>,
    /// The core asked to close: shut the socket down once `out` is written.
    closing: bool,
    /// Waiting for the server's outstanding requests to fall below
    /// `globalOutstandingLimit` (boxed: rare, and idle connections are many).
    throttled: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
}

impl<M, R, W> Duplex<M, R, W>
where
    M: From<ClientMsg> + Send + 'static,
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    /// A connection whose handshake went to the core; requests are read once the core
    /// says [`ConnCmd::Established`].
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        link: Link,
        rd: R,
        w: W,
        rx: UnboundedReceiver<ConnCmd>,
        core: UnboundedSender<M>,
        settings: Arc<ConnSettings>,
        throttle: Arc<Throttle>,
    ) -> Self {
        let frames = FramedRead::with_capacity(rd, FrameCodec::new(settings.max_frame), 0);
        Duplex {
            link,
            frames,
            w,
            rx,
            core,
            settings,
            throttle,
            out: None,
            unflushed: false,
            reading: false,
            read_end: None,
            closing: false,
            throttled: None,
        }
    }

    /// Tells the core the connection is gone, unless it was told when reading stopped.
    fn finish(&mut self) {
        let Link {
            conn,
            peer,
            session_id,
            ..
        } = self.link;
        if !self.reading {
            tracing::debug!(
                "connection {conn} from {peer} closed before its handshake \
                 (session {session_id:#x}) got a live session"
            );
        }
        if self.read_end != Some(ReadEnd::Peer) {
            let _ = self.core.send(M::from(ClientMsg::Disconnected { conn }));
        }
    }

    /// Writes what the core queued. `Ready` when the connection is to end (write error,
    /// close asked and done, or the core dropped the connection).
    fn poll_write_side(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            if let Some((buf, done)) = &mut self.out {
                while *done < buf.len() {
                    match Pin::new(&mut self.w).poll_write(cx, &buf[*done..]) {
                        Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return Poll::Ready(()),
                        Poll::Ready(Ok(n)) => *done += n,
                        Poll::Pending => return Poll::Pending,
                    }
                }
                self.out = None;
                self.unflushed = true;
            }
            if self.closing {
                // TLS holds records until flushed: the last replies go before the close.
                if self.unflushed {
                    match Pin::new(&mut self.w).poll_flush(cx) {
                        Poll::Ready(Ok(())) => self.unflushed = false,
                        Poll::Ready(Err(_)) => return Poll::Ready(()),
                        Poll::Pending => return Poll::Pending,
                    }
                }
                return match Pin::new(&mut self.w).poll_shutdown(cx) {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(_) => Poll::Ready(()),
                };
            }
            match self.rx.poll_next_unpin(cx) {
                Poll::Ready(Some(cmd)) => self.gather(cmd),
                Poll::Ready(None) => return Poll::Ready(()),
                Poll::Pending => {
                    if self.unflushed {
                        match Pin::new(&mut self.w).poll_flush(cx) {
                            Poll::Ready(Ok(())) => self.unflushed = false,
                            Poll::Ready(Err(_)) => return Poll::Ready(()),
                            Poll::Pending => {}
                        }
                    }
                    return Poll::Pending;
                }
            }
        }
    }

    /// Takes `first` and what else is queued (up to a write's worth) into `out`: a lone
    /// frame as it is, several joined into one buffer freed once written.
    fn gather(&mut self, first: ConnCmd) {
        let mut lone: Option<Bytes> = None;
        let mut joined: Option<BytesMut> = None;
        let mut next = Some(first);
        while let Some(cmd) = next {
            match cmd {
                ConnCmd::Frame(b) => match (&mut joined, lone.take()) {
                    (Some(j), _) => j.extend_from_slice(&b),
                    (None, None) => lone = Some(b),
                    (None, Some(prev)) => {
                        let mut j = BytesMut::with_capacity(prev.len() + b.len());
                        j.extend_from_slice(&prev);
                        j.extend_from_slice(&b);
                        joined = Some(j);
                    }
                },
                ConnCmd::Established => self.reading = true,
                ConnCmd::Close => {
                    self.closing = true;
                    break;
                }
            }
            let size =
                joined.as_ref().map_or(0, |j| j.len()) + lone.as_ref().map_or(0, |b| b.len());
            if size >= WRITE_BATCH_BYTES {
                break;
            }
            next = self.rx.try_recv().ok();
        }
        self.out = joined.map(BytesMut::freeze).or(lone).map(|b| (b, 0));
    }

    /// Reads requests and hands them to the core until the socket has nothing more.
    fn poll_read_side(&mut self, cx: &mut Context<'_>) {
        while self.reading && self.read_end.is_none() {
            if let Some(wait) = &mut self.throttled {
                if wait.as_mut().poll(cx).is_pending() {
                    break;
                }
                self.throttled = None;
            }
            let limit = self.settings.global_outstanding_limit;
            if limit > 0 && self.throttle.current() >= limit {
                let throttle = self.throttle.clone();
                self.throttled = Some(Box::pin(async move { throttle.wait_below(limit).await }));
                continue;
            }
            let buffer = self.frames.read_buffer_mut();
            if buffer.capacity() == 0 {
                buffer.reserve(READ_BUFFER);
            }
            match Pin::new(&mut self.frames).poll_next(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Err(end) = self.request(frame) {
                        self.read_end = Some(end);
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    tracing::info!("closing {}: {e}", self.link.peer);
                    self.read_end = Some(ReadEnd::Peer);
                }
                Poll::Ready(None) => self.read_end = Some(ReadEnd::Peer),
                Poll::Pending => break,
            }
        }
        // Nothing more to read for now (or ever): an idle connection holds no buffer.
        if self.frames.read_buffer().is_empty() && self.frames.read_buffer().capacity() > 0 {
            *self.frames.read_buffer_mut() = BytesMut::new();
        }
    }

    /// Decodes one request frame and passes it to the core.
    fn request(&mut self, frame: Bytes) -> Result<(), ReadEnd> {
        let (conn, peer) = (self.link.conn, self.link.peer);
        NetCounters::add(
            &self.settings.counters.bytes_received,
            4 + frame.len() as u64,
        );
        let mut r = JuteReader::new(frame);
        let Ok(h) = RequestHeader::read(&mut r) else {
            tracing::info!("closing {peer}: truncated request header");
            return Err(ReadEnd::Peer);
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
                    return Err(ReadEnd::Peer);
                }
            },
        };
        self.throttle.add();
        self.core.send(M::from(msg)).map_err(|_| ReadEnd::Core)
    }
}

impl<M, R, W> Future for Duplex<M, R, W>
where
    M: From<ClientMsg> + Send + 'static,
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        // Writing first: it may turn reading on (the handshake's answer).
        if this.poll_write_side(cx).is_ready() {
            this.finish();
            return Poll::Ready(());
        }
        let was_reading = this.read_end.is_none();
        this.poll_read_side(cx);
        match this.read_end {
            Some(ReadEnd::Core) => {
                this.finish();
                Poll::Ready(())
            }
            Some(ReadEnd::Peer) if was_reading => {
                // What the core queued before it hears of this is still written; it
                // drops its sender once told, which ends the writing side.
                let conn = this.link.conn;
                let _ = this.core.send(M::from(ClientMsg::Disconnected { conn }));
                Poll::Pending
            }
            _ => Poll::Pending,
        }
    }
}
