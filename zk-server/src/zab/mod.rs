//! The ensemble layer: fast leader election and ZAB atomic broadcast.
//!
//! Everything here is sans-IO: state machines fed messages, ticks and disk confirmations
//! (with the current time passed in), returning [`Action`]s to perform. The same cores run
//! in the deterministic simulator ([`sim`]) and behind the tokio driver
//! ([`crate::host::quorum`]).
//!
//! Layout:
//! - [`zxid`]: zxid arithmetic (epoch / counter).
//! - [`config`]: ensemble membership (`server.N=` lines), timing, the quorum rule.
//! - [`vote`]: votes and peer states.
//! - [`election`]: the FastLeaderElection core.
//! - [`broadcast`]: discovery, synchronisation and broadcast (leader, learners, sync planning,
//!   the replicated history).
//! - [`action`]: what the cores ask their driver to do.
//! - [`peer`]: one ensemble member (QuorumPeer): election and roles glued together.
//! - [`sim`]: the deterministic simulator and its invariant checker.
//!
//! Plugging in the server core: build a [`DiskState`] from the persistence layer
//! (acceptedEpoch / currentEpoch files, last zxid, the last committed-log-size txns), feed
//! [`QuorumPeer`] its inputs and perform its [`Action`]s in order: `Persist` appends to
//! the txn log (report fsync with `on_persisted`), `Deliver` applies a committed
//! `TxnEntry` to the data tree, `Truncate` / `InstallSnapshot` reload it, `SendSnapshot`
//! serializes it, `StateChanged { serving: true }` opens the client port. A leader's
//! pipeline serializes each txn with `next_zxid()` and hands it to `propose`; learners
//! forward writes with `forward` (REQUEST packets) and report session touches with
//! `touch_session`; the leader sees them as `LearnerRequest` / `SessionsTouched` /
//! `Revalidate` actions and answers syncs with `sync_request`.

pub mod action;
pub mod broadcast;
pub mod config;
pub mod election;
pub mod peer;
pub mod sim;
pub mod vote;
pub mod zxid;

pub use action::{Action, ConnId, ZabMessage};
pub use broadcast::{DiskState, History, Proposal};
pub use config::{LearnerType, QuorumConfig, QuorumServer};
pub use election::Election;
pub use peer::QuorumPeer;
pub use vote::{PeerState, Vote};
pub use zxid::Zxid;

/// A server id (`myid`).
pub type Sid = i64;

/// Milliseconds on the driver's monotonic clock (the cores never read a clock).
pub type Millis = u64;
