//! Deterministic tests of the state machine: time is passed in, frames are decoded from its
//! outbound buffer and server replies are hand-built.

use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use zk_proto::{
    header::xid, ConnectRequest, ConnectResponse, ErrorCode, EventType, JuteReader, KeeperState,
    OpCode, Record, ReplyHeader, Request, RequestHeader, WatcherEvent,
};

use super::*;
use crate::hosts::HostPort;
use crate::watch::registry::DEFAULT_WATCHER;

const TIMEOUT: Duration = Duration::from_millis(3000);

fn config(n_hosts: u16) -> SessionConfig {
    SessionConfig {
        hosts: (0..n_hosts)
            .map(|i| HostPort {
                host: "127.0.0.1".into(),
                port: 1000 + i,
            })
            .collect(),
        chroot: Chroot::default(),
        session_timeout: TIMEOUT,
        connect_timeout: None,
        request_timeout: Duration::from_millis(1000),
        read_only: false,
        rw_probe_interval: Duration::from_secs(1),
        resume: None,
        auth: vec![],
        sasl: None,
        retry: crate::RetryPolicy::fixed(Duration::from_millis(100)),
        reconnect_jitter: Duration::ZERO,
        seed: 1,
    }
}

struct Harness {
    s: Session<u32>,
    t0: Instant,
}

impl Harness {
    fn new(cfg: SessionConfig) -> Self {
        let t0 = Instant::now();
        Harness {
            s: Session::new(cfg, t0),
            t0,
        }
    }

    fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }

    fn actions(&mut self) -> Vec<Action<u32>> {
        std::iter::from_fn(|| self.s.poll_action()).collect()
    }

    /// Frames written by the client since the last call: (header, body).
    fn sent(&mut self) -> Vec<(RequestHeader, Bytes)> {
        let mut out = self.s.outbound().split().freeze();
        let mut frames = Vec::new();
        while out.len() >= 4 {
            let len = out.get_u32() as usize;
            let frame = out.split_to(len);
            frames.push(frame);
        }
        frames
            .into_iter()
            .map(|f| {
                let mut r = JuteReader::new(f);
                let h = RequestHeader::read(&mut r).unwrap();
                (h, r.take_rest())
            })
            .collect()
    }

    fn reply(&mut self, xid: i32, zxid: i64, err: ErrorCode, body: &[u8], ms: u64) {
        let mut b = BytesMut::new();
        ReplyHeader { xid, zxid, err }.write(&mut b);
        b.extend_from_slice(body);
        self.s.on_frame(b.freeze(), self.at(ms));
    }

    /// Drives a connection to the established state at `ms`, returning the ConnectRequest.
    fn establish(&mut self, ms: u64, session_id: i64) -> ConnectRequest {
        self.s.tick(self.at(ms));
        assert!(self
            .actions()
            .iter()
            .any(|a| matches!(a, Action::Connect { .. })));
        self.s.on_connected(self.at(ms));
        let mut out = self.s.outbound().split().freeze();
        let len = out.get_u32() as usize;
        let req = ConnectRequest::decode(out.split_to(len)).unwrap();
        let resp = ConnectResponse {
            protocol_version: 0,
            timeout: TIMEOUT.as_millis() as i32,
            session_id,
            passwd: Bytes::from_static(&[9; 16]),
            read_only: Some(false),
        };
        self.s.on_frame(resp.to_bytes(), self.at(ms));
        req
    }

    fn submit(&mut self, op: OpCode, post: PostAction, token: u32, ms: u64) {
        self.s.submit(
            Submit {
                op,
                body: Bytes::from_static(b"body"),
                post,
                reply: token,
            },
            self.at(ms),
        );
    }
}

fn replies(actions: &[Action<u32>]) -> Vec<(u32, std::result::Result<ErrorCode, Error>)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Reply(t, r) => Some((*t, r.as_ref().map(|r| r.err).map_err(Clone::clone))),
            _ => None,
        })
        .collect()
}

fn states(actions: &[Action<u32>]) -> Vec<SessionState> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::State(s) => Some(*s),
            _ => None,
        })
        .collect()
}

#[test]
fn handshake_uses_requested_timeout_and_reports_connected() {
    let mut h = Harness::new(config(1));
    let req = h.establish(0, 0x55);
    assert_eq!(req.timeout, 3000);
    assert_eq!(req.session_id, 0);
    assert_eq!(req.passwd.len(), 16);
    let a = h.actions();
    assert_eq!(states(&a), vec![SessionState::Connected]);
    assert_eq!(h.s.session_id(), 0x55);
    assert_eq!(h.s.read_timeout(), Duration::from_millis(2000));
}

#[test]
fn pipelined_replies_match_in_fifo_order_and_bad_xid_drops_connection() {
    let mut h = Harness::new(config(1));
    h.establish(0, 1);
    h.actions();
    for t in 0..3 {
        h.submit(OpCode::GetData, PostAction::None, t, 10);
    }
    let sent = h.sent();
    let xids: Vec<i32> = sent.iter().map(|(hd, _)| hd.xid).collect();
    assert_eq!(xids.len(), 3);
    assert!(xids.windows(2).all(|w| w[1] == w[0] + 1));
    assert_eq!(&sent[0].1[..], b"body");
    h.reply(xids[0], 7, ErrorCode::Ok, b"", 20);
    h.reply(xids[1], 8, ErrorCode::NoNode, b"", 20);
    assert_eq!(
        replies(&h.actions()),
        vec![(0, Ok(ErrorCode::Ok)), (1, Ok(ErrorCode::NoNode))]
    );
    assert_eq!(h.s.last_zxid(), 8);
    // A reply for an xid that is not next is a protocol violation.
    h.reply(xids[2] + 5, 9, ErrorCode::Ok, b"", 30);
    let a = h.actions();
    assert_eq!(replies(&a), vec![(2, Err(Error::ConnectionLoss))]);
    assert!(a.iter().any(|a| matches!(a, Action::Disconnect)));
    assert_eq!(h.s.state(), SessionState::Disconnected);
}

#[test]
fn pings_when_idle_and_read_timeout_drops_a_silent_server() {
    let mut h = Harness::new(config(1));
    h.establish(0, 1);
    h.actions();
    // read timeout 2000 ms: ping after 1000 ms without sending.
    h.s.tick(h.at(999));
    assert!(h.sent().is_empty());
    assert_eq!(h.s.next_deadline(), Some(h.at(1000)));
    h.s.tick(h.at(1000));
    let sent = h.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0.xid, xid::PING);
    assert_eq!(sent[0].0.opcode, OpCode::Ping);
    // The ping reply keeps the connection alive.
    h.reply(xid::PING, 0, ErrorCode::Ok, b"", 1100);
    h.s.tick(h.at(2100));
    h.sent();
    assert_eq!(h.s.state(), SessionState::Connected);
    // Then silence: 2000 ms after the last receipt the connection is declared dead.
    h.s.tick(h.at(3099));
    assert_eq!(h.s.state(), SessionState::Connected);
    h.s.tick(h.at(3100));
    assert_eq!(h.s.state(), SessionState::Disconnected);
    let a = h.actions();
    assert!(a.iter().any(|a| matches!(a, Action::Disconnect)));
}

#[test]
fn in_flight_fail_with_connection_loss_and_nothing_is_replayed() {
    let mut h = Harness::new(config(2));
    h.establish(0, 1);
    h.actions();
    h.submit(OpCode::SetData, PostAction::None, 1, 10);
    h.submit(OpCode::Create, PostAction::None, 2, 10);
    h.sent();
    h.s.on_disconnected(h.at(20));
    let a = h.actions();
    assert_eq!(
        replies(&a),
        vec![
            (1, Err(Error::ConnectionLoss)),
            (2, Err(Error::ConnectionLoss))
        ]
    );
    assert_eq!(states(&a), vec![SessionState::Disconnected]);
    // Reconnect (after the 100 ms backoff) to the other host, resuming the session.
    h.s.tick(h.at(119));
    assert!(h.actions().is_empty());
    let req = h.establish(120, 1);
    assert_eq!(req.session_id, 1);
    assert_eq!(&req.passwd[..], &[9u8; 16]);
    assert!(h.sent().is_empty(), "nothing replayed");
}

#[test]
fn requests_while_disconnected_wait_for_the_connection_or_time_out() {
    let mut h = Harness::new(config(1));
    h.submit(OpCode::Exists, PostAction::None, 1, 0);
    h.submit(OpCode::Exists, PostAction::None, 2, 500);
    assert!(h.sent().is_empty());
    // Request 1 waits 1000 ms at most.
    h.s.tick(h.at(0));
    h.actions();
    h.s.tick(h.at(1000));
    assert_eq!(replies(&h.actions()), vec![(1, Err(Error::Timeout))]);
    h.s.on_connected(h.at(1000));
    h.sent();
    let resp = ConnectResponse {
        protocol_version: 0,
        timeout: 3000,
        session_id: 3,
        passwd: Bytes::from_static(&[1; 16]),
        read_only: Some(false),
    };
    // Connect timeout is session timeout / hosts = 3000 ms from the attempt at 0.
    h.s.on_frame(resp.to_bytes(), h.at(1200));
    let sent = h.sent();
    assert_eq!(
        sent.len(),
        1,
        "the waiting request goes out after the handshake"
    );
    assert_eq!(sent[0].0.opcode, OpCode::Exists);
}

#[test]
fn connect_timeout_is_session_timeout_over_host_count_and_hosts_rotate() {
    let mut h = Harness::new(config(3));
    h.s.tick(h.at(0));
    let a = h.actions();
    let Some(Action::Connect { host: h1, timeout }) = a.first() else {
        panic!("expected connect, got {a:?}");
    };
    assert_eq!(*timeout, Duration::from_millis(1000));
    let h1 = h1.clone();
    h.s.tick(h.at(1000));
    assert!(h.actions().iter().any(|a| matches!(a, Action::Disconnect)));
    h.s.tick(h.at(1100));
    let a = h.actions();
    let Some(Action::Connect { host: h2, .. }) = a.first() else {
        panic!("expected connect, got {a:?}");
    };
    assert_ne!(&h1, h2);
}

#[test]
fn disconnected_longer_than_session_timeout_reports_expired() {
    let mut h = Harness::new(config(1));
    h.establish(0, 1);
    h.actions();
    let (hd, _) = {
        h.submit(OpCode::GetData, PostAction::None, 1, 0);
        h.sent().remove(0)
    };
    h.reply(hd.xid, 5, ErrorCode::Ok, b"", 500);
    h.actions();
    h.s.on_disconnected(h.at(600));
    h.actions();
    // Every reconnection attempt fails...
    let mut t = 600;
    while t < 4000 {
        t += 100;
        h.s.tick(h.at(t));
        if h.actions()
            .iter()
            .any(|a| matches!(a, Action::Connect { .. }))
        {
            h.s.on_disconnected(h.at(t));
        }
        h.actions();
        if h.s.state() == SessionState::Expired {
            break;
        }
    }
    // ...and 3000 ms after the server was last heard from (500 ms) the client gives up.
    assert_eq!(h.s.state(), SessionState::Expired);
    assert_eq!(t, 3500);
    h.submit(OpCode::Exists, PostAction::None, 9, t);
    assert_eq!(replies(&h.actions()), vec![(9, Err(Error::SessionExpired))]);
}

#[test]
fn server_reported_expiry_is_terminal() {
    let mut h = Harness::new(config(1));
    h.s.tick(h.at(0));
    h.actions();
    h.s.on_connected(h.at(0));
    h.sent();
    let resp = ConnectResponse {
        protocol_version: 0,
        timeout: 0,
        session_id: 0,
        passwd: Bytes::from_static(&[0; 16]),
        read_only: Some(false),
    };
    h.s.on_frame(resp.to_bytes(), h.at(5));
    let a = h.actions();
    assert_eq!(states(&a), vec![SessionState::Expired]);
    assert!(a.iter().any(|a| matches!(a, Action::Finished)));
    assert_eq!(h.s.next_deadline(), None);
}

#[test]
fn watches_register_fire_once_and_are_reset_with_set_watches_on_reconnect() {
    let mut h = Harness::new(config(1));
    h.establish(0, 1);
    h.actions();
    let w = |path: &str, kind| PostAction::Watch {
        kind,
        path: path.into(),
        watcher: DEFAULT_WATCHER,
    };
    h.submit(OpCode::GetData, w("/a", WatchKind::Data), 1, 1);
    h.submit(OpCode::Exists, w("/b", WatchKind::Exists), 2, 1);
    h.submit(OpCode::GetChildren, w("/c", WatchKind::Children), 3, 1);
    h.submit(OpCode::GetData, w("/d", WatchKind::Data), 4, 1);
    let x: Vec<i32> = h.sent().iter().map(|(hd, _)| hd.xid).collect();
    h.reply(x[0], 10, ErrorCode::Ok, b"", 2);
    h.reply(x[1], 11, ErrorCode::NoNode, b"", 2);
    h.reply(x[2], 12, ErrorCode::Ok, b"", 2);
    h.reply(x[3], 13, ErrorCode::NoNode, b"", 2); // failed getData: no watch
    h.actions();
    // A notification for /a fires the data watch once.
    let ev = WatcherEvent {
        event_type: EventType::NodeDataChanged,
        state: KeeperState::SyncConnected,
        path: "/a".into(),
    };
    h.reply(xid::NOTIFICATION, -1, ErrorCode::Ok, &ev.to_bytes(), 3);
    let a = h.actions();
    assert!(matches!(&a[..], [Action::Event { event, watchers }]
        if event.path == "/a" && watchers == &vec![DEFAULT_WATCHER]));
    h.reply(xid::NOTIFICATION, -1, ErrorCode::Ok, &ev.to_bytes(), 3);
    assert!(h.actions().is_empty());
    // After a reconnect the remaining watches are re-sent with the last zxid.
    h.s.on_disconnected(h.at(4));
    h.actions();
    h.establish(200, 1);
    let sent = h.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0.xid, xid::SET_WATCHES);
    let Request::SetWatches(sw) =
        Request::read(sent[0].0.opcode, &mut JuteReader::new(sent[0].1.clone())).unwrap()
    else {
        panic!("expected SetWatches");
    };
    assert_eq!(sw.relative_zxid, 13);
    assert_eq!(sw.data_watches, Vec::<String>::new());
    assert_eq!(sw.exist_watches, vec!["/b".to_owned()]);
    assert_eq!(sw.child_watches, vec!["/c".to_owned()]);
}

#[test]
fn auth_is_replayed_after_every_handshake_and_failure_is_terminal() {
    let mut cfg = config(1);
    cfg.auth = vec![("digest".into(), Bytes::from_static(b"u:p"))];
    let mut h = Harness::new(cfg);
    h.establish(0, 1);
    let sent = h.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0.xid, xid::AUTH);
    h.reply(xid::AUTH, 0, ErrorCode::Ok, b"", 1);
    h.actions();
    h.s.add_auth("digest".into(), Bytes::from_static(b"v:q"), 5, h.at(2));
    assert_eq!(h.sent().len(), 1);
    h.reply(xid::AUTH, 0, ErrorCode::Ok, b"", 3);
    assert_eq!(replies(&h.actions()), vec![(5, Ok(ErrorCode::Ok))]);
    h.s.on_disconnected(h.at(4));
    h.actions();
    h.establish(200, 1);
    let sent = h.sent();
    assert_eq!(
        sent.iter().filter(|(hd, _)| hd.xid == xid::AUTH).count(),
        2,
        "both credentials replayed"
    );
    h.reply(xid::AUTH, 0, ErrorCode::AuthFailed, b"", 201);
    assert_eq!(h.s.state(), SessionState::AuthFailed);
}

#[test]
fn chroot_is_stripped_from_event_paths() {
    let mut cfg = config(1);
    cfg.chroot = Chroot::new("/app").unwrap();
    let mut h = Harness::new(cfg);
    h.establish(0, 1);
    h.actions();
    h.submit(
        OpCode::AddWatch,
        PostAction::Watch {
            kind: WatchKind::PersistentRecursive,
            path: "/app".into(),
            watcher: 7,
        },
        1,
        1,
    );
    let x = h.sent()[0].0.xid;
    h.reply(x, 3, ErrorCode::Ok, b"", 1);
    h.actions();
    let ev = WatcherEvent {
        event_type: EventType::NodeCreated,
        state: KeeperState::SyncConnected,
        path: "/app/x/y".into(),
    };
    h.reply(xid::NOTIFICATION, -1, ErrorCode::Ok, &ev.to_bytes(), 2);
    let a = h.actions();
    assert!(matches!(&a[..], [Action::Event { event, watchers }]
        if event.path == "/x/y" && watchers == &vec![7]));
}

#[test]
fn read_only_connection_probes_for_a_read_write_server_and_switches() {
    let mut cfg = config(3);
    cfg.read_only = true;
    let mut h = Harness::new(cfg);
    h.s.tick(h.at(0));
    h.actions();
    h.s.on_connected(h.at(0));
    let mut out = h.s.outbound().split().freeze();
    let len = out.get_u32() as usize;
    let req = ConnectRequest::decode(out.split_to(len)).unwrap();
    assert_eq!(req.read_only, Some(true));
    let resp = ConnectResponse {
        protocol_version: 0,
        timeout: 3000,
        session_id: 77,
        passwd: Bytes::from_static(&[2; 16]),
        read_only: Some(true),
    };
    h.s.on_frame(resp.to_bytes(), h.at(10));
    assert_eq!(states(&h.actions()), vec![SessionState::ConnectedReadOnly]);
    let current = h.s.current_host().cloned().unwrap();
    // After the probe interval (1 s) the client asks another server whether it is rw.
    h.reply(xid::PING, 0, ErrorCode::Ok, b"", 900);
    h.s.tick(h.at(1010));
    h.sent();
    let a = h.actions();
    let Some(Action::ProbeReadWrite { host, .. }) = a
        .iter()
        .find(|a| matches!(a, Action::ProbeReadWrite { .. }))
    else {
        panic!("expected a probe, got {a:?}");
    };
    assert_ne!(host, &current);
    let rw = host.clone();
    h.s.on_probe_result(rw.clone(), true, h.at(1020));
    let a = h.actions();
    assert!(a.iter().any(|a| matches!(a, Action::Disconnect)));
    // It reconnects at once, to the read-write server, with a fresh session (the read-only
    // server's session cannot move).
    h.s.tick(h.at(1020));
    let a = h.actions();
    assert!(
        a.iter()
            .any(|a| matches!(a, Action::Connect { host, .. } if host == &rw)),
        "{a:?}"
    );
    h.s.on_connected(h.at(1030));
    let mut out = h.s.outbound().split().freeze();
    let len = out.get_u32() as usize;
    let req = ConnectRequest::decode(out.split_to(len)).unwrap();
    assert_eq!(req.session_id, 0);
}

#[test]
fn close_while_disconnected_waits_for_a_connection_then_closes_locally() {
    let mut h = Harness::new(config(1));
    h.establish(0, 5);
    h.actions();
    h.s.on_disconnected(h.at(10));
    h.actions();
    h.s.close(1, h.at(20));
    assert!(replies(&h.actions()).is_empty(), "parked until reconnected");
    // The request timeout (1000 ms) passes without a server: closed locally.
    h.s.tick(h.at(1019));
    h.actions();
    h.s.tick(h.at(1020));
    let a = h.actions();
    assert_eq!(replies(&a), vec![(1, Ok(ErrorCode::Ok))]);
    assert_eq!(h.s.state(), SessionState::Closed);
}

fn sasl_config() -> SessionConfig {
    let mut cfg = config(1);
    cfg.sasl = Some(SaslConfig::DigestMd5 {
        username: "alice".into(),
        password: "secret".into(),
    });
    cfg
}

fn sasl_body(token: &[u8]) -> Vec<u8> {
    let mut b = BytesMut::new();
    zk_proto::ops::SaslToken {
        token: Some(Bytes::copy_from_slice(token)),
    }
    .write(&mut b);
    b.to_vec()
}

fn sasl_token(body: &Bytes) -> Bytes {
    zk_proto::ops::SaslToken::read(&mut JuteReader::new(body.clone()))
        .unwrap()
        .token
        .unwrap_or_default()
}

const CHALLENGE: &[u8] =
    br#"realm="zk-sasl-md5",nonce="n0nce",qop="auth",charset=utf-8,algorithm=md5-sess"#;

/// Answers the client's empty token with [`CHALLENGE`] and returns the `rspauth` the
/// client's response calls for.
fn answer_first_step(h: &mut Harness, ms: u64) -> (i32, String) {
    let sent = h.sent();
    assert_eq!(sent.len(), 1, "only the SASL token goes out first");
    assert_eq!(sent[0].0.opcode, OpCode::Sasl);
    assert!(sent[0].0.xid > 0, "a normal xid, as Java's client");
    assert!(sasl_token(&sent[0].1).is_empty());
    h.reply(sent[0].0.xid, 0, ErrorCode::Ok, &sasl_body(CHALLENGE), ms);
    let sent = h.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0.opcode, OpCode::Sasl);
    let resp = sasl::parse_directives(&sasl_token(&sent[0].1)).unwrap();
    let get = |k: &str| resp.iter().find(|(key, _)| key == k).unwrap().1.clone();
    assert_eq!(get("digest-uri"), "zookeeper/zk-sasl-md5");
    let cnonce = get("cnonce");
    let (response, rspauth) = sasl::digest_response(&sasl::DigestInput {
        username: b"alice",
        realm: b"zk-sasl-md5",
        password: b"secret",
        nonce: "n0nce",
        cnonce: &cnonce,
        nc: "00000001",
        qop: "auth",
        digest_uri: "zookeeper/zk-sasl-md5",
        authzid: None,
    });
    assert_eq!(get("response"), response);
    (sent[0].0.xid, rspauth)
}

#[test]
fn sasl_login_goes_first_and_is_redone_after_every_handshake() {
    let mut cfg = sasl_config();
    cfg.auth = vec![("digest".into(), Bytes::from_static(b"u:p"))];
    let mut h = Harness::new(cfg);
    h.establish(0, 1);
    assert!(
        states(&h.actions()).is_empty(),
        "not connected before the login"
    );
    h.submit(OpCode::Sync, PostAction::None, 1, 1);
    let (xid, rspauth) = answer_first_step(&mut h, 2);
    h.reply(
        xid,
        0,
        ErrorCode::Ok,
        &sasl_body(format!("rspauth={rspauth}").as_bytes()),
        3,
    );
    assert_eq!(states(&h.actions()), vec![SessionState::Connected]);
    let sent: Vec<_> = h.sent().into_iter().map(|(hd, _)| hd.opcode).collect();
    assert_eq!(
        sent,
        vec![OpCode::Auth, OpCode::Sync],
        "then auth, then the parked request"
    );

    h.s.on_disconnected(h.at(10));
    h.actions();
    h.establish(200, 1);
    let (xid, rspauth) = answer_first_step(&mut h, 201);
    h.reply(
        xid,
        0,
        ErrorCode::Ok,
        &sasl_body(format!("rspauth={rspauth}").as_bytes()),
        202,
    );
    assert!(states(&h.actions()).contains(&SessionState::Connected));
}

#[test]
fn sasl_refusal_is_terminal_with_the_reason() {
    let mut h = Harness::new(sasl_config());
    h.establish(0, 1);
    h.submit(OpCode::Sync, PostAction::None, 1, 1);
    let (xid, _) = answer_first_step(&mut h, 2);
    // Apache: AuthFailed and a null token, then it closes the connection.
    let mut b = BytesMut::new();
    zk_proto::ops::SaslToken { token: None }.write(&mut b);
    h.reply(xid, 0, ErrorCode::AuthFailed, &b, 3);
    assert_eq!(h.s.state(), SessionState::AuthFailed);
    let r = replies(&h.actions());
    let [(1, Err(Error::Auth { host, reason }))] = &r[..] else {
        panic!("{r:?}");
    };
    assert_eq!(host, "127.0.0.1:1000");
    assert!(
        reason.contains("alice") && reason.contains("AUTHFAILED"),
        "{reason}"
    );
}

#[test]
fn sasl_bad_server_tokens_fail_cleanly() {
    // A server that does not know the password cannot produce the rspauth.
    let mut h = Harness::new(sasl_config());
    h.establish(0, 1);
    let (xid, _) = answer_first_step(&mut h, 1);
    h.reply(xid, 0, ErrorCode::Ok, &sasl_body(b"rspauth=0123"), 2);
    assert_eq!(h.s.state(), SessionState::AuthFailed);
    assert!(
        matches!(h.s.terminal_error(), Error::Auth { reason, .. } if reason.contains("rspauth"))
    );

    // No SASL on the server: a null challenge.
    let mut h = Harness::new(sasl_config());
    h.establish(0, 1);
    let xid = h.sent()[0].0.xid;
    h.reply(xid, 0, ErrorCode::Ok, &(-1i32).to_be_bytes(), 1);
    assert!(
        matches!(h.s.terminal_error(), Error::Auth { reason, .. } if reason.contains("no DIGEST-MD5 challenge"))
    );

    // A token length beyond the frame, and a reply to a request never sent: no panic,
    // no allocation from the length; the connection is dropped or the login refused.
    let mut h = Harness::new(sasl_config());
    h.establish(0, 1);
    let xid = h.sent()[0].0.xid;
    h.reply(xid, 0, ErrorCode::Ok, &i32::MAX.to_be_bytes(), 1);
    assert_eq!(h.s.state(), SessionState::AuthFailed);
    let mut h = Harness::new(sasl_config());
    h.establish(0, 1);
    h.reply(77, 0, ErrorCode::Ok, b"", 1);
    assert!(h.actions().iter().any(|a| matches!(a, Action::Disconnect)));
    assert_eq!(h.s.state(), SessionState::Disconnected);
}

/// When the first attempt after losing an established connection is made, for a session
/// seeded with `seed` and a jitter bound of `bound_ms` (the retry policy adds 100 ms).
fn reconnect_at(seed: u64, bound_ms: u64) -> u64 {
    let mut cfg = config(1);
    cfg.seed = seed;
    cfg.reconnect_jitter = Duration::from_millis(bound_ms);
    let mut h = Harness::new(cfg);
    h.establish(0, 1);
    h.actions();
    h.s.on_disconnected(h.at(0));
    h.actions();
    let at = h.s.next_deadline().expect("a retry is scheduled");
    let ms = at.duration_since(h.t0).as_millis() as u64;
    // Nothing happens before it; the attempt is made at it.
    h.s.tick(at - Duration::from_millis(1));
    assert!(h
        .actions()
        .iter()
        .all(|a| !matches!(a, Action::Connect { .. })));
    h.s.tick(at);
    assert!(h
        .actions()
        .iter()
        .any(|a| matches!(a, Action::Connect { .. })));
    ms
}

#[test]
fn reconnect_jitter_is_seeded_bounded_and_spread() {
    // Off: the retry policy's delay alone.
    assert_eq!(reconnect_at(5, 0), 100);
    // Reproducible per seed.
    assert_eq!(reconnect_at(5, 400), reconnect_at(5, 400));
    // 1,000 clients: all within [100, 100 + 400] ms, spread over the window (each
    // 40 ms tenth of it holds 10% ± a few points, never a burst).
    let mut buckets = [0u32; 10];
    for seed in 0..1000 {
        let ms = reconnect_at(seed, 400);
        assert!((100..=500).contains(&ms), "seed {seed}: {ms} ms");
        buckets[(((ms - 100) / 40) as usize).min(9)] += 1;
    }
    assert!(
        buckets.iter().all(|n| (60..=140).contains(n)),
        "{buckets:?}"
    );
    // Capped at a fifth of the session timeout (3 s here): a 10 s bound acts as 600 ms.
    let worst = (0..200).map(|s| reconnect_at(s, 10_000)).max().unwrap();
    assert!((500..=700).contains(&worst), "{worst}");
}

#[test]
fn a_rebalancing_move_waits_for_in_flight_requests_and_keeps_the_session() {
    let mut h = Harness::new(config(1));
    h.establish(0, 77);
    h.actions();
    h.submit(OpCode::GetData, PostAction::None, 5, 10);
    h.sent();
    // The only member we know leaves: the move is certain, but waits for the reply.
    let new: Vec<HostPort> = (1..3)
        .map(|i| HostPort {
            host: "127.0.0.1".into(),
            port: 1000 + i,
        })
        .collect();
    assert!(h.s.update_hosts(new.clone(), h.at(20)));
    h.s.tick(h.at(30));
    assert!(!h.actions().iter().any(|a| matches!(a, Action::Disconnect)));
    h.reply(1, 5, ErrorCode::Ok, b"", 40);
    let acts = h.actions();
    assert_eq!(replies(&acts), vec![(5, Ok(ErrorCode::Ok))]);
    assert!(acts.iter().any(|a| matches!(a, Action::Disconnect)));
    // Reconnects at once to a member of the new list, resuming the session.
    h.s.tick(h.at(40));
    let target = h.actions().into_iter().find_map(|a| match a {
        Action::Connect { host, .. } => Some(host),
        _ => None,
    });
    assert!(
        target.as_ref().is_some_and(|t| new.contains(t)),
        "{target:?}"
    );
    h.s.on_connected(h.at(41));
    let mut out = h.s.outbound().split().freeze();
    let len = out.get_u32() as usize;
    let req = ConnectRequest::decode(out.split_to(len)).unwrap();
    assert_eq!(req.session_id, 77);
    assert_eq!(h.s.hosts().len(), 2);
}

/// A session of `seed` established on one of three hosts: the harness, that host and the
/// one after it in the client's shuffled list.
fn established_on_one_of_three(seed: u64) -> (Harness, HostPort, HostPort) {
    let mut h = Harness::new(SessionConfig { seed, ..config(3) });
    h.establish(0, 1);
    h.actions();
    let was = h.s.current_host().cloned().expect("connected");
    let order = h.s.hosts();
    let i = order.iter().position(|x| *x == was).expect("listed");
    let next = order[(i + 1) % 3].clone();
    (h, was, next)
}

/// The host of the next `Connect` action at `ms`.
fn next_connect(h: &mut Harness, ms: u64) -> HostPort {
    h.s.tick(h.at(ms));
    h.actions()
        .into_iter()
        .find_map(|a| match a {
            Action::Connect { host, .. } => Some(host),
            _ => None,
        })
        .expect("a connection attempt")
}

/// Where clients go after their server closed an established connection: a third to
/// each member of three, the one that closed included (it holds their handshakes once it
/// serves again), so survivors of a leader's death share the clients evenly.
#[test]
fn a_server_closing_an_established_connection_sends_the_client_anywhere() {
    let (mut same, mut next, mut other) = (0, 0, 0);
    for seed in 0..600 {
        let (mut h, was, next_in_list) = established_on_one_of_three(seed);
        h.s.on_disconnected(h.at(10));
        let to = next_connect(&mut h, 110);
        if to == was {
            same += 1;
        } else if to == next_in_list {
            next += 1;
        } else {
            other += 1;
        }
    }
    for (what, n) in [("same", same), ("next", next), ("other", other)] {
        assert!((140..=260).contains(&n), "{what}: {n} of 600");
    }
}

/// A server gone silent (read timeout) may be down for good: the client walks on to the
/// next host of its list, never back to it first.
#[test]
fn a_read_timeout_walks_on_to_the_next_host() {
    for seed in 0..50 {
        let (mut h, _, next_in_list) = established_on_one_of_three(seed);
        h.s.tick(h.at(2001));
        assert!(h.actions().iter().any(|a| matches!(a, Action::Disconnect)));
        assert_eq!(next_connect(&mut h, 2101), next_in_list, "seed {seed}");
    }
}
