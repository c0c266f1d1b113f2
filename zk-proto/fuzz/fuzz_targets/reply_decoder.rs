//! Decodes arbitrary bytes as a server reply for every opcode (the client's decode path), as
//! txns, and as quorum/election messages.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use zk_proto::election::{InitialMessage, Notification};
use zk_proto::quorum::QuorumPacket;
use zk_proto::txn::TxnEntry;
use zk_proto::{ConnectResponse, JuteReader, OpCode, Record, ReplyHeader, Response};

fuzz_target!(|data: &[u8]| {
    let Some((op, rest)) = data.split_first() else {
        return;
    };
    let frame = Bytes::copy_from_slice(rest);
    let opcode = OpCode::ALL[*op as usize % OpCode::ALL.len()];
    let mut r = JuteReader::new(frame.clone());
    if let Ok(h) = ReplyHeader::read(&mut r) {
        let _ = Response::read(opcode, h.err, &mut r);
    }
    let _ = ConnectResponse::decode(frame.clone());
    let _ = TxnEntry::decode(frame.clone());
    let _ = QuorumPacket::decode(frame.clone());
    let _ = Notification::decode(frame.clone());
    let _ = InitialMessage::decode(frame);
});
