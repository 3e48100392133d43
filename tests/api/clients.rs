//! Standard clients (issue 19): what GraphiQL, Python `gql`, Postman, Insomnia, code
//! generators and browsers send, on the hub's default settings.

use hub_tests::{TestHub, error_code};
use serde_json::json;

/// `getIntrospectionQuery()` of graphql-js 16.15.0, byte for byte (see fixtures/README.md).
const INTROSPECTION_QUERY: &str = include_str!("fixtures/get-introspection-query.graphql");
/// The same with every option on, as recent GraphiQL versions send it.
const INTROSPECTION_QUERY_ALL_OPTIONS: &str =
    include_str!("fixtures/get-introspection-query-all-options.graphql");

#[tokio::test]
async fn the_standard_introspection_query_is_answered_at_the_default_depth_limit() {
    let hub = TestHub::spawn_with(&[("GRAPHQL_INTROSPECTION", "true")]).await;
    for (name, document) in [
        ("default", INTROSPECTION_QUERY),
        ("all options", INTROSPECTION_QUERY_ALL_OPTIONS),
    ] {
        let body = hub.query(None, document, json!({})).await;
        assert!(body["errors"].is_null(), "{name}: {body}");
        let schema = &body["data"]["__schema"];
        assert_eq!(schema["queryType"]["name"], "Query", "{name}");
        assert_eq!(schema["mutationType"]["name"], "Mutation", "{name}");
        let school = schema["types"]
            .as_array()
            .and_then(|types| types.iter().find(|t| t["name"] == "School"))
            .unwrap_or_else(|| panic!("{name}: no School type in {schema}"));
        assert!(
            school["fields"]
                .as_array()
                .is_some_and(|fields| fields.iter().any(|f| f["name"] == "urn")),
            "{name}: {school}"
        );
    }
    // The limit still holds for data: twelve levels of fields are the most a query may
    // nest, and `ofType` never fans out, so it is the only field that does not count.
    let mut deep = String::from("{ regions { ");
    for _ in 0..6 {
        deep.push_str("localAuthorities { region { ");
    }
    deep.push_str("code");
    deep.push_str(&" } }".repeat(6));
    deep.push_str(" } }");
    let refused = hub.query(None, &deep, json!({})).await;
    assert!(refused["data"].is_null(), "{refused}");
    assert_ne!(error_code(&refused), "<none>", "{refused}");
    let fan_out = "{ __schema { types { fields { type { fields { type { fields { type { \
                   fields { type { fields { type { name } } } } } } } } } } } }";
    let refused = hub.query(None, fan_out, json!({})).await;
    assert!(refused["data"].is_null(), "{refused}");
}

const CREATE_AGREEMENT: &str = "mutation($input: NewSharingAgreement!) { \
    createSharingAgreement(input: $input) { id } }";

/// GET is for queries: a mutation over GET is refused with `405` and `Allow: POST`
/// (GraphQL over HTTP), before anything runs — whatever the token may write.
#[tokio::test]
async fn mutations_over_get_are_refused_with_405() {
    let hub = TestHub::spawn().await;
    let provider = hub.token_for("LOCAL_AUTHORITY:850", "LA_OFFICER");
    let variables = json!({ "input": {
        "provider": "LOCAL_AUTHORITY:850", "consumer": "LOCAL_AUTHORITY:852",
        "accessLevel": "SCHOOL", "purpose": "Cross-border attendance casework",
        "validFrom": "2020-01-01", "validTo": "2099-12-31"
    } });
    let before = hub.scalar("SELECT COUNT(*) FROM sharing_agreement").await;
    let response = hub
        .client
        .get(format!("{}/graphql", hub.address))
        .query(&[
            ("query", CREATE_AGREEMENT.to_owned()),
            ("variables", variables.to_string()),
        ])
        .bearer_auth(&provider)
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status(), 405);
    assert_eq!(
        response
            .headers()
            .get("allow")
            .and_then(|v| v.to_str().ok()),
        Some("POST")
    );
    let body: serde_json::Value = response.json().await.expect("JSON body");
    assert_eq!(error_code(&body), "BAD_REQUEST", "{body}");
    assert_eq!(
        hub.scalar("SELECT COUNT(*) FROM sharing_agreement").await,
        before,
        "nothing was written"
    );
    // A document holding a query and a mutation: the operation named decides.
    let both = "query Q { __typename } mutation M { __typename }";
    let query = hub
        .client
        .get(format!("{}/graphql", hub.address))
        .query(&[("query", both), ("operationName", "Q")])
        .send()
        .await
        .expect("request sent");
    assert_eq!(query.status(), 200);
    let body: serde_json::Value = query.json().await.expect("JSON body");
    assert_eq!(body["data"]["__typename"], "Query", "{body}");
    let mutation = hub
        .client
        .get(format!("{}/graphql", hub.address))
        .query(&[("query", both), ("operationName", "M")])
        .send()
        .await
        .expect("request sent");
    assert_eq!(mutation.status(), 405);
    // The same mutation over POST is served.
    let created = hub
        .query(Some(&provider), CREATE_AGREEMENT, variables)
        .await;
    assert!(created["errors"].is_null(), "{created}");
}

/// POSTs `document` with `Accept: accept` and returns status, content type and body.
async fn post_accepting(
    hub: &TestHub,
    accept: &str,
    document: &str,
    variables: serde_json::Value,
) -> (u16, String, serde_json::Value) {
    let response = hub
        .client
        .post(format!("{}/graphql", hub.address))
        .header("accept", accept)
        .json(&json!({ "query": document, "variables": variables }))
        .send()
        .await
        .expect("request sent");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = response.json().await.expect("JSON body");
    (status, content_type, body)
}

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

/// `application/graphql-response+json` (GraphQL over HTTP): chosen by `Accept`, and with
/// it a request that could not be executed gets a 4xx instead of `200`.
#[tokio::test]
async fn graphql_response_json_gets_the_specs_status_codes() {
    let hub = TestHub::spawn().await;
    let accept = "application/graphql-response+json, application/json;q=0.9";
    let (status, content_type, body) =
        post_accepting(&hub, accept, "{ regions { code } }", json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert!(content_type.starts_with(GRAPHQL_RESPONSE), "{content_type}");
    assert_eq!(body["data"]["regions"].as_array().map(Vec::len), Some(9));

    for (document, variables, code) in [
        ("{ regions { code ", json!({}), "GRAPHQL_PARSE_FAILED"),
        (
            "{ regions { nope } }",
            json!({}),
            "GRAPHQL_VALIDATION_FAILED",
        ),
        (
            "query($u: Int!) { school(urn: $u) { name } }",
            json!({ "u": "abc" }),
            "BAD_USER_INPUT",
        ),
    ] {
        let (status, content_type, body) =
            post_accepting(&hub, GRAPHQL_RESPONSE, document, variables.clone()).await;
        assert_eq!(status, 400, "{document}: {body}");
        assert!(content_type.starts_with(GRAPHQL_RESPONSE), "{content_type}");
        assert_eq!(error_code(&body), code, "{document}: {body}");
        assert!(body.get("data").is_none(), "{document}: {body}");
        // The legacy media type keeps `200` for a well-formed request.
        let (status, content_type, body) =
            post_accepting(&hub, "application/json", document, variables).await;
        assert_eq!(status, 200, "{document}: {body}");
        assert!(
            content_type.starts_with("application/json"),
            "{content_type}"
        );
        assert_eq!(error_code(&body), code, "{document}: {body}");
    }

    // An executed operation with an error in a field is still `200`.
    let (status, _, body) = post_accepting(
        &hub,
        GRAPHQL_RESPONSE,
        r#"{ regions { code } observations(filter: { periodFrom: "2023-24" }) { totalCount } }"#,
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["data"]["regions"].is_array(), "{body}");
}

/// Error codes as Apollo's clients branch on them (README, "HTTP").
#[tokio::test]
async fn error_codes_follow_apollo() {
    let hub = TestHub::spawn().await;
    let cases = [
        ("{ regions { code ", json!({}), "GRAPHQL_PARSE_FAILED"),
        (
            "{ regions { nope } }",
            json!({}),
            "GRAPHQL_VALIDATION_FAILED",
        ),
        (
            "{ school(urn: \"x\") { name } }",
            json!({}),
            "BAD_USER_INPUT",
        ),
        (
            "query($u: Int!) { school(urn: $u) { name } }",
            json!({ "u": "abc" }),
            "BAD_USER_INPUT",
        ),
        (
            "{ schools(first: -1) { edges { node { urn } } } }",
            json!({}),
            "BAD_USER_INPUT",
        ),
        (
            "{ pupilRecords(first: 1) { totalCount } }",
            json!({}),
            "UNAUTHENTICATED",
        ),
    ];
    for (document, variables, code) in cases {
        let response = hub
            .post_graphql(None, &json!({ "query": document, "variables": variables }))
            .await;
        let body: serde_json::Value = response.json().await.expect("JSON body");
        assert_eq!(error_code(&body), code, "{document}: {body}");
    }
    // Past the depth limit: a validation failure, not a bad argument.
    let mut deep = String::from("{ regions { ");
    deep.push_str(&"localAuthorities { region { ".repeat(6));
    deep.push_str("code");
    deep.push_str(&" } }".repeat(6));
    deep.push_str(" } }");
    let body = hub.query(None, &deep, json!({})).await;
    assert_eq!(error_code(&body), "GRAPHQL_VALIDATION_FAILED", "{body}");
    // The request itself malformed (not JSON): Apollo Server's BAD_REQUEST.
    let not_json = hub
        .client
        .post(format!("{}/graphql", hub.address))
        .header("content-type", "application/json")
        .body("{ not json")
        .send()
        .await
        .expect("request sent");
    assert_eq!(not_json.status(), 400);
    let body: serde_json::Value = not_json.json().await.expect("JSON body");
    assert_eq!(error_code(&body), "BAD_REQUEST", "{body}");
}

/// With introspection off the schema is not for guessing: an unknown field is refused
/// without "Did you mean …" naming the fields nearby. With it on, suggestions help.
#[tokio::test]
async fn field_suggestions_follow_introspection() {
    let closed = TestHub::spawn().await;
    let body = closed.query(None, "{ regions { cod } }", json!({})).await;
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("cod"), "{body}");
    assert!(!message.contains("Did you mean"), "{body}");

    let open = TestHub::spawn_with(&[("GRAPHQL_INTROSPECTION", "true")]).await;
    let body = open.query(None, "{ regions { cod } }", json!({})).await;
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("Did you mean"), "{body}");
}

/// A browser's preflight for a dashboard's POST with a token.
async fn preflight(hub: &TestHub, origin: &str) -> reqwest::Response {
    hub.client
        .request(reqwest::Method::OPTIONS, format!("{}/graphql", hub.address))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type",
        )
        .send()
        .await
        .expect("preflight sent")
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

/// CORS for partner dashboards on other origins: the configured origins only, the
/// preflight answered, credentials as the Fetch standard allows them.
#[tokio::test]
async fn cors_lets_configured_origins_call_from_the_browser() {
    const DASHBOARD: &str = "https://dashboard.example.org";
    let hub = TestHub::spawn_with(&[(
        "CORS_ALLOWED_ORIGINS",
        "https://dashboard.example.org, http://localhost:3000",
    )])
    .await;
    let allowed = preflight(&hub, DASHBOARD).await;
    assert!(allowed.status().is_success(), "{}", allowed.status());
    assert_eq!(
        header(&allowed, "access-control-allow-origin"),
        Some(DASHBOARD)
    );
    assert_eq!(
        header(&allowed, "access-control-allow-credentials"),
        Some("true")
    );
    let methods = header(&allowed, "access-control-allow-methods").unwrap_or_default();
    assert!(methods.contains("POST"), "{methods}");
    // Named: a `*` would not cover Authorization.
    let headers = header(&allowed, "access-control-allow-headers")
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(
        headers.contains("authorization") && headers.contains("content-type"),
        "{headers}"
    );
    assert!(
        header(&allowed, "vary").is_some_and(|v| v.to_ascii_lowercase().contains("origin")),
        "{:?}",
        allowed.headers()
    );

    // The request itself: its answer readable by that origin, with the request id.
    let token = hub.token_for("LOCAL_AUTHORITY:852", "LA_OFFICER");
    let answer = hub
        .client
        .post(format!("{}/graphql", hub.address))
        .header("origin", DASHBOARD)
        .bearer_auth(&token)
        .json(&json!({ "query": "{ me { roles } }" }))
        .send()
        .await
        .expect("request sent");
    assert_eq!(answer.status(), 200);
    assert_eq!(
        header(&answer, "access-control-allow-origin"),
        Some(DASHBOARD)
    );
    let exposed = header(&answer, "access-control-expose-headers")
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(exposed.contains("x-request-id"), "{exposed}");

    // Another origin gets no grant: the browser keeps the answer from its page.
    let other = preflight(&hub, "https://elsewhere.example.com").await;
    assert_eq!(header(&other, "access-control-allow-origin"), None);

    // `*`: any origin, and never credentials (a browser refuses `*` with them).
    let open = TestHub::spawn_with(&[("CORS_ALLOWED_ORIGINS", "*")]).await;
    let any = preflight(&open, "https://elsewhere.example.com").await;
    assert_eq!(header(&any, "access-control-allow-origin"), Some("*"));
    assert_eq!(header(&any, "access-control-allow-credentials"), None);

    // The default: no cross-origin calls, no CORS headers at all.
    let closed = TestHub::spawn().await;
    let refused = preflight(&closed, DASHBOARD).await;
    assert_eq!(header(&refused, "access-control-allow-origin"), None);
    let answer = closed
        .client
        .post(format!("{}/graphql", closed.address))
        .header("origin", DASHBOARD)
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .expect("request sent");
    assert_eq!(header(&answer, "access-control-allow-origin"), None);
}

/// graphql-http's audit of the GraphQL over HTTP spec (`graphql-http` 1.23.1, pinned in
/// `tests/federation`, run by `tests/federation/audit.cjs`): no MUST may fail and no
/// SHOULD may warn. Introspection is on, as on the embedded default: one MUST sends
/// `{ __type(name: …) { name } }` with non-ASCII text to check UTF-8 handling.
#[tokio::test]
async fn the_graphql_over_http_audit_passes_every_must_and_should() {
    let Some(tools) = hub_tests::node::apollo("the_graphql_over_http_audit") else {
        return;
    };
    let hub = TestHub::spawn_with(&[("GRAPHQL_INTROSPECTION", "true")]).await;
    let url = format!("{}/graphql", hub.address);
    let output = tokio::task::spawn_blocking(move || tools.run("audit.cjs", &[("HUB_URL", url)]))
        .await
        .expect("audit thread");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "audit failed to run: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    eprintln!(
        "graphql-http audit: {} audits, {} ok, {} MUST failures, {} SHOULD warnings",
        report["total"], report["ok"], report["mustFailures"], report["shouldWarnings"]
    );
    assert_eq!(report["mustFailures"], 0, "{report:#}");
    assert_eq!(report["shouldWarnings"], 0, "{report:#}");
}

/// The official Python client's parser of the classic text format
/// (`prometheus_client` 0.26.0, installed with pip into the git-ignored `tests/.python`
/// on first use). `None` (after printing why) when Python or pip cannot be had outside
/// CI; under `CI=true` a missing tool fails the test.
fn prometheus_parser(test: &str) -> Option<std::path::PathBuf> {
    use std::process::Command;
    let target = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".python");
    let marker = target.join(".installed-prometheus_client-0.26.0");
    if marker.exists() {
        return Some(target);
    }
    let installed = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(["--target"])
        .arg(&target)
        .arg("prometheus_client==0.26.0")
        .status()
        .is_ok_and(|status| status.success());
    if installed && std::fs::write(&marker, b"").is_ok() {
        return Some(target);
    }
    let why = "needs python3 with pip and the Python package index (prometheus_client 0.26.0)";
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: {why} (tests may not skip in CI)");
    }
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
    None
}

/// `/metrics` in the classic text format by default, as Prometheus' own parsers read
/// it, with request durations labelled by operation type and outcome; OpenMetrics when
/// the scraper asks for it.
#[tokio::test]
async fn metrics_are_classic_prometheus_text_unless_openmetrics_is_asked_for() {
    let Some(parser) = prometheus_parser("metrics_are_classic_prometheus_text") else {
        return;
    };
    let hub = TestHub::spawn().await;
    hub.query(None, "query Regions { regions { code } }", json!({}))
        .await;
    hub.query(None, "{ regions { nope } }", json!({})).await;
    let response = hub.get("/metrics").await;
    let content_type = header(&response, "content-type")
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = response.text().await.expect("metrics body");
    let script = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
families = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    families[family.name] = {
        "type": family.type,
        "samples": [[s.name, s.labels, s.value] for s in family.samples],
    }
print(json.dumps(families))
"#;
    let output = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = std::process::Command::new("python3")
            .args(["-c", script])
            .env("PYTHONPATH", parser)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run python3");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("write metrics");
        child.wait_with_output().expect("parser output")
    })
    .await
    .expect("parser thread");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let families: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("the parser's JSON");
    // Counters are counters (the classic parser names them without `_total`), not
    // untyped families of their own.
    assert_eq!(
        families["hub_db_statements"]["type"], "counter",
        "{families}"
    );
    assert!(
        families.get("hub_db_statements_total").is_none(),
        "{families}"
    );
    assert_eq!(families["hub_graphql_requests"]["type"], "counter");
    let durations = &families["hub_graphql_request_duration_seconds"];
    assert_eq!(durations["type"], "histogram", "{families}");
    let labelled = |operation_type: &str, outcome: &str| {
        durations["samples"].as_array().is_some_and(|samples| {
            samples.iter().any(|s| {
                s[0] == "hub_graphql_request_duration_seconds_count"
                    && s[1]["operation_type"] == operation_type
                    && s[1]["outcome"] == outcome
                    && s[2].as_f64() == Some(1.0)
            })
        })
    };
    assert!(labelled("query", "ok"), "{durations}");
    assert!(
        labelled("unknown", "error") || labelled("query", "error"),
        "{durations}"
    );
    let untyped: Vec<&String> = families
        .as_object()
        .expect("families")
        .iter()
        .filter(|(_, f)| f["type"] == "unknown" || f["type"] == "untyped")
        .map(|(name, _)| name)
        .collect();
    assert!(untyped.is_empty(), "untyped families: {untyped:?}");

    let openmetrics = hub
        .client
        .get(format!("{}/metrics", hub.address))
        .header("accept", "application/openmetrics-text; version=1.0.0")
        .send()
        .await
        .expect("request sent");
    let content_type = header(&openmetrics, "content-type")
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    assert!(
        openmetrics
            .text()
            .await
            .unwrap_or_default()
            .ends_with("# EOF\n")
    );
}
