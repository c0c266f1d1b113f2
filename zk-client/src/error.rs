//! The one error type of the client: server codes, connection trouble and misuse.

use zk_proto::{ErrorCode, ProtoError};

use crate::multi::OpResult;

/// Everything a client call can fail with.
///
/// Server answers map to their own variants ([`Error::NoNode`], [`Error::BadVersion`], ...;
/// rarer codes land in [`Error::Server`]); the ones about a node carry its `path`, so
/// `Error: no node: /app/cfg` says which node. Match them with `Error::NoNode { .. }` or
/// by code (`err.code() == Some(ErrorCode::NoNode)`); connection trouble is [`Error::ConnectionLoss`],
/// [`Error::SessionExpired`], [`Error::Timeout`]; misuse ([`Error::InvalidPath`],
/// [`Error::DataTooLarge`], [`Error::BadArgument`]) is rejected before anything is sent.
///
/// ```
/// use zk_client::Error;
/// use zk_proto::ErrorCode;
/// let e = Error::from_code_at(ErrorCode::NoNode, "/app/cfg");
/// assert!(matches!(e, Error::NoNode { .. }));
/// assert_eq!(e.code(), Some(ErrorCode::NoNode));
/// assert_eq!(e.path(), Some("/app/cfg"));
/// assert_eq!(e.to_string(), "no node: /app/cfg");
/// assert!(Error::ConnectionLoss.is_retryable());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The node does not exist.
    #[error("no node{}", at(.path))]
    NoNode {
        /// The request's path (chroot removed); empty when unknown (e.g. [`Error::from_code`]).
        path: String,
    },
    /// The node already exists.
    #[error("node exists{}", at(.path))]
    NodeExists {
        /// The request's path (chroot removed); empty when unknown (e.g. [`Error::from_code`]).
        path: String,
    },
    /// The expected version did not match.
    #[error("bad version{}", at(.path))]
    BadVersion {
        /// The request's path (chroot removed); empty when unknown (e.g. [`Error::from_code`]).
        path: String,
    },
    /// The node has children.
    #[error("node not empty{}", at(.path))]
    NotEmpty {
        /// The request's path (chroot removed); empty when unknown (e.g. [`Error::from_code`]).
        path: String,
    },
    /// The ACL forbids the operation.
    #[error("not authorized{}", at(.path))]
    NoAuth {
        /// The request's path (chroot removed); empty when unknown (e.g. [`Error::from_code`]).
        path: String,
    },
    /// Ephemeral nodes cannot have children.
    #[error("ephemeral nodes cannot have children{}", at(.path))]
    NoChildrenForEphemerals {
        /// The request's path (chroot removed); empty when unknown (e.g. [`Error::from_code`]).
        path: String,
    },
    /// The ACL is invalid (e.g. `auth` scheme without any credentials).
    #[error("invalid ACL")]
    InvalidAcl,
    /// The server does not implement the operation (e.g. TTL nodes disabled).
    #[error("operation not implemented by the server")]
    Unimplemented,
    /// The server rejected an argument.
    #[error("server rejected the arguments")]
    BadArguments,
    /// No such watch on the server (remove_watches / check_watches).
    #[error("no such watch")]
    NoWatcher,
    /// A write reached a read-only server.
    #[error("server is read-only")]
    NotReadOnly,
    /// Another server code.
    #[error("server error {0}")]
    Server(ErrorCode),
    /// The connection dropped while the request was in flight; it may or may not have been
    /// applied. Nothing is replayed.
    #[error("connection lost")]
    ConnectionLoss,
    /// The session expired (reported by the server or by the client after being disconnected
    /// for longer than the session timeout). Terminal: create a new client.
    #[error("session expired")]
    SessionExpired,
    /// Authentication failed; the session is unusable. Terminal.
    #[error("authentication failed")]
    AuthFailed,
    /// Authentication failed on `host`, with the reason (the server's answer, or what the
    /// client found wrong in the exchange). Terminal, like [`Error::AuthFailed`]; the
    /// session's state is `AuthFailed`.
    #[error("authentication with {host} failed: {reason}")]
    Auth {
        /// The server that refused.
        host: String,
        /// Why.
        reason: String,
    },
    /// No connection could be established in time; the last attempt's host and cause
    /// (refused, TLS handshake failure, dropped during the handshake...).
    #[error("cannot connect to {host}: {cause}")]
    Connect {
        /// Host of the last attempt.
        host: String,
        /// Why it failed.
        cause: String,
    },
    /// A setting could not be used (unreadable PEM, malformed JAAS file...); nothing was
    /// sent.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// The request waited for a connection longer than its deadline.
    #[error("timed out waiting for a connection")]
    Timeout,
    /// The client was closed.
    #[error("client closed")]
    Closed,
    /// A path failed validation (nothing was sent).
    #[error("invalid path {path:?}: {reason}")]
    InvalidPath {
        /// The offending path.
        path: String,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// The request would exceed the server's frame limit (nothing was sent).
    #[error("request of {len} bytes exceeds the limit of {max}")]
    DataTooLarge {
        /// Encoded request length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Another misuse caught before sending (e.g. a TTL mode without a TTL).
    #[error("bad argument: {0}")]
    BadArgument(&'static str),
    /// The server sent something that could not be decoded.
    #[error("protocol error: {0}")]
    Protocol(#[from] ProtoError),
    /// A multi was aborted: `index` is the failing op, `results` the per-op results.
    #[error("multi aborted at op {index}: {source}")]
    Multi {
        /// Index of the op that failed.
        index: usize,
        /// Its error.
        source: Box<Error>,
        /// Every op's result (failing op: its code, others Ok / RuntimeInconsistency).
        results: Vec<OpResult>,
    },
}

/// `": <path>"` for the messages of path-carrying variants, nothing when the path is unknown.
fn at(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!(": {path}")
    }
}

impl Error {
    /// Maps a non-zero server code; path-carrying variants get an empty path (see
    /// [`Error::from_code_at`]).
    pub fn from_code(code: ErrorCode) -> Error {
        Error::from_code_at(code, "")
    }

    /// Maps a non-zero server code answered for a request on `path` (as the caller wrote
    /// it, chroot removed), so the message names the node.
    pub fn from_code_at(code: ErrorCode, path: &str) -> Error {
        let path = path.to_owned();
        match code {
            ErrorCode::NoNode => Error::NoNode { path },
            ErrorCode::NodeExists => Error::NodeExists { path },
            ErrorCode::BadVersion => Error::BadVersion { path },
            ErrorCode::NotEmpty => Error::NotEmpty { path },
            ErrorCode::NoAuth => Error::NoAuth { path },
            ErrorCode::NoChildrenForEphemerals => Error::NoChildrenForEphemerals { path },
            ErrorCode::InvalidAcl => Error::InvalidAcl,
            ErrorCode::Unimplemented => Error::Unimplemented,
            ErrorCode::BadArguments => Error::BadArguments,
            ErrorCode::NoWatcher => Error::NoWatcher,
            ErrorCode::NotReadOnly => Error::NotReadOnly,
            ErrorCode::ConnectionLoss => Error::ConnectionLoss,
            ErrorCode::SessionExpired => Error::SessionExpired,
            ErrorCode::AuthFailed => Error::AuthFailed,
            other => Error::Server(other),
        }
    }

    /// The node a server answer was about, when the error carries one.
    pub fn path(&self) -> Option<&str> {
        match self {
            Error::NoNode { path }
            | Error::NodeExists { path }
            | Error::BadVersion { path }
            | Error::NotEmpty { path }
            | Error::NoAuth { path }
            | Error::NoChildrenForEphemerals { path }
            | Error::InvalidPath { path, .. } => {
                Some(path).filter(|p| !p.is_empty()).map(|p| p.as_str())
            }
            Error::Multi { source, .. } => source.path(),
            _ => None,
        }
    }

    /// The ZooKeeper code this error corresponds to, if any. Matching on the code is
    /// independent of the path: `err.code() == Some(ErrorCode::NoNode)`.
    pub fn code(&self) -> Option<ErrorCode> {
        Some(match self {
            Error::NoNode { .. } => ErrorCode::NoNode,
            Error::NodeExists { .. } => ErrorCode::NodeExists,
            Error::BadVersion { .. } => ErrorCode::BadVersion,
            Error::NotEmpty { .. } => ErrorCode::NotEmpty,
            Error::NoAuth { .. } => ErrorCode::NoAuth,
            Error::NoChildrenForEphemerals { .. } => ErrorCode::NoChildrenForEphemerals,
            Error::InvalidAcl => ErrorCode::InvalidAcl,
            Error::Unimplemented => ErrorCode::Unimplemented,
            Error::BadArguments | Error::InvalidPath { .. } | Error::BadArgument(_) => {
                ErrorCode::BadArguments
            }
            Error::NoWatcher => ErrorCode::NoWatcher,
            Error::NotReadOnly => ErrorCode::NotReadOnly,
            Error::Server(c) => *c,
            Error::ConnectionLoss => ErrorCode::ConnectionLoss,
            Error::SessionExpired => ErrorCode::SessionExpired,
            Error::AuthFailed | Error::Auth { .. } => ErrorCode::AuthFailed,
            Error::Connect { .. } => ErrorCode::ConnectionLoss,
            Error::InvalidConfig(_) => ErrorCode::BadArguments,
            Error::Timeout => ErrorCode::OperationTimeout,
            Error::Protocol(_) => ErrorCode::MarshallingError,
            Error::Multi { source, .. } => return source.code(),
            Error::Closed | Error::DataTooLarge { .. } => return None,
        })
    }

    /// True for transient connection trouble after which the same call may succeed
    /// (check whether a non-idempotent write was applied first).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::ConnectionLoss | Error::Timeout | Error::Connect { .. }
        )
    }

    /// True when the session is gone for good and a new client is needed.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Error::SessionExpired | Error::AuthFailed | Error::Auth { .. } | Error::Closed
        )
    }
}

/// Result alias of the client.
pub type Result<T, E = Error> = std::result::Result<T, E>;
