//! Secrets at start, through the real command line as a separate process: the embedded
//! default keeps its generated secrets where only the hub's user can read them, and a
//! pupil-key secret too short to be safe stops the hub before it listens.

use std::os::unix::fs::PermissionsExt as _;
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

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test]
async fn development_secrets_are_readable_by_their_owner_only() {
    let dir = workdir("fresh");
    let output = run(&dir, &["migrate"], &[]).await;
    assert!(output.status.success(), "{output:?}");
    let data = dir.join("data");
    assert_eq!(mode(&data), 0o700, "the data directory");
    for secret in ["dev-jwt-secret", "dev-pupil-key-secret"] {
        assert_eq!(mode(&data.join(secret)), 0o600, "{secret}");
    }

    // Left readable by everyone by an earlier version: tightened, and kept.
    let dir = workdir("earlier");
    let data = dir.join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let secret = data.join("dev-jwt-secret");
    let kept = "an-earlier-development-secret-of-64-characters-0123456789abcdef";
    std::fs::write(&secret, kept).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    let output = run(&dir, &["migrate"], &[]).await;
    assert!(output.status.success(), "{output:?}");
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&secret), 0o600);
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), kept);
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
