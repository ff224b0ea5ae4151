//! The `codemode` global of `search`: `tools()`, `status()`, `types(name)`
//! and `find(query)`, answered by the host over the sandbox's synchronous
//! bridge, and narrowed to what the calling principal may see.

use std::sync::{Arc, Mutex};

use codemode_find::{Field, Index, IndexBuilder, Query};
use codemode_portal::{Portal, ToolInfo, ToolSnapshot};
use codemode_sandbox::SyncHost;
use codemode_spec::{Graph, Node, NodeId, Spec};
use serde_json::{json, Map, Value};

use codemode_http::Principal;

/// `codemode.tools()`, `status()`, `types(name?)` and `find(query)` for
/// `search` code.
pub(crate) struct Catalog {
    portal: Option<Arc<Portal>>,
    apis: Vec<(String, Arc<Spec>)>,
    /// Tools a principal's group rules refuse are not shown.
    policy: Arc<codemode_pipeline::Policy>,
    /// Every operation of every API, indexed once at start-up.
    operations: OperationIndex,
    /// GraphQL APIs by name, for `types("Query.repository")`.
    graphql: Vec<(String, Arc<crate::graphql::GraphqlApi>)>,
    /// Every field of every GraphQL API, indexed once at start-up.
    fields: FieldIndex,
    /// The portal's tools, indexed on first use and again when they change.
    tools: Mutex<Option<(ToolSnapshot, Arc<Index>)>>,
}

/// What one `search` may see: APIs and servers by name, tools one by one.
struct View<'a> {
    target: &'a dyn Fn(&str) -> bool,
    tool: &'a dyn Fn(&ToolInfo) -> bool,
    /// Whose sessions a server authenticated per user lists its tools from.
    who: codemode_upstream::Who<'a>,
}

impl Catalog {
    /// The catalog of these APIs and portal, indexing the operations for
    /// `find` (the start-up cost BENCHMARKS.md states).
    pub(crate) fn new(
        portal: Option<Arc<Portal>>,
        apis: Vec<(String, Arc<Spec>)>,
        graphql: Vec<(String, Arc<crate::graphql::GraphqlApi>)>,
        policy: Arc<codemode_pipeline::Policy>,
    ) -> Self {
        let started = std::time::Instant::now();
        let operations = OperationIndex::build(&apis);
        let fields = FieldIndex::build(&graphql);
        tracing::info!(
            operations = operations.docs.len(),
            graphql_fields = fields.docs.len(),
            elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
            "find index built"
        );
        Self { portal, apis, policy, operations, graphql, fields, tools: Mutex::new(None) }
    }

    /// Answers `codemode.<method>(...args)`, showing only what `view` lets
    /// through.
    fn answer(&self, method: &str, args: Value, view: View<'_>) -> Result<Value, Value> {
        let allowed = view.target;
        match method {
            // A server authenticated per user: the tools of this principal's
            // own session, opened now if it has none.
            "tools" => Ok(match &self.portal {
                Some(p) => Value::Array(
                    p.tools_for(&view.who, allowed).iter().filter(|t| (view.tool)(t)).map(crate::tools::tool_json).collect(),
                ),
                None => json!([]),
            }),
            // Every server, connected or not: what `tools()` leaves out.
            "status" => Ok(match &self.portal {
                Some(p) => Value::Array(
                    p.status_for(&view.who).iter().filter(|st| allowed(&st.name)).map(crate::tools::status_json).collect(),
                ),
                None => json!([]),
            }),
            "types" => self.types(args.get(0), &view),
            "find" => self.find(args.get(0), args.get(1), &view),
            other => Err(type_error(format!(
                "codemode.{other} does not exist; use codemode.find(query), codemode.tools(), codemode.status() or codemode.types(name)"
            ))),
        }
    }

    /// `codemode.types(name?)`: a name, or an entry of `find()` (`{name, api}`).
    fn types(&self, arg: Option<&Value>, view: &View<'_>) -> Result<Value, Value> {
        let qualified;
        let name = match arg {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.as_str()),
            Some(Value::Object(entry)) => match (entry.get("name").and_then(Value::as_str), entry.get("api").and_then(Value::as_str)) {
                (Some(n), Some(api)) => {
                    qualified = format!("{api}:{n}");
                    Some(qualified.as_str())
                }
                (Some(n), None) => Some(n),
                (None, _) => return Err(type_error("codemode.types(entry) takes an entry of codemode.find(), with a `name`".into())),
            },
            Some(other) => {
                return Err(type_error(format!(
                    "codemode.types takes a name (\"GET /path\", an operationId or a tool name) or an entry of codemode.find(), not {}",
                    kind_of(other)
                )))
            }
        };
        if let Some(name) = name {
            let apis: Vec<(String, Arc<Spec>)> = self.apis.iter().filter(|(n, _)| (view.target)(n)).cloned().collect();
            if let Some(ts) = crate::tools::operation_types(&apis, name) {
                return Ok(json!(ts));
            }
            if let Some(answer) = self.graphql_types(name, view) {
                return answer;
            }
        }
        match &self.portal {
            Some(p) => p.types_for(name, view.tool, &view.who, view.target).map(|t| json!(t)).map_err(type_error),
            None => Err(type_error(match name {
                Some(n) => format!("no operation `{n}`: pass \"METHOD /path\" as in the spec (e.g. \"GET /<path>\") or an operationId; codemode.find(\"what you want to do\") lists the likely ones"),
                None => "pass an operation: codemode.types(\"GET /path\") or codemode.types(operationId)".into(),
            })),
        }
    }

    /// `types("Query.repository")`, `types("mutation.addComment")`,
    /// `types("Repository")` or `types("github:Query.repository")` for the
    /// visible GraphQL APIs: the first that knows the name answers; when
    /// none does, the error of the first (with its suggestions). `None`:
    /// no visible GraphQL API, or a name that cannot be a coordinate.
    fn graphql_types(&self, name: &str, view: &View<'_>) -> Option<Result<Value, Value>> {
        let (only, wanted) = match name.split_once(':') {
            Some((a, rest)) if self.graphql.iter().any(|(n, _)| n == a) => (Some(a), rest.trim()),
            _ => (None, name.trim()),
        };
        if wanted.contains([' ', '/']) {
            return None;
        }
        let mut first_error = None;
        for (api, g) in &self.graphql {
            if !(view.target)(api) || only.is_some_and(|o| o != api) {
                continue;
            }
            match g.schema.typescript(wanted) {
                Ok(ts) => return Some(Ok(json!(ts))),
                Err(e) => {
                    first_error.get_or_insert_with(|| format!("{api}: {e}"));
                }
            }
        }
        first_error
            .map(|e| Err(type_error(format!("{e} (codemode.find(\"what you want to do\") lists the likely fields)"))))
    }

    /// `codemode.find(query, {limit, api})`: operations and tools ranked by
    /// relevance, best first, as compact entries.
    fn find(&self, query: Option<&Value>, options: Option<&Value>, view: &View<'_>) -> Result<Value, Value> {
        let request = FindRequest::parse(query, options)?;
        let tools = self.tool_index();
        let tool_list = tools.as_ref().map(|(snapshot, _)| snapshot.tools());
        let mut segments: Vec<&Index> = vec![&self.operations.index, &self.fields.index];
        if let Some((_, index)) = &tools {
            segments.push(index);
        }
        let only = request.only.as_deref();
        let keep = |segment: usize, doc: u32| match (segment, tool_list) {
            (0, _) => {
                let (api, _) = self.operations.docs[doc as usize];
                let name = &self.apis[api].0;
                (view.target)(name) && only.is_none_or(|o| o == name)
            }
            (1, _) => {
                let name = &self.graphql[self.fields.docs[doc as usize].0].0;
                (view.target)(name) && only.is_none_or(|o| o == name)
            }
            (_, Some(list)) => {
                let t = &list[doc as usize];
                (view.tool)(t) && only.is_none_or(|o| o == t.server)
            }
            _ => false,
        };
        let hits = codemode_find::search(&segments, &request.query, request.limit, keep);
        let entries = hits
            .into_iter()
            .map(|hit| match (hit.segment, tool_list) {
                (0, _) => self.operations.entry(&self.apis, hit.doc),
                (1, _) => self.fields.entry(&self.graphql, hit.doc),
                (_, Some(list)) => tool_entry(&list[hit.doc as usize]),
                _ => unreachable!("only three segments are searched"),
            })
            .collect();
        Ok(Value::Array(entries))
    }

    /// The tools' index for the portal's current tool list, rebuilt when it
    /// has changed since the last `find`.
    fn tool_index(&self) -> Option<(ToolSnapshot, Arc<Index>)> {
        let snapshot = self.portal.as_ref()?.tools_snapshot();
        let mut cached = self.tools.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((seen, index)) = cached.as_ref() {
            if seen.same(&snapshot) {
                return Some((seen.clone(), index.clone()));
            }
        }
        let index = Arc::new(index_tools(snapshot.tools()));
        *cached = Some((snapshot.clone(), index.clone()));
        Some((snapshot, index))
    }
}

impl SyncHost for Catalog {
    fn call(&self, method: &str, args: Value) -> Result<Value, Value> {
        self.answer(method, args, View { target: &|_| true, tool: &|_| true, who: codemode_upstream::Who::nobody() })
    }
}

/// [`Catalog`] narrowed to what a principal may see: the tools of MCP
/// servers it holds a scope on that its group rules do not refuse, and the
/// types and operations of APIs it holds any scope on.
pub(crate) struct ScopedCatalog {
    pub(crate) inner: Arc<Catalog>,
    pub(crate) principal: Principal,
}

impl SyncHost for ScopedCatalog {
    fn call(&self, method: &str, args: Value) -> Result<Value, Value> {
        let p = &self.principal;
        let tool = |t: &ToolInfo| {
            p.allows_any(&t.server) && self.inner.policy.tool_visible(Some(p), &t.server, &t.tool, &t.name)
        };
        self.inner.answer(method, args, View { target: &|name| p.allows_any(name), tool: &tool, who: p.who() })
    }
}

fn type_error(message: String) -> Value {
    json!({"name": "TypeError", "message": message})
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `find`'s arguments, checked: they come from model code.
struct FindRequest {
    query: Query,
    limit: usize,
    /// `{api}`: one API's operations or one server's tools.
    only: Option<String>,
}

impl FindRequest {
    const DEFAULT_LIMIT: usize = 10;
    const MAX_LIMIT: usize = 50;
    const MAX_QUERY: usize = 1_000;

    fn parse(query: Option<&Value>, options: Option<&Value>) -> Result<Self, Value> {
        let text = match query {
            Some(Value::String(s)) if s.len() <= Self::MAX_QUERY => s,
            Some(Value::String(s)) => {
                return Err(type_error(format!(
                    "codemode.find: the query is {} characters; keep it to a few words (at most {}), e.g. codemode.find(\"create dns record\")",
                    s.chars().count(),
                    Self::MAX_QUERY
                )))
            }
            other => {
                return Err(type_error(format!(
                    "codemode.find takes the words of what you want to do, e.g. codemode.find(\"create dns record\", {{limit: 10}}), not {}",
                    other.map(kind_of).unwrap_or("nothing")
                )))
            }
        };
        let mut limit = Self::DEFAULT_LIMIT;
        let mut only = None;
        match options {
            None | Some(Value::Null) => {}
            Some(Value::Object(o)) => {
                for (key, value) in o {
                    match (key.as_str(), value) {
                        ("limit", Value::Number(n)) => match n.as_u64() {
                            Some(l) if (1..=Self::MAX_LIMIT as u64).contains(&l) => limit = l as usize,
                            _ => {
                                return Err(type_error(format!(
                                    "codemode.find: limit must be a whole number from 1 to {}, not {n}",
                                    Self::MAX_LIMIT
                                )))
                            }
                        },
                        ("api", Value::String(s)) => only = Some(s.clone()),
                        ("limit" | "api", v) => {
                            return Err(type_error(format!(
                                "codemode.find: `{key}` must be a {}, not {}",
                                if key == "limit" { "number" } else { "string (an API or MCP server name)" },
                                kind_of(v)
                            )))
                        }
                        (other, _) => {
                            return Err(type_error(format!(
                            "codemode.find: unknown option `{other}`; the options are {{limit: number, api: string}}"
                        )))
                        }
                    }
                }
            }
            Some(other) => {
                return Err(type_error(format!(
                    "codemode.find: the options are an object {{limit, api}}, not {}",
                    kind_of(other)
                )))
            }
        }
        Ok(Self { query: Query::new(text), limit, only })
    }
}

/// The fields of an indexed operation or tool, in [`FIELDS`] order.
#[derive(Clone, Copy)]
enum Slot {
    /// Operation: the path. Tool: its callable name.
    Name,
    /// Operation: `summary`. Tool: the first sentence of its description.
    Summary,
    /// Operation: `operationId`. Tool: its name at the upstream.
    Id,
    /// Operation: `tags`. Tool: its server.
    Group,
    /// Operation: `description`. Tool: the rest of its description.
    Description,
    /// Parameter names (and a request body's top-level properties).
    Params,
    /// Operation: words for its method (`POST` → create, add, new …).
    Verb,
}

/// Weights chosen on the Cloudflare and GitHub specs: what a person would
/// say first (summary, path) counts most; long descriptions least.
const FIELDS: [Field; 7] = [
    Field { weight: 2.5, b: 0.5, phrase: false },   // Name
    Field { weight: 3.0, b: 0.75, phrase: true },   // Summary
    Field { weight: 2.0, b: 0.5, phrase: true },    // Id
    Field { weight: 1.5, b: 0.5, phrase: false },   // Group
    Field { weight: 1.0, b: 0.75, phrase: false },  // Description
    Field { weight: 0.75, b: 0.75, phrase: false }, // Params
    Field { weight: 1.0, b: 0.0, phrase: false },   // Verb
];

/// Description text indexed per operation: the rest is detail (examples,
/// changelogs) that dilutes more than it finds.
const MAX_DESCRIPTION: usize = 2_000;

/// Ranked operations are shown with a deprecated one a little lower.
const DEPRECATED_BOOST: f32 = 0.8;

/// How a model says what an HTTP method does.
fn verbs(method: &str) -> &'static str {
    match method {
        "GET" => "get list read fetch show retrieve find",
        "POST" => "create add new post send submit",
        "PUT" => "update replace set put upsert",
        "PATCH" => "update edit modify change patch",
        "DELETE" => "delete remove destroy",
        _ => "",
    }
}

/// Every operation of every API in one segment.
struct OperationIndex {
    index: Index,
    /// Document → (API position, operation position in its summary).
    docs: Vec<(usize, usize)>,
    /// Document → whether the operation is `deprecated`.
    deprecated: Vec<bool>,
}

impl OperationIndex {
    fn build(apis: &[(String, Arc<Spec>)]) -> Self {
        let mut builder = IndexBuilder::new(&FIELDS);
        let mut docs = Vec::new();
        let mut deprecated = Vec::new();
        for (a, (_, spec)) in apis.iter().enumerate() {
            let g = &spec.graph;
            let paths = g.get(g.root(), "paths");
            for (o, op) in spec.summary.operations.iter().enumerate() {
                let item = paths.and_then(|p| g.get(p, &op.path));
                let node = item.and_then(|i| g.get(i, &op.method.to_ascii_lowercase()));
                let description = node.and_then(|n| g.get(n, "description")).and_then(|d| g.as_str(d)).unwrap_or("");
                let is_deprecated =
                    node.and_then(|n| g.get(n, "deprecated")).is_some_and(|d| matches!(g.node(d), Node::Bool(true)));
                let mut params = String::new();
                for list in [item.and_then(|i| g.get(i, "parameters")), node.and_then(|n| g.get(n, "parameters"))]
                    .into_iter()
                    .flatten()
                {
                    parameter_names(g, list, &mut params);
                }
                if let Some(body) = node.and_then(|n| g.get(n, "requestBody")) {
                    body_property_names(g, body, &mut params);
                }
                let mut texts = [""; FIELDS.len()];
                texts[Slot::Name as usize] = &op.path;
                texts[Slot::Summary as usize] = op.summary.as_deref().unwrap_or("");
                texts[Slot::Id as usize] = op.operation_id.as_deref().unwrap_or("");
                let tags = op.tags.join(" ");
                texts[Slot::Group as usize] = &tags;
                texts[Slot::Description as usize] = truncate(description, MAX_DESCRIPTION);
                texts[Slot::Params as usize] = &params;
                texts[Slot::Verb as usize] = verbs(&op.method);
                builder.add(&texts, if is_deprecated { DEPRECATED_BOOST } else { 1.0 });
                docs.push((a, o));
                deprecated.push(is_deprecated);
            }
        }
        Self { index: builder.finish(), docs, deprecated }
    }

    /// `{name, api, summary, deprecated?}`: `name` is what `types()` and
    /// `request()` take.
    fn entry(&self, apis: &[(String, Arc<Spec>)], doc: u32) -> Value {
        let (a, o) = self.docs[doc as usize];
        let (api, spec) = &apis[a];
        let op = &spec.summary.operations[o];
        let mut m = Map::new();
        m.insert("name".into(), json!(format!("{} {}", op.method, op.path)));
        m.insert("api".into(), json!(api));
        let summary =
            op.summary.as_deref().filter(|s| !s.trim().is_empty()).map(|s| without_tags(s).trim().to_string()).or_else(
                || {
                    let g = &spec.graph;
                    let node = g.get(g.get(g.get(g.root(), "paths")?, &op.path)?, &op.method.to_ascii_lowercase())?;
                    g.get(node, "description").and_then(|d| g.as_str(d)).map(first_sentence)
                },
            );
        if let Some(s) = summary {
            m.insert("summary".into(), json!(s));
        }
        if self.deprecated[doc as usize] {
            m.insert("deprecated".into(), json!(true));
        }
        Value::Object(m)
    }
}

/// Every field of every GraphQL API in one segment: root fields (what a
/// call starts with) at full weight, the fields of other types lower.
struct FieldIndex {
    index: Index,
    /// Document → (GraphQL API position, the field).
    docs: Vec<(usize, codemode_graphql::FieldEntry)>,
}

/// Fields of non-root types rank below root fields: they are reached
/// through one, never called alone.
const NESTED_FIELD_BOOST: f32 = 0.4;

impl FieldIndex {
    fn build(apis: &[(String, Arc<crate::graphql::GraphqlApi>)]) -> Self {
        let mut builder = IndexBuilder::new(&FIELDS);
        let mut docs = Vec::new();
        for (a, (_, api)) in apis.iter().enumerate() {
            for f in api.schema.fields() {
                let (summary, rest) = split_sentence(&f.description);
                let rest = truncate(rest, MAX_DESCRIPTION);
                let (ty, field) = f.coordinate.split_once('.').unwrap_or((&f.coordinate, ""));
                let args = f.arguments.join(" ");
                let verb = match f.root {
                    Some(codemode_graphql::OperationKind::Query) => verbs("GET"),
                    _ => "",
                };
                let mut texts = [""; FIELDS.len()];
                texts[Slot::Name as usize] = field;
                texts[Slot::Summary as usize] = summary;
                texts[Slot::Id as usize] = &f.ty;
                texts[Slot::Group as usize] = ty;
                texts[Slot::Description as usize] = rest;
                texts[Slot::Params as usize] = &args;
                texts[Slot::Verb as usize] = verb;
                builder.add(&texts, if f.root.is_some() { 1.0 } else { NESTED_FIELD_BOOST });
                docs.push((a, f));
            }
        }
        Self { index: builder.finish(), docs }
    }

    /// `{name, api, kind, type, summary?}`: `name` is what `types()` and
    /// rules take (`mutation.addComment`, or `Repository.issues` for a
    /// field of another type).
    fn entry(&self, apis: &[(String, Arc<crate::graphql::GraphqlApi>)], doc: u32) -> Value {
        let (a, f) = &self.docs[doc as usize];
        let mut m = Map::new();
        let name = match f.root {
            Some(k) => format!("{}.{}", k.as_str(), f.coordinate.split_once('.').map(|(_, n)| n).unwrap_or_default()),
            None => f.coordinate.clone(),
        };
        m.insert("name".into(), json!(name));
        m.insert("api".into(), json!(apis[*a].0));
        m.insert("kind".into(), json!(f.root.map(|k| k.as_str()).unwrap_or("field")));
        m.insert("type".into(), json!(f.ty));
        if !f.description.trim().is_empty() {
            m.insert("summary".into(), json!(first_sentence(&f.description)));
        }
        Value::Object(m)
    }
}

/// The names of an OpenAPI `parameters` list, space-separated into `out`.
fn parameter_names(g: &Graph, list: NodeId, out: &mut String) {
    if let Node::Array(params) = g.node(g.deref(list)) {
        for &p in params.iter() {
            if let Some(name) = g.get(p, "name").and_then(|n| g.as_str(n)) {
                out.push_str(name);
                out.push(' ');
            }
        }
    }
}

/// The top-level property names of a request body's first schema.
fn body_property_names(g: &Graph, body: NodeId, out: &mut String) {
    let Some(content) = g.get(body, "content") else { return };
    let Node::Object(types) = g.node(content) else { return };
    let Some((_, media)) = types.iter().find(|(k, _)| k.contains("json")).or_else(|| types.first()) else { return };
    let Some(props) = g.get(*media, "schema").and_then(|s| g.get(s, "properties")) else { return };
    if let Node::Object(props) = g.node(props) {
        for (name, _) in props.iter().take(50) {
            out.push_str(name);
            out.push(' ');
        }
    }
}

/// The index of the portal's tools, fields as for operations.
fn index_tools(tools: &[ToolInfo]) -> Index {
    let mut builder = IndexBuilder::new(&FIELDS);
    for t in tools {
        let (summary, rest) = split_sentence(t.description.as_deref().unwrap_or(""));
        let rest = truncate(rest, MAX_DESCRIPTION);
        let mut params = String::new();
        if let Some(Value::Object(props)) = t.input_schema.get("properties") {
            for name in props.keys().take(50) {
                params.push_str(name);
                params.push(' ');
            }
        }
        let mut texts = [""; FIELDS.len()];
        texts[Slot::Name as usize] = &t.name;
        texts[Slot::Summary as usize] = summary;
        texts[Slot::Id as usize] = &t.tool;
        texts[Slot::Group as usize] = &t.server;
        texts[Slot::Description as usize] = rest;
        texts[Slot::Params as usize] = &params;
        builder.add(&texts, 1.0);
    }
    builder.finish()
}

/// `{name, server, summary?}`: `name` is what `codemode.<name>(args)` and
/// `types()` take.
fn tool_entry(t: &ToolInfo) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), json!(t.name));
    m.insert("server".into(), json!(t.server));
    if let Some(d) = t.description.as_deref().filter(|d| !d.trim().is_empty()) {
        m.insert("summary".into(), json!(first_sentence(d)));
    }
    Value::Object(m)
}

/// The first sentence of `text` (or its first 160 characters): what an
/// entry shows when there is no summary.
fn first_sentence(text: &str) -> String {
    let plain = without_tags(text);
    let (sentence, _) = split_sentence(&plain);
    match sentence.char_indices().nth(160) {
        Some((i, _)) => format!("{}…", &sentence[..i]),
        None => sentence.to_string(),
    }
}

/// `text` without HTML tags (Stripe writes `<p>Creates a PaymentIntent.</p>`).
fn without_tags(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains('<') {
        return text.into();
    }
    let mut out = String::with_capacity(text.len());
    let mut in_tag = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            // A tag opens with a letter or `/`: `a < b` stays.
            '<' if !in_tag && chars.peek().is_some_and(|n| n.is_ascii_alphabetic() || *n == '/') => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.into()
}

/// `text`, trimmed, split after its first sentence (a full stop before
/// white space, or the end of the first line).
fn split_sentence(text: &str) -> (&str, &str) {
    let text = text.trim();
    let end = text
        .char_indices()
        .find(|&(i, c)| c == '\n' || (c == '.' && text[i + 1..].starts_with(char::is_whitespace)))
        .map(|(i, c)| if c == '.' { i + 1 } else { i })
        .unwrap_or(text.len());
    (&text[..end], &text[end..])
}

/// At most `max` bytes of `text`, cut at a character boundary.
fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(file: &str) -> Arc<Spec> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/specs").join(file);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Arc::new(codemode_spec::load_from_value(&path.to_string_lossy(), serde_json::from_str(&text).unwrap()))
    }

    fn catalog(apis: &[(&str, &str)]) -> Catalog {
        let apis = apis.iter().map(|(name, file)| (name.to_string(), spec(file))).collect();
        Catalog::new(None, apis, vec![], Arc::new(codemode_pipeline::Policy::default()))
    }

    fn find(c: &Catalog, args: Value) -> Result<Value, Value> {
        c.call("find", args)
    }

    fn names(v: &Value) -> Vec<&str> {
        v.as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect()
    }

    #[test]
    fn github_create_an_issue_comment_comes_first() {
        let c = catalog(&[("github", "github-octokit-23.0.2.api.github.com.json")]);
        let hits = find(&c, json!(["create an issue comment"])).unwrap();
        assert_eq!(names(&hits)[0], "POST /repos/{owner}/{repo}/issues/{issue_number}/comments", "{hits:#}");
        assert_eq!(hits.as_array().unwrap().len(), 10, "the default limit");
        assert_eq!(hits[0]["api"], "github");
        assert_eq!(hits[0]["summary"], "Create an issue comment");
        // The entry's name is what `types` takes, as is the entry itself.
        let ts = c.call("types", json!([hits[0].clone()])).unwrap();
        assert!(ts.as_str().unwrap().contains("issue_number"), "{ts}");
    }

    #[test]
    fn cloudflare_waf_rules_for_a_zone_finds_the_blogs_waf_and_ruleset_operations() {
        let c = catalog(&[("cloudflare", "cloudflare-2024-08-06.openapi.json")]);
        let hits = find(&c, json!(["waf rules for a zone"])).unwrap();
        let top = names(&hits);
        assert_eq!(top.len(), 10);
        // The blog's search: zone paths under firewall/waf or rulesets.
        let blogs = |n: &&str| n.contains("/zones/") && (n.contains("/firewall/waf") || n.contains("/rulesets"));
        assert!(top.iter().all(blogs), "{top:#?}");
        let rulesets = names(&find(&c, json!(["zone rulesets", {"limit": 5}])).unwrap()).join(" | ");
        assert!(rulesets.matches("/zones/{zone_id}/rulesets").count() >= 3, "{rulesets}");
        let dns = names(&find(&c, json!(["create dns record", {"limit": 3}])).unwrap()).join(" | ");
        assert!(dns.starts_with("POST /zones/{zone_id}/dns_records"), "{dns}");
    }

    #[test]
    fn options_are_checked_with_the_fix_in_the_message() {
        let c = catalog(&[("httpbin", "httpbin-0.10.4.spec.json")]);
        let message = |args: Value| find(&c, args).unwrap_err()["message"].as_str().unwrap().to_string();
        assert!(message(json!([])).contains("codemode.find(\"create dns record\""));
        assert!(message(json!([42])).contains("not a number"));
        assert!(message(json!(["x", {"limit": 0}])).contains("from 1 to 50"));
        assert!(message(json!(["x", {"limit": 2.5}])).contains("whole number"));
        assert!(message(json!(["x", {"limit": "5"}])).contains("must be a number"));
        assert!(message(json!(["x", {"top": 5}])).contains("unknown option `top`"));
        assert!(message(json!(["x", [1]])).contains("an object {limit, api}"));
        assert!(message(json!(["x".repeat(5000)])).contains("5000 characters"));
        assert_eq!(find(&c, json!(["the of and"])).unwrap(), json!([]), "nothing searchable, nothing found");
        assert!(c.call("types", json!([7])).unwrap_err()["message"].as_str().unwrap().contains("not a number"));
    }

    #[test]
    fn several_apis_one_ranking_narrowed_by_api_and_by_view() {
        let c = catalog(&[("httpbin", "httpbin-0.10.4.spec.json"), ("kinto", "kinto-26.5.0.swagger.json")]);
        let all = find(&c, json!(["delete", {"limit": 50}])).unwrap();
        let apis: std::collections::BTreeSet<&str> =
            all.as_array().unwrap().iter().map(|e| e["api"].as_str().unwrap()).collect();
        assert_eq!(apis.len(), 2, "{all:#}");
        let kinto = find(&c, json!(["delete", {"limit": 50, "api": "kinto"}])).unwrap();
        assert!(kinto.as_array().unwrap().iter().all(|e| e["api"] == "kinto"));
        let hidden = c
            .answer(
                "find",
                json!(["delete", {"limit": 50}]),
                View { target: &|n| n == "httpbin", tool: &|_| true, who: codemode_upstream::Who::nobody() },
            )
            .unwrap();
        assert!(
            hidden.as_array().unwrap().iter().all(|e| e["api"] == "httpbin"),
            "an API the caller cannot see is not found"
        );
        // Each entry's name takes types() to the right API.
        let first = &kinto[0];
        assert!(c.call("types", json!([first])).is_ok(), "{first}");
    }

    #[test]
    fn sentences() {
        assert_eq!(
            split_sentence("  Echoes the input. Then more.\nAnd more"),
            ("Echoes the input.", " Then more.\nAnd more")
        );
        assert_eq!(first_sentence("v1.2 is out\nsecond"), "v1.2 is out");
        assert_eq!(first_sentence(&"é".repeat(300)).chars().count(), 161);
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(
            first_sentence("<p>Creates a <b>PaymentIntent</b> object.</p> More."),
            "Creates a PaymentIntent object."
        );
        assert_eq!(without_tags("a < b, <br/>c"), "a < b, c");
    }
}
