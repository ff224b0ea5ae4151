//! The typed call: what one nested call of the code asks for, parsed once.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use codemode_upstream::ApiRequest;
use serde_json::{json, Value};

use crate::approval::Approver;
use crate::Principal;

/// Whether a call only reads or may change something.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// GET or HEAD; a GraphQL query; an MCP tool annotated `readOnlyHint: true`.
    Read,
    /// Anything else.
    Write,
}

impl Access {
    /// The access of a GraphQL operation: only queries read.
    pub fn of_graphql(kind: codemode_graphql::OperationKind) -> Access {
        if kind == codemode_graphql::OperationKind::Query {
            Access::Read
        } else {
            Access::Write
        }
    }

    /// The access of an HTTP method: only GET and HEAD read.
    pub fn of_method(method: &str) -> Access {
        if matches!(method, "GET" | "HEAD") {
            Access::Read
        } else {
            Access::Write
        }
    }
}

/// A request to an OpenAPI API.
#[derive(Clone, Debug)]
pub struct HttpOp {
    /// The API's name (its global in the code).
    pub api: String,
    /// The checked request: method, concrete path, query, headers, body.
    pub request: ApiRequest,
    /// The spec's path template of the operation the request matches.
    pub template: Option<String>,
    /// That operation's `operationId`.
    pub operation_id: Option<String>,
    /// That operation's tags.
    pub tags: Vec<String>,
}

/// A call of an upstream MCP server's tool.
#[derive(Clone, Debug)]
pub struct ToolOp {
    /// The server's configured name.
    pub server: String,
    /// The tool's name as the server knows it.
    pub tool: String,
    /// Its name in the code: `codemode.<name>`.
    pub name: String,
    /// The arguments object.
    pub arguments: Value,
}

/// A GraphQL operation for a GraphQL API, checked against its schema.
#[derive(Clone, Debug)]
pub struct GraphqlOp {
    /// The API's name (its global in the code).
    pub api: String,
    /// The POST that carries it: the endpoint's path and the JSON body
    /// `{query, variables, operationName}` (what DLP, dry runs and approvals
    /// show).
    pub request: ApiRequest,
    /// The checked document: kind (a mutation is a write), operation name,
    /// root fields.
    pub checked: Arc<codemode_graphql::Checked>,
    /// The code asked for `{data, errors}` even when `errors` is set
    /// (`{partial: true}`), instead of a rejection.
    pub partial: bool,
}

impl GraphqlOp {
    /// `mutation.addComment`, one per root field: what rules name.
    pub fn coordinates(&self) -> Vec<String> {
        self.checked.coordinates()
    }
}

/// What a call does.
#[derive(Clone, Debug)]
pub enum Operation {
    /// `<api>.request(...)`.
    Http(HttpOp),
    /// `codemode.<server>_<tool>(...)`.
    Tool(ToolOp),
    /// `<api>.graphql(query, variables?, options?)`.
    Graphql(GraphqlOp),
}

/// One nested call, as every layer sees it.
#[derive(Clone, Debug)]
pub struct Call {
    /// What it does.
    pub op: Operation,
    /// Read or write.
    pub access: Access,
    /// The `execute` it belongs to.
    pub exec: Arc<Execution>,
    /// Set by the rule layer when a rule says to ask the user first: that
    /// rule, described.
    pub needs_approval: Option<String>,
    /// What layers noted about this call for the record (`allowedBy`,
    /// `approval`, `dryRun`…), shared by every copy of the call.
    pub notes: Arc<Mutex<serde_json::Map<String, Value>>>,
}

impl Call {
    /// A call of `op` within `exec`.
    pub fn new(op: Operation, access: Access, exec: Arc<Execution>) -> Self {
        Call { op, access, exec, needs_approval: None, notes: Arc::default() }
    }

    /// Notes `key` for the record (the audit layer reads the notes after
    /// the call).
    pub fn note(&self, key: &str, value: impl Into<Value>) {
        self.notes.lock().unwrap_or_else(|e| e.into_inner()).insert(key.into(), value.into());
    }

    /// Everything noted so far.
    pub fn notes(&self) -> serde_json::Map<String, Value> {
        self.notes.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The API or MCP server it goes to.
    pub fn target(&self) -> &str {
        match &self.op {
            Operation::Http(h) => &h.api,
            Operation::Tool(t) => &t.server,
            Operation::Graphql(g) => &g.api,
        }
    }

    /// In words: `bookshelf POST /books` or `codemode.fs_write_file`.
    pub fn describe(&self) -> String {
        match &self.op {
            Operation::Http(h) => format!("{} {} {}", h.api, h.request.method, h.request.path),
            Operation::Tool(t) => format!("codemode.{}", t.name),
            Operation::Graphql(g) => format!("{} {}", g.api, g.coordinates().join(", ")),
        }
    }

    /// What identifies "the same operation" (for approvals remembered for
    /// the rest of an execution): API, method and path template, or the
    /// tool. The concrete path stands in when the spec has no matching
    /// operation, and when the path holds an encoded separator (`%2F`,
    /// `%5C`): servers disagree on which operation that is.
    pub fn operation_key(&self) -> String {
        match &self.op {
            Operation::Http(h) => {
                let lower = h.request.path.to_ascii_lowercase();
                let ambiguous = lower.contains("%2f") || lower.contains("%5c") || lower.contains("%25");
                let path = match &h.template {
                    Some(t) if !ambiguous => t.as_str(),
                    _ => h.request.path.as_str(),
                };
                format!("{} {} {}", h.api, h.request.method, path)
            }
            Operation::Tool(t) => format!("tool {}", t.name),
            // The same root fields of the same kind: "the same operation"
            // whatever else is selected.
            Operation::Graphql(g) => format!("{} graphql {}", g.api, g.coordinates().join(",")),
        }
    }

    /// Fields that place an error: `api`, `method`, `path`; `server`, `tool`;
    /// or `api`, `operation`, `fields`.
    pub fn context(&self) -> serde_json::Map<String, Value> {
        let v = match &self.op {
            Operation::Http(h) => json!({"api": h.api, "method": h.request.method, "path": h.request.path}),
            Operation::Tool(t) => json!({"server": t.server, "tool": t.name}),
            Operation::Graphql(g) => {
                json!({"api": g.api, "operation": g.checked.kind.as_str(), "fields": g.coordinates()})
            }
        };
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }
}

/// One `execute`: who runs it and how, shared by all of its calls. Layers
/// keep their per-execution state here ([`Execution::state`]).
pub struct Execution {
    /// Who the code runs for; `None` is the local user (stdio, CLI).
    pub principal: Option<Principal>,
    /// Who can approve calls, when the client can be asked.
    pub approver: Option<Arc<dyn Approver>>,
    /// Writes are planned, not sent (`--dry-run`).
    pub dry_run: bool,
    /// Pauses the execution's time limit while a human is being asked.
    pub pause: Option<Arc<dyn Fn() -> Box<dyn Send> + Send + Sync>>,
    /// Who the code runs for, unfiltered (principal name and MCP session):
    /// the key of rehearsal mode's state.
    pub caller: codemode_upstream::Caller,
    state: Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
}

impl std::fmt::Debug for Execution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Execution")
            .field("principal", &self.principal)
            .field("approver", &self.approver.is_some())
            .field("dry_run", &self.dry_run)
            .finish()
    }
}

impl Execution {
    /// An execution for `principal`.
    pub fn new(principal: Option<Principal>) -> Self {
        Execution {
            principal,
            approver: None,
            dry_run: false,
            pause: None,
            caller: codemode_upstream::Caller::default(),
            state: Mutex::new(HashMap::new()),
        }
    }

    /// With the caller rehearsal state is kept for.
    pub fn with_caller(mut self, caller: codemode_upstream::Caller) -> Self {
        self.caller = caller;
        self
    }

    /// With an approver.
    pub fn with_approver(mut self, approver: Option<Arc<dyn Approver>>) -> Self {
        self.approver = approver;
        self
    }

    /// With writes planned instead of sent.
    pub fn with_dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    /// With a hook that pauses the time limit (the guard it returns holds
    /// the pause).
    pub fn with_pause(mut self, pause: Arc<dyn Fn() -> Box<dyn Send> + Send + Sync>) -> Self {
        self.pause = Some(pause);
        self
    }

    /// The state a layer keeps for this execution, created on first use.
    /// Each layer uses its own type, so layers cannot see each other's.
    pub fn state<T: Default + Send + Sync + 'static>(&self) -> Arc<T> {
        let mut map = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let entry = map.entry(TypeId::of::<T>()).or_insert_with(|| Arc::new(T::default()));
        entry.clone().downcast::<T>().expect("state is keyed by its type")
    }
}
