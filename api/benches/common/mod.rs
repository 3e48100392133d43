//! What both benchmarks share: the national-scale dataset on PostgreSQL, the LA
//! dashboard query, and tokens.

use std::collections::HashMap;
use std::time::Instant;

use baseline_hub::auth::{Claims, mint};
use baseline_hub::config::Config;
use baseline_hub::{db, seed};
use sea_orm::{ConnectionTrait, Database};

pub const BENCH_DB: &str = "hub_bench_national";
pub const JWT_SECRET: &str = "bench-jwt-secret-that-is-at-least-32-bytes";
const PUPIL_KEY_SECRET: &str = "bench-pupil-key-secret-of-at-least-32-bytes";

/// One LA's schools with five indicators over three periods for the ALL and
/// DISADVANTAGED groups, plus the LA's gap figures.
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

pub fn env(key: &str, default: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| default.to_owned())
}

/// The base PostgreSQL URL (`BENCH_DATABASE_URL`, else `DATABASE_URL`), or exit.
pub fn postgres_url() -> String {
    match std::env::var("BENCH_DATABASE_URL")
        .ok()
        .or_else(|| std::env::var("DATABASE_URL").ok())
    {
        Some(url) => url,
        None => {
            eprintln!("set BENCH_DATABASE_URL=postgres://… (the benchmark runs on PostgreSQL)");
            std::process::exit(2);
        }
    }
}

/// Settings for a hub on the national dataset, loading it on first use.
pub async fn national_config(extra: &[(&str, &str)]) -> Config {
    let base_url = postgres_url();
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

    let mut vars: HashMap<String, String> = [
        ("HUB_ADDR", "127.0.0.1:0"),
        ("DATABASE_URL", url.as_str()),
        ("HUB_SEED", "none"),
        ("JWT_SECRET", JWT_SECRET),
        ("PUPIL_KEY_SECRET", PUPIL_KEY_SECRET),
        // The load generators speak for one organisation at thousands of requests a
        // second: what is measured is the hub, not its rate limit.
        ("RATE_LIMIT_PER_SECOND", "0"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for (k, v) in extra {
        vars.insert((*k).to_owned(), (*v).to_owned());
    }
    let config = Config::from_vars(&vars).expect("bench config");
    let conn = db::connect_unbounded(&config)
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
    config
}

/// A token for `org` in `role`, valid for an hour.
pub fn token(org: &str, role: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    mint(
        JWT_SECRET.as_bytes(),
        &Claims {
            sub: "bench".into(),
            org: org.to_owned(),
            roles: vec![role.to_owned()],
            exp: now + 3600,
            iat: Some(now),
            iss: None,
            aud: None,
        },
    )
    .expect("sign")
}
