//! The server as an ensemble member.
//!
//! Each member runs the request [`crate::core::processor::Processor`] behind the quorum
//! driver ([`crate::host::quorum::driver`]): the leader proposes its clients' writes,
//! followers forward theirs as REQUEST packets and answer the client when the txn commits
//! locally.
//!
//! - [`request_packet`]: the REQUEST packet a follower forwards a write in.
//! - [`replica`]: the core as the driver's `Replica` (commits, role changes, SNAP).
//! - [`node`]: one member: client listener, node task, quorum peer.
//! - [`from_config`]: one member started from zoo.cfg (the `zk-server` binary).

pub mod from_config;
pub mod node;
pub mod replica;
pub mod request_packet;
