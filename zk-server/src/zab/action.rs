//! What the sans-IO cores ask their driver to do, and the units travelling on a
//! leader-learner connection.

use std::sync::Arc;

use bytes::Bytes;
use zk_proto::election::Notification;
use zk_proto::quorum::QuorumPacket;

use super::broadcast::Proposal;
use super::{PeerState, QuorumConfig, Sid, Zxid};

/// Identifies one leader-learner connection (chosen by the learner's peer when it asks to
/// connect; the leader side gets the same id from its driver).
pub type ConnId = u64;

/// One unit on a leader-learner connection.
///
/// On the wire a [`ZabMessage::Snapshot`] is Apache's SNAP QuorumPacket followed by the
/// serialized database and the `BenWasHere` signature; everything else is one QuorumPacket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZabMessage {
    /// A QuorumPacket, payloads exactly as Apache's.
    Packet(QuorumPacket),
    /// SNAP: the leader's database as of `zxid` (serialized by the caller's data tree).
    Snapshot {
        /// Last zxid included in the snapshot.
        zxid: Zxid,
        /// The serialized database.
        data: Bytes,
    },
}

/// An instruction from a core to its driver. Drivers perform actions in order: in
/// particular [`Action::Deliver`] must be applied before a later [`Action::SendSnapshot`]
/// serializes the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send an election notification (`to` may be ourselves: loop it back).
    SendNotification {
        /// Destination sid.
        to: Sid,
        /// The notification.
        n: Notification,
    },
    /// Open a connection to the leader's quorum port, then report it with `conn`.
    ConnectLeader {
        /// The leader.
        leader: Sid,
        /// Id to report the connection under.
        conn: ConnId,
    },
    /// Send on a leader-learner connection (either side).
    Send {
        /// The connection.
        conn: ConnId,
        /// What to send.
        msg: ZabMessage,
    },
    /// Leader side: send SNAP with a snapshot of the database as applied so far (its last
    /// zxid is `zxid`), i.e. `Send { msg: ZabMessage::Snapshot { zxid, data } }`.
    SendSnapshot {
        /// The learner's connection.
        conn: ConnId,
        /// Last applied zxid the snapshot must hold.
        zxid: Zxid,
    },
    /// Leader side: read the logged txns with `from <= zxid <= to` from the txn log and
    /// answer with `QuorumPeer::on_log_read(conn, ..)` (`None` when the log no longer
    /// holds `from`). Used to DIFF a learner older than the recent txns kept in memory.
    ReadLog {
        /// The learner's connection.
        conn: ConnId,
        /// The learner's last zxid (must be in the answer, first).
        from: Zxid,
        /// Our last applied zxid when asking.
        to: Zxid,
    },
    /// Close a leader-learner connection.
    Close {
        /// The connection.
        conn: ConnId,
    },
    /// Append a txn to the txn log; report durability later with `on_persisted(zxid)`.
    Persist(Proposal),
    /// Drop every logged txn after `zxid` and reload the database to `zxid` (TRUNC).
    /// Completes before the driver's next input.
    Truncate(Zxid),
    /// Replace the database with this snapshot, save it and drop log entries after `zxid`
    /// (SNAP). Completes before the driver's next input.
    InstallSnapshot {
        /// Last zxid in the snapshot.
        zxid: Zxid,
        /// The serialized database, as sent by the leader.
        data: Bytes,
    },
    /// Apply a committed txn to the database (in zxid order).
    Deliver(Proposal),
    /// Durably record acceptedEpoch before the next input.
    SaveAcceptedEpoch(i64),
    /// Durably record currentEpoch before the next input.
    SaveCurrentEpoch(i64),
    /// The peer changed role. `serving` is true once a learner got UPTODATE or a leader
    /// got its NEWLEADER quorum: clients may then be served.
    StateChanged {
        /// New state.
        state: PeerState,
        /// The leader followed or ourselves, when known.
        leader: Option<Sid>,
        /// Whether the role is established and clients may be served.
        serving: bool,
    },
    /// Leader side: sessions a learner reports alive (PING payload).
    SessionsTouched {
        /// The learner.
        from: Sid,
        /// (sessionId, timeout) pairs.
        sessions: Vec<(i64, i32)>,
    },
    /// Leader side: a learner forwarded a client write (REQUEST) or sync; feed it to the
    /// request pipeline and answer syncs with `QuorumPeer::sync_done`.
    LearnerRequest {
        /// The learner's connection.
        conn: ConnId,
        /// The learner.
        from: Sid,
        /// The packet as received (data = sessionId, cxid, type, request bytes).
        packet: QuorumPacket,
    },
    /// Leader side: a learner asks whether a moving session is valid; answer with
    /// `QuorumPeer::revalidate_reply`.
    Revalidate {
        /// The learner's connection.
        conn: ConnId,
        /// The session.
        session_id: i64,
        /// Its timeout.
        timeout: i32,
    },
    /// Learner side: the leader answered a REVALIDATE.
    Revalidated {
        /// The session.
        session_id: i64,
        /// Whether it is still valid.
        valid: bool,
    },
    /// Learner side: the leader answered a forwarded sync; every txn committed before it
    /// has been delivered. Leader side: a sync of our own client (`Peer::local_sync`)
    /// has its read index.
    SyncDone,
    /// A config was seen proposed and is not committed yet (Apache writes it to
    /// `<zoo.cfg>.dynamic.next`); its members must be reachable (election links).
    ConfigSeen(Arc<QuorumConfig>),
    /// A new config is committed and in force: write `<zoo.cfg>.dynamic.<version>`, point
    /// zoo.cfg at it, put it in `/zookeeper/config`, reach its members.
    ConfigActivated(Arc<QuorumConfig>),
}
