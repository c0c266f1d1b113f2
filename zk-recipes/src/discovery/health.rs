//! [`HealthMonitor`]: health-driven up/down of a registered instance. A check the user
//! provides runs periodically; the instance leaves rotation after `fall` consecutive
//! failures and comes back after `rise` consecutive passes (HAProxy's rise/fall), while
//! staying registered throughout.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::discovery::registry::Registration;

/// How a [`HealthMonitor`] runs its check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthOptions {
    /// Time between the start of two checks.
    pub interval: Duration,
    /// A check that has not answered within this counts as failed.
    pub timeout: Duration,
    /// Consecutive failures that take a healthy instance out of rotation.
    pub fall: u32,
    /// Consecutive passes that put an unhealthy instance back.
    pub rise: u32,
}

impl Default for HealthOptions {
    /// Every 2 s, 1 s timeout, out after 3 failures, back after 2 passes.
    fn default() -> Self {
        HealthOptions {
            interval: Duration::from_secs(2),
            timeout: Duration::from_secs(1),
            fall: 3,
            rise: 2,
        }
    }
}

/// Runs a health check against a [`Registration`] and flips its `enabled` with the
/// result (see the module docs). An operator's `set_enabled(false)` ([`Registration::set_enabled`]) wins:
/// a passing check does not put back an instance taken out by hand. Stops when dropped
/// (leaving the last published status).
///
/// ```no_run
/// # async fn f(reg: std::sync::Arc<zk_recipes::discovery::Registration>) {
/// use zk_recipes::discovery::{HealthMonitor, HealthOptions};
/// let monitor = HealthMonitor::start(reg, HealthOptions::default(), || async {
///     tokio::net::TcpStream::connect("127.0.0.1:8080").await.is_ok()
/// });
/// assert!(monitor.is_healthy());
/// # }
/// ```
#[derive(Debug)]
pub struct HealthMonitor {
    status: watch::Receiver<bool>,
    task: JoinHandle<()>,
}

impl Drop for HealthMonitor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl HealthMonitor {
    /// Starts checking now; the instance counts as healthy until `fall` failures.
    pub fn start<F, Fut>(registration: Arc<Registration>, options: HealthOptions, check: F) -> Self
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = bool> + Send + 'static,
    {
        let (tx, status) = watch::channel(true);
        let task = tokio::spawn(run(registration, options, check, tx));
        HealthMonitor { status, task }
    }

    /// The health status as last decided (after rise/fall).
    pub fn is_healthy(&self) -> bool {
        *self.status.borrow()
    }

    /// A watch of [`Self::is_healthy`].
    pub fn status(&self) -> watch::Receiver<bool> {
        self.status.clone()
    }
}

async fn run<F, Fut>(
    reg: Arc<Registration>,
    options: HealthOptions,
    mut check: F,
    status: watch::Sender<bool>,
) where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = bool> + Send + 'static,
{
    let mut healthy = true;
    // What the registration shows (a failed write is retried next round).
    let mut published: Option<bool> = None;
    let mut streak = 0u32;
    let mut tick = tokio::time::interval(options.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let pass = tokio::time::timeout(options.timeout, check())
            .await
            .unwrap_or(false);
        if pass == healthy {
            streak = 0;
        } else {
            streak += 1;
            let needed = if healthy { options.fall } else { options.rise };
            if streak >= needed.max(1) {
                healthy = pass;
                streak = 0;
                status.send_replace(healthy);
                tracing::info!(
                    path = reg.path(),
                    healthy,
                    "health check changed the instance's rotation"
                );
            }
        }
        if published != Some(healthy) {
            match reg.set_healthy(healthy).await {
                Ok(()) => published = Some(healthy),
                Err(e) => {
                    tracing::debug!(path = reg.path(), error = %e, "health status write failed, retrying")
                }
            }
        }
    }
}
