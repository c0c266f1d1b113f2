//! The node: one task per server, standalone or ensemble member.
//!
//! A standalone server is a node without a peer ([`node::Node::start_standalone`]). Each
//! member runs the request [`crate::core::processor::Processor`] and the quorum peer
//! in one node task, the peer's network and disk thread through
//! [`crate::host::quorum::driver::QuorumIo`]: the leader proposes its clients' writes,
//! followers forward theirs as REQUEST packets and answer the client when the txn commits
//! locally.
//!
//! - [`request_packet`]: the REQUEST packet a follower forwards a write in.
//! - [`replica`]: snapshot walks the node task carries out, and the disk thread's appender.
//! - [`node`]: one node: client listener, and the node task owning processor, disk and
//!   (for a member) peer.
//! - [`from_config`]: one member started from zoo.cfg (the `zk-server` binary).

pub mod from_config;
pub mod node;
pub mod replica;
pub mod request_packet;
