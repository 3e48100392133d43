//! OpenTelemetry trace export (the `otel` feature, which `hub-tests` builds the hub
//! with) against a collector: a fake OTLP/HTTP receiver in the test, and the real hub as
//! a separate process (`hub_tests::process`) — the tracing subscriber is global to a
//! process, so an in-process hub could not carry the exporter.
//!
//! Exports are decoded as the OTLP protobuf messages (`opentelemetry-proto`), so the
//! assertions name the span, its request id attribute and the resource's
//! `service.name`; the check that no token was exported searches the raw bytes, so that
//! nothing in any field of any message can carry one.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::post;
use hub_tests::process::HubProcess;
use hub_tests::{TestHub, request_id};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use prost::Message;

/// The hub's command line (see `tests/src/bin/hub-cli.rs`).
const CLI: &str = env!("CARGO_BIN_EXE_hub-cli");

/// One `POST /v1/traces` the collector received.
struct Export {
    content_type: String,
    body: Bytes,
}

type Received = Arc<Mutex<Vec<Export>>>;

/// A fake OTLP/HTTP collector: records every export and answers 200 with an empty
/// `ExportTraceServiceResponse` (an empty protobuf message is zero bytes).
struct Collector {
    /// `http://127.0.0.1:<port>`, the value for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    endpoint: String,
    received: Received,
}

impl Collector {
    async fn start() -> Collector {
        let received = Received::default();
        let app = Router::new()
            .route("/v1/traces", post(receive))
            .with_state(received.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the collector");
        let endpoint = format!("http://{}", listener.local_addr().expect("bound"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Collector { endpoint, received }
    }

    /// Every span received so far.
    fn spans(&self) -> Vec<Span> {
        let received = self.received.lock().expect("collector lock");
        received.iter().flat_map(|e| decode(&e.body)).collect()
    }

    /// Waits (up to 30 s) until a span of the request `request_id` has arrived.
    async fn wait_for(&self, request_id: &str) -> Span {
        for _ in 0..300 {
            if let Some(span) = self
                .spans()
                .into_iter()
                .find(|s| s.attribute("request_id") == Some(request_id))
            {
                return span;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "no span of request {request_id} reached the collector within 30 s; spans: {:?}",
            self.spans()
        );
    }

    /// Asserts that no export held `secret` anywhere in its bytes, and that every
    /// export was OTLP protobuf.
    fn assert_never_received(&self, secret: &str) {
        let received = self.received.lock().expect("collector lock");
        assert!(!received.is_empty(), "nothing was exported");
        for export in received.iter() {
            assert_eq!(export.content_type, "application/x-protobuf");
            assert!(
                !export
                    .body
                    .windows(secret.len())
                    .any(|w| w == secret.as_bytes()),
                "an export carried a secret"
            );
        }
    }
}

async fn receive(State(received): State<Received>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if let Ok(mut received) = received.lock() {
        received.push(Export { content_type, body });
    }
    StatusCode::OK
}

/// A decoded span with what the assertions need.
#[derive(Debug)]
struct Span {
    name: String,
    service: Option<String>,
    attributes: Vec<(String, String)>,
}

impl Span {
    fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

fn decode(body: &[u8]) -> Vec<Span> {
    let request = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf export");
    let mut spans = Vec::new();
    for resource_spans in request.resource_spans {
        let resource = resource_spans
            .resource
            .map(|r| attributes(&r.attributes))
            .unwrap_or_default();
        let service = resource
            .iter()
            .find(|(k, _)| k == "service.name")
            .map(|(_, v)| v.clone());
        for scope_spans in resource_spans.scope_spans {
            for span in scope_spans.spans {
                spans.push(Span {
                    name: span.name,
                    service: service.clone(),
                    attributes: attributes(&span.attributes),
                });
            }
        }
    }
    spans
}

fn attributes(list: &[KeyValue]) -> Vec<(String, String)> {
    list.iter()
        .map(|kv| (kv.key.clone(), text(kv.value.as_ref())))
        .collect()
}

fn text(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

/// Starts a hub process exporting to `collector`, with the SDK's batch delay set to
/// `delay_ms` (`OTEL_BSP_SCHEDULE_DELAY`, read by the OpenTelemetry SDK itself).
async fn exporting_hub(hub: &TestHub, collector: &Collector, delay_ms: &str) -> HubProcess {
    HubProcess::start(
        hub,
        CLI,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.endpoint),
            ("OTEL_BSP_SCHEDULE_DELAY", delay_ms),
        ],
    )
    .await
}

#[tokio::test]
async fn request_spans_reach_the_collector_without_the_token() {
    let collector = Collector::start().await;
    let hub = TestHub::spawn().await;
    let process = exporting_hub(&hub, &collector, "100").await;

    let token = hub.token_for("LOCAL_AUTHORITY:852", "LA_OFFICER");
    let signed = process
        .query(Some(&token), "query TraceProbe { regions { code } }")
        .await;
    assert_eq!(signed.status(), 200);
    let signed_id = request_id(&signed);
    let anonymous = process.query(None, "{ indicators { code } }").await;
    assert_eq!(anonymous.status(), 200);
    let anonymous_id = request_id(&anonymous);
    assert_ne!(signed_id, anonymous_id);

    let span = collector.wait_for(&signed_id).await;
    assert_eq!(span.name, "request", "{span:?}");
    assert_eq!(span.service.as_deref(), Some("baseline-hub"), "{span:?}");
    assert_eq!(span.attribute("route"), Some("/graphql"), "{span:?}");
    assert_eq!(span.attribute("method"), Some("POST"), "{span:?}");
    assert_eq!(span.attribute("operation"), Some("TraceProbe"), "{span:?}");
    let span = collector.wait_for(&anonymous_id).await;
    assert_eq!(span.name, "request", "{span:?}");

    collector.assert_never_received(&token);
    let signature = token.rsplit('.').next().expect("a JWT has a signature");
    collector.assert_never_received(signature);

    let (status, logs) = process.terminate().await;
    assert!(status.success(), "{status}; logs:\n{logs}");
    assert!(!logs.contains(signature), "a log line carried the token");
}

#[tokio::test]
async fn spans_still_buffered_are_flushed_when_the_hub_stops() {
    let collector = Collector::start().await;
    let hub = TestHub::spawn().await;
    // An hour between scheduled exports: whatever arrives, arrives through shutdown.
    let process = exporting_hub(&hub, &collector, "3600000").await;

    let response = process.query(None, "{ regions { code } }").await;
    assert_eq!(response.status(), 200);
    let id = request_id(&response);
    assert!(
        collector
            .spans()
            .iter()
            .all(|s| s.attribute("request_id") != Some(id.as_str())),
        "exported before shutdown: this test would not show the flush"
    );

    // SIGTERM: the hub finishes in-flight requests, then shuts the tracer provider
    // down, which exports what it still holds before the process exits.
    let (status, logs) = process.terminate().await;
    assert!(status.success(), "{status}; logs:\n{logs}");
    let span = collector.wait_for(&id).await;
    assert_eq!(span.service.as_deref(), Some("baseline-hub"), "{span:?}");
}

#[tokio::test]
async fn a_hub_stopped_as_soon_as_it_listens_still_exits_gracefully() {
    // The flush above needs a graceful exit; a SIGTERM that arrived before the server
    // polled its shutdown future would have killed the process outright. The handlers
    // are installed before the address is printed, so this holds from the first moment
    // a client (or a process manager) can know the hub is up.
    let collector = Collector::start().await;
    let hub = TestHub::spawn().await;
    let process = exporting_hub(&hub, &collector, "3600000").await;
    let (status, logs) = process.terminate().await;
    assert!(status.success(), "{status}; logs:\n{logs}");
    assert!(
        logs.contains("shutdown signal received"),
        "no graceful shutdown; logs:\n{logs}"
    );
}
