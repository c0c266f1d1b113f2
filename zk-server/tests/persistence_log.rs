//! Txn log: round trips, group commit, preallocation, torn and corrupt tails, DIFF reads
//! and TRUNC.

mod persistence_support;

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use persistence_support::*;
use zk_server::storage::file_names::version_dir;
use zk_server::storage::txn_log::{self, padded_size};
use zk_server::storage::{Storage, StorageOptions};
use zk_server::ServerError;

fn opts() -> StorageOptions {
    StorageOptions {
        prealloc_size: 64 * 1024,
        snap_retain_count: 3,
    }
}

fn open(dir: &Path) -> (Storage, zk_server::storage::Restored) {
    Storage::open(dir, dir, opts()).expect("open")
}

fn log_path(dir: &Path, zxid: i64) -> PathBuf {
    version_dir(dir).join(format!("log.{zxid:x}"))
}

/// Offsets of each entry's start and the end of the last one, from a scan.
fn entry_bounds(path: &Path) -> Vec<(u64, u64)> {
    let scan = txn_log::scan(path, true).unwrap();
    let mut start = txn_log::HEADER_LEN;
    scan.entries
        .iter()
        .map(|t| {
            let b = (start, t.end);
            start = t.end;
            b
        })
        .collect()
}

#[test]
fn appended_txns_come_back_in_order_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, r) = open(dir.path());
    assert_eq!(r.txns, vec![]);
    assert_eq!(
        r.snapshot.unwrap().last_zxid,
        0,
        "fresh dir starts from snapshot.0"
    );
    assert_eq!(s.last_zxid(), 0);
    let mut all = vec![create_session(1, 5000)];
    all.extend(creates(2, 50));
    all.push(set_data(52, "/n2", "changed", 1));
    all.push(delete(53, "/n3"));
    all.push(close_session(54, &[]));
    s.append(&all[..1]).unwrap();
    s.append(&all[1..30]).unwrap();
    s.append(&all[30..]).unwrap();
    assert_eq!(s.last_zxid(), 54);
    drop(s);

    let (s, r) = open(dir.path());
    assert_eq!(r.txns, all);
    assert_eq!(s.last_zxid(), 54);
    assert_eq!(s.txns_after(0).unwrap(), all);
    // Appends after a restart go to a new file, as Apache does, and all are read back.
    let mut s = s;
    s.append(&creates(55, 3)).unwrap();
    drop(s);
    assert_eq!(
        file_names(&version_dir(dir.path())),
        vec!["log.1", "log.37", "snapshot.0"]
    );
    let (_, r) = open(dir.path());
    assert_eq!(zxids(&r.txns), (1..=57).collect::<Vec<_>>());
}

#[test]
fn group_commit_syncs_once_per_append_whatever_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = open(dir.path());
    let before = s.sync_stats();
    assert_eq!(before.log_syncs, 0);
    s.append(&creates(1, 1)).unwrap();
    s.append(&creates(2, 100)).unwrap();
    s.append(&creates(102, 1000)).unwrap();
    let after = s.sync_stats();
    assert_eq!(after.log_syncs, 3, "one fdatasync per append call");
    assert_eq!(
        after.dir_syncs, 1,
        "one directory sync for the one new file"
    );
    s.append(&[]).unwrap();
    assert_eq!(s.sync_stats().log_syncs, 3, "empty batch does no I/O");
    s.roll_log();
    s.append(&creates(1102, 5)).unwrap();
    assert_eq!(s.sync_stats().log_syncs, 4);
    assert_eq!(s.sync_stats().dir_syncs, 2);
}

#[test]
fn log_files_are_preallocated_like_apache() {
    // Apache: the header (16 bytes), then the size grows by a whole chunk from there.
    assert_eq!(padded_size(16, 16, 65536), 16 + 65536);
    assert_eq!(padded_size(100, 65552, 65536), 65552);
    assert_eq!(padded_size(65552 - 4096, 65552, 65536), 65552 + 65536);
    assert_eq!(padded_size(200_000, 65552, 65536), 262_144);
    assert_eq!(padded_size(200_000, 65552, 0), 65552);

    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = open(dir.path());
    s.append(&creates(1, 3)).unwrap();
    let p = log_path(dir.path(), 1);
    assert_eq!(std::fs::metadata(&p).unwrap().len(), 16 + 65536);
    // Fill past the slack: the file grows by another chunk, and stays readable.
    s.append(&creates(4, 2000)).unwrap();
    let len = std::fs::metadata(&p).unwrap().len();
    assert_eq!(len % 65536, 16, "grown in whole chunks: {len}");
    let end = entry_bounds(&p).last().unwrap().1;
    assert!(end + 4096 < len, "data {end} stays clear of the end {len}");
    drop(s);
    let (_, r) = open(dir.path());
    assert_eq!(r.txns.len(), 2003);
}

/// Writes 5 entries, damages the last one with `damage`, reopens: entries 1..=4 survive,
/// the file is cut back, the bad bytes are saved aside, and appending continues.
fn torn_tail_case(damage: impl Fn(&std::fs::File, u64, u64)) {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = open(dir.path());
    s.append(&creates(1, 4)).unwrap();
    s.append(&creates(5, 1)).unwrap();
    drop(s);
    let p = log_path(dir.path(), 1);
    let bounds = entry_bounds(&p);
    let (start, end) = bounds[4];
    let f = OpenOptions::new().read(true).write(true).open(&p).unwrap();
    damage(&f, start, end);
    drop(f);

    let (mut s, r) = open(dir.path());
    assert_eq!(zxids(&r.txns), vec![1, 2, 3, 4]);
    assert_eq!(s.last_zxid(), 4);
    assert_eq!(
        std::fs::metadata(&p).unwrap().len(),
        start,
        "cut at the bad entry"
    );
    let names = file_names(&version_dir(dir.path()));
    assert!(
        names.iter().any(|n| n == &format!("corrupt.log.1.{start}")),
        "damaged bytes saved: {names:?}"
    );
    // The zxid of the lost entry is reused by the next append, into a new file.
    s.append(&creates(5, 2)).unwrap();
    drop(s);
    let (_, r) = open(dir.path());
    assert_eq!(zxids(&r.txns), vec![1, 2, 3, 4, 5, 6]);
}

#[test]
fn torn_tail_truncated_mid_entry() {
    torn_tail_case(|f, start, end| f.set_len(start + (end - start) / 2).unwrap());
}

#[test]
fn torn_tail_with_a_flipped_byte() {
    torn_tail_case(|f, start, end| {
        let at = start + 12 + (end - start - 13) / 2;
        let mut b = [0u8; 1];
        f.read_at(&mut b, at).unwrap();
        f.write_at(&[b[0] ^ 0x20], at).unwrap();
    });
}

#[test]
fn torn_tail_with_a_zeroed_end_marker() {
    torn_tail_case(|f, _start, end| {
        f.write_at(&[0], end - 1).unwrap();
    });
}

#[test]
fn torn_tail_with_garbage_in_the_preallocated_zeros() {
    // A partly written entry whose length is still zero: Apache's end of log, followed by
    // bytes that are not padding.
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = open(dir.path());
    s.append(&creates(1, 3)).unwrap();
    drop(s);
    let p = log_path(dir.path(), 1);
    let end = entry_bounds(&p).last().unwrap().1;
    let f = OpenOptions::new().write(true).open(&p).unwrap();
    f.write_at(b"\0\0\0\0\0\0\0\0\0\0\0\0junk", end).unwrap();
    drop(f);
    let (_, r) = open(dir.path());
    assert_eq!(zxids(&r.txns), vec![1, 2, 3]);
    assert_eq!(std::fs::metadata(&p).unwrap().len(), end);
    assert!(txn_log::scan(&p, true).unwrap().damage.is_none());
}

#[test]
fn corrupt_entry_mid_log_stops_replay_there() {
    // Like Apache, reading stops at the first bad entry; what follows is not loaded (it
    // would be a gap) but kept in a corrupt.* file.
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = open(dir.path());
    s.append(&creates(1, 6)).unwrap();
    s.roll_log();
    s.append(&creates(7, 3)).unwrap();
    drop(s);
    let p = log_path(dir.path(), 1);
    let (start, _) = entry_bounds(&p)[2];
    let f = OpenOptions::new().write(true).open(&p).unwrap();
    f.write_at(&[0xde, 0xad], start + 20).unwrap();
    drop(f);

    let (s, r) = open(dir.path());
    assert_eq!(zxids(&r.txns), vec![1, 2], "nothing after the bad entry");
    assert_eq!(s.last_zxid(), 2);
    let names = file_names(&version_dir(dir.path()));
    assert!(
        names.contains(&format!("corrupt.log.1.{start}")),
        "{names:?}"
    );
    assert!(
        names.contains(&"corrupt.log.7".to_string()),
        "later log after a gap set aside: {names:?}"
    );
    assert!(!names.contains(&"log.7".to_string()));
}

#[test]
fn crash_then_restart_pattern_keeps_the_next_log() {
    // Apache's own crash pattern: a torn last entry in log.1, then a restart that logged
    // the same zxid again in a new file. The new file continues the log and is replayed.
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = open(dir.path());
    s.append(&creates(1, 4)).unwrap();
    drop(s);
    let p = log_path(dir.path(), 1);
    let (start, end) = entry_bounds(&p)[3];
    let f = OpenOptions::new().write(true).open(&p).unwrap();
    f.set_len(start + (end - start) / 2).unwrap();
    drop(f);
    // What the restarted server logged.
    let (mut s, r) = open(dir.path());
    assert_eq!(zxids(&r.txns), vec![1, 2, 3]);
    s.append(&creates(4, 3)).unwrap();
    drop(s);
    let (_, r) = open(dir.path());
    assert_eq!(zxids(&r.txns), vec![1, 2, 3, 4, 5, 6]);
}

#[test]
fn entry_with_valid_checksum_that_does_not_decode_is_refused_untouched() {
    // Not a torn write: truncating could drop committed txns, so open fails instead.
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = open(dir.path());
    s.append(&creates(1, 2)).unwrap();
    drop(s);
    let p = log_path(dir.path(), 1);
    let end = entry_bounds(&p).last().unwrap().1;
    // A well-framed entry whose body is a header with an unknown txn type.
    let mut body = bytes::BytesMut::new();
    use zk_proto::Record;
    zk_proto::txn::TxnHeader {
        client_id: 1,
        cxid: 1,
        zxid: 3,
        time: 0,
        txn_type: zk_proto::OpCode::from_i32(77),
    }
    .write(&mut body);
    let mut framed = Vec::new();
    framed.extend_from_slice(&i64::from(zk_server::storage::adler32::adler32(&body)).to_be_bytes());
    framed.extend_from_slice(&(body.len() as i32).to_be_bytes());
    framed.extend_from_slice(&body);
    framed.push(b'B');
    let f = OpenOptions::new().write(true).open(&p).unwrap();
    f.write_at(&framed, end).unwrap();
    drop(f);
    let before = std::fs::read(&p).unwrap();
    let err = Storage::open(dir.path(), dir.path(), opts()).unwrap_err();
    assert!(matches!(err, ServerError::Corrupt { .. }), "{err}");
    assert_eq!(std::fs::read(&p).unwrap(), before, "file untouched");
}

#[test]
fn zxids_must_increase() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = open(dir.path());
    s.append(&creates(1, 3)).unwrap();
    let err = s.append(&creates(3, 1)).unwrap_err();
    assert!(matches!(err, ServerError::Storage(_)), "{err}");
    let mut bad = creates(4, 2);
    bad.swap(0, 1);
    assert!(s.append(&bad).is_err());
    assert_eq!(s.last_zxid(), 3);
    s.append(&creates(4, 1)).unwrap();
}

#[test]
fn txns_after_serves_diffs_across_files_until_purged_away() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = open(dir.path());
    s.append(&creates(1, 10)).unwrap();
    s.roll_log();
    s.append(&creates(11, 10)).unwrap();
    assert_eq!(
        zxids(&s.txns_after(5).unwrap()),
        (6..=20).collect::<Vec<_>>()
    );
    assert_eq!(
        zxids(&s.txns_after(10).unwrap()),
        (11..=20).collect::<Vec<_>>()
    );
    assert_eq!(s.txns_after(20).unwrap(), vec![]);
    assert_eq!(s.txns_after(25).unwrap(), vec![]);
    assert!(s.covers(0).unwrap());
    // Drop the first file (as a purge would): zxids before 10 are no longer available.
    std::fs::remove_file(log_path(dir.path(), 1)).unwrap();
    assert!(!s.covers(5).unwrap());
    assert!(s.covers(10).unwrap());
    assert!(matches!(
        s.txns_after(5),
        Err(ServerError::TxnsUnavailable { after: 5 })
    ));
    assert_eq!(
        zxids(&s.txns_after(10).unwrap()),
        (11..=20).collect::<Vec<_>>()
    );
}

#[test]
fn truncate_after_drops_later_txns_files_and_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = open(dir.path());
    s.append(&creates(1, 10)).unwrap();
    let mut snap = zk_server::storage::SnapshotData::initial();
    snap.last_zxid = 10;
    s.save_snapshot(&snap).unwrap();
    s.append(&creates(11, 10)).unwrap();
    s.roll_log();
    s.append(&creates(21, 5)).unwrap();
    assert_eq!(
        file_names(&version_dir(dir.path())),
        vec!["log.1", "log.15", "log.b", "snapshot.0", "snapshot.a"]
    );

    s.truncate_after(13).unwrap();
    assert_eq!(s.last_zxid(), 13);
    assert_eq!(
        zxids(&s.txns_after(0).unwrap()),
        (1..=13).collect::<Vec<_>>()
    );
    assert_eq!(
        file_names(&version_dir(dir.path())),
        vec!["log.1", "log.b", "snapshot.0", "snapshot.a"]
    );
    // Appending continues from there, and a reload agrees.
    s.append(&creates(14, 2)).unwrap();
    let r = s.load().unwrap();
    assert_eq!(r.snapshot.unwrap().last_zxid, 10);
    assert_eq!(zxids(&r.txns), vec![11, 12, 13, 14, 15]);

    // Truncating below a snapshot removes it: it holds txns that no longer exist.
    s.truncate_after(5).unwrap();
    assert_eq!(s.last_zxid(), 5);
    assert_eq!(
        file_names(&version_dir(dir.path())),
        vec!["log.1", "snapshot.0"]
    );
    drop(s);
    let (s, r) = open(dir.path());
    assert_eq!(r.snapshot.unwrap().last_zxid, 0);
    assert_eq!(zxids(&r.txns), vec![1, 2, 3, 4, 5]);
    assert_eq!(s.last_zxid(), 5);
}

#[test]
fn separate_data_and_log_dirs() {
    let dir = tempfile::tempdir().unwrap();
    let (data, logs) = (dir.path().join("data"), dir.path().join("logs"));
    let (mut s, _) = Storage::open(&data, &logs, opts()).unwrap();
    s.append(&creates(1, 2)).unwrap();
    assert_eq!(file_names(&version_dir(&data)), vec!["snapshot.0"]);
    assert_eq!(file_names(&version_dir(&logs)), vec!["log.1"]);
}

/// The txns as the log holds them (and as proposals carry them).
fn serialized(entries: &[zk_proto::txn::TxnEntry]) -> Vec<(i64, bytes::Bytes)> {
    entries
        .iter()
        .map(|e| {
            let mut b = bytes::BytesMut::new();
            e.write(&mut b);
            (e.header.zxid, b.freeze())
        })
        .collect()
}

fn borrowed(txns: &[(i64, bytes::Bytes)]) -> Vec<(i64, &[u8])> {
    txns.iter().map(|(z, b)| (*z, &b[..])).collect()
}

/// Every file of `dir`'s `version-2`, by name, with its bytes.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(version_dir(dir))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().into_string().unwrap(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn serialized_txns_are_logged_byte_for_byte_as_decoded_ones() {
    let mut all = vec![create_session(1, 5000)];
    all.extend(creates(2, 3000));
    all.push(set_data(3002, "/n2", "changed", 1));
    all.push(delete(3003, "/n3"));
    all.push(close_session(3004, &[]));
    let batches = [0..1, 1..2, 2..700, 700..2000, 2000..all.len()];

    let decoded = tempfile::tempdir().unwrap();
    let (mut d, _) = open(decoded.path());
    let encoded = tempfile::tempdir().unwrap();
    let (mut e, _) = open(encoded.path());
    let bytes = serialized(&all);
    for (i, b) in batches.iter().enumerate() {
        if i == 3 {
            // A new file mid-way, as after a snapshot.
            d.roll_log();
            e.roll_log();
        }
        d.append(&all[b.clone()]).unwrap();
        e.append_encoded(&borrowed(&bytes[b.clone()])).unwrap();
    }
    assert_eq!(e.last_zxid(), 3004);
    // Counts only: the stats also carry how long the last fdatasync took.
    let counts = |s: zk_server::storage::txn_log::SyncStats| (s.log_syncs, s.dir_syncs);
    assert_eq!(
        counts(e.sync_stats()),
        counts(d.sync_stats()),
        "one sync per batch either way"
    );
    // Same files, same bytes: framing, preallocation and the zeros after the last entry.
    let (want, got) = (files(decoded.path()), files(encoded.path()));
    assert_eq!(
        got.iter().map(|f| &f.0).collect::<Vec<_>>(),
        ["log.1", "log.2bd", "snapshot.0"]
    );
    assert!(want == got, "the two data directories differ");
    drop(e);
    let (_, r) = open(encoded.path());
    assert_eq!(r.txns, all);
}

#[test]
fn a_serialized_txn_not_headed_by_its_zxid_fails_the_batch_before_any_write() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = open(dir.path());
    let good = serialized(&creates(1, 3));
    s.append_encoded(&borrowed(&good[..1])).unwrap();
    let before = files(dir.path());
    // After a good txn 2: the bytes of txn 1 handed over as txn 3; a header cut short;
    // nothing at all.
    let wrong = [(3, &good[0].1[..])];
    let short = [(3, &good[2].1[..20])];
    let empty = [(3, &[][..])];
    for bad in [&wrong[..], &short[..], &empty[..]] {
        let batch = [&borrowed(&good[1..2])[..], bad].concat();
        let err = s.append_encoded(&batch).unwrap_err();
        assert!(err.to_string().contains("txn 0x3 not logged"), "{err}");
        assert!(
            files(dir.path()) == before,
            "nothing of the batch was written"
        );
    }
    // The log is still usable, and what it holds is what was accepted.
    s.append_encoded(&borrowed(&good[1..])).unwrap();
    drop(s);
    let (_, r) = open(dir.path());
    assert_eq!(r.txns, creates(1, 3));
}
