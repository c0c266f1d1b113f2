//! What operators see: counters, the four-letter words, the AdminServer's commands and the
//! Prometheus metrics, in Apache's shapes.
//!
//! - [`stats`]: latency summaries, per-connection and per-server counters.
//! - [`four_letter`]: rendering `srvr`, `stat`, `mntr`, `conf`, `cons`, `dump`, ... from
//!   one [`four_letter::View`] that standalone servers and members build alike.
//! - [`commands`]: the AdminServer's JSON commands, from the same view.
//! - [`metrics`]: `/metrics` in the Prometheus text format, from the same view.
//!
//! All of it is sans-IO: the HTTP servers live in [`crate::host::http`].

pub mod commands;
pub mod four_letter;
pub mod metrics;
pub mod stats;
