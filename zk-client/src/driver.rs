//! The tokio driver: one task per client that owns the socket and runs the [`Session`]
//! state machine. It never blocks on a consumer: every delivery is an unbounded channel.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant as TokioInstant;
use tokio_util::codec::Decoder;
use zk_proto::FrameCodec;

use crate::error::{Error, Result};
use crate::hosts::HostPort;
use crate::metrics::Counters;
use crate::sasl::GssapiConfig;
use crate::sasl_gssapi::{CredsCache, GssStart};
use crate::session::{Action, Reply, Session, Submit};
use crate::state::SessionState;
use crate::tls::Connector;
use crate::watch::registry::{WatcherId, DEFAULT_WATCHER};
use crate::watch::WatchedEvent;

/// Reply handle of the tokio driver.
pub(crate) type ReplyTx = oneshot::Sender<Result<Reply>>;

/// Where a per-call watcher's events go.
#[derive(Debug)]
pub(crate) enum Sink {
    /// One-shot watch.
    Once(oneshot::Sender<Result<WatchedEvent>>),
    /// Persistent watch.
    Stream(mpsc::UnboundedSender<WatchedEvent>),
}

/// Messages from [`crate::Client`] handles to the driver.
#[derive(Debug)]
pub(crate) enum Command {
    Request(Submit<ReplyTx>, Option<(WatcherId, Sink)>),
    Auth {
        scheme: String,
        auth: Bytes,
        reply: ReplyTx,
    },
    Subscribe(mpsc::UnboundedSender<WatchedEvent>),
    Close(ReplyTx),
    /// A new member list; the reply says whether this client moves to rebalance.
    UpdateHosts(Vec<HostPort>, oneshot::Sender<bool>),
}

/// Session facts published for the client handles.
#[derive(Debug, Clone, Default)]
pub(crate) struct SessionInfo {
    pub session_id: i64,
    pub password: Bytes,
    pub timeout: Duration,
    pub host: Option<HostPort>,
    /// Why the last connection attempt failed (cleared by a successful handshake).
    pub last_connect_error: Option<Error>,
    /// The terminal error with its details, recorded before the terminal state is
    /// published.
    pub failure: Option<Error>,
}

/// State shared between the driver and the handles.
#[derive(Debug)]
pub(crate) struct Shared {
    pub state: watch::Sender<SessionState>,
    pub info: Mutex<SessionInfo>,
    pub counters: Counters,
}

type BoxFut<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A connection: plain TCP or TLS over TCP; everything above it is the same.
pub(crate) trait Transport: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Transport for T {}
type Stream = Box<dyn Transport>;
type Reader = ReadHalf<Stream>;
type Writer = WriteHalf<Stream>;

async fn read_some(r: &mut Option<Reader>, buf: &mut BytesMut) -> io::Result<usize> {
    match r {
        Some(r) => {
            if buf.capacity() - buf.len() < 4096 {
                buf.reserve(64 * 1024);
            }
            r.read_buf(buf).await
        }
        None => std::future::pending().await,
    }
}

async fn write_some(w: &mut Option<Writer>, buf: &mut BytesMut) -> io::Result<usize> {
    match w {
        Some(w) if !buf.is_empty() => w.write_buf(buf).await,
        _ => std::future::pending().await,
    }
}

async fn poll_opt<T>(f: &mut Option<BoxFut<T>>) -> T {
    match f {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

/// Far enough to mean "no deadline" for the reusable timer.
const NEVER: Duration = Duration::from_secs(86_400 * 365);

/// A Kerberos login to start on each new connection.
#[derive(Clone)]
pub(crate) struct GssJob {
    pub cfg: GssapiConfig,
    pub creds: CredsCache,
}

/// A made connection, with the GSSAPI exchange started on it when the login is Kerberos.
type Connected = (Stream, Option<GssStart>);

/// TCP connect, then the TLS handshake when configured, then (Kerberos logins) the
/// blocking start of the GSSAPI exchange on a blocking thread, all within `timeout`. The
/// error is the cause, for [`Error::Connect`].
fn connect(
    host: HostPort,
    timeout: Duration,
    tls: Option<Connector>,
    attempt: u64,
    gss: Option<GssJob>,
) -> BoxFut<std::result::Result<Connected, String>> {
    use tracing::Instrument;
    let span = tracing::debug_span!(
        "zk_connect",
        server = %host,
        attempt,
        tls = tls.is_some(),
        outcome = tracing::field::Empty,
    );
    let record = span.clone();
    let fut = async move {
        let attempt = async {
            // Resolving apart from connecting tells "no such host" from "nobody listening".
            let addrs: Vec<std::net::SocketAddr> =
                tokio::net::lookup_host((host.host.as_str(), host.port))
                    .await
                    .map_err(|e| format!("failed to resolve {:?}: {e}", host.host))?
                    .collect();
            if addrs.is_empty() {
                return Err(format!("failed to resolve {:?}: no addresses", host.host));
            }
            let s = TcpStream::connect(&addrs[..])
                .await
                .map_err(|e| format!("tcp connect failed: {e}"))?;
            s.set_nodelay(true)
                .map_err(|e| format!("tcp connect failed: {e}"))?;
            let peer = s
                .peer_addr()
                .map_err(|e| format!("tcp connect failed: {e}"))?;
            let stream = match tls {
                None => Box::new(s) as Stream,
                Some(c) => {
                    let name = c.name_for(&host.host)?;
                    let t = c
                        .inner
                        .connect(name, s)
                        .await
                        .map_err(|e| format!("tls handshake failed: {e}"))?;
                    Box::new(t) as Stream
                }
            };
            let started = match gss {
                None => None,
                Some(job) => {
                    let name = host.host.clone();
                    let res = tokio::task::spawn_blocking(move || {
                        crate::sasl_gssapi::start(&job.cfg, &name, peer, &job.creds)
                    })
                    .await
                    .unwrap_or_else(|e| Err(format!("GSSAPI start failed: {e}")));
                    Some(res)
                }
            };
            Ok((stream, started))
        };
        tokio::time::timeout(timeout, attempt)
            .await
            .map_err(|_| format!("no connection within {timeout:?}"))?
    };
    Box::pin(
        async move {
            let res = fut.await;
            match &res {
                Ok(_) => record.record("outcome", "connected"),
                Err(cause) => record.record("outcome", cause.as_str()),
            };
            res
        }
        .instrument(span),
    )
}

/// Asks a server whether it serves writes (four-letter word `isro`: "rw" or "ro"), over
/// TLS when the client uses TLS (a secure port speaks nothing else).
fn probe(host: HostPort, timeout: Duration, tls: Option<Connector>) -> BoxFut<(HostPort, bool)> {
    Box::pin(async move {
        let res = tokio::time::timeout(timeout, async {
            let tcp = TcpStream::connect((host.host.as_str(), host.port)).await?;
            let mut s: Stream = match tls {
                None => Box::new(tcp),
                Some(c) => {
                    let name = c.name_for(&host.host).map_err(io::Error::other)?;
                    Box::new(c.inner.connect(name, tcp).await?)
                }
            };
            s.write_all(b"isro").await?;
            s.flush().await?;
            let mut out = Vec::new();
            s.take(16).read_to_end(&mut out).await?;
            io::Result::Ok(out == b"rw")
        })
        .await;
        let rw = matches!(res, Ok(Ok(true)));
        (host, rw)
    })
}

/// The driver task state.
struct Driver {
    session: Session<ReplyTx>,
    shared: Arc<Shared>,
    reader: Option<Reader>,
    writer: Option<Writer>,
    connecting: Option<BoxFut<std::result::Result<Connected, String>>>,
    /// The Kerberos login, when the client uses one.
    gss: Option<GssJob>,
    /// Host of the current connection or attempt, for error messages.
    host: Option<HostPort>,
    /// The session was established on the current connection.
    established: bool,
    tls: Option<Connector>,
    probing: Option<BoxFut<(HostPort, bool)>>,
    rbuf: BytesMut,
    wbuf: BytesMut,
    codec: FrameCodec,
    sinks: HashMap<WatcherId, Sink>,
    subscribers: Vec<mpsc::UnboundedSender<WatchedEvent>>,
    finished: bool,
    /// A session was established on an earlier connection: the next one is a reconnect.
    ever_established: bool,
}

/// Runs a session until it ends (terminal state) or every handle is dropped and the close
/// completes.
pub(crate) async fn run(
    session: Session<ReplyTx>,
    mut rx: mpsc::UnboundedReceiver<Command>,
    shared: Arc<Shared>,
    max_frame: usize,
    tls: Option<Connector>,
    gss: Option<GssJob>,
) {
    let mut d = Driver {
        gss,
        session,
        shared,
        reader: None,
        writer: None,
        connecting: None,
        host: None,
        established: false,
        tls,
        probing: None,
        rbuf: BytesMut::with_capacity(64 * 1024),
        wbuf: BytesMut::with_capacity(64 * 1024),
        codec: FrameCodec::new(max_frame),
        sinks: HashMap::new(),
        subscribers: Vec::new(),
        finished: false,
        ever_established: false,
    };
    let mut cmds_open = true;
    d.session.tick(std::time::Instant::now());
    // One timer, re-armed only when the deadline moves (not re-created every iteration).
    let mut armed: Option<std::time::Instant> = None;
    let timer = tokio::time::sleep(NEVER);
    tokio::pin!(timer);
    loop {
        d.drain_actions();
        if d.finished {
            break;
        }
        d.take_outbound();
        let deadline = d.session.next_deadline();
        if deadline != armed {
            armed = deadline;
            let at = deadline
                .map(TokioInstant::from_std)
                .unwrap_or_else(|| TokioInstant::now() + NEVER);
            timer.as_mut().reset(at);
        }
        tokio::select! {
            cmd = rx.recv(), if cmds_open => match cmd {
                Some(c) => {
                    let now = std::time::Instant::now();
                    d.command(c, now);
                    // Coalesce a burst of requests into one write.
                    for _ in 0..256 {
                        match rx.try_recv() {
                            Ok(c) => d.command(c, now),
                            Err(_) => break,
                        }
                    }
                }
                None => {
                    cmds_open = false;
                    let (tx, _rx) = oneshot::channel();
                    d.session.close(tx, std::time::Instant::now());
                }
            },
            n = read_some(&mut d.reader, &mut d.rbuf) => {
                let now = std::time::Instant::now();
                match n {
                    Ok(0) => {
                        d.note_early_close("the server closed the connection");
                        d.lost(now);
                    }
                    Err(e) => {
                        d.note_early_close(&format!("connection failed: {e}"));
                        d.lost(now);
                    }
                    Ok(_) => d.frames(now),
                }
            }
            w = write_some(&mut d.writer, &mut d.wbuf) => {
                if w.is_err() {
                    d.lost(std::time::Instant::now());
                }
            }
            c = poll_opt(&mut d.connecting) => {
                d.connecting = None;
                let now = std::time::Instant::now();
                match c {
                    Ok((s, gss)) => {
                        let (r, w) = tokio::io::split(s);
                        d.reader = Some(r);
                        d.writer = Some(w);
                        d.rbuf.clear();
                        d.wbuf.clear();
                        d.session.on_connected_with(now, gss);
                    }
                    Err(cause) => {
                        tracing::debug!(host = ?d.host, %cause, "connect failed");
                        d.note_connect_error(cause);
                        d.session.on_disconnected(now);
                    }
                }
            }
            (host, rw) = poll_opt(&mut d.probing) => {
                d.probing = None;
                d.session.on_probe_result(host, rw, std::time::Instant::now());
            }
            _ = &mut timer => {
                // Force a re-arm next round even if the deadline did not move.
                armed = None;
                d.session.tick(std::time::Instant::now());
            }
        }
    }
    // Flush a final closeSession if one is still buffered (best effort).
    if let Some(w) = d.writer.as_mut() {
        let _ = w.write_all(&d.wbuf).await;
    }
}

impl Driver {
    fn note_connect_error(&self, cause: String) {
        let host = self
            .host
            .as_ref()
            .map(|h| h.to_string())
            .unwrap_or_default();
        if let Ok(mut i) = self.shared.info.lock() {
            i.last_connect_error = Some(Error::Connect { host, cause });
        }
    }

    /// A connection that ends before the session is (re-)established is a failed attempt:
    /// e.g. a TLS server rejecting our certificate only after the client's handshake
    /// finished, or a server dropping a client it does not accept.
    fn note_early_close(&self, cause: &str) {
        if !self.established {
            self.note_connect_error(format!("{cause} before the session was established"));
        }
    }

    fn lost(&mut self, now: std::time::Instant) {
        self.reader = None;
        self.writer = None;
        self.session.on_disconnected(now);
    }

    fn frames(&mut self, now: std::time::Instant) {
        loop {
            match self.codec.decode(&mut self.rbuf) {
                Ok(Some(frame)) => self.session.on_frame(frame, now),
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "bad frame from server");
                    self.lost(now);
                    break;
                }
            }
        }
    }

    fn take_outbound(&mut self) {
        let out = self.session.outbound();
        if out.is_empty() {
            return;
        }
        if self.writer.is_none() {
            out.clear();
        } else if self.wbuf.is_empty() {
            std::mem::swap(&mut self.wbuf, out);
        } else {
            self.wbuf.extend_from_slice(out);
            out.clear();
        }
    }

    fn command(&mut self, c: Command, now: std::time::Instant) {
        match c {
            Command::Request(req, sink) => {
                if let Some((id, s)) = sink {
                    self.sinks.insert(id, s);
                }
                self.session.submit(req, now);
            }
            Command::Auth {
                scheme,
                auth,
                reply,
            } => self.session.add_auth(scheme, auth, reply, now),
            Command::Subscribe(tx) => {
                self.subscribers.push(tx);
            }
            Command::Close(reply) => self.session.close(reply, now),
            Command::UpdateHosts(hosts, reply) => {
                let _ = reply.send(self.session.update_hosts(hosts, now));
            }
        }
    }

    fn broadcast(&mut self, ev: &WatchedEvent) {
        self.subscribers.retain(|s| s.send(ev.clone()).is_ok());
    }

    fn drain_actions(&mut self) {
        while let Some(a) = self.session.poll_action() {
            match a {
                Action::Connect { host, timeout } => {
                    self.reader = None;
                    self.writer = None;
                    self.host = Some(host.clone());
                    self.established = false;
                    let c = &self.shared.counters.connection_attempts;
                    Counters::bump(c);
                    let attempt = c.load(std::sync::atomic::Ordering::Relaxed);
                    self.connecting = Some(connect(
                        host,
                        timeout,
                        self.tls.clone(),
                        attempt,
                        self.gss.clone(),
                    ));
                }
                Action::Disconnect => {
                    let attempt_open = self.connecting.is_some() || self.reader.is_some();
                    if attempt_open && !self.established && !self.session.state().is_terminal() {
                        // The session gave up on this attempt (its connect timeout).
                        self.note_early_close("timed out");
                    }
                    self.reader = None;
                    self.writer = None;
                    self.connecting = None;
                    self.wbuf.clear();
                    self.rbuf.clear();
                }
                Action::Reply(tx, res) => {
                    let _ = tx.send(res);
                }
                Action::Event { event, watchers } => {
                    Counters::bump(&self.shared.counters.watch_events);
                    for id in watchers {
                        if id == DEFAULT_WATCHER {
                            self.broadcast(&event);
                            continue;
                        }
                        match self.sinks.remove(&id) {
                            Some(Sink::Once(tx)) => {
                                let _ = tx.send(Ok(event.clone()));
                            }
                            Some(Sink::Stream(tx)) if tx.send(event.clone()).is_ok() => {
                                self.sinks.insert(id, Sink::Stream(tx));
                            }
                            // The PersistentWatch was dropped: stop re-registering it.
                            Some(Sink::Stream(_)) => self.session.forget_watcher(id),
                            None => {}
                        }
                    }
                }
                Action::DropWatcher(id) => {
                    self.sinks.remove(&id);
                }
                Action::State(s) => {
                    if s == SessionState::Expired {
                        Counters::bump(&self.shared.counters.session_expiries);
                    }
                    if s.is_terminal() {
                        if let Ok(mut i) = self.shared.info.lock() {
                            i.failure = Some(self.session.terminal_error());
                        }
                    }
                    self.shared.state.send_replace(s);
                    self.broadcast(&WatchedEvent::state_change(s));
                }
                Action::Established {
                    host,
                    session_id,
                    password,
                    timeout,
                } => {
                    if let Ok(mut i) = self.shared.info.lock() {
                        i.session_id = session_id;
                        i.password = password;
                        i.timeout = timeout;
                        i.host = Some(host);
                        i.last_connect_error = None;
                    }
                    self.established = true;
                    if self.ever_established {
                        Counters::bump(&self.shared.counters.reconnects);
                    }
                    self.ever_established = true;
                }
                Action::ProbeReadWrite { host, timeout } => {
                    if self.probing.is_none() {
                        self.probing = Some(probe(host, timeout, self.tls.clone()));
                    }
                }
                Action::Finished => {
                    let state = self.session.state();
                    let err = self.session.terminal_error();
                    for (_, s) in self.sinks.drain() {
                        match s {
                            Sink::Once(tx) => {
                                let _ = tx.send(Err(err.clone()));
                            }
                            Sink::Stream(tx) => {
                                let _ = tx.send(WatchedEvent::state_change(state));
                            }
                        }
                    }
                    self.finished = true;
                }
            }
        }
    }
}
