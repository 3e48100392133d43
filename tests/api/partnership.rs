//! The improvement partnership: signals, self-evaluations, peer reviews, support and
//! inspection-window help.

use hub_tests::{TestHub, error_code as code};
use serde_json::json;

const ALL_STATUSES: &str = "[RAISED, NOT_RAISED, NOT_ENOUGH_DATA, WITHHELD]";

#[tokio::test]
async fn smoke_signals() {
    let hub = TestHub::spawn().await;
    let token = hub.token_for("LOCAL_AUTHORITY:852", "LA_OFFICER");
    let body = hub
        .query(
            Some(&token),
            &format!(r#"{{ signals(area: {{ level: LA, code: "852" }}, period: "2024/25", statuses: {ALL_STATUSES}) {{
                rule {{ code threshold }} status measure comparatorAreaCode figures {{ level areaCode period pupilGroup value }} }} }}"#),
            json!({}),
        )
        .await;
    println!("{body:#}");
    assert_eq!(code(&body), "<none>");
}
