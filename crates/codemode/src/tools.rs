//! The model-facing contract: the two tools, their descriptions (generated
//! from the configured APIs) and their schemas.
//!
//! Kept close to Cloudflare's Code Mode server, which models already know:
//! `{code}` in, an async arrow function, `spec` for search, a client with
//! `request(...)` for execute. Descriptions stay within ~1,000 o200k tokens
//! for one API and grow by one line per extra API.

use serde_json::{json, Map, Value};

use crate::service::LoadedApi;

/// Name, title and description of one tool, plus its annotations.
#[derive(Clone, Debug)]
pub struct ToolDef {
    /// `search` or `execute`.
    pub name: &'static str,
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

/// The input schema of both tools.
pub fn input_schema(tool: &str) -> Map<String, Value> {
    let what = if tool == "search" {
        "JavaScript async arrow function to run against the spec, e.g. `async () => Object.keys(spec.paths).filter(p => p.includes('dns'))`"
    } else {
        "JavaScript async arrow function that calls the API and returns what you need, e.g. `async () => (await api.request('GET /zones')).data`"
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

/// Both tool definitions for the configured APIs.
pub fn tool_defs(apis: &[LoadedApi], max_output_tokens: usize, max_requests: u32) -> Vec<ToolDef> {
    let any_writes = apis.iter().any(|a| a.upstream.config().allow_writes);
    vec![
        ToolDef {
            name: "search",
            title: "Search the API spec",
            description: search_description(apis, max_output_tokens),
            read_only: true,
            destructive: false,
            idempotent: true,
            open_world: false,
        },
        ToolDef {
            name: "execute",
            title: "Call the API",
            description: execute_description(apis, max_output_tokens, max_requests),
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

fn search_description(apis: &[LoadedApi], max_tokens: usize) -> String {
    let single = apis.len() == 1;
    let mut d = String::new();
    if single {
        let a = &apis[0];
        let s = &a.spec.summary;
        let groups: Vec<String> = s.top_groups(20).into_iter().map(|(g, _)| g).collect();
        d.push_str(&format!(
            "Search the {} OpenAPI spec ({} operations) by writing JavaScript. Every $ref is resolved inline; a schema that recurses into itself shows {{\"$circular\": \"<ref>\"}}.\n\nTop areas: {}\n",
            if s.title.is_empty() { &a.name } else { &s.title },
            s.operations.len(),
            groups.join(", ")
        ));
    } else {
        d.push_str("Search the OpenAPI specs of these APIs by writing JavaScript. Every $ref is resolved inline; a schema that recurses into itself shows {\"$circular\": \"<ref>\"}.\n\n");
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
    let (sample_path, sample_method) = apis
        .first()
        .and_then(|a| {
            let ops = &a.spec.summary.operations;
            ops.iter()
                .find(|o| o.method == "POST")
                .or_else(|| ops.first())
                .map(|o| (o.path.clone(), o.method.to_ascii_lowercase()))
        })
        .unwrap_or_else(|| ("/".into(), "get".into()));
    d.push_str(&format!(
        r#"
```ts
{globals}
interface OpenAPI {{ info: {{ title: string }}; servers?: {{ url: string }}[]; paths: Record<string, Record<"get" | "post" | "put" | "patch" | "delete", Operation>>; components?: {{ schemas?: Record<string, Schema> }} }}
interface Operation {{ summary?: string; description?: string; operationId?: string; tags?: string[]; parameters?: {{ name: string; in: "path" | "query" | "header"; required?: boolean; schema: Schema }}[]; requestBody?: {{ content: Record<string, {{ schema: Schema }}> }}; responses: Record<string, {{ description: string; content?: Record<string, {{ schema: Schema }}> }}> }}
```
Examples:
// operations whose path mentions a word
async () => Object.entries({s}.paths).flatMap(([path, ops]) => Object.entries(ops).filter(([m]) => m !== "parameters").map(([m, op]) => ({{ method: m.toUpperCase(), path, summary: op.summary }}))).filter(o => o.path.includes("user"))
// one operation's parameters, request body and responses
async () => {s}.paths["{sample_path}"].{sample_method}

Return only what you need: results over {max_tokens} tokens are shortened. Then call `execute`."#
    ));
    d
}

fn execute_description(apis: &[LoadedApi], max_tokens: usize, max_requests: u32) -> String {
    let single = apis.len() == 1;
    let mut d = String::from("Call the API by writing JavaScript: an async arrow function; its return value is the result. Use `search` first to find operations and their parameters.\n\n```ts\n");
    for a in apis {
        let c = a.upstream.config();
        d.push_str(&format!(
            "declare const {}: Client; // {}, {}{}\n",
            a.name,
            c.base_url,
            if c.allow_writes { "read-write" } else { "read-only: GET/HEAD only" },
            if single { "; also `api`" } else { "" }
        ));
    }
    d.push_str(
        r#"interface Client {
  request(req: { method?: string; path: string; query?: Record<string, string | number | boolean | Array<string | number>>; body?: unknown; headers?: Record<string, string>; contentType?: string; rawBody?: string }): Promise<Response>;
  // route form: path parameters are filled in; other params go to the query (GET/HEAD/DELETE) or the JSON body
  request(route: string, params?: Record<string, unknown>): Promise<Response>;
}
interface Response { status: number; headers: Record<string, string>; data: any }
```
A non-2xx answer rejects with an Error that has status, method, path and data. Credentials are added by the host. "#,
    );
    d.push_str(&format!(
        "At most {max_requests} requests per call; `Promise.all` runs them in parallel; console.log output is returned too. Results over {max_tokens} tokens are shortened.\n\nExample:\n"
    ));
    let a = &apis[0];
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
