//! The request pipeline as a sans-IO state machine:
//! prepare -> (commit path) -> apply -> reply, with per-session FIFO replies.
//!
//! [`Processor`] never touches sockets, disks or clocks. Its driver feeds it connections,
//! requests, ticks and commits, and carries out the [`Output`]s: replies and events go to
//! connections, [`Output::Propose`]d txns go to the commit path. Standalone, the commit path
//! logs a batch with one fsync and hands it back through [`Processor::committed`]; in an
//! ensemble the leader would broadcast it instead, and followers call
//! [`Processor::committed`] with the leader's txns.

use std::collections::{HashMap, HashSet, VecDeque};

use zk_proto::txn::TxnEntry;
use zk_proto::{
    ConnectRequest, ConnectResponse, ErrorCode, Id, MultiResponse, OpCode, OpResult, ReplyHeader,
    Request, Response, WatcherEvent,
};

use crate::core::clock::Now;
use crate::core::prep::{Prep, PrepContext, PrepSettings};
use crate::core::read::{self, Caller};
use crate::core::session::{session_password, SessionTracker};
use crate::state::acl;
use crate::state::acl::sasl::{SaslServer, SaslUsers, Step};
use crate::state::apply::{ApplyResult, Outcome};
use crate::state::database::ZkDatabase;
use crate::state::tree::node::NodeKind;
use crate::state::watch::WatchManager;

/// A connection handle chosen by the driver.
pub type ConnId = u64;

/// Something the driver must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Send a reply frame.
    Reply {
        /// Connection.
        conn: ConnId,
        /// Header.
        header: ReplyHeader,
        /// Body (sent only when the header says Ok, or for multi).
        body: Response,
    },
    /// Send the handshake reply.
    Connected {
        /// Connection.
        conn: ConnId,
        /// The reply (`timeout` 0 means expired; the driver then closes).
        resp: ConnectResponse,
    },
    /// Send a watch notification.
    Event {
        /// Connection.
        conn: ConnId,
        /// The event.
        event: WatcherEvent,
    },
    /// Close the connection once what was queued for it is sent.
    Close {
        /// Connection.
        conn: ConnId,
    },
    /// Commit this txn (persist, or propose to the leader) and report it back through
    /// [`Processor::committed`], in zxid order.
    Propose(TxnEntry),
    /// Ensemble follower ([`WriteMode::Forward`]): send this write to the leader, which
    /// prepares it ([`Processor::prepare_forwarded`]); the reply is released when its txn
    /// comes back through [`Processor::committed`].
    Forward {
        /// Session.
        session: i64,
        /// Request xid.
        cxid: i32,
        /// The write.
        request: Request,
        /// The connection's identities (Apache sends them with the REQUEST packet).
        auth: Vec<Id>,
    },
    /// Ensemble follower: ask the leader to create this session
    /// ([`Processor::prepare_create_session`]).
    ForwardCreateSession {
        /// The new session's id.
        session: i64,
        /// Negotiated timeout.
        timeout: i32,
    },
}

/// Where this server's writes are prepared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WriteMode {
    /// Prepared here and proposed ([`Output::Propose`]): standalone, or an ensemble leader.
    #[default]
    Local,
    /// Forwarded to the leader ([`Output::Forward`]): an ensemble follower. Session expiry
    /// and container reaping are then the leader's job.
    Forward,
    /// A member cut off from its quorum serving read-only clients (Apache's
    /// `ReadOnlyZooKeeperServer`): sessions are local to this member, writes and syncs fail
    /// with NotReadOnly, clients that do not allow read-only and global sessions are refused.
    ReadOnly,
}

/// Settings of the core.
#[derive(Debug, Clone)]
pub struct CoreSettings {
    /// Server id (top byte of session ids).
    pub server_id: i64,
    /// Tick in ms (session expiry buckets).
    pub tick_ms: i64,
    /// Smallest session timeout.
    pub min_timeout: i32,
    /// Largest session timeout.
    pub max_timeout: i32,
    /// `user:hash` of the super user.
    pub super_digest: Option<String>,
    /// Container / TTL reaping interval.
    pub container_check_ms: i64,
    /// Prep settings.
    pub prep: PrepSettings,
    /// DIGEST-MD5 users of the JAAS `Server` section; `None`: no SASL server.
    pub sasl_users: Option<SaslUsers>,
    /// `zookeeper.superUser*`: SASL users that get super rights.
    pub super_users: Vec<String>,
    /// Schemes a connection must hold an identity of before it is served (empty: none).
    pub enforce_auth: Vec<String>,
    /// `zookeeper.allowSaslFailedClients`.
    pub allow_sasl_failed_clients: bool,
    /// The `ensemble` scheme, when its provider is configured: the ensemble names this
    /// server answers to (`Some(None)`: any).
    pub ensemble_names: Option<Option<Vec<String>>>,
    /// Apache's local sessions (`localSessionsEnabled`, ensemble members only): a new
    /// session lives on the member that opened it, without a createSession txn.
    pub local_sessions: bool,
    /// `localSessionsUpgradingEnabled`: a local session creating an ephemeral node is
    /// made global first; otherwise that create fails with EphemeralOnLocalSession.
    pub local_sessions_upgrading: bool,
}

/// What the `ensemble` scheme decided (Apache's `ensemble_auth_*` counters).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EnsembleAuthCounts {
    /// The client named this ensemble.
    pub success: u64,
    /// The client named another ensemble: its connection was closed.
    pub fail: u64,
    /// Nothing to check (no name given, or no names configured).
    pub skip: u64,
}

impl CoreSettings {
    /// The core's settings from a server config; one place for standalone servers and
    /// ensemble members alike, so the two cannot drift.
    pub fn from_config(config: &crate::config::ServerConfig) -> Self {
        CoreSettings {
            server_id: config.my_id as i64,
            tick_ms: i64::from(config.tick_time),
            min_timeout: config.min_timeout(),
            max_timeout: config.max_timeout(),
            super_digest: config.super_digest.clone(),
            container_check_ms: config.container_check_interval_ms as i64,
            prep: PrepSettings {
                extended_types: config.extended_types,
                max_data: config.jute_max_buffer,
                reconfig_enabled: config.reconfig_enabled,
                enforce_quota: config.enforce_quota,
                schemes: acl::Schemes {
                    sasl: config.sasl_provider,
                    sasl_any_user: config.sasl_any_user.clone(),
                },
            },
            sasl_users: config.sasl_users.clone(),
            super_users: config.super_users.clone(),
            enforce_auth: config.enforced_auth_schemes(),
            allow_sasl_failed_clients: config.allow_sasl_failed_clients,
            ensemble_names: config
                .ensemble_provider
                .then(|| config.ensemble_auth_names.clone()),
            // Apache's standalone server has no local sessions.
            local_sessions: config.local_sessions_enabled
                && crate::host::member::from_config::is_ensemble(config),
            local_sessions_upgrading: config.local_sessions_upgrading_enabled,
        }
    }
}

impl Default for CoreSettings {
    fn default() -> Self {
        CoreSettings {
            server_id: 0,
            tick_ms: 2000,
            min_timeout: 4000,
            max_timeout: 40000,
            super_digest: None,
            container_check_ms: 60_000,
            prep: PrepSettings::default(),
            sasl_users: None,
            super_users: Vec::new(),
            enforce_auth: Vec::new(),
            allow_sasl_failed_clients: false,
            ensemble_names: None,
            local_sessions: false,
            local_sessions_upgrading: false,
        }
    }
}

#[derive(Debug)]
struct Conn {
    session: Option<i64>,
    auth: Vec<Id>,
    ip: String,
    /// The client sent no read-only byte (pre-3.4): Apache then sends none back either,
    /// as old C clients reset the connection on the extra byte.
    old_client: bool,
    /// This connection's SASL exchange (Apache makes one SASL server per connection).
    sasl: SaslServer,
}

#[derive(Debug)]
enum Queued {
    Write {
        zxid: i64,
    },
    Forwarded {
        cxid: i32,
    },
    Read {
        conn: ConnId,
        xid: i32,
        req: Request,
    },
    /// A refused write, answered with `err` in its turn.
    Refused {
        conn: ConnId,
        xid: i32,
        err: ErrorCode,
    },
}

#[derive(Debug)]
enum Waiter {
    Request {
        conn: ConnId,
        session: i64,
        xid: i32,
        opcode: OpCode,
        sub_ops: Vec<OpCode>,
    },
    Connect {
        conn: ConnId,
        session: i64,
        timeout: i32,
    },
}

/// The server core: database, prep stage, sessions, watches and per-session queues.
#[derive(Debug)]
pub struct Processor {
    /// Applied state.
    db: ZkDatabase,
    /// Prepare stage (outstanding changes).
    prep: Prep,
    /// Watches.
    watches: WatchManager,
    /// Session liveness.
    sessions: SessionTracker,
    settings: CoreSettings,
    conns: HashMap<ConnId, Conn>,
    session_conn: HashMap<i64, ConnId>,
    queues: HashMap<i64, VecDeque<Queued>>,
    waiting: HashMap<i64, Waiter>,
    next_zxid: i64,
    /// Monotonic ms of the last container check.
    last_container_check: i64,
    /// Wall clock minus monotonic clock at the latest input (to show expiry deadlines as
    /// dates in `dump`).
    wall_offset: i64,
    mode: WriteMode,
    /// Set while writes are refused with this code (the disk is full).
    writes_refused: Option<ErrorCode>,
    forwarded: HashMap<(i64, i32), Waiter>,
    forwarded_connects: HashMap<i64, Waiter>,
    /// Identities proved by a connection's transport (TLS client certificates) before its
    /// handshake frame: added to the connection's `ip` identity by [`Processor::connect`].
    transport_auth: HashMap<ConnId, Vec<Id>>,
    /// What the `ensemble` scheme decided.
    ensemble_auth: EnsembleAuthCounts,
    /// Local sessions of this member (tracked in `sessions`, unknown to the ensemble).
    local: HashSet<i64>,
    /// Local sessions whose createSession (the upgrade to global) is on its way.
    upgrading: HashSet<i64>,
}

fn ok_header(xid: i32, zxid: i64) -> ReplyHeader {
    ReplyHeader {
        xid,
        zxid,
        err: ErrorCode::Ok,
    }
}

impl Processor {
    /// A core over `db` (fresh or restored), with sessions from `db` tracked from `now`.
    pub fn new(db: ZkDatabase, settings: CoreSettings, now: impl Into<Now>) -> Self {
        let now: Now = now.into();
        let mut sessions = SessionTracker::new(settings.server_id, settings.tick_ms, now.wall);
        for (id, t) in db.sessions() {
            sessions.add(*id, *t, now.mono);
        }
        let next_zxid = db.last_zxid() + 1;
        Processor {
            prep: Prep::new(settings.prep.clone()),
            db,
            watches: WatchManager::new(),
            sessions,
            settings,
            conns: HashMap::new(),
            session_conn: HashMap::new(),
            queues: HashMap::new(),
            waiting: HashMap::new(),
            next_zxid,
            last_container_check: now.mono,
            wall_offset: now.wall - now.mono,
            mode: WriteMode::Local,
            writes_refused: None,
            forwarded: HashMap::new(),
            forwarded_connects: HashMap::new(),
            transport_auth: HashMap::new(),
            ensemble_auth: EnsembleAuthCounts::default(),
            local: HashSet::new(),
            upgrading: HashSet::new(),
        }
    }

    /// Records what a connection's transport proved (Apache's `X509AuthenticationProvider`
    /// at the end of the TLS handshake), ahead of its handshake frame.
    pub fn transport_auth(&mut self, conn: ConnId, ids: Vec<Id>) {
        if !ids.is_empty() {
            self.transport_auth.insert(conn, ids);
        }
    }

    /// The transport identities of every open connection, for a processor rebuilt over
    /// another database: a connection's certificate does not change with the tree, and a
    /// handshake held while the member syncs is answered by the new processor.
    pub fn take_transport_auth(&mut self) -> HashMap<ConnId, Vec<Id>> {
        std::mem::take(&mut self.transport_auth)
    }

    /// Puts back what [`Processor::take_transport_auth`] took.
    pub fn restore_transport_auth(&mut self, auth: HashMap<ConnId, Vec<Id>>) {
        self.transport_auth = auth;
    }

    /// What an ensemble leader knows for reconfig requests (`None` when not leading):
    /// set before preparing one.
    pub fn set_reconfig_context(&mut self, ctx: Option<crate::core::prep::ReconfigContext>) {
        self.prep.reconfig = ctx;
    }

    /// Puts the config in force into `/zookeeper/config` (Apache's
    /// initConfigInZKDatabase): its text, mzxid = its version.
    pub fn init_config_node(&mut self, text: &str, version: i64, time: i64) -> Vec<Output> {
        let same = self
            .db
            .tree
            .get(crate::state::tree::data_tree::CONFIG_ZOOKEEPER)
            .is_some_and(|n| n.data() == Some(text.as_bytes()) && n.stat.mzxid == version);
        if same {
            return Vec::new();
        }
        let mut out = Vec::new();
        let mut triggers = Vec::new();
        let _ = self.db.tree.set_data(
            crate::state::tree::data_tree::CONFIG_ZOOKEEPER,
            Some(bytes::Bytes::copy_from_slice(text.as_bytes())),
            -1,
            version,
            time,
            &mut triggers,
        );
        for t in &triggers {
            // Watchers of the config see the change, as Apache's setData fires them.
            for (session, event) in self.watches.trigger(t) {
                if let Some(conn) = self.session_conn.get(&session) {
                    out.push(Output::Event { conn: *conn, event });
                }
            }
        }
        out
    }

    /// The applied state (read by `mntr`/`dump`, snapshot walks and handshakes).
    pub fn db(&self) -> &ZkDatabase {
        &self.db
    }

    /// The applied state, taking the core apart (to rebuild a core over it).
    pub fn into_db(self) -> ZkDatabase {
        self.db
    }

    /// The session expiry buckets as wall-clock deadlines, for `dump`.
    pub fn session_buckets(&self) -> Vec<(i64, Vec<i64>)> {
        let mut b = self.sessions.buckets();
        for (t, _) in &mut b {
            *t += self.wall_offset;
        }
        b
    }

    /// Session liveness (which sessions are alive here, their timeouts, expiry buckets,
    /// on the monotonic clock).
    pub fn sessions(&self) -> &SessionTracker {
        &self.sessions
    }

    /// The watches (`wchs`, `wchc`, `wchp`, `mntr`).
    pub fn watches(&self) -> &WatchManager {
        &self.watches
    }

    /// `srst`: the watch-trigger summaries and the `ensemble` scheme's counts start again.
    pub fn reset_metrics(&mut self) {
        self.watches.fires = Default::default();
        self.ensemble_auth = Default::default();
    }

    /// Whether `session` is a local session of this member.
    pub fn is_local_session(&self, session: i64) -> bool {
        self.local.contains(&session)
    }

    /// Local sessions of this member (`zk_local_sessions`).
    pub fn local_session_count(&self) -> usize {
        self.local.len()
    }

    /// What the `ensemble` scheme decided so far (`mntr`).
    pub fn ensemble_auth(&self) -> EnsembleAuthCounts {
        self.ensemble_auth
    }

    /// A new leadership: every session of the database gets a fresh timeout from `now`
    /// (as in Apache), so clients of the old leader have time to move over.
    pub fn renew_sessions(&mut self, now: impl Into<Now>) {
        let now: Now = now.into();
        self.wall_offset = now.wall - now.mono;
        let sessions: Vec<(i64, i32)> = self.db.sessions().iter().map(|(s, t)| (*s, *t)).collect();
        for (s, t) in sessions {
            if !self.touch_session(s, now) {
                self.sessions.add(s, t, now.mono);
            }
        }
    }

    /// The next zxid this core hands out.
    pub fn next_zxid(&self) -> i64 {
        self.next_zxid
    }

    /// Sets the next zxid to hand out (an ensemble leader starts each epoch anew).
    pub fn set_next_zxid(&mut self, zxid: i64) {
        self.next_zxid = zxid;
    }

    /// Switches between preparing writes here and forwarding them to a leader.
    pub fn set_write_mode(&mut self, mode: WriteMode) {
        self.mode = mode;
    }

    /// Refuses clients' writes with `code` from now on (`None`: accepts them again), in
    /// order with the session's other requests; reads go on. A server whose disk is full
    /// refuses them rather than let them wait for space with no answer.
    pub fn refuse_writes(&mut self, code: Option<ErrorCode>) {
        self.writes_refused = code;
    }

    /// The code writes are refused with, if they are.
    pub fn writes_refused(&self) -> Option<ErrorCode> {
        self.writes_refused
    }

    /// Leader: prepares a write a follower forwarded, with the next zxid. Propose the
    /// result; every member then applies it with [`Processor::committed`].
    pub fn prepare_forwarded(
        &mut self,
        session: i64,
        cxid: i32,
        req: &Request,
        auth: &[Id],
        now: impl Into<Now>,
    ) -> TxnEntry {
        let now: Now = now.into();
        self.wall_offset = now.wall - now.mono;
        let zxid = self.take_zxid();
        if matches!(req, Request::CloseSession) {
            self.sessions.set_closing(session);
        }
        let ctx = PrepContext {
            session,
            auth,
            cxid,
            zxid,
            time: now.wall,
        };
        self.prep.prepare(&self.db, &ctx, req)
    }

    /// Leader: an error txn answering a forwarded write (e.g. SessionMoved): committed
    /// like any txn, it releases the follower's waiting reply.
    pub fn prepare_error(
        &mut self,
        session: i64,
        cxid: i32,
        err: ErrorCode,
        now: impl Into<Now>,
    ) -> TxnEntry {
        let now: Now = now.into();
        self.wall_offset = now.wall - now.mono;
        let zxid = self.take_zxid();
        TxnEntry {
            header: zk_proto::txn::TxnHeader {
                client_id: session,
                cxid,
                zxid,
                time: now.wall,
                txn_type: OpCode::Error,
            },
            txn: zk_proto::txn::Txn::Error(zk_proto::txn::ErrorTxn { err }),
            digest: None,
        }
    }

    /// Leader: the createSession txn for a session a follower opened.
    pub fn prepare_create_session(
        &mut self,
        session: i64,
        timeout: i32,
        now: impl Into<Now>,
    ) -> TxnEntry {
        let now: Now = now.into();
        self.wall_offset = now.wall - now.mono;
        self.sessions.add(session, timeout, now.mono);
        let zxid = self.take_zxid();
        self.prep.create_session(session, timeout, zxid, now.wall)
    }

    /// Leader: a learner reported activity on a session.
    pub fn touch_session(&mut self, session: i64, now: impl Into<Now>) -> bool {
        let now: Now = now.into();
        self.wall_offset = now.wall - now.mono;
        self.sessions.touch(session, now.mono)
    }

    /// The session timeout a client asking `asked` ms gets: clamped to
    /// minSessionTimeout..maxSessionTimeout.
    pub fn negotiated_timeout(&self, asked: i32) -> i32 {
        asked.clamp(
            self.settings.min_timeout,
            self.settings.max_timeout.max(self.settings.min_timeout),
        )
    }

    /// Leader: a learner reported activity on a session whose connection there
    /// negotiated `timeout` (learner pings carry it): the session expires by it from now
    /// on, as Apache's `touchSession(id, timeout)`.
    pub fn touch_session_with(&mut self, session: i64, timeout: i32, now: impl Into<Now>) -> bool {
        let now: Now = now.into();
        self.wall_offset = now.wall - now.mono;
        self.sessions.touch_with(session, timeout, now.mono)
    }

    /// Txns proposed but not yet committed.
    pub fn outstanding(&self) -> usize {
        self.waiting.len()
    }

    /// Number of open connections.
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// The session bound to a connection.
    pub fn session_of(&self, conn: ConnId) -> Option<i64> {
        self.conns.get(&conn).and_then(|c| c.session)
    }

    fn take_zxid(&mut self) -> i64 {
        let z = self.next_zxid;
        self.next_zxid += 1;
        z
    }

    fn propose(&mut self, e: TxnEntry, waiter: Option<Waiter>, out: &mut Vec<Output>) {
        if let Some(w) = waiter {
            self.waiting.insert(e.header.zxid, w);
        }
        out.push(Output::Propose(e));
    }

    /// A connection's first frame. `ip` is the peer address (the `ip` auth identity).
    pub fn connect(
        &mut self,
        conn: ConnId,
        ip: &str,
        req: &ConnectRequest,
        now: impl Into<Now>,
    ) -> Vec<Output> {
        let now: Now = now.into();
        self.wall_offset = now.wall - now.mono;
        let mut out = Vec::new();
        if req.last_zxid_seen > self.db.last_zxid() {
            // The client has seen a newer state than ours: Apache refuses it so it tries
            // another server.
            out.push(Output::Close { conn });
            return out;
        }
        let timeout = self.negotiated_timeout(req.timeout);
        let mut auth = vec![Id::new("ip", ip)];
        auth.extend(self.transport_auth.remove(&conn).unwrap_or_default());
        self.conns.insert(
            conn,
            Conn {
                session: None,
                auth,
                ip: ip.to_string(),
                old_client: req.read_only.is_none(),
                sasl: SaslServer::default(),
            },
        );
        match (self.mode, req.session_id) {
            (WriteMode::ReadOnly, _) => self.connect_read_only(conn, req, timeout, now, &mut out),
            (_, 0) if self.settings.local_sessions => {
                self.create_local_session(conn, timeout, now, &mut out)
            }
            (WriteMode::Forward, 0) => self.forward_new_session(conn, timeout, now, &mut out),
            (_, 0) => self.create_session(conn, timeout, now, &mut out),
            (_, session) => self.resume_session(conn, session, req, timeout, now, &mut out),
        }
        out
    }

    /// A local session (`localSessionsEnabled`): tracked here only, answered at once; no
    /// txn, so the rest of the ensemble never hears of it unless it is upgraded.
    fn create_local_session(
        &mut self,
        conn: ConnId,
        timeout: i32,
        now: Now,
        out: &mut Vec<Output>,
    ) {
        let session = self.sessions.next_session_id();
        self.sessions.add(session, timeout, now.mono);
        self.local.insert(session);
        self.bind(conn, session, out);
        tracing::debug!("session {session:#x}: local session opened (timeout {timeout} ms)");
        out.push(self.welcome(conn, session, timeout));
    }

    /// Follower: a new session gets its id here and is created through the leader; the
    /// handshake is answered when the createSession txn commits here.
    fn forward_new_session(&mut self, conn: ConnId, timeout: i32, now: Now, out: &mut Vec<Output>) {
        let session = self.sessions.next_session_id();
        self.sessions.add(session, timeout, now.mono);
        self.bind(conn, session, out);
        self.queues
            .entry(session)
            .or_default()
            .push_back(Queued::Forwarded { cxid: 0 });
        self.forwarded_connects.insert(
            session,
            Waiter::Connect {
                conn,
                session,
                timeout,
            },
        );
        out.push(Output::ForwardCreateSession { session, timeout });
    }

    /// Standalone, leader: a new session's createSession txn, proposed; the handshake is
    /// answered when it commits.
    fn create_session(&mut self, conn: ConnId, timeout: i32, now: Now, out: &mut Vec<Output>) {
        let session = self.sessions.next_session_id();
        self.sessions.add(session, timeout, now.mono);
        self.bind(conn, session, out);
        let zxid = self.take_zxid();
        let e = self.prep.create_session(session, timeout, zxid, now.wall);
        self.queues
            .entry(session)
            .or_default()
            .push_back(Queued::Write { zxid });
        self.propose(
            e,
            Some(Waiter::Connect {
                conn,
                session,
                timeout,
            }),
            out,
        );
    }

    /// A reconnection with an existing session: answered at once, as expired (session id
    /// 0, then closed) when the session is gone, closing or the password is wrong.
    fn resume_session(
        &mut self,
        conn: ConnId,
        session: i64,
        req: &ConnectRequest,
        timeout: i32,
        now: Now,
        out: &mut Vec<Output>,
    ) {
        let valid = (self.db.sessions().contains_key(&session) || self.local.contains(&session))
            && !self.sessions.is_closing(session)
            && req.passwd.as_ref() == session_password(session).as_slice();
        if !valid {
            tracing::info!(
                "session {session:#x}: refusing client {}: expired, closing or wrong password",
                self.conns.get(&conn).map_or("?", |c| c.ip.as_str())
            );
            out.push(Output::Connected {
                conn,
                resp: ConnectResponse {
                    protocol_version: 0,
                    timeout: 0,
                    session_id: 0,
                    passwd: vec![0u8; zk_proto::PASSWORD_LEN].into(),
                    read_only: req.read_only.map(|_| false),
                },
            });
            out.push(Output::Close { conn });
            return;
        }
        // The session now expires by the timeout this connection negotiated.
        self.sessions.touch_with(session, timeout, now.mono);
        self.bind(conn, session, out);
        out.push(Output::Connected {
            conn,
            resp: ConnectResponse {
                protocol_version: 0,
                timeout,
                session_id: session,
                passwd: session_password(session).to_vec().into(),
                read_only: req.read_only.map(|_| false),
            },
        });
    }

    /// Read-only handshake: only clients allowing it, only sessions local to this member
    /// (Apache 3.8 refuses a global session's reconnection in read-only mode).
    fn connect_read_only(
        &mut self,
        conn: ConnId,
        req: &ConnectRequest,
        timeout: i32,
        now: Now,
        out: &mut Vec<Output>,
    ) {
        let local = req.session_id != 0
            && self.sessions.contains(req.session_id)
            && !self.db.sessions().contains_key(&req.session_id);
        let refused = req.read_only != Some(true)
            || (req.session_id != 0
                && (!local || req.passwd.as_ref() != session_password(req.session_id).as_slice()));
        if refused {
            self.conns.remove(&conn);
            out.push(Output::Close { conn });
            return;
        }
        let session = if local {
            self.sessions.touch_with(req.session_id, timeout, now.mono);
            req.session_id
        } else {
            let s = self.sessions.next_session_id();
            self.sessions.add(s, timeout, now.mono);
            s
        };
        self.bind(conn, session, out);
        out.push(Output::Connected {
            conn,
            resp: ConnectResponse {
                protocol_version: 0,
                timeout,
                session_id: session,
                passwd: session_password(session).to_vec().into(),
                read_only: Some(true),
            },
        });
    }

    fn bind(&mut self, conn: ConnId, session: i64, out: &mut Vec<Output>) {
        if let Some(old) = self.session_conn.insert(session, conn) {
            if old != conn {
                // The session moved: the old connection is stale.
                self.watches.remove_watcher(session);
                if let Some(c) = self.conns.get_mut(&old) {
                    c.session = None;
                }
                out.push(Output::Close { conn: old });
            }
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            c.session = Some(session);
        }
    }

    /// The connection went away; its session lives on until it expires.
    pub fn disconnected(&mut self, conn: ConnId) {
        self.transport_auth.remove(&conn);
        if let Some(c) = self.conns.remove(&conn) {
            if let Some(s) = c.session {
                if self.session_conn.get(&s) == Some(&conn) {
                    self.session_conn.remove(&s);
                    self.watches.remove_watcher(s);
                }
            }
        }
    }

    /// The answer to a request no client processor handles, the same on a standalone
    /// server and on every ensemble member (Apache answers these alike in all roles; the
    /// two drivers once drifted apart):
    /// - an opcode Apache does not know, or `notification`: Unimplemented with zxid -1,
    ///   then the connection closes (Apache's UnimplementedRequestProcessor);
    /// - a known opcode only servers send, like createSession (`marshalling`): its body
    ///   does not parse as a client request, so MarshallingError with the last zxid, and
    ///   the connection stays open.
    pub fn unknown_request(&self, conn: ConnId, xid: i32, marshalling: bool) -> Vec<Output> {
        let (zxid, err) = if marshalling {
            (self.db.last_zxid(), ErrorCode::MarshallingError)
        } else {
            (-1, ErrorCode::Unimplemented)
        };
        let mut out = vec![Output::Reply {
            conn,
            header: ReplyHeader { xid, zxid, err },
            body: Response::Empty,
        }];
        if !marshalling {
            out.push(Output::Close { conn });
        }
        out
    }

    /// A request after the handshake.
    pub fn request(
        &mut self,
        conn: ConnId,
        xid: i32,
        req: Request,
        now: impl Into<Now>,
    ) -> Vec<Output> {
        let now: Now = now.into();
        self.wall_offset = now.wall - now.mono;
        let mut out = Vec::new();
        let Some(session) = self.conns.get(&conn).and_then(|c| c.session) else {
            out.push(Output::Close { conn });
            return out;
        };
        if !self.sessions.touch(session, now.mono) {
            out.push(Output::Reply {
                conn,
                header: ReplyHeader {
                    xid,
                    zxid: self.db.last_zxid(),
                    err: ErrorCode::SessionExpired,
                },
                body: Response::Empty,
            });
            out.push(Output::Close { conn });
            return out;
        }
        if !self.settings.enforce_auth.is_empty()
            && !matches!(req, Request::Auth(_) | Request::Sasl(_))
        {
            let ids = self
                .conns
                .get(&conn)
                .map(|c| c.auth.as_slice())
                .unwrap_or(&[]);
            if !ids
                .iter()
                .any(|i| self.settings.enforce_auth.contains(&i.scheme))
            {
                // Apache's AuthenticationHelper: answer, then close the connection (the
                // session itself lives on until it expires).
                tracing::warn!(
                    "session {session:#x}: client holds no identity of the enforced auth \
                     schemes {:?} (has {:?}): closing its connection",
                    self.settings.enforce_auth,
                    ids.iter().map(|i| i.scheme.as_str()).collect::<Vec<_>>()
                );
                out.push(Output::Reply {
                    conn,
                    header: ReplyHeader {
                        xid,
                        zxid: 0,
                        err: ErrorCode::SessionClosedRequireSaslAuth,
                    },
                    body: Response::Empty,
                });
                out.push(Output::Close { conn });
                return out;
            }
        }
        match req {
            Request::Auth(a) => self.authenticate(conn, xid, &a, &mut out),
            // Apache 3.8 accepts check only inside a multi and drops a connection sending
            // it alone.
            Request::Check(_) => {
                out.push(Output::Close { conn });
            }
            // A read-only member closes its local sessions itself, as does any member.
            Request::CloseSession
                if self.mode == WriteMode::ReadOnly
                    || (self.local.contains(&session) && !self.upgrading.contains(&session)) =>
            {
                tracing::debug!("session {session:#x}: local session closed by its client");
                self.local.remove(&session);
                self.sessions.remove(session);
                self.watches.remove_watcher(session);
                self.queues.remove(&session);
                self.session_conn.remove(&session);
                out.push(Output::Reply {
                    conn,
                    header: ok_header(xid, self.db.last_zxid()),
                    body: Response::Empty,
                });
                out.push(Output::Close { conn });
            }
            req if (is_write(&req) || matches!(req, Request::Sync(_)))
                && self.mode == WriteMode::ReadOnly =>
            {
                out.push(Output::Reply {
                    conn,
                    header: ReplyHeader {
                        xid,
                        zxid: self.db.last_zxid(),
                        err: ErrorCode::NotReadOnly,
                    },
                    body: Response::Empty,
                });
            }
            req if is_write(&req) && self.writes_refused.is_some() => {
                let err = self.writes_refused.unwrap_or(ErrorCode::SystemError);
                let q = self.queues.entry(session).or_default();
                if q.is_empty() {
                    out.push(Output::Reply {
                        conn,
                        header: ReplyHeader {
                            xid,
                            zxid: self.db.last_zxid(),
                            err,
                        },
                        body: Response::Empty,
                    });
                } else {
                    q.push_back(Queued::Refused { conn, xid, err });
                }
            }
            req if is_write(&req)
                && self.local.contains(&session)
                && creates_ephemeral(&req)
                && !self.upgrade_local_session(conn, session, xid, now, &mut out) => {}
            req if is_write(&req) && self.mode == WriteMode::Forward => {
                self.forward_write(conn, session, xid, req, &mut out)
            }
            req if is_write(&req) => self.prepare_write(conn, session, xid, req, now, &mut out),
            req => {
                let q = self.queues.entry(session).or_default();
                if q.is_empty() {
                    self.run_read(conn, session, xid, &req, &mut out);
                } else {
                    q.push_back(Queued::Read { conn, xid, req });
                }
            }
        }
        out
    }

    /// An auth packet: the connection gains the ids it proves; a failure closes it.
    fn authenticate(
        &mut self,
        conn: ConnId,
        xid: i32,
        a: &zk_proto::AuthPacket,
        out: &mut Vec<Output>,
    ) {
        let ip = self
            .conns
            .get(&conn)
            .map(|c| c.ip.clone())
            .unwrap_or_default();
        if let (Some(names), "ensemble") = (&self.settings.ensemble_names, a.scheme.as_str()) {
            // Apache's EnsembleAuthenticationProvider: no identity either way; a client
            // that meant another ensemble loses its connection (no reply), so it tries
            // another server instead of failing for good.
            let name = String::from_utf8_lossy(&a.auth);
            let c = &mut self.ensemble_auth;
            match names {
                Some(names) if !a.auth.is_empty() && !names.iter().any(|n| *n == name) => {
                    c.fail += 1;
                    // A misconfigured fleet would otherwise flood the log.
                    if c.fail % 1000 == 1 {
                        tracing::warn!(
                            "closing {ip}: unexpected ensemble name {:?} (this server                              answers to {names:?}, zookeeper.ensembleAuthName; {} refused                              so far)",
                            name.replace(|ch: char| ch.is_control(), ""),
                            c.fail
                        );
                    }
                    out.push(Output::Close { conn });
                    return;
                }
                Some(_) if !a.auth.is_empty() => c.success += 1,
                _ => c.skip += 1,
            }
            out.push(Output::Reply {
                conn,
                header: ok_header(xid, 0),
                body: Response::Empty,
            });
            return;
        }
        match acl::authenticate(
            &a.scheme,
            &a.auth,
            &ip,
            self.settings.super_digest.as_deref(),
        ) {
            Ok(ids) => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    for id in ids {
                        if !c.auth.contains(&id) {
                            c.auth.push(id);
                        }
                    }
                }
                out.push(Output::Reply {
                    conn,
                    header: ok_header(xid, 0),
                    body: Response::Empty,
                });
            }
            Err(e) => {
                out.push(Output::Reply {
                    conn,
                    header: ReplyHeader {
                        xid,
                        zxid: 0,
                        err: e,
                    },
                    body: Response::Empty,
                });
                out.push(Output::Close { conn });
            }
        }
    }

    /// A local session is about to create an ephemeral node: Apache makes it global first
    /// (a createSession ahead of the create, on the same path to the leader) or, with
    /// upgrading off, fails the create. False when the request was answered here.
    fn upgrade_local_session(
        &mut self,
        conn: ConnId,
        session: i64,
        xid: i32,
        now: Now,
        out: &mut Vec<Output>,
    ) -> bool {
        if !self.settings.local_sessions_upgrading {
            out.push(Output::Reply {
                conn,
                header: ReplyHeader {
                    xid,
                    zxid: self.db.last_zxid(),
                    err: ErrorCode::EphemeralOnLocalSession,
                },
                body: Response::Empty,
            });
            return false;
        }
        if !self.upgrading.insert(session) {
            return true;
        }
        let timeout = self
            .sessions
            .timeout(session)
            .unwrap_or(self.settings.max_timeout);
        tracing::info!("session {session:#x}: upgrading a local session to a global one");
        match self.mode {
            WriteMode::Forward => out.push(Output::ForwardCreateSession { session, timeout }),
            _ => {
                let zxid = self.take_zxid();
                let e = self.prep.create_session(session, timeout, zxid, now.wall);
                self.propose(e, None, out);
            }
        }
        true
    }

    /// A follower's write: queued in session order and forwarded to the leader, answered
    /// when the leader's txn commits here.
    fn forward_write(
        &mut self,
        conn: ConnId,
        session: i64,
        xid: i32,
        req: Request,
        out: &mut Vec<Output>,
    ) {
        if matches!(req, Request::CloseSession) {
            self.sessions.set_closing(session);
        }
        let sub_ops = match &req {
            Request::Multi(m) => m.ops.iter().map(|o| o.opcode()).collect(),
            _ => Vec::new(),
        };
        self.queues
            .entry(session)
            .or_default()
            .push_back(Queued::Forwarded { cxid: xid });
        self.forwarded.insert(
            (session, xid),
            Waiter::Request {
                conn,
                session,
                xid,
                opcode: req.opcode(),
                sub_ops,
            },
        );
        let auth = self
            .conns
            .get(&conn)
            .map(|c| c.auth.clone())
            .unwrap_or_default();
        out.push(Output::Forward {
            session,
            cxid: xid,
            request: req,
            auth,
        });
    }

    /// A write prepared here (standalone, leader): a txn with the next zxid, proposed,
    /// answered when it commits.
    fn prepare_write(
        &mut self,
        conn: ConnId,
        session: i64,
        xid: i32,
        req: Request,
        now: Now,
        out: &mut Vec<Output>,
    ) {
        let opcode = req.opcode();
        let sub_ops = match &req {
            Request::Multi(m) => m.ops.iter().map(|o| o.opcode()).collect(),
            _ => Vec::new(),
        };
        if matches!(req, Request::CloseSession) {
            self.sessions.set_closing(session);
        }
        let zxid = self.take_zxid();
        let auth = self
            .conns
            .get(&conn)
            .map(|c| c.auth.clone())
            .unwrap_or_default();
        let ctx = PrepContext {
            session,
            auth: &auth,
            cxid: xid,
            zxid,
            time: now.wall,
        };
        let e = self.prep.prepare(&self.db, &ctx, &req);
        self.queues
            .entry(session)
            .or_default()
            .push_back(Queued::Write { zxid });
        self.propose(
            e,
            Some(Waiter::Request {
                conn,
                session,
                xid,
                opcode,
                sub_ops,
            }),
            out,
        );
    }

    fn run_read(
        &mut self,
        conn: ConnId,
        session: i64,
        xid: i32,
        req: &Request,
        out: &mut Vec<Output>,
    ) {
        if self.session_conn.get(&session) != Some(&conn) {
            return;
        }
        let auth = self
            .conns
            .get(&conn)
            .map(|c| c.auth.clone())
            .unwrap_or_default();
        match req {
            Request::SetWatches(_) | Request::SetWatches2(_) => {
                if let Some(r) = read::Rewatch::of(req) {
                    let evs = read::set_watches(&self.db, &mut self.watches, session, &r);
                    out.extend(evs.into_iter().map(|event| Output::Event { conn, event }));
                }
                out.push(Output::Reply {
                    conn,
                    header: ok_header(xid, self.db.last_zxid()),
                    body: Response::Empty,
                });
            }
            // Answered in order with the session's other replies: Java's client fails on
            // replies out of xid order.
            Request::Sasl(t) => self.sasl(conn, session, xid, t.token.as_deref(), out),
            // Apache answers every ping with the ping xid, whatever the request carried.
            Request::Ping => {
                out.push(Output::Reply {
                    conn,
                    header: ok_header(zk_proto::xid::PING, self.db.last_zxid()),
                    body: Response::Empty,
                });
            }
            _ => {
                let caller = Caller {
                    session,
                    auth: &auth,
                    schemes: &self.settings.prep.schemes,
                };
                let (err, body) = read::execute(&self.db, &mut self.watches, &caller, req);
                out.push(Output::Reply {
                    conn,
                    header: ReplyHeader {
                        xid,
                        zxid: self.db.last_zxid(),
                        err,
                    },
                    body,
                });
            }
        }
    }

    /// One SASL token (Apache's `processSasl`). Without a JAAS `Server` section there is no
    /// SASL server and the answer is Ok with a null token. A failed login answers AuthFailed
    /// (SessionClosedRequireSaslAuth when sasl is enforced) with a null token and closes the
    /// connection, unless `allowSaslFailedClients` keeps it.
    fn sasl(
        &mut self,
        conn: ConnId,
        session: i64,
        xid: i32,
        token: Option<&[u8]>,
        out: &mut Vec<Output>,
    ) {
        let reply = |err: ErrorCode, token: Option<Vec<u8>>| Output::Reply {
            conn,
            header: ReplyHeader { xid, zxid: 0, err },
            body: Response::Sasl(zk_proto::ops::SaslToken {
                token: token.map(Into::into),
            }),
        };
        let (Some(users), Some(c)) = (self.settings.sasl_users.as_ref(), self.conns.get_mut(&conn))
        else {
            out.push(reply(ErrorCode::Ok, None));
            return;
        };
        let step = match token {
            Some(t) => {
                c.sasl.evaluate(
                    t,
                    users,
                    || zk_proto::sasl::hex(&rand::random::<[u8; 20]>()),
                )
            }
            None => {
                c.sasl = SaslServer::Failed;
                Err(acl::sasl::Failure {
                    reason: "null token".into(),
                    user: None,
                })
            }
        };
        match step {
            Ok(Step::Continue(t)) => out.push(reply(ErrorCode::Ok, Some(t))),
            Ok(Step::Complete {
                token,
                user,
                mechanism,
            }) => {
                tracing::info!(
                    "session {session:#x} from {}: SASL {mechanism} login of {user:?}",
                    c.ip
                );
                let id = Id::new("sasl", user.as_str());
                if !c.auth.contains(&id) {
                    c.auth.push(id);
                }
                if self.settings.super_users.contains(&user) {
                    tracing::info!("session {session:#x}: SASL user {user:?} is a super user");
                    let sup = Id::new("super", "");
                    if !c.auth.contains(&sup) {
                        c.auth.push(sup);
                    }
                }
                out.push(reply(ErrorCode::Ok, token));
            }
            Err(f) => {
                let required = self.settings.enforce_auth.iter().any(|s| s == "sasl");
                tracing::warn!(
                    "session {session:#x} from {}: SASL login failed (user {:?}): {}",
                    c.ip,
                    f.user.as_deref().unwrap_or("?"),
                    f.reason
                );
                if self.settings.allow_sasl_failed_clients && !required {
                    out.push(reply(ErrorCode::Ok, None));
                    return;
                }
                let err = if required {
                    ErrorCode::SessionClosedRequireSaslAuth
                } else {
                    ErrorCode::AuthFailed
                };
                out.push(reply(err, None));
                out.push(Output::Close { conn });
            }
        }
    }

    /// Applies committed txns in zxid order; releases their replies, the reads queued
    /// behind them, and watch events.
    pub fn committed(&mut self, entries: &[TxnEntry], now: impl Into<Now>) -> Vec<Output> {
        let now: Now = now.into();
        self.wall_offset = now.wall - now.mono;
        let mut out = Vec::new();
        for e in entries {
            let res = self.db.apply(e);
            self.prep.applied(res.zxid);
            self.after_apply(res, now, &mut out);
        }
        out
    }

    fn after_apply(&mut self, res: ApplyResult, now: Now, out: &mut Vec<Output>) {
        for t in &res.triggers {
            for (session, event) in self.watches.trigger(t) {
                if let Some(conn) = self.session_conn.get(&session) {
                    out.push(Output::Event { conn: *conn, event });
                }
            }
        }
        if res.outcome == Outcome::SessionCreated && self.local.remove(&res.client_id) {
            // An upgraded local session: global from here on.
            self.upgrading.remove(&res.client_id);
        }
        match &res.outcome {
            Outcome::SessionCreated if !self.sessions.contains(res.client_id) => {
                let t = self
                    .db
                    .sessions()
                    .get(&res.client_id)
                    .copied()
                    .unwrap_or(self.settings.max_timeout);
                self.sessions.add(res.client_id, t, now.mono);
            }
            Outcome::SessionClosed => {
                if self.sessions.contains(res.client_id) {
                    let client = self
                        .session_conn
                        .get(&res.client_id)
                        .and_then(|c| self.conns.get(c))
                        .map(|c| format!(" (client {})", c.ip))
                        .unwrap_or_default();
                    tracing::info!("session {:#x} closed{client}", res.client_id);
                }
                self.sessions.remove(res.client_id);
                self.watches.remove_watcher(res.client_id);
            }
            _ => {}
        }
        match self.take_waiter(&res) {
            Some(Waiter::Connect {
                conn,
                session,
                timeout,
            }) => self.answer_connect(conn, session, timeout, res.zxid, out),
            Some(Waiter::Request {
                conn,
                session,
                xid,
                opcode,
                sub_ops,
            }) => {
                let (err, mut body) = reply_for(opcode, &sub_ops, &res.outcome);
                if let (OpCode::Reconfig, Outcome::SetData(stat)) = (opcode, &res.outcome) {
                    // Apache answers a reconfig with the config now in force and its stat.
                    let data = self
                        .db
                        .tree
                        .get(crate::state::tree::data_tree::CONFIG_ZOOKEEPER)
                        .and_then(|n| n.data())
                        .map(bytes::Bytes::copy_from_slice);
                    body = Response::GetData(zk_proto::ops::GetDataResponse {
                        data,
                        stat: stat.clone(),
                    });
                }
                self.pop_write(session, res.zxid);
                if self.session_conn.get(&session) == Some(&conn) || opcode == OpCode::CloseSession
                {
                    out.push(Output::Reply {
                        conn,
                        header: ReplyHeader {
                            xid,
                            zxid: res.zxid,
                            err,
                        },
                        body,
                    });
                }
                self.drain_reads(session, out);
            }
            None => {}
        }
        if res.outcome == Outcome::SessionClosed {
            self.queues.remove(&res.client_id);
            if let Some(conn) = self.session_conn.remove(&res.client_id) {
                self.conns.remove(&conn);
                out.push(Output::Close { conn });
            }
        }
    }

    /// Who waits for an applied txn: a request or handshake prepared here (by zxid), or
    /// one forwarded to the leader (by session and cxid; createSession by session).
    fn take_waiter(&mut self, res: &ApplyResult) -> Option<Waiter> {
        if let Some(w) = self.waiting.remove(&res.zxid) {
            return Some(w);
        }
        let (w, cxid) = if res.outcome == Outcome::SessionCreated {
            (self.forwarded_connects.remove(&res.client_id), 0)
        } else {
            (self.forwarded.remove(&(res.client_id, res.cxid)), res.cxid)
        };
        if w.is_some() {
            self.pop_forwarded(res.client_id, cxid);
        }
        w
    }

    /// The session's oldest queued write, if it is txn `zxid`, is done.
    fn pop_write(&mut self, session: i64, zxid: i64) {
        if let Some(q) = self.queues.get_mut(&session) {
            if matches!(q.front(), Some(Queued::Write { zxid: z }) if *z == zxid) {
                q.pop_front();
            }
        }
    }

    /// A new session's createSession txn (`zxid`) was applied: the handshake is answered
    /// and the requests pipelined behind it run.
    /// The handshake's answer for a live read-write session (a client from before 3.4
    /// gets no read-only flag, as Apache's).
    fn welcome(&self, conn: ConnId, session: i64, timeout: i32) -> Output {
        Output::Connected {
            conn,
            resp: ConnectResponse {
                protocol_version: 0,
                timeout,
                session_id: session,
                passwd: session_password(session).to_vec().into(),
                read_only: match self.conns.get(&conn) {
                    Some(c) if c.old_client => None,
                    _ => Some(false),
                },
            },
        }
    }

    fn answer_connect(
        &mut self,
        conn: ConnId,
        session: i64,
        timeout: i32,
        zxid: i64,
        out: &mut Vec<Output>,
    ) {
        out.push(self.welcome(conn, session, timeout));
        self.pop_write(session, zxid);
        self.drain_reads(session, out);
    }

    fn pop_forwarded(&mut self, session: i64, cxid: i32) {
        if let Some(q) = self.queues.get_mut(&session) {
            if matches!(q.front(), Some(Queued::Forwarded { cxid: c }) if *c == cxid) {
                q.pop_front();
            }
        }
    }

    fn drain_reads(&mut self, session: i64, out: &mut Vec<Output>) {
        loop {
            let Some(q) = self.queues.get_mut(&session) else {
                return;
            };
            match q.front() {
                Some(Queued::Read { .. }) => {
                    if let Some(Queued::Read { conn, xid, req }) = q.pop_front() {
                        self.run_read(conn, session, xid, &req, out);
                    }
                }
                Some(Queued::Refused { .. }) => {
                    if let Some(Queued::Refused { conn, xid, err }) = q.pop_front() {
                        if self.session_conn.get(&session) == Some(&conn) {
                            out.push(Output::Reply {
                                conn,
                                header: ReplyHeader {
                                    xid,
                                    zxid: self.db.last_zxid(),
                                    err,
                                },
                                body: Response::Empty,
                            });
                        }
                    }
                }
                Some(Queued::Write { .. }) | Some(Queued::Forwarded { .. }) => return,
                None => {
                    self.queues.remove(&session);
                    return;
                }
            }
        }
    }

    fn log_expired(&self, session: i64) {
        let timeout = self.sessions.timeout(session).unwrap_or_default();
        tracing::info!("session {session:#x} expired: timeout of {timeout} ms exceeded");
    }

    /// Time passes: expires sessions, reaps empty containers and expired TTL nodes.
    pub fn tick(&mut self, now: impl Into<Now>) -> Vec<Output> {
        let now: Now = now.into();
        self.wall_offset = now.wall - now.mono;
        let mut out = Vec::new();
        if self.mode == WriteMode::Forward && self.local.is_empty() {
            return out;
        }
        for session in self.sessions.expire(now.mono) {
            if self.mode == WriteMode::ReadOnly || self.local.contains(&session) {
                // Local sessions expire here, without a txn.
                self.log_expired(session);
                self.local.remove(&session);
                self.upgrading.remove(&session);
                self.sessions.remove(session);
                self.watches.remove_watcher(session);
                self.queues.remove(&session);
                if let Some(conn) = self.session_conn.remove(&session) {
                    self.conns.remove(&conn);
                    out.push(Output::Close { conn });
                }
            } else if self.mode == WriteMode::Forward {
                // The leader expires global sessions; a follower keeps tracking them.
                let t = self
                    .sessions
                    .timeout(session)
                    .unwrap_or(self.settings.max_timeout);
                self.sessions.add(session, t, now.mono);
            } else {
                self.log_expired(session);
                let zxid = self.take_zxid();
                let e = self.prep.close_session(&self.db, session, zxid, now.wall);
                self.propose(e, None, &mut out);
            }
        }
        if self.mode != WriteMode::Local {
            return out;
        }
        if now.mono - self.last_container_check >= self.settings.container_check_ms {
            self.last_container_check = now.mono;
            let mut candidates = Vec::new();
            for p in self.db.tree.containers() {
                if let Some(n) = self.db.tree.get(p) {
                    if n.stat.cversion > 0 && n.children.is_empty() {
                        candidates.push(p.clone());
                    }
                }
            }
            for p in self.db.tree.ttls() {
                if let Some(n) = self.db.tree.get(p) {
                    if let NodeKind::Ttl(ttl) = n.kind() {
                        if n.children.is_empty() && now.wall - n.stat.mtime > ttl {
                            candidates.push(p.clone());
                        }
                    }
                }
            }
            for p in candidates {
                let zxid = self.next_zxid;
                if let Some(e) = self.prep.delete_container(&self.db, &p, zxid, now.wall) {
                    self.next_zxid += 1;
                    self.propose(e, None, &mut out);
                }
            }
        }
        out
    }
}

/// Whether a write creates an ephemeral node (a local session must be global for it).
fn creates_ephemeral(req: &Request) -> bool {
    let ephemeral =
        |flags: i32| zk_proto::CreateMode::from_flags(flags).is_ok_and(|m| m.is_ephemeral());
    match req {
        Request::Create(c) | Request::Create2(c) => ephemeral(c.flags),
        Request::Multi(m) => m.ops.iter().any(|op| match op {
            zk_proto::MultiOp::Create(_, c) => ephemeral(c.flags),
            _ => false,
        }),
        _ => false,
    }
}

/// Whether a request becomes a txn.
pub fn is_write(req: &Request) -> bool {
    matches!(
        req,
        Request::Create(_)
            | Request::Create2(_)
            | Request::CreateContainer(_)
            | Request::CreateTtl(_)
            | Request::Delete(_)
            | Request::DeleteContainer(_)
            | Request::SetData(_)
            | Request::SetAcl(_)
            | Request::Check(_)
            | Request::Multi(_)
            | Request::Reconfig(_)
            | Request::CloseSession
    )
}

fn op_result(op: OpCode, o: &Outcome) -> OpResult {
    match o {
        Outcome::Created { path, stat } => {
            // Apache answers create and create2 ops of a multi with the path only.
            if op == OpCode::Create || op == OpCode::Create2 {
                OpResult::Create(path.clone())
            } else {
                OpResult::Create2(path.clone(), stat.clone())
            }
        }
        Outcome::Deleted => OpResult::Delete,
        Outcome::SetData(s) => OpResult::SetData(s.clone()),
        Outcome::Check => OpResult::Check,
        Outcome::Error(e) => OpResult::Error(*e),
        _ => OpResult::Error(ErrorCode::SystemError),
    }
}

/// The reply code and body for a write, from what its txn did.
pub fn reply_for(opcode: OpCode, sub_ops: &[OpCode], o: &Outcome) -> (ErrorCode, Response) {
    use zk_proto::ops::{Create2Response, CreateResponse, StatResponse};
    match (opcode, o) {
        (_, Outcome::Error(e)) => (*e, Response::Empty),
        (OpCode::Multi, Outcome::Multi(v)) => {
            let results = v
                .iter()
                .enumerate()
                .map(|(i, r)| op_result(sub_ops.get(i).copied().unwrap_or(OpCode::Create2), r))
                .collect();
            // Apache's reply header says Ok even for an aborted multi; the per-op results
            // carry the failure.
            (ErrorCode::Ok, Response::Multi(MultiResponse { results }))
        }
        (OpCode::Create, Outcome::Created { path, .. }) => (
            ErrorCode::Ok,
            Response::Create(CreateResponse { path: path.clone() }),
        ),
        (_, Outcome::Created { path, stat }) => (
            ErrorCode::Ok,
            Response::Create2(Create2Response {
                path: path.clone(),
                stat: stat.clone(),
            }),
        ),
        (_, Outcome::SetData(s)) | (_, Outcome::SetAcl(s)) => (
            ErrorCode::Ok,
            Response::Stat(StatResponse { stat: s.clone() }),
        ),
        _ => (ErrorCode::Ok, Response::Empty),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zk_proto::ops::{CreateRequest, PathWatchRequest};
    use zk_proto::Acl;

    fn connect_req() -> ConnectRequest {
        ConnectRequest {
            timeout: 5000,
            passwd: vec![0; 16].into(),
            ..Default::default()
        }
    }

    fn proposals(out: &[Output]) -> Vec<TxnEntry> {
        out.iter()
            .filter_map(|o| match o {
                Output::Propose(e) => Some(e.clone()),
                _ => None,
            })
            .collect()
    }

    fn sasl_settings(enforce: &[&str]) -> CoreSettings {
        let jaas = zk_proto::sasl::jaas::section(
            r#"Server { org.apache.zookeeper.server.auth.DigestLoginModule required
                 user_alice="secret" user_root="toor"; };"#,
            "Server",
        )
        .unwrap()
        .unwrap();
        let mut s = CoreSettings {
            sasl_users: Some(SaslUsers::from_section(&jaas, None, None).unwrap()),
            super_users: vec!["root".into()],
            enforce_auth: enforce.iter().map(|s| s.to_string()).collect(),
            ..CoreSettings::default()
        };
        s.prep.schemes.sasl = true;
        s
    }

    /// A connected session on connection 1.
    fn connected(settings: CoreSettings) -> Processor {
        let mut p = Processor::new(ZkDatabase::new(), settings, 1000);
        let txns = proposals(&p.connect(1, "127.0.0.1", &connect_req(), 1000));
        assert!(matches!(
            p.committed(&txns, 1001)[0],
            Output::Connected { .. }
        ));
        p
    }

    fn sasl(p: &mut Processor, xid: i32, token: &[u8]) -> Vec<Output> {
        let req = Request::Sasl(zk_proto::ops::SaslToken {
            token: Some(token.to_vec().into()),
        });
        p.request(1, xid, req, 1002)
    }

    fn token_of(out: &[Output]) -> (ErrorCode, Option<Vec<u8>>) {
        match &out[0] {
            Output::Reply {
                header,
                body: Response::Sasl(t),
                ..
            } => (header.err, t.token.as_ref().map(|b| b.to_vec())),
            other => panic!("not a sasl reply: {other:?}"),
        }
    }

    /// Logs `user` in over DIGEST-MD5 as Java's client would; the last step's outputs.
    fn login(p: &mut Processor, user: &str, password: &str) -> Vec<Output> {
        let (err, challenge) = token_of(&sasl(p, 1, b""));
        assert_eq!(err, ErrorCode::Ok);
        let d = zk_proto::sasl::parse_directives(&challenge.unwrap(), 4096).unwrap();
        let nonce = d.iter().find(|(k, _)| k == "nonce").unwrap().1.clone();
        let (response, _) = zk_proto::sasl::digest_response(&zk_proto::sasl::DigestInput {
            username: user.as_bytes(),
            realm: b"zk-sasl-md5",
            password: password.as_bytes(),
            nonce: &nonce,
            cnonce: "c",
            nc: "00000001",
            qop: "auth",
            digest_uri: "zookeeper/zk-sasl-md5",
            authzid: None,
        });
        let answer = format!(
            "charset=utf-8,username=\"{user}\",realm=\"zk-sasl-md5\",nonce=\"{nonce}\",\
             nc=00000001,cnonce=\"c\",digest-uri=\"zookeeper/zk-sasl-md5\",\
             response={response},qop=auth"
        );
        sasl(p, 2, answer.as_bytes())
    }

    fn ids(p: &Processor) -> Vec<Id> {
        p.conns[&1].auth.clone()
    }

    #[test]
    fn sasl_login_adds_the_identity_and_super_users_get_super() {
        let mut p = connected(sasl_settings(&[]));
        let out = login(&mut p, "alice", "secret");
        let (err, token) = token_of(&out);
        assert_eq!(err, ErrorCode::Ok);
        assert!(token.unwrap().starts_with(b"rspauth="));
        assert_eq!(out.len(), 1);
        assert!(ids(&p).contains(&Id::new("sasl", "alice")));
        assert!(!ids(&p).contains(&Id::new("super", "")));
        let mut p = connected(sasl_settings(&[]));
        login(&mut p, "root", "toor");
        assert!(ids(&p).contains(&Id::new("super", "")));
    }

    #[test]
    fn sasl_failure_is_auth_failed_with_a_null_token_and_closes() {
        let mut p = connected(sasl_settings(&[]));
        let out = login(&mut p, "alice", "wrong");
        assert_eq!(token_of(&out), (ErrorCode::AuthFailed, None));
        assert_eq!(out[1], Output::Close { conn: 1 });
        assert!(!ids(&p).iter().any(|i| i.scheme == "sasl"));
        // With sasl enforced the code says why the session is useless.
        let mut p = connected(sasl_settings(&["sasl"]));
        sasl(&mut p, 1, b"");
        let out = sasl(&mut p, 2, b"garbage");
        assert_eq!(
            token_of(&out),
            (ErrorCode::SessionClosedRequireSaslAuth, None)
        );
        // Without a JAAS Server section: Ok and a null token, as Apache.
        let mut p = connected(CoreSettings::default());
        assert_eq!(token_of(&sasl(&mut p, 1, b"")), (ErrorCode::Ok, None));
        // allowSaslFailedClients keeps the connection (when sasl is not enforced).
        let mut st = sasl_settings(&[]);
        st.allow_sasl_failed_clients = true;
        let mut p = connected(st);
        let out = login(&mut p, "alice", "wrong");
        assert_eq!(
            out,
            vec![Output::Reply {
                conn: 1,
                header: ok_header(2, 0),
                body: Response::Sasl(zk_proto::ops::SaslToken { token: None }),
            }]
        );
    }

    #[test]
    fn enforced_auth_refuses_anonymous_requests_but_not_logins() {
        let mut p = connected(sasl_settings(&["sasl"]));
        let exists = || {
            Request::Exists(PathWatchRequest {
                path: "/".into(),
                watch: false,
            })
        };
        // The identity `ip` every connection holds does not count.
        let out = p.request(1, 5, exists(), 1002);
        assert_eq!(
            out,
            vec![
                Output::Reply {
                    conn: 1,
                    header: ReplyHeader {
                        xid: 5,
                        zxid: 0,
                        err: ErrorCode::SessionClosedRequireSaslAuth
                    },
                    body: Response::Empty,
                },
                Output::Close { conn: 1 }
            ]
        );
        let mut p = connected(sasl_settings(&["sasl"]));
        login(&mut p, "alice", "secret");
        let out = p.request(1, 5, exists(), 1002);
        assert!(matches!(&out[0], Output::Reply { header, .. } if header.err == ErrorCode::Ok));
    }

    #[test]
    fn unknown_opcodes_close_and_server_only_ones_do_not() {
        let p = Processor::new(ZkDatabase::new(), CoreSettings::default(), 1000);
        let reply = |xid, zxid, err| Output::Reply {
            conn: 1,
            header: ReplyHeader { xid, zxid, err },
            body: Response::Empty,
        };
        assert_eq!(
            p.unknown_request(1, 5, false),
            vec![
                reply(5, -1, ErrorCode::Unimplemented),
                Output::Close { conn: 1 }
            ]
        );
        assert_eq!(
            p.unknown_request(1, 7, true),
            vec![reply(7, p.db.last_zxid(), ErrorCode::MarshallingError)]
        );
    }

    #[test]
    fn standalone_reply_waits_for_commit_and_reads_queue_behind() {
        let mut p = Processor::new(ZkDatabase::new(), CoreSettings::default(), 1000);
        let out = p.connect(1, "127.0.0.1", &connect_req(), 1000);
        let txns = proposals(&out);
        assert_eq!(txns.len(), 1);
        let out = p.committed(&txns, 1001);
        assert!(matches!(&out[0], Output::Connected { resp, .. } if resp.timeout == 5000));
        let create = Request::Create(CreateRequest {
            path: "/a".into(),
            data: None,
            acl: Acl::open_unsafe(),
            flags: 0,
        });
        let out = p.request(1, 1, create, 1002);
        let txns = proposals(&out);
        assert_eq!(out.len(), 1, "no reply before the commit");
        // A read behind the write waits for it.
        let read = Request::Exists(PathWatchRequest {
            path: "/a".into(),
            watch: false,
        });
        assert!(p.request(1, 2, read, 1003).is_empty());
        let out = p.committed(&txns, 1004);
        let xids: Vec<(i32, ErrorCode)> = out
            .iter()
            .filter_map(|o| match o {
                Output::Reply { header, .. } => Some((header.xid, header.err)),
                _ => None,
            })
            .collect();
        assert_eq!(xids, vec![(1, ErrorCode::Ok), (2, ErrorCode::Ok)]);
    }

    #[test]
    fn requests_pipelined_behind_the_handshake_wait_for_it() {
        let mut p = Processor::new(ZkDatabase::new(), CoreSettings::default(), 1000);
        let txns = proposals(&p.connect(1, "127.0.0.1", &connect_req(), 1000));
        let read = Request::Exists(PathWatchRequest {
            path: "/".into(),
            watch: false,
        });
        assert!(p.request(1, 1, read, 1000).is_empty());
        let out = p.committed(&txns, 1001);
        assert!(matches!(out[0], Output::Connected { .. }));
        assert!(matches!(&out[1], Output::Reply { header, .. } if header.xid == 1));
    }

    #[test]
    fn follower_forwards_and_leader_prepares() {
        let mut leader = Processor::new(ZkDatabase::new(), CoreSettings::default(), 1000);
        let mut follower = Processor::new(
            ZkDatabase::new(),
            CoreSettings {
                server_id: 2,
                ..Default::default()
            },
            1000,
        );
        follower.set_write_mode(WriteMode::Forward);
        let out = follower.connect(7, "10.0.0.1", &connect_req(), 1000);
        let Some(Output::ForwardCreateSession { session, timeout }) = out.last().cloned() else {
            panic!("{out:?}")
        };
        assert_eq!(session >> 56, 2);
        let cs = leader.prepare_create_session(session, timeout, 1001);
        leader.committed(std::slice::from_ref(&cs), 1001);
        let out = follower.committed(std::slice::from_ref(&cs), 1001);
        assert!(matches!(&out[0], Output::Connected { resp, .. } if resp.session_id == session));

        let create = Request::Create(CreateRequest {
            path: "/f".into(),
            data: None,
            acl: Acl::creator_all(),
            flags: 1,
        });
        let out = follower.request(7, 5, create, 1002);
        let Some(Output::Forward {
            session: s,
            cxid,
            request,
            auth,
        }) = out.last().cloned()
        else {
            panic!("{out:?}")
        };
        // No digest identity: `auth` ACL is invalid, decided by the leader.
        let e = leader.prepare_forwarded(s, cxid, &request, &auth, 1003);
        leader.committed(std::slice::from_ref(&e), 1003);
        let out = follower.committed(std::slice::from_ref(&e), 1003);
        assert!(
            matches!(&out[0], Output::Reply { header, .. } if header.xid == 5 && header.err == ErrorCode::InvalidAcl)
        );
        assert_eq!(leader.db.last_zxid(), follower.db.last_zxid());
        assert!(
            follower.tick(1_000_000).is_empty(),
            "followers never expire sessions"
        );
    }
}
