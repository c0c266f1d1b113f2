//! The thin tokio layer: accepting connections, framing, four-letter words, and the
//! per-server table of client connections.

pub mod clients;
pub mod connection;
mod duplex;
pub mod listener;
pub mod tls;

use std::net::SocketAddr;

use bytes::Bytes;
use tokio::sync::oneshot;
use zk_proto::{ConnectRequest, Id, Request};

use crate::core::processor::ConnId;

/// Where the core queues what a connection writes. futures' unbounded channel rather
/// than tokio's: tokio allocates a 32-slot block per channel up front (1.8 KB with its
/// header), futures a node per queued message, and most connections are idle.
pub type ConnTx = futures::channel::mpsc::UnboundedSender<ConnCmd>;

/// What the core tells a connection's writer.
#[derive(Debug)]
pub enum ConnCmd {
    /// Write this already-framed packet.
    Frame(Bytes),
    /// Flush and close.
    Close,
    /// The handshake was answered with a live session: start reading requests. Until
    /// then they stay unread in the socket, as Apache disables receiving while a
    /// session is created or revalidated, so requests pipelined behind the handshake
    /// run after its reply, in order, and a client flooding meanwhile is throttled by
    /// TCP instead of growing a queue here.
    Established,
}

/// What client connections tell the server task they belong to (a standalone server's
/// or an ensemble member's node task).
#[derive(Debug)]
pub enum ClientMsg {
    /// A connection finished reading its handshake frame.
    Accepted {
        /// Connection id.
        conn: ConnId,
        /// Peer.
        peer: SocketAddr,
        /// Where its output goes.
        tx: ConnTx,
        /// Identities its transport proved (`x509`, and `super` for
        /// `X509AuthenticationProvider.superUser`), for [`crate::core::processor::Processor::transport_auth`].
        auth: Vec<Id>,
    },
    /// The handshake.
    Connect {
        /// Connection.
        conn: ConnId,
        /// Request.
        req: ConnectRequest,
    },
    /// A request.
    Request {
        /// Connection.
        conn: ConnId,
        /// Xid.
        xid: i32,
        /// Body.
        req: Request,
    },
    /// A request Apache cannot process: an unknown opcode (answered Unimplemented, then
    /// the connection is closed) or a server-only one like createSession (MarshallingError).
    /// Standalone and ensemble members answer it with [`crate::core::processor::Processor::unknown_request`].
    Unknown {
        /// Connection.
        conn: ConnId,
        /// Xid.
        xid: i32,
        /// Known opcode that is not a client request.
        marshalling: bool,
    },
    /// The connection closed.
    Disconnected {
        /// Connection.
        conn: ConnId,
    },
    /// An AdminServer command or a `/metrics` scrape (from [`crate::host::http`]).
    Admin {
        /// What is asked.
        request: crate::admin::commands::AdminRequest,
        /// Where the rendered body (JSON or exposition text) goes.
        reply: oneshot::Sender<String>,
    },
    /// A four-letter word.
    FourLetter {
        /// Command.
        cmd: String,
        /// Who asks (listed by `stat` and `cons`, as Apache does).
        peer: SocketAddr,
        /// Where the text goes.
        reply: oneshot::Sender<String>,
    },
}
