//! Which watcher waits on which path: the client's copy of its server-side watches, used to
//! fan out notifications and to re-register everything after a reconnect.

use std::collections::HashMap;

use zk_proto::{EventType, WatcherType};

/// Identifies one watcher; [`DEFAULT_WATCHER`] is the session's event stream.
pub type WatcherId = u64;

/// The session-wide watcher that `watch: bool` calls register (Java's default watcher).
pub const DEFAULT_WATCHER: WatcherId = 0;

/// The kind of watch a request leaves behind when it succeeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WatchKind {
    /// getData: fires on data change and deletion.
    Data,
    /// exists: a data watch if the node exists, else an exist watch (fires on creation).
    Exists,
    /// getChildren: fires on child changes and deletion.
    Children,
    /// addWatch persistent: every event on the path, until removed.
    Persistent,
    /// addWatch persistent-recursive: created/deleted/changed on the whole subtree.
    PersistentRecursive,
}

/// The five path tables.
#[derive(Debug, Default, Clone)]
pub struct WatchRegistry {
    data: HashMap<String, Vec<WatcherId>>,
    exist: HashMap<String, Vec<WatcherId>>,
    child: HashMap<String, Vec<WatcherId>>,
    persistent: HashMap<String, Vec<WatcherId>>,
    recursive: HashMap<String, Vec<WatcherId>>,
}

fn add(map: &mut HashMap<String, Vec<WatcherId>>, path: &str, id: WatcherId) {
    let v = map.entry(path.to_owned()).or_default();
    if !v.contains(&id) {
        v.push(id);
    }
}

fn take(map: &mut HashMap<String, Vec<WatcherId>>, path: &str, out: &mut Vec<WatcherId>) {
    if let Some(v) = map.remove(path) {
        out.extend(v);
    }
}

fn copy(map: &HashMap<String, Vec<WatcherId>>, path: &str, out: &mut Vec<WatcherId>) {
    if let Some(v) = map.get(path) {
        out.extend_from_slice(v);
    }
}

/// The watch lists re-sent after a reconnect (server paths).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchLists {
    /// Data watches.
    pub data: Vec<String>,
    /// Exist watches.
    pub exist: Vec<String>,
    /// Child watches.
    pub child: Vec<String>,
    /// Persistent watches.
    pub persistent: Vec<String>,
    /// Persistent recursive watches.
    pub recursive: Vec<String>,
}

impl WatchRegistry {
    /// Records a watch left by a successful request (`exists_hit`: exists found the node).
    pub fn register(&mut self, kind: WatchKind, path: &str, id: WatcherId, exists_hit: bool) {
        match kind {
            WatchKind::Data => add(&mut self.data, path, id),
            WatchKind::Exists if exists_hit => add(&mut self.data, path, id),
            WatchKind::Exists => add(&mut self.exist, path, id),
            WatchKind::Children => add(&mut self.child, path, id),
            WatchKind::Persistent => add(&mut self.persistent, path, id),
            WatchKind::PersistentRecursive => add(&mut self.recursive, path, id),
        }
    }

    /// True when nothing is registered.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
            && self.exist.is_empty()
            && self.child.is_empty()
            && self.persistent.is_empty()
            && self.recursive.is_empty()
    }

    /// The watchers a notification reaches; one-shot watches are consumed. Each watcher
    /// appears once even when registered several ways.
    pub fn fire(&mut self, ty: EventType, path: &str) -> Vec<WatcherId> {
        let mut out = Vec::new();
        match ty {
            EventType::NodeCreated | EventType::NodeDataChanged => {
                take(&mut self.data, path, &mut out);
                take(&mut self.exist, path, &mut out);
            }
            EventType::NodeDeleted => {
                take(&mut self.data, path, &mut out);
                take(&mut self.exist, path, &mut out);
                take(&mut self.child, path, &mut out);
            }
            EventType::NodeChildrenChanged => take(&mut self.child, path, &mut out),
            _ => return out,
        }
        copy(&self.persistent, path, &mut out);
        if ty != EventType::NodeChildrenChanged && !self.recursive.is_empty() {
            let mut p = path;
            loop {
                copy(&self.recursive, p, &mut out);
                if p == "/" {
                    break;
                }
                p = match p.rfind('/') {
                    Some(0) => "/",
                    Some(i) => &p[..i],
                    None => break,
                };
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Removes the watches of `wtype` on `path`; returns each removed watcher with the
    /// removal event it should see.
    pub fn remove(&mut self, path: &str, wtype: WatcherType) -> Vec<(WatcherId, EventType)> {
        let mut out = Vec::new();
        let mut data = Vec::new();
        let mut child = Vec::new();
        let mut pers = Vec::new();
        let (d, c, p) = match wtype {
            WatcherType::Data => (true, false, false),
            WatcherType::Children => (false, true, false),
            WatcherType::Any => (true, true, true),
            WatcherType::Persistent | WatcherType::PersistentRecursive => (false, false, true),
            WatcherType::Unknown(_) => (false, false, false),
        };
        if d {
            take(&mut self.data, path, &mut data);
            take(&mut self.exist, path, &mut data);
        }
        if c {
            take(&mut self.child, path, &mut child);
        }
        if p {
            if wtype != WatcherType::PersistentRecursive {
                take(&mut self.persistent, path, &mut pers);
            }
            if wtype != WatcherType::Persistent {
                take(&mut self.recursive, path, &mut pers);
            }
        }
        // A watcher on both persistent lists of one path is told once.
        pers.sort_unstable();
        pers.dedup();
        out.extend(data.into_iter().map(|w| (w, EventType::DataWatchRemoved)));
        out.extend(child.into_iter().map(|w| (w, EventType::ChildWatchRemoved)));
        out.extend(
            pers.into_iter()
                .map(|w| (w, EventType::PersistentWatchRemoved)),
        );
        out
    }

    /// Drops every registration of `id` (its receiver is gone); paths left without a
    /// watcher are no longer re-registered after a reconnect.
    pub fn forget(&mut self, id: WatcherId) {
        for m in [
            &mut self.data,
            &mut self.exist,
            &mut self.child,
            &mut self.persistent,
            &mut self.recursive,
        ] {
            m.retain(|_, v| {
                v.retain(|w| *w != id);
                !v.is_empty()
            });
        }
    }

    /// Every watcher id still registered (to notify them when the session ends).
    pub fn drain_all(&mut self) -> Vec<WatcherId> {
        let mut out = Vec::new();
        for m in [
            &mut self.data,
            &mut self.exist,
            &mut self.child,
            &mut self.persistent,
            &mut self.recursive,
        ] {
            for (_, v) in m.drain() {
                out.extend(v);
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The registered paths per kind, sorted (deterministic re-registration order).
    pub fn lists(&self) -> WatchLists {
        fn keys(m: &HashMap<String, Vec<WatcherId>>) -> Vec<String> {
            let mut v: Vec<String> = m.keys().cloned().collect();
            v.sort();
            v
        }
        WatchLists {
            data: keys(&self.data),
            exist: keys(&self.exist),
            child: keys(&self.child),
            persistent: keys(&self.persistent),
            recursive: keys(&self.recursive),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_shot_watches_fire_once_persistent_stay() {
        let mut r = WatchRegistry::default();
        r.register(WatchKind::Data, "/a", 1, true);
        r.register(WatchKind::Exists, "/a", 2, false);
        r.register(WatchKind::Children, "/a", 3, true);
        r.register(WatchKind::Persistent, "/a", 4, true);
        r.register(WatchKind::PersistentRecursive, "/", 5, true);
        assert_eq!(r.fire(EventType::NodeDataChanged, "/a"), vec![1, 2, 4, 5]);
        assert_eq!(r.fire(EventType::NodeDataChanged, "/a"), vec![4, 5]);
        assert_eq!(r.fire(EventType::NodeChildrenChanged, "/a"), vec![3, 4]);
        assert_eq!(r.fire(EventType::NodeCreated, "/a/b/c"), vec![5]);
        assert_eq!(
            r.fire(EventType::NodeChildrenChanged, "/a/b"),
            Vec::<u64>::new()
        );
    }

    #[test]
    fn same_watcher_twice_is_notified_once() {
        let mut r = WatchRegistry::default();
        r.register(WatchKind::Data, "/a", 0, true);
        r.register(WatchKind::Data, "/a", 0, true);
        r.register(WatchKind::Children, "/a", 0, true);
        assert_eq!(r.fire(EventType::NodeDeleted, "/a"), vec![0]);
        assert!(r.is_empty());
    }

    #[test]
    fn forgotten_watchers_are_not_re_registered() {
        let mut r = WatchRegistry::default();
        r.register(WatchKind::Persistent, "/a", 4, true);
        r.register(WatchKind::Persistent, "/b", 4, true);
        r.register(WatchKind::Persistent, "/b", 5, true);
        r.forget(4);
        assert_eq!(r.lists().persistent, vec!["/b".to_owned()]);
        assert_eq!(r.fire(EventType::NodeDataChanged, "/b"), vec![5]);
    }

    #[test]
    fn remove_by_type() {
        let mut r = WatchRegistry::default();
        r.register(WatchKind::Data, "/a", 1, true);
        r.register(WatchKind::Children, "/a", 2, true);
        r.register(WatchKind::Persistent, "/a", 3, true);
        assert_eq!(
            r.remove("/a", WatcherType::Children),
            vec![(2, EventType::ChildWatchRemoved)]
        );
        assert_eq!(
            r.remove("/a", WatcherType::Any),
            vec![
                (1, EventType::DataWatchRemoved),
                (3, EventType::PersistentWatchRemoved)
            ]
        );
        assert!(r.is_empty());
    }
}
