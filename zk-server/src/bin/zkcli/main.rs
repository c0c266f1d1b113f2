//! `zkcli`: Apache ZooKeeper's `zkCli.sh` on zk-client, for operators who keep their
//! scripts and habits: the same flags (`-server host:port[,...]`, `-timeout`, `-r`,
//! `-waitforconnection`, `-client-configuration`), the same commands and the same
//! output, byte for byte where a script could read it, and the same exit codes.
//!
//! Modules: [`parsing`] (flags, words, paths), [`commands`] (each command),
//! [`quota`] (setquota / listquota / delquota), [`output`] (what is printed),
//! [`session`] (connection and watch events), [`shell`] (one-shot, piped and
//! terminal modes, history), [`client_config`] (TLS / SASL client properties).

mod client_config;
mod commands;
mod output;
mod parsing;
mod quota;
mod session;
mod shell;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = match parsing::MainOptions::parse(&args) {
        Ok(o) => o,
        Err(msg) => {
            if !msg.is_empty() {
                eprintln!("{msg}");
            }
            eprint!("{}", commands::usage());
            return ExitCode::from(2);
        }
    };
    // One thread: the session's driver and the shell take turns, so an event that came
    // before a reply is always printed before what the next command prints.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let code = rt.block_on(shell::run(opts));
    use std::io::Write;
    let _ = std::io::stdout().flush();
    // The line editor's thread may still wait for a key: leave without joining it.
    std::process::exit(code)
}
