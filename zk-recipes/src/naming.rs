//! Naming service: names bound to values (e.g. endpoints) under a root, `<root>/<name>`.
//!
//! A binding is persistent ([`Names::bind`]) or lives as long as this process keeps it
//! ([`Names::bind_ephemeral`], re-created after session expiry). [`Names::unique`]
//! generates unique names from sequential nodes (`<prefix><10-digit counter>`).

use bytes::Bytes;
use zk_client::{Acl, CreateMode};

use crate::ephemeral::EphemeralNode;
use crate::error::{Error, Result};
use crate::session::Session;
use crate::util::{ensure_path, join, name, retry};

/// A namespace of names at a root path.
#[derive(Debug, Clone)]
pub struct Names {
    session: Session,
    root: String,
}

fn check(name: &str) -> Result<()> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(Error::InvalidArgument(format!("bad name {name:?}")));
    }
    Ok(())
}

impl Names {
    /// The namespace at `root`.
    pub fn new(session: &Session, root: &str) -> Self {
        Names {
            session: session.clone(),
            root: root.to_owned(),
        }
    }

    /// Binds `name` to `value` persistently (rebinding replaces the value).
    pub async fn bind(&self, name: &str, value: &[u8]) -> Result<()> {
        check(name)?;
        let client = self.session.live_client().await?;
        let path = join(&self.root, name);
        loop {
            match retry(|| client.set_data(&path, value, None)).await {
                Ok(_) => return Ok(()),
                Err(zk_client::Error::NoNode { .. }) => {
                    ensure_path(&client, &self.root).await?;
                    let acl = Acl::open_unsafe();
                    match retry(|| client.create(&path, value, &acl, CreateMode::Persistent)).await
                    {
                        Ok(_) => return Ok(()),
                        Err(zk_client::Error::NodeExists { .. }) => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Binds `name` to `value` for as long as the returned handle lives (an ephemeral
    /// node, re-created on a new session). Fails with `NodeExists` if bound elsewhere.
    pub async fn bind_ephemeral(&self, name: &str, value: &[u8]) -> Result<EphemeralNode> {
        check(name)?;
        EphemeralNode::create(&self.session, &join(&self.root, name), value).await
    }

    /// Creates a fresh unique name `<prefix><counter>` bound to `value` (persistent).
    pub async fn unique(&self, prefix: &str, value: &[u8]) -> Result<String> {
        if prefix.contains('/') {
            return Err(Error::InvalidArgument(format!("bad prefix {prefix:?}")));
        }
        let client = self.session.live_client().await?;
        ensure_path(&client, &self.root).await?;
        // Not retried: a lost reply could leave a second name behind.
        let p = client
            .create(
                &join(&self.root, prefix),
                value,
                &Acl::open_unsafe(),
                CreateMode::PersistentSequential,
            )
            .await?;
        Ok(name(&p).to_owned())
    }

    /// The value bound to `name` (`None` if unbound).
    pub async fn resolve(&self, name: &str) -> Result<Option<Bytes>> {
        check(name)?;
        let client = self.session.live_client().await?;
        let path = join(&self.root, name);
        match retry(|| client.get_data(&path, false)).await {
            Ok((data, _)) => Ok(Some(data)),
            Err(zk_client::Error::NoNode { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Every bound name, sorted.
    pub async fn list(&self) -> Result<Vec<String>> {
        let client = self.session.live_client().await?;
        match retry(|| client.get_children(&self.root, false)).await {
            Ok(mut v) => {
                v.sort();
                Ok(v)
            }
            Err(zk_client::Error::NoNode { .. }) => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes a binding; true if it existed.
    pub async fn unbind(&self, name: &str) -> Result<bool> {
        check(name)?;
        let client = self.session.live_client().await?;
        let path = join(&self.root, name);
        match retry(|| client.delete(&path, None)).await {
            Ok(()) => Ok(true),
            Err(zk_client::Error::NoNode { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}
