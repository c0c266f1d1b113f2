//! Every log line a test binary writes, kept in memory so a test can check what an operator
//! would read (its tests share one tracing subscriber). Included with `mod log_capture;`.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

/// The binary's log so far; the first call installs the capturing subscriber (INFO and
/// up, no ANSI codes).
pub fn log() -> Arc<Mutex<Vec<u8>>> {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = buf.clone();
        let _ = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || Capture(sink.clone()))
            .try_init();
        buf
    })
    .clone()
}

/// The log so far, as text.
pub fn log_text() -> String {
    String::from_utf8_lossy(&log().lock().unwrap_or_else(|e| e.into_inner())).to_string()
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
