//! Registered watches and which sessions a tree change notifies.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use zk_proto::{EventType, KeeperState, WatcherEvent, WatcherType};

use crate::tree::path;
use crate::tree::Trigger;

/// The kind of a registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WatchKind {
    /// One-shot data or exist watch.
    Data,
    /// One-shot child watch.
    Child,
    /// Persistent watch on one node.
    Persistent,
    /// Persistent watch on a node and its subtree.
    PersistentRecursive,
}

/// All watches, by kind and path, with a reverse index by watcher (session).
#[derive(Debug, Clone, Default)]
pub struct WatchManager {
    tables: HashMap<WatchKind, HashMap<String, BTreeSet<i64>>>,
    by_watcher: HashMap<i64, BTreeSet<(WatchKind, String)>>,
}

impl WatchManager {
    /// An empty manager.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a watch.
    pub fn add(&mut self, kind: WatchKind, p: &str, watcher: i64) {
        self.tables
            .entry(kind)
            .or_default()
            .entry(p.to_string())
            .or_default()
            .insert(watcher);
        self.by_watcher
            .entry(watcher)
            .or_default()
            .insert((kind, p.to_string()));
    }

    fn contains_kind(&self, kind: WatchKind, p: &str, watcher: i64) -> bool {
        self.tables
            .get(&kind)
            .and_then(|t| t.get(p))
            .is_some_and(|s| s.contains(&watcher))
    }

    fn remove_kind(&mut self, kind: WatchKind, p: &str, watcher: i64) -> bool {
        let Some(table) = self.tables.get_mut(&kind) else {
            return false;
        };
        let Some(set) = table.get_mut(p) else {
            return false;
        };
        let removed = set.remove(&watcher);
        if set.is_empty() {
            table.remove(p);
        }
        if let Some(idx) = self.by_watcher.get_mut(&watcher) {
            idx.remove(&(kind, p.to_string()));
            if idx.is_empty() {
                self.by_watcher.remove(&watcher);
            }
        }
        removed
    }

    fn kinds_for(t: WatcherType) -> &'static [WatchKind] {
        match t {
            WatcherType::Children => &[WatchKind::Child],
            WatcherType::Data => &[WatchKind::Data],
            WatcherType::Any => &[WatchKind::Child, WatchKind::Data],
            WatcherType::Persistent => &[WatchKind::Persistent],
            WatcherType::PersistentRecursive => &[WatchKind::PersistentRecursive],
            WatcherType::Unknown(_) => &[],
        }
    }

    /// checkWatches: whether `watcher` has a watch of type `t` on `p`.
    pub fn contains(&self, p: &str, t: WatcherType, watcher: i64) -> bool {
        Self::kinds_for(t)
            .iter()
            .any(|k| self.contains_kind(*k, p, watcher))
    }

    /// removeWatches: removes them; false if there was none.
    pub fn remove(&mut self, p: &str, t: WatcherType, watcher: i64) -> bool {
        let mut any = false;
        for k in Self::kinds_for(t) {
            any |= self.remove_kind(*k, p, watcher);
        }
        any
    }

    /// Drops every watch of a watcher (its connection went away).
    pub fn remove_watcher(&mut self, watcher: i64) {
        if let Some(idx) = self.by_watcher.remove(&watcher) {
            for (kind, p) in idx {
                if let Some(table) = self.tables.get_mut(&kind) {
                    if let Some(set) = table.get_mut(&p) {
                        set.remove(&watcher);
                        if set.is_empty() {
                            table.remove(&p);
                        }
                    }
                }
            }
        }
    }

    fn take_one_shot(&mut self, kind: WatchKind, p: &str, out: &mut BTreeSet<i64>) {
        if let Some(set) = self.tables.get_mut(&kind).and_then(|t| t.remove(p)) {
            for w in set {
                if let Some(idx) = self.by_watcher.get_mut(&w) {
                    idx.remove(&(kind, p.to_string()));
                    if idx.is_empty() {
                        self.by_watcher.remove(&w);
                    }
                }
                out.insert(w);
            }
        }
    }

    fn persistent_at(&self, kind: WatchKind, p: &str, out: &mut BTreeSet<i64>) {
        if let Some(set) = self.tables.get(&kind).and_then(|t| t.get(p)) {
            out.extend(set.iter().copied());
        }
    }

    /// The sessions to notify of one tree change; one-shot watches are consumed. Each
    /// session gets at most one event per change, as Apache suppresses duplicates.
    pub fn trigger(&mut self, t: &Trigger) -> Vec<(i64, WatcherEvent)> {
        let mut who = BTreeSet::new();
        match t.event {
            EventType::NodeCreated | EventType::NodeDataChanged => {
                self.take_one_shot(WatchKind::Data, &t.path, &mut who);
            }
            EventType::NodeDeleted => {
                self.take_one_shot(WatchKind::Data, &t.path, &mut who);
                self.take_one_shot(WatchKind::Child, &t.path, &mut who);
            }
            EventType::NodeChildrenChanged => {
                self.take_one_shot(WatchKind::Child, &t.path, &mut who);
            }
            _ => {}
        }
        self.persistent_at(WatchKind::Persistent, &t.path, &mut who);
        // Recursive watches never see child-list changes.
        if t.event != EventType::NodeChildrenChanged
            && self
                .tables
                .get(&WatchKind::PersistentRecursive)
                .is_some_and(|m| !m.is_empty())
        {
            let mut cur = t.path.as_str();
            loop {
                self.persistent_at(WatchKind::PersistentRecursive, cur, &mut who);
                if cur == "/" {
                    break;
                }
                cur = path::parent(cur);
            }
        }
        who.into_iter()
            .map(|w| {
                (
                    w,
                    WatcherEvent {
                        event_type: t.event,
                        state: KeeperState::SyncConnected,
                        path: t.path.clone(),
                    },
                )
            })
            .collect()
    }

    /// Total number of registrations.
    pub fn count(&self) -> usize {
        self.by_watcher.values().map(|s| s.len()).sum()
    }

    /// Number of distinct watched paths.
    pub fn path_count(&self) -> usize {
        let mut paths = BTreeSet::new();
        for table in self.tables.values() {
            paths.extend(table.keys());
        }
        paths.len()
    }

    /// Number of watchers with at least one watch.
    pub fn watcher_count(&self) -> usize {
        self.by_watcher.len()
    }

    /// Paths watched by each session (`wchc`).
    pub fn by_session(&self) -> BTreeMap<i64, BTreeSet<String>> {
        self.by_watcher
            .iter()
            .map(|(w, s)| (*w, s.iter().map(|(_, p)| p.clone()).collect()))
            .collect()
    }

    /// Sessions watching each path (`wchp`).
    pub fn by_path(&self) -> BTreeMap<String, BTreeSet<i64>> {
        let mut out: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
        for table in self.tables.values() {
            for (p, s) in table {
                out.entry(p.clone()).or_default().extend(s.iter().copied());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trig(p: &str, e: EventType) -> Trigger {
        Trigger {
            path: p.into(),
            event: e,
        }
    }

    fn sessions(v: Vec<(i64, WatcherEvent)>) -> Vec<i64> {
        v.into_iter().map(|(s, _)| s).collect()
    }

    #[test]
    fn one_shot_fires_once() {
        let mut m = WatchManager::new();
        m.add(WatchKind::Data, "/a", 1);
        assert_eq!(
            sessions(m.trigger(&trig("/a", EventType::NodeDataChanged))),
            vec![1]
        );
        assert!(m
            .trigger(&trig("/a", EventType::NodeDataChanged))
            .is_empty());
        assert_eq!(m.count(), 0);
    }

    #[test]
    fn delete_fires_data_and_child_once() {
        let mut m = WatchManager::new();
        m.add(WatchKind::Data, "/a", 1);
        m.add(WatchKind::Child, "/a", 1);
        m.add(WatchKind::Child, "/a", 2);
        assert_eq!(
            sessions(m.trigger(&trig("/a", EventType::NodeDeleted))),
            vec![1, 2]
        );
        assert_eq!(m.count(), 0);
    }

    #[test]
    fn persistent_and_recursive() {
        let mut m = WatchManager::new();
        m.add(WatchKind::Persistent, "/a", 1);
        m.add(WatchKind::PersistentRecursive, "/a", 2);
        assert_eq!(
            sessions(m.trigger(&trig("/a", EventType::NodeChildrenChanged))),
            vec![1]
        );
        assert_eq!(
            sessions(m.trigger(&trig("/a/b/c", EventType::NodeCreated))),
            vec![2]
        );
        assert_eq!(
            sessions(m.trigger(&trig("/a", EventType::NodeDataChanged))),
            vec![1, 2]
        );
        assert_eq!(m.count(), 2);
        assert!(m.contains("/a", WatcherType::PersistentRecursive, 2));
        assert!(!m.contains("/a", WatcherType::Data, 2));
        assert!(m.remove("/a", WatcherType::Persistent, 1));
        assert!(!m.remove("/a", WatcherType::Persistent, 1));
        m.remove_watcher(2);
        assert_eq!(m.count(), 0);
    }
}
