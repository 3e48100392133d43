//! The real hub as a separate process: `hub-cli serve` (the hub's own command line,
//! see `src/bin/hub-cli.rs`) on a [`TestHub`]'s database and settings.
//!
//! Two things need a process of their own rather than an in-process `TestHub`: trace
//! export, because the tracing subscriber is global to a process and the test
//! process's is the log capture (see [`crate::logs`]); and memory figures, because
//! `/proc/<pid>/status` must describe the hub alone, not the test harness around it.
//! Memory is read from `/proc`, so those helpers are Linux-only.

use std::process::ExitStatus;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Child;

use crate::TestHub;

/// How long a hub process may take to start listening, or to exit after SIGTERM.
const PATIENCE: Duration = Duration::from_secs(60);

/// A running `hub-cli serve`; killed if dropped before [`HubProcess::terminate`].
pub struct HubProcess {
    child: Child,
    pid: u32,
    /// `http://127.0.0.1:<port>`, as the process printed it.
    pub address: String,
    pub client: reqwest::Client,
    /// Everything the process has written to stderr (its log lines) so far: drained
    /// continuously, so a chatty hub never blocks on a full pipe.
    stderr: Arc<Mutex<String>>,
}

/// Resident memory of a process, from `/proc/<pid>/status`, in KiB.
#[derive(Clone, Copy, Debug)]
pub struct Memory {
    /// `VmRSS`: resident now.
    pub rss_kib: u64,
    /// `VmHWM`: the peak resident size since start (or since [`HubProcess::reset_peak`]).
    pub peak_kib: u64,
}

impl HubProcess {
    /// Starts `program serve` (`program` is `env!("CARGO_BIN_EXE_hub-cli")`) with `hub`'s
    /// settings — its database, its Redis prefix — plus `settings`, on a random port,
    /// and waits until it says where it listens.
    pub async fn start(hub: &TestHub, program: &str, settings: &[(&str, &str)]) -> HubProcess {
        let mut command = hub.cli(program, &["serve"]);
        command.env("HUB_ADDR", "127.0.0.1:0");
        for (key, value) in settings {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("start hub-cli serve");
        let pid = child.id().expect("a running child has a pid");

        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err = child.stderr.take().expect("stderr is piped");
        let sink = stderr.clone();
        tokio::spawn(async move {
            let mut chunk = vec![0u8; 8192];
            while let Ok(n) = err.read(&mut chunk).await {
                if n == 0 {
                    break;
                }
                if let Ok(mut text) = sink.lock() {
                    text.push_str(&String::from_utf8_lossy(&chunk[..n]));
                }
            }
        });

        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        let address = tokio::time::timeout(PATIENCE, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(rest) = line.split_once("listening on ").map(|(_, a)| a) {
                    return Some(rest.trim().to_owned());
                }
            }
            None
        })
        .await
        .ok()
        .flatten();
        let Some(address) = address else {
            let logs = stderr.lock().map(|s| s.clone()).unwrap_or_default();
            panic!("hub-cli serve did not start listening; its stderr:\n{logs}");
        };
        // The rest of stdout (the GraphiQL hint) is read and dropped for the same reason
        // stderr is drained.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        HubProcess {
            child,
            pid,
            address,
            client: reqwest::Client::new(),
            stderr,
        }
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// POSTs raw bytes to `/graphql` with a content type and, when given, a bearer token.
    pub async fn post(
        &self,
        token: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .post(format!("{}/graphql", self.address))
            .header("content-type", content_type)
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("the hub process answered")
    }

    /// POSTs `{"query": document}`; returns the response.
    pub async fn query(&self, token: Option<&str>, document: &str) -> reqwest::Response {
        self.post(
            token,
            "application/json",
            crate::hostile::query_body(document),
        )
        .await
    }

    /// The process's log lines so far.
    pub fn logs(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The process's resident memory now and at its peak (Linux only).
    pub fn memory(&self) -> Memory {
        let path = format!("/proc/{}/status", self.pid);
        let status = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{path}: {e} (memory figures need Linux /proc)"));
        let field = |name: &str| -> u64 {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or_else(|| panic!("{name} missing from {path}"))
        };
        Memory {
            rss_kib: field("VmRSS"),
            peak_kib: field("VmHWM"),
        }
    }

    /// Resets the peak (`VmHWM`) to the current resident size, so that the next
    /// [`memory`](Self::memory) reports the peak of what happened in between: `5` written
    /// to `/proc/<pid>/clear_refs` (Linux only).
    pub fn reset_peak(&self) {
        let path = format!("/proc/{}/clear_refs", self.pid);
        std::fs::write(&path, "5").unwrap_or_else(|e| panic!("{path}: {e}"));
    }

    /// Sends SIGTERM, as a process manager stopping the hub would, and waits for the
    /// process to exit; returns how it exited and everything it logged.
    pub async fn terminate(mut self) -> (ExitStatus, String) {
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM {} failed", self.pid);
        let status = tokio::time::timeout(PATIENCE, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("the hub did not exit within {PATIENCE:?} of SIGTERM"))
            .expect("wait for the hub");
        // stderr reaches end of file when the process exits; give the drain its last
        // read.
        for _ in 0..100 {
            if Arc::strong_count(&self.stderr) == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        (status, self.logs())
    }
}
