//! A seeded fault schedule for `zk-server` process ensembles ([`ProcessEnsemble`]), for
//! Jepsen-style tests: partitions of the leader or a follower through the per-link
//! proxies, kill -9 and restart, SIGSTOP / SIGCONT, and every member killed at once.
//!
//! The schedule is a pure function of the seed ([`schedule`]): the same seed gives the
//! same faults, in the same order, with the same durations, aimed at the same roles
//! (which member is leader at the time is up to the ensemble). It opens with every kind of
//! fault once, in a seeded order, so even a short run meets them all.
//!
//! ```no_run
//! # async fn f() -> std::io::Result<()> {
//! use tests::nemesis::{schedule, Nemesis};
//! use tests::zk_processes::{Options, ProcessEnsemble};
//! let mut opts = Options::members(3);
//! opts.proxied = true; // partitions need the per-link proxies
//! let mut ens = ProcessEnsemble::start(opts).await?;
//! for step in schedule(42, 10) {
//!     tokio::time::sleep(step.rest).await;
//!     let on = Nemesis::begin(&mut ens, &step).await;
//!     tokio::time::sleep(step.hold).await;
//!     on.end(&mut ens)?;
//! }
//! # Ok(()) }
//! ```

use std::fmt;
use std::io;
use std::time::Duration;

use crate::zk_processes::ProcessEnsemble;

/// A small deterministic generator (SplitMix64): the schedule must not change with a
/// dependency's version.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Uniform in `lo..=hi` milliseconds.
    pub fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.below(hi.saturating_sub(lo) + 1))
    }
}

/// One kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Cut the leader off from every other member (quorum and election links); its
    /// clients still reach it.
    PartitionLeader,
    /// Cut one follower off.
    PartitionFollower,
    /// kill -9 the leader; restart it at the end.
    KillLeader,
    /// kill -9 a follower; restart it at the end.
    KillFollower,
    /// SIGSTOP the leader; SIGCONT at the end.
    PauseLeader,
    /// SIGSTOP a follower; SIGCONT at the end.
    PauseFollower,
    /// kill -9 every member at once; restart them all at the end.
    KillAll,
}

impl Fault {
    /// Every kind.
    pub const ALL: [Fault; 7] = [
        Fault::PartitionLeader,
        Fault::PartitionFollower,
        Fault::KillLeader,
        Fault::KillFollower,
        Fault::PauseLeader,
        Fault::PauseFollower,
        Fault::KillAll,
    ];

    fn on_leader(self) -> bool {
        matches!(
            self,
            Fault::PartitionLeader | Fault::KillLeader | Fault::PauseLeader
        )
    }
}

/// One step of a schedule: rest, then the fault for `hold`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Quiet time before the fault.
    pub rest: Duration,
    /// The fault.
    pub fault: Fault,
    /// How long it lasts.
    pub hold: Duration,
    /// Which follower, for follower faults (an index into the followers).
    pub pick: u64,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rest {} ms, {:?} (pick {}) for {} ms",
            self.rest.as_millis(),
            self.fault,
            self.pick,
            self.hold.as_millis()
        )
    }
}

/// `steps` steps from `seed`: every fault kind once in a seeded order, then faults drawn
/// at random; rests of 0.5-2 s, holds of 0.5-3 s.
pub fn schedule(seed: u64, steps: usize) -> Vec<Step> {
    let mut rng = Rng::new(seed);
    let mut kinds = Fault::ALL.to_vec();
    for i in (1..kinds.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        kinds.swap(i, j);
    }
    (0..steps)
        .map(|i| {
            let fault = match kinds.get(i) {
                Some(f) => *f,
                None => Fault::ALL[rng.below(Fault::ALL.len() as u64) as usize],
            };
            Step {
                rest: rng.millis(500, 2000),
                fault,
                hold: rng.millis(500, 3000),
                pick: rng.below(1 << 16),
            }
        })
        .collect()
}

/// A fault in force, to be ended with [`Nemesis::end`].
#[derive(Debug, Clone)]
pub struct Nemesis {
    /// The fault.
    pub fault: Fault,
    /// The members it hit.
    pub targets: Vec<usize>,
}

impl Nemesis {
    /// Starts `step`'s fault. The leader is asked for (`srvr`, up to 2 s); when none
    /// answers (the ensemble is still electing), a leader fault hits the member `pick`
    /// names.
    pub async fn begin(ens: &mut ProcessEnsemble, step: &Step) -> Nemesis {
        let n = ens.len();
        let leader = leader_of(ens).await;
        let targets = match step.fault {
            Fault::KillAll => (0..n).collect(),
            f if f.on_leader() => vec![leader.unwrap_or(step.pick as usize % n)],
            _ => {
                let others: Vec<usize> = (0..n).filter(|i| Some(*i) != leader).collect();
                vec![others[step.pick as usize % others.len()]]
            }
        };
        for &t in &targets {
            match step.fault {
                Fault::PartitionLeader | Fault::PartitionFollower => ens.partition(t),
                Fault::KillLeader | Fault::KillFollower | Fault::KillAll => ens.kill9(t),
                Fault::PauseLeader | Fault::PauseFollower => {
                    ens.pause(t);
                }
            }
        }
        Nemesis {
            fault: step.fault,
            targets,
        }
    }

    /// Ends the fault: heals the partition, restarts killed members, continues paused
    /// ones.
    pub fn end(self, ens: &mut ProcessEnsemble) -> io::Result<()> {
        for &t in &self.targets {
            match self.fault {
                Fault::PartitionLeader | Fault::PartitionFollower => ens.heal(),
                Fault::KillLeader | Fault::KillFollower | Fault::KillAll => ens.restart(t)?,
                Fault::PauseLeader | Fault::PauseFollower => {
                    ens.resume(t);
                }
            }
        }
        Ok(())
    }
}

impl fmt::Display for Nemesis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} on members {:?}", self.fault, self.targets)
    }
}

async fn leader_of(ens: &ProcessEnsemble) -> Option<usize> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    loop {
        for i in 0..ens.len() {
            if ens.mode(i).await.as_deref() == Some("leader") {
                return Some(i);
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_schedule_and_every_fault_comes_first() {
        let a = schedule(7, 20);
        assert_eq!(a, schedule(7, 20));
        assert_ne!(a, schedule(8, 20));
        let first: std::collections::BTreeSet<String> =
            a.iter().take(7).map(|s| format!("{:?}", s.fault)).collect();
        assert_eq!(first.len(), 7, "{a:?}");
        for s in &a {
            assert!(s.rest >= Duration::from_millis(500) && s.rest <= Duration::from_secs(2));
            assert!(s.hold >= Duration::from_millis(500) && s.hold <= Duration::from_secs(3));
        }
    }
}
