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

/// Keeps trace export alive; dropping it flushes the spans not yet sent.
#[must_use = "dropping it stops trace export"]
pub struct Telemetry {
    #[cfg(feature = "otel")]
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        #[cfg(feature = "otel")]
        if let Some(provider) = self.provider.take()
            && let Err(err) = provider.shutdown()
        {
            eprintln!("could not flush traces: {err}");
        }
    }
}

/// Installs the global tracing subscriber (text or JSON; `RUST_LOG` filters) and, when
/// the hub was built with the `otel` feature and `otlp_endpoint` is set, a layer that
/// exports the same spans — each request's span with its request id, route and
/// operation — over OTLP/HTTP.
///
/// OpenTelemetry is a cargo feature, off by default, because its exporter stack roughly
/// doubles the dependencies the server compiles; CI checks and lints the feature so it
/// cannot rot. Without the feature, setting the endpoint is a configuration error
/// (see `config`) rather than silently exporting nothing.
pub fn init_logging(json: bool, otlp_endpoint: Option<&str>) -> Telemetry {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Logs go to stderr so that stdout carries only a command's output (`token` prints
    // a token that scripts capture with `$(…)`).
    let fmt = tracing_subscriber::fmt::layer()
        .with_target(false)
        .with_writer(std::io::stderr);
    let fmt = if json {
        fmt.json().boxed()
    } else {
        fmt.boxed()
    };
    #[cfg(feature = "otel")]
    let (otel, provider) = match otlp_endpoint.map(otel::layer) {
        Some(Ok((layer, provider))) => (Some(layer), Some(provider)),
        Some(Err(err)) => {
            eprintln!("trace export disabled: {err}");
            (None, None)
        }
        None => (None, None),
    };
    #[cfg(not(feature = "otel"))]
    let otel: Option<tracing_subscriber::layer::Identity> = {
        // Refused at start by `config` when the feature is missing.
        let _ = otlp_endpoint;
        None
    };
    // A second call keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .try_init();
    Telemetry {
        #[cfg(feature = "otel")]
        provider,
    }
}

#[cfg(feature = "otel")]
mod otel {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::WithExportConfig as _;
    use opentelemetry_sdk::Resource;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tracing_subscriber::registry::LookupSpan;

    /// The OTLP/HTTP exporter and the layer feeding it. Spans are sent in batches from
    /// a thread of the SDK's, so export never holds up a request.
    pub(super) fn layer<S>(
        endpoint: &str,
    ) -> Result<
        (
            tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::SdkTracer>,
            SdkTracerProvider,
        ),
        String,
    >
    where
        S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
            .build()
            .map_err(|e| e.to_string())?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(
                Resource::builder()
                    .with_service_name("baseline-hub")
                    .build(),
            )
            .build();
        let tracer = provider.tracer("baseline-hub");
        Ok((tracing_opentelemetry::layer().with_tracer(tracer), provider))
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub operation: String,
    pub outcome: String,
}

/// What a GraphQL request's duration is labelled by: a mutation and a query take
/// different paths (writes, audit, invalidation), and a refusal is quick, so one
/// distribution of them all would describe none.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DurationLabels {
    /// `query`, `mutation`, or `unknown` (the document names no operation it holds).
    pub operation_type: &'static str,
    /// `ok`, or `error` when the answer carries any error.
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TierLabels {
    pub tier: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// The route's pattern (`/graphql`), never the raw path: paths are client-chosen.
    pub route: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    /// `redis` when the shared bucket decided, `local` when this instance's did.
    pub by: &'static str,
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
    pub request_seconds: Family<DurationLabels, Histogram>,
    pub cache_hits: Family<TierLabels, Counter>,
    pub cache_misses: Counter,
    pub cache_evictions: Counter,
    pub cache_invalidations: Counter,
    pub cache_redis_errors: Counter,
    pub cache_redis_up: Gauge,
    pub http_requests: Family<HttpLabels, Counter>,
    pub http_request_seconds: Family<HttpLabels, Histogram>,
    pub rate_limited: Family<DecisionLabels, Counter>,
    pub rate_limit_redis_errors: Counter,
    pub rate_limit_redis_up: Gauge,
    pub db_up: Gauge,
    pub db_pool_connections: Gauge,
    pub db_pool_idle: Gauge,
    pub db_pool_in_use: Gauge,
    pub db_pool_max: Gauge,
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
        let request_seconds =
            Family::<DurationLabels, Histogram>::new_with_constructor(request_buckets as fn() -> _);
        registry.register(
            "graphql_request_duration_seconds",
            "Time to execute a GraphQL request, by operation type and outcome",
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
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP responses by route and status, including cache hits and refusals",
            http_requests.clone(),
        );
        let http_request_seconds =
            Family::<HttpLabels, Histogram>::new_with_constructor(request_buckets as fn() -> _);
        registry.register(
            "http_request_duration_seconds",
            "Time from receiving a request to its response headers, by route and status",
            http_request_seconds.clone(),
        );
        let rate_limited = Family::<DecisionLabels, Counter>::default();
        registry.register(
            "rate_limited",
            "Requests refused with 429, by where the decision was made",
            rate_limited.clone(),
        );
        let rate_limit_redis_errors = Counter::default();
        registry.register(
            "rate_limit_redis_errors",
            "Rate-limit checks that fell back to this instance's bucket because Redis failed",
            rate_limit_redis_errors.clone(),
        );
        let rate_limit_redis_up = Gauge::default();
        registry.register(
            "rate_limit_redis_up",
            "1 while rate limits are shared through Redis, else 0",
            rate_limit_redis_up.clone(),
        );
        let db_up = Gauge::default();
        registry.register(
            "db_up",
            "1 while the database answers the health check, else 0",
            db_up.clone(),
        );
        let db_pool_connections = Gauge::default();
        registry.register(
            "db_pool_connections",
            "Open connections in the database pool",
            db_pool_connections.clone(),
        );
        let db_pool_idle = Gauge::default();
        registry.register(
            "db_pool_idle_connections",
            "Open connections not lent to a request",
            db_pool_idle.clone(),
        );
        let db_pool_in_use = Gauge::default();
        registry.register(
            "db_pool_in_use_connections",
            "Connections lent to a request",
            db_pool_in_use.clone(),
        );
        let db_pool_max = Gauge::default();
        registry.register(
            "db_pool_max_connections",
            "The pool's size limit (DATABASE_MAX_CONNECTIONS)",
            db_pool_max.clone(),
        );
        Metrics {
            registry: Arc::new(Mutex::new(registry)),
            http_requests,
            http_request_seconds,
            rate_limited,
            rate_limit_redis_errors,
            rate_limit_redis_up,
            db_up,
            db_pool_connections,
            db_pool_idle,
            db_pool_in_use,
            db_pool_max,
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
    /// `is_query` is `None` when the document names no operation it holds.
    pub fn record_request<'a>(
        &self,
        operation: Option<&str>,
        is_query: Option<bool>,
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
        let outcome = if failed { "error" } else { "ok" };
        self.requests
            .get_or_create(&RequestLabels {
                operation,
                outcome: outcome.to_owned(),
            })
            .inc();
        let operation_type = match is_query {
            Some(true) => "query",
            Some(false) => "mutation",
            None => "unknown",
        };
        self.request_seconds
            .get_or_create(&DurationLabels {
                operation_type,
                outcome,
            })
            .observe(elapsed.as_secs_f64());
    }

    /// A cache hit from `tier` (the cache's name for it: `local`, `redis`).
    pub fn cache_hit(&self, tier: &'static str) {
        self.cache_hits.get_or_create(&TierLabels { tier }).inc();
    }

    pub fn cache_miss(&self) {
        self.cache_misses.inc();
    }

    /// Records one HTTP response.
    pub fn record_http(&self, route: &'static str, status: u16, elapsed: Duration) {
        let labels = HttpLabels { route, status };
        self.http_requests.get_or_create(&labels).inc();
        self.http_request_seconds
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
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

    /// Every registered instrument in the OpenMetrics text format, for scrapers that
    /// ask for it by `Accept` (see [`Exposition`]).
    pub fn render_openmetrics(&self) -> String {
        let mut out = String::new();
        let registry = self
            .registry
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Encoding into a String cannot fail (fmt::Write on String is infallible).
        let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        out
    }

    /// Every registered instrument in the format the scraper asked for.
    pub fn render(&self, format: Exposition) -> String {
        let openmetrics = self.render_openmetrics();
        match format {
            Exposition::OpenMetrics => openmetrics,
            Exposition::Classic => classic(&openmetrics),
        }
    }
}

/// The two text formats of `/metrics`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exposition {
    /// Prometheus' classic text format (`text/plain; version=0.0.4`): what every
    /// scraper and parser reads, hence the default.
    Classic,
    /// OpenMetrics 1.0, when the scraper's `Accept` names
    /// `application/openmetrics-text` (Prometheus itself does).
    OpenMetrics,
}

impl Exposition {
    /// The format an `Accept` header asks for.
    pub fn from_accept(accept: Option<&str>) -> Exposition {
        match accept {
            Some(accept) if accept.contains("application/openmetrics-text") => {
                Exposition::OpenMetrics
            }
            _ => Exposition::Classic,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Exposition::Classic => "text/plain; version=0.0.4; charset=utf-8",
            Exposition::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// OpenMetrics text rewritten as the classic format. prometheus-client writes only
/// OpenMetrics, whose counters are families named without `_total` (`# TYPE
/// hub_db_statements counter`) with samples named with it; a classic parser takes the
/// family name for the sample's and reads every counter as an untyped family of its
/// own. Here the counters' `# HELP`/`# TYPE` lines take the samples' name, and the
/// lines classic text does not have (`# UNIT`, `# EOF`) go. Gauges and histograms are
/// written alike in both.
fn classic(openmetrics: &str) -> String {
    let counters: HashSet<&str> = openmetrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let metadata = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|prefix| Some((prefix, line.strip_prefix(prefix)?)));
        match metadata {
            Some((prefix, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                out.push_str(prefix);
                out.push_str(name);
                if counters.contains(name) {
                    out.push_str("_total");
                }
                out.push(' ');
                out.push_str(tail);
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// Request durations from half a millisecond (a cache hit) to about 16 s.
fn request_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_text_names_counter_families_by_their_samples() {
        let metrics = Metrics::new();
        metrics.db_statements.inc();
        metrics.record_request(
            Some("Q"),
            Some(true),
            Duration::from_millis(3),
            std::iter::empty(),
        );
        let text = metrics.render(Exposition::Classic);
        assert!(
            text.contains("# TYPE hub_db_statements_total counter\n"),
            "{text}"
        );
        assert!(text.contains("\nhub_db_statements_total 1\n"), "{text}");
        assert!(
            text.contains("# TYPE hub_graphql_request_duration_seconds histogram\n"),
            "{text}"
        );
        assert!(!text.contains("# EOF"), "{text}");
        let openmetrics = metrics.render(Exposition::OpenMetrics);
        assert!(openmetrics.contains("# TYPE hub_db_statements counter\n"));
        assert!(openmetrics.ends_with("# EOF\n"));
    }
}
