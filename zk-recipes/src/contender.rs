//! Sequential-node queues shared by the lock, read-write lock and election recipes, in
//! kazoo's layout: each contender creates the ephemeral sequential node
//! `<path>/<32 hex token><kind><10-digit sequence>` (kind `__lock__` or `__rlock__`) with
//! its identifier as data, and holds its turn when no *blocking* contender has a lower
//! sequence number. Each waiter watches only its closest blocking predecessor (no herd).

use std::time::Duration;

use zk_client::{Acl, Client, CreateMode};

use crate::error::{Error, Result};
use crate::fencing::FencingToken;
use crate::util::{ensure_path, join, retry, token};

/// Node kind of an exclusive lock / write lock / election contender.
pub const LOCK: &str = "__lock__";
/// Node kind of a read lock.
pub const RLOCK: &str = "__rlock__";

/// The sequence number of a contender node of one of `kinds` (kazoo's
/// `(?:kinds)(-?\d{10})$`).
pub fn sequence(name: &str, kinds: &[&str]) -> Option<i64> {
    let digits = name.len().checked_sub(10)?;
    let (head, tail) = name.split_at_checked(digits)?;
    if !tail.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (head, neg) = match head.strip_suffix('-') {
        Some(h) => (h, true),
        None => (head, false),
    };
    if !kinds.iter().any(|k| head.ends_with(k)) {
        return None;
    }
    let v: i64 = tail.parse().ok()?;
    Some(if neg { -v } else { v })
}

/// One contender of a queue.
#[derive(Debug, Clone)]
pub(crate) struct Contender {
    /// The queue's directory.
    pub dir: String,
    /// `<token><kind>`: unique to this contender, to find our node after a lost reply.
    pub prefix: String,
    /// Our kind.
    pub kind: &'static str,
    /// Kinds that go before us when their sequence is lower.
    pub blockers: &'static [&'static str],
    /// Identifier stored as data.
    pub data: Vec<u8>,
}

/// Whether we hold our turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Turn {
    Ours,
    NotYet,
}

impl Contender {
    pub fn new(
        dir: &str,
        kind: &'static str,
        blockers: &'static [&'static str],
        data: &[u8],
    ) -> Self {
        Contender {
            dir: dir.to_owned(),
            prefix: format!("{}{}", token(), kind),
            kind,
            blockers,
            data: data.to_vec(),
        }
    }

    /// Our node's name if it exists (found by our unique prefix).
    pub async fn find(&self, client: &Client) -> Result<Option<String>> {
        match retry(|| client.get_children(&self.dir, false)).await {
            Ok(children) => Ok(children.into_iter().find(|c| c.starts_with(&self.prefix))),
            Err(zk_client::Error::NoNode { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Creates our node (once, even when a reply is lost) and returns its name and
    /// `czxid` (the fencing token of a hold on it).
    pub async fn enter(&self, client: &Client) -> Result<(String, FencingToken)> {
        ensure_path(client, &self.dir).await?;
        let path = join(&self.dir, &self.prefix);
        loop {
            match client
                .create_with_stat(
                    &path,
                    &self.data,
                    &Acl::open_unsafe(),
                    CreateMode::EphemeralSequential,
                )
                .await
            {
                Ok((p, stat)) => {
                    return Ok((
                        crate::util::name(&p).to_owned(),
                        FencingToken::new(stat.czxid),
                    ))
                }
                Err(e) if e.is_retryable() => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    if let Some(n) = self.find(client).await? {
                        let p = join(&self.dir, &n);
                        match retry(|| client.exists(&p, false)).await? {
                            Some(stat) => return Ok((n, FencingToken::new(stat.czxid))),
                            // Gone again (e.g. the session ended): make a new one.
                            None => continue,
                        }
                    }
                }
                Err(zk_client::Error::NoNode { .. }) => ensure_path(client, &self.dir).await?,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Our closest blocking predecessor, or None when it is our turn. Fails with
    /// `NoNode` when our node is gone (deleted, or its session ended).
    pub async fn predecessor(&self, client: &Client, me: &str) -> Result<Option<String>> {
        let children = match retry(|| client.get_children(&self.dir, false)).await {
            Ok(c) => c,
            Err(e) => return Err(e.into()),
        };
        if !children.iter().any(|c| c == me) {
            return Err(zk_client::Error::NoNode {
                path: format!("{}/{me}", self.dir),
            }
            .into());
        }
        let mine = sequence(me, &[self.kind])
            .ok_or_else(|| Error::InvalidArgument(format!("not a contender node name: {me}")))?;
        Ok(children
            .into_iter()
            .filter_map(|c| sequence(&c, self.blockers).map(|s| (s, c)))
            .filter(|(s, _)| *s < mine)
            .max()
            .map(|(_, c)| c))
    }

    /// Checks once; if not our turn and `wait`, waits for the predecessor to go and
    /// checks again, until our turn or `deadline`.
    pub async fn wait_turn(
        &self,
        client: &Client,
        me: &str,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<Turn> {
        loop {
            let Some(pred) = self.predecessor(client, me).await? else {
                return Ok(Turn::Ours);
            };
            let Some(deadline) = deadline else {
                return Ok(Turn::NotYet);
            };
            let p = join(&self.dir, &pred);
            let watch = match retry(|| client.exists_watched(&p)).await? {
                (None, _) => continue,
                (Some(_), w) => w,
            };
            match tokio::time::timeout_at(deadline, watch).await {
                Err(_) => return Ok(Turn::NotYet),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(e.into()),
            }
        }
    }

    /// Deletes our node (ignoring a node already gone).
    pub async fn leave(&self, client: &Client, me: &str) -> Result<()> {
        let p = join(&self.dir, me);
        match retry(|| client.delete(&p, None)).await {
            Ok(()) | Err(zk_client::Error::NoNode { .. }) => Ok(()),
            Err(e) if e.is_terminal() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Identifiers of all contenders of `kinds` in queue order.
    pub async fn contenders(client: &Client, dir: &str, kinds: &[&str]) -> Result<Vec<String>> {
        let children = match retry(|| client.get_children(dir, false)).await {
            Ok(c) => c,
            Err(zk_client::Error::NoNode { .. }) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut seqs: Vec<(i64, String)> = children
            .into_iter()
            .filter_map(|c| sequence(&c, kinds).map(|s| (s, c)))
            .collect();
        seqs.sort();
        let mut out = Vec::new();
        for (_, c) in seqs {
            let p = join(dir, &c);
            match retry(|| client.get_data(&p, false)).await {
                Ok((d, _)) => out.push(String::from_utf8_lossy(&d).into_owned()),
                Err(zk_client::Error::NoNode { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kazoo_names() {
        let n = "0123456789abcdef0123456789abcdef__lock__0000000042";
        assert_eq!(sequence(n, &[LOCK]), Some(42));
        assert_eq!(sequence(n, &[RLOCK]), None);
        assert_eq!(sequence("x__rlock__0000000007", &[LOCK, RLOCK]), Some(7));
        assert_eq!(sequence("x__lock__-000000007", &[LOCK]), None);
        assert_eq!(sequence("x__lock__-0000000007", &[LOCK]), Some(-7));
        assert_eq!(sequence("lease", &[LOCK]), None);
        assert_eq!(sequence("x__lock__00000000a7", &[LOCK]), None);
    }
}
