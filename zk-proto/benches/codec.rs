//! Codec hot paths: decoding a 1 KiB getData reply and encoding a setData request.

use bytes::{Bytes, BytesMut};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use zk_proto::ops::{GetDataResponse, SetDataRequest};
use zk_proto::{
    write_frame, ErrorCode, JuteReader, OpCode, Record, ReplyHeader, RequestHeader, Response, Stat,
};

fn get_data_reply_frame() -> Bytes {
    let mut b = BytesMut::new();
    ReplyHeader {
        xid: 7,
        zxid: 0x1_0000_0042,
        err: ErrorCode::Ok,
    }
    .write(&mut b);
    GetDataResponse {
        data: Some(Bytes::from(vec![0xab; 1024])),
        stat: Stat {
            czxid: 1,
            mzxid: 2,
            data_length: 1024,
            ..Stat::default()
        },
    }
    .write(&mut b);
    b.freeze()
}

fn bench(c: &mut Criterion) {
    let frame = get_data_reply_frame();
    let mut g = c.benchmark_group("codec");
    g.throughput(Throughput::Bytes(frame.len() as u64));
    g.bench_function("decode_get_data_reply_1k", |bch| {
        bch.iter(|| {
            let mut r = JuteReader::new(black_box(frame.clone()));
            let h = ReplyHeader::read(&mut r).unwrap();
            let resp = Response::read(OpCode::GetData, h.err, &mut r).unwrap();
            black_box(resp)
        })
    });
    let payload = Bytes::from(vec![0x5a; 1024]);
    let mut out = BytesMut::with_capacity(64 * 1024);
    g.bench_function("encode_set_data_request_1k", |bch| {
        bch.iter(|| {
            if out.capacity() - out.len() < 2048 {
                out.clear();
            }
            write_frame(&mut out, |w| {
                RequestHeader {
                    xid: 9,
                    opcode: OpCode::SetData,
                }
                .write(w);
                SetDataRequest {
                    path: String::from("/bench/node"),
                    data: Some(payload.clone()),
                    version: -1,
                }
                .write(w);
            });
            black_box(out.len())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
