//! zkCli's shell (`ZooKeeperMain`): one command and exit, or a session reading lines,
//! from a terminal through rustyline (prompt, line editing, history, tab completion of
//! commands and znode paths) or from a pipe (no prompt, as zkCli without JLine). The
//! shell's own commands (history, redo, printwatches, connect, quit) live here; watch
//! events are printed as they come, between commands or above the prompt.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{Context, Editor, Helper};
use tokio::sync::mpsc;
use zk_client::Client;

use crate::client_config::ClientSettings;
use crate::commands::{self, CliError, COMMANDS};
use crate::output;
use crate::parsing::{split_words, MainOptions};
use crate::session::Session;

/// Whether the shell goes on after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    Quit,
}

struct Shell {
    session: Session,
    history: BTreeMap<i64, String>,
    count: i64,
    exit_code: i32,
    /// The current session's client, for the completer (which runs on the editor thread).
    shared_client: Arc<Mutex<Option<Client>>>,
}

/// Runs zkcli with its parsed flags; returns the exit code.
pub async fn run(opts: MainOptions) -> i32 {
    let settings = match &opts.client_configuration {
        Some(p) => ClientSettings::load(std::path::Path::new(p)),
        None => ClientSettings::from_env(),
    };
    let settings = match settings {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    println!("Connecting to {}", opts.server);
    let command = opts.command.clone();
    let server = opts.server.clone();
    let mut shell = Shell {
        session: Session::new(opts, settings),
        history: BTreeMap::new(),
        count: 0,
        exit_code: 0,
        shared_client: Arc::new(Mutex::new(None)),
    };
    if let Err(e) = shell.connect(&server).await {
        eprintln!("{}", e.message);
        return e.code;
    }
    if let Some(words) = command {
        shell.process(words).await;
        shell.session.shutdown_quietly().await;
        return shell.exit_code;
    }
    println!("Welcome to ZooKeeper!");
    if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() {
        println!("JLine support is enabled");
        shell.terminal().await;
    } else {
        println!("JLine support is disabled");
        shell.piped().await;
    }
    shell.session.shutdown().await;
    shell.exit_code
}

impl Shell {
    async fn connect(&mut self, host: &str) -> Result<(), CliError> {
        let r = self.session.connect(host).await;
        if let Ok(mut c) = self.shared_client.lock() {
            *c = self.session.client();
        }
        r
    }

    fn prompt(&self) -> String {
        format!(
            "[zk: {}({}) {}] ",
            self.session.host,
            output::prompt_state(self.session.state()),
            self.count
        )
    }

    /// Lines from a pipe or file, no prompt.
    async fn piped(&mut self) {
        let (tx, mut rx) = mpsc::unbounded_channel::<String>();
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        loop {
            tokio::select! {
                biased;
                Some(ev) = self.session.next_event() => self.session.print_event(&ev),
                line = rx.recv() => match line {
                    Some(line) => {
                        if self.execute_line(line).await == Flow::Quit {
                            return;
                        }
                    }
                    None => return,
                },
            }
        }
    }

    /// A terminal: rustyline on its own thread, one prompt per line.
    async fn terminal(&mut self) {
        let config = rustyline::Config::builder()
            .auto_add_history(true)
            .completion_type(rustyline::CompletionType::List)
            .build();
        let mut editor: Editor<ZnodeHelper, rustyline::history::DefaultHistory> =
            match Editor::with_config(config) {
                Ok(e) => e,
                Err(e) => {
                    eprintln!("cannot start the line editor ({e}); reading lines without it");
                    return self.piped().await;
                }
            };
        editor.set_helper(Some(ZnodeHelper {
            client: self.shared_client.clone(),
            runtime: tokio::runtime::Handle::current(),
        }));
        if let Ok(p) = editor.create_external_printer() {
            self.session.printer.external = Some(Box::new(p));
        }
        let reading = self.session.printer.reading.clone();
        let (prompt_tx, prompt_rx) = std::sync::mpsc::channel::<String>();
        let (line_tx, mut line_rx) = mpsc::unbounded_channel::<Option<String>>();
        std::thread::spawn(move || {
            while let Ok(prompt) = prompt_rx.recv() {
                reading.store(true, Ordering::SeqCst);
                let r = editor.readline(&prompt);
                reading.store(false, Ordering::SeqCst);
                let line = match r {
                    Ok(l) => Some(l),
                    Err(ReadlineError::Interrupted | ReadlineError::Eof) => None,
                    Err(e) => {
                        eprintln!("{e}");
                        None
                    }
                };
                let end = line.is_none();
                if line_tx.send(line).is_err() || end {
                    break;
                }
            }
        });
        if prompt_tx.send(self.prompt()).is_err() {
            return;
        }
        loop {
            tokio::select! {
                biased;
                Some(ev) = self.session.next_event() => self.session.print_event(&ev),
                line = line_rx.recv() => match line {
                    Some(Some(line)) => {
                        if self.execute_line(line).await == Flow::Quit {
                            return;
                        }
                        self.session.drain_events();
                        if prompt_tx.send(self.prompt()).is_err() {
                            return;
                        }
                    }
                    _ => return,
                },
            }
        }
    }

    /// `executeLine`: numbered in the history, then run.
    async fn execute_line(&mut self, line: String) -> Flow {
        // zkCli skips only "" (blanks become an unknown command " "); skip blank lines.
        if line.trim().is_empty() {
            return Flow::Continue;
        }
        let words = split_words(&line);
        self.history.insert(self.count, line);
        let flow = self.process(words).await;
        self.count += 1;
        flow
    }

    /// `processCmd`: runs a command and records its exit code (quit keeps the previous
    /// one, as zkCli exits from inside it).
    async fn process(&mut self, words: Vec<String>) -> Flow {
        self.session.drain_events();
        match Box::pin(self.process_zk(words)).await {
            Ok(Flow::Quit) => Flow::Quit,
            Ok(flow) => {
                self.exit_code = 0;
                flow
            }
            Err(e) => {
                self.exit_code = e.code;
                eprintln!("{}", e.message);
                Flow::Continue
            }
        }
    }

    /// `processZKCmd`.
    async fn process_zk(&mut self, words: Vec<String>) -> Result<Flow, CliError> {
        let cmd = words[0].clone();
        if !commands::is_command(&cmd) {
            eprint!("{}", commands::usage());
            return Err(CliError {
                message: format!("Command not found: Command not found {cmd}"),
                code: 127,
            });
        }
        match cmd.as_str() {
            "quit" => return Ok(Flow::Quit),
            "redo" if words.len() >= 2 => {
                let i = java_decode(&words[1]);
                let line = match i {
                    Some(i) if i >= 0 && i < self.count => {
                        self.history.get(&i).cloned().unwrap_or_default()
                    }
                    _ => return Err(CliError::new("Command index out of range")),
                };
                let again = split_words(&line);
                if again.first().map(String::as_str) == Some("redo") {
                    return Err(CliError::new("No redoing redos"));
                }
                self.history.insert(self.count, line);
                if !again.is_empty() && self.process(again).await == Flow::Quit {
                    return Ok(Flow::Quit);
                }
            }
            "history" => {
                for i in (self.count - 10).max(0)..=self.count {
                    let line = self.history.get(&i).map_or("null", String::as_str);
                    println!("{i} - {line}");
                }
            }
            "printwatches" => match words.get(1) {
                None => println!(
                    "printwatches is {}",
                    if self.session.print_watches {
                        "on"
                    } else {
                        "off"
                    }
                ),
                Some(v) => self.session.print_watches = v == "on",
            },
            "connect" => {
                let host = words.get(1).cloned().unwrap_or(self.session.host.clone());
                self.connect(&host).await?;
            }
            _ => {}
        }
        if !self.session.alive() {
            println!("Not connected");
            return Ok(Flow::Continue);
        }
        if !matches!(
            cmd.as_str(),
            "connect" | "history" | "redo" | "printwatches" | "quit"
        ) {
            commands::run(&mut self.session, &words).await?;
        }
        Ok(Flow::Continue)
    }
}

/// Java's `Integer.decode`: decimal, `0x`/`#` hex, leading-zero octal, optional sign.
fn java_decode(s: &str) -> Option<i64> {
    let (neg, rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let v = if let Some(h) = rest.strip_prefix("0x").or_else(|| rest.strip_prefix("0X")) {
        i64::from_str_radix(h, 16).ok()?
    } else if let Some(h) = rest.strip_prefix('#') {
        i64::from_str_radix(h, 16).ok()?
    } else if rest.len() > 1 && rest.starts_with('0') {
        i64::from_str_radix(&rest[1..], 8).ok()?
    } else {
        rest.parse().ok()?
    };
    i32::try_from(v).ok()?;
    Some(if neg { -v } else { v })
}

/// Tab completion: command names for the first word, znode paths (children of the
/// typed parent, asked of the server) for a word starting with `/`.
struct ZnodeHelper {
    client: Arc<Mutex<Option<Client>>>,
    runtime: tokio::runtime::Handle,
}

impl Completer for ZnodeHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = &line[..pos];
        let start = before.rfind(char::is_whitespace).map_or(0, |i| {
            i + before[i..].chars().next().map_or(1, char::len_utf8)
        });
        let word = &before[start..];
        let pair = |s: String| Pair {
            display: s.clone(),
            replacement: s,
        };
        if start == 0 || before[..start].trim().is_empty() {
            let names = COMMANDS
                .iter()
                .filter(|c| c.name.starts_with(word))
                .map(|c| pair(format!("{} ", c.name)))
                .collect();
            return Ok((start, names));
        }
        if !word.starts_with('/') {
            return Ok((start, Vec::new()));
        }
        let client = self.client.lock().ok().and_then(|c| c.clone());
        let Some(client) = client.filter(|c| c.state().is_connected()) else {
            return Ok((start, Vec::new()));
        };
        let slash = word.rfind('/').unwrap_or(0);
        let (parent, prefix) = (&word[..slash.max(1)], &word[slash + 1..]);
        let kids = self.runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(2), client.get_children(parent, false)).await
        });
        let mut kids = match kids {
            Ok(Ok(k)) => k,
            _ => return Ok((start, Vec::new())),
        };
        kids.sort();
        let base = if parent == "/" { "" } else { parent };
        let found = kids
            .into_iter()
            .filter(|k| k.starts_with(prefix))
            .map(|k| pair(format!("{base}/{k}")))
            .collect();
        Ok((start, found))
    }
}

impl Hinter for ZnodeHelper {
    type Hint = String;
}
impl Highlighter for ZnodeHelper {}
impl Validator for ZnodeHelper {}
impl Helper for ZnodeHelper {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redo_numbers_as_integer_decode() {
        assert_eq!(java_decode("12"), Some(12));
        assert_eq!(java_decode("0x1f"), Some(31));
        assert_eq!(java_decode("010"), Some(8));
        assert_eq!(java_decode("-3"), Some(-3));
        assert_eq!(java_decode("x"), None);
    }
}
