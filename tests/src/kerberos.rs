//! A throwaway MIT Kerberos realm for GSSAPI tests: Debian's `krb5kdc` with its database,
//! krb5.conf and kdc.conf in a temp dir, on a free loopback port, killed by its pid on
//! Drop. Principals and keytabs are made with `kadmin.local`; processes (Apache, Java
//! clients, `zk-server`) get the realm through [`Kdc::env`] / [`Kdc::java_props`].
//!
//! MIT's library reads its configuration from the `KRB5_CONFIG` environment variable of
//! the process, so code that runs Kerberos *in the test process* (zk-client, an in-process
//! zk-server) uses [`Kdc::start_in_process`]: it holds a process-wide lock for the KDC's
//! life and points `KRB5_CONFIG` at this realm, so two such tests never share a process's
//! configuration.
//!
//! ```no_run
//! let kdc = tests::kerberos::Kdc::start().unwrap();
//! let keytab = kdc.keytab("zk.keytab", &["zookeeper/localhost"]).unwrap();
//! ```

use std::io;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The realm a test KDC serves unless started with [`Kdc::start_realm`].
pub const REALM: &str = "ZK.TEST";
/// The principal a zk-server or Apache server on loopback uses (`zookeeper/localhost`):
/// clients connecting to 127.0.0.1 canonicalise it to `localhost`.
pub const SERVER_PRINCIPAL: &str = "zookeeper/localhost";

static IN_PROCESS: Mutex<()> = Mutex::new(());

/// A running KDC and its files.
#[derive(Debug)]
pub struct Kdc {
    dir: tempfile::TempDir,
    realm: String,
    port: u16,
    child: Child,
    _in_process: Option<MutexGuard<'static, ()>>,
}

/// Ok when the MIT KDC programs are installed; else an error naming the packages.
pub fn installed() -> io::Result<()> {
    for prog in ["krb5kdc", "kdb5_util", "kadmin.local"] {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(prog).is_file()))
            .unwrap_or(false)
            || Path::new("/usr/sbin").join(prog).is_file();
        if !found {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "{prog} not found: install the Debian packages krb5-kdc, \
                     krb5-admin-server and krb5-user (tests/run.sh does)"
                ),
            ));
        }
    }
    Ok(())
}

fn sbin(prog: &str) -> PathBuf {
    let p = Path::new("/usr/sbin").join(prog);
    if p.is_file() {
        p
    } else {
        PathBuf::from(prog)
    }
}

impl Kdc {
    /// Creates the realm [`REALM`] and starts its KDC.
    pub fn start() -> io::Result<Kdc> {
        Self::start_realm(REALM)
    }

    /// Creates the realm `realm` (the default realm of its krb5.conf) and starts its KDC:
    /// for suites whose principals name their own realm (kazoo's: `KAZOOTEST.ORG`).
    pub fn start_realm(realm: &str) -> io::Result<Kdc> {
        installed()?;
        let dir = tempfile::tempdir()?;
        let port = crate::ports::free_port()?;
        let d = dir.path().display();
        std::fs::write(
            dir.path().join("krb5.conf"),
            format!(
                "[libdefaults]\n  default_realm = {realm}\n  dns_lookup_kdc = false\n  \
                 dns_lookup_realm = false\n  dns_canonicalize_hostname = false\n  \
                 rdns = false\n  udp_preference_limit = 1\n  ticket_lifetime = 1h\n\
                 [realms]\n  {realm} = {{\n    kdc = 127.0.0.1:{port}\n  }}\n\
                 [domain_realm]\n  localhost = {realm}\n"
            ),
        )?;
        std::fs::write(
            dir.path().join("kdc.conf"),
            format!(
                "[kdcdefaults]\n  kdc_listen = 127.0.0.1:{port}\n  \
                 kdc_tcp_listen = 127.0.0.1:{port}\n\
                 [realms]\n  {realm} = {{\n    database_name = {d}/principal\n    \
                 key_stash_file = {d}/stash\n    acl_file = {d}/kadm5.acl\n    \
                 max_life = 1h\n    supported_enctypes = aes256-cts-hmac-sha1-96:normal \
                 aes128-cts-hmac-sha1-96:normal\n  }}\n[logging]\n  kdc = FILE:{d}/kdc.log\n"
            ),
        )?;
        let mut create = Command::new(sbin("kdb5_util"));
        create.args(["create", "-s", "-r", realm, "-P", "zk-test-master", "-W"]);
        run(Self::with_env(dir.path(), &mut create))?;
        let mut kdc_cmd = Command::new(sbin("krb5kdc"));
        kdc_cmd
            .args(["-n", "-r", realm])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = Self::with_env(dir.path(), &mut kdc_cmd).spawn()?;
        let mut kdc = Kdc {
            dir,
            realm: realm.to_owned(),
            port,
            child,
            _in_process: None,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = kdc.child.try_wait() {
                return Err(io::Error::other(format!(
                    "krb5kdc exited ({status}): {}",
                    kdc.log()
                )));
            }
            if Instant::now() > deadline {
                return Err(io::Error::other("krb5kdc did not listen within 10 s"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(kdc)
    }

    /// [`Kdc::start`], and `KRB5_CONFIG` of this process pointed at the realm while the
    /// returned KDC lives (other in-process Kerberos tests wait for it to drop).
    pub fn start_in_process() -> io::Result<Kdc> {
        let guard = IN_PROCESS.lock().unwrap_or_else(|e| e.into_inner());
        let mut kdc = Kdc::start()?;
        // SAFETY-free in edition 2021; the lock above keeps other Kerberos tests of this
        // process from reading the variable while it changes.
        std::env::set_var("KRB5_CONFIG", kdc.krb5_conf());
        std::env::remove_var("KRB5CCNAME");
        kdc._in_process = Some(guard);
        Ok(kdc)
    }

    fn with_env<'a>(dir: &Path, cmd: &'a mut Command) -> &'a mut Command {
        cmd.env("KRB5_CONFIG", dir.join("krb5.conf"))
            .env("KRB5_KDC_PROFILE", dir.join("kdc.conf"))
    }

    /// The krb5.conf clients and servers read (`KRB5_CONFIG`, `java.security.krb5.conf`).
    pub fn krb5_conf(&self) -> PathBuf {
        self.dir.path().join("krb5.conf")
    }

    /// The temp dir holding the realm's files (keytabs land here too).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The KDC's loopback port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Environment a process needs to use this realm.
    pub fn env(&self) -> Vec<(&'static str, PathBuf)> {
        vec![("KRB5_CONFIG", self.krb5_conf())]
    }

    /// JVM properties a Java process needs to use this realm.
    pub fn java_props(&self) -> Vec<String> {
        vec![
            format!("-Djava.security.krb5.conf={}", self.krb5_conf().display()),
            "-Dsun.security.krb5.disableReferrals=true".to_owned(),
        ]
    }

    /// Runs a `kadmin.local` query; it exits 0 on most failures, so success is judged by
    /// `expect` appearing in what it printed.
    fn kadmin(&self, query: &str, expect: &str) -> io::Result<String> {
        let mut cmd = Command::new(sbin("kadmin.local"));
        cmd.args(["-r", &self.realm, "-q", query]);
        let out = run(Self::with_env(self.dir.path(), &mut cmd))?;
        if out.contains(expect) {
            Ok(out)
        } else {
            Err(io::Error::other(format!("kadmin.local {query:?}: {out}")))
        }
    }

    /// Creates `principal` (e.g. `alice`, `zookeeper/localhost`) with a random key, if it
    /// does not exist yet.
    pub fn add_principal(&self, principal: &str) -> io::Result<()> {
        if self
            .kadmin(&format!("getprinc {principal}"), "Principal: ")
            .is_ok()
        {
            return Ok(());
        }
        self.kadmin(&format!("addprinc -randkey {principal}"), "created")?;
        Ok(())
    }

    /// A keytab file `name` in the realm's dir with the current keys of `principals`
    /// (created first if needed). Keys are not changed, so earlier keytabs stay valid.
    pub fn keytab(&self, name: &str, principals: &[&str]) -> io::Result<PathBuf> {
        let path = self.dir.path().join(name);
        for p in principals {
            self.add_principal(p)?;
            self.kadmin(
                &format!("ktadd -norandkey -k {} {p}", path.display()),
                "added to keytab",
            )?;
        }
        Ok(path)
    }

    /// Gives `principal` a new key: keytabs made before hold a stale one.
    pub fn rekey(&self, principal: &str) -> io::Result<()> {
        self.kadmin(&format!("cpw -randkey {principal}"), "randomized")?;
        Ok(())
    }

    /// `kinit -k -t keytab principal` into the credential cache `ccache`
    /// (`FILE:/path`): a ticket cache as a user would have one.
    pub fn kinit(&self, principal: &str, keytab: &Path, ccache: &str) -> io::Result<()> {
        let mut cmd = Command::new("kinit");
        cmd.args(["-k", "-t"])
            .arg(keytab)
            .args(["-c", ccache, principal]);
        run(Self::with_env(self.dir.path(), &mut cmd)).map(|_| ())
    }

    /// A JAAS section logging in with a keytab, as Java users write it.
    pub fn jaas_keytab_section(section: &str, principal: &str, keytab: &Path) -> String {
        format!(
            "{section} {{\n  com.sun.security.auth.module.Krb5LoginModule required\n  \
             useKeyTab=true\n  keyTab=\"{}\"\n  storeKey=true\n  useTicketCache=false\n  \
             principal=\"{principal}@{REALM}\";\n}};\n",
            keytab.display()
        )
    }

    /// The KDC's log (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("kdc.log")).unwrap_or_default()
    }
}

impl Drop for Kdc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if self._in_process.is_some() {
            std::env::remove_var("KRB5_CONFIG");
        }
    }
}

fn run(cmd: &mut Command) -> io::Result<String> {
    let out = cmd.stdin(Stdio::null()).output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(io::Error::other(format!("{cmd:?} failed: {text}")))
    }
}
