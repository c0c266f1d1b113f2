//! QuorumPacket payloads, laid out exactly as Apache's learner and leader write them.

use bytes::{Bytes, BytesMut};
use zk_proto::jute::{JuteReader, JuteWrite, Record};
use zk_proto::quorum::{LearnerInfo, QuorumPacket, QuorumPacketType, LEARNER_PROTOCOL_VERSION};

use super::{end, RoleResult};
use crate::zab::{Sid, Zxid};

/// A packet without payload.
pub fn simple(ty: QuorumPacketType, zxid: Zxid) -> QuorumPacket {
    QuorumPacket {
        packet_type: ty,
        zxid,
        data: None,
        authinfo: None,
    }
}

/// A packet with a payload.
pub fn with_data(ty: QuorumPacketType, zxid: Zxid, data: Bytes) -> QuorumPacket {
    QuorumPacket {
        packet_type: ty,
        zxid,
        data: Some(data),
        authinfo: None,
    }
}

/// FOLLOWERINFO / OBSERVERINFO: zxid = (acceptedEpoch, 0), data = LearnerInfo (with
/// the version of the learner's committed config).
pub fn learner_info(
    ty: QuorumPacketType,
    sid: Sid,
    accepted_epoch: i64,
    config_version: i64,
) -> QuorumPacket {
    let info = LearnerInfo {
        serverid: sid,
        protocol_version: LEARNER_PROTOCOL_VERSION,
        config_version,
    };
    with_data(
        ty,
        crate::zab::zxid::make_zxid(accepted_epoch, 0),
        info.to_bytes(),
    )
}

/// Parses the LearnerInfo of FOLLOWERINFO / OBSERVERINFO (Apache accepts the sid-only
/// 8-byte form of old learners).
pub fn parse_learner_info(p: &QuorumPacket) -> RoleResult<LearnerInfo> {
    let data = p.data.clone().unwrap_or_default();
    if data.len() == 8 {
        let mut r = JuteReader::new(data);
        let sid = r.read_i64().map_err(|e| super::RoleEnded(e.to_string()))?;
        return Ok(LearnerInfo {
            serverid: sid,
            protocol_version: 0,
            config_version: 0,
        });
    }
    LearnerInfo::decode(data).or_else(|e| end(format!("bad LearnerInfo: {e}")))
}

/// An 8-byte big-endian long payload (COMMITANDACTIVATE's designated leader).
pub fn long_data(v: i64) -> Bytes {
    Bytes::copy_from_slice(&v.to_be_bytes())
}

/// INFORMANDACTIVATE's payload: the designated leader, then the txn.
pub fn designated_with(leader: Sid, txn: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(8 + txn.len());
    b.write_i64(leader);
    b.extend_from_slice(txn);
    b.freeze()
}

/// Splits COMMITANDACTIVATE / INFORMANDACTIVATE data into the designated leader and
/// what follows it.
pub fn parse_designated(p: &QuorumPacket) -> RoleResult<(Sid, Bytes)> {
    let data = p.data.clone().unwrap_or_default();
    if data.len() < 8 {
        return end(format!(
            "{:?} without its 8-byte designated leader",
            p.packet_type
        ));
    }
    let mut a = [0u8; 8];
    a.copy_from_slice(&data[..8]);
    Ok((i64::from_be_bytes(a), data.slice(8..)))
}

/// A 4-byte big-endian int payload (LEADERINFO's protocol version, ACKEPOCH's epoch).
pub fn int_data(v: i32) -> Bytes {
    Bytes::copy_from_slice(&v.to_be_bytes())
}

/// Parses a 4-byte int payload.
pub fn parse_int(p: &QuorumPacket) -> RoleResult<i32> {
    match p.data.as_deref() {
        Some([a, b, c, d, ..]) => Ok(i32::from_be_bytes([*a, *b, *c, *d])),
        _ => end(format!("{:?} without its 4-byte payload", p.packet_type)),
    }
}

/// A learner's PING payload: (sessionId, timeout) pairs back to back.
pub fn sessions_data(sessions: &[(i64, i32)]) -> Bytes {
    let mut b = BytesMut::with_capacity(sessions.len() * 12);
    for (id, to) in sessions {
        b.write_i64(*id);
        b.write_i32(*to);
    }
    b.freeze()
}

/// Parses a learner's PING payload.
pub fn parse_sessions(p: &QuorumPacket) -> RoleResult<Vec<(i64, i32)>> {
    let data = p.data.clone().unwrap_or_default();
    if !data.len().is_multiple_of(12) {
        return end(format!(
            "PING payload of {} bytes is not (long, int) pairs",
            data.len()
        ));
    }
    let mut r = JuteReader::new(data);
    let mut out = Vec::new();
    while !r.is_empty() {
        let id = r.read_i64().map_err(|e| super::RoleEnded(e.to_string()))?;
        let to = r.read_i32().map_err(|e| super::RoleEnded(e.to_string()))?;
        out.push((id, to));
    }
    Ok(out)
}

/// REVALIDATE from a learner: sessionId, timeout.
pub fn revalidate_request(session_id: i64, timeout: i32) -> QuorumPacket {
    let mut b = BytesMut::new();
    b.write_i64(session_id);
    b.write_i32(timeout);
    with_data(QuorumPacketType::Revalidate, -1, b.freeze())
}

/// Parses a learner's REVALIDATE.
pub fn parse_revalidate_request(p: &QuorumPacket) -> RoleResult<(i64, i32)> {
    let mut r = JuteReader::new(p.data.clone().unwrap_or_default());
    let id = r.read_i64().map_err(|e| super::RoleEnded(e.to_string()))?;
    let to = r.read_i32().map_err(|e| super::RoleEnded(e.to_string()))?;
    Ok((id, to))
}

/// REVALIDATE answer from the leader: sessionId, valid.
pub fn revalidate_reply(session_id: i64, valid: bool) -> QuorumPacket {
    let mut b = BytesMut::new();
    b.write_i64(session_id);
    b.write_bool(valid);
    with_data(QuorumPacketType::Revalidate, -1, b.freeze())
}

/// Parses the leader's REVALIDATE answer.
pub fn parse_revalidate_reply(p: &QuorumPacket) -> RoleResult<(i64, bool)> {
    let mut r = JuteReader::new(p.data.clone().unwrap_or_default());
    let id = r.read_i64().map_err(|e| super::RoleEnded(e.to_string()))?;
    let valid = r.read_bool().map_err(|e| super::RoleEnded(e.to_string()))?;
    Ok((id, valid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_reject_garbage() {
        let fi = learner_info(QuorumPacketType::FollowerInfo, 3, 5, 0x1_0000_0000);
        assert_eq!(fi.zxid, 5 << 32);
        let li = parse_learner_info(&fi).unwrap();
        assert_eq!((li.serverid, li.protocol_version), (3, 0x10000));
        assert_eq!(li.config_version, 0x1_0000_0000);
        let ca = with_data(QuorumPacketType::CommitAndActivate, 9, long_data(4));
        assert_eq!(parse_designated(&ca).unwrap(), (4, Bytes::new()));
        let ia = with_data(
            QuorumPacketType::InformAndActivate,
            9,
            designated_with(2, b"txn"),
        );
        assert_eq!(
            parse_designated(&ia).unwrap(),
            (2, Bytes::from_static(b"txn"))
        );
        assert!(parse_designated(&simple(QuorumPacketType::CommitAndActivate, 9)).is_err());
        let old = with_data(
            QuorumPacketType::FollowerInfo,
            0,
            Bytes::copy_from_slice(&7i64.to_be_bytes()),
        );
        assert_eq!(parse_learner_info(&old).unwrap().serverid, 7);
        let ae = with_data(QuorumPacketType::AckEpoch, 9, int_data(-1));
        assert_eq!(parse_int(&ae).unwrap(), -1);
        assert!(parse_int(&simple(QuorumPacketType::AckEpoch, 0)).is_err());
        let s = vec![(1, 4000), (-5, 30000)];
        let ping = with_data(QuorumPacketType::Ping, 0, sessions_data(&s));
        assert_eq!(parse_sessions(&ping).unwrap(), s);
        let bad = with_data(QuorumPacketType::Ping, 0, Bytes::from_static(&[1, 2, 3]));
        assert!(parse_sessions(&bad).is_err());
        assert_eq!(
            parse_revalidate_request(&revalidate_request(9, 10)).unwrap(),
            (9, 10)
        );
        assert_eq!(
            parse_revalidate_reply(&revalidate_reply(9, true)).unwrap(),
            (9, true)
        );
        assert!(parse_revalidate_reply(&simple(QuorumPacketType::Revalidate, 0)).is_err());
    }
}
