//! Health, readiness, metrics, GraphQL over GET and GraphiQL.

use hub_tests::TestHub;
use serde_json::Value;

#[tokio::test]
async fn health_and_readiness() {
    let hub = TestHub::spawn().await;
    let health = hub.get("/healthz").await;
    assert_eq!(health.status(), 200);
    let ready = hub.get("/readyz").await;
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["database"], "up");
}

#[tokio::test]
async fn metrics_count_requests_by_operation_and_errors_by_code() {
    let hub = TestHub::spawn().await;
    hub.query(
        None,
        "query Regions { regions { code } }",
        serde_json::json!({}),
    )
    .await;
    hub.query(
        None,
        "query Broken { regions { nope } }",
        serde_json::json!({}),
    )
    .await;
    let text = hub.get("/metrics").await.text().await.unwrap();
    assert!(
        text.contains(r#"hub_graphql_requests_total{operation="Regions",outcome="ok"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"hub_graphql_errors_total{code="GRAPHQL_VALIDATION_FAILED"} 1"#),
        "{text}"
    );
    assert!(text.contains("hub_graphql_request_duration_seconds_bucket"));
    assert!(hub.statements().await > 0);
}

#[tokio::test]
async fn graphql_over_get_and_graphiql_for_browsers() {
    let hub = TestHub::spawn_with(&[("GRAPHQL_INTROSPECTION", "true")]).await;
    let response = hub
        .get("/graphql?query=%7B%20regions%20%7B%20code%20%7D%20%7D")
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"]["regions"].as_array().unwrap().len(), 9);

    let page = hub
        .client
        .get(format!("{}/graphql", hub.address))
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.text()
            .await
            .unwrap()
            .to_lowercase()
            .contains("graphiql")
    );

    let missing = hub.get("/nope").await;
    assert_eq!(missing.status(), 404);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "NOT_FOUND");
}

#[tokio::test]
async fn introspection_and_graphiql_are_off_unless_turned_on() {
    let introspect = "{ __schema { queryType { name } } }";
    let production = TestHub::spawn().await;
    let response = production
        .post_graphql(None, &serde_json::json!({ "query": introspect }))
        .await;
    assert_eq!(response.status(), 200);
    let refused: Value = response.json().await.unwrap();
    assert_eq!(
        hub_tests::error_code(&refused),
        "GRAPHQL_VALIDATION_FAILED",
        "{refused}"
    );
    assert!(
        refused["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("introspection is turned off")),
        "{refused}"
    );
    let typename = production
        .query(None, "{ __typename }", serde_json::json!({}))
        .await;
    assert_eq!(typename["data"]["__typename"], "Query");
    let page = production
        .client
        .get(format!("{}/graphql", production.address))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 404);

    let development = TestHub::spawn_with(&[("GRAPHQL_INTROSPECTION", "true")]).await;
    let allowed = development
        .query(None, introspect, serde_json::json!({}))
        .await;
    assert_eq!(allowed["data"]["__schema"]["queryType"]["name"], "Query");
}

#[tokio::test]
async fn metrics_cover_http_outcomes_the_pool_and_refusals_by_code() {
    let hub = TestHub::spawn().await;
    hub.query(None, "{ regions { code } }", serde_json::json!({}))
        .await;
    let refused = hub
        .post_graphql(
            Some("not-a-token"),
            &serde_json::json!({ "query": "{ regions { code } }" }),
        )
        .await;
    assert_eq!(refused.status(), 401);
    let text = hub.get("/metrics").await.text().await.unwrap();
    for sample in [
        r#"hub_http_requests_total{route="/graphql",status="200"} 1"#,
        r#"hub_http_requests_total{route="/graphql",status="401"} 1"#,
        r#"hub_graphql_errors_total{code="UNAUTHENTICATED"} 1"#,
        "hub_http_request_duration_seconds_count",
        "hub_db_up 1",
        "hub_db_pool_max_connections ",
        "hub_db_pool_connections ",
        "hub_db_pool_idle_connections ",
        "hub_db_pool_in_use_connections ",
        "hub_cache_misses_total",
    ] {
        assert!(text.contains(sample), "{sample} missing from:\n{text}");
    }
    assert!(hub.metric("hub_db_pool_connections").await >= 1.0);
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_requests_then_stops_listening() {
    let mut hub = TestHub::spawn().await;
    let url = format!("{}/graphql", hub.address);
    let client = hub.client.clone();
    let in_flight = tokio::spawn(async move {
        client
            .post(url)
            .json(&serde_json::json!({ "query": "{ schools(first: 500) { totalCount edges { node { name localAuthority { name } } } } }" }))
            .send()
            .await
    });
    // Let the request reach the server before the signal.
    tokio::task::yield_now().await;
    hub.stop().await.expect("server stops cleanly");
    if let Ok(response) = in_flight.await.expect("request task") {
        assert_eq!(
            response.status(),
            200,
            "a request the server accepted is answered"
        );
    }
    let after = reqwest::Client::new()
        .get(format!("{}/healthz", hub.address))
        .send()
        .await;
    assert!(after.is_err(), "no longer listening after shutdown");
}
