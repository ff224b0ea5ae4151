//! One upstream MCP server: connecting (child process or Streamable HTTP),
//! listing tools, calling them, and the supervisor that reconnects with
//! bounded exponential backoff and refreshes the tool list on
//! `notifications/tools/list_changed`.
//!
//! `tools/list` and `tools/call` are sent as raw JSON-RPC requests and their
//! results read as JSON, so one malformed tool (say an `inputSchema` that is
//! not an object) cannot make a whole server's list unreadable.

use std::collections::{HashMap, VecDeque};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::model::{
    CancelledNotificationParam, ClientCapabilities, ClientRequest, CustomRequest, Implementation,
    InitializeRequestParams, ProtocolVersion, RequestId,
};
use rmcp::service::{NotificationContext, Peer, PeerRequestOptions, RoleClient, ServiceError};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::ClientHandler;
use serde_json::{json, Map, Value};
use tokio::io::AsyncBufReadExt;
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

use crate::config::{PortalOptions, ServerConfig, Transport};
use crate::oauth::OAuthRuntime;
use crate::ServerState;
use codemode_upstream::Scrubber;

/// Most lines of an upstream's stderr kept for error messages.
const STDERR_LINES: usize = 12;
/// Most characters kept of one stderr line.
const STDERR_LINE_CHARS: usize = 400;
/// How long a ping after a timed-out call may take before the session is
/// considered dead (at most; at least 1 s, else the call timeout).
const PING_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a server waiting for sign-in looks at its token file.
const SIGN_IN_POLL: Duration = Duration::from_secs(1);
/// Most `tools/list` pages read from one server.
const MAX_PAGES: usize = 200;
/// Environment variables a stdio child inherits (as the official SDKs do).
const INHERITED_ENV: &[&str] = &["HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER", "LANG", "LC_ALL", "TMPDIR", "TZ"];

/// A tool as the upstream described it (before naming and policy).
#[derive(Clone, Debug)]
pub(crate) struct RawTool {
    pub name: String,
    pub description: Option<String>,
    pub input_schema: Value,
    pub output_schema: Option<Value>,
    pub annotations: Option<Value>,
    pub schema_problem: Option<String>,
}

/// What the portal knows about one server right now.
pub(crate) struct Shared {
    pub state: ServerState,
    pub peer: Option<Peer<RoleClient>>,
    /// The live session: a number (one per connection) and what ends it.
    pub session: Option<(u64, CancellationToken)>,
    /// Last tools listed (kept while reconnecting, so names stay stable).
    pub tools: Vec<RawTool>,
    /// Problems found in the tool list (dropped tools…).
    pub problems: Vec<String>,
    /// `name version` of the upstream implementation.
    pub upstream: Option<String>,
}

/// One configured upstream and its live connection, if any.
pub(crate) struct Server {
    pub config: ServerConfig,
    pub shared: Mutex<Shared>,
    /// Bumped on every state change (waiters for readiness watch it).
    state_tx: watch::Sender<u64>,
    /// Wakes a supervisor parked in [`ServerState::Failed`].
    wake: Notify,
    /// Process group of the running child (stdio only).
    pgid: Mutex<Option<i32>>,
    /// The child's last stderr lines (scrubbed).
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    /// Removes the portal's credentials from stderr lines before they are
    /// logged or quoted.
    scrubber: Scrubber,
    /// OAuth state of a server with `auth = { type = "oauth" }` (an `Err`:
    /// its token store cannot be opened, reported on every attempt).
    pub oauth: Option<Result<Arc<OAuthRuntime>, String>>,
    /// Each principal's own session, for a server authenticated per user.
    pub sessions: Option<crate::sessions::UserSessions>,
}

impl Server {
    pub fn new(config: ServerConfig, scrubber: Scrubber) -> Self {
        let oauth = match (&config.oauth, &config.transport) {
            (Some(o), Transport::Http { url, .. }) => {
                Some(OAuthRuntime::new(&config.name, url, o.clone()).map(Arc::new))
            }
            (Some(_), _) => Some(Err("OAuth applies to Streamable HTTP servers (`url`) only".to_string())),
            (None, _) => None,
        };
        Server {
            oauth,
            sessions: config.per_user.as_ref().map(crate::sessions::UserSessions::new),
            config,
            shared: Mutex::new(Shared {
                state: ServerState::Connecting,
                peer: None,
                session: None,
                tools: vec![],
                problems: vec![],
                upstream: None,
            }),
            state_tx: watch::channel(0).0,
            wake: Notify::new(),
            pgid: Mutex::new(None),
            stderr_tail: Arc::new(Mutex::new(VecDeque::new())),
            scrubber,
        }
    }

    /// The OAuth runtime, when this server uses OAuth and its store opened.
    pub fn oauth_runtime(&self) -> Option<&Arc<OAuthRuntime>> {
        self.oauth.as_ref().and_then(|r| r.as_ref().ok())
    }

    /// Every token this server has been given, for scrubbing (empty
    /// without OAuth).
    pub fn token_scrubber(&self) -> Option<Scrubber> {
        self.oauth_runtime().map(|rt| rt.store.seen.scrubber())
    }

    /// Whether the last attempt ended in "a person must sign in" (or fix
    /// the client credentials): no point retrying on a timer.
    fn needs_sign_in(&self) -> Option<String> {
        self.oauth_runtime().filter(|rt| rt.needs_sign_in()).map(|rt| rt.sign_in_message())
    }

    pub fn state(&self) -> ServerState {
        lock(&self.shared).state.clone()
    }

    pub fn set_state(&self, state: ServerState) {
        {
            let mut s = lock(&self.shared);
            if !matches!(state, ServerState::Ready) {
                s.peer = None;
                s.session = None;
            }
            s.state = state;
        }
        self.state_tx.send_modify(|n| *n += 1);
    }

    /// The process group of the running child, if any.
    pub fn process_group(&self) -> Option<i32> {
        *lock(&self.pgid)
    }

    /// Sends SIGKILL to the child's whole process group (no-op without one).
    /// On Windows the child runs in a job object instead, terminated with
    /// every process in it when the child handle is dropped (`KillOnDrop`):
    /// there this only forgets the id.
    pub fn kill_group(&self) {
        if let Some(pgid) = lock(&self.pgid).take() {
            #[cfg(unix)]
            {
                if pgid > 1 {
                    // SAFETY: plain syscall; pgid is a group we created (setpgid at spawn).
                    unsafe {
                        libc::killpg(pgid, libc::SIGKILL);
                    }
                }
            }
            #[cfg(not(unix))]
            let _ = pgid;
        }
    }

    /// The last stderr lines, as a suffix for error messages (empty if none).
    pub fn stderr_suffix(&self) -> String {
        let tail = lock(&self.stderr_tail);
        if tail.is_empty() {
            return String::new();
        }
        let lines: Vec<&str> = tail.iter().rev().take(5).rev().map(String::as_str).collect();
        format!("; its stderr ends with: {}", lines.join(" | "))
    }

    /// Waits until the server is ready (or clearly not coming), for at most
    /// `wait` (and never past `deadline`). A server in `Failed` is woken for a
    /// fresh round of attempts and the call fails at once.
    pub async fn ready_peer(
        &self,
        wait: Duration,
        deadline: tokio::time::Instant,
    ) -> Result<(Peer<RoleClient>, u64), (&'static str, String)> {
        let until = deadline.min(tokio::time::Instant::now() + wait);
        let mut woken = false;
        let mut rx = self.state_tx.subscribe();
        loop {
            let (state, peer, session) = {
                let s = lock(&self.shared);
                (s.state.clone(), s.peer.clone(), s.session.as_ref().map(|(id, _)| *id))
            };
            match (state, peer, session) {
                (ServerState::Ready, Some(peer), Some(id)) if !peer.is_transport_closed() => return Ok((peer, id)),
                (ServerState::Failed(e), _, _) => {
                    self.wake.notify_one();
                    return Err((
                        "UpstreamUnavailable",
                        format!(
                            "server `{}` is down ({e}); a new connection attempt has been started",
                            self.config.name
                        ),
                    ));
                }
                (ServerState::NeedsSignIn(message), _, _) => {
                    // Someone ran `codemode login` since: connect with the new
                    // token and wait for it like a first connection.
                    let signed_in = self.oauth_runtime().is_some_and(|rt| rt.signed_in_since());
                    if signed_in && !woken {
                        woken = true;
                        self.wake.notify_one();
                        if tokio::time::timeout_at(until, rx.changed()).await.is_err() {
                            return Err(("SignInRequired", message));
                        }
                        continue;
                    }
                    return Err(("SignInRequired", message));
                }
                (ServerState::Stopped, _, _) => {
                    return Err(("UpstreamUnavailable", format!("server `{}` has been shut down", self.config.name)))
                }
                (state, _, _) => {
                    if tokio::time::timeout_at(until, rx.changed()).await.is_err() {
                        let what = match state {
                            ServerState::Reconnecting { attempt, last_error } => {
                                format!("is reconnecting (attempt {attempt}; last error: {last_error})")
                            }
                            _ => "is still connecting".into(),
                        };
                        return Err((
                            "UpstreamUnavailable",
                            format!("server `{}` {what}; try again shortly", self.config.name),
                        ));
                    }
                }
            }
        }
    }

    /// Ends session `id` if it is still the current one, so the supervisor
    /// reconnects (a session whose transport failed may never answer again:
    /// e.g. an HTTP server that restarted and answers the old session id
    /// with an error that names no request).
    pub fn drop_session(&self, id: u64, why: &str) {
        let s = lock(&self.shared);
        if let Some((current, ct)) = &s.session {
            if *current == id {
                tracing::warn!(server = %self.config.name, "dropping the session: {why}");
                ct.cancel();
            }
        }
    }

    /// The upstream refused every token codemode has during session `id`:
    /// the server is `NeedsSignIn` from now on (so status and the next call
    /// say so at once), the session is ended, and this is the call's error.
    fn refused(&self, id: u64) -> Map<String, Value> {
        let message = self.needs_sign_in().unwrap_or_default();
        self.drop_session(id, "the upstream refused codemode's OAuth token");
        self.set_state(ServerState::NeedsSignIn(message.clone()));
        error("SignInRequired", message)
    }

    /// The token ending session `id`, if it is still the current one.
    fn session_token(&self, id: u64) -> Option<CancellationToken> {
        let s = lock(&self.shared);
        s.session.as_ref().filter(|(current, _)| *current == id).map(|(_, ct)| ct.clone())
    }

    /// Asks a supervisor parked in `Failed` to try again.
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The rmcp client handler: reports tool list changes.
struct PortalClient {
    server: String,
    list_changed: Arc<Notify>,
}

impl ClientHandler for PortalClient {
    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        tracing::debug!(server = %self.server, "tools/list_changed");
        self.list_changed.notify_one();
    }

    fn get_info(&self) -> InitializeRequestParams {
        InitializeRequestParams::new(
            ClientCapabilities::default(),
            Implementation::new("codemode-portal", env!("CARGO_PKG_VERSION")),
        )
        .with_protocol_version(ProtocolVersion::V_2025_11_25)
    }
}

/// A live session.
pub(crate) struct Connection {
    pub peer: Peer<RoleClient>,
    pub list_changed: Arc<Notify>,
    pub ct: CancellationToken,
    pub waiting: tokio::task::JoinHandle<()>,
    /// `name version` of the upstream implementation.
    pub upstream: Option<String>,
}

/// Spawns or dials, initialises, lists tools. Everything within `timeout`.
/// `extra` headers (a principal's credential) go with every request of an
/// HTTP session, beside the configured ones.
pub(crate) async fn connect(
    server: &Server,
    timeout: Duration,
    extra: &[(String, String)],
) -> Result<(Connection, Vec<RawTool>, Vec<String>), String> {
    let list_changed = Arc::new(Notify::new());
    let handler = PortalClient { server: server.config.name.clone(), list_changed: list_changed.clone() };
    let ct = CancellationToken::new();
    let deadline = tokio::time::Instant::now() + timeout;
    let running = match &server.config.transport {
        Transport::Stdio { command, args, cwd, env } => {
            let mut cmd = process_wrap::tokio::CommandWrap::with_new(command, |c| {
                c.args(args);
                c.env_clear();
                for k in INHERITED_ENV {
                    if let Ok(v) = std::env::var(k) {
                        c.env(k, v);
                    }
                }
                for (k, v) in env {
                    c.env(k, v);
                }
                if let Some(dir) = cwd {
                    c.current_dir(dir);
                }
                #[cfg(target_os = "linux")]
                // SAFETY: prctl is async-signal-safe; it only sets a flag on the child.
                unsafe {
                    c.pre_exec(|| {
                        // If the portal dies without cleaning up, the child gets SIGKILL.
                        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                        Ok(())
                    });
                }
            });
            // The child and whatever it starts, as one unit to kill: a
            // process group on Unix, a job object on Windows.
            #[cfg(unix)]
            cmd.wrap(process_wrap::tokio::ProcessGroup::leader());
            #[cfg(windows)]
            cmd.wrap(process_wrap::tokio::JobObject);
            cmd.wrap(process_wrap::tokio::KillOnDrop);
            let (child, stderr) = TokioChildProcess::builder(cmd)
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| format!("cannot start `{command}`: {e}"))?;
            *lock(&server.pgid) = child.id().map(|p| p as i32);
            lock(&server.stderr_tail).clear();
            if let Some(stderr) = stderr {
                tokio::spawn(read_stderr(
                    server.config.name.clone(),
                    stderr,
                    server.stderr_tail.clone(),
                    server.scrubber.clone(),
                ));
            }
            match tokio::time::timeout_at(deadline, rmcp::service::serve_client_with_ct(handler, child, ct.clone()))
                .await
            {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => {
                    tokio::time::sleep(Duration::from_millis(50)).await; // let stderr drain
                    return Err(format!("initialisation failed: {e}{}", server.stderr_suffix()));
                }
                Err(_) => {
                    return Err(format!(
                        "no answer to `initialize` within {}s{}",
                        timeout.as_secs_f32(),
                        server.stderr_suffix()
                    ))
                }
            }
        }
        Transport::Http { url, headers } => {
            let mut map = header_map(headers)?;
            map.extend(header_map(extra)?);
            let config = StreamableHttpClientTransportConfig::with_uri(url.as_str())
                .custom_headers(map)
                .max_concurrent_requests(64)
                .reinit_on_expired_session(true);
            // reqwest is built without a default TLS provider in this workspace.
            let _ = rustls::crypto::ring::default_provider().install_default();
            let started = match &server.oauth {
                None => {
                    let transport = StreamableHttpClientTransport::from_config(config);
                    tokio::time::timeout_at(
                        deadline,
                        rmcp::service::serve_client_with_ct(handler, transport, ct.clone()),
                    )
                    .await
                }
                Some(Err(e)) => return Err(e.clone()),
                Some(Ok(rt)) => {
                    let client =
                        tokio::time::timeout_at(deadline, crate::oauth::connect_client(rt, reqwest::Client::new()))
                            .await
                            .map_err(|_| {
                                format!("no answer from the OAuth endpoints of {url} within {}s", timeout.as_secs_f32())
                            })??;
                    let transport = StreamableHttpClientTransport::with_client(client, config);
                    tokio::time::timeout_at(
                        deadline,
                        rmcp::service::serve_client_with_ct(handler, transport, ct.clone()),
                    )
                    .await
                }
            };
            match started {
                Ok(Ok(r)) => r,
                Ok(Err(_)) if server.needs_sign_in().is_some() => {
                    return Err(server.needs_sign_in().unwrap_or_default())
                }
                Ok(Err(e)) => return Err(format!("cannot initialise a session at {url}: {e}")),
                Err(_) => return Err(format!("no answer from {url} within {}s", timeout.as_secs_f32())),
            }
        }
        Transport::Sse { url, headers } => {
            let map: reqwest::header::HeaderMap = header_map(headers)?.into_iter().collect();
            let _ = rustls::crypto::ring::default_provider().install_default();
            let started = async {
                let transport = crate::sse::SseClient::connect(url, map).await?;
                rmcp::service::serve_client_with_ct(handler, transport, ct.clone())
                    .await
                    .map_err(|e| format!("cannot initialise a session at {url}: {e}"))
            };
            match tokio::time::timeout_at(deadline, started).await {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(format!("no answer from {url} within {}s", timeout.as_secs_f32())),
            }
        }
    };
    let peer = running.peer().clone();
    let upstream = peer.peer_info().and_then(|i| i.server_info.as_ref().map(|s| format!("{} {}", s.name, s.version)));
    let waiting = tokio::spawn(async move {
        let _ = running.waiting().await;
    });
    let conn = Connection { peer, list_changed, ct, waiting, upstream };
    match tokio::time::timeout_at(deadline, list_tools(&conn.peer)).await {
        Ok(Ok((tools, problems))) => Ok((conn, tools, problems)),
        Ok(Err(e)) => {
            conn.ct.cancel();
            Err(format!("tools/list failed: {e}"))
        }
        Err(_) => {
            conn.ct.cancel();
            Err(format!("no answer to tools/list within {}s", timeout.as_secs_f32()))
        }
    }
}

/// The configured headers of an HTTP upstream, checked.
fn header_map(
    headers: &[(String, String)],
) -> Result<HashMap<reqwest::header::HeaderName, reqwest::header::HeaderValue>, String> {
    let mut map = HashMap::new();
    for (k, v) in headers {
        let name = reqwest::header::HeaderName::from_bytes(k.as_bytes()).map_err(|e| format!("header `{k}`: {e}"))?;
        let value = reqwest::header::HeaderValue::from_str(v).map_err(|e| format!("header `{k}`: {e}"))?;
        map.insert(name, value);
    }
    Ok(map)
}

async fn read_stderr(
    server: String,
    stderr: tokio::process::ChildStderr,
    tail: Arc<Mutex<VecDeque<String>>>,
    scrubber: Scrubber,
) {
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let line = scrubber.scrub_str(&line).into_owned();
        tracing::debug!(target: "codemode_portal::stderr", server = %server, "{line}");
        let line: String = line.chars().take(STDERR_LINE_CHARS).collect();
        if line.trim().is_empty() {
            continue;
        }
        let mut t = lock(&tail);
        if t.len() == STDERR_LINES {
            t.pop_front();
        }
        t.push_back(line);
    }
}

/// Sends one request as raw JSON and returns the raw result. Dropping the
/// future before the answer tells the upstream (`notifications/cancelled`).
pub(crate) async fn raw_request(peer: &Peer<RoleClient>, method: &str, params: Value) -> Result<Value, ServiceError> {
    let request = ClientRequest::CustomRequest(CustomRequest::new(method, Some(params)));
    let handle = peer.send_request_with_option(request, PeerRequestOptions::no_options()).await?;
    let mut guard = CancelOnDrop { peer: Some(peer.clone()), id: handle.id.clone() };
    let result = handle.await_response().await;
    guard.peer = None;
    let result = result?;
    serde_json::to_value(&result)
        .map_err(|e| ServiceError::McpError(rmcp::ErrorData::internal_error(e.to_string(), None)))
}

struct CancelOnDrop {
    peer: Option<Peer<RoleClient>>,
    id: RequestId,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        let Some(peer) = self.peer.take() else { return };
        let Ok(rt) = tokio::runtime::Handle::try_current() else { return };
        let param = CancelledNotificationParam::new(
            Some(self.id.clone()),
            Some("cancelled by codemode-portal (timeout, or the caller went away)".into()),
        );
        rt.spawn(async move {
            let _ = peer.notify_cancelled(param).await;
        });
    }
}

/// Every page of `tools/list`, parsed leniently.
pub(crate) async fn list_tools(peer: &Peer<RoleClient>) -> Result<(Vec<RawTool>, Vec<String>), String> {
    let mut tools = vec![];
    let mut problems = vec![];
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let params = match &cursor {
            Some(c) => json!({"cursor": c}),
            None => json!({}),
        };
        let page = raw_request(peer, "tools/list", params).await.map_err(|e| e.to_string())?;
        let Some(list) = page.get("tools").and_then(Value::as_array) else {
            return Err("the answer has no `tools` array".into());
        };
        for t in list {
            match parse_tool(t) {
                Ok(tool) => tools.push(tool),
                Err(p) => problems.push(p),
            }
        }
        cursor = page.get("nextCursor").and_then(Value::as_str).filter(|c| !c.is_empty()).map(str::to_owned);
        if cursor.is_none() {
            return Ok((tools, problems));
        }
    }
    problems.push(format!("stopped reading tools/list after {MAX_PAGES} pages"));
    Ok((tools, problems))
}

/// One tool definition. Only a missing name drops it; schema problems are
/// reported in `schema_problem` and the tool stays callable.
pub(crate) fn parse_tool(t: &Value) -> Result<RawTool, String> {
    let Some(name) = t.get("name").and_then(Value::as_str).filter(|n| !n.is_empty()) else {
        let text = t.to_string();
        let text: String = text.chars().take(120).collect();
        return Err(format!("dropped a tool without a name: {text}"));
    };
    let description = t
        .get("description")
        .and_then(Value::as_str)
        .or_else(|| t.get("title").and_then(Value::as_str))
        .or_else(|| t.pointer("/annotations/title").and_then(Value::as_str))
        .map(str::to_owned);
    let mut problems = vec![];
    let input_schema = match t.get("inputSchema") {
        None | Some(Value::Null) => {
            problems.push("the upstream sent no inputSchema".to_string());
            json!({"type": "object"})
        }
        Some(s @ Value::Object(m)) => {
            match m.get("type") {
                Some(Value::String(ty)) if ty == "object" => {}
                Some(other) => problems.push(format!("inputSchema has `type: {other}`, not `\"object\"`")),
                None => {
                    let keys: Vec<&str> = m.keys().map(String::as_str).take(5).collect();
                    problems.push(format!("inputSchema has no `type: \"object\"` (keys: {})", keys.join(", ")));
                }
            }
            s.clone()
        }
        Some(other) => {
            problems.push(format!("inputSchema is {}, not a JSON Schema object", kind(other)));
            other.clone()
        }
    };
    let output_schema = match t.get("outputSchema") {
        None | Some(Value::Null) => None,
        Some(s @ Value::Object(_)) => Some(s.clone()),
        Some(other) => {
            problems.push(format!("outputSchema is {}, ignored", kind(other)));
            None
        }
    };
    let annotations = t.get("annotations").filter(|a| a.is_object()).cloned();
    let schema_problem = if problems.is_empty() {
        None
    } else {
        Some(format!("{}; the tool is still callable and its arguments are passed as given", problems.join("; ")))
    };
    Ok(RawTool { name: name.to_string(), description, input_schema, output_schema, annotations, schema_problem })
}

/// "a string", "an array"… for messages.
pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Calls a tool on this server's current session: the raw result, or an
/// error object (`name`, `message`, and details) without `server` / `tool`.
pub(crate) async fn call(
    server: &Server,
    options: &PortalOptions,
    tool: &str,
    args: Value,
    meta: Option<Map<String, Value>>,
) -> Result<Value, Map<String, Value>> {
    let deadline = tokio::time::Instant::now() + server.config.call_timeout;
    let (peer, session) = server.ready_peer(options.ready_wait, deadline).await.map_err(|(name, m)| error(name, m))?;
    let ends = server.session_token(session);
    call_on(server, &peer, Some(session), ends, deadline, tool, args, meta).await
}

/// Calls a tool on `peer`, the shared session `shared` of `server` or (with
/// `None`) one principal's own session; `ends` ends that session when its
/// transport failed or it stopped answering (the shared one is then
/// reconnected by its supervisor, a principal's is opened again on its next
/// use).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn call_on(
    server: &Server,
    peer: &Peer<RoleClient>,
    shared: Option<u64>,
    ends: Option<CancellationToken>,
    deadline: tokio::time::Instant,
    tool: &str,
    args: Value,
    meta: Option<Map<String, Value>>,
) -> Result<Value, Map<String, Value>> {
    let timeout = server.config.call_timeout;
    let mut params = json!({"name": tool, "arguments": args});
    if let Some(meta) = meta.filter(|m| !m.is_empty()) {
        params["_meta"] = Value::Object(meta);
    }
    // Asked after the answer: a token refused during this call is what
    // makes the OAuth verdict "needs sign-in".
    let sign_in = || shared.filter(|_| server.needs_sign_in().is_some());
    match tokio::time::timeout_at(deadline, raw_request(peer, "tools/call", params)).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(ServiceError::McpError(e))) => {
            let mut err =
                error("UpstreamError", format!("server `{}` refused the call: {}", server.config.name, e.message));
            err.insert("code".into(), json!(e.code.0));
            if let Some(d) = e.data {
                err.insert("data".into(), d);
            }
            Err(err)
        }
        Ok(Err(_)) if sign_in().is_some() => Err(server.refused(sign_in().unwrap_or_default())),
        Ok(Err(ServiceError::TransportClosed | ServiceError::TransportSend(_))) => {
            if let Some(ct) = &ends {
                tracing::warn!(server = %server.config.name, "dropping the session: the transport failed during a call");
                ct.cancel();
            }
            tokio::time::sleep(Duration::from_millis(50)).await; // let stderr drain
            let again = if shared.is_some() { "it is being restarted" } else { "your session will be opened again" };
            Err(error(
                "UpstreamError",
                format!(
                    "the connection to server `{}` closed during the call (the server exited or crashed){}; \
                     {again}, so a retry may work",
                    server.config.name,
                    server.stderr_suffix()
                ),
            ))
        }
        Ok(Err(e)) => Err(error("UpstreamError", format!("server `{}`: {e}", server.config.name))),
        Err(_) => {
            // A slow tool, or a session that silently died: a ping tells them apart.
            let server_name = server.config.name.clone();
            let check = peer.clone();
            tokio::spawn(async move {
                let wait = PING_TIMEOUT.min(timeout.max(Duration::from_secs(1)));
                let ok = matches!(tokio::time::timeout(wait, raw_request(&check, "ping", json!({}))).await, Ok(Ok(_)));
                if !ok {
                    if let Some(ct) = ends {
                        tracing::warn!(server = %server_name, "no answer to ping after a timeout: dropping the session");
                        ct.cancel();
                    }
                }
            });
            let mut err = error(
                "TimeoutError",
                format!(
                    "no answer within {}s; the call was cancelled (the upstream was sent notifications/cancelled)",
                    fmt_secs(timeout)
                ),
            );
            err.insert("timeoutMs".into(), json!(timeout.as_millis() as u64));
            Err(err)
        }
    }
}

pub(crate) fn fmt_secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0}")
    } else {
        format!("{s:.1}")
    }
}

pub(crate) fn error(name: &str, message: String) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("name".into(), Value::String(name.into()));
    m.insert("message".into(), Value::String(message));
    m
}

/// Keeps one server connected until `shutdown`: connect, refresh tools on
/// `list_changed`, and after a failure or a lost connection retry with
/// exponential backoff; after `max_attempts` consecutive failures park in
/// `Failed` until woken by a call. `on_change` is called whenever the tool
/// list or state changed.
pub(crate) async fn supervise(
    server: Arc<Server>,
    options: PortalOptions,
    shutdown: CancellationToken,
    on_change: Arc<dyn Fn() + Send + Sync>,
) {
    let name = server.config.name.clone();
    let mut failures: u32 = 0;
    let mut session_no: u64 = 0;
    loop {
        let started = Instant::now();
        let attempt = tokio::select! {
            r = connect(&server, options.connect_timeout, &[]) => r,
            _ = shutdown.cancelled() => break,
        };
        let last_error = match attempt {
            Ok((mut conn, tools, problems)) => {
                tracing::info!(server = %name, tools = tools.len(), ms = started.elapsed().as_millis() as u64, "connected");
                for p in &problems {
                    tracing::warn!(server = %name, "{p}");
                }
                {
                    let mut s = lock(&server.shared);
                    s.upstream = conn.upstream.clone();
                    s.tools = tools;
                    s.problems = problems;
                    s.peer = Some(conn.peer.clone());
                    session_no += 1;
                    s.session = Some((session_no, conn.ct.clone()));
                    s.state = ServerState::Ready;
                }
                server.state_tx.send_modify(|n| *n += 1);
                on_change();
                let up_since = Instant::now();
                let closed = loop {
                    tokio::select! {
                        _ = &mut conn.waiting => break true,
                        _ = conn.list_changed.notified() => {
                            match tokio::time::timeout(options.connect_timeout, list_tools(&conn.peer)).await {
                                Ok(Ok((tools, problems))) => {
                                    tracing::info!(server = %name, tools = tools.len(), "tool list refreshed");
                                    let mut s = lock(&server.shared);
                                    s.tools = tools;
                                    s.problems = problems;
                                }
                                Ok(Err(e)) => tracing::warn!(server = %name, "refreshing tools failed: {e}"),
                                Err(_) => tracing::warn!(server = %name, "refreshing tools timed out"),
                            }
                            on_change();
                        }
                        _ = shutdown.cancelled() => break false,
                    }
                };
                if !closed {
                    // Shutdown: close the session (stdin EOF, then SIGTERM, then SIGKILL), bounded.
                    conn.ct.cancel();
                    let _ = tokio::time::timeout(Duration::from_secs(8), &mut conn.waiting).await;
                    server.kill_group();
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await; // let stderr drain
                let e = if conn.ct.is_cancelled() {
                    "the session was dropped after its transport failed".to_string()
                } else {
                    format!("the connection closed (the server exited or crashed){}", server.stderr_suffix())
                };
                tracing::warn!(server = %name, "{e}");
                server.kill_group();
                if up_since.elapsed() >= options.stable_after {
                    failures = 0;
                }
                failures += 1;
                e
            }
            Err(e) => {
                tracing::warn!(server = %name, "connection attempt failed: {e}");
                server.kill_group();
                failures += 1;
                e
            }
        };
        if let Some(message) = server.needs_sign_in() {
            // A person has to act (`codemode login`, or fix the client
            // credentials): retrying on a timer would only hammer the
            // authorization server. A call after a new sign-in wakes us.
            tracing::warn!(server = %name, "{message}");
            server.set_state(ServerState::NeedsSignIn(message));
            on_change();
            // Parked; only the token file is looked at (a stat, no network),
            // so a `codemode login` elsewhere is picked up within a second.
            let stopping = loop {
                tokio::select! {
                    _ = server.wake.notified() => break false,
                    _ = tokio::time::sleep(SIGN_IN_POLL) => {
                        if server.oauth_runtime().is_some_and(|rt| rt.signed_in_since()) {
                            tracing::info!(server = %name, "the token file changed: connecting with the new sign-in");
                            break false;
                        }
                    }
                    _ = shutdown.cancelled() => break true,
                }
            };
            if stopping {
                break;
            }
            failures = 0;
            continue;
        }
        if failures >= options.max_attempts {
            tracing::error!(server = %name, failures, "giving up until the next call: {last_error}");
            server.set_state(ServerState::Failed(last_error.clone()));
            on_change();
            tokio::select! {
                _ = server.wake.notified() => { failures = 0; continue; }
                _ = shutdown.cancelled() => break,
            }
        }
        let delay = backoff(&options, failures);
        server.set_state(ServerState::Reconnecting { attempt: failures, last_error: last_error.clone() });
        on_change();
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.cancelled() => break,
        }
    }
    server.kill_group();
    server.set_state(ServerState::Stopped);
    on_change();
}

/// `initial * 2^(failures-1)`, at most `max`.
fn backoff(options: &PortalOptions, failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(20);
    options.backoff_initial.saturating_mul(1u32 << exp).min(options.backoff_max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_bounded() {
        let o = PortalOptions::default();
        assert_eq!(backoff(&o, 1), Duration::from_millis(250));
        assert_eq!(backoff(&o, 2), Duration::from_millis(500));
        assert_eq!(backoff(&o, 4), Duration::from_secs(2));
        assert_eq!(backoff(&o, 40), Duration::from_secs(30));
    }

    #[test]
    fn tools_with_bad_schemas_are_kept_and_reported() {
        let t = parse_tool(&json!({"name": "a", "inputSchema": "nope"})).unwrap();
        assert!(t.schema_problem.as_deref().unwrap().contains("a string"), "{:?}", t.schema_problem);
        let t = parse_tool(&json!({"name": "b", "inputSchema": {"allOf": []}})).unwrap();
        assert!(t.schema_problem.as_deref().unwrap().contains("allOf"));
        let t = parse_tool(&json!({"name": "c"})).unwrap();
        assert!(t.schema_problem.is_some());
        assert_eq!(t.input_schema, json!({"type": "object"}));
        let t = parse_tool(&json!({"name": "d", "inputSchema": {"type": "object"}, "outputSchema": 3})).unwrap();
        assert!(t.output_schema.is_none() && t.schema_problem.is_some());
        let t = parse_tool(&json!({"name": "e", "inputSchema": {"type": "object"}, "title": "T"})).unwrap();
        assert!(t.schema_problem.is_none());
        assert_eq!(t.description.as_deref(), Some("T"));
        assert!(parse_tool(&json!({"inputSchema": {}})).is_err());
    }
}
