//! The REQUEST packet a follower sends its leader for a client write: data is
//! `sessionId (long), cxid (int), type (int)` followed by the request body (for
//! createSession, the negotiated timeout), and the connection's identities ride in
//! `authinfo`, as Apache's `Learner.request` writes it.

use bytes::{Bytes, BytesMut};
use zk_proto::jute::{JuteReader, JuteWrite};
use zk_proto::quorum::{QuorumPacket, QuorumPacketType};
use zk_proto::{Id, OpCode, Request};

/// A decoded forwarded write.
#[derive(Debug, Clone, PartialEq)]
pub enum Forwarded {
    /// A follower opened a session.
    CreateSession {
        /// Session id (chosen by the follower).
        session: i64,
        /// Negotiated timeout.
        timeout: i32,
    },
    /// A client write.
    Write {
        /// Session.
        session: i64,
        /// Client xid.
        cxid: i32,
        /// The write.
        request: Request,
        /// The connection's identities.
        auth: Vec<Id>,
    },
}

fn header(session: i64, cxid: i32, ty: OpCode) -> BytesMut {
    let mut b = BytesMut::new();
    b.write_i64(session);
    b.write_i32(cxid);
    b.write_i32(ty.to_i32());
    b
}

fn packet(data: BytesMut, auth: Vec<Id>) -> QuorumPacket {
    QuorumPacket {
        packet_type: QuorumPacketType::Request,
        zxid: -1,
        data: Some(data.freeze()),
        authinfo: Some(auth),
    }
}

/// REQUEST for a session a follower opened.
pub fn create_session(session: i64, timeout: i32) -> QuorumPacket {
    let mut b = header(session, 0, OpCode::CreateSession);
    b.write_i32(timeout);
    packet(b, Vec::new())
}

/// REQUEST for a client write.
pub fn write(session: i64, cxid: i32, request: &Request, auth: Vec<Id>) -> QuorumPacket {
    let mut b = header(session, cxid, request.opcode());
    request.write(&mut b);
    packet(b, auth)
}

/// Decodes a forwarded REQUEST; `None` for anything malformed (dropped by the caller).
pub fn decode(p: &QuorumPacket) -> Option<Forwarded> {
    let data: Bytes = p.data.clone()?;
    let mut r = JuteReader::new(data);
    let session = r.read_i64().ok()?;
    let cxid = r.read_i32().ok()?;
    let ty = OpCode::from_i32(r.read_i32().ok()?);
    match ty {
        OpCode::CreateSession => Some(Forwarded::CreateSession {
            session,
            timeout: r.read_i32().ok()?,
        }),
        OpCode::CloseSession => Some(Forwarded::Write {
            session,
            cxid,
            request: Request::CloseSession,
            auth: p.authinfo.clone().unwrap_or_default(),
        }),
        ty if ty.is_write() => {
            let request = Request::read(ty, &mut r).ok()?;
            Some(Forwarded::Write {
                session,
                cxid,
                request,
                auth: p.authinfo.clone().unwrap_or_default(),
            })
        }
        _ => None,
    }
}
