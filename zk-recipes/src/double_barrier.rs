//! A double barrier in kazoo's layout: participants create ephemeral `<path>/<token>`
//! nodes; `enter` returns once `count` participants are in (the last creates
//! `<path>/ready`); `leave` returns once all have left (lowest-named waits for the
//! highest, the others delete themselves and wait for the lowest).

use std::time::Duration;

use zk_client::{Acl, CreateMode};

use crate::error::{Error, Result};
use crate::session::Session;
use crate::util::{ensure_path, join, retry, token};

/// One participant of a double barrier.
#[derive(Debug)]
pub struct DoubleBarrier {
    session: Session,
    path: String,
    count: usize,
    node: String,
    identifier: String,
}

impl DoubleBarrier {
    /// A participant of the barrier at `path` for `count` participants.
    pub fn new(session: &Session, path: &str, count: usize, identifier: &str) -> Self {
        DoubleBarrier {
            session: session.clone(),
            path: path.to_owned(),
            count,
            node: token(),
            identifier: identifier.to_owned(),
        }
    }

    /// Enters and waits for the others (up to `timeout`).
    pub async fn enter(&self, timeout: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        let client = self.session.live_client().await?;
        ensure_path(&client, &self.path).await?;
        let me = join(&self.path, &self.node);
        let acl = Acl::open_unsafe();
        match retry(|| client.create(&me, self.identifier.as_bytes(), &acl, CreateMode::Ephemeral))
            .await
        {
            Ok(_) | Err(zk_client::Error::NodeExists { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let ready = join(&self.path, "ready");
        let (stat, w) = retry(|| client.exists_watched(&ready)).await?;
        if stat.is_some() {
            return Ok(());
        }
        let children = retry(|| client.get_children(&self.path, false)).await?;
        let present = children.iter().filter(|c| c.as_str() != "ready").count();
        if present >= self.count {
            match retry(|| client.create(&ready, b"", &acl, CreateMode::Persistent)).await {
                Ok(_) | Err(zk_client::Error::NodeExists { .. }) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
        tokio::time::timeout_at(deadline, w)
            .await
            .map_err(|_| Error::Timeout)??;
        Ok(())
    }

    /// Leaves and waits until every participant has left (up to `timeout`).
    pub async fn leave(&self, timeout: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        let client = self.session.live_client().await?;
        let ready = join(&self.path, "ready");
        match retry(|| client.delete(&ready, None)).await {
            Ok(()) | Err(zk_client::Error::NoNode { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let me = join(&self.path, &self.node);
        loop {
            let mut children: Vec<String> = retry(|| client.get_children(&self.path, false))
                .await?
                .into_iter()
                .filter(|c| c != "ready")
                .collect();
            children.sort();
            if children.is_empty() {
                return Ok(());
            }
            if children.len() == 1 && children[0] == self.node {
                match retry(|| client.delete(&me, None)).await {
                    Ok(()) | Err(zk_client::Error::NoNode { .. }) => return Ok(()),
                    Err(e) => return Err(e.into()),
                }
            }
            let target = if children.first() == Some(&self.node) {
                children.last().cloned()
            } else {
                match retry(|| client.delete(&me, None)).await {
                    Ok(()) | Err(zk_client::Error::NoNode { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
                children.first().cloned()
            };
            let Some(target) = target else { continue };
            let tp = join(&self.path, &target);
            let (stat, w) = retry(|| client.exists_watched(&tp)).await?;
            if stat.is_some() {
                tokio::time::timeout_at(deadline, w)
                    .await
                    .map_err(|_| Error::Timeout)??;
            }
        }
    }
}
