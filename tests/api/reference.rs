//! Public reference data: regions, organisations, the register and the catalogue.

use hub_tests::TestHub;
use serde_json::{Value, json};

#[tokio::test]
async fn anonymous_callers_read_the_nine_regions_and_their_las() {
    let hub = TestHub::spawn().await;
    let body = hub
        .query(
            None,
            "{ regions { code name localAuthorities { code name kind } } }",
            json!({}),
        )
        .await;
    let regions = body["data"]["regions"].as_array().expect("regions list");
    let codes: Vec<&str> = regions
        .iter()
        .map(|r| r["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        (1..=9).map(|n| format!("E1200000{n}")).collect::<Vec<_>>()
    );
    let south_east = &regions[7];
    assert_eq!(south_east["name"], "South East");
    let la_codes: Vec<&str> = south_east["localAuthorities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|la| la["code"].as_str().unwrap())
        .collect();
    assert!(
        la_codes.contains(&"852") && la_codes.contains(&"850"),
        "{la_codes:?}"
    );
    assert!(
        south_east["localAuthorities"]
            .as_array()
            .unwrap()
            .iter()
            .all(|la| la["kind"] == "LOCAL_AUTHORITY")
    );
}

#[tokio::test]
async fn school_filters_combine_and_count_what_they_return() {
    let hub = TestHub::spawn().await;
    let document = "query($f: SchoolFilter) { schools(filter: $f, first: 500) { totalCount edges { node { urn name phase isOpen localAuthority { code } region { code } } } } }";
    let all = hub.query(None, document, json!({ "f": {} })).await;
    let total = all["data"]["schools"]["totalCount"].as_u64().unwrap();
    assert!(
        total >= 20,
        "test scale has a few dozen schools, got {total}"
    );

    let southampton = hub
        .query(None, document, json!({ "f": { "laCode": "852" } }))
        .await;
    let edges = southampton["data"]["schools"]["edges"].as_array().unwrap();
    assert!(!edges.is_empty());
    assert_eq!(
        southampton["data"]["schools"]["totalCount"]
            .as_u64()
            .unwrap() as usize,
        edges.len()
    );
    for edge in edges {
        assert_eq!(edge["node"]["localAuthority"]["code"], "852");
        assert_eq!(edge["node"]["region"]["code"], "E12000008");
    }

    let primaries = hub
        .query(
            None,
            document,
            json!({ "f": { "laCode": "852", "phase": "PRIMARY" } }),
        )
        .await;
    let primary_edges = primaries["data"]["schools"]["edges"].as_array().unwrap();
    assert!(
        primary_edges
            .iter()
            .all(|e| e["node"]["phase"] == "PRIMARY")
    );
    assert!(
        primary_edges.len() < edges.len(),
        "Southampton has schools of other phases too"
    );

    let none = hub
        .query(None, document, json!({ "f": { "laCode": "999" } }))
        .await;
    assert_eq!(none["data"]["schools"]["totalCount"], 0);
}

#[tokio::test]
async fn name_search_is_case_insensitive_and_treats_wildcards_literally() {
    let hub = TestHub::spawn().await;
    let first = hub
        .query(
            None,
            "{ schools(first: 1) { edges { node { name } } } }",
            json!({}),
        )
        .await;
    let name = first["data"]["schools"]["edges"][0]["node"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let fragment: String = name
        .chars()
        .skip(1)
        .take(5)
        .collect::<String>()
        .to_uppercase();
    let document = "query($q: String) { schools(filter: { nameContains: $q }, first: 500) { edges { node { name } } } }";
    let found = hub.query(None, document, json!({ "q": fragment })).await;
    let names: Vec<String> = found["data"]["schools"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["name"].as_str().unwrap().to_lowercase())
        .collect();
    assert!(
        names.contains(&name.to_lowercase()),
        "{fragment} should find {name}: {names:?}"
    );
    assert!(names.iter().all(|n| n.contains(&fragment.to_lowercase())));

    let wildcard = hub.query(None, document, json!({ "q": "%" })).await;
    assert_eq!(
        wildcard["data"]["schools"]["edges"]
            .as_array()
            .unwrap()
            .len(),
        0,
        "% is not a wildcard"
    );
}

#[tokio::test]
async fn cursor_pages_cover_every_school_exactly_once() {
    let hub = TestHub::spawn().await;
    let document = "query($after: String) { schools(first: 7, after: $after) { totalCount pageInfo { hasNextPage hasPreviousPage endCursor } edges { cursor node { urn } } } }";
    let mut after = Value::Null;
    let mut seen = Vec::new();
    let mut totals = Vec::new();
    loop {
        let body = hub.query(None, document, json!({ "after": after })).await;
        let schools = &body["data"]["schools"];
        totals.push(schools["totalCount"].as_u64().unwrap());
        assert_eq!(schools["pageInfo"]["hasPreviousPage"], !after.is_null());
        for edge in schools["edges"].as_array().unwrap() {
            seen.push(edge["node"]["urn"].as_i64().unwrap());
        }
        if schools["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = schools["pageInfo"]["endCursor"].clone();
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, seen, "pages are in URN order without repeats");
    assert!(
        totals.iter().all(|t| *t == seen.len() as u64),
        "totalCount is the same on every page: {totals:?}"
    );
}

#[tokio::test]
async fn school_by_urn_and_unknown_urn() {
    let hub = TestHub::spawn().await;
    let first = hub
        .query(
            None,
            "{ schools(first: 1) { edges { node { urn } } } }",
            json!({}),
        )
        .await;
    let urn = first["data"]["schools"]["edges"][0]["node"]["urn"].clone();
    let body = hub
        .query(None, "query($urn: Int!) { school(urn: $urn) { urn name establishmentType pupilsOnRoll lastInspectionDate } }", json!({ "urn": urn }))
        .await;
    assert_eq!(body["data"]["school"]["urn"], urn);
    assert!(body["data"]["school"]["pupilsOnRoll"].as_i64().unwrap() > 0);
    let missing = hub
        .query(None, "{ school(urn: 1) { urn } }", json!({}))
        .await;
    assert_eq!(missing["data"]["school"], Value::Null);
    assert!(missing.get("errors").is_none());
}

#[tokio::test]
async fn organisations_filter_by_kind_and_region() {
    let hub = TestHub::spawn().await;
    let body = hub
        .query(
            None,
            "{ organisations(filter: { kind: RSC_OFFICE }, first: 50) { totalCount edges { node { kind code region { code } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        body["data"]["organisations"]["totalCount"], 9,
        "one RSC office per region"
    );
    let la = hub
        .query(
            None,
            r#"{ organisation(kind: LOCAL_AUTHORITY, code: "852") { name region { name } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(la["data"]["organisation"]["name"], "Southampton");
    assert_eq!(la["data"]["organisation"]["region"]["name"], "South East");
}

#[tokio::test]
async fn the_indicator_catalogue_is_public() {
    let hub = TestHub::spawn().await;
    let body = hub
        .query(
            None,
            "{ indicators { code name unit polarity description } }",
            json!({}),
        )
        .await;
    let indicators = body["data"]["indicators"].as_array().unwrap();
    let find = |code: &str| {
        indicators
            .iter()
            .find(|i| i["code"] == code)
            .cloned()
            .unwrap_or_else(|| panic!("{code} missing"))
    };
    assert_eq!(find("attendance_rate")["polarity"], "HIGHER_IS_BETTER");
    assert_eq!(find("suspension_rate")["polarity"], "LOWER_IS_BETTER");
    assert_eq!(find("ehe_count")["unit"], "COUNT");
    assert_eq!(find("ks4_attainment8")["unit"], "SCORE");
}
