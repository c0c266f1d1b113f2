//! The safety invariants, checked after every simulation step:
//! - at most one established leader per epoch;
//! - every server's applied txns have strictly increasing zxids;
//! - the applied history of every serving (caught-up) server is a prefix of the one
//!   committed history, or extends it (everything a serving server applied is committed):
//!   so a committed txn is never lost or reordered, committed logs are prefixes of one
//!   another, and caught-up servers holding the same zxid hold identical state.

use std::collections::BTreeMap;

use crate::zab::zxid::hex;
use crate::zab::{Sid, Zxid};

/// A txn as the checker sees it: zxid and a hash of its payload.
pub type Entry = (Zxid, u64);

/// Global knowledge accumulated over a run.
#[derive(Debug, Default)]
pub struct Checker {
    leaders: BTreeMap<i64, Sid>,
    committed: Vec<Entry>,
    /// Per server: how much of its applied history was already checked.
    checked: BTreeMap<Sid, usize>,
}

impl Checker {
    /// The committed history so far.
    pub fn committed(&self) -> &[Entry] {
        &self.committed
    }

    /// Epochs and their leaders.
    pub fn leaders(&self) -> &BTreeMap<i64, Sid> {
        &self.leaders
    }

    /// A server's applied history was rewritten (restart, TRUNC, SNAP): check it again
    /// from the start next time.
    pub fn reset(&mut self, sid: Sid) {
        self.checked.insert(sid, 0);
    }

    /// `sid` is an established leader of `epoch`.
    pub fn leader(&mut self, epoch: i64, sid: Sid) -> Result<(), String> {
        match self.leaders.insert(epoch, sid) {
            Some(other) if other != sid => {
                Err(format!("two leaders in epoch {epoch}: {other} and {sid}"))
            }
            _ => Ok(()),
        }
    }

    /// Checks a serving server's applied history against the committed one.
    pub fn serving(&mut self, sid: Sid, applied: &[Entry]) -> Result<(), String> {
        let from = self
            .checked
            .get(&sid)
            .copied()
            .unwrap_or(0)
            .min(applied.len());
        for (i, e) in applied.iter().enumerate().skip(from) {
            if i > 0 && applied[i - 1].0 >= e.0 {
                return Err(format!(
                    "server {sid}: zxid {} applied after {}",
                    hex(e.0),
                    hex(applied[i - 1].0)
                ));
            }
            match self.committed.get(i) {
                Some(c) if c == e => {}
                Some(c) => {
                    return Err(format!(
                        "server {sid} diverges from the committed history at index {i}: has {} (hash {:x}), committed {} (hash {:x})",
                        hex(e.0),
                        e.1,
                        hex(c.0),
                        c.1
                    ))
                }
                None => self.committed.push(*e),
            }
        }
        self.checked.insert(sid, applied.len());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_divergence_and_double_leaders() {
        let mut c = Checker::default();
        c.serving(1, &[(1, 10), (2, 20)]).unwrap();
        c.serving(2, &[(1, 10)]).unwrap();
        c.serving(2, &[(1, 10), (2, 20), (3, 30)]).unwrap();
        assert_eq!(c.committed().len(), 3);
        c.reset(3);
        assert!(c.serving(3, &[(1, 10), (2, 21)]).is_err());
        c.reset(4);
        assert!(c.serving(4, &[(2, 20), (1, 10)]).is_err());
        c.leader(1, 3).unwrap();
        c.leader(1, 3).unwrap();
        assert!(c.leader(1, 2).is_err());
    }
}
