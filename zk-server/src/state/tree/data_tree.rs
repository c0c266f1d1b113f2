//! The in-memory znode tree, changed only by applying txns.
//!
//! Nodes sit in an arena of fixed-size chunks and link to their parent, siblings and first
//! and last child by slot number; one hash table of slot numbers, keyed by `(parent slot,
//! name)`, finds a child by name. A path is therefore never stored: a node costs one arena
//! slot, one heap block for its name and data, and about two table slots of 4 bytes.

use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use bytes::Bytes;
use hashbrown::HashTable;
use zk_proto::{Acl, ErrorCode, EventType, Perms, Stat, StatPersisted};

use super::children::{java_bucket, sort_java_order, ChildSet};
use super::node::{new_stat, DataNode, NodeKind, NIL};
use super::path;
use crate::state::quota::QuotaTrie;

/// `/zookeeper`.
pub const PROC_ZOOKEEPER: &str = "/zookeeper";
/// `/zookeeper/quota`.
pub const QUOTA_ZOOKEEPER: &str = "/zookeeper/quota";
/// `/zookeeper/config`.
pub const CONFIG_ZOOKEEPER: &str = "/zookeeper/config";

/// Slot of the root.
pub(crate) const ROOT: u32 = 0;
/// Slots per arena chunk: chunks never move, so growing the tree never copies it.
const CHUNK_BITS: u32 = 12;
const CHUNK: usize = 1 << CHUNK_BITS;

/// A watch-relevant change the tree made; the watch manager turns it into notifications.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    /// Node the event is about.
    pub path: String,
    /// What happened.
    pub event: EventType,
}

/// One arena slot; `gen` counts reuses so a slot number remembered earlier can be checked.
#[derive(Debug, Clone)]
struct Slot {
    gen: u32,
    node: Option<DataNode>,
}

/// The znode tree plus its indexes (ephemerals by session, containers, TTL nodes).
#[derive(Clone)]
pub struct DataTree {
    chunks: Vec<Vec<Slot>>,
    free: Vec<u32>,
    live: usize,
    /// Slot numbers with their hash of `(parent slot, name)`.
    index: HashTable<(u32, u32)>,
    hasher: std::collections::hash_map::RandomState,
    ephemerals: HashMap<i64, ChildSet>,
    containers: BTreeSet<String>,
    ttls: BTreeSet<String>,
    /// One shared copy per distinct ACL list (Apache's ACL cache), keyed by its encoding.
    acl_cache: HashMap<Bytes, Arc<Vec<Acl>>>,
    /// Paths with a quota (see [`crate::state::quota`]).
    pub(crate) quotas: QuotaTrie,
}

impl std::fmt::Debug for DataTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataTree")
            .field("nodes", &self.live)
            .field("sessions_with_ephemerals", &self.ephemerals.len())
            .field("containers", &self.containers.len())
            .field("ttls", &self.ttls.len())
            .finish()
    }
}

impl Default for DataTree {
    fn default() -> Self {
        Self::new()
    }
}

/// 32 bits of the hash of `(parent, name)`, kept in the index beside the slot number so the
/// table can grow without reading every node (a stall of 100 ms and more at 1M nodes).
fn hash_key(h: &impl BuildHasher, parent: u32, name: &[u8]) -> u32 {
    let mut s = h.build_hasher();
    s.write_u32(parent);
    s.write(name);
    let v = s.finish();
    (v ^ (v >> 32)) as u32
}

/// The table's 64-bit hash from the kept 32: the table picks buckets from the low bits and
/// its tag from the top 7, so both must vary.
fn widen(h: u32) -> u64 {
    (u64::from(h) << 32) | u64::from(h)
}

fn slot_of(chunks: &[Vec<Slot>], id: u32) -> Option<&Slot> {
    chunks
        .get((id >> CHUNK_BITS) as usize)?
        .get(id as usize & (CHUNK - 1))
}

fn node_of(chunks: &[Vec<Slot>], id: u32) -> Option<&DataNode> {
    slot_of(chunks, id)?.node.as_ref()
}

impl DataTree {
    /// A fresh tree: `/`, `/zookeeper`, `/zookeeper/quota`, `/zookeeper/config`, with the
    /// stats Apache reports for them.
    pub fn new() -> Self {
        let mut t = Self::empty();
        let open = Arc::new(Acl::open_unsafe());
        t.acl_cache_insert(open.clone());
        t.insert_root(Some(&[]), open.clone(), StatPersisted::default());
        t.insert_system_node(PROC_ZOOKEEPER, open.clone(), 0);
        t.insert_system_node(QUOTA_ZOOKEEPER, open, 0);
        // Apache creates the config node with aversion -1 and a read-only ACL.
        let config = Arc::new(vec![Acl::new(Perms::READ, "world", "anyone")]);
        t.acl_cache_insert(config.clone());
        t.insert_system_node(CONFIG_ZOOKEEPER, config, -1);
        t
    }

    /// A tree without even a root, to restore a snapshot into.
    fn empty() -> Self {
        DataTree {
            chunks: Vec::new(),
            free: Vec::new(),
            live: 0,
            index: HashTable::new(),
            hasher: Default::default(),
            ephemerals: HashMap::new(),
            containers: BTreeSet::new(),
            ttls: BTreeSet::new(),
            acl_cache: HashMap::new(),
            quotas: QuotaTrie::default(),
        }
    }

    fn acl_cache_insert(&mut self, acl: Arc<Vec<Acl>>) {
        use zk_proto::Record;
        self.acl_cache.insert(acl.to_bytes(), acl);
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

    /// The shared ACL lists some node uses (a snapshot file's ACL table, see
    /// [`crate::storage::snapshot_walk::SnapshotWalk::for_file`]).
    /// In the order of their encoding, so equal trees give equal tables.
    pub fn acl_lists(&self) -> Vec<Arc<Vec<Acl>>> {
        let mut used: Vec<(&Bytes, &Arc<Vec<Acl>>)> = self
            .acl_cache
            .iter()
            .filter(|(_, a)| Arc::strong_count(a) > 1)
            .collect();
        used.sort_by(|a, b| a.0.cmp(b.0));
        used.into_iter().map(|(_, a)| a.clone()).collect()
    }

    // ---- arena ----

    pub(crate) fn node_at(&self, id: u32) -> Option<&DataNode> {
        node_of(&self.chunks, id)
    }

    /// The node in slot `id` if the slot has not been reused since it had generation `gen`.
    pub(crate) fn node_at_gen(&self, id: u32, gen: u32) -> Option<&DataNode> {
        let s = slot_of(&self.chunks, id)?;
        if s.gen == gen {
            s.node.as_ref()
        } else {
            None
        }
    }

    pub(crate) fn gen_at(&self, id: u32) -> u32 {
        slot_of(&self.chunks, id).map_or(0, |s| s.gen)
    }

    fn node_at_mut(&mut self, id: u32) -> Option<&mut DataNode> {
        self.chunks
            .get_mut((id >> CHUNK_BITS) as usize)?
            .get_mut(id as usize & (CHUNK - 1))?
            .node
            .as_mut()
    }

    fn alloc(&mut self, node: DataNode) -> u32 {
        self.live += 1;
        if let Some(id) = self.free.pop() {
            if let Some(s) = self
                .chunks
                .get_mut((id >> CHUNK_BITS) as usize)
                .and_then(|c| c.get_mut(id as usize & (CHUNK - 1)))
            {
                s.gen = s.gen.wrapping_add(1);
                s.node = Some(node);
                return id;
            }
        }
        if self.chunks.last().is_none_or(|c| c.len() == CHUNK) {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        let n = self.chunks.len() - 1;
        let chunk = &mut self.chunks[n];
        let id = ((n << CHUNK_BITS) | chunk.len()) as u32;
        chunk.push(Slot {
            gen: 0,
            node: Some(node),
        });
        id
    }

    fn release(&mut self, id: u32) -> Option<DataNode> {
        let s = self
            .chunks
            .get_mut((id >> CHUNK_BITS) as usize)?
            .get_mut(id as usize & (CHUNK - 1))?;
        let n = s.node.take()?;
        s.gen = s.gen.wrapping_add(1);
        self.live -= 1;
        self.free.push(id);
        Some(n)
    }

    /// The child of `parent` called `name`.
    fn child(&self, parent: u32, name: &[u8]) -> Option<u32> {
        let hash = hash_key(&self.hasher, parent, name);
        let chunks = &self.chunks;
        self.index
            .find(widen(hash), |&(id, h)| {
                h == hash
                    && node_of(chunks, id)
                        .is_some_and(|n| n.parent == parent && n.name_bytes() == name)
            })
            .map(|&(id, _)| id)
    }

    /// The slot of the node at `p` (`""` is the root too).
    pub(crate) fn find(&self, p: &str) -> Option<u32> {
        if p.is_empty() || p == "/" {
            return self.node_at(ROOT).map(|_| ROOT);
        }
        let rest = p.strip_prefix('/')?;
        let mut id = ROOT;
        for name in rest.split('/') {
            id = self.child(id, name.as_bytes())?;
        }
        Some(id)
    }

    /// Puts a new node under `parent` (last in its child list) and returns its slot.
    fn link(&mut self, parent: u32, mut node: DataNode) -> u32 {
        node.parent = parent;
        node.prev = self.node_at(parent).map_or(NIL, |p| p.children.last);
        let hash = hash_key(&self.hasher, parent, node.name_bytes());
        let id = self.alloc(node);
        let prev = self.node_at(id).map_or(NIL, |n| n.prev);
        if let Some(pn) = self.node_at_mut(prev) {
            pn.next = id;
        }
        if let Some(p) = self.node_at_mut(parent) {
            if p.children.first == NIL {
                p.children.first = id;
            }
            p.children.last = id;
            p.child_added();
        }
        self.index
            .insert_unique(widen(hash), (id, hash), |&(_, h)| widen(h));
        id
    }

    /// Takes the node in slot `id` out of its parent and the index, and frees the slot.
    fn unlink(&mut self, id: u32) -> Option<DataNode> {
        let (parent, prev, next, hash) = {
            let n = self.node_at(id)?;
            (
                n.parent,
                n.prev,
                n.next,
                hash_key(&self.hasher, n.parent, n.name_bytes()),
            )
        };
        if let Ok(e) = self.index.find_entry(widen(hash), |&(i, _)| i == id) {
            e.remove();
        }
        if let Some(pn) = self.node_at_mut(prev) {
            pn.next = next;
        }
        if let Some(nn) = self.node_at_mut(next) {
            nn.prev = prev;
        }
        if let Some(p) = self.node_at_mut(parent) {
            if p.children.first == id {
                p.children.first = next;
            }
            if p.children.last == id {
                p.children.last = prev;
            }
            p.children.count = p.children.count.saturating_sub(1);
        }
        self.release(id)
    }

    /// Slots of a node's children in insertion order.
    fn child_ids(&self, node: &DataNode) -> Vec<u32> {
        let mut v = Vec::with_capacity(node.children.len());
        let mut c = node.children.first;
        while let Some(n) = self.node_at(c) {
            v.push(c);
            c = n.next;
        }
        v
    }

    /// Slots of a node's children in the order Apache's child set iterates them.
    pub(crate) fn child_ids_java_order(&self, node: &DataNode) -> Vec<u32> {
        let cap = node.child_capacity();
        let mut v = self.child_ids(node);
        v.sort_by_cached_key(|&c| self.node_at(c).map_or(0, |n| java_bucket(n.name(), cap)));
        v
    }

    /// Names of a node's children in the order Apache's `getChildren` lists them.
    pub fn children_java_order(&self, node: &DataNode) -> Vec<String> {
        let mut names: Vec<String> = self
            .child_ids(node)
            .into_iter()
            .filter_map(|c| self.node_at(c).map(|n| n.name().to_string()))
            .collect();
        sort_java_order(&mut names, node.child_capacity());
        names
    }

    /// Names of a node's children, in no particular order.
    pub fn child_names(&self, node: &DataNode) -> Vec<String> {
        self.child_ids(node)
            .into_iter()
            .filter_map(|c| self.node_at(c).map(|n| n.name().to_string()))
            .collect()
    }

    /// Appends the full path of slot `id` to `out` ("/" for the root).
    pub(crate) fn path_into(&self, id: u32, out: &mut String) {
        let mut names: Vec<&str> = Vec::new();
        let mut cur = id;
        while cur != ROOT {
            let Some(n) = self.node_at(cur) else { break };
            names.push(n.name());
            cur = n.parent;
        }
        if names.is_empty() {
            out.push('/');
        }
        for name in names.iter().rev() {
            out.push('/');
            out.push_str(name);
        }
    }

    fn path_of(&self, id: u32) -> String {
        let mut s = String::new();
        self.path_into(id, &mut s);
        s
    }

    // ---- system nodes ----

    fn insert_root(&mut self, data: Option<&[u8]>, acl: Arc<Vec<Acl>>, stat: StatPersisted) {
        let node = DataNode::new("", data, acl, stat);
        let id = self.alloc(node);
        debug_assert_eq!(id, ROOT);
    }

    fn insert_system_node(&mut self, p: &str, acl: Arc<Vec<Acl>>, aversion: i32) {
        let Some(parent) = self.find(path::parent(p)) else {
            return;
        };
        if self.child(parent, path::name(p).as_bytes()).is_some() {
            return;
        }
        let stat = StatPersisted {
            aversion,
            ..Default::default()
        };
        self.link(parent, DataNode::new(path::name(p), Some(&[]), acl, stat));
    }

    /// True for the nodes clients may not delete.
    pub fn is_special(p: &str) -> bool {
        matches!(p, "/" | PROC_ZOOKEEPER | QUOTA_ZOOKEEPER | CONFIG_ZOOKEEPER)
    }

    /// Looks a node up (Apache also finds the root under the empty path).
    pub fn get(&self, p: &str) -> Option<&DataNode> {
        self.node_at(self.find(p)?)
    }

    /// Number of nodes, root included (Apache's "Node count").
    pub fn node_count(&self) -> usize {
        self.live
    }

    /// Every node with its path, in no particular order (builds each path: tools and tests).
    pub fn iter(&self) -> impl Iterator<Item = (String, &DataNode)> + '_ {
        self.chunks.iter().enumerate().flat_map(move |(c, chunk)| {
            chunk.iter().enumerate().filter_map(move |(i, s)| {
                let id = ((c << CHUNK_BITS) | i) as u32;
                s.node.as_ref().map(|n| (self.path_of(id), n))
            })
        })
    }

    /// Sum of path and data lengths (mntr's `zk_approximate_data_size`).
    pub fn approximate_data_size(&self) -> usize {
        // Path lengths from the parents' (the arena is not in parent-first order, so walk).
        let mut total = 0;
        let mut stack: Vec<(u32, usize)> = vec![(ROOT, 1)];
        while let Some((id, len)) = stack.pop() {
            let Some(n) = self.node_at(id) else { continue };
            total += len + n.data_len();
            let base = if id == ROOT { 0 } else { len };
            for c in self.child_ids(n) {
                if let Some(cn) = self.node_at(c) {
                    stack.push((c, base + 1 + cn.name_bytes().len()));
                }
            }
        }
        total
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
            return Some(self.live - 1);
        }
        let node = self.get(p)?;
        let mut count = 0;
        let mut stack = self.child_ids(node);
        while let Some(cur) = stack.pop() {
            count += 1;
            if let Some(n) = self.node_at(cur) {
                stack.extend(self.child_ids(n));
            }
        }
        Some(count)
    }

    fn index_kind(&mut self, p: &str, owner: i64) {
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

    fn unindex_kind(&mut self, p: &str, owner: i64) {
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
        let parent_path = path::parent(p);
        let child = path::name(p);
        if child.is_empty() {
            return Err(ErrorCode::BadArguments);
        }
        let pid = self.find(parent_path).ok_or(ErrorCode::NoNode)?;
        let exists = self.child(pid, child.as_bytes()).is_some();
        let parent = self.node_at_mut(pid).ok_or(ErrorCode::NoNode)?;
        if exists {
            // Replaying the log over a fuzzy snapshot that already holds the node: the
            // parent may still lack this create (Apache's setCversionPzxid).
            if parent_cversion > parent.stat.cversion {
                parent.stat.cversion = parent_cversion;
                parent.stat.pzxid = zxid;
            }
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
        let node = DataNode::new(
            child,
            data.as_deref(),
            acl,
            new_stat(zxid, time, ephemeral_owner),
        );
        let stat = node.client_stat();
        self.link(pid, node);
        self.index_kind(p, ephemeral_owner);
        self.quota_created(p, data.as_ref().map_or(0, Bytes::len));
        triggers.push(Trigger {
            path: p.to_string(),
            event: EventType::NodeCreated,
        });
        triggers.push(Trigger {
            path: parent_path.to_string(),
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
        if p == "/" || p.is_empty() {
            return Err(ErrorCode::BadArguments);
        }
        let parent_path = path::parent(p);
        let pid = self.find(parent_path).ok_or(ErrorCode::NoNode)?;
        // Before looking for the child, as Apache does: replaying the log over a fuzzy
        // snapshot meets deletes of children the snapshot already lacks, whose parent was
        // written before the delete.
        if let Some(parent) = self.node_at_mut(pid) {
            if zxid > parent.stat.pzxid {
                parent.stat.pzxid = zxid;
            }
        }
        let id = self
            .child(pid, path::name(p).as_bytes())
            .ok_or(ErrorCode::NoNode)?;
        // Clients cannot delete a node with children; should a replay do so, its subtree
        // goes too rather than staying allocated and unreachable.
        let mut doomed = vec![id];
        let mut i = 0;
        while let Some(&cur) = doomed.get(i) {
            if let Some(n) = self.node_at(cur) {
                let kids = self.child_ids(n);
                doomed.extend(kids);
            }
            i += 1;
        }
        // Apache counts the deleted node alone against its quota.
        let data_len = self.node_at(id).map_or(0, DataNode::data_len);
        for &cur in doomed.iter().rev() {
            let owner = self.node_at(cur).map(|n| n.stat.ephemeral_owner);
            if let Some(owner) = owner.filter(|o| *o != 0) {
                let cp = self.path_of(cur);
                self.unindex_kind(&cp, owner);
            }
            self.unlink(cur);
        }
        self.quota_deleted(p, data_len);
        triggers.push(Trigger {
            path: p.to_string(),
            event: EventType::NodeDeleted,
        });
        triggers.push(Trigger {
            path: parent_path.to_string(),
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
        let id = self.find(p).ok_or(ErrorCode::NoNode)?;
        let node = self.node_at_mut(id).ok_or(ErrorCode::NoNode)?;
        let old_len = node.data_len();
        node.set_data(data.as_deref());
        node.stat.mtime = time;
        node.stat.mzxid = zxid;
        node.stat.version = version;
        let stat = node.client_stat();
        self.quota_data_changed(p, old_len, data.as_ref().map_or(0, Bytes::len));
        triggers.push(Trigger {
            path: p.to_string(),
            event: EventType::NodeDataChanged,
        });
        Ok(stat)
    }

    /// Apache's `DataTree.setACL`.
    pub fn set_acl(&mut self, p: &str, acl: Vec<Acl>, version: i32) -> Result<Stat, ErrorCode> {
        let id = self.find(p).ok_or(ErrorCode::NoNode)?;
        let acl = self.intern_acl(acl);
        let node = self.node_at_mut(id).ok_or(ErrorCode::NoNode)?;
        node.acl = acl;
        node.stat.aversion = version;
        Ok(node.client_stat())
    }

    /// A tree restored from snapshot nodes: call `insert_restored` for each node in
    /// the snapshot's order (parents first), then [`Self::link_restored`].
    pub fn restoring() -> Self {
        Self::empty()
    }

    /// Inserts a node restored from a snapshot, last among its parent's children (Apache's
    /// deserializer adds them in file order, so the restored sets iterate like Apache's).
    /// Checks the order as it goes: returns false, changing nothing, for a node Apache
    /// would refuse (the root, `""` or `"/"`, not first; a parent not restored before its
    /// child; a malformed path), so a corrupt snapshot never leaves orphans.
    pub fn restore_node(
        &mut self,
        p: &str,
        data: Option<&[u8]>,
        acl: Arc<Vec<Acl>>,
        stat: StatPersisted,
    ) -> bool {
        let root = p.is_empty() || p == "/";
        let Some(slash) = p.rfind('/').filter(|_| !root) else {
            // Only the root has no '/', and it comes first.
            if !root || self.live != 0 {
                return false;
            }
            self.insert_root(data, acl, stat);
            return true;
        };
        let (Some(parent), Some(name)) = (p.get(..slash), p.get(slash + 1..)) else {
            return false;
        };
        // "/" is never a node's path in a snapshot (it ends the list), so "//x" has no parent.
        if name.is_empty() || parent == "/" {
            return false;
        }
        let Some(pid) = self.find(parent) else {
            return false;
        };
        let owner = stat.ephemeral_owner;
        if let Some(id) = self.child(pid, name.as_bytes()) {
            // Listed twice: the later copy wins, in place.
            let old_owner = self.node_at(id).map_or(0, |n| n.stat.ephemeral_owner);
            self.unindex_kind(p, old_owner);
            if let Some(n) = self.node_at_mut(id) {
                n.set_data(data);
                n.acl = acl;
                n.stat = stat;
            }
        } else {
            self.link(pid, DataNode::new(name, data, acl, stat));
        }
        self.index_kind(p, owner);
        true
    }

    /// Finishes a restore: adds the system nodes the snapshot lacked (older Apache versions
    /// wrote no `/zookeeper/config`), after the listed ones.
    pub fn link_restored(&mut self) {
        if self.node_at(ROOT).is_none() {
            let open = self.intern_acl(Acl::open_unsafe());
            self.insert_root(Some(&[]), open, StatPersisted::default());
        }
        let open = self.intern_acl(Acl::open_unsafe());
        let config = self.intern_acl(vec![Acl::new(Perms::READ, "world", "anyone")]);
        self.insert_system_node(PROC_ZOOKEEPER, open.clone(), 0);
        self.insert_system_node(CONFIG_ZOOKEEPER, config, -1);
        self.insert_system_node(QUOTA_ZOOKEEPER, open, 0);
        self.setup_quota();
    }

    /// Replaces the data of the node at `p` and nothing else (no stat change, no watch):
    /// how Apache writes quota usage. False if there is no such node.
    pub(crate) fn replace_data(&mut self, p: &str, data: &[u8]) -> bool {
        match self.find(p).and_then(|id| self.node_at_mut(id)) {
            Some(n) => {
                n.set_data(Some(data));
                true
            }
            None => false,
        }
    }

    /// Nodes and data bytes in the subtree at `p`, itself included; zeros without a node
    /// (Apache's `getCounts`).
    pub(crate) fn subtree_counts(&self, p: &str) -> (i64, i64) {
        let (mut count, mut bytes) = (0i64, 0i64);
        let mut stack: Vec<u32> = self.find(p).into_iter().collect();
        while let Some(cur) = stack.pop() {
            let Some(n) = self.node_at(cur) else { continue };
            count += 1;
            bytes += n.data_len() as i64;
            stack.extend(self.child_ids(n));
        }
        (count, bytes)
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
        let mut all: Vec<(String, &DataNode)> = t.iter().collect();
        all.sort_by_key(|(p, _)| p.matches('/').count());
        let mut r = DataTree::restoring();
        for (p, n) in all {
            assert!(r.restore_node(&p, n.data(), n.acl.clone(), n.stat.clone()));
        }
        assert!(!r.restore_node(
            "/orphan/x",
            None,
            Arc::new(vec![]),
            StatPersisted::default(),
        ));
        r.link_restored();
        assert_eq!(r.get("/a").unwrap().children.len(), 1);
        assert!(r.get("/orphan/x").is_none());
        assert_eq!(r.get("/").unwrap().children.len(), 2);
        assert_eq!(r.node_count(), t.node_count());
        assert_eq!(r.get("/a/b").unwrap().stat, t.get("/a/b").unwrap().stat);
    }

    #[test]
    fn restore_node_checks_the_order_as_it_goes() {
        let acl = Arc::new(Acl::open_unsafe());
        let st = StatPersisted::default;
        let mut r = DataTree::restoring();
        assert!(!r.restore_node("/a", None, acl.clone(), st()), "root first");
        assert!(r.restore_node("", Some(b""), acl.clone(), st()));
        assert!(
            !r.restore_node("", Some(b""), acl.clone(), st()),
            "one root"
        );
        assert!(r.restore_node("/a", Some(b"1"), acl.clone(), st()));
        assert!(
            !r.restore_node("/b/c", None, acl.clone(), st()),
            "parent first"
        );
        for bad in ["//a", "/a/", "a", "/a//b", "x/y"] {
            assert!(!r.restore_node(bad, None, acl.clone(), st()), "{bad}");
        }
        assert!(r.restore_node("/a/b", None, acl.clone(), st()));
        assert!(
            r.restore_node("/a", Some(b"2"), acl.clone(), st()),
            "later copy wins"
        );
        assert_eq!(r.node_count(), 3);
        assert_eq!(r.get("/a").unwrap().data(), Some(&b"2"[..]));
        assert_eq!(r.get("/a").unwrap().children.len(), 1);
    }

    #[test]
    fn child_order_is_java_hash_set_order() {
        // The names and order captured from Apache 3.8 (see children.rs).
        let mut t = DataTree::new();
        create(&mut t, "/p", 2);
        let names = super::super::children::CAPTURED_INSERTED;
        for (i, n) in names.iter().enumerate() {
            create(&mut t, &format!("/p/{n}"), 3 + i as i64);
        }
        let p = t.get("/p").unwrap();
        assert_eq!(
            t.children_java_order(p),
            super::super::children::CAPTURED_ORDER
        );
        let mut tr = Vec::new();
        t.delete_node("/p/x", 20, &mut tr).unwrap();
        t.delete_node("/p/zeta", 21, &mut tr).unwrap();
        create(&mut t, "/p/zeta", 22);
        let p = t.get("/p").unwrap();
        let mut set = ChildSet::new();
        for n in names {
            set.insert(n.to_string());
        }
        set.remove("x");
        set.remove("zeta");
        set.insert("zeta".into());
        assert_eq!(t.children_java_order(p), set.java_order());
        assert_eq!(p.children.len(), 9);
    }

    #[test]
    fn a_node_slot_stays_small() {
        // The arena slot is most of a node's memory (with its name+data block).
        assert!(
            std::mem::size_of::<Slot>() <= 128,
            "{}",
            std::mem::size_of::<Slot>()
        );
    }

    #[test]
    fn slots_are_reused_and_paths_resolve() {
        let mut t = DataTree::new();
        let mut tr = Vec::new();
        for i in 0..10_000 {
            create(&mut t, &format!("/n{i}"), 2 + i);
        }
        for i in 0..10_000 {
            t.delete_node(&format!("/n{i}"), 20_000 + i, &mut tr)
                .unwrap();
        }
        assert_eq!(t.node_count(), 4);
        create(&mut t, "/again", 40_000);
        create(&mut t, "/again/deeper", 40_001);
        assert!(t.get("/again/deeper").is_some());
        assert!(t.get("/again/").is_none());
        assert!(t.get("again").is_none());
        assert!(t.get("/n5").is_none());
        assert_eq!(t.all_children_number("/again"), Some(1));
        assert_eq!(
            t.approximate_data_size(),
            [
                "/",
                "/zookeeper",
                "/zookeeper/quota",
                "/zookeeper/config",
                "/again",
                "/again/deeper"
            ]
            .iter()
            .map(|p| p.len())
            .sum::<usize>()
        );
        assert!(t.chunks.len() <= 3);
    }
}
