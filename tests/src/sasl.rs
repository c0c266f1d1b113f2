//! SASL DIGEST-MD5 as Apache configures it: the JAAS files a server (`Server` section,
//! `user_<name>="<password>"`) and a Java client (`Client` section) read.

use std::path::{Path, PathBuf};

/// Apache's SASL authentication provider class (`zookeeper.authProvider.N`).
pub const SASL_PROVIDER: &str = "org.apache.zookeeper.server.auth.SASLAuthenticationProvider";

/// A server JAAS file with users alice/secret, bob/builder and root/toor.
pub fn server_jaas(dir: &Path) -> PathBuf {
    let path = dir.join("server_jaas.conf");
    std::fs::write(
        &path,
        "Server {\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n  \
         user_alice=\"secret\"\n  user_bob=\"builder\"\n  user_root=\"toor\";\n};\n",
    )
    .expect("write jaas");
    path
}

/// A Java client's JAAS file.
pub fn client_jaas(dir: &Path, user: &str, password: &str) -> PathBuf {
    let path = dir.join(format!("client_{user}.conf"));
    std::fs::write(
        &path,
        format!(
            "Client {{\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n  \
             username=\"{user}\"\n  password=\"{password}\";\n}};\n"
        ),
    )
    .expect("write client jaas");
    path
}

/// Asserts that `c`'s `whoami` lists the SASL identity `user`.
pub async fn assert_sasl_identity(c: &zk_client::Client, user: &str) {
    let ids = c.who_am_i().await.expect("whoami");
    assert!(
        ids.iter()
            .any(|i| i.auth_scheme == "sasl" && i.user == user),
        "whoami shows sasl:{user}: {ids:?}"
    );
}

/// The scenario both servers must pass: alice logs in through a proxy to `server`, makes
/// a node only `sasl:alice` may read, the proxy drops the connection, and the client
/// comes back on the same session, logged in again, reading the node.
pub async fn login_is_replayed_after_the_connection_drops(server: std::net::SocketAddr) {
    use std::time::Duration;
    use zk_client::{Acl, Client, CreateMode, Error, Perms};
    const WITHIN: Duration = Duration::from_secs(20);
    let proxy = crate::proxy::Proxy::start(server).await.expect("proxy");
    let builder = Client::builder(&proxy.addr().to_string())
        .sasl_digest("alice", "secret")
        .session_timeout(Duration::from_secs(4));
    let c = tokio::time::timeout(WITHIN, builder.connect())
        .await
        .expect("connect does not hang")
        .expect("SASL login through the proxy");
    let acl = vec![Acl::new(Perms::ALL, "sasl", "alice")];
    c.create("/replay", b"x", &acl, CreateMode::Persistent)
        .await
        .expect("create");
    let session = c.session_id();
    let accepted = proxy.accepted();
    proxy.drop_connections();
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        match c.get_data("/replay", false).await {
            Ok((d, _)) if proxy.accepted() > accepted => {
                assert_eq!(&d[..], b"x");
                break;
            }
            Ok(_) | Err(Error::ConnectionLoss) | Err(Error::Timeout) => {}
            Err(e) => panic!("after reconnect: {e}"),
        }
        assert!(tokio::time::Instant::now() < deadline, "no reconnect");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(c.session_id(), session, "same session");
    assert_sasl_identity(&c, "alice").await;
    c.close().await.expect("close");
}

/// A member's JAAS file for quorum SASL (Apache's `SaslQuorumAuthServer` /
/// `SaslQuorumAuthLearner`): a `QuorumServer` section admitting `users`, and a
/// `QuorumLearner` section logging in as `login` (user, password).
pub fn quorum_jaas(dir: &Path, name: &str, users: &[(&str, &str)], login: (&str, &str)) -> PathBuf {
    let path = dir.join(name);
    let users: String = users
        .iter()
        .map(|(u, p)| format!("\n  user_{u}=\"{p}\""))
        .collect();
    std::fs::write(
        &path,
        format!(
            "QuorumServer {{\n  org.apache.zookeeper.server.auth.DigestLoginModule required{users};\n}};\n\
             QuorumLearner {{\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n  \
             username=\"{}\"\n  password=\"{}\";\n}};\n",
            login.0, login.1
        ),
    )
    .expect("write quorum jaas");
    path
}
