//! Shared plumbing of the example programs: `--hosts` or an embedded server.
//!
//! Every example accepts `--hosts h1:2181,h2:2181[/chroot]` to run against a real ensemble
//! (Apache ZooKeeper or zk-server); without it, it starts a zk-server in-process on a free
//! loopback port with a temporary data directory, so `cargo run --example X` just works.
#![deny(missing_docs)]

use zk_server::testkit::TestServer;

/// Where an example connects, and the embedded server it owns (if any).
pub struct Target {
    /// The connect string to hand to `zk_client::Client::connect`.
    pub hosts: String,
    /// The embedded server (its temp dir included), stopped when this is dropped.
    pub embedded: Option<TestServer>,
}

impl Target {
    /// Stops the embedded server cleanly (a no-op with `--hosts`).
    pub async fn shutdown(self) {
        if let Some(server) = self.embedded {
            if let Err(e) = server.stop().await {
                eprintln!("embedded server stop: {e}");
            }
        }
    }
}

/// The value of `--hosts` (`--hosts X` or `--hosts=X`), if given.
pub fn hosts_arg() -> Option<String> {
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--hosts" {
            return args.next();
        }
        if let Some(v) = a.strip_prefix("--hosts=") {
            return Some(v.to_string());
        }
    }
    None
}

/// `--hosts` if given, else a freshly started embedded zk-server.
pub async fn target() -> Result<Target, Box<dyn std::error::Error>> {
    if let Some(hosts) = hosts_arg() {
        return Ok(Target {
            hosts,
            embedded: None,
        });
    }
    // TestServer rather than ServerConfig::for_tests: the examples ask for 10 s sessions,
    // which for_tests' 200 ms tick would cap at 4 s.
    let server = TestServer::start().await?;
    let hosts = server.connect_string();
    println!("started embedded zk-server at {hosts} (pass --hosts to use a real ensemble)");
    Ok(Target {
        hosts,
        embedded: Some(server),
    })
}
