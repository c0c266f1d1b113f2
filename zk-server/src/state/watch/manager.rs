//! Registered watches and which sessions a tree change notifies, modelled on Apache 3.8's
//! two `WatchManager`s (data and child tables).
//!
//! Each table keeps one mode per (path, watcher): registering again replaces the mode, as
//! Apache's `WatcherModeManager` does. Persistent and recursive watches live in both tables.
//! Each table also knows every watcher's paths (Apache's `watch2Paths`), so a connection
//! that goes away costs its own watches, not a scan of every watched path.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use zk_proto::{EventType, KeeperState, WatcherEvent, WatcherType};

use crate::admin::stats::{Summary, WatchFires};
use crate::state::tree::path;
use crate::state::tree::Trigger;

/// The mode of one registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WatchMode {
    /// One-shot.
    Standard,
    /// Fires on the node, repeatedly.
    Persistent,
    /// Fires on the node and its subtree, repeatedly; never for child-list changes.
    PersistentRecursive,
}

/// Compatibility name for the kind of a registration.
pub type WatchKind = WatchMode;

#[derive(Debug, Clone, Default)]
struct Table {
    by_path: HashMap<Arc<str>, BTreeMap<i64, WatchMode>>,
    /// The paths of each watcher's registrations (the keys of `by_path`, shared).
    by_watcher: HashMap<i64, HashSet<Arc<str>>>,
    recursive: usize,
}

impl Table {
    fn add(&mut self, p: &str, w: i64, mode: WatchMode) {
        let key = match self.by_path.get_key_value(p) {
            Some((k, _)) => k.clone(),
            None => Arc::from(p),
        };
        let old = self.by_path.entry(key.clone()).or_default().insert(w, mode);
        if old.is_none() {
            self.by_watcher.entry(w).or_default().insert(key);
        }
        if old == Some(WatchMode::PersistentRecursive) {
            self.recursive -= 1;
        }
        if mode == WatchMode::PersistentRecursive {
            self.recursive += 1;
        }
    }

    fn mode(&self, p: &str, w: i64) -> Option<WatchMode> {
        self.by_path.get(p).and_then(|m| m.get(&w)).copied()
    }

    /// Forgets that `w` watches `p` (its registration there is gone).
    fn unindex(&mut self, p: &str, w: i64) {
        if let Some(paths) = self.by_watcher.get_mut(&w) {
            paths.remove(p);
            if paths.is_empty() {
                self.by_watcher.remove(&w);
            }
        }
    }

    fn remove(&mut self, p: &str, w: i64, only: Option<WatchMode>) -> bool {
        let Some(m) = self.by_path.get_mut(p) else {
            return false;
        };
        let removed = match (m.get(&w), only) {
            (Some(cur), Some(want)) if *cur != want => None,
            (Some(_), _) => m.remove(&w),
            (None, _) => None,
        };
        if m.is_empty() {
            self.by_path.remove(p);
        }
        if removed == Some(WatchMode::PersistentRecursive) {
            self.recursive -= 1;
        }
        if removed.is_some() {
            self.unindex(p, w);
        }
        removed.is_some()
    }

    fn remove_watcher(&mut self, w: i64) {
        let Some(paths) = self.by_watcher.remove(&w) else {
            return;
        };
        for p in paths {
            let Some(m) = self.by_path.get_mut(&p) else {
                continue;
            };
            if m.remove(&w) == Some(WatchMode::PersistentRecursive) {
                self.recursive -= 1;
            }
            if m.is_empty() {
                self.by_path.remove(&p);
            }
        }
    }

    /// Apache's `WatchManager.triggerWatch`.
    fn fire(&mut self, p: &str, event: EventType) -> BTreeSet<i64> {
        let mut out = BTreeSet::new();
        let mut cur = p;
        let mut at_parent = false;
        loop {
            if let Some(m) = self.by_path.get_mut(cur) {
                let mut consumed = Vec::new();
                for (w, mode) in m.iter() {
                    match mode {
                        WatchMode::PersistentRecursive
                            if event != EventType::NodeChildrenChanged =>
                        {
                            out.insert(*w);
                        }
                        WatchMode::Standard | WatchMode::Persistent if !at_parent => {
                            out.insert(*w);
                            if *mode == WatchMode::Standard {
                                consumed.push(*w);
                            }
                        }
                        _ => {}
                    }
                }
                for w in &consumed {
                    m.remove(w);
                }
                if m.is_empty() {
                    self.by_path.remove(cur);
                }
                for w in consumed {
                    self.unindex(cur, w);
                }
            }
            // Only recursive watches make ancestors relevant.
            if self.recursive == 0 || cur == "/" {
                break;
            }
            cur = path::parent(cur);
            at_parent = true;
        }
        out
    }

    fn len(&self) -> usize {
        self.by_path.values().map(|m| m.len()).sum()
    }
}

/// All watches: the data table (data and exist watches) and the child table.
#[derive(Debug, Clone, Default)]
pub struct WatchManager {
    data: Table,
    child: Table,
    /// How many watches each trigger fired, for `mntr`.
    pub fires: WatchFires,
}

impl WatchManager {
    /// An empty manager.
    pub fn new() -> Self {
        Self::default()
    }

    /// A one-shot data or exist watch.
    pub fn add_data(&mut self, p: &str, w: i64) {
        self.data.add(p, w, WatchMode::Standard);
    }

    /// A one-shot child watch.
    pub fn add_child(&mut self, p: &str, w: i64) {
        self.child.add(p, w, WatchMode::Standard);
    }

    /// addWatch: a persistent or persistent-recursive watch (in both tables).
    pub fn add_persistent(&mut self, p: &str, w: i64, recursive: bool) {
        let mode = if recursive {
            WatchMode::PersistentRecursive
        } else {
            WatchMode::Persistent
        };
        self.data.add(p, w, mode);
        self.child.add(p, w, mode);
    }

    /// checkWatches.
    pub fn contains(&self, p: &str, t: WatcherType, w: i64) -> bool {
        match t {
            WatcherType::Children => self.child.mode(p, w).is_some(),
            WatcherType::Data => self.data.mode(p, w).is_some(),
            WatcherType::Any => self.child.mode(p, w).is_some() || self.data.mode(p, w).is_some(),
            WatcherType::Persistent => {
                self.data.mode(p, w) == Some(WatchMode::Persistent)
                    || self.child.mode(p, w) == Some(WatchMode::Persistent)
            }
            WatcherType::PersistentRecursive => {
                self.data.mode(p, w) == Some(WatchMode::PersistentRecursive)
                    || self.child.mode(p, w) == Some(WatchMode::PersistentRecursive)
            }
            WatcherType::Unknown(_) => false,
        }
    }

    /// removeWatches; false if there was nothing to remove.
    pub fn remove(&mut self, p: &str, t: WatcherType, w: i64) -> bool {
        match t {
            WatcherType::Children => self.child.remove(p, w, None),
            WatcherType::Data => self.data.remove(p, w, None),
            WatcherType::Any => {
                let a = self.child.remove(p, w, None);
                let b = self.data.remove(p, w, None);
                a || b
            }
            WatcherType::Persistent => {
                let a = self.child.remove(p, w, Some(WatchMode::Persistent));
                let b = self.data.remove(p, w, Some(WatchMode::Persistent));
                a || b
            }
            WatcherType::PersistentRecursive => {
                let a = self
                    .child
                    .remove(p, w, Some(WatchMode::PersistentRecursive));
                let b = self.data.remove(p, w, Some(WatchMode::PersistentRecursive));
                a || b
            }
            WatcherType::Unknown(_) => false,
        }
    }

    /// Drops every watch of a watcher (its connection went away).
    pub fn remove_watcher(&mut self, w: i64) {
        self.data.remove_watcher(w);
        self.child.remove_watcher(w);
    }

    /// The sessions to notify of one tree change (Apache's DataTree trigger calls).
    pub fn trigger(&mut self, t: &Trigger) -> Vec<(i64, WatcherEvent)> {
        // Apache records one sample per table a trigger fires in.
        fn record(s: &mut Summary, fired: &BTreeSet<i64>) {
            if !fired.is_empty() {
                s.record(fired.len() as u64);
            }
        }
        let f = &mut self.fires;
        let who = match t.event {
            EventType::NodeCreated => {
                let a = self.data.fire(&t.path, t.event);
                record(&mut f.created, &a);
                a
            }
            EventType::NodeDataChanged => {
                let a = self.data.fire(&t.path, t.event);
                record(&mut f.changed, &a);
                a
            }
            EventType::NodeChildrenChanged => {
                let a = self.child.fire(&t.path, t.event);
                record(&mut f.children, &a);
                a
            }
            EventType::NodeDeleted => {
                let mut a = self.data.fire(&t.path, t.event);
                record(&mut f.deleted, &a);
                let b = self.child.fire(&t.path, t.event);
                record(&mut f.deleted, &b);
                a.extend(b);
                a
            }
            _ => BTreeSet::new(),
        };
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

    /// Total registrations in both tables (`wchs` "Total watches").
    pub fn count(&self) -> usize {
        self.data.len() + self.child.len()
    }

    /// What Apache's watch reports (`wchs`, `wchc`, `wchp`) show: the data table only
    /// (data, exist and persistent watches): (watchers, paths, registrations).
    pub fn data_summary(&self) -> (usize, usize, usize) {
        // Counted without building `wchc`'s listing: with a million watches that took
        // seconds of the core task and a copy of every watched path.
        (
            self.data.by_watcher.len(),
            self.data.by_path.len(),
            self.data.len(),
        )
    }

    /// Paths in the data table by session (`wchc`).
    pub fn data_by_session(&self) -> BTreeMap<i64, BTreeSet<String>> {
        let mut out: BTreeMap<i64, BTreeSet<String>> = BTreeMap::new();
        for (p, m) in &self.data.by_path {
            for w in m.keys() {
                out.entry(*w).or_default().insert(p.to_string());
            }
        }
        out
    }

    /// Sessions in the data table by path (`wchp`).
    pub fn data_by_path(&self) -> BTreeMap<String, BTreeSet<i64>> {
        self.data
            .by_path
            .iter()
            .map(|(p, m)| (p.to_string(), m.keys().copied().collect()))
            .collect()
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
        m.add_data("/a", 1);
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
        m.add_data("/a", 1);
        m.add_child("/a", 1);
        m.add_child("/a", 2);
        assert_eq!(
            sessions(m.trigger(&trig("/a", EventType::NodeDeleted))),
            vec![1, 2]
        );
        assert_eq!(m.count(), 0);
    }

    #[test]
    fn persistent_and_recursive() {
        let mut m = WatchManager::new();
        m.add_persistent("/a", 1, false);
        m.add_persistent("/a", 2, true);
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
        assert_eq!(m.count(), 4);
        assert!(m.contains("/a", WatcherType::PersistentRecursive, 2));
        assert!(m.remove("/a", WatcherType::Persistent, 1));
        assert!(!m.remove("/a", WatcherType::Persistent, 1));
        m.remove_watcher(2);
        assert_eq!(m.count(), 0);
    }

    #[test]
    fn later_registration_replaces_the_mode() {
        // As in Apache: a standard watch on a path with a recursive one turns it one-shot.
        let mut m = WatchManager::new();
        m.add_persistent("/a", 1, true);
        m.add_data("/a", 1);
        assert_eq!(
            sessions(m.trigger(&trig("/a", EventType::NodeDataChanged))),
            vec![1]
        );
        assert!(m
            .trigger(&trig("/a", EventType::NodeDataChanged))
            .is_empty());
        // The child table still holds the recursive registration.
        assert_eq!(
            sessions(m.trigger(&trig("/a", EventType::NodeDeleted))),
            vec![1]
        );
    }
}

#[cfg(test)]
mod index_tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// `by_watcher` as `by_path` implies it.
    fn derived(t: &Table) -> BTreeMap<i64, BTreeSet<String>> {
        let mut out: BTreeMap<i64, BTreeSet<String>> = BTreeMap::new();
        for (p, m) in &t.by_path {
            for w in m.keys() {
                out.entry(*w).or_default().insert(p.to_string());
            }
        }
        out
    }

    fn indexed(t: &Table) -> BTreeMap<i64, BTreeSet<String>> {
        t.by_watcher
            .iter()
            .map(|(w, ps)| (*w, ps.iter().map(|p| p.to_string()).collect()))
            .collect()
    }

    /// Whatever registers, fires, is removed or disconnects, each watcher's index is
    /// exactly its registrations, so a disconnect removes all of them and nothing else.
    #[test]
    fn the_watcher_index_follows_every_change() {
        let paths = ["/a", "/a/b", "/a/b/c", "/d", "/d/e"];
        let events = [
            EventType::NodeCreated,
            EventType::NodeDeleted,
            EventType::NodeDataChanged,
            EventType::NodeChildrenChanged,
        ];
        for seed in 0..20 {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut m = WatchManager::new();
            for _ in 0..2_000 {
                let p = paths[rng.gen_range(0..paths.len())];
                let w = rng.gen_range(1..6);
                match rng.gen_range(0..8) {
                    0 | 1 => m.add_data(p, w),
                    2 => m.add_child(p, w),
                    3 => m.add_persistent(p, w, rng.gen_bool(0.5)),
                    4 => {
                        let t = [
                            WatcherType::Children,
                            WatcherType::Data,
                            WatcherType::Any,
                            WatcherType::Persistent,
                            WatcherType::PersistentRecursive,
                        ][rng.gen_range(0..5)];
                        m.remove(p, t, w);
                    }
                    5 | 6 => {
                        let e = events[rng.gen_range(0..events.len())];
                        m.trigger(&Trigger {
                            path: p.into(),
                            event: e,
                        });
                    }
                    _ => {
                        let before = m.count();
                        let had = derived(&m.data).get(&w).map_or(0, |s| s.len())
                            + derived(&m.child).get(&w).map_or(0, |s| s.len());
                        m.remove_watcher(w);
                        assert_eq!(m.count(), before - had, "seed {seed}");
                        assert!(!derived(&m.data).contains_key(&w));
                        assert!(!derived(&m.child).contains_key(&w));
                    }
                }
                for t in [&m.data, &m.child] {
                    assert_eq!(indexed(t), derived(t), "seed {seed}");
                    let recursive = t
                        .by_path
                        .values()
                        .flat_map(|m| m.values())
                        .filter(|mode| **mode == WatchMode::PersistentRecursive)
                        .count();
                    assert_eq!(t.recursive, recursive, "seed {seed}");
                }
            }
        }
    }
}
