//! Tokens: a bad token is a 401, never anonymous.

use hub_tests::{JWT_SECRET, TestHub, token};
use serde_json::{Value, json};

async fn assert_rejected(hub: &TestHub, bearer: &str) {
    let response = hub
        .client
        .post(format!("{}/graphql", hub.address))
        .bearer_auth(bearer)
        .json(&json!({ "query": "{ regions { code } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        401,
        "token {bearer:.20}… should be rejected"
    );
    let challenge = response
        .headers()
        .get("www-authenticate")
        .expect("challenge header")
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.starts_with("Bearer") && challenge.contains("invalid_token"),
        "{challenge}"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    assert!(
        !body.to_string().contains(bearer),
        "the token is never echoed"
    );
}

#[tokio::test]
async fn bad_tokens_are_refused_with_401() {
    let hub = TestHub::spawn().await;
    assert_rejected(&hub, "garbage").await;
    assert_rejected(&hub, &token("LOCAL_AUTHORITY:852", &["LA_OFFICER"], -3600)).await;
    assert_rejected(&hub, &token("LOCAL_AUTHORITY:999", &["LA_OFFICER"], 3600)).await;
    assert_rejected(&hub, &token("NOT_A_KIND:852", &["LA_OFFICER"], 3600)).await;
    assert_rejected(&hub, &token("LOCAL_AUTHORITY:852", &["SUPERUSER"], 3600)).await;
    assert_rejected(&hub, &token("LOCAL_AUTHORITY:852", &[], 3600)).await;
    let good = token("LOCAL_AUTHORITY:852", &["LA_OFFICER"], 3600);
    let (head, rest) = good.split_once('.').unwrap();
    let (payload, _signature) = rest.split_once('.').unwrap();
    assert_rejected(&hub, &format!("{head}.{payload}.AAAA")).await;
    assert!(JWT_SECRET.len() >= 32);
}

#[tokio::test]
async fn a_token_signed_with_another_secret_is_refused() {
    let other = TestHub::spawn_with(&[(
        "JWT_SECRET",
        "a-different-secret-that-is-also-32-bytes-long",
    )])
    .await;
    assert_rejected(&other, &token("LOCAL_AUTHORITY:852", &["LA_OFFICER"], 3600)).await;
}

#[tokio::test]
async fn a_good_token_reads_figures() {
    let hub = TestHub::spawn().await;
    let token = hub.token_for("LOCAL_AUTHORITY:850", "LA_OFFICER");
    let figures = hub
        .query(
            Some(&token),
            "{ observations(first: 3) { edges { node { value } } } }",
            json!({}),
        )
        .await;
    assert!(figures.get("errors").is_none(), "{figures}");
    assert_eq!(
        figures["data"]["observations"]["edges"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
}
