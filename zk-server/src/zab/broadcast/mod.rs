//! ZAB: discovery (FOLLOWERINFO / LEADERINFO / ACKEPOCH), synchronisation (DIFF / TRUNC /
//! SNAP, NEWLEADER, UPTODATE) and broadcast (PROPOSAL / ACK / COMMIT / INFORM, PING).
//!
//! - [`history`]: the replicated history as this server holds it (epochs, logged, durable
//!   and applied zxids, the recent committed txns used for DIFF).
//! - [`sync`]: how a leader brings a learner up to date (the DIFF / TRUNC / SNAP choice).
//! - [`leader`]: the leader, with one handler per learner connection.
//! - [`learner`]: what followers and observers share (registration, sync, timeouts);
//!   [`follower`] and [`observer`] hold what differs in broadcast.
//! - [`packets`]: building and parsing the QuorumPacket payloads.

pub mod follower;
pub mod history;
pub mod leader;
pub mod learner;
pub mod observer;
pub mod packets;
pub mod sync;

use bytes::Bytes;

pub use history::{DiskState, History};
pub use leader::Leader;
pub use learner::Learner;

use super::Zxid;

/// A txn as replicated: its zxid and its serialized `TxnHeader` + txn record (+ digest),
/// exactly the PROPOSAL / INFORM payload. The cores never look inside `data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    /// The txn's zxid.
    pub zxid: Zxid,
    /// Serialized txn.
    pub data: Bytes,
}

/// Why a role ended (the peer then goes back to looking).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleEnded(pub String);

impl std::fmt::Display for RoleEnded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Result of feeding a role: `Err` means the role is over.
pub type RoleResult<T = ()> = Result<T, RoleEnded>;

/// Shorthand for ending a role with a reason.
pub(crate) fn end<T>(why: impl Into<String>) -> RoleResult<T> {
    Err(RoleEnded(why.into()))
}

/// What a role needs from its peer for one step: the time, the config, the history and
/// where to put actions.
pub struct Ctx<'a> {
    /// The driver's current time.
    pub now: super::Millis,
    /// Ensemble config.
    pub cfg: &'a super::QuorumConfig,
    /// This server's history.
    pub history: &'a mut History,
    /// Actions produced so far.
    pub out: &'a mut Vec<super::Action>,
}

#[cfg(test)]
mod tests;
