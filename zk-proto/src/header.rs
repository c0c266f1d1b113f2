//! Request and reply headers, special xids and the auth packet.

use bytes::Bytes;

use crate::error_code::ErrorCode;
use crate::jute::jute_record;
use crate::opcode::OpCode;

/// Special xids used by the client protocol.
pub mod xid {
    /// Watch notification.
    pub const NOTIFICATION: i32 = -1;
    /// Ping.
    pub const PING: i32 = -2;
    /// Auth packet.
    pub const AUTH: i32 = -4;
    /// SetWatches / SetWatches2.
    pub const SET_WATCHES: i32 = -8;
}

jute_record! {
    /// Prefix of every client request after the handshake.
    pub struct RequestHeader {
        /// Client-chosen id echoed in the reply (or a special xid).
        pub xid: i32,
        /// Operation.
        pub opcode: OpCode,
    }
}

jute_record! {
    /// Prefix of every server reply after the handshake.
    pub struct ReplyHeader {
        /// Xid of the request answered, or a special xid.
        pub xid: i32,
        /// Last zxid the server had applied when it replied.
        pub zxid: i64,
        /// Result code; a body follows only on success (multi excepted).
        pub err: ErrorCode,
    }
}

jute_record! {
    /// Body of an auth request (xid -4, opcode 100), e.g. `digest` + `user:password`.
    pub struct AuthPacket {
        /// Always 0.
        pub auth_type: i32,
        /// Scheme.
        pub scheme: String,
        /// Credentials.
        pub auth: Bytes,
    }
}
