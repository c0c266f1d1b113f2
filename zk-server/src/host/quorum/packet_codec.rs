//! Leader-learner framing. Apache writes each QuorumPacket as a bare jute record
//! (`int type, long zxid, buffer data, vector<Id> authinfo`) with no length prefix, so the
//! decoder parses the record incrementally and waits for more bytes when it is cut.
//! Lengths are checked before anything is buffered or allocated.

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};
use zk_proto::jute::Record;
use zk_proto::quorum::QuorumPacket;
use zk_proto::{ProtoError, DEFAULT_MAX_FRAME};

/// Most auth ids accepted on one packet.
const MAX_AUTH_IDS: usize = 1024;

/// Codec for QuorumPackets on a leader-learner stream.
#[derive(Debug, Clone, Copy)]
pub struct QuorumPacketCodec {
    max_data: usize,
}

impl Default for QuorumPacketCodec {
    fn default() -> Self {
        QuorumPacketCodec {
            max_data: DEFAULT_MAX_FRAME,
        }
    }
}

impl QuorumPacketCodec {
    /// A codec accepting payloads up to `max_data` bytes.
    pub fn new(max_data: usize) -> Self {
        QuorumPacketCodec { max_data }
    }

    /// Length of the complete record at the start of `src`, `None` if incomplete.
    fn record_len(&self, src: &[u8]) -> Result<Option<usize>, ProtoError> {
        let int_at = |at: usize| -> Option<i32> {
            src.get(at..at + 4)
                .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        };
        // type (4) + zxid (8)
        let mut at = 12;
        let Some(data_len) = int_at(at) else {
            return Ok(None);
        };
        at += 4;
        if data_len > 0 {
            let n = data_len as usize;
            if n > self.max_data {
                return Err(ProtoError::FrameTooLarge {
                    len: n,
                    max: self.max_data,
                });
            }
            at += n;
        }
        let Some(count) = int_at(at) else {
            return Ok(None);
        };
        at += 4;
        if count > 0 {
            if count as usize > MAX_AUTH_IDS {
                return Err(ProtoError::InvalidValue {
                    what: "quorum packet authinfo count",
                    value: i64::from(count),
                });
            }
            for _ in 0..count {
                // Id { string scheme; string id }
                for _ in 0..2 {
                    let Some(len) = int_at(at) else {
                        return Ok(None);
                    };
                    at += 4;
                    if len > 0 {
                        if len as usize > self.max_data {
                            return Err(ProtoError::FrameTooLarge {
                                len: len as usize,
                                max: self.max_data,
                            });
                        }
                        at += len as usize;
                    }
                }
            }
        }
        Ok((src.len() >= at).then_some(at))
    }
}

impl Decoder for QuorumPacketCodec {
    type Item = QuorumPacket;
    type Error = ProtoError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<QuorumPacket>, ProtoError> {
        let Some(n) = self.record_len(src)? else {
            return Ok(None);
        };
        let bytes = src.split_to(n).freeze();
        QuorumPacket::decode(bytes).map(Some)
    }
}

impl Encoder<&QuorumPacket> for QuorumPacketCodec {
    type Error = ProtoError;

    fn encode(&mut self, p: &QuorumPacket, dst: &mut BytesMut) -> Result<(), ProtoError> {
        p.write(dst);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use zk_proto::quorum::QuorumPacketType;
    use zk_proto::Id;

    #[test]
    fn decodes_back_to_back_records_fed_byte_by_byte() {
        let a = QuorumPacket {
            packet_type: QuorumPacketType::Proposal,
            zxid: 0x1_0000_0001,
            data: Some(Bytes::from_static(b"txn bytes")),
            authinfo: None,
        };
        let b = QuorumPacket {
            packet_type: QuorumPacketType::Request,
            zxid: -1,
            data: None,
            authinfo: Some(vec![Id {
                scheme: "digest".into(),
                id: "u:x".into(),
            }]),
        };
        let mut codec = QuorumPacketCodec::default();
        let mut wire = BytesMut::new();
        codec.encode(&a, &mut wire).unwrap();
        codec.encode(&b, &mut wire).unwrap();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for byte in wire.iter() {
            buf.extend_from_slice(&[*byte]);
            while let Some(p) = codec.decode(&mut buf).unwrap() {
                got.push(p);
            }
        }
        assert_eq!(got, [a, b]);
        assert!(buf.is_empty());
    }

    #[test]
    fn rejects_oversized_lengths_before_buffering() {
        let mut codec = QuorumPacketCodec::new(100);
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&2i32.to_be_bytes());
        buf.extend_from_slice(&0i64.to_be_bytes());
        buf.extend_from_slice(&1_000_000i32.to_be_bytes());
        assert!(codec.decode(&mut buf).is_err());
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&2i32.to_be_bytes());
        buf.extend_from_slice(&0i64.to_be_bytes());
        buf.extend_from_slice(&(-1i32).to_be_bytes());
        buf.extend_from_slice(&i32::MAX.to_be_bytes());
        assert!(codec.decode(&mut buf).is_err());
    }
}
