//! The media type of GraphQL answers (GraphQL over HTTP): `application/json`, or
//! `application/graphql-response+json` for clients that ask for it by `Accept`.
//!
//! The two differ in one way that matters to clients: with the legacy
//! `application/json` every well-formed request gets `200` whatever its errors, so a
//! client (or a proxy, or a dashboard's retry logic) cannot tell from the status that
//! its document was refused; with `application/graphql-response+json` a request that
//! was never executed — a parse or validation failure, a variable of the wrong type —
//! is a `400`. Handlers mark such answers with [`RequestError`]; [`negotiate`] picks
//! the media type from `Accept` and applies both the content type and the status
//! (`200` or `400`), so no handler needs to know which was asked for.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

/// Marks the answer to a request the engine refused before executing it.
#[derive(Clone, Copy, Debug)]
pub struct RequestError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Media {
    Json,
    GraphqlResponse,
}

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

impl Media {
    /// The media type `Accept` prefers. `application/graphql-response+json` only when
    /// named (a wildcard or a missing `Accept` keeps the legacy type every client
    /// reads) and not ranked below `application/json`.
    pub fn of(headers: &HeaderMap) -> Media {
        let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
            return Media::Json;
        };
        let (mut graphql_response, mut json) = (None::<f32>, None::<f32>);
        for range in accept.split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let quality = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let slot = match media.as_str() {
                GRAPHQL_RESPONSE => &mut graphql_response,
                "application/json" | "application/*" | "*/*" => &mut json,
                _ => continue,
            };
            *slot = Some(slot.map_or(quality, |q| q.max(quality)));
        }
        match graphql_response {
            Some(q) if q > 0.0 && json.is_none_or(|json| q >= json) => Media::GraphqlResponse,
            _ => Media::Json,
        }
    }

    fn content_type(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Media::Json => "application/json; charset=utf-8",
            Media::GraphqlResponse => "application/graphql-response+json; charset=utf-8",
        })
    }
}

/// Sends every JSON answer of the route as the media type the client asked for, and a
/// [`RequestError`] as `400` when that is `application/graphql-response+json`, else
/// as `200` (the legacy media type's status for every well-formed request).
pub async fn negotiate(request: Request, next: Next) -> Response {
    let media = Media::of(request.headers());
    let mut response = next.run(request).await;
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_json {
        // GraphiQL's page, a 304 without a body.
        return response;
    }
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, media.content_type());
    if response.extensions().get::<RequestError>().is_some() {
        *response.status_mut() = match media {
            Media::GraphqlResponse => StatusCode::BAD_REQUEST,
            Media::Json => StatusCode::OK,
        };
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(accept: &str) -> Media {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_str(accept).expect("header"),
        );
        Media::of(&headers)
    }

    #[test]
    fn graphql_response_json_only_when_named_and_not_ranked_lower() {
        assert_eq!(Media::of(&HeaderMap::new()), Media::Json);
        assert_eq!(of("*/*"), Media::Json);
        assert_eq!(of("application/json"), Media::Json);
        assert_eq!(of(GRAPHQL_RESPONSE), Media::GraphqlResponse);
        assert_eq!(
            of("application/graphql-response+json, application/json;q=0.9"),
            Media::GraphqlResponse
        );
        assert_eq!(
            of("application/json, application/graphql-response+json;q=0.5"),
            Media::Json
        );
        assert_eq!(of("application/graphql-response+json;q=0"), Media::Json);
    }
}
