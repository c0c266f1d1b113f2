//! How a leader brings a learner's history in line with its own (LearnerHandler's
//! `syncFollower`): an empty DIFF when equal, TRUNC when the learner is ahead, DIFF (or
//! TRUNC then the missing txns) when the learner's last zxid falls inside the leader's
//! recent committed txns, SNAP otherwise.

use zk_proto::quorum::{QuorumPacket, QuorumPacketType};

use super::packets::{simple, with_data};
use super::{History, Proposal};
use crate::zab::zxid::epoch_of;
use crate::zab::Zxid;

/// The chosen synchronisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncPlan {
    /// DIFF(`last`) then PROPOSAL + COMMIT for each txn.
    Diff {
        /// The leader's last committed zxid.
        last: Zxid,
        /// Txns the learner misses.
        txns: Vec<Proposal>,
    },
    /// TRUNC(`to`) then PROPOSAL + COMMIT for each txn.
    Trunc {
        /// Where the learner must cut its log.
        to: Zxid,
        /// Txns the learner misses after the cut.
        txns: Vec<Proposal>,
    },
    /// SNAP: the whole database as of `last`.
    Snap {
        /// The leader's last committed zxid.
        last: Zxid,
    },
}

/// Plans the sync of a learner whose last logged zxid is `peer_last`.
pub fn plan(history: &History, peer_last: Zxid) -> SyncPlan {
    let recent: Vec<Proposal> = history.recent().iter().cloned().collect();
    plan_over(history.applied(), &recent, peer_last)
}

/// Plans over an explicit list of the leader's last committed txns (ascending, ending at
/// `last`): the recent txns in memory, possibly extended with older ones read back from
/// the txn log.
pub fn plan_over(last: Zxid, recent: &[Proposal], peer_last: Zxid) -> SyncPlan {
    if peer_last == last {
        return SyncPlan::Diff {
            last,
            txns: Vec::new(),
        };
    }
    if peer_last > last {
        // The learner logged proposals no quorum kept (it may have led): cut them.
        return SyncPlan::Trunc {
            to: last,
            txns: Vec::new(),
        };
    }
    let Some(first) = recent.first() else {
        return SyncPlan::Snap { last };
    };
    if peer_last < first.zxid {
        return SyncPlan::Snap { last };
    }
    if recent.iter().any(|p| p.zxid == peer_last) {
        return SyncPlan::Diff {
            last,
            txns: recent
                .iter()
                .filter(|p| p.zxid > peer_last)
                .cloned()
                .collect(),
        };
    }
    // The learner's last txn is not ours: cut back to our previous txn, unless that crosses
    // an epoch boundary (Apache sends a snapshot then).
    let prev = recent
        .iter()
        .take_while(|p| p.zxid < peer_last)
        .last()
        .map(|p| p.zxid);
    let next = recent.iter().find(|p| p.zxid > peer_last).map(|p| p.zxid);
    match (prev, next) {
        (Some(prev), Some(next)) if epoch_of(next) == epoch_of(peer_last) => SyncPlan::Trunc {
            to: prev,
            txns: recent.iter().filter(|p| p.zxid > prev).cloned().collect(),
        },
        _ => SyncPlan::Snap { last },
    }
}

impl SyncPlan {
    /// The packets announcing and carrying the plan (SNAP's snapshot is sent separately).
    pub fn packets(&self) -> Vec<QuorumPacket> {
        let (head, txns) = match self {
            SyncPlan::Diff { last, txns } => (simple(QuorumPacketType::Diff, *last), txns),
            SyncPlan::Trunc { to, txns } => (simple(QuorumPacketType::Trunc, *to), txns),
            SyncPlan::Snap { .. } => return Vec::new(),
        };
        let mut out = Vec::with_capacity(1 + 2 * txns.len());
        out.push(head);
        for p in txns {
            out.push(with_data(
                QuorumPacketType::Proposal,
                p.zxid,
                p.data.clone(),
            ));
            out.push(simple(QuorumPacketType::Commit, p.zxid));
        }
        out
    }

    /// The last zxid the learner will hold once synced.
    pub fn last_zxid(&self) -> Zxid {
        match self {
            SyncPlan::Diff { last, txns } => txns.last().map(|p| p.zxid).unwrap_or(*last),
            SyncPlan::Trunc { to, txns } => txns.last().map(|p| p.zxid).unwrap_or(*to),
            SyncPlan::Snap { last } => *last,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zab::broadcast::DiskState;
    use crate::zab::zxid::make_zxid;
    use bytes::Bytes;

    fn hist(zxids: &[Zxid], cap: usize) -> History {
        let recent: Vec<Proposal> = zxids
            .iter()
            .map(|z| Proposal {
                zxid: *z,
                data: Bytes::new(),
            })
            .collect();
        History::from_disk(
            DiskState {
                last_zxid: *zxids.last().unwrap_or(&0),
                recent,
                ..Default::default()
            },
            cap,
        )
    }

    fn zx(plan: &SyncPlan) -> Vec<Zxid> {
        match plan {
            SyncPlan::Diff { txns, .. } | SyncPlan::Trunc { txns, .. } => {
                txns.iter().map(|p| p.zxid).collect()
            }
            SyncPlan::Snap { .. } => Vec::new(),
        }
    }

    #[test]
    fn chooses_like_apache() {
        let a = make_zxid(1, 1);
        let b = make_zxid(1, 2);
        let c = make_zxid(2, 1);
        let d = make_zxid(2, 2);
        let h = hist(&[a, b, c, d], 10);
        assert_eq!(
            plan(&h, d),
            SyncPlan::Diff {
                last: d,
                txns: vec![]
            }
        );
        let p = plan(&h, b);
        assert!(matches!(p, SyncPlan::Diff { last, .. } if last == d));
        assert_eq!(zx(&p), [c, d]);
        assert_eq!(p.packets().len(), 5);
        assert_eq!(p.last_zxid(), d);
        // Learner ahead of the leader.
        assert_eq!(
            plan(&h, make_zxid(3, 1)),
            SyncPlan::Trunc {
                to: d,
                txns: vec![]
            }
        );
        // Learner with an extra txn of epoch 2 the leader does not have.
        let h2 = hist(&[a, b, c, make_zxid(2, 5)], 10);
        let p = plan(&h2, make_zxid(2, 3));
        assert!(matches!(p, SyncPlan::Trunc { to, .. } if to == c));
        assert_eq!(zx(&p), [make_zxid(2, 5)]);
        assert_eq!(p.packets()[0].packet_type, QuorumPacketType::Trunc);
        // Divergent txn of an epoch the leader moved past: no TRUNC across epochs.
        assert_eq!(plan(&h, make_zxid(1, 3)), SyncPlan::Snap { last: d });
        // Older than what the leader keeps.
        let small = hist(&[a, b, c, d], 2);
        assert_eq!(plan(&small, a), SyncPlan::Snap { last: d });
        assert!(SyncPlan::Snap { last: d }.packets().is_empty());
    }
}
