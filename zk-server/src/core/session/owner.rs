//! Which ensemble member a global session is attached to, as the leader records it
//! (Apache's session owner): the member that created or last revalidated the session.
//! A write arriving through any other member comes from a connection the client has
//! left, and fails with SessionMoved.

use std::collections::HashMap;

/// A member's connection to the leader (the driver's learner connection id).
pub type LearnerConn = u64;

/// Where a session's client is connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Owner {
    /// A client of the leader itself.
    Leader,
    /// A client of the learner on this connection.
    Learner(LearnerConn),
}

/// The leader's session owners.
#[derive(Debug, Clone, Default)]
pub struct SessionOwners {
    owners: HashMap<i64, Owner>,
}

impl SessionOwners {
    /// Records that `session` is now served through `owner` (created or revalidated there).
    pub fn set(&mut self, session: i64, owner: Owner) {
        self.owners.insert(session, owner);
    }

    /// Whether a request from `owner` may act for `session`. A session without an owner
    /// (restored under a new leader) is claimed by the first member to use it, as Apache
    /// does.
    pub fn check(&mut self, session: i64, owner: Owner) -> bool {
        *self.owners.entry(session).or_insert(owner) == owner
    }

    /// The owner of a session.
    pub fn get(&self, session: i64) -> Option<Owner> {
        self.owners.get(&session).copied()
    }

    /// Forgets sessions for which `alive` is false (closed or expired).
    pub fn retain(&mut self, alive: impl Fn(i64) -> bool) {
        self.owners.retain(|s, _| alive(*s));
    }

    /// Forgets every owner (a new leadership starts without any).
    pub fn clear(&mut self) {
        self.owners.clear();
    }

    /// Number of sessions with an owner.
    pub fn len(&self) -> usize {
        self.owners.len()
    }

    /// Whether no session has an owner.
    pub fn is_empty(&self) -> bool {
        self.owners.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_user_claims_and_others_are_moved() {
        let mut o = SessionOwners::default();
        assert!(o.check(1, Owner::Learner(7)));
        assert!(o.check(1, Owner::Learner(7)));
        assert!(!o.check(1, Owner::Leader));
        o.set(1, Owner::Leader);
        assert!(!o.check(1, Owner::Learner(7)));
        assert!(o.check(1, Owner::Leader));
        o.retain(|s| s != 1);
        assert!(o.is_empty());
    }
}
