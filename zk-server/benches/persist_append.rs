//! Txn log append throughput with group commit: the same txns appended one per call
//! (one fdatasync each) versus in batches (one fdatasync per batch).
//!
//! `cargo bench -p zk-server --bench persist_append`; set `ZK_BENCH_DIR` to measure a
//! particular disk (default: the system temp dir). Prints a Markdown table.

use std::time::{Duration, Instant};

use bytes::Bytes;
use zk_proto::txn::{CreateTxn, Txn, TxnEntry, TxnHeader};
use zk_proto::{Acl, OpCode};
use zk_server::storage::{Storage, StorageOptions};

fn txn(zxid: i64, payload: &Bytes) -> TxnEntry {
    TxnEntry {
        header: TxnHeader {
            client_id: 0x100,
            cxid: zxid as i32,
            zxid,
            time: 1_700_000_000_000,
            txn_type: OpCode::Create,
        },
        txn: Txn::Create(CreateTxn {
            path: format!("/bench/node-{zxid:010}"),
            data: Some(payload.clone()),
            acl: Acl::open_unsafe(),
            ephemeral: false,
            parent_c_version: -1,
        }),
        digest: None,
    }
}

struct Run {
    batch: usize,
    txns: usize,
    elapsed: Duration,
    syncs: u64,
}

fn run(batch: usize, budget: Duration, payload: &Bytes) -> Run {
    let base = std::env::var_os("ZK_BENCH_DIR")
        .map(Into::into)
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::tempdir_in(base).expect("temp dir");
    let (mut s, _) =
        Storage::open(dir.path(), dir.path(), StorageOptions::default()).expect("open storage");
    // Warm up: the first append creates and preallocates the file.
    s.append(&[txn(1, payload)]).expect("append");
    let mut zxid = 2i64;
    let syncs0 = s.sync_stats().log_syncs;
    let start = Instant::now();
    let mut txns = 0;
    while start.elapsed() < budget {
        let entries: Vec<TxnEntry> = (0..batch).map(|i| txn(zxid + i as i64, payload)).collect();
        s.append(&entries).expect("append");
        zxid += batch as i64;
        txns += batch;
    }
    Run {
        batch,
        txns,
        elapsed: start.elapsed(),
        syncs: s.sync_stats().log_syncs - syncs0,
    }
}

fn main() {
    // `cargo test --benches` passes --bench-less flags; keep that run short.
    let quick = std::env::args().any(|a| a == "--test");
    let budget = if quick {
        Duration::from_millis(200)
    } else {
        Duration::from_secs(3)
    };
    let payload = Bytes::from(vec![b'x'; 100]);
    println!("| batch | txns | seconds | txns/s | fdatasyncs | txns per fdatasync |");
    println!("|------:|-----:|--------:|-------:|-----------:|-------------------:|");
    for batch in [1usize, 10, 100, 1000] {
        let r = run(batch, budget, &payload);
        let secs = r.elapsed.as_secs_f64();
        println!(
            "| {} | {} | {:.2} | {:.0} | {} | {:.0} |",
            r.batch,
            r.txns,
            secs,
            r.txns as f64 / secs,
            r.syncs,
            r.txns as f64 / r.syncs.max(1) as f64
        );
    }
}
