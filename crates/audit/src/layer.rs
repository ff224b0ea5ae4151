//! The pipeline layer that records each nested call.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use codemode_pipeline::{BoxReply, Call, Execution, Layer, Next, Operation, Reply};
use codemode_upstream::Body;
use serde_json::{Map, Value};

use crate::{CallKind, CallRecord};

/// Records every call that passes it into the execution's [`AuditLog`].
///
/// Put it **outermost** (first in the pipeline's layers), so that it also
/// sees the calls that scopes, rules and approval refuse, and times the
/// whole path including a wait for a person. It never changes or refuses
/// a call, and does no I/O: a record costs a few allocations and the
/// sizes of the body and the reply (counted, not copied). A call still in
/// flight when its execution ends (timeout, cancellation) is recorded as
/// `Cancelled`.
#[derive(Clone, Copy, Debug, Default)]
pub struct AuditLayer;

impl AuditLayer {
    /// The layer.
    pub fn new() -> Self {
        AuditLayer
    }
}

/// The calls recorded for one execution: per-execution pipeline state
/// ([`Execution::state`]). The server reads it with [`AuditLog::calls`]
/// when the execution ends and hands it to the store with the execution.
#[derive(Debug, Default)]
pub struct AuditLog {
    next_seq: AtomicU32,
    calls: Mutex<Vec<CallRecord>>,
}

impl AuditLog {
    /// The calls recorded so far for `exec`, in the order they were made
    /// (`seq`).
    pub fn calls(exec: &Execution) -> Vec<CallRecord> {
        let log = exec.state::<AuditLog>();
        let mut calls = log.calls.lock().unwrap_or_else(|e| e.into_inner()).clone();
        calls.sort_by_key(|c| c.seq);
        calls
    }

    /// Adds a call the pipeline never saw (refused while parsing, say),
    /// numbering it after those made so far.
    pub fn push(exec: &Execution, mut record: CallRecord) {
        let log = exec.state::<AuditLog>();
        record.seq = log.next_seq();
        log.calls.lock().unwrap_or_else(|e| e.into_inner()).push(record);
    }

    fn next_seq(&self) -> u32 {
        self.next_seq.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// Counts the bytes of serialised JSON without building the text.
struct Count(u64);

impl std::io::Write for Count {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The length of `v` as compact JSON, in bytes.
pub(crate) fn json_len(v: &Value) -> u64 {
    let mut c = Count(0);
    let _ = serde_json::to_writer(&mut c, v);
    c.0
}

/// The record of a call before it runs: what it goes to and sends.
fn start(call: &Call, seq: u32) -> CallRecord {
    let (kind, target, method, path, template, bytes_out) = match &call.op {
        Operation::Http(h) => {
            let r = &h.request;
            let mut path = r.path.clone();
            if !r.query.is_empty() {
                path.push('?');
                path.push_str(
                    &url::form_urlencoded::Serializer::new(String::new()).extend_pairs(r.query.iter()).finish(),
                );
            }
            let bytes = match &r.body {
                Body::Json(v, _) => json_len(v),
                other => other.encoded_len() as u64,
            };
            (CallKind::Api, h.api.clone(), Some(r.method.clone()), path, h.template.clone(), bytes)
        }
        Operation::Tool(t) => (CallKind::Tool, t.server.clone(), None, t.name.clone(), None, json_len(&t.arguments)),
        // A GraphQL call is an API call to the endpoint; its root fields
        // (`mutation.addComment`) stand where an OpenAPI template would.
        Operation::Graphql(g) => (
            CallKind::Api,
            g.api.clone(),
            Some("POST".into()),
            g.request.path.clone(),
            Some(g.coordinates().join(",")),
            json_len(&g.checked.body),
        ),
    };
    CallRecord {
        seq,
        at_ms: crate::time::now_ms(),
        kind,
        target,
        method,
        path,
        template,
        status: None,
        ok: false,
        error_name: None,
        duration_ms: 0.0,
        bytes_out,
        bytes_in: 0,
        allowed_by: None,
        approval: None,
        refused: None,
        dry_run: false,
    }
}

/// A call on its way: finished with its reply, or — dropped unfinished —
/// recorded as cancelled.
struct InFlight {
    log: Arc<AuditLog>,
    notes: Arc<Mutex<Map<String, Value>>>,
    started: Instant,
    record: Option<CallRecord>,
}

impl InFlight {
    fn finish(&mut self, reply: Option<&Reply>) {
        let Some(mut r) = self.record.take() else { return };
        r.duration_ms = (self.started.elapsed().as_secs_f64() * 1e6).round() / 1e3;
        {
            let notes = self.notes.lock().unwrap_or_else(|e| e.into_inner());
            r.allowed_by = notes.get("allowedBy").map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            });
            r.approval = notes.get("approval").cloned();
            r.dry_run = notes.get("dryRun").and_then(Value::as_bool).unwrap_or(false);
        }
        match reply {
            Some(Ok(v)) => {
                r.ok = true;
                if r.kind == CallKind::Api {
                    r.status = v.get("status").and_then(Value::as_u64).and_then(|s| u16::try_from(s).ok());
                }
                r.bytes_in = json_len(v);
            }
            Some(Err(e)) => r.set_error(e),
            None => {
                r.ok = false;
                r.error_name = Some("Cancelled".into());
            }
        }
        self.log.calls.lock().unwrap_or_else(|e| e.into_inner()).push(r);
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.finish(None);
    }
}

impl Layer for AuditLayer {
    fn handle<'a>(&'a self, call: Call, next: Next<'a>) -> BoxReply<'a> {
        let log = call.exec.state::<AuditLog>();
        let record = start(&call, log.next_seq());
        let mut flight = InFlight { log, notes: call.notes.clone(), started: Instant::now(), record: Some(record) };
        Box::pin(async move {
            let reply = next.run(call).await;
            flight.finish(Some(&reply));
            reply
        })
    }
}
