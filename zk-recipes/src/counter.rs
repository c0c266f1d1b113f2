//! A shared counter in kazoo's layout: the value is the node's data as ASCII decimal
//! (kazoo `Counter`), changed by compare-and-set on the node version.

use zk_client::{Acl, CreateMode};

use crate::error::{Error, Result};
use crate::session::Session;
use crate::util::{ensure_path, parent, retry};

/// A counter at a path.
#[derive(Debug, Clone)]
pub struct Counter {
    session: Session,
    path: String,
}

fn parse(path: &str, data: &[u8]) -> Result<i64> {
    if data.is_empty() {
        return Ok(0);
    }
    std::str::from_utf8(data)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| Error::Decode {
            path: path.to_owned(),
            reason: "not an ASCII integer".into(),
        })
}

impl Counter {
    /// The counter at `path` (created as 0 on first use).
    pub fn new(session: &Session, path: &str) -> Self {
        Counter {
            session: session.clone(),
            path: path.to_owned(),
        }
    }

    /// The current value and its version.
    pub async fn get(&self) -> Result<(i64, i32)> {
        let client = self.session.live_client().await?;
        loop {
            match retry(|| client.get_data(&self.path, false)).await {
                Ok((d, st)) => return Ok((parse(&self.path, &d)?, st.version)),
                Err(zk_client::Error::NoNode { .. }) => {
                    ensure_path(&client, parent(&self.path)).await?;
                    let acl = Acl::open_unsafe();
                    match retry(|| client.create(&self.path, b"0", &acl, CreateMode::Persistent))
                        .await
                    {
                        Ok(_) | Err(zk_client::Error::NodeExists { .. }) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Adds `delta` atomically (CAS loop on the version); returns (before, after).
    pub async fn add(&self, delta: i64) -> Result<(i64, i64)> {
        let client = self.session.live_client().await?;
        loop {
            let (v, version) = self.get().await?;
            let next = v
                .checked_add(delta)
                .ok_or_else(|| Error::InvalidArgument("counter overflow".into()))?;
            match client
                .set_data(&self.path, next.to_string().as_bytes(), Some(version))
                .await
            {
                Ok(_) => return Ok((v, next)),
                // Lost the race, or the reply: read again (a lost reply that was applied
                // shows up as a newer version, and we add again, as kazoo does).
                Err(zk_client::Error::BadVersion { .. }) => {}
                Err(e) if e.is_retryable() => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}
