//! The HTTP surface: GraphQL over HTTP (`POST` and `GET /graphql`), GraphiQL for
//! browsers, health, readiness and metrics — and what every request passes through on
//! the way: a request id and log span, metrics, the per-organisation rate limit, the
//! request timeout, and a fast refusal while the database is down.
//!
//! The GraphQL handlers are written out rather than using async-graphql-axum's
//! extractor because the hub must decide things before GraphQL runs: a bad token is a
//! 401 (never anonymous), an oversized body a 413, a non-JSON body a 415 — each with a
//! GraphQL-shaped body so clients parse one error format — and because the response
//! cache sits here, in front of execution: a hit is answered without parsing GraphQL or
//! touching the database (see `cache`).
//!
//! **Order of checks on `/graphql`.** Content type and body size; the token (CPU only);
//! the body's JSON; the organisation's rate limit (before any database work, so an
//! organisation over its budget costs the database nothing); the document's shape
//! (`graphql::guard`, before the engine walks it); the caller's scope; the cache; and
//! only then execution. The whole handler runs under `REQUEST_TIMEOUT_MS`.
//!
//! **Logs.** Each request gets an id — the caller's `x-request-id` when it is a short
//! token of safe characters, else a fresh one — returned in the `x-request-id` header
//! and carried as a field of the request's span, so every line logged while serving it
//! (by any module) can be found by it. One line is logged per request: method, route,
//! status, duration, operation. Never headers (tokens), query strings or bodies
//! (variables may hold pupil data).

mod cors;
mod media;

use std::sync::Arc;
use std::time::Instant;

use async_graphql::http::GraphiQLSource;
use async_graphql::{BatchRequest, BatchResponse, Value};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use sea_orm::DatabaseConnection;
use serde_json::json;
use tower_http::catch_panic::CatchPanicLayer;
use tracing::Instrument;

use crate::access::Access;
use crate::admission::{self, Admission};
use crate::auth::{AuthError, Verifier};
use crate::budget::{self, Budget};
use crate::cache::{Cached, Key, KeyParts, Lookup, ResponseCache, Snapshot, Tier, document_hash};
use crate::concurrency::{ConcurrencyLimiter, Slot};
use crate::config::{InspectionCycle, Limits};
use crate::db::{self, Health};
use crate::error::{DbFailure, Error, ErrorCode};
use crate::graphql::{self, HubSchema, RequestContext, guard};
use crate::identity::Identity;
use crate::ratelimit::{BucketKey, Decision, RateLimiter};
use crate::telemetry::{Exposition, Metrics};

/// The request id header, read from callers and returned to them.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Everything a handler needs. Handlers share one behind an `Arc` (`Shared`): axum
/// clones the state for every middleware and handler a request passes, and one
/// reference count is cheaper than one per field (the metrics alone hold two dozen).
pub struct AppState {
    pub db: DatabaseConnection,
    pub schema: HubSchema,
    pub verifier: Verifier,
    pub metrics: Metrics,
    pub limits: Arc<Limits>,
    pub protection: graphql::Protection,
    pub inspection: InspectionCycle,
    pub cache: ResponseCache,
    pub admission: Admission,
    pub pupil_key_secret: Option<Arc<[u8]>>,
    pub health: Health,
    pub rate_limiter: RateLimiter,
    /// Requests each organisation may run at once (`MAX_CONCURRENT_REQUESTS_PER_ORG`).
    pub concurrency: ConcurrencyLimiter,
    /// Whether introspection queries and GraphiQL are served (`GRAPHQL_INTROSPECTION`).
    pub introspection: bool,
    /// Whether `_service { sdl }` is served to every caller (`FEDERATION_SDL_PUBLIC`);
    /// it is anyway where introspection is on, and to hub administrators.
    pub sdl_public: bool,
    /// `CORS_ALLOWED_ORIGINS`: which browser origins may call `/graphql`.
    pub cors: crate::config::CorsOrigins,
}

/// The state as handlers receive it.
type Shared = Arc<AppState>;

pub fn router(state: AppState) -> Router {
    let state: Shared = Arc::new(state);
    // The POST handler enforces the caller's own limit (`body_limit`); this is the
    // ceiling for any body axum itself reads.
    let body_limit = state
        .limits
        .max_body_bytes
        .max(state.limits.max_sync_body_bytes);
    let mut graphql = get(graphql_get)
        .post(graphql_post)
        .layer(middleware::from_fn_with_state(state.clone(), deadline))
        .layer(middleware::from_fn(media::negotiate));
    if let Some(cors) = cors::layer(&state.cors) {
        graphql = graphql.layer(cors);
    }
    Router::new()
        .route("/", get(|| async { Redirect::temporary("/graphql") }))
        .route("/graphql", graphql)
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(CatchPanicLayer::custom(panicked))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// A response whose body is a GraphQL error list, for failures outside execution. The
/// code travels in the response's extensions too, for `observe` to count.
fn error_response(status: StatusCode, code: ErrorCode, message: &str) -> Response {
    let body =
        json!({ "errors": [{ "message": message, "extensions": { "code": code.as_str() } }] });
    let mut response = (status, Json(body)).into_response();
    response.extensions_mut().insert(code);
    response
}

/// The response for an [`Error`] that ends a request before GraphQL runs. A document
/// that does not parse or is not valid is a request error (see [`request_error`]),
/// its status set by the media type the client accepts.
fn refusal(err: &Error) -> Response {
    let mut response = error_response(err.status(), err.code(), &err.to_string());
    if matches!(
        err.code(),
        ErrorCode::GraphqlParseFailed | ErrorCode::GraphqlValidationFailed
    ) {
        response.extensions_mut().insert(media::RequestError);
    }
    response
}

/// `400` `BAD_REQUEST`: the HTTP request is not a GraphQL request.
fn bad_request(message: &str) -> Response {
    refusal(&Error::BadRequest(message.to_owned()))
}

fn unavailable() -> Response {
    refusal(&Error::Unavailable)
}

/// Seconds an `OVERLOADED` client is asked to wait: connections come free within
/// requests' durations, far less than this.
const OVERLOADED_RETRY_AFTER_SECS: u32 = 1;

/// The answer to a request that found no free database connection: `OVERLOADED`
/// when the database answers on the health check's own connection (every pool
/// connection is busy), else `UNAVAILABLE` (the pool could not connect at all). A
/// request that met a full pool anywhere gets it as a whole (what else it resolved
/// is dropped): the retry will answer everything.
async fn busy(state: &AppState) -> Response {
    if state.health.confirm().await {
        overloaded()
    } else {
        unavailable()
    }
}

/// An executed answer with an `UNAVAILABLE` error (the database failed or was too
/// slow while it ran): `503`, so that load balancers and clients retry it like the
/// refusals before execution, with whatever data resolved still in the body.
fn unavailable_answer(body: Bytes) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("x-cache", HeaderValue::from_static("miss"));
    json_response(StatusCode::SERVICE_UNAVAILABLE, headers, body)
}

/// [`busy`] for a request the engine ran, whose `OVERLOADED` error says why in
/// `message` (a full pool, or a write rolled back by concurrent ones): its errors are
/// already in the metrics (`finish`), so the response does not carry its code for
/// `observe` to count again.
async fn busy_after_execution(state: &AppState, message: &str) -> Response {
    let mut response = if state.health.confirm().await {
        overloaded_because(message)
    } else {
        unavailable()
    };
    response.extensions_mut().remove::<ErrorCode>();
    response
}

/// The message of the first `OVERLOADED` error among `errors`, if any.
fn overloaded_message<'a>(
    mut errors: impl Iterator<Item = &'a async_graphql::ServerError>,
) -> Option<&'a str> {
    errors
        .find(|e| has_code(e, ErrorCode::Overloaded))
        .map(|e| e.message.as_str())
}

/// `503` with `Retry-After` and `OVERLOADED`.
fn overloaded() -> Response {
    overloaded_because(&Error::Overloaded.to_string())
}

/// [`overloaded`] saying why.
fn overloaded_because(message: &str) -> Response {
    let mut response = error_response(
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Overloaded,
        message,
    );
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(OVERLOADED_RETRY_AFTER_SECS),
    );
    response
}

/// A slot among the requests the caller's organisation may run at once, or the
/// `OVERLOADED` answer when none came free in time: the caller is sending more than
/// its share, which is overload, not an outage (the database is not asked).
async fn enter(state: &AppState, key: &BucketKey) -> Result<Slot, Response> {
    match state.concurrency.enter(key).await {
        Ok(slot) => Ok(slot),
        Err(_) => {
            tracing::warn!("request refused: its organisation has every slot in use");
            Err(overloaded())
        }
    }
}

/// Request id, span, one log line, and the HTTP metrics, for every request.
async fn observe(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request_id(request.headers());
    let route = route_of(request.uri().path());
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        route,
        operation = tracing::field::Empty,
    );
    let mut response = next.run(request).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let status = response.status();
    if let Some(code) = response.extensions().get::<ErrorCode>() {
        state
            .metrics
            .errors
            .get_or_create(&crate::telemetry::ErrorLabels {
                code: code.as_str().to_owned(),
            })
            .inc();
    }
    state.metrics.record_http(route, status.as_u16(), elapsed);
    let (status_code, duration_ms) = (status.as_u16(), elapsed.as_secs_f64() * 1000.0);
    span.in_scope(|| {
        // Probes and scrapes arrive every few seconds from machines; they are logged
        // only when asked for (`RUST_LOG=debug`).
        if matches!(route, "/healthz" | "/readyz" | "/metrics") && status.is_success() {
            tracing::debug!(status = status_code, duration_ms, "request");
        } else {
            tracing::info!(status = status_code, duration_ms, "request");
        }
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

/// The caller's request id if it is a plausible one (1–64 of `A-Za-z0-9._-`), so that
/// a client's own correlation id carries through; otherwise a fresh random one. The
/// check keeps log lines free of arbitrary client text.
fn request_id(headers: &HeaderMap) -> String {
    let given = headers
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            (1..=64).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        });
    match given {
        Some(id) => id.to_owned(),
        None => format!("{:032x}", rand::random::<u128>()),
    }
}

/// The route a path belongs to, as a fixed label (paths are client-chosen text).
fn route_of(path: &str) -> &'static str {
    match path {
        "/graphql" => "/graphql",
        "/healthz" => "/healthz",
        "/readyz" => "/readyz",
        "/metrics" => "/metrics",
        "/" => "/",
        _ => "other",
    }
}

/// Bounds a GraphQL request by `REQUEST_TIMEOUT_MS`. The handler's future is dropped
/// when it fires, which ends its database work: the statement in flight is abandoned
/// (and stopped by the statement timeout if the server is still running it).
async fn deadline(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let timeout = state.limits.request_timeout;
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(
                timeout_ms = timeout.as_millis() as u64,
                "request stopped by the request timeout"
            );
            refusal(&Error::Timeout)
        }
    }
}

/// A panic anywhere in a handler becomes a masked `INTERNAL_SERVER_ERROR` rather than a
/// dropped connection; the hub goes on serving.
fn panicked(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    tracing::error!(detail, "request handler panicked");
    error_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::Internal,
        "internal error",
    )
}

async fn not_found(uri: Uri) -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
        &format!("no route for {}", uri.path()),
    )
}

/// 401 with the RFC 6750 challenge; the message says why without echoing the token.
fn unauthenticated(err: &AuthError) -> Response {
    let mut response = error_response(
        StatusCode::UNAUTHORIZED,
        ErrorCode::Unauthenticated,
        &err.to_string(),
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(r#"Bearer error="invalid_token""#),
    );
    response
}

/// The verified token's identity (`None` without a token). CPU only: the rate limit is
/// keyed by it before the database is asked anything.
fn identify(state: &AppState, headers: &HeaderMap) -> Result<Option<Identity>, AuthError> {
    let header = match headers.get(header::AUTHORIZATION).map(|v| v.to_str()) {
        None => None,
        Some(Ok(value)) => Some(value),
        Some(Err(_)) => return Err(AuthError::MalformedHeader),
    };
    admission::identify(&state.verifier, header)
}

/// Spends `cost` from the caller's organisation's budget; a 429 when it is spent.
async fn rate_limit(
    state: &AppState,
    identity: Option<&Identity>,
    cost: usize,
) -> Result<(), Response> {
    let cost = u32::try_from(cost).unwrap_or(u32::MAX);
    match state
        .rate_limiter
        .check(&BucketKey::of(identity), cost)
        .await
    {
        Decision::Allowed => Ok(()),
        Decision::Limited { retry_after } => {
            // Whole seconds, rounded up: a client that waits exactly this long finds
            // the tokens there.
            let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            let secs = secs.max(1);
            let mut response = refusal(&Error::RateLimited {
                retry_after_secs: secs,
            });
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            Err(response)
        }
    }
}

/// The caller's access: the request's cache snapshot is taken, then the organisation
/// and scope are read — from memory when admission remembers them and the snapshot
/// trusts memory, else from the database (refused at once while the database is known
/// to be down).
async fn authorise(
    state: &AppState,
    identity: Option<Identity>,
) -> Result<(Access, Snapshot), Response> {
    let snapshot = state.cache.snapshot().await;
    authorise_under(state, identity, snapshot).await
}

/// [`authorise`] under a snapshot already taken.
async fn authorise_under(
    state: &AppState,
    identity: Option<Identity>,
    snapshot: Snapshot,
) -> Result<(Access, Snapshot), Response> {
    if let Some(known) = &identity
        && let Some(access) = state.admission.remembered(known, &snapshot)
    {
        return Ok((access, snapshot));
    }
    if identity.is_some() && !state.health.is_up() {
        return Err(unavailable());
    }
    match state.admission.access(&state.db, identity, &snapshot).await {
        Ok(access) => Ok((access, snapshot)),
        Err(AuthError::Lookup(db)) if DbFailure::of(&db) == DbFailure::Saturated => {
            Err(busy(state).await)
        }
        Err(err @ AuthError::Lookup(_)) => {
            tracing::warn!(error = %err, "token check failed: database unavailable");
            state.health.recheck();
            Err(unavailable())
        }
        Err(other) => Err(unauthenticated(&other)),
    }
}

/// One operation's caller, snapshot, cache key and cached answer.
struct Found {
    access: Access,
    snapshot: Snapshot,
    key: Option<Key>,
    hit: Option<(Cached, Tier)>,
}

/// Authorises one operation and looks its answer up. When memory holds the caller's
/// scope (or there is none to hold: anonymous callers), the key is worked out from it
/// and looked up in the same Redis round trip that says whether memory could be
/// trusted — a hit costs one round trip. Otherwise, or if memory could not be trusted,
/// the scope is read as [`authorise`] reads it and the key is looked up after.
async fn look_up(
    state: &AppState,
    identity: Option<Identity>,
    request: &async_graphql::Request,
) -> Result<Found, Response> {
    if !state.cache.enabled() {
        let (access, snapshot) = authorise(state, identity).await?;
        return Ok(Found {
            access,
            snapshot,
            key: None,
            hit: None,
        });
    }
    let mark = state.cache.mark();
    let snapshot = match state.admission.recall(identity.as_ref()) {
        Some((access, scope_stored)) => {
            let key = cache_key(state, &access, request);
            match state.cache.lookup(&key, mark, scope_stored).await {
                Lookup::Confirmed(snapshot, hit) => {
                    return Ok(Found {
                        access,
                        snapshot,
                        key: Some(key),
                        hit,
                    });
                }
                Lookup::Unconfirmed(snapshot) => snapshot,
            }
        }
        None => state.cache.snapshot().await,
    };
    let (access, snapshot) = authorise_under(state, identity, snapshot).await?;
    let key = cache_key(state, &access, request);
    let hit = state.cache.get(&key, &snapshot).await;
    Ok(Found {
        access,
        snapshot,
        key: Some(key),
        hit,
    })
}

/// The body of a `POST /graphql`, as far as it can be judged without the caller and
/// without parsing GraphQL: JSON of one operation or a batch of at most
/// `MAX_BATCH_SIZE`, no document nested deeper than the parser may go (the rest of a
/// document's shape is judged by [`check_document`] on a cache miss). The fuzz tests
/// below drive both.
fn parse_body(body: &[u8], limits: &Limits) -> Result<BatchRequest, Error> {
    let batch: BatchRequest = serde_json::from_slice(body).map_err(|err| {
        Error::BadRequest(format!("request body is not a GraphQL request: {err}"))
    })?;
    if let BatchRequest::Batch(requests) = &batch {
        if requests.is_empty() {
            return Err(Error::BadRequest(
                "a batch must hold at least one operation".to_owned(),
            ));
        }
        if requests.len() > limits.max_batch {
            return Err(Error::BadRequest(format!(
                "a batch may hold at most {} operations",
                limits.max_batch
            )));
        }
    }
    for request in batch.iter() {
        guard::check_nesting(&request.query).map_err(Error::ParseFailed)?;
    }
    Ok(batch)
}

/// Refuses documents the engine should never be asked to walk (see `graphql::guard`)
/// and introspection when it is off. These checks need the parsed document, so they
/// run only when the engine is about to execute it — after the cache was consulted: a
/// cached answer came from a document that passed them (the introspection setting is
/// part of every cache key), and parsing a dashboard's document cost a hit more than
/// the rest of its work. The cheap nesting check (no parse) runs before the lookup.
fn check_document(
    request: &mut async_graphql::Request,
    limits: &Limits,
    introspection: bool,
) -> Result<(), Error> {
    // A syntax error is left for the engine to report, with its position.
    if let Ok(document) = request.parsed_query() {
        guard::check_expansion(document, limits.max_complexity).map_err(Error::ValidationFailed)?;
        guard::check_depth(document, limits.max_depth).map_err(Error::ValidationFailed)?;
        guard::check_list_repeats(document, graphql::list_fields())
            .map_err(Error::ValidationFailed)?;
        if !introspection && guard::selects_introspection(document) {
            return Err(Error::ValidationFailed(
                "introspection is turned off on this hub (GRAPHQL_INTROSPECTION)".to_owned(),
            ));
        }
    }
    Ok(())
}

/// `_service { sdl }` goes to whom the policy says ([`Access::require_sdl`]). The
/// engine answers it whatever the introspection setting, so it is refused here, before
/// execution, like introspection; a cached answer to it was stored for a caller of the
/// same scope, under the same settings (both are part of every cache key).
fn check_sdl(
    state: &AppState,
    access: &Access,
    request: &mut async_graphql::Request,
) -> Result<(), Error> {
    match request.parsed_query() {
        Ok(document) if guard::selects_service(document) => {
            access.require_sdl(state.introspection || state.sdl_public)
        }
        _ => Ok(()),
    }
}

fn too_large(limit: usize) -> Response {
    error_response(
        StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::BadRequest,
        &format!("request body is larger than {limit} bytes"),
    )
}

/// Whether every operation of a body over `MAX_BODY_BYTES` is a sync mutation whose
/// document alone is within that limit: the large body is for rows, sent as
/// variables. Decided from the document, so a writer's token does not make any
/// large query acceptable (one 3.8 MB query once held the pool for seconds).
fn only_sync(batch: &mut BatchRequest, limits: &Limits) -> bool {
    batch.iter_mut().all(|request| {
        request.query.len() <= limits.max_body_bytes && graphql::only_sync_mutations(request)
    })
}

/// The most body this caller's request may have, before its document is read: the
/// larger sync limit for a verified token with a role that writes data, the general
/// one for everybody else. A body over the general limit must also be sync
/// mutations only ([`only_sync`]).
fn body_limit(limits: &Limits, identity: Option<&Identity>) -> usize {
    match identity {
        Some(identity) if crate::access::writes_data(&identity.roles) => {
            limits.max_sync_body_bytes.max(limits.max_body_bytes)
        }
        _ => limits.max_body_bytes,
    }
}

async fn graphql_post(State(state): State<Shared>, request: Request) -> Response {
    let headers = request.headers().clone();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if mime != "application/json" && mime != "application/graphql-response+json" {
        return error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::BadRequest,
            "send the request as JSON with `Content-Type: application/json`",
        );
    }
    let identity = match identify(&state, &headers) {
        Ok(identity) => identity,
        Err(err) => return unauthenticated(&err),
    };
    // A body announced larger than the limit is refused before a byte of it is read.
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let limit = body_limit(&state.limits, identity.as_ref());
    if announced.is_some_and(|length| length > limit as u64) {
        return too_large(limit);
    }
    let body = match Limited::new(request.into_body(), limit).collect().await {
        Ok(body) => body.to_bytes(),
        Err(err) if err.is::<LengthLimitError>() => return too_large(limit),
        Err(_) => return bad_request("could not read the request body"),
    };
    let mut batch = match parse_body(&body, &state.limits) {
        Ok(batch) => batch,
        Err(err) => return refusal(&err),
    };
    if body.len() > state.limits.max_body_bytes && !only_sync(&mut batch, &state.limits) {
        return error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::BadRequest,
            &format!(
                "request body is larger than {} bytes; only the sync mutations ({}) may send \
                 larger bodies, with their rows in `variables`",
                state.limits.max_body_bytes,
                graphql::SYNC_MUTATIONS.join(", ")
            ),
        );
    }
    if let Err(response) = rate_limit(&state, identity.as_ref(), batch.iter().count()).await {
        return response;
    }
    match batch {
        BatchRequest::Single(request) => single(&state, identity, request, Transport::Post).await,
        BatchRequest::Batch(requests) => {
            let organisation = BucketKey::of(identity.as_ref());
            match authorise(&state, identity).await {
                Ok((access, _)) => execute_batch(&state, &organisation, access, requests).await,
                Err(response) => response,
            }
        }
    }
}

async fn graphql_get(State(state): State<Shared>, headers: HeaderMap, uri: Uri) -> Response {
    let query = uri.query().unwrap_or("");
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    if wants_html && !query.contains("query=") {
        if !state.introspection {
            return error_response(
                StatusCode::NOT_FOUND,
                ErrorCode::NotFound,
                "GraphiQL is turned off on this hub (GRAPHQL_INTROSPECTION)",
            );
        }
        return Html(
            GraphiQLSource::build()
                .endpoint("/graphql")
                .title("Baseline Hub")
                .finish(),
        )
        .into_response();
    }
    let identity = match identify(&state, &headers) {
        Ok(identity) => identity,
        Err(err) => return unauthenticated(&err),
    };
    let request = match get_request(&uri) {
        Ok(request) => request,
        Err(message) => return bad_request(&message),
    };
    if let Err(message) = guard::check_nesting(&request.query) {
        return refusal(&Error::ParseFailed(message));
    }
    if let Err(response) = rate_limit(&state, identity.as_ref(), 1).await {
        return response;
    }
    let if_none_match = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    single(&state, identity, request, Transport::Get { if_none_match }).await
}

/// The parameters of a GraphQL GET (`query`, `operationName`, and `variables` and
/// `extensions` as JSON text). Read here rather than by async-graphql's
/// `parse_query_string`, which looks for `operation_name` and so ignores the
/// `operationName` every client sends.
fn get_request(uri: &Uri) -> Result<async_graphql::Request, String> {
    #[derive(serde::Deserialize)]
    struct Params {
        #[serde(default)]
        query: String,
        #[serde(rename = "operationName")]
        operation_name: Option<String>,
        variables: Option<String>,
        extensions: Option<String>,
    }
    let params = axum::extract::Query::<Params>::try_from_uri(uri)
        .map_err(|err| format!("invalid GraphQL GET request: {err}"))?
        .0;
    let json = |name: &str, text: Option<String>| -> Result<serde_json::Value, String> {
        text.filter(|text| !text.is_empty())
            .map_or(Ok(serde_json::Value::Null), |text| {
                serde_json::from_str(&text).map_err(|err| format!("invalid {name}: {err}"))
            })
    };
    let mut request = json!({ "query": params.query });
    if let Some(name) = params.operation_name.filter(|name| !name.is_empty()) {
        request["operationName"] = json!(name);
    }
    for name in ["variables", "extensions"] {
        let text = match name {
            "variables" => params.variables.clone(),
            _ => params.extensions.clone(),
        };
        let value = json(name, text)?;
        if !value.is_null() {
            request[name] = value;
        }
    }
    serde_json::from_value(request).map_err(|err| format!("invalid GraphQL GET request: {err}"))
}

/// How a request arrived: HTTP caching (`ETag`, `304`) applies to GET only.
enum Transport {
    Post,
    Get { if_none_match: Option<String> },
}

/// One operation: answered from the cache when it holds the same question from the
/// same scope, otherwise executed (and its answer stored if it may be).
async fn single(
    state: &AppState,
    identity: Option<Identity>,
    mut request: async_graphql::Request,
    transport: Transport,
) -> Response {
    if let Err(response) = persisted_query(state, &mut request).await {
        return response;
    }
    if request.query.trim().is_empty() {
        return bad_request("the request has no `query`");
    }
    let organisation = BucketKey::of(identity.as_ref());
    let Found {
        access,
        snapshot,
        key,
        hit,
    } = match look_up(state, identity, &request).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    if let Some((cached, tier)) = hit {
        return respond(
            state,
            cached.body,
            Some(&cached.etag),
            Some(tier),
            &transport,
        );
    }
    // The document's shape first: what follows walks its fragments.
    if let Err(err) = check_document(&mut request, &state.limits, state.introspection) {
        return refusal(&err);
    }
    let operation = graphql::operation(&mut request);
    if matches!(transport, Transport::Get { .. })
        && operation.as_ref().is_some_and(|op| !op.is_query)
    {
        return mutation_over_get();
    }
    if let Err(err) = check_sdl(state, &access, &mut request) {
        return refusal(&err);
    }
    if !state.health.is_up() {
        return unavailable();
    }
    let _slot = match enter(state, &organisation).await {
        Ok(slot) => slot,
        Err(response) => return response,
    };
    let parsed = request.parsed_query().is_ok();
    let budget = Budget::new(state.limits.max_statements);
    let context = context(state, access, &budget);
    let hints = context.hints.clone();
    let request = introspection(state, context.attach(request));
    let started = Instant::now();
    let schema = state.schema.clone();
    let writes = operation.as_ref().is_some_and(|op| !op.is_query);
    let stop = (!writes).then_some(&*budget);
    let mut response = match run(stop, async move { schema.execute(request).await }).await {
        Ok(response) => response,
        Err(err) => return refusal(&err),
    };
    finish(state, &mut response, operation.as_ref(), parsed, started);
    if !graphql::executed(&response, operation.as_ref().is_some_and(|op| op.entities)) {
        return request_error(&response);
    }
    let is_query = operation.is_some_and(|op| op.is_query);
    let unavailable = response
        .errors
        .iter()
        .any(|e| has_code(e, ErrorCode::Unavailable));
    if unavailable {
        state.health.recheck();
    }
    if let Some(message) = overloaded_message(response.errors.iter()) {
        return busy_after_execution(state, message).await;
    }
    let body = match budget::to_json(&response, state.limits.max_answer_bytes) {
        Ok(body) => Bytes::from(body),
        Err(err) => return refusal(&err),
    };
    if unavailable {
        return unavailable_answer(body);
    }
    let tags = (is_query && response.errors.is_empty())
        .then(|| hints.storable_tags())
        .flatten();
    let Some(tags) = tags else {
        return respond(state, body, None, None, &transport);
    };
    // Only answers that may be cached are hashed for their entity tag.
    let cached = Cached::new(body);
    if let Some(key) = &key {
        state.cache.put(key, &snapshot, &tags, &cached).await;
    }
    respond(state, cached.body, Some(&cached.etag), None, &transport)
}

/// Runs the engine on a task of its own and waits for it, or for the request's
/// statement budget (`stop`) to run out. The task is aborted when this future is
/// dropped — by the request timeout (`deadline`) or by the budget — so a stopped
/// request's work ends at its next await point instead of running on unseen: awaiting
/// the engine in the handler itself left a long stretch of resolving in-memory rows,
/// which awaits nothing, answering 200 after the timeout had fired.
///
/// Writes are not raced against the budget (`stop` is `None`): statements are counted
/// after they run, so a write crossing it could be past its commit when stopped and be
/// reported as failed though stored. Their size is bounded before they run instead (the
/// cost model, the row and body limits), and a write is always all or nothing.
async fn run<T: Send + 'static>(
    stop: Option<&Budget>,
    work: impl Future<Output = T> + Send + 'static,
) -> Result<T, Error> {
    let mut task = AbortOnDrop(tokio::spawn(work.in_current_span()));
    let exhausted = async {
        match stop {
            Some(budget) => budget.exhausted().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        biased;
        () = exhausted => {
            let budget = stop.expect("only a budget runs out");
            tracing::warn!(statements = budget.statements(), "request stopped by its statement budget");
            Err(budget.error())
        }
        joined = &mut task.0 => joined.map_err(|err| {
            if err.is_panic() {
                let panic = err.into_panic();
                let detail = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("(no message)");
                tracing::error!(detail, "request execution panicked");
            }
            Error::Internal("request execution did not finish".to_owned())
        }),
    }
}

/// A task that is aborted when its handle is dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A batch runs uncached: each operation gets its own context, all share one scope.
async fn execute_batch(
    state: &AppState,
    organisation: &BucketKey,
    access: Access,
    mut requests: Vec<async_graphql::Request>,
) -> Response {
    for request in &mut requests {
        if let Err(err) = check_document(request, &state.limits, state.introspection) {
            return refusal(&err);
        }
        if let Err(err) = check_sdl(state, &access, request) {
            return refusal(&err);
        }
    }
    if !state.health.is_up() {
        return unavailable();
    }
    let _slot = match enter(state, organisation).await {
        Ok(slot) => slot,
        Err(response) => return response,
    };
    // One budget for the whole batch: a batch is one request.
    let budget = Budget::new(state.limits.max_statements);
    let mut operations = Vec::with_capacity(requests.len());
    let mut parsed = Vec::with_capacity(requests.len());
    let batch = BatchRequest::Batch(
        requests
            .into_iter()
            .map(|mut r| {
                operations.push(graphql::operation(&mut r));
                parsed.push(r.parsed_query().is_ok());
                introspection(state, context(state, access.clone(), &budget).attach(r))
            })
            .collect(),
    );
    let started = Instant::now();
    let schema = state.schema.clone();
    let writes = operations
        .iter()
        .any(|op| op.as_ref().is_some_and(|op| !op.is_query));
    let stop = (!writes).then_some(&*budget);
    let mut response = match run(stop, async move { schema.execute_batch(batch).await }).await {
        Ok(response) => response,
        Err(err) => return refusal(&err),
    };
    if let BatchResponse::Batch(responses) = &mut response {
        for ((response, operation), parsed) in responses.iter_mut().zip(&operations).zip(parsed) {
            finish(state, response, operation.as_ref(), parsed, started);
        }
    }
    let responses = match &response {
        BatchResponse::Single(response) => std::slice::from_ref(response),
        BatchResponse::Batch(responses) => responses.as_slice(),
    };
    if let Some(message) =
        overloaded_message(responses.iter().flat_map(|response| &response.errors))
    {
        return busy_after_execution(state, message).await;
    }
    let unavailable = responses
        .iter()
        .flat_map(|response| &response.errors)
        .any(|e| has_code(e, ErrorCode::Unavailable));
    let body = match budget::to_json(&response, state.limits.max_answer_bytes) {
        Ok(body) => Bytes::from(body),
        Err(err) => return refusal(&err),
    };
    if unavailable {
        return unavailable_answer(body);
    }
    let mut http = json_response(StatusCode::OK, HeaderMap::new(), body);
    http.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    http.headers_mut()
        .insert("x-cache", HeaderValue::from_static("miss"));
    http
}

/// After the engine ran an operation: codes on every error, the operation's name on
/// the request's log span, and the request in the metrics.
fn finish(
    state: &AppState,
    response: &mut async_graphql::Response,
    operation: Option<&graphql::Operation>,
    parsed: bool,
    started: Instant,
) {
    let entities = operation.is_some_and(|op| op.entities);
    graphql::code_errors(response, parsed, entities);
    let name = operation.and_then(|op| op.name.as_deref());
    if let Some(name) = name {
        tracing::Span::current().record("operation", name);
    }
    state.metrics.record_request(
        name,
        operation.map(|op| op.is_query),
        started.elapsed(),
        graphql::error_codes(response),
    );
}

/// The HTTP response for an answer; `etag` is present when the answer may be cached.
/// GET answers that may be cached carry an `ETag` and `Cache-Control: private` (they
/// depend on the caller's token), and a matching `If-None-Match` gets `304 Not
/// Modified`; everything else is `no-store`.
fn respond(
    state: &AppState,
    body: Bytes,
    etag: Option<&str>,
    tier: Option<Tier>,
    transport: &Transport,
) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-cache",
        HeaderValue::from_static(if tier.is_some() { "hit" } else { "miss" }),
    );
    headers.insert(header::VARY, HeaderValue::from_static("authorization"));
    let (Transport::Get { if_none_match }, Some(etag)) = (transport, etag) else {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return json_response(StatusCode::OK, headers, body);
    };
    let max_age = format!("private, max-age={}", state.cache.ttl().as_secs());
    if let Ok(value) = HeaderValue::from_str(&max_age) {
        headers.insert(header::CACHE_CONTROL, value);
    }
    if let Ok(value) = HeaderValue::from_str(etag) {
        headers.insert(header::ETAG, value);
    }
    let matches = if_none_match.as_deref().is_some_and(|list| {
        list.split(',')
            .map(|tag| tag.trim().trim_start_matches("W/"))
            .any(|tag| tag == "*" || tag == etag)
    });
    if matches {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    json_response(StatusCode::OK, headers, body)
}

/// The answer to a request the engine refused before executing it (a parse or
/// validation failure, a variable of the wrong type): its errors and no `data` entry
/// (GraphQL over HTTP: a request error), marked for [`media::negotiate`], which makes
/// it a `400` for clients that accept `application/graphql-response+json` and a `200`
/// for the others. Its codes are already in the metrics (`finish`).
fn request_error(response: &async_graphql::Response) -> Response {
    #[derive(serde::Serialize)]
    struct Errors<'a> {
        errors: &'a [async_graphql::ServerError],
    }
    let body = match serde_json::to_vec(&Errors {
        errors: &response.errors,
    }) {
        Ok(body) => Bytes::from(body),
        Err(err) => {
            return refusal(&Error::Internal(format!(
                "could not serialise errors: {err}"
            )));
        }
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let mut http = json_response(StatusCode::OK, headers, body);
    http.extensions_mut().insert(media::RequestError);
    http
}

/// `405` with `Allow: POST` for a mutation sent with GET (GraphQL over HTTP): GET is
/// for reads that proxies may log and caches may keep, and a write in a URL is both.
fn mutation_over_get() -> Response {
    let mut response = error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::BadRequest,
        "mutations must be sent with POST",
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    response
}

fn json_response(status: StatusCode, mut headers: HeaderMap, body: Bytes) -> Response {
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    (status, headers, body).into_response()
}

/// The cache key of a request from this caller.
fn cache_key(state: &AppState, access: &Access, request: &async_graphql::Request) -> Key {
    let variables = serde_json::to_value(&request.variables).unwrap_or_default();
    // Answers can depend on the day (agreements come into and out of force).
    let settings = format!(
        "{}|{}",
        state.cache.settings(),
        chrono::Utc::now().date_naive()
    );
    Key::new(&KeyParts {
        document: &request.query,
        operation_name: request.operation_name.as_deref(),
        variables: &variables,
        fingerprint: access.fingerprint(),
        settings: &settings,
    })
}

/// Automatic persisted queries (Apollo's protocol): a request may send only the
/// SHA-256 of its document in `extensions.persistedQuery`; if the hub does not know
/// it, the client is told `PersistedQueryNotFound` and retries with the document,
/// which is checked against the hash and remembered.
async fn persisted_query(
    state: &AppState,
    request: &mut async_graphql::Request,
) -> Result<(), Response> {
    let Some(extension) = request.extensions.get("persistedQuery") else {
        return Ok(());
    };
    let Value::Object(fields) = extension else {
        return Err(bad_request("extensions.persistedQuery must be an object"));
    };
    if !matches!(fields.get("version"), Some(Value::Number(n)) if n.as_u64() == Some(1)) {
        return Err(bad_request(
            "only version 1 of persisted queries is supported",
        ));
    }
    let Some(Value::String(hash)) = fields.get("sha256Hash") else {
        return Err(bad_request(
            "extensions.persistedQuery.sha256Hash must be a string",
        ));
    };
    let hash = hash.to_ascii_lowercase();
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad_request(
            "extensions.persistedQuery.sha256Hash must be 64 hex digits",
        ));
    }
    if request.query.trim().is_empty() {
        return match state.cache.persisted_query(&hash).await {
            Some(document) => {
                request.query = document.to_string();
                Ok(())
            }
            None => Err(error_response(
                StatusCode::OK,
                ErrorCode::PersistedQueryNotFound,
                "PersistedQueryNotFound",
            )),
        };
    }
    if document_hash(&request.query) != hash {
        return Err(bad_request("provided sha256Hash does not match the query"));
    }
    state.cache.persist_query(&hash, &request.query).await;
    Ok(())
}

/// Turns introspection off for the request unless the hub serves it.
fn introspection(state: &AppState, request: async_graphql::Request) -> async_graphql::Request {
    if state.introspection {
        request
    } else {
        request.disable_introspection()
    }
}

fn has_code(error: &async_graphql::ServerError, code: ErrorCode) -> bool {
    error
        .extensions
        .as_ref()
        .and_then(|ext| ext.get("code"))
        .is_some_and(|value| matches!(value, Value::String(c) if c == code.as_str()))
}

fn context(state: &AppState, access: Access, budget: &Arc<Budget>) -> RequestContext {
    RequestContext::new(
        db::counted(&state.db, &state.metrics, budget.clone()),
        access,
        state.limits.clone(),
        state.protection.clone(),
        state.inspection,
        state.cache.clone(),
        state.pupil_key_secret.clone(),
    )
}

/// Ready when the database answers now (a live check, not the last one remembered,
/// so that a load balancer sees recovery as soon as it happens).
async fn readyz(State(state): State<Shared>) -> Response {
    let up = state.health.ping().await;
    if up != state.health.is_up() {
        state.health.recheck();
    }
    if up {
        (
            StatusCode::OK,
            Json(json!({ "status": "ready", "database": "up" })),
        )
            .into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "not ready", "database": "down" })),
        )
            .into_response()
    }
}

/// The metrics in the classic Prometheus text format, or OpenMetrics when the
/// scraper's `Accept` asks for it (see `telemetry::Exposition`).
async fn metrics(State(state): State<Shared>, headers: HeaderMap) -> Response {
    db::observe_pool(&state.db, &state.metrics);
    let format = Exposition::from_accept(
        headers
            .get(header::ACCEPT)
            .and_then(|value| value.to_str().ok()),
    );
    (
        [(header::CONTENT_TYPE, format.content_type())],
        state.metrics.render(format),
    )
        .into_response()
}

#[cfg(test)]
mod fuzz {
    //! The request parser under generated input: arbitrary bytes, and JSON requests
    //! whose documents are random sequences of GraphQL tokens (brackets, spreads,
    //! fragments, aliases, arguments, strings, comments, introspection). Whatever comes
    //! in, parsing must not panic, and whatever it lets through, the engine must answer
    //! with errors that carry a code. The seed is fixed, so a run is repeatable; the
    //! case count keeps it to a few seconds of `cargo test`.

    use super::*;
    use crate::config::Limits;
    use crate::graphql;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

    fn runner(cases: u32) -> TestRunner {
        let config = Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        };
        TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha))
    }

    fn token() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "{",
                "}",
                "(",
                ")",
                "[",
                "]",
                "...",
                "...F",
                "...G",
                ":",
                "=",
                "$v",
                "!",
                "query",
                "query Q($v: Int)",
                "mutation",
                "fragment F on Query",
                "fragment G on Region",
                "on Query",
                "regions",
                "code",
                "name",
                "schools(first: 5)",
                "edges",
                "node",
                "urn",
                "a:",
                "b:",
                "__typename",
                "__schema",
                "__type(name: \"Query\")",
                "@skip(if: true)",
                "@include(if: $v)",
                "\"",
                "\"\"\"",
                "\\",
                "#",
                "\n",
                "1",
                "-1.5e3",
                "null",
                "true",
                "ENUM",
            ])
            .prop_map(str::to_owned),
            "[a-zA-Z_][a-zA-Z0-9_]{0,6}",
            any::<char>().prop_map(String::from),
        ]
    }

    /// Token soup: mostly not GraphQL, exercising the parser's error paths.
    fn soup() -> impl Strategy<Value = String> {
        prop::collection::vec(token(), 0..120).prop_map(|tokens| tokens.join(" "))
    }

    /// Well-formed selections over the hub's own fields (right and wrong ones), nested
    /// and aliased, with a fragment: exercising validation, the limits and execution.
    fn selection() -> impl Strategy<Value = String> {
        let leaf = prop::sample::select(vec!["code", "name", "__typename", "urn", "nope", "...F"])
            .prop_map(str::to_owned);
        leaf.prop_recursive(6, 64, 4, |inner| {
            (
                prop::sample::select(vec![
                    "regions",
                    "schools(first: 3)",
                    "schools(first: 100000)",
                    "localAuthorities",
                    "edges",
                    "node",
                    "region",
                    "... on Query",
                    "__schema",
                ]),
                prop::collection::vec(inner, 1..4),
                prop::option::of("[a-z]{1,3}"),
            )
                .prop_map(|(field, children, alias)| {
                    let alias = alias.map(|a| format!("{a}: ")).unwrap_or_default();
                    format!("{alias}{field} {{ {} }}", children.join(" "))
                })
        })
    }

    /// Selections that follow the schema (regions, their local authorities, their
    /// region…) to a random depth, with aliases: these pass validation unless they
    /// exceed a limit.
    fn typed() -> impl Strategy<Value = String> {
        (
            1usize..16,
            prop::collection::vec((any::<bool>(), prop::option::of("[a-z]{1,3}")), 16),
        )
            .prop_map(|(depth, choices)| {
                let mut text = String::from("regions {");
                for (level, (extra, alias)) in choices.iter().take(depth).enumerate() {
                    let alias = alias.as_ref().map(|a| format!("{a}: ")).unwrap_or_default();
                    if *extra {
                        text.push_str(" code name __typename");
                    }
                    if level % 2 == 0 {
                        text.push_str(&format!(" {alias}localAuthorities {{"));
                    } else {
                        text.push_str(&format!(" {alias}region {{"));
                    }
                }
                text.push_str(" code");
                text.push_str(&" }".repeat(depth + 1));
                text
            })
    }

    fn document() -> impl Strategy<Value = String> {
        prop_oneof![
            1 => soup(),
            3 => prop::collection::vec(typed(), 1..4).prop_map(|fields| {
                // Root aliases keep same-named fields with different selections apart.
                let fields: Vec<String> = fields
                    .iter()
                    .enumerate()
                    .map(|(i, f)| format!("r{i}: {f}"))
                    .collect();
                format!("{{ {} }}", fields.join(" "))
            }),
            1 => (
                prop::collection::vec(selection(), 1..4),
                selection(),
                any::<bool>()
            )
                .prop_map(|(selections, fragment, with_fragment)| {
                    let mut document = format!("query Q($v: Int) {{ {} }}", selections.join(" "));
                    if with_fragment {
                        document.push_str(&format!(" fragment F on Query {{ {fragment} }}"));
                    }
                    document
                }),
        ]
    }

    fn request() -> impl Strategy<Value = serde_json::Value> {
        (document(), prop::option::of("[A-Za-z]{1,5}"), any::<bool>()).prop_map(
            |(query, operation, variables)| {
                let mut request = json!({ "query": query });
                if let Some(name) = operation {
                    request["operationName"] = json!(name);
                }
                if variables {
                    request["variables"] = json!({ "v": 1 });
                }
                request
            },
        )
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_parser() {
        let limits = Limits::default();
        runner(512)
            .run(&prop::collection::vec(any::<u8>(), 0..512), |bytes| {
                if let Ok(mut batch) = parse_body(&bytes, &limits) {
                    for request in batch.iter_mut() {
                        let _ = check_document(request, &limits, false);
                    }
                }
                Ok(())
            })
            .expect("no panic");
    }

    #[test]
    fn generated_requests_are_refused_or_answered_with_coded_errors() {
        // The cost model refuses most random nestings of lists, which is right for the
        // hub but would leave this test executing almost nothing: it is about error
        // coding, so it lifts the complexity budget (no request context is attached,
        // so every resolver that runs fails at once).
        let limits = Limits {
            max_complexity: 100_000_000,
            ..Limits::default()
        };
        let schema = graphql::build(&limits, false);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let bodies = prop_oneof![
            request().prop_map(|r| r.to_string()),
            prop::collection::vec(request(), 0..12)
                .prop_map(|batch| serde_json::Value::Array(batch).to_string()),
        ];
        // How many cases reached the engine, and how many of those it executed: a
        // generator that only ever produced rejects would prove little.
        let (reached, executed) = (std::cell::Cell::new(0), std::cell::Cell::new(0));
        runner(256)
            .run(&bodies, |body| {
                let Ok(mut batch) = parse_body(body.as_bytes(), &limits) else {
                    return Ok(());
                };
                if batch
                    .iter_mut()
                    .any(|request| check_document(request, &limits, false).is_err())
                {
                    return Ok(());
                }
                reached.set(reached.get() + 1);
                // No request context is attached: resolvers that run fail with a coded
                // INTERNAL_SERVER_ERROR, which is all this test needs of them.
                let parsed: Vec<bool> =
                    batch.iter_mut().map(|r| r.parsed_query().is_ok()).collect();
                let mut response = runtime.block_on(schema.execute_batch(batch));
                match &mut response {
                    async_graphql::BatchResponse::Single(r) => {
                        graphql::code_errors(r, parsed[0], false)
                    }
                    async_graphql::BatchResponse::Batch(rs) => rs
                        .iter_mut()
                        .zip(parsed)
                        .for_each(|(r, parsed)| graphql::code_errors(r, parsed, false)),
                }
                let errors: Vec<_> = match &response {
                    async_graphql::BatchResponse::Single(r) => r.errors.iter().collect(),
                    async_graphql::BatchResponse::Batch(rs) => {
                        rs.iter().flat_map(|r| r.errors.iter()).collect()
                    }
                };
                // Past validation: the engine ran resolvers (which fail for want of
                // a context, with INTERNAL_SERVER_ERROR) rather than refusing the
                // document.
                let ran = !errors.is_empty()
                    && errors.iter().all(|e| {
                        !has_code(e, ErrorCode::BadUserInput)
                            && !has_code(e, ErrorCode::GraphqlParseFailed)
                            && !has_code(e, ErrorCode::GraphqlValidationFailed)
                    });
                executed.set(executed.get() + usize::from(ran));
                for error in errors {
                    let code = error.extensions.as_ref().and_then(|e| e.get("code"));
                    prop_assert!(
                        matches!(code, Some(Value::String(_))),
                        "an error without a code: {error:?} for {body}"
                    );
                }
                Ok(())
            })
            .expect("every generated request is refused or answered with coded errors");
        assert!(
            reached.get() > 100 && executed.get() > 10,
            "{} cases reached the engine, {} executed",
            reached.get(),
            executed.get()
        );
    }
}
