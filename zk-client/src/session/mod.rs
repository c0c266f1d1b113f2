//! The sans-IO session state machine.
//!
//! [`Session`] owns everything about one ZooKeeper session except sockets and clocks: the
//! host walk, the handshake, xids and FIFO reply matching, pings and the read timeout, auth
//! replay, watch bookkeeping and SetWatches re-registration, requests parked while
//! disconnected, and self-reported expiry. A driver feeds it socket events, received frames,
//! user requests and the current time, then drains [`Session::outbound`] to the socket and
//! [`Session::poll_action`] for connects, replies, events and state changes.
//!
//! `R` is the driver's reply handle (a oneshot sender in the tokio driver); the core never
//! looks inside it.

pub mod set_watches;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use zk_proto::{
    header::xid, write_frame, AuthPacket, ConnectRequest, ConnectResponse, ErrorCode, EventType,
    JuteReader, OpCode, Record, ReplyHeader, RequestHeader, WatcherEvent, WatcherType,
    PASSWORD_LEN,
};

use crate::error::{Error, Result};
use crate::hosts::{HostList, HostPort};
use crate::path::Chroot;
use crate::retry::{Delays, RetryPolicy};
use crate::sasl::{self, SaslConfig, SaslStep};
use crate::sasl_gssapi::GssStart;
use crate::state::SessionState;
use crate::watch::registry::{WatchKind, WatchRegistry, WatcherId};
use crate::watch::WatchedEvent;

/// Fixed parameters of a session.
pub struct SessionConfig {
    /// Servers (shuffled once with `seed`).
    pub hosts: Vec<HostPort>,
    /// Chroot stripped from event paths.
    pub chroot: Chroot,
    /// Requested session timeout.
    pub session_timeout: Duration,
    /// TCP connect + handshake timeout; `None` = session timeout / number of hosts.
    pub connect_timeout: Option<Duration>,
    /// How long a request issued while disconnected waits for a connection.
    pub request_timeout: Duration,
    /// Accept read-only servers.
    pub read_only: bool,
    /// How often to look for a read-write server while connected read-only.
    pub rw_probe_interval: Duration,
    /// Session to resume: id and password.
    pub resume: Option<(i64, Bytes)>,
    /// Credentials sent after every handshake: (scheme, auth).
    pub auth: Vec<(String, Bytes)>,
    /// SASL login run after every handshake, before anything else is sent.
    pub sasl: Option<SaslConfig>,
    /// Delay policy between failed connection attempts; reset after each successful
    /// handshake.
    pub retry: RetryPolicy,
    /// Upper bound of the random delay before the first attempt after losing an
    /// established connection (also capped at a fifth of the negotiated session timeout);
    /// zero reconnects at once.
    pub reconnect_jitter: Duration,
    /// Seed of the host shuffle and of every random delay.
    pub seed: u64,
}

/// A reply frame for a user request; the body is decoded by the caller, which knows the type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// xid of the request and its reply (0 for a reply made locally, e.g. a close
    /// without a server).
    pub xid: i32,
    /// zxid of the reply header.
    pub zxid: i64,
    /// Server code (`Ok` or not; a failed multi still has a body).
    pub err: ErrorCode,
    /// The reply body.
    pub body: Bytes,
}

/// What a request does to the watch registry once its reply arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostAction {
    /// Nothing.
    None,
    /// Register a watch on success (and on NoNode for exists).
    Watch {
        /// Kind.
        kind: WatchKind,
        /// Server path.
        path: String,
        /// Who is notified.
        watcher: WatcherId,
    },
    /// On success, drop local watches and tell their watchers.
    RemoveWatches {
        /// Server path.
        path: String,
        /// Which watches.
        wtype: WatcherType,
    },
}

/// A user request: an encoded body plus what to do with the reply.
#[derive(Debug)]
pub struct Submit<R> {
    /// Opcode.
    pub op: OpCode,
    /// Encoded body (no header).
    pub body: Bytes,
    /// Watch bookkeeping.
    pub post: PostAction,
    /// Reply handle.
    pub reply: R,
}

/// Output of the state machine, drained with [`Session::poll_action`].
#[derive(Debug)]
pub enum Action<R> {
    /// Open a TCP connection (resolve the name afresh) and call `on_connected` or
    /// `on_disconnected`; give up after `timeout`.
    Connect {
        /// Target.
        host: HostPort,
        /// Connect timeout.
        timeout: Duration,
    },
    /// Drop the current connection (or abandon the connection attempt).
    Disconnect,
    /// Complete a user request.
    Reply(R, Result<Reply>),
    /// Deliver an event to watchers (one-shot watchers have already been removed).
    Event {
        /// The event, path relative to the chroot.
        event: WatchedEvent,
        /// Recipients.
        watchers: Vec<WatcherId>,
    },
    /// A per-call watcher will never fire (its request failed) or was removed.
    DropWatcher(WatcherId),
    /// The state changed.
    State(SessionState),
    /// A handshake succeeded: session id, password and negotiated timeout.
    Established {
        /// The server of this connection.
        host: HostPort,
        /// Session id.
        session_id: i64,
        /// Session password.
        password: Bytes,
        /// Negotiated session timeout.
        timeout: Duration,
    },
    /// Ask `host` whether it is read-write (`isro`) and report with `on_probe_result`.
    ProbeReadWrite {
        /// Server to ask.
        host: HostPort,
        /// Give up after this long.
        timeout: Duration,
    },
    /// The session ended (terminal state reached); the driver may stop after draining.
    Finished,
}

#[derive(Debug)]
enum Phase {
    /// Waiting to try the next host.
    Idle { retry_at: Instant },
    /// TCP connect in progress.
    Connecting { deadline: Instant },
    /// ConnectRequest sent, waiting for ConnectResponse.
    Handshake { deadline: Instant },
    /// ConnectResponse received, SASL exchange in progress: user requests wait.
    Sasl {
        deadline: Instant,
        read_only: bool,
        xid: i32,
        step: SaslStep,
    },
    /// Session established on this connection.
    Connected { read_only: bool },
    /// Terminal.
    Done,
}

#[derive(Debug)]
struct InFlight<R> {
    xid: i32,
    op: OpCode,
    post: PostAction,
    reply: Option<R>,
}

#[derive(Debug)]
struct Parked<R> {
    deadline: Instant,
    req: Submit<R>,
}

/// The session state machine (see the module docs).
///
/// Driving it by hand (what the tokio driver does), with `u32` reply tokens:
///
/// ```
/// use std::time::{Duration, Instant};
/// use bytes::Bytes;
/// use zk_client::hosts::HostPort;
/// use zk_client::session::{Action, PostAction, Session, SessionConfig, Submit};
/// use zk_proto::{ConnectResponse, OpCode, Record};
///
/// let t0 = Instant::now();
/// let mut s: Session<u32> = Session::new(
///     SessionConfig {
///         hosts: vec![HostPort { host: "127.0.0.1".into(), port: 2181 }],
///         chroot: Default::default(),
///         session_timeout: Duration::from_secs(3),
///         connect_timeout: None,
///         request_timeout: Duration::from_secs(3),
///         read_only: false,
///         rw_probe_interval: Duration::from_secs(1),
///         resume: None,
///         auth: vec![],
///         sasl: None,
///         retry: zk_client::RetryPolicy::fixed(Duration::ZERO),
///         reconnect_jitter: Duration::ZERO,
///         seed: 1,
///     },
///     t0,
/// );
/// s.tick(t0);
/// assert!(matches!(s.poll_action(), Some(Action::Connect { .. })));
/// s.on_connected(t0); // the socket is up: a ConnectRequest is now in s.outbound()
/// s.outbound().clear();
/// let resp = ConnectResponse { timeout: 3000, session_id: 7, passwd: Bytes::from_static(&[0; 16]), ..Default::default() };
/// s.on_frame(resp.to_bytes(), t0);
/// assert_eq!(s.session_id(), 7);
/// s.submit(Submit { op: OpCode::Sync, body: Bytes::new(), post: PostAction::None, reply: 1 }, t0);
/// assert_eq!(s.in_flight(), 1);
/// // A ping is due after read_timeout / 2 of silence on the send side.
/// assert_eq!(s.next_deadline(), Some(t0 + Duration::from_secs(1)));
/// ```
pub struct Session<R> {
    hosts: HostList,
    chroot: Chroot,
    requested_timeout: Duration,
    connect_timeout: Duration,
    request_timeout: Duration,
    read_only_allowed: bool,
    rw_probe_interval: Duration,
    delays: Delays,
    reconnect_jitter: Duration,
    /// Seeded: reconnect jitter and retry delays are reproducible in tests.
    rng: rand::rngs::StdRng,

    phase: Phase,
    state: SessionState,
    current: Option<HostPort>,
    session_id: i64,
    password: Bytes,
    negotiated: Duration,
    read_timeout: Duration,
    last_zxid: i64,
    seen_rw: bool,
    next_xid: i32,
    last_send: Instant,
    last_recv: Instant,
    /// Last time the server was heard from while the session was connected; set on
    /// disconnect and cleared on reconnect, it drives self-reported expiry.
    disconnected_since: Option<Instant>,
    next_probe: Option<Instant>,
    /// The host list changed and this client drew a move: reconnect once no request is
    /// in flight (so rebalancing fails none with `ConnectionLoss`).
    rebalance_pending: bool,

    in_flight: VecDeque<InFlight<R>>,
    parked: VecDeque<Parked<R>>,
    auth_pending: VecDeque<Option<R>>,
    /// Waiters of credentials added while disconnected (the last entries of `auths`).
    parked_auth: VecDeque<R>,
    auths: Vec<AuthPacket>,
    sasl: Option<SaslConfig>,
    /// The GSSAPI exchange the driver started for the current connection.
    gss_start: Option<GssStart>,
    /// Why authentication failed (terminal), for [`Error::Auth`].
    auth_failure: Option<(String, String)>,
    watches: WatchRegistry,
    out: BytesMut,
    actions: VecDeque<Action<R>>,
}

impl<R> Session<R> {
    /// A new session; the first connection attempt is made at the first `tick`.
    pub fn new(cfg: SessionConfig, now: Instant) -> Self {
        let hosts = HostList::new(cfg.hosts, cfg.seed);
        let n = hosts.len().max(1) as u32;
        let connect_timeout = cfg
            .connect_timeout
            .unwrap_or(cfg.session_timeout / n)
            .max(Duration::from_millis(1));
        let (session_id, password, seen_rw) = match cfg.resume {
            Some((id, pw)) => (id, pw, true),
            None => (0, Bytes::from_static(&[0u8; PASSWORD_LEN]), false),
        };
        Session {
            hosts,
            chroot: cfg.chroot,
            requested_timeout: cfg.session_timeout,
            connect_timeout,
            request_timeout: cfg.request_timeout,
            read_only_allowed: cfg.read_only,
            rw_probe_interval: cfg.rw_probe_interval,
            delays: cfg.retry.start(now),
            reconnect_jitter: cfg.reconnect_jitter,
            // A different stream from the host shuffle's.
            rng: rand::SeedableRng::seed_from_u64(cfg.seed ^ 0x6a09_e667_f3bc_c908),
            phase: Phase::Idle { retry_at: now },
            state: SessionState::Disconnected,
            current: None,
            session_id,
            password,
            negotiated: cfg.session_timeout,
            read_timeout: cfg.session_timeout * 2 / 3,
            last_zxid: 0,
            seen_rw,
            next_xid: 1,
            last_send: now,
            last_recv: now,
            disconnected_since: None,
            next_probe: None,
            rebalance_pending: false,
            in_flight: VecDeque::new(),
            parked: VecDeque::new(),
            auth_pending: VecDeque::new(),
            parked_auth: VecDeque::new(),
            auths: cfg
                .auth
                .into_iter()
                .map(|(scheme, auth)| AuthPacket {
                    auth_type: 0,
                    scheme,
                    auth,
                })
                .collect(),
            sasl: cfg.sasl,
            gss_start: None,
            auth_failure: None,
            watches: WatchRegistry::default(),
            out: BytesMut::with_capacity(8 * 1024),
            actions: VecDeque::new(),
        }
    }

    /// The user-visible state.
    pub fn state(&self) -> SessionState {
        self.state
    }

    /// Session id (0 before the first handshake).
    pub fn session_id(&self) -> i64 {
        self.session_id
    }

    /// Highest zxid seen in a reply.
    pub fn last_zxid(&self) -> i64 {
        self.last_zxid
    }

    /// Negotiated (or, before the first handshake, requested) session timeout.
    pub fn negotiated_timeout(&self) -> Duration {
        self.negotiated
    }

    /// The read timeout in force (2/3 of the session timeout).
    pub fn read_timeout(&self) -> Duration {
        self.read_timeout
    }

    /// The server of the current connection or attempt.
    pub fn current_host(&self) -> Option<&HostPort> {
        self.current.as_ref()
    }

    /// Requests sent and not yet answered.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Bytes to write to the socket; the driver consumes them (e.g. `split()` or `clear()`).
    pub fn outbound(&mut self) -> &mut BytesMut {
        &mut self.out
    }

    /// Next output, if any.
    pub fn poll_action(&mut self) -> Option<Action<R>> {
        self.actions.pop_front()
    }

    /// When `tick` must be called next.
    pub fn next_deadline(&self) -> Option<Instant> {
        let mut d: Option<Instant> = None;
        let mut min = |t: Instant| d = Some(d.map_or(t, |x| x.min(t)));
        match self.phase {
            Phase::Idle { retry_at } => min(retry_at),
            Phase::Connecting { deadline }
            | Phase::Handshake { deadline }
            | Phase::Sasl { deadline, .. } => min(deadline),
            Phase::Connected { .. } => {
                min(self.last_recv + self.read_timeout);
                min(self.last_send + self.read_timeout / 2);
                if let Some(p) = self.next_probe {
                    min(p);
                }
            }
            Phase::Done => return None,
        }
        if let Some(p) = self.parked.front() {
            min(p.deadline);
        }
        if let Some(since) = self.disconnected_since {
            min(since + self.negotiated);
        }
        d
    }

    /// Submits a user request: sent now when connected, else parked until a connection
    /// (or `request_timeout`).
    pub fn submit(&mut self, req: Submit<R>, now: Instant) {
        match self.phase {
            Phase::Done => {
                let err = self.terminal_error();
                self.fail_request(req, err);
            }
            Phase::Connected { .. } => self.send(req, now),
            _ => self.parked.push_back(Parked {
                deadline: now + self.request_timeout,
                req,
            }),
        }
    }

    /// Adds credentials: remembered for every later handshake, sent now when connected.
    /// `reply` completes when the server accepts them.
    pub fn add_auth(&mut self, scheme: String, auth: Bytes, reply: R, now: Instant) {
        if let Phase::Done = self.phase {
            let err = self.terminal_error();
            self.actions.push_back(Action::Reply(reply, Err(err)));
            return;
        }
        let pkt = AuthPacket {
            auth_type: 0,
            scheme,
            auth,
        };
        if let Phase::Connected { .. } = self.phase {
            self.write_special(xid::AUTH, OpCode::Auth, |w| pkt.write(w), now);
            self.auth_pending.push_back(Some(reply));
        } else {
            // Sent with the others after the next handshake; completes then.
            self.parked_auth.push_back(reply);
        }
        self.auths.push(pkt);
    }

    /// Forgets a watcher whose receiver was dropped, so it is not re-registered on the
    /// next reconnect.
    pub fn forget_watcher(&mut self, id: WatcherId) {
        self.watches.forget(id);
    }

    /// Closes the session: a closeSession request now when connected, after the next
    /// handshake when disconnected, at once when no session was ever established.
    pub fn close(&mut self, reply: R, now: Instant) {
        match self.phase {
            Phase::Connected { .. } => {
                self.send(
                    Submit {
                        op: OpCode::CloseSession,
                        body: Bytes::new(),
                        post: PostAction::None,
                        reply,
                    },
                    now,
                );
            }
            Phase::Done => {
                let err = self.terminal_error();
                self.actions.push_back(Action::Reply(reply, Err(err)));
            }
            _ if self.session_id != 0 => {
                // The session lives on the servers: close it there once reconnected (or
                // fail with Timeout after the request timeout, leaving it to expire).
                self.parked.push_back(Parked {
                    deadline: now + self.request_timeout,
                    req: Submit {
                        op: OpCode::CloseSession,
                        body: Bytes::new(),
                        post: PostAction::None,
                        reply,
                    },
                });
            }
            _ => {
                self.finish(SessionState::Closed);
                self.actions.push_back(Action::Reply(
                    reply,
                    Ok(Reply {
                        xid: 0,
                        zxid: self.last_zxid,
                        err: ErrorCode::Ok,
                        body: Bytes::new(),
                    }),
                ));
            }
        }
    }

    /// The driver established the TCP connection it was asked for.
    pub fn on_connected(&mut self, now: Instant) {
        self.on_connected_with(now, None);
    }

    /// The connection is up, with the GSSAPI exchange the driver started on it (its first
    /// token needs the KDC, so it is made off the session) when the login is Kerberos.
    pub(crate) fn on_connected_with(&mut self, now: Instant, gss: Option<GssStart>) {
        if !matches!(self.phase, Phase::Connecting { .. }) {
            return;
        }
        self.gss_start = gss;
        let session_id = if self.seen_rw || !self.read_only_allowed {
            self.session_id
        } else {
            // A session created by a read-only server cannot move to a read-write one.
            0
        };
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: self.last_zxid,
            timeout: i32::try_from(self.requested_timeout.as_millis()).unwrap_or(i32::MAX),
            session_id,
            passwd: self.password.clone(),
            read_only: Some(self.read_only_allowed),
        };
        write_frame(&mut self.out, |w| req.write(w));
        self.last_send = now;
        self.last_recv = now;
        self.phase = Phase::Handshake {
            deadline: now + self.connect_timeout,
        };
    }

    /// The connection (or the attempt) failed or was closed by the peer. A server that
    /// closes an established connection sends the client to a host drawn from the whole
    /// list (see [`HostList::scatter`]); a failed attempt walks on round-robin.
    pub fn on_disconnected(&mut self, now: Instant) {
        match self.phase {
            Phase::Done | Phase::Idle { .. } => {}
            Phase::Connected { .. } => {
                self.hosts.scatter();
                self.lose_connection(now, false);
            }
            _ => self.lose_connection(now, false),
        }
    }

    /// Result of a read-write probe requested with [`Action::ProbeReadWrite`].
    pub fn on_probe_result(&mut self, host: HostPort, read_write: bool, now: Instant) {
        if !matches!(self.phase, Phase::Connected { read_only: true }) {
            return;
        }
        if read_write {
            tracing::info!(%host, "found a read-write server, switching");
            self.hosts.prefer(&host);
            self.lose_connection(now, true);
        }
    }

    /// The ensemble's member list changed (ZOOKEEPER-1355): replaces the host list and
    /// decides with a seeded draw whether this client moves to rebalance the load; true
    /// when it will reconnect (as soon as nothing is in flight; the session survives).
    pub fn update_hosts(&mut self, hosts: Vec<HostPort>, now: Instant) -> bool {
        let connected = matches!(self.phase, Phase::Connected { .. });
        let current = self.current.clone().filter(|_| connected);
        let moving = self.hosts.update(hosts, current.as_ref());
        if moving && connected {
            tracing::info!(host = ?self.current, hosts = self.hosts.len(), "ensemble changed: moving to rebalance");
            self.rebalance_pending = true;
            self.maybe_rebalance(now);
        }
        moving
    }

    /// The host list in its current order.
    pub fn hosts(&self) -> &[HostPort] {
        self.hosts.hosts()
    }

    fn maybe_rebalance(&mut self, now: Instant) {
        if self.rebalance_pending
            && self.in_flight.is_empty()
            && matches!(self.phase, Phase::Connected { .. })
        {
            self.rebalance_pending = false;
            self.lose_connection(now, true);
        }
    }

    /// Advances timers: connection attempts, read timeout, pings, parked request deadlines,
    /// read-write probes and self-reported expiry.
    pub fn tick(&mut self, now: Instant) {
        if let Phase::Done = self.phase {
            return;
        }
        if let Some(since) = self.disconnected_since {
            if now >= since + self.negotiated {
                tracing::warn!(
                    session = format_args!("{:#x}", self.session_id),
                    "disconnected longer than the session timeout: expired"
                );
                self.finish(SessionState::Expired);
                return;
            }
        }
        while self.parked.front().is_some_and(|p| p.deadline <= now) {
            let Some(p) = self.parked.pop_front() else {
                break;
            };
            if p.req.op == OpCode::CloseSession {
                // No server reachable to close it on: close locally and let the ensemble
                // expire the session.
                self.finish(SessionState::Closed);
                self.actions.push_back(Action::Reply(
                    p.req.reply,
                    Ok(Reply {
                        xid: 0,
                        zxid: self.last_zxid,
                        err: ErrorCode::Ok,
                        body: Bytes::new(),
                    }),
                ));
                return;
            }
            self.fail_request(p.req, Error::Timeout);
        }
        match self.phase {
            Phase::Idle { retry_at } if now >= retry_at => self.start_connect(now),
            Phase::Connecting { deadline }
            | Phase::Handshake { deadline }
            | Phase::Sasl { deadline, .. }
                if now >= deadline =>
            {
                tracing::debug!(host = ?self.current, "connect timeout");
                self.lose_connection(now, false);
            }
            Phase::Connected { read_only } => {
                if now >= self.last_recv + self.read_timeout {
                    tracing::warn!(host = ?self.current, "read timeout: server silent");
                    self.lose_connection(now, false);
                    return;
                }
                self.maybe_rebalance(now);
                if !matches!(self.phase, Phase::Connected { .. }) {
                    return;
                }
                if now >= self.last_send + self.read_timeout / 2 {
                    self.write_special(xid::PING, OpCode::Ping, |_| {}, now);
                }
                if read_only && self.next_probe.is_some_and(|t| now >= t) {
                    self.next_probe = Some(now + self.rw_probe_interval);
                    if let Some(host) = self.probe_target() {
                        self.actions.push_back(Action::ProbeReadWrite {
                            host,
                            timeout: self.connect_timeout,
                        });
                    }
                }
            }
            _ => {}
        }
    }

    /// A complete frame (length prefix removed) arrived.
    pub fn on_frame(&mut self, frame: Bytes, now: Instant) {
        match self.phase {
            Phase::Handshake { .. } => self.on_handshake(frame, now),
            Phase::Sasl { .. } => {
                self.last_recv = now;
                self.on_sasl_frame(frame, now);
            }
            Phase::Connected { .. } => {
                self.last_recv = now;
                if let Err(e) = self.on_reply(frame) {
                    tracing::warn!(error = %e, "bad frame from server, reconnecting");
                    self.lose_connection(now, false);
                } else {
                    self.maybe_rebalance(now);
                }
            }
            _ => {}
        }
    }

    /// The error calls get once the session is over (meaningful in a terminal state):
    /// [`Error::Auth`] with the reason when a SASL login failed.
    pub fn terminal_error(&self) -> Error {
        match self.state {
            SessionState::AuthFailed => match &self.auth_failure {
                Some((host, reason)) => Error::Auth {
                    host: host.clone(),
                    reason: reason.clone(),
                },
                None => Error::AuthFailed,
            },
            SessionState::Closed => Error::Closed,
            _ => Error::SessionExpired,
        }
    }

    /// The jitter window after losing an established connection: the configured bound,
    /// capped at a fifth of the session timeout so the delay never threatens the session.
    pub fn reconnect_jitter_window(&self) -> Duration {
        self.reconnect_jitter.min(self.negotiated / 5)
    }

    /// A uniform draw from the jitter window, so clients that lost the same server
    /// (thousands of them when a member dies) do not all reconnect in the same instant.
    fn reconnect_delay(&mut self) -> Duration {
        use rand::Rng;
        let window = self.reconnect_jitter_window();
        if window.is_zero() {
            return Duration::ZERO;
        }
        let nanos = u64::try_from(window.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(self.rng.gen_range(0..=nanos))
    }

    fn probe_target(&mut self) -> Option<HostPort> {
        for _ in 0..self.hosts.len() {
            let (h, _) = self.hosts.next_host()?;
            if Some(&h) != self.current.as_ref() {
                return Some(h);
            }
        }
        None
    }

    fn start_connect(&mut self, now: Instant) {
        let Some((host, _)) = self.hosts.next_host() else {
            self.finish(SessionState::Closed);
            return;
        };
        tracing::debug!(%host, "connecting");
        self.current = Some(host.clone());
        self.phase = Phase::Connecting {
            deadline: now + self.connect_timeout,
        };
        self.actions.push_back(Action::Connect {
            host,
            timeout: self.connect_timeout,
        });
    }

    fn on_handshake(&mut self, frame: Bytes, now: Instant) {
        let resp = match ConnectResponse::decode(frame.clone()) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, len = frame.len(), frame = ?&frame[..frame.len().min(64)], "bad ConnectResponse");
                self.lose_connection(now, false);
                return;
            }
        };
        if resp.timeout <= 0 {
            self.finish(SessionState::Expired);
            return;
        }
        let read_only = resp.read_only.unwrap_or(false);
        if !read_only {
            self.seen_rw = true;
        }
        self.session_id = resp.session_id;
        self.password = resp.passwd;
        self.negotiated = Duration::from_millis(resp.timeout as u64);
        self.read_timeout = self.negotiated * 2 / 3;
        self.last_recv = now;
        if self.sasl.is_some() {
            // As Java's client: log in first; the session counts as connected (state,
            // pending requests, watches) only once the server accepted us.
            let (first, step) = match self.sasl {
                Some(SaslConfig::Gssapi(_)) => match self.gss_start.take() {
                    Some(Ok((client, token))) => (token, SaslStep::Gss(client)),
                    Some(Err(e)) => {
                        self.auth_failed(format!("GSSAPI login not started: {e}"));
                        return;
                    }
                    None => {
                        self.auth_failed("GSSAPI login not started by the driver".into());
                        return;
                    }
                },
                _ => (Vec::new(), SaslStep::AwaitChallenge),
            };
            let xid = self.next_xid();
            let token = zk_proto::ops::SaslToken {
                token: Some(Bytes::from(first)),
            };
            self.write_special(xid, OpCode::Sasl, |w| token.write(w), now);
            if let Phase::Handshake { deadline } = self.phase {
                self.phase = Phase::Sasl {
                    deadline,
                    read_only,
                    xid,
                    step,
                };
            }
            return;
        }
        self.established(read_only, now);
    }

    /// A SASL reply during [`Phase::Sasl`].
    fn on_sasl_frame(&mut self, frame: Bytes, now: Instant) {
        let Phase::Sasl { xid, .. } = self.phase else {
            return;
        };
        let mut r = JuteReader::new(frame);
        let hdr = match ReplyHeader::read(&mut r) {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(error = %e, "bad SASL reply, reconnecting");
                self.lose_connection(now, false);
                return;
            }
        };
        if hdr.xid == xid::PING || hdr.xid == xid::NOTIFICATION {
            return;
        }
        if hdr.xid != xid {
            tracing::warn!(
                expected = xid,
                got = hdr.xid,
                "unexpected reply during SASL"
            );
            self.lose_connection(now, false);
            return;
        }
        let mech = self.sasl.as_ref().map_or("SASL", |c| c.mechanism());
        if hdr.err != ErrorCode::Ok {
            let who = match (&self.sasl, &self.phase) {
                (Some(SaslConfig::DigestMd5 { username, .. }), _) => {
                    format!(" of user {username:?}")
                }
                (
                    _,
                    Phase::Sasl {
                        step: SaslStep::Gss(c),
                        ..
                    },
                ) => format!(" of principal {:?}", c.principal()),
                _ => String::new(),
            };
            let reason = if matches!(
                hdr.err,
                ErrorCode::AuthFailed | ErrorCode::SessionClosedRequireSaslAuth
            ) {
                format!(
                    "the server rejected the {mech} credentials{who} ({})",
                    hdr.err
                )
            } else {
                format!("the server answered the {mech} exchange with {}", hdr.err)
            };
            self.auth_failed(reason);
            return;
        }
        let token = match zk_proto::ops::SaslToken::read(&mut r) {
            Ok(t) => t.token,
            Err(e) => {
                self.auth_failed(format!("malformed {mech} reply: {e}"));
                return;
            }
        };
        let Phase::Sasl {
            deadline,
            read_only,
            step,
            ..
        } = std::mem::replace(&mut self.phase, Phase::Done)
        else {
            return;
        };
        if let SaslStep::Gss(client) = step {
            self.on_gss_token(client, token, deadline, read_only, now);
            return;
        }
        let token = token.unwrap_or_default();
        let Some(SaslConfig::DigestMd5 { username, password }) = self.sasl.clone() else {
            return;
        };
        match step {
            SaslStep::Gss(_) => {}
            SaslStep::AwaitChallenge => {
                if token.is_empty() {
                    self.phase = Phase::Connecting { deadline };
                    self.auth_failed(format!(
                        "the server sent no {mech} challenge (is SASL enabled on it?)"
                    ));
                    return;
                }
                match sasl::answer_challenge(&token, &username, &password, &sasl::cnonce()) {
                    Ok((response, rspauth)) => {
                        let xid = self.next_xid();
                        let token = zk_proto::ops::SaslToken {
                            token: Some(Bytes::from(response)),
                        };
                        self.write_special(xid, OpCode::Sasl, |w| token.write(w), now);
                        self.phase = Phase::Sasl {
                            deadline,
                            read_only,
                            xid,
                            step: SaslStep::AwaitRspAuth(rspauth),
                        };
                    }
                    Err(e) => {
                        self.phase = Phase::Connecting { deadline };
                        self.auth_failed(format!("bad {mech} challenge from the server: {e}"));
                    }
                }
            }
            SaslStep::AwaitRspAuth(expected) => {
                if let Err(e) = sasl::check_rspauth(&token, &expected) {
                    self.phase = Phase::Connecting { deadline };
                    self.auth_failed(e);
                    return;
                }
                tracing::debug!(%username, "SASL {mech} login accepted");
                self.established(read_only, now);
            }
        }
    }

    /// A server token of a GSSAPI exchange. The server's last answer carries no token (as
    /// Java's client expects); before that, every answer must carry one.
    fn on_gss_token(
        &mut self,
        mut client: Box<crate::sasl_gssapi::GssClient>,
        token: Option<Bytes>,
        deadline: Instant,
        read_only: bool,
        now: Instant,
    ) {
        if client.is_complete() {
            tracing::debug!(principal = client.principal(), "SASL GSSAPI login accepted");
            self.established(read_only, now);
            return;
        }
        let Some(token) = token else {
            self.phase = Phase::Connecting { deadline };
            self.auth_failed(
                "the server answered the GSSAPI login with no token (is SASL enabled on it?)"
                    .into(),
            );
            return;
        };
        match client.step(&token) {
            Ok(out) => {
                let xid = self.next_xid();
                let t = zk_proto::ops::SaslToken {
                    token: Some(Bytes::from(out.unwrap_or_default())),
                };
                self.write_special(xid, OpCode::Sasl, |w| t.write(w), now);
                self.phase = Phase::Sasl {
                    deadline,
                    read_only,
                    xid,
                    step: SaslStep::Gss(client),
                };
            }
            Err(e) => {
                self.phase = Phase::Connecting { deadline };
                self.auth_failed(format!("GSSAPI login of {}: {e}", client.principal()));
            }
        }
    }

    /// Terminal: the login was refused (or the server misbehaved in the exchange).
    fn auth_failed(&mut self, reason: String) {
        let host = self
            .current
            .as_ref()
            .map(|h| h.to_string())
            .unwrap_or_default();
        tracing::warn!(%host, %reason, "authentication failed");
        self.auth_failure = Some((host, reason));
        self.finish(SessionState::AuthFailed);
    }

    /// The session is usable on this connection: publish it, then replay credentials,
    /// watches and what waited for the connection.
    fn established(&mut self, read_only: bool, now: Instant) {
        self.disconnected_since = None;
        self.hosts.connected();
        self.delays.reset();
        self.phase = Phase::Connected { read_only };
        self.next_probe = read_only.then(|| now + self.rw_probe_interval);
        self.actions.push_back(Action::Established {
            host: self.current.clone().unwrap_or(HostPort {
                host: String::new(),
                port: 0,
            }),
            session_id: self.session_id,
            password: self.password.clone(),
            timeout: self.negotiated,
        });
        self.set_state(if read_only {
            SessionState::ConnectedReadOnly
        } else {
            SessionState::Connected
        });
        // Replay credentials, then watches, then what waited for the connection.
        let (n, k) = (self.auths.len(), self.parked_auth.len());
        for (i, pkt) in self.auths.clone().into_iter().enumerate() {
            self.write_special(xid::AUTH, OpCode::Auth, |w| pkt.write(w), now);
            let waiter = if i + k >= n {
                self.parked_auth.pop_front()
            } else {
                None
            };
            self.auth_pending.push_back(waiter);
        }
        if !self.watches.is_empty() {
            for req in set_watches::batches(&self.watches.lists(), self.last_zxid) {
                self.write_special(xid::SET_WATCHES, req.opcode(), |w| req.write(w), now);
            }
        }
        while let Some(p) = self.parked.pop_front() {
            self.send(p.req, now);
        }
    }

    fn on_reply(&mut self, frame: Bytes) -> Result<()> {
        let mut r = JuteReader::new(frame);
        let hdr = ReplyHeader::read(&mut r)?;
        match hdr.xid {
            xid::PING => return Ok(()),
            xid::AUTH => {
                let waiter = self.auth_pending.pop_front().flatten();
                if hdr.err == ErrorCode::AuthFailed {
                    self.finish(SessionState::AuthFailed);
                    if let Some(w) = waiter {
                        self.actions
                            .push_back(Action::Reply(w, Err(Error::AuthFailed)));
                    }
                } else if let Some(w) = waiter {
                    let res = if hdr.err == ErrorCode::Ok {
                        Ok(Reply {
                            xid: hdr.xid,
                            zxid: hdr.zxid,
                            err: hdr.err,
                            body: Bytes::new(),
                        })
                    } else {
                        Err(Error::from_code(hdr.err))
                    };
                    self.actions.push_back(Action::Reply(w, res));
                }
                return Ok(());
            }
            xid::NOTIFICATION => {
                let ev = WatcherEvent::read(&mut r)?;
                self.on_notification(ev);
                return Ok(());
            }
            xid::SET_WATCHES => {
                if hdr.err != ErrorCode::Ok {
                    tracing::warn!(err = %hdr.err, "SetWatches failed");
                }
                return Ok(());
            }
            _ => {}
        }
        let Some(req) = self.in_flight.pop_front() else {
            return Err(Error::Protocol(zk_proto::ProtoError::InvalidValue {
                what: "unexpected reply xid",
                value: hdr.xid as i64,
            }));
        };
        if req.xid != hdr.xid {
            let expected = req.xid;
            self.in_flight.push_front(req);
            tracing::warn!(expected, got = hdr.xid, "xid out of order");
            return Err(Error::Protocol(zk_proto::ProtoError::InvalidValue {
                what: "reply xid out of order",
                value: hdr.xid as i64,
            }));
        }
        if hdr.zxid > 0 {
            self.last_zxid = hdr.zxid;
        }
        self.apply_post(req.post, req.op, hdr.err);
        if req.op == OpCode::CloseSession {
            // State first, so the closer sees `Closed` once its call returns.
            self.finish(SessionState::Closed);
        }
        if let Some(reply) = req.reply {
            self.actions.push_back(Action::Reply(
                reply,
                Ok(Reply {
                    xid: hdr.xid,
                    zxid: hdr.zxid,
                    err: hdr.err,
                    body: r.take_rest(),
                }),
            ));
        }
        Ok(())
    }

    fn apply_post(&mut self, post: PostAction, op: OpCode, err: ErrorCode) {
        match post {
            PostAction::None => {}
            PostAction::Watch {
                kind,
                path,
                watcher,
            } => {
                let ok = err == ErrorCode::Ok;
                if ok || (kind == WatchKind::Exists && err == ErrorCode::NoNode) {
                    self.watches.register(kind, &path, watcher, ok);
                } else {
                    self.drop_watcher(watcher);
                }
            }
            PostAction::RemoveWatches { path, wtype } => {
                if err == ErrorCode::Ok && op == OpCode::RemoveWatches {
                    let client_path = self.chroot.to_client(&path);
                    for (w, ty) in self.watches.remove(&path, wtype) {
                        self.actions.push_back(Action::Event {
                            event: WatchedEvent {
                                event_type: ty,
                                state: self.state,
                                path: client_path.clone(),
                            },
                            watchers: vec![w],
                        });
                        if ty == EventType::PersistentWatchRemoved {
                            self.drop_watcher(w);
                        }
                    }
                }
            }
        }
    }

    fn on_notification(&mut self, ev: WatcherEvent) {
        let watchers = self.watches.fire(ev.event_type, &ev.path);
        if watchers.is_empty() {
            tracing::debug!(path = %ev.path, ty = ?ev.event_type, "event without watchers");
            return;
        }
        self.actions.push_back(Action::Event {
            event: WatchedEvent {
                event_type: ev.event_type,
                state: self.state,
                path: self.chroot.to_client(&ev.path),
            },
            watchers,
        });
    }

    fn drop_watcher(&mut self, w: WatcherId) {
        if w != crate::watch::registry::DEFAULT_WATCHER {
            self.actions.push_back(Action::DropWatcher(w));
        }
    }

    fn next_xid(&mut self) -> i32 {
        let x = self.next_xid;
        self.next_xid = if x >= i32::MAX - 1 { 1 } else { x + 1 };
        x
    }

    fn send(&mut self, req: Submit<R>, now: Instant) {
        let xid = self.next_xid();
        let body = &req.body;
        write_frame(&mut self.out, |w| {
            RequestHeader {
                xid,
                opcode: req.op,
            }
            .write(w);
            w.put_slice(body);
        });
        self.last_send = now;
        self.in_flight.push_back(InFlight {
            xid,
            op: req.op,
            post: req.post,
            reply: Some(req.reply),
        });
    }

    fn write_special(
        &mut self,
        xid: i32,
        op: OpCode,
        body: impl FnOnce(&mut BytesMut),
        now: Instant,
    ) {
        write_frame(&mut self.out, |w| {
            RequestHeader { xid, opcode: op }.write(w);
            body(w);
        });
        self.last_send = now;
    }

    fn fail_request(&mut self, req: Submit<R>, err: Error) {
        if let PostAction::Watch { watcher, .. } = req.post {
            self.drop_watcher(watcher);
        }
        self.actions.push_back(Action::Reply(req.reply, Err(err)));
    }

    /// Fails what was in flight with ConnectionLoss and schedules the next attempt.
    fn lose_connection(&mut self, now: Instant, immediate: bool) {
        self.out.clear();
        self.actions.push_back(Action::Disconnect);
        // The state goes first so callers failed below already see `Disconnected`.
        // Only a global session (one a read-write server created or accepted) can expire
        // on the ensemble; a read-only server's session is replaced on the next handshake.
        let was_established = matches!(self.phase, Phase::Connected { .. });
        if was_established {
            if self.disconnected_since.is_none() && self.seen_rw {
                self.disconnected_since = Some(self.last_recv);
            }
            self.set_state(SessionState::Disconnected);
        }
        while let Some(f) = self.in_flight.pop_front() {
            if let PostAction::Watch { watcher, .. } = f.post {
                self.drop_watcher(watcher);
            }
            if let Some(r) = f.reply {
                self.actions
                    .push_back(Action::Reply(r, Err(Error::ConnectionLoss)));
            }
        }
        while let Some(w) = self.auth_pending.pop_front() {
            if let Some(w) = w {
                self.actions
                    .push_back(Action::Reply(w, Err(Error::ConnectionLoss)));
            }
        }
        let delay = if immediate {
            Duration::ZERO
        } else {
            // After losing an established connection the policy's first delay gets the
            // reconnect jitter on top.
            let jitter = if was_established {
                self.reconnect_delay()
            } else {
                Duration::ZERO
            };
            self.delays
                .next(&mut self.rng)
                .unwrap_or(self.connect_timeout)
                + jitter
        };
        self.next_probe = None;
        self.rebalance_pending = false;
        self.phase = Phase::Idle {
            retry_at: now + delay,
        };
    }

    /// Enters a terminal state: everything pending fails, every watcher is told.
    fn finish(&mut self, state: SessionState) {
        if let Phase::Done = self.phase {
            return;
        }
        let was_connected = !matches!(self.phase, Phase::Idle { .. });
        self.phase = Phase::Done;
        self.state = state;
        // The state goes out before any reply, so a caller woken by its error already
        // observes the terminal state.
        self.actions.push_back(Action::State(state));
        let err = self.terminal_error();
        self.out.clear();
        if was_connected {
            self.actions.push_back(Action::Disconnect);
        }
        while let Some(f) = self.in_flight.pop_front() {
            if let Some(r) = f.reply {
                let e = if f.op == OpCode::CloseSession {
                    Error::Closed
                } else {
                    err.clone()
                };
                self.actions.push_back(Action::Reply(r, Err(e)));
            }
        }
        while let Some(p) = self.parked.pop_front() {
            self.actions
                .push_back(Action::Reply(p.req.reply, Err(err.clone())));
        }
        for w in self.auth_pending.drain(..).flatten() {
            self.actions.push_back(Action::Reply(w, Err(err.clone())));
        }
        for w in self.parked_auth.drain(..) {
            self.actions.push_back(Action::Reply(w, Err(err.clone())));
        }
        self.disconnected_since = None;
        self.watches.drain_all();
        self.actions.push_back(Action::Finished);
    }

    fn set_state(&mut self, s: SessionState) {
        if self.state != s {
            self.state = s;
            self.actions.push_back(Action::State(s));
        }
    }
}
