//! Four-letter words, with Apache's output shapes.

use std::fmt::Write;

use crate::admin::stats::{
    BufferStats, ConnStats, DiskTimings, NetCounters, QuorumTimings, ServerStats, Summary,
};
use crate::config::ServerConfig;
use crate::core::processor::Processor;
use crate::host::quorum::driver::LeaderStats;

/// Version string reported where Apache reports its own (`3.8.0-<commit>, built on <date>
/// UTC`): the Apache release whose protocol and formats we serve first, so that tools
/// parsing it keep working, then this crate's version and commit.
pub const VERSION: &str = concat!(
    "3.8.0-zk-rs-",
    env!("CARGO_PKG_VERSION"),
    "-",
    env!("ZK_GIT_COMMIT"),
    ", built on ",
    env!("ZK_BUILD_DATE"),
    " UTC"
);

/// Everything a four-letter word may report.
pub struct View<'a> {
    /// The core.
    pub core: &'a Processor,
    /// Configuration.
    pub config: &'a ServerConfig,
    /// Server counters.
    pub stats: &'a ServerStats,
    /// What the connection tasks counted.
    pub net: &'a NetCounters,
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
    /// What the disk timed (the owner fills it in; empty by default).
    pub disk: DiskTimings,
    /// What the quorum side timed and counted (a member's owner fills it in).
    pub quorum: QuorumTimings,
}

impl<'a> View<'a> {
    /// The view of a server (standalone or member) and its clients, `asking` being the
    /// connection that asks (Apache lists it in `cons` and `stat`). One constructor for
    /// every shell, so their answers cannot drift.
    pub fn of(
        core: &'a Processor,
        config: &'a ServerConfig,
        clients: &'a crate::host::client::clients::Clients,
        asking: &'a ConnStats,
        started_ms: i64,
        now_ms: i64,
    ) -> Self {
        let mut v = Self::without_asking(core, config, clients, started_ms, now_ms);
        v.conns.push(asking);
        v
    }

    /// The view for an HTTP endpoint (AdminServer, metrics): no client connection asks.
    pub fn without_asking(
        core: &'a Processor,
        config: &'a ServerConfig,
        clients: &'a crate::host::client::clients::Clients,
        started_ms: i64,
        now_ms: i64,
    ) -> Self {
        let conns = clients.listing();
        // An in-process member without a data directory has nothing on disk to size.
        let dir_sizes = match config.data_dir.as_os_str().is_empty() {
            true => (0, 0),
            false => (
                crate::storage::fs_util::dir_size(&config.data_dir),
                crate::storage::fs_util::dir_size(&config.data_log_dir),
            ),
        };
        View {
            core,
            config,
            stats: &clients.stats,
            net: &clients.net,
            conns,
            outstanding: clients.outstanding(),
            uptime_ms: now_ms - started_ms,
            dir_sizes,
            now_ms,
            disk: DiskTimings::default(),
            quorum: QuorumTimings::default(),
        }
    }
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
    /// How long this member has led, ms (`zk_leader_uptime`), when leading.
    pub leader_uptime_ms: i64,
    /// Sizes of the txns this member proposed as leader (`zk_*_proposal_size`).
    pub proposal_sizes: BufferStats,
    /// Txns this member proposed as leader (`zk_proposal_count`).
    pub proposal_count: u64,
    /// Times this member started LOOKING for a leader (`zk_looking_count`).
    pub looking_count: u64,
    /// The members, as their `server.N` lines give them (`voting_view`, `zabstate`).
    pub servers: Vec<crate::zab::QuorumServer>,
    /// This member's id.
    pub my_id: crate::zab::Sid,
    /// The leader this member follows or is, when known (`leader`).
    pub leader_id: Option<crate::zab::Sid>,
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
    v.core.db().tree.node_count() + 1
}

fn latency_line(s: &ServerStats) -> String {
    let s = &s.latency;
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
        v.core.db().last_zxid(),
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
        "standalone" | "leader" => dump_buckets(&mut s, &v.core.session_buckets()),
        mode => {
            if mode == "read-only" {
                s.push_str("Local ");
                dump_buckets(&mut s, &v.core.session_buckets());
            }
            let mut global: Vec<(i64, i32)> = v
                .core
                .db()
                .sessions()
                .iter()
                .map(|(s, t)| (*s, *t))
                .collect();
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
            let (watchers, paths, total) = v.core.watches().data_summary();
            format!("{watchers} connections watching {paths} paths\nTotal watches:{total}\n")
        }
        "wchc" => {
            let mut s = String::new();
            for (sid, paths) in v.core.watches().data_by_session() {
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
            for (p, sids) in v.core.watches().data_by_path() {
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
            let eph = v.core.db().tree.ephemerals_by_session();
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
        "mntr" => mntr(v, r),
        other => format!("Unknown command {other}\n"),
    }
}

/// Apache 3.8 `mntr` keys this server does not print, because it does not have the
/// thing they measure: TLS / mTLS (client-certificate auth failures included) and the
/// admin server, connection throttling and its
/// token bucket, Java's processor pipeline (prep / sync / commit processor queues and
/// their timings, response caches, learner handler queues), JVM pauses, dead-watcher
/// cleaning, digests, quotas per namespace, and the startup / sync timings and event
/// counters it does not record (it does time fsyncs, snapshots, elections, proposals
/// and commits reaching a learner, and counts DIFF / SNAP syncs). Summaries are named by their base (Apache
/// prints `zk_avg_`, `zk_min_`, `zk_max_`, `zk_cnt_`, `zk_sum_` and, for some,
/// `zk_p50_` .. `zk_p999_` of each).
pub const MNTR_OMITTED_KEYS: &[&str] = &[
    "zk_non_mtls_remote_conn_count",
    "zk_non_mtls_local_conn_count",
    "zk_outstanding_tls_handshake",
    "zk_tls_handshake_exceeded",
    "zk_insecure_admin_count",
    // Apache counts failed TLS client-certificate authentications here.
    "zk_auth_failed_count",
    "zk_connection_drop_probability",
    "zk_connection_drop_count",
    "zk_throttled_ops",
    "zk_request_throttle_wait_count",
    "zk_watch_bytes",
    "zk_outstanding_changes_removed",
    "zk_outstanding_changes_queued",
    "zk_stale_requests_dropped",
    "zk_stale_requests",
    "zk_stale_replies",
    "zk_stale_sessions_expired",
    "zk_large_requests_rejected",
    "zk_cnxn_closed_without_zk_server_running",
    "zk_dead_watchers_queued",
    "zk_dead_watchers_cleared",
    "zk_add_dead_watcher_stall_time",
    "zk_digest_mismatches_count",
    "zk_response_packet_cache_hits",
    "zk_response_packet_cache_misses",
    "zk_response_packet_get_children_cache_hits",
    "zk_response_packet_get_children_cache_misses",
    "zk_requests_not_forwarded_to_commit_processor",
    "zk_prep_processor_request_queued",
    "zk_sync_processor_request_queued",
    "zk_request_commit_queued",
    "zk_skip_learner_request_to_next_processor_count",
    "zk_quit_leading_due_to_disloyal_voter",
    "zk_unrecoverable_error_count",
];

/// Base names of the Apache 3.8 `mntr` summaries this server does not print (see
/// [`MNTR_OMITTED_KEYS`]); so are the families Apache names after something:
/// `<sid>_learner_handler_qp_size` / `_time_ms` (one per learner) and
/// `<namespace>_write_per_namespace` / `_read_per_namespace` (one per top-level znode
/// written or read).
pub const MNTR_OMITTED_SUMMARIES: &[&str] = &[
    "socket_closing_time",
    "proposal_process_time",
    "session_queues_drained",
    "write_commit_proc_req_queued",
    "connection_token_deficit",
    "read_commit_proc_req_queued",
    "sync_processor_queue_size",
    "prep_processor_queue_size",
    "inflight_snap_count",
    "reads_issued_from_session_queue",
    "learner_request_processor_queue_size",
    "reads_after_write_in_session_queue",
    "requests_in_session_queue",
    "write_commit_proc_issued",
    "prep_process_time",
    "pending_session_queue_size",
    "time_waiting_empty_pool_in_commit_processor_read_ms",
    "commit_process_time",
    "inflight_diff_count",
    "netty_queued_buffer_capacity",
    "commit_commit_proc_req_queued",
    "write_batch_time_in_commit_processor",
    "read_commit_proc_issued",
    "concurrent_request_processing_in_commit_processor",
    "sync_process_time",
    "prep_processor_queue_time_ms",
    "jvm_pause_time_ms",
    "close_session_prep_time",
    "read_commitproc_time_ms",
    "local_write_committed_time_ms",
    "request_throttle_queue_time_ms",
    "om_commit_process_time_ms",
    "read_final_proc_time_ms",
    "dead_watchers_cleaner_latency",
    "write_final_proc_time_ms",
    "proposal_ack_creation_latency",
    "om_proposal_process_time_ms",
    "sync_processor_queue_and_flush_time_ms",
    "propagation_latency",
    "server_write_committed_time_ms",
    "sync_processor_queue_time_ms",
    "sync_processor_queue_flush_time_ms",
    "write_commitproc_time_ms",
];

/// Whether `key`, printed by Apache 3.8's `mntr`, is one this server omits on purpose
/// ([`MNTR_OMITTED_KEYS`], [`MNTR_OMITTED_SUMMARIES`]).
pub fn mntr_omits(key: &str) -> bool {
    if MNTR_OMITTED_KEYS.contains(&key) {
        return true;
    }
    let base = [
        "avg", "min", "max", "cnt", "sum", "p50", "p95", "p99", "p999",
    ]
    .iter()
    .find_map(|p| key.strip_prefix("zk_")?.strip_prefix(p)?.strip_prefix('_'));
    let Some(base) = base else {
        return false;
    };
    if base.ends_with("_write_per_namespace") || base.ends_with("_read_per_namespace") {
        return true;
    }
    if let Some((id, rest)) = base.split_once('_') {
        let per_learner = rest == "learner_handler_qp_size" || rest == "learner_handler_qp_time_ms";
        if per_learner && id.parse::<u64>().is_ok() {
            return true;
        }
    }
    MNTR_OMITTED_SUMMARIES.contains(&base)
}

/// One `mntr` value, typed as Apache's `monitor` command returns it in JSON.
#[derive(Debug, Clone, PartialEq)]
pub enum MonitorValue {
    /// A string (`version`, `server_state`, `peer_state`).
    Text(String),
    /// A count, a size or a time in ms.
    Int(i64),
    /// An average (printed as Java prints a double).
    Float(f64),
}

impl MonitorValue {
    fn int(v: impl TryInto<i64>) -> Self {
        MonitorValue::Int(v.try_into().unwrap_or(i64::MAX))
    }

    /// As `mntr` prints it.
    pub fn text(&self) -> String {
        match self {
            MonitorValue::Text(s) => s.clone(),
            MonitorValue::Int(i) => i.to_string(),
            MonitorValue::Float(f) => java_double(*f),
        }
    }
}

/// How much of a summary Apache's metrics providers export (its `DetailLevel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// Count, sum, min, max, average (Prometheus: the median only).
    Basic,
    /// Also the percentiles (Prometheus: the 0.5, 0.9 and 0.99 quantiles).
    Advanced,
}

/// The summaries this server keeps, by Apache's names, in `mntr`'s order (Apache's
/// HashMap order); all in ms but the batch size (txns).
pub fn summaries<'a, 'b>(v: &'b View<'a>) -> Vec<(&'static str, Detail, &'b Summary)> {
    let (q, d, fires) = (&v.quorum, &v.disk, &v.core.watches().fires);
    use Detail::{Advanced, Basic};
    vec![
        ("leader_unavailable_time", Basic, &q.leader_unavailable),
        ("node_created_watch_count", Basic, &fires.created),
        ("node_deleted_watch_count", Basic, &fires.deleted),
        ("startup_txns_load_time", Basic, &d.txns_load),
        ("follower_sync_time", Basic, &q.follower_sync),
        ("fsynctime", Basic, &d.fsync),
        ("snapshottime", Basic, &d.snapshot),
        ("unavailable_time", Basic, &q.unavailable),
        ("startup_txns_loaded", Basic, &d.txns_loaded),
        ("dbinittime", Basic, &d.db_init),
        ("election_time", Basic, &q.election),
        ("sync_processor_batch_size", Basic, &d.batch_size),
        ("node_children_watch_count", Basic, &fires.children),
        ("observer_sync_time", Basic, &q.observer_sync),
        ("node_changed_watch_count", Basic, &fires.changed),
        ("startup_snap_load_time", Basic, &d.snap_load),
        ("updatelatency", Advanced, &v.stats.update_latency),
        ("readlatency", Advanced, &v.stats.read_latency),
        ("quorum_ack_latency", Advanced, &q.quorum_ack_latency),
        (
            "commit_propagation_latency",
            Detail::Advanced,
            &v.quorum.commit_propagation,
        ),
        (
            "proposal_latency",
            Detail::Advanced,
            &v.quorum.proposal_latency,
        ),
    ]
}

/// A summary's values, as Apache's default metrics provider dumps them (names without
/// the `zk_` prefix `mntr` adds).
fn summary_values(out: &mut Vec<(String, MonitorValue)>, name: &str, detail: Detail, s: &Summary) {
    out.push((format!("avg_{name}"), MonitorValue::Float(s.avg())));
    out.push((format!("min_{name}"), MonitorValue::int(s.min)));
    out.push((format!("max_{name}"), MonitorValue::int(s.max)));
    out.push((format!("cnt_{name}"), MonitorValue::int(s.count)));
    out.push((format!("sum_{name}"), MonitorValue::int(s.sum)));
    if detail == Detail::Basic {
        return;
    }
    for (p, q) in [("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("p999", 0.999)] {
        out.push((format!("{p}_{name}"), MonitorValue::int(s.quantile(q))));
    }
}

/// `mntr` / the AdminServer's `monitor`: Apache 3.8's keys (without `mntr`'s `zk_`
/// prefix) in its order, minus the ones in [`MNTR_OMITTED_KEYS`] and
/// [`MNTR_OMITTED_SUMMARIES`]. Role-specific keys appear exactly where Apache prints
/// them: `peer_state` and `quorum_size` on serving members, the leader's learner and
/// proposal keys on the leader.
pub fn monitor(v: &View, r: Role) -> Vec<(String, MonitorValue)> {
    use MonitorValue::{Float, Text};
    fn int(v: impl TryInto<i64>) -> MonitorValue {
        MonitorValue::int(v)
    }
    let db = &v.core.db();
    let eph: usize = db
        .tree
        .ephemerals_by_session()
        .values()
        .map(|s| s.len())
        .sum();
    let quorum = r.quorum.filter(|_| r.mode != "read-only");
    let leader = quorum.and_then(|q| q.leader.map(|l| (q, l)));
    let local_sessions = match r.mode {
        "read-only" => v.core.sessions().len(),
        _ => v.core.local_session_count(),
    };
    let st = v.stats;
    let mut lines: Vec<(String, MonitorValue)> = Vec::new();
    let mut put = |k: &str, val: MonitorValue| lines.push((k.to_string(), val));
    put("version", Text(VERSION.to_string()));
    put("server_state", Text(r.mode.into()));
    if let Some(q) = quorum {
        put("peer_state", Text(q.peer_state.clone()));
    }
    put("ephemerals_count", int(eph));
    // Apache's keys come from a Java HashMap: a read-only server's (built from another
    // set of gauges) lists these two the other way round.
    let alive = ("num_alive_connections", int(v.conns.len()));
    let avg = ("avg_latency", Float(st.latency.avg_latency()));
    let pair = match r.mode {
        "read-only" => [avg, alive],
        _ => [alive, avg],
    };
    for (k, val) in pair {
        put(k, val);
    }
    if let Some((q, _)) = leader {
        put("min_proposal_size", int(q.proposal_sizes.min));
    }
    put("outstanding_requests", int(v.outstanding));
    put("znode_count", int(node_count(v)));
    put("global_sessions", int(db.sessions().len()));
    put("last_client_response_size", int(st.client_response.last));
    put("packets_sent", int(st.packets_sent));
    put("packets_received", int(st.packets_received));
    if let Some((q, _)) = leader {
        put("max_proposal_size", int(q.proposal_sizes.max));
    }
    put("max_client_response_size", int(st.client_response.max));
    if let Some((_, l)) = leader {
        put("synced_followers", int(l.followers));
    }
    put("watch_count", int(v.core.watches().count()));
    if let Some((_, l)) = leader {
        // Apache's non-voting followers are voters syncing as observers during a
        // reconfig; this server has no reconfig.
        put("synced_non_voting_followers", int(0));
        put("synced_observers", int(l.observers));
    }
    put("min_latency", int(st.latency.min_latency));
    if let Some(n) = crate::admin::stats::max_file_descriptors() {
        put("max_file_descriptor_count", int(n));
    }
    put(
        "approximate_data_size",
        int(db.tree.approximate_data_size()),
    );
    if let Some(n) = crate::admin::stats::open_file_descriptors() {
        put("open_file_descriptor_count", int(n));
    }
    if let Some((q, l)) = leader {
        put("last_proposal_size", int(q.proposal_sizes.last));
        put("pending_syncs", int(l.pending_syncs));
        put("leader_uptime", int(q.leader_uptime_ms));
    }
    put("local_sessions", int(local_sessions));
    put("uptime", int(v.uptime_ms));
    put("max_latency", int(st.latency.max_latency));
    if let Some((_, l)) = leader {
        put("learners", int(l.learners));
    }
    put("min_client_response_size", int(st.client_response.min));
    if let Some(q) = quorum {
        put("quorum_size", int(q.quorum_size));
    }
    // Apache's counters, then its summaries.
    // A read-only member still counts what it did as a member.
    let member = |f: fn(&QuorumView) -> u64| int(r.quorum.map(f).unwrap_or(0));
    let net = |c: &std::sync::atomic::AtomicU64| int(NetCounters::get(c));
    let q = &v.quorum;
    put("proposal_count", member(|q| q.proposal_count));
    put("connection_rejected", net(&v.net.connection_rejected));
    put(
        "sessionless_connections_expired",
        net(&v.net.sessionless_expired),
    );
    put("looking_count", member(|q| q.looking_count));
    put(
        "learner_proposal_received_count",
        int(q.learner_proposals_received),
    );
    put("bytes_received_count", net(&v.net.bytes_received));
    let ensemble = v.core.ensemble_auth();
    put("ensemble_auth_success", int(ensemble.success));
    put(
        "learner_commit_received_count",
        int(q.learner_commits_received),
    );
    put("connection_request_count", int(st.connection_requests));
    put("response_bytes", int(st.response_bytes));
    put("ensemble_auth_fail", int(ensemble.fail));
    put("diff_count", int(q.diff_count));
    put(
        "connection_revalidate_count",
        int(st.connection_revalidates),
    );
    put("snap_count", int(q.snap_count));
    put("unsuccessful_handshake", net(&v.net.unsuccessful_handshake));
    put("commit_count", int(q.commit_count));
    put("ensemble_auth_skip", int(ensemble.skip));
    put("revalidate_count", int(q.revalidate_count));
    for (name, detail, summary) in summaries(v) {
        summary_values(&mut lines, name, detail, summary);
    }
    lines
}

/// `mntr`: [`monitor`]'s values, one `zk_<key>\t<value>` line each.
fn mntr(v: &View, r: Role) -> String {
    let mut s = String::new();
    for (k, val) in monitor(v, r) {
        let _ = writeln!(s, "zk_{k}\t{}", val.text());
    }
    s
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
