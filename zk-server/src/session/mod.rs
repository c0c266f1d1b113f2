//! Sessions: ids, passwords, tick-bucket expiry.

pub mod expiry;
pub mod password;
pub mod tracker;

pub use password::session_password;
pub use tracker::SessionTracker;
