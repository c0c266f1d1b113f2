//! Fan-out of recipe events to any number of subscribers, each an unbounded, lossless
//! [`EventStream`].

use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};

use futures::Stream;
use tokio::sync::mpsc;

/// Senders of one event type.
#[derive(Debug)]
pub(crate) struct Subscribers<T> {
    txs: Mutex<Vec<mpsc::UnboundedSender<T>>>,
}

impl<T: Clone> Subscribers<T> {
    pub(crate) fn new() -> Self {
        Subscribers {
            txs: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn subscribe(&self) -> EventStream<T> {
        let (tx, rx) = mpsc::unbounded_channel();
        if let Ok(mut v) = self.txs.lock() {
            v.push(tx);
        }
        EventStream { rx }
    }

    pub(crate) fn emit(&self, ev: T) {
        if let Ok(mut v) = self.txs.lock() {
            v.retain(|tx| tx.send(ev.clone()).is_ok());
        }
    }
}

/// A stream of recipe events; never drops one. Ends when the recipe stops.
#[derive(Debug)]
pub struct EventStream<T> {
    rx: mpsc::UnboundedReceiver<T>,
}

impl<T> EventStream<T> {
    /// Wraps a receiver.
    pub(crate) fn from_rx(rx: mpsc::UnboundedReceiver<T>) -> Self {
        EventStream { rx }
    }

    /// The next event, `None` once the recipe has stopped.
    pub async fn recv(&mut self) -> Option<T> {
        self.rx.recv().await
    }
}

impl<T> Stream for EventStream<T> {
    type Item = T;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.rx.poll_recv(cx)
    }
}
