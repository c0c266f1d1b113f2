//! The replicated state: data tree, session table and the last applied zxid.
//!
//! Changed only by [`ZkDatabase::apply`] (see [`crate::state::apply`]), so a standalone server, a
//! follower applying the leader's commits and a restart replaying the txn log all reach the
//! same state from the same txns.

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use zk_proto::persistence::DataNodeRecord;
use zk_proto::{Acl, JuteReader, Record, StatPersisted};

use crate::state::tree::DataTree;
use crate::storage::snapshot_walk::SnapshotWalk;

/// Data tree plus sessions.
#[derive(Debug, Clone, Default)]
pub struct ZkDatabase {
    /// The znodes.
    pub tree: DataTree,
    pub(crate) sessions: BTreeMap<i64, i32>,
    pub(crate) last_zxid: i64,
}

/// A point-in-time copy of the database in the shape snapshots store: sessions, an ACL
/// cache and nodes referring to it by index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DatabaseImage {
    /// Last zxid applied.
    pub last_zxid: i64,
    /// `(session id, timeout)`.
    pub sessions: Vec<(i64, i32)>,
    /// ACL cache: index -> list.
    pub acls: Vec<(i64, Vec<Acl>)>,
    /// `(path, node)`; Apache writes the root as `""`.
    pub nodes: Vec<(String, DataNodeRecord)>,
}

/// A snapshot being taken: what was captured at its start plus the walk writing the nodes.
#[derive(Debug)]
pub struct FuzzySnapshot {
    /// Zxid of the last txn applied when the snapshot started; names the file.
    pub last_zxid: i64,
    /// Sessions at the start, `(id, timeout)`.
    pub sessions: Vec<(i64, i32)>,
    /// The node walk.
    pub walk: SnapshotWalk,
}

/// Decodes a run of snapshot node records (`ustring path; DataNode`), as
/// [`SnapshotWalk::step`] writes them.
pub fn decode_node_records(
    buf: Bytes,
) -> std::result::Result<Vec<(String, DataNodeRecord)>, zk_proto::ProtoError> {
    let mut r = JuteReader::new(buf);
    let mut v = Vec::new();
    while !r.is_empty() {
        let p = r.read_string()?;
        let mut rec = DataNodeRecord::read(&mut r)?;
        rec.data = rec.data.map(|d| Bytes::copy_from_slice(&d));
        v.push((p, rec));
    }
    Ok(v)
}

impl ZkDatabase {
    /// An empty database (system nodes only).
    pub fn new() -> Self {
        ZkDatabase {
            tree: DataTree::new(),
            sessions: BTreeMap::new(),
            last_zxid: 0,
        }
    }

    /// Zxid of the last applied txn.
    pub fn last_zxid(&self) -> i64 {
        self.last_zxid
    }

    /// Live sessions and their negotiated timeouts.
    pub fn sessions(&self) -> &BTreeMap<i64, i32> {
        &self.sessions
    }

    /// Copies the state out for a snapshot, all at once (tests and the in-memory store; the
    /// server streams snapshots with [`Self::begin_snapshot`] instead).
    pub fn image(&self) -> DatabaseImage {
        let mut snap = self.begin_snapshot();
        let mut buf = BytesMut::new();
        snap.walk.step(&self.tree, &mut buf, usize::MAX);
        let nodes = decode_node_records(buf.freeze()).unwrap_or_default();
        DatabaseImage {
            last_zxid: snap.last_zxid,
            sessions: snap.sessions,
            acls: snap.walk.acl_table(),
            nodes,
        }
    }

    /// Starts a fuzzy snapshot as of now: the zxid and sessions are taken here, the nodes a
    /// slice at a time by [`SnapshotWalk::step`] while txns keep being applied. Restoring it
    /// means replaying the log from `last_zxid` (see [`crate::storage::snapshot_walk`]).
    pub fn begin_snapshot(&self) -> FuzzySnapshot {
        FuzzySnapshot {
            last_zxid: self.last_zxid,
            sessions: self.sessions.iter().map(|(k, v)| (*k, *v)).collect(),
            walk: SnapshotWalk::new(&self.tree),
        }
    }

    /// [`Self::begin_snapshot`] for a snapshot file: the ACL table is fixed now, as the
    /// file's header holds it before the nodes (see [`SnapshotWalk::for_file`]).
    pub fn begin_file_snapshot(&self) -> FuzzySnapshot {
        FuzzySnapshot {
            last_zxid: self.last_zxid,
            sessions: self.sessions.iter().map(|(k, v)| (*k, *v)).collect(),
            walk: SnapshotWalk::for_file(&self.tree, self.last_zxid),
        }
    }

    /// Rebuilds a database from a snapshot image (txns logged after it are applied next).
    pub fn from_image(img: &DatabaseImage) -> Self {
        let mut b = crate::storage::database_builder::DatabaseBuilder::new();
        b.begin(img.sessions.clone(), img.acls.clone());
        for (p, rec) in &img.nodes {
            // Out of order (a parent missing): dropped, as a corrupt snapshot must not
            // leave orphans.
            b.insert(p, rec);
        }
        b.finish(img.last_zxid)
    }

    /// Persisted stat of a node (tests and tools).
    pub fn stat_persisted(&self, path: &str) -> Option<&StatPersisted> {
        self.tree.get(path).map(|n| &n.stat)
    }
}

/// The random workload of the snapshot tests (also used by `database_builder`'s).
#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::storage::disk::Recovered;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use zk_proto::txn::{
        CloseSessionTxn, CreateSessionTxn, CreateTxn, DeleteTxn, SetAclTxn, SetDataTxn, Txn,
        TxnEntry, TxnHeader,
    };
    use zk_proto::OpCode;

    /// The state in a form independent of child order and ACL numbering: a restored set
    /// iterates in its own order (as in Apache, a fresh set's table may be smaller).
    pub(crate) type Canon = (i64, Vec<(i64, i32)>, Vec<(String, String)>);

    pub(crate) fn canon(db: &ZkDatabase) -> Canon {
        let img = db.image();
        let acls: BTreeMap<i64, Vec<Acl>> = img.acls.iter().cloned().collect();
        let mut nodes: Vec<(String, String)> = img
            .nodes
            .iter()
            .map(|(p, r)| {
                let acl = acls.get(&r.acl).cloned().unwrap_or_default();
                (p.clone(), format!("{:?} {:?} {:?}", r.data, acl, r.stat))
            })
            .collect();
        nodes.sort();
        (img.last_zxid, img.sessions, nodes)
    }

    /// A database changed by random txns, with the log of those txns.
    pub(crate) struct Gen {
        pub(crate) db: ZkDatabase,
        pub(crate) rng: StdRng,
        pub(crate) zxid: i64,
        pub(crate) log: Vec<TxnEntry>,
        pub(crate) paths: Vec<String>,
    }

    impl Gen {
        /// Takes a fuzzy snapshot a small slice at a time with random writes in between (as
        /// the server interleaves them); gives its image and the log position it started at.
        pub(crate) fn fuzzy_snapshot(&mut self) -> (DatabaseImage, usize) {
            let (img, from, _) = self.fuzzy_snapshot_as(false);
            (img, from)
        }

        /// [`Gen::fuzzy_snapshot`], walked as for a learner or (`file`) as for a snapshot
        /// file; also gives the walk's [`SnapshotWalk::deferred_to_replay`].
        pub(crate) fn fuzzy_snapshot_as(
            &mut self,
            file: bool,
        ) -> (DatabaseImage, usize, (u64, u64)) {
            let mut snap = if file {
                self.db.begin_file_snapshot()
            } else {
                self.db.begin_snapshot()
            };
            let from = self.log.len();
            let mut records = BytesMut::new();
            loop {
                let mut slice = BytesMut::new();
                let done = snap.walk.step(&self.db.tree, &mut slice, 300);
                records.extend_from_slice(&slice);
                if done {
                    break;
                }
                for _ in 0..self.rng.gen_range(0..8) {
                    self.random_op();
                }
            }
            let img = DatabaseImage {
                last_zxid: snap.last_zxid,
                sessions: snap.sessions,
                acls: snap.walk.acl_table(),
                nodes: decode_node_records(records.freeze()).unwrap(),
            };
            (img, from, snap.walk.deferred_to_replay())
        }

        /// A fresh database; `seed` decides every later random choice.
        pub(crate) fn new(seed: u64) -> Self {
            Gen {
                db: ZkDatabase::new(),
                rng: StdRng::seed_from_u64(seed),
                zxid: 0,
                log: Vec::new(),
                paths: vec!["/".to_string()],
            }
        }

        pub(crate) fn apply(&mut self, session: i64, ty: OpCode, txn: Txn) {
            self.zxid += 1;
            let e = TxnEntry {
                header: TxnHeader {
                    client_id: session,
                    cxid: 1,
                    zxid: self.zxid,
                    time: 1000 + self.zxid,
                    txn_type: ty,
                },
                txn,
                digest: None,
            };
            self.db.apply(&e);
            self.log.push(e);
        }

        fn create(&mut self, parent: &str, session: i64) {
            let name = format!("n{}", self.rng.gen_range(0..1_000_000));
            let p = crate::state::tree::path::join(parent, &name);
            let Some(pn) = self.db.tree.get(parent) else {
                return;
            };
            if self.db.tree.get(&p).is_some() || pn.stat.ephemeral_owner != 0 {
                return;
            }
            let cv = pn.stat.cversion + 1;
            // Now and then an ACL no node had before, so the snapshot's ACL cache grows
            // while the walk runs.
            let acl = if self.rng.gen_bool(0.2) {
                vec![Acl::new(
                    zk_proto::Perms::ALL,
                    "digest",
                    &format!("u{}:x", self.rng.gen_range(0..1000)),
                )]
            } else {
                Acl::open_unsafe()
            };
            self.apply(
                session,
                OpCode::Create,
                Txn::Create(CreateTxn {
                    path: p.clone(),
                    data: Some(Bytes::from(format!("d{}", self.zxid))),
                    acl,
                    ephemeral: session != 0,
                    parent_c_version: cv,
                }),
            );
            self.paths.push(p);
        }

        /// Creates, deletes, setData, setACL, or a session leaving ephemerals.
        pub(crate) fn random_op(&mut self) {
            let i = self.rng.gen_range(0..self.paths.len());
            let p = self.paths[i].clone();
            match self.rng.gen_range(0..6) {
                0 | 1 => self.create(&p, 0),
                2 => {
                    if self.db.tree.get(&p).is_some_and(|n| n.children.is_empty()) {
                        self.apply(0, OpCode::Delete, Txn::Delete(DeleteTxn { path: p }));
                        self.paths.swap_remove(i);
                    }
                }
                3 => {
                    let v = self.db.tree.get(&p).map_or(0, |n| n.stat.version) + 1;
                    self.apply(
                        0,
                        OpCode::SetData,
                        Txn::SetData(SetDataTxn {
                            path: p,
                            data: Some(Bytes::from(format!("s{}", self.zxid))),
                            version: v,
                        }),
                    );
                }
                4 => {
                    let v = self.db.tree.get(&p).map_or(0, |n| n.stat.aversion) + 1;
                    let acl = vec![Acl::new(
                        zk_proto::Perms::READ,
                        "digest",
                        &format!("a{}:y", self.zxid),
                    )];
                    self.apply(
                        0,
                        OpCode::SetAcl,
                        Txn::SetAcl(SetAclTxn {
                            path: p,
                            acl,
                            version: v,
                        }),
                    );
                }
                _ => {
                    // A session that leaves ephemerals, then closes.
                    let s = 0x100 + self.zxid;
                    self.apply(
                        s,
                        OpCode::CreateSession,
                        Txn::CreateSession(CreateSessionTxn { time_out: 30_000 }),
                    );
                    self.create(&p, s);
                    if self.rng.gen_bool(0.5) {
                        let paths2_delete = self.db.tree.ephemerals(s);
                        self.apply(
                            s,
                            OpCode::CloseSession,
                            Txn::CloseSession(Some(CloseSessionTxn { paths2_delete })),
                        );
                    }
                    self.paths.retain(|q| self.db.tree.get(q).is_some());
                }
            }
        }
    }

    #[test]
    fn fuzzy_snapshot_plus_log_replay_is_the_live_state() {
        fuzzy_snapshots_replay_to_the_live_state(false);
    }

    /// With the ACL table fixed at the start, nodes whose ACL changed meanwhile (written
    /// locked) and nodes created meanwhile with a new ACL (left out) come back right from
    /// the replay.
    #[test]
    fn fuzzy_file_snapshot_plus_log_replay_is_the_live_state() {
        let (locked, left) = fuzzy_snapshots_replay_to_the_live_state(true);
        assert!(
            locked > 0 && left > 0,
            "both cases met: {locked} locked, {left} left"
        );
    }

    fn fuzzy_snapshots_replay_to_the_live_state(file: bool) -> (u64, u64) {
        let (mut locked, mut left) = (0, 0);
        for seed in 0..8u64 {
            let mut g = Gen::new(seed);
            for _ in 0..400 {
                g.random_op();
            }
            let (img, from, (l, r)) = g.fuzzy_snapshot_as(file);
            locked += l;
            left += r;
            for _ in 0..20 {
                g.random_op();
            }
            // Through the file format too: Apache-readable, pre-order.
            let file = crate::storage::disk::to_snapshot(&img);
            let mut bytes = Vec::new();
            file.write_to(&mut bytes).unwrap();
            let back = crate::storage::SnapshotData::decode(img.last_zxid, bytes.into()).unwrap();
            let restored = Recovered::from_image(
                Some(&crate::storage::disk::from_snapshot(back)),
                g.log[from..].to_vec(),
            )
            .into_database();
            assert_eq!(canon(&restored), canon(&g.db), "seed {seed}");
            assert!(g.log.len() - from > 20, "the walk overlapped writes");
        }
        (locked, left)
    }
}
