//! [`DatabaseBuilder`]: a [`ZkDatabase`] built node by node while a snapshot file is read
//! (see [`crate::storage::snapshot_reader`]), so a restart holds the tree plus a read
//! window, never the file or a list of every decoded node besides the tree.
//!
//! [`ZkDatabase::from_image`] (a whole image in memory, as a received SNAP gives it) goes
//! through the same builder, so both paths intern ACLs alike, insert children in file order
//! (which decides the order `getChildren` lists them in) and add the same system nodes.

use std::collections::BTreeMap;
use std::sync::Arc;

use zk_proto::persistence::DataNodeRecord;
use zk_proto::Acl;

use crate::state::database::ZkDatabase;
use crate::state::tree::DataTree;
use crate::storage::snapshot_reader::{SnapshotSink, NOT_IN_PRE_ORDER};

/// Builds a database from a snapshot's parts in file order: [`SnapshotSink::begin`] with
/// the sessions and ACL cache, [`Self::insert`] for each node, then [`Self::finish`].
#[derive(Debug)]
pub struct DatabaseBuilder {
    tree: DataTree,
    sessions: BTreeMap<i64, i32>,
    /// The snapshot's ACL cache: index -> shared list.
    acls: BTreeMap<i64, Arc<Vec<Acl>>>,
    /// What index -1 and unknown indexes mean (Apache's open ACL).
    open: Option<Arc<Vec<Acl>>>,
}

impl Default for DatabaseBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl DatabaseBuilder {
    /// An empty builder (no root yet).
    pub fn new() -> Self {
        DatabaseBuilder {
            tree: DataTree::restoring(),
            sessions: BTreeMap::new(),
            acls: BTreeMap::new(),
            open: None,
        }
    }

    /// Sessions `(id, timeout)` and the ACL cache `(index, list)`; before any node.
    pub fn begin(&mut self, sessions: Vec<(i64, i32)>, acls: Vec<(i64, Vec<Acl>)>) {
        self.sessions.extend(sessions);
        for (index, list) in acls {
            let shared = self.tree.intern_acl(list);
            self.acls.insert(index, shared);
        }
        self.open = Some(self.tree.intern_acl(Acl::open_unsafe()));
    }

    /// Adds one node (root as `""`); false, adding nothing, when it is out of pre-order
    /// (see [`DataTree::restore_node`]).
    pub fn insert(&mut self, path: &str, node: &DataNodeRecord) -> bool {
        let acl = match self.acls.get(&node.acl) {
            Some(a) => a.clone(),
            None => self.open_acl(),
        };
        self.tree
            .restore_node(path, node.data.as_deref(), acl, node.stat.clone())
    }

    fn open_acl(&mut self) -> Arc<Vec<Acl>> {
        if let Some(open) = &self.open {
            return open.clone();
        }
        let open = self.tree.intern_acl(Acl::open_unsafe());
        self.open = Some(open.clone());
        open
    }

    /// The database as of `last_zxid`, with the system nodes the snapshot lacked.
    pub fn finish(mut self, last_zxid: i64) -> ZkDatabase {
        self.tree.link_restored();
        ZkDatabase {
            tree: self.tree,
            sessions: self.sessions,
            last_zxid,
        }
    }
}

impl SnapshotSink for DatabaseBuilder {
    type Output = ZkDatabase;

    fn begin(&mut self, sessions: Vec<(i64, i32)>, acls: Vec<(i64, Vec<Acl>)>) {
        DatabaseBuilder::begin(self, sessions, acls);
    }

    fn node(&mut self, path: &str, node: DataNodeRecord) -> Result<(), String> {
        if self.insert(path, &node) {
            Ok(())
        } else {
            Err(NOT_IN_PRE_ORDER.to_string())
        }
    }

    fn finish(self, last_zxid: i64) -> Result<ZkDatabase, String> {
        Ok(DatabaseBuilder::finish(self, last_zxid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ServerError;
    use crate::state::database::tests::{canon, Gen};
    use crate::storage::adler32::adler32;
    use crate::storage::disk::{from_snapshot, to_snapshot, Recovered};
    use crate::storage::snapshot::read_snapshot;
    use crate::storage::snapshot_reader::{load_snapshot, read_snapshot_from, ReadError};
    use crate::storage::{SnapshotData, Storage, StorageOptions};
    use bytes::{Bytes, BytesMut};
    use rand::Rng;
    use std::path::{Path, PathBuf};
    use zk_proto::persistence::{FileHeader, FILE_VERSION, SNAP_MAGIC};
    use zk_proto::txn::{CreateContainerTxn, CreateTtlTxn, Txn};
    use zk_proto::{JuteWrite, OpCode, Record, StatPersisted};

    /// Everything observable about two databases is the same, including the orders
    /// Apache's hash sets would iterate in (children, a session's ephemerals).
    fn assert_same(a: &ZkDatabase, b: &ZkDatabase) {
        assert_eq!(a.image(), b.image());
        assert_eq!(a.last_zxid(), b.last_zxid());
        assert_eq!(a.sessions(), b.sessions());
        assert_eq!(a.tree.node_count(), b.tree.node_count());
        assert_eq!(a.tree.containers(), b.tree.containers());
        assert_eq!(a.tree.ttls(), b.tree.ttls());
        let eph = a.tree.ephemerals_by_session();
        assert_eq!(eph, b.tree.ephemerals_by_session());
        for s in eph.keys() {
            assert_eq!(a.tree.ephemerals(*s), b.tree.ephemerals(*s));
        }
        for (p, n) in a.tree.iter() {
            let m = b.tree.get(&p).unwrap_or_else(|| panic!("{p} missing"));
            assert_eq!(n.client_stat(), m.client_stat(), "{p}");
            assert_eq!(n.stat, m.stat, "{p}");
            assert_eq!(n.data(), m.data(), "{p}");
            assert_eq!(n.acl, m.acl, "{p}");
            assert_eq!(n.child_capacity(), m.child_capacity(), "{p}");
            assert_eq!(
                a.tree.children_java_order(n),
                b.tree.children_java_order(m),
                "{p}"
            );
        }
    }

    /// A random database with persistent, ephemeral, container and TTL nodes.
    fn random_db(seed: u64, ops: usize) -> Gen {
        let mut g = Gen::new(seed);
        for i in 0..ops {
            g.random_op();
            if i % 37 == 0 {
                let parent = g.paths[g.rng.gen_range(0..g.paths.len())].clone();
                if g.db
                    .tree
                    .get(&parent)
                    .is_some_and(|n| n.stat.ephemeral_owner == 0)
                {
                    let cv = g.db.tree.get(&parent).map_or(0, |n| n.stat.cversion) + 1;
                    let path = crate::state::tree::path::join(&parent, &format!("c{i}"));
                    let txn = if i % 2 == 0 {
                        Txn::CreateContainer(CreateContainerTxn {
                            path: path.clone(),
                            data: Some(Bytes::from_static(b"c")),
                            acl: Acl::open_unsafe(),
                            parent_c_version: cv,
                        })
                    } else {
                        Txn::CreateTtl(CreateTtlTxn {
                            path: path.clone(),
                            data: None,
                            acl: Acl::read_unsafe(),
                            parent_c_version: cv,
                            ttl: 5000 + i as i64,
                        })
                    };
                    let op = match txn {
                        Txn::CreateContainer(_) => OpCode::CreateContainer,
                        _ => OpCode::CreateTtl,
                    };
                    g.apply(0, op, txn);
                    g.paths.push(path);
                }
            }
        }
        g
    }

    fn write_file(dir: &Path, snap: &SnapshotData) -> PathBuf {
        let path = dir.join(crate::storage::file_names::snapshot_name(snap.last_zxid));
        let mut bytes = Vec::new();
        snap.write_to(&mut bytes).unwrap();
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn stream(path: &Path, zxid: i64) -> crate::error::Result<ZkDatabase> {
        load_snapshot(path, zxid, DatabaseBuilder::new())
    }

    fn corrupt_reason(r: crate::error::Result<ZkDatabase>, path: &Path) -> String {
        match r {
            Err(ServerError::Corrupt { file, reason }) => {
                assert_eq!(file, path);
                reason
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }

    #[test]
    fn streamed_load_equals_from_image_and_after_replay() {
        let dir = tempfile::tempdir().unwrap();
        for seed in 0..6u64 {
            let mut g = random_db(seed, 500);
            let img = g.db.image();
            let path = write_file(dir.path(), &to_snapshot(&img));
            let streamed = stream(&path, img.last_zxid).unwrap();
            let whole = ZkDatabase::from_image(&from_snapshot(
                read_snapshot(&path, img.last_zxid).unwrap(),
            ));
            assert_same(&streamed, &whole);
            assert_same(&streamed, &ZkDatabase::from_image(&img));
            assert_eq!(canon(&streamed), canon(&g.db), "seed {seed}");
            // The same txns on top of both give the same state again.
            let from = g.log.len();
            for _ in 0..200 {
                g.random_op();
            }
            let txns = g.log[from..].to_vec();
            let a = Recovered {
                database: streamed,
                txns: txns.clone(),
            }
            .into_database();
            let b = Recovered::from_image(Some(&img), txns).into_database();
            assert_same(&a, &b);
            assert_eq!(canon(&a), canon(&g.db), "seed {seed}");
        }
    }

    #[test]
    fn fuzzy_snapshot_streamed_plus_replay_is_the_live_state() {
        let dir = tempfile::tempdir().unwrap();
        for seed in 10..14u64 {
            let mut g = random_db(seed, 400);
            let (img, from) = g.fuzzy_snapshot();
            let path = write_file(dir.path(), &to_snapshot(&img));
            let txns = g.log[from..].to_vec();
            let a = Recovered {
                database: stream(&path, img.last_zxid).unwrap(),
                txns: txns.clone(),
            }
            .into_database();
            let b = Recovered::from_image(Some(&img), txns).into_database();
            assert_same(&a, &b);
            assert_eq!(canon(&a), canon(&g.db), "seed {seed}");
        }
    }

    /// A snapshot of `nodes` in the given order (valid or not), sealed like Apache's.
    fn raw_snapshot(sessions: i32, nodes: &[(&str, DataNodeRecord)]) -> Vec<u8> {
        let mut b = BytesMut::new();
        FileHeader {
            magic: SNAP_MAGIC,
            version: FILE_VERSION,
            dbid: -1,
        }
        .write(&mut b);
        b.write_i32(sessions);
        for i in 0..sessions.clamp(0, 2) {
            b.write_i64(0x100 + i64::from(i));
            b.write_i32(30_000);
        }
        b.write_i32(1);
        b.write_i64(1);
        b.write_vec(&Acl::read_unsafe());
        for (p, n) in nodes {
            b.write_string(p);
            n.write(&mut b);
        }
        b.write_string("/");
        let sum = adler32(&b);
        b.write_i64(i64::from(sum));
        b.write_string("/");
        b.to_vec()
    }

    fn rec(data: &[u8], owner: i64) -> DataNodeRecord {
        DataNodeRecord {
            data: Some(Bytes::copy_from_slice(data)),
            acl: 1,
            stat: StatPersisted {
                ephemeral_owner: owner,
                czxid: 7,
                ..StatPersisted::default()
            },
        }
    }

    #[test]
    fn a_hand_made_snapshot_loads_like_from_image() {
        let nodes = [
            ("", rec(b"", 0)),
            ("/a", rec(b"x", 0)),
            ("/a/e", rec(b"y", 0x100)),
            ("/b", rec(b"", i64::MIN)),
            ("/a/e2", rec(b"z", 0x101)),
            ("/a", rec(b"again", 0)), // listed twice: the later copy wins
        ];
        let bytes = raw_snapshot(2, &nodes);
        let len = bytes.len() as u64;
        let db = read_snapshot_from(&bytes[..], len, 9, DatabaseBuilder::new()).unwrap();
        let img = crate::state::database::DatabaseImage {
            last_zxid: 9,
            sessions: vec![(0x100, 30_000), (0x101, 30_000)],
            acls: vec![(1, Acl::read_unsafe())],
            nodes: nodes
                .iter()
                .map(|(p, r)| (p.to_string(), r.clone()))
                .collect(),
        };
        assert_same(&db, &ZkDatabase::from_image(&img));
        assert_eq!(db.tree.get("/a").unwrap().data(), Some(&b"again"[..]));
        assert_eq!(db.tree.ephemerals(0x101), vec!["/a/e2".to_string()]);
        assert!(db.tree.containers().contains("/b"));
        assert!(
            db.tree.get("/zookeeper/config").is_some(),
            "system nodes added"
        );
    }

    #[test]
    fn nodes_out_of_pre_order_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cases: [&[&str]; 6] = [
            &["", "/a/b", "/a"],
            &["/a", ""],
            &["", "/a", ""],
            &["", "//a"],
            &["", "/a", "/a/"],
            &["", "x"],
        ];
        for (i, paths) in cases.iter().enumerate() {
            let nodes: Vec<(&str, DataNodeRecord)> =
                paths.iter().map(|p| (*p, rec(b"d", 0))).collect();
            let path = dir.path().join(format!("snapshot.{i}"));
            std::fs::write(&path, raw_snapshot(0, &nodes)).unwrap();
            let reason = corrupt_reason(stream(&path, 1), &path);
            assert!(
                reason.contains("is not in pre-order"),
                "{paths:?}: {reason}"
            );
            // The whole-file reader refuses it too, with the same words.
            let whole = read_snapshot(&path, 1).unwrap_err().to_string();
            assert!(whole.contains(&reason), "{whole} vs {reason}");
        }
    }

    #[test]
    fn damage_and_truncation_are_corrupt_errors() {
        let dir = tempfile::tempdir().unwrap();
        // Big enough for several read chunks, with one node larger than a chunk.
        let mut g = random_db(3, 300);
        let big = vec![0x5au8; 900_000];
        g.db.tree
            .set_data(
                "/zookeeper",
                Some(Bytes::from(big)),
                1,
                1,
                1,
                &mut Vec::new(),
            )
            .unwrap();
        let snap = to_snapshot(&g.db.image());
        let path = write_file(dir.path(), &snap);
        let good = std::fs::read(&path).unwrap();
        assert!(good.len() > 3 * 256 * 1024);
        assert_same(
            &stream(&path, snap.last_zxid).unwrap(),
            &ZkDatabase::from_image(&from_snapshot(snap.clone())),
        );

        // A flipped byte in node data: only the seal notices.
        let at = good.len() / 2;
        let mut bad = good.clone();
        bad[at] ^= 0x01;
        std::fs::write(&path, &bad).unwrap();
        let reason = corrupt_reason(stream(&path, snap.last_zxid), &path);
        assert!(reason.contains("checksum mismatch"), "{reason}");

        // Cut anywhere: refused, never a panic.
        for len in [
            0,
            3,
            17,
            40,
            256 * 1024 + 3,
            good.len() / 2,
            good.len() - 14,
            good.len() - 1,
        ] {
            std::fs::write(&path, &good[..len]).unwrap();
            corrupt_reason(stream(&path, snap.last_zxid), &path);
        }
        // Bytes after the second seal.
        let mut longer = good.clone();
        longer.extend_from_slice(b"xyz");
        std::fs::write(&path, &longer).unwrap();
        let reason = corrupt_reason(stream(&path, snap.last_zxid), &path);
        assert_eq!(reason, "3 trailing bytes");
    }

    #[test]
    fn counts_and_lengths_beyond_the_file_are_refused_before_allocating() {
        // A session count no file this size can hold.
        let bytes = raw_snapshot(i32::MAX, &[("", rec(b"", 0))]);
        let r = read_snapshot_from(&bytes[..], bytes.len() as u64, 1, DatabaseBuilder::new());
        match r {
            Err(ReadError::Corrupt(reason)) => {
                assert!(reason.contains("exceeds the bytes left"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        // A node whose data length claims 1 GiB.
        let mut bytes = raw_snapshot(0, &[("", rec(b"", 0)), ("/a", rec(b"abcd", 0))]);
        let needle = [0, 0, 0, 4, b'a', b'b', b'c', b'd'];
        let at = bytes.windows(8).position(|w| w == needle).unwrap();
        bytes[at..at + 4].copy_from_slice(&(1i32 << 30).to_be_bytes());
        let r = read_snapshot_from(&bytes[..], bytes.len() as u64, 1, DatabaseBuilder::new());
        match r {
            Err(ReadError::Corrupt(reason)) => assert!(reason.contains("exceeds"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }

    /// Hands out at most a few bytes per read, like a slow pipe.
    struct Trickle<'a>(&'a [u8], usize);

    impl std::io::Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.1 = self.1 % 7 + 1;
            let n = self.1.min(buf.len()).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn short_reads_and_a_shrunk_file() {
        let g = random_db(5, 300);
        let snap = to_snapshot(&g.db.image());
        let mut bytes = Vec::new();
        snap.write_to(&mut bytes).unwrap();
        let len = bytes.len() as u64;
        let db = read_snapshot_from(
            Trickle(&bytes, 0),
            len,
            snap.last_zxid,
            DatabaseBuilder::new(),
        )
        .unwrap();
        assert_same(&db, &ZkDatabase::from_image(&from_snapshot(snap.clone())));
        // Shorter than its announced size (the file shrank while read).
        let r = read_snapshot_from(
            &bytes[..bytes.len() - 100],
            len,
            snap.last_zxid,
            DatabaseBuilder::new(),
        );
        assert!(matches!(r, Err(ReadError::Corrupt(_))), "{r:?}");
    }

    #[test]
    fn a_corrupt_newest_snapshot_falls_back_to_the_older_one() {
        let dir = tempfile::tempdir().unwrap();
        let v2 = dir.path().join("version-2");
        std::fs::create_dir_all(&v2).unwrap();
        let old = random_db(7, 200);
        let mut old_snap = to_snapshot(&old.db.image());
        old_snap.last_zxid = 0x10;
        write_file(&v2, &old_snap);
        let new = random_db(8, 200);
        let mut new_snap = to_snapshot(&new.db.image());
        new_snap.last_zxid = 0x20;
        let newest = write_file(&v2, &new_snap);
        let mut bytes = std::fs::read(&newest).unwrap();
        let n = bytes.len();
        bytes[n / 3] ^= 0x10;
        std::fs::write(&newest, bytes).unwrap();
        let opts = StorageOptions {
            prealloc_size: 0,
            snap_retain_count: 3,
        };
        let (_s, r) =
            Storage::open_with(dir.path(), dir.path(), opts, DatabaseBuilder::new).unwrap();
        let db = r.snapshot.unwrap();
        assert_eq!(db.last_zxid(), 0x10);
        assert_same(&db, &ZkDatabase::from_image(&from_snapshot(old_snap)));
    }

    #[test]
    fn a_fresh_data_dir_starts_from_the_initial_tree() {
        let dir = tempfile::tempdir().unwrap();
        let (_s, r) = Storage::open_with(
            dir.path(),
            dir.path(),
            StorageOptions::default(),
            DatabaseBuilder::new,
        )
        .unwrap();
        let db = r.snapshot.unwrap();
        assert_same(
            &db,
            &ZkDatabase::from_image(&from_snapshot(SnapshotData::initial())),
        );
        assert_same(&db, &ZkDatabase::new());
    }

    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                copy_dir(&e.path(), &to.join(e.file_name()));
            } else {
                std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
            }
        }
    }

    #[test]
    fn replaying_while_reading_the_log_equals_replaying_after() {
        let opts = StorageOptions {
            prealloc_size: 0,
            snap_retain_count: 3,
        };
        for (seed, torn) in [(21u64, false), (22, true)] {
            let dir = tempfile::tempdir().unwrap();
            let (mut s, _) = Storage::open(dir.path(), dir.path(), opts.clone()).unwrap();
            let mut g = random_db(seed, 300);
            s.append(&g.log).unwrap();
            s.save_snapshot(&to_snapshot(&g.db.image())).unwrap();
            let from = g.log.len();
            for _ in 0..300 {
                g.random_op();
            }
            s.append(&g.log[from..from + 150]).unwrap();
            s.roll_log();
            s.append(&g.log[from + 150..]).unwrap();
            drop(s);
            if torn {
                // A torn write at the end of the newest log: both ways cut it off alike.
                let mut logs: Vec<PathBuf> = std::fs::read_dir(dir.path().join("version-2"))
                    .unwrap()
                    .map(|e| e.unwrap().path())
                    .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with("log."))
                    .collect();
                logs.sort();
                let newest = logs.last().unwrap();
                let mut f = std::fs::OpenOptions::new()
                    .append(true)
                    .open(newest)
                    .unwrap();
                std::io::Write::write_all(&mut f, &[0, 0, 0, 0, 0, 0, 0, 9, 0, 0]).unwrap();
            }
            let copy = tempfile::tempdir().unwrap();
            copy_dir(dir.path(), copy.path());

            let (_s, r) = Storage::open_replaying(
                dir.path(),
                dir.path(),
                opts.clone(),
                DatabaseBuilder::new,
                |db: &mut ZkDatabase, t| {
                    if t.header.zxid > db.last_zxid() {
                        db.apply(&t);
                    }
                },
            )
            .unwrap();
            assert!(r.txns.is_empty());
            let streamed = r.snapshot.unwrap();

            let (_s, r) =
                Storage::open_with(copy.path(), copy.path(), opts.clone(), DatabaseBuilder::new)
                    .unwrap();
            assert_eq!(r.txns.len(), g.log.len() - from);
            let after = Recovered {
                database: r.snapshot.unwrap(),
                txns: r.txns,
            }
            .into_database();
            assert_same(&streamed, &after);
            assert_eq!(canon(&streamed), canon(&g.db), "seed {seed}");
            for d in [dir.path(), copy.path()] {
                let set_aside = std::fs::read_dir(d.join("version-2"))
                    .unwrap()
                    .filter(|e| {
                        let name = e.as_ref().unwrap().file_name();
                        name.to_str().unwrap().starts_with("corrupt.")
                    })
                    .count();
                assert_eq!(set_aside, usize::from(torn), "the torn tail was cut off");
            }
        }
    }
}
