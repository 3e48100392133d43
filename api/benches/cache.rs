//! The cache benchmark: the LA dashboard query through the real HTTP server under a
//! load generator, in one run, for
//!
//! * (a) the miss path (every request a new key: executes and stores),
//! * (b) hits from the in-process tier (no Redis configured),
//! * (b') hits from the in-process tier with Redis configured (each request reads the
//!   invalidation generation from Redis first),
//! * (c) hits from Redis only (`CACHE_MEMORY_MB=0`),
//! * (d) a bare axum route returning the same bytes: the ceiling,
//!
//! printing requests per second, p50 and p99 for each.
//!
//! The hit scenarios are compared with (d), so they are measured in interleaved
//! rounds — (d), (b), (b'), (c), then again — rather than one after another: a
//! machine shared with other work drifts over a minute, and a ratio between figures
//! taken minutes apart measured the drift as much as the hub.
//!
//! ```text
//! BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test REDIS_URL=redis://127.0.0.1:6379 \
//!   cargo bench -p baseline-hub --bench cache
//! ```
//!
//! The load generator is deliberately minimal — pre-built request bytes written on 32
//! keep-alive connections, responses read by `Content-Length` — so that it costs as
//! little of the machine's two cores as possible, like `wrk`. It runs on its own
//! runtime thread; the hub runs on the main multi-threaded runtime. `BENCH_ROUNDS`
//! sets the rounds (default 3), `BENCH_SECONDS` each scenario's measuring time per
//! round (default 3, after a second of warm-up), `BENCH_CONNECTIONS` the concurrency
//! (default 32).

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use baseline_hub::startup::Application;
use common::{DASHBOARD, env};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What one scenario's load gave: every successful request's latency, the errors, and
/// the time measured.
#[derive(Default)]
struct Sample {
    latencies: Vec<Duration>,
    errors: usize,
    seconds: f64,
}

impl Sample {
    fn add(&mut self, mut other: Sample) {
        self.latencies.append(&mut other.latencies);
        self.errors += other.errors;
        self.seconds += other.seconds;
    }
}

struct Figures {
    requests_per_second: f64,
    p50: Duration,
    p99: Duration,
    errors: usize,
}

impl Figures {
    fn of(mut sample: Sample) -> Figures {
        sample.latencies.sort();
        let latencies = &sample.latencies;
        let pct = |p: f64| {
            latencies
                .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
                .copied()
                .unwrap_or_default()
        };
        Figures {
            requests_per_second: latencies.len() as f64 / sample.seconds.max(f64::EPSILON),
            p50: pct(0.50),
            p99: pct(0.99),
            errors: sample.errors,
        }
    }
}

#[tokio::main]
async fn main() {
    let seconds: u64 = env("BENCH_SECONDS", "3").parse().unwrap_or(3);
    let rounds: usize = env("BENCH_ROUNDS", "3").parse().unwrap_or(3).max(1);
    let connections: usize = env("BENCH_CONNECTIONS", "32").parse().unwrap_or(32);
    let redis = env("REDIS_URL", "redis://127.0.0.1:6379");
    let prefix = format!("bench-{}", std::process::id());
    let token = common::token("LOCAL_AUTHORITY:852", "LA_OFFICER");
    let body = |nonce: Option<u64>| {
        let mut variables = json!({ "la": "852" });
        if let Some(n) = nonce {
            variables["nonce"] = json!(n);
        }
        json!({ "query": DASHBOARD, "variables": variables, "operationName": "LaDashboard" })
            .to_string()
    };

    let local = start(&[]).await;
    let fenced = start(&[("REDIS_URL", &redis), ("CACHE_REDIS_PREFIX", &prefix)]).await;
    let redis_only = start(&[
        ("REDIS_URL", &redis),
        ("CACHE_REDIS_PREFIX", &format!("{prefix}-only")),
        ("CACHE_MEMORY_MB", "0"),
    ])
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The answer every scenario returns, and a check that each hub gives it.
    let answer = request_once(local, &post(&token, &body(None))).await;
    let parsed = |text: &str| serde_json::from_str::<serde_json::Value>(text).expect("JSON");
    assert!(
        parsed(&answer).get("errors").is_none(),
        "dashboard failed: {answer}"
    );
    // Same data from every hub (top-level fields may come in either order: async-graphql
    // writes parallel fields as they finish).
    for hub in [fenced, redis_only] {
        let other = request_once(hub, &post(&token, &body(None))).await;
        assert_eq!(parsed(&other), parsed(&answer), "the hubs disagree");
    }
    let ceiling = bare_route(Bytes::from(answer.clone())).await;
    println!(
        "LA dashboard (LA 852, LA_OFFICER): {} bytes per answer, {connections} connections, \
         {rounds} rounds of {seconds} s per scenario",
        answer.len()
    );

    let miss = {
        let token = token.clone();
        load(local, connections, seconds, move |i| {
            post(&token, &body(Some(i)))
        })
        .await
    };
    report(
        "(a) miss path (execute and store)",
        &Figures::of(miss),
        None,
    );
    let same = post(&token, &body(None));
    let cases = [
        ("(d) bare axum route, same bytes", ceiling),
        ("(b) hit, in-process tier", local),
        ("(b') hit, in-process tier, Redis fence", fenced),
        ("(c) hit, Redis tier only", redis_only),
    ];
    let mut samples: Vec<Sample> = cases.iter().map(|_| Sample::default()).collect();
    for _ in 0..rounds {
        for ((_, hub), sample) in cases.iter().zip(&mut samples) {
            let bytes = same.clone();
            sample.add(load(*hub, connections, seconds, move |_| bytes.clone()).await);
        }
    }
    let mut figures = samples.into_iter().map(Figures::of);
    let ceiling_figures = figures.next().expect("(d) measured");
    for ((name, _), figures) in cases.iter().skip(1).zip(figures) {
        report(name, &figures, Some(&ceiling_figures));
    }
    report(cases[0].0, &ceiling_figures, None);
}

/// Starts a hub on the national dataset with extra settings.
async fn start(settings: &[(&str, &str)]) -> SocketAddr {
    let config = common::national_config(settings).await;
    let app = Application::build(config).await.expect("hub starts");
    let addr = app.local_addr();
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    addr
}

/// The ceiling: an axum route that returns fixed bytes as JSON.
async fn bare_route(body: Bytes) -> SocketAddr {
    use axum::routing::post;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new().route(
        "/graphql",
        post(move || {
            let body = body.clone();
            async move { ([("content-type", "application/json")], body) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn post(token: &str, body: &str) -> Vec<u8> {
    format!(
        "POST /graphql HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

async fn request_once(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut buffer = Vec::new();
    let (status, body) = exchange(&mut stream, request, &mut buffer)
        .await
        .expect("response");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    String::from_utf8(body).expect("UTF-8")
}

/// Writes one request and reads one response (status and body) on a keep-alive
/// connection.
async fn exchange(
    stream: &mut TcpStream,
    request: &[u8],
    buffer: &mut Vec<u8>,
) -> std::io::Result<(u16, Vec<u8>)> {
    stream.write_all(request).await?;
    buffer.clear();
    let mut chunk = [0u8; 64 * 1024];
    let header_end = loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..header_end]).to_ascii_lowercase();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buffer.len() < header_end + length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    Ok((status, buffer[header_end..header_end + length].to_vec()))
}

/// Drives `addr` from `connections` keep-alive connections for a warm-up second and
/// then `seconds`, on a runtime of its own.
async fn load(
    addr: SocketAddr,
    connections: usize,
    seconds: u64,
    request: impl Fn(u64) -> Vec<u8> + Send + Sync + 'static,
) -> Sample {
    let request = std::sync::Arc::new(request);
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("load generator runtime");
        let sample = runtime.block_on(async move {
            let warm_up = Instant::now() + Duration::from_secs(1);
            let end = warm_up + Duration::from_secs(seconds);
            let counter = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
            let mut tasks = Vec::new();
            for _ in 0..connections {
                let request = request.clone();
                let counter = counter.clone();
                tasks.push(tokio::spawn(async move {
                    let mut stream = TcpStream::connect(addr).await.expect("connect");
                    stream.set_nodelay(true).ok();
                    let mut buffer = Vec::new();
                    let mut latencies = Vec::new();
                    let mut errors = 0;
                    loop {
                        let i = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let bytes = request(i);
                        let started = Instant::now();
                        let ok = matches!(
                            exchange(&mut stream, &bytes, &mut buffer).await,
                            Ok((200, _))
                        );
                        let now = Instant::now();
                        if now >= end {
                            break;
                        }
                        if now >= warm_up {
                            if ok {
                                latencies.push(now - started);
                            } else {
                                errors += 1;
                            }
                        }
                    }
                    (latencies, errors)
                }));
            }
            let mut sample = Sample {
                seconds: seconds as f64,
                ..Sample::default()
            };
            for task in tasks {
                let (mut latencies, errors) = task.await.expect("connection task");
                sample.latencies.append(&mut latencies);
                sample.errors += errors;
            }
            sample
        });
        let _ = tx.send(sample);
    });
    rx.await.expect("load generator finished")
}

fn report(name: &str, figures: &Figures, ceiling: Option<&Figures>) {
    let versus = ceiling
        .map(|c| {
            format!(
                "  ({:.0}% of (d)'s req/s, p99 {:.2}x (d)'s)",
                100.0 * figures.requests_per_second / c.requests_per_second,
                figures.p99.as_secs_f64() / c.p99.as_secs_f64()
            )
        })
        .unwrap_or_default();
    println!(
        "  {name:<42} {:>9.0} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  errors {}{versus}",
        figures.requests_per_second,
        figures.p50.as_secs_f64() * 1000.0,
        figures.p99.as_secs_f64() * 1000.0,
        figures.errors
    );
}
