//! A ZooKeeper server: standalone or as an ensemble member, wire- and disk-compatible with
//! Apache ZooKeeper 3.8, and embeddable in-process for tests.
//!
//! # Layout
//!
//! The request pipeline is prepare -> persist -> apply -> reply. Everything up to the
//! network layer is sans-IO (no sockets, no clock reads; time is an argument):
//!
//! - [`config`]: zoo.cfg keys, `-D` properties, `myid`.
//! - [`tree`]: the znode tree ([`tree::DataTree`]), nodes and stats, path rules, child
//!   sets that iterate in Apache's `HashSet` order.
//! - [`acl`]: ACL checks and auth providers (world, auth, digest, ip, super).
//! - [`session`]: session ids, passwords, tick-bucket expiry.
//! - [`watch`]: the watch manager (one-shot, persistent, persistent-recursive).
//! - [`database`]: [`database::ZkDatabase`], the replicated state (tree + sessions).
//! - [`database_builder`]: a database built node by node as a snapshot file is read.
//! - [`apply`]: [`database::ZkDatabase::apply`], a pure function of a committed txn; used
//!   for local commits, for txns from an ensemble leader and for log replay.
//! - [`pending`]: outstanding changes of prepared-but-uncommitted txns.
//! - [`prep`]: request -> txn (validation, ACLs, zxid), Apache's PrepRequestProcessor.
//! - [`read`]: read requests and SetWatches.
//! - [`pipeline`]: [`pipeline::Processor`], the core state machine with per-session FIFO
//!   queues and a pluggable commit path: standalone and leader cores emit
//!   [`pipeline::Output::Propose`] and get the txns back through
//!   [`pipeline::Processor::committed`]; a follower core
//!   ([`pipeline::WriteMode::Forward`]) emits [`pipeline::Output::Forward`] and the leader
//!   prepares with [`pipeline::Processor::prepare_forwarded`].
//! - [`store`]: where committed txns go: [`store::TxnStore`] over the on-disk
//!   [`persistence`] layer, or in memory.
//! - [`stats`]: counters for the four-letter words.
//! - [`net`]: the thin tokio layer: listener, connections, four-letter words.
//! - [`server`]: the embeddable [`Server`] / [`ServerHandle`] (start, address, stop).
//! - [`persistence`]: Apache-format txn log and snapshots.
//! - [`quorum`]: the ensemble.
//! - [`ensemble`]: the server as an ensemble member; an embedded in-process ensemble.
#![deny(missing_docs)]

pub mod acl;
pub mod apply;
pub mod config;
pub mod database;
pub mod database_builder;
pub mod ensemble;
pub mod error;
pub mod net;
pub mod pending;
pub mod persistence;
pub mod pipeline;
pub mod prep;
pub mod quorum;
pub mod read;
pub mod server;
pub mod session;
pub mod stats;
pub mod store;
pub mod tree;
pub mod watch;

pub use config::ServerConfig;
pub use database::ZkDatabase;
pub use error::{Result, ServerError};
pub use pipeline::{Output, Processor};
pub use server::{Server, ServerHandle};
