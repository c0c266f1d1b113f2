//! What a failed connection says: the host and the cause, not a bare timeout or a
//! misleading parse error.

use std::time::Duration;

use zk_client::{Client, Error};

async fn connect_err(hosts: &str) -> Error {
    Client::builder(hosts)
        .session_timeout(Duration::from_secs(2))
        .connect()
        .await
        .expect_err("nothing to connect to")
}

#[tokio::test]
async fn closed_port_names_the_host_and_refusal() {
    // A port we bound and released: nothing listens there any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = connect_err(&format!("127.0.0.1:{port}")).await;
    let msg = err.to_string();
    match &err {
        Error::Connect { host, cause } => {
            assert_eq!(host, &format!("127.0.0.1:{port}"));
            assert!(cause.to_lowercase().contains("connection refused"), "{msg}");
        }
        other => panic!("expected Connect, got {other:?}"),
    }
    assert!(msg.contains(&format!("127.0.0.1:{port}")), "{msg}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn unresolvable_host_says_it_failed_to_resolve() {
    // `.invalid` never resolves (RFC 2606).
    let err = connect_err("no-such-host.invalid:2181").await;
    let msg = err.to_string();
    assert!(
        matches!(&err, Error::Connect { host, .. } if host == "no-such-host.invalid:2181"),
        "{err:?}"
    );
    assert!(msg.contains("failed to resolve"), "{msg}");
    assert!(msg.contains("no-such-host.invalid"), "{msg}");
}

#[tokio::test]
async fn malformed_connect_strings_say_which_host_and_why() {
    let err = connect_err("http://127.0.0.1:2181").await;
    let msg = err.to_string();
    assert!(matches!(err, Error::InvalidConfig(_)), "{err:?}");
    assert!(msg.contains("http://127.0.0.1:2181"), "{msg}");
    assert!(msg.contains("URL scheme"), "{msg}");
    assert!(!msg.contains("chroot"), "{msg}");

    let err = connect_err("127.0.0.1:99999").await;
    let msg = err.to_string();
    assert!(msg.contains("host \"127.0.0.1:99999\""), "{msg}");
    assert!(msg.contains("port \"99999\""), "{msg}");
    assert!(msg.contains("1..=65535"), "{msg}");

    let err = connect_err("127.0.0.1:2181,:2182").await;
    let msg = err.to_string();
    assert!(
        msg.contains("host \":2182\"") && msg.contains("empty host"),
        "{msg}"
    );
}
