//! Secured links between ensemble members, with Apache ZooKeeper 3.8 members alongside
//! `zk-server` ones: `sslQuorum=true` with `ssl.quorum.*` stores from one test CA (mutual
//! TLS on the election and quorum ports), rolling a plaintext ensemble to TLS with
//! `portUnification`, and quorum SASL DIGEST-MD5 (`quorum.auth.*`, JAAS `QuorumServer` /
//! `QuorumLearner`). Each positive case forms the ensemble, commits through an Apache
//! member and a zk-server member, and has a zk-server member lead and follow; each
//! negative case shows the member left out and the log line saying why.

use std::time::Duration;

use tests::mixed::{Kind, MixedEnsemble};
use tests::tls::{write, Ca, Pki};
use zk_client::{Acl, Client, CreateMode};

/// Time for an ensemble of JVMs and zk-server processes on a busy machine.
const T: Duration = Duration::from_secs(60);

/// The zoo.cfg lines of quorum TLS with the test CA's stores (the same lines for Apache,
/// which maps `ssl.quorum.*` to its `zookeeper.ssl.quorum.*` properties, and zk-server).
fn tls_lines(pki: &Pki, ssl_quorum: bool, unification: bool) -> String {
    format!(
        "sslQuorum={ssl_quorum}\nportUnification={unification}\n\
         ssl.quorum.keyStore.location={}\nssl.quorum.trustStore.location={}\n",
        pki.path("server.pem").display(),
        pki.path("ca.pem").display()
    )
}

async fn client(port: u16) -> Client {
    tokio::time::timeout(T, Client::connect(&format!("127.0.0.1:{port}")))
        .await
        .expect("connect in time")
        .expect("connect")
}

/// Creates `/sec/{tag}-0..n` and sets `/sec` to `tag` through the member on `port`.
async fn write_through(port: u16, tag: &str, n: usize) {
    let c = client(port).await;
    match c
        .create("/sec", b"", &Acl::open_unsafe(), CreateMode::Persistent)
        .await
    {
        Ok(_) | Err(zk_client::Error::NodeExists { .. }) => {}
        Err(e) => panic!("create /sec: {e}"),
    }
    for i in 0..n {
        c.create(
            &format!("/sec/{tag}-{i}"),
            b"v",
            &Acl::open_unsafe(),
            CreateMode::Persistent,
        )
        .await
        .expect("create");
    }
    c.set_data("/sec", tag.as_bytes(), None).await.expect("set");
    let _ = c.close().await;
}

/// Every member in `among` serves `children` children of /sec and /sec = `tag`.
async fn check(ens: &MixedEnsemble, among: &[usize], children: usize, tag: &str) {
    for &i in among {
        let c = client(ens.members[i].port).await;
        c.sync("/sec").await.expect("sync");
        let kids = c.get_children("/sec", false).await.expect("children");
        assert_eq!(kids.len(), children, "children on member {i}");
        let (data, _) = c.get_data("/sec", false).await.expect("get");
        assert_eq!(&data[..], tag.as_bytes(), "data on member {i}");
        let _ = c.close().await;
    }
}

/// The scenario every positive case runs on a 3-member ensemble whose member 2 (the
/// highest id) is zk-server: it leads the others, commits through member 0 and itself,
/// dies (the others elect and commit), comes back as a follower of that leader and
/// catches up, and finally the leader dies so that it leads again.
async fn lead_follow_and_commit(ens: &mut MixedEnsemble) {
    let all = [0, 1, 2];
    assert_eq!(ens.wait_roles(T), 2, "the zk-server member (id 3) leads");
    write_through(ens.members[0].port, "a", 20).await;
    write_through(ens.members[2].port, "b", 20).await;
    check(ens, &all, 40, "b").await;

    ens.members[2].kill();
    let leader = ens.wait_roles(T);
    assert!(leader < 2);
    write_through(ens.members[leader].port, "c", 20).await;
    ens.members[2].start();
    assert_eq!(ens.wait_roles(T), leader, "the leader stays");
    check(ens, &all, 60, "c").await;

    ens.members[leader].kill();
    assert_eq!(ens.wait_roles(T), 2, "zk-server leads again");
    write_through(ens.members[2].port, "d", 20).await;
    ens.members[leader].start();
    ens.wait_roles(T);
    check(ens, &all, 80, "d").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_apache_members_and_one_zk_server_over_tls() {
    let pki = Pki::new();
    let mut ens = MixedEnsemble::configure(&[Kind::Apache, Kind::Apache, Kind::ZkServer]);
    for m in &mut ens.members {
        m.extra_cfg = tls_lines(&pki, true, false);
    }
    ens.start_all();
    lead_follow_and_commit(&mut ens).await;
    // The Apache members took our TLS connections (election and learner links) and we
    // took theirs: nothing went over plaintext.
    for i in 0..2 {
        let log = ens.members[i].log();
        assert!(
            log.contains("Accepted TLS connection from"),
            "member {i} accepted TLS"
        );
        assert!(!log.contains("Accepted plaintext connection"));
    }
    assert!(ens.members[2].log().contains("member links: TLS"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_apache_member_and_two_zk_servers_over_tls() {
    let pki = Pki::new();
    // zk-server as ids 1 and 3, Apache as id 2: with 3 down, Apache (2) leads zk-server 1.
    let mut ens = MixedEnsemble::configure(&[Kind::ZkServer, Kind::Apache, Kind::ZkServer]);
    for m in &mut ens.members {
        m.extra_cfg = tls_lines(&pki, true, false);
    }
    ens.start_all();
    lead_follow_and_commit(&mut ens).await;
    let log = ens.members[1].log();
    assert!(log.contains("Accepted TLS connection from"));
    assert!(!log.contains("Accepted plaintext connection"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plaintext_ensemble_rolls_to_tls_with_port_unification() {
    let pki = Pki::new();
    let mut ens = MixedEnsemble::configure(&[Kind::Apache, Kind::ZkServer, Kind::ZkServer]);
    // Apache's procedure: portUnification=true everywhere (still plaintext)...
    for m in &mut ens.members {
        m.extra_cfg = tls_lines(&pki, false, true);
    }
    ens.start_all();
    ens.wait_roles(T);
    let all = [0, 1, 2];
    write_through(ens.members[0].port, "p", 10).await;
    check(&ens, &all, 10, "p").await;
    // ...then sslQuorum=true one member at a time (TLS and plaintext members mixed)...
    let mut n = 10;
    for (step, i) in [2usize, 0, 1].into_iter().enumerate() {
        ens.members[i].extra_cfg = tls_lines(&pki, true, true);
        ens.members[i].start();
        ens.wait_roles(T);
        let tag = format!("tls{step}");
        write_through(ens.members[(i + 1) % 3].port, &tag, 10).await;
        n += 10;
        check(&ens, &all, n, &tag).await;
    }
    // ...then portUnification=false one at a time: TLS only.
    for (step, i) in [0usize, 1, 2].into_iter().enumerate() {
        ens.members[i].extra_cfg = tls_lines(&pki, true, false);
        ens.members[i].start();
        ens.wait_roles(T);
        let tag = format!("only{step}");
        write_through(ens.members[i].port, &tag, 10).await;
        n += 10;
        check(&ens, &all, n, &tag).await;
    }
    // While rolling, our members took plaintext and TLS on the same ports.
    assert!(ens.members[1]
        .log()
        .contains("plaintext, TLS accepted (portUnification)"));
    // Now plaintext is refused on a zk-server member's election and quorum ports.
    let ports = election_and_quorum_ports(&ens, 2);
    for p in ports {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", p))
            .await
            .expect("connect");
        use tokio::io::AsyncWriteExt;
        let _ = s.write_all(&(-65536i64).to_be_bytes()).await;
    }
    assert!(
        ens.wait_logged(2, "refusing a plaintext connection from", T),
        "zk-server refuses plaintext once TLS-only"
    );
}

/// The election and quorum ports of member `i`, from its zoo.cfg.
fn election_and_quorum_ports(ens: &MixedEnsemble, i: usize) -> Vec<u16> {
    let cfg = std::fs::read_to_string(ens.members[i].dir.join("zoo.cfg")).expect("zoo.cfg");
    let line = cfg
        .lines()
        .find(|l| l.starts_with(&format!("server.{}=", i + 1)))
        .expect("server line");
    let main = line.split(['=', ';']).nth(1).expect("addresses");
    let parts: Vec<&str> = main.split(':').collect();
    vec![
        parts[1].parse().expect("quorum"),
        parts[2].parse().expect("election"),
    ]
}

/// Waits a few seconds and asserts member `i` never joined (no role from `srvr`).
fn assert_left_out(ens: &MixedEnsemble, i: usize) {
    for _ in 0..40 {
        assert_eq!(
            ens.members[i].mode(),
            None,
            "member {i} must not join the ensemble"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plaintext_member_cannot_join_a_tls_ensemble() {
    let pki = Pki::new();
    let mut ens = MixedEnsemble::configure(&[Kind::Apache, Kind::ZkServer, Kind::ZkServer]);
    ens.members[0].extra_cfg = tls_lines(&pki, true, false);
    ens.members[1].extra_cfg = tls_lines(&pki, true, false);
    // Member 2 has no quorum TLS at all.
    ens.members[0].start();
    ens.members[1].start();
    ens.members[2].start();
    ens.wait_roles_of(&[0, 1], T);
    write_through(ens.members[1].port, "x", 5).await;
    assert_left_out(&ens, 2);
    // The TLS members refuse it (Apache says why only at debug level; we say it).
    assert!(
        ens.wait_logged(1, "sslQuorum=true accepts only TLS between members", T),
        "zk-server names the reason"
    );
    // And it hears TLS from them where it expects plaintext.
    assert!(ens.wait_logged(2, "refusing a TLS connection from", T));
    check(&ens, &[0, 1], 5, "x").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_with_an_untrusted_certificate_is_refused() {
    let pki = Pki::new();
    let mut ens = MixedEnsemble::configure(&[Kind::Apache, Kind::ZkServer, Kind::ZkServer]);
    ens.members[0].extra_cfg = tls_lines(&pki, true, false);
    ens.members[1].extra_cfg = tls_lines(&pki, true, false);
    // Member 2's certificate comes from another CA; it trusts the real one.
    let rogue = Ca::new("rogue CA");
    let (cert, key) = rogue.leaf("zk-server", false);
    let dir = ens.root().to_path_buf();
    let ks = write(&dir, "rogue.pem", &format!("{key}{cert}"));
    ens.members[2].extra_cfg = format!(
        "sslQuorum=true\nssl.quorum.keyStore.location={}\nssl.quorum.trustStore.location={}\n",
        ks.display(),
        pki.path("ca.pem").display()
    );
    ens.start_all();
    ens.wait_roles_of(&[0, 1], T);
    write_through(ens.members[0].port, "y", 5).await;
    assert_left_out(&ens, 2);
    // zk-server member 1 refuses its certificate when it dials in, and will not dial it.
    assert!(
        ens.wait_logged(1, "invalid peer certificate: UnknownIssuer", T),
        "zk-server says the certificate is not trusted"
    );
    check(&ens, &[0, 1], 5, "y").await;
}

/// zoo.cfg lines of quorum SASL, required both ways.
const SASL_LINES: &str = "quorum.auth.enableSasl=true\nquorum.auth.learnerRequireSasl=true\n\
                          quorum.auth.serverRequireSasl=true\n";

/// Over TLS too: the login runs inside the encrypted link, as Apache's does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apache_and_zk_server_members_log_in_to_each_other_with_quorum_sasl() {
    let pki = Pki::new();
    let mut ens = MixedEnsemble::configure(&[Kind::Apache, Kind::Apache, Kind::ZkServer]);
    let jaas = tests::sasl::quorum_jaas(
        ens.root(),
        "quorum_jaas.conf",
        &[("zkpeer", "peer-secret")],
        ("zkpeer", "peer-secret"),
    );
    for m in &mut ens.members {
        m.extra_cfg = format!("{SASL_LINES}{}", tls_lines(&pki, true, false));
        m.props = vec![format!(
            "-Djava.security.auth.login.config={}",
            jaas.display()
        )];
    }
    ens.start_all();
    lead_follow_and_commit(&mut ens).await;
    // Apache checked our logins and we checked theirs.
    for i in 0..2 {
        assert!(
            ens.members[i]
                .log()
                .contains("Successfully completed the authentication using SASL"),
            "member {i} authenticated its peers"
        );
    }
    assert!(ens.members[0]
        .log()
        .contains("Accepted TLS connection from"));
    let ours = ens.members[2].log();
    assert!(ours.contains("member links: TLS, quorum SASL required"));
    assert!(
        ours.contains("logged in as \"zkpeer\""),
        "we checked logins"
    );
    assert!(ours.contains("quorum SASL: logged in to"), "we logged in");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_with_a_wrong_quorum_sasl_password_is_refused() {
    let mut ens = MixedEnsemble::configure(&[Kind::Apache, Kind::ZkServer, Kind::ZkServer]);
    let good = tests::sasl::quorum_jaas(
        ens.root(),
        "good.conf",
        &[("zkpeer", "peer-secret")],
        ("zkpeer", "peer-secret"),
    );
    let bad = tests::sasl::quorum_jaas(
        ens.root(),
        "bad.conf",
        &[("zkpeer", "peer-secret")],
        ("zkpeer", "guessed"),
    );
    for (i, m) in ens.members.iter_mut().enumerate() {
        m.extra_cfg = SASL_LINES.to_owned();
        let jaas = if i == 2 { &bad } else { &good };
        m.props = vec![format!(
            "-Djava.security.auth.login.config={}",
            jaas.display()
        )];
    }
    ens.start_all();
    ens.wait_roles_of(&[0, 1], T);
    write_through(ens.members[1].port, "z", 5).await;
    assert_left_out(&ens, 2);
    // The zk-server member it dials names it and the reason; it says it was refused.
    assert!(
        ens.wait_logged(
            1,
            "its quorum SASL login as \"zkpeer\" failed: wrong password",
            T
        ),
        "zk-server names the peer and the reason"
    );
    assert!(ens.wait_logged(1, "refusing server 3 (127.0.0.1:", T));
    assert!(ens.wait_logged(2, "refused our quorum SASL login as \"zkpeer\"", T));
    check(&ens, &[0, 1], 5, "z").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_whose_certificate_names_another_host_is_refused_unless_unchecked() {
    let pki = Pki::new();
    let mut ens = MixedEnsemble::configure(&[Kind::ZkServer, Kind::ZkServer, Kind::ZkServer]);
    // Member 2's certificate is trusted but made out to another host.
    let (cert, key) = pki
        .ca
        .leaf_for("zk-server", &["zk3.example.invalid"], false);
    let dir = ens.root().to_path_buf();
    let ks = write(&dir, "elsewhere.pem", &format!("{key}{cert}"));
    let member2 = |check: bool| {
        format!(
            "sslQuorum=true\nssl.quorum.keyStore.location={}\n\
             ssl.quorum.trustStore.location={}\nssl.quorum.hostnameVerification={check}\n",
            ks.display(),
            pki.path("ca.pem").display()
        )
    };
    ens.members[0].extra_cfg = tls_lines(&pki, true, false);
    ens.members[1].extra_cfg = tls_lines(&pki, true, false);
    ens.members[2].extra_cfg = member2(true);
    ens.start_all();
    ens.wait_roles_of(&[0, 1], T);
    assert_left_out(&ens, 2);
    // The members it dials check its address against its certificate, as Apache does.
    assert!(
        ens.wait_logged(
            1,
            "its certificate is not valid for 127.0.0.1 nor for localhost \
             (ssl.quorum.hostnameVerification is on)",
            T
        ),
        "the refusal names the address and the setting"
    );
    // With the check off everywhere, the certificate's chain is enough.
    for i in 0..2 {
        ens.members[i].extra_cfg = format!(
            "{}ssl.quorum.hostnameVerification=false\n",
            tls_lines(&pki, true, false)
        );
    }
    ens.members[2].extra_cfg = member2(false);
    ens.start_all();
    ens.wait_roles(T);
    write_through(ens.members[2].port, "h", 5).await;
    check(&ens, &[0, 1, 2], 5, "h").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_certificates_are_reloaded_when_their_files_change() {
    let pki = Pki::new();
    let mut ens = MixedEnsemble::configure(&[Kind::ZkServer, Kind::ZkServer, Kind::ZkServer]);
    let dir = ens.root().to_path_buf();
    // Member 0 starts with a certificate nobody trusts.
    let rogue = Ca::new("rogue CA");
    let (cert, key) = rogue.leaf("member-0", false);
    let store0 = write(&dir, "m0.pem", &format!("{key}{cert}"));
    for (i, m) in ens.members.iter_mut().enumerate() {
        let store = if i == 0 {
            store0.clone()
        } else {
            pki.path("server.pem")
        };
        m.extra_cfg = format!(
            "sslQuorum=true\nsslQuorumReloadCertFiles=true\n\
             ssl.quorum.keyStore.location={}\nssl.quorum.trustStore.location={}\n",
            store.display(),
            pki.path("ca.pem").display()
        );
    }
    ens.start_all();
    ens.wait_roles_of(&[1, 2], T);
    assert_left_out(&ens, 0);
    // Its store file is replaced by one the ensemble trusts (a rotation, no restart):
    // it says so, and joins.
    let (cert, key) = pki.ca.leaf("member-0", false);
    let fresh = write(&dir, "m0.pem.new", &format!("{key}{cert}"));
    std::fs::rename(&fresh, &store0).expect("rotate");
    assert!(
        ens.wait_logged(0, "changed, reloaded the quorum links' certificates", T),
        "the rotation is picked up"
    );
    ens.wait_roles(T);
    write_through(ens.members[0].port, "r", 5).await;
    check(&ens, &[0, 1, 2], 5, "r").await;
}

/// A realm for quorum Kerberos (its `KRB5_CONFIG` is this process's, so the zk-server
/// members inherit it; the JVMs get it as properties), one keytab holding the members'
/// principals, and the zoo.cfg lines Apache's guide gives.
struct QuorumRealm {
    kdc: tests::kerberos::Kdc,
    keytab: std::path::PathBuf,
}

/// The members' service principal, `_HOST` written as the members' host (127.0.0.1).
const QUORUM_SERVICE: &str = "zkquorum/127.0.0.1";
/// The learners' principal: its host part is a member's host, as Apache requires.
const LEARNER: &str = "learner/127.0.0.1";

/// zoo.cfg lines of quorum Kerberos: SASL required both ways, the service principal with
/// Apache's `_HOST` pattern, and Apache's connection pool size (read, sizes nothing here).
fn kerberos_lines() -> String {
    format!(
        "{SASL_LINES}quorum.auth.kerberos.servicePrincipal=zkquorum/_HOST\n\
         quorum.cnxn.threads.size=20\n"
    )
}

impl QuorumRealm {
    fn start() -> QuorumRealm {
        let kdc = tests::kerberos::Kdc::start_in_process().expect("KDC");
        let keytab = kdc
            .keytab("quorum.keytab", &[QUORUM_SERVICE, LEARNER])
            .expect("keytab");
        QuorumRealm { kdc, keytab }
    }

    /// A JAAS file `name`: the members' `QuorumServer` section and a `QuorumLearner`
    /// section logging in as `learner` with `keytab`.
    fn jaas(
        &self,
        dir: &std::path::Path,
        name: &str,
        learner: &str,
        keytab: &std::path::Path,
    ) -> std::path::PathBuf {
        use tests::kerberos::Kdc;
        let text = format!(
            "{}{}",
            Kdc::jaas_keytab_section("QuorumServer", QUORUM_SERVICE, &self.keytab),
            Kdc::jaas_keytab_section("QuorumLearner", learner, keytab)
        );
        write(dir, name, &text)
    }

    /// Sets member `i` up for quorum Kerberos with the JAAS file `jaas`.
    fn configure(&self, ens: &mut MixedEnsemble, i: usize, jaas: &std::path::Path) {
        let m = &mut ens.members[i];
        m.extra_cfg = kerberos_lines();
        m.props = vec![format!(
            "-Djava.security.auth.login.config={}",
            jaas.display()
        )];
        if m.kind == Kind::Apache {
            m.props.extend(self.kdc.java_props());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zk_server_members_log_in_to_each_other_with_quorum_kerberos() {
    let realm = QuorumRealm::start();
    let mut ens = MixedEnsemble::configure(&[Kind::ZkServer, Kind::ZkServer, Kind::ZkServer]);
    let jaas = realm.jaas(ens.root(), "jaas.conf", LEARNER, &realm.keytab);
    for i in 0..3 {
        realm.configure(&mut ens, i, &jaas);
    }
    ens.start_all();
    lead_follow_and_commit(&mut ens).await;
    for i in 0..3 {
        let log = ens.members[i].log();
        assert!(
            log.contains("quorum SASL: members log in to us with Kerberos as zkquorum/127.0.0.1@ZK.TEST; we log in with Kerberos as learner/127.0.0.1@ZK.TEST to zkquorum/_HOST"),
            "member {i} says how its links are secured"
        );
        assert!(
            log.contains("logged in as learner/127.0.0.1@ZK.TEST (Kerberos)"),
            "member {i} checked Kerberos logins"
        );
        assert!(
            log.contains("as learner/127.0.0.1@ZK.TEST (Kerberos, to zkquorum/127.0.0.1@ZK.TEST)"),
            "member {i} logged in with _HOST replaced"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apache_and_zk_server_members_log_in_to_each_other_with_quorum_kerberos() {
    let realm = QuorumRealm::start();
    let mut ens = MixedEnsemble::configure(&[Kind::Apache, Kind::Apache, Kind::ZkServer]);
    let jaas = realm.jaas(ens.root(), "jaas.conf", LEARNER, &realm.keytab);
    for i in 0..3 {
        realm.configure(&mut ens, i, &jaas);
    }
    ens.start_all();
    // zk-server leads the Apache members, follows an Apache leader, and leads again.
    lead_follow_and_commit(&mut ens).await;
    for i in 0..2 {
        let log = ens.members[i].log();
        assert!(
            log.contains("Successfully completed the authentication using SASL. learner addr"),
            "Apache member {i} checked its learners' Kerberos logins"
        );
        assert!(
            log.contains("Successfully completed the authentication using SASL. server addr"),
            "Apache member {i} logged in"
        );
        assert!(
            log.contains("will use GSSAPI as SASL mechanism"),
            "member {i}"
        );
    }
    let ours = ens.members[2].log();
    assert!(ours.contains("logged in as learner/127.0.0.1@ZK.TEST (Kerberos)"));
    assert!(ours.contains("(Kerberos, to zkquorum/127.0.0.1@ZK.TEST)"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_with_a_wrong_keytab_or_principal_is_refused() {
    let realm = QuorumRealm::start();
    let mut ens = MixedEnsemble::configure(&[Kind::Apache, Kind::ZkServer, Kind::ZkServer]);
    let good = realm.jaas(ens.root(), "good.conf", LEARNER, &realm.keytab);
    for i in 0..3 {
        realm.configure(&mut ens, i, &good);
    }
    // Member 2 first logs in with a keytab that lacks its principal's key, then with a
    // stale key (its principal was given a new one since): each time it stops at start,
    // naming the keytab and the cause, as Apache's login at start does.
    let other = realm
        .kdc
        .keytab("other.keytab", &["someone"])
        .expect("keytab");
    let no_key = realm.jaas(ens.root(), "nokey.conf", LEARNER, &other);
    let stale_keytab = realm
        .kdc
        .keytab("stale.keytab", &["learner2/127.0.0.1"])
        .expect("keytab");
    realm.kdc.rekey("learner2/127.0.0.1").expect("rekey");
    let stale = realm.jaas(
        ens.root(),
        "stale.conf",
        "learner2/127.0.0.1",
        &stale_keytab,
    );
    for (jaas, keytab, cause) in [
        (
            &no_key,
            "other.keytab",
            "does it hold a key of learner/127.0.0.1@ZK.TEST?",
        ),
        (&stale, "stale.keytab", "Decrypt integrity check failed"),
    ] {
        realm.configure(&mut ens, 2, jaas);
        ens.members[2].start();
        let deadline = std::time::Instant::now() + T;
        while !ens.members[2].has_exited() {
            assert!(
                std::time::Instant::now() < deadline,
                "{}",
                ens.members[2].run_log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let log = ens.members[2].run_log();
        assert!(
            log.contains("quorum.auth.learner.saslLoginContext=QuorumLearner: Kerberos login")
                && log.contains(keytab)
                && log.contains(cause)
                && log.contains("refusing to start"),
            "{log}"
        );
    }
    ens.members[0].start();
    ens.members[1].start();
    ens.wait_roles_of(&[0, 1], T);
    write_through(ens.members[1].port, "k", 5).await;

    // Then with a principal the KDC knows but whose host is no member's.
    let intruder_keytab = realm
        .kdc
        .keytab("intruder.keytab", &["learner/intruder.test"])
        .expect("keytab");
    let intruder = realm.jaas(
        ens.root(),
        "intruder.conf",
        "learner/intruder.test",
        &intruder_keytab,
    );
    realm.configure(&mut ens, 2, &intruder);
    ens.members[2].start();
    assert_left_out(&ens, 2);
    assert!(
        ens.wait_logged(
            1,
            "its Kerberos principal learner/intruder.test@ZK.TEST is not authorized to join the ensemble: its host \"intruder.test\" is not the host of any server.N line (127.0.0.1)",
            T
        ),
        "zk-server names the principal and the reason"
    );
    assert!(ens.wait_logged(1, "refusing server 3 (127.0.0.1:", T));
    assert!(ens.wait_logged(
        2,
        "refused our quorum SASL login as learner/intruder.test@ZK.TEST (Kerberos, to zkquorum/127.0.0.1@ZK.TEST)",
        T
    ));
    // The others served throughout.
    write_through(ens.members[0].port, "l", 5).await;
    check(&ens, &[0, 1], 10, "l").await;
}
