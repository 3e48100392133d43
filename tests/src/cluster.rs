//! A private PostgreSQL server for tests that stop and start the database under a
//! running hub. The shared server the suite uses must never be restarted (other
//! tests, and other people's, are using it), so such a test gets a cluster of its own:
//! `initdb` into a scratch folder, a random free port, `pg_ctl` to stop and start it.
//!
//! PostgreSQL refuses to run as root, and tests often run as root; then the cluster
//! is run as the `postgres` user (`runuser`). Without the PostgreSQL binaries the test
//! is skipped outside CI and fails under `CI=true`, like every test that needs a tool.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};

static NEXT: AtomicU64 = AtomicU64::new(0);

/// A PostgreSQL cluster owned by one test; stopped and deleted on drop.
pub struct PrivatePostgres {
    server: Server,
}

/// Where the cluster lives and how to run its programs.
#[derive(Clone)]
struct Server {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl PrivatePostgres {
    /// Creates and starts a cluster, or says why not: `None` (with a `SKIPPED` line)
    /// outside CI when PostgreSQL is not installed; a panic under `CI=true`.
    pub async fn start(test: &str) -> Option<PrivatePostgres> {
        let Some(bin) = find_bin() else {
            skip_or_fail(
                test,
                "PostgreSQL server binaries (initdb, pg_ctl) not found",
            );
            return None;
        };
        let test = test.to_owned();
        tokio::task::spawn_blocking(move || Self::create(bin, &test))
            .await
            .expect("cluster setup did not panic")
    }

    fn create(bin: PathBuf, test: &str) -> Option<PrivatePostgres> {
        // `id -u` prints 0 for root.
        let as_postgres = run(Command::new("id").arg("-u"))
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false);
        let dir = std::env::temp_dir().join(format!(
            "hub-pg-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        let port = free_port();
        let cluster = Server {
            bin,
            dir,
            port,
            as_postgres,
        };
        let _ = std::fs::remove_dir_all(&cluster.dir);
        std::fs::create_dir_all(&cluster.dir).expect("create cluster folder");
        if as_postgres {
            let chowned = run(Command::new("chown")
                .arg("postgres:postgres")
                .arg(&cluster.dir));
            if chowned.is_none() {
                skip_or_fail(test, "cannot hand a folder to the postgres user");
                return None;
            }
        }
        let data = cluster.data();
        let initdb = cluster.command("initdb", |c| {
            c.args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
            ])
            .arg(&data);
        });
        if initdb.is_none() {
            skip_or_fail(test, "initdb failed (see above)");
            return None;
        }
        if !cluster.start_server() {
            skip_or_fail(test, "the private PostgreSQL did not start (see above)");
            return None;
        }
        Some(PrivatePostgres { server: cluster })
    }

    /// `postgres://…` for the cluster's `postgres` database.
    pub fn url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres",
            self.server.port
        )
    }

    /// Stops the server (`pg_ctl stop -m fast`: sessions are ended at once, as in a
    /// failover or an operator's restart) and waits until it is down.
    pub async fn stop(&self) {
        let server = self.server.clone();
        let stopped = tokio::task::spawn_blocking(move || server.stop_server("fast"))
            .await
            .expect("pg_ctl did not panic");
        assert!(stopped, "the private PostgreSQL did not stop");
    }

    /// Starts the server again on the same port and waits until it accepts connections.
    pub async fn restart(&self) {
        let server = self.server.clone();
        let started = tokio::task::spawn_blocking(move || server.start_server())
            .await
            .expect("pg_ctl did not panic");
        assert!(started, "the private PostgreSQL did not start again");
    }
}

impl Server {
    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn start_server(&self) -> bool {
        let data = self.data();
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("server.log");
        self.command("pg_ctl", |c| {
            c.arg("start")
                .arg("-w")
                .arg("-t")
                .arg("60")
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(&log)
                .arg("-o")
                .arg(&options);
        })
        .is_some()
    }

    fn stop_server(&self, mode: &str) -> bool {
        let data = self.data();
        self.command("pg_ctl", |c| {
            c.args(["stop", "-w", "-t", "60", "-m", mode, "-D"])
                .arg(&data);
        })
        .is_some()
    }

    /// Runs one of the server's programs, as `postgres` when we are root.
    fn command(&self, program: &str, args: impl FnOnce(&mut Command)) -> Option<Output> {
        let path = self.bin.join(program);
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        };
        command.current_dir(&self.dir);
        args(&mut command);
        run(&mut command)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self.server.stop_server("immediate");
        let _ = std::fs::remove_dir_all(&self.server.dir);
    }
}

/// The newest `/usr/lib/postgresql/<version>/bin` with `initdb`, or `initdb` on `PATH`.
fn find_bin() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths).find(|dir| Path::new(dir).join("initdb").exists())
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Runs a command; its output is printed when it fails, and `None` returned.
fn run(command: &mut Command) -> Option<Output> {
    match command.output() {
        Ok(output) if output.status.success() => Some(output),
        Ok(output) => {
            eprintln!(
                "{command:?} failed ({}):\n{}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            None
        }
        Err(err) => {
            eprintln!("{command:?} could not run: {err}");
            None
        }
    }
}

fn skip_or_fail(test: &str, why: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: {why} (tests may not skip in CI)");
    }
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!("SKIPPED {test}: {why}\n").as_bytes(),
    );
}
