//! `zk-server [-Dname=value ...] <zoo.cfg>`: a ZooKeeper server, standalone or, when
//! zoo.cfg lists two or more `server.N` lines, the ensemble member named by `myid`.

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

fn usage() -> ExitCode {
    eprintln!("usage: zk-server [-Dname=value ...] <zoo.cfg>");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
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
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = tokio::signal::ctrl_c() => tracing::info!("interrupted: shutting down"),
        }
        match handle.stop().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("zk-server: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

/// A settings problem found at start (a TLS store that cannot be read) exits 2, as one
/// found reading zoo.cfg does; anything else (a port taken) 1.
fn start_failure(e: &zk_server::ServerError) -> ExitCode {
    match e {
        zk_server::ServerError::Config { .. } => ExitCode::from(2),
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
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted: shutting down"),
    }
    drop(node);
    ExitCode::SUCCESS
}
