//! Hostile input over HTTP. Each case gets a clear 4xx or a GraphQL error with a code,
//! and the hub answers an ordinary query right after. Memory stays bounded because
//! every limit holds before the expensive step: the body limit before the body is
//! read (a body announced too large is refused unread), nesting before parsing,
//! fragment expansion before the engine walks the document, the batch size before
//! anything runs. (`limits` covers malformed JSON, wrong content types, page, depth,
//! complexity and batch limits of ordinary size; `memory` sends these cases many times
//! over to a hub process and measures it.) The bodies are built by `hub_tests::hostile`.

use hub_tests::hostile::{self, query_body};
use hub_tests::{TestHub, error_code};
use serde_json::{Value, json};

/// Posts raw bytes with a content type over a connection of its own; returns the
/// status and the JSON body. Not through reqwest: it reports a broken pipe, not the
/// hub's 413, when the hub refuses a body before reading all of it (see
/// `hostile::post_over_own_connection`).
async fn post_raw(hub: &TestHub, content_type: &str, body: Vec<u8>) -> (u16, Value) {
    let address = hub.address.trim_start_matches("http://").to_owned();
    let content_type = content_type.to_owned();
    tokio::task::spawn_blocking(move || {
        hostile::post_over_own_connection(&address, &content_type, &body)
    })
    .await
    .expect("client thread")
}

async fn post_query(hub: &TestHub, document: &str) -> (u16, Value) {
    post_raw(hub, "application/json", query_body(document)).await
}

/// The hub still answers an honest query correctly.
async fn still_answers(hub: &TestHub) {
    let body = hub.query(None, "{ regions { code } }", json!({})).await;
    assert_eq!(body["data"]["regions"].as_array().map(Vec::len), Some(9));
}

/// Refused as a request error: `200` with `application/json` (GraphQL over HTTP), a
/// parse or validation code, and no data.
fn assert_refused(status: u16, body: &Value) {
    assert_eq!(status, 200, "{body}");
    assert!(
        matches!(
            error_code(body),
            "GRAPHQL_PARSE_FAILED" | "GRAPHQL_VALIDATION_FAILED"
        ),
        "HTTP {status}: {body}"
    );
    assert!(body.get("data").is_none(), "{body}");
}

#[tokio::test]
async fn deep_nesting_is_refused_before_parsing() {
    let hub = TestHub::spawn().await;
    let (status, body) = post_query(&hub, &hostile::deep_nesting(60_000)).await;
    assert_refused(status, &body);
    assert_eq!(error_code(&body), "GRAPHQL_PARSE_FAILED", "{body}");
    let (status, body) = post_query(&hub, &hostile::nested_list_argument(50_000)).await;
    assert_refused(status, &body);
    still_answers(&hub).await;
}

#[tokio::test]
async fn fragment_bombs_and_circular_fragments_are_refused() {
    let hub = TestHub::spawn().await;
    // Each fragment spreads the next twice: 2^40 fields if expanded.
    let (status, body) = post_query(&hub, &hostile::fragment_bomb(40)).await;
    assert_refused(status, &body);
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("expands to more than")),
        "{body}"
    );

    let (status, body) = post_query(&hub, hostile::CIRCULAR_FRAGMENTS).await;
    assert_refused(status, &body);

    let (status, body) = post_query(&hub, hostile::WIDE_CIRCULAR_FRAGMENTS).await;
    assert_refused(status, &body);
    still_answers(&hub).await;
}

#[tokio::test]
async fn alias_bombs_exceed_the_complexity_budget() {
    let hub = TestHub::spawn().await;
    // 20,000 aliases of a list field, about 450 KB: refused for size…
    let (status, body) = post_query(&hub, &hostile::alias_bomb(20_000, "{ code }")).await;
    assert_eq!(status, 413, "{body}");
    // …and 8,000 of three fields each (within the body limit) for cost.
    let (status, body) = post_query(&hub, &hostile::alias_bomb(8_000, "{code name}")).await;
    assert_refused(status, &body);
    still_answers(&hub).await;
}

#[tokio::test]
async fn batches_of_thousands_are_refused_before_anything_runs() {
    let hub = TestHub::spawn().await;
    let (status, body) = post_raw(&hub, "application/json", hostile::batch(5_000)).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(error_code(&body), "BAD_REQUEST");
    assert!(hub.statements().await < 50, "nothing ran");
    still_answers(&hub).await;
}

#[tokio::test]
async fn oversized_and_deeply_nested_variables_are_refused() {
    let hub = TestHub::spawn().await;
    let (status, body) = post_raw(
        &hub,
        "application/json",
        hostile::oversized_variables(40_000),
    )
    .await;
    assert_eq!(status, 413, "{body}");

    // JSON nested 10,000 deep.
    let (status, body) =
        post_raw(&hub, "application/json", hostile::nested_variables(10_000)).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(error_code(&body), "BAD_REQUEST");
    still_answers(&hub).await;
}

#[tokio::test]
async fn invalid_utf8_and_other_bodies_get_clear_errors() {
    let hub = TestHub::spawn().await;
    for (content_type, body) in [
        ("application/json", hostile::invalid_utf8()),
        ("application/json", Vec::new()),
        ("application/json", b"null".to_vec()),
        ("application/json", b"[]".to_vec()),
        ("application/json", br#"{"query": 42}"#.to_vec()),
        (
            "application/json",
            br#"{"query": "{ regions { code } }", "variables": "x"}"#.to_vec(),
        ),
        (
            "application/json; charset=utf-16",
            vec![0xff, 0xfe, b'{', 0],
        ),
        ("multipart/form-data; boundary=x", b"--x--".to_vec()),
        (
            "application/x-www-form-urlencoded",
            b"query=%7B%7D".to_vec(),
        ),
    ] {
        let shown = String::from_utf8_lossy(&body).into_owned();
        let (status, reply) = post_raw(&hub, content_type, body).await;
        assert!(
            (400..500).contains(&status),
            "{content_type} {shown:?}: HTTP {status}: {reply}"
        );
        assert_eq!(error_code(&reply), "BAD_REQUEST", "{shown:?}: {reply}");
    }
    still_answers(&hub).await;
}

#[tokio::test]
async fn a_body_announced_too_large_is_refused_unread() {
    let hub = TestHub::spawn().await;
    let address = hub.address.trim_start_matches("http://").to_owned();
    // Announce a gigabyte, send a few bytes: the answer must come without the rest.
    let reply = tokio::task::spawn_blocking(move || hostile::announce_huge_body(&address))
        .await
        .expect("client thread");
    assert!(reply.starts_with("HTTP/1.1 413"), "reply: {reply:?}");
    assert!(reply.contains("BAD_REQUEST"), "{reply}");
    still_answers(&hub).await;
}

#[tokio::test]
async fn huge_documents_are_refused_at_the_body_limit() {
    let hub = TestHub::spawn().await;
    let (status, body) = post_query(&hub, &hostile::padded_document(100_000)).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(error_code(&body), "BAD_REQUEST");
    still_answers(&hub).await;
}
