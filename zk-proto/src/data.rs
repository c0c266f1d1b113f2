//! Records of `org.apache.zookeeper.data`: identities, ACLs and node metadata.

use crate::jute::jute_record;
use crate::perms::Perms;

jute_record! {
    /// An identity: `scheme:id`, e.g. `world:anyone` or `digest:user:hash`.
    pub struct Id {
        /// Auth scheme (`world`, `auth`, `digest`, `ip`, `super`, ...).
        pub scheme: String,
        /// Scheme-specific identity.
        pub id: String,
    }
}

impl Id {
    /// Builds an identity.
    pub fn new(scheme: impl Into<String>, id: impl Into<String>) -> Self {
        Id {
            scheme: scheme.into(),
            id: id.into(),
        }
    }
}

jute_record! {
    /// One ACL entry: permissions granted to an identity.
    pub struct Acl {
        /// Permission bits, see [`Perms`].
        pub perms: i32,
        /// Who gets them.
        pub id: Id,
    }
}

impl Acl {
    /// Builds an entry.
    pub fn new(perms: Perms, scheme: &str, id: &str) -> Self {
        Acl {
            perms: perms.0,
            id: Id::new(scheme, id),
        }
    }

    /// `world:anyone` with every permission (`Ids.OPEN_ACL_UNSAFE`).
    pub fn open_unsafe() -> Vec<Acl> {
        vec![Acl::new(Perms::ALL, "world", "anyone")]
    }

    /// Everything for the creator's authenticated ids (`Ids.CREATOR_ALL_ACL`).
    pub fn creator_all() -> Vec<Acl> {
        vec![Acl::new(Perms::ALL, "auth", "")]
    }

    /// Read-only for everyone (`Ids.READ_ACL_UNSAFE`).
    pub fn read_unsafe() -> Vec<Acl> {
        vec![Acl::new(Perms::READ, "world", "anyone")]
    }
}

jute_record! {
    /// Node metadata as clients see it.
    pub struct Stat {
        /// Zxid of the create.
        pub czxid: i64,
        /// Zxid of the last data change.
        pub mzxid: i64,
        /// Create time, ms since the epoch.
        pub ctime: i64,
        /// Last data change time.
        pub mtime: i64,
        /// Data version.
        pub version: i32,
        /// Child list version.
        pub cversion: i32,
        /// ACL version.
        pub aversion: i32,
        /// Owning session of an ephemeral, or the container/TTL marker, else 0.
        pub ephemeral_owner: i64,
        /// Length of the data.
        pub data_length: i32,
        /// Number of children.
        pub num_children: i32,
        /// Zxid of the last child list change.
        pub pzxid: i64,
    }
}

jute_record! {
    /// Node metadata as snapshots store it (no dataLength / numChildren).
    pub struct StatPersisted {
        /// Zxid of the create.
        pub czxid: i64,
        /// Zxid of the last data change.
        pub mzxid: i64,
        /// Create time.
        pub ctime: i64,
        /// Last data change time.
        pub mtime: i64,
        /// Data version.
        pub version: i32,
        /// Child list version.
        pub cversion: i32,
        /// ACL version.
        pub aversion: i32,
        /// Owner / container / TTL marker.
        pub ephemeral_owner: i64,
        /// Zxid of the last child list change.
        pub pzxid: i64,
    }
}

jute_record! {
    /// One authenticated identity of a session (whoAmI).
    pub struct ClientInfo {
        /// Auth scheme.
        pub auth_scheme: String,
        /// User name in that scheme.
        pub user: String,
    }
}
