//! Txn records: what the server logs, snapshots replay and the ensemble replicates.

use bytes::{Bytes, BytesMut};

use crate::data::Acl;
use crate::error::{ProtoError, Result};
use crate::error_code::ErrorCode;
use crate::jute::{jute_record, JuteReader, JuteWrite, Record};
use crate::opcode::OpCode;

jute_record! {
    /// Header of every txn.
    pub struct TxnHeader {
        /// Session that issued it.
        pub client_id: i64,
        /// The client's xid.
        pub cxid: i32,
        /// Zxid assigned by the leader.
        pub zxid: i64,
        /// Leader's wall clock, ms.
        pub time: i64,
        /// An [`OpCode`] number.
        pub txn_type: OpCode,
    }
}

jute_record! {
    /// create / create2 txn.
    pub struct CreateTxn {
        /// Full path (sequence suffix included).
        pub path: String,
        /// Data.
        pub data: Option<Bytes>,
        /// ACL.
        pub acl: Vec<Acl>,
        /// Ephemeral (owner is the txn's session).
        pub ephemeral: bool,
        /// Parent's cversion after the create.
        pub parent_c_version: i32,
    }
}

jute_record! {
    /// createTTL txn.
    pub struct CreateTtlTxn {
        /// Full path.
        pub path: String,
        /// Data.
        pub data: Option<Bytes>,
        /// ACL.
        pub acl: Vec<Acl>,
        /// Parent's cversion after the create.
        pub parent_c_version: i32,
        /// TTL in ms.
        pub ttl: i64,
    }
}

jute_record! {
    /// createContainer txn.
    pub struct CreateContainerTxn {
        /// Full path.
        pub path: String,
        /// Data.
        pub data: Option<Bytes>,
        /// ACL.
        pub acl: Vec<Acl>,
        /// Parent's cversion after the create.
        pub parent_c_version: i32,
    }
}

jute_record! {
    /// delete / deleteContainer txn.
    pub struct DeleteTxn {
        /// Path.
        pub path: String,
    }
}

jute_record! {
    /// setData txn (also the reconfig txn).
    pub struct SetDataTxn {
        /// Path.
        pub path: String,
        /// New data.
        pub data: Option<Bytes>,
        /// New version.
        pub version: i32,
    }
}

jute_record! {
    /// check txn (inside multi).
    pub struct CheckVersionTxn {
        /// Path.
        pub path: String,
        /// Version checked.
        pub version: i32,
    }
}

jute_record! {
    /// setACL txn.
    pub struct SetAclTxn {
        /// Path.
        pub path: String,
        /// New ACL.
        pub acl: Vec<Acl>,
        /// New aversion.
        pub version: i32,
    }
}

jute_record! {
    /// createSession txn.
    pub struct CreateSessionTxn {
        /// Negotiated timeout.
        pub time_out: i32,
    }
}

jute_record! {
    /// closeSession txn: the ephemerals to delete.
    pub struct CloseSessionTxn {
        /// Paths of the session's ephemerals.
        pub paths2_delete: Vec<String>,
    }
}

jute_record! {
    /// error txn (failed write, or a failed op inside a multi).
    pub struct ErrorTxn {
        /// The error code.
        pub err: ErrorCode,
    }
}

jute_record! {
    /// One sub-txn of a multi: its type and its serialized record.
    pub struct SubTxn {
        /// An [`OpCode`] number.
        pub txn_type: i32,
        /// The serialized txn record.
        pub data: Bytes,
    }
}

jute_record! {
    /// multi txn.
    pub struct MultiTxn {
        /// Sub-txns in order.
        pub txns: Vec<SubTxn>,
    }
}

jute_record! {
    /// Digest of the data tree after a txn (Apache 3.6+ appends it when digests are on).
    pub struct TxnDigest {
        /// Digest algorithm version.
        pub version: i32,
        /// Tree digest.
        pub tree_digest: i64,
    }
}

/// A txn body typed by its header's type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Txn {
    /// create / create2.
    Create(CreateTxn),
    /// createTTL.
    CreateTtl(CreateTtlTxn),
    /// createContainer.
    CreateContainer(CreateContainerTxn),
    /// delete / deleteContainer.
    Delete(DeleteTxn),
    /// setData / reconfig.
    SetData(SetDataTxn),
    /// check.
    Check(CheckVersionTxn),
    /// setACL.
    SetAcl(SetAclTxn),
    /// createSession.
    CreateSession(CreateSessionTxn),
    /// closeSession; `None` when the record is absent (closeSession txns disabled).
    CloseSession(Option<CloseSessionTxn>),
    /// error.
    Error(ErrorTxn),
    /// multi, with the sub-txns decoded.
    Multi(Vec<(OpCode, Txn)>),
}

impl Txn {
    /// Decodes a txn record of type `ty`.
    pub fn read(ty: OpCode, r: &mut JuteReader) -> Result<Self> {
        Ok(match ty {
            OpCode::Create | OpCode::Create2 => Txn::Create(Record::read(r)?),
            OpCode::CreateTtl => Txn::CreateTtl(Record::read(r)?),
            OpCode::CreateContainer => Txn::CreateContainer(Record::read(r)?),
            OpCode::Delete | OpCode::DeleteContainer => Txn::Delete(Record::read(r)?),
            OpCode::SetData | OpCode::Reconfig => Txn::SetData(Record::read(r)?),
            OpCode::Check => Txn::Check(Record::read(r)?),
            OpCode::SetAcl => Txn::SetAcl(Record::read(r)?),
            OpCode::CreateSession => Txn::CreateSession(Record::read(r)?),
            OpCode::CloseSession => {
                if r.is_empty() {
                    Txn::CloseSession(None)
                } else {
                    Txn::CloseSession(Some(Record::read(r)?))
                }
            }
            OpCode::Error => Txn::Error(Record::read(r)?),
            OpCode::Multi => {
                let m = MultiTxn::read(r)?;
                let mut out = Vec::with_capacity(m.txns.len());
                for sub in m.txns {
                    let op = OpCode::from_i32(sub.txn_type);
                    let mut sr = JuteReader::new(sub.data);
                    let t = Txn::read(op, &mut sr)?;
                    sr.finish()?;
                    out.push((op, t));
                }
                Txn::Multi(out)
            }
            other => {
                return Err(ProtoError::InvalidValue {
                    what: "txn type",
                    value: other.to_i32() as i64,
                })
            }
        })
    }

    /// Encodes the txn record.
    pub fn write(&self, w: &mut BytesMut) {
        match self {
            Txn::Create(x) => x.write(w),
            Txn::CreateTtl(x) => x.write(w),
            Txn::CreateContainer(x) => x.write(w),
            Txn::Delete(x) => x.write(w),
            Txn::SetData(x) => x.write(w),
            Txn::Check(x) => x.write(w),
            Txn::SetAcl(x) => x.write(w),
            Txn::CreateSession(x) => x.write(w),
            Txn::CloseSession(x) => {
                if let Some(x) = x {
                    x.write(w)
                }
            }
            Txn::Error(x) => x.write(w),
            Txn::Multi(subs) => {
                w.write_i32(i32::try_from(subs.len()).unwrap_or(i32::MAX));
                for (op, t) in subs {
                    let mut b = BytesMut::new();
                    t.write(&mut b);
                    SubTxn {
                        txn_type: op.to_i32(),
                        data: b.freeze(),
                    }
                    .write(w);
                }
            }
        }
    }
}

/// A whole logged txn: header, body and the optional trailing digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnEntry {
    /// Header.
    pub header: TxnHeader,
    /// Body.
    pub txn: Txn,
    /// Digest, when the writer appended one.
    pub digest: Option<TxnDigest>,
}

impl TxnEntry {
    /// Decodes one serialized txn (the bytes between a log entry's length and its 'B').
    pub fn decode(buf: Bytes) -> Result<Self> {
        let mut r = JuteReader::new(buf);
        let header = TxnHeader::read(&mut r)?;
        let txn = Txn::read(header.txn_type, &mut r)?;
        let digest = if r.is_empty() {
            None
        } else {
            Some(TxnDigest::read(&mut r)?)
        };
        r.finish()?;
        Ok(TxnEntry {
            header,
            txn,
            digest,
        })
    }

    /// Encodes header, body and digest.
    pub fn write(&self, w: &mut BytesMut) {
        self.header.write(w);
        self.txn.write(w);
        if let Some(d) = &self.digest {
            d.write(w);
        }
    }
}
