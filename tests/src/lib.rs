//! Cross-crate integration and interoperability suites (see `tests/tests/`), and the one
//! test kit of the workspace (the suites' other helpers live beside them in `tests/tests/`):
//! - [`apache`]: Apache ZooKeeper 3.8 (standalone, 3-node ensemble, Java CLI, classpath);
//! - [`client`]: zk-client sessions as the suites open them;
//! - [`disk_faults`]: a failing disk for server processes (fdatasync of txn logs fails);
//! - [`http`]: plain HTTP GETs (AdminServer, `/metrics`);
//! - [`kazoo`]: kazoo's own test suite against `zk-server` processes (a `java` shim);
//! - [`kerberos`]: a throwaway MIT Kerberos realm (KDC, principals, keytabs);
//! - [`linearizability`]: histories of register operations and a linearizability checker;
//! - [`nemesis`]: a seeded fault schedule for process ensembles (partition, kill -9, SIGSTOP);
//! - [`ports`]: free loopback ports for servers started as processes;
//! - [`proxy`]: a fault-injecting TCP proxy (drop, delay, blackhole connections);
//! - [`raw`]: a raw zk-proto frame client (sees exactly what a server sends);
//! - [`sasl`]: JAAS files for SASL DIGEST-MD5 servers and Java clients;
//! - [`tls`]: test CAs, certificates and PEM stores (rcgen);
//! - [`zk_processes`]: real `zk-server` processes, one ([`zk_processes::ServerProcess`]) or
//!   an ensemble (kill -9, restart, partition, SIGSTOP).
#![deny(missing_docs)]

pub mod apache;
pub mod bench;
pub mod client;
pub mod disk_faults;
pub mod http;
pub mod kazoo;
pub mod kerberos;
pub mod linearizability;
pub mod mixed;
pub mod nemesis;
pub mod ports;
pub mod proxy;
pub mod raw;
pub mod sasl;
pub mod tls;
pub mod zk_processes;
