//! One znode: data, ACL, persisted stat and child names.

use std::sync::Arc;

use bytes::Bytes;
use zk_proto::create_mode::{ephemeral_owner_to_ttl, CONTAINER_EPHEMERAL_OWNER};
use zk_proto::{Acl, Stat, StatPersisted};

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

/// A znode.
///
/// `stat.cversion` is kept as Apache keeps it internally: the number of creates under the
/// node. Clients see `2 * cversion - numChildren` (creates plus deletes), see
/// [`DataNode::client_stat`]; sequence suffixes come from the internal count.
#[derive(Debug, Clone, Default)]
pub struct DataNode {
    /// Data (null is distinct from empty).
    pub data: Option<Bytes>,
    /// ACL, shared between nodes that were given the same list.
    pub acl: Arc<Vec<Acl>>,
    /// Persisted stat.
    pub stat: StatPersisted,
    /// Child names.
    pub children: super::ChildSet,
}

impl DataNode {
    /// Decoded `ephemeralOwner`.
    pub fn kind(&self) -> NodeKind {
        NodeKind::from_owner(self.stat.ephemeral_owner)
    }

    /// Length of the data.
    pub fn data_len(&self) -> usize {
        self.data.as_ref().map_or(0, |d| d.len())
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

    #[test]
    fn client_cversion_counts_creates_and_deletes() {
        let mut n = DataNode::default();
        n.stat.cversion = 3; // three creates
        n.children.insert("a".into()); // one still present: two deleted
        assert_eq!(n.client_stat().cversion, 5);
        assert_eq!(n.client_stat().num_children, 1);
    }

    #[test]
    fn owner_kinds() {
        assert_eq!(NodeKind::from_owner(0), NodeKind::Persistent);
        assert_eq!(NodeKind::from_owner(5), NodeKind::Ephemeral(5));
        assert_eq!(NodeKind::from_owner(i64::MIN), NodeKind::Container);
        let ttl = zk_proto::create_mode::ttl_to_ephemeral_owner(100).unwrap();
        assert_eq!(NodeKind::from_owner(ttl), NodeKind::Ttl(100));
        let mut n = DataNode::default();
        n.stat.ephemeral_owner = ttl;
        assert_eq!(n.client_stat().ephemeral_owner, 0);
    }
}
