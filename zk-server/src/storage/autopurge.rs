//! Autopurge (Apache's `DatadirCleanupManager`): when to run [`super::Storage::purge`],
//! shared by the standalone server and ensemble members so both keep their disks bounded
//! the same way.
//!
//! Apache runs the purge on a timer: once as the server starts, then every
//! `autopurge.purgeInterval` hours (0 = never). We also run it at the first tick after a
//! snapshot completes, because a busy server can take many snapshots within one interval;
//! which files survive is still exactly Apache's rule (see [`super::Storage::purge`]).

use std::time::Duration;

use crate::config::ServerConfig;

/// Apache's floor for `autopurge.snapRetainCount` (`PurgeTxnLog` refuses fewer, and
/// `QuorumPeerConfig` raises smaller values to it).
pub const MIN_SNAP_RETAIN_COUNT: usize = 3;

/// What autopurge keeps and how often it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Autopurge {
    /// `autopurge.snapRetainCount`: newest snapshots kept (at least
    /// [`MIN_SNAP_RETAIN_COUNT`]).
    pub snap_retain_count: usize,
    /// `autopurge.purgeInterval` (hours in zoo.cfg); zero disables autopurge. Tests use
    /// milliseconds.
    pub interval: Duration,
}

impl Default for Autopurge {
    /// Apache's defaults: keep 3, never run.
    fn default() -> Self {
        Autopurge {
            snap_retain_count: MIN_SNAP_RETAIN_COUNT,
            interval: Duration::ZERO,
        }
    }
}

impl Autopurge {
    /// The settings in zoo.cfg.
    pub fn from_config(config: &ServerConfig) -> Autopurge {
        Autopurge {
            snap_retain_count: config.snap_retain_count.max(MIN_SNAP_RETAIN_COUNT),
            interval: Duration::from_secs(u64::from(config.purge_interval_hours) * 3600),
        }
    }

    /// Whether autopurge runs at all.
    pub fn enabled(&self) -> bool {
        !self.interval.is_zero()
    }
}

/// Decides when a purge is due; sans-IO: the caller passes the time and how many
/// snapshots have completed so far.
#[derive(Debug, Clone, Default)]
pub struct PurgeTimer {
    /// When the last purge started (ms); `None` before the first.
    last_run: Option<i64>,
    /// Snapshots completed as of the last purge.
    snapshots_seen: u64,
}

impl PurgeTimer {
    /// A timer whose first purge is due at the first call (Apache's initial delay 0).
    pub fn new() -> PurgeTimer {
        PurgeTimer::default()
    }

    /// Whether to purge now, `now_ms` being the time and `snapshots` the number of
    /// snapshots completed so far; true also records the run. Never due while `interval`
    /// is zero.
    pub fn due(&mut self, now_ms: i64, interval: Duration, snapshots: u64) -> bool {
        if interval.is_zero() {
            return false;
        }
        let interval_ms = i64::try_from(interval.as_millis()).unwrap_or(i64::MAX);
        let due = match self.last_run {
            None => true,
            Some(t) => snapshots != self.snapshots_seen || now_ms.saturating_sub(t) >= interval_ms,
        };
        if due {
            self.last_run = Some(now_ms);
            self.snapshots_seen = snapshots;
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_at_start_every_interval_and_after_snapshots() {
        let hour = Duration::from_secs(3600);
        let mut t = PurgeTimer::new();
        assert!(t.due(1_000, hour, 0), "at start, like Apache's delay 0");
        assert!(!t.due(1_050, hour, 0));
        assert!(t.due(1_100, hour, 1), "a snapshot completed");
        assert!(!t.due(1_150, hour, 1));
        assert!(!t.due(1_100 + 3_599_999, hour, 1));
        assert!(t.due(1_100 + 3_600_000, hour, 1), "an interval went by");
    }

    #[test]
    fn zero_interval_never_runs() {
        let mut t = PurgeTimer::new();
        assert!(!t.due(0, Duration::ZERO, 0));
        assert!(!t.due(10_000_000, Duration::ZERO, 5));
    }

    #[test]
    fn zoo_cfg_hours_and_retain_floor() {
        let cfg = ServerConfig {
            snap_retain_count: 1,
            purge_interval_hours: 2,
            ..ServerConfig::default()
        };
        let a = Autopurge::from_config(&cfg);
        assert_eq!(a.snap_retain_count, 3);
        assert_eq!(a.interval, Duration::from_secs(7200));
        assert!(a.enabled());
        assert!(!Autopurge::default().enabled());
    }
}
