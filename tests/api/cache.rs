//! The query-result cache: answers are shared only between callers with the same
//! scope, a write makes the next read fresh (on every instance), Redis going away never
//! fails a request, and the HTTP side speaks APQ, ETag and 304.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hub_tests::{TestHub, error_code, redis_url, token};
use serde_json::{Value, json};

/// The dashboard question: one LA's schools with their attendance figures.
const DASHBOARD: &str = r#"query Dashboard($la: String!) {
  schools(filter: { laCode: $la }, first: 50) {
    totalCount
    edges { node { urn observations(filter: { indicatorCodes: ["attendance_rate"], pupilGroups: [ALL] }) { period value } } }
  }
}"#;

/// The dashboard of LA 852 as a JSON body, byte-identical for every caller.
fn dashboard_body() -> Value {
    json!({ "query": DASHBOARD, "variables": { "la": "852" }, "operationName": "Dashboard" })
}

/// Sends a body and returns (x-cache, JSON body).
async fn send(hub: &TestHub, token: Option<&str>, body: &Value) -> (String, Value) {
    let response = hub.post_graphql(token, body).await;
    assert_eq!(response.status(), 200);
    let cache = response
        .headers()
        .get("x-cache")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("<none>")
        .to_owned();
    (cache, response.json().await.expect("JSON body"))
}

/// Every figure value in a dashboard answer (null where withheld or forbidden).
fn figures(body: &Value) -> Vec<Value> {
    body["data"]["schools"]["edges"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|e| {
            e["node"]["observations"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|o| o["value"].clone())
        .collect()
}

/// Hampshire (850) grants Southampton (852) SCHOOL access, through `hub`.
async fn grant_850_to_852(hub: &TestHub) {
    let created = hub
        .query(
            Some(&hub.token_for("LOCAL_AUTHORITY:850", "LA_OFFICER")),
            r#"mutation { createSharingAgreement(input: { provider: "LOCAL_AUTHORITY:850",
                consumer: "LOCAL_AUTHORITY:852", accessLevel: SCHOOL, purpose: "Casework",
                validFrom: "2020-01-01", validTo: "2099-12-31" }) { id } }"#,
            json!({}),
        )
        .await;
    assert!(created["errors"].is_null(), "{created}");
}

#[tokio::test]
async fn a_cached_dashboard_is_never_served_to_a_different_scope() {
    let hub = TestHub::spawn().await;
    let la_852 = hub.token_for("LOCAL_AUTHORITY:852", "LA_OFFICER");
    let (first, own) = send(&hub, Some(&la_852), &dashboard_body()).await;
    let (second, again) = send(&hub, Some(&la_852), &dashboard_body()).await;
    assert_eq!((first.as_str(), second.as_str()), ("miss", "hit"));
    assert_eq!(own, again);
    assert!(!figures(&own).is_empty() && figures(&own).iter().all(Value::is_number));

    // Another officer of the same LA has the same scope: the answer is shared.
    let colleague = token("LOCAL_AUTHORITY:852", &["LA_OFFICER"], 600);
    let (shared, body) = send(&hub, Some(&colleague), &dashboard_body()).await;
    assert_eq!(shared, "hit");
    assert_eq!(body, own);

    // Byte-identical requests from other scopes: never the LA's cached answer.
    let others = [
        Some(hub.token_for("LOCAL_AUTHORITY:850", "LA_OFFICER")),
        Some(hub.token_for("LOCAL_AUTHORITY:852", "ANALYST")),
        None,
    ];
    for token in &others {
        let (cache, body) = send(&hub, token.as_deref(), &dashboard_body()).await;
        assert_eq!(cache, "miss", "{token:?}");
        assert_ne!(body, own, "{token:?} got the LA officer's answer");
        assert!(
            body["data"]["schools"]["edges"]
                .as_array()
                .into_iter()
                .flatten()
                .all(|e| e["node"]["observations"].is_null()),
            "{token:?} saw school figures: {body}"
        );
    }
    assert!(hub.metric("hub_cache_hits_total{").await >= 2.0);
    assert!(hub.metric("hub_cache_misses_total").await >= 4.0);
}

#[tokio::test]
async fn a_write_makes_the_next_read_fresh() {
    let hub = TestHub::spawn().await;
    let consumer = hub.token_for("LOCAL_AUTHORITY:852", "LA_OFFICER");
    let list = json!({ "query": "{ sharingAgreements(direction: RECEIVED) { totalCount } }" });
    let (_, before) = send(&hub, Some(&consumer), &list).await;
    let (cache, _) = send(&hub, Some(&consumer), &list).await;
    assert_eq!(cache, "hit");
    assert_eq!(before["data"]["sharingAgreements"]["totalCount"], 0);

    grant_850_to_852(&hub).await;

    // The grant changes the consumer's scope (a new fingerprint) and the list itself.
    let (cache, after) = send(&hub, Some(&consumer), &list).await;
    assert_eq!(cache, "miss");
    assert_eq!(after["data"]["sharingAgreements"]["totalCount"], 1);
    let hampshire = json!({ "query": DASHBOARD, "variables": { "la": "850" } });
    let (_, widened) = send(&hub, Some(&consumer), &hampshire).await;
    assert!(figures(&widened).iter().any(Value::is_number), "{widened}");
    assert!(hub.metric("hub_cache_invalidations_total").await >= 1.0);
}

#[tokio::test]
async fn entries_expire_after_their_ttl() {
    let hub = TestHub::spawn_with(&[("CACHE_TTL_SECONDS", "1")]).await;
    let token = hub.token_for("LOCAL_AUTHORITY:852", "LA_OFFICER");
    assert_eq!(send(&hub, Some(&token), &dashboard_body()).await.0, "miss");
    assert_eq!(send(&hub, Some(&token), &dashboard_body()).await.0, "hit");
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    assert_eq!(send(&hub, Some(&token), &dashboard_body()).await.0, "miss");
}

#[tokio::test]
async fn audited_reads_mutations_and_errors_are_never_cached() {
    let hub = TestHub::spawn().await;
    let token = hub.token_for("LOCAL_AUTHORITY:852", "LA_OFFICER");
    let pupils = json!({ "query": "{ pupilRecords(first: 5) { totalCount } }" });
    let audited = || async {
        hub.query(
            Some(&hub.token_for("HUB:HUB", "HUB_ADMIN")),
            "{ auditEvents(filter: { action: READ }) { totalCount } }",
            json!({}),
        )
        .await["data"]["auditEvents"]["totalCount"]
            .as_i64()
            .unwrap()
    };
    let before = audited().await;
    for _ in 0..2 {
        let (cache, body) = send(&hub, Some(&token), &pupils).await;
        assert_eq!(cache, "miss");
        assert!(body["errors"].is_null(), "{body}");
    }
    assert_eq!(audited().await, before + 2, "every pupil read is audited");

    let forbidden = json!({ "query": "{ auditEvents { totalCount } }" });
    for _ in 0..2 {
        let (cache, body) = send(&hub, Some(&token), &forbidden).await;
        assert_eq!((cache.as_str(), error_code(&body)), ("miss", "FORBIDDEN"));
    }
    let me = json!({ "query": "{ me { subject } }" });
    for _ in 0..2 {
        assert_eq!(send(&hub, Some(&token), &me).await.0, "miss");
    }

    // The same mutation twice runs twice: two agreements, two ids.
    let create = json!({ "query": r#"mutation { createSharingAgreement(input: {
        provider: "LOCAL_AUTHORITY:852", consumer: "LOCAL_AUTHORITY:850", accessLevel: SCHOOL,
        purpose: "Casework", validFrom: "2020-01-01", validTo: "2099-12-31" }) { id } }"# });
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (cache, body) = send(&hub, Some(&token), &create).await;
        assert_eq!(cache, "miss");
        ids.push(body["data"]["createSharingAgreement"]["id"].clone());
    }
    assert!(ids[0].is_string() && ids[0] != ids[1], "{ids:?}");
}

/// Two instances on one database and one Redis.
#[tokio::test]
async fn a_write_through_one_instance_is_seen_through_another() {
    let Some(redis) = redis_url("a_write_through_one_instance_is_seen_through_another") else {
        return;
    };
    let prefix = format!("hub-two-{}", std::process::id());
    let settings = [
        ("REDIS_URL", redis.as_str()),
        ("CACHE_REDIS_PREFIX", prefix.as_str()),
    ];
    let a = TestHub::spawn_with(&settings).await;
    let b = a.spawn_sibling(&settings).await;
    a.wait_for_redis().await;
    b.wait_for_redis().await;
    let consumer = a.token_for("LOCAL_AUTHORITY:852", "LA_OFFICER");
    let list = json!({ "query": "{ sharingAgreements(direction: RECEIVED) { totalCount } }" });

    let (_, first) = send(&b, Some(&consumer), &list).await;
    assert_eq!(first["data"]["sharingAgreements"]["totalCount"], 0);
    assert_eq!(send(&b, Some(&consumer), &list).await.0, "hit");
    // A has never seen the question: it finds B's answer in Redis.
    assert_eq!(send(&a, Some(&consumer), &list).await.0, "hit");

    grant_850_to_852(&a).await;
    let (cache, after) = send(&b, Some(&consumer), &list).await;
    assert_eq!(cache, "miss");
    assert_eq!(after["data"]["sharingAgreements"]["totalCount"], 1);
}

/// Whether a document may run at all (introspection, fragment expansion) is checked on
/// a miss only, so a cache shared through Redis must never carry an answer from a hub
/// that allows introspection to one that does not.
#[tokio::test]
async fn introspection_cached_where_it_is_on_is_refused_where_it_is_off() {
    let Some(redis) = redis_url("introspection_cached_where_it_is_on_is_refused_where_it_is_off")
    else {
        return;
    };
    let prefix = format!("hub-introspection-{}", std::process::id());
    let shared = [
        ("REDIS_URL", redis.as_str()),
        ("CACHE_REDIS_PREFIX", prefix.as_str()),
    ];
    let open =
        TestHub::spawn_with(&[shared[0], shared[1], ("GRAPHQL_INTROSPECTION", "true")]).await;
    let closed = open
        .spawn_sibling(&[shared[0], shared[1], ("GRAPHQL_INTROSPECTION", "false")])
        .await;
    open.wait_for_redis().await;
    closed.wait_for_redis().await;
    let introspect = json!({ "query": "{ __schema { queryType { name } } }" });

    let (_, answered) = send(&open, None, &introspect).await;
    assert_eq!(answered["data"]["__schema"]["queryType"]["name"], "Query");
    assert_eq!(send(&open, None, &introspect).await.0, "hit");

    let response = closed.post_graphql(None, &introspect).await;
    assert_eq!(response.status(), 200);
    let refused: Value = response.json().await.expect("JSON body");
    assert_eq!(
        error_code(&refused),
        "GRAPHQL_VALIDATION_FAILED",
        "{refused}"
    );
    assert!(refused["data"].is_null(), "{refused}");
}

#[tokio::test]
async fn a_dead_redis_port_costs_nothing_but_the_cache() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis://{}", dead.local_addr().unwrap());
    drop(dead);
    let hub = TestHub::spawn_with(&[("REDIS_URL", url.as_str())]).await;
    let token = hub.token_for("LOCAL_AUTHORITY:852", "LA_OFFICER");
    let reference = TestHub::spawn_with(&[("CACHE_TTL_SECONDS", "0")]).await;
    let (_, expected) = send(&reference, Some(&token), &dashboard_body()).await;
    // The first answer comes from the database; the in-process tier then serves it
    // (Redis never confirms memory, so only within CACHE_REDIS_DOWN_MAX_AGE_SECONDS).
    for expected_cache in ["miss", "hit", "hit"] {
        let (cache, body) = send(&hub, Some(&token), &dashboard_body()).await;
        assert_eq!(cache, expected_cache);
        assert_eq!(body, expected);
    }
    assert_eq!(hub.metric("hub_cache_redis_up").await, 0.0);
    // The failed connection attempt is counted (the attempt runs in the background).
    for _ in 0..100 {
        if hub.metric("hub_cache_redis_errors_total").await >= 1.0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no Redis error counted");
}

/// An entry in Redis that cannot be decoded — bit rot, another program writing under
/// the prefix, a length claiming gigabytes — is a miss answered from the database and
/// stored afresh, never an error; it is counted, and Redis stays in use.
#[tokio::test]
async fn a_garbled_redis_entry_is_a_miss() {
    let Some(redis) = redis_url("a_garbled_redis_entry_is_a_miss") else {
        return;
    };
    let prefix = format!("hub-garbled-{}", std::process::id());
    let hub = TestHub::spawn_with(&[
        ("REDIS_URL", redis.as_str()),
        ("CACHE_REDIS_PREFIX", prefix.as_str()),
        ("CACHE_MEMORY_MB", "0"),
    ])
    .await;
    hub.wait_for_redis().await;
    let token = hub.token_for("LOCAL_AUTHORITY:852", "LA_OFFICER");
    let (_, expected) = send(&hub, Some(&token), &dashboard_body()).await;
    assert_eq!(send(&hub, Some(&token), &dashboard_body()).await.0, "hit");

    let client = redis::Client::open(redis.as_str()).expect("Redis URL");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect to Redis");
    let entries: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:entry:*"))
        .query_async(&mut conn)
        .await
        .expect("list entries");
    assert_eq!(entries.len(), 1, "{entries:?}");
    let errors_before = hub.metric("hub_cache_redis_errors_total").await;
    let garbage: [&[u8]; 4] = [
        b"",
        b"not lz4 at all",
        b"\xff\xff\xff\x7fclaims two gigabytes",
        b"\x64\0\0\0\xf0garbage",
    ];
    for body in garbage {
        let _: () = redis::cmd("HSET")
            .arg(&entries[0])
            .arg("body")
            .arg(body)
            .query_async(&mut conn)
            .await
            .expect("garble the entry");
        let (cache, answer) = send(&hub, Some(&token), &dashboard_body()).await;
        assert_eq!((cache.as_str(), &answer), ("miss", &expected));
        assert_eq!(send(&hub, Some(&token), &dashboard_body()).await.0, "hit");
    }
    assert_eq!(
        hub.metric("hub_cache_redis_errors_total").await,
        errors_before + 4.0
    );
    assert_eq!(hub.metric("hub_cache_redis_up").await, 1.0);
}

/// A private `redis-server` on a free port, stopped on drop.
struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    fn start(port: u16) -> RedisServer {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server must be installed to run this test");
        RedisServer { child, port }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test]
async fn losing_redis_mid_run_fails_no_request_and_it_is_used_again_when_back() {
    if redis_url("losing_redis_mid_run_fails_no_request_and_it_is_used_again_when_back").is_none() {
        return;
    }
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let mut server = RedisServer::start(port);
    let url = format!("redis://127.0.0.1:{}", server.port);
    let hub = TestHub::spawn_with(&[("REDIS_URL", url.as_str())]).await;
    hub.wait_for_redis().await;
    let token = hub.token_for("LOCAL_AUTHORITY:852", "LA_OFFICER");
    let (_, expected) = send(&hub, Some(&token), &dashboard_body()).await;
    assert_eq!(send(&hub, Some(&token), &dashboard_body()).await.0, "hit");

    server.stop();
    for _ in 0..5 {
        let (_, body) = send(&hub, Some(&token), &dashboard_body()).await;
        assert_eq!(
            body, expected,
            "answered from the database while Redis is away"
        );
    }
    assert_eq!(hub.metric("hub_cache_redis_up").await, 0.0);

    let _server = RedisServer::start(port);
    hub.wait_for_redis().await;
    let (_, body) = send(&hub, Some(&token), &dashboard_body()).await;
    assert_eq!(body, expected);
    assert_eq!(send(&hub, Some(&token), &dashboard_body()).await.0, "hit");
}

#[tokio::test]
async fn automatic_persisted_queries_round_trip() {
    let hub = TestHub::spawn().await;
    let document = "{ regions { code } }";
    // The SHA-256 of the document's text, as an Apollo client computes it.
    let hash = "32d23810f7c0d236a0cd28a96d1aaaf926a9f0e9f13227c75d2c683bb3f3413a";
    let extensions = json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } });

    let (_, unknown) = send(&hub, None, &json!({ "extensions": extensions })).await;
    assert_eq!(error_code(&unknown), "PERSISTED_QUERY_NOT_FOUND");
    assert_eq!(unknown["errors"][0]["message"], "PersistedQueryNotFound");

    let (_, registered) = send(
        &hub,
        None,
        &json!({ "query": document, "extensions": extensions }),
    )
    .await;
    assert_eq!(registered["data"]["regions"].as_array().unwrap().len(), 9);
    let (cache, by_hash) = send(&hub, None, &json!({ "extensions": extensions })).await;
    assert_eq!(by_hash, registered);
    assert_eq!(cache, "hit");

    let wrong = json!({ "query": "{ indicators { code } }", "extensions": extensions });
    let response = hub.post_graphql(None, &wrong).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(error_code(&body), "BAD_REQUEST");
}

#[tokio::test]
async fn an_unchanged_get_answer_is_304() {
    let hub = TestHub::spawn().await;
    let url = format!(
        "{}/graphql?query=%7B%20regions%20%7B%20code%20%7D%20%7D",
        hub.address
    );
    let first = hub.client.get(&url).send().await.unwrap();
    assert_eq!(first.status(), 200);
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    assert!(
        first.headers()["cache-control"]
            .to_str()
            .unwrap()
            .starts_with("private, max-age=")
    );
    let again = hub
        .client
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()["etag"].to_str().unwrap(), etag);
    assert!(again.bytes().await.unwrap().is_empty());

    let other = hub
        .client
        .get(&url)
        .header("if-none-match", "\"something-else\"")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200);

    // POST answers and errors are never HTTP-cacheable.
    let post = hub
        .post_graphql(None, &json!({ "query": "{ regions { code } }" }))
        .await;
    assert_eq!(post.headers()["cache-control"], "no-store");
    let error = hub
        .client
        .get(format!("{}/graphql?query=%7B%20nope%20%7D", hub.address))
        .send()
        .await
        .unwrap();
    assert_eq!(error.headers()["cache-control"], "no-store");
    assert!(error.headers().get("etag").is_none());
}

#[tokio::test]
async fn named_and_anonymous_queries_are_both_cached() {
    let hub = TestHub::spawn().await;
    let token = hub.token_for("LOCAL_AUTHORITY:852", "LA_OFFICER");
    for body in [
        json!({ "query": "{ regions { code } }" }),
        json!({ "query": "query Regions { regions { code } }" }),
        json!({ "query": "query Schools($la: String!) { schools(filter: { laCode: $la }) { totalCount } }",
                "variables": { "la": "852" } }),
        json!({ "query": "query A { regions { code } } query B { indicators { code } }",
                "operationName": "B" }),
    ] {
        assert_eq!(send(&hub, Some(&token), &body).await.0, "miss", "{body}");
        assert_eq!(send(&hub, Some(&token), &body).await.0, "hit", "{body}");
    }
}

/// The in-process tier carries the hub through a Redis outage: what it stored within
/// `CACHE_REDIS_DOWN_MAX_AGE_SECONDS` is served without the database, older answers are
/// computed again (and kept for as long), and nothing is older than that setting.
#[tokio::test]
async fn killing_redis_keeps_recent_in_process_answers_serving() {
    if redis_url("killing_redis_keeps_recent_in_process_answers_serving").is_none() {
        return;
    }
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let mut server = RedisServer::start(port);
    let url = format!("redis://127.0.0.1:{}", server.port);
    let hub = TestHub::spawn_with(&[
        ("REDIS_URL", url.as_str()),
        ("CACHE_REDIS_DOWN_MAX_AGE_SECONDS", "2"),
    ])
    .await;
    hub.wait_for_redis().await;
    let token = hub.token_for("LOCAL_AUTHORITY:852", "LA_OFFICER");
    let (_, expected) = send(&hub, Some(&token), &dashboard_body()).await;
    assert_eq!(send(&hub, Some(&token), &dashboard_body()).await.0, "hit");

    server.stop();
    for _ in 0..100 {
        if hub.metric("hub_cache_redis_up").await == 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(hub.metric("hub_cache_redis_up").await, 0.0);
    // Within the age limit: hits from memory, no SQL at all (the caller's scope too is
    // remembered).
    let statements = hub.statements().await;
    for _ in 0..5 {
        let (cache, body) = send(&hub, Some(&token), &dashboard_body()).await;
        assert_eq!((cache.as_str(), &body), ("hit", &expected));
    }
    assert_eq!(hub.statements().await, statements, "served from memory");
    // Past it: computed again from the database, then served from memory again.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (cache, body) = send(&hub, Some(&token), &dashboard_body()).await;
    assert_eq!((cache.as_str(), &body), ("miss", &expected));
    assert_eq!(send(&hub, Some(&token), &dashboard_body()).await.0, "hit");
    // A write through this instance still invalidates its memory at once.
    let agent = hub.token_for("LOCAL_AUTHORITY:852", "SYNC_AGENT");
    let written = hub
        .query(
            Some(&agent),
            "mutation($input: UpsertObservationsInput!) { upsertObservations(input: $input) { run { rowsWritten } } }",
            json!({ "input": { "rows": [{ "indicatorCode": "attendance_rate", "period": "2031/32",
                "level": "LA", "areaCode": "852", "pupilGroup": "ALL",
                "numerator": 900, "denominator": 1000 }] } }),
        )
        .await;
    assert!(written.get("errors").is_none(), "{written}");
    assert_eq!(send(&hub, Some(&token), &dashboard_body()).await.0, "miss");

    let _server = RedisServer::start(port);
    hub.wait_for_redis().await;
    send(&hub, Some(&token), &dashboard_body()).await;
    assert_eq!(send(&hub, Some(&token), &dashboard_body()).await.0, "hit");
}

/// A Redis that stalls (here a script that runs for 300 ms, longer than the command
/// timeout but shorter than the hub's ping) costs the requests that met the stall
/// their Redis lookups, not everyone's cache: in-process hits go on, and Redis is
/// never taken for down.
#[tokio::test]
async fn a_slow_redis_is_skipped_per_request_not_taken_for_down() {
    if redis_url("a_slow_redis_is_skipped_per_request_not_taken_for_down").is_none() {
        return;
    }
    // A Redis of its own: stalling the shared one would stall every other test's hubs.
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let _server = RedisServer::start(port);
    let redis = format!("redis://127.0.0.1:{port}");
    let hub = TestHub::spawn_with(&[
        ("REDIS_URL", redis.as_str()),
        ("CACHE_REDIS_TIMEOUT_MS", "100"),
        // The ping waits four times the command timeout: 400 ms < the stall.
        ("CACHE_REDIS_DOWN_MAX_AGE_SECONDS", "30"),
    ])
    .await;
    hub.wait_for_redis().await;
    let token = hub.token_for("LOCAL_AUTHORITY:852", "LA_OFFICER");
    let (_, expected) = send(&hub, Some(&token), &dashboard_body()).await;
    assert_eq!(send(&hub, Some(&token), &dashboard_body()).await.0, "hit");
    let errors_before = hub.metric("hub_cache_redis_errors_total").await;

    let client = redis::Client::open(redis.as_str()).expect("Redis URL");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect to Redis");
    let stall = tokio::spawn(async move {
        let busy = r"local t = redis.call('TIME')
local start = t[1] * 1000000 + t[2]
repeat t = redis.call('TIME') until t[1] * 1000000 + t[2] - start > tonumber(ARGV[1])
return 1";
        let _: redis::RedisResult<i64> = redis::cmd("EVAL")
            .arg(busy)
            .arg(0)
            .arg(300_000)
            .query_async(&mut conn)
            .await;
    });
    tokio::time::sleep(Duration::from_millis(30)).await;
    let started = std::time::Instant::now();
    let (cache, body) = send(&hub, Some(&token), &dashboard_body()).await;
    assert_eq!(
        (cache.as_str(), &body),
        ("hit", &expected),
        "memory kept serving"
    );
    assert!(
        started.elapsed() < Duration::from_millis(280),
        "{:?}",
        started.elapsed()
    );
    stall.await.expect("the stall ended");
    assert!(hub.metric("hub_cache_redis_errors_total").await > errors_before);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        hub.metric("hub_cache_redis_up").await,
        1.0,
        "never taken for down"
    );
    assert_eq!(send(&hub, Some(&token), &dashboard_body()).await.0, "hit");
}
