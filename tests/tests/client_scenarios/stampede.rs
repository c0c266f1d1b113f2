//! Reconnect jitter as the server sees it: a crowd of clients loses its server at once
//! (every connection through the fault proxy is dropped) and reconnects; the proxy's
//! accept times are the server-side view of their attempts, which must spread over the
//! jitter window rather than arrive in one burst, with no session lost.

use std::time::{Duration, Instant};

use tests::proxy::Proxy;
use zk_client::{Client, SessionState};

/// What one run measured (ms after the drop).
#[derive(Debug)]
pub struct Spread {
    /// The jitter window in force (the bound, capped at a fifth of the session timeout).
    pub window_ms: f64,
    /// First attempt after the drop, per client (sorted).
    pub attempts_ms: Vec<f64>,
}

impl Spread {
    /// The `q` quantile of the attempt times.
    pub fn quantile(&self, q: f64) -> f64 {
        let i = ((self.attempts_ms.len() - 1) as f64 * q).round() as usize;
        self.attempts_ms[i]
    }

    /// Attempts per tenth of the window, the window starting at the first attempt: a
    /// busy machine takes a while to notice a thousand dropped connections, which shifts
    /// every attempt alike and says nothing about their spread.
    pub fn tenths(&self) -> [usize; 10] {
        let first = self.attempts_ms[0];
        let mut b = [0usize; 10];
        for t in &self.attempts_ms {
            let i = ((t - first) / (self.window_ms / 10.0))
                .floor()
                .clamp(0.0, 9.0) as usize;
            b[i] += 1;
        }
        b
    }
}

/// `n` clients of the server at `hosts` (through one proxy), each with `session` as
/// session timeout and `jitter` as reconnect bound, lose their connections together.
pub async fn reconnect_after_server_loss(
    hosts: &str,
    n: usize,
    session: Duration,
    jitter: Duration,
) -> Spread {
    let target = hosts
        .split(',')
        .next()
        .and_then(|h| h.parse().ok())
        .expect("host:port");
    let proxy = Proxy::start(target).await.unwrap();
    let via = proxy.addr().to_string();
    let mut clients = Vec::with_capacity(n);
    for chunk in 0..n.div_ceil(50) {
        let batch = (chunk * 50..((chunk + 1) * 50).min(n)).map(|i| {
            Client::builder(&via)
                .session_timeout(session)
                .reconnect_jitter(jitter)
                .seed(i as u64)
                .connect()
        });
        for c in futures::future::join_all(batch).await {
            clients.push(c.expect("connect through the proxy"));
        }
    }
    let sessions: Vec<i64> = clients.iter().map(|c| c.session_id()).collect();
    let negotiated = clients[0].negotiated_timeout();
    let window = jitter.min(negotiated / 5);
    let before = proxy.accept_times().len();

    let t0 = Instant::now();
    proxy.drop_connections();
    let deadline = t0 + Duration::from_secs(30);
    loop {
        let back = clients
            .iter()
            .filter(|c| c.state() == SessionState::Connected)
            .count();
        if back == n && proxy.accept_times().len() >= before + n {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{back}/{n} clients back after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // None expired: every client kept its session.
    for (c, sid) in clients.iter().zip(&sessions) {
        assert_eq!(c.session_id(), *sid);
        assert_eq!(c.state(), SessionState::Connected);
    }
    let mut attempts_ms: Vec<f64> = proxy.accept_times()[before..before + n]
        .iter()
        .map(|t| t.saturating_duration_since(t0).as_secs_f64() * 1000.0)
        .collect();
    attempts_ms.sort_by(f64::total_cmp);
    for c in &clients {
        let _ = c.close().await;
    }
    Spread {
        window_ms: window.as_secs_f64() * 1000.0,
        attempts_ms,
    }
}

/// The assertions on a jittered run: attempts spread over the window, none in a burst.
pub fn assert_spread(s: &Spread) {
    let n = s.attempts_ms.len();
    let tenths = s.tenths();
    let (p10, p50, p90) = (s.quantile(0.1), s.quantile(0.5), s.quantile(0.9));
    eprintln!(
        "{n} clients, window {:.0} ms: attempts p10 {p10:.0} ms, p50 {p50:.0} ms, p90 {p90:.0} ms, \
         last {:.0} ms; per tenth of the window {tenths:?}",
        s.window_ms,
        s.attempts_ms[n - 1]
    );
    // Uniform over the window: p10 to p90 covers most of it (a busy machine delays
    // timers, which can only bunch attempts, never spread them).
    assert!(
        p90 - p10 >= 0.5 * s.window_ms,
        "attempts bunched: p10 {p10} p90 {p90}"
    );
    assert!(
        p50 - s.attempts_ms[0] >= 0.3 * s.window_ms,
        "half the crowd within {} ms of the first attempt",
        p50 - s.attempts_ms[0]
    );
    // No burst: no tenth of the window takes more than a third of the crowd (10% each if
    // uniform; a crowd without jitter puts nearly all of it in one or two), and every
    // tenth sees some. (A quarter was exceeded once, 26%, when a busy machine held the
    // timers back for a moment.)
    assert!(tenths.iter().all(|&k| k * 3 <= n), "burst: {tenths:?}");
    assert!(tenths.iter().all(|&k| k > 0), "empty tenth: {tenths:?}");
    assert!(
        s.attempts_ms[n - 1] <= s.window_ms + 2000.0,
        "late attempts: {:?}",
        &s.attempts_ms[n - 5..]
    );
}
