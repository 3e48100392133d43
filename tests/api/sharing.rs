//! Sharing agreements: a grant widens the consumer's scope; revocation and expiry narrow
//! it again; only the provider's officers or a hub administrator may make or revoke one;
//! every change is audited.

use hub_tests::{TestHub, error_code as code};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};

const CREATE: &str = r#"mutation($input: NewSharingAgreement!) { createSharingAgreement(input: $input) {
    id accessLevel inForce provider { code } consumer { code } } }"#;
const REVOKE: &str =
    r#"mutation($id: ID!) { revokeSharingAgreement(id: $id) { id status inForce revokedAt } }"#;

/// Whether Southampton's officer may read a Hampshire school's figures.
async fn can_read(hub: &TestHub, token: &str, urn: i64) -> bool {
    let body = hub
        .query(
            Some(token),
            r#"query($urn: Int!) { school(urn: $urn) { observations(filter: { indicatorCodes: ["attendance_rate"], pupilGroups: [ALL] }) { value } } }"#,
            json!({ "urn": urn }),
        )
        .await;
    match code(&body) {
        "<none>" => true,
        "FORBIDDEN" => false,
        other => panic!("unexpected {other}: {body}"),
    }
}

async fn hampshire_school(hub: &TestHub) -> i64 {
    let body = hub
        .query(
            None,
            r#"{ schools(filter: { laCode: "850" }, first: 1) { edges { node { urn } } } }"#,
            json!({}),
        )
        .await;
    body["data"]["schools"]["edges"][0]["node"]["urn"]
        .as_i64()
        .unwrap()
}

fn agreement(level: &str, from: &str, to: &str) -> Value {
    json!({ "input": {
        "provider": "LOCAL_AUTHORITY:850", "consumer": "LOCAL_AUTHORITY:852",
        "accessLevel": level, "purpose": "Cross-border attendance casework",
        "validFrom": from, "validTo": to
    } })
}

async fn audit_rows(hub: &TestHub, action: &str) -> i64 {
    let db = hub.db().await;
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            format!("SELECT COUNT(*) AS n FROM audit_event WHERE action = '{action}'"),
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get("", "n").unwrap()
}

#[tokio::test]
async fn a_grant_widens_scope_and_revocation_narrows_it_again() {
    let hub = TestHub::spawn().await;
    let urn = hampshire_school(&hub).await;
    let consumer = hub.token_for("LOCAL_AUTHORITY:852", "LA_OFFICER");
    let provider = hub.token_for("LOCAL_AUTHORITY:850", "LA_OFFICER");
    assert!(!can_read(&hub, &consumer, urn).await, "no agreement yet");
    let writes_before = audit_rows(&hub, "WRITE").await;

    // The consumer cannot grant itself the provider's data.
    let own_grant = hub
        .query(
            Some(&consumer),
            CREATE,
            agreement("SCHOOL", "2020-01-01", "2099-12-31"),
        )
        .await;
    assert_eq!(code(&own_grant), "FORBIDDEN", "{own_grant}");

    let created = hub
        .query(
            Some(&provider),
            CREATE,
            agreement("SCHOOL", "2020-01-01", "2099-12-31"),
        )
        .await;
    assert!(created.get("errors").is_none(), "{created}");
    let made = &created["data"]["createSharingAgreement"];
    assert_eq!(made["inForce"], true);
    assert_eq!(made["provider"]["code"], "850");
    assert_eq!(
        audit_rows(&hub, "WRITE").await,
        writes_before + 1,
        "creation audited"
    );

    assert!(
        can_read(&hub, &consumer, urn).await,
        "the grant widens scope"
    );
    let me = hub
        .query(
            Some(&consumer),
            "{ me { scopes { level kind code agreementId provider } } }",
            json!({}),
        )
        .await;
    assert!(
        me["data"]["me"]["scopes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["agreementId"] == made["id"]
                && s["code"] == "850"
                && s["level"] == "SCHOOL"),
        "{me}"
    );
    let received = hub
        .query(
            Some(&consumer),
            "{ sharingAgreements(direction: RECEIVED) { totalCount edges { node { id purpose } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        received["data"]["sharingAgreements"]["totalCount"], 1,
        "{received}"
    );

    // Only the provider (or a hub administrator) may revoke.
    let by_consumer = hub
        .query(Some(&consumer), REVOKE, json!({ "id": made["id"] }))
        .await;
    assert_eq!(code(&by_consumer), "FORBIDDEN");
    let revoked = hub
        .query(Some(&provider), REVOKE, json!({ "id": made["id"] }))
        .await;
    assert_eq!(
        revoked["data"]["revokeSharingAgreement"]["status"], "REVOKED",
        "{revoked}"
    );
    assert_eq!(revoked["data"]["revokeSharingAgreement"]["inForce"], false);
    assert_eq!(
        audit_rows(&hub, "WRITE").await,
        writes_before + 2,
        "revocation audited"
    );
    assert!(
        !can_read(&hub, &consumer, urn).await,
        "revocation narrows scope"
    );
}

#[tokio::test]
async fn expired_and_future_agreements_grant_nothing() {
    // The dates are changed behind the hub's back, which no cache can notice.
    let hub = TestHub::spawn_with(&[("CACHE_TTL_SECONDS", "0")]).await;
    let urn = hampshire_school(&hub).await;
    let consumer = hub.token_for("LOCAL_AUTHORITY:852", "LA_OFFICER");
    let admin = hub.token_for("HUB:HUB", "HUB_ADMIN");
    let created = hub
        .query(
            Some(&admin),
            CREATE,
            agreement("SCHOOL", "2020-01-01", "2099-12-31"),
        )
        .await;
    let id = created["data"]["createSharingAgreement"]["id"]
        .as_str()
        .expect("a hub administrator may create agreements")
        .to_owned();
    assert!(can_read(&hub, &consumer, urn).await);

    let db = hub.db().await;
    let set_dates = |from: &str, to: &str| {
        Statement::from_string(
            db.get_database_backend(),
            format!(
                "UPDATE sharing_agreement SET valid_from = '{from}', valid_to = '{to}' WHERE id = {id}"
            ),
        )
    };
    db.execute_raw(set_dates("2020-01-01", "2021-07-31"))
        .await
        .unwrap();
    assert!(!can_read(&hub, &consumer, urn).await, "expired");
    db.execute_raw(set_dates("2098-01-01", "2099-12-31"))
        .await
        .unwrap();
    assert!(!can_read(&hub, &consumer, urn).await, "not yet in force");
}

#[tokio::test]
async fn agreements_are_checked_before_they_are_stored() {
    let hub = TestHub::spawn().await;
    let provider = hub.token_for("LOCAL_AUTHORITY:850", "LA_OFFICER");
    for (variables, expected) in [
        (
            agreement("AGGREGATE", "2020-01-01", "2099-12-31"),
            "BAD_USER_INPUT",
        ),
        (
            agreement("SCHOOL", "2030-01-01", "2020-12-31"),
            "BAD_USER_INPUT",
        ),
        (
            json!({ "input": { "provider": "LOCAL_AUTHORITY:850", "consumer": "LOCAL_AUTHORITY:999",
                "accessLevel": "PUPIL", "purpose": "x", "validFrom": "2020-01-01", "validTo": "2099-12-31" } }),
            "NOT_FOUND",
        ),
        (
            json!({ "input": { "provider": "LOCAL_AUTHORITY:850", "consumer": "LOCAL_AUTHORITY:852",
                "accessLevel": "PUPIL", "purpose": "   ", "validFrom": "2020-01-01", "validTo": "2099-12-31" } }),
            "BAD_USER_INPUT",
        ),
    ] {
        let body = hub.query(Some(&provider), CREATE, variables).await;
        assert_eq!(code(&body), expected, "{body}");
    }
    let rsc = hub.token_for("RSC_OFFICE:E12000008", "RSC_OFFICER");
    let body = hub
        .query(
            Some(&rsc),
            CREATE,
            json!({ "input": { "provider": "RSC_OFFICE:E12000008", "consumer": "LOCAL_AUTHORITY:852",
                "accessLevel": "PUPIL", "purpose": "x", "validFrom": "2020-01-01", "validTo": "2099-12-31" } }),
        )
        .await;
    assert_eq!(
        code(&body),
        "FORBIDDEN",
        "an RSC office holds no data of its own to share"
    );
    assert_eq!(
        audit_rows(&hub, "WRITE").await,
        0,
        "nothing stored, nothing audited"
    );
}
