//! One ensemble member serving clients: the client listener, a node task carrying out
//! the processor's outputs (frames to connections, proposals to the peer, forwards to
//! the leader) and the quorum peer with a [`ServerReplica`].

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use tokio::net::TcpListener;
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio::task::JoinHandle;
use zk_proto::{write_frame, ErrorCode, Record, ReplyHeader, Request, Response};

use super::replica::{lock, Core, NodeDisk, NodeMsg, ServerReplica, SharedCore};
use super::request_packet::{self, Forwarded};
use crate::net::connection::{ConnSettings, Throttle};
use crate::net::{listener, ConnCmd};
use crate::pipeline::{ConnId, CoreSettings, Output, Processor, WriteMode};
use crate::quorum::net::driver::{spawn_peer, PeerAddrs, PeerHandle, PeerStatus};
use crate::quorum::{PeerState, QuorumConfig};
use crate::server::{now_ms, CoreMsg};

/// Everything a member needs to start.
pub struct NodeSetup {
    /// Its quorum config.
    pub quorum: QuorumConfig,
    /// Core settings (server id, timeouts).
    pub settings: CoreSettings,
    /// Its durable state.
    pub disk: NodeDisk,
    /// Bound client listener.
    pub client: TcpListener,
    /// Bound election listener.
    pub election: TcpListener,
    /// Bound quorum listener.
    pub quorum_listener: TcpListener,
    /// Ensemble addresses.
    pub addrs: PeerAddrs,
}

/// A running member; dropping it stops it like a crash.
pub struct Node {
    status: Arc<Mutex<PeerStatus>>,
    task: JoinHandle<()>,
    listener: JoinHandle<()>,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.listener.abort();
        self.task.abort();
    }
}

impl Node {
    /// Starts a member from its disk.
    pub fn start(s: NodeSetup) -> Node {
        let log = s.disk.log();
        let db = super::replica::replay(&log);
        let now = now_ms();
        let mut processor = Processor::new(db, s.settings.clone(), now);
        processor.set_write_mode(WriteMode::Forward);
        let (node_tx, node_rx) = mpsc::unbounded_channel();
        let core: SharedCore = Arc::new(Mutex::new(Core::new(processor, s.settings, node_tx)));
        let replica = ServerReplica::new(s.disk.clone(), core.clone(), log);
        let peer = spawn_peer(
            s.quorum,
            s.disk.disk_state(),
            replica,
            s.election,
            s.quorum_listener,
            s.addrs,
        );
        let (core_tx, core_rx) = mpsc::unbounded_channel();
        let throttle = Arc::new(Throttle::default());
        let conn_settings = Arc::new(ConnSettings {
            max_frame: 1 << 20,
            max_client_cnxns: 60,
            four_letter_whitelist: ["srvr", "ruok"].iter().map(|w| w.to_string()).collect(),
            global_outstanding_limit: 1000,
        });
        let listener = tokio::spawn(listener::run(
            s.client,
            core_tx,
            conn_settings,
            throttle.clone(),
        ));
        let status = Arc::new(Mutex::new(PeerStatus {
            state: PeerState::Looking,
            leader: None,
            serving: false,
        }));
        let task = NodeTask {
            core,
            peer,
            conns: HashMap::new(),
            throttle,
            status: status.clone(),
            syncs: VecDeque::new(),
            held: HashMap::new(),
        };
        let task = tokio::spawn(task.run(core_rx, node_rx));
        Node {
            status,
            task,
            listener,
        }
    }

    /// The peer's latest role.
    pub fn status(&self) -> PeerStatus {
        *self.status.lock().unwrap_or_else(|p| p.into_inner())
    }
}

struct ConnEntry {
    tx: UnboundedSender<ConnCmd>,
    /// Peer ip (the `ip` auth identity).
    ip: String,
    /// Requests read but not answered (released to the throttle as replies go out).
    queued: usize,
}

struct NodeTask {
    core: SharedCore,
    peer: PeerHandle,
    conns: HashMap<ConnId, ConnEntry>,
    throttle: Arc<Throttle>,
    status: Arc<Mutex<PeerStatus>>,
    /// Connections whose syncs were forwarded, oldest first (the leader answers in order).
    syncs: VecDeque<ConnId>,
    /// Per connection: a forwarded sync and the requests that came after it.
    held: HashMap<ConnId, VecDeque<(i32, Request)>>,
}

impl NodeTask {
    fn serving(&self) -> bool {
        self.status.lock().map(|s| s.serving).unwrap_or(false)
    }

    async fn run(
        mut self,
        mut clients: UnboundedReceiver<CoreMsg>,
        mut node: UnboundedReceiver<NodeMsg>,
    ) {
        let mut ticker = tokio::time::interval(Duration::from_millis(50));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                // Peer-side messages first: a reply released by a commit must not be
                // overtaken by a later read's reply.
                biased;
                m = node.recv() => match m {
                    Some(m) => self.node_msg(m).await,
                    None => return,
                },
                m = clients.recv() => match m {
                    Some(m) => self.client_msg(m),
                    None => return,
                },
                _ = ticker.tick() => {
                    let mut c = lock(&self.core);
                    let out = c.processor.tick(now_ms());
                    c.emit(out);
                }
            }
        }
    }

    fn client_msg(&mut self, msg: CoreMsg) {
        let now = now_ms();
        match msg {
            CoreMsg::Accepted { conn, peer, tx } => {
                let ip = peer.ip().to_string();
                self.conns.insert(conn, ConnEntry { tx, ip, queued: 0 });
            }
            CoreMsg::Connect { conn, req } => {
                if !self.serving() {
                    // Not part of an established quorum: the client tries another member.
                    self.close(conn);
                    return;
                }
                let ip = self
                    .conns
                    .get(&conn)
                    .map(|c| c.ip.clone())
                    .unwrap_or_default();
                let mut c = lock(&self.core);
                let out = c.processor.connect(conn, &ip, &req, now);
                c.emit(out);
                if req.session_id != 0 {
                    self.peer.touch_session(req.session_id, req.timeout);
                }
            }
            CoreMsg::Request { conn, xid, req } => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.queued += 1;
                }
                self.request(conn, xid, req);
            }
            CoreMsg::Unknown { conn, xid, .. } => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.queued += 1;
                }
                let c = lock(&self.core);
                c.emit(vec![
                    Output::Reply {
                        conn,
                        header: ReplyHeader {
                            xid,
                            zxid: -1,
                            err: ErrorCode::Unimplemented,
                        },
                        body: Response::Empty,
                    },
                    Output::Close { conn },
                ]);
            }
            CoreMsg::Disconnected { conn } => {
                if let Some(c) = self.conns.remove(&conn) {
                    self.throttle.done(c.queued);
                }
                self.held.remove(&conn);
                lock(&self.core).processor.disconnected(conn);
            }
            CoreMsg::FourLetter { cmd, reply, .. } => {
                let text = match cmd.as_str() {
                    "ruok" => "imok".to_string(),
                    "srvr" => self.srvr(),
                    _ => String::new(),
                };
                let _ = reply.send(text);
            }
            CoreMsg::Committed(_) | CoreMsg::Shutdown(_) => {}
        }
    }

    /// `srvr` as an ensemble member answers it: the role is what tools look for.
    fn srvr(&self) -> String {
        let st = self.status.lock().map(|s| *s).ok();
        let mode = match st {
            Some(s) if s.serving && s.state == PeerState::Leading => "leader",
            Some(s) if s.serving && s.state == PeerState::Observing => "observer",
            Some(s) if s.serving => "follower",
            _ => {
                // Apache answers this when the member is not in a quorum.
                return "This ZooKeeper instance is not currently serving requests\n".into();
            }
        };
        let c = lock(&self.core);
        format!(
            "Zookeeper version: {}\nConnections: {}\nZxid: 0x{:x}\nMode: {mode}\nNode count: {}\n",
            crate::net::four_letter::VERSION,
            self.conns.len(),
            c.processor.db.last_zxid(),
            c.processor.db.tree.node_count()
        )
    }

    /// A client request: held behind a sync forwarded to the leader, or processed.
    fn request(&mut self, conn: ConnId, xid: i32, req: Request) {
        if let Some(q) = self.held.get_mut(&conn) {
            q.push_back((xid, req));
            return;
        }
        let mut c = lock(&self.core);
        let session = c.processor.session_of(conn);
        if let Some(s) = session {
            let t = c.processor.sessions.timeout(s).unwrap_or(0);
            self.peer.touch_session(s, t);
        }
        let following = self
            .status
            .lock()
            .map(|s| s.state != PeerState::Leading)
            .unwrap_or(true);
        if let (Request::Sync(_), Some(s), true) = (&req, session, following) {
            // A follower's sync goes through the leader: once it answers, everything
            // committed before the sync has been applied here. Later requests of the
            // connection wait behind it to keep replies in order.
            drop(c);
            self.peer
                .forward(request_packet::write(s, xid, &req, Vec::new()));
            self.syncs.push_back(conn);
            self.held.insert(conn, VecDeque::from([(xid, req)]));
            return;
        }
        tracing::trace!("request {conn} xid {xid}: {:?}", req.opcode());
        let out = c.processor.request(conn, xid, req, now_ms());
        c.emit(out);
    }

    /// The leader answered the oldest forwarded sync: answer it and release what waited.
    fn sync_done(&mut self) {
        let Some(conn) = self.syncs.pop_front() else {
            return;
        };
        let Some(mut q) = self.held.remove(&conn) else {
            return;
        };
        if let Some((xid, req)) = q.pop_front() {
            let mut c = lock(&self.core);
            let out = c.processor.request(conn, xid, req, now_ms());
            c.emit(out);
        }
        for (xid, req) in q {
            self.request(conn, xid, req);
        }
    }

    async fn node_msg(&mut self, msg: NodeMsg) {
        match msg {
            NodeMsg::Outputs(out) => {
                for o in out {
                    self.output(o).await;
                }
            }
            NodeMsg::Forwarded(p) => {
                let Some(f) = request_packet::decode(&p) else {
                    tracing::warn!("dropping a malformed forwarded request");
                    return;
                };
                let now = now_ms();
                let mut c = lock(&self.core);
                let e = match f {
                    Forwarded::CreateSession { session, timeout } => {
                        c.processor.prepare_create_session(session, timeout, now)
                    }
                    Forwarded::Write {
                        session,
                        cxid,
                        request,
                        auth,
                    } => c
                        .processor
                        .prepare_forwarded(session, cxid, &request, &auth, now),
                };
                c.emit(vec![Output::Propose(e)]);
            }
            NodeMsg::SyncDone => self.sync_done(),
            NodeMsg::Role(st) => {
                tracing::debug!("member role: {st:?}");
                if let Ok(mut s) = self.status.lock() {
                    *s = st;
                }
                if !st.serving {
                    self.syncs.clear();
                    self.held.clear();
                    // Our clients' requests would hang without a quorum: let them move.
                    let conns: Vec<ConnId> = self.conns.keys().copied().collect();
                    for c in conns {
                        self.close(c);
                    }
                }
            }
        }
    }

    fn close(&self, conn: ConnId) {
        tracing::debug!("closing client connection {conn}");
        if let Some(c) = self.conns.get(&conn) {
            let _ = c.tx.send(ConnCmd::Close);
        }
    }

    fn send(&mut self, conn: ConnId, b: BytesMut) {
        if let Some(c) = self.conns.get(&conn) {
            let _ = c.tx.send(ConnCmd::Frame(b.freeze()));
        }
    }

    async fn output(&mut self, o: Output) {
        match o {
            Output::Propose(e) => {
                let zxid = e.header.zxid;
                let mut b = BytesMut::new();
                e.write(&mut b);
                match self.peer.propose(b.freeze()).await {
                    Ok(z) if z == zxid => {}
                    Ok(z) => tracing::error!("txn {zxid:#x} was proposed as {z:#x}"),
                    // Leadership is gone; the role change disconnects the clients.
                    Err(e) => tracing::warn!("cannot propose {zxid:#x}: {e:?}"),
                }
            }
            Output::Forward {
                session,
                cxid,
                request,
                auth,
            } => self
                .peer
                .forward(request_packet::write(session, cxid, &request, auth)),
            Output::ForwardCreateSession { session, timeout } => self
                .peer
                .forward(request_packet::create_session(session, timeout)),
            Output::Reply { conn, header, body } => {
                tracing::trace!("reply {conn} {header:?}");
                if header.xid != zk_proto::xid::NOTIFICATION {
                    if let Some(c) = self.conns.get_mut(&conn) {
                        if c.queued > 0 {
                            c.queued -= 1;
                            self.throttle.done(1);
                        }
                    }
                }
                let mut b = BytesMut::new();
                write_frame(&mut b, |w| {
                    header.write(w);
                    if header.err == ErrorCode::Ok || matches!(body, Response::Multi(_)) {
                        body.write(w);
                    }
                });
                self.send(conn, b);
            }
            Output::Connected { conn, resp } => {
                let mut b = BytesMut::new();
                write_frame(&mut b, |w| resp.write(w));
                self.send(conn, b);
            }
            Output::Event { conn, event } => {
                let mut b = BytesMut::new();
                write_frame(&mut b, |w| {
                    ReplyHeader {
                        xid: zk_proto::xid::NOTIFICATION,
                        zxid: -1,
                        err: ErrorCode::Ok,
                    }
                    .write(w);
                    event.write(w);
                });
                self.send(conn, b);
            }
            Output::Close { conn } => {
                tracing::debug!("processor closes {conn}");
                self.close(conn)
            }
        }
    }
}
