//! The innermost layer before rmcp: reads the body (size and time limits),
//! looks at the JSON-RPC message, keeps sessions to their principal and
//! within their caps, limits tool calls per principal, follows each tool
//! call to the end of its response — logging it with its principal — and
//! cancels it when the client goes away before the answer.
//!
//! The same layer serves the legacy SSE transport ([`crate::sse`]): there a
//! POST names its session in `?sessionId=`, is answered `202` at once, and
//! its tool call ends when the answer is written to the session's stream —
//! so the call is handed to the SSE handler in a [`CallSlot`].

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{header, HeaderValue, Method, StatusCode};
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use rmcp::transport::streamable_http_server::session::SessionManager;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::limits::{session_refused, too_many, CallPermit, Full};
use crate::principal::Principal;
use crate::server::AppState;

const SESSION_HEADER: &str = "mcp-session-id";

/// What we need to know of a JSON-RPC message; anything else is rmcp's.
#[derive(Default, Deserialize)]
struct Peek {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    params: Option<PeekParams>,
}

#[derive(Default, Deserialize)]
struct PeekParams {
    #[serde(default)]
    name: Option<String>,
}

fn plain(status: StatusCode, message: &str) -> Response {
    (status, message.to_string()).into_response()
}

pub(crate) async fn track(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let principal =
        req.extensions().get::<Principal>().cloned().unwrap_or_else(|| Principal::unrestricted("anonymous"));
    let legacy = crate::sse::is_messages(req.uri());
    let session = if legacy {
        crate::sse::session_id(req.uri())
    } else {
        req.headers().get(SESSION_HEADER).and_then(|v| v.to_str().ok()).map(str::to_string)
    };

    // A session belongs to the principal that opened it.
    if let Some(sid) = &session {
        if let Some(owner) = state.sessions.owner(sid) {
            if owner != principal.name {
                tracing::warn!(principal = %principal.name, owner = %owner, "refused: a session of another principal");
                return plain(StatusCode::NOT_FOUND, "Not Found: Session not found");
            }
        }
    }
    match *req.method() {
        Method::POST => {}
        Method::DELETE => {
            let mut resp = next.run(req).await;
            if let (true, Some(sid)) = (resp.status().is_success(), &session) {
                state.sessions.remove(sid);
                tracing::info!(principal = %principal.name, session = %sid, "session closed by the client");
                // rmcp says 202; clients (the Python SDK) expect 200 or 204.
                *resp.status_mut() = StatusCode::NO_CONTENT;
            }
            return resp;
        }
        _ => return next.run(req).await,
    }

    // The body, within the size and time limits.
    let (mut parts, body) = req.into_parts();
    let max = state.settings.max_body_bytes;
    let declared = parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        tracing::info!(principal = %principal.name, bytes = declared, "request body too large: 413");
        return too_large(max);
    }
    let bytes =
        match tokio::time::timeout(state.settings.body_read_timeout, http_body_util::Limited::new(body, max).collect())
            .await
        {
            Ok(Ok(c)) => c.to_bytes(),
            Ok(Err(e)) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
                tracing::info!(principal = %principal.name, "request body too large: 413");
                return too_large(max);
            }
            Ok(Err(e)) => {
                tracing::debug!(principal = %principal.name, "could not read the request body: {e}");
                return plain(StatusCode::BAD_REQUEST, "Bad Request: the body could not be read");
            }
            Err(_) => {
                tracing::info!(principal = %principal.name, "request body too slow: 408");
                let mut r = plain(StatusCode::REQUEST_TIMEOUT, "Request Timeout: the body did not arrive in time");
                r.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
                return r;
            }
        };
    let peek: Peek = serde_json::from_slice(&bytes).unwrap_or_default();
    let method = peek.method.as_deref().unwrap_or("");

    // Session caps, before a new session is made.
    // (A legacy SSE session is opened by its GET /sse, not by initialize.)
    let opens_session = !legacy && !state.settings.stateless && method == "initialize" && session.is_none();
    if opens_session {
        let streamable = {
            let map = state.manager.sessions.read().await;
            state.sessions.retain(|id| map.contains_key(id));
            map.len()
        };
        let live = streamable + state.sessions.legacy_count();
        if live >= state.settings.max_sessions {
            return session_refused(Full::Server(live), &principal.name);
        }
        let mine = state.sessions.count_for(&principal.name);
        if mine >= state.settings.max_sessions_per_principal {
            return session_refused(Full::Principal(mine), &principal.name);
        }
    }

    // Tool calls: a slot of the principal's, and a record to follow.
    let call = if method == "tools/call" {
        match state.calls.try_start(&principal.name).await {
            Ok(permit) => Some({
                // The start of the access record ("tool call answered" ends it): at
                // debug, so a test or an operator can tell that a call is running.
                tracing::debug!(principal = %principal.name, id = ?peek.id, "tool call started");
                TrackedCall {
                    permit: Some(permit),
                    done: false,
                    status: 0,
                    principal: principal.name.clone(),
                    tool: peek.params.as_ref().and_then(|p| p.name.clone()).unwrap_or_default(),
                    id: peek.id.clone().unwrap_or(Value::Null),
                    session: session.clone(),
                    started: Instant::now(),
                    // A legacy session's calls end with its stream.
                    cancel: (!state.settings.stateless && !legacy).then(|| state.manager.clone()),
                }
            }),
            Err(limit) => {
                tracing::info!(principal = %principal.name, limit, "concurrent tool call limit: 429");
                return too_many(
                    std::time::Duration::from_secs(1),
                    format!(
                        "`{}` already runs {limit} tool calls at once, the most this server allows",
                        principal.name
                    ),
                );
            }
        }
    } else {
        None
    };

    // Legacy SSE: the handler takes the call when it queues the message,
    // and settles it when the answer is on the stream.
    let (call, slot) = match call {
        Some(call) if legacy => {
            let slot = CallSlot(Arc::new(std::sync::Mutex::new(Some(call))));
            (None, Some(slot))
        }
        call => (call, None),
    };
    if let Some(slot) = &slot {
        parts.extensions.insert(slot.clone());
    }
    let req = Request::from_parts(parts, Body::from(bytes));
    let resp = next.run(req).await;
    // Not taken (the message was refused): it ends with this response.
    let call = call.or_else(|| slot.and_then(|s| s.take()));

    if opens_session {
        if let Some(sid) = resp.headers().get(SESSION_HEADER).and_then(|v| v.to_str().ok()) {
            state.sessions.insert(sid, &principal.name);
            tracing::info!(principal = %principal.name, session = %sid, "session opened");
        }
    }
    match call {
        Some(mut call) => {
            call.status = resp.status().as_u16();
            resp.map(|inner| Body::new(TrackedBody { inner, call: Some(call) }))
        }
        None => resp,
    }
}

fn too_large(max: usize) -> Response {
    let mut r = plain(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("Payload Too Large: the request body is over {} KiB", max / 1024),
    );
    r.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

/// A tool call of a legacy SSE POST, in the request's extensions until the
/// SSE handler takes it ([`CallSlot::take`]); one it leaves there ends with
/// the POST's response.
#[derive(Clone)]
pub(crate) struct CallSlot(Arc<std::sync::Mutex<Option<TrackedCall>>>);

impl CallSlot {
    /// The call, once.
    pub fn take(&self) -> Option<TrackedCall> {
        self.0.lock().expect("call slot lock").take()
    }

    /// Gives back a call taken but not delivered.
    pub fn put(&self, call: TrackedCall) {
        *self.0.lock().expect("call slot lock") = Some(call);
    }
}

/// A tool call on its way back to the client. Dropped before it was
/// answered (the client went away, even before the answer started): counted
/// as a disconnect.
pub(crate) struct TrackedCall {
    permit: Option<CallPermit>,
    done: bool,
    /// The HTTP status of the answer (0 before there is one).
    status: u16,
    principal: String,
    tool: String,
    id: Value,
    session: Option<String>,
    started: Instant,
    /// Session mode: rmcp keeps running a call whose stream was dropped (so
    /// the client could resume it); we tell the session it was cancelled.
    cancel: Option<Arc<rmcp::transport::streamable_http_server::session::local::LocalSessionManager>>,
}

impl TrackedCall {
    /// Its answer went out (on a legacy SSE stream).
    pub fn answered(mut self) {
        self.status = StatusCode::OK.as_u16();
        self.finish(true);
    }

    fn finish(&mut self, completed: bool) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let elapsed_ms = self.started.elapsed().as_secs_f64() * 1000.0;
        if completed {
            tracing::info!(
                principal = %self.principal,
                tool = %self.tool,
                session = self.session.as_deref().unwrap_or("-"),
                id = %self.id,
                status = self.status,
                elapsed_ms,
                "tool call answered"
            );
        } else {
            tracing::info!(
                principal = %self.principal,
                tool = %self.tool,
                session = self.session.as_deref().unwrap_or("-"),
                id = %self.id,
                elapsed_ms,
                "client disconnected before the answer: tool call cancelled"
            );
            if let (Some(manager), Some(session)) = (self.cancel.take(), self.session.clone()) {
                let message = serde_json::from_value::<rmcp::model::ClientJsonRpcMessage>(json!({
                    "jsonrpc": "2.0",
                    "method": "notifications/cancelled",
                    "params": {"requestId": self.id.clone(), "reason": "the HTTP client disconnected"}
                }));
                if let (Ok(message), Ok(handle)) = (message, tokio::runtime::Handle::try_current()) {
                    handle.spawn(async move {
                        let id: Arc<str> = session.into();
                        if let Err(e) = manager.accept_message(&id, message).await {
                            tracing::debug!("could not cancel the tool call: {e}");
                        }
                    });
                }
            }
        }
        self.permit.take();
    }
}

impl Drop for TrackedCall {
    fn drop(&mut self) {
        self.finish(false);
    }
}

/// The response body of a tool call: notices its end, or that the client
/// went away first.
struct TrackedBody {
    inner: Body,
    call: Option<TrackedCall>,
}

impl http_body::Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(None) = r {
            if let Some(mut call) = this.call.take() {
                call.finish(true);
            }
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for TrackedBody {
    fn drop(&mut self) {
        if let Some(mut call) = self.call.take() {
            call.finish(http_body::Body::is_end_stream(&self.inner));
        }
    }
}
