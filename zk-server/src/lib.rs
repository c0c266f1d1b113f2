//! A ZooKeeper server: standalone or as an ensemble member, wire- and disk-compatible with
//! Apache ZooKeeper 3.8, and embeddable in-process for tests.
//!
//! # Layout
//!
//! One folder per layer; everything but `host` is sans-IO (no sockets, no clock reads;
//! time is an argument), so tests and the simulator drive it deterministically.
//!
//! - [`config`]: zoo.cfg keys, `-D` properties, `myid`; what fails closed.
//! - [`state`]: the replicated state: znode tree, database, how a txn applies, watches,
//!   ACLs.
//! - [`core`]: the request processor (prepare -> persist -> apply -> reply), sessions and
//!   their expiry.
//! - [`storage`]: Apache-format txn log and snapshots, the one store of every node
//!   (`NodeDisk`, memory or disk) and its one disk thread, snapshot walks and SNAP
//!   streams, autopurge.
//! - [`zab`]: the ensemble protocols: leader election and atomic broadcast as state
//!   machines, the quorum peer, the deterministic simulator.
//! - [`host`]: all tokio code: the client port, the node task (a standalone [`Server`] is
//!   a node without a peer; an ensemble member's owns its quorum peer), the quorum wire
//!   layer and how its links are secured (TLS, quorum SASL).
//! - [`admin`]: counters, four-letter words, AdminServer commands, Prometheus exposition.
//! - [`testkit`]: in-process harnesses ([`Ensemble`]).
#![deny(missing_docs)]

pub mod admin;
pub mod config;
pub mod core;
pub mod error;
pub mod host;
pub mod state;
pub mod storage;
pub mod testkit;
pub mod zab;

pub use crate::core::processor::{Output, Processor};
pub use config::ServerConfig;
pub use error::{Result, ServerError};
pub use host::server::{Server, ServerHandle};
pub use state::database::ZkDatabase;
pub use testkit::Ensemble;
