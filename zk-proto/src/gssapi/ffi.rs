//! The slice of the C GSS-API (RFC 2744) and of libkrb5 that ZooKeeper's Kerberos logins
//! use, resolved at run time from MIT Kerberos' `libgssapi_krb5.so.2` and `libkrb5.so.3`.
//!
//! Loading at run time instead of linking keeps the build free of C headers and of a
//! bindgen/libclang toolchain, and lets a binary that never sees a Kerberos config run on
//! a host without MIT Kerberos; a config that asks for Kerberos on such a host is refused
//! with the loader's reason.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::sync::OnceLock;

/// `OM_uint32`.
pub type OmUint32 = u32;
/// `gss_name_t`.
pub type GssName = *mut c_void;
/// `gss_cred_id_t`.
pub type GssCred = *mut c_void;
/// `gss_ctx_id_t`.
pub type GssCtx = *mut c_void;

/// `gss_OID_desc` (MIT lays it out naturally on every platform but macOS).
#[repr(C)]
pub struct OidDesc {
    pub length: OmUint32,
    pub elements: *mut c_void,
}

/// `gss_OID_set_desc`.
#[repr(C)]
pub struct OidSetDesc {
    pub count: usize,
    pub elements: *mut OidDesc,
}

/// `gss_buffer_desc`.
#[repr(C)]
pub struct BufferDesc {
    pub length: usize,
    pub value: *mut c_void,
}

impl BufferDesc {
    /// An empty buffer for the library to fill.
    pub fn empty() -> Self {
        BufferDesc {
            length: 0,
            value: std::ptr::null_mut(),
        }
    }

    /// A view of `bytes` (the library only reads input buffers).
    pub fn of(bytes: &[u8]) -> Self {
        BufferDesc {
            length: bytes.len(),
            value: bytes.as_ptr() as *mut c_void,
        }
    }
}

/// `gss_key_value_element_desc` (credential store entries, MIT 1.11+).
#[repr(C)]
pub struct KeyValueElement {
    pub key: *const c_char,
    pub value: *const c_char,
}

/// `gss_key_value_set_desc`.
#[repr(C)]
pub struct KeyValueSet {
    pub count: OmUint32,
    pub elements: *const KeyValueElement,
}

pub const GSS_S_COMPLETE: OmUint32 = 0;
pub const GSS_S_CONTINUE_NEEDED: OmUint32 = 1;
/// Calling and routine error bits (`GSS_ERROR`).
pub const GSS_ERROR_MASK: OmUint32 = 0xffff_0000;
pub const GSS_C_GSS_CODE: c_int = 1;
pub const GSS_C_MECH_CODE: c_int = 2;
pub const GSS_C_MUTUAL_FLAG: OmUint32 = 2;
pub const GSS_C_CONF_FLAG: OmUint32 = 16;
pub const GSS_C_INTEG_FLAG: OmUint32 = 32;
pub const GSS_C_INDEFINITE: OmUint32 = 0xffff_ffff;
pub const GSS_C_INITIATE: c_int = 1;
pub const GSS_C_ACCEPT: c_int = 2;

/// DER bodies of the OIDs used (RFC 1964, RFC 2743).
pub const KRB5_MECH: &[u8] = b"\x2a\x86\x48\x86\xf7\x12\x01\x02\x02";
pub const KRB5_NT_PRINCIPAL_NAME: &[u8] = b"\x2a\x86\x48\x86\xf7\x12\x01\x02\x02\x01";

type ImportName =
    unsafe extern "C" fn(*mut OmUint32, *mut BufferDesc, *mut OidDesc, *mut GssName) -> OmUint32;
type DisplayName =
    unsafe extern "C" fn(*mut OmUint32, GssName, *mut BufferDesc, *mut *mut OidDesc) -> OmUint32;
type ReleaseName = unsafe extern "C" fn(*mut OmUint32, *mut GssName) -> OmUint32;
type ReleaseBuffer = unsafe extern "C" fn(*mut OmUint32, *mut BufferDesc) -> OmUint32;
type ReleaseCred = unsafe extern "C" fn(*mut OmUint32, *mut GssCred) -> OmUint32;
type DeleteSecContext =
    unsafe extern "C" fn(*mut OmUint32, *mut GssCtx, *mut BufferDesc) -> OmUint32;
type AcquireCredFrom = unsafe extern "C" fn(
    *mut OmUint32,
    GssName,
    OmUint32,
    *mut OidSetDesc,
    c_int,
    *const KeyValueSet,
    *mut GssCred,
    *mut *mut OidSetDesc,
    *mut OmUint32,
) -> OmUint32;
type InquireCred = unsafe extern "C" fn(
    *mut OmUint32,
    GssCred,
    *mut GssName,
    *mut OmUint32,
    *mut c_int,
    *mut *mut OidSetDesc,
) -> OmUint32;
type InitSecContext = unsafe extern "C" fn(
    *mut OmUint32,
    GssCred,
    *mut GssCtx,
    GssName,
    *mut OidDesc,
    OmUint32,
    OmUint32,
    *mut c_void,
    *mut BufferDesc,
    *mut *mut OidDesc,
    *mut BufferDesc,
    *mut OmUint32,
    *mut OmUint32,
) -> OmUint32;
type AcceptSecContext = unsafe extern "C" fn(
    *mut OmUint32,
    *mut GssCtx,
    GssCred,
    *mut BufferDesc,
    *mut c_void,
    *mut GssName,
    *mut *mut OidDesc,
    *mut BufferDesc,
    *mut OmUint32,
    *mut OmUint32,
    *mut GssCred,
) -> OmUint32;
type Wrap = unsafe extern "C" fn(
    *mut OmUint32,
    GssCtx,
    c_int,
    OmUint32,
    *mut BufferDesc,
    *mut c_int,
    *mut BufferDesc,
) -> OmUint32;
type Unwrap = unsafe extern "C" fn(
    *mut OmUint32,
    GssCtx,
    *mut BufferDesc,
    *mut BufferDesc,
    *mut c_int,
    *mut OmUint32,
) -> OmUint32;
type DisplayStatus = unsafe extern "C" fn(
    *mut OmUint32,
    OmUint32,
    c_int,
    *mut OidDesc,
    *mut OmUint32,
    *mut BufferDesc,
) -> OmUint32;
type Krb5InitContext = unsafe extern "C" fn(*mut *mut c_void) -> i32;
type Krb5FreeContext = unsafe extern "C" fn(*mut c_void);
type Krb5GetDefaultRealm = unsafe extern "C" fn(*mut c_void, *mut *mut c_char) -> i32;
type Krb5FreeDefaultRealm = unsafe extern "C" fn(*mut c_void, *mut c_char);

/// The resolved entry points.
pub struct Lib {
    pub import_name: ImportName,
    pub display_name: DisplayName,
    pub release_name: ReleaseName,
    pub release_buffer: ReleaseBuffer,
    pub release_cred: ReleaseCred,
    pub delete_sec_context: DeleteSecContext,
    pub acquire_cred_from: AcquireCredFrom,
    pub inquire_cred: InquireCred,
    pub init_sec_context: InitSecContext,
    pub accept_sec_context: AcceptSecContext,
    pub wrap: Wrap,
    pub unwrap: Unwrap,
    pub display_status: DisplayStatus,
    pub krb5_init_context: Krb5InitContext,
    pub krb5_free_context: Krb5FreeContext,
    pub krb5_get_default_realm: Krb5GetDefaultRealm,
    pub krb5_free_default_realm: Krb5FreeDefaultRealm,
}

/// Environment variable naming another GSS-API library file (tests use it to see what a
/// host without MIT Kerberos does).
pub const LIBRARY_ENV: &str = "ZK_GSSAPI_LIBRARY";
const GSSAPI_SONAME: &str = "libgssapi_krb5.so.2";
const KRB5_SONAME: &str = "libkrb5.so.3";

fn dlerror() -> String {
    // SAFETY: dlerror returns a thread-local message or null.
    let e = unsafe { libc::dlerror() };
    if e.is_null() {
        "unknown error".into()
    } else {
        // SAFETY: non-null dlerror results are NUL-terminated strings.
        unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned()
    }
}

fn open(name: &str) -> Result<*mut c_void, String> {
    let c = CString::new(name).map_err(|_| format!("bad library name {name:?}"))?;
    // SAFETY: a valid C string; the handle is kept for the life of the process.
    let h = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    if h.is_null() {
        Err(format!(
            "cannot load {name} ({}): install MIT Kerberos (Debian: libgssapi-krb5-2)",
            dlerror()
        ))
    } else {
        Ok(h)
    }
}

fn sym(h: *mut c_void, lib: &str, name: &str) -> Result<*mut c_void, String> {
    let c = CString::new(name).map_err(|_| format!("bad symbol {name:?}"))?;
    // SAFETY: h is a live dlopen handle, c a valid C string.
    let p = unsafe { libc::dlsym(h, c.as_ptr()) };
    if p.is_null() {
        Err(format!(
            "{lib} has no {name} (MIT Kerberos 1.11 or later is needed)"
        ))
    } else {
        Ok(p)
    }
}

fn load() -> Result<Lib, String> {
    let gss_name = std::env::var(LIBRARY_ENV).unwrap_or_else(|_| GSSAPI_SONAME.to_owned());
    let g = open(&gss_name)?;
    let k = open(KRB5_SONAME)?;
    macro_rules! f {
        ($h:expr, $lib:expr, $name:literal, $ty:ty) => {
            // SAFETY: the symbol is the C function of this name, whose prototype (RFC 2744,
            // MIT's krb5.h) the field's type spells out.
            unsafe { std::mem::transmute::<*mut c_void, $ty>(sym($h, $lib, $name)?) }
        };
    }
    Ok(Lib {
        import_name: f!(g, &gss_name, "gss_import_name", ImportName),
        display_name: f!(g, &gss_name, "gss_display_name", DisplayName),
        release_name: f!(g, &gss_name, "gss_release_name", ReleaseName),
        release_buffer: f!(g, &gss_name, "gss_release_buffer", ReleaseBuffer),
        release_cred: f!(g, &gss_name, "gss_release_cred", ReleaseCred),
        delete_sec_context: f!(g, &gss_name, "gss_delete_sec_context", DeleteSecContext),
        acquire_cred_from: f!(g, &gss_name, "gss_acquire_cred_from", AcquireCredFrom),
        inquire_cred: f!(g, &gss_name, "gss_inquire_cred", InquireCred),
        init_sec_context: f!(g, &gss_name, "gss_init_sec_context", InitSecContext),
        accept_sec_context: f!(g, &gss_name, "gss_accept_sec_context", AcceptSecContext),
        wrap: f!(g, &gss_name, "gss_wrap", Wrap),
        unwrap: f!(g, &gss_name, "gss_unwrap", Unwrap),
        display_status: f!(g, &gss_name, "gss_display_status", DisplayStatus),
        krb5_init_context: f!(k, KRB5_SONAME, "krb5_init_context", Krb5InitContext),
        krb5_free_context: f!(k, KRB5_SONAME, "krb5_free_context", Krb5FreeContext),
        krb5_get_default_realm: f!(
            k,
            KRB5_SONAME,
            "krb5_get_default_realm",
            Krb5GetDefaultRealm
        ),
        krb5_free_default_realm: f!(
            k,
            KRB5_SONAME,
            "krb5_free_default_realm",
            Krb5FreeDefaultRealm
        ),
    })
}

/// The library, loaded once per process (the result, good or bad, is kept).
pub fn lib() -> Result<&'static Lib, String> {
    static LIB: OnceLock<Result<Lib, String>> = OnceLock::new();
    LIB.get_or_init(load).as_ref().map_err(Clone::clone)
}
