//! Data sync over HTTP: bulk upserts are all-or-nothing, idempotent under a key, limited
//! to the writer's scope, invalidate cached answers, keep raw pupil numbers out of the
//! database and responses; the change feed pages stably while writes happen and shows
//! each caller only what it may read; sync runs are visible to their organisation.

use hub_tests::{TestHub, error_code as code};
use serde_json::{Value, json};

const UPSERT: &str = r#"mutation Upsert($input: UpsertObservationsInput!) {
  upsertObservations(input: $input) {
    replayed
    run { id status kind rowsReceived rowsWritten rowsUnchanged rowsRejected idempotencyKey durationMs }
  } }"#;

const DELETE: &str = r#"mutation($input: DeleteObservationsInput!) {
  deleteObservations(input: $input) { replayed run { id rowsWritten rowsUnchanged } } }"#;

const UPSERT_PUPILS: &str = r#"mutation($input: UpsertPupilRecordsInput!) {
  upsertPupilRecords(input: $input) { replayed run { id rowsWritten kind } } }"#;

const CHANGES: &str = r#"query($since: String, $first: Int, $filter: ChangeFilter) {
  changes(since: $since, first: $first, filter: $filter) {
    pageInfo { hasNextPage endCursor }
    edges { cursor node { kind position indicatorCode period level areaCode pupilGroup
      observation { value numerator denominator suppressed } } }
  } }"#;

const HEAD: &str = "{ changeFeedHead }";

/// Schools of an LA with their establishment type and trust.
async fn schools_of(hub: &TestHub, la: &str) -> Vec<Value> {
    let body = hub
        .query(
            None,
            r#"query($la: String!) { schools(filter: { laCode: $la }, first: 200) {
                edges { node { urn establishmentType trust { code } } } } }"#,
            json!({ "la": la }),
        )
        .await;
    body["data"]["schools"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

/// A school the LA maintains (not an academy): within its LA's write scope.
async fn maintained_school(hub: &TestHub, la: &str) -> i64 {
    schools_of(hub, la)
        .await
        .into_iter()
        .find(|s| s["establishmentType"] == "COMMUNITY")
        .and_then(|s| s["urn"].as_i64())
        .expect("a community school")
}

/// An academy of the LA's area, with its trust's code.
async fn academy(hub: &TestHub, la: &str) -> (i64, String) {
    schools_of(hub, la)
        .await
        .into_iter()
        .find(|s| s["trust"]["code"].is_string())
        .map(|s| {
            (
                s["urn"].as_i64().unwrap(),
                s["trust"]["code"].as_str().unwrap().to_owned(),
            )
        })
        .expect("an academy with a trust")
}

fn figure(urn: i64, indicator: &str, period: &str, numerator: f64, denominator: f64) -> Value {
    json!({
        "indicatorCode": indicator, "period": period, "level": "SCHOOL",
        "areaCode": urn.to_string(), "pupilGroup": "ALL",
        "numerator": numerator, "denominator": denominator
    })
}

fn upsert(key: Option<&str>, rows: Vec<Value>) -> Value {
    json!({ "input": { "idempotencyKey": key, "rows": rows } })
}

/// A school's suspension rate for one period as its LA officer reads it.
async fn school_value(hub: &TestHub, token: &str, urn: i64, period: &str) -> Option<f64> {
    let body = hub
        .query(
            Some(token),
            r#"query($urn: Int!, $p: String!) { school(urn: $urn) { observations(filter: {
                indicatorCodes: ["suspension_rate"], pupilGroups: [ALL], periodFrom: $p, periodTo: $p
            }) { value } } }"#,
            json!({ "urn": urn, "p": period }),
        )
        .await;
    assert_eq!(code(&body), "<none>", "{body}");
    body["data"]["school"]["observations"][0]["value"].as_f64()
}

#[tokio::test]
async fn an_idempotency_key_makes_a_retry_write_nothing() {
    let hub = TestHub::spawn().await;
    let agent = hub.token_for("LOCAL_AUTHORITY:852", "SYNC_AGENT");
    let urn = maintained_school(&hub, "852").await;
    let rows = vec![
        figure(urn, "suspension_rate", "2025/26", 7.0, 200.0),
        figure(urn, "attendance_rate", "2025/26", 9000.0, 10000.0),
    ];
    let first = hub
        .query(
            Some(&agent),
            UPSERT,
            upsert(Some("nightly-2026-11-23"), rows.clone()),
        )
        .await;
    let result = &first["data"]["upsertObservations"];
    assert_eq!(result["replayed"], false, "{first}");
    assert_eq!(result["run"]["status"], "SUCCEEDED");
    assert_eq!(result["run"]["rowsReceived"], 2);
    assert_eq!(result["run"]["rowsWritten"], 2);
    assert!(result["run"]["durationMs"].as_i64().is_some());
    let runs = hub.scalar("SELECT COUNT(*) FROM sync_run").await;
    let audits = hub
        .scalar("SELECT COUNT(*) FROM audit_event WHERE action = 'WRITE'")
        .await;

    let again = hub
        .query(
            Some(&agent),
            UPSERT,
            upsert(Some("nightly-2026-11-23"), rows.clone()),
        )
        .await;
    assert_eq!(
        again["data"]["upsertObservations"]["replayed"], true,
        "{again}"
    );
    assert_eq!(
        again["data"]["upsertObservations"]["run"]["id"],
        result["run"]["id"]
    );
    assert_eq!(hub.scalar("SELECT COUNT(*) FROM sync_run").await, runs);
    assert_eq!(
        hub.scalar("SELECT COUNT(*) FROM audit_event WHERE action = 'WRITE'")
            .await,
        audits,
        "a replay writes no audit event either"
    );

    let mut changed = rows;
    changed[0] = figure(urn, "suspension_rate", "2025/26", 8.0, 200.0);
    let reused = hub
        .query(
            Some(&agent),
            UPSERT,
            upsert(Some("nightly-2026-11-23"), changed),
        )
        .await;
    assert_eq!(code(&reused), "BAD_USER_INPUT", "{reused}");
    assert!(
        reused["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("different rows")
    );
    let officer = hub.token_for("LOCAL_AUTHORITY:852", "LA_OFFICER");
    assert_eq!(
        school_value(&hub, &officer, urn, "2025/26").await,
        Some(3.5),
        "the first call's value stands"
    );
}

#[tokio::test]
async fn one_bad_row_rejects_the_whole_call_and_names_every_problem() {
    let hub = TestHub::spawn().await;
    let agent = hub.token_for("LOCAL_AUTHORITY:852", "SYNC_AGENT");
    let officer = hub.token_for("LOCAL_AUTHORITY:852", "LA_OFFICER");
    let urn = maintained_school(&hub, "852").await;
    let before = school_value(&hub, &officer, urn, "2024/25").await;
    let mut bad_period = figure(urn, "suspension_rate", "2024-25", 1.0, 100.0);
    bad_period["period"] = json!("2024-25");
    let rows = vec![
        figure(urn, "suspension_rate", "2024/25", 99.0, 100.0),
        figure(urn, "no_such_indicator", "2024/25", 1.0, 100.0),
        bad_period,
        figure(urn, "attendance_rate", "2024/25", 10.0, 0.0),
        json!({ "indicatorCode": "ehe_count", "period": "2024/25", "level": "LA",
                "areaCode": "999", "numerator": 3 }),
    ];
    let body = hub
        .query(Some(&agent), UPSERT, upsert(Some("k1"), rows))
        .await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    let problems: Vec<(i64, String)> = body["errors"][0]["extensions"]["rows"]
        .as_array()
        .expect("extensions.rows")
        .iter()
        .map(|p| {
            assert!(!p["reason"].as_str().unwrap().is_empty());
            (
                p["index"].as_i64().unwrap(),
                p["field"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        problems,
        vec![
            (1, "indicatorCode".to_owned()),
            (2, "period".to_owned()),
            (3, "denominator".to_owned()),
            (4, "areaCode".to_owned()),
        ]
    );
    assert_eq!(
        school_value(&hub, &officer, urn, "2024/25").await,
        before,
        "the good row was not written either"
    );
    assert_eq!(
        hub.scalar("SELECT COUNT(*) FROM sync_run WHERE status = 'FAILED' AND rows_rejected = 4")
            .await,
        1,
        "the failed call is recorded"
    );
    // The key was not used up: the corrected call goes through under it.
    let fixed = hub
        .query(
            Some(&agent),
            UPSERT,
            upsert(
                Some("k1"),
                vec![figure(urn, "suspension_rate", "2024/25", 99.0, 100.0)],
            ),
        )
        .await;
    assert_eq!(
        fixed["data"]["upsertObservations"]["run"]["rowsWritten"], 1,
        "{fixed}"
    );
}

/// A code that names a known area in another spelling would store a second copy of a
/// figure under it (counted twice by aggregates, missed by a delete under the usual
/// code): each is refused, naming its row and field, and nothing of the call is stored.
#[tokio::test]
async fn area_codes_are_taken_only_in_their_canonical_form() {
    let hub = TestHub::spawn().await;
    let agent = hub.token_for("LOCAL_AUTHORITY:852", "SYNC_AGENT");
    let urn = maintained_school(&hub, "852").await;
    let spelled = |area: String| {
        let mut row = figure(urn, "suspension_rate", "2019/20", 7.0, 200.0);
        row["areaCode"] = json!(area);
        row
    };
    let la = |area: &str| {
        json!({ "indicatorCode": "ehe_count", "period": "2019/20", "level": "LA",
                "areaCode": area, "numerator": 3, "schoolCount": 1 })
    };
    let rows = vec![
        figure(urn, "suspension_rate", "2019/20", 7.0, 200.0),
        spelled(format!("+{urn}")),
        spelled(format!("00{urn}")),
        spelled(format!(" {urn}")),
        la("0852"),
        la("+852"),
        json!({ "indicatorCode": "ehe_count", "period": "2019/20", "level": "REGION",
                "areaCode": "e12000008", "numerator": 3, "schoolCount": 1 }),
    ];
    // A period is part of the key as well: `+019/20` is refused, not read as 2019/20.
    let mut signed_period = figure(urn, "suspension_rate", "+019/20", 7.0, 200.0);
    signed_period["pupilGroup"] = json!("DISADVANTAGED");
    let rows = [rows, vec![signed_period]].concat();
    let stored = "SELECT COUNT(*) FROM observation";
    let before = hub.scalar(stored).await;
    let body = hub
        .query(Some(&agent), UPSERT, upsert(Some("spellings"), rows))
        .await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    let problems: Vec<(i64, &str)> = body["errors"][0]["extensions"]["rows"]
        .as_array()
        .expect("extensions.rows")
        .iter()
        .map(|p| (p["index"].as_i64().unwrap(), p["field"].as_str().unwrap()))
        .collect();
    let mut expected: Vec<(i64, &str)> = (1..=6).map(|i| (i, "areaCode")).collect();
    expected.push((7, "period"));
    assert_eq!(problems, expected, "{body}");
    assert_eq!(
        hub.scalar(stored).await,
        before,
        "nothing of the call is stored, the good row included"
    );
    // Deleting by another spelling is refused too, rather than deleting nothing.
    let deleted = hub
        .query(
            Some(&agent),
            DELETE,
            json!({ "input": { "keys": [{ "indicatorCode": "suspension_rate", "period": "2024/25",
                "level": "SCHOOL", "areaCode": format!("0{urn}") }] } }),
        )
        .await;
    assert_eq!(code(&deleted), "BAD_USER_INPUT", "{deleted}");
    assert_eq!(
        deleted["errors"][0]["extensions"]["rows"][0]["field"],
        "areaCode"
    );
}

#[tokio::test]
async fn writers_are_held_to_their_own_data() {
    let hub = TestHub::spawn().await;
    let southampton = hub.token_for("LOCAL_AUTHORITY:852", "SYNC_AGENT");
    let (academy_urn, trust) = academy(&hub, "852").await;
    let hampshire_school = maintained_school(&hub, "850").await;
    let own = maintained_school(&hub, "852").await;

    // An LA's agent writes its maintained schools and its own LA figures...
    let ok = hub
        .query(
            Some(&southampton),
            UPSERT,
            upsert(
                None,
                vec![
                    figure(own, "suspension_rate", "2025/26", 5.0, 100.0),
                    json!({ "indicatorCode": "ehe_count", "period": "2025/26", "level": "LA",
                            "areaCode": "852", "numerator": 41, "schoolCount": 75 }),
                ],
            ),
        )
        .await;
    assert_eq!(code(&ok), "<none>", "{ok}");
    // ...but not an academy (its trust's data), another LA's school, or region figures.
    for (row, what) in [
        (
            figure(academy_urn, "suspension_rate", "2025/26", 5.0, 100.0),
            "an academy",
        ),
        (
            figure(hampshire_school, "suspension_rate", "2025/26", 5.0, 100.0),
            "Hampshire",
        ),
        (
            json!({ "indicatorCode": "ehe_count", "period": "2025/26", "level": "REGION",
                    "areaCode": "E12000008", "numerator": 900 }),
            "a region",
        ),
    ] {
        let body = hub
            .query(Some(&southampton), UPSERT, upsert(None, vec![row]))
            .await;
        assert_eq!(code(&body), "FORBIDDEN", "{what}: {body}");
        assert_eq!(body["errors"][0]["extensions"]["rows"][0]["index"], 0);
    }
    // The academy's trust may write it; the trust may not write the LA's school.
    let trust_agent = hub.token_for(&format!("TRUST:{trust}"), "SYNC_AGENT");
    let body = hub
        .query(
            Some(&trust_agent),
            UPSERT,
            upsert(
                None,
                vec![figure(
                    academy_urn,
                    "suspension_rate",
                    "2025/26",
                    5.0,
                    100.0,
                )],
            ),
        )
        .await;
    assert_eq!(code(&body), "<none>", "{body}");
    let body = hub
        .query(
            Some(&trust_agent),
            UPSERT,
            upsert(
                None,
                vec![figure(own, "suspension_rate", "2025/26", 5.0, 100.0)],
            ),
        )
        .await;
    assert_eq!(code(&body), "FORBIDDEN", "{body}");
    // Roles that write nothing, and anonymous callers.
    for (token, expected) in [
        (
            Some(hub.token_for("LOCAL_AUTHORITY:852", "ANALYST")),
            "FORBIDDEN",
        ),
        (
            Some(hub.token_for("INSPECTORATE:E12000008", "INSPECTOR")),
            "FORBIDDEN",
        ),
        (None, "UNAUTHENTICATED"),
    ] {
        let body = hub
            .query(
                token.as_deref(),
                UPSERT,
                upsert(
                    None,
                    vec![figure(own, "suspension_rate", "2025/26", 5.0, 100.0)],
                ),
            )
            .await;
        assert_eq!(code(&body), expected, "{body}");
    }
}

#[tokio::test]
async fn resent_rows_change_nothing_and_a_write_refreshes_cached_answers() {
    let hub = TestHub::spawn().await;
    let agent = hub.token_for("LOCAL_AUTHORITY:852", "SYNC_AGENT");
    let officer = hub.token_for("LOCAL_AUTHORITY:852", "LA_OFFICER");
    let urn = maintained_school(&hub, "852").await;
    // Read twice so the answer is cached.
    let before = school_value(&hub, &officer, urn, "2024/25").await;
    assert_eq!(school_value(&hub, &officer, urn, "2024/25").await, before);

    let rows = vec![figure(urn, "suspension_rate", "2024/25", 30.0, 150.0)];
    let first = hub
        .query(Some(&agent), UPSERT, upsert(None, rows.clone()))
        .await;
    assert_eq!(
        first["data"]["upsertObservations"]["run"]["rowsWritten"], 1,
        "{first}"
    );
    assert_eq!(
        school_value(&hub, &officer, urn, "2024/25").await,
        Some(20.0),
        "the cached answer was invalidated by the write"
    );
    let second = hub.query(Some(&agent), UPSERT, upsert(None, rows)).await;
    let run = &second["data"]["upsertObservations"]["run"];
    assert_eq!(run["rowsWritten"], 0, "{second}");
    assert_eq!(run["rowsUnchanged"], 1);
}

#[tokio::test]
async fn pupil_numbers_are_replaced_by_keys_and_never_echoed() {
    let hub = TestHub::spawn().await;
    let agent = hub.token_for("LOCAL_AUTHORITY:852", "SYNC_AGENT");
    let urn = maintained_school(&hub, "852").await;
    let upn = "K801200123456";
    let bad = "K80120012345X9";
    // Every hub log line of the test run is checked for these from now on.
    for secret in [upn, bad, "8012001234567"] {
        hub_tests::logs::register_secret(secret);
    }
    let mark = hub_tests::logs::mark();
    let record = json!({
        "pupilNumber": upn, "period": "2025/26", "schoolUrn": urn, "homeLaCode": "852",
        "yearGroup": 4, "disadvantaged": true, "sessionsPossible": 300, "sessionsMissed": 21
    });
    let body = hub
        .query(
            Some(&agent),
            UPSERT_PUPILS,
            json!({ "input": { "rows": [record] } }),
        )
        .await;
    assert_eq!(
        body["data"]["upsertPupilRecords"]["run"]["rowsWritten"], 1,
        "{body}"
    );
    assert!(!body.to_string().contains(upn));
    let key = baseline_hub::pseudonym::linkage_key(hub_tests::PUPIL_KEY_SECRET.as_bytes(), upn);
    assert_eq!(
        hub.scalar(&format!(
            "SELECT COUNT(*) FROM pupil_record WHERE pupil_key = '{key}'"
        ))
        .await,
        1
    );
    // The raw number is nowhere in the tables a sync touches.
    for (table, columns) in [
        ("pupil_record", "pupil_key || home_la_code || period"),
        (
            "sync_run",
            "COALESCE(request_hash, '') || subject || COALESCE(idempotency_key, '')",
        ),
        (
            "audit_event",
            "scope || subject || COALESCE(operation_name, '')",
        ),
    ] {
        assert_eq!(
            hub.scalar(&format!(
                "SELECT COUNT(*) FROM {table} WHERE {columns} LIKE '%{upn}%'"
            ))
            .await,
            0,
            "{table}"
        );
    }
    // A malformed number is refused without repeating it.
    let mut record = record.clone();
    record["pupilNumber"] = json!(bad);
    let body = hub
        .query(
            Some(&agent),
            UPSERT_PUPILS,
            json!({ "input": { "rows": [record] } }),
        )
        .await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["rows"][0]["field"],
        "pupilNumber"
    );
    assert!(!body.to_string().contains(bad));
    assert!(!body.to_string().contains("80120012345"));
    // Nor does the GraphQL engine repeat a number sent with the wrong type.
    record["pupilNumber"] = json!(8012001234567_i64);
    let body = hub
        .query(
            Some(&agent),
            UPSERT_PUPILS,
            json!({ "input": { "rows": [record] } }),
        )
        .await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    assert!(!body.to_string().contains("8012001234567"), "{body}");
    // The hub logged these requests, and no line holds a pupil number.
    let lines = hub_tests::logs::lines_since(mark);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("upsertPupilRecords") || l.contains("/graphql")),
        "the requests were logged: {lines:?}"
    );
    hub_tests::logs::assert_no_leaks();
}

/// Every change of a feed, followed from `since` to the end.
async fn follow(
    hub: &TestHub,
    token: &str,
    since: Option<String>,
    first: i64,
) -> (Vec<Value>, Option<String>) {
    let mut since = since;
    let mut seen = Vec::new();
    loop {
        let body = hub
            .query(
                Some(token),
                CHANGES,
                json!({ "since": since, "first": first }),
            )
            .await;
        assert_eq!(code(&body), "<none>", "{body}");
        let changes = &body["data"]["changes"];
        for edge in changes["edges"].as_array().unwrap() {
            seen.push(edge["node"].clone());
        }
        if let Some(cursor) = changes["pageInfo"]["endCursor"].as_str() {
            since = Some(cursor.to_owned());
        }
        if changes["pageInfo"]["hasNextPage"] == false {
            return (seen, since);
        }
    }
}

#[tokio::test]
async fn the_change_feed_pages_stably_while_writes_happen() {
    let hub = TestHub::spawn().await;
    let agent = hub.token_for("LOCAL_AUTHORITY:852", "SYNC_AGENT");
    let officer = hub.token_for("LOCAL_AUTHORITY:852", "LA_OFFICER");
    let urn = maintained_school(&hub, "852").await;
    let head = hub.query(Some(&officer), HEAD, json!({})).await;
    let head = head["data"]["changeFeedHead"]
        .as_str()
        .expect("head")
        .to_owned();

    let batch_a: Vec<Value> = ["2021/22", "2022/23", "2023/24"]
        .iter()
        .map(|p| figure(urn, "suspension_rate", p, 1.0, 1000.0))
        .collect();
    hub.query(Some(&agent), UPSERT, upsert(None, batch_a)).await;
    // The partner reads two changes, then more writes land before it reads on.
    let page = hub
        .query(
            Some(&officer),
            CHANGES,
            json!({ "since": head, "first": 2 }),
        )
        .await;
    let edges = page["data"]["changes"]["edges"].as_array().unwrap().clone();
    assert_eq!(edges.len(), 2, "{page}");
    assert_eq!(page["data"]["changes"]["pageInfo"]["hasNextPage"], true);
    let cursor = page["data"]["changes"]["pageInfo"]["endCursor"]
        .as_str()
        .unwrap()
        .to_owned();
    hub.query(
        Some(&agent),
        UPSERT,
        upsert(
            None,
            vec![
                // Changes a figure the partner has already seen...
                figure(urn, "suspension_rate", "2021/22", 2.0, 1000.0),
                figure(urn, "attendance_rate", "2021/22", 1.0, 2.0),
            ],
        ),
    )
    .await;
    let deleted = hub
        .query(
            Some(&agent),
            DELETE,
            json!({ "input": { "keys": [{ "indicatorCode": "attendance_rate", "period": "2021/22",
                "level": "SCHOOL", "areaCode": urn.to_string() }] } }),
        )
        .await;
    assert_eq!(
        deleted["data"]["deleteObservations"]["run"]["rowsWritten"], 1,
        "{deleted}"
    );

    let (rest, _) = follow(&hub, &officer, Some(cursor), 2).await;
    let mut all: Vec<Value> = edges.iter().map(|e| e["node"].clone()).collect();
    all.extend(rest.iter().cloned());
    let positions: Vec<i64> = all
        .iter()
        .map(|c| c["position"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "positions strictly increase: {positions:?}"
    );
    let summary: Vec<(String, String, String)> = rest
        .iter()
        .map(|c| {
            (
                c["kind"].as_str().unwrap().to_owned(),
                c["indicatorCode"].as_str().unwrap().to_owned(),
                c["period"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("UPSERT".into(), "suspension_rate".into(), "2023/24".into()),
            ("UPSERT".into(), "suspension_rate".into(), "2021/22".into()),
            ("DELETE".into(), "attendance_rate".into(), "2021/22".into()),
        ],
        "nothing skipped, the re-written figure comes again, the deleted one as a deletion \
         (its upsert is gone because the figure is)"
    );
    assert_eq!(rest[1]["observation"]["value"], 0.2);
    assert!(rest[2]["observation"].is_null());
}

#[tokio::test]
async fn the_change_feed_shows_each_caller_only_what_it_may_read() {
    let hub = TestHub::spawn().await;
    let head = hub
        .query(
            Some(&hub.token_for("HUB:HUB", "HUB_ADMIN")),
            HEAD,
            json!({}),
        )
        .await;
    let head = head["data"]["changeFeedHead"].as_str().unwrap().to_owned();
    let hampshire = hub.token_for("LOCAL_AUTHORITY:850", "SYNC_AGENT");
    let school = maintained_school(&hub, "850").await;
    let body = hub
        .query(
            Some(&hampshire),
            UPSERT,
            upsert(
                None,
                vec![
                    figure(school, "suspension_rate", "2025/26", 4.0, 100.0),
                    json!({ "indicatorCode": "cme_count", "period": "2025/26", "level": "LA",
                            "areaCode": "850", "numerator": 3, "schoolCount": 1 }),
                ],
            ),
        )
        .await;
    assert_eq!(code(&body), "<none>", "{body}");

    let southampton = hub.token_for("LOCAL_AUTHORITY:852", "LA_OFFICER");
    let (seen, _) = follow(&hub, &southampton, Some(head.clone()), 50).await;
    assert_eq!(
        seen.len(),
        1,
        "Southampton sees the LA figure only: {seen:?}"
    );
    assert_eq!(seen[0]["level"], "LA");
    assert_eq!(
        seen[0]["observation"]["suppressed"], true,
        "a count of 3 from one school is withheld from an aggregate reader"
    );
    assert!(seen[0]["observation"]["value"].is_null());

    let own = hub.token_for("LOCAL_AUTHORITY:850", "LA_OFFICER");
    let (seen, _) = follow(&hub, &own, Some(head.clone()), 50).await;
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0]["observation"]["value"], 4.0);

    let anonymous = hub.query(None, CHANGES, json!({})).await;
    assert_eq!(code(&anonymous), "UNAUTHENTICATED");
}

/// Every role's feed after two LAs' sync agents each wrote a school figure and their
/// own LA figure: what it may read, and what it may write.
#[tokio::test]
async fn every_roles_change_feed_shows_what_it_may_read_or_write() {
    let hub = TestHub::spawn().await;
    let admin = hub.token_for("HUB:HUB", "HUB_ADMIN");
    let head = hub.query(Some(&admin), HEAD, json!({})).await;
    let head = head["data"]["changeFeedHead"].as_str().unwrap().to_owned();
    let mut schools = Vec::new();
    for la in ["852", "850"] {
        let school = maintained_school(&hub, la).await;
        schools.push(school);
        let agent = hub.token_for(&format!("LOCAL_AUTHORITY:{la}"), "SYNC_AGENT");
        let body = hub
            .query(
                Some(&agent),
                UPSERT,
                upsert(
                    None,
                    vec![
                        figure(school, "suspension_rate", "2025/26", 4.0, 100.0),
                        json!({ "indicatorCode": "cme_count", "period": "2025/26", "level": "LA",
                                "areaCode": la, "numerator": 30, "schoolCount": 12 }),
                    ],
                ),
            )
            .await;
        assert_eq!(code(&body), "<none>", "{body}");
    }
    let (southampton_school, hampshire_school) = (schools[0].to_string(), schools[1].to_string());
    let school_leader = format!("SCHOOL:{southampton_school}");
    // (organisation, role, the areas of the changes it sees)
    let table: &[(&str, &str, &[&str])] = &[
        (
            "LOCAL_AUTHORITY:852",
            "SYNC_AGENT",
            &[&southampton_school, "852"],
        ),
        (
            "LOCAL_AUTHORITY:850",
            "SYNC_AGENT",
            &[&hampshire_school, "850"],
        ),
        (
            "HUB:HUB",
            "SYNC_AGENT",
            &[&southampton_school, "852", &hampshire_school, "850"],
        ),
        (
            "LOCAL_AUTHORITY:852",
            "LA_OFFICER",
            &[&southampton_school, "852", "850"],
        ),
        (
            "LOCAL_AUTHORITY:850",
            "LA_OFFICER",
            &["852", &hampshire_school, "850"],
        ),
        ("LOCAL_AUTHORITY:202", "LA_OFFICER", &["852", "850"]),
        (
            &school_leader,
            "SCHOOL_LEADER",
            &[&southampton_school, "852", "850"],
        ),
        (
            "RSC_OFFICE:E12000008",
            "RSC_OFFICER",
            &[&southampton_school, "852", &hampshire_school, "850"],
        ),
        (
            "INSPECTORATE:E12000008",
            "INSPECTOR",
            &[&southampton_school, "852", &hampshire_school, "850"],
        ),
        ("HUB:HUB", "HUB_ADMIN", &["852", "850"]),
        ("OTHER:RES-01", "ANALYST", &["852", "850"]),
    ];
    for (organisation, role, expected) in table {
        let token = hub.token_for(organisation, role);
        let (seen, end) = follow(&hub, &token, Some(head.clone()), 2).await;
        let mut areas: Vec<&str> = seen
            .iter()
            .map(|c| c["areaCode"].as_str().unwrap())
            .collect();
        areas.sort_unstable();
        let mut expected = expected.to_vec();
        expected.sort_unstable();
        assert_eq!(areas, expected, "{role} at {organisation}");
        assert_ne!(
            end.as_deref(),
            Some(head.as_str()),
            "{role} at {organisation}: endCursor moves"
        );
    }
    // The agent reads back the school figure it wrote, unsuppressed like its LA's
    // officers do.
    let agent = hub.token_for("LOCAL_AUTHORITY:852", "SYNC_AGENT");
    let (seen, _) = follow(&hub, &agent, Some(head), 50).await;
    let school = seen
        .iter()
        .find(|c| c["level"] == "SCHOOL")
        .expect("its school figure");
    assert_eq!(school["observation"]["value"], 4.0);
}

#[tokio::test]
async fn sync_runs_are_visible_to_their_organisation_and_hub_administrators() {
    let hub = TestHub::spawn().await;
    let agent = hub.token_for("LOCAL_AUTHORITY:852", "SYNC_AGENT");
    let urn = maintained_school(&hub, "852").await;
    hub.query(
        Some(&agent),
        UPSERT,
        upsert(
            Some("visible"),
            vec![figure(urn, "suspension_rate", "2025/26", 1.0, 10.0)],
        ),
    )
    .await;
    const RUNS: &str = "{ syncRuns { totalCount edges { node { idempotencyKey subject organisation { code } rowsWritten } } } }";
    for (token, expected) in [
        (hub.token_for("LOCAL_AUTHORITY:852", "LA_OFFICER"), 1),
        (agent.clone(), 1),
        (hub.token_for("HUB:HUB", "HUB_ADMIN"), 1),
        (hub.token_for("LOCAL_AUTHORITY:850", "LA_OFFICER"), 0),
    ] {
        let body = hub.query(Some(&token), RUNS, json!({})).await;
        assert_eq!(body["data"]["syncRuns"]["totalCount"], expected, "{body}");
        if expected == 1 {
            let node = &body["data"]["syncRuns"]["edges"][0]["node"];
            assert_eq!(node["idempotencyKey"], "visible");
            assert_eq!(node["organisation"]["code"], "852");
            assert_eq!(node["rowsWritten"], 1);
        }
    }
    let body = hub.query(None, RUNS, json!({})).await;
    assert_eq!(code(&body), "UNAUTHENTICATED");
}

#[tokio::test]
async fn oversized_and_empty_calls_are_refused_before_any_work() {
    let hub = TestHub::spawn().await;
    let agent = hub.token_for("LOCAL_AUTHORITY:852", "SYNC_AGENT");
    let empty = hub.query(Some(&agent), UPSERT, upsert(None, vec![])).await;
    assert_eq!(code(&empty), "BAD_USER_INPUT", "{empty}");
    let row = figure(1, "suspension_rate", "2025/26", 1.0, 10.0);
    // About 1.5 MB: over the general body limit, under the one for writers.
    let body = json!({ "query": UPSERT, "variables": upsert(None, vec![row; 10_001]) });
    let analyst = hub.token_for("LOCAL_AUTHORITY:852", "ANALYST");
    let refused = hub.post_graphql(Some(&analyst), &body).await;
    assert_eq!(refused.status(), 413, "only writers may send large bodies");
    let too_many: Value = hub
        .post_graphql(Some(&agent), &body)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(code(&too_many), "BAD_USER_INPUT", "{too_many}");
    assert!(
        too_many["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("10000")
    );
    assert_eq!(hub.scalar("SELECT COUNT(*) FROM sync_run").await, 0);
}

#[tokio::test]
async fn two_copies_of_a_call_racing_each_other_write_once() {
    let hub = TestHub::spawn().await;
    let agent = hub.token_for("LOCAL_AUTHORITY:852", "SYNC_AGENT");
    let urn = maintained_school(&hub, "852").await;
    let rows: Vec<Value> = ["2021/22", "2022/23", "2023/24", "2024/25", "2025/26"]
        .iter()
        .map(|p| figure(urn, "persistent_absence_rate", p, 11.0, 100.0))
        .collect();
    let variables = upsert(Some("retry-storm"), rows);
    let (a, b) = tokio::join!(
        hub.query(Some(&agent), UPSERT, variables.clone()),
        hub.query(Some(&agent), UPSERT, variables.clone()),
    );
    let results = [
        &a["data"]["upsertObservations"],
        &b["data"]["upsertObservations"],
    ];
    assert!(results.iter().all(|r| r.is_object()), "{a} {b}");
    assert_eq!(results[0]["run"]["id"], results[1]["run"]["id"], "{a} {b}");
    let replays = results.iter().filter(|r| r["replayed"] == true).count();
    assert_eq!(replays, 1, "exactly one call wrote: {a} {b}");
    assert_eq!(
        hub.scalar("SELECT COUNT(*) FROM sync_run WHERE idempotency_key = 'retry-storm'")
            .await,
        1
    );
}
