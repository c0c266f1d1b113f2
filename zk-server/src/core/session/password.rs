//! Session passwords, derived from the session id exactly as Apache does
//! (`new java.util.Random(sessionId ^ 0xB3415C00L).nextBytes(16 bytes)`), so any server of
//! an ensemble, and a restarted server, can check a reconnecting client's password.

use zk_proto::PASSWORD_LEN;

const SUPER_SECRET: i64 = 0xB341_5C00;
const MULTIPLIER: u64 = 0x5_DEEC_E66D;
const MASK: u64 = (1 << 48) - 1;

/// `java.util.Random`'s 48-bit linear congruential generator.
struct JavaRandom(u64);

impl JavaRandom {
    fn new(seed: i64) -> Self {
        JavaRandom((seed as u64 ^ MULTIPLIER) & MASK)
    }

    fn next_int(&mut self) -> i32 {
        self.0 = (self.0.wrapping_mul(MULTIPLIER).wrapping_add(0xB)) & MASK;
        (self.0 >> 16) as u32 as i32
    }

    fn next_bytes(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(4) {
            let mut rnd = self.next_int();
            for b in chunk {
                *b = rnd as u8;
                rnd >>= 8;
            }
        }
    }
}

/// The password of a session.
pub fn session_password(session_id: i64) -> [u8; PASSWORD_LEN] {
    let mut out = [0u8; PASSWORD_LEN];
    JavaRandom::new(session_id ^ SUPER_SECRET).next_bytes(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_random_reference_values() {
        // new java.util.Random(42).nextInt() == -1170105035 (well-known value).
        assert_eq!(JavaRandom::new(42).next_int(), -1170105035);
        let mut r = JavaRandom::new(0);
        assert_eq!(r.next_int(), -1155484576);
    }

    #[test]
    fn passwords_are_deterministic_and_distinct() {
        assert_eq!(session_password(1), session_password(1));
        assert_ne!(session_password(1), session_password(2));
    }
}
