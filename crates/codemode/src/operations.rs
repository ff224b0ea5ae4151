//! Per-operation mode: one MCP tool per OpenAPI operation and per upstream
//! MCP tool, for clients that do their own code mode (Cloudflare's
//! `?codemode=false`) and for models that do better with plain tools.
//!
//! A call of such a tool is compiled on the host into a one-line `execute`
//! — `async () => api.request(JSON.parse("…"))` or
//! `codemode["server_tool"](JSON.parse("…"))` — so it passes exactly what
//! model code passes: the sandbox, the pipeline (scopes, rules, DLP, dry
//! run, approval), the limits, the output cap, and the audit record, which
//! shows the line. The arguments travel as a JSON string that the code
//! parses, never as JavaScript source: nothing in them can be code, and
//! keys like `__proto__` stay plain keys.
//!
//! Which mode a client gets is decided per request ([`CodeMode::choose`]):
//! the admin's `[tools] code_mode`, and what the client asked for with the
//! `codemode` query parameter of the HTTP endpoint.

use std::collections::HashMap;

use rmcp::model::{Tool, ToolAnnotations};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use codemode_spec::{Graph, Node, NodeId};

use crate::service::LoadedApi;

/// What clients may choose (`[tools] code_mode`).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CodeMode {
    /// Always `search` and `execute`; a client's `codemode=false` is ignored.
    Enforced,
    /// `search` and `execute` unless the client asks for `codemode=false`.
    #[default]
    DefaultOn,
    /// One tool per operation unless the client asks for `codemode=true`.
    OptIn,
    /// Always one tool per operation.
    Off,
}

/// The tools one request is served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `search` and `execute`.
    Code,
    /// One tool per operation and per upstream tool.
    PerOperation,
}

impl CodeMode {
    /// The mode for a request whose client asked for `asked` (`Some(true)`:
    /// code mode, `Some(false)`: per operation, `None`: no preference).
    pub fn choose(self, asked: Option<bool>) -> Mode {
        match (self, asked) {
            (CodeMode::Enforced, _) | (CodeMode::DefaultOn, None | Some(true)) | (CodeMode::OptIn, Some(true)) => {
                Mode::Code
            }
            _ => Mode::PerOperation,
        }
    }
}

/// What the `codemode` query parameter asks for: `true`/`on`/
/// `search_and_execute` (the portal dialect) for code mode, `false`/`off`
/// for one tool per operation; absent, no preference.
pub fn asked(query: Option<&str>) -> Result<Option<bool>, String> {
    let Some(query) = query else { return Ok(None) };
    let mut found = None;
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        if key != "codemode" {
            continue;
        }
        found = Some(match value.as_ref() {
            "true" | "on" | "search_and_execute" => true,
            "false" | "off" => false,
            other => {
                return Err(format!(
                    "the query parameter `codemode={other}` is not understood: use `codemode=false` (or `off`) for one tool per operation, `codemode=true` (or `search_and_execute`) for search and execute"
                ))
            }
        });
    }
    Ok(found)
}

/// Tools per `tools/list` page in per-operation mode: a client reading a
/// 2,500-operation list gets it in bounded answers.
pub const PAGE: usize = 200;

/// Longest tool name: MCP allows 128, but many model APIs cap function
/// names at 64.
const MAX_NAME: usize = 64;

/// Headers a spec may declare as parameters that the host owns (the code
/// could not set them anyway): not offered as arguments.
const HOST_HEADERS: [&str; 8] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "host",
    "content-length",
    "content-type",
    "connection",
    "transfer-encoding",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Location {
    Path,
    Query,
    Header,
}

/// One argument of an operation's tool and where it goes.
#[derive(Clone, Debug)]
struct Param {
    /// The argument's key (the parameter name, or `<in>_<name>` when two
    /// locations share a name).
    key: String,
    /// The name in the request.
    name: String,
    location: Location,
    required: bool,
}

/// How an operation's tool becomes a request.
#[derive(Clone, Debug)]
struct HttpOperation {
    api: String,
    method: String,
    path: String,
    params: Vec<Param>,
    /// The argument key of the request body (`body`, or `requestBody` when a
    /// parameter is called `body`), when the operation takes one.
    body: Option<(String, bool)>,
}

/// Which operations become tools.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listing {
    /// What the config lets through: no writes of an API without
    /// `allow_writes` (every call would be refused).
    Allowed,
    /// Every operation (`codemode tokens`: what a converter would list).
    All,
}

/// The per-operation tools of the configured APIs, built on first use.
pub struct OperationTools {
    tools: Vec<Tool>,
    ops: Vec<HttpOperation>,
    by_name: HashMap<String, usize>,
}

impl OperationTools {
    /// One tool per operation of every API (those `listing` takes), in
    /// config and spec order.
    pub fn build(apis: &[LoadedApi], listing: Listing) -> Self {
        let mut tools = Vec::new();
        let mut ops = Vec::new();
        let mut by_name = HashMap::new();
        for api in apis {
            for (mut tool, op) in api_operations(api, listing) {
                tool.name = unique(&mut by_name, tool.name.to_string(), ops.len()).into();
                tools.push(tool);
                ops.push(op);
            }
        }
        OperationTools { tools, ops, by_name }
    }

    /// The API tools.
    pub fn tools(&self) -> &[Tool] {
        &self.tools
    }

    /// One API tool by name.
    pub fn tool(&self, name: &str) -> Option<&Tool> {
        self.by_name.get(name).map(|&i| &self.tools[i])
    }

    /// The code a call of the API tool `name` runs, or why the arguments do
    /// not fit (`None`: no such API tool).
    pub fn code_for(&self, name: &str, args: &Map<String, Value>) -> Option<Result<String, String>> {
        let op = &self.ops[*self.by_name.get(name)?];
        Some(request_code(name, op, args))
    }
}

/// The code of a call of an upstream MCP tool (portal name `name`).
pub fn tool_code(name: &str, args: &Map<String, Value>) -> String {
    format!(
        "async () => codemode[{}](JSON.parse({}))",
        json_string(name),
        json_string(&Value::Object(args.clone()).to_string())
    )
}

/// An upstream MCP tool as a tool of this server.
pub fn upstream_tool(t: &codemode_portal::ToolInfo) -> Tool {
    let schema = match &t.input_schema {
        Value::Object(m) if m.get("type").and_then(Value::as_str) == Some("object") => m.clone(),
        _ => object_schema(Map::new(), vec![]),
    };
    let description = t.description.clone().unwrap_or_else(|| format!("`{}` of the MCP server `{}`", t.tool, t.server));
    let mut tool = Tool::new(t.name.clone(), description, schema);
    if let Some(a) = t.annotations.as_ref().and_then(|a| serde_json::from_value::<ToolAnnotations>(a.clone()).ok()) {
        tool = tool.with_annotations(a);
    }
    tool
}

fn json_string(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

fn request_code(tool: &str, op: &HttpOperation, args: &Map<String, Value>) -> Result<String, String> {
    let keys = || {
        op.params
            .iter()
            .map(|p| p.key.as_str())
            .chain(op.body.as_ref().map(|(k, _)| k.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for key in args.keys() {
        let known = op.params.iter().any(|p| &p.key == key) || op.body.as_ref().is_some_and(|(k, _)| k == key);
        if !known {
            return Err(format!("`{tool}` has no argument `{key}`; its arguments are: {}", keys()));
        }
    }
    let mut path = op.path.clone();
    let mut query = Map::new();
    let mut headers = Map::new();
    for p in &op.params {
        let Some(value) = args.get(&p.key).filter(|v| !v.is_null()) else {
            if p.required || p.location == Location::Path {
                return Err(format!(
                    "`{tool}` needs the argument `{}` ({} parameter)",
                    p.key,
                    location_word(p.location)
                ));
            }
            continue;
        };
        match p.location {
            Location::Path => {
                let text = scalar(value)
                    .ok_or_else(|| format!("`{}` of `{tool}` goes into the path: pass a string or a number", p.key))?;
                path = path.replace(&format!("{{{}}}", p.name), &codemode_upstream::request::encode_segment(&text));
            }
            Location::Query => {
                query.insert(p.name.clone(), value.clone());
            }
            Location::Header => {
                let text = scalar(value)
                    .ok_or_else(|| format!("`{}` of `{tool}` is a header: pass a string or a number", p.key))?;
                headers.insert(p.name.clone(), Value::String(text));
            }
        }
    }
    let mut request = Map::new();
    request.insert("method".into(), json!(op.method));
    request.insert("path".into(), json!(path));
    if !query.is_empty() {
        request.insert("query".into(), Value::Object(query));
    }
    if !headers.is_empty() {
        request.insert("headers".into(), Value::Object(headers));
    }
    if let Some((key, required)) = &op.body {
        match args.get(key) {
            Some(body) => {
                request.insert("body".into(), body.clone());
            }
            None if *required => return Err(format!("`{tool}` needs the argument `{key}` (the request body)")),
            None => {}
        }
    }
    let request = json_string(&Value::Object(request).to_string());
    Ok(format!(
        "async () => {{ const r = await {}.request(JSON.parse({request})); return {{status: r.status, data: r.data}}; }}",
        op.api
    ))
}

fn location_word(l: Location) -> &'static str {
    match l {
        Location::Path => "path",
        Location::Query => "query",
        Location::Header => "header",
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `name`, or `name_2`, `name_3`… — the first that is free.
fn unique(taken: &mut HashMap<String, usize>, name: String, index: usize) -> String {
    let mut candidate = name.clone();
    let mut n = 2;
    while taken.contains_key(&candidate) {
        let suffix = format!("_{n}");
        let mut base = name.clone();
        base.truncate(MAX_NAME - suffix.len());
        candidate = base + &suffix;
        n += 1;
    }
    taken.insert(candidate.clone(), index);
    candidate
}

/// `<api>_<operationId>` (or `<api>_<method>_<path>` without one), reduced to
/// `[A-Za-z0-9_-]` and at most [`MAX_NAME`] characters.
fn tool_name(api: &str, method: &str, path: &str, operation_id: Option<&str>) -> String {
    let raw = match operation_id {
        Some(id) if !id.trim().is_empty() => format!("{api}_{id}"),
        _ => format!("{api}_{method}_{path}"),
    };
    let mut name = String::with_capacity(raw.len());
    for c in raw.chars() {
        let c = if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' };
        // One underscore for every run of separators.
        if !(c == '_' && name.ends_with('_')) {
            name.push(c);
        }
    }
    let mut name = name.trim_end_matches('_').to_string();
    name.truncate(MAX_NAME);
    name
}

fn object_schema(properties: Map<String, Value>, required: Vec<String>) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("type".into(), json!("object"));
    m.insert("properties".into(), Value::Object(properties));
    if !required.is_empty() {
        m.insert("required".into(), json!(required));
    }
    m
}

/// Every operation of one API: its tool (named before de-duplication) and
/// how a call becomes a request.
fn api_operations(api: &LoadedApi, listing: Listing) -> Vec<(Tool, HttpOperation)> {
    let g = &api.spec.graph;
    let mut out = Vec::new();
    let Some(Node::Object(entries)) = g.get(g.root(), "paths").map(|p| g.node(p)) else {
        return out;
    };
    for (path, item) in entries.iter() {
        let item = g.deref(*item);
        for method in codemode_spec::summary::METHODS {
            let Some(op) = g.get(item, method).map(|o| g.deref(o)) else {
                continue;
            };
            let upper = method.to_ascii_uppercase();
            let writes = !matches!(upper.as_str(), "GET" | "HEAD" | "OPTIONS");
            if method == "trace" || (writes && !api.allow_writes && listing == Listing::Allowed) {
                continue;
            }
            out.push(operation(api, g, path, &upper, item, op));
        }
    }
    out
}

fn operation(api: &LoadedApi, g: &Graph, path: &str, method: &str, item: NodeId, op: NodeId) -> (Tool, HttpOperation) {
    let text = |k: &str| g.get(op, k).and_then(|v| g.as_str(v)).unwrap_or("").trim().to_string();
    // Path-level parameters first; the operation's own replace them by (name, in).
    let mut declared: Vec<(String, Location, NodeId)> = Vec::new();
    for list in [g.get(item, "parameters"), g.get(op, "parameters")].into_iter().flatten() {
        let Node::Array(params) = g.node(g.deref(list)) else { continue };
        for p in params.iter() {
            let p = g.deref(*p);
            let Some(name) = g.get(p, "name").and_then(|n| g.as_str(n)) else { continue };
            let location = match g.get(p, "in").and_then(|n| g.as_str(n)) {
                Some("path") => Location::Path,
                Some("query") => Location::Query,
                Some("header") if !HOST_HEADERS.contains(&name.to_ascii_lowercase().as_str()) => Location::Header,
                _ => continue,
            };
            declared.retain(|(n, l, _)| !(n == name && *l == location));
            declared.push((name.to_string(), location, p));
        }
    }
    let mut properties = Map::new();
    let mut required = Vec::new();
    let mut params = Vec::new();
    for (name, location, p) in declared {
        let key =
            if properties.contains_key(&name) { format!("{}_{name}", location_word(location)) } else { name.clone() };
        let mut schema = g.get(p, "schema").map(|s| bounded(g, s)).unwrap_or_else(|| json!({}));
        if let (Some(d), Value::Object(m)) = (g.get(p, "description").and_then(|d| g.as_str(d)), &mut schema) {
            m.insert("description".into(), json!(d));
        }
        let is_required =
            location == Location::Path || matches!(g.get(p, "required").map(|r| g.node(r)), Some(Node::Bool(true)));
        if is_required {
            required.push(key.clone());
        }
        properties.insert(key.clone(), schema);
        params.push(Param { key, name, location, required: is_required });
    }
    let mut body = None;
    if let Some(request_body) = g.get(op, "requestBody").map(|b| g.deref(b)) {
        let key = if properties.contains_key("body") { "requestBody" } else { "body" }.to_string();
        let media = g.get(request_body, "content").and_then(|c| match g.node(c) {
            Node::Object(types) => {
                types.iter().find(|(t, _)| t.contains("json")).or_else(|| types.first()).map(|(_, media)| *media)
            }
            _ => None,
        });
        let mut schema = media.and_then(|m| g.get(m, "schema")).map(|s| bounded(g, s)).unwrap_or_else(|| json!({}));
        if let (Some(d), Value::Object(m)) = (g.get(request_body, "description").and_then(|d| g.as_str(d)), &mut schema)
        {
            m.entry("description").or_insert(json!(d));
        }
        let is_required = matches!(g.get(request_body, "required").map(|r| g.node(r)), Some(Node::Bool(true)));
        if is_required {
            required.push(key.clone());
        }
        properties.insert(key.clone(), schema);
        body = Some((key, is_required));
    }
    let summary = text("summary");
    let mut description = text("description");
    if description.chars().count() > 1000 {
        description = description.chars().take(1000).collect::<String>() + "…";
    }
    let head = if summary.is_empty() { format!("{method} {path}") } else { format!("{method} {path}: {summary}") };
    let description =
        if description.is_empty() || description == summary { head } else { format!("{head}\n\n{description}") };
    let operation_id = g.get(op, "operationId").and_then(|v| g.as_str(v));
    let read = matches!(method, "GET" | "HEAD" | "OPTIONS");
    let tool =
        Tool::new(tool_name(&api.name, method, path, operation_id), description, object_schema(properties, required))
            .with_annotations(
                ToolAnnotations::new()
                    .read_only(read)
                    .destructive(matches!(method, "PUT" | "PATCH" | "DELETE"))
                    .idempotent(read || matches!(method, "PUT" | "DELETE"))
                    .open_world(true),
            );
    let op = HttpOperation { api: api.name.clone(), method: method.to_string(), path: path.to_string(), params, body };
    (tool, op)
}

/// A schema with references inlined: cycles cut, at most 20,000 nodes (a
/// reference past that is any value, described: a client would take the
/// cut's `$ref` for one into the tool's own schema).
fn bounded(g: &Graph, id: NodeId) -> Value {
    let mut budget = 20_000;
    let mut v = g.to_value_bounded(id, &mut budget);
    codemode_spec::graph::replace_truncated(
        &mut v,
        &|r| serde_json::json!({"description": format!("{r} (not expanded: the schema is over 20,000 nodes)")}),
    );
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_decides_what_a_client_may_pick() {
        use CodeMode::*;
        use Mode::*;
        let table = [
            (Enforced, [Code, Code, Code]),
            (DefaultOn, [Code, Code, PerOperation]),
            (OptIn, [PerOperation, Code, PerOperation]),
            (Off, [PerOperation, PerOperation, PerOperation]),
        ];
        for (setting, want) in table {
            assert_eq!(
                [setting.choose(None), setting.choose(Some(true)), setting.choose(Some(false))],
                want,
                "{setting:?}"
            );
        }
    }

    #[test]
    fn the_query_parameter_speaks_both_dialects() {
        assert_eq!(asked(None), Ok(None));
        assert_eq!(asked(Some("x=1")), Ok(None));
        for (q, want) in [
            ("codemode=false", false),
            ("codemode=off", false),
            ("codemode=true", true),
            ("a=1&codemode=search_and_execute", true),
        ] {
            assert_eq!(asked(Some(q)), Ok(Some(want)), "{q}");
        }
        let e = asked(Some("codemode=maybe")).unwrap_err();
        assert!(e.contains("codemode=false") && e.contains("maybe"), "{e}");
    }

    #[test]
    fn names_are_predictable_and_fit() {
        assert_eq!(tool_name("cf", "GET", "/zones", Some("zones-get")), "cf_zones-get");
        assert_eq!(tool_name("cf", "GET", "/zones/{zone_id}/dns_records", None), "cf_GET_zones_zone_id_dns_records");
        assert_eq!(tool_name("cf", "POST", "/a", Some("weird id!.x")), "cf_weird_id_x");
        let long = tool_name("cf", "GET", "/a", Some(&"x".repeat(300)));
        assert_eq!(long.len(), MAX_NAME);
        let mut taken = HashMap::new();
        assert_eq!(unique(&mut taken, long.clone(), 0), long);
        let second = unique(&mut taken, long.clone(), 1);
        assert!(second.ends_with("_2") && second.len() == MAX_NAME, "{second}");
    }

    fn op() -> HttpOperation {
        HttpOperation {
            api: "shelf".into(),
            method: "PUT".into(),
            path: "/books/{book_id}".into(),
            params: vec![
                Param { key: "book_id".into(), name: "book_id".into(), location: Location::Path, required: true },
                Param { key: "dry".into(), name: "dry".into(), location: Location::Query, required: false },
                Param { key: "X-Trace".into(), name: "X-Trace".into(), location: Location::Header, required: false },
            ],
            body: Some(("body".into(), true)),
        }
    }

    #[test]
    fn a_call_becomes_one_request_with_the_arguments_as_data() {
        let args = json!({"book_id": "../../admin", "dry": true, "X-Trace": 7, "body": {"__proto__": {"x": 1}, "t": "\u{2028}\"); evil(); (\""}});
        let code = request_code("shelf_put", &op(), args.as_object().unwrap()).unwrap();
        // The arguments are one JSON string literal parsed by the code: no
        // part of them is source.
        let (prefix, rest) = code.split_once("JSON.parse(").unwrap();
        assert_eq!(prefix, "async () => { const r = await shelf.request(");
        let literal_end = rest.find(")); return").unwrap();
        let literal: String = serde_json::from_str(&rest[..literal_end]).unwrap();
        let request: Value = serde_json::from_str(&literal).unwrap();
        assert_eq!(request["method"], "PUT");
        assert_eq!(request["path"], "/books/..%2F..%2Fadmin", "path values are one encoded segment");
        assert_eq!(request["query"], json!({"dry": true}));
        assert_eq!(request["headers"], json!({"X-Trace": "7"}));
        assert_eq!(request["body"], args["body"]);
    }

    #[test]
    fn arguments_that_do_not_fit_are_named() {
        let missing = request_code("shelf_put", &op(), json!({"body": {}}).as_object().unwrap()).unwrap_err();
        assert!(missing.contains("`book_id`") && missing.contains("path"), "{missing}");
        let unknown =
            request_code("shelf_put", &op(), json!({"book_id": 1, "body": {}, "nope": 1}).as_object().unwrap())
                .unwrap_err();
        assert!(unknown.contains("`nope`") && unknown.contains("book_id, dry, X-Trace, body"), "{unknown}");
        let no_body = request_code("shelf_put", &op(), json!({"book_id": 1}).as_object().unwrap()).unwrap_err();
        assert!(no_body.contains("request body"), "{no_body}");
        let object_in_path =
            request_code("shelf_put", &op(), json!({"book_id": {}, "body": {}}).as_object().unwrap()).unwrap_err();
        assert!(object_in_path.contains("string or a number"), "{object_in_path}");
    }

    #[test]
    fn upstream_tool_calls_pass_their_arguments_as_data() {
        let code = tool_code("fs_read\"); x(\"", json!({"path": "/etc"}).as_object().unwrap());
        assert_eq!(code, r#"async () => codemode["fs_read\"); x(\""](JSON.parse("{\"path\":\"/etc\"}"))"#);
    }
}
