//! A semaphore in kazoo's layout (`kazoo.recipe.lock.Semaphore`): the node `<path>` holds
//! the lease count as ASCII, leases are ephemeral `<path>/<token>` nodes (data =
//! identifier), and acquirers take turns through the lock `<path>-__lock__` so the count
//! is checked and the lease created without races.

use std::time::Duration;

use zk_client::{Acl, CreateMode};

use crate::error::{Error, Result};
use crate::lock::Lock;
use crate::session::Session;
use crate::util::{ensure_path, join, retry, token};

/// A semaphore with `max_leases` leases.
#[derive(Debug)]
pub struct Semaphore {
    session: Session,
    path: String,
    max_leases: usize,
    identifier: String,
    lease: String,
    lock: Lock,
}

impl Semaphore {
    /// The semaphore at `path` with `max_leases` leases.
    pub fn new(session: &Session, path: &str, identifier: &str, max_leases: usize) -> Self {
        Semaphore {
            session: session.clone(),
            path: path.to_owned(),
            max_leases,
            identifier: identifier.to_owned(),
            lease: join(path, &token()),
            lock: Lock::new(session, &format!("{path}-__lock__"), identifier),
        }
    }

    async fn ensure(&self, client: &zk_client::Client) -> Result<()> {
        ensure_path(client, &self.path).await?;
        let (data, _) = retry(|| client.get_data(&self.path, false)).await?;
        if data.is_empty() {
            let max = self.max_leases.to_string();
            retry(|| client.set_data(&self.path, max.as_bytes(), None)).await?;
        } else if std::str::from_utf8(&data).ok().and_then(|s| s.parse().ok())
            != Some(self.max_leases)
        {
            return Err(Error::InvalidArgument(format!(
                "inconsistent max leases: stored {:?}, expected {}",
                String::from_utf8_lossy(&data),
                self.max_leases
            )));
        }
        Ok(())
    }

    /// Takes a lease, waiting up to `timeout`; true if taken.
    pub async fn acquire(&self, timeout: Duration) -> Result<bool> {
        let deadline = tokio::time::Instant::now() + timeout;
        let client = self.session.live_client().await?;
        self.ensure(&client).await?;
        if retry(|| client.exists(&self.lease, false)).await?.is_some() {
            return Ok(true);
        }
        if !self.lock.try_acquire(timeout).await? {
            return Ok(false);
        }
        let acl = Acl::open_unsafe();
        let result = async {
            loop {
                let (children, _, w) = retry(|| client.get_children_watched(&self.path)).await?;
                if children.len() < self.max_leases {
                    match retry(|| {
                        client.create(
                            &self.lease,
                            self.identifier.as_bytes(),
                            &acl,
                            CreateMode::Ephemeral,
                        )
                    })
                    .await
                    {
                        Ok(_) | Err(zk_client::Error::NodeExists { .. }) => return Ok(true),
                        Err(e) => return Err(Error::from(e)),
                    }
                }
                if tokio::time::timeout_at(deadline, w).await.is_err() {
                    return Ok(false);
                }
            }
        }
        .await;
        self.lock.release().await?;
        result
    }

    /// Returns the lease.
    pub async fn release(&self) -> Result<()> {
        let client = self.session.live_client().await?;
        match retry(|| client.delete(&self.lease, None)).await {
            Ok(()) | Err(zk_client::Error::NoNode { .. }) => Ok(()),
            Err(e) if e.is_terminal() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Identifiers of the lease holders.
    pub async fn holders(&self) -> Result<Vec<String>> {
        let client = self.session.live_client().await?;
        let children = match retry(|| client.get_children(&self.path, false)).await {
            Ok(c) => c,
            Err(zk_client::Error::NoNode { .. }) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut out = Vec::new();
        for c in children {
            let p = join(&self.path, &c);
            if let Ok((d, _)) = retry(|| client.get_data(&p, false)).await {
                out.push(String::from_utf8_lossy(&d).into_owned());
            }
        }
        out.sort();
        Ok(out)
    }
}
