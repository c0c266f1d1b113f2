//! Errors a user sees from `?`: they name the node (and keep the ZooKeeper code), and a
//! `TestServer` grants the session timeout a client asks for.

use std::time::Duration;

use zk_client::{Acl, Client, CreateMode, Error, OpResult};
use zk_proto::ErrorCode;
use zk_server::testkit::TestServer;

#[tokio::test]
async fn request_errors_name_the_path_and_keep_the_code() {
    let server = TestServer::start().await.expect("server");
    let c = Client::connect(&server.connect_string())
        .await
        .expect("connect");

    let err = c.get_data("/does/not/exist", false).await.unwrap_err();
    assert_eq!(err.to_string(), "no node: /does/not/exist");
    assert_eq!(err.code(), Some(ErrorCode::NoNode));
    assert_eq!(err.path(), Some("/does/not/exist"));
    assert!(matches!(err, Error::NoNode { .. }));
    // What `?` in a main returning Box<dyn Error> prints.
    let boxed: Box<dyn std::error::Error> = Box::new(err);
    assert!(boxed.to_string().contains("/does/not/exist"));

    let acl = Acl::open_unsafe();
    c.create("/e", b"", &acl, CreateMode::Persistent)
        .await
        .unwrap();
    let err = c
        .create("/e", b"", &acl, CreateMode::Persistent)
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "node exists: /e");
    let err = c.set_data("/e", b"x", Some(7)).await.unwrap_err();
    assert_eq!(err.to_string(), "bad version: /e");
    assert_eq!(err.code(), Some(ErrorCode::BadVersion));
    c.create("/e/kid", b"", &acl, CreateMode::Persistent)
        .await
        .unwrap();
    let err = c.delete("/e", None).await.unwrap_err();
    assert_eq!(err.to_string(), "node not empty: /e");
    let err = c.get_children("/nope", false).await.unwrap_err();
    assert_eq!(err.to_string(), "no node: /nope");

    // A chrooted client sees its own paths, not the server's.
    let chrooted = Client::connect(&format!("{}/e", server.connect_string()))
        .await
        .expect("chrooted");
    let err = chrooted.get_data("/missing", false).await.unwrap_err();
    assert_eq!(err.to_string(), "no node: /missing");

    // A failed multi names the op and its path.
    let err = c
        .multi()
        .check("/e", Some(0))
        .set_data("/nope", b"", None)
        .commit()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::NoNode));
    assert_eq!(err.path(), Some("/nope"));
    assert!(err.to_string().contains("no node: /nope"), "{err}");
    let reads = c.multi_read().get_data("/gone").execute().await.unwrap();
    match &reads[0] {
        OpResult::Error(e) => assert_eq!(e.to_string(), "no node: /gone"),
        other => panic!("expected an error, got {other:?}"),
    }

    chrooted.close().await.unwrap();
    c.close().await.unwrap();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn test_server_grants_a_ten_second_session() {
    let server = TestServer::start().await.expect("server");
    let c = Client::builder(&server.connect_string())
        .session_timeout(Duration::from_secs(10))
        .connect()
        .await
        .expect("connect");
    assert_eq!(c.negotiated_timeout(), Duration::from_secs(10));
    c.close().await.unwrap();
    let addr = server.addr();
    assert!(addr.ip().is_loopback());
    server.stop().await.unwrap();
    // Stopped means the port no longer answers.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}
