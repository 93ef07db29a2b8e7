//! Everything the stack logs during a test, kept in memory (JSON lines, as in Lambda; callhook's
//! own down to `debug`, the libraries' at the production level `info`), so a test can search it
//! for secrets.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

static LOGS: OnceLock<Buffer> = OnceLock::new();

/// Starts capturing this process's logs (once; later calls do nothing).
pub fn capture() {
    capture_with("info,callhook=debug".parse().unwrap());
}

/// Starts capturing this process's logs through `filter` (once; later calls do nothing): the
/// functions' own ([`callhook::handlers::log_filter`]) or any other filter by target.
pub fn capture_with(filter: tracing_subscriber::filter::Targets) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    LOGS.get_or_init(|| {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        tracing_subscriber::fmt()
            .json()
            .with_max_level(tracing_subscriber::filter::LevelFilter::TRACE)
            .with_writer(move || writer.clone())
            .finish()
            .with(filter)
            .init();
        buffer
    });
}

/// What was logged since [`capture`].
pub fn captured() -> String {
    LOGS.get()
        .map(|b| String::from_utf8_lossy(&b.0.lock().unwrap()).into_owned())
        .unwrap_or_default()
}

/// How many times any of `secrets` appears in what was logged.
pub fn secret_hits(secrets: &[&str]) -> usize {
    let logs = captured();
    secrets
        .iter()
        .map(|secret| logs.matches(secret).count())
        .sum()
}
