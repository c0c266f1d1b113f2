//! [`TreeCache`]: a local copy of a subtree (data and stat of every node down to a depth)
//! kept current by one persistent recursive watch, with a stream of changes.
//!
//! Consistency: the watch delivers creations, data changes and deletions in order; after a
//! reconnect or on a new session the whole subtree is read again and diffed with the cache,
//! because changes made while disconnected are not all replayed as events. A node's entry
//! is only replaced by a read with a higher `mzxid`, so a stale read (e.g. from a lagging
//! server after failover) never moves the cache backwards and no change is reported twice.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use zk_client::{AddWatchMode, Client, EventType, PersistentWatch, Stat};

use crate::error::{Error, Result};
use crate::events::{EventStream, Subscribers};
use crate::session::{Session, SessionEvent, SessionWatcher};
use crate::util::{depth_below, join, retry};

/// A cached node.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedNode {
    /// Its data.
    pub data: Bytes,
    /// Its stat when read.
    pub stat: Stat,
    /// When this process first saw this version of the node (local clock).
    pub seen_at: Instant,
}

/// A change of the cached tree.
#[derive(Debug, Clone, PartialEq)]
pub enum TreeEvent {
    /// A node appeared.
    Added(String, CachedNode),
    /// A node's data changed.
    Updated(String, CachedNode),
    /// A node went away (its last cached state).
    Removed(String, CachedNode),
    /// The first full read is complete (sent once).
    Initialized,
    /// A connection or session event.
    Session(SessionEvent),
}

type Nodes = BTreeMap<String, CachedNode>;

struct Shared {
    root: String,
    max_depth: usize,
    nodes: RwLock<Nodes>,
    events: Subscribers<TreeEvent>,
}

/// A cached subtree (see the module docs). The upkeep stops when it is dropped.
pub struct TreeCache {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for TreeCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TreeCache")
            .field("root", &self.shared.root)
            .finish()
    }
}

impl Drop for TreeCache {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TreeCache {
    /// Caches the whole subtree under `root` (which need not exist yet); returns after the
    /// first full read.
    pub async fn start(session: &Session, root: &str) -> Result<TreeCache> {
        TreeCache::start_with_depth(session, root, usize::MAX).await
    }

    /// Caches `root` and its descendants down to `max_depth` levels (1 = children).
    pub async fn start_with_depth(
        session: &Session,
        root: &str,
        max_depth: usize,
    ) -> Result<TreeCache> {
        let shared = Arc::new(Shared {
            root: root.to_owned(),
            max_depth,
            nodes: RwLock::new(Nodes::new()),
            events: Subscribers::new(),
        });
        let (init_tx, mut init_rx) = watch::channel(false);
        let task = tokio::spawn(run(shared.clone(), session.watcher(), init_tx));
        let cache = TreeCache { shared, task };
        loop {
            if *init_rx.borrow_and_update() {
                return Ok(cache);
            }
            if init_rx.changed().await.is_err() {
                return Err(Error::Closed);
            }
        }
    }

    /// The cached root path.
    pub fn root(&self) -> &str {
        &self.shared.root
    }

    /// Changes from now on.
    pub fn events(&self) -> EventStream<TreeEvent> {
        self.shared.events.subscribe()
    }

    /// The cached nodes and the changes after them, taken together: every change is
    /// either already in the snapshot or the first thing on the stream, never both and
    /// never neither (changes are applied and published under the cache's write lock;
    /// this takes its read lock for the snapshot and the subscription).
    pub fn snapshot_and_events(&self) -> (BTreeMap<String, CachedNode>, EventStream<TreeEvent>) {
        let Ok(nodes) = self.shared.nodes.read() else {
            return (BTreeMap::new(), self.shared.events.subscribe());
        };
        #[cfg(test)]
        hooks::at_subscribe();
        (nodes.clone(), self.shared.events.subscribe())
    }

    /// A cached node.
    pub fn get(&self, path: &str) -> Option<CachedNode> {
        self.shared.nodes.read().ok()?.get(path).cloned()
    }

    /// Cached children of `path` (names and nodes, sorted by name).
    pub fn children(&self, path: &str) -> Vec<(String, CachedNode)> {
        let Ok(nodes) = self.shared.nodes.read() else {
            return Vec::new();
        };
        let prefix = if path == "/" {
            "/".to_owned()
        } else {
            format!("{path}/")
        };
        nodes
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter(|(k, _)| k.len() > prefix.len() && !k[prefix.len()..].contains('/'))
            .map(|(k, v)| (k[prefix.len()..].to_owned(), v.clone()))
            .collect()
    }

    /// Every cached node by path.
    pub fn snapshot(&self) -> BTreeMap<String, CachedNode> {
        self.shared
            .nodes
            .read()
            .map(|n| n.clone())
            .unwrap_or_default()
    }
}

/// Reads the subtree (breadth-first); nodes deleted meanwhile are skipped.
async fn read_tree(client: &Client, root: &str, max_depth: usize) -> zk_client::Result<Nodes> {
    let mut out = Nodes::new();
    let mut queue = vec![(root.to_owned(), 0usize)];
    while let Some((path, depth)) = queue.pop() {
        let (data, stat) = match retry(|| client.get_data(&path, false)).await {
            Ok(v) => v,
            Err(zk_client::Error::NoNode { .. }) => continue,
            Err(e) => return Err(e),
        };
        if depth < max_depth && stat.num_children > 0 {
            match retry(|| client.get_children(&path, false)).await {
                Ok(children) => {
                    for c in children {
                        queue.push((join(&path, &c), depth + 1));
                    }
                }
                Err(zk_client::Error::NoNode { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        out.insert(
            path,
            CachedNode {
                data,
                stat,
                seen_at: Instant::now(),
            },
        );
    }
    Ok(out)
}

impl Shared {
    fn in_scope(&self, path: &str) -> bool {
        depth_below(&self.root, path).is_some_and(|d| d <= self.max_depth)
    }

    /// Stores a read of `path` unless the cache already has that version or newer.
    ///
    /// The event is published while the write lock is held, so
    /// [`TreeCache::snapshot_and_events`] sees each change exactly once.
    fn upsert(&self, path: &str, node: CachedNode) {
        let Ok(mut nodes) = self.nodes.write() else {
            return;
        };
        let ev = match nodes.get(path) {
            Some(old) if old.stat.mzxid >= node.stat.mzxid => return,
            Some(_) => TreeEvent::Updated(path.to_owned(), node.clone()),
            None => TreeEvent::Added(path.to_owned(), node.clone()),
        };
        nodes.insert(path.to_owned(), node);
        #[cfg(test)]
        hooks::at_emit();
        self.events.emit(ev);
    }

    /// Drops `path` and everything below it.
    fn remove(&self, path: &str) {
        let Ok(mut nodes) = self.nodes.write() else {
            return;
        };
        let prefix = format!("{}/", path.trim_end_matches('/'));
        let keys: Vec<String> = nodes
            .keys()
            .filter(|k| k.as_str() == path || k.starts_with(&prefix))
            .cloned()
            .collect();
        for k in keys {
            if let Some(v) = nodes.remove(&k) {
                self.events.emit(TreeEvent::Removed(k, v));
            }
        }
    }

    /// Replaces the cache by a full read, reporting the differences.
    fn replace(&self, fresh: Nodes) {
        let gone: Vec<String> = match self.nodes.read() {
            Ok(nodes) => nodes
                .keys()
                .filter(|k| !fresh.contains_key(*k))
                .cloned()
                .collect(),
            Err(_) => return,
        };
        for k in gone {
            self.remove(&k);
        }
        for (k, v) in fresh {
            self.upsert(&k, v);
        }
    }

    async fn refresh(&self, client: &Client, path: &str) -> zk_client::Result<()> {
        match retry(|| client.get_data(path, false)).await {
            Ok((data, stat)) => self.upsert(
                path,
                CachedNode {
                    data,
                    stat,
                    seen_at: Instant::now(),
                },
            ),
            Err(zk_client::Error::NoNode { .. }) => self.remove(path),
            Err(e) => return Err(e),
        }
        Ok(())
    }
}

async fn run(shared: Arc<Shared>, mut watcher: SessionWatcher, init: watch::Sender<bool>) {
    'session: loop {
        let client = watcher.client();
        // Watch first, then read: nothing changes unseen between the two.
        let mut pw: Option<PersistentWatch> = None;
        let mut synced = false;
        loop {
            if pw.is_none() {
                match client
                    .add_watch(&shared.root, AddWatchMode::PersistentRecursive)
                    .await
                {
                    Ok(w) => pw = Some(w),
                    Err(e) if e.is_retryable() => {}
                    Err(e) => tracing::debug!(error = %e, "tree cache: add_watch failed"),
                }
            }
            if pw.is_some() && !synced {
                match read_tree(&client, &shared.root, shared.max_depth).await {
                    Ok(fresh) => {
                        shared.replace(fresh);
                        synced = true;
                        if !*init.borrow() {
                            let _ = init.send(true);
                            shared.events.emit(TreeEvent::Initialized);
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "tree cache: read failed"),
                }
            }
            let needs_work = pw.is_none() || !synced;
            tokio::select! {
                ev = watcher.next() => {
                    shared.events.emit(TreeEvent::Session(ev));
                    match ev {
                        SessionEvent::Closed => return,
                        SessionEvent::NewSession { .. } => continue 'session,
                        // Changes made while disconnected may not all be replayed.
                        SessionEvent::Reconnected => synced = false,
                        SessionEvent::Suspended | SessionEvent::Expired => {}
                    }
                }
                ev = async { match pw.as_mut() { Some(w) => w.next().await, None => std::future::pending().await } } => {
                    let Some(ev) = ev else {
                        // Stream over: the session ended or the watch was removed.
                        pw = None;
                        continue;
                    };
                    if !shared.in_scope(&ev.path) {
                        continue;
                    }
                    match ev.event_type {
                        EventType::NodeCreated | EventType::NodeDataChanged
                            if shared.refresh(&client, &ev.path).await.is_err() =>
                        {
                            synced = false;
                        }
                        EventType::NodeDeleted => shared.remove(&ev.path),
                        _ => {}
                    }
                }
                _ = tokio::time::sleep(std::time::Duration::from_millis(200)), if needs_work => {}
            }
        }
    }
}

/// Test hook: code run inside [`TreeCache::snapshot_and_events`] while it holds the read
/// lock, to race a change against the subscription deterministically.
#[cfg(test)]
mod hooks {
    use std::sync::Mutex;

    type Hook = Box<dyn Fn() + Send>;
    pub(super) static AT_SUBSCRIBE: Mutex<Option<Hook>> = Mutex::new(None);

    pub(super) static AT_EMIT: Mutex<Option<Hook>> = Mutex::new(None);

    /// Between a change to the cache and its event.
    pub(super) fn at_emit() {
        let h = AT_EMIT.lock().ok().and_then(|mut h| h.take());
        if let Some(h) = h {
            h();
        }
    }

    pub(super) fn at_subscribe() {
        if let Ok(h) = AT_SUBSCRIBE.lock() {
            if let Some(h) = h.as_ref() {
                h();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hooks are global: tests that set them run one at a time.
    static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

    fn node(mzxid: i64) -> CachedNode {
        CachedNode {
            data: Bytes::new(),
            stat: Stat {
                mzxid,
                ..Stat::default()
            },
            seen_at: Instant::now(),
        }
    }

    /// A change that lands while a subscriber takes its snapshot is seen exactly once:
    /// the writer is started from inside the subscription (the hook) and must wait for it.
    #[tokio::test]
    async fn a_change_during_subscription_is_in_the_snapshot_or_the_stream() {
        let _serial = SERIAL.lock().await;
        let shared = Arc::new(Shared {
            root: "/r".into(),
            max_depth: 1,
            nodes: RwLock::new(Nodes::new()),
            events: Subscribers::new(),
        });
        shared.upsert("/r/a", node(1));
        let cache = TreeCache {
            shared: shared.clone(),
            task: tokio::spawn(async {}),
        };
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let writer_shared = shared.clone();
        let started = Arc::new(std::sync::Barrier::new(2));
        let started2 = started.clone();
        let writer = std::thread::spawn(move || {
            started2.wait();
            // Blocks until the subscription released the read lock.
            writer_shared.upsert("/r/b", node(2));
            writer_shared.upsert("/r/a", node(3));
            writer_shared.remove("/r/a");
            let _ = done_tx.send(());
        });
        *hooks::AT_SUBSCRIBE.lock().unwrap() = Some(Box::new(move || {
            started.wait();
            // Give the writer every chance to slip in if the lock did not hold it off.
            std::thread::sleep(std::time::Duration::from_millis(100));
        }));
        let (snap, mut events) = cache.snapshot_and_events();
        *hooks::AT_SUBSCRIBE.lock().unwrap() = None;
        done_rx.recv().unwrap();
        writer.join().unwrap();
        assert_eq!(snap.keys().collect::<Vec<_>>(), ["/r/a"]);
        let mut got = Vec::new();
        while let Ok(Some(ev)) =
            tokio::time::timeout(std::time::Duration::from_millis(50), events.recv()).await
        {
            got.push(match ev {
                TreeEvent::Added(p, n) => format!("+{p}@{}", n.stat.mzxid),
                TreeEvent::Updated(p, n) => format!("~{p}@{}", n.stat.mzxid),
                TreeEvent::Removed(p, n) => format!("-{p}@{}", n.stat.mzxid),
                other => format!("{other:?}"),
            });
        }
        assert_eq!(got, ["+/r/b@2", "~/r/a@3", "-/r/a@3"]);
    }

    /// A subscription attempted between a change and its event waits for the event to
    /// go out: it then has the change in its snapshot and not on its stream (no double).
    #[tokio::test]
    async fn a_subscription_between_a_change_and_its_event_sees_it_once() {
        let _serial = SERIAL.lock().await;
        let shared = Arc::new(Shared {
            root: "/r".into(),
            max_depth: 1,
            nodes: RwLock::new(Nodes::new()),
            events: Subscribers::new(),
        });
        let cache = Arc::new(TreeCache {
            shared: shared.clone(),
            task: tokio::spawn(async {}),
        });
        let (tx, rx) = std::sync::mpsc::channel();
        let subscriber = cache.clone();
        *hooks::AT_EMIT.lock().unwrap() = Some(Box::new(move || {
            // The change is in the map, its event not yet sent: subscribe now, and give
            // the subscription every chance to get through before the event goes out.
            let subscriber = subscriber.clone();
            let tx = tx.clone();
            std::thread::spawn(move || {
                let _ = tx.send(subscriber.snapshot_and_events());
            });
            std::thread::sleep(std::time::Duration::from_millis(100));
        }));
        shared.upsert("/r/b", node(2));
        let (snap, mut events) = rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap();
        assert!(snap.contains_key("/r/b"));
        let next = tokio::time::timeout(std::time::Duration::from_millis(50), events.recv()).await;
        assert!(next.is_err(), "the change came twice: {next:?}");
        shared.upsert("/r/c", node(3));
        assert!(matches!(events.recv().await, Some(TreeEvent::Added(p, _)) if p == "/r/c"));
    }
}
