//! Every log line the hubs of a test process write, kept for tests to read, and
//! checked as it is written against the secrets the tests have handed out.
//!
//! The tracing subscriber is global to the process, so one is installed for the whole
//! test binary, by the first hub spawned ([`install`]): JSON lines at `info` (or as
//! `RUST_LOG` says), into memory, and to stderr as well when `TEST_LOG` is set. Every
//! hub in the binary therefore logs here, whichever test spawned it.
//!
//! **Secrets.** Every token the helpers sign is registered ([`register_secret`]), and a
//! test that sends other secret values — raw pupil numbers, say — registers those. Each
//! line is checked against every registered secret as it is written; a line holding one
//! is recorded as a leak, and from then on every helper request of every test fails
//! ([`assert_no_leaks`]), naming the line. So the whole suite, not one test, proves that
//! no log line carries a token or a pupil number.
//!
//! For one test's own lines, take a [`mark`] before its requests and read
//! [`lines_since`] after, or pick them out by the `x-request-id` the hub returned
//! ([`lines_for_request`]).

use std::io::Write;
use std::sync::{Mutex, OnceLock};

use tracing_subscriber::fmt::MakeWriter;

struct Capture {
    lines: Mutex<Vec<String>>,
    secrets: Mutex<Vec<String>>,
    leaks: Mutex<Vec<String>>,
    echo: bool,
}

static CAPTURE: OnceLock<Capture> = OnceLock::new();

fn capture() -> &'static Capture {
    CAPTURE.get_or_init(|| Capture {
        lines: Mutex::new(Vec::new()),
        secrets: Mutex::new(Vec::new()),
        leaks: Mutex::new(Vec::new()),
        echo: std::env::var("TEST_LOG").is_ok(),
    })
}

/// Installs the capturing subscriber for the process (the first call does; later
/// calls do nothing).
pub fn install() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        let _ = tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_writer(LineWriter)
            .try_init();
    });
}

/// A value that must never appear in a log line (a token, a raw pupil number).
/// Values shorter than 8 characters are ignored: they would match by accident.
pub fn register_secret(secret: impl Into<String>) {
    let secret = secret.into();
    if secret.len() < 8 {
        return;
    }
    if let Ok(mut secrets) = capture().secrets.lock() {
        secrets.push(secret);
    }
}

/// Fails the calling test if any line logged so far held a registered secret.
pub fn assert_no_leaks() {
    let leaks = capture()
        .leaks
        .lock()
        .map(|l| l.clone())
        .unwrap_or_default();
    assert!(
        leaks.is_empty(),
        "a log line held a token or other registered secret:\n{}",
        leaks.join("\n")
    );
}

/// The number of lines captured so far: pass it to [`lines_since`].
pub fn mark() -> usize {
    capture().lines.lock().map(|l| l.len()).unwrap_or(0)
}

/// Every line captured after `mark` (from every hub in the process).
pub fn lines_since(mark: usize) -> Vec<String> {
    capture()
        .lines
        .lock()
        .map(|l| l.get(mark..).unwrap_or_default().to_vec())
        .unwrap_or_default()
}

/// Every line logged while serving the request with this `x-request-id`.
pub fn lines_for_request(request_id: &str) -> Vec<String> {
    let needle = format!("\"request_id\":\"{request_id}\"");
    capture()
        .lines
        .lock()
        .map(|l| {
            l.iter()
                .filter(|line| line.contains(&needle))
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

fn record(line: String) {
    let capture = capture();
    if capture.echo {
        let _ = writeln!(std::io::stderr(), "{line}");
    }
    let leaked = capture
        .secrets
        .lock()
        .map(|secrets| secrets.iter().any(|s| line.contains(s.as_str())))
        .unwrap_or(false);
    if leaked && let Ok(mut leaks) = capture.leaks.lock() {
        leaks.push(line.clone());
    }
    if let Ok(mut lines) = capture.lines.lock() {
        lines.push(line);
    }
}

#[derive(Clone, Copy)]
struct LineWriter;

impl<'a> MakeWriter<'a> for LineWriter {
    type Writer = LineBuffer;

    fn make_writer(&'a self) -> LineBuffer {
        LineBuffer(Vec::new())
    }
}

/// One event's output; its lines are recorded when the formatter drops it.
struct LineBuffer(Vec<u8>);

impl Write for LineBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineBuffer {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.0);
        for line in text.lines().filter(|l| !l.is_empty()) {
            record(line.to_owned());
        }
    }
}
