//! [`Client`]: the typed API over the driver. Every call validates its arguments, encodes
//! the request body, hands it to the driver and decodes the reply.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::Instrument;
use zk_proto::ops::{
    Create2Response, CreateResponse, GetAclResponse, GetAllChildrenNumberResponse,
    GetChildren2Response, GetChildrenResponse, GetDataResponse, GetEphemeralsResponse,
    StatResponse, WhoAmIResponse,
};
use zk_proto::{
    Acl, AddWatchMode, ClientInfo, CreateMode, ErrorCode, JuteReader, JuteWrite, OpCode, Record,
    Stat, WatcherType,
};

use crate::arena;
use crate::builder::ClientBuilder;
use crate::driver::{Command, Shared, Sink};
use crate::error::{Error, Result};
use crate::hosts::HostPort;
use crate::metrics::Metrics;
use crate::multi::{MultiRead, Transaction};
use crate::path::{validate_path, Chroot};
use crate::session::{PostAction, Reply, Submit};
use crate::state::SessionState;
use crate::watch::registry::{WatchKind, WatcherId, DEFAULT_WATCHER};
use crate::watch::{EventStream, PersistentWatch, WatchFuture};

/// The znode holding the ensemble configuration (never under the chroot).
pub const CONFIG_NODE: &str = "/zookeeper/config";

pub(crate) struct Inner {
    pub tx: mpsc::UnboundedSender<Command>,
    pub chroot: Chroot,
    pub next_watcher: AtomicU64,
    pub shared: Arc<Shared>,
    pub state_rx: watch::Receiver<SessionState>,
    pub max_frame: usize,
}

/// A ZooKeeper session. Cheap to clone (all clones share the session); the session is
/// closed when the last clone is dropped or [`Client::close`] is called.
///
/// ```no_run
/// use zk_client::{Client, CreateMode, Acl};
/// # async fn f() -> zk_client::Result<()> {
/// let client = Client::connect("127.0.0.1:2181/app").await?;
/// client.create("/x", b"v1", &Acl::open_unsafe(), CreateMode::Persistent).await?;
/// let (data, stat) = client.get_data("/x", true).await?;
/// assert_eq!(&data[..], b"v1");
/// client.set_data("/x", b"v2", Some(stat.version)).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("session_id", &format_args!("{:#x}", self.session_id()))
            .field("state", &self.state())
            .finish()
    }
}

fn version(v: Option<i32>) -> i32 {
    v.unwrap_or(-1)
}

/// The reply's body, or its error code naming `path` (the caller's path, so messages say
/// which node; empty for requests not about a node).
fn ok_body(reply: Reply, path: &str) -> Result<JuteReader> {
    if reply.err == ErrorCode::Ok {
        Ok(JuteReader::new(reply.body))
    } else {
        Err(Error::from_code_at(reply.err, path))
    }
}

/// The server path a request body starts with, for the request's span (requests about
/// one node put its path first).
fn body_path(op: OpCode, body: &[u8]) -> Option<String> {
    use OpCode::*;
    if !matches!(
        op,
        Create
            | Delete
            | Exists
            | GetData
            | SetData
            | GetAcl
            | SetAcl
            | GetChildren
            | Sync
            | GetChildren2
            | CheckWatches
            | RemoveWatches
            | CreateContainer
            | CreateTtl
            | Create2
            | GetEphemerals
            | GetAllChildrenNumber
            | AddWatch
    ) {
        return None;
    }
    let mut b = body;
    if b.len() < 4 {
        return None;
    }
    let len = usize::try_from(b.get_i32()).ok()?;
    let p = b.get(..len)?;
    Some(String::from_utf8_lossy(p).into_owned())
}

fn decode<T: Record>(reply: Reply, path: &str) -> Result<T> {
    let mut r = ok_body(reply, path)?;
    let v = T::read(&mut r)?;
    Ok(v)
}

impl Client {
    /// Connects with default settings and waits for the session.
    ///
    /// `hosts` is `"host:port[,host:port...][/chroot]"`.
    ///
    /// ```no_run
    /// # async fn f() -> zk_client::Result<()> {
    /// let c = zk_client::Client::connect("127.0.0.1:2181,127.0.0.1:2182/app").await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(hosts: &str) -> Result<Client> {
        ClientBuilder::new(hosts).connect().await
    }

    /// A builder for the other settings (timeouts, auth, read-only, backoff, resume...).
    ///
    /// ```no_run
    /// # async fn f() -> zk_client::Result<()> {
    /// let c = zk_client::Client::builder("127.0.0.1:2181").read_only(true).connect().await?;
    /// # Ok(()) }
    /// ```
    pub fn builder(hosts: &str) -> ClientBuilder {
        ClientBuilder::new(hosts)
    }

    // ---- session ----

    /// Current state.
    ///
    /// ```no_run
    /// # async fn f(c: zk_client::Client) -> zk_client::Result<()> {
    /// if c.state().is_connected() { /* ... */ }
    /// # Ok(()) }
    /// ```
    pub fn state(&self) -> SessionState {
        *self.inner.state_rx.borrow()
    }

    /// A watch channel of the state (latest value; for every transition use [`Self::events`]).
    ///
    /// ```no_run
    /// # async fn f(c: zk_client::Client) -> zk_client::Result<()> {
    /// let mut rx = c.state_watch();
    /// rx.changed().await.ok();
    /// println!("now {:?}", *rx.borrow());
    /// # Ok(()) }
    /// ```
    pub fn state_watch(&self) -> watch::Receiver<SessionState> {
        self.inner.state_rx.clone()
    }

    /// Session id (0 before the first handshake).
    ///
    /// ```no_run
    /// # async fn f(c: zk_client::Client) -> zk_client::Result<()> {
    /// println!("session {:#x}", c.session_id());
    /// # Ok(()) }
    /// ```
    pub fn session_id(&self) -> i64 {
        self.inner
            .shared
            .info
            .lock()
            .map(|i| i.session_id)
            .unwrap_or(0)
    }

    /// Session password, to resume the session from another client
    /// ([`ClientBuilder::session`]).
    ///
    /// ```no_run
    /// # async fn f(c: zk_client::Client) -> zk_client::Result<()> {
    /// let again = zk_client::Client::builder("127.0.0.1:2181")
    ///     .session(c.session_id(), c.session_password())
    ///     .connect()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn session_password(&self) -> Bytes {
        self.inner
            .shared
            .info
            .lock()
            .map(|i| i.password.clone())
            .unwrap_or_default()
    }

    /// The session timeout negotiated with the server.
    ///
    /// ```no_run
    /// # async fn f(c: zk_client::Client) -> zk_client::Result<()> {
    /// let t = c.negotiated_timeout();
    /// # Ok(()) }
    /// ```
    pub fn negotiated_timeout(&self) -> Duration {
        self.inner
            .shared
            .info
            .lock()
            .map(|i| i.timeout)
            .unwrap_or_default()
    }

    /// The server of the most recent successful handshake (`host:port`).
    ///
    /// ```no_run
    /// # async fn f(c: zk_client::Client) -> zk_client::Result<()> {
    /// if let Some(h) = c.connected_host() { println!("talking to {h}"); }
    /// # Ok(()) }
    /// ```
    pub fn connected_host(&self) -> Option<HostPort> {
        self.inner
            .shared
            .info
            .lock()
            .ok()
            .and_then(|i| i.host.clone())
    }

    /// The chroot of this client (`""` if none).
    ///
    /// ```no_run
    /// # async fn f(c: zk_client::Client) -> zk_client::Result<()> {
    /// assert!(c.chroot().is_empty() || c.chroot().starts_with('/'));
    /// # Ok(()) }
    /// ```
    pub fn chroot(&self) -> &str {
        self.inner.chroot.as_str()
    }

    /// A new subscription to the session's events: state changes and the events of
    /// `watch: true` calls made after subscribing. Unbounded: never drops an event.
    ///
    /// ```no_run
    /// # async fn f(c: zk_client::Client) -> zk_client::Result<()> {
    /// let mut events = c.events();
    /// c.exists("/flag", true).await?;
    /// while let Some(ev) = events.recv().await {
    ///     println!("{:?} {:?} {}", ev.state, ev.event_type, ev.path);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn events(&self) -> EventStream {
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = self.inner.tx.send(Command::Subscribe(tx));
        EventStream::new(rx)
    }

    /// Every state transition from now on, in order (a filtered [`Self::events`]).
    ///
    /// ```no_run
    /// # async fn f(c: zk_client::Client) -> zk_client::Result<()> {
    /// use futures::StreamExt;
    /// let mut states = Box::pin(c.state_changes());
    /// while let Some(s) = states.next().await {
    ///     println!("session is now {s:?}");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn state_changes(&self) -> impl futures::Stream<Item = SessionState> + Send + 'static {
        use futures::StreamExt;
        self.events().filter_map(|ev| async move {
            (ev.event_type == zk_proto::EventType::None).then_some(ev.state)
        })
    }

    /// Waits until the state satisfies `pred` (e.g. `SessionState::is_connected`), failing
    /// after `timeout`.
    ///
    /// ```no_run
    /// # async fn f(c: zk_client::Client) -> zk_client::Result<()> {
    /// use std::time::Duration;
    /// use zk_client::SessionState;
    /// c.wait_for_state(Duration::from_secs(5), SessionState::is_connected).await?;
    /// # Ok(()) }
    /// ```
    pub async fn wait_for_state(
        &self,
        timeout: Duration,
        pred: impl Fn(SessionState) -> bool,
    ) -> Result<SessionState> {
        let mut rx = self.inner.state_rx.clone();
        let fut = async {
            loop {
                let s = *rx.borrow_and_update();
                if pred(s) {
                    return Ok(s);
                }
                if s.is_terminal() {
                    return Err(self.terminal_error(s));
                }
                if rx.changed().await.is_err() {
                    let s = *rx.borrow();
                    return if pred(s) {
                        Ok(s)
                    } else {
                        Err(self.terminal_error(s))
                    };
                }
            }
        };
        tokio::time::timeout(timeout, fut)
            .await
            .map_err(|_| Error::Timeout)?
    }

    /// Closes the session on the server (its ephemerals go away) and stops the client.
    ///
    /// ```no_run
    /// # async fn f(c: zk_client::Client) -> zk_client::Result<()> {
    /// c.close().await?;
    /// # Ok(()) }
    /// ```
    pub async fn close(&self) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        if self.inner.tx.send(Command::Close(tx)).is_err() {
            return Ok(());
        }
        match rx.await {
            Ok(Ok(_)) | Ok(Err(Error::Closed)) | Err(_) => Ok(()),
            Ok(Err(e)) => Err(e),
        }
    }

    // ---- plumbing ----

    /// The error of terminal state `s`, with the details the driver recorded (e.g. why a
    /// SASL login was refused).
    fn terminal_error(&self, s: SessionState) -> Error {
        let recorded = self
            .inner
            .shared
            .info
            .lock()
            .ok()
            .and_then(|i| i.failure.clone());
        match recorded {
            Some(e) if s.is_terminal() && self.state() == s => e,
            _ => terminal(s),
        }
    }

    /// Why the last connection attempt failed (host and cause: refused, TLS handshake,
    /// closed by the server...), until a connection succeeds again.
    ///
    /// ```no_run
    /// # fn f(c: zk_client::Client) {
    /// if let Some(e) = c.last_connect_error() {
    ///     eprintln!("still not connected: {e}");
    /// }
    /// # }
    /// ```
    pub fn last_connect_error(&self) -> Option<Error> {
        self.inner
            .shared
            .info
            .lock()
            .ok()
            .and_then(|i| i.last_connect_error.clone())
    }

    pub(crate) fn server_path(&self, path: &str) -> String {
        self.inner.chroot.to_server(path)
    }

    pub(crate) fn client_path(&self, path: &str) -> String {
        self.inner.chroot.to_client(path)
    }

    fn body(&self, path: &str, extra: usize) -> BytesMut {
        let mut b = arena::take(4 + self.inner.chroot.as_str().len() + path.len() + extra);
        let (a, p) = self.inner.chroot.parts(path);
        b.put_i32((a.len() + p.len()) as i32);
        b.put_slice(a.as_bytes());
        b.put_slice(p.as_bytes());
        b
    }

    fn new_watcher(&self) -> WatcherId {
        self.inner.next_watcher.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) async fn call(
        &self,
        op: OpCode,
        body: BytesMut,
        post: PostAction,
        sink: Option<(WatcherId, Sink)>,
    ) -> Result<Reply> {
        let len = body.len() + 8;
        if len > self.inner.max_frame {
            return Err(Error::DataTooLarge {
                len,
                max: self.inner.max_frame,
            });
        }
        let span = tracing::debug_span!(
            "zk_request",
            op = ?op,
            path = tracing::field::Empty,
            xid = tracing::field::Empty,
            zxid = tracing::field::Empty,
            server = tracing::field::Empty,
            err = tracing::field::Empty,
        );
        if !span.is_disabled() {
            if let Some(p) = body_path(op, &body) {
                span.record("path", self.client_path(&p).as_str());
            }
        }
        let started = std::time::Instant::now();
        let (tx, rx) = oneshot::channel();
        let req = Submit {
            op,
            body: arena::finish(body),
            post,
            reply: tx,
        };
        // Sent before the first await: callers rely on the order of their calls' first
        // polls being the order on the wire (see `synced`).
        let sent = self.inner.tx.send(Command::Request(req, sink));
        let res = async {
            sent.map_err(|_| self.terminal_error(self.state()))?;
            rx.await.map_err(|_| self.terminal_error(self.state()))?
        }
        .instrument(span.clone())
        .await;
        let code = match &res {
            Ok(r) if r.err == ErrorCode::Ok => None,
            // How the server says "no such node" to `exists`: an answer, not an error.
            Ok(r) if op == OpCode::Exists && r.err == ErrorCode::NoNode => None,
            Ok(r) => Some(r.err),
            Err(e) => e.code(),
        };
        self.inner.shared.counters.request(started.elapsed(), code);
        if !span.is_disabled() {
            if let Ok(r) = &res {
                span.record("xid", r.xid);
                span.record("zxid", r.zxid);
            }
            if let Some(h) = self.connected_host() {
                span.record("server", h.to_string().as_str());
            }
            if let Some(c) = code {
                span.record("err", tracing::field::debug(c));
            }
        }
        res
    }

    /// This client's counters (requests, latency, errors by code, connection attempts,
    /// reconnects, expiries, watch events), shared by its clones; see [`Metrics`].
    ///
    /// ```no_run
    /// # fn f(c: zk_client::Client) {
    /// let m = c.metrics();
    /// println!("{} requests, {} errors, mean {:?}, {} reconnects",
    ///     m.requests, m.error_count(), m.mean_latency(), m.reconnects);
    /// # }
    /// ```
    pub fn metrics(&self) -> Metrics {
        self.inner.shared.counters.snapshot()
    }

    async fn path_watch_call(
        &self,
        op: OpCode,
        path: &str,
        kind: WatchKind,
        watcher: Option<(WatcherId, Option<Sink>)>,
    ) -> Result<Reply> {
        validate_path(path, false)?;
        let mut b = self.body(path, 1);
        b.put_u8(watcher.is_some() as u8);
        let (post, sink) = match watcher {
            None => (PostAction::None, None),
            Some((id, sink)) => (
                PostAction::Watch {
                    kind,
                    path: self.server_path(path),
                    watcher: id,
                },
                sink.map(|s| (id, s)),
            ),
        };
        self.call(op, b, post, sink).await
    }

    fn once(&self) -> (WatcherId, Sink, WatchFuture) {
        let (tx, rx) = oneshot::channel();
        (self.new_watcher(), Sink::Once(tx), WatchFuture::new(rx))
    }

    // ---- create / delete ----

    /// Creates a node and returns its actual path (sequential modes append a suffix).
    /// `Container` works here; TTL modes need [`Client::create_ttl`].
    ///
    /// Fails with `NodeExists`, `NoNode` (no parent), `NoChildrenForEphemerals`, `NoAuth`.
    ///
    /// ```no_run
    /// # async fn f(c: zk_client::Client) -> zk_client::Result<()> {
    /// use zk_client::{Acl, CreateMode};
    /// let p = c.create("/jobs/job-", b"x", &Acl::open_unsafe(), CreateMode::PersistentSequential).await?;
    /// assert!(p.starts_with("/jobs/job-"));
    /// # Ok(()) }
    /// ```
    pub async fn create(
        &self,
        path: &str,
        data: &[u8],
        acl: &[Acl],
        mode: CreateMode,
    ) -> Result<String> {
        if mode == CreateMode::Container {
            return Ok(self.create_with_stat(path, data, acl, mode).await?.0);
        }
        let reply = self
            .create_call(OpCode::Create, path, Some(data), acl, mode, None)
            .await?;
        let r: CreateResponse = decode(reply, path)?;
        Ok(self.client_path(&r.path))
    }

    /// Creates a node and returns its path and Stat (create2).
    ///
    /// ```no_run
    /// # async fn f(c: zk_client::Client) -> zk_client::Result<()> {
    /// use zk_client::{Acl, CreateMode};
    /// let (path, stat) = c.create_with_stat("/me", b"", &Acl::open_unsafe(), CreateMode::Ephemeral).await?;
    /// assert_eq!(stat.ephemeral_owner, c.session_id());
    /// # Ok(()) }
    /// ```
    pub async fn create_with_stat(
        &self,
        path: &str,
        data: &[u8],
        acl: &[Acl],
        mode: CreateMode,
    ) -> Result<(String, Stat)> {
        let op = if mode == CreateMode::Container {
            OpCode::CreateContainer
        } else {
            OpCode::Create2
        };
        let reply = self
            .create_call(op, path, Some(data), acl, mode, None)
            .await?;
        let r: Create2Response = decode(reply, path)?;
        Ok((self.client_path(&r.path), r.stat))
    }

    /// Creates a node with a time-to-live (`PersistentWithTtl` or
    /// `PersistentSequentialWithTtl`); the server must enable extended types.
    ///
    /// ```no_run
    /// # async fn f(c: zk_client::Client) -> zk_client::Result<()> {
    /// use std::time::Duration;
    /// use zk_client::{Acl, CreateMode};
    /// c.create_ttl("/lease", b"", &Acl::open_unsafe(), CreateMode::PersistentWithTtl, Duration::from_secs(30)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn create_ttl(
        &self,
        path: &str,
        data: &[u8],
        acl: &[Acl],
        mode: CreateMode,
        ttl: Duration,
    ) -> Result<(String, Stat)> {
        if !mode.is_ttl() {
            return Err(Error::BadArgument("create_ttl needs a TTL create mode"));
        }
        let ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        if zk_proto::create_mode::ttl_to_ephemeral_owner(ms).is_none() {
            return Err(Error::BadArgument("TTL out of range"));
        }
        let reply = self
            .create_call(OpCode::CreateTtl, path, Some(data), acl, mode, Some(ms))
            .await?;
        let r: Create2Response = decode(reply, path)?;
        Ok((self.client_path(&r.path), r.stat))
    }

    /// Creates a node whose data may be absent (`None`: null, as Java's
    /// `create(path, null, ...)`, which a later read tells apart from empty data, see
    /// [`Self::get_data_opt`]), in any mode: TTL modes take `ttl`, the others refuse it.
    /// Returns the actual path and the Stat.
    ///
    /// ```no_run
    /// # async fn f(c: zk_client::Client) -> zk_client::Result<()> {
    /// use zk_client::{Acl, CreateMode};
    /// let (path, _stat) = c.create_opt("/flag", None, &Acl::open_unsafe(), CreateMode::Persistent, None).await?;
    /// assert_eq!(c.get_data_opt(&path, false).await?.0, None);
    /// # Ok(()) }
    /// ```
    pub async fn create_opt(
        &self,
        path: &str,
        data: Option<&[u8]>,
        acl: &[Acl],
        mode: CreateMode,
        ttl: Option<Duration>,
    ) -> Result<(String, Stat)> {
        let ms = match (mode.is_ttl(), ttl) {
            (true, Some(t)) => {
                let ms = i64::try_from(t.as_millis()).unwrap_or(i64::MAX);
                if zk_proto::create_mode::ttl_to_ephemeral_owner(ms).is_none() {
                    return Err(Error::BadArgument("TTL out of range"));
                }
                Some(ms)
            }
            (true, None) => return Err(Error::BadArgument("TTL modes need a TTL")),
            (false, Some(_)) => return Err(Error::BadArgument("a TTL needs a TTL create mode")),
            (false, None) => None,
        };
        let op = if ms.is_some() {
            OpCode::CreateTtl
        } else if mode == CreateMode::Container {
            OpCode::CreateContainer
        } else {
            OpCode::Create2
        };
        let reply = self.create_call(op, path, data, acl, mode, ms).await?;
        let r: Create2Response = decode(reply, path)?;
        Ok((self.client_path(&r.path), r.stat))
    }

    async fn create_call(
        &self,
        op: OpCode,
        path: &str,
        data: Option<&[u8]>,
        acl: &[Acl],
        mode: CreateMode,
        ttl: Option<i64>,
    ) -> Result<Reply> {
        validate_path(path, mode.is_sequential())?;
        if mode.is_ttl() && ttl.is_none() {
            return Err(Error::BadArgument("TTL modes need create_ttl"));
        }
        if acl.is_empty() {
            return Err(Error::InvalidAcl);
        }
        let mut b = self.body(path, data.map_or(0, <[u8]>::len) + 64);
        b.write_opt_buffer(data);
        b.write_vec(acl);
        b.put_i32(mode.to_flags());
        if let Some(t) = ttl {
            b.put_i64(t);
        }
        self.call(op, b, PostAction::None, None).await
    }

    /// Deletes a node; `version: None` matches any version.
    ///
    /// Fails with `NoNode`, `BadVersion`, `NotEmpty`, `NoAuth`.
    ///
    /// ```no_run
    /// # async fn f(c: zk_client::Client) -> zk_client::Result<()> {
    /// match c.delete("/old", None).await {
    ///     Ok(()) | Err(zk_client::Error::NoNode { .. }) => {}
    ///     Err(e) => return Err(e),
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn delete(&self, path: &str, version: Option<i32>) -> Result<()> {
        validate_path(path, false)?;
        let mut b = self.body(path, 4);
        b.put_i32(self::version(version));
        ok_body(
            self.call(OpCode::Delete, b, PostAction::None, None).await?,
            path,
        )?;
        Ok(())
    }

    // ---- reads ----

    /// The node's Stat, or `None` if it does not exist. With `watch`, a one-shot watch
    /// (creation, data change or deletion) is delivered on [`Self::events`].
    ///
    /// ```no_run
    /// # async fn f(c: zk_client::Client) -> zk_client::Result<()> {
    /// if let Some(stat) = c.exists("/x", false).await? {
    ///     println!("version {}", stat.version);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn exists(&self, path: &str, watch: bool) -> Result<Option<Stat>> {
        let w = watch.then_some((DEFAULT_WATCHER, None));
        let reply = self
            .path_watch_call(OpCode::Exists, path, WatchKind::Exists, w)
            .await?;
        exists_reply(reply, path)
    }

    /// Like [`Self::exists`] with a per-call watch future.
    ///
    /// ```no_run
    /// # async fn f(c: zk_client::Client) -> zk_client::Result<()> {
    /// let (stat, created) = c.exists_watched("/ready").await?;
    /// if stat.is_none() {
    ///     created.await?; // NodeCreated
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn exists_watched(&self, path: &str) -> Result<(Option<Stat>, WatchFuture)> {
        let (id, sink, fut) = self.once();
        let reply = self
            .path_watch_call(
                OpCode::Exists,
                path,
                WatchKind::Exists,
                Some((id, Some(sink))),
            )
            .await?;
        Ok((exists_reply(reply, path)?, fut))
    }

    /// The node's data and Stat. With `watch`, a one-shot watch (data change or deletion)
    /// is delivered on [`Self::events`].
    ///
    /// ```no_run
    /// # async fn f(client: zk_client::Client) -> zk_client::Result<()> {
    /// let watch = true;
    /// let (data, stat) = client.get_data("/path", watch).await?;
    /// # Ok(()) }
    /// ```
    pub async fn get_data(&self, path: &str, watch: bool) -> Result<(Bytes, Stat)> {
        let w = watch.then_some((DEFAULT_WATCHER, None));
        let reply = self
            .path_watch_call(OpCode::GetData, path, WatchKind::Data, w)
            .await?;
        let r: GetDataResponse = decode(reply, path)?;
        Ok((r.data.unwrap_or_default(), r.stat))
    }

    /// Like [`Self::get_data`] with a per-call watch future.
    ///
    /// ```no_run
    /// # async fn f(c: zk_client::Client) -> zk_client::Result<()> {
    /// let (data, _stat, changed) = c.get_data_watched("/config").await?;
    /// let ev = changed.await?;
    /// # Ok(()) }
    /// ```
    pub async fn get_data_watched(&self, path: &str) -> Result<(Bytes, Stat, WatchFuture)> {
        let (id, sink, fut) = self.once();
        let reply = self
            .path_watch_call(
                OpCode::GetData,
                path,
                WatchKind::Data,
                Some((id, Some(sink))),
            )
            .await?;
        let r: GetDataResponse = decode(reply, path)?;
        Ok((r.data.unwrap_or_default(), r.stat, fut))
    }

    /// Like [`Self::get_data`], with `None` when the node's data is null (created without
    /// data by Java's client or [`Self::create_opt`]) rather than empty.
    ///
    /// ```no_run
    /// # async fn f(c: zk_client::Client) -> zk_client::Result<()> {
    /// let (data, _stat) = c.get_data_opt("/x", false).await?;
    /// println!("{}", data.map_or("null".into(), |d| String::from_utf8_lossy(&d).into_owned()));
    /// # Ok(()) }
    /// ```
    pub async fn get_data_opt(&self, path: &str, watch: bool) -> Result<(Option<Bytes>, Stat)> {
        let w = watch.then_some((DEFAULT_WATCHER, None));
        let reply = self
            .path_watch_call(OpCode::GetData, path, WatchKind::Data, w)
            .await?;
        let r: GetDataResponse = decode(reply, path)?;
        Ok((r.data, r.stat))
    }

    /// Replaces the data; `version: None` matches any. Returns the new Stat.
    ///
    /// ```no_run
    /// # async fn f(c: zk_client::Client) -> zk_client::Result<()> {
    /// let (_, stat) = c.get_data("/counter", false).await?;
    /// c.set_data("/counter", b"2", Some(stat.version)).await?; // fails with BadVersion on a race
    /// # Ok(()) }
    /// ```
    pub async fn set_data(&self, path: &str, data: &[u8], version: Option<i32>) -> Result<Stat> {
        validate_path(path, false)?;
        let mut b = self.body(path, data.len() + 8);
        b.write_buffer(data);
        b.put_i32(self::version(version));
        let r: StatResponse = decode(
            self.call(OpCode::SetData, b, PostAction::None, None)
                .await?,
            path,
        )?;
        Ok(r.stat)
    }

    /// The node's ACL and Stat.
    ///
    /// ```no_run
    /// # async fn f(c: zk_client::Client) -> zk_client::Result<()> {
    /// let (acl, stat) = c.get_acl("/x").await?;
    /// println!("{} entries, aversion {}", acl.len(), stat.aversion);
    /// # Ok(()) }
    /// ```
    pub async fn get_acl(&self, path: &str) -> Result<(Vec<Acl>, Stat)> {
        validate_path(path, false)?;
        let b = self.body(path, 0);
        let r: GetAclResponse = decode(
            self.call(OpCode::GetAcl, b, PostAction::None, None).await?,
            path,
        )?;
        Ok((r.acl, r.stat))
    }

    /// Replaces the ACL; `version` is the expected ACL version (`aversion`).
    ///
    /// ```no_run
    /// # async fn f(c: zk_client::Client) -> zk_client::Result<()> {
    /// use zk_client::Acl;
    /// c.add_auth("digest", b"alice:secret").await?;
    /// c.set_acl("/x", &Acl::creator_all(), None).await?;
    /// # Ok(()) }
    /// ```
    pub async fn set_acl(&self, path: &str, acl: &[Acl], version: Option<i32>) -> Result<Stat> {
        validate_path(path, false)?;
        if acl.is_empty() {
            return Err(Error::InvalidAcl);
        }
        let mut b = self.body(path, 64);
        b.write_vec(acl);
        b.put_i32(self::version(version));
        let r: StatResponse = decode(
            self.call(OpCode::SetAcl, b, PostAction::None, None).await?,
            path,
        )?;
        Ok(r.stat)
    }

    /// Child names. With `watch`, a one-shot child watch (children change or deletion) is
    /// delivered on [`Self::events`].
    ///
    /// ```no_run
    /// # async fn f(c: zk_client::Client) -> zk_client::Result<()> {
    /// for name in c.get_children("/", false).await? {
    ///     println!("/{name}");
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn get_children(&self, path: &str, watch: bool) -> Result<Vec<String>> {
        let w = watch.then_some((DEFAULT_WATCHER, None));
        let reply = self
            .path_watch_call(OpCode::GetChildren, path, WatchKind::Children, w)
            .await?;
        let r: GetChildrenResponse = decode(reply, path)?;
        Ok(r.children)
    }

    /// Child names and the parent's Stat (getChildren2).
    ///
    /// ```no_run
    /// # async fn f(c: zk_client::Client) -> zk_client::Result<()> {
    /// let (kids, stat) = c.get_children_with_stat("/", false).await?;
    /// assert_eq!(kids.len() as i32, stat.num_children);
    /// # Ok(()) }
    /// ```
    pub async fn get_children_with_stat(
        &self,
        path: &str,
        watch: bool,
    ) -> Result<(Vec<String>, Stat)> {
        let w = watch.then_some((DEFAULT_WATCHER, None));
        let reply = self
            .path_watch_call(OpCode::GetChildren2, path, WatchKind::Children, w)
            .await?;
        let r: GetChildren2Response = decode(reply, path)?;
        Ok((r.children, r.stat))
    }

    /// Like [`Self::get_children_with_stat`] with a per-call watch future.
    ///
    /// ```no_run
    /// # async fn f(c: zk_client::Client) -> zk_client::Result<()> {
    /// let (kids, _stat, changed) = c.get_children_watched("/workers").await?;
    /// changed.await?; // NodeChildrenChanged
    /// # Ok(()) }
    /// ```
    pub async fn get_children_watched(
        &self,
        path: &str,
    ) -> Result<(Vec<String>, Stat, WatchFuture)> {
        let (id, sink, fut) = self.once();
        let reply = self
            .path_watch_call(
                OpCode::GetChildren2,
                path,
                WatchKind::Children,
                Some((id, Some(sink))),
            )
            .await?;
        let r: GetChildren2Response = decode(reply, path)?;
        Ok((r.children, r.stat, fut))
    }

    /// Number of descendants of the node (not counting itself).
    ///
    /// ```no_run
    /// # async fn f(c: zk_client::Client) -> zk_client::Result<()> {
    /// let n = c.get_all_children_number("/").await?;
    /// # Ok(()) }
    /// ```
    pub async fn get_all_children_number(&self, path: &str) -> Result<i32> {
        validate_path(path, false)?;
        let b = self.body(path, 0);
        let r: GetAllChildrenNumberResponse = decode(
            self.call(OpCode::GetAllChildrenNumber, b, PostAction::None, None)
                .await?,
            path,
        )?;
        Ok(r.total_number)
    }

    /// Paths of this session's ephemeral nodes whose path starts with `prefix` (`"/"` for
    /// all).
    ///
    /// ```no_run
    /// # async fn f(c: zk_client::Client) -> zk_client::Result<()> {
    /// let mine = c.get_ephemerals("/").await?;
    /// # Ok(()) }
    /// ```
    pub async fn get_ephemerals(&self, prefix: &str) -> Result<Vec<String>> {
        if !prefix.starts_with('/') {
            return Err(Error::InvalidPath {
                path: prefix.to_owned(),
                reason: "path must start with /",
            });
        }
        let b = self.body(prefix, 0);
        let r: GetEphemeralsResponse = decode(
            self.call(OpCode::GetEphemerals, b, PostAction::None, None)
                .await?,
            prefix,
        )?;
        Ok(r.ephemerals.iter().map(|p| self.client_path(p)).collect())
    }

    /// Waits until the server this client talks to has caught up with the leader for `path`.
    ///
    /// ```no_run
    /// # async fn f(c: zk_client::Client) -> zk_client::Result<()> {
    /// c.sync("/").await?;
    /// let (fresh, _) = c.get_data("/x", false).await?;
    /// # Ok(()) }
    /// ```
    pub async fn sync(&self, path: &str) -> Result<()> {
        validate_path(path, false)?;
        let b = self.body(path, 0);
        ok_body(
            self.call(OpCode::Sync, b, PostAction::None, None).await?,
            path,
        )?;
        Ok(())
    }

    // ---- synced reads ----

    /// [`Self::sync`] then [`Self::get_data`] on the same connection, in one round trip.
    ///
    /// What it promises: reads in ZooKeeper are answered by the member the client is
    /// connected to, which may lag the leader, so a plain read can miss a write another
    /// client already had acknowledged. `sync` makes that member apply everything the
    /// leader had committed when it handled the sync, and the read, queued behind it on the
    /// same connection (a session's requests are answered in order), sees at least those
    /// writes. Both are sent at once; if the connection drops between them the call fails
    /// with that error rather than re-reading unsynced from another member.
    ///
    /// What it does not: it is not a linearizable read. The leader answers a sync without
    /// a quorum round (ZOOKEEPER-1675 asks for sync to become a quorum operation), so a
    /// deposed leader that has not yet noticed it is cut off can answer one from its stale
    /// state; and writes racing the call may or may not be seen. For a decision that must
    /// not act on stale state, use a conditional write (a version check or a `multi` with
    /// `check`) instead.
    ///
    /// ```no_run
    /// # async fn f(c: zk_client::Client) -> zk_client::Result<()> {
    /// // Another process wrote /config and told us so out of band: see its write.
    /// let (data, stat) = c.get_data_synced("/config").await?;
    /// # Ok(()) }
    /// ```
    pub async fn get_data_synced(&self, path: &str) -> Result<(Bytes, Stat)> {
        self.synced(path, self.get_data(path, false)).await
    }

    /// [`Self::sync`] then [`Self::get_children`] (see [`Self::get_data_synced`] for what
    /// it promises and what not).
    ///
    /// ```no_run
    /// # async fn f(c: zk_client::Client) -> zk_client::Result<()> {
    /// let members = c.get_children_synced("/group").await?;
    /// # Ok(()) }
    /// ```
    pub async fn get_children_synced(&self, path: &str) -> Result<Vec<String>> {
        self.synced(path, self.get_children(path, false)).await
    }

    /// [`Self::sync`] then [`Self::exists`] (see [`Self::get_data_synced`] for what it
    /// promises and what not).
    ///
    /// ```no_run
    /// # async fn f(c: zk_client::Client) -> zk_client::Result<()> {
    /// let there = c.exists_synced("/flag").await?.is_some();
    /// # Ok(()) }
    /// ```
    pub async fn exists_synced(&self, path: &str) -> Result<Option<Stat>> {
        self.synced(path, self.exists(path, false)).await
    }

    /// Sends a sync of `path` and then `read` (both queued before either is awaited, so
    /// they share a connection); the read counts only if the sync succeeded.
    async fn synced<T>(
        &self,
        path: &str,
        read: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        // `join` polls the sync first: its request is queued before the read's.
        let (synced, value) = futures::future::join(self.sync(path), read).await;
        synced?;
        value
    }

    // ---- multi ----

    /// Starts an atomic transaction (see [`Transaction`]).
    ///
    /// ```no_run
    /// # async fn f(c: zk_client::Client) -> zk_client::Result<()> {
    /// use zk_client::{Acl, CreateMode};
    /// c.multi()
    ///     .create("/a", b"", &Acl::open_unsafe(), CreateMode::Persistent)
    ///     .create("/a/b", b"", &Acl::open_unsafe(), CreateMode::Persistent)
    ///     .commit()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn multi(&self) -> Transaction {
        Transaction::new(self.clone())
    }

    /// Starts a batch of reads answered together (see [`MultiRead`]).
    ///
    /// ```no_run
    /// # async fn f(c: zk_client::Client) -> zk_client::Result<()> {
    /// let r = c.multi_read().get_data("/a").get_children("/a").execute().await?;
    /// # Ok(()) }
    /// ```
    pub fn multi_read(&self) -> MultiRead {
        MultiRead::new(self.clone())
    }

    // ---- auth ----

    /// Adds credentials (e.g. `("digest", b"user:password")`) to the session; they are
    /// replayed after every reconnect. A rejected credential is terminal
    /// (`AuthFailed`).
    ///
    /// ```no_run
    /// # async fn f(c: zk_client::Client) -> zk_client::Result<()> {
    /// c.add_auth("digest", b"alice:secret").await?;
    /// # Ok(()) }
    /// ```
    pub async fn add_auth(&self, scheme: &str, auth: &[u8]) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .tx
            .send(Command::Auth {
                scheme: scheme.to_owned(),
                auth: Bytes::copy_from_slice(auth),
                reply: tx,
            })
            .map_err(|_| self.terminal_error(self.state()))?;
        rx.await.map_err(|_| self.terminal_error(self.state()))??;
        Ok(())
    }

    /// The identities the server attributes to this session.
    ///
    /// ```no_run
    /// # async fn f(c: zk_client::Client) -> zk_client::Result<()> {
    /// for id in c.who_am_i().await? {
    ///     println!("{}:{}", id.auth_scheme, id.user);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn who_am_i(&self) -> Result<Vec<ClientInfo>> {
        let r: WhoAmIResponse = decode(
            self.call(OpCode::WhoAmI, BytesMut::new(), PostAction::None, None)
                .await?,
            "",
        )?;
        Ok(r.client_info)
    }

    // ---- config ----

    /// The ensemble configuration (`/zookeeper/config`, never chrooted). With `watch`, a
    /// one-shot data watch is delivered on [`Self::events`] (path `/zookeeper/config`
    /// relative to the chroot rules).
    ///
    /// ```no_run
    /// # async fn f(c: zk_client::Client) -> zk_client::Result<()> {
    /// let (cfg, stat) = c.get_config(false).await?;
    /// println!("{}", String::from_utf8_lossy(&cfg));
    /// # Ok(()) }
    /// ```
    pub async fn get_config(&self, watch: bool) -> Result<(Bytes, Stat)> {
        let mut b = BytesMut::with_capacity(CONFIG_NODE.len() + 5);
        b.write_string(CONFIG_NODE);
        b.put_u8(watch as u8);
        let post = if watch {
            PostAction::Watch {
                kind: WatchKind::Data,
                path: CONFIG_NODE.to_owned(),
                watcher: DEFAULT_WATCHER,
            }
        } else {
            PostAction::None
        };
        let r: GetDataResponse = decode(
            self.call(OpCode::GetData, b, post, None).await?,
            CONFIG_NODE,
        )?;
        Ok((r.data.unwrap_or_default(), r.stat))
    }

    /// Like [`Self::get_config`] with a watch of its own: the future fires on the next
    /// config change (reconfig).
    ///
    /// ```no_run
    /// # async fn f(c: zk_client::Client) -> zk_client::Result<()> {
    /// let (cfg, _stat, changed) = c.get_config_watched().await?;
    /// changed.await?;
    /// # Ok(()) }
    /// ```
    pub async fn get_config_watched(&self) -> Result<(Bytes, Stat, WatchFuture)> {
        let (id, sink, fut) = self.once();
        let mut b = BytesMut::with_capacity(CONFIG_NODE.len() + 5);
        b.write_string(CONFIG_NODE);
        b.put_u8(1);
        let post = PostAction::Watch {
            kind: WatchKind::Data,
            path: CONFIG_NODE.to_owned(),
            watcher: id,
        };
        let r: GetDataResponse = decode(
            self.call(OpCode::GetData, b, post, Some((id, sink)))
                .await?,
            CONFIG_NODE,
        )?;
        Ok((r.data.unwrap_or_default(), r.stat, fut))
    }

    /// Replaces the host list (`"h1:2181,h2:2181"`; a chroot suffix is ignored) after the
    /// ensemble changed, as Apache's `updateServerList` (ZOOKEEPER-1355): with a seeded
    /// draw the client decides whether to move so that every member ends with its fair
    /// share of clients. True when it moves (it reconnects, keeping its session, once no
    /// request is in flight). [`ClientBuilder::follow_ensemble`](crate::ClientBuilder::follow_ensemble)
    /// does this on every config change.
    ///
    /// ```no_run
    /// # async fn f(c: zk_client::Client) -> zk_client::Result<()> {
    /// let moving = c.update_server_list("10.0.0.1:2181,10.0.0.2:2181,10.0.0.4:2181").await?;
    /// # Ok(()) }
    /// ```
    pub async fn update_server_list(&self, hosts: &str) -> Result<bool> {
        let cs = crate::hosts::ConnectString::parse(hosts)?;
        self.update_hosts(cs.hosts).await
    }

    /// [`Self::update_server_list`] with the client addresses of a config as
    /// `/zookeeper/config` holds it.
    pub async fn update_server_list_from_config(&self, config: &str) -> Result<bool> {
        let hosts = crate::hosts::client_hosts_from_config(config)?;
        if hosts.is_empty() {
            return Err(Error::InvalidConfig(format!(
                "ensemble config lists no client address: {config:?}"
            )));
        }
        self.update_hosts(hosts).await
    }

    async fn update_hosts(&self, hosts: Vec<HostPort>) -> Result<bool> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .tx
            .send(Command::UpdateHosts(hosts, tx))
            .map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)
    }

    /// Follows `/zookeeper/config` until the last handle is dropped or the session ends,
    /// updating the host list on every change (see [`Self::update_server_list`]).
    pub(crate) fn spawn_ensemble_follower(&self) {
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut last: Option<Bytes> = None;
            loop {
                let Some(inner) = weak.upgrade() else { return };
                let c = Client { inner };
                if c.state().is_terminal() {
                    return;
                }
                match c.get_config_watched().await {
                    Ok((data, _, changed)) => {
                        if last.as_ref() != Some(&data) {
                            let text = String::from_utf8_lossy(&data);
                            if let Err(e) = c.update_server_list_from_config(&text).await {
                                tracing::warn!(error = %e, "following the ensemble: bad config");
                            }
                            last = Some(data);
                        }
                        drop(c);
                        // Fires on a change, or fails when the session ends.
                        let _ = changed.await;
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "following the ensemble: get_config failed");
                        drop(c);
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        });
    }

    /// Dynamic reconfiguration: incremental (`joining` / `leaving`, comma separated) or
    /// whole (`new_members`); `from_config` is the expected config version. Returns the
    /// new configuration.
    ///
    /// ```no_run
    /// # async fn f(c: zk_client::Client) -> zk_client::Result<()> {
    /// c.add_auth("digest", b"super:secret").await?;
    /// let (new_cfg, _) = c.reconfig(None, Some("3"), None, None).await?;
    /// # Ok(()) }
    /// ```
    pub async fn reconfig(
        &self,
        joining: Option<&str>,
        leaving: Option<&str>,
        new_members: Option<&str>,
        from_config: Option<i64>,
    ) -> Result<(Bytes, Stat)> {
        let req = zk_proto::ops::ReconfigRequest {
            joining_servers: joining.map(str::to_owned),
            leaving_servers: leaving.map(str::to_owned),
            new_members: new_members.map(str::to_owned),
            cur_config_id: from_config.unwrap_or(-1),
        };
        let mut b = BytesMut::new();
        req.write(&mut b);
        let r: GetDataResponse = decode(
            self.call(OpCode::Reconfig, b, PostAction::None, None)
                .await?,
            CONFIG_NODE,
        )?;
        Ok((r.data.unwrap_or_default(), r.stat))
    }

    // ---- watches ----

    /// Adds a persistent (or persistent-recursive) watch and returns its event stream.
    /// It survives reconnects and fires until [`Self::remove_watches`] removes it.
    ///
    /// ```no_run
    /// # async fn f(c: zk_client::Client) -> zk_client::Result<()> {
    /// use futures::StreamExt;
    /// use zk_client::AddWatchMode;
    /// let mut w = c.add_watch("/app", AddWatchMode::PersistentRecursive).await?;
    /// let first = w.next().await;
    /// # Ok(()) }
    /// ```
    pub async fn add_watch(&self, path: &str, mode: AddWatchMode) -> Result<PersistentWatch> {
        validate_path(path, false)?;
        let kind = match mode {
            AddWatchMode::Persistent => WatchKind::Persistent,
            AddWatchMode::PersistentRecursive => WatchKind::PersistentRecursive,
            AddWatchMode::Unknown(_) => return Err(Error::BadArgument("unknown watch mode")),
        };
        let mut b = self.body(path, 4);
        b.put_i32(mode.to_i32());
        let (tx, rx) = mpsc::unbounded_channel();
        let id = self.new_watcher();
        let post = PostAction::Watch {
            kind,
            path: self.server_path(path),
            watcher: id,
        };
        ok_body(
            self.call(OpCode::AddWatch, b, post, Some((id, Sink::Stream(tx))))
                .await?,
            path,
        )?;
        Ok(PersistentWatch::new(path.to_owned(), rx))
    }

    /// Adds a persistent (or persistent-recursive) watch whose events arrive on
    /// [`Self::events`] with those of `watch: true` calls, as Java's
    /// `addWatch(path, mode)` with the default watcher does: an event matching it and a
    /// one-shot watch is delivered once, and its removal shows as `PersistentWatchRemoved`.
    ///
    /// ```no_run
    /// # async fn f(c: zk_client::Client) -> zk_client::Result<()> {
    /// use zk_client::AddWatchMode;
    /// let mut events = c.events();
    /// c.add_watch_on_events("/app", AddWatchMode::Persistent).await?;
    /// # Ok(()) }
    /// ```
    pub async fn add_watch_on_events(&self, path: &str, mode: AddWatchMode) -> Result<()> {
        validate_path(path, false)?;
        let kind = match mode {
            AddWatchMode::Persistent => WatchKind::Persistent,
            AddWatchMode::PersistentRecursive => WatchKind::PersistentRecursive,
            AddWatchMode::Unknown(_) => return Err(Error::BadArgument("unknown watch mode")),
        };
        let mut b = self.body(path, 4);
        b.put_i32(mode.to_i32());
        let post = PostAction::Watch {
            kind,
            path: self.server_path(path),
            watcher: DEFAULT_WATCHER,
        };
        ok_body(self.call(OpCode::AddWatch, b, post, None).await?, path)?;
        Ok(())
    }

    /// Removes this client's watches of `wtype` on `path` on the server and locally; each
    /// removed watcher gets a `*WatchRemoved` event (persistent streams then end).
    /// Fails with `NoWatcher` when the server has no such watch.
    ///
    /// ```no_run
    /// # async fn f(c: zk_client::Client) -> zk_client::Result<()> {
    /// use zk_client::WatcherType;
    /// c.remove_watches("/app", WatcherType::Any).await?;
    /// # Ok(()) }
    /// ```
    pub async fn remove_watches(&self, path: &str, wtype: WatcherType) -> Result<()> {
        validate_path(path, false)?;
        let mut b = self.body(path, 4);
        b.put_i32(wtype.to_i32());
        let post = PostAction::RemoveWatches {
            path: self.server_path(path),
            wtype,
        };
        ok_body(self.call(OpCode::RemoveWatches, b, post, None).await?, path)?;
        Ok(())
    }

    /// Asks the server whether this client has a watch of `wtype` on `path`
    /// (`Err(NoWatcher)` if not).
    ///
    /// ```no_run
    /// # async fn f(c: zk_client::Client) -> zk_client::Result<()> {
    /// use zk_client::{Error, WatcherType};
    /// let watched = match c.check_watches("/x", WatcherType::Data).await {
    ///     Ok(()) => true,
    ///     Err(Error::NoWatcher) => false,
    ///     Err(e) => return Err(e),
    /// };
    /// # Ok(()) }
    /// ```
    pub async fn check_watches(&self, path: &str, wtype: WatcherType) -> Result<()> {
        validate_path(path, false)?;
        let mut b = self.body(path, 4);
        b.put_i32(wtype.to_i32());
        ok_body(
            self.call(OpCode::CheckWatches, b, PostAction::None, None)
                .await?,
            path,
        )?;
        Ok(())
    }
}

fn exists_reply(reply: Reply, path: &str) -> Result<Option<Stat>> {
    if reply.err == ErrorCode::NoNode {
        return Ok(None);
    }
    let r: StatResponse = decode(reply, path)?;
    Ok(Some(r.stat))
}

pub(crate) fn terminal(s: SessionState) -> Error {
    match s {
        SessionState::AuthFailed => Error::AuthFailed,
        SessionState::Expired => Error::SessionExpired,
        _ => Error::Closed,
    }
}
