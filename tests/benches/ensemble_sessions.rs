//! 50,000 connected sessions and 1M watches, zk-server against Apache ZooKeeper 3.8 in one
//! run (issue 12): a 3-member ensemble of each (processes, tickTime=2000,
//! `maxClientCnxns=0`) holding Z znodes, then S sessions connected at once, a third on
//! each member, then W data watches spread over the znodes. Each member's resident memory
//! is read after each step; the figures are the growth per session and per watch, summed
//! over the members (every member keeps every session; each keeps the connections and
//! watches of its third), and per member.
//!
//! ```sh
//! cargo bench -p tests --bench ensemble_sessions -- [--znodes 100000] [--sessions 50000] \
//!     [--watches 1000000] [--only zk|apache]
//! ```
//!
//! This container caps open files at 20,000 per process, so no one process can hold
//! 50,000 connections, neither a standalone server nor this bench. Here each member holds
//! a third of them, and the client side is three children of this bench (the same binary,
//! run with `--hold`), one per member, each on its own loopback source address. Sessions
//! are raw connections (a handshake, then pipelined getData-with-watch requests), so the
//! client side stays light. Apache's members run with `-Xmx2048m`.

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use tests::apache::{four_letter, ApacheEnsemble};
use tests::bench::{
    arg, bench_runtime, fill_znodes, mntr_value, open_raw_sessions, rss_mib, wait_quorum,
    watch_znodes, Cluster,
};
use tests::zk_processes::{Options, ProcessEnsemble};

/// The child's side: opens `--count` sessions to `--hold` from `--source`, says
/// `opened`; on a line from the parent sets `--per` watches per session (session `i`,
/// counted from `--first`, watches `/w/n{(i * per + k) % znodes}`), says `watched`; holds
/// everything until its stdin closes.
fn hold() {
    let addr: SocketAddr = arg("--hold", "127.0.0.1:1".to_string())
        .parse()
        .expect("--hold address");
    let source: IpAddr = arg("--source", "127.0.0.1".to_string())
        .parse()
        .expect("--source address");
    let (count, first, per, z): (usize, usize, usize, usize) = (
        arg("--count", 0),
        arg("--first", 0),
        arg("--per", 0),
        arg("--znodes", 1),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut out = std::io::stdout();
    let mut sessions = rt.block_on(open_raw_sessions(addr, SocketAddr::new(source, 0), count));
    writeln!(out, "opened")
        .and_then(|()| out.flush())
        .expect("to the parent");
    let mut line = String::new();
    let stdin = std::io::stdin();
    stdin.lock().read_line(&mut line).expect("from the parent");
    rt.block_on(watch_znodes(&mut sessions, first, per, z));
    writeln!(out, "watched")
        .and_then(|()| out.flush())
        .expect("to the parent");
    // Held until the parent is done measuring.
    let _ = std::io::copy(&mut stdin.lock(), &mut std::io::sink());
    drop(sessions);
}

/// One child of this bench holding sessions on one member.
struct Holder {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Holder {
    fn spawn(
        addr: SocketAddr,
        source: IpAddr,
        count: usize,
        first: usize,
        per: usize,
        z: usize,
    ) -> Holder {
        let exe = std::env::current_exe().expect("this bench's path");
        let mut child = Command::new(exe)
            .args(["--hold", &addr.to_string(), "--source", &source.to_string()])
            .args(["--count", &count.to_string(), "--first", &first.to_string()])
            .args(["--per", &per.to_string(), "--znodes", &z.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("a holder process");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("holder stdout"));
        Holder {
            child,
            stdin,
            stdout,
        }
    }

    /// Waits for the child to say `word`.
    fn expect(&mut self, word: &str) {
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("holder output");
        assert_eq!(line.trim(), word, "the holder process failed");
    }

    fn go_on(&mut self) {
        if let Some(s) = self.stdin.as_mut() {
            writeln!(s, "go")
                .and_then(|()| s.flush())
                .expect("to the holder");
        }
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        // Its stdin closing ends it; it is waited for, never left behind.
        self.stdin = None;
        let _ = self.child.wait();
    }
}

/// One ensemble's figures: per member, RSS with the znodes, + sessions, + watches.
struct Figures {
    name: &'static str,
    rss: Vec<[f64; 3]>,
    global_sessions: String,
    watches: u64,
    open_secs: f64,
    watch_secs: f64,
}

/// `Zxid: 0x...` of `srvr`.
fn zxid(port: u16) -> Option<String> {
    four_letter(port, "srvr")
        .lines()
        .find_map(|l| l.strip_prefix("Zxid: ").map(str::to_string))
}

fn measure(
    rt: &tokio::runtime::Runtime,
    c: &dyn Cluster,
    (z, s, w): (usize, usize, usize),
    base: u8,
) -> Figures {
    let ports = c.ports();
    let leader = wait_quorum(c, Duration::from_secs(60));
    let addr = |i: usize| -> SocketAddr { SocketAddr::from(([127, 0, 0, 1], ports[i])) };
    rt.block_on(fill_znodes(addr(leader), z));
    // Every member has applied the fill.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ports
        .iter()
        .all(|p| zxid(*p).is_some() && zxid(*p) == zxid(ports[leader]))
    {
        assert!(
            Instant::now() < deadline,
            "{}: members did not converge",
            c.name()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let settle = || std::thread::sleep(Duration::from_secs(1));
    let rss = |c: &dyn Cluster| -> Vec<f64> {
        (0..ports.len())
            .map(|i| c.pid(i).map(rss_mib).unwrap_or(0.0))
            .collect()
    };
    settle();
    let r0 = rss(c);
    let n = ports.len();
    let per = w / s;
    let t = Instant::now();
    let mut holders: Vec<Holder> = (0..n)
        .map(|i| {
            let count = s / n + usize::from(i < s % n);
            let first = (0..i).map(|k| s / n + usize::from(k < s % n)).sum();
            let source = IpAddr::from([127, 0, 0, base + i as u8]);
            Holder::spawn(addr(i), source, count, first, per, z)
        })
        .collect();
    for h in &mut holders {
        h.expect("opened");
    }
    let open_secs = t.elapsed().as_secs_f64();
    settle();
    let r1 = rss(c);
    let t = Instant::now();
    for h in &mut holders {
        h.go_on();
    }
    for h in &mut holders {
        h.expect("watched");
    }
    let watch_secs = t.elapsed().as_secs_f64();
    settle();
    let r2 = rss(c);
    let global_sessions = mntr_value(ports[leader], "zk_global_sessions");
    let watches = ports
        .iter()
        .map(|p| mntr_value(*p, "zk_watch_count").parse::<u64>().unwrap_or(0))
        .sum();
    drop(holders);
    Figures {
        name: c.name(),
        rss: (0..n).map(|i| [r0[i], r1[i], r2[i]]).collect(),
        global_sessions,
        watches,
        open_secs,
        watch_secs,
    }
}

fn main() {
    if std::env::args().any(|a| a == "--hold") {
        hold();
        return;
    }
    let z: usize = arg("--znodes", 100_000);
    let s: usize = arg("--sessions", 50_000);
    let w: usize = arg("--watches", 1_000_000);
    let only: String = arg("--only", String::new());
    let rt = bench_runtime();
    println!(
        "3-member ensembles; {z} znodes of 100 B, {s} sessions connected at once (a third on \
         each member), {w} data watches"
    );
    let cfg = [
        "maxClientCnxns=0",
        "maxSessionTimeout=600000",
        "4lw.commands.whitelist=*",
    ];
    let heap = "-Xmx2048m";
    let mut runs = Vec::new();
    if only != "apache" {
        let z_ens = rt
            .block_on(ProcessEnsemble::start(Options {
                tick_time: 2000,
                log_filter: "warn".into(),
                extra_cfg: cfg.iter().map(|l| format!("{l}\n")).collect(),
                ..Options::members(3)
            }))
            .expect("zk-server ensemble");
        runs.push(measure(&rt, &z_ens, (z, s, w), 30));
    }
    if only != "zk" {
        let a = ApacheEnsemble::start_with(3, &[heap], &[&cfg[..], &["tickTime=2000"]].concat())
            .expect("apache ensemble");
        runs.push(measure(&rt, &a, (z, s, w), 40));
    }
    println!();
    print!("| measure |");
    for f in &runs {
        print!(" {} |", f.name);
    }
    println!("{}", if runs.len() == 2 { " ratio |" } else { "" });
    println!(
        "|---|{}",
        "---|".repeat(runs.len() + usize::from(runs.len() == 2))
    );
    let mib_to_b = |mib: f64, per: usize| mib * 1024.0 * 1024.0 / per as f64;
    let row = |what: &str, v: &dyn Fn(&Figures) -> f64, digits: usize| {
        print!("| {what} |");
        for f in &runs {
            print!(" {:.*} |", digits, v(f));
        }
        if let [o, a] = &runs[..] {
            print!(" {:.2}x |", v(o) / v(a));
        }
        println!();
    };
    let sum = |f: &Figures, k: usize| f.rss.iter().map(|r| r[k]).sum::<f64>();
    row("RSS with the znodes, 3 members, MiB", &|f| sum(f, 0), 0);
    row(
        "RSS with the sessions too, 3 members, MiB",
        &|f| sum(f, 1),
        0,
    );
    row(
        "RSS with the watches too, 3 members, MiB",
        &|f| sum(f, 2),
        0,
    );
    row(
        "per session, all members, bytes",
        &|f| mib_to_b(sum(f, 1) - sum(f, 0), s),
        0,
    );
    row(
        "per watch, all members, bytes",
        &|f| mib_to_b(sum(f, 2) - sum(f, 1), w),
        0,
    );
    for i in 0..3 {
        row(
            &format!("member {i}: RSS growth with the sessions, MiB"),
            &|f| f.rss[i][1] - f.rss[i][0],
            1,
        );
    }
    row("sessions opened in, s", &|f| f.open_secs, 1);
    row("watches set in, s", &|f| f.watch_secs, 1);
    for f in &runs {
        println!(
            "{}: `mntr` zk_global_sessions on the leader {}, zk_watch_count summed {}",
            f.name, f.global_sessions, f.watches
        );
    }
}
