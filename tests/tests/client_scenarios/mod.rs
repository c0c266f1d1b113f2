//! Client scenarios run against every server kind (Apache standalone and ensemble, zk-server
//! standalone, in-process ensemble and process ensemble): each `*_suite` takes the
//! `127.0.0.1:port` of one server (for an ensemble, one member: the suites read their own
//! and other sessions' writes without `sync`, so every session of a suite is on that
//! member) and asserts Apache's behaviour; [`failover`] takes every member.
#![allow(dead_code, unused_imports)]

pub mod failover;
pub mod observability;
pub mod stampede;
mod watches;
pub use watches::watch_suite;

use std::time::Duration;

use bytes::Bytes;
use zk_client::{
    Acl, AddWatchMode, Client, CreateMode, Error, ErrorCode, OpResult, Perms, SessionState,
    WatcherType,
};

pub async fn connect(hosts: &str) -> Client {
    Client::builder(hosts)
        .session_timeout(Duration::from_secs(4))
        .connect()
        .await
        .expect("connect")
}

fn open() -> Vec<Acl> {
    Acl::open_unsafe()
}

/// Every operation and its errors, chroot, auth, multi, misuse, session resume.
pub async fn ops_suite(hosts: &str) {
    let c = connect(hosts).await;
    assert_eq!(c.state(), SessionState::Connected);
    assert_ne!(c.session_id(), 0);
    assert_eq!(c.session_password().len(), 16);
    assert!(c.negotiated_timeout() <= Duration::from_secs(4));

    crud(&c).await;
    create_modes(&c).await;
    children_and_counts(&c).await;
    acls_and_auth(&c, hosts).await;
    multi(&c).await;
    misuse(&c).await;
    config_and_watch_checks(&c).await;
    chroot(&c, hosts).await;
    resume_session(&c, hosts).await;
    host_names_and_dead_hosts(hosts).await;
    auth_failure_is_terminal(hosts).await;

    c.close().await.expect("close");
    assert_eq!(c.state(), SessionState::Closed);
    assert_eq!(c.exists("/", false).await, Err(Error::Closed));
}

pub async fn crud(c: &Client) {
    let p = c
        .create("/crud", b"v0", &open(), CreateMode::Persistent)
        .await
        .unwrap();
    assert_eq!(p, "/crud");
    assert_eq!(
        c.create("/crud", b"", &open(), CreateMode::Persistent)
            .await,
        Err(Error::NodeExists {
            path: "/crud".into()
        })
    );
    assert_eq!(
        c.create("/nope/child", b"", &open(), CreateMode::Persistent)
            .await,
        Err(Error::NoNode {
            path: "/nope/child".into()
        })
    );
    let (data, stat) = c.get_data("/crud", false).await.unwrap();
    assert_eq!(&data[..], b"v0");
    assert_eq!(stat.version, 0);
    assert_eq!(stat.data_length, 2);
    let st = c.set_data("/crud", b"v1", Some(0)).await.unwrap();
    assert_eq!(st.version, 1);
    assert_eq!(
        c.set_data("/crud", b"v2", Some(0)).await,
        Err(Error::BadVersion {
            path: "/crud".into()
        })
    );
    let st = c.set_data("/crud", b"v2", None).await.unwrap();
    assert_eq!(st.version, 2);
    assert_eq!(c.exists("/crud", false).await.unwrap().unwrap().version, 2);
    assert_eq!(c.exists("/missing", false).await.unwrap(), None);
    assert_eq!(
        c.get_data("/missing", false).await,
        Err(Error::NoNode {
            path: "/missing".into()
        })
    );
    assert_eq!(
        c.set_data("/missing", b"", None).await,
        Err(Error::NoNode {
            path: "/missing".into()
        })
    );
    c.create("/crud/kid", b"", &open(), CreateMode::Persistent)
        .await
        .unwrap();
    assert_eq!(
        c.delete("/crud", None).await,
        Err(Error::NotEmpty {
            path: "/crud".into()
        })
    );
    assert_eq!(
        c.delete("/crud/kid", Some(5)).await,
        Err(Error::BadVersion {
            path: "/crud/kid".into()
        })
    );
    c.delete("/crud/kid", Some(0)).await.unwrap();
    c.delete("/crud", None).await.unwrap();
    assert_eq!(
        c.delete("/crud", None).await,
        Err(Error::NoNode {
            path: "/crud".into()
        })
    );
    c.sync("/").await.unwrap();
    // Large (but legal) payload round trips.
    let big = vec![7u8; 1_000_000];
    c.create("/big", &big, &open(), CreateMode::Persistent)
        .await
        .unwrap();
    assert_eq!(c.get_data("/big", false).await.unwrap().0.len(), big.len());
    c.delete("/big", None).await.unwrap();
}

pub async fn create_modes(c: &Client) {
    c.create("/modes", b"", &open(), CreateMode::Persistent)
        .await
        .unwrap();
    let (p, stat) = c
        .create_with_stat("/modes/e", b"x", &open(), CreateMode::Ephemeral)
        .await
        .unwrap();
    assert_eq!(p, "/modes/e");
    assert_eq!(stat.ephemeral_owner, c.session_id());
    assert_eq!(
        c.create("/modes/e/child", b"", &open(), CreateMode::Persistent)
            .await,
        Err(Error::NoChildrenForEphemerals {
            path: "/modes/e/child".into()
        })
    );
    let s1 = c
        .create("/modes/s-", b"", &open(), CreateMode::PersistentSequential)
        .await
        .unwrap();
    let s2 = c
        .create("/modes/s-", b"", &open(), CreateMode::EphemeralSequential)
        .await
        .unwrap();
    assert!(s1.starts_with("/modes/s-") && s1.len() == "/modes/s-".len() + 10);
    assert!(s2 > s1, "{s2} > {s1}");
    let (p, stat) = c
        .create_with_stat("/modes/c", b"", &open(), CreateMode::Container)
        .await
        .unwrap();
    assert_eq!(p, "/modes/c");
    // Apache reports 0 as the owner of containers and TTL nodes (an internal marker).
    assert_eq!(stat.ephemeral_owner, 0);
    assert_eq!(
        c.create("/modes/c2", b"", &open(), CreateMode::Container)
            .await
            .unwrap(),
        "/modes/c2"
    );
    let (p, stat) = c
        .create_ttl(
            "/modes/ttl",
            b"t",
            &open(),
            CreateMode::PersistentWithTtl,
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert_eq!(p, "/modes/ttl");
    assert_eq!(stat.data_length, 1);
    let (p, _) = c
        .create_ttl(
            "/modes/ttls-",
            b"t",
            &open(),
            CreateMode::PersistentSequentialWithTtl,
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert!(p.starts_with("/modes/ttls-"));
    let mut eph = c.get_ephemerals("/modes").await.unwrap();
    eph.sort();
    assert_eq!(eph, vec!["/modes/e".to_owned(), s2.clone()]);
}

pub async fn children_and_counts(c: &Client) {
    c.create("/kids", b"", &open(), CreateMode::Persistent)
        .await
        .unwrap();
    for k in ["a", "b", "c"] {
        c.create(&format!("/kids/{k}"), b"", &open(), CreateMode::Persistent)
            .await
            .unwrap();
    }
    c.create("/kids/a/x", b"", &open(), CreateMode::Persistent)
        .await
        .unwrap();
    let mut kids = c.get_children("/kids", false).await.unwrap();
    kids.sort();
    assert_eq!(kids, ["a", "b", "c"]);
    let (kids, stat) = c.get_children_with_stat("/kids", false).await.unwrap();
    assert_eq!(kids.len(), 3);
    assert_eq!(stat.num_children, 3);
    assert_eq!(c.get_all_children_number("/kids").await.unwrap(), 4);
    assert_eq!(
        c.get_children("/none", false).await,
        Err(Error::NoNode {
            path: "/none".into()
        })
    );
}

pub async fn acls_and_auth(c: &Client, hosts: &str) {
    c.add_auth("digest", b"alice:secret").await.unwrap();
    let who = c.who_am_i().await.unwrap();
    assert!(who
        .iter()
        .any(|i| i.auth_scheme == "digest" && i.user == "alice"));
    let (p, _) = c
        .create_with_stat("/secret", b"s", &Acl::creator_all(), CreateMode::Persistent)
        .await
        .unwrap();
    let (acl, stat) = c.get_acl(&p).await.unwrap();
    assert_eq!(acl.len(), 1);
    assert_eq!(acl[0].id.scheme, "digest");
    assert_eq!(stat.aversion, 0);
    // Another session without the credentials is refused.
    let other = connect(hosts).await;
    assert_eq!(
        other.get_data("/secret", false).await,
        Err(Error::NoAuth {
            path: "/secret".into()
        })
    );
    // With the right credentials in the builder, allowed.
    let alice = Client::builder(hosts)
        .auth("digest", "alice:secret")
        .connect()
        .await
        .unwrap();
    assert_eq!(&alice.get_data("/secret", false).await.unwrap().0[..], b"s");
    alice.close().await.unwrap();
    // set_acl with version check.
    let mut read_all = Acl::creator_all();
    read_all.push(Acl::new(Perms::READ, "world", "anyone"));
    assert_eq!(
        c.set_acl("/secret", &read_all, Some(3)).await,
        Err(Error::BadVersion {
            path: "/secret".into()
        })
    );
    let st = c.set_acl("/secret", &read_all, Some(0)).await.unwrap();
    assert_eq!(st.aversion, 1);
    assert_eq!(&other.get_data("/secret", false).await.unwrap().0[..], b"s");
    assert_eq!(
        other.set_data("/secret", b"x", None).await,
        Err(Error::NoAuth {
            path: "/secret".into()
        })
    );
    // auth scheme ACL with no credentials is invalid.
    assert_eq!(
        other
            .create("/inv", b"", &Acl::creator_all(), CreateMode::Persistent)
            .await,
        Err(Error::InvalidAcl)
    );
    other.close().await.unwrap();
}

pub async fn multi(c: &Client) {
    c.create("/m", b"0", &open(), CreateMode::Persistent)
        .await
        .unwrap();
    let res = c
        .multi()
        .check("/m", Some(0))
        .create("/m/a", b"a", &open(), CreateMode::Persistent)
        .set_data("/m", b"1", Some(0))
        .create("/m/b", b"b", &open(), CreateMode::Ephemeral)
        .delete("/m/b", None)
        .commit()
        .await
        .unwrap();
    assert_eq!(res.len(), 5);
    assert!(matches!(res[0], OpResult::Check));
    assert!(
        matches!(&res[1], OpResult::Create { path, .. } if path == "/m/a"),
        "{res:?}"
    );
    assert!(matches!(&res[2], OpResult::SetData(s) if s.version == 1));
    assert!(matches!(res[4], OpResult::Delete));
    // An aborted transaction changes nothing and names the failing op.
    let err = c
        .multi()
        .create("/m/c", b"", &open(), CreateMode::Persistent)
        .check("/m", Some(0))
        .set_data("/m", b"2", None)
        .commit()
        .await
        .unwrap_err();
    match err {
        Error::Multi {
            index,
            source,
            results,
        } => {
            assert_eq!(index, 1);
            assert_eq!(*source, Error::BadVersion { path: "/m".into() });
            assert_eq!(results.len(), 3);
            assert_eq!(results[0], OpResult::Error(Error::Server(ErrorCode::Ok)));
            assert_eq!(
                results[2],
                OpResult::Error(Error::Server(ErrorCode::RuntimeInconsistency))
            );
        }
        other => panic!("expected Multi, got {other:?}"),
    }
    assert_eq!(c.exists("/m/c", false).await.unwrap(), None);
    let reads = c
        .multi_read()
        .get_data("/m")
        .get_children("/m")
        .get_data("/m/none")
        .execute()
        .await
        .unwrap();
    assert!(matches!(&reads[0], OpResult::GetData(d, s) if &d[..] == b"1" && s.version == 1));
    assert_eq!(reads[1], OpResult::GetChildren(vec!["a".into()]));
    assert_eq!(
        reads[2],
        OpResult::Error(Error::NoNode {
            path: "/m/none".into()
        })
    );
}

pub async fn misuse(c: &Client) {
    for p in ["", "rel", "/a/", "/a//b", "/a/../b"] {
        assert!(
            matches!(
                c.create(p, b"", &open(), CreateMode::Persistent).await,
                Err(Error::InvalidPath { .. })
            ),
            "{p:?}"
        );
        assert!(matches!(
            c.get_data(p, false).await,
            Err(Error::InvalidPath { .. })
        ));
    }
    let huge = vec![0u8; 2 * 1024 * 1024];
    assert!(matches!(
        c.create("/huge", &huge, &open(), CreateMode::Persistent)
            .await,
        Err(Error::DataTooLarge { .. })
    ));
    assert!(matches!(
        c.create("/ttl", b"", &open(), CreateMode::PersistentWithTtl)
            .await,
        Err(Error::BadArgument(_))
    ));
    assert_eq!(
        c.create("/noacl", b"", &[], CreateMode::Persistent).await,
        Err(Error::InvalidAcl)
    );
    // The session is still healthy after all that.
    assert_eq!(c.state(), SessionState::Connected);
    assert!(c.exists("/", false).await.unwrap().is_some());
}

pub async fn config_and_watch_checks(c: &Client) {
    let (_cfg, stat) = c.get_config(false).await.unwrap();
    assert!(stat.czxid >= 0);
    // Standalone without reconfigEnabled refuses reconfig.
    let r = c
        .reconfig(Some("server.9=127.0.0.1:1:2;3"), None, None, None)
        .await;
    assert!(r.is_err(), "{r:?}");
    c.create("/cw", b"", &open(), CreateMode::Persistent)
        .await
        .unwrap();
    assert_eq!(
        c.check_watches("/cw", WatcherType::Data).await,
        Err(Error::NoWatcher)
    );
    c.get_data("/cw", true).await.unwrap();
    c.check_watches("/cw", WatcherType::Data).await.unwrap();
    c.remove_watches("/cw", WatcherType::Data).await.unwrap();
    assert_eq!(
        c.check_watches("/cw", WatcherType::Data).await,
        Err(Error::NoWatcher)
    );
    let w = c.add_watch("/cw", AddWatchMode::Persistent).await.unwrap();
    assert_eq!(w.path(), "/cw");
    // Apache 3.8 answers MarshallingError for the Persistent watcher types of
    // checkWatches/removeWatches; `Any` covers persistent watches there.
    c.check_watches("/cw", WatcherType::Any).await.unwrap();
    c.remove_watches("/cw", WatcherType::Any).await.unwrap();
    let mut w = w;
    let ev = futures::StreamExt::next(&mut w).await.unwrap();
    assert_eq!(ev.event_type, zk_client::EventType::PersistentWatchRemoved);
    assert!(futures::StreamExt::next(&mut w).await.is_none());
}

pub async fn chroot(c: &Client, hosts: &str) {
    c.create("/app", b"", &open(), CreateMode::Persistent)
        .await
        .unwrap();
    let r = connect(&format!("{hosts}/app")).await;
    assert_eq!(r.chroot(), "/app");
    assert_eq!(
        r.create("/x", b"1", &open(), CreateMode::Persistent)
            .await
            .unwrap(),
        "/x"
    );
    let seq = r
        .create("/q-", b"", &open(), CreateMode::EphemeralSequential)
        .await
        .unwrap();
    assert!(seq.starts_with("/q-"), "{seq}");
    assert_eq!(&c.get_data("/app/x", false).await.unwrap().0[..], b"1");
    assert_eq!(r.get_children("/", false).await.unwrap().len(), 2);
    assert_eq!(r.get_ephemerals("/").await.unwrap(), vec![seq.clone()]);
    let res = r
        .multi()
        .create("/y", b"", &open(), CreateMode::Persistent)
        .commit()
        .await
        .unwrap();
    assert!(matches!(&res[0], OpResult::Create { path, .. } if path == "/y"));
    let (_, _, w) = r.get_data_watched("/x").await.unwrap();
    c.set_data("/app/x", b"2", None).await.unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(5), w)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ev.path, "/x");
    // The config node is never chrooted.
    assert!(r.get_config(false).await.is_ok());
    r.close().await.unwrap();
}

pub async fn resume_session(c: &Client, hosts: &str) {
    // The first client reaches the server through a proxy that then cuts it off for good,
    // so only the second one uses the session afterwards.
    let proxy = tests::proxy::Proxy::start(hosts.parse().unwrap())
        .await
        .unwrap();
    let first = connect(&proxy.addr().to_string()).await;
    first
        .create("/resume-e", b"", &open(), CreateMode::Ephemeral)
        .await
        .unwrap();
    proxy.set_refuse(true);
    proxy.drop_connections();
    let second = Client::builder(hosts)
        .session(first.session_id(), first.session_password())
        .connect()
        .await
        .unwrap();
    assert_eq!(second.session_id(), first.session_id());
    let st = c.exists("/resume-e", false).await.unwrap().unwrap();
    assert_eq!(st.ephemeral_owner, second.session_id());
    // A wrong password is an expired session.
    let bad = Client::builder(hosts)
        .session(first.session_id(), Bytes::from_static(&[1u8; 16]))
        .connect()
        .await;
    assert_eq!(bad.unwrap_err(), Error::SessionExpired);
    second.close().await.unwrap();
    assert_eq!(second.state(), SessionState::Closed);
    drop(first);
    assert_eq!(c.exists("/resume-e", false).await.unwrap(), None);
}

/// Host names are resolved at each attempt, and dead or unresolvable entries of the host
/// list are skipped.
pub async fn host_names_and_dead_hosts(hosts: &str) {
    let port = hosts.rsplit(':').next().unwrap();
    let dead = tests::ports::free_port().unwrap();
    let list = format!("no-such-host.invalid:1,127.0.0.1:{dead},localhost:{port}");
    let c = Client::builder(&list)
        .session_timeout(Duration::from_secs(4))
        .connection_timeout(Duration::from_millis(500))
        .connect()
        .await
        .unwrap();
    assert_eq!(c.connected_host().unwrap().host, "localhost");
    assert!(c.exists("/", false).await.unwrap().is_some());
    c.close().await.unwrap();
}

/// Credentials the server rejects (an unknown scheme) end the session with AuthFailed.
pub async fn auth_failure_is_terminal(hosts: &str) {
    let c = connect(hosts).await;
    let mut events = c.events();
    assert_eq!(
        c.add_auth("no-such-scheme", b"x").await,
        Err(Error::AuthFailed)
    );
    assert_eq!(c.state(), SessionState::AuthFailed);
    assert_eq!(c.exists("/", false).await, Err(Error::AuthFailed));
    let mut last = None;
    while let Ok(Some(ev)) = tokio::time::timeout(Duration::from_secs(2), events.recv()).await {
        last = Some(ev.state);
    }
    assert_eq!(last, Some(SessionState::AuthFailed));
    // Configured in the builder, the failure surfaces from connect().
    let r = Client::builder(hosts)
        .auth("no-such-scheme", "x")
        .connect()
        .await;
    assert_eq!(r.unwrap_err(), Error::AuthFailed);
}

/// Synced reads across members: a writer on one member, a reader on another; after each
/// acknowledged write the reader's synced read sees it (a plain read on a lagging member
/// need not). `get_children_synced` and `exists_synced` likewise.
pub async fn synced_reads(writer_host: &str, reader_host: &str) {
    let w = connect(writer_host).await;
    let r = connect(reader_host).await;
    assert_ne!(w.connected_host(), r.connected_host(), "two members");
    let _ = w
        .create("/synced", b"", &open(), CreateMode::Persistent)
        .await;
    for i in 0..100u32 {
        let v = i.to_string();
        w.set_data("/synced", v.as_bytes(), None).await.unwrap();
        let (data, _) = r.get_data_synced("/synced").await.unwrap();
        assert_eq!(&data[..], v.as_bytes(), "write {i} not seen after sync");
        let child = format!("/synced/c{i}");
        w.create(&child, b"", &open(), CreateMode::Persistent)
            .await
            .unwrap();
        assert!(r.exists_synced(&child).await.unwrap().is_some());
        assert_eq!(
            r.get_children_synced("/synced").await.unwrap().len(),
            i as usize + 1
        );
    }
    assert!(matches!(
        r.get_data_synced("/synced/none").await,
        Err(Error::NoNode { path }) if path == "/synced/none"
    ));
}
