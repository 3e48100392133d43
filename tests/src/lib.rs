//! `TestHub`: the real hub, built from configuration, on a random port, with its own
//! database — and typed helpers to talk to it the way a client would.
//!
//! The backend follows the environment: with `DATABASE_URL=postgres://…` every hub gets
//! its own PostgreSQL database, otherwise its own SQLite file. Either way the demo data
//! (the `test` scale) is generated once per test process into a template and copied per
//! hub, so tests run in parallel and never see each other's writes.
//!
//! Every hub's log lines are captured (see [`logs`]) and checked against the tokens the
//! helpers sign; set `TEST_LOG=1` to see them as well. [`cluster`] gives a test a
//! PostgreSQL server of its own, for stopping and starting under a hub; [`process`]
//! runs the hub as a separate process on a test hub's database; [`hostile`] builds the
//! hostile requests that several tests and a bench send.

pub mod cluster;
pub mod hostile;
pub mod logs;
pub mod node;
pub mod process;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use baseline_hub::config::Config;
use baseline_hub::startup::Application;
use baseline_hub::{auth, db, seed};
use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};
use tokio::sync::{OnceCell, oneshot};

/// The `x-request-id` the hub answered with.
pub fn request_id(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("every response carries x-request-id")
        .to_owned()
}

/// The HS256 secret every test hub verifies with.
pub const JWT_SECRET: &str = "test-jwt-secret-that-is-at-least-32-bytes-long";
/// The key of the pupil numbers' hash every test hub (and its template data) uses.
pub const PUPIL_KEY_SECRET: &str = "test-pupil-key-secret-of-at-least-32-bytes";

static NEXT_ID: AtomicU64 = AtomicU64::new(0);
static TEMPLATE: OnceCell<Template> = OnceCell::const_new();

enum Template {
    Sqlite(PathBuf),
    Postgres { base_url: String, name: String },
}

/// The Redis a Redis-specific test may use: `TEST_REDIS_URL`, else `REDIS_URL` (which
/// also puts every hub of the suite on Redis). Outside CI a test that needs it says it
/// was skipped; under `CI=true` having neither fails the test, so CI can never pass by
/// skipping.
pub fn redis_url(test: &str) -> Option<String> {
    let configured = ["TEST_REDIS_URL", "REDIS_URL"]
        .into_iter()
        .find_map(|name| std::env::var(name).ok().filter(|u| !u.is_empty()));
    match configured {
        Some(url) => Some(url),
        None if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!(
                "{test}: set TEST_REDIS_URL or REDIS_URL when CI=true (tests may not skip in CI)"
            )
        }
        None => {
            // Straight to stderr: the test harness captures `eprintln!`, and a skip must
            // be seen.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: needs Redis; set TEST_REDIS_URL=redis://127.0.0.1:6379 to run it"
            );
            None
        }
    }
}

/// Which database the tests run against.
fn postgres_url() -> Option<String> {
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| u.starts_with("postgres"))
}

/// This process's folder for SQLite copies of the test database. A test process ends
/// without a chance to remove it (a run leaves about 3 GB), so the first call removes
/// the folders of earlier runs whose process is gone, as `drop_stale_databases` does
/// for PostgreSQL: two runs in a row, as CI makes, would otherwise fill a small disk.
fn scratch_dir() -> PathBuf {
    static SWEPT: std::sync::Once = std::sync::Once::new();
    let temp = std::env::temp_dir();
    SWEPT.call_once(|| {
        let Ok(entries) = std::fs::read_dir(&temp) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name
                .to_str()
                .and_then(|n| n.strip_prefix("baseline-hub-tests-"))
                .and_then(|pid| pid.parse::<u32>().ok())
            else {
                continue;
            };
            if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    });
    let dir = temp.join(format!("baseline-hub-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

fn base_vars() -> HashMap<String, String> {
    [
        ("HUB_ADDR", "127.0.0.1:0"),
        ("HUB_SEED", "none"),
        ("JWT_SECRET", JWT_SECRET),
        ("PUPIL_KEY_SECRET", PUPIL_KEY_SECRET),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// Seeds the `test` scale once per process.
async fn template() -> &'static Template {
    TEMPLATE
        .get_or_init(|| async {
            let mut vars = base_vars();
            let template = match postgres_url() {
                Some(base_url) => {
                    let name = format!("hub_tpl_{}", std::process::id());
                    let admin = Database::connect(&base_url).await.unwrap_or_else(|e| {
                        panic!(
                            "DATABASE_URL is set but PostgreSQL is unreachable ({base_url}): {e}"
                        )
                    });
                    drop_stale_databases(&admin).await;
                    admin
                        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await
                        .expect("drop old template");
                    admin
                        .execute_unprepared(&format!("CREATE DATABASE {name}"))
                        .await
                        .expect("create template");
                    vars.insert("DATABASE_URL".into(), with_database(&base_url, &name));
                    Template::Postgres { base_url, name }
                }
                None => {
                    let path = scratch_dir().join("template.sqlite");
                    let _ = std::fs::remove_file(&path);
                    vars.insert(
                        "DATABASE_URL".into(),
                        format!("sqlite://{}?mode=rwc", path.display()),
                    );
                    Template::Sqlite(path)
                }
            };
            let config = Config::from_vars(&vars).expect("template config");
            let conn = db::connect_unbounded(&config)
                .await
                .expect("connect template");
            db::migrate(&conn).await.expect("migrate template");
            seed::seed(
                &conn,
                seed::Scale::Test,
                PUPIL_KEY_SECRET.as_bytes(),
                &|_| {},
            )
            .await
            .expect("seed template");
            if matches!(template, Template::Sqlite(_)) {
                // Fold the write-ahead log into the main file so a plain copy is complete.
                conn.execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)")
                    .await
                    .expect("checkpoint");
            }
            conn.close().await.expect("close template");
            template
        })
        .await
}

/// Drops databases left by earlier test processes that are no longer running.
async fn drop_stale_databases(admin: &sea_orm::DatabaseConnection) {
    let rows = admin
        .query_all_raw(sea_orm::Statement::from_string(
            admin.get_database_backend(),
            "SELECT datname FROM pg_database WHERE datname LIKE 'hub_t%'",
        ))
        .await
        .unwrap_or_default();
    for row in rows {
        let Ok(name) = row.try_get::<String>("", "datname") else {
            continue;
        };
        let pid = name.split('_').nth(2).and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid
            && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await;
        }
    }
}

fn with_database(base_url: &str, name: &str) -> String {
    let (prefix, rest) = base_url.rsplit_once('/').unwrap_or((base_url, ""));
    let query = rest
        .split_once('?')
        .map(|(_, q)| format!("?{q}"))
        .unwrap_or_default();
    format!("{prefix}/{name}{query}")
}

/// A running hub.
pub struct TestHub {
    pub address: String,
    /// The hub's own database, for tests that arrange rows a client cannot write (an
    /// agreement that has already expired) or check what the hub stored.
    pub database_url: String,
    pub client: reqwest::Client,
    /// The settings the hub was started with, for a command-line process that must
    /// act on the same database and cache (`TestHub::cli`).
    pub settings: HashMap<String, String>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    postgres: Option<(String, String)>,
}

impl TestHub {
    /// A hub with the default test configuration.
    pub async fn spawn() -> TestHub {
        Self::spawn_with(&[]).await
    }

    /// A hub with extra settings (e.g. `("MAX_PAGE_SIZE", "10")`).
    pub async fn spawn_with(settings: &[(&str, &str)]) -> TestHub {
        let id = NEXT_ID.fetch_add(1, Ordering::SeqCst);
        let mut vars = base_vars();
        let mut postgres = None;
        match template().await {
            Template::Sqlite(path) => {
                let copy = scratch_dir().join(format!("hub-{id}.sqlite"));
                std::fs::copy(path, &copy).expect("copy template");
                vars.insert(
                    "DATABASE_URL".into(),
                    format!("sqlite://{}?mode=rwc", copy.display()),
                );
            }
            Template::Postgres { base_url, name } => {
                let db_name = format!("hub_t_{}_{id}", std::process::id());
                let admin = Database::connect(base_url).await.expect("connect admin");
                admin
                    .execute_unprepared(&format!("CREATE DATABASE {db_name} TEMPLATE {name}"))
                    .await
                    .expect("create test database from template");
                admin.close().await.ok();
                vars.insert("DATABASE_URL".into(), with_database(base_url, &db_name));
                postgres = Some((base_url.clone(), db_name));
            }
        }
        // With REDIS_URL set the whole suite runs with the Redis tier, each hub under
        // its own key prefix so parallel tests never share entries.
        if let Ok(url) = std::env::var("REDIS_URL") {
            vars.insert("REDIS_URL".into(), url);
            vars.insert(
                "CACHE_REDIS_PREFIX".into(),
                format!("hub-test-{}-{id}", std::process::id()),
            );
        }
        for (key, value) in settings {
            vars.insert((*key).to_owned(), (*value).to_owned());
        }
        let shared_redis = std::env::var("REDIS_URL").ok();
        let uses_shared_redis = shared_redis.is_some()
            && vars.get("REDIS_URL") == shared_redis.as_ref()
            && vars.get("CACHE_TTL_SECONDS").is_none_or(|ttl| ttl != "0");
        let mut hub = Self::start(vars).await;
        hub.postgres = postgres;
        if uses_shared_redis {
            // Until subscribed, a hub answers everything from the database; tests expect
            // a hub that caches from its first request.
            hub.wait_for_redis().await;
        }
        hub
    }

    /// A hub on a database the test provides (empty or not: `HUB_SEED=test` in
    /// `settings` loads the test data into an empty one), with no Redis unless
    /// `settings` names one.
    pub async fn spawn_on(database_url: &str, settings: &[(&str, &str)]) -> TestHub {
        let mut vars = base_vars();
        vars.insert("DATABASE_URL".into(), database_url.to_owned());
        for (key, value) in settings {
            vars.insert((*key).to_owned(), (*value).to_owned());
        }
        Self::start(vars).await
    }

    /// A second hub on this hub's database (and, given the same `CACHE_REDIS_PREFIX`,
    /// its Redis entries): two instances behind one load balancer.
    pub async fn spawn_sibling(&self, settings: &[(&str, &str)]) -> TestHub {
        let mut vars = base_vars();
        vars.insert("DATABASE_URL".into(), self.database_url.clone());
        for (key, value) in settings {
            vars.insert((*key).to_owned(), (*value).to_owned());
        }
        Self::start(vars).await
    }

    async fn start(vars: HashMap<String, String>) -> TestHub {
        logs::install();
        let database_url = vars["DATABASE_URL"].clone();
        let settings = vars.clone();
        let config = Config::from_vars(&vars).expect("valid test config");
        let app = Application::build(config).await.expect("hub starts");
        let address = format!("http://{}", app.local_addr());
        let (tx, rx) = oneshot::channel();
        let server = tokio::spawn(app.run_until_stopped(async {
            let _ = rx.await;
        }));
        TestHub {
            address,
            database_url,
            client: reqwest::Client::new(),
            settings,
            shutdown: Some(tx),
            server: Some(server),
            postgres: None,
        }
    }

    /// Sends the shutdown signal and waits for the server to finish, returning what
    /// `run_until_stopped` returned.
    pub async fn stop(&mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.server.take() {
            Some(server) => server.await.expect("server task did not panic"),
            None => Ok(()),
        }
    }

    /// The hub's command line as a separate process with this hub's settings (same
    /// database, same cache prefix), not yet started. `program` is the `hub-cli`
    /// binary: `env!("CARGO_BIN_EXE_hub-cli")`, which cargo sets for test targets only.
    pub fn cli(&self, program: &str, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(program);
        command
            .args(args)
            .env_clear()
            .envs(self.settings.iter().filter(|(k, _)| *k != "HUB_ADDR"))
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        command
    }

    /// A connection to the hub's own database.
    pub async fn db(&self) -> sea_orm::DatabaseConnection {
        // Statement logging off: the test's own SQL may name values (a raw pupil
        // number it searches for) that the log check forbids in the hub's lines.
        let mut options = sea_orm::ConnectOptions::new(self.database_url.clone());
        options.sqlx_logging(false);
        Database::connect(options)
            .await
            .expect("connect to the test hub's database")
    }

    /// Runs one SQL statement on the hub's own database and returns the rows it
    /// changed: how a test arranges data that no mutation writes (yet), such as a
    /// figure the sync path would deliver.
    pub async fn execute(&self, sql: &str) -> u64 {
        let db = self.db().await;
        let result = db
            .execute_unprepared(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        db.close().await.ok();
        result.rows_affected()
    }

    /// The one whole number a query returns (a `COUNT(*)`), read straight from the
    /// hub's database: how a test checks what was stored, beyond what the API shows.
    pub async fn scalar(&self, sql: &str) -> i64 {
        let db = self.db().await;
        let row = db
            .query_one_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                sql,
            ))
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .unwrap_or_else(|| panic!("{sql}: no row"));
        db.close().await.ok();
        row.try_get_by_index::<i64>(0)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// A token signed with the test secret for `org` (`KIND:CODE`) and one role.
    pub fn token_for(&self, org: &str, role: &str) -> String {
        token(org, &[role], 3600)
    }

    /// POSTs a GraphQL request and returns the JSON body, asserting HTTP 200.
    pub async fn query(&self, token: Option<&str>, document: &str, variables: Value) -> Value {
        let response = self
            .post_graphql(token, &json!({ "query": document, "variables": variables }))
            .await;
        let status = response.status();
        let body: Value = response.json().await.expect("JSON body");
        assert_eq!(status, 200, "unexpected status; body: {body}");
        body
    }

    /// POSTs any JSON body to `/graphql`.
    pub async fn post_graphql(&self, token: Option<&str>, body: &Value) -> reqwest::Response {
        let mut request = self
            .client
            .post(format!("{}/graphql", self.address))
            .json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request sent");
        logs::assert_no_leaks();
        response
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        let response = self
            .client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("request sent");
        logs::assert_no_leaks();
        response
    }

    /// The hub's `hub_db_statements_total` counter, read from `/metrics`.
    pub async fn statements(&self) -> u64 {
        self.metric("hub_db_statements_total").await as u64
    }

    /// One unlabelled sample from `/metrics` (`name value`), or the sum of a labelled
    /// family's samples when given `name{`.
    pub async fn metric(&self, name: &str) -> f64 {
        let text = self
            .get("/metrics")
            .await
            .text()
            .await
            .expect("metrics body");
        let samples: Vec<f64> = text
            .lines()
            .filter_map(|l| {
                let rest = l.strip_prefix(name)?;
                let value = if name.ends_with('{') {
                    rest.split_once("} ")?.1
                } else {
                    rest.strip_prefix(' ')?
                };
                value.trim().parse().ok()
            })
            .collect();
        assert!(!samples.is_empty(), "{name} missing from /metrics");
        samples.iter().sum()
    }

    /// Waits (up to 10 s) until the hub's Redis tier is connected and subscribed.
    pub async fn wait_for_redis(&self) {
        for _ in 0..200 {
            if self.metric("hub_cache_redis_up").await == 1.0 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the hub did not connect to Redis within 10 s");
    }
}

impl Drop for TestHub {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some((base_url, name)) = self.postgres.take() {
            // Drop the database from a separate runtime: Drop cannot be async, and the
            // test's own runtime may be shutting down.
            let _ = std::thread::spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(async {
                    if let Ok(admin) = Database::connect(&base_url).await {
                        let _ = admin
                            .execute_unprepared(&format!(
                                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                            ))
                            .await;
                        let _ = admin.close().await;
                    }
                });
            })
            .join();
        }
    }
}

/// Signs a token with the test secret.
pub fn token(org: &str, roles: &[&str], ttl_secs: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64;
    let claims = auth::Claims {
        sub: "test-user".into(),
        org: org.into(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        exp: (now + ttl_secs).max(0) as u64,
        iat: Some(now as u64),
        iss: None,
        aud: None,
    };
    let token = auth::mint(JWT_SECRET.as_bytes(), &claims).expect("sign test token");
    register_token(&token);
    token
}

/// Registers a token's signature as a secret no log line may hold.
fn register_token(token: &str) {
    if let Some(signature) = token.rsplit('.').next() {
        logs::register_secret(signature);
    }
}

/// Seconds since the Unix epoch, for building claims.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// Signs arbitrary claims — including ones a well-behaved issuer would never produce,
/// such as a token without `exp` — with any header and key.
pub fn sign(
    claims: &Value,
    header: jsonwebtoken::Header,
    key: &jsonwebtoken::EncodingKey,
) -> String {
    let token = jsonwebtoken::encode(&header, claims, key).expect("sign test token");
    register_token(&token);
    token
}

/// The `extensions.code` of a response's first error, or `<none>`.
pub fn error_code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("<none>")
}
