//! The one error type of the recipes.

use zk_client::ErrorCode;

/// Everything a recipe call can fail with.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// A ZooKeeper call failed (after the recipe's own retries of transient errors).
    #[error("zookeeper: {0}")]
    Zk(#[from] zk_client::Error),
    /// Node data could not be decoded into the expected type.
    #[error("cannot decode {path}: {reason}")]
    Decode {
        /// The node.
        path: String,
        /// Why.
        reason: String,
    },
    /// A value could not be encoded.
    #[error("cannot encode value: {0}")]
    Encode(String),
    /// The recipe (or its [`crate::Session`]) was closed.
    #[error("recipe closed")]
    Closed,
    /// A wait gave up after its deadline.
    #[error("timed out")]
    Timeout,
    /// The session that held an ephemeral lock, lease or leadership expired.
    #[error("session lost while holding {0}")]
    SessionLost(String),
    /// A downstream [`crate::fencing::Fence`] refused a token lower than one it already
    /// accepted: the holder that presented it has been superseded.
    #[error("stale fencing token {presented}: {accepted} already accepted")]
    StaleToken {
        /// The refused token.
        presented: crate::fencing::FencingToken,
        /// The greatest token accepted so far.
        accepted: crate::fencing::FencingToken,
    },
    /// Misuse, e.g. a semaphore opened with a different lease count than stored.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl Error {
    /// The ZooKeeper code this error maps to, if any (for callers speaking ZooKeeper codes).
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Error::Zk(e) => e.code(),
            Error::Timeout => Some(ErrorCode::OperationTimeout),
            Error::SessionLost(_) => Some(ErrorCode::SessionExpired),
            Error::InvalidArgument(_) => Some(ErrorCode::BadArguments),
            Error::Decode { .. } | Error::Encode(_) => Some(ErrorCode::MarshallingError),
            Error::Closed | Error::StaleToken { .. } => None,
        }
    }
}

/// Result alias of the recipes.
pub type Result<T, E = Error> = std::result::Result<T, E>;
