//! The HTTP surface: GraphQL over HTTP (`POST` and `GET /graphql`), GraphiQL for
//! browsers, health, readiness and metrics.
//!
//! The GraphQL handlers are written out rather than using async-graphql-axum's
//! extractor because the hub must decide things before GraphQL runs: a bad token is a
//! 401 (never anonymous), an oversized body a 413, a non-JSON body a 415 — each with a
//! GraphQL-shaped body so clients parse one error format — and because the response
//! cache sits here, in front of execution: a hit is answered without parsing GraphQL or
//! touching the database (see `cache`).

use std::sync::Arc;

use async_graphql::http::GraphiQLSource;
use async_graphql::parser::types::{DocumentOperations, OperationType};
use async_graphql::{BatchRequest, Value};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use sea_orm::DatabaseConnection;
use serde_json::json;

use crate::access::Access;
use crate::auth::{AuthError, Verifier};
use crate::cache::{Cached, Key, KeyParts, ResponseCache, Snapshot, Tier, document_hash};
use crate::config::{Disclosure, InspectionCycle, Limits};
use crate::db;
use crate::error::ErrorCode;
use crate::graphql::{HubSchema, RequestContext};
use crate::telemetry::Metrics;

/// Everything a handler needs; cheap to clone (all fields are shared handles).
#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub schema: HubSchema,
    pub verifier: Verifier,
    pub metrics: Metrics,
    pub limits: Arc<Limits>,
    pub disclosure: Disclosure,
    pub inspection: InspectionCycle,
    pub cache: ResponseCache,
}

pub fn router(state: AppState) -> Router {
    let body_limit = state.limits.max_body_bytes;
    Router::new()
        .route("/", get(|| async { Redirect::temporary("/graphql") }))
        .route("/graphql", get(graphql_get).post(graphql_post))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

/// A response whose body is a GraphQL error list, for failures outside execution.
fn error_response(status: StatusCode, code: ErrorCode, message: &str) -> Response {
    let body =
        json!({ "errors": [{ "message": message, "extensions": { "code": code.as_str() } }] });
    (status, Json(body)).into_response()
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

/// The caller's access: the token is checked (CPU only), then the request's cache
/// snapshot is taken and the organisation and scope are read — from memory when the
/// cache remembers them and may be trusted, else from the database.
async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<(Access, Snapshot), Response> {
    let header = match headers.get(header::AUTHORIZATION).map(|v| v.to_str()) {
        None => None,
        Some(Ok(value)) => Some(value),
        Some(Err(_)) => return Err(unauthenticated(&AuthError::MalformedHeader)),
    };
    let identity = state
        .verifier
        .identity(header)
        .map_err(|err| unauthenticated(&err))?;
    let snapshot = state.cache.snapshot().await;
    let access = state
        .cache
        .access(&state.db, identity, &snapshot)
        .await
        .map_err(|err| match err {
            AuthError::Lookup(_) => {
                tracing::warn!(error = %err, "token check failed: database unavailable");
                error_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::Unavailable,
                    "the data store is unavailable; retry shortly",
                )
            }
            other => unauthenticated(&other),
        })?;
    Ok((access, snapshot))
}

async fn graphql_post(State(state): State<AppState>, request: Request) -> Response {
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
            ErrorCode::BadUserInput,
            "send the request as JSON with `Content-Type: application/json`",
        );
    }
    let body = match Bytes::from_request(request, &()).await {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::BadUserInput,
                &format!(
                    "request body is larger than {} bytes",
                    state.limits.max_body_bytes
                ),
            );
        }
        Err(_) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadUserInput,
                "could not read the request body",
            );
        }
    };
    let batch: BatchRequest = match serde_json::from_slice(&body) {
        Ok(batch) => batch,
        Err(err) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadUserInput,
                &format!("request body is not a GraphQL request: {err}"),
            );
        }
    };
    if let BatchRequest::Batch(requests) = &batch
        && requests.len() > state.limits.max_batch
    {
        return error_response(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadUserInput,
            &format!(
                "a batch may hold at most {} operations",
                state.limits.max_batch
            ),
        );
    }
    let (access, snapshot) = match authenticate(&state, &headers).await {
        Ok(authenticated) => authenticated,
        Err(response) => return response,
    };
    match batch {
        BatchRequest::Single(request) => {
            single(&state, access, snapshot, request, Transport::Post).await
        }
        BatchRequest::Batch(requests) => execute_batch(&state, access, requests).await,
    }
}

async fn graphql_get(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let query = uri.query().unwrap_or("");
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    if wants_html && !query.contains("query=") {
        return Html(
            GraphiQLSource::build()
                .endpoint("/graphql")
                .title("Baseline Hub")
                .finish(),
        )
        .into_response();
    }
    let request = match async_graphql::http::parse_query_string(query) {
        Ok(request) => request,
        Err(err) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadUserInput,
                &format!("invalid GraphQL GET request: {err}"),
            );
        }
    };
    let (access, snapshot) = match authenticate(&state, &headers).await {
        Ok(authenticated) => authenticated,
        Err(response) => return response,
    };
    let if_none_match = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    single(
        &state,
        access,
        snapshot,
        request,
        Transport::Get { if_none_match },
    )
    .await
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
    access: Access,
    snapshot: Snapshot,
    mut request: async_graphql::Request,
    transport: Transport,
) -> Response {
    if let Err(response) = persisted_query(state, &mut request).await {
        return response;
    }
    let key = state
        .cache
        .enabled()
        .then(|| cache_key(state, &access, &request));
    if let Some(key) = &key
        && let Some((cached, tier)) = state.cache.get(key, &snapshot).await
    {
        return respond(
            state,
            cached.body,
            Some(&cached.etag),
            Some(tier),
            &transport,
        );
    }
    let is_query = is_query(&mut request);
    let context = context(state, access);
    let hints = context.hints.clone();
    let response = state.schema.execute(context.attach(request)).await;
    let body = match serde_json::to_vec(&response) {
        Ok(body) => Bytes::from(body),
        Err(err) => {
            tracing::error!(error = %err, "could not serialise a GraphQL response");
            return error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::Internal,
                "internal error",
            );
        }
    };
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

/// A batch runs uncached: each operation gets its own context, all share one scope.
async fn execute_batch(
    state: &AppState,
    access: Access,
    requests: Vec<async_graphql::Request>,
) -> Response {
    let batch = BatchRequest::Batch(
        requests
            .into_iter()
            .map(|r| context(state, access.clone()).attach(r))
            .collect(),
    );
    let response = state.schema.execute_batch(batch).await;
    let mut http = Json(&response).into_response();
    http.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    http.headers_mut()
        .insert("x-cache", HeaderValue::from_static("miss"));
    http
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

/// Whether the operation the request selects is a query (parsing it here saves the
/// engine the work: the parsed document travels with the request).
fn is_query(request: &mut async_graphql::Request) -> bool {
    let name = request.operation_name.clone();
    let Ok(document) = request.parsed_query() else {
        return false;
    };
    // A named operation is kept in `Multiple` even when it is the only one.
    let operation = match (&document.operations, name) {
        (DocumentOperations::Single(operation), _) => Some(operation),
        (DocumentOperations::Multiple(operations), Some(name)) => operations.get(name.as_str()),
        (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => {
            operations.values().next()
        }
        (DocumentOperations::Multiple(_), None) => None,
    };
    operation.is_some_and(|op| op.node.ty == OperationType::Query)
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
    let bad =
        |message: &str| error_response(StatusCode::BAD_REQUEST, ErrorCode::BadUserInput, message);
    let Value::Object(fields) = extension else {
        return Err(bad("extensions.persistedQuery must be an object"));
    };
    if !matches!(fields.get("version"), Some(Value::Number(n)) if n.as_u64() == Some(1)) {
        return Err(bad("only version 1 of persisted queries is supported"));
    }
    let Some(Value::String(hash)) = fields.get("sha256Hash") else {
        return Err(bad("extensions.persistedQuery.sha256Hash must be a string"));
    };
    let hash = hash.to_ascii_lowercase();
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad(
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
        return Err(bad("provided sha256Hash does not match the query"));
    }
    state.cache.persist_query(&hash, &request.query).await;
    Ok(())
}

fn context(state: &AppState, access: Access) -> RequestContext {
    RequestContext::new(
        state.db.clone(),
        access,
        state.limits.clone(),
        state.disclosure,
        state.inspection,
        state.cache.clone(),
    )
}

async fn readyz(State(state): State<AppState>) -> Response {
    if db::ping(&state.db).await {
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

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}
