//! The embeddable server: [`Server::start`] gives a [`ServerHandle`] with the bound address
//! and [`ServerHandle::stop`].
//!
//! A standalone server is a node without a peer ([`Node::start_standalone`]): the
//! listener and one task per connection (see [`crate::host::client`]); the node task
//! owning the [`crate::Processor`]; the disk thread that appends each batch of proposed
//! txns with a single fsync (group commit: whatever is proposed while a batch is being
//! written forms the next batch), writes snapshots and purges.
//!
//! ```no_run
//! # async fn demo(dir: &std::path::Path) -> zk_server::Result<()> {
//! use zk_server::{Server, ServerConfig};
//! // Loopback, port 0, short tick, every four-letter word allowed.
//! let server = Server::start(ServerConfig::for_tests(dir)).await?;
//! let connect_string = server.connect_string(); // "127.0.0.1:PORT"
//! # let _ = connect_string;
//! server.stop().await?; // acknowledged writes are on disk
//! let again = Server::start(ServerConfig::for_tests(dir)).await?; // same data, same sessions
//! again.stop().await
//! # }
//! ```

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::ServerConfig;
use crate::error::{Result, ServerError};
use crate::host::client::listener::ClientPorts;
use crate::host::http::HttpEndpoints;
use crate::host::member::node::Node;
use crate::state::database::ZkDatabase;
use crate::storage::{MemoryStore, NodeDisk};

/// Current wall clock in ms.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Builds and starts servers.
pub struct Server;

/// A running server.
pub struct ServerHandle {
    addr: SocketAddr,
    secure_addr: Option<SocketAddr>,
    admin_addr: Option<SocketAddr>,
    metrics_addr: Option<SocketAddr>,
    node: Option<Node>,
    config: ServerConfig,
}

impl Server {
    /// Starts a server persisting to `config.data_dir` / `config.data_log_dir`.
    pub async fn start(config: ServerConfig) -> Result<ServerHandle> {
        if config.data_dir.as_os_str().is_empty() || config.data_log_dir.as_os_str().is_empty() {
            return Err(ServerError::Config {
                line: None,
                message: "dataDir is not set".into(),
            });
        }
        Self::start_on(config, |c| NodeDisk::open_configured(c, 0)).await
    }

    /// Starts a server over an in-memory store (durable only within this process: pass the
    /// same [`MemoryStore`] again to "restart").
    pub async fn start_in_memory(config: ServerConfig, store: MemoryStore) -> Result<ServerHandle> {
        Self::start_on(config, move |c| {
            let disk = store.disk();
            disk.set_snap_count(c.snap_count);
            disk.set_snap_size_limit(c.snap_size_limit_kb.saturating_mul(1024));
            Ok(disk)
        })
        .await
    }

    /// Starts a server over the disk `open` returns.
    async fn start_on(
        config: ServerConfig,
        open: impl FnOnce(&ServerConfig) -> Result<NodeDisk>,
    ) -> Result<ServerHandle> {
        // Bind first: a server that cannot take its port (or read its TLS stores) must
        // leave dataDir untouched.
        let plain = config.plain_client_port.then(|| config.client_addr());
        let ports = ClientPorts::bind(&config, plain, false).await?;
        let http = HttpEndpoints::bind(&config, false).await?;
        let disk = open(&config)?;
        let secure_addr = ports.secure_addr();
        let addr = ports.plain_addr().or(secure_addr).ok_or_else(|| {
            ServerError::io(
                "reading the bound address",
                std::io::ErrorKind::Other.into(),
            )
        })?;
        let mut config = config;
        if let Some(a) = ports.plain_addr() {
            config.client_port = a.port();
        }
        if let Some(a) = secure_addr {
            config.secure_client_port = Some(a.port());
            tracing::info!("zk-server serving TLS clients on {a}");
        }
        let (admin_addr, metrics_addr) = (http.admin_addr(), http.metrics_addr());
        if let Some(a) = admin_addr {
            config.admin.port = a.port();
        }
        if let (Some(m), Some(a)) = (config.metrics.as_mut(), metrics_addr) {
            m.port = a.port();
        }
        let mut node = Node::start_standalone(disk, ports, config.clone());
        node.serve_http(http);
        tracing::info!("zk-server listening on {addr}");
        Ok(ServerHandle {
            addr,
            secure_addr,
            admin_addr,
            metrics_addr,
            node: Some(node),
            config,
        })
    }
}

impl ServerHandle {
    /// The address clients connect to: the plain (or unified) port, else the TLS one.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The TLS-only client port (`secureClientPort`), if configured.
    pub fn secure_addr(&self) -> Option<SocketAddr> {
        self.secure_addr
    }

    /// The AdminServer's address (`admin.enableServer`, on by default as in Apache; off
    /// in [`ServerConfig::for_tests`]).
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// The Prometheus `/metrics` address (`metricsProvider.className`).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// Resolves once the server stopped serving because its txn log could not be made
    /// durable (disk trouble, logged as an ERROR): call [`ServerHandle::stop`] then. The
    /// `zk-server` binary exits with code 1.
    pub async fn failed(&self) {
        match &self.node {
            Some(n) => n.failed().await,
            None => std::future::pending().await,
        }
    }

    /// Whether [`ServerHandle::failed`] has resolved.
    pub fn has_failed(&self) -> bool {
        self.node.as_ref().is_some_and(Node::has_failed)
    }

    /// `host:port` connect string.
    pub fn connect_string(&self) -> String {
        self.addr.to_string()
    }

    /// The effective configuration (with the real port).
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Test kit: the next write gets zxid counter `counter` (in the current epoch), to
    /// test what happens when the 32-bit counter runs out. `None` when writes are in
    /// flight or the counter would move back. Not a config key: Apache has none.
    pub async fn seed_zxid_counter(&self, counter: u32) -> Option<i64> {
        self.node.as_ref()?.seed_zxid_counter(counter).await
    }

    /// Stops accepting, closes every connection, waits for in-flight txns to be durable.
    pub async fn stop(mut self) -> Result<()> {
        if let Some(n) = self.node.take() {
            n.stop().await;
        }
        Ok(())
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if let Some(n) = self.node.take() {
            n.stop_in_background();
        }
    }
}

/// Opens a fresh in-memory database (used when nothing was persisted).
pub fn empty_database() -> ZkDatabase {
    ZkDatabase::new()
}
