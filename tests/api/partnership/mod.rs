//! The improvement partnership: signals of risk and success, self-evaluations, peer
//! reviews, requests and offers of support, and inspection-window help. One file per
//! area; the helpers below are shared.
//!
//! The test data is the `test` scale: Hampshire (850), Southampton (852), Portsmouth
//! (851) and the Isle of Wight (921) in the South East (`E12000008`); Camden (202),
//! Lambeth (212)… and the City of London (201) in London (`E12000007`).

mod confidential;
mod inspection;
mod peer_review;
mod self_evaluation;
mod signals;
mod support;

use hub_tests::{TestHub, error_code};
use serde_json::{Value, json};

pub const SOUTH_EAST: &str = "E12000008";

/// Runs a document and returns its `data`, failing the test on any error.
pub async fn ok(hub: &TestHub, token: Option<&str>, document: &str, variables: Value) -> Value {
    let body = hub.query(token, document, variables).await;
    assert!(body.get("errors").is_none(), "unexpected errors: {body}");
    body["data"].clone()
}

/// Runs a document that must fail; returns the first error's code and message.
pub async fn refused(
    hub: &TestHub,
    token: Option<&str>,
    document: &str,
    variables: Value,
) -> (String, String) {
    let body = hub.query(token, document, variables).await;
    let code = error_code(&body).to_owned();
    assert_ne!(code, "<none>", "expected an error: {body}");
    let message = body["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (code, message)
}

/// A token for an LA's officer.
pub fn officer(hub: &TestHub, la: &str) -> String {
    hub.token_for(&format!("LOCAL_AUTHORITY:{la}"), "LA_OFFICER")
}

/// The open schools of an LA, lowest URN first.
pub async fn schools_of(hub: &TestHub, la: &str) -> Vec<i64> {
    let data = ok(
        hub,
        None,
        r#"query($la: String!) { schools(filter: { laCode: $la, isOpen: true }, first: 100) { edges { node { urn } } } }"#,
        json!({ "la": la }),
    )
    .await;
    data["schools"]["edges"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["node"]["urn"].as_i64())
        .collect()
}

/// `SELECT COUNT(*)` of a table under a condition, on the hub's own database.
pub async fn count(hub: &TestHub, table: &str, condition: &str) -> i64 {
    use sea_orm::{ConnectionTrait, Statement};
    let db = hub.db().await;
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            format!("SELECT COUNT(*) AS n FROM {table} WHERE {condition}"),
        ))
        .await
        .expect("count query")
        .expect("a row");
    let n: i64 = row.try_get("", "n").expect("count");
    db.close().await.ok();
    n
}

/// The ids of a connection's nodes.
pub fn ids(connection: &Value) -> Vec<String> {
    connection["edges"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["node"]["id"].as_str().map(str::to_owned))
        .collect()
}

/// SQL statements one request makes (read from `/metrics` around it).
pub async fn statements_for(hub: &TestHub, token: &str, document: &str, variables: Value) -> u64 {
    let before = hub.statements().await;
    ok(hub, Some(token), document, variables).await;
    hub.statements().await - before
}
