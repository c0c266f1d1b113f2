//! Encodes one request of each common kind, frames it, decodes it back and prints the bytes.
//!
//! Run with `cargo run -p examples --example codec_roundtrip`.

use bytes::BytesMut;
use zk_proto::ops::{CreateRequest, PathWatchRequest, SetDataRequest};
use zk_proto::{write_frame, Acl, JuteReader, Record, Request, RequestHeader};

fn main() {
    let requests = vec![
        Request::Create(CreateRequest {
            path: "/app/config".into(),
            data: Some("v1".into()),
            acl: Acl::open_unsafe(),
            flags: zk_proto::CreateMode::Persistent.to_flags(),
        }),
        Request::GetData(PathWatchRequest {
            path: "/app/config".into(),
            watch: true,
        }),
        Request::SetData(SetDataRequest {
            path: "/app/config".into(),
            data: Some("v2".into()),
            version: 0,
        }),
        Request::Ping,
    ];
    for (i, req) in requests.into_iter().enumerate() {
        let mut buf = BytesMut::new();
        write_frame(&mut buf, |w| {
            RequestHeader {
                xid: i as i32 + 1,
                opcode: req.opcode(),
            }
            .write(w);
            req.write(w);
        });
        let frame = buf.freeze();
        let mut r = JuteReader::new(frame.slice(4..));
        let header = RequestHeader::read(&mut r).expect("header");
        let back = Request::read(header.opcode, &mut r).expect("body");
        assert_eq!(back, req);
        let hex: String = frame.iter().map(|b| format!("{b:02x}")).collect();
        println!(
            "{:?} xid={} {} bytes: {hex}",
            header.opcode,
            header.xid,
            frame.len()
        );
    }
    println!("all requests round-tripped");
}
