//! The SNAP stream (the database a leader sends a learner) against Apache ZooKeeper 3.8's
//! own code: Apache's `SerializeUtils.serializeSnapshot` + signature, as its
//! `LearnerHandler` writes it, is framed and decoded by `snap_stream`; and what we send is
//! read back by Apache's `SerializeUtils.deserializeSnapshot` + signature check, as its
//! `Learner.syncWithLeader` reads it. Needs Java 17 and the Debian `zookeeper` package;
//! fails (does not skip) without them.

use bytes::{Bytes, BytesMut};
use zk_proto::persistence::DataNodeRecord;
use zk_proto::{Acl, StatPersisted};
use zk_server::storage::snap_stream;
use zk_server::storage::SnapshotData;

/// A tiny Java program over Apache's classes: `write <file>` streams a DataTree with two
/// nodes and a session; `read <file> <paths...>` reads a stream and prints what it holds.
const JAVA: &str = r#"
import java.io.*;
import java.util.*;
import org.apache.jute.*;
import org.apache.zookeeper.ZooDefs;
import org.apache.zookeeper.server.DataNode;
import org.apache.zookeeper.server.DataTree;
import org.apache.zookeeper.server.util.SerializeUtils;

public class SnapStream {
    public static void main(String[] args) throws Exception {
        if (args[0].equals("write")) {
            DataTree dt = new DataTree();
            dt.createNode("/a", "apache".getBytes(), ZooDefs.Ids.OPEN_ACL_UNSAFE, 0, 1, 5, 1000);
            dt.createNode("/a/e", "eph".getBytes(), ZooDefs.Ids.READ_ACL_UNSAFE, 0x77, 1, 6, 1000);
            Map<Long, Integer> sessions = new HashMap<>();
            sessions.put(0x77L, 12000);
            DataOutputStream out = new DataOutputStream(new FileOutputStream(args[1]));
            BinaryOutputArchive oa = BinaryOutputArchive.getArchive(out);
            SerializeUtils.serializeSnapshot(dt, oa, sessions);
            oa.writeString("BenWasHere", "signature");
            out.close();
            return;
        }
        DataInputStream in = new DataInputStream(new BufferedInputStream(new FileInputStream(args[1])));
        BinaryInputArchive ia = BinaryInputArchive.getArchive(in);
        DataTree dt = new DataTree();
        Map<Long, Integer> sessions = new HashMap<>();
        SerializeUtils.deserializeSnapshot(dt, ia, sessions);
        System.out.println("signature=" + ia.readString("signature"));
        System.out.println("sessions=" + new TreeMap<>(sessions));
        for (int i = 2; i < args.length; i++) {
            DataNode n = dt.getNode(args[i]);
            if (n == null) {
                System.out.println(args[i] + " missing");
            } else {
                System.out.println(args[i] + " data=" + new String(n.getData())
                    + " owner=" + n.stat.getEphemeralOwner()
                    + " mzxid=" + n.stat.getMzxid()
                    + " acl=" + dt.getACL(n));
            }
        }
    }
}
"#;

fn java(dir: &std::path::Path, args: &[&str]) -> String {
    let src = dir.join("SnapStream.java");
    std::fs::write(&src, JAVA).expect("java source");
    // A single-file source program runs as `java -cp <classpath> File.java args`.
    let out = tests::apache::java(&[], src.to_str().expect("utf-8 path"))
        .args(args)
        .output()
        .expect("run java");
    assert!(
        out.status.success(),
        "java failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn apache_leaders_stream_is_read_and_decoded() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("apache.snap");
    java(dir.path(), &["write", file.to_str().unwrap()]);
    let mut wire = std::fs::read(&file).expect("stream");
    // The next packet follows on the wire: framing must stop exactly at the signature.
    wire.extend_from_slice(b"NEXT");
    let mut io = &wire[..];
    let (body, rest) = snap_stream::read_stream(&mut io, BytesMut::new(), 1 << 20)
        .await
        .expect("framed");
    assert_eq!(&rest[..], b"NEXT");
    let snap = snap_stream::decode(6, body).expect("decoded");
    assert_eq!(snap.sessions, vec![(0x77, 12000)]);
    let node = |p: &str| {
        snap.nodes
            .iter()
            .find(|(path, _)| path == p)
            .map(|(_, n)| n.clone())
            .unwrap_or_else(|| panic!("{p} missing"))
    };
    assert_eq!(node("/a").data.as_deref(), Some(&b"apache"[..]));
    let e = node("/a/e");
    assert_eq!(e.data.as_deref(), Some(&b"eph"[..]));
    assert_eq!(e.stat.ephemeral_owner, 0x77);
    let acl = snap
        .acls
        .iter()
        .find(|(i, _)| *i == e.acl)
        .map(|(_, a)| a.clone());
    assert_eq!(acl, Some(Acl::read_unsafe()));
    assert!(snap.nodes.iter().any(|(p, _)| p == "/zookeeper"));
}

#[test]
fn our_stream_is_what_an_apache_learner_reads() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut snap = SnapshotData::initial();
    snap.last_zxid = 0x2_0000_0007;
    snap.sessions = vec![(0x55, 30000)];
    snap.acls.push((2, Acl::read_unsafe()));
    let rec = |data: &'static [u8], acl: i64, owner: i64, zxid: i64| DataNodeRecord {
        data: Some(Bytes::from_static(data)),
        acl,
        stat: StatPersisted {
            czxid: zxid,
            mzxid: zxid,
            pzxid: zxid,
            ephemeral_owner: owner,
            ..StatPersisted::default()
        },
    };
    snap.nodes
        .push(("/x".into(), rec(b"ours", -1, 0, 0x2_0000_0005)));
    snap.nodes
        .push(("/x/eph".into(), rec(b"e", 2, 0x55, 0x2_0000_0007)));
    let file = dir.path().join("ours.snap");
    std::fs::write(&file, snap_stream::signed(&snap_stream::encode(&snap))).expect("write");
    let out = java(
        dir.path(),
        &["read", file.to_str().unwrap(), "/x", "/x/eph", "/zookeeper"],
    );
    assert!(out.contains("signature=BenWasHere"), "{out}");
    assert!(out.contains("sessions={85=30000}"), "{out}");
    assert!(
        out.contains(&format!("/x data=ours owner=0 mzxid={}", 0x2_0000_0005_i64)),
        "{out}"
    );
    // ACL index 2 of our cache: read-only for everyone (perms 1).
    assert!(
        out.contains(&format!(
            "/x/eph data=e owner=85 mzxid={} acl=[1,s{{'world,'anyone}}",
            0x2_0000_0007_i64
        )),
        "{out}"
    );
    assert!(out.contains("/zookeeper data="), "{out}");
}
