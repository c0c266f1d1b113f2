//! `/metrics` in the Prometheus text exposition format (0.0.4), with the names, types and
//! labels of Apache 3.8's `PrometheusMetricsProvider`: every numeric `mntr` value under
//! its own name (no `zk_` prefix), gauges for what Apache registers as gauges, counters for
//! its `ServerMetrics` counters, and summaries (`readlatency{quantile="0.5"}`,
//! `readlatency_count`, `readlatency_sum`) for its summaries, with quantiles 0.5, 0.9 and
//! 0.99 for the detailed ones and 0.5 for the basic ones. The help text is the name, as
//! Apache's. No `jvm_*` metrics: there is no JVM.
//!
//! Built from the same [`View`] as `mntr`, so the two always agree.

use prometheus::proto::{Counter, Gauge, Metric, MetricFamily, MetricType, Quantile, Summary};
use prometheus::{Encoder, TextEncoder};

use crate::admin::four_letter::{self, Detail, MonitorValue, Role, View};

/// The `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `mntr` keys Apache exports as Prometheus counters (`ServerMetrics` counters); the
/// other numeric ones are gauges, the summaries' come from [`four_letter::summaries`].
pub const COUNTERS: &[&str] = &[
    "proposal_count",
    "looking_count",
    "connection_request_count",
    "response_bytes",
    "connection_revalidate_count",
    "diff_count",
    "snap_count",
    "connection_rejected",
    "sessionless_connections_expired",
    "learner_proposal_received_count",
    "bytes_received_count",
    "learner_commit_received_count",
    "unsuccessful_handshake",
    "commit_count",
    "revalidate_count",
    "ensemble_auth_success",
    "ensemble_auth_fail",
    "ensemble_auth_skip",
];

/// Prefixes `mntr` gives a summary's values.
const SUMMARY_PREFIXES: &[&str] = &[
    "avg_", "min_", "max_", "cnt_", "sum_", "p50_", "p95_", "p99_", "p999_",
];

fn family(name: &str, kind: MetricType, metric: Metric) -> MetricFamily {
    let mut f = MetricFamily::default();
    f.set_name(name.to_owned());
    // Apache builds every metric with its name as the help text.
    f.set_help(name.to_owned());
    f.set_field_type(kind);
    f.set_metric(vec![metric]);
    f
}

/// The exposition text of a server in role `r`.
pub fn exposition(v: &View, r: Role) -> String {
    let summaries = four_letter::summaries(v);
    let is_summary_value = |key: &str| {
        SUMMARY_PREFIXES.iter().any(|p| {
            key.strip_prefix(p)
                .is_some_and(|base| summaries.iter().any(|(n, _, _)| *n == base))
        })
    };
    let mut families = Vec::new();
    for (key, value) in four_letter::monitor(v, r) {
        let number = match value {
            // Strings (version, states) are not metrics.
            MonitorValue::Text(_) => continue,
            MonitorValue::Int(i) => i as f64,
            MonitorValue::Float(f) => f,
        };
        if is_summary_value(&key) {
            continue;
        }
        let mut m = Metric::default();
        let kind = if COUNTERS.contains(&key.as_str()) {
            let mut c = Counter::default();
            c.set_value(number);
            m.set_counter(c);
            MetricType::COUNTER
        } else {
            let mut g = Gauge::default();
            g.set_value(number);
            m.set_gauge(g);
            MetricType::GAUGE
        };
        families.push(family(&key, kind, m));
    }
    for (name, detail, s) in summaries {
        let quantiles: &[f64] = match detail {
            Detail::Basic => &[0.5],
            Detail::Advanced => &[0.5, 0.9, 0.99],
        };
        let mut sum = Summary::default();
        sum.set_sample_count(s.count);
        sum.set_sample_sum(s.sum as f64);
        sum.set_quantile(
            quantiles
                .iter()
                .map(|q| {
                    let mut qq = Quantile::default();
                    qq.set_quantile(*q);
                    // Apache's client reports NaN before the first sample.
                    qq.set_value(match s.count {
                        0 => f64::NAN,
                        _ => s.quantile(*q) as f64,
                    });
                    qq
                })
                .collect(),
        );
        let mut m = Metric::default();
        m.set_summary(sum);
        families.push(family(name, MetricType::SUMMARY, m));
    }
    let mut out = Vec::new();
    // Encoding into memory fails only on invalid names, and every name here is fixed.
    if let Err(e) = TextEncoder::new().encode(&families, &mut out) {
        tracing::error!("encoding /metrics: {e}");
    }
    String::from_utf8(out).unwrap_or_default()
}
