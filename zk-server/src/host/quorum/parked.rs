//! Learner connections that reach this server before it has become leader.
//!
//! A follower usually ends its election before its leader does: the leader's finalize wait
//! restarts with every late notification, while the follower decides as soon as it sees a
//! quorum. Closing the follower's early connection sends it back to looking in a new round,
//! where the established leader's answers belong to an older round and only count once a
//! quorum of them arrives; in a 3-member ensemble with one member down that never happens,
//! and the leader times out waiting for followers (seconds, and it can repeat). Apache
//! learners retry the connection for up to initLimit; here the leader side holds such a
//! connection, with everything it sent, until the election ends: handed to the new leader
//! role, or closed if this server follows someone else or nothing happens for initLimit.

use std::collections::BTreeMap;

use crate::zab::{ConnId, Millis, ZabMessage};

#[derive(Debug)]
struct Parked {
    since: Millis,
    msgs: Vec<ZabMessage>,
}

/// Early learner connections, with what they sent, oldest first.
#[derive(Debug, Default)]
pub struct ParkedLearners {
    conns: BTreeMap<ConnId, Parked>,
}

impl ParkedLearners {
    /// Holds `conn`, accepted at `now` while looking.
    pub fn park(&mut self, conn: ConnId, now: Millis) {
        self.conns.insert(
            conn,
            Parked {
                since: now,
                msgs: Vec::new(),
            },
        );
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    /// Whether `conn` is held.
    pub fn contains(&self, conn: ConnId) -> bool {
        self.conns.contains_key(&conn)
    }

    /// Keeps a message a held connection sent.
    pub fn message(&mut self, conn: ConnId, m: ZabMessage) {
        if let Some(p) = self.conns.get_mut(&conn) {
            p.msgs.push(m);
        }
    }

    /// A held connection closed: forget it.
    pub fn closed(&mut self, conn: ConnId) {
        self.conns.remove(&conn);
    }

    /// Every held connection with its messages, in arrival order; nothing is held after.
    pub fn take_all(&mut self) -> Vec<(ConnId, Vec<ZabMessage>)> {
        std::mem::take(&mut self.conns)
            .into_iter()
            .map(|(c, p)| (c, p.msgs))
            .collect()
    }

    /// Removes and returns the connections held for longer than `limit`.
    pub fn expired(&mut self, now: Millis, limit: Millis) -> Vec<ConnId> {
        let old: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, p)| now.saturating_sub(p.since) > limit)
            .map(|(c, _)| *c)
            .collect();
        for c in &old {
            self.conns.remove(c);
        }
        old
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zk_proto::quorum::{QuorumPacket, QuorumPacketType};

    fn ping(z: i64) -> ZabMessage {
        ZabMessage::Packet(QuorumPacket {
            packet_type: QuorumPacketType::Ping,
            zxid: z,
            data: None,
            authinfo: None,
        })
    }

    #[test]
    fn holds_messages_in_order_until_taken_or_expired() {
        let mut p = ParkedLearners::default();
        p.park(2, 100);
        p.park(1, 150);
        p.message(2, ping(1));
        p.message(2, ping(2));
        p.message(9, ping(3));
        assert!(p.contains(2) && !p.contains(9));
        assert_eq!(p.expired(1120, 1000), vec![2]);
        assert!(p.contains(1));
        p.park(3, 1200);
        p.closed(1);
        let all = p.take_all();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].0, 3);
        assert!(p.is_empty());

        let mut q = ParkedLearners::default();
        q.park(5, 0);
        q.message(5, ping(1));
        q.message(5, ping(2));
        let all = q.take_all();
        assert_eq!(all[0].1, vec![ping(1), ping(2)]);
    }
}
