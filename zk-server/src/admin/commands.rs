//! The AdminServer's commands (`GET <commandURL>/<name>`), rendered as Apache 3.8's
//! JSON: the same names and aliases, the same keys with the same value types, `command`
//! and `error` in every answer. Built from the same [`View`] as the four-letter words, so
//! the two cannot disagree.
//!
//! What a JVM alone has is left out: `environment` and `system_properties` carry no
//! `java.*` or heap keys ([`JVM_ONLY_KEYS`]), `monitor` omits what `mntr` omits
//! ([`crate::admin::four_letter::MNTR_OMITTED_KEYS`]). `hash` lists no digests (this
//! server keeps no tree digest), `observers` lists no per-observer details (it counts
//! them), and every connection is listed under `connections` (none under
//! `secure_connections`).

use std::sync::atomic::{AtomicI64, Ordering};

use serde_json::{json, Map, Value};

use crate::admin::four_letter::{self, MonitorValue, QuorumView, Role, View, VERSION};
use crate::admin::stats::{BufferStats, ConnStats};
use crate::zab::{LearnerType, QuorumServer};

/// What the HTTP endpoints ask the node for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminRequest {
    /// An AdminServer command by any of its names, with the query parameters.
    Command {
        /// As requested (a primary name or an alias).
        name: String,
        /// `?key=value` pairs.
        params: Vec<(String, String)>,
    },
    /// The Prometheus exposition (`/metrics`).
    Metrics,
}

/// Every command: its primary name first, then its aliases; whether it needs a serving
/// server (Apache answers [`four_letter::NOT_SERVING`] otherwise). In Apache's list order.
pub const COMMANDS: &[(&[&str], bool)] = &[
    (&["configuration", "conf", "config"], true),
    (&["connection_stat_reset", "crst"], true),
    (&["connections", "cons"], true),
    (&["dirs"], true),
    (&["dump"], true),
    (&["environment", "env", "envi"], false),
    (&["get_trace_mask", "gtmk"], false),
    (&["hash"], true),
    (&["initial_configuration", "icfg"], true),
    (&["is_read_only", "isro"], true),
    (&["last_snapshot", "lsnp"], true),
    (&["leader", "lead"], true),
    // Apache does not check, then fails with a Java exception; here it is refused as
    // the others are.
    (&["monitor", "mntr"], true),
    (&["observer_connection_stat_reset", "orst"], true),
    (&["observers", "obsr"], true),
    (&["ruok"], true),
    (&["server_stats", "srvr"], true),
    (&["set_trace_mask", "stmk"], false),
    (&["stat_reset", "srst"], true),
    (&["stats", "stat"], true),
    (&["system_properties", "sysp"], false),
    (&["voting_view"], true),
    (&["watch_summary", "wchs"], true),
    (&["watches", "wchc"], true),
    (&["watches_by_path", "wchp"], true),
    (&["zabstate"], false),
];

/// Keys of Apache's `environment` and `system_properties` that describe the JVM (its
/// version, vendor, class path, heap): this server has none to report.
pub const JVM_ONLY_KEYS: &[&str] = &[
    "java.*",
    "jdk.*",
    "sun.*",
    "os.memory.free",
    "os.memory.max",
    "os.memory.total",
    "file.encoding",
    "native.encoding",
    "stderr.encoding",
    "stdout.encoding",
    "user.country",
    "user.language",
];

/// Whether `key` matches [`JVM_ONLY_KEYS`].
pub fn jvm_only(key: &str) -> bool {
    JVM_ONLY_KEYS.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => key.starts_with(prefix),
        None => key == *p,
    })
}

/// Apache's default trace mask (`ZooTrace`: client ping, client request, server packet).
const DEFAULT_TRACE_MASK: i64 = 306;

/// The trace mask `set_trace_mask` sets: process-wide, as Apache's `ZooTrace` level.
static TRACE_MASK: AtomicI64 = AtomicI64::new(DEFAULT_TRACE_MASK);

/// The command `name` (a primary name or an alias) stands for, and whether it needs a
/// serving server.
pub fn resolve(name: &str) -> Option<(&'static str, bool)> {
    COMMANDS
        .iter()
        .find(|(names, _)| names.contains(&name))
        .map(|(names, serving)| (names[0], *serving))
}

/// The command list page at `<commandURL>`, as Apache's: one link per primary name.
pub fn list_page(command_url: &str) -> String {
    let mut s = String::new();
    for (names, _) in COMMANDS {
        let n = names[0];
        s.push_str(&format!("<a href=\"{command_url}/{n}\">{n}</a>\n<br/>\n"));
    }
    s
}

/// An answer: `command` and `error` added to `body` (Apache appends them last).
fn answer(command: &str, mut body: Map<String, Value>, error: Option<String>) -> Value {
    body.insert("command".into(), Value::from(command));
    body.insert("error".into(), error.map_or(Value::Null, Value::from));
    Value::Object(body)
}

/// An error answer.
pub fn error(command: &str, message: impl Into<String>) -> Value {
    answer(command, Map::new(), Some(message.into()))
}

/// Runs command `name` (any of its names) for a server in `role` (`None`: serving no
/// clients, a member looking for a quorum) and renders its JSON. Resets (`stat_reset`,
/// `connection_stat_reset`) are applied by the caller, which owns the counters.
pub fn render(name: &str, params: &[(String, String)], v: &View, role: Option<Role>) -> Value {
    let Some((cmd, needs_serving)) = resolve(name) else {
        return error(name, format!("Unknown command: {name}"));
    };
    if role.is_none() && needs_serving {
        return error(cmd, four_letter::NOT_SERVING.trim_end());
    }
    let mut b = Map::new();
    let mut put = |k: &str, val: Value| {
        b.insert(k.to_owned(), val);
    };
    match (cmd, role) {
        ("configuration", _) => {
            let c = v.config;
            put("client_port", json!(c.client_port));
            put(
                "data_dir",
                json!(format!("{}/version-2", c.data_dir.display())),
            );
            put(
                "data_log_dir",
                json!(format!("{}/version-2", c.data_log_dir.display())),
            );
            put("tick_time", json!(c.tick_time));
            put("max_client_cnxns", json!(c.max_client_cnxns));
            put("min_session_timeout", json!(c.min_timeout()));
            put("max_session_timeout", json!(c.max_timeout()));
            put("server_id", json!(c.my_id));
            put("client_port_listen_backlog", json!(-1));
        }
        ("connections", _) => {
            let conns: Vec<Value> = v.conns.iter().map(|c| connection(c, false)).collect();
            put("connections", Value::Array(conns));
            put("secure_connections", json!([]));
        }
        ("dirs", _) => {
            put("datadir_size", json!(v.dir_sizes.0));
            put("logdir_size", json!(v.dir_sizes.1));
        }
        ("dump", Some(r)) => {
            let mut expiry = Map::new();
            // A learner's sessions expire at the leader: Apache lists none here.
            if matches!(r.mode, "standalone" | "leader" | "read-only") {
                for (t, ids) in v.core.session_buckets() {
                    expiry.insert(t.to_string(), json!(ids));
                }
            }
            let mut eph = Map::new();
            for (sid, paths) in v.core.db().tree.ephemerals_by_session() {
                eph.insert(sid.to_string(), json!(paths));
            }
            put("expiry_time_to_session_ids", Value::Object(expiry));
            put("session_id_to_ephemeral_paths", Value::Object(eph));
        }
        ("environment", _) => {
            for (k, val) in environment() {
                put(k, json!(val));
            }
        }
        ("get_trace_mask", _) => put("tracemask", json!(TRACE_MASK.load(Ordering::Relaxed))),
        ("set_trace_mask", _) => {
            let Some((_, given)) = params.iter().find(|(k, _)| k == "traceMask") else {
                return error(cmd, "setTraceMask requires long traceMask argument");
            };
            let Ok(mask) = given.trim().parse::<i64>() else {
                return error(
                    cmd,
                    format!("setTraceMask requires long traceMask argument, got {given}"),
                );
            };
            TRACE_MASK.store(mask, Ordering::Relaxed);
            put("tracemask", json!(mask));
        }
        ("hash", _) => put("digests", json!([])),
        ("initial_configuration", Some(r)) => {
            // Apache's ensemble members (QuorumPeerMain) do not keep it.
            let text = match r.quorum {
                Some(_) => None,
                None => v.config.initial_config.clone(),
            };
            put("initial_configuration", json!(text));
        }
        ("is_read_only", Some(r)) => put("read_only", json!(r.mode == "read-only")),
        ("last_snapshot", _) => {
            let (zxid, secs) = last_snapshot(v);
            put("zxid", json!(format!("{zxid:x}")));
            put("timestamp", json!(secs));
        }
        ("leader", Some(r)) => {
            let Some(q) = r.quorum.filter(|_| r.mode != "read-only") else {
                return error(cmd, "server is not initialized");
            };
            let leader = q.leader_id.unwrap_or(-1);
            let ip = q
                .servers
                .iter()
                .find(|s| s.sid == leader)
                .map(|s| s.host.clone())
                .unwrap_or_default();
            put("is_leader", json!(r.mode == "leader"));
            put("leader_id", json!(leader));
            put("leader_ip", json!(ip));
        }
        ("monitor", Some(r)) => {
            for (k, val) in four_letter::monitor(v, r) {
                put(&k, monitor_value(val));
            }
        }
        ("observers", Some(r)) => {
            let synced = r
                .quorum
                .and_then(|q| q.leader)
                .filter(|_| r.mode == "leader")
                .map_or(0, |l| l.observers);
            put("synced_observers", json!(synced));
            put("observers", json!([]));
        }
        ("ruok", _)
        | ("stat_reset", _)
        | ("connection_stat_reset", _)
        | ("observer_connection_stat_reset", _) => {}
        ("server_stats", Some(r)) | ("stats", Some(r)) => {
            put("version", json!(VERSION));
            put("read_only", json!(r.mode == "read-only"));
            put("server_stats", server_stats(v, r));
            put("client_response", buffer_stats(&v.stats.client_response));
            if let (Some(q), "leader") = (r.quorum, r.mode) {
                put("proposal_stats", buffer_stats(&q.proposal_sizes));
            }
            put("node_count", json!(v.core.db().tree.node_count() + 1));
            if cmd == "stats" {
                let conns: Vec<Value> = v.conns.iter().map(|c| connection(c, true)).collect();
                put("connections", Value::Array(conns));
                put("secure_connections", json!([]));
            }
        }
        ("system_properties", _) => {
            let mut props: Vec<(String, String)> = environment()
                .into_iter()
                .filter(|(k, _)| k.starts_with("os.") || k.starts_with("user."))
                .map(|(k, val)| (k.to_owned(), val))
                .collect();
            props.extend([
                ("file.separator".to_owned(), "/".to_owned()),
                ("line.separator".to_owned(), "\n".to_owned()),
                ("path.separator".to_owned(), ":".to_owned()),
            ]);
            // Secrets (keystore passwords, digests) show as ********: unlike Apache 3.8,
            // which prints them to anyone who can reach the port.
            props.extend(v.config.system_properties.shown());
            // Apache sorts them (a TreeMap); a later -D wins, as in Java.
            let sorted: std::collections::BTreeMap<String, String> = props.into_iter().collect();
            for (k, val) in sorted {
                put(&k, json!(val));
            }
        }
        ("voting_view", Some(r)) => {
            let mut view = Map::new();
            if let Some(q) = r.quorum {
                for s in q
                    .servers
                    .iter()
                    .filter(|s| s.learner_type == LearnerType::Participant)
                {
                    view.insert(
                        s.sid.to_string(),
                        json!({
                            "server_addresses": [s.quorum_addr()],
                            "election_addresses": [s.election_addr()],
                            "client_address": client_address(s),
                            "learner_type": "participant",
                        }),
                    );
                }
            }
            put("current_config", Value::Object(view));
        }
        ("watch_summary", _) => {
            let (watchers, paths, total) = v.core.watches().data_summary();
            put("num_connections", json!(watchers));
            put("num_paths", json!(paths));
            put("num_total_watches", json!(total));
        }
        ("watches", _) => {
            let mut m = Map::new();
            for (sid, paths) in v.core.watches().data_by_session() {
                m.insert(sid.to_string(), json!(paths));
            }
            put("session_id_to_watched_paths", Value::Object(m));
        }
        ("watches_by_path", _) => {
            let mut m = Map::new();
            for (path, sids) in v.core.watches().data_by_path() {
                m.insert(path, json!(sids));
            }
            put("path_to_session_ids", Value::Object(m));
        }
        ("zabstate", role) => match role.and_then(|r| r.quorum.map(|q| (r, q))) {
            Some((r, q)) if r.mode != "read-only" => zabstate(&mut put, v, r, q),
            _ => {
                put("voting", json!(false));
                put("zabstate", json!(""));
            }
        },
        _ => return error(cmd, four_letter::NOT_SERVING.trim_end()),
    }
    answer(cmd, b, None)
}

fn monitor_value(v: MonitorValue) -> Value {
    match v {
        MonitorValue::Text(s) => json!(s),
        MonitorValue::Int(i) => json!(i),
        MonitorValue::Float(f) => json!(f),
    }
}

/// Apache's `ServerCnxn.getConnectionInfo`: the brief form for `stats`, the full one
/// for `connections`.
fn connection(c: &ConnStats, brief: bool) -> Value {
    let mut m = Map::new();
    m.insert("remote_socket_address".into(), json!(c.peer.to_string()));
    m.insert(
        "interest_ops".into(),
        json!(if c.four_letter { 0 } else { 1 }),
    );
    m.insert("outstanding_requests".into(), json!(c.queued));
    m.insert("packets_received".into(), json!(c.received));
    m.insert("packets_sent".into(), json!(c.sent));
    if !brief {
        m.insert("session_id".into(), json!(c.session.unwrap_or(0)));
        m.insert("last_operation".into(), json!(c.last_op));
        m.insert("established".into(), json!(c.established));
        m.insert("session_timeout".into(), json!(c.timeout));
        m.insert("last_cxid".into(), json!(c.last_cxid));
        m.insert("last_zxid".into(), json!(c.last_zxid));
        m.insert("last_response_time".into(), json!(c.established));
        m.insert("last_latency".into(), json!(c.last_latency));
        m.insert("min_latency".into(), json!(c.latency.min_latency));
        // Apache's connection average is a whole number of ms.
        m.insert("avg_latency".into(), json!(c.latency.avg_latency() as u64));
        m.insert("max_latency".into(), json!(c.latency.max_latency));
    }
    Value::Object(m)
}

fn buffer_stats(b: &BufferStats) -> Value {
    json!({
        "last_buffer_size": b.last,
        "min_buffer_size": b.min,
        "max_buffer_size": b.max,
    })
}

/// Apache's `ServerStats` bean.
fn server_stats(v: &View, r: Role) -> Value {
    let st = v.stats;
    json!({
        "packets_sent": st.packets_sent,
        "packets_received": st.packets_received,
        "fsync_threshold_exceed_count": 0,
        "client_response_stats": buffer_stats(&st.client_response),
        "data_dir_size": v.dir_sizes.0,
        "log_dir_size": v.dir_sizes.1,
        "provider_null": false,
        "server_state": r.mode,
        "last_processed_zxid": v.core.db().last_zxid(),
        "outstanding_requests": v.outstanding,
        "avg_latency": st.latency.avg_latency(),
        "max_latency": st.latency.max_latency,
        "min_latency": st.latency.min_latency,
        "num_alive_client_connections": v.conns.len(),
        "uptime": v.uptime_ms,
        "auth_failed_count": 0,
        "non_mtlsremote_conn_count": 0,
        "non_mtlslocal_conn_count": 0,
    })
}

/// A member's client address as Apache prints an `InetSocketAddress` (`host:port`; a
/// bare port listens on every interface).
fn client_address(s: &QuorumServer) -> Value {
    match &s.client_addr {
        Some(a) if a.contains(':') => json!(a),
        Some(port) => json!(format!("0.0.0.0:{port}")),
        None => Value::Null,
    }
}

/// Apache's `MultipleAddresses` of one `host:port`, as its JSON serializer shows it.
fn addresses(host: &str, port: u16) -> Value {
    let a = format!("{host}:{port}");
    json!({
        "empty": false,
        "all_addresses": [a],
        "all_reachable_addresses": [a],
        "one": a,
        "reachable_address": a,
        "wildcard_addresses": [format!("0.0.0.0:{port}")],
        "all_ports": [port],
        "all_host_strings": [host],
        "all_reachable_addresses_or_all": [a],
        "reachable_or_one": a,
    })
}

fn zabstate(put: &mut impl FnMut(&str, Value), v: &View, r: Role, q: &QuorumView) {
    let me = q.servers.iter().find(|s| s.sid == q.my_id);
    let zxid = v.core.db().last_zxid();
    put("myid", json!(v.config.my_id));
    put("is_leader", json!(r.mode == "leader"));
    if let Some(s) = me {
        put("quorum_address", addresses(&s.host, s.quorum_port));
        put("election_address", addresses(&s.host, s.election_port));
    }
    let client = me
        .map(client_address)
        .filter(|c| !c.is_null())
        .unwrap_or_else(|| json!(v.config.client_addr().to_string()));
    put("client_address", client);
    put(
        "voting",
        json!(me.is_some_and(|s| s.learner_type == LearnerType::Participant)),
    );
    put("last_zxid", json!(format!("0x{zxid:x}")));
    put("zab_epoch", json!(zxid >> 32));
    put("zab_counter", json!(zxid & 0xffff_ffff));
    put("zabstate", json!("broadcast"));
}

/// `environment`: Apache's keys that mean something outside a JVM.
fn environment() -> Vec<(&'static str, String)> {
    let env = |k: &str| std::env::var(k).unwrap_or_default();
    let (os, release) = uname();
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(hostname)
        .unwrap_or_else(|| "localhost".into());
    vec![
        ("zookeeper.version", VERSION.to_owned()),
        ("host.name", host),
        ("os.name", os),
        ("os.arch", java_arch().to_owned()),
        ("os.version", release),
        ("user.name", user_name().unwrap_or_else(|| env("USER"))),
        ("user.home", env("HOME")),
        (
            "user.dir",
            std::env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_default(),
        ),
    ]
}

/// Java's `os.arch` names.
fn java_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "i386",
        other => other,
    }
}

/// The kernel's name and release (Java's `os.name`, `os.version`).
fn uname() -> (String, String) {
    // SAFETY: utsname is plain data; uname fills it and we read NUL-terminated fields.
    unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut u) != 0 {
            return (std::env::consts::OS.to_owned(), String::new());
        }
        let field = |f: &[libc::c_char]| {
            std::ffi::CStr::from_ptr(f.as_ptr())
                .to_string_lossy()
                .into_owned()
        };
        (field(&u.sysname), field(&u.release))
    }
}

/// The name of the user the process runs as (Java's `user.name`).
fn user_name() -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 4096];
    // SAFETY: getpwuid_r writes into `pw` and `buf` (whose length it is given) only;
    // `found` points at `pw` on success, and the name it holds lives in `buf`.
    unsafe {
        let mut pw: libc::passwd = std::mem::zeroed();
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(
            libc::getuid(),
            &mut pw,
            buf.as_mut_ptr(),
            buf.len(),
            &mut found,
        );
        if rc != 0 || found.is_null() || pw.pw_name.is_null() {
            return None;
        }
        Some(
            std::ffi::CStr::from_ptr(pw.pw_name)
                .to_string_lossy()
                .into_owned(),
        )
    }
}

fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// The newest snapshot file in dataDir: its zxid and modification time in seconds;
/// Apache's `-1, -1` when there is none.
fn last_snapshot(v: &View) -> (i64, i64) {
    let dir = crate::storage::file_names::version_dir(&v.config.data_dir);
    let newest =
        crate::storage::file_names::list(&dir, crate::storage::file_names::SNAPSHOT_PREFIX)
            .ok()
            .and_then(|files| files.into_iter().last());
    let Some(f) = newest else {
        return (-1, -1);
    };
    let secs = std::fs::metadata(&f.path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(-1, |d| d.as_secs() as i64);
    (f.zxid, secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_aliases() {
        assert_eq!(resolve("mntr"), Some(("monitor", true)));
        assert_eq!(resolve("config"), Some(("configuration", true)));
        assert_eq!(resolve("sysp"), Some(("system_properties", false)));
        assert_eq!(resolve("vote"), None);
        let page = list_page("/commands");
        assert!(page.starts_with("<a href=\"/commands/configuration\">configuration</a>\n<br/>\n"));
        assert_eq!(page.matches("<br/>").count(), COMMANDS.len());
    }

    #[test]
    fn jvm_keys() {
        assert!(jvm_only("java.version"));
        assert!(jvm_only("os.memory.free"));
        assert!(!jvm_only("os.name"));
        assert!(!jvm_only("zookeeper.version"));
    }

    #[test]
    fn java_arch_names() {
        assert!(!java_arch().is_empty());
        let (os, release) = uname();
        assert_eq!(os, "Linux");
        assert!(!release.is_empty());
    }
}
