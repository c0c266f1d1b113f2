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

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;
use zk_proto::txn::{Txn, TxnEntry};
use zk_proto::OpCode;

pub use history::{DiskState, History};
pub use leader::Leader;
pub use learner::Learner;

use super::config::ConfigText;
use super::{QuorumConfig, Sid, Zxid};

/// A txn as replicated: its zxid and its serialized `TxnHeader` + txn record (+ digest),
/// exactly the PROPOSAL / INFORM payload. Leaders never look inside `data`; learners
/// decode it before logging it ([`decode_leader_txn`]).
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
    /// Ensemble config (the committed one: Apache's quorumVerifier).
    pub cfg: &'a super::QuorumConfig,
    /// This server's history.
    pub history: &'a mut History,
    /// Actions produced so far.
    pub out: &'a mut Vec<super::Action>,
    /// The config proposed but not yet committed, and configs to activate.
    pub views: &'a mut Views,
}

/// A config a role saw committed: the peer activates it once the step is over.
#[derive(Debug, Clone)]
pub struct Activation {
    /// The new committed config.
    pub config: Arc<QuorumConfig>,
    /// The leader the committing leader designated (COMMITANDACTIVATE /
    /// INFORMANDACTIVATE); `None` when the config came another way (NEWLEADER).
    pub designated: Option<Sid>,
}

/// Configs beyond the committed one, shared by the peer and its roles.
#[derive(Debug, Default, Clone)]
pub struct Views {
    /// The last config seen proposed, while newer than the committed one (Apache's
    /// lastSeenQuorumVerifier when it differs): a reconfig in progress. Proposals then
    /// need a quorum of both.
    pub next: Option<Arc<QuorumConfig>>,
    /// A config committed during the step, for the peer to activate.
    pub activate: Option<Activation>,
}

impl Views {
    /// Records a config seen proposed (PROPOSAL of a reconfig txn, NEWLEADER, the leader's
    /// own reconfig); returns whether it is news. Ignored when reconfig is disabled, as
    /// Apache's `setLastSeenQuorumVerifier`.
    pub fn see(
        &mut self,
        committed: &QuorumConfig,
        qv: QuorumConfig,
        out: &mut Vec<super::Action>,
    ) -> bool {
        if !committed.reconfig_enabled || qv.version <= committed.version {
            return false;
        }
        if self.next.as_ref().is_some_and(|n| n.version >= qv.version) {
            return false;
        }
        let qv = Arc::new(qv);
        self.next = Some(qv.clone());
        out.push(super::Action::ConfigSeen(qv));
        true
    }
}

impl Ctx<'_> {
    /// The voter sets a quorum is needed in: the committed config's, and the next one's
    /// while a reconfig is in progress.
    pub fn voter_sets(&self) -> Vec<BTreeSet<Sid>> {
        let mut v = vec![self.cfg.voters().collect::<BTreeSet<Sid>>()];
        if let Some(n) = &self.views.next {
            v.push(n.voters().collect());
        }
        v
    }

    /// Whether `acks` holds a quorum of the committed config and of the next one.
    pub fn quorum_of_all(&self, acks: &BTreeSet<Sid>) -> bool {
        self.cfg.contains_quorum(acks)
            && self
                .views
                .next
                .as_ref()
                .is_none_or(|n| n.contains_quorum(acks))
    }

    /// The config a NEWLEADER carries: the last seen one.
    pub fn last_seen_text(&self) -> String {
        match &self.views.next {
            Some(n) => n.to_config_string(),
            None => self.cfg.to_config_string(),
        }
    }
}

/// Whether a txn's sets of voters all have a majority in `acks`.
pub fn quorum_in(sets: &[BTreeSet<Sid>], acks: &BTreeSet<Sid>) -> bool {
    sets.iter()
        .all(|set| set.iter().filter(|s| acks.contains(s)).count() > set.len() / 2)
}

/// The config a serialized reconfig txn carries (a `SetDataTxn` on `/zookeeper/config`
/// whose header type is reconfig), read against `base` (this server's id and timing);
/// `None` for any other txn, or one whose config text does not parse.
pub fn reconfig_of(base: &QuorumConfig, data: &Bytes) -> Option<QuorumConfig> {
    let ty = data.get(28..32)?;
    if i32::from_be_bytes([ty[0], ty[1], ty[2], ty[3]]) != OpCode::Reconfig.to_i32() {
        return None;
    }
    let e = TxnEntry::decode(data.clone()).ok()?;
    reconfig_in(base, &e)
}

/// [`reconfig_of`] over a txn already decoded.
pub fn reconfig_in(base: &QuorumConfig, e: &TxnEntry) -> Option<QuorumConfig> {
    if e.header.txn_type != OpCode::Reconfig {
        return None;
    }
    let Txn::SetData(s) = &e.txn else {
        return None;
    };
    let text = std::str::from_utf8(s.data.as_deref()?).ok()?;
    parse_config(base, text)
}

/// Decodes a txn a leader sent for `zxid` (PROPOSAL, INFORM, INFORMANDACTIVATE, the txns
/// of a DIFF) with the decoder the apply path uses, before it is logged: a txn that does
/// not decode, or whose header names another zxid than its packet, could be neither
/// applied nor read back from our log at restart. Apache's Learner deserializes the txn
/// first too and drops the leader when that fails.
pub fn decode_leader_txn(zxid: Zxid, data: &Bytes) -> Result<TxnEntry, String> {
    let e = TxnEntry::decode(data.clone()).map_err(|e| e.to_string())?;
    if e.header.zxid != zxid {
        return Err(format!(
            "its header's zxid is {}",
            super::zxid::hex(e.header.zxid)
        ));
    }
    Ok(e)
}

/// Config text (from a reconfig txn, NEWLEADER or a notification) read against `base`.
pub fn parse_config(base: &QuorumConfig, text: &str) -> Option<QuorumConfig> {
    match ConfigText::parse(text) {
        Ok(c) => Some(base.with_members(c.servers, c.version)),
        Err(e) => {
            tracing::warn!("ignoring a config that does not parse ({e}): {text:?}");
            None
        }
    }
}

#[cfg(test)]
mod tests;
