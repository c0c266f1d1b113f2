//! The embeddable server: [`Server::start`] gives a [`ServerHandle`] with the bound address
//! and [`ServerHandle::stop`].
//!
//! Tasks: the listener and one task per connection (see [`crate::host::client`]); one core task
//! owning the [`Processor`]; one store thread that appends each batch of proposed txns with
//! a single fsync (group commit: whatever is proposed while a batch is being written forms
//! the next batch) and writes snapshots.
//!
//! ```no_run
//! # async fn demo(dir: &std::path::Path) -> zk_server::Result<()> {
//! use zk_server::{Server, ServerConfig};
//! // Loopback, port 0, short tick, every four-letter word allowed.
//! let server = Server::start(ServerConfig::for_tests(dir)).await?;
//! let connect_string = server.connect_string(); // "127.0.0.1:PORT"
//! # let _ = connect_string;
//! server.stop().await?; // acknowledged writes are on disk
//! let again = Server::start(ServerConfig::for_tests(dir)).await?; // same data, same sessions
//! again.stop().await
//! # }
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use zk_proto::txn::TxnEntry;
use zk_proto::OpCode;

use crate::admin::four_letter;
use crate::config::ServerConfig;
use crate::core::processor::{CoreSettings, Output, Processor};
use crate::error::{Result, ServerError};
use crate::host::client::clients::{self, Clients};
use crate::host::client::connection::{ConnSettings, Throttle};
use crate::host::client::listener::ClientPorts;
use crate::host::client::ClientMsg;
use crate::state::database::{FuzzySnapshot, ZkDatabase};
use crate::storage::store::{MemoryStore, Recovered, TxnStore};
use crate::storage::{Autopurge, PurgeTimer};

/// Messages to the standalone server's core task: its clients' and its store's.
#[derive(Debug)]
pub(crate) enum CoreMsg {
    /// From a client connection.
    Client(ClientMsg),
    /// The store made a batch durable (or failed).
    Committed(Result<Vec<TxnEntry>>),
    /// Stop.
    Shutdown(oneshot::Sender<()>),
}

impl From<ClientMsg> for CoreMsg {
    fn from(m: ClientMsg) -> Self {
        CoreMsg::Client(m)
    }
}

enum StoreJob {
    Append(Vec<TxnEntry>),
    /// A fuzzy snapshot starts: its zxid and sessions; nodes and the ACL cache follow.
    SnapshotBegin(i64, Vec<(i64, i32)>),
    SnapshotNodes(bytes::Bytes),
    SnapshotEnd(Vec<(i64, Vec<zk_proto::Acl>)>),
    Purge,
    /// Finish background work, drop the store (closing its files), then answer.
    Stop(oneshot::Sender<()>),
}

/// Current wall clock in ms.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Opens the store a config asks for and recovers the database from it.
pub type StoreOpener =
    Box<dyn FnOnce(&ServerConfig) -> Result<(Box<dyn TxnStore>, Recovered)> + Send>;

/// Builds and starts servers.
pub struct Server;

/// A running server.
pub struct ServerHandle {
    addr: SocketAddr,
    secure_addr: Option<SocketAddr>,
    core_tx: UnboundedSender<CoreMsg>,
    core: Option<JoinHandle<()>>,
    listener: JoinHandle<()>,
    config: ServerConfig,
}

impl Server {
    /// Starts a server persisting to `config.data_dir` / `config.data_log_dir`.
    pub async fn start(config: ServerConfig) -> Result<ServerHandle> {
        if config.data_dir.as_os_str().is_empty() || config.data_log_dir.as_os_str().is_empty() {
            return Err(ServerError::Config {
                line: None,
                message: "dataDir is not set".into(),
            });
        }
        Self::start_with_store(config, Box::new(crate::storage::store::open_disk_store)).await
    }

    /// Starts a server over an in-memory store (durable only within this process: pass the
    /// same [`MemoryStore`] again to "restart").
    pub async fn start_in_memory(config: ServerConfig, store: MemoryStore) -> Result<ServerHandle> {
        Self::start_with_store(
            config,
            Box::new(move |_| {
                let rec = store.recover();
                Ok((Box::new(store) as Box<dyn TxnStore>, rec))
            }),
        )
        .await
    }

    /// Starts a server over the store `open` returns.
    pub async fn start_with_store(config: ServerConfig, open: StoreOpener) -> Result<ServerHandle> {
        // Bind first: a server that cannot take its port (or read its TLS stores) must
        // leave dataDir untouched.
        let plain = config.plain_client_port.then(|| config.client_addr());
        let ports = ClientPorts::bind(&config, plain, false).await?;
        let (store, recovered) = open(&config)?;
        let db = recovered.into_database();
        let secure_addr = ports.secure_addr();
        let addr = ports.plain_addr().or(secure_addr).ok_or_else(|| {
            ServerError::io(
                "reading the bound address",
                std::io::ErrorKind::Other.into(),
            )
        })?;
        let mut config = config;
        if let Some(a) = ports.plain_addr() {
            config.client_port = a.port();
        }
        if let Some(a) = secure_addr {
            config.secure_client_port = Some(a.port());
            tracing::info!("zk-server serving TLS clients on {a}");
        }
        let (core_tx, core_rx) = mpsc::unbounded_channel();
        let throttle = Arc::new(Throttle::default());
        let conn_settings = Arc::new(ConnSettings::from_config(&config));
        let listener = ports.spawn(core_tx.clone(), conn_settings, throttle.clone());
        let store_tx = spawn_store(store, core_tx.clone());
        let now = now_ms();
        let settings = CoreSettings::from_config(&config);
        let core = Core {
            processor: Processor::new(db, settings, now),
            clients: Clients::new(throttle),
            batch: Vec::new(),
            store_busy: false,
            store_tx,
            since_snapshot: 0,
            snapshot: None,
            config: config.clone(),
            started: now,
            purge_timer: PurgeTimer::new(),
            snapshots_done: 0,
        };
        let core = tokio::spawn(core.run(core_rx));
        tracing::info!("zk-server listening on {addr}");
        Ok(ServerHandle {
            addr,
            secure_addr,
            core_tx,
            core: Some(core),
            listener,
            config,
        })
    }
}

impl ServerHandle {
    /// The address clients connect to: the plain (or unified) port, else the TLS one.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The TLS-only client port (`secureClientPort`), if configured.
    pub fn secure_addr(&self) -> Option<SocketAddr> {
        self.secure_addr
    }

    /// `host:port` connect string.
    pub fn connect_string(&self) -> String {
        self.addr.to_string()
    }

    /// The effective configuration (with the real port).
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Stops accepting, closes every connection, waits for in-flight txns to be durable.
    pub async fn stop(mut self) -> Result<()> {
        self.listener.abort();
        let (tx, rx) = oneshot::channel();
        if self.core_tx.send(CoreMsg::Shutdown(tx)).is_ok() {
            let _ = rx.await;
        }
        if let Some(c) = self.core.take() {
            let _ = c.await;
        }
        Ok(())
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.listener.abort();
        if let Some(c) = self.core.take() {
            let (tx, _rx) = oneshot::channel();
            let _ = self.core_tx.send(CoreMsg::Shutdown(tx));
            drop(c);
        }
    }
}

fn spawn_store(
    mut store: Box<dyn TxnStore>,
    core: UnboundedSender<CoreMsg>,
) -> std::sync::mpsc::Sender<StoreJob> {
    let (tx, rx) = std::sync::mpsc::channel::<StoreJob>();
    std::thread::Builder::new()
        .name("zk-store".into())
        .spawn(move || {
            while let Ok(job) = rx.recv() {
                match job {
                    StoreJob::Append(entries) => {
                        let r = store.append(&entries).map(|_| entries);
                        if core.send(CoreMsg::Committed(r)).is_err() {
                            break;
                        }
                    }
                    StoreJob::SnapshotBegin(zxid, sessions) => {
                        if let Err(e) = store.begin_snapshot(zxid, sessions) {
                            tracing::error!("snapshot failed: {e}");
                        }
                    }
                    StoreJob::SnapshotNodes(records) => {
                        if let Err(e) = store.snapshot_nodes(records) {
                            tracing::error!("snapshot failed: {e}");
                        }
                    }
                    StoreJob::SnapshotEnd(acls) => {
                        if let Err(e) = store.end_snapshot(acls) {
                            tracing::error!("snapshot failed: {e}");
                        }
                    }
                    StoreJob::Purge => {
                        if let Err(e) = store.purge() {
                            tracing::warn!("purge failed: {e}");
                        }
                    }
                    StoreJob::Stop(done) => {
                        store.finish();
                        drop(store);
                        let _ = done.send(());
                        return;
                    }
                }
            }
            store.finish();
        })
        .ok();
    tx
}

struct Core {
    processor: Processor,
    clients: Clients,
    batch: Vec<TxnEntry>,
    store_busy: bool,
    store_tx: std::sync::mpsc::Sender<StoreJob>,
    since_snapshot: u64,
    /// The snapshot being written a slice at a time between requests.
    snapshot: Option<FuzzySnapshot>,
    config: ServerConfig,
    started: i64,
    /// When autopurge runs (at start, every purgeInterval, after each snapshot).
    purge_timer: PurgeTimer,
    /// Snapshots fully handed to the store so far (each makes a purge due).
    snapshots_done: u64,
}

impl Core {
    async fn run(mut self, mut rx: UnboundedReceiver<CoreMsg>) {
        let tick = Duration::from_millis(u64::from(self.config.tick_time / 4).clamp(5, 500));
        let mut ticker = tokio::time::interval(tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                msg = rx.recv() => {
                    let Some(msg) = msg else { break };
                    if let CoreMsg::Shutdown(done) = msg {
                        self.shutdown(&mut rx).await;
                        let _ = done.send(());
                        break;
                    }
                    self.handle(msg);
                    // Take everything already queued before flushing, so txns that arrived
                    // together share one fsync.
                    while let Ok(msg) = rx.try_recv() {
                        if let CoreMsg::Shutdown(done) = msg {
                            self.shutdown(&mut rx).await;
                            let _ = done.send(());
                            return;
                        }
                        self.handle(msg);
                    }
                    self.flush_batch();
                    self.snapshot_step();
                }
                // An idle server still finishes its snapshot.
                _ = tokio::task::yield_now(), if self.snapshot.is_some() => {
                    self.snapshot_step();
                }
                _ = ticker.tick() => {
                    let now = now_ms();
                    let out = self.processor.tick(now);
                    self.outputs(out);
                    self.autopurge(now);
                    self.flush_batch();
                }
            }
        }
    }

    async fn shutdown(&mut self, rx: &mut UnboundedReceiver<CoreMsg>) {
        self.clients.close_all();
        // Let the batch being written finish so acknowledged writes stay durable.
        while self.store_busy {
            match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
                Ok(Some(CoreMsg::Committed(r))) => {
                    self.store_busy = false;
                    if let Ok(entries) = r {
                        self.processor.committed(&entries, now_ms());
                    }
                }
                Ok(Some(_)) => {}
                _ => break,
            }
        }
        for c in self.clients.ids() {
            self.clients.disconnected(c);
        }
        // Close the log and wait for snapshot writes, so a restart on the same data dir
        // (even in this process) finds complete files.
        let (tx, rx) = oneshot::channel();
        if self.store_tx.send(StoreJob::Stop(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// Queues a purge when one is due (at start, every purgeInterval, after each
    /// snapshot).
    fn autopurge(&mut self, now: i64) {
        let purge = Autopurge::from_config(&self.config);
        if self
            .purge_timer
            .due(now, purge.interval, self.snapshots_done)
        {
            let _ = self.store_tx.send(StoreJob::Purge);
        }
    }

    /// Writes the next slice of the snapshot in progress; small enough not to hold up
    /// requests noticeably, so snapshots never stall the server.
    fn snapshot_step(&mut self) {
        const SLICE_BYTES: usize = 256 * 1024;
        let Some(snap) = &mut self.snapshot else {
            return;
        };
        let mut buf = bytes::BytesMut::with_capacity(SLICE_BYTES + 4096);
        let done = snap
            .walk
            .step(&self.processor.db().tree, &mut buf, SLICE_BYTES);
        if !buf.is_empty() {
            let _ = self.store_tx.send(StoreJob::SnapshotNodes(buf.freeze()));
        }
        if done {
            let acls = snap.walk.acl_table();
            self.snapshot = None;
            let _ = self.store_tx.send(StoreJob::SnapshotEnd(acls));
            self.snapshots_done += 1;
            // Queued right behind the snapshot's end on the store thread.
            self.autopurge(now_ms());
        }
    }

    fn flush_batch(&mut self) {
        if !self.store_busy && !self.batch.is_empty() {
            let batch = std::mem::take(&mut self.batch);
            self.store_busy = true;
            if self.store_tx.send(StoreJob::Append(batch)).is_err() {
                tracing::error!("store thread is gone");
            }
        }
    }

    fn handle(&mut self, msg: CoreMsg) {
        match msg {
            CoreMsg::Client(m) => self.client_msg(m),
            CoreMsg::Committed(r) => self.committed(r),
            CoreMsg::Shutdown(_) => {}
        }
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
                let ip = self.clients.ip(conn);
                let out = self.processor.connect(conn, &ip, &req, now);
                self.outputs(out);
            }
            ClientMsg::Request { conn, xid, req } => {
                self.clients.request_received(conn, xid, req.opcode());
                let out = self.processor.request(conn, xid, req, now);
                self.outputs(out);
            }
            ClientMsg::Unknown {
                conn,
                xid,
                marshalling,
            } => {
                self.clients.request_received(conn, xid, OpCode::Error);
                let out = self.processor.unknown_request(conn, xid, marshalling);
                self.outputs(out);
            }
            ClientMsg::Disconnected { conn } => {
                self.clients.disconnected(conn);
                self.processor.disconnected(conn);
            }
            ClientMsg::FourLetter { cmd, peer, reply } => {
                let text = self.four_letter(&cmd, peer);
                let _ = reply.send(text);
                // ... and its answer as a sent one (seen by the next command).
                self.clients.stats.packets_sent += 1;
            }
        }
    }

    /// The store made a batch durable (or failed to).
    fn committed(&mut self, r: Result<Vec<TxnEntry>>) {
        let now = now_ms();
        self.store_busy = false;
        match r {
            Ok(entries) => {
                self.since_snapshot += entries.len() as u64;
                let out = self.processor.committed(&entries, now);
                self.outputs(out);
                if self.since_snapshot >= self.config.snap_count.max(1) && self.snapshot.is_none() {
                    self.since_snapshot = 0;
                    let snap = self.processor.db().begin_snapshot();
                    let _ = self.store_tx.send(StoreJob::SnapshotBegin(
                        snap.last_zxid,
                        snap.sessions.clone(),
                    ));
                    self.snapshot = Some(snap);
                }
            }
            Err(e) => {
                // Apache halts when it cannot log: never acknowledge an unlogged write.
                tracing::error!("txn log write failed, closing all connections: {e}");
                self.clients.close_all();
            }
        }
    }

    fn four_letter(&mut self, cmd: &str, peer: SocketAddr) -> String {
        let now = now_ms();
        self.clients.four_letter(cmd);
        let asking = clients::asking(peer, now);
        let view = four_letter::View::of(
            &self.processor,
            &self.config,
            &self.clients,
            &asking,
            self.started,
            now,
        );
        four_letter::render(cmd, &view)
    }

    fn outputs(&mut self, out: Vec<Output>) {
        for o in out {
            match o {
                Output::Propose(e) => self.batch.push(e),
                // Only ensemble followers forward; a standalone core never does.
                Output::Forward { .. } | Output::ForwardCreateSession { .. } => {
                    tracing::error!("standalone server asked to forward a write");
                }
                Output::Reply { conn, header, body } => self.clients.reply(conn, header, &body),
                Output::Connected { conn, resp } => self.clients.connected(conn, &resp),
                Output::Event { conn, event } => self.clients.event(conn, &event),
                Output::Close { conn } => self.clients.close(conn),
            }
        }
    }
}

/// Opens a fresh in-memory database (used when nothing was persisted).
pub fn empty_database() -> ZkDatabase {
    ZkDatabase::new()
}
