//! Watches: the event type, the client-side registry, and the futures and streams that
//! deliver events.
//!
//! Three ways to watch, all re-registered on every reconnect so none is lost on failover:
//! - `watch: bool` on `get_data`/`exists`/`get_children` (Java's default watcher): one-shot,
//!   delivered on [`crate::Client::events`];
//! - `*_watched` calls: one-shot, delivered to the returned [`WatchFuture`];
//! - [`crate::Client::add_watch`]: persistent or persistent-recursive, a [`PersistentWatch`]
//!   stream until removed with [`crate::Client::remove_watches`].

pub mod registry;
mod stream;

pub use stream::{EventStream, PersistentWatch, WatchFuture};

use zk_proto::EventType;

use crate::state::SessionState;

/// A watch notification or a state change.
///
/// State changes have `event_type == EventType::None` and an empty path; node events carry
/// the path relative to the chroot.
///
/// ```
/// use zk_client::{EventType, SessionState, WatchedEvent};
/// let ev = WatchedEvent::state_change(SessionState::Disconnected);
/// assert_eq!(ev.event_type, EventType::None);
/// assert!(ev.path.is_empty());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedEvent {
    /// What happened.
    pub event_type: EventType,
    /// Session state when it was delivered.
    pub state: SessionState,
    /// Node path (chroot removed), empty for state changes.
    pub path: String,
}

impl WatchedEvent {
    /// A state-change event.
    pub fn state_change(state: SessionState) -> Self {
        WatchedEvent {
            event_type: EventType::None,
            state,
            path: String::new(),
        }
    }
}
