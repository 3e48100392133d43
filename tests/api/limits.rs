//! Bounds on what one request may ask for, and clear errors for bad input.

use hub_tests::{TestHub, error_code as code};
use serde_json::{Value, json};

#[tokio::test]
async fn pages_larger_than_the_limit_are_refused() {
    let hub = TestHub::spawn_with(&[("MAX_PAGE_SIZE", "10")]).await;
    let body = hub
        .query(
            None,
            "{ schools(first: 11) { edges { node { urn } } } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("maximum page size of 10")
    );
    let ok = hub
        .query(
            None,
            "{ schools(first: 10) { edges { node { urn } } } }",
            json!({}),
        )
        .await;
    assert_eq!(ok["data"]["schools"]["edges"].as_array().unwrap().len(), 10);
    let negative = hub
        .query(
            None,
            "{ schools(first: -1) { edges { node { urn } } } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&negative), "BAD_USER_INPUT");
}

#[tokio::test]
async fn deep_queries_are_refused_before_they_run() {
    let hub = TestHub::spawn().await;
    let mut document = String::from("{ regions { ");
    for _ in 0..8 {
        document.push_str("localAuthorities { region { ");
    }
    document.push_str("code");
    for _ in 0..8 {
        document.push_str(" } }");
    }
    document.push_str(" } }");
    let body = hub.query(None, &document, json!({})).await;
    assert_eq!(code(&body), "GRAPHQL_VALIDATION_FAILED", "{body}");
    assert_eq!(body["data"], Value::Null);
}

#[tokio::test]
async fn wide_and_deep_pages_exceed_the_complexity_budget() {
    let hub = TestHub::spawn().await;
    let document = "{ schools(first: 500) { edges { node { observations { value numerator denominator indicator { name } } } } } }";
    let body = hub.query(None, document, json!({})).await;
    assert_eq!(code(&body), "GRAPHQL_VALIDATION_FAILED", "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("complex")
    );
}

#[tokio::test]
async fn oversized_bodies_get_413_with_a_graphql_error() {
    let hub = TestHub::spawn_with(&[("MAX_BODY_BYTES", "2048")]).await;
    let padding = "x".repeat(4096);
    let response = hub
        .post_graphql(
            None,
            &json!({ "query": format!("{{ regions {{ code }} }} # {padding}") }),
        )
        .await;
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert_eq!(code(&body), "BAD_REQUEST");
}

#[tokio::test]
async fn malformed_requests_get_clear_errors_and_the_hub_keeps_answering() {
    let hub = TestHub::spawn().await;
    let url = format!("{}/graphql", hub.address);

    let not_json = hub
        .client
        .post(&url)
        .header("content-type", "application/json")
        .body("{ not json")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 400);
    assert_eq!(code(&not_json.json().await.unwrap()), "BAD_REQUEST");

    let wrong_type = hub
        .client
        .post(&url)
        .header("content-type", "text/plain")
        .body("{ regions { code } }")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), 415);

    let syntax = hub.query(None, "{ regions { code ", json!({})).await;
    assert_eq!(code(&syntax), "GRAPHQL_PARSE_FAILED");
    let unknown_field = hub.query(None, "{ regions { nope } }", json!({})).await;
    assert_eq!(code(&unknown_field), "GRAPHQL_VALIDATION_FAILED");
    let wrong_variable = hub
        .query(
            None,
            "query($u: Int!) { school(urn: $u) { name } }",
            json!({ "u": "abc" }),
        )
        .await;
    assert_eq!(code(&wrong_variable), "BAD_USER_INPUT");
    let bad_cursor = hub
        .query(
            None,
            r#"{ schools(after: "garbage") { totalCount } }"#,
            json!({}),
        )
        .await;
    assert_eq!(code(&bad_cursor), "BAD_USER_INPUT");

    let batch: Vec<Value> = (0..11)
        .map(|_| json!({ "query": "{ regions { code } }" }))
        .collect();
    let too_many = hub.post_graphql(None, &Value::Array(batch)).await;
    assert_eq!(too_many.status(), 400);

    let still_fine = hub.query(None, "{ regions { code } }", json!({})).await;
    assert_eq!(still_fine["data"]["regions"].as_array().unwrap().len(), 9);
}

#[tokio::test]
async fn small_batches_are_answered_in_order() {
    let hub = TestHub::spawn().await;
    let batch = json!([{ "query": "{ regions { code } }" }, { "query": r#"{ organisation(kind: LOCAL_AUTHORITY, code: "852") { name } }"# }]);
    let response = hub.post_graphql(None, &batch).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body[0]["data"]["regions"].as_array().unwrap().len(), 9);
    assert_eq!(body[1]["data"]["organisation"]["name"], "Southampton");
}
