//! The tokio wire layer: thin drivers moving bytes between sockets and the sans-IO cores.
//!
//! - [`election`]: election connections (QuorumCnxManager semantics: the handshake, one
//!   connection per pair, the larger sid keeps it, length-prefixed notifications).
//! - [`packet_codec`]: leader-learner framing (QuorumPackets written back to back as jute
//!   records, as Apache does: no length prefix).
//! - [`driver`]: the I/O side of a peer over tokio ([`driver::QuorumIo`]), driven by the
//!   task that owns the peer and the database.
//! - [`early_votes`]: LOOKING votes that arrive just before we start looking ourselves.
//! - [`parked`]: learner connections that arrive before the election made us leader.
//! - [`link`]: how links between members are secured (TLS, port unification, quorum
//!   SASL), for both the election and the quorum port.

pub mod driver;
pub mod early_votes;
pub mod election;
pub mod link;
pub mod packet_codec;
pub mod parked;

pub use election::ElectionNet;
pub use link::QuorumSecurity;
pub use packet_codec::QuorumPacketCodec;
