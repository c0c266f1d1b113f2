//! The replicated state: data tree, session table and the last applied zxid.
//!
//! Changed only by [`ZkDatabase::apply`] (see [`crate::apply`]), so a standalone server, a
//! follower applying the leader's commits and a restart replaying the txn log all reach the
//! same state from the same txns.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use zk_proto::persistence::DataNodeRecord;
use zk_proto::{Acl, JuteReader, Record, StatPersisted};

use crate::tree::{DataTree, SnapshotWalk};

/// Data tree plus sessions.
#[derive(Debug, Clone, Default)]
pub struct ZkDatabase {
    /// The znodes.
    pub tree: DataTree,
    pub(crate) sessions: BTreeMap<i64, i32>,
    pub(crate) last_zxid: i64,
}

/// A point-in-time copy of the database in the shape snapshots store: sessions, an ACL
/// cache and nodes referring to it by index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DatabaseImage {
    /// Last zxid applied.
    pub last_zxid: i64,
    /// `(session id, timeout)`.
    pub sessions: Vec<(i64, i32)>,
    /// ACL cache: index -> list.
    pub acls: Vec<(i64, Vec<Acl>)>,
    /// `(path, node)`; Apache writes the root as `""`.
    pub nodes: Vec<(String, DataNodeRecord)>,
}

/// A snapshot being taken: what was captured at its start plus the walk writing the nodes.
#[derive(Debug)]
pub struct FuzzySnapshot {
    /// Zxid of the last txn applied when the snapshot started; names the file.
    pub last_zxid: i64,
    /// Sessions at the start, `(id, timeout)`.
    pub sessions: Vec<(i64, i32)>,
    /// The node walk.
    pub walk: SnapshotWalk,
}

/// Decodes a run of snapshot node records (`ustring path; DataNode`), as
/// [`SnapshotWalk::step`] writes them.
pub fn decode_node_records(
    buf: Bytes,
) -> std::result::Result<Vec<(String, DataNodeRecord)>, zk_proto::ProtoError> {
    let mut r = JuteReader::new(buf);
    let mut v = Vec::new();
    while !r.is_empty() {
        let p = r.read_string()?;
        let mut rec = DataNodeRecord::read(&mut r)?;
        rec.data = rec.data.map(|d| Bytes::copy_from_slice(&d));
        v.push((p, rec));
    }
    Ok(v)
}

impl ZkDatabase {
    /// An empty database (system nodes only).
    pub fn new() -> Self {
        ZkDatabase {
            tree: DataTree::new(),
            sessions: BTreeMap::new(),
            last_zxid: 0,
        }
    }

    /// Zxid of the last applied txn.
    pub fn last_zxid(&self) -> i64 {
        self.last_zxid
    }

    /// Live sessions and their negotiated timeouts.
    pub fn sessions(&self) -> &BTreeMap<i64, i32> {
        &self.sessions
    }

    /// Copies the state out for a snapshot, all at once (tests and the in-memory store; the
    /// server streams snapshots with [`Self::begin_snapshot`] instead).
    pub fn image(&self) -> DatabaseImage {
        let mut snap = self.begin_snapshot();
        let mut buf = BytesMut::new();
        snap.walk.step(&self.tree, &mut buf, usize::MAX);
        let nodes = decode_node_records(buf.freeze()).unwrap_or_default();
        DatabaseImage {
            last_zxid: snap.last_zxid,
            sessions: snap.sessions,
            acls: snap.walk.acl_table(),
            nodes,
        }
    }

    /// Starts a fuzzy snapshot as of now: the zxid and sessions are taken here, the nodes a
    /// slice at a time by [`SnapshotWalk::step`] while txns keep being applied. Restoring it
    /// means replaying the log from `last_zxid` (see [`crate::tree::snapshot_walk`]).
    pub fn begin_snapshot(&self) -> FuzzySnapshot {
        FuzzySnapshot {
            last_zxid: self.last_zxid,
            sessions: self.sessions.iter().map(|(k, v)| (*k, *v)).collect(),
            walk: SnapshotWalk::new(&self.tree),
        }
    }

    /// Rebuilds a database from a snapshot image (txns logged after it are applied next).
    pub fn from_image(img: &DatabaseImage) -> Self {
        let mut tree = DataTree::restoring();
        let acl_map: BTreeMap<i64, Arc<Vec<Acl>>> = img
            .acls
            .iter()
            .map(|(i, a)| (*i, tree.intern_acl(a.clone())))
            .collect();
        let open = tree.intern_acl(Acl::open_unsafe());
        for (p, rec) in &img.nodes {
            // Apache's index -1 means "open ACL" (OPEN_ACL_UNSAFE without an entry).
            let acl = acl_map
                .get(&rec.acl)
                .cloned()
                .unwrap_or_else(|| open.clone());
            tree.insert_restored(p, rec.data.clone(), acl, rec.stat.clone());
        }
        tree.link_restored();
        ZkDatabase {
            tree,
            sessions: img.sessions.iter().copied().collect(),
            last_zxid: img.last_zxid,
        }
    }

    /// Persisted stat of a node (tests and tools).
    pub fn stat_persisted(&self, path: &str) -> Option<&StatPersisted> {
        self.tree.get(path).map(|n| &n.stat)
    }
}
