//! Election connections with Apache's QuorumCnxManager semantics.
//!
//! Each pair of servers keeps one TCP connection. The caller opens with the handshake
//! (`long protocolVersion = -65536, long sid, int len, address`); a receiver with a larger
//! sid drops it and calls back, so the connection initiated by the larger sid is the one
//! kept. Notifications travel as `int length` + body. Messages to ourselves loop back.
//! Undeliverable messages are dropped (the election re-sends on its own timeouts).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::codec::{FramedRead, FramedWrite};
use zk_proto::election::{
    InitialMessage, Notification, ELECTION_PROTOCOL_VERSION, MAX_HANDSHAKE_ADDR_LEN,
};
use zk_proto::FrameCodec;

use super::link::{DialError, LinkKind, QuorumSecurity, QuorumStream};
use crate::zab::Sid;

/// Largest notification accepted (Apache caps election packets at 512 KiB).
const MAX_NOTIFICATION: usize = 512 * 1024;
/// How long a dial may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

struct Shared {
    my_sid: Sid,
    my_addr: String,
    /// Election addresses of the members (changed by reconfig).
    peers: Mutex<BTreeMap<Sid, SocketAddr>>,
    /// Live connections: sid -> (generation, writer queue).
    conns: Mutex<BTreeMap<Sid, (u64, mpsc::UnboundedSender<Bytes>)>>,
    /// The latest message waiting for a connection, per sid.
    pending: Mutex<BTreeMap<Sid, Bytes>>,
    dialing: Mutex<std::collections::BTreeSet<Sid>>,
    generation: std::sync::atomic::AtomicU64,
    inbound: mpsc::UnboundedSender<(Sid, Notification)>,
    security: QuorumSecurity,
}

/// The election network of one server.
pub struct ElectionNet {
    shared: Arc<Shared>,
    inbound: mpsc::UnboundedReceiver<(Sid, Notification)>,
    accept_task: tokio::task::JoinHandle<()>,
}

impl Drop for ElectionNet {
    fn drop(&mut self) {
        self.accept_task.abort();
        if let Ok(mut c) = self.shared.conns.lock() {
            c.clear();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ElectionNet {
    /// Starts serving election connections on `listener` for server `my_sid`, whose peers
    /// listen at `peers` (our own entry is ignored).
    pub fn start(my_sid: Sid, listener: TcpListener, peers: BTreeMap<Sid, SocketAddr>) -> Self {
        Self::start_secured(my_sid, listener, peers, QuorumSecurity::plaintext())
    }

    /// [`ElectionNet::start`] with links secured by `security`.
    pub fn start_secured(
        my_sid: Sid,
        listener: TcpListener,
        peers: BTreeMap<Sid, SocketAddr>,
        security: QuorumSecurity,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let my_addr = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let shared = Arc::new(Shared {
            my_sid,
            my_addr,
            peers: Mutex::new(peers),
            conns: Mutex::new(BTreeMap::new()),
            pending: Mutex::new(BTreeMap::new()),
            dialing: Mutex::new(Default::default()),
            generation: Default::default(),
            inbound: tx,
            security,
        });
        let s = shared.clone();
        let accept_task = tokio::spawn(async move {
            while let Ok((stream, peer)) = listener.accept().await {
                let s = s.clone();
                tokio::spawn(async move {
                    let _ = accepted(s, stream, peer).await;
                });
            }
        });
        ElectionNet {
            shared,
            inbound: rx,
            accept_task,
        }
    }

    /// Sends a notification to `to` (dialing if needed; ourselves: loop back).
    pub fn send(&self, to: Sid, n: &Notification) {
        if to == self.shared.my_sid {
            let _ = self.shared.inbound.send((to, n.clone()));
            return;
        }
        let mut b = BytesMut::new();
        n.write(&mut b);
        send_bytes(&self.shared, to, b.freeze());
    }

    /// The next notification received, with its sender.
    pub async fn recv(&mut self) -> Option<(Sid, Notification)> {
        self.inbound.recv().await
    }

    /// Adds or changes members' election addresses (a reconfig brought them).
    pub fn set_peers(&self, peers: &BTreeMap<Sid, SocketAddr>) {
        let mut p = lock(&self.shared.peers);
        for (sid, a) in peers {
            p.insert(*sid, *a);
        }
    }

    /// Sids we currently hold a connection with.
    pub fn connected(&self) -> Vec<Sid> {
        lock(&self.shared.conns).keys().copied().collect()
    }
}

fn send_bytes(shared: &Arc<Shared>, to: Sid, msg: Bytes) {
    if let Some((_, q)) = lock(&shared.conns).get(&to) {
        if q.send(msg.clone()).is_ok() {
            return;
        }
    }
    // Keep only the latest message per peer, like Apache's capacity-1 send queues.
    lock(&shared.pending).insert(to, msg);
    dial(shared.clone(), to);
}

fn dial(shared: Arc<Shared>, to: Sid) {
    let Some(addr) = lock(&shared.peers).get(&to).copied() else {
        return;
    };
    if !lock(&shared.dialing).insert(to) {
        return;
    }
    tokio::spawn(async move {
        let r = async {
            let mut stream = shared
                .security
                .dial(addr, LinkKind::Election, CONNECT_TIMEOUT)
                .await?;
            let mut hs = BytesMut::new();
            InitialMessage {
                protocol_version: Some(ELECTION_PROTOCOL_VERSION),
                sid: shared.my_sid,
                addr: shared.my_addr.clone(),
            }
            .write(&mut hs);
            let io = |e: std::io::Error| DialError::Unreachable(e);
            stream.write_all(&hs).await.map_err(io)?;
            stream.flush().await.map_err(io)?;
            // As Apache: the dialing side logs in whichever sid keeps the link.
            shared
                .security
                .login(
                    &mut stream,
                    &format!("server {to} at {addr} (election port)"),
                    to,
                )
                .await
                .map_err(|e| DialError::Refused(e.to_string()))?;
            Ok::<_, DialError>(stream)
        }
        .await;
        lock(&shared.dialing).remove(&to);
        match r {
            Ok(stream) => {
                if shared.my_sid > to {
                    register(shared, to, stream, Vec::new());
                }
                // Otherwise the peer (larger sid) drops this connection and calls us back.
            }
            Err(DialError::Refused(why)) => {
                tracing::warn!("election: cannot open a link to server {to}: {why}")
            }
            Err(DialError::Unreachable(e)) => {
                tracing::debug!("election: server {to} at {addr} unreachable: {e}")
            }
        }
    });
}

async fn accepted(
    shared: Arc<Shared>,
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
) -> std::io::Result<()> {
    let Some(mut stream) = shared.security.accept(tcp, peer, LinkKind::Election).await else {
        return Ok(());
    };
    let handshake = async {
        let first = stream.read_i64().await?;
        if first >= 0 {
            return Ok(first);
        }
        let sid = stream.read_i64().await?;
        let len = stream.read_i32().await?;
        if len < 0 || len as usize > MAX_HANDSHAKE_ADDR_LEN {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "bad election handshake address length",
            ));
        }
        let mut addr = vec![0u8; len as usize];
        stream.read_exact(&mut addr).await?;
        Ok(sid)
    };
    let sid = match tokio::time::timeout(CONNECT_TIMEOUT, handshake).await {
        Ok(Ok(sid)) => sid,
        Ok(Err(e)) => {
            tracing::debug!("election: bad handshake from {peer}: {e}");
            return Ok(());
        }
        Err(_) => {
            tracing::debug!("election: no handshake from {peer} in time");
            return Ok(());
        }
    };
    let ahead = match shared
        .security
        .check_login(&mut stream, &format!("server {sid} ({peer})"))
        .await
    {
        Ok(ahead) => ahead,
        Err(why) => {
            tracing::warn!("election: refusing server {sid} ({peer}): {why}");
            return Ok(());
        }
    };
    if sid < shared.my_sid {
        // The larger sid keeps the connection: close theirs, call them.
        drop(stream);
        if !lock(&shared.conns).contains_key(&sid) {
            dial(shared, sid);
        }
        return Ok(());
    }
    register(shared, sid, stream, ahead);
    Ok(())
}

/// Makes `stream` the connection with `sid`, replacing any older one.
/// `ahead`: bytes of the link already read (while looking for a quorum SASL login).
fn register(shared: Arc<Shared>, sid: Sid, stream: QuorumStream, ahead: Vec<u8>) {
    let gen = shared
        .generation
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (rd, wr) = stream.split();
    let rd = std::io::Cursor::new(ahead).chain(rd);
    let (tx, mut rx) = mpsc::unbounded_channel::<Bytes>();
    if let Some(m) = lock(&shared.pending).remove(&sid) {
        let _ = tx.send(m);
    }
    lock(&shared.conns).insert(sid, (gen, tx));
    let s = shared.clone();
    tokio::spawn(async move {
        let mut out = FramedWrite::new(wr, FrameCodec::new(MAX_NOTIFICATION));
        while let Some(m) = rx.recv().await {
            if out.send(m).await.is_err() {
                break;
            }
        }
        forget(&s, sid, gen);
    });
    tokio::spawn(async move {
        let mut input = FramedRead::new(rd, FrameCodec::new(MAX_NOTIFICATION));
        while let Some(Ok(frame)) = input.next().await {
            match Notification::decode(frame) {
                Ok(n) => {
                    if shared.inbound.send((sid, n)).is_err() {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        forget(&shared, sid, gen);
    });
}

fn forget(shared: &Shared, sid: Sid, gen: u64) {
    let mut c = lock(&shared.conns);
    if matches!(c.get(&sid), Some((g, _)) if *g == gen) {
        c.remove(&sid);
    }
}

/// Runs one election round over `net` until `election` decides (the election part of a
/// peer's tokio driver). Ticks every 10 ms; time is measured from the call.
pub async fn elect(
    net: &mut ElectionNet,
    election: &mut crate::zab::Election,
    last_zxid: crate::zab::Zxid,
    current_epoch: i64,
) -> crate::zab::election::Decision {
    use crate::zab::Action;
    let start = tokio::time::Instant::now();
    let now = || start.elapsed().as_millis() as u64;
    let mut out = Vec::new();
    election.start(now(), last_zxid, current_epoch, &mut out);
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    loop {
        for a in out.drain(..) {
            if let Action::SendNotification { to, n } = a {
                net.send(to, &n);
            }
        }
        let decision = tokio::select! {
            m = net.recv() => match m {
                Some((from, n)) => election.on_notification(now(), from, &n, &mut out),
                None => None,
            },
            _ = tick.tick() => election.tick(now(), &mut out),
        };
        if let Some(d) = decision {
            for a in out.drain(..) {
                if let Action::SendNotification { to, n } = a {
                    net.send(to, &n);
                }
            }
            return d;
        }
    }
}
