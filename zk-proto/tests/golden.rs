//! Golden vectors: every frame captured between Apache ZooKeeper 3.8 and its own Java and C
//! clients (see `golden/README.md`) decodes, and re-encodes to the identical bytes.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

use bytes::{Bytes, BytesMut};
use zk_proto::{
    xid, ConnectRequest, ConnectResponse, ErrorCode, JuteReader, MultiOp, OpCode, OpResult, Record,
    ReplyHeader, Request, RequestHeader, Response, WatcherEvent,
};

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect()
}

#[derive(Default)]
struct Coverage {
    requests: BTreeSet<i32>,
    replies: BTreeSet<i32>,
    multi_ops: BTreeSet<i32>,
    multi_error_form: bool,
    notifications: BTreeSet<i32>,
    error_codes: BTreeSet<i32>,
    frames: usize,
}

/// Decodes one fixture file, asserting byte-identical re-encoding of every frame.
fn check_file(name: &str, text: &str, cov: &mut Coverage) {
    let mut client_started = false;
    let mut server_started = false;
    let mut pending: HashMap<i32, OpCode> = HashMap::new();
    for (lineno, line) in text.lines().enumerate() {
        let at = format!("{name}:{}", lineno + 1);
        let line = line.trim();
        if line == "# new connection" {
            client_started = false;
            server_started = false;
            pending.clear();
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (dir, hex) = line
            .split_once(' ')
            .unwrap_or_else(|| panic!("{at}: bad line"));
        let raw = Bytes::from(unhex(hex));
        assert!(raw.len() >= 4, "{at}: frame shorter than its prefix");
        let len = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]) as usize;
        assert_eq!(len, raw.len() - 4, "{at}: length prefix mismatch");
        let body = raw.slice(4..);
        cov.frames += 1;
        let mut out = BytesMut::new();
        match dir {
            "C" if !client_started => {
                client_started = true;
                let req = ConnectRequest::decode(body.clone())
                    .unwrap_or_else(|e| panic!("{at}: ConnectRequest: {e}"));
                req.write(&mut out);
            }
            "C" => {
                let mut r = JuteReader::new(body.clone());
                let h = RequestHeader::read(&mut r).unwrap_or_else(|e| panic!("{at}: {e}"));
                let req = Request::read(h.opcode, &mut r)
                    .unwrap_or_else(|e| panic!("{at}: {:?} body: {e}", h.opcode));
                assert_eq!(req.opcode(), h.opcode, "{at}");
                cov.requests.insert(h.opcode.to_i32());
                if let Request::Multi(m) | Request::MultiRead(m) = &req {
                    cov.multi_ops
                        .extend(m.ops.iter().map(|o: &MultiOp| o.opcode().to_i32()));
                }
                pending.insert(h.xid, h.opcode);
                h.write(&mut out);
                req.write(&mut out);
            }
            "S" if !server_started => {
                server_started = true;
                let resp = ConnectResponse::decode(body.clone())
                    .unwrap_or_else(|e| panic!("{at}: ConnectResponse: {e}"));
                resp.write(&mut out);
            }
            "S" => {
                let mut r = JuteReader::new(body.clone());
                let h = ReplyHeader::read(&mut r).unwrap_or_else(|e| panic!("{at}: {e}"));
                h.write(&mut out);
                if h.err != ErrorCode::Ok {
                    cov.error_codes.insert(h.err.to_i32());
                }
                if h.xid == xid::NOTIFICATION {
                    let ev = WatcherEvent::read(&mut r).unwrap_or_else(|e| panic!("{at}: {e}"));
                    r.finish().unwrap_or_else(|e| panic!("{at}: {e}"));
                    cov.notifications.insert(ev.event_type.to_i32());
                    ev.write(&mut out);
                } else {
                    let op = pending
                        .remove(&h.xid)
                        .unwrap_or_else(|| panic!("{at}: reply to unknown xid {}", h.xid));
                    let resp = Response::read(op, h.err, &mut r)
                        .unwrap_or_else(|e| panic!("{at}: {op:?} reply: {e}"));
                    cov.replies.insert(op.to_i32());
                    if let Response::Multi(m) = &resp {
                        for res in &m.results {
                            if let OpResult::Error(e) = res {
                                cov.multi_error_form = true;
                                cov.error_codes.insert(e.to_i32());
                            }
                        }
                    }
                    resp.write(&mut out);
                }
            }
            other => panic!("{at}: unknown direction {other:?}"),
        }
        assert_eq!(
            out.freeze(),
            body,
            "{at}: re-encoding differs from the captured bytes"
        );
    }
}

fn fixtures() -> BTreeMap<String, String> {
    // ZK_GOLDEN_DIR points the test at a fresh capture (CI re-records against Apache).
    let dir = std::env::var_os("ZK_GOLDEN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden"));
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).expect("golden dir") {
        let path = entry.expect("dir entry").path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".txt") && name != "inventory.txt" {
            files.insert(name, std::fs::read_to_string(&path).expect("read fixture"));
        }
    }
    files
}

#[test]
fn every_captured_frame_decodes_and_reencodes_identically() {
    let files = fixtures();
    assert!(files.len() >= 5, "golden fixtures missing: {files:?}");
    let mut cov = Coverage::default();
    for (name, text) in &files {
        check_file(name, text, &mut cov);
    }
    assert!(cov.frames > 200, "only {} frames", cov.frames);

    // Every client opcode a client can send (deleteContainer and createSession are internal).
    let wanted = [
        1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 14, 15, 16, 17, 18, 19, 21, 22, 100, 101, 102, 103, 104,
        105, 106, 107, -11,
    ];
    let missing: Vec<_> = wanted
        .iter()
        .filter(|op| !cov.requests.contains(op))
        .collect();
    assert!(missing.is_empty(), "opcodes never captured: {missing:?}");
    assert!(
        cov.multi_ops.contains(&13),
        "check inside multi not captured"
    );
    assert!(cov.multi_error_form, "no multi with a failing op");
    for ev in 1..=4 {
        assert!(
            cov.notifications.contains(&ev),
            "no notification of type {ev}"
        );
    }
    for code in [-101, -103, -110, -111, -102] {
        assert!(
            cov.error_codes.contains(&code),
            "error {code} never captured"
        );
    }
}

#[test]
fn corrupting_any_captured_frame_never_panics() {
    // Truncations and bit flips of real frames must give errors or values, never a panic.
    for (_, text) in fixtures() {
        for line in text
            .lines()
            .filter(|l| l.starts_with("C ") || l.starts_with("S "))
        {
            let raw = unhex(&line[2..]);
            let body = &raw[4..];
            for cut in 0..body.len().min(64) {
                let b = Bytes::copy_from_slice(&body[..cut]);
                let mut r = JuteReader::new(b.clone());
                if let Ok(h) = RequestHeader::read(&mut r) {
                    let _ = Request::read(h.opcode, &mut r);
                }
                let mut r = JuteReader::new(b);
                if let Ok(h) = ReplyHeader::read(&mut r) {
                    for op in [
                        OpCode::GetData,
                        OpCode::Multi,
                        OpCode::GetAcl,
                        OpCode::GetChildren2,
                    ] {
                        let _ = Response::read(op, h.err, &mut r.clone());
                    }
                }
            }
            let mut flipped = body.to_vec();
            for i in (0..flipped.len()).step_by(3) {
                flipped[i] ^= 0xff;
                let mut r = JuteReader::new(Bytes::copy_from_slice(&flipped));
                if let Ok(h) = RequestHeader::read(&mut r) {
                    let _ = Request::read(h.opcode, &mut r);
                }
                flipped[i] ^= 0xff;
            }
        }
    }
}
