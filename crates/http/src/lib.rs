//! `codemode-http`: serve an rmcp [`ServerHandler`](rmcp::ServerHandler)
//! over MCP Streamable HTTP, safely by default.
//!
//! ```text
//! TCP accept (max_connections) ─ hyper http1 (header_read_timeout)
//!   /healthz  /readyz  /.well-known/oauth-protected-resource[/mcp]
//!   /mcp: Host/Origin allow-lists → ready/draining gate → auth (Principal)
//!         → per-principal request rate → body limits, sessions, tool-call
//!           slots, cancel-on-disconnect, logging → rmcp StreamableHttpService
//!   /sse, /messages: the same layers → legacy HTTP+SSE (2024-11-05) sessions
//! ```
//!
//! Sessions (`Mcp-Session-Id`, `DELETE` to end one) or stateless (any
//! replica answers any request). The [`Principal`] the auth layer
//! establishes reaches the handler through rmcp's `RequestContext`:
//! [`principal_of`]`(&context.extensions)`.
//!
//! ```ignore
//! let http = HttpServer::<MyHandler>::bind(&config.server, &config.auth, &api_names).await?;
//! let ready = http.ready_handle();
//! let serving = tokio::spawn(http.run(shutdown_signal()));
//! ready.set(build_handler().await?);   // /readyz and /mcp answer from here on
//! serving.await??;
//! ```

mod auth;
mod calls;
mod config;
mod guard;
mod jwt;
mod limits;
pub mod metrics;
mod principal;
mod server;
mod shared;
mod sse;

/// codemode as the authorization server (`[auth.signin]`): the host's side.
pub use codemode_authz::UserCredentials;
pub use config::{check, AuthConfig, OAuthConfig, Problem, ServerConfig, StaticToken, Transport};
pub use metrics::{MetricsHandle, RenderMetrics};
pub use principal::{principal_of, Principal};
pub use server::{shutdown_signal, HttpServer, ReadyHandle, StartError};
