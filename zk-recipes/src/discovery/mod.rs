//! Service discovery in the style of Curator's: service instances (id, address, port,
//! payload) registered as ephemeral nodes `<base>/<service name>/<instance id>` holding
//! Curator-compatible JSON, a [`ServiceCache`] that keeps the live instance list current,
//! and up/down events as servers come and go, including by session expiry of a crashed
//! server.
//!
//! - [`instance`]: [`ServiceInstance`] and its JSON form, with the optional load report
//!   used by [`crate::balancing`];
//! - [`registry`]: [`ServiceRegistry`] (register, unregister, query) and
//!   [`Registration`];
//! - [`cache`]: [`ServiceCache`] and [`DiscoveryEvent`].

pub mod cache;
pub mod instance;
pub mod registry;

pub use cache::{DiscoveryEvent, LiveInstance, ServiceCache};
pub use instance::{LoadReport, ServiceInstance};
pub use registry::{Registration, ServiceRegistry};

/// Curator's default base path.
pub const DEFAULT_BASE: &str = "/services";
