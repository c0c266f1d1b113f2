//! Which sessions are alive and when they expire; hands out session ids.

use std::collections::HashMap;

use super::expiry::ExpiryQueue;

/// Local session liveness (the leader's / standalone server's `SessionTrackerImpl`).
///
/// The replicated session table lives in [`crate::state::database::ZkDatabase`]; this only tracks
/// deadlines and the closing flag.
#[derive(Debug, Clone)]
pub struct SessionTracker {
    next_id: i64,
    timeouts: HashMap<i64, i32>,
    closing: HashMap<i64, bool>,
    queue: ExpiryQueue<i64>,
}

impl SessionTracker {
    /// A tracker whose ids embed `server_id` in the top byte and start from `now_ms`,
    /// Apache's `(now << 24) >>> 8 | serverId << 56`.
    pub fn new(server_id: i64, tick_ms: i64, now_ms: i64) -> Self {
        let mut next_id = (((now_ms as u64) << 24) >> 8) as i64 | (server_id << 56);
        if next_id == i64::MIN {
            next_id += 1;
        }
        SessionTracker {
            next_id,
            timeouts: HashMap::new(),
            closing: HashMap::new(),
            queue: ExpiryQueue::new(tick_ms),
        }
    }

    /// Reserves the next session id.
    pub fn next_session_id(&mut self) -> i64 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        id
    }

    /// Starts tracking a session (new, or restored from disk).
    pub fn add(&mut self, id: i64, timeout: i32, now: i64) {
        self.timeouts.insert(id, timeout);
        self.closing.remove(&id);
        self.queue.update(id, now, i64::from(timeout));
    }

    /// Records activity; false if the session is unknown or closing.
    pub fn touch(&mut self, id: i64, now: i64) -> bool {
        match self.timeouts.get(&id) {
            Some(&t) if !self.is_closing(id) => {
                self.queue.update(id, now, i64::from(t));
                true
            }
            _ => false,
        }
    }

    /// Records activity of a session whose connection negotiated `timeout` (a client that
    /// reconnected asking another one): from now on it expires by that timeout, as
    /// Apache's `touchSession(id, cnxn.getSessionTimeout())`. False if the session is
    /// unknown or closing.
    pub fn touch_with(&mut self, id: i64, timeout: i32, now: i64) -> bool {
        match self.timeouts.get_mut(&id) {
            Some(t) if !self.closing.get(&id).copied().unwrap_or(false) => {
                *t = timeout;
                self.queue.update(id, now, i64::from(timeout));
                true
            }
            _ => false,
        }
    }

    /// Marks a session as closing: no more requests, no more expiry.
    pub fn set_closing(&mut self, id: i64) {
        if self.timeouts.contains_key(&id) {
            self.closing.insert(id, true);
            self.queue.remove(&id);
        }
    }

    /// Whether the session is closing.
    pub fn is_closing(&self, id: i64) -> bool {
        self.closing.get(&id).copied().unwrap_or(false)
    }

    /// Whether the session is known.
    pub fn contains(&self, id: i64) -> bool {
        self.timeouts.contains_key(&id)
    }

    /// Timeout of a session.
    pub fn timeout(&self, id: i64) -> Option<i32> {
        self.timeouts.get(&id).copied()
    }

    /// Stops tracking a session.
    pub fn remove(&mut self, id: i64) {
        self.timeouts.remove(&id);
        self.closing.remove(&id);
        self.queue.remove(&id);
    }

    /// Sessions whose deadline passed; they are marked closing.
    pub fn expire(&mut self, now: i64) -> Vec<i64> {
        let mut out = self.queue.expire(now);
        out.sort_unstable();
        for id in &out {
            self.closing.insert(*id, true);
        }
        out
    }

    /// Number of tracked sessions.
    pub fn len(&self) -> usize {
        self.timeouts.len()
    }

    /// True when no session is tracked.
    pub fn is_empty(&self) -> bool {
        self.timeouts.is_empty()
    }

    /// Expiry buckets, for `dump`.
    pub fn buckets(&self) -> Vec<(i64, Vec<i64>)> {
        self.queue
            .buckets()
            .map(|(t, s)| {
                let mut v: Vec<i64> = s.iter().copied().collect();
                v.sort_unstable();
                (*t, v)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_embed_server_id() {
        let mut t = SessionTracker::new(3, 2000, 1_700_000_000_000);
        let a = t.next_session_id();
        assert_eq!(a >> 56, 3);
        assert_eq!(t.next_session_id(), a + 1);
    }

    #[test]
    fn expiry_and_touch() {
        let mut t = SessionTracker::new(0, 100, 0);
        t.add(1, 1000, 0);
        t.add(2, 1000, 0);
        assert!(t.touch(2, 900));
        assert_eq!(t.expire(1100), vec![1]);
        assert!(t.is_closing(1));
        assert!(!t.touch(1, 1100));
        assert_eq!(t.expire(2000), vec![2]);
    }

    #[test]
    fn touch_with_a_new_timeout_keeps_it() {
        let mut t = SessionTracker::new(0, 100, 0);
        t.add(1, 4000, 0);
        assert!(t.touch_with(1, 400, 100));
        assert_eq!(t.timeout(1), Some(400));
        // Later touches use it too.
        assert!(t.touch(1, 200));
        assert!(t.expire(600).is_empty());
        assert_eq!(t.expire(700), vec![1]);
        assert!(!t.touch_with(1, 4000, 700));
        assert!(!t.touch_with(2, 400, 700));
    }
}
