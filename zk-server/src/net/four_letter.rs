//! Four-letter words, with Apache's output shapes.

use std::fmt::Write;

use crate::config::ServerConfig;
use crate::pipeline::Processor;
use crate::quorum::net::driver::LeaderStats;
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

/// How the server serves clients.
#[derive(Debug, Clone, Copy)]
pub struct Role<'a> {
    /// Apache's `Mode:` (`standalone`, `leader`, `follower`, `observer`, `read-only`).
    pub mode: &'a str,
    /// Ensemble details, for an ensemble member.
    pub quorum: Option<&'a QuorumView>,
}

impl Role<'static> {
    /// A standalone server.
    pub const STANDALONE: Role<'static> = Role {
        mode: "standalone",
        quorum: None,
    };
}

/// What an ensemble member adds to `conf` and `mntr`.
#[derive(Debug, Clone, Default)]
pub struct QuorumView {
    /// `zk_peer_state` (`leading - broadcast`, `following - broadcast`...).
    pub peer_state: String,
    /// `initLimit` (ticks).
    pub init_limit: u64,
    /// `syncLimit` (ticks).
    pub sync_limit: u64,
    /// This member's election port.
    pub election_port: u16,
    /// This member's quorum port.
    pub quorum_port: u16,
    /// 0 participant, 1 observer (Apache's `LearnerType` ordinal).
    pub peer_type: u8,
    /// `server.N=...` lines of the membership.
    pub membership: Vec<String>,
    /// Number of voting members.
    pub quorum_size: usize,
    /// Learner counts, when leading.
    pub leader: Option<LeaderStats>,
}

/// What a member answers when it serves no clients (Apache's text).
pub const NOT_SERVING: &str = "This ZooKeeper instance is not currently serving requests\n";

const READ_ONLY_BANNER: &str = "READ-ONLY mode; serving only read-only clients\n";

/// Whether a command needs a serving server (Apache answers [`NOT_SERVING`] otherwise).
pub fn needs_serving(cmd: &str) -> bool {
    !matches!(cmd, "ruok" | "envi" | "isro" | "dirs" | "crst" | "srst")
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

fn server_summary(v: &View, r: Role) -> String {
    let mut s = format!(
        "{}Received: {}\nSent: {}\nConnections: {}\nOutstanding: {}\nZxid: 0x{:x}\nMode: {}\nNode count: {}\n",
        latency_line(v.stats),
        v.stats.packets_received,
        v.stats.packets_sent,
        v.conns.len(),
        v.outstanding,
        v.core.db.last_zxid(),
        r.mode,
        node_count(v)
    );
    if r.mode == "leader" {
        // Proposal sizes are not measured here: Apache's "none yet" answer.
        s.push_str("Proposal sizes last/min/max: -1/-1/-1\n");
    }
    s
}

fn version_lines(r: Role) -> String {
    let mut s = format!("Zookeeper version: {VERSION}\n");
    if r.mode == "read-only" {
        s.push_str(READ_ONLY_BANNER);
    }
    s
}

fn dump_buckets(s: &mut String, buckets: &[(i64, Vec<i64>)]) {
    let total: usize = buckets.iter().map(|(_, s)| s.len()).sum();
    let _ = writeln!(s, "Session Sets ({})/({}):", buckets.len(), total);
    for (t, ids) in buckets {
        let _ = writeln!(s, "{} expire at {}:", ids.len(), java_date(*t));
        for id in ids {
            let _ = writeln!(s, "\t0x{id:x}");
        }
    }
}

/// The session part of `dump`: the standalone or leader's tracker, or a learner's table
/// of global sessions (with a read-only member's local sessions first).
fn dump_sessions(v: &View, r: Role) -> String {
    let mut s = String::from("SessionTracker dump:\n");
    match r.mode {
        "standalone" | "leader" => dump_buckets(&mut s, &v.core.sessions.buckets()),
        mode => {
            if mode == "read-only" {
                s.push_str("Local ");
                dump_buckets(&mut s, &v.core.sessions.buckets());
            }
            let mut global: Vec<(i64, i32)> =
                v.core.db.sessions().iter().map(|(s, t)| (*s, *t)).collect();
            global.sort_unstable();
            let _ = writeln!(s, "Global Sessions({}):", global.len());
            for (id, t) in global {
                let _ = writeln!(s, "0x{id:x}\t{t}ms");
            }
        }
    }
    s
}

/// Runs a (whitelisted) command for a standalone server; `crst` and `srst` are applied
/// by the caller.
pub fn render(cmd: &str, v: &View) -> String {
    render_as(cmd, v, Role::STANDALONE)
}

/// Runs a (whitelisted) command for a server in role `r`.
pub fn render_as(cmd: &str, v: &View, r: Role) -> String {
    match cmd {
        "ruok" => "imok".to_string(),
        "isro" => if r.mode == "read-only" { "ro" } else { "rw" }.to_string(),
        "srvr" => format!("{}{}", version_lines(r), server_summary(v, r)),
        "stat" => {
            let mut s = format!("{}Clients:\n", version_lines(r));
            for c in &v.conns {
                s.push_str(&conn_line(c, false));
            }
            s.push('\n');
            s.push_str(&server_summary(v, r));
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
            let mut s = format!(
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
            );
            if let Some(q) = r.quorum {
                let _ = write!(
                    s,
                    "initLimit={}\nsyncLimit={}\nelectionAlg=3\nelectionPort={}\nquorumPort={}\npeerType={}\n",
                    q.init_limit, q.sync_limit, q.election_port, q.quorum_port, q.peer_type
                );
                // A read-only member prints no membership (Apache's read-only server).
                if r.mode != "read-only" {
                    s.push_str("membership: \n");
                    for l in &q.membership {
                        let _ = writeln!(s, "{l}");
                    }
                    s.push_str("version=0\n");
                }
            }
            s
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
            let mut s = dump_sessions(v, r);
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
            let mut lines: Vec<(&str, String)> = vec![
                ("zk_version", VERSION.to_string()),
                ("zk_server_state", r.mode.into()),
            ];
            let serving_quorum = r.quorum.filter(|_| r.mode != "read-only");
            if let Some(q) = serving_quorum {
                lines.push(("zk_peer_state", q.peer_state.clone()));
            }
            let local_sessions = if r.mode == "read-only" {
                v.core.sessions.len()
            } else {
                0
            };
            lines.extend([
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
                ("zk_local_sessions", local_sessions.to_string()),
                ("zk_uptime", v.uptime_ms.to_string()),
            ]);
            if let Some(q) = serving_quorum {
                lines.push(("zk_quorum_size", q.quorum_size.to_string()));
                if let Some(l) = q.leader {
                    lines.extend([
                        ("zk_learners", l.learners.to_string()),
                        ("zk_synced_followers", l.followers.to_string()),
                        ("zk_synced_non_voting_followers", "0".into()),
                        ("zk_synced_observers", l.observers.to_string()),
                        ("zk_pending_syncs", l.pending_syncs.to_string()),
                        ("zk_last_proposal_size", "-1".into()),
                        ("zk_min_proposal_size", "-1".into()),
                        ("zk_max_proposal_size", "-1".into()),
                    ]);
                }
            }
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
