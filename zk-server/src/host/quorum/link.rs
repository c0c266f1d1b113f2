//! Securing the links between members, as Apache 3.8 does on both the election and the
//! quorum (learner-leader) ports:
//!
//! - TLS (`sslQuorum=true`, `ssl.quorum.*`): the dialing member starts a TLS handshake
//!   right after connecting and presents its certificate; the accepting member requires
//!   one (mutual TLS, `ssl.quorum.clientAuth=need` by default) chaining to the quorum
//!   truststore, and both ends check the other's address against its certificate
//!   (`ssl.quorum.hostnameVerification`, on by default).
//! - Port unification (`portUnification=true`): a port tells a TLS ClientHello (first byte
//!   0x16, a handshake record) from plaintext and takes both, so an ensemble can be rolled
//!   to TLS one member at a time. Without it a TLS member refuses plaintext peers.
//! - Quorum SASL (`quorum.auth.*`): after the election handshake, or first thing on a
//!   learner's connection, the dialing member logs in, in `QuorumAuthPacket`s
//!   (`long magic, int status, buffer token`; status 0 in progress, 1 success, -1 error;
//!   the dialing side's tokens always carry status 0). The accepting member recognises the
//!   exchange by the negative magic number where a plaintext learner's first packet would
//!   be, and with `quorum.auth.serverRequireSasl` refuses a peer that does not log in.
//!   Each side's JAAS section picks its mechanism, as in Apache: DIGEST-MD5
//!   (`zookeeper-quorum/zk-quorum-sasl-md5`, no initial token), or Kerberos GSSAPI (the
//!   learner sends its AP-REQ for `quorum.auth.kerberos.servicePrincipal` with `_HOST`
//!   replaced by the dialed member's host; the server accepts with its own keytab, then
//!   authorizes the learner as Apache's `SaslQuorumServerCallbackHandler` does: it must
//!   act as the principal it authenticated as, of the form `service/host@REALM`, with
//!   `host` the host of one of the members' `server.N` lines).

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use zk_proto::jute::Record;
use zk_proto::quorum::QuorumAuthPacket;
use zk_proto::sasl::DigestService;

use crate::config::quorum_auth::LearnerLogin;
use crate::config::ServerConfig;
use crate::host::client::tls::{PeerNames, TlsContext};
use crate::state::acl::sasl::{DigestServer, SaslUsers, Step, MAX_TOKEN};
use crate::zab::Sid;

/// Apache's `QuorumAuth.QUORUM_AUTH_MAGIC_NUMBER`, written `-0xa0dbcafecafe1234L` in Java:
/// the hex literal is already a negative long, so the value is this positive one. A
/// learner's first packet starts with a small packet type, never with these bytes.
pub const QUORUM_AUTH_MAGIC: i64 = 0x5f24_3501_3501_edcc;
/// `QuorumAuth.Status`.
const IN_PROGRESS: i32 = 0;
const SUCCESS: i32 = 1;
const ERROR: i32 = -1;
/// The first byte of a TLS connection: a handshake record.
const TLS_HANDSHAKE: u8 = 0x16;
/// How long a plaintext member waits for a new connection's first byte before it
/// assumes plaintext (Apache's default handshake detection timeout).
const DETECT_TIMEOUT: Duration = Duration::from_millis(5000);
/// Largest token taken from a peer in a quorum login (a Kerberos ticket may be larger than
/// any DIGEST-MD5 token).
const MAX_AUTH_TOKEN: usize = if MAX_TOKEN > 64 * 1024 {
    MAX_TOKEN
} else {
    64 * 1024
};
/// Apache's `SaslQuorumAuthServer.MAX_RETRIES`: challenges sent before a login is given up.
#[cfg(feature = "kerberos")]
const MAX_ROUNDS: usize = 5;

/// Which port a link is on, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    /// Leader election.
    Election,
    /// Learner to leader.
    Quorum,
}

impl std::fmt::Display for LinkKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LinkKind::Election => "election port",
            LinkKind::Quorum => "quorum port",
        })
    }
}

/// A link between members, plaintext or TLS.
pub enum QuorumStream {
    /// Plaintext.
    Plain(TcpStream),
    /// TLS, dialed or accepted.
    Tls(Box<tokio_rustls::TlsStream<TcpStream>>),
}

impl QuorumStream {
    /// Splits the link for a reader task and a writer task (plaintext keeps tokio's
    /// lock-free halves).
    pub fn split(self) -> (LinkReader, LinkWriter) {
        match self {
            QuorumStream::Plain(s) => {
                let (r, w) = s.into_split();
                (LinkReader::Plain(r), LinkWriter::Plain(w))
            }
            QuorumStream::Tls(s) => {
                let (r, w) = tokio::io::split(*s);
                (LinkReader::Tls(r), LinkWriter::Tls(w))
            }
        }
    }

    /// Whether the link is encrypted.
    pub fn is_tls(&self) -> bool {
        matches!(self, QuorumStream::Tls(_))
    }
}

/// The reading half of a [`QuorumStream`].
pub enum LinkReader {
    /// Plaintext.
    Plain(OwnedReadHalf),
    /// TLS.
    Tls(tokio::io::ReadHalf<tokio_rustls::TlsStream<TcpStream>>),
}

/// The writing half of a [`QuorumStream`].
pub enum LinkWriter {
    /// Plaintext.
    Plain(OwnedWriteHalf),
    /// TLS.
    Tls(tokio::io::WriteHalf<tokio_rustls::TlsStream<TcpStream>>),
}

macro_rules! delegate_read {
    ($t:ty, $($v:ident),+) => {
        impl AsyncRead for $t {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    $(Self::$v(s) => Pin::new(s).poll_read(cx, buf),)+
                }
            }
        }
    };
}

macro_rules! delegate_write {
    ($t:ty, $($v:ident),+) => {
        impl AsyncWrite for $t {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                match self.get_mut() {
                    $(Self::$v(s) => Pin::new(s).poll_write(cx, buf),)+
                }
            }
            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    $(Self::$v(s) => Pin::new(s).poll_flush(cx),)+
                }
            }
            fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    $(Self::$v(s) => Pin::new(s).poll_shutdown(cx),)+
                }
            }
            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[io::IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                match self.get_mut() {
                    $(Self::$v(s) => Pin::new(s).poll_write_vectored(cx, bufs),)+
                }
            }
            fn is_write_vectored(&self) -> bool {
                match self {
                    $(Self::$v(s) => s.is_write_vectored(),)+
                }
            }
        }
    };
}

delegate_read!(QuorumStream, Plain, Tls);
delegate_write!(QuorumStream, Plain, Tls);
delegate_read!(LinkReader, Plain, Tls);
delegate_write!(LinkWriter, Plain, Tls);

/// Why a dial failed.
#[derive(Debug)]
pub enum DialError {
    /// No TCP connection (the member is down or unreachable): routine while members
    /// start and stop.
    Unreachable(io::Error),
    /// Connected, but the link could not be secured: worth a log line.
    Refused(String),
}

impl std::fmt::Display for DialError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DialError::Unreachable(e) => write!(f, "cannot connect: {e}"),
            DialError::Refused(why) => f.write_str(why),
        }
    }
}

/// How we log in to the members we dial.
enum Login {
    /// DIGEST-MD5 as this user, with this password.
    Digest { user: String, password: String },
    /// Kerberos with these credentials, to the members' service principal (`_HOST`
    /// not yet replaced).
    #[cfg(feature = "kerberos")]
    Kerberos {
        creds: Arc<zk_proto::gssapi::Credentials>,
        service_principal: String,
    },
}

/// The quorum SASL credentials in force.
struct QuorumSasl {
    /// Ours, when we log in to the members we dial (`quorum.auth.learnerRequireSasl`).
    login: Option<Login>,
    /// Who may log in to us (the JAAS `QuorumServer` section): DIGEST-MD5 users, or our
    /// keytab when it is a Kerberos section.
    users: SaslUsers,
    /// `quorum.auth.serverRequireSasl`.
    require: bool,
}

/// How a login we checked ended (I/O errors aside).
enum Checked {
    /// Logged in as this name.
    In(String),
    /// Refused: why (the peer was sent the error status).
    Failed(String),
}

/// Stops a background task when the last clone of its owner goes.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// How this member secures its links with the others: what it dials with, what it
/// accepts, and the quorum SASL logins. The default is plaintext both ways, no SASL.
#[derive(Clone)]
pub struct QuorumSecurity {
    tls: Option<Arc<TlsContext>>,
    /// `sslQuorum`: dial with TLS.
    dial_tls: bool,
    /// Accept plaintext (`sslQuorum=false`, or `portUnification=true`).
    accept_plain: bool,
    sasl: Option<Arc<QuorumSasl>>,
    /// The host of each member's `server.N` line: a Kerberos learner replaces `_HOST`
    /// with it, and a Kerberos server admits learners of these hosts only.
    hosts: Arc<Mutex<BTreeMap<Sid, String>>>,
    _reload: Option<Arc<AbortOnDrop>>,
}

impl Default for QuorumSecurity {
    fn default() -> Self {
        QuorumSecurity {
            tls: None,
            dial_tls: false,
            accept_plain: true,
            sasl: None,
            hosts: Arc::default(),
            _reload: None,
        }
    }
}

impl std::fmt::Debug for QuorumSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuorumSecurity")
            .field("dial_tls", &self.dial_tls)
            .field("accept_tls", &self.tls.is_some())
            .field("accept_plain", &self.accept_plain)
            .field("sasl", &self.sasl.is_some())
            .finish()
    }
}

/// Reads up to `n` bytes (fewer only at the end of the stream).
async fn read_up_to<S: AsyncRead + Unpin>(s: &mut S, n: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; n];
    let mut got = 0;
    while got < n {
        match s.read(&mut buf[got..]).await? {
            0 => break,
            k => got += k,
        }
    }
    buf.truncate(got);
    Ok(buf)
}

async fn send_auth<S: AsyncWrite + Unpin>(s: &mut S, status: i32, token: &[u8]) -> io::Result<()> {
    let mut b = BytesMut::new();
    QuorumAuthPacket {
        magic: QUORUM_AUTH_MAGIC,
        status,
        token: bytes::Bytes::copy_from_slice(token),
    }
    .write(&mut b);
    s.write_all(&b).await?;
    s.flush().await
}

/// Reads the rest of an auth packet whose magic was read: `(status, token)`.
async fn read_auth_body<S: AsyncRead + Unpin>(s: &mut S) -> io::Result<(i32, Vec<u8>)> {
    let status = s.read_i32().await?;
    let len = s.read_i32().await?;
    if len > MAX_AUTH_TOKEN as i32 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("quorum auth token of {len} bytes (at most {MAX_AUTH_TOKEN})"),
        ));
    }
    let mut token = vec![0u8; len.max(0) as usize];
    s.read_exact(&mut token).await?;
    Ok((status, token))
}

async fn read_auth<S: AsyncRead + Unpin>(s: &mut S) -> io::Result<(i32, Vec<u8>)> {
    let magic = s.read_i64().await?;
    if magic != QUORUM_AUTH_MAGIC {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("expected a quorum auth packet, got magic {magic:#x}"),
        ));
    }
    read_auth_body(s).await
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, msg)
}

impl QuorumSecurity {
    /// Plaintext both ways, no SASL (what a config without quorum security gets).
    pub fn plaintext() -> QuorumSecurity {
        QuorumSecurity::default()
    }

    /// From zoo.cfg's `sslQuorum`, `portUnification`, `ssl.quorum.*` and the loaded
    /// `quorum.auth.*` settings; `names` maps the members' addresses to the host names
    /// of their `server.N` lines. Reads the stores now: an error names the file and cause.
    /// With `sslQuorumReloadCertFiles` the stores are re-read when they change (needs a
    /// tokio runtime).
    pub fn from_config(cfg: &ServerConfig, names: PeerNames) -> Result<QuorumSecurity, String> {
        let mut s = QuorumSecurity::default();
        if cfg.quorum_tls_enabled() {
            let ctx = TlsContext::for_quorum(&cfg.quorum_ssl, names)?;
            if cfg.ssl_quorum_reload {
                s._reload = Some(Arc::new(AbortOnDrop(tokio::spawn(ctx.clone().watch()))));
            }
            s.tls = Some(ctx);
            s.dial_tls = cfg.ssl_quorum;
            s.accept_plain = cfg.quorum_port_unification || !cfg.ssl_quorum;
        }
        let q = &cfg.quorum_sasl;
        if q.enabled {
            let users = q
                .users
                .clone()
                .ok_or("quorum.auth.enableSasl=true but the QuorumServer section is not loaded")?;
            let login = match (&q.login, q.learner_require) {
                (Some(LearnerLogin::Digest(u, p)), true) => Some(Login::Digest {
                    user: u.clone(),
                    password: p.0.clone(),
                }),
                (Some(LearnerLogin::Kerberos(k)), true) => Some(learner_kerberos(k, q)?),
                (None, true) => {
                    return Err("quorum.auth.learnerRequireSasl=true but the QuorumLearner \
                                section is not loaded"
                        .into())
                }
                (_, false) => None,
            };
            s.sasl = Some(Arc::new(QuorumSasl {
                login,
                users,
                require: q.server_require,
            }));
        }
        Ok(s)
    }

    /// Records the host of member `sid`'s `server.N` line (at start, and for members a
    /// reconfig adds).
    pub fn set_member_host(&self, sid: Sid, host: &str) {
        lock(&self.hosts).insert(sid, host.to_owned());
    }

    /// What the start-up line says of the quorum logins.
    pub fn describe_sasl(&self) -> Option<String> {
        let q = self.sasl.as_ref()?;
        let server = match q.users.kerberos() {
            Some(k) => format!("members log in to us with Kerberos as {}", k.principal),
            None => format!(
                "members log in to us with DIGEST-MD5 ({} users)",
                q.users.len()
            ),
        };
        let learner = match &q.login {
            None => "we do not log in".to_owned(),
            Some(Login::Digest { user, .. }) => format!("we log in with DIGEST-MD5 as {user:?}"),
            #[cfg(feature = "kerberos")]
            Some(Login::Kerberos {
                creds,
                service_principal,
            }) => format!(
                "we log in with Kerberos as {} to {service_principal}",
                creds.principal()
            ),
        };
        Some(format!("quorum SASL: {server}; {learner}"))
    }

    #[cfg_attr(not(feature = "kerberos"), allow(dead_code))]
    fn member_host(&self, sid: Sid) -> Option<String> {
        lock(&self.hosts).get(&sid).cloned()
    }

    #[cfg_attr(not(feature = "kerberos"), allow(dead_code))]
    fn member_hosts(&self) -> BTreeSet<String> {
        lock(&self.hosts).values().cloned().collect()
    }

    fn handshake_timeout(&self) -> Duration {
        self.tls
            .as_ref()
            .map_or(DETECT_TIMEOUT, |t| t.handshake_timeout())
    }

    /// Connects to a member at `addr` (dial timeout `limit`), with a TLS handshake when
    /// `sslQuorum`. The error says what failed (for the caller's log line).
    pub async fn dial(
        &self,
        addr: SocketAddr,
        kind: LinkKind,
        limit: Duration,
    ) -> Result<QuorumStream, DialError> {
        let tcp = tokio::time::timeout(limit, TcpStream::connect(addr))
            .await
            .map_err(|_| DialError::Unreachable(io::Error::from(io::ErrorKind::TimedOut)))?
            .map_err(DialError::Unreachable)?;
        let _ = tcp.set_nodelay(true);
        let connector = match (&self.tls, self.dial_tls) {
            (Some(t), true) => t.connector(),
            _ => None,
        };
        let Some(connector) = connector else {
            return Ok(QuorumStream::Plain(tcp));
        };
        let name = ServerName::IpAddress(addr.ip().into());
        match tokio::time::timeout(self.handshake_timeout(), connector.connect(name, tcp)).await {
            Ok(Ok(s)) => {
                let (_, c) = s.get_ref();
                tracing::debug!(
                    "TLS link to {addr} ({kind}): {:?} {:?}",
                    c.protocol_version(),
                    c.negotiated_cipher_suite().map(|s| s.suite())
                );
                Ok(QuorumStream::Tls(Box::new(
                    tokio_rustls::TlsStream::Client(s),
                )))
            }
            Ok(Err(e)) => Err(DialError::Refused(format!(
                "TLS handshake with {addr} ({kind}) failed: {e}"
            ))),
            Err(_) => Err(DialError::Refused(format!(
                "no TLS handshake with {addr} ({kind}) within the timeout"
            ))),
        }
    }

    /// Takes a connection accepted on our `kind` port: tells TLS from plaintext, runs the
    /// TLS handshake, and checks the peer's certificate name. None: refused, with a log
    /// line naming the peer and the reason.
    pub async fn accept(
        &self,
        tcp: TcpStream,
        peer: SocketAddr,
        kind: LinkKind,
    ) -> Option<QuorumStream> {
        let _ = tcp.set_nodelay(true);
        let limit = self.handshake_timeout();
        let mut first = [0u8; 1];
        let tls_hello = match tokio::time::timeout(limit, tcp.peek(&mut first)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return None,
            Ok(Ok(_)) => first[0] == TLS_HANDSHAKE,
            // As Apache: nothing within the detection timeout is taken for plaintext.
            Err(_) => false,
        };
        let Some(ctx) = self.tls.as_ref().filter(|_| tls_hello) else {
            if tls_hello {
                tracing::warn!(
                    "refusing a TLS connection from {peer} on the {kind}: this member has \
                     sslQuorum=false and portUnification=false (plaintext only)"
                );
                return None;
            }
            if !self.accept_plain {
                tracing::warn!(
                    "refusing a plaintext connection from {peer} on the {kind}: sslQuorum=true \
                     accepts only TLS between members (set portUnification=true on this \
                     member while the ensemble is rolled to TLS)"
                );
                return None;
            }
            return Some(QuorumStream::Plain(tcp));
        };
        let tls = match tokio::time::timeout(limit, ctx.acceptor().accept(tcp)).await {
            Ok(Ok(t)) => t,
            Ok(Err(e)) => {
                tracing::warn!("refusing {peer} on the {kind}: TLS handshake failed: {e}");
                return None;
            }
            Err(_) => {
                tracing::warn!(
                    "refusing {peer} on the {kind}: no TLS handshake within {} ms \
                     (ssl.quorum.handshakeDetectionTimeoutMillis)",
                    limit.as_millis()
                );
                return None;
            }
        };
        let (_, conn) = tls.get_ref();
        if let Err(why) = ctx.check_peer_name(peer.ip(), conn.peer_certificates()) {
            tracing::warn!("refusing {peer} on the {kind}: {why}");
            return None;
        }
        tracing::debug!(
            "TLS link from {peer} ({kind}): {:?} {:?}",
            conn.protocol_version(),
            conn.negotiated_cipher_suite().map(|s| s.suite())
        );
        Some(QuorumStream::Tls(Box::new(
            tokio_rustls::TlsStream::Server(tls),
        )))
    }

    /// The dialing side's quorum SASL login (Apache's `SaslQuorumAuthLearner`), when
    /// `quorum.auth.learnerRequireSasl`; `sid` is the member dialed (its host replaces
    /// `_HOST` in a Kerberos service principal), `peer` names it for messages.
    pub async fn login<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        s: &mut S,
        peer: &str,
        sid: Sid,
    ) -> io::Result<()> {
        let Some(login) = self.sasl.as_ref().and_then(|q| q.login.as_ref()) else {
            return Ok(());
        };
        let run = async {
            match login {
                Login::Digest { user, password } => {
                    digest_login(s, user, password).await?;
                    Ok::<_, io::Error>(format!("{user:?}"))
                }
                #[cfg(feature = "kerberos")]
                Login::Kerberos {
                    creds,
                    service_principal,
                } => {
                    let host = self.member_host(sid).ok_or_else(|| {
                        invalid(format!(
                            "no host known for server {sid} (no server.{sid} line)"
                        ))
                    })?;
                    let mut target =
                        crate::config::quorum_auth::service_principal_for(service_principal, &host);
                    if !target.contains('@') {
                        // As Apache: the realm of our own principal.
                        let realm = creds.principal().rsplit_once('@').map_or("", |r| r.1);
                        target = format!("{target}@{realm}");
                    }
                    kerberos_login(s, creds.clone(), &target).await?;
                    Ok(format!("{} (Kerberos, to {target})", creds.principal()))
                }
            }
        };
        // Only Kerberos logins need to know whom they dial.
        #[cfg(not(feature = "kerberos"))]
        let _ = sid;
        match tokio::time::timeout(self.handshake_timeout(), run).await {
            Ok(Ok(who)) => {
                tracing::info!("quorum SASL: logged in to {peer} as {who}");
                Ok(())
            }
            Ok(Err(e)) => Err(io::Error::new(
                e.kind(),
                format!("quorum SASL login to {peer} failed: {e}"),
            )),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("quorum SASL login to {peer}: no answer within the timeout"),
            )),
        }
    }

    /// The accepting side's quorum SASL check (Apache's `SaslQuorumAuthServer`), when
    /// `quorum.auth.enableSasl`. Ok: the bytes read ahead that belong to the link's
    /// traffic (a peer that did not log in, when that is allowed). Err: refused, why.
    pub async fn check_login<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        s: &mut S,
        peer: &str,
    ) -> Result<Vec<u8>, String> {
        let Some(q) = self.sasl.clone() else {
            return Ok(Vec::new());
        };
        let run = async {
            let head = read_up_to(s, 8).await.map_err(|e| e.to_string())?;
            let is_auth = head.len() == 8
                && i64::from_be_bytes(head[..8].try_into().unwrap_or_default())
                    == QUORUM_AUTH_MAGIC;
            if !is_auth {
                if q.require && head.is_empty() {
                    return Err("it closed the link without logging in and \
                                quorum.auth.serverRequireSasl=true (its own log says why \
                                its login did not start)"
                        .to_string());
                }
                if q.require {
                    return Err("it did not log in and quorum.auth.serverRequireSasl=true \
                                (is quorum SASL enabled on it, with \
                                quorum.auth.learnerRequireSasl=true?)"
                        .to_string());
                }
                return Ok(head);
            }
            let (_, token) = read_auth_body(s).await.map_err(|e| e.to_string())?;
            let checked = match q.users.kerberos() {
                #[cfg(feature = "kerberos")]
                Some(k) => kerberos_check(s, k.exchange(), token, &self.member_hosts()).await,
                _ => digest_check(s, &q.users, token).await,
            }
            .map_err(|e| e.to_string())?;
            match checked {
                Checked::In(user) => {
                    tracing::info!("quorum SASL: {peer} logged in as {user}");
                    Ok(Vec::new())
                }
                Checked::Failed(why) => {
                    let _ = send_auth(s, ERROR, b"").await;
                    if q.require {
                        return Err(why);
                    }
                    // As Apache: without serverRequireSasl the link stays (the peer
                    // gives up on its side when it sees the error).
                    tracing::warn!(
                        "{peer}: {why}; keeping the link as \
                         quorum.auth.serverRequireSasl=false"
                    );
                    Ok(Vec::new())
                }
            }
        };
        match tokio::time::timeout(self.handshake_timeout(), run).await {
            Ok(r) => r,
            Err(_) => Err("no quorum SASL exchange within the timeout".into()),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The learner's Kerberos credentials from its `Krb5LoginModule` section, got now so that
/// a keytab without the principal's key stops the member at start.
#[cfg(feature = "kerberos")]
fn learner_kerberos(
    k: &zk_proto::sasl::jaas::KerberosLogin,
    q: &crate::config::quorum_auth::QuorumSaslConfig,
) -> Result<Login, String> {
    let creds = zk_proto::gssapi::Credentials::initiator(k).map_err(|e| {
        format!(
            "quorum.auth.learner.saslLoginContext={}: Kerberos login: {e}",
            q.learner_section
        )
    })?;
    Ok(Login::Kerberos {
        creds: Arc::new(creds),
        service_principal: q.service_principal.clone(),
    })
}

#[cfg(not(feature = "kerberos"))]
fn learner_kerberos(
    _: &zk_proto::sasl::jaas::KerberosLogin,
    q: &crate::config::quorum_auth::QuorumSaslConfig,
) -> Result<Login, String> {
    Err(format!(
        "quorum.auth.learner.saslLoginContext={}: {}",
        q.learner_section,
        crate::state::acl::sasl_kerberos::NOT_BUILT
    ))
}

/// A DIGEST-MD5 login as `user` (no initial response: an empty token asks for the
/// challenge).
async fn digest_login<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    user: &str,
    password: &str,
) -> io::Result<()> {
    send_auth(s, IN_PROGRESS, b"").await?;
    let mut expected_rspauth: Option<String> = None;
    loop {
        let (status, token) = read_auth(s).await?;
        match (status, &expected_rspauth) {
            (IN_PROGRESS, None) => {
                let cnonce = zk_proto::sasl::hex(&rand::random::<[u8; 16]>());
                let (response, rspauth) = zk_proto::sasl::answer_challenge(
                    &DigestService::QUORUM,
                    &token,
                    user,
                    password,
                    &cnonce,
                )
                .map_err(|e| invalid(format!("bad quorum SASL challenge: {e}")))?;
                send_auth(s, IN_PROGRESS, &response).await?;
                expected_rspauth = Some(rspauth);
            }
            (SUCCESS, Some(expected)) => {
                zk_proto::sasl::check_rspauth(&token, expected).map_err(invalid)?;
                return Ok(());
            }
            (ERROR, _) => {
                return Err(invalid(format!(
                    "refused our quorum SASL login as {user:?} (wrong credentials in the \
                     QuorumLearner section?)"
                )))
            }
            (status, _) => {
                return Err(invalid(format!(
                    "unexpected quorum SASL status {status} in the exchange"
                )))
            }
        }
    }
}

/// A Kerberos (GSSAPI) login to the member whose principal is `target`: our AP-REQ
/// first (asking the KDC for the ticket, off the async threads), then the mutual
/// authentication and the security-layer negotiation.
#[cfg(feature = "kerberos")]
async fn kerberos_login<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    creds: Arc<zk_proto::gssapi::Credentials>,
    target: &str,
) -> io::Result<()> {
    let me = creds.principal().to_owned();
    let t = target.to_owned();
    let (mut client, first) =
        tokio::task::spawn_blocking(move || zk_proto::gssapi::SaslClient::start(creds, &t))
            .await
            .map_err(|e| invalid(format!("Kerberos login task: {e}")))?
            .map_err(|e| invalid(format!("Kerberos: {e}")))?;
    send_auth(s, IN_PROGRESS, &first).await?;
    loop {
        let (status, token) = read_auth(s).await?;
        match status {
            IN_PROGRESS if !client.is_complete() => {
                let out = client
                    .step(&token)
                    .map_err(|e| invalid(format!("Kerberos, with {target}: {e}")))?;
                send_auth(s, IN_PROGRESS, &out.unwrap_or_default()).await?;
            }
            SUCCESS if client.is_complete() => return Ok(()),
            ERROR => {
                return Err(invalid(format!(
                    "refused our quorum SASL login as {me} (Kerberos, to {target}): is our \
                     principal service/host@REALM with the host of our server.N line, as \
                     Apache requires?"
                )))
            }
            status => {
                return Err(invalid(format!(
                    "unexpected quorum SASL status {status} in the Kerberos exchange"
                )))
            }
        }
    }
}

/// Checks a DIGEST-MD5 login whose first token was read.
async fn digest_check<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    users: &SaslUsers,
    mut token: Vec<u8>,
) -> io::Result<Checked> {
    let mut server = DigestServer::default();
    loop {
        let step = server.evaluate_for(&DigestService::QUORUM, &token, users, || {
            zk_proto::sasl::hex(&rand::random::<[u8; 20]>())
        });
        match step {
            Ok(Step::Continue(challenge)) => {
                send_auth(s, IN_PROGRESS, &challenge).await?;
                token = read_auth(s).await?.1;
            }
            Ok(Step::Complete { token, user, .. }) => {
                send_auth(s, SUCCESS, &token.unwrap_or_default()).await?;
                return Ok(Checked::In(format!("{user:?}")));
            }
            Err(f) => {
                let who = f.user.map(|u| format!(" as {u:?}")).unwrap_or_default();
                return Ok(Checked::Failed(format!(
                    "its quorum SASL login{who} failed: {}",
                    f.reason
                )));
            }
        }
    }
}

/// Checks a Kerberos (GSSAPI) login whose first token (the AP-REQ) was read, and
/// authorizes the learner by Apache's rule against the members' `hosts`.
#[cfg(feature = "kerberos")]
async fn kerberos_check<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    mut server: zk_proto::gssapi::SaslServer,
    mut token: Vec<u8>,
    hosts: &BTreeSet<String>,
) -> io::Result<Checked> {
    use zk_proto::gssapi::ServerStep;
    for _ in 0..=MAX_ROUNDS {
        match server.step(&token) {
            Ok(ServerStep::Continue(out)) => {
                send_auth(s, IN_PROGRESS, &out).await?;
                token = read_auth(s).await?.1;
            }
            Ok(ServerStep::Complete { principal, authzid }) => {
                return Ok(match authorize_learner(&principal, &authzid, hosts) {
                    Ok(()) => {
                        send_auth(s, SUCCESS, b"").await?;
                        Checked::In(format!("{principal} (Kerberos)"))
                    }
                    Err(why) => Checked::Failed(why),
                });
            }
            Err(e) => {
                return Ok(Checked::Failed(format!(
                    "its quorum SASL login (Kerberos) failed: {e}"
                )))
            }
        }
    }
    Ok(Checked::Failed(format!(
        "its quorum SASL login (Kerberos) took more than {MAX_ROUNDS} rounds"
    )))
}

/// Apache's authorization of a Kerberos learner (`SaslQuorumServerCallbackHandler`): it
/// acts as the principal it authenticated as, which is `service/host@REALM` with the host
/// of one of the members' `server.N` lines.
#[cfg_attr(not(feature = "kerberos"), allow(dead_code))]
fn authorize_learner(
    principal: &str,
    authzid: &str,
    hosts: &BTreeSet<String>,
) -> Result<(), String> {
    let refused = |why: String| {
        Err(format!(
            "its Kerberos principal {principal} is not authorized to join the ensemble: {why}"
        ))
    };
    if principal != authzid {
        return refused(format!("it asked to act as {authzid:?}"));
    }
    // Java's split, which drops trailing empty parts.
    let mut parts: Vec<&str> = authzid.split(['/', '@']).collect();
    while parts.last() == Some(&"") {
        parts.pop();
    }
    match parts[..] {
        [_, host, _] if hosts.contains(host) => Ok(()),
        [_, host, _] => refused(format!(
            "its host {host:?} is not the host of any server.N line ({})",
            hosts.iter().cloned().collect::<Vec<_>>().join(", ")
        )),
        _ => refused(
            "it is not of the form service/host@REALM (Apache admits learners by the host \
             part)"
                .to_owned(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::quorum_auth::QuorumSaslConfig;
    use crate::config::Secret;

    fn sasl(user: &str, password: &str, require: bool) -> QuorumSecurity {
        let mut cfg = ServerConfig::default();
        let jaas = format!(
            "QuorumServer {{ org.apache.zookeeper.server.auth.DigestLoginModule required \
             user_peer=\"right\"; }};\nQuorumLearner {{ \
             org.apache.zookeeper.server.auth.DigestLoginModule required username=\"{user}\" \
             password=\"{password}\"; }};"
        );
        cfg.quorum_sasl = QuorumSaslConfig {
            enabled: true,
            learner_require: true,
            server_require: require,
            ..Default::default()
        };
        cfg.quorum_sasl.load(Some(&jaas), "test").unwrap();
        assert!(matches!(
            cfg.quorum_sasl.login,
            Some(LearnerLogin::Digest(_, Secret(_)))
        ));
        QuorumSecurity::from_config(&cfg, PeerNames::default()).unwrap()
    }

    /// Runs a login from `learner` against `server` over a pipe; what each side says,
    /// and what the server read ahead.
    async fn exchange(
        learner: &QuorumSecurity,
        server: &QuorumSecurity,
        after_login: &[u8],
    ) -> (io::Result<()>, Result<Vec<u8>, String>) {
        let (mut a, mut b) = tokio::io::duplex(64 * 1024);
        let l = async move {
            let r = learner.login(&mut a, "server 1", 1).await;
            if r.is_ok() {
                a.write_all(after_login).await.unwrap();
            }
            // The learner side ends here (what a closed election link looks like).
            drop(a);
            r
        };
        let s = server.check_login(&mut b, "learner 2");
        tokio::join!(l, s)
    }

    #[tokio::test]
    async fn digest_login_between_members() {
        let server = sasl("peer", "right", true);
        let (l, s) = exchange(&sasl("peer", "right", true), &server, b"FOLLOWERINFO").await;
        l.unwrap();
        assert_eq!(s.unwrap(), Vec::<u8>::new());
        // A wrong password: both sides say so.
        let (l, s) = exchange(&sasl("peer", "wrong", true), &server, b"").await;
        assert!(l
            .unwrap_err()
            .to_string()
            .contains("refused our quorum SASL login"));
        let e = s.unwrap_err();
        assert!(
            e.contains("\"peer\"") && e.contains("wrong password"),
            "{e}"
        );
        // An unknown user.
        let (_, s) = exchange(&sasl("nobody", "right", true), &server, b"").await;
        assert!(s.unwrap_err().contains("no such DIGEST-MD5 user"));
    }

    #[tokio::test]
    async fn peers_that_do_not_log_in() {
        let plain = QuorumSecurity::plaintext();
        // Required: refused. Not required: let through, its bytes kept.
        let (_, s) = exchange(&plain, &sasl("peer", "right", true), b"0123456789").await;
        assert!(s.unwrap_err().contains("serverRequireSasl"));
        let (_, s) = exchange(&plain, &sasl("peer", "right", false), b"0123456789").await;
        assert_eq!(s.unwrap(), b"01234567");
        // A short stream (a peer that closes after the election handshake).
        let (_, s) = exchange(&plain, &sasl("peer", "right", false), b"012").await;
        assert_eq!(s.unwrap(), b"012");
    }

    #[test]
    fn kerberos_learners_are_authorized_by_host_as_in_apache() {
        let hosts: BTreeSet<String> = ["zk1.example.com", "127.0.0.1"]
            .into_iter()
            .map(String::from)
            .collect();
        let ok = |p: &str| authorize_learner(p, p, &hosts);
        ok("learner/zk1.example.com@EX.COM").unwrap();
        ok("zkquorum/127.0.0.1@EX.COM").unwrap();
        let e = ok("learner/intruder.example.com@EX.COM").unwrap_err();
        assert!(
            e.contains("\"intruder.example.com\" is not the host"),
            "{e}"
        );
        // No host part, or one too many: refused as Apache does.
        assert!(ok("learner@EX.COM")
            .unwrap_err()
            .contains("service/host@REALM"));
        assert!(ok("a/zk1.example.com/x@EX.COM").is_err());
        // Acting as someone else.
        let e = authorize_learner(
            "a/zk1.example.com@EX.COM",
            "b/zk1.example.com@EX.COM",
            &hosts,
        )
        .unwrap_err();
        assert!(e.contains("asked to act as"), "{e}");
    }

    #[test]
    fn magic_is_apaches() {
        // -0xa0dbcafecafe1234 as Java writes it.
        assert_eq!(
            QUORUM_AUTH_MAGIC.to_be_bytes(),
            [0x5f, 0x24, 0x35, 0x01, 0x35, 0x01, 0xed, 0xcc]
        );
    }
}
