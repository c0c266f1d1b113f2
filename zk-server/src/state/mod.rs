//! The replicated state, as pure data structures: the znode tree, the database (tree +
//! sessions) and how a committed txn changes it, watches and ACLs. No I/O and no clock:
//! the same code applies local commits, a leader's txns and log replay.
//!
//! - [`tree`]: the znode tree ([`tree::DataTree`]), nodes and stats, path rules, child
//!   sets that iterate in Apache's `HashSet` order.
//! - [`database`]: [`database::ZkDatabase`], the replicated state (tree + sessions).
//! - [`apply`]: [`database::ZkDatabase::apply`], a pure function of a committed txn.
//! - [`watch`]: the watch manager (one-shot, persistent, persistent-recursive).
//! - [`acl`]: ACL checks and auth providers (world, auth, digest, ip, super).
//! - [`quota`]: quota limits and the usage every write keeps up to date, as Apache 3.8.

pub mod acl;
pub mod apply;
pub mod database;
pub mod quota;
pub mod tree;
pub mod watch;
