//! What operators see: counters and the four-letter words in Apache's shapes.
//!
//! - [`stats`]: latency summaries, per-connection and per-server counters.
//! - [`four_letter`]: rendering `srvr`, `stat`, `mntr`, `conf`, `cons`, `dump`, ... from
//!   one [`four_letter::View`] that standalone servers and members build alike.

pub mod four_letter;
pub mod stats;
