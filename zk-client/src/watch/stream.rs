//! The receiving ends handed to users: one-shot futures and event streams.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;
use tokio::sync::{mpsc, oneshot};

use super::WatchedEvent;
use crate::error::{Error, Result};

/// Resolves when a one-shot watch fires (or is removed: `DataWatchRemoved` /
/// `ChildWatchRemoved`), or fails when the session ends first.
///
/// ```no_run
/// # async fn f(client: zk_client::Client) -> zk_client::Result<()> {
/// let (_data, _stat, watch) = client.get_data_watched("/config").await?;
/// let event = watch.await?;
/// println!("{:?} on {}", event.event_type, event.path);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct WatchFuture {
    rx: oneshot::Receiver<Result<WatchedEvent>>,
}

impl WatchFuture {
    pub(crate) fn new(rx: oneshot::Receiver<Result<WatchedEvent>>) -> Self {
        WatchFuture { rx }
    }
}

impl Future for WatchFuture {
    type Output = Result<WatchedEvent>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(Error::Closed)))
    }
}

/// A persistent (or persistent-recursive) watch: every matching event until the watch is
/// removed (the stream yields `PersistentWatchRemoved` and ends) or the session ends (it
/// yields a state event and ends). Dropping it stops delivery; the server keeps the watch
/// until [`crate::Client::remove_watches`] or the next reconnect, which no longer
/// re-registers it.
///
/// ```no_run
/// # async fn f(client: zk_client::Client) -> zk_client::Result<()> {
/// use futures::StreamExt;
/// use zk_proto::AddWatchMode;
/// let mut w = client.add_watch("/app", AddWatchMode::PersistentRecursive).await?;
/// while let Some(ev) = w.next().await {
///     println!("{:?} {}", ev.event_type, ev.path);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct PersistentWatch {
    path: String,
    rx: mpsc::UnboundedReceiver<WatchedEvent>,
}

impl PersistentWatch {
    pub(crate) fn new(path: String, rx: mpsc::UnboundedReceiver<WatchedEvent>) -> Self {
        PersistentWatch { path, rx }
    }

    /// The watched path.
    pub fn path(&self) -> &str {
        &self.path
    }
}

impl Stream for PersistentWatch {
    type Item = WatchedEvent;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<WatchedEvent>> {
        self.rx.poll_recv(cx)
    }
}

/// The session's event stream: state changes (`EventType::None`) and the events of
/// `watch: true` calls, in order, never dropped (unbounded).
#[derive(Debug)]
pub struct EventStream {
    rx: mpsc::UnboundedReceiver<WatchedEvent>,
}

impl EventStream {
    pub(crate) fn new(rx: mpsc::UnboundedReceiver<WatchedEvent>) -> Self {
        EventStream { rx }
    }

    /// The next event; `None` once the session has ended and everything was delivered.
    pub async fn recv(&mut self) -> Option<WatchedEvent> {
        self.rx.recv().await
    }
}

impl Stream for EventStream {
    type Item = WatchedEvent;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<WatchedEvent>> {
        self.rx.poll_recv(cx)
    }
}
