//! A minimal data tree: loads a snapshot, replays txns the way Apache's DataTree does
//! (enough for the tests), and writes a snapshot back in pre-order.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use zk_proto::persistence::DataNodeRecord;
use zk_proto::txn::{Txn, TxnEntry};
use zk_proto::{Acl, StatPersisted};
use zk_server::storage::SnapshotData;

/// One node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub data: Vec<u8>,
    pub acl: Vec<Acl>,
    pub stat: StatPersisted,
    pub children: BTreeSet<String>,
}

/// Nodes by path (root is "").
#[derive(Debug, Clone, Default)]
pub struct Tree {
    pub nodes: BTreeMap<String, Node>,
    pub sessions: BTreeMap<i64, i32>,
    pub last_zxid: i64,
}

fn parent_and_name(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("", path),
    }
}

impl Tree {
    /// Builds the tree of a snapshot, resolving ACL indexes.
    pub fn from_snapshot(s: &SnapshotData) -> Tree {
        let acls: BTreeMap<i64, Vec<Acl>> = s.acls.iter().cloned().collect();
        let mut t = Tree {
            last_zxid: s.last_zxid,
            sessions: s.sessions.iter().copied().collect(),
            ..Tree::default()
        };
        for (path, rec) in &s.nodes {
            let acl = if rec.acl == -1 {
                Acl::open_unsafe()
            } else {
                acls.get(&rec.acl).cloned().expect("acl index in cache")
            };
            t.nodes.insert(
                path.clone(),
                Node {
                    data: rec.data.as_deref().unwrap_or_default().to_vec(),
                    acl,
                    stat: rec.stat.clone(),
                    children: BTreeSet::new(),
                },
            );
            if !path.is_empty() {
                let (parent, name) = parent_and_name(path);
                t.nodes
                    .get_mut(parent)
                    .expect("parent before child")
                    .children
                    .insert(name.to_owned());
            }
        }
        t
    }

    /// Applies txns in order.
    pub fn replay(&mut self, txns: &[TxnEntry]) {
        for e in txns {
            self.apply(e, &e.txn);
            self.last_zxid = e.header.zxid;
        }
    }

    fn apply(&mut self, e: &TxnEntry, txn: &Txn) {
        let h = &e.header;
        match txn {
            Txn::Create(c) => {
                let (parent, name) = parent_and_name(&c.path);
                let (parent, name) = (parent.to_owned(), name.to_owned());
                let Some(p) = self.nodes.get_mut(&parent) else {
                    return;
                };
                p.stat.cversion = if c.parent_c_version == -1 {
                    p.stat.cversion + 1
                } else {
                    c.parent_c_version
                };
                p.stat.pzxid = h.zxid;
                p.children.insert(name);
                self.nodes.insert(
                    c.path.clone(),
                    Node {
                        data: c.data.as_deref().unwrap_or_default().to_vec(),
                        acl: c.acl.clone(),
                        stat: StatPersisted {
                            czxid: h.zxid,
                            mzxid: h.zxid,
                            ctime: h.time,
                            mtime: h.time,
                            pzxid: h.zxid,
                            ephemeral_owner: if c.ephemeral { h.client_id } else { 0 },
                            ..StatPersisted::default()
                        },
                        children: BTreeSet::new(),
                    },
                );
            }
            Txn::Delete(d) => self.remove(&d.path, h.zxid),
            Txn::SetData(s) => {
                if let Some(n) = self.nodes.get_mut(&s.path) {
                    n.data = s.data.as_deref().unwrap_or_default().to_vec();
                    n.stat.version = s.version;
                    n.stat.mzxid = h.zxid;
                    n.stat.mtime = h.time;
                }
            }
            Txn::SetAcl(s) => {
                if let Some(n) = self.nodes.get_mut(&s.path) {
                    n.acl = s.acl.clone();
                    n.stat.aversion = s.version;
                }
            }
            Txn::CreateSession(c) => {
                self.sessions.insert(h.client_id, c.time_out);
            }
            Txn::CloseSession(c) => {
                self.sessions.remove(&h.client_id);
                let owned: Vec<String> = match c {
                    Some(c) => c.paths2_delete.clone(),
                    None => self
                        .nodes
                        .iter()
                        .filter(|(_, n)| n.stat.ephemeral_owner == h.client_id)
                        .map(|(p, _)| p.clone())
                        .collect(),
                };
                for p in owned {
                    self.remove(&p, h.zxid);
                }
            }
            Txn::Multi(subs) => {
                for (_, t) in subs {
                    self.apply(e, t);
                }
            }
            _ => {}
        }
    }

    fn remove(&mut self, path: &str, zxid: i64) {
        if self.nodes.remove(path).is_some() {
            let (parent, name) = parent_and_name(path);
            if let Some(p) = self.nodes.get_mut(parent) {
                p.children.remove(name);
                p.stat.pzxid = zxid;
            }
        }
    }

    /// Data of a node as a string.
    pub fn data(&self, path: &str) -> Option<String> {
        self.nodes
            .get(path)
            .map(|n| String::from_utf8_lossy(&n.data).into_owned())
    }

    /// The tree as a snapshot: pre-order, with an ACL cache like Apache's.
    pub fn to_snapshot(&self) -> SnapshotData {
        let mut acls: Vec<(i64, Vec<Acl>)> = Vec::new();
        let mut nodes = Vec::new();
        let mut stack = vec![String::new()];
        while let Some(path) = stack.pop() {
            let n = &self.nodes[&path];
            let acl = if n.acl == Acl::open_unsafe() {
                -1
            } else if let Some((i, _)) = acls.iter().find(|(_, a)| *a == n.acl) {
                *i
            } else {
                let i = acls.len() as i64 + 1;
                acls.push((i, n.acl.clone()));
                i
            };
            nodes.push((
                path.clone(),
                DataNodeRecord {
                    data: Some(Bytes::from(n.data.clone())),
                    acl,
                    stat: n.stat.clone(),
                },
            ));
            for c in n.children.iter().rev() {
                stack.push(format!("{path}/{c}"));
            }
        }
        SnapshotData {
            last_zxid: self.last_zxid,
            sessions: self.sessions.iter().map(|(k, v)| (*k, *v)).collect(),
            acls,
            nodes,
        }
    }
}
