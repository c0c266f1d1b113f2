//! Peak memory of a follower installing a leader's SNAP of 1M znodes (100 B each), two
//! ways, each in its own process so `VmHWM` is its own:
//! - `streamed` (what members do): the tree is built straight from the received bytes
//!   and the snapshot file written from them ([`NodeDisk::install`]);
//! - `decoded` (what members did before): every node decoded into a `SnapshotData`,
//!   copied, turned into the database, and the copy written out.
//!
//! `cargo bench -p zk-server --bench snap_install_memory`; `ZK_BENCH_NODES` changes the
//! size. Three interleaved rounds; prints a Markdown table with the median of each.

use std::process::Command;
use std::time::Instant;

use bytes::Bytes;
use zk_proto::persistence::DataNodeRecord;
use zk_proto::StatPersisted;
use zk_server::storage::disk::from_snapshot;
use zk_server::storage::snap_stream;
use zk_server::storage::NodeDisk;
use zk_server::storage::SnapshotData;
use zk_server::ZkDatabase;

const ROUNDS: usize = 3;

/// `VmHWM` (peak resident set) of this process, in KiB.
fn peak_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A SNAP body: the initial tree, `/bench`, and `n` children of 100 bytes.
fn body(n: usize) -> (i64, Bytes) {
    let stat = |z: i64| StatPersisted {
        czxid: z,
        mzxid: z,
        pzxid: z,
        ..StatPersisted::default()
    };
    let mut snap = SnapshotData::initial();
    snap.last_zxid = n as i64 + 1;
    snap.nodes.push((
        "/bench".into(),
        DataNodeRecord {
            data: Some(Bytes::new()),
            acl: -1,
            stat: stat(1),
        },
    ));
    let payload = Bytes::from(vec![b'x'; 100]);
    for i in 0..n {
        snap.nodes.push((
            format!("/bench/n{i:010}"),
            DataNodeRecord {
                data: Some(payload.clone()),
                acl: -1,
                stat: stat(i as i64 + 2),
            },
        ));
    }
    (snap.last_zxid, snap_stream::encode(&snap))
}

/// Child process: installs the body in `file` one way; prints `ms peak_kib before_kib`.
fn child(mode: &str, file: &str, zxid: i64) {
    let body = Bytes::from(std::fs::read(file).expect("read body"));
    let dir = tempfile::tempdir().expect("temp dir");
    let before = peak_kib();
    let start = Instant::now();
    let db = if mode == "streamed" {
        let disk = NodeDisk::open(dir.path()).expect("open disk");
        disk.install(zxid, &body).expect("install")
    } else {
        let snap = snap_stream::decode(zxid, body.clone()).expect("decode");
        let db = ZkDatabase::from_image(&from_snapshot(snap.clone()));
        let f = std::fs::File::create(dir.path().join("snapshot")).expect("create");
        snap.write_to(f).expect("write");
        db
    };
    assert_eq!(db.last_zxid(), zxid);
    println!("{} {} {}", start.elapsed().as_millis(), peak_kib(), before);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, mode, file, zxid] = &args[..] {
        if flag == "--child" {
            child(mode, file, zxid.parse().expect("zxid"));
            return;
        }
    }
    let n: usize = std::env::var("ZK_BENCH_NODES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("snap.body");
    let (zxid, b) = body(n);
    std::fs::write(&file, &b).expect("write body");
    let body_mib = b.len() as f64 / (1 << 20) as f64;
    drop(b);
    let exe = std::env::current_exe().expect("own path");
    let mut results: Vec<(&str, Vec<(u64, u64)>)> = vec![("streamed", vec![]), ("decoded", vec![])];
    for round in 0..ROUNDS {
        for k in 0..2 {
            // Alternate which goes first, so host noise hits both alike.
            let (mode, runs) = &mut results[(k + round) % 2];
            let out = Command::new(&exe)
                .args(["--child", mode, &file.to_string_lossy(), &zxid.to_string()])
                .output()
                .expect("spawn");
            assert!(out.status.success(), "{mode}: {:?}", out);
            let text = String::from_utf8_lossy(&out.stdout);
            let v: Vec<u64> = text
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            runs.push((v[0], v[1]));
        }
    }
    let median = |mut v: Vec<u64>| {
        v.sort_unstable();
        v[v.len() / 2]
    };
    println!("SNAP body of {n} znodes: {body_mib:.0} MiB; median of {ROUNDS} rounds\n");
    println!("| install | peak RSS (MiB) | time (ms) |");
    println!("|---|---|---|");
    let mut peaks = Vec::new();
    for (mode, runs) in results {
        let peak = median(runs.iter().map(|r| r.1).collect()) / 1024;
        let ms = median(runs.iter().map(|r| r.0).collect());
        println!("| {mode} | {peak} | {ms} |");
        peaks.push(peak as f64);
    }
    println!(
        "\npeak ratio streamed / decoded: {:.2}x",
        peaks[0] / peaks[1]
    );
}
