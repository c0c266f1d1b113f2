//! The snapshot our in-process members exchange on SNAP: the applied txns as a list
//! (`int count`, then `long zxid, buffer txn` each). Replaying it rebuilds the state exactly;
//! it is not Apache's snapshot stream, so it only works between zk-server members.

use bytes::{Bytes, BytesMut};
use zk_proto::jute::{JuteReader, JuteWrite};

use crate::quorum::zab::Proposal;

/// Encodes the applied txns.
pub fn encode(applied: &[Proposal]) -> Bytes {
    let mut b = BytesMut::new();
    b.write_i32(i32::try_from(applied.len()).unwrap_or(i32::MAX));
    for p in applied {
        b.write_i64(p.zxid);
        b.write_buffer(&p.data);
    }
    b.freeze()
}

/// Decodes a snapshot; a truncated or malformed one yields the txns before the damage.
pub fn decode(data: Bytes) -> Vec<Proposal> {
    let mut r = JuteReader::new(data);
    let mut txns = Vec::new();
    let n = r.read_i32().unwrap_or(0);
    for _ in 0..n.max(0) {
        let (Ok(zxid), Ok(data)) = (r.read_i64(), r.read_buffer()) else {
            break;
        };
        txns.push(Proposal { zxid, data });
    }
    txns
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_truncation() {
        let txns = vec![
            Proposal {
                zxid: 0x1_0000_0001,
                data: Bytes::from_static(b"a"),
            },
            Proposal {
                zxid: 0x1_0000_0002,
                data: Bytes::from_static(b"bc"),
            },
        ];
        let enc = encode(&txns);
        assert_eq!(decode(enc.clone()), txns);
        assert_eq!(decode(enc.slice(..enc.len() - 1)), txns[..1].to_vec());
        assert!(decode(Bytes::new()).is_empty());
    }
}
