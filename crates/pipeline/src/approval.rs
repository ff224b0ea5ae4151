//! Human approval: calls a rule marks `approve` wait for the user's yes.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{json, Value};

use crate::{BoxReply, Call, HostError, Layer, Next, Operation};

/// What the user is asked.
#[derive(Clone, Debug)]
pub struct ApprovalRequest {
    /// The whole question, ready to show.
    pub message: String,
    /// The call in words (`bookshelf POST /books/1`).
    pub call: String,
    /// The rule that asks (`approve "POST /**" (api bookshelf)`).
    pub rule: String,
}

/// The user's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Send it; `remember`: also the same operation for the rest of this
    /// execution.
    Approve {
        /// Approve the same operation again without asking.
        remember: bool,
    },
    /// The user said no.
    Decline,
    /// The user dismissed the question.
    Cancel,
}

/// Why the user could not be asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AskError {
    /// This client cannot be asked (no elicitation capability, or a
    /// protocol revision that cannot ask mid-call); the reason.
    Unavailable(String),
    /// Asking failed (the client went away, answered nonsense).
    Failed(String),
}

/// Who can answer: the MCP client's user, through elicitation.
pub trait Approver: Send + Sync + 'static {
    /// Asks one question and waits for the answer.
    fn ask(&self, request: ApprovalRequest) -> Pin<Box<dyn Future<Output = Result<Decision, AskError>> + Send>>;
}

/// Asks before sending calls marked for approval: one question at a time
/// per execution (parallel calls queue, never batched), an answer per call
/// unless the user chose to approve the same operation for the rest of the
/// execution. While the question is open the execution's time limit is
/// paused; the wait is bounded by its own timeout.
#[derive(Debug)]
pub struct ApprovalLayer {
    timeout: Duration,
}

#[derive(Default)]
struct ApprovalState {
    one_at_a_time: tokio::sync::Mutex<()>,
    remembered: Mutex<HashSet<String>>,
}

impl ApprovalLayer {
    /// A layer that waits at most `timeout` for each answer.
    pub fn new(timeout: Duration) -> Self {
        ApprovalLayer { timeout }
    }
}

/// Short JSON of a value, for the question.
fn summary(v: &Value, max: usize) -> String {
    let s = v.to_string();
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes in all)", &s[..end], s.len())
}

fn question(call: &Call, rule: &str) -> String {
    let who = match &call.exec.principal {
        Some(p) => format!(" for `{}`", p.name),
        None => String::new(),
    };
    let mut details = String::new();
    match &call.op {
        Operation::Http(h) => {
            details.push_str(&format!("  {} {} {}", h.api, h.request.method, h.request.path));
            if !h.request.query.is_empty() {
                let q: Vec<String> = h.request.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
                details.push_str(&format!("?{}", q.join("&")));
            }
            // Bytes and files by size and type, never their content.
            if let Some(v) = h.request.body.describe() {
                match &h.request.body {
                    codemode_upstream::Body::Json(..) => details.push_str(&format!("\n  body: {}", summary(&v, 600))),
                    other => details.push_str(&format!(
                        "\n  body ({}): {}",
                        other.content_type().unwrap_or_default(),
                        summary(&v, 600)
                    )),
                }
            }
        }
        Operation::Graphql(g) => {
            details.push_str(&format!(
                "  {} GraphQL {} {}",
                g.api,
                g.checked.kind.as_str(),
                g.coordinates().join(", ")
            ));
            let body = &g.checked.body;
            details.push_str(&format!("\n  query: {}", summary(&body["query"], 600)));
            if let Some(v) = body.get("variables") {
                details.push_str(&format!("\n  variables: {}", summary(v, 600)));
            }
        }
        Operation::Tool(t) => {
            details.push_str(&format!("  codemode.{} (tool `{}` of MCP server `{}`)", t.name, t.tool, t.server));
            details.push_str(&format!("\n  arguments: {}", summary(&t.arguments, 600)));
        }
    }
    format!(
        "Approve this call? Code running{who} wants to send:\n\n{details}\n\nIt needs approval by the rule {rule}. Accept to send it once (or check `remember` to also send the same operation for the rest of this run); decline to refuse this call only."
    )
}

fn denied(call: &Call, reason: &str, message: String) -> HostError {
    let mut e = HostError::new("ApprovalDenied", message);
    e.fields = call.context();
    e.fields.insert("reason".into(), json!(reason));
    e.fields.insert("retryable".into(), json!(false));
    e
}

impl Layer for ApprovalLayer {
    fn handle<'a>(&'a self, call: Call, next: Next<'a>) -> BoxReply<'a> {
        let Some(rule) = call.needs_approval.clone() else { return next.run(call) };
        Box::pin(async move {
            let what = call.describe();
            let state = call.exec.state::<ApprovalState>();
            let key = call.operation_key();
            let remembered = |s: &ApprovalState| s.remembered.lock().unwrap_or_else(|e| e.into_inner()).contains(&key);
            if remembered(&state) {
                call.note("approval", json!({"decision": "remembered", "rule": rule}));
                return next.run(call).await;
            }
            let Some(approver) = call.exec.approver.clone() else {
                return Err(denied(
                    &call,
                    "unavailable",
                    format!(
                        "{what} was not sent: it needs a person's approval (rule {rule}), and this MCP client cannot be asked (it did not declare the elicitation capability). Nothing was sent. Do without this call, or tell the user to run it from a client that supports elicitation."
                    ),
                ));
            };
            let asked = {
                let _turn = state.one_at_a_time.lock().await;
                if remembered(&state) {
                    None
                } else {
                    let request =
                        ApprovalRequest { message: question(&call, &rule), call: what.clone(), rule: rule.clone() };
                    let _paused = call.exec.pause.as_ref().map(|p| p());
                    Some(tokio::time::timeout(self.timeout, approver.ask(request)).await)
                }
            };
            let secs = self.timeout.as_secs_f64();
            let decided = |what: &str| {
                let at = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis() as u64)
                    .unwrap_or(0);
                let by = call.exec.principal.as_ref().map(|p| p.name.clone()).unwrap_or_else(|| "local user".into());
                call.note("approval", json!({"decision": what, "rule": rule, "by": by, "atMs": at}));
            };
            match &asked {
                None => decided("remembered"),
                Some(Ok(Ok(Decision::Approve { remember }))) => {
                    decided(if *remember { "approved for the run" } else { "approved" })
                }
                Some(Ok(Ok(Decision::Decline))) => decided("declined"),
                Some(Ok(Ok(Decision::Cancel))) => decided("cancelled"),
                Some(Ok(Err(_))) => decided("unavailable"),
                Some(Err(_)) => decided("timeout"),
            }
            match asked {
                None | Some(Ok(Ok(Decision::Approve { remember: false }))) => {}
                Some(Ok(Ok(Decision::Approve { remember: true }))) => {
                    state.remembered.lock().unwrap_or_else(|e| e.into_inner()).insert(key);
                }
                Some(Ok(Ok(Decision::Decline))) => {
                    return Err(denied(&call, "declined", format!("{what} was not sent: the user declined it (rule {rule}). Do not retry it; go on without it or ask the user what to do instead.")))
                }
                Some(Ok(Ok(Decision::Cancel))) => {
                    return Err(denied(&call, "cancelled", format!("{what} was not sent: the user dismissed the approval question (rule {rule}). Do not retry it in this run.")))
                }
                Some(Ok(Err(AskError::Unavailable(why)))) => {
                    return Err(denied(&call, "unavailable", format!("{what} was not sent: it needs a person's approval (rule {rule}), and this client cannot be asked: {why}. Nothing was sent.")))
                }
                Some(Ok(Err(AskError::Failed(why)))) => {
                    return Err(denied(&call, "unavailable", format!("{what} was not sent: asking for approval (rule {rule}) failed: {why}. Nothing was sent.")))
                }
                Some(Err(_)) => {
                    return Err(denied(&call, "timeout", format!("{what} was not sent: no answer to the approval question within {secs} s (rule {rule}). Nothing was sent.")))
                }
            }
            next.run(call).await
        })
    }
}
