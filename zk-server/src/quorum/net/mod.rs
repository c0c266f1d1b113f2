//! The tokio wire layer: thin drivers moving bytes between sockets and the sans-IO cores.
//!
//! - [`election`]: election connections (QuorumCnxManager semantics: the handshake, one
//!   connection per pair, the larger sid keeps it, length-prefixed notifications).
//! - [`packet_codec`]: leader-learner framing (QuorumPackets written back to back as jute
//!   records, as Apache does: no length prefix).
//! - [`driver`]: a whole peer over tokio, with the caller's database and disk behind
//!   [`driver::Replica`].
//! - [`early_votes`]: LOOKING votes that arrive just before we start looking ourselves.
//! - [`disk_thread`]: the driver's txn log appends off its task (group commit).
//! - [`snap_stream`]: the database a leader streams after SNAP (Apache's format).
//! - [`ensemble`]: an embedded test ensemble on loopback (kill / restart / isolate / heal).
//! - [`parked`]: learner connections that arrive before the election made us leader.
//! - [`txn_list_snapshot`]: the test ensemble's database (a txn list) as a SNAP body.

pub mod disk_thread;
pub mod driver;
pub mod early_votes;
pub mod election;
pub mod ensemble;
pub mod packet_codec;
pub mod parked;
pub mod snap_stream;
pub mod txn_list_snapshot;

pub use election::ElectionNet;
pub use packet_codec::QuorumPacketCodec;
