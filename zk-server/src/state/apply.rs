//! Applying one committed txn to the database: a pure function of the txn.

use zk_proto::create_mode::{ttl_to_ephemeral_owner, CONTAINER_EPHEMERAL_OWNER};
use zk_proto::txn::{Txn, TxnEntry};
use zk_proto::{ErrorCode, Stat};

use crate::state::database::ZkDatabase;
use crate::state::tree::Trigger;

/// What a txn did, per op.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A node was created.
    Created {
        /// Its path.
        path: String,
        /// Its stat.
        stat: Stat,
    },
    /// A node was deleted.
    Deleted,
    /// Data set; the node's new stat.
    SetData(Stat),
    /// ACL set; the node's new stat.
    SetAcl(Stat),
    /// A version check passed.
    Check,
    /// A session was created.
    SessionCreated,
    /// A session was closed.
    SessionClosed,
    /// The op failed with this code (also Ok / RuntimeInconsistency inside failed multis).
    Error(ErrorCode),
    /// A multi: one outcome per op.
    Multi(Vec<Outcome>),
}

impl Outcome {
    /// The code a client sees: the first failure of a multi, else Ok.
    pub fn err(&self) -> ErrorCode {
        match self {
            Outcome::Error(e) => *e,
            Outcome::Multi(v) => v
                .iter()
                .map(Outcome::err)
                .find(|e| *e != ErrorCode::Ok)
                .unwrap_or(ErrorCode::Ok),
            _ => ErrorCode::Ok,
        }
    }
}

/// The result of applying one txn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyResult {
    /// The txn's zxid.
    pub zxid: i64,
    /// Session that issued it.
    pub client_id: i64,
    /// Its xid.
    pub cxid: i32,
    /// What happened.
    pub outcome: Outcome,
    /// Tree changes, for the watch manager, in order.
    pub triggers: Vec<Trigger>,
}

impl ZkDatabase {
    /// Applies a committed txn (Apache's `DataTree.processTxn` + session bookkeeping).
    pub fn apply(&mut self, e: &TxnEntry) -> ApplyResult {
        let h = &e.header;
        let mut triggers = Vec::new();
        let outcome = self.apply_txn(h.client_id, h.zxid, h.time, &e.txn, &mut triggers);
        if h.zxid > self.last_zxid {
            self.last_zxid = h.zxid;
        }
        ApplyResult {
            zxid: h.zxid,
            client_id: h.client_id,
            cxid: h.cxid,
            outcome,
            triggers,
        }
    }

    fn apply_txn(
        &mut self,
        session: i64,
        zxid: i64,
        time: i64,
        txn: &Txn,
        tr: &mut Vec<Trigger>,
    ) -> Outcome {
        let created = |r: Result<Stat, ErrorCode>, path: &str| match r {
            Ok(stat) => Outcome::Created {
                path: path.to_string(),
                stat,
            },
            Err(e) => Outcome::Error(e),
        };
        match txn {
            Txn::Create(c) => {
                let owner = if c.ephemeral { session } else { 0 };
                let r = self.tree.create_node(
                    &c.path,
                    c.data.clone(),
                    c.acl.clone(),
                    owner,
                    c.parent_c_version,
                    zxid,
                    time,
                    tr,
                );
                created(r, &c.path)
            }
            Txn::CreateContainer(c) => {
                let r = self.tree.create_node(
                    &c.path,
                    c.data.clone(),
                    c.acl.clone(),
                    CONTAINER_EPHEMERAL_OWNER,
                    c.parent_c_version,
                    zxid,
                    time,
                    tr,
                );
                created(r, &c.path)
            }
            Txn::CreateTtl(c) => {
                let owner = ttl_to_ephemeral_owner(c.ttl).unwrap_or(0);
                let r = self.tree.create_node(
                    &c.path,
                    c.data.clone(),
                    c.acl.clone(),
                    owner,
                    c.parent_c_version,
                    zxid,
                    time,
                    tr,
                );
                created(r, &c.path)
            }
            Txn::Delete(d) => match self.tree.delete_node(&d.path, zxid, tr) {
                Ok(()) => Outcome::Deleted,
                Err(e) => Outcome::Error(e),
            },
            Txn::SetData(s) => {
                match self
                    .tree
                    .set_data(&s.path, s.data.clone(), s.version, zxid, time, tr)
                {
                    Ok(st) => Outcome::SetData(st),
                    Err(e) => Outcome::Error(e),
                }
            }
            Txn::SetAcl(s) => match self.tree.set_acl(&s.path, s.acl.clone(), s.version) {
                Ok(st) => Outcome::SetAcl(st),
                Err(e) => Outcome::Error(e),
            },
            Txn::Check(_) => Outcome::Check,
            Txn::CreateSession(c) => {
                self.sessions.insert(session, c.time_out);
                Outcome::SessionCreated
            }
            Txn::CloseSession(c) => {
                let mut paths: Vec<String> = c
                    .as_ref()
                    .map(|c| c.paths2_delete.clone())
                    .unwrap_or_default();
                for p in self.tree.ephemerals(session) {
                    if !paths.contains(&p) {
                        paths.push(p);
                    }
                }
                for p in paths {
                    let _ = self.tree.delete_node(&p, zxid, tr);
                }
                self.sessions.remove(&session);
                Outcome::SessionClosed
            }
            Txn::Error(e) => Outcome::Error(e.err),
            Txn::Multi(subs) => {
                let failed = subs.iter().any(|(_, t)| matches!(t, Txn::Error(_)));
                let mut out = Vec::with_capacity(subs.len());
                let mut seen_error = false;
                for (_, t) in subs {
                    if failed {
                        // An aborted multi changes nothing: ops before the failure report
                        // Ok, the failing op its code, the rest RuntimeInconsistency.
                        match t {
                            Txn::Error(e) => {
                                seen_error = true;
                                out.push(Outcome::Error(e.err));
                            }
                            _ if seen_error => {
                                out.push(Outcome::Error(ErrorCode::RuntimeInconsistency))
                            }
                            _ => out.push(Outcome::Error(ErrorCode::Ok)),
                        }
                    } else {
                        out.push(self.apply_txn(session, zxid, time, t, tr));
                    }
                }
                Outcome::Multi(out)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zk_proto::txn::{CreateTxn, DeleteTxn, ErrorTxn, SetDataTxn, TxnHeader};
    use zk_proto::{Acl, OpCode};

    fn entry(zxid: i64, ty: OpCode, txn: Txn) -> TxnEntry {
        TxnEntry {
            header: TxnHeader {
                client_id: 9,
                cxid: 1,
                zxid,
                time: 100 + zxid,
                txn_type: ty,
            },
            txn,
            digest: None,
        }
    }

    fn create(p: &str, eph: bool, pcv: i32) -> Txn {
        Txn::Create(CreateTxn {
            path: p.into(),
            data: Some("d".into()),
            acl: Acl::open_unsafe(),
            ephemeral: eph,
            parent_c_version: pcv,
        })
    }

    #[test]
    fn replay_is_deterministic() {
        let txns = vec![
            entry(1, OpCode::Create, create("/a", false, 1)),
            entry(2, OpCode::Create, create("/a/e", true, 1)),
            entry(
                3,
                OpCode::SetData,
                Txn::SetData(SetDataTxn {
                    path: "/a".into(),
                    data: None,
                    version: 1,
                }),
            ),
            entry(
                4,
                OpCode::Delete,
                Txn::Delete(DeleteTxn {
                    path: "/a/e".into(),
                }),
            ),
        ];
        let mut a = ZkDatabase::new();
        let mut b = ZkDatabase::new();
        for t in &txns {
            a.apply(t);
            b.apply(t);
        }
        assert_eq!(a.image(), b.image());
        assert_eq!(a.last_zxid(), 4);
        let st = a.tree.get("/a").unwrap().client_stat();
        assert_eq!((st.version, st.mzxid, st.pzxid, st.cversion), (1, 3, 4, 2));
        let restored = ZkDatabase::from_image(&a.image());
        assert_eq!(restored.image(), a.image());
    }

    #[test]
    fn failed_multi_changes_nothing() {
        let mut db = ZkDatabase::new();
        let r = db.apply(&entry(
            1,
            OpCode::Multi,
            Txn::Multi(vec![
                (OpCode::Create, create("/x", false, 1)),
                (
                    OpCode::Error,
                    Txn::Error(ErrorTxn {
                        err: ErrorCode::NoNode,
                    }),
                ),
                (
                    OpCode::Error,
                    Txn::Error(ErrorTxn {
                        err: ErrorCode::RuntimeInconsistency,
                    }),
                ),
            ]),
        ));
        assert!(db.tree.get("/x").is_none());
        assert_eq!(
            r.outcome,
            Outcome::Multi(vec![
                Outcome::Error(ErrorCode::Ok),
                Outcome::Error(ErrorCode::NoNode),
                Outcome::Error(ErrorCode::RuntimeInconsistency),
            ])
        );
        assert_eq!(r.outcome.err(), ErrorCode::NoNode);
    }

    #[test]
    fn close_session_removes_ephemerals() {
        let mut db = ZkDatabase::new();
        db.apply(&entry(
            1,
            OpCode::CreateSession,
            Txn::CreateSession(zk_proto::txn::CreateSessionTxn { time_out: 4000 }),
        ));
        db.apply(&entry(2, OpCode::Create, create("/e", true, 1)));
        assert_eq!(db.sessions().get(&9), Some(&4000));
        let r = db.apply(&entry(3, OpCode::CloseSession, Txn::CloseSession(None)));
        assert!(db.tree.get("/e").is_none());
        assert!(db.sessions().is_empty());
        assert_eq!(r.triggers.len(), 2);
    }
}
