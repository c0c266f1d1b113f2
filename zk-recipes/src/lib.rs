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
