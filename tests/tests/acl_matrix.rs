//! The ACL matrix of issue 11, side by side: for each scheme's identity (world, digest, ip,
//! sasl, x509, super) and each ACL on a node (world and digest with each single permission,
//! ip, sasl, x509, `auth` expanded for each kind of creator), every operation that needs a
//! permission is run against Apache 3.8 and zk-server started from the same settings, and
//! the two matrices of answers must be equal cell for cell.
//!
//! Every connection comes from 127.0.0.1, so every identity also holds `ip:127.0.0.1`;
//! the `anyone` identity is the bare ip-matching client.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::future::join_all;
use tests::apache::ApacheServer;
use tests::sasl::{server_jaas, SASL_PROVIDER};
use tests::tls::Pki;
use zk_client::{Acl, AddWatchMode, Client, CreateMode, Error, Perms};
use zk_server::config::ServerConfig;
use zk_server::state::acl::digest::generate_digest;
use zk_server::storage::store::MemoryStore;
use zk_server::Server;

const WITHIN: Duration = Duration::from_secs(20);
const X509_PROVIDER: &str = "org.apache.zookeeper.server.auth.X509AuthenticationProvider";

/// How a matrix identity logs in.
#[derive(Clone, Copy)]
enum Login {
    Anonymous,
    Digest(&'static str),
    Sasl(&'static str, &'static str),
    X509(&'static str),
}

const IDENTITIES: &[(&str, Login)] = &[
    ("anyone", Login::Anonymous),
    ("digest:user", Login::Digest("user:pw")),
    ("digest:other", Login::Digest("other:pw")),
    ("sasl:alice", Login::Sasl("alice", "secret")),
    ("sasl:bob", Login::Sasl("bob", "builder")),
    ("x509:alice", Login::X509("alice")),
    ("x509:bob", Login::X509("bob")),
    ("super:digest", Login::Digest("super:boss")),
    ("super:sasl", Login::Sasl("root", "toor")),
    ("super:x509", Login::X509("root")),
];

/// The identity that sets the nodes up: a super user passes every ACL.
const ADMIN: usize = 7;

/// The ACL of a matrix node: fixed, `auth` as created by one of the identities, or one
/// only its validation at create is about (the node gets no op cells).
enum NodeAcl {
    Fixed(Vec<Acl>),
    AuthBy(usize),
    CreateOnly(Vec<Acl>),
}

fn nodes() -> Vec<(String, NodeAcl)> {
    let perms = [
        ("r", Perms::READ),
        ("w", Perms::WRITE),
        ("c", Perms::CREATE),
        ("d", Perms::DELETE),
        ("a", Perms::ADMIN),
    ];
    let user = generate_digest("user:pw");
    let mut v = Vec::new();
    for (name, p) in perms.iter().chain([("all", Perms::ALL)].iter()) {
        v.push((
            format!("world:anyone:{name}"),
            NodeAcl::Fixed(vec![Acl::new(*p, "world", "anyone")]),
        ));
    }
    for (name, p) in perms.iter().chain([("all", Perms::ALL)].iter()) {
        v.push((
            format!("digest:user:{name}"),
            NodeAcl::Fixed(vec![Acl::new(*p, "digest", &user)]),
        ));
    }
    for (label, scheme, id, p) in [
        ("ip:127.0.0.1:all", "ip", "127.0.0.1", Perms::ALL),
        ("ip:127.0.0.0/8:r", "ip", "127.0.0.0/8", Perms::READ),
        ("ip:10.0.0.0/8:all", "ip", "10.0.0.0/8", Perms::ALL),
        ("sasl:alice:all", "sasl", "alice", Perms::ALL),
        ("sasl:alice:r", "sasl", "alice", Perms::READ),
        ("x509:alice:all", "x509", "CN=alice,O=zk-rs", Perms::ALL),
        ("x509:alice:r", "x509", "CN=alice,O=zk-rs", Perms::READ),
    ] {
        v.push((
            label.to_owned(),
            NodeAcl::Fixed(vec![Acl::new(p, scheme, id)]),
        ));
    }
    // A union: each entry grants its own permission to its own identity.
    v.push((
        "mixed".to_owned(),
        NodeAcl::Fixed(vec![
            Acl::new(Perms::READ, "sasl", "alice"),
            Acl::new(Perms::WRITE, "x509", "CN=alice,O=zk-rs"),
            Acl::new(Perms::CREATE, "digest", &user),
            Acl::new(Perms::DELETE | Perms::ADMIN, "ip", "127.0.0.1"),
        ]),
    ));
    // ACLs a server must validate at create: the answer is the `create node` cell.
    let one = |scheme: &str, id: &str| vec![Acl::new(Perms::ALL, scheme, id)];
    let mut validation = vec![
        ("no entries", vec![]),
        ("world:somebody", one("world", "somebody")),
        (
            "world:anyone:none",
            vec![Acl::new(Perms::NONE, "world", "anyone")],
        ),
        (
            "world:anyone:bits",
            vec![Acl::new(Perms(0x7fff_ffff), "world", "anyone")],
        ),
        ("ip:127.0.0.1/33", one("ip", "127.0.0.1/33")),
        ("ip:not-an-ip", one("ip", "not-an-ip")),
        ("digest:no-hash", one("digest", "user")),
        ("sasl:empty", one("sasl", "")),
        ("unknown scheme", one("kerberos", "x")),
        ("super", one("super", "")),
    ];
    // x509 ids are whatever Java's X500Principal parses.
    for dn in [
        "",
        "alice",
        "CN=",
        "CN=a,,O=b",
        "CN=a,",
        ",CN=a",
        "FOO=bar",
        "cn=alice; o=zk",
        "CN=a+O=b",
        "CN=a+",
        "2.5.4.3=alice",
        "OID.2.5.4.3=alice",
        "1=x",
        "CN=a\\,b",
        "CN=a\\",
        "CN=\"a,b\"",
        "CN=\"a",
        "CN=#0403616263",
        "CN=#zz",
        " CN = a , O = b ",
        "EMAILADDRESS=a@b,SERIALNUMBER=1,DNQ=q,T=t,IP=1.2.3.4,S=s,UID=u",
    ] {
        validation.push((dn, one("x509", dn)));
    }
    for (label, acl) in validation {
        v.push((format!("validate {label:?}"), NodeAcl::CreateOnly(acl)));
    }
    for (i, (name, _)) in IDENTITIES.iter().enumerate() {
        if matches!(*name, "digest:other" | "sasl:bob" | "x509:bob") {
            continue; // Same kind of creator as one already in.
        }
        v.push((format!("auth by {name}"), NodeAcl::AuthBy(i)));
    }
    v
}

/// Ops that need a permission (and `exists`, which needs none), run by every identity on
/// every node; `child` ops work on an open child (`o`, `d-<identity>`, `md-<identity>`).
const OPS: &[&str] = &[
    "getData",
    "exists",
    "getChildren",
    "getAllChildrenNumber",
    "create child",
    "delete child",
    "setData",
    "getACL",
    "setACL",
    "multi(check)",
    "multi(create)",
    "multi(setData)",
    "multi(delete child)",
    "multiRead(getData)",
    "addWatch",
    // Below a node its ACL does not matter: there is no traversal permission.
    "getData child",
    "exists child",
];

/// One server's addresses: its plain port and its TLS port.
struct Side {
    plain: String,
    secure: String,
}

/// The settings both servers run with, as Java `-D` properties (zk-server reads the same).
fn shared_props(pki: &Pki, dir: &std::path::Path) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = pki
        .apache_props()
        .iter()
        .map(|p| {
            let (k, v) = p.trim_start_matches("-D").split_once('=').expect("k=v");
            (k.to_owned(), v.to_owned())
        })
        .collect();
    v.extend(
        [
            (
                "java.security.auth.login.config",
                server_jaas(dir).display().to_string(),
            ),
            ("zookeeper.authProvider.1", SASL_PROVIDER.to_owned()),
            ("zookeeper.authProvider.x509", X509_PROVIDER.to_owned()),
            ("zookeeper.superUser", "root".to_owned()),
            (
                "zookeeper.DigestAuthenticationProvider.superDigest",
                generate_digest("super:boss"),
            ),
            (
                "zookeeper.X509AuthenticationProvider.superUser",
                "CN=root,O=zk-rs".to_owned(),
            ),
        ]
        .map(|(k, v)| (k.to_owned(), v)),
    );
    v
}

async fn login(side: &Side, pki: &Pki, how: Login) -> Client {
    let host = match how {
        Login::X509(_) => &side.secure,
        _ => &side.plain,
    };
    let mut b = Client::builder(host).session_timeout(Duration::from_secs(10));
    match how {
        Login::Sasl(u, p) => b = b.sasl_digest(u, p),
        Login::X509(cn) => b = b.tls(pki.ca.client(cn)),
        _ => {}
    }
    let c = tokio::time::timeout(WITHIN, b.connect())
        .await
        .expect("connect in time")
        .expect("connects");
    if let Login::Digest(up) = how {
        c.add_auth("digest", up.as_bytes()).await.expect("addauth");
    }
    c
}

fn outcome<T>(r: Result<T, Error>, ok: impl FnOnce(T) -> String) -> String {
    match r {
        Ok(v) => ok(v),
        Err(e) => match e.code() {
            Some(code) => format!("{code:?}"),
            None => format!("{e}"),
        },
    }
}

fn show_acl(acl: &[Acl]) -> String {
    acl.iter()
        .map(|a| format!("{}:{}:{}", a.id.scheme, a.id.id, a.perms))
        .collect::<Vec<_>>()
        .join(",")
}

async fn run_op(c: &Client, op: &str, path: &str, me: &str, acl: &[Acl]) -> String {
    fn ok<T>(_: T) -> String {
        "ok".to_owned()
    }
    let open = Acl::open_unsafe();
    let fut = async {
        match op {
            "getData" => outcome(c.get_data(path, false).await, ok),
            "exists" => outcome(c.exists(path, false).await, |s| {
                if s.is_some() { "ok" } else { "absent" }.to_owned()
            }),
            "getChildren" => outcome(c.get_children(path, false).await, ok),
            "getAllChildrenNumber" => outcome(c.get_all_children_number(path).await, ok),
            "create child" => outcome(
                c.create(
                    &format!("{path}/c-{me}"),
                    b"",
                    &open,
                    CreateMode::Persistent,
                )
                .await,
                ok,
            ),
            "delete child" => outcome(c.delete(&format!("{path}/d-{me}"), None).await, ok),
            "setData" => outcome(c.set_data(path, b"x", None).await, ok),
            // The answer shows whether digests come back redacted.
            "getACL" => outcome(c.get_acl(path).await, |(a, _)| {
                format!("ok {}", show_acl(&a))
            }),
            "setACL" => outcome(c.set_acl(path, acl, None).await, ok),
            "multi(check)" => outcome(c.multi().check(path, None).commit().await, ok),
            "multi(create)" => outcome(
                c.multi()
                    .create(
                        &format!("{path}/m-{me}"),
                        b"",
                        &open,
                        CreateMode::Persistent,
                    )
                    .commit()
                    .await,
                ok,
            ),
            // A refused read comes back inside the result list, not as the call's error.
            "multi(setData)" => outcome(c.multi().set_data(path, b"m", None).commit().await, ok),
            "multi(delete child)" => outcome(
                c.multi()
                    .delete(&format!("{path}/md-{me}"), None)
                    .commit()
                    .await,
                ok,
            ),
            "addWatch" => outcome(c.add_watch(path, AddWatchMode::Persistent).await, ok),
            "getData child" => outcome(c.get_data(&format!("{path}/o"), false).await, ok),
            "exists child" => outcome(c.exists(&format!("{path}/o"), false).await, |s| {
                if s.is_some() { "ok" } else { "absent" }.to_owned()
            }),
            "multiRead(getData)" => outcome(c.multi_read().get_data(path).execute().await, |r| {
                match r.as_slice() {
                    [zk_client::OpResult::GetData(..)] => "ok".to_owned(),
                    [zk_client::OpResult::Error(e)] => {
                        format!("ok [{}]", outcome::<()>(Err(e.clone()), ok))
                    }
                    other => format!("ok {other:?}"),
                }
            }),
            other => unreachable!("op {other}"),
        }
    };
    tokio::time::timeout(WITHIN, fut)
        .await
        .unwrap_or_else(|_| panic!("{op} on {path} by {me} answered in time"))
}

type Matrix = BTreeMap<(String, String, String), String>;

/// Sets the nodes up on one server and runs every cell; returns the answers.
async fn matrix(side: &Side, pki: &Pki) -> Matrix {
    // One login at a time: Apache refuses some concurrent DIGEST-MD5 logins (its shared
    // callback handler; see server_sasl's concurrent-logins test), 1 run in ~16 here.
    let mut clients = Vec::with_capacity(IDENTITIES.len());
    for (_, how) in IDENTITIES {
        clients.push(login(side, pki, *how).await);
    }
    let admin = &clients[ADMIN];
    let open = Acl::open_unsafe();
    admin
        .create("/m", b"", &open, CreateMode::Persistent)
        .await
        .expect("/m");
    let mut m = Matrix::new();
    let mut ready = Vec::new();
    for (n, (label, acl)) in nodes().into_iter().enumerate() {
        let path = format!("/m/n{n}");
        let (creator, acl) = match acl {
            NodeAcl::Fixed(a) => (admin, a),
            NodeAcl::AuthBy(i) => (&clients[i], Acl::creator_all()),
            NodeAcl::CreateOnly(a) => {
                let r = admin.create(&path, b"", &a, CreateMode::Persistent).await;
                m.insert(
                    (label, "-".into(), "create node".into()),
                    outcome(r, |_| "ok".into()),
                );
                continue;
            }
        };
        let created = creator
            .create(&path, b"", &acl, CreateMode::Persistent)
            .await;
        m.insert(
            (label.clone(), "-".into(), "create node".into()),
            outcome(created.clone(), |_| "ok".into()),
        );
        if created.is_err() {
            continue;
        }
        let (stored, _) = admin.get_acl(&path).await.expect("admin getACL");
        m.insert(
            (label.clone(), "-".into(), "stored ACL".into()),
            show_acl(&stored),
        );
        for (me, _) in IDENTITIES {
            admin
                .create(
                    &format!("{path}/d-{me}"),
                    b"",
                    &open,
                    CreateMode::Persistent,
                )
                .await
                .expect("child to delete");
        }
        ready.push((label, path, stored));
    }
    let cells = ready.iter().flat_map(|(label, path, stored)| {
        clients
            .iter()
            .zip(IDENTITIES)
            .flat_map(move |(c, (me, _))| {
                OPS.iter().map(move |op| async move {
                    let answer = run_op(c, op, path, me, stored).await;
                    ((label.clone(), me.to_string(), op.to_string()), answer)
                })
            })
    });
    m.extend(join_all(cells).await);
    for c in clients {
        c.close().await.expect("close");
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scheme_permission_and_op_answers_as_apache() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let props = shared_props(&pki, dir.path());

    let secure_port = tests::ports::free_port().expect("port");
    let jvm: Vec<String> = props.iter().map(|(k, v)| format!("-D{k}={v}")).collect();
    let jvm: Vec<&str> = jvm.iter().map(String::as_str).collect();
    let secure = format!("secureClientPort={secure_port}");
    let apache = ApacheServer::start_with(&jvm, &[&secure, "secureClientPortAddress=127.0.0.1"])
        .expect("Apache with SASL, TLS and a super digest");

    let data = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "tickTime=200\ndataDir={}\nclientPort=0\nclientPortAddress=127.0.0.1\n\
         secureClientPortAddress=127.0.0.1\nadmin.enableServer=false\n",
        data.path().display()
    );
    let mut cfg = ServerConfig::parse(&text, &props).expect("the same settings parse");
    cfg.secure_client_port = Some(0); // In zoo.cfg, 0 would mean none.
    let ours = Server::start_in_memory(cfg, MemoryStore::new())
        .await
        .expect("zk-server starts");

    let theirs_side = Side {
        plain: apache.connect_string(),
        secure: format!("127.0.0.1:{secure_port}"),
    };
    let ours_side = Side {
        plain: ours.local_addr().to_string(),
        secure: ours.secure_addr().expect("secure port").to_string(),
    };
    let (theirs, mine) = tokio::join!(matrix(&theirs_side, &pki), matrix(&ours_side, &pki));
    drop(apache);
    ours.stop().await.expect("stop");

    // Cells only one side has (a node created on one server only) show as "-" on the other.
    let keys: std::collections::BTreeSet<_> = theirs.keys().chain(mine.keys()).collect();
    let none = "-".to_owned();
    let diff: Vec<String> = keys
        .into_iter()
        .filter(|k| theirs.get(*k) != mine.get(*k))
        .map(|k @ (node, who, op)| {
            format!(
                "{node:>22} | {who:<13} | {op:<20} | apache {} | zk-server {}",
                theirs.get(k).unwrap_or(&none),
                mine.get(k).unwrap_or(&none)
            )
        })
        .collect();
    let op_cells = theirs.keys().filter(|(_, who, _)| who != "-").count();
    eprintln!(
        "ACL matrix: {} cells: {op_cells} op cells ({} nodes x {} identities x {} ops) and {} \
         create/validation cells",
        theirs.len(),
        op_cells / (IDENTITIES.len() * OPS.len()),
        IDENTITIES.len(),
        OPS.len(),
        theirs.len() - op_cells,
    );
    assert!(
        diff.is_empty(),
        "{} of {} cells differ:\n{}",
        diff.len(),
        theirs.len(),
        diff.join("\n")
    );
    // Not a matrix of refusals: every kind of answer shows up.
    for want in ["ok", "NoAuth"] {
        assert!(theirs.values().any(|v| v.starts_with(want)), "{want}");
    }
}

/// One `ensemble` addauth on a fresh connection to `addr`: the reply's code, or `None`
/// when the server closed the connection instead of answering.
async fn ensemble_auth(addr: std::net::SocketAddr, name: &str) -> Option<zk_proto::ErrorCode> {
    let mut c = tests::raw::RawClient::connect(addr).await;
    c.send(&zk_proto::Request::Auth(zk_proto::AuthPacket {
        auth_type: 0,
        scheme: "ensemble".into(),
        auth: name.as_bytes().to_vec().into(),
    }))
    .await;
    let answer = c.try_recv().await.ok().map(|r| r.err());
    if answer.is_some() {
        // Still served: an identity-free connection that can read.
        assert_eq!(
            c.exists("/", false).await.err(),
            zk_proto::ErrorCode::Ok,
            "{name}"
        );
    }
    answer
}

/// `authProvider.N=...EnsembleAuthenticationProvider` with `ensembleAuthName`: a client
/// naming another ensemble loses its connection (so it tries another server), the right
/// name or none is answered Ok, and `mntr` counts each as Apache's `ensemble_auth_*`;
/// zk-server answers exactly as Apache 3.8 does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ensemble_scheme_answers_as_apache() {
    const ENSEMBLE_PROVIDER: &str =
        "org.apache.zookeeper.server.auth.EnsembleAuthenticationProvider";
    let provider = format!("authProvider.1={ENSEMBLE_PROVIDER}");
    let apache = tokio::task::spawn_blocking(move || {
        ApacheServer::start_with(&[], &[provider.as_str(), "ensembleAuthName=prod, prod2"])
    })
    .await
    .unwrap()
    .expect("apache");
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = ServerConfig::parse(
        &format!(
            "tickTime=500\ndataDir={}\nclientPort=0\nclientPortAddress=127.0.0.1\n\
             admin.enableServer=false\n4lw.commands.whitelist=*\n\
             authProvider.1={ENSEMBLE_PROVIDER}\nensembleAuthName=prod, prod2\n",
            dir.path().display()
        ),
        &[],
    )
    .expect("config");
    cfg.load_security().expect("security");
    let ours = Server::start(cfg).await.expect("zk-server");
    let apache_addr: std::net::SocketAddr = format!("127.0.0.1:{}", apache.port()).parse().unwrap();
    let mut answers = Vec::new();
    for (who, addr) in [("apache", apache_addr), ("zk-server", ours.local_addr())] {
        let mut got = Vec::new();
        for name in ["prod", "prod2", "", "staging", "Prod"] {
            got.push((name, ensemble_auth(addr, name).await));
        }
        let mntr =
            tokio::task::spawn_blocking(move || tests::apache::four_letter(addr.port(), "mntr"))
                .await
                .unwrap();
        let counts: Vec<String> = ["success", "fail", "skip"]
            .iter()
            .map(|k| {
                let key = format!("zk_ensemble_auth_{k}\t");
                mntr.lines()
                    .find_map(|l| l.strip_prefix(&key).map(str::to_string))
                    .unwrap_or_else(|| panic!("{who}: no {key} in mntr"))
            })
            .collect();
        answers.push((got, counts));
    }
    assert_eq!(answers[1], answers[0], "zk-server vs Apache");
    let (got, counts) = &answers[1];
    assert_eq!(got[0], ("prod", Some(zk_proto::ErrorCode::Ok)));
    assert_eq!(got[3], ("staging", None), "closed, no answer");
    assert_eq!(counts, &["2", "2", "1"]);
    ours.stop().await.expect("stop");
}
