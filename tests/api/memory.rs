//! Memory stays bounded under hostile input, measured: the real hub as a separate
//! process (`hub_tests::process`) is sent every hostile case of `hub_tests::hostile`
//! round after round, and its resident memory is read from `/proc/<pid>/status`
//! (Linux only) after the warm-up rounds and after the last.
//!
//! The bounds are generous on purpose, so the test is deterministic: a hub that keeps
//! what hostile requests make it allocate grows by the size of the bodies times the
//! rounds (tens of megabytes here), far past a bound that allocator noise never
//! reaches. The figures themselves are printed by the `hostile_memory` bench
//! (`cargo bench -p hub-tests --bench hostile_memory`).

use hub_tests::TestHub;
use hub_tests::hostile;
use hub_tests::process::HubProcess;
use serde_json::Value;

/// The hub's command line (see `tests/src/bin/hub-cli.rs`).
const CLI: &str = env!("CARGO_BIN_EXE_hub-cli");

const ROUNDS: usize = 20;
/// Rounds before the baseline is read: allocator arenas, connection buffers and lazily
/// built statics reach their working size in the first ones.
const WARM_UP_ROUNDS: usize = 2;
/// Growth of resident and of peak memory allowed from the end of the warm-up to the
/// end: 18 rounds send about 40 MB of bodies, so a hub keeping them would fail.
const MAX_GROWTH_KIB: u64 = 64 * 1024;
/// The peak resident size allowed: the debug build of the hub with the test data
/// serves in well under half of it.
const MAX_PEAK_KIB: u64 = 512 * 1024;

#[tokio::test]
async fn memory_stays_bounded_under_rounds_of_hostile_input() {
    let hub = TestHub::spawn().await;
    // Rate limiting off: every hostile request must reach the checks under test.
    let process = HubProcess::start(&hub, CLI, &[("RATE_LIMIT_PER_SECOND", "0")]).await;
    let cases = hostile::cases();
    let address = process.address.trim_start_matches("http://").to_owned();

    let mut warmed = None;
    for round in 1..=ROUNDS {
        for case in &cases {
            hostile::send_checked(&address, case).await;
        }
        let address = address.clone();
        let reply = tokio::task::spawn_blocking(move || hostile::announce_huge_body(&address))
            .await
            .expect("client thread");
        assert!(
            reply.starts_with("HTTP/1.1 413"),
            "round {round}: {reply:?}"
        );
        if round == WARM_UP_ROUNDS {
            warmed = Some(process.memory());
        }
    }
    let warmed = warmed.expect("read after the warm-up");
    let end = process.memory();
    let rss_growth = end.rss_kib.saturating_sub(warmed.rss_kib);
    let peak_growth = end.peak_kib.saturating_sub(warmed.peak_kib);
    let figures =
        format!("after round {WARM_UP_ROUNDS}: {warmed:?}; after round {ROUNDS}: {end:?}");
    assert!(
        rss_growth < MAX_GROWTH_KIB,
        "resident memory grew: {figures}"
    );
    assert!(peak_growth < MAX_GROWTH_KIB, "peak memory grew: {figures}");
    assert!(end.peak_kib < MAX_PEAK_KIB, "peak over the cap: {figures}");

    // …and it still answers an honest query correctly.
    let response = process.query(None, "{ regions { code } }").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(
        body["data"]["regions"].as_array().map(Vec::len),
        Some(9),
        "{body}"
    );

    let (status, logs) = process.terminate().await;
    assert!(status.success(), "{status}; logs:\n{logs}");
}
