//! Request type numbers (`ZooDefs.OpCode`).

use crate::int_enum::int_enum;

int_enum! {
    /// The `type` of a request header, a multi op or a txn.
    pub enum OpCode {
        /// Watch notification (server to client only).
        Notification = 0,
        /// Create a node.
        Create = 1,
        /// Delete a node.
        Delete = 2,
        /// Stat a node, optionally watching it.
        Exists = 3,
        /// Read node data.
        GetData = 4,
        /// Write node data.
        SetData = 5,
        /// Read a node's ACL.
        GetAcl = 6,
        /// Replace a node's ACL.
        SetAcl = 7,
        /// List children.
        GetChildren = 8,
        /// Flush the leader channel up to this point.
        Sync = 9,
        /// Session heartbeat.
        Ping = 11,
        /// List children with the parent's Stat.
        GetChildren2 = 12,
        /// Version check (inside multi).
        Check = 13,
        /// Atomic transaction of several ops.
        Multi = 14,
        /// Create returning the Stat.
        Create2 = 15,
        /// Dynamic reconfiguration.
        Reconfig = 16,
        /// Ask whether a watch is registered.
        CheckWatches = 17,
        /// Remove registered watches.
        RemoveWatches = 18,
        /// Create a container node.
        CreateContainer = 19,
        /// Delete a container node (server internal).
        DeleteContainer = 20,
        /// Create a node with a TTL.
        CreateTtl = 21,
        /// Several reads in one round trip.
        MultiRead = 22,
        /// Add authentication (xid -4).
        Auth = 100,
        /// Re-register watches after reconnect (xid -8).
        SetWatches = 101,
        /// SASL token exchange.
        Sasl = 102,
        /// List ephemerals of the session.
        GetEphemerals = 103,
        /// Count all descendants.
        GetAllChildrenNumber = 104,
        /// Re-register watches including persistent ones (xid -8).
        SetWatches2 = 105,
        /// Add a persistent or persistent-recursive watch.
        AddWatch = 106,
        /// List the authenticated identities of the session.
        WhoAmI = 107,
        /// Session creation (txn only).
        CreateSession = -10,
        /// Close the session.
        CloseSession = -11,
        /// Error result (txn and multi).
        Error = -1,
    }
}

impl OpCode {
    /// True for requests that change the tree and therefore become txns.
    pub fn is_write(self) -> bool {
        matches!(
            self,
            OpCode::Create
                | OpCode::Create2
                | OpCode::CreateContainer
                | OpCode::CreateTtl
                | OpCode::Delete
                | OpCode::DeleteContainer
                | OpCode::SetData
                | OpCode::SetAcl
                | OpCode::Check
                | OpCode::Multi
                | OpCode::Reconfig
                | OpCode::CreateSession
                | OpCode::CloseSession
        )
    }
}
