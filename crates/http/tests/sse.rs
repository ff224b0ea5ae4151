//! The legacy HTTP+SSE transport (MCP 2024-11-05) over real sockets on
//! loopback: the endpoint event, messages answered on the stream, sessions
//! bound to their principal, auth, Host checks, caps, keep-alives, tool-call
//! slots held until the answer is written, disconnects and shutdown.

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use codemode_http::{AuthConfig, ServerConfig};
use common::*;
use serde_json::{json, Value};

/// One event of a stream; a comment (`: …`) has the name `:`.
#[derive(Debug)]
struct Event {
    name: String,
    data: String,
}

/// A client's `GET /sse` stream.
struct Stream {
    response: reqwest::Response,
    buffer: String,
    /// `http://host:port/messages?sessionId=…`
    endpoint: String,
}

impl Stream {
    async fn open(h: &Harness, token: Option<&str>) -> Stream {
        let r = get_sse(h, token).await;
        assert_eq!(r.status(), 200, "{:?}", r.text().await);
        assert_eq!(r.headers()["content-type"], "text/event-stream");
        let mut s = Stream { response: r, buffer: String::new(), endpoint: String::new() };
        let first = s.next().await.expect("an endpoint event");
        assert_eq!(first.name, "endpoint", "{first:?}");
        assert!(first.data.starts_with("/messages?sessionId="), "{first:?}");
        s.endpoint = format!("{}{}", h.base, first.data);
        s
    }

    fn session_id(&self) -> &str {
        self.endpoint.rsplit('=').next().unwrap_or_default()
    }

    /// The next event, or `None` when the stream ends (or stays silent 10 s).
    async fn next(&mut self) -> Option<Event> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = Event { name: "message".into(), data: String::new() };
                for line in block.lines() {
                    if let Some(c) = line.strip_prefix(':') {
                        event = Event { name: ":".into(), data: c.trim().into() };
                    } else if let Some(n) = line.strip_prefix("event:") {
                        event.name = n.trim().into();
                    } else if let Some(d) = line.strip_prefix("data:") {
                        event.data.push_str(d.trim());
                    }
                }
                return Some(event);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            match tokio::time::timeout(left, self.response.chunk()).await {
                Ok(Ok(Some(chunk))) => self.buffer.push_str(&String::from_utf8_lossy(&chunk)),
                _ => return None,
            }
        }
    }

    /// The message answering request `id`.
    async fn answer(&mut self, id: u64) -> Value {
        while let Some(e) = self.next().await {
            if e.name != "message" {
                continue;
            }
            let v: Value = serde_json::from_str(&e.data).expect("JSON in a message event");
            if v["id"] == id {
                return v;
            }
        }
        panic!("no answer to request {id}");
    }
}

async fn get_sse(h: &Harness, token: Option<&str>) -> reqwest::Response {
    let mut r = h.http.get(format!("{}/sse", h.base)).header("accept", "text/event-stream");
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    r.send().await.unwrap()
}

async fn post_to(h: &Harness, url: &str, token: Option<&str>, body: &Value) -> reqwest::Response {
    let mut r = h.http.post(url).json(body);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    r.send().await.unwrap()
}

/// POSTs to the stream's session, expecting 202.
async fn send(h: &Harness, s: &Stream, token: Option<&str>, body: &Value) {
    let r = post_to(h, &s.endpoint, token, body).await;
    assert_eq!(r.status(), 202, "{:?}", r.text().await);
}

/// initialize (as a 2024-11-05 client) + initialized.
async fn initialize(h: &Harness, s: &mut Stream, token: Option<&str>) {
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    send(h, s, token, &init).await;
    let v = s.answer(1).await;
    assert_eq!(v["result"]["protocolVersion"], "2024-11-05", "{v}");
    send(h, s, token, &json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).await;
}

fn call_id(id: u64, tool: &str, args: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": args}})
}

fn two_tokens() -> AuthConfig {
    AuthConfig {
        tokens: vec![token("a", "token-a-0123456789", &["*"]), token("b", "token-b-0123456789", &["books:read"])],
        oauth: None,
        ..Default::default()
    }
}

/// Polls until `f` holds (3 s at most).
async fn eventually(what: &str, f: impl Fn() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < Duration::from_secs(3), "{what}: not within 3 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_endpoint_event_then_answers_on_the_stream() {
    let h = start(ServerConfig::default(), AuthConfig::default()).await;
    let mut s = Stream::open(&h, None).await;
    assert_eq!(s.session_id().len(), 32, "{}", s.endpoint);
    initialize(&h, &mut s, None).await;
    send(&h, &s, None, &json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})).await;
    let tools = s.answer(2).await;
    assert_eq!(tools["result"]["tools"].as_array().unwrap().len(), 2, "{tools}");
    // The handler finds the principal in the request parts, as over /mcp.
    send(&h, &s, None, &call_id(3, "whoami", json!({}))).await;
    assert_eq!(text_of(&s.answer(3).await), "anonymous all");
    // An unknown method is answered with a JSON-RPC error, on the stream.
    send(&h, &s, None, &json!({"jsonrpc": "2.0", "id": 4, "method": "nope/nope"})).await;
    assert!(s.answer(4).await["error"]["code"].is_number());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_belong_to_their_principal_and_need_auth() {
    let h = start(ServerConfig::default(), two_tokens()).await;
    // Auth on both routes.
    let r = get_sse(&h, None).await;
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"codemode\"");
    assert_eq!(get_sse(&h, Some("wrong-token")).await.status(), 401);
    let mut s = Stream::open(&h, Some("token-a-0123456789")).await;
    let ping = json!({"jsonrpc": "2.0", "id": 9, "method": "ping"});
    assert_eq!(post_to(&h, &s.endpoint, None, &ping).await.status(), 401);
    initialize(&h, &mut s, Some("token-a-0123456789")).await;
    send(&h, &s, Some("token-a-0123456789"), &call_id(3, "whoami", json!({}))).await;
    assert_eq!(text_of(&s.answer(3).await), "a all");
    // Another principal's credential: as if the session did not exist.
    let r = post_to(&h, &s.endpoint, Some("token-b-0123456789"), &ping).await;
    assert_eq!(r.status(), 404);
    // Unknown and missing session ids.
    let unknown = format!("{}/messages?sessionId=00000000000000000000000000000000", h.base);
    let r = post_to(&h, &unknown, Some("token-a-0123456789"), &ping).await;
    assert_eq!(r.status(), 404);
    let text = r.text().await.unwrap();
    assert!(text.contains("no such SSE session") && text.contains("GET /sse"), "{text}");
    let r = post_to(&h, &format!("{}/messages", h.base), Some("token-a-0123456789"), &ping).await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("sessionId"));
    // b's own session works, and sees b.
    let mut sb = Stream::open(&h, Some("token-b-0123456789")).await;
    initialize(&h, &mut sb, Some("token-b-0123456789")).await;
    send(&h, &sb, Some("token-b-0123456789"), &call_id(5, "whoami", json!({}))).await;
    assert_eq!(text_of(&sb.answer(5).await), "b books:read");
    // a's session still answers a.
    send(&h, &s, Some("token-a-0123456789"), &ping).await;
    assert!(s.answer(9).await["result"].is_object());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_posts_get_clear_4xx_and_the_session_lives_on() {
    let h = start(ServerConfig { max_body_kib: 1, ..Default::default() }, AuthConfig::default()).await;
    let mut s = Stream::open(&h, None).await;
    initialize(&h, &mut s, None).await;
    let garbage = h.http.post(&s.endpoint).header("content-type", "application/json").body("{not json").send();
    let r = garbage.await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("not one JSON-RPC 2.0 message"));
    let r = post_to(&h, &s.endpoint, None, &json!({"jsonrpc": "2.0", "id": 1, "nothing": true})).await;
    assert_eq!(r.status(), 400);
    let r = post_to(&h, &s.endpoint, None, &json!([{"jsonrpc": "2.0", "id": 1, "method": "ping"}])).await;
    assert_eq!(r.status(), 400, "batches are not messages");
    let r = post_to(&h, &s.endpoint, None, &call_id(6, "sleep", json!({"pad": "x".repeat(4096)}))).await;
    assert_eq!(r.status(), 413);
    // GET on /messages, POST on /sse: wrong methods.
    assert_eq!(h.http.get(&s.endpoint).send().await.unwrap().status(), 405);
    assert_eq!(h.http.post(format!("{}/sse", h.base)).send().await.unwrap().status(), 405);
    send(&h, &s, None, &json!({"jsonrpc": "2.0", "id": 7, "method": "ping"})).await;
    assert!(s.answer(7).await["result"].is_object());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_and_origin_are_checked_on_both_routes() {
    let h = start(ServerConfig::default(), AuthConfig::default()).await;
    let port = h.base.rsplit(':').next().unwrap().to_string();
    let get = |host: &str, origin: &str| {
        format!("GET /sse HTTP/1.1\r\nHost: {host}\r\n{origin}Accept: text/event-stream\r\nConnection: close\r\n\r\n")
    };
    let evil = raw(&h.base, &get("evil.example.com", "")).await;
    assert!(evil.starts_with("HTTP/1.1 403"), "{evil}");
    let evil_origin = raw(&h.base, &get(&format!("127.0.0.1:{port}"), "Origin: https://evil.example.com\r\n")).await;
    assert!(evil_origin.starts_with("HTTP/1.1 403"), "{evil_origin}");
    let s = Stream::open(&h, None).await;
    let path = s.endpoint.trim_start_matches(&h.base);
    let post =
        raw_post("evil.example.com", None, r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#).replacen("/mcp", path, 1);
    let refused = raw(&h.base, &post).await;
    assert!(refused.starts_with("HTTP/1.1 403"), "{refused}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_count_against_the_session_caps_until_closed() {
    let h = start(ServerConfig { max_sessions: 3, max_sessions_per_principal: 2, ..Default::default() }, two_tokens())
        .await;
    let a1 = Stream::open(&h, Some("token-a-0123456789")).await;
    let _a2 = Stream::open(&h, Some("token-a-0123456789")).await;
    let r = get_sse(&h, Some("token-a-0123456789")).await;
    assert_eq!(r.status(), 429, "a third session for a");
    assert!(r.text().await.unwrap().contains("sessions open"));
    // Streamable HTTP sessions and streams share the caps.
    h.initialize(Some("token-b-0123456789")).await.unwrap();
    assert_eq!(get_sse(&h, Some("token-b-0123456789")).await.status(), 503, "the server is full");
    let r = h.post(Some("token-b-0123456789"), None, &init()).send().await.unwrap();
    assert_eq!(r.status(), 503, "for /mcp too");
    // Closing a stream ends its session and makes room.
    let endpoint = a1.endpoint.clone();
    drop(a1);
    let t = Instant::now();
    loop {
        let r = get_sse(&h, Some("token-b-0123456789")).await;
        if r.status() == 200 {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(3), "no room after closing a stream: {}", r.status());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    assert_eq!(post_to(&h, &endpoint, Some("token-a-0123456789"), &ping).await.status(), 404);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_comments_flow_on_an_idle_stream() {
    let h = start(ServerConfig { sse_keep_alive_secs: 0.2, ..Default::default() }, AuthConfig::default()).await;
    let mut s = Stream::open(&h, None).await;
    let t = Instant::now();
    let e = s.next().await.expect("a keep-alive");
    assert_eq!(e.name, ":", "{e:?}");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_call_holds_its_slot_until_its_answer_is_on_the_stream() {
    let h = start(ServerConfig { max_concurrent_calls: 1, ..Default::default() }, AuthConfig::default()).await;
    let mut s = Stream::open(&h, None).await;
    initialize(&h, &mut s, None).await;
    send(&h, &s, None, &call_id(2, "sleep", json!({"ms": 700}))).await;
    // The POST was answered at once; the call still runs.
    let r = post_to(&h, &s.endpoint, None, &call_id(3, "whoami", json!({}))).await;
    assert_eq!(r.status(), 429);
    assert_eq!(text_of(&s.answer(2).await), "slept");
    send(&h, &s, None, &call_id(4, "whoami", json!({}))).await;
    assert_eq!(text_of(&s.answer(4).await), "anonymous all");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_stream_cancels_running_calls() {
    let h = start(ServerConfig { max_concurrent_calls: 1, ..Default::default() }, AuthConfig::default()).await;
    let mut s = Stream::open(&h, None).await;
    initialize(&h, &mut s, None).await;
    send(&h, &s, None, &call_id(2, "sleep", json!({"ms": 30000}))).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(s);
    let server = h.server.clone();
    eventually("the call is cancelled", || server.cancelled.load(Ordering::SeqCst) == 1).await;
    assert_eq!(h.server.finished.load(Ordering::SeqCst), 0);
    // And its slot is free (max_concurrent_calls = 1).
    let mut s = Stream::open(&h, None).await;
    initialize(&h, &mut s, None).await;
    send(&h, &s, None, &call_id(3, "sleep", json!({"ms": 1}))).await;
    assert_eq!(text_of(&s.answer(3).await), "slept");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_the_streams() {
    let h = start(ServerConfig { shutdown_grace_secs: 5.0, ..Default::default() }, AuthConfig::default()).await;
    let mut s = Stream::open(&h, None).await;
    initialize(&h, &mut s, None).await;
    send(&h, &s, None, &call_id(2, "sleep", json!({"ms": 400}))).await;
    let stopping = tokio::spawn(h.stop());
    // The running call is let finish and its answer still arrives …
    assert_eq!(text_of(&s.answer(2).await), "slept");
    // … then the stream ends, and the server is down promptly.
    let t = Instant::now();
    while let Some(e) = s.next().await {
        assert_eq!(e.name, ":", "nothing but keep-alives after the answer: {e:?}");
    }
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    let took = stopping.await.unwrap();
    assert!(took < Duration::from_secs(4), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_without_initialize_is_closed_after_the_idle_time() {
    let h = start(ServerConfig { session_idle_secs: 1.0, ..Default::default() }, AuthConfig::default()).await;
    let mut s = Stream::open(&h, None).await;
    let t = Instant::now();
    while let Some(e) = s.next().await {
        assert_eq!(e.name, ":", "{e:?}");
    }
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(4), "{took:?}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_sse_can_be_turned_off() {
    let h = start(ServerConfig { legacy_sse: false, ..Default::default() }, AuthConfig::default()).await;
    let r = get_sse(&h, None).await;
    assert_eq!(r.status(), 404);
    assert_eq!(r.text().await.unwrap(), "Not Found: the MCP endpoint is /mcp");
    assert!(h.initialize(None).await.is_some(), "/mcp is served");
    h.stop().await;
}
