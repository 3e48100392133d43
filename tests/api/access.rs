//! The role table, cell by cell: each role × SCHOOL and AGGREGATE level × in scope and
//! out of scope, through the real HTTP API. (PUPIL level: `pupils.rs`.) Also: lists and
//! their `totalCount` filtered in SQL, and roles that do not fit the organisation.

use hub_tests::{TestHub, error_code as code};
use serde_json::{Value, json};

/// Schools of an LA (public register data), as `(urn, trust code)`.
async fn schools_of(hub: &TestHub, la: &str) -> Vec<(i64, Option<String>)> {
    let body = hub
        .query(
            None,
            r#"query($la: String) { schools(filter: { laCode: $la }, first: 500) { edges { node { urn trust { code } } } } }"#,
            json!({ "la": la }),
        )
        .await;
    body["data"]["schools"]["edges"]
        .as_array()
        .expect("schools")
        .iter()
        .map(|e| {
            (
                e["node"]["urn"].as_i64().expect("urn"),
                e["node"]["trust"]["code"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

/// The outcome of reading one school's own figures: `OK` or the error code.
async fn read_school(hub: &TestHub, token: &str, urn: i64) -> String {
    let body = hub
        .query(
            Some(token),
            r#"query($urn: Int!) { school(urn: $urn) { observations(filter: { indicatorCodes: ["attendance_rate"], pupilGroups: [ALL] }) { value } } }"#,
            json!({ "urn": urn }),
        )
        .await;
    if body.get("errors").is_some() {
        assert_eq!(
            body["data"]["school"]["observations"],
            Value::Null,
            "no figures alongside an error: {body}"
        );
        return code(&body).to_owned();
    }
    let rows = body["data"]["school"]["observations"]
        .as_array()
        .expect("figures");
    assert!(
        !rows.is_empty(),
        "an allowed read returns the figures: {body}"
    );
    "OK".to_owned()
}

/// The outcome of reading an LA's figures (AGGREGATE level).
async fn read_aggregate(hub: &TestHub, token: &str) -> String {
    let body = hub
        .query(
            Some(token),
            r#"{ timeSeries(area: { level: LA, code: "850" }, filter: { indicatorCodes: ["attendance_rate"], pupilGroups: [ALL] }) { points { value } } }"#,
            json!({}),
        )
        .await;
    if body.get("errors").is_some() {
        return code(&body).to_owned();
    }
    assert_eq!(
        body["data"]["timeSeries"][0]["points"]
            .as_array()
            .map(Vec::len),
        Some(5)
    );
    "OK".to_owned()
}

#[tokio::test]
async fn every_cell_of_the_role_table_at_school_and_aggregate_level() {
    let hub = TestHub::spawn().await;
    let southampton = schools_of(&hub, "852").await;
    let hampshire = schools_of(&hub, "850").await;
    let camden = schools_of(&hub, "202").await;
    let academy_852 = southampton
        .iter()
        .find(|(_, trust)| trust.is_some())
        .expect("852 has an academy");
    let trust = academy_852.1.clone().expect("trust");
    let outside_trust = hampshire
        .iter()
        .find(|(_, t)| t.as_deref() != Some(trust.as_str()))
        .expect("a school outside the trust")
        .0;
    let own_school = southampton[0].0;
    let other_school = hampshire[0].0;

    // (org, role, school in scope, school out of scope, SCHOOL in, SCHOOL out, AGGREGATE)
    let cases: Vec<(String, &str, i64, i64, &str, &str, &str)> = vec![
        (
            "HUB:HUB".into(),
            "HUB_ADMIN",
            own_school,
            other_school,
            "FORBIDDEN",
            "FORBIDDEN",
            "OK",
        ),
        // An LA sees every school in its area, academies included.
        (
            "LOCAL_AUTHORITY:852".into(),
            "LA_OFFICER",
            academy_852.0,
            other_school,
            "OK",
            "FORBIDDEN",
            "OK",
        ),
        (
            format!("TRUST:{trust}"),
            "TRUST_OFFICER",
            academy_852.0,
            outside_trust,
            "OK",
            "FORBIDDEN",
            "OK",
        ),
        (
            "RSC_OFFICE:E12000008".into(),
            "RSC_OFFICER",
            other_school,
            camden[0].0,
            "OK",
            "FORBIDDEN",
            "OK",
        ),
        (
            "INSPECTORATE:E12000008".into(),
            "INSPECTOR",
            other_school,
            camden[0].0,
            "OK",
            "FORBIDDEN",
            "OK",
        ),
        (
            format!("SCHOOL:{own_school}"),
            "SCHOOL_LEADER",
            own_school,
            other_school,
            "OK",
            "FORBIDDEN",
            "OK",
        ),
        (
            "LOCAL_AUTHORITY:852".into(),
            "ANALYST",
            own_school,
            other_school,
            "FORBIDDEN",
            "FORBIDDEN",
            "OK",
        ),
        (
            "LOCAL_AUTHORITY:852".into(),
            "SYNC_AGENT",
            own_school,
            other_school,
            "FORBIDDEN",
            "FORBIDDEN",
            "FORBIDDEN",
        ),
    ];
    for (org, role, inside, outside, school_in, school_out, aggregate) in cases {
        let token = hub.token_for(&org, role);
        assert_eq!(
            read_school(&hub, &token, inside).await,
            school_in,
            "{role} SCHOOL in scope ({inside})"
        );
        assert_eq!(
            read_school(&hub, &token, outside).await,
            school_out,
            "{role} SCHOOL out of scope ({outside})"
        );
        assert_eq!(
            read_aggregate(&hub, &token).await,
            aggregate,
            "{role} AGGREGATE"
        );
    }
    // Without a token: the register, never figures.
    let anonymous = hub
        .query(
            None,
            r#"query($urn: Int!) { school(urn: $urn) { name observations { value } } }"#,
            json!({ "urn": own_school }),
        )
        .await;
    assert_eq!(code(&anonymous), "UNAUTHENTICATED");
    assert!(anonymous["data"]["school"]["name"].is_string());
}

#[tokio::test]
async fn a_direct_request_for_an_area_out_of_scope_is_forbidden() {
    let hub = TestHub::spawn().await;
    let other_school = schools_of(&hub, "850").await[0].0;
    let token = hub.token_for("LOCAL_AUTHORITY:852", "LA_OFFICER");
    for field in ["timeSeries", "disadvantageGap"] {
        let selection = if field == "timeSeries" {
            "indicatorCode"
        } else {
            "gap"
        };
        let body = hub
            .query(
                Some(&token),
                &format!(r#"query($urn: String!) {{ {field}(area: {{ level: SCHOOL, code: $urn }}) {{ {selection} }} }}"#),
                json!({ "urn": other_school.to_string() }),
            )
            .await;
        assert_eq!(code(&body), "FORBIDDEN", "{field}: {body}");
    }
}

/// `totalCount` counts exactly the rows the caller may see: SCHOOL figures of its own
/// schools only, never another LA's.
#[tokio::test]
async fn lists_and_counts_are_filtered_to_the_callers_scope() {
    let hub = TestHub::spawn().await;
    let own: Vec<String> = schools_of(&hub, "852")
        .await
        .iter()
        .map(|(urn, _)| urn.to_string())
        .collect();
    let document = r#"{ observations(filter: { level: SCHOOL, indicatorCodes: ["attendance_rate"], pupilGroups: [ALL] }, first: 500) {
        totalCount edges { node { areaCode } } } }"#;
    let la = hub
        .query(
            Some(&hub.token_for("LOCAL_AUTHORITY:852", "LA_OFFICER")),
            document,
            json!({}),
        )
        .await;
    let edges = la["data"]["observations"]["edges"]
        .as_array()
        .expect("edges");
    assert!(!edges.is_empty());
    assert_eq!(la["data"]["observations"]["totalCount"], edges.len());
    assert!(
        edges
            .iter()
            .all(|e| own.contains(&e["node"]["areaCode"].as_str().unwrap().to_owned())),
        "only the LA's schools: {la}"
    );
    // Every one of the LA's schools, five periods each.
    assert_eq!(edges.len(), own.len() * 5);

    let analyst = hub
        .query(
            Some(&hub.token_for("LOCAL_AUTHORITY:852", "ANALYST")),
            document,
            json!({}),
        )
        .await;
    assert_eq!(
        analyst["data"]["observations"]["totalCount"], 0,
        "{analyst}"
    );
    assert_eq!(analyst["data"]["observations"]["edges"], json!([]));
}

#[tokio::test]
async fn a_role_that_does_not_fit_the_organisation_is_refused() {
    let hub = TestHub::spawn().await;
    let token = hub.token_for("TRUST:2015", "LA_OFFICER");
    let response = hub
        .post_graphql(Some(&token), &json!({ "query": "{ regions { code } }" }))
        .await;
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.expect("json");
    assert_eq!(code(&body), "UNAUTHENTICATED");
}

#[tokio::test]
async fn me_shows_organisation_roles_and_scopes() {
    let hub = TestHub::spawn().await;
    let document = "{ me { subject organisation { code kind } roles aggregate scopes { level kind code role } } }";
    let body = hub
        .query(
            Some(&hub.token_for("LOCAL_AUTHORITY:852", "LA_OFFICER")),
            document,
            json!({}),
        )
        .await;
    let me = &body["data"]["me"];
    assert_eq!(me["organisation"]["code"], "852", "{body}");
    assert_eq!(me["roles"], json!(["LA_OFFICER"]));
    assert_eq!(me["aggregate"], true);
    let scopes: Vec<(String, String)> = me["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["level"].as_str().unwrap().to_owned(),
                s["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for expected in [
        ("PUPIL", "MAINTAINED_SCHOOLS"),
        ("PUPIL", "RESIDENTS"),
        ("SCHOOL", "LOCAL_AUTHORITY"),
    ] {
        assert!(
            scopes.contains(&(expected.0.to_owned(), expected.1.to_owned())),
            "{expected:?} in {scopes:?}"
        );
    }
    let anonymous = hub.query(None, document, json!({})).await;
    assert_eq!(anonymous["data"]["me"], Value::Null);
}
