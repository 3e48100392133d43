//! Peer reviews: planned → in progress → completed, findings and agreed actions,
//! visible to participants and — once shared — to the region's RSC office and
//! inspectorate team.

use hub_tests::{TestHub, error_code};
use serde_json::{Value, json};

use super::{SOUTH_EAST, ids, officer, ok, refused};

const FIELDS: &str = "id status findings sharedAt reviewed { code }
    participants { organisation { code } role }
    actions { id description owner { code } ownerName dueOn status }";

/// Southampton commissions a triad review of itself by Hampshire (lead) and
/// Portsmouth.
async fn commission(hub: &TestHub) -> String {
    let data = ok(
        hub,
        Some(&officer(hub, "852")),
        &format!(
            "mutation($input: NewPeerReview!) {{ createPeerReview(input: $input) {{ {FIELDS} }} }}"
        ),
        triad(&["LOCAL_AUTHORITY:850", "LOCAL_AUTHORITY:851"]),
    )
    .await;
    let review = &data["createPeerReview"];
    assert_eq!(review["status"], "PLANNED");
    assert_eq!(
        sorted_by_code(review["participants"].as_array().unwrap().clone()),
        json!([
            { "organisation": { "code": "850" }, "role": "LEAD_REVIEWER" },
            { "organisation": { "code": "851" }, "role": "REVIEWER" },
            { "organisation": { "code": "852" }, "role": "REVIEWED" },
        ])
    );
    review["id"].as_str().unwrap().to_owned()
}

fn sorted_by_code(mut participants: Vec<Value>) -> Value {
    participants.sort_by_key(|p| p["organisation"]["code"].as_str().unwrap_or("").to_owned());
    Value::Array(participants)
}

fn triad(reviewers: &[&str]) -> Value {
    let reviewers: Vec<Value> = reviewers
        .iter()
        .enumerate()
        .map(|(i, r)| json!({ "organisation": r, "lead": i == 0 }))
        .collect();
    json!({ "input": {
        "format": "TRIAD", "theme": "SEND", "title": "South Coast triad: SEND",
        "startsOn": "2026-01-12", "endsOn": "2026-01-14", "reviewers": reviewers
    } })
}

async fn act(hub: &TestHub, token: &str, mutation: &str, id: &str) -> Value {
    hub.query(
        Some(token),
        &format!("mutation($id: ID!) {{ {mutation}(id: $id) {{ {FIELDS} }} }}"),
        json!({ "id": id }),
    )
    .await
}

async fn sees(hub: &TestHub, token: &str, id: &str) -> bool {
    let data = ok(
        hub,
        Some(token),
        "{ peerReviews(first: 100) { totalCount edges { node { id } } } }",
        json!({}),
    )
    .await;
    let listed = ids(&data["peerReviews"]);
    assert_eq!(data["peerReviews"]["totalCount"], listed.len());
    let body = hub
        .query(
            Some(token),
            "query($id: ID!) { peerReview(id: $id) { id } }",
            json!({ "id": id }),
        )
        .await;
    let direct = match error_code(&body) {
        "<none>" => true,
        "FORBIDDEN" => false,
        other => panic!("unexpected {other}: {body}"),
    };
    assert_eq!(listed.contains(&id.to_owned()), direct);
    direct
}

#[tokio::test]
async fn a_peer_review_runs_from_plan_to_findings_and_actions() {
    let hub = TestHub::spawn().await;
    let id = commission(&hub).await;
    let hampshire = officer(&hub, "850");
    let southampton = officer(&hub, "852");

    // Not before it has started, and not without findings.
    let body = act(&hub, &hampshire, "completePeerReview", &id).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!(
            "cannot move peer review {id} from PLANNED to COMPLETED"
        )),
        "{message}"
    );
    let body = act(&hub, &hampshire, "startPeerReview", &id).await;
    assert_eq!(
        body["data"]["startPeerReview"]["status"], "IN_PROGRESS",
        "{body}"
    );
    let body = act(&hub, &hampshire, "completePeerReview", &id).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "no findings yet");

    let data = ok(
        &hub,
        Some(&hampshire),
        &format!("mutation($id: ID!) {{ recordPeerReviewFindings(id: $id, findings: \"Strong EHCP timeliness; weak transition planning.\") {{ {FIELDS} }} }}"),
        json!({ "id": id }),
    )
    .await;
    assert!(
        data["recordPeerReviewFindings"]["findings"]
            .as_str()
            .unwrap()
            .starts_with("Strong")
    );
    let body = act(&hub, &hampshire, "completePeerReview", &id).await;
    assert_eq!(
        body["data"]["completePeerReview"]["status"], "COMPLETED",
        "{body}"
    );
    let body = act(&hub, &hampshire, "startPeerReview", &id).await;
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("COMPLETED is final"),
        "{body}"
    );

    const ADD: &str = r#"mutation($id: ID!, $input: NewPeerReviewAction!) {
        addPeerReviewAction(reviewId: $id, input: $input) { actions { id owner { code } ownerName dueOn status } } }"#;
    let data = ok(
        &hub,
        Some(&southampton),
        ADD,
        json!({ "id": id, "input": { "description": "Transition plans for every EHCP in year 6",
                "owner": "LOCAL_AUTHORITY:852", "ownerName": "SEND lead", "dueOn": "2026-07-17" } }),
    )
    .await;
    let action = &data["addPeerReviewAction"]["actions"][0];
    assert_eq!(action["owner"]["code"], "852");
    assert_eq!(action["dueOn"], "2026-07-17");
    assert_eq!(action["status"], "OPEN");
    let (code, message) = refused(
        &hub,
        Some(&southampton),
        ADD,
        json!({ "id": id, "input": { "description": "x", "owner": "LOCAL_AUTHORITY:202",
                "dueOn": "2026-07-17" } }),
    )
    .await;
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(message.contains("does not take part"), "{message}");

    let action_id = action["id"].as_str().unwrap().to_owned();
    let body = act(&hub, &southampton, "completePeerReviewAction", &action_id).await;
    assert_eq!(
        body["data"]["completePeerReviewAction"]["actions"][0]["status"], "DONE",
        "{body}"
    );
    let body = act(&hub, &southampton, "completePeerReviewAction", &action_id).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");

    // A triad is three organisations.
    let (code, message) = refused(
        &hub,
        Some(&southampton),
        "mutation($input: NewPeerReview!) { createPeerReview(input: $input) { id } }",
        triad(&["LOCAL_AUTHORITY:850"]),
    )
    .await;
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(message.contains("triad"), "{message}");
}

#[tokio::test]
async fn participants_see_a_review_and_the_region_sees_it_once_shared() {
    let hub = TestHub::spawn().await;
    let id = commission(&hub).await;
    let southampton = officer(&hub, "852");
    let hampshire = officer(&hub, "850");
    let wight = officer(&hub, "921");
    let rsc = hub.token_for(&format!("RSC_OFFICE:{SOUTH_EAST}"), "RSC_OFFICER");
    let inspector = hub.token_for(&format!("INSPECTORATE:{SOUTH_EAST}"), "INSPECTOR");
    let london_rsc = hub.token_for("RSC_OFFICE:E12000007", "RSC_OFFICER");

    for participant in [&southampton, &hampshire, &officer(&hub, "851")] {
        assert!(sees(&hub, participant, &id).await);
    }
    for outsider in [&wight, &rsc, &inspector, &london_rsc] {
        assert!(!sees(&hub, outsider, &id).await);
    }

    // Only the reviewed organisation shares it; a reviewer may not.
    let body = act(&hub, &hampshire, "sharePeerReview", &id).await;
    assert_eq!(error_code(&body), "FORBIDDEN");
    let body = act(&hub, &southampton, "sharePeerReview", &id).await;
    assert!(
        body["data"]["sharePeerReview"]["sharedAt"].is_string(),
        "{body}"
    );
    assert!(sees(&hub, &rsc, &id).await);
    assert!(sees(&hub, &inspector, &id).await);
    assert!(
        !sees(&hub, &wight, &id).await,
        "other LAs of the region: still no"
    );
    assert!(!sees(&hub, &london_rsc, &id).await);

    // Seeing is not writing: the inspectorate and the RSC office change nothing.
    for reader in [&inspector, &rsc] {
        let body = act(&hub, reader, "startPeerReview", &id).await;
        assert_eq!(error_code(&body), "FORBIDDEN");
    }
    let (code, _) = refused(
        &hub,
        Some(&wight),
        "mutation($input: NewPeerReview!) { createPeerReview(input: $input) { id } }",
        {
            let mut input = triad(&["LOCAL_AUTHORITY:850", "LOCAL_AUTHORITY:851"]);
            input["input"]["reviewed"] = json!("LOCAL_AUTHORITY:852");
            input
        },
    )
    .await;
    assert_eq!(
        code, "FORBIDDEN",
        "an LA cannot commission a review of another"
    );
    let (code, _) = refused(&hub, None, "{ peerReviews { totalCount } }", json!({})).await;
    assert_eq!(code, "UNAUTHENTICATED");
}

#[tokio::test]
async fn a_page_of_peer_reviews_loads_participants_and_actions_in_a_fixed_number_of_statements() {
    let hub = TestHub::spawn_with(&[("CACHE_TTL_SECONDS", "0")]).await;
    let hampshire = officer(&hub, "850");
    for _ in 0..3 {
        let id = commission(&hub).await;
        act(&hub, &hampshire, "startPeerReview", &id).await;
        ok(
            &hub,
            Some(&hampshire),
            r#"mutation($id: ID!) { addPeerReviewAction(reviewId: $id, input: { description: "Plan",
                owner: "LOCAL_AUTHORITY:850", dueOn: "2026-07-17" }) { id } }"#,
            json!({ "id": id }),
        )
        .await;
    }
    const PAGE: &str = r#"query($first: Int!) { peerReviews(first: $first, filter: { status: IN_PROGRESS }) {
        totalCount edges { node { title reviewed { name }
          participants { organisation { name } role } actions { owner { name } dueOn } } } } }"#;
    let one = super::statements_for(&hub, &hampshire, PAGE, json!({ "first": 1 })).await;
    let three = super::statements_for(&hub, &hampshire, PAGE, json!({ "first": 3 })).await;
    assert_eq!(one, three, "statements must not grow with the page");
}
