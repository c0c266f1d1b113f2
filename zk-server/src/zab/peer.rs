//! One ensemble member (Apache's QuorumPeer): runs the election while looking, then the
//! leader or learner role it won, and goes back to looking when that role ends. All
//! inputs carry the driver's time; all outputs are [`Action`]s.

use std::sync::Arc;

use bytes::Bytes;
use zk_proto::election::Notification;
use zk_proto::quorum::QuorumPacket;

use super::broadcast::leader::ProposeError;
use super::broadcast::{
    parse_config, Activation, Ctx, DiskState, History, Leader, Learner, RoleEnded, RoleResult,
    Views,
};
use super::election::{Decision, Election};
use super::Vote;
use super::{Action, ConnId, LearnerType, Millis, PeerState, QuorumConfig, Sid, ZabMessage, Zxid};

enum Role {
    Looking,
    Leading(Leader),
    Learning(Learner),
}

/// A server of the ensemble, sans IO.
pub struct QuorumPeer {
    /// The committed config (Apache's quorumVerifier).
    cfg: Arc<QuorumConfig>,
    /// A config proposed and not committed yet; activations to carry out.
    views: Views,
    /// Participant or observer: from the config, a participant when not in it (Apache's
    /// non-voting follower).
    learner_type: LearnerType,
    history: History,
    election: Election,
    role: Role,
    next_conn: u64,
    serving: bool,
    last_end: Option<RoleEnded>,
}

impl QuorumPeer {
    /// A server starting from its disk state; it begins looking for a leader at once.
    pub fn new(cfg: QuorumConfig, disk: DiskState, now: Millis) -> (Self, Vec<Action>) {
        let cfg = Arc::new(cfg);
        let history = History::from_disk(disk, cfg.committed_log_size);
        let election = Election::new(cfg.clone(), history.last_logged(), history.current_epoch);
        let learner_type = learner_type_in(&cfg, None);
        let mut p = QuorumPeer {
            cfg,
            views: Views::default(),
            learner_type,
            history,
            election,
            role: Role::Looking,
            next_conn: 0,
            serving: false,
            last_end: None,
        };
        let mut out = Vec::new();
        p.start_looking(now, &mut out);
        (p, out)
    }

    /// This server's id.
    pub fn sid(&self) -> Sid {
        self.cfg.my_sid
    }

    /// The committed config.
    pub fn config(&self) -> &QuorumConfig {
        &self.cfg
    }

    /// A config seen proposed before a restart (Apache's `.dynamic.next`, read back as
    /// the last seen config): still pending, so elections and NEWLEADER carry it on.
    pub fn restore_last_seen(&mut self, qv: QuorumConfig) {
        let mut out = Vec::new();
        self.views.see(&self.cfg, qv, &mut out);
        self.sync_election_views();
        self.learner_type = learner_type_in(&self.cfg, self.views.next.as_deref());
    }

    /// The committed config, shared.
    pub fn config_arc(&self) -> Arc<QuorumConfig> {
        self.cfg.clone()
    }

    /// The last config seen (proposed and not yet committed, else the committed one).
    pub fn last_seen_config(&self) -> Arc<QuorumConfig> {
        self.views.next.clone().unwrap_or_else(|| self.cfg.clone())
    }

    /// Leader: the sids that could ack now (us and synced participants), for a reconfig's
    /// NewConfigNoQuorum check; `None` when not an established leader.
    pub fn synced_sids(&self, now: Millis) -> Option<std::collections::BTreeSet<Sid>> {
        let Role::Leading(l) = &self.role else {
            return None;
        };
        l.is_established()
            .then(|| l.synced_sids(now, self.cfg.sync_timeout()))
    }

    /// Current state.
    pub fn state(&self) -> PeerState {
        match &self.role {
            Role::Looking => PeerState::Looking,
            Role::Leading(_) => PeerState::Leading,
            Role::Learning(_) if self.learner_type == LearnerType::Participant => {
                PeerState::Following
            }
            Role::Learning(_) => PeerState::Observing,
        }
    }

    /// The leader we lead or follow, if any.
    pub fn leader(&self) -> Option<Sid> {
        match &self.role {
            Role::Looking => None,
            Role::Leading(_) => Some(self.cfg.my_sid),
            Role::Learning(l) => Some(l.leader()),
        }
    }

    /// Whether clients may be served (leader established, or learner got UPTODATE).
    pub fn is_serving(&self) -> bool {
        self.serving
    }

    /// The epoch of the established leadership we are part of, if serving.
    pub fn serving_epoch(&self) -> Option<i64> {
        self.serving.then_some(self.history.current_epoch)
    }

    /// The replicated history.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// The election state machine.
    pub fn election(&self) -> &Election {
        &self.election
    }

    /// The leader role, when leading.
    pub fn as_leader(&self) -> Option<&Leader> {
        match &self.role {
            Role::Leading(l) => Some(l),
            _ => None,
        }
    }

    /// Why the last role ended.
    pub fn last_role_end(&self) -> Option<&RoleEnded> {
        self.last_end.as_ref()
    }

    fn start_looking(&mut self, now: Millis, out: &mut Vec<Action>) {
        self.role = Role::Looking;
        self.serving = false;
        out.push(Action::StateChanged {
            state: PeerState::Looking,
            leader: None,
            serving: false,
        });
        self.election.start(
            now,
            self.history.last_logged(),
            self.history.current_epoch,
            out,
        );
    }

    /// Runs `f` on the current role; an error ends the role and starts an election.
    fn with_role(
        &mut self,
        now: Millis,
        out: &mut Vec<Action>,
        f: impl FnOnce(&mut Role, &mut Ctx<'_>) -> RoleResult,
    ) {
        let mut ctx = Ctx {
            now,
            cfg: &self.cfg,
            history: &mut self.history,
            out,
            views: &mut self.views,
        };
        let r = f(&mut self.role, &mut ctx);
        match r {
            Ok(()) => {
                self.after_step(out);
                self.sync_election_views();
                self.activate_pending(now, out);
                self.check_learner_type(now, out);
            }
            Err(e) => self.end_role(now, e, None, out),
        }
    }

    /// Carries out an activation a role asked for (Apache's processReconfig): the new
    /// config is in force; when this server's role or leader changes with it, the role
    /// ends and (with a designated leader) the new one starts without an election.
    fn activate_pending(&mut self, now: Millis, out: &mut Vec<Action>) {
        let Some(Activation { config, designated }) = self.views.activate.take() else {
            return;
        };
        if !self.install_config(config, out) {
            return;
        }
        let prev_type = self.learner_type;
        self.learner_type = learner_type_in(&self.cfg, self.views.next.as_deref());
        let role_change = prev_type != self.learner_type
            || matches!(self.role, Role::Leading(_)) && !self.cfg.is_voter(self.cfg.my_sid);
        let leader = self.leader();
        let leader_change = match designated {
            Some(d) => leader != Some(d),
            None => leader.is_none_or(|l| !self.cfg.is_voter(l)),
        };
        if !(role_change || leader_change) {
            return;
        }
        let why = RoleEnded(format!(
            "config {:#x} changes {}",
            self.cfg.version,
            if role_change {
                "our role"
            } else {
                "the leader"
            }
        ));
        let then = designated.map(|d| {
            let state = if d == self.cfg.my_sid && self.cfg.is_voter(d) {
                PeerState::Leading
            } else if self.learner_type == LearnerType::Participant {
                PeerState::Following
            } else {
                PeerState::Observing
            };
            Decision {
                state,
                vote: Vote {
                    leader: d,
                    zxid: self.history.last_logged(),
                    election_epoch: self.election.logical_clock(),
                    peer_epoch: self.history.current_epoch,
                    state,
                    version: zk_proto::election::NOTIFICATION_VERSION,
                },
            }
        });
        self.end_role(now, why, then, out);
    }

    /// A proposed config that makes this observer a voter: it must follow (its acks are
    /// needed to commit that config), so it ends its role and looks again.
    fn check_learner_type(&mut self, now: Millis, out: &mut Vec<Action>) {
        let ty = learner_type_in(&self.cfg, self.views.next.as_deref());
        if ty == self.learner_type {
            return;
        }
        self.learner_type = ty;
        if let Role::Learning(_) = self.role {
            let why = RoleEnded(format!(
                "proposed config {:#x} makes us a voter: following instead of observing",
                self.views.next.as_ref().map(|n| n.version).unwrap_or(0)
            ));
            self.end_role(now, why, None, out);
        }
    }

    /// Tells the election about a config a role saw proposed (its voters get
    /// notifications too, and its quorum is needed).
    fn sync_election_views(&mut self) {
        let next = self.views.next.as_ref().map(|n| n.version);
        if self.election.next_version() != next {
            self.election
                .set_config(self.cfg.clone(), self.views.next.clone());
        }
    }

    /// Makes `config` the committed config if it is newer (Apache's setQuorumVerifier);
    /// false when it was not.
    fn install_config(&mut self, config: Arc<QuorumConfig>, out: &mut Vec<Action>) -> bool {
        if !self.cfg.reconfig_enabled || config.version <= self.cfg.version {
            return false;
        }
        tracing::info!(
            "peer {}: config {:#x} in force (was {:#x})",
            self.cfg.my_sid,
            config.version,
            self.cfg.version
        );
        self.cfg = config;
        if self
            .views
            .next
            .as_ref()
            .is_some_and(|n| n.version <= self.cfg.version)
        {
            self.views.next = None;
        }
        self.election
            .set_config(self.cfg.clone(), self.views.next.clone());
        out.push(Action::ConfigActivated(self.cfg.clone()));
        true
    }

    /// Notices a role becoming established (serving) and publishes it.
    fn after_step(&mut self, out: &mut Vec<Action>) {
        let serving = match &self.role {
            Role::Looking => false,
            Role::Leading(l) => l.is_established(),
            Role::Learning(l) => l.is_serving(),
        };
        if serving && !self.serving {
            self.serving = true;
            // updateElectionVote: joiners must see the epoch we now serve in.
            self.election.update_vote_epoch(self.history.current_epoch);
            out.push(Action::StateChanged {
                state: self.state(),
                leader: self.leader(),
                serving: true,
            });
        }
    }

    fn end_role(
        &mut self,
        now: Millis,
        why: RoleEnded,
        then: Option<Decision>,
        out: &mut Vec<Action>,
    ) {
        let role = std::mem::replace(&mut self.role, Role::Looking);
        let mut ctx = Ctx {
            now,
            cfg: &self.cfg,
            history: &mut self.history,
            out,
            views: &mut self.views,
        };
        match role {
            Role::Looking => {}
            Role::Leading(mut l) => l.shutdown(&mut ctx),
            Role::Learning(l) => ctx.out.push(Action::Close { conn: l.conn() }),
        }
        // Like Apache's fastForwardDataBase: what we logged is part of our history.
        self.history.fast_forward(out);
        self.last_end = Some(why);
        match then {
            Some(d) => {
                // Apache's reconfigFlag: the designated leader is taken without an election.
                self.serving = false;
                self.election.adopt(d);
                self.decided(now, d, out);
            }
            None => self.start_looking(now, out),
        }
    }

    fn decided(&mut self, now: Millis, d: Decision, out: &mut Vec<Action>) {
        out.push(Action::StateChanged {
            state: d.state,
            leader: Some(d.vote.leader),
            serving: false,
        });
        let mut ctx = Ctx {
            now,
            cfg: &self.cfg,
            history: &mut self.history,
            out,
            views: &mut self.views,
        };
        match d.state {
            PeerState::Leading => match Leader::new(&mut ctx) {
                Ok(l) => self.role = Role::Leading(l),
                Err(e) => return self.end_role(now, e, None, out),
            },
            PeerState::Following | PeerState::Observing => {
                self.next_conn += 1;
                let conn = ((self.cfg.my_sid as u64) << 40) | self.next_conn;
                let kind = self.learner_type;
                self.role = Role::Learning(Learner::new(&mut ctx, kind, d.vote.leader, conn));
            }
            PeerState::Looking => {}
        }
        self.after_step(out);
        self.activate_pending(now, out);
    }

    /// An election notification from `from` (possibly ourselves).
    pub fn on_notification(&mut self, now: Millis, from: Sid, n: &Notification) -> Vec<Action> {
        let mut out = Vec::new();
        if from != self.cfg.my_sid
            && n.version > 1
            && self.cfg.reconfig_enabled
            && matches!(self.role, Role::Looking)
            && n.config.len() > 1
        {
            // A newer config gossiped in the election (Apache's WorkerReceiver): take it,
            // and look again under it when its members differ.
            let qv = std::str::from_utf8(&n.config)
                .ok()
                .and_then(|t| parse_config(&self.cfg, t));
            if let Some(qv) = qv.filter(|q| q.version > self.cfg.version) {
                let prev = self.cfg.clone();
                if self.install_config(Arc::new(qv), &mut out) {
                    self.learner_type = learner_type_in(&self.cfg, self.views.next.as_deref());
                    if !prev.same_members(&self.cfg) {
                        self.start_looking(now, &mut out);
                        return out;
                    }
                }
            }
        }
        if let Some(d) = self.election.on_notification(now, from, n, &mut out) {
            self.decided(now, d, &mut out);
        }
        out
    }

    /// Learner side: the connection `conn` to the leader is up.
    pub fn on_leader_connected(&mut self, now: Millis, conn: ConnId) -> Vec<Action> {
        let mut out = Vec::new();
        self.with_role(now, &mut out, |role, ctx| match role {
            Role::Learning(l) if l.conn() == conn => l.on_connected(ctx),
            _ => {
                ctx.out.push(Action::Close { conn });
                Ok(())
            }
        });
        out
    }

    /// Learner side: the leader sent something on `conn`.
    pub fn on_leader_message(&mut self, now: Millis, conn: ConnId, msg: ZabMessage) -> Vec<Action> {
        let mut out = Vec::new();
        self.with_role(now, &mut out, |role, ctx| match role {
            Role::Learning(l) if l.conn() == conn => l.on_message(ctx, msg),
            _ => Ok(()),
        });
        out
    }

    /// Learner side: the connection to the leader broke (or could not be opened).
    pub fn on_leader_disconnected(&mut self, now: Millis, conn: ConnId) -> Vec<Action> {
        let mut out = Vec::new();
        self.with_role(now, &mut out, |role, _ctx| match role {
            Role::Learning(l) if l.conn() == conn => {
                Err(RoleEnded("connection to leader lost".into()))
            }
            _ => Ok(()),
        });
        out
    }

    /// Leader side: a learner connected to our quorum port as `conn`.
    pub fn on_learner_connected(&mut self, now: Millis, conn: ConnId) -> Vec<Action> {
        let mut out = Vec::new();
        self.with_role(now, &mut out, |role, ctx| {
            match role {
                Role::Leading(l) => l.on_connected(ctx, conn),
                _ => ctx.out.push(Action::Close { conn }),
            }
            Ok(())
        });
        out
    }

    /// Leader side: a learner sent something.
    pub fn on_learner_message(
        &mut self,
        now: Millis,
        conn: ConnId,
        msg: ZabMessage,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        self.with_role(now, &mut out, |role, ctx| match role {
            Role::Leading(l) => l.on_message(ctx, conn, msg),
            _ => Ok(()),
        });
        out
    }

    /// Leader side: a learner's connection closed.
    pub fn on_learner_disconnected(&mut self, now: Millis, conn: ConnId) -> Vec<Action> {
        let mut out = Vec::new();
        self.with_role(now, &mut out, |role, ctx| {
            if let Role::Leading(l) = role {
                l.on_disconnected(ctx, conn);
            }
            Ok(())
        });
        out
    }

    /// Leader: the answer to [`Action::ReadLog`].
    pub fn on_log_read(
        &mut self,
        now: Millis,
        conn: ConnId,
        txns: Option<Vec<super::Proposal>>,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        self.with_role(now, &mut out, |role, ctx| {
            if let Role::Leading(l) = role {
                l.on_log_read(ctx, conn, txns);
            }
            Ok(())
        });
        out
    }

    /// The txn log is durable up to `zxid`.
    pub fn on_persisted(&mut self, now: Millis, zxid: Zxid) -> Vec<Action> {
        let mut out = Vec::new();
        self.history.persisted(zxid);
        self.with_role(now, &mut out, |role, ctx| {
            match role {
                Role::Leading(l) => l.on_persisted(ctx),
                Role::Learning(l) => l.on_persisted(ctx),
                Role::Looking => {}
            }
            Ok(())
        });
        out
    }

    /// Timers. Call at least every `min(tickTime / 2, finalizeWait)` / 4 or so.
    pub fn tick(&mut self, now: Millis) -> Vec<Action> {
        let mut out = Vec::new();
        if let Role::Looking = self.role {
            if let Some(d) = self.election.tick(now, &mut out) {
                self.decided(now, d, &mut out);
            }
            return out;
        }
        self.with_role(now, &mut out, |role, ctx| match role {
            Role::Leading(l) => l.tick(ctx),
            Role::Learning(l) => l.tick(ctx),
            Role::Looking => Ok(()),
        });
        out
    }

    /// Leader: proposes a reconfig txn (zxid `zxid`, assigned by the server core) that
    /// brings `config`; committed by a quorum of the current and the new config.
    pub fn propose_reconfig(
        &mut self,
        now: Millis,
        zxid: Zxid,
        data: Bytes,
        config: QuorumConfig,
    ) -> (Result<Zxid, ProposeError>, Vec<Action>) {
        let mut out = Vec::new();
        let r = match &mut self.role {
            Role::Leading(l) => {
                let mut ctx = Ctx {
                    now,
                    cfg: &self.cfg,
                    history: &mut self.history,
                    out: &mut out,
                    views: &mut self.views,
                };
                l.propose_reconfig(&mut ctx, zxid, data, config)
            }
            _ => Err(ProposeError::NotEstablished),
        };
        self.sync_election_views();
        (r, out)
    }

    /// The zxid the next [`QuorumPeer::propose`] will get (serialize the txn header with it),
    /// or `None` when this server cannot propose now.
    pub fn next_zxid(&self) -> Option<Zxid> {
        match &self.role {
            Role::Leading(l) => l.next_zxid(),
            _ => None,
        }
    }

    /// Test kit: an established leader with nothing in flight moves its zxid counter so
    /// the next proposal gets `counter` (see [`crate::zab::broadcast::leader::Leader::seed_counter`]).
    /// Returns that zxid; the caller's server core must assign from it too.
    pub fn seed_counter(&mut self, counter: u32) -> Option<Zxid> {
        match &mut self.role {
            Role::Leading(l) if l.next_zxid().is_some() => l.seed_counter(counter),
            _ => None,
        }
    }

    /// Leader: proposes a serialized txn; it is delivered everywhere once a quorum acks.
    pub fn propose(
        &mut self,
        now: Millis,
        data: Bytes,
    ) -> (Result<Zxid, ProposeError>, Vec<Action>) {
        self.propose_inner(now, None, data)
    }

    /// Leader: proposes a serialized txn whose zxid `zxid` the server core assigned
    /// (from [`QuorumPeer::next_zxid`] on when this leadership began): the core is the one
    /// place that assigns zxids, and a txn out of order is refused rather than proposed
    /// under another zxid than its header's.
    pub fn propose_txn(
        &mut self,
        now: Millis,
        zxid: Zxid,
        data: Bytes,
    ) -> (Result<Zxid, ProposeError>, Vec<Action>) {
        self.propose_inner(now, Some(zxid), data)
    }

    fn propose_inner(
        &mut self,
        now: Millis,
        zxid: Option<Zxid>,
        data: Bytes,
    ) -> (Result<Zxid, ProposeError>, Vec<Action>) {
        let mut out = Vec::new();
        let r = match &mut self.role {
            Role::Leading(l) if l.next_zxid().is_some() => {
                let mut ctx = Ctx {
                    now,
                    cfg: &self.cfg,
                    history: &mut self.history,
                    out: &mut out,
                    views: &mut self.views,
                };
                match zxid {
                    Some(z) => l.propose_at(&mut ctx, z, data),
                    None => l.propose(&mut ctx, data),
                }
            }
            // The counter is used up. Apache shuts the leader down here, abandoning the
            // proposals in flight; we refuse only this txn and step down at the next tick
            // once those are committed (their clients get their answers), so the new epoch
            // starts from a history with nothing in doubt.
            Role::Leading(l) if l.is_established() => Err(ProposeError::CounterExhausted),
            _ => Err(ProposeError::NotEstablished),
        };
        (r, out)
    }

    /// Leader: a sync of one of our own clients; [`Action::SyncDone`] once everything
    /// proposed before it is committed and a quorum confirmed this leader since.
    pub fn local_sync(&mut self, now: Millis) -> Vec<Action> {
        let mut out = Vec::new();
        self.with_role(now, &mut out, |role, ctx| {
            if let Role::Leading(l) = role {
                l.local_sync(ctx);
            }
            Ok(())
        });
        out
    }

    /// Leader: answers a learner's forwarded sync once everything proposed before it is
    /// committed and a quorum confirmed this leader since.
    pub fn sync_request(&mut self, now: Millis, conn: ConnId) -> Vec<Action> {
        let mut out = Vec::new();
        self.with_role(now, &mut out, |role, ctx| {
            if let Role::Leading(l) = role {
                l.process_sync(ctx, conn);
            }
            Ok(())
        });
        out
    }

    /// Leader: answers a learner's REVALIDATE.
    pub fn revalidate_reply(
        &mut self,
        now: Millis,
        conn: ConnId,
        session_id: i64,
        valid: bool,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        self.with_role(now, &mut out, |role, ctx| {
            if let Role::Leading(l) = role {
                l.revalidate_reply(ctx, conn, session_id, valid);
            }
            Ok(())
        });
        out
    }

    /// Learner: forwards a packet (REQUEST, REVALIDATE...) to the leader; false when not
    /// serving.
    pub fn forward(&mut self, now: Millis, p: QuorumPacket) -> (bool, Vec<Action>) {
        let mut out = Vec::new();
        let mut sent = false;
        self.with_role(now, &mut out, |role, ctx| {
            if let Role::Learning(l) = role {
                sent = l.forward(ctx, p);
            }
            Ok(())
        });
        (sent, out)
    }

    /// Learner: a local client touched a session (reported to the leader in PING replies).
    pub fn touch_session(&mut self, session_id: i64, timeout: i32) {
        if let Role::Learning(l) = &mut self.role {
            l.touch_session(session_id, timeout);
        }
    }

    /// The earliest time `tick` has election work to do, when looking.
    pub fn next_election_deadline(&self) -> Option<Millis> {
        self.election.next_deadline()
    }
}

/// Apache's updateLearnerType: an observer when the config lists us as one, a
/// participant otherwise (voting when listed, non-voting when not in the config). A
/// server the proposed config (`next`) makes a voter follows already: that config can
/// only commit with its acks, and observers send none.
pub(crate) fn learner_type_in(cfg: &QuorumConfig, next: Option<&QuorumConfig>) -> LearnerType {
    if next.is_some_and(|n| n.is_voter(cfg.my_sid)) {
        return LearnerType::Participant;
    }
    match cfg.servers.get(&cfg.my_sid) {
        Some(s) => s.learner_type,
        None => LearnerType::Participant,
    }
}
