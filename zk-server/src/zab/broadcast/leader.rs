//! The leader: one handler per learner connection (Apache's LearnerHandler) and the
//! leader's own progress through discovery, synchronisation and broadcast.
//!
//! Discovery waits for a quorum of FOLLOWERINFOs to pick the new epoch (one above every
//! acceptedEpoch seen), then a quorum of ACKEPOCHs (none more recent than ours), then a
//! quorum of NEWLEADER ACKs; each wait gives up after initLimit ticks. Once established
//! the leader proposes, commits in zxid order on a quorum of ACKs, pings every half tick
//! and steps down when fewer than a quorum of voters were heard within syncLimit ticks.
//!
//! A sync (a learner's, forwarded, or one of our own clients') is answered once everything
//! proposed before it is committed *and* a quorum of voters answered a PING sent after it
//! arrived (a read index): a leader that was cut off or stalled and has not yet noticed
//! that a new leader took over cannot answer a sync from its stale state, so sync + read
//! is linearizable (Apache answers at once: ZOOKEEPER-1675). Followers echo every PING
//! once, in order, so the n-th answer on a connection is the answer to the n-th PING.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use zk_proto::quorum::{QuorumPacket, QuorumPacketType as T};

use std::sync::Arc;

use super::packets::{self, simple, with_data};
use super::sync::{plan, plan_over, SyncPlan};
use super::{end, quorum_in, Activation, Ctx, Proposal, RoleResult};
use crate::zab::zxid::{counter_of, hex, make_zxid};

/// The first counter a leader never proposes (Apache's rollover check).
const COUNTER_LIMIT: i64 = 0xffff_ffff;
use crate::zab::QuorumConfig;
use crate::zab::{Action, ConnId, LearnerType, Millis, Sid, ZabMessage, Zxid};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for a quorum of FOLLOWERINFO to fix the epoch.
    Epoch,
    /// Waiting for a quorum of ACKEPOCH.
    EpochAck,
    /// Waiting for a quorum of NEWLEADER ACKs.
    NewLeaderAck,
    /// Established: serving and broadcasting.
    Established,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Info,
    WaitEpoch,
    AckEpoch,
    WaitEpochQuorum,
    /// Waiting for txns read back from our log (sync older than the recent txns).
    LoadingLog,
    NewLeaderAck,
    WaitStartup,
    Active,
}

#[derive(Debug, Clone)]
struct Handler {
    sid: Sid,
    kind: LearnerType,
    stage: Stage,
    last_rx: Millis,
    peer_last: Zxid,
    forwarding: bool,
    /// Last zxid asked from the log for this learner's sync.
    log_upto: Zxid,
    /// PINGs sent on this connection, and PINGs it answered.
    pings_sent: u64,
    pings_answered: u64,
}

/// Who a sync is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SyncFor {
    /// A learner's forwarded sync: answered with SYNC on its connection.
    Learner(ConnId),
    /// A sync of one of our own clients: answered with [`Action::SyncDone`].
    Local,
}

/// A sync waiting for its read index.
#[derive(Debug, Clone)]
struct PendingSync {
    /// Last proposed when it arrived: committed before it is answered.
    zxid: Zxid,
    to: SyncFor,
    /// Per participant connection: the count of answered PINGs that confirms us as
    /// leader after the sync arrived.
    need: Vec<(ConnId, u64)>,
}

#[derive(Debug, Clone)]
struct Outstanding {
    proposal: Proposal,
    acks: BTreeSet<Sid>,
    /// Voter sets that must each ack by a majority, when a reconfig was in progress as
    /// this was proposed (the old and the new config); `None`: the committed config's.
    quorums: Option<Vec<BTreeSet<Sid>>>,
    /// The config a reconfig txn brings.
    reconfig: Option<Arc<QuorumConfig>>,
}

/// The leader role.
#[derive(Debug)]
pub struct Leader {
    me: Sid,
    phase: Phase,
    phase_deadline: Millis,
    epoch: i64,
    summary: (i64, Zxid),
    connecting: BTreeSet<Sid>,
    electing: BTreeSet<Sid>,
    newleader_acks: BTreeSet<Sid>,
    handlers: BTreeMap<ConnId, Handler>,
    outstanding: BTreeMap<Zxid, Outstanding>,
    last_proposed: Zxid,
    pending_syncs: Vec<PendingSync>,
    next_ping: Millis,
    next_check: Millis,
    /// False once this leader committed a reconfig designating another leader: it
    /// commits nothing more (Apache's allowedToCommit).
    allowed_to_commit: bool,
}

/// A write the leader could not propose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProposeError {
    /// The leader is not established yet (no NEWLEADER quorum).
    NotEstablished,
    /// The caller's txn does not carry the next zxid (see [`Leader::propose_at`]).
    OutOfOrder {
        /// The zxid the next proposal gets.
        expected: Zxid,
        /// The zxid the txn carries.
        got: Zxid,
    },
    /// The epoch's zxid counter is used up: the leader steps down for a new epoch once
    /// its proposals in flight are committed; the client retries on the new leader.
    CounterExhausted,
}

/// A proposal waiting for acks as diagnostics show it: zxid, who acked, and the voter
/// sets whose quorums it needs (`None`: the committed config's alone).
pub type OutstandingView = (Zxid, Vec<Sid>, Option<Vec<Vec<Sid>>>);

impl Leader {
    /// Starts leading (Leader.lead): we count towards the epoch and ack our own epoch.
    pub fn new(ctx: &mut Ctx<'_>) -> RoleResult<Self> {
        let me = ctx.cfg.my_sid;
        let mut l = Leader {
            me,
            phase: Phase::Epoch,
            phase_deadline: ctx.now + ctx.cfg.init_timeout(),
            epoch: -1,
            summary: (ctx.history.current_epoch, ctx.history.applied()),
            connecting: BTreeSet::new(),
            electing: BTreeSet::new(),
            newleader_acks: BTreeSet::new(),
            handlers: BTreeMap::new(),
            outstanding: BTreeMap::new(),
            last_proposed: ctx.history.applied(),
            pending_syncs: Vec::new(),
            next_ping: 0,
            next_check: 0,
            allowed_to_commit: true,
        };
        l.offer_epoch(ctx, me, ctx.history.accepted_epoch);
        Ok(l)
    }

    /// The epoch being established (or -1 before a quorum of learners connected).
    pub fn epoch(&self) -> i64 {
        self.epoch
    }

    /// Whether a quorum acked NEWLEADER: the leader may serve and propose.
    pub fn is_established(&self) -> bool {
        self.phase == Phase::Established
    }

    /// The last zxid proposed.
    pub fn last_proposed(&self) -> Zxid {
        self.last_proposed
    }

    /// Sids of the learners currently connected and identified, with their type.
    pub fn learners(&self) -> Vec<(Sid, LearnerType)> {
        self.handlers.values().map(|h| (h.sid, h.kind)).collect()
    }

    /// The oldest proposal waiting for acks: its zxid, who acked, the voter sets it
    /// needs (for diagnostics).
    pub fn oldest_outstanding(&self) -> Option<OutstandingView> {
        self.outstanding.first_key_value().map(|(z, o)| {
            (
                *z,
                o.acks.iter().copied().collect(),
                o.quorums
                    .as_ref()
                    .map(|q| q.iter().map(|s| s.iter().copied().collect()).collect()),
            )
        })
    }

    /// Learner syncs waiting for earlier proposals to commit (`mntr` zk_pending_syncs).
    pub fn pending_syncs(&self) -> usize {
        self.pending_syncs.len()
    }

    fn new_leader_zxid(&self) -> Zxid {
        make_zxid(self.epoch, 0)
    }

    /// getEpochToPropose.
    fn offer_epoch(&mut self, ctx: &mut Ctx<'_>, sid: Sid, last_accepted: i64) {
        if self.phase != Phase::Epoch {
            return;
        }
        if last_accepted >= self.epoch {
            self.epoch = last_accepted + 1;
        }
        if ctx.cfg.is_voter(sid) {
            self.connecting.insert(sid);
        }
        if self.connecting.contains(&self.me) && ctx.cfg.contains_quorum(&self.connecting) {
            self.phase = Phase::EpochAck;
            self.phase_deadline = ctx.now + ctx.cfg.init_timeout();
            ctx.history.set_accepted_epoch(self.epoch, ctx.out);
            if ctx.cfg.version == 0 && ctx.views.next.is_none() {
                // ZOOKEEPER-1783: a config never established gets the NEWLEADER zxid as
                // its version, agreed on through NEWLEADER and activated once established.
                let bumped = ctx
                    .cfg
                    .with_members(ctx.cfg.servers.clone(), make_zxid(self.epoch, 0));
                ctx.views.see(ctx.cfg, bumped, ctx.out);
            }
            let waiting: Vec<ConnId> = self.in_stage(Stage::WaitEpoch);
            for conn in waiting {
                self.send_leader_info(ctx, conn);
            }
            let me = self.me;
            let summary = self.summary;
            self.epoch_ack(ctx, me, summary.0, summary.1);
        }
    }

    /// waitForEpochAck; `false` when the learner must be dropped.
    fn epoch_ack(&mut self, ctx: &mut Ctx<'_>, sid: Sid, epoch: i64, last: Zxid) -> bool {
        if self.phase != Phase::EpochAck {
            return true;
        }
        if epoch != -1 {
            if (epoch, last) > self.summary {
                return false;
            }
            if last != -1 && ctx.cfg.is_voter(sid) {
                self.electing.insert(sid);
            }
        }
        if self.electing.contains(&self.me) && ctx.cfg.contains_quorum(&self.electing) {
            self.phase = Phase::NewLeaderAck;
            self.phase_deadline = ctx.now + ctx.cfg.init_timeout();
            ctx.history.set_current_epoch(self.epoch, ctx.out);
            for conn in self.in_stage(Stage::WaitEpochQuorum) {
                self.sync_learner(ctx, conn);
            }
            self.self_new_leader_ack(ctx);
        }
        true
    }

    /// Our own NEWLEADER ack, once our history is on disk.
    fn self_new_leader_ack(&mut self, ctx: &mut Ctx<'_>) {
        if self.phase == Phase::NewLeaderAck
            && ctx.history.durable() >= ctx.history.last_logged()
            && self.newleader_acks.insert(self.me)
        {
            self.check_established(ctx);
        }
    }

    fn check_established(&mut self, ctx: &mut Ctx<'_>) {
        if self.phase == Phase::NewLeaderAck
            && self.newleader_acks.contains(&self.me)
            && ctx.quorum_of_all(&self.newleader_acks)
        {
            self.phase = Phase::Established;
            if let Some(next) = ctx.views.next.clone() {
                // The last seen config went out with NEWLEADER and a quorum of it acked:
                // it is in force now (this completes a reconfig a previous leader left
                // uncommitted, or the ZOOKEEPER-1783 version bump).
                let designated = self.designated_leader(&next, &self.newleader_acks, None);
                if designated != self.me {
                    self.allowed_to_commit = false;
                }
                ctx.views.activate = Some(Activation {
                    config: next,
                    designated: Some(designated),
                });
            }
            self.last_proposed = make_zxid(self.epoch, 0);
            self.next_ping = ctx.now;
            self.next_check = ctx.now + ctx.cfg.tick_time;
            for conn in self.in_stage(Stage::WaitStartup) {
                self.up_to_date(ctx, conn);
            }
        }
    }

    fn in_stage(&self, stage: Stage) -> Vec<ConnId> {
        self.handlers
            .iter()
            .filter(|(_, h)| h.stage == stage)
            .map(|(c, _)| *c)
            .collect()
    }

    fn send(ctx: &mut Ctx<'_>, conn: ConnId, p: QuorumPacket) {
        ctx.out.push(Action::Send {
            conn,
            msg: ZabMessage::Packet(p),
        });
    }

    fn send_leader_info(&mut self, ctx: &mut Ctx<'_>, conn: ConnId) {
        let zxid = self.new_leader_zxid();
        if let Some(h) = self.handlers.get_mut(&conn) {
            h.stage = Stage::AckEpoch;
            h.last_rx = ctx.now;
        }
        Self::send(
            ctx,
            conn,
            with_data(
                T::LeaderInfo,
                zxid,
                packets::int_data(zk_proto::quorum::LEARNER_PROTOCOL_VERSION),
            ),
        );
    }

    /// syncFollower + startForwarding + NEWLEADER. When the learner is older than our
    /// recent txns, first try a DIFF from our txn log (Apache's txnlog sync).
    fn sync_learner(&mut self, ctx: &mut Ctx<'_>, conn: ConnId) {
        let Some(h) = self.handlers.get_mut(&conn) else {
            return;
        };
        let p = plan(ctx.history, h.peer_last);
        if matches!(p, SyncPlan::Snap { .. }) && ctx.cfg.txn_log_sync && h.peer_last >= 0 {
            h.stage = Stage::LoadingLog;
            h.log_upto = ctx.history.applied();
            ctx.out.push(Action::ReadLog {
                conn,
                from: h.peer_last,
                to: h.log_upto,
            });
            return;
        }
        self.finish_sync(ctx, conn, p);
    }

    /// The driver read our log for a learner's sync: `txns` are our logged txns from the
    /// learner's last zxid on, or `None` when the log no longer reaches back that far.
    pub fn on_log_read(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, txns: Option<Vec<Proposal>>) {
        let Some(h) = self.handlers.get(&conn) else {
            return;
        };
        if h.stage != Stage::LoadingLog {
            return;
        }
        let (peer_last, upto) = (h.peer_last, h.log_upto);
        let last = ctx.history.applied();
        let p = match txns {
            Some(mut list) if list.first().is_some_and(|p| p.zxid == peer_last) => {
                list.retain(|p| p.zxid <= upto);
                // The log part must end at `upto`, and the recent txns must still reach
                // back to `upto` (commits since the request may have pushed it out):
                // otherwise the two would leave a gap.
                let log_complete = list.last().map(|p| p.zxid) == Some(upto);
                let recent = ctx.history.recent();
                let overlaps = upto == last || recent.iter().any(|p| p.zxid == upto);
                if log_complete && overlaps {
                    list.extend(recent.iter().filter(|p| p.zxid > upto).cloned());
                    plan_over(last, &list, peer_last)
                } else {
                    SyncPlan::Snap { last }
                }
            }
            _ => SyncPlan::Snap { last },
        };
        self.finish_sync(ctx, conn, p);
    }

    fn finish_sync(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, p: SyncPlan) {
        let Some(h) = self.handlers.get_mut(&conn) else {
            return;
        };
        for pkt in p.packets() {
            Self::send(ctx, conn, pkt);
        }
        if let SyncPlan::Snap { last } = p {
            ctx.out.push(Action::SendSnapshot { conn, zxid: last });
        }
        h.forwarding = true;
        h.stage = Stage::NewLeaderAck;
        h.last_rx = ctx.now;
        let mode = match &p {
            SyncPlan::Diff { .. } => "DIFF",
            SyncPlan::Trunc { .. } => "TRUNC",
            SyncPlan::Snap { .. } => "SNAP",
        };
        tracing::debug!(
            "leader {}: learner sid {} (last zxid {}) synced by {mode} up to {}; NEWLEADER {} \
             sent, waiting for its ACK (initLimit {} ms)",
            self.me,
            h.sid,
            hex(h.peer_last),
            hex(p.last_zxid()),
            hex(make_zxid(self.epoch, 0)),
            ctx.cfg.init_timeout()
        );
        if h.kind == LearnerType::Participant {
            for o in self.outstanding.values() {
                if o.proposal.zxid > p.last_zxid() {
                    Self::send(
                        ctx,
                        conn,
                        with_data(T::Proposal, o.proposal.zxid, o.proposal.data.clone()),
                    );
                }
            }
        }
        let zxid = self.new_leader_zxid();
        let config = Bytes::from(ctx.last_seen_text());
        Self::send(ctx, conn, with_data(T::NewLeader, zxid, config));
    }

    fn up_to_date(&mut self, ctx: &mut Ctx<'_>, conn: ConnId) {
        if let Some(h) = self.handlers.get_mut(&conn) {
            h.stage = Stage::Active;
            Self::send(ctx, conn, simple(T::UpToDate, -1));
            if h.kind == LearnerType::Participant {
                // Its NEWLEADER ACK came after every pending sync arrived: it followed us
                // since, which is what their PINGs ask (the connections those PINGs went
                // out on may be gone, and the learner back on this one).
                for p in &mut self.pending_syncs {
                    p.need.push((conn, 0));
                }
                self.answer_syncs(ctx);
            }
        }
    }

    fn drop_handler(&mut self, ctx: &mut Ctx<'_>, conn: ConnId) {
        if self.handlers.remove(&conn).is_some() {
            ctx.out.push(Action::Close { conn });
        }
        self.pending_syncs
            .retain(|p| p.to != SyncFor::Learner(conn));
    }

    /// A learner connected to our quorum port.
    pub fn on_connected(&mut self, ctx: &mut Ctx<'_>, conn: ConnId) {
        self.handlers.insert(
            conn,
            Handler {
                sid: -1,
                kind: LearnerType::Observer,
                stage: Stage::Info,
                last_rx: ctx.now,
                peer_last: -1,
                forwarding: false,
                log_upto: -1,
                pings_sent: 0,
                pings_answered: 0,
            },
        );
    }

    /// A learner connection closed.
    pub fn on_disconnected(&mut self, _ctx: &mut Ctx<'_>, conn: ConnId) {
        self.handlers.remove(&conn);
        self.pending_syncs
            .retain(|p| p.to != SyncFor::Learner(conn));
    }

    /// Something arrived from a learner. Learner misbehaviour only drops that learner.
    pub fn on_message(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, msg: ZabMessage) -> RoleResult {
        let Some(h) = self.handlers.get_mut(&conn) else {
            return Ok(());
        };
        h.last_rx = ctx.now;
        let ZabMessage::Packet(p) = msg else {
            self.drop_handler(ctx, conn);
            return Ok(());
        };
        let stage = h.stage;
        let (sid, ty, zxid) = (h.sid, p.packet_type, p.zxid);
        let ok = match stage {
            Stage::Info => self.on_info(ctx, conn, &p),
            Stage::AckEpoch => self.on_ack_epoch(ctx, conn, &p),
            Stage::NewLeaderAck => self.on_new_leader_ack(ctx, conn, &p),
            Stage::WaitStartup | Stage::Active => self.on_active(ctx, conn, p),
            // Learners wait silently for the epoch decisions.
            Stage::WaitEpoch | Stage::WaitEpochQuorum | Stage::LoadingLog => false,
        };
        if !ok {
            tracing::info!(
                "leader {}: dropping learner sid {sid}: unexpected or invalid {ty:?} {} \
                 while waiting for {}",
                self.me,
                hex(zxid),
                self.awaited(stage)
            );
            self.drop_handler(ctx, conn);
        }
        Ok(())
    }

    /// What a learner handler in `stage` waits for, for logs.
    fn awaited(&self, stage: Stage) -> String {
        match stage {
            Stage::Info => "FOLLOWERINFO / OBSERVERINFO".into(),
            Stage::WaitEpoch => "a quorum of FOLLOWERINFO to fix the epoch".into(),
            Stage::AckEpoch => format!("ACKEPOCH for epoch {}", self.epoch),
            Stage::WaitEpochQuorum => "a quorum of ACKEPOCH".into(),
            Stage::LoadingLog => "our txn log read back for its DIFF".into(),
            Stage::NewLeaderAck => {
                format!("the ACK of NEWLEADER {}", hex(make_zxid(self.epoch, 0)))
            }
            Stage::WaitStartup => "a quorum of NEWLEADER ACKs (UPTODATE follows)".into(),
            Stage::Active => "ACKs / PING replies".into(),
        }
    }

    fn on_info(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, p: &QuorumPacket) -> bool {
        let kind = match p.packet_type {
            T::FollowerInfo => LearnerType::Participant,
            T::ObserverInfo => LearnerType::Observer,
            _ => return false,
        };
        let Ok(info) = packets::parse_learner_info(p) else {
            return false;
        };
        let sid = info.serverid;
        if sid == self.me {
            return false;
        }
        if info.config_version > ctx.cfg.version {
            tracing::warn!(
                "leader {}: learner sid {sid} is ahead of the leader (config version {:#x} > \
                 {:#x})",
                self.me,
                info.config_version,
                ctx.cfg.version
            );
            return false;
        }
        if !ctx.cfg.servers.contains_key(&sid) {
            // As Apache: a server not in the config may learn (a joiner before the
            // reconfig adding it); its acks count in no quorum.
            tracing::info!(
                "leader {}: learner sid {sid} is not in the current config {:#x}",
                self.me,
                ctx.cfg.version
            );
        }
        let stale: Vec<ConnId> = self
            .handlers
            .iter()
            .filter(|(c, h)| **c != conn && h.sid == sid)
            .map(|(c, _)| *c)
            .collect();
        for c in stale {
            self.drop_handler(ctx, c);
        }
        if let Some(h) = self.handlers.get_mut(&conn) {
            h.sid = sid;
            h.kind = kind;
            h.stage = Stage::WaitEpoch;
        }
        if self.phase == Phase::Epoch {
            self.offer_epoch(ctx, sid, crate::zab::zxid::epoch_of(p.zxid));
        } else {
            self.send_leader_info(ctx, conn);
        }
        true
    }

    fn on_ack_epoch(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, p: &QuorumPacket) -> bool {
        if p.packet_type != T::AckEpoch {
            return false;
        }
        let Ok(epoch) = packets::parse_int(p) else {
            return false;
        };
        let Some(h) = self.handlers.get_mut(&conn) else {
            return false;
        };
        h.peer_last = p.zxid;
        h.stage = Stage::WaitEpochQuorum;
        let sid = h.sid;
        if self.phase == Phase::EpochAck {
            return self.epoch_ack(ctx, sid, i64::from(epoch), p.zxid);
        }
        self.sync_learner(ctx, conn);
        true
    }

    fn on_new_leader_ack(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, p: &QuorumPacket) -> bool {
        if p.packet_type != T::Ack || p.zxid != self.new_leader_zxid() {
            return false;
        }
        let Some(h) = self.handlers.get_mut(&conn) else {
            return false;
        };
        h.stage = Stage::WaitStartup;
        let (sid, kind) = (h.sid, h.kind);
        tracing::debug!(
            "leader {}: learner sid {sid} acked NEWLEADER {}{}",
            self.me,
            hex(p.zxid),
            if self.phase == Phase::Established {
                "; sending UPTODATE"
            } else {
                "; UPTODATE once a quorum acked"
            }
        );
        if self.phase == Phase::Established {
            self.up_to_date(ctx, conn);
        } else if kind == LearnerType::Participant {
            self.newleader_acks.insert(sid);
            self.check_established(ctx);
        }
        true
    }

    fn on_active(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, p: QuorumPacket) -> bool {
        let Some(h) = self.handlers.get(&conn) else {
            return false;
        };
        let (sid, kind) = (h.sid, h.kind);
        match p.packet_type {
            T::Ack if kind == LearnerType::Participant => self.process_ack(ctx, sid, p.zxid),
            T::Ping => {
                match packets::parse_sessions(&p) {
                    Ok(sessions) if !sessions.is_empty() => ctx.out.push(Action::SessionsTouched {
                        from: sid,
                        sessions,
                    }),
                    Ok(_) => {}
                    Err(_) => return false,
                }
                if let Some(h) = self.handlers.get_mut(&conn) {
                    h.pings_answered += 1;
                }
                self.answer_syncs(ctx);
            }
            T::Request => ctx.out.push(Action::LearnerRequest {
                conn,
                from: sid,
                packet: p,
            }),
            T::Revalidate => match packets::parse_revalidate_request(&p) {
                Ok((session_id, timeout)) => ctx.out.push(Action::Revalidate {
                    conn,
                    session_id,
                    timeout,
                }),
                Err(_) => return false,
            },
            // Anything else is ignored, as Apache logs and ignores it.
            _ => {}
        }
        true
    }

    fn process_ack(&mut self, ctx: &mut Ctx<'_>, sid: Sid, zxid: Zxid) {
        if !self.allowed_to_commit {
            return;
        }
        if let Some(o) = self.outstanding.get_mut(&zxid) {
            o.acks.insert(sid);
        }
        self.try_commit(ctx);
    }

    /// Commits, in zxid order, every proposal at the head that has a quorum.
    fn try_commit(&mut self, ctx: &mut Ctx<'_>) {
        while let Some(entry) = self.outstanding.first_entry() {
            if !self.allowed_to_commit {
                break;
            }
            let o = entry.get();
            let ok = match &o.quorums {
                Some(sets) => quorum_in(sets, &o.acks),
                None => ctx.cfg.contains_quorum(&o.acks),
            };
            if !ok {
                break;
            }
            let o = entry.remove();
            let zxid = o.proposal.zxid;
            if ctx.history.commit(zxid, ctx.out).is_err() {
                // Cannot happen: outstanding proposals are exactly the pending log tail.
                break;
            }
            let designated = o.reconfig.as_ref().map(|qv| {
                let d = self.designated_leader(qv, &o.acks, Some(zxid));
                tracing::info!(
                    "leader {}: committing reconfig {} to config {:#x}; designated leader {d}",
                    self.me,
                    hex(zxid),
                    qv.version
                );
                if d != self.me {
                    self.allowed_to_commit = false;
                }
                ctx.views.activate = Some(Activation {
                    config: qv.clone(),
                    designated: Some(d),
                });
                // The proposals after it waited for the old and the new config; with the
                // new one in force its quorum alone commits them (they commit after this
                // one in any case). Members dropping out of the old config (an old voter
                // turned observer re-registers and acks no more) cannot hold them up.
                let new_voters: BTreeSet<Sid> = qv.voters().collect();
                for later in self.outstanding.values_mut() {
                    if later.quorums.is_some() {
                        later.quorums = Some(vec![new_voters.clone()]);
                    }
                }
                d
            });
            let targets: Vec<(ConnId, LearnerType)> = self
                .handlers
                .iter()
                .filter(|(_, h)| h.forwarding)
                .map(|(c, h)| (*c, h.kind))
                .collect();
            for (conn, kind) in targets {
                let pkt = match (kind, designated) {
                    (LearnerType::Participant, None) => simple(T::Commit, zxid),
                    (LearnerType::Observer, None) => {
                        with_data(T::Inform, zxid, o.proposal.data.clone())
                    }
                    (LearnerType::Participant, Some(d)) => {
                        with_data(T::CommitAndActivate, zxid, packets::long_data(d))
                    }
                    (LearnerType::Observer, Some(d)) => with_data(
                        T::InformAndActivate,
                        zxid,
                        packets::designated_with(d, &o.proposal.data),
                    ),
                };
                Self::send(ctx, conn, pkt);
            }
        }
        self.answer_syncs(ctx);
    }

    /// Sends a PING on every active learner connection; the PING count each participant
    /// must answer up to for a read index taken now.
    fn ping_all(&mut self, ctx: &mut Ctx<'_>) -> Vec<(ConnId, u64)> {
        let mut need = Vec::new();
        for conn in self.in_stage(Stage::Active) {
            if let Some(h) = self.handlers.get_mut(&conn) {
                h.pings_sent += 1;
                if h.kind == LearnerType::Participant {
                    need.push((conn, h.pings_sent));
                }
            }
            Self::send(ctx, conn, simple(T::Ping, self.last_proposed));
        }
        need
    }

    /// Answers, oldest first, the syncs whose proposals are committed and whose read
    /// index a quorum confirmed. (A later sync's conditions imply an earlier one's, so
    /// answering in order never holds a ready sync back behind an unready one for long.)
    fn answer_syncs(&mut self, ctx: &mut Ctx<'_>) {
        while let Some(p) = self.pending_syncs.first() {
            let committed = self
                .outstanding
                .first_key_value()
                .is_none_or(|(z, _)| p.zxid < *z);
            if !committed {
                return;
            }
            let mut confirmed: BTreeSet<Sid> = p
                .need
                .iter()
                .filter_map(|(conn, n)| {
                    let h = self.handlers.get(conn)?;
                    (h.pings_answered >= *n).then_some(h.sid)
                })
                .collect();
            confirmed.insert(self.me);
            if !ctx.quorum_of_all(&confirmed) {
                return;
            }
            let p = self.pending_syncs.remove(0);
            match p.to {
                SyncFor::Learner(conn) => Self::send(ctx, conn, simple(T::Sync, 0)),
                SyncFor::Local => ctx.out.push(Action::SyncDone),
            }
        }
    }

    /// Apache's getDesignatedLeader: we stay leader if we are a voter of `qv` at the
    /// same quorum address; otherwise the new voter among those that acked the reconfig
    /// (`acks`) that also acked the most of the proposals after it.
    fn designated_leader(
        &self,
        qv: &QuorumConfig,
        acks: &BTreeSet<Sid>,
        zxid: Option<Zxid>,
    ) -> Sid {
        if qv.is_voter(self.me) {
            return self.me;
        }
        let mut candidates: BTreeSet<Sid> = acks
            .iter()
            .copied()
            .filter(|s| *s != self.me && qv.is_voter(*s))
            .collect();
        let Some(mut best) = candidates.first().copied() else {
            return self.me;
        };
        if let Some(z) = zxid {
            for (_, o) in self.outstanding.range(z + 1..) {
                candidates.retain(|s| o.acks.contains(s));
                match candidates.first() {
                    None => break,
                    Some(c) => best = *c,
                }
                if candidates.len() == 1 {
                    break;
                }
            }
        }
        best
    }

    /// Sids that could ack right now (Apache's isQuorumSynced): us and the participants
    /// synced with us and heard from within syncLimit.
    pub fn synced_sids(&self, now: Millis, sync_timeout: Millis) -> BTreeSet<Sid> {
        let mut ids: BTreeSet<Sid> = self
            .handlers
            .values()
            .filter(|h| {
                h.kind == LearnerType::Participant
                    && h.forwarding
                    && h.sid >= 0
                    && now.saturating_sub(h.last_rx) <= sync_timeout
            })
            .map(|h| h.sid)
            .collect();
        ids.insert(self.me);
        ids
    }

    /// Proposes a reconfig txn bringing `qv` (its version is the txn's zxid): from now on
    /// every proposal needs a quorum of the committed config and of `qv`.
    pub fn propose_reconfig(
        &mut self,
        ctx: &mut Ctx<'_>,
        zxid: Zxid,
        data: Bytes,
        qv: QuorumConfig,
    ) -> Result<Zxid, ProposeError> {
        match self.next_zxid() {
            Some(expected) if expected != zxid => {
                return Err(ProposeError::OutOfOrder {
                    expected,
                    got: zxid,
                })
            }
            None => return Err(ProposeError::NotEstablished),
            _ => {}
        }
        ctx.views.see(ctx.cfg, qv, ctx.out);
        let reconfig = ctx.views.next.clone();
        let z = self.propose(ctx, data)?;
        if let Some(o) = self.outstanding.get_mut(&z) {
            o.reconfig = reconfig;
        }
        Ok(z)
    }

    /// Proposes a txn (the caller assigns `data`'s zxid from the returned value: call
    /// [`Leader::next_zxid`] first and serialize the txn with it).
    pub fn propose(&mut self, ctx: &mut Ctx<'_>, data: Bytes) -> Result<Zxid, ProposeError> {
        if self.phase != Phase::Established || !self.allowed_to_commit {
            return Err(ProposeError::NotEstablished);
        }
        if self.counter_exhausted() {
            return Err(ProposeError::CounterExhausted);
        }
        let zxid = self.last_proposed + 1;
        self.last_proposed = zxid;
        let p = Proposal { zxid, data };
        if ctx.history.append(p.clone(), ctx.out).is_err() {
            return Err(ProposeError::NotEstablished);
        }
        let targets: Vec<ConnId> = self
            .handlers
            .iter()
            .filter(|(_, h)| h.forwarding && h.kind == LearnerType::Participant)
            .map(|(c, _)| *c)
            .collect();
        for conn in targets {
            Self::send(ctx, conn, with_data(T::Proposal, zxid, p.data.clone()));
        }
        let quorums = ctx.views.next.is_some().then(|| ctx.voter_sets());
        self.outstanding.insert(
            zxid,
            Outstanding {
                proposal: p,
                acks: BTreeSet::new(),
                quorums,
                reconfig: None,
            },
        );
        Ok(zxid)
    }

    /// Proposes a txn whose zxid `zxid` the caller's server core assigned (starting from
    /// [`Leader::next_zxid`] when it took over): refused unless it is the next one, so a
    /// txn header and its proposal can never disagree.
    pub fn propose_at(
        &mut self,
        ctx: &mut Ctx<'_>,
        zxid: Zxid,
        data: Bytes,
    ) -> Result<Zxid, ProposeError> {
        match self.next_zxid() {
            Some(expected) if expected != zxid => Err(ProposeError::OutOfOrder {
                expected,
                got: zxid,
            }),
            _ => self.propose(ctx, data),
        }
    }

    /// The zxid the next proposal will get, or `None` when the leader cannot propose
    /// (not established, or the counter would roll over: Apache forces a re-election).
    pub fn next_zxid(&self) -> Option<Zxid> {
        if self.phase != Phase::Established || !self.allowed_to_commit {
            return None;
        }
        (!self.counter_exhausted()).then_some(self.last_proposed + 1)
    }

    /// Whether the next proposal would need counter 0xffffffff. Like Apache
    /// (ZOOKEEPER-2789) that value is never issued: one more would carry into the epoch
    /// bits and collide with the next epoch's zxids.
    pub fn counter_exhausted(&self) -> bool {
        counter_of(self.last_proposed + 1) >= COUNTER_LIMIT
    }

    /// Test kit: moves this established leader's counter forward so its next proposal
    /// gets `counter` (to test the rollover without 4 billion writes). Followers accept
    /// the gap as they accept any growing zxid. Returns the next zxid, or `None` when not
    /// established, with proposals in flight, or when it would move the counter back.
    pub fn seed_counter(&mut self, counter: u32) -> Option<Zxid> {
        if self.phase != Phase::Established || !self.outstanding.is_empty() {
            return None;
        }
        let next = make_zxid(self.epoch, i64::from(counter));
        if next <= self.last_proposed || i64::from(counter) > COUNTER_LIMIT {
            return None;
        }
        self.last_proposed = next - 1;
        Some(next)
    }

    /// A learner's forwarded sync: answered once everything proposed so far is committed
    /// and a quorum confirmed us as leader since (see the module docs).
    pub fn process_sync(&mut self, ctx: &mut Ctx<'_>, conn: ConnId) {
        self.queue_sync(ctx, SyncFor::Learner(conn));
    }

    /// A sync of one of our own clients: [`Action::SyncDone`] once everything proposed so
    /// far is committed and a quorum confirmed us as leader since.
    pub fn local_sync(&mut self, ctx: &mut Ctx<'_>) {
        self.queue_sync(ctx, SyncFor::Local);
    }

    fn queue_sync(&mut self, ctx: &mut Ctx<'_>, to: SyncFor) {
        let need = self.ping_all(ctx);
        self.pending_syncs.push(PendingSync {
            zxid: self.last_proposed,
            to,
            need,
        });
        self.answer_syncs(ctx);
    }

    /// Answers a learner's REVALIDATE.
    pub fn revalidate_reply(
        &mut self,
        ctx: &mut Ctx<'_>,
        conn: ConnId,
        session_id: i64,
        valid: bool,
    ) {
        if self.handlers.contains_key(&conn) {
            Self::send(ctx, conn, packets::revalidate_reply(session_id, valid));
        }
    }

    /// Our log is durable up to `zxid`: that is our own ACK.
    pub fn on_persisted(&mut self, ctx: &mut Ctx<'_>) {
        self.self_new_leader_ack(ctx);
        let durable = ctx.history.durable();
        let me = self.me;
        for (z, o) in self.outstanding.iter_mut() {
            if *z > durable {
                break;
            }
            o.acks.insert(me);
        }
        self.try_commit(ctx);
    }

    /// Timers: phase timeouts, learner timeouts, pings and the quorum check.
    pub fn tick(&mut self, ctx: &mut Ctx<'_>) -> RoleResult {
        let now = ctx.now;
        if self.phase != Phase::Established && now >= self.phase_deadline {
            let have = match self.phase {
                Phase::Epoch => &self.connecting,
                Phase::EpochAck => &self.electing,
                _ => &self.newleader_acks,
            };
            return end(format!(
                "timeout waiting for a quorum in phase {:?} (epoch {}, only from sids {have:?})",
                self.phase, self.epoch
            ));
        }
        let expired: Vec<(ConnId, Sid, Stage, Zxid, Millis, Millis, &str)> = self
            .handlers
            .iter()
            .filter_map(|(c, h)| {
                let (limit, which) = match h.stage {
                    Stage::WaitEpoch | Stage::WaitEpochQuorum | Stage::LoadingLog => return None,
                    Stage::WaitStartup | Stage::Active => (ctx.cfg.sync_timeout(), "syncLimit"),
                    Stage::Info | Stage::AckEpoch | Stage::NewLeaderAck => {
                        (ctx.cfg.init_timeout(), "initLimit")
                    }
                };
                let silent = now.saturating_sub(h.last_rx);
                (silent > limit).then_some((*c, h.sid, h.stage, h.peer_last, silent, limit, which))
            })
            .collect();
        for (conn, sid, stage, peer_last, silent, limit, which) in expired {
            tracing::warn!(
                "leader {}: dropping learner sid {sid} (last zxid {}): nothing heard for {silent} \
                 ms ({which} {limit} ms) while waiting for {}",
                self.me,
                hex(peer_last),
                self.awaited(stage)
            );
            self.drop_handler(ctx, conn);
        }
        if self.phase != Phase::Established {
            return Ok(());
        }
        if self.counter_exhausted() && self.outstanding.is_empty() {
            // Every proposal of this epoch is committed and the next one would need counter
            // 0xffffffff: step down now (not when the next write arrives, as Apache's
            // ZOOKEEPER-2789 check does) so the new epoch starts before a client waits.
            return end(format!(
                "zxid counter of epoch {} exhausted at {}: new election for a new epoch",
                self.epoch,
                hex(self.last_proposed)
            ));
        }
        if now >= self.next_ping {
            self.next_ping = now + (ctx.cfg.tick_time / 2).max(1);
            self.ping_all(ctx);
        }
        if now >= self.next_check {
            self.next_check = now + ctx.cfg.tick_time;
            let mut synced: BTreeSet<Sid> = self
                .handlers
                .values()
                .filter(|h| h.kind == LearnerType::Participant && h.sid >= 0)
                .map(|h| h.sid)
                .collect();
            synced.insert(self.me);
            if !ctx.quorum_of_all(&synced) {
                return end(format!(
                    "not sufficient followers synced, only synced with sids {synced:?} (last proposed {})",
                    hex(self.last_proposed)
                ));
            }
        }
        Ok(())
    }

    /// Closes every learner connection (the role is ending).
    pub fn shutdown(&mut self, ctx: &mut Ctx<'_>) {
        for conn in std::mem::take(&mut self.handlers).into_keys() {
            ctx.out.push(Action::Close { conn });
        }
    }
}
