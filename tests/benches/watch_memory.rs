//! Memory per session and per watch, zk-server against Apache ZooKeeper 3.8 in one run
//! (issue 12): a standalone server of each (processes) holding Z znodes, then S sessions,
//! then W data watches spread over the znodes (each session watching W/S of them). The
//! server's resident memory is read after each step; the figures are the growth per
//! session and per watch (for Apache, of a JVM given `-Xmx4096m`: its heap grows as it
//! needs; `jcmd` cannot attach to it in this container to read the heap itself).
//!
//! ```sh
//! cargo bench -p tests --bench watch_memory -- [--znodes 100000] [--sessions 15000] \
//!     [--watches 1000000] [--detached 35000]
//! ```
//!
//! Sessions are raw connections (a handshake, then pipelined getData-with-watch requests)
//! so that the client side stays light; 15,000 by default because this process holds one
//! socket per session and the container caps open files at 20,000. The issue's 50,000
//! sessions are reached by a last step: D more sessions opened and their connections
//! closed without closing the session (as a client that lost its server does), so the
//! server keeps them until their 600 s timeout; the server's count of sessions is read
//! from `mntr` (`global_sessions`) after it.

use std::time::{Duration, Instant};

use futures::future::join_all;
use tests::apache::{four_letter, ApacheServer};
use tests::bench::{
    arg, bench_runtime, fill_znodes, long_session_request, mntr_value, open_raw_sessions, rss_mib,
    watch_znodes,
};
use tests::raw::RawClient;
use tests::zk_processes::ServerProcess;

struct Figures {
    /// With the znodes, + sessions, + watches, + detached sessions.
    rss: [f64; 4],
    watches_reported: String,
    /// `global_sessions` in `mntr` at the end.
    sessions_reported: String,
    secs: f64,
}

/// Opens `n` sessions from the addresses `sources` and closes their connections once
/// answered, leaving the sessions to their timeout. Each closed connection keeps its
/// client port in TIME_WAIT for a minute, and one address has ~28,000 ports.
async fn detach_sessions(addr: std::net::SocketAddr, n: usize, sources: &[std::net::IpAddr]) {
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        join_all(chunk.iter().map(|i| async move {
            let source = std::net::SocketAddr::new(sources[i % sources.len()], 0);
            RawClient::handshake_from(source, addr, long_session_request())
                .await
                .expect("session");
        }))
        .await;
    }
}

/// Local addresses for one server's connections: `127.0.0.<base>` for the sessions that
/// stay, the next four for the detached ones (never the ports of the other server's run,
/// still in TIME_WAIT).
fn sources(base: u8) -> (std::net::SocketAddr, Vec<std::net::IpAddr>) {
    let ip = |k: u8| std::net::IpAddr::from([127, 0, 0, base + k]);
    (
        std::net::SocketAddr::new(ip(0), 0),
        (1..=4).map(ip).collect(),
    )
}

/// Fills, opens the sessions, sets the watches; reads the memory after each step.
async fn measure(
    addr: std::net::SocketAddr,
    pid: u32,
    z: usize,
    (s, w, d): (usize, usize, usize),
    base: u8,
) -> Figures {
    let (stay, detached) = sources(base);
    let started = Instant::now();
    fill_znodes(addr, z).await;
    let settle = || tokio::time::sleep(Duration::from_millis(500));
    settle().await;
    let r0 = rss_mib(pid);
    let mut sessions = open_raw_sessions(addr, stay, s).await;
    settle().await;
    let r1 = rss_mib(pid);
    let per = w / s;
    watch_znodes(&mut sessions, 0, per, z).await;
    settle().await;
    let r2 = rss_mib(pid);
    let port = addr.port();
    let wchs = tokio::task::spawn_blocking(move || four_letter(port, "wchs"))
        .await
        .unwrap_or_default();
    detach_sessions(addr, d, &detached).await;
    settle().await;
    let r3 = rss_mib(pid);
    let sessions_reported =
        tokio::task::spawn_blocking(move || mntr_value(port, "zk_global_sessions"))
            .await
            .unwrap_or_default();
    drop(sessions);
    Figures {
        rss: [r0, r1, r2, r3],
        watches_reported: wchs.lines().last().unwrap_or("").to_string(),
        sessions_reported,
        secs: started.elapsed().as_secs_f64(),
    }
}

fn main() {
    let z: usize = arg("--znodes", 100_000);
    let s: usize = arg("--sessions", 15_000);
    let w: usize = arg("--watches", 1_000_000);
    let d: usize = arg("--detached", 35_000);
    let rt = bench_runtime();
    println!(
        "standalone servers; {z} znodes of 100 B, {s} sessions, {w} data watches, then \
         {d} sessions whose connections closed"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let port = tests::ports::free_port().expect("port");
    let cfg = dir.path().join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=2000\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
             maxClientCnxns=0\nmaxSessionTimeout=600000\n4lw.commands.whitelist=*\n\
             admin.enableServer=false\n",
            dir.path().join("data").display()
        ),
    )
    .expect("zoo.cfg");
    let ours = rt.block_on(async {
        let server = ServerProcess::start(&cfg).expect("zk-server");
        let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while four_letter(port, "ruok") != "imok" {
            assert!(Instant::now() < deadline, "zk-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let pid = server.id().expect("pid");
        measure(addr, pid, z, (s, w, d), 10).await
    });
    let heap_mb = 4096;
    let apache = rt.block_on(async {
        let server =
            ApacheServer::start_with(&[&format!("-Xmx{heap_mb}m")], &["maxSessionTimeout=600000"])
                .expect("apache");
        let addr: std::net::SocketAddr = format!("127.0.0.1:{}", server.port()).parse().unwrap();
        let pid = server.node.pid().expect("pid");
        measure(addr, pid, z, (s, w, d), 20).await
    });

    println!();
    println!("| measure | zk-server | Apache 3.8 (-Xmx{heap_mb}m) | ratio |");
    println!("|---|---|---|---|");
    let row = |what: &str, o: f64, a: f64| {
        println!("| {what} | {o:.1} | {a:.1} | {:.2}x |", o / a);
    };
    row("RSS with the znodes, MiB", ours.rss[0], apache.rss[0]);
    row("RSS with the sessions too, MiB", ours.rss[1], apache.rss[1]);
    row("RSS with the watches too, MiB", ours.rss[2], apache.rss[2]);
    let kib = |a: f64, b: f64, n: usize| (b - a) * 1024.0 * 1024.0 / n as f64;
    row(
        "RSS per session, bytes",
        kib(ours.rss[0], ours.rss[1], s),
        kib(apache.rss[0], apache.rss[1], s),
    );
    row(
        "RSS per watch, bytes",
        kib(ours.rss[1], ours.rss[2], w),
        kib(apache.rss[1], apache.rss[2], w),
    );
    row(
        &format!("RSS with {} sessions in all ({d} detached), MiB", s + d),
        ours.rss[3],
        apache.rss[3],
    );
    row(
        "RSS per detached session, bytes",
        kib(ours.rss[2], ours.rss[3], d.max(1)),
        kib(apache.rss[2], apache.rss[3], d.max(1)),
    );
    let all = |f: &Figures| {
        ((f.rss[1] - f.rss[0]) + (f.rss[3] - f.rss[2])) * 1024.0 * 1024.0 / (s + d) as f64
    };
    row(
        &format!("RSS per session of the {}, bytes", s + d),
        all(&ours),
        all(&apache),
    );
    println!(
        "| `wchs` total | {} | {} | |",
        ours.watches_reported, apache.watches_reported
    );
    println!(
        "| `mntr` global_sessions at the end | {} | {} | |",
        ours.sessions_reported, apache.sessions_reported
    );
    println!("| run time, s | {:.1} | {:.1} | |", ours.secs, apache.secs);
}
