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
    /// [`ServiceCache::stream`] only: the instances live at subscription have all been
    /// delivered (as `Up` events before this one); what follows are changes.
    Initialized,
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

    /// The instances that take requests now (live and [`ServiceInstance::enabled`]),
    /// sorted by id.
    pub fn enabled(&self) -> Vec<ServiceInstance> {
        self.instances().into_iter().filter(|i| i.enabled).collect()
    }

    /// The current instances, then every change, as one stream (as Curator's cache
    /// listeners with initial data): an `Up` for each instance live now (sorted by id),
    /// [`DiscoveryEvent::Initialized`], then `Up` / `Changed` / `Down` and session events
    /// as they happen.
    ///
    /// There is no gap and no overlap between the initial set and the changes: the
    /// snapshot and the subscription are taken atomically with respect to the cache's
    /// updates, so a registration racing the call shows up once, either as one of the
    /// initial `Up`s or as a later event. Applying the events in order to an empty set
    /// gives the cache's view at every point.
    ///
    /// ```no_run
    /// # async fn f(cache: zk_recipes::discovery::ServiceCache) {
    /// use std::collections::BTreeMap;
    /// use zk_recipes::discovery::DiscoveryEvent;
    /// let mut view = BTreeMap::new();
    /// let mut stream = cache.stream();
    /// while let Some(ev) = stream.recv().await {
    ///     match ev {
    ///         DiscoveryEvent::Up(i) | DiscoveryEvent::Changed(i) => { view.insert(i.id.clone(), i); }
    ///         DiscoveryEvent::Down(i) => { view.remove(&i.id); }
    ///         DiscoveryEvent::Initialized => println!("{} instances at start", view.len()),
    ///         DiscoveryEvent::Session(_) => {}
    ///     }
    /// }
    /// # }
    /// ```
    pub fn stream(&self) -> EventStream<DiscoveryEvent> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let (snapshot, mut tree) = self.tree.snapshot_and_events();
        let root = self.tree.root().to_owned();
        // Instances delivered as up, by path: a change is `Up` for one not delivered yet
        // (e.g. whose first version did not decode), a removal is reported only for one
        // delivered, with its last decoded form.
        let mut known = std::collections::BTreeMap::new();
        for (path, node) in &snapshot {
            if parent(path) != root {
                continue;
            }
            if let Some(i) = decode(path, node) {
                known.insert(path.clone(), i.clone());
                let _ = tx.send(DiscoveryEvent::Up(i));
            }
        }
        let _ = tx.send(DiscoveryEvent::Initialized);
        tokio::spawn(async move {
            while let Some(ev) = tree.recv().await {
                let out = match ev {
                    TreeEvent::Added(p, n) | TreeEvent::Updated(p, n) if parent(&p) == root => {
                        match decode(&p, &n) {
                            Some(i) => match known.insert(p, i.clone()) {
                                None => Some(DiscoveryEvent::Up(i)),
                                Some(_) => Some(DiscoveryEvent::Changed(i)),
                            },
                            // Now unreadable: no longer an instance anyone can use.
                            None => known.remove(&p).map(DiscoveryEvent::Down),
                        }
                    }
                    TreeEvent::Removed(p, _) if parent(&p) == root => {
                        known.remove(&p).map(DiscoveryEvent::Down)
                    }
                    TreeEvent::Session(s) => Some(DiscoveryEvent::Session(s)),
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

    /// Up/down events from now on (without the current set: see [`Self::stream`]).
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
