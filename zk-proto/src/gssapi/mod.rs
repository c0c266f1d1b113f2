//! Kerberos v5 logins as ZooKeeper runs them: the SASL GSSAPI mechanism (RFC 4752) over the
//! system's MIT Kerberos GSS-API, client (initiator) and server (acceptor) sides, and the
//! `Krb5LoginModule` credentials of a JAAS section.
//!
//! Unlike the rest of this crate this module does I/O: acquiring credentials reads keytabs
//! and ticket caches, and a client's first token asks the KDC for a service ticket. Later
//! steps (the mutual-authentication reply and the security-layer negotiation) are
//! computations only.
//!
//! The exchange (RFC 4752, as Java's `GssKrb5Client` / `GssKrb5Server` run it): the client
//! sends its AP-REQ, the server answers with the AP-REP (mutual authentication), the client
//! answers with an empty token, the server sends the wrapped security-layer offer (only
//! "no security layer", maximum buffer 65536, as ZooKeeper uses SASL for authentication
//! only), the client answers with the wrapped choice and its authorization id, and the
//! server's last answer carries no token.

use std::ffi::{c_int, c_void, CString};
use std::path::Path;

pub use crate::sasl::jaas::{KerberosLogin, KRB5_LOGIN_MODULE};
use std::sync::Arc;

mod ffi;

use ffi::{BufferDesc, GssCred, GssCtx, GssName, Lib, OidDesc, OmUint32};

pub use ffi::LIBRARY_ENV;

/// The SASL mechanism name.
pub const MECHANISM: &str = "GSSAPI";
/// Largest GSSAPI token either side takes from its peer (tickets with large authorization
/// data are a few KiB; this leaves room without letting a peer make us allocate much).
pub const MAX_TOKEN: usize = 64 * 1024;
/// "No security layer" in the RFC 4752 layer bit mask.
const NO_SECURITY_LAYER: u8 = 0x01;
/// Maximum buffer size the server announces, as Java's `GssKrb5Server` does.
const SERVER_MAX_BUFFER: u32 = 65536;

/// Whether Kerberos can be used here: `Err` with the reason (MIT Kerberos missing).
pub fn available() -> Result<(), String> {
    ffi::lib().map(|_| ())
}

/// The default realm of the Kerberos configuration (`default_realm` of the krb5.conf that
/// `KRB5_CONFIG` names, else `/etc/krb5.conf`).
pub fn default_realm() -> Result<String, String> {
    let lib = ffi::lib()?;
    let mut ctx: *mut c_void = std::ptr::null_mut();
    // SAFETY: out-pointer to a context we free below.
    let rc = unsafe { (lib.krb5_init_context)(&mut ctx) };
    if rc != 0 || ctx.is_null() {
        return Err(format!(
            "cannot read the Kerberos configuration (error {rc})"
        ));
    }
    let mut realm: *mut std::ffi::c_char = std::ptr::null_mut();
    // SAFETY: ctx is live; realm is freed with the matching call.
    let rc = unsafe { (lib.krb5_get_default_realm)(ctx, &mut realm) };
    let out = if rc == 0 && !realm.is_null() {
        // SAFETY: a NUL-terminated string owned by libkrb5.
        let s = unsafe { std::ffi::CStr::from_ptr(realm) }
            .to_string_lossy()
            .into_owned();
        // SAFETY: allocated by krb5_get_default_realm on this context.
        unsafe { (lib.krb5_free_default_realm)(ctx, realm) };
        Ok(s)
    } else {
        Err("the Kerberos configuration has no default_realm".to_owned())
    };
    // SAFETY: ctx came from krb5_init_context and is not used after.
    unsafe { (lib.krb5_free_context)(ctx) };
    out
}

fn oid(bytes: &'static [u8]) -> OidDesc {
    OidDesc {
        length: bytes.len() as OmUint32,
        elements: bytes.as_ptr() as *mut c_void,
    }
}

/// Text of a GSS major/minor status pair, as `gss_display_status` words it.
fn status_text(lib: &Lib, major: OmUint32, minor: OmUint32) -> String {
    let mut parts = Vec::new();
    let mut mech = oid(ffi::KRB5_MECH);
    for (code, kind) in [(major, ffi::GSS_C_GSS_CODE), (minor, ffi::GSS_C_MECH_CODE)] {
        if code == 0 {
            continue;
        }
        let mut msg_ctx: OmUint32 = 0;
        for _ in 0..8 {
            let (mut min, mut buf) = (0, BufferDesc::empty());
            // SAFETY: out-parameters owned here; the buffer is released below.
            let maj = unsafe {
                (lib.display_status)(&mut min, code, kind, &mut mech, &mut msg_ctx, &mut buf)
            };
            if maj != ffi::GSS_S_COMPLETE {
                break;
            }
            let text = take_buffer(lib, &mut buf);
            let text = String::from_utf8_lossy(&text).trim().to_owned();
            if !text.is_empty() && !parts.contains(&text) {
                parts.push(text);
            }
            if msg_ctx == 0 {
                break;
            }
        }
    }
    if parts.is_empty() {
        format!("GSS-API error {major:#x}/{minor}")
    } else {
        parts.join(": ")
    }
}

fn check(lib: &Lib, what: &str, major: OmUint32, minor: OmUint32) -> Result<(), String> {
    if major & ffi::GSS_ERROR_MASK != 0 {
        Err(format!("{what}: {}", status_text(lib, major, minor)))
    } else {
        Ok(())
    }
}

/// Copies a library-owned buffer out and releases it.
fn take_buffer(lib: &Lib, buf: &mut BufferDesc) -> Vec<u8> {
    let out = if buf.value.is_null() || buf.length == 0 {
        Vec::new()
    } else {
        // SAFETY: the library filled value/length; we copy before releasing.
        unsafe { std::slice::from_raw_parts(buf.value as *const u8, buf.length) }.to_vec()
    };
    let mut min = 0;
    // SAFETY: a buffer the library allocated (or empty, which release accepts).
    unsafe { (lib.release_buffer)(&mut min, buf) };
    out
}

/// A GSS name (owned).
struct Name {
    lib: &'static Lib,
    h: GssName,
}

impl Name {
    /// A Kerberos principal name (`service/host@REALM`, `user@REALM`; the default realm
    /// when none is written).
    fn principal(lib: &'static Lib, text: &str) -> Result<Name, String> {
        let mut buf = BufferDesc::of(text.as_bytes());
        let mut ty = oid(ffi::KRB5_NT_PRINCIPAL_NAME);
        let (mut min, mut h) = (0, std::ptr::null_mut());
        // SAFETY: input buffer and OID outlive the call; h is released on drop.
        let maj = unsafe { (lib.import_name)(&mut min, &mut buf, &mut ty, &mut h) };
        check(lib, &format!("bad Kerberos principal {text:?}"), maj, min)?;
        Ok(Name { lib, h })
    }

    fn display(lib: &Lib, h: GssName) -> Result<String, String> {
        let (mut min, mut buf) = (0, BufferDesc::empty());
        // SAFETY: h is a live name; the buffer is released by take_buffer.
        let maj = unsafe { (lib.display_name)(&mut min, h, &mut buf, std::ptr::null_mut()) };
        check(lib, "cannot display a Kerberos name", maj, min)?;
        String::from_utf8(take_buffer(lib, &mut buf))
            .map_err(|_| "a Kerberos name is not UTF-8".to_owned())
    }
}

impl Drop for Name {
    fn drop(&mut self) {
        let mut min = 0;
        // SAFETY: h came from gss_import_name/accept and is released once.
        unsafe { (self.lib.release_name)(&mut min, &mut self.h) };
    }
}

/// Acquired credentials.
pub struct Credentials {
    lib: &'static Lib,
    h: GssCred,
    principal: String,
}

// SAFETY: MIT's credential handles lock internally and may be used from any thread.
unsafe impl Send for Credentials {}
// SAFETY: as above.
unsafe impl Sync for Credentials {}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("principal", &self.principal)
            .finish_non_exhaustive()
    }
}

impl Drop for Credentials {
    fn drop(&mut self) {
        let mut min = 0;
        // SAFETY: acquired once, released once.
        unsafe { (self.lib.release_cred)(&mut min, &mut self.h) };
    }
}

fn acquire(
    lib: &'static Lib,
    principal: Option<&str>,
    usage: c_int,
    store: &[(&str, String)],
) -> Result<Credentials, String> {
    let name = principal.map(|n| Name::principal(lib, n)).transpose()?;
    let cstrs: Vec<(CString, CString)> = store
        .iter()
        .map(|(k, v)| {
            Ok((
                CString::new(*k).map_err(|_| "bad credential store key".to_owned())?,
                CString::new(v.as_str()).map_err(|_| format!("{v:?} contains a NUL byte"))?,
            ))
        })
        .collect::<Result<_, String>>()?;
    let elems: Vec<ffi::KeyValueElement> = cstrs
        .iter()
        .map(|(k, v)| ffi::KeyValueElement {
            key: k.as_ptr(),
            value: v.as_ptr(),
        })
        .collect();
    let set = ffi::KeyValueSet {
        count: elems.len() as OmUint32,
        elements: elems.as_ptr(),
    };
    let mut mech = oid(ffi::KRB5_MECH);
    let mut mechs = ffi::OidSetDesc {
        count: 1,
        elements: &mut mech,
    };
    let (mut min, mut h) = (0, std::ptr::null_mut());
    // SAFETY: every pointer outlives the call; h is released by Credentials::drop.
    let maj = unsafe {
        (lib.acquire_cred_from)(
            &mut min,
            name.as_ref().map_or(std::ptr::null_mut(), |n| n.h),
            ffi::GSS_C_INDEFINITE,
            &mut mechs,
            usage,
            &set,
            &mut h,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
    let who = principal.map(|p| format!(" of {p}")).unwrap_or_default();
    check(
        lib,
        &format!(
            "cannot get Kerberos credentials{who} ({})",
            name_text(store, usage)
        ),
        maj,
        min,
    )?;
    let mut creds = Credentials {
        lib,
        h,
        principal: String::new(),
    };
    let (mut min, mut n): (OmUint32, GssName) = (0, std::ptr::null_mut());
    // SAFETY: creds.h is live; the name is released by the Name guard.
    let maj = unsafe {
        (lib.inquire_cred)(
            &mut min,
            creds.h,
            &mut n,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
    check(lib, "cannot read the credentials' principal", maj, min)?;
    let guard = Name { lib, h: n };
    creds.principal = Name::display(lib, guard.h)?;
    Ok(creds)
}

/// Where credentials were looked for, for messages.
fn name_text(store: &[(&str, String)], usage: c_int) -> String {
    let kind = if usage == ffi::GSS_C_ACCEPT {
        "accepting"
    } else {
        "initiating"
    };
    let from: Vec<String> = store.iter().map(|(k, v)| format!("{k} {v}")).collect();
    format!("{kind} from {}", from.join(", "))
}

impl Credentials {
    /// A client's credentials, as `Krb5LoginModule` gets them: the ticket cache first when
    /// `use_ticket_cache`, then the keytab (its ticket kept in a private in-memory cache,
    /// never in the user's).
    pub fn initiator(login: &KerberosLogin) -> Result<Credentials, String> {
        let lib = ffi::lib()?;
        let mut errors = Vec::new();
        if login.use_ticket_cache {
            let store: Vec<(&str, String)> = login
                .ticket_cache
                .iter()
                .map(|c| ("ccache", c.clone()))
                .collect();
            match acquire(lib, login.principal.as_deref(), ffi::GSS_C_INITIATE, &store) {
                Ok(c) => return Ok(c),
                Err(e) => errors.push(format!("ticket cache: {e}")),
            }
        }
        if let Some(kt) = &login.keytab {
            if !kt.is_file() {
                errors.push(format!("keytab {} does not exist", kt.display()));
            } else {
                let store = [
                    ("client_keytab", kt.display().to_string()),
                    ("ccache", format!("MEMORY:zk-{:016x}", unique())),
                ];
                match acquire(lib, login.principal.as_deref(), ffi::GSS_C_INITIATE, &store) {
                    Ok(c) => return Ok(c),
                    Err(e) => errors.push(format!(
                        "keytab {}{}: {e}",
                        kt.display(),
                        login
                            .principal
                            .as_ref()
                            .map(|p| format!(" (does it hold a key of {p}?)"))
                            .unwrap_or_default()
                    )),
                }
            }
        }
        Err(errors.join("; "))
    }

    /// A server's credentials: the key of `principal` (`service/host@REALM`) in `keytab`.
    pub fn acceptor(principal: &str, keytab: &Path) -> Result<Credentials, String> {
        let lib = ffi::lib()?;
        if !keytab.is_file() {
            return Err(format!("keytab {} does not exist", keytab.display()));
        }
        let creds = acquire(
            lib,
            Some(principal),
            ffi::GSS_C_ACCEPT,
            &[("keytab", keytab.display().to_string())],
        )?;
        Ok(creds)
    }

    /// The principal these credentials are for (`alice@REALM`).
    pub fn principal(&self) -> &str {
        &self.principal
    }
}

/// A process-unique number for private credential cache names.
fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    (u64::from(std::process::id()) << 32) | NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A security context, either side.
struct Context {
    lib: &'static Lib,
    h: GssCtx,
}

// SAFETY: a context is used by one owner at a time (`&mut self`); MIT contexts may move
// between threads.
unsafe impl Send for Context {}
// SAFETY: every method that touches the handle takes `&mut self`.
unsafe impl Sync for Context {}

impl Drop for Context {
    fn drop(&mut self) {
        if !self.h.is_null() {
            let mut min = 0;
            // SAFETY: created by init/accept, deleted once.
            unsafe { (self.lib.delete_sec_context)(&mut min, &mut self.h, std::ptr::null_mut()) };
        }
    }
}

impl Context {
    fn wrap(&mut self, data: &[u8]) -> Result<Vec<u8>, String> {
        let (mut min, mut input, mut out) = (0, BufferDesc::of(data), BufferDesc::empty());
        // SAFETY: input borrows data for the call; out is released by take_buffer.
        let maj = unsafe {
            (self.lib.wrap)(
                &mut min,
                self.h,
                0,
                0,
                &mut input,
                std::ptr::null_mut(),
                &mut out,
            )
        };
        check(self.lib, "cannot wrap a token", maj, min)?;
        Ok(take_buffer(self.lib, &mut out))
    }

    fn unwrap(&mut self, data: &[u8]) -> Result<Vec<u8>, String> {
        let (mut min, mut input, mut out) = (0, BufferDesc::of(data), BufferDesc::empty());
        // SAFETY: as in wrap.
        let maj = unsafe {
            (self.lib.unwrap)(
                &mut min,
                self.h,
                &mut input,
                &mut out,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        check(self.lib, "cannot unwrap the peer's token", maj, min)?;
        Ok(take_buffer(self.lib, &mut out))
    }
}

fn bounded(token: &[u8]) -> Result<(), String> {
    if token.len() > MAX_TOKEN {
        Err(format!(
            "GSSAPI token of {} bytes is longer than {MAX_TOKEN}",
            token.len()
        ))
    } else {
        Ok(())
    }
}

/// Where a client's exchange is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientStage {
    /// Establishing the context (AP-REQ sent, AP-REP expected).
    Context,
    /// Context established; the server's wrapped layer offer is next.
    Layers,
    /// Our choice was sent; only the server's final (token-less) answer remains.
    Done,
}

/// The client side of one SASL GSSAPI exchange.
pub struct SaslClient {
    ctx: Context,
    creds: Arc<Credentials>,
    target: Name,
    stage: ClientStage,
    authzid: String,
}

// SAFETY: Name is only touched through `&mut self` (init steps).
unsafe impl Send for SaslClient {}
// SAFETY: as above.
unsafe impl Sync for SaslClient {}

impl std::fmt::Debug for SaslClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslClient")
            .field("principal", &self.creds.principal)
            .field("stage", &self.stage)
            .finish_non_exhaustive()
    }
}

impl SaslClient {
    /// Starts an exchange with the server whose principal is `server_principal`
    /// (`zookeeper/host@REALM`): returns the client and its first token. This asks the KDC
    /// for a service ticket (blocking I/O); run it off an async executor.
    pub fn start(
        creds: Arc<Credentials>,
        server_principal: &str,
    ) -> Result<(SaslClient, Vec<u8>), String> {
        let lib = ffi::lib()?;
        let target = Name::principal(lib, server_principal)?;
        let authzid = creds.principal.clone();
        let mut c = SaslClient {
            ctx: Context {
                lib,
                h: std::ptr::null_mut(),
            },
            creds,
            target,
            stage: ClientStage::Context,
            authzid,
        };
        let (token, established) = c.init(None).map_err(|e| {
            format!(
                "{} cannot get a ticket for {server_principal}: {e}",
                c.creds.principal
            )
        })?;
        if established {
            // Without mutual authentication the context would be ready now; we always
            // ask for it, so this means a library that ignored the request.
            return Err("the GSS-API context completed without mutual authentication".into());
        }
        Ok((c, token))
    }

    fn init(&mut self, input: Option<&[u8]>) -> Result<(Vec<u8>, bool), String> {
        let lib = self.ctx.lib;
        let mut mech = oid(ffi::KRB5_MECH);
        let mut inbuf = input.map(BufferDesc::of);
        let (mut min, mut out) = (0, BufferDesc::empty());
        // SAFETY: every pointer outlives the call; the context handle lives in self.ctx.
        let maj = unsafe {
            (lib.init_sec_context)(
                &mut min,
                self.creds.h,
                &mut self.ctx.h,
                self.target.h,
                &mut mech,
                ffi::GSS_C_MUTUAL_FLAG | ffi::GSS_C_CONF_FLAG | ffi::GSS_C_INTEG_FLAG,
                0,
                std::ptr::null_mut(),
                inbuf
                    .as_mut()
                    .map_or(std::ptr::null_mut(), |b| b as *mut BufferDesc),
                std::ptr::null_mut(),
                &mut out,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        let token = take_buffer(lib, &mut out);
        check(lib, "GSS-API initiator", maj, min)?;
        Ok((token, maj & ffi::GSS_S_CONTINUE_NEEDED == 0))
    }

    /// Answers a server token; `Ok(None)` means nothing is to be sent (the exchange only
    /// waits for the server's final, token-less answer).
    pub fn step(&mut self, token: &[u8]) -> Result<Option<Vec<u8>>, String> {
        bounded(token)?;
        match self.stage {
            ClientStage::Context => {
                let (out, established) = self
                    .init(Some(token))
                    .map_err(|e| format!("the server's reply does not authenticate it: {e}"))?;
                if established {
                    self.stage = ClientStage::Layers;
                }
                // RFC 4752 3.1: once established, the client answers with an empty token.
                Ok(Some(out))
            }
            ClientStage::Layers => {
                let offer = self.ctx.unwrap(token)?;
                let [layers, ..] = offer[..] else {
                    return Err("empty security-layer offer".into());
                };
                if offer.len() != 4 {
                    return Err(format!(
                        "security-layer offer of {} bytes, not 4",
                        offer.len()
                    ));
                }
                if layers & NO_SECURITY_LAYER == 0 {
                    return Err(format!(
                        "the server requires a SASL security layer (offer {layers:#04x}), \
                         which ZooKeeper does not use"
                    ));
                }
                // No layer chosen: maximum buffer 0 (RFC 4752 3.1), then our identity.
                let mut choice = vec![NO_SECURITY_LAYER, 0, 0, 0];
                choice.extend_from_slice(self.authzid.as_bytes());
                let out = self.ctx.wrap(&choice)?;
                self.stage = ClientStage::Done;
                Ok(Some(out))
            }
            ClientStage::Done => Err("a GSSAPI token after the exchange ended".into()),
        }
    }

    /// Whether our last token was sent (the server's answer decides).
    pub fn is_complete(&self) -> bool {
        self.stage == ClientStage::Done
    }

    /// The principal we log in as.
    pub fn principal(&self) -> &str {
        &self.creds.principal
    }
}

/// Where a server's exchange is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerStage {
    Context,
    /// Established; the client's empty token is next, answered with the layer offer.
    Established,
    /// Offer sent; the client's wrapped choice is next.
    Offered,
    Done,
}

/// One server step's result.
#[derive(Debug, PartialEq, Eq)]
pub enum ServerStep {
    /// Send this token and wait for the next.
    Continue(Vec<u8>),
    /// Authenticated; the answer carries no token.
    Complete {
        /// The client's principal as the KDC vouched for it (`alice@REALM`).
        principal: String,
        /// The authorization id the client asked for (its principal when it sent none).
        authzid: String,
    },
}

/// The server side of one SASL GSSAPI exchange.
pub struct SaslServer {
    ctx: Context,
    creds: Arc<Credentials>,
    stage: ServerStage,
    peer: String,
}

impl std::fmt::Debug for SaslServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslServer")
            .field("server", &self.creds.principal)
            .field("stage", &self.stage)
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl SaslServer {
    /// A fresh exchange accepting with `creds`.
    pub fn new(creds: Arc<Credentials>) -> SaslServer {
        SaslServer {
            ctx: Context {
                lib: creds.lib,
                h: std::ptr::null_mut(),
            },
            creds,
            stage: ServerStage::Context,
            peer: String::new(),
        }
    }

    /// Evaluates a client token (reads the keytab; no network I/O).
    pub fn step(&mut self, token: &[u8]) -> Result<ServerStep, String> {
        bounded(token)?;
        match self.stage {
            ServerStage::Context => {
                let lib = self.ctx.lib;
                let mut input = BufferDesc::of(token);
                let (mut min, mut out, mut src) = (0, BufferDesc::empty(), std::ptr::null_mut());
                // SAFETY: every pointer outlives the call; src is released by the guard.
                let maj = unsafe {
                    (lib.accept_sec_context)(
                        &mut min,
                        &mut self.ctx.h,
                        self.creds.h,
                        &mut input,
                        std::ptr::null_mut(),
                        &mut src,
                        std::ptr::null_mut(),
                        &mut out,
                        std::ptr::null_mut(),
                        std::ptr::null_mut(),
                        std::ptr::null_mut(),
                    )
                };
                let out = take_buffer(lib, &mut out);
                let src = Name { lib, h: src };
                check(lib, "Kerberos login refused", maj, min)?;
                if maj & ffi::GSS_S_CONTINUE_NEEDED != 0 {
                    return Ok(ServerStep::Continue(out));
                }
                self.peer = Name::display(lib, src.h)?;
                self.stage = ServerStage::Established;
                if out.is_empty() {
                    self.offer()
                } else {
                    Ok(ServerStep::Continue(out))
                }
            }
            // Java's GssKrb5Server ignores what the client sends here.
            ServerStage::Established => self.offer(),
            ServerStage::Offered => {
                let choice = self.ctx.unwrap(token)?;
                if choice.len() < 4 {
                    return Err(format!(
                        "security-layer choice of {} bytes, fewer than 4",
                        choice.len()
                    ));
                }
                if choice[0] != NO_SECURITY_LAYER {
                    return Err(format!(
                        "the client chose security layer {:#04x}; only 'none' was offered",
                        choice[0]
                    ));
                }
                let authzid = std::str::from_utf8(&choice[4..])
                    .map_err(|_| "the authorization id is not UTF-8".to_owned())?;
                self.stage = ServerStage::Done;
                Ok(ServerStep::Complete {
                    principal: self.peer.clone(),
                    authzid: if authzid.is_empty() {
                        self.peer.clone()
                    } else {
                        authzid.to_owned()
                    },
                })
            }
            ServerStage::Done => Err("a GSSAPI token after the exchange ended".into()),
        }
    }

    fn offer(&mut self) -> Result<ServerStep, String> {
        let b = SERVER_MAX_BUFFER.to_be_bytes();
        let out = self.ctx.wrap(&[NO_SECURITY_LAYER, b[1], b[2], b[3]])?;
        self.stage = ServerStage::Offered;
        Ok(ServerStep::Continue(out))
    }

    /// The server's own principal.
    pub fn principal(&self) -> &str {
        &self.creds.principal
    }
}
