//! What zkCli prints, byte for byte: Stat lines with Java's `Date.toString()` times, ACL
//! lines in jute's `Id.toString()` form, `WatchedEvent` lines, Java list and
//! `KeeperException` messages. Scripts parse these, so every shape here follows Apache
//! 3.8's `StatPrinter`, `GetAclCommand`, `CliWrapperException` and friends.

use zk_client::{Acl, ErrorCode, EventType, SessionState, Stat, WatchedEvent};

/// `StatPrinter.print`: eleven `name = value` lines, zxids and the owner in hex.
pub fn stat(s: &Stat) -> String {
    format!(
        "cZxid = 0x{:x}\nctime = {}\nmZxid = 0x{:x}\nmtime = {}\npZxid = 0x{:x}\n\
         cversion = {}\ndataVersion = {}\naclVersion = {}\nephemeralOwner = 0x{:x}\n\
         dataLength = {}\nnumChildren = {}\n",
        s.czxid,
        java_date(s.ctime),
        s.mzxid,
        java_date(s.mtime),
        s.pzxid,
        s.cversion,
        s.version,
        s.aversion,
        s.ephemeral_owner,
        s.data_length,
        s.num_children
    )
}

const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Java's `new Date(ms).toString()`: `EEE MMM dd HH:mm:ss zzz yyyy` in the local time zone
/// (the zone's abbreviation as the C library names it, which is Java's for the usual zones).
pub fn java_date(ms: i64) -> String {
    let secs = ms.div_euclid(1000) as libc::time_t;
    // SAFETY: a zeroed tm is a valid value; localtime_r only writes the tm we own (and
    // reads TZ / the zone files as Java does).
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe { !libc::localtime_r(&secs, &mut tm).is_null() };
    if !ok {
        return format!("{ms}");
    }
    let zone = if tm.tm_zone.is_null() {
        String::from("UTC")
    } else {
        // SAFETY: tm_zone points at a NUL-terminated static string of the C library.
        unsafe { std::ffi::CStr::from_ptr(tm.tm_zone) }
            .to_string_lossy()
            .into_owned()
    };
    format!(
        "{} {} {:02} {:02}:{:02}:{:02} {} {}",
        DAYS[tm.tm_wday.rem_euclid(7) as usize],
        MONTHS[tm.tm_mon.rem_euclid(12) as usize],
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        zone,
        tm.tm_year + 1900
    )
}

/// `ZKUtil.getPermString`: the letters of `perms` in the order c, d, r, w, a.
pub fn perm_string(perms: i32) -> String {
    [(4, 'c'), (8, 'd'), (1, 'r'), (2, 'w'), (16, 'a')]
        .iter()
        .filter(|(bit, _)| perms & bit != 0)
        .map(|(_, c)| *c)
        .collect()
}

/// jute's `ToStringOutputArchive` escaping of a string field: a leading quote, and
/// `%XX` for the characters its CSV form reserves.
fn jute_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 1);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\0' => out.push_str("%00"),
            '\n' => out.push_str("%0A"),
            '\r' => out.push_str("%0D"),
            ',' => out.push_str("%2C"),
            '}' => out.push_str("%7D"),
            '%' => out.push_str("%25"),
            c => out.push(c),
        }
    }
    out
}

/// `getAcl`'s lines: `Id.toString()` (`'scheme,'id` and a newline) then `: perms`.
pub fn acl_lines(acl: &[Acl]) -> String {
    acl.iter()
        .map(|a| {
            format!(
                "{},{}\n: {}\n",
                jute_string(&a.id.scheme),
                jute_string(&a.id.id),
                perm_string(a.perms)
            )
        })
        .collect()
}

/// Java's `List.toString()`: `[a, b]`.
pub fn java_list(items: &[String]) -> String {
    format!("[{}]", items.join(", "))
}

/// `Watcher.Event.KeeperState` names.
pub fn keeper_state(s: SessionState) -> &'static str {
    match s {
        SessionState::Disconnected => "Disconnected",
        SessionState::Connected => "SyncConnected",
        SessionState::ConnectedReadOnly => "ConnectedReadOnly",
        SessionState::Expired => "Expired",
        SessionState::AuthFailed => "AuthFailed",
        SessionState::Closed => "Closed",
    }
}

/// `Watcher.Event.EventType` names.
pub fn event_type(t: EventType) -> String {
    match t {
        EventType::None => "None".into(),
        EventType::NodeCreated => "NodeCreated".into(),
        EventType::NodeDeleted => "NodeDeleted".into(),
        EventType::NodeDataChanged => "NodeDataChanged".into(),
        EventType::NodeChildrenChanged => "NodeChildrenChanged".into(),
        EventType::DataWatchRemoved => "DataWatchRemoved".into(),
        EventType::ChildWatchRemoved => "ChildWatchRemoved".into(),
        EventType::PersistentWatchRemoved => "PersistentWatchRemoved".into(),
        other => format!("{other:?}"),
    }
}

/// What zkCli's default watcher prints for an event: `printMessage` twice, each line
/// preceded by an empty one.
pub fn watcher_block(ev: &WatchedEvent) -> String {
    let path = if ev.event_type == EventType::None && ev.path.is_empty() {
        "null"
    } else {
        ev.path.as_str()
    };
    format!(
        "\nWATCHER::\n\nWatchedEvent state:{} type:{} path:{}\n",
        keeper_state(ev.state),
        event_type(ev.event_type),
        path
    )
}

/// The prompt's state: Java's `ZooKeeper.States` names.
pub fn prompt_state(s: SessionState) -> &'static str {
    match s {
        SessionState::Disconnected => "CONNECTING",
        SessionState::Connected => "CONNECTED",
        SessionState::ConnectedReadOnly => "CONNECTEDREADONLY",
        SessionState::Expired | SessionState::Closed => "CLOSED",
        SessionState::AuthFailed => "AUTH_FAILED",
    }
}

/// `KeeperException.getCodeMessage`.
pub fn code_message(code: ErrorCode) -> String {
    match code {
        ErrorCode::Ok => "ok".into(),
        ErrorCode::SystemError => "SystemError".into(),
        ErrorCode::RuntimeInconsistency => "RuntimeInconsistency".into(),
        ErrorCode::DataInconsistency => "DataInconsistency".into(),
        ErrorCode::ConnectionLoss => "ConnectionLoss".into(),
        ErrorCode::MarshallingError => "MarshallingError".into(),
        ErrorCode::NewConfigNoQuorum => "NewConfigNoQuorum".into(),
        ErrorCode::ReconfigInProgress => "ReconfigInProgress".into(),
        ErrorCode::Unimplemented => "Unimplemented".into(),
        ErrorCode::OperationTimeout => "OperationTimeout".into(),
        ErrorCode::BadArguments => "BadArguments".into(),
        ErrorCode::ApiError => "APIError".into(),
        ErrorCode::NoNode => "NoNode".into(),
        ErrorCode::NoAuth => "NoAuth".into(),
        ErrorCode::BadVersion => "BadVersion".into(),
        ErrorCode::NoChildrenForEphemerals => "NoChildrenForEphemerals".into(),
        ErrorCode::NodeExists => "NodeExists".into(),
        ErrorCode::InvalidAcl => "InvalidACL".into(),
        ErrorCode::AuthFailed => "AuthFailed".into(),
        ErrorCode::NotEmpty => "Directory not empty".into(),
        ErrorCode::SessionExpired => "Session expired".into(),
        ErrorCode::InvalidCallback => "Invalid callback".into(),
        ErrorCode::SessionMoved => "Session moved".into(),
        ErrorCode::NotReadOnly => "Not a read-only call".into(),
        ErrorCode::EphemeralOnLocalSession => "Ephemeral node on local session".into(),
        ErrorCode::NoWatcher => "No such watcher".into(),
        ErrorCode::ReconfigDisabled => "Reconfig is disabled".into(),
        ErrorCode::SessionClosedRequireSaslAuth => {
            "Session closed because client failed to authenticate".into()
        }
        ErrorCode::QuotaExceeded => "Quota has exceeded".into(),
        ErrorCode::ThrottledOp => "Op throttled due to high load".into(),
        other => format!("Unknown error {}", other.to_i32()),
    }
}

/// `KeeperException.getMessage()`: `KeeperErrorCode = <message>[ for <path>]`.
pub fn keeper_message(code: ErrorCode, path: Option<&str>) -> String {
    match path {
        Some(p) if !p.is_empty() => format!("KeeperErrorCode = {} for {p}", code_message(code)),
        _ => format!("KeeperErrorCode = {}", code_message(code)),
    }
}

/// `CliWrapperException`'s message for a server error on `path` (`None`: Java's null).
pub fn wrapper_message(code: ErrorCode, path: Option<&str>) -> String {
    let p = path.unwrap_or("null");
    match code {
        ErrorCode::NoNode => format!("Node does not exist: {p}"),
        ErrorCode::NoChildrenForEphemerals => format!("Ephemerals cannot have children: {p}"),
        ErrorCode::NodeExists => format!("Node already exists: {p}"),
        ErrorCode::NotEmpty => format!("Node not empty: {p}"),
        ErrorCode::NotReadOnly => format!("Not a read-only call: {p}"),
        ErrorCode::InvalidAcl => format!("Acl is not valid : {p}"),
        ErrorCode::NoAuth => format!("Insufficient permission : {p}"),
        ErrorCode::BadArguments => format!("Arguments are not valid : {p}"),
        ErrorCode::BadVersion => format!("version No is not valid : {p}"),
        ErrorCode::ReconfigInProgress => {
            "Another reconfiguration is in progress -- concurrent reconfigs not supported (yet)"
                .into()
        }
        ErrorCode::NewConfigNoQuorum => "No quorum of new config is connected and up-to-date \
             with the leader of last commmitted config - try invoking reconfiguration after new \
             servers are connected and synced"
            .into(),
        ErrorCode::QuotaExceeded => format!("Quota has exceeded : {p}"),
        other => keeper_message(other, path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perms_in_zkcli_order() {
        assert_eq!(perm_string(31), "cdrwa");
        assert_eq!(perm_string(3), "rw");
        assert_eq!(perm_string(0), "");
    }

    #[test]
    fn acl_line_escapes_as_jute() {
        let acl = [Acl::new(zk_client::Perms::ALL, "world", "anyone")];
        assert_eq!(acl_lines(&acl), "'world,'anyone\n: cdrwa\n");
        let odd = [Acl::new(zk_client::Perms::READ, "x", "a,b%")];
        assert_eq!(acl_lines(&odd), "'x,'a%2Cb%25\n: r\n");
    }

    #[test]
    fn epoch_in_utc() {
        std::env::set_var("TZ", "UTC");
        assert_eq!(java_date(0), "Thu Jan 01 00:00:00 UTC 1970");
        assert_eq!(java_date(1_700_000_000_123), "Tue Nov 14 22:13:20 UTC 2023");
    }

    #[test]
    fn messages_as_keeper_exception() {
        assert_eq!(
            wrapper_message(ErrorCode::NoNode, Some("/x")),
            "Node does not exist: /x"
        );
        assert_eq!(
            wrapper_message(ErrorCode::ReconfigDisabled, None),
            "KeeperErrorCode = Reconfig is disabled"
        );
        assert_eq!(
            wrapper_message(ErrorCode::NoWatcher, Some("/a")),
            "KeeperErrorCode = No such watcher for /a"
        );
    }
}
