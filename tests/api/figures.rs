//! Figures: observations, time series, the disadvantage gap, and the batching that
//! keeps nested figures to a fixed number of SQL statements.

use hub_tests::{TestHub, error_code as code};
use serde_json::{Value, json};

const LA_OFFICER: (&str, &str) = ("LOCAL_AUTHORITY:852", "LA_OFFICER");

fn token(hub: &TestHub) -> String {
    hub.token_for(LA_OFFICER.0, LA_OFFICER.1)
}

#[tokio::test]
async fn figures_need_a_token_but_the_register_does_not() {
    let hub = TestHub::spawn().await;
    let body = hub
        .query(
            None,
            "{ observations(first: 1) { edges { node { value } } } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&body), "UNAUTHENTICATED", "{body}");
    assert_eq!(body["data"], Value::Null);
    let nested = hub
        .query(
            None,
            "{ schools(first: 1) { edges { node { name observations { value } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&nested), "UNAUTHENTICATED", "{nested}");
    let with_token = hub
        .query(
            Some(&token(&hub)),
            "{ observations(first: 1) { edges { node { value } } } }",
            json!({}),
        )
        .await;
    assert!(with_token.get("errors").is_none(), "{with_token}");
}

/// A data invariant of the stored figures, checked in the hub's own database: through
/// the API, disclosure control rightly withholds some of the cells this adds up.
#[tokio::test]
async fn la_region_and_national_figures_add_up_from_school_figures() {
    use sea_orm::{ConnectionTrait, Statement};
    let hub = TestHub::spawn().await;
    let db = hub.db().await;
    let backend = db.get_database_backend();
    let totals = |sql: String| {
        let db = &db;
        async move {
            let row = db
                .query_one_raw(Statement::from_string(backend, sql))
                .await
                .expect("query")
                .expect("one row");
            let n: Option<f64> = row.try_get("", "n").expect("n");
            let d: Option<f64> = row.try_get("", "d").expect("d");
            let c: i64 = row.try_get("", "c").expect("c");
            (n.unwrap_or(0.0), d.unwrap_or(0.0), c)
        }
    };
    for indicator in ["attendance_rate", "suspension_rate", "ks2_rwm_expected_pct"] {
        let base = format!(
            "FROM observation WHERE indicator_code = '{indicator}' AND period = '2024/25' \
             AND pupil_group = 'DISADVANTAGED'"
        );
        let sums = "SUM(numerator) AS n, SUM(denominator) AS d";
        let schools = totals(format!(
            "SELECT {sums}, COUNT(*) AS c {base} AND geographic_level = 'SCHOOL' AND school_urn IN \
             (SELECT s.urn FROM school s JOIN organisation o ON o.id = s.la_id WHERE o.code = '852')"
        ))
        .await;
        let la = totals(format!(
            "SELECT {sums}, SUM(school_count) AS c {base} AND geographic_level = 'LA' AND area_code = '852'"
        ))
        .await;
        assert!(schools.2 > 0, "{indicator}: school figures exist");
        assert!((la.0 - schools.0).abs() < 1e-6, "{indicator} numerator");
        assert!((la.1 - schools.1).abs() < 1e-6, "{indicator} denominator");
        assert_eq!(
            la.2, schools.2,
            "{indicator}: school count of the LA figure"
        );

        let level = |level: &str| {
            format!("SELECT {sums}, COUNT(*) AS c {base} AND geographic_level = '{level}'")
        };
        let (las, regions, national) = (
            totals(level("LA")).await,
            totals(level("REGION")).await,
            totals(level("NATIONAL")).await,
        );
        assert_eq!(national.2, 1);
        for (name, sum) in [("LAs", las), ("regions", regions)] {
            assert!(
                (sum.0 - national.0).abs() < 1e-6,
                "{indicator}: {name} numerator"
            );
            assert!(
                (sum.1 - national.1).abs() < 1e-6,
                "{indicator}: {name} denominator"
            );
        }
    }
}

#[tokio::test]
async fn the_disadvantage_gap_is_the_difference_of_the_two_groups() {
    let hub = TestHub::spawn().await;
    let document = r#"{
        disadvantageGap(area: { level: NATIONAL, code: "E92000001" }, indicatorCodes: ["attendance_rate", "ks4_attainment8"]) {
            indicatorCode period disadvantaged notDisadvantaged gap disadvantagedCohort indicator { polarity }
        }
        series: timeSeries(area: { level: NATIONAL, code: "E92000001" }, filter: { indicatorCodes: ["attendance_rate"], pupilGroups: [DISADVANTAGED] }) {
            pupilGroup points { period value }
        }
    }"#;
    let body = hub.query(Some(&token(&hub)), document, json!({})).await;
    assert!(body.get("errors").is_none(), "{body}");
    let gaps = body["data"]["disadvantageGap"].as_array().unwrap();
    assert_eq!(gaps.len(), 10, "two indicators × five periods");
    for gap in gaps {
        let (d, n, g) = (
            gap["disadvantaged"].as_f64().unwrap(),
            gap["notDisadvantaged"].as_f64().unwrap(),
            gap["gap"].as_f64().unwrap(),
        );
        assert!((g - (n - d)).abs() < 1e-4);
        assert!(
            g > 0.0,
            "disadvantaged pupils attend less and attain less: {gap}"
        );
        assert!(gap["disadvantagedCohort"].as_f64().unwrap() > 0.0);
    }
    let attendance_2025: Vec<&Value> = gaps
        .iter()
        .filter(|g| g["indicatorCode"] == "attendance_rate")
        .collect();
    let points = body["data"]["series"][0]["points"].as_array().unwrap();
    let periods: Vec<&str> = points
        .iter()
        .map(|p| p["period"].as_str().unwrap())
        .collect();
    assert_eq!(
        periods,
        ["2021/22", "2022/23", "2023/24", "2024/25", "2025/26"]
    );
    for (gap, point) in attendance_2025.iter().zip(points) {
        assert_eq!(gap["period"], point["period"]);
        assert_eq!(gap["disadvantaged"], point["value"]);
    }
}

#[tokio::test]
async fn a_school_time_series_has_one_point_per_period() {
    let hub = TestHub::spawn().await;
    let document = r#"{ schools(filter: { laCode: "852", phase: PRIMARY, isOpen: true }, first: 1) { edges { node {
        timeSeries(filter: { indicatorCodes: ["attendance_rate"], pupilGroups: [ALL] }) { indicatorCode pupilGroup level points { period value } }
    } } } }"#;
    let body = hub.query(Some(&token(&hub)), document, json!({})).await;
    assert!(body.get("errors").is_none(), "{body}");
    let series = &body["data"]["schools"]["edges"][0]["node"]["timeSeries"];
    assert_eq!(series.as_array().unwrap().len(), 1);
    assert_eq!(series[0]["level"], "SCHOOL");
    let points = series[0]["points"].as_array().unwrap();
    assert_eq!(points.len(), 5);
    assert!(
        points
            .iter()
            .all(|p| (50.0..=100.0).contains(&p["value"].as_f64().unwrap()))
    );
}

#[tokio::test]
async fn malformed_periods_are_rejected_with_a_clear_code() {
    let hub = TestHub::spawn().await;
    let body = hub
        .query(
            Some(&token(&hub)),
            r#"{ observations(filter: { periodFrom: "2023-24" }) { totalCount } }"#,
            json!({}),
        )
        .await;
    assert_eq!(code(&body), "BAD_USER_INPUT");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("2023/24")
    );
}

/// The DataLoader contract: the statements a request makes do not grow with its rows.
#[tokio::test]
async fn nested_fields_are_batched_so_statements_do_not_grow_with_rows() {
    // Counts the statements of executing a query, so nothing may come from the cache
    // (answers or remembered scopes).
    let hub = TestHub::spawn_with(&[("CACHE_TTL_SECONDS", "0")]).await;
    // An RSC officer holds SCHOOL scope over every school of the region listed.
    let token = hub.token_for("RSC_OFFICE:E12000008", "RSC_OFFICER");
    let document = r#"query($n: Int) { schools(filter: { regionCode: "E12000008" }, first: $n) { totalCount edges { node {
        urn localAuthority { code region { name } } trust { name } diocese { name } region { code }
        observations(filter: { indicatorCodes: ["attendance_rate", "suspension_rate"], periodFrom: "2024/25", pupilGroups: [ALL, DISADVANTAGED] }) {
            value indicator { name } school { urn }
        }
    } } } }"#;
    let mut counts = Vec::new();
    for n in [2, 30] {
        let before = hub.statements().await;
        let body = hub.query(Some(&token), document, json!({ "n": n })).await;
        assert!(body.get("errors").is_none(), "{body}");
        let edges = body["data"]["schools"]["edges"].as_array().unwrap();
        assert_eq!(edges.len(), n as usize);
        assert!(
            edges
                .iter()
                .any(|e| !e["node"]["observations"].as_array().unwrap().is_empty())
        );
        counts.push(hub.statements().await - before);
    }
    assert_eq!(
        counts[0], counts[1],
        "statements for 2 schools vs 30 schools: {counts:?}"
    );
    assert!(
        counts[0] <= 10,
        "a handful of statements, got {}",
        counts[0]
    );
}
