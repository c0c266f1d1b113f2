//! Request and response bodies of the single-node operations.

use bytes::Bytes;

use crate::data::{Acl, ClientInfo, Stat};
use crate::error_code::ErrorCode;
use crate::jute::jute_record;

jute_record! {
    /// create (1), create2 (15), createContainer (19).
    pub struct CreateRequest {
        /// Path (sequence suffix appended by the server for sequential modes).
        pub path: String,
        /// Node data; null is distinct from empty on the wire.
        pub data: Option<Bytes>,
        /// ACL of the new node.
        pub acl: Vec<Acl>,
        /// A [`crate::CreateMode`] flags value.
        pub flags: i32,
    }
}

jute_record! {
    /// createTTL (21).
    pub struct CreateTtlRequest {
        /// Path.
        pub path: String,
        /// Node data.
        pub data: Option<Bytes>,
        /// ACL.
        pub acl: Vec<Acl>,
        /// A TTL [`crate::CreateMode`] flags value.
        pub flags: i32,
        /// Time to live in ms.
        pub ttl: i64,
    }
}

jute_record! {
    /// Reply of create.
    pub struct CreateResponse {
        /// Actual path created.
        pub path: String,
    }
}

jute_record! {
    /// Reply of create2, createContainer, createTTL.
    pub struct Create2Response {
        /// Actual path created.
        pub path: String,
        /// Its Stat.
        pub stat: Stat,
    }
}

jute_record! {
    /// delete (2).
    pub struct DeleteRequest {
        /// Path.
        pub path: String,
        /// Expected version, -1 for any.
        pub version: i32,
    }
}

jute_record! {
    /// exists (3), getData (4), getChildren (8), getChildren2 (12): a path and a watch flag.
    pub struct PathWatchRequest {
        /// Path.
        pub path: String,
        /// Register a one-shot watch.
        pub watch: bool,
    }
}

/// exists (3).
pub type ExistsRequest = PathWatchRequest;
/// getData (4).
pub type GetDataRequest = PathWatchRequest;
/// getChildren (8).
pub type GetChildrenRequest = PathWatchRequest;
/// getChildren2 (12).
pub type GetChildren2Request = PathWatchRequest;

jute_record! {
    /// Reply carrying only a Stat: exists, setData, setACL.
    pub struct StatResponse {
        /// The node's Stat.
        pub stat: Stat,
    }
}

/// Reply of exists.
pub type ExistsResponse = StatResponse;
/// Reply of setData.
pub type SetDataResponse = StatResponse;
/// Reply of setACL.
pub type SetAclResponse = StatResponse;

jute_record! {
    /// Reply of getData.
    pub struct GetDataResponse {
        /// Node data (null for nodes created with null data).
        pub data: Option<Bytes>,
        /// Its Stat.
        pub stat: Stat,
    }
}

jute_record! {
    /// setData (5).
    pub struct SetDataRequest {
        /// Path.
        pub path: String,
        /// New data.
        pub data: Option<Bytes>,
        /// Expected version, -1 for any.
        pub version: i32,
    }
}

jute_record! {
    /// Requests that carry only a path: getACL (6), sync (9), getAllChildrenNumber (104),
    /// getEphemerals (103, a path prefix).
    pub struct PathRequest {
        /// Path (or prefix for getEphemerals).
        pub path: String,
    }
}

/// getACL (6).
pub type GetAclRequest = PathRequest;
/// sync (9).
pub type SyncRequest = PathRequest;
/// Reply of sync.
pub type SyncResponse = PathRequest;
/// getAllChildrenNumber (104).
pub type GetAllChildrenNumberRequest = PathRequest;
/// getEphemerals (103).
pub type GetEphemeralsRequest = PathRequest;

jute_record! {
    /// Reply of getACL.
    pub struct GetAclResponse {
        /// The ACL.
        pub acl: Vec<Acl>,
        /// The node's Stat.
        pub stat: Stat,
    }
}

jute_record! {
    /// setACL (7).
    pub struct SetAclRequest {
        /// Path.
        pub path: String,
        /// New ACL.
        pub acl: Vec<Acl>,
        /// Expected ACL version (aversion), -1 for any.
        pub version: i32,
    }
}

jute_record! {
    /// Reply of getChildren.
    pub struct GetChildrenResponse {
        /// Child names (not paths).
        pub children: Vec<String>,
    }
}

jute_record! {
    /// Reply of getChildren2.
    pub struct GetChildren2Response {
        /// Child names.
        pub children: Vec<String>,
        /// The parent's Stat.
        pub stat: Stat,
    }
}

jute_record! {
    /// check (13), used inside multi.
    pub struct CheckVersionRequest {
        /// Path.
        pub path: String,
        /// Expected version.
        pub version: i32,
    }
}

jute_record! {
    /// reconfig (16). Null strings mean "not given".
    pub struct ReconfigRequest {
        /// Servers to add.
        pub joining_servers: Option<String>,
        /// Server ids to remove.
        pub leaving_servers: Option<String>,
        /// Whole new membership (non-incremental).
        pub new_members: Option<String>,
        /// Expected current config version, -1 for any.
        pub cur_config_id: i64,
    }
}

jute_record! {
    /// Reply of getAllChildrenNumber.
    pub struct GetAllChildrenNumberResponse {
        /// Number of descendants.
        pub total_number: i32,
    }
}

jute_record! {
    /// Reply of getEphemerals.
    pub struct GetEphemeralsResponse {
        /// Paths of the session's ephemerals under the prefix.
        pub ephemerals: Vec<String>,
    }
}

jute_record! {
    /// Reply of whoAmI.
    pub struct WhoAmIResponse {
        /// Identities of the session.
        pub client_info: Vec<ClientInfo>,
    }
}

jute_record! {
    /// sasl (102) request and reply.
    pub struct SaslToken {
        /// Opaque SASL token (Apache sends null on failure).
        pub token: Option<Bytes>,
    }
}

jute_record! {
    /// Error result of a multi op.
    pub struct ErrorResponse {
        /// The code.
        pub err: ErrorCode,
    }
}
