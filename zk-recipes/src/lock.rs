//! A distributed exclusive lock in kazoo's layout (`<path>/<token>__lock__<seq>`, data =
//! identifier), so Rust and Python (`kazoo.recipe.lock.Lock`) processes can share it.
//!
//! - Fair: contenders get the lock in the order of their sequence numbers.
//! - Herd-free: each waiter watches only its predecessor.
//! - Reentrant within the owner: the same [`Lock`] value (share it with `Arc`) can acquire
//!   again while holding; it is released after as many [`Lock::release`] calls.
//! - Session expiry loses the lock (its node is ephemeral): [`Lock::is_held`] turns false
//!   and [`Lock::lost`] resolves; a waiting `acquire` re-queues on the new session.
//!   After a `Suspended` event the holder cannot know whether it still holds the lock
//!   until `Reconnected` (it does) or `Expired` (it does not).
//! - Fencing: each hold has a [`FencingToken`] ([`Lock::fencing_token`]), greater for
//!   every later holder, so downstream systems can refuse a holder that lost its session
//!   without knowing it (see [`crate::fencing`]).

use std::time::Duration;

use tokio::sync::Mutex;

use crate::contender::{Contender, Turn, LOCK};
use crate::error::{Error, Result};
use crate::fencing::FencingToken;
use crate::session::{Session, SessionEvent};

#[derive(Debug, Default)]
struct Held {
    /// Our node name, the session generation it belongs to and its fencing token.
    node: Option<(String, u64, FencingToken)>,
    holds: usize,
}

/// A distributed lock (see the module docs).
#[derive(Debug)]
pub struct Lock {
    session: Session,
    contender: Contender,
    held: Mutex<Held>,
    /// Generation of the session we hold the lock on and the hold's token, readable
    /// without waiting for an acquire in progress.
    holding: std::sync::Mutex<Option<(u64, FencingToken)>>,
}

impl Lock {
    /// The lock at `path`; `identifier` is shown to other contenders.
    pub fn new(session: &Session, path: &str, identifier: &str) -> Self {
        Lock::with_kind(session, path, identifier, LOCK, &[LOCK])
    }

    pub(crate) fn with_kind(
        session: &Session,
        path: &str,
        identifier: &str,
        kind: &'static str,
        blockers: &'static [&'static str],
    ) -> Self {
        Lock {
            session: session.clone(),
            contender: Contender::new(path, kind, blockers, identifier.as_bytes()),
            held: Mutex::new(Held::default()),
            holding: std::sync::Mutex::new(None),
        }
    }

    /// Waits for the lock.
    pub async fn acquire(&self) -> Result<()> {
        if self.acquire_until(None).await? {
            Ok(())
        } else {
            Err(Error::Timeout)
        }
    }

    /// Tries for up to `timeout` (zero: one look); true if acquired.
    pub async fn try_acquire(&self, timeout: Duration) -> Result<bool> {
        self.acquire_until(Some(tokio::time::Instant::now() + timeout))
            .await
    }

    async fn acquire_until(&self, deadline: Option<tokio::time::Instant>) -> Result<bool> {
        let mut held = self.held.lock().await;
        if held.holds > 0 {
            if self.still_ours(&held) {
                held.holds += 1;
                return Ok(true);
            }
            // The session that held it expired: start over.
            *held = Held::default();
            self.set_holding(None);
        }
        let far = tokio::time::Instant::now() + Duration::from_secs(86400 * 365);
        let wait_until = deadline.unwrap_or(far);
        loop {
            let epoch = self.session.epoch();
            let client = epoch.client.clone();
            let outcome: Result<Turn> = async {
                let me = match &held.node {
                    Some((n, g, _)) if *g == epoch.generation => n.clone(),
                    _ => {
                        let (n, token) = self.contender.enter(&client).await?;
                        held.node = Some((n.clone(), epoch.generation, token));
                        n
                    }
                };
                let wait = (deadline != Some(tokio::time::Instant::now())).then_some(wait_until);
                self.contender.wait_turn(&client, &me, wait).await
            }
            .await;
            match outcome {
                Ok(Turn::Ours) => {
                    held.holds = 1;
                    self.set_holding(held.node.as_ref().map(|(_, g, t)| (*g, *t)));
                    return Ok(true);
                }
                Ok(Turn::NotYet)
                    if tokio::time::Instant::now() >= wait_until || deadline.is_some() =>
                {
                    self.give_up(&mut held).await;
                    return Ok(false);
                }
                Ok(Turn::NotYet) => {}
                // Our node vanished or the session ended: queue again on a live session.
                Err(Error::Zk(e))
                    if matches!(e, zk_client::Error::NoNode { .. }) || e.is_terminal() =>
                {
                    held.node = None;
                    let left = wait_until.saturating_duration_since(tokio::time::Instant::now());
                    if self.session.connected_client(left).await.is_err() {
                        return Ok(false);
                    }
                }
                Err(e) => {
                    self.give_up(&mut held).await;
                    return Err(e);
                }
            }
        }
    }

    fn set_holding(&self, generation: Option<(u64, FencingToken)>) {
        if let Ok(mut h) = self.holding.lock() {
            *h = generation;
        }
    }

    async fn give_up(&self, held: &mut Held) {
        self.set_holding(None);
        if let Some((n, g, _)) = held.node.take() {
            let epoch = self.session.epoch();
            if epoch.generation == g {
                let _ = self.contender.leave(&epoch.client, &n).await;
            }
        }
        held.holds = 0;
    }

    fn still_ours(&self, held: &Held) -> bool {
        let epoch = self.session.epoch();
        matches!(&held.node, Some((_, g, _)) if *g == epoch.generation)
            && !epoch.client.state().is_terminal()
    }

    /// Releases one hold; the node is deleted when the last hold goes. Releasing a lock
    /// lost to session expiry is not an error.
    pub async fn release(&self) -> Result<()> {
        let mut held = self.held.lock().await;
        if held.holds == 0 {
            return Ok(());
        }
        held.holds -= 1;
        if held.holds == 0 {
            self.give_up(&mut held).await;
        }
        Ok(())
    }

    /// True while this owner holds the lock on a live session.
    pub fn is_held(&self) -> bool {
        self.fencing_token().is_some()
    }

    /// The fencing token of the current hold, while held (see [`crate::fencing`]): pass
    /// it with every request made under the lock, so a downstream system can refuse this
    /// holder once a later one has been seen. Greater for every later holder.
    pub fn fencing_token(&self) -> Option<FencingToken> {
        let (generation, token) = self.holding.lock().ok().and_then(|h| *h)?;
        let epoch = self.session.epoch();
        (epoch.generation == generation && !epoch.client.state().is_terminal()).then_some(token)
    }

    /// The token of the last hold even if it has since been lost (e.g. to session
    /// expiry), for a holder that must still present it downstream to learn whether it
    /// has been superseded. `None` before the first acquire and after a release.
    pub fn last_fencing_token(&self) -> Option<FencingToken> {
        self.holding.lock().ok().and_then(|h| *h).map(|(_, t)| t)
    }

    /// Resolves when the session holding the lock expires (or the session is closed).
    pub async fn lost(&self) {
        let mut w = self.session.watcher();
        loop {
            if !self.is_held() {
                return;
            }
            match w.next().await {
                SessionEvent::Expired | SessionEvent::Closed => return,
                SessionEvent::NewSession { .. } => return,
                _ => {}
            }
        }
    }

    /// Identifiers of the contenders in queue order (holder first).
    pub async fn contenders(&self) -> Result<Vec<String>> {
        let client = self.session.live_client().await?;
        Contender::contenders(&client, &self.contender.dir, self.contender.blockers).await
    }
}
