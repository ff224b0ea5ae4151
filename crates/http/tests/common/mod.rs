//! What the HTTP tests share: a small MCP handler and a harness that runs
//! codemode-http on a loopback port.

// Each test crate uses its own part of this.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use codemode_http::{AuthConfig, HttpServer, ServerConfig, StaticToken};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ListToolsResult, PaginatedRequestParams,
    ServerCapabilities, ServerConfig as McpServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

// ---------------------------------------------------------------------------
// A small MCP handler: `sleep {ms}` (counts finished and cancelled calls) and
// `whoami` (the principal the auth layer established).

#[derive(Clone, Default)]
pub struct TestServer {
    pub finished: Arc<AtomicUsize>,
    pub cancelled: Arc<AtomicUsize>,
}

struct CountOnDrop(Arc<AtomicUsize>, bool);
impl Drop for CountOnDrop {
    fn drop(&mut self) {
        if self.1 {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl ServerHandler for TestServer {
    fn get_info(&self) -> McpServerConfig {
        McpServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn list_tools(
        &self,
        _r: Option<PaginatedRequestParams>,
        _c: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let schema = json!({"type": "object", "properties": {"ms": {"type": "number"}}});
        let schema = schema.as_object().unwrap().clone();
        Ok(ListToolsResult::with_all_items(vec![
            Tool::new("sleep", "sleeps", schema.clone()),
            Tool::new("whoami", "the caller", schema),
        ]))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        match request.name.as_ref() {
            "whoami" => {
                let p = codemode_http::principal_of(&context.extensions).cloned();
                let text = match p {
                    Some(p) => format!("{} {}", p.name, p.scope_list()),
                    None => "none".into(),
                };
                Ok(CallToolResult::success(vec![ContentBlock::text(text)]).into())
            }
            "sleep" => {
                let ms = request.arguments.as_ref().and_then(|a| a.get("ms")).and_then(Value::as_u64).unwrap_or(0);
                // Counts a cancellation whether the future is dropped or sees the token.
                let mut guard = CountOnDrop(self.cancelled.clone(), true);
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(ms)) => {
                        guard.1 = false;
                        self.finished.fetch_add(1, Ordering::SeqCst);
                        Ok(CallToolResult::success(vec![ContentBlock::text("slept")]).into())
                    }
                    _ = context.ct.cancelled() => Ok(CallToolResult::error(vec![ContentBlock::text("cancelled")]).into()),
                }
            }
            other => Err(McpError::invalid_params(format!("unknown tool {other}"), None)),
        }
    }
}

// ---------------------------------------------------------------------------
// Harness

pub struct Harness {
    pub base: String,
    pub server: TestServer,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<std::io::Result<()>>,
    pub http: reqwest::Client,
}

pub fn quiet(server: ServerConfig) -> ServerConfig {
    ServerConfig { listen: "127.0.0.1:0".into(), ..server }
}

pub async fn start_with(
    server: ServerConfig,
    auth: AuthConfig,
    ready: bool,
) -> (Harness, codemode_http::ReadyHandle<TestServer>) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let apis = vec!["books".to_string(), "cf".to_string()];
    let http = HttpServer::<TestServer>::bind(&quiet(server), &auth, &apis).await.expect("bind");
    let base = format!("http://{}", http.local_addr());
    let handle = http.ready_handle();
    let test_server = TestServer::default();
    if ready {
        handle.set(test_server.clone());
    }
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let done = tokio::spawn(http.run(async {
        let _ = rx.await;
    }));
    let client = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
    (Harness { base, server: test_server, stop: Some(tx), done, http: client }, handle)
}

pub async fn start(server: ServerConfig, auth: AuthConfig) -> Harness {
    start_with(server, auth, true).await.0
}

impl Harness {
    pub fn mcp(&self) -> String {
        format!("{}/mcp", self.base)
    }

    pub fn post(&self, token: Option<&str>, session: Option<&str>, body: &Value) -> reqwest::RequestBuilder {
        let mut r = self
            .http
            .post(self.mcp())
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .json(body);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        if let Some(s) = session {
            r = r.header("mcp-session-id", s).header("mcp-protocol-version", "2025-06-18");
        }
        r
    }

    /// initialize + initialized; the session id (None in stateless mode).
    pub async fn initialize(&self, token: Option<&str>) -> Option<String> {
        let r = self.post(token, None, &init()).send().await.unwrap();
        assert_eq!(r.status(), 200, "{:?}", r.text().await);
        let sid = r.headers().get("mcp-session-id").map(|v| v.to_str().unwrap().to_string());
        let v = message(r).await;
        assert!(v["result"]["protocolVersion"].is_string(), "{v}");
        let r = self
            .post(token, sid.as_deref(), &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        sid
    }

    pub async fn call(&self, token: Option<&str>, session: Option<&str>, tool: &str, args: Value) -> Value {
        let r = self.post(token, session, &call(tool, args)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{:?}", r.text().await);
        message(r).await
    }

    pub async fn stop(mut self) -> Duration {
        let t = Instant::now();
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(15), self.done).await.expect("stops").unwrap().unwrap();
        t.elapsed()
    }
}

pub fn init() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})
}

pub fn call(tool: &str, args: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": tool, "arguments": args}})
}

/// The JSON-RPC response in a JSON or SSE body.
pub async fn message(r: reqwest::Response) -> Value {
    let json = r.headers().get("content-type").is_some_and(|v| v.to_str().unwrap().starts_with("application/json"));
    let text = r.text().await.unwrap();
    if json {
        return serde_json::from_str(&text).unwrap();
    }
    text.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
        .find(|v| v.get("id").is_some())
        .unwrap_or_else(|| panic!("no response in {text}"))
}

pub fn text_of(v: &Value) -> String {
    v["result"]["content"][0]["text"].as_str().unwrap_or_default().to_string()
}

pub fn hex_sha256(s: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, s.as_bytes()).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

pub fn token(name: &str, secret: &str, scopes: &[&str]) -> StaticToken {
    StaticToken {
        name: name.into(),
        sha256: Some(hex_sha256(secret)),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

/// One raw HTTP/1.1 exchange (for headers reqwest will not send as given).
pub async fn raw(base: &str, request: &str) -> String {
    let addr = base.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).to_string()
}

pub fn raw_post(host: &str, origin: Option<&str>, body: &str) -> String {
    let origin = origin.map(|o| format!("Origin: {o}\r\n")).unwrap_or_default();
    format!(
        "POST /mcp HTTP/1.1\r\nHost: {host}\r\n{origin}Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}
