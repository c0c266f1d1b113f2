//! Data dirs move both ways between Apache ZooKeeper 3.8 and zk-server's `Storage`. Needs
//! Java and the Debian `zookeeper` package; fails (does not skip) without them.

// The txn builders and the replaying tree are shared with zk-server's own persistence tests
// (zk-server cannot dev-depend on this crate), so they are included from there, not copied.
#[path = "../../zk-server/tests/persistence_support/mod.rs"]
mod persistence_support;

use std::collections::BTreeMap;

use bytes::BytesMut;
use persistence_support::tree::Tree;
use persistence_support::*;
use tests::apache::{self, ApacheServer};
use zk_proto::persistence::{FileHeader, FILE_VERSION, TXNLOG_MAGIC};
use zk_proto::txn::{Txn, TxnEntry};
use zk_proto::{Acl, OpCode, Perms, Record};
use zk_server::storage::file_names::{snapshot_name, version_dir};
use zk_server::storage::snapshot::read_snapshot;
use zk_server::storage::txn_log;
use zk_server::storage::{SnapshotData, Storage, StorageOptions};

fn small() -> StorageOptions {
    StorageOptions {
        prealloc_size: 64 * 1024,
        snap_retain_count: 3,
    }
}

fn acl_of(snap: &SnapshotData, index: i64) -> Vec<Acl> {
    if index == -1 {
        return Acl::open_unsafe();
    }
    snap.acls
        .iter()
        .find(|(i, _)| *i == index)
        .map(|(_, a)| a.clone())
        .expect("acl in cache")
}

/// Apache writes, we read: its snapshots (several, via a tiny snapCount) and logs decode,
/// and replaying them gives exactly the nodes the CLI created.
#[test]
fn storage_reads_what_apache_wrote() {
    apache::installed().expect("Apache ZooKeeper 3.8 installed");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let mut zk = ApacheServer::start_on(
        &data,
        &["-Dzookeeper.snapCount=4", "-Dzookeeper.preAllocSize=64"],
    )
    .expect("apache starts");
    let out = zk.cli(&[
        "create /x hello",
        "create /x/y world",
        "create /z",
        "set /x again",
        "create -e /eph e",
        "create -s /seq- s",
        "create /ro readonly world:anyone:r",
        "create /x/y/deep 12345",
        "delete /z",
    ]);
    assert!(out.contains("Created /x/y/deep"), "cli output:\n{out}");
    zk.stop();

    let v2 = version_dir(&data);
    let names = file_names(&v2);
    assert!(
        names.iter().filter(|n| n.starts_with("snapshot.")).count() >= 2,
        "snapCount=4 should force snapshots: {names:?}"
    );
    assert!(names.iter().any(|n| n.starts_with("log.")), "{names:?}");

    // Apache's own initial snapshot is exactly what SnapshotData::initial() describes.
    let apache0 = read_snapshot(&v2.join(snapshot_name(0)), 0).expect("Apache's snapshot.0");
    let ours0 = SnapshotData::initial();
    let by_path = |s: &SnapshotData| {
        s.nodes
            .iter()
            .map(|(p, n)| {
                (
                    p.clone(),
                    (n.data.clone(), acl_of(s, n.acl), n.stat.clone()),
                )
            })
            .collect::<BTreeMap<_, _>>()
    };
    assert_eq!(by_path(&apache0), by_path(&ours0));
    assert!(apache0.sessions.is_empty());
    // Byte for byte, seals and empty digest included.
    let mut ours_bytes = Vec::new();
    ours0.write_to(&mut ours_bytes).unwrap();
    assert_eq!(
        std::fs::read(v2.join(snapshot_name(0))).unwrap(),
        ours_bytes,
        "snapshot.0 differs from Apache's"
    );

    // Every snapshot Apache wrote decodes and passes both seals.
    for n in names.iter().filter(|n| n.starts_with("snapshot.")) {
        let z = i64::from_str_radix(&n["snapshot.".len()..], 16).unwrap();
        read_snapshot(&v2.join(n), z).unwrap_or_else(|e| panic!("{n}: {e}"));
    }

    // Re-encoding Apache's log entries gives back its exact bytes, padding size included.
    for n in names.iter().filter(|n| n.starts_with("log.")) {
        let raw = std::fs::read(v2.join(n)).unwrap();
        assert_eq!(raw.len(), 16 + 64 * 1024, "{n}: preallocated like Apache");
        let scan = txn_log::scan(&v2.join(n), true).unwrap();
        assert!(scan.damage.is_none(), "{n}: {:?}", scan.damage);
        let mut ours = BytesMut::new();
        FileHeader {
            magic: TXNLOG_MAGIC,
            version: FILE_VERSION,
            dbid: 0,
        }
        .write(&mut ours);
        for t in &scan.entries {
            txn_log::encode_entry(&t.entry, &mut ours).unwrap();
        }
        assert_eq!(&raw[..ours.len()], &ours[..], "{n}");
        assert!(raw[ours.len()..].iter().all(|&b| b == 0));
    }

    let (storage, restored) = Storage::open(&data, &data, small()).expect("open Apache's dir");
    let snap = restored.snapshot.expect("a snapshot");
    assert!(snap.last_zxid > 0, "newest snapshot is not snapshot.0");
    let mut tree = Tree::from_snapshot(&snap);
    tree.replay(&restored.txns);
    assert_eq!(tree.last_zxid, storage.last_zxid());
    // Apache appends a TxnDigest to every txn (digest enabled by default).
    let all = storage.txns_after(0).unwrap();
    assert!(!all.is_empty() && all.iter().all(|e| e.digest.is_some()));
    assert_eq!(zxids(&all), (1..=storage.last_zxid()).collect::<Vec<_>>());

    assert_eq!(tree.data("/x").as_deref(), Some("again"));
    assert_eq!(tree.nodes["/x"].stat.version, 1);
    assert_eq!(tree.data("/x/y").as_deref(), Some("world"));
    assert_eq!(tree.data("/x/y/deep").as_deref(), Some("12345"));
    assert!(tree.data("/z").is_none(), "deleted");
    assert!(
        tree.data("/eph").is_none(),
        "ephemeral removed by closeSession"
    );
    let seq: Vec<_> = tree
        .nodes
        .keys()
        .filter(|p| p.starts_with("/seq-"))
        .collect();
    assert_eq!(seq.len(), 1);
    assert_eq!(seq[0].len(), "/seq-".len() + 10);
    assert_eq!(
        tree.nodes["/ro"].acl,
        vec![Acl::new(Perms::READ, "world", "anyone")]
    );
    assert!(tree.sessions.is_empty(), "the CLI session was closed");
}

/// We write, Apache reads: a snapshot taken mid-way plus logs before and after it (with a
/// multi, a delete and a session), then Apache serves exactly that data. Afterwards the dir
/// Apache has added to opens with Storage again.
#[test]
fn apache_reads_what_storage_wrote() {
    apache::installed().expect("Apache ZooKeeper 3.8 installed");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (mut storage, restored) = Storage::open(&data, &data, small()).unwrap();
    let mut tree = Tree::from_snapshot(&restored.snapshot.unwrap());

    let first = vec![
        create_session(1, 30_000),
        create(2, "/x", "from-rust", -1),
        create(3, "/x/child", "c", -1),
        set_data(4, "/x", "v2-from-rust", 1),
    ];
    storage.append(&first[..1]).unwrap();
    storage.append(&first[1..]).unwrap();
    tree.replay(&first);
    storage.save_snapshot(&tree.to_snapshot()).unwrap();

    let multi = entry(
        7,
        OpCode::Multi,
        Txn::Multi(vec![
            (OpCode::Create, create(0, "/m1", "multi-created", -1).txn),
            (OpCode::SetData, set_data(0, "/after", "after-multi", 1).txn),
        ]),
    );
    let mut secret = create(8, "/secret", "s3", -1);
    if let Txn::Create(c) = &mut secret.txn {
        c.acl = vec![Acl::new(Perms::READ, "world", "anyone")];
    }
    let second: Vec<TxnEntry> = vec![
        create(5, "/after", "tail", -1),
        delete(6, "/x/child"),
        multi,
        secret,
        close_session(9, &[]),
    ];
    storage.append(&second).unwrap();
    tree.replay(&second);
    drop(storage);
    let names = file_names(&version_dir(&data));
    assert_eq!(
        names,
        vec!["log.1", "log.5", "snapshot.0", "snapshot.4"],
        "layout Apache expects"
    );

    let mut zk = ApacheServer::start_on(&data, &[]).expect("apache starts");
    let out = zk.cli(&[
        "get /x",
        "get /after",
        "get /m1",
        "get /secret",
        "getAcl /secret",
        "ls /x",
        "stat /x",
    ]);
    let log = zk.log_text();
    zk.stop();
    eprintln!("CLI output:\n{out}");
    for want in [
        "v2-from-rust",
        "after-multi",
        "multi-created",
        "s3",
        "'world,'anyone\n: r",
        "dataVersion = 1",
        "[]",
    ] {
        assert!(
            out.contains(want),
            "missing {want:?} in CLI output:\n{out}\nserver:\n{log}"
        );
    }
    assert!(
        !out.contains("tail"),
        "/after was overwritten by the multi:\n{out}"
    );
    assert!(!log.contains("CRC"), "{log}");

    // Apache has snapshotted on startup; we read its dir back.
    let (storage, restored) = Storage::open(&data, &data, small()).unwrap();
    let mut back = Tree::from_snapshot(&restored.snapshot.unwrap());
    back.replay(&restored.txns);
    assert!(storage.last_zxid() >= 9);
    for p in ["/x", "/after", "/m1", "/secret"] {
        assert_eq!(back.data(p), tree.data(p), "{p}");
    }
    assert!(back.data("/x/child").is_none());
}

/// After we repair a torn tail (cut the log, keep the bad bytes in `corrupt.log.*`), Apache
/// starts on the dir, ignores the set-aside file and serves the surviving txns.
#[test]
fn apache_accepts_a_dir_after_torn_tail_repair() {
    apache::installed().expect("Apache ZooKeeper 3.8 installed");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (mut storage, _) = Storage::open(&data, &data, small()).unwrap();
    storage
        .append(&[create(1, "/a", "kept-1", -1), create(2, "/b", "kept-2", -1)])
        .unwrap();
    storage.append(&[create(3, "/c", "torn-away", -1)]).unwrap();
    drop(storage);
    let log = version_dir(&data).join("log.1");
    let end = txn_log::scan(&log, true).unwrap().valid_end;
    let f = std::fs::OpenOptions::new().write(true).open(&log).unwrap();
    f.set_len(end - 3).unwrap();
    drop(f);

    let (mut storage, restored) = Storage::open(&data, &data, small()).unwrap();
    assert_eq!(zxids(&restored.txns), vec![1, 2]);
    storage.append(&[create(3, "/c", "rewritten", -1)]).unwrap();
    drop(storage);
    assert!(file_names(&version_dir(&data))
        .iter()
        .any(|n| n.starts_with("corrupt.log.1.")));

    let mut zk = ApacheServer::start_on(&data, &[]).expect("apache starts");
    let out = zk.cli(&["get /a", "get /b", "get /c"]);
    let log_text = zk.log_text();
    zk.stop();
    for want in ["kept-1", "kept-2", "rewritten"] {
        assert!(out.contains(want), "missing {want:?}:\n{out}\n{log_text}");
    }
    assert!(!out.contains("torn-away"), "{out}");
}
