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
//!    The body is then made to agree with the request ([`consistent`]):
//!    path parameters reflected into the matching fields, a list cut to the
//!    page asked for and its pagination metadata recounted.
//!
//! **State** ([`MockApi::with_state`], [`state`]): a collection path (a
//! template with an item template below it) keeps resources per caller —
//! `POST` creates, `GET` lists (query parameters naming an item field
//! filter) and reads, `PUT`/`PATCH` update, `DELETE` removes — inside the
//! envelope the response schema documents; [`MockApi::seed`] sets what each
//! store starts with. Everything else is answered from the spec.
//!
//! **Required-body quirks**: a body documented as required on a GET, HEAD or
//! DELETE is not required (specs say so where the API does not); the answer
//! carries a [`WARNING_HEADER`] instead, unless [`MockApi::strict`].
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
mod consistent;
mod doc;
pub mod schema;
mod security;
pub mod state;
pub mod synth;
mod validate;

use std::collections::HashSet;
use std::hash::Hasher;
use std::sync::{Arc, OnceLock};

use codemode_spec::{Graph, NodeId, Spec};
use codemode_upstream::{ApiRequest, Body, Caller, Responder, Response};
use reqwest::header::HeaderMap;
use serde_json::{json, Value};

pub use schema::Direction;
pub use state::{Scope, StateConfig};
pub use synth::Synthesizer;

use crate::consistent::{at_mut, fix_paging, item_slot, list_slot, properties, reflect, Page};
use crate::state::Stores;

use crate::cache::Caches;
use crate::doc::{entries, get_bool, get_str, items};
use crate::validate::{Checker, In, Verdict};
use codemode_spec::routes::{Found, Router};

/// Methods in the order they are listed in messages.
pub(crate) use codemode_spec::routes::METHOD_ORDER;

/// The response header that marks every answer of the mock.
pub const MOCK_HEADER: &str = "x-codemode-mock";

/// The response header with what rehearsal let through that the spec would
/// not (a required body missing on a DELETE), one note per header.
pub const WARNING_HEADER: &str = "x-codemode-mock-warning";

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
    /// Templates with an item template below them (`/zones/{zone_id}/dns_records`
    /// has `/zones/{zone_id}/dns_records/{dns_record_id}`).
    collections: HashSet<String>,
    /// Stateful rehearsal, when configured.
    state: Option<Stores>,
    /// A documented-required body is required on every method.
    strict: bool,
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
        let collections = pairs.iter().filter_map(|(_, t)| own_param(t).map(|_| parent(t).to_string())).collect();
        MockApi {
            router: Router::new(pairs),
            ops,
            base_path,
            spec,
            caches: Arc::new(Caches::default()),
            collections,
            state: None,
            strict: false,
        }
    }

    /// Keeps state (see [`state`]): `POST` to a collection creates, `GET`
    /// lists and reads, `PUT`/`PATCH` update and `DELETE` removes, in one
    /// in-memory store per caller.
    pub fn with_state(mut self, config: StateConfig) -> MockApi {
        self.state = Some(Stores::new(config));
        self
    }

    /// With `strict`, a body the spec marks required is required on every
    /// method; without (the default), its absence on a GET, HEAD or DELETE
    /// is answered with a [`WARNING_HEADER`] instead of a 400.
    pub fn strict(mut self, strict: bool) -> MockApi {
        self.strict = strict;
        self
    }

    /// Sets the resources every store starts with: `doc` maps collection
    /// paths (`/zones/023e…/dns_records`, with or without the server's base
    /// path) to arrays of resources, each checked against the item schema of
    /// the collection's documented list response. Resources without an `id`
    /// get one. Returns how many resources there are, or every problem as
    /// `JSON pointer: what is wrong; how to fix it`. Needs
    /// [`MockApi::with_state`] first.
    pub fn seed(&mut self, doc: &Value) -> Result<usize, Vec<String>> {
        if self.state.is_none() {
            return Err(vec!["a seed needs stateful rehearsal; set mock_state".into()]);
        }
        let Value::Object(map) = doc else {
            return Err(vec!["(root): the seed must be an object of collection paths to arrays of resources, e.g. \
                 {\"/zones/023e105f4ecef8ad9ca31a8372d0c353/dns_records\": [{..}]}"
                .into()]);
        };
        let g = &self.spec.graph;
        let mut problems = Vec::new();
        let mut ids = state::Store::scratch();
        let mut total = 0;
        for (path, list) in map {
            let pointer = format!("/{}", path.replace('~', "~0").replace('/', "~1"));
            let rel = self.strip_base(path).trim_end_matches('/').to_string();
            let index = match self.route("GET", &rel) {
                Found::Route(i, _) if self.collections.contains(&self.router.routes()[i].template) => i,
                _ => {
                    let near = self.router.closest("GET", &rel, 3);
                    problems.push(format!(
                        "{pointer}: `{path}` is not a collection this spec documents (a GET path with an item path \
                         below it); write a concrete path such as {}",
                        if near.is_empty() { "the one a list operation documents".into() } else { near.join(", ") }
                    ));
                    continue;
                }
            };
            let template = &self.router.routes()[index].template;
            let slot = success(g, self.ops[index].node)
                .and_then(|c| pick_media(g, c.response))
                .and_then(|(_, m)| g.get(m, "schema"))
                .and_then(|s| list_slot(g, s));
            let Some(slot) = slot else {
                problems.push(format!("{pointer}: GET {template} documents no list of items to seed"));
                continue;
            };
            let Value::Array(resources) = list else {
                problems.push(format!("{pointer}: must be an array of resources (the items GET {template} lists)"));
                continue;
            };
            // Checked as a request body would be: the fields the server owns
            // (`readOnly`: ids, timestamps) are not the seed's to write.
            let validator =
                schema::compile(&schema::Converter::standalone(g, slot.item, Direction::Request, true), || {
                    schema::Converter::standalone(g, slot.item, Direction::Request, false)
                });
            for (j, resource) in resources.iter().enumerate() {
                if !resource.is_object() {
                    problems.push(format!("{pointer}/{j}: must be an object (a resource GET {template} lists)"));
                    continue;
                }
                // The id first: the mock hands one out when the seed has none.
                let mut resource = resource.clone();
                if resource.get("id").is_none() {
                    let like = ids.collections.get(&rel).and_then(|l| l.first()).and_then(|r| r.get("id")).cloned();
                    resource["id"] = ids.new_id(&rel, like.as_ref());
                }
                if let Ok(v) = &validator {
                    for e in v.iter_errors(&resource).take(3) {
                        problems.push(format!(
                            "{pointer}/{j}{}: {}; make the resource match the items GET {template} lists",
                            e.instance_path(),
                            cut(&e.to_string(), 200)
                        ));
                    }
                }
                ids.collections.entry(rel.clone()).or_default().push(resource);
                total += 1;
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let stores = self.state.as_mut().expect("checked above");
        if total > stores.config.max_resources {
            return Err(vec![format!(
                "(root): {total} resources are more than a store holds ({}); seed fewer",
                stores.config.max_resources
            )]);
        }
        stores.seed = ids.collections;
        Ok(total)
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

    fn answer(&self, caller: &Caller, req: &ApiRequest, headers: &HeaderMap) -> Response {
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
        let lenient_body = !self.strict && matches!(req.method.as_str(), "GET" | "HEAD" | "DELETE");
        let merged = self.patched(caller, req, index, &path_params);
        let notes = match checker.check(merged.as_ref().unwrap_or(req), &path_params, headers, lenient_body) {
            Verdict::Ok(notes) => notes,
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
        };
        for note in &notes {
            tracing::warn!(operation = %label, "rehearsal: {note}");
        }
        let mut response = self.documented(caller, req, headers, index, &label, &path_params);
        response.headers.extend(notes.into_iter().map(|n| (WARNING_HEADER.to_string(), format!("{label}: {n}"))));
        response
    }

    /// A stateful PATCH of a stored resource, as the request it amounts to:
    /// the stored resource with the patch's fields merged in. That is what
    /// the spec's schema is checked against — a PATCH schema often repeats
    /// every required field of the resource, which the real API does not ask
    /// a partial update for. `None` for anything else (checked as sent).
    fn patched(
        &self,
        caller: &Caller,
        req: &ApiRequest,
        index: usize,
        path_params: &[(String, String)],
    ) -> Option<ApiRequest> {
        let stores = self.state.as_ref()?;
        let Body::Json(Value::Object(fields), ct) = &req.body else { return None };
        if req.method != "PATCH" {
            return None;
        }
        let template = self.router.routes()[index].template.as_str();
        let own = own_param(template).filter(|_| self.collections.contains(parent(template)))?;
        let id = path_params.iter().find(|(n, _)| n == own).map(|(_, v)| v.as_str())?;
        let path = self.strip_base(&req.path).trim_end_matches('/');
        let collection = path.rsplit_once('/').map(|(c, _)| c).unwrap_or("");
        let stored = stores.with(caller, |s| {
            s.collections.get(collection)?.iter().find(|r| r.get("id").is_some_and(|v| text_of(v) == id)).cloned()
        })?;
        let Value::Object(mut whole) = stored else { return None };
        for (k, v) in fields {
            whole.insert(k.clone(), v.clone());
        }
        let mut merged = req.clone();
        merged.body = Body::Json(Value::Object(whole), ct.clone());
        Some(merged)
    }

    /// The answer to a request that passed every check: from the caller's
    /// state when the operation is a stateful one, else from the spec.
    fn documented(
        &self,
        caller: &Caller,
        req: &ApiRequest,
        headers: &HeaderMap,
        index: usize,
        label: &str,
        path_params: &[(String, String)],
    ) -> Response {
        let g = &self.spec.graph;
        let op = &self.ops[index];
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
                Some(c) => {
                    if let Some(stores) = &self.state {
                        if let Some(r) = self.stateful(stores, caller, req, index, path_params, &c) {
                            return r;
                        }
                    }
                    c
                }
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
            if let Some(mut body) = body {
                let schema = g.get(*media, "schema");
                if let Some(schema) = schema {
                    self.make_consistent(index, &mut body, schema, path_params, req);
                }
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

    /// The documented default page size of a list operation (`per_page`,
    /// `limit` or `page_size` with a `default`).
    fn default_per_page(&self, index: usize) -> Option<u64> {
        let g = &self.spec.graph;
        let op = &self.ops[index];
        validate::parameters(g, op.item, op.node)
            .iter()
            .filter(|p| p.location == In::Query)
            .filter(|p| matches!(p.name.as_str(), "per_page" | "perPage" | "limit" | "page_size" | "pageSize"))
            .find_map(|p| p.schema.and_then(|s| doc::get_count(g, s, "default")))
    }

    /// Makes a body answered from the spec agree with the request (see
    /// [`consistent`]): a list holds at most a page and its pagination
    /// metadata counts what it holds; path parameters (and, in list items,
    /// query filters) are reflected into the fields that match them.
    fn make_consistent(
        &self,
        index: usize,
        body: &mut Value,
        schema: NodeId,
        path_params: &[(String, String)],
        req: &ApiRequest,
    ) {
        let g = &self.spec.graph;
        let route = &self.router.routes()[index];
        if route.method == "GET" {
            if let Some(slot) = list_slot(g, schema) {
                let page = Page::of(&req.query, self.default_per_page(index));
                let filters = filters(g, slot.item, &req.query);
                let pointer: String = slot.path.iter().map(|k| format!("/{k}")).collect();
                let mut count = 0;
                if let Some(Value::Array(list)) = body.pointer_mut(&pointer) {
                    list.truncate(page.per_page as usize);
                    for item in list.iter_mut() {
                        reflect(g, item, slot.item, path_params, None);
                        reflect(g, item, slot.item, &filters, None);
                    }
                    count = list.len() as u64;
                }
                fix_paging(body, page, count, page.offset + count);
                return;
            }
        }
        let slot = item_slot(g, schema);
        let pointer: String = slot.path.iter().map(|k| format!("/{k}")).collect();
        if let Some(item) = body.pointer_mut(&pointer) {
            reflect(g, item, slot.item, path_params, own_param(&route.template));
        }
    }

    /// The answer from `caller`'s state (see [`state`]), or `None` when the
    /// operation is not one the state answers (not a collection or item
    /// path, no list or item in its response, a body that is not an object):
    /// then the spec answers.
    fn stateful(
        &self,
        stores: &Stores,
        caller: &Caller,
        req: &ApiRequest,
        index: usize,
        path_params: &[(String, String)],
        chosen: &Chosen,
    ) -> Option<Response> {
        if req.method == "HEAD" {
            return None;
        }
        let g = &self.spec.graph;
        let route = &self.router.routes()[index];
        let template = route.template.as_str();
        let path = self.strip_base(&req.path).trim_end_matches('/');
        let media = pick_media(g, chosen.response);
        let schema = media.as_ref().and_then(|(_, m)| g.get(*m, "schema"));
        let mut synth = Synthesizer::with_caches(g, Direction::Response, seed_of(req), self.caches.clone());
        let mut body = schema.map(|s| synth.value(s)).unwrap_or(Value::Null);
        let fields = match &req.body {
            Body::Json(Value::Object(f), _) => Some(f),
            _ => None,
        };
        let max = stores.config.max_resources;
        if self.collections.contains(template) {
            match route.method.as_str() {
                "GET" => {
                    let slot = list_slot(g, schema?)?;
                    let page = Page::of(&req.query, self.default_per_page(index));
                    let filters = filters(g, slot.item, &req.query);
                    let (items, total) = stores.with(caller, |s| {
                        let all = s.collections.get(path).map(Vec::as_slice).unwrap_or_default();
                        let matching: Vec<&Value> = all
                            .iter()
                            .filter(|r| filters.iter().all(|(k, v)| r.get(k).is_some_and(|f| text_of(f) == *v)))
                            .collect();
                        let total = matching.len() as u64;
                        let items: Vec<Value> = matching
                            .into_iter()
                            .skip(page.offset as usize)
                            .take(page.per_page as usize)
                            .cloned()
                            .collect();
                        (items, total)
                    });
                    let count = items.len() as u64;
                    *at_mut(&mut body, &slot.path) = Value::Array(items);
                    fix_paging(&mut body, page, count, total);
                }
                "POST" => {
                    let fields = fields?;
                    let slot = item_slot(g, schema?);
                    let mut item = match at_mut(&mut body, &slot.path).take() {
                        Value::Object(o) => Value::Object(o),
                        _ => json!({}),
                    };
                    reflect(g, &mut item, slot.item, path_params, None);
                    for (k, v) in fields {
                        item[k] = v.clone();
                    }
                    let created = stores.with(caller, |s| {
                        if s.count >= max {
                            return None;
                        }
                        if fields.get("id").is_none() {
                            item["id"] = s.new_id(path, item.get("id"));
                        }
                        s.collections.entry(path.to_string()).or_default().push(item.clone());
                        s.count += 1;
                        Some(item)
                    });
                    let Some(item) = created else {
                        return Some(error(
                            507,
                            format!(
                                "this rehearsal holds {max} resources, the most it keeps; delete some before creating more"
                            ),
                            vec![],
                        ));
                    };
                    *at_mut(&mut body, &slot.path) = item;
                }
                _ => return None,
            }
        } else if let Some(own) = own_param(template).filter(|_| self.collections.contains(parent(template))) {
            let collection = path.rsplit_once('/').map(|(c, _)| c).unwrap_or("");
            let id = path_params.iter().find(|(n, _)| n == own).map(|(_, v)| v.as_str())?;
            let method = route.method.as_str();
            let slot = schema.map(|s| item_slot(g, s));
            if matches!(method, "PUT" | "PATCH") && fields.is_none() {
                return None;
            }
            if !matches!(method, "GET" | "PUT" | "PATCH" | "DELETE") || (method != "DELETE" && slot.is_none()) {
                return None;
            }
            let found = stores.with(caller, |s| {
                let list = s.collections.get_mut(collection)?;
                let at = list.iter().position(|r| r.get("id").is_some_and(|v| text_of(v) == id))?;
                Some(match method {
                    "GET" => list[at].clone(),
                    "DELETE" => {
                        s.count -= 1;
                        list.remove(at)
                    }
                    _ => {
                        let kept_id = list[at].get("id").cloned().unwrap_or(Value::Null);
                        let mut next = if method == "PUT" { json!({}) } else { list[at].clone() };
                        for (k, v) in fields.expect("checked above") {
                            next[k] = v.clone();
                        }
                        next["id"] = kept_id;
                        list[at] = next.clone();
                        next
                    }
                })
            });
            let Some(item) = found else {
                return Some(error(
                    404,
                    format!(
                        "{collection} has no resource `{id}` in this rehearsal (it was never created or seeded, or \
                         it was deleted); GET {collection} lists what exists"
                    ),
                    vec![],
                ));
            };
            if let Some(slot) = slot {
                let place = at_mut(&mut body, &slot.path);
                *place = match (method, place.take()) {
                    // A delete answers with the fields its schema shows (often just the id).
                    ("DELETE", Value::Object(shown)) => {
                        let mut out = serde_json::Map::new();
                        for k in shown.keys().map(String::as_str).chain(["id"]) {
                            if let Some(v) = item.get(k) {
                                out.insert(k.to_string(), v.clone());
                            }
                        }
                        Value::Object(out)
                    }
                    _ => item,
                };
            }
        } else {
            return None;
        }
        let mut response = Response { status: chosen.status, headers: vec![], body: vec![] };
        if let Some((media_type, _)) = media.filter(|_| !body.is_null() && chosen.status != 204) {
            response.body = serde_json::to_vec(&body).expect("JSON serialises");
            let ct = if media_type.contains('*') { "application/json".to_string() } else { media_type };
            response.headers.push(("content-type".into(), ct));
        }
        self.documented_headers(chosen.response, req, &mut response.headers);
        Some(with_mock_header(response))
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
        self.answer(&Caller::default(), req, headers)
    }

    fn respond_for(&self, caller: &Caller, req: &ApiRequest, headers: &HeaderMap) -> Response {
        self.answer(caller, req, headers)
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

/// The name of the last path parameter when it is the whole last segment
/// (`dns_record_id` of `/zones/{zone_id}/dns_records/{dns_record_id}`): the
/// item's own id.
fn own_param(template: &str) -> Option<&str> {
    let last = template.trim_end_matches('/').rsplit('/').next()?;
    last.strip_prefix('{')?.strip_suffix('}').filter(|n| !n.contains(['{', '}']))
}

/// The template one segment up.
fn parent(template: &str) -> &str {
    template.trim_end_matches('/').rsplit_once('/').map(|(p, _)| p).unwrap_or("")
}

/// The query parameters that filter a list: those naming a property of its
/// items (`content=203.0.113.42`), paging ones excepted.
fn filters(g: &Graph, item: NodeId, query: &[(String, String)]) -> Vec<(String, String)> {
    let declared: Vec<&str> = properties(g, item).into_iter().map(|(k, _)| k).collect();
    query
        .iter()
        .filter(|(k, _)| !consistent::PAGING.contains(&k.as_str()) && declared.contains(&k.as_str()))
        .cloned()
        .collect()
}

/// At most `max` characters of `text`.
fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_string(),
    }
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
