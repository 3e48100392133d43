//! The HTTP surface: GraphQL over HTTP (`POST` and `GET /graphql`), GraphiQL for
//! browsers, health, readiness and metrics.
//!
//! The GraphQL handlers are written out rather than using async-graphql-axum's
//! extractor because the hub must decide things before GraphQL runs: a bad token is a
//! 401 (never anonymous), an oversized body a 413, a non-JSON body a 415 — each with a
//! GraphQL-shaped body so clients parse one error format.

use std::sync::Arc;

use async_graphql::BatchRequest;
use async_graphql::http::GraphiQLSource;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use sea_orm::DatabaseConnection;
use serde_json::json;

use crate::auth::{AuthError, Caller, Verifier};
use crate::config::{Disclosure, Limits};
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

async fn caller(state: &AppState, headers: &HeaderMap) -> Result<Caller, Response> {
    let header = match headers.get(header::AUTHORIZATION).map(|v| v.to_str()) {
        None => None,
        Some(Ok(value)) => Some(value),
        Some(Err(_)) => return Err(unauthenticated(&AuthError::MalformedHeader)),
    };
    state
        .verifier
        .caller(header, &state.db)
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
        })
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
    let caller = match caller(&state, &headers).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    execute(&state, caller, batch).await
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
    let caller = match caller(&state, &headers).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    execute(&state, caller, BatchRequest::Single(request)).await
}

async fn execute(state: &AppState, caller: Caller, batch: BatchRequest) -> Response {
    let batch = match batch {
        BatchRequest::Single(request) => {
            BatchRequest::Single(context(state, &caller).attach(request))
        }
        BatchRequest::Batch(requests) => BatchRequest::Batch(
            requests
                .into_iter()
                .map(|r| context(state, &caller).attach(r))
                .collect(),
        ),
    };
    let response = state.schema.execute_batch(batch).await;
    let mut http = Json(&response).into_response();
    http.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    http
}

fn context(state: &AppState, caller: &Caller) -> RequestContext {
    RequestContext::new(
        state.db.clone(),
        caller.clone(),
        state.limits.clone(),
        state.disclosure,
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
