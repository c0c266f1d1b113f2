//! Time as the sans-IO cores take it: passed in, never read.

/// The time of one input: the monotonic clock for timeouts (session expiry, container
/// checks) and the wall clock only for what is recorded in txns (`time`, a znode's
/// `mtime`) and compared with it (TTLs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Monotonic ms (any origin, never going back): a member's peer clock.
    pub mono: i64,
    /// Wall-clock ms since the Unix epoch.
    pub wall: i64,
}

impl Now {
    /// The time `mono` on the monotonic clock and `wall` on the wall clock.
    pub fn new(mono: i64, wall: i64) -> Now {
        Now { mono, wall }
    }
}

/// One number for both clocks (tests and simulations where they coincide).
impl From<i64> for Now {
    fn from(ms: i64) -> Now {
        Now { mono: ms, wall: ms }
    }
}
