//! A fuzzy snapshot of the tree, serialized a slice at a time between requests.
//!
//! Apache's snapshots are fuzzy too: the tree keeps changing while it is written, and a
//! restore replays the txn log from the zxid the walk started at, tolerating txns whose
//! effect the file already holds. The walk never copies the tree: it keeps a stack of slot
//! numbers (with their generation, so a slot freed and reused meanwhile is skipped) and
//! writes each node in Apache's pre-order, children in Apache's set order. A node created
//! after the walk listed its parent is left to the log replay; a node deleted before its
//! turn is skipped. Parents always precede their children in the output.
//!
//! The ACL table precedes the nodes in the format. A walk for a learner's SNAP (sent
//! whole once walked) numbers the lists as it meets them and gives the table at the end;
//! a walk for a snapshot file ([`SnapshotWalk::for_file`]) fixes the table at its start,
//! so the file is written in one pass with no scratch copy. A list first used after that
//! start got onto a node by a txn the log replay applies again: a node created since
//! (with all below it) is left to the replay, and a node whose ACL a `setACL` changed
//! since is written with [`locked_acl`] until the replay sets it back (fail closed should
//! the replay ever not).

use std::collections::HashMap;
use std::sync::Arc;

use bytes::BytesMut;
use zk_proto::{Acl, JuteWrite, Perms, Record};

use crate::state::tree::data_tree::{DataTree, ROOT};

/// Progress of one fuzzy snapshot walk over a [`DataTree`].
#[derive(Debug)]
pub struct SnapshotWalk {
    /// Nodes still to write, last first: `(slot, generation)`.
    stack: Vec<(u32, u32)>,
    /// ACL index by list identity; the walk holds each list so no address is reused.
    acl_ids: HashMap<usize, i64>,
    acls: Vec<(i64, Arc<Vec<Acl>>)>,
    path: String,
    written: u64,
    /// For a file: the table is fixed at the start (see the module doc).
    fixed: Option<Fixed>,
}

/// A table fixed at the start of a file's walk.
#[derive(Debug)]
struct Fixed {
    /// Zxid of the last txn applied when the walk started: the replay starts after it.
    zxid: i64,
    /// Index of [`locked_acl`] in the table.
    locked: i64,
    /// Index by encoded list, for a list equal to one in the table but not shared.
    by_value: HashMap<bytes::Bytes, i64>,
    /// Nodes written with [`locked_acl`] and nodes left to the replay.
    locked_nodes: u64,
    left_to_replay: u64,
}

/// What a node whose ACL changed during a file's walk gets until the log replay sets it:
/// no permission for anyone.
pub fn locked_acl() -> Vec<Acl> {
    vec![Acl::new(Perms(0), "world", "anyone")]
}

impl SnapshotWalk {
    /// A walk starting at the root of `tree`.
    pub fn new(tree: &DataTree) -> Self {
        SnapshotWalk {
            stack: vec![(ROOT, tree.gen_at(ROOT))],
            acl_ids: HashMap::new(),
            acls: Vec::new(),
            path: String::new(),
            written: 0,
            fixed: None,
        }
    }

    /// A walk for a snapshot file of `tree` as of `zxid` (its last applied txn), with the
    /// ACL table fixed now ([`SnapshotWalk::acl_table`] is what the file's header holds).
    pub fn for_file(tree: &DataTree, zxid: i64) -> Self {
        let mut w = Self::new(tree);
        let mut by_value = HashMap::new();
        for list in tree.acl_lists() {
            let i = w.acls.len() as i64 + 1;
            w.acl_ids.insert(Arc::as_ptr(&list) as usize, i);
            by_value.insert(list.to_bytes(), i);
            w.acls.push((i, list));
        }
        let locked = w.acls.len() as i64 + 1;
        w.acls.push((locked, Arc::new(locked_acl())));
        w.fixed = Some(Fixed {
            zxid,
            locked,
            by_value,
            locked_nodes: 0,
            left_to_replay: 0,
        });
        w
    }

    /// For a file's walk: nodes written with [`locked_acl`] (their ACL changed during the
    /// walk) and nodes left to the log replay (created during the walk with a new ACL).
    pub fn deferred_to_replay(&self) -> (u64, u64) {
        self.fixed
            .as_ref()
            .map_or((0, 0), |f| (f.locked_nodes, f.left_to_replay))
    }

    /// True once every node has been written.
    pub fn is_done(&self) -> bool {
        self.stack.is_empty()
    }

    /// Nodes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Appends node records (`ustring path; DataNode`) to `out` until it holds `max_bytes`
    /// (at least one record) or the walk is done; returns true when done.
    pub fn step(&mut self, tree: &DataTree, out: &mut BytesMut, max_bytes: usize) -> bool {
        let limit = out.len().saturating_add(max_bytes.max(1));
        while out.len() < limit {
            let Some((id, gen)) = self.stack.pop() else {
                return true;
            };
            let Some(node) = tree.node_at_gen(id, gen) else {
                continue; // deleted since its parent was listed
            };
            let key = Arc::as_ptr(&node.acl) as usize;
            let acl = match (self.acl_ids.get(&key), &mut self.fixed) {
                (Some(i), _) => *i,
                (None, Some(f)) => match f.by_value.get(&node.acl.to_bytes()) {
                    Some(i) => *i,
                    // Created after the start, with a list first used after it: the
                    // replay creates it and everything below it (all created later).
                    None if node.stat.czxid > f.zxid => {
                        f.left_to_replay += 1;
                        continue;
                    }
                    // Here at the start, so only a later setACL gave it this list.
                    None => {
                        f.locked_nodes += 1;
                        f.locked
                    }
                },
                (None, None) => {
                    let i = self.acls.len() as i64 + 1;
                    self.acl_ids.insert(key, i);
                    self.acls.push((i, node.acl.clone()));
                    i
                }
            };
            self.path.clear();
            if id != ROOT {
                tree.path_into(id, &mut self.path);
            }
            out.write_string(&self.path);
            out.write_opt_buffer(node.data());
            out.write_i64(acl);
            node.stat.write(out);
            self.written += 1;
            let kids = tree.child_ids_java_order(node);
            self.stack
                .extend(kids.into_iter().rev().map(|c| (c, tree.gen_at(c))));
        }
        self.stack.is_empty()
    }

    /// The ACL cache the written nodes refer to (`index -> list`), for the header: all
    /// of it once the walk is done, or for a file's walk the table fixed at its start.
    pub fn acl_table(&self) -> Vec<(i64, Vec<Acl>)> {
        self.acls.iter().map(|(i, a)| (*i, (**a).clone())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zk_proto::persistence::DataNodeRecord;
    use zk_proto::JuteReader;

    fn create(t: &mut DataTree, p: &str, zxid: i64) {
        let mut tr = Vec::new();
        t.create_node(
            p,
            Some(bytes::Bytes::from(p.to_string())),
            Acl::open_unsafe(),
            0,
            -1,
            zxid,
            zxid,
            &mut tr,
        )
        .unwrap();
    }

    fn records(buf: BytesMut) -> Vec<(String, DataNodeRecord)> {
        let mut r = JuteReader::new(buf.freeze());
        let mut v = Vec::new();
        while !r.is_empty() {
            let p = r.read_string().unwrap();
            v.push((p, DataNodeRecord::read(&mut r).unwrap()));
        }
        v
    }

    #[test]
    fn walk_is_pre_order_and_tolerates_changes() {
        let mut t = DataTree::new();
        for i in 0..50 {
            create(&mut t, &format!("/a{i}"), 2 + i);
            create(&mut t, &format!("/a{i}/b"), 100 + i);
        }
        let mut w = SnapshotWalk::new(&t);
        let mut out = BytesMut::new();
        assert!(!w.step(&t, &mut out, 200));
        // Changes between slices: a listed node goes (its slot then reused), a new one comes.
        let mut tr = Vec::new();
        let victim = (0..50)
            .map(|i| format!("/a{i}"))
            .find(|p| !records(out.clone()).iter().any(|(q, _)| q == p))
            .unwrap();
        t.delete_node(&format!("{victim}/b"), 500, &mut tr).unwrap();
        t.delete_node(&victim, 501, &mut tr).unwrap();
        create(&mut t, "/late", 502);
        create(&mut t, "/late/child", 503);
        loop {
            let mut slice = BytesMut::new();
            let done = w.step(&t, &mut slice, 300);
            out.extend_from_slice(&slice);
            if done {
                break;
            }
        }
        let recs = records(out);
        let paths: Vec<&str> = recs.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths[0], "");
        assert!(!paths.contains(&victim.as_str()));
        assert!(!paths.iter().any(|p| p.starts_with("/late")));
        assert_eq!(paths.len(), 4 + 49 * 2);
        let snap = crate::storage::SnapshotData {
            last_zxid: 1,
            sessions: vec![],
            acls: w.acl_table(),
            nodes: recs,
        };
        // Pre-order holds (write_to refuses anything else).
        snap.write_to(Vec::new()).unwrap();
        assert_eq!(w.written(), 4 + 49 * 2);
    }
}
