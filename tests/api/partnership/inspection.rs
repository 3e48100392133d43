//! Inspection-window help: the window from the last inspection date and the cycle,
//! the expert directory (contact details for the same region only, never cached) and
//! buddy pairings.

use hub_tests::{TestHub, error_code};
use serde_json::{Value, json};

use super::{SOUTH_EAST, ids, officer, ok, refused, schools_of};

const WINDOW: &str = r#"query($statuses: [InspectionWindowStatus!]) {
  inspectionWindow(filter: { laCode: "921", statuses: $statuses }, asOf: "2026-06-15", first: 50) {
    totalCount edges { node { school { urn } status lastInspectionDate windowOpensOn dueBy } }
  }
}"#;

/// Gives the Isle of Wight's schools known inspection dates: the first in its window,
/// the second overdue, the third never inspected, the rest recently inspected.
async fn arrange_isle_of_wight(hub: &TestHub) -> [i64; 3] {
    let urns = schools_of(hub, "921").await;
    assert!(
        urns.len() >= 3,
        "the test needs three open schools: {urns:?}"
    );
    hub.execute(
        "UPDATE school SET last_inspection_date = '2024-10-15' WHERE la_id = \
         (SELECT id FROM organisation WHERE kind = 'LOCAL_AUTHORITY' AND code = '921')",
    )
    .await;
    for (urn, date) in [
        (urns[0], "'2023-02-15'"),
        (urns[1], "'2022-04-15'"),
        (urns[2], "NULL"),
    ] {
        let changed = hub
            .execute(&format!(
                "UPDATE school SET last_inspection_date = {date} WHERE urn = {urn}"
            ))
            .await;
        assert_eq!(changed, 1);
    }
    [urns[0], urns[1], urns[2]]
}

fn entries(data: &Value) -> Vec<Value> {
    data["inspectionWindow"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

#[tokio::test]
async fn the_window_follows_the_last_inspection_date_and_the_cycle() {
    let hub = TestHub::spawn().await;
    let [in_window, overdue, never] = arrange_isle_of_wight(&hub).await;

    // Public, like the register it is computed from. Default cycle: due 48 months
    // after the last inspection, the window opening 12 months before that.
    let data = ok(&hub, None, WINDOW, json!({})).await;
    assert_eq!(data["inspectionWindow"]["totalCount"], 3);
    assert_eq!(
        entries(&data),
        vec![
            json!({ "school": { "urn": in_window }, "status": "IN_WINDOW",
                    "lastInspectionDate": "2023-02-15", "windowOpensOn": "2026-02-15",
                    "dueBy": "2027-02-15" }),
            json!({ "school": { "urn": overdue }, "status": "OVERDUE",
                    "lastInspectionDate": "2022-04-15", "windowOpensOn": "2025-04-15",
                    "dueBy": "2026-04-15" }),
            json!({ "school": { "urn": never }, "status": "NEVER_INSPECTED",
                    "lastInspectionDate": null, "windowOpensOn": null, "dueBy": null }),
        ]
    );
    let data = ok(&hub, None, WINDOW, json!({ "statuses": ["OVERDUE"] })).await;
    assert_eq!(data["inspectionWindow"]["totalCount"], 1);
    assert_eq!(entries(&data)[0]["school"]["urn"], overdue);

    // A six-year cycle: neither inspected school is due yet.
    let long = TestHub::spawn_with(&[
        ("INSPECTION_CYCLE_MONTHS", "72"),
        ("INSPECTION_WINDOW_MONTHS", "12"),
    ])
    .await;
    arrange_isle_of_wight(&long).await;
    let data = ok(&long, None, WINDOW, json!({})).await;
    let statuses: Vec<Value> = entries(&data).iter().map(|e| e["status"].clone()).collect();
    assert_eq!(statuses, vec![json!("NEVER_INSPECTED")]);

    let (code, _) = refused(&hub, None, WINDOW, json!({ "statuses": [] })).await;
    assert_eq!(code, "BAD_USER_INPUT");
}

const DIRECTORY: &str = r#"query Directory { inspectionExperts(first: 50) { totalCount edges { node {
    id name region { code } availability contact { email phone } } } } }"#;
const NAMES: &str =
    r#"query Names { inspectionExperts(first: 50) { edges { node { id name availability } } } }"#;

/// Sends a document; returns (x-cache, body).
async fn send(hub: &TestHub, token: Option<&str>, document: &str) -> (String, Value) {
    let response = hub.post_graphql(token, &json!({ "query": document })).await;
    assert_eq!(response.status(), 200);
    let cache = response.headers()["x-cache"].to_str().unwrap().to_owned();
    (cache, response.json().await.unwrap())
}

/// Name → whether its contact details were shown.
fn contacts(body: &Value) -> Vec<(String, String, bool)> {
    body["data"]["inspectionExperts"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let node = &e["node"];
            (
                node["name"].as_str().unwrap().to_owned(),
                node["region"]["code"].as_str().unwrap().to_owned(),
                node["contact"]["email"].is_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn contact_details_go_to_partners_of_the_same_region_only_and_are_never_cached() {
    let hub = TestHub::spawn().await;
    let southampton = officer(&hub, "852");
    let camden = officer(&hub, "202");
    let inspector = hub.token_for(&format!("INSPECTORATE:{SOUTH_EAST}"), "INSPECTOR");
    let analyst = hub.token_for("OTHER:RES-01", "ANALYST");

    for (token, region) in [
        (&southampton, Some(SOUTH_EAST)),
        (&inspector, Some(SOUTH_EAST)),
        (&camden, Some("E12000007")),
        (&analyst, None),
    ] {
        let (cache, body) = send(&hub, Some(token), DIRECTORY).await;
        assert_eq!(cache, "miss");
        let seen = contacts(&body);
        assert!(seen.len() >= 3, "{body}");
        assert!(seen.iter().any(|(_, r, _)| r == SOUTH_EAST));
        assert!(seen.iter().any(|(_, r, _)| r == "E12000007"));
        for (name, expert_region, shown) in seen {
            assert_eq!(
                shown,
                Some(expert_region.as_str()) == region,
                "{name} ({expert_region}) for a caller of {region:?}"
            );
        }
        // Asked again by the same caller: computed again, never replayed.
        let (cache, _) = send(&hub, Some(token), DIRECTORY).await;
        assert_eq!(
            cache, "miss",
            "an answer with contact details is never stored"
        );
    }
    // Without contact details the directory is cached like anything else.
    send(&hub, Some(&southampton), NAMES).await;
    let (cache, _) = send(&hub, Some(&southampton), NAMES).await;
    assert_eq!(cache, "hit");

    let (_, body) = send(&hub, None, DIRECTORY).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
    assert_eq!(body["data"], Value::Null);
    assert!(!body.to_string().contains('@'), "{body}");
}

#[tokio::test]
async fn the_directory_is_kept_by_the_employer_and_the_regions_rsc_office() {
    let hub = TestHub::spawn().await;
    let southampton = officer(&hub, "852");
    let camden = officer(&hub, "202");
    const ADD: &str = r#"mutation($input: NewInspectionExpert!) { addInspectionExpert(input: $input) {
        id organisation { code } availability contact { email phone } } }"#;
    let input = |email: &str| {
        json!({ "input": { "name": "Robin Shah", "jobTitle": "Deputy head, serving inspector",
                "phase": "PRIMARY", "expertise": "Early years and KS1", "email": email,
                "phone": "+44 23 8000 0000" } })
    };
    let data = ok(
        &hub,
        Some(&southampton),
        ADD,
        input("robin.shah@soton.example"),
    )
    .await;
    let added = &data["addInspectionExpert"];
    assert_eq!(added["organisation"]["code"], "852");
    assert_eq!(added["availability"], "AVAILABLE");
    assert_eq!(added["contact"]["email"], "robin.shah@soton.example");
    let id = added["id"].as_str().unwrap().to_owned();

    let (code, message) = refused(&hub, Some(&southampton), ADD, input("not an email")).await;
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(message.contains("email"), "{message}");

    const UPDATE: &str = r#"mutation($id: ID!, $change: InspectionExpertChange!) {
        updateInspectionExpert(id: $id, change: $change) { availability availabilityNote } }"#;
    let change = json!({ "id": id, "change": { "availability": "LIMITED",
                         "availabilityNote": "Not in July" } });
    let (code, _) = refused(&hub, Some(&camden), UPDATE, change.clone()).await;
    assert_eq!(code, "FORBIDDEN");
    let inspector = hub.token_for(&format!("INSPECTORATE:{SOUTH_EAST}"), "INSPECTOR");
    let (code, _) = refused(&hub, Some(&inspector), UPDATE, change.clone()).await;
    assert_eq!(code, "FORBIDDEN", "inspectors write nothing");
    let rsc = hub.token_for(&format!("RSC_OFFICE:{SOUTH_EAST}"), "RSC_OFFICER");
    let data = ok(&hub, Some(&rsc), UPDATE, change).await;
    assert_eq!(data["updateInspectionExpert"]["availability"], "LIMITED");
    assert_eq!(
        data["updateInspectionExpert"]["availabilityNote"],
        "Not in July"
    );
}

const PAIR: &str = r#"mutation($input: NewBuddyPairing!) { requestBuddyPairing(input: $input) {
    id status school { urn } buddy { name organisation { code } } } }"#;

async fn expert_named(hub: &TestHub, token: &str, name: &str) -> String {
    let data = ok(hub, Some(token), NAMES, json!({})).await;
    data["inspectionExperts"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["node"]["name"] == name)
        .and_then(|e| e["node"]["id"].as_str())
        .unwrap_or_else(|| panic!("{name} is in the seeded directory"))
        .to_owned()
}

async fn sees_pairing(hub: &TestHub, token: &str, id: &str) -> bool {
    let data = ok(
        hub,
        Some(token),
        "{ buddyPairings(first: 100) { totalCount edges { node { id } } } }",
        json!({}),
    )
    .await;
    let listed = ids(&data["buddyPairings"]);
    assert_eq!(data["buddyPairings"]["totalCount"], listed.len());
    listed.contains(&id.to_owned())
}

const ACCEPT: &str =
    "mutation($id: ID!) { acceptBuddyPairing(id: $id) { status respondedBy respondedAt } }";
const DECLINE: &str = "mutation($id: ID!) { declineBuddyPairing(id: $id) { status respondedBy } }";
const END: &str = "mutation($id: ID!) { endBuddyPairing(id: $id) { status endsOn endedBy } }";

#[tokio::test]
async fn a_buddy_pairing_is_asked_for_by_the_school_and_accepted_by_the_buddys_side() {
    let hub = TestHub::spawn().await;
    let southampton = officer(&hub, "852");
    let hampshire = officer(&hub, "850");
    let urn = schools_of(&hub, "852").await[3];
    let buddy = expert_named(&hub, &southampton, "Alex Morgan").await;
    let ask = |notes: &str| {
        json!({ "input": { "schoolUrn": urn, "buddyId": buddy, "startsOn": "2026-09-01",
                "notes": notes } })
    };
    let data = ok(&hub, Some(&southampton), PAIR, ask("Weekly calls")).await;
    let pairing = &data["requestBuddyPairing"];
    assert_eq!(pairing["status"], "REQUESTED");
    assert_eq!(pairing["buddy"]["organisation"]["code"], "850");
    let id = pairing["id"].as_str().unwrap().to_owned();

    let leader = hub.token_for(&format!("SCHOOL:{urn}"), "SCHOOL_LEADER");
    for (token, expected) in [
        (&southampton, true),
        (&leader, true),
        (&hampshire, true), // the buddy's employer, asked to accept
        (&officer(&hub, "851"), false),
        (&officer(&hub, "202"), false),
    ] {
        assert_eq!(sees_pairing(&hub, token, &id).await, expected);
    }
    let (code, _) = refused(&hub, None, "{ buddyPairings { totalCount } }", json!({})).await;
    assert_eq!(code, "UNAUTHENTICATED");

    // Only the buddy's side answers: not the school's side, not a stranger.
    for token in [&southampton, &leader, &officer(&hub, "851")] {
        let (code, _) = refused(&hub, Some(token), ACCEPT, json!({ "id": id })).await;
        assert_eq!(code, "FORBIDDEN");
    }
    let data = ok(&hub, Some(&hampshire), ACCEPT, json!({ "id": id })).await;
    assert_eq!(data["acceptBuddyPairing"]["status"], "ACTIVE");
    assert!(data["acceptBuddyPairing"]["respondedAt"].is_string());
    let (code, message) = refused(&hub, Some(&hampshire), ACCEPT, json!({ "id": id })).await;
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(message.contains("from ACTIVE"), "{message}");

    // Either side ends it: here the buddy's.
    let data = ok(&hub, Some(&hampshire), END, json!({ "id": id })).await;
    assert_eq!(data["endBuddyPairing"]["status"], "ENDED");
    assert!(data["endBuddyPairing"]["endsOn"].is_string());
    assert!(data["endBuddyPairing"]["endedBy"].is_string());
    let (code, _) = refused(&hub, Some(&leader), END, json!({ "id": id })).await;
    assert_eq!(code, "BAD_USER_INPUT");

    // A second request, declined; a declined request cannot be accepted or ended.
    let data = ok(&hub, Some(&leader), PAIR, ask("Half-termly")).await;
    let second = data["requestBuddyPairing"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let data = ok(&hub, Some(&hampshire), DECLINE, json!({ "id": second })).await;
    assert_eq!(data["declineBuddyPairing"]["status"], "DECLINED");
    for document in [ACCEPT, END] {
        let (code, _) = refused(&hub, Some(&hampshire), document, json!({ "id": second })).await;
        assert_eq!(code, "BAD_USER_INPUT");
    }
    // A third, withdrawn by the school's side before it is answered.
    let data = ok(&hub, Some(&southampton), PAIR, ask("")).await;
    let third = data["requestBuddyPairing"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let data = ok(&hub, Some(&leader), END, json!({ "id": third })).await;
    assert_eq!(data["endBuddyPairing"]["status"], "ENDED");

    // Who may ask: not another LA's officer, not the RSC office, not an inspector; and
    // a buddy who is unavailable cannot be asked.
    let hampshire_school = schools_of(&hub, "850").await[0];
    let (code, _) = refused(
        &hub,
        Some(&southampton),
        PAIR,
        json!({ "input": { "schoolUrn": hampshire_school, "buddyId": buddy, "startsOn": "2026-09-01" } }),
    )
    .await;
    assert_eq!(code, "FORBIDDEN");
    for outsider in [
        hub.token_for(&format!("INSPECTORATE:{SOUTH_EAST}"), "INSPECTOR"),
        hub.token_for(&format!("RSC_OFFICE:{SOUTH_EAST}"), "RSC_OFFICER"),
        hampshire.clone(),
    ] {
        let (code, _) = refused(&hub, Some(&outsider), PAIR, ask("x")).await;
        assert_eq!(code, "FORBIDDEN");
    }
    ok(
        &hub,
        Some(&hampshire),
        r#"mutation($id: ID!) { updateInspectionExpert(id: $id, change: { availability: UNAVAILABLE }) { id } }"#,
        json!({ "id": buddy }),
    )
    .await;
    let (code, message) = refused(&hub, Some(&southampton), PAIR, ask("x")).await;
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(message.contains("unavailable"), "{message}");
}
