//! OpenTelemetry for codemode: traces and metrics of every tool call and
//! every nested call, over OTLP (HTTP/protobuf or gRPC), following the MCP
//! and HTTP semantic conventions, with W3C trace context in and out.
//!
//! ```text
//! [telemetry] + OTEL_*  ──resolve──▶ Settings ──Telemetry::start──▶ Telemetry (off: None inside)
//!
//! tools/call ─▶ Telemetry::tool_call: SERVER span `tools/call execute`
//!                (parent: _meta.traceparent, else the HTTP request's)
//!     └─ Execution (ExecTrace: the span's context)
//!          └─ TelemetryLayer: CLIENT span `GET /books/{id}` / `tools/call <tool>`
//!               └─ route: context::outgoing → traceparent on the request / in _meta
//! ```
//!
//! One job: everything OpenTelemetry is here; the server, the pipeline and
//! the routes call into it. Off unless configured: with no endpoint and no
//! `/metrics`, [`Telemetry`] is empty — no exporter, no thread, no layer —
//! and only an incoming `traceparent` is passed on. No credential reaches a
//! span: URLs are built by the upstream, stripped of user info and
//! credential-like query values, and scrubbed of every configured secret.

mod config;
pub mod context;
mod layer;
mod telemetry;

pub use config::{resolve, Problem, Protocol, Settings, TelemetryConfig};
pub use context::{ExecTrace, Incoming};
pub use layer::TelemetryLayer;
pub use telemetry::{Telemetry, ToolCall, ToolCallInfo, Transport};
