//! The SNAP body of the test ensemble's replica ([`super::quorum_ensemble::MemReplica`]), whose
//! database is just the list of applied txns: a tree with one node per txn (path
//! `/<zxid in hex>`, data the txn), streamed like any database ([`crate::storage::snap_stream`]).

use bytes::Bytes;
use zk_proto::persistence::DataNodeRecord;
use zk_proto::StatPersisted;

use crate::storage::snap_stream;
use crate::storage::SnapshotData;
use crate::zab::broadcast::Proposal;

fn node(data: Bytes, zxid: i64) -> DataNodeRecord {
    DataNodeRecord {
        data: Some(data),
        acl: -1,
        stat: StatPersisted {
            czxid: zxid,
            mzxid: zxid,
            ..StatPersisted::default()
        },
    }
}

/// Encodes the applied txns.
pub fn encode(applied: &[Proposal]) -> Bytes {
    let mut nodes = vec![(String::new(), node(Bytes::new(), 0))];
    nodes.extend(
        applied
            .iter()
            .map(|p| (format!("/{:016x}", p.zxid), node(p.data.clone(), p.zxid))),
    );
    snap_stream::encode(&SnapshotData {
        last_zxid: applied.last().map_or(0, |p| p.zxid),
        sessions: Vec::new(),
        acls: Vec::new(),
        nodes,
    })
}

/// Decodes a snapshot; a malformed one yields the txns it could read (none if the stream
/// itself is damaged).
pub fn decode(data: Bytes) -> Vec<Proposal> {
    let Ok(snap) = snap_stream::decode(0, data) else {
        return Vec::new();
    };
    snap.nodes
        .into_iter()
        .filter_map(|(path, rec)| {
            let zxid = i64::from_str_radix(path.strip_prefix('/')?, 16).ok()?;
            Some(Proposal {
                zxid,
                data: rec.data.unwrap_or_default(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
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
        assert!(decode(enc.slice(..enc.len() - 1)).is_empty());
        assert!(decode(Bytes::new()).is_empty());
    }
}
