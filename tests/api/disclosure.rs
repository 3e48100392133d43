//! Disclosure control on AGGREGATE figures: small cells and few-school cells withheld,
//! complementary cells withheld with them, thresholds from settings, and an attempt to
//! recover a withheld cell by subtraction that fails.
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
    assert_eq!(city["schoolCount"], 1);

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
        cells { pupilGroup regionCode localAuthority { code } value numerator denominator schoolCount suppressed suppressionReason }
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
async fn aggregate_cells_are_protected_the_same_way_whatever_the_filter() {
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
    assert_eq!(cells["201"]["suppressed"], true);
    assert_eq!(cells["201"]["suppressionReason"], "c");
    assert_eq!(
        cells.values().filter(|c| c["suppressed"] == true).count(),
        2,
        "one complementary cell: {by_region:?}"
    );
    // Asking for each LA on its own gives the same answer, so the complementary cell
    // cannot be read by filtering to it.
    for (code, cell) in &cells {
        let alone = aggregate(
            &hub,
            &token,
            json!({ "i": "attendance_rate", "by": ["LOCAL_AUTHORITY"], "f": { "laCode": code } }),
        )
        .await;
        assert_eq!(alone.len(), 1);
        assert_eq!(alone[0]["suppressed"], cell["suppressed"], "LA {code}");
        assert_eq!(alone[0]["numerator"], cell["numerator"], "LA {code}");
    }
    // A shown cell is the exact sum of its schools' figures (the stored LA figure).
    let shown = cells
        .iter()
        .find(|(_, c)| c["suppressed"] == false)
        .expect("one cell shown");
    let truth = stored_numerator(&hub, "LA", shown.0, "attendance_rate").await;
    assert!((shown.1["numerator"].as_f64().unwrap() - truth).abs() < 1e-6);
    assert_eq!(shown.1["regionCode"], LONDON);
}

#[tokio::test]
async fn small_counts_and_their_complements_are_withheld_in_every_breakdown() {
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
            cell["value"].is_null() && cell["numerator"].is_null() && cell["denominator"].is_null()
        );
    }
    for cell in cells.iter().filter(|c| c["suppressed"] == false) {
        let numerator = cell["numerator"].as_f64().unwrap();
        let denominator = cell["denominator"].as_f64().unwrap();
        assert!(numerator >= 5.0 && denominator >= 5.0, "{cell}");
        assert!(cell["schoolCount"].as_i64().unwrap() >= 3, "{cell}");
    }
    // No breakdown has exactly one withheld cell: not the disadvantaged split of an
    // LA, not the LAs of a region for one group.
    let mut splits: HashMap<String, usize> = HashMap::new();
    let mut regions: HashMap<(String, String), (usize, usize)> = HashMap::new();
    for cell in &cells {
        let group = cell["pupilGroup"].as_str().unwrap().to_owned();
        let hidden = usize::from(cell["suppressed"] == true);
        if group != "CHILDREN_IN_CARE" {
            *splits.entry(la_code(cell)).or_default() += hidden;
        }
        let entry = regions
            .entry((cell["regionCode"].as_str().unwrap().to_owned(), group))
            .or_default();
        entry.0 += hidden;
        entry.1 += 1;
    }
    assert!(splits.values().all(|n| *n != 1), "{splits:?}");
    for (key, (hidden, cells)) in regions {
        assert!(hidden != 1 || cells == 1, "{key:?}: {hidden} of {cells}");
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
