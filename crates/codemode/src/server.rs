//! The MCP server: two tools over rmcp, backed by [`Service`].

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use tracing::Instrument;

use rmcp::model::{
    CacheScope, CallToolRequestParams, CallToolResponse, CallToolResult, CancelTaskParams, ContentBlock,
    CreateTaskResult, GetTaskParams, GetTaskResult, Implementation, ListToolsResult, PaginatedRequestParams,
    ProgressNotificationParam, ProgressToken, ProtocolVersion, ServerCapabilities, ServerConfig, Tool, ToolAnnotations,
    UpdateTaskParams,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};

use codemode_http::{principal_of, Principal};
use codemode_pipeline::Approver;

use crate::detached::{Detached, Step};
use crate::host::{Progress, ProgressFn};
use crate::operations::{Mode, OperationTools};
use crate::render::{self, Rendered};
use crate::rounds::{Resumed, Rounds};
use crate::service::Service;
use crate::tasks::{RunningSlot, TaskHandle, Tasks};
use crate::tools::{self, ToolDef, ToolKind};

/// Longest `code` we accept.
const MAX_CODE_BYTES: usize = 256 * 1024;

/// The protocol revisions codemode speaks, oldest first: the four with an
/// `initialize` handshake and 2026-07-28 (`server/discover`, no sessions).
/// Named here rather than taken from rmcp, so that a newer rmcp does not
/// offer a revision nobody tested.
const PROTOCOL_VERSIONS: [ProtocolVersion; 5] = [
    ProtocolVersion::V_2024_11_05,
    ProtocolVersion::V_2025_03_26,
    ProtocolVersion::V_2025_06_18,
    ProtocolVersion::V_2025_11_25,
    ProtocolVersion::V_2026_07_28,
];

/// How long a client may keep `tools/list` (`ttlMs`, 2026-07-28). The list
/// is fixed for the life of the process: it changes only with the config
/// (a restart), never with what upstream servers list (their tools are
/// reached through `execute`, not listed). Ten minutes bounds how long a
/// client keeps the descriptions of a config that was replaced.
const TOOLS_TTL_MS: u64 = 600_000;

/// Results up to this long have their tokens counted before the record is
/// written (a few microseconds); longer ones are counted after the answer.
const COUNT_NOW_BYTES: usize = 256;

/// The MCP handler.
#[derive(Clone)]
pub struct CodemodeServer {
    service: Arc<Service>,
    tools: Arc<Vec<Tool>>,
    /// What `initialize` and `server/discover` say. rmcp asks for it on
    /// every request it checks against the declared capabilities, so it is
    /// built once.
    info: Arc<ServerConfig>,
    /// Executes running as tasks (`None`: `[tasks] enabled = false`).
    tasks: Option<Arc<Tasks>>,
    /// Executes parked on an approval question between `input_required`
    /// rounds (2026-07-28).
    rounds: Arc<Rounds>,
    /// The API tools of per-operation mode, built when a client first asks
    /// (a 2,500-operation list costs start-up nothing).
    operations: Arc<std::sync::OnceLock<OperationTools>>,
}

/// Parked executes one principal may have waiting for an approval answer.
const MAX_PARKED_PER_PRINCIPAL: usize = 4;

impl CodemodeServer {
    /// Wraps a started service.
    pub fn new(service: Arc<Service>) -> Self {
        let servers = service.portal.as_ref().map(|p| p.server_names()).unwrap_or_default();
        let defs = tools::tool_defs(
            &service.apis,
            &servers,
            service.max_output_tokens,
            service.limits.max_host_calls,
            &service.tool_names,
        );
        let tools = defs.iter().map(to_rmcp_tool).collect();
        let info = Arc::new(server_info(&service));
        let tasks = service.tasks.clone().map(|settings| Arc::new(Tasks::new(settings)));
        // A parked run is kept a little past its question's own timeout:
        // by then the execution has gone on without the answer.
        let keep = service.approval_timeout + std::time::Duration::from_secs(10);
        let rounds = Arc::new(Rounds::new(keep, MAX_PARKED_PER_PRINCIPAL));
        CodemodeServer { service, tools: Arc::new(tools), info, tasks, rounds, operations: Default::default() }
    }

    /// A server over `service` (a reloaded config) that keeps this one's
    /// tasks and parked approval rounds: they belong to the clients that
    /// started them, and a reload must not lose them. (A `[tasks]` section
    /// turned off or on takes the new setting.)
    pub fn reloaded(&self, service: Arc<Service>) -> Self {
        let mut next = CodemodeServer::new(service);
        if next.tasks.is_some() && self.tasks.is_some() {
            next.tasks = self.tasks.clone();
        }
        next.rounds = self.rounds.clone();
        next
    }

    /// The service behind the tools.
    pub fn service(&self) -> &Service {
        &self.service
    }

    /// A shared handle on the service (it outlives the MCP session).
    pub fn service_handle(&self) -> Arc<Service> {
        self.service.clone()
    }

    /// The tools, as `tools/list` returns them.
    pub fn tools(&self) -> &[Tool] {
        &self.tools
    }

    /// Runs one tool call and renders its result (shared by the MCP handler
    /// and the `search`/`exec` commands). `progress` receives the steps of
    /// an `execute` (see [`crate::host::ProgressFn`]).
    pub async fn call(
        &self,
        tool: ToolKind,
        code: String,
        principal: Option<&Principal>,
        approver: Option<Arc<dyn Approver>>,
        progress: Option<ProgressFn>,
        client: ClientMeta,
    ) -> Rendered {
        // The SERVER span of this tool call, a child of the caller's trace
        // context; with telemetry off, only that context, passed through.
        let traced = self.service.telemetry.tool_call(codemode_telemetry::ToolCallInfo {
            tool: tool.as_str(),
            session_id: client.session_id.as_deref(),
            protocol_version: client.protocol_version.as_deref(),
            request_id: client.request_id.as_deref(),
            transport: client.transport,
            incoming: &client.trace,
        });
        // Every log line of this call (upstream requests, tool calls,
        // refusals) carries who made it, and the trace it belongs to.
        let who = principal.map(|p| p.name.clone()).unwrap_or_else(|| "local".into());
        let span =
            tracing::info_span!("call", tool = tool.as_str(), principal = %who, trace_id = tracing::field::Empty);
        if let Some(id) = traced.trace_id() {
            span.record("trace_id", id.as_str());
        }
        let (rendered, error) =
            traced.wrap(self.call_in_span(tool, code, principal, approver, progress, client).instrument(span)).await;
        traced.finish(error.as_deref());
        rendered
    }

    async fn call_in_span(
        &self,
        tool: ToolKind,
        code: String,
        principal: Option<&Principal>,
        approver: Option<Arc<dyn Approver>>,
        progress: Option<ProgressFn>,
        client: ClientMeta,
    ) -> (Rendered, Option<String>) {
        let started = Instant::now();
        let audit_tool = match tool {
            ToolKind::Search => codemode_audit::Tool::Search,
            ToolKind::Execute => codemode_audit::Tool::Execute,
        };
        let mut record =
            self.service.audit.as_ref().map(|_| codemode_audit::ExecutionRecord::new(audit_tool, code.clone()));
        let who = principal.map(|p| p.name.clone());
        // Scopes narrow what the config allows (HTTP transport with auth).
        // Groups select group rules even without scopes.
        // And an API whose credential is chosen per principal (pass-through,
        // `auth_for`) needs to know who it is, scopes or not.
        let principal = principal.filter(|p| {
            p.scopes.is_some() || !p.groups.is_empty() || !p.presented.is_empty() || self.service.per_principal
        });
        let (outcome, plan, calls) = match tool {
            ToolKind::Search => match self.service.visible_specs(principal) {
                Ok(visible) => (self.service.search(code, visible, principal).await, vec![], vec![]),
                Err(message) => {
                    let rendered = scope_error(message.clone());
                    if let Some(r) = record.take() {
                        let r = r.failed("scope", "ScopeError", message);
                        self.commit(r, vec![], who, client, started).await;
                    }
                    return (rendered, Some("ScopeError".into()));
                }
            },
            ToolKind::Execute => {
                let caller = codemode_upstream::Caller { principal: who.clone(), session: client.session_id.clone() };
                let done = self.service.execute(code, principal.cloned(), caller, approver, progress).await;
                (done.outcome, done.plan, done.calls)
            }
        };
        let mut rendered = render::render(
            &outcome,
            render::Caps {
                max_tokens: self.service.max_output_tokens,
                console_kib: self.service.limits.console_bytes / 1024,
                binary_bytes: self.service.binary_bytes,
            },
        );
        if self.service.dry_run || !plan.is_empty() {
            rendered.plan = Some(render::plan(&plan));
        }
        tracing::info!(
            tool = tool.as_str(),
            ok = outcome.result.is_ok(),
            error = outcome.result.as_ref().err().map(|e| e.kind.as_str()).unwrap_or(""),
            requests = outcome.host_calls,
            planned_writes = plan.len(),
            elapsed_ms = crate::host::round_ms(started.elapsed()),
            "tool call"
        );
        if let Some(mut r) = record {
            if let Err(e) = &outcome.result {
                r = r.failed(e.kind.as_str(), e.name.clone(), e.message.clone());
            }
            r.shortened = rendered.note.is_some();
            r.dry_run = self.service.dry_run || !plan.is_empty();
            // Counting tokens costs ~0.1 ms of CPU per kB: a short result is
            // counted now, a longer one by the store's writer when it is idle
            // (the record gets its count a moment later).
            let count_later = rendered.text.len() > COUNT_NOW_BYTES;
            if !count_later {
                r.result_tokens = Some(render::count_tokens(&rendered.text) as u64);
            }
            // Written before the result is returned: a call the client saw
            // is in the store even if the process dies right after.
            let id = self.commit(r, calls, who, client, started).await;
            if let (Some(id), Some(store)) = (id.filter(|_| count_later), &self.service.audit) {
                let text = rendered.text.clone();
                store.set_result_tokens_with(id, Box::new(move || render::count_tokens(&text) as u64));
            }
        }
        (rendered, outcome.result.as_ref().err().map(error_type))
    }

    async fn commit(
        &self,
        mut r: codemode_audit::ExecutionRecord,
        calls: Vec<codemode_audit::CallRecord>,
        principal: Option<String>,
        client: ClientMeta,
        started: Instant,
    ) -> Option<i64> {
        let store = self.service.audit.as_ref()?;
        r.principal = principal;
        r.session_id = client.session_id;
        r.client_name = client.name;
        r.client_version = client.version;
        r.duration_ms = crate::host::round_ms(started.elapsed());
        match store.record(r, calls).await {
            Ok(id) => Some(id),
            Err(e) => {
                // Availability over completeness: the call is answered, the
                // failure is loud.
                tracing::error!(error = %e, "audit: the record of this call could not be written");
                None
            }
        }
    }
}

/// `error.type` of a failed tool call: the JS error's name when the code
/// died of a host error it did not catch (`PolicyError`, `UpstreamError`…),
/// else the kind (`timeout`, `syntax`, `out_of_memory`…). Names the code
/// made up itself stay out (cardinality): they are `runtime`.
fn error_type(e: &codemode_sandbox::ScriptError) -> String {
    const HOST_ERRORS: [&str; 10] = [
        "PolicyError",
        "ScopeError",
        "DlpError",
        "ApprovalDenied",
        "UpstreamError",
        "ToolError",
        "TimeoutError",
        "InvalidArguments",
        "UpstreamUnavailable",
        "ResultTooLarge",
    ];
    match e.kind {
        codemode_sandbox::ErrorKind::Runtime if HOST_ERRORS.contains(&e.name.as_str()) => e.name.clone(),
        kind => kind.as_str().to_string(),
    }
}

/// Who is on the other end of a tool call, for the audit record and the
/// tool call's span.
#[derive(Clone, Debug, Default)]
pub struct ClientMeta {
    /// The client's `clientInfo.name`.
    pub name: Option<String>,
    /// Its `clientInfo.version`.
    pub version: Option<String>,
    /// The MCP session (`Mcp-Session-Id` over HTTP).
    pub session_id: Option<String>,
    /// The negotiated MCP protocol version.
    pub protocol_version: Option<String>,
    /// The JSON-RPC id of the `tools/call` request.
    pub request_id: Option<String>,
    /// stdio or HTTP.
    pub transport: codemode_telemetry::Transport,
    /// The caller's W3C trace context: `params._meta` first (SEP-414),
    /// else the HTTP request's `traceparent` header.
    pub trace: codemode_telemetry::Incoming,
}

impl ClientMeta {
    /// From a request's context.
    fn of(context: &RequestContext<RoleServer>) -> Self {
        let info = context.peer.peer_info();
        let parts = context.extensions.get::<http::request::Parts>();
        let header =
            |name: &str| parts.and_then(|p| p.headers.get(name)).and_then(|v| v.to_str().ok()).map(str::to_string);
        let trace = codemode_telemetry::Incoming::from_meta(&context.meta.0 .0)
            .or(codemode_telemetry::Incoming::from_headers(header));
        ClientMeta {
            name: info.as_ref().map(|i| i.client_info.name.clone()),
            version: info.as_ref().map(|i| i.client_info.version.clone()),
            session_id: header("mcp-session-id"),
            protocol_version: context.protocol_version().map(|v| v.to_string()),
            request_id: Some(context.id.to_string()),
            transport: if parts.is_some() {
                codemode_telemetry::Transport::Tcp
            } else {
                codemode_telemetry::Transport::Pipe
            },
            trace,
        }
    }
}

/// Sends an execution's steps as `notifications/progress`, in order.
/// `progress` counts the steps (it must grow with each); when the code gave
/// a fraction, `total` is set so that `progress / total` is that fraction.
async fn forward_progress(
    peer: rmcp::Peer<RoleServer>,
    token: ProgressToken,
    mut steps: tokio::sync::mpsc::UnboundedReceiver<Progress>,
) {
    let mut step = 0u32;
    while let Some(p) = steps.recv().await {
        step += 1;
        let progress = f64::from(step);
        let mut param = ProgressNotificationParam::new(token.clone(), progress).with_message(p.message);
        if let Some(fraction) = p.fraction.filter(|f| *f > 0.0) {
            param = param.with_total(progress / fraction);
        }
        if let Err(e) = peer.notify_progress(param).await {
            tracing::debug!("progress notification not sent: {e}");
            return;
        }
    }
}

fn scope_error(message: String) -> Rendered {
    Rendered {
        is_error: true,
        text: format!("ScopeError: {message}"),
        note: None,
        console: None,
        plan: None,
        media: vec![],
    }
}

fn to_rmcp_tool(d: &ToolDef) -> Tool {
    Tool::new(d.name.clone(), d.description.clone(), d.input_schema.clone()).with_title(d.title).with_annotations(
        ToolAnnotations::new()
            .read_only(d.read_only)
            .destructive(d.destructive)
            .idempotent(d.idempotent)
            .open_world(d.open_world),
    )
}

/// A rendered call as an MCP tool result.
pub(crate) fn to_result(r: Rendered) -> CallToolResult {
    let mut content = vec![ContentBlock::text(r.text)];
    // Right after the text that names them ("[image 1: image/png, …]").
    for m in r.media {
        content.push(match m.kind {
            crate::media::Kind::Image => ContentBlock::image(m.data, m.mime_type),
            crate::media::Kind::Audio => ContentBlock::audio(m.data, m.mime_type),
        });
    }
    if let Some(note) = r.note {
        content.push(ContentBlock::text(note));
    }
    if let Some(console) = r.console {
        content.push(ContentBlock::text(console));
    }
    if let Some(plan) = r.plan {
        content.push(ContentBlock::text(plan));
    }
    if r.is_error {
        CallToolResult::error(content)
    } else {
        CallToolResult::success(content)
    }
}

fn tool_error(message: String) -> CallToolResponse {
    CallToolResult::error(vec![ContentBlock::text(message)]).into()
}

/// Capabilities, implementation and instructions, as `initialize` and
/// `server/discover` give them. Exactly what is served: `tools` (without
/// `listChanged`: the list never changes while the process runs), and the
/// tasks extension unless `[tasks] enabled = false`. Not
/// `logging`: `console` output belongs to the model and comes back in the
/// tool result, where the model reads it; server warnings are for the
/// operator (stderr, OpenTelemetry), not for whoever holds the client; and
/// 2026-07-28 deprecates the capability. Every method of a capability not
/// declared (`prompts/list`, `resources/list`, `completion/complete`,
/// `logging/setLevel`) is answered -32601, rmcp's default since 3.11.
fn server_info(service: &Service) -> ServerConfig {
    let mut names: Vec<&str> = service.apis.iter().map(|a| a.name.as_str()).collect();
    let servers = service.portal.as_ref().map(|p| p.server_names()).unwrap_or_default();
    names.extend(servers.iter().map(String::as_str));
    let instructions = match service.code_mode {
        crate::operations::CodeMode::Off => {
            format!("Gives access to {}: one tool per API operation and per upstream MCP tool.", names.join(", "))
        }
        _ => service.tool_names.apply(&format!(
            "Gives access to {} through two tools: use `search` to find operations and tools by writing JavaScript (or TypeScript) against the spec, then `execute` to call them, in JavaScript too.",
            names.join(", ")
        )),
    };
    let capabilities = if service.tasks.is_some() {
        ServerCapabilities::builder().enable_tools().enable_tasks().build()
    } else {
        ServerCapabilities::builder().enable_tools().build()
    };
    ServerConfig::new(capabilities)
        .with_server_info(Implementation::new("codemode", env!("CARGO_PKG_VERSION")).with_title("codemode"))
        .with_instructions(instructions)
}

impl ServerHandler for CodemodeServer {
    fn get_info(&self) -> ServerConfig {
        (*self.info).clone()
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Borrowed(&PROTOCOL_VERSIONS)
    }

    /// In code mode always the same tools in the same order (`search`,
    /// `execute`); per operation, the API operations in config and spec
    /// order, then the upstream MCP tools, [`crate::operations::PAGE`] per
    /// page. On 2026-07-28 with cache hints: [`TOOLS_TTL_MS`], and `public`
    /// — the list is the same for every principal (scopes narrow what the
    /// tools reach, never the list) — unless the caller authenticated (HTTP
    /// with `[auth]`): then `private`, so that no shared cache hands it to
    /// someone who did not.
    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let mut result = match self.mode(&context)? {
            Mode::Code => ListToolsResult::with_all_items((*self.tools).clone()),
            Mode::PerOperation => self.operation_page(request.and_then(|r| r.cursor).as_deref())?,
        };
        if is_modern(&context) {
            result.ttl_ms = Some(TOOLS_TTL_MS);
            let parts = context.extensions.get::<http::request::Parts>();
            let authenticated = parts.is_some_and(|p| p.headers.contains_key(http::header::AUTHORIZATION));
            result.cache_scope = Some(if authenticated { CacheScope::Private } else { CacheScope::Public });
        }
        Ok(result)
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.tools.iter().find(|t| t.name == name).or_else(|| self.operation_tools().tool(name)).cloned()
    }

    async fn call_tool(
        &self,
        mut request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let args = request.arguments.take().unwrap_or_default();
        let name = request.name.as_ref();
        let (tool, code) = match self.mode(&context)? {
            Mode::Code => {
                let names = &self.service.tool_names;
                let Some(kind) = names.kind_of(name) else {
                    return Err(McpError::invalid_params(
                        format!("unknown tool `{name}`; the tools are `{}` and `{}`", names.search, names.execute),
                        None,
                    ));
                };
                match code_argument(&args) {
                    Ok(code) => (kind, code),
                    Err(message) => return Ok(tool_error(message)),
                }
            }
            Mode::PerOperation => match self.operation_code(name, &args) {
                Some(Ok(code)) => (ToolKind::Execute, code),
                Some(Err(message)) => return Ok(tool_error(message)),
                None => {
                    return Err(McpError::invalid_params(
                        format!("unknown tool `{name}`; tools/list names every operation's tool"),
                        None,
                    ))
                }
            },
        };
        let modern = is_modern(&context);
        if tool == ToolKind::Execute {
            let owner = owner_of(&context);
            // The retry of an `input_required` round: the same run, resumed.
            if let Some(handle) = request.request_state.as_deref() {
                return match self.rounds.resume(&owner, &code, handle, request.input_responses.as_ref()) {
                    Ok(Resumed(run)) => self.drive(run, Detachment::rounds(owner, code), &context).await,
                    Err(message) => Ok(tool_error(message)),
                };
            }
            let as_task = self.tasks.is_some() && context.client_capabilities().is_some_and(|c| c.supports_tasks());
            let can_ask = crate::approve::can_ask(context.client_capabilities().as_ref());
            if as_task || (modern && self.service.approvals && can_ask) {
                return self.execute_detached(code, owner, as_task, can_ask, &context).await;
            }
        }
        // Approval questions go to the user of this call's session; on
        // 2026-07-28 this path is only taken by a client that cannot be asked.
        let approver: Option<Arc<dyn Approver>> = (tool == ToolKind::Execute && self.service.approvals).then(|| {
            if modern {
                Arc::new(crate::approve::CannotAsk(crate::approve::NO_ELICITATION)) as Arc<dyn Approver>
            } else {
                Arc::new(crate::approve::ElicitApprover::new(context.peer.clone())) as Arc<dyn Approver>
            }
        });
        // Progress notifications, when the client sent a progress token.
        let token = context.meta.get_progress_token().filter(|_| tool == ToolKind::Execute);
        let (progress, forwarder) = progress_relay(&context, token, None);
        // Cancellation: dropping the call future stops the JavaScript.
        let meta = ClientMeta::of(&context);
        let result = tokio::select! {
            r = self.call(tool, code, principal_of(&context.extensions), approver, progress, meta) => Ok(to_result(r).into()),
            _ = context.ct.cancelled() => {
                tracing::info!(tool = tool.as_str(), "tool call cancelled by the client");
                Ok(tool_error("cancelled".into()))
            }
        };
        flush_progress(forwarder).await;
        result
    }

    async fn get_task(
        &self,
        request: GetTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, McpError> {
        let tasks = self.tasks.as_ref().ok_or_else(no_tasks)?;
        Ok(GetTaskResult::new(tasks.get(&owner_of(&context), &request.task_id)?))
    }

    async fn update_task(
        &self,
        request: UpdateTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let tasks = self.tasks.as_ref().ok_or_else(no_tasks)?;
        tasks.update(&owner_of(&context), &request.task_id, request.input_responses)
    }

    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let tasks = self.tasks.as_ref().ok_or_else(no_tasks)?;
        tasks.cancel(&owner_of(&context), &request.task_id)
    }
}

/// The `code` argument of `search` and `execute`, or what is wrong with it.
fn code_argument(args: &serde_json::Map<String, serde_json::Value>) -> Result<String, String> {
    let code = match args.get("code") {
        Some(serde_json::Value::String(c)) => c.clone(),
        Some(_) => return Err("`code` must be a string of JavaScript".into()),
        None => return Err("missing argument `code`: pass {\"code\": \"async () => { ... }\"}".into()),
    };
    if code.trim().is_empty() {
        return Err("`code` is empty: pass an async arrow function such as `async () => { ... }`".into());
    }
    if code.len() > MAX_CODE_BYTES {
        return Err(format!("`code` is {} bytes; the limit is {MAX_CODE_BYTES}", code.len()));
    }
    Ok(code)
}

impl CodemodeServer {
    /// Code mode or one tool per operation, for this request: the admin's
    /// `[tools] code_mode` and the client's `codemode` query parameter.
    fn mode(&self, context: &RequestContext<RoleServer>) -> Result<Mode, McpError> {
        let query = context.extensions.get::<http::request::Parts>().and_then(|p| p.uri.query());
        let asked = crate::operations::asked(query).map_err(|m| McpError::invalid_params(m, None))?;
        Ok(self.service.code_mode.choose(asked))
    }

    fn operation_tools(&self) -> &OperationTools {
        self.operations.get_or_init(|| {
            let started = Instant::now();
            let built = OperationTools::build(&self.service.apis, crate::operations::Listing::Allowed);
            tracing::info!(
                tools = built.tools().len(),
                elapsed_ms = crate::host::round_ms(started.elapsed()),
                "per-operation tools built"
            );
            built
        })
    }

    /// One page of the per-operation tools: the APIs', then the upstream
    /// servers' (read now: they change as servers reconnect).
    fn operation_page(&self, cursor: Option<&str>) -> Result<ListToolsResult, McpError> {
        let apis = self.operation_tools().tools();
        let upstream: Vec<Tool> = match &self.service.portal {
            Some(portal) => portal.tools().iter().map(crate::operations::upstream_tool).collect(),
            None => vec![],
        };
        let total = apis.len() + upstream.len();
        let start = match cursor {
            None => 0,
            Some(c) => c.parse::<usize>().ok().filter(|&n| n <= total).ok_or_else(|| {
                McpError::invalid_params(
                    format!("`{c}` is not a cursor this server gave out; list from the start"),
                    None,
                )
            })?,
        };
        let end = (start + crate::operations::PAGE).min(total);
        let tools = apis.iter().chain(&upstream).skip(start).take(end - start).cloned();
        let mut page = ListToolsResult::with_all_items(tools.collect());
        page.next_cursor = (end < total).then(|| end.to_string());
        Ok(page)
    }

    /// The code a per-operation tool call runs (`None`: no such tool).
    fn operation_code(
        &self,
        name: &str,
        args: &serde_json::Map<String, serde_json::Value>,
    ) -> Option<Result<String, String>> {
        if let Some(code) = self.operation_tools().code_for(name, args) {
            return Some(code);
        }
        let portal = self.service.portal.as_ref()?;
        portal.tool(name).map(|t| Ok(crate::operations::tool_code(&t.name, args)))
    }
}

/// rmcp answers `tasks/*` -32601 itself when the extension is not declared;
/// this is for the impossible rest.
fn no_tasks() -> McpError {
    McpError::invalid_request("this server does not run tasks ([tasks] enabled = false)", None)
}

/// Whether the request speaks 2026-07-28 or newer (no server→client
/// requests mid-call; cache hints on lists).
fn is_modern(context: &RequestContext<RoleServer>) -> bool {
    context.protocol_version().is_some_and(|v| v.as_str() >= ProtocolVersion::V_2026_07_28.as_str())
}

/// Who a task or a parked run belongs to: the authenticated principal, or
/// `local` (stdio).
fn owner_of(context: &RequestContext<RoleServer>) -> String {
    principal_of(&context.extensions).map(|p| p.name.clone()).unwrap_or_else(|| "local".into())
}

/// Where the steps of an execution go: `notifications/progress` on the
/// request when the client sent a token (until the request is answered),
/// and the status message of the task it became, if it became one.
fn progress_relay(
    context: &RequestContext<RoleServer>,
    token: Option<ProgressToken>,
    task: Option<TaskHandle>,
) -> (Option<ProgressFn>, Option<tokio::task::JoinHandle<()>>) {
    let (tx, forwarder) = match token {
        Some(token) => {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Progress>();
            (Some(tx), Some(tokio::spawn(forward_progress(context.peer.clone(), token, rx))))
        }
        None => (None, None),
    };
    if tx.is_none() && task.is_none() {
        return (None, None);
    }
    let relay = move |p: Progress| {
        if let Some(task) = &task {
            task.status(&p.message);
        }
        if let Some(tx) = &tx {
            drop(tx.send(p));
        }
    };
    (Some(Arc::new(relay) as ProgressFn), forwarder)
}

/// The last steps go out before the result (a client drops progress that
/// arrives after it); the sender is gone with the execution.
async fn flush_progress(forwarder: Option<tokio::task::JoinHandle<()>>) {
    if let Some(mut task) = forwarder {
        if tokio::time::timeout(std::time::Duration::from_secs(1), &mut task).await.is_err() {
            task.abort();
        }
    }
}

/// How a detached execute is answered when it does not end in its request.
struct Detachment {
    owner: String,
    code: String,
    /// As a task: the running slot it holds, its status, and how long it
    /// may run in the request before it becomes one.
    task: Option<(RunningSlot, TaskHandle, std::time::Duration)>,
    forwarder: Option<tokio::task::JoinHandle<()>>,
}

impl Detachment {
    /// A resumed `input_required` round: questions park it again.
    fn rounds(owner: String, code: String) -> Self {
        Detachment { owner, code, task: None, forwarder: None }
    }
}

impl CodemodeServer {
    /// Starts an execute apart from this request (as a task, or ready to be
    /// parked on an approval question) and answers as soon as it can.
    async fn execute_detached(
        &self,
        code: String,
        owner: String,
        as_task: bool,
        can_ask: bool,
        context: &RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let task = match (&self.tasks, as_task) {
            (Some(tasks), true) => match tasks.admit(&owner) {
                Ok(slot) => {
                    let inline = std::time::Duration::from_millis(tasks.settings().inline_ms);
                    Some((slot, TaskHandle::default(), inline))
                }
                Err(message) => return Ok(tool_error(message)),
            },
            _ => None,
        };
        let (progress, forwarder) =
            progress_relay(context, context.meta.get_progress_token(), task.as_ref().map(|t| t.1.clone()));
        let server = self.clone();
        let principal = principal_of(&context.extensions).cloned();
        let meta = ClientMeta::of(context);
        let approvals = self.service.approvals;
        let source = code.clone();
        let run = Detached::start(move |approver| async move {
            let approver = approvals.then(|| {
                if can_ask {
                    approver
                } else {
                    Arc::new(crate::approve::CannotAsk(crate::approve::NO_ELICITATION)) as Arc<dyn Approver>
                }
            });
            server.call(ToolKind::Execute, source, principal.as_ref(), approver, progress, meta).await
        });
        self.drive(run, Detachment { owner, code, task, forwarder }, context).await
    }

    /// Runs `run` until it ends (the answer), asks (parked for an
    /// `input_required` round, or made a task), or outlives the inline
    /// window of a task.
    async fn drive(
        &self,
        mut run: Detached,
        how: Detachment,
        context: &RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let inline = how.task.as_ref().map(|t| t.2);
        let window = async move {
            match inline {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(window);
        let pending = tokio::select! {
            _ = context.ct.cancelled() => {
                tracing::info!("execute cancelled by the client");
                return Ok(tool_error("cancelled".into()));
            }
            _ = &mut window => None,
            step = run.next() => match step {
                Step::Done(rendered) => {
                    flush_progress(how.forwarder).await;
                    return Ok(to_result(rendered).into());
                }
                Step::Asks(question) => Some(question),
            },
        };
        // From here on the request is answered: its progress token is done.
        if let Some(f) = how.forwarder {
            f.abort();
        }
        match (how.task, &self.tasks) {
            (Some((slot, handle, _)), Some(tasks)) => {
                let task = tasks.spawn(&how.owner, slot, run, pending, handle);
                tracing::info!(task = %task.task_id, principal = %how.owner, "execute continues as a task");
                Ok(CallToolResponse::Task(CreateTaskResult::new(task)))
            }
            _ => {
                let question = pending.expect("without a task, only a question stops the drive");
                match self.rounds.park(&how.owner, how.code, run, question) {
                    Ok(asking) => Ok(CallToolResponse::InputRequired(asking)),
                    Err(message) => Ok(tool_error(message)),
                }
            }
        }
    }
}
