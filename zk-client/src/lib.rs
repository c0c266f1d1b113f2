//! An async ZooKeeper client for tokio, correct against Apache ZooKeeper 3.8/3.9.
//!
//! ```no_run
//! use zk_client::{Acl, Client, CreateMode, EventType};
//! # async fn f() -> zk_client::Result<()> {
//! let client = Client::connect("127.0.0.1:2181").await?;
//! let mut events = client.events();
//! client.create("/demo", b"hello", &Acl::open_unsafe(), CreateMode::Persistent).await?;
//! let (data, stat) = client.get_data("/demo", true).await?; // one-shot watch
//! client.set_data("/demo", b"world", Some(stat.version)).await?;
//! while let Some(ev) = events.recv().await {
//!     if ev.event_type == EventType::NodeDataChanged {
//!         break;
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! Layout: [`session`] is the sans-IO state machine (handshake, FIFO reply matching,
//! pings, read timeout, SetWatches replay, self-reported expiry); `driver` runs it on a
//! tokio socket; [`Client`] (client.rs) is the typed API, [`multi`] the transaction builder,
//! [`watch`] the watch registry and streams, [`hosts`] / [`path`] parse connect strings and
//! validate paths, [`builder`] holds the settings, [`retry`] the delays between connection
//! attempts and the reconnect jitter, [`metrics`] the counters (and the tracing spans),
//! [`error`] the one error enum.
#![deny(missing_docs)]

mod arena;
pub mod builder;
mod client;
mod driver;
pub mod error;
pub mod hosts;
pub mod metrics;
pub mod multi;
pub mod path;
pub mod retry;
pub mod sasl;
mod sasl_gssapi;
pub mod session;
pub mod state;
pub mod tls;
pub mod watch;

pub use builder::ClientBuilder;
pub use client::{Client, CONFIG_NODE};
pub use error::{Error, Result};
pub use metrics::Metrics;
pub use multi::{MultiRead, OpResult, Transaction};
pub use retry::RetryPolicy;
pub use sasl::{GssapiConfig, SaslConfig};
pub use state::SessionState;
pub use tls::{StoreType, TlsConfig};
pub use watch::{EventStream, PersistentWatch, WatchFuture, WatchedEvent};
pub use zk_proto::{
    Acl, AddWatchMode, ClientInfo, CreateMode, ErrorCode, EventType, Id, Perms, Stat, WatcherType,
};
