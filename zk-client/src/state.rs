//! The session's connection state as the user sees it.

use zk_proto::KeeperState;

/// Session state, published on [`crate::Client::state_watch`] and, losslessly, as
/// `EventType::None` events on [`crate::Client::events`].
///
/// `Expired`, `AuthFailed` and `Closed` are terminal: the client never leaves them.
///
/// ```
/// use zk_client::SessionState;
/// assert!(SessionState::ConnectedReadOnly.is_connected());
/// assert!(SessionState::Expired.is_terminal());
/// assert!(!SessionState::Disconnected.is_terminal());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionState {
    /// Not connected (initially, and between connections); requests wait for a connection.
    Disconnected,
    /// Connected to a read-write server.
    Connected,
    /// Connected to a read-only server (only when allowed); writes fail with `NotReadOnly`.
    ConnectedReadOnly,
    /// The session expired. Terminal.
    Expired,
    /// Authentication failed. Terminal.
    AuthFailed,
    /// The client was closed. Terminal.
    Closed,
}

impl SessionState {
    /// True when requests can be sent.
    pub fn is_connected(self) -> bool {
        matches!(
            self,
            SessionState::Connected | SessionState::ConnectedReadOnly
        )
    }

    /// True for the states a session never leaves.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            SessionState::Expired | SessionState::AuthFailed | SessionState::Closed
        )
    }

    /// The Java `KeeperState` of this state.
    pub fn keeper_state(self) -> KeeperState {
        match self {
            SessionState::Disconnected => KeeperState::Disconnected,
            SessionState::Connected => KeeperState::SyncConnected,
            SessionState::ConnectedReadOnly => KeeperState::ConnectedReadOnly,
            SessionState::Expired => KeeperState::Expired,
            SessionState::AuthFailed => KeeperState::AuthFailed,
            SessionState::Closed => KeeperState::Closed,
        }
    }
}
