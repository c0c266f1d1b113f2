//! [`MemberGate`]: what an ensemble member holds back from its processor while the
//! quorum answers for it, sans-IO (time is an argument: the member's monotonic clock).
//!
//! - A follower's sync goes through the leader; the connection's later requests wait
//!   behind it so replies stay in order, and the leader answers syncs in order.
//! - A handshake with a session moving here waits for the leader to revalidate it
//!   (REVALIDATE, answered in order per session).
//! - A handshake whose session is valid ensemble-wide but whose createSession is not
//!   applied here yet waits for it, up to a deadline (so a client moving right after
//!   creating its session is not told that it expired).
//! - A handshake that reaches a member while it elects or syncs waits for it to serve,
//!   up to the same grace period counted from when it stopped serving. Apache closes such
//!   connections at once, and every client then backs off and retries while the election
//!   runs; held here, a client is answered the moment the member serves. A member cut off
//!   for longer than the grace period closes them at once, as Apache does, so clients move
//!   on to members that serve.
//! - A member LOOKING for longer than a grace period may serve read-only clients.

use std::collections::{HashMap, VecDeque};

use zk_proto::{ConnectRequest, Request};

use super::processor::ConnId;

/// Longest a handshake waits for its session's createSession to be applied (ms).
const MAX_APPLY_WAIT: i64 = 10_000;

/// The member's held syncs, pending handshakes and read-only timing.
#[derive(Debug)]
pub struct MemberGate {
    /// Connections whose syncs were forwarded, oldest first.
    syncs: VecDeque<ConnId>,
    /// Per connection: a forwarded sync and the requests that came after it.
    held: HashMap<ConnId, VecDeque<(i32, Request)>>,
    /// Handshakes waiting for the leader to revalidate their session, oldest first.
    revalidating: HashMap<i64, VecDeque<(ConnId, ConnectRequest)>>,
    /// Handshakes waiting for their session's createSession, with their deadline.
    unapplied: Vec<(ConnId, ConnectRequest, i64)>,
    /// Handshakes that came while the member did not serve, with their deadline.
    awaiting_serving: HashMap<ConnId, (ConnectRequest, i64)>,
    /// LOOKING this long (ms) before serving read-only clients; also how long after the
    /// member stopped serving handshakes are held for it.
    read_only_grace: i64,
    /// Since when the peer has been LOOKING (`None`: it is not).
    looking_since: Option<i64>,
    /// Since when the member has not served (`None`: it serves).
    not_serving_since: Option<i64>,
    /// Serving read-only clients while cut off from a quorum.
    read_only: bool,
}

impl MemberGate {
    /// An empty gate, LOOKING since `now`; read-only mode may start after `read_only_grace`
    /// ms of LOOKING.
    pub fn new(read_only_grace: i64, now: i64) -> Self {
        MemberGate {
            syncs: VecDeque::new(),
            held: HashMap::new(),
            revalidating: HashMap::new(),
            unapplied: Vec::new(),
            awaiting_serving: HashMap::new(),
            read_only_grace,
            looking_since: Some(now),
            not_serving_since: Some(now),
            read_only: false,
        }
    }

    /// How long (ms) a member may be LOOKING before serving read-only clients, and holds
    /// handshakes after it stopped serving.
    pub fn grace(&self) -> i64 {
        self.read_only_grace
    }

    /// Whether read-only clients are being served.
    pub fn read_only(&self) -> bool {
        self.read_only
    }

    /// Holds a request of a connection whose sync is still with the leader; gives it
    /// back when the connection has none.
    pub fn hold(&mut self, conn: ConnId, xid: i32, req: Request) -> Option<(i32, Request)> {
        match self.held.get_mut(&conn) {
            Some(q) => {
                q.push_back((xid, req));
                None
            }
            None => Some((xid, req)),
        }
    }

    /// A connection's sync was forwarded to the leader: it and what follows wait.
    pub fn sync_forwarded(&mut self, conn: ConnId, xid: i32, req: Request) {
        self.syncs.push_back(conn);
        self.held.insert(conn, VecDeque::from([(xid, req)]));
    }

    /// The leader answered the oldest forwarded sync: its connection and the requests to
    /// process now, the sync first (`None` if that connection is gone).
    pub fn sync_done(&mut self) -> Option<(ConnId, VecDeque<(i32, Request)>)> {
        let conn = self.syncs.pop_front()?;
        let q = self.held.remove(&conn)?;
        Some((conn, q))
    }

    /// A connection closed: what it held goes.
    pub fn disconnected(&mut self, conn: ConnId) {
        self.held.remove(&conn);
        self.awaiting_serving.remove(&conn);
    }

    /// A handshake reached the member while it does not serve: holds it until the member
    /// serves, unless it has not served for the whole grace period already (then `false`:
    /// the caller closes the connection and the client tries another member).
    pub fn await_serving(&mut self, conn: ConnId, req: ConnectRequest, now: i64) -> bool {
        let Some(since) = self.not_serving_since else {
            return false;
        };
        let deadline = since + self.read_only_grace;
        if now >= deadline {
            return false;
        }
        self.awaiting_serving.insert(conn, (req, deadline));
        true
    }

    /// Whether `conn`'s handshake waits for the member to serve.
    pub fn awaits_serving(&self, conn: ConnId) -> bool {
        self.awaiting_serving.contains_key(&conn)
    }

    /// The handshakes held for the member to serve, to answer now (it serves, or serves
    /// read-only clients).
    pub fn take_awaiting_serving(&mut self) -> Vec<(ConnId, ConnectRequest)> {
        self.awaiting_serving
            .drain()
            .map(|(conn, (req, _))| (conn, req))
            .collect()
    }

    /// Held handshakes whose deadline passed with the member still not serving: their
    /// connections are to be closed.
    pub fn awaiting_serving_due(&mut self, now: i64) -> Vec<ConnId> {
        let mut due = Vec::new();
        self.awaiting_serving.retain(|conn, (_, deadline)| {
            let keep = now < *deadline;
            if !keep {
                due.push(*conn);
            }
            keep
        });
        due
    }

    /// A handshake waits for the leader to revalidate `session`.
    pub fn await_revalidation(&mut self, session: i64, conn: ConnId, req: ConnectRequest) {
        self.revalidating
            .entry(session)
            .or_default()
            .push_back((conn, req));
    }

    /// The leader answered a REVALIDATE of `session`: the oldest handshake waiting on it.
    pub fn revalidated(&mut self, session: i64) -> Option<(ConnId, ConnectRequest)> {
        let q = self.revalidating.get_mut(&session)?;
        let waiting = q.pop_front();
        if q.is_empty() {
            self.revalidating.remove(&session);
        }
        waiting
    }

    /// A handshake waits (from `now`, at most its timeout, capped) for its session's
    /// createSession to be applied.
    pub fn await_apply(&mut self, conn: ConnId, req: ConnectRequest, now: i64) {
        let wait = i64::from(req.timeout).clamp(0, MAX_APPLY_WAIT);
        self.unapplied.push((conn, req, now + wait));
    }

    /// Whether handshakes wait for their session to be applied.
    pub fn awaits_apply(&self) -> bool {
        !self.unapplied.is_empty()
    }

    /// The waiting handshakes to answer now: those whose session is `applied`, and those
    /// past their deadline (the processor answers them as expired). Those of connections
    /// no longer `alive` are dropped.
    pub fn applied_or_due(
        &mut self,
        now: i64,
        applied: impl Fn(i64) -> bool,
        alive: impl Fn(ConnId) -> bool,
    ) -> Vec<(ConnId, ConnectRequest)> {
        let mut ready = Vec::new();
        self.unapplied.retain(|(conn, req, deadline)| {
            if !alive(*conn) {
                return false;
            }
            if applied(req.session_id) || now >= *deadline {
                ready.push((*conn, req.clone()));
                return false;
            }
            true
        });
        ready
    }

    /// The peer's role changed (`looking`: it is LOOKING now). Read-only mode ends, and
    /// when the member stops serving (or leaves read-only mode) everything held is
    /// dropped: its clients are disconnected. Returns whether read-only mode was on.
    pub fn role_changed(&mut self, looking: bool, serving: bool, now: i64) -> bool {
        let was_read_only = std::mem::take(&mut self.read_only);
        self.looking_since = match (looking, self.looking_since) {
            (true, Some(t)) => Some(t),
            (true, None) => Some(now),
            (false, _) => None,
        };
        self.not_serving_since = match (serving, self.not_serving_since) {
            (false, Some(t)) => Some(t),
            (false, None) => Some(now),
            (true, _) => None,
        };
        if !serving || was_read_only {
            self.syncs.clear();
            self.held.clear();
            self.revalidating.clear();
            self.unapplied.clear();
        }
        was_read_only
    }

    /// Whether to start serving read-only clients now (read-only mode `enabled`, LOOKING
    /// for the grace period); if so the gate is read-only from here on.
    pub fn enter_read_only(&mut self, enabled: bool, now: i64) -> Option<i64> {
        let since = self.looking_since?;
        if self.read_only || !enabled || now - since < self.read_only_grace {
            return None;
        }
        self.read_only = true;
        Some(now - since)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zk_proto::ops::{PathRequest, PathWatchRequest};

    fn get(path: &str) -> Request {
        Request::GetData(PathWatchRequest {
            path: path.into(),
            watch: false,
        })
    }

    fn sync() -> Request {
        Request::Sync(PathRequest { path: "/".into() })
    }

    fn handshake(session: i64, timeout: i32) -> ConnectRequest {
        ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout,
            session_id: session,
            passwd: vec![0u8; 16].into(),
            read_only: None,
        }
    }

    #[test]
    fn requests_after_a_sync_wait_for_it_and_syncs_end_in_order() {
        let mut g = MemberGate::new(2000, 0);
        assert!(g.hold(1, 1, get("/a")).is_some(), "nothing held yet");
        g.sync_forwarded(1, 2, sync());
        assert!(g.hold(1, 3, get("/b")).is_none());
        g.sync_forwarded(2, 7, sync());
        assert!(g.hold(2, 8, get("/c")).is_none());
        // Another connection is not held up.
        assert!(g.hold(3, 1, get("/d")).is_some());

        let (conn, q) = g.sync_done().expect("first sync");
        assert_eq!(conn, 1);
        assert_eq!(q.iter().map(|(x, _)| *x).collect::<Vec<_>>(), vec![2, 3]);
        assert!(g.hold(1, 4, get("/e")).is_some(), "released");
        let (conn, q) = g.sync_done().expect("second sync");
        assert_eq!(conn, 2);
        assert_eq!(q.len(), 2);
        assert!(g.sync_done().is_none());
    }

    #[test]
    fn handshakes_wait_for_the_member_to_serve_within_the_grace_period() {
        let mut g = MemberGate::new(2000, 0);
        // Starting up (not serving since 0): held until 2000.
        assert!(g.await_serving(1, handshake(0, 4000), 100));
        assert!(g.await_serving(2, handshake(0x10, 4000), 1500));
        assert!(g.awaits_serving(1) && g.awaits_serving(2));
        g.disconnected(2);
        assert!(!g.awaits_serving(2));
        assert!(g.awaiting_serving_due(1999).is_empty());
        g.role_changed(false, true, 1800);
        let mut served: Vec<_> = g
            .take_awaiting_serving()
            .into_iter()
            .map(|(c, _)| c)
            .collect();
        served.sort();
        assert_eq!(served, vec![1], "released when the member serves");
        // Serving: nothing is held.
        assert!(!g.await_serving(3, handshake(0, 4000), 1900));

        // The leader goes at 10,000: held until 12,000, then closed.
        g.role_changed(true, false, 10_000);
        assert!(g.await_serving(4, handshake(0, 4000), 10_100));
        // Following but still syncing: still the same outage.
        g.role_changed(false, false, 10_500);
        assert!(g.await_serving(5, handshake(0, 4000), 11_000));
        assert!(g.awaiting_serving_due(11_999).is_empty());
        let mut due = g.awaiting_serving_due(12_000);
        due.sort();
        assert_eq!(due, vec![4, 5]);
        // Cut off past the grace period: closed at once, as Apache does.
        assert!(!g.await_serving(6, handshake(0, 4000), 12_001));
        assert!(g.take_awaiting_serving().is_empty());
    }

    #[test]
    fn a_sync_of_a_closed_connection_releases_nothing() {
        let mut g = MemberGate::new(2000, 0);
        g.sync_forwarded(1, 1, sync());
        g.sync_forwarded(2, 1, sync());
        g.disconnected(1);
        assert!(g.sync_done().is_none(), "connection 1 is gone");
        assert_eq!(g.sync_done().map(|(c, _)| c), Some(2));
    }

    #[test]
    fn revalidations_are_answered_in_order_per_session() {
        let mut g = MemberGate::new(2000, 0);
        g.await_revalidation(0x10, 1, handshake(0x10, 4000));
        g.await_revalidation(0x20, 2, handshake(0x20, 4000));
        g.await_revalidation(0x10, 3, handshake(0x10, 4000));
        assert_eq!(g.revalidated(0x10).map(|(c, _)| c), Some(1));
        assert_eq!(g.revalidated(0x10).map(|(c, _)| c), Some(3));
        assert!(g.revalidated(0x10).is_none());
        assert_eq!(g.revalidated(0x20).map(|(c, _)| c), Some(2));
        assert!(g.revalidated(0x99).is_none());
    }

    #[test]
    fn a_handshake_waits_for_its_session_until_applied_or_its_deadline() {
        let mut g = MemberGate::new(2000, 0);
        g.await_apply(1, handshake(0x10, 3000), 100);
        g.await_apply(2, handshake(0x20, 60_000), 100);
        g.await_apply(3, handshake(0x30, 3000), 100);
        let none = |_| false;
        let all = |_| true;
        assert!(g.applied_or_due(1000, none, all).is_empty());
        // 0x20 is applied now; connection 3 closed meanwhile.
        let ready = g.applied_or_due(2000, |s| s == 0x20, |c| c != 3);
        assert_eq!(ready.iter().map(|(c, _)| *c).collect::<Vec<_>>(), vec![2]);
        assert!(g.awaits_apply());
        // Connection 1 gives up at 100 + 3000.
        assert!(g.applied_or_due(3099, none, all).is_empty());
        let ready = g.applied_or_due(3100, none, all);
        assert_eq!(ready.iter().map(|(c, _)| *c).collect::<Vec<_>>(), vec![1]);
        assert!(!g.awaits_apply());
    }

    #[test]
    fn the_apply_wait_is_capped() {
        let mut g = MemberGate::new(2000, 0);
        g.await_apply(1, handshake(0x10, i32::MAX), 0);
        assert!(g.applied_or_due(9_999, |_| false, |_| true).is_empty());
        assert_eq!(g.applied_or_due(10_000, |_| false, |_| true).len(), 1);
    }

    #[test]
    fn read_only_mode_starts_after_the_grace_and_ends_with_any_role_change() {
        let mut g = MemberGate::new(2000, 0);
        assert_eq!(g.enter_read_only(true, 1999), None);
        assert_eq!(g.enter_read_only(false, 5000), None, "disabled");
        assert_eq!(g.enter_read_only(true, 2000), Some(2000));
        assert!(g.read_only());
        assert_eq!(g.enter_read_only(true, 3000), None, "already on");
        g.await_revalidation(0x10, 1, handshake(0x10, 4000));
        // A new election round keeps LOOKING, but read-only mode ends and its
        // clients go.
        assert!(g.role_changed(true, false, 3000));
        assert!(!g.read_only());
        assert!(g.revalidated(0x10).is_none());
        // Still LOOKING since 0: the grace is already over.
        assert_eq!(g.enter_read_only(true, 3001), Some(3001));
    }

    #[test]
    fn looking_restarts_the_grace_and_serving_keeps_what_is_held() {
        let mut g = MemberGate::new(2000, 0);
        assert!(!g.role_changed(false, true, 500));
        g.sync_forwarded(1, 1, sync());
        assert_eq!(g.enter_read_only(true, 10_000), None, "not looking");
        // Following another leader: still serving, the sync stays held.
        assert!(!g.role_changed(false, true, 600));
        assert_eq!(g.sync_done().map(|(c, _)| c), Some(1));
        g.sync_forwarded(2, 1, sync());
        assert!(!g.role_changed(true, false, 7000));
        assert!(g.sync_done().is_none(), "dropped when serving stops");
        assert_eq!(g.enter_read_only(true, 8999), None);
        assert_eq!(g.enter_read_only(true, 9000), Some(2000));
    }
}
