//! The LA dashboard benchmark: one LA's schools with five indicators over three periods
//! for the ALL and DISADVANTAGED groups, plus the LA's gap figures — the query partner
//! dashboards send all day — timed uncached against the national-scale dataset on
//! PostgreSQL, through the real HTTP server.
//!
//! ```text
//! BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo bench -p baseline-hub --bench la_dashboard
//! ```
//!
//! The national dataset (~22,000 schools, millions of observations) is loaded into the
//! database `hub_bench_national` on first run and reused afterwards. `BENCH_LA` picks the
//! LA (default 852), `BENCH_ROLE`/`BENCH_ORG` the token, `BENCH_REQUESTS` the sample size.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use baseline_hub::auth::{Claims, mint};
use baseline_hub::config::Config;
use baseline_hub::startup::Application;
use baseline_hub::telemetry::Metrics;
use baseline_hub::{db, seed};
use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};

const BENCH_DB: &str = "hub_bench_national";
const JWT_SECRET: &str = "bench-jwt-secret-that-is-at-least-32-bytes";
const PUPIL_KEY_SECRET: &str = "bench-pupil-key-secret";

pub const DASHBOARD: &str = r#"query LaDashboard($la: String!) {
  schools(filter: { laCode: $la }, first: 200) {
    totalCount
    edges { node {
      urn name phase pupilsOnRoll
      observations(filter: {
        indicatorCodes: ["attendance_rate", "persistent_absence_rate", "suspension_rate", "ks2_rwm_expected_pct", "ks4_attainment8"],
        periodFrom: "2023/24", periodTo: "2025/26", pupilGroups: [ALL, DISADVANTAGED]
      }) { indicatorCode period pupilGroup value denominator }
    } }
  }
  disadvantageGap(area: { level: LA, code: $la },
    indicatorCodes: ["attendance_rate", "persistent_absence_rate", "suspension_rate", "ks2_rwm_expected_pct", "ks4_attainment8"],
    periodFrom: "2023/24", periodTo: "2025/26") {
    indicatorCode period disadvantaged notDisadvantaged gap disadvantagedCohort
  }
}"#;

fn env(key: &str, default: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| default.to_owned())
}

#[tokio::main]
async fn main() {
    let Some(base_url) = std::env::var("BENCH_DATABASE_URL")
        .ok()
        .or_else(|| std::env::var("DATABASE_URL").ok())
    else {
        eprintln!("set BENCH_DATABASE_URL=postgres://… (the benchmark runs on PostgreSQL)");
        std::process::exit(2);
    };
    let la = env("BENCH_LA", "852");
    let org = env("BENCH_ORG", &format!("LOCAL_AUTHORITY:{la}"));
    let role = env("BENCH_ROLE", "LA_OFFICER");
    let requests: usize = env("BENCH_REQUESTS", "200").parse().unwrap_or(200);

    let admin = Database::connect(&base_url)
        .await
        .expect("connect to PostgreSQL");
    let exists = admin
        .query_one_raw(sea_orm::Statement::from_string(
            admin.get_database_backend(),
            format!("SELECT 1 AS one FROM pg_database WHERE datname = '{BENCH_DB}'"),
        ))
        .await
        .expect("query pg_database")
        .is_some();
    if !exists {
        admin
            .execute_unprepared(&format!("CREATE DATABASE {BENCH_DB}"))
            .await
            .expect("create bench database");
    }
    let (prefix, _) = base_url
        .rsplit_once('/')
        .expect("DATABASE_URL has a database name");
    let url = format!("{prefix}/{BENCH_DB}");

    let vars: HashMap<String, String> = [
        ("HUB_ADDR", "127.0.0.1:0"),
        ("DATABASE_URL", url.as_str()),
        ("HUB_SEED", "none"),
        ("JWT_SECRET", JWT_SECRET),
        ("PUPIL_KEY_SECRET", PUPIL_KEY_SECRET),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let config = Config::from_vars(&vars).expect("bench config");
    {
        let conn = db::connect(&config, &Metrics::new())
            .await
            .expect("connect bench database");
        db::migrate(&conn).await.expect("migrate");
        if !seed::is_seeded(&conn).await.expect("check seed") {
            let started = Instant::now();
            println!("loading the national dataset into {BENCH_DB} (first run only)…");
            let summary = seed::seed(
                &conn,
                seed::Scale::National,
                PUPIL_KEY_SECRET.as_bytes(),
                &|line| println!("  {line}"),
            )
            .await
            .expect("seed national");
            println!(
                "loaded {} schools, {} observations, {} pupil records in {:.0}s",
                summary.schools,
                summary.observations,
                summary.pupil_records,
                started.elapsed().as_secs_f64()
            );
            conn.execute_unprepared("ANALYZE").await.expect("analyze");
        }
    }

    let app = Application::build(config).await.expect("hub starts");
    let base = format!("http://{}", app.local_addr());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let token = mint(
        JWT_SECRET.as_bytes(),
        &Claims {
            sub: "bench".into(),
            org,
            roles: vec![role.clone()],
            exp: now + 3600,
            iat: Some(now),
            iss: None,
            aud: None,
        },
    )
    .expect("sign");
    let client = reqwest::Client::new();
    let body =
        json!({ "query": DASHBOARD, "variables": { "la": la }, "operationName": "LaDashboard" });

    let send = || async {
        let response = client
            .post(format!("{base}/graphql"))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .expect("send");
        let value: Value = response.json().await.expect("json");
        assert!(
            value.get("errors").is_none(),
            "dashboard query failed: {value}"
        );
        value
    };
    let sample = send().await;
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
        let started = Instant::now();
        send().await;
        latencies.push(started.elapsed());
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
