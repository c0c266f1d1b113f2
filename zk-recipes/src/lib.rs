//! ZooKeeper recipes on [`zk_client`], correct through connection loss, failover and
//! session expiry.
//!
//! Every recipe works on a [`Session`], which replaces an expired zk-client session with a
//! new one; recipes then re-create their ephemeral nodes and watches and report what
//! happened as [`SessionEvent`]s in their event streams.
//!
//! | recipe | module |
//! |---|---|
//! | naming service | [`naming`] |
//! | typed config watch | [`config`] |
//! | group membership | [`membership`] |
//! | service discovery (Curator layout) | [`discovery`] |
//! | least-loaded / round-robin / random balancing | [`balancing`] |
//! | leader election (kazoo layout) | [`election`] |
//! | lock (kazoo layout, reentrant) | [`lock`] |
//! | read-write lock (kazoo layout) | [`rwlock`] |
//! | semaphore (kazoo layout) | [`semaphore`] |
//! | barrier, double barrier (kazoo layout) | [`barrier`], [`double_barrier`] |
//! | shared counter (kazoo layout) | [`counter`] |
//! | distributed queue (kazoo layout) | [`queue`] |
//! | tree cache (persistent recursive watch) | [`tree_cache`] |
//! | fencing tokens of locks and leaders | [`fencing`] |
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//! use zk_recipes::balancing::{LeastLoaded, LoadPublisher, ServiceProvider};
//! use zk_recipes::discovery::{ServiceCache, ServiceInstance, ServiceRegistry};
//! use zk_recipes::Session;
//! # async fn f() -> zk_recipes::Result<()> {
//! let session = Session::connect("127.0.0.1:2181").await?;
//! let registry = ServiceRegistry::new(&session, "/services");
//! // Server side: register, then publish load (rate-limited, heartbeating).
//! let reg = registry
//!     .register(ServiceInstance::new("api", "api-1", "10.0.0.7", 8080))
//!     .await?;
//! let load = LoadPublisher::start(Arc::new(reg), 0, Duration::from_millis(50), Duration::from_secs(1));
//! let _in_flight = load.track(); // +1 while this request runs
//! // Client side: a live cache and a least-loaded pick.
//! let provider = ServiceProvider::new(
//!     ServiceCache::start(&registry, "api").await?,
//!     LeastLoaded::new(Duration::from_secs(3)),
//! );
//! if let Some(instance) = provider.pick() {
//!     println!("send to {}", instance.endpoint());
//! }
//! # Ok(()) }
//! ```
//!
//! Shared machinery: [`session`] (renewing sessions), [`ephemeral`] (ephemeral nodes kept
//! across sessions), `contender` (sequential-node queues of locks and elections),
//! [`events`] (event streams), [`util`], [`error`].
#![deny(missing_docs)]

pub mod balancing;
pub mod barrier;
pub mod config;
pub mod contender;
pub mod counter;
pub mod discovery;
pub mod double_barrier;
pub mod election;
pub mod ephemeral;
pub mod error;
pub mod events;
pub mod fencing;
pub mod lock;
pub mod membership;
pub mod naming;
pub mod queue;
pub mod rwlock;
pub mod semaphore;
pub mod session;
pub mod tree_cache;
pub mod util;

pub use error::{Error, Result};
pub use events::EventStream;
pub use session::{Epoch, Session, SessionEvent, SessionWatcher};
