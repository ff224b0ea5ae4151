//! GraphQL APIs in the binary: loading the schema at start-up, turning
//! `<api>.graphql(query, variables?, {operationName, partial}?)` into a
//! checked [`GraphqlOp`] for the pipeline, reading the endpoint's answer,
//! and the rehearsal responder. The GraphQL work itself (validation,
//! limits, views, TypeScript, synthesis) is `codemode_graphql`'s.

use std::sync::Arc;

use codemode_graphql::{Limits, Request, Schema};
use codemode_pipeline::{GraphqlOp, HostError};
use codemode_upstream::{ApiRequest, Body, Caller, Responder, Response, Upstream};
use serde_json::{json, Map, Value};

/// A GraphQL API as the host checks and sends its calls.
pub struct GraphqlApi {
    /// The validated schema.
    pub schema: Schema,
    /// Depth, cost and size limits of one operation.
    pub limits: Limits,
    /// For a schema introspected from the endpoint: the client that asked
    /// (its credential, headers and introspection-sized answer limit), so
    /// `refresh_secs` can ask again.
    pub introspected: Option<Upstream>,
}

impl std::fmt::Debug for GraphqlApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphqlApi").field("schema", &self.schema).field("limits", &self.limits).finish()
    }
}

/// The largest schema document read from a file or URL, or answered to
/// introspection: GitHub's SDL is 1.3 MB, its introspection JSON 9 MB.
const MAX_SCHEMA_BYTES: usize = 64 * 1024 * 1024;

/// A loaded schema, and — when it is a cached copy because its source
/// could not be reached — a warning that says so and how old it is.
pub struct LoadedSchema {
    /// The schema.
    pub schema: Schema,
    /// Set when a cached copy stands in for the endpoint or URL.
    pub stale: Option<String>,
}

/// The cache key of an API's introspected schema: its name and endpoint
/// (two APIs on one endpoint with other credentials may see other schemas).
pub fn introspection_key(api: &str, endpoint: &str) -> String {
    format!("graphql introspection of `{api}` at {endpoint}")
}

/// The schema of `locations`: nothing — introspect the endpoint through
/// `upstream` (its credential and headers, the answer scrubbed like any
/// other) via the on-disk cache; one file or http(s) URL of SDL or
/// introspection JSON (a URL through the cache too); or several SDL files
/// merged into one schema.
pub async fn load_schema(
    locations: &[String],
    api: &str,
    upstream: &Upstream,
    http: &reqwest::Client,
) -> Result<LoadedSchema, String> {
    let (sources, stale) = match locations {
        [] => {
            let endpoint = upstream.config().base_url.to_string();
            let fetched =
                codemode_spec::cache::through(&introspection_key(api, &endpoint), introspect(upstream, &endpoint))
                    .await?;
            let stale = stale_note(&fetched.origin, "");
            let json: Value = serde_json::from_slice(&fetched.body).map_err(|e| {
                format!("the cached introspection of {endpoint} is not JSON ({e}); delete it from the cache directory")
            })?;
            let schema = off_thread(move || Schema::from_introspection(&json, &endpoint)).await?;
            return Ok(LoadedSchema { schema, stale });
        }
        [location] if location.starts_with("http://") || location.starts_with("https://") => {
            let url = url::Url::parse(location).map_err(|e| format!("{location}: {e}"))?;
            let fetched = codemode_spec::cache::fetch(&url, http, MAX_SCHEMA_BYTES)
                .await
                .map_err(|e| format!("{location}: {e}"))?;
            let stale = stale_note(&fetched.origin, &format!("{location}: "));
            let text =
                String::from_utf8(fetched.body).map_err(|_| format!("{location}: the schema is not UTF-8 text"))?;
            (vec![(location.clone(), text)], stale)
        }
        files => {
            let mut sources = Vec::with_capacity(files.len());
            for f in files {
                let text = std::fs::read_to_string(f).map_err(|e| format!("{f}: {e}"))?;
                sources.push((f.clone(), text));
            }
            (sources, None)
        }
    };
    // Parsing GitHub's schema takes a moment: off the async threads.
    let schema = off_thread(move || match sources.as_slice() {
        [(path, text)] => Schema::from_text(text, path),
        several => {
            let refs: Vec<(&str, &str)> = several.iter().map(|(p, t)| (p.as_str(), t.as_str())).collect();
            Schema::from_sdl_files(&refs)
        }
    })
    .await?;
    Ok(LoadedSchema { schema, stale })
}

/// `refresh_secs` for an introspected schema: introspects again through
/// `upstream` and the cache, and says whether the answer differs from the
/// copy (`Downloaded`), matches it (`Revalidated`) or could not be had
/// (`Stale`).
pub async fn reintrospect(api: &str, upstream: &Upstream) -> Result<codemode_spec::cache::Origin, String> {
    let endpoint = upstream.config().base_url.to_string();
    let fetched =
        codemode_spec::cache::through(&introspection_key(api, &endpoint), introspect(upstream, &endpoint)).await?;
    Ok(fetched.origin)
}

/// One introspection of `endpoint`: the answer's JSON (`{"data":
/// {"__schema": …}}`), or why there is none.
async fn introspect(upstream: &Upstream, endpoint: &str) -> Result<Vec<u8>, String> {
    let body = json!({"query": codemode_graphql::introspection::QUERY, "operationName": "IntrospectionQuery"});
    let answer = upstream
        .send_as(post(body), &|_, _| false, &[], &Caller::default())
        .await
        .map_err(|e| format!("introspecting {endpoint} failed: {}", e.to_json()["message"].as_str().unwrap_or("")))?;
    let data = &answer["data"];
    if let Some(errors) = data.get("errors").filter(|e| e.as_array().is_some_and(|a| !a.is_empty())) {
        return Err(format!(
            "{endpoint} refused introspection: {}; save its schema (SDL or introspection JSON) to a file and set `spec` to it",
            short(errors)
        ));
    }
    if data.pointer("/data/__schema").is_none() {
        return Err(format!("{endpoint} answered introspection without `data.__schema`: is `url` a GraphQL endpoint?"));
    }
    serde_json::to_vec(data).map_err(|e| format!("introspecting {endpoint}: {e}"))
}

/// The warning for a cached copy standing in for what failed (`prefix`
/// names it where the reason does not).
fn stale_note(origin: &codemode_spec::cache::Origin, prefix: &str) -> Option<String> {
    match origin {
        codemode_spec::cache::Origin::Stale { reason, age_secs } => Some(format!(
            "{prefix}{reason}; using the copy cached {} ago (the API may have changed since)",
            codemode_spec::cache::human_age(*age_secs)
        )),
        _ => None,
    }
}

async fn off_thread<T: Send + 'static>(f: impl FnOnce() -> Result<T, String> + Send + 'static) -> Result<T, String> {
    tokio::task::spawn_blocking(f).await.map_err(|e| format!("loading the schema failed: {e}"))?
}

/// The POST of one GraphQL body to the endpoint (the base URL itself).
fn post(body: Value) -> ApiRequest {
    ApiRequest {
        method: "POST".into(),
        path: String::new(),
        query: vec![],
        headers: vec![],
        body: Body::Json(body, None),
    }
}

fn usage(api: &str, message: String) -> HostError {
    HostError::new("TypeError", format!("{message}. Write `await {api}.graphql(\"query($id: ID!) {{ node(id: $id) {{ id }} }}\", {{ id }})`; the third argument is {{operationName?, partial?}}"))
}

/// `<api>.graphql(query, variables?, options?)`: the arguments (hostile
/// JSON from the sandbox) checked, the document validated against the
/// schema and the limits.
pub fn parse_call(name: &str, api: &GraphqlApi, args: Value) -> Result<GraphqlOp, HostError> {
    let Value::Array(mut args) = args else { return Err(usage(name, "the arguments are not a list".into())) };
    if args.is_empty() || args.len() > 3 {
        return Err(usage(name, format!("`{name}.graphql` takes one to three arguments, not {}", args.len())));
    }
    let options = if args.len() == 3 { args.pop() } else { None };
    let variables = if args.len() == 2 { args.pop() } else { None };
    let query = match args.pop() {
        Some(Value::String(q)) => q,
        Some(Value::Object(o)) if o.contains_key("query") => {
            return Err(usage(
                name,
                "the first argument is the document itself (a string), not an object with `query`".to_string(),
            ))
        }
        other => {
            return Err(usage(
                name,
                format!("the first argument must be the GraphQL document (a string), not {}", kind(&other)),
            ))
        }
    };
    let variables = match variables {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(v)) => v,
        other => {
            return Err(usage(name, format!("the variables (second argument) must be an object, not {}", kind(&other))))
        }
    };
    let mut operation_name = None;
    let mut partial = false;
    match options {
        None | Some(Value::Null) => {}
        Some(Value::Object(o)) => {
            for (k, v) in o {
                match (k.as_str(), v) {
                    ("operationName", Value::String(s)) => operation_name = Some(s),
                    ("operationName", Value::Null) => {}
                    ("partial", Value::Bool(b)) => partial = b,
                    (k @ ("operationName" | "partial"), v) => {
                        let want = if k == "partial" { "a boolean" } else { "a string" };
                        return Err(usage(name, format!("option `{k}` must be {want}, not {}", kind(&Some(v)))));
                    }
                    (other, _) => {
                        return Err(usage(
                            name,
                            format!("unknown option `{other}`; the options are operationName and partial"),
                        ))
                    }
                }
            }
        }
        other => {
            return Err(usage(name, format!("the options (third argument) must be an object, not {}", kind(&other))))
        }
    }
    let request = Request { query, variables, operation_name };
    let checked = api.schema.check(&request, &api.limits).map_err(|e| {
        HostError::new("GraphQLValidationError", format!("{name}.graphql: {} Nothing was sent.", e.message))
            .with("api", name)
            .with("errors", Value::Array(e.errors))
            .with("reason", e.reason)
            .with("retryable", false)
    })?;
    let request = post(checked.body.clone());
    Ok(GraphqlOp { api: name.to_string(), request, checked: Arc::new(checked), partial })
}

fn kind(v: &Option<Value>) -> &'static str {
    match v {
        None => "nothing",
        Some(Value::Null) => "null",
        Some(Value::Bool(_)) => "a boolean",
        Some(Value::Number(_)) => "a number",
        Some(Value::String(_)) => "a string",
        Some(Value::Array(_)) => "an array",
        Some(Value::Object(_)) => "an object",
    }
}

/// The first errors' messages, for a one-line error.
fn short(errors: &Value) -> String {
    let list = errors.as_array().map(Vec::as_slice).unwrap_or_default();
    let mut out: Vec<String> = list
        .iter()
        .take(3)
        .map(|e| {
            let m = e.get("message").and_then(Value::as_str).unwrap_or("(no message)");
            let m: String = m.chars().take(300).collect();
            match e.get("path").and_then(Value::as_array) {
                Some(p) if !p.is_empty() => {
                    let p: Vec<String> =
                        p.iter().map(|x| x.as_str().map(str::to_string).unwrap_or_else(|| x.to_string())).collect();
                    format!("{m} (at {})", p.join("."))
                }
                _ => m,
            }
        })
        .collect();
    if list.len() > 3 {
        out.push(format!("… {} more", list.len() - 3));
    }
    out.join("; ")
}

/// What the code gets for the endpoint's answer: `{data, errors?,
/// extensions?}`, or — when `errors` is set and the code did not ask for
/// partial data — a `GraphQLError` carrying `errors` and `data`.
pub fn answer(op: &GraphqlOp, sent: Result<Value, HostError>) -> Result<Value, HostError> {
    let (status, body) = match sent {
        Ok(v) => (v.get("status").and_then(Value::as_u64), v.get("data").cloned().unwrap_or(Value::Null)),
        // A 4xx/5xx that still carries a GraphQL answer (GraphQL over HTTP
        // answers validation errors with 400) is read like one.
        Err(e) => match e.fields.get("data") {
            Some(d @ Value::Object(m)) if m.contains_key("errors") || m.contains_key("data") => {
                (e.fields.get("status").and_then(Value::as_u64), d.clone())
            }
            _ => return Err(e),
        },
    };
    let Value::Object(mut body) = body else {
        return Err(HostError::new(
            "GraphQLError",
            format!(
                "{} answered {} with something that is not a GraphQL response (no `data` or `errors` object)",
                op.api,
                status.unwrap_or(0)
            ),
        )
        .with("api", op.api.as_str())
        .with("status", status.unwrap_or(0)));
    };
    let has_errors = body.get("errors").and_then(Value::as_array).is_some_and(|a| !a.is_empty());
    if !body.contains_key("data") && !has_errors {
        return Err(HostError::new(
            "GraphQLError",
            format!("{} answered without `data` or `errors`: not a GraphQL response", op.api),
        )
        .with("api", op.api.as_str())
        .with("status", status.unwrap_or(0)));
    }
    if has_errors && !op.partial {
        let errors = body.remove("errors").unwrap_or(Value::Null);
        let data = body.remove("data").unwrap_or(Value::Null);
        let mut e = HostError::new(
            "GraphQLError",
            format!(
                "{} answered with GraphQL errors: {}. `err.errors` has them all{}",
                op.api,
                short(&errors),
                if data.is_null() {
                    String::new()
                } else {
                    "; `err.data` the partial data (or pass {partial: true} to get both as the result)".into()
                }
            ),
        )
        .with("api", op.api.as_str())
        .with("errors", errors)
        .with("data", data);
        if let Some(s) = status {
            e = e.with("status", s);
        }
        if let Some(x) = body.remove("extensions") {
            e = e.with("extensions", x);
        }
        return Err(e);
    }
    body.retain(|k, _| matches!(k.as_str(), "data" | "errors" | "extensions"));
    Ok(Value::Object(body))
}

/// Rehearsal mode for a GraphQL API: every POST is checked against the
/// schema again and answered with data of the shape its selection asks
/// for. Behind the same upstream checks as the network.
pub struct Rehearsal {
    /// The API.
    pub api: Arc<GraphqlApi>,
}

impl Responder for Rehearsal {
    fn respond(&self, req: &ApiRequest, _headers: &reqwest::header::HeaderMap) -> Response {
        let reply = |status: u16, v: Value| Response {
            status,
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("x-codemode-mock".into(), "true".into()),
            ],
            body: v.to_string().into_bytes(),
        };
        let Body::Json(body, _) = &req.body else {
            return reply(400, json!({"errors": [{"message": "a GraphQL request is a JSON body"}]}));
        };
        let request = Request {
            query: body.get("query").and_then(Value::as_str).unwrap_or_default().to_string(),
            variables: body.get("variables").and_then(Value::as_object).cloned().unwrap_or_default(),
            operation_name: body.get("operationName").and_then(Value::as_str).map(str::to_string),
        };
        match self.api.schema.check(&request, &self.api.limits) {
            Ok(checked) => reply(200, self.api.schema.rehearse(&checked)),
            Err(e) => reply(400, json!({"errors": e.errors})),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api() -> GraphqlApi {
        let schema = Schema::from_sdl(
            "type Query { user(id: ID!): User } type User { id: ID! name: String } type Mutation { rename(id: ID!, name: String!): User }",
            "t.graphql",
        )
        .unwrap();
        GraphqlApi { schema, limits: Limits::default(), introspected: None }
    }

    #[test]
    fn arguments_are_checked_with_a_way_out() {
        let a = api();
        let e = parse_call("users", &a, json!([{"query": "{ user(id: 1) { id } }"}])).unwrap_err();
        assert!(e.message.contains("not an object with `query`"), "{}", e.message);
        let e = parse_call("users", &a, json!(["{ user(id: 1) { id } }", [1]])).unwrap_err();
        assert!(e.message.contains("must be an object"), "{}", e.message);
        let e = parse_call("users", &a, json!(["{ user(id: 1) { id } }", {}, {"partal": true}])).unwrap_err();
        assert!(e.message.contains("unknown option `partal`"), "{}", e.message);
        let e = parse_call("users", &a, json!(["{ user(id: 1) { nme } }"])).unwrap_err();
        assert_eq!(e.name, "GraphQLValidationError");
        assert!(e.message.contains("did you mean `name`"), "{}", e.message);
        assert_eq!(e.fields["errors"][0]["suggestions"], json!(["name"]));
        let op = parse_call(
            "users",
            &a,
            json!(["mutation($id: ID!) { rename(id: $id, name: \"x\") { id } }", {"id": "1"}, {"partial": true}]),
        )
        .unwrap();
        assert_eq!(op.coordinates(), vec!["mutation.rename"]);
        assert!(op.partial);
        assert_eq!(op.request.method, "POST");
        assert_eq!(op.request.body.describe().unwrap()["variables"]["id"], "1");
    }

    #[test]
    fn errors_reject_unless_partial() {
        let a = api();
        let mut op = parse_call("users", &a, json!(["{ user(id: 1) { id name } }"])).unwrap();
        let sent = json!({"status": 200, "headers": {}, "data": {"data": {"user": {"id": "1", "name": null}}, "errors": [{"message": "name hidden", "path": ["user", "name"]}]}});
        let e = answer(&op, Ok(sent.clone())).unwrap_err();
        assert_eq!(e.name, "GraphQLError");
        assert!(e.message.contains("name hidden (at user.name)"), "{}", e.message);
        assert_eq!(e.fields["data"]["user"]["id"], "1");
        op.partial = true;
        let ok = answer(&op, Ok(sent)).unwrap();
        assert_eq!(ok["errors"][0]["message"], "name hidden");
        let e = answer(&op, Ok(json!({"status": 200, "headers": {}, "data": "<html>"}))).unwrap_err();
        assert!(e.message.contains("not a GraphQL response"), "{}", e.message);
    }
}
