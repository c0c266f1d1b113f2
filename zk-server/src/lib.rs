//! A ZooKeeper server: standalone or as an ensemble member, wire- and disk-compatible with
//! Apache ZooKeeper 3.8, and embeddable in-process for tests.
#![deny(missing_docs)]

pub mod error;
pub mod persistence;
pub mod quorum;

pub use error::{Result, ServerError};
