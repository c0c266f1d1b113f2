//! The session handshake: the first frame in each direction of a client connection.

use bytes::{Bytes, BytesMut};

use crate::error::Result;
use crate::jute::{JuteReader, JuteWrite, Record};

/// Length of a session password.
pub const PASSWORD_LEN: usize = 16;

/// The client's first frame.
///
/// `read_only` is `None` when the client sent no trailing byte (clients before 3.4), so such
/// frames re-encode byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectRequest {
    /// Always 0.
    pub protocol_version: i32,
    /// The last zxid the client saw; a server behind it must refuse the client.
    pub last_zxid_seen: i64,
    /// Requested session timeout in ms.
    pub timeout: i32,
    /// 0 for a new session, else the session to resume.
    pub session_id: i64,
    /// Session password (16 bytes, zeros for a new session).
    pub passwd: Bytes,
    /// Whether the client accepts a read-only server.
    pub read_only: Option<bool>,
}

impl Record for ConnectRequest {
    const MIN_ENCODED_LEN: usize = 28;
    fn read(r: &mut JuteReader) -> Result<Self> {
        Ok(ConnectRequest {
            protocol_version: r.read_i32()?,
            last_zxid_seen: r.read_i64()?,
            timeout: r.read_i32()?,
            session_id: r.read_i64()?,
            passwd: r.read_buffer()?,
            read_only: if r.is_empty() {
                None
            } else {
                Some(r.read_bool()?)
            },
        })
    }
    fn write(&self, w: &mut BytesMut) {
        w.write_i32(self.protocol_version);
        w.write_i64(self.last_zxid_seen);
        w.write_i32(self.timeout);
        w.write_i64(self.session_id);
        w.write_buffer(&self.passwd);
        if let Some(ro) = self.read_only {
            w.write_bool(ro);
        }
    }
}

/// The server's first frame; `timeout <= 0` means the session is expired.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectResponse {
    /// Always 0.
    pub protocol_version: i32,
    /// Negotiated timeout in ms.
    pub timeout: i32,
    /// Session id.
    pub session_id: i64,
    /// Session password.
    pub passwd: Bytes,
    /// Whether the server is read-only; absent for old servers.
    pub read_only: Option<bool>,
}

impl Record for ConnectResponse {
    const MIN_ENCODED_LEN: usize = 20;
    fn read(r: &mut JuteReader) -> Result<Self> {
        Ok(ConnectResponse {
            protocol_version: r.read_i32()?,
            timeout: r.read_i32()?,
            session_id: r.read_i64()?,
            passwd: r.read_buffer()?,
            read_only: if r.is_empty() {
                None
            } else {
                Some(r.read_bool()?)
            },
        })
    }
    fn write(&self, w: &mut BytesMut) {
        w.write_i32(self.protocol_version);
        w.write_i32(self.timeout);
        w.write_i64(self.session_id);
        w.write_buffer(&self.passwd);
        if let Some(ro) = self.read_only {
            w.write_bool(ro);
        }
    }
}

#[cfg(test)]
impl crate::arb::Arb for ConnectRequest {
    fn arb() -> proptest::strategy::BoxedStrategy<Self> {
        use proptest::strategy::Strategy;
        (
            i32::arb(),
            i64::arb(),
            i32::arb(),
            i64::arb(),
            Bytes::arb(),
            Option::<bool>::arb(),
        )
            .prop_map(|(a, b, c, d, e, f)| ConnectRequest {
                protocol_version: a,
                last_zxid_seen: b,
                timeout: c,
                session_id: d,
                passwd: e,
                read_only: f,
            })
            .boxed()
    }
}

#[cfg(test)]
impl crate::arb::Arb for ConnectResponse {
    fn arb() -> proptest::strategy::BoxedStrategy<Self> {
        use proptest::strategy::Strategy;
        (
            i32::arb(),
            i32::arb(),
            i64::arb(),
            Bytes::arb(),
            Option::<bool>::arb(),
        )
            .prop_map(|(a, b, c, d, e)| ConnectResponse {
                protocol_version: a,
                timeout: b,
                session_id: c,
                passwd: d,
                read_only: e,
            })
            .boxed()
    }
}
