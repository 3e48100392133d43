//! The hub as an Apollo Federation v2 subgraph.
//!
//! First `_entities` asked directly over HTTP, the way a router asks it, including with
//! representations out of the caller's scope: the entity door must show exactly what
//! the root fields show. Then the real thing: `tests/federation/gateway.cjs` composes
//! the hub with a partner's subgraph using Apollo's own packages and runs
//! `@apollo/gateway` in front of both (see `hub_tests::node` for how they are
//! installed, and when the test is skipped).

use hub_tests::{TestHub, error_code as code, node};
use serde_json::{Value, json};

const FIGURES: &str = r#"observations(filter: { indicatorCodes: ["attendance_rate"], pupilGroups: [ALL] }) { period value }"#;

/// URNs of an LA's schools, from the public register.
async fn urns_of(hub: &TestHub, la: &str) -> Vec<i64> {
    let body = hub
        .query(
            None,
            r#"query($la: String) { schools(filter: { laCode: $la }, first: 500) { edges { node { urn } } } }"#,
            json!({ "la": la }),
        )
        .await;
    let urns: Vec<i64> = body["data"]["schools"]["edges"]
        .as_array()
        .expect("schools")
        .iter()
        .map(|e| e["node"]["urn"].as_i64().expect("urn"))
        .collect();
    assert!(urns.len() >= 3, "LA {la} has schools: {body}");
    urns
}

fn school_reps(urns: &[i64]) -> Value {
    urns.iter()
        .map(|urn| json!({ "__typename": "School", "urn": urn }))
        .collect()
}

/// `_entities` for these representations, selecting `selection` on `School`.
async fn entities(hub: &TestHub, token: Option<&str>, reps: Value, selection: &str) -> Value {
    let document = format!(
        "query($reps: [_Any!]!) {{ _entities(representations: $reps) {{ __typename ... on School {{ {selection} }} }} }}"
    );
    hub.query(token, &document, json!({ "reps": reps })).await
}

/// A school's figures through the root field, as the same caller: what `_entities` must
/// match.
async fn root_figures(hub: &TestHub, token: &str, urn: i64) -> Value {
    let body = hub
        .query(
            Some(token),
            &format!("query($urn: Int!) {{ school(urn: $urn) {{ {FIGURES} }} }}"),
            json!({ "urn": urn }),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    let figures = body["data"]["school"]["observations"].clone();
    assert!(
        figures.as_array().is_some_and(|rows| !rows.is_empty()),
        "{body}"
    );
    figures
}

/// The errors of a response, as `(path, code)`.
fn errors(body: &Value) -> Vec<(Value, String)> {
    body["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    (
                        e["path"].clone(),
                        e["extensions"]["code"]
                            .as_str()
                            .unwrap_or("<none>")
                            .to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn service_sdl_is_schema_graphql_a_federation_v2_subgraph_with_four_entities() {
    let hub = TestHub::spawn().await;
    let admin = hub.token_for("HUB:HUB", "HUB_ADMIN");
    let body = hub
        .query(Some(&admin), "{ _service { sdl } }", json!({}))
        .await;
    let sdl = body["data"]["_service"]["sdl"].as_str().expect("sdl");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema.graphql");
    let on_disk = std::fs::read_to_string(path).expect("schema.graphql");
    assert!(
        sdl == on_disk,
        "schema.graphql must be the SDL the running hub gives a router"
    );
    assert!(
        sdl.contains("extend schema @link(")
            && sdl.contains("https://specs.apollo.dev/federation/v2."),
        "a federation v2 @link: {sdl}"
    );
    for (entity, key) in [
        ("School", "urn"),
        ("Organisation", "id"),
        ("Region", "code"),
        ("Indicator", "code"),
    ] {
        assert!(
            sdl.contains(&format!("type {entity} @key(fields: \"{key}\")")),
            "{entity} is an entity keyed by {key}"
        );
    }
}

/// The SDL is the whole schema: with introspection off it is refused to anyone but a hub
/// administrator — partners included, and however the document reaches `_service` —
/// unless the deployment serves it to its composition pipeline.
#[tokio::test]
async fn service_sdl_follows_introspection_unless_served_to_composition() {
    let hub = TestHub::spawn().await;
    let partner = hub.token_for("LOCAL_AUTHORITY:852", "LA_OFFICER");
    let admin = hub.token_for("HUB:HUB", "HUB_ADMIN");
    let documents = [
        "{ _service { sdl } }",
        "query Compose { ...Sdl } fragment Sdl on Query { _service { sdl } }",
        "{ regions { code } ... on Query { service: _service { sdl } } }",
    ];
    for document in documents {
        for token in [None, Some(partner.as_str())] {
            let response = hub.post_graphql(token, &json!({ "query": document })).await;
            assert_eq!(response.status(), 403, "{document}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(code(&body), "FORBIDDEN", "{body}");
            assert!(body.get("data").is_none(), "nothing of it runs: {body}");
            assert!(
                body["errors"][0]["message"]
                    .as_str()
                    .unwrap()
                    .contains("export-schema"),
                "{body}"
            );
        }
        let body = hub.query(Some(&admin), document, json!({})).await;
        assert!(body.get("errors").is_none(), "{body}");
    }
    // In a batch, the whole batch is refused.
    let batch = hub
        .post_graphql(
            Some(&partner),
            &json!([{ "query": "{ regions { code } }" }, { "query": documents[0] }]),
        )
        .await;
    assert_eq!(batch.status(), 403);

    for setting in ["FEDERATION_SDL_PUBLIC", "GRAPHQL_INTROSPECTION"] {
        let open = TestHub::spawn_with(&[(setting, "true")]).await;
        let body = open.query(None, documents[0], json!({})).await;
        assert!(
            body["data"]["_service"]["sdl"]
                .as_str()
                .is_some_and(|sdl| sdl.contains("type School")),
            "{setting}: {body}"
        );
    }
}

#[tokio::test]
async fn entities_resolve_the_public_register_for_anyone_as_the_root_fields_do() {
    let hub = TestHub::spawn().await;
    let urn = urns_of(&hub, "852").await[0];
    let root = hub
        .query(
            None,
            r#"query($urn: Int!) {
                school(urn: $urn) { urn name localAuthority { id code name region { code name } } }
                indicator(code: "attendance_rate") { code name unit polarity }
            }"#,
            json!({ "urn": urn }),
        )
        .await;
    assert!(root.get("errors").is_none(), "{root}");
    let school = &root["data"]["school"];
    let la = &school["localAuthority"];
    let region = &la["region"];
    let body = hub
        .query(
            None,
            r#"query($reps: [_Any!]!) { _entities(representations: $reps) {
                __typename
                ... on School { urn name localAuthority { id code name region { code name } } }
                ... on Organisation { id code name region { code name } }
                ... on Region { code name }
                ... on Indicator { code name unit polarity }
            } }"#,
            json!({ "reps": [
                { "__typename": "School", "urn": urn },
                { "__typename": "Organisation", "id": la["id"] },
                { "__typename": "Region", "code": region["code"] },
                { "__typename": "Indicator", "code": "attendance_rate" },
            ] }),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    let found = &body["data"]["_entities"];
    assert_eq!(found[0]["__typename"], "School");
    assert_eq!(found[0]["name"], school["name"]);
    assert_eq!(found[0]["localAuthority"], *la);
    assert_eq!(found[1]["__typename"], "Organisation");
    assert_eq!(found[1]["code"], la["code"]);
    assert_eq!(found[1]["region"], *region);
    assert_eq!(found[2]["__typename"], "Region");
    assert_eq!(found[2]["name"], region["name"]);
    assert_eq!(found[3]["__typename"], "Indicator");
    assert_eq!(
        json!({ "code": found[3]["code"], "name": found[3]["name"], "unit": found[3]["unit"], "polarity": found[3]["polarity"] }),
        root["data"]["indicator"]
    );
}

/// `_entities` is no side door: a school's figures need the same SCHOOL scope however
/// the school was reached, and each entity is judged on its own.
#[tokio::test]
async fn entity_figures_need_the_same_scope_as_the_root_field() {
    let hub = TestHub::spawn().await;
    let own = urns_of(&hub, "852").await;
    let other = urns_of(&hub, "850").await;
    let officer = hub.token_for("LOCAL_AUTHORITY:852", "LA_OFFICER");
    let selection = format!("urn name {FIGURES} timeSeries {{ pupilGroup }}");

    // Anonymous: register fields yes, figures UNAUTHENTICATED.
    let body = entities(&hub, None, school_reps(&own[..1]), &selection).await;
    let entity = &body["data"]["_entities"][0];
    assert_eq!(entity["urn"], own[0], "{body}");
    assert!(entity["name"].is_string(), "{body}");
    assert_eq!(entity["observations"], Value::Null, "{body}");
    assert_eq!(entity["timeSeries"], Value::Null, "{body}");
    let mut got = errors(&body);
    got.sort_by_key(|(path, _)| path.to_string());
    assert_eq!(
        got,
        vec![
            (
                json!(["_entities", 0, "observations"]),
                "UNAUTHENTICATED".to_owned()
            ),
            (
                json!(["_entities", 0, "timeSeries"]),
                "UNAUTHENTICATED".to_owned()
            ),
        ],
        "{body}"
    );

    // Another LA's officer, and roles without SCHOOL scope: FORBIDDEN.
    for token in [
        hub.token_for("LOCAL_AUTHORITY:850", "LA_OFFICER"),
        hub.token_for("LOCAL_AUTHORITY:852", "ANALYST"),
        hub.token_for("LOCAL_AUTHORITY:852", "SYNC_AGENT"),
    ] {
        let body = entities(&hub, Some(&token), school_reps(&own[..1]), FIGURES).await;
        assert_eq!(
            body["data"]["_entities"][0]["observations"],
            Value::Null,
            "{body}"
        );
        assert_eq!(
            errors(&body),
            vec![(
                json!(["_entities", 0, "observations"]),
                "FORBIDDEN".to_owned()
            )],
            "{body}"
        );
    }

    // In scope: the figures the root field gives the same caller. Mixed with schools
    // out of scope in one batch, each is judged on its own.
    // A key named twice (routers usually send each once) is answered at both places.
    let reps = school_reps(&[own[0], other[0], own[1], other[1], other[0]]);
    let body = entities(&hub, Some(&officer), reps, &format!("urn {FIGURES}")).await;
    let found = &body["data"]["_entities"];
    assert_eq!(
        found[0]["observations"],
        root_figures(&hub, &officer, own[0]).await
    );
    assert_eq!(
        found[2]["observations"],
        root_figures(&hub, &officer, own[1]).await
    );
    assert_eq!(found[1]["observations"], Value::Null, "{body}");
    assert_eq!(found[3]["observations"], Value::Null, "{body}");
    assert_eq!(found[4]["urn"], other[0], "{body}");
    assert_eq!(
        found[1]["urn"], other[0],
        "out-of-scope entities keep their register fields"
    );
    assert_eq!(
        errors(&body),
        vec![
            (
                json!(["_entities", 1, "observations"]),
                "FORBIDDEN".to_owned()
            ),
            (
                json!(["_entities", 3, "observations"]),
                "FORBIDDEN".to_owned()
            ),
            (
                json!(["_entities", 4, "observations"]),
                "FORBIDDEN".to_owned()
            ),
        ],
        "{body}"
    );
}

#[tokio::test]
async fn unknown_keys_are_null_entities_and_unreadable_representations_bad_input() {
    let hub = TestHub::spawn().await;
    let urn = urns_of(&hub, "852").await[0];
    let officer = hub.token_for("LOCAL_AUTHORITY:852", "LA_OFFICER");

    // A key the hub does not know is a null entity; its siblings are unaffected.
    let body = hub
        .query(
            Some(&officer),
            &format!(
                r#"query($reps: [_Any!]!) {{ _entities(representations: $reps) {{
                    __typename
                    ... on School {{ urn {FIGURES} }}
                    ... on Organisation {{ code }}
                    ... on Region {{ name }}
                    ... on Indicator {{ name }}
                }} }}"#
            ),
            json!({ "reps": [
                { "__typename": "School", "urn": 999_999_999 },
                { "__typename": "School", "urn": urn },
                { "__typename": "Organisation", "id": "999999999" },
                { "__typename": "Organisation", "id": "not-a-number" },
                { "__typename": "Region", "code": "E99999999" },
                { "__typename": "Indicator", "code": "no_such_indicator" },
            ] }),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    let found = body["data"]["_entities"].as_array().expect("entities");
    assert_eq!(found.len(), 6);
    assert_eq!(found[1]["urn"], urn);
    assert!(
        found[1]["observations"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
    );
    for i in [0, 2, 3, 4, 5] {
        assert_eq!(found[i], Value::Null, "entity {i}: {body}");
    }

    // Two `_entities` under two aliases each load their own keys.
    let other = urns_of(&hub, "850").await[0];
    let body = hub
        .query(
            None,
            r#"query($a: [_Any!]!, $b: [_Any!]!) {
                a: _entities(representations: $a) { ... on School { urn } }
                b: _entities(representations: $b) { ... on School { urn } }
            }"#,
            json!({ "a": school_reps(&[urn]), "b": school_reps(&[other]) }),
        )
        .await;
    assert_eq!(body["data"]["a"][0]["urn"], urn, "{body}");
    assert_eq!(body["data"]["b"][0]["urn"], other, "{body}");

    // Representations the hub cannot read at all are the client's error.
    for rep in [
        json!({ "__typename": "Pupil", "id": 1 }),
        json!({ "__typename": "School", "urn": "not-a-number" }),
        json!({ "urn": urn }),
    ] {
        let body = entities(&hub, None, json!([rep]), "urn").await;
        assert_eq!(code(&body), "BAD_USER_INPUT", "{rep}: {body}");
        assert_eq!(body["data"]["_entities"], Value::Null, "{body}");
    }
}

#[tokio::test]
async fn representations_are_capped_at_the_page_size() {
    let hub = TestHub::spawn_with(&[("MAX_PAGE_SIZE", "3")]).await;
    let urns = urns_of_first_page(&hub).await;
    let body = entities(&hub, None, school_reps(&urns[..3]), "urn").await;
    assert!(body.get("errors").is_none(), "{body}");
    let body = entities(&hub, None, school_reps(&urns[..4]), "urn").await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("at most 3 representations")),
        "{body}"
    );
}

/// Four URNs from pages of at most three (for a hub with a small page size).
async fn urns_of_first_page(hub: &TestHub) -> Vec<i64> {
    let body = hub
        .query(
            None,
            "{ a: schools(first: 3) { edges { node { urn } } pageInfo { endCursor } } }",
            json!({}),
        )
        .await;
    let mut urns: Vec<i64> = body["data"]["a"]["edges"]
        .as_array()
        .expect("schools")
        .iter()
        .map(|e| e["node"]["urn"].as_i64().expect("urn"))
        .collect();
    let next = hub
        .query(
            None,
            "query($after: String) { schools(first: 1, after: $after) { edges { node { urn } } } }",
            json!({ "after": body["data"]["a"]["pageInfo"]["endCursor"] }),
        )
        .await;
    urns.push(
        next["data"]["schools"]["edges"][0]["node"]["urn"]
            .as_i64()
            .expect("urn"),
    );
    urns
}

/// A router sends every key in one `_entities`; the statements it costs do not grow
/// with the number of keys.
#[tokio::test]
async fn entities_are_batched_so_statements_do_not_grow_with_keys() {
    // Counts the statements of executing a query, so nothing may come from the cache.
    let hub = TestHub::spawn_with(&[("CACHE_TTL_SECONDS", "0")]).await;
    let token = hub.token_for("RSC_OFFICE:E12000008", "RSC_OFFICER");
    let mut urns = urns_of(&hub, "852").await;
    urns.extend(urns_of(&hub, "850").await);
    let las = hub
        .query(
            None,
            r#"{ region(code: "E12000008") { localAuthorities { id } } }"#,
            json!({}),
        )
        .await;
    let la_ids: Vec<Value> = las["data"]["region"]["localAuthorities"]
        .as_array()
        .expect("LAs")
        .iter()
        .map(|la| la["id"].clone())
        .collect();
    let reps = |n: usize| -> Value {
        let mut reps: Vec<Value> = urns[..n]
            .iter()
            .map(|urn| json!({ "__typename": "School", "urn": urn }))
            .collect();
        reps.extend(
            la_ids[..n.min(la_ids.len())]
                .iter()
                .map(|id| json!({ "__typename": "Organisation", "id": id })),
        );
        reps.push(json!({ "__typename": "Region", "code": "E12000008" }));
        reps.push(json!({ "__typename": "Indicator", "code": "attendance_rate" }));
        Value::Array(reps)
    };
    let document = format!(
        r#"query($reps: [_Any!]!) {{ _entities(representations: $reps) {{
            ... on School {{ urn localAuthority {{ code region {{ name }} }} trust {{ name }} {FIGURES} }}
            ... on Organisation {{ name region {{ code }} }}
            ... on Region {{ localAuthorities {{ code }} }}
            ... on Indicator {{ unit }}
        }} }}"#
    );
    // The caller's scope is worked out on the first request; count after it.
    hub.query(Some(&token), &document, json!({ "reps": reps(1) }))
        .await;
    let mut counts = Vec::new();
    for n in [2, urns.len().min(20)] {
        let before = hub.statements().await;
        let body = hub
            .query(Some(&token), &document, json!({ "reps": reps(n) }))
            .await;
        assert!(body.get("errors").is_none(), "{body}");
        let found = body["data"]["_entities"].as_array().expect("entities");
        assert!(
            found[..n]
                .iter()
                .all(|s| s["observations"].as_array().is_some_and(|r| !r.is_empty())),
            "every school has figures: {body}"
        );
        counts.push(hub.statements().await - before);
    }
    assert_eq!(
        counts[0],
        counts[1],
        "statements for 2 keys vs {} keys: {counts:?}",
        urns.len().min(20)
    );
}

/// Apollo's own composition and gateway, in front of the hub and a partner's subgraph.
#[tokio::test]
async fn an_apollo_gateway_joins_the_hub_with_a_partner_subgraph_and_keeps_access() {
    let test =
        "federation::an_apollo_gateway_joins_the_hub_with_a_partner_subgraph_and_keeps_access";
    let Some(apollo) = tokio::task::spawn_blocking(move || node::apollo(test))
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    else {
        return;
    };
    // The gateway composes from `_service { sdl }` fetched without a token, as a
    // composition pipeline would where the deployment serves it the SDL.
    let hub = TestHub::spawn_with(&[("FEDERATION_SDL_PUBLIC", "true")]).await;
    let own = urns_of(&hub, "852").await;
    let other = urns_of(&hub, "850").await;
    // Two of LA 852's schools and one of 850's: each caller sees some figures, not all.
    let schools = vec![own[0], own[1], other[0]];
    let la_852 = hub.token_for("LOCAL_AUTHORITY:852", "LA_OFFICER");
    let la_850 = hub.token_for("LOCAL_AUTHORITY:850", "LA_OFFICER");
    let input = json!({
        "schools": schools,
        "laCode": "852",
        "tokens": { "la852": la_852, "la850": la_850 },
    });
    let env = vec![
        ("HUB_URL", format!("{}/graphql", hub.address)),
        ("FEDERATION_INPUT", input.to_string()),
    ];
    let output = tokio::task::spawn_blocking(move || apollo.run("gateway.cjs", &env))
        .await
        .expect("node task");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "gateway.cjs failed: {stderr}");
    let report: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("gateway.cjs printed no JSON ({e}); stderr: {stderr}"));

    assert_eq!(
        report["composition"]["errors"],
        json!([]),
        "the hub composes with the partner's subgraph"
    );

    // What each caller may see, asked of the hub directly.
    let mut expected = std::collections::HashMap::new();
    for (caller, token, in_scope) in [
        ("la852", &la_852, vec![own[0], own[1]]),
        ("la850", &la_850, vec![other[0]]),
    ] {
        let mut figures = Vec::new();
        for urn in &schools {
            figures.push(if in_scope.contains(urn) {
                root_figures(&hub, token, *urn).await
            } else {
                Value::Null
            });
        }
        expected.insert(caller, figures);
    }
    expected.insert("anonymous", vec![Value::Null; 3]);
    let names = hub
        .query(
            None,
            "query($a: Int!, $b: Int!, $c: Int!) { a: school(urn: $a) { name } b: school(urn: $b) { name } c: school(urn: $c) { name } }",
            json!({ "a": schools[0], "b": schools[1], "c": schools[2] }),
        )
        .await;
    let names: Vec<&Value> = ["a", "b", "c"]
        .iter()
        .map(|k| &names["data"][k]["name"])
        .collect();

    for (caller, figures) in &expected {
        let responses = &report["responses"][caller];

        // Starting in the partner's subgraph: the gateway fetches the hub's part of each
        // school through `_entities`, with the caller's token.
        let response = &responses["partnerFirst"];
        assert_eq!(response["status"], 200, "{caller}: {response}");
        let body = &response["body"];
        let got = body["data"]["curriculumPartnerships"][0]["schools"]
            .as_array()
            .unwrap_or_else(|| panic!("{caller}: {body}"));
        assert_eq!(got.len(), 3, "{caller}: {body}");
        let mut refused = Vec::new();
        for (i, school) in got.iter().enumerate() {
            assert_eq!(school["urn"], schools[i], "{caller}: {body}");
            assert_eq!(&school["name"], names[i], "hub data joined: {body}");
            assert_eq!(
                school["curriculumLead"],
                format!("Lead at {}", schools[i]),
                "partner data joined: {body}"
            );
            assert_eq!(
                school["localAuthority"]["code"],
                if i < 2 { "852" } else { "850" },
                "{body}"
            );
            assert_eq!(
                school["observations"], figures[i],
                "{caller}, school {i}: {body}"
            );
            if figures[i].is_null() {
                refused.push(i);
            }
        }
        let want = if *caller == "anonymous" {
            "UNAUTHENTICATED"
        } else {
            "FORBIDDEN"
        };
        let mut got = errors(body);
        got.sort_by_key(|(path, _)| path.to_string());
        assert_eq!(
            got,
            refused
                .iter()
                .map(|i| (
                    json!(["curriculumPartnerships", 0, "schools", i, "observations"]),
                    want.to_owned()
                ))
                .collect::<Vec<_>>(),
            "{caller}: each refused school is an error at its place in the client's query: {body}"
        );

        // Starting in the hub: the gateway adds the partner's field to the hub's list.
        let response = &responses["hubFirst"];
        let body = &response["body"];
        assert!(body.get("errors").is_none(), "{caller}: {body}");
        let edges = body["data"]["schools"]["edges"]
            .as_array()
            .unwrap_or_else(|| panic!("{caller}: {body}"));
        assert_eq!(edges.len(), 3, "{body}");
        for edge in edges {
            let urn = edge["node"]["urn"].as_i64().expect("urn");
            assert!(own.contains(&urn), "{body}");
            assert_eq!(edge["node"]["curriculumLead"], format!("Lead at {urn}"));
        }
    }
}
