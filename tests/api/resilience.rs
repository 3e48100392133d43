//! Timeouts and outages: a statement that cannot finish ends with a clear error, a
//! request that cannot finish is answered when its time is up, and a database restart
//! under a stream of requests costs clear `UNAVAILABLE` errors, never a panic or a
//! hang, after which the hub answers correctly again by itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hub_tests::cluster::PrivatePostgres;
use hub_tests::{TestHub, error_code};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend};
use serde_json::{Value, json};

const CREATE: &str = r#"mutation($input: NewSharingAgreement!) {
  createSharingAgreement(input: $input) { id } }"#;

fn agreement() -> Value {
    json!({ "input": {
        "provider": "LOCAL_AUTHORITY:850", "consumer": "LOCAL_AUTHORITY:852",
        "accessLevel": "SCHOOL", "purpose": "joint inclusion review",
        "validFrom": "2020-01-01", "validTo": "2099-12-31" } })
}

/// A connection of the test's own that holds the write lock on the agreements table
/// until dropped: PostgreSQL's table lock, SQLite's database write lock. Whatever the
/// hub then writes there must wait — deterministically, for as long as the test likes.
struct WriteLock {
    db: DatabaseConnection,
}

impl WriteLock {
    async fn take(hub: &TestHub) -> WriteLock {
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
        WriteLock { db }
    }

    async fn release(self) {
        self.db
            .execute_unprepared("ROLLBACK")
            .await
            .expect("release the lock");
        self.db.close().await.expect("close");
    }
}

/// The error of a response that ran out of time.
fn assert_timed_out(body: &Value) {
    assert_eq!(error_code(body), "UNAVAILABLE", "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("took too long"), "{body}");
}

#[tokio::test]
async fn a_statement_waiting_on_a_lock_ends_with_a_clear_error() {
    let hub = TestHub::spawn_with(&[("DATABASE_STATEMENT_TIMEOUT_MS", "300")]).await;
    let provider = hub.token_for("LOCAL_AUTHORITY:850", "LA_OFFICER");
    let lock = WriteLock::take(&hub).await;
    let response = hub
        .post_graphql(
            Some(&provider),
            &json!({ "query": CREATE, "variables": agreement() }),
        )
        .await;
    // An answer with an `UNAVAILABLE` error is a 503, like a refusal before execution.
    assert_eq!(response.status(), 503);
    let blocked: Value = response.json().await.expect("JSON body");
    assert_timed_out(&blocked);
    assert!(blocked["data"].is_null(), "{blocked}");
    lock.release().await;
    let written = hub.query(Some(&provider), CREATE, agreement()).await;
    assert!(written.get("errors").is_none(), "{written}");
    assert!(written["data"]["createSharingAgreement"]["id"].is_string());
}

#[tokio::test]
async fn the_request_timeout_answers_a_request_that_cannot_finish() {
    let hub = TestHub::spawn_with(&[
        ("REQUEST_TIMEOUT_MS", "300"),
        ("DATABASE_STATEMENT_TIMEOUT_MS", "60000"),
    ])
    .await;
    let provider = hub.token_for("LOCAL_AUTHORITY:850", "LA_OFFICER");
    // Warm the caller's scope, so that only the write waits.
    hub.query(Some(&provider), "{ me { roles } }", json!({}))
        .await;
    let lock = WriteLock::take(&hub).await;
    let response = hub
        .post_graphql(
            Some(&provider),
            &json!({ "query": CREATE, "variables": agreement() }),
        )
        .await;
    assert_eq!(response.status(), 503);
    assert_timed_out(&response.json().await.expect("JSON body"));
    lock.release().await;
    let answered = hub.query(None, "{ regions { code } }", json!({})).await;
    assert_eq!(
        answered["data"]["regions"].as_array().map(Vec::len),
        Some(9)
    );
}

/// What one request of the stream got.
#[derive(Debug, PartialEq)]
enum Outcome {
    Correct,
    Unavailable,
}

const SCHOOLS: &str = r#"{ schools(filter: { laCode: "852" }, first: 3) { totalCount edges { node { urn name } } } }"#;

/// One request with a bound on how long it may take: a hang fails the test.
async fn classify(hub: &TestHub, token: Option<&str>, expected: &Value) -> Outcome {
    let mut request = hub
        .client
        .post(format!("{}/graphql", hub.address))
        .timeout(Duration::from_secs(20))
        .json(&json!({ "query": SCHOOLS }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("answered, not hung or dropped");
    let status = response.status();
    let body: Value = response.json().await.expect("a JSON body");
    if status == 200 && body.get("errors").is_none() {
        assert_eq!(&body["data"], expected, "a wrong answer");
        return Outcome::Correct;
    }
    assert!(
        status == 200 || status == 503,
        "HTTP {status} is not how an outage is reported: {body}"
    );
    let errors = body["errors"].as_array().expect("errors");
    // A request that waited for a pool connection across the restart and gave up
    // once the database answered again is told the hub is busy: `503`, retry after
    // a second — retryable like `UNAVAILABLE`, never anything else.
    assert!(
        errors
            .iter()
            .all(|e| e["extensions"]["code"] == "UNAVAILABLE"
                || (status == 503 && e["extensions"]["code"] == "OVERLOADED")),
        "every error of an outage is UNAVAILABLE: {body}"
    );
    Outcome::Unavailable
}

async fn wait_until_ready(hub: &TestHub, ready: bool) {
    for _ in 0..300 {
        let status = hub.get("/readyz").await.status();
        if (status == 200) == ready {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("/readyz did not report ready={ready} within 30 s");
}

#[tokio::test]
async fn postgres_restarted_during_a_stream_of_requests() {
    let test = "postgres_restarted_during_a_stream_of_requests";
    let Some(postgres) = PrivatePostgres::start(test).await else {
        return;
    };
    // No cache and no rate limit: every request of the stream reaches the database.
    let hub = TestHub::spawn_on(
        &postgres.url(),
        &[
            ("HUB_SEED", "test"),
            ("CACHE_TTL_SECONDS", "0"),
            ("RATE_LIMIT_PER_SECOND", "0"),
        ],
    )
    .await;
    let token = hub.token_for("LOCAL_AUTHORITY:852", "LA_OFFICER");
    let expected = hub.query(None, SCHOOLS, json!({})).await["data"].clone();
    assert!(expected["schools"]["totalCount"].as_i64() > Some(0));
    wait_until_ready(&hub, true).await;

    let hub = Arc::new(hub);
    let running = Arc::new(AtomicBool::new(true));
    let stream = {
        let (hub, running, expected, token) = (
            hub.clone(),
            running.clone(),
            expected.clone(),
            token.clone(),
        );
        tokio::spawn(async move {
            let mut outcomes = Vec::new();
            let mut i = 0usize;
            while running.load(Ordering::Acquire) {
                let token = (i % 2 == 1).then_some(token.as_str());
                outcomes.push(classify(&hub, token, &expected).await);
                i += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            outcomes
        })
    };

    tokio::time::sleep(Duration::from_millis(300)).await;
    postgres.stop().await;
    wait_until_ready(&hub, false).await;
    for token in [None, Some(token.as_str())] {
        assert_eq!(
            classify(&hub, token, &expected).await,
            Outcome::Unavailable,
            "while the database is down"
        );
    }
    assert_eq!(hub.metric("hub_db_up").await, 0.0);

    postgres.restart().await;
    wait_until_ready(&hub, true).await;
    // The hub recovers by itself: its health check notices within a fraction of a
    // second, and stale pooled connections are replaced as they are tested.
    let mut recovered = false;
    for _ in 0..100 {
        if classify(&hub, None, &expected).await == Outcome::Correct {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "correct answers again after the restart");
    assert_eq!(
        classify(&hub, Some(&token), &expected).await,
        Outcome::Correct
    );
    assert_eq!(hub.metric("hub_db_up").await, 1.0);

    running.store(false, Ordering::Release);
    let outcomes = stream.await.expect("the stream did not panic");
    let correct = outcomes.iter().filter(|o| **o == Outcome::Correct).count();
    let unavailable = outcomes.len() - correct;
    assert!(
        correct > 0 && unavailable > 0,
        "the stream saw both answers and the outage: {correct} correct, {unavailable} unavailable"
    );
    assert!(
        outcomes.last() == Some(&Outcome::Correct),
        "the stream ends on correct answers"
    );
    assert_eq!(hub.get("/healthz").await.status(), 200);
}

const UPSERT: &str = r#"mutation($input: UpsertObservationsInput!) {
  upsertObservations(input: $input) { run { rowsWritten } } }"#;

/// One school figure of `urn` for 2031/32 with `numerator`, under `key`.
fn figure(urn: i64, key: &str, numerator: i64) -> Value {
    json!({ "input": { "idempotencyKey": key, "rows": [{
        "indicatorCode": "suspension_rate", "period": "2031/32", "level": "SCHOOL",
        "areaCode": urn.to_string(), "pupilGroup": "ALL",
        "numerator": numerator, "denominator": 200 }] } })
}

#[tokio::test]
async fn a_sync_call_that_deadlocks_is_run_again_and_succeeds() {
    let test = "a_sync_call_that_deadlocks_is_run_again_and_succeeds";
    // SQLite has one writer at a time (writes queue, they cannot deadlock), so when the
    // suite runs on SQLite this test brings a PostgreSQL of its own.
    let private;
    let hub = if std::env::var("DATABASE_URL").is_ok_and(|url| url.starts_with("postgres")) {
        TestHub::spawn().await
    } else {
        let Some(postgres) = PrivatePostgres::start(test).await else {
            return;
        };
        private = postgres;
        TestHub::spawn_on(&private.url(), &[("HUB_SEED", "test")]).await
    };
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
    let first = hub
        .query(Some(&agent), UPSERT, figure(urn, "deadlock-1", 7))
        .await;
    assert!(first.get("errors").is_none(), "{first}");

    // The test's transaction locks the figure's row; the hub's call then takes the
    // change-feed counter and waits for the row; the test then asks for the counter:
    // a deadlock. The test waits ten seconds before looking for one and the hub's
    // session the default second, so PostgreSQL breaks it by rolling the hub's back.
    let mut options = ConnectOptions::new(hub.database_url.clone());
    options.max_connections(1).min_connections(1);
    let other = Database::connect(options).await.expect("connect");
    for statement in [
        "SET deadlock_timeout = '10s'",
        "BEGIN",
        "UPDATE observation SET numerator = numerator WHERE period = '2031/32'",
    ] {
        other.execute_unprepared(statement).await.expect(statement);
    }
    let call = {
        let (client, url, agent) = (
            hub.client.clone(),
            format!("{}/graphql", hub.address),
            agent.clone(),
        );
        let body = json!({ "query": UPSERT, "variables": figure(urn, "deadlock-2", 8) });
        tokio::spawn(async move {
            let response = client
                .post(url)
                .bearer_auth(agent)
                .json(&body)
                .send()
                .await
                .expect("answered");
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.expect("JSON"))
        })
    };
    let waiting = "SELECT COUNT(*) FROM pg_stat_activity \
                   WHERE datname = current_database() AND wait_event_type = 'Lock'";
    let mut tries = 0;
    while hub.scalar(waiting).await < 1 {
        tries += 1;
        assert!(tries < 200, "the hub's call never waited for the row");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    other
        .execute_unprepared("UPDATE feed_sequence SET value = value")
        .await
        .expect("the hub's transaction, not the test's, is the one rolled back");
    other
        .execute_unprepared("ROLLBACK")
        .await
        .expect("rollback");

    let (status, body) = call.await.expect("no panic");
    assert_eq!(status, 200, "{body}");
    assert!(
        body.get("errors").is_none(),
        "run again after the deadlock: {body}"
    );
    assert_eq!(body["data"]["upsertObservations"]["run"]["rowsWritten"], 1);
    assert_eq!(
        hub.scalar("SELECT CAST(numerator AS BIGINT) FROM observation WHERE period = '2031/32'")
            .await,
        8
    );
}
