//! Four-letter words, with Apache's output shapes.

use std::fmt::Write;

use crate::config::ServerConfig;
use crate::pipeline::Processor;
use crate::stats::{ConnStats, ServerStats};

/// Version string reported where Apache reports its own.
pub const VERSION: &str = "3.8.0-zk-rs, built on 1970-01-01 00:00 UTC";

/// Everything a four-letter word may report.
pub struct View<'a> {
    /// The core.
    pub core: &'a Processor,
    /// Configuration.
    pub config: &'a ServerConfig,
    /// Server counters.
    pub stats: &'a ServerStats,
    /// Connections.
    pub conns: Vec<&'a ConnStats>,
    /// Requests in flight.
    pub outstanding: usize,
    /// Uptime, ms.
    pub uptime_ms: i64,
    /// Snapshot and log bytes.
    pub dir_sizes: (u64, u64),
    /// Wall clock, ms.
    pub now_ms: i64,
}

/// `java.util.Date.toString()` in UTC, e.g. `Mon Nov 23 14:54:11 UTC 2026`.
pub fn java_date(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{} {} {:02} {:02}:{:02}:{:02} UTC {}",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1).clamp(0, 11) as usize],
        day,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        year
    )
}

/// A double as Apache prints its averages: rounded to 4 decimals, Java's `toString`
/// (`0.0`, `3.0`, `2.5588`).
fn java_double(v: f64) -> String {
    let r = (v * 10_000.0).round() / 10_000.0;
    let s = format!("{r}");
    if s.contains('.') {
        s
    } else {
        format!("{s}.0")
    }
}

/// Apache's "Node count": its node map holds the root twice (as "" and "/").
fn node_count(v: &View) -> usize {
    v.core.db.tree.node_count() + 1
}

fn latency_line(s: &ServerStats) -> String {
    format!(
        "Latency min/avg/max: {}/{}/{}\n",
        s.min_latency,
        java_double(s.avg_latency()),
        s.max_latency
    )
}

fn conn_line(c: &ConnStats, full: bool) -> String {
    let mut s = format!(
        " /{}[{}](queued={},recved={},sent={}",
        c.peer,
        if c.four_letter { 0 } else { 1 },
        c.queued,
        c.received,
        c.sent
    );
    if full {
        if let Some(sid) = c.session {
            let _ = write!(
                s,
                ",sid=0x{sid:x},lop={},est={},to={},lcxid=0x{:x},lzxid=0x{:x},lresp={},llat={},minlat={},avglat={},maxlat={}",
                c.last_op,
                c.established,
                c.timeout,
                c.last_cxid,
                c.last_zxid,
                c.established,
                c.last_latency,
                c.latency.min_latency,
                c.latency.avg_latency() as u64,
                c.latency.max_latency
            );
        }
    }
    s.push_str(")\n");
    s
}

fn server_summary(v: &View) -> String {
    format!(
        "{}Received: {}\nSent: {}\nConnections: {}\nOutstanding: {}\nZxid: 0x{:x}\nMode: standalone\nNode count: {}\n",
        latency_line(v.stats),
        v.stats.packets_received,
        v.stats.packets_sent,
        v.conns.len(),
        v.outstanding,
        v.core.db.last_zxid(),
        node_count(v)
    )
}

/// Runs a (whitelisted) command; `crst` and `srst` are applied by the caller.
pub fn render(cmd: &str, v: &View) -> String {
    match cmd {
        "ruok" => "imok".to_string(),
        "isro" => "rw".to_string(),
        "srvr" => format!("Zookeeper version: {VERSION}\n{}", server_summary(v)),
        "stat" => {
            let mut s = format!("Zookeeper version: {VERSION}\nClients:\n");
            for c in &v.conns {
                s.push_str(&conn_line(c, false));
            }
            s.push('\n');
            s.push_str(&server_summary(v));
            s
        }
        "cons" => {
            let mut s = String::new();
            for c in &v.conns {
                s.push_str(&conn_line(c, true));
            }
            s.push('\n');
            s
        }
        "crst" => "Connection stats reset.\n".to_string(),
        "srst" => "Server stats reset.\n".to_string(),
        "conf" => {
            let c = v.config;
            format!(
                "clientPort={}\nsecureClientPort=-1\ndataDir={}/version-2\ndataDirSize={}\ndataLogDir={}/version-2\ndataLogSize={}\ntickTime={}\nmaxClientCnxns={}\nminSessionTimeout={}\nmaxSessionTimeout={}\nclientPortListenBacklog=-1\nserverId={}\n",
                c.client_port,
                c.data_dir.display(),
                v.dir_sizes.0,
                c.data_log_dir.display(),
                v.dir_sizes.1,
                c.tick_time,
                c.max_client_cnxns,
                c.min_timeout(),
                c.max_timeout(),
                c.my_id
            )
        }
        "envi" => {
            let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into());
            format!(
                "Environment:\nzookeeper.version={VERSION}\nhost.name={host}\nos.name={}\nos.arch={}\nuser.dir={}\nzk-rs.pid={}\n",
                std::env::consts::OS,
                std::env::consts::ARCH,
                std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default(),
                std::process::id()
            )
        }
        "dirs" => format!(
            "datadir_size: {}\nlogdir_size: {}\n",
            v.dir_sizes.0, v.dir_sizes.1
        ),
        // Apache reports only its data-watch table here.
        "wchs" => {
            let (watchers, paths, total) = v.core.watches.data_summary();
            format!("{watchers} connections watching {paths} paths\nTotal watches:{total}\n")
        }
        "wchc" => {
            let mut s = String::new();
            for (sid, paths) in v.core.watches.data_by_session() {
                let _ = writeln!(s, "0x{sid:x}");
                for p in paths {
                    let _ = writeln!(s, "\t{p}");
                }
            }
            s.push('\n');
            s
        }
        "wchp" => {
            let mut s = String::new();
            for (p, sids) in v.core.watches.data_by_path() {
                let _ = writeln!(s, "{p}");
                for sid in sids {
                    let _ = writeln!(s, "\t0x{sid:x}");
                }
            }
            s.push('\n');
            s
        }
        "dump" => {
            let buckets = v.core.sessions.buckets();
            let total: usize = buckets.iter().map(|(_, s)| s.len()).sum();
            let mut s = format!(
                "SessionTracker dump:\nSession Sets ({})/({}):\n",
                buckets.len(),
                total
            );
            for (t, ids) in &buckets {
                let _ = writeln!(s, "{} expire at {}:", ids.len(), java_date(*t));
                for id in ids {
                    let _ = writeln!(s, "\t0x{id:x}");
                }
            }
            let eph = v.core.db.tree.ephemerals_by_session();
            let _ = writeln!(
                s,
                "ephemeral nodes dump:\nSessions with Ephemerals ({}):",
                eph.len()
            );
            for (sid, paths) in &eph {
                let _ = writeln!(s, "0x{sid:x}:");
                for p in paths {
                    let _ = writeln!(s, "\t{p}");
                }
            }
            // One expiry set holding every connection (Apache buckets them by deadline).
            let _ = writeln!(
                s,
                "Connections dump:\nConnections Sets ({})/({}):",
                usize::from(!v.conns.is_empty()),
                v.conns.len()
            );
            if !v.conns.is_empty() {
                let at = v.now_ms + i64::from(v.config.tick_time);
                let _ = writeln!(s, "{} expire at {}:", v.conns.len(), java_date(at));
                for c in &v.conns {
                    let _ = writeln!(
                        s,
                        "\tip: /{} sessionId: 0x{:x}",
                        c.peer,
                        c.session.unwrap_or(0)
                    );
                }
            }
            s.push('\n');
            s
        }
        "mntr" => {
            let db = &v.core.db;
            let eph: usize = db
                .tree
                .ephemerals_by_session()
                .values()
                .map(|s| s.len())
                .sum();
            let lines: Vec<(&str, String)> = vec![
                ("zk_version", VERSION.to_string()),
                ("zk_server_state", "standalone".into()),
                ("zk_ephemerals_count", eph.to_string()),
                ("zk_num_alive_connections", v.conns.len().to_string()),
                ("zk_avg_latency", java_double(v.stats.avg_latency())),
                ("zk_outstanding_requests", v.outstanding.to_string()),
                ("zk_znode_count", node_count(v).to_string()),
                ("zk_global_sessions", db.sessions().len().to_string()),
                ("zk_packets_sent", v.stats.packets_sent.to_string()),
                ("zk_packets_received", v.stats.packets_received.to_string()),
                ("zk_watch_count", v.core.watches.count().to_string()),
                ("zk_min_latency", v.stats.min_latency.to_string()),
                ("zk_max_latency", v.stats.max_latency.to_string()),
                (
                    "zk_approximate_data_size",
                    db.tree.approximate_data_size().to_string(),
                ),
                ("zk_local_sessions", "0".into()),
                ("zk_uptime", v.uptime_ms.to_string()),
            ];
            let mut s = String::new();
            for (k, val) in lines {
                let _ = writeln!(s, "{k}\t{val}");
            }
            s
        }
        other => format!("Unknown command {other}\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::java_double;

    #[test]
    fn doubles_print_like_java() {
        assert_eq!(java_double(0.0), "0.0");
        assert_eq!(java_double(3.0), "3.0");
        assert_eq!(java_double(2.558_823), "2.5588");
        assert_eq!(
            super::java_date(1_795_445_651_000),
            "Mon Nov 23 14:54:11 UTC 2026"
        );
        assert_eq!(super::java_date(0), "Thu Jan 01 00:00:00 UTC 1970");
    }
}
