//! Settings, read once at start from the environment (and an optional file) and
//! validated before anything listens or connects.
//!
//! Every problem is collected and reported together, each naming its variable, so an
//! operator fixes a bad deployment in one pass. The embedded default (no `DATABASE_URL`)
//! is the "clone and run" path: a SQLite file under `./data`, demo data loaded on first
//! start, and development secrets generated once and kept beside the database so that
//! `baseline-hub token` in another terminal signs with the key the server verifies.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::keys::PublicKeys;

/// Where the embedded default keeps its database and development secrets.
pub const DEFAULT_DATA_DIR: &str = "data";

/// The longest inspection cycle accepted (twenty years), so date arithmetic stays
/// within the calendar.
const MAX_CYCLE_MONTHS: usize = 240;

#[derive(Clone, Debug)]
pub struct Config {
    /// `HUB_ADDR`, default `127.0.0.1:8080`.
    pub addr: SocketAddr,
    /// `DATABASE_URL`; default a SQLite file in the data directory.
    pub database_url: String,
    /// True when `DATABASE_URL` was not set: the single-process developer setup.
    pub embedded: bool,
    /// `DATABASE_MAX_CONNECTIONS`, default 10 (PostgreSQL) or 4 (SQLite).
    pub db_max_connections: u32,
    /// `DATABASE_STATEMENT_TIMEOUT_MS`, default 10 s: the longest one SQL statement of a
    /// request may run (PostgreSQL `statement_timeout`; on SQLite, the longest wait
    /// for a lock). Migrations and seeding are not bounded by it.
    pub db_statement_timeout: Duration,
    /// `DATABASE_ACQUIRE_TIMEOUT_MS`, default 1 s: how long a request waits for a free
    /// connection of the pool before it is answered `503` `OVERLOADED`. Short, so that
    /// a saturated pool sheds load instead of queueing every request behind it.
    pub db_acquire_timeout: Duration,
    /// `MAX_CONCURRENT_REQUESTS_PER_ORG`, default half the pool (at least 1): requests
    /// of one organisation — and of all anonymous callers together — that may run
    /// against the database at once, so that no one caller can hold the whole pool;
    /// 0 turns the limit off. A request waits up to `DATABASE_ACQUIRE_TIMEOUT_MS` for
    /// its organisation's slot, then gets `503` `OVERLOADED` (see `concurrency`).
    pub max_concurrent_per_org: usize,
    pub auth: AuthConfig,
    /// `PUPIL_KEY_SECRET`: key of the hash that replaces pupil numbers (at least 32
    /// bytes), and of the keys readers are shown (see `pseudonym`).
    pub pupil_key_secret: Option<Vec<u8>>,
    /// `HUB_SEED`: load this scale of demo data at start when the database is empty.
    /// Default `demo` on the embedded default, nothing otherwise.
    pub auto_seed: Option<Scale>,
    pub limits: Limits,
    pub disclosure: Disclosure,
    pub cache: CacheConfig,
    pub rate_limit: RateLimitConfig,
    /// `GRAPHQL_INTROSPECTION`: whether the schema may be introspected and GraphiQL is
    /// served. On for the embedded default (a developer exploring), off otherwise: a
    /// production hub need not hand its whole schema to anyone who asks.
    pub introspection: bool,
    /// `FEDERATION_SDL_PUBLIC`: whether `_service { sdl }` is served to every caller, for
    /// a composition pipeline that fetches it without a token. Off by default: the SDL
    /// is the whole schema, so it follows introspection (and hub administrators).
    pub sdl_public: bool,
    pub inspection: InspectionCycle,
    /// `LOG_FORMAT=json` for structured logs; `text` otherwise.
    pub log_json: bool,
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`: where to send traces over OTLP/HTTP, when the hub
    /// was built with the `otel` feature.
    pub otlp_endpoint: Option<String>,
    /// `CORS_ALLOWED_ORIGINS`: the browser origins (partner dashboards) that may call
    /// `/graphql` from their pages. None by default.
    pub cors: CorsOrigins,
}

/// Which origins a browser lets call the hub (`CORS_ALLOWED_ORIGINS`, see `http::cors`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum CorsOrigins {
    /// No cross-origin calls: no CORS headers at all (the default).
    #[default]
    None,
    /// `*`: any origin, without credentials.
    Any,
    /// These origins exactly (`scheme://host[:port]`, as browsers send `Origin`).
    List(Vec<String>),
}

impl CorsOrigins {
    /// A comma-separated list of origins, or `*` alone.
    fn parse(value: &str) -> Result<CorsOrigins, String> {
        let items: Vec<&str> = value
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .collect();
        if items == ["*"] {
            return Ok(CorsOrigins::Any);
        }
        let mut origins = Vec::with_capacity(items.len());
        for item in items {
            let origin = item.to_ascii_lowercase();
            let rest = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"));
            let valid = rest.is_some_and(|host| {
                !host.is_empty()
                    && host.bytes().all(|b| {
                        b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']')
                    })
            });
            if !valid {
                return Err(format!(
                    "CORS_ALLOWED_ORIGINS: {item:?} is not an origin; write scheme://host[:port] \
                     with no path or trailing slash (e.g. https://dashboard.example.org), or * alone"
                ));
            }
            origins.push(origin);
        }
        Ok(if origins.is_empty() {
            CorsOrigins::None
        } else {
            CorsOrigins::List(origins)
        })
    }
}

/// How much demo data to generate (`HUB_SEED`, `baseline-hub seed --scale`). A setting
/// here rather than in `seed`, which builds the data, so that reading the settings
/// does not depend on the demo-data generator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scale {
    /// About 45 schools in seven LAs (Hampshire, Southampton and their neighbours, two
    /// London boroughs and the City of London): quick enough for automated tests.
    Test,
    /// About 2,000 schools: roughly 9% of every LA. The default for trying the hub out.
    Demo,
    /// About 22,000 schools: every state-funded school in England. For load testing.
    National,
}

#[derive(Clone, Debug)]
pub struct AuthConfig {
    /// `JWT_SECRET`: HS256 verification secret.
    pub jwt_secret: Option<Vec<u8>>,
    /// `JWT_PUBLIC_KEYS`: RSA / EC P-256 verification keys, read from the named PEM or
    /// JWKS file once, at start.
    pub public_keys: Option<PublicKeys>,
    /// `JWT_ISSUER`: required `iss` when set.
    pub issuer: Option<String>,
    /// `JWT_AUDIENCE`: required `aud` when set.
    pub audience: Option<String>,
    /// Clock skew tolerated on `exp`/`nbf`.
    pub leeway: Duration,
    /// Whether `baseline-hub token` may mint tokens with `jwt_secret` (`HUB_DEV_TOKENS`;
    /// on by default only for the embedded default).
    pub dev_tokens: bool,
}

/// Bounds on what one request may ask for (DESIGN: analysts' queries must be bounded).
#[derive(Clone, Debug)]
pub struct Limits {
    /// `MAX_QUERY_DEPTH`, default 12.
    pub max_depth: usize,
    /// `MAX_QUERY_COMPLEXITY`, default 20,000 (see `graphql` for how fields are costed).
    pub max_complexity: usize,
    /// `MAX_PAGE_SIZE`, default 500: the largest `first` a connection accepts.
    pub max_page_size: usize,
    /// `MAX_BODY_BYTES`, default 256 KiB; larger bodies get HTTP 413.
    pub max_body_bytes: usize,
    /// `MAX_SYNC_BODY_BYTES`, default 8 MiB: the body limit for callers whose token
    /// carries a role that writes data, sized for a sync call of 10,000 pupil records
    /// (about 4 MiB of JSON). Everyone else keeps `max_body_bytes`, so only a verified
    /// writer can make the hub read a large body.
    pub max_sync_body_bytes: usize,
    /// `MAX_BATCH_SIZE`, default 10 operations in one batched POST.
    pub max_batch: usize,
    /// `MAX_REQUEST_STATEMENTS`, default 2,000: SQL statements one request may run
    /// (a batch's operations together). Counted while it runs; the request crossing
    /// it is stopped and its work dropped. A sync call of 10,000 rows needs a few
    /// dozen; an honest dashboard a handful.
    pub max_statements: usize,
    /// `MAX_ANSWER_BYTES`, default 16 MiB: the largest answer the hub will send for
    /// one request; a larger one is dropped and refused instead of being sent.
    pub max_answer_bytes: usize,
    /// `REQUEST_TIMEOUT_MS`, default 30 s: a request still running after this is
    /// answered with `UNAVAILABLE` and its work is dropped.
    pub request_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 12,
            max_complexity: 20_000,
            max_page_size: 500,
            max_body_bytes: 256 * 1024,
            max_sync_body_bytes: 8 * 1024 * 1024,
            max_batch: 10,
            max_statements: 2_000,
            max_answer_bytes: 16 * 1024 * 1024,
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// Per-organisation rate limiting (see `ratelimit`).
#[derive(Clone, Debug, PartialEq)]
pub struct RateLimitConfig {
    /// `RATE_LIMIT_PER_SECOND`, default 50 (fractions allowed): operations per second
    /// one organisation (or all anonymous callers together) may sustain; 0 turns rate
    /// limiting off.
    pub per_second: f64,
    /// `RATE_LIMIT_BURST`, default 100: operations one organisation may send at once
    /// after a quiet spell.
    pub burst: f64,
}

impl RateLimitConfig {
    pub fn enabled(&self) -> bool {
        self.per_second > 0.0
    }
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            per_second: 50.0,
            burst: 100.0,
        }
    }
}

/// Disclosure control settings: thresholds for AGGREGATE figures and the key of
/// `aggregate`'s perturbation (see `disclosure`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Disclosure {
    /// `DISCLOSURE_MIN_COUNT`, default 5: a count, or a rate's numerator or
    /// denominator, below this is withheld.
    pub min_count: f64,
    /// `DISCLOSURE_MIN_SCHOOLS`, default 3: a cell built from fewer schools is withheld
    /// from callers without SCHOOL scope over every one of them.
    pub min_schools: i64,
    /// The secret behind cell-key perturbation of ad hoc tables (`disclosure`):
    /// SHA-256 of `DISCLOSURE_KEY_SECRET`, or else of `PUPIL_KEY_SECRET` (both are hub
    /// secrets no partner holds). Every instance of one hub must share it, or a cell
    /// would get other noise from another instance and averaging would remove it.
    pub key: [u8; 32],
}

impl Disclosure {
    fn key_from(secret: &[u8]) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        let mut hash = Sha256::new();
        hash.update(b"baseline-hub disclosure key\0");
        hash.update(secret);
        hash.finalize().into()
    }
}

impl Default for Disclosure {
    fn default() -> Self {
        Disclosure {
            min_count: 5.0,
            min_schools: 3,
            key: [0; 32],
        }
    }
}

/// The inspection cycle behind `inspectionWindow`: when a school's window opens and
/// when its next inspection is due, counted from its last inspection date.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InspectionCycle {
    /// `INSPECTION_CYCLE_MONTHS`, default 48: the next inspection is due this many
    /// months after the last.
    pub cycle_months: u32,
    /// `INSPECTION_WINDOW_MONTHS`, default 12: the window opens this many months before
    /// the due date; at most the cycle.
    pub window_months: u32,
}

impl Default for InspectionCycle {
    fn default() -> Self {
        InspectionCycle {
            cycle_months: 48,
            window_months: 12,
        }
    }
}

/// The query-result cache (see `cache`).
#[derive(Clone, Debug)]
pub struct CacheConfig {
    /// `CACHE_TTL_SECONDS`, default 300; 0 turns the cache off.
    pub ttl: Duration,
    /// `CACHE_MEMORY_MB`, default 64: the in-process tier's size; 0 keeps answers in
    /// Redis only.
    pub memory_bytes: u64,
    /// `REDIS_URL`, optional: the shared tier and cross-instance invalidation.
    pub redis_url: Option<String>,
    /// `CACHE_REDIS_PREFIX`, default `hub`: every key and channel starts with it, so
    /// several deployments (or test runs) can share one Redis.
    pub redis_prefix: String,
    /// `CACHE_REDIS_TIMEOUT_MS`, default 250: a Redis command that takes longer is
    /// given up for that request (a miss in Redis); Redis is taken for down only when
    /// the hub's own ping then fails too (see `cache::redis_tier`).
    pub redis_timeout: Duration,
    /// `CACHE_REDIS_DOWN_MAX_AGE_SECONDS`, default 5: while Redis cannot confirm that
    /// this instance has received every invalidation (Redis down or slow), answers and
    /// scopes kept in memory are used only if they were stored less than this long
    /// ago, so that what another instance wrote meanwhile shows within this time; 0
    /// skips memory altogether while Redis cannot confirm it.
    pub redis_down_max_age: Duration,
    /// `CACHE_REDIS_MAX_ENTRY_BYTES`, default 1 MiB: larger answers are kept in the
    /// in-process tier only. One Redis command carries a whole entry; a few
    /// multi-megabyte ones would hold every instance's Redis connection and the
    /// server's memory for what one instance can keep itself.
    pub redis_max_entry_bytes: usize,
}

impl CacheConfig {
    pub fn enabled(&self) -> bool {
        !self.ttl.is_zero()
    }
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            ttl: Duration::from_secs(300),
            memory_bytes: 64 * 1024 * 1024,
            redis_url: None,
            redis_prefix: "hub".to_owned(),
            redis_timeout: Duration::from_millis(250),
            redis_down_max_age: Duration::from_secs(5),
            redis_max_entry_bytes: 1024 * 1024,
        }
    }
}

/// Every problem found in the settings, one line each.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
pub struct ConfigError(pub Vec<String>);

impl Config {
    /// Reads the process environment, on top of the file named by `HUB_CONFIG_FILE`
    /// (lines of `KEY=value`; the environment wins).
    pub fn from_env() -> Result<Config, ConfigError> {
        let mut vars: HashMap<String, String> = HashMap::new();
        if let Ok(path) = std::env::var("HUB_CONFIG_FILE") {
            vars.extend(read_config_file(Path::new(&path))?);
        }
        vars.extend(std::env::vars());
        let config = Config::from_vars(&vars)?;
        config.with_dev_secrets()
    }

    /// Builds settings from a map of variables. Pure: tests use it to configure each
    /// hub they spawn without touching the (shared) process environment.
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Config, ConfigError> {
        let get = |key: &str| vars.get(key).map(|v| v.trim()).filter(|v| !v.is_empty());
        let mut problems = Vec::new();

        let addr = match get("HUB_ADDR").unwrap_or("127.0.0.1:8080").parse() {
            Ok(addr) => addr,
            Err(_) => {
                problems.push("HUB_ADDR must be host:port, e.g. 127.0.0.1:8080".to_owned());
                SocketAddr::from(([127, 0, 0, 1], 8080))
            }
        };

        let embedded = get("DATABASE_URL").is_none();
        let database_url = match get("DATABASE_URL") {
            Some(url)
                if url.starts_with("postgres://")
                    || url.starts_with("postgresql://")
                    || url.starts_with("sqlite:") =>
            {
                url.to_owned()
            }
            Some(_) => {
                problems.push(
                    "DATABASE_URL must start with postgres://, postgresql:// or sqlite:".to_owned(),
                );
                String::new()
            }
            None => format!("sqlite://{DEFAULT_DATA_DIR}/hub.sqlite?mode=rwc"),
        };
        let is_sqlite = database_url.starts_with("sqlite:");

        let redis_url = match get("REDIS_URL") {
            Some(url) if redis::Client::open(url).is_ok() => Some(url.to_owned()),
            Some(_) => {
                problems.push(
                    "REDIS_URL must be a Redis URL such as redis://127.0.0.1:6379".to_owned(),
                );
                None
            }
            None => None,
        };
        let redis_prefix = get("CACHE_REDIS_PREFIX").unwrap_or("hub").to_owned();
        if !redis_prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
        {
            problems.push(
                "CACHE_REDIS_PREFIX may hold only letters, digits, '_', '-', '.' and ':'"
                    .to_owned(),
            );
        }

        let mut number = |key: &str, default: usize, min: usize| -> usize {
            match get(key) {
                None => default,
                Some(text) => match text.parse::<usize>() {
                    Ok(n) if n >= min => n,
                    _ => {
                        problems.push(format!(
                            "{key} must be a whole number of at least {min} (got {text:?})"
                        ));
                        default
                    }
                },
            }
        };
        let defaults = Limits::default();
        let limits = Limits {
            max_depth: number("MAX_QUERY_DEPTH", defaults.max_depth, 2),
            max_complexity: number("MAX_QUERY_COMPLEXITY", defaults.max_complexity, 10),
            max_page_size: number("MAX_PAGE_SIZE", defaults.max_page_size, 1),
            max_body_bytes: number("MAX_BODY_BYTES", defaults.max_body_bytes, 1024),
            max_sync_body_bytes: number("MAX_SYNC_BODY_BYTES", defaults.max_sync_body_bytes, 1024),
            max_batch: number("MAX_BATCH_SIZE", defaults.max_batch, 1),
            max_statements: number("MAX_REQUEST_STATEMENTS", defaults.max_statements, 1),
            max_answer_bytes: number("MAX_ANSWER_BYTES", defaults.max_answer_bytes, 1024),
            request_timeout: Duration::from_millis(number("REQUEST_TIMEOUT_MS", 30_000, 10) as u64),
        };
        let db_statement_timeout =
            Duration::from_millis(number("DATABASE_STATEMENT_TIMEOUT_MS", 10_000, 1) as u64);
        let db_acquire_timeout =
            Duration::from_millis(number("DATABASE_ACQUIRE_TIMEOUT_MS", 1_000, 10) as u64);
        let burst = number("RATE_LIMIT_BURST", 100, 1) as f64;
        let db_max_connections = number(
            "DATABASE_MAX_CONNECTIONS",
            if is_sqlite { 4 } else { 10 },
            1,
        ) as u32;
        let max_concurrent_per_org = number(
            "MAX_CONCURRENT_REQUESTS_PER_ORG",
            (db_max_connections as usize).div_ceil(2),
            0,
        );
        let leeway_secs = number("JWT_LEEWAY_SECONDS", 30, 0) as u64;
        let cache = CacheConfig {
            ttl: Duration::from_secs(number("CACHE_TTL_SECONDS", 300, 0) as u64),
            memory_bytes: number("CACHE_MEMORY_MB", 64, 0) as u64 * 1024 * 1024,
            redis_url,
            redis_prefix,
            redis_timeout: Duration::from_millis(number("CACHE_REDIS_TIMEOUT_MS", 250, 10) as u64),
            redis_down_max_age: Duration::from_secs(
                number("CACHE_REDIS_DOWN_MAX_AGE_SECONDS", 5, 0) as u64,
            ),
            redis_max_entry_bytes: number("CACHE_REDIS_MAX_ENTRY_BYTES", 1024 * 1024, 1024),
        };
        let disclosure_secret = get("DISCLOSURE_KEY_SECRET").or(get("PUPIL_KEY_SECRET"));
        let disclosure = Disclosure {
            min_count: number("DISCLOSURE_MIN_COUNT", 5, 1) as f64,
            min_schools: number("DISCLOSURE_MIN_SCHOOLS", 3, 1) as i64,
            key: Disclosure::key_from(disclosure_secret.unwrap_or_default().as_bytes()),
        };
        let disclosure_unkeyed = disclosure_secret.is_none() && !embedded;
        let cycle_months = number("INSPECTION_CYCLE_MONTHS", 48, 1);
        let window_months = number("INSPECTION_WINDOW_MONTHS", 12, 1);
        if cycle_months > MAX_CYCLE_MONTHS {
            problems.push(format!(
                "INSPECTION_CYCLE_MONTHS must be at most {MAX_CYCLE_MONTHS} (got {cycle_months})"
            ));
        } else if window_months > cycle_months {
            problems.push(format!(
                "INSPECTION_WINDOW_MONTHS ({window_months}) must not exceed \
                 INSPECTION_CYCLE_MONTHS ({cycle_months})"
            ));
        }
        let inspection = InspectionCycle {
            cycle_months: cycle_months.min(MAX_CYCLE_MONTHS) as u32,
            window_months: window_months.min(MAX_CYCLE_MONTHS) as u32,
        };

        let pupil_key_secret = get("PUPIL_KEY_SECRET").map(|s| s.as_bytes().to_vec());
        if let Some(secret) = &pupil_key_secret
            && secret.len() < crate::pseudonym::MIN_SECRET_BYTES
        {
            problems.push(format!(
                "PUPIL_KEY_SECRET must be at least {} bytes (got {}): it keys the hash that \
                 stands in for pupil numbers, and pupil numbers can be enumerated, so a \
                 guessable key gives them all away",
                crate::pseudonym::MIN_SECRET_BYTES,
                secret.len()
            ));
        }

        let jwt_secret = get("JWT_SECRET").map(|s| s.as_bytes().to_vec());
        if jwt_secret.as_ref().is_some_and(|s| s.len() < 32) {
            problems.push(
                "JWT_SECRET must be at least 32 bytes (HS256 keys shorter than the hash are weak)"
                    .to_owned(),
            );
        }
        // The one place `from_vars` touches the filesystem: keys are parsed here, once,
        // so an unreadable or unusable key file stops the hub before it serves anything.
        let public_keys = get("JWT_PUBLIC_KEYS").and_then(|path| {
            std::fs::read(path)
                .map_err(|e| format!("cannot read the file: {e}"))
                .and_then(|contents| PublicKeys::parse(&contents))
                .map_err(|problem| {
                    problems.push(format!(
                        "JWT_PUBLIC_KEYS must name a PEM file of public keys or a JWKS; \
                         {path}: {problem}"
                    ))
                })
                .ok()
        });
        let dev_tokens = match get("HUB_DEV_TOKENS") {
            None => embedded,
            Some("1" | "true" | "yes") => true,
            Some("0" | "false" | "no") => false,
            Some(other) => {
                problems.push(format!(
                    "HUB_DEV_TOKENS must be true or false (got {other:?})"
                ));
                false
            }
        };

        let auto_seed = match get("HUB_SEED") {
            None if embedded => Some(Scale::Demo),
            None | Some("none") => None,
            Some("test") => Some(Scale::Test),
            Some("demo") => Some(Scale::Demo),
            Some("national") => Some(Scale::National),
            Some(other) => {
                problems.push(format!(
                    "HUB_SEED must be none, test, demo or national (got {other:?})"
                ));
                None
            }
        };

        let rate_limit = RateLimitConfig {
            per_second: match get("RATE_LIMIT_PER_SECOND") {
                None => RateLimitConfig::default().per_second,
                Some(text) => match text.parse::<f64>() {
                    Ok(rate) if rate.is_finite() && rate >= 0.0 => rate,
                    _ => {
                        problems.push(format!(
                            "RATE_LIMIT_PER_SECOND must be a number of at least 0 (got {text:?})"
                        ));
                        0.0
                    }
                },
            },
            burst,
        };

        let introspection = match get("GRAPHQL_INTROSPECTION") {
            None => embedded,
            Some("1" | "true" | "yes") => true,
            Some("0" | "false" | "no") => false,
            Some(other) => {
                problems.push(format!(
                    "GRAPHQL_INTROSPECTION must be true or false (got {other:?})"
                ));
                false
            }
        };

        let sdl_public = match get("FEDERATION_SDL_PUBLIC") {
            None | Some("0" | "false" | "no") => false,
            Some("1" | "true" | "yes") => true,
            Some(other) => {
                problems.push(format!(
                    "FEDERATION_SDL_PUBLIC must be true or false (got {other:?})"
                ));
                false
            }
        };

        let otlp_endpoint = get("OTEL_EXPORTER_OTLP_ENDPOINT").map(str::to_owned);
        if let Some(endpoint) = &otlp_endpoint {
            if !cfg!(feature = "otel") {
                problems.push(
                    "OTEL_EXPORTER_OTLP_ENDPOINT is set but this build has no OpenTelemetry \
                     export; build with `--features otel`"
                        .to_owned(),
                );
            } else if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
                problems.push(format!(
                    "OTEL_EXPORTER_OTLP_ENDPOINT must be an http:// or https:// URL (got {endpoint:?})"
                ));
            }
        }

        let cors = match get("CORS_ALLOWED_ORIGINS").map(CorsOrigins::parse) {
            None => CorsOrigins::None,
            Some(Ok(cors)) => cors,
            Some(Err(problem)) => {
                problems.push(problem);
                CorsOrigins::None
            }
        };

        let log_json = match get("LOG_FORMAT") {
            None | Some("text") => false,
            Some("json") => true,
            Some(other) => {
                problems.push(format!("LOG_FORMAT must be text or json (got {other:?})"));
                false
            }
        };

        if disclosure_unkeyed {
            problems.push(
                "DISCLOSURE_KEY_SECRET (or PUPIL_KEY_SECRET) is required: it keys the \
                 perturbation that protects ad hoc aggregates, and every instance must share it"
                    .to_owned(),
            );
        }
        if !problems.is_empty() {
            return Err(ConfigError(problems));
        }
        Ok(Config {
            addr,
            database_url,
            embedded,
            db_max_connections,
            db_acquire_timeout,
            max_concurrent_per_org,
            db_statement_timeout,
            auth: AuthConfig {
                jwt_secret,
                public_keys,
                issuer: get("JWT_ISSUER").map(str::to_owned),
                audience: get("JWT_AUDIENCE").map(str::to_owned),
                leeway: Duration::from_secs(leeway_secs),
                dev_tokens,
            },
            pupil_key_secret,
            auto_seed,
            limits,
            disclosure,
            cache,
            rate_limit,
            introspection,
            sdl_public,
            inspection,
            log_json,
            otlp_endpoint,
            cors,
        })
    }

    /// On the embedded default, fills in any missing secret with one generated once and
    /// kept in the data directory, so restarts and the `token` command agree on it.
    /// Anywhere else secrets must be configured explicitly.
    pub fn with_dev_secrets(mut self) -> Result<Config, ConfigError> {
        if !self.embedded {
            return Ok(self);
        }
        let dir = PathBuf::from(DEFAULT_DATA_DIR);
        if self.auth.jwt_secret.is_none() {
            self.auth.jwt_secret = Some(dev_secret(&dir.join("dev-jwt-secret"))?);
        }
        if self.pupil_key_secret.is_none() {
            let secret = dev_secret(&dir.join("dev-pupil-key-secret"))?;
            if self.disclosure.key == Disclosure::key_from(b"") {
                self.disclosure.key = Disclosure::key_from(&secret);
            }
            self.pupil_key_secret = Some(secret);
        }
        Ok(self)
    }

    pub fn is_sqlite(&self) -> bool {
        self.database_url.starts_with("sqlite:")
    }
}

fn read_config_file(path: &Path) -> Result<HashMap<String, String>, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError(vec![format!("HUB_CONFIG_FILE {}: {e}", path.display())]))?;
    let mut vars = HashMap::new();
    let mut problems = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.split_once('=') {
            Some((key, value)) => {
                vars.insert(
                    key.trim().to_owned(),
                    value.trim().trim_matches('"').to_owned(),
                );
            }
            None => problems.push(format!(
                "HUB_CONFIG_FILE {} line {}: expected KEY=value",
                path.display(),
                n + 1
            )),
        }
    }
    if problems.is_empty() {
        Ok(vars)
    } else {
        Err(ConfigError(problems))
    }
}

/// Creates the embedded default's data directory, or tightens it, so that only the
/// hub's own user can enter it: it holds the development secrets (which sign tokens
/// and key pupil numbers) and the SQLite database (which holds pupil records). A
/// directory an earlier version created readable by everyone is tightened too.
pub fn create_data_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
        builder.mode(0o700).create(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
    }
    #[cfg(not(unix))]
    builder.create(dir)
}

/// Reads a development secret, creating it (32 random bytes, hex) on first use, as a
/// file only its owner may read (`0600`, in a `0700` directory); an existing one is
/// tightened to that.
fn dev_secret(path: &Path) -> Result<Vec<u8>, ConfigError> {
    let problem = |e: std::io::Error| {
        ConfigError(vec![format!("development secret {}: {e}", path.display())])
    };
    if let Some(parent) = path.parent() {
        create_data_dir(parent).map_err(problem)?;
    }
    if let Ok(existing) = std::fs::read_to_string(path) {
        let existing = existing.trim();
        if existing.len() >= 32 {
            owner_only(path).map_err(problem)?;
            return Ok(existing.as_bytes().to_vec());
        }
    }
    let secret: String = (0..32)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    // The mode applies to a file being created; a short one being replaced is
    // tightened before the secret is written into it.
    let mut file = options.open(path).map_err(problem)?;
    owner_only(path).map_err(problem)?;
    std::io::Write::write_all(&mut file, secret.as_bytes()).map_err(problem)?;
    Ok(secret.into_bytes())
}

/// Makes a file readable and writable by its owner alone.
fn owner_only(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn embedded_default_needs_nothing() {
        let config = Config::from_vars(&vars(&[])).expect("defaults are valid");
        assert!(config.embedded && config.is_sqlite());
        assert_eq!(config.addr.to_string(), "127.0.0.1:8080");
        assert_eq!(config.auto_seed, Some(Scale::Demo));
        assert!(config.auth.dev_tokens);
    }

    #[test]
    fn cors_origins_are_origins_or_a_lone_wildcard() {
        let cors = |value: &str| {
            Config::from_vars(&vars(&[("CORS_ALLOWED_ORIGINS", value)])).map(|c| c.cors)
        };
        assert_eq!(
            Config::from_vars(&vars(&[])).unwrap().cors,
            CorsOrigins::None
        );
        assert_eq!(cors("*").unwrap(), CorsOrigins::Any);
        assert_eq!(
            cors("https://Dash.example.org, http://localhost:3000").unwrap(),
            CorsOrigins::List(vec![
                "https://dash.example.org".to_owned(),
                "http://localhost:3000".to_owned()
            ])
        );
        for bad in [
            "dash.example.org",
            "https://dash.example.org/",
            "*, https://a.org",
            "https://*.a.org",
        ] {
            let err = cors(bad).unwrap_err();
            assert!(
                err.to_string().contains("CORS_ALLOWED_ORIGINS"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let err = Config::from_vars(&vars(&[
            ("HUB_ADDR", "nonsense"),
            ("DATABASE_URL", "mysql://x"),
            ("REDIS_URL", "http://x"),
            ("MAX_PAGE_SIZE", "0"),
            ("JWT_SECRET", "short"),
            ("PUPIL_KEY_SECRET", "a pupil-key secret of the right length"),
        ]))
        .unwrap_err();
        assert_eq!(err.0.len(), 5, "{err}");
        for var in [
            "HUB_ADDR",
            "DATABASE_URL",
            "REDIS_URL",
            "MAX_PAGE_SIZE",
            "JWT_SECRET",
        ] {
            assert!(err.to_string().contains(var), "{var} missing from {err}");
        }
    }

    #[test]
    fn a_production_hub_needs_a_disclosure_key_shared_by_its_instances() {
        let postgres = ("DATABASE_URL", "postgres://postgres@127.0.0.1/test");
        let err = Config::from_vars(&vars(&[postgres])).unwrap_err();
        assert!(err.to_string().contains("DISCLOSURE_KEY_SECRET"), "{err}");
        let (one, two) = (
            "one secret of thirty-two bytes or more",
            "another secret of thirty-two bytes",
        );
        let own = Config::from_vars(&vars(&[postgres, ("DISCLOSURE_KEY_SECRET", one)])).unwrap();
        let pupil = Config::from_vars(&vars(&[postgres, ("PUPIL_KEY_SECRET", one)])).unwrap();
        let other = Config::from_vars(&vars(&[postgres, ("DISCLOSURE_KEY_SECRET", two)])).unwrap();
        assert_eq!(
            own.disclosure.key, pupil.disclosure.key,
            "derived from the pupil key"
        );
        assert_ne!(own.disclosure.key, other.disclosure.key);
    }

    #[test]
    fn operations_settings_are_validated() {
        let config = Config::from_vars(&vars(&[
            ("RATE_LIMIT_PER_SECOND", "0.5"),
            ("RATE_LIMIT_BURST", "7"),
            ("REQUEST_TIMEOUT_MS", "1500"),
            ("DATABASE_STATEMENT_TIMEOUT_MS", "250"),
        ]))
        .unwrap();
        assert_eq!(
            config.rate_limit,
            RateLimitConfig {
                per_second: 0.5,
                burst: 7.0
            }
        );
        assert_eq!(config.limits.request_timeout, Duration::from_millis(1500));
        assert_eq!(config.db_statement_timeout, Duration::from_millis(250));
        let err = Config::from_vars(&vars(&[
            ("RATE_LIMIT_PER_SECOND", "-1"),
            ("RATE_LIMIT_BURST", "0"),
            ("REQUEST_TIMEOUT_MS", "soon"),
            ("GRAPHQL_INTROSPECTION", "maybe"),
        ]))
        .unwrap_err();
        assert_eq!(err.0.len(), 4, "{err}");
    }

    #[test]
    fn introspection_is_on_for_the_embedded_default_only() {
        assert!(Config::from_vars(&vars(&[])).unwrap().introspection);
        let production = vars(&[
            ("DATABASE_URL", "postgres://postgres@127.0.0.1/test"),
            (
                "DISCLOSURE_KEY_SECRET",
                "the key of the schools' record keys",
            ),
        ]);
        assert!(!Config::from_vars(&production).unwrap().introspection);
    }

    #[cfg(not(feature = "otel"))]
    #[test]
    fn an_otlp_endpoint_needs_the_otel_feature() {
        let err = Config::from_vars(&vars(&[(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "http://127.0.0.1:4318",
        )]))
        .unwrap_err();
        assert!(err.to_string().contains("--features otel"), "{err}");
    }

    #[test]
    fn the_inspection_window_fits_inside_the_cycle() {
        let config = Config::from_vars(&vars(&[])).unwrap();
        assert_eq!(config.inspection, InspectionCycle::default());
        let err = Config::from_vars(&vars(&[
            ("INSPECTION_CYCLE_MONTHS", "24"),
            ("INSPECTION_WINDOW_MONTHS", "30"),
        ]))
        .unwrap_err();
        assert!(
            err.to_string().contains("INSPECTION_WINDOW_MONTHS (30)"),
            "{err}"
        );
        let err = Config::from_vars(&vars(&[("INSPECTION_CYCLE_MONTHS", "0")])).unwrap_err();
        assert!(err.to_string().contains("INSPECTION_CYCLE_MONTHS"), "{err}");
    }

    #[test]
    fn postgres_is_not_embedded_and_does_not_auto_seed() {
        let config = Config::from_vars(&vars(&[
            ("DATABASE_URL", "postgres://postgres@127.0.0.1/test"),
            ("PUPIL_KEY_SECRET", "a pupil-key secret of the right length"),
        ]))
        .unwrap();
        assert!(!config.embedded && !config.is_sqlite());
        assert_eq!(config.auto_seed, None);
        assert!(!config.auth.dev_tokens);
    }
}
