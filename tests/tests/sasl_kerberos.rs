//! Kerberos v5 (SASL GSSAPI) logins against a real MIT KDC (`tests::kerberos`, a realm per
//! test): zk-client against Apache ZooKeeper 3.8, Apache's Java client and kazoo against
//! zk-server, zk-client against zk-server; `sasl:` ACLs on Kerberos ids as Apache has them;
//! wrong keytabs and unknown principals refused with the cause.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tests::apache::ApacheServer;
use tests::kerberos::{Kdc, REALM, SERVER_PRINCIPAL};
use tests::sasl::{assert_sasl_identity, SASL_PROVIDER};
use zk_client::{Acl, Client, CreateMode, Error, GssapiConfig, Perms};

/// Upper bound for anything that must not hang.
const WITHIN: Duration = Duration::from_secs(30);

/// The server's JAAS file: `Server` with the keytab of `zookeeper/localhost`.
fn server_jaas(kdc: &Kdc) -> PathBuf {
    let keytab = kdc
        .keytab("zookeeper.keytab", &[SERVER_PRINCIPAL])
        .expect("server keytab");
    let path = kdc.dir().join("server_jaas.conf");
    std::fs::write(
        &path,
        Kdc::jaas_keytab_section("Server", SERVER_PRINCIPAL, &keytab),
    )
    .expect("write server jaas");
    path
}

/// Apache 3.8 standalone taking Kerberos logins.
fn apache_with_kerberos(kdc: &Kdc, extra: &[&str]) -> ApacheServer {
    let jaas = server_jaas(kdc);
    let mut props = kdc.java_props();
    props.push(format!(
        "-Djava.security.auth.login.config={}",
        jaas.display()
    ));
    props.push(format!("-Dzookeeper.authProvider.1={SASL_PROVIDER}"));
    props.extend(extra.iter().map(|s| s.to_string()));
    let props: Vec<&str> = props.iter().map(String::as_str).collect();
    ApacheServer::start_with(&props, &[]).expect("start apache with kerberos")
}

fn keytab_login(kdc: &Kdc, principal: &str) -> GssapiConfig {
    let file = format!("{}.keytab", principal.replace('/', "_"));
    let kt = kdc.keytab(&file, &[principal]).expect("client keytab");
    GssapiConfig::keytab(&format!("{principal}@{REALM}"), kt)
}

async fn connect(hosts: &str, login: GssapiConfig) -> zk_client::Result<Client> {
    let b = Client::builder(hosts)
        .sasl_gssapi(login)
        .session_timeout(Duration::from_secs(4));
    tokio::time::timeout(WITHIN, b.connect())
        .await
        .expect("connect does not hang")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zk_client_logs_in_to_apache_with_a_keytab() {
    let kdc = Kdc::start_in_process().expect("kdc");
    let zk = apache_with_kerberos(&kdc, &[]);
    let c = connect(&zk.connect_string(), keytab_login(&kdc, "alice"))
        .await
        .unwrap_or_else(|e| panic!("login: {e}\n{}", zk.log_text()));
    assert_sasl_identity(&c, &format!("alice@{REALM}")).await;
    let acl = vec![Acl::new(Perms::ALL, "sasl", &format!("alice@{REALM}"))];
    c.create("/k", b"x", &acl, CreateMode::Persistent)
        .await
        .expect("create");
    assert_eq!(&c.get_data("/k", false).await.expect("read").0[..], b"x");
    c.close().await.expect("close");
}
