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
//! - [`cache`]: [`ServiceCache`] (current set, changes, or both as one stream) and
//!   [`DiscoveryEvent`];
//! - [`health`]: [`HealthMonitor`], taking an instance out of rotation and back on a
//!   health check (an operator does it by hand with [`Registration::set_enabled`]).

pub mod cache;
pub mod health;
pub mod instance;
pub mod registry;

pub use cache::{DiscoveryEvent, LiveInstance, ServiceCache};
pub use health::{HealthMonitor, HealthOptions};
pub use instance::{LoadReport, ServiceInstance};
pub use registry::{Registration, ServiceRegistry};

/// Curator's default base path.
pub const DEFAULT_BASE: &str = "/services";
