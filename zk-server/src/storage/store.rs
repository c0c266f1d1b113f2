//! Where committed txns go before they are applied.

use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use zk_proto::txn::TxnEntry;
use zk_proto::Acl;

use crate::error::{Result, ServerError};
use crate::state::database::{decode_node_records, DatabaseImage, ZkDatabase};
use crate::storage::database_builder::DatabaseBuilder;
use crate::storage::{SnapshotData, SnapshotStream, Storage, StorageOptions};

/// Durable storage of txns and snapshots, as the commit path needs it.
///
/// `append` must not return before every entry is durable; the driver hands it all txns
/// ready together, so one call is one fsync (group commit).
pub trait TxnStore: Send + 'static {
    /// Writes entries and makes them durable.
    fn append(&mut self, entries: &[TxnEntry]) -> Result<()>;
    /// Writes a snapshot of the state after `image.last_zxid`.
    fn save_snapshot(&mut self, image: &DatabaseImage) -> Result<()>;
    /// Starts a streamed (fuzzy) snapshot named `last_zxid` (see
    /// [`ZkDatabase::begin_snapshot`]): node records follow in [`TxnStore::snapshot_nodes`]
    /// slices, and [`TxnStore::end_snapshot`] completes it. Calls are in order with
    /// `append`, so txns appended after this one belong after the snapshot.
    fn begin_snapshot(&mut self, last_zxid: i64, sessions: Vec<(i64, i32)>) -> Result<()>;
    /// Node records of the snapshot begun last, parents before children.
    fn snapshot_nodes(&mut self, records: Bytes) -> Result<()>;
    /// Completes the snapshot begun last with the ACL cache its nodes refer to.
    fn end_snapshot(&mut self, acls: Vec<(i64, Vec<Acl>)>) -> Result<()>;
    /// Deletes snapshots and logs beyond the retention count.
    fn purge(&mut self) -> Result<()>;
    /// Waits for background work (snapshot writes) before the server stops.
    fn finish(&mut self) {}
}

/// What a store held at open: the database of its newest snapshot and the txns logged
/// after it.
#[derive(Debug, Default, Clone)]
pub struct Recovered {
    /// The state the newest valid snapshot holds (the fresh database without one).
    pub database: ZkDatabase,
    /// Txns after it, in order.
    pub txns: Vec<TxnEntry>,
}

impl Recovered {
    /// What a store holding `snapshot` (if any) and `txns` recovers.
    pub fn from_image(snapshot: Option<&DatabaseImage>, txns: Vec<TxnEntry>) -> Self {
        Recovered {
            database: snapshot.map_or_else(ZkDatabase::new, ZkDatabase::from_image),
            txns,
        }
    }

    /// The database: the snapshot's, with the txns after it applied.
    pub fn into_database(self) -> ZkDatabase {
        let mut db = self.database;
        // Each txn is dropped once applied, so the memory of the txns still to replay
        // goes to the nodes they create instead of adding to the peak.
        for t in self.txns {
            if t.header.zxid > db.last_zxid() {
                db.apply(&t);
            }
        }
        db
    }
}

/// The contents of a [`MemoryStore`], shareable so a test can "restart" over it.
#[derive(Debug, Default)]
pub struct MemoryState {
    /// Snapshot.
    pub snapshot: Option<DatabaseImage>,
    /// Txns after it.
    pub txns: Vec<TxnEntry>,
    /// Number of `append` calls (one per group commit).
    pub appends: u64,
}

/// A store in memory: durable for the life of the process only.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    state: Arc<Mutex<MemoryState>>,
    append_delay: std::time::Duration,
    /// The streamed snapshot being received.
    streaming: Option<StreamedImage>,
}

/// A streamed snapshot as a [`MemoryStore`] receives it.
#[derive(Debug, Clone)]
struct StreamedImage {
    last_zxid: i64,
    sessions: Vec<(i64, i32)>,
    records: BytesMut,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store whose appends take `delay`, standing in for an fsync (tests of group
    /// commit need a commit path slower than the requests arriving).
    pub fn with_append_delay(delay: std::time::Duration) -> Self {
        MemoryStore {
            append_delay: delay,
            ..Self::default()
        }
    }

    /// The shared state.
    pub fn state(&self) -> Arc<Mutex<MemoryState>> {
        self.state.clone()
    }

    /// What a server opening this store would recover.
    pub fn recover(&self) -> Recovered {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        Recovered::from_image(s.snapshot.as_ref(), s.txns.clone())
    }
}

impl TxnStore for MemoryStore {
    fn append(&mut self, entries: &[TxnEntry]) -> Result<()> {
        if !self.append_delay.is_zero() {
            std::thread::sleep(self.append_delay);
        }
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.txns.extend_from_slice(entries);
        s.appends += 1;
        Ok(())
    }

    fn save_snapshot(&mut self, image: &DatabaseImage) -> Result<()> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.txns.retain(|t| t.header.zxid > image.last_zxid);
        s.snapshot = Some(image.clone());
        Ok(())
    }

    fn begin_snapshot(&mut self, last_zxid: i64, sessions: Vec<(i64, i32)>) -> Result<()> {
        self.streaming = Some(StreamedImage {
            last_zxid,
            sessions,
            records: BytesMut::new(),
        });
        Ok(())
    }

    fn snapshot_nodes(&mut self, records: Bytes) -> Result<()> {
        if let Some(s) = &mut self.streaming {
            s.records.extend_from_slice(&records);
        }
        Ok(())
    }

    fn end_snapshot(&mut self, acls: Vec<(i64, Vec<Acl>)>) -> Result<()> {
        let Some(StreamedImage {
            last_zxid,
            sessions,
            records,
        }) = self.streaming.take()
        else {
            return Ok(());
        };
        let nodes = decode_node_records(records.freeze())
            .map_err(|e| ServerError::Storage(format!("streamed snapshot: {e}")))?;
        self.save_snapshot(&DatabaseImage {
            last_zxid,
            sessions,
            acls,
            nodes,
        })
    }

    fn purge(&mut self) -> Result<()> {
        Ok(())
    }
}

/// Total size of the files in a directory tree (`dirs`, `conf`).
pub fn dir_size(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

/// Converts a database image into the persistence layer's snapshot shape.
pub fn to_snapshot(img: &DatabaseImage) -> SnapshotData {
    SnapshotData {
        last_zxid: img.last_zxid,
        sessions: img.sessions.clone(),
        acls: img.acls.clone(),
        nodes: img.nodes.clone(),
    }
}

/// Converts a snapshot read from disk into a database image.
pub fn from_snapshot(snap: SnapshotData) -> DatabaseImage {
    DatabaseImage {
        last_zxid: snap.last_zxid,
        sessions: snap.sessions,
        acls: snap.acls,
        nodes: snap.nodes,
    }
}

/// The on-disk store: [`Storage`] plus the snapshot threads it started.
#[derive(Debug)]
pub struct DiskStore {
    storage: Storage,
    snapshots: Vec<std::thread::JoinHandle<()>>,
    /// The streamed snapshot being written on its own thread.
    streaming: Option<StreamingSnapshot>,
    /// A purge asked for while a snapshot file was unfinished: it runs once the file is
    /// complete, so the retained count includes it (never `snapRetainCount + 1` files).
    purge_deferred: bool,
}

#[derive(Debug)]
struct StreamingSnapshot {
    sessions: Vec<(i64, i32)>,
    tx: std::sync::mpsc::Sender<SnapshotPart>,
}

enum SnapshotPart {
    Nodes(Bytes),
    End(Vec<(i64, i32)>, Vec<(i64, Vec<Acl>)>),
}

impl DiskStore {
    /// Wraps opened storage.
    pub fn new(storage: Storage) -> Self {
        DiskStore {
            storage,
            snapshots: Vec::new(),
            streaming: None,
            purge_deferred: false,
        }
    }

    fn snapshot_in_progress(&mut self) -> bool {
        self.snapshots.retain(|h| !h.is_finished());
        self.streaming.is_some() || !self.snapshots.is_empty()
    }

    fn purge_now(&mut self) -> Result<()> {
        self.purge_deferred = false;
        let removed = self.storage.purge()?;
        if !removed.is_empty() {
            tracing::info!("autopurge removed {} files", removed.len());
        }
        Ok(())
    }
}

impl TxnStore for DiskStore {
    fn append(&mut self, entries: &[TxnEntry]) -> Result<()> {
        self.storage.append(entries)?;
        if self.purge_deferred && !self.snapshot_in_progress() {
            if let Err(e) = self.purge_now() {
                tracing::warn!("purge failed: {e}");
            }
        }
        Ok(())
    }

    fn save_snapshot(&mut self, image: &DatabaseImage) -> Result<()> {
        // Roll the log at the snapshot's zxid here, in order with the appends; write the
        // file on its own thread so appends (and their fsyncs) are not held up.
        self.storage.roll_log();
        let writer = self.storage.snapshot_writer();
        let snap = to_snapshot(image);
        self.snapshots.retain(|h| !h.is_finished());
        let h = std::thread::Builder::new()
            .name("zk-snapshot".into())
            .spawn(move || {
                if let Err(e) = writer.write(&snap) {
                    tracing::error!("snapshot failed: {e}");
                }
            })
            .map_err(|e| crate::error::ServerError::io("spawning the snapshot thread", e))?;
        self.snapshots.push(h);
        Ok(())
    }

    fn begin_snapshot(&mut self, last_zxid: i64, sessions: Vec<(i64, i32)>) -> Result<()> {
        // As for save_snapshot: the log rolls here, in order with the appends; the file is
        // written on its own thread from the records sent to it.
        self.streaming = None;
        self.storage.roll_log();
        let mut stream: SnapshotStream = self.storage.snapshot_writer().stream(last_zxid)?;
        let (tx, rx) = std::sync::mpsc::channel::<SnapshotPart>();
        self.snapshots.retain(|h| !h.is_finished());
        let h = std::thread::Builder::new()
            .name("zk-snapshot".into())
            .spawn(move || {
                while let Ok(part) = rx.recv() {
                    match part {
                        SnapshotPart::Nodes(b) => {
                            if let Err(e) = stream.nodes(&b) {
                                tracing::error!("snapshot failed: {e}");
                                return;
                            }
                        }
                        SnapshotPart::End(sessions, acls) => {
                            if let Err(e) = stream.finish(&sessions, &acls) {
                                tracing::error!("snapshot failed: {e}");
                            }
                            return;
                        }
                    }
                }
                // Abandoned (the server stopped first): dropping the stream leaves no file.
            })
            .map_err(|e| ServerError::io("spawning the snapshot thread", e))?;
        self.snapshots.push(h);
        self.streaming = Some(StreamingSnapshot { sessions, tx });
        Ok(())
    }

    fn snapshot_nodes(&mut self, records: Bytes) -> Result<()> {
        if let Some(s) = &self.streaming {
            let _ = s.tx.send(SnapshotPart::Nodes(records));
        }
        Ok(())
    }

    fn end_snapshot(&mut self, acls: Vec<(i64, Vec<Acl>)>) -> Result<()> {
        if let Some(s) = self.streaming.take() {
            let _ = s.tx.send(SnapshotPart::End(s.sessions, acls));
        }
        Ok(())
    }

    fn purge(&mut self) -> Result<()> {
        if self.snapshot_in_progress() {
            // Runs after the next append that finds the file complete, or at stop.
            self.purge_deferred = true;
            return Ok(());
        }
        self.purge_now()
    }

    fn finish(&mut self) {
        // A snapshot still streaming is abandoned, not completed from partial records.
        self.streaming = None;
        for h in self.snapshots.drain(..) {
            let _ = h.join();
        }
        if self.purge_deferred {
            if let Err(e) = self.purge_now() {
                tracing::warn!("purge failed: {e}");
            }
        }
    }
}

/// Opens the on-disk store (Apache's format, see [`crate::storage`]) under the config's
/// data dirs and recovers from it; the snapshot is loaded into the tree as it is read and
/// the logged txns are applied as they are read, so a restart peaks near the final tree.
pub fn open_disk_store(
    cfg: &crate::config::ServerConfig,
) -> Result<(Box<dyn TxnStore>, Recovered)> {
    let (storage, restored) = Storage::open_replaying(
        &cfg.data_dir,
        &cfg.data_log_dir,
        StorageOptions {
            prealloc_size: cfg.prealloc_size,
            snap_retain_count: cfg.snap_retain_count,
        },
        DatabaseBuilder::new,
        |db: &mut ZkDatabase, t| {
            if t.header.zxid > db.last_zxid() {
                db.apply(&t);
            }
        },
    )?;
    let rec = Recovered {
        database: restored.snapshot.unwrap_or_default(),
        txns: restored.txns,
    };
    Ok((Box::new(DiskStore::new(storage)), rec))
}
