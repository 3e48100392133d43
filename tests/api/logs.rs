//! Request ids and what log lines may hold. The hubs' lines are captured for the whole
//! test binary (`hub_tests::logs`), and every helper request fails if any line so far
//! held a token the helpers signed — so the full suite, not only this file, proves that
//! tokens stay out of the logs. These tests make sure the capture sees what it must:
//! lines of requests that carry tokens in every way a client can send one, and failures
//! that log warnings.

use hub_tests::{TestHub, logs, request_id};
use serde_json::{Value, json};

#[tokio::test]
async fn every_response_has_a_request_id_and_every_line_of_the_request_carries_it() {
    let hub = TestHub::spawn().await;
    let first = hub.get("/healthz").await;
    let second = hub.get("/healthz").await;
    let (a, b) = (request_id(&first), request_id(&second));
    assert_ne!(a, b, "fresh ids are unique");
    assert!(
        a.len() >= 16 && a.bytes().all(|c| c.is_ascii_hexdigit()),
        "{a}"
    );

    // A client's own id is kept, and names the request's log line.
    let mine = "client-chosen.id_42";
    let response = hub
        .client
        .post(format!("{}/graphql", hub.address))
        .header("x-request-id", mine)
        .json(&json!({ "query": "query Regions { regions { code } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(request_id(&response), mine);
    let line: Value = logs::lines_for_request(mine)
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["fields"]["message"] == "request")
        .expect("the request's log line");
    assert_eq!(line["fields"]["status"], 200, "{line}");
    assert_eq!(line["span"]["route"], "/graphql", "{line}");
    assert_eq!(line["span"]["operation"], "Regions", "{line}");

    // An id that is not a short token of safe characters is replaced.
    let response = hub
        .client
        .get(format!("{}/healthz", hub.address))
        .header(
            "x-request-id",
            "no spaces or {braces} allowed, nor anything this long ......",
        )
        .send()
        .await
        .unwrap();
    let replaced = request_id(&response);
    assert!(
        replaced.bytes().all(|c| c.is_ascii_hexdigit()),
        "{replaced}"
    );
}

#[tokio::test]
async fn no_log_line_holds_a_token_however_it_was_sent() {
    let hub = TestHub::spawn().await;
    let valid = hub.token_for("LOCAL_AUTHORITY:852", "LA_OFFICER");
    let expired = hub_tests::token("LOCAL_AUTHORITY:852", &["LA_OFFICER"], -3600);
    let unknown_org = hub_tests::token("LOCAL_AUTHORITY:999", &["LA_OFFICER"], 3600);
    let tampered = format!("{}x", &valid[..valid.len() - 1]);
    logs::register_secret(tampered.rsplit('.').next().unwrap_or_default());
    let mark = logs::mark();
    let mut ids = Vec::new();

    for token in [&valid, &expired, &unknown_org, &tampered] {
        let response = hub
            .post_graphql(Some(token), &json!({ "query": "{ me { roles } }" }))
            .await;
        ids.push(request_id(&response));
        // In the query string and in variables, where a careless client puts them.
        let response = hub
            .client
            .get(format!("{}/graphql", hub.address))
            .query(&[
                ("query", "query($t: String) { regions { code } }"),
                ("variables", &json!({ "t": token }).to_string()),
                ("access_token", token.as_str()),
            ])
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        ids.push(request_id(&response));
        let response = hub
            .client
            .get(format!("{}/no-such-route?token={token}", hub.address))
            .header("authorization", format!("Token {token}"))
            .send()
            .await
            .unwrap();
        ids.push(request_id(&response));
    }
    // A malformed header is refused without being echoed.
    let response = hub
        .client
        .post(format!("{}/graphql", hub.address))
        .header("authorization", format!("Bearer {valid} extra"))
        .json(&json!({ "query": "{ regions { code } }" }))
        .send()
        .await
        .unwrap();
    ids.push(request_id(&response));
    assert_eq!(response.status(), 401);

    let lines = logs::lines_since(mark);
    for id in &ids {
        assert!(
            lines.iter().any(|l| l.contains(id.as_str())),
            "the capture saw request {id}"
        );
    }
    for token in [&valid, &expired, &unknown_org, &tampered] {
        let signature = token.rsplit('.').next().unwrap_or_default();
        assert!(
            lines.iter().all(|l| !l.contains(signature)),
            "a log line holds a token"
        );
    }
    logs::assert_no_leaks();
}
