//! Signals: computed from the baseline when asked, with the figures behind them;
//! thresholds are rows; access is the figures' own, and a withheld figure withholds
//! the signal.

use hub_tests::TestHub;
use serde_json::{Value, json};

use super::{officer, ok, refused, schools_of};

const SIGNALS: &str = r#"query Signals($area: AreaInput!, $period: String!) {
  signals(area: $area, period: $period, statuses: [RAISED, NOT_RAISED, NOT_ENOUGH_DATA, WITHHELD]) {
    rule { code threshold } kind status measure comparatorLevel comparatorAreaCode
    figures { level areaCode period pupilGroup value suppressed }
  }
}"#;

fn area(level: &str, code: &str) -> Value {
    json!({ "area": { "level": level, "code": code }, "period": "2024/25" })
}

/// Every signal for an area, all statuses.
async fn signals(hub: &TestHub, token: &str, level: &str, code: &str) -> Vec<Value> {
    let data = ok(hub, Some(token), SIGNALS, area(level, code)).await;
    data["signals"].as_array().cloned().unwrap_or_default()
}

fn rule<'a>(signals: &'a [Value], code: &str) -> &'a Value {
    signals
        .iter()
        .find(|s| s["rule"]["code"] == code)
        .unwrap_or_else(|| panic!("no {code} signal in {signals:?}"))
}

/// Writes one LA figure through the hub, as the LA's nightly sync does: a rate of
/// `value` per cent of 1,000 pupils.
async fn set_la_figure(hub: &TestHub, indicator: &str, la: &str, period: &str, value: f64) {
    let agent = hub.token_for(&format!("LOCAL_AUTHORITY:{la}"), "SYNC_AGENT");
    let body = hub
        .query(
            Some(&agent),
            r#"mutation($rows: [ObservationInput!]!) {
                upsertObservations(input: { rows: $rows }) { run { rowsWritten } } }"#,
            json!({ "rows": [{
                "indicatorCode": indicator, "period": period, "level": "LA", "areaCode": la,
                "pupilGroup": "ALL", "numerator": value * 10.0, "denominator": 1000.0,
                "schoolCount": 20
            }] }),
        )
        .await;
    assert!(
        body["data"]["upsertObservations"]["run"]["rowsWritten"].is_number(),
        "{indicator} {la} {period}: {body}"
    );
}

#[tokio::test]
async fn signals_come_from_the_baseline_and_are_recomputed_after_a_data_write() {
    // Figures arrive through the sync mutation with the response cache on: the write
    // must reach signals computed (and cached) before it.
    let hub = TestHub::spawn().await;
    let token = officer(&hub, "852");
    let periods = ["2021/22", "2022/23", "2023/24", "2024/25"];
    for (period, value) in periods.iter().zip([20.0, 21.0, 22.5, 23.0]) {
        set_la_figure(&hub, "persistent_absence_rate", "852", period, value).await;
    }
    let all = signals(&hub, &token, "LA", "852").await;
    let rising = rule(&all, "persistent_absence_rising");
    assert_eq!(rising["status"], "RAISED");
    assert_eq!(rising["kind"], "RISK");
    assert_eq!(rising["measure"], 0.5, "the smallest of the three rises");
    assert_eq!(rising["comparatorLevel"], Value::Null);
    let behind: Vec<(Value, Value)> = rising["figures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["period"].clone(), f["value"].clone()))
        .collect();
    assert_eq!(
        behind,
        periods
            .iter()
            .zip([20.0, 21.0, 22.5, 23.0])
            .map(|(p, v)| (json!(p), json!(v)))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        rule(&all, "persistent_absence_falling")["status"],
        "NOT_RAISED"
    );

    // A new figure for the latest year breaks the run: the next answer says so.
    set_la_figure(&hub, "persistent_absence_rate", "852", "2024/25", 22.0).await;
    let all = signals(&hub, &token, "LA", "852").await;
    let rising = rule(&all, "persistent_absence_rising");
    assert_eq!(rising["status"], "NOT_RAISED");
    assert_eq!(rising["measure"], -0.5);
    assert_eq!(rising["figures"][3]["value"], 22.0);

    // Comparisons read the region's figure beside the LA's.
    let above = rule(&all, "suspensions_above_region");
    assert_eq!(above["comparatorLevel"], "REGION");
    assert_eq!(above["comparatorAreaCode"], super::SOUTH_EAST);
    let values: Vec<f64> = above["figures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["value"].as_f64().unwrap())
        .collect();
    let measure = above["measure"].as_f64().unwrap();
    assert!((measure - (values[0] - values[1])).abs() < 1e-3, "{above}");
}

#[tokio::test]
async fn a_changed_threshold_reaches_cached_signals() {
    let hub = TestHub::spawn().await;
    let token = officer(&hub, "852");
    let admin = hub.token_for("HUB:HUB", "HUB_ADMIN");
    let body =
        json!({ "query": SIGNALS, "variables": area("LA", "852"), "operationName": "Signals" });
    let send = |body: Value| {
        let hub = &hub;
        let token = token.clone();
        async move {
            let response = hub.post_graphql(Some(&token), &body).await;
            let cache = response.headers()["x-cache"].to_str().unwrap().to_owned();
            let body: Value = response.json().await.unwrap();
            (cache, body)
        }
    };
    let (_, first) = send(body.clone()).await;
    let (cache, _) = send(body.clone()).await;
    assert_eq!(cache, "hit", "signals are cached like any figures");
    let signals = first["data"]["signals"].as_array().unwrap().clone();
    let measure = rule(&signals, "suspensions_above_region")["measure"]
        .as_f64()
        .unwrap();

    const UPDATE: &str = r#"mutation($code: String!, $change: SignalRuleChange!) {
        updateSignalRule(code: $code, change: $change) { code threshold } }"#;
    for (threshold, expected) in [(measure - 0.5, "RAISED"), (measure + 0.5, "NOT_RAISED")] {
        let data = ok(
            &hub,
            Some(&admin),
            UPDATE,
            json!({ "code": "suspensions_above_region", "change": { "threshold": threshold } }),
        )
        .await;
        assert_eq!(data["updateSignalRule"]["threshold"], threshold);
        let (cache, body) = send(body.clone()).await;
        assert_eq!(cache, "miss", "the rule's tag was invalidated");
        let signals = body["data"]["signals"].as_array().unwrap().clone();
        let signal = rule(&signals, "suspensions_above_region");
        assert_eq!(signal["status"], expected, "threshold {threshold}");
        assert_eq!(signal["rule"]["threshold"], threshold);
    }

    // Only a hub administrator changes thresholds, and only sensibly.
    let (code, _) = refused(
        &hub,
        Some(&token),
        UPDATE,
        json!({ "code": "suspensions_above_region", "change": { "threshold": 0 } }),
    )
    .await;
    assert_eq!(code, "FORBIDDEN");
    let (code, message) = refused(
        &hub,
        Some(&admin),
        UPDATE,
        json!({ "code": "suspensions_above_region", "change": { "yearsRunning": 2 } }),
    )
    .await;
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(message.contains("trends only"), "{message}");
    let (code, _) = refused(
        &hub,
        Some(&admin),
        UPDATE,
        json!({ "code": "no_such_rule", "change": { "active": false } }),
    )
    .await;
    assert_eq!(code, "NOT_FOUND");
    assert_eq!(
        super::count(
            &hub,
            "audit_event",
            "action = 'WRITE' AND scope = 'signal_rule:suspensions_above_region'"
        )
        .await,
        2
    );
}

#[tokio::test]
async fn aggregate_only_callers_get_area_signals_never_a_schools() {
    let hub = TestHub::spawn().await;
    let analyst = hub.token_for("OTHER:RES-01", "ANALYST");
    let southampton = officer(&hub, "852");
    let own_school = schools_of(&hub, "852").await[0];
    let other_school = schools_of(&hub, "850").await[0];

    assert!(!signals(&hub, &analyst, "LA", "852").await.is_empty());
    assert!(
        !signals(&hub, &analyst, "REGION", super::SOUTH_EAST)
            .await
            .is_empty()
    );
    let (code, _) = refused(
        &hub,
        Some(&analyst),
        SIGNALS,
        area("SCHOOL", &own_school.to_string()),
    )
    .await;
    assert_eq!(
        code, "FORBIDDEN",
        "an analyst never gets a single school's signals"
    );

    let school = signals(&hub, &southampton, "SCHOOL", &own_school.to_string()).await;
    let above = rule(&school, "suspensions_above_region");
    assert_eq!(above["figures"][0]["level"], "SCHOOL");
    assert_eq!(above["comparatorAreaCode"], super::SOUTH_EAST);
    let (code, _) = refused(
        &hub,
        Some(&southampton),
        SIGNALS,
        area("SCHOOL", &other_school.to_string()),
    )
    .await;
    assert_eq!(
        code, "FORBIDDEN",
        "no SCHOOL scope over Hampshire's schools"
    );

    let (code, _) = refused(&hub, None, SIGNALS, area("LA", "852")).await;
    assert_eq!(code, "UNAUTHENTICATED");
    let sync = hub.token_for("LOCAL_AUTHORITY:852", "SYNC_AGENT");
    let (code, _) = refused(&hub, Some(&sync), SIGNALS, area("LA", "852")).await;
    assert_eq!(code, "FORBIDDEN");
    let (code, _) = refused(&hub, Some(&analyst), SIGNALS, area("LA", "999")).await;
    assert_eq!(code, "NOT_FOUND");
    let mut bad_period = area("LA", "852");
    bad_period["period"] = json!("2024-25");
    let (code, _) = refused(&hub, Some(&analyst), SIGNALS, bad_period).await;
    assert_eq!(code, "BAD_USER_INPUT");
}

#[tokio::test]
async fn signals_never_reveal_a_suppressed_figure() {
    // The City of London has too few schools for its figures to be shown to anyone
    // without SCHOOL scope over them; its own officers have that scope.
    let hub = TestHub::spawn().await;
    let analyst = hub.token_for("OTHER:RES-01", "ANALYST");
    let city = officer(&hub, "201");

    let series = ok(
        &hub,
        Some(&analyst),
        r#"{ timeSeries(area: { level: LA, code: "201" }, filter: {
              indicatorCodes: ["persistent_absence_rate"], pupilGroups: [ALL] }) {
              points { period suppressed } } }"#,
        json!({}),
    )
    .await;
    let suppressed_somewhere = series["timeSeries"][0]["points"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["suppressed"] == true);
    assert!(
        suppressed_somewhere,
        "the test needs a suppressed figure: {series}"
    );

    let for_analyst = signals(&hub, &analyst, "LA", "201").await;
    let for_city = signals(&hub, &city, "LA", "201").await;
    assert_eq!(
        rule(&for_analyst, "persistent_absence_rising")["status"],
        "WITHHELD"
    );
    let mut withheld = 0;
    for signal in &for_analyst {
        let code = signal["rule"]["code"].as_str().unwrap();
        if signal["status"] == "WITHHELD" {
            withheld += 1;
            // Not the outcome, not the margin, not one figure.
            assert_eq!(signal["measure"], Value::Null, "{code}");
            assert_eq!(signal["figures"], json!([]), "{code}");
        } else {
            for figure in signal["figures"].as_array().unwrap() {
                assert_eq!(figure["suppressed"], false, "{code}: {figure}");
                assert_ne!(figure["value"], Value::Null, "{code}: {figure}");
            }
            // What the analyst may see agrees with what the LA itself sees.
            let own = rule(&for_city, code);
            assert_eq!(signal["status"], own["status"], "{code}");
            assert_eq!(signal["measure"], own["measure"], "{code}");
        }
    }
    let withheld_for_city = for_city
        .iter()
        .filter(|s| s["status"] == "WITHHELD")
        .count();
    assert!(
        withheld > withheld_for_city,
        "the analyst sees less: {withheld} withheld against the LA's {withheld_for_city}"
    );
}
