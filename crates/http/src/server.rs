//! The listener: routes, layers, the accept loop, readiness and graceful
//! shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::State;
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use http::{header, HeaderValue, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::ServerHandler;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

use crate::auth::Authenticator;
use crate::config::{resolve, AuthConfig, Problem, ServerConfig, Settings};
use crate::limits::{Calls, Rate, Sessions};

/// The client's address, in request extensions (for logs).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Peer(pub SocketAddr);

/// Shared by every layer.
pub(crate) struct AppState {
    pub settings: Settings,
    pub auth: Authenticator,
    pub rate: Option<Rate>,
    pub calls: Arc<Calls>,
    pub sessions: Sessions,
    pub manager: Arc<LocalSessionManager>,
    /// Open legacy SSE sessions (`/sse`).
    pub legacy: crate::sse::Registry,
    pub ready: AtomicBool,
    pub draining: AtomicBool,
    /// Cancelling it ends every session, stream and running call.
    pub ct: CancellationToken,
}

/// Why the server could not start.
#[derive(Debug)]
pub enum StartError {
    /// `[server]` / `[auth]` problems, all of them.
    Config(Vec<Problem>),
    /// The address could not be bound.
    Bind(SocketAddr, std::io::Error),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Config(ps) => {
                let lines: Vec<String> = ps.iter().map(|p| p.to_string()).collect();
                f.write_str(&lines.join("\n"))
            }
            StartError::Bind(a, e) => write!(f, "cannot listen on {a}: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

/// Hands the MCP handler to a running [`HttpServer`] once it is built; until
/// then `/readyz` and `/mcp` answer 503.
pub struct ReadyHandle<S> {
    cell: Arc<OnceLock<S>>,
    state: Arc<AppState>,
}

impl<S> Clone for ReadyHandle<S> {
    fn clone(&self) -> Self {
        ReadyHandle { cell: self.cell.clone(), state: self.state.clone() }
    }
}

impl<S> ReadyHandle<S> {
    /// The handler is built: start serving MCP.
    pub fn set(&self, handler: S) {
        if self.cell.set(handler).is_ok() {
            self.state.ready.store(true, Ordering::Release);
            tracing::info!(url = %self.state.settings.mcp_url(), "ready: serving MCP over HTTP");
        }
    }
}

/// MCP Streamable HTTP at `/mcp`, the legacy HTTP+SSE transport at `/sse`
/// and `/messages` (unless `[server] legacy_sse = false`), plus `/healthz`,
/// `/readyz` and (with OAuth) Protected Resource Metadata.
pub struct HttpServer<S> {
    state: Arc<AppState>,
    listener: TcpListener,
    app: Router,
    cell: Arc<OnceLock<S>>,
}

impl<S> HttpServer<S>
where
    S: ServerHandler + Clone + Send + Sync + 'static,
{
    /// Checks the config and binds the listener. `api_names` are the
    /// configured APIs (for scopes). `/healthz` answers as soon as
    /// [`HttpServer::run`] runs; MCP once [`ReadyHandle::set`] is called.
    pub async fn bind(server: &ServerConfig, auth: &AuthConfig, api_names: &[String]) -> Result<Self, StartError> {
        let settings = resolve(server, auth, api_names, &|k| std::env::var(k).ok()).map_err(StartError::Config)?;
        let listener = TcpListener::bind(settings.listen).await.map_err(|e| StartError::Bind(settings.listen, e))?;
        let settings =
            Settings { listen: listener.local_addr().map_err(|e| StartError::Bind(settings.listen, e))?, ..settings };
        // With port 0 the public URL learns the real port.
        let settings = if server.public_url.is_none() && server.listen.ends_with(":0") {
            let public_url =
                settings.public_url.rsplit_once(':').map(|(h, _)| format!("{h}:{}", settings.listen.port()));
            let public_url = public_url.unwrap_or(settings.public_url.clone());
            let mut s = Settings { public_url, ..settings };
            if let Some(o) = &mut s.oauth {
                if auth.oauth.as_ref().is_some_and(|a| a.resource.is_none()) {
                    o.resource = format!("{}/mcp", s.public_url);
                }
            }
            s
        } else {
            settings
        };
        // codemode as the authorization server: built here (the upstream
        // provider's discovery is a request), checked like the rest.
        let signin = match &settings.signin {
            Some(c) => Some(
                codemode_authz::AuthServer::new(c, &settings.public_url, &settings.mcp_url(), &|k| {
                    std::env::var(k).ok()
                })
                .await
                .map_err(|ps| {
                    StartError::Config(
                        ps.into_iter()
                            .map(|line| {
                                let (key, message) = line.split_once(": ").unwrap_or(("auth.signin", line.as_str()));
                                Problem { key: key.into(), message: message.into() }
                            })
                            .collect(),
                    )
                })?,
            ),
            None => None,
        };
        let auth = Authenticator::new(&settings, signin);
        if let Some(jwt) = auth.jwt().cloned() {
            tokio::spawn(async move { jwt.prefetch().await });
        }
        let mut manager = LocalSessionManager::default();
        manager.session_config.keep_alive = Some(settings.session_idle);
        let manager = Arc::new(manager);
        // Limits shared by a fleet (`[server] redis_url`), else per replica.
        let shared = settings.redis.as_ref().map(crate::shared::Shared::new).transpose().map_err(StartError::Config)?;
        let state = Arc::new(AppState {
            rate: settings.rate.map(|(per_sec, burst)| Rate::new(per_sec, burst, shared.clone())),
            calls: Calls::new(settings.max_concurrent_calls, shared),
            sessions: Sessions::default(),
            manager: manager.clone(),
            legacy: crate::sse::Registry::default(),
            ready: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            ct: CancellationToken::new(),
            auth,
            settings,
        });
        let cell: Arc<OnceLock<S>> = Arc::new(OnceLock::new());
        let app = router(state.clone(), cell.clone(), manager);
        Ok(HttpServer { state, listener, app, cell })
    }

    /// Where it listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.state.settings.listen
    }

    /// The URL of the MCP endpoint.
    pub fn mcp_url(&self) -> String {
        self.state.settings.mcp_url()
    }

    /// Serves `/metrics` (Prometheus text) from what the returned handle is
    /// given; see [`crate::metrics`] for who may read it.
    pub fn serve_metrics(&mut self) -> crate::MetricsHandle {
        let handle = crate::MetricsHandle::default();
        let app = std::mem::take(&mut self.app);
        self.app = app.merge(crate::metrics::router(self.state.clone(), handle.clone()));
        handle
    }

    /// Where signed-in users' upstream tokens come from, with `[auth.signin]`
    /// (for the host's `signin` APIs).
    pub fn user_credentials(&self) -> Option<Arc<dyn codemode_authz::UserCredentials>> {
        self.state.auth.signin().map(|s| s.clone() as Arc<dyn codemode_authz::UserCredentials>)
    }

    /// For handing over the MCP handler once it is built.
    pub fn ready_handle(&self) -> ReadyHandle<S> {
        ReadyHandle { cell: self.cell.clone(), state: self.state.clone() }
    }

    /// Serves until `shutdown` completes, then: stops accepting, answers 503
    /// to new MCP requests, lets running tool calls finish for up to
    /// `shutdown_grace_secs`, cancels what is left and closes every session.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> std::io::Result<()> {
        let HttpServer { state, listener, app, cell: _ } = self;
        let s = &state.settings;
        tracing::info!(
            listen = %s.listen,
            loopback = s.loopback,
            url = %s.mcp_url(),
            mode = if s.stateless { "stateless" } else { "sessions" },
            legacy_sse = s.legacy_sse,
            auth = if state.auth.signin().is_some() { "oauth sign-in (codemode is the authorization server)" } else if state.auth.jwt().is_some() { "oauth" } else if s.tokens.is_empty() { "none (loopback)" } else { "tokens" },
            "listening"
        );
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let connections = Arc::new(Semaphore::new(s.max_connections));
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new()).header_read_timeout(s.header_read_timeout).max_buf_size(64 * 1024);
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                _ = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let Ok(permit) = connections.clone().try_acquire_owned() else {
                tracing::warn!(%peer, limit = s.max_connections, "too many connections: closing a new one");
                drop(stream);
                continue;
            };
            let _ = stream.set_nodelay(true);
            let svc = app.clone().map_request(move |mut r: http::Request<hyper::body::Incoming>| {
                r.extensions_mut().insert(Peer(peer));
                r
            });
            let conn = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(svc));
            let conn = graceful.watch(conn);
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(%peer, "connection ended: {e}");
                }
                drop(permit);
            });
        }
        drop(listener);
        state.draining.store(true, Ordering::Release);
        let running = state.calls.in_flight();
        tracing::info!(
            running_calls = running,
            grace_secs = s.shutdown_grace.as_secs_f64(),
            "shutting down: no new connections or requests; waiting for running tool calls"
        );
        let deadline = tokio::time::Instant::now() + s.shutdown_grace;
        if !state.calls.wait_idle(deadline).await {
            tracing::warn!(running_calls = state.calls.in_flight(), "grace period over: cancelling running tool calls");
        }
        state.ct.cancel();
        tokio::select! {
            _ = graceful.shutdown() => tracing::info!("all connections closed"),
            _ = tokio::time::sleep(Duration::from_secs(5)) => tracing::warn!("some connections did not close in time"),
        }
        Ok(())
    }
}

fn router<S>(state: Arc<AppState>, cell: Arc<OnceLock<S>>, manager: Arc<LocalSessionManager>) -> Router
where
    S: ServerHandler + Clone + Send + Sync + 'static,
{
    let s = &state.settings;
    let legacy_sse = s.legacy_sse;
    let mut config = StreamableHttpServerConfig::default()
        // Host and Origin are checked by our own layer, before auth.
        .disable_allowed_hosts()
        .disable_allowed_origins()
        .with_legacy_session_mode(!s.stateless)
        .with_json_response(s.json_response)
        .with_cancellation_token(state.ct.clone())
        .with_max_request_body_bytes(s.max_body_bytes)
        .with_sse_keep_alive(s.sse_keep_alive);
    if s.stateless {
        // No session to resume into: no priming events.
        config = config.with_sse_retry(None);
    }
    let handler = cell.clone();
    let mcp = StreamableHttpService::new(
        move || handler.get().cloned().ok_or_else(|| std::io::Error::other("codemode is still loading its APIs")),
        manager,
        config,
    );
    let mut mcp = Router::new().route_service("/mcp", mcp);
    if s.legacy_sse {
        mcp = mcp
            .route(
                crate::sse::SSE_PATH,
                get(move |State(state): State<Arc<AppState>>, req: axum::extract::Request| {
                    crate::sse::open(state, cell.clone(), req)
                }),
            )
            .route(
                crate::sse::MESSAGES_PATH,
                post(|State(state): State<Arc<AppState>>, req: axum::extract::Request| crate::sse::message(state, req)),
            );
    }
    let mcp = mcp
        // The same layers for every MCP route. Outermost last: Host/Origin → ready → auth → rate → body/calls → rmcp.
        .layer(from_fn_with_state(state.clone(), crate::calls::track))
        .layer(from_fn_with_state(state.clone(), crate::limits::rate))
        .layer(from_fn_with_state(state.clone(), crate::auth::require))
        .layer(from_fn_with_state(state.clone(), crate::guard::ready))
        .layer(from_fn_with_state(state.clone(), crate::guard::host_and_origin));
    let metadata = Router::new()
        .route("/.well-known/oauth-protected-resource", get(resource_metadata))
        .route("/.well-known/oauth-protected-resource/mcp", get(resource_metadata))
        .layer(from_fn_with_state(state.clone(), crate::guard::host_and_origin));
    let signin = state.auth.signin().map(|s| {
        codemode_authz::router(s.clone()).layer(from_fn_with_state(state.clone(), crate::guard::host_and_origin))
    });
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .merge(metadata)
        .merge(mcp)
        .fallback(move || async move {
            let m = if legacy_sse {
                "Not Found: the MCP endpoint is /mcp (legacy HTTP+SSE clients: GET /sse)"
            } else {
                "Not Found: the MCP endpoint is /mcp"
            };
            (StatusCode::NOT_FOUND, m)
        })
        .with_state(state);
    match signin {
        Some(s) => app.merge(s),
        None => app,
    }
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    if state.draining.load(Ordering::Acquire) {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response()
    } else if state.ready.load(Ordering::Acquire) {
        "ready".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "loading APIs").into_response()
    }
}

/// RFC 9728 Protected Resource Metadata (404 without OAuth).
async fn resource_metadata(State(state): State<Arc<AppState>>) -> Response {
    let (resource, issuer) = match (state.auth.jwt(), state.auth.signin()) {
        (_, Some(s)) => (s.resource().to_string(), s.issuer().to_string()),
        (Some(jwt), None) => (jwt.resource().to_string(), jwt.issuer().to_string()),
        (None, None) => return (StatusCode::NOT_FOUND, "Not Found: this server does not use OAuth").into_response(),
    };
    let mut r = axum::Json(json!({
        "resource": resource,
        "authorization_servers": [issuer],
        "scopes_supported": state.auth.all_scopes(),
        "bearer_methods_supported": ["header"],
        "resource_name": "codemode",
    }))
    .into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=300"));
    r
}

/// Completes on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("SIGINT received"),
        _ = term => tracing::info!("SIGTERM received"),
    }
}
