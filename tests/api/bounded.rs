//! Bounded work per request (issue 18): the cost model refuses before execution what
//! would be too much work, and limits enforced while a request runs stop what gets
//! past it.

use hub_tests::{TestHub, error_code as code};
use serde_json::{Value, json};

/// `{ regions { localAuthorities { region { localAuthorities … } } } }`, `pairs`
/// times `localAuthorities { region {`, ending in `code`.
fn region_cycle(pairs: usize) -> String {
    let mut document = String::from("{ regions { ");
    for _ in 0..pairs {
        document.push_str("localAuthorities { region { ");
    }
    document.push_str("code");
    for _ in 0..pairs {
        document.push_str(" } }");
    }
    document.push_str(" } }");
    document
}

/// POSTs a document; the status and the JSON body.
async fn post(
    hub: &TestHub,
    token: Option<&str>,
    document: &str,
    variables: Value,
) -> (u16, Value) {
    let response = hub
        .post_graphql(token, &json!({ "query": document, "variables": variables }))
        .await;
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON body"))
}

/// Refused before execution (by the engine's cost check or the hub's document guard: a
/// request error, `200` with `application/json`), with no data and no SQL run.
async fn assert_refused_unrun(hub: &TestHub, document: &str) -> Value {
    let before = hub.statements().await;
    let (status, body) = post(hub, None, document, json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(code(&body), "GRAPHQL_VALIDATION_FAILED", "{body}");
    assert_eq!(body["data"], Value::Null, "{body}");
    assert_eq!(hub.statements().await, before, "refused before any SQL ran");
    body
}

#[tokio::test]
async fn the_region_cycle_within_the_depth_limit_is_refused_before_it_runs() {
    let hub = TestHub::spawn().await;
    // Depth 6: a few thousand rows of nested lists, multiplied rather than added.
    assert_refused_unrun(&hub, &region_cycle(2)).await;
    // Depth 12, the default depth limit: once 23 GB resident and a killed process.
    let body = assert_refused_unrun(&hub, &region_cycle(5)).await;
    let message = body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .to_lowercase();
    assert!(message.contains("complex"), "{body}");
}

#[tokio::test]
async fn honest_nested_lists_stay_within_the_budget() {
    let hub = TestHub::spawn().await;
    let body = hub
        .query(
            None,
            "{ regions { code name localAuthorities { code name region { code } } } }",
            json!({}),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    assert_eq!(body["data"]["regions"].as_array().unwrap().len(), 9);
}

#[tokio::test]
async fn a_list_field_repeated_under_many_aliases_is_refused_before_it_runs() {
    let hub = TestHub::spawn().await;
    let aliases: String = (0..9)
        .map(|i| format!("i{i}: indicators {{ code }} "))
        .collect();
    let body = assert_refused_unrun(&hub, &format!("{{ {aliases} }}")).await;
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("`indicators`"), "{body}");
    // The same through a fragment, and connections count as lists too.
    let connections: String = (0..9)
        .map(|i| format!("s{i}: schools(first: 1) {{ totalCount }} "))
        .collect();
    assert_refused_unrun(
        &hub,
        &format!("{{ ...F }} fragment F on Query {{ {connections} }}"),
    )
    .await;
    // Eight are fine.
    let eight: String = (0..8)
        .map(|i| format!("i{i}: indicators {{ code }} "))
        .collect();
    let body = hub.query(None, &format!("{{ {eight} }}"), json!({})).await;
    assert!(body["errors"].is_null(), "{body}");
}

/// A request stopped by a per-request limit: 400, `BAD_USER_INPUT`, no data, and a
/// message naming the setting.
fn assert_stopped_by(status: u16, body: &Value, setting: &str) {
    assert_eq!(status, 400, "{body}");
    assert_eq!(code(body), "BAD_USER_INPUT", "{body}");
    assert_eq!(body["data"], Value::Null, "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains(setting), "{body}");
}

#[tokio::test]
async fn a_query_over_its_statement_budget_is_stopped_with_a_coded_error() {
    let hub = TestHub::spawn_with(&[("MAX_REQUEST_STATEMENTS", "2")]).await;
    // Regions, indicators, then a count and a page of schools: four statements.
    let (status, body) = post(
        &hub,
        None,
        "{ regions { code } indicators { code } schools(first: 1) { totalCount edges { node { urn } } } }",
        json!({}),
    )
    .await;
    assert_stopped_by(status, &body, "MAX_REQUEST_STATEMENTS");
    // Within the budget, the same hub answers.
    let body = hub.query(None, "{ regions { code } }", json!({})).await;
    assert_eq!(
        body["data"]["regions"].as_array().unwrap().len(),
        9,
        "{body}"
    );
}

#[tokio::test]
async fn a_sync_call_is_never_cut_in_two_by_the_statement_budget() {
    // Statements are counted after they run, so stopping a write at the crossing could
    // land after its commit and report a stored write as failed. Writes are bounded
    // before they run instead, and complete whole.
    let hub = TestHub::spawn_with(&[("MAX_REQUEST_STATEMENTS", "3")]).await;
    let agent = hub.token_for("LOCAL_AUTHORITY:852", "SYNC_AGENT");
    let schools = hub
        .query(
            None,
            r#"{ schools(filter: { laCode: "852", establishmentType: COMMUNITY }, first: 1) { edges { node { urn } } } }"#,
            json!({}),
        )
        .await;
    let urn = schools["data"]["schools"]["edges"][0]["node"]["urn"]
        .as_i64()
        .expect("a community school");
    let runs_before = hub.scalar("SELECT COUNT(*) FROM sync_run").await;
    let (status, body) = post(
        &hub,
        Some(&agent),
        "mutation($input: UpsertObservationsInput!) { upsertObservations(input: $input) { run { id } } }",
        json!({ "input": { "idempotencyKey": "budget-1", "rows": [{
            "indicatorCode": "suspension_rate", "period": "2031/32", "level": "SCHOOL",
            "areaCode": urn.to_string(), "pupilGroup": "ALL",
            "numerator": 7, "denominator": 200 }] } }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    let written = hub
        .scalar("SELECT COUNT(*) FROM observation WHERE period = '2031/32'")
        .await;
    assert_eq!(written, 1, "the write completed whole and says so");
    assert_eq!(
        hub.scalar("SELECT COUNT(*) FROM sync_run").await,
        runs_before + 1
    );
}

#[tokio::test]
async fn an_answer_over_the_byte_limit_is_refused_not_sent() {
    let hub = TestHub::spawn_with(&[("MAX_ANSWER_BYTES", "2048")]).await;
    let (status, body) = post(
        &hub,
        None,
        "{ schools(first: 100) { edges { node { urn name } } } }",
        json!({}),
    )
    .await;
    assert_stopped_by(status, &body, "MAX_ANSWER_BYTES");
    let small = hub.query(None, "{ regions { code } }", json!({})).await;
    assert_eq!(small["data"]["regions"].as_array().unwrap().len(), 9);
}

#[tokio::test]
async fn a_writer_may_send_a_large_body_only_for_the_sync_mutations() {
    let hub = TestHub::spawn_with(&[("MAX_BODY_BYTES", "2048")]).await;
    let officer = hub.token_for("LOCAL_AUTHORITY:852", "LA_OFFICER");
    let padding = "x".repeat(4096);
    // A query padded past the general limit: refused although the token writes data.
    let response = hub
        .post_graphql(
            Some(&officer),
            &json!({ "query": format!("{{ regions {{ code }} }} # {padding}") }),
        )
        .await;
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert_eq!(code(&body), "BAD_REQUEST", "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("upsertObservations"), "{body}");
    // The same bytes as variables of a query: still not a sync mutation.
    let response = hub
        .post_graphql(
            Some(&officer),
            &json!({ "query": "query($p: String) { regions { code } }", "variables": { "p": padding } }),
        )
        .await;
    assert_eq!(response.status(), 413);
    // A sync mutation with its rows in variables is read in full.
    let rows: Vec<Value> = (0..40)
        .map(|i| {
            let year = 1990 + i;
            json!({ "indicatorCode": "suspension_rate", "period": format!("{year}/{:02}", (year + 1) % 100),
                    "level": "LA", "areaCode": "852", "pupilGroup": "ALL",
                    "numerator": i, "denominator": 1000 + i })
        })
        .collect();
    let document = "mutation($input: UpsertObservationsInput!) { upsertObservations(input: $input) { run { rowsReceived } } }";
    let request = json!({ "query": document, "variables": { "input": { "rows": rows } } });
    assert!(request.to_string().len() > 2048);
    let response = hub.post_graphql(Some(&officer), &request).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["data"]["upsertObservations"]["run"]["rowsReceived"], 40,
        "{body}"
    );
}

#[tokio::test]
async fn the_request_timeout_stops_a_request_resolving_rows_in_memory() {
    // The cost model turned off (a budget no document reaches), so that the cycle runs:
    // tens of thousands of objects resolved from per-request caches, for seconds,
    // without awaiting anything that would let a timeout around the handler fire.
    let hub = TestHub::spawn_with(&[
        ("MAX_QUERY_COMPLEXITY", "1000000000"),
        ("REQUEST_TIMEOUT_MS", "100"),
    ])
    .await;
    let response = hub
        .post_graphql(None, &json!({ "query": region_cycle(3) }))
        .await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(code(&body), "UNAVAILABLE", "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("took too long"), "{body}");
}

/// Holds the write lock on the agreements table from a connection of the test's own
/// (PostgreSQL's table lock, SQLite's database write lock) until released.
struct WriteLock(sea_orm::DatabaseConnection);

impl WriteLock {
    async fn take(hub: &TestHub) -> WriteLock {
        use sea_orm::{ConnectOptions, ConnectionTrait, Database, DbBackend};
        let mut options = ConnectOptions::new(hub.database_url.clone());
        options.max_connections(1).min_connections(1);
        let db = Database::connect(options).await.expect("connect");
        let statements: &[&str] = match db.get_database_backend() {
            DbBackend::Postgres => &["BEGIN", "LOCK TABLE sharing_agreement IN EXCLUSIVE MODE"],
            _ => &["BEGIN IMMEDIATE"],
        };
        for statement in statements {
            db.execute_unprepared(statement)
                .await
                .expect("take the lock");
        }
        WriteLock(db)
    }

    async fn release(self) {
        use sea_orm::ConnectionTrait;
        self.0
            .execute_unprepared("ROLLBACK")
            .await
            .expect("release");
        self.0.close().await.expect("close");
    }
}

#[tokio::test]
async fn a_saturated_pool_is_overload_not_an_outage() {
    let hub = TestHub::spawn_with(&[
        ("DATABASE_MAX_CONNECTIONS", "1"),
        ("DATABASE_ACQUIRE_TIMEOUT_MS", "200"),
        ("DATABASE_STATEMENT_TIMEOUT_MS", "60000"),
        ("REQUEST_TIMEOUT_MS", "60000"),
        ("CACHE_TTL_SECONDS", "0"),
    ])
    .await;
    let provider = hub.token_for("LOCAL_AUTHORITY:850", "LA_OFFICER");
    // Warm the caller's scope, so that only the write needs the pool.
    hub.query(Some(&provider), "{ me { roles } }", json!({}))
        .await;
    let lock = WriteLock::take(&hub).await;
    // A write that holds the pool's only connection while it waits for the lock.
    let writer = {
        let client = hub.client.clone();
        let url = format!("{}/graphql", hub.address);
        let body = json!({ "query": "mutation($input: NewSharingAgreement!) { createSharingAgreement(input: $input) { id } }",
            "variables": { "input": {
                "provider": "LOCAL_AUTHORITY:850", "consumer": "LOCAL_AUTHORITY:852",
                "accessLevel": "SCHOOL", "purpose": "joint inclusion review",
                "validFrom": "2020-01-01", "validTo": "2099-12-31" } } });
        let provider = provider.clone();
        tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(provider)
                .json(&body)
                .send()
                .await
                .expect("send")
                .status()
        })
    };
    // Until the write has the connection and keeps it (it waits on the lock for a
    // minute once it has begun writing).
    let mut held = 0;
    while held < 3 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let in_use = hub.metric("hub_db_pool_in_use_connections").await;
        held = if in_use >= 1.0 { held + 1 } else { 0 };
    }
    let response = hub
        .post_graphql(None, &json!({ "query": "{ indicators { code } }" }))
        .await;
    assert_eq!(response.status(), 503);
    assert_eq!(
        response.headers()["retry-after"].to_str().unwrap(),
        "1",
        "Retry-After"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(code(&body), "OVERLOADED", "{body}");
    // The database is up, and the hub says so.
    let ready = hub.get("/readyz").await;
    assert_eq!(ready.status(), 200);
    assert_eq!(hub.metric("hub_db_up").await, 1.0);
    lock.release().await;
    assert_eq!(writer.await.expect("writer"), 200);
    let body = hub.query(None, "{ indicators { code } }", json!({})).await;
    assert!(body["errors"].is_null(), "{body}");
}

/// Sends a body; the `x-cache` header.
async fn x_cache(hub: &TestHub, body: &Value) -> String {
    let response = hub.post_graphql(None, body).await;
    assert_eq!(response.status(), 200);
    response.headers()["x-cache"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn answers_over_the_redis_entry_limit_stay_in_memory() {
    let Some(redis) = hub_tests::redis_url("answers_over_the_redis_entry_limit_stay_in_memory")
    else {
        return;
    };
    let prefix = format!("hub-entry-cap-{}", std::process::id());
    let settings = [
        ("REDIS_URL", redis.as_str()),
        ("CACHE_REDIS_PREFIX", prefix.as_str()),
        ("CACHE_REDIS_MAX_ENTRY_BYTES", "2048"),
    ];
    let a = TestHub::spawn_with(&settings).await;
    let b = a.spawn_sibling(&settings).await;
    a.wait_for_redis().await;
    b.wait_for_redis().await;
    let small = json!({ "query": "{ regions { code } }" });
    let large = json!({ "query": "{ schools(first: 100) { edges { node { urn name } } } }" });
    for body in [&small, &large] {
        assert_eq!(x_cache(&a, body).await, "miss");
        assert_eq!(x_cache(&a, body).await, "hit", "kept in A's memory");
    }
    // B has never seen either question: only the small answer is in Redis.
    assert_eq!(x_cache(&b, &small).await, "hit");
    assert_eq!(x_cache(&b, &large).await, "miss");
}

#[tokio::test]
async fn one_organisation_cannot_take_the_whole_pool() {
    let hub = TestHub::spawn_with(&[
        ("MAX_CONCURRENT_REQUESTS_PER_ORG", "1"),
        ("DATABASE_MAX_CONNECTIONS", "4"),
        ("DATABASE_ACQUIRE_TIMEOUT_MS", "200"),
        ("DATABASE_STATEMENT_TIMEOUT_MS", "60000"),
        ("REQUEST_TIMEOUT_MS", "60000"),
        ("CACHE_TTL_SECONDS", "0"),
    ])
    .await;
    let provider = hub.token_for("LOCAL_AUTHORITY:850", "LA_OFFICER");
    let other = hub.token_for("LOCAL_AUTHORITY:852", "LA_OFFICER");
    for token in [&provider, &other] {
        hub.query(Some(token), "{ me { roles } }", json!({})).await;
    }
    let lock = WriteLock::take(&hub).await;
    // Hampshire's one request in flight: a write waiting for the lock.
    let writer = {
        let client = hub.client.clone();
        let url = format!("{}/graphql", hub.address);
        let body = json!({ "query": "mutation($input: NewSharingAgreement!) { createSharingAgreement(input: $input) { id } }",
            "variables": { "input": {
                "provider": "LOCAL_AUTHORITY:850", "consumer": "LOCAL_AUTHORITY:852",
                "accessLevel": "SCHOOL", "purpose": "joint inclusion review",
                "validFrom": "2020-01-01", "validTo": "2099-12-31" } } });
        let provider = provider.clone();
        tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(provider)
                .json(&body)
                .send()
                .await
                .expect("send")
                .status()
        })
    };
    let mut held = 0;
    while held < 3 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let in_use = hub.metric("hub_db_pool_in_use_connections").await;
        held = if in_use >= 1.0 { held + 1 } else { 0 };
    }
    let indicators = json!({ "query": "{ indicators { code } }" });
    // Hampshire's next request finds its organisation's one slot taken: told to retry,
    // while the pool has connections to spare.
    let response = hub.post_graphql(Some(&provider), &indicators).await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"].to_str().unwrap(), "1");
    let body: Value = response.json().await.unwrap();
    assert_eq!(code(&body), "OVERLOADED", "{body}");
    // Southampton and anonymous callers have slots of their own, and the database is
    // not taken for down.
    for token in [Some(other.as_str()), None] {
        let body = hub.query(token, "{ indicators { code } }", json!({})).await;
        assert!(body["errors"].is_null(), "{body}");
    }
    assert_eq!(hub.get("/readyz").await.status(), 200);
    assert_eq!(hub.metric("hub_db_up").await, 1.0);
    lock.release().await;
    assert_eq!(writer.await.expect("writer"), 200);
    let body = hub
        .query(Some(&provider), "{ indicators { code } }", json!({}))
        .await;
    assert!(
        body["errors"].is_null(),
        "Hampshire's slot is free again: {body}"
    );
}
