//! Fencing tokens for [`crate::lock::Lock`] and [`crate::election::LeaderLatch`].
//!
//! A lock or leadership held through ZooKeeper can be lost without the holder noticing
//! in time: its session expires during a long GC pause or a partition, the next contender
//! takes over, and the old holder wakes up still believing it holds the lock (the "two
//! holders at once" bug reports against Curator and kazoo). ZooKeeper cannot stop the old
//! holder from talking to *other* systems; those systems must refuse it themselves.
//!
//! The token of a hold is the zxid at which the holder's queue node was created (its
//! `czxid`). zxids grow with every write to the ensemble, and contenders take their turn in
//! the creation order of their nodes, so every holder's token is greater than the token of
//! every holder before it (a holder that loses its session and queues again gets a new
//! node, hence a new, greater token). The downstream rule is then:
//!
//! - every request made on the strength of the lock carries the token;
//! - the downstream system remembers the greatest token it has accepted, and refuses a
//!   request whose token is lower, atomically with performing it ([`Fence`] does this for
//!   one in-process resource; a database does it with a conditional write such as
//!   `UPDATE ... SET token = $t WHERE token <= $t`).
//!
//! ```
//! use zk_recipes::fencing::{Fence, FencingToken};
//! let storage = Fence::new();
//! let old_holder = FencingToken::new(0x1_0000_0005);  // its session expired
//! let new_holder = FencingToken::new(0x1_0000_0009);  // acquired after
//! assert!(storage.check(new_holder).is_ok());         // the new holder writes
//! assert!(storage.check(old_holder).is_err());        // the stale holder is refused
//! ```
//!
//! What it does not do: tokens only order holders of locks on the same ensemble, and they
//! protect only systems that check them. A reentrant acquire keeps the token of the hold
//! it extends.

use std::sync::atomic::{AtomicI64, Ordering};

use crate::error::{Error, Result};

/// A monotonically increasing token of a lock hold or a leadership term (see the module
/// docs): the `czxid` of the holder's node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FencingToken(i64);

impl FencingToken {
    /// A token from its value (e.g. one received over the wire by a downstream system).
    pub const fn new(value: i64) -> Self {
        FencingToken(value)
    }

    /// The value to send downstream (the node's `czxid`).
    pub const fn value(self) -> i64 {
        self.0
    }
}

impl std::fmt::Display for FencingToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// The downstream check for one resource: accepts a token not lower than any accepted
/// before, and remembers the greatest (lock-free, safe to share).
#[derive(Debug)]
pub struct Fence {
    highest: AtomicI64,
}

impl Default for Fence {
    fn default() -> Self {
        Fence::new()
    }
}

impl Fence {
    /// A fence that has accepted nothing yet.
    pub const fn new() -> Self {
        Fence {
            highest: AtomicI64::new(i64::MIN),
        }
    }

    /// Accepts `token` (and records it) unless a greater one was accepted already. Equal
    /// tokens pass: one holder makes many requests.
    /// Fails with [`Error::StaleToken`].
    pub fn check(&self, token: FencingToken) -> Result<()> {
        let prev = self.highest.fetch_max(token.0, Ordering::AcqRel);
        if prev > token.0 {
            Err(Error::StaleToken {
                presented: token,
                accepted: FencingToken(prev),
            })
        } else {
            Ok(())
        }
    }

    /// The greatest token accepted (`None` before the first).
    pub fn highest(&self) -> Option<FencingToken> {
        match self.highest.load(Ordering::Acquire) {
            i64::MIN => None,
            v => Some(FencingToken(v)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fence_refuses_lower_and_accepts_equal_or_higher() {
        let f = Fence::new();
        assert_eq!(f.highest(), None);
        f.check(FencingToken::new(5)).unwrap();
        f.check(FencingToken::new(5)).unwrap();
        let e = f.check(FencingToken::new(4)).unwrap_err();
        assert!(
            matches!(e, Error::StaleToken { accepted, .. } if accepted == FencingToken::new(5))
        );
        assert!(e.to_string().contains("stale fencing token 0x4"), "{e}");
        f.check(FencingToken::new(9)).unwrap();
        assert!(f.check(FencingToken::new(5)).is_err());
        assert_eq!(f.highest(), Some(FencingToken::new(9)));
    }
}
