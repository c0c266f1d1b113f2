//! The replicated history as one server holds it.
//!
//! Invariants kept here: `applied <= logged`; `pending` holds the logged txns not applied
//! yet, ascending and all above `applied`; `recent` holds the last applied txns (at most
//! `cap`), which is what a leader can send in a DIFF.

use std::collections::VecDeque;

use super::{end, Proposal, RoleResult};
use crate::zab::zxid::hex;
use crate::zab::{Action, Zxid};

/// What a server finds on disk when it starts: its epochs and the tail of its history.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiskState {
    /// acceptedEpoch file (0 if absent).
    pub accepted_epoch: i64,
    /// currentEpoch file (0 if absent).
    pub current_epoch: i64,
    /// Last zxid of the database after loading snapshot and log (0 if empty).
    pub last_zxid: Zxid,
    /// The last logged txns, ascending, ending at `last_zxid` (may be empty or shorter
    /// than the whole log; older txns are only reachable by SNAP).
    pub recent: Vec<Proposal>,
}

/// Epochs, zxids and the recent txns of one server.
#[derive(Debug, Clone)]
pub struct History {
    /// acceptedEpoch: the last epoch we promised to follow.
    pub accepted_epoch: i64,
    /// currentEpoch: the last epoch whose history we accepted (NEWLEADER).
    pub current_epoch: i64,
    logged: Zxid,
    durable: Zxid,
    applied: Zxid,
    recent: VecDeque<Proposal>,
    pending: VecDeque<Proposal>,
    cap: usize,
}

impl History {
    /// The history found on disk; everything in it is logged, durable and applied.
    pub fn from_disk(disk: DiskState, cap: usize) -> Self {
        let mut recent: VecDeque<Proposal> = disk
            .recent
            .into_iter()
            .filter(|p| p.zxid <= disk.last_zxid)
            .collect();
        while recent.len() > cap {
            recent.pop_front();
        }
        History {
            accepted_epoch: disk.accepted_epoch,
            current_epoch: disk.current_epoch,
            logged: disk.last_zxid,
            durable: disk.last_zxid,
            applied: disk.last_zxid,
            recent,
            pending: VecDeque::new(),
            cap: cap.max(1),
        }
    }

    /// Last zxid appended to the log.
    pub fn last_logged(&self) -> Zxid {
        self.logged
    }

    /// Last zxid known to be on disk.
    pub fn durable(&self) -> Zxid {
        self.durable
    }

    /// Last zxid applied to the database.
    pub fn applied(&self) -> Zxid {
        self.applied
    }

    /// The recent applied txns, ascending.
    pub fn recent(&self) -> &VecDeque<Proposal> {
        &self.recent
    }

    /// Logged txns not applied yet, ascending.
    pub fn pending(&self) -> &VecDeque<Proposal> {
        &self.pending
    }

    /// Appends a txn to the log (zxids must grow).
    pub fn append(&mut self, p: Proposal, out: &mut Vec<Action>) -> RoleResult {
        if p.zxid <= self.logged {
            return end(format!(
                "txn {} does not follow the last logged {}",
                hex(p.zxid),
                hex(self.logged)
            ));
        }
        self.logged = p.zxid;
        out.push(Action::Persist(p.clone()));
        self.pending.push_back(p);
        Ok(())
    }

    /// Applies the next logged txn, which must be `zxid`.
    pub fn commit(&mut self, zxid: Zxid, out: &mut Vec<Action>) -> RoleResult {
        match self.pending.front() {
            Some(p) if p.zxid == zxid => {}
            Some(p) => {
                return end(format!(
                    "commit of {} but the next pending txn is {}",
                    hex(zxid),
                    hex(p.zxid)
                ))
            }
            None => return end(format!("commit of {} without its proposal", hex(zxid))),
        }
        if let Some(p) = self.pending.pop_front() {
            self.apply(p, out);
        }
        Ok(())
    }

    /// Applies every logged txn (Apache's fastForwardDataBase when a role ends).
    pub fn fast_forward(&mut self, out: &mut Vec<Action>) {
        while let Some(p) = self.pending.pop_front() {
            self.apply(p, out);
        }
    }

    fn apply(&mut self, p: Proposal, out: &mut Vec<Action>) {
        self.applied = p.zxid;
        out.push(Action::Deliver(p.clone()));
        self.recent.push_back(p);
        if self.recent.len() > self.cap {
            self.recent.pop_front();
        }
    }

    /// TRUNC: forget everything after `zxid`.
    pub fn truncate(&mut self, zxid: Zxid, out: &mut Vec<Action>) {
        self.pending.retain(|p| p.zxid <= zxid);
        self.recent.retain(|p| p.zxid <= zxid);
        self.logged = self.logged.min(zxid);
        self.applied = self.applied.min(zxid);
        self.durable = self.durable.min(zxid);
        out.push(Action::Truncate(zxid));
    }

    /// SNAP: the database is now the leader's snapshot at `zxid`.
    pub fn install_snapshot(&mut self, zxid: Zxid, data: bytes::Bytes, out: &mut Vec<Action>) {
        self.pending.clear();
        self.recent.clear();
        self.logged = zxid;
        self.applied = zxid;
        self.durable = zxid;
        out.push(Action::InstallSnapshot { zxid, data });
    }

    /// The driver reports the log durable up to `zxid`.
    pub fn persisted(&mut self, zxid: Zxid) {
        if zxid <= self.logged {
            self.durable = self.durable.max(zxid);
        }
    }

    /// Records and persists a new acceptedEpoch.
    pub fn set_accepted_epoch(&mut self, e: i64, out: &mut Vec<Action>) {
        self.accepted_epoch = e;
        out.push(Action::SaveAcceptedEpoch(e));
    }

    /// Records and persists a new currentEpoch.
    pub fn set_current_epoch(&mut self, e: i64, out: &mut Vec<Action>) {
        self.current_epoch = e;
        out.push(Action::SaveCurrentEpoch(e));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn p(z: Zxid) -> Proposal {
        Proposal {
            zxid: z,
            data: Bytes::from(z.to_string()),
        }
    }

    #[test]
    fn append_commit_truncate() {
        let mut h = History::from_disk(
            DiskState {
                last_zxid: 2,
                recent: vec![p(1), p(2)],
                ..Default::default()
            },
            3,
        );
        let mut out = Vec::new();
        h.append(p(3), &mut out).unwrap();
        h.append(p(4), &mut out).unwrap();
        assert!(h.append(p(4), &mut out).is_err());
        assert!(h.commit(4, &mut out).is_err());
        h.commit(3, &mut out).unwrap();
        assert_eq!((h.applied(), h.last_logged(), h.durable()), (3, 4, 2));
        h.persisted(4);
        assert_eq!(h.durable(), 4);
        h.fast_forward(&mut out);
        assert_eq!(h.applied(), 4);
        assert_eq!(
            h.recent().iter().map(|p| p.zxid).collect::<Vec<_>>(),
            [2, 3, 4]
        );
        h.truncate(2, &mut out);
        assert_eq!((h.applied(), h.last_logged(), h.durable()), (2, 2, 2));
        assert_eq!(out.last(), Some(&Action::Truncate(2)));
    }
}
