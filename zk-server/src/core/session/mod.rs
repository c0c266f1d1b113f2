//! Sessions: ids, passwords, tick-bucket expiry, and (in an ensemble) which member a
//! session is attached to.

pub mod expiry;
pub mod owner;
pub mod password;
pub mod tracker;

pub use owner::{Owner, SessionOwners};
pub use password::session_password;
pub use tracker::SessionTracker;
