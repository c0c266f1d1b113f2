//! Records of Apache's on-disk formats: file headers and snapshot nodes.

use bytes::Bytes;

use crate::data::StatPersisted;
use crate::jute::jute_record;

/// Magic of a txn log file: "ZKLG".
pub const TXNLOG_MAGIC: i32 = 0x5a4b_4c47;
/// Magic of a snapshot file: "ZKSN".
pub const SNAP_MAGIC: i32 = 0x5a4b_534e;
/// Version of both file formats.
pub const FILE_VERSION: i32 = 2;
/// Byte that ends each txn log entry ('B').
pub const LOG_ENTRY_END: u8 = 0x42;

jute_record! {
    /// First record of txn logs and snapshots.
    pub struct FileHeader {
        /// [`TXNLOG_MAGIC`] or [`SNAP_MAGIC`].
        pub magic: i32,
        /// [`FILE_VERSION`].
        pub version: i32,
        /// Always 0.
        pub dbid: i64,
    }
}

jute_record! {
    /// A node as a snapshot stores it, after its path.
    pub struct DataNodeRecord {
        /// Data.
        pub data: Option<Bytes>,
        /// Index into the snapshot's ACL cache.
        pub acl: i64,
        /// Persisted Stat.
        pub stat: StatPersisted,
    }
}
