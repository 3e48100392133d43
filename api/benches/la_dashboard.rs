//! The LA dashboard benchmark: one LA's schools with five indicators over three periods
//! for the ALL and DISADVANTAGED groups, plus the LA's gap figures — the query partner
//! dashboards send all day — timed uncached (every request misses the cache) against the national-scale dataset on
//! PostgreSQL, through the real HTTP server.
//!
//! ```text
//! BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo bench -p baseline-hub --bench la_dashboard
//! ```
//!
//! The national dataset (~22,000 schools, millions of observations) is loaded into the
//! database `hub_bench_national` on first run and reused afterwards. `BENCH_LA` picks the
//! LA (default 852), `BENCH_ROLE`/`BENCH_ORG` the token, `BENCH_REQUESTS` the sample size.

mod common;

use std::time::{Duration, Instant};

use baseline_hub::startup::Application;
use common::{DASHBOARD, env};
use serde_json::{Value, json};

#[tokio::main]
async fn main() {
    let la = env("BENCH_LA", "852");
    let org = env("BENCH_ORG", &format!("LOCAL_AUTHORITY:{la}"));
    let role = env("BENCH_ROLE", "LA_OFFICER");
    let requests: usize = env("BENCH_REQUESTS", "200").parse().unwrap_or(200);
    let config = common::national_config(&[]).await;

    let app = Application::build(config).await.expect("hub starts");
    let base = format!("http://{}", app.local_addr());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    let token = common::token(&org, &role);
    let client = reqwest::Client::new();
    // Uncached: each request carries a variable the query ignores, so each one is a
    // different cache key and runs the query (the caller's scope is still remembered
    // between requests, as in production).
    let nonce = std::sync::atomic::AtomicU64::new(0);

    // Timed: from sending the request to the last byte of the answer. Checking the
    // answer (and parsing it, for the sample) happens outside the timed span, so the
    // figures are the hub's, not the load generator's JSON parser's.
    let send = || async {
        let n = nonce.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let body = json!({ "query": DASHBOARD, "variables": { "la": la, "nonce": n }, "operationName": "LaDashboard" });
        let started = Instant::now();
        let response = client
            .post(format!("{base}/graphql"))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .expect("send");
        let cache = response.headers()["x-cache"].clone();
        let bytes = response.bytes().await.expect("body");
        let elapsed = started.elapsed();
        assert_eq!(cache, "miss", "the benchmark must not hit");
        assert!(
            !bytes.windows(9).any(|w| w == b"\"errors\":"),
            "dashboard query failed: {}",
            String::from_utf8_lossy(&bytes)
        );
        (bytes, elapsed)
    };
    let (sample, _) = send().await;
    let sample: Value = serde_json::from_slice(&sample).expect("json");
    let schools = sample["data"]["schools"]["edges"]
        .as_array()
        .map_or(0, Vec::len);
    let figures: usize = sample["data"]["schools"]["edges"]
        .as_array()
        .map(|edges| {
            edges
                .iter()
                .map(|e| e["node"]["observations"].as_array().map_or(0, Vec::len))
                .sum()
        })
        .unwrap_or(0);
    for _ in 0..20 {
        send().await;
    }
    let statements_before = metric(&client, &base, "hub_db_statements_total").await;
    let sql_seconds_before = metric(&client, &base, "hub_db_statement_duration_seconds_sum").await;
    let mut latencies = Vec::with_capacity(requests);
    for _ in 0..requests {
        latencies.push(send().await.1);
    }
    let statements_per_request = (metric(&client, &base, "hub_db_statements_total").await
        - statements_before)
        / requests as f64;
    let sql_ms_per_request = (metric(&client, &base, "hub_db_statement_duration_seconds_sum")
        .await
        - sql_seconds_before)
        * 1000.0
        / requests as f64;
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "LA dashboard (LA {la}, role {role}): {schools} schools, {figures} school figures per response"
    );
    println!(
        "  {requests} requests, uncached: median {:.2} ms, p95 {:.2} ms, {:.1} SQL statements \
         ({:.2} ms in SQL) per request",
        ms(pct(0.5)),
        ms(pct(0.95)),
        statements_per_request,
        sql_ms_per_request
    );

    // The first request after a write: any figure write moves the change feed, so the
    // disclosure decisions of every table this request meets are taken again (reading
    // the tables and the caller's own figures). The write touches a figure outside the
    // dashboard (an old period) and is deleted at the end.
    let writer = common::token("HUB:HUB", "SYNC_AGENT");
    let write = |document: &'static str, input: Value| {
        let client = client.clone();
        let base = base.clone();
        let writer = writer.clone();
        async move {
            let body: Value = client
                .post(format!("{base}/graphql"))
                .bearer_auth(&writer)
                .json(&json!({ "query": document, "variables": { "input": input } }))
                .send()
                .await
                .expect("send")
                .json()
                .await
                .expect("json");
            assert!(body.get("errors").is_none(), "write failed: {body}");
        }
    };
    let key = json!({ "indicatorCode": "ehe_count", "period": "2010/11", "level": "LA", "areaCode": la, "pupilGroup": "ALL" });
    let mut after_write = Vec::new();
    for n in 0..20 {
        let mut row = key.clone();
        row["numerator"] = json!(10 + n % 2);
        write(
            "mutation($input: UpsertObservationsInput!) { upsertObservations(input: $input) { run { id } } }",
            json!({ "rows": [row] }),
        )
        .await;
        after_write.push(send().await.1);
    }
    write(
        "mutation($input: DeleteObservationsInput!) { deleteObservations(input: $input) { run { id } } }",
        json!({ "keys": [key] }),
    )
    .await;
    after_write.sort();
    println!(
        "  first request after a figure write (decisions taken again), {} writes: median {:.2} ms, max {:.2} ms",
        after_write.len(),
        ms(after_write[after_write.len() / 2]),
        ms(after_write[after_write.len() - 1])
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Reads one sample (`name value`) from `/metrics`.
async fn metric(client: &reqwest::Client, base: &str, name: &str) -> f64 {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}
