//! Quotas as Apache ZooKeeper 3.8 keeps them: a quota on `/p` is the node
//! `/zookeeper/quota/p/zookeeper_limits` (`count=N,bytes=M`, 3.7+ adds
//! `countHardLimit` / `byteHardLimit`), and its usage is `/zookeeper/quota/p/zookeeper_stats`,
//! which every create, delete and setData under `/p` updates as it applies (Apache's
//! `DataTree.updateQuotaStat`). Loading a snapshot recounts every usage from the tree
//! (`DataTree.setupQuota`). With `zookeeper.enforceQuota=true` the prepare stage refuses a
//! create or setData that would pass a hard limit ([`DataTree::check_quota`]).
//!
//! The rules mirror Apache's, quirks included, because the stats nodes are replicated
//! state: a zk-server member must write the same bytes as its Apache peers.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crate::state::tree::data_tree::QUOTA_ZOOKEEPER;
use crate::state::tree::{path, DataTree};

/// Name of the node holding a quota's limits.
pub const LIMIT_NODE: &str = "zookeeper_limits";
/// Name of the node holding a quota's usage.
pub const STAT_NODE: &str = "zookeeper_stats";

/// `/zookeeper/quota<p>/zookeeper_limits` (Apache's `Quotas.limitPath`).
pub fn limit_path(p: &str) -> String {
    format!("{QUOTA_ZOOKEEPER}{p}/{LIMIT_NODE}")
}

/// `/zookeeper/quota<p>/zookeeper_stats` (Apache's `Quotas.statPath`).
pub fn stat_path(p: &str) -> String {
    format!("{QUOTA_ZOOKEEPER}{p}/{STAT_NODE}")
}

/// A `zookeeper_limits` or `zookeeper_stats` payload that Apache's parser throws on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed quota record {text:?}: {why}")]
pub struct StatsParseError {
    /// The payload, as text.
    pub text: String,
    /// What is wrong with it.
    pub why: &'static str,
}

/// The `key=value` record of a limits or stats node (Apache's `StatsTrack`): values that
/// are absent read as -1; unknown keys are kept and written back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsTrack {
    values: BTreeMap<String, i64>,
}

const COUNT: &str = "count";
const BYTES: &str = "bytes";
const COUNT_HARD: &str = "countHardLimit";
const BYTE_HARD: &str = "byteHardLimit";

/// Java's `String.split(regex)` on a one-character class (`runs`: the class with `+`): a
/// leading empty piece is kept, trailing ones dropped.
fn java_split(s: &str, runs: bool, is_sep: impl Fn(char) -> bool) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if is_sep(c) {
            out.push(&s[start..i]);
            // `[,;]+` eats a run of separators as one.
            let mut end = i + c.len_utf8();
            while let Some(&(j, d)) = chars.peek() {
                if !runs || !is_sep(d) {
                    break;
                }
                end = j + d.len_utf8();
                chars.next();
            }
            start = end;
        }
    }
    out.push(&s[start..]);
    while out.len() > 1 && out.last().is_some_and(|p| p.is_empty()) {
        out.pop();
    }
    if out.len() == 1 && out[0].is_empty() && !s.is_empty() {
        // Java: a string made only of separators splits into nothing.
        out.clear();
    }
    out
}

impl StatsTrack {
    /// A record with nothing set (everything reads -1).
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses a node's data as Apache's `StatsTrack(String)`: pairs separated by runs of
    /// `,` or `;`, each `key=value` (an empty value is -1).
    pub fn parse(data: &[u8]) -> Result<Self, StatsParseError> {
        let text = String::from_utf8_lossy(data);
        let mut values = BTreeMap::new();
        if text.is_empty() {
            return Ok(StatsTrack { values });
        }
        let bad = |why| StatsParseError {
            text: text.to_string(),
            why,
        };
        for pair in java_split(&text, true, |c| c == ',' || c == ';') {
            // `"k=v=".split("=")` is `[k, v]`; `"k=".split("=")` is `[k]`, and Apache then
            // reads past the end of the array.
            let kv = java_split(pair, false, |c| c == '=');
            let (Some(k), Some(v)) = (kv.first(), kv.get(1)) else {
                return Err(bad("a pair without a value"));
            };
            let v = if v.is_empty() {
                -1
            } else {
                // Long.parseLong: an optional sign and decimal digits.
                let digits = v.strip_prefix(['+', '-']).unwrap_or(v);
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad("a value that is not a number"));
                }
                v.parse::<i64>().map_err(|_| bad("a value out of range"))?
            };
            values.insert((*k).to_string(), v);
        }
        Ok(StatsTrack { values })
    }

    fn get(&self, key: &str) -> i64 {
        self.values.get(key).copied().unwrap_or(-1)
    }

    /// `count`: the node count (soft limit in a limits node, usage in a stats node).
    pub fn count(&self) -> i64 {
        self.get(COUNT)
    }

    /// `bytes`: the data bytes (soft limit, or usage).
    pub fn bytes(&self) -> i64 {
        self.get(BYTES)
    }

    /// `countHardLimit` (-1: none).
    pub fn count_hard_limit(&self) -> i64 {
        self.get(COUNT_HARD)
    }

    /// `byteHardLimit` (-1: none).
    pub fn byte_hard_limit(&self) -> i64 {
        self.get(BYTE_HARD)
    }

    /// Sets `count`.
    pub fn set_count(&mut self, v: i64) {
        self.values.insert(COUNT.into(), v);
    }

    /// Sets `bytes`.
    pub fn set_bytes(&mut self, v: i64) {
        self.values.insert(BYTES.into(), v);
    }

    /// Sets `countHardLimit`.
    pub fn set_count_hard_limit(&mut self, v: i64) {
        self.values.insert(COUNT_HARD.into(), v);
    }

    /// Sets `byteHardLimit`.
    pub fn set_byte_hard_limit(&mut self, v: i64) {
        self.values.insert(BYTE_HARD.into(), v);
    }

    /// The bytes Apache writes for this record.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_string().into_bytes()
    }
}

impl fmt::Display for StatsTrack {
    /// `count=N,bytes=M`, then any other keys sorted, after an `=` and each behind a `;`
    /// (`count=1,bytes=2=;byteHardLimit=5;countHardLimit=3`): the layout 3.4 parsers read.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{COUNT}={},{BYTES}={}", self.count(), self.bytes())?;
        let mut rest = self
            .values
            .iter()
            .filter(|(k, _)| *k != COUNT && *k != BYTES)
            .peekable();
        if rest.peek().is_some() {
            f.write_str("=")?;
            for (k, v) in rest {
                write!(f, ";{k}={v}")?;
            }
        }
        Ok(())
    }
}

/// The paths that have a quota (Apache's `PathTrie`): finds the deepest one above a path.
#[derive(Debug, Clone, Default)]
pub struct QuotaTrie {
    root: TrieNode,
}

#[derive(Debug, Clone, Default)]
struct TrieNode {
    quota: bool,
    children: HashMap<String, TrieNode>,
}

/// Path components as `PathTrie.split` takes them: blank ones (Java `trim()`) dropped.
fn components(p: &str) -> impl Iterator<Item = &str> {
    p.split('/')
        .filter(|t| !t.trim_matches(|c: char| c <= ' ').is_empty())
}

impl QuotaTrie {
    /// Marks `p` as having a quota. Apache refuses the empty path.
    pub fn add(&mut self, p: &str) {
        if p.is_empty() {
            return;
        }
        let mut node = &mut self.root;
        for part in components(p) {
            node = node.children.entry(part.to_string()).or_default();
        }
        node.quota = true;
    }

    /// Forgets `p` and, as Apache's `deletePath` does, every quota below it.
    pub fn delete(&mut self, p: &str) {
        let parts: Vec<&str> = components(p).collect();
        let Some((last, init)) = parts.split_last() else {
            return;
        };
        let mut node = &mut self.root;
        for part in init {
            match node.children.get_mut(*part) {
                Some(n) => node = n,
                None => return,
            }
        }
        node.children.remove(*last);
    }

    /// The deepest path at or above `p` with a quota; `None` for none (Apache's
    /// `getMaxPrefixWithQuota`, which never reports the root).
    pub fn max_prefix(&self, p: &str) -> Option<String> {
        if self.is_empty() {
            // Every write asks: without quotas that must cost nothing.
            return None;
        }
        let mut node = &self.root;
        let mut walked = Vec::new();
        let mut deepest = 0;
        for part in components(p) {
            let Some(n) = node.children.get(part) else {
                break;
            };
            walked.push(part);
            if n.quota {
                deepest = walked.len();
            }
            node = n;
        }
        if deepest == 0 {
            return None;
        }
        Some(format!("/{}", walked[..deepest].join("/")))
    }

    /// Drops every quota.
    pub fn clear(&mut self) {
        self.root = TrieNode::default();
    }

    /// True when no path has a quota.
    pub fn is_empty(&self) -> bool {
        self.root.children.is_empty()
    }
}

/// Which limit a write would pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaKind {
    /// The node count.
    Count,
    /// The data bytes.
    Bytes,
}

/// A write that passes a limit: Apache refuses it if the limit is hard and logs it either way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaBreach {
    /// The path with the quota.
    pub prefix: String,
    /// Count or bytes.
    pub kind: QuotaKind,
    /// Usage after the write.
    pub usage: i64,
    /// The limit passed.
    pub limit: i64,
    /// A hard limit (the write fails with QuotaExceeded) or a soft one (a warning).
    pub hard: bool,
}

impl fmt::Display for QuotaBreach {
    /// Apache's message: `Quota exceeded: /p [current count=3, hardCountLimit=2]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (what, limit) = match self.kind {
            QuotaKind::Count => ("count", "CountLimit"),
            QuotaKind::Bytes => ("bytes", "ByteLimit"),
        };
        let strength = if self.hard { "hard" } else { "soft" };
        write!(
            f,
            "Quota exceeded: {} [current {what}={}, {strength}{limit}={}]",
            self.prefix, self.usage, self.limit
        )
    }
}

impl DataTree {
    /// The deepest path at or above `p` that has a quota.
    pub fn max_prefix_with_quota(&self, p: &str) -> Option<String> {
        self.quotas.max_prefix(p)
    }

    /// The parsed data of the node at `p`; `None` when there is no such node.
    fn stats_at(&self, p: &str) -> Option<Result<StatsTrack, StatsParseError>> {
        self.get(p)
            .map(|n| StatsTrack::parse(n.data().unwrap_or_default()))
    }

    /// Apache's `updateQuotaStat`: adds to the usage of the quota on `prefix`.
    fn update_quota_stat(&mut self, prefix: &str, bytes_diff: i64, count_diff: i64) {
        let sp = stat_path(prefix);
        let mut stats = match self.stats_at(&sp) {
            None => {
                tracing::error!("Missing node for stat {sp}");
                return;
            }
            Some(Err(e)) => {
                tracing::error!("quota usage of {prefix} not updated: {sp}: {e}");
                return;
            }
            Some(Ok(s)) => s,
        };
        stats.set_count(stats.count().wrapping_add(count_diff));
        stats.set_bytes(stats.bytes().wrapping_add(bytes_diff));
        self.replace_data(&sp, &stats.to_bytes());
    }

    /// Apache's `updateQuotaForPath`: recounts the subtree at `p` into its stats node.
    fn recount_quota(&mut self, p: &str) {
        let (count, bytes) = self.subtree_counts(p);
        let mut stats = StatsTrack::new();
        stats.set_bytes(bytes);
        stats.set_count(count);
        let sp = stat_path(p);
        if !self.replace_data(&sp, &stats.to_bytes()) {
            tracing::warn!("Missing quota stat node {sp}");
        }
    }

    /// The quota bookkeeping after `p` was created with `data_len` bytes (the tail of
    /// Apache's `createNode`): a new limits node adds a quota, a new stats node gets the
    /// subtree's usage, and the quota above `p` counts it.
    pub(crate) fn quota_created(&mut self, p: &str, data_len: usize) {
        let parent = p.rfind('/').map_or("", |i| &p[..i]);
        let child = path::name(p);
        if let Some(quota_path) = parent.strip_prefix(QUOTA_ZOOKEEPER) {
            if child == LIMIT_NODE {
                self.quotas.add(quota_path);
            }
            if child == STAT_NODE {
                self.recount_quota(quota_path);
            }
        }
        if let Some(prefix) = self.max_prefix_with_quota(p) {
            self.update_quota_stat(&prefix, data_len as i64, 1);
        }
    }

    /// The quota bookkeeping after `p`, holding `data_len` bytes, was deleted (Apache's
    /// `deleteNode`): a deleted limits node drops its quota (and, as Apache's trie does,
    /// any quota below it), and the quota above `p` stops counting it.
    pub(crate) fn quota_deleted(&mut self, p: &str, data_len: usize) {
        let parent = p.rfind('/').map_or("", |i| &p[..i]);
        if parent.starts_with(crate::state::tree::data_tree::PROC_ZOOKEEPER)
            && path::name(p) == LIMIT_NODE
        {
            // `Quotas.trimQuotaPath`: the parent minus the length of `/zookeeper/quota`.
            if let Some(quota_path) = parent.get(QUOTA_ZOOKEEPER.len()..) {
                self.quotas.delete(quota_path);
            }
        }
        if let Some(prefix) = self.max_prefix_with_quota(p) {
            self.update_quota_stat(&prefix, -(data_len as i64), -1);
        }
    }

    /// The quota bookkeeping after the data of `p` changed length (Apache's `setData`).
    pub(crate) fn quota_data_changed(&mut self, p: &str, old_len: usize, new_len: usize) {
        if let Some(prefix) = self.max_prefix_with_quota(p) {
            self.update_quota_stat(&prefix, new_len as i64 - old_len as i64, 0);
        }
    }

    /// Apache's `setupQuota` after a snapshot load: every leaf `.../zookeeper_limits` under
    /// `/zookeeper/quota` is a quota, and its usage is recounted from the tree.
    pub(crate) fn setup_quota(&mut self) {
        self.quotas.clear();
        let mut limits = Vec::new();
        let mut stack = vec![QUOTA_ZOOKEEPER.to_string()];
        while let Some(p) = stack.pop() {
            let Some(node) = self.get(&p) else { continue };
            let kids = self.child_names(node);
            if kids.is_empty() {
                let end = format!("/{LIMIT_NODE}");
                if p.ends_with(&end) {
                    if let Some(i) = p.find(&end) {
                        limits.push(p[QUOTA_ZOOKEEPER.len()..i].to_string());
                    }
                }
                continue;
            }
            stack.extend(kids.into_iter().map(|k| format!("{p}/{k}")));
        }
        for real in limits {
            // Apache throws on the empty path (a limits node right under /zookeeper/quota).
            if real.is_empty() {
                tracing::warn!("ignoring the quota node {QUOTA_ZOOKEEPER}/{LIMIT_NODE}");
                continue;
            }
            self.recount_quota(&real);
            self.quotas.add(&real);
        }
    }

    /// Apache's `ZooKeeperServer.checkQuota` for a write under `p` adding `bytes_diff`
    /// bytes and `count_diff` nodes, against the applied tree (not outstanding changes,
    /// as in Apache). The breaches it finds, in Apache's order (count, then bytes); a hard
    /// one ends the list, and the write then fails with QuotaExceeded.
    pub fn check_quota(
        &self,
        p: &str,
        bytes_diff: i64,
        count_diff: i64,
    ) -> Result<Vec<QuotaBreach>, StatsParseError> {
        let mut out = Vec::new();
        let Some(prefix) = self.max_prefix_with_quota(p) else {
            return Ok(out);
        };
        let lp = limit_path(&prefix);
        let limits = match self.stats_at(&lp) {
            None => {
                tracing::error!("Missing limit node for quota {lp}");
                return Ok(out);
            }
            Some(r) => r?,
        };
        let check_count =
            count_diff != 0 && (limits.count() > -1 || limits.count_hard_limit() > -1);
        let check_bytes = bytes_diff != 0 && (limits.bytes() > -1 || limits.byte_hard_limit() > -1);
        if !check_count && !check_bytes {
            return Ok(out);
        }
        let sp = stat_path(&prefix);
        let usage = match self.stats_at(&sp) {
            None => {
                tracing::error!("Missing node for stat {sp}");
                return Ok(out);
            }
            Some(r) => r?,
        };
        let checks = [
            (
                check_count,
                QuotaKind::Count,
                usage.count(),
                count_diff,
                limits.count_hard_limit(),
                limits.count(),
            ),
            (
                check_bytes,
                QuotaKind::Bytes,
                usage.bytes(),
                bytes_diff,
                limits.byte_hard_limit(),
                limits.bytes(),
            ),
        ];
        for (on, kind, used, diff, hard_limit, soft_limit) in checks {
            if !on {
                continue;
            }
            let after = used.wrapping_add(diff);
            let hard = hard_limit > -1;
            let limit = if hard { hard_limit } else { soft_limit };
            if after > limit {
                out.push(QuotaBreach {
                    prefix: prefix.clone(),
                    kind,
                    usage: after,
                    limit,
                    hard,
                });
                if hard {
                    break;
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zk_proto::Acl;

    fn st(s: &str) -> StatsTrack {
        StatsTrack::parse(s.as_bytes()).unwrap()
    }

    #[test]
    fn stats_track_reads_and_writes_as_apache() {
        let t = st("count=4,bytes=5");
        assert_eq!((t.count(), t.bytes(), t.count_hard_limit()), (4, 5, -1));
        assert_eq!(t.to_string(), "count=4,bytes=5");
        // The 3.7+ layout, with the extra '=' that 3.4 parsers skip.
        let t = st("count=-1,bytes=-1=;byteHardLimit=100;countHardLimit=3");
        assert_eq!((t.count_hard_limit(), t.byte_hard_limit()), (3, 100));
        assert_eq!(
            t.to_string(),
            "count=-1,bytes=-1=;byteHardLimit=100;countHardLimit=3"
        );
        let mut t = StatsTrack::new();
        t.set_count_hard_limit(2);
        assert_eq!(t.to_string(), "count=-1,bytes=-1=;countHardLimit=2");
        assert_eq!(st("").to_string(), "count=-1,bytes=-1");
        assert_eq!(st("count=1,,bytes=7;;").bytes(), 7);
        assert_eq!(st("count==3").count(), -1);
        assert_eq!(st("count=+3").count(), 3);
        assert_eq!(st("zeta=1,count=2").to_string(), "count=2,bytes=-1=;zeta=1");
        for bad in [
            "count",
            "count=",
            "count=x",
            ",count=1",
            "count=1 ",
            "count=9999999999999999999",
        ] {
            assert!(StatsTrack::parse(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn trie_finds_the_deepest_quota() {
        let mut t = QuotaTrie::default();
        assert_eq!(t.max_prefix("/a/b"), None);
        t.add("/a");
        t.add("/a/b/c");
        assert_eq!(t.max_prefix("/a").as_deref(), Some("/a"));
        assert_eq!(t.max_prefix("/a/b").as_deref(), Some("/a"));
        assert_eq!(t.max_prefix("/a/b/c/d").as_deref(), Some("/a/b/c"));
        assert_eq!(t.max_prefix("/ab"), None);
        assert_eq!(t.max_prefix("//a///b"), Some("/a".into()));
        // Deleting /a drops the quota below it too, as Apache's trie does.
        t.delete("/a");
        assert_eq!(t.max_prefix("/a/b/c"), None);
        assert!(t.is_empty());
    }

    fn create(t: &mut DataTree, p: &str, data: &str) {
        let mut tr = Vec::new();
        t.create_node(
            p,
            Some(data.as_bytes().to_vec().into()),
            Acl::open_unsafe(),
            0,
            -1,
            1,
            1,
            &mut tr,
        )
        .unwrap();
    }

    fn data(t: &DataTree, p: &str) -> String {
        String::from_utf8_lossy(t.get(p).unwrap().data().unwrap()).into_owned()
    }

    #[test]
    fn usage_follows_writes_as_in_apache() {
        let mut t = DataTree::new();
        create(&mut t, "/a", "12345");
        create(&mut t, "/a/b", "xy");
        // zkCli's setquota: the path nodes, the limits, then the stats written as zeros.
        create(&mut t, "/zookeeper/quota/a", "");
        create(
            &mut t,
            "/zookeeper/quota/a/zookeeper_limits",
            "count=3,bytes=-1",
        );
        create(
            &mut t,
            "/zookeeper/quota/a/zookeeper_stats",
            "count=0,bytes=0",
        );
        assert_eq!(
            data(&t, "/zookeeper/quota/a/zookeeper_stats"),
            "count=2,bytes=7"
        );
        create(&mut t, "/a/b/c", "abc");
        assert_eq!(
            data(&t, "/zookeeper/quota/a/zookeeper_stats"),
            "count=3,bytes=10"
        );
        let mut tr = Vec::new();
        t.set_data("/a/b", None, 1, 2, 2, &mut tr).unwrap();
        assert_eq!(
            data(&t, "/zookeeper/quota/a/zookeeper_stats"),
            "count=3,bytes=8"
        );
        t.delete_node("/a/b/c", 3, &mut tr).unwrap();
        assert_eq!(
            data(&t, "/zookeeper/quota/a/zookeeper_stats"),
            "count=2,bytes=5"
        );
        // The stats node's own stat is untouched: Apache writes its data in place.
        let s = t.get("/zookeeper/quota/a/zookeeper_stats").unwrap();
        assert_eq!((s.stat.version, s.client_stat().data_length), (0, 15));
        // Soft count limit 3: a fourth node is a soft breach; with a hard limit it fails.
        create(&mut t, "/a/c", "");
        let b = t.check_quota("/a/d", 0, 1).unwrap();
        assert_eq!(b.len(), 1);
        assert_eq!(
            b[0].to_string(),
            "Quota exceeded: /a [current count=4, softCountLimit=3]"
        );
        t.set_data(
            "/zookeeper/quota/a/zookeeper_limits",
            Some("count=-1,bytes=-1=;byteHardLimit=6;countHardLimit=9".into()),
            1,
            4,
            4,
            &mut tr,
        )
        .unwrap();
        assert!(t.check_quota("/a/d", 0, 1).unwrap().is_empty());
        let b = t.check_quota("/a/d", 2, 1).unwrap();
        assert_eq!(
            b[0].to_string(),
            "Quota exceeded: /a [current bytes=7, hardByteLimit=6]"
        );
        assert!(b[0].hard);
        // Deleting the limits node ends the quota: writes no longer count.
        t.delete_node("/zookeeper/quota/a/zookeeper_limits", 5, &mut tr)
            .unwrap();
        create(&mut t, "/a/e", "zz");
        assert_eq!(
            data(&t, "/zookeeper/quota/a/zookeeper_stats"),
            "count=3,bytes=5"
        );
        assert!(t.check_quota("/a/f", 100, 1).unwrap().is_empty());
    }

    #[test]
    fn a_restored_tree_recounts_usage() {
        let mut t = DataTree::new();
        create(&mut t, "/a", "12345");
        create(&mut t, "/zookeeper/quota/a", "");
        create(
            &mut t,
            "/zookeeper/quota/a/zookeeper_limits",
            "count=3,bytes=-1",
        );
        create(
            &mut t,
            "/zookeeper/quota/a/zookeeper_stats",
            "count=0,bytes=0",
        );
        let mut tr = Vec::new();
        // A stats node that disagrees with the tree (written by hand) is recounted.
        t.set_data(
            "/zookeeper/quota/a/zookeeper_stats",
            Some("count=40,bytes=0".into()),
            1,
            2,
            2,
            &mut tr,
        )
        .unwrap();
        let mut all: Vec<_> = t.iter().collect();
        all.sort_by_key(|(p, _)| p.matches('/').count());
        let mut r = DataTree::restoring();
        for (p, n) in all {
            assert!(r.restore_node(&p, n.data(), n.acl.clone(), n.stat.clone()));
        }
        r.link_restored();
        assert_eq!(
            data(&r, "/zookeeper/quota/a/zookeeper_stats"),
            "count=1,bytes=5"
        );
        create(&mut r, "/a/x", "1");
        assert_eq!(
            data(&r, "/zookeeper/quota/a/zookeeper_stats"),
            "count=2,bytes=6"
        );
    }
}
