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
