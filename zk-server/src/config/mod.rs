//! Server settings: Apache's zoo.cfg keys, `-Dname=value` system properties and `myid`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use crate::error::{Result, ServerError};
use crate::state::acl::sasl::{SaslUsers, DEFAULT_SECTION};
use crate::state::acl::sasl_kerberos::KerberosSettings;

pub mod admin;
pub mod dynamic;
mod protection;
pub mod quorum_auth;
pub mod tls;
use protection::{Source, Verdict};

/// A secret setting: `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Every four-letter word the server knows.
pub const ALL_FOUR_LETTER_WORDS: &[&str] = &[
    "ruok", "srvr", "stat", "mntr", "conf", "cons", "envi", "dirs", "wchs", "wchc", "wchp", "dump",
    "isro", "crst", "srst",
];

/// The server's configuration, with Apache's defaults.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// `tickTime` in ms.
    pub tick_time: u32,
    /// `dataDir` (snapshots, myid). Required, as in Apache: empty by default, and a server
    /// asked to persist to an empty path refuses to start.
    pub data_dir: PathBuf,
    /// `dataLogDir` (txn logs); defaults to `dataDir`.
    pub data_log_dir: PathBuf,
    /// `clientPort`; 0 picks a free port.
    pub client_port: u16,
    /// `clientPortAddress`; all interfaces when absent.
    pub client_port_address: Option<IpAddr>,
    /// Whether `clientPort` is served: false when zoo.cfg sets only `secureClientPort`.
    pub plain_client_port: bool,
    /// `secureClientPort`: a TLS-only client port (0 picks a free one); `None`: none.
    pub secure_client_port: Option<u16>,
    /// `secureClientPortAddress`; all interfaces when absent.
    pub secure_client_port_address: Option<IpAddr>,
    /// `client.portUnification`: `clientPort` accepts TLS and plaintext alike.
    pub port_unification: bool,
    /// Client-port TLS (`ssl.*` keys, `X509AuthenticationProvider.superUser`).
    pub ssl: tls::SslConfig,
    /// `sslQuorum`: the election and quorum links dial with TLS, and accept only TLS
    /// unless `portUnification`.
    pub ssl_quorum: bool,
    /// `portUnification`: the election and quorum ports accept TLS and plaintext alike
    /// (for rolling an ensemble to TLS).
    pub quorum_port_unification: bool,
    /// `sslQuorumReloadCertFiles`: re-read the quorum stores when their files change.
    pub ssl_quorum_reload: bool,
    /// Quorum-link TLS (`ssl.quorum.*` keys).
    pub quorum_ssl: tls::SslConfig,
    /// Quorum SASL (`quorum.auth.*` keys) and, once loaded, its JAAS sections.
    pub quorum_sasl: quorum_auth::QuorumSaslConfig,
    /// `maxClientCnxns` per client IP; 0 is unlimited.
    pub max_client_cnxns: usize,
    /// `localSessionsEnabled`: an ensemble member opens sessions of its own, without a
    /// createSession txn (Apache's local sessions).
    pub local_sessions_enabled: bool,
    /// `localSessionsUpgradingEnabled`: a local session that creates an ephemeral node is
    /// made global first (else the create fails with EphemeralOnLocalSession).
    pub local_sessions_upgrading_enabled: bool,
    /// `maxCnxns`: connections over all client IPs; 0 is unlimited.
    pub max_cnxns: usize,
    /// `zookeeper.nio.sessionlessCnxnTimeout` (ms): how long a connection may stay
    /// without completing its handshake (or four-letter word) before it is closed.
    pub sessionless_cnxn_timeout_ms: u64,
    /// `minSessionTimeout` (ms); -1 means 2 ticks.
    pub min_session_timeout: i32,
    /// `maxSessionTimeout` (ms); -1 means 20 ticks.
    pub max_session_timeout: i32,
    /// `initLimit` (ensemble).
    pub init_limit: u32,
    /// `syncLimit` (ensemble).
    pub sync_limit: u32,
    /// `server.N` lines, raw: from zoo.cfg, or from the file `dynamicConfigFile` names.
    pub servers: BTreeMap<u64, String>,
    /// `dynamicConfigFile`: where the member list lives once Apache 3.5+ with
    /// `reconfigEnabled=true` has moved it out of zoo.cfg (it rewrites zoo.cfg on first start).
    pub dynamic_config_file: Option<PathBuf>,
    /// The member list's version, from the dynamic file's name (`zoo.cfg.dynamic.<hex>`),
    /// as Apache takes it.
    pub config_version: Option<i64>,
    /// `snapCount`: txns between snapshots.
    pub snap_count: u64,
    /// `snapSizeLimitInKb`: KiB of logged txns between snapshots (Apache's default 4 GiB;
    /// 0 or less: by count only).
    pub snap_size_limit_kb: u64,
    /// `autopurge.snapRetainCount`.
    pub snap_retain_count: usize,
    /// `autopurge.purgeInterval` in hours; 0 disables.
    pub purge_interval_hours: u32,
    /// `preAllocSize`, in bytes (zoo.cfg gives KiB).
    pub prealloc_size: u64,
    /// `zookeeper.fsync.warningthresholdms`: a txn log sync slower than this is logged.
    pub fsync_warning_ms: u64,
    /// `4lw.commands.whitelist`.
    pub four_letter_whitelist: BTreeSet<String>,
    /// `jute.maxbuffer`: largest packet and node data.
    pub jute_max_buffer: usize,
    /// `zookeeper.extendedTypesEnabled` (TTL nodes).
    pub extended_types: bool,
    /// `zookeeper.enforceQuota`: writes past a hard quota limit fail with QuotaExceeded.
    pub enforce_quota: bool,
    /// `znode.container.checkIntervalMs`.
    pub container_check_interval_ms: u64,
    /// `globalOutstandingLimit`: requests in flight before reads from sockets pause.
    pub global_outstanding_limit: usize,
    /// `zookeeper.DigestAuthenticationProvider.superDigest` (`user:hash`).
    pub super_digest: Option<String>,
    /// `-Djava.security.auth.login.config`: the JAAS file (Apache reads it from that JVM
    /// property only).
    pub jaas_file: Option<PathBuf>,
    /// `zookeeper.sasl.serverconfig`: the JAAS section of the server (`Server` if unset).
    pub sasl_server_section: Option<String>,
    /// DIGEST-MD5 users of the JAAS section, loaded by [`Self::load_security`]; `None`: no
    /// SASL server, and `sasl` requests get an empty answer, as in Apache.
    pub sasl_users: Option<SaslUsers>,
    /// `authProvider.N=org.apache.zookeeper.server.auth.SASLAuthenticationProvider`.
    pub sasl_provider: bool,
    /// `authProvider.N=org.apache.zookeeper.server.auth.EnsembleAuthenticationProvider`:
    /// the `ensemble` scheme checks which ensemble a client meant to reach.
    pub ensemble_provider: bool,
    /// `zookeeper.ensembleAuthName`: the names this ensemble answers to (`None`: any).
    pub ensemble_auth_names: Option<Vec<String>>,
    /// `zookeeper.letAnySaslUserDoX`.
    pub sasl_any_user: Option<String>,
    /// `zookeeper.SASLAuthenticationProvider.superPassword`, applied to a JAAS user `super`.
    pub sasl_super_password: Option<Secret>,
    /// `zookeeper.superUser` and `zookeeper.superUser.*`: SASL users with super rights.
    pub super_users: Vec<String>,
    /// How Kerberos principals become `sasl` ids (`zookeeper.security.auth_to_local`,
    /// `zookeeper.kerberos.removeHostFromPrincipal` / `removeRealmFromPrincipal`).
    pub kerberos: KerberosSettings,
    /// `zookeeper.enforce.auth.enabled`.
    pub enforce_auth_enabled: bool,
    /// `zookeeper.enforce.auth.schemes`.
    pub enforce_auth_schemes: Vec<String>,
    /// `zookeeper.sessionRequireClientSASLAuth`: shorthand for enforcing `sasl`.
    pub session_require_client_sasl_auth: bool,
    /// `zookeeper.allowSaslFailedClients`: keep a connection whose SASL login failed.
    pub allow_sasl_failed_clients: bool,
    /// `readonlymode.enabled`.
    pub read_only_mode: bool,
    /// `reconfigEnabled`.
    pub reconfig_enabled: bool,
    /// `standaloneEnabled` (default true): false runs even a one-server list as an
    /// ensemble member (a quorum of one that reconfig can grow).
    pub standalone_enabled: bool,
    /// The zoo.cfg this config was read from (rewritten as Apache does when the member
    /// list changes: members move to `<file>.dynamic.<version>`).
    pub config_file: Option<PathBuf>,
    /// `zookeeper.commitLogCount`: recent committed txns an ensemble leader keeps in
    /// memory for DIFF syncs.
    pub commit_log_count: usize,
    /// `zookeeper.snapshotSizeFactor`: negative disables syncing learners from the txn
    /// log (they then get a SNAP when older than the committed log).
    pub snapshot_size_factor: f64,
    /// `linearizableReads` (zk-server only, default false): an ensemble member serves
    /// every read as if the client had sent a sync before it (a read index from the
    /// leader, see `zab::broadcast::leader`), so plain reads are linearizable.
    pub linearizable_reads: bool,
    /// `serverThreads` (zk-server only): worker threads of the `zk-server` binary's async
    /// runtime; 0 or 1 runs everything on one thread. `None` picks from the CPU count.
    pub server_threads: Option<usize>,
    /// The AdminServer (`admin.*` keys, `-Dzookeeper.admin.*` properties).
    pub admin: admin::AdminConfig,
    /// The Prometheus `/metrics` endpoint (`metricsProvider.*`); `None`: no endpoint.
    pub metrics: Option<admin::MetricsConfig>,
    /// The zoo.cfg text the server started from (the AdminServer's
    /// `initial_configuration`).
    pub initial_config: Option<String>,
    /// The `-D` properties given on the command line, in order (`system_properties`).
    pub system_properties: admin::SystemProperties,
    /// `myid` from the data dir (0 in standalone without one).
    pub my_id: u64,
    /// Warnings for accepted-but-ignored keys and properties.
    pub warnings: Vec<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            tick_time: 2000,
            data_dir: PathBuf::new(),
            data_log_dir: PathBuf::new(),
            client_port: 2181,
            client_port_address: None,
            plain_client_port: true,
            secure_client_port: None,
            secure_client_port_address: None,
            port_unification: false,
            ssl: tls::SslConfig::default(),
            ssl_quorum: false,
            quorum_port_unification: false,
            ssl_quorum_reload: false,
            quorum_ssl: tls::SslConfig::quorum(),
            quorum_sasl: quorum_auth::QuorumSaslConfig::default(),
            max_client_cnxns: 60,
            max_cnxns: 0,
            local_sessions_enabled: false,
            // Apache's QuorumPeerConfig default (QuorumPeer's own is true, but zoo.cfg
            // readers get false).
            local_sessions_upgrading_enabled: false,
            sessionless_cnxn_timeout_ms: 10_000,
            min_session_timeout: -1,
            max_session_timeout: -1,
            init_limit: 10,
            sync_limit: 5,
            servers: BTreeMap::new(),
            dynamic_config_file: None,
            config_version: None,
            snap_count: 100_000,
            snap_size_limit_kb: 4 * 1024 * 1024,
            snap_retain_count: 3,
            purge_interval_hours: 0,
            prealloc_size: 64 * 1024 * 1024,
            fsync_warning_ms: 1000,
            four_letter_whitelist: ["srvr".to_string()].into_iter().collect(),
            jute_max_buffer: zk_proto::frame::DEFAULT_JUTE_MAX_BUFFER,
            extended_types: false,
            enforce_quota: false,
            container_check_interval_ms: 60_000,
            global_outstanding_limit: 1000,
            super_digest: None,
            jaas_file: None,
            sasl_server_section: None,
            sasl_users: None,
            sasl_provider: false,
            ensemble_provider: false,
            ensemble_auth_names: None,
            sasl_any_user: None,
            sasl_super_password: None,
            super_users: Vec::new(),
            kerberos: KerberosSettings::default(),
            enforce_auth_enabled: false,
            enforce_auth_schemes: Vec::new(),
            session_require_client_sasl_auth: false,
            allow_sasl_failed_clients: false,
            read_only_mode: false,
            reconfig_enabled: false,
            standalone_enabled: true,
            config_file: None,
            commit_log_count: 500,
            snapshot_size_factor: 0.33,
            server_threads: None,
            linearizable_reads: false,
            admin: admin::AdminConfig::default(),
            metrics: None,
            initial_config: None,
            system_properties: admin::SystemProperties::default(),
            my_id: 0,
            warnings: Vec::new(),
        }
    }
}

/// Keys that only mean something to the Java server: accepted with a warning.
const JAVA_ONLY_PREFIXES: &[&str] = &[
    "serverCnxnFactory",
    "clientCnxnSocket",
    "quorum.",
    "quorumListenOnAllIPs",
    "electionAlg",
    "peerType",
    "maxClientCnxns.",
    "clientPortListenBacklog",
    "syncEnabled",
    "audit.",
    "jvm.",
    "leaderServes",
    "cnxTimeout",
    "connectToLearnerMasterLimit",
    "multiAddress.",
];

fn parse_num<T: std::str::FromStr>(key: &str, v: &str, line: Option<usize>) -> Result<T> {
    v.trim().parse().map_err(|_| ServerError::Config {
        line,
        message: format!("{key}: '{v}' is not a valid number"),
    })
}

/// Hierarchical quorums change which sets of members form a quorum: counting votes by
/// majority instead would let a member commit what the rest of the ensemble does not.
fn hierarchical_quorum(key: &str, line: Option<usize>) -> ServerError {
    ServerError::Config {
        line,
        message: format!(
            "{key}: hierarchical quorums (group.N / weight.N) are not supported; refusing to \
             start rather than count votes differently from the rest of the ensemble"
        ),
    }
}

/// A boolean Apache's `QuorumPeerConfig.parseBoolean` reads: true or false, else an error.
fn parse_flag(key: &str, v: &str, line: Option<usize>) -> Result<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ServerError::Config {
            line,
            message: format!("{key}: '{v}' is not true or false"),
        }),
    }
}

fn parse_bool(v: &str) -> bool {
    v.trim().eq_ignore_ascii_case("true")
}

fn parse_ip(key: &str, v: &str, line: Option<usize>) -> Result<IpAddr> {
    match v {
        "localhost" => Ok(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        v => v.parse().map_err(|_| ServerError::Config {
            line,
            message: format!("{key}: '{v}' is not an IP address"),
        }),
    }
}

impl ServerConfig {
    /// A config for an in-process test server: loopback, port 0, the given data dir,
    /// every four-letter word allowed.
    ///
    /// tickTime is 200 ms, so by ZooKeeper's rule sessions are granted 400 ms to 4 s: a
    /// client asking for 10 s gets 4 s. [`crate::testkit::TestServer`] lifts the cap to 60 s
    /// and owns its directory.
    pub fn for_tests(data_dir: &Path) -> Self {
        ServerConfig {
            data_dir: data_dir.to_path_buf(),
            data_log_dir: data_dir.to_path_buf(),
            client_port: 0,
            client_port_address: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            tick_time: 200,
            // Small log chunks: recovery scans preallocated space.
            prealloc_size: 1024 * 1024,
            four_letter_whitelist: ALL_FOUR_LETTER_WORDS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            // Parallel tests must not race for port 8080.
            admin: admin::AdminConfig::disabled(),
            ..Default::default()
        }
    }

    /// Effective minimum session timeout.
    pub fn min_timeout(&self) -> i32 {
        if self.min_session_timeout < 0 {
            2 * self.tick_time as i32
        } else {
            self.min_session_timeout
        }
    }

    /// Effective maximum session timeout.
    pub fn max_timeout(&self) -> i32 {
        if self.max_session_timeout < 0 {
            20 * self.tick_time as i32
        } else {
            self.max_session_timeout
        }
    }

    /// The address to listen on.
    pub fn client_addr(&self) -> SocketAddr {
        SocketAddr::new(
            self.client_port_address
                .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            self.client_port,
        )
    }

    /// The TLS-only client address (`secureClientPort`), if any.
    pub fn secure_client_addr(&self) -> Option<SocketAddr> {
        self.secure_client_port.map(|p| {
            SocketAddr::new(
                self.secure_client_port_address
                    .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
                p,
            )
        })
    }

    /// The effective settings an operator checks first, on one line for the start log.
    pub fn summary(&self) -> String {
        let plain = if self.plain_client_port {
            self.client_port.to_string()
        } else {
            "-".to_owned()
        };
        let secure = self
            .secure_client_port
            .map_or("-".to_owned(), |p| p.to_string());
        // A member's client address may come from its server line: logged once bound.
        let role = if self.servers.len() >= 2 {
            format!("member {} of {}", self.my_id, self.servers.len())
        } else {
            format!("standalone, clientPort={plain}, secureClientPort={secure}")
        };
        format!(
            "{role}, tickTime={}, \
             session timeouts {}..{} ms, dataDir={}, dataLogDir={}, snapCount={}, \
             autopurge every {} h keeping {}, maxClientCnxns={}{}",
            self.tick_time,
            self.min_timeout(),
            self.max_timeout(),
            self.data_dir.display(),
            self.data_log_dir.display(),
            self.snap_count,
            self.purge_interval_hours,
            self.snap_retain_count,
            self.max_client_cnxns,
            if self.enforce_quota {
                ", enforceQuota=true"
            } else {
                ""
            }
        )
    }

    /// Whether some client port speaks TLS (`secureClientPort` or `client.portUnification`).
    pub fn tls_enabled(&self) -> bool {
        self.secure_client_port.is_some() || self.port_unification
    }

    /// Whether the quorum ports speak TLS (`sslQuorum` or `portUnification`).
    pub fn quorum_tls_enabled(&self) -> bool {
        self.ssl_quorum || self.quorum_port_unification
    }

    /// Reads a zoo.cfg file, then `myid` from its data dir; `props` are `-D` properties,
    /// which win over the file as Java system properties do.
    pub fn from_file(path: &Path, props: &[(String, String)]) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ServerError::io(format!("reading {}", path.display()), e))?;
        let mut cfg = Self::parse(&text, props)?;
        cfg.initial_config = Some(text);
        cfg.config_file = Some(path.to_owned());
        let myid = cfg.data_dir.join("myid");
        if let Ok(s) = std::fs::read_to_string(&myid) {
            cfg.my_id = s.trim().parse().map_err(|_| ServerError::Config {
                line: None,
                message: format!("{}: '{}' is not a server id", myid.display(), s.trim()),
            })?;
        }
        Ok(cfg)
    }

    /// Parses zoo.cfg text (Java properties: `key=value`, `#`/`!` comments).
    pub fn parse(text: &str, props: &[(String, String)]) -> Result<Self> {
        let mut cfg = ServerConfig::default();
        let mut data_dir = None;
        let mut data_log_dir = None;
        let mut client_port_given = false;
        let mut static_members: Option<(String, usize)> = None;
        let mut dynamic_file: Option<(PathBuf, usize)> = None;
        let mut metrics_lines = admin::MetricsLines::default();
        for (i, raw) in text.lines().enumerate() {
            let lineno = Some(i + 1);
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            let Some(sep) = line.find(['=', ':']) else {
                return Err(ServerError::Config {
                    line: lineno,
                    message: format!("malformed line '{line}': expected key=value"),
                });
            };
            let key = line[..sep].trim();
            let value = line[sep + 1..].trim();
            if key.is_empty() {
                return Err(ServerError::Config {
                    line: lineno,
                    message: format!("malformed line '{line}': empty key"),
                });
            }
            match protection::judge(key, value, Source::File) {
                Verdict::Refused(message) => {
                    return Err(ServerError::Config {
                        line: lineno,
                        message,
                    })
                }
                Verdict::Given => continue,
                Verdict::Other => {}
            }
            match key {
                "tickTime" => cfg.tick_time = parse_num(key, value, lineno)?,
                "dataDir" => data_dir = Some(PathBuf::from(value)),
                "dataLogDir" => data_log_dir = Some(PathBuf::from(value)),
                "clientPort" => {
                    cfg.client_port = parse_num(key, value, lineno)?;
                    client_port_given = true;
                }
                "clientPortAddress" => {
                    cfg.client_port_address = Some(parse_ip(key, value, lineno)?)
                }
                // As Apache, 0 means no secure port.
                "secureClientPort" => {
                    cfg.secure_client_port =
                        Some(parse_num(key, value, lineno)?).filter(|p| *p != 0)
                }
                "secureClientPortAddress" => {
                    cfg.secure_client_port_address = Some(parse_ip(key, value, lineno)?)
                }
                "client.portUnification" => cfg.port_unification = parse_bool(value),
                "sslQuorum" => cfg.ssl_quorum = parse_flag(key, value, lineno)?,
                "portUnification" => cfg.quorum_port_unification = parse_flag(key, value, lineno)?,
                "sslQuorumReloadCertFiles" => {
                    cfg.ssl_quorum_reload = parse_flag(key, value, lineno)?
                }
                k if quorum_auth::KEYS.contains(&k) => {
                    cfg.quorum_sasl
                        .apply(k, value)
                        .map_err(|message| ServerError::Config {
                            line: lineno,
                            message,
                        })?;
                }
                "maxClientCnxns" => cfg.max_client_cnxns = parse_num(key, value, lineno)?,
                "minSessionTimeout" => cfg.min_session_timeout = parse_num(key, value, lineno)?,
                "maxSessionTimeout" => cfg.max_session_timeout = parse_num(key, value, lineno)?,
                "initLimit" => cfg.init_limit = parse_num(key, value, lineno)?,
                "syncLimit" => cfg.sync_limit = parse_num(key, value, lineno)?,
                "autopurge.snapRetainCount" => {
                    cfg.snap_retain_count = parse_num::<usize>(key, value, lineno)?.max(3)
                }
                "autopurge.purgeInterval" => {
                    cfg.purge_interval_hours = parse_num(key, value, lineno)?
                }
                k if k.starts_with("server.") => {
                    let id = parse_num(key, &k["server.".len()..], lineno)?;
                    cfg.servers.insert(id, value.to_string());
                    static_members.get_or_insert((k.to_owned(), i + 1));
                }
                k if k.starts_with("group.") || k.starts_with("weight.") => {
                    return Err(hierarchical_quorum(k, lineno));
                }
                "dynamicConfigFile" => dynamic_file = Some((PathBuf::from(value), i + 1)),
                // Apache reads these from zoo.cfg only (not as system properties).
                k if k.starts_with("metricsProvider.") => metrics_lines.push(k, value, i + 1),
                "standaloneEnabled" => cfg.standalone_enabled = parse_bool(value),
                k if JAVA_ONLY_PREFIXES.iter().any(|p| k.starts_with(p)) => {
                    cfg.warnings.push(format!(
                        "line {}: {k} only applies to the Java server, ignored",
                        i + 1
                    ));
                }
                k => {
                    // Apache maps an unknown key K to the system property zookeeper.K.
                    if !cfg.apply_property(&format!("zookeeper.{k}"), value, lineno)?
                        && !cfg.apply_property(k, value, lineno)?
                    {
                        cfg.warnings
                            .push(format!("line {}: unknown key {k}, ignored", i + 1));
                    }
                }
            }
        }
        cfg.metrics = metrics_lines
            .resolve(&mut cfg.warnings)
            .map_err(|(line, message)| ServerError::Config {
                line: Some(line),
                message,
            })?;
        cfg.system_properties = admin::SystemProperties(props.to_vec());
        for (k, v) in props {
            if k == "java.security.auth.login.config" {
                cfg.jaas_file = Some(PathBuf::from(v));
                continue;
            }
            match protection::judge(k, v, Source::Property) {
                Verdict::Refused(why) => {
                    return Err(ServerError::Config {
                        line: None,
                        message: format!("-D{why}"),
                    })
                }
                Verdict::Given => continue,
                Verdict::Other => {}
            }
            if !cfg.apply_property(k, v, None)? {
                cfg.warnings
                    .push(format!("unknown property -D{k}, ignored"));
            }
        }
        if let Some((path, line)) = dynamic_file {
            if let Some((key, at)) = static_members {
                // As Apache: one list of members, never two that may disagree.
                return Err(ServerError::Config {
                    line: Some(at),
                    message: format!(
                        "{key} must be in the dynamic config file ({} named on line {line}), \
                         not in zoo.cfg",
                        path.display()
                    ),
                });
            }
            cfg.read_dynamic_config(&path, line)?;
        }
        // As Apache: no dataDir is an error, never a silent /tmp/zookeeper.
        cfg.data_dir = data_dir.ok_or_else(|| ServerError::Config {
            line: None,
            message: "dataDir is not set".into(),
        })?;
        cfg.data_log_dir = data_log_dir.unwrap_or_else(|| cfg.data_dir.clone());
        // As Apache: a config naming only the secure port has no plaintext port.
        if cfg.secure_client_port.is_some() && !client_port_given {
            cfg.plain_client_port = false;
        }
        if cfg.tls_enabled() {
            cfg.ssl.validate().map_err(|message| ServerError::Config {
                line: None,
                message,
            })?;
        }
        let refuse = |message: String| ServerError::Config {
            line: None,
            message: format!("{message}; refusing to start"),
        };
        if cfg.quorum_tls_enabled() {
            cfg.quorum_ssl.validate().map_err(refuse)?;
        }
        cfg.quorum_sasl.validate().map_err(refuse)?;
        if cfg.quorum_sasl.enabled && cfg.quorum_sasl.service_principal.contains("/_HOST@") {
            cfg.warnings.push(format!(
                "quorum.auth.kerberos.servicePrincipal={}: as in Apache, _HOST is replaced \
                 only in the form service/_HOST (the realm is then the learner's own); \
                 written with a realm it is used as is",
                cfg.quorum_sasl.service_principal
            ));
        }
        if cfg.tick_time == 0 {
            return Err(ServerError::Config {
                line: None,
                message: "tickTime must be positive".into(),
            });
        }
        cfg.load_security()?;
        Ok(cfg)
    }

    /// Reads the member list from the file `dynamicConfigFile` names (line `line` of
    /// zoo.cfg). Ignoring it would start a member of an ensemble as a standalone server on
    /// the ensemble's data: clients would write to a server no one else replicates.
    fn read_dynamic_config(&mut self, path: &Path, line: usize) -> Result<()> {
        let text = std::fs::read_to_string(path).map_err(|e| ServerError::Config {
            line: Some(line),
            message: format!("dynamicConfigFile {}: {e}", path.display()),
        })?;
        let at = |n: usize| format!("{} line {}", path.display(), n + 1);
        let mut version_line = None;
        for (n, raw) in text.lines().enumerate() {
            let l = raw.trim();
            if l.is_empty() || l.starts_with('#') || l.starts_with('!') {
                continue;
            }
            let Some((key, value)) = l.split_once('=') else {
                return Err(ServerError::Config {
                    line: Some(line),
                    message: format!("{}: malformed line '{l}': expected key=value", at(n)),
                });
            };
            let (key, value) = (key.trim(), value.trim());
            if let Some(id) = key.strip_prefix("server.") {
                let id = id.parse().map_err(|_| ServerError::Config {
                    line: Some(line),
                    message: format!("{}: '{key}' has no server id", at(n)),
                })?;
                self.servers.insert(id, value.to_owned());
            } else if key == "version" {
                // Apache writes it into `.dynamic.next`; the file name wins otherwise.
                version_line =
                    Some(
                        i64::from_str_radix(value, 16).map_err(|_| ServerError::Config {
                            line: Some(line),
                            message: format!("{}: version={value} is not hexadecimal", at(n)),
                        })?,
                    );
            } else if key.starts_with("group.") || key.starts_with("weight.") {
                let mut e = hierarchical_quorum(key, Some(line));
                if let ServerError::Config { message, .. } = &mut e {
                    *message = format!("{}: {message}", at(n));
                }
                return Err(e);
            } else {
                // As Apache: the version comes from the file name, and nothing else
                // belongs in the member list.
                return Err(ServerError::Config {
                    line: Some(line),
                    message: format!(
                        "{}: '{key}' does not belong in a dynamic config file (server.N \
                         and version lines only)",
                        at(n)
                    ),
                });
            }
        }
        self.config_version = path
            .file_name()
            .and_then(|f| f.to_str())
            .and_then(|f| f.rsplit_once(".dynamic."))
            .and_then(|(_, v)| i64::from_str_radix(v, 16).ok())
            .or(version_line);
        self.dynamic_config_file = Some(path.to_owned());
        Ok(())
    }

    /// The auth schemes a connection must hold one of before it is served (empty: none),
    /// as Apache's `AuthenticationHelper` derives them.
    pub fn enforced_auth_schemes(&self) -> Vec<String> {
        if self.session_require_client_sasl_auth {
            vec!["sasl".to_owned()]
        } else if self.enforce_auth_enabled {
            self.enforce_auth_schemes.clone()
        } else {
            Vec::new()
        }
    }

    /// Reads the JAAS section of the server's SASL logins and checks the authentication
    /// settings fit together, failing closed: an unreadable JAAS file, a login module we
    /// cannot serve, a missing section that was named explicitly, enforcement without
    /// schemes or of a scheme without provider all stop the server, naming the setting.
    pub fn load_security(&mut self) -> Result<()> {
        let err = |message: String| ServerError::Config {
            line: None,
            message: format!("{message}; refusing to start"),
        };
        self.sasl_users = None;
        let jaas_text = match &self.jaas_file {
            Some(file) => Some(std::fs::read_to_string(file).map_err(|e| {
                err(format!(
                    "-Djava.security.auth.login.config={}: {e}",
                    file.display()
                ))
            })?),
            None => None,
        };
        let jaas_name = self
            .jaas_file
            .as_ref()
            .map(|f| f.display().to_string())
            .unwrap_or_default();
        self.quorum_sasl
            .load(jaas_text.as_deref(), &jaas_name)
            .map_err(err)?;
        if let (Some(file), Some(text)) = (&self.jaas_file, &jaas_text) {
            let section = self
                .sasl_server_section
                .as_deref()
                .unwrap_or(DEFAULT_SECTION);
            let entries = zk_proto::sasl::jaas::section(text, section).map_err(|e| {
                err(format!(
                    "-Djava.security.auth.login.config={}: {e}",
                    file.display()
                ))
            })?;
            match entries {
                Some(entries) => {
                    let users = SaslUsers::from_section(
                        &entries,
                        self.sasl_super_password.as_ref().map(|s| s.0.as_str()),
                        Some(&self.kerberos),
                    )
                    .map_err(|e| {
                        err(format!(
                            "JAAS section {section:?} of {}: {e}",
                            file.display()
                        ))
                    })?;
                    if users.is_empty() {
                        self.warnings.push(format!(
                            "JAAS section {section:?} of {} has no user_<name> entries: \
                             every SASL login will fail",
                            file.display()
                        ));
                    }
                    if let Some(k) = users.kerberos() {
                        self.warnings.push(format!(
                            "JAAS section {section:?} of {}: Kerberos (GSSAPI) logins as {} \
                             with keytab {}; DIGEST-MD5 users of the section cannot log in \
                             (one mechanism per server, as in Apache)",
                            file.display(),
                            k.principal,
                            k.keytab.display()
                        ));
                    }
                    self.sasl_users = Some(users);
                }
                // Apache runs without a SASL server then, unless the section was named.
                None if self.sasl_server_section.is_some() => {
                    return Err(err(format!(
                        "zookeeper.sasl.serverconfig={section}: no such JAAS section in {}",
                        file.display()
                    )))
                }
                // A JAAS file for the quorum logins only needs no client section.
                None if self.quorum_sasl.enabled => {}
                None => self.warnings.push(format!(
                    "JAAS file {} has no {section:?} section: no SASL logins on the client port",
                    file.display()
                )),
            }
        }
        let enforced = self.enforced_auth_schemes();
        if self.enforce_auth_enabled
            && !self.session_require_client_sasl_auth
            && enforced.is_empty()
        {
            return Err(err(
                "zookeeper.enforce.auth.enabled is true: zookeeper.enforce.auth.schemes must be \
                 configured"
                    .into(),
            ));
        }
        for scheme in &enforced {
            let known = matches!(scheme.as_str(), "digest" | "ip")
                || (scheme == "sasl" && self.sasl_provider);
            if !known {
                let keys = if self.session_require_client_sasl_auth {
                    "zookeeper.sessionRequireClientSASLAuth"
                } else {
                    "zookeeper.enforce.auth.enabled with zookeeper.enforce.auth.schemes"
                };
                return Err(err(format!(
                    "{keys}: authentication scheme {scheme} is not available (for sasl, \
                     register authProvider.N={})",
                    protection::SASL_PROVIDER
                )));
            }
        }
        if enforced.iter().any(|s| s == "sasl") && self.sasl_users.is_none() {
            self.warnings.push(
                "SASL authentication is enforced but no JAAS Server section configures SASL \
                 logins: every client will be refused"
                    .into(),
            );
        }
        Ok(())
    }

    /// Worker threads for the binary's runtime: `serverThreads` if set, else half the CPUs.
    ///
    /// Every write passes through one core task, so extra workers only parallelise socket
    /// reads, decoding and encoding, and each hand-off between threads costs a wake-up. On a
    /// machine with two CPUs or fewer (where the kernel and the log thread need the other
    /// one) a single thread is fastest: 1.3-1.4x the set throughput of two workers on the
    /// 2-CPU benchmark machine, with equal get throughput (see BENCHMARKS.md).
    pub fn runtime_threads(&self) -> usize {
        self.server_threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get() / 2))
    }

    /// Applies a Java system property; false if it is not one we know.
    pub fn apply_property(&mut self, name: &str, value: &str, line: Option<usize>) -> Result<bool> {
        let short = name.strip_prefix("zookeeper.").unwrap_or(name);
        for ssl in [&mut self.ssl, &mut self.quorum_ssl] {
            if ssl
                .apply(short, value)
                .map_err(|message| ServerError::Config { line, message })?
            {
                return Ok(true);
            }
        }
        match short {
            "extendedTypesEnabled" | "emulate353TTLNodes" => {
                self.extended_types |= parse_bool(value)
            }
            "enforceQuota" => self.enforce_quota = parse_bool(value),
            "fsync.warningthresholdms" => self.fsync_warning_ms = parse_num(name, value, line)?,
            "DigestAuthenticationProvider.superDigest" => {
                self.super_digest = Some(value.to_string())
            }
            k if k.starts_with("authProvider.") => {
                // The protection rules let only providers we implement through.
                match value.trim() {
                    protection::SASL_PROVIDER => self.sasl_provider = true,
                    protection::ENSEMBLE_PROVIDER => self.ensemble_provider = true,
                    _ => {}
                }
            }
            "ensembleAuthName" => {
                self.ensemble_auth_names =
                    Some(value.split(',').map(|n| n.trim().to_string()).collect())
            }
            "sasl.serverconfig" => self.sasl_server_section = Some(value.trim().to_string()),
            "letAnySaslUserDoX" => self.sasl_any_user = Some(value.to_string()),
            "SASLAuthenticationProvider.superPassword" => {
                self.sasl_super_password = Some(Secret(value.to_string()))
            }
            k if k == "superUser" || k.starts_with("superUser.") => {
                self.super_users.push(value.to_string())
            }
            "enforce.auth.enabled" => self.enforce_auth_enabled = parse_bool(value),
            "enforce.auth.schemes" => {
                self.enforce_auth_schemes = value.split(',').map(|s| s.trim().to_string()).collect()
            }
            "sessionRequireClientSASLAuth" => {
                self.session_require_client_sasl_auth = parse_bool(value)
            }
            "allowSaslFailedClients" => self.allow_sasl_failed_clients = parse_bool(value),
            // Apache compares with "true" exactly (String.equals).
            "kerberos.removeHostFromPrincipal" => self.kerberos.remove_host = value == "true",
            "kerberos.removeRealmFromPrincipal" => self.kerberos.remove_realm = value == "true",
            "security.auth_to_local" => self.kerberos.auth_to_local = Some(value.to_string()),
            "jute.maxbuffer" => self.jute_max_buffer = parse_num(name, value, line)?,
            "snapCount" => self.snap_count = parse_num(name, value, line)?,
            "snapSizeLimitInKb" => {
                self.snap_size_limit_kb = parse_num::<i64>(name, value, line)?.max(0) as u64
            }
            "preAllocSize" => {
                self.prealloc_size = parse_num::<u64>(name, value, line)?.saturating_mul(1024)
            }
            "globalOutstandingLimit" => {
                self.global_outstanding_limit = parse_num(name, value, line)?
            }
            "4lw.commands.whitelist" => {
                self.four_letter_whitelist = value
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .flat_map(|s| {
                        if s == "*" {
                            ALL_FOUR_LETTER_WORDS
                                .iter()
                                .map(|w| w.to_string())
                                .collect()
                        } else {
                            vec![s]
                        }
                    })
                    .collect();
            }
            "readonlymode.enabled" => self.read_only_mode = parse_bool(value),
            "commitLogCount" => self.commit_log_count = parse_num(name, value, line)?,
            "snapshotSizeFactor" => self.snapshot_size_factor = parse_num(name, value, line)?,
            "reconfigEnabled" => self.reconfig_enabled = parse_bool(value),
            "serverThreads" => self.server_threads = Some(parse_num(name, value, line)?),
            "linearizableReads" => self.linearizable_reads = parse_bool(value),
            k if k.starts_with("admin.") => {
                let known = self
                    .admin
                    .apply(k, value)
                    .map_err(|message| ServerError::Config { line, message })?;
                if !known {
                    match k {
                        // Jetty's connection idle timeout and HTTP version: the HTTP/1.1
                        // server here keeps its own.
                        "admin.idleTimeout" | "admin.httpVersion" => self
                            .warnings
                            .push(format!("property {name} accepted, not used")),
                        _ => return Ok(false),
                    }
                }
            }
            "znode.container.checkIntervalMs" | "container.checkIntervalMs" => {
                self.container_check_interval_ms = parse_num(name, value, line)?
            }
            "maxCnxns" => self.max_cnxns = parse_num(name, value, line)?,
            "localSessionsEnabled" => self.local_sessions_enabled = parse_bool(value),
            "localSessionsUpgradingEnabled" => {
                self.local_sessions_upgrading_enabled = parse_bool(value)
            }
            "nio.sessionlessCnxnTimeout" => {
                self.sessionless_cnxn_timeout_ms = parse_num(name, value, line)?
            }
            "znode.container.maxPerMinute"
            | "skipACL"
            | "digest.enabled"
            | "closeSessionTxn.enabled"
            | "forceSync"
            | "txnLogSizeLimitInKb"
            | "jaasLoginRenew" => {
                self.warnings
                    .push(format!("property {name} accepted, not used"));
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// Splits `-Dname=value` arguments from the rest of a command line.
pub fn split_properties(args: &[String]) -> (Vec<(String, String)>, Vec<String>) {
    let mut props = Vec::new();
    let mut rest = Vec::new();
    for a in args {
        if let Some(p) = a.strip_prefix("-D") {
            let (k, v) = p.split_once('=').unwrap_or((p, "true"));
            props.push((k.to_string(), v.to_string()));
        } else {
            rest.push(a.clone());
        }
    }
    (props, rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_apache_sample() {
        let text = "# comment\ntickTime=3000\ninitLimit=10\nsyncLimit=5\ndataDir=/var/zk\nclientPort=2182\nclientPortAddress=127.0.0.1\nmaxClientCnxns=7\nautopurge.snapRetainCount=5\nautopurge.purgeInterval=1\nserver.1=a:2888:3888\n4lw.commands.whitelist=ruok, stat\nextendedTypesEnabled=true\nadmin.enableServer=false\nserverCnxnFactory=org.x.Y\npreAllocSize=1024\nsnapCount=50\nenforceQuota=true\nmaxCnxns=9\nnio.sessionlessCnxnTimeout=700\nlocalSessionsEnabled=true\n";
        let c = ServerConfig::parse(text, &[]).unwrap();
        assert!(c.local_sessions_enabled);
        assert!(
            !c.local_sessions_upgrading_enabled,
            "Apache's zoo.cfg default"
        );
        assert_eq!(c.max_cnxns, 9);
        assert_eq!(c.sessionless_cnxn_timeout_ms, 700);
        assert!(c.enforce_quota);
        assert_eq!(c.tick_time, 3000);
        assert_eq!(c.client_port, 2182);
        assert_eq!(c.data_log_dir, PathBuf::from("/var/zk"));
        assert_eq!(c.min_timeout(), 6000);
        assert_eq!(c.max_timeout(), 60000);
        assert_eq!(c.max_client_cnxns, 7);
        assert_eq!(c.snap_retain_count, 5);
        assert_eq!(c.servers.get(&1).map(String::as_str), Some("a:2888:3888"));
        assert!(
            c.four_letter_whitelist.contains("ruok") && c.four_letter_whitelist.contains("stat")
        );
        assert!(c.extended_types);
        assert_eq!(c.prealloc_size, 1024 * 1024);
        assert_eq!(c.snap_count, 50);
        // admin.enableServer is the AdminServer's own key now: only serverCnxnFactory warns.
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        assert!(!c.admin.enabled);
    }

    /// zoo.cfg as Apache 3.8 rewrites it on first start with `reconfigEnabled=true`: the
    /// members are only in the dynamic file, whose name carries the version.
    #[test]
    fn members_come_from_the_dynamic_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let dynamic = dir.path().join("zoo.cfg.dynamic.100000000");
        std::fs::write(
            &dynamic,
            "server.1=127.0.0.1:2888:3888:participant;127.0.0.1:2181\n\
             server.2=127.0.0.1:2889:3889:participant;127.0.0.1:2182\n\
             server.3=127.0.0.1:2890:3890:participant;127.0.0.1:2183\n",
        )
        .unwrap();
        let text = format!(
            "tickTime=2000\ndataDir=/var/zk\nreconfigEnabled=true\ndynamicConfigFile={}\n",
            dynamic.display()
        );
        let c = ServerConfig::parse(&text, &[]).unwrap();
        assert_eq!(c.servers.len(), 3);
        assert_eq!(
            c.servers.get(&2).map(String::as_str),
            Some("127.0.0.1:2889:3889:participant;127.0.0.1:2182")
        );
        assert_eq!(c.config_version, Some(0x1_0000_0000));
        assert_eq!(c.dynamic_config_file.as_deref(), Some(dynamic.as_path()));
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);

        // Members in both places: refused, naming the key and its line.
        let e = ServerConfig::parse(&format!("server.1=a:1:2\n{text}"), &[]).unwrap_err();
        assert!(
            e.to_string().contains("line 1") && e.to_string().contains("server.1"),
            "{e}"
        );
        // A dynamic file that is not there stops the server instead of going standalone.
        let gone = text.replace("dynamic.100000000", "dynamic.200000000");
        let e = ServerConfig::parse(&gone, &[]).unwrap_err();
        assert!(e.to_string().contains("dynamic.200000000"), "{e}");
        // A version line (Apache writes one into `.dynamic.next`) is accepted; the
        // file name's version wins.
        std::fs::write(&dynamic, "server.1=a:1:2\nversion=200000000\n").unwrap();
        let c = ServerConfig::parse(&text, &[]).unwrap();
        assert_eq!(c.config_version, Some(0x1_0000_0000));
        // Anything but server and version lines in it is refused, naming the file and line.
        std::fs::write(&dynamic, "server.1=a:1:2\ntickTime=100\n").unwrap();
        let e = ServerConfig::parse(&text, &[]).unwrap_err();
        assert!(
            e.to_string().contains("line 2") && e.to_string().contains("tickTime"),
            "{e}"
        );
    }

    #[test]
    fn hierarchical_quorums_are_refused_not_ignored() {
        for extra in ["group.1=1:2:3", "weight.1=2"] {
            let text = format!("dataDir=/x\nserver.1=a:1:2\nserver.2=b:1:2\n{extra}\n");
            let e = ServerConfig::parse(&text, &[]).unwrap_err();
            assert!(
                e.to_string().contains("line 4") && e.to_string().contains("hierarchical"),
                "{e}"
            );
        }
    }

    #[test]
    fn malformed_lines_name_the_line() {
        let e = ServerConfig::parse("tickTime=2000\ndataDir=/x\njunk\n", &[]).unwrap_err();
        assert!(e.to_string().contains("line 3"), "{e}");
        let e = ServerConfig::parse("clientPort=abc\n", &[]).unwrap_err();
        assert!(
            e.to_string().contains("line 1") && e.to_string().contains("clientPort"),
            "{e}"
        );
    }

    #[test]
    fn system_properties() {
        let args: Vec<String> = [
            "-Dzookeeper.extendedTypesEnabled=true",
            "-Djute.maxbuffer=2000",
            "-Dfoo.bar=1",
            "zoo.cfg",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let (props, rest) = split_properties(&args);
        assert_eq!(rest, vec!["zoo.cfg".to_string()]);
        let c = ServerConfig::parse(
            "dataDir=/x\nDigestAuthenticationProvider.superDigest=super:abc\n",
            &props,
        )
        .unwrap();
        assert!(c.extended_types);
        assert_eq!(c.jute_max_buffer, 2000);
        assert_eq!(c.super_digest.as_deref(), Some("super:abc"));
        assert!(c.warnings.iter().any(|w| w.contains("foo.bar")));
        let c = ServerConfig::parse("dataDir=/x\n4lw.commands.whitelist=*\n", &[]).unwrap();
        assert_eq!(c.four_letter_whitelist.len(), ALL_FOUR_LETTER_WORDS.len());
    }

    #[test]
    fn linearizable_reads_from_file_or_property() {
        assert!(
            !ServerConfig::parse("dataDir=/x\n", &[])
                .unwrap()
                .linearizable_reads
        );
        let c = ServerConfig::parse("dataDir=/x\nlinearizableReads=true\n", &[]).unwrap();
        assert!(c.linearizable_reads);
        let props = vec![(
            "zookeeper.linearizableReads".to_string(),
            "true".to_string(),
        )];
        assert!(
            ServerConfig::parse("dataDir=/x\n", &props)
                .unwrap()
                .linearizable_reads
        );
    }

    #[test]
    fn server_threads_from_file_or_property() {
        let c = ServerConfig::parse("dataDir=/x\nserverThreads=3\n", &[]).unwrap();
        assert_eq!((c.server_threads, c.runtime_threads()), (Some(3), 3));
        let props = vec![("zookeeper.serverThreads".to_string(), "0".to_string())];
        let c = ServerConfig::parse("dataDir=/x\n", &props).unwrap();
        assert_eq!(c.runtime_threads(), 0);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        let e = ServerConfig::parse("dataDir=/x\nserverThreads=many\n", &[]).unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(
            ServerConfig::parse("dataDir=/x\n", &[])
                .unwrap()
                .runtime_threads(),
            cpus / 2
        );
    }

    #[test]
    fn data_dir_is_required() {
        let e = ServerConfig::parse("tickTime=2000\nclientPort=2181\n", &[]).unwrap_err();
        assert!(e.to_string().contains("dataDir is not set"), "{e}");
    }

    #[test]
    fn sasl_settings_as_apache_reads_them() {
        let dir = tempfile::tempdir().unwrap();
        let jaas = dir.path().join("jaas.conf");
        std::fs::write(
            &jaas,
            "Server { org.apache.zookeeper.server.auth.DigestLoginModule required \
             user_alice=\"secret\" user_super=\"file\"; };\n\
             Kerb { com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true; };\n\
             Client { org.apache.zookeeper.server.auth.DigestLoginModule required \
             username=\"a\" password=\"b\"; };\n",
        )
        .unwrap();
        let jaas_prop = (
            "java.security.auth.login.config".to_string(),
            jaas.display().to_string(),
        );
        let sasl = "dataDir=/x\nauthProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n";
        // zoo.cfg keys become zookeeper.* properties, as in Apache.
        let text = format!(
            "{sasl}superUser=alice\nsuperUser.2=bob\nenforce.auth.enabled=true\n\
             enforce.auth.schemes=sasl, digest\nSASLAuthenticationProvider.superPassword=pw\n"
        );
        let c = ServerConfig::parse(&text, std::slice::from_ref(&jaas_prop)).unwrap();
        assert!(c.sasl_provider);
        assert_eq!(c.sasl_users.as_ref().map(|u| u.len()), Some(2));
        assert_eq!(c.super_users, vec!["alice", "bob"]);
        assert_eq!(c.enforced_auth_schemes(), vec!["sasl", "digest"]);
        let dbg = format!("{c:?}");
        assert!(
            !dbg.contains("secret") && !dbg.contains("=pw") && !dbg.contains("\"pw\""),
            "{dbg}"
        );
        let c = ServerConfig::parse(&format!("{sasl}sessionRequireClientSASLAuth=true\n"), &[])
            .unwrap();
        assert_eq!(c.enforced_auth_schemes(), vec!["sasl"]);
        // Refusals name the setting.
        for (text, props, needle) in [
            // sasl enforced without its provider: Apache's "scheme sasl is not available".
            (
                "dataDir=/x\nenforce.auth.enabled=true\nenforce.auth.schemes=sasl\n".to_string(),
                vec![],
                "sasl is not available",
            ),
            (
                "dataDir=/x\nenforce.auth.enabled=true\n".to_string(),
                vec![],
                "enforce.auth.schemes must",
            ),
            (
                format!("{sasl}sasl.serverconfig=Kerb\n"),
                vec![jaas_prop.clone()],
                "useKeyTab=true without keyTab",
            ),
            (
                format!("{sasl}sasl.serverconfig=Nope\n"),
                vec![jaas_prop.clone()],
                "Nope",
            ),
            (
                format!("{sasl}java.security.auth.login.config={}\n", jaas.display()),
                vec![],
                "JVM property",
            ),
            (
                format!("{sasl}quorum.auth.enableSasl=true\n"),
                vec![],
                "QuorumServer and QuorumLearner",
            ),
        ] {
            let e = ServerConfig::parse(&text, &props).unwrap_err().to_string();
            assert!(e.contains(needle), "{needle}: {e}");
        }
        // A JAAS file without a Server section: no SASL server, as in Apache.
        let client_only = dir.path().join("client.conf");
        std::fs::write(&client_only, "Client { m required; };").unwrap();
        let c = ServerConfig::parse(
            sasl,
            &[(
                "java.security.auth.login.config".into(),
                client_only.display().to_string(),
            )],
        )
        .unwrap();
        assert!(c.sasl_users.is_none() && !c.warnings.is_empty());
    }

    #[test]
    fn protection_we_lack_fails_closed_naming_key_and_line() {
        let text =
            "dataDir=/x\nclientPort=2181\nsslQuorum=true\nssl.quorum.keyStore.location=/k.pem\n\
                    ssl.quorum.trustStore.location=/ca.pem\nssl.quorum.ocsp=true\n";
        let e = ServerConfig::parse(text, &[]).unwrap_err().to_string();
        assert!(e.contains("line 6") && e.contains("ssl.quorum.ocsp"), "{e}");
        let props = vec![("sslQuorum".to_string(), "true".to_string())];
        let e = ServerConfig::parse("dataDir=/x\n", &props)
            .unwrap_err()
            .to_string();
        assert!(e.contains("-DsslQuorum") && e.contains("zoo.cfg"), "{e}");
        let text =
            "dataDir=/x\nsecureClientPort=2281\nssl.keyStore.location=/k.pem\nssl.crl=true\n";
        let e = ServerConfig::parse(text, &[]).unwrap_err().to_string();
        assert!(e.contains("line 4") && e.contains("ssl.crl"), "{e}");
        let text = "dataDir=/x\nauthProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\nrequireClientAuthScheme=sasl\n";
        let e = ServerConfig::parse(text, &[]).unwrap_err().to_string();
        assert!(
            e.contains("line 3") && e.contains("requireClientAuthScheme"),
            "{e}"
        );
        let props = vec![(
            "java.security.auth.login.config".to_string(),
            "/etc/zk/jaas.conf".to_string(),
        )];
        let e = ServerConfig::parse("dataDir=/x\n", &props)
            .unwrap_err()
            .to_string();
        assert!(e.contains("-Djava.security.auth.login.config"), "{e}");
        // Switching protection off, or naming a provider we implement, asks for nothing.
        let text = "dataDir=/x\nsslQuorum=false\nauthProvider.1=org.apache.zookeeper.server.auth.DigestAuthenticationProvider\n";
        let c = ServerConfig::parse(text, &[]).unwrap();
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn quorum_tls_and_sasl_keys() {
        let text = "dataDir=/x\nsslQuorum=true\nportUnification=true\n\
                    ssl.quorum.keyStore.location=/k.p12\nssl.quorum.keyStore.password=pw\n\
                    ssl.quorum.trustStore.location=/t.pem\nssl.quorum.hostnameVerification=false\n\
                    ssl.quorum.enabledProtocols=TLSv1.3\nssl.keyStore.location=/client.pem\n";
        let c = ServerConfig::parse(text, &[]).unwrap();
        assert!(c.ssl_quorum && c.quorum_port_unification && c.quorum_tls_enabled());
        assert_eq!(
            c.quorum_ssl.key_store.location.as_deref(),
            Some(Path::new("/k.p12"))
        );
        assert!(!c.quorum_ssl.hostname_verification);
        assert_eq!(c.quorum_ssl.versions, vec![tls::TlsVersion::V13]);
        // The two prefixes do not mix.
        assert_eq!(
            c.ssl.key_store.location.as_deref(),
            Some(Path::new("/client.pem"))
        );
        assert!(c.ssl.hostname_verification && !c.tls_enabled());
        // Apache's -D form of the ssl.quorum keys.
        let props = vec![(
            "zookeeper.ssl.quorum.trustStore.location".to_string(),
            "/other.pem".to_string(),
        )];
        let c = ServerConfig::parse(text, &props).unwrap();
        assert_eq!(
            c.quorum_ssl.trust_store.location.as_deref(),
            Some(Path::new("/other.pem"))
        );
        // TLS on the quorum needs both stores; messages name the quorum keys.
        for (text, needle) in [
            (
                "dataDir=/x\nsslQuorum=true\n",
                "ssl.quorum.keyStore.location",
            ),
            (
                "dataDir=/x\nportUnification=true\nssl.quorum.keyStore.location=/k.pem\n",
                "ssl.quorum.trustStore.location",
            ),
            (
                "dataDir=/x\nsslQuorum=true\nssl.quorum.keyStore.location=/k\n\
                 ssl.quorum.trustStore.location=/t.pem\n",
                "ssl.quorum.keyStore.type",
            ),
            ("dataDir=/x\nsslQuorum=yes\n", "sslQuorum: 'yes'"),
            (
                "dataDir=/x\nssl.quorum.protocol=TLSv1.1\n",
                "ssl.quorum.protocol=TLSv1.1",
            ),
            (
                "dataDir=/x\nquorum.auth.serverRequireSasl=true\n",
                "quorum.auth.enableSasl is disabled",
            ),
        ] {
            let e = ServerConfig::parse(text, &[]).unwrap_err().to_string();
            assert!(e.contains(needle), "{needle}: {e}");
        }
        // Quorum SASL from the JAAS file named by the JVM property.
        let dir = tempfile::tempdir().unwrap();
        let jaas = dir.path().join("jaas.conf");
        std::fs::write(
            &jaas,
            "QuorumServer { org.apache.zookeeper.server.auth.DigestLoginModule required \
             user_peer=\"pw\"; };\nQuorumLearner { \
             org.apache.zookeeper.server.auth.DigestLoginModule required username=\"peer\" \
             password=\"pw\"; };\n",
        )
        .unwrap();
        let text = "dataDir=/x\nquorum.auth.enableSasl=true\nquorum.auth.learnerRequireSasl=true\n\
                    quorum.auth.serverRequireSasl=true\n";
        let props = vec![(
            "java.security.auth.login.config".to_string(),
            jaas.display().to_string(),
        )];
        let c = ServerConfig::parse(text, &props).unwrap();
        assert!(c.quorum_sasl.server_require && c.quorum_sasl.learner_require);
        assert_eq!(c.quorum_sasl.users.as_ref().map(|u| u.len()), Some(1));
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        // A service principal whose _HOST Apache would not replace is used as written,
        // with a warning.
        let c = ServerConfig::parse(
            &format!("{text}quorum.auth.kerberos.servicePrincipal=zkquorum/_HOST@EX.COM\n"),
            &props,
        )
        .unwrap();
        assert_eq!(c.quorum_sasl.service_principal, "zkquorum/_HOST@EX.COM");
        assert!(
            c.warnings
                .iter()
                .any(|w| w.contains("_HOST is replaced only")),
            "{:?}",
            c.warnings
        );
    }

    #[test]
    fn secure_client_port_and_ssl_keys() {
        let text = "dataDir=/x\nsecureClientPort=2281\nsecureClientPortAddress=127.0.0.1\n\
                    ssl.keyStore.location=/k.p12\nssl.keyStore.password=pw\n\
                    ssl.trustStore.location=/t.pem\nssl.clientAuth=want\n\
                    authProvider.x509=org.apache.zookeeper.server.auth.X509AuthenticationProvider\n";
        let props = vec![(
            "zookeeper.X509AuthenticationProvider.superUser".to_string(),
            "CN=admin,O=zk".to_string(),
        )];
        let c = ServerConfig::parse(text, &props).unwrap();
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        assert!(!c.plain_client_port, "only secureClientPort: no plain port");
        assert_eq!(
            c.secure_client_addr(),
            Some("127.0.0.1:2281".parse().unwrap())
        );
        assert_eq!(c.ssl.client_auth, tls::ClientAuth::Want);
        assert_eq!(c.ssl.key_store.password.as_deref(), Some("pw"));
        assert_eq!(c.ssl.x509_super_user.as_deref(), Some("CN=admin,O=zk"));
        let c = ServerConfig::parse(
            "dataDir=/x\nclientPort=2181\nclient.portUnification=true\n\
             ssl.keyStore.location=/k.pem\nssl.clientAuth=none\n",
            &[],
        )
        .unwrap();
        assert!(c.plain_client_port && c.port_unification && c.secure_client_port.is_none());
        // TLS asked for without a keystore names the missing key.
        let e = ServerConfig::parse("dataDir=/x\nsecureClientPort=2281\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("ssl.keyStore.location"), "{e}");
        // A value we cannot honour names key and line.
        let e = ServerConfig::parse(
            "dataDir=/x\nssl.keyStore.location=/k.pem\nssl.enabledProtocols=TLSv1.1\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("line 3") && e.contains("TLSv1.1"), "{e}");
    }
}
