//! Memory of the hub under hostile input: the figures behind the `memory` test, printed.
//!
//! ```text
//! cargo bench -p hub-tests --bench hostile_memory
//! ```
//!
//! The real hub runs as a separate process (`hub-cli serve`, built with the bench
//! profile) on the test data, with rate limiting off; its resident memory is read from
//! `/proc/<pid>/status` (Linux only). Printed, in MiB:
//!
//! * the process at rest after start;
//! * per hostile case (`hub_tests::hostile::cases`, and a body announced as 1 GB), sent
//!   `BENCH_REPEAT` times (default 50) one after another: the peak while it ran (the
//!   peak is reset before each case through `/proc/<pid>/clear_refs`) and the resident
//!   size after;
//! * `BENCH_ROUNDS` rounds (default 20) of every case: resident and peak after round 2
//!   and after the last, and the growth between — what the `memory` test bounds;
//! * the same cases sent `BENCH_CONCURRENCY` at a time (default 16): the peak.
//!
//! Every reply is checked as the test checks it, so a figure is never the cost of a
//! request the hub failed to refuse.

use std::sync::Arc;

use hub_tests::TestHub;
use hub_tests::hostile::{self, Case};
use hub_tests::process::{HubProcess, Memory};
use tokio::task::JoinSet;

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

async fn announce_huge_body(process: &HubProcess) {
    let address = process.address.trim_start_matches("http://").to_owned();
    let reply = tokio::task::spawn_blocking(move || hostile::announce_huge_body(&address))
        .await
        .expect("client thread");
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply:?}");
}

fn print_row(name: &str, bytes: usize, before: Memory, after: Memory) {
    println!(
        "{name:<55} {:>9.2} {:>10.1} {:>+10.1} {:>10.1}",
        bytes as f64 / 1_048_576.0,
        mib(after.peak_kib),
        mib(after.peak_kib) - mib(before.rss_kib),
        mib(after.rss_kib),
    );
}

#[tokio::main]
async fn main() {
    let repeat = setting("BENCH_REPEAT", 50);
    let rounds = setting("BENCH_ROUNDS", 20).max(3);
    let concurrency = setting("BENCH_CONCURRENCY", 16).max(1);

    let hub = TestHub::spawn().await;
    let process = HubProcess::start(
        &hub,
        env!("CARGO_BIN_EXE_hub-cli"),
        &[("RATE_LIMIT_PER_SECOND", "0")],
    )
    .await;
    let ok = process.query(None, "{ regions { code } }").await;
    assert_eq!(ok.status(), 200);
    let rest = process.memory();
    println!(
        "hub process {} at rest after one query: resident {:.1} MiB, peak {:.1} MiB",
        process.pid(),
        mib(rest.rss_kib),
        mib(rest.peak_kib)
    );

    let cases = hostile::cases();
    println!("\nper case, sent {repeat} times in a row (MiB):");
    println!(
        "{:<55} {:>9} {:>10} {:>10} {:>10}",
        "case", "body", "peak", "peak-rest", "resident"
    );
    for case in &cases {
        process.reset_peak();
        let before = process.memory();
        for _ in 0..repeat {
            hostile::send_checked(&process.address, case).await;
        }
        print_row(case.name, case.body.len(), before, process.memory());
    }
    process.reset_peak();
    let before = process.memory();
    for _ in 0..repeat {
        announce_huge_body(&process).await;
    }
    print_row(
        "body announced as 1 GB (a few bytes sent)",
        0,
        before,
        process.memory(),
    );

    process.reset_peak();
    let mut warmed = None;
    for round in 1..=rounds {
        for case in &cases {
            hostile::send_checked(&process.address, case).await;
        }
        announce_huge_body(&process).await;
        if round == 2 {
            warmed = Some(process.memory());
        }
    }
    let warmed = warmed.expect("at least three rounds");
    let end = process.memory();
    println!("\n{rounds} rounds of every case (the memory test's measure), MiB:");
    println!(
        "  after round 2:  resident {:.1}, peak {:.1}",
        mib(warmed.rss_kib),
        mib(warmed.peak_kib)
    );
    println!(
        "  after round {rounds}: resident {:.1}, peak {:.1}",
        mib(end.rss_kib),
        mib(end.peak_kib)
    );
    println!(
        "  growth:         resident {:+.1}, peak {:+.1}",
        mib(end.rss_kib) - mib(warmed.rss_kib),
        mib(end.peak_kib) - mib(warmed.peak_kib)
    );

    let cases: Arc<Vec<Case>> = Arc::new(cases);
    process.reset_peak();
    let before = process.memory();
    let total = cases.len() * concurrency;
    let mut tasks = JoinSet::new();
    for i in 0..total {
        let (address, cases) = (process.address.clone(), cases.clone());
        tasks.spawn(async move { hostile::send_checked(&address, &cases[i % cases.len()]).await });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("request task");
    }
    let after = process.memory();
    println!(
        "\nevery case {concurrency} times at once ({total} requests in flight), MiB: \
         peak {:.1} ({:+.1} over resident before), resident after {:.1}",
        mib(after.peak_kib),
        mib(after.peak_kib) - mib(before.rss_kib),
        mib(after.rss_kib)
    );

    let ok = process.query(None, "{ regions { code } }").await;
    assert_eq!(ok.status(), 200, "the hub still answers");
    let (status, logs) = process.terminate().await;
    assert!(status.success(), "{status}; logs:\n{logs}");
}
