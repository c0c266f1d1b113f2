//! [`Session`]: a ZooKeeper session that outlives expiry. zk-client sessions are terminal
//! once expired; recipes must re-create their ephemeral nodes and watches on a *new*
//! session, so every recipe works on a `Session`, which replaces an expired client with a
//! fresh one (a new *generation*) and tells everyone through [`SessionWatcher`].

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use zk_client::{Client, ClientBuilder, SessionState};

use crate::error::{Error, Result};

/// What happened to the connection or session underneath a recipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEvent {
    /// The connection dropped; the session (and its ephemeral nodes) may still be alive.
    /// Holders of locks or leadership should pause until `Reconnected` or `Expired`.
    Suspended,
    /// Reconnected to the same session: ephemerals and watches are intact; recipes re-read
    /// what they cache because changes made while disconnected may not all raise events.
    Reconnected,
    /// The session expired: every ephemeral node of it is gone (locks, leadership, leases,
    /// registrations are lost). A new session follows.
    Expired,
    /// A new session is connected; recipes have re-created their nodes and watches on it.
    NewSession {
        /// Generation number of the new session (0 is the first).
        generation: u64,
    },
    /// The [`Session`] was closed; the recipe stops.
    Closed,
}

/// The client of one session generation.
#[derive(Debug, Clone)]
pub struct Epoch {
    /// The client of this generation.
    pub client: Client,
    /// 0 for the first session, +1 for every replacement after expiry.
    pub generation: u64,
}

type Factory = Arc<dyn Fn() -> ClientBuilder + Send + Sync>;

struct Inner {
    epochs: watch::Receiver<Epoch>,
    task: JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A self-renewing ZooKeeper session shared by recipes. Cheap to clone.
///
/// ```no_run
/// # async fn f() -> zk_recipes::Result<()> {
/// let session = zk_recipes::Session::connect("127.0.0.1:2181").await?;
/// let client = session.client(); // the current generation's client
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let e = self.inner.epochs.borrow();
        f.debug_struct("Session")
            .field("generation", &e.generation)
            .field("client", &e.client)
            .finish()
    }
}

impl Session {
    /// Connects with default client settings.
    pub async fn connect(hosts: &str) -> Result<Session> {
        let hosts = hosts.to_owned();
        Session::with_builder(move || Client::builder(&hosts)).await
    }

    /// Connects with the settings `make` returns; `make` is called again for every new
    /// session after an expiry.
    ///
    /// Recipes whose clients should follow the ensemble through reconfigs (moving to new
    /// members with ZOOKEEPER-1355's rebalancing) ask for it here:
    ///
    /// ```no_run
    /// # async fn f() -> zk_recipes::Result<()> {
    /// let session = zk_recipes::Session::with_builder(|| {
    ///     zk_client::Client::builder("10.0.0.1:2181,10.0.0.2:2181").follow_ensemble(true)
    /// })
    /// .await?;
    /// # Ok(()) }
    /// ```
    pub async fn with_builder(
        make: impl Fn() -> ClientBuilder + Send + Sync + 'static,
    ) -> Result<Session> {
        let factory: Factory = Arc::new(make);
        let client = factory().connect().await?;
        Ok(Session::from_parts(client, factory))
    }

    /// Wraps an already connected client; after it expires, `make` builds the next one.
    pub fn from_client(
        client: Client,
        make: impl Fn() -> ClientBuilder + Send + Sync + 'static,
    ) -> Session {
        Session::from_parts(client, Arc::new(make))
    }

    fn from_parts(client: Client, factory: Factory) -> Session {
        let (tx, rx) = watch::channel(Epoch {
            client: client.clone(),
            generation: 0,
        });
        let task = tokio::spawn(renew(client, factory, tx));
        Session {
            inner: Arc::new(Inner { epochs: rx, task }),
        }
    }

    /// The current generation's client.
    pub fn client(&self) -> Client {
        self.inner.epochs.borrow().client.clone()
    }

    /// The current client, or, when its session has just expired, the next generation's
    /// (waiting up to 30 s for it). For one-off calls right after an expiry.
    pub async fn live_client(&self) -> Result<Client> {
        let c = self.client();
        if !c.state().is_terminal() {
            return Ok(c);
        }
        let mut rx = self.inner.epochs.clone();
        let wait = async {
            loop {
                let c = rx.borrow_and_update().client.clone();
                if !c.state().is_terminal() {
                    return Ok(c);
                }
                rx.changed().await.map_err(|_| Error::Closed)?;
            }
        };
        tokio::time::timeout(Duration::from_secs(30), wait)
            .await
            .map_err(|_| Error::Timeout)?
    }

    /// The current generation.
    pub fn epoch(&self) -> Epoch {
        self.inner.epochs.borrow().clone()
    }

    /// A watcher of session events, starting from the current generation.
    pub fn watcher(&self) -> SessionWatcher {
        SessionWatcher::new(self.inner.epochs.clone())
    }

    /// Waits for a connected client (possibly of a later generation), up to `timeout`.
    pub async fn connected_client(&self, timeout: Duration) -> Result<Client> {
        let mut rx = self.inner.epochs.clone();
        let fut = async {
            loop {
                let client = rx.borrow_and_update().client.clone();
                match client
                    .wait_for_state(timeout, SessionState::is_connected)
                    .await
                {
                    Ok(_) => return Ok(client),
                    Err(zk_client::Error::Timeout) => return Err(Error::Timeout),
                    // This generation is finished; wait for the next one.
                    Err(_) => rx.changed().await.map_err(|_| Error::Closed)?,
                }
            }
        };
        tokio::time::timeout(timeout, fut)
            .await
            .map_err(|_| Error::Timeout)?
    }

    /// Closes the current client (its ephemeral nodes go away) and stops renewing.
    pub async fn close(&self) -> Result<()> {
        self.inner.task.abort();
        match self.client().close().await {
            // The server drops the connection once the session is closed; a reply lost
            // that way still means closed.
            // An expired session has nothing left to close.
            Ok(()) | Err(zk_client::Error::ConnectionLoss | zk_client::Error::SessionExpired) => {
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// Replaces the client whenever its session expires.
async fn renew(mut client: Client, factory: Factory, tx: watch::Sender<Epoch>) {
    let mut generation = 0;
    loop {
        let mut st = client.state_watch();
        let end = loop {
            let s = *st.borrow_and_update();
            if s.is_terminal() {
                break s;
            }
            if st.changed().await.is_err() {
                break client.state();
            }
        };
        if end != SessionState::Expired {
            // Closed or AuthFailed: nothing a new session would fix.
            return;
        }
        tracing::info!(generation, "session expired, starting a new one");
        let mut delay = Duration::from_millis(50);
        client = loop {
            match factory().connect().await {
                Ok(c) => break c,
                Err(e) => {
                    tracing::warn!(error = %e, "new session failed, retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
            }
        };
        generation += 1;
        if tx
            .send(Epoch {
                client: client.clone(),
                generation,
            })
            .is_err()
        {
            return;
        }
    }
}

/// Follows a [`Session`]: connection and session events, and the client to use now.
#[derive(Debug)]
pub struct SessionWatcher {
    epochs: watch::Receiver<Epoch>,
    current: Epoch,
    state: watch::Receiver<SessionState>,
    state_open: bool,
    connected: bool,
    expired_reported: bool,
    pending_epoch: bool,
}

impl SessionWatcher {
    fn new(mut epochs: watch::Receiver<Epoch>) -> Self {
        let current = epochs.borrow_and_update().clone();
        let mut state = current.client.state_watch();
        let connected = state.borrow_and_update().is_connected();
        SessionWatcher {
            epochs,
            current,
            state,
            state_open: true,
            connected,
            expired_reported: false,
            pending_epoch: false,
        }
    }

    /// The client of the generation this watcher is on.
    pub fn client(&self) -> Client {
        self.current.client.clone()
    }

    /// The generation this watcher is on.
    pub fn generation(&self) -> u64 {
        self.current.generation
    }

    /// The next event. A new generation is adopted when `NewSession` is returned.
    pub async fn next(&mut self) -> SessionEvent {
        loop {
            let s = *self.state.borrow_and_update();
            if s == SessionState::Expired && !self.expired_reported {
                self.expired_reported = true;
                self.connected = false;
                return SessionEvent::Expired;
            }
            if !s.is_terminal() {
                if self.connected && !s.is_connected() {
                    self.connected = false;
                    return SessionEvent::Suspended;
                }
                if !self.connected && s.is_connected() {
                    self.connected = true;
                    return SessionEvent::Reconnected;
                }
            }
            if self.pending_epoch || self.epochs.has_changed().unwrap_or(false) {
                self.adopt();
                return SessionEvent::NewSession {
                    generation: self.current.generation,
                };
            }
            tokio::select! {
                r = self.epochs.changed() => {
                    if r.is_err() {
                        return SessionEvent::Closed;
                    }
                    self.pending_epoch = true;
                    // An expiry seen only through the new epoch still counts as one.
                    if !self.expired_reported {
                        self.expired_reported = true;
                        self.connected = false;
                        return SessionEvent::Expired;
                    }
                }
                r = self.state.changed(), if self.state_open => {
                    if r.is_err() {
                        self.state_open = false;
                    }
                }
            }
        }
    }

    fn adopt(&mut self) {
        self.current = self.epochs.borrow_and_update().clone();
        self.state = self.current.client.state_watch();
        self.state_open = true;
        self.connected = self.state.borrow_and_update().is_connected();
        self.expired_reported = false;
        self.pending_epoch = false;
    }
}
