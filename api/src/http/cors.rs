//! Cross-origin requests from browsers (CORS), for partner dashboards served from
//! their own origins: only the origins in `CORS_ALLOWED_ORIGINS` (none by default), on
//! `/graphql` only.
//!
//! The hub authenticates by the `Authorization` header, never by cookies, so what CORS
//! decides here is only which pages a browser lets read the hub's answers. Following
//! the Fetch standard:
//!
//! - A list of origins: the request's `Origin` is echoed when listed (with `Vary:
//!   Origin`, so a shared cache never serves one origin's grant to another), and
//!   credentials are allowed (`Access-Control-Allow-Credentials: true`), so a dashboard
//!   whose client sends `credentials: "include"` works.
//! - `*`: any origin, and then never credentials — browsers refuse a wildcard answer to
//!   a credentialed request, as the standard requires.
//! - `Authorization` is listed by name in `Access-Control-Allow-Headers`: a `*` there
//!   does not cover it.
//!
//! Preflights (`OPTIONS` with `Access-Control-Request-Method`) are answered here, before
//! the request's other middleware: they carry no token and run no GraphQL.

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::CorsOrigins;

/// How long a browser may reuse a preflight's answer (Chromium caps it at two hours).
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);

/// The layer for `/graphql`, or `None` when no origin is allowed (the default): then
/// the hub sends no CORS headers at all and browsers keep other origins out.
pub fn layer(origins: &CorsOrigins) -> Option<CorsLayer> {
    let allow_origin = match origins {
        CorsOrigins::None => return None,
        CorsOrigins::Any => AllowOrigin::any(),
        CorsOrigins::List(list) => AllowOrigin::list(
            list.iter()
                .filter_map(|origin| HeaderValue::from_str(origin).ok()),
        ),
    };
    let layer = CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            header::IF_NONE_MATCH,
            HeaderName::from_static("x-request-id"),
            // What Apollo Client and Apollo's tools send.
            HeaderName::from_static("apollographql-client-name"),
            HeaderName::from_static("apollographql-client-version"),
            HeaderName::from_static("apollo-require-preflight"),
        ])
        .expose_headers([
            HeaderName::from_static("x-request-id"),
            HeaderName::from_static("x-cache"),
            header::ETAG,
            header::RETRY_AFTER,
            header::WWW_AUTHENTICATE,
        ])
        .max_age(PREFLIGHT_MAX_AGE);
    Some(match origins {
        CorsOrigins::List(_) => layer.allow_credentials(true),
        _ => layer,
    })
}
