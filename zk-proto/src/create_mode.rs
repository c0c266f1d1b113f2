//! Node creation modes (`CreateMode`).

use crate::error::{ProtoError, Result};

/// How a node is created: lifetime, sequencing, container or TTL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CreateMode {
    /// Lives until deleted.
    #[default]
    Persistent,
    /// Deleted when the creating session ends.
    Ephemeral,
    /// Persistent, with a `%010d` sequence suffix from the parent's cversion.
    PersistentSequential,
    /// Ephemeral, with a sequence suffix.
    EphemeralSequential,
    /// Removed by the server once it had children and has none left.
    Container,
    /// Persistent, removed after the TTL once it has no children and no changes.
    PersistentWithTtl,
    /// Sequential persistent node with a TTL.
    PersistentSequentialWithTtl,
}

impl CreateMode {
    /// Every mode, by flag number.
    pub const ALL: [CreateMode; 7] = [
        CreateMode::Persistent,
        CreateMode::Ephemeral,
        CreateMode::PersistentSequential,
        CreateMode::EphemeralSequential,
        CreateMode::Container,
        CreateMode::PersistentWithTtl,
        CreateMode::PersistentSequentialWithTtl,
    ];

    /// The `flags` value of a create request.
    pub const fn to_flags(self) -> i32 {
        match self {
            CreateMode::Persistent => 0,
            CreateMode::Ephemeral => 1,
            CreateMode::PersistentSequential => 2,
            CreateMode::EphemeralSequential => 3,
            CreateMode::Container => 4,
            CreateMode::PersistentWithTtl => 5,
            CreateMode::PersistentSequentialWithTtl => 6,
        }
    }

    /// Parses a `flags` value; an undefined one is an error (Apache answers BadArguments).
    pub fn from_flags(flags: i32) -> Result<Self> {
        match flags {
            0..=6 => Ok(CreateMode::ALL[flags as usize]),
            other => Err(ProtoError::InvalidValue {
                what: "create mode",
                value: other as i64,
            }),
        }
    }

    /// True for the modes whose node dies with its session.
    pub const fn is_ephemeral(self) -> bool {
        matches!(
            self,
            CreateMode::Ephemeral | CreateMode::EphemeralSequential
        )
    }

    /// True for the modes that append a sequence number.
    pub const fn is_sequential(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentSequential
                | CreateMode::EphemeralSequential
                | CreateMode::PersistentSequentialWithTtl
        )
    }

    /// True for container nodes.
    pub const fn is_container(self) -> bool {
        matches!(self, CreateMode::Container)
    }

    /// True for the TTL modes.
    pub const fn is_ttl(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentWithTtl | CreateMode::PersistentSequentialWithTtl
        )
    }
}

/// `ephemeralOwner` of container nodes.
pub const CONTAINER_EPHEMERAL_OWNER: i64 = i64::MIN;

/// Largest TTL that fits the `ephemeralOwner` encoding (Apache's `EphemeralType.MAX_EXTENDED_SERVER_ID` layout).
pub const MAX_TTL: i64 = 0x00ff_ffff_ffff_ffff;

/// Encodes a TTL into an `ephemeralOwner`: high byte 0xff, extended type 0, then the TTL.
pub fn ttl_to_ephemeral_owner(ttl: i64) -> Option<i64> {
    if ttl <= 0 || ttl > MAX_TTL {
        return None;
    }
    Some((0xffu64 << 56) as i64 | ttl)
}

/// Decodes the TTL from an `ephemeralOwner`, if it is a TTL node.
pub fn ephemeral_owner_to_ttl(owner: i64) -> Option<i64> {
    let raw = owner as u64;
    if raw >> 56 == 0xff && owner != CONTAINER_EPHEMERAL_OWNER {
        Some((raw & 0x00ff_ffff_ffff_ffff) as i64)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_round_trip_and_unknown_is_error() {
        for m in CreateMode::ALL {
            assert_eq!(CreateMode::from_flags(m.to_flags()).unwrap(), m);
        }
        assert!(CreateMode::from_flags(7).is_err());
        assert!(CreateMode::from_flags(-1).is_err());
    }

    #[test]
    fn ttl_owner_encoding() {
        let o = ttl_to_ephemeral_owner(5000).unwrap();
        assert_eq!(o as u64 >> 56, 0xff);
        assert_eq!(ephemeral_owner_to_ttl(o), Some(5000));
        assert_eq!(ephemeral_owner_to_ttl(0), None);
        assert_eq!(ephemeral_owner_to_ttl(CONTAINER_EPHEMERAL_OWNER), None);
        assert_eq!(ttl_to_ephemeral_owner(0), None);
    }
}
