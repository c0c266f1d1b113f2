//! The replicated state: data tree, session table and the last applied zxid.
//!
//! Changed only by [`ZkDatabase::apply`] (see [`crate::apply`]), so a standalone server, a
//! follower applying the leader's commits and a restart replaying the txn log all reach the
//! same state from the same txns.

use std::collections::BTreeMap;
use std::sync::Arc;

use zk_proto::persistence::DataNodeRecord;
use zk_proto::{Acl, StatPersisted};

use crate::tree::DataTree;

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

    /// Copies the state out for a snapshot.
    pub fn image(&self) -> DatabaseImage {
        let mut acl_index: Vec<(Arc<Vec<Acl>>, i64)> = Vec::new();
        let mut acls = Vec::new();
        let mut nodes = Vec::with_capacity(self.tree.node_count());
        // Pre-order, children in Apache's set order: what Apache's serializer writes.
        let mut stack: Vec<String> = vec!["/".to_string()];
        while let Some(p) = stack.pop() {
            let Some(n) = self.tree.get(&p) else {
                continue;
            };
            let idx = match acl_index
                .iter()
                .find(|(a, _)| Arc::ptr_eq(a, &n.acl) || **a == *n.acl)
            {
                Some((_, i)) => *i,
                None => {
                    let i = acl_index.len() as i64 + 1;
                    acl_index.push((n.acl.clone(), i));
                    acls.push((i, (*n.acl).clone()));
                    i
                }
            };
            for c in n.children.java_order().into_iter().rev() {
                stack.push(crate::tree::path::join(&p, &c));
            }
            let path = if p == "/" { String::new() } else { p };
            nodes.push((
                path,
                DataNodeRecord {
                    data: n.data.clone(),
                    acl: idx,
                    stat: n.stat.clone(),
                },
            ));
        }
        DatabaseImage {
            last_zxid: self.last_zxid,
            sessions: self.sessions.iter().map(|(k, v)| (*k, *v)).collect(),
            acls,
            nodes,
        }
    }

    /// Rebuilds a database from a snapshot image (txns logged after it are applied next).
    pub fn from_image(img: &DatabaseImage) -> Self {
        let mut tree = DataTree::new();
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
