//! The shell's connection: the zk-client session (re)made by `connect`, closed by
//! `close`, and the watch events zkCli's default watcher prints (`WATCHER::` blocks),
//! from the session's event stream (persistent `addWatch` ones included).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use zk_client::{Client, Error, EventStream, EventType, SessionState, WatchedEvent};

use crate::client_config::ClientSettings;
use crate::commands::CliError;
use crate::output;
use crate::parsing::MainOptions;

/// Where events go while the line editor shows a prompt (above it), else stdout.
#[derive(Default)]
pub struct EventPrinter {
    /// The editor's printer, in interactive terminal mode.
    pub external: Option<Box<dyn rustyline::ExternalPrinter + Send>>,
    /// True while the editor waits for a line.
    pub reading: Arc<AtomicBool>,
}

impl EventPrinter {
    fn print(&mut self, text: String) {
        if self.reading.load(Ordering::SeqCst) {
            if let Some(p) = self.external.as_mut() {
                if p.print(text.trim_end_matches('\n').to_string()).is_ok() {
                    return;
                }
            }
        }
        print!("{text}");
    }
}

/// The session and what the shell keeps about it.
pub struct Session {
    /// The program's flags (timeout, read-only...).
    pub opts: MainOptions,
    /// The `-client-configuration` settings.
    pub settings: ClientSettings,
    /// The connect string of the current (or last) session.
    pub host: String,
    client: Option<Client>,
    events: Option<EventStream>,
    /// `printwatches on|off`.
    pub print_watches: bool,
    /// How events are printed.
    pub printer: EventPrinter,
}

impl Session {
    /// A shell with no session yet.
    pub fn new(opts: MainOptions, settings: ClientSettings) -> Session {
        Session {
            host: opts.server.clone(),
            opts,
            settings,
            client: None,
            events: None,
            print_watches: true,
            printer: EventPrinter::default(),
        }
    }

    /// The session's state for the prompt and the "Not connected" check.
    pub fn state(&self) -> SessionState {
        self.client
            .as_ref()
            .map_or(SessionState::Closed, Client::state)
    }

    /// zkCli's `zk.getState().isAlive()`: neither closed nor refused.
    pub fn alive(&self) -> bool {
        self.client.is_some() && !self.state().is_terminal()
    }

    /// A client of the current session (for tab completion).
    pub fn client(&self) -> Option<Client> {
        self.client.clone()
    }

    /// `connectToZK`: closes the current session (printing its Closed event), starts a
    /// new one to `host`, and with `-waitforconnection` waits for it.
    pub async fn connect(&mut self, host: &str) -> Result<(), CliError> {
        if self.alive() {
            let _ = self.close().await;
        }
        self.host = host.to_string();
        let timeout = Duration::from_millis(self.opts.timeout_ms.max(1));
        let builder = Client::builder(host)
            .session_timeout(timeout)
            .read_only(self.opts.read_only);
        let builder = self.settings.apply(builder);
        let client = builder
            .build()
            .map_err(|e| CliError::new(format!("java.lang.IllegalArgumentException: {e}")))?;
        self.events = Some(client.events());
        self.client = Some(client.clone());
        if self.opts.wait_for_connection {
            if client
                .wait_for_state(timeout, SessionState::is_connected)
                .await
                .is_err()
            {
                if !self.close().await {
                    // Never connected: Java's watcher still hears the session close.
                    self.print_event(&WatchedEvent::state_change(SessionState::Closed));
                }
                return Err(CliError::new(format!(
                    "java.io.IOException: org.apache.zookeeper.KeeperException$\
                     ConnectionLossException: {}",
                    output::keeper_message(zk_client::ErrorCode::ConnectionLoss, None)
                )));
            }
            self.drain_events();
        }
        Ok(())
    }

    /// The client once it can take a request, as Java's would send it: connected, or a
    /// ConnectionLoss (on `path`) once a connection attempt has failed or the session
    /// timeout passed without one.
    pub async fn ready(&mut self, path: &str) -> Result<Client, CliError> {
        let lost = || {
            CliError::new(output::wrapper_message(
                zk_client::ErrorCode::ConnectionLoss,
                Some(path),
            ))
        };
        let Some(c) = self.client.clone() else {
            return Err(lost());
        };
        let deadline = Instant::now() + Duration::from_millis(self.opts.timeout_ms.max(1));
        loop {
            let s = c.state();
            if s.is_connected() {
                break;
            }
            if s.is_terminal() {
                let e = match s {
                    SessionState::Expired => Error::SessionExpired,
                    SessionState::AuthFailed => Error::AuthFailed,
                    _ => Error::ConnectionLoss,
                };
                return Err(CliError::wrap(&e, path));
            }
            if c.last_connect_error().is_some() || Instant::now() >= deadline {
                self.drain_events();
                return Err(lost());
            }
            let mut w = c.state_watch();
            let _ = tokio::time::timeout(Duration::from_millis(20), w.changed()).await;
        }
        self.drain_events();
        Ok(c)
    }

    /// Prints every event already received (before a command runs or the shell exits,
    /// so output keeps the order in which things happened).
    pub fn drain_events(&mut self) {
        while let Some(ev) = self.next_event().now_or_never().flatten() {
            self.print_event(&ev);
        }
    }

    /// The next event of the session (watches, persistent ones included, and state
    /// changes); `None` once the session can produce no more.
    pub async fn next_event(&mut self) -> Option<WatchedEvent> {
        let ev = self.events.as_mut()?.recv().await;
        if ev.is_none() {
            self.events = None;
        }
        ev
    }

    /// Prints an event as zkCli's watcher does, unless `printwatches off`.
    pub fn print_event(&mut self, ev: &WatchedEvent) {
        if self.print_watches {
            self.printer.print(output::watcher_block(ev));
        }
    }

    /// `close`: ends the session and prints what its watcher saw, Closed last; true if
    /// that Closed event came.
    pub async fn close(&mut self) -> bool {
        let Some(c) = self.client.clone() else {
            return false;
        };
        let mut closed = false;
        let _ = tokio::time::timeout(Duration::from_secs(5), c.close()).await;
        if let Some(mut events) = self.events.take() {
            while let Ok(Some(ev)) =
                tokio::time::timeout(Duration::from_secs(2), events.recv()).await
            {
                self.print_event(&ev);
                if ev.event_type == EventType::None && ev.state.is_terminal() {
                    closed = true;
                    break;
                }
            }
        }
        closed
    }

    /// `quit` and end of input: prints what already arrived, then ends the session
    /// without printing more (Java exits as it closes).
    pub async fn shutdown(&mut self) {
        self.drain_events();
        if let Some(c) = self.client.take() {
            let _ = tokio::time::timeout(Duration::from_secs(2), c.close()).await;
        }
    }

    /// After a one-shot command: ends the session, printing nothing more (zkCli exits
    /// straight after the command).
    pub async fn shutdown_quietly(&mut self) {
        if let Some(c) = self.client.take() {
            let _ = tokio::time::timeout(Duration::from_secs(2), c.close()).await;
        }
    }
}
