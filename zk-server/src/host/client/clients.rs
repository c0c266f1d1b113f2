//! The client connections of one server (standalone or ensemble member) as its core task
//! sees them: where each connection's frames go, its `cons` counters, the server's
//! `srvr` counters and request latencies, and the global outstanding-request throttle.
//! Turns the processor's replies, handshakes and events into frames.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use zk_proto::{
    write_frame, ConnectResponse, ErrorCode, OpCode, Record, ReplyHeader, Response, WatcherEvent,
};

use super::connection::Throttle;
use super::{ConnCmd, ConnTx};
use crate::admin::stats::{ConnStats, ServerStats};
use crate::core::processor::ConnId;

struct Entry {
    tx: ConnTx,
    stats: ConnStats,
}

/// Every client connection of a server, with its counters.
pub struct Clients {
    conns: HashMap<ConnId, Entry>,
    /// Server-wide counters (`srvr`, `mntr`; reset by `srst`).
    pub stats: ServerStats,
    throttle: Arc<Throttle>,
    /// What the connection tasks count (`mntr`; reset by `srst` with the rest).
    pub net: Arc<crate::admin::stats::NetCounters>,
    /// Requests awaiting their reply, by connection and xid (several pings may share one).
    in_flight: HashMap<(ConnId, i32), VecDeque<(Instant, OpCode)>>,
    /// Handshakes creating a session, awaiting their reply: Apache measures a session's
    /// creation like a write.
    creating: HashMap<ConnId, Instant>,
}

fn op_name(op: OpCode) -> &'static str {
    match op {
        OpCode::Create | OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => "CREA",
        OpCode::Delete => "DELE",
        OpCode::Exists => "EXIS",
        OpCode::GetData => "GETD",
        OpCode::SetData => "SETD",
        OpCode::GetChildren | OpCode::GetChildren2 => "GETC",
        OpCode::Ping => "PING",
        OpCode::Multi => "MULT",
        OpCode::Sync => "SYNC",
        _ => "OTHR",
    }
}

impl Clients {
    /// No connections yet; replies release requests counted in `throttle`.
    pub fn new(throttle: Arc<Throttle>, net: Arc<crate::admin::stats::NetCounters>) -> Self {
        Clients {
            conns: HashMap::new(),
            stats: ServerStats::default(),
            throttle,
            net,
            in_flight: HashMap::new(),
            creating: HashMap::new(),
        }
    }

    /// Requests in flight across all connections.
    pub fn outstanding(&self) -> usize {
        self.throttle.current()
    }

    /// Number of connections.
    pub fn len(&self) -> usize {
        self.conns.len()
    }

    /// Whether there is no connection.
    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    /// Whether a connection is still open.
    pub fn contains(&self, conn: ConnId) -> bool {
        self.conns.contains_key(&conn)
    }

    /// Ids of every connection.
    pub fn ids(&self) -> Vec<ConnId> {
        self.conns.keys().copied().collect()
    }

    /// A connection finished its handshake frame.
    pub fn accepted(&mut self, conn: ConnId, peer: SocketAddr, tx: ConnTx, now: i64) {
        tracing::debug!("connection {conn} from {peer} accepted");
        self.conns.insert(
            conn,
            Entry {
                tx,
                stats: ConnStats::new(peer, now),
            },
        );
    }

    /// The peer ip of a connection (its `ip` auth identity).
    pub fn ip(&self, conn: ConnId) -> String {
        self.conns
            .get(&conn)
            .map(|c| c.stats.peer.ip().to_string())
            .unwrap_or_default()
    }

    /// Counts a handshake in; `new_session` when it asks for a new session (session id 0).
    pub fn connect_received(&mut self, conn: ConnId, new_session: bool) {
        self.stats.packets_received += 1;
        self.stats.connection_requests += 1;
        if new_session {
            self.creating.insert(conn, Instant::now());
        } else {
            self.stats.connection_revalidates += 1;
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            c.stats.received += 1;
        }
    }

    /// Counts a request in: its reply will release it and measure its latency.
    pub fn request_received(&mut self, conn: ConnId, xid: i32, op: OpCode) {
        self.stats.packets_received += 1;
        if let Some(c) = self.conns.get_mut(&conn) {
            c.stats.received += 1;
            c.stats.queued += 1;
        }
        // Pings are answered with the ping xid whatever they carried.
        let key = if op == OpCode::Ping {
            zk_proto::xid::PING
        } else {
            xid
        };
        self.in_flight
            .entry((conn, key))
            .or_default()
            .push_back((Instant::now(), op));
    }

    /// The connection closed: what it had in flight no longer counts.
    pub fn disconnected(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.remove(&conn) {
            tracing::debug!(
                "connection {conn} from {} closed (session {:#x})",
                c.stats.peer,
                c.stats.session.unwrap_or(0)
            );
            self.throttle.done(c.stats.queued as usize);
        }
        self.in_flight.retain(|(c, _), _| *c != conn);
        self.creating.remove(&conn);
    }

    /// Asks a connection to close once what was queued for it is sent.
    pub fn close(&self, conn: ConnId) {
        if let Some(c) = self.conns.get(&conn) {
            let _ = c.tx.unbounded_send(ConnCmd::Close);
        }
    }

    /// Closes every connection.
    pub fn close_all(&self) {
        self.close_all_but(|_| false);
    }

    /// Closes every connection but those `keep` names.
    pub fn close_all_but(&self, keep: impl Fn(ConnId) -> bool) {
        for (conn, c) in &self.conns {
            if !keep(*conn) {
                let _ = c.tx.unbounded_send(ConnCmd::Close);
            }
        }
    }

    fn send(&mut self, conn: ConnId, frame: BytesMut) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.stats.sent += 1;
            self.stats.packets_sent += 1;
            let _ = c.tx.unbounded_send(ConnCmd::Frame(frame.freeze()));
        }
    }

    /// Sends a reply, releasing its request (latency, throttle, `cons` counters).
    pub fn reply(&mut self, conn: ConnId, header: ReplyHeader, body: &Response) {
        let started = match self.in_flight.get_mut(&(conn, header.xid)) {
            Some(q) => {
                let first = q.pop_front();
                if q.is_empty() {
                    self.in_flight.remove(&(conn, header.xid));
                }
                first
            }
            None => None,
        };
        if let Some((t, op)) = started {
            let ms = t.elapsed().as_millis() as u64;
            self.stats.latency.record_latency(ms);
            // Apache's split: txns are updates, everything else (pings too) reads.
            match op.is_write() {
                true => self.stats.update_latency.record(ms),
                false => self.stats.read_latency.record(ms),
            }
            if let Some(c) = self.conns.get_mut(&conn) {
                c.stats.latency.record_latency(ms);
                c.stats.last_latency = ms;
                c.stats.last_op = op_name(op);
                c.stats.last_zxid = header.zxid;
                if header.xid >= 0 {
                    c.stats.last_cxid = i64::from(header.xid);
                }
                if c.stats.queued > 0 {
                    c.stats.queued -= 1;
                    self.throttle.done(1);
                }
            }
        }
        let mut b = BytesMut::new();
        write_frame(&mut b, |w| {
            header.write(w);
            // Apache writes any non-null record, whatever the error: a failed multi's
            // results, a failed sasl's null token.
            if header.err == ErrorCode::Ok || matches!(body, Response::Multi(_) | Response::Sasl(_))
            {
                body.write(w);
            }
        });
        // Apache's response size: the frame without its length prefix.
        let size = b.len().saturating_sub(4);
        self.stats.client_response.record(size);
        self.stats.response_bytes += size as u64;
        self.send(conn, b);
    }

    /// Sends the handshake reply and, for a live session, lets the connection read the
    /// requests behind it.
    pub fn connected(&mut self, conn: ConnId, resp: &ConnectResponse) {
        let created = self.creating.remove(&conn);
        if let (Some(t), true) = (created, resp.session_id != 0) {
            let ms = t.elapsed().as_millis() as u64;
            self.stats.latency.record_latency(ms);
            self.stats.update_latency.record(ms);
        }
        if let (Some(c), true) = (self.conns.get(&conn), resp.session_id != 0) {
            let what = if created.is_some() {
                "established"
            } else {
                "reconnected"
            };
            tracing::info!(
                "session {:#x} {what} for client {}, timeout {} ms",
                resp.session_id,
                c.stats.peer,
                resp.timeout
            );
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            c.stats.session = Some(resp.session_id).filter(|s| *s != 0);
            c.stats.timeout = resp.timeout;
        }
        let mut b = BytesMut::new();
        write_frame(&mut b, |w| resp.write(w));
        self.send(conn, b);
        // An expired reply is followed by a close: what the client sent behind the
        // handshake is never read.
        if resp.timeout > 0 {
            if let Some(c) = self.conns.get(&conn) {
                let _ = c.tx.unbounded_send(ConnCmd::Established);
            }
        }
    }

    /// Sends a watch notification.
    pub fn event(&mut self, conn: ConnId, event: &WatcherEvent) {
        let mut b = BytesMut::new();
        write_frame(&mut b, |w| {
            ReplyHeader {
                xid: zk_proto::xid::NOTIFICATION,
                zxid: -1,
                err: ErrorCode::Ok,
            }
            .write(w);
            event.write(w);
        });
        self.send(conn, b);
    }

    /// Counts a four-letter word in and applies `crst` / `srst`.
    pub fn four_letter(&mut self, cmd: &str) {
        // Apache counts the command as a received packet.
        self.stats.packets_received += 1;
        match cmd {
            "srst" => {
                self.stats.reset();
                self.net.reset();
            }
            "crst" => self.reset_connection_stats(),
            _ => {}
        }
    }

    /// Resets every connection's counters (`crst`, `connection_stat_reset`).
    pub fn reset_connection_stats(&mut self) {
        for c in self.conns.values_mut() {
            c.stats.reset();
        }
    }

    /// The connections, oldest first, for `stat` / `cons` / `dump`.
    pub fn listing(&self) -> Vec<&ConnStats> {
        let mut conns: Vec<&ConnStats> = self.conns.values().map(|c| &c.stats).collect();
        conns.sort_by_key(|c| c.established);
        conns
    }
}

/// The connection asking a four-letter word, as Apache lists it last.
pub fn asking(peer: SocketAddr, now: i64) -> ConnStats {
    let mut asking = ConnStats::new(peer, now);
    asking.received = 1;
    asking.four_letter = true;
    asking
}
