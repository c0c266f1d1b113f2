//! `zk-server [-Dname=value ...] <zoo.cfg>`: a ZooKeeper server, standalone or, when
//! zoo.cfg lists two or more `server.N` lines, the ensemble member named by `myid`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use zk_server::config::{split_properties, ServerConfig};
use zk_server::host::member::from_config;
use zk_server::Server;

// Smaller size classes and less per-block overhead than the system allocator: a znode's
// name+data block of 111 bytes takes 112 instead of 128, and freed memory goes back sooner.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

extern "C" {
    // mimalloc's option setter (linked in by the mimalloc crate).
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
}

/// Keeps the resident size close to what is in use: by default mimalloc commits its arena
/// eagerly (with transparent huge pages where the kernel allows them, so partly used 2 MiB
/// pages count whole) and returns freed pages only after a second. Option numbers are those
/// of mimalloc 3's `mi_option_e`. Runs as an ELF constructor because the Rust runtime
/// allocates (and so reserves mimalloc's first arena) before `main`.
#[cfg(target_os = "linux")]
extern "C" fn tune_allocator() {
    const ARENA_EAGER_COMMIT: std::ffi::c_int = 4;
    const PURGE_DELAY: std::ffi::c_int = 15;
    // SAFETY: plain setters of process-wide options, called before anything allocates.
    unsafe {
        mi_option_set(ARENA_EAGER_COMMIT, 0);
        mi_option_set(PURGE_DELAY, 0);
    }
}

#[cfg(target_os = "linux")]
#[used]
#[link_section = ".init_array"]
static TUNE_ALLOCATOR: extern "C" fn() = tune_allocator;

const USAGE: &str = "\
usage: zk-server [OPTIONS] [-Dname=value ...] <zoo.cfg>

A ZooKeeper server that reads Apache ZooKeeper's zoo.cfg, myid and dataDir: standalone, or
the ensemble member named by dataDir/myid when zoo.cfg (or its dynamicConfigFile) lists
server.N lines. -Dname=value sets what a Java system property sets for Apache's server
(e.g. -Dzookeeper.extendedTypesEnabled=true, -Djava.security.auth.login.config=jaas.conf).

Options:
  -h, --help              print this help and exit
  -V, --version           print the version, git commit and build date and exit
      --log-format FORMAT text (default) or json (one JSON object per line); also
                          ZK_LOG_FORMAT. RUST_LOG sets the level (default info).

Exit status: 0 after SIGTERM or ^C, 2 for a configuration error (named with its key and
line; nothing was bound or written), 1 for anything else.
";

fn usage() -> ExitCode {
    eprint!("{USAGE}");
    ExitCode::from(2)
}

/// How log lines are written.
#[derive(Clone, Copy, PartialEq)]
enum LogFormat {
    Text,
    Json,
}

/// Logs to stderr: JSON lines, or text with colours only when stderr is a terminal (a log
/// file or journald gets no escape codes).
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
    }
}

fn parse_log_format(v: &str) -> Option<LogFormat> {
    match v {
        "text" => Some(LogFormat::Text),
        "json" => Some(LogFormat::Json),
        _ => None,
    }
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut log_format = match std::env::var("ZK_LOG_FORMAT") {
        Ok(v) => match parse_log_format(&v) {
            Some(f) => f,
            None => {
                eprintln!("zk-server: ZK_LOG_FORMAT={v}: expected text or json");
                return ExitCode::from(2);
            }
        },
        Err(_) => LogFormat::Text,
    };
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "-h" | "--help" => {
                print!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            "-V" | "--version" => {
                println!(
                    "zk-server {} (git {}, built {} UTC); serves ZooKeeper 3.8 clients and members",
                    env!("CARGO_PKG_VERSION"),
                    env!("ZK_GIT_COMMIT"),
                    env!("ZK_BUILD_DATE")
                );
                return ExitCode::SUCCESS;
            }
            "--log-format" => {
                let v = args.get(i + 1).cloned().unwrap_or_default();
                let Some(f) = parse_log_format(&v) else {
                    eprintln!("zk-server: --log-format '{v}': expected text or json");
                    return ExitCode::from(2);
                };
                log_format = f;
                args.drain(i..i + 2);
            }
            a if a.starts_with("--log-format=") => {
                let v = &a["--log-format=".len()..];
                let Some(f) = parse_log_format(v) else {
                    eprintln!("zk-server: --log-format '{v}': expected text or json");
                    return ExitCode::from(2);
                };
                log_format = f;
                args.remove(i);
            }
            a if a.starts_with("--") => {
                eprintln!("zk-server: unknown option {a}");
                return usage();
            }
            _ => i += 1,
        }
    }
    init_logging(log_format);
    let (props, rest) = split_properties(&args);
    let [cfg_path] = rest.as_slice() else {
        return usage();
    };
    let config = match ServerConfig::from_file(&PathBuf::from(cfg_path), &props) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("zk-server: {cfg_path}: {e}");
            return ExitCode::from(2);
        }
    };
    tracing::info!(
        "zk-server {} (git {}, built {} UTC) starting from {cfg_path}: {}",
        env!("CARGO_PKG_VERSION"),
        env!("ZK_GIT_COMMIT"),
        env!("ZK_BUILD_DATE"),
        config.summary()
    );
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    let rt = match config.runtime_threads() {
        0 | 1 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build(),
    };
    let rt = match rt {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("zk-server: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if from_config::is_ensemble(&config) {
        return rt.block_on(run_member(config));
    }
    rt.block_on(async move {
        let handle = match Server::start(config).await {
            Ok(h) => h,
            Err(e) => {
                eprintln!("zk-server: {e}");
                return start_failure(&e);
            }
        };
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("zk-server: cannot install SIGTERM handler: {e}");
                    return ExitCode::FAILURE;
                }
            };
        // Disk trouble ends the server as Apache's ends (it stops serving and exits), but
        // with a failure code, so a supervisor (systemd's Restart=on-failure) sees it.
        let mut code = ExitCode::SUCCESS;
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = tokio::signal::ctrl_c() => tracing::info!("interrupted: shutting down"),
            _ = handle.failed() => {
                tracing::error!("the txn log cannot be written: shutting down, exit code 1");
                code = ExitCode::FAILURE;
            }
        }
        match handle.stop().await {
            Ok(()) => code,
            Err(e) => {
                eprintln!("zk-server: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

/// A settings problem found at start (a TLS store that cannot be read) exits 2, as one
/// found reading zoo.cfg does; an AdminServer that cannot listen 4 (Apache's
/// `ERROR_STARTING_ADMIN_SERVER`); anything else (a port taken) 1.
fn start_failure(e: &zk_server::ServerError) -> ExitCode {
    match e {
        zk_server::ServerError::Config { .. } => ExitCode::from(2),
        zk_server::ServerError::Endpoint {
            key: "admin.serverPort",
            ..
        } => ExitCode::from(4),
        _ => ExitCode::FAILURE,
    }
}

/// Runs as an ensemble member until SIGTERM or ^C (then stops like a crash: every
/// txn was already made durable before it was acknowledged).
async fn run_member(config: ServerConfig) -> ExitCode {
    let node = match from_config::start_member(&config).await {
        Ok(n) => n,
        Err(e) => {
            eprintln!("zk-server: {e}");
            return start_failure(&e);
        }
    };
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("zk-server: cannot install SIGTERM handler: {e}");
            return ExitCode::FAILURE;
        }
    };
    // A member whose disk fails leaves the ensemble (crash-stop) and exits 1, so a
    // supervisor (systemd's Restart=on-failure) sees it.
    let mut code = ExitCode::SUCCESS;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted: shutting down"),
        _ = node.failed() => {
            tracing::error!("the txn log cannot be written: shutting down, exit code 1");
            code = ExitCode::FAILURE;
        }
    }
    drop(node);
    code
}
