//! The one raw-frame client of the suites: it speaks zk-proto frames directly (no
//! zk-client), so a test sees exactly what a server sends and can send what real clients
//! never do (odd xids, pipelined handshakes, raw bytes).
//!
//! ```no_run
//! # async fn f(addr: std::net::SocketAddr) {
//! use tests::raw::RawClient;
//! let mut c = RawClient::connect(addr).await;
//! let r = c.get("/", false).await;
//! assert_eq!(r.err(), zk_proto::ErrorCode::Ok);
//! # }
//! ```

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

/// Reads one length-prefixed frame from a blocking socket (refusing absurd lengths): for
/// tests that drive a std `TcpStream` from threads, e.g. one thread writing a pipelined
/// load while another counts replies. Frames to send are built with
/// [`zk_proto::write_frame`].
pub fn read_frame(s: &mut std::net::TcpStream) -> std::io::Result<Bytes> {
    use std::io::Read;
    let mut len = [0u8; 4];
    s.read_exact(&mut len)?;
    let n = u32::from_be_bytes(len) as usize;
    if n > 1 << 21 {
        return Err(std::io::Error::other("frame too long"));
    }
    let mut body = vec![0u8; n];
    s.read_exact(&mut body)?;
    Ok(body.into())
}

/// Generous bound for anything a raw client waits on.
pub const WAIT: Duration = Duration::from_secs(5);

/// One reply.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Its header (xid, zxid, error).
    pub header: ReplyHeader,
    /// Its body, decoded by the opcode of the request with that xid.
    pub body: Response,
}

impl Reply {
    /// The error code of the header.
    pub fn err(&self) -> ErrorCode {
        self.header.err
    }
    /// The stat of a reply that carries one; panics otherwise.
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
    /// The data of a getData reply; panics otherwise.
    pub fn data(&self) -> Option<Bytes> {
        match &self.body {
            Response::GetData(d) => d.data.clone(),
            other => panic!("no data in {other:?} ({:?})", self.header.err),
        }
    }
    /// The path of a create reply; panics otherwise.
    pub fn path(&self) -> String {
        match &self.body {
            Response::Create(c) => c.path.clone(),
            Response::Create2(c) => c.path.clone(),
            other => panic!("no path in {other:?} ({:?})", self.header.err),
        }
    }
    /// The children of a getChildren reply; panics otherwise.
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
    /// Session id the server gave.
    pub session_id: i64,
    /// Session password the server gave.
    pub passwd: Bytes,
    /// Negotiated session timeout in ms.
    pub timeout: i32,
    /// Highest zxid seen in a reply (sent again by [`RawClient::reconnect`]).
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
        let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        Self::handshake_on(stream, req, pipelined).await
    }

    /// [`RawClient::handshake`] from the local address `source` (e.g. `127.0.0.7:0`): a
    /// bench opening tens of thousands of connections needs more than one address's
    /// ephemeral ports.
    pub async fn handshake_from(
        source: SocketAddr,
        addr: SocketAddr,
        req: ConnectRequest,
    ) -> Result<(RawClient, ConnectResponse), String> {
        let socket = match source {
            SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
            SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
        }
        .map_err(|e| e.to_string())?;
        socket
            .bind(source)
            .map_err(|e| format!("bind {source}: {e}"))?;
        let stream = socket.connect(addr).await.map_err(|e| e.to_string())?;
        Self::handshake_on(stream, req, &[]).await
    }

    async fn handshake_on(
        mut stream: TcpStream,
        req: ConnectRequest,
        pipelined: &[(i32, Request)],
    ) -> Result<(RawClient, ConnectResponse), String> {
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

    /// create2 with an open ACL.
    pub async fn create(&mut self, path: &str, data: &str, mode: CreateMode) -> Reply {
        self.call(Request::Create2(CreateRequest {
            path: path.into(),
            data: Some(Bytes::copy_from_slice(data.as_bytes())),
            acl: Acl::open_unsafe(),
            flags: mode.to_flags(),
        }))
        .await
    }

    /// create (no data) with `acl`.
    pub async fn create_acl(&mut self, path: &str, acl: Vec<Acl>) -> Reply {
        self.call(Request::Create(CreateRequest {
            path: path.into(),
            data: None,
            acl,
            flags: 0,
        }))
        .await
    }

    /// getData.
    pub async fn get(&mut self, path: &str, watch: bool) -> Reply {
        self.call(Request::GetData(PathWatchRequest {
            path: path.into(),
            watch,
        }))
        .await
    }

    /// exists.
    pub async fn exists(&mut self, path: &str, watch: bool) -> Reply {
        self.call(Request::Exists(PathWatchRequest {
            path: path.into(),
            watch,
        }))
        .await
    }

    /// getChildren2.
    pub async fn children(&mut self, path: &str, watch: bool) -> Reply {
        self.call(Request::GetChildren2(PathWatchRequest {
            path: path.into(),
            watch,
        }))
        .await
    }

    /// setData.
    pub async fn set(&mut self, path: &str, data: &str, version: i32) -> Reply {
        self.call(Request::SetData(SetDataRequest {
            path: path.into(),
            data: Some(Bytes::copy_from_slice(data.as_bytes())),
            version,
        }))
        .await
    }

    /// delete.
    pub async fn delete(&mut self, path: &str, version: i32) -> Reply {
        self.call(Request::Delete(DeleteRequest {
            path: path.into(),
            version,
        }))
        .await
    }

    /// auth packet (xid -4) and its reply.
    pub async fn add_auth(&mut self, scheme: &str, auth: &str) -> Reply {
        let req = Request::Auth(zk_proto::AuthPacket {
            auth_type: 0,
            scheme: scheme.into(),
            auth: Bytes::copy_from_slice(auth.as_bytes()),
        });
        self.send_xid(zk_proto::xid::AUTH, &req).await;
        self.recv().await
    }

    /// ping (xid -2) and its reply.
    pub async fn ping(&mut self) -> Reply {
        self.send_xid(zk_proto::xid::PING, &Request::Ping).await;
        self.recv().await
    }

    /// closeSession; asserts the server then closes the connection.
    pub async fn close(mut self) -> Reply {
        let r = self.call(Request::CloseSession).await;
        assert!(
            self.closed_within(WAIT).await,
            "server closes after closeSession"
        );
        r
    }
}
