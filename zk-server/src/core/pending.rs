//! Outstanding changes: the effect of txns prepared but not yet applied (Apache's
//! `outstandingChanges`), so requests pipelined behind uncommitted writes are validated
//! against the state those writes will produce.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use zk_proto::{Acl, StatPersisted};

use crate::state::database::ZkDatabase;

/// A node as the prep stage sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeView {
    /// Persisted stat (internal cversion).
    pub stat: StatPersisted,
    /// Number of children.
    pub child_count: i32,
    /// ACL.
    pub acl: Arc<Vec<Acl>>,
    /// Length of the data (quota checks weigh a setData against it).
    pub data_len: usize,
}

#[derive(Debug, Clone)]
struct ChangeRecord {
    zxid: i64,
    /// `None`: the node is being deleted.
    view: Option<NodeView>,
}

/// Undo information for one multi.
#[derive(Debug, Default)]
pub struct Savepoint {
    order_len: usize,
    saved: Vec<(String, Option<ChangeRecord>)>,
}

/// The overlay of outstanding changes.
#[derive(Debug, Default)]
pub struct PendingChanges {
    by_path: HashMap<String, ChangeRecord>,
    /// Every record in prepare order: zxid, path, owner (`None`: a delete).
    order: VecDeque<(i64, String, Option<i64>)>,
    savepoint: Option<Savepoint>,
}

impl PendingChanges {
    /// No outstanding changes.
    pub fn new() -> Self {
        Self::default()
    }

    /// The node at `path` as it will be once outstanding changes apply.
    pub fn get(&self, db: &ZkDatabase, path: &str) -> Option<NodeView> {
        if let Some(r) = self.by_path.get(path) {
            return r.view.clone();
        }
        db.tree.get(path).map(|n| NodeView {
            stat: n.stat.clone(),
            child_count: i32::try_from(n.children.len()).unwrap_or(i32::MAX),
            acl: n.acl.clone(),
            data_len: n.data_len(),
        })
    }

    /// Records the state a prepared txn leaves `path` in.
    pub fn set(&mut self, zxid: i64, path: &str, view: Option<NodeView>) {
        let owner = view.as_ref().map(|v| v.stat.ephemeral_owner);
        let prev = self
            .by_path
            .insert(path.to_string(), ChangeRecord { zxid, view });
        if let Some(sp) = &mut self.savepoint {
            sp.saved.push((path.to_string(), prev));
        }
        self.order.push_back((zxid, path.to_string(), owner));
    }

    /// Starts recording undo information (multi).
    pub fn begin(&mut self) {
        self.savepoint = Some(Savepoint {
            order_len: self.order.len(),
            saved: Vec::new(),
        });
    }

    /// Stops recording; with `rollback`, undoes everything since [`Self::begin`].
    pub fn end(&mut self, rollback: bool) {
        let Some(sp) = self.savepoint.take() else {
            return;
        };
        if rollback {
            for (path, prev) in sp.saved.into_iter().rev() {
                match prev {
                    Some(r) => {
                        self.by_path.insert(path, r);
                    }
                    None => {
                        self.by_path.remove(&path);
                    }
                }
            }
            self.order.truncate(sp.order_len);
        }
    }

    /// Drops the records of txns up to `zxid`, now visible in the tree.
    pub fn applied(&mut self, zxid: i64) {
        while let Some((z, _, _)) = self.order.front() {
            if *z > zxid {
                break;
            }
            if let Some((z, p, _)) = self.order.pop_front() {
                if self.by_path.get(&p).is_some_and(|r| r.zxid == z) {
                    self.by_path.remove(&p);
                }
            }
        }
    }

    /// Every outstanding record in prepare order: path and owner (`None`: a delete), as
    /// Apache's closeSession walks `outstandingChanges`.
    pub fn history(&self) -> impl Iterator<Item = (&String, Option<i64>)> {
        self.order.iter().map(|(_, p, o)| (p, *o))
    }

    /// Number of outstanding records.
    pub fn len(&self) -> usize {
        self.by_path.len()
    }

    /// True when nothing is outstanding.
    pub fn is_empty(&self) -> bool {
        self.by_path.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_rollback_and_apply() {
        let db = ZkDatabase::new();
        let mut p = PendingChanges::new();
        assert!(p.get(&db, "/a").is_none());
        let v = NodeView {
            stat: StatPersisted::default(),
            child_count: 0,
            acl: Arc::new(vec![]),
            data_len: 0,
        };
        p.set(1, "/a", Some(v.clone()));
        assert!(p.get(&db, "/a").is_some());
        p.begin();
        p.set(2, "/a", None);
        p.set(2, "/b", Some(v));
        assert!(p.get(&db, "/a").is_none());
        p.end(true);
        assert!(p.get(&db, "/a").is_some());
        assert!(p.get(&db, "/b").is_none());
        p.applied(1);
        assert!(p.is_empty());
        // The root comes from the tree.
        assert_eq!(p.get(&db, "/").unwrap().child_count, 1);
    }
}
