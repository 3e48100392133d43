//! Real Apollo tooling for the federation tests: Node.js with the packages pinned in
//! `tests/federation/package-lock.json`, installed with `npm ci` into the git-ignored
//! `tests/.node` and reused while the lockfile is unchanged.
//!
//! Like the Redis tests (see [`crate::redis_url`]), a test that cannot have the tooling
//! — no `node` or `npm`, Node older than 20, the npm registry unreachable — prints
//! `SKIPPED …` outside CI and fails under `CI=true`, so CI can never pass by skipping.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// The oldest Node.js major version `@apollo/server` 5 runs on.
const MIN_NODE_MAJOR: u32 = 20;

/// Installed tooling: run scripts from `tests/federation` with its packages.
pub struct Apollo {
    node_modules: PathBuf,
}

/// The tooling, installed on first use in this process; `None` (after printing why)
/// when it cannot be had outside CI.
pub fn apollo(test: &str) -> Option<&'static Apollo> {
    static INSTALLED: OnceLock<Result<Apollo, String>> = OnceLock::new();
    match INSTALLED.get_or_init(install) {
        Ok(apollo) => Some(apollo),
        Err(why) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{test}: {why} (tests may not skip in CI)")
        }
        Err(why) => {
            // Straight to stderr: the test harness captures `eprintln!`, and a skip must
            // be seen.
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
            None
        }
    }
}

impl Apollo {
    /// Runs `tests/federation/<script>` with `node`, the installed packages on its
    /// module path and `env` set, and returns what it printed and its exit status.
    /// Blocking: call it from `spawn_blocking` so the hub it talks to keeps serving.
    pub fn run(&self, script: &str, env: &[(&str, String)]) -> Output {
        let mut command = Command::new("node");
        command
            .arg(project_dir().join(script))
            .env("NODE_PATH", &self.node_modules)
            .stdin(Stdio::null());
        for (key, value) in env {
            command.env(key, value);
        }
        command
            .output()
            .unwrap_or_else(|e| panic!("could not run node {script}: {e}"))
    }
}

/// `tests/federation`: `package.json`, `package-lock.json` and the scripts.
fn project_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("federation")
}

/// `tests/.node`, git-ignored.
fn install_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(".node")
}

/// Checks Node and installs the pinned packages unless the same lockfile is already
/// installed. The marker is written last, so an interrupted install is redone.
fn install() -> Result<Apollo, String> {
    let version = run_tool(Command::new("node").arg("--version"), "node --version")?;
    let major = version
        .trim()
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse::<u32>().ok())
        .ok_or_else(|| format!("cannot read the Node.js version from {version:?}"))?;
    if major < MIN_NODE_MAJOR {
        return Err(format!(
            "needs Node.js {MIN_NODE_MAJOR} or later, found {}",
            version.trim()
        ));
    }
    let project = project_dir();
    let target = install_dir();
    let lockfile = std::fs::read(project.join("package-lock.json"))
        .map_err(|e| format!("cannot read tests/federation/package-lock.json: {e}"))?;
    let marker = target.join(".installed-lockfile");
    let node_modules = target.join("node_modules");
    if std::fs::read(&marker).is_ok_and(|installed| installed == lockfile) && node_modules.is_dir()
    {
        return Ok(Apollo { node_modules });
    }
    std::fs::create_dir_all(&target).map_err(|e| format!("cannot create tests/.node: {e}"))?;
    let _ = std::fs::remove_file(&marker);
    for file in ["package.json", "package-lock.json"] {
        std::fs::copy(project.join(file), target.join(file))
            .map_err(|e| format!("cannot copy {file} to tests/.node: {e}"))?;
    }
    run_tool(
        Command::new("npm")
            .arg("ci")
            .arg("--prefix")
            .arg(&target)
            // Nothing these packages need is built at install time; no script runs.
            .args([
                "--ignore-scripts",
                "--prefer-offline",
                "--no-audit",
                "--no-fund",
            ])
            .args(["--loglevel", "error"]),
        "npm ci (the npm registry may be unreachable)",
    )?;
    std::fs::write(&marker, &lockfile).map_err(|e| format!("cannot write the marker: {e}"))?;
    Ok(Apollo { node_modules })
}

/// Runs a tool to completion; its stdout, or why it failed (with the end of stderr).
fn run_tool(command: &mut Command, what: &str) -> Result<String, String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: cannot run it: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(15).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        Err(format!(
            "{what} failed ({}):\n{}",
            output.status,
            tail.join("\n")
        ))
    }
}
