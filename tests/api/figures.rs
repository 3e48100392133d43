//! Figures: observations, time series, the disadvantage gap, and the batching that
//! keeps nested figures to a fixed number of SQL statements.

use hub_tests::TestHub;
use serde_json::{Value, json};

const LA_OFFICER: (&str, &str) = ("LOCAL_AUTHORITY:852", "LA_OFFICER");

fn token(hub: &TestHub) -> String {
    hub.token_for(LA_OFFICER.0, LA_OFFICER.1)
}

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("<none>")
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

/// Sums a list of observations' numerators and denominators.
fn sums(edges: &[Value]) -> (f64, f64) {
    edges.iter().fold((0.0, 0.0), |(n, d), e| {
        (
            n + e["node"]["numerator"].as_f64().unwrap_or(0.0),
            d + e["node"]["denominator"].as_f64().unwrap_or(0.0),
        )
    })
}

async fn observations(hub: &TestHub, filter: Value) -> Vec<Value> {
    let document = "query($f: ObservationFilter) { observations(filter: $f, first: 500) { pageInfo { hasNextPage } edges { node { areaCode numerator denominator value } } } }";
    let body = hub
        .query(Some(&token(hub)), document, json!({ "f": filter }))
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(
        body["data"]["observations"]["pageInfo"]["hasNextPage"], false,
        "fits one page"
    );
    body["data"]["observations"]["edges"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn la_region_and_national_figures_add_up_from_school_figures() {
    let hub = TestHub::spawn().await;
    let schools = hub
        .query(
            None,
            r#"{ schools(filter: { laCode: "852" }, first: 500) { edges { node { urn } } } }"#,
            json!({}),
        )
        .await;
    let urns: Vec<String> = schools["data"]["schools"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["urn"].to_string())
        .collect();
    for indicator in ["attendance_rate", "suspension_rate", "ks2_rwm_expected_pct"] {
        let base = json!({ "indicatorCodes": [indicator], "periodFrom": "2024/25", "periodTo": "2024/25", "pupilGroups": ["DISADVANTAGED"] });
        let mut school_filter = base.clone();
        school_filter["level"] = json!("SCHOOL");
        school_filter["areaCodes"] = json!(urns);
        let school_rows = observations(&hub, school_filter).await;
        assert!(!school_rows.is_empty(), "{indicator}: school figures exist");
        let mut la_filter = base.clone();
        la_filter["level"] = json!("LA");
        la_filter["areaCodes"] = json!(["852"]);
        let la_rows = observations(&hub, la_filter).await;
        assert_eq!(la_rows.len(), 1, "{indicator}: one LA figure");
        let (num, den) = sums(&school_rows);
        assert!(
            (la_rows[0]["node"]["numerator"].as_f64().unwrap() - num).abs() < 1e-6,
            "{indicator} numerator"
        );
        assert!(
            (la_rows[0]["node"]["denominator"].as_f64().unwrap() - den).abs() < 1e-6,
            "{indicator} denominator"
        );

        let mut all_las = base.clone();
        all_las["level"] = json!("LA");
        let la_sum = sums(&observations(&hub, all_las).await);
        let mut national = base.clone();
        national["level"] = json!("NATIONAL");
        let national_rows = observations(&hub, national).await;
        assert_eq!(national_rows.len(), 1);
        assert!((national_rows[0]["node"]["numerator"].as_f64().unwrap() - la_sum.0).abs() < 1e-6);
        assert!(
            (national_rows[0]["node"]["denominator"].as_f64().unwrap() - la_sum.1).abs() < 1e-6
        );
        let mut regions = base.clone();
        regions["level"] = json!("REGION");
        let region_sum = sums(&observations(&hub, regions).await);
        assert!((region_sum.0 - la_sum.0).abs() < 1e-6 && (region_sum.1 - la_sum.1).abs() < 1e-6);
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
    let hub = TestHub::spawn().await;
    let token = token(&hub);
    let document = r#"query($n: Int) { schools(first: $n) { totalCount edges { node {
        urn localAuthority { code region { name } } trust { name } diocese { name } region { code }
        observations(filter: { indicatorCodes: ["attendance_rate", "suspension_rate"], periodFrom: "2024/25", pupilGroups: [ALL, DISADVANTAGED] }) {
            value indicator { name } school { urn }
        }
    } } } }"#;
    let mut counts = Vec::new();
    for n in [2, 40] {
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
        "statements for 2 schools vs 40 schools: {counts:?}"
    );
    assert!(
        counts[0] <= 10,
        "a handful of statements, got {}",
        counts[0]
    );
}
