//! Server counters reported by `srvr`, `stat`, `mntr` and reset by `srst` / `crst`.

use std::net::SocketAddr;

/// Request latency and packet counters (Apache's `ServerStats`).
#[derive(Debug, Clone, Default)]
pub struct ServerStats {
    /// Packets received.
    pub packets_received: u64,
    /// Packets sent.
    pub packets_sent: u64,
    /// Smallest request latency, ms.
    pub min_latency: u64,
    /// Largest request latency, ms.
    pub max_latency: u64,
    /// Sum of latencies, ms.
    pub total_latency: u64,
    /// Requests measured.
    pub count: u64,
}

impl ServerStats {
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

    /// `srst`.
    pub fn reset(&mut self) {
        *self = ServerStats::default();
    }
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
    /// Min/max/total latency and count for this connection.
    pub latency: ServerStats,
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
            latency: ServerStats::default(),
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
        self.latency.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency() {
        let mut s = ServerStats::default();
        s.record_latency(4);
        s.record_latency(2);
        assert_eq!((s.min_latency, s.max_latency), (2, 4));
        assert_eq!(s.avg_latency(), 3.0);
        s.reset();
        assert_eq!(s.count, 0);
    }
}
