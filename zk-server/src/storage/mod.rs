//! Storage: everything that puts the database on disk or on the wire as a snapshot, in
//! Apache ZooKeeper 3.8's exact formats, so a data directory can be moved between this
//! server and Apache's in both directions.
//!
//! Files:
//! - [`txn_log`]: `log.<zxid>` files, group-committed appends, torn-tail detection.
//! - [`snapshot`]: `snapshot.<zxid>` files and [`SnapshotWriter`] for background snapshots.
//! - [`snapshot_reader`]: reading a snapshot file as a stream into a [`SnapshotSink`]
//!   (a restart builds the tree as the file is read, see `crate::storage::database_builder`).
//! - [`epoch_file`]: the ensemble's `acceptedEpoch` / `currentEpoch`.
//! - [`Storage`] (`data_dir.rs`): ties them together (open/recover, append, snapshot, purge,
//!   DIFF/TRUNC).
//! - [`autopurge`]: when purges run and what they keep (`autopurge.*` settings).
//! - [`file_names`], [`adler32`]: naming and checksum details shared by the above.
//!
//! The database in and out of those files:
//! - [`snapshot_walk`]: serializes the tree a slice at a time (fuzzy snapshots, SNAPs).
//! - [`database_builder`]: builds a database node by node as a snapshot is read.
//! - [`snap_stream`]: the database a leader streams after SNAP (Apache's format).
//!
//! Who writes them:
//! - [`disk`]: [`NodeDisk`], the one storage of standalone servers and ensemble members:
//!   epochs, snapshots and txn log (in memory, or Apache's files), the snapshot policy
//!   (Apache's randomised `snapCount` / `snapSizeLimitInKb`), autopurge.
//! - [`disk_thread`]: the one disk thread: txn log appends off the node task (group
//!   commit), snapshot file writes and purges in order with them.
//!
//! Conventions callers must follow, as Apache does:
//! - Snapshot nodes are in pre-order with the root's path `""`; ACL index -1 is the open
//!   ACL and is not listed in [`SnapshotData::acls`].
//! - Txn zxids passed to [`Storage::append`] increase strictly; one call is one fsync, so
//!   hand it every txn that is ready at once.
//! - A fresh directory gets `snapshot.0` of [`SnapshotData::initial`] at open, and every
//!   open starts a new log file at the next append, exactly like Apache.

pub mod adler32;
pub mod autopurge;
mod data_dir;
pub mod database_builder;
pub mod disk;
pub mod disk_thread;
pub mod epoch_file;
pub mod fault;
pub mod file_names;
pub(crate) mod fs_util;
pub mod snap_stream;
pub mod snapshot;
pub mod snapshot_reader;
pub mod snapshot_walk;
pub mod txn_log;

/// The names standalone servers' stores had before they became a [`NodeDisk`] (kept for
/// code written against them).
pub mod store {
    pub use super::disk::{from_snapshot, to_snapshot, MemoryState, MemoryStore, Recovered};
    pub use super::fs_util::dir_size;
}

pub use autopurge::{Autopurge, PurgeTimer, MIN_SNAP_RETAIN_COUNT};
pub use data_dir::{Restored, Storage, StorageOptions};
pub use disk::{DiskStats, MemoryStore, NodeDisk, Recovered};
pub use epoch_file::{read_epoch_file, write_epoch_file, EpochFile};
pub use snapshot::{SnapshotCollector, SnapshotData, SnapshotStream, SnapshotWriter};
pub use snapshot_reader::{load_snapshot, SnapshotSink};
pub use txn_log::SyncStats;
