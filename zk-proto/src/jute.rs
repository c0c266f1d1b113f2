//! Jute primitives: the big-endian encoding every ZooKeeper record is built from.
//!
//! Reading works on a [`Bytes`] frame and hands out node payloads as zero-copy slices of it.
//! Every length is checked against the bytes left before it is used, so decoding never
//! allocates from an unchecked length and never panics.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::{ProtoError, Result};

/// A cursor over one received frame.
#[derive(Debug, Clone)]
pub struct JuteReader {
    buf: Bytes,
}

impl JuteReader {
    /// Reads from `buf`; node data decoded from it will share its memory.
    pub fn new(buf: Bytes) -> Self {
        JuteReader { buf }
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// True when every byte has been consumed.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The unread bytes, without consuming them.
    pub fn peek_rest(&self) -> &Bytes {
        &self.buf
    }

    /// Consumes and returns everything left (zero-copy).
    pub fn take_rest(&mut self) -> Bytes {
        std::mem::take(&mut self.buf)
    }

    /// Fails unless everything has been consumed; used where a record must fill its frame.
    pub fn finish(&self) -> Result<()> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(ProtoError::TrailingBytes(self.buf.len()))
        }
    }

    fn need(&self, n: usize) -> Result<()> {
        if self.buf.len() < n {
            Err(ProtoError::Truncated {
                needed: n,
                remaining: self.buf.len(),
            })
        } else {
            Ok(())
        }
    }

    /// Reads a jute `int`.
    pub fn read_i32(&mut self) -> Result<i32> {
        self.need(4)?;
        Ok(self.buf.get_i32())
    }

    /// Reads a jute `long`.
    pub fn read_i64(&mut self) -> Result<i64> {
        self.need(8)?;
        Ok(self.buf.get_i64())
    }

    /// Reads a jute `boolean` (one byte, any non-zero value is true, as Java reads it).
    pub fn read_bool(&mut self) -> Result<bool> {
        self.need(1)?;
        Ok(self.buf.get_u8() != 0)
    }

    /// Reads a single raw byte.
    pub fn read_u8(&mut self) -> Result<u8> {
        self.need(1)?;
        Ok(self.buf.get_u8())
    }

    /// Reads a length prefix; `None` is the jute null marker (-1).
    ///
    /// `min_elem` is the smallest encoding of one element, so a count can be bounded by the
    /// bytes left before anything is allocated for it.
    fn read_len(&mut self, min_elem: usize) -> Result<Option<usize>> {
        let len = self.read_i32()?;
        if len == -1 {
            return Ok(None);
        }
        if len < 0 {
            return Err(ProtoError::NegativeLength(len));
        }
        let n = len as usize;
        if n.saturating_mul(min_elem.max(1)) > self.buf.len() {
            return Err(ProtoError::LengthTooLarge {
                len,
                remaining: self.buf.len(),
            });
        }
        Ok(Some(n))
    }

    /// Reads a jute `buffer` that may be null; the result is a slice of the frame.
    pub fn read_opt_buffer(&mut self) -> Result<Option<Bytes>> {
        Ok(self.read_len(1)?.map(|n| self.buf.split_to(n)))
    }

    /// Reads a jute `buffer`, treating null as empty (as most Java readers do).
    pub fn read_buffer(&mut self) -> Result<Bytes> {
        Ok(self.read_opt_buffer()?.unwrap_or_default())
    }

    /// Reads a jute `ustring` that may be null.
    pub fn read_opt_string(&mut self) -> Result<Option<String>> {
        match self.read_len(1)? {
            None => Ok(None),
            Some(n) => {
                let raw = self.buf.split_to(n);
                let s = std::str::from_utf8(&raw).map_err(|_| ProtoError::InvalidUtf8)?;
                Ok(Some(s.to_owned()))
            }
        }
    }

    /// Reads a jute `ustring`, treating null as empty.
    pub fn read_string(&mut self) -> Result<String> {
        Ok(self.read_opt_string()?.unwrap_or_default())
    }

    /// Reads a jute `vector` that may be null.
    pub fn read_opt_vec<T: Record>(&mut self) -> Result<Option<Vec<T>>> {
        match self.read_len(T::MIN_ENCODED_LEN)? {
            None => Ok(None),
            Some(n) => {
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    v.push(T::read(self)?);
                }
                Ok(Some(v))
            }
        }
    }

    /// Reads a jute `vector`, treating null as empty.
    pub fn read_vec<T: Record>(&mut self) -> Result<Vec<T>> {
        Ok(self.read_opt_vec()?.unwrap_or_default())
    }
}

/// Writing jute primitives into a [`BytesMut`].
pub trait JuteWrite {
    /// Writes a jute `int`.
    fn write_i32(&mut self, v: i32);
    /// Writes a jute `long`.
    fn write_i64(&mut self, v: i64);
    /// Writes a jute `boolean`.
    fn write_bool(&mut self, v: bool);
    /// Writes a jute `buffer`; `None` is written as the null marker.
    fn write_opt_buffer(&mut self, v: Option<&[u8]>);
    /// Writes a jute `ustring`; `None` is written as the null marker.
    fn write_opt_string(&mut self, v: Option<&str>);
    /// Writes a jute `buffer`.
    fn write_buffer(&mut self, v: &[u8]) {
        self.write_opt_buffer(Some(v))
    }
    /// Writes a jute `ustring`.
    fn write_string(&mut self, v: &str) {
        self.write_opt_string(Some(v))
    }
    /// Writes a jute `vector`; `None` is written as the null marker.
    fn write_opt_vec<T: Record>(&mut self, v: Option<&[T]>);
    /// Writes a jute `vector`.
    fn write_vec<T: Record>(&mut self, v: &[T]) {
        self.write_opt_vec(Some(v))
    }
}

/// Length of a collection as a jute int. Collections beyond `i32::MAX` cannot be framed at all
/// (frames are far smaller), so saturating only affects inputs that are rejected anyway.
fn jute_len(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

impl JuteWrite for BytesMut {
    fn write_i32(&mut self, v: i32) {
        self.put_i32(v)
    }
    fn write_i64(&mut self, v: i64) {
        self.put_i64(v)
    }
    fn write_bool(&mut self, v: bool) {
        self.put_u8(v as u8)
    }
    fn write_opt_buffer(&mut self, v: Option<&[u8]>) {
        match v {
            None => self.put_i32(-1),
            Some(b) => {
                self.put_i32(jute_len(b.len()));
                self.put_slice(b);
            }
        }
    }
    fn write_opt_string(&mut self, v: Option<&str>) {
        self.write_opt_buffer(v.map(str::as_bytes))
    }
    fn write_opt_vec<T: Record>(&mut self, v: Option<&[T]>) {
        match v {
            None => self.put_i32(-1),
            Some(items) => {
                self.put_i32(jute_len(items.len()));
                for it in items {
                    it.write(self);
                }
            }
        }
    }
}

/// A jute record: something with one fixed big-endian layout.
pub trait Record: Sized {
    /// The fewest bytes one value can encode to; bounds vector counts before allocation.
    const MIN_ENCODED_LEN: usize;
    /// Decodes one value.
    fn read(r: &mut JuteReader) -> Result<Self>;
    /// Encodes this value.
    fn write(&self, w: &mut BytesMut);

    /// Decodes a value that must fill `buf` exactly.
    fn decode(buf: Bytes) -> Result<Self> {
        let mut r = JuteReader::new(buf);
        let v = Self::read(&mut r)?;
        r.finish()?;
        Ok(v)
    }

    /// Encodes into a fresh buffer.
    fn to_bytes(&self) -> Bytes {
        let mut b = BytesMut::new();
        self.write(&mut b);
        b.freeze()
    }
}

impl Record for i32 {
    const MIN_ENCODED_LEN: usize = 4;
    fn read(r: &mut JuteReader) -> Result<Self> {
        r.read_i32()
    }
    fn write(&self, w: &mut BytesMut) {
        w.write_i32(*self)
    }
}

impl Record for i64 {
    const MIN_ENCODED_LEN: usize = 8;
    fn read(r: &mut JuteReader) -> Result<Self> {
        r.read_i64()
    }
    fn write(&self, w: &mut BytesMut) {
        w.write_i64(*self)
    }
}

impl Record for bool {
    const MIN_ENCODED_LEN: usize = 1;
    fn read(r: &mut JuteReader) -> Result<Self> {
        r.read_bool()
    }
    fn write(&self, w: &mut BytesMut) {
        w.write_bool(*self)
    }
}

impl Record for String {
    const MIN_ENCODED_LEN: usize = 4;
    fn read(r: &mut JuteReader) -> Result<Self> {
        r.read_string()
    }
    fn write(&self, w: &mut BytesMut) {
        w.write_string(self)
    }
}

impl Record for Option<String> {
    const MIN_ENCODED_LEN: usize = 4;
    fn read(r: &mut JuteReader) -> Result<Self> {
        r.read_opt_string()
    }
    fn write(&self, w: &mut BytesMut) {
        w.write_opt_string(self.as_deref())
    }
}

impl Record for Bytes {
    const MIN_ENCODED_LEN: usize = 4;
    fn read(r: &mut JuteReader) -> Result<Self> {
        r.read_buffer()
    }
    fn write(&self, w: &mut BytesMut) {
        w.write_buffer(self)
    }
}

impl Record for Option<Bytes> {
    const MIN_ENCODED_LEN: usize = 4;
    fn read(r: &mut JuteReader) -> Result<Self> {
        r.read_opt_buffer()
    }
    fn write(&self, w: &mut BytesMut) {
        w.write_opt_buffer(self.as_deref())
    }
}

impl<T: Record> Record for Vec<T> {
    const MIN_ENCODED_LEN: usize = 4;
    fn read(r: &mut JuteReader) -> Result<Self> {
        r.read_vec()
    }
    fn write(&self, w: &mut BytesMut) {
        w.write_vec(self)
    }
}

impl<T: Record> Record for Option<Vec<T>> {
    const MIN_ENCODED_LEN: usize = 4;
    fn read(r: &mut JuteReader) -> Result<Self> {
        r.read_opt_vec()
    }
    fn write(&self, w: &mut BytesMut) {
        w.write_opt_vec(self.as_deref())
    }
}

/// Declares a jute record: a struct whose fields are encoded in declaration order.
macro_rules! jute_record {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                $(#[$fmeta:meta])*
                pub $field:ident : $ty:ty
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Default)]
        pub struct $name {
            $(
                $(#[$fmeta])*
                pub $field: $ty,
            )*
        }

        impl $crate::jute::Record for $name {
            const MIN_ENCODED_LEN: usize = 0 $(+ <$ty as $crate::jute::Record>::MIN_ENCODED_LEN)*;
            #[allow(unused_variables)]
            fn read(r: &mut $crate::jute::JuteReader) -> $crate::error::Result<Self> {
                Ok($name {
                    $( $field: <$ty as $crate::jute::Record>::read(r)?, )*
                })
            }
            #[allow(unused_variables)]
            fn write(&self, w: &mut ::bytes::BytesMut) {
                $( <$ty as $crate::jute::Record>::write(&self.$field, w); )*
            }
        }

        #[cfg(test)]
        impl $crate::arb::Arb for $name {
            fn arb() -> ::proptest::strategy::BoxedStrategy<Self> {
                use ::proptest::strategy::Strategy;
                $crate::arb::fields!($name; $($field : $ty),*)
            }
        }
    };
}

pub(crate) use jute_record;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vector_count_is_bounded_before_allocation() {
        let mut b = BytesMut::new();
        b.write_i32(i32::MAX);
        let mut r = JuteReader::new(b.freeze());
        assert!(matches!(
            r.read_vec::<i64>(),
            Err(ProtoError::LengthTooLarge { .. })
        ));
    }

    #[test]
    fn null_and_empty_are_distinct() {
        let mut b = BytesMut::new();
        b.write_opt_buffer(None);
        b.write_buffer(b"");
        let mut r = JuteReader::new(b.freeze());
        assert_eq!(r.read_opt_buffer().unwrap(), None);
        assert_eq!(r.read_opt_buffer().unwrap(), Some(Bytes::new()));
    }

    #[test]
    fn bad_utf8_and_negative_lengths_are_errors() {
        let mut b = BytesMut::new();
        b.write_buffer(&[0xff, 0xfe]);
        assert_eq!(
            JuteReader::new(b.freeze()).read_string(),
            Err(ProtoError::InvalidUtf8)
        );
        let mut b = BytesMut::new();
        b.write_i32(-7);
        assert_eq!(
            JuteReader::new(b.freeze()).read_buffer(),
            Err(ProtoError::NegativeLength(-7))
        );
    }

    #[test]
    fn buffers_are_zero_copy_slices() {
        let mut b = BytesMut::new();
        b.write_buffer(b"hello");
        let frame = b.freeze();
        let start = frame.as_ptr() as usize;
        let got = JuteReader::new(frame.clone()).read_buffer().unwrap();
        assert_eq!(&got[..], b"hello");
        assert_eq!(got.as_ptr() as usize, start + 4);
    }
}
