//! Feeds arbitrary bytes, in arbitrary chunk sizes, to the frame decoder.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder;
use zk_proto::FrameCodec;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the chunk size and the max frame, so partial reads are covered.
    let (ctl, rest) = match data.split_first() {
        Some((c, r)) => (*c as usize, r),
        None => return,
    };
    let mut codec = FrameCodec::new(64 + ctl * 16);
    let chunk = (ctl % 7) + 1;
    let mut buf = BytesMut::new();
    let mut total = 0usize;
    for piece in rest.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(frame)) => {
                    assert!(frame.len() <= codec.max_frame());
                    total += frame.len() + 4;
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
    assert!(total <= rest.len());
    let _ = codec.decode_eof(&mut buf);
});
