//! The ensemble layer: fast leader election and ZAB atomic broadcast.
//!
//! Everything here except [`net`] is sans-IO: state machines fed messages, ticks and disk
//! confirmations (with the current time passed in), returning [`Action`]s to perform. The
//! same cores run in the deterministic simulator ([`sim`]) and behind the tokio driver
//! ([`net`]).
//!
//! Layout:
//! - [`zxid`]: zxid arithmetic (epoch / counter).
//! - [`config`]: ensemble membership (`server.N=` lines), timing, the quorum rule.
//! - [`vote`]: votes and peer states.
//! - [`election`]: the FastLeaderElection core.
//! - [`zab`]: discovery, synchronisation and broadcast (leader, learners, sync planning,
//!   the replicated history).
//! - [`action`]: what the cores ask their driver to do.
//! - [`peer`]: one ensemble member (QuorumPeer): election and roles glued together.
//! - [`sim`]: the deterministic simulator and its invariant checker.
//! - [`net`]: the tokio wire layer (election connections, leader-learner framing).

pub mod action;
pub mod config;
pub mod election;
pub mod net;
pub mod peer;
pub mod sim;
pub mod vote;
pub mod zab;
pub mod zxid;

pub use action::{Action, ConnId, ZabMessage};
pub use config::{LearnerType, QuorumConfig, QuorumServer};
pub use election::Election;
pub use peer::QuorumPeer;
pub use vote::{PeerState, Vote};
pub use zab::{DiskState, History, Proposal};
pub use zxid::Zxid;

/// A server id (`myid`).
pub type Sid = i64;

/// Milliseconds on the driver's monotonic clock (the cores never read a clock).
pub type Millis = u64;
