//! Pipelined throughput of zk-client vs the `zookeeper-client` crate against the same server
//! in the same run: get and set, 1 and 8 connections, plus heap allocations per request
//! (counting allocator) and the client process's CPU time per request (all threads), which
//! shows each client's own cost even when the server sets the pace.
//!
//! `cargo bench -p tests --bench client_throughput [-- --hosts H:P] [--ops N]`
//! Without `--hosts` it runs against an Apache ZooKeeper 3.8 standalone server, an
//! in-process zk-server (in-memory store), and a canned-reply server on its own thread that
//! does no work, so that the last run measures the clients themselves.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures::stream::{self, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zk_proto::ops::{GetDataResponse, StatResponse};
use zk_proto::{write_frame, ConnectResponse, ErrorCode, Record, ReplyHeader, Stat};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        System.realloc(p, l, n)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const DEPTH: usize = 128;
const ROUNDS: usize = 5;

/// On-CPU nanoseconds of every thread of this process (from `/proc/self/task/*/schedstat`),
/// so the client's own cost shows even when the server sets the pace.
fn process_cpu_ns() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .filter_map(|t| t.ok())
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// One measured run: ops/s, allocations per op, client CPU µs per op.
type Sample = (f64, f64, f64);

fn median(mut runs: Vec<Sample>) -> Sample {
    runs.sort_by(|a, b| a.0.total_cmp(&b.0));
    runs[runs.len() / 2]
}
const PATH: &str = "/bench";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Get,
    Set,
}

async fn run_ours(clients: &[zk_client::Client], op: Op, ops: usize) -> Sample {
    let per = ops / clients.len();
    let payload = vec![7u8; 100];
    let a0 = ALLOCS.load(Ordering::Relaxed);
    let c0 = process_cpu_ns();
    let t = Instant::now();
    let tasks = clients.iter().map(|c| {
        let c = c.clone();
        let payload = payload.clone();
        async move {
            stream::iter(0..per)
                .map(|_| {
                    let c = &c;
                    let payload = &payload;
                    async move {
                        match op {
                            Op::Get => c.get_data(PATH, false).await.map(|_| ()),
                            Op::Set => c.set_data(PATH, payload, None).await.map(|_| ()),
                        }
                    }
                })
                .buffer_unordered(DEPTH)
                .for_each(|r| {
                    r.expect("request");
                    async {}
                })
                .await
        }
    });
    futures::future::join_all(tasks).await;
    let secs = t.elapsed().as_secs_f64();
    let n = (per * clients.len()) as f64;
    let allocs = (ALLOCS.load(Ordering::Relaxed) - a0) as f64 / n;
    let cpu_us = process_cpu_ns().saturating_sub(c0) as f64 / 1e3 / n;
    (n / secs, allocs, cpu_us)
}

async fn run_theirs(clients: &[zookeeper_client::Client], op: Op, ops: usize) -> Sample {
    let per = ops / clients.len();
    let payload = vec![7u8; 100];
    let a0 = ALLOCS.load(Ordering::Relaxed);
    let c0 = process_cpu_ns();
    let t = Instant::now();
    let tasks = clients.iter().map(|c| {
        let c = c.clone();
        let payload = payload.clone();
        async move {
            stream::iter(0..per)
                .map(|_| {
                    let c = &c;
                    let payload = &payload;
                    async move {
                        match op {
                            Op::Get => c.get_data(PATH).await.map(|_| ()),
                            Op::Set => c.set_data(PATH, payload, None).await.map(|_| ()),
                        }
                    }
                })
                .buffer_unordered(DEPTH)
                .for_each(|r| {
                    r.expect("request");
                    async {}
                })
                .await
        }
    });
    futures::future::join_all(tasks).await;
    let secs = t.elapsed().as_secs_f64();
    let n = (per * clients.len()) as f64;
    let allocs = (ALLOCS.load(Ordering::Relaxed) - a0) as f64 / n;
    let cpu_us = process_cpu_ns().saturating_sub(c0) as f64 / 1e3 / n;
    (n / secs, allocs, cpu_us)
}

/// Allocations per op of the harness alone (FuturesUnordered task per future), to subtract.
async fn harness_allocs(ops: usize) -> f64 {
    let a0 = ALLOCS.load(Ordering::Relaxed);
    stream::iter(0..ops)
        .map(|_| async { Ok::<(), ()>(()) })
        .buffer_unordered(DEPTH)
        .for_each(|r| {
            r.expect("noop");
            async {}
        })
        .await;
    (ALLOCS.load(Ordering::Relaxed) - a0) as f64 / ops as f64
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// A server that answers with canned replies (getData, setData, ping, close; create says
/// NodeExists) and does nothing else, on its own thread. It costs a fraction of either
/// client per request, so here the clients set the pace: this is the client-bound run.
fn start_canned_server() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    listener.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let l = tokio::net::TcpListener::from_std(listener).expect("listener");
            while let Ok((s, _)) = l.accept().await {
                tokio::spawn(serve_canned(s));
            }
        });
    });
    addr
}

async fn serve_canned(mut s: tokio::net::TcpStream) -> std::io::Result<()> {
    s.set_nodelay(true)?;
    let stat = Stat {
        data_length: 100,
        ..Default::default()
    };
    let mut get_body = BytesMut::new();
    GetDataResponse {
        data: Some(Bytes::from(vec![7u8; 100])),
        stat: stat.clone(),
    }
    .write(&mut get_body);
    let mut set_body = BytesMut::new();
    StatResponse { stat }.write(&mut set_body);
    let mut rbuf = BytesMut::with_capacity(64 * 1024);
    let mut wbuf = BytesMut::with_capacity(64 * 1024);
    let mut connected = false;
    loop {
        while rbuf.len() >= 4 {
            let len = u32::from_be_bytes([rbuf[0], rbuf[1], rbuf[2], rbuf[3]]) as usize;
            if rbuf.len() < 4 + len {
                break;
            }
            let frame = rbuf.split_to(4 + len);
            if !connected {
                connected = true;
                write_frame(&mut wbuf, |w| {
                    ConnectResponse {
                        protocol_version: 0,
                        timeout: 10_000,
                        session_id: 1,
                        passwd: vec![0u8; 16].into(),
                        read_only: Some(false),
                    }
                    .write(w)
                });
                continue;
            }
            if frame.len() < 12 {
                return Ok(());
            }
            let xid = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
            let op = i32::from_be_bytes([frame[8], frame[9], frame[10], frame[11]]);
            let err = if op == 1 {
                ErrorCode::NodeExists
            } else {
                ErrorCode::Ok
            };
            write_frame(&mut wbuf, |w| {
                ReplyHeader { xid, zxid: 1, err }.write(w);
                match op {
                    4 => w.extend_from_slice(&get_body),
                    5 => w.extend_from_slice(&set_body),
                    _ => {}
                }
            });
        }
        if !wbuf.is_empty() {
            s.write_all(&wbuf).await?;
            wbuf.clear();
        }
        if s.read_buf(&mut rbuf).await? == 0 {
            return Ok(());
        }
    }
}

fn main() {
    let ops: usize = arg("--ops").and_then(|s| s.parse().ok()).unwrap_or(40_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    if let Some(h) = arg("--hosts") {
        bench(&rt, &h, ops);
        return;
    }
    {
        let s = tests::apache::ApacheServer::start().expect("start apache");
        println!("## Apache ZooKeeper 3.8 standalone");
        bench(&rt, &s.connect_string(), ops);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let handle = rt.block_on(async {
        let cfg = zk_server::config::ServerConfig::for_tests(dir.path());
        zk_server::Server::start_in_memory(cfg, zk_server::storage::store::MemoryStore::new())
            .await
            .expect("zk-server")
    });
    println!("## zk-server (in-process, in-memory store)");
    bench(&rt, &handle.connect_string(), ops);
    let _ = rt.block_on(handle.stop());
    println!("## canned-reply server (client-bound: the clients set the pace)");
    bench(&rt, &start_canned_server().to_string(), ops);
}

fn bench(rt: &tokio::runtime::Runtime, hosts: &str, ops: usize) {
    rt.block_on(async {
        let setup = zk_client::Client::connect(hosts).await.expect("connect");
        match setup
            .create(PATH, &[1u8; 100], &zk_client::Acl::open_unsafe(), zk_client::CreateMode::Persistent)
            .await
        {
            Ok(_) | Err(zk_client::Error::NodeExists { .. }) => {}
            Err(e) => panic!("create: {e}"),
        }
        println!("server {hosts}, {ops} ops per run, pipeline depth {DEPTH} per connection");
        println!(
            "harness overhead: {:.2} allocations per op (included in the allocs/op columns)",
            harness_allocs(ops).await
        );
        println!("| op | conns | zk-client ops/s | zookeeper-client ops/s | ratio | zk-client allocs/op | zookeeper-client allocs/op | zk-client CPU µs/op | zookeeper-client CPU µs/op | CPU ratio |");
        println!("|---|---|---|---|---|---|---|---|---|---|");
        for conns in [1usize, 8] {
            let mut ours = Vec::new();
            let mut theirs = Vec::new();
            for _ in 0..conns {
                ours.push(zk_client::Client::connect(hosts).await.expect("connect"));
                theirs.push(
                    zookeeper_client::Client::connect(hosts)
                        .await
                        .expect("connect theirs"),
                );
            }
            for op in [Op::Get, Op::Set] {
                // Warm up both.
                run_ours(&ours, op, ops / 10).await;
                run_theirs(&theirs, op, ops / 10).await;
                // Alternate the two clients round by round and report medians, so load
                // from other processes hits both alike.
                let mut o_runs = Vec::new();
                let mut t_runs = Vec::new();
                for _ in 0..ROUNDS {
                    o_runs.push(run_ours(&ours, op, ops).await);
                    t_runs.push(run_theirs(&theirs, op, ops).await);
                }
                // CPU per op: the median of each run's own figure (the process's CPU time
                // over the run, all threads; with an in-process server it includes the
                // server's work).
                let cpu = |runs: &[Sample]| {
                    let mut v: Vec<f64> = runs.iter().map(|r| r.2).collect();
                    v.sort_by(f64::total_cmp);
                    v[v.len() / 2]
                };
                let (cpu_o, cpu_t) = (cpu(&o_runs), cpu(&t_runs));
                let best_o = median(o_runs);
                let best_t = median(t_runs);
                println!(
                    "| {:?} | {} | {:.0} | {:.0} | {:.2}x | {:.1} | {:.1} | {:.2} | {:.2} | {:.2}x |",
                    op,
                    conns,
                    best_o.0,
                    best_t.0,
                    best_o.0 / best_t.0,
                    best_o.1,
                    best_t.1,
                    cpu_o,
                    cpu_t,
                    cpu_t / cpu_o
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    });
}
