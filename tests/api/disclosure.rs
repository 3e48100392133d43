//! Disclosure control on AGGREGATE figures: small cells and few-school cells withheld,
//! complementary cells withheld with them, thresholds from settings, an attempt to
//! recover a withheld cell by subtraction that fails, and `aggregate`'s cell-key
//! perturbation (see `differencing` for the attacker over everything a caller can get).
//!
//! The test data has three London LAs with schools: City of London (201) with one
//! school, Camden (202) and Wandsworth (212) with a few each.

use std::collections::HashMap;

use hub_tests::TestHub;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};

const LONDON: &str = "E12000007";

fn analyst(hub: &TestHub) -> String {
    hub.token_for("LOCAL_AUTHORITY:852", "ANALYST")
}

/// Stored LA figures of one region, by LA code: `(suppressed, numerator)`.
async fn la_figures(hub: &TestHub, token: &str, indicator: &str) -> HashMap<String, Value> {
    let body = hub
        .query(
            Some(token),
            r#"query($i: String!) { observations(filter: { level: LA, indicatorCodes: [$i], periodFrom: "2024/25", periodTo: "2024/25", pupilGroups: [ALL] }, first: 500) {
                edges { node { areaCode value numerator denominator suppressed suppressionReason schoolCount } } } }"#,
            json!({ "i": indicator }),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    body["data"]["observations"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["node"]["areaCode"].as_str().unwrap().to_owned(),
                e["node"].clone(),
            )
        })
        .collect()
}

/// The true numerator of a stored figure, read from the hub's database.
async fn stored_numerator(hub: &TestHub, level: &str, area: &str, indicator: &str) -> f64 {
    let db = hub.db().await;
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            format!(
                "SELECT numerator FROM observation WHERE geographic_level = '{level}' AND area_code = '{area}' \
                 AND indicator_code = '{indicator}' AND period = '2024/25' AND pupil_group = 'ALL'"
            ),
        ))
        .await
        .unwrap()
        .expect("stored figure");
    row.try_get::<Option<f64>>("", "numerator")
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn a_one_school_la_is_withheld_and_cannot_be_recovered_by_subtraction() {
    let hub = TestHub::spawn().await;
    let indicator = "attendance_rate";
    let figures = la_figures(&hub, &analyst(&hub), indicator).await;
    let city = &figures["201"];
    assert_eq!(city["suppressed"], true, "{city}");
    assert_eq!(city["suppressionReason"], "c");
    assert_eq!(city["value"], Value::Null);
    assert_eq!(city["numerator"], Value::Null);
    assert_eq!(
        city["schoolCount"],
        Value::Null,
        "a withheld figure says nothing, not even how many schools it holds"
    );

    // The complementary cell: another London LA is withheld too.
    let london = ["201", "202", "212"];
    let withheld = london
        .iter()
        .filter(|code| figures[**code]["suppressed"] == true)
        .count();
    assert!(withheld >= 2, "{figures:?}");

    // The attack: London's total minus every London LA figure that is shown.
    let region = hub
        .query(
            Some(&analyst(&hub)),
            r#"query($r: String!) { timeSeries(area: { level: REGION, code: $r }, filter: { indicatorCodes: ["attendance_rate"], periodFrom: "2024/25", periodTo: "2024/25", pupilGroups: [ALL] }) { points { numerator suppressed } } }"#,
            json!({ "r": LONDON }),
        )
        .await;
    let point = &region["data"]["timeSeries"][0]["points"][0];
    assert_eq!(point["suppressed"], false, "{region}");
    let shown: f64 = london
        .iter()
        .filter_map(|code| figures[*code]["numerator"].as_f64())
        .sum();
    let recovered = point["numerator"].as_f64().unwrap() - shown;
    let truth = stored_numerator(&hub, "LA", "201", indicator).await;
    assert!(
        (recovered - truth).abs() > 0.5,
        "subtraction must not give City of London's figure ({truth})"
    );

    // An RSC officer for London holds SCHOOL scope over the school: nothing to hide.
    let rsc = la_figures(
        &hub,
        &hub.token_for("RSC_OFFICE:E12000007", "RSC_OFFICER"),
        indicator,
    )
    .await;
    assert_eq!(rsc["201"]["suppressed"], false, "{:?}", rsc["201"]);
    assert_eq!(rsc["201"]["numerator"].as_f64(), Some(truth));
}

#[tokio::test]
async fn thresholds_come_from_settings() {
    let lenient = TestHub::spawn_with(&[("DISCLOSURE_MIN_SCHOOLS", "1")]).await;
    let figures = la_figures(&lenient, &analyst(&lenient), "attendance_rate").await;
    assert!(
        figures.values().all(|f| f["suppressed"] == false),
        "one school is enough: {figures:?}"
    );

    let strict = TestHub::spawn_with(&[("DISCLOSURE_MIN_COUNT", "1000000000")]).await;
    let figures = la_figures(&strict, &analyst(&strict), "attendance_rate").await;
    assert!(!figures.is_empty());
    assert!(
        figures
            .values()
            .all(|f| f["suppressed"] == true && f["value"].is_null()),
        "every count is below a billion: {figures:?}"
    );
}

const AGGREGATE: &str = r#"query($i: String!, $by: [AggregateDimension!]!, $groups: [PupilGroup!], $f: AggregateFilter) {
    aggregate(indicatorCode: $i, periods: ["2024/25"], groupBy: $by, pupilGroups: $groups, filter: $f) {
        cells { pupilGroup regionCode localAuthority { code } value numerator denominator schoolCount perturbed suppressed suppressionReason }
    } }"#;

async fn aggregate(hub: &TestHub, token: &str, variables: Value) -> Vec<Value> {
    let body = hub.query(Some(token), AGGREGATE, variables).await;
    assert!(body.get("errors").is_none(), "{body}");
    body["data"]["aggregate"]["cells"]
        .as_array()
        .unwrap()
        .clone()
}

fn la_code(cell: &Value) -> String {
    cell["localAuthority"]["code"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn aggregate_cells_are_perturbed_the_same_way_whatever_the_query() {
    let hub = TestHub::spawn().await;
    let token = analyst(&hub);
    let by_region = aggregate(
        &hub,
        &token,
        json!({ "i": "attendance_rate", "by": ["LOCAL_AUTHORITY"], "f": { "regionCode": LONDON } }),
    )
    .await;
    let cells: HashMap<String, &Value> = by_region.iter().map(|c| (la_code(c), c)).collect();
    assert_eq!(cells.len(), 3, "{by_region:?}");
    let city = cells["201"];
    assert_eq!(city["suppressed"], true, "one school: {city}");
    assert_eq!(city["suppressionReason"], "c");
    assert!(
        city["numerator"].is_null() && city["schoolCount"].is_null(),
        "{city}"
    );
    for (code, cell) in cells.iter().filter(|(code, _)| *code != "201") {
        assert_eq!(cell["suppressed"], false, "{cell}");
        assert_eq!(cell["perturbed"], true, "an analyst sees no school: {cell}");
        // Close to the truth (at most two sessions off each way) but not a figure
        // that differencing could rely on.
        let truth = stored_numerator(&hub, "LA", code, "attendance_rate").await;
        let shown = cell["numerator"].as_f64().unwrap();
        assert!(
            (shown - truth).abs() <= 2.0,
            "LA {code}: {shown} vs {truth}"
        );
        // The same schools reached another way: the same numbers, so asking again or
        // differently averages nothing out.
        for filter in [
            json!({ "laCode": code }),
            json!({ "laCode": code, "regionCode": LONDON }),
        ] {
            let alone = aggregate(
                &hub,
                &token,
                json!({ "i": "attendance_rate", "by": ["LOCAL_AUTHORITY"], "f": filter }),
            )
            .await;
            assert_eq!(alone.len(), 1);
            assert_eq!(alone[0]["numerator"], cell["numerator"], "LA {code}");
            assert_eq!(alone[0]["denominator"], cell["denominator"], "LA {code}");
        }
    }
}

#[tokio::test]
async fn an_officer_sees_its_own_schools_exactly_in_aggregates() {
    let hub = TestHub::spawn().await;
    let token = hub.token_for("LOCAL_AUTHORITY:852", "LA_OFFICER");
    let cells = aggregate(
        &hub,
        &token,
        json!({ "i": "suspension_rate", "by": ["LOCAL_AUTHORITY"] }),
    )
    .await;
    let own = cells
        .iter()
        .find(|c| la_code(c) == "852")
        .expect("Southampton's cell");
    assert_eq!(own["perturbed"], false, "{own}");
    let truth = stored_numerator(&hub, "LA", "852", "suspension_rate").await;
    assert_eq!(own["numerator"].as_f64(), Some(truth));
    let other = cells
        .iter()
        .find(|c| la_code(c) == "850")
        .expect("Hampshire's cell");
    assert_eq!(other["perturbed"], true, "{other}");
}

#[tokio::test]
async fn small_aggregate_cells_are_withheld_and_say_nothing() {
    let hub = TestHub::spawn().await;
    let cells = aggregate(
        &hub,
        &analyst(&hub),
        json!({
            "i": "suspension_rate",
            "by": ["LOCAL_AUTHORITY", "PUPIL_GROUP"],
            "groups": ["DISADVANTAGED", "NOT_DISADVANTAGED", "CHILDREN_IN_CARE"]
        }),
    )
    .await;
    let withheld = |c: &&Value| c["suppressed"] == true;
    // Children in care are few: their small counts are withheld, numbers and all.
    let in_care: Vec<&Value> = cells
        .iter()
        .filter(|c| c["pupilGroup"] == "CHILDREN_IN_CARE")
        .collect();
    assert!(in_care.iter().any(withheld), "{in_care:?}");
    for cell in cells.iter().filter(|c| c["suppressed"] == true) {
        assert!(
            cell["value"].is_null()
                && cell["numerator"].is_null()
                && cell["denominator"].is_null()
                && cell["schoolCount"].is_null(),
            "{cell}"
        );
    }
    for cell in cells.iter().filter(|c| c["suppressed"] == false) {
        // Perturbation moves a count by at most two from a true value of at least 5.
        let numerator = cell["numerator"].as_f64().unwrap();
        let denominator = cell["denominator"].as_f64().unwrap();
        assert!(numerator >= 3.0 && denominator >= 3.0, "{cell}");
        assert!(cell["schoolCount"].as_i64().unwrap() >= 3, "{cell}");
        assert_eq!(cell["perturbed"], true, "{cell}");
    }
}

#[tokio::test]
async fn aggregates_are_closed_to_sync_agents_and_anonymous_callers() {
    let hub = TestHub::spawn().await;
    let variables = json!({ "i": "attendance_rate", "by": ["REGION"] });
    let sync = hub
        .query(
            Some(&hub.token_for("LOCAL_AUTHORITY:852", "SYNC_AGENT")),
            AGGREGATE,
            variables.clone(),
        )
        .await;
    assert_eq!(
        sync["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{sync}"
    );
    let anonymous = hub.query(None, AGGREGATE, variables).await;
    assert_eq!(
        anonymous["errors"][0]["extensions"]["code"],
        "UNAUTHENTICATED"
    );
}
