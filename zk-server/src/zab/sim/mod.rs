//! A deterministic simulator for the ensemble: real [`QuorumPeer`](super::QuorumPeer)s on a
//! simulated network and disks, with seeded faults (message loss, delay, duplication,
//! reordering, symmetric and asymmetric partitions, connection resets, crashes and
//! restarts keeping the disk), checking the safety invariants after every step and,
//! once faults stop, that the ensemble converges again.
//!
//! A run is a pure function of its [`SimConfig`] and seed: a failing seed replays exactly.
//!
//! ```
//! use zk_server::zab::sim::{run, SimConfig};
//! let report = run(&SimConfig::small(3, 0), 7).expect("invariants hold");
//! assert!(report.stats.committed > 0);
//! ```

pub mod checker;
pub mod rng;
pub mod world;

pub use world::{RunStats, World};

use super::Millis;

/// Shape and fault rates of a simulation.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Voting servers.
    pub voters: usize,
    /// Observers.
    pub observers: usize,
    /// Simulated time with faults.
    pub fault_time: Millis,
    /// Simulated time allowed to converge after the final heal.
    pub heal_time: Millis,
    /// tickTime.
    pub tick_time: Millis,
    /// initLimit.
    pub init_limit: u64,
    /// syncLimit.
    pub sync_limit: u64,
    /// finalizeWait.
    pub finalize_wait: Millis,
    /// Cap of the election re-send backoff.
    pub max_notification_interval: Millis,
    /// Recent txns a leader keeps for DIFF (small values force SNAP syncs).
    pub committed_log_size: usize,
    /// Whether leaders DIFF from their txn log when the recent txns do not reach back.
    pub txn_log_sync: bool,
    /// How often each server's timers run.
    pub node_tick: Millis,
    /// Largest network delay.
    pub max_delay: Millis,
    /// Largest fsync delay.
    pub max_fsync: Millis,
    /// Probability an election datagram is lost.
    pub drop_rate: f64,
    /// Probability an election datagram is duplicated.
    pub dup_rate: f64,
    /// Range of the time between two faults.
    pub fault_interval: (Millis, Millis),
    /// Mean time between client writes to the leader.
    pub write_interval: Millis,
    /// Mean time between sessions reconnecting to a follower with requests pipelined
    /// behind the handshake, while faults run (0: none). Drives the member's
    /// [`crate::core::member_gate::MemberGate`] (revalidation, held syncs) as a member's
    /// node task does.
    pub reconnect_interval: Millis,
    /// Probability that a write is a reconfig instead (0: membership never changes). A
    /// reconfig removes a voter, brings a server back, or flips one between participant
    /// and observer, among all the simulated servers (the ones outside the config keep
    /// running as non-voting followers).
    pub reconfig_rate: f64,
    /// When not 0, every established leader moves its zxid counter to this value
    /// before its first write (as soon as nothing is in flight), so each epoch runs out
    /// of counter after a few writes and the rollover runs under faults.
    pub counter_seed: u32,
}

impl SimConfig {
    /// A short, fault-heavy configuration for `voters` + `observers` servers.
    pub fn small(voters: usize, observers: usize) -> Self {
        SimConfig {
            voters,
            observers,
            fault_time: 3_000,
            heal_time: 20_000,
            tick_time: 100,
            init_limit: 10,
            sync_limit: 5,
            finalize_wait: 40,
            max_notification_interval: 400,
            committed_log_size: 16,
            txn_log_sync: true,
            node_tick: 20,
            max_delay: 15,
            max_fsync: 10,
            drop_rate: 0.05,
            dup_rate: 0.05,
            fault_interval: (100, 800),
            write_interval: 25,
            reconnect_interval: 0,
            reconfig_rate: 0.0,
            counter_seed: 0,
        }
    }
}

/// What a successful run did.
#[derive(Debug, Clone)]
pub struct SimReport {
    /// The seed.
    pub seed: u64,
    /// Counters.
    pub stats: RunStats,
}

/// A failed run: enough to understand and replay it.
#[derive(Debug, Clone)]
pub struct SimFailure {
    /// The seed (replay with the same config and seed).
    pub seed: u64,
    /// Which step failed.
    pub step: u64,
    /// Simulated time of the failure.
    pub at: Millis,
    /// The violated invariant, or the liveness failure.
    pub message: String,
    /// Server states at failure.
    pub servers: Vec<String>,
    /// Last notable events.
    pub trace: Vec<String>,
}

impl std::fmt::Display for SimFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "seed {} failed at step {} (t={} ms): {}",
            self.seed, self.step, self.at, self.message
        )?;
        for s in &self.servers {
            writeln!(f, "  {s}")?;
        }
        writeln!(f, "  recent events:")?;
        for t in &self.trace {
            writeln!(f, "    {t}")?;
        }
        Ok(())
    }
}

/// Steps at one simulated instant after which a run counts as livelocked.
const STALL_STEPS: u64 = 100_000;

/// Runs one seeded schedule: faults for `fault_time`, then heal and require convergence
/// (one leader, everyone serving the same state, a new write committed) within
/// `heal_time`.
pub fn run(cfg: &SimConfig, seed: u64) -> Result<SimReport, SimFailure> {
    let mut w = World::new(cfg.clone(), seed);
    let fail = |w: &World, message: String| SimFailure {
        seed,
        step: w.stats().steps,
        at: w.now(),
        message,
        servers: w.describe(),
        trace: w.trace(),
    };
    while w.now() < cfg.fault_time {
        match w.step() {
            Ok(true) => {}
            Ok(false) => break,
            Err(m) => return Err(fail(&w, m)),
        }
    }
    w.heal();
    let since = w.committed_len();
    let deadline = w.now() + cfg.heal_time;
    // Events that keep scheduling one another at the same instant would stall simulated
    // time: a livelock, reported rather than looped on.
    let (mut stalled_at, mut stalled_steps) = (w.now(), 0u64);
    loop {
        if w.converged(since) {
            break;
        }
        if w.now() >= deadline {
            return Err(fail(&w, "no convergence after the final heal".into()));
        }
        if w.now() == stalled_at {
            stalled_steps += 1;
            if stalled_steps > STALL_STEPS {
                return Err(fail(
                    &w,
                    format!("livelock: {STALL_STEPS} steps without simulated time advancing"),
                ));
            }
        } else {
            (stalled_at, stalled_steps) = (w.now(), 0);
        }
        match w.step() {
            Ok(true) => {}
            Ok(false) => return Err(fail(&w, "event queue ran dry".into())),
            Err(m) => return Err(fail(&w, m)),
        }
    }
    Ok(SimReport {
        seed,
        stats: w.stats(),
    })
}
