//! Snapshots: round trip, exact layout and seals, fallback to an older snapshot, refusal
//! of unusable dirs, background writing while the log appends.

mod persistence_support;

use std::path::Path;

use bytes::Bytes;
use persistence_support::tree::Tree;
use persistence_support::*;
use zk_proto::persistence::DataNodeRecord;
use zk_proto::{Acl, Perms, StatPersisted};
use zk_server::storage::adler32::adler32;
use zk_server::storage::file_names::version_dir;
use zk_server::storage::snapshot::read_snapshot;
use zk_server::storage::{SnapshotData, Storage, StorageOptions};
use zk_server::ServerError;

fn opts() -> StorageOptions {
    StorageOptions {
        prealloc_size: 64 * 1024,
        snap_retain_count: 3,
    }
}

fn sample(zxid: i64) -> SnapshotData {
    let mut tree = Tree::from_snapshot(&SnapshotData::initial());
    let mut txns = vec![create_session(1, 4000)];
    txns.extend(creates(2, 20));
    txns.push(create(22, "/n2/child", "", -1));
    txns.push(set_data(23, "/n5", "binary\u{0}\u{ff}", 3));
    tree.replay(&txns);
    let mut s = tree.to_snapshot();
    s.last_zxid = zxid;
    s.acls.push((
        7,
        vec![Acl::new(Perms::READ | Perms::WRITE, "digest", "u:h")],
    ));
    s.nodes.push((
        "/with-acl".into(),
        DataNodeRecord {
            data: None,
            acl: 7,
            stat: StatPersisted {
                czxid: 9,
                ephemeral_owner: i64::MIN,
                ..StatPersisted::default()
            },
        },
    ));
    s
}

fn write(dir: &Path, snap: &SnapshotData) -> std::path::PathBuf {
    let (s, _) = Storage::open(dir, dir, opts()).unwrap();
    s.snapshot_writer().write(snap).unwrap()
}

#[test]
fn snapshot_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let snap = sample(0x1_0000_0017);
    let path = write(dir.path(), &snap);
    assert_eq!(path.file_name().unwrap(), "snapshot.100000017");
    assert_eq!(read_snapshot(&path, snap.last_zxid).unwrap(), snap);
    let (_, r) = Storage::open(dir.path(), dir.path(), opts()).unwrap();
    assert_eq!(r.snapshot.unwrap(), snap);
}

#[test]
fn layout_and_seals_are_apaches() {
    let snap = sample(5);
    let mut b = Vec::new();
    snap.write_to(&mut b).unwrap();
    assert_eq!(&b[..4], b"ZKSN");
    assert_eq!(&b[4..8], &2i32.to_be_bytes());
    assert_eq!(&b[8..16], &(-1i64).to_be_bytes(), "FileSnap.dbId");
    assert_eq!(&b[16..20], &1i32.to_be_bytes(), "one session");
    // Tail: seal, empty ZxidDigest{0, 2, 0}, second seal; each seal = long adler32 of every
    // byte before it, then "/".
    let n = b.len();
    let seal2 = n - 13;
    let digest = seal2 - 20;
    let seal1 = digest - 13;
    assert_eq!(&b[seal1 - 5..seal1], &[0, 0, 0, 1, b'/'], "end of nodes");
    let sum1 = i64::from_be_bytes(b[seal1..seal1 + 8].try_into().unwrap());
    assert_eq!(sum1, i64::from(adler32(&b[..seal1])));
    assert_eq!(&b[seal1 + 8..digest], &[0, 0, 0, 1, b'/']);
    let mut want = Vec::new();
    want.extend_from_slice(&0i64.to_be_bytes());
    want.extend_from_slice(&2i32.to_be_bytes());
    want.extend_from_slice(&0i64.to_be_bytes());
    assert_eq!(&b[digest..seal2], &want[..]);
    let sum2 = i64::from_be_bytes(b[seal2..seal2 + 8].try_into().unwrap());
    assert_eq!(sum2, i64::from(adler32(&b[..seal2])));
    assert_eq!(&b[n - 5..], &[0, 0, 0, 1, b'/']);
}

#[test]
fn snapshots_without_a_digest_section_still_load() {
    // Apache before 3.6 ended the file after the first seal.
    let snap = sample(5);
    let mut b = Vec::new();
    snap.write_to(&mut b).unwrap();
    b.truncate(b.len() - 13 - 20);
    assert_eq!(SnapshotData::decode(5, Bytes::from(b)).unwrap(), snap);
}

#[test]
fn any_damage_is_detected() {
    let snap = sample(5);
    let mut good = Vec::new();
    snap.write_to(&mut good).unwrap();
    for at in (0..good.len()).step_by(7) {
        let mut bad = good.clone();
        bad[at] ^= 0x41;
        assert!(
            SnapshotData::decode(5, Bytes::from(bad)).is_err(),
            "flip at {at} of {} went unnoticed",
            good.len()
        );
    }
    for len in [0, 10, good.len() / 2, good.len() - 1] {
        assert!(SnapshotData::decode(5, Bytes::copy_from_slice(&good[..len])).is_err());
    }
}

#[test]
fn nodes_out_of_pre_order_are_refused_on_write() {
    let mut snap = SnapshotData::initial();
    snap.nodes.push(("/a/b".into(), snap.nodes[1].1.clone()));
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = Storage::open(dir.path(), dir.path(), opts()).unwrap();
    snap.last_zxid = 3;
    assert!(s.snapshot_writer().write(&snap).is_err());
    let mut negative = SnapshotData::initial();
    negative.last_zxid = -1;
    assert!(matches!(
        s.snapshot_writer().write(&negative),
        Err(ServerError::Storage(_))
    ));
    assert_eq!(
        file_names(&version_dir(dir.path())),
        vec!["snapshot.0"],
        "no file, no temporary left behind"
    );
}

#[test]
fn corrupt_newest_snapshot_falls_back_to_an_older_one() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = Storage::open(dir.path(), dir.path(), opts()).unwrap();
    s.append(&creates(1, 10)).unwrap();
    let mut tree = Tree::from_snapshot(&SnapshotData::initial());
    tree.replay(&creates(1, 5));
    let older = tree.to_snapshot();
    s.save_snapshot(&older).unwrap();
    tree.replay(&creates(6, 5));
    let newer = s.save_snapshot(&tree.to_snapshot()).unwrap();
    drop(s);
    // Corrupt the middle of the newest one (its tail still looks complete).
    let mut b = std::fs::read(&newer).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0xff;
    std::fs::write(&newer, b).unwrap();

    let (s, r) = Storage::open(dir.path(), dir.path(), opts()).unwrap();
    let snap = r.snapshot.unwrap();
    assert_eq!(snap, older);
    assert_eq!(
        zxids(&r.txns),
        vec![6, 7, 8, 9, 10],
        "replay from the older snapshot"
    );
    assert_eq!(s.last_zxid(), 10);
    let mut back = Tree::from_snapshot(&snap);
    back.replay(&r.txns);
    assert_eq!(back.data("/n10").as_deref(), Some("data-10"));
}

#[test]
fn unusable_dirs_are_refused_like_apache() {
    // Logs but no snapshot at all.
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = Storage::open(dir.path(), dir.path(), opts()).unwrap();
    s.append(&creates(1, 2)).unwrap();
    drop(s);
    std::fs::remove_file(version_dir(dir.path()).join("snapshot.0")).unwrap();
    let err = Storage::open(dir.path(), dir.path(), opts()).unwrap_err();
    assert!(matches!(err, ServerError::Corrupt { .. }), "{err}");
    // Snapshots, none of them valid.
    let dir = tempfile::tempdir().unwrap();
    drop(Storage::open(dir.path(), dir.path(), opts()).unwrap());
    std::fs::write(version_dir(dir.path()).join("snapshot.0"), b"garbage").unwrap();
    let err = Storage::open(dir.path(), dir.path(), opts()).unwrap_err();
    assert!(err.to_string().contains("no valid snapshot"), "{err}");
}

#[test]
fn background_snapshot_while_the_log_appends() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = Storage::open(dir.path(), dir.path(), opts()).unwrap();
    let mut tree = Tree::from_snapshot(&SnapshotData::initial());
    let batch = creates(1, 2000);
    s.append(&batch).unwrap();
    tree.replay(&batch);
    let snap = tree.to_snapshot();
    s.roll_log();
    let writer = s.snapshot_writer();
    let bg = std::thread::spawn(move || writer.write(&snap));
    for i in 0..50 {
        s.append(&creates(2001 + i * 10, 10)).unwrap();
    }
    let path = bg.join().unwrap().unwrap();
    assert_eq!(path.file_name().unwrap(), "snapshot.7d0");
    drop(s);
    let (s, r) = Storage::open(dir.path(), dir.path(), opts()).unwrap();
    assert_eq!(r.snapshot.unwrap().last_zxid, 2000);
    assert_eq!(zxids(&r.txns), (2001..=2500).collect::<Vec<_>>());
    assert_eq!(s.last_zxid(), 2500);
    let names = file_names(&version_dir(dir.path()));
    assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
}

#[test]
fn leftover_temporary_snapshots_are_ignored_and_cleaned() {
    let dir = tempfile::tempdir().unwrap();
    drop(Storage::open(dir.path(), dir.path(), opts()).unwrap());
    let tmp = version_dir(dir.path()).join(".snapshot.9.123.0.tmp");
    std::fs::write(&tmp, b"half a snapshot").unwrap();
    let (_, r) = Storage::open(dir.path(), dir.path(), opts()).unwrap();
    assert_eq!(r.snapshot.unwrap().last_zxid, 0);
    assert!(!tmp.exists());
}
