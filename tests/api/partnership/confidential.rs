//! Confidential partnership records: buddy pairings (with their notes) and support
//! requests marked confidential are seen by their two sides and the school's own LA or
//! trust only — never by the inspectorate, whose SCHOOL scope covers the region — by
//! every path: lists, one record, fields nested in other records, federation's
//! `_entities`, and the response cache.
//!
//! The seed gives Southampton's first open school an accepted buddy from Hampshire
//! ("Fortnightly calls until the inspection.") and posts a confidential request about
//! its third ("Head would value a conversation with a serving inspector").

use hub_tests::{TestHub, error_code};
use serde_json::{Value, json};

use super::{SOUTH_EAST, ids, officer, ok, refused, schools_of};

const PAIRING_NOTE: &str = "Fortnightly calls until the inspection.";
const REQUEST_TITLE: &str = "Head would value a conversation with a serving inspector";

/// Sends a document; returns (x-cache, body), failing on any error.
async fn send(hub: &TestHub, token: &str, document: &str, variables: Value) -> (String, Value) {
    let response = hub
        .post_graphql(
            Some(token),
            &json!({ "query": document, "variables": variables }),
        )
        .await;
    assert_eq!(response.status(), 200);
    let cache = response.headers()["x-cache"].to_str().unwrap().to_owned();
    let body: Value = response.json().await.unwrap();
    assert!(body.get("errors").is_none(), "unexpected errors: {body}");
    (cache, body)
}

/// Every kind of partner, with whether it is a side of the seeded accepted pairing
/// (Southampton's first school, Southampton, the buddy's employer Hampshire), and how
/// many pairings it is a side of: Southampton's second school has asked Portsmouth's
/// serving inspector too.
fn pairing_readers(hub: &TestHub, urn: i64) -> Vec<(&'static str, String, bool, usize)> {
    vec![
        (
            "Southampton (the school's LA)",
            officer(hub, "852"),
            true,
            2,
        ),
        (
            "the school's leader",
            hub.token_for(&format!("SCHOOL:{urn}"), "SCHOOL_LEADER"),
            true,
            1,
        ),
        (
            "Hampshire (the buddy's employer)",
            officer(hub, "850"),
            true,
            1,
        ),
        (
            "the inspectorate",
            hub.token_for(&format!("INSPECTORATE:{SOUTH_EAST}"), "INSPECTOR"),
            false,
            0,
        ),
        (
            "the RSC office",
            hub.token_for(&format!("RSC_OFFICE:{SOUTH_EAST}"), "RSC_OFFICER"),
            false,
            0,
        ),
        (
            "Portsmouth (the other buddy's employer)",
            officer(hub, "851"),
            false,
            1,
        ),
        ("Camden", officer(hub, "202"), false, 0),
        (
            "an analyst",
            hub.token_for("OTHER:RES-01", "ANALYST"),
            false,
            0,
        ),
        ("the hub", hub.token_for("HUB:HUB", "HUB_ADMIN"), false, 0),
    ]
}

#[tokio::test]
async fn the_inspectorate_sees_no_buddy_pairing_by_any_path() {
    let hub = TestHub::spawn().await;
    let urn = schools_of(&hub, "852").await[0];
    // In its window, so the public window lists it with its pairings nested.
    hub.execute(&format!(
        "UPDATE school SET last_inspection_date = '2022-01-10' WHERE urn = {urn}"
    ))
    .await;
    const LIST: &str = "query Pairings { buddyPairings(first: 100) { totalCount
        edges { node { id notes school { urn } buddy { name } } } } }";
    const NESTED: &str = r#"query Window { inspectionWindow(filter: { laCode: "852" }, first: 100) {
        edges { node { school { urn } buddyPairings { id notes } } } } }"#;

    // The first reader is a side, so the cache holds an answer with the pairing in it
    // before anyone else asks the same document.
    for (who, token, side, pairings) in pairing_readers(&hub, urn) {
        let (_, body) = send(&hub, &token, LIST, json!({})).await;
        let seen = body.to_string().contains(PAIRING_NOTE);
        assert_eq!(seen, side, "{who}: {body}");
        let listed = ids(&body["data"]["buddyPairings"]);
        assert_eq!(
            body["data"]["buddyPairings"]["totalCount"],
            listed.len(),
            "{who}"
        );
        assert_eq!(listed.len(), pairings, "{who} lists {listed:?}");
        // Asked again, the same caller gets the same answer (from the cache).
        let (cache, again) = send(&hub, &token, LIST, json!({})).await;
        assert_eq!(cache, "hit", "{who}");
        assert_eq!(again, body, "{who}");

        let (_, body) = send(&hub, &token, NESTED, json!({})).await;
        let entry = body["data"]["inspectionWindow"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["node"]["school"]["urn"] == urn)
            .unwrap_or_else(|| panic!("the school is in its window: {body}"))
            .clone();
        let nested = entry["node"]["buddyPairings"].as_array().unwrap();
        assert_eq!(!nested.is_empty(), side, "{who}: {entry}");
        assert_eq!(body.to_string().contains(PAIRING_NOTE), side, "{who}");
    }

    // Federation: a school resolved as an entity leads to no pairing — the field is
    // not there to ask for, and a pairing is no entity of its own.
    let inspector = hub.token_for(&format!("INSPECTORATE:{SOUTH_EAST}"), "INSPECTOR");
    let reps = json!({ "reps": [{ "__typename": "School", "urn": urn }] });
    let body = hub
        .query(
            Some(&inspector),
            "query($reps: [_Any!]!) { _entities(representations: $reps) { ... on School { urn buddyPairings { id } } } }",
            reps.clone(),
        )
        .await;
    assert_eq!(body["data"], Value::Null, "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("Unknown field \"buddyPairings\" on type \"School\"")),
        "{body}"
    );
    let body = hub
        .query(
            Some(&inspector),
            "query($reps: [_Any!]!) { _entities(representations: $reps) { __typename } }",
            json!({ "reps": [{ "__typename": "BuddyPairing", "id": "1" }] }),
        )
        .await;
    assert!(!body.to_string().contains(PAIRING_NOTE), "{body}");
    let resolved = body["data"]["_entities"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(resolved.iter().all(Value::is_null), "{body}");

    // Ending it by id is refused as well, without saying anything about it.
    let id = {
        let data = ok(&hub, Some(&officer(&hub, "852")), LIST, json!({})).await;
        ids(&data["buddyPairings"])[0].clone()
    };
    let (code, message) = refused(
        &hub,
        Some(&inspector),
        "mutation($id: ID!) { endBuddyPairing(id: $id) { status notes } }",
        json!({ "id": id }),
    )
    .await;
    assert_eq!(code, "FORBIDDEN");
    assert!(!message.contains("Fortnightly"), "{message}");
}

const REQUESTS: &str = "query Requests { supportRequests(first: 100) { totalCount
    edges { node { id title confidential schools { urn } } } } }";

fn has_confidential_request(body: &Value) -> bool {
    body.to_string().contains(REQUEST_TITLE)
}

/// The seeded confidential request's id, as Southampton sees it.
async fn confidential_request(hub: &TestHub) -> String {
    let data = ok(hub, Some(&officer(hub, "852")), REQUESTS, json!({})).await;
    data["supportRequests"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["node"]["title"] == REQUEST_TITLE)
        .map(|e| {
            assert_eq!(e["node"]["confidential"], true);
            e["node"]["id"].as_str().unwrap().to_owned()
        })
        .expect("Southampton sees its confidential request")
}

#[tokio::test]
async fn a_confidential_request_is_seen_by_its_sides_and_the_schools_la_only() {
    let hub = TestHub::spawn().await;
    let school = schools_of(&hub, "852").await[2];
    let id = confidential_request(&hub).await;
    let inspector = hub.token_for(&format!("INSPECTORATE:{SOUTH_EAST}"), "INSPECTOR");
    let portsmouth = officer(&hub, "851");
    let southampton = officer(&hub, "852");
    let readers: Vec<(&str, String, bool)> = vec![
        ("Southampton (the poster)", southampton.clone(), true),
        (
            "the school's leader",
            hub.token_for(&format!("SCHOOL:{school}"), "SCHOOL_LEADER"),
            true,
        ),
        ("the inspectorate", inspector.clone(), false),
        (
            "the RSC office",
            hub.token_for(&format!("RSC_OFFICE:{SOUTH_EAST}"), "RSC_OFFICER"),
            false,
        ),
        ("Portsmouth", portsmouth.clone(), false),
        ("Hampshire", officer(&hub, "850"), false),
        (
            "an analyst",
            hub.token_for("OTHER:RES-01", "ANALYST"),
            false,
        ),
    ];
    const MATCHES: &str =
        "query Matches { supportMatches(first: 100) { edges { node { request { id title } } } } }";
    const ONE: &str = "query($id: ID!) { supportRequest(id: $id) { title detail } }";
    for (who, token, side) in &readers {
        // Lists (with their totals) and matches, each asked twice: the second from the
        // cache, which Southampton filled first.
        for document in [REQUESTS, MATCHES] {
            let (_, body) = send(&hub, token, document, json!({})).await;
            assert_eq!(has_confidential_request(&body), *side, "{who}: {body}");
            let (cache, again) = send(&hub, token, document, json!({})).await;
            assert_eq!(cache, "hit", "{who}");
            assert_eq!(again, body);
        }
        let (_, body) = send(&hub, token, REQUESTS, json!({})).await;
        let listed = ids(&body["data"]["supportRequests"]);
        assert_eq!(
            body["data"]["supportRequests"]["totalCount"],
            listed.len(),
            "{who}"
        );
        // The region's other requests stay on the regional map for every partner.
        assert!(
            body.to_string()
                .contains("SEND review support for two primary schools")
                || *who == "an analyst",
            "{who}: {body}"
        );
        let response = hub.query(Some(token), ONE, json!({ "id": id })).await;
        if *side {
            assert_eq!(response["data"]["supportRequest"]["title"], REQUEST_TITLE);
        } else {
            assert_eq!(error_code(&response), "FORBIDDEN", "{who}: {response}");
            assert!(!has_confidential_request(&response), "{who}: {response}");
        }
    }

    // Matched with Portsmouth's offer, the request is Portsmouth's to see too — and it
    // stays hidden behind the offer, which is on the regional map, from everyone else.
    let data = ok(
        &hub,
        Some(&portsmouth),
        r#"mutation { createSupportOffer(input: { theme: INSPECTION_READINESS,
            title: "A serving inspector's hour", capacity: "Two conversations" }) { id } }"#,
        json!({}),
    )
    .await;
    let offer = data["createSupportOffer"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(
        &hub,
        Some(&southampton),
        "mutation($r: ID!, $o: ID!) { matchSupport(requestId: $r, offerId: $o) { status } }",
        json!({ "r": id, "o": offer }),
    )
    .await;
    const OFFERS: &str = "query Offers { supportOffers(first: 100) { edges { node { id status
        request { id title } } } } }";
    const ONE_OFFER: &str =
        "query($id: ID!) { supportOffer(id: $id) { status request { title } } }";
    for (who, token, side) in [
        ("Portsmouth", &portsmouth, true),
        ("Southampton", &southampton, true),
        ("the inspectorate", &inspector, false),
        ("Hampshire", &officer(&hub, "850"), false),
    ] {
        for document in [OFFERS, REQUESTS] {
            let (_, body) = send(&hub, token, document, json!({})).await;
            assert_eq!(has_confidential_request(&body), side, "{who}: {body}");
        }
        let data = ok(&hub, Some(token), ONE_OFFER, json!({ "id": offer })).await;
        assert_eq!(data["supportOffer"]["status"], "MATCHED");
        assert_eq!(data["supportOffer"]["request"].is_object(), side, "{who}");
    }
    // The offering side agrees to it, as it could to any request matched with it.
    let data = ok(
        &hub,
        Some(&portsmouth),
        "mutation($r: ID!) { agreeSupport(requestId: $r) { status confidential } }",
        json!({ "r": id }),
    )
    .await;
    assert_eq!(data["agreeSupport"]["status"], "AGREED");
}

#[tokio::test]
async fn a_request_is_confidential_when_its_poster_marks_it_so() {
    let hub = TestHub::spawn().await;
    let urn = schools_of(&hub, "851").await[0];
    let leader = hub.token_for(&format!("SCHOOL:{urn}"), "SCHOOL_LEADER");
    const POST: &str = r#"mutation($urns: [Int!]!, $confidential: Boolean!) {
        createSupportRequest(input: { theme: LEADERSHIP, urgency: LOW, title: "Coaching for a new head",
            schoolUrns: $urns, confidential: $confidential }) { id confidential } }"#;
    // Naming no school: the LA sees it as the LA of the school that posted it.
    let data = ok(
        &hub,
        Some(&leader),
        POST,
        json!({ "urns": [], "confidential": true }),
    )
    .await;
    let secret = data["createSupportRequest"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(data["createSupportRequest"]["confidential"], true);
    let data = ok(
        &hub,
        Some(&leader),
        POST,
        json!({ "urns": [urn], "confidential": false }),
    )
    .await;
    let open = data["createSupportRequest"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let inspector = hub.token_for(&format!("INSPECTORATE:{SOUTH_EAST}"), "INSPECTOR");
    // The school's LA sees the request a school of its own posted; the rest of the
    // region sees only the open one.
    for (who, token, sees_secret) in [
        ("the school", &leader, true),
        ("Portsmouth (its LA)", &officer(&hub, "851"), true),
        ("Southampton", &officer(&hub, "852"), false),
        ("the inspectorate", &inspector, false),
    ] {
        let data = ok(&hub, Some(token), REQUESTS, json!({})).await;
        let listed = ids(&data["supportRequests"]);
        assert!(listed.contains(&open), "{who}");
        assert_eq!(listed.contains(&secret), sees_secret, "{who}");
    }
}
