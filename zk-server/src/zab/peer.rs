//! One ensemble member (Apache's QuorumPeer): runs the election while looking, then the
//! leader or learner role it won, and goes back to looking when that role ends. All
//! inputs carry the driver's time; all outputs are [`Action`]s.

use std::sync::Arc;

use bytes::Bytes;
use zk_proto::election::Notification;
use zk_proto::quorum::QuorumPacket;

use super::broadcast::leader::ProposeError;
use super::broadcast::{Ctx, DiskState, History, Leader, Learner, RoleEnded, RoleResult};
use super::election::{Decision, Election};
use super::{Action, ConnId, LearnerType, Millis, PeerState, QuorumConfig, Sid, ZabMessage, Zxid};

enum Role {
    Looking,
    Leading(Leader),
    Learning(Learner),
}

/// A server of the ensemble, sans IO.
pub struct QuorumPeer {
    cfg: Arc<QuorumConfig>,
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
        let mut p = QuorumPeer {
            cfg,
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

    /// The config.
    pub fn config(&self) -> &QuorumConfig {
        &self.cfg
    }

    /// Current state.
    pub fn state(&self) -> PeerState {
        match &self.role {
            Role::Looking => PeerState::Looking,
            Role::Leading(_) => PeerState::Leading,
            Role::Learning(_) if self.cfg.i_vote() => PeerState::Following,
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
        };
        let r = f(&mut self.role, &mut ctx);
        match r {
            Ok(()) => self.after_step(out),
            Err(e) => self.end_role(now, e, out),
        }
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

    fn end_role(&mut self, now: Millis, why: RoleEnded, out: &mut Vec<Action>) {
        let role = std::mem::replace(&mut self.role, Role::Looking);
        let mut ctx = Ctx {
            now,
            cfg: &self.cfg,
            history: &mut self.history,
            out,
        };
        match role {
            Role::Looking => {}
            Role::Leading(mut l) => l.shutdown(&mut ctx),
            Role::Learning(l) => ctx.out.push(Action::Close { conn: l.conn() }),
        }
        // Like Apache's fastForwardDataBase: what we logged is part of our history.
        self.history.fast_forward(out);
        self.last_end = Some(why);
        self.start_looking(now, out);
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
        };
        match d.state {
            PeerState::Leading => match Leader::new(&mut ctx) {
                Ok(l) => self.role = Role::Leading(l),
                Err(e) => return self.end_role(now, e, out),
            },
            PeerState::Following | PeerState::Observing => {
                self.next_conn += 1;
                let conn = ((self.cfg.my_sid as u64) << 40) | self.next_conn;
                let kind = if self.cfg.i_vote() {
                    LearnerType::Participant
                } else {
                    LearnerType::Observer
                };
                self.role = Role::Learning(Learner::new(&mut ctx, kind, d.vote.leader, conn));
            }
            PeerState::Looking => {}
        }
        self.after_step(out);
    }

    /// An election notification from `from` (possibly ourselves).
    pub fn on_notification(&mut self, now: Millis, from: Sid, n: &Notification) -> Vec<Action> {
        let mut out = Vec::new();
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

    /// The zxid the next [`QuorumPeer::propose`] will get (serialize the txn header with it),
    /// or `None` when this server cannot propose now.
    pub fn next_zxid(&self) -> Option<Zxid> {
        match &self.role {
            Role::Leading(l) => l.next_zxid(),
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
                };
                match zxid {
                    Some(z) => l.propose_at(&mut ctx, z, data),
                    None => l.propose(&mut ctx, data),
                }
            }
            Role::Leading(l) if l.is_established() => {
                // The counter would roll over: Apache forces a re-election.
                self.end_role(
                    now,
                    RoleEnded("zxid counter rolled over, forcing re-election".into()),
                    &mut out,
                );
                Err(ProposeError::NotEstablished)
            }
            _ => Err(ProposeError::NotEstablished),
        };
        (r, out)
    }

    /// Leader: answers a learner's forwarded sync once everything proposed before it is
    /// committed.
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
