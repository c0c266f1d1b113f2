//! The one error type of the server crate.

use std::path::PathBuf;

use thiserror::Error;
use zk_proto::{ErrorCode, ProtoError};

/// Everything that can go wrong inside the server. Request-level failures that clients see
/// are [`ServerError::Zk`], carrying the exact ZooKeeper code Apache would answer.
#[derive(Debug, Error)]
pub enum ServerError {
    /// A request failed with a ZooKeeper error code (sent to the client as is).
    #[error("request failed: {0}")]
    Zk(ErrorCode),
    /// Malformed bytes from a peer.
    #[error("protocol error: {0}")]
    Proto(#[from] ProtoError),
    /// A configuration problem, naming the offending line when there is one.
    #[error("config error{}: {message}", line.map(|l| format!(" at line {l}")).unwrap_or_default())]
    Config {
        /// 1-based line number in zoo.cfg.
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },
    /// An I/O error, with what we were doing.
    #[error("{context}: {source}")]
    Io {
        /// What was being done (e.g. "fsync txn log /data/version-2/log.100000001").
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A file on disk failed validation (bad magic, checksum, truncated record).
    #[error("corrupt {file}: {reason}")]
    Corrupt {
        /// The file.
        file: PathBuf,
        /// What failed.
        reason: String,
    },
    /// The txn log no longer holds every txn after `after` (older logs were purged), so a
    /// learner must be synced with a snapshot instead of a diff.
    #[error("txn log does not reach back to zxid {after:#x}")]
    TxnsUnavailable {
        /// The zxid the caller asked to continue from.
        after: i64,
    },
    /// Storage refused an operation: misuse (zxids not increasing) or an earlier failed fsync,
    /// after which the log's on-disk state is unknown and the server must restart.
    #[error("storage: {0}")]
    Storage(String),
    /// The ensemble layer failed (election, sync with the leader...).
    #[error("quorum: {0}")]
    Quorum(String),
    /// An HTTP endpoint (the AdminServer, `/metrics`) could not listen, naming the key
    /// that sets its port.
    #[error("{key}: cannot serve {what} on {addr}: {source}")]
    Endpoint {
        /// The config key of the port (`admin.serverPort`, `metricsProvider.httpPort`).
        key: &'static str,
        /// What would have listened there.
        what: &'static str,
        /// The address.
        addr: std::net::SocketAddr,
        /// Why it could not.
        #[source]
        source: std::io::Error,
    },
    /// The server is shutting down.
    #[error("server is shutting down")]
    ShuttingDown,
}

impl ServerError {
    /// Builds an I/O error with context.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        ServerError::Io {
            context: context.into(),
            source,
        }
    }

    /// The code a client sees for this failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            ServerError::Zk(c) => *c,
            ServerError::Proto(_) => ErrorCode::MarshallingError,
            _ => ErrorCode::SystemError,
        }
    }
}

impl From<ErrorCode> for ServerError {
    fn from(c: ErrorCode) -> Self {
        ServerError::Zk(c)
    }
}

/// Result alias for the server crate.
pub type Result<T, E = ServerError> = std::result::Result<T, E>;
