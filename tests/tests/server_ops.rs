//! Every client opcode against the in-process server, with Apache's results, Stats and
//! error codes (raw zk-proto frames, no client library).

mod server_support;

use bytes::Bytes;
use server_support::*;
use zk_proto::ops::*;
use zk_proto::{
    Acl, CreateMode, ErrorCode, MultiOp, MultiRequest, OpCode, OpResult, Perms, Request, Response,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_nodes_and_stats() {
    let s = TestServer::start().await;
    let mut c = RawClient::connect(s.addr()).await;
    let root = c.exists("/", false).await.stat();
    assert_eq!((root.cversion, root.num_children, root.czxid), (-1, 1, 0));
    let zk = c.children("/zookeeper", false).await;
    assert_eq!(
        zk.children(),
        vec!["config".to_string(), "quota".to_string()]
    );
    assert_eq!(zk.stat().cversion, -2);
    let cfg = c
        .call(Request::GetAcl(PathRequest {
            path: "/zookeeper/config".into(),
        }))
        .await;
    match cfg.body {
        Response::GetAcl(a) => {
            assert_eq!(a.acl, Acl::read_unsafe());
            assert_eq!(a.stat.aversion, -1);
        }
        other => panic!("{other:?}"),
    }

    let created = c.create("/a", "hello", CreateMode::Persistent).await;
    assert_eq!(created.err(), ErrorCode::Ok);
    let st = created.stat();
    assert_eq!(st.czxid, st.mzxid);
    assert_eq!(st.czxid, st.pzxid);
    assert_eq!(
        (
            st.version,
            st.cversion,
            st.aversion,
            st.data_length,
            st.ephemeral_owner
        ),
        (0, 0, 0, 5, 0)
    );
    assert_eq!(created.header.zxid, st.czxid);

    let set = c.set("/a", "hi", 0).await;
    let st2 = set.stat();
    assert_eq!(st2.version, 1);
    assert!(st2.mzxid > st.mzxid);
    assert!(st2.mtime >= st.mtime);
    assert_eq!(st2.czxid, st.czxid);
    assert_eq!(c.set("/a", "x", 0).await.err(), ErrorCode::BadVersion);
    let got = c.get("/a", false).await;
    assert_eq!(got.data(), Some(Bytes::from_static(b"hi")));

    // Children change cversion (creates + deletes as clients see it) and pzxid.
    c.create("/a/x", "", CreateMode::Persistent).await;
    let del = c.delete("/a/x", -1).await;
    assert_eq!(del.err(), ErrorCode::Ok);
    let a = c.exists("/a", false).await.stat();
    assert_eq!(
        (a.cversion, a.num_children, a.pzxid),
        (2, 0, del.header.zxid)
    );

    // Null data stays null; empty stays empty.
    let r = c
        .call(Request::Create(CreateRequest {
            path: "/null".into(),
            data: None,
            acl: Acl::open_unsafe(),
            flags: 0,
        }))
        .await;
    assert_eq!(r.path(), "/null");
    assert_eq!(c.get("/null", false).await.data(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_kinds() {
    let s = TestServer::start_with(|c| {
        c.extended_types = true;
        c.container_check_interval_ms = 100;
    })
    .await;
    let mut c = RawClient::connect(s.addr()).await;
    c.create("/p", "", CreateMode::Persistent).await;
    let s1 = c
        .create("/p/s-", "", CreateMode::PersistentSequential)
        .await
        .path();
    let s2 = c
        .create("/p/s-", "", CreateMode::EphemeralSequential)
        .await
        .path();
    assert_eq!(s1, "/p/s-0000000000");
    assert_eq!(s2, "/p/s-0000000001");
    let e = c.create("/e", "", CreateMode::Ephemeral).await;
    assert_eq!(e.stat().ephemeral_owner, c.session_id);
    assert_eq!(
        c.create("/e/child", "", CreateMode::Persistent).await.err(),
        ErrorCode::NoChildrenForEphemerals
    );
    assert_eq!(
        c.create("/p", "", CreateMode::Persistent).await.err(),
        ErrorCode::NodeExists
    );
    assert_eq!(
        c.create("/missing/x", "", CreateMode::Persistent)
            .await
            .err(),
        ErrorCode::NoNode
    );
    assert_eq!(
        c.create("/bad/", "", CreateMode::Persistent).await.err(),
        ErrorCode::NoNode
    );
    assert_eq!(
        c.create("/p/", "", CreateMode::Persistent).await.err(),
        ErrorCode::BadArguments
    );
    assert_eq!(
        c.create("nope", "", CreateMode::Persistent).await.err(),
        ErrorCode::BadArguments
    );
    let bad_flags = c
        .call(Request::Create(CreateRequest {
            path: "/f".into(),
            data: None,
            acl: Acl::open_unsafe(),
            flags: 42,
        }))
        .await;
    assert_eq!(bad_flags.err(), ErrorCode::BadArguments);
    let r = c
        .call(Request::GetEphemerals(PathRequest { path: "/".into() }))
        .await;
    match r.body {
        // In Apache's HashSet-clone order.
        Response::GetEphemerals(e) => assert_eq!(
            e.ephemerals,
            vec!["/p/s-0000000001".to_string(), "/e".to_string()]
        ),
        other => panic!("{other:?}"),
    }
    let r = c
        .call(Request::GetEphemerals(PathRequest { path: "/p".into() }))
        .await;
    match r.body {
        Response::GetEphemerals(e) => assert_eq!(e.ephemerals, vec!["/p/s-0000000001".to_string()]),
        other => panic!("{other:?}"),
    }

    // Container: reaped once it had a child and has none left; clients see owner 0.
    let cont = c
        .call(Request::CreateContainer(CreateRequest {
            path: "/c".into(),
            data: None,
            acl: Acl::open_unsafe(),
            flags: CreateMode::Container.to_flags(),
        }))
        .await;
    assert_eq!(cont.stat().ephemeral_owner, 0);
    c.create("/c/x", "", CreateMode::Persistent).await;
    c.exists("/c", true).await;
    c.delete("/c/x", -1).await;
    let ev = c.event(WAIT).await.expect("container deleted");
    assert_eq!(
        (ev.path.as_str(), ev.event_type),
        ("/c", zk_proto::EventType::NodeDeleted)
    );
    assert_eq!(c.exists("/c", false).await.err(), ErrorCode::NoNode);

    // TTL: removed once idle longer than its ttl.
    let ttl = c
        .call(Request::CreateTtl(CreateTtlRequest {
            path: "/t".into(),
            data: None,
            acl: Acl::open_unsafe(),
            flags: CreateMode::PersistentWithTtl.to_flags(),
            ttl: 100,
        }))
        .await;
    assert_eq!(ttl.err(), ErrorCode::Ok);
    assert_eq!(ttl.stat().ephemeral_owner, 0);
    c.exists("/t", true).await;
    let ev = c.event(WAIT).await.expect("ttl node deleted");
    assert_eq!(
        (ev.path.as_str(), ev.event_type),
        ("/t", zk_proto::EventType::NodeDeleted)
    );
    let bad_ttl = c
        .call(Request::CreateTtl(CreateTtlRequest {
            path: "/t2".into(),
            data: None,
            acl: Acl::open_unsafe(),
            flags: CreateMode::PersistentWithTtl.to_flags(),
            ttl: 0,
        }))
        .await;
    assert_eq!(bad_ttl.err(), ErrorCode::BadArguments);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_needs_extended_types() {
    let s = TestServer::start().await;
    let mut c = RawClient::connect(s.addr()).await;
    let r = c
        .call(Request::CreateTtl(CreateTtlRequest {
            path: "/t".into(),
            data: None,
            acl: Acl::open_unsafe(),
            flags: CreateMode::PersistentWithTtl.to_flags(),
            ttl: 1000,
        }))
        .await;
    assert_eq!(r.err(), ErrorCode::Unimplemented);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_rules() {
    let s = TestServer::start().await;
    let mut c = RawClient::connect(s.addr()).await;
    c.create("/d", "", CreateMode::Persistent).await;
    c.create("/d/k", "", CreateMode::Persistent).await;
    assert_eq!(c.delete("/d", -1).await.err(), ErrorCode::NotEmpty);
    assert_eq!(c.delete("/d/k", 5).await.err(), ErrorCode::BadVersion);
    assert_eq!(c.delete("/d/none", -1).await.err(), ErrorCode::NoNode);
    assert_eq!(
        c.delete("/zookeeper", -1).await.err(),
        ErrorCode::BadArguments
    );
    assert_eq!(c.delete("/", -1).await.err(), ErrorCode::BadArguments);
    assert_eq!(c.delete("/d/k", 0).await.err(), ErrorCode::Ok);
    // A failed write still consumes a zxid, as in Apache.
    let before = c.exists("/d", false).await.header.zxid;
    assert_eq!(c.delete("/d/k", -1).await.err(), ErrorCode::NoNode);
    let after = c.create("/d/z", "", CreateMode::Persistent).await;
    assert_eq!(after.stat().czxid, before + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_and_multi_read() {
    let s = TestServer::start().await;
    let mut c = RawClient::connect(s.addr()).await;
    let ok = c
        .call(Request::Multi(MultiRequest {
            ops: vec![
                MultiOp::Create(
                    OpCode::Create,
                    CreateRequest {
                        path: "/m".into(),
                        data: None,
                        acl: Acl::open_unsafe(),
                        flags: 0,
                    },
                ),
                MultiOp::Create(
                    OpCode::Create2,
                    CreateRequest {
                        path: "/m/a".into(),
                        data: None,
                        acl: Acl::open_unsafe(),
                        flags: 2,
                    },
                ),
                MultiOp::SetData(SetDataRequest {
                    path: "/m".into(),
                    data: Some("v".into()),
                    version: 0,
                }),
                MultiOp::Check(CheckVersionRequest {
                    path: "/m".into(),
                    version: 1,
                }),
            ],
        }))
        .await;
    assert_eq!(ok.err(), ErrorCode::Ok);
    let Response::Multi(m) = &ok.body else {
        panic!("{ok:?}")
    };
    assert_eq!(m.results[0], OpResult::Create("/m".into()));
    // Apache answers create2 ops inside a multi with the path only.
    assert_eq!(m.results[1], OpResult::Create("/m/a0000000000".into()));
    assert!(matches!(&m.results[2], OpResult::SetData(st) if st.version == 1));
    assert_eq!(m.results[3], OpResult::Check);

    let bad = c
        .call(Request::Multi(MultiRequest {
            ops: vec![
                MultiOp::Create(
                    OpCode::Create,
                    CreateRequest {
                        path: "/n".into(),
                        data: None,
                        acl: Acl::open_unsafe(),
                        flags: 0,
                    },
                ),
                MultiOp::Check(CheckVersionRequest {
                    path: "/m".into(),
                    version: 7,
                }),
                MultiOp::Delete(DeleteRequest {
                    path: "/m/a0000000000".into(),
                    version: -1,
                }),
            ],
        }))
        .await;
    // As in Apache, the header says Ok; the results carry the failure.
    assert_eq!(bad.err(), ErrorCode::Ok);
    let Response::Multi(m) = &bad.body else {
        panic!("{bad:?}")
    };
    assert_eq!(
        m.results,
        vec![
            OpResult::Error(ErrorCode::Ok),
            OpResult::Error(ErrorCode::BadVersion),
            OpResult::Error(ErrorCode::RuntimeInconsistency)
        ]
    );
    assert_eq!(c.exists("/n", false).await.err(), ErrorCode::NoNode);

    let rd = c
        .call(Request::MultiRead(MultiRequest {
            ops: vec![
                MultiOp::GetData(PathWatchRequest {
                    path: "/m".into(),
                    watch: false,
                }),
                MultiOp::GetChildren(PathWatchRequest {
                    path: "/m".into(),
                    watch: false,
                }),
                MultiOp::GetData(PathWatchRequest {
                    path: "/nope".into(),
                    watch: false,
                }),
            ],
        }))
        .await;
    let Response::Multi(m) = &rd.body else {
        panic!("{rd:?}")
    };
    assert!(matches!(&m.results[0], OpResult::GetData(Some(d), _) if &d[..] == b"v"));
    assert_eq!(
        m.results[1],
        OpResult::GetChildren(vec!["a0000000000".into()])
    );
    assert_eq!(m.results[2], OpResult::Error(ErrorCode::NoNode));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misc_opcodes() {
    let s = TestServer::start().await;
    let mut c = RawClient::connect(s.addr()).await;
    c.create("/x", "", CreateMode::Persistent).await;
    c.create("/x/y", "", CreateMode::Persistent).await;
    c.create("/x/y/z", "", CreateMode::Persistent).await;
    let n = c
        .call(Request::GetAllChildrenNumber(PathRequest {
            path: "/x".into(),
        }))
        .await;
    assert!(matches!(
        n.body,
        Response::GetAllChildrenNumber(GetAllChildrenNumberResponse { total_number: 2 })
    ));
    let n = c
        .call(Request::GetAllChildrenNumber(PathRequest {
            path: "/".into(),
        }))
        .await;
    assert!(matches!(
        n.body,
        Response::GetAllChildrenNumber(GetAllChildrenNumberResponse { total_number: 6 })
    ));
    let sync = c
        .call(Request::Sync(PathRequest { path: "/x".into() }))
        .await;
    assert!(matches!(&sync.body, Response::Sync(p) if p.path == "/x"));
    let rc = c
        .call(Request::Reconfig(ReconfigRequest {
            joining_servers: None,
            leaving_servers: Some("2".into()),
            new_members: None,
            cur_config_id: -1,
        }))
        .await;
    assert_eq!(rc.err(), ErrorCode::ReconfigDisabled);
    let who = c.call(Request::WhoAmI).await;
    match who.body {
        Response::WhoAmI(w) => {
            assert_eq!(w.client_info.len(), 1);
            assert_eq!(w.client_info[0].auth_scheme, "ip");
            assert_eq!(w.client_info[0].user, "127.0.0.1");
        }
        other => panic!("{other:?}"),
    }
    let ping = c.ping().await;
    assert_eq!((ping.header.xid, ping.err()), (-2, ErrorCode::Ok));
    assert_eq!(c.get("/nope", false).await.err(), ErrorCode::NoNode);
    assert_eq!(c.children("/nope", false).await.err(), ErrorCode::NoNode);
    let c2 = c.close().await;
    assert_eq!(c2.err(), ErrorCode::Ok);

    // A bare check (outside multi) makes Apache 3.8 drop the connection.
    let mut c = RawClient::connect(s.addr()).await;
    c.send(&Request::Check(CheckVersionRequest {
        path: "/x".into(),
        version: 3,
    }))
    .await;
    assert!(c.closed_within(WAIT).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acls_and_auth() {
    let super_digest = zk_server::state::acl::digest::generate_digest("super:boss");
    let s = TestServer::start_with(|c| c.super_digest = Some(super_digest.clone())).await;
    let mut bob = RawClient::connect(s.addr()).await;
    assert_eq!(bob.add_auth("digest", "bob:pw").await.err(), ErrorCode::Ok);
    // `auth` expands to the caller's digest identity.
    assert_eq!(
        bob.create_acl("/b", Acl::creator_all()).await.err(),
        ErrorCode::Ok
    );
    let acl = bob
        .call(Request::GetAcl(PathRequest { path: "/b".into() }))
        .await;
    let Response::GetAcl(a) = &acl.body else {
        panic!("{acl:?}")
    };
    assert_eq!(
        a.acl,
        vec![Acl::new(
            Perms::ALL,
            "digest",
            &zk_server::state::acl::digest::generate_digest("bob:pw")
        )]
    );

    let mut anon = RawClient::connect(s.addr()).await;
    assert_eq!(anon.get("/b", false).await.err(), ErrorCode::NoAuth);
    assert_eq!(anon.set("/b", "x", -1).await.err(), ErrorCode::NoAuth);
    assert_eq!(
        anon.create("/b/c", "", CreateMode::Persistent).await.err(),
        ErrorCode::NoAuth
    );
    assert_eq!(
        anon.call(Request::GetAcl(PathRequest { path: "/b".into() }))
            .await
            .err(),
        ErrorCode::NoAuth
    );
    // exists needs no permission.
    assert_eq!(anon.exists("/b", false).await.err(), ErrorCode::Ok);
    assert_eq!(
        anon.create_acl("/q", Acl::creator_all()).await.err(),
        ErrorCode::InvalidAcl
    );
    assert_eq!(
        anon.create_acl("/q", vec![Acl::new(Perms::ALL, "nope", "x")])
            .await
            .err(),
        ErrorCode::InvalidAcl
    );
    assert_eq!(
        anon.create_acl("/q", vec![]).await.err(),
        ErrorCode::InvalidAcl
    );
    assert_eq!(
        anon.create_acl("/ip", vec![Acl::new(Perms::ALL, "ip", "127.0.0.1")])
            .await
            .err(),
        ErrorCode::Ok
    );
    assert_eq!(anon.set("/ip", "ok", -1).await.err(), ErrorCode::Ok);

    // Read-only access to the ACL hides digest hashes.
    bob.call(Request::SetAcl(SetAclRequest {
        path: "/b".into(),
        acl: vec![
            Acl::new(Perms::ALL, "auth", ""),
            Acl::new(Perms::READ, "world", "anyone"),
        ],
        version: 0,
    }))
    .await;
    let seen = anon
        .call(Request::GetAcl(PathRequest { path: "/b".into() }))
        .await;
    let Response::GetAcl(a) = &seen.body else {
        panic!("{seen:?}")
    };
    assert_eq!(a.acl[0].id.id, "bob:x");
    assert_eq!(a.stat.aversion, 1);
    let bad_version = bob
        .call(Request::SetAcl(SetAclRequest {
            path: "/b".into(),
            acl: Acl::open_unsafe(),
            version: 0,
        }))
        .await;
    assert_eq!(bad_version.err(), ErrorCode::BadVersion);

    // Super user passes every check.
    let mut root = RawClient::connect(s.addr()).await;
    root.add_auth("digest", "super:boss").await;
    assert_eq!(root.set("/b", "mine", -1).await.err(), ErrorCode::Ok);
    let who = root.call(Request::WhoAmI).await;
    let Response::WhoAmI(w) = &who.body else {
        panic!()
    };
    assert!(w.client_info.iter().any(|i| i.auth_scheme == "super"));

    // Unknown scheme: AuthFailed and the connection is closed.
    let r = anon.add_auth("kerberos", "x").await;
    assert_eq!(r.err(), ErrorCode::AuthFailed);
    assert!(anon.closed_within(WAIT).await);
}
