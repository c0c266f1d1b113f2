//! SASL DIGEST-MD5 on zk-server's client port, configured as Apache's: a JAAS `Server`
//! section (`user_<name>="<password>"`), `authProvider.1=...SASLAuthenticationProvider`,
//! `zookeeper.superUser`, `sessionRequireClientSASLAuth` / `enforce.auth.*`. Real clients log
//! in (Java's CLI with a JAAS `Client` section, zk-client, kazoo with pure-sasl); raw frames
//! check the wire answers and bad input; Apache runs the same exchanges side by side where
//! the exact answer matters.

mod server_support;

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use server_support::*;
use tests::apache::ApacheServer;
use tests::sasl::assert_sasl_identity;
use tests::sasl::{client_jaas, server_jaas, SASL_PROVIDER};
use tokio::process::Command;
use zk_client::{Acl, Client, CreateMode, Error, Perms, SessionState};
use zk_proto::ops::SaslToken;
use zk_proto::{ConnectRequest, ErrorCode, Request, Response};

const WITHIN: Duration = Duration::from_secs(20);
/// zk-server with SASL; `props` are further `zookeeper.*` properties as zoo.cfg keys give
/// them (e.g. `superUser`).
async fn sasl_server(props: &[(&str, &str)]) -> (TestServer, tempfile::TempDir) {
    let jdir = tempfile::tempdir().expect("tempdir");
    let jaas = server_jaas(jdir.path());
    let props: Vec<(String, String)> = props
        .iter()
        .map(|(k, v)| (format!("zookeeper.{k}"), v.to_string()))
        .chain([("zookeeper.authProvider.1".into(), SASL_PROVIDER.into())])
        .collect();
    let srv = TestServer::start_with(move |cfg| {
        cfg.jaas_file = Some(jaas);
        for (k, v) in &props {
            assert!(cfg.apply_property(k, v, None).expect("property"), "{k}");
        }
        cfg.load_security().expect("SASL settings");
    })
    .await;
    (srv, jdir)
}

/// Apache with the same users and properties.
fn apache_sasl(dir: &Path, props: &[(&str, &str)]) -> ApacheServer {
    let jaas = server_jaas(dir);
    let props: Vec<String> = props
        .iter()
        .map(|(k, v)| format!("-Dzookeeper.{k}={v}"))
        .chain([
            format!("-Djava.security.auth.login.config={}", jaas.display()),
            format!("-Dzookeeper.authProvider.1={SASL_PROVIDER}"),
        ])
        .collect();
    let props: Vec<&str> = props.iter().map(String::as_str).collect();
    ApacheServer::start_with(&props, &[]).expect("start apache with SASL")
}

async fn connect(b: zk_client::ClientBuilder) -> Result<Client, Error> {
    tokio::time::timeout(WITHIN, b.session_timeout(Duration::from_secs(4)).connect())
        .await
        .expect("connect does not hang")
}

use tests::apache::run_feeding as run;

/// Java's CLI with a JAAS `Client` section, fed `script`.
async fn java_cli(port: u16, jaas: &Path, script: &str) -> String {
    let mut cmd = Command::new("java");
    cmd.arg(format!(
        "-Djava.security.auth.login.config={}",
        jaas.display()
    ))
    .args([
        "-cp",
        &tests::apache::classpath(),
        "org.apache.zookeeper.ZooKeeperMain",
        "-server",
        &format!("127.0.0.1:{port}"),
    ]);
    run(cmd, script).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn java_cli_logs_in_from_a_jaas_client_section_like_against_apache() {
    let (srv, dir) = sasl_server(&[]).await;
    let apache = apache_sasl(dir.path(), &[]);
    let jaas = client_jaas(dir.path(), "alice", "secret");
    let script = "whoami\ncreate /x data sasl:alice:cdrwa\nget /x\ngetAcl /x\nquit\n";
    for (who, port) in [("zk-server", srv.port()), ("apache", apache.port())] {
        let out = java_cli(port, &jaas, script).await;
        for want in [
            "sasl: alice",
            "Created /x",
            "\ndata\n",
            "'sasl,'alice\n: cdrwa",
        ] {
            assert!(out.contains(want), "{who}: no {want:?} in\n{out}");
        }
        // An anonymous client is refused by the ACL.
        let anon = connect(Client::builder(&format!("127.0.0.1:{port}")))
            .await
            .expect("anonymous");
        assert_eq!(
            anon.get_data("/x", false).await.map(|_| ()),
            Err(Error::NoAuth { path: "/x".into() }),
            "{who}"
        );
        anon.close().await.expect("close");
    }
    // Bob's Java login works; the ACL refuses him.
    let bob = client_jaas(dir.path(), "bob", "builder");
    let out = java_cli(srv.port(), &bob, "whoami\nget /x\nquit\n").await;
    assert!(
        out.contains("sasl: bob") && out.contains("Insufficient permission : /x"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zk_client_logs_in_and_sasl_acls_hold() {
    let (srv, _dir) = sasl_server(&[]).await;
    let host = srv.addr().to_string();
    let alice = connect(Client::builder(&host).sasl_digest("alice", "secret"))
        .await
        .expect("SASL login");
    assert_eq!(alice.state(), SessionState::Connected);
    assert_sasl_identity(&alice, "alice").await;
    let acl = vec![Acl::new(Perms::ALL, "sasl", "alice")];
    alice
        .create("/alice", b"hers", &acl, CreateMode::Persistent)
        .await
        .expect("create with sasl ACL");
    // `auth` expands to the sasl identity.
    alice
        .create("/mine", b"", &Acl::creator_all(), CreateMode::Persistent)
        .await
        .expect("create with auth ACL");
    assert_eq!(alice.get_acl("/mine").await.expect("acl").0, acl);
    assert_eq!(
        &alice.get_data("/alice", false).await.expect("read").0[..],
        b"hers"
    );
    let anonymous = connect(Client::builder(&host)).await.expect("anonymous");
    assert_eq!(
        anonymous.get_data("/alice", false).await.map(|_| ()),
        Err(Error::NoAuth {
            path: "/alice".into()
        })
    );
    // A sasl ACL id needs the provider, which this server has: an invalid one is refused.
    assert_eq!(
        anonymous
            .create(
                "/bad",
                b"",
                &[Acl::new(Perms::ALL, "sasl", "a@b@c")],
                CreateMode::Persistent
            )
            .await
            .map(|_| ()),
        Err(Error::InvalidAcl)
    );
    let bob = connect(Client::builder(&host).sasl_digest("bob", "builder"))
        .await
        .expect("bob");
    assert_eq!(
        bob.set_data("/alice", b"mine", None).await.map(|_| ()),
        Err(Error::NoAuth {
            path: "/alice".into()
        })
    );
    for c in [alice, anonymous, bob] {
        c.close().await.expect("close");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_and_unknown_user_are_auth_failed() {
    let (srv, _dir) = sasl_server(&[]).await;
    let host = srv.addr().to_string();
    for (user, password) in [("alice", "wrong"), ("nobody", "x")] {
        match connect(Client::builder(&host).sasl_digest(user, password)).await {
            Err(Error::Auth { reason, .. }) => {
                assert!(reason.contains("AUTHFAILED"), "{reason}")
            }
            other => panic!("{user}: expected Error::Auth, got {other:?}"),
        }
    }
}

/// Apache 3.8 keeps the user name of a DIGEST-MD5 login in one callback handler shared by
/// every connection, so two logins at once can check one user's response against the
/// other's password and refuse it (AUTHFAILED, "Mismatched response"; seen in the ACL
/// matrix test). zk-server keeps each exchange's state on its connection: many logins of
/// different users at once all succeed, each with its own identity.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_logins_of_different_users_each_get_their_own_identity() {
    let (srv, _dir) = sasl_server(&[]).await;
    let host = srv.addr().to_string();
    let users = [("alice", "secret"), ("bob", "builder"), ("root", "toor")];
    let logins = (0..60).map(|i| {
        let (user, password) = users[i % users.len()];
        let b = Client::builder(&host).sasl_digest(user, password);
        async move {
            let c = connect(b)
                .await
                .unwrap_or_else(|e| panic!("login {i} as {user}: {e}"));
            assert_sasl_identity(&c, user).await;
            c
        }
    });
    for c in futures::future::join_all(logins).await {
        c.close().await.expect("close");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_login_is_replayed_after_the_connection_drops() {
    let (srv, _dir) = sasl_server(&[]).await;
    tests::sasl::login_is_replayed_after_the_connection_drops(srv.addr()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn super_user_passes_every_acl() {
    let (srv, _dir) = sasl_server(&[("superUser", "root")]).await;
    let host = srv.addr().to_string();
    let alice = connect(Client::builder(&host).sasl_digest("alice", "secret"))
        .await
        .expect("alice");
    let acl = vec![Acl::new(Perms::ALL, "sasl", "alice")];
    alice
        .create("/private", b"p", &acl, CreateMode::Persistent)
        .await
        .expect("create");
    let root = connect(Client::builder(&host).sasl_digest("root", "toor"))
        .await
        .expect("root");
    assert_eq!(
        &root.get_data("/private", false).await.expect("read").0[..],
        b"p"
    );
    root.set_data("/private", b"q", None).await.expect("write");
    root.delete("/private", None).await.expect("delete");
    let bob = connect(Client::builder(&host).sasl_digest("bob", "builder"))
        .await
        .expect("bob");
    alice
        .create("/private", b"p", &acl, CreateMode::Persistent)
        .await
        .expect("create again");
    assert_eq!(
        bob.get_data("/private", false).await.map(|_| ()),
        Err(Error::NoAuth {
            path: "/private".into()
        })
    );
    for c in [alice, root, bob] {
        c.close().await.expect("close");
    }
}

/// A raw session's SASL request.
fn sasl_req(token: &[u8]) -> Request {
    Request::Sasl(SaslToken {
        token: Some(Bytes::copy_from_slice(token)),
    })
}

/// The raw answer to an anonymous request under enforcement, and to a login afterwards.
async fn enforced_answers(addr: std::net::SocketAddr) -> (ErrorCode, bool, ErrorCode) {
    let mut c = RawClient::connect(addr).await;
    let r = c.exists("/", false).await;
    // Well within the 4 s session timeout, after which any connection closes.
    let closed = c.closed_within(Duration::from_secs(2)).await;
    let mut c = RawClient::connect(addr).await;
    let r2 = c.call(sasl_req(b"")).await;
    (r.err(), closed, r2.err())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enforced_sasl_refuses_anonymous_clients_like_apache() {
    let (srv, dir) = sasl_server(&[("sessionRequireClientSASLAuth", "true")]).await;
    let apache = apache_sasl(dir.path(), &[("sessionRequireClientSASLAuth", "true")]);
    let ours = enforced_answers(srv.addr()).await;
    let addr = apache.connect_string().parse().expect("address");
    let theirs = enforced_answers(addr).await;
    assert_eq!(
        ours,
        (ErrorCode::SessionClosedRequireSaslAuth, true, ErrorCode::Ok)
    );
    assert_eq!(ours, theirs, "zk-server vs Apache");
    // An authenticated client is served.
    let host = srv.addr().to_string();
    let alice = connect(Client::builder(&host).sasl_digest("alice", "secret"))
        .await
        .expect("alice");
    alice
        .create("/ok", b"", &Acl::open_unsafe(), CreateMode::Persistent)
        .await
        .expect("served");
    alice.close().await.expect("close");
    // The enforce.auth.* spelling does the same; digest logins count when listed.
    let (srv, _dir) = sasl_server(&[
        ("enforce.auth.enabled", "true"),
        ("enforce.auth.schemes", "sasl,digest"),
    ])
    .await;
    let mut c = RawClient::connect(srv.addr()).await;
    assert_eq!(c.add_auth("digest", "u:p").await.err(), ErrorCode::Ok);
    assert_eq!(c.exists("/", false).await.err(), ErrorCode::Ok);
    let r = RawClient::connect(srv.addr()).await.ping().await;
    assert_eq!(r.err(), ErrorCode::SessionClosedRequireSaslAuth);
}

/// Sends `first` (after the empty opening token when `challenged`) and returns the reply and
/// whether the server closed the connection.
async fn bad_token(
    addr: std::net::SocketAddr,
    challenged: bool,
    token: &[u8],
) -> (ErrorCode, Response, bool) {
    let mut c = RawClient::connect(addr).await;
    if challenged {
        let r = c.call(sasl_req(b"")).await;
        assert_eq!(r.err(), ErrorCode::Ok);
    }
    let r = c.call(sasl_req(token)).await;
    // Well within the 4 s session timeout, after which any connection closes.
    (
        r.header.err,
        r.body,
        c.closed_within(Duration::from_secs(2)).await,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sasl_input_fails_the_login_and_closes_like_apache() {
    let (srv, dir) = sasl_server(&[]).await;
    let apache = apache_sasl(dir.path(), &[]);
    let apache_addr: std::net::SocketAddr = apache.connect_string().parse().expect("address");
    let failed = (
        ErrorCode::AuthFailed,
        Response::Sasl(SaslToken { token: None }),
        true,
    );
    let cases: Vec<(&str, bool, Vec<u8>)> = vec![
        ("garbage", true, b"\xff\x00garbage".to_vec()),
        (
            "truncated",
            true,
            b"username=\"alice\",realm=\"zk-sa".to_vec(),
        ),
        (
            "no response",
            true,
            b"username=\"alice\",nonce=\"x\"".to_vec(),
        ),
        ("over 4096 bytes", true, vec![b'a'; 5000]),
        ("just under jute.maxbuffer", true, vec![b'a'; 1_000_000]),
    ];
    for (name, challenged, token) in cases {
        let ours = bad_token(srv.addr(), challenged, &token).await;
        assert_eq!(ours, failed, "zk-server: {name}");
        let theirs = bad_token(apache_addr, challenged, &token).await;
        assert_eq!(theirs, failed, "apache: {name}");
    }
    // An initial response is ignored (Java 17's DigestMD5Server): the challenge comes back.
    for addr in [srv.addr(), apache_addr] {
        let mut c = RawClient::connect(addr).await;
        let r = c.call(sasl_req(b"username=\"alice\"")).await;
        let Response::Sasl(SaslToken { token: Some(t) }) = &r.body else {
            panic!("{addr}: no challenge: {r:?}")
        };
        let t = String::from_utf8_lossy(t).into_owned();
        assert!(
            t.starts_with("realm=\"zk-sasl-md5\",nonce=\"")
                && t.ends_with("\",charset=utf-8,algorithm=md5-sess"),
            "{addr}: {t}"
        );
    }
    // The server still serves.
    let alice = connect(Client::builder(&srv.addr().to_string()).sasl_digest("alice", "secret"))
        .await
        .expect("login after bad input");
    alice.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_gone_mid_exchange_is_freed_and_its_session_expires() {
    let (srv, _dir) = sasl_server(&[]).await;
    let addr = srv.addr();
    let (mut c, resp) = RawClient::handshake(
        addr,
        ConnectRequest {
            timeout: 800,
            passwd: vec![0u8; 16].into(),
            read_only: Some(false),
            ..Default::default()
        },
    )
    .await
    .expect("connect");
    assert!(resp.timeout > 0);
    let r = c.call(sasl_req(b"")).await;
    let Response::Sasl(SaslToken { token: Some(t) }) = &r.body else {
        panic!("no challenge: {r:?}")
    };
    assert!(String::from_utf8_lossy(t).contains("realm=\"zk-sasl-md5\""));
    let (session, passwd) = (c.session_id, c.passwd.clone());
    drop(c);
    // The session expires; reattaching then fails.
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (_c, resp) = RawClient::handshake(
            addr,
            ConnectRequest {
                timeout: 800,
                session_id: session,
                passwd: passwd.clone(),
                read_only: Some(false),
                ..Default::default()
            },
        )
        .await
        .expect("reconnect");
        if resp.timeout == 0 {
            break;
        }
        drop(_c);
        assert!(
            tokio::time::Instant::now() < deadline,
            "session never expired"
        );
        // Reattaching touched it: wait a full timeout without.
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    // The expired reconnect's connection goes as the server sees it close: poll for it.
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let out = tests::apache::four_letter(srv.port(), "cons");
        if out.lines().filter(|l| l.contains("/127.0.0.1")).count() == 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only the 4lw connection should be left: {out}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kazoo_logs_in_with_pure_sasl() {
    let (srv, _dir) = sasl_server(&[]).await;
    const SCRIPT: &str = r#"
import sys
from kazoo.client import KazooClient
from kazoo.exceptions import AuthFailedError, NoAuthError
from kazoo.security import make_acl
host = "127.0.0.1:%s" % sys.argv[1]
def client(user, password):
    return KazooClient(hosts=host, timeout=5, connection_retry={"max_tries": 1},
        sasl_options={"mechanism": "DIGEST-MD5", "username": user, "password": password})
z = client("alice", "secret")
z.start(timeout=10)
z.create("/k", b"kz", acl=[make_acl("sasl", "alice", all=True)])
print("read", z.get("/k")[0].decode())
print("acl", z.get_acls("/k")[0][0].id.scheme, z.get_acls("/k")[0][0].id.id)
z.stop()
anon = KazooClient(hosts=host, timeout=5)
anon.start(timeout=10)
try:
    anon.get("/k")
except NoAuthError:
    print("anonymous NoAuth")
anon.stop()
bad = client("alice", "wrong")
try:
    bad.start(timeout=5)
    bad.get("/k")
    print("bad password accepted")
except Exception as e:
    print("bad password refused", type(e).__name__)
finally:
    bad.stop()
"#;
    let mut cmd = Command::new("python3");
    cmd.args(["-c", SCRIPT, &srv.port().to_string()]);
    let out = run(cmd, "").await;
    for want in [
        "read kz",
        "acl sasl alice",
        "anonymous NoAuth",
        "bad password refused",
    ] {
        assert!(out.contains(want), "no {want:?} in\n{out}");
    }
}

/// Ensemble members (the `zk-server` binary, configured with `-D` properties as Apache's
/// JVM is): a follower logs a client in, forwards its sasl-ACL write with the sasl identity
/// to the leader, and every member enforces the ACL on reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ensemble_members_log_in_and_check_sasl_acls() {
    use tests::zk_processes::{Options, ProcessEnsemble};
    let dir = tempfile::tempdir().expect("tempdir");
    let jaas = server_jaas(dir.path());
    let mut o = Options::members(3);
    o.props = vec![
        format!("-Djava.security.auth.login.config={}", jaas.display()),
        format!("-Dzookeeper.authProvider.1={SASL_PROVIDER}"),
        "-Dzookeeper.superUser=root".into(),
    ];
    let ens = ProcessEnsemble::start(o).await.expect("ensemble");
    let leader = ens.wait_for_leader(WITHIN).await.expect("a leader");
    let follower = (0..3).find(|i| *i != leader).expect("a follower");
    let other = (0..3)
        .find(|i| *i != leader && *i != follower)
        .expect("another");
    let at = |i: usize| ens.client_addr(i).to_string();
    let alice = connect(Client::builder(&at(follower)).sasl_digest("alice", "secret"))
        .await
        .expect("login on a follower");
    assert_sasl_identity(&alice, "alice").await;
    let acl = vec![Acl::new(Perms::ALL, "sasl", "alice")];
    alice
        .create("/e", b"ens", &acl, CreateMode::Persistent)
        .await
        .expect("forwarded create with a sasl ACL");
    alice
        .create("/e/auth", b"", &Acl::creator_all(), CreateMode::Persistent)
        .await
        .expect("auth ACL expanded by the leader from the forwarded identity");
    let alice2 = connect(Client::builder(&at(other)).sasl_digest("alice", "secret"))
        .await
        .expect("login on another member");
    alice2.sync("/e").await.expect("sync");
    assert_eq!(
        &alice2.get_data("/e", false).await.expect("read").0[..],
        b"ens"
    );
    assert_eq!(alice2.get_acl("/e/auth").await.expect("acl").0, acl);
    let root = connect(Client::builder(&at(leader)).sasl_digest("root", "toor"))
        .await
        .expect("root on the leader");
    assert_eq!(
        &root.get_data("/e", false).await.expect("super reads").0[..],
        b"ens"
    );
    let anon = connect(Client::builder(&at(leader)))
        .await
        .expect("anonymous");
    assert_eq!(
        anon.get_data("/e", false).await.map(|_| ()),
        Err(Error::NoAuth { path: "/e".into() })
    );
    assert!(matches!(
        connect(Client::builder(&at(other)).sasl_digest("bob", "wrong")).await,
        Err(Error::Auth { .. })
    ));
    for c in [alice, alice2, root, anon] {
        c.close().await.expect("close");
    }
}
