//! Length-prefixed framing, as a tokio-util codec.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::error::ProtoError;

/// Apache's default `jute.maxbuffer`.
pub const DEFAULT_JUTE_MAX_BUFFER: usize = 0xfffff;
/// Room for headers on top of the data limit.
pub const HEADER_ROOM: usize = 1024;
/// Default largest frame accepted.
pub const DEFAULT_MAX_FRAME: usize = DEFAULT_JUTE_MAX_BUFFER + HEADER_ROOM;

/// Splits a byte stream into frames of a 4-byte big-endian length and a body.
///
/// A negative or oversized length is an error as soon as the 4 prefix bytes arrive, so a
/// peer cannot make us buffer (or allocate) more than `max_frame` bytes.
#[derive(Debug, Clone, Copy)]
pub struct FrameCodec {
    max_frame: usize,
}

impl FrameCodec {
    /// A codec accepting frames up to `max_frame` bytes (excluding the prefix).
    pub fn new(max_frame: usize) -> Self {
        FrameCodec { max_frame }
    }

    /// The configured limit.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }
}

impl Default for FrameCodec {
    fn default() -> Self {
        FrameCodec::new(DEFAULT_MAX_FRAME)
    }
}

impl Decoder for FrameCodec {
    type Item = Bytes;
    type Error = ProtoError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, ProtoError> {
        if src.len() < 4 {
            return Ok(None);
        }
        let len = i32::from_be_bytes([src[0], src[1], src[2], src[3]]);
        if len < 0 {
            return Err(ProtoError::NegativeFrameLength(len));
        }
        let len = len as usize;
        if len > self.max_frame {
            return Err(ProtoError::FrameTooLarge {
                len,
                max: self.max_frame,
            });
        }
        if src.len() < 4 + len {
            src.reserve(4 + len - src.len());
            return Ok(None);
        }
        src.advance(4);
        Ok(Some(src.split_to(len).freeze()))
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, ProtoError> {
        match self.decode(src)? {
            Some(f) => Ok(Some(f)),
            None if src.is_empty() => Ok(None),
            None => Err(ProtoError::Truncated {
                needed: 4,
                remaining: src.len(),
            }),
        }
    }
}

impl Encoder<Bytes> for FrameCodec {
    type Error = ProtoError;

    fn encode(&mut self, item: Bytes, dst: &mut BytesMut) -> Result<(), ProtoError> {
        if item.len() > self.max_frame {
            return Err(ProtoError::FrameTooLarge {
                len: item.len(),
                max: self.max_frame,
            });
        }
        dst.reserve(4 + item.len());
        dst.put_u32(item.len() as u32);
        dst.put_slice(&item);
        Ok(())
    }
}

/// Appends one frame to `dst`, letting `body` write straight into the buffer (no copy).
pub fn write_frame(dst: &mut BytesMut, body: impl FnOnce(&mut BytesMut)) -> usize {
    let start = dst.len();
    dst.put_u32(0);
    body(dst);
    let len = dst.len() - start - 4;
    dst[start..start + 4].copy_from_slice(&(len as u32).to_be_bytes());
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_and_partial() {
        let mut c = FrameCodec::default();
        let mut b = BytesMut::new();
        write_frame(&mut b, |w| w.put_slice(b"abc"));
        write_frame(&mut b, |w| w.put_slice(b"de"));
        let mut part = b.split_to(5);
        assert_eq!(c.decode(&mut part).unwrap(), None);
        part.unsplit(b);
        assert_eq!(&c.decode(&mut part).unwrap().unwrap()[..], b"abc");
        assert_eq!(&c.decode(&mut part).unwrap().unwrap()[..], b"de");
        assert_eq!(c.decode(&mut part).unwrap(), None);
    }

    #[test]
    fn negative_and_oversized_are_errors_before_buffering() {
        let mut c = FrameCodec::new(100);
        let mut b = BytesMut::from(&(-5i32).to_be_bytes()[..]);
        assert_eq!(c.decode(&mut b), Err(ProtoError::NegativeFrameLength(-5)));
        let mut b = BytesMut::from(&101i32.to_be_bytes()[..]);
        assert!(matches!(
            c.decode(&mut b),
            Err(ProtoError::FrameTooLarge { len: 101, max: 100 })
        ));
        assert!(b.capacity() < 100);
    }

    #[test]
    fn truncated_at_eof_is_error() {
        let mut c = FrameCodec::default();
        let mut b = BytesMut::from(&[0u8, 0, 0, 9, 1, 2][..]);
        assert!(c.decode_eof(&mut b).is_err());
    }
}
