//! [`ServerReplica`]: the server core seen from the quorum driver. Committed txns go
//! through the [`Processor`] (so client replies and watches fire), role changes switch it
//! between leading and forwarding, and learners' forwarded writes go to the node task.
//!
//! The txn log and epochs live in memory ([`NodeDisk`]), written through to a data
//! directory (Apache's txn log and epoch files) when the member has one; a restarted
//! member reads them back and replays the log. Snapshots sent to learners are the list of
//! applied txns (this in-process ensemble only talks to itself).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc::UnboundedSender;
use zk_proto::quorum::QuorumPacket;
use zk_proto::txn::TxnEntry;

use crate::database::ZkDatabase;
use crate::error::Result;
use crate::persistence::{read_epoch_file, write_epoch_file, EpochFile, Storage, StorageOptions};
use crate::pipeline::{CoreSettings, Output, Processor, WriteMode};
use crate::quorum::net::driver::{PeerStatus, Replica};
use crate::quorum::net::txn_list_snapshot;
use crate::quorum::zab::{DiskState, Proposal};
use crate::quorum::{PeerState, Zxid};
use crate::server::now_ms;
use crate::session::owner::LearnerConn;
use crate::session::SessionOwners;

/// What a member keeps across a kill: epochs and the txn log (in memory, and written
/// through to a data directory when it has one).
#[derive(Debug, Default)]
pub struct DiskData {
    accepted: i64,
    current: i64,
    log: Vec<Proposal>,
    dir: Option<PathBuf>,
    /// Where the txn log goes when not in `dir` (zoo.cfg's dataLogDir).
    log_dir: Option<PathBuf>,
    store: Option<Storage>,
    /// Log appends so far (each one write + sync of a whole batch).
    syncs: u64,
    /// Bumped by every restart: an earlier run's disk thread (still finishing after a
    /// kill) must not append to the recovered log.
    incarnation: u64,
}

impl DiskData {
    /// Runs a disk operation; a failure is logged (the member keeps its memory copy).
    fn on_disk(&mut self, what: &str, f: impl FnOnce(&mut Storage, &Path) -> Result<()>) {
        if let (Some(store), Some(dir)) = (self.store.as_mut(), self.dir.as_deref()) {
            if let Err(e) = f(store, dir) {
                tracing::error!("{what} failed: {e}");
            }
        }
    }
}

/// A member's durable state, shared with the ensemble so a restart finds it.
#[derive(Debug, Clone, Default)]
pub struct NodeDisk(Arc<Mutex<DiskData>>);

impl NodeDisk {
    fn lock(&self) -> MutexGuard<'_, DiskData> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A disk in `dir` (Apache layout: `version-2/log.*`, `snapshot.0`, epoch files),
    /// recovered from what is there.
    pub fn open(dir: &Path) -> Result<NodeDisk> {
        let d = NodeDisk::default();
        d.lock().dir = Some(dir.to_path_buf());
        d.recover()?;
        Ok(d)
    }

    /// Like [`NodeDisk::open`], with the txn log in `log_dir` (zoo.cfg's `dataLogDir`)
    /// and the epoch files in `data_dir`.
    pub fn open_split(data_dir: &Path, log_dir: &Path) -> Result<NodeDisk> {
        let d = NodeDisk::default();
        {
            let mut g = d.lock();
            g.dir = Some(data_dir.to_path_buf());
            g.log_dir = Some(log_dir.to_path_buf());
        }
        d.recover()?;
        Ok(d)
    }

    /// What a restart does: with a data directory, forget the memory copy and read the
    /// epochs and txn log back from disk.
    pub fn recover(&self) -> Result<()> {
        let mut d = self.lock();
        d.incarnation += 1;
        let Some(dir) = d.dir.clone() else {
            return Ok(());
        };
        d.store = None;
        let opts = StorageOptions {
            prealloc_size: 0,
            ..StorageOptions::default()
        };
        let log_dir = d.log_dir.clone().unwrap_or_else(|| dir.clone());
        let (store, restored) = Storage::open(&dir, &log_dir, opts)?;
        d.accepted = read_epoch_file(&dir, EpochFile::Accepted)?.unwrap_or(0);
        d.current = read_epoch_file(&dir, EpochFile::Current)?.unwrap_or(0);
        d.log = restored
            .txns
            .iter()
            .map(|e| {
                let mut b = BytesMut::new();
                e.write(&mut b);
                Proposal {
                    zxid: e.header.zxid,
                    data: b.freeze(),
                }
            })
            .collect();
        d.store = Some(store);
        Ok(())
    }

    /// What a restart finds on disk.
    pub fn disk_state(&self) -> DiskState {
        let d = self.lock();
        DiskState {
            accepted_epoch: d.accepted,
            current_epoch: d.current,
            last_zxid: d.log.last().map(|p| p.zxid).unwrap_or(0),
            recent: d.log.clone(),
        }
    }

    /// The logged txns.
    pub fn log(&self) -> Vec<Proposal> {
        self.lock().log.clone()
    }

    /// The data directory and the txn log directory, when on disk (`conf`, `dirs`).
    pub fn dirs(&self) -> Option<(PathBuf, PathBuf)> {
        let d = self.lock();
        let dir = d.dir.clone()?;
        let log = d.log_dir.clone().unwrap_or_else(|| dir.clone());
        Some((dir, log))
    }

    /// Txn log appends so far: each is one write and one sync of everything appended
    /// together (group commit), so under load this is far below the txns logged.
    pub fn syncs(&self) -> u64 {
        self.lock().syncs
    }

    /// Appends txns with one write and one sync, unless `incarnation` is stale.
    fn append(&self, incarnation: Option<u64>, txns: &[Proposal]) {
        let entries = decode_all(txns);
        let mut d = self.lock();
        if incarnation.is_some_and(|i| i != d.incarnation) {
            return;
        }
        d.log.extend_from_slice(txns);
        d.syncs += 1;
        d.on_disk("txn log append", |s, _| s.append(&entries));
    }
}

/// The disk thread's side of a member's disk.
struct MemberAppender {
    disk: NodeDisk,
    incarnation: u64,
}

impl crate::quorum::net::driver::LogAppender for MemberAppender {
    fn append(&mut self, txns: &[Proposal]) {
        self.disk.append(Some(self.incarnation), txns);
    }
}

fn decode_all(txns: &[Proposal]) -> Vec<TxnEntry> {
    txns.iter()
        .filter_map(|p| TxnEntry::decode(p.data.clone()).ok())
        .collect()
}

/// Messages from the peer side (and from processor calls) to the node task, in the order
/// the processor produced them.
#[derive(Debug)]
pub enum NodeMsg {
    /// Outputs of the processor.
    Outputs(Vec<Output>),
    /// A learner (its connection to us) forwarded a write (we lead).
    Forwarded(LearnerConn, QuorumPacket),
    /// The leader answered our REVALIDATE of a session a client moved here with.
    Revalidated {
        /// The session.
        session: i64,
        /// Whether it is still alive.
        valid: bool,
    },
    /// The peer changed role.
    Role(PeerStatus),
    /// The leader answered our oldest forwarded sync.
    SyncDone,
}

/// The processor plus the channel its outputs go to; always used under one lock so the
/// node task sees outputs in processor order.
pub struct Core {
    /// The server core.
    pub processor: Processor,
    /// Leader: which member each session's client is on.
    pub owners: SessionOwners,
    /// The peer's latest role, as the replica saw it change.
    pub role: PeerStatus,
    /// Since when the peer has been LOOKING (ms; read-only mode starts after a grace).
    pub looking_since: i64,
    /// Serving read-only clients while cut off from a quorum.
    pub read_only: bool,
    settings: CoreSettings,
    out: UnboundedSender<NodeMsg>,
}

impl Core {
    /// Wraps a processor.
    pub fn new(
        processor: Processor,
        settings: CoreSettings,
        out: UnboundedSender<NodeMsg>,
    ) -> Self {
        Core {
            processor,
            owners: SessionOwners::default(),
            role: PeerStatus {
                state: PeerState::Looking,
                leader: None,
                serving: false,
            },
            looking_since: now_ms(),
            read_only: false,
            settings,
            out,
        }
    }

    /// Starts serving read-only clients (the peer is still LOOKING: checked by the caller
    /// under this same lock, so a role change cannot slip in between).
    pub fn enter_read_only(&mut self) {
        self.reset();
        self.processor.set_write_mode(WriteMode::ReadOnly);
        self.read_only = true;
    }

    /// Sends processor outputs to the node task.
    pub fn emit(&self, out: Vec<Output>) {
        if !out.is_empty() {
            let _ = self.out.send(NodeMsg::Outputs(out));
        }
    }

    fn send(&self, m: NodeMsg) {
        let _ = self.out.send(m);
    }

    /// Rebuilds the processor over its own database, dropping connections, queues,
    /// waiters and prepared-but-uncommitted changes: when a member stops serving its
    /// clients are disconnected, and what it proposed as leader may never commit.
    fn reset(&mut self) {
        let db = std::mem::take(&mut self.processor.db);
        let mut p = Processor::new(db, self.settings.clone(), now_ms());
        p.set_write_mode(WriteMode::Forward);
        self.processor = p;
    }

    /// Rebuilds the processor over a database replayed from `txns` (after TRUNC / SNAP;
    /// clients are disconnected then, as the member is not serving).
    fn reload(&mut self, txns: &[Proposal]) {
        let db = replay(txns);
        let mut p = Processor::new(db, self.settings.clone(), now_ms());
        p.set_write_mode(WriteMode::Forward);
        self.processor = p;
    }
}

/// The shared core.
pub type SharedCore = Arc<Mutex<Core>>;

/// Locks the shared core (a poisoned lock is still usable: the state is consistent
/// between calls).
pub fn lock(c: &SharedCore) -> MutexGuard<'_, Core> {
    c.lock().unwrap_or_else(|p| p.into_inner())
}

/// A database built by applying `txns` in order (undecodable ones are skipped and logged).
pub fn replay(txns: &[Proposal]) -> ZkDatabase {
    let mut db = ZkDatabase::new();
    for p in txns {
        match TxnEntry::decode(p.data.clone()) {
            Ok(e) => {
                let _ = db.apply(&e);
            }
            Err(e) => tracing::error!("undecodable txn {:#x}: {e}", p.zxid),
        }
    }
    db
}

/// The server core as the quorum driver's [`Replica`].
pub struct ServerReplica {
    disk: NodeDisk,
    core: SharedCore,
    applied: Vec<Proposal>,
}

impl ServerReplica {
    /// A replica over a member's disk and core; `applied` are the txns the core's
    /// database was built from.
    pub fn new(disk: NodeDisk, core: SharedCore, applied: Vec<Proposal>) -> Self {
        ServerReplica {
            disk,
            core,
            applied,
        }
    }
}

impl Replica for ServerReplica {
    fn persist(&mut self, p: &Proposal) {
        self.disk.append(None, std::slice::from_ref(p));
    }

    fn persist_batch(&mut self, ps: &[Proposal]) {
        self.disk.append(None, ps);
    }

    fn log_appender(&mut self) -> Option<Box<dyn crate::quorum::net::driver::LogAppender>> {
        let incarnation = self.disk.lock().incarnation;
        Some(Box::new(MemberAppender {
            disk: self.disk.clone(),
            incarnation,
        }))
    }

    fn apply(&mut self, p: &Proposal) {
        match TxnEntry::decode(p.data.clone()) {
            Ok(e) => {
                let mut c = lock(&self.core);
                let out = c.processor.committed(std::slice::from_ref(&e), now_ms());
                c.emit(out);
            }
            Err(e) => tracing::error!("undecodable committed txn {:#x}: {e}", p.zxid),
        }
        self.applied.push(p.clone());
    }

    fn snapshot(&self) -> Bytes {
        txn_list_snapshot::encode(&self.applied)
    }

    fn install_snapshot(&mut self, _zxid: Zxid, data: Bytes) {
        let txns = txn_list_snapshot::decode(data);
        {
            let mut d = self.disk.lock();
            d.log = txns.clone();
            let entries = decode_all(&txns);
            d.on_disk("replacing the txn log", |s, _| {
                s.truncate_after(0)?;
                s.append(&entries)
            });
        }
        lock(&self.core).reload(&txns);
        self.applied = txns;
    }

    fn truncate(&mut self, zxid: Zxid) {
        let log = {
            let mut d = self.disk.lock();
            d.log.retain(|p| p.zxid <= zxid);
            d.on_disk("txn log truncation", |s, _| s.truncate_after(zxid));
            d.log.clone()
        };
        lock(&self.core).reload(&log);
        self.applied = log;
    }

    fn read_log(&self, from: Zxid, to: Zxid) -> Option<Vec<Proposal>> {
        let d = self.disk.lock();
        let txns: Vec<Proposal> = d
            .log
            .iter()
            .filter(|p| p.zxid >= from && p.zxid <= to)
            .cloned()
            .collect();
        (txns.first().map(|p| p.zxid) == Some(from)).then_some(txns)
    }

    fn save_accepted_epoch(&mut self, e: i64) {
        let mut d = self.disk.lock();
        d.accepted = e;
        d.on_disk("writing acceptedEpoch", |_, dir| {
            write_epoch_file(dir, EpochFile::Accepted, e)
        });
    }

    fn save_current_epoch(&mut self, e: i64) {
        let mut d = self.disk.lock();
        d.current = e;
        d.on_disk("writing currentEpoch", |_, dir| {
            write_epoch_file(dir, EpochFile::Current, e)
        });
    }

    fn role_changed(&mut self, status: PeerStatus, next_zxid: Option<Zxid>) {
        let mut c = lock(&self.core);
        if c.read_only {
            // Any role change ends read-only mode (Apache shuts its read-only server down
            // when the election ends): local sessions go, their clients reconnect.
            c.read_only = false;
            c.reset();
        }
        if status.state == PeerState::Looking && c.role.state != PeerState::Looking {
            c.looking_since = now_ms();
        }
        c.role = status;
        match next_zxid {
            Some(z) if status.serving && status.state == PeerState::Leading => {
                let now = now_ms();
                // A new leadership knows no session owners yet: the first member to use
                // a session claims it (as Apache's session tracker).
                c.owners.clear();
                let p = &mut c.processor;
                p.set_write_mode(WriteMode::Local);
                p.set_next_zxid(z);
                // Sessions get a fresh timeout under a new leader (as in Apache), so
                // clients of the old leader have time to move over.
                let sessions: Vec<(i64, i32)> =
                    p.db.sessions().iter().map(|(s, t)| (*s, *t)).collect();
                for (s, t) in sessions {
                    if !p.touch_session(s, now) {
                        p.sessions.add(s, t, now);
                    }
                }
            }
            _ if !status.serving => c.reset(),
            _ => c.processor.set_write_mode(WriteMode::Forward),
        }
        c.send(NodeMsg::Role(status));
    }

    fn learner_request(&mut self, learner: LearnerConn, packet: &QuorumPacket) {
        lock(&self.core).send(NodeMsg::Forwarded(learner, packet.clone()));
    }

    fn revalidate(&mut self, learner: LearnerConn, session_id: i64, timeout: i32) -> bool {
        let mut c = lock(&self.core);
        let valid = touch(&mut c.processor, session_id, timeout, now_ms());
        if valid {
            c.owners
                .set(session_id, crate::session::Owner::Learner(learner));
        }
        valid
    }

    fn revalidated(&mut self, session_id: i64, valid: bool) {
        lock(&self.core).send(NodeMsg::Revalidated {
            session: session_id,
            valid,
        });
    }

    fn sessions_touched(&mut self, sessions: &[(i64, i32)]) {
        let now = now_ms();
        let mut c = lock(&self.core);
        for (s, t) in sessions {
            touch(&mut c.processor, *s, *t, now);
        }
    }

    fn sync_done(&mut self) {
        lock(&self.core).send(NodeMsg::SyncDone);
    }
}

/// Leader: a learner's session activity. The timeout its connection negotiated (learners
/// send it clamped) becomes the session's, as Apache's `touchSession(id, timeout)`; a
/// packet without one keeps the old timeout.
fn touch(p: &mut crate::pipeline::Processor, session: i64, timeout: i32, now: i64) -> bool {
    if timeout > 0 {
        p.touch_session_with(session, timeout, now)
    } else {
        p.touch_session(session, now)
    }
}
