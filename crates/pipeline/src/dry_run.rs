//! Dry run: reads are sent, writes are recorded as the plan instead.

use std::collections::HashSet;
use std::sync::Mutex;

use serde_json::{json, Value};

use crate::{Access, BoxReply, Call, Execution, Layer, Next, Operation};

/// Records every write of a dry-run execution (or of a target configured
/// `dry_run = true`) instead of sending it, and answers the code as if it
/// had been accepted: `{status: 202, headers: {"x-codemode-dry-run":
/// "true"}, data: null, dryRun: true}` for an API, `{dryRun: true}` for a
/// tool. Sits after the rules (a denied write is refused, not planned) and
/// before approval (nothing is sent, so no one is asked).
#[derive(Debug, Default)]
pub struct DryRunLayer {
    targets: HashSet<String>,
}

/// The writes a dry run planned, in order.
#[derive(Debug, Default)]
struct Plan(Mutex<Vec<Value>>);

impl DryRunLayer {
    /// A layer that plans writes of dry-run executions, and always for
    /// the APIs and servers in `targets`.
    pub fn new(targets: impl IntoIterator<Item = String>) -> Self {
        DryRunLayer { targets: targets.into_iter().collect() }
    }

    /// The writes planned in `exec` so far.
    pub fn plan(exec: &Execution) -> Vec<Value> {
        exec.state::<Plan>().0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Layer for DryRunLayer {
    fn handle<'a>(&'a self, call: Call, next: Next<'a>) -> BoxReply<'a> {
        if call.access != Access::Write || !(call.exec.dry_run || self.targets.contains(call.target())) {
            return next.run(call);
        }
        let (mut entry, reply) = match &call.op {
            Operation::Http(h) => {
                let mut e = json!({"api": h.api, "method": h.request.method, "path": h.request.path});
                if !h.request.query.is_empty() {
                    e["query"] = Value::Array(h.request.query.iter().map(|(k, v)| json!([k, v])).collect());
                }
                // Bytes and files by size and type, never their content.
                if let Some(body) = h.request.body.describe() {
                    e["body"] = body;
                    if !matches!(h.request.body, codemode_upstream::Body::Json(..)) {
                        e["contentType"] = json!(h.request.body.content_type());
                    }
                }
                (e, json!({"status": 202, "headers": {"x-codemode-dry-run": "true"}, "data": null, "dryRun": true}))
            }
            Operation::Tool(t) => {
                (json!({"server": t.server, "tool": t.name, "arguments": t.arguments}), json!({"dryRun": true}))
            }
            Operation::Graphql(g) => {
                let body = g.request.body.describe().unwrap_or(Value::Null);
                let e = json!({"api": g.api, "operation": g.checked.kind.as_str(), "fields": g.coordinates(), "body": body});
                // What a GraphQL server answers, with nothing done.
                (e, json!({"data": null, "extensions": {"dryRun": true}, "dryRun": true}))
            }
        };
        if call.needs_approval.is_some() {
            entry["approval"] = json!("required");
        }
        call.note("dryRun", true);
        call.exec.state::<Plan>().0.lock().unwrap_or_else(|e| e.into_inner()).push(entry);
        Box::pin(async move { Ok(reply) })
    }
}
