//! Watches: one-shot data/exist/child, persistent and persistent-recursive.

pub mod manager;

pub use manager::{WatchKind, WatchManager, WatchMode};
