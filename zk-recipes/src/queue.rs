//! A distributed FIFO queue with priorities in kazoo's layout (`kazoo.recipe.queue.Queue`):
//! entries are persistent sequential nodes `<path>/entry-<priority:03>-<seq>`; the
//! smallest name is taken first (lower priority number first, then FIFO); a consumer
//! takes an entry by deleting it, so each entry goes to exactly one consumer.

use std::time::Duration;

use bytes::Bytes;
use zk_client::{Acl, CreateMode};

use crate::error::{Error, Result};
use crate::session::Session;
use crate::util::{ensure_path, join, retry};

/// A queue at a path.
#[derive(Debug, Clone)]
pub struct Queue {
    session: Session,
    path: String,
}

impl Queue {
    /// The queue at `path`.
    pub fn new(session: &Session, path: &str) -> Self {
        Queue {
            session: session.clone(),
            path: path.to_owned(),
        }
    }

    /// Appends `value` with `priority` (0..=999, lower first; kazoo's default is 100).
    pub async fn put(&self, value: &[u8], priority: u16) -> Result<()> {
        if priority > 999 {
            return Err(Error::InvalidArgument("priority must be 0..=999".into()));
        }
        let client = self.session.live_client().await?;
        ensure_path(&client, &self.path).await?;
        // Not retried: a lost reply could duplicate the entry.
        client
            .create(
                &join(&self.path, &format!("entry-{priority:03}-")),
                value,
                &Acl::open_unsafe(),
                CreateMode::PersistentSequential,
            )
            .await?;
        Ok(())
    }

    /// Takes the first entry, or `None` if the queue is empty.
    pub async fn take(&self) -> Result<Option<Bytes>> {
        let client = self.session.live_client().await?;
        let mut names = match retry(|| client.get_children(&self.path, false)).await {
            Ok(c) => c,
            Err(zk_client::Error::NoNode { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        names.sort();
        for name in names {
            let p = join(&self.path, &name);
            let (data, stat) = match retry(|| client.get_data(&p, false)).await {
                Ok(v) => v,
                Err(zk_client::Error::NoNode { .. }) => continue,
                Err(e) => return Err(e.into()),
            };
            // Whoever deletes it owns it.
            match client.delete(&p, Some(stat.version)).await {
                Ok(()) => return Ok(Some(data)),
                Err(zk_client::Error::NoNode { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(None)
    }

    /// Waits up to `timeout` for an entry.
    pub async fn take_wait(&self, timeout: Duration) -> Result<Option<Bytes>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(v) = self.take().await? {
                return Ok(Some(v));
            }
            let client = self.session.live_client().await?;
            ensure_path(&client, &self.path).await?;
            let (children, _, w) = retry(|| client.get_children_watched(&self.path)).await?;
            if !children.is_empty() {
                continue;
            }
            if tokio::time::timeout_at(deadline, w).await.is_err() {
                return Ok(None);
            }
        }
    }

    /// Number of entries.
    pub async fn len(&self) -> Result<usize> {
        let client = self.session.live_client().await?;
        match retry(|| client.exists(&self.path, false)).await? {
            Some(st) => Ok(st.num_children.max(0) as usize),
            None => Ok(0),
        }
    }
}
