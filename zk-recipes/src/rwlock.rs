//! A read-write lock in kazoo's layout: readers create `<token>__rlock__<seq>`, writers
//! `<token>__lock__<seq>` under one path. A reader waits only for earlier writers, a
//! writer for every earlier contender, so kazoo's `ReadLock`/`WriteLock` interoperate.
//! Both sides are [`Lock`]s (fair, herd-free, reentrant within the owner).

use crate::contender::{LOCK, RLOCK};
use crate::lock::Lock;
use crate::session::Session;

/// The two sides of a read-write lock at one path.
#[derive(Debug)]
pub struct RwLock {
    /// Shared side.
    pub read: Lock,
    /// Exclusive side.
    pub write: Lock,
}

impl RwLock {
    /// The read-write lock at `path`; `identifier` is shown to other contenders.
    pub fn new(session: &Session, path: &str, identifier: &str) -> Self {
        RwLock {
            read: Lock::with_kind(session, path, identifier, RLOCK, &[LOCK]),
            write: Lock::with_kind(session, path, identifier, LOCK, &[LOCK, RLOCK]),
        }
    }
}
