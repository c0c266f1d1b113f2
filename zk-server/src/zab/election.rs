//! Sans-IO FastLeaderElection, following Apache's `FastLeaderElection` rule by rule:
//! logical clock rounds, (peerEpoch, zxid, sid) ordering, the finalize wait once a quorum
//! agrees, doubling re-send interval, and joining a running ensemble from the FOLLOWING /
//! LEADING notifications of its members.
//!
//! The driver delivers notifications (including those we send to ourselves) with
//! [`Election::on_notification`] and calls [`Election::tick`] often (every few tens of ms);
//! both return a [`Decision`] when the election ends.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use zk_proto::election::{Notification, NOTIFICATION_VERSION};

use super::vote::beats;
use super::{Action, Millis, PeerState, QuorumConfig, Sid, Vote, Zxid};

/// How an election ended for us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Leading, Following or Observing.
    pub state: PeerState,
    /// The winning vote.
    pub vote: Vote,
}

#[derive(Debug, Clone, Copy)]
struct Looking {
    /// Current poll timeout (doubles on silence, up to the configured maximum).
    not_timeout: Millis,
    /// When the current poll gives up and we re-send our notifications.
    poll_deadline: Millis,
    /// Set once a quorum agrees: decide at this time unless a better vote arrives.
    finalize_deadline: Option<Millis>,
}

/// (leader, zxid, peerEpoch).
type Proposal = (Sid, Zxid, i64);

/// The election state machine of one server.
#[derive(Debug, Clone)]
pub struct Election {
    cfg: Arc<QuorumConfig>,
    /// The config proposed and not committed yet: its voters are told and must agree too.
    next: Option<Arc<QuorumConfig>>,
    config_bytes: Bytes,
    logical_clock: i64,
    proposed: Proposal,
    init: Proposal,
    recvset: BTreeMap<Sid, Vote>,
    outofelection: BTreeMap<Sid, Vote>,
    looking: Option<Looking>,
    current_vote: Vote,
    peer_state: PeerState,
}

impl Election {
    /// A server that has not started looking yet; its current vote is for itself.
    pub fn new(cfg: Arc<QuorumConfig>, last_zxid: Zxid, current_epoch: i64) -> Self {
        let config_bytes = Bytes::from(cfg.to_config_string());
        let me = cfg.my_sid;
        Election {
            cfg,
            next: None,
            config_bytes,
            logical_clock: 0,
            proposed: (me, last_zxid, current_epoch),
            init: (me, last_zxid, current_epoch),
            recvset: BTreeMap::new(),
            outofelection: BTreeMap::new(),
            looking: None,
            current_vote: Vote {
                leader: me,
                zxid: last_zxid,
                election_epoch: 0,
                peer_epoch: current_epoch,
                state: PeerState::Looking,
                version: NOTIFICATION_VERSION,
            },
            peer_state: PeerState::Looking,
        }
    }

    /// A new committed config and the one proposed after it, if any (notifications carry
    /// the committed one, as Apache's).
    pub fn set_config(&mut self, cfg: Arc<QuorumConfig>, next: Option<Arc<QuorumConfig>>) {
        self.config_bytes = Bytes::from(cfg.to_config_string());
        self.cfg = cfg;
        self.next = next.filter(|n| n.version > self.cfg.version);
    }

    /// The version of the proposed config the election knows of.
    pub fn next_version(&self) -> Option<i64> {
        self.next.as_ref().map(|n| n.version)
    }

    /// Settles on a decision taken outside an election (a designated leader after a
    /// reconfig, Apache's reconfigFlag path).
    pub fn adopt(&mut self, d: Decision) {
        self.current_vote = d.vote;
        self.peer_state = d.state;
        self.looking = None;
        self.recvset.clear();
        self.outofelection.clear();
    }

    /// Whether `sid` votes in the committed or the proposed config (Apache's validVoter).
    fn valid_voter(&self, sid: Sid) -> bool {
        self.cfg.is_voter(sid) || self.next.as_ref().is_some_and(|n| n.is_voter(sid))
    }

    /// The round we are in.
    pub fn logical_clock(&self) -> i64 {
        self.logical_clock
    }

    /// Whether an election is running.
    pub fn is_looking(&self) -> bool {
        self.looking.is_some()
    }

    /// The vote we last settled on (what we answer to looking servers).
    pub fn current_vote(&self) -> Vote {
        self.current_vote
    }

    /// Our current proposal while looking: (leader, zxid, peerEpoch).
    pub fn proposal(&self) -> (Sid, Zxid, i64) {
        self.proposed
    }

    /// Starts a new round (`lookForLeader`): bump the clock, vote for ourselves, tell every
    /// voter.
    pub fn start(
        &mut self,
        now: Millis,
        last_zxid: Zxid,
        current_epoch: i64,
        out: &mut Vec<Action>,
    ) {
        self.logical_clock += 1;
        self.init = if self.cfg.i_vote() {
            (self.cfg.my_sid, last_zxid, current_epoch)
        } else {
            (i64::MIN, i64::MIN, i64::MIN)
        };
        self.proposed = self.init;
        self.recvset.clear();
        self.outofelection.clear();
        self.peer_state = PeerState::Looking;
        self.looking = Some(Looking {
            not_timeout: self.cfg.finalize_wait,
            poll_deadline: now + self.cfg.finalize_wait,
            finalize_deadline: None,
        });
        self.send_notifications(out);
    }

    /// Records that the peer left the election by other means or changed role (e.g. a
    /// leader whose epoch is now established: `updateElectionVote`).
    pub fn update_vote_epoch(&mut self, peer_epoch: i64) {
        self.current_vote.peer_epoch = peer_epoch;
    }

    /// Handles a notification from `from` (WorkerReceiver and the body of lookForLeader).
    pub fn on_notification(
        &mut self,
        now: Millis,
        from: Sid,
        n: &Notification,
        out: &mut Vec<Action>,
    ) -> Option<Decision> {
        if !self.valid_voter(from) {
            if from == self.cfg.my_sid {
                // Our own notification, sent while we were a voter of a config we no
                // longer hold: answering it would answer ourselves forever.
                return None;
            }
            // Observers and strangers only learn our current vote.
            let v = self.current_vote;
            self.send(
                out,
                from,
                self.peer_state,
                (v.leader, v.zxid, v.peer_epoch),
                self.logical_clock,
            );
            return None;
        }
        let state = PeerState::from_wire(n.state)?;
        if self.looking.is_none() {
            if state == PeerState::Looking {
                let v = self.current_vote;
                self.send(
                    out,
                    from,
                    self.peer_state,
                    (v.leader, v.zxid, v.peer_epoch),
                    v.election_epoch,
                );
            }
            return None;
        }
        if state == PeerState::Looking && n.election_epoch < self.logical_clock {
            // Help a straggler catch up with our round and proposal.
            self.send(
                out,
                from,
                PeerState::Looking,
                self.proposed,
                self.logical_clock,
            );
        }
        self.process(now, from, state, n, out)
    }

    fn process(
        &mut self,
        now: Millis,
        from: Sid,
        state: PeerState,
        n: &Notification,
        out: &mut Vec<Action>,
    ) -> Option<Decision> {
        let looking = self.looking.as_mut()?;
        let theirs = (n.leader, n.zxid, n.peer_epoch);
        if looking.finalize_deadline.is_some() {
            if beats(self.cfg.is_voter(n.leader), theirs, self.proposed) {
                looking.finalize_deadline = None;
            } else {
                // Consumed by the finalize poll: it restarts its wait.
                looking.finalize_deadline = Some(now + self.cfg.finalize_wait);
                return None;
            }
        }
        if !(self.valid_voter(from) && self.valid_voter(n.leader)) {
            if state == PeerState::Looking
                && self.valid_voter(from)
                && n.election_epoch > self.logical_clock
            {
                // A voter of the proposed config that votes for nobody yet (it is not a
                // voter of its committed config) is in a later round: join that round
                // with our proposal, or neither would ever count the other (Apache would
                // ignore it and wait forever).
                self.logical_clock = n.election_epoch;
                self.recvset.clear();
                self.proposed = self.init;
                self.send_notifications(out);
            }
            return None;
        }
        // Only a vote that counts restarts the wait before we re-send: votes for nobody
        // (non-voters of the committed config) arriving just before each timeout would
        // otherwise keep us silent forever.
        if let Some(l) = self.looking.as_mut() {
            l.poll_deadline = now + l.not_timeout;
        }
        match state {
            PeerState::Looking => {
                if self.init.1 == -1 || n.zxid == -1 {
                    return None;
                }
                if n.election_epoch > self.logical_clock {
                    self.logical_clock = n.election_epoch;
                    self.recvset.clear();
                    self.proposed = if beats(true, theirs, self.init) {
                        theirs
                    } else {
                        self.init
                    };
                    self.send_notifications(out);
                } else if n.election_epoch < self.logical_clock {
                    return None;
                } else if beats(true, theirs, self.proposed) {
                    self.proposed = theirs;
                    self.send_notifications(out);
                } else if theirs != self.proposed
                    && from != self.cfg.my_sid
                    && self.valid_voter(self.cfg.my_sid)
                {
                    // A voter of our round holds a worse vote: tell it ours now, every
                    // time (an answer may be lost). Waiting for our poll timeout could
                    // wait forever when its re-sends keep arriving just before that
                    // timeout (each arrival restarts it). It switches on our answer, so
                    // the answers stop.
                    self.send(
                        out,
                        from,
                        PeerState::Looking,
                        self.proposed,
                        self.logical_clock,
                    );
                }
                self.recvset.insert(
                    from,
                    Vote {
                        leader: n.leader,
                        zxid: n.zxid,
                        election_epoch: n.election_epoch,
                        peer_epoch: n.peer_epoch,
                        state: PeerState::Looking,
                        version: 0,
                    },
                );
                let mine = Vote {
                    leader: self.proposed.0,
                    zxid: self.proposed.1,
                    election_epoch: self.logical_clock,
                    peer_epoch: self.proposed.2,
                    state: PeerState::Looking,
                    version: NOTIFICATION_VERSION,
                };
                if self.has_quorum(&self.recvset, &mine) {
                    if let Some(l) = self.looking.as_mut() {
                        l.finalize_deadline = Some(now + self.cfg.finalize_wait);
                    }
                }
                None
            }
            PeerState::Observing => None,
            PeerState::Following | PeerState::Leading => self.received_running(from, state, n),
        }
    }

    /// `receivedFollowingNotification` / `receivedLeadingNotification`: join a leader that a
    /// quorum follows, in our round or (for a running ensemble) out of it.
    fn received_running(
        &mut self,
        from: Sid,
        state: PeerState,
        n: &Notification,
    ) -> Option<Decision> {
        let v = Vote {
            leader: n.leader,
            zxid: n.zxid,
            election_epoch: n.election_epoch,
            peer_epoch: n.peer_epoch,
            state,
            version: n.version,
        };
        if n.election_epoch == self.logical_clock {
            self.recvset.insert(from, v);
            if self.has_quorum(&self.recvset, &v)
                && self.check_leader(&self.recvset, n.leader, n.election_epoch)
            {
                return Some(self.decide((n.leader, n.zxid, n.peer_epoch)));
            }
        }
        self.outofelection.insert(from, v);
        if self.has_quorum(&self.outofelection, &v)
            && self.check_leader(&self.outofelection, n.leader, n.election_epoch)
        {
            self.logical_clock = n.election_epoch;
            return Some(self.decide((n.leader, n.zxid, n.peer_epoch)));
        }
        None
    }

    /// A leader other than us counts only if it says itself that it leads; we count as
    /// leader only for our own round.
    fn check_leader(&self, votes: &BTreeMap<Sid, Vote>, leader: Sid, election_epoch: i64) -> bool {
        if leader != self.cfg.my_sid {
            matches!(votes.get(&leader), Some(v) if v.state == PeerState::Leading)
        } else {
            self.logical_clock == election_epoch
        }
    }

    fn has_quorum(&self, votes: &BTreeMap<Sid, Vote>, vote: &Vote) -> bool {
        let agreeing: Vec<Sid> = votes
            .iter()
            .filter(|(_, v)| v.same_as(vote))
            .map(|(s, _)| *s)
            .collect();
        self.cfg.contains_quorum(&agreeing)
            && self
                .next
                .as_ref()
                .is_none_or(|n| n.contains_quorum(&agreeing))
    }

    /// Advances timers: ends the finalize wait, or re-sends after a silent poll.
    pub fn tick(&mut self, now: Millis, out: &mut Vec<Action>) -> Option<Decision> {
        let looking = self.looking.as_mut()?;
        if let Some(d) = looking.finalize_deadline {
            if now >= d {
                return Some(self.decide(self.proposed));
            }
            return None;
        }
        if now >= looking.poll_deadline {
            looking.not_timeout = (looking.not_timeout * 2).min(self.cfg.max_notification_interval);
            looking.poll_deadline = now + looking.not_timeout;
            self.send_notifications(out);
        }
        None
    }

    /// The earliest time at which [`Election::tick`] has something to do.
    pub fn next_deadline(&self) -> Option<Millis> {
        let l = self.looking.as_ref()?;
        Some(l.finalize_deadline.unwrap_or(l.poll_deadline))
    }

    fn decide(&mut self, (leader, zxid, peer_epoch): Proposal) -> Decision {
        let observer = super::peer::learner_type_in(&self.cfg, self.next.as_deref())
            == super::LearnerType::Observer;
        // Apache's learningState: a server missing from the config follows (not voting).
        let state = if leader == self.cfg.my_sid {
            PeerState::Leading
        } else if observer {
            PeerState::Observing
        } else {
            PeerState::Following
        };
        let vote = Vote {
            leader,
            zxid,
            election_epoch: self.logical_clock,
            peer_epoch,
            state,
            version: NOTIFICATION_VERSION,
        };
        self.current_vote = vote;
        self.peer_state = state;
        self.looking = None;
        self.recvset.clear();
        self.outofelection.clear();
        Decision { state, vote }
    }

    fn send_notifications(&self, out: &mut Vec<Action>) {
        let mut to_all: std::collections::BTreeSet<Sid> = self.cfg.voters().collect();
        if let Some(n) = &self.next {
            to_all.extend(n.voters());
        }
        for to in to_all {
            self.send(
                out,
                to,
                PeerState::Looking,
                self.proposed,
                self.logical_clock,
            );
        }
    }

    fn send(
        &self,
        out: &mut Vec<Action>,
        to: Sid,
        state: PeerState,
        (leader, zxid, peer_epoch): Proposal,
        election_epoch: i64,
    ) {
        out.push(Action::SendNotification {
            to,
            n: Notification {
                state: state.to_wire(),
                leader,
                zxid,
                election_epoch,
                peer_epoch,
                version: NOTIFICATION_VERSION,
                config: self.config_bytes.clone(),
            },
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zab::QuorumServer;
    use std::collections::VecDeque;

    fn cfg(me: Sid, voters: i64, observers: i64) -> Arc<QuorumConfig> {
        let servers = (1..=voters + observers).map(|i| {
            let ty = if i > voters {
                "observer"
            } else {
                "participant"
            };
            QuorumServer::parse(i, &format!("127.0.0.1:{}:{}:{ty}", 2000 + i, 3000 + i)).unwrap()
        });
        Arc::new(QuorumConfig::new(me, servers))
    }

    struct Net {
        nodes: BTreeMap<Sid, Election>,
        queue: VecDeque<(Sid, Sid, Notification)>,
        decisions: BTreeMap<Sid, Decision>,
        now: Millis,
    }

    impl Net {
        fn new(voters: i64, observers: i64) -> Self {
            let nodes = (1..=voters + observers)
                .map(|i| (i, Election::new(cfg(i, voters, observers), 0, 0)))
                .collect();
            Net {
                nodes,
                queue: VecDeque::new(),
                decisions: BTreeMap::new(),
                now: 0,
            }
        }

        fn enqueue(&mut self, from: Sid, out: Vec<Action>) {
            for a in out {
                if let Action::SendNotification { to, n } = a {
                    if self.nodes.contains_key(&to) {
                        self.queue.push_back((from, to, n));
                    }
                }
            }
        }

        fn start(&mut self, sid: Sid, zxid: Zxid, epoch: i64) {
            let mut out = Vec::new();
            let now = self.now;
            self.nodes
                .get_mut(&sid)
                .unwrap()
                .start(now, zxid, epoch, &mut out);
            self.decisions.remove(&sid);
            self.enqueue(sid, out);
        }

        /// Delivers everything, ticking 10 ms between rounds, for at most `ms`.
        fn run(&mut self, ms: Millis) {
            let end = self.now + ms;
            while self.now < end {
                while let Some((from, to, n)) = self.queue.pop_front() {
                    let mut out = Vec::new();
                    let now = self.now;
                    if let Some(d) = self
                        .nodes
                        .get_mut(&to)
                        .unwrap()
                        .on_notification(now, from, &n, &mut out)
                    {
                        self.decisions.insert(to, d);
                    }
                    self.enqueue(to, out);
                }
                self.now += 10;
                let sids: Vec<Sid> = self.nodes.keys().copied().collect();
                for sid in sids {
                    let mut out = Vec::new();
                    let now = self.now;
                    if let Some(d) = self.nodes.get_mut(&sid).unwrap().tick(now, &mut out) {
                        self.decisions.insert(sid, d);
                    }
                    self.enqueue(sid, out);
                }
            }
        }
    }

    #[test]
    fn highest_sid_wins_with_equal_histories() {
        let mut net = Net::new(3, 0);
        for s in 1..=3 {
            net.start(s, 0, 0);
        }
        net.run(1000);
        assert_eq!(net.decisions.len(), 3);
        assert_eq!(net.decisions[&3].state, PeerState::Leading);
        assert_eq!(net.decisions[&1].state, PeerState::Following);
        assert_eq!(net.decisions[&2].vote.leader, 3);
        // Everyone decided in the same round.
        assert!(net.decisions.values().all(|d| d.vote.election_epoch == 1));
    }

    #[test]
    fn epoch_beats_zxid_beats_sid() {
        let mut net = Net::new(5, 0);
        net.start(1, 0x1_0000_0009, 1);
        net.start(2, 0x2_0000_0001, 2);
        net.start(3, 0x2_0000_0003, 2);
        net.start(4, 0x2_0000_0003, 2);
        net.start(5, 0, 0);
        net.run(2000);
        assert_eq!(net.decisions.len(), 5);
        assert!(net.decisions.values().all(|d| d.vote.leader == 4));
        assert_eq!(net.decisions[&4].state, PeerState::Leading);
        assert_eq!(net.decisions[&4].vote.zxid, 0x2_0000_0003);
    }

    #[test]
    fn minority_cannot_elect_and_keeps_resending_with_backoff() {
        let mut net = Net::new(5, 0);
        net.nodes.retain(|s, _| *s <= 2);
        net.start(1, 0, 0);
        net.start(2, 0, 0);
        net.run(5000);
        assert!(net.decisions.is_empty());
        // The poll interval doubled from 200 ms: 200, 400, 800, 1600, 3200.
        let next = net.nodes[&1].next_deadline().unwrap();
        assert!(
            next > net.now + 1000,
            "backoff grows: {next} vs {}",
            net.now
        );
    }

    #[test]
    fn joiner_follows_running_leader_without_disturbing_it() {
        let mut net = Net::new(3, 0);
        net.nodes.remove(&3);
        net.start(1, 0, 0);
        net.start(2, 0, 0);
        net.run(1000);
        assert_eq!(net.decisions[&2].state, PeerState::Leading);
        assert_eq!(net.decisions[&1].state, PeerState::Following);
        for e in net.nodes.values_mut() {
            e.update_vote_epoch(1);
        }
        // Server 3 has a higher zxid but joins a running ensemble: it must follow 2.
        net.nodes.insert(3, Election::new(cfg(3, 3, 0), 0, 0));
        net.start(3, 0x5, 0);
        net.run(1000);
        assert_eq!(net.decisions[&3].state, PeerState::Following);
        assert_eq!(net.decisions[&3].vote.leader, 2);
        assert!(!net.nodes[&1].is_looking() && !net.nodes[&2].is_looking());
        // It adopted the ensemble's round.
        assert_eq!(
            net.nodes[&3].logical_clock(),
            net.nodes[&2].current_vote().election_epoch
        );
    }

    #[test]
    fn observer_observes_the_elected_leader() {
        let mut net = Net::new(3, 1);
        for s in 1..=4 {
            net.start(s, 0, 0);
        }
        net.run(3000);
        assert_eq!(net.decisions[&4].state, PeerState::Observing);
        assert_eq!(net.decisions[&4].vote.leader, 3);
        assert_eq!(net.decisions[&3].state, PeerState::Leading);
    }

    #[test]
    fn lagging_round_is_answered_and_adopted() {
        let mut net = Net::new(3, 0);
        net.nodes.remove(&3);
        net.start(1, 0, 0);
        net.start(1, 0, 0);
        net.start(1, 0, 0); // server 1 is at round 3
        net.start(2, 0, 0); // server 2 at round 1
        net.run(1000);
        assert_eq!(net.decisions[&2].vote.election_epoch, 3);
        assert_eq!(net.decisions[&1].vote.leader, 2);
    }

    #[test]
    fn better_vote_during_finalize_wait_changes_the_outcome() {
        let c = cfg(1, 3, 0);
        let mut e = Election::new(c, 0, 0);
        let mut out = Vec::new();
        e.start(0, 5, 1, &mut out);
        let looking = |leader, zxid| Notification {
            state: PeerState::Looking.to_wire(),
            leader,
            zxid,
            election_epoch: 1,
            peer_epoch: 1,
            version: 2,
            config: Bytes::new(),
        };
        assert!(e.on_notification(0, 1, &looking(1, 5), &mut out).is_none());
        assert!(e.on_notification(1, 2, &looking(1, 5), &mut out).is_none());
        // Quorum {1, 2} for leader 1: finalize wait running.
        assert_eq!(e.next_deadline(), Some(201));
        // A worse vote restarts the wait.
        assert!(e
            .on_notification(100, 2, &looking(1, 4), &mut out)
            .is_none());
        assert_eq!(e.next_deadline(), Some(300));
        // A better one cancels it and is adopted.
        assert!(e
            .on_notification(150, 3, &looking(3, 9), &mut out)
            .is_none());
        assert_eq!(e.proposal(), (3, 9, 1));
        assert!(e.tick(300, &mut out).is_none());
        assert!(e
            .on_notification(310, 2, &looking(3, 9), &mut out)
            .is_none());
        let d = e.tick(600, &mut out).unwrap();
        assert_eq!((d.state, d.vote.leader), (PeerState::Following, 3));
        // Not looking any more: a looking server gets our settled vote back.
        out.clear();
        assert!(e
            .on_notification(700, 2, &looking(2, 0), &mut out)
            .is_none());
        match &out[..] {
            [Action::SendNotification { to: 2, n }] => {
                assert_eq!((n.state, n.leader), (PeerState::Following.to_wire(), 3));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
