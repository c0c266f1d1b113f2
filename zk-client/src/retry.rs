//! [`RetryPolicy`]: how long the client waits between failed connection attempts, and
//! the jitter before reconnecting after a lost connection.
//!
//! The delays are computed with the `backoff` crate, which stays an implementation detail:
//! the public API names only [`RetryPolicy`], so it does not change when that dependency
//! does. Randomness comes from the session's seeded generator (see
//! [`crate::ClientBuilder::seed`]), never from the thread's.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use backoff::backoff::Backoff;
use rand::Rng;

/// The delay policy between failed connection attempts (see the module docs).
///
/// ```
/// use std::time::Duration;
/// use zk_client::RetryPolicy;
/// let p = RetryPolicy::exponential(Duration::from_millis(50), Duration::from_secs(2))
///     .multiplier(2.0)
///     .jitter(0.2);
/// let q = RetryPolicy::fixed(Duration::from_millis(200));
/// # let _ = (p, q);
/// ```
#[derive(Clone)]
pub struct RetryPolicy {
    kind: Kind,
    jitter: f64,
}

#[derive(Clone)]
enum Kind {
    Exponential {
        initial: Duration,
        max: Duration,
        multiplier: f64,
    },
    Fixed(Duration),
    /// A `backoff` policy given to the deprecated [`crate::ClientBuilder::backoff`].
    Legacy(Arc<Mutex<Box<dyn Backoff + Send>>>),
}

impl std::fmt::Debug for RetryPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            Kind::Exponential {
                initial,
                max,
                multiplier,
            } => f
                .debug_struct("Exponential")
                .field("initial", initial)
                .field("max", max)
                .field("multiplier", multiplier)
                .field("jitter", &self.jitter)
                .finish(),
            Kind::Fixed(d) => f
                .debug_struct("Fixed")
                .field("delay", d)
                .field("jitter", &self.jitter)
                .finish(),
            Kind::Legacy(_) => f.write_str("Legacy(backoff)"),
        }
    }
}

impl Default for RetryPolicy {
    /// Exponential from 10 ms to 1 s, ×1.5 per attempt, ±50% jitter: a lost server is
    /// retried quickly, a dead ensemble at most once a second per client.
    fn default() -> Self {
        RetryPolicy::exponential(Duration::from_millis(10), Duration::from_secs(1))
    }
}

impl RetryPolicy {
    /// Delays growing from `initial` by ×1.5 per failed attempt up to `max`, with ±50%
    /// jitter (change with [`Self::multiplier`] and [`Self::jitter`]). Never gives up:
    /// the session's own expiry bounds how long a disconnected client keeps trying.
    pub fn exponential(initial: Duration, max: Duration) -> Self {
        RetryPolicy {
            kind: Kind::Exponential {
                initial,
                max: max.max(initial),
                multiplier: 1.5,
            },
            jitter: 0.5,
        }
    }

    /// The same delay after every failed attempt, without jitter.
    pub fn fixed(delay: Duration) -> Self {
        RetryPolicy {
            kind: Kind::Fixed(delay),
            jitter: 0.0,
        }
    }

    /// Growth factor of [`Self::exponential`] (at least 1; ignored by other policies).
    pub fn multiplier(mut self, m: f64) -> Self {
        if let Kind::Exponential { multiplier, .. } = &mut self.kind {
            *multiplier = if m.is_finite() { m.max(1.0) } else { 1.0 };
        }
        self
    }

    /// Randomization: each delay `d` is drawn uniformly from `[d·(1-f), d·(1+f)]`, `f`
    /// clamped to `[0, 1]` (0: exact delays).
    pub fn jitter(mut self, factor: f64) -> Self {
        self.jitter = if factor.is_finite() {
            factor.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self
    }

    pub(crate) fn from_backoff(b: impl Backoff + Send + 'static) -> Self {
        RetryPolicy {
            kind: Kind::Legacy(Arc::new(Mutex::new(Box::new(b)))),
            jitter: 0.0,
        }
    }

    /// The running state for one session; `now` stands in for the clock `backoff` would
    /// otherwise read.
    pub(crate) fn start(&self, now: Instant) -> Delays {
        let inner: Inner = match &self.kind {
            Kind::Exponential {
                initial,
                max,
                multiplier,
            } => Inner::Own(Box::new(
                backoff::exponential::ExponentialBackoff::<Frozen> {
                    current_interval: *initial,
                    initial_interval: *initial,
                    // Jitter is ours (seeded); backoff's would use the thread's generator.
                    randomization_factor: 0.0,
                    multiplier: *multiplier,
                    max_interval: *max,
                    start_time: now,
                    max_elapsed_time: None,
                    clock: Frozen(now),
                },
            )),
            Kind::Fixed(d) => Inner::Own(Box::new(backoff::backoff::Constant::new(*d))),
            Kind::Legacy(b) => Inner::Shared(b.clone()),
        };
        Delays {
            inner,
            jitter: self.jitter,
        }
    }
}

/// A clock that never moves: `backoff` reads it only for `max_elapsed_time`, which we do
/// not use, and the session core must not read the real one.
struct Frozen(Instant);

impl backoff::Clock for Frozen {
    fn now(&self) -> Instant {
        self.0
    }
}

enum Inner {
    Own(Box<dyn Backoff + Send>),
    Shared(Arc<Mutex<Box<dyn Backoff + Send>>>),
}

/// A policy in use by one session.
pub(crate) struct Delays {
    inner: Inner,
    jitter: f64,
}

impl Delays {
    /// The delay before the next attempt (`None`: the policy gave up; the caller decides).
    pub(crate) fn next(&mut self, rng: &mut impl Rng) -> Option<Duration> {
        let d = match &mut self.inner {
            Inner::Own(b) => b.next_backoff(),
            Inner::Shared(b) => b.lock().ok()?.next_backoff(),
        }?;
        Some(spread(d, self.jitter, rng))
    }

    /// Back to the first delay (after a successful handshake).
    pub(crate) fn reset(&mut self) {
        match &mut self.inner {
            Inner::Own(b) => b.reset(),
            Inner::Shared(b) => {
                if let Ok(mut b) = b.lock() {
                    b.reset();
                }
            }
        }
    }
}

/// `d` scaled by a uniform factor in `[1-f, 1+f]`.
fn spread(d: Duration, f: f64, rng: &mut impl Rng) -> Duration {
    if f <= 0.0 || d.is_zero() {
        return d;
    }
    d.mul_f64(rng.gen_range(1.0 - f..=1.0 + f))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn exponential_grows_to_its_cap_within_its_jitter_and_resets() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let p = RetryPolicy::exponential(Duration::from_millis(100), Duration::from_millis(800))
            .multiplier(2.0)
            .jitter(0.25);
        let mut d = p.start(Instant::now());
        let base = [100u64, 200, 400, 800, 800, 800];
        for b in base {
            let got = d.next(&mut rng).unwrap().as_secs_f64() * 1000.0;
            let b = b as f64;
            assert!(
                got >= b * 0.75 - 1e-6 && got <= b * 1.25 + 1e-6,
                "{got} vs {b}"
            );
        }
        d.reset();
        let first = d.next(&mut rng).unwrap().as_millis();
        assert!((75..=125).contains(&first), "{first}");
    }

    #[test]
    fn fixed_is_exact_and_the_same_seed_gives_the_same_delays() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut f = RetryPolicy::fixed(Duration::from_millis(30)).start(Instant::now());
        assert!((0..5).all(|_| f.next(&mut rng) == Some(Duration::from_millis(30))));
        let run = |seed| {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let mut d = RetryPolicy::default().start(Instant::now());
            (0..8)
                .map(|_| d.next(&mut rng).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
    }
}
