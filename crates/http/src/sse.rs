//! The legacy HTTP+SSE transport of MCP 2024-11-05, for clients that
//! predate Streamable HTTP (`[server] legacy_sse`).
//!
//! ```text
//! GET /sse                       → text/event-stream, one MCP session:
//!                                    event: endpoint  data: /messages?sessionId=<id>
//!                                    event: message   data: <JSON-RPC>   (every server→client message)
//! POST /messages?sessionId=<id>  → 202; the message goes to the session
//! ```
//!
//! rmcp has no server side for this transport, so each stream is served by
//! the same handler as `/mcp` through rmcp's generic transport: a pair of
//! bounded channels ([`Channel`]). Both routes sit behind every layer `/mcp`
//! has (Host/Origin, readiness, auth, rate, body limits and tool-call slots
//! in [`crate::calls::track`]); what is particular to this transport is
//! here: the session registry, binding a session to the principal that
//! opened it, and writing the stream.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{header, HeaderValue, StatusCode};
use http_body::Frame;
use rmcp::model::{ClientJsonRpcMessage, GetExtensions, RequestId, ServerJsonRpcMessage};
use rmcp::transport::Transport;
use rmcp::{RoleServer, ServerHandler};
use tokio::sync::mpsc;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use crate::calls::{CallSlot, TrackedCall};
use crate::limits::too_many;
use crate::principal::Principal;
use crate::server::AppState;

/// Where a client opens a session.
pub(crate) const SSE_PATH: &str = "/sse";
/// Where a client posts its messages (`?sessionId=<id>`).
pub(crate) const MESSAGES_PATH: &str = "/messages";

/// Client messages waiting for the handler, per session. The handler takes
/// them at once (each request runs in a task of its own), so a full queue
/// means a client posting faster than anything could be served.
const INBOUND: usize = 32;
/// Server messages waiting to be written to the stream, per session.
const OUTBOUND: usize = 64;
/// How long a message may wait for room in a full outbound queue: a client
/// that reads nothing of its stream for this long is dropped rather than
/// letting its messages pile up in memory.
const SLOW_CLIENT: Duration = Duration::from_secs(30);

/// The open legacy sessions, by id.
#[derive(Default)]
pub(crate) struct Registry {
    sessions: Mutex<HashMap<String, Arc<Session>>>,
}

impl Registry {
    fn get(&self, id: &str) -> Option<Arc<Session>> {
        self.sessions.lock().expect("sse registry lock").get(id).cloned()
    }
    fn insert(&self, id: &str, session: Arc<Session>) {
        self.sessions.lock().expect("sse registry lock").insert(id.to_string(), session);
    }
    fn remove(&self, id: &str) {
        self.sessions.lock().expect("sse registry lock").remove(id);
    }
}

/// One open `/sse` stream.
struct Session {
    /// The principal that opened it; nobody else may post to it.
    owner: String,
    inbound: mpsc::Sender<ClientJsonRpcMessage>,
    /// Tool calls posted and not yet answered on the stream, by request id.
    calls: Mutex<HashMap<RequestId, TrackedCall>>,
}

/// Is this a `POST /messages` (a legacy message)?
pub(crate) fn is_messages(uri: &http::Uri) -> bool {
    uri.path() == MESSAGES_PATH
}

/// The `sessionId` of a `/messages` URI, if it names one.
pub(crate) fn session_id(uri: &http::Uri) -> Option<String> {
    let query = uri.query()?;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "sessionId")
        .map(|(_, v)| v.into_owned())
        .filter(|v| !v.is_empty())
}

fn plain(status: StatusCode, message: &'static str) -> Response {
    (status, message).into_response()
}

fn principal(req: &Request) -> Principal {
    req.extensions().get::<Principal>().cloned().unwrap_or_else(|| Principal::unrestricted("anonymous"))
}

/// A session id nobody can guess: 128 random bits, hex.
fn new_id() -> Option<String> {
    use ring::rand::SecureRandom as _;
    let mut b = [0u8; 16];
    ring::rand::SystemRandom::new().fill(&mut b).ok()?;
    Some(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// `GET /sse`: opens a session and streams it.
pub(crate) async fn open<S>(state: Arc<AppState>, cell: Arc<OnceLock<S>>, req: Request) -> Response
where
    S: ServerHandler + Clone + Send + Sync + 'static,
{
    let principal = principal(&req);
    let Some(handler) = cell.get().cloned() else {
        return plain(StatusCode::SERVICE_UNAVAILABLE, "codemode is still loading its APIs");
    };
    let Some(id) = new_id() else {
        tracing::error!("no randomness for a session id");
        return plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error: could not make a session id");
    };
    let s = &state.settings;
    let streamable = state.manager.sessions.read().await.len();
    if let Err(full) =
        state.sessions.open_legacy(&id, &principal.name, streamable, s.max_sessions, s.max_sessions_per_principal)
    {
        return crate::limits::session_refused(full, &principal.name);
    }

    let (inbound_tx, inbound_rx) = mpsc::channel(INBOUND);
    let (outbound_tx, outbound_rx) = mpsc::channel(OUTBOUND);
    let ct = state.ct.child_token();
    let session = Arc::new(Session { owner: principal.name.clone(), inbound: inbound_tx, calls: Mutex::default() });
    state.legacy.insert(&id, session.clone());
    tracing::info!(principal = %principal.name, session = %id, "SSE session opened");

    let transport = Channel { inbound: inbound_rx, outbound: outbound_tx, ct: ct.clone() };
    tokio::spawn(serve(handler, transport, ct.clone(), id.clone(), s.session_idle));

    let endpoint = format!("event: endpoint\ndata: {MESSAGES_PATH}?sessionId={id}\n\n");
    let body = Stream {
        endpoint: Some(Bytes::from(endpoint)),
        outbound: outbound_rx,
        keep_alive: s.sse_keep_alive.map(|every| {
            let mut i = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            i
        }),
        ended: Box::pin(ct.clone().cancelled_owned()),
        session,
        _open: Open { state: state.clone(), id, principal: principal.name, ct },
    };
    let mut r = Response::new(Body::new(body));
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Proxies such as nginx would otherwise hold events back.
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    r
}

/// Runs one session's MCP service until the stream or the server ends. A
/// client that never sends `initialize` is dropped after `idle`.
async fn serve<S>(handler: S, transport: Channel, ct: CancellationToken, id: String, idle: Duration)
where
    S: ServerHandler + Clone + Send + Sync + 'static,
{
    let started = rmcp::service::serve_server_with_ct(handler, transport, ct.clone());
    match tokio::time::timeout(idle, started).await {
        Ok(Ok(running)) => {
            let _ = running.waiting().await;
        }
        Ok(Err(e)) => tracing::info!(session = %id, "SSE session did not start: {e}"),
        Err(_) => {
            tracing::info!(session = %id, idle_secs = idle.as_secs_f64(), "SSE session sent no initialize: closed")
        }
    }
    // Ends the stream too, whatever ended the service.
    ct.cancel();
}

/// `POST /messages?sessionId=<id>`: one JSON-RPC message for a session,
/// answered `202`; whatever the server says back goes on the stream.
pub(crate) async fn message(state: Arc<AppState>, req: Request) -> Response {
    let Some(id) = session_id(req.uri()) else {
        return plain(
            StatusCode::BAD_REQUEST,
            "Bad Request: no sessionId; POST to the URL the `endpoint` event of GET /sse gave (/messages?sessionId=…)",
        );
    };
    let principal = principal(&req);
    // Another principal's session is reported as missing, not as forbidden:
    // that a session id exists is nobody else's business.
    let Some(session) = state.legacy.get(&id).filter(|s| s.owner == principal.name) else {
        tracing::info!(principal = %principal.name, "POST to an unknown SSE session: 404");
        return plain(
            StatusCode::NOT_FOUND,
            "Not Found: no such SSE session (it ended, or never existed); open one with GET /sse",
        );
    };
    let (mut parts, body) = req.into_parts();
    // `track` has read the body within the limits already.
    let bytes = match axum::body::to_bytes(body, state.settings.max_body_bytes).await {
        Ok(b) => b,
        Err(_) => return plain(StatusCode::BAD_REQUEST, "Bad Request: the body could not be read"),
    };
    let mut message: ClientJsonRpcMessage = match serde_json::from_slice(&bytes) {
        Ok(m) => m,
        Err(e) => {
            let text = format!(
                "Bad Request: the body is not one JSON-RPC 2.0 message ({e}); send a request, notification or response object"
            );
            return (StatusCode::BAD_REQUEST, text).into_response();
        }
    };
    let slot = parts.extensions.remove::<CallSlot>();
    // The handler finds the session id where Streamable HTTP puts it (for
    // logs and audit); a value the client sent itself is replaced.
    if let Ok(v) = HeaderValue::from_str(&id) {
        parts.headers.insert("mcp-session-id", v);
    }
    // The handler reads the principal and headers from the request parts,
    // as rmcp's Streamable HTTP service provides them.
    let request_id = match &mut message {
        ClientJsonRpcMessage::Request(r) => {
            r.request.extensions_mut().insert(parts);
            Some(r.id.clone())
        }
        ClientJsonRpcMessage::Notification(n) => {
            n.notification.extensions_mut().insert(parts);
            None
        }
        _ => None,
    };
    // Registered before it is sent: the answer may come at once.
    let call = slot.as_ref().and_then(CallSlot::take);
    if let (Some(rid), Some(call)) = (&request_id, call) {
        session.calls.lock().expect("sse calls lock").insert(rid.clone(), call);
    }
    let refused = match session.inbound.try_send(message) {
        Ok(()) => return (StatusCode::ACCEPTED, "Accepted").into_response(),
        Err(mpsc::error::TrySendError::Full(_)) => {
            tracing::info!(principal = %principal.name, session = %id, "SSE session inbound queue full: 429");
            too_many(
                Duration::from_secs(1),
                format!("this SSE session has {INBOUND} messages waiting to be handled; send more once it answers"),
            )
        }
        Err(mpsc::error::TrySendError::Closed(_)) => {
            plain(StatusCode::NOT_FOUND, "Not Found: this SSE session has ended; open a new one with GET /sse")
        }
    };
    // Not delivered: the call ends with this response (see `track`).
    if let (Some(rid), Some(slot)) = (&request_id, &slot) {
        if let Some(call) = session.calls.lock().expect("sse calls lock").remove(rid) {
            slot.put(call);
        }
    }
    refused
}

/// Why a message could not be queued for the stream.
#[derive(Debug)]
pub(crate) enum Closed {
    /// The stream has ended.
    Gone,
    /// The client read nothing for [`SLOW_CLIENT`]; the session was ended.
    Slow,
}

impl std::fmt::Display for Closed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Closed::Gone => f.write_str("the SSE stream has ended"),
            Closed::Slow => write!(f, "the SSE client read nothing for {} s: session ended", SLOW_CLIENT.as_secs()),
        }
    }
}

impl std::error::Error for Closed {}

/// The session's side of rmcp's transport: messages posted come in, the
/// handler's go out to the stream.
struct Channel {
    inbound: mpsc::Receiver<ClientJsonRpcMessage>,
    outbound: mpsc::Sender<ServerJsonRpcMessage>,
    ct: CancellationToken,
}

impl Transport<RoleServer> for Channel {
    type Error = Closed;

    fn send(&mut self, item: ServerJsonRpcMessage) -> impl Future<Output = Result<(), Closed>> + Send + 'static {
        let (tx, ct) = (self.outbound.clone(), self.ct.clone());
        async move {
            match tx.send_timeout(item, SLOW_CLIENT).await {
                Ok(()) => Ok(()),
                Err(mpsc::error::SendTimeoutError::Timeout(_)) => {
                    tracing::warn!("{}", Closed::Slow);
                    ct.cancel();
                    Err(Closed::Slow)
                }
                Err(mpsc::error::SendTimeoutError::Closed(_)) => Err(Closed::Gone),
            }
        }
    }

    fn receive(&mut self) -> impl Future<Output = Option<ClientJsonRpcMessage>> + Send {
        self.inbound.recv()
    }

    async fn close(&mut self) -> Result<(), Closed> {
        self.inbound.close();
        Ok(())
    }
}

/// The `/sse` response body: the endpoint event, then each server message
/// as a `message` event, with keep-alive comments in between; it ends with
/// the session (server shutdown included).
struct Stream {
    endpoint: Option<Bytes>,
    outbound: mpsc::Receiver<ServerJsonRpcMessage>,
    keep_alive: Option<tokio::time::Interval>,
    ended: Pin<Box<WaitForCancellationFutureOwned>>,
    session: Arc<Session>,
    /// Dropped with the body, that is when the client goes away.
    _open: Open,
}

impl Stream {
    /// A `message` event; a tool call it answers is done.
    fn event(&mut self, message: ServerJsonRpcMessage) -> Option<Bytes> {
        let answers = match &message {
            ServerJsonRpcMessage::Response(r) => Some(&r.id),
            ServerJsonRpcMessage::Error(e) => e.id.as_ref(),
            _ => None,
        };
        if let Some(id) = answers {
            if let Some(call) = self.session.calls.lock().expect("sse calls lock").remove(id) {
                call.answered();
            }
        }
        match serde_json::to_string(&message) {
            // Compact JSON has no newline, so one `data:` line holds it.
            Ok(json) => Some(Bytes::from(format!("event: message\ndata: {json}\n\n"))),
            Err(e) => {
                tracing::error!("could not serialize a message for the SSE stream: {e}");
                None
            }
        }
    }
}

impl http_body::Body for Stream {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if let Some(endpoint) = this.endpoint.take() {
            return Poll::Ready(Some(Ok(Frame::data(endpoint))));
        }
        if this.ended.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        loop {
            match this.outbound.poll_recv(cx) {
                Poll::Ready(Some(message)) => {
                    if let Some(ka) = &mut this.keep_alive {
                        ka.reset();
                    }
                    if let Some(event) = this.event(message) {
                        return Poll::Ready(Some(Ok(Frame::data(event))));
                    }
                }
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => break,
            }
        }
        if let Some(ka) = &mut this.keep_alive {
            if ka.poll_tick(cx).is_ready() {
                return Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b": keep-alive\n\n")))));
            }
        }
        Poll::Pending
    }
}

/// An open session's place in the registry and the session caps; dropping
/// it (the stream ended) ends the session.
struct Open {
    state: Arc<AppState>,
    id: String,
    principal: String,
    ct: CancellationToken,
}

impl Drop for Open {
    fn drop(&mut self) {
        // Removing the session drops its inbound sender, and cancelling
        // stops the service: its running calls are cancelled with it.
        self.state.legacy.remove(&self.id);
        self.state.sessions.remove(&self.id);
        self.ct.cancel();
        tracing::info!(principal = %self.principal, session = %self.id, "SSE session closed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_from_the_query() {
        let id = |s: &'static str| session_id(&http::Uri::from_static(s));
        assert_eq!(id("/messages?sessionId=abc").as_deref(), Some("abc"));
        assert_eq!(id("/messages?x=1&sessionId=a%20b").as_deref(), Some("a b"));
        assert_eq!(id("/messages?sessionId="), None);
        assert_eq!(id("/messages?session_id=abc"), None);
        assert_eq!(id("/messages"), None);
        assert!(is_messages(&http::Uri::from_static("/messages?sessionId=abc")));
        assert!(!is_messages(&http::Uri::from_static("/mcp")));
    }

    #[test]
    fn session_ids_are_long_and_fresh() {
        let (a, b) = (new_id().unwrap(), new_id().unwrap());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }
}
