//! Request bodies are encoded into a per-thread slab and split off as `Bytes`, so encoding a
//! request costs no allocation of its own: the slab is replaced only every 64 KiB (or for a
//! body larger than what is left).

use std::cell::Cell;

use bytes::{Bytes, BytesMut};

const SLAB: usize = 64 * 1024;

thread_local! {
    static CURRENT: Cell<BytesMut> = Cell::new(BytesMut::new());
}

/// An empty buffer with room for at least `need` bytes, carved from this thread's slab.
pub(crate) fn take(need: usize) -> BytesMut {
    let mut b = CURRENT.with(Cell::take);
    b.clear();
    if b.capacity() < need {
        b.reserve(need.max(SLAB));
    }
    b
}

/// Freezes what was written into `b` and returns the rest of the slab for later requests.
pub(crate) fn finish(mut b: BytesMut) -> Bytes {
    let out = b.split().freeze();
    CURRENT.with(|c| c.set(b));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_share_one_slab() {
        let mut a = take(10);
        a.extend_from_slice(b"first");
        let a = finish(a);
        let mut b = take(10);
        b.extend_from_slice(b"second");
        let b = finish(b);
        assert_eq!((&a[..], &b[..]), (&b"first"[..], &b"second"[..]));
        // Adjacent in memory: the second body was carved right after the first.
        assert_eq!(a.as_ptr() as usize + a.len(), b.as_ptr() as usize);
        let big = finish({
            let mut x = take(SLAB * 2);
            x.extend_from_slice(&vec![1u8; SLAB * 2]);
            x
        });
        assert_eq!(big.len(), SLAB * 2);
    }
}
