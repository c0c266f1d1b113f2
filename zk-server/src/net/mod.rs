//! The thin tokio layer: accepting connections, framing, four-letter words, and the
//! per-server table of client connections.

pub mod clients;
pub mod connection;
pub mod four_letter;
pub mod listener;

use bytes::Bytes;

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
