//! Watch notifications and watch re-registration records.

use crate::int_enum::int_enum;
use crate::jute::jute_record;

int_enum! {
    /// What happened to the watched node (`Watcher.Event.EventType`).
    pub enum EventType {
        /// A session state change, not a node event.
        None = -1,
        /// The node was created.
        NodeCreated = 1,
        /// The node was deleted.
        NodeDeleted = 2,
        /// The node's data changed.
        NodeDataChanged = 3,
        /// The node's child list changed.
        NodeChildrenChanged = 4,
        /// A data watch was removed.
        DataWatchRemoved = 5,
        /// A child watch was removed.
        ChildWatchRemoved = 6,
        /// A persistent watch was removed.
        PersistentWatchRemoved = 7,
    }
}

int_enum! {
    /// Session state carried by a notification (`Watcher.Event.KeeperState`).
    pub enum KeeperState {
        /// Disconnected from the server.
        Disconnected = 0,
        /// Connected (read-write).
        SyncConnected = 3,
        /// Authentication failed.
        AuthFailed = 4,
        /// Connected to a read-only server.
        ConnectedReadOnly = 5,
        /// SASL authenticated.
        SaslAuthenticated = 6,
        /// The client closed the session.
        Closed = 7,
        /// The session expired.
        Expired = -112,
    }
}

int_enum! {
    /// Which watches a checkWatches/removeWatches request addresses.
    pub enum WatcherType {
        /// Child watches.
        Children = 1,
        /// Data and exist watches.
        Data = 2,
        /// Any kind.
        Any = 3,
        /// Persistent watches.
        Persistent = 4,
        /// Persistent recursive watches.
        PersistentRecursive = 5,
    }
}

int_enum! {
    /// The mode of an addWatch request.
    pub enum AddWatchMode {
        /// Fires on the node itself, repeatedly.
        Persistent = 0,
        /// Fires on the node and every descendant, repeatedly.
        PersistentRecursive = 1,
    }
}

jute_record! {
    /// A watch notification, sent with xid -1.
    pub struct WatcherEvent {
        /// An [`EventType`] number.
        pub event_type: EventType,
        /// A [`KeeperState`] number.
        pub state: KeeperState,
        /// The node (client-visible, chroot not yet stripped).
        pub path: String,
    }
}

jute_record! {
    /// Watches re-registered after a reconnect (opcode 101, xid -8).
    pub struct SetWatches {
        /// The last zxid the client saw; the server fires anything newer.
        pub relative_zxid: i64,
        /// Paths with data watches.
        pub data_watches: Vec<String>,
        /// Paths with exist watches.
        pub exist_watches: Vec<String>,
        /// Paths with child watches.
        pub child_watches: Vec<String>,
    }
}

jute_record! {
    /// Watches re-registered after a reconnect, persistent ones included (opcode 105).
    pub struct SetWatches2 {
        /// The last zxid the client saw; the server fires anything newer.
        pub relative_zxid: i64,
        /// Paths with data watches.
        pub data_watches: Vec<String>,
        /// Paths with exist watches.
        pub exist_watches: Vec<String>,
        /// Paths with child watches.
        pub child_watches: Vec<String>,
        /// Paths with persistent watches.
        pub persistent_watches: Vec<String>,
        /// Paths with persistent recursive watches.
        pub persistent_recursive_watches: Vec<String>,
    }
}

jute_record! {
    /// Body of checkWatches (17) and removeWatches (18).
    pub struct RemoveWatchesRequest {
        /// Watched node.
        pub path: String,
        /// A [`WatcherType`] number.
        pub watcher_type: WatcherType,
    }
}

jute_record! {
    /// Body of addWatch (106).
    pub struct AddWatchRequest {
        /// Node to watch.
        pub path: String,
        /// An [`AddWatchMode`] number.
        pub mode: AddWatchMode,
    }
}
