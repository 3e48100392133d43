//! Per-organisation rate limits: reached, refused with 429 and `Retry-After`, recovered;
//! separate between organisations; shared by instances through Redis; kept (per
//! instance) when Redis is gone.

use std::time::Duration;

use hub_tests::{TestHub, error_code, redis_url};
use serde_json::{Value, json};

const REGIONS: &str = "{ regions { code } }";

/// One request for `token`'s organisation: `Ok` with the answer, or `Err` with the
/// `Retry-After` seconds of a 429.
async fn ask(hub: &TestHub, token: Option<&str>) -> Result<Value, u64> {
    let response = hub.post_graphql(token, &json!({ "query": REGIONS })).await;
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let body: Value = response.json().await.expect("JSON body");
    if status == 429 {
        assert_eq!(error_code(&body), "RATE_LIMITED", "{body}");
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .is_some_and(|m| m.contains("too many requests")),
            "{body}"
        );
        return Err(retry_after.expect("a 429 says when to retry"));
    }
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["regions"].as_array().map(Vec::len), Some(9));
    Ok(body)
}

#[tokio::test]
async fn the_limit_is_reached_then_recovered() {
    // Three at once, then one every five seconds.
    let hub =
        TestHub::spawn_with(&[("RATE_LIMIT_PER_SECOND", "0.2"), ("RATE_LIMIT_BURST", "3")]).await;
    let token = hub.token_for("LOCAL_AUTHORITY:852", "LA_OFFICER");
    for _ in 0..3 {
        ask(&hub, Some(&token)).await.expect("within the burst");
    }
    let retry_after = ask(&hub, Some(&token))
        .await
        .expect_err("the fourth exceeds the burst");
    assert!((1..=5).contains(&retry_after), "Retry-After {retry_after}");
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    ask(&hub, Some(&token))
        .await
        .expect("a token has accumulated after Retry-After");
    assert!(hub.metric("hub_rate_limited_total{").await >= 1.0);
}

#[tokio::test]
async fn organisations_have_separate_budgets() {
    let hub =
        TestHub::spawn_with(&[("RATE_LIMIT_PER_SECOND", "0.01"), ("RATE_LIMIT_BURST", "2")]).await;
    let southampton = hub.token_for("LOCAL_AUTHORITY:852", "LA_OFFICER");
    let colleague = hub_tests::token("LOCAL_AUTHORITY:852", &["ANALYST"], 3600);
    let hampshire = hub.token_for("LOCAL_AUTHORITY:850", "LA_OFFICER");
    ask(&hub, Some(&southampton)).await.expect("first");
    ask(&hub, Some(&colleague))
        .await
        .expect("a colleague spends from the same budget");
    ask(&hub, Some(&southampton))
        .await
        .expect_err("Southampton's budget is spent, by both of its users");
    ask(&hub, Some(&hampshire))
        .await
        .expect("Hampshire's budget is its own");
    ask(&hub, None)
        .await
        .expect("anonymous callers have a budget of their own");
}

#[tokio::test]
async fn a_batch_costs_one_per_operation() {
    let hub =
        TestHub::spawn_with(&[("RATE_LIMIT_PER_SECOND", "0.01"), ("RATE_LIMIT_BURST", "3")]).await;
    let token = hub.token_for("LOCAL_AUTHORITY:852", "LA_OFFICER");
    let batch = json!([{ "query": REGIONS }, { "query": REGIONS }, { "query": REGIONS }]);
    let response = hub.post_graphql(Some(&token), &batch).await;
    assert_eq!(response.status(), 200);
    ask(&hub, Some(&token))
        .await
        .expect_err("three operations spent the burst of three");
}

#[tokio::test]
async fn the_limit_holds_across_instances_sharing_redis() {
    let Some(redis) = redis_url("the_limit_holds_across_instances_sharing_redis") else {
        return;
    };
    let prefix = format!("hub-test-{}-ratelimit-shared", std::process::id());
    let settings = [
        ("REDIS_URL", redis.as_str()),
        ("CACHE_REDIS_PREFIX", prefix.as_str()),
        ("RATE_LIMIT_PER_SECOND", "0.01"),
        ("RATE_LIMIT_BURST", "4"),
    ];
    let first = TestHub::spawn_with(&settings).await;
    let second = first.spawn_sibling(&settings).await;
    for hub in [&first, &second] {
        wait_for(hub, "hub_rate_limit_redis_up", 1.0).await;
    }
    let token = first.token_for("LOCAL_AUTHORITY:852", "LA_OFFICER");
    let mut allowed = 0;
    for i in 0..8 {
        let hub = if i % 2 == 0 { &first } else { &second };
        if ask(hub, Some(&token)).await.is_ok() {
            allowed += 1;
        }
    }
    assert_eq!(
        allowed, 4,
        "the burst is one budget for the deployment, not one per instance"
    );
    assert_eq!(
        first.metric("hub_rate_limited_total{").await
            + second.metric("hub_rate_limited_total{").await,
        4.0
    );
}

#[tokio::test]
async fn without_redis_each_instance_limits_on_its_own_and_answers() {
    // Nothing listens on port 1: every Redis command fails at once.
    let hub = TestHub::spawn_with(&[
        ("REDIS_URL", "redis://127.0.0.1:1"),
        ("RATE_LIMIT_PER_SECOND", "0.01"),
        ("RATE_LIMIT_BURST", "2"),
    ])
    .await;
    let token = hub.token_for("LOCAL_AUTHORITY:852", "LA_OFFICER");
    ask(&hub, Some(&token))
        .await
        .expect("answered without Redis");
    ask(&hub, Some(&token))
        .await
        .expect("answered without Redis");
    ask(&hub, Some(&token))
        .await
        .expect_err("the instance's own bucket still limits");
    let text = hub.get("/metrics").await.text().await.unwrap();
    assert!(
        text.contains(r#"hub_rate_limited_total{by="local"} 1"#),
        "{text}"
    );
    assert_eq!(hub.metric("hub_rate_limit_redis_up").await, 0.0);
}

async fn wait_for(hub: &TestHub, metric: &str, value: f64) {
    for _ in 0..200 {
        if hub.metric(metric).await == value {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{metric} did not reach {value} within 10 s");
}
