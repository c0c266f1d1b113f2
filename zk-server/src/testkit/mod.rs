//! In-process harnesses for tests, on loopback ports they bind themselves.
//!
//! - [`server`]: [`TestServer`], one standalone server in its own temp dir with defaults
//!   that admit ordinary session timeouts; the one to start with.
//! - [`ensemble`]: [`Ensemble`], N client-serving zk-server members (start, find the
//!   leader, kill / restart / isolate a member, heal), for client and failover tests.
//! - [`quorum_ensemble`]: quorum peers alone over a txn-list database, for protocol
//!   tests of election and broadcast.
//! - [`txn_list_snapshot`]: that database as a SNAP body.
//! - [`txn_payload`]: the real txns those protocol tests replicate.

pub mod ensemble;
pub mod quorum_ensemble;
pub mod server;
pub mod txn_list_snapshot;
pub mod txn_payload;

pub use ensemble::Ensemble;
pub use server::TestServer;

/// Makes every txn log fdatasync under `dir` fail with `errno` from now on, in this
/// process (a failing disk, for tests of what a server does then); see
/// [`crate::storage::fault`].
pub fn fail_txn_log_syncs_under(dir: &std::path::Path, errno: i32) {
    crate::storage::fault::fail_syncs_under(dir, errno);
}

/// Ends the faults [`fail_txn_log_syncs_under`] registered for `dir`.
pub fn heal_txn_log_syncs_under(dir: &std::path::Path) {
    crate::storage::fault::clear_under(dir);
}

/// Makes the disk under `dir` full, in this process: every txn log and snapshot write
/// there fails with `ENOSPC` after writing part of its bytes (see
/// [`crate::storage::fault`]), until [`free_disk_under`].
pub fn fill_disk_under(dir: &std::path::Path) {
    crate::storage::fault::fail_writes_under(dir, 28);
}

/// Space returns under `dir` (ends [`fill_disk_under`]).
pub fn free_disk_under(dir: &std::path::Path) {
    crate::storage::fault::clear_writes_under(dir);
}

pub use crate::storage::fault::{power_loss, track_durability_under, PowerLoss};
