//! Fast leader election: the notification and the election connection handshake.

use bytes::{Bytes, BytesMut};

use crate::error::{ProtoError, Result};
use crate::jute::{JuteReader, JuteWrite};

/// Peer states as carried in notifications.
pub mod state {
    /// Looking for a leader.
    pub const LOOKING: i32 = 0;
    /// Following.
    pub const FOLLOWING: i32 = 1;
    /// Leading.
    pub const LEADING: i32 = 2;
    /// Observing.
    pub const OBSERVING: i32 = 3;
}

/// Notification version written by 3.5+.
pub const NOTIFICATION_VERSION: i32 = 2;

/// A vote broadcast during fast leader election.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Notification {
    /// Sender's state, see [`state`].
    pub state: i32,
    /// Proposed leader's sid.
    pub leader: i64,
    /// Proposed leader's last zxid.
    pub zxid: i64,
    /// Sender's logical clock.
    pub election_epoch: i64,
    /// Proposed leader's epoch.
    pub peer_epoch: i64,
    /// Format version.
    pub version: i32,
    /// Sender's config (version 2+).
    pub config: Bytes,
}

impl Notification {
    /// Decodes a notification body; accepts the 28- and 36-byte forms of older servers.
    pub fn decode(buf: Bytes) -> Result<Self> {
        let len = buf.len();
        if len < 28 {
            return Err(ProtoError::Truncated {
                needed: 28,
                remaining: len,
            });
        }
        let mut r = JuteReader::new(buf);
        let state = r.read_i32()?;
        let leader = r.read_i64()?;
        let zxid = r.read_i64()?;
        let election_epoch = r.read_i64()?;
        let peer_epoch = if r.remaining() >= 8 {
            r.read_i64()?
        } else {
            zxid >> 32
        };
        let version = if r.remaining() >= 4 { r.read_i32()? } else { 0 };
        let config = if version > 1 {
            r.read_buffer()?
        } else {
            Bytes::new()
        };
        Ok(Notification {
            state,
            leader,
            zxid,
            election_epoch,
            peer_epoch,
            version,
            config,
        })
    }

    /// Encodes the current (version 2) form.
    pub fn write(&self, w: &mut BytesMut) {
        w.write_i32(self.state);
        w.write_i64(self.leader);
        w.write_i64(self.zxid);
        w.write_i64(self.election_epoch);
        w.write_i64(self.peer_epoch);
        w.write_i32(self.version);
        w.write_buffer(&self.config);
    }
}

/// Protocol version announced in the election handshake by 3.6+.
pub const ELECTION_PROTOCOL_VERSION: i64 = -65536;
/// The older (3.5) handshake version with the same layout.
pub const ELECTION_PROTOCOL_VERSION_V1: i64 = -65535;
/// Longest address string accepted in a handshake (Apache's limit).
pub const MAX_HANDSHAKE_ADDR_LEN: usize = 4096;

/// First message on an election connection: who is calling and where it listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitialMessage {
    /// Protocol version, or `None` for the oldest form (sid only).
    pub protocol_version: Option<i64>,
    /// Caller's sid.
    pub sid: i64,
    /// `host:port` election addresses, `|`-separated.
    pub addr: String,
}

impl InitialMessage {
    /// Decodes the handshake from the bytes read so far.
    pub fn decode(buf: Bytes) -> Result<Self> {
        let mut r = JuteReader::new(buf);
        let first = r.read_i64()?;
        if first >= 0 {
            return Ok(InitialMessage {
                protocol_version: None,
                sid: first,
                addr: String::new(),
            });
        }
        let sid = r.read_i64()?;
        let len = r.read_i32()?;
        if len < 0 || len as usize > MAX_HANDSHAKE_ADDR_LEN {
            return Err(ProtoError::InvalidValue {
                what: "election handshake address length",
                value: len as i64,
            });
        }
        let n = len as usize;
        if r.remaining() < n {
            return Err(ProtoError::Truncated {
                needed: n,
                remaining: r.remaining(),
            });
        }
        let raw = r.take_rest();
        let addr = std::str::from_utf8(&raw[..n])
            .map_err(|_| ProtoError::InvalidUtf8)?
            .to_owned();
        Ok(InitialMessage {
            protocol_version: Some(first),
            sid,
            addr,
        })
    }

    /// Encodes the handshake.
    pub fn write(&self, w: &mut BytesMut) {
        match self.protocol_version {
            None => w.write_i64(self.sid),
            Some(v) => {
                w.write_i64(v);
                w.write_i64(self.sid);
                w.write_buffer(self.addr.as_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notification_round_trip_and_old_forms() {
        let n = Notification {
            state: state::LOOKING,
            leader: 3,
            zxid: 0x1_0000_0005,
            election_epoch: 7,
            peer_epoch: 1,
            version: NOTIFICATION_VERSION,
            config: Bytes::from_static(b"server.1=127.0.0.1:1:2\nversion=0"),
        };
        let mut b = BytesMut::new();
        n.write(&mut b);
        assert_eq!(Notification::decode(b.clone().freeze()).unwrap(), n);
        let old = Notification::decode(b.freeze().slice(..28)).unwrap();
        assert_eq!(old.peer_epoch, 1);
        assert_eq!(old.version, 0);
        assert!(Notification::decode(Bytes::from_static(&[0; 10])).is_err());
    }

    #[test]
    fn handshake_round_trip_and_bounds() {
        let m = InitialMessage {
            protocol_version: Some(ELECTION_PROTOCOL_VERSION),
            sid: 2,
            addr: "127.0.0.1:3888".into(),
        };
        let mut b = BytesMut::new();
        m.write(&mut b);
        assert_eq!(InitialMessage::decode(b.freeze()).unwrap(), m);
        let mut b = BytesMut::new();
        b.write_i64(ELECTION_PROTOCOL_VERSION);
        b.write_i64(1);
        b.write_i32(i32::MAX);
        assert!(InitialMessage::decode(b.freeze()).is_err());
    }
}
