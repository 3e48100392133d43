//! Import benchmark: a generated 1,000,000-row CSV in the official long layout, imported
//! into PostgreSQL by `baseline-hub import` (the real binary, as a separate process, so
//! its peak memory is its own), beside PostgreSQL's own `COPY` (`psql \copy`) of the
//! same rows into the same table, in the same run.
//!
//! ```sh
//! BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo bench -p baseline-hub --bench import
//! ```
//!
//! The demo register (about 2,000 schools, 460,000 figures) is loaded once into
//! `hub_bench_import_tpl`; each run copies it into two fresh databases, one per loader,
//! so both write into a table of the same size with the same indexes. The generated
//! figures are for academic years before the demo data's, so every row is new to both.
//! `BENCH_ROWS` changes the row count.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use baseline_hub::config::Config;
use baseline_hub::telemetry::Metrics;
use baseline_hub::{db, seed};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};

const TEMPLATE: &str = "hub_bench_import_tpl";
const COPY_DB: &str = "hub_bench_import_copy";
const CLI_DB: &str = "hub_bench_import_cli";
/// Configuration needs a verification key even for a command that checks no tokens.
const JWT_SECRET: &str = "bench-jwt-secret-that-is-at-least-32-bytes";

#[tokio::main]
async fn main() {
    let Some(base_url) = ["BENCH_DATABASE_URL", "DATABASE_URL"]
        .into_iter()
        .find_map(|name| std::env::var(name).ok())
    else {
        eprintln!("set BENCH_DATABASE_URL=postgres://… (the benchmark runs on PostgreSQL)");
        std::process::exit(2);
    };
    let rows: usize = std::env::var("BENCH_ROWS")
        .unwrap_or_else(|_| "1000000".to_owned())
        .parse()
        .expect("BENCH_ROWS is a number");
    let admin = Database::connect(&base_url)
        .await
        .expect("connect to PostgreSQL");
    let template_url = ensure_template(&admin, &base_url).await;
    let template = Database::connect(&template_url)
        .await
        .expect("connect template");
    let urns = column::<i32>(&template, "SELECT urn FROM school ORDER BY urn").await;
    let indicators = column::<String>(
        &template,
        "SELECT code FROM indicator WHERE unit IN ('PERCENT', 'RATE_PER_100') ORDER BY code",
    )
    .await;
    template.close().await.ok();
    for name in [COPY_DB, CLI_DB] {
        admin
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await
            .expect("drop");
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name} TEMPLATE {TEMPLATE}"))
            .await
            .expect("create from template");
    }

    let dir = std::env::temp_dir().join("hub-bench-import");
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let tidy = dir.join("figures.csv");
    let table = dir.join("figures-table.csv");
    let started = Instant::now();
    generate(&tidy, &table, rows, &urns, &indicators);
    println!(
        "generated {rows} rows ({} MB of CSV) in {:.1}s",
        std::fs::metadata(&tidy).map(|m| m.len() >> 20).unwrap_or(0),
        started.elapsed().as_secs_f64()
    );

    let copy_url = database_url(&base_url, COPY_DB);
    let started = Instant::now();
    let status = Command::new("psql")
        .args([
            copy_url.as_str(),
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            &format!(
                "\\copy observation (indicator_code, period, geographic_level, area_code, \
                 pupil_group, school_urn, school_count, numerator, denominator, value, \
                 updated_at, change_seq) FROM '{}' WITH (FORMAT csv)",
                table.display()
            ),
        ])
        .status()
        .expect("run psql");
    assert!(status.success(), "COPY failed");
    let copy_seconds = started.elapsed().as_secs_f64();

    let cli_url = database_url(&base_url, CLI_DB);
    let rss_file = dir.join("maxrss");
    let started = Instant::now();
    let output = Command::new("/usr/bin/time")
        .args(["-f", "%M", "-o"])
        .arg(&rss_file)
        .arg(env!("CARGO_BIN_EXE_baseline-hub"))
        .arg("import")
        .arg(&tidy)
        .env("DATABASE_URL", &cli_url)
        .env("HUB_SEED", "none")
        .env("JWT_SECRET", JWT_SECRET)
        .env_remove("REDIS_URL")
        .output()
        .expect("run baseline-hub import");
    let import_seconds = started.elapsed().as_secs_f64();
    assert!(
        output.status.success(),
        "import failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    print!("{}", String::from_utf8_lossy(&output.stdout));
    let peak_kb: f64 = std::fs::read_to_string(&rss_file)
        .ok()
        .and_then(|text| text.lines().last()?.trim().parse().ok())
        .expect("peak memory from /usr/bin/time");

    let cli = Database::connect(&cli_url).await.expect("connect");
    let written = column::<i64>(
        &cli,
        "SELECT COUNT(*) FROM observation WHERE sync_run_id IS NOT NULL",
    )
    .await[0];
    assert_eq!(written as usize, rows, "every row imported");

    let copy_rate = rows as f64 / copy_seconds;
    let import_rate = rows as f64 / import_seconds;
    println!();
    println!("rows: {rows}");
    println!("COPY (psql \\copy):    {copy_seconds:6.1} s  {copy_rate:9.0} rows/s");
    println!(
        "baseline-hub import:  {import_seconds:6.1} s  {import_rate:9.0} rows/s  = {:.0}% of COPY   (target ≥ 50,000 rows/s and ≥ 30%)",
        100.0 * import_rate / copy_rate
    );
    println!(
        "import peak memory:   {:.0} MB (max RSS; target < 200 MB)",
        peak_kb / 1024.0
    );
    for name in [COPY_DB, CLI_DB] {
        admin
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await
            .ok();
    }
}

fn database_url(base_url: &str, name: &str) -> String {
    let (prefix, _) = base_url.rsplit_once('/').expect("URL has a database name");
    format!("{prefix}/{name}")
}

/// The demo dataset in the template database, loaded on first use.
async fn ensure_template(admin: &DatabaseConnection, base_url: &str) -> String {
    let exists = !column::<i32>(
        admin,
        &format!("SELECT 1 FROM pg_database WHERE datname = '{TEMPLATE}'"),
    )
    .await
    .is_empty();
    let url = database_url(base_url, TEMPLATE);
    if exists {
        return url;
    }
    admin
        .execute_unprepared(&format!("CREATE DATABASE {TEMPLATE}"))
        .await
        .expect("create template");
    let vars: HashMap<String, String> = [
        ("DATABASE_URL", url.as_str()),
        ("HUB_SEED", "none"),
        ("JWT_SECRET", JWT_SECRET),
        ("DISCLOSURE_KEY_SECRET", "bench-disclosure-key-secret"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let config = Config::from_vars(&vars).expect("config");
    let conn = db::connect(&config, &Metrics::new())
        .await
        .expect("connect");
    db::migrate(&conn).await.expect("migrate");
    println!("loading the demo dataset into {TEMPLATE} (first run only)…");
    seed::seed(&conn, seed::Scale::Demo, b"bench-pupil-key-secret", &|_| {})
        .await
        .expect("seed demo");
    conn.execute_unprepared("ANALYZE").await.expect("analyze");
    conn.close().await.ok();
    url
}

async fn column<T: sea_orm::TryGetable>(db: &DatabaseConnection, sql: &str) -> Vec<T> {
    db.query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .expect("query")
        .iter()
        .map(|row| row.try_get_by_index::<T>(0).expect("column"))
        .collect()
}

/// Writes the same figures twice: in the official tidy layout for the import, and in
/// the table's own columns for COPY. Streamed, so the generator's memory stays small.
fn generate(tidy: &Path, table: &Path, rows: usize, urns: &[i32], indicators: &[String]) {
    const GROUPS: [(&str, &str); 6] = [
        ("ALL", "Total"),
        ("DISADVANTAGED", "Disadvantaged"),
        ("NOT_DISADVANTAGED", "Disadvantaged all other"),
        ("SEN_SUPPORT", "SEN support"),
        ("EHCP", "EHCP"),
        ("CHILDREN_IN_CARE", "Children looked after"),
    ];
    let mut tidy = std::io::BufWriter::new(std::fs::File::create(tidy).expect("create"));
    let mut table = std::io::BufWriter::new(std::fs::File::create(table).expect("create"));
    writeln!(
        tidy,
        "time_period,time_identifier,geographic_level,country_code,region_code,old_la_code,\
         school_urn,pupil_group,indicator,value,numerator,denominator"
    )
    .expect("write");
    let mut written = 0;
    // Academic years 1990/91 to 2020/21: before the demo data, so every row is new.
    'outer: for start in (1990..2021).rev() {
        for indicator in indicators {
            for (group, official) in GROUPS {
                for &urn in urns {
                    if written == rows {
                        break 'outer;
                    }
                    let denominator = 100 + (urn as usize * 7 + written) % 900;
                    let numerator = (denominator * (written % 97 + 1)) / 100;
                    let value = (numerator as f64 / denominator as f64 * 100.0 * 10_000.0).round()
                        / 10_000.0;
                    let end = (start + 1) % 100;
                    writeln!(
                        tidy,
                        "{start}{end:02},Academic year,School,E92000001,,,{urn},{official},\
                         {indicator},,{numerator},{denominator}"
                    )
                    .expect("write");
                    writeln!(
                        table,
                        "{indicator},{start}/{end:02},SCHOOL,{urn},{group},{urn},1,{numerator},\
                         {denominator},{value},2026-11-23 00:00:00+00,{}",
                        1_000_000_000_000_i64 + written as i64
                    )
                    .expect("write");
                    written += 1;
                }
            }
        }
    }
    assert_eq!(
        written, rows,
        "not enough schools × years × indicators × groups"
    );
    tidy.flush().expect("flush");
    table.flush().expect("flush");
}
