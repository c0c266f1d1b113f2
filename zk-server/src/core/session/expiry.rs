//! Apache's `ExpiryQueue`: items expire in buckets aligned on the tick, so one timer pass
//! per tick expires a whole bucket.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::Hash;

/// Items with deadlines rounded up to the next multiple of `interval`.
#[derive(Debug, Clone)]
pub struct ExpiryQueue<T: Hash + Eq + Clone> {
    interval: i64,
    deadline: HashMap<T, i64>,
    buckets: BTreeMap<i64, HashSet<T>>,
}

impl<T: Hash + Eq + Clone> ExpiryQueue<T> {
    /// A queue with buckets `interval` ms wide.
    pub fn new(interval: i64) -> Self {
        ExpiryQueue {
            interval: interval.max(1),
            deadline: HashMap::new(),
            buckets: BTreeMap::new(),
        }
    }

    fn round_up(&self, t: i64) -> i64 {
        (t / self.interval + 1) * self.interval
    }

    /// Sets an item's deadline to `now + timeout`, rounded to the next bucket.
    pub fn update(&mut self, item: T, now: i64, timeout: i64) {
        let when = self.round_up(now.saturating_add(timeout));
        if let Some(old) = self.deadline.insert(item.clone(), when) {
            if old == when {
                return;
            }
            if let Some(b) = self.buckets.get_mut(&old) {
                b.remove(&item);
                if b.is_empty() {
                    self.buckets.remove(&old);
                }
            }
        }
        self.buckets.entry(when).or_default().insert(item);
    }

    /// Forgets an item.
    pub fn remove(&mut self, item: &T) {
        if let Some(old) = self.deadline.remove(item) {
            if let Some(b) = self.buckets.get_mut(&old) {
                b.remove(item);
                if b.is_empty() {
                    self.buckets.remove(&old);
                }
            }
        }
    }

    /// Removes and returns every item whose bucket is at or before `now`.
    pub fn expire(&mut self, now: i64) -> Vec<T> {
        let mut out = Vec::new();
        while let Some((&when, _)) = self.buckets.first_key_value() {
            if when > now {
                break;
            }
            if let Some(items) = self.buckets.remove(&when) {
                for it in items {
                    self.deadline.remove(&it);
                    out.push(it);
                }
            }
        }
        out
    }

    /// Deadline of an item.
    pub fn deadline(&self, item: &T) -> Option<i64> {
        self.deadline.get(item).copied()
    }

    /// Buckets and their items (for the `dump` four-letter word).
    pub fn buckets(&self) -> impl Iterator<Item = (&i64, &HashSet<T>)> {
        self.buckets.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_round_up_and_touch_moves() {
        let mut q = ExpiryQueue::new(100);
        q.update(1, 1000, 250); // 1250 -> 1300
        assert_eq!(q.deadline(&1), Some(1300));
        assert!(q.expire(1299).is_empty());
        q.update(1, 1200, 250); // touched: 1450 -> 1500
        assert!(q.expire(1300).is_empty());
        assert_eq!(q.expire(1500), vec![1]);
        assert!(q.expire(10_000).is_empty());
    }
}
