//! The pipeline layer that traces and measures each nested call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use codemode_pipeline::{BoxReply, Call, Layer, Next, Operation, Reply};
use codemode_upstream::{Scrubber, Upstream};
use opentelemetry::context::FutureExt as _;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer as _};
use opentelemetry::{Context, KeyValue};
use serde_json::{Map, Value};

use crate::context::ExecTrace;
use crate::telemetry::{Inner, Telemetry};

/// Query parameters whose values are replaced by `REDACTED` in `url.full`:
/// the HTTP conventions' list (`AWSAccessKeyId`, `Signature`, `sig`,
/// `X-Goog-Signature`) and any name that reads like a credential. The
/// [`Scrubber`] then removes every configured credential, in every
/// encoding, from what is left.
const SENSITIVE_QUERY: [&str; 11] =
    ["sig", "signature", "token", "key", "secret", "password", "passwd", "auth", "credential", "session", "code"];

/// One CLIENT span per nested call — HTTP client conventions for API
/// requests (`GET /books/{id}`), MCP client conventions for upstream
/// tools (`tools/call search_issues`) — as a child of the execution's
/// context ([`ExecTrace`]), plus `http.client.request.duration` /
/// `mcp.client.operation.duration`.
///
/// It sits just inside the audit layer: audit stays outermost (it must see
/// everything, and its bookkeeping is not the call's time), and every
/// layer that can refuse runs inside this one, so refusals are spans with
/// `error.type` too. The span's context is attached around the rest of
/// the pipeline, so the route sends this span's `traceparent`. It never
/// changes or refuses a call. A call cancelled in flight ends its span
/// with `error.type = cancelled`.
pub struct TelemetryLayer {
    inner: Arc<Inner>,
    apis: HashMap<String, Upstream>,
    scrubber: Scrubber,
}

impl TelemetryLayer {
    /// The layer for `telemetry` (`None` when it is off: then there is no
    /// layer at all). `apis` give each API's URL; `scrubber` holds every
    /// credential codemode has, none of which may reach a span.
    pub fn new(
        telemetry: &Telemetry,
        apis: impl IntoIterator<Item = (String, Upstream)>,
        scrubber: Scrubber,
    ) -> Option<TelemetryLayer> {
        let inner = telemetry.inner()?.clone();
        Some(TelemetryLayer { inner, apis: apis.into_iter().collect(), scrubber })
    }

    /// `url.full` of a request: the URL it is sent to, without user info,
    /// credential-like query values replaced, every credential scrubbed.
    fn url_full(&self, api: &str, req: &codemode_upstream::ApiRequest) -> Option<(String, String, u16, String)> {
        let upstream = self.apis.get(api)?;
        let mut url = upstream.url_for(req).ok()?;
        let _ = url.set_username("");
        let _ = url.set_password(None);
        if url.query().is_some() {
            let pairs: Vec<(String, String)> = url
                .query_pairs()
                .map(|(k, v)| {
                    let lower = k.to_ascii_lowercase();
                    let sensitive = SENSITIVE_QUERY.iter().any(|s| lower.contains(s));
                    (k.into_owned(), if sensitive { "REDACTED".to_string() } else { v.into_owned() })
                })
                .collect();
            url.query_pairs_mut().clear().extend_pairs(pairs);
        }
        let host = url.host_str().unwrap_or_default().to_string();
        let port = url.port_or_known_default().unwrap_or(0);
        let scheme = url.scheme().to_string();
        Some((self.scrubber.scrub_str(url.as_str()).into_owned(), host, port, scheme))
    }
}

/// What a call in flight needs at its end.
struct Flight {
    inner: Arc<Inner>,
    cx: Context,
    started: Instant,
    kind: Kind,
    metric: Vec<KeyValue>,
    notes: Arc<Mutex<Map<String, Value>>>,
    done: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Http,
    Tool,
}

impl Flight {
    fn finish(&mut self, reply: Option<&Reply>) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let mut attrs: Vec<KeyValue> = Vec::new();
        let mut error: Option<String> = None;
        let mut message: Option<String> = None;
        match reply {
            Some(Ok(v)) => {
                if self.kind == Kind::Http {
                    if let Some(s) = v.get("status").and_then(Value::as_i64) {
                        attrs.push(KeyValue::new("http.response.status_code", s));
                        if s >= 400 {
                            error = Some(s.to_string());
                        }
                    }
                }
            }
            Some(Err(e)) => {
                let status = e.fields.get("status").and_then(Value::as_i64);
                if let (Kind::Http, Some(s)) = (self.kind, status) {
                    attrs.push(KeyValue::new("http.response.status_code", s));
                }
                error = Some(match (self.kind, status) {
                    // HTTP conventions: the status code when there is one.
                    (Kind::Http, Some(s)) if s >= 400 => s.to_string(),
                    // MCP conventions: an `isError` result is `tool_error`.
                    (Kind::Tool, _) if e.name == "ToolError" => "tool_error".into(),
                    (_, _) if e.name == "TimeoutError" => "timeout".into(),
                    _ => low_cardinality(&e.name),
                });
                if let (Kind::Tool, Some(code)) = (self.kind, e.fields.get("code").and_then(Value::as_i64)) {
                    attrs.push(KeyValue::new("rpc.response.status_code", code.to_string()));
                }
                message = Some(e.message.chars().take(300).collect());
            }
            None => error = Some("cancelled".into()),
        }
        let span = self.cx.span();
        if span.is_recording() {
            let notes = self.notes.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(v) = notes.get("allowedBy") {
                let text = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                attrs.push(KeyValue::new("codemode.allowed_by", text));
            }
            if let Some(d) = notes.get("approval").and_then(|a| a.get("decision")).and_then(Value::as_str) {
                attrs.push(KeyValue::new("codemode.approval", d.to_string()));
            }
            if notes.get("dryRun").and_then(Value::as_bool) == Some(true) {
                attrs.push(KeyValue::new("codemode.dry_run", true));
            }
            drop(notes);
            for a in &attrs {
                span.set_attribute(a.clone());
            }
            if let Some(e) = &error {
                span.set_attribute(KeyValue::new("error.type", e.clone()));
                span.set_status(Status::error(message.unwrap_or_else(|| e.clone())));
            }
            span.end();
        }
        if let Some(i) = &self.inner.instruments {
            let mut m = std::mem::take(&mut self.metric);
            m.extend(attrs.into_iter().filter(|a| a.key.as_str() == "http.response.status_code"));
            if let Some(e) = error {
                m.push(KeyValue::new("error.type", e));
            }
            let secs = self.started.elapsed().as_secs_f64();
            match self.kind {
                Kind::Http => i.http.record(secs, &m),
                Kind::Tool => i.mcp_client.record(secs, &m),
            }
        }
    }
}

impl Drop for Flight {
    fn drop(&mut self) {
        self.finish(None);
    }
}

/// An error name fit for `error.type`: host error names as they are
/// (`PolicyError`, `UpstreamError`…), anything odd as `_OTHER`.
pub(crate) fn low_cardinality(name: &str) -> String {
    if !name.is_empty() && name.len() <= 40 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        name.to_string()
    } else {
        "_OTHER".into()
    }
}

impl Layer for TelemetryLayer {
    fn handle<'a>(&'a self, call: Call, next: Next<'a>) -> BoxReply<'a> {
        let parent = ExecTrace::parent(&call.exec).unwrap_or_default();
        let (name, kind, span_attrs, metric) = match &call.op {
            Operation::Http(h) => {
                let method = h.request.method.clone();
                let mut span = vec![
                    KeyValue::new("http.request.method", method.clone()),
                    KeyValue::new("codemode.api", h.api.clone()),
                ];
                let mut metric = vec![
                    KeyValue::new("http.request.method", method.clone()),
                    KeyValue::new("codemode.api", h.api.clone()),
                ];
                if let Some((url, host, port, scheme)) = self.url_full(&h.api, &h.request) {
                    span.push(KeyValue::new("url.full", url));
                    for v in [
                        KeyValue::new("server.address", host),
                        KeyValue::new("server.port", i64::from(port)),
                        KeyValue::new("url.scheme", scheme),
                    ] {
                        span.push(v.clone());
                        metric.push(v);
                    }
                }
                if let Some(t) = &h.template {
                    span.push(KeyValue::new("url.template", t.clone()));
                }
                if let Some(id) = &h.operation_id {
                    span.push(KeyValue::new("codemode.operation_id", id.clone()));
                }
                // HTTP conventions: `{method} {url.template}`, or the method
                // alone when no low-cardinality target is known.
                let name = match &h.template {
                    Some(t) => format!("{method} {t}"),
                    None => method,
                };
                (name, Kind::Http, span, metric)
            }
            Operation::Graphql(g) => {
                let kind = g.checked.kind.as_str();
                let mut span = vec![
                    KeyValue::new("http.request.method", "POST"),
                    KeyValue::new("codemode.api", g.api.clone()),
                    KeyValue::new("graphql.operation.type", kind),
                ];
                let mut metric =
                    vec![KeyValue::new("http.request.method", "POST"), KeyValue::new("codemode.api", g.api.clone())];
                if let Some((url, host, port, scheme)) = self.url_full(&g.api, &g.request) {
                    span.push(KeyValue::new("url.full", url));
                    for v in [
                        KeyValue::new("server.address", host),
                        KeyValue::new("server.port", i64::from(port)),
                        KeyValue::new("url.scheme", scheme),
                    ] {
                        span.push(v.clone());
                        metric.push(v);
                    }
                }
                // The GraphQL conventions: `{type} {name}`; the document
                // itself is never recorded (it may carry data).
                let name = match &g.checked.operation_name {
                    Some(n) => {
                        span.push(KeyValue::new("graphql.operation.name", n.clone()));
                        format!("{kind} {n}")
                    }
                    None => kind.to_string(),
                };
                (name, Kind::Http, span, metric)
            }
            Operation::Tool(t) => {
                let common = vec![
                    KeyValue::new("mcp.method.name", "tools/call"),
                    KeyValue::new("gen_ai.tool.name", t.tool.clone()),
                    KeyValue::new("gen_ai.operation.name", "execute_tool"),
                    KeyValue::new("codemode.mcp.server", t.server.clone()),
                ];
                let mut span = common.clone();
                span.push(KeyValue::new("codemode.tool", format!("codemode.{}", t.name)));
                (format!("tools/call {}", t.tool), Kind::Tool, span, common)
            }
        };
        let cx = match &self.inner.tracer {
            Some(tracer) => {
                let span = tracer
                    .span_builder(name)
                    .with_kind(SpanKind::Client)
                    .with_attributes(span_attrs)
                    .start_with_context(tracer, &parent);
                parent.with_span(span)
            }
            None => parent,
        };
        let mut flight = Flight {
            inner: self.inner.clone(),
            cx: cx.clone(),
            started: Instant::now(),
            kind,
            metric,
            notes: call.notes.clone(),
            done: false,
        };
        // The rest of the pipeline (and the route's propagation) runs in
        // this span's context.
        let rest = next.run(call).with_context(cx);
        Box::pin(async move {
            let reply = rest.await;
            flight.finish(Some(&reply));
            reply
        })
    }
}
