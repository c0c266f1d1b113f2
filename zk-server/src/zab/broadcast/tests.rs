//! Leader and learner cores wired back to back, checking the packets of discovery and
//! sync exactly.

use bytes::Bytes;
use zk_proto::quorum::QuorumPacketType as T;

use super::leader::ProposeError;
use super::*;
use crate::zab::zxid::make_zxid;
use crate::zab::{Action, LearnerType, QuorumConfig, QuorumServer, ZabMessage, Zxid};

fn cfg(me: i64) -> QuorumConfig {
    let servers =
        (1..=3).map(|i| QuorumServer::parse(i, &format!("h:{}:{}", 10 + i, 20 + i)).unwrap());
    QuorumConfig::new(me, servers)
}

/// A real txn: learners decode what they log.
fn txn(zxid: Zxid, payload: &str) -> Bytes {
    crate::testkit::txn_payload::set_data(zxid, payload.as_bytes())
}

fn p(epoch: i64, n: i64) -> Proposal {
    let zxid = make_zxid(epoch, n);
    Proposal {
        zxid,
        data: txn(zxid, &format!("{epoch}.{n}")),
    }
}

fn disk(epoch: i64, txns: Vec<Proposal>) -> DiskState {
    DiskState {
        accepted_epoch: epoch,
        current_epoch: epoch,
        last_zxid: txns.last().map(|p| p.zxid).unwrap_or(0),
        recent: txns,
    }
}

fn packets(out: &[Action]) -> Vec<(T, i64)> {
    out.iter()
        .filter_map(|a| match a {
            Action::Send {
                msg: ZabMessage::Packet(p),
                ..
            } => Some((p.packet_type, p.zxid)),
            _ => None,
        })
        .collect()
}

fn sent(out: &mut Vec<Action>) -> Vec<ZabMessage> {
    let mut msgs = Vec::new();
    let mut keep = Vec::new();
    for a in out.drain(..) {
        match a {
            Action::Send { msg, .. } => msgs.push(msg),
            Action::SendSnapshot { zxid, .. } => msgs.push(ZabMessage::Snapshot {
                zxid,
                data: Bytes::from_static(b"db"),
            }),
            other => keep.push(other),
        }
    }
    *out = keep;
    msgs
}

/// Runs leader 3 and follower 1 until quiet; the follower's fsyncs complete only when
/// `fsync` is true.
struct Pair {
    lcfg: QuorumConfig,
    fcfg: QuorumConfig,
    lh: History,
    fh: History,
    leader: Leader,
    learner: Learner,
    lout: Vec<Action>,
    fout: Vec<Action>,
    now: u64,
}

impl Pair {
    fn new(ld: DiskState, fd: DiskState) -> Self {
        let lcfg = cfg(3);
        let fcfg = cfg(1);
        let mut lh = History::from_disk(ld, 100);
        let mut fh = History::from_disk(fd, 100);
        let mut lout = Vec::new();
        let mut fout = Vec::new();
        let mut leader = Leader::new(&mut Ctx {
            now: 0,
            cfg: &lcfg,
            history: &mut lh,
            views: &mut Views::default(),
            out: &mut lout,
        })
        .unwrap();
        let mut learner = Learner::new(
            &mut Ctx {
                now: 0,
                cfg: &fcfg,
                history: &mut fh,
                views: &mut Views::default(),
                out: &mut fout,
            },
            LearnerType::Participant,
            3,
            7,
        );
        leader.on_connected(
            &mut Ctx {
                now: 0,
                cfg: &lcfg,
                history: &mut lh,
                views: &mut Views::default(),
                out: &mut lout,
            },
            7,
        );
        learner
            .on_connected(&mut Ctx {
                now: 0,
                cfg: &fcfg,
                history: &mut fh,
                views: &mut Views::default(),
                out: &mut fout,
            })
            .unwrap();
        Pair {
            lcfg,
            fcfg,
            lh,
            fh,
            leader,
            learner,
            lout,
            fout,
            now: 1,
        }
    }

    /// Exchanges messages until neither side sends; returns what the leader sent.
    fn pump(&mut self) -> Vec<(T, i64)> {
        match self.exchange() {
            (seen, None) => seen,
            (_, Some(ended)) => panic!("the learner left the leader: {ended}"),
        }
    }

    /// Like [`Pair::pump`], until the learner leaves the leader: what the learner read
    /// (up to the packet it left on) and why it left.
    fn pump_until_learner_leaves(&mut self) -> (Vec<(T, i64)>, RoleEnded) {
        match self.exchange() {
            (seen, Some(ended)) => (seen, ended),
            (seen, None) => panic!("the learner stayed; it read {seen:?}"),
        }
    }

    fn exchange(&mut self) -> (Vec<(T, i64)>, Option<RoleEnded>) {
        let mut seen = Vec::new();
        loop {
            let to_leader = sent(&mut self.fout);
            let to_learner = sent(&mut self.lout);
            if to_leader.is_empty() && to_learner.is_empty() {
                return (seen, None);
            }
            for m in to_leader {
                let mut ctx = Ctx {
                    now: self.now,
                    cfg: &self.lcfg,
                    history: &mut self.lh,
                    views: &mut Views::default(),
                    out: &mut self.lout,
                };
                self.leader.on_message(&mut ctx, 7, m).unwrap();
            }
            for m in to_learner {
                if let ZabMessage::Packet(p) = &m {
                    seen.push((p.packet_type, p.zxid));
                }
                if let Err(ended) = self.send_learner(self.now, m) {
                    return (seen, Some(ended));
                }
            }
        }
    }

    /// Hands the learner one message at time `now`.
    fn send_learner(&mut self, now: crate::zab::Millis, m: ZabMessage) -> Result<(), RoleEnded> {
        let mut ctx = Ctx {
            now,
            cfg: &self.fcfg,
            history: &mut self.fh,
            views: &mut Views::default(),
            out: &mut self.fout,
        };
        self.learner.on_message(&mut ctx, m)
    }

    fn follower_fsync(&mut self) {
        let z = self.fh.last_logged();
        self.fh.persisted(z);
        let mut ctx = Ctx {
            now: 1,
            cfg: &self.fcfg,
            history: &mut self.fh,
            views: &mut Views::default(),
            out: &mut self.fout,
        };
        self.learner.on_persisted(&mut ctx);
    }
}

#[test]
fn diff_sync_acks_newleader_only_once_durable() {
    let mut pair = Pair::new(
        disk(1, vec![p(1, 1), p(1, 2), p(1, 3)]),
        disk(1, vec![p(1, 1)]),
    );
    let seen = pair.pump();
    let e2 = make_zxid(2, 0);
    assert_eq!(
        seen,
        [
            (T::LeaderInfo, e2),
            (T::Diff, make_zxid(1, 3)),
            (T::Proposal, make_zxid(1, 2)),
            (T::Commit, make_zxid(1, 2)),
            (T::Proposal, make_zxid(1, 3)),
            (T::Commit, make_zxid(1, 3)),
            (T::NewLeader, e2),
        ]
    );
    // Epochs: both accepted 2; the follower's currentEpoch moved at NEWLEADER.
    assert_eq!((pair.lh.accepted_epoch, pair.lh.current_epoch), (2, 2));
    assert_eq!((pair.fh.accepted_epoch, pair.fh.current_epoch), (2, 2));
    // The synced txns are logged but not durable: no ACK yet, the leader waits.
    assert!(!pair.leader.is_established());
    assert!(packets(&pair.fout).is_empty());
    pair.follower_fsync();
    assert_eq!(packets(&pair.fout), [(T::Ack, e2)]);
    pair.pump();
    assert!(pair.leader.is_established());
    assert!(pair.learner.is_serving());
    assert_eq!(pair.fh.applied(), make_zxid(1, 3));
    // Broadcast: propose, the follower acks once durable, the leader commits on quorum.
    let zxid = {
        let mut ctx = Ctx {
            now: 2,
            cfg: &pair.lcfg,
            history: &mut pair.lh,
            views: &mut Views::default(),
            out: &mut pair.lout,
        };
        pair.leader
            .propose(&mut ctx, txn(make_zxid(2, 1), "x"))
            .unwrap()
    };
    assert_eq!(zxid, make_zxid(2, 1));
    pair.pump();
    assert_eq!(
        pair.fh.applied(),
        make_zxid(1, 3),
        "not committed before an ack quorum"
    );
    pair.follower_fsync();
    assert!(
        pair.pump().is_empty(),
        "the leader's own ack is missing: its log is not durable"
    );
    pair.lh.persisted(zxid);
    let mut ctx = Ctx {
        now: 3,
        cfg: &pair.lcfg,
        history: &mut pair.lh,
        views: &mut Views::default(),
        out: &mut pair.lout,
    };
    pair.leader.on_persisted(&mut ctx);
    let seen = pair.pump();
    assert_eq!(seen, [(T::Commit, zxid)]);
    assert_eq!(pair.fh.applied(), zxid);
    assert_eq!(pair.lh.applied(), zxid);
}

#[test]
fn follower_ahead_is_truncated_and_stale_one_gets_a_snapshot() {
    // Follower 1 logged a txn of epoch 1 that no quorum kept; the leader established
    // epoch 2 without it.
    let mut pair = Pair::new(
        disk(2, vec![p(1, 1), p(1, 2)]),
        disk(1, vec![p(1, 1), p(1, 2), p(1, 3)]),
    );
    let seen = pair.pump();
    assert_eq!(seen[1], (T::Trunc, make_zxid(1, 2)));
    assert_eq!(seen[2], (T::NewLeader, make_zxid(3, 0)));
    assert_eq!(pair.fh.last_logged(), make_zxid(1, 2));
    assert!(pair.fout.contains(&Action::Truncate(make_zxid(1, 2))));

    // A follower older than the leader's recent txns (100 kept): the leader first asks
    // its txn log; when the log cannot serve, SNAP.
    let many: Vec<Proposal> = (1..=200).map(|n| p(1, n)).collect();
    let mut pair = Pair::new(disk(1, many.clone()), disk(1, vec![p(1, 1)]));
    assert_eq!(pair.pump(), [(T::LeaderInfo, make_zxid(2, 0))]);
    assert!(pair.lout.contains(&Action::ReadLog {
        conn: 7,
        from: make_zxid(1, 1),
        to: make_zxid(1, 200)
    }));
    pair.lout.clear();
    let mut ctx = Ctx {
        now: 1,
        cfg: &pair.lcfg,
        history: &mut pair.lh,
        views: &mut Views::default(),
        out: &mut pair.lout,
    };
    pair.leader.on_log_read(&mut ctx, 7, None);
    let seen = pair.pump();
    assert_eq!(
        seen,
        [(T::NewLeader, make_zxid(2, 0)), (T::UpToDate, -1)],
        "SNAP itself is not a packet here"
    );
    assert_eq!(pair.fh.last_logged(), make_zxid(1, 200));
    assert_eq!(
        pair.fh.durable(),
        make_zxid(1, 200),
        "a snapshot is durable at once"
    );
    assert!(pair.fout.contains(&Action::InstallSnapshot {
        zxid: make_zxid(1, 200),
        data: Bytes::from_static(b"db")
    }));
    assert!(pair.leader.is_established() && pair.learner.is_serving());

    // When the log still holds the learner's last txn: DIFF from the log.
    let mut pair = Pair::new(disk(1, many.clone()), disk(1, vec![p(1, 1)]));
    pair.pump();
    pair.lout.clear();
    let mut ctx = Ctx {
        now: 1,
        cfg: &pair.lcfg,
        history: &mut pair.lh,
        views: &mut Views::default(),
        out: &mut pair.lout,
    };
    pair.leader.on_log_read(&mut ctx, 7, Some(many));
    let seen = pair.pump();
    assert_eq!(seen[0], (T::Diff, make_zxid(1, 200)));
    assert_eq!(seen.iter().filter(|(t, _)| *t == T::Proposal).count(), 199);
    assert_eq!(pair.fh.applied(), make_zxid(1, 200));
    assert!(!pair
        .fout
        .iter()
        .any(|a| matches!(a, Action::InstallSnapshot { .. })));
}

#[test]
fn a_follower_more_recent_than_the_leader_is_refused() {
    let mut pair = Pair::new(disk(1, vec![p(1, 1)]), disk(1, vec![p(1, 1), p(1, 2)]));
    let seen = pair.pump();
    assert_eq!(seen, [(T::LeaderInfo, make_zxid(2, 0))]);
    assert!(pair
        .lout
        .iter()
        .any(|a| matches!(a, Action::Close { conn: 7 })));
    assert!(!pair.leader.is_established());
}

#[test]
fn leader_steps_down_and_learner_gives_up_without_traffic() {
    let mut pair = Pair::new(disk(1, vec![p(1, 1)]), disk(1, vec![p(1, 1)]));
    pair.pump();
    pair.follower_fsync();
    pair.pump();
    assert!(pair.leader.is_established() && pair.learner.is_serving());
    // Pings flow every half tick while the follower answers.
    let tick = pair.lcfg.tick_time;
    for t in 1..=20 {
        pair.now = t * tick / 2;
        let mut ctx = Ctx {
            now: pair.now,
            cfg: &pair.lcfg,
            history: &mut pair.lh,
            views: &mut Views::default(),
            out: &mut pair.lout,
        };
        pair.leader.tick(&mut ctx).unwrap();
        let seen = pair.pump();
        assert!(seen.contains(&(T::Ping, make_zxid(2, 0))), "{seen:?}");
    }
    // Silence: the leader drops the learner after syncLimit ticks and then steps down.
    let base = 10 * tick;
    let mut ended = None;
    for t in 1..=40 {
        let mut ctx = Ctx {
            now: base + t * tick / 2,
            cfg: &pair.lcfg,
            history: &mut pair.lh,
            views: &mut Views::default(),
            out: &mut pair.lout,
        };
        if let Err(e) = pair.leader.tick(&mut ctx) {
            ended = Some((t * tick / 2, e));
            break;
        }
    }
    let (after, why) = ended.expect("leader stepped down");
    assert!(after > pair.lcfg.sync_timeout() && after <= pair.lcfg.sync_timeout() + 2 * tick);
    assert!(why.0.contains("not sufficient followers synced"), "{why}");
    // The follower, hearing nothing either, gives up after syncLimit ticks.
    let mut ctx = Ctx {
        now: base + pair.fcfg.sync_timeout(),
        cfg: &pair.fcfg,
        history: &mut pair.fh,
        views: &mut Views::default(),
        out: &mut pair.fout,
    };
    assert!(pair.learner.tick(&mut ctx).is_ok());
    ctx.now += 2 * tick;
    assert!(pair.learner.tick(&mut ctx).is_err());
}

#[test]
fn a_txn_out_of_order_is_refused_not_renumbered() {
    let mut pair = Pair::new(disk(1, vec![p(1, 1)]), disk(1, vec![p(1, 1)]));
    pair.pump();
    pair.follower_fsync();
    pair.pump();
    assert!(pair.leader.is_established());
    let next = pair.leader.next_zxid().expect("established");
    assert_eq!(next, make_zxid(2, 1));
    let mut ctx = Ctx {
        now: 2,
        cfg: &pair.lcfg,
        history: &mut pair.lh,
        views: &mut Views::default(),
        out: &mut pair.lout,
    };
    // The server core's txn skips a zxid: nothing is proposed.
    assert_eq!(
        pair.leader
            .propose_at(&mut ctx, next + 1, txn(next + 1, "x")),
        Err(ProposeError::OutOfOrder {
            expected: next,
            got: next + 1
        })
    );
    assert!(packets(ctx.out).is_empty());
    assert_eq!(pair.leader.next_zxid(), Some(next));
    // The next zxid is proposed as itself.
    let mut ctx = Ctx {
        now: 2,
        cfg: &pair.lcfg,
        history: &mut pair.lh,
        views: &mut Views::default(),
        out: &mut pair.lout,
    };
    assert_eq!(
        pair.leader.propose_at(&mut ctx, next, txn(next, "x")),
        Ok(next)
    );
    assert_eq!(packets(ctx.out), [(T::Proposal, next)]);
}

/// ZOOKEEPER-2789: the counter never reaches 0xffffffff (one more would carry into the
/// epoch bits); the leader finishes what it proposed, then steps down for a new epoch.
#[test]
fn an_exhausted_counter_is_never_issued_and_the_leader_steps_down_once_drained() {
    let mut pair = Pair::new(disk(1, vec![p(1, 1)]), disk(1, vec![p(1, 1)]));
    pair.pump();
    pair.follower_fsync();
    pair.pump();
    assert!(pair.leader.is_established());
    assert_eq!(
        pair.leader.seed_counter(0xffff_fffe),
        Some(make_zxid(2, 0xffff_fffe))
    );
    // The hook only moves forward.
    assert_eq!(pair.leader.seed_counter(5), None);
    assert_eq!(pair.leader.next_zxid(), Some(make_zxid(2, 0xffff_fffe)));
    let mut ctx = Ctx {
        now: 2,
        cfg: &pair.lcfg,
        history: &mut pair.lh,
        views: &mut Views::default(),
        out: &mut pair.lout,
    };
    let last = pair
        .leader
        .propose(&mut ctx, txn(make_zxid(2, 0xffff_fffe), "last"));
    assert_eq!(last, Ok(make_zxid(2, 0xffff_fffe)));
    assert_eq!(pair.leader.next_zxid(), None);
    assert!(pair.leader.counter_exhausted());
    // Neither counter 0xffffffff nor the carry into epoch 3 is ever proposed.
    assert_eq!(
        pair.leader
            .propose(&mut ctx, txn(make_zxid(2, 0xffff_ffff), "x")),
        Err(ProposeError::CounterExhausted)
    );
    assert_eq!(
        pair.leader.propose_at(
            &mut ctx,
            make_zxid(2, 0xffff_ffff),
            txn(make_zxid(2, 0xffff_ffff), "x")
        ),
        Err(ProposeError::CounterExhausted)
    );
    assert_eq!(
        pair.leader
            .propose_at(&mut ctx, make_zxid(3, 0), txn(make_zxid(3, 0), "x")),
        Err(ProposeError::CounterExhausted)
    );
    assert_eq!(packets(ctx.out), [(T::Proposal, make_zxid(2, 0xffff_fffe))]);
    // Still in flight: the leader stays so the proposal can commit.
    assert!(pair.leader.tick(&mut ctx).is_ok());
    pair.pump();
    pair.follower_fsync();
    pair.lh.persisted(make_zxid(2, 0xffff_fffe));
    let mut ctx = Ctx {
        now: 3,
        cfg: &pair.lcfg,
        history: &mut pair.lh,
        views: &mut Views::default(),
        out: &mut pair.lout,
    };
    pair.leader.on_persisted(&mut ctx);
    pair.pump();
    assert_eq!(pair.lh.applied(), make_zxid(2, 0xffff_fffe));
    assert_eq!(pair.fh.applied(), make_zxid(2, 0xffff_fffe));
    // Drained: the next tick ends the leadership, naming the cause.
    let mut ctx = Ctx {
        now: 4,
        cfg: &pair.lcfg,
        history: &mut pair.lh,
        views: &mut Views::default(),
        out: &mut pair.lout,
    };
    let ended = pair.leader.tick(&mut ctx).expect_err("steps down");
    assert!(format!("{ended:?}").contains("exhausted"), "{ended:?}");
}

/// ZOOKEEPER-1675: a sync is answered only once a quorum answered a PING the leader sent
/// after the sync arrived, so a deposed leader that has not noticed yet (stalled, cut
/// off) cannot answer from stale state. An answer to a PING sent before the sync (still
/// in the socket, say, from before a SIGSTOP) does not count.
#[test]
fn a_sync_waits_for_a_quorum_to_answer_a_ping_sent_after_it() {
    let mut pair = Pair::new(disk(1, vec![p(1, 1)]), disk(1, vec![p(1, 1)]));
    pair.pump();
    pair.follower_fsync();
    pair.pump();
    assert!(pair.leader.is_established());
    let sync_done = |out: &[Action]| out.iter().filter(|a| matches!(a, Action::SyncDone)).count();
    let ctx = |pair: &mut Pair, now| {
        let mut ctx = Ctx {
            now,
            cfg: &pair.lcfg,
            history: &mut pair.lh,
            views: &mut Views::default(),
            out: &mut pair.lout,
        };
        pair.leader.tick(&mut ctx).unwrap();
    };
    // A routine PING goes out before the sync arrives and is not yet answered.
    ctx(&mut pair, 10_000);
    let early = sent(&mut pair.lout);
    assert_eq!(early.len(), 1, "{early:?}");
    {
        let mut c = Ctx {
            now: 10_001,
            cfg: &pair.lcfg,
            history: &mut pair.lh,
            views: &mut Views::default(),
            out: &mut pair.lout,
        };
        pair.leader.local_sync(&mut c);
        pair.leader.process_sync(&mut c, 7);
    }
    assert_eq!(sync_done(&pair.lout), 0, "answered without a quorum round");
    let after = sent(&mut pair.lout);
    assert_eq!(
        after.len(),
        2,
        "a PING per sync for its read index: {after:?}"
    );
    // The follower answers the early PING: not enough.
    for m in early {
        let mut c = Ctx {
            now: 10_002,
            cfg: &pair.fcfg,
            history: &mut pair.fh,
            views: &mut Views::default(),
            out: &mut pair.fout,
        };
        pair.learner.on_message(&mut c, m).unwrap();
    }
    for m in sent(&mut pair.fout) {
        let mut c = Ctx {
            now: 10_003,
            cfg: &pair.lcfg,
            history: &mut pair.lh,
            views: &mut Views::default(),
            out: &mut pair.lout,
        };
        pair.leader.on_message(&mut c, 7, m).unwrap();
    }
    assert_eq!(
        sync_done(&pair.lout),
        0,
        "an answer to an older PING counted"
    );
    assert!(packets(&pair.lout).is_empty());
    // Its answer to the PING sent after the syncs: both are answered, in order.
    for m in after {
        let mut c = Ctx {
            now: 10_004,
            cfg: &pair.fcfg,
            history: &mut pair.fh,
            views: &mut Views::default(),
            out: &mut pair.fout,
        };
        pair.learner.on_message(&mut c, m).unwrap();
    }
    for m in sent(&mut pair.fout) {
        let mut c = Ctx {
            now: 10_005,
            cfg: &pair.lcfg,
            history: &mut pair.lh,
            views: &mut Views::default(),
            out: &mut pair.lout,
        };
        pair.leader.on_message(&mut c, 7, m).unwrap();
    }
    assert_eq!(sync_done(&pair.lout), 1);
    assert_eq!(packets(&pair.lout), [(T::Sync, 0)]);
}

/// What a learner's core did with the txn `zxid` it refused: nothing logged, nothing
/// acked, and a reason naming the leader and the zxid.
fn assert_refused(out: &[Action], history: &History, before: Zxid, ended: &RoleEnded, zxid: Zxid) {
    assert!(
        !out.iter().any(|a| matches!(a, Action::Persist(_))),
        "logged: {out:?}"
    );
    assert_eq!(history.last_logged(), before, "appended to the history");
    assert!(
        !packets(out).iter().any(|(t, _)| *t == T::Ack),
        "acked: {out:?}"
    );
    let why = ended.to_string();
    assert!(why.contains("leader 3"), "{why}");
    assert!(
        why.contains(&crate::zab::zxid::hex(zxid)),
        "{why} does not name {zxid:#x}"
    );
}

/// Apache's Learner deserializes a txn before logging it and drops a leader whose txn
/// does not decode: a follower that logged it could neither apply it nor restart from
/// its own log.
#[test]
fn a_proposal_that_does_not_decode_is_not_logged_nor_acked_and_the_follower_leaves() {
    let z = make_zxid(2, 1);
    let truncated = txn(z, "x").slice(..30);
    let wrong_zxid = txn(make_zxid(2, 7), "x");
    let cases = [
        ("arbitrary bytes", Bytes::from_static(b"2.1")),
        ("a truncated txn", truncated),
        ("an unknown txn type", {
            let mut b = txn(z, "x").to_vec();
            b[28..32].copy_from_slice(&77i32.to_be_bytes());
            Bytes::from(b)
        }),
        ("another zxid in its header", wrong_zxid),
        ("no data", Bytes::new()),
    ];
    for (what, data) in cases {
        let mut pair = Pair::new(disk(1, vec![p(1, 1)]), disk(1, vec![p(1, 1)]));
        pair.pump();
        pair.follower_fsync();
        pair.pump();
        assert!(pair.leader.is_established() && pair.learner.is_serving());
        let before = pair.fh.last_logged();
        pair.fout.clear();
        let r = pair.send_learner(
            2,
            ZabMessage::Packet(packets::with_data(T::Proposal, z, data)),
        );
        let ended = r.expect_err(what);
        // Even once durable, nothing is acked.
        pair.follower_fsync();
        assert_refused(&pair.fout, &pair.fh, before, &ended, z);
        // A good txn for the same zxid would have been taken.
        let mut pair = Pair::new(disk(1, vec![p(1, 1)]), disk(1, vec![p(1, 1)]));
        pair.pump();
        pair.follower_fsync();
        pair.pump();
        pair.send_learner(
            2,
            ZabMessage::Packet(packets::with_data(T::Proposal, z, txn(z, "x"))),
        )
        .expect("a good txn is taken");
        pair.follower_fsync();
        assert_eq!(pair.fh.last_logged(), z, "{what}");
        assert_eq!(packets(&pair.fout), [(T::Ack, z)], "{what}");
    }
}

/// The same for the txns of a DIFF: the learner leaves at the first one that does not
/// decode, before logging it or acknowledging NEWLEADER.
#[test]
fn a_diff_with_a_txn_that_does_not_decode_is_refused_before_it_is_logged() {
    let bad = Proposal {
        zxid: make_zxid(1, 3),
        data: Bytes::from_static(b"1.3"),
    };
    let mut pair = Pair::new(
        disk(1, vec![p(1, 1), p(1, 2), bad, p(1, 4)]),
        disk(1, vec![p(1, 1)]),
    );
    let (seen, ended) = pair.pump_until_learner_leaves();
    assert_eq!(
        seen,
        [
            (T::LeaderInfo, make_zxid(2, 0)),
            (T::Diff, make_zxid(1, 4)),
            (T::Proposal, make_zxid(1, 2)),
            (T::Commit, make_zxid(1, 2)),
            (T::Proposal, make_zxid(1, 3)),
        ]
    );
    // The good txn before it is logged; the bad one and what follows are not.
    assert_eq!(pair.fh.last_logged(), make_zxid(1, 2));
    let persisted: Vec<Zxid> = pair
        .fout
        .iter()
        .filter_map(|a| match a {
            Action::Persist(p) => Some(p.zxid),
            _ => None,
        })
        .collect();
    assert_eq!(persisted, [make_zxid(1, 2)]);
    pair.fout.retain(|a| !matches!(a, Action::Persist(_)));
    pair.follower_fsync();
    assert_refused(
        &pair.fout,
        &pair.fh,
        make_zxid(1, 2),
        &ended,
        make_zxid(1, 3),
    );
    assert_eq!(pair.fh.current_epoch, 1, "NEWLEADER never taken");
    assert!(!pair.leader.is_established());
}

/// Observers too: an INFORM or INFORMANDACTIVATE whose txn does not decode is not logged
/// nor applied.
#[test]
fn an_observer_refuses_an_inform_that_does_not_decode() {
    let z = make_zxid(2, 1);
    let cases = [
        (T::Inform, Bytes::from_static(b"2.1")),
        (
            T::InformAndActivate,
            packets::designated_with(3, b"not a txn"),
        ),
    ];
    for (ty, data) in cases {
        let fcfg = cfg(1);
        let mut fh = History::from_disk(disk(1, vec![p(1, 1)]), 100);
        let mut out = Vec::new();
        let mut views = Views::default();
        let mut ctx = Ctx {
            now: 0,
            cfg: &fcfg,
            history: &mut fh,
            views: &mut views,
            out: &mut out,
        };
        let mut learner = Learner::new(&mut ctx, LearnerType::Observer, 3, 7);
        // Up to date, as after a sync.
        learner.stage = learner::LearnerStage::Broadcast;
        let ended = learner
            .on_message(
                &mut ctx,
                ZabMessage::Packet(packets::with_data(ty, z, data)),
            )
            .expect_err("refused");
        assert_refused(&out, &fh, make_zxid(1, 1), &ended, z);
        assert_eq!(fh.applied(), make_zxid(1, 1), "{ty:?} applied");
        assert!(!out.iter().any(|a| matches!(a, Action::Deliver(_))));
        // A good one is logged and applied.
        let mut ctx = Ctx {
            now: 0,
            cfg: &fcfg,
            history: &mut fh,
            views: &mut views,
            out: &mut out,
        };
        let good = match ty {
            T::Inform => txn(z, "x"),
            _ => packets::designated_with(3, &txn(z, "x")),
        };
        learner
            .on_message(
                &mut ctx,
                ZabMessage::Packet(packets::with_data(ty, z, good)),
            )
            .unwrap();
        assert_eq!(fh.applied(), z, "{ty:?}");
    }
}
