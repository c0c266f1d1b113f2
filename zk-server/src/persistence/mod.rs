//! On-disk persistence in Apache ZooKeeper 3.8's exact formats, so a data directory can be
//! moved between this server and Apache's in both directions.
//!
//! - [`txn_log`]: `log.<zxid>` files, group-committed appends, torn-tail detection.
//! - [`snapshot`]: `snapshot.<zxid>` files and [`SnapshotWriter`] for background snapshots.
//! - [`epoch_file`]: the ensemble's `acceptedEpoch` / `currentEpoch`.
//! - [`Storage`]: ties them together (open/recover, append, snapshot, purge, DIFF/TRUNC).
//! - [`file_names`], [`adler32`]: naming and checksum details shared by the above.

pub mod adler32;
pub mod epoch_file;
pub mod file_names;
mod fs_util;
pub mod snapshot;
mod storage;
pub mod txn_log;

pub use epoch_file::{read_epoch_file, write_epoch_file, EpochFile};
pub use snapshot::{SnapshotData, SnapshotWriter};
pub use storage::{Restored, Storage, StorageOptions};
pub use txn_log::SyncStats;
