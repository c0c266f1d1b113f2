//! `zk-load`: a load generator for any ZooKeeper server (zk-server or Apache ZooKeeper).
//!
//! N sessions each keep M requests in flight over raw zk-proto frames (no client library in
//! the way), and the run prints ops/s and p50/p99/p999 latency:
//!
//! ```text
//! zk-load --server 127.0.0.1:2181 --op get --sessions 8 --inflight 32 --payload 100 --secs 10
//! zk-load --server 127.0.0.1:2181 --op create --ops 1000000     # populate 1M znodes
//! zk-load --server 127.0.0.1:2281 --tls-ca ca.pem --tls-cert c.pem --tls-key c.key --op get
//! ```
//!
//! `--tls-ca` (a PEM CA bundle) switches to TLS; `--tls-cert`/`--tls-key` add a client
//! certificate, which servers with `ssl.clientAuth=need` (Apache's default) require.
//!
//! Ops: `get` (getData), `set` (setData), `create` (new persistent znodes), `mixed` (half
//! getData, half setData). Each session works on its own node under `--root`.

use std::collections::VecDeque;
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_util::codec::Framed;
use zk_proto::ops::{CreateRequest, PathWatchRequest, SetDataRequest};
use zk_proto::{
    Acl, ConnectRequest, ConnectResponse, CreateMode, ErrorCode, FrameCodec, JuteReader, Record,
    ReplyHeader, Request, RequestHeader,
};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Get,
    Set,
    Create,
    Mixed,
}

#[derive(Clone)]
struct Opts {
    server: SocketAddr,
    op: Op,
    sessions: usize,
    inflight: usize,
    payload: usize,
    secs: f64,
    ops: Option<u64>,
    root: String,
    tls: Option<TlsConnector>,
}

const USAGE: &str = "usage: zk-load --server HOST:PORT [--op get|set|create|mixed] \
[--sessions N] [--inflight M] [--payload BYTES] [--secs S | --ops COUNT] [--root /zk-load] \
[--tls-ca CA.pem [--tls-cert CERT.pem --tls-key KEY.pem]]";

fn parse_args() -> Result<Opts, String> {
    let mut o = Opts {
        server: "127.0.0.1:2181".parse().map_err(|e| format!("{e}"))?,
        op: Op::Get,
        sessions: 8,
        inflight: 32,
        payload: 100,
        secs: 10.0,
        ops: None,
        root: "/zk-load".into(),
        tls: None,
    };
    let (mut ca, mut cert, mut key) = (None, None, None);
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let flag = args[i].as_str();
        let val = args
            .get(i + 1)
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let num = |v: &str| {
            v.parse::<f64>()
                .map_err(|_| format!("bad number for {flag}: {v}"))
        };
        match flag {
            "--server" => {
                o.server = val
                    .to_socket_addrs()
                    .map_err(|e| format!("{val}: {e}"))?
                    .next()
                    .ok_or_else(|| format!("{val}: no address"))?
            }
            "--op" => {
                o.op = match val.as_str() {
                    "get" => Op::Get,
                    "set" => Op::Set,
                    "create" => Op::Create,
                    "mixed" => Op::Mixed,
                    other => return Err(format!("unknown op {other}\n{USAGE}")),
                }
            }
            "--sessions" => o.sessions = num(val)?.max(1.0) as usize,
            "--inflight" => o.inflight = num(val)?.max(1.0) as usize,
            "--payload" => o.payload = num(val)? as usize,
            "--secs" => o.secs = num(val)?,
            "--ops" => o.ops = Some(num(val)? as u64),
            "--root" => o.root = val.clone(),
            "--tls-ca" => ca = Some(val.clone()),
            "--tls-cert" => cert = Some(val.clone()),
            "--tls-key" => key = Some(val.clone()),
            other => return Err(format!("unknown flag {other}\n{USAGE}")),
        }
        i += 2;
    }
    o.tls = match (ca, cert, key) {
        (None, None, None) => None,
        (Some(ca), cert, key) => Some(tls_connector(&ca, cert.zip(key))?),
        _ => return Err(format!("--tls-cert and --tls-key need --tls-ca\n{USAGE}")),
    };
    Ok(o)
}

/// A rustls connector trusting the PEM CAs in `ca`, with an optional client certificate
/// (`cert` chain, `key`); the ring provider, as zk-server and zk-client use.
fn tls_connector(ca: &str, client: Option<(String, String)>) -> Result<TlsConnector, String> {
    let read = |p: &str| std::fs::read(p).map_err(|e| format!("{p}: {e}"));
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(&read(ca)?) {
        roots
            .add(c.map_err(|e| format!("{ca}: {e}"))?)
            .map_err(|e| format!("{ca}: {e}"))?;
    }
    #[allow(deprecated)] // ring's provider lacks only post-quantum key exchange
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = CertificateDer::pem_slice_iter(&read(&cert)?)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("{cert}: {e}"))?;
            let key_der =
                PrivateKeyDer::from_pem_slice(&read(&key)?).map_err(|e| format!("{key}: {e}"))?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| format!("{cert}, {key}: {e}"))?
        }
    };
    Ok(TlsConnector::from(Arc::new(config)))
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

type Conn = Framed<Box<dyn Io>, FrameCodec>;

async fn session(addr: SocketAddr, tls: Option<&TlsConnector>) -> Result<Conn, String> {
    let s = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_nodelay(true).map_err(|e| e.to_string())?;
    let s: Box<dyn Io> = match tls {
        None => Box::new(s),
        Some(t) => Box::new(
            t.connect(ServerName::IpAddress(addr.ip().into()), s)
                .await
                .map_err(|e| format!("TLS handshake with {addr}: {e}"))?,
        ),
    };
    let mut io = Framed::new(s, FrameCodec::default());
    let req = ConnectRequest {
        timeout: 30_000,
        passwd: vec![0; 16].into(),
        read_only: Some(false),
        ..Default::default()
    };
    io.send(req.to_bytes()).await.map_err(|e| e.to_string())?;
    let f = io
        .next()
        .await
        .ok_or("server closed during handshake")?
        .map_err(|e| e.to_string())?;
    let r = ConnectResponse::decode(f).map_err(|e| e.to_string())?;
    if r.timeout <= 0 {
        return Err("session refused".into());
    }
    Ok(io)
}

fn frame(xid: i32, req: &Request) -> Bytes {
    let mut b = BytesMut::new();
    RequestHeader {
        xid,
        opcode: req.opcode(),
    }
    .write(&mut b);
    req.write(&mut b);
    b.freeze()
}

/// One request and wait for its reply; tolerates NodeExists (setup is idempotent).
async fn call(io: &mut Conn, xid: i32, req: Request) -> Result<(), String> {
    io.send(frame(xid, &req)).await.map_err(|e| e.to_string())?;
    let f = io
        .next()
        .await
        .ok_or("connection closed")?
        .map_err(|e| e.to_string())?;
    let h = ReplyHeader::read(&mut JuteReader::new(f)).map_err(|e| e.to_string())?;
    match h.err {
        ErrorCode::Ok | ErrorCode::NodeExists => Ok(()),
        e => Err(format!("setup {:?}: {e}", req.opcode())),
    }
}

fn create(path: String, data: Bytes) -> Request {
    Request::Create(CreateRequest {
        path,
        data: Some(data),
        acl: Acl::open_unsafe(),
        flags: CreateMode::Persistent.to_flags(),
    })
}

struct SessionResult {
    latencies_us: Vec<u32>,
    errors: u64,
}

async fn run_session(
    o: Opts,
    idx: usize,
    quota: Option<u64>,
    deadline: Instant,
) -> Result<SessionResult, String> {
    let mut io = session(o.server, o.tls.as_ref()).await?;
    let payload = Bytes::from(vec![b'x'; o.payload]);
    let node = format!("{}/s{idx}", o.root);
    call(&mut io, 1, create(node.clone(), payload.clone())).await?;
    let make = |k: u64| -> Request {
        let op = match o.op {
            Op::Mixed if k.is_multiple_of(2) => Op::Get,
            Op::Mixed => Op::Set,
            other => other,
        };
        match op {
            Op::Get | Op::Mixed => Request::GetData(PathWatchRequest {
                path: node.clone(),
                watch: false,
            }),
            Op::Set => Request::SetData(SetDataRequest {
                path: node.clone(),
                data: Some(payload.clone()),
                version: -1,
            }),
            Op::Create => create(format!("{node}/n{k:010}"), payload.clone()),
        }
    };
    let mut sent_at: VecDeque<Instant> = VecDeque::with_capacity(o.inflight);
    let mut latencies_us = Vec::with_capacity(1 << 16);
    let (mut sent, mut done, mut errors) = (0u64, 0u64, 0u64);
    let mut xid: i32 = 2;
    let more = |sent: u64| match quota {
        Some(q) => sent < q,
        None => Instant::now() < deadline,
    };
    loop {
        while sent_at.len() < o.inflight && more(sent) {
            io.feed(frame(xid, &make(sent)))
                .await
                .map_err(|e| e.to_string())?;
            sent_at.push_back(Instant::now());
            xid = xid.wrapping_add(1).max(1);
            sent += 1;
        }
        io.flush().await.map_err(|e| e.to_string())?;
        if sent_at.is_empty() {
            break;
        }
        let f = io
            .next()
            .await
            .ok_or("server closed the connection")?
            .map_err(|e| e.to_string())?;
        let h = ReplyHeader::read(&mut JuteReader::new(f)).map_err(|e| e.to_string())?;
        if h.xid < 0 {
            continue; // a ping or notification, not one of ours
        }
        let t0 = sent_at.pop_front().ok_or("reply without a request")?;
        latencies_us.push(t0.elapsed().as_micros().min(u32::MAX as u128) as u32);
        if h.err != ErrorCode::Ok {
            errors += 1;
        }
        done += 1;
    }
    debug_assert_eq!(done, sent);
    Ok(SessionResult {
        latencies_us,
        errors,
    })
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn run(o: Opts) -> Result<(), String> {
    let mut setup = session(o.server, o.tls.as_ref()).await?;
    call(&mut setup, 1, create(o.root.clone(), Bytes::new())).await?;
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(o.secs);
    let mut tasks = Vec::new();
    for i in 0..o.sessions {
        let quota = o.ops.map(|n| {
            let base = n / o.sessions as u64;
            base + u64::from((i as u64) < n % o.sessions as u64)
        });
        tasks.push(tokio::spawn(run_session(o.clone(), i, quota, deadline)));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let r = t.await.map_err(|e| e.to_string())??;
        all.extend(r.latencies_us);
        errors += r.errors;
    }
    let secs = start.elapsed().as_secs_f64();
    all.sort_unstable();
    println!(
        "op={:?} sessions={} inflight={} payload={} ops={} errors={} secs={:.2} ops/s={:.0} p50_us={} p99_us={} p999_us={}",
        o.op,
        o.sessions,
        o.inflight,
        o.payload,
        all.len(),
        errors,
        secs,
        all.len() as f64 / secs,
        percentile(&all, 0.50),
        percentile(&all, 0.99),
        percentile(&all, 0.999),
    );
    Ok(())
}

fn main() -> ExitCode {
    let o = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(o)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("zk-load: {e}");
            ExitCode::FAILURE
        }
    }
}
