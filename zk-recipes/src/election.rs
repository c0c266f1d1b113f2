//! Leader election in kazoo's layout: an election is a lock (`<path>/<token>__lock__<seq>`,
//! data = identifier), so Rust processes and `kazoo.recipe.election.Election` contenders
//! share one election. The lowest sequence number leads.
//!
//! [`LeaderLatch`] contends in the background for as long as it lives: it reports
//! leadership as a [`Leadership`] stream and state, steps down when its session expires
//! and contends again on the new session. Each term has a [`FencingToken`]
//! ([`LeaderLatch::fencing_token`]), greater for every later leader.

use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::contender::{Contender, Turn, LOCK};
use crate::error::{Error, Result};
use crate::events::{EventStream, Subscribers};
use crate::fencing::FencingToken;
use crate::session::{Session, SessionEvent, SessionWatcher};

/// A leadership change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leadership {
    /// This contender became the leader.
    Elected,
    /// The connection dropped while leading: leadership is uncertain; pause leader work
    /// until `Resumed` or `Revoked`.
    Suspended,
    /// Reconnected to the same session while leading: still the leader.
    Resumed,
    /// No longer the leader (session expired, resigned, node deleted, or closed).
    Revoked,
}

enum Cmd {
    Resign,
    Close(tokio::sync::oneshot::Sender<()>),
}

/// A background contender (see the module docs). Leaves the election when dropped or
/// closed.
pub struct LeaderLatch {
    session: Session,
    dir: String,
    state: watch::Receiver<bool>,
    /// The token of the current term; `None` while not leading.
    token: std::sync::Arc<std::sync::Mutex<Option<FencingToken>>>,
    events: std::sync::Arc<Subscribers<Leadership>>,
    cmd: mpsc::UnboundedSender<Cmd>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for LeaderLatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderLatch")
            .field("path", &self.dir)
            .field("leader", &self.is_leader())
            .finish()
    }
}

impl LeaderLatch {
    /// Joins the election at `path` as `identifier`.
    pub fn start(session: &Session, path: &str, identifier: &str) -> Self {
        let (state_tx, state) = watch::channel(false);
        let events = std::sync::Arc::new(Subscribers::new());
        let (cmd, cmd_rx) = mpsc::unbounded_channel();
        let contender = Contender::new(path, LOCK, &[LOCK], identifier.as_bytes());
        let token = std::sync::Arc::new(std::sync::Mutex::new(None));
        let task = tokio::spawn(run(
            contender,
            session.watcher(),
            state_tx,
            events.clone(),
            cmd_rx,
            token.clone(),
        ));
        LeaderLatch {
            session: session.clone(),
            dir: path.to_owned(),
            state,
            token,
            events,
            cmd,
            task,
        }
    }

    /// True while leading (and not suspended).
    pub fn is_leader(&self) -> bool {
        *self.state.borrow()
    }

    /// The fencing token of the current leadership term, while leading (see
    /// [`crate::fencing`]): greater for every later leader, so downstream systems can
    /// refuse a deposed leader that has not noticed yet. The same through `Suspended` /
    /// `Resumed` on one session.
    pub fn fencing_token(&self) -> Option<FencingToken> {
        self.token.lock().ok().and_then(|t| *t)
    }

    /// A watch of [`Self::is_leader`].
    pub fn leader_watch(&self) -> watch::Receiver<bool> {
        self.state.clone()
    }

    /// Leadership changes from now on.
    pub fn events(&self) -> EventStream<Leadership> {
        self.events.subscribe()
    }

    /// Waits until leading, up to `timeout`.
    pub async fn wait_leader(&self, timeout: Duration) -> Result<()> {
        let mut rx = self.state.clone();
        tokio::time::timeout(timeout, rx.wait_for(|l| *l))
            .await
            .map_err(|_| Error::Timeout)?
            .map_err(|_| Error::Closed)?;
        Ok(())
    }

    /// Gives up leadership (or the place in the queue) and queues again at the back.
    pub fn resign(&self) {
        let _ = self.cmd.send(Cmd::Resign);
    }

    /// Identifiers of the contenders, leader first.
    pub async fn contenders(&self) -> Result<Vec<String>> {
        Contender::contenders(&self.session.live_client().await?, &self.dir, &[LOCK]).await
    }

    /// Leaves the election (deleting our node; leadership, if held, is revoked).
    pub async fn close(self) -> Result<()> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.cmd.send(Cmd::Close(tx)).is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(10), rx).await;
        }
        Ok(())
    }
}

impl Drop for LeaderLatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Deletes the node of `contender` when the task ends (abort included).
struct LeaveOnDrop {
    contender: Contender,
    node: Option<(zk_client::Client, String)>,
}

impl Drop for LeaveOnDrop {
    fn drop(&mut self) {
        if let Some((client, node)) = self.node.take() {
            let c = self.contender.clone();
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    let _ = c.leave(&client, &node).await;
                });
            }
        }
    }
}

async fn run(
    contender: Contender,
    mut watcher: SessionWatcher,
    state: watch::Sender<bool>,
    events: std::sync::Arc<Subscribers<Leadership>>,
    mut cmd: mpsc::UnboundedReceiver<Cmd>,
    token: std::sync::Arc<std::sync::Mutex<Option<FencingToken>>>,
) {
    let mut guard = LeaveOnDrop {
        contender: contender.clone(),
        node: None,
    };
    // The token of our node; published as the term's token exactly while leading, so a
    // latch never shows a token it does not lead with (a newer node's token would be
    // greater than the real leader's).
    let node_token: std::sync::Mutex<Option<FencingToken>> = std::sync::Mutex::new(None);
    let set = |leader: bool, ev: Option<Leadership>| {
        if let Ok(mut t) = token.lock() {
            *t = if leader {
                node_token.lock().ok().and_then(|n| *n)
            } else {
                None
            };
        }
        state.send_replace(leader);
        if let Some(ev) = ev {
            events.emit(ev);
        }
    };
    let mut leading = false;
    loop {
        let client = watcher.client();
        // Enter the queue on this session.
        let me = match &guard.node {
            Some((_, n)) => n.clone(),
            None => match contender.enter(&client).await {
                Ok((n, t)) => {
                    if let Ok(mut g) = node_token.lock() {
                        *g = Some(t);
                    }
                    guard.node = Some((client.clone(), n.clone()));
                    n
                }
                Err(_) => {
                    if wait_session(&mut watcher, &mut leading, &set).await {
                        continue;
                    }
                    return;
                }
            },
        };
        // Wait for our turn, staying responsive to commands and session events.
        let far = tokio::time::Instant::now() + Duration::from_secs(86400 * 365);
        let turn = tokio::select! {
            t = contender.wait_turn(&client, &me, Some(far)) => t,
            c = cmd.recv() => {
                match c {
                    Some(Cmd::Resign) => {
                        let _ = contender.leave(&client, &me).await;
                        guard.node = None;
                        continue;
                    }
                    Some(Cmd::Close(ack)) => {
                        let _ = contender.leave(&client, &me).await;
                        guard.node = None;
                        let _ = ack.send(());
                        return;
                    }
                    None => return,
                }
            }
        };
        match turn {
            Ok(Turn::Ours) => {}
            Ok(Turn::NotYet) => continue,
            Err(_) => {
                guard.node = None;
                if !client.state().is_terminal() {
                    // Our node was deleted by someone else: queue again.
                    continue;
                }
                if wait_session(&mut watcher, &mut leading, &set).await {
                    continue;
                }
                return;
            }
        }
        leading = true;
        set(true, Some(Leadership::Elected));
        // Lead until something ends it.
        let node_path = crate::util::join(&contender.dir, &me);
        loop {
            let gone = async {
                match client.exists_watched(&node_path).await {
                    Ok((Some(_), w)) => {
                        let _ = w.await;
                    }
                    Ok((None, _)) => {}
                    Err(_) => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                ev = watcher.next() => match ev {
                    SessionEvent::Suspended => set(false, Some(Leadership::Suspended)),
                    SessionEvent::Reconnected => {
                        if matches!(client.exists(&node_path, false).await, Ok(Some(_))) {
                            set(true, Some(Leadership::Resumed));
                        } else {
                            leading = false;
                            guard.node = None;
                            set(false, Some(Leadership::Revoked));
                            break;
                        }
                    }
                    SessionEvent::Expired => {
                        leading = false;
                        guard.node = None;
                        set(false, Some(Leadership::Revoked));
                    }
                    SessionEvent::NewSession { .. } => {
                        if leading {
                            leading = false;
                            set(false, Some(Leadership::Revoked));
                        }
                        guard.node = None;
                        break;
                    }
                    SessionEvent::Closed => {
                        if leading {
                            set(false, Some(Leadership::Revoked));
                        }
                        return;
                    }
                },
                _ = gone, if leading && client.state().is_connected() => {
                    if !matches!(client.exists(&node_path, false).await, Ok(Some(_))) {
                        leading = false;
                        guard.node = None;
                        set(false, Some(Leadership::Revoked));
                        break;
                    }
                }
                c = cmd.recv() => match c {
                    // Give up leadership locally before deleting the node: once it is
                    // gone the next contender may be elected, and two latches must never
                    // both report leading.
                    Some(Cmd::Resign) => {
                        leading = false;
                        set(false, Some(Leadership::Revoked));
                        let _ = contender.leave(&client, &me).await;
                        guard.node = None;
                        break;
                    }
                    Some(Cmd::Close(ack)) => {
                        set(false, Some(Leadership::Revoked));
                        let _ = contender.leave(&client, &me).await;
                        guard.node = None;
                        let _ = ack.send(());
                        return;
                    }
                    None => return,
                },
            }
            if !leading {
                // Expired: wait for the new session.
                if wait_session(&mut watcher, &mut leading, &set).await {
                    break;
                }
                return;
            }
        }
    }
}

/// Waits for the next session generation; false when the session is closed.
async fn wait_session(
    watcher: &mut SessionWatcher,
    leading: &mut bool,
    set: &impl Fn(bool, Option<Leadership>),
) -> bool {
    loop {
        match watcher.next().await {
            SessionEvent::NewSession { .. } => return true,
            SessionEvent::Closed => return false,
            SessionEvent::Reconnected if !watcher.client().state().is_terminal() => return true,
            SessionEvent::Expired if *leading => {
                *leading = false;
                set(false, Some(Leadership::Revoked));
            }
            _ => {}
        }
    }
}
