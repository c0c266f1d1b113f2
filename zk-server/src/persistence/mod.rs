//! On-disk persistence in Apache ZooKeeper 3.8's exact formats, so a data directory can be
//! moved between this server and Apache's in both directions.
//!
//! - [`txn_log`]: `log.<zxid>` files, group-committed appends, torn-tail detection.
//! - [`snapshot`]: `snapshot.<zxid>` files and [`SnapshotWriter`] for background snapshots.
//! - [`snapshot_reader`]: reading a snapshot file as a stream into a [`SnapshotSink`]
//!   (a restart builds the tree as the file is read, see `crate::database_builder`).
//! - [`epoch_file`]: the ensemble's `acceptedEpoch` / `currentEpoch`.
//! - [`Storage`]: ties them together (open/recover, append, snapshot, purge, DIFF/TRUNC).
//! - [`autopurge`]: when purges run and what they keep (`autopurge.*` settings).
//! - [`file_names`], [`adler32`]: naming and checksum details shared by the above.
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
pub mod epoch_file;
pub mod file_names;
mod fs_util;
pub mod snapshot;
pub mod snapshot_reader;
mod storage;
pub mod txn_log;

pub use autopurge::{Autopurge, PurgeTimer, MIN_SNAP_RETAIN_COUNT};
pub use epoch_file::{read_epoch_file, write_epoch_file, EpochFile};
pub use snapshot::{SnapshotCollector, SnapshotData, SnapshotStream, SnapshotWriter};
pub use snapshot_reader::{load_snapshot, SnapshotSink};
pub use storage::{Restored, Storage, StorageOptions};
pub use txn_log::SyncStats;
