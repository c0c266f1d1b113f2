//! The request processor, sans-IO: requests and ticks in (time is an argument, see
//! [`clock::Now`]), replies,
//! watch events, proposals and forwards out. Apache's PrepRequestProcessor,
//! FinalRequestProcessor and session tracker in one state machine that standalone
//! servers and ensemble members share.
//!
//! - [`processor`]: [`processor::Processor`], the pipeline prepare -> persist -> apply ->
//!   reply with per-session FIFO queues and a pluggable commit path: standalone and leader
//!   cores emit [`processor::Output::Propose`] and get the txns back through
//!   [`processor::Processor::committed`]; a follower core
//!   ([`processor::WriteMode::Forward`]) emits [`processor::Output::Forward`] and the
//!   leader prepares with [`processor::Processor::prepare_forwarded`].
//! - [`clock`]: [`clock::Now`], the time of an input: monotonic for timeouts, wall clock
//!   only for txn times.
//! - [`prep`]: request -> txn (validation, ACLs, zxid).
//! - [`member_gate`]: what an ensemble member holds back while the quorum answers (syncs,
//!   handshakes waiting for a revalidation or their session) and read-only timing.
//! - [`pending`]: outstanding changes of prepared-but-uncommitted txns.
//! - [`read`]: read requests and SetWatches.
//! - [`session`]: session ids, passwords, tick-bucket expiry, which member owns a session.

pub mod clock;
pub mod member_gate;
pub mod pending;
pub mod prep;
pub mod processor;
pub mod read;
pub mod session;
