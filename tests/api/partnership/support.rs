//! Requests and offers of support: matched by theme and region, moved together
//! open → matched → agreed → closed, seen across the region, schools named only to the
//! parties.

use hub_tests::{TestHub, error_code};
use serde_json::{Value, json};

use super::{SOUTH_EAST, ids, officer, ok, refused, schools_of};

const REQUEST: &str = "id status theme urgency organisation { code } schools { urn }
    offer { id status organisation { code } }";

async fn post_request(hub: &TestHub, token: &str, theme: &str, urns: &[i64]) -> Value {
    hub.query(
        Some(token),
        &format!(
            "mutation($input: NewSupportRequest!) {{ createSupportRequest(input: $input) {{ {REQUEST} }} }}"
        ),
        json!({ "input": { "theme": theme, "urgency": "HIGH", "title": "Help with attendance",
                "detail": "Two schools with rising absence.", "schoolUrns": urns } }),
    )
    .await
}

async fn post_offer(hub: &TestHub, token: &str, theme: &str) -> String {
    let data = ok(
        hub,
        Some(token),
        "mutation($input: NewSupportOffer!) { createSupportOffer(input: $input) { id status } }",
        json!({ "input": { "theme": theme, "title": "Attendance coaching",
                "capacity": "Half a day a week for a term" } }),
    )
    .await;
    assert_eq!(data["createSupportOffer"]["status"], "OPEN");
    data["createSupportOffer"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn request_id(hub: &TestHub, token: &str, theme: &str, urns: &[i64]) -> String {
    let body = post_request(hub, token, theme, urns).await;
    assert_eq!(
        body["data"]["createSupportRequest"]["status"], "OPEN",
        "{body}"
    );
    body["data"]["createSupportRequest"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn on_request(hub: &TestHub, token: &str, mutation: &str, id: &str) -> Value {
    hub.query(
        Some(token),
        &format!("mutation($id: ID!) {{ {mutation}(requestId: $id) {{ {REQUEST} }} }}"),
        json!({ "id": id }),
    )
    .await
}

async fn match_with(hub: &TestHub, token: &str, request: &str, offer: &str) -> Value {
    hub.query(
        Some(token),
        &format!(
            "mutation($r: ID!, $o: ID!) {{ matchSupport(requestId: $r, offerId: $o) {{ {REQUEST} }} }}"
        ),
        json!({ "r": request, "o": offer }),
    )
    .await
}

async fn offer_status(hub: &TestHub, token: &str, id: &str) -> Value {
    let data = ok(
        hub,
        Some(token),
        "query($id: ID!) { supportOffer(id: $id) { status request { id } } }",
        json!({ "id": id }),
    )
    .await;
    data["supportOffer"]["status"].clone()
}

#[tokio::test]
async fn support_runs_open_matched_agreed_closed_on_both_sides() {
    let hub = TestHub::spawn().await;
    let southampton = officer(&hub, "852");
    let portsmouth = officer(&hub, "851");
    let urns = &schools_of(&hub, "852").await[..2];
    let request = request_id(&hub, &southampton, "ATTENDANCE", urns).await;
    let offer = post_offer(&hub, &portsmouth, "ATTENDANCE").await;
    let other_theme = post_offer(&hub, &portsmouth, "SEND").await;

    // The match query pairs the request with open offers on its theme.
    let data = ok(
        &hub,
        Some(&southampton),
        r#"{ supportMatches(theme: ATTENDANCE, first: 50) { totalCount edges { node {
              request { id } offers { id theme organisation { code } } } } } }"#,
        json!({}),
    )
    .await;
    let edges = data["supportMatches"]["edges"].as_array().unwrap();
    let ours = edges
        .iter()
        .find(|e| e["node"]["request"]["id"] == request.as_str())
        .expect("our request is open and matchable");
    let candidates: Vec<&str> = ours["node"]["offers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert!(candidates.contains(&offer.as_str()), "{candidates:?}");
    assert!(!candidates.contains(&other_theme.as_str()));

    // Illegal first moves are refused, naming the move.
    let body = on_request(&hub, &portsmouth, "agreeSupport", &request).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    let body = match_with(&hub, &southampton, &request, &other_theme).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "themes differ: {body}");

    let body = match_with(&hub, &southampton, &request, &offer).await;
    let matched = &body["data"]["matchSupport"];
    assert_eq!(matched["status"], "MATCHED", "{body}");
    assert_eq!(matched["offer"]["id"], offer.as_str());
    assert_eq!(matched["offer"]["status"], "MATCHED");
    // An offer helps one request.
    let second = request_id(&hub, &southampton, "ATTENDANCE", &[]).await;
    let body = match_with(&hub, &southampton, &second, &offer).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains(&format!(
                "cannot move support offer {offer} from MATCHED to MATCHED"
            )),
        "{body}"
    );
    let body = hub
        .query(
            Some(&southampton),
            "mutation($id: ID!) { closeSupportRequest(id: $id) { status } }",
            json!({ "id": request }),
        )
        .await;
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains(&format!(
                "cannot move support request {request} from MATCHED to CLOSED"
            )),
        "{body}"
    );

    // The offering side agrees, not the requesting side.
    let body = on_request(&hub, &southampton, "agreeSupport", &request).await;
    assert_eq!(error_code(&body), "FORBIDDEN");
    let body = on_request(&hub, &portsmouth, "agreeSupport", &request).await;
    assert_eq!(body["data"]["agreeSupport"]["status"], "AGREED", "{body}");
    assert_eq!(offer_status(&hub, &portsmouth, &offer).await, "AGREED");

    let data = ok(
        &hub,
        Some(&portsmouth),
        "mutation($id: ID!) { closeSupportRequest(id: $id) { status offer { status } } }",
        json!({ "id": request }),
    )
    .await;
    assert_eq!(data["closeSupportRequest"]["status"], "CLOSED");
    assert_eq!(data["closeSupportRequest"]["offer"]["status"], "CLOSED");
    let body = on_request(&hub, &southampton, "declineSupportMatch", &request).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
}

#[tokio::test]
async fn a_declined_match_reopens_both_and_the_rsc_office_brokers() {
    let hub = TestHub::spawn().await;
    let southampton = officer(&hub, "852");
    let hampshire = officer(&hub, "850");
    let rsc = hub.token_for(&format!("RSC_OFFICE:{SOUTH_EAST}"), "RSC_OFFICER");
    let request = request_id(&hub, &southampton, "SEND", &[]).await;
    let offer = post_offer(&hub, &hampshire, "SEND").await;

    // The region's RSC officers broker support: they may match and agree for either
    // side. An inspector may not.
    let inspector = hub.token_for(&format!("INSPECTORATE:{SOUTH_EAST}"), "INSPECTOR");
    let body = match_with(&hub, &inspector, &request, &offer).await;
    assert_eq!(error_code(&body), "FORBIDDEN");
    let body = match_with(&hub, &rsc, &request, &offer).await;
    assert_eq!(body["data"]["matchSupport"]["status"], "MATCHED", "{body}");

    let body = on_request(&hub, &hampshire, "declineSupportMatch", &request).await;
    let declined = &body["data"]["declineSupportMatch"];
    assert_eq!(declined["status"], "OPEN", "{body}");
    assert_eq!(declined["offer"], Value::Null);
    assert_eq!(offer_status(&hub, &hampshire, &offer).await, "OPEN");

    // Withdrawn before anyone took it up; then nothing more.
    let data = ok(
        &hub,
        Some(&hampshire),
        "mutation($id: ID!) { closeSupportOffer(id: $id) { status } }",
        json!({ "id": offer }),
    )
    .await;
    assert_eq!(data["closeSupportOffer"]["status"], "CLOSED");
    let body = match_with(&hub, &southampton, &request, &offer).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");

    // An RSC officer may post for an organisation of its region, not of another.
    let body = hub
        .query(
            Some(&rsc),
            "mutation { createSupportOffer(input: { theme: SEND, title: \"Brokered\", capacity: \"2 days\",
                organisation: \"LOCAL_AUTHORITY:921\" }) { organisation { code } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        body["data"]["createSupportOffer"]["organisation"]["code"], "921",
        "{body}"
    );
    let (code, _) = refused(
        &hub,
        Some(&rsc),
        "mutation { createSupportOffer(input: { theme: SEND, title: \"x\", capacity: \"x\",
            organisation: \"LOCAL_AUTHORITY:202\" }) { id } }",
        json!({}),
    )
    .await;
    assert_eq!(code, "FORBIDDEN");
}

#[tokio::test]
async fn support_is_seen_across_the_region_and_schools_only_by_the_parties() {
    let hub = TestHub::spawn().await;
    let southampton = officer(&hub, "852");
    let portsmouth = officer(&hub, "851");
    let camden = officer(&hub, "202");
    let rsc = hub.token_for(&format!("RSC_OFFICE:{SOUTH_EAST}"), "RSC_OFFICER");
    let urns = &schools_of(&hub, "852").await[..2];
    let request = request_id(&hub, &southampton, "ATTENDANCE", urns).await;

    const LIST: &str =
        "{ supportRequests(first: 100) { totalCount edges { node { id schools { urn } } } } }";
    let schools_seen = |data: &Value| -> Option<usize> {
        data["supportRequests"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["node"]["id"] == request.as_str())
            .map(|e| e["node"]["schools"].as_array().unwrap().len())
    };
    let mine = ok(&hub, Some(&southampton), LIST, json!({})).await;
    assert_eq!(schools_seen(&mine), Some(2));
    let region = ok(&hub, Some(&rsc), LIST, json!({})).await;
    assert_eq!(
        schools_seen(&region),
        Some(2),
        "SCHOOL scope over the region"
    );
    // Portsmouth sees the need, but not which of Southampton's schools are struggling.
    let neighbour = ok(&hub, Some(&portsmouth), LIST, json!({})).await;
    assert_eq!(schools_seen(&neighbour), Some(0));
    let london = ok(&hub, Some(&camden), LIST, json!({})).await;
    assert_eq!(schools_seen(&london), None);
    assert_eq!(
        london["supportRequests"]["totalCount"],
        ids(&london["supportRequests"]).len()
    );
    let (code, _) = refused(
        &hub,
        Some(&camden),
        "query($id: ID!) { supportRequest(id: $id) { id } }",
        json!({ "id": request }),
    )
    .await;
    assert_eq!(code, "FORBIDDEN");

    // Once Portsmouth's offer is matched, Portsmouth is a party and sees the schools.
    let offer = post_offer(&hub, &portsmouth, "ATTENDANCE").await;
    let body = match_with(&hub, &southampton, &request, &offer).await;
    assert_eq!(body["data"]["matchSupport"]["status"], "MATCHED", "{body}");
    let neighbour = ok(&hub, Some(&portsmouth), LIST, json!({})).await;
    assert_eq!(schools_seen(&neighbour), Some(2));

    // A request speaks only for schools its poster is responsible for.
    let hampshire_school = schools_of(&hub, "850").await[0];
    let body = post_request(&hub, &southampton, "SEND", &[hampshire_school]).await;
    assert_eq!(error_code(&body), "FORBIDDEN");
    let body = post_request(&hub, &southampton, "SEND", &[999_999]).await;
    assert_eq!(error_code(&body), "NOT_FOUND");
    let (code, _) = refused(&hub, None, LIST, json!({})).await;
    assert_eq!(code, "UNAUTHENTICATED");
}

#[tokio::test]
async fn a_page_of_support_loads_its_nested_records_in_a_fixed_number_of_statements() {
    let hub = TestHub::spawn_with(&[("CACHE_TTL_SECONDS", "0")]).await;
    let southampton = officer(&hub, "852");
    let portsmouth = officer(&hub, "851");
    let urns = schools_of(&hub, "852").await;
    for urn in &urns[..3] {
        let request = request_id(&hub, &southampton, "ATTENDANCE", &[*urn]).await;
        let offer = post_offer(&hub, &portsmouth, "ATTENDANCE").await;
        let body = match_with(&hub, &southampton, &request, &offer).await;
        assert_eq!(body["data"]["matchSupport"]["status"], "MATCHED", "{body}");
    }
    const PAGE: &str = r#"query($first: Int!) { supportRequests(first: $first, filter: { status: MATCHED }) {
        totalCount edges { node { organisation { name } region { name }
          schools { name localAuthority { name } }
          offer { organisation { name } request { id schools { urn } } } } } } }"#;
    let one = super::statements_for(&hub, &southampton, PAGE, json!({ "first": 1 })).await;
    let three = super::statements_for(&hub, &southampton, PAGE, json!({ "first": 3 })).await;
    assert_eq!(one, three, "statements must not grow with the page");
}

const LONDON: &str = "E12000007";

/// Posts an offer with a reach; returns its id.
async fn offer_with_reach(hub: &TestHub, token: &str, theme: &str, reach: Value) -> String {
    let mut input = json!({ "theme": theme, "title": "Specialist SEND advice",
                            "capacity": "Four visits" });
    for (key, value) in reach.as_object().unwrap() {
        input[key] = value.clone();
    }
    let data = ok(
        hub,
        Some(token),
        "mutation($input: NewSupportOffer!) { createSupportOffer(input: $input) {
            id reach openTo { code } } }",
        json!({ "input": input }),
    )
    .await;
    data["createSupportOffer"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn support_opened_to_a_neighbouring_region_or_nationally_is_seen_and_matched_there() {
    let hub = TestHub::spawn().await;
    let southampton = officer(&hub, "852");
    let camden = officer(&hub, "202");
    let lambeth = officer(&hub, "212");
    // Camden opens an offer to the South East; Lambeth keeps one in London.
    let opened = offer_with_reach(
        &hub,
        &camden,
        "SEND",
        json!({ "reach": "REGIONS", "openTo": [SOUTH_EAST] }),
    )
    .await;
    let london_only = offer_with_reach(&hub, &lambeth, "SEND", json!({})).await;

    const OFFERS: &str =
        "{ supportOffers(first: 100) { totalCount edges { node { id reach openTo { code } } } } }";
    let seen = ok(&hub, Some(&southampton), OFFERS, json!({})).await;
    let listed = ids(&seen["supportOffers"]);
    assert!(listed.contains(&opened), "{seen}");
    assert!(!listed.contains(&london_only), "{seen}");
    assert_eq!(seen["supportOffers"]["totalCount"], listed.len());
    let node = seen["supportOffers"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["node"]["id"] == opened.as_str())
        .unwrap();
    assert_eq!(node["node"]["reach"], "REGIONS");
    assert_eq!(node["node"]["openTo"], json!([{ "code": SOUTH_EAST }]));
    let (code, _) = refused(
        &hub,
        Some(&southampton),
        "query($id: ID!) { supportOffer(id: $id) { id } }",
        json!({ "id": london_only }),
    )
    .await;
    assert_eq!(code, "FORBIDDEN");

    // The seeded SEND request (Southampton, its region only) is matched with Camden's
    // offer — across the regions' edge — and not with Lambeth's.
    let matches = ok(
        &hub,
        Some(&southampton),
        "{ supportMatches(theme: SEND, first: 50) { edges { node { request { id organisation { code } }
            offers { id organisation { code } } } } } }",
        json!({}),
    )
    .await;
    let edge = matches["supportMatches"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["node"]["request"]["organisation"]["code"] == "852")
        .expect("Southampton's SEND request")
        .clone();
    let request = edge["node"]["request"]["id"].as_str().unwrap().to_owned();
    let candidates: Vec<&str> = edge["node"]["offers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert!(candidates.contains(&opened.as_str()), "{edge}");
    assert!(!candidates.contains(&london_only.as_str()), "{edge}");
    let body = match_with(&hub, &southampton, &request, &london_only).await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    let body = match_with(&hub, &southampton, &request, &opened).await;
    assert_eq!(body["data"]["matchSupport"]["status"], "MATCHED", "{body}");
    // Camden, now a party, sees the request and agrees.
    let body = on_request(&hub, &camden, "agreeSupport", &request).await;
    assert_eq!(body["data"]["agreeSupport"]["status"], "AGREED", "{body}");

    // A request opened nationally is on every region's map; one opened to London only
    // is on London's and the South East's, not elsewhere.
    let portsmouth = officer(&hub, "851");
    const POST: &str = r#"mutation($reach: SupportReach!, $openTo: [String!]!) {
        createSupportRequest(input: { theme: ATTENDANCE, urgency: LOW, title: "Attendance mentors",
            reach: $reach, openTo: $openTo }) { id reach } }"#;
    let data = ok(
        &hub,
        Some(&portsmouth),
        POST,
        json!({ "reach": "NATIONAL", "openTo": [] }),
    )
    .await;
    let national = data["createSupportRequest"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    const REQUESTS: &str = "{ supportRequests(first: 100) { edges { node { id } } } }";
    for token in [&camden, &hub.token_for("OTHER:RES-01", "ANALYST")] {
        let data = ok(&hub, Some(token), REQUESTS, json!({})).await;
        assert!(ids(&data["supportRequests"]).contains(&national));
    }

    // Bad reach: named regions without REGIONS, REGIONS without any, an unknown code.
    for (reach, open_to) in [
        ("NATIONAL", json!([LONDON])),
        ("REGIONS", json!([])),
        ("REGIONS", json!([SOUTH_EAST])),
        ("REGIONS", json!(["E99999999"])),
    ] {
        let (code, _) = refused(
            &hub,
            Some(&portsmouth),
            POST,
            json!({ "reach": reach, "openTo": open_to }),
        )
        .await;
        assert_eq!(code, "BAD_USER_INPUT", "{reach} {open_to}");
    }
}
