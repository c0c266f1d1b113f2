//! [`EphemeralNode`]: an ephemeral node this process keeps present across connection loss
//! and session expiry. Membership, service registrations and ephemeral names are built
//! on it.
//!
//! After an expiry the node is created again on the new session with the latest data
//! given to [`EphemeralNode::set_data`]; if someone deletes it while the session lives it
//! is re-created too. Every such step is reported on [`EphemeralNode::events`].

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::task::JoinHandle;
use zk_client::{Acl, Client, CreateMode, WatchFuture};

use crate::error::{Error, Result};
use crate::events::{EventStream, Subscribers};
use crate::session::{Session, SessionEvent, SessionWatcher};
use crate::util::{ensure_path, parent, retry};

/// What happened to an [`EphemeralNode`].
#[derive(Debug, Clone, PartialEq)]
pub enum EphemeralEvent {
    /// A connection or session event.
    Session(SessionEvent),
    /// The node was created again (new session, or after someone deleted it).
    Recreated,
    /// Re-creating failed (e.g. another session owns a node at the path); retried later.
    RecreateFailed(Error),
}

struct Shared {
    path: String,
    data: Mutex<Bytes>,
    /// Version of our node, to make data updates conditional on it.
    version: Mutex<Option<i32>>,
    events: Subscribers<EphemeralEvent>,
}

/// An ephemeral node kept alive by this process (see the module docs). Deleted by
/// [`EphemeralNode::delete`]; dropping it stops the upkeep and deletes it in the background.
pub struct EphemeralNode {
    shared: Arc<Shared>,
    session: Session,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for EphemeralNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EphemeralNode")
            .field("path", &self.shared.path)
            .finish()
    }
}

/// Creates our node, or adopts it when a retried create finds it already made by this
/// session. Returns its version.
async fn create_owned(client: &Client, path: &str, data: &[u8]) -> zk_client::Result<i32> {
    ensure_path(client, parent(path)).await?;
    loop {
        match client
            .create_with_stat(path, data, &Acl::open_unsafe(), CreateMode::Ephemeral)
            .await
        {
            Ok((_, stat)) => return Ok(stat.version),
            Err(zk_client::Error::NodeExists { .. }) => {
                match retry(|| client.exists(path, false)).await? {
                    Some(stat) if stat.ephemeral_owner == client.session_id() => {
                        // Ours (an earlier attempt landed): make sure it has the data.
                        let st = retry(|| client.set_data(path, data, None)).await?;
                        return Ok(st.version);
                    }
                    Some(_) => {
                        return Err(zk_client::Error::NodeExists {
                            path: path.to_owned(),
                        })
                    }
                    None => continue,
                }
            }
            Err(e) if e.is_retryable() => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => return Err(e),
        }
    }
}

impl EphemeralNode {
    /// Creates the ephemeral node `path` (parents are created as persistent nodes) and
    /// starts keeping it. Fails with `NodeExists` if another session owns the path.
    pub async fn create(session: &Session, path: &str, data: &[u8]) -> Result<EphemeralNode> {
        let watcher = session.watcher();
        let client = watcher.client();
        let version = create_owned(&client, path, data).await?;
        let shared = Arc::new(Shared {
            path: path.to_owned(),
            data: Mutex::new(Bytes::copy_from_slice(data)),
            version: Mutex::new(Some(version)),
            events: Subscribers::new(),
        });
        let task = tokio::spawn(keep(shared.clone(), watcher));
        Ok(EphemeralNode {
            shared,
            session: session.clone(),
            task,
        })
    }

    /// The node's path.
    pub fn path(&self) -> &str {
        &self.shared.path
    }

    /// The data last set (what a re-created node gets).
    pub fn data(&self) -> Bytes {
        self.shared
            .data
            .lock()
            .map(|d| d.clone())
            .unwrap_or_default()
    }

    /// Events of this node from now on.
    pub fn events(&self) -> EventStream<EphemeralEvent> {
        self.shared.events.subscribe()
    }

    /// Replaces the node's data. The write is conditional on the version we last wrote,
    /// so a racing writer is noticed (and overwritten: the node is ours). While the node
    /// is missing (between an expiry and its re-creation) only the stored data changes.
    pub async fn set_data(&self, data: &[u8]) -> Result<()> {
        if let Ok(mut d) = self.shared.data.lock() {
            *d = Bytes::copy_from_slice(data);
        }
        let client = self.session.live_client().await?;
        let path = &self.shared.path;
        loop {
            let expected = self.shared.version.lock().ok().and_then(|v| *v);
            match retry(|| client.set_data(path, data, expected)).await {
                Ok(stat) => {
                    if let Ok(mut v) = self.shared.version.lock() {
                        *v = Some(stat.version);
                    }
                    return Ok(());
                }
                Err(zk_client::Error::BadVersion { .. }) => {
                    tracing::debug!(path, "our ephemeral node was changed by someone else");
                    let stat = retry(|| client.exists(path, false)).await?;
                    if let Ok(mut v) = self.shared.version.lock() {
                        *v = stat.map(|s| s.version);
                    }
                }
                // Gone or session gone: the upkeep task re-creates it with this data.
                Err(zk_client::Error::NoNode { .. }) => return Ok(()),
                Err(e) if e.is_terminal() => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Stops the upkeep and deletes the node.
    pub async fn delete(self) -> Result<()> {
        self.task.abort();
        let client = self.session.live_client().await?;
        match retry(|| client.delete(&self.shared.path, None)).await {
            Ok(()) | Err(zk_client::Error::NoNode { .. }) => Ok(()),
            Err(e) if e.is_terminal() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

impl Drop for EphemeralNode {
    fn drop(&mut self) {
        if self.task.is_finished() {
            return;
        }
        self.task.abort();
        let client = self.session.client();
        let path = self.shared.path.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = client.delete(&path, None).await;
            });
        }
    }
}

/// The upkeep: re-create on a new session, and when deleted while the session lives.
async fn keep(shared: Arc<Shared>, mut watcher: SessionWatcher) {
    let mut need_create = false;
    let mut watch: Option<WatchFuture> = None;
    loop {
        let client = watcher.client();
        if need_create {
            let data = shared.data.lock().map(|d| d.clone()).unwrap_or_default();
            match create_owned(&client, &shared.path, &data).await {
                Ok(v) => {
                    if let Ok(mut g) = shared.version.lock() {
                        *g = Some(v);
                    }
                    need_create = false;
                    shared.events.emit(EphemeralEvent::Recreated);
                }
                Err(e) if e.is_terminal() => {}
                Err(e) => {
                    shared.events.emit(EphemeralEvent::RecreateFailed(e.into()));
                }
            }
        }
        // Watch the node so a deletion by someone else is repaired.
        if watch.is_none() && !need_create && client.state().is_connected() {
            match client.exists_watched(&shared.path).await {
                Ok((Some(_), w)) => watch = Some(w),
                Ok((None, _)) => need_create = true,
                Err(_) => {}
            }
        }
        let pause = if need_create || watch.is_none() {
            Duration::from_millis(500)
        } else {
            Duration::from_secs(3600)
        };
        tokio::select! {
            ev = watcher.next() => {
                match ev {
                    SessionEvent::Closed => return,
                    SessionEvent::NewSession { .. } => {
                        need_create = true;
                        watch = None;
                    }
                    SessionEvent::Expired => {
                        if let Ok(mut g) = shared.version.lock() {
                            *g = None;
                        }
                    }
                    SessionEvent::Suspended | SessionEvent::Reconnected => {}
                }
                shared.events.emit(EphemeralEvent::Session(ev));
            }
            r = async { match watch.as_mut() { Some(w) => w.await, None => std::future::pending().await } } => {
                watch = None;
                if let Ok(ev) = r {
                    if ev.event_type == zk_client::EventType::NodeDeleted {
                        need_create = true;
                    }
                }
            }
            _ = tokio::time::sleep(pause) => {}
        }
    }
}
