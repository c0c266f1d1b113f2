//! Soft load balancing over a [`ServiceCache`]: servers publish their load in their
//! instance node ([`LoadPublisher`]); clients pick an instance with a [`Strategy`]:
//! [`LeastLoaded`], [`RoundRobin`] or [`Random`], through a [`ServiceProvider`].
//!
//! # Publishing
//! [`LoadPublisher`] writes the load into the instance JSON (`load: {value, seq,
//! reportedAtMs}`) with version-checked writes, at most once per `min_interval` (changes
//! in between are coalesced and the latest value is written when the interval ends), and
//! at least once per `heartbeat` even when the load does not change, so readers can tell a
//! live report from a stuck publisher.
//!
//! # How stale load data is handled
//! Load data is always somewhat old: it is rate-limited at the source, and every client
//! sees it through its own cache. [`LeastLoaded`] deals with that in three ways:
//! 1. **Freshness by the reader's clock.** A report is *fresh* while this client has seen
//!    a new version of the instance node within `stale_after` (set it to a few
//!    heartbeats). The publisher's timestamp is not trusted (clock skew). Instances whose
//!    report is stale, or which never reported, are only picked when no instance has a
//!    fresh report; among themselves they are ranked by their last load.
//! 2. **Own picks count until the next report.** Between two reports of an instance, the
//!    provider adds the number of times it picked that instance to the reported load, so
//!    a burst of picks spreads over the instances instead of piling onto the one that
//!    looked least loaded at its last report. The estimate resets when a new report (a new
//!    node version) arrives. Disable with [`LeastLoaded::count_own_picks`].
//! 3. **Random ties.** Instances with equal effective load are picked at random, so many
//!    clients reading the same stale data do not all choose the same server.
//!
//! Instances taken out of rotation ([`crate::discovery::Registration::set_enabled`], or
//! a failing [`crate::discovery::HealthMonitor`]) stay registered but are never picked.
//!
//! Liveness is not a load question: a crashed server disappears from the cache when its
//! session expires (its ephemeral node goes), whatever its last load said.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::discovery::{LiveInstance, Registration, ServiceCache, ServiceInstance};

/// Picks one instance out of the live ones.
pub trait Strategy: Send + Sync {
    /// The chosen instance (`None` if `candidates` is empty).
    fn pick(&self, candidates: &[LiveInstance]) -> Option<usize>;
}

/// Each instance in turn.
#[derive(Debug, Default)]
pub struct RoundRobin {
    next: AtomicUsize,
}

impl Strategy for RoundRobin {
    fn pick(&self, candidates: &[LiveInstance]) -> Option<usize> {
        if candidates.is_empty() {
            return None;
        }
        Some(self.next.fetch_add(1, Ordering::Relaxed) % candidates.len())
    }
}

/// A uniformly random instance.
#[derive(Debug)]
pub struct Random {
    rng: Mutex<StdRng>,
}

impl Random {
    /// Seeded (reproducible) random choice.
    pub fn seeded(seed: u64) -> Self {
        Random {
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
        }
    }
}

impl Default for Random {
    fn default() -> Self {
        Random::seeded(rand::random())
    }
}

impl Strategy for Random {
    fn pick(&self, candidates: &[LiveInstance]) -> Option<usize> {
        if candidates.is_empty() {
            return None;
        }
        let mut rng = self.rng.lock().ok()?;
        Some(rng.gen_range(0..candidates.len()))
    }
}

/// The least-loaded live instance (see the module docs for stale data).
#[derive(Debug)]
pub struct LeastLoaded {
    stale_after: Duration,
    count_picks: bool,
    rng: Mutex<StdRng>,
    /// Picks per instance id since the report with the given mzxid.
    picks: Mutex<HashMap<String, (i64, u64)>>,
}

impl LeastLoaded {
    /// Reports older than `stale_after` (by this client's clock) are stale.
    pub fn new(stale_after: Duration) -> Self {
        LeastLoaded::seeded(stale_after, rand::random())
    }

    /// Like [`Self::new`] with a seeded tie breaker.
    pub fn seeded(stale_after: Duration, seed: u64) -> Self {
        LeastLoaded {
            stale_after,
            count_picks: true,
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            picks: Mutex::new(HashMap::new()),
        }
    }

    /// Whether this client's own picks since the last report count as load (default on).
    pub fn count_own_picks(mut self, on: bool) -> Self {
        self.count_picks = on;
        self
    }

    /// The ranking key of each candidate: (stale?, effective load). Lower is better.
    pub fn rank(&self, candidates: &[LiveInstance], now: Instant) -> Vec<(bool, u64)> {
        let picks = self.picks.lock().ok();
        candidates
            .iter()
            .map(|c| {
                let reported = c.instance.load.as_ref().map(|l| l.value);
                let stale = reported.is_none()
                    || now.saturating_duration_since(c.seen_at) > self.stale_after;
                let own = match (&picks, self.count_picks) {
                    (Some(p), true) => match p.get(&c.instance.id) {
                        Some((mzxid, n)) if *mzxid == c.mzxid => *n,
                        _ => 0,
                    },
                    _ => 0,
                };
                (stale, reported.unwrap_or(0).saturating_add(own))
            })
            .collect()
    }
}

impl Strategy for LeastLoaded {
    fn pick(&self, candidates: &[LiveInstance]) -> Option<usize> {
        let ranks = self.rank(candidates, Instant::now());
        let best = *ranks.iter().min()?;
        let ties: Vec<usize> = (0..ranks.len()).filter(|i| ranks[*i] == best).collect();
        let chosen = {
            let mut rng = self.rng.lock().ok()?;
            *ties.get(rng.gen_range(0..ties.len()))?
        };
        if self.count_picks {
            if let (Ok(mut p), Some(c)) = (self.picks.lock(), candidates.get(chosen)) {
                let e = p.entry(c.instance.id.clone()).or_insert((c.mzxid, 0));
                if e.0 != c.mzxid {
                    *e = (c.mzxid, 0);
                }
                e.1 += 1;
            }
        }
        Some(chosen)
    }
}

/// Client-side instance provider: a service cache plus a strategy.
pub struct ServiceProvider {
    cache: ServiceCache,
    strategy: Box<dyn Strategy>,
}

impl std::fmt::Debug for ServiceProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceProvider")
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl ServiceProvider {
    /// Picks from `cache` with `strategy`.
    pub fn new(cache: ServiceCache, strategy: impl Strategy + 'static) -> Self {
        ServiceProvider {
            cache,
            strategy: Box::new(strategy),
        }
    }

    /// An instance to use now (`None` when no instance is live and in rotation).
    /// Instances out of rotation ([`ServiceInstance::enabled`] false) are never offered to
    /// the strategy, whichever it is.
    pub fn pick(&self) -> Option<ServiceInstance> {
        let live: Vec<LiveInstance> = self
            .cache
            .live()
            .into_iter()
            .filter(|l| l.instance.enabled)
            .collect();
        let i = self.strategy.pick(&live)?;
        live.into_iter().nth(i).map(|l| l.instance)
    }

    /// The underlying cache.
    pub fn cache(&self) -> &ServiceCache {
        &self.cache
    }
}

/// Publishes a registration's load, rate-limited (see the module docs).
#[derive(Debug)]
pub struct LoadPublisher {
    load: Arc<watch::Sender<u64>>,
    task: JoinHandle<()>,
}

impl Drop for LoadPublisher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Counts one unit of load while alive (e.g. one active request).
#[derive(Debug)]
pub struct LoadGuard {
    load: Arc<watch::Sender<u64>>,
}

impl Drop for LoadGuard {
    fn drop(&mut self) {
        self.load.send_modify(|v| *v = v.saturating_sub(1));
    }
}

impl LoadPublisher {
    /// Starts publishing for `registration`: writes at most once per `min_interval` and
    /// at least once per `heartbeat`. The first report is written at once.
    pub fn start(
        registration: Arc<Registration>,
        initial: u64,
        min_interval: Duration,
        heartbeat: Duration,
    ) -> Self {
        let (tx, rx) = watch::channel(initial);
        let task = tokio::spawn(publish(registration, rx, min_interval, heartbeat));
        LoadPublisher {
            load: Arc::new(tx),
            task,
        }
    }

    /// Sets the load.
    pub fn set(&self, value: u64) {
        self.load.send_replace(value);
    }

    /// The current (local) load.
    pub fn get(&self) -> u64 {
        *self.load.borrow()
    }

    /// +1 load until the guard drops.
    pub fn track(&self) -> LoadGuard {
        self.handle().track()
    }

    /// A cloneable handle to change the load from request handlers.
    pub fn handle(&self) -> LoadHandle {
        LoadHandle {
            load: self.load.clone(),
        }
    }
}

/// Changes a [`LoadPublisher`]'s load; cheap to clone into request handlers.
#[derive(Debug, Clone)]
pub struct LoadHandle {
    load: Arc<watch::Sender<u64>>,
}

impl LoadHandle {
    /// Sets the load.
    pub fn set(&self, value: u64) {
        self.load.send_replace(value);
    }

    /// +1 load until the guard drops (e.g. one in-flight request).
    pub fn track(&self) -> LoadGuard {
        self.load.send_modify(|v| *v = v.saturating_add(1));
        LoadGuard {
            load: self.load.clone(),
        }
    }
}

async fn publish(
    reg: Arc<Registration>,
    mut rx: watch::Receiver<u64>,
    min_interval: Duration,
    heartbeat: Duration,
) {
    let mut last_written: Option<u64> = None;
    loop {
        let value = *rx.borrow_and_update();
        if last_written != Some(value) || last_written.is_none() {
            match reg.report_load(value).await {
                Ok(_) => last_written = Some(value),
                Err(e) => tracing::debug!(error = %e, "load report failed"),
            }
        }
        let written_at = Instant::now();
        // Rate limit: nothing more before min_interval.
        tokio::time::sleep(min_interval).await;
        if rx.has_changed().unwrap_or(false) {
            continue;
        }
        let left = heartbeat.saturating_sub(written_at.elapsed());
        tokio::select! {
            r = rx.changed() => if r.is_err() { return },
            _ = tokio::time::sleep(left) => last_written = None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::LoadReport;

    fn live(id: &str, load: Option<u64>, mzxid: i64, age: Duration) -> LiveInstance {
        let mut instance = ServiceInstance::new("svc", id, "h", 1);
        instance.load = load.map(|value| LoadReport {
            value,
            seq: 1,
            reported_at_ms: 0,
        });
        LiveInstance {
            instance,
            mzxid,
            seen_at: Instant::now() - age,
        }
    }

    fn ids(c: &[LiveInstance], picks: impl Iterator<Item = usize>) -> Vec<String> {
        picks.map(|i| c[i].instance.id.clone()).collect()
    }

    #[test]
    fn least_loaded_picks_lowest_fresh_load() {
        let c = vec![
            live("a", Some(5), 1, Duration::ZERO),
            live("b", Some(1), 1, Duration::ZERO),
            live("c", Some(3), 1, Duration::ZERO),
        ];
        let s = LeastLoaded::seeded(Duration::from_secs(5), 1).count_own_picks(false);
        assert_eq!(ids(&c, (0..10).filter_map(|_| s.pick(&c))), ["b"; 10]);
        assert_eq!(s.pick(&[]), None);
    }

    #[test]
    fn stale_and_unreported_lose_to_fresh() {
        let c = vec![
            live("old", Some(0), 1, Duration::from_secs(10)),
            live("none", None, 1, Duration::ZERO),
            live("fresh", Some(50), 1, Duration::ZERO),
        ];
        let s = LeastLoaded::seeded(Duration::from_secs(5), 1).count_own_picks(false);
        assert_eq!(s.pick(&c), Some(2));
        // Only stale ones: ranked by their last load (unreported counts as 0).
        let stale = vec![
            live("x", Some(4), 1, Duration::from_secs(10)),
            live("y", Some(2), 1, Duration::from_secs(10)),
        ];
        assert_eq!(s.pick(&stale), Some(1));
    }

    #[test]
    fn own_picks_spread_a_burst_until_the_next_report() {
        let c = vec![
            live("a", Some(2), 1, Duration::ZERO),
            live("b", Some(0), 1, Duration::ZERO),
        ];
        let s = LeastLoaded::seeded(Duration::from_secs(5), 1);
        let burst = ids(&c, (0..6).filter_map(|_| s.pick(&c)));
        // b takes two picks to catch up with a, then they share.
        assert_eq!(&burst[..2], ["b", "b"]);
        assert_eq!(burst.iter().filter(|i| *i == "a").count(), 2);
        // A new report of b (new mzxid) resets its estimate.
        let c2 = vec![
            live("a", Some(2), 1, Duration::ZERO),
            live("b", Some(0), 2, Duration::ZERO),
        ];
        assert_eq!(s.rank(&c2, Instant::now())[1], (false, 0));
    }

    #[test]
    fn ties_are_random_and_round_robin_cycles() {
        let c = vec![
            live("a", Some(1), 1, Duration::ZERO),
            live("b", Some(1), 1, Duration::ZERO),
            live("c", Some(9), 1, Duration::ZERO),
        ];
        let s = LeastLoaded::seeded(Duration::from_secs(5), 42).count_own_picks(false);
        let seen: std::collections::BTreeSet<String> = ids(&c, (0..50).filter_map(|_| s.pick(&c)))
            .into_iter()
            .collect();
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), ["a", "b"]);
        let rr = RoundRobin::default();
        assert_eq!(
            ids(&c, (0..4).filter_map(|_| rr.pick(&c))),
            ["a", "b", "c", "a"]
        );
        let r = Random::seeded(3);
        assert!((0..50).filter_map(|_| r.pick(&c)).all(|i| i < 3));
    }
}
