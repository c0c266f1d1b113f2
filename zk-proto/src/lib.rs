//! The ZooKeeper jute wire codec, shared by the client, the server and the ensemble.
//!
//! Layout: [`jute`] holds the primitives and the [`Record`] trait; one module per protocol
//! area holds its records ([`connect`], [`header`], [`ops`], [`multi`], [`watch`], [`data`],
//! [`txn`], [`quorum`], [`election`], [`persistence`]); [`message`] types whole bodies by
//! opcode; [`frame`] is the length-prefixed framing.
//!
//! Decoding never panics and never allocates from a length it has not checked against the
//! bytes actually received; node data comes out as zero-copy [`bytes::Bytes`] slices.
//!
//! ```
//! use bytes::BytesMut;
//! use zk_proto::{Record, RequestHeader, OpCode, ops::SetDataRequest};
//!
//! let mut buf = BytesMut::new();
//! RequestHeader { xid: 1, opcode: OpCode::SetData }.write(&mut buf);
//! SetDataRequest { path: "/a".into(), data: Some("v".into()), version: -1 }.write(&mut buf);
//! let mut r = zk_proto::JuteReader::new(buf.freeze());
//! assert_eq!(RequestHeader::read(&mut r).unwrap().opcode, OpCode::SetData);
//! ```
#![deny(missing_docs)]

#[cfg(test)]
mod arb;
mod int_enum;

pub mod connect;
pub mod create_mode;
pub mod data;
pub mod election;
pub mod error;
pub mod error_code;
pub mod frame;
#[cfg(feature = "kerberos")]
pub mod gssapi;
pub mod header;
pub mod jute;
pub mod message;
pub mod multi;
pub mod opcode;
pub mod ops;
pub mod perms;
pub mod persistence;
pub mod quorum;
pub mod sasl;
pub mod txn;
pub mod watch;
#[cfg(feature = "x509")]
pub mod x509;

pub use connect::{ConnectRequest, ConnectResponse, PASSWORD_LEN};
pub use create_mode::CreateMode;
pub use data::{Acl, ClientInfo, Id, Stat, StatPersisted};
pub use error::{ProtoError, Result};
pub use error_code::ErrorCode;
pub use frame::{write_frame, FrameCodec, DEFAULT_MAX_FRAME};
pub use header::{xid, AuthPacket, ReplyHeader, RequestHeader};
pub use jute::{JuteReader, JuteWrite, Record};
pub use message::{Request, Response};
pub use multi::{MultiOp, MultiRequest, MultiResponse, OpResult};
pub use opcode::OpCode;
pub use perms::Perms;
pub use watch::{AddWatchMode, EventType, KeeperState, WatcherEvent, WatcherType};

#[cfg(test)]
mod roundtrip {
    //! Property tests: every record decodes back to itself, and never panics on garbage.
    use super::*;
    use crate::arb::Arb;
    use bytes::{Bytes, BytesMut};
    use proptest::prelude::*;

    fn round_trip<T: Record + PartialEq + std::fmt::Debug>(
        v: T,
    ) -> std::result::Result<(), TestCaseError> {
        let mut b = BytesMut::new();
        v.write(&mut b);
        let bytes = b.freeze();
        let back = T::decode(bytes.clone()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&back, &v);
        let mut again = BytesMut::new();
        back.write(&mut again);
        prop_assert_eq!(again.freeze(), bytes);
        Ok(())
    }

    macro_rules! round_trips {
        ($($name:ident: $ty:ty),* $(,)?) => {
            proptest! {
                $(
                    #[test]
                    fn $name(v in <$ty as Arb>::arb()) {
                        round_trip(v)?;
                    }
                )*
            }
        };
    }

    round_trips! {
        rt_connect_request: ConnectRequest,
        rt_connect_response: ConnectResponse,
        rt_request_header: RequestHeader,
        rt_reply_header: ReplyHeader,
        rt_auth_packet: AuthPacket,
        rt_id: Id,
        rt_acl: Acl,
        rt_stat: Stat,
        rt_stat_persisted: StatPersisted,
        rt_client_info: ClientInfo,
        rt_watcher_event: WatcherEvent,
        rt_set_watches: watch::SetWatches,
        rt_set_watches2: watch::SetWatches2,
        rt_remove_watches: watch::RemoveWatchesRequest,
        rt_add_watch: watch::AddWatchRequest,
        rt_create: ops::CreateRequest,
        rt_create_ttl: ops::CreateTtlRequest,
        rt_create_response: ops::CreateResponse,
        rt_create2_response: ops::Create2Response,
        rt_delete: ops::DeleteRequest,
        rt_path_watch: ops::PathWatchRequest,
        rt_stat_response: ops::StatResponse,
        rt_get_data_response: ops::GetDataResponse,
        rt_set_data: ops::SetDataRequest,
        rt_path: ops::PathRequest,
        rt_get_acl_response: ops::GetAclResponse,
        rt_set_acl: ops::SetAclRequest,
        rt_get_children_response: ops::GetChildrenResponse,
        rt_get_children2_response: ops::GetChildren2Response,
        rt_check: ops::CheckVersionRequest,
        rt_reconfig: ops::ReconfigRequest,
        rt_all_children_number: ops::GetAllChildrenNumberResponse,
        rt_ephemerals: ops::GetEphemeralsResponse,
        rt_who_am_i: ops::WhoAmIResponse,
        rt_sasl: ops::SaslToken,
        rt_error_response: ops::ErrorResponse,
        rt_multi_request: MultiRequest,
        rt_multi_response: MultiResponse,
        rt_txn_header: txn::TxnHeader,
        rt_create_txn: txn::CreateTxn,
        rt_create_ttl_txn: txn::CreateTtlTxn,
        rt_create_container_txn: txn::CreateContainerTxn,
        rt_delete_txn: txn::DeleteTxn,
        rt_set_data_txn: txn::SetDataTxn,
        rt_check_txn: txn::CheckVersionTxn,
        rt_set_acl_txn: txn::SetAclTxn,
        rt_create_session_txn: txn::CreateSessionTxn,
        rt_close_session_txn: txn::CloseSessionTxn,
        rt_error_txn: txn::ErrorTxn,
        rt_multi_txn: txn::MultiTxn,
        rt_txn_digest: txn::TxnDigest,
        rt_quorum_packet: quorum::QuorumPacket,
        rt_learner_info: quorum::LearnerInfo,
        rt_quorum_auth: quorum::QuorumAuthPacket,
        rt_file_header: persistence::FileHeader,
        rt_data_node: persistence::DataNodeRecord,
    }

    fn any_request() -> impl Strategy<Value = Request> {
        prop_oneof![
            ops::CreateRequest::arb().prop_map(Request::Create),
            ops::CreateRequest::arb().prop_map(Request::Create2),
            ops::CreateRequest::arb().prop_map(Request::CreateContainer),
            ops::CreateTtlRequest::arb().prop_map(Request::CreateTtl),
            ops::DeleteRequest::arb().prop_map(Request::Delete),
            ops::PathWatchRequest::arb().prop_map(Request::Exists),
            ops::PathWatchRequest::arb().prop_map(Request::GetData),
            ops::PathWatchRequest::arb().prop_map(Request::GetChildren),
            ops::PathWatchRequest::arb().prop_map(Request::GetChildren2),
            ops::SetDataRequest::arb().prop_map(Request::SetData),
            ops::PathRequest::arb().prop_map(Request::GetAcl),
            ops::SetAclRequest::arb().prop_map(Request::SetAcl),
            ops::PathRequest::arb().prop_map(Request::Sync),
            Just(Request::Ping),
            ops::CheckVersionRequest::arb().prop_map(Request::Check),
            MultiRequest::arb().prop_map(Request::Multi),
            MultiRequest::arb().prop_map(Request::MultiRead),
            ops::ReconfigRequest::arb().prop_map(Request::Reconfig),
            watch::RemoveWatchesRequest::arb().prop_map(Request::CheckWatches),
            watch::RemoveWatchesRequest::arb().prop_map(Request::RemoveWatches),
            ops::PathRequest::arb().prop_map(Request::DeleteContainer),
            AuthPacket::arb().prop_map(Request::Auth),
            watch::SetWatches::arb().prop_map(Request::SetWatches),
            watch::SetWatches2::arb().prop_map(Request::SetWatches2),
            ops::SaslToken::arb().prop_map(Request::Sasl),
            ops::PathRequest::arb().prop_map(Request::GetEphemerals),
            ops::PathRequest::arb().prop_map(Request::GetAllChildrenNumber),
            watch::AddWatchRequest::arb().prop_map(Request::AddWatch),
            Just(Request::WhoAmI),
            Just(Request::CloseSession),
        ]
    }

    proptest! {
        #[test]
        fn request_bodies_round_trip(req in any_request()) {
            let mut b = BytesMut::new();
            req.write(&mut b);
            let back = Request::read(req.opcode(), &mut JuteReader::new(b.freeze()))
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(back, req);
        }

        #[test]
        fn garbage_never_panics(op in any::<i32>(), bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let op = OpCode::from_i32(op);
            let b = Bytes::from(bytes);
            let _ = Request::read(op, &mut JuteReader::new(b.clone()));
            let _ = Response::read(op, ErrorCode::Ok, &mut JuteReader::new(b.clone()));
            let _ = txn::Txn::read(op, &mut JuteReader::new(b.clone()));
            let _ = ConnectRequest::decode(b.clone());
            let _ = election::Notification::decode(b.clone());
            let _ = election::InitialMessage::decode(b);
        }

        #[test]
        fn txn_entries_round_trip(h in txn::TxnHeader::arb(), t in txn::CreateTxn::arb(), d in Option::<txn::TxnDigest>::arb()) {
            let e = txn::TxnEntry { header: txn::TxnHeader { txn_type: OpCode::Create, ..h }, txn: txn::Txn::Create(t), digest: d };
            let mut b = BytesMut::new();
            e.write(&mut b);
            prop_assert_eq!(txn::TxnEntry::decode(b.freeze()).map_err(|e| TestCaseError::fail(e.to_string()))?, e);
        }
    }
}
