//! One ensemble member started from zoo.cfg (`server.N` lines and `myid`), as the
//! `zk-server` binary runs it: the same [`Node`] the in-process ensemble uses, with its
//! txn log in `dataLogDir` and its epoch files in `dataDir`.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use super::node::{Node, NodeSetup};
use super::replica::NodeDisk;
use crate::config::ServerConfig;
use crate::core::processor::CoreSettings;
use crate::error::{Result, ServerError};
use crate::host::client::listener::ClientPorts;
use crate::host::client::tls::PeerNames;
use crate::host::quorum::driver::PeerAddrs;
use crate::host::quorum::QuorumSecurity;
use crate::storage::Autopurge;
use crate::zab::{QuorumConfig, QuorumServer, Sid};

fn config_error(message: String) -> ServerError {
    ServerError::Config {
        line: None,
        message,
    }
}

async fn resolve(addr: &str) -> Result<SocketAddr> {
    tokio::net::lookup_host(addr)
        .await
        .map_err(|e| ServerError::io(format!("resolving {addr}"), e))?
        .next()
        .ok_or_else(|| config_error(format!("{addr} resolves to no address")))
}

/// Whether `config` describes an ensemble (two or more `server.N` lines, or one with
/// `standaloneEnabled=false`: a quorum of one that reconfig can grow) rather than a
/// standalone server.
pub fn is_ensemble(config: &ServerConfig) -> bool {
    config.servers.len() >= 2 || (!config.standalone_enabled && !config.servers.is_empty())
}

/// The quorum config of this member (`myid`) from the `server.N` lines.
pub fn quorum_config(config: &ServerConfig) -> Result<QuorumConfig> {
    let servers = config
        .servers
        .iter()
        .map(|(sid, v)| QuorumServer::parse(*sid as Sid, v))
        .collect::<Result<Vec<_>>>()?;
    let me = config.my_id as Sid;
    if !servers.iter().any(|s| s.sid == me) {
        return Err(config_error(format!(
            "myid {} in {} names no server.N line",
            config.my_id,
            config.data_dir.display()
        )));
    }
    let mut q = QuorumConfig::new(me, servers);
    q.tick_time = u64::from(config.tick_time);
    q.init_limit = u64::from(config.init_limit);
    q.sync_limit = u64::from(config.sync_limit);
    q.committed_log_size = config.commit_log_count.max(1);
    q.txn_log_sync = config.snapshot_size_factor >= 0.0;
    q.version = config.config_version.unwrap_or(0);
    q.reconfig_enabled = config.reconfig_enabled;
    q.standalone_enabled = config.standalone_enabled;
    Ok(q)
}

/// How the links with the other members are secured, for the start-up line.
fn quorum_links(config: &ServerConfig) -> String {
    let tls = match (config.ssl_quorum, config.quorum_port_unification) {
        (true, false) => "TLS",
        (true, true) => "TLS, plaintext accepted (portUnification)",
        (false, true) => "plaintext, TLS accepted (portUnification)",
        (false, false) => "plaintext",
    };
    let q = &config.quorum_sasl;
    let sasl = match (q.enabled, q.learner_require, q.server_require) {
        (false, ..) => "",
        (true, _, true) => ", quorum SASL required",
        (true, true, false) => ", quorum SASL login, not required",
        (true, false, false) => ", quorum SASL accepted, not required",
    };
    format!("member links: {tls}{sasl}")
}

/// Starts this process as member `myid` of the ensemble in `config`: binds its election
/// and quorum ports (from its `server.N` line) and its client port (the line's
/// `;clientPort`, else `clientPort`), and recovers its disk (autopurged per
/// `autopurge.snapRetainCount` / `autopurge.purgeInterval`, as Apache's QuorumPeerMain).
pub async fn start_member(config: &ServerConfig) -> Result<Node> {
    let quorum = quorum_config(config)?;
    let mut election = BTreeMap::new();
    let mut quorum_addrs = BTreeMap::new();
    for s in quorum.servers.values() {
        election.insert(s.sid, resolve(&s.election_addr()).await?);
        quorum_addrs.insert(s.sid, resolve(&s.quorum_addr()).await?);
    }
    let mut names = PeerNames::default();
    for s in quorum.servers.values() {
        if let (Some(e), Some(q)) = (election.get(&s.sid), quorum_addrs.get(&s.sid)) {
            names.add(e.ip(), &s.host);
            names.add(q.ip(), &s.host);
        }
    }
    // Before any port is bound: stores that cannot be read stop the member.
    let security =
        QuorumSecurity::from_config(config, names).map_err(|message| ServerError::Config {
            line: None,
            message: format!("quorum security: {message}; refusing to start"),
        })?;
    for s in quorum.servers.values() {
        security.set_member_host(s.sid, &s.host);
    }
    let me = quorum.my_sid;
    let (Some(my_election), Some(my_quorum), Some(my_server)) = (
        election.get(&me).copied(),
        quorum_addrs.get(&me).copied(),
        quorum.servers.get(&me),
    ) else {
        return Err(config_error(format!("no server.{me} line")));
    };
    let plain = match &my_server.client_addr {
        Some(a) => Some(resolve(a).await?),
        None => config.plain_client_port.then(|| config.client_addr()),
    };
    let bind = |addr: SocketAddr| async move {
        crate::host::bind(addr)
            .await
            .map_err(|e| ServerError::io(format!("binding {addr}"), e))
    };
    let client = ClientPorts::bind(config, plain, true).await?;
    let election_listener = bind(my_election).await?;
    let quorum_listener = bind(my_quorum).await?;
    let http = crate::host::http::HttpEndpoints::bind(config, true).await?;
    let disk = NodeDisk::open_split(&config.data_dir, &config.data_log_dir)?;
    disk.set_snap_count(config.snap_count);
    disk.set_fsync_warning(config.fsync_warning_ms);
    disk.set_autopurge(Autopurge::from_config(config));
    let settings = CoreSettings::from_config(config);
    let show = |a: Option<SocketAddr>| a.map(|a| a.to_string()).unwrap_or("-".into());
    tracing::info!(
        "ensemble member {me}: clients on {} (TLS on {}), election on {my_election}, quorum on \
         {my_quorum} ({})",
        show(client.plain_addr()),
        show(client.secure_addr()),
        quorum_links(config)
    );
    if let Some(sasl) = security.describe_sasl() {
        tracing::info!("{sasl}");
    }
    let mut node = Node::start_configured(
        NodeSetup {
            quorum,
            settings,
            disk,
            client,
            election: election_listener,
            quorum_listener,
            addrs: PeerAddrs {
                election,
                quorum: quorum_addrs,
                security,
            },
        },
        config.clone(),
    );
    node.serve_http(http);
    Ok(node)
}
