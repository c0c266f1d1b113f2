//! In-process harnesses for tests, on loopback ports they bind themselves.
//!
//! - [`server`]: [`TestServer`], one standalone server in its own temp dir with defaults
//!   that admit ordinary session timeouts; the one to start with.
//! - [`ensemble`]: [`Ensemble`], N client-serving zk-server members (start, find the
//!   leader, kill / restart / isolate a member, heal), for client and failover tests.
//! - [`quorum_ensemble`]: quorum peers alone over a txn-list database, for protocol
//!   tests of election and broadcast.
//! - [`txn_list_snapshot`]: that database as a SNAP body.

pub mod ensemble;
pub mod quorum_ensemble;
pub mod server;
pub mod txn_list_snapshot;

pub use ensemble::Ensemble;
pub use server::TestServer;
