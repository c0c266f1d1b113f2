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
}
