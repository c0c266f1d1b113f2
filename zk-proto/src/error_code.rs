//! Result codes (`KeeperException.Code`).

use crate::int_enum::int_enum;

int_enum! {
    /// The `err` of a reply header, multi result or error txn.
    pub enum ErrorCode {
        /// Success.
        Ok = 0,
        /// Unexpected server error.
        SystemError = -1,
        /// A multi op after the failing one.
        RuntimeInconsistency = -2,
        /// Data inconsistency found.
        DataInconsistency = -3,
        /// Connection to the server lost.
        ConnectionLoss = -4,
        /// (De)serialisation failed.
        MarshallingError = -5,
        /// Operation not implemented (e.g. TTL without extended types).
        Unimplemented = -6,
        /// Operation timed out.
        OperationTimeout = -7,
        /// Invalid arguments.
        BadArguments = -8,
        /// Unknown session (internal).
        UnknownSession = -12,
        /// Reconfig has no quorum for the new config.
        NewConfigNoQuorum = -13,
        /// Another reconfig is running.
        ReconfigInProgress = -14,
        /// API error base.
        ApiError = -100,
        /// Node does not exist.
        NoNode = -101,
        /// Not authorised.
        NoAuth = -102,
        /// Version mismatch.
        BadVersion = -103,
        /// Ephemeral nodes cannot have children.
        NoChildrenForEphemerals = -108,
        /// Node already exists.
        NodeExists = -110,
        /// Node has children.
        NotEmpty = -111,
        /// Session expired.
        SessionExpired = -112,
        /// Invalid callback.
        InvalidCallback = -113,
        /// Invalid ACL.
        InvalidAcl = -114,
        /// Authentication failed.
        AuthFailed = -115,
        /// Session moved to another server.
        SessionMoved = -118,
        /// Write on a read-only server.
        NotReadOnly = -119,
        /// Ephemeral on a local session.
        EphemeralOnLocalSession = -120,
        /// No such watcher.
        NoWatcher = -121,
        /// Request timed out.
        RequestTimeout = -122,
        /// Reconfig disabled.
        ReconfigDisabled = -123,
        /// Session closed: SASL auth required.
        SessionClosedRequireSaslAuth = -124,
        /// Quota exceeded.
        QuotaExceeded = -125,
        /// Operation throttled.
        ThrottledOp = -127,
    }
}

impl ErrorCode {
    /// Java's `KeeperException.Code` name, for messages that match Apache's.
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::Ok => "OK",
            ErrorCode::SystemError => "SYSTEMERROR",
            ErrorCode::RuntimeInconsistency => "RUNTIMEINCONSISTENCY",
            ErrorCode::DataInconsistency => "DATAINCONSISTENCY",
            ErrorCode::ConnectionLoss => "CONNECTIONLOSS",
            ErrorCode::MarshallingError => "MARSHALLINGERROR",
            ErrorCode::Unimplemented => "UNIMPLEMENTED",
            ErrorCode::OperationTimeout => "OPERATIONTIMEOUT",
            ErrorCode::BadArguments => "BADARGUMENTS",
            ErrorCode::UnknownSession => "UNKNOWNSESSION",
            ErrorCode::NewConfigNoQuorum => "NEWCONFIGNOQUORUM",
            ErrorCode::ReconfigInProgress => "RECONFIGINPROGRESS",
            ErrorCode::ApiError => "APIERROR",
            ErrorCode::NoNode => "NONODE",
            ErrorCode::NoAuth => "NOAUTH",
            ErrorCode::BadVersion => "BADVERSION",
            ErrorCode::NoChildrenForEphemerals => "NOCHILDRENFOREPHEMERALS",
            ErrorCode::NodeExists => "NODEEXISTS",
            ErrorCode::NotEmpty => "NOTEMPTY",
            ErrorCode::SessionExpired => "SESSIONEXPIRED",
            ErrorCode::InvalidCallback => "INVALIDCALLBACK",
            ErrorCode::InvalidAcl => "INVALIDACL",
            ErrorCode::AuthFailed => "AUTHFAILED",
            ErrorCode::SessionMoved => "SESSIONMOVED",
            ErrorCode::NotReadOnly => "NOTREADONLY",
            ErrorCode::EphemeralOnLocalSession => "EPHEMERALONLOCALSESSION",
            ErrorCode::NoWatcher => "NOWATCHER",
            ErrorCode::RequestTimeout => "REQUESTTIMEOUT",
            ErrorCode::ReconfigDisabled => "RECONFIGDISABLED",
            ErrorCode::SessionClosedRequireSaslAuth => "SESSIONCLOSEDREQUIRESASLAUTH",
            ErrorCode::QuotaExceeded => "QUOTAEXCEEDED",
            ErrorCode::ThrottledOp => "THROTTLEDOP",
            ErrorCode::Unknown(_) => "UNKNOWN",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name(), self.to_i32())
    }
}
