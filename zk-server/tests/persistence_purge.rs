//! Autopurge keeps the newest snapshots and exactly the logs needed to replay from the
//! oldest kept one.

mod persistence_support;

use persistence_support::tree::Tree;
use persistence_support::*;
use zk_server::storage::file_names::version_dir;
use zk_server::storage::{Restored, SnapshotData, Storage, StorageOptions};

/// Storage in `dir` with small preallocation, keeping `retain` snapshots when purging.
fn open_retaining(dir: &std::path::Path, retain: usize) -> (Storage, Restored) {
    let opts = StorageOptions {
        prealloc_size: 4096,
        snap_retain_count: retain,
    };
    Storage::open(dir, dir, opts).unwrap()
}

/// Four rounds of 10 creates, each followed by a snapshot (at 10, 20, 30, 40; the log rolls
/// at each); returns the tree they built.
fn four_snapshot_rounds(s: &mut Storage) -> Tree {
    let mut tree = Tree::from_snapshot(&SnapshotData::initial());
    for round in 0..4 {
        let batch = creates(round * 10 + 1, 10);
        s.append(&batch).unwrap();
        tree.replay(&batch);
        s.save_snapshot(&tree.to_snapshot()).unwrap();
    }
    tree
}

#[test]
fn purge_keeps_retained_snapshots_and_the_logs_they_need() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = open_retaining(dir.path(), 3);
    // Snapshots at 10, 20, 30, 40 with the log rolled at each; 5 more txns after the last.
    four_snapshot_rounds(&mut s);
    s.append(&creates(41, 5)).unwrap();
    let v2 = version_dir(dir.path());
    assert_eq!(
        file_names(&v2),
        vec![
            "log.1",
            "log.15",
            "log.1f",
            "log.29",
            "log.b",
            "snapshot.0",
            "snapshot.14",
            "snapshot.1e",
            "snapshot.28",
            "snapshot.a"
        ]
    );

    let removed = s.purge().unwrap();
    assert_eq!(
        removed.len(),
        3,
        "snapshot.0, snapshot.a, log.1: {removed:?}"
    );
    // Kept: snapshots 0x14, 0x1e, 0x28; logs from the newest one starting at or before
    // 0x14 (log.b, holding 11..=20) onwards.
    assert_eq!(
        file_names(&v2),
        vec![
            "log.15",
            "log.1f",
            "log.29",
            "log.b",
            "snapshot.14",
            "snapshot.1e",
            "snapshot.28"
        ]
    );
    // Every kept snapshot can still be replayed to the end: destroy newer ones in turn.
    assert!(s.covers(0x14).unwrap());
    assert_eq!(
        zxids(&s.txns_after(0x14).unwrap()),
        (21..=45).collect::<Vec<_>>()
    );
    drop(s);
    for newer in ["snapshot.28", "snapshot.1e"] {
        std::fs::write(v2.join(newer), b"broken").unwrap();
    }
    let (s, r) = open_retaining(dir.path(), 3);
    assert_eq!(r.snapshot.as_ref().unwrap().last_zxid, 0x14);
    let mut back = Tree::from_snapshot(r.snapshot.as_ref().unwrap());
    back.replay(&r.txns);
    assert_eq!(s.last_zxid(), 45);
    for z in 1..=45 {
        assert!(back.data(&format!("/n{z}")).is_some(), "/n{z}");
    }
}

#[test]
fn purge_with_a_log_spanning_the_kept_snapshots() {
    // No log roll between snapshots (a learner can do that): the one log that starts
    // before the oldest kept snapshot must survive.
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = open_retaining(dir.path(), 3);
    s.append(&creates(1, 10)).unwrap();
    for z in [3, 5, 7] {
        let mut snap = SnapshotData::initial();
        snap.last_zxid = z;
        s.snapshot_writer().write(&snap).unwrap();
    }
    let removed = s.purge().unwrap();
    assert_eq!(removed.len(), 1, "snapshot.0: {removed:?}");
    assert_eq!(
        file_names(&version_dir(dir.path())),
        vec!["log.1", "snapshot.3", "snapshot.5", "snapshot.7"]
    );
    // Nothing to purge on an empty store.
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = Storage::open(dir.path(), dir.path(), StorageOptions::default()).unwrap();
    assert!(s.purge().unwrap().is_empty());
}

#[test]
fn purge_keeps_at_least_three_snapshots_like_apache() {
    // Apache's PurgeTxnLog refuses to keep fewer than 3; asking for 1 keeps 3.
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = open_retaining(dir.path(), 1);
    let mut tree = four_snapshot_rounds(&mut s);
    let v2 = version_dir(dir.path());
    assert_eq!(
        file_names(&v2)
            .iter()
            .filter(|n| n.starts_with("snapshot."))
            .count(),
        5
    );
    s.purge().unwrap();
    assert_eq!(
        file_names(&v2),
        vec![
            "log.15",
            "log.1f",
            "log.b",
            "snapshot.14",
            "snapshot.1e",
            "snapshot.28"
        ]
    );
    // Raising the count later keeps more from then on.
    s.set_snap_retain_count(5);
    s.append(&creates(41, 10)).unwrap();
    tree.replay(&creates(41, 10));
    s.save_snapshot(&tree.to_snapshot()).unwrap();
    assert!(s.purge().unwrap().is_empty());
}
