//! The host side of `execute`: turns each host call of the code into a typed
//! [`Call`], runs it through the host pipeline, and sends what the pipeline
//! lets through to the network, the rehearsal responder or the portal.
//!
//! ```text
//! sandbox host call (client, method, JSON args)
//!   └─ Targets::call_for: parse once (request::parse, spec route, portal tool)
//!        └─ Pipeline: Audit → Telemetry → Redact → Scope → Rule → DLP → DryRun → Approval
//!             └─ Dispatch (Route): Upstream::send | Portal::call
//! ```

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use codemode_pipeline::{
    Access, ApprovalLayer, BoxReply, Call, DryRunLayer, Execution, HostError, HttpOp, Layer, Next, Operation, Pipeline,
    Policy, Route, RuleLayer, RuleSet, ScopeLayer, TargetKind, TargetRules, ToolOp,
};
use codemode_portal::Portal;
use codemode_sandbox::{Host, HostFuture};
use codemode_spec::routes::{Found, Router};
use codemode_upstream::Upstream;
use serde_json::Value;
use tracing::Instrument;

use crate::config::Config;
use crate::service::LoadedApi;

/// One API as the host knows it: its client and its operations by route.
struct ApiTarget {
    name: String,
    upstream: Upstream,
    routes: Router,
    /// `(operationId, tags)` of route `i`.
    meta: Vec<(Option<String>, Vec<String>)>,
    /// The path of the spec's first server (`/client/v4`), for requests
    /// written with or without it.
    base_path: String,
    /// `auth = { type = "signin" }`: each principal's own upstream token.
    signin: bool,
    /// A GraphQL API's schema: its calls are `graphql(...)`, not `request`.
    graphql: Option<Arc<crate::graphql::GraphqlApi>>,
}

/// Everything calls can go to; builds calls and sends them.
pub struct Targets {
    apis: Vec<ApiTarget>,
    portal: Option<Arc<Portal>>,
    /// For the refusal of tools the portal hides by a server's rules.
    policy: Arc<Policy>,
    /// Where a signed-in principal's upstream token comes from (`[auth.signin]`),
    /// set once the HTTP listener has built its authorization server.
    user_credentials: std::sync::OnceLock<Arc<dyn codemode_http::UserCredentials>>,
    /// The per-user clients of `signin` APIs by (API, principal), with the
    /// token each was built for: building one (its scrubber) costs more
    /// than the request, so it is reused until the user's token changes.
    user_clients: std::sync::Mutex<HashMap<(String, String), (String, Upstream)>>,
}

/// At most this many per-user clients are kept (then the cache starts over).
const MAX_USER_CLIENTS: usize = 4096;

impl Targets {
    /// The targets of `apis` and `portal`.
    pub fn new(apis: &[LoadedApi], portal: Option<Arc<Portal>>, policy: Arc<Policy>) -> Self {
        let apis = apis
            .iter()
            .map(|a| {
                let ops = &a.spec.summary.operations;
                let routes = Router::new(ops.iter().map(|o| (o.method.clone(), o.path.clone())));
                let meta = ops.iter().map(|o| (o.operation_id.clone(), o.tags.clone())).collect();
                let base_path = a
                    .spec
                    .summary
                    .servers
                    .first()
                    .and_then(|s| url::Url::parse(s).ok().or_else(|| url::Url::parse("http://x").ok()?.join(s).ok()))
                    .map(|u| u.path().trim_end_matches('/').to_string())
                    .unwrap_or_default();
                ApiTarget {
                    name: a.name.clone(),
                    upstream: a.upstream.clone(),
                    routes,
                    meta,
                    base_path,
                    signin: a.signin,
                    graphql: a.graphql.clone(),
                }
            })
            .collect();
        Targets { apis, portal, policy, user_credentials: std::sync::OnceLock::new(), user_clients: Default::default() }
    }

    /// Sets where signed-in principals' upstream tokens come from (once).
    pub fn set_user_credentials(&self, c: Arc<dyn codemode_http::UserCredentials>) {
        let _ = self.user_credentials.set(c);
    }

    /// The signed-in users' credentials, when set.
    pub fn user_credentials(&self) -> Option<Arc<dyn codemode_http::UserCredentials>> {
        self.user_credentials.get().cloned()
    }

    /// The client of a `signin` API for this call's principal: its own
    /// upstream token, looked up (and refreshed) by the host; the code never
    /// sees it and the client's scrubber removes it from what comes back.
    async fn user_upstream(&self, api: &ApiTarget, exec: &Execution) -> Result<Upstream, HostError> {
        let refuse = |m: String| HostError::new("AuthError", m).with("api", api.name.clone()).with("retryable", false);
        let Some(creds) = self.user_credentials.get() else {
            return Err(refuse(format!(
                "the `{}` API uses each user's own sign-in, which needs codemode served over HTTP with [auth.signin]",
                api.name
            )));
        };
        let Some(principal) = &exec.principal else {
            return Err(refuse(format!(
                "the `{}` API uses each user's own sign-in; this call has no signed-in user",
                api.name
            )));
        };
        let token = creds.bearer_for(principal).await.map_err(refuse)?;
        let key = (api.name.clone(), principal.name.clone());
        let mut cache = self.user_clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((t, client)) = cache.get(&key) {
            if *t == token {
                return Ok(client.clone());
            }
        }
        let client = api.upstream.with_credential(codemode_upstream::Auth::Bearer {
            token: codemode_upstream::Secret::new(token.clone()),
            source: format!("the sign-in of `{}`", principal.name),
        });
        if cache.len() >= MAX_USER_CLIENTS {
            cache.clear();
        }
        cache.insert(key, (token, client.clone()));
        Ok(client)
    }

    /// Parses one host call into a [`Call`], or the error the code gets.
    fn call_for(&self, client: &str, method: &str, args: Value, exec: &Arc<Execution>) -> Result<Call, HostError> {
        if client == "codemode" {
            let Some(portal) = &self.portal else {
                return Err(HostError::usage("no MCP servers are configured"));
            };
            let arguments = match args {
                Value::Array(mut a) if a.len() <= 1 => a.pop().unwrap_or_else(|| Value::Object(Default::default())),
                _ => {
                    return Err(HostError::usage(format!(
                        "codemode.{method}() takes one argument: an object of the tool's parameters"
                    )))
                }
            };
            // The principal's view: a server authenticated per user lists
            // the tools of this principal's own session (opened by
            // `ExecHost::call` before this).
            let who = match &exec.principal {
                Some(p) => p.who(),
                None => codemode_upstream::Who::nobody(),
            };
            let Some(tool) = portal.tool_for(method, &who) else {
                // Hidden by the server's own rules: a refusal like any other.
                if let Some((server, upstream_name, reason)) = portal.hidden_by_policy_for(method, &who) {
                    let name = method.strip_prefix("codemode.").unwrap_or(method);
                    let (message, rule) = self.policy.hidden_tool(&server, &upstream_name, name, &reason);
                    return Err(HostError::new("PolicyError", message)
                        .with("server", server)
                        .with("tool", name)
                        .with("rule", rule)
                        .with("retryable", false));
                }
                return Err(HostError::from_json(portal.unknown_tool_error_for(method, &who)));
            };
            let read_only =
                tool.annotations.as_ref().and_then(|a| a.get("readOnlyHint")).and_then(Value::as_bool).unwrap_or(false);
            let op = ToolOp { server: tool.server, tool: tool.tool, name: tool.name, arguments };
            let access = if read_only { Access::Read } else { Access::Write };
            return Ok(Call::new(Operation::Tool(op), access, exec.clone()));
        }
        let Some(api) = self.apis.iter().find(|a| a.name == client) else {
            return Err(HostError::usage(format!("no API named `{client}`")));
        };
        if let Some(gql) = &api.graphql {
            if method != "graphql" {
                return Err(HostError::usage(format!(
                    "`{client}.{method}` does not exist: `{client}` is a GraphQL API; use `{client}.graphql(query, variables?)`"
                )));
            }
            let op = crate::graphql::parse_call(&api.name, gql, args)?;
            let access = Access::of_graphql(op.checked.kind);
            return Ok(Call::new(Operation::Graphql(op), access, exec.clone()));
        }
        if method != "request" {
            return Err(HostError::usage(format!("`{client}.{method}` does not exist; use `{client}.request(...)`")));
        }
        let request = codemode_upstream::request::parse_for(&args, &api.upstream.config().api())
            .map_err(|e| HostError::from_json(e.to_json()))?;
        let route = api.route(&request.method, &request.path);
        let (template, operation_id, tags) = match route {
            Some(i) => {
                let (id, tags) = api.meta[i].clone();
                (Some(api.routes.routes()[i].template.clone()), id, tags)
            }
            None => (None, None, vec![]),
        };
        let access = Access::of_method(&request.method);
        let op = HttpOp { api: api.name.clone(), request, template, operation_id, tags };
        Ok(Call::new(Operation::Http(op), access, exec.clone()))
    }
}

impl Targets {
    /// Whether a redirect hop to `path` may be followed for `exec`'s
    /// principal: the scope allows reading the API and the rules let the
    /// read through without asking.
    fn hop_allowed(&self, api: &str, method: &str, path: &str, exec: &Arc<Execution>) -> bool {
        if let Some(p) = &exec.principal {
            if p.allows(api, false).is_err() {
                return false;
            }
        }
        let args = serde_json::json!([{"method": method, "path": path}]);
        match self.call_for(api, "request", args, exec) {
            Ok(call) => matches!(self.policy.decide(&call), codemode_pipeline::Verdict::Allow),
            Err(_) => false,
        }
    }
}

impl ApiTarget {
    /// The spec operation a request is for, with or without the servers'
    /// base path in front.
    fn route(&self, method: &str, path: &str) -> Option<usize> {
        let found = |p: &str| match self.routes.find(method, p) {
            Found::Route(i, _) => Some(i),
            _ => None,
        };
        found(path)
            .or_else(|| {
                let rest = path.strip_prefix(self.base_path.as_str()).filter(|r| r.starts_with('/'))?;
                (!self.base_path.is_empty()).then(|| found(rest)).flatten()
            })
            .or_else(|| (!self.base_path.is_empty()).then(|| found(&format!("{}{path}", self.base_path))).flatten())
    }
}

/// The scrubbers of one execution's requests, one per API, for APIs whose
/// credential is what the principal presented (pass-through) or chosen per
/// principal: built on the execution's first request to that API (an
/// automaton over every encoding of the presented credential), reused by
/// the rest. Lives in the execution, so it dies with it.
#[derive(Default)]
struct PresentedScrubbers(std::sync::Mutex<HashMap<String, codemode_upstream::Scrubber>>);

impl PresentedScrubbers {
    fn of(
        exec: &Execution,
        api: &str,
        upstream: &Upstream,
        who: &codemode_upstream::Who<'_>,
    ) -> codemode_upstream::Scrubber {
        if !upstream.config().auth.is_dynamic() || who.presented.is_empty() {
            // Nothing presented to add: the API's own (a cheap clone).
            return upstream.scrubber_for(who);
        }
        let state = exec.state::<PresentedScrubbers>();
        let mut map = state.0.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(api.to_string()).or_insert_with(|| upstream.scrubber_for(who)).clone()
    }
}

/// The end of the pipeline: sends a call that every layer let through.
struct Dispatch {
    targets: Arc<Targets>,
}

impl Route for Dispatch {
    fn send<'a>(&'a self, call: Call) -> BoxReply<'a> {
        Box::pin(async move {
            let started = Instant::now();
            match call.op {
                Operation::Http(h) => {
                    let Some(api) = self.targets.apis.iter().find(|a| a.name == h.api) else {
                        return Err(HostError::usage(format!("no API named `{}`", h.api)));
                    };
                    let (method, path) = (h.request.method.clone(), h.request.path.clone());
                    // A redirect is a new request the server chose: it is
                    // followed only where the rules let this principal read.
                    let exec = call.exec.clone();
                    let targets = self.targets.clone();
                    let api_name = h.api.clone();
                    let follow = move |method: &str, path: &str| targets.hop_allowed(&api_name, method, path, &exec);
                    // The call's span (or the caller's context passed on):
                    // the host's traceparent, never the code's.
                    let trace = codemode_telemetry::context::outgoing(&call.exec);
                    // The credential is chosen here, on the host, for the
                    // execution's principal (pass-through, per principal, or
                    // the signed-in user's own upstream token).
                    let who = match &call.exec.principal {
                        Some(p) => p.who(),
                        None => codemode_upstream::Who::nobody(),
                    };
                    let per_user;
                    let upstream = if api.signin {
                        per_user = self.targets.user_upstream(api, &call.exec).await?;
                        &per_user
                    } else {
                        &api.upstream
                    };
                    let scrubber = PresentedScrubbers::of(&call.exec, &h.api, upstream, &who);
                    let result = upstream
                        .send_for(h.request, &follow, &trace, &call.exec.caller, &who, &scrubber)
                        .await
                        .map_err(|e| HostError::from_json(e.to_json()));
                    let status = match &result {
                        Ok(v) => v.get("status").and_then(Value::as_u64),
                        Err(e) => e.fields.get("status").and_then(Value::as_u64),
                    };
                    tracing::info!(
                        api = %h.api,
                        method = %method,
                        path = %path.chars().take(200).collect::<String>(),
                        template = h.template.as_deref().unwrap_or(""),
                        ok = result.is_ok(),
                        status = status.unwrap_or(0),
                        elapsed_ms = round_ms(started.elapsed()),
                        "upstream request"
                    );
                    result
                }
                Operation::Graphql(g) => {
                    let Some(api) = self.targets.apis.iter().find(|a| a.name == g.api) else {
                        return Err(HostError::usage(format!("no API named `{}`", g.api)));
                    };
                    let trace = codemode_telemetry::context::outgoing(&call.exec);
                    // A POST is never redirected (redirects are followed as reads only).
                    let sent = api
                        .upstream
                        .send_as(g.request.clone(), &|_, _| false, &trace, &call.exec.caller)
                        .await
                        .map_err(|e| HostError::from_json(e.to_json()));
                    let result = crate::graphql::answer(&g, sent);
                    tracing::info!(
                        api = %g.api,
                        operation = g.checked.kind.as_str(),
                        fields = %g.coordinates().join(","),
                        depth = g.checked.depth,
                        cost = g.checked.cost,
                        ok = result.is_ok(),
                        elapsed_ms = round_ms(started.elapsed()),
                        "upstream GraphQL operation"
                    );
                    result
                }
                Operation::Tool(t) => {
                    let Some(portal) = &self.targets.portal else {
                        return Err(HostError::usage("no MCP servers are configured"));
                    };
                    let trace = codemode_telemetry::context::outgoing(&call.exec);
                    let meta = (!trace.is_empty())
                        .then(|| trace.into_iter().map(|(k, v)| (k.to_string(), Value::String(v))).collect());
                    // A server authenticated per user: this principal's own
                    // session, with its own credential.
                    let who = match &call.exec.principal {
                        Some(p) => p.who(),
                        None => codemode_upstream::Who::nobody(),
                    };
                    let result = portal.call_as(&t.name, t.arguments, meta, &who).await.map_err(HostError::from_json);
                    tracing::info!(
                        server = %t.server,
                        tool = %t.tool,
                        ok = result.is_ok(),
                        elapsed_ms = round_ms(started.elapsed()),
                        "upstream tool call"
                    );
                    result
                }
            }
        })
    }
}

/// Milliseconds with one decimal, for logs.
pub fn round_ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}

/// The policy the config describes: each API's and server's rules (with
/// `allow_writes`) and every group's tables.
pub fn policy(config: &Config) -> Result<Policy, String> {
    let compile = |lists: &codemode_pipeline::RuleLists, kind, key: &str| {
        RuleSet::compile(lists, kind)
            .map_err(|e| e.iter().map(|(k, m)| format!("{key}.{k}: {m}")).collect::<Vec<_>>().join("; "))
    };
    let mut policy = Policy::new();
    for (i, a) in config.apis.iter().enumerate() {
        let rules = compile(&a.rules(), TargetKind::Api, &format!("api[{i}]"))?;
        policy.target(&a.name, TargetRules { from: format!("api {}", a.name), rules, writes: a.allow_writes });
    }
    for (i, m) in config.mcp.iter().enumerate() {
        // `allow`/`deny`/`read_only` also hide tools in the portal; here
        // they decide calls (and `approve` asks).
        let rules = compile(&m.rules(), TargetKind::Tools, &format!("mcp[{i}]"))?;
        policy.target(&m.name, TargetRules { from: format!("mcp {}", m.name), rules, writes: true });
    }
    for (group, tables) in &config.policy.groups {
        for (target, lists) in tables {
            let kind = if config.apis.iter().any(|a| &a.name == target) { TargetKind::Api } else { TargetKind::Tools };
            policy.group(group, target, compile(lists, kind, &format!("policy.groups.{group}.{target}"))?);
        }
    }
    Ok(policy)
}

/// Replaces what `[[redact]]` rules find in every answer a call gets
/// (result or error), before the code sees it. Outermost, so refusals and
/// planned writes are covered too.
struct RedactLayer {
    redactor: codemode_redact::Redactor,
}

impl Layer for RedactLayer {
    fn handle<'a>(&'a self, call: Call, next: Next<'a>) -> BoxReply<'a> {
        Box::pin(async move {
            let target = call.target().to_string();
            let notes = call.notes.clone();
            let mut reply = next.run(call).await;
            let counts = match &mut reply {
                Ok(v) => self.redactor.redact_value(v, Some(&target)),
                Err(e) => self.redactor.redact_error(e, Some(&target)),
            };
            if !counts.is_empty() {
                notes.lock().unwrap_or_else(|e| e.into_inner()).insert("redacted".into(), counts.to_json());
            }
            reply
        })
    }
}

/// The pipeline in its order, deciding by `policy`, in front of `targets`:
/// audit → telemetry → redact → scopes → rules → DLP → dry run → approval → dispatch.
pub fn pipeline(
    config: &Config,
    targets: Arc<Targets>,
    policy: Arc<Policy>,
    redactor: codemode_redact::Redactor,
    dlp: codemode_redact::DlpLayer,
    telemetry: Option<codemode_telemetry::TelemetryLayer>,
) -> Arc<Pipeline> {
    let dry_run_targets = config
        .apis
        .iter()
        .filter(|a| a.dry_run)
        .map(|a| a.name.clone())
        .chain(config.mcp.iter().filter(|m| m.dry_run).map(|m| m.name.clone()));
    // The audit layer is outermost: it records refusals of every kind too.
    let mut layers: Vec<Arc<dyn Layer>> = vec![Arc::new(codemode_audit::AuditLayer::new())];
    // Telemetry just inside: audit stays outermost, and every layer that can
    // refuse runs inside the call's span. Absent when telemetry is off.
    if let Some(t) = telemetry {
        layers.push(Arc::new(t));
    }
    if !redactor.is_empty() {
        layers.push(Arc::new(RedactLayer { redactor }));
    }
    layers.extend::<[Arc<dyn Layer>; 2]>([Arc::new(ScopeLayer), Arc::new(RuleLayer::new(policy))]);
    if !dlp.is_empty() {
        layers.push(Arc::new(dlp));
    }
    layers.extend::<[Arc<dyn Layer>; 2]>([
        Arc::new(DryRunLayer::new(dry_run_targets)),
        Arc::new(ApprovalLayer::new(Duration::from_secs_f64(config.policy.approval_timeout_secs))),
    ]);
    Arc::new(Pipeline::new(layers, Arc::new(Dispatch { targets })))
}

/// The sandbox's [`Host`] for one execution: every call through the pipeline.
pub struct ExecHost {
    /// Where this execution's progress goes (the client asked for it).
    pub progress: Option<ProgressFn>,
    /// Where calls are parsed against.
    pub targets: Arc<Targets>,
    /// The layers.
    pub pipeline: Arc<Pipeline>,
    /// The execution the calls belong to.
    pub exec: Arc<Execution>,
    /// The tool call's span: host calls run on the sandbox's tasks, and
    /// their log lines still name the call and its principal.
    pub span: tracing::Span,
}

/// Receives an execution's progress: one [`Progress`] per nested call
/// completed and per admitted `progress(...)` report of the code. Must not
/// block.
pub type ProgressFn = Arc<dyn Fn(Progress) + Send + Sync>;

/// One step of an execution, for the client's progress notifications.
#[derive(Clone, Debug, PartialEq)]
pub struct Progress {
    /// What happened: `bookshelf GET /books/{book_id}: 200`, or the code's
    /// own words.
    pub message: String,
    /// How far along (0 to 1), when the code said so.
    pub fraction: Option<f64>,
}

/// Longest label of a nested call in a progress message, in characters.
const MAX_LABEL_CHARS: usize = 120;

/// `bookshelf GET /books/{book_id}` or `codemode.memory_read_graph`: the
/// spec's template when the route is known (no concrete ids in the client's
/// UI), the path the code sent otherwise, cut short.
fn call_label(call: &Call) -> String {
    let text = match &call.op {
        Operation::Http(op) => {
            format!("{} {} {}", op.api, op.request.method, op.template.as_deref().unwrap_or(&op.request.path))
        }
        Operation::Tool(op) => format!("codemode.{}", op.name.strip_prefix("codemode.").unwrap_or(&op.name)),
        Operation::Graphql(op) => format!("{} {}", op.api, op.coordinates().join(", ")),
    };
    cut_label(text)
}

/// `client.method`, cut short (a call that did not parse).
fn label_of(client: &str, method: &str) -> String {
    cut_label(format!("{client}.{method}"))
}

fn cut_label(text: String) -> String {
    if text.chars().count() <= MAX_LABEL_CHARS {
        return text;
    }
    let mut cut: String = text.chars().take(MAX_LABEL_CHARS - 1).collect();
    cut.push('…');
    cut
}

/// How a nested call ended, for its progress message.
fn ending(result: &Result<Value, Value>) -> String {
    match result {
        Ok(v) => match v.get("status").and_then(Value::as_u64) {
            Some(status) => status.to_string(),
            None => "done".into(),
        },
        Err(e) => {
            let name = e.get("name").and_then(Value::as_str).unwrap_or("Error");
            match e.get("status").and_then(Value::as_u64) {
                Some(status) => format!("{status} ({name})"),
                None => name.to_string(),
            }
        }
    }
}

impl Host for ExecHost {
    fn call(&self, client: &str, method: &str, args: Value) -> HostFuture {
        if let Some(portal) = self.targets.portal.clone().filter(|p| client == "codemode" && p.is_per_user_tool(method))
        {
            // A tool of a server authenticated per user: what it is (its
            // schema, whether it only reads) comes from this principal's own
            // session, so that session is opened before the call is parsed.
            let (targets, exec, pipeline) = (self.targets.clone(), self.exec.clone(), self.pipeline.clone());
            let (client, method) = (client.to_string(), method.to_string());
            let progress = self.progress.clone();
            return Box::pin(
                async move {
                    let who = match &exec.principal {
                        Some(p) => p.who(),
                        None => codemode_upstream::Who::nobody(),
                    };
                    let opened = portal.open_for(&method, &who).await;
                    let result = match opened
                        .map_err(HostError::from_json)
                        .and_then(|()| targets.call_for(&client, &method, args, &exec))
                    {
                        Ok(call) => pipeline.run(call).await.map_err(|e| e.to_json()),
                        Err(e) => Err(e.to_json()),
                    };
                    if let Some(progress) = progress {
                        progress(Progress {
                            message: format!("{}: {}", label_of(&client, &method), ending(&result)),
                            fraction: None,
                        });
                    }
                    result
                }
                .instrument(self.span.clone()),
            );
        }
        let call = self.targets.call_for(client, method, args, &self.exec);
        let pipeline = self.pipeline.clone();
        let progress = self.progress.clone();
        let label = progress.as_ref().map(|_| match &call {
            Ok(call) => call_label(call),
            Err(_) => label_of(client, method),
        });
        Box::pin(
            async move {
                let result = match call {
                    Ok(call) => pipeline.run(call).await.map_err(|e| e.to_json()),
                    Err(e) => Err(e.to_json()),
                };
                if let (Some(progress), Some(label)) = (progress, label) {
                    progress(Progress { message: format!("{label}: {}", ending(&result)), fraction: None });
                }
                result
            }
            .instrument(self.span.clone()),
        )
    }

    fn progress(&self, report: codemode_sandbox::ProgressReport) {
        if let Some(progress) = &self.progress {
            progress(Progress { message: report.message, fraction: report.fraction });
        }
    }
}
