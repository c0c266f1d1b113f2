//! Config watch: a typed value at a path, read once and then delivered as a stream of new
//! versions.
//!
//! Guarantees of [`Config::watch`]: versions arrive in increasing `mzxid` order and none
//! twice, across reconnects, failover (a lagging server never moves the value back) and
//! session expiry (the watch is set again on the new session and the node re-read, so a
//! change made meanwhile is delivered). Like every ZooKeeper watch it is level-triggered:
//! when several writes land between two reads, the reader sees the latest of them, so the
//! stream always ends on the current value but may skip intermediate ones.

use std::marker::PhantomData;

use bytes::Bytes;
use zk_client::{Acl, CreateMode};

use crate::error::{Error, Result};
use crate::events::EventStream;
use crate::session::{Session, SessionEvent};
use crate::util::{ensure_path, parent, retry};

/// A type stored as node data.
pub trait ConfigValue: Sized + Clone + Send + Sync + 'static {
    /// Decodes node data.
    fn decode(data: &[u8]) -> std::result::Result<Self, String>;
    /// Encodes for storing.
    fn encode(&self) -> std::result::Result<Vec<u8>, String>;
}

impl ConfigValue for Bytes {
    fn decode(data: &[u8]) -> std::result::Result<Self, String> {
        Ok(Bytes::copy_from_slice(data))
    }
    fn encode(&self) -> std::result::Result<Vec<u8>, String> {
        Ok(self.to_vec())
    }
}

impl ConfigValue for String {
    fn decode(data: &[u8]) -> std::result::Result<Self, String> {
        String::from_utf8(data.to_vec()).map_err(|e| e.to_string())
    }
    fn encode(&self) -> std::result::Result<Vec<u8>, String> {
        Ok(self.as_bytes().to_vec())
    }
}

/// A serde value stored as JSON (feature `json`).
#[cfg(feature = "json")]
#[derive(Debug, Clone, PartialEq)]
pub struct Json<T>(pub T);

#[cfg(feature = "json")]
impl<T> ConfigValue for Json<T>
where
    T: serde::Serialize + serde::de::DeserializeOwned + Clone + Send + Sync + 'static,
{
    fn decode(data: &[u8]) -> std::result::Result<Self, String> {
        serde_json::from_slice(data)
            .map(Json)
            .map_err(|e| e.to_string())
    }
    fn encode(&self) -> std::result::Result<Vec<u8>, String> {
        serde_json::to_vec(&self.0).map_err(|e| e.to_string())
    }
}

/// A value with the node version it was read at.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    /// The value.
    pub value: T,
    /// The node's data version (for conditional writes).
    pub version: i32,
    /// The zxid of the write that produced it (orders values across node re-creation).
    pub mzxid: i64,
}

/// One item of a [`Config::watch`] stream.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigEvent<T> {
    /// The current value (first the initial one, then each newer one).
    Changed(Versioned<T>),
    /// The node does not exist (initially, or it was deleted).
    Absent,
    /// The node holds data that does not decode; the next valid version is delivered.
    Invalid {
        /// Version of the bad data.
        mzxid: i64,
        /// Decoder message.
        reason: String,
    },
    /// A connection or session event (for information; the stream carries on).
    Session(SessionEvent),
}

/// A typed config value at a path.
///
/// ```no_run
/// # async fn f(session: zk_recipes::Session) -> zk_recipes::Result<()> {
/// use futures::StreamExt;
/// use zk_recipes::config::{Config, ConfigEvent};
/// let cfg: Config<String> = Config::new(&session, "/app/config");
/// cfg.set(&"v1".to_string(), None).await?;
/// let mut updates = cfg.watch();
/// while let Some(ev) = updates.next().await {
///     if let ConfigEvent::Changed(v) = ev {
///         println!("config is now {}", v.value);
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Config<T> {
    session: Session,
    path: String,
    _t: PhantomData<fn() -> T>,
}

impl<T: ConfigValue> Config<T> {
    /// The config at `path`.
    pub fn new(session: &Session, path: &str) -> Self {
        Config {
            session: session.clone(),
            path: path.to_owned(),
            _t: PhantomData,
        }
    }

    /// The path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Reads the current value (`None` if the node does not exist).
    pub async fn get(&self) -> Result<Option<Versioned<T>>> {
        let client = self.session.live_client().await?;
        match retry(|| client.get_data(&self.path, false)).await {
            Ok((data, stat)) => Ok(Some(Versioned {
                value: self.decode(&data)?,
                version: stat.version,
                mzxid: stat.mzxid,
            })),
            Err(zk_client::Error::NoNode { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn decode(&self, data: &[u8]) -> Result<T> {
        T::decode(data).map_err(|reason| Error::Decode {
            path: self.path.clone(),
            reason,
        })
    }

    /// Writes a value, creating the node (and parents) if missing. With `expected`, the
    /// write happens only if the node is at that version (`BadVersion` otherwise).
    /// Returns the new version.
    pub async fn set(&self, value: &T, expected: Option<i32>) -> Result<i32> {
        let data = value.encode().map_err(Error::Encode)?;
        let client = self.session.live_client().await?;
        loop {
            match retry(|| client.set_data(&self.path, &data, expected)).await {
                Ok(stat) => return Ok(stat.version),
                Err(zk_client::Error::NoNode { .. }) if expected.is_none() => {
                    ensure_path(&client, parent(&self.path)).await?;
                    match client
                        .create(
                            &self.path,
                            &data,
                            &Acl::open_unsafe(),
                            CreateMode::Persistent,
                        )
                        .await
                    {
                        Ok(_) => return Ok(0),
                        Err(zk_client::Error::NodeExists { .. }) => continue,
                        Err(e) if e.is_retryable() => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The current value, then every newer version (see the module docs for the
    /// guarantees). The watching task stops when the stream is dropped.
    pub fn watch(&self) -> ConfigStream<T> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let this = self.clone();
        let task = tokio::spawn(async move { this.run(tx).await });
        ConfigStream {
            inner: EventStream::from_rx(rx),
            task,
        }
    }

    async fn run(self, tx: tokio::sync::mpsc::UnboundedSender<ConfigEvent<T>>) {
        let mut watcher = self.session.watcher();
        // Highest mzxid delivered; `absent` when the last delivery was Absent.
        let mut last: i64 = i64::MIN;
        let mut absent_sent = false;
        loop {
            let client = watcher.client();
            let watch = match client.get_data_watched(&self.path).await {
                Ok((data, stat, w)) => {
                    if stat.mzxid > last {
                        last = stat.mzxid;
                        absent_sent = false;
                        let ev = match T::decode(&data) {
                            Ok(value) => ConfigEvent::Changed(Versioned {
                                value,
                                version: stat.version,
                                mzxid: stat.mzxid,
                            }),
                            Err(reason) => ConfigEvent::Invalid {
                                mzxid: stat.mzxid,
                                reason,
                            },
                        };
                        if tx.send(ev).is_err() {
                            return;
                        }
                    }
                    Some(w)
                }
                Err(zk_client::Error::NoNode { .. }) => {
                    match client.exists_watched(&self.path).await {
                        Ok((Some(_), _)) => continue,
                        Ok((None, w)) => {
                            if !absent_sent {
                                absent_sent = true;
                                if tx.send(ConfigEvent::Absent).is_err() {
                                    return;
                                }
                            }
                            Some(w)
                        }
                        Err(_) => None,
                    }
                }
                Err(_) => None,
            };
            match watch {
                Some(w) => {
                    if !self.wait_watch(w, &mut watcher, &tx).await {
                        return;
                    }
                }
                // A transient failure or a dead session: wait for a session event or
                // retry shortly.
                None => tokio::select! {
                    ev = watcher.next() => {
                        if tx.send(ConfigEvent::Session(ev)).is_err() || ev == SessionEvent::Closed {
                            return;
                        }
                    }
                    _ = tokio::time::sleep(std::time::Duration::from_millis(200)) => {}
                },
            }
        }
    }

    /// Keeps waiting on `watch` through session events; false when the stream is over.
    async fn wait_watch(
        &self,
        mut w: zk_client::WatchFuture,
        watcher: &mut crate::session::SessionWatcher,
        tx: &tokio::sync::mpsc::UnboundedSender<ConfigEvent<T>>,
    ) -> bool {
        loop {
            tokio::select! {
                _ = &mut w => return true,
                ev = watcher.next() => {
                    if tx.send(ConfigEvent::Session(ev)).is_err() || ev == SessionEvent::Closed {
                        return false;
                    }
                    if matches!(ev, SessionEvent::NewSession { .. }) {
                        return true;
                    }
                }
            }
        }
    }
}

/// The stream returned by [`Config::watch`].
#[derive(Debug)]
pub struct ConfigStream<T> {
    inner: EventStream<ConfigEvent<T>>,
    task: tokio::task::JoinHandle<()>,
}

impl<T> ConfigStream<T> {
    /// The next event.
    pub async fn recv(&mut self) -> Option<ConfigEvent<T>> {
        self.inner.recv().await
    }
}

impl<T> Drop for ConfigStream<T> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl<T> futures::Stream for ConfigStream<T> {
    type Item = ConfigEvent<T>;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        std::pin::Pin::new(&mut self.inner).poll_next(cx)
    }
}
