//! One standalone server for tests and examples, owning its data directory.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let server = zk_server::testkit::TestServer::start().await?;
//! let hosts = server.connect_string(); // "127.0.0.1:<port>"
//! # let _ = hosts;
//! server.stop().await?;
//! # Ok(()) }
//! ```

use std::net::SocketAddr;

use crate::config::ServerConfig;
use crate::error::{Result, ServerError};
use crate::host::server::{Server, ServerHandle};

/// tickTime of [`TestServer`]: short, so that expiry tests need not wait long.
pub const TICK_MS: u32 = 200;
/// Smallest session timeout a [`TestServer`] grants (two ticks, ZooKeeper's rule).
pub const MIN_SESSION_TIMEOUT_MS: i32 = 2 * TICK_MS as i32;
/// Largest session timeout a [`TestServer`] grants: a minute, so a client asking for the
/// usual 10–30 s gets it (ZooKeeper's default cap, 20 ticks, would be 4 s here).
pub const MAX_SESSION_TIMEOUT_MS: i32 = 60_000;

/// A standalone zk-server on a free loopback port, persisting to a temp dir it owns and
/// deletes when dropped.
///
/// Defaults: tickTime [`TICK_MS`] (200 ms), session timeouts granted between
/// [`MIN_SESSION_TIMEOUT_MS`] (400 ms) and [`MAX_SESSION_TIMEOUT_MS`] (60 s), every
/// four-letter word enabled, no TLS, no authentication. Use [`TestServer::start_with`] to
/// change any of it.
pub struct TestServer {
    handle: ServerHandle,
    // Dropped after `handle` (field order): the server never outlives its files.
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// The configuration [`TestServer::start`] uses, for a server persisting to `dir`.
    pub fn config(dir: &std::path::Path) -> ServerConfig {
        let mut c = ServerConfig::for_tests(dir);
        c.tick_time = TICK_MS;
        c.min_session_timeout = MIN_SESSION_TIMEOUT_MS;
        c.max_session_timeout = MAX_SESSION_TIMEOUT_MS;
        c
    }

    /// Starts a server with the defaults above.
    pub async fn start() -> Result<TestServer> {
        Self::start_with(|_| {}).await
    }

    /// Starts a server with the defaults above, adjusted by `tune` (e.g. a smaller
    /// `max_session_timeout` for an expiry test).
    pub async fn start_with(tune: impl FnOnce(&mut ServerConfig)) -> Result<TestServer> {
        let dir = tempfile::tempdir().map_err(|e| ServerError::Config {
            line: None,
            message: format!("cannot create a temp dir: {e}"),
        })?;
        let mut config = Self::config(dir.path());
        tune(&mut config);
        let handle = Server::start(config).await?;
        Ok(TestServer { handle, _dir: dir })
    }

    /// `127.0.0.1:<port>`, for `Client::connect`.
    pub fn connect_string(&self) -> String {
        self.handle.connect_string()
    }

    /// The client port's address.
    pub fn addr(&self) -> SocketAddr {
        self.handle.local_addr()
    }

    /// The effective configuration (with the real port).
    pub fn server_config(&self) -> &ServerConfig {
        self.handle.config()
    }

    /// The running server's handle (addresses, [`ServerHandle::failed`]).
    pub fn handle(&self) -> &ServerHandle {
        &self.handle
    }

    /// Stops the server (connections closed, in-flight txns durable), then deletes its
    /// directory.
    pub async fn stop(self) -> Result<()> {
        let TestServer { handle, _dir } = self;
        handle.stop().await
    }
}
