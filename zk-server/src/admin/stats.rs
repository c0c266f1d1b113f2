//! Server counters reported by `srvr`, `stat`, `mntr` and reset by `srst` / `crst`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};

/// Sizes of buffers sent (Apache's `BufferStats`: -1 until the first one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferStats {
    /// Size of the latest one, bytes.
    pub last: i64,
    /// Smallest, bytes.
    pub min: i64,
    /// Largest, bytes.
    pub max: i64,
}

impl Default for BufferStats {
    fn default() -> Self {
        BufferStats {
            last: -1,
            min: -1,
            max: -1,
        }
    }
}

impl BufferStats {
    /// Records one buffer's size.
    pub fn record(&mut self, size: usize) {
        let size = i64::try_from(size).unwrap_or(i64::MAX);
        self.last = size;
        if self.min < 0 || size < self.min {
            self.min = size;
        }
        self.max = self.max.max(size);
    }
}

/// How many recent samples a [`Summary`] keeps for its percentiles.
const SUMMARY_WINDOW: usize = 1024;

/// A latency summary as Apache's metrics provider prints it (`avg`, `min`, `max`, `cnt`,
/// `sum`, and the 50/95/99/99.9th percentiles). Percentiles are taken over the latest
/// `SUMMARY_WINDOW` samples (Apache's reservoir samples recent ones too), so memory
/// stays bounded.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Samples recorded.
    pub count: u64,
    /// Their sum.
    pub sum: u64,
    /// Smallest sample (0 before any).
    pub min: u64,
    /// Largest sample.
    pub max: u64,
    window: Vec<u64>,
    next: usize,
}

impl Summary {
    /// Records one sample.
    pub fn record(&mut self, v: u64) {
        if self.count == 0 || v < self.min {
            self.min = v;
        }
        self.max = self.max.max(v);
        self.sum = self.sum.saturating_add(v);
        self.count += 1;
        if self.window.len() < SUMMARY_WINDOW {
            self.window.push(v);
        } else if let Some(slot) = self.window.get_mut(self.next) {
            *slot = v;
        }
        self.next = (self.next + 1) % SUMMARY_WINDOW;
    }

    /// Mean of every sample (0 before any).
    pub fn avg(&self) -> f64 {
        match self.count {
            0 => 0.0,
            n => self.sum as f64 / n as f64,
        }
    }

    /// The `q` quantile (0..=1) of the recent samples, nearest rank (0 before any).
    pub fn quantile(&self, q: f64) -> u64 {
        let mut v = self.window.clone();
        v.sort_unstable();
        if v.is_empty() {
            return 0;
        }
        let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
        v.get(rank - 1).copied().unwrap_or(0)
    }
}

/// Request latency and packet counters (Apache's `ServerStats`, plus the metrics of
/// Apache's metrics provider that this server tracks).
#[derive(Debug, Clone, Default)]
pub struct ServerStats {
    /// Packets received.
    pub packets_received: u64,
    /// Packets sent.
    pub packets_sent: u64,
    /// Min/max/average request latency (`srvr`, `stat`).
    pub latency: Latency,
    /// Sizes of the replies sent to clients (`zk_*_client_response_size`).
    pub client_response: BufferStats,
    /// Handshakes received (`zk_connection_request_count`).
    pub connection_requests: u64,
    /// Handshakes resuming a session (`zk_connection_revalidate_count`).
    pub connection_revalidates: u64,
    /// Bytes of the replies sent to clients, length prefixes excluded (`zk_response_bytes`).
    pub response_bytes: u64,
    /// Latencies of reads, pings included (`zk_*_readlatency`).
    pub read_latency: Summary,
    /// Latencies of writes (`zk_*_updatelatency`).
    pub update_latency: Summary,
}

/// Smallest, largest and average request latency: the server's (`srvr`) and each
/// connection's (`cons`). Connections keep only this, not the server's summaries: idle
/// connections are many, and every byte here is multiplied by them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Latency {
    /// Smallest request latency, ms.
    pub min_latency: u64,
    /// Largest request latency, ms.
    pub max_latency: u64,
    /// Sum of latencies, ms.
    pub total_latency: u64,
    /// Requests measured.
    pub count: u64,
}

impl Latency {
    /// Records one request's latency.
    pub fn record_latency(&mut self, ms: u64) {
        if self.count == 0 || ms < self.min_latency {
            self.min_latency = ms;
        }
        self.max_latency = self.max_latency.max(ms);
        self.total_latency += ms;
        self.count += 1;
    }

    /// Average latency, ms.
    pub fn avg_latency(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.total_latency as f64 / self.count as f64
        }
    }
}

impl ServerStats {
    /// `srst`.
    pub fn reset(&mut self) {
        *self = ServerStats::default();
    }
}

/// What the disk measured (Apache's `fsynctime`, `snapshottime` and
/// `sync_processor_batch_size` summaries), kept by the storage layer: the cores never
/// read a clock.
#[derive(Debug, Clone, Default)]
pub struct DiskTimings {
    /// Each txn log fdatasync, ms (`fsynctime`).
    pub fsync: Summary,
    /// Each snapshot written, from start to the file being complete, ms (`snapshottime`).
    pub snapshot: Summary,
    /// Txns made durable by each fdatasync (`sync_processor_batch_size`).
    pub batch_size: Summary,
    /// Reading the data directory back at start (snapshot and txn log replay), ms
    /// (`dbinittime`).
    pub db_init: Summary,
    /// Txns replayed from the txn log at start (`startup_txns_loaded`).
    pub txns_loaded: Summary,
    /// Reading the snapshot at start, ms (`startup_snap_load_time`).
    pub snap_load: Summary,
    /// Replaying the txn log after the snapshot at start, ms (`startup_txns_load_time`).
    pub txns_load: Summary,
}

/// What the quorum side measured (Apache's `ServerMetrics` that need a clock or count
/// learner syncs), kept by the host: elections, proposals reaching a learner, learner
/// syncs served by a leader.
#[derive(Debug, Clone, Default)]
pub struct QuorumTimings {
    /// Each election, from starting to look to knowing the leader, ms (`election_time`).
    pub election: Summary,
    /// Learner: from the leader creating a txn (its header time) to the PROPOSAL
    /// arriving, ms (`proposal_latency`; wall clocks, so skew shows).
    pub proposal_latency: Summary,
    /// Learner: from the leader creating a txn to it committing here, ms
    /// (`commit_propagation_latency`).
    pub commit_propagation: Summary,
    /// Leader: learners synced by DIFF or TRUNC (`diff_count`).
    pub diff_count: u64,
    /// Leader: learners synced by a snapshot (`snap_count`).
    pub snap_count: u64,
    /// Leader: txns committed while leading (`commit_count`; Apache counts each COMMIT
    /// it broadcasts).
    pub commit_count: u64,
    /// Leader: from a txn's creation (its header time) to its quorum of acks, ms
    /// (`quorum_ack_latency`).
    pub quorum_ack_latency: Summary,
    /// Leader: sessions a learner asked it to revalidate (`revalidate_count`).
    pub revalidate_count: u64,
    /// Learner, once synced: PROPOSALs received (`learner_proposal_received_count`).
    pub learner_proposals_received: u64,
    /// Learner, once synced: COMMITs (an observer: INFORMs) received
    /// (`learner_commit_received_count`).
    pub learner_commits_received: u64,
    /// From the member starting to look for a leader (or starting) to serving again, ms
    /// (`unavailable_time`).
    pub unavailable: Summary,
    /// The same, for the times this member came back as leader
    /// (`leader_unavailable_time`).
    pub leader_unavailable: Summary,
    /// Follower: from the election naming the leader to being synced with it, ms
    /// (`follower_sync_time`; Apache starts after the epoch exchange, so this one also
    /// holds the connection to the leader).
    pub follower_sync: Summary,
    /// The same for an observer (`observer_sync_time`).
    pub observer_sync: Summary,
}

/// Counters the connection tasks keep beside the core (Apache's `ServerMetrics` for what
/// happens before a request reaches it). Atomics: the tasks share one set.
#[derive(Debug, Default)]
pub struct NetCounters {
    /// Bytes of client packets, length prefixes included (`bytes_received_count`).
    pub bytes_received: AtomicU64,
    /// Connections refused by `maxClientCnxns` or `maxCnxns` (`connection_rejected`).
    pub connection_rejected: AtomicU64,
    /// Failed TLS handshakes (`unsuccessful_handshake`).
    pub unsuccessful_handshake: AtomicU64,
    /// Connections closed for sending no handshake in time
    /// (`sessionless_connections_expired`).
    pub sessionless_expired: AtomicU64,
}

impl NetCounters {
    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, AtomicOrdering::Relaxed);
    }

    /// A counter's value.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(AtomicOrdering::Relaxed)
    }

    /// `srst`.
    pub fn reset(&self) {
        for c in [
            &self.bytes_received,
            &self.connection_rejected,
            &self.unsuccessful_handshake,
            &self.sessionless_expired,
        ] {
            c.store(0, AtomicOrdering::Relaxed);
        }
    }
}

/// How many watches each trigger of one kind fired (Apache's `node_*_watch_count`
/// summaries; a trigger that fires none is not counted, as in Apache).
#[derive(Debug, Clone, Default)]
pub struct WatchFires {
    /// NodeCreated (`node_created_watch_count`).
    pub created: Summary,
    /// NodeDeleted, each table apart (`node_deleted_watch_count`).
    pub deleted: Summary,
    /// NodeDataChanged (`node_changed_watch_count`).
    pub changed: Summary,
    /// NodeChildrenChanged (`node_children_watch_count`).
    pub children: Summary,
}

/// The leader's wall-clock time in a serialized txn (its TxnHeader: client id (8), cxid
/// (4), zxid (8), then the time (8)).
pub fn txn_header_time(txn: &[u8]) -> Option<i64> {
    let b = txn.get(20..28)?;
    Some(i64::from_be_bytes(<[u8; 8]>::try_from(b).ok()?))
}

/// Wall-clock ms from a txn header's `time` to `now_ms`; `None` when negative (clocks
/// skewed), which Apache does not record either.
pub fn since_txn_time(header_time: i64, now_ms: i64) -> Option<u64> {
    u64::try_from(now_ms.checked_sub(header_time)?).ok()
}

/// Per-connection counters (`cons`).
#[derive(Debug, Clone)]
pub struct ConnStats {
    /// Peer address.
    pub peer: SocketAddr,
    /// Packets received on this connection.
    pub received: u64,
    /// Packets sent on it.
    pub sent: u64,
    /// Session, once established.
    pub session: Option<i64>,
    /// Negotiated timeout.
    pub timeout: i32,
    /// Last zxid sent in a reply.
    pub last_zxid: i64,
    /// Last request xid (special xids excluded).
    pub last_cxid: i64,
    /// Last opcode name.
    pub last_op: &'static str,
    /// Last request's latency, ms.
    pub last_latency: u64,
    /// Min/max/average latency of this connection's requests.
    pub latency: Latency,
    /// When it connected, ms since the epoch.
    pub established: i64,
    /// Requests in flight.
    pub queued: u64,
    /// The connection asking a four-letter word (Apache lists it with interest ops 0).
    pub four_letter: bool,
}

impl ConnStats {
    /// Fresh counters.
    pub fn new(peer: SocketAddr, now: i64) -> Self {
        ConnStats {
            peer,
            received: 0,
            sent: 0,
            session: None,
            timeout: 0,
            last_zxid: -1,
            last_cxid: -1,
            last_op: "NA",
            last_latency: 0,
            latency: Latency::default(),
            established: now,
            queued: 0,
            four_letter: false,
        }
    }

    /// `crst`.
    pub fn reset(&mut self) {
        self.received = 0;
        self.sent = 0;
        self.last_zxid = -1;
        self.last_cxid = -1;
        self.last_op = "NA";
        self.last_latency = 0;
        self.latency = Latency::default();
    }
}

/// Open file descriptors of this process (`zk_open_file_descriptor_count`), from
/// `/proc/self/fd`; `None` where that is unavailable (Apache omits the key then too).
pub fn open_file_descriptors() -> Option<u64> {
    let dir = std::fs::read_dir("/proc/self/fd").ok()?;
    // The directory handle itself is one of the entries.
    Some((dir.count() as u64).saturating_sub(1))
}

/// This process's soft limit on open files (`zk_max_file_descriptor_count`, Apache's
/// `getMaxFileDescriptorCount`), from `/proc/self/limits`.
pub fn max_file_descriptors() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .next()?;
    match soft {
        "unlimited" => Some(u64::MAX),
        n => n.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency() {
        let mut s = ServerStats::default();
        s.latency.record_latency(4);
        s.latency.record_latency(2);
        assert_eq!((s.latency.min_latency, s.latency.max_latency), (2, 4));
        assert_eq!(s.latency.avg_latency(), 3.0);
        s.reset();
        assert_eq!(s.latency.count, 0);
    }

    #[test]
    fn file_descriptors() {
        let open = open_file_descriptors().expect("/proc/self/fd");
        let max = max_file_descriptors().expect("/proc/self/limits");
        // stdin, stdout, stderr at least (other tests open files concurrently).
        assert!(open >= 3 && open <= max, "{open} of {max}");
    }

    #[test]
    fn buffer_sizes() {
        let mut b = BufferStats::default();
        assert_eq!((b.last, b.min, b.max), (-1, -1, -1));
        b.record(10);
        b.record(4);
        b.record(7);
        assert_eq!((b.last, b.min, b.max), (7, 4, 10));
    }

    #[test]
    fn summary_percentiles() {
        let mut s = Summary::default();
        assert_eq!((s.quantile(0.5), s.avg()), (0, 0.0));
        for v in 1..=100 {
            s.record(v);
        }
        assert_eq!((s.min, s.max, s.count, s.sum), (1, 100, 100, 5050));
        assert_eq!(s.quantile(0.5), 50);
        assert_eq!(s.quantile(0.95), 95);
        assert_eq!(s.quantile(0.999), 100);
        // Only the latest window counts for percentiles, every sample for the rest.
        for _ in 0..SUMMARY_WINDOW {
            s.record(1000);
        }
        assert_eq!(s.quantile(0.5), 1000);
        assert_eq!(s.min, 1);
    }
}
