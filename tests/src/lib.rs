//! Cross-crate integration and interoperability suites (see `tests/tests/`), and the shared
//! test kit:
//! - [`apache`]: start Apache ZooKeeper 3.8 (standalone or a 3-node ensemble);
//! - [`client`]: zk-client sessions as the suites open them;
//! - [`proxy`]: a fault-injecting TCP proxy (drop, delay, blackhole connections);
//! - [`zk_processes`]: real `zk-server` processes as an ensemble (kill -9, restart, partition).
#![deny(missing_docs)]

pub mod apache;
pub mod client;
pub mod proxy;
pub mod zk_processes;
