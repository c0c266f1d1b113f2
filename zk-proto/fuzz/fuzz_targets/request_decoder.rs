//! Decodes arbitrary bytes as a client frame the way the server does: the first frame of a
//! connection as a ConnectRequest, later ones as header + body; re-encoding a decoded request
//! must reproduce a decodable body.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use zk_proto::{ConnectRequest, JuteReader, Record, Request, RequestHeader};

fuzz_target!(|data: &[u8]| {
    let frame = Bytes::copy_from_slice(data);
    let _ = ConnectRequest::decode(frame.clone());
    let mut r = JuteReader::new(frame);
    let Ok(header) = RequestHeader::read(&mut r) else {
        return;
    };
    if let Ok(req) = Request::read(header.opcode, &mut r) {
        let mut out = BytesMut::new();
        req.write(&mut out);
        let again = Request::read(header.opcode, &mut JuteReader::new(out.freeze()))
            .expect("a decoded request re-encodes to a decodable body");
        assert_eq!(again, req);
    }
});
