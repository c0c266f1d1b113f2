//! Histories of operations on versioned registers and a linearizability checker for them,
//! for Jepsen-style tests of an ensemble (`tests/tests/ensemble_jepsen.rs`).
//!
//! Each key is a ZooKeeper node used as a register: its data (a `u64`) and its version.
//! Clients [`Call::Write`] (setData without a version), [`Call::Cas`] (setData with an
//! expected version) and [`Call::Read`] (sync + getData); a [`History`] records each call
//! with its invocation and completion times (one monotonic clock) and how it ended:
//! - [`Outcome::Ok`]: the server answered, with what ([`Return`]); a CAS refused with
//!   `BadVersion` is an answer too ([`Return::Mismatch`]): at some point inside the call
//!   the version was not the expected one;
//! - [`Outcome::Fail`]: certainly had no effect (a read that failed, a request never sent);
//! - [`Outcome::Unknown`]: may or may not have taken effect, at any time after its
//!   invocation (ConnectionLoss, a timeout, an expired session with the write in flight).
//!
//! [`check`] decides, key by key (linearizability is compositional), whether some total
//! order of the operations respects real time (an operation that completed before another
//! was invoked comes first) and the register's sequential specification. The search is
//! Wing & Gong's, with Lowe's memoization of (linearized set, register state) as Knossos
//! does: at each step any operation not yet placed whose invocation precedes the earliest
//! completion among the remaining ones may go next; an unknown operation may be placed or
//! left out.
//!
//! ```
//! use std::time::Duration;
//! use tests::linearizability::{check, Call, History, Outcome, Return};
//! let ms = Duration::from_millis;
//! let mut h = History::new(0);
//! h.push(0, "k", Call::Write(1), ms(0), ms(10), Outcome::Ok(Return::Written { version: 1 }));
//! // A read invoked after the write completed must see it.
//! h.push(1, "k", Call::Read, ms(20), ms(30), Outcome::Ok(Return::Read { value: 0, version: 0 }));
//! assert!(check(&h, 1_000_000).is_err());
//! ```

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::time::Duration;

/// What a client asked of one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// setData(value) with no expected version.
    Write(u64),
    /// setData(value) only if the version is `expected`.
    Cas {
        /// The version the client expects.
        expected: i32,
        /// The new data.
        value: u64,
    },
    /// sync + getData (or any read meant to be linearizable).
    Read,
}

/// What the server answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Return {
    /// A write or CAS took effect; the node's version after it.
    Written {
        /// `Stat.version` of the answer.
        version: i32,
    },
    /// A CAS refused with `BadVersion`.
    Mismatch,
    /// A read's data and version.
    Read {
        /// The data.
        value: u64,
        /// `Stat.version`.
        version: i32,
    },
}

/// How an operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Answered by the server.
    Ok(Return),
    /// Certainly without effect.
    Fail,
    /// May have taken effect at any time after its invocation, or never.
    Unknown,
}

/// One operation: invocation and completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The client (worker) that issued it.
    pub process: usize,
    /// The register.
    pub key: String,
    /// What was asked.
    pub call: Call,
    /// When it was invoked (since the history's start).
    pub invoked: Duration,
    /// When the client saw its end (for [`Outcome::Unknown`] its effect may come later).
    pub completed: Duration,
    /// How it ended.
    pub outcome: Outcome,
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let call = match self.call {
            Call::Write(v) => format!("write {v}"),
            Call::Cas { expected, value } => format!("cas v{expected} -> {value}"),
            Call::Read => "read".to_string(),
        };
        let out = match self.outcome {
            Outcome::Ok(Return::Written { version }) => format!("ok v{version}"),
            Outcome::Ok(Return::Mismatch) => "ok bad-version".to_string(),
            Outcome::Ok(Return::Read { value, version }) => format!("ok {value} v{version}"),
            Outcome::Fail => "fail".to_string(),
            Outcome::Unknown => "unknown".to_string(),
        };
        write!(
            f,
            "[{:>9.3} ms .. {:>9.3} ms] p{} {} {call}: {out}",
            self.invoked.as_secs_f64() * 1e3,
            self.completed.as_secs_f64() * 1e3,
            self.process,
            self.key,
        )
    }
}

/// Operations on any number of keys, each starting with data `initial` at version 0.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// The data of every key before the first operation (version 0).
    pub initial: u64,
    /// Every operation, in any order.
    pub entries: Vec<Entry>,
}

impl History {
    /// An empty history whose keys start with data `initial`, version 0.
    pub fn new(initial: u64) -> History {
        History {
            initial,
            entries: Vec::new(),
        }
    }

    /// Records one operation.
    pub fn push(
        &mut self,
        process: usize,
        key: &str,
        call: Call,
        invoked: Duration,
        completed: Duration,
        outcome: Outcome,
    ) {
        self.entries.push(Entry {
            process,
            key: key.to_string(),
            call,
            invoked,
            completed,
            outcome,
        });
    }

    /// The keys, in order.
    pub fn keys(&self) -> Vec<String> {
        let mut k: Vec<String> = self.entries.iter().map(|e| e.key.clone()).collect();
        k.sort();
        k.dedup();
        k
    }

    /// Counts of (ok, fail, unknown) operations.
    pub fn counts(&self) -> (usize, usize, usize) {
        let mut c = (0, 0, 0);
        for e in &self.entries {
            match e.outcome {
                Outcome::Ok(_) => c.0 += 1,
                Outcome::Fail => c.1 += 1,
                Outcome::Unknown => c.2 += 1,
            }
        }
        c
    }

    /// The entries of `key`, by invocation time, as text (one per line).
    pub fn render(&self, key: &str) -> String {
        let mut v: Vec<&Entry> = self.entries.iter().filter(|e| e.key == key).collect();
        v.sort_by_key(|e| e.invoked);
        v.iter().map(|e| format!("{e}\n")).collect()
    }
}

/// Why a history is not (or could not be shown to be) linearizable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// No order of `key`'s operations fits: the search placed at most `placed` of the
    /// answered ones; `stuck` are the operations that could have come next there, none of
    /// which the register (at `state`: data, version) allows.
    NotLinearizable {
        /// The register.
        key: String,
        /// Answered operations placed on the deepest path found.
        placed: usize,
        /// Answered operations of the key.
        required: usize,
        /// The register at that point (data, version).
        state: (u64, i32),
        /// Candidates that did not fit there.
        stuck: Vec<Entry>,
    },
    /// The search for `key` visited more states than allowed (no verdict).
    TooHard {
        /// The register.
        key: String,
        /// States visited.
        visited: usize,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::NotLinearizable {
                key,
                placed,
                required,
                state,
                stuck,
            } => {
                writeln!(
                    f,
                    "{key} is not linearizable: at most {placed} of its {required} answered \
                     operations fit in one order; there the register holds {} at version {} \
                     and none of these can come next:",
                    state.0, state.1
                )?;
                for e in stuck {
                    writeln!(f, "  {e}")?;
                }
                Ok(())
            }
            Violation::TooHard { key, visited } => write!(
                f,
                "{key}: no verdict after {visited} search states (history too concurrent)"
            ),
        }
    }
}

/// The register after `call` answered `ret` (None: unknown) from `(value, version)`, or
/// None when the specification does not allow it (an unknown CAS that cannot apply is
/// the same as leaving it out, so it is not allowed here either).
fn step(state: (u64, i32), call: Call, ret: Option<Return>) -> Option<(u64, i32)> {
    let (value, version) = state;
    match call {
        Call::Write(v) => match ret {
            None => Some((v, version + 1)),
            Some(Return::Written { version: w }) if w == version + 1 => Some((v, w)),
            Some(_) => None,
        },
        Call::Cas { expected, value: v } => match ret {
            None if expected == version => Some((v, version + 1)),
            Some(Return::Written { version: w }) if expected == version && w == version + 1 => {
                Some((v, w))
            }
            Some(Return::Mismatch) if expected != version => Some(state),
            _ => None,
        },
        Call::Read => match ret {
            Some(Return::Read {
                value: r,
                version: rv,
            }) if r == value && rv == version => Some(state),
            _ => None,
        },
    }
}

/// One operation as the search sees it.
struct Op {
    entry: Entry,
    invoked: u128,
    /// `u128::MAX` for unknown operations: they constrain nothing after them.
    returned: u128,
    ret: Option<Return>,
}

struct Search<'a> {
    ops: &'a [Op],
    required: usize,
    seen: HashSet<(Vec<u64>, u64, i32)>,
    budget: usize,
    best: (usize, (u64, i32), Vec<usize>),
}

fn bit(set: &[u64], i: usize) -> bool {
    set[i / 64] & (1 << (i % 64)) != 0
}

fn set_bit(set: &mut [u64], i: usize) {
    set[i / 64] |= 1 << (i % 64);
}

impl Search<'_> {
    /// Whether the rest can be placed after `done` with the register at `state`;
    /// Err(()) when the budget ran out.
    fn go(&mut self, done: &mut Vec<u64>, placed: usize, state: (u64, i32)) -> Result<bool, ()> {
        if placed == self.required {
            return Ok(true);
        }
        // Unknown CAS operations expecting a version already passed can never apply:
        // whether they are marked placed makes no difference, so mark them in the key.
        let mut key = done.clone();
        for (i, op) in self.ops.iter().enumerate() {
            if let (None, Call::Cas { expected, .. }) = (op.ret, op.entry.call) {
                if expected < state.1 {
                    set_bit(&mut key, i);
                }
            }
        }
        if !self.seen.insert((key, state.0, state.1)) {
            return Ok(false);
        }
        if self.seen.len() > self.budget {
            return Err(());
        }
        let horizon = self
            .ops
            .iter()
            .enumerate()
            .filter(|(i, _)| !bit(done, *i))
            .map(|(_, o)| o.returned)
            .min()
            .unwrap_or(u128::MAX);
        let mut stuck = Vec::new();
        for i in 0..self.ops.len() {
            let op = &self.ops[i];
            if op.invoked >= horizon {
                break; // ops are sorted by invocation
            }
            if bit(done, i) {
                continue;
            }
            match step(state, op.entry.call, op.ret) {
                Some(next) => {
                    let w = i / 64;
                    let before = done[w];
                    done[w] |= 1 << (i % 64);
                    let answered = usize::from(op.ret.is_some());
                    let ok = self.go(done, placed + answered, next);
                    done[w] = before;
                    if ok? {
                        return Ok(true);
                    }
                }
                None => stuck.push(i),
            }
        }
        if placed > self.best.0 || self.best.2.is_empty() {
            let stuck: Vec<usize> = stuck
                .into_iter()
                .filter(|i| self.ops[*i].ret.is_some())
                .collect();
            if placed > self.best.0 || !stuck.is_empty() {
                self.best = (placed, state, stuck);
            }
        }
        Ok(false)
    }
}

/// Checks one key's operations (any order; other keys' entries are ignored); the number
/// of search states visited when they are linearizable.
pub fn check_key(history: &History, key: &str, budget: usize) -> Result<usize, Violation> {
    let mut ops: Vec<Op> = history
        .entries
        .iter()
        .filter(|e| e.key == key)
        .filter_map(|e| {
            let (ret, returned) = match e.outcome {
                Outcome::Ok(r) => (Some(r), e.completed.as_nanos()),
                // A failed operation had no effect; an unknown read says nothing.
                Outcome::Fail => return None,
                Outcome::Unknown if e.call == Call::Read => return None,
                Outcome::Unknown => (None, u128::MAX),
            };
            Some(Op {
                entry: e.clone(),
                invoked: e.invoked.as_nanos(),
                returned,
                ret,
            })
        })
        .collect();
    ops.sort_by_key(|o| (o.invoked, o.returned));
    let words = ops.len().div_ceil(64).max(1);
    let required = ops.iter().filter(|o| o.ret.is_some()).count();
    let mut s = Search {
        ops: &ops,
        required,
        seen: HashSet::new(),
        budget,
        best: (0, (history.initial, 0), Vec::new()),
    };
    let mut done = vec![0u64; words];
    match s.go(&mut done, 0, (history.initial, 0)) {
        Ok(true) => Ok(s.seen.len()),
        Ok(false) => Err(Violation::NotLinearizable {
            key: key.to_string(),
            placed: s.best.0,
            required,
            state: s.best.1,
            stuck: s.best.2.iter().map(|i| ops[*i].entry.clone()).collect(),
        }),
        Err(()) => Err(Violation::TooHard {
            key: key.to_string(),
            visited: s.seen.len(),
        }),
    }
}

/// Checks every key of `history`; `budget` bounds the search states per key. Returns the
/// number of search states visited per key when all are linearizable.
pub fn check(history: &History, budget: usize) -> Result<BTreeMap<String, usize>, Violation> {
    let mut out = BTreeMap::new();
    for k in history.keys() {
        let visited = check_key(history, &k, budget)?;
        out.insert(k, visited);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn written(version: i32) -> Outcome {
        Outcome::Ok(Return::Written { version })
    }

    fn read(value: u64, version: i32) -> Outcome {
        Outcome::Ok(Return::Read { value, version })
    }

    const B: usize = 1_000_000;

    #[test]
    fn sequential_writes_and_reads_are_linearizable() {
        let mut h = History::new(0);
        h.push(0, "k", Call::Read, ms(0), ms(1), read(0, 0));
        h.push(0, "k", Call::Write(5), ms(2), ms(3), written(1));
        h.push(1, "k", Call::Read, ms(4), ms(5), read(5, 1));
        h.push(
            1,
            "k",
            Call::Cas {
                expected: 1,
                value: 6,
            },
            ms(6),
            ms(7),
            written(2),
        );
        h.push(
            0,
            "k",
            Call::Cas {
                expected: 1,
                value: 7,
            },
            ms(8),
            ms(9),
            Outcome::Ok(Return::Mismatch),
        );
        h.push(0, "k", Call::Read, ms(10), ms(11), read(6, 2));
        check(&h, B).unwrap();
    }

    #[test]
    fn a_stale_read_after_a_completed_write_is_rejected() {
        let mut h = History::new(0);
        h.push(0, "k", Call::Write(1), ms(0), ms(10), written(1));
        h.push(1, "k", Call::Read, ms(11), ms(12), read(0, 0));
        let err = check(&h, B).unwrap_err();
        assert!(matches!(err, Violation::NotLinearizable { .. }), "{err}");
        assert!(err.to_string().contains("p1 k read: ok 0 v0"), "{err}");
    }

    #[test]
    fn a_read_concurrent_with_a_write_may_see_either_value() {
        for seen in [read(0, 0), read(1, 1)] {
            let mut h = History::new(0);
            h.push(0, "k", Call::Write(1), ms(0), ms(10), written(1));
            h.push(1, "k", Call::Read, ms(5), ms(15), seen);
            check(&h, B).unwrap();
        }
    }

    #[test]
    fn reads_going_back_in_time_are_rejected() {
        // Both reads overlap the write, but the second starts after the first saw it.
        let mut h = History::new(0);
        h.push(0, "k", Call::Write(1), ms(0), ms(100), written(1));
        h.push(1, "k", Call::Read, ms(10), ms(20), read(1, 1));
        h.push(2, "k", Call::Read, ms(30), ms(40), read(0, 0));
        assert!(check(&h, B).is_err());
    }

    #[test]
    fn a_lost_acknowledged_write_is_rejected() {
        // Two acknowledged writes in sequence, then the first one's value is read back:
        // the second was lost.
        let mut h = History::new(0);
        h.push(0, "k", Call::Write(1), ms(0), ms(1), written(1));
        h.push(1, "k", Call::Write(2), ms(2), ms(3), written(2));
        h.push(2, "k", Call::Read, ms(4), ms(5), read(1, 1));
        assert!(check(&h, B).is_err());
        // Two concurrent writes both acknowledged with version 1: one overwrote the other
        // without the version moving, i.e. one of them is lost.
        let mut h = History::new(0);
        h.push(0, "k", Call::Write(1), ms(0), ms(10), written(1));
        h.push(1, "k", Call::Write(2), ms(0), ms(10), written(1));
        assert!(check(&h, B).is_err());
    }

    #[test]
    fn cas_must_agree_with_the_version() {
        // A CAS acknowledged although the version had moved on.
        let mut h = History::new(0);
        h.push(0, "k", Call::Write(1), ms(0), ms(1), written(1));
        h.push(
            1,
            "k",
            Call::Cas {
                expected: 0,
                value: 2,
            },
            ms(2),
            ms(3),
            written(1),
        );
        assert!(check(&h, B).is_err());
        // A CAS refused although the version was the expected one, with nothing concurrent.
        let mut h = History::new(0);
        h.push(0, "k", Call::Write(1), ms(0), ms(1), written(1));
        h.push(
            1,
            "k",
            Call::Cas {
                expected: 1,
                value: 2,
            },
            ms(2),
            ms(3),
            Outcome::Ok(Return::Mismatch),
        );
        assert!(check(&h, B).is_err());
        // Two CAS on the same version, both acknowledged.
        let mut h = History::new(0);
        h.push(
            0,
            "k",
            Call::Cas {
                expected: 0,
                value: 1,
            },
            ms(0),
            ms(10),
            written(1),
        );
        h.push(
            1,
            "k",
            Call::Cas {
                expected: 0,
                value: 2,
            },
            ms(0),
            ms(10),
            written(1),
        );
        assert!(check(&h, B).is_err());
        // ...but a refusal concurrent with a write that moved the version is fine.
        let mut h = History::new(0);
        h.push(0, "k", Call::Write(1), ms(0), ms(10), written(1));
        h.push(
            1,
            "k",
            Call::Cas {
                expected: 0,
                value: 2,
            },
            ms(5),
            ms(15),
            Outcome::Ok(Return::Mismatch),
        );
        check(&h, B).unwrap();
    }

    #[test]
    fn unknown_writes_may_or_may_not_take_effect_but_not_before_their_invocation() {
        // Seen by a later read: took effect.
        let mut h = History::new(0);
        h.push(0, "k", Call::Write(1), ms(0), ms(10), Outcome::Unknown);
        h.push(1, "k", Call::Read, ms(50), ms(60), read(1, 1));
        check(&h, B).unwrap();
        // Never seen: did not.
        let mut h = History::new(0);
        h.push(0, "k", Call::Write(1), ms(0), ms(10), Outcome::Unknown);
        h.push(1, "k", Call::Read, ms(50), ms(60), read(0, 0));
        check(&h, B).unwrap();
        // Taking effect long after the client gave up on it, between two reads.
        let mut h = History::new(0);
        h.push(0, "k", Call::Write(1), ms(0), ms(10), Outcome::Unknown);
        h.push(1, "k", Call::Read, ms(50), ms(60), read(0, 0));
        h.push(1, "k", Call::Read, ms(70), ms(80), read(1, 1));
        check(&h, B).unwrap();
        // Seen before it was invoked: no.
        let mut h = History::new(0);
        h.push(1, "k", Call::Read, ms(0), ms(5), read(1, 1));
        h.push(0, "k", Call::Write(1), ms(10), ms(20), Outcome::Unknown);
        assert!(check(&h, B).is_err());
        // An unknown CAS applies only on its expected version.
        let mut h = History::new(0);
        h.push(0, "k", Call::Write(1), ms(0), ms(1), written(1));
        h.push(
            1,
            "k",
            Call::Cas {
                expected: 0,
                value: 2,
            },
            ms(2),
            ms(3),
            Outcome::Unknown,
        );
        h.push(2, "k", Call::Read, ms(4), ms(5), read(2, 2));
        assert!(check(&h, B).is_err());
        // Failed operations had no effect.
        let mut h = History::new(0);
        h.push(0, "k", Call::Write(1), ms(0), ms(1), Outcome::Fail);
        h.push(2, "k", Call::Read, ms(4), ms(5), read(1, 1));
        assert!(check(&h, B).is_err());
    }

    /// What ensemble_jepsen found with seed 216396 (minimised): the leader, SIGSTOPped
    /// for 1.45 s, answered a sync + read from its stale state right after SIGCONT,
    /// 3 ms after a write through the new leader was acknowledged.
    #[test]
    fn the_stale_read_of_a_resumed_leader_is_rejected() {
        let us = Duration::from_micros;
        let mut h = History::new(0);
        h.push(
            2,
            "w11-k0",
            Call::Write(2830),
            us(11_373_811),
            us(11_654_394),
            written(1),
        );
        h.push(
            3,
            "w11-k0",
            Call::Write(2896),
            us(11_792_900),
            us(11_798_375),
            written(2),
        );
        h.push(
            1,
            "w11-k0",
            Call::Read,
            us(11_793_054),
            us(11_798_305),
            read(2896, 2),
        );
        h.push(
            4,
            "w11-k0",
            Call::Read,
            us(11_801_561),
            us(11_803_716),
            read(0, 0),
        );
        h.push(
            3,
            "w11-k0",
            Call::Read,
            us(11_802_926),
            us(11_804_184),
            read(2896, 2),
        );
        let err = check(&h, B).unwrap_err();
        assert!(err.to_string().contains("p4 w11-k0 read: ok 0 v0"), "{err}");
    }

    #[test]
    fn keys_are_checked_apart() {
        let mut h = History::new(0);
        h.push(0, "a", Call::Write(1), ms(0), ms(1), written(1));
        h.push(0, "b", Call::Read, ms(2), ms(3), read(0, 0));
        h.push(1, "a", Call::Read, ms(4), ms(5), read(1, 1));
        check(&h, B).unwrap();
        h.push(1, "b", Call::Read, ms(6), ms(7), read(1, 1));
        let err = check(&h, B).unwrap_err();
        assert!(
            err.to_string().starts_with("b is not linearizable"),
            "{err}"
        );
    }

    #[test]
    fn many_concurrent_unknown_writes_stay_tractable() {
        // 12 clients, each with an unknown write, then reads seeing the last of them:
        // memoization keeps this from being 12! orders.
        let mut h = History::new(0);
        for p in 0..12u64 {
            h.push(
                p as usize,
                "k",
                Call::Write(p + 1),
                ms(p),
                ms(p + 100),
                Outcome::Unknown,
            );
        }
        h.push(20, "k", Call::Read, ms(200), ms(201), read(12, 12));
        h.push(21, "k", Call::Read, ms(202), ms(203), read(12, 12));
        check(&h, 2_000_000).unwrap();
        // And a read no order can explain (version 13 with 12 writes) is rejected.
        h.push(22, "k", Call::Read, ms(204), ms(205), read(12, 13));
        assert!(check(&h, 2_000_000).is_err());
    }

    #[test]
    fn the_budget_gives_no_verdict_rather_than_a_wrong_one() {
        let mut h = History::new(0);
        for p in 0..16u64 {
            h.push(
                p as usize,
                "k",
                Call::Write(p + 1),
                ms(p),
                ms(p + 100),
                Outcome::Unknown,
            );
        }
        h.push(20, "k", Call::Read, ms(200), ms(201), read(99, 16));
        assert!(matches!(check(&h, 1000), Err(Violation::TooHard { .. })));
    }
}
