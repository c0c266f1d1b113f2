//! Adler-32, the checksum Apache seals txn log entries and snapshots with
//! (`java.util.zip.Adler32`).

/// Largest prime below 2^16.
const MOD: u32 = 65_521;
/// Most bytes that can be summed before `b` could overflow a u32 (from zlib).
const NMAX: usize = 5_552;

/// A running Adler-32 checksum.
#[derive(Debug, Clone, Copy)]
pub struct Adler32 {
    a: u32,
    b: u32,
}

impl Default for Adler32 {
    fn default() -> Self {
        Adler32 { a: 1, b: 0 }
    }
}

impl Adler32 {
    /// A fresh checksum (value 1, as Java's).
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(NMAX) {
            for &byte in chunk {
                self.a += u32::from(byte);
                self.b += self.a;
            }
            self.a %= MOD;
            self.b %= MOD;
        }
    }

    /// The checksum so far; Apache stores it as a jute `long` (always non-negative).
    pub fn value(&self) -> u32 {
        (self.b << 16) | self.a
    }
}

/// Checksum of one buffer.
pub fn adler32(bytes: &[u8]) -> u32 {
    let mut a = Adler32::new();
    a.update(bytes);
    a.value()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        // Reference values from zlib / java.util.zip.Adler32.
        assert_eq!(adler32(b""), 1);
        assert_eq!(adler32(b"a"), 0x0062_0062);
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
        let big = vec![0xffu8; 100_000];
        let mut inc = Adler32::new();
        for part in big.chunks(777) {
            inc.update(part);
        }
        assert_eq!(inc.value(), adler32(&big));
        // Worst case for overflow: all 0xff over more than NMAX bytes, checked against a
        // straightforward modular implementation.
        let (mut a, mut b) = (1u64, 0u64);
        for &x in &big {
            a = (a + u64::from(x)) % 65_521;
            b = (b + a) % 65_521;
        }
        assert_eq!(u64::from(adler32(&big)), (b << 16) | a);
    }
}
