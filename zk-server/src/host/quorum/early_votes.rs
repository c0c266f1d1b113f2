//! LOOKING notifications that reach a peer just before it starts looking itself.
//!
//! When a leader dies, its followers notice at slightly different moments. The first one
//! starts a new round and tells the others; a follower that has not noticed yet answers
//! with its (still FOLLOWING) vote and forgets the notification, as Apache does. Moments
//! later it starts the same round with its own vote, the first peer (whose vote is better)
//! sees nothing to correct and stays silent, and both wait for the re-send timeout
//! (finalizeWait, 200 ms) before they agree. Keeping the latest such notification per peer
//! and handing it to the election when the round starts removes that wait: it is the same
//! as the notification having been delayed on the wire, which the election tolerates.

use std::collections::BTreeMap;

use zk_proto::election::Notification;

use crate::zab::{Millis, PeerState, Sid};

/// The latest LOOKING notification of each peer received while we were not looking.
#[derive(Debug, Default)]
pub struct EarlyVotes {
    by_sid: BTreeMap<Sid, (Millis, Notification)>,
}

impl EarlyVotes {
    /// Remembers `n` from `from` if it is a LOOKING vote (received at `now`, while we
    /// were following or leading).
    pub fn record(&mut self, from: Sid, n: &Notification, now: Millis) {
        if PeerState::from_wire(n.state) == Some(PeerState::Looking) {
            self.by_sid.insert(from, (now, n.clone()));
        }
    }

    /// The votes received within `max_age` of `now`, to hand to a round that just
    /// started; nothing is kept afterwards.
    pub fn take_recent(&mut self, now: Millis, max_age: Millis) -> Vec<(Sid, Notification)> {
        std::mem::take(&mut self.by_sid)
            .into_iter()
            .filter(|(_, (at, _))| now.saturating_sub(*at) <= max_age)
            .map(|(sid, (_, n))| (sid, n))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zk_proto::election::NOTIFICATION_VERSION;

    fn vote(state: PeerState, leader: Sid, round: i64) -> Notification {
        Notification {
            state: state.to_wire(),
            leader,
            zxid: 0x1_0000_0005,
            election_epoch: round,
            peer_epoch: 1,
            version: NOTIFICATION_VERSION,
            config: Default::default(),
        }
    }

    #[test]
    fn keeps_the_latest_recent_looking_vote_per_peer() {
        let mut e = EarlyVotes::default();
        e.record(2, &vote(PeerState::Looking, 2, 1), 100);
        e.record(2, &vote(PeerState::Looking, 2, 2), 150);
        e.record(3, &vote(PeerState::Following, 1, 1), 150);
        e.record(4, &vote(PeerState::Looking, 4, 2), 10);
        let got = e.take_recent(1000, 900);
        assert_eq!(got, vec![(2, vote(PeerState::Looking, 2, 2))]);
        assert!(e.take_recent(1000, 900).is_empty());
    }
}
