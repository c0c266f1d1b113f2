//! A node's child names, listed in the order Apache's `HashSet<String>` iterates them, so
//! getChildren answers come back in the same order from both servers.
//!
//! Java's HashMap puts a key in bucket `(h ^ h >>> 16) & (capacity - 1)` (h = the string's
//! hashCode), appends to the bucket's list, never shrinks, and doubles its capacity (8 at
//! first for a DataNode) when the size passes 3/4 of it; splitting a bucket keeps relative
//! order. Iteration is bucket by bucket, each in insertion order. That is reproduced here
//! from each name's insertion sequence and the largest capacity reached.

use std::collections::HashMap;

/// Java's `String.hashCode` over UTF-16 code units.
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// Java's bucket for `name` in a table of `capacity` buckets (a power of two).
pub fn java_bucket(name: &str, capacity: u32) -> u32 {
    let h = java_string_hash(name);
    let spread = h ^ ((h as u32) >> 16) as i32;
    (spread as u32) & capacity.max(1).wrapping_sub(1)
}

/// Sorts names given in insertion order into the order a Java `HashSet` of `capacity` buckets
/// iterates them: bucket by bucket, each bucket in insertion order.
pub fn sort_java_order(names: &mut [String], capacity: u32) {
    names.sort_by_cached_key(|n| java_bucket(n, capacity));
}

/// A set of names (Apache's per-session ephemeral sets and the like) (also used for other sets Apache keeps as `HashSet<String>`).
///
/// Most nodes are leaves, so the table is allocated on the first insert: an empty set costs
/// 24 bytes in its node instead of a whole hash map.
#[derive(Debug, Clone, Default)]
pub struct ChildSet {
    // Boxed on purpose: `None` plus a pointer is 8 bytes, an empty map 48.
    #[allow(clippy::box_collection)]
    entries: Option<Box<HashMap<String, u64>>>,
    next_seq: u64,
    /// Java's table capacity (a power of two).
    capacity: u32,
    /// Capacity of the first table (Java allocates it on the first insert); 0 means 8.
    initial: u32,
}

impl ChildSet {
    /// No children (a `new HashSet<>(8)`, as DataNode makes).
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty set whose first table has `capacity` buckets (a power of two), e.g. 16 for
    /// `new HashSet<>()`.
    pub fn with_initial_capacity(capacity: usize) -> Self {
        ChildSet {
            initial: u32::try_from(capacity.max(1).next_power_of_two()).unwrap_or(1 << 31),
            ..Self::default()
        }
    }

    /// What a `clone()` of this set iterates like: Java rebuilds the table at the size
    /// `tableSizeFor(n / 0.75 + 1)` and re-inserts in this set's iteration order.
    pub fn java_copy(&self) -> ChildSet {
        let n = self.len();
        let wanted = (n as f32 / 0.75f32 + 1.0f32) as usize;
        let mut copy = ChildSet::with_initial_capacity(wanted.max(1).next_power_of_two());
        for name in self.java_order() {
            copy.insert(name);
        }
        copy
    }

    /// Adds a name; false if it was already there.
    pub fn insert(&mut self, name: String) -> bool {
        let entries = self.entries.get_or_insert_with(Box::default);
        if entries.contains_key(&name) {
            return false;
        }
        entries.insert(name, self.next_seq);
        let len = entries.len() as u64;
        self.next_seq += 1;
        if self.capacity == 0 {
            self.capacity = if self.initial == 0 { 8 } else { self.initial };
        }
        while len > u64::from(self.capacity) * 3 / 4 {
            self.capacity = self.capacity.saturating_mul(2);
        }
        true
    }

    /// Removes a name; false if it was not there.
    pub fn remove(&mut self, name: &str) -> bool {
        self.entries
            .as_mut()
            .is_some_and(|e| e.remove(name).is_some())
    }

    /// Whether a name is present.
    pub fn contains(&self, name: &str) -> bool {
        self.entries.as_ref().is_some_and(|e| e.contains_key(name))
    }

    /// Number of children.
    pub fn len(&self) -> usize {
        self.entries.as_ref().map_or(0, |e| e.len())
    }

    /// True without children.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every child (and the capacity, as a fresh Java set would).
    pub fn clear(&mut self) {
        *self = ChildSet {
            initial: self.initial,
            ..ChildSet::default()
        };
    }

    /// Names in no particular order (cheap).
    pub fn iter(&self) -> impl Iterator<Item = &String> {
        self.entries.iter().flat_map(|e| e.keys())
    }

    /// Names in Apache's iteration order.
    pub fn java_order(&self) -> Vec<String> {
        let mut v: Vec<(u32, u64, &String)> = self
            .entries
            .iter()
            .flat_map(|e| e.iter())
            .map(|(name, seq)| (java_bucket(name, self.capacity), *seq, name))
            .collect();
        v.sort_unstable_by_key(|(bucket, seq, _)| (*bucket, *seq));
        v.into_iter().map(|(_, _, n)| n.clone()).collect()
    }
}

/// Child names in creation order, and the order Apache 3.8 listed them in (captured with
/// kazoo's get_children): the fixture of the child-order tests here and in the data tree.
#[cfg(test)]
pub(crate) const CAPTURED_INSERTED: [&str; 10] = [
    "zeta",
    "alpha",
    "m",
    "b12",
    "lock-0000000001",
    "x",
    "queue-",
    "aa",
    "node10",
    "node2",
];

/// See [`CAPTURED_INSERTED`].
#[cfg(test)]
pub(crate) const CAPTURED_ORDER: [&str; 10] = [
    "zeta",
    "aa",
    "node10",
    "b12",
    "node2",
    "alpha",
    "lock-0000000001",
    "x",
    "queue-",
    "m",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_hash_values() {
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("a"), 97);
        assert_eq!(java_string_hash("hello"), 99162322);
    }

    #[test]
    fn order_matches_a_java_hash_set() {
        // Captured from Apache 3.8 (kazoo get_children after creating in this order).
        let mut c = ChildSet::new();
        for n in CAPTURED_INSERTED {
            c.insert(n.to_string());
        }
        assert_eq!(c.java_order(), CAPTURED_ORDER);
        assert!(c.remove("x"));
        assert!(!c.remove("x"));
        assert_eq!(c.len(), 9);
    }

    #[test]
    fn clone_rebuilds_a_smaller_table() {
        // Apache 3.8 getEphemerals (a HashSet clone): capacity 4 for two entries.
        let mut c = ChildSet::with_initial_capacity(16);
        c.insert("/a/e-0000000002".into());
        c.insert("/e".into());
        assert_eq!(c.java_order(), vec!["/e", "/a/e-0000000002"]);
        assert_eq!(c.java_copy().java_order(), vec!["/a/e-0000000002", "/e"]);
    }
}
