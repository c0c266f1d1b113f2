//! One znode: name, data, ACL, persisted stat and links to its parent, siblings and children.
//!
//! Nodes live in the tree's arena and refer to each other by slot number, so a node costs one
//! arena slot plus one heap block holding its name and data; its full path is never stored
//! (the tree finds a node by walking `(parent, name)` pairs).

use std::sync::Arc;

use bytes::Bytes;
use zk_proto::create_mode::{ephemeral_owner_to_ttl, CONTAINER_EPHEMERAL_OWNER};
use zk_proto::{Acl, Stat, StatPersisted};

/// Slot number meaning "no node".
pub(crate) const NIL: u32 = u32::MAX;

/// What a node's `ephemeralOwner` field encodes (Apache's `EphemeralType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// Plain persistent node.
    Persistent,
    /// Ephemeral node owned by a session.
    Ephemeral(i64),
    /// Container node.
    Container,
    /// Persistent node with a TTL in ms.
    Ttl(i64),
}

impl NodeKind {
    /// Decodes an `ephemeralOwner`.
    pub fn from_owner(owner: i64) -> Self {
        if owner == 0 {
            NodeKind::Persistent
        } else if owner == CONTAINER_EPHEMERAL_OWNER {
            NodeKind::Container
        } else if let Some(ttl) = ephemeral_owner_to_ttl(owner) {
            NodeKind::Ttl(ttl)
        } else {
            NodeKind::Ephemeral(owner)
        }
    }
}

/// A node's children: a list in insertion order (what Java's per-bucket lists keep); with
/// the capacity Java's `HashSet` would have reached (kept in the node) the tree derives
/// Apache's iteration order from it.
#[derive(Debug, Clone)]
pub struct ChildLinks {
    pub(crate) first: u32,
    pub(crate) last: u32,
    pub(crate) count: u32,
}

impl Default for ChildLinks {
    fn default() -> Self {
        ChildLinks {
            first: NIL,
            last: NIL,
            count: 0,
        }
    }
}

impl ChildLinks {
    /// Number of children.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// True without children.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// A znode.
///
/// `stat.cversion` is kept as Apache keeps it internally: the number of creates under the
/// node. Clients see `2 * cversion - numChildren` (creates plus deletes), see
/// [`DataNode::client_stat`]; sequence suffixes come from the internal count.
#[derive(Debug, Clone)]
pub struct DataNode {
    /// The node's name followed by its data, in one exact-size allocation.
    buf: Box<[u8]>,
    name_len: u32,
    /// Null data is distinct from empty data.
    has_data: bool,
    /// log2 of the capacity of Apache's child `HashSet`; 0 before the first insert.
    cap_log2: u8,
    /// ACL, shared between nodes that were given the same list.
    pub acl: Arc<Vec<Acl>>,
    /// Persisted stat.
    pub stat: StatPersisted,
    /// Children.
    pub children: ChildLinks,
    pub(crate) parent: u32,
    pub(crate) prev: u32,
    pub(crate) next: u32,
}

impl DataNode {
    /// A node named `name` (the last path component; empty for the root), not yet linked.
    pub(crate) fn new(
        name: &str,
        data: Option<&[u8]>,
        acl: Arc<Vec<Acl>>,
        stat: StatPersisted,
    ) -> Self {
        let mut buf = Vec::with_capacity(name.len() + data.map_or(0, <[u8]>::len));
        buf.extend_from_slice(name.as_bytes());
        if let Some(d) = data {
            buf.extend_from_slice(d);
        }
        DataNode {
            buf: buf.into_boxed_slice(),
            name_len: u32::try_from(name.len()).unwrap_or(u32::MAX),
            has_data: data.is_some(),
            cap_log2: 0,
            acl,
            stat,
            children: ChildLinks::default(),
            parent: NIL,
            prev: NIL,
            next: NIL,
        }
    }

    /// The last component of the node's path (empty for the root).
    pub fn name(&self) -> &str {
        std::str::from_utf8(self.name_bytes()).unwrap_or_default()
    }

    pub(crate) fn name_bytes(&self) -> &[u8] {
        self.buf.get(..self.name_len as usize).unwrap_or_default()
    }

    /// The data (null is distinct from empty).
    pub fn data(&self) -> Option<&[u8]> {
        if self.has_data {
            self.buf.get(self.name_len as usize..)
        } else {
            None
        }
    }

    /// A copy of the data for a reply.
    pub fn data_bytes(&self) -> Option<Bytes> {
        self.data().map(Bytes::copy_from_slice)
    }

    /// Replaces the data, keeping the name.
    pub(crate) fn set_data(&mut self, data: Option<&[u8]>) {
        let name = self.name_bytes();
        let mut buf = Vec::with_capacity(name.len() + data.map_or(0, <[u8]>::len));
        buf.extend_from_slice(name);
        if let Some(d) = data {
            buf.extend_from_slice(d);
        }
        self.buf = buf.into_boxed_slice();
        self.has_data = data.is_some();
    }

    /// Capacity of Apache's child set (a `new HashSet<>(8)` as DataNode makes, doubled
    /// whenever it gets more than 3/4 full, never shrunk).
    pub(crate) fn child_capacity(&self) -> u32 {
        if self.cap_log2 == 0 {
            8
        } else {
            1u32 << self.cap_log2
        }
    }

    /// Counts one more child.
    pub(crate) fn child_added(&mut self) {
        self.children.count += 1;
        if self.cap_log2 == 0 {
            self.cap_log2 = 3;
        }
        while u64::from(self.children.count) > u64::from(self.child_capacity()) * 3 / 4
            && self.cap_log2 < 31
        {
            self.cap_log2 += 1;
        }
    }

    /// Decoded `ephemeralOwner`.
    pub fn kind(&self) -> NodeKind {
        NodeKind::from_owner(self.stat.ephemeral_owner)
    }

    /// Length of the data.
    pub fn data_len(&self) -> usize {
        self.data().map_or(0, <[u8]>::len)
    }

    /// The Stat as Apache's `DataNode.copyStat` reports it.
    pub fn client_stat(&self) -> Stat {
        let s = &self.stat;
        let num_children = i32::try_from(self.children.len()).unwrap_or(i32::MAX);
        Stat {
            czxid: s.czxid,
            mzxid: s.mzxid,
            ctime: s.ctime,
            mtime: s.mtime,
            version: s.version,
            cversion: s.cversion.wrapping_mul(2).wrapping_sub(num_children),
            aversion: s.aversion,
            // Containers and TTL nodes report no owner, as in Apache.
            ephemeral_owner: match self.kind() {
                NodeKind::Ephemeral(o) => o,
                _ => 0,
            },
            data_length: i32::try_from(self.data_len()).unwrap_or(i32::MAX),
            num_children,
            pzxid: s.pzxid,
        }
    }
}

/// Apache's `DataTree.createStat`.
pub fn new_stat(zxid: i64, time: i64, ephemeral_owner: i64) -> StatPersisted {
    StatPersisted {
        czxid: zxid,
        mzxid: zxid,
        ctime: time,
        mtime: time,
        version: 0,
        cversion: 0,
        aversion: 0,
        ephemeral_owner,
        pzxid: zxid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node() -> DataNode {
        DataNode::new("n", None, Arc::new(vec![]), StatPersisted::default())
    }

    #[test]
    fn client_cversion_counts_creates_and_deletes() {
        let mut n = node();
        n.stat.cversion = 3; // three creates
        n.child_added(); // one still present: two deleted
        assert_eq!(n.client_stat().cversion, 5);
        assert_eq!(n.client_stat().num_children, 1);
    }

    #[test]
    fn name_and_data_share_a_block() {
        let mut n = DataNode::new("abc", Some(b"xyz"), Arc::new(vec![]), Default::default());
        assert_eq!((n.name(), n.data()), ("abc", Some(&b"xyz"[..])));
        n.set_data(Some(b""));
        assert_eq!(
            (n.name(), n.data(), n.data_len()),
            ("abc", Some(&b""[..]), 0)
        );
        n.set_data(None);
        assert_eq!((n.name(), n.data()), ("abc", None));
        assert_eq!(n.client_stat().data_length, 0);
    }

    #[test]
    fn java_capacity_doubles_past_three_quarters() {
        let mut c = node();
        assert_eq!(c.child_capacity(), 8);
        for _ in 0..6 {
            c.child_added();
        }
        assert_eq!(c.child_capacity(), 8);
        c.child_added();
        assert_eq!(c.child_capacity(), 16);
    }

    #[test]
    fn owner_kinds() {
        assert_eq!(NodeKind::from_owner(0), NodeKind::Persistent);
        assert_eq!(NodeKind::from_owner(5), NodeKind::Ephemeral(5));
        assert_eq!(NodeKind::from_owner(i64::MIN), NodeKind::Container);
        let ttl = zk_proto::create_mode::ttl_to_ephemeral_owner(100).unwrap();
        assert_eq!(NodeKind::from_owner(ttl), NodeKind::Ttl(100));
        let mut n = node();
        n.stat.ephemeral_owner = ttl;
        assert_eq!(n.client_stat().ephemeral_owner, 0);
    }
}
