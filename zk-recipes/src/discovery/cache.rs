//! [`ServiceCache`]: the live instances of one service and their up/down events, kept by
//! a depth-1 [`TreeCache`] on the service's path.

use std::time::Instant;

use crate::discovery::instance::ServiceInstance;
use crate::discovery::registry::ServiceRegistry;
use crate::error::Result;
use crate::events::EventStream;
use crate::session::SessionEvent;
use crate::tree_cache::{CachedNode, TreeCache, TreeEvent};
use crate::util::parent;

/// A live instance as cached, with what the balancers need to judge its load report.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveInstance {
    /// The instance.
    pub instance: ServiceInstance,
    /// zxid of the node version read (changes with every load report).
    pub mzxid: i64,
    /// When this client first saw that version (local clock).
    pub seen_at: Instant,
}

/// An up/down event.
#[derive(Debug, Clone, PartialEq)]
pub enum DiscoveryEvent {
    /// An instance came up (registered).
    Up(ServiceInstance),
    /// An instance's data changed (e.g. a load report).
    Changed(ServiceInstance),
    /// An instance went down (unregistered, or its session ended).
    Down(ServiceInstance),
    /// A connection or session event of the cache's own session.
    Session(SessionEvent),
}

/// The live instances of one service.
#[derive(Debug)]
pub struct ServiceCache {
    name: String,
    tree: TreeCache,
}

fn decode(path: &str, node: &CachedNode) -> Option<ServiceInstance> {
    match ServiceInstance::from_json(path, &node.data) {
        Ok(i) => Some(i),
        Err(e) => {
            tracing::warn!(error = %e, "ignoring bad service instance");
            None
        }
    }
}

impl ServiceCache {
    /// Starts caching service `name` of `registry`; returns after the first full read.
    pub async fn start(registry: &ServiceRegistry, name: &str) -> Result<ServiceCache> {
        let tree = TreeCache::start_with_depth(registry.session(), &registry.service_path(name), 1)
            .await?;
        Ok(ServiceCache {
            name: name.to_owned(),
            tree,
        })
    }

    /// The service name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The live instances, sorted by id.
    pub fn instances(&self) -> Vec<ServiceInstance> {
        self.live().into_iter().map(|l| l.instance).collect()
    }

    /// The live instances with cache metadata, sorted by id.
    pub fn live(&self) -> Vec<LiveInstance> {
        let root = self.tree.root().to_owned();
        self.tree
            .children(&root)
            .into_iter()
            .filter_map(|(id, n)| {
                let path = crate::util::join(&root, &id);
                decode(&path, &n).map(|instance| LiveInstance {
                    instance,
                    mzxid: n.stat.mzxid,
                    seen_at: n.seen_at,
                })
            })
            .collect()
    }

    /// Up/down events from now on.
    pub fn events(&self) -> EventStream<DiscoveryEvent> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let mut tree = self.tree.events();
        let root = self.tree.root().to_owned();
        tokio::spawn(async move {
            while let Some(ev) = tree.recv().await {
                let out = match &ev {
                    TreeEvent::Added(p, n) if parent(p) == root => {
                        decode(p, n).map(DiscoveryEvent::Up)
                    }
                    TreeEvent::Updated(p, n) if parent(p) == root => {
                        decode(p, n).map(DiscoveryEvent::Changed)
                    }
                    TreeEvent::Removed(p, n) if parent(p) == root => {
                        decode(p, n).map(DiscoveryEvent::Down)
                    }
                    TreeEvent::Session(s) => Some(DiscoveryEvent::Session(*s)),
                    _ => None,
                };
                if let Some(out) = out {
                    if tx.send(out).is_err() {
                        return;
                    }
                }
            }
        });
        EventStream::from_rx(rx)
    }
}
