//! Real txns around a test payload, for protocol tests of election and broadcast: learners
//! decode every txn a leader sends before logging it (as Apache's Learner does), so what
//! those tests replicate must be a serialized `TxnHeader` + txn record, not arbitrary
//! bytes.

use bytes::{Bytes, BytesMut};
use zk_proto::txn::{SetDataTxn, Txn, TxnEntry, TxnHeader};
use zk_proto::OpCode;

use crate::zab::Zxid;

/// The path the txns set (the database of the protocol tests is the txn list itself).
pub const PATH: &str = "/t";

/// A serialized `SetData` txn of `payload` on [`PATH`] for `zxid`, as a PROPOSAL carries it.
pub fn set_data(zxid: Zxid, payload: &[u8]) -> Bytes {
    let e = TxnEntry {
        header: TxnHeader {
            client_id: 0,
            cxid: 0,
            zxid,
            time: 0,
            txn_type: OpCode::SetData,
        },
        txn: Txn::SetData(SetDataTxn {
            path: PATH.into(),
            data: Some(Bytes::copy_from_slice(payload)),
            version: -1,
        }),
        digest: None,
    };
    let mut b = BytesMut::new();
    e.write(&mut b);
    b.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let data = set_data(0x2_0000_0001, b"w1");
        let e = TxnEntry::decode(data.clone()).unwrap();
        assert_eq!(e.header.zxid, 0x2_0000_0001);
        assert_eq!(e.header.txn_type, OpCode::SetData);
        assert!(
            matches!(e.txn, Txn::SetData(s) if s.path == PATH && s.data.as_deref() == Some(&b"w1"[..]))
        );
    }
}
