//! Self-evaluations: draft → shared → reviewed, versions kept, illegal moves refused,
//! visibility by audience, key figures read live under the reader's access.

use hub_tests::TestHub;
use serde_json::{Value, json};

use super::{count, ids, officer, ok, refused, schools_of};

const FIELDS: &str = "id status version title audience sections { heading judgement narrative }
    priorities keyIndicators organisation { code } partners { code } reviewedBy { code }
    reviewComment";

fn create_doc() -> String {
    format!(
        "mutation($input: NewSelfEvaluation!) {{ createSelfEvaluation(input: $input) {{ {FIELDS} }} }}"
    )
}

fn draft(title: &str) -> Value {
    json!({ "input": {
        "period": "2024/25", "title": title,
        "sections": [{ "heading": "Attendance", "judgement": "NEEDS_ATTENTION",
                       "narrative": "Persistent absence is high." }],
        "priorities": ["Reduce persistent absence"],
        "keyIndicators": ["persistent_absence_rate"]
    } })
}

async fn create(hub: &TestHub, token: &str, title: &str) -> String {
    let data = ok(hub, Some(token), &create_doc(), draft(title)).await;
    data["createSelfEvaluation"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn share(hub: &TestHub, token: &str, id: &str, audience: &str, partners: &[&str]) -> Value {
    hub.query(
        Some(token),
        &format!(
            "mutation($id: ID!, $audience: Audience!, $partners: [String!]!) {{
                shareSelfEvaluation(id: $id, audience: $audience, partners: $partners) {{ {FIELDS} }} }}"
        ),
        json!({ "id": id, "audience": audience, "partners": partners }),
    )
    .await
}

async fn review(hub: &TestHub, token: &str, id: &str) -> Value {
    hub.query(
        Some(token),
        &format!(
            "mutation($id: ID!) {{ reviewSelfEvaluation(id: $id, comment: \"Convincing on attendance.\") {{ {FIELDS} }} }}"
        ),
        json!({ "id": id }),
    )
    .await
}

async fn withdraw(hub: &TestHub, token: &str, id: &str) -> Value {
    hub.query(
        Some(token),
        "mutation($id: ID!) { withdrawSelfEvaluation(id: $id) { id status audience } }",
        json!({ "id": id }),
    )
    .await
}

/// Whether a caller sees the evaluation, in the list (with a matching totalCount) and
/// directly; the two must agree.
async fn sees(hub: &TestHub, token: Option<&str>, id: &str) -> bool {
    let data = ok(
        hub,
        token,
        "{ selfEvaluations(first: 100) { totalCount edges { node { id } } } }",
        json!({}),
    )
    .await;
    let listed = ids(&data["selfEvaluations"]);
    assert_eq!(
        data["selfEvaluations"]["totalCount"],
        listed.len(),
        "totalCount counts what the list shows"
    );
    let body = hub
        .query(
            token,
            "query($id: ID!) { selfEvaluation(id: $id) { id } }",
            json!({ "id": id }),
        )
        .await;
    let direct = match hub_tests::error_code(&body) {
        "<none>" => true,
        "FORBIDDEN" => false,
        other => panic!("unexpected {other}: {body}"),
    };
    assert_eq!(
        listed.contains(&id.to_owned()),
        direct,
        "list and direct read agree"
    );
    direct
}

#[tokio::test]
async fn a_self_evaluation_runs_draft_shared_reviewed_and_keeps_its_versions() {
    let hub = TestHub::spawn().await;
    let southampton = officer(&hub, "852");
    let hampshire = officer(&hub, "850");
    let writes_before = count(&hub, "audit_event", "action = 'WRITE'").await;

    let data = ok(
        &hub,
        Some(&southampton),
        &create_doc(),
        draft("Inclusion 2024/25"),
    )
    .await;
    let created = &data["createSelfEvaluation"];
    assert_eq!(created["status"], "DRAFT");
    assert_eq!(created["version"], 1);
    assert_eq!(created["organisation"]["code"], "852");
    assert_eq!(created["sections"][0]["judgement"], "NEEDS_ATTENTION");
    let id = created["id"].as_str().unwrap().to_owned();

    let edit = format!(
        "mutation($id: ID!, $input: SelfEvaluationEdit!) {{ editSelfEvaluation(id: $id, input: $input) {{ {FIELDS} }} }}"
    );
    let data = ok(
        &hub,
        Some(&southampton),
        &edit,
        json!({ "id": id, "input": { "title": "Inclusion 2024/25 (revised)", "expectedVersion": 1,
                "priorities": ["Reduce persistent absence", "Close the attendance gap"] } }),
    )
    .await;
    let edited = &data["editSelfEvaluation"];
    assert_eq!(edited["version"], 2);
    assert_eq!(edited["priorities"].as_array().unwrap().len(), 2);
    assert_eq!(
        edited["sections"], created["sections"],
        "fields left out keep their text"
    );
    // An edit made on an old version is refused, not merged.
    let (code, message) = refused(
        &hub,
        Some(&southampton),
        &edit,
        json!({ "id": id, "input": { "title": "Stale", "expectedVersion": 1 } }),
    )
    .await;
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(message.contains("version 2"), "{message}");

    let body = share(
        &hub,
        &southampton,
        &id,
        "PARTNERS",
        &["LOCAL_AUTHORITY:850"],
    )
    .await;
    let shared = &body["data"]["shareSelfEvaluation"];
    assert_eq!(shared["status"], "SHARED", "{body}");
    assert_eq!(shared["partners"], json!([{ "code": "850" }]));

    // The author does not review itself; a named partner does.
    let body = review(&hub, &southampton, &id).await;
    assert_eq!(hub_tests::error_code(&body), "FORBIDDEN");
    let body = review(&hub, &hampshire, &id).await;
    let reviewed = &body["data"]["reviewSelfEvaluation"];
    assert_eq!(reviewed["status"], "REVIEWED", "{body}");
    assert_eq!(reviewed["reviewedBy"]["code"], "850");

    let (code, message) = refused(
        &hub,
        Some(&southampton),
        &edit,
        json!({ "id": id, "input": { "title": "Too late" } }),
    )
    .await;
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(message.contains("REVIEWED"), "{message}");

    let data = ok(
        &hub,
        Some(&hampshire),
        "query($id: ID!) { selfEvaluation(id: $id) { versions { totalCount edges { node { version title editedBy } } } } }",
        json!({ "id": id }),
    )
    .await;
    let versions = &data["selfEvaluation"]["versions"];
    assert_eq!(versions["totalCount"], 2);
    assert_eq!(versions["edges"][0]["node"]["title"], "Inclusion 2024/25");
    assert_eq!(
        versions["edges"][1]["node"]["title"],
        "Inclusion 2024/25 (revised)"
    );
    assert_eq!(versions["edges"][0]["node"]["editedBy"], "test-user");
    // create, edit, share, review: four writes, each audited with the change.
    assert_eq!(
        count(&hub, "audit_event", "action = 'WRITE'").await - writes_before,
        4
    );
    assert_eq!(
        count(
            &hub,
            "audit_event",
            &format!("scope = 'self_evaluation:{id}'")
        )
        .await,
        4
    );
}

#[tokio::test]
async fn illegal_moves_are_refused_naming_the_move() {
    let hub = TestHub::spawn().await;
    let southampton = officer(&hub, "852");
    let rsc = hub.token_for(&format!("RSC_OFFICE:{}", super::SOUTH_EAST), "RSC_OFFICER");
    let id = create(&hub, &southampton, "Moves").await;

    let body = withdraw(&hub, &southampton, &id).await;
    assert_eq!(hub_tests::error_code(&body), "BAD_USER_INPUT");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!(
            "cannot move self-evaluation {id} from DRAFT to DRAFT"
        )),
        "{message}"
    );
    assert!(message.contains("it can move to SHARED"), "{message}");

    let body = share(&hub, &southampton, &id, "REGION", &[]).await;
    assert_eq!(
        body["data"]["shareSelfEvaluation"]["audience"], "REGION",
        "{body}"
    );
    let body = share(&hub, &southampton, &id, "REGION", &[]).await;
    assert_eq!(hub_tests::error_code(&body), "BAD_USER_INPUT");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("from SHARED to SHARED"),
        "{body}"
    );

    // The region's RSC office reviews what is shared with the region; after that the
    // evaluation is final, and the office does not review it twice.
    let body = review(&hub, &rsc, &id).await;
    assert_eq!(
        body["data"]["reviewSelfEvaluation"]["status"], "REVIEWED",
        "{body}"
    );
    let body = review(&hub, &rsc, &id).await;
    assert_eq!(hub_tests::error_code(&body), "BAD_USER_INPUT");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("already been reviewed by"),
        "{body}"
    );
    let body = withdraw(&hub, &southampton, &id).await;
    assert_eq!(hub_tests::error_code(&body), "BAD_USER_INPUT");

    // Bad input of other kinds is named too.
    let mut no_title = draft(" ");
    no_title["input"]["keyIndicators"] = json!([]);
    let (code, message) = refused(&hub, Some(&southampton), &create_doc(), no_title).await;
    assert_eq!(
        (code.as_str(), message.as_str()),
        ("BAD_USER_INPUT", "title is required")
    );
    let mut unknown = draft("Unknown indicator");
    unknown["input"]["keyIndicators"] = json!(["made_up_rate"]);
    let (code, message) = refused(&hub, Some(&southampton), &create_doc(), unknown).await;
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(message.contains("made_up_rate"), "{message}");
    let body = share(&hub, &southampton, "not-an-id", "REGION", &[]).await;
    assert_eq!(hub_tests::error_code(&body), "NOT_FOUND");
}

#[tokio::test]
async fn a_self_evaluation_is_seen_by_its_author_and_its_audience_only() {
    let hub = TestHub::spawn().await;
    let southampton = officer(&hub, "852");
    let hampshire = officer(&hub, "850");
    let portsmouth = officer(&hub, "851");
    let camden = officer(&hub, "202");
    let colleague = hub.token_for("LOCAL_AUTHORITY:852", "ANALYST");
    let inspector = hub.token_for(&format!("INSPECTORATE:{}", super::SOUTH_EAST), "INSPECTOR");
    let id = create(&hub, &southampton, "Visibility").await;

    // A draft: the author's organisation only.
    assert!(sees(&hub, Some(&southampton), &id).await);
    assert!(sees(&hub, Some(&colleague), &id).await, "any of its staff");
    for other in [&hampshire, &portsmouth, &inspector, &camden] {
        assert!(!sees(&hub, Some(other), &id).await);
    }
    let (code, _) = refused(
        &hub,
        None,
        "query($id: ID!) { selfEvaluation(id: $id) { id } }",
        json!({ "id": id }),
    )
    .await;
    assert_eq!(code, "UNAUTHENTICATED");
    let sync = hub.token_for("LOCAL_AUTHORITY:852", "SYNC_AGENT");
    let (code, _) = refused(
        &hub,
        Some(&sync),
        "{ selfEvaluations { totalCount } }",
        json!({}),
    )
    .await;
    assert_eq!(code, "FORBIDDEN", "service accounts take no part");

    // Shared with a named partner: that partner too.
    share(
        &hub,
        &southampton,
        &id,
        "PARTNERS",
        &["LOCAL_AUTHORITY:850"],
    )
    .await;
    assert!(sees(&hub, Some(&hampshire), &id).await);
    assert!(!sees(&hub, Some(&portsmouth), &id).await);
    assert!(!sees(&hub, Some(&inspector), &id).await);

    // Withdrawn, then shared with the region: every partner of the South East, nobody
    // in London.
    withdraw(&hub, &southampton, &id).await;
    assert!(
        !sees(&hub, Some(&hampshire), &id).await,
        "withdrawn means hidden again"
    );
    share(&hub, &southampton, &id, "REGION", &[]).await;
    for partner in [&hampshire, &portsmouth, &inspector] {
        assert!(sees(&hub, Some(partner), &id).await);
    }
    assert!(!sees(&hub, Some(&camden), &id).await);

    // Only the author's officers write it; inspectors and analysts write nothing.
    let body = withdraw(&hub, &hampshire, &id).await;
    assert_eq!(hub_tests::error_code(&body), "FORBIDDEN");
    for writer in [&inspector, &colleague] {
        let (code, _) = refused(&hub, Some(writer), &create_doc(), draft("Not mine")).await;
        assert_eq!(code, "FORBIDDEN");
    }
    let rsc = hub.token_for(&format!("RSC_OFFICE:{}", super::SOUTH_EAST), "RSC_OFFICER");
    let (code, _) = refused(&hub, Some(&rsc), &create_doc(), draft("RSC")).await;
    assert_eq!(
        code, "FORBIDDEN",
        "RSC officers write support records, not evaluations"
    );
}

#[tokio::test]
async fn key_figures_are_read_live_under_the_readers_access() {
    let hub = TestHub::spawn_with(&[("CACHE_TTL_SECONDS", "0")]).await;
    let urn = schools_of(&hub, "852").await[0];
    let leader = hub.token_for(&format!("SCHOOL:{urn}"), "SCHOOL_LEADER");
    let mut input = draft("Our school");
    input["input"]["keyIndicators"] = json!(["attendance_rate"]);
    let data = ok(&hub, Some(&leader), &create_doc(), input).await;
    let id = data["createSelfEvaluation"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    share(&hub, &leader, &id, "REGION", &[]).await;

    const KEY_FIGURES: &str = r#"query($id: ID!) { selfEvaluation(id: $id) { level areaCode
        keyFigures(years: 1) { indicatorCode pupilGroup level areaCode points { period value } } } }"#;
    let value = |data: &Value| {
        data["selfEvaluation"]["keyFigures"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["pupilGroup"] == "ALL")
            .map(|s| s["points"][0]["value"].clone())
            .unwrap()
    };
    let data = ok(&hub, Some(&leader), KEY_FIGURES, json!({ "id": id })).await;
    assert_eq!(data["selfEvaluation"]["level"], "SCHOOL");
    assert_eq!(data["selfEvaluation"]["areaCode"], urn.to_string());

    // The figure is a reference: a new figure in the baseline is what the next read
    // shows.
    let changed = hub
        .execute(&format!(
            "UPDATE observation SET value = 91.25 WHERE indicator_code = 'attendance_rate' \
             AND geographic_level = 'SCHOOL' AND area_code = '{urn}' AND pupil_group = 'ALL' \
             AND period = '2024/25'"
        ))
        .await;
    assert_eq!(changed, 1);
    let data = ok(&hub, Some(&leader), KEY_FIGURES, json!({ "id": id })).await;
    assert_eq!(value(&data), json!(91.25));

    // The region's RSC office holds SCHOOL scope over the school; Hampshire, which the
    // evaluation is shared with, does not — it reads the text, never the figures.
    let rsc = hub.token_for(&format!("RSC_OFFICE:{}", super::SOUTH_EAST), "RSC_OFFICER");
    let data = ok(&hub, Some(&rsc), KEY_FIGURES, json!({ "id": id })).await;
    assert_eq!(value(&data), json!(91.25));
    let hampshire = officer(&hub, "850");
    let body = hub
        .query(Some(&hampshire), KEY_FIGURES, json!({ "id": id }))
        .await;
    assert_eq!(hub_tests::error_code(&body), "FORBIDDEN", "{body}");
    let text = ok(
        &hub,
        Some(&hampshire),
        "query($id: ID!) { selfEvaluation(id: $id) { title priorities } }",
        json!({ "id": id }),
    )
    .await;
    assert_eq!(text["selfEvaluation"]["title"], "Our school");
}

#[tokio::test]
async fn a_page_of_self_evaluations_loads_its_text_and_organisations_in_a_fixed_number_of_statements()
 {
    let hub = TestHub::spawn_with(&[("CACHE_TTL_SECONDS", "0")]).await;
    let southampton = officer(&hub, "852");
    for n in 0..3 {
        let id = create(&hub, &southampton, &format!("Evaluation {n}")).await;
        share(
            &hub,
            &southampton,
            &id,
            "PARTNERS",
            &["LOCAL_AUTHORITY:850", "LOCAL_AUTHORITY:851"],
        )
        .await;
    }
    const PAGE: &str = r#"query($first: Int!) { selfEvaluations(first: $first, filter: { status: SHARED }) {
        totalCount edges { node { title version sections { heading } priorities keyIndicators
          organisation { name } partners { name } reviewedBy { name } } } } }"#;
    let one = super::statements_for(&hub, &southampton, PAGE, json!({ "first": 1 })).await;
    let three = super::statements_for(&hub, &southampton, PAGE, json!({ "first": 3 })).await;
    assert_eq!(one, three, "statements must not grow with the page");
}

#[tokio::test]
async fn several_partners_review_one_self_evaluation_each_in_a_record_of_its_own() {
    let hub = TestHub::spawn().await;
    let southampton = officer(&hub, "852");
    let hampshire = officer(&hub, "850");
    let portsmouth = officer(&hub, "851");
    let id = create(&hub, &southampton, "Inclusion 2024/25").await;
    let body = share(
        &hub,
        &southampton,
        &id,
        "PARTNERS",
        &["LOCAL_AUTHORITY:850", "LOCAL_AUTHORITY:851"],
    )
    .await;
    assert_eq!(
        body["data"]["shareSelfEvaluation"]["status"], "SHARED",
        "{body}"
    );

    let body = review(&hub, &hampshire, &id).await;
    assert_eq!(
        body["data"]["reviewSelfEvaluation"]["status"], "REVIEWED",
        "{body}"
    );
    // A second partner it is shared with reviews it too.
    let body = hub
        .query(
            Some(&portsmouth),
            r#"mutation($id: ID!) { reviewSelfEvaluation(id: $id, comment: "Strong on inclusion.") { status } }"#,
            json!({ "id": id }),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(body["data"]["reviewSelfEvaluation"]["status"], "REVIEWED");
    let data = ok(
        &hub,
        Some(&southampton),
        "query($id: ID!) { selfEvaluation(id: $id) {
            reviews { organisation { code } version comment reviewer reviewedAt } } }",
        json!({ "id": id }),
    )
    .await;
    let reviews = data["selfEvaluation"]["reviews"].as_array().unwrap();
    let who: Vec<(&str, &str)> = reviews
        .iter()
        .map(|r| {
            (
                r["organisation"]["code"].as_str().unwrap(),
                r["comment"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        who,
        vec![
            ("850", "Convincing on attendance."),
            ("851", "Strong on inclusion.")
        ]
    );
    assert!(
        reviews
            .iter()
            .all(|r| r["version"] == 1 && r["reviewer"].is_string())
    );
    assert_eq!(
        count(
            &hub,
            "self_evaluation_review",
            &format!("self_evaluation_id = {id}")
        )
        .await,
        2
    );

    // Each partner once; never the author; never a partner it is not shared with; and
    // the text stays final.
    let body = review(&hub, &hampshire, &id).await;
    assert_eq!(hub_tests::error_code(&body), "BAD_USER_INPUT", "{body}");
    for token in [&southampton, &officer(&hub, "921")] {
        let body = review(&hub, token, &id).await;
        assert_eq!(hub_tests::error_code(&body), "FORBIDDEN", "{body}");
    }
    let (code, _) = refused(
        &hub,
        Some(&southampton),
        "mutation($id: ID!) { editSelfEvaluation(id: $id, input: { title: \"Later\" }) { version } }",
        json!({ "id": id }),
    )
    .await;
    assert_eq!(code, "BAD_USER_INPUT");

    // Every reader of the evaluation sees both reviews, with the first still answering
    // the older single-review fields.
    let data = ok(
        &hub,
        Some(&portsmouth),
        "query($id: ID!) { selfEvaluation(id: $id) { reviewedBy { code } reviews { organisation { code } } } }",
        json!({ "id": id }),
    )
    .await;
    assert_eq!(data["selfEvaluation"]["reviewedBy"]["code"], "850");
    assert_eq!(
        data["selfEvaluation"]["reviews"].as_array().unwrap().len(),
        2
    );
}
