//! A barrier in kazoo's layout: the barrier is up while the node at its path exists;
//! waiters wait for its deletion.

use std::time::Duration;

use crate::error::Result;
use crate::session::Session;
use crate::util::{ensure_path, retry};

/// A barrier at a path.
#[derive(Debug, Clone)]
pub struct Barrier {
    session: Session,
    path: String,
}

impl Barrier {
    /// The barrier at `path`.
    pub fn new(session: &Session, path: &str) -> Self {
        Barrier {
            session: session.clone(),
            path: path.to_owned(),
        }
    }

    /// Raises the barrier (creates the node).
    pub async fn raise(&self) -> Result<()> {
        let client = self.session.live_client().await?;
        Ok(ensure_path(&client, &self.path).await?)
    }

    /// Removes the barrier; true if it was up.
    pub async fn remove(&self) -> Result<bool> {
        let client = self.session.live_client().await?;
        match retry(|| client.delete(&self.path, None)).await {
            Ok(()) => Ok(true),
            Err(zk_client::Error::NoNode { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Waits until the barrier is removed (true) or `timeout` passes (false).
    pub async fn wait(&self, timeout: Duration) -> Result<bool> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let client = self.session.live_client().await?;
            let (stat, w) = retry(|| client.exists_watched(&self.path)).await?;
            if stat.is_none() {
                return Ok(true);
            }
            // Fired (or the session ended): look again.
            if tokio::time::timeout_at(deadline, w).await.is_err() {
                return Ok(false);
            }
        }
    }
}
