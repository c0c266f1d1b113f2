//! Shared by the `server_*` suites: an in-process server and a raw zk-proto client that
//! speaks frames directly (no dependency on zk-client), so tests see exactly what the server
//! sends.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;
use zk_proto::ops::*;
use zk_proto::{
    Acl, ConnectRequest, ConnectResponse, CreateMode, ErrorCode, FrameCodec, JuteReader, OpCode,
    Record, ReplyHeader, Request, RequestHeader, Response, WatcherEvent,
};
use zk_server::config::ServerConfig;
use zk_server::storage::store::MemoryStore;
use zk_server::{Server, ServerHandle};

/// Generous bound for anything a test waits on.
pub const WAIT: Duration = Duration::from_secs(5);

/// An in-process server over a temp dir.
pub struct TestServer {
    pub handle: Option<ServerHandle>,
    pub dir: tempfile::TempDir,
    pub store: MemoryStore,
}

impl TestServer {
    /// Starts with the test defaults (tick 200 ms, every 4lw) adjusted by `f`.
    pub async fn start_with(f: impl FnOnce(&mut ServerConfig)) -> TestServer {
        Self::start_with_store(MemoryStore::new(), f).await
    }

    /// Starts over a given in-memory store.
    pub async fn start_with_store(
        store: MemoryStore,
        f: impl FnOnce(&mut ServerConfig),
    ) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cfg = ServerConfig::for_tests(dir.path());
        f(&mut cfg);
        let handle = Server::start_in_memory(cfg, store.clone())
            .await
            .expect("server starts");
        TestServer {
            handle: Some(handle),
            dir,
            store,
        }
    }

    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    pub fn addr(&self) -> SocketAddr {
        self.handle.as_ref().expect("running").local_addr()
    }

    pub fn port(&self) -> u16 {
        self.addr().port()
    }

    pub async fn stop(&mut self) {
        if let Some(h) = self.handle.take() {
            h.stop().await.expect("clean stop");
        }
    }
}

/// One reply.
#[derive(Debug, Clone)]
pub struct Reply {
    pub header: ReplyHeader,
    pub body: Response,
}

impl Reply {
    pub fn err(&self) -> ErrorCode {
        self.header.err
    }
    pub fn stat(&self) -> zk_proto::Stat {
        match &self.body {
            Response::Stat(s) => s.stat.clone(),
            Response::GetData(d) => d.stat.clone(),
            Response::Create2(c) => c.stat.clone(),
            Response::GetChildren2(c) => c.stat.clone(),
            Response::GetAcl(a) => a.stat.clone(),
            other => panic!("no stat in {other:?} ({:?})", self.header.err),
        }
    }
    pub fn data(&self) -> Option<Bytes> {
        match &self.body {
            Response::GetData(d) => d.data.clone(),
            other => panic!("no data in {other:?} ({:?})", self.header.err),
        }
    }
    pub fn path(&self) -> String {
        match &self.body {
            Response::Create(c) => c.path.clone(),
            Response::Create2(c) => c.path.clone(),
            other => panic!("no path in {other:?} ({:?})", self.header.err),
        }
    }
    pub fn children(&self) -> Vec<String> {
        match &self.body {
            Response::GetChildren(c) => c.children.clone(),
            Response::GetChildren2(c) => c.children.clone(),
            other => panic!("no children in {other:?} ({:?})", self.header.err),
        }
    }
}

/// A raw client: frames in, frames out.
pub struct RawClient {
    io: Framed<TcpStream, FrameCodec>,
    pub session_id: i64,
    pub passwd: Bytes,
    pub timeout: i32,
    pub last_zxid: i64,
    next_xid: i32,
    pending: HashMap<i32, OpCode>,
    events: VecDeque<WatcherEvent>,
    replies: VecDeque<Reply>,
}

impl RawClient {
    /// New session with a 4 s timeout.
    pub async fn connect(addr: SocketAddr) -> RawClient {
        let (c, resp) = Self::handshake(
            addr,
            ConnectRequest {
                timeout: 4000,
                passwd: vec![0u8; 16].into(),
                read_only: Some(false),
                ..Default::default()
            },
        )
        .await
        .expect("connect");
        assert!(resp.timeout > 0, "session refused: {resp:?}");
        c
    }

    /// Sends a ConnectRequest; Err if the server closed instead of answering.
    pub async fn handshake(
        addr: SocketAddr,
        req: ConnectRequest,
    ) -> Result<(RawClient, ConnectResponse), String> {
        Self::handshake_pipelined(addr, req, &[]).await
    }

    /// Sends a ConnectRequest with `pipelined` requests (xid, request) right behind it in
    /// one write, as the Java client sends auth and SetWatches when it moves a session;
    /// Err if the server closed instead of answering the handshake. The replies are
    /// read with [`RawClient::recv`].
    pub async fn handshake_pipelined(
        addr: SocketAddr,
        req: ConnectRequest,
        pipelined: &[(i32, Request)],
    ) -> Result<(RawClient, ConnectResponse), String> {
        let mut stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let mut out = BytesMut::new();
        zk_proto::write_frame(&mut out, |w| req.write(w));
        for (xid, r) in pipelined {
            zk_proto::write_frame(&mut out, |w| {
                RequestHeader {
                    xid: *xid,
                    opcode: r.opcode(),
                }
                .write(w);
                r.write(w);
            });
        }
        tokio::io::AsyncWriteExt::write_all(&mut stream, &out)
            .await
            .map_err(|e| e.to_string())?;
        let mut io = Framed::new(stream, FrameCodec::default());
        let frame = tokio::time::timeout(WAIT, io.next())
            .await
            .map_err(|_| "timeout".to_string())?
            .ok_or("closed")?
            .map_err(|e| e.to_string())?;
        let resp = ConnectResponse::decode(frame).map_err(|e| e.to_string())?;
        let next_xid = pipelined.iter().map(|(x, _)| *x).max().unwrap_or(0).max(0) + 1;
        Ok((
            RawClient {
                io,
                session_id: resp.session_id,
                passwd: resp.passwd.clone(),
                timeout: resp.timeout,
                last_zxid: req.last_zxid_seen,
                next_xid,
                pending: pipelined.iter().map(|(x, r)| (*x, r.opcode())).collect(),
                events: VecDeque::new(),
                replies: VecDeque::new(),
            },
            resp,
        ))
    }

    /// Resumes this client's session on a new connection.
    pub async fn reconnect(
        &self,
        addr: SocketAddr,
    ) -> Result<(RawClient, ConnectResponse), String> {
        Self::handshake(
            addr,
            ConnectRequest {
                protocol_version: 0,
                last_zxid_seen: self.last_zxid,
                timeout: self.timeout,
                session_id: self.session_id,
                passwd: self.passwd.clone(),
                read_only: Some(false),
            },
        )
        .await
    }

    /// Sends a request with an explicit xid (pings, auth, setWatches use special ones).
    pub async fn send_xid(&mut self, xid: i32, req: &Request) {
        let mut b = BytesMut::new();
        RequestHeader {
            xid,
            opcode: req.opcode(),
        }
        .write(&mut b);
        req.write(&mut b);
        self.pending.insert(xid, req.opcode());
        self.io.send(b.freeze()).await.expect("send");
    }

    /// Tells the reply decoder which opcode a raw frame's xid carries.
    pub fn pending_op(&mut self, xid: i32, op: OpCode) {
        self.pending.insert(xid, op);
    }

    /// Sends raw bytes as one frame.
    pub async fn send_raw(&mut self, frame: Bytes) {
        self.io.send(frame).await.expect("send");
    }

    /// Pipelines a request; returns its xid.
    pub async fn send(&mut self, req: &Request) -> i32 {
        let xid = self.next_xid;
        self.next_xid += 1;
        self.send_xid(xid, req).await;
        xid
    }

    async fn read_frame(&mut self, wait: Duration) -> Option<Result<(), String>> {
        let frame = match tokio::time::timeout(wait, self.io.next()).await {
            Err(_) => return None,
            Ok(None) => return Some(Err("closed".into())),
            Ok(Some(Err(e))) => return Some(Err(e.to_string())),
            Ok(Some(Ok(f))) => f,
        };
        let mut r = JuteReader::new(frame);
        let header = ReplyHeader::read(&mut r).expect("reply header");
        if header.xid == zk_proto::xid::NOTIFICATION {
            self.events
                .push_back(WatcherEvent::read(&mut r).expect("event"));
            return Some(Ok(()));
        }
        if header.zxid > self.last_zxid {
            self.last_zxid = header.zxid;
        }
        let op = self.pending.remove(&header.xid).unwrap_or(OpCode::Ping);
        let body = Response::read(op, header.err, &mut r).expect("reply body");
        self.replies.push_back(Reply { header, body });
        Some(Ok(()))
    }

    /// The next reply (events are buffered aside).
    pub async fn recv(&mut self) -> Reply {
        self.try_recv().await.expect("reply")
    }

    /// The next reply, or why none came.
    pub async fn try_recv(&mut self) -> Result<Reply, String> {
        loop {
            if let Some(r) = self.replies.pop_front() {
                return Ok(r);
            }
            match self.read_frame(WAIT).await {
                None => return Err("timeout".into()),
                Some(Err(e)) => return Err(e),
                Some(Ok(())) => {}
            }
        }
    }

    /// Whether the server closed the connection within `wait`.
    pub async fn closed_within(&mut self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            match self.read_frame(left).await {
                None => return false,
                Some(Err(_)) => return true,
                Some(Ok(())) => {}
            }
        }
    }

    /// Request and its reply.
    pub async fn call(&mut self, req: Request) -> Reply {
        let xid = self.send(&req).await;
        let r = self.recv().await;
        assert_eq!(r.header.xid, xid, "replies out of order");
        r
    }

    /// The next watch event within `wait`.
    pub async fn event(&mut self, wait: Duration) -> Option<WatcherEvent> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(e) = self.events.pop_front() {
                return Some(e);
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return None;
            }
            match self.read_frame(left).await {
                None | Some(Err(_)) => return None,
                Some(Ok(())) => {}
            }
        }
    }

    /// Events already received or arriving within 200 ms.
    pub async fn drain_events(&mut self) -> Vec<WatcherEvent> {
        let mut v = Vec::new();
        while let Some(e) = self.event(Duration::from_millis(200)).await {
            v.push(e);
        }
        v
    }

    // Convenience wrappers.

    pub async fn create(&mut self, path: &str, data: &str, mode: CreateMode) -> Reply {
        self.call(Request::Create2(CreateRequest {
            path: path.into(),
            data: Some(Bytes::copy_from_slice(data.as_bytes())),
            acl: Acl::open_unsafe(),
            flags: mode.to_flags(),
        }))
        .await
    }

    pub async fn create_acl(&mut self, path: &str, acl: Vec<Acl>) -> Reply {
        self.call(Request::Create(CreateRequest {
            path: path.into(),
            data: None,
            acl,
            flags: 0,
        }))
        .await
    }

    pub async fn get(&mut self, path: &str, watch: bool) -> Reply {
        self.call(Request::GetData(PathWatchRequest {
            path: path.into(),
            watch,
        }))
        .await
    }

    pub async fn exists(&mut self, path: &str, watch: bool) -> Reply {
        self.call(Request::Exists(PathWatchRequest {
            path: path.into(),
            watch,
        }))
        .await
    }

    pub async fn children(&mut self, path: &str, watch: bool) -> Reply {
        self.call(Request::GetChildren2(PathWatchRequest {
            path: path.into(),
            watch,
        }))
        .await
    }

    pub async fn set(&mut self, path: &str, data: &str, version: i32) -> Reply {
        self.call(Request::SetData(SetDataRequest {
            path: path.into(),
            data: Some(Bytes::copy_from_slice(data.as_bytes())),
            version,
        }))
        .await
    }

    pub async fn delete(&mut self, path: &str, version: i32) -> Reply {
        self.call(Request::Delete(DeleteRequest {
            path: path.into(),
            version,
        }))
        .await
    }

    pub async fn add_auth(&mut self, scheme: &str, auth: &str) -> Reply {
        let req = Request::Auth(zk_proto::AuthPacket {
            auth_type: 0,
            scheme: scheme.into(),
            auth: Bytes::copy_from_slice(auth.as_bytes()),
        });
        self.send_xid(zk_proto::xid::AUTH, &req).await;
        self.recv().await
    }

    pub async fn ping(&mut self) -> Reply {
        self.send_xid(zk_proto::xid::PING, &Request::Ping).await;
        self.recv().await
    }

    pub async fn close(mut self) -> Reply {
        let r = self.call(Request::CloseSession).await;
        assert!(
            self.closed_within(WAIT).await,
            "server closes after closeSession"
        );
        r
    }
}

/// A request real clients never send: name, xid, opcode and raw body.
pub type OddRequest = (&'static str, i32, i32, Vec<u8>);

/// The [`odd_cases`] check outside a multi, which takes an Apache ensemble's quorum down.
pub const BARE_CHECK: &str = "bare check";

/// Requests real clients never send: unknown, notification-only and server-only opcodes,
/// and bodies or xids Apache treats specially.
pub fn odd_cases() -> Vec<OddRequest> {
    vec![
        ("unknown opcode", 5, 999, vec![]),
        ("notification opcode", 6, 0, vec![]),
        ("createSession opcode", 7, -10, vec![]),
        ("sasl", 8, 102, vec![0, 0, 0, 1, b'x']),
        ("deleteContainer raw path", 9, 20, b"/nonexist".to_vec()),
        ("ping with xid 12", 12, 11, vec![]),
        (
            "auth ip",
            -4,
            100,
            vec![0, 0, 0, 0, 0, 0, 0, 2, b'i', b'p', 0, 0, 0, 0],
        ),
        (
            "auth unknown scheme",
            -4,
            100,
            vec![0, 0, 0, 0, 0, 0, 0, 1, b'q', 0, 0, 0, 0],
        ),
        (BARE_CHECK, 13, 13, vec![0, 0, 0, 1, b'/', 0, 0, 0, 0]),
    ]
}

/// Sends one odd request on a new session: the reply (zxid masked to its sign, as it
/// depends on the server's history) and whether the server closed the connection.
pub async fn odd_request(addr: SocketAddr, (name, xid, op, body): OddRequest) -> String {
    use bytes::BufMut;
    let mut c = RawClient::connect(addr).await;
    let mut b = BytesMut::new();
    b.put_i32(xid);
    b.put_i32(op);
    b.put_slice(&body);
    c.pending_op(xid, OpCode::from_i32(op));
    c.send_raw(b.freeze()).await;
    let reply = match c.try_recv().await {
        Ok(r) => format!(
            "xid={} zxid={} err={:?} body={:?}",
            r.header.xid,
            if r.header.zxid > 0 { 1 } else { r.header.zxid },
            r.err(),
            r.body
        ),
        Err(e) => e,
    };
    let closed = c.closed_within(Duration::from_millis(800)).await;
    format!("{name}: {reply} closed={closed}")
}

/// Every [`odd_cases`] request, each on its own connection, all at once (the close checks
/// wait). Suites compare these lines with Apache's.
pub async fn odd_requests(addr: SocketAddr) -> Vec<String> {
    futures::future::join_all(odd_cases().into_iter().map(|c| odd_request(addr, c))).await
}
