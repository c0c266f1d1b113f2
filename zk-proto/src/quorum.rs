//! Records exchanged between leader and learners (ZAB).

use bytes::Bytes;

use crate::data::Id;
use crate::int_enum::int_enum;
use crate::jute::jute_record;

int_enum! {
    /// The `type` of a [`QuorumPacket`].
    pub enum QuorumPacketType {
        /// Learner forwards a client write.
        Request = 1,
        /// Leader proposes a txn.
        Proposal = 2,
        /// Learner acknowledges a proposal (or NEWLEADER).
        Ack = 3,
        /// Leader commits a zxid.
        Commit = 4,
        /// Heartbeat (both ways; learners attach session touches).
        Ping = 5,
        /// Learner revalidates a moved session.
        Revalidate = 6,
        /// Learner forwards a sync.
        Sync = 7,
        /// Leader informs observers of a committed txn.
        Inform = 8,
        /// Commit of a reconfig.
        CommitAndActivate = 9,
        /// Leader announces it is established.
        NewLeader = 10,
        /// Follower's hello.
        FollowerInfo = 11,
        /// Learner may serve clients.
        UpToDate = 12,
        /// Sync by replaying the following proposals.
        Diff = 13,
        /// Learner must truncate its log to the zxid.
        Trunc = 14,
        /// Sync by full snapshot.
        Snap = 15,
        /// Observer's hello.
        ObserverInfo = 16,
        /// Leader's reply to the hello with the new epoch.
        LeaderInfo = 17,
        /// Learner's epoch acknowledgement.
        AckEpoch = 18,
        /// Inform of a reconfig.
        InformAndActivate = 19,
    }
}

jute_record! {
    /// Every message on a leader-learner connection.
    pub struct QuorumPacket {
        /// A [`QuorumPacketType`] number.
        pub packet_type: QuorumPacketType,
        /// Zxid the packet is about.
        pub zxid: i64,
        /// Type-specific payload (a txn, a LearnerInfo, a request...).
        pub data: Option<Bytes>,
        /// Auth ids of a forwarded request.
        pub authinfo: Option<Vec<Id>>,
    }
}

jute_record! {
    /// Payload of FOLLOWERINFO / OBSERVERINFO.
    pub struct LearnerInfo {
        /// The learner's myid.
        pub serverid: i64,
        /// 0x10000 for 3.4+.
        pub protocol_version: i32,
        /// The learner's config version.
        pub config_version: i64,
    }
}

jute_record! {
    /// Quorum SASL auth packet.
    pub struct QuorumAuthPacket {
        /// Magic.
        pub magic: i64,
        /// Status.
        pub status: i32,
        /// Token.
        pub token: Bytes,
    }
}

/// The learner protocol version sent in LearnerInfo and LEADERINFO.
pub const LEARNER_PROTOCOL_VERSION: i32 = 0x10000;
