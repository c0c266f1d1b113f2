//! An observer in broadcast: applies INFORMs (committed txns with their data) directly,
//! never acks, and ignores PROPOSAL / COMMIT (a leader does not send them to observers).

use zk_proto::quorum::{QuorumPacket, QuorumPacketType as T};

use super::learner::Learner;
use super::{Ctx, RoleResult};

/// One packet from the leader after UPTODATE.
pub(super) fn on_broadcast(l: &mut Learner, ctx: &mut Ctx<'_>, p: QuorumPacket) -> RoleResult {
    match p.packet_type {
        T::Inform => {
            l.log_proposal(ctx, &p)?;
            ctx.history.commit(p.zxid, ctx.out)
        }
        T::InformAndActivate => l.inform_and_activate(ctx, &p),
        T::Proposal | T::Commit => Ok(()),
        _ => super::follower::on_common(l, ctx, p),
    }
}
