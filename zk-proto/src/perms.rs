//! ACL permission bits (`ZooDefs.Perms`).

use std::ops::{BitAnd, BitOr};

/// A set of permission bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Perms(pub i32);

impl Perms {
    /// Read data and list children.
    pub const READ: Perms = Perms(1);
    /// Set data.
    pub const WRITE: Perms = Perms(2);
    /// Create children.
    pub const CREATE: Perms = Perms(4);
    /// Delete children.
    pub const DELETE: Perms = Perms(8);
    /// Set ACL.
    pub const ADMIN: Perms = Perms(16);
    /// Everything.
    pub const ALL: Perms = Perms(31);
    /// Nothing.
    pub const NONE: Perms = Perms(0);

    /// True when every bit of `other` is set here.
    pub const fn contains(self, other: Perms) -> bool {
        self.0 & other.0 == other.0
    }

    /// Apache's short form, e.g. `cdrwa`.
    pub fn to_short_string(self) -> String {
        let mut s = String::new();
        for (bit, c) in [
            (Perms::CREATE, 'c'),
            (Perms::DELETE, 'd'),
            (Perms::READ, 'r'),
            (Perms::WRITE, 'w'),
            (Perms::ADMIN, 'a'),
        ] {
            if self.contains(bit) {
                s.push(c);
            }
        }
        s
    }
}

impl BitOr for Perms {
    type Output = Perms;
    fn bitor(self, rhs: Perms) -> Perms {
        Perms(self.0 | rhs.0)
    }
}

impl BitAnd for Perms {
    type Output = Perms;
    fn bitand(self, rhs: Perms) -> Perms {
        Perms(self.0 & rhs.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits() {
        assert_eq!(
            Perms::READ | Perms::WRITE | Perms::CREATE | Perms::DELETE | Perms::ADMIN,
            Perms::ALL
        );
        assert!(Perms::ALL.contains(Perms::ADMIN));
        assert!(!Perms::READ.contains(Perms::WRITE));
        assert_eq!(Perms::ALL.to_short_string(), "cdrwa");
    }
}
