//! Throughput of our server against Apache ZooKeeper 3.8 on the same machine: pipelined
//! getData / setData through raw zk-proto frames over loopback, both servers fsyncing to the
//! same temp filesystem.
//!
//! `cargo bench -p zk-server --bench server_vs_apache` (set `ZK_BENCH_OPS` to change the
//! op count; Apache is skipped when java or its jars are missing).

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;
use zk_proto::ops::{CreateRequest, PathWatchRequest, SetDataRequest};
use zk_proto::{
    Acl, ConnectRequest, ConnectResponse, ErrorCode, FrameCodec, JuteReader, Record, ReplyHeader,
    Request, RequestHeader,
};
use zk_server::config::ServerConfig;
use zk_server::Server;

async fn session(addr: SocketAddr) -> Framed<TcpStream, FrameCodec> {
    let s = TcpStream::connect(addr).await.expect("connect");
    s.set_nodelay(true).expect("nodelay");
    let mut io = Framed::new(s, FrameCodec::default());
    let req = ConnectRequest {
        timeout: 30_000,
        passwd: vec![0; 16].into(),
        ..Default::default()
    };
    io.send(req.to_bytes()).await.expect("send");
    let f = io.next().await.expect("reply").expect("frame");
    let r = ConnectResponse::decode(f).expect("connect response");
    assert!(r.timeout > 0);
    io
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

/// Sends `n` requests keeping `window` in flight; returns elapsed time.
async fn pipelined(
    io: &mut Framed<TcpStream, FrameCodec>,
    n: usize,
    window: usize,
    make: impl Fn(usize) -> Request,
) -> Duration {
    let start = Instant::now();
    let (mut sent, mut done) = (0usize, 0usize);
    while done < n {
        while sent < n && sent - done < window {
            io.feed(frame(sent as i32 + 1, &make(sent)))
                .await
                .expect("feed");
            sent += 1;
        }
        io.flush().await.expect("flush");
        let f = io.next().await.expect("reply").expect("frame");
        let h = ReplyHeader::read(&mut JuteReader::new(f)).expect("header");
        assert_eq!(h.err, ErrorCode::Ok);
        done += 1;
    }
    start.elapsed()
}

struct Apache(Child);

impl Drop for Apache {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_apache(dir: &std::path::Path) -> Option<(Apache, SocketAddr)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let cfg = dir.join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!("tickTime=2000\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\nmaxClientCnxns=0\n", dir.display()),
    )
    .ok()?;
    // Not tests::apache: zk-server cannot depend on the `tests` crate (which depends on
    // it), and a benchmark wants the full JIT and no logging, unlike the kit's test JVMs.
    let cp = [
        "zookeeper.jar",
        "zookeeper-jute.jar",
        "slf4j-api.jar",
        "slf4j-nop.jar",
        "netty-all.jar",
        "metrics-core.jar",
        "commons-cli.jar",
    ]
    .iter()
    .map(|j| format!("/usr/share/java/{j}"))
    .collect::<Vec<_>>()
    .join(":");
    let child = Command::new("java")
        .args([
            "-Xmx512m",
            "-cp",
            &cp,
            "org.apache.zookeeper.server.ZooKeeperServerMain",
        ])
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let a = Apache(child);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().ok()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(mut s) = std::net::TcpStream::connect(addr) {
            use std::io::{Read, Write};
            let _ = s.write_all(b"srvr");
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            if out.contains("Mode: standalone") {
                return Some((a, addr));
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

async fn workload(name: &str, addr: SocketAddr, n: usize) -> Vec<(String, f64)> {
    let mut io = session(addr).await;
    let payload = Bytes::from(vec![b'x'; 100]);
    let setup = Request::Create(CreateRequest {
        path: "/bench".into(),
        data: Some(payload.clone()),
        acl: Acl::open_unsafe(),
        flags: 0,
    });
    pipelined(&mut io, 1, 1, |_| setup.clone()).await;
    // Warm-up (lets Apache's JIT compile the hot paths).
    pipelined(&mut io, n, 100, |_| {
        Request::GetData(PathWatchRequest {
            path: "/bench".into(),
            watch: false,
        })
    })
    .await;
    pipelined(&mut io, n / 4, 100, |_| {
        Request::SetData(SetDataRequest {
            path: "/bench".into(),
            data: Some(payload.clone()),
            version: -1,
        })
    })
    .await;

    let mut out = Vec::new();
    let t = pipelined(&mut io, n, 100, |_| {
        Request::GetData(PathWatchRequest {
            path: "/bench".into(),
            watch: false,
        })
    })
    .await;
    out.push((
        "getData, 1 conn, 100 in flight".to_string(),
        n as f64 / t.as_secs_f64(),
    ));
    let t = pipelined(&mut io, n / 2, 100, |_| {
        Request::SetData(SetDataRequest {
            path: "/bench".into(),
            data: Some(payload.clone()),
            version: -1,
        })
    })
    .await;
    out.push((
        "setData, 1 conn, 100 in flight".to_string(),
        (n / 2) as f64 / t.as_secs_f64(),
    ));
    let t = pipelined(&mut io, 200, 1, |_| {
        Request::SetData(SetDataRequest {
            path: "/bench".into(),
            data: Some(payload.clone()),
            version: -1,
        })
    })
    .await;
    out.push((
        "setData, 1 conn, 1 in flight (fsync latency)".to_string(),
        200.0 / t.as_secs_f64(),
    ));

    let conns = 8;
    let per = n / 4 / conns;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..conns {
        let payload = payload.clone();
        tasks.push(tokio::spawn(async move {
            let mut io = session(addr).await;
            let path = format!("/bench-{c}");
            let create = Request::Create(CreateRequest {
                path: path.clone(),
                data: None,
                acl: Acl::open_unsafe(),
                flags: 0,
            });
            pipelined(&mut io, 1, 1, |_| create.clone()).await;
            pipelined(&mut io, per, 20, |i| {
                if i % 2 == 0 {
                    Request::SetData(SetDataRequest {
                        path: path.clone(),
                        data: Some(payload.clone()),
                        version: -1,
                    })
                } else {
                    Request::GetData(PathWatchRequest {
                        path: path.clone(),
                        watch: false,
                    })
                }
            })
            .await;
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    out.push((
        format!("50/50 get/set, {conns} conns, 20 in flight each"),
        (per * conns) as f64 / start.elapsed().as_secs_f64(),
    ));
    for (w, r) in &out {
        println!("{name:>8} | {w:<45} | {r:>10.0} ops/s");
    }
    out
}

fn main() {
    let n: usize = std::env::var("ZK_BENCH_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let ours_dir = tempfile::tempdir().expect("tempdir");
        let mut cfg = ServerConfig::for_tests(ours_dir.path());
        cfg.tick_time = 2000;
        cfg.max_client_cnxns = 0;
        cfg.prealloc_size = 64 * 1024 * 1024;
        let t = Instant::now();
        let h = Server::start(cfg).await.expect("server");
        println!("zk-rs start: {:?}", t.elapsed());
        let ours = workload("zk-rs", h.local_addr(), n).await;
        h.stop().await.expect("stop");

        let apache_dir = tempfile::tempdir().expect("tempdir");
        let t = Instant::now();
        match start_apache(apache_dir.path()) {
            Some((proc_, addr)) => {
                println!("apache start (until serving): {:?}", t.elapsed());
                let theirs = workload("apache", addr, n).await;
                drop(proc_);
                println!(
                    "\n| workload | zk-rs ops/s | Apache 3.8 ops/s | ratio |\n|---|---|---|---|"
                );
                for ((w, a), (_, b)) in ours.iter().zip(&theirs) {
                    println!("| {w} | {a:.0} | {b:.0} | {:.2}x |", a / b);
                }
            }
            None => println!("Apache ZooKeeper not available: skipped"),
        }
    });
}
