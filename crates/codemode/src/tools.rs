//! The model-facing contract: the two tools, their descriptions (generated
//! from the configured APIs) and their schemas.
//!
//! Kept close to Cloudflare's Code Mode server, which models already know:
//! `{code}` in, an async arrow function, `spec` for search, a client with
//! `request(...)` for execute. Descriptions stay within ~1,000 o200k tokens
//! for one API and grow by one line per extra API.

use serde_json::{json, Map, Value};

use crate::service::LoadedApi;

/// Which of the two tools.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToolKind {
    /// Code against the specs and the tool list.
    Search,
    /// Code that calls the APIs and tools.
    Execute,
}

impl ToolKind {
    /// The canonical name (audit records, logs, spans), whatever the tool is
    /// called for clients.
    pub fn as_str(self) -> &'static str {
        match self {
            ToolKind::Search => "search",
            ToolKind::Execute => "execute",
        }
    }
}

/// What the two tools are called for clients (`[tools] search_name`,
/// `execute_name`).
#[derive(Clone, Debug)]
pub struct ToolNames {
    /// The search tool's name.
    pub search: String,
    /// The execute tool's name.
    pub execute: String,
}

impl Default for ToolNames {
    fn default() -> Self {
        ToolNames { search: "search".into(), execute: "execute".into() }
    }
}

impl ToolNames {
    /// The tool a client's name stands for.
    pub fn kind_of(&self, name: &str) -> Option<ToolKind> {
        if name == self.search {
            Some(ToolKind::Search)
        } else if name == self.execute {
            Some(ToolKind::Execute)
        } else {
            None
        }
    }

    /// `text` with the default names, in backticks, replaced by these.
    pub fn apply(&self, text: &str) -> String {
        if self.search == "search" && self.execute == "execute" {
            return text.to_string();
        }
        text.replace("`search`", &format!("`{}`", self.search)).replace("`execute`", &format!("`{}`", self.execute))
    }
}

/// Name, title and description of one tool, plus its annotations.
#[derive(Clone, Debug)]
pub struct ToolDef {
    /// Its name for clients.
    pub name: String,
    /// Its input schema.
    pub input_schema: Map<String, Value>,
    /// Human title.
    pub title: &'static str,
    /// Description shown to the model.
    pub description: String,
    /// `readOnlyHint`.
    pub read_only: bool,
    /// `destructiveHint`.
    pub destructive: bool,
    /// `idempotentHint`.
    pub idempotent: bool,
    /// `openWorldHint`.
    pub open_world: bool,
}

/// The input schema of a tool: one `code` string, with an example written
/// against the configured APIs (or servers), never a made-up one.
pub fn input_schema(tool: ToolKind, apis: &[LoadedApi], servers: &[String]) -> Map<String, Value> {
    let first = apis.first();
    let what = match (tool, first) {
        (ToolKind::Search, Some(a)) if a.graphql.is_some() => {
            let schema = if apis.len() == 1 { "schema".to_string() } else { format!("schemas.{}", a.name) };
            format!("JavaScript async arrow function to run against the GraphQL schema, e.g. `async () => Object.keys({schema}.queryType.fields)`")
        }
        (ToolKind::Execute, Some(a)) if a.graphql.is_some() => format!(
            "JavaScript async arrow function that calls the API and returns what you need, e.g. `async () => (await {}.graphql('{{ __typename }}')).data`",
            a.name
        ),
        (ToolKind::Search, Some(a)) => {
            let spec = if apis.len() == 1 { "spec".to_string() } else { format!("specs.{}", a.name) };
            let word = a.spec.summary.top_groups(1).into_iter().next().map(|(g, _)| g).unwrap_or_else(|| "a".into());
            format!(
                "JavaScript async arrow function to run against the spec, e.g. `async () => Object.keys({spec}.paths).filter(p => p.includes('{}'))`",
                word.to_lowercase().replace(['\'', '\\'], "")
            )
        }
        (ToolKind::Search, None) => {
            "JavaScript async arrow function to run against the tool list, e.g. `async () => codemode.tools().map(t => t.name)`".into()
        }
        (ToolKind::Execute, Some(a)) => {
            let ops = &a.spec.summary.operations;
            let op = ops.iter().find(|o| o.method == "GET" && !o.path.contains('{')).or_else(|| ops.first());
            let route = op.map(|o| format!("{} {}", o.method, o.path)).unwrap_or_else(|| "GET /".into());
            format!(
                "JavaScript async arrow function that calls the API and returns what you need, e.g. `async () => (await {}.request('{route}')).data`",
                a.name
            )
        }
        (ToolKind::Execute, None) => format!(
            "JavaScript async arrow function that calls the tools and returns what you need, e.g. `async () => await codemode.{}_<tool>({{}})`",
            servers.first().map(String::as_str).unwrap_or("server")
        ),
    };
    match json!({
        "type": "object",
        "properties": {"code": {"type": "string", "description": what}},
        "required": ["code"],
        "additionalProperties": false
    }) {
        Value::Object(m) => m,
        _ => unreachable!(),
    }
}

/// Both tool definitions for the configured APIs and MCP servers.
pub fn tool_defs(
    apis: &[LoadedApi],
    servers: &[String],
    max_output_tokens: usize,
    max_requests: u32,
    names: &ToolNames,
) -> Vec<ToolDef> {
    // Upstream MCP tools may do anything: with servers connected, execute is
    // as destructive as they are.
    let any_writes = apis.iter().any(|a| a.allow_writes) || !servers.is_empty();
    vec![
        ToolDef {
            name: names.search.clone(),
            input_schema: input_schema(ToolKind::Search, apis, servers),
            title: match (apis.is_empty(), servers.is_empty()) {
                (false, true) => "Search the API spec",
                (true, _) => "Search the MCP tools",
                (false, false) => "Search the API specs and MCP tools",
            },
            description: names.apply(&search_description(apis, servers, max_output_tokens)),
            read_only: true,
            destructive: false,
            idempotent: true,
            open_world: false,
        },
        ToolDef {
            name: names.execute.clone(),
            input_schema: input_schema(ToolKind::Execute, apis, servers),
            title: match (apis.is_empty(), servers.is_empty()) {
                (false, true) => "Call the API",
                (true, _) => "Call the MCP tools",
                (false, false) => "Call the APIs and MCP tools",
            },
            description: names.apply(&execute_description(apis, servers, max_output_tokens, max_requests)),
            read_only: !any_writes,
            destructive: any_writes,
            idempotent: false,
            open_world: true,
        },
    ]
}

fn api_line(a: &LoadedApi) -> String {
    let s = &a.spec.summary;
    let groups: Vec<String> = s.top_groups(12).into_iter().map(|(g, _)| g).collect();
    let title = if s.title.is_empty() { a.name.clone() } else { s.title.clone() };
    format!("{} ({}, {} operations): {}", a.name, title, s.operations.len(), groups.join(", "))
}

fn search_description(apis: &[LoadedApi], servers: &[String], max_tokens: usize) -> String {
    let graphql: Vec<&LoadedApi> = apis.iter().filter(|a| a.graphql.is_some()).collect();
    if !graphql.is_empty() {
        let mut d = if graphql.len() == apis.len() {
            String::new()
        } else {
            let openapi: Vec<&LoadedApi> = apis.iter().filter(|a| a.graphql.is_none()).collect();
            openapi_search_description(&openapi, false, &[], max_tokens) + "\n\n"
        };
        d.push_str(&graphql_search_description(&graphql, apis.len() == 1, max_tokens));
        if !servers.is_empty() {
            d.push_str(&format!("\nMCP servers: {}.\n```ts\n{PORTAL_SEARCH_TS}\n```", servers.join(", ")));
        }
        return d;
    }
    if apis.is_empty() {
        return format!(
            "Discover the tools of the connected MCP servers ({}) by writing JavaScript or TypeScript (types stripped, not checked): an async arrow function whose return value is the result.\n\n```ts\n{}\n```\nExamples:\n// the tools for a task, best first\nasync () => codemode.find(\"read a file\", {{ limit: 5 }})\n// tools whose name or description mentions a word\nasync () => codemode.tools().filter(t => (t.name + t.description).includes(\"file\")).map(t => ({{ name: t.name, description: t.description }}))\n// the TypeScript signature of one tool\nasync () => codemode.types(\"{}\")\n\nReturn only what you need: results over {max_tokens} tokens are shortened. Then call them with `execute`.",
            servers.join(", "),
            PORTAL_SEARCH_TS,
            servers.first().map(|s| format!("{s}_<tool>")).unwrap_or_default()
        );
    }
    let all: Vec<&LoadedApi> = apis.iter().collect();
    openapi_search_description(&all, apis.len() == 1, servers, max_tokens)
}

/// The `search` description for OpenAPI APIs (`single`: the only API, so
/// `spec` is defined).
fn openapi_search_description(apis: &[&LoadedApi], single: bool, servers: &[String], max_tokens: usize) -> String {
    let mut d = String::new();
    if single {
        let a = &apis[0];
        let s = &a.spec.summary;
        let groups: Vec<String> = s.top_groups(14).into_iter().map(|(g, _)| g).collect();
        d.push_str(&format!(
            "Search the {} OpenAPI spec ({} operations) by writing JavaScript or TypeScript (types stripped, not checked). Every $ref is resolved inline; a schema that recurses into itself shows {{\"$circular\": \"<ref>\"}}.\n\nTop areas: {}\n",
            if s.title.is_empty() { &a.name } else { &s.title },
            s.operations.len(),
            groups.join(", ")
        ));
    } else {
        d.push_str("Search the OpenAPI specs of these APIs by writing JavaScript or TypeScript (types stripped, not checked). Every $ref is resolved inline; a schema that recurses into itself shows {\"$circular\": \"<ref>\"}.\n\n");
        for a in apis {
            d.push_str(&format!("- {}\n", api_line(a)));
        }
    }
    let globals = if single {
        format!("declare const spec: OpenAPI; // the {} spec; also specs.{}", apis[0].name, apis[0].name)
    } else {
        format!(
            "declare const specs: {{ {} }};",
            apis.iter().map(|a| format!("{}: OpenAPI", a.name)).collect::<Vec<_>>().join("; ")
        )
    };
    let s = if single {
        "spec".to_string()
    } else {
        format!("specs.{}", apis.first().map(|a| a.name.as_str()).unwrap_or("api"))
    };
    let sample = apis.first().and_then(|a| {
        let ops = &a.spec.summary.operations;
        ops.iter().find(|o| o.method == "POST").or_else(|| ops.first())
    });
    let (sample_path, sample_method) =
        sample.map(|o| (o.path.clone(), o.method.to_ascii_lowercase())).unwrap_or_else(|| ("/".into(), "get".into()));
    let sample_query = sample.map(find_example).unwrap_or_else(|| "list".into());
    // With MCP servers, `codemode` is declared in full below.
    let find_ts = if servers.is_empty() { format!("{FIND_TS}\n") } else { String::new() };
    d.push_str(&format!(
        r#"
```ts
{globals}
interface OpenAPI {{ paths: Record<string, Record<"get" | "post" | "put" | "patch" | "delete", Operation>>; components?: {{ schemas?: Record<string, Schema> }} }}
interface Operation {{ summary?: string; description?: string; operationId?: string; tags?: string[]; parameters?: {{ name: string; in: "path" | "query" | "header"; required?: boolean; schema: Schema }}[]; requestBody?: {{ content: Record<string, {{ schema: Schema }}> }}; responses: Record<string, {{ description: string; content?: Record<string, {{ schema: Schema }}> }}> }}
{find_ts}```
Examples:
// operations for a task, best first
async () => codemode.find("{sample_query}", {{ limit: 5 }})
// one operation's parameters, request body and responses
async () => {s}.paths["{sample_path}"].{sample_method}

Return only what you need: results over {max_tokens} tokens are shortened. Then call `execute`."#
    ));
    if !servers.is_empty() {
        d.push_str(&format!("\nMCP servers: {}.\n```ts\n{PORTAL_SEARCH_TS}\n```", servers.join(", ")));
    }
    d
}

/// `codemode.find` and `types` of `search` with APIs (portal mode declares
/// them in [`PORTAL_SEARCH_TS`]).
const FIND_TS: &str = "declare const codemode: {\n  find(query: string, options?: { limit?: number; api?: string }): { name: string; api: string; summary?: string }[]; // name: \"METHOD /path\"\n  types(name: string | { name: string }): string; // an operation (or find() entry) as TypeScript\n};";

/// A few words of a real operation's summary (else of its path), for the
/// `find` example: the example then finds something in this API.
fn find_example(op: &codemode_spec::Operation) -> String {
    let words: Vec<String> = op
        .summary
        .as_deref()
        .unwrap_or(&op.path)
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(4)
        .map(str::to_lowercase)
        .collect();
    if words.is_empty() {
        "list".into()
    } else {
        words.join(" ")
    }
}

/// The `codemode` global of `search` in portal mode.
const PORTAL_SEARCH_TS: &str = "declare const codemode: {\n  find(query: string, options?: { limit?: number; api?: string }): { name: string; api?: string; server?: string; summary?: string }[]; // operations and tools, best first\n  tools(): { name: string; server: string; description?: string; inputSchema: object; outputSchema?: object; annotations?: object }[]; // call: codemode.<name>(args) in execute\n  types(name?: string | { name: string; api?: string }): string; // TypeScript of a tool, a \"GET /path\" operation (or a find() entry), or all tools\n  status(): { server: string; state: \"ready\" | \"connecting\" | \"reconnecting\" | \"down\" | \"needs_sign_in\" | \"stopped\"; tools: number; error?: string }[]; // servers not listed by tools() are here\n};";

/// The `search` description for GraphQL APIs (`single`: the only API, so
/// `schema` is defined).
fn graphql_search_description(apis: &[&LoadedApi], single: bool, max_tokens: usize) -> String {
    let mut d = String::from("Search the GraphQL schemas by writing JavaScript or TypeScript (types stripped, not checked): an async arrow function whose return value is the result. Types link to each other (`field.named` is the field's type); where a path comes back to a type it already passed, it shows {\"$circular\": \"#/types/<Name>\"}: read `types[<Name>]` from there.\n\n");
    for a in apis {
        if let Some(g) = &a.graphql {
            let count = |k| g.schema.fields().iter().filter(|f| f.root == Some(k)).count();
            d.push_str(&format!(
                "- {} (GraphQL, {} query fields, {} mutations)\n",
                a.name,
                count(codemode_graphql::OperationKind::Query),
                count(codemode_graphql::OperationKind::Mutation)
            ));
        }
    }
    let globals = if single {
        format!("declare const schema: Schema; // the {} schema; also schemas.{}", apis[0].name, apis[0].name)
    } else {
        format!(
            "declare const schemas: {{ {} }};",
            apis.iter().map(|a| format!("{}: Schema", a.name)).collect::<Vec<_>>().join("; ")
        )
    };
    let s = if single { "schema".to_string() } else { format!("schemas.{}", apis[0].name) };
    d.push_str(&format!(
        r#"
```ts
{globals}
interface Schema {{ queryType: Type; mutationType: Type | null; types: Record<string, Type> }}
interface Type {{ name: string; kind: "OBJECT" | "INTERFACE" | "UNION" | "ENUM" | "INPUT_OBJECT" | "SCALAR"; description: string | null; fields?: Record<string, Field>; inputFields?: Record<string, Arg>; enumValues?: Record<string, {{ name: string; description: string | null; isDeprecated: boolean }}>; interfaces?: Type[]; possibleTypes?: Type[] }}
interface Field {{ name: string; description: string | null; type: string /* SDL: "[Issue!]!" */; named: Type; args: Record<string, Arg>; isDeprecated: boolean; deprecationReason?: string }}
interface Arg {{ name: string; description: string | null; type: string; named: Type; defaultValue?: string }}
declare const codemode: {{
  find(query: string, options?: {{ limit?: number; api?: string }}): {{ name: string; api: string; kind: "query" | "mutation" | "field"; type: string; summary?: string }}[]; // name: "mutation.addComment"
  types(name: string | {{ name: string; api?: string }}): string; // "Query.repository", "mutation.addComment" or a type name, as TypeScript
}};
```
Examples:
// fields for a task, best first
async () => codemode.find("add a comment", {{ limit: 5 }})
// a root field's arguments and result type as TypeScript
async () => codemode.types("{sample}")
// the mutations whose name mentions a word
async () => Object.keys({s}.mutationType?.fields ?? {{}}).filter(n => /comment/i.test(n))

Return only what you need: results over {max_tokens} tokens are shortened. Then call `execute`."#,
        sample = apis[0]
            .graphql
            .as_ref()
            .and_then(|g| g.schema.fields().into_iter().next())
            .map(|f| f.coordinate)
            .unwrap_or_else(|| "Query".into())
    ));
    d
}

/// The GraphQL part of the `execute` description.
fn graphql_execute_description(apis: &[&LoadedApi], single: bool) -> String {
    let mut d = String::from("```ts\n");
    for a in apis {
        d.push_str(&format!(
            "declare const {}: GraphQLClient; // {}, {}{}\n",
            a.name,
            a.upstream.config().base_url,
            if a.allow_writes { "queries and mutations" } else { "read-only: queries only" },
            if single { "; also `api`" } else { "" }
        ));
    }
    d.push_str(r#"interface GraphQLClient {
  // The document is validated against the schema before it is sent (errors name the field and suggest the closest).
  graphql(query: string, variables?: Record<string, unknown>, options?: { operationName?: string; partial?: boolean }): Promise<{ data: any; errors?: GraphQLError[]; extensions?: object }>;
}
interface GraphQLError { message: string; path?: (string | number)[]; locations?: { line: number; column: number }[] }
```
GraphQL errors reject with a GraphQLError whose `errors` (and `data`) carry the server's answer, unless `{ partial: true }` asks for both as the result. Subscriptions are not supported; depth and size of one operation are limited. A refused call rejects with a PolicyError or ScopeError saying why.
"#);
    d
}

fn execute_description(apis: &[LoadedApi], servers: &[String], max_tokens: usize, max_requests: u32) -> String {
    let graphql: Vec<&LoadedApi> = apis.iter().filter(|a| a.graphql.is_some()).collect();
    if !graphql.is_empty() && graphql.len() == apis.len() {
        let single = apis.len() == 1;
        let mut d = String::from("Call the API by writing JavaScript or TypeScript (types stripped, not checked): an async arrow function; its return value is the result. Use `search` first to find fields and their arguments.\n\n");
        if !servers.is_empty() {
            d.push_str(&format!(
                "```ts\ndeclare const codemode: Record<string, (args: object) => Promise<any>>; // codemode.<server>_<tool>(args) for the MCP servers {}; a tool error rejects\n```\n",
                servers.join(", ")
            ));
        }
        d.push_str(&graphql_execute_description(&graphql, single));
        let a = graphql[0];
        let client = if single { "api" } else { a.name.as_str() };
        let (doc, vars) = a
            .graphql
            .as_ref()
            .and_then(|g| g.schema.example_query())
            .unwrap_or_else(|| ("{ __typename }".into(), vec![]));
        let vars = if vars.is_empty() {
            String::new()
        } else {
            format!(", {{ {} }}", vars.iter().map(|v| format!("{v}: \"...\"")).collect::<Vec<_>>().join(", "))
        };
        d.push_str(&format!(
            "At most {max_requests} calls per run; `Promise.all` runs them in parallel; console.log output is returned too. Results over {max_tokens} tokens are shortened.\n\nExample:\nasync () => {{\n  try {{\n    return (await {client}.graphql({}{vars})).data;\n  }} catch (e) {{\n    return e.errors; // the server's GraphQL errors\n  }}\n}}",
            Value::String(doc)
        ));
        return d;
    }
    let single = apis.len() == 1;
    let mut d = String::from(if apis.is_empty() {
        "Call the tools of the connected MCP servers by writing JavaScript or TypeScript (types stripped, not checked): an async arrow function; its return value is the result. Use `search` first to find tools and their parameters.\n\n```ts\n"
    } else {
        "Call the API by writing JavaScript or TypeScript (types stripped, not checked): an async arrow function; its return value is the result. Use `search` first to find operations and their parameters.\n\n```ts\n"
    });
    if !servers.is_empty() {
        d.push_str(&format!(
            "declare const codemode: Record<string, (args: object) => Promise<any>>; // codemode.<server>_<tool>(args) for the MCP servers {}; a tool error rejects\n",
            servers.join(", ")
        ));
    }
    if apis.is_empty() {
        d.push_str(&format!(
            "```\n`Promise.all` runs calls in parallel; console.log output is returned too. Results over {max_tokens} tokens are shortened.\n\nExample:\nasync () => {{\n  const tools = [\"{}\"];\n  return await codemode[tools[0]]({{}});\n}}",
            servers.first().map(|s| format!("{s}_<tool>")).unwrap_or_default()
        ));
        return d;
    }
    for a in apis.iter().filter(|a| a.graphql.is_none()) {
        let c = a.upstream.config();
        d.push_str(&format!(
            "declare const {}: Client; // {}, {}{}\n",
            a.name,
            c.base_url,
            if a.allow_writes { "read-write" } else { "read-only: GET/HEAD only" },
            if single { "; also `api`" } else { "" }
        ));
    }
    d.push_str(
        r#"interface Client {
  request(req: { method?: string; path: string; query?: Record<string, string | number | boolean | Array<string | number>>; body?: unknown; headers?: Record<string, string>; contentType?: string; rawBody?: string | Uint8Array; form?: Record<string, string | { data: Uint8Array; filename?: string }> }): Promise<Response>;
  // route form: path parameters are filled in; other params go to the query (GET/HEAD/DELETE) or the JSON body
  request(route: string, params?: Record<string, unknown>): Promise<Response>;
}
interface Response { status: number; headers: Record<string, string>; data: any }
```
A non-2xx answer rejects with an Error {status, method, path, data}; credentials are added by the host. A refused call rejects with a PolicyError or ScopeError saying why (retrying will not help); one that needs approval waits for it (ApprovalDenied if refused); catch these to go on. "#,
    );
    d.push_str(&format!(
        "At most {max_requests} requests per call; `Promise.all` runs them in parallel; console.log output is returned too. Results over {max_tokens} tokens are shortened.\n\nExample:\n"
    ));
    if !graphql.is_empty() {
        d.push_str(&graphql_execute_description(&graphql, false));
    }
    let Some(a) = apis.iter().find(|a| a.graphql.is_none()) else { return d };
    let example = example_route(a);
    let client = if single { "api" } else { a.name.as_str() };
    d.push_str(&format!("async () => {{\n  const r = await {client}.request(\"{example}\");\n  return r.data;\n}}"));
    d
}

/// A real GET operation of the API for the example: the one with the fewest
/// path parameters, then the shortest path.
fn example_route(a: &LoadedApi) -> String {
    let ops = &a.spec.summary.operations;
    ops.iter()
        .filter(|o| o.method == "GET")
        .min_by_key(|o| (o.path.matches('{').count(), o.path.len()))
        .map(|o| format!("GET {}", o.path))
        .unwrap_or_else(|| "GET /".into())
}

/// One upstream server as `codemode.status()` shows it: `state` one word,
/// `error` one sentence (a transport error chain reduced to its first and
/// last links), never Rust's `Debug`.
pub fn status_json(st: &codemode_portal::ServerStatus) -> Value {
    use codemode_portal::ServerState::*;
    let (state, error) = match &st.state {
        Connecting => ("connecting", None),
        Ready => ("ready", None),
        Failed(e) => ("down", Some(sentence(e))),
        Reconnecting { last_error, .. } => ("reconnecting", Some(sentence(last_error))),
        // The whole message: it names the command that fixes it.
        NeedsSignIn(message) => ("needs_sign_in", Some(message.clone())),
        // Authenticated per user, and this principal has no session yet:
        // its tools are listed (and its session opened) by tools()/types(),
        // or by its first call.
        PerPrincipal { .. } => ("per_user", None),
        Stopped => ("stopped", None),
    };
    let mut v = json!({"server": st.name, "state": state, "tools": st.tools});
    if let Some(e) = error {
        v["error"] = json!(e);
    }
    if !st.problems.is_empty() {
        v["problems"] = json!(st.problems);
    }
    v
}

/// `a: b: c: d (os error 111)` → `a: d`.
fn sentence(chain: &str) -> String {
    let trimmed = match chain.rfind(" (os error ") {
        Some(i) if chain.ends_with(')') => &chain[..i],
        _ => chain,
    };
    let links: Vec<&str> = trimmed.split(": ").filter(|l| !l.trim().is_empty()).collect();
    match links.as_slice() {
        [] => chain.trim().to_string(),
        [one] => one.trim().to_string(),
        [first, .., last] => format!("{}: {}", first.trim(), last.trim()),
    }
}

/// One portal tool as `codemode.tools()` shows it.
pub fn tool_json(t: &codemode_portal::ToolInfo) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), json!(t.name));
    m.insert("server".into(), json!(t.server));
    if let Some(d) = &t.description {
        m.insert("description".into(), json!(d));
    }
    m.insert("inputSchema".into(), t.input_schema.clone());
    if let Some(o) = &t.output_schema {
        m.insert("outputSchema".into(), o.clone());
    }
    if let Some(a) = &t.annotations {
        m.insert("annotations".into(), a.clone());
    }
    if let Some(p) = &t.schema_problem {
        m.insert("schemaProblem".into(), json!(p));
    }
    Value::Object(m)
}

/// TypeScript declarations of an OpenAPI operation's parameters, body and
/// success response, for `codemode.types("GET /path")` (or an operationId;
/// prefix `api:` to pick an API when several are configured).
pub fn operation_types(apis: &[(String, std::sync::Arc<codemode_spec::Spec>)], name: &str) -> Option<String> {
    let (only_api, wanted) = match name.split_once(':') {
        Some((a, rest)) if apis.iter().any(|(n, _)| n == a) => (Some(a), rest.trim()),
        _ => (None, name.trim()),
    };
    for (api, spec) in apis {
        if only_api.is_some_and(|a| a != api) {
            continue;
        }
        let Some(op) = spec.summary.operations.iter().find(|o| {
            o.operation_id.as_deref() == Some(wanted) || format!("{} {}", o.method, o.path).eq_ignore_ascii_case(wanted)
        }) else {
            continue;
        };
        let g = &spec.graph;
        let item = g.get(g.get(g.root(), "paths")?, &op.path)?;
        let node = g.get(item, &op.method.to_ascii_lowercase())?;
        let base = type_base(op);
        let bounded = |id| {
            let mut budget = 5_000;
            let mut v = g.to_value_bounded(id, &mut budget);
            // A cut reference would read as a local `$ref` to the TypeScript writer.
            codemode_spec::graph::replace_truncated(
                &mut v,
                &|r| json!({"description": format!("{r}: not expanded here (this type is over 5,000 nodes); read it with search")}),
            );
            v
        };
        let mut properties = Map::new();
        let mut required = Vec::new();
        for list in [g.get(item, "parameters"), g.get(node, "parameters")].into_iter().flatten() {
            if let codemode_spec::Node::Array(params) = g.node(list) {
                for p in params.iter() {
                    let p = bounded(*p);
                    let Some(pname) = p.get("name").and_then(Value::as_str) else { continue };
                    let mut schema = p.get("schema").cloned().unwrap_or(json!({}));
                    if let (Some(d), Value::Object(m)) = (p.get("description"), &mut schema) {
                        m.insert("description".into(), d.clone());
                    }
                    if p.get("required") == Some(&json!(true)) {
                        required.push(json!(pname));
                    }
                    properties.insert(pname.to_string(), schema);
                }
            }
        }
        let mut out = format!(
            "// {} {}{}\n",
            op.method,
            op.path,
            op.summary.as_deref().map(|s| format!(": {s}")).unwrap_or_default()
        );
        let params = json!({"type": "object", "properties": properties, "required": required});
        out.push_str(&codemode_portal::typescript::declaration(&format!("{base}Params"), &params));
        let media_schema = |container: Option<codemode_spec::NodeId>| -> Option<Value> {
            let content = g.get(container?, "content")?;
            let codemode_spec::Node::Object(types) = g.node(content) else { return None };
            let (_, media) = types.iter().find(|(k, _)| k.contains("json")).or_else(|| types.first())?;
            g.get(*media, "schema").map(bounded)
        };
        if let Some(body) = media_schema(g.get(node, "requestBody")) {
            out.push('\n');
            out.push_str(&codemode_portal::typescript::declaration(&format!("{base}Body"), &body));
        }
        let responses = g.get(node, "responses");
        let success = responses.and_then(|r| match g.node(r) {
            codemode_spec::Node::Object(codes) => codes.iter().find(|(c, _)| c.starts_with('2')).map(|(_, id)| *id),
            _ => None,
        });
        if let Some(resp) = media_schema(success) {
            out.push('\n');
            out.push_str(&codemode_portal::typescript::declaration(&format!("{base}Response"), &resp));
        }
        return Some(out);
    }
    None
}

/// `GET /zones/{zone_id}/dns_records` → `GetZonesZoneIdDnsRecords` (or the operationId).
fn type_base(op: &codemode_spec::Operation) -> String {
    let source = op.operation_id.clone().unwrap_or_else(|| format!("{} {}", op.method.to_ascii_lowercase(), op.path));
    let mut out = String::new();
    let mut upper = true;
    for c in source.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(if upper { c.to_ascii_uppercase() } else { c });
            upper = false;
        } else {
            upper = true;
        }
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::sentence;

    #[test]
    fn error_chains_become_one_sentence() {
        assert_eq!(
            sentence("connecting: tcp connect error: Connection refused (os error 111)"),
            "connecting: Connection refused"
        );
        assert_eq!(
            sentence("spawning `npx`: No such file or directory (os error 2)"),
            "spawning `npx`: No such file or directory"
        );
        assert_eq!(sentence("closed"), "closed");
    }
}
