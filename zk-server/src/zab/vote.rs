//! Votes and peer states, with Apache's ordering and equality rules.

use zk_proto::election::state;

use super::{Sid, Zxid};

/// What a server is doing (QuorumPeer.ServerState).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerState {
    /// Electing a leader.
    Looking,
    /// Following a leader.
    Following,
    /// Leading.
    Leading,
    /// Observing a leader.
    Observing,
}

impl PeerState {
    /// The number carried in notifications.
    pub fn to_wire(self) -> i32 {
        match self {
            PeerState::Looking => state::LOOKING,
            PeerState::Following => state::FOLLOWING,
            PeerState::Leading => state::LEADING,
            PeerState::Observing => state::OBSERVING,
        }
    }

    /// Parses the number carried in notifications.
    pub fn from_wire(v: i32) -> Option<Self> {
        match v {
            state::LOOKING => Some(PeerState::Looking),
            state::FOLLOWING => Some(PeerState::Following),
            state::LEADING => Some(PeerState::Leading),
            state::OBSERVING => Some(PeerState::Observing),
            _ => None,
        }
    }
}

/// A vote: who should lead, and the facts it was chosen on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vote {
    /// Proposed leader.
    pub leader: Sid,
    /// Proposed leader's last zxid.
    pub zxid: Zxid,
    /// Logical clock of the round the vote was cast in.
    pub election_epoch: i64,
    /// Proposed leader's current epoch.
    pub peer_epoch: i64,
    /// State of the voter when it cast the vote.
    pub state: PeerState,
    /// Notification version the vote came with (0 for pre-3.4 forms).
    pub version: i32,
}

impl Vote {
    /// Apache's `Vote.equals`: looking votes compare all facts; votes of servers that have
    /// finished electing compare only the leader and its epoch (their zxid and round move on).
    pub fn same_as(&self, other: &Vote) -> bool {
        if self.state == PeerState::Looking || other.state == PeerState::Looking {
            self.leader == other.leader
                && self.zxid == other.zxid
                && self.election_epoch == other.election_epoch
                && self.peer_epoch == other.peer_epoch
        } else if (self.version > 0) != (other.version > 0) {
            self.leader == other.leader
        } else {
            self.leader == other.leader && self.peer_epoch == other.peer_epoch
        }
    }
}

/// Apache's `totalOrderPredicate`: whether the new proposal beats the current one, by
/// (peerEpoch, zxid, sid). `new_is_voter` is false for a proposed leader without a vote.
pub fn beats(
    new_is_voter: bool,
    (new_id, new_zxid, new_epoch): (Sid, Zxid, i64),
    (cur_id, cur_zxid, cur_epoch): (Sid, Zxid, i64),
) -> bool {
    if !new_is_voter {
        return false;
    }
    (new_epoch, new_zxid, new_id) > (cur_epoch, cur_zxid, cur_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_is_epoch_then_zxid_then_sid() {
        assert!(beats(true, (1, 5, 2), (3, 9, 1)));
        assert!(beats(true, (1, 9, 1), (3, 5, 1)));
        assert!(beats(true, (3, 9, 1), (1, 9, 1)));
        assert!(!beats(true, (1, 9, 1), (1, 9, 1)));
        assert!(!beats(false, (9, 9, 9), (1, 0, 0)));
    }

    #[test]
    fn equality_depends_on_state() {
        let v = Vote {
            leader: 3,
            zxid: 10,
            election_epoch: 2,
            peer_epoch: 1,
            state: PeerState::Following,
            version: 2,
        };
        let w = Vote {
            zxid: 20,
            election_epoch: 5,
            state: PeerState::Leading,
            ..v
        };
        assert!(v.same_as(&w));
        let looking = Vote {
            state: PeerState::Looking,
            ..w
        };
        assert!(!v.same_as(&looking));
        for s in [
            PeerState::Looking,
            PeerState::Following,
            PeerState::Leading,
            PeerState::Observing,
        ] {
            assert_eq!(PeerState::from_wire(s.to_wire()), Some(s));
        }
        assert_eq!(PeerState::from_wire(7), None);
    }
}
