//! `kill -9` during a pipelined write load: after a restart on the same data dir every
//! acknowledged write is there, and what survived is a prefix of the session's writes.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tests::ports::free_port;
use tests::raw::read_frame;
use tests::zk_processes::ServerProcess;
use zk_proto::ops::{CreateRequest, GetDataResponse, PathWatchRequest};
use zk_proto::{
    write_frame, Acl, ConnectRequest, ConnectResponse, CreateMode, ErrorCode, JuteReader, OpCode,
    Record, ReplyHeader, RequestHeader,
};

/// Opens a session, retrying until the server accepts connections.
fn session(port: u16) -> TcpStream {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut b = BytesMut::new();
            write_frame(&mut b, |w| {
                ConnectRequest {
                    timeout: 10_000,
                    passwd: vec![0; 16].into(),
                    read_only: Some(false),
                    ..Default::default()
                }
                .write(w)
            });
            if s.write_all(&b).is_ok() {
                if let Ok(f) = read_frame(&mut s) {
                    let resp = ConnectResponse::decode(f).expect("connect response");
                    assert!(resp.timeout > 0, "session refused");
                    return s;
                }
            }
        }
        assert!(Instant::now() < deadline, "server did not come up");
        std::thread::sleep(Duration::from_millis(20));
    }
}

const WRITES: usize = 3000;
const KILL_AFTER_ACKS: usize = 400;

fn value(i: usize) -> String {
    format!("value-{i}")
}

#[test]
fn every_acknowledged_write_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().unwrap();
    let cfg = dir.path().join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=500\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\npreAllocSize=1024\n",
            dir.path().display()
        ),
    )
    .unwrap();

    let mut server = ServerProcess::start(&cfg).unwrap();
    let mut s = session(port);
    // Pipeline every create at once so many are in flight (and in group-commit batches)
    // when the process dies.
    let mut b = BytesMut::new();
    for i in 0..WRITES {
        write_frame(&mut b, |w| {
            RequestHeader {
                xid: i as i32 + 1,
                opcode: OpCode::Create,
            }
            .write(w);
            CreateRequest {
                path: format!("/k-{i:05}"),
                data: Some(value(i).into()),
                acl: Acl::open_unsafe(),
                flags: CreateMode::Persistent.to_flags(),
            }
            .write(w);
        });
    }
    let mut writer = s.try_clone().unwrap();
    let send = std::thread::spawn(move || {
        let _ = writer.write_all(&b);
    });
    let mut acked = 0usize;
    while acked < KILL_AFTER_ACKS {
        let f = read_frame(&mut s).expect("reply before the kill");
        let h = ReplyHeader::read(&mut JuteReader::new(f)).unwrap();
        assert_eq!(h.err, ErrorCode::Ok);
        assert_eq!(h.xid as usize, acked + 1, "replies in FIFO order");
        acked += 1;
    }
    server.kill9();
    // Replies already in the socket buffer were acknowledged before the kill too.
    while let Ok(f) = read_frame(&mut s) {
        let h = ReplyHeader::read(&mut JuteReader::new(f)).unwrap();
        if h.xid as usize == acked + 1 && h.err == ErrorCode::Ok {
            acked += 1;
        }
    }
    let _ = send.join();
    assert!(
        acked < WRITES,
        "the kill landed after the whole load; nothing was tested"
    );

    let _server = ServerProcess::start(&cfg).unwrap();
    let mut s = session(port);
    let mut present = 0usize;
    let mut gap_seen = false;
    for i in 0..WRITES {
        let mut b = BytesMut::new();
        write_frame(&mut b, |w| {
            RequestHeader {
                xid: i as i32 + 1,
                opcode: OpCode::GetData,
            }
            .write(w);
            PathWatchRequest {
                path: format!("/k-{i:05}"),
                watch: false,
            }
            .write(w);
        });
        s.write_all(&b).unwrap();
        let mut r = JuteReader::new(read_frame(&mut s).unwrap());
        let h = ReplyHeader::read(&mut r).unwrap();
        match h.err {
            ErrorCode::Ok => {
                assert!(!gap_seen, "/k-{i:05} survived but an earlier write did not");
                let d = GetDataResponse::read(&mut r).unwrap();
                assert_eq!(d.data.as_deref(), Some(value(i).as_bytes()));
                present += 1;
            }
            ErrorCode::NoNode => {
                assert!(i >= acked, "acknowledged write /k-{i:05} lost by kill -9");
                gap_seen = true;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(present >= acked, "{present} present < {acked} acknowledged");
    eprintln!("acknowledged {acked}, present after restart {present} of {WRITES}");
}
