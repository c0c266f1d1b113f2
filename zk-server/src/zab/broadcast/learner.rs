//! What followers and observers share (Apache's Learner): connecting, registering with
//! FOLLOWERINFO / OBSERVERINFO, the epoch handshake, DIFF / TRUNC / SNAP sync, NEWLEADER
//! acknowledged only once the synced txns are durable, UPTODATE, and the read timeouts
//! (initLimit ticks until NEWLEADER is acked, syncLimit ticks after). Every txn from the
//! leader is decoded before it is logged; one that does not decode ends the role.
//!
//! Broadcast-phase packets are handled by [`super::follower`] or [`super::observer`].

use std::collections::{BTreeMap, VecDeque};

use zk_proto::quorum::{QuorumPacket, QuorumPacketType as T};

use std::sync::Arc;

use super::packets::{self, simple};
use super::{
    decode_leader_txn, end, parse_config, reconfig_in, reconfig_of, Activation, Ctx, RoleResult,
};
use crate::zab::zxid::{epoch_of, hex, make_zxid};
use crate::zab::QuorumConfig;
use crate::zab::{Action, ConnId, LearnerType, Millis, Sid, ZabMessage, Zxid};

/// Where a learner is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LearnerStage {
    /// Waiting for the connection to the leader.
    Connecting,
    /// Sent FOLLOWERINFO / OBSERVERINFO, waiting for LEADERINFO.
    AwaitLeaderInfo,
    /// Sent ACKEPOCH, waiting for DIFF / TRUNC / SNAP.
    AwaitSyncMode,
    /// Receiving the sync txns, waiting for NEWLEADER.
    Syncing,
    /// Got NEWLEADER; acks it once durable, then waits for UPTODATE.
    Synced,
    /// Got UPTODATE: serving clients and following the broadcast.
    Broadcast,
}

/// A follower or observer.
#[derive(Debug)]
pub struct Learner {
    pub(super) kind: LearnerType,
    pub(super) leader: Sid,
    pub(super) conn: ConnId,
    pub(super) stage: LearnerStage,
    pub(super) new_epoch: i64,
    pub(super) last_rx: Millis,
    /// Zxid of the last txn logged when NEWLEADER arrived; NEWLEADER is acked once the
    /// log is durable up to it. `None` once acked.
    pub(super) newleader_needs: Option<Zxid>,
    /// Proposals to ack once durable (followers only), ascending.
    pub(super) ack_queue: VecDeque<Zxid>,
    pub(super) touches: BTreeMap<i64, i32>,
    /// The config NEWLEADER carried, activated at UPTODATE.
    pub(super) newleader_config: Option<Arc<QuorumConfig>>,
}

impl Learner {
    /// Starts learning from `leader`: asks the driver to connect under `conn`.
    pub fn new(ctx: &mut Ctx<'_>, kind: LearnerType, leader: Sid, conn: ConnId) -> Self {
        ctx.out.push(Action::ConnectLeader { leader, conn });
        Learner {
            kind,
            leader,
            conn,
            stage: LearnerStage::Connecting,
            new_epoch: -1,
            last_rx: ctx.now,
            newleader_needs: None,
            ack_queue: VecDeque::new(),
            touches: BTreeMap::new(),
            newleader_config: None,
        }
    }

    /// The leader we learn from.
    pub fn leader(&self) -> Sid {
        self.leader
    }

    /// The connection to the leader.
    pub fn conn(&self) -> ConnId {
        self.conn
    }

    /// Where we are.
    pub fn stage(&self) -> LearnerStage {
        self.stage
    }

    /// Whether UPTODATE arrived: clients may be served.
    pub fn is_serving(&self) -> bool {
        self.stage == LearnerStage::Broadcast
    }

    pub(super) fn send(&self, ctx: &mut Ctx<'_>, p: QuorumPacket) {
        ctx.out.push(Action::Send {
            conn: self.conn,
            msg: ZabMessage::Packet(p),
        });
    }

    /// The connection to the leader is up: register.
    pub fn on_connected(&mut self, ctx: &mut Ctx<'_>) -> RoleResult {
        if self.stage != LearnerStage::Connecting {
            return end("connected twice");
        }
        self.last_rx = ctx.now;
        let ty = match self.kind {
            LearnerType::Participant => T::FollowerInfo,
            LearnerType::Observer => T::ObserverInfo,
        };
        self.send(
            ctx,
            packets::learner_info(
                ty,
                ctx.cfg.my_sid,
                ctx.history.accepted_epoch,
                ctx.cfg.version,
            ),
        );
        self.stage = LearnerStage::AwaitLeaderInfo;
        Ok(())
    }

    /// Something arrived from the leader.
    pub fn on_message(&mut self, ctx: &mut Ctx<'_>, msg: ZabMessage) -> RoleResult {
        self.last_rx = ctx.now;
        let p = match msg {
            ZabMessage::Snapshot { zxid, data } => {
                if self.stage != LearnerStage::AwaitSyncMode {
                    return end("snapshot outside of sync");
                }
                ctx.history.install_snapshot(zxid, data, ctx.out);
                self.stage = LearnerStage::Syncing;
                return Ok(());
            }
            ZabMessage::Packet(p) => p,
        };
        match self.stage {
            LearnerStage::Connecting => end("packet before the connection was up"),
            LearnerStage::AwaitLeaderInfo => self.on_leader_info(ctx, &p),
            LearnerStage::AwaitSyncMode => match p.packet_type {
                T::Diff => {
                    self.stage = LearnerStage::Syncing;
                    Ok(())
                }
                T::Trunc => {
                    ctx.history.truncate(p.zxid, ctx.out);
                    self.stage = LearnerStage::Syncing;
                    Ok(())
                }
                other => end(format!("expected DIFF, TRUNC or SNAP, got {other:?}")),
            },
            LearnerStage::Syncing | LearnerStage::Synced => self.on_sync_packet(ctx, p),
            LearnerStage::Broadcast => match self.kind {
                LearnerType::Participant => super::follower::on_broadcast(self, ctx, p),
                LearnerType::Observer => super::observer::on_broadcast(self, ctx, p),
            },
        }
    }

    fn on_leader_info(&mut self, ctx: &mut Ctx<'_>, p: &QuorumPacket) -> RoleResult {
        if p.packet_type != T::LeaderInfo {
            return end(format!(
                "first packet should have been LEADERINFO, got {:?}",
                p.packet_type
            ));
        }
        packets::parse_int(p)?;
        let new_epoch = epoch_of(p.zxid);
        let h = &mut *ctx.history;
        let epoch_data = if new_epoch > h.accepted_epoch {
            let cur = h.current_epoch;
            h.set_accepted_epoch(new_epoch, ctx.out);
            i32::try_from(cur).unwrap_or(i32::MAX)
        } else if new_epoch == h.accepted_epoch {
            // Already acked this epoch once (ZAB forbids acking twice); still send our
            // last zxid so the leader can sync us.
            -1
        } else {
            return end(format!(
                "leader's epoch {new_epoch} is less than our accepted epoch {}",
                h.accepted_epoch
            ));
        };
        self.new_epoch = new_epoch;
        let last = ctx.history.last_logged();
        self.send(
            ctx,
            packets::with_data(T::AckEpoch, last, packets::int_data(epoch_data)),
        );
        self.stage = LearnerStage::AwaitSyncMode;
        Ok(())
    }

    /// Packets between DIFF/TRUNC/SNAP and UPTODATE (Apache's syncWithLeader loop).
    fn on_sync_packet(&mut self, ctx: &mut Ctx<'_>, p: QuorumPacket) -> RoleResult {
        match p.packet_type {
            T::Proposal => self.log_proposal(ctx, &p),
            T::Commit => ctx.history.commit(p.zxid, ctx.out),
            T::CommitAndActivate => self.commit_and_activate(ctx, &p),
            T::Inform if self.kind == LearnerType::Observer => {
                self.log_proposal(ctx, &p)?;
                ctx.history.commit(p.zxid, ctx.out)
            }
            T::InformAndActivate if self.kind == LearnerType::Observer => {
                self.inform_and_activate(ctx, &p)
            }
            T::NewLeader => {
                if self.stage != LearnerStage::Syncing {
                    return end("second NEWLEADER");
                }
                if p.zxid != make_zxid(self.new_epoch, 0) {
                    return end(format!(
                        "NEWLEADER {} is not for epoch {}",
                        hex(p.zxid),
                        self.new_epoch
                    ));
                }
                if let Some(text) = p.data.as_deref().filter(|d| d.len() > 1) {
                    // The leader's last seen config: seen now, in force at UPTODATE.
                    let qv = std::str::from_utf8(text)
                        .ok()
                        .and_then(|t| parse_config(ctx.cfg, t));
                    if let Some(qv) = qv {
                        ctx.views.see(ctx.cfg, qv.clone(), ctx.out);
                        self.newleader_config = Some(Arc::new(qv));
                    }
                }
                ctx.history.set_current_epoch(self.new_epoch, ctx.out);
                self.stage = LearnerStage::Synced;
                self.newleader_needs = Some(ctx.history.last_logged());
                self.flush_acks(ctx);
                Ok(())
            }
            T::UpToDate => {
                if self.stage != LearnerStage::Synced || self.newleader_needs.is_some() {
                    return end("UPTODATE before NEWLEADER was acked");
                }
                self.stage = LearnerStage::Broadcast;
                if let Some(config) = self.newleader_config.take() {
                    if ctx.cfg.reconfig_enabled && config.version > ctx.cfg.version {
                        ctx.views.activate = Some(Activation {
                            config,
                            designated: None,
                        });
                    }
                }
                Ok(())
            }
            // PINGs are only answered once up to date (Apache does the same).
            _ => Ok(()),
        }
    }

    /// Logs a txn the leader sent (and queues its ack, following), once it decodes: one
    /// that does not is never logged or acked, and we leave the leader, as Apache's
    /// Learner does when it cannot deserialize a txn.
    pub(super) fn log_proposal(&mut self, ctx: &mut Ctx<'_>, p: &QuorumPacket) -> RoleResult {
        let data = p.data.clone().unwrap_or_default();
        let entry = match decode_leader_txn(p.zxid, &data) {
            Ok(e) => e,
            Err(e) => {
                let why = format!(
                    "leader {} sent an undecodable txn {} ({:?} while {:?}): {e}",
                    self.leader,
                    hex(p.zxid),
                    p.packet_type,
                    self.stage
                );
                tracing::error!(
                    "learner {}: {why}; leaving the leader, the txn is not logged",
                    ctx.cfg.my_sid
                );
                return end(why);
            }
        };
        if p.packet_type == T::Proposal && ctx.cfg.reconfig_enabled {
            if let Some(qv) = reconfig_in(ctx.cfg, &entry) {
                ctx.views.see(ctx.cfg, qv, ctx.out);
            }
        }
        ctx.history
            .append(super::Proposal { zxid: p.zxid, data }, ctx.out)?;
        if self.kind == LearnerType::Participant {
            self.ack_queue.push_back(p.zxid);
            self.flush_acks(ctx);
        }
        Ok(())
    }

    /// COMMITANDACTIVATE: commits the pending reconfig txn and activates its config with
    /// the leader the committing leader designated.
    pub(super) fn commit_and_activate(
        &mut self,
        ctx: &mut Ctx<'_>,
        p: &QuorumPacket,
    ) -> RoleResult {
        let (designated, _) = packets::parse_designated(p)?;
        let qv = match ctx.history.pending().front() {
            Some(head) if head.zxid == p.zxid => reconfig_of(ctx.cfg, &head.data),
            _ => None,
        };
        ctx.history.commit(p.zxid, ctx.out)?;
        self.activate(ctx, qv, designated);
        Ok(())
    }

    /// INFORMANDACTIVATE (observers): the designated leader and the committed reconfig
    /// txn; logged, applied and activated.
    pub(super) fn inform_and_activate(
        &mut self,
        ctx: &mut Ctx<'_>,
        p: &QuorumPacket,
    ) -> RoleResult {
        let (designated, txn) = packets::parse_designated(p)?;
        let qv = reconfig_of(ctx.cfg, &txn);
        let inner = packets::with_data(T::InformAndActivate, p.zxid, txn);
        self.log_proposal(ctx, &inner)?;
        ctx.history.commit(p.zxid, ctx.out)?;
        self.activate(ctx, qv, designated);
        Ok(())
    }

    fn activate(&mut self, ctx: &mut Ctx<'_>, qv: Option<QuorumConfig>, designated: Sid) {
        match qv {
            Some(qv) if ctx.cfg.reconfig_enabled => {
                ctx.views.activate = Some(Activation {
                    config: Arc::new(qv),
                    designated: Some(designated),
                })
            }
            Some(_) => {}
            None => tracing::warn!(
                "learner {}: activation without a reconfig txn to activate",
                ctx.cfg.my_sid
            ),
        }
    }

    /// Sends the NEWLEADER ack and proposal acks whose txns are durable, in order.
    pub(super) fn flush_acks(&mut self, ctx: &mut Ctx<'_>) {
        let durable = ctx.history.durable();
        if let Some(needed) = self.newleader_needs {
            if durable < needed {
                return;
            }
            self.newleader_needs = None;
            self.send(ctx, simple(T::Ack, make_zxid(self.new_epoch, 0)));
        }
        if self.stage == LearnerStage::Syncing {
            return;
        }
        while let Some(z) = self.ack_queue.front().copied() {
            if z > durable {
                break;
            }
            self.ack_queue.pop_front();
            if z > ctx.history.applied() {
                self.send(ctx, simple(T::Ack, z));
            }
        }
    }

    /// The log became durable further.
    pub fn on_persisted(&mut self, ctx: &mut Ctx<'_>) {
        if self.stage == LearnerStage::Synced || self.stage == LearnerStage::Broadcast {
            self.flush_acks(ctx);
        }
    }

    /// Read timeout: the leader must be heard within initLimit ticks until NEWLEADER is
    /// acked, within syncLimit ticks after.
    pub fn tick(&mut self, ctx: &mut Ctx<'_>) -> RoleResult {
        let acked = matches!(self.stage, LearnerStage::Broadcast)
            || (self.stage == LearnerStage::Synced && self.newleader_needs.is_none());
        let limit = if acked {
            ctx.cfg.sync_timeout()
        } else {
            ctx.cfg.init_timeout()
        };
        if ctx.now.saturating_sub(self.last_rx) > limit {
            return end(format!(
                "leader {} silent for {} ms",
                self.leader,
                ctx.now - self.last_rx
            ));
        }
        Ok(())
    }

    /// Remembers a session a client touched here; reported in the next PING reply.
    pub fn touch_session(&mut self, session_id: i64, timeout: i32) {
        self.touches.insert(session_id, timeout);
    }

    /// Forwards a client write, sync or other packet to the leader (only once serving).
    pub fn forward(&mut self, ctx: &mut Ctx<'_>, p: QuorumPacket) -> bool {
        if !self.is_serving() {
            return false;
        }
        self.send(ctx, p);
        true
    }
}
