//! Pupil records and the audit log: who may read which records, that counts count only
//! what the caller may see, and that every pupil-level read leaves exactly one audit
//! event — while public and aggregate reads leave none.
//!
//! Schools, trusts and organisations are looked up through the API or the hub's
//! database inside each test; the only fixed facts are those of the `test` scale's
//! design (pupil records exist for Hampshire 850 and Southampton 852, with pupils
//! crossing the border both ways).

use std::collections::HashSet;

use hub_tests::{TestHub, error_code as code};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde_json::{Value, json};

const SOUTHAMPTON: &str = "LOCAL_AUTHORITY:852";

/// The establishment types an LA maintains (DESIGN.md: pupils at the LA's maintained
/// schools), as SQL.
const MAINTAINED_SQL: &str = "('COMMUNITY', 'VOLUNTARY_AIDED', 'VOLUNTARY_CONTROLLED', \
     'FOUNDATION', 'COMMUNITY_SPECIAL', 'PUPIL_REFERRAL_UNIT')";

const PAGE: &str = "query($f: PupilRecordFilter, $after: String) {
    pupilRecords(filter: $f, first: 500, after: $after) {
        totalCount
        pageInfo { hasNextPage endCursor }
        edges { node { id pupilKey schoolUrn homeLaCode period yearGroup senStatus } }
    }
}";

/// A school on the register, as the public API describes it.
#[derive(Clone, Debug)]
struct School {
    urn: i64,
    la: String,
    establishment_type: String,
    trust: Option<String>,
}

impl School {
    fn is_maintained(&self) -> bool {
        MAINTAINED_SQL.contains(&format!("'{}'", self.establishment_type))
    }
}

async fn schools(hub: &TestHub) -> Vec<School> {
    let body = hub
        .query(
            None,
            "{ schools(first: 500) { pageInfo { hasNextPage } edges { node { urn establishmentType localAuthority { code } trust { code } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(body["data"]["schools"]["pageInfo"]["hasNextPage"], false);
    body["data"]["schools"]["edges"]
        .as_array()
        .expect("schools")
        .iter()
        .map(|e| School {
            urn: e["node"]["urn"].as_i64().unwrap(),
            la: e["node"]["localAuthority"]["code"]
                .as_str()
                .unwrap()
                .to_owned(),
            establishment_type: e["node"]["establishmentType"].as_str().unwrap().to_owned(),
            trust: e["node"]["trust"]["code"].as_str().map(str::to_owned),
        })
        .collect()
}

/// `SELECT COUNT(*) AS n …` on the hub's own database.
async fn count(db: &DatabaseConnection, sql: &str) -> i64 {
    db.query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .expect("count query")
        .expect("one row")
        .try_get::<i64>("", "n")
        .expect("column n")
}

/// The code of the organisation that runs the hub (kind `HUB`).
async fn hub_code(db: &DatabaseConnection) -> String {
    db.query_one_raw(Statement::from_string(
        db.get_database_backend(),
        "SELECT code FROM organisation WHERE kind = 'HUB'",
    ))
    .await
    .expect("query")
    .expect("the hub's own organisation")
    .try_get::<String>("", "code")
    .expect("code")
}

async fn audit_events(db: &DatabaseConnection) -> i64 {
    count(db, "SELECT COUNT(*) AS n FROM audit_event").await
}

/// Pupil records in 852's PUPIL scope, by the rule in DESIGN.md, written independently
/// of the hub's own SQL.
fn southampton_scope_sql(extra: &str) -> String {
    format!(
        "SELECT COUNT(*) AS n FROM pupil_record WHERE (home_la_code = '852' OR school_urn IN \
         (SELECT s.urn FROM school s JOIN organisation o ON o.id = s.la_id \
          WHERE o.kind = 'LOCAL_AUTHORITY' AND o.code = '852' \
          AND s.establishment_type IN {MAINTAINED_SQL})) {extra}"
    )
}

/// Every record a filter returns, page by page, with the `totalCount` of the first page.
async fn all_pages(hub: &TestHub, token: &str, filter: Value) -> (Vec<Value>, u64) {
    let mut rows = Vec::new();
    let mut after = Value::Null;
    let mut total = None;
    loop {
        let body = hub
            .query(Some(token), PAGE, json!({ "f": filter, "after": after }))
            .await;
        assert!(body.get("errors").is_none(), "{body}");
        let connection = &body["data"]["pupilRecords"];
        let page_total = connection["totalCount"].as_u64().unwrap();
        assert_eq!(*total.get_or_insert(page_total), page_total, "stable count");
        rows.extend(connection["edges"].as_array().unwrap().iter().cloned());
        if connection["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = connection["pageInfo"]["endCursor"].clone();
    }
    (rows, total.unwrap_or(0))
}

#[tokio::test]
async fn an_la_officer_sees_its_maintained_schools_and_its_residents_wherever_they_study() {
    let hub = TestHub::spawn().await;
    let db = hub.db().await;
    let token = hub.token_for(SOUTHAMPTON, "LA_OFFICER");
    let register = schools(&hub).await;
    let school = |urn: i64| {
        register
            .iter()
            .find(|s| s.urn == urn)
            .unwrap_or_else(|| panic!("school {urn} on the register"))
    };

    let (rows, total) = all_pages(&hub, &token, json!({ "period": "2024/25" })).await;
    assert_eq!(
        rows.len() as u64,
        total,
        "totalCount counts what paging returns"
    );
    let expected = count(&db, &southampton_scope_sql("AND period = '2024/25'")).await;
    assert_eq!(total as i64, expected, "the hub's count matches the rule");
    let ids: HashSet<&str> = rows
        .iter()
        .map(|r| r["node"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), rows.len(), "no row repeats across pages");

    let mut cross_border = 0;
    let mut maintained_non_residents = 0;
    for row in &rows {
        let node = &row["node"];
        assert_eq!(node["period"], "2024/25");
        let at = school(node["schoolUrn"].as_i64().unwrap());
        let home = node["homeLaCode"].as_str().unwrap();
        let at_maintained = at.la == "852" && at.is_maintained();
        assert!(
            home == "852" || at_maintained,
            "neither resident nor at a maintained 852 school: {node}"
        );
        assert!(
            !(home == "850" && at.la == "850"),
            "an 850 resident at an 850 school: {node}"
        );
        if home == "852" && at.la == "850" {
            cross_border += 1;
        }
        if home != "852" && at_maintained {
            maintained_non_residents += 1;
        }
    }
    assert!(
        cross_border > 0,
        "852 residents schooled in 850 are visible"
    );
    assert!(
        maintained_non_residents > 0,
        "non-residents at 852's maintained schools are visible"
    );

    let everything = hub
        .query(Some(&token), "{ pupilRecords { totalCount } }", json!({}))
        .await;
    assert!(everything.get("errors").is_none(), "{everything}");
    assert_eq!(
        everything["data"]["pupilRecords"]["totalCount"]
            .as_i64()
            .unwrap(),
        count(&db, &southampton_scope_sql("")).await,
        "unfiltered totalCount counts only visible rows"
    );
    let all_records = count(&db, "SELECT COUNT(*) AS n FROM pupil_record").await;
    assert!(
        expected < all_records,
        "the scope filter excluded something"
    );
}

/// A pupil record as one writer sends it.
fn pupil(number: &str, period: &str, urn: i64, home_la: &str) -> Value {
    json!({
        "pupilNumber": number, "period": period, "schoolUrn": urn, "homeLaCode": home_la,
        "yearGroup": 5, "disadvantaged": false, "sessionsPossible": 300, "sessionsMissed": 3
    })
}

async fn write_pupils(hub: &TestHub, org: &str, rows: Vec<Value>) {
    let body = hub
        .query(
            Some(&hub.token_for(org, "SYNC_AGENT")),
            "mutation($input: UpsertPupilRecordsInput!) { upsertPupilRecords(input: $input) { run { rowsWritten } } }",
            json!({ "input": { "rows": rows } }),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
}

/// The key of the one record at `urn` in `period` among `rows`.
fn key_at(rows: &[Value], urn: i64, period: &str) -> String {
    let keys: Vec<&str> = rows
        .iter()
        .filter(|r| r["node"]["schoolUrn"] == urn && r["node"]["period"] == period)
        .map(|r| r["node"]["pupilKey"].as_str().unwrap())
        .collect();
    assert_eq!(keys.len(), 1, "one record at {urn} in {period}");
    keys[0].to_owned()
}

/// The attack of issue 20: Southampton knows a pupil number that Hampshire wrote, writes
/// a record under it at its own school and reads that record's key — the key function
/// evaluated at a number of its choosing — then looks for the key among the records it
/// may read. No key it can obtain matches Hampshire's record, nor the key Hampshire is
/// shown, nor the hub's own linkage key; Southampton's keys still link its own records,
/// and Hampshire's records of one pupil to each other.
#[tokio::test]
async fn a_writer_cannot_find_another_holders_pupil_by_a_key_it_computed() {
    let hub = TestHub::spawn().await;
    let schools = schools(&hub).await;
    let maintained = |la: &str| -> Vec<i64> {
        schools
            .iter()
            .filter(|s| s.la == la && s.is_maintained())
            .map(|s| s.urn)
            .collect()
    };
    let (hampshire, southampton) = (maintained("850"), maintained("852"));
    let number = "H850123456789";
    // Hampshire's record of a pupil living in Southampton, in two years: Southampton
    // reads both by residence.
    write_pupils(
        &hub,
        "LOCAL_AUTHORITY:850",
        vec![
            pupil(number, "2019/20", hampshire[0], "852"),
            pupil(number, "2020/21", hampshire[0], "852"),
        ],
    )
    .await;
    // Southampton writes the same number at two of its own schools.
    write_pupils(
        &hub,
        SOUTHAMPTON,
        vec![
            pupil(number, "2019/20", southampton[0], "852"),
            pupil(number, "2020/21", southampton[1], "852"),
        ],
    )
    .await;

    let officer = hub.token_for(SOUTHAMPTON, "LA_OFFICER");
    let (seen, _) = all_pages(&hub, &officer, json!({})).await;
    let chosen = key_at(&seen, southampton[0], "2019/20");
    assert_eq!(
        chosen,
        key_at(&seen, southampton[1], "2020/21"),
        "Southampton links the records it wrote"
    );
    let theirs = key_at(&seen, hampshire[0], "2019/20");
    assert_eq!(
        theirs,
        key_at(&seen, hampshire[0], "2020/21"),
        "and Hampshire's records of one pupil to each other"
    );
    // Every key Southampton can obtain by writing is in its own domain: none of them is
    // on a record it cannot write.
    let own: HashSet<i64> = southampton.iter().copied().collect();
    let foreign: Vec<&Value> = seen
        .iter()
        .filter(|r| !own.contains(&r["node"]["schoolUrn"].as_i64().unwrap()))
        .collect();
    assert!(!foreign.is_empty(), "Southampton reads residents elsewhere");
    assert!(
        foreign.iter().all(|r| r["node"]["pupilKey"] != chosen),
        "the key Southampton computed finds none of another holder's records"
    );
    // Nor does it match the key Hampshire is shown, or the key the hub stores.
    let hampshire_officer = hub.token_for("LOCAL_AUTHORITY:850", "LA_OFFICER");
    let (theirs_seen, _) = all_pages(&hub, &hampshire_officer, json!({})).await;
    let hampshire_key = key_at(&theirs_seen, hampshire[0], "2019/20");
    assert_ne!(hampshire_key, theirs, "keys differ by reader");
    assert_ne!(hampshire_key, chosen);
    let db = hub.db().await;
    let stored = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT DISTINCT pupil_key FROM pupil_record",
        ))
        .await
        .expect("stored keys");
    let stored: HashSet<String> = stored
        .iter()
        .map(|row| row.try_get::<String>("", "pupil_key").unwrap())
        .collect();
    for key in seen.iter().chain(&theirs_seen) {
        assert!(
            !stored.contains(key["node"]["pupilKey"].as_str().unwrap()),
            "the linkage key never leaves the hub"
        );
    }
}

#[tokio::test]
async fn an_la_officer_asking_for_an_academy_gets_only_its_residents_there() {
    let hub = TestHub::spawn().await;
    let db = hub.db().await;
    let token = hub.token_for(SOUTHAMPTON, "LA_OFFICER");
    let mut academy = None;
    for school in schools(&hub).await {
        if school.la != "852" || school.is_maintained() {
            continue;
        }
        let others = count(
            &db,
            &format!(
                "SELECT COUNT(*) AS n FROM pupil_record WHERE school_urn = {} AND home_la_code <> '852'",
                school.urn
            ),
        )
        .await;
        if others > 0 {
            academy = Some(school);
            break;
        }
    }
    let academy = academy.expect("an 852 academy with pupils from outside 852");
    let (rows, total) = all_pages(
        &hub,
        &token,
        json!({ "schoolUrn": academy.urn, "period": "2024/25" }),
    )
    .await;
    let residents = count(
        &db,
        &format!(
            "SELECT COUNT(*) AS n FROM pupil_record WHERE school_urn = {} AND home_la_code = '852' AND period = '2024/25'",
            academy.urn
        ),
    )
    .await;
    assert!(residents > 0);
    assert_eq!(rows.len() as i64, residents);
    assert_eq!(total as i64, residents);
    for row in &rows {
        assert_eq!(row["node"]["schoolUrn"].as_i64(), Some(academy.urn));
        assert_eq!(row["node"]["homeLaCode"], "852", "{row}");
    }
}

#[tokio::test]
async fn a_trust_officer_is_refused_schools_outside_its_trust() {
    let hub = TestHub::spawn().await;
    let register = schools(&hub).await;
    let in_trust = register
        .iter()
        .find(|s| s.trust.is_some() && (s.la == "850" || s.la == "852"))
        .expect("an academy with pupil records");
    let trust = in_trust.trust.clone().unwrap();
    let outside = register
        .iter()
        .find(|s| s.trust.as_deref() != Some(trust.as_str()) && s.la == in_trust.la)
        .expect("a school outside the trust");
    let token = hub.token_for(&format!("TRUST:{trust}"), "TRUST_OFFICER");

    let refused = hub
        .query(
            Some(&token),
            PAGE,
            json!({ "f": { "schoolUrn": outside.urn } }),
        )
        .await;
    assert_eq!(code(&refused), "FORBIDDEN", "{refused}");
    assert_eq!(refused["data"], Value::Null);

    let (own, total) = all_pages(
        &hub,
        &token,
        json!({ "schoolUrn": in_trust.urn, "period": "2024/25" }),
    )
    .await;
    assert!(total > 0);
    assert!(
        own.iter()
            .all(|r| r["node"]["schoolUrn"].as_i64() == Some(in_trust.urn))
    );

    let trust_schools: HashSet<i64> = register
        .iter()
        .filter(|s| s.trust.as_deref() == Some(trust.as_str()))
        .map(|s| s.urn)
        .collect();
    let (rows, total) = all_pages(&hub, &token, json!({ "period": "2024/25" })).await;
    let expected = count(
        &hub.db().await,
        &format!(
            "SELECT COUNT(*) AS n FROM pupil_record WHERE period = '2024/25' AND school_urn IN \
             (SELECT s.urn FROM school s JOIN organisation t ON t.id = s.trust_id \
              WHERE t.kind = 'TRUST' AND t.code = '{trust}')"
        ),
    )
    .await;
    assert_eq!(total as i64, expected);
    assert_eq!(rows.len() as i64, expected);
    for row in &rows {
        assert!(
            trust_schools.contains(&row["node"]["schoolUrn"].as_i64().unwrap()),
            "{row}"
        );
    }
}

#[tokio::test]
async fn a_school_leader_sees_only_its_own_school() {
    let hub = TestHub::spawn().await;
    let db = hub.db().await;
    let register = schools(&hub).await;
    let own = register
        .iter()
        .find(|s| s.la == "852")
        .expect("a school with pupil records");
    let other = register
        .iter()
        .find(|s| s.la == "852" && s.urn != own.urn)
        .expect("a second 852 school");
    let organisations = count(
        &db,
        &format!(
            "SELECT COUNT(*) AS n FROM organisation WHERE kind = 'SCHOOL' AND code = '{}'",
            own.urn
        ),
    )
    .await;
    assert_eq!(
        organisations, 1,
        "the seed makes every school an organisation"
    );
    let token = hub.token_for(&format!("SCHOOL:{}", own.urn), "SCHOOL_LEADER");

    let (rows, total) = all_pages(&hub, &token, json!({ "period": "2024/25" })).await;
    let expected = count(
        &db,
        &format!(
            "SELECT COUNT(*) AS n FROM pupil_record WHERE school_urn = {} AND period = '2024/25'",
            own.urn
        ),
    )
    .await;
    assert!(expected > 0);
    assert_eq!(total as i64, expected);
    assert_eq!(rows.len() as i64, expected);
    assert!(
        rows.iter()
            .all(|r| r["node"]["schoolUrn"].as_i64() == Some(own.urn))
    );

    let refused = hub
        .query(
            Some(&token),
            PAGE,
            json!({ "f": { "schoolUrn": other.urn } }),
        )
        .await;
    assert_eq!(code(&refused), "FORBIDDEN", "{refused}");
}

#[tokio::test]
async fn roles_without_pupil_access_are_refused_and_leave_no_audit_event() {
    let hub = TestHub::spawn().await;
    let db = hub.db().await;
    let la = hub
        .query(
            None,
            r#"{ organisation(kind: LOCAL_AUTHORITY, code: "852") { region { code } }
                 others: organisations(filter: { kind: OTHER }, first: 1) { edges { node { code } } } }"#,
            json!({}),
        )
        .await;
    let region = la["data"]["organisation"]["region"]["code"]
        .as_str()
        .expect("852's region")
        .to_owned();
    let other = la["data"]["others"]["edges"][0]["node"]["code"]
        .as_str()
        .expect("an OTHER partner")
        .to_owned();
    let hub_code = hub_code(&db).await;
    let callers = [
        (format!("RSC_OFFICE:{region}"), "RSC_OFFICER"),
        (format!("INSPECTORATE:{region}"), "INSPECTOR"),
        (format!("OTHER:{other}"), "ANALYST"),
        (format!("HUB:{hub_code}"), "HUB_ADMIN"),
        (SOUTHAMPTON.to_owned(), "SYNC_AGENT"),
    ];
    for (org, role) in &callers {
        let token = hub.token_for(org, role);
        let body = hub
            .query(Some(&token), "{ pupilRecords { totalCount } }", json!({}))
            .await;
        assert_eq!(code(&body), "FORBIDDEN", "{role} at {org}: {body}");
        assert_eq!(body["data"], Value::Null);
    }
    let anonymous = hub
        .query(None, "{ pupilRecords { totalCount } }", json!({}))
        .await;
    assert_eq!(code(&anonymous), "UNAUTHENTICATED", "{anonymous}");
    assert_eq!(audit_events(&db).await, 0);
}

#[tokio::test]
async fn bad_filters_are_refused_before_any_record_is_read() {
    let hub = TestHub::spawn().await;
    let db = hub.db().await;
    let token = hub.token_for(SOUTHAMPTON, "LA_OFFICER");
    let cases = [
        (json!({ "period": "2024-25" }), "BAD_USER_INPUT"),
        (json!({ "yearGroup": 100_000 }), "BAD_USER_INPUT"),
        (json!({ "schoolUrn": -1 }), "NOT_FOUND"),
        (json!({ "laCode": "no-such-la" }), "NOT_FOUND"),
        (json!({ "homeLaCode": "852,school:1" }), "NOT_FOUND"),
    ];
    for (filter, expected) in cases {
        let body = hub.query(Some(&token), PAGE, json!({ "f": filter })).await;
        assert_eq!(code(&body), expected, "{filter}: {body}");
        assert_eq!(body["data"], Value::Null);
    }
    assert_eq!(audit_events(&db).await, 0);
}

#[tokio::test]
async fn a_pupil_read_writes_one_audit_event_and_other_reads_none() {
    let hub = TestHub::spawn().await;
    let db = hub.db().await;
    let token = hub.token_for(SOUTHAMPTON, "LA_OFFICER");

    let public = hub
        .query(Some(&token), "{ regions { code } }", json!({}))
        .await;
    assert!(public.get("errors").is_none(), "{public}");
    let aggregate = hub
        .query(
            Some(&token),
            r#"{ disadvantageGap(area: { level: LA, code: "852" }, indicatorCodes: ["attendance_rate"]) { gap } }"#,
            json!({}),
        )
        .await;
    assert!(aggregate.get("errors").is_none(), "{aggregate}");
    assert_eq!(audit_events(&db).await, 0, "public and aggregate reads");

    let body = hub
        .query(
            Some(&token),
            r#"query Caseload { pupilRecords(filter: { laCode: "852", period: "2024/25" }, first: 7) {
                edges { node { id pupilKey } } } }"#,
            json!({}),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(
        body["data"]["pupilRecords"]["edges"]
            .as_array()
            .unwrap()
            .len(),
        7
    );
    assert_eq!(audit_events(&db).await, 1);
    let organisation_id = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT id FROM organisation WHERE kind = 'LOCAL_AUTHORITY' AND code = '852'",
        ))
        .await
        .expect("query")
        .expect("852's organisation")
        .try_get::<i32>("", "id")
        .expect("id");
    let event = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT subject, organisation_id, role, action, access_level, operation_name, scope, row_count FROM audit_event",
        ))
        .await
        .expect("query")
        .expect("the event");
    assert_eq!(event.try_get::<String>("", "subject").unwrap(), "test-user");
    assert_eq!(
        event.try_get::<i32>("", "organisation_id").unwrap(),
        organisation_id
    );
    assert_eq!(event.try_get::<String>("", "role").unwrap(), "LA_OFFICER");
    assert_eq!(event.try_get::<String>("", "action").unwrap(), "READ");
    assert_eq!(
        event.try_get::<String>("", "access_level").unwrap(),
        "PUPIL"
    );
    assert_eq!(
        event
            .try_get::<Option<String>>("", "operation_name")
            .unwrap()
            .as_deref(),
        Some("Caseload")
    );
    assert_eq!(
        event.try_get::<String>("", "scope").unwrap(),
        "la:852,period:2024/25"
    );
    assert_eq!(event.try_get::<i64>("", "row_count").unwrap(), 7);

    let counted = hub
        .query(
            Some(&token),
            r#"{ pupilRecords(filter: { homeLaCode: "852" }) { totalCount } }"#,
            json!({}),
        )
        .await;
    assert!(counted.get("errors").is_none(), "{counted}");
    assert!(
        counted["data"]["pupilRecords"]["totalCount"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert_eq!(audit_events(&db).await, 2, "a count alone is audited too");
    let latest = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT operation_name, scope, row_count FROM audit_event ORDER BY id DESC",
        ))
        .await
        .expect("query")
        .expect("the event");
    assert_eq!(
        latest
            .try_get::<Option<String>>("", "operation_name")
            .unwrap(),
        None
    );
    assert_eq!(
        latest.try_get::<String>("", "scope").unwrap(),
        "home_la:852"
    );
    assert_eq!(
        latest.try_get::<i64>("", "row_count").unwrap(),
        0,
        "no rows were shown"
    );
}

#[tokio::test]
async fn pupil_records_are_not_returned_when_the_read_cannot_be_audited() {
    let hub = TestHub::spawn().await;
    let db = hub.db().await;
    let token = hub.token_for(SOUTHAMPTON, "LA_OFFICER");
    db.execute_unprepared("DROP TABLE audit_event")
        .await
        .expect("drop the audit table");
    let body = hub
        .query(
            Some(&token),
            "{ pupilRecords(first: 3) { edges { node { id pupilKey } } } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&body), "INTERNAL_SERVER_ERROR", "{body}");
    assert_eq!(body["data"], Value::Null);
}

#[tokio::test]
async fn the_audit_log_is_for_hub_administrators_only() {
    let hub = TestHub::spawn().await;
    let db = hub.db().await;
    let officer = hub.token_for(SOUTHAMPTON, "LA_OFFICER");
    let read = hub
        .query(
            Some(&officer),
            "query Register { pupilRecords(first: 2) { edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert!(read.get("errors").is_none(), "{read}");

    let hub_code = hub_code(&db).await;
    let admin = hub.token_for(&format!("HUB:{hub_code}"), "HUB_ADMIN");
    let document = "query($f: AuditEventFilter) { auditEvents(filter: $f) { totalCount edges { node {
        id occurredAt subject organisationId organisation { kind code } role action accessLevel operationName scope rowCount
    } } } }";
    let body = hub
        .query(
            Some(&admin),
            document,
            json!({ "f": { "organisationCode": "852", "organisationKind": "LOCAL_AUTHORITY", "subject": "test-user", "action": "READ", "since": "2000-01-01T00:00:00Z" } }),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(body["data"]["auditEvents"]["totalCount"], 1);
    let event = &body["data"]["auditEvents"]["edges"][0]["node"];
    assert_eq!(event["organisation"]["kind"], "LOCAL_AUTHORITY");
    assert_eq!(event["organisation"]["code"], "852");
    assert_eq!(event["role"], "LA_OFFICER");
    assert_eq!(event["action"], "READ");
    assert_eq!(event["accessLevel"], "PUPIL");
    assert_eq!(event["operationName"], "Register");
    assert_eq!(event["scope"], "all-in-scope");
    assert_eq!(event["rowCount"], 2);

    for filter in [
        json!({ "organisationCode": "850" }),
        json!({ "action": "WRITE" }),
        json!({ "subject": "someone-else" }),
        json!({ "since": "2999-01-01T00:00:00Z" }),
    ] {
        let none = hub
            .query(Some(&admin), document, json!({ "f": filter }))
            .await;
        assert!(none.get("errors").is_none(), "{none}");
        assert_eq!(none["data"]["auditEvents"]["totalCount"], 0, "{filter}");
    }

    let refused = hub
        .query(Some(&officer), document, json!({ "f": {} }))
        .await;
    assert_eq!(code(&refused), "FORBIDDEN", "{refused}");
    let anonymous = hub.query(None, document, json!({ "f": {} })).await;
    assert_eq!(code(&anonymous), "UNAUTHENTICATED", "{anonymous}");
}
