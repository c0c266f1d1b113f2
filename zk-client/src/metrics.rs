//! [`Metrics`]: counters of one client a user can read and export (requests and their
//! latency, errors by ZooKeeper code, connection attempts, reconnects, session expiries,
//! watch events), from [`crate::Client::metrics`].
//!
//! Tracing: every request runs in a `zk_request` span (fields `op`, `path`, `xid`, `zxid`,
//! `server`, `err`) and every connection attempt in a `zk_connect` span (`server`,
//! `attempt`, `outcome`), both at DEBUG level, so a subscriber that wants them enables
//! `zk_client=debug`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use zk_proto::ErrorCode;

/// Upper bounds of the latency histogram's buckets (the last bucket is everything above).
pub const LATENCY_BUCKETS: [Duration; 10] = [
    Duration::from_millis(1),
    Duration::from_millis(2),
    Duration::from_millis(5),
    Duration::from_millis(10),
    Duration::from_millis(20),
    Duration::from_millis(50),
    Duration::from_millis(100),
    Duration::from_millis(200),
    Duration::from_millis(500),
    Duration::from_secs(1),
];

/// A snapshot of a client's counters (all since the client was built; shared by its
/// clones).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metrics {
    /// Requests answered or failed (every operation call, a multi counting once).
    pub requests: u64,
    /// Failed requests by ZooKeeper code (a server answer such as `NoNode`, or a local
    /// failure such as `ConnectionLoss`); errors without a code (bad arguments caught
    /// before sending) are not requests and not counted.
    pub errors: HashMap<ErrorCode, u64>,
    /// Request latency: counts per bucket of [`LATENCY_BUCKETS`], plus one last bucket
    /// for slower requests.
    pub latency_buckets: [u64; LATENCY_BUCKETS.len() + 1],
    /// Sum of all request latencies.
    pub latency_total: Duration,
    /// TCP (and TLS) connection attempts.
    pub connection_attempts: u64,
    /// Handshakes that re-established the session after a lost connection.
    pub reconnects: u64,
    /// Sessions that expired (reported by the server, or detected by the client).
    pub session_expiries: u64,
    /// Watch events delivered (one per event, whatever the number of watchers).
    pub watch_events: u64,
}

impl Metrics {
    /// Failed requests in all.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Mean request latency (zero before the first request).
    pub fn mean_latency(&self) -> Duration {
        match u32::try_from(self.requests) {
            Ok(0) => Duration::ZERO,
            Ok(n) => self.latency_total / n,
            Err(_) => self.latency_total.div_f64(self.requests as f64),
        }
    }
}

/// The live counters behind [`Metrics`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    requests: AtomicU64,
    errors: Mutex<HashMap<ErrorCode, u64>>,
    latency_buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    latency_nanos: AtomicU64,
    pub connection_attempts: AtomicU64,
    pub reconnects: AtomicU64,
    pub session_expiries: AtomicU64,
    pub watch_events: AtomicU64,
}

impl Counters {
    pub(crate) fn request(&self, latency: Duration, err: Option<ErrorCode>) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let i = LATENCY_BUCKETS
            .iter()
            .position(|b| latency <= *b)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.latency_buckets[i].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.latency_nanos.fetch_add(nanos, Ordering::Relaxed);
        if let Some(code) = err {
            if let Ok(mut e) = self.errors.lock() {
                *e.entry(code).or_default() += 1;
            }
        }
    }

    pub(crate) fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> Metrics {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut latency_buckets = [0; LATENCY_BUCKETS.len() + 1];
        for (o, c) in latency_buckets.iter_mut().zip(&self.latency_buckets) {
            *o = load(c);
        }
        Metrics {
            requests: load(&self.requests),
            errors: self.errors.lock().map(|e| e.clone()).unwrap_or_default(),
            latency_buckets,
            latency_total: Duration::from_nanos(load(&self.latency_nanos)),
            connection_attempts: load(&self.connection_attempts),
            reconnects: load(&self.reconnects),
            session_expiries: load(&self.session_expiries),
            watch_events: load(&self.watch_events),
        }
    }
}
