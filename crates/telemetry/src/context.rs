//! W3C trace context in (a tool call's `_meta` or HTTP headers) and out
//! (every upstream request, every upstream `tools/call`), and the
//! per-execution context that nested calls are children of.

use std::collections::HashMap;
use std::sync::OnceLock;

use codemode_pipeline::Execution;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt;
use opentelemetry::Context;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use serde_json::{Map, Value};

/// The trace context a tool call arrived with, as sent (not yet parsed).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Incoming {
    /// `traceparent`: `00-<trace id>-<parent id>-<flags>`.
    pub traceparent: Option<String>,
    /// `tracestate`: vendor entries that travel with it.
    pub tracestate: Option<String>,
}

/// Longest `traceparent`/`tracestate` taken in: the W3C limits (55 and
/// 512 characters) with room, so a hostile client cannot make every span
/// and upstream request carry a megabyte.
const MAX_HEADER: usize = 1024;

impl Incoming {
    /// From a request's `params._meta` (SEP-414).
    pub fn from_meta(meta: &Map<String, Value>) -> Incoming {
        let get = |k: &str| meta.get(k).and_then(Value::as_str).map(str::to_string);
        Incoming { traceparent: get("traceparent"), tracestate: get("tracestate") }.bounded()
    }

    /// From HTTP request headers (`get` answers a lower-case header name).
    pub fn from_headers(get: impl Fn(&str) -> Option<String>) -> Incoming {
        Incoming { traceparent: get("traceparent"), tracestate: get("tracestate") }.bounded()
    }

    /// This one when it carries a `traceparent`, else `other`: the MCP
    /// semantic conventions make `_meta` the parent, and the transport's
    /// headers only a fallback (one HTTP request can carry many MCP messages).
    pub fn or(self, other: Incoming) -> Incoming {
        if self.traceparent.is_some() {
            self
        } else {
            other
        }
    }

    fn bounded(mut self) -> Incoming {
        for v in [&mut self.traceparent, &mut self.tracestate] {
            if v.as_ref().is_some_and(|s| s.len() > MAX_HEADER || s.trim().is_empty()) {
                *v = None;
            }
        }
        if self.traceparent.is_none() {
            self.tracestate = None;
        }
        self
    }

    /// The remote parent it names, when the `traceparent` is valid.
    pub fn context(&self) -> Option<Context> {
        let traceparent = self.traceparent.as_ref()?;
        let mut carrier = HashMap::with_capacity(2);
        carrier.insert("traceparent".to_string(), traceparent.clone());
        if let Some(ts) = &self.tracestate {
            carrier.insert("tracestate".to_string(), ts.clone());
        }
        let cx = TraceContextPropagator::new().extract(&carrier);
        cx.span().span_context().is_valid().then_some(cx)
    }
}

/// Per-execution pipeline state ([`Execution::state`]): the context the
/// execution's nested calls are children of — the tool call's span, or,
/// with telemetry off, the caller's own context passed through. The
/// sandbox runs host calls on tasks of its own, so this travels with the
/// execution, not with the task.
#[derive(Debug, Default)]
pub struct ExecTrace {
    cx: OnceLock<Context>,
}

impl ExecTrace {
    /// Makes the current OpenTelemetry context (the tool call's, attached
    /// by the server around the call) the parent of `exec`'s nested calls.
    /// Nothing is stored when it carries no valid span context.
    pub fn attach_current(exec: &Execution) {
        let cx = Context::current();
        if cx.span().span_context().is_valid() {
            let _ = exec.state::<ExecTrace>().cx.set(cx);
        }
    }

    /// The parent of `exec`'s nested calls, if any.
    pub fn parent(exec: &Execution) -> Option<Context> {
        exec.state::<ExecTrace>().cx.get().cloned()
    }
}

/// The W3C headers a nested call sends: the current context (the call's
/// CLIENT span, attached by the telemetry layer) when it has one, else the
/// execution's parent (telemetry off: the caller's context passed on
/// unchanged, as an intermediary that does not trace should). Empty when
/// there is no trace at all.
pub fn outgoing(exec: &Execution) -> Vec<(&'static str, String)> {
    let current = Context::current();
    let cx = if current.span().span_context().is_valid() {
        current
    } else {
        match ExecTrace::parent(exec) {
            Some(cx) => cx,
            None => return Vec::new(),
        }
    };
    inject(&cx)
}

/// `traceparent` (and `tracestate` when not empty) for `cx`.
pub fn inject(cx: &Context) -> Vec<(&'static str, String)> {
    let mut carrier: HashMap<String, String> = HashMap::with_capacity(2);
    TraceContextPropagator::new().inject_context(cx, &mut carrier);
    let mut out = Vec::with_capacity(2);
    if let Some(tp) = carrier.remove("traceparent") {
        out.push(("traceparent", tp));
        if let Some(ts) = carrier.remove("tracestate").filter(|s| !s.is_empty()) {
            out.push(("tracestate", ts));
        }
    }
    out
}

/// The trace id of `cx` in hex, when it has one (for log lines).
pub fn trace_id(cx: &Context) -> Option<String> {
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| sc.trace_id().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn meta_wins_over_headers_and_parses() {
        let meta: Map<String, Value> =
            serde_json::from_str(&format!(r#"{{"traceparent": "{TP}", "tracestate": "rojo=1"}}"#)).unwrap();
        let header = Incoming::from_headers(|k| {
            (k == "traceparent").then(|| "00-ffffffffffffffffffffffffffffffff-ffffffffffffffff-01".into())
        });
        let incoming = Incoming::from_meta(&meta).or(header);
        let cx = incoming.context().expect("valid");
        assert_eq!(trace_id(&cx).as_deref(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
        let out = inject(&cx);
        assert_eq!(out, vec![("traceparent", TP.to_string()), ("tracestate", "rojo=1".to_string())]);
    }

    #[test]
    fn invalid_or_huge_traceparents_are_ignored() {
        for bad in ["", "garbage", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", &"0".repeat(5000)] {
            let i = Incoming::from_headers(|k| (k == "traceparent").then(|| bad.to_string()));
            assert!(i.context().is_none(), "{bad:.40}");
        }
    }

    #[test]
    fn execution_parent_is_passed_through_when_nothing_traces() {
        let exec = Execution::new(None);
        assert!(outgoing(&exec).is_empty());
        let cx = Incoming { traceparent: Some(TP.into()), tracestate: None }.context().unwrap();
        {
            let _guard = cx.attach();
            ExecTrace::attach_current(&exec);
        }
        assert_eq!(outgoing(&exec), vec![("traceparent", TP.to_string())]);
    }
}
