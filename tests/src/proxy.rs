//! A fault-injecting TCP proxy for failover and timeout tests.
//!
//! Clients connect to [`Proxy::addr`]; bytes are forwarded to the target. Faults:
//! - [`Proxy::drop_connections`]: close every current connection (a crash as seen by TCP);
//! - [`Proxy::set_blackhole`]: stop forwarding in both directions without closing (a
//!   partition: only a read timeout can notice it); new connections are accepted but mute;
//! - [`Proxy::set_delay`]: delay every chunk;
//! - [`Proxy::set_refuse`]: close new connections right after accepting them;
//! - [`Proxy::set_target`]: forward new connections elsewhere.
//!
//! ```no_run
//! # async fn f() -> std::io::Result<()> {
//! let proxy = tests::proxy::Proxy::start("127.0.0.1:2181".parse().unwrap()).await?;
//! let hosts = proxy.addr().to_string();
//! proxy.set_blackhole(true); // the client's read timeout must fire now
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[derive(Debug, Clone)]
struct Faults {
    target: SocketAddr,
    blackhole: bool,
    refuse: bool,
    delay: Duration,
    /// Bumped to close every current connection.
    generation: u64,
}

/// The proxy; stops (and closes every connection) on Drop.
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    faults: watch::Sender<Faults>,
    accepted: Arc<Mutex<u64>>,
    /// When each connection was accepted, in order.
    accept_times: Arc<Mutex<Vec<std::time::Instant>>>,
    task: JoinHandle<()>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `target`.
    pub async fn start(target: SocketAddr) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = watch::channel(Faults {
            target,
            blackhole: false,
            refuse: false,
            delay: Duration::ZERO,
            generation: 0,
        });
        let accepted = Arc::new(Mutex::new(0u64));
        let count = accepted.clone();
        let accept_times = Arc::new(Mutex::new(Vec::new()));
        let times = accept_times.clone();
        let task = tokio::spawn(async move {
            let mut conns: Vec<JoinHandle<()>> = Vec::new();
            while let Ok((client, _)) = listener.accept().await {
                conns.retain(|c| !c.is_finished());
                if let Ok(mut n) = count.lock() {
                    *n += 1;
                }
                if let Ok(mut t) = times.lock() {
                    t.push(std::time::Instant::now());
                }
                let f = rx.borrow().clone();
                if f.refuse {
                    drop(client);
                    continue;
                }
                let rx = rx.clone();
                conns.push(tokio::spawn(serve(client, f, rx)));
            }
            for c in conns {
                c.abort();
            }
        });
        Ok(Proxy {
            addr,
            faults: tx,
            accepted,
            accept_times,
            task,
        })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.lock().map(|n| *n).unwrap_or(0)
    }

    /// When each connection so far was accepted (the server's view of connection
    /// attempts, e.g. to measure how a crowd of clients reconnects).
    pub fn accept_times(&self) -> Vec<std::time::Instant> {
        self.accept_times
            .lock()
            .map(|t| t.clone())
            .unwrap_or_default()
    }

    /// Closes every current connection.
    pub fn drop_connections(&self) {
        self.faults.send_modify(|f| f.generation += 1);
    }

    /// Stops (true) or resumes (false) forwarding, without closing anything.
    pub fn set_blackhole(&self, on: bool) {
        self.faults.send_modify(|f| f.blackhole = on);
    }

    /// Delays every forwarded chunk.
    pub fn set_delay(&self, d: Duration) {
        self.faults.send_modify(|f| f.delay = d);
    }

    /// Closes new connections at once (true) or serves them (false).
    pub fn set_refuse(&self, on: bool) {
        self.faults.send_modify(|f| f.refuse = on);
    }

    /// Forwards new connections to `target`.
    pub fn set_target(&self, target: SocketAddr) {
        self.faults.send_modify(|f| f.target = target);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.faults.send_modify(|f| f.generation += 1);
        self.task.abort();
    }
}

async fn serve(client: TcpStream, f: Faults, rx: watch::Receiver<Faults>) {
    let Ok(server) = TcpStream::connect(f.target).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    let gen = f.generation;
    let a = pump(cr, sw, rx.clone(), gen);
    let b = pump(sr, cw, rx, gen);
    tokio::select! {
        _ = a => {}
        _ = b => {}
    }
}

async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    mut rx: watch::Receiver<Faults>,
    gen: u64,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = tokio::select! {
            r = from.read(&mut buf) => match r {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
            c = rx.changed() => {
                if c.is_err() || rx.borrow().generation != gen {
                    return;
                }
                continue;
            }
        };
        let f = rx.borrow().clone();
        if f.generation != gen {
            return;
        }
        if f.blackhole {
            continue;
        }
        if !f.delay.is_zero() {
            tokio::time::sleep(f.delay).await;
        }
        let Some(chunk) = buf.get(..n) else {
            return;
        };
        if to.write_all(chunk).await.is_err() {
            return;
        }
    }
}
