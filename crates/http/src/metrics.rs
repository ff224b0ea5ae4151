//! `/metrics`: the Prometheus text exposition, opt-in.
//!
//! The text comes from a callback ([`MetricsHandle::set`]), so this crate
//! knows nothing of how metrics are recorded: one place records (the
//! OpenTelemetry instruments), this route only renders.
//!
//! Who may read it: the same Host check as `/mcp`, and the same
//! authenticator — on a loopback listener without `[auth]` it is open
//! (like `/mcp` there); with `[auth]` (required off loopback) it needs a
//! valid bearer credential with the `metrics` scope (or `*`). A scraper's
//! token with `scopes = ["metrics"]` opens no API: `/mcp` refuses it, and
//! an agent's API token cannot read the metrics. The metrics hold
//! no principal, session or URL: only tool, API and server names, methods,
//! status codes and error types.

use std::sync::{Arc, OnceLock};

use axum::extract::{Request, State};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use http::{header, HeaderValue, StatusCode};

use crate::server::AppState;

/// Renders the metrics as Prometheus text (`None`: nothing to show).
pub type RenderMetrics = Arc<dyn Fn() -> Option<String> + Send + Sync>;

/// Hands the renderer to a running server once the service is built;
/// until then `/metrics` answers 503.
#[derive(Clone, Default)]
pub struct MetricsHandle {
    cell: Arc<OnceLock<RenderMetrics>>,
}

impl MetricsHandle {
    /// Serve what `render` returns.
    pub fn set(&self, render: RenderMetrics) {
        let _ = self.cell.set(render);
    }
}

/// The `/metrics` route behind the Host check and inbound authentication.
pub(crate) fn router(state: Arc<AppState>, handle: MetricsHandle) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(move || {
                let handle = handle.clone();
                async move { render(&handle) }
            }),
        )
        .layer(from_fn_with_state(state.clone(), authenticated))
        .layer(from_fn_with_state(state, crate::guard::host_and_origin))
}

fn render(handle: &MetricsHandle) -> Response {
    match handle.cell.get().and_then(|r| r()) {
        Some(text) => {
            let mut r = text.into_response();
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
            r
        }
        None => (StatusCode::SERVICE_UNAVAILABLE, "metrics are not ready").into_response(),
    }
}

/// A valid credential with the `metrics` scope (or every scope).
async fn authenticated(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    match state.auth.authenticate(req.headers()).await {
        Ok(p) if p.scopes.as_ref().is_none_or(|s| s.contains("metrics")) => next.run(req).await,
        Ok(p) => {
            tracing::info!(principal = %p.name, "no `metrics` scope: /metrics answers 403");
            (StatusCode::FORBIDDEN, "Forbidden: reading /metrics needs the `metrics` scope").into_response()
        }
        Err(f) => state.auth.reject(&f),
    }
}
