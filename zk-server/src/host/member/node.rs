//! One ensemble member serving clients: the client listener, and one node task owning
//! the request [`Processor`] and the [`QuorumPeer`] (with its [`QuorumIo`]). The task
//! performs the peer's actions with direct calls on the processor (commits, role changes,
//! learners' writes and revalidations, SNAP bodies walked a slice at a time between its
//! other events) and carries out the processor's outputs (frames to connections,
//! proposals to the peer, forwards to the leader). Nothing of it sits behind a lock.
//!
//! Sessions are global: a client reconnecting here with a session is revalidated by the
//! leader (REVALIDATE), which then records this member as the session's owner; a write
//! still arriving through the member the client left fails with SessionMoved, and that
//! member closes the stale connection (as Apache). With read-only mode enabled, a member
//! LOOKING for longer than a grace period serves read-only clients until it rejoins a
//! quorum.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::net::TcpListener;
use tokio::sync::mpsc::{self, UnboundedReceiver};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use zk_proto::quorum::QuorumPacket;
use zk_proto::txn::TxnEntry;
use zk_proto::{ConnectRequest, ConnectResponse, ErrorCode, Request};

use super::replica::{DiskEvent, MemberAppender, NodeDisk, Walks, SLICE_BYTES};
use super::request_packet::{self, Forwarded};
use crate::admin::four_letter::{self, QuorumView};
use crate::config::{ServerConfig, ALL_FOUR_LETTER_WORDS};
use crate::core::member_gate::MemberGate;
use crate::core::processor::{is_write, ConnId, CoreSettings, Output, Processor, WriteMode};
use crate::core::session::owner::LearnerConn;
use crate::core::session::{session_password, Owner, SessionOwners};
use crate::host::client::clients::{self, Clients};
use crate::host::client::connection::{ConnSettings, Throttle};
use crate::host::client::listener::ClientPorts;
use crate::host::client::ClientMsg;
use crate::host::quorum::driver::{
    is_sync_request, leader_stats, IsolationSwitch, LeaderStats, PeerAddrs, PeerStatus, QuorumIo,
};
use crate::host::server::now_ms;
use crate::state::database::ZkDatabase;
use crate::storage::PurgeTimer;
use crate::zab::broadcast::leader::ProposeError;
use crate::zab::broadcast::packets::revalidate_request;
use crate::zab::{Action, LearnerType, PeerState, QuorumConfig, QuorumPeer, Zxid};

/// Everything a member needs to start.
pub struct NodeSetup {
    /// Its quorum config.
    pub quorum: QuorumConfig,
    /// Core settings (server id, timeouts).
    pub settings: CoreSettings,
    /// Its durable state.
    pub disk: NodeDisk,
    /// Bound client ports (a plain listener converts with `.into()`).
    pub client: ClientPorts,
    /// Bound election listener.
    pub election: TcpListener,
    /// Bound quorum listener.
    pub quorum_listener: TcpListener,
    /// Ensemble addresses.
    pub addrs: PeerAddrs,
}

/// A running member; dropping it stops it like a crash.
pub struct Node {
    status: watch::Receiver<PeerStatus>,
    read_only_enabled: Arc<AtomicBool>,
    isolation: IsolationSwitch,
    task: JoinHandle<()>,
    listener: JoinHandle<()>,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.listener.abort();
        self.task.abort();
    }
}

/// The server config a member reports in `conf` when started without one.
fn default_config(s: &NodeSetup, client: Option<SocketAddr>) -> ServerConfig {
    let (data_dir, data_log_dir) = s.disk.dirs().unwrap_or_default();
    ServerConfig {
        data_dir,
        data_log_dir,
        client_port: client.map(|a| a.port()).unwrap_or(0),
        client_port_address: client.map(|a| a.ip()),
        tick_time: u32::try_from(s.quorum.tick_time).unwrap_or(u32::MAX),
        init_limit: u32::try_from(s.quorum.init_limit).unwrap_or(u32::MAX),
        sync_limit: u32::try_from(s.quorum.sync_limit).unwrap_or(u32::MAX),
        min_session_timeout: s.settings.min_timeout,
        max_session_timeout: s.settings.max_timeout,
        my_id: s.quorum.my_sid as u64,
        four_letter_whitelist: ALL_FOUR_LETTER_WORDS
            .iter()
            .map(|w| w.to_string())
            .collect(),
        ..ServerConfig::default()
    }
}

impl Node {
    /// Starts a member from its disk (every four-letter word allowed, read-only mode off
    /// until [`Node::set_read_only_mode`]).
    pub fn start(s: NodeSetup) -> Node {
        let client = s.client.plain_addr().or(s.client.secure_addr());
        let config = default_config(&s, client);
        Self::start_configured(s, config)
    }

    /// Starts a member from its disk with its zoo.cfg settings (four-letter whitelist,
    /// `maxClientCnxns`, `readonlymode.enabled`, directories reported by `conf`).
    pub fn start_configured(s: NodeSetup, config: ServerConfig) -> Node {
        let (db, disk_state) = s.disk.load(s.quorum.committed_log_size);
        let now = now_ms();
        let mut processor = Processor::new(db, s.settings.clone(), now);
        processor.set_write_mode(WriteMode::Forward);
        let quorum = quorum_view(&s.quorum);
        let tick_ms = s.quorum.tick_time;
        let (disk_tx, disk_rx) = mpsc::unbounded_channel();
        let appender_disk = s.disk.clone();
        let io = QuorumIo::start(
            &s.quorum,
            || Box::new(MemberAppender::new(appender_disk.clone(), disk_tx.clone())),
            s.election,
            s.quorum_listener,
            s.addrs,
        );
        let (peer, first) = QuorumPeer::new(s.quorum, disk_state, io.now());
        // Apache waits max(2 s, tickTime) of LOOKING before serving read-only.
        let gate = MemberGate::new((tick_ms as i64).max(2000), io.now() as i64);
        let isolation = io.isolation_switch();
        let (core_tx, core_rx) = mpsc::unbounded_channel();
        let throttle = Arc::new(Throttle::default());
        let conn_settings = Arc::new(ConnSettings::from_config(&config));
        let listener = s.client.spawn(core_tx, conn_settings, throttle.clone());
        let looking = PeerStatus {
            state: PeerState::Looking,
            leader: None,
            serving: false,
        };
        let (status_tx, status) = watch::channel(looking);
        let read_only_enabled = Arc::new(AtomicBool::new(config.read_only_mode));
        let task = NodeTask {
            processor,
            settings: s.settings,
            owners: SessionOwners::default(),
            peer,
            io,
            actions: first,
            walks: Walks::default(),
            gate,
            clients: Clients::new(throttle),
            role: looking,
            status: status_tx,
            read_only_enabled: read_only_enabled.clone(),
            config,
            quorum,
            started: now,
            last_owner_prune: now,
            leading_since: None,
            last_state: None,
            disk: s.disk,
            purge_timer: PurgeTimer::new(),
            purging: None,
        };
        let task = tokio::spawn(task.run(core_rx, disk_rx));
        Node {
            status,
            read_only_enabled,
            isolation,
            task,
            listener,
        }
    }

    /// The peer's latest role.
    pub fn status(&self) -> PeerStatus {
        *self.status.borrow()
    }

    /// Turns read-only mode (`readonlymode.enabled`) on or off: when on, a member LOOKING
    /// for a while serves clients that allow read-only connections.
    pub fn set_read_only_mode(&self, on: bool) {
        self.read_only_enabled.store(on, Ordering::SeqCst);
    }

    /// Cuts (true) or restores (false) this member's traffic with the other members, like
    /// a network partition around it; its clients still reach it.
    pub fn isolate(&self, on: bool) {
        self.isolation.set(on);
    }
}

/// The static part of what `conf` / `mntr` report about the ensemble.
fn quorum_view(q: &QuorumConfig) -> QuorumView {
    let me = q.servers.get(&q.my_sid);
    let membership = q
        .servers
        .values()
        .map(|s| {
            let kind = match s.learner_type {
                LearnerType::Participant => "participant",
                LearnerType::Observer => "observer",
            };
            let client = s
                .client_addr
                .as_ref()
                .map(|c| format!(";{c}"))
                .unwrap_or_default();
            format!(
                "server.{}={}:{}:{}:{kind}{client}",
                s.sid, s.host, s.quorum_port, s.election_port
            )
        })
        .collect();
    QuorumView {
        peer_state: String::new(),
        init_limit: q.init_limit,
        sync_limit: q.sync_limit,
        election_port: me.map(|s| s.election_port).unwrap_or(0),
        quorum_port: me.map(|s| s.quorum_port).unwrap_or(0),
        peer_type: u8::from(me.is_some_and(|s| s.learner_type == LearnerType::Observer)),
        membership,
        quorum_size: q.voters().count(),
        leader: None,
        leader_uptime_ms: 0,
        proposal_sizes: Default::default(),
        proposal_count: 0,
        looking_count: 0,
    }
}

/// One member's node task: the processor, the quorum peer and its I/O, the clients.
struct NodeTask {
    /// The server core.
    processor: Processor,
    /// Its settings (to rebuild it when the member stops serving or reloads).
    settings: CoreSettings,
    /// Leader: which member each session's client is on.
    owners: SessionOwners,
    /// The quorum peer (sans-IO).
    peer: QuorumPeer,
    /// The peer's network, disk thread and timer.
    io: QuorumIo,
    /// Peer actions still to perform (see [`NodeTask::drive`]).
    actions: Vec<Action>,
    /// Fuzzy snapshot walks in progress (SNAP bodies, snapshot files).
    walks: Walks,
    clients: Clients,
    /// Held syncs, handshakes waiting on the quorum, read-only timing (sans-IO, on the
    /// peer's monotonic clock).
    gate: MemberGate,
    /// The peer's latest role.
    role: PeerStatus,
    /// The role, published for [`Node::status`].
    status: watch::Sender<PeerStatus>,
    read_only_enabled: Arc<AtomicBool>,
    config: ServerConfig,
    quorum: QuorumView,
    started: i64,
    last_owner_prune: i64,
    /// Since when this member leads a serving quorum (`zk_leader_uptime`).
    leading_since: Option<i64>,
    /// The peer's state in its latest role report (elections counted in `mntr`).
    last_state: Option<PeerState>,
    /// The member's durable state (log reads, TRUNC, SNAP installs, epochs, snapshots,
    /// autopurge; appends go through the peer's disk thread).
    disk: NodeDisk,
    /// When autopurge runs next (Apache runs it in QuorumPeerMain too).
    purge_timer: PurgeTimer,
    /// The purge running on a blocking thread, if any.
    purging: Option<JoinHandle<()>>,
}

impl NodeTask {
    /// The member's monotonic clock (ms), for timeouts; wall-clock time (`now_ms`) only
    /// goes into txns and session expiry, as the processor keeps it.
    fn mono(&self) -> i64 {
        self.io.now() as i64
    }

    fn serving(&self) -> bool {
        self.role.serving
    }

    fn leading(&self) -> bool {
        self.role.serving && self.role.state == PeerState::Leading
    }

    async fn run(
        mut self,
        mut clients: UnboundedReceiver<ClientMsg>,
        mut disk_events: UnboundedReceiver<DiskEvent>,
    ) {
        let mut ticker = tokio::time::interval(Duration::from_millis(50));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.drive();
        loop {
            if self.walks.is_busy() {
                // One slice per event: a large tree never stalls the member.
                self.walks.step(self.processor.db(), SLICE_BYTES);
            }
            let busy = self.walks.is_busy();
            tokio::select! {
                ev = self.io.next() => match ev {
                    Some(ev) => {
                        let more = self.io.handle(&mut self.peer, ev);
                        self.actions.extend(more);
                    }
                    None => return,
                },
                m = clients.recv() => match m {
                    Some(m) => self.client_msg(m),
                    None => return,
                },
                Some(e) = disk_events.recv() => match e {
                    DiskEvent::SnapshotDue { round, on_disk } => self.snapshot_due(round, on_disk),
                },
                _ = ticker.tick() => self.tick(),
                // Walks go on while nothing else is ready.
                _ = std::future::ready(()), if busy => {}
            }
            self.drive();
        }
    }

    /// Performs the peer's actions until none are left (each may lead to more: durable
    /// txns, log reads, the processor's proposals).
    fn drive(&mut self) {
        while !self.actions.is_empty() {
            let batch = std::mem::take(&mut self.actions);
            if let Some(st) = self.io.begin_round(&batch) {
                self.role_changed(st, None);
            }
            for a in batch {
                if let Some(a) = self.io.perform(&mut self.peer, a) {
                    self.peer_action(a);
                }
            }
            let more = self.io.end_round(&mut self.peer);
            self.actions.extend(more);
        }
    }

    /// The peer's actions that concern the server: the database, the disk, the clients.
    fn peer_action(&mut self, a: Action) {
        let now = self.io.now();
        match a {
            Action::Deliver(p) => match TxnEntry::decode(p.data.clone()) {
                Ok(e) => {
                    let out = self.processor.committed(std::slice::from_ref(&e), now_ms());
                    self.outputs(out);
                }
                Err(e) => tracing::error!("undecodable committed txn {:#x}: {e}", p.zxid),
            },
            Action::SendSnapshot { conn, zxid } => {
                // Walked a slice at a time by this task, so the member keeps serving and
                // committing meanwhile; it starts now, with every txn up to the SNAP's
                // zxid applied.
                let body = self.walks.for_learner(self.processor.db());
                self.io.send_snapshot(conn, zxid, body);
            }
            Action::InstallSnapshot { zxid, data } => {
                // Walks over the old tree stop before the disk waits for its snapshot
                // thread (which a file walk feeds).
                self.walks.cancel();
                // The driver checked the stream's structure, so this only fails on a bug.
                match self.disk.install(zxid, &data) {
                    Ok(db) => self.reload(db),
                    Err(e) => {
                        tracing::error!("undecodable snapshot {zxid:#x} from the leader: {e}")
                    }
                }
            }
            Action::Truncate(zxid) => {
                self.walks.cancel();
                let db = self.disk.truncate(zxid);
                self.reload(db);
            }
            Action::ReadLog { conn, from, to } => {
                let txns = self.disk.read_log(from, to);
                let more = self.peer.on_log_read(now, conn, txns);
                self.actions.extend(more);
            }
            Action::SaveAcceptedEpoch(e) => self.disk.save_accepted_epoch(e),
            Action::SaveCurrentEpoch(e) => self.disk.save_current_epoch(e),
            Action::StateChanged {
                state,
                leader,
                serving,
            } => {
                let st = PeerStatus {
                    state,
                    leader,
                    serving,
                };
                let next = self.peer.next_zxid();
                self.role_changed(st, next);
            }
            Action::LearnerRequest { conn, packet, .. } => {
                // Syncs are answered once everything proposed before them is committed;
                // writes are prepared here and proposed.
                if is_sync_request(&packet) {
                    let more = self.peer.sync_request(now, conn);
                    self.actions.extend(more);
                } else {
                    self.forwarded(conn, &packet);
                }
            }
            Action::Revalidate {
                conn,
                session_id,
                timeout,
            } => {
                let valid = touch(&mut self.processor, session_id, timeout, now_ms());
                if valid {
                    self.owners.set(session_id, Owner::Learner(conn));
                }
                let more = self.peer.revalidate_reply(now, conn, session_id, valid);
                self.actions.extend(more);
            }
            Action::SyncDone => self.sync_done(),
            Action::SessionsTouched { sessions, .. } => {
                let now = now_ms();
                for (s, t) in sessions {
                    touch(&mut self.processor, s, t, now);
                }
            }
            Action::Revalidated { session_id, valid } => self.revalidated(session_id, valid),
            // Network and log actions are the QuorumIo's.
            other => tracing::debug!("peer action left unhandled: {other:?}"),
        }
    }

    /// The peer changed role; `next_zxid` is what the next proposal gets (an established
    /// leader only). Switches the processor between leading and forwarding, and ends
    /// what the old role's clients were waiting for when the member stops serving.
    fn role_changed(&mut self, st: PeerStatus, next_zxid: Option<Zxid>) {
        tracing::debug!("member role: {st:?}");
        let looking = st.state == PeerState::Looking;
        let was_read_only = self.gate.role_changed(looking, st.serving, self.mono());
        if was_read_only {
            // Any role change ends read-only mode (Apache shuts its read-only server down
            // when the election ends): local sessions go, their clients reconnect.
            self.reset();
        }
        self.role = st;
        match next_zxid {
            Some(z) if st.serving && st.state == PeerState::Leading => self.lead(z),
            _ if !st.serving => self.reset(),
            _ => self.processor.set_write_mode(WriteMode::Forward),
        }
        if st.state == PeerState::Looking && self.last_state != Some(PeerState::Looking) {
            self.quorum.looking_count += 1;
        }
        self.last_state = Some(st.state);
        let _ = self.status.send(st);
        let leads = st.serving && st.state == PeerState::Leading;
        self.leading_since = match leads {
            true => self.leading_since.or(Some(now_ms())),
            false => None,
        };
        if !st.serving || was_read_only {
            // Our clients' requests would hang without a quorum, and read-only
            // sessions end with read-only mode: let the clients move.
            self.clients.close_all();
        }
    }

    /// Starts leading: proposals get zxids from `next_zxid` on.
    fn lead(&mut self, next_zxid: Zxid) {
        let now = now_ms();
        // A new leadership knows no session owners yet: the first member to use a
        // session claims it (as Apache's session tracker).
        self.owners.clear();
        let p = &mut self.processor;
        p.set_write_mode(WriteMode::Local);
        p.set_next_zxid(next_zxid);
        p.renew_sessions(now);
    }

    /// Rebuilds the processor over its own database, dropping connections, queues,
    /// waiters and prepared-but-uncommitted changes: when a member stops serving its
    /// clients are disconnected, and what it proposed as leader may never commit.
    fn reset(&mut self) {
        let empty = Processor::new(ZkDatabase::new(), self.settings.clone(), now_ms());
        let db = std::mem::replace(&mut self.processor, empty).into_db();
        self.rebuild(db);
    }

    /// Rebuilds the processor over `db` (after TRUNC / SNAP; clients are disconnected
    /// then, as the member is not serving). Walks over the old tree stop.
    fn reload(&mut self, db: ZkDatabase) {
        self.walks.cancel();
        self.rebuild(db);
    }

    fn rebuild(&mut self, db: ZkDatabase) {
        let mut p = Processor::new(db, self.settings.clone(), now_ms());
        p.set_write_mode(WriteMode::Forward);
        self.processor = p;
    }

    /// The disk thread logged `snapCount` txns since the last snapshot: on disk a fuzzy
    /// snapshot file, walked a slice at a time by this task; in memory a copy.
    fn snapshot_due(&mut self, round: u64, on_disk: bool) {
        if self.walks.writing_file() {
            // The previous file is still being walked; the next append asks again.
            return;
        }
        if on_disk {
            let snap = self.processor.db().begin_snapshot();
            let sessions = snap.sessions.clone();
            if let Some(feed) = self.disk.stream_snapshot(round, snap.last_zxid, sessions) {
                self.walks.to_file(snap, feed);
            }
        } else {
            let db = self.processor.db();
            self.disk.take_snapshot_if_due(Some(round), || db.image());
        }
    }

    fn tick(&mut self) {
        let now = now_ms();
        let enabled = self.read_only_enabled.load(Ordering::SeqCst);
        if let Some(looked) = self.gate.enter_read_only(enabled, self.mono()) {
            tracing::info!(
                "peer {}: no quorum for {looked} ms: serving read-only clients",
                self.peer.sid()
            );
            self.reset();
            self.processor.set_write_mode(WriteMode::ReadOnly);
        }
        if now - self.last_owner_prune >= 1000 {
            self.last_owner_prune = now;
            let sessions = self.processor.sessions();
            self.owners.retain(|s| sessions.contains(s));
        }
        let out = self.processor.tick(now);
        self.outputs(out);
        self.retry_unapplied();
        self.autopurge(now);
    }

    /// Starts a purge when one is due (at start, every purgeInterval, after each
    /// snapshot), off this task: deleting files must not hold up clients.
    fn autopurge(&mut self, now: i64) {
        if self.purging.as_ref().is_some_and(|p| !p.is_finished()) {
            // Still due at the next tick once this one ends.
            return;
        }
        // Lock-free reads: the disk's lock may be held across a sync.
        let interval = self.disk.purge_interval();
        if !self
            .purge_timer
            .due(now, interval, self.disk.snapshots_written())
        {
            return;
        }
        let disk = self.disk.clone();
        self.purging = Some(tokio::task::spawn_blocking(move || {
            disk.purge();
        }));
    }

    fn client_msg(&mut self, msg: ClientMsg) {
        let now = now_ms();
        match msg {
            ClientMsg::Accepted {
                conn,
                peer,
                tx,
                auth,
            } => {
                self.clients.accepted(conn, peer, tx, now);
                self.processor.transport_auth(conn, auth);
            }
            ClientMsg::Connect { conn, req } => {
                self.clients.connect_received(conn, req.session_id == 0);
                self.connect(conn, req);
            }
            ClientMsg::Request { conn, xid, req } => {
                self.clients.request_received(conn, xid, req.opcode());
                self.request(conn, xid, req);
            }
            ClientMsg::Unknown {
                conn,
                xid,
                marshalling,
            } => {
                self.clients
                    .request_received(conn, xid, zk_proto::OpCode::Error);
                let out = self.processor.unknown_request(conn, xid, marshalling);
                self.outputs(out);
            }
            ClientMsg::Disconnected { conn } => {
                self.clients.disconnected(conn);
                self.gate.disconnected(conn);
                self.processor.disconnected(conn);
            }
            ClientMsg::FourLetter { cmd, peer, reply } => {
                let leader = if cmd == "mntr" && self.leading() {
                    leader_stats(&self.peer)
                } else {
                    None
                };
                let text = self.four_letter(&cmd, peer, leader);
                let _ = reply.send(text);
                self.clients.stats.packets_sent += 1;
            }
        }
    }

    /// The mode `srvr` reports, or `None` when the member serves no clients.
    fn mode(&self) -> Option<&'static str> {
        if self.gate.read_only() {
            return Some("read-only");
        }
        let s = self.role;
        match s.state {
            _ if !s.serving => None,
            PeerState::Leading => Some("leader"),
            PeerState::Observing => Some("observer"),
            _ => Some("follower"),
        }
    }

    fn four_letter(&mut self, cmd: &str, peer: SocketAddr, leader: Option<LeaderStats>) -> String {
        if cmd == "srst" {
            // Apache's srst resets the leader's proposal sizes along with the server stats.
            self.quorum.proposal_sizes = Default::default();
        }
        let Some(mode) = self.mode() else {
            self.clients.four_letter(cmd);
            return match cmd {
                // Apache's answer when no server is running behind the peer.
                "isro" => "null".to_string(),
                c if four_letter::needs_serving(c) => four_letter::NOT_SERVING.to_string(),
                _ => self.render(cmd, peer, "standalone", None),
            };
        };
        self.clients.four_letter(cmd);
        self.render(cmd, peer, mode, leader)
    }

    fn render(
        &mut self,
        cmd: &str,
        peer: SocketAddr,
        mode: &str,
        leader: Option<LeaderStats>,
    ) -> String {
        let now = now_ms();
        let mut quorum = self.quorum.clone();
        quorum.peer_state = match mode {
            "leader" => "leading - broadcast",
            "observer" => "observing - broadcast",
            _ => "following - broadcast",
        }
        .to_string();
        quorum.leader = leader;
        quorum.leader_uptime_ms = self.leading_since.map(|t| now - t).unwrap_or(0);
        let asking = clients::asking(peer, now);
        let view = four_letter::View::of(
            &self.processor,
            &self.config,
            &self.clients,
            &asking,
            self.started,
            now,
        );
        let role = four_letter::Role {
            mode,
            quorum: Some(&quorum),
        };
        four_letter::render_as(cmd, &view, role)
    }

    /// A handshake. A learner asks the leader to revalidate a session moving here; the
    /// leader records itself as the owner of a session reconnecting to it.
    fn connect(&mut self, conn: ConnId, req: ConnectRequest) {
        if !self.serving() && !self.gate.read_only() {
            // Not part of an established quorum: the client tries another member.
            self.clients.close(conn);
            return;
        }
        let session = req.session_id;
        // The password is derived from the session id: every member can check it.
        let password_ok =
            session != 0 && req.passwd.as_ref() == session_password(session).as_slice();
        if password_ok && !self.gate.read_only() {
            if !self.leading() {
                // Apache's learners check the password locally, then ask the leader
                // with the timeout this connection negotiates.
                let timeout = self.processor.negotiated_timeout(req.timeout);
                self.gate.await_revalidation(session, conn, req.clone());
                self.forward(revalidate_request(session, timeout));
                return;
            }
            if self.processor.sessions().contains(session) {
                self.owners.set(session, Owner::Leader);
            }
        }
        self.finish_connect(conn, req);
    }

    /// Answers a handshake whose session (if any) is valid ensemble-wide: a session the
    /// leader knows but whose createSession is not applied here yet waits for it, so a
    /// client moving right after creating its session is not told it expired.
    fn finish_connect(&mut self, conn: ConnId, req: ConnectRequest) {
        let session = req.session_id;
        let applied = self.processor.db().sessions().contains_key(&session);
        if session != 0 && !self.gate.read_only() && !applied {
            let known = !self.leading() || self.processor.sessions().contains(session);
            if known {
                let now = self.mono();
                self.gate.await_apply(conn, req, now);
                return;
            }
        }
        let ip = self.clients.ip(conn);
        let out = self.processor.connect(conn, &ip, &req, now_ms());
        self.outputs(out);
        if session != 0 && !self.gate.read_only() {
            // The timeout this connection negotiated (clamped), which the session's
            // expiry follows from now on.
            let t = self
                .processor
                .sessions()
                .timeout(session)
                .unwrap_or(req.timeout);
            self.peer.touch_session(session, t);
        }
    }

    /// Retries the handshakes waiting for their session's createSession to be applied;
    /// past their deadline they are answered (as expired, by the processor).
    fn retry_unapplied(&mut self) {
        if !self.gate.awaits_apply() {
            return;
        }
        let now = now_ms();
        let ready = {
            let sessions = self.processor.db().sessions();
            let clients = &self.clients;
            self.gate.applied_or_due(
                self.io.now() as i64,
                |s| sessions.contains_key(&s),
                |c| clients.contains(c),
            )
        };
        for (conn, req) in ready {
            let ip = self.clients.ip(conn);
            let out = self.processor.connect(conn, &ip, &req, now);
            self.outputs(out);
        }
    }

    /// The leader answered a REVALIDATE: finish the oldest handshake waiting on it.
    fn revalidated(&mut self, session: i64, valid: bool) {
        let Some((conn, req)) = self.gate.revalidated(session) else {
            return;
        };
        if !self.clients.contains(conn) {
            // The client gave up meanwhile.
            return;
        }
        if valid {
            self.finish_connect(conn, req);
        } else {
            // Expired on the leader: Apache's "session expired" handshake reply.
            self.outputs(vec![
                Output::Connected {
                    conn,
                    resp: ConnectResponse {
                        protocol_version: 0,
                        timeout: 0,
                        session_id: 0,
                        passwd: vec![0u8; zk_proto::PASSWORD_LEN].into(),
                        read_only: req.read_only.map(|_| false),
                    },
                },
                Output::Close { conn },
            ]);
        }
    }

    /// A client request: held behind a sync forwarded to the leader, or processed.
    fn request(&mut self, conn: ConnId, xid: i32, req: Request) {
        let Some((xid, req)) = self.gate.hold(conn, xid, req) else {
            return;
        };
        if self.gate.read_only() {
            let out = self.processor.request(conn, xid, req, now_ms());
            self.outputs(out);
            return;
        }
        let session = self.processor.session_of(conn);
        if let Some(s) = session {
            let t = self.processor.sessions().timeout(s).unwrap_or(0);
            self.peer.touch_session(s, t);
        }
        let leading = self.leading();
        if let (Some(s), true) = (session, leading && is_write(&req)) {
            if !self.owners.check(s, Owner::Leader) {
                // The client moved to another member: this connection is stale. Apache
                // fails the write with SessionMoved by closing the connection.
                tracing::info!("session {s:#x} moved: closing its old connection {conn}");
                self.clients.close(conn);
                return;
            }
        }
        if let (Request::Sync(_), Some(s), false) = (&req, session, leading) {
            // A follower's sync goes through the leader: once it answers, everything
            // committed before the sync has been applied here. Later requests of the
            // connection wait behind it to keep replies in order.
            self.forward(request_packet::write(s, xid, &req, Vec::new()));
            self.gate.sync_forwarded(conn, xid, req);
            return;
        }
        tracing::trace!("request {conn} xid {xid}: {:?}", req.opcode());
        let out = self.processor.request(conn, xid, req, now_ms());
        self.outputs(out);
    }

    /// The leader answered the oldest forwarded sync: answer it and release what waited.
    fn sync_done(&mut self) {
        let Some((conn, mut q)) = self.gate.sync_done() else {
            return;
        };
        if let Some((xid, req)) = q.pop_front() {
            let out = self.processor.request(conn, xid, req, now_ms());
            self.outputs(out);
        }
        for (xid, req) in q {
            self.request(conn, xid, req);
        }
    }

    /// Leader: a write a learner forwarded. A session whose client has moved to another
    /// member gets a SessionMoved error txn, which closes the stale connection there.
    fn forwarded(&mut self, learner: LearnerConn, p: &QuorumPacket) {
        let Some(f) = request_packet::decode(p) else {
            tracing::warn!("dropping a malformed forwarded request");
            return;
        };
        let now = now_ms();
        let owner = Owner::Learner(learner);
        let e = match f {
            Forwarded::CreateSession { session, timeout } => {
                self.owners.set(session, owner);
                self.processor.prepare_create_session(session, timeout, now)
            }
            Forwarded::Write { session, cxid, .. } if !self.owners.check(session, owner) => {
                tracing::info!("session {session:#x} moved: failing a write from its old member");
                self.processor
                    .prepare_error(session, cxid, ErrorCode::SessionMoved, now)
            }
            Forwarded::Write {
                session,
                cxid,
                request,
                auth,
            } => self
                .processor
                .prepare_forwarded(session, cxid, &request, &auth, now),
        };
        self.propose(e);
    }

    /// Learner: forwards a packet to the leader (dropped when cut off or not following).
    fn forward(&mut self, p: QuorumPacket) {
        let more = self.io.forward(&mut self.peer, p);
        self.actions.extend(more);
    }

    /// Leader: proposes a txn the processor prepared.
    fn propose(&mut self, e: TxnEntry) {
        let zxid = e.header.zxid;
        let e_session = e.header.client_id;
        let mut b = BytesMut::new();
        e.write(&mut b);
        self.quorum.proposal_sizes.record(b.len());
        self.quorum.proposal_count += 1;
        // The processor assigned the zxid; the peer only checks that it is the next one.
        let (r, more) = self.peer.propose_txn(self.io.now(), zxid, b.freeze());
        self.actions.extend(more);
        match r {
            Ok(_) => {}
            Err(e @ ProposeError::OutOfOrder { .. }) => tracing::error!(
                "peer {}: txn {zxid:#x} of session {:#x} not proposed: {e:?}",
                self.peer.sid(),
                e_session
            ),
            // Leadership is gone; the role change disconnects the clients.
            Err(e) => tracing::warn!(
                "peer {}: cannot propose {zxid:#x} of session {e_session:#x}: {e:?}",
                self.peer.sid()
            ),
        }
    }

    fn outputs(&mut self, out: Vec<Output>) {
        for o in out {
            self.output(o);
        }
    }

    fn output(&mut self, o: Output) {
        match o {
            Output::Propose(e) => self.propose(e),
            Output::Forward {
                session,
                cxid,
                request,
                auth,
            } => self.forward(request_packet::write(session, cxid, &request, auth)),
            Output::ForwardCreateSession { session, timeout } => {
                self.forward(request_packet::create_session(session, timeout))
            }
            // Apache's learners close a connection whose session moved elsewhere instead
            // of answering it.
            Output::Reply { conn, header, .. } if header.err == ErrorCode::SessionMoved => {
                tracing::info!("session moved: closing the old connection {conn}");
                self.clients.close(conn);
            }
            Output::Reply { conn, header, body } => self.clients.reply(conn, header, &body),
            Output::Connected { conn, resp } => self.clients.connected(conn, &resp),
            Output::Event { conn, event } => self.clients.event(conn, &event),
            Output::Close { conn } => {
                tracing::debug!("processor closes {conn}");
                self.clients.close(conn)
            }
        }
    }
}

/// Leader: a learner's session activity. The timeout its connection negotiated (learners
/// send it clamped) becomes the session's, as Apache's `touchSession(id, timeout)`; a
/// packet without one keeps the old timeout.
fn touch(p: &mut Processor, session: i64, timeout: i32, now: i64) -> bool {
    if timeout > 0 {
        p.touch_session_with(session, timeout, now)
    } else {
        p.touch_session(session, now)
    }
}
