//! Hostile requests, built in one place for the hostile-input tests (`tests/api/hostile.rs`),
//! the memory test that sends them to a hub process many times over
//! (`tests/api/memory.rs`) and the memory bench (`tests/benches/hostile_memory.rs`).
//!
//! Each builder makes one kind of attack at the size the tests use; [`cases`] lists them
//! with the answer the hub gives, so a caller that sends them in bulk can still check
//! every reply.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{Value, json};

/// `{a{a{a…}}}`, `levels` deep: far past any parser's stack if it were parsed.
pub fn deep_nesting(levels: usize) -> String {
    format!("{}{}", "{a".repeat(levels), "}".repeat(levels))
}

/// A list argument nested `levels` deep: `regions(x: [[[…1…]]])`.
pub fn nested_list_argument(levels: usize) -> String {
    format!(
        "{{ regions(x: {}1{}) {{ code }} }}",
        "[".repeat(levels),
        "]".repeat(levels)
    )
}

/// Fragments that each spread the next twice, `depth` of them: 2^depth fields if
/// expanded.
pub fn fragment_bomb(depth: usize) -> String {
    let mut bomb = String::from("query Bomb { ...F0 }\n");
    for i in 0..depth {
        bomb.push_str(&format!(
            "fragment F{i} on Query {{ ...F{next} ...F{next} }}\n",
            next = i + 1
        ));
    }
    bomb.push_str(&format!(
        "fragment F{depth} on Query {{ regions {{ code name }} }}\n"
    ));
    bomb
}

/// Two fragments spreading each other.
pub const CIRCULAR_FRAGMENTS: &str =
    "{ ...A } fragment A on Query { ...B regions { code } } fragment B on Query { ...A }";

/// Two fragments spreading each other three times each: a cycle that also multiplies.
pub const WIDE_CIRCULAR_FRAGMENTS: &str =
    "{ ...A } fragment A on Query { ...B ...B ...B } fragment B on Query { ...A ...A ...A }";

/// `count` aliases of the `regions` list; `selection` is what each selects
/// (`{ code }`).
pub fn alias_bomb(count: usize, selection: &str) -> String {
    let aliases: String = (0..count)
        .map(|i| format!("a{i}:regions{selection} "))
        .collect();
    format!("{{ {aliases} }}")
}

/// A JSON array of `count` operations.
pub fn batch(count: usize) -> Vec<u8> {
    let batch: Vec<Value> = (0..count)
        .map(|_| json!({ "query": "{__typename}" }))
        .collect();
    serde_json::to_vec(&batch).expect("json")
}

/// A list variable of `count` strings (about 18 bytes each).
pub fn oversized_variables(count: usize) -> Vec<u8> {
    let body = json!({
        "query": "query($f: [String!]) { indicators(codes: $f) { code } }",
        "variables": { "f": vec!["attendance_rate"; count] }
    });
    serde_json::to_vec(&body).expect("json")
}

/// A variable nested `depth` arrays deep, hand-written (serde_json itself refuses to
/// build it).
pub fn nested_variables(depth: usize) -> Vec<u8> {
    format!(
        r#"{{"query":"{{ regions {{ code }} }}","variables":{{"v":{}1{}}}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    )
    .into_bytes()
}

/// A request body that is not UTF-8 inside its query string.
pub fn invalid_utf8() -> Vec<u8> {
    let mut body = br#"{"query":"{ regions { code } }"#.to_vec();
    body.extend_from_slice(&[0xff, 0xfe, 0xc3, 0x28]);
    body.extend_from_slice(br#""}"#);
    body
}

/// An honest query padded with `lines` comment lines (10 bytes each).
pub fn padded_document(lines: usize) -> String {
    format!("{{ regions {{ code }} }} {}", "# padding\n".repeat(lines))
}

/// The JSON body `{"query": document}`.
pub fn query_body(document: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({ "query": document })).expect("json")
}

/// Announces a gigabyte body to the hub at `address` (`host:port`), sends a few bytes
/// and returns the raw HTTP reply (blocking: call it from `spawn_blocking`). The reply
/// must come without the rest of the body.
pub fn announce_huge_body(address: &str) -> String {
    let mut stream = TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    write!(
        stream,
        "POST /graphql HTTP/1.1\r\nhost: hub\r\ncontent-type: application/json\r\n\
         content-length: 1000000000\r\nconnection: close\r\n\r\n{{\"query\":"
    )
    .expect("send");
    let mut reply = Vec::new();
    let mut chunk = [0u8; 4096];
    while let Ok(n) = stream.read(&mut chunk) {
        if n == 0 {
            break;
        }
        reply.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8_lossy(&reply).into_owned()
}

/// POSTs `body` to `/graphql` on the hub at `address` (`host:port`) over a connection
/// of its own and returns the status and body of the reply (blocking: call it from
/// `spawn_blocking`).
///
/// A hub refuses an oversized body without reading it and closes the connection, so
/// the client is still writing when the reply comes; an HTTP client library that
/// stops at the failed write (reqwest reports a broken pipe) loses a reply the hub did
/// send. Here one thread writes while this one reads, and the reply is whatever
/// arrived, however the write ended — what a hostile client sees.
pub fn post_over_own_connection(address: &str, content_type: &str, body: &[u8]) -> (u16, Value) {
    let mut stream = TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut request = format!(
        "POST /graphql HTTP/1.1\r\nhost: hub\r\ncontent-type: {content_type}\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    let mut writer = stream.try_clone().expect("clone the connection");
    let writing = std::thread::spawn(move || {
        // A refused body ends in a broken pipe or a reset; the reply is read regardless.
        let _ = writer.write_all(&request);
    });
    let mut reply = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => reply.extend_from_slice(&chunk[..n]),
            Err(_) if !reply.is_empty() => break,
            Err(err) => panic!("no reply from the hub: {err}"),
        }
    }
    let _ = writing.join();
    let text = String::from_utf8_lossy(&reply);
    let (head, payload) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("not an HTTP reply: {text:?}"));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    let json = serde_json::from_str(payload)
        .unwrap_or_else(|e| panic!("HTTP {status}: not a JSON body ({e}): {payload:?}"));
    (status, json)
}

/// Sends one case over a connection of its own (see [`post_over_own_connection`]) and
/// checks the reply: the case's status and code, no data. `address` is `host:port`,
/// with or without `http://`.
pub async fn send_checked(address: &str, case: &Case) {
    let (address, content_type, body) = (
        address.trim_start_matches("http://").to_owned(),
        case.content_type,
        case.body.clone(),
    );
    let (status, body) = tokio::task::spawn_blocking(move || {
        post_over_own_connection(&address, content_type, &body)
    })
    .await
    .expect("client thread");
    assert_eq!(status, case.status, "{}: {body}", case.name);
    assert_eq!(crate::error_code(&body), case.code, "{}: {body}", case.name);
    assert!(body["data"].is_null(), "{}: {body}", case.name);
}

/// One hostile request and the status and `extensions.code` the hub answers it with
/// (always with no data). A document refused before execution is a request error:
/// `200` with `application/json` (GraphQL over HTTP), and `GRAPHQL_PARSE_FAILED` or
/// `GRAPHQL_VALIDATION_FAILED`; a body that is not a GraphQL request is `BAD_REQUEST`.
pub struct Case {
    pub name: &'static str,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    pub status: u16,
    pub code: &'static str,
}

const PARSE: &str = "GRAPHQL_PARSE_FAILED";
const VALIDATION: &str = "GRAPHQL_VALIDATION_FAILED";
const BAD_REQUEST: &str = "BAD_REQUEST";

/// Every hostile body the suite sends, at the sizes it sends them, under the default
/// limits (`MAX_BODY_BYTES` 256 KiB). The body announced too large is not here: it
/// needs a raw connection ([`announce_huge_body`]).
pub fn cases() -> Vec<Case> {
    let json = "application/json";
    let query = |name, document: String, status, code| Case {
        name,
        content_type: json,
        body: query_body(&document),
        status,
        code,
    };
    vec![
        query(
            "deep nesting (60,000 levels)",
            deep_nesting(60_000),
            200,
            PARSE,
        ),
        query(
            "nested list argument (50,000 levels)",
            nested_list_argument(50_000),
            200,
            PARSE,
        ),
        query(
            "fragment bomb (2^40 fields)",
            fragment_bomb(40),
            200,
            VALIDATION,
        ),
        query(
            "circular fragments",
            CIRCULAR_FRAGMENTS.to_owned(),
            200,
            VALIDATION,
        ),
        query(
            "wide circular fragments",
            WIDE_CIRCULAR_FRAGMENTS.to_owned(),
            200,
            VALIDATION,
        ),
        query(
            "alias bomb over the body limit (20,000 aliases)",
            alias_bomb(20_000, "{ code }"),
            413,
            BAD_REQUEST,
        ),
        query(
            "alias bomb over the complexity budget (8,000 aliases)",
            alias_bomb(8_000, "{code name}"),
            200,
            VALIDATION,
        ),
        query(
            "huge document (1 MB of comments)",
            padded_document(100_000),
            413,
            BAD_REQUEST,
        ),
        Case {
            name: "batch of 5,000 operations",
            content_type: json,
            body: batch(5_000),
            status: 400,
            code: BAD_REQUEST,
        },
        Case {
            name: "oversized variables (40,000 strings)",
            content_type: json,
            body: oversized_variables(40_000),
            status: 413,
            code: BAD_REQUEST,
        },
        Case {
            name: "variables nested 10,000 deep",
            content_type: json,
            body: nested_variables(10_000),
            status: 400,
            code: BAD_REQUEST,
        },
        Case {
            name: "invalid UTF-8",
            content_type: json,
            body: invalid_utf8(),
            status: 400,
            code: BAD_REQUEST,
        },
    ]
}
