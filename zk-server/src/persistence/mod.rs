//! Apache-format txn log and snapshots (being built).
