//! [`ClientBuilder`]: every connection setting, then `connect` / `build`.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backoff::backoff::Backoff;
use bytes::Bytes;
use tokio::sync::{mpsc, watch};

use crate::client::{Client, Inner};
use crate::driver::{self, SessionInfo, Shared};
use crate::error::{Error, Result};
use crate::hosts::ConnectString;
use crate::path::Chroot;
use crate::retry::RetryPolicy;
use crate::sasl::{GssapiConfig, SaslConfig};
use crate::session::{Session, SessionConfig};
use crate::state::SessionState;
use crate::tls::TlsConfig;

/// Default requested session timeout.
pub const DEFAULT_SESSION_TIMEOUT: Duration = Duration::from_secs(10);

/// Default bound of the random delay before reconnecting after a lost connection (as
/// Java's client, which sleeps up to 1 s); see [`ClientBuilder::reconnect_jitter`].
pub const DEFAULT_RECONNECT_JITTER: Duration = Duration::from_secs(1);

/// Settings of a client.
///
/// ```no_run
/// use std::time::Duration;
/// use zk_client::Client;
/// # async fn f() -> zk_client::Result<()> {
/// let client = Client::builder("zk1:2181,zk2:2181,zk3:2181")
///     .session_timeout(Duration::from_secs(6))
///     .chroot("/app")
///     .auth("digest", "alice:secret")
///     .read_only(true)
///     .connect()
///     .await?;
/// # Ok(()) }
/// ```
pub struct ClientBuilder {
    hosts: String,
    session_timeout: Duration,
    connect_timeout: Option<Duration>,
    request_timeout: Option<Duration>,
    chroot: Option<String>,
    auth: Vec<(String, Bytes)>,
    read_only: bool,
    retry: RetryPolicy,
    reconnect_jitter: Duration,
    resume: Option<(i64, Bytes)>,
    seed: Option<u64>,
    max_frame: usize,
    tls: Option<TlsConfig>,
    sasl: Option<SaslConfig>,
    jaas: Option<(PathBuf, String)>,
    follow_ensemble: bool,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("hosts", &self.hosts)
            .field("session_timeout", &self.session_timeout)
            .field("chroot", &self.chroot)
            .field("read_only", &self.read_only)
            .field("tls", &self.tls)
            .field("sasl", &self.sasl)
            .field("jaas", &self.jaas)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// Starts from a connect string `"host:port[,host:port...][/chroot]"`.
    pub fn new(hosts: &str) -> Self {
        ClientBuilder {
            hosts: hosts.to_owned(),
            session_timeout: DEFAULT_SESSION_TIMEOUT,
            connect_timeout: None,
            request_timeout: None,
            chroot: None,
            auth: Vec::new(),
            read_only: false,
            retry: RetryPolicy::default(),
            reconnect_jitter: DEFAULT_RECONNECT_JITTER,
            resume: None,
            seed: None,
            max_frame: zk_proto::frame::DEFAULT_JUTE_MAX_BUFFER,
            tls: None,
            sasl: None,
            jaas: None,
            follow_ensemble: false,
        }
    }

    /// Connects with TLS (the servers' `secureClientPort`); see [`TlsConfig`].
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Logs in with SASL DIGEST-MD5 after every handshake, before any other request, as
    /// Java's client does with a JAAS `Client` section using `DigestLoginModule`. The server
    /// needs `authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider`;
    /// the session's identity is then `sasl:<username>`. A refused login ends the session
    /// (`AuthFailed`, [`Error::Auth`] with the reason).
    pub fn sasl_digest(mut self, username: &str, password: &str) -> Self {
        self.sasl = Some(SaslConfig::DigestMd5 {
            username: username.to_owned(),
            password: password.to_owned(),
        });
        self
    }

    /// Logs in with Kerberos v5 (SASL GSSAPI) after every handshake, as Java's client does
    /// with a JAAS `Client` section using `Krb5LoginModule`: to the server principal
    /// `zookeeper/<canonical host>@<realm>` (see [`GssapiConfig`]). The Kerberos
    /// configuration is MIT's (`KRB5_CONFIG`, else `/etc/krb5.conf`). The session's identity
    /// is what the server's name rules make of the principal (Apache's default:
    /// `sasl:<principal>`); a refused login ends the session with [`Error::Auth`].
    pub fn sasl_gssapi(mut self, config: GssapiConfig) -> Self {
        self.sasl = Some(SaslConfig::Gssapi(config));
        self
    }

    /// Logs in with the credentials of `section` (Java's default: `Client`) of a JAAS file,
    /// the file Java clients name with `-Djava.security.auth.login.config=`: `DigestLoginModule`
    /// (DIGEST-MD5) or `Krb5LoginModule` (GSSAPI). Read at `build`; an explicit
    /// [`Self::sasl_digest`] or [`Self::sasl_gssapi`] takes precedence.
    pub fn jaas_file(mut self, path: impl AsRef<Path>, section: &str) -> Self {
        self.jaas = Some((path.as_ref().to_owned(), section.to_owned()));
        self
    }

    /// Like [`Self::jaas_file`] with the file named by the environment, if any: the
    /// `ZK_CLIENT_JAAS` variable, else `-Djava.security.auth.login.config=` (and
    /// `-Dzookeeper.sasl.clientconfig=` for the section) in `CLIENT_JVMFLAGS` or `JVMFLAGS`,
    /// the variables Apache's scripts pass to a Java client. Nothing named: no SASL.
    pub fn jaas_from_env(mut self) -> Self {
        if let Some(j) = crate::sasl::jaas_from_env() {
            self.jaas = Some(j);
        }
        self
    }

    /// Requested session timeout (the server clamps it to [2, 20] ticks by default).
    pub fn session_timeout(mut self, t: Duration) -> Self {
        self.session_timeout = t;
        self
    }

    /// Timeout of one TCP connect + handshake (default: session timeout / host count).
    pub fn connection_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = Some(t);
        self
    }

    /// How long a request issued while disconnected waits for a connection before failing
    /// with `Timeout` (default: the session timeout).
    pub fn request_timeout(mut self, t: Duration) -> Self {
        self.request_timeout = Some(t);
        self
    }

    /// Chroot (overrides a `/chroot` suffix of the connect string).
    pub fn chroot(mut self, root: &str) -> Self {
        self.chroot = Some(root.to_owned());
        self
    }

    /// Credentials added at every handshake, e.g. `("digest", "user:password")`.
    pub fn auth(mut self, scheme: &str, auth: impl AsRef<[u8]>) -> Self {
        self.auth
            .push((scheme.to_owned(), Bytes::copy_from_slice(auth.as_ref())));
        self
    }

    /// Accept read-only servers (keeps looking for a read-write one in the background).
    pub fn read_only(mut self, allowed: bool) -> Self {
        self.read_only = allowed;
        self
    }

    /// Delay policy between failed connection attempts (default
    /// [`RetryPolicy::default`]: exponential 10 ms .. 1 s with ±50% jitter, never giving
    /// up; the session timeout bounds how long a disconnected client keeps trying).
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Delay policy given as a `backoff` crate policy.
    #[deprecated(
        note = "use `retry_policy(RetryPolicy::...)`: the public API no longer \
                         names the backoff crate"
    )]
    pub fn backoff(mut self, policy: impl Backoff + Send + 'static) -> Self {
        self.retry = RetryPolicy::from_backoff(policy);
        self
    }

    /// Bound of the random delay before the first reconnect attempt after a connection
    /// is lost (default [`DEFAULT_RECONNECT_JITTER`], 1 s; zero turns it off).
    ///
    /// When a server dies, every client it served loses its connection at the same
    /// moment; without jitter they all reconnect (and re-register their watches) on the
    /// survivors in one burst. Each client instead waits a uniform random time in
    /// `[0, bound]`, spreading the reconnections over the window. The window is also
    /// capped at a fifth of the negotiated session timeout, so the jitter alone never
    /// costs a session. The draw is seeded by [`Self::seed`].
    pub fn reconnect_jitter(mut self, bound: Duration) -> Self {
        self.reconnect_jitter = bound;
        self
    }

    /// Resume an existing session (from [`Client::session_id`] and
    /// [`Client::session_password`]).
    pub fn session(mut self, id: i64, password: impl Into<Bytes>) -> Self {
        self.resume = Some((id, password.into()));
        self
    }

    /// Follow the ensemble (default off): watch `/zookeeper/config` and, on every change
    /// (a reconfig), replace the host list with the members' client addresses and move
    /// this client with Apache's probabilistic rebalancing (ZOOKEEPER-1355), so that new
    /// members get their fair share of clients and removed ones shed theirs. The session
    /// survives a move. See [`Client::update_server_list`] to do it by hand.
    pub fn follow_ensemble(mut self, follow: bool) -> Self {
        self.follow_ensemble = follow;
        self
    }

    /// Seed of the host-list shuffle, the retry jitter, the reconnect jitter and the
    /// rebalancing draws (default: random).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Largest request frame the server accepts (its `jute.maxbuffer`, default 1 MiB - 1).
    pub fn max_frame(mut self, bytes: usize) -> Self {
        self.max_frame = bytes;
        self
    }

    /// Starts the client without waiting for a connection; requests wait for it (up to the
    /// request timeout). Must run inside a tokio runtime.
    pub fn build(self) -> Result<Client> {
        let cs = ConnectString::parse(&self.hosts)?;
        let chroot = match &self.chroot {
            Some(c) => Chroot::new(c)?,
            None => cs.chroot,
        };
        if self.session_timeout.is_zero() {
            return Err(Error::BadArgument("session timeout must be positive"));
        }
        let tls = self.tls.as_ref().map(TlsConfig::connector).transpose()?;
        let sasl = match (&self.jaas, self.sasl) {
            (Some((path, section)), None) => Some(SaslConfig::from_jaas_file(path, section)?),
            (_, sasl) => sasl,
        };
        let gss = match &sasl {
            Some(SaslConfig::Gssapi(g)) => Some(driver::GssJob {
                cfg: g.clone(),
                creds: Default::default(),
            }),
            _ => None,
        };
        let cfg = SessionConfig {
            hosts: cs.hosts,
            chroot: chroot.clone(),
            session_timeout: self.session_timeout,
            connect_timeout: self.connect_timeout,
            request_timeout: self.request_timeout.unwrap_or(self.session_timeout),
            read_only: self.read_only,
            rw_probe_interval: Duration::from_secs(1),
            resume: self.resume,
            auth: self.auth,
            sasl,
            retry: self.retry,
            reconnect_jitter: self.reconnect_jitter,
            seed: self.seed.unwrap_or_else(rand::random),
        };
        let session = Session::new(cfg, std::time::Instant::now());
        let (state_tx, state_rx) = watch::channel(SessionState::Disconnected);
        let shared = Arc::new(Shared {
            state: state_tx,
            info: Mutex::new(SessionInfo::default()),
            counters: Default::default(),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(driver::run(
            session,
            rx,
            shared.clone(),
            self.max_frame + 1024,
            tls,
            gss,
        ));
        let client = Client {
            inner: Arc::new(Inner {
                tx,
                chroot,
                next_watcher: AtomicU64::new(1),
                shared,
                state_rx,
                max_frame: self.max_frame,
            }),
        };
        if self.follow_ensemble {
            client.spawn_ensemble_follower();
        }
        Ok(client)
    }

    /// Starts the client and waits for the first connection (up to the session timeout).
    ///
    /// When none could be made in time the error is [`Error::Connect`] with the last
    /// attempt's host and cause (e.g. a TLS certificate problem) rather than a bare timeout;
    /// a refused SASL login is [`Error::Auth`].
    pub async fn connect(self) -> Result<Client> {
        let timeout = self.session_timeout.max(Duration::from_secs(1));
        let has_auth = !self.auth.is_empty();
        let client = self.build()?;
        if let Err(e) = client
            .wait_for_state(timeout, SessionState::is_connected)
            .await
        {
            return Err(match e {
                Error::Timeout => client.last_connect_error().unwrap_or(e),
                e => e,
            });
        }
        if has_auth {
            // Credentials go out right after the handshake and a rejected one ends the
            // session: one round trip behind them tells whether they were accepted.
            if let Err(e) = client.exists("/", false).await {
                return Err(match client.state() {
                    SessionState::AuthFailed => Error::AuthFailed,
                    _ => e,
                });
            }
        }
        Ok(client)
    }
}
