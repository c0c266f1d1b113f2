//! The in-memory znode tree, changed only by applying txns.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use zk_proto::{Acl, ErrorCode, EventType, Perms, Stat, StatPersisted};

use super::children::ChildSet;
use super::node::{new_stat, DataNode, NodeKind};
use super::path;

/// `/zookeeper`.
pub const PROC_ZOOKEEPER: &str = "/zookeeper";
/// `/zookeeper/quota`.
pub const QUOTA_ZOOKEEPER: &str = "/zookeeper/quota";
/// `/zookeeper/config`.
pub const CONFIG_ZOOKEEPER: &str = "/zookeeper/config";

/// A watch-relevant change the tree made; the watch manager turns it into notifications.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    /// Node the event is about.
    pub path: String,
    /// What happened.
    pub event: EventType,
}

/// The znode tree plus its indexes (ephemerals by session, containers, TTL nodes).
#[derive(Debug, Clone)]
pub struct DataTree {
    // Boxed: a hash table over-allocates up to 2x its slots, and a slot should cost a
    // pointer, not a whole node.
    nodes: HashMap<String, Box<DataNode>>,
    ephemerals: HashMap<i64, ChildSet>,
    containers: BTreeSet<String>,
    ttls: BTreeSet<String>,
    /// One shared copy per distinct ACL list (Apache's ACL cache), keyed by its encoding.
    acl_cache: HashMap<bytes::Bytes, Arc<Vec<Acl>>>,
    /// Paths in the order [`Self::insert_restored`] saw them (a snapshot's pre-order).
    restore_order: Vec<String>,
}

/// Gives node data its own exact-size allocation. Request payloads arrive as zero-copy slices
/// of a connection's read buffer; storing such a slice in the tree would keep the whole buffer
/// (and every other frame in it) alive for as long as the node lives.
fn detach(data: Option<Bytes>) -> Option<Bytes> {
    data.map(|d| Bytes::copy_from_slice(&d))
}

impl Default for DataTree {
    fn default() -> Self {
        Self::new()
    }
}

impl DataTree {
    /// A fresh tree: `/`, `/zookeeper`, `/zookeeper/quota`, `/zookeeper/config`, with the
    /// stats Apache reports for them.
    pub fn new() -> Self {
        let mut t = DataTree {
            nodes: HashMap::new(),
            ephemerals: HashMap::new(),
            containers: BTreeSet::new(),
            ttls: BTreeSet::new(),
            acl_cache: HashMap::new(),
            restore_order: Vec::new(),
        };
        let open = Arc::new(Acl::open_unsafe());
        t.nodes.insert(
            "/".into(),
            Box::new(DataNode {
                data: Some(Bytes::new()),
                acl: open.clone(),
                ..Default::default()
            }),
        );
        t.insert_system_node(PROC_ZOOKEEPER, open.clone(), 0);
        t.insert_system_node(QUOTA_ZOOKEEPER, open, 0);
        // Apache creates the config node with aversion -1 and a read-only ACL.
        t.insert_system_node(
            CONFIG_ZOOKEEPER,
            Arc::new(vec![Acl::new(Perms::READ, "world", "anyone")]),
            -1,
        );
        t
    }

    /// The shared copy of an ACL list; lists no node uses any more are dropped now and then.
    pub fn intern_acl(&mut self, acl: Vec<Acl>) -> Arc<Vec<Acl>> {
        use zk_proto::Record;
        let key = acl.to_bytes();
        if let Some(a) = self.acl_cache.get(&key) {
            return a.clone();
        }
        if self.acl_cache.len() >= 1024 && self.acl_cache.len().is_power_of_two() {
            self.acl_cache.retain(|_, a| Arc::strong_count(a) > 1);
        }
        let a = Arc::new(acl);
        self.acl_cache.insert(key, a.clone());
        a
    }

    fn insert_system_node(&mut self, p: &str, acl: Arc<Vec<Acl>>, aversion: i32) {
        let node = DataNode {
            data: Some(Bytes::new()),
            acl,
            stat: StatPersisted {
                aversion,
                ..Default::default()
            },
            children: ChildSet::new(),
        };
        self.nodes.insert(p.to_string(), Box::new(node));
        if let Some(parent) = self.nodes.get_mut(path::parent(p)) {
            parent.children.insert(path::name(p).to_string());
        }
    }

    /// True for the nodes clients may not delete.
    pub fn is_special(p: &str) -> bool {
        matches!(p, "/" | PROC_ZOOKEEPER | QUOTA_ZOOKEEPER | CONFIG_ZOOKEEPER)
    }

    /// Looks a node up (Apache also finds the root under the empty path).
    pub fn get(&self, p: &str) -> Option<&DataNode> {
        if p.is_empty() {
            return self.nodes.get("/").map(|n| &**n);
        }
        self.nodes.get(p).map(|n| &**n)
    }

    /// Number of nodes, root included (Apache's "Node count").
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Every node, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &DataNode)> {
        self.nodes.iter().map(|(p, n)| (p, &**n))
    }

    /// Sum of path and data lengths (mntr's `zk_approximate_data_size`).
    pub fn approximate_data_size(&self) -> usize {
        self.nodes.iter().map(|(p, n)| p.len() + n.data_len()).sum()
    }

    /// Ephemerals of a session, in the order Apache's `getEphemerals` copy iterates them.
    pub fn ephemerals(&self, session: i64) -> Vec<String> {
        self.ephemerals
            .get(&session)
            .map(|s| s.java_copy().java_order())
            .unwrap_or_default()
    }

    /// The copy of a session's ephemeral set Apache's closeSession starts from.
    pub fn ephemerals_set(&self, session: i64) -> ChildSet {
        self.ephemerals
            .get(&session)
            .map(|s| s.java_copy())
            .unwrap_or_else(|| ChildSet::with_initial_capacity(16))
    }

    /// All sessions with ephemerals, each with its paths sorted (for `dump`).
    pub fn ephemerals_by_session(&self) -> std::collections::BTreeMap<i64, Vec<String>> {
        self.ephemerals
            .iter()
            .map(|(s, set)| {
                let mut v: Vec<String> = set.iter().cloned().collect();
                v.sort();
                (*s, v)
            })
            .collect()
    }

    /// Container node paths.
    pub fn containers(&self) -> &BTreeSet<String> {
        &self.containers
    }

    /// TTL node paths.
    pub fn ttls(&self) -> &BTreeSet<String> {
        &self.ttls
    }

    /// Number of descendants (the whole tree minus the root for `/`).
    pub fn all_children_number(&self, p: &str) -> Option<usize> {
        if p == "/" {
            return Some(self.nodes.len() - 1);
        }
        let node = self.get(p)?;
        let mut count = 0;
        let mut stack: Vec<String> = node.children.iter().map(|c| path::join(p, c)).collect();
        while let Some(cur) = stack.pop() {
            count += 1;
            if let Some(n) = self.nodes.get(&cur) {
                stack.extend(n.children.iter().map(|c| path::join(&cur, c)));
            }
        }
        Some(count)
    }

    fn index(&mut self, p: &str, owner: i64) {
        match NodeKind::from_owner(owner) {
            NodeKind::Persistent => {}
            NodeKind::Ephemeral(s) => {
                self.ephemerals
                    .entry(s)
                    .or_insert_with(|| ChildSet::with_initial_capacity(16))
                    .insert(p.to_string());
            }
            NodeKind::Container => {
                self.containers.insert(p.to_string());
            }
            NodeKind::Ttl(_) => {
                self.ttls.insert(p.to_string());
            }
        }
    }

    fn unindex(&mut self, p: &str, owner: i64) {
        match NodeKind::from_owner(owner) {
            NodeKind::Persistent => {}
            NodeKind::Ephemeral(s) => {
                if let Some(set) = self.ephemerals.get_mut(&s) {
                    set.remove(p);
                    if set.is_empty() {
                        self.ephemerals.remove(&s);
                    }
                }
            }
            NodeKind::Container => {
                self.containers.remove(p);
            }
            NodeKind::Ttl(_) => {
                self.ttls.remove(p);
            }
        }
    }

    /// Apache's `DataTree.createNode`. `parent_cversion` is the parent's new create count
    /// (-1: one more than now).
    #[allow(clippy::too_many_arguments)]
    pub fn create_node(
        &mut self,
        p: &str,
        data: Option<Bytes>,
        acl: Vec<Acl>,
        ephemeral_owner: i64,
        parent_cversion: i32,
        zxid: i64,
        time: i64,
        triggers: &mut Vec<Trigger>,
    ) -> Result<Stat, ErrorCode> {
        if p == "/" || !p.starts_with('/') {
            return Err(ErrorCode::NodeExists);
        }
        let parent_path = path::parent(p).to_string();
        let child = path::name(p).to_string();
        let parent = self.nodes.get_mut(&parent_path).ok_or(ErrorCode::NoNode)?;
        if parent.children.contains(&child) {
            return Err(ErrorCode::NodeExists);
        }
        let cv = if parent_cversion == -1 {
            parent.stat.cversion.wrapping_add(1)
        } else {
            parent_cversion
        };
        // Replays may meet a txn whose effect a fuzzy snapshot already holds.
        if cv > parent.stat.cversion {
            parent.stat.cversion = cv;
            parent.stat.pzxid = zxid;
        }
        let acl = self.intern_acl(acl);
        let Some(parent) = self.nodes.get_mut(&parent_path) else {
            return Err(ErrorCode::NoNode);
        };
        parent.children.insert(child);
        let node = DataNode {
            data: detach(data),
            acl,
            stat: new_stat(zxid, time, ephemeral_owner),
            children: ChildSet::new(),
        };
        let stat = node.client_stat();
        self.nodes.insert(p.to_string(), Box::new(node));
        self.index(p, ephemeral_owner);
        triggers.push(Trigger {
            path: p.to_string(),
            event: EventType::NodeCreated,
        });
        triggers.push(Trigger {
            path: parent_path,
            event: EventType::NodeChildrenChanged,
        });
        Ok(stat)
    }

    /// Apache's `DataTree.deleteNode`.
    pub fn delete_node(
        &mut self,
        p: &str,
        zxid: i64,
        triggers: &mut Vec<Trigger>,
    ) -> Result<(), ErrorCode> {
        if p == "/" {
            return Err(ErrorCode::BadArguments);
        }
        let parent_path = path::parent(p).to_string();
        let node = self.nodes.remove(p).ok_or(ErrorCode::NoNode)?;
        if let Some(parent) = self.nodes.get_mut(&parent_path) {
            parent.children.remove(path::name(p));
            if zxid > parent.stat.pzxid {
                parent.stat.pzxid = zxid;
            }
        }
        self.unindex(p, node.stat.ephemeral_owner);
        triggers.push(Trigger {
            path: p.to_string(),
            event: EventType::NodeDeleted,
        });
        triggers.push(Trigger {
            path: parent_path,
            event: EventType::NodeChildrenChanged,
        });
        Ok(())
    }

    /// Apache's `DataTree.setData`.
    pub fn set_data(
        &mut self,
        p: &str,
        data: Option<Bytes>,
        version: i32,
        zxid: i64,
        time: i64,
        triggers: &mut Vec<Trigger>,
    ) -> Result<Stat, ErrorCode> {
        let data = detach(data);
        let node = self.nodes.get_mut(p).ok_or(ErrorCode::NoNode)?;
        node.data = data;
        node.stat.mtime = time;
        node.stat.mzxid = zxid;
        node.stat.version = version;
        let stat = node.client_stat();
        triggers.push(Trigger {
            path: p.to_string(),
            event: EventType::NodeDataChanged,
        });
        Ok(stat)
    }

    /// Apache's `DataTree.setACL`.
    pub fn set_acl(&mut self, p: &str, acl: Vec<Acl>, version: i32) -> Result<Stat, ErrorCode> {
        if !self.nodes.contains_key(p) {
            return Err(ErrorCode::NoNode);
        }
        let acl = self.intern_acl(acl);
        let node = self.nodes.get_mut(p).ok_or(ErrorCode::NoNode)?;
        node.acl = acl;
        node.stat.aversion = version;
        Ok(node.client_stat())
    }

    /// Inserts a node restored from a snapshot; parents are linked by [`Self::link_restored`].
    pub fn insert_restored(
        &mut self,
        p: &str,
        data: Option<Bytes>,
        acl: Arc<Vec<Acl>>,
        stat: StatPersisted,
    ) {
        let p = if p.is_empty() { "/" } else { p };
        let owner = stat.ephemeral_owner;
        if let Some(old) = self.nodes.insert(
            p.to_string(),
            Box::new(DataNode {
                data: detach(data),
                acl,
                stat,
                children: ChildSet::new(),
            }),
        ) {
            self.unindex(p, old.stat.ephemeral_owner);
        }
        self.index(p, owner);
        self.restore_order.push(p.to_string());
    }

    /// Rebuilds child lists after [`Self::insert_restored`]; nodes whose parent is missing
    /// are dropped (a corrupt snapshot must not leave orphans reachable by path).
    pub fn link_restored(&mut self) {
        for n in self.nodes.values_mut() {
            n.children.clear();
        }
        // Children are added in snapshot order, as Apache's deserializer does, so the
        // restored sets iterate like Apache's.
        let mut order = std::mem::take(&mut self.restore_order);
        let listed: std::collections::HashSet<String> = order.iter().cloned().collect();
        let mut rest: Vec<String> = self
            .nodes
            .keys()
            .filter(|p| !listed.contains(*p))
            .cloned()
            .collect();
        rest.sort();
        order.extend(rest);
        order.sort_by_key(|p| p.matches('/').count());
        for p in order {
            if p == "/" {
                continue;
            }
            let parent = path::parent(&p).to_string();
            match self.nodes.get_mut(&parent) {
                Some(pn) => {
                    pn.children.insert(path::name(&p).to_string());
                }
                None => {
                    if let Some(n) = self.nodes.remove(&p) {
                        self.unindex(&p, n.stat.ephemeral_owner);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(t: &mut DataTree, p: &str, zxid: i64) -> Stat {
        let mut tr = Vec::new();
        t.create_node(
            p,
            None,
            Acl::open_unsafe(),
            0,
            -1,
            zxid,
            1000 + zxid,
            &mut tr,
        )
        .unwrap()
    }

    #[test]
    fn fresh_tree_matches_apache() {
        let t = DataTree::new();
        let root = t.get("/").unwrap().client_stat();
        assert_eq!((root.cversion, root.num_children), (-1, 1));
        let zk = t.get("/zookeeper").unwrap().client_stat();
        assert_eq!((zk.cversion, zk.num_children), (-2, 2));
        assert_eq!(
            t.get("/zookeeper/config").unwrap().client_stat().aversion,
            -1
        );
        assert_eq!(t.all_children_number("/"), Some(3));
        assert!(t.get("").is_some());
    }

    #[test]
    fn create_delete_stats() {
        let mut t = DataTree::new();
        let s = create(&mut t, "/a", 2);
        assert_eq!((s.czxid, s.mzxid, s.pzxid, s.ctime), (2, 2, 2, 1002));
        create(&mut t, "/a/x", 3);
        let mut tr = Vec::new();
        t.delete_node("/a/x", 4, &mut tr).unwrap();
        let a = t.get("/a").unwrap();
        assert_eq!(a.stat.cversion, 1);
        assert_eq!(a.client_stat().cversion, 2);
        assert_eq!(a.client_stat().pzxid, 4);
        assert_eq!(
            tr,
            vec![
                Trigger {
                    path: "/a/x".into(),
                    event: EventType::NodeDeleted
                },
                Trigger {
                    path: "/a".into(),
                    event: EventType::NodeChildrenChanged
                },
            ]
        );
        assert_eq!(
            t.create_node("/nope/x", None, vec![], 0, -1, 5, 0, &mut tr),
            Err(ErrorCode::NoNode)
        );
        assert_eq!(
            t.create_node("/a", None, vec![], 0, -1, 5, 0, &mut tr),
            Err(ErrorCode::NodeExists)
        );
    }

    #[test]
    fn equal_acls_are_shared() {
        let mut t = DataTree::new();
        create(&mut t, "/a", 2);
        create(&mut t, "/b", 3);
        let (a, b) = (t.get("/a").unwrap(), t.get("/b").unwrap());
        assert!(Arc::ptr_eq(&a.acl, &b.acl));
        t.set_acl("/b", Acl::read_unsafe(), 1).unwrap();
        assert_eq!(*t.get("/b").unwrap().acl, Acl::read_unsafe());
        assert_eq!(*t.get("/a").unwrap().acl, Acl::open_unsafe());
    }

    #[test]
    fn ephemerals_indexed() {
        let mut t = DataTree::new();
        let mut tr = Vec::new();
        t.create_node("/e", None, vec![], 77, -1, 2, 0, &mut tr)
            .unwrap();
        assert_eq!(t.ephemerals(77), vec!["/e".to_string()]);
        t.delete_node("/e", 3, &mut tr).unwrap();
        assert!(t.ephemerals(77).is_empty());
    }

    #[test]
    fn restore_links_children() {
        let mut t = DataTree::new();
        create(&mut t, "/a", 2);
        create(&mut t, "/a/b", 3);
        let mut r = DataTree::new();
        for (p, n) in t.iter() {
            r.insert_restored(p, n.data.clone(), n.acl.clone(), n.stat.clone());
        }
        r.insert_restored(
            "/orphan/x",
            None,
            Arc::new(vec![]),
            StatPersisted::default(),
        );
        r.link_restored();
        assert_eq!(r.get("/a").unwrap().children.len(), 1);
        assert!(r.get("/orphan/x").is_none());
        assert_eq!(r.get("/").unwrap().children.len(), 2);
    }
}
