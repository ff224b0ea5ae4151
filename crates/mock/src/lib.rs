//! Rehearsal mode: answer an API's requests from its OpenAPI spec instead of
//! the network.
//!
//! [`MockApi`] implements [`codemode_upstream::Responder`], so it plugs into
//! [`codemode_upstream::Upstream::with_responder`] and sees requests exactly
//! as they would be sent (after parsing, policy and credential injection);
//! its answers go through the same decoding, scrubbing and error handling as
//! real ones. Each request is answered the way the documented API would, as
//! far as the spec says, in four steps:
//!
//! 1. **Routing** (`router.rs`): method + path template, literal segments
//!    beating parameters; the first server URL's path (`/client/v4`) is
//!    stripped when the request path includes it. No template → 404 naming
//!    the closest documented operations; a template without that method →
//!    405 listing the methods it has (HEAD falls back to GET).
//! 2. **Security** (`security.rs`): when the operation (or the document)
//!    requires authentication and the request carries no credential any of
//!    its schemes could use → 401 naming the accepted schemes. Only presence
//!    is checked, and leniently: any credential an alternative could use is
//!    enough (specs often list alternatives as if they were required together).
//! 3. **Validation** (`validate.rs`): path, query and header parameters
//!    (coerced from text to their schema types) and the JSON body, against
//!    one JSON Schema per operation checked with [`jsonschema`] → 400 with a
//!    `message` and an `errors` list naming each problem and where it is
//!    (`query.per_page: 500 is greater than the maximum of 50`); a body media
//!    type the operation does not take → 415.
//! 4. **The answer**: the documented success status (the lowest 2xx), or the
//!    documented response a `Prefer: code=…` header asks for; the body is the
//!    documented example (`Prefer: example=name` picks a named one), else one
//!    synthesised from the response schema by [`synth`], seeded from the
//!    request (same request, same answer). Documented response headers are
//!    filled in too, and every answer carries `x-codemode-mock: true`.
//!
//! [`schema`] turns OpenAPI schemas into JSON Schema 2020-12: it reads the
//! OpenAPI 3.0 dialect (`nullable`, boolean `exclusiveMinimum`,
//! `readOnly`/`writeOnly`, Swagger's `type: file`), drops what is not a
//! valid assertion, and keeps the spec graph's sharing and reference cycles
//! as `$defs`, so recursive schemas are validated exactly and nothing is
//! inlined exponentially.
//!
//! **Cost.** [`MockApi::new`] only builds the routing table (Cloudflare's
//! 1,533 operations in about a millisecond). Each operation's request schema
//! is compiled the first time the operation is called and kept (a
//! [`OnceLock`] per operation); response bodies are synthesised straight from
//! the graph on every call, small by design (one or two array items, optional
//! properties only near the top, a value budget).
//!
//! **Error bodies** are the mock's own (`{"message", "errors"}`), not the
//! spec's documented error shape, so the model is told precisely what is
//! wrong; `Prefer: code=4xx` returns the documented error shape when that is
//! what is being rehearsed. `oneOf` is checked as `anyOf` in requests (specs
//! use it for alternatives that overlap, which real APIs accept).

#![warn(missing_docs)]

mod cache;
mod doc;
pub mod schema;
mod security;
pub mod synth;
mod validate;

use std::hash::Hasher;
use std::sync::{Arc, OnceLock};

use codemode_spec::{Graph, NodeId, Spec};
use codemode_upstream::{ApiRequest, Body, Responder, Response};
use reqwest::header::HeaderMap;
use serde_json::{json, Value};

pub use schema::Direction;
pub use synth::Synthesizer;

use crate::cache::Caches;
use crate::doc::{entries, get_bool, get_str, items};
use crate::validate::{Checker, In, Verdict};
use codemode_spec::routes::{Found, Router};

/// Methods in the order they are listed in messages.
pub(crate) use codemode_spec::routes::METHOD_ORDER;

/// The response header that marks every answer of the mock.
pub const MOCK_HEADER: &str = "x-codemode-mock";

/// One documented operation.
struct Op {
    /// The path item (for path-level parameters).
    item: NodeId,
    /// The operation object.
    node: NodeId,
    /// Built on first use.
    checker: OnceLock<Checker>,
}

/// An API answered from its spec (see the crate docs for what it checks and
/// how it answers). Cheap to build, `Send + Sync`; share it with an [`Arc`]:
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
///
/// let spec = codemode_spec::load("openapi.json", &reqwest::Client::new()).await?;
/// let mock = Arc::new(codemode_mock::MockApi::new(Arc::new(spec)));
/// let config = codemode_upstream::UpstreamConfig::new("api", "https://api.example.com/v1".parse()?);
/// let api = codemode_upstream::Upstream::new(config)?.with_responder(mock);
/// let answer = api.request(&serde_json::json!(["GET /items/{id}", {"id": 7}])).await;
/// # Ok(()) }
/// ```
pub struct MockApi {
    spec: Arc<Spec>,
    base_path: String,
    router: Router,
    ops: Vec<Op>,
    caches: Arc<Caches>,
}

impl std::fmt::Debug for MockApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockApi")
            .field("spec", &self.spec.location)
            .field("base_path", &self.base_path)
            .field("operations", &self.ops.len())
            .finish_non_exhaustive()
    }
}

/// A documented response chosen for an answer.
struct Chosen {
    status: u16,
    response: NodeId,
}

impl MockApi {
    /// Prepares the mock: reads every operation of the spec into the routing
    /// table. Nothing is compiled yet (see the crate docs).
    pub fn new(spec: Arc<Spec>) -> MockApi {
        let g = &spec.graph;
        let root = g.root();
        let mut pairs = Vec::new();
        let mut ops = Vec::new();
        if let Some(paths) = g.get(root, "paths") {
            for (template, item) in entries(g, paths) {
                let item = g.deref(*item);
                for (method, op) in entries(g, item) {
                    let upper = method.to_ascii_uppercase();
                    if !METHOD_ORDER.contains(&upper.as_str()) || !doc::is_object(g, *op) {
                        continue;
                    }
                    pairs.push((upper, template.to_string()));
                    ops.push(Op { item, node: g.deref(*op), checker: OnceLock::new() });
                }
            }
        }
        let base_path = base_path(g, root);
        MockApi { router: Router::new(pairs), ops, base_path, spec, caches: Arc::new(Caches::default()) }
    }

    /// The spec this mock answers from.
    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    /// The path of the first server URL (`/client/v4`), without a trailing
    /// slash; empty when the server URL has no path.
    pub fn base_path(&self) -> &str {
        &self.base_path
    }

    /// Every documented operation as `(METHOD, path template)`, in spec order.
    pub fn operations(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.router.routes().iter().map(|r| (r.method.as_str(), r.template.as_str()))
    }

    fn op_index(&self, method: &str, template: &str) -> Option<usize> {
        self.router.routes().iter().position(|r| r.method == method && r.template == template)
    }

    /// The status the mock answers `method template` with when nothing else
    /// is asked for (see [`MockApi`]), or `None` for an unknown operation.
    pub fn success_status(&self, method: &str, template: &str) -> Option<u16> {
        let op = &self.ops[self.op_index(method, template)?];
        Some(success(&self.spec.graph, op.node).map(|c| c.status).unwrap_or(200))
    }

    /// The JSON Schema (draft 2020-12, see [`schema`]) of the body the mock
    /// answers `method template` with for `status`, and its media type; `None`
    /// when that response documents no schema.
    pub fn response_schema(&self, method: &str, template: &str, status: u16) -> Option<(String, Value)> {
        let g = &self.spec.graph;
        let op = &self.ops[self.op_index(method, template)?];
        let response = find_response(g, op.node, status)?;
        let (media, node) = pick_media(g, response)?;
        let schema = g.get(node, "schema")?;
        Some((media, schema::Converter::standalone(g, schema, Direction::Response, true)))
    }

    /// A request the operation accepts, built from its schemas with `seed`:
    /// path parameters, required query and header parameters, and a body
    /// when one is required. `None` for an unknown operation.
    pub fn sample_request(&self, method: &str, template: &str, seed: u64) -> Option<ApiRequest> {
        let g = &self.spec.graph;
        let op = &self.ops[self.op_index(method, template)?];
        let mut synth = Synthesizer::with_caches(g, Direction::Request, seed, self.caches.clone());
        let params = validate::parameters(g, op.item, op.node);
        let mut path = String::new();
        for seg in template.split('/').filter(|s| !s.is_empty()) {
            path.push('/');
            let mut rest = seg;
            while let Some(open) = rest.find('{') {
                path.push_str(&rest[..open]);
                let Some(close) = rest[open..].find('}').map(|c| c + open) else { break };
                let name = &rest[open + 1..close];
                let p = params.iter().find(|p| p.location == In::Path && p.name == name);
                let value = match p.and_then(|p| p.schema) {
                    Some(s) => text_of(&synth.value_named(s, name)),
                    None => format!("{name}-1"),
                };
                let value = if value.is_empty() { "x".to_string() } else { value };
                path.push_str(&codemode_upstream::request::encode_segment(&value));
                rest = &rest[close + 1..];
            }
            path.push_str(rest);
        }
        if path.is_empty() {
            path.push('/');
        }
        let mut query = Vec::new();
        let mut headers = Vec::new();
        for p in params.iter().filter(|p| p.required && p.location != In::Path) {
            let v = p.schema.map(|s| synth.value_named(s, &p.name)).unwrap_or(json!("x"));
            match p.location {
                In::Query => match v {
                    Value::Array(list) => query.extend(list.iter().map(|i| (p.name.clone(), text_of(i)))),
                    Value::Object(map) => {
                        query.extend(map.iter().map(|(k, v)| (format!("{}[{k}]", p.name), text_of(v))))
                    }
                    other => query.push((p.name.clone(), text_of(&other))),
                },
                In::Header
                    if !matches!(p.name.to_ascii_lowercase().as_str(), "accept" | "content-type" | "authorization") =>
                {
                    headers.push((p.name.clone(), text_of(&v)))
                }
                _ => {}
            }
        }
        let mut body = Body::None;
        if let Some(rb) = g.get(op.node, "requestBody") {
            if get_bool(g, rb, "required") == Some(true) {
                let media: Vec<(String, Option<NodeId>)> = g
                    .get(rb, "content")
                    .map(|c| entries(g, c).iter().map(|(m, n)| (m.to_string(), g.get(*n, "schema"))).collect())
                    .unwrap_or_default();
                body = match validate::primary_media(&media) {
                    Some((m, s)) if validate::is_json(m) => {
                        let ct = (!m.contains('*')).then(|| m.clone());
                        Body::Json(s.map(|s| synth.value(s)).unwrap_or(json!({})), ct)
                    }
                    Some((m, Some(s))) if m.contains("form") => Body::Json(synth.value(*s), None),
                    Some((m, _)) => Body::Raw("mock body".into(), m.clone()),
                    None => Body::Json(json!({}), None),
                };
            }
        }
        Some(ApiRequest { method: method.to_string(), path, query, headers, body })
    }

    fn route(&self, method: &str, path: &str) -> Found {
        let found = self.router.find(method, path);
        if !matches!(found, Found::None) || self.base_path.is_empty() {
            return found;
        }
        match path.strip_prefix(&self.base_path) {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => {
                self.router.find(method, if rest.is_empty() { "/" } else { rest })
            }
            _ => found,
        }
    }

    fn answer(&self, req: &ApiRequest, headers: &HeaderMap) -> Response {
        let g = &self.spec.graph;
        let root = g.root();
        let mut found = self.route(&req.method, &req.path);
        if req.method == "HEAD" {
            if let Found::Method(ref allowed, _) = found {
                if allowed.iter().any(|m| m == "GET") {
                    found = self.route("GET", &req.path);
                }
            }
        }
        let (index, path_params) = match found {
            Found::Route(i, p) => (i, p),
            Found::Method(allowed, template) => {
                let mut r = error(
                    405,
                    format!("{} is not documented for {template}; it allows {}", req.method, allowed.join(", ")),
                    vec![],
                );
                r.headers.push(("allow".into(), allowed.join(", ")));
                return r;
            }
            Found::None => {
                let path = self.strip_base(&req.path);
                let near = self.router.closest(&req.method, path, 3);
                let hint = if near.is_empty() {
                    "the spec documents no operations".to_string()
                } else {
                    format!("the closest documented operations are {}", near.join(", "))
                };
                return error(
                    404,
                    format!("no documented operation matches {} {}; {hint}", req.method, req.path),
                    vec![],
                );
            }
        };
        let op = &self.ops[index];
        let route = &self.router.routes()[index];
        let label = format!("{} {}", route.method, route.template);

        if let security::Access::Denied(accepted, challenge) = security::check(g, root, op.node, headers, &req.query) {
            let mut r = error(
                401,
                format!("{label} requires authentication: {accepted}. The request carried no credential"),
                vec![],
            );
            if let Some(c) = challenge {
                r.headers.push(("www-authenticate".into(), c));
            }
            return r;
        }

        let checker = op.checker.get_or_init(|| Checker::new(g, op.item, op.node));
        match checker.check(req, &path_params, headers) {
            Verdict::Ok => {}
            Verdict::Invalid(problems) => {
                let n = problems.len();
                let first = format!("{}: {}", problems[0].location, problems[0].message);
                let more = match n {
                    1 => String::new(),
                    2 => " (and 1 more problem)".to_string(),
                    _ => format!(" (and {} more problems)", n - 1),
                };
                let errors = problems
                    .iter()
                    .map(|p| json!({"location": p.location, "message": format!("{}: {}", p.location, p.message)}))
                    .collect();
                return error(400, format!("the request does not match the spec of {label}: {first}{more}"), errors);
            }
            Verdict::Unsupported(sent, documented) => {
                return error(
                    415,
                    format!("{label} does not take a `{sent}` body; it takes {}", documented.join(", ")),
                    vec![],
                );
            }
        }

        let prefer = Prefer::parse(headers);
        let chosen = match prefer.code {
            Some(code) => match find_response(g, op.node, code) {
                Some(response) => Chosen { status: code, response },
                None => {
                    return error(
                        500,
                        format!(
                        "`Prefer: code={code}` asked for a response that {label} does not document; it documents {}",
                        documented_codes(g, op.node).join(", ")
                    ),
                        vec![],
                    )
                }
            },
            None => match success(g, op.node) {
                Some(c) => c,
                None => {
                    // No responses at all: an empty 200.
                    return with_mock_header(Response { status: 200, headers: vec![], body: vec![] });
                }
            },
        };

        let mut response = Response { status: chosen.status, headers: vec![], body: vec![] };
        let media = pick_media(g, chosen.response);
        if let Some((media_type, media)) = &media {
            let body = match self.example(media, prefer.example.as_deref()) {
                Ok(Some(v)) => Some(v),
                Ok(None) => g.get(*media, "schema").map(|s| {
                    let mut synth = Synthesizer::with_caches(g, Direction::Response, seed_of(req), self.caches.clone());
                    synth.value(s)
                }),
                Err(names) => {
                    return error(
                        500,
                        format!(
                            "`Prefer: example={}` names no example of the {} response of {label}; {}",
                            prefer.example.as_deref().unwrap_or(""),
                            chosen.status,
                            if names.is_empty() {
                                "it has no named examples".to_string()
                            } else {
                                format!("its examples are {}", names.join(", "))
                            }
                        ),
                        vec![],
                    )
                }
            };
            if let Some(body) = body {
                if req.method != "HEAD" {
                    response.body = match (&body, validate::is_json(media_type)) {
                        (Value::String(s), false) => s.clone().into_bytes(),
                        _ => serde_json::to_vec(&body).expect("JSON serialises"),
                    };
                }
                // A wildcard documented type (`*/*`, `image/*`) names no
                // concrete type to answer with.
                let ct = match media_type.as_str() {
                    m if !m.contains('*') => m,
                    "*/*" | "application/*" => "application/json",
                    _ => "application/octet-stream",
                };
                response.headers.push(("content-type".into(), ct.to_string()));
            }
        }
        self.documented_headers(chosen.response, req, &mut response.headers);
        with_mock_header(response)
    }

    fn strip_base<'a>(&self, path: &'a str) -> &'a str {
        match path.strip_prefix(&self.base_path) {
            Some(rest) if !self.base_path.is_empty() && rest.starts_with('/') => rest,
            _ => path,
        }
    }

    /// The documented example of a media object: `Prefer: example=name`'s,
    /// else `example`, else the first of `examples` with a `value`. `Err`
    /// (with the names there are) when a named one was asked for and is missing.
    fn example(&self, media: &NodeId, name: Option<&str>) -> Result<Option<Value>, Vec<String>> {
        let g = &self.spec.graph;
        let examples = g.get(*media, "examples");
        let named: Vec<(&str, NodeId)> =
            examples.map(|e| entries(g, e).iter().map(|(k, v)| (&**k, g.deref(*v))).collect()).unwrap_or_default();
        if let Some(want) = name {
            return match named.iter().find(|(k, _)| *k == want) {
                Some((_, ex)) => Ok(g.get(*ex, "value").map(|v| doc::value(g, v))),
                None => Err(named.iter().map(|(k, _)| k.to_string()).collect()),
            };
        }
        if let Some(ex) = g.get(*media, "example") {
            return Ok(Some(doc::value(g, ex)));
        }
        Ok(named.iter().find_map(|(_, ex)| g.get(*ex, "value")).map(|v| doc::value(g, v)))
    }

    /// Documented response headers with a schema, synthesised.
    fn documented_headers(&self, response: NodeId, req: &ApiRequest, out: &mut Vec<(String, String)>) {
        let g = &self.spec.graph;
        let Some(hs) = g.get(response, "headers") else { return };
        let mut synth = Synthesizer::with_caches(g, Direction::Response, seed_of(req) ^ 0x5eed, self.caches.clone());
        for (name, h) in entries(g, hs) {
            let lower = name.to_ascii_lowercase();
            if matches!(lower.as_str(), "content-type" | "content-length" | "transfer-encoding" | "connection")
                || lower == MOCK_HEADER
            {
                continue;
            }
            let value = match g.get(*h, "example") {
                Some(ex) => doc::value(g, ex),
                None => match g.get(*h, "schema") {
                    Some(s) => synth.value_named(s, name),
                    None => continue,
                },
            };
            let text = text_of(&value);
            if reqwest::header::HeaderValue::from_str(&text).is_ok() {
                out.push((lower, text));
            }
        }
    }
}

impl Responder for MockApi {
    fn respond(&self, req: &ApiRequest, headers: &HeaderMap) -> Response {
        self.answer(req, headers)
    }
}

/// `Prefer: code=404, example=name` (as Prism reads it).
#[derive(Default)]
struct Prefer {
    code: Option<u16>,
    example: Option<String>,
}

impl Prefer {
    fn parse(headers: &HeaderMap) -> Prefer {
        let mut p = Prefer::default();
        for v in headers.get_all("prefer") {
            let Ok(text) = v.to_str() else { continue };
            for part in text.split([',', ';']) {
                let Some((k, v)) = part.split_once('=') else { continue };
                let v = v.trim().trim_matches('"');
                match k.trim().to_ascii_lowercase().as_str() {
                    "code" => p.code = v.parse().ok(),
                    "example" => p.example = Some(v.to_string()),
                    _ => {}
                }
            }
        }
        p
    }
}

/// The documented success: the lowest 2xx code, else `2XX`, else the lowest
/// 3xx, else `default` (as 200), else the lowest code documented.
fn success(g: &Graph, op: NodeId) -> Option<Chosen> {
    let responses = g.get(op, "responses")?;
    let mut codes: Vec<(u16, NodeId)> =
        entries(g, responses).iter().filter_map(|(k, v)| Some((k.parse::<u16>().ok()?, g.deref(*v)))).collect();
    codes.sort_by_key(|(c, _)| *c);
    let pick = codes
        .iter()
        .find(|(c, _)| (200..300).contains(c))
        .map(|(c, r)| (*c, *r))
        .or_else(|| g.get(responses, "2XX").or_else(|| g.get(responses, "2xx")).map(|r| (200, r)))
        .or_else(|| codes.iter().find(|(c, _)| (300..400).contains(c)).copied())
        .or_else(|| g.get(responses, "default").map(|r| (200, r)))
        .or_else(|| codes.first().copied())?;
    Some(Chosen { status: pick.0, response: pick.1 })
}

/// The response documented for `status`: exact code, then its range
/// (`4XX`), then `default`.
fn find_response(g: &Graph, op: NodeId, status: u16) -> Option<NodeId> {
    let responses = g.get(op, "responses")?;
    let range = format!("{}XX", status / 100);
    g.get(responses, &status.to_string())
        .or_else(|| g.get(responses, &range))
        .or_else(|| g.get(responses, &range.to_ascii_lowercase()))
        .or_else(|| g.get(responses, "default"))
}

fn documented_codes(g: &Graph, op: NodeId) -> Vec<String> {
    g.get(op, "responses").map(|r| entries(g, r).iter().map(|(k, _)| k.to_string()).collect()).unwrap_or_default()
}

/// The media type of a response to answer with: JSON first, then the first.
fn pick_media(g: &Graph, response: NodeId) -> Option<(String, NodeId)> {
    let content = g.get(response, "content")?;
    let all = entries(g, content);
    all.iter()
        .find(|(m, _)| validate::is_json(m) && !m.contains('*'))
        .or_else(|| all.iter().find(|(m, _)| validate::is_json(m)))
        .or_else(|| all.first())
        .map(|(m, n)| (m.to_string(), g.deref(*n)))
}

/// The path of the first server URL, variables replaced by their defaults.
fn base_path(g: &Graph, root: NodeId) -> String {
    let Some(server) = g.get(root, "servers").and_then(|s| items(g, s).first().copied()) else { return String::new() };
    let Some(url) = get_str(g, server, "url") else { return String::new() };
    let mut url = url.to_string();
    if let Some(vars) = g.get(server, "variables") {
        for (name, v) in entries(g, vars) {
            if let Some(d) = get_str(g, *v, "default") {
                url = url.replace(&format!("{{{name}}}"), d);
            }
        }
    }
    let path = match url.find("://") {
        Some(i) => url[i + 3..].find('/').map(|j| &url[i + 3 + j..]).unwrap_or(""),
        None => url.as_str(),
    };
    let path = path.split(['?', '#']).next().unwrap_or("");
    path.trim_end_matches('/').to_string()
}

/// The seed of a request: the same method, path, query and body give the
/// same synthesised answer.
fn seed_of(req: &ApiRequest) -> u64 {
    let mut h = fnv::FnvHasher::default();
    h.write(req.method.as_bytes());
    h.write_u8(0);
    h.write(req.path.as_bytes());
    for (k, v) in &req.query {
        h.write_u8(1);
        h.write(k.as_bytes());
        h.write_u8(2);
        h.write(v.as_bytes());
    }
    h.write_u8(3);
    match &req.body {
        Body::None => {}
        Body::Json(v, _) => h.write(v.to_string().as_bytes()),
        Body::Raw(s, _) => h.write(s.as_bytes()),
        Body::Bytes(b, _) => h.write(b),
        Body::Form(f) => h.write(&f.encode().0),
    }
    h.finish()
}

/// A value as parameter or header text.
fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Array(a) => a.iter().map(text_of).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

/// An answer of the mock itself (not documented by the spec).
fn error(status: u16, message: String, errors: Vec<Value>) -> Response {
    let mut body = json!({ "message": message });
    if !errors.is_empty() {
        body["errors"] = Value::Array(errors);
    }
    with_mock_header(Response {
        status,
        headers: vec![("content-type".into(), "application/json".into())],
        body: serde_json::to_vec(&body).expect("JSON serialises"),
    })
}

fn with_mock_header(mut r: Response) -> Response {
    r.headers.push((MOCK_HEADER.into(), "true".into()));
    r
}
