//! A follower in broadcast: decodes and logs PROPOSALs, acks them once durable, applies
//! COMMITs in order, answers PINGs with the sessions its clients touched, relays SYNC and
//! REVALIDATE answers to the server core.

use zk_proto::quorum::{QuorumPacket, QuorumPacketType as T};

use super::learner::Learner;
use super::packets::{self, with_data};
use super::{Ctx, RoleResult};
use crate::zab::Action;

/// One packet from the leader after UPTODATE.
pub(super) fn on_broadcast(l: &mut Learner, ctx: &mut Ctx<'_>, p: QuorumPacket) -> RoleResult {
    match p.packet_type {
        T::Proposal => l.log_proposal(ctx, &p),
        T::Commit => ctx.history.commit(p.zxid, ctx.out),
        T::CommitAndActivate => l.commit_and_activate(ctx, &p),
        _ => on_common(l, ctx, p),
    }
}

/// Packets followers and observers handle alike once up to date.
pub(super) fn on_common(l: &mut Learner, ctx: &mut Ctx<'_>, p: QuorumPacket) -> RoleResult {
    match p.packet_type {
        T::Ping => {
            let touched: Vec<(i64, i32)> = std::mem::take(&mut l.touches).into_iter().collect();
            l.send(
                ctx,
                with_data(T::Ping, p.zxid, packets::sessions_data(&touched)),
            );
        }
        T::Sync => ctx.out.push(Action::SyncDone),
        T::Revalidate => {
            let (session_id, valid) = packets::parse_revalidate_reply(&p)?;
            ctx.out.push(Action::Revalidated { session_id, valid });
        }
        // Late UPTODATE and unknown packets are ignored, as Apache logs and ignores them.
        _ => {}
    }
    Ok(())
}
