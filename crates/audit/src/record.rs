//! What is recorded: one row per `search`/`execute`, one per nested call.

use codemode_pipeline::HostError;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Which MCP tool ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tool {
    /// `search`: code against the specs, no nested calls.
    Search,
    /// `execute`: code with clients; its nested calls are recorded too.
    Execute,
}

impl Tool {
    /// `search` or `execute`, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Tool::Search => "search",
            Tool::Execute => "execute",
        }
    }

    /// The tool named `s` (`search`, `execute`).
    pub fn parse(s: &str) -> Option<Tool> {
        match s {
            "search" => Some(Tool::Search),
            "execute" => Some(Tool::Execute),
            _ => None,
        }
    }
}

/// The outcome string of a successful run.
pub const OK: &str = "ok";

/// One `search` or `execute`, as the server hands it to the store (the
/// store adds the id and the code's SHA-256, and scrubs secrets).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionRecord {
    /// When it started, Unix milliseconds.
    pub time_ms: i64,
    /// Who ran it: the principal's name; `None` for the local user (stdio,
    /// CLI).
    pub principal: Option<String>,
    /// The MCP session (`Mcp-Session-Id` over HTTP), if any.
    pub session_id: Option<String>,
    /// The client's `clientInfo.name` from `initialize`.
    pub client_name: Option<String>,
    /// The client's `clientInfo.version`.
    pub client_version: Option<String>,
    /// `search` or `execute`.
    pub tool: Tool,
    /// The model's code, in full (secrets scrubbed before it is stored).
    pub code: String,
    /// [`OK`], or the kind of error as the server classifies it (for
    /// example `exception`, `timeout`, `memory`, `syntax`, `cancelled`,
    /// `host`). Anything but `ok` counts as an error for `--status error`.
    pub outcome: String,
    /// The error's name (`TypeError`, `PolicyError`, …) when it failed.
    pub error_name: Option<String>,
    /// The error's message, shortened to [`MAX_MESSAGE`] characters.
    pub error_message: Option<String>,
    /// Wall time of the whole run, milliseconds.
    pub duration_ms: f64,
    /// Size of the result the client received, in tokens.
    pub result_tokens: Option<u64>,
    /// The result was shortened to fit the token cap.
    pub shortened: bool,
    /// It ran with writes planned instead of sent.
    pub dry_run: bool,
    /// Which replica recorded it (`[audit] host`, by default the machine's
    /// host name); the store fills it in when it is `None`.
    #[serde(default)]
    pub host: Option<String>,
}

/// Error messages are kept to this many characters.
pub const MAX_MESSAGE: usize = 2000;

/// Paths and other call fields are kept to this many characters.
pub const MAX_FIELD: usize = 4000;

impl ExecutionRecord {
    /// A successful run of `tool` with `code`, starting now, for the local
    /// user; fill in the rest.
    pub fn new(tool: Tool, code: impl Into<String>) -> Self {
        ExecutionRecord {
            time_ms: crate::time::now_ms(),
            principal: None,
            session_id: None,
            client_name: None,
            client_version: None,
            tool,
            code: code.into(),
            outcome: OK.into(),
            error_name: None,
            error_message: None,
            duration_ms: 0.0,
            result_tokens: None,
            shortened: false,
            dry_run: false,
            host: None,
        }
    }

    /// Marks it failed: `kind` as the outcome, with the error's name and
    /// message.
    pub fn failed(mut self, kind: impl Into<String>, name: impl Into<String>, message: impl Into<String>) -> Self {
        self.outcome = kind.into();
        self.error_name = Some(name.into());
        self.error_message = Some(message.into());
        self
    }

    /// True when the outcome is [`OK`].
    pub fn is_ok(&self) -> bool {
        self.outcome == OK
    }
}

/// An execution as stored: its id, the SHA-256 of its stored code and how
/// many calls it made, with everything it was recorded with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredExecution {
    /// The store's id: increasing in the order executions were committed.
    pub id: i64,
    /// Hex SHA-256 of the code as stored (after scrubbing, so the hash
    /// cannot be used to test guesses of a scrubbed secret).
    pub code_sha256: String,
    /// Number of nested calls recorded with it.
    pub call_count: u32,
    /// The recorded fields.
    #[serde(flatten)]
    pub record: ExecutionRecord,
}

/// What a nested call went to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CallKind {
    /// `<api>.request(...)` to an OpenAPI API.
    Api,
    /// `codemode.<server>_<tool>(...)` on an upstream MCP server.
    Tool,
}

impl CallKind {
    /// `api` or `tool`, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            CallKind::Api => "api",
            CallKind::Tool => "tool",
        }
    }

    /// The kind named `s`.
    pub fn parse(s: &str) -> Option<CallKind> {
        match s {
            "api" => Some(CallKind::Api),
            "tool" => Some(CallKind::Tool),
            _ => None,
        }
    }
}

/// One nested call of an `execute`, as the [`AuditLayer`](crate::AuditLayer)
/// saw it pass the pipeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallRecord {
    /// Its place among the execution's calls, from 1, in the order the code
    /// made them.
    pub seq: u32,
    /// When it was made, Unix milliseconds.
    pub at_ms: i64,
    /// API request or MCP tool.
    pub kind: CallKind,
    /// The API's or MCP server's configured name.
    pub target: String,
    /// The HTTP method (API calls).
    pub method: Option<String>,
    /// The concrete path, already encoded (API calls), or the tool's name
    /// in the code (`fs_read_file`).
    pub path: String,
    /// The spec's path template it matched (`/books/{id}`).
    pub template: Option<String>,
    /// The HTTP status of the reply or of the error, if there was one.
    pub status: Option<u16>,
    /// The code got a value (not an error).
    pub ok: bool,
    /// The error's name when it did not (`PolicyError`, `UpstreamError`,
    /// `Cancelled` when the execution ended while the call was in flight).
    pub error_name: Option<String>,
    /// Time in the pipeline and on the wire, milliseconds (including any
    /// wait for a person's approval).
    pub duration_ms: f64,
    /// Size of what was sent: the request body or the tool's arguments, as
    /// JSON (or raw text), in bytes.
    pub bytes_out: u64,
    /// Size of the reply (or error) as JSON, in bytes.
    pub bytes_in: u64,
    /// What let it through (the `allowedBy` note of the rule layer):
    /// `allow "GET /**" (api books)`, `allow_writes (api books)`, ….
    pub allowed_by: Option<String>,
    /// The approval note: `{"decision", "rule", "by", "atMs"}`.
    pub approval: Option<Value>,
    /// Why it was refused, when a layer refused it: `{"error", "rule",
    /// "reason", "detector"}` from the [`HostError`] and its
    /// `rule`/`reason`/`detector` fields (DLP refusals name rule and
    /// detector, never the data).
    pub refused: Option<Value>,
    /// Planned by the dry-run layer instead of sent.
    pub dry_run: bool,
}

/// Error names that mean a layer refused the call (as opposed to the
/// upstream failing it).
pub const REFUSALS: [&str; 4] = ["ScopeError", "PolicyError", "ApprovalDenied", "DlpError"];

impl CallRecord {
    /// A record for a call that never reached the pipeline (the server
    /// refused it while parsing, e.g. a tool hidden by policy): `seq` is
    /// assigned by [`AuditLog::push`](crate::AuditLog::push).
    pub fn refused_early(
        kind: CallKind,
        target: impl Into<String>,
        method: Option<String>,
        path: impl Into<String>,
        error: &HostError,
    ) -> Self {
        let mut r = CallRecord {
            seq: 0,
            at_ms: crate::time::now_ms(),
            kind,
            target: target.into(),
            method,
            path: path.into(),
            template: None,
            status: None,
            ok: true,
            error_name: None,
            duration_ms: 0.0,
            bytes_out: 0,
            bytes_in: 0,
            allowed_by: None,
            approval: None,
            refused: None,
            dry_run: false,
        };
        r.set_error(error);
        r
    }

    /// Fills `ok`, `status`, `error_name` and `refused` from an error.
    pub(crate) fn set_error(&mut self, e: &HostError) {
        self.ok = false;
        self.error_name = Some(e.name.clone());
        self.status = e.fields.get("status").and_then(Value::as_u64).and_then(|s| u16::try_from(s).ok());
        self.bytes_in = crate::layer::json_len(&e.to_json());
        let (rule, reason) = (e.fields.get("rule"), e.fields.get("reason"));
        if rule.is_some() || reason.is_some() || REFUSALS.contains(&e.name.as_str()) {
            let mut r = json!({"error": e.name});
            if let Some(rule) = rule {
                r["rule"] = rule.clone();
            }
            if let Some(reason) = reason {
                r["reason"] = reason.clone();
            }
            if let Some(detector) = e.fields.get("detector") {
                r["detector"] = detector.clone();
            }
            self.refused = Some(r);
        }
    }
}

/// One line of `codemode audit`: an execution without its code beyond the
/// first line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionSummary {
    /// The store's id.
    pub id: i64,
    /// When it started, Unix milliseconds.
    pub time_ms: i64,
    /// Who ran it (`None`: the local user).
    pub principal: Option<String>,
    /// `search` or `execute`.
    pub tool: Tool,
    /// `ok` or the error kind.
    pub outcome: String,
    /// The error's name, when it failed.
    pub error_name: Option<String>,
    /// Wall time, milliseconds.
    pub duration_ms: f64,
    /// Number of nested calls.
    pub calls: u32,
    /// Ran as a dry run.
    pub dry_run: bool,
    /// The first non-empty line of the code (at most 120 characters).
    pub code_line: String,
    /// Which replica recorded it.
    #[serde(default)]
    pub host: Option<String>,
}

/// The first non-empty line of `code`, trimmed, at most `max` characters
/// (with `…` when cut or when more lines follow).
pub fn first_line(code: &str, max: usize) -> String {
    let mut lines = code.lines().map(str::trim).filter(|l| !l.is_empty());
    let line = lines.next().unwrap_or("");
    let more = lines.next().is_some();
    let mut out: String = line.chars().take(max).collect();
    if out.len() < line.len() || more {
        out.push('…');
    }
    out
}

/// `s` cut to `max` characters (with `…` when cut).
pub(crate) fn shorten(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}
