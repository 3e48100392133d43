//! Logging and metrics.
//!
//! Metrics use a registry per hub instance (prometheus-client) rather than a global
//! recorder, so several hubs in one test process, or the two instances of a
//! failover test, each report their own figures on `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Distinct operation names kept as metric labels; later names are counted as `other`.
/// Operation names are chosen by clients, so without a cap a client could grow the
/// metrics without bound.
const MAX_OPERATION_LABELS: usize = 200;

/// Installs the global tracing subscriber (text or JSON); `RUST_LOG` filters.
pub fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Logs go to stderr so that stdout carries only a command's output (`token` prints
    // a token that scripts capture with `$(…)`).
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr);
    // A second call (tests spawn many hubs in one process) keeps the first subscriber.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub operation: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TierLabels {
    pub tier: &'static str,
}

/// The hub's instruments. Cloning shares the underlying counters.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Mutex<Registry>>,
    pub db_statements: Counter,
    pub db_statement_failures: Counter,
    pub db_statement_seconds: Histogram,
    pub requests: Family<RequestLabels, Counter>,
    pub errors: Family<ErrorLabels, Counter>,
    pub request_seconds: Histogram,
    pub cache_hits: Family<TierLabels, Counter>,
    pub cache_misses: Counter,
    pub cache_evictions: Counter,
    pub cache_invalidations: Counter,
    pub cache_redis_errors: Counter,
    pub cache_redis_up: Gauge,
    operation_names: Arc<Mutex<HashSet<String>>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("hub");
        let db_statements = Counter::default();
        registry.register(
            "db_statements",
            "SQL statements sent to the database",
            db_statements.clone(),
        );
        let db_statement_failures = Counter::default();
        registry.register(
            "db_statement_failures",
            "SQL statements that returned an error",
            db_statement_failures.clone(),
        );
        let db_statement_seconds = Histogram::new(exponential_buckets(0.0001, 2.0, 16));
        registry.register(
            "db_statement_duration_seconds",
            "Time from sending a SQL statement to its result",
            db_statement_seconds.clone(),
        );
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "graphql_requests",
            "GraphQL operations by operation name and outcome",
            requests.clone(),
        );
        let errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "graphql_errors",
            "GraphQL errors by extensions.code",
            errors.clone(),
        );
        let request_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        registry.register(
            "graphql_request_duration_seconds",
            "Time to execute a GraphQL request",
            request_seconds.clone(),
        );
        let cache_hits = Family::<TierLabels, Counter>::default();
        registry.register(
            "cache_hits",
            "Answers served from the cache, by tier (local or redis)",
            cache_hits.clone(),
        );
        let cache_misses = Counter::default();
        registry.register(
            "cache_misses",
            "Cacheable requests answered from the database",
            cache_misses.clone(),
        );
        let cache_evictions = Counter::default();
        registry.register(
            "cache_evictions",
            "In-process cache entries dropped for size or age",
            cache_evictions.clone(),
        );
        let cache_invalidations = Counter::default();
        registry.register(
            "cache_invalidations",
            "Tags invalidated (by this instance's writes or other instances' messages)",
            cache_invalidations.clone(),
        );
        let cache_redis_errors = Counter::default();
        registry.register(
            "cache_redis_errors",
            "Redis commands or connection attempts that failed or timed out",
            cache_redis_errors.clone(),
        );
        let cache_redis_up = Gauge::default();
        registry.register(
            "cache_redis_up",
            "1 while the Redis tier is connected and subscribed, else 0",
            cache_redis_up.clone(),
        );
        Metrics {
            registry: Arc::new(Mutex::new(registry)),
            cache_hits,
            cache_misses,
            cache_evictions,
            cache_invalidations,
            cache_redis_errors,
            cache_redis_up,
            db_statements,
            db_statement_failures,
            db_statement_seconds,
            requests,
            errors,
            request_seconds,
            operation_names: Arc::default(),
        }
    }

    /// Records one GraphQL operation: its outcome, its duration and its error codes.
    pub fn record_request<'a>(
        &self,
        operation: Option<&str>,
        elapsed: Duration,
        codes: impl Iterator<Item = &'a str>,
    ) {
        let mut failed = false;
        for code in codes {
            failed = true;
            self.errors
                .get_or_create(&ErrorLabels {
                    code: code.to_owned(),
                })
                .inc();
        }
        let operation = self.operation_label(operation);
        let outcome = if failed { "error" } else { "ok" }.to_owned();
        self.requests
            .get_or_create(&RequestLabels { operation, outcome })
            .inc();
        self.request_seconds.observe(elapsed.as_secs_f64());
    }

    pub fn cache_hit(&self, tier: crate::cache::Tier) {
        let tier = match tier {
            crate::cache::Tier::Local => "local",
            crate::cache::Tier::Redis => "redis",
        };
        self.cache_hits.get_or_create(&TierLabels { tier }).inc();
    }

    pub fn cache_miss(&self) {
        self.cache_misses.inc();
    }

    fn operation_label(&self, name: Option<&str>) -> String {
        let Some(name) = name else {
            return "anonymous".to_owned();
        };
        if name.len() > 64 || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return "other".to_owned();
        }
        let mut known = self
            .operation_names
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if known.contains(name) || known.len() < MAX_OPERATION_LABELS {
            known.insert(name.to_owned());
            name.to_owned()
        } else {
            "other".to_owned()
        }
    }

    /// Prometheus text exposition of every registered instrument.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let registry = self
            .registry
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Encoding into a String cannot fail (fmt::Write on String is infallible).
        let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        out
    }
}
