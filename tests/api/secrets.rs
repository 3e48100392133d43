//! Secrets at start, through the real command line as a separate process: a pupil-key
//! secret too short to be safe stops the hub before it listens.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

const CLI: &str = env!("CARGO_BIN_EXE_hub-cli");

/// A fresh working directory for one test's process.
fn workdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "baseline-hub-secrets-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs the command line in `dir` with only `vars` set (no `DATABASE_URL`: the embedded
/// default). A hub that should have refused to start is stopped after a minute.
async fn run(dir: &Path, args: &[&str], vars: &[(&str, &str)]) -> Output {
    let mut command = tokio::process::Command::new(CLI);
    command
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(vars.iter().copied())
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("the command ends by itself")
        .expect("run the command line")
}

#[tokio::test]
async fn a_short_pupil_key_secret_stops_the_hub_starting() {
    let dir = workdir("short");
    let database = format!("sqlite://{}/hub.sqlite?mode=rwc", dir.display());
    let output = run(
        &dir,
        &["serve"],
        &[
            ("DATABASE_URL", &database),
            ("HUB_ADDR", "127.0.0.1:0"),
            ("HUB_SEED", "none"),
            ("JWT_SECRET", hub_tests::JWT_SECRET),
            ("PUPIL_KEY_SECRET", "a"),
        ],
    )
    .await;
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("PUPIL_KEY_SECRET must be at least 32 bytes (got 1)"),
        "{stderr}"
    );
}
