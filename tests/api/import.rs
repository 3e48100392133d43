//! `baseline-hub import`, run as a real process against a test hub's database: valid
//! rows are written and bad ones reported by line; `--strict` writes nothing when any
//! row is bad; malformed files are refused clearly; a rerun is a no-op; and an import
//! killed half-way completes when run again, with nothing written twice or missed.

use std::path::PathBuf;
use std::time::Duration;

use hub_tests::TestHub;
use serde_json::json;

/// The hub's command line (see `tests/src/bin/hub-cli.rs`).
const CLI: &str = env!("CARGO_BIN_EXE_hub-cli");

struct Output {
    ok: bool,
    stdout: String,
    stderr: String,
}

async fn import(hub: &TestHub, args: &[&str]) -> Output {
    let mut all = vec!["import"];
    all.extend_from_slice(args);
    let out = hub
        .cli(CLI, &all)
        .output()
        .await
        .expect("run the import command");
    Output {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn file(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hub-import-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// URNs of every school on the test register.
async fn urns(hub: &TestHub) -> Vec<i64> {
    let body = hub
        .query(
            None,
            "{ schools(first: 500) { edges { node { urn } } } }",
            json!({}),
        )
        .await;
    body["data"]["schools"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["urn"].as_i64().unwrap())
        .collect()
}

/// Sends a query and returns its `x-cache` header.
async fn cache_status(hub: &TestHub, token: &str, query: &str) -> String {
    let response = hub
        .post_graphql(Some(token), &json!({ "query": query }))
        .await;
    assert_eq!(response.status(), 200);
    response.headers()["x-cache"].to_str().unwrap().to_owned()
}

const LONG_HEADER: &str = "time_period,time_identifier,geographic_level,country_code,region_code,old_la_code,school_urn,pupil_group,indicator,value,numerator,denominator\n";

#[tokio::test]
async fn valid_rows_are_written_and_bad_ones_reported_by_line() {
    let hub = TestHub::spawn().await;
    let urn = urns(&hub).await[0];
    // An answer cached before the import (by the HUB_ADMIN's aggregate view of the
    // suspension figures): with Redis the import invalidates it in the running hub.
    let admin = hub.token_for("HUB:HUB", "HUB_ADMIN");
    let national = r#"{ timeSeries(area: { level: LA, code: "852" }, filter: {
        indicatorCodes: ["cme_count"], pupilGroups: [DISADVANTAGED], periodFrom: "2024/25" })
        { points { numerator } } }"#;
    cache_status(&hub, &admin, national).await;
    assert_eq!(cache_status(&hub, &admin, national).await, "hit");
    let mut csv = LONG_HEADER.as_bytes().to_vec();
    csv.extend(
        format!(
            "202425,Academic year,School,E92000001,,,{urn},Total,suspension_rate,,6,300\n\
             202425,Academic year,Local authority,E92000001,E12000008,852,,Disadvantaged,cme_count,17,17,\n\
             202425,Academic year,School,E92000001,,,{urn},Total,attendance_rate,lots,,\n\
             202425,Academic year,School,E92000001,,,99999999,Total,attendance_rate,90,,\n\
             202425,Calendar year,National,E92000001,,,,Total,ehe_count,100,100,\n\
             202425,Academic year,Ward,E92000001,,,,Total,ehe_count,100,100,\n\
             202425,Academic year,National,E92000001,,,,Total,no_such_indicator,1,1,\n\
             202425,Academic year,National,E92000001,,,,Total,ehe_count,c,,\n"
        )
        .as_bytes(),
    );
    // Invalid UTF-8 in a field, then a truncated last line without a newline.
    csv.extend(b"202425,Academic year,National,E92000001,,,,Total,ehe_count,1\xff2,,\n");
    csv.extend(b"202425,Academic year,National,E92000001,,,,Tot");
    let path = file("mixed.csv", &csv);
    let rejects = path.with_extension("rejects.csv");
    let out = import(
        &hub,
        &[
            path.to_str().unwrap(),
            "--rejects",
            rejects.to_str().unwrap(),
        ],
    )
    .await;
    assert!(out.ok, "{} {}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("2 written")
            && out.stdout.contains("1 not published")
            && out.stdout.contains("7 lines rejected"),
        "{}",
        out.stdout
    );
    let report = std::fs::read_to_string(&rejects).unwrap();
    let lines: Vec<&str> = report
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(lines, ["4", "5", "6", "7", "8", "10", "11"], "{report}");
    assert!(report.contains("not valid UTF-8"), "{report}");
    assert!(report.contains("truncated"), "{report}");

    assert_eq!(
        hub.scalar(
            "SELECT COUNT(*) FROM observation WHERE geographic_level = 'LA' AND area_code = '852' \
             AND indicator_code = 'cme_count' AND period = '2024/25' \
             AND pupil_group = 'DISADVANTAGED' AND value = 17"
        )
        .await,
        1
    );
    assert_eq!(
        hub.scalar(&format!(
                "SELECT COUNT(*) FROM observation WHERE area_code = '{urn}' AND indicator_code = 'suspension_rate' \
                 AND period = '2024/25' AND pupil_group = 'ALL' AND value = 2.0"
            )
        )
        .await,
        1
    );

    if hub.settings.contains_key("REDIS_URL") {
        assert_eq!(
            cache_status(&hub, &admin, national).await,
            "miss",
            "the import invalidated the cached answer"
        );
    }

    // The same file again: recognised, nothing done.
    let again = import(&hub, &[path.to_str().unwrap()]).await;
    assert!(
        again.ok && again.stdout.contains("nothing to do"),
        "{}",
        again.stdout
    );
    assert_eq!(
        hub.scalar("SELECT COUNT(*) FROM sync_run WHERE source = 'CSV_IMPORT'")
            .await,
        1
    );
}

#[tokio::test]
async fn strict_imports_write_nothing_when_a_row_is_bad_and_bad_files_are_refused() {
    let hub = TestHub::spawn().await;
    let urn = urns(&hub).await[0];
    let before = hub
        .scalar("SELECT COUNT(*) FROM observation WHERE sync_run_id IS NOT NULL")
        .await;
    let csv = format!(
        "{LONG_HEADER}202425,Academic year,School,E92000001,,,{urn},Total,suspension_rate,,6,300\n\
         202425,Academic year,School,E92000001,,,{urn},Total,attendance_rate,-4,,\n"
    );
    let path = file("strict.csv", csv.as_bytes());
    let out = import(&hub, &[path.to_str().unwrap(), "--strict"]).await;
    assert!(!out.ok);
    assert!(out.stderr.contains("line 3, value"), "{}", out.stderr);
    assert!(out.stderr.contains("nothing was written"), "{}", out.stderr);
    assert_eq!(
        hub.scalar("SELECT COUNT(*) FROM observation WHERE sync_run_id IS NOT NULL")
            .await,
        before
    );

    for (name, bytes, message) in [
        ("empty.csv", &b""[..], "is empty"),
        (
            "header.csv",
            &b"period,level,value\n2024/25,LA,3\n"[..],
            "missing column(s) time_period",
        ),
        (
            "novalues.csv",
            &b"time_period,time_identifier,geographic_level,school_urn\n"[..],
            "no value columns",
        ),
    ] {
        let path = file(name, bytes);
        let out = import(&hub, &[path.to_str().unwrap()]).await;
        assert!(!out.ok, "{name} accepted");
        assert!(out.stderr.contains(message), "{name}: {}", out.stderr);
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    }
    let missing = import(&hub, &["/nonexistent/figures.csv"]).await;
    assert!(
        !missing.ok && missing.stderr.contains("cannot read"),
        "{}",
        missing.stderr
    );
}

#[tokio::test]
async fn an_import_killed_half_way_completes_when_run_again() {
    let hub = TestHub::spawn().await;
    let urns = urns(&hub).await;
    // Every line a distinct figure with a value nothing else has: 77.77.
    let mut csv = String::from(LONG_HEADER);
    let mut expected = 0;
    for urn in &urns {
        for period in ["202122", "202223", "202324", "202425", "202526"] {
            for group in ["Total", "Disadvantaged", "SEN support"] {
                csv.push_str(&format!(
                    "{period},Academic year,School,E92000001,,,{urn},{group},attendance_rate,,7777,10000\n"
                ));
                expected += 1;
            }
        }
    }
    let path = file("large.csv", csv.as_bytes());
    // Batches of ten with a long pause after each: the import is killed in the pause
    // after its first batch, whatever the machine's speed.
    let mut child = hub
        .cli(
            CLI,
            &[
                "import",
                path.to_str().unwrap(),
                "--batch",
                "10",
                "--pause-ms",
                "600000",
            ],
        )
        .spawn()
        .expect("start the import");
    let mut waited = Duration::ZERO;
    while hub.scalar("SELECT COUNT(*) FROM sync_run WHERE source = 'CSV_IMPORT' AND checkpoint_offset IS NOT NULL",
    )
    .await
        == 0
    {
        assert!(waited < Duration::from_secs(60), "the import made no progress");
        tokio::time::sleep(Duration::from_millis(5)).await;
        waited += Duration::from_millis(5);
    }
    child.kill().await.expect("kill the import");

    let written = hub
        .scalar("SELECT COUNT(*) FROM observation WHERE numerator = 7777")
        .await;
    assert_eq!(written, 10, "killed after its first batch, of {expected}");
    assert_eq!(
        hub.scalar(
            "SELECT COUNT(*) FROM sync_run WHERE source = 'CSV_IMPORT' AND status = 'RUNNING'"
        )
        .await,
        1
    );

    let out = import(&hub, &[path.to_str().unwrap(), "--batch", "500"]).await;
    assert!(out.ok, "{} {}", out.stdout, out.stderr);
    assert!(out.stdout.contains("resumed sync run"), "{}", out.stdout);
    assert_eq!(
        hub.scalar("SELECT COUNT(*) FROM observation WHERE numerator = 7777 AND value = 77.77")
            .await,
        expected,
        "every line written"
    );
    assert_eq!(
        hub.scalar(
            "SELECT CAST(SUM(rows_received) AS BIGINT) FROM sync_run WHERE source = 'CSV_IMPORT'"
        )
        .await,
        expected,
        "no line counted twice"
    );
    assert_eq!(
        hub.scalar(
            "SELECT COUNT(*) FROM sync_run WHERE source = 'CSV_IMPORT' AND status = 'SUCCEEDED'"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn the_documented_example_file_imports_cleanly() {
    let hub = TestHub::spawn().await;
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/import-example.csv");
    let out = import(&hub, &[example]).await;
    assert!(out.ok, "{} {}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("3 written") && out.stdout.contains("0 lines rejected"),
        "{}",
        out.stdout
    );
    // Its figures carry school counts and cohorts, so an analyst sees them.
    let analyst = hub.token_for("LOCAL_AUTHORITY:852", "ANALYST");
    let body = hub
        .query(
            Some(&analyst),
            r#"{ timeSeries(area: { level: NATIONAL, code: "E92000001" }, filter: {
                indicatorCodes: ["attendance_rate"], pupilGroups: [ALL], periodFrom: "2024/25", periodTo: "2024/25" })
                { points { value suppressed } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        body["data"]["timeSeries"][0]["points"][0]["value"], 93.2,
        "{body}"
    );
}

/// The planner has statistics after the seed and after an import: without them the
/// first queries after either plan from estimates for empty tables.
#[tokio::test]
async fn seed_and_import_leave_planner_statistics() {
    let hub = TestHub::spawn().await;
    let postgres = hub.db().await.get_database_backend() == sea_orm::DbBackend::Postgres;
    let (seeded, imported) = if postgres {
        (
            "SELECT COUNT(*) FROM pg_stats WHERE tablename = 'observation'",
            "SELECT COUNT(*) FROM pg_stat_user_tables \
             WHERE relname = 'observation' AND last_analyze IS NOT NULL",
        )
    } else {
        (
            "SELECT COUNT(*) FROM sqlite_stat1 WHERE tbl = 'observation'",
            "SELECT COUNT(*) FROM sqlite_stat1 WHERE tbl = 'observation'",
        )
    };
    assert!(hub.scalar(seeded).await > 0, "the seed analyzed its tables");
    if !postgres {
        hub.execute("DELETE FROM sqlite_stat1").await;
    }
    assert_eq!(hub.scalar(imported).await, 0);
    let urn = urns(&hub).await[0];
    let csv = format!(
        "{LONG_HEADER}202425,Academic year,School,E92000001,,,{urn},Total,suspension_rate,,6,300\n"
    );
    let path = file("statistics.csv", csv.as_bytes());
    let out = import(&hub, &[path.to_str().unwrap()]).await;
    assert!(out.ok, "{} {}", out.stdout, out.stderr);
    assert!(
        hub.scalar(imported).await > 0,
        "the import analyzed what it wrote"
    );
}
