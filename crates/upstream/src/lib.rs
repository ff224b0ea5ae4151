//! The host side of `api.request(...)`: everything between the sandbox and an
//! upstream HTTP API.
//!
//! [`Upstream::request`] takes the arguments exactly as the model's code
//! passed them, and:
//! - parses and checks them ([`request`]): relative paths only, no `..`, no
//!   credential or framing headers, no CR/LF, no method overrides
//!   (`X-HTTP-Method-Override`, `_method`);
//! - (policy — scopes, rules, approval — is the host pipeline's, before
//!   this; redirects are followed only as reads, so a write is never sent
//!   anywhere the pipeline did not see);
//! - caps the whole request (URL, headers, body) at `max_request_bytes`;
//! - injects the credential (which never enters the sandbox) and the
//!   configured static headers;
//! - sends with a timeout, retries 429/503 with `Retry-After` for idempotent
//!   methods a bounded number of times;
//! - follows redirects only within the configured origin and base path,
//!   re-adding the credential itself for each hop; a redirect elsewhere is
//!   returned to the code as the 3xx response it is;
//! - caps the response size, decodes JSON, and scrubs every known form of the
//!   credential ([`Scrubber`]) from everything that comes back — data,
//!   header names and values, error messages (an upstream may echo it);
//! - turns non-2xx answers into errors that say what happened and what to do.

// `UpstreamError` is large (it carries the decoded body for the model); it
// is the cold path, and boxing it would change the API every caller uses.
#![allow(clippy::result_large_err)]

pub mod body;
pub mod credential;
pub mod request;
pub mod scrub;

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{json, Map, Value};
use url::Url;

pub use body::{Body, Field, FieldValue, File, Form, FormEncoding};
pub use credential::{per_principal, Passthrough, PerPrincipal, Presented, Who};
pub use request::ApiRequest;
pub use scrub::Scrubber;

/// Most redirects followed for one request (each hop within the API).
pub const MAX_REDIRECTS: usize = 5;

/// Longest URL the HTTP client can send (the `http` crate's URI limit).
pub const MAX_URL_BYTES: usize = u16::MAX as usize - 1;

/// Decides whether a redirect hop (method, path relative to the base URL)
/// may be followed.
pub type Follow = dyn Fn(&str, &str) -> bool + Send + Sync;

/// A secret value: never printed by `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: String) -> Self {
        Secret(value)
    }
    /// The secret itself: only for building the outgoing request.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// How requests to an API are authenticated.
#[derive(Clone, Debug, Default)]
pub enum Auth {
    /// No credential.
    #[default]
    None,
    /// `Authorization: Bearer <token>`.
    Bearer {
        /// The token.
        token: Secret,
        /// Where it came from, for error messages (e.g. `$CLOUDFLARE_API_TOKEN`).
        source: String,
    },
    /// A named header, e.g. `X-Api-Key: <value>`.
    Header {
        /// Header name.
        name: String,
        /// Header value.
        value: Secret,
        /// Where it came from.
        source: String,
    },
    /// HTTP Basic.
    Basic {
        /// User name.
        user: String,
        /// Password.
        password: Secret,
        /// Where it came from.
        source: String,
    },
    /// The credential the MCP client presented (one inbound header),
    /// forwarded per request; see [`credential`].
    Passthrough(Passthrough),
    /// Chosen per principal name or group, with an optional default; see
    /// [`credential`].
    PerPrincipal(std::sync::Arc<PerPrincipal>),
}

impl Auth {
    /// Says which credential is used, without revealing it.
    pub fn describe(&self) -> String {
        match self {
            Auth::None => "no credential".into(),
            Auth::Bearer { source, .. } => format!("the bearer token from {source}"),
            Auth::Header { name, source, .. } => format!("the `{name}` header from {source}"),
            Auth::Basic { user, source, .. } => {
                format!("basic auth as `{user}` with the password from {source}")
            }
            Auth::Passthrough(p) => format!("the credential the client presents in its `{}` header", p.header),
            Auth::PerPrincipal(t) => format!(
                "a credential per principal ({} principals, {} groups, {})",
                t.principals.len(),
                t.groups.len(),
                t.default
                    .as_ref()
                    .map(|d| format!("otherwise {}", d.describe()))
                    .unwrap_or_else(|| "no default".into())
            ),
        }
    }

    /// Strings that must never reach the sandbox: the secret and what the
    /// header value is built from (for basic auth: the password alone,
    /// `user:password` and its base64, the credential part of the header
    /// value). A [`Scrubber`] built from them also finds their encoded forms,
    /// including base64 of a whole `Bearer …` or `Basic …` value. The scheme
    /// word itself is left visible (`Bearer [REDACTED]`), which tells the
    /// code what was sent without saying what it was.
    pub fn secrets(&self) -> Vec<String> {
        match self {
            Auth::None => vec![],
            Auth::Bearer { token, .. } => vec![token.0.clone()],
            Auth::Header { value, .. } => vec![value.0.clone()],
            Auth::Basic { user, password, .. } => {
                let pair = format!("{user}:{}", password.0);
                let b64 = base64::engine::general_purpose::STANDARD.encode(&pair);
                vec![password.0.clone(), pair, b64]
            }
            // Known only per request: the execution adds it to its scrubber.
            Auth::Passthrough(_) => vec![],
            Auth::PerPrincipal(t) => t
                .principals
                .values()
                .chain(t.groups.iter().map(|(_, a)| a))
                .chain(&t.default)
                .flat_map(Auth::secrets)
                .collect(),
        }
    }
}

/// One upstream API.
#[derive(Clone, Debug)]
pub struct UpstreamConfig {
    /// The client's global name (for messages).
    pub name: String,
    /// Base URL; request paths are appended to it.
    pub base_url: Url,
    /// Credential.
    pub auth: Auth,
    /// Static headers added to every request.
    pub headers: Vec<(String, String)>,
    /// Timeout of one HTTP exchange.
    pub timeout: Duration,
    /// Largest request, in bytes: URL path and query, the code's header
    /// names and values, and the body together.
    pub max_request_bytes: usize,
    /// Largest response body, in bytes.
    pub max_response_bytes: usize,
    /// Retries of 429/503 answers with `Retry-After` (idempotent methods).
    pub max_retries: u32,
    /// Longest `Retry-After` wait we honour.
    pub max_retry_wait: Duration,
    /// A path of this API (from its spec) for the examples in error
    /// messages; `None` gives a generic one.
    pub example_path: Option<String>,
}

impl UpstreamConfig {
    /// A config with default limits.
    pub fn new(name: &str, base_url: Url) -> Self {
        UpstreamConfig {
            name: name.into(),
            base_url,
            auth: Auth::None,
            headers: vec![],
            timeout: Duration::from_secs(30),
            max_request_bytes: 1024 * 1024,
            max_response_bytes: 8 * 1024 * 1024,
            max_retries: 2,
            max_retry_wait: Duration::from_secs(10),
            example_path: None,
        }
    }

    /// What [`request::parse_for`] needs to know of this API.
    pub fn api(&self) -> request::Api<'_> {
        request::Api { base_url: Some(&self.base_url), example_path: self.example_path.as_deref() }
    }
}

/// An error for the model: thrown into its code as an `Error` with these fields.
#[derive(Clone, Debug, PartialEq)]
pub struct UpstreamError {
    /// `Error.name`.
    pub name: &'static str,
    /// `Error.message`.
    pub message: String,
    /// HTTP status, when the upstream answered.
    pub status: Option<u16>,
    /// Method and path of the request, when known.
    pub method: Option<String>,
    /// Path of the request.
    pub path: Option<String>,
    /// Decoded response body, when there was one.
    pub data: Option<Value>,
    /// Whether retrying the same request could succeed.
    pub retryable: bool,
}

impl UpstreamError {
    /// Bad arguments to `request(...)`.
    pub fn usage(message: &str) -> Self {
        UpstreamError {
            name: "TypeError",
            message: message.into(),
            status: None,
            method: None,
            path: None,
            data: None,
            retryable: false,
        }
    }
    /// Refused by policy.
    pub fn policy(message: &str) -> Self {
        UpstreamError { name: "PolicyError", ..Self::usage(message) }
    }
    /// As the JSON object the sandbox turns into an `Error`.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("name".into(), json!(self.name));
        m.insert("message".into(), json!(self.message));
        if let Some(s) = self.status {
            m.insert("status".into(), json!(s));
        }
        if let Some(x) = &self.method {
            m.insert("method".into(), json!(x));
        }
        if let Some(x) = &self.path {
            m.insert("path".into(), json!(x));
        }
        if let Some(x) = &self.data {
            m.insert("data".into(), x.clone());
        }
        m.insert("retryable".into(), json!(self.retryable));
        Value::Object(m)
    }
}

/// An in-process stand-in for the network: answers checked requests itself
/// (rehearsal mode answers from the spec). It sees requests exactly as they
/// would be sent — after parsing, policy, size checks and credential
/// injection — and its answers go through the same decoding, scrubbing and
/// error handling as real ones.
pub trait Responder: Send + Sync + 'static {
    /// Answers one request. `headers` are the outgoing headers, credential
    /// included.
    fn respond(&self, req: &ApiRequest, headers: &HeaderMap) -> Response;

    /// Answers one request made for `caller`. A stateful responder keeps its
    /// state per caller (rehearsal mode's per-principal or per-session
    /// stores); the default ignores the caller.
    fn respond_for(&self, caller: &Caller, req: &ApiRequest, headers: &HeaderMap) -> Response {
        let _ = caller;
        self.respond(req, headers)
    }
}

/// Who a request is made for, as the host knows it (never as the code says):
/// the key of a stateful [`Responder`]'s state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Caller {
    /// The authenticated principal's name; `None` over stdio.
    pub principal: Option<String>,
    /// The MCP session; `None` over stdio and in stateless HTTP.
    pub session: Option<String>,
}

/// An answer from a [`Responder`].
#[derive(Clone, Debug, Default)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: Vec<(String, String)>,
    /// Response body.
    pub body: Vec<u8>,
}

/// A client for one upstream API.
#[derive(Clone)]
pub struct Upstream {
    config: UpstreamConfig,
    http: reqwest::Client,
    scrubber: Scrubber,
    responder: Option<std::sync::Arc<dyn Responder>>,
}

impl fmt::Debug for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upstream").field("config", &self.config).field("mock", &self.responder.is_some()).finish()
    }
}

impl Upstream {
    /// Builds the client. The HTTP client itself follows no redirects:
    /// [`Upstream::send`] follows those that stay within the API (see there).
    pub fn new(config: UpstreamConfig) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("codemode/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let scrubber = Scrubber::new(config.auth.secrets());
        Ok(Upstream { config, http, scrubber, responder: None })
    }

    /// The scrubber for this API's credential (applied to everything
    /// [`Upstream::request`] and [`Upstream::send`] return).
    pub fn scrubber(&self) -> &Scrubber {
        &self.scrubber
    }

    /// Answers requests with `responder` instead of the network (rehearsal
    /// mode). Everything else — checks, policy, limits, errors — stays.
    pub fn with_responder(mut self, responder: std::sync::Arc<dyn Responder>) -> Self {
        self.responder = Some(responder);
        self
    }

    /// True when requests are answered by a [`Responder`].
    pub fn is_mocked(&self) -> bool {
        self.responder.is_some()
    }

    /// The same client sending `auth` instead of the configured credential,
    /// with a scrubber for that credential (a signed-in user's own token:
    /// one call's client, never shared with another principal).
    pub fn with_credential(&self, auth: Auth) -> Upstream {
        let mut config = self.config.clone();
        config.auth = auth;
        let scrubber = Scrubber::new(config.auth.secrets());
        Upstream { config, http: self.http.clone(), scrubber, responder: self.responder.clone() }
    }

    /// The configuration.
    pub fn config(&self) -> &UpstreamConfig {
        &self.config
    }

    /// Performs `request(...)` with the arguments the code passed.
    /// `Ok` is `{status, headers, data}`; `Err` is an error object for the code.
    pub async fn request(&self, args: &Value) -> Result<Value, Value> {
        let req = request::parse_for(args, &self.config.api()).map_err(|e| e.to_json())?;
        self.send(req).await.map_err(|e| e.to_json())
    }

    /// Sends a parsed request, applying policy, credentials, retries, limits
    /// and redirects, and scrubs the credential from the answer or error.
    ///
    /// Redirects (at most [`MAX_REDIRECTS`]) are followed only when the
    /// target stays on the configured origin and under the base path; the
    /// credential is added again by the host for each hop. A 303 (and a 301
    /// or 302 after a POST) becomes a GET without body; 307 and 308 keep the
    /// method and body. A redirect anywhere else is not followed: the code
    /// gets the 3xx response itself (status, headers with `location`, body).
    pub async fn send(&self, req: ApiRequest) -> Result<Value, UpstreamError> {
        self.send_guarded(req, &|_, _| true).await
    }

    /// [`Upstream::send`], following a redirect only when `follow(method,
    /// path)` allows the hop (the path relative to the base URL, as the
    /// code would have written it): the host pipeline judges each hop like
    /// a request of its own.
    pub async fn send_guarded(&self, req: ApiRequest, follow: &Follow) -> Result<Value, UpstreamError> {
        self.send_traced(req, follow, &[]).await
    }

    /// [`Upstream::send_guarded`] with the host's W3C trace-context headers
    /// (`traceparent`, `tracestate`) added to the request and every hop.
    /// The code cannot set these itself (`request::parse` refuses them), so
    /// the host's value is the only one sent.
    pub async fn send_traced(
        &self,
        req: ApiRequest,
        follow: &Follow,
        trace: &[(&'static str, String)],
    ) -> Result<Value, UpstreamError> {
        self.send_as(req, follow, trace, &Caller::default()).await
    }

    /// [`Upstream::send_traced`] for `caller`, which a [`Responder`] may
    /// keep state for (the network never sees it).
    pub async fn send_as(
        &self,
        req: ApiRequest,
        follow: &Follow,
        trace: &[(&'static str, String)],
        caller: &Caller,
    ) -> Result<Value, UpstreamError> {
        self.send_for(req, follow, trace, caller, &Who::nobody(), &self.scrubber).await
    }

    /// The scrubber a request for `who` is answered through: this API's
    /// own secrets, plus whatever `who`'s client presented when the API's
    /// credential depends on the principal. Building one compiles an
    /// automaton over every encoding of those secrets, so a caller sending
    /// several requests for one execution builds it once and hands it to
    /// each [`Upstream::send_for`].
    pub fn scrubber_for(&self, who: &Who<'_>) -> Scrubber {
        if self.config.auth.is_dynamic() && !who.presented.is_empty() {
            self.scrubber.with(who.presented.secrets())
        } else {
            self.scrubber.clone()
        }
    }

    /// [`Upstream::send_as`] with the credential chosen for `who`: a
    /// pass-through or per-principal credential is resolved here, for this
    /// request only (a refusal is a `PolicyError` and nothing is sent), and
    /// the answer is scrubbed with `scrubber`, which must come from
    /// [`Upstream::scrubber_for`] for the same `who` (so whatever `who`'s
    /// client presented is scrubbed beside the API's own secrets).
    pub async fn send_for(
        &self,
        req: ApiRequest,
        follow: &Follow,
        trace: &[(&'static str, String)],
        caller: &Caller,
        who: &Who<'_>,
        scrubber: &Scrubber,
    ) -> Result<Value, UpstreamError> {
        if !self.config.auth.is_dynamic() {
            return self.send_scrubbed(req, follow, trace, caller).await;
        }
        let auth = match self.config.auth.resolve(&self.config.name, who) {
            Ok(a) => a.into_owned(),
            Err(mut e) => {
                e.method = Some(req.method.clone());
                e.path = Some(self.scrubber.scrub_str(&req.path).into_owned());
                return Err(e);
            }
        };
        // A view of this client with the concrete credential: everything
        // downstream (headers, redirect hops, error messages) reads
        // `config.auth`, and the scrubber also knows what was presented.
        let mut view = self.clone();
        view.config.auth = auth;
        view.scrubber = scrubber.clone();
        view.send_scrubbed(req, follow, trace, caller).await
    }

    async fn send_scrubbed(
        &self,
        req: ApiRequest,
        follow: &Follow,
        trace: &[(&'static str, String)],
        caller: &Caller,
    ) -> Result<Value, UpstreamError> {
        match self.send_unscrubbed(req, follow, trace, caller).await {
            Ok(mut v) => {
                self.scrubber.scrub_value(&mut v);
                Ok(v)
            }
            Err(mut e) => {
                if let Cow::Owned(m) = self.scrubber.scrub_str(&e.message) {
                    e.message = m;
                }
                for s in [&mut e.method, &mut e.path].into_iter().flatten() {
                    if let Cow::Owned(clean) = self.scrubber.scrub_str(s) {
                        *s = clean;
                    }
                }
                if let Some(d) = &mut e.data {
                    self.scrubber.scrub_value(d);
                }
                Err(e)
            }
        }
    }

    async fn send_unscrubbed(
        &self,
        req: ApiRequest,
        follow: &Follow,
        trace: &[(&'static str, String)],
        caller: &Caller,
    ) -> Result<Value, UpstreamError> {
        let with_req = |mut e: UpstreamError| {
            e.method = Some(req.method.clone());
            e.path = Some(req.path.clone());
            e
        };
        // `request::parse` refuses these already; a request built in Rust
        // gets the same check.
        request::check_method_override(&req).map_err(with_req)?;
        let url = self.url_for(&req).map_err(with_req)?;
        let (body, content_type) = match req.body.encode() {
            Some((bytes, ct)) => (Some(bytes), Some(ct)),
            None => (None, None),
        };
        self.check_size(&url, &req, body.as_deref()).map_err(with_req)?;
        let mut headers = self.headers(&req, content_type.as_deref()).map_err(with_req)?;
        for (name, value) in trace {
            // Built by the host from a parsed context: always valid, but a
            // bad value is dropped rather than failing the request.
            if let Ok(v) = HeaderValue::from_str(value) {
                headers.insert(*name, v);
            }
        }
        let method = reqwest::Method::from_bytes(req.method.as_bytes()).expect("method was checked");
        let idempotent = matches!(req.method.as_str(), "GET" | "HEAD" | "PUT" | "DELETE" | "OPTIONS");
        if let Some(responder) = &self.responder {
            let mut answered = req.clone();
            answered.query = url.query_pairs().into_owned().collect();
            let r = responder.respond_for(caller, &answered, &headers);
            if r.body.len() > self.config.max_response_bytes {
                return Err(with_req(UpstreamError {
                    name: "UpstreamError",
                    message: format!(
                        "the response is larger than the limit of {} bytes; ask for less (filters, smaller pages, fewer fields)",
                        self.config.max_response_bytes
                    ),
                    status: Some(r.status),
                    method: None,
                    path: None,
                    data: None,
                    retryable: false,
                }));
            }
            let mut map = Map::new();
            let mut content_type = String::new();
            for (k, v) in &r.headers {
                if k.eq_ignore_ascii_case("content-type") {
                    content_type = v.to_ascii_lowercase();
                }
                map.insert(k.to_ascii_lowercase(), Value::String(v.clone()));
            }
            if (200..400).contains(&r.status) {
                return Ok(self.answer(r.status, map, &r.body, &content_type));
            }
            let data = self.decode(&r.body, &content_type).into_value(&content_type);
            let status = reqwest::StatusCode::from_u16(r.status).unwrap_or(reqwest::StatusCode::INTERNAL_SERVER_ERROR);
            return Err(with_req(self.status_error(status, data, &req)));
        }
        let (mut method, mut url, mut body, mut headers) = (method, url, body, headers);
        let mut idempotent = idempotent;
        let mut attempt = 0;
        let mut hops = 0;
        loop {
            let mut builder =
                self.http.request(method.clone(), url.clone()).headers(headers.clone()).timeout(self.config.timeout);
            if let Some(b) = &body {
                builder = builder.body(b.clone());
            }
            let resp = builder.send().await.map_err(|e| with_req(self.transport_error(e)))?;
            let status = resp.status().as_u16();
            if (status == 429 || status == 503) && idempotent && attempt < self.config.max_retries {
                if let Some(wait) = retry_after(resp.headers()) {
                    if wait <= self.config.max_retry_wait {
                        attempt += 1;
                        tracing::debug!(api = %self.config.name, status, ?wait, attempt, "retrying after Retry-After");
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                }
            }
            if matches!(status, 301 | 302 | 303 | 307 | 308) && hops < MAX_REDIRECTS {
                if let Some(next) = self.redirect_target(&url, resp.headers()) {
                    let next_method = match status {
                        303 if method != reqwest::Method::HEAD => reqwest::Method::GET,
                        301 | 302 if method == reqwest::Method::POST => reqwest::Method::GET,
                        _ => method.clone(),
                    };
                    // Policy (the host pipeline) decided on this request:
                    // a redirect is followed only as a read. A write sent
                    // on elsewhere would skip the rules for that path, so
                    // the code gets the 3xx and may ask again.
                    if matches!(next_method.as_str(), "GET" | "HEAD")
                        && follow(next_method.as_str(), &self.relative(&next))
                    {
                        if next_method != method {
                            body = None;
                            headers.remove(reqwest::header::CONTENT_TYPE);
                        }
                        tracing::debug!(api = %self.config.name, status, to = %next.path(), "following a redirect within the API");
                        hops += 1;
                        attempt = 0;
                        idempotent = matches!(next_method.as_str(), "GET" | "HEAD" | "PUT" | "DELETE" | "OPTIONS");
                        method = next_method;
                        url = next;
                        continue;
                    }
                }
            }
            return self.read_response(resp, &req).await.map_err(with_req);
        }
    }

    /// Where a redirect response points, when that is within the API
    /// (configured origin, under the base path, no dot segments); `None`
    /// when it must not be followed.
    /// A URL in scope as a path relative to the base URL, with its query.
    fn relative(&self, url: &Url) -> String {
        let base_path = self.config.base_url.path().trim_end_matches('/');
        let rest = url.path().strip_prefix(base_path).unwrap_or(url.path());
        let rest = if rest.is_empty() { "/" } else { rest };
        match url.query() {
            Some(q) => format!("{rest}?{q}"),
            None => rest.to_string(),
        }
    }

    fn redirect_target(&self, from: &Url, headers: &HeaderMap) -> Option<Url> {
        let location = headers.get(reqwest::header::LOCATION)?.to_str().ok()?;
        let next = from.join(location).ok()?;
        self.in_scope(&next).then_some(next)
    }

    /// True when `url` is on the configured origin and under its base path
    /// (whole segments: base `/v1` does not cover `/v10`), with a path the
    /// path checks accept.
    fn in_scope(&self, url: &Url) -> bool {
        let base_path = self.config.base_url.path().trim_end_matches('/');
        let path = url.path();
        let under = path == base_path || path.strip_prefix(base_path).is_some_and(|rest| rest.starts_with('/'));
        url.origin() == self.config.base_url.origin()
            && under
            && url.username() == self.config.base_url.username()
            && url.password() == self.config.base_url.password()
            && request::check_path(path).is_ok()
    }

    /// The whole request — URL path and query, the code's header names and
    /// values, the body — must fit `max_request_bytes`, and the URL the
    /// HTTP client's limit.
    fn check_size(&self, url: &Url, req: &ApiRequest, body: Option<&[u8]>) -> Result<(), UpstreamError> {
        let url_bytes = url.path().len() + url.query().map_or(0, |q| q.len() + 1);
        let header_bytes: usize = req.headers.iter().map(|(k, v)| k.len() + v.len()).sum();
        let body_bytes = body.map_or(0, <[u8]>::len);
        let total = url_bytes + header_bytes + body_bytes;
        let limit = self.config.max_request_bytes;
        if total > limit {
            return Err(UpstreamError::policy(&format!(
                "the request is {total} bytes (path and query {url_bytes}, headers {header_bytes}, body {body_bytes}), larger than the limit of {limit} bytes ({kib} KiB: `max_request_kib = {kib}` in the codemode config's [limits]) for the `{}` API. Send less: fewer or shorter query parameters and headers, a smaller body, or split the work into several requests",
                self.config.name,
                kib = limit / 1024
            )));
        }
        let full = url.as_str().len();
        if full > MAX_URL_BYTES {
            return Err(UpstreamError::policy(&format!(
                "the URL is {full} bytes, longer than the {MAX_URL_BYTES} bytes an HTTP request URL can have here. Move large values out of the path and query (into the body, if the operation takes one) or split the request"
            )));
        }
        Ok(())
    }

    /// The URL a request goes to: the base URL, the path, the query. Refused
    /// when it would leave the configured origin and base path.
    pub fn url_for(&self, req: &ApiRequest) -> Result<Url, UpstreamError> {
        let base = self.config.base_url.as_str().trim_end_matches('/');
        let mut url = Url::parse(&format!("{base}{}", req.path))
            .map_err(|e| UpstreamError::policy(&format!("the path does not form a valid URL: {e}")))?;
        // Defence in depth: whatever the path parser let through, the URL
        // must still be on the configured origin and under its base path.
        if !self.in_scope(&url) {
            return Err(UpstreamError::policy(
                "the path would leave the configured API; pass a path relative to the API's base URL, such as \"/zones\"",
            ));
        }
        if !req.query.is_empty() {
            url.query_pairs_mut().extend_pairs(req.query.iter());
        }
        Ok(url)
    }

    fn headers(&self, req: &ApiRequest, content_type: Option<&str>) -> Result<HeaderMap, UpstreamError> {
        let mut h = HeaderMap::new();
        let mut put = |name: &str, value: &str| -> Result<(), UpstreamError> {
            let n = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| UpstreamError::policy(&format!("invalid header name `{name}`")))?;
            let v = HeaderValue::from_str(value)
                .map_err(|_| UpstreamError::policy(&format!("invalid value for header `{name}`")))?;
            h.insert(n, v);
            Ok(())
        };
        put("accept", "application/json, */*;q=0.5")?;
        // Bodies come back as sent, so the scrubber sees every byte: a
        // compressed body would hide an echoed credential from it (see
        // `read_response`, which withholds one).
        put("accept-encoding", "identity")?;
        for (k, v) in &self.config.headers {
            put(k, v)?;
        }
        for (k, v) in &req.headers {
            if let Auth::Header { name, .. } = &self.config.auth {
                if name.eq_ignore_ascii_case(k) {
                    return Err(UpstreamError::policy(&format!(
                        "the `{k}` header carries this API's credential and cannot be set from code"
                    )));
                }
            }
            put(k, v)?;
        }
        if let Some(ct) = content_type {
            put("content-type", ct)?;
        }
        match &self.config.auth {
            Auth::None => {}
            Auth::Bearer { token, .. } => {
                let mut v = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
                    .map_err(|_| UpstreamError::policy("the configured bearer token is not a valid header value"))?;
                v.set_sensitive(true);
                h.insert(reqwest::header::AUTHORIZATION, v);
            }
            Auth::Header { name, value, .. } => {
                let n = HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| UpstreamError::policy("invalid credential header name"))?;
                let mut v = HeaderValue::from_str(value.expose())
                    .map_err(|_| UpstreamError::policy("the configured credential is not a valid header value"))?;
                v.set_sensitive(true);
                h.insert(n, v);
            }
            Auth::Basic { user, password, .. } => {
                let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{}", password.expose()));
                let mut v = HeaderValue::from_str(&format!("Basic {b64}")).expect("base64 is a valid header value");
                v.set_sensitive(true);
                h.insert(reqwest::header::AUTHORIZATION, v);
            }
            // `send_for` resolves these to one of the above first.
            Auth::Passthrough(_) | Auth::PerPrincipal(_) => {
                return Err(UpstreamError::policy(
                    "this API's credential is chosen per principal and was not resolved for this request",
                ))
            }
        }
        Ok(h)
    }

    fn transport_error(&self, e: reqwest::Error) -> UpstreamError {
        let base = self.config.base_url.as_str();
        let message = if e.is_timeout() {
            format!(
                "the `{}` API did not answer within {:?}; try again later or ask for less",
                self.config.name, self.config.timeout
            )
        } else if e.is_connect() {
            format!("could not connect to the `{}` API at {base}: {}", self.config.name, root_cause(&e))
        } else {
            format!("the request to the `{}` API failed: {}", self.config.name, root_cause(&e))
        };
        UpstreamError {
            name: "UpstreamError",
            message,
            status: None,
            method: None,
            path: None,
            data: None,
            retryable: true,
        }
    }

    async fn read_response(&self, mut resp: reqwest::Response, req: &ApiRequest) -> Result<Value, UpstreamError> {
        let status = resp.status();
        let mut headers = Map::new();
        for (k, v) in resp.headers() {
            if let Ok(text) = v.to_str() {
                headers.insert(k.as_str().to_string(), Value::String(text.to_string()));
            }
        }
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let mut bytes: Vec<u8> = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if bytes.len() + chunk.len() > self.config.max_response_bytes {
                        return Err(UpstreamError {
                            name: "UpstreamError",
                            message: format!(
                                "the response is larger than the limit of {} bytes; ask for less (filters, smaller pages, fewer fields)",
                                self.config.max_response_bytes
                            ),
                            status: Some(status.as_u16()),
                            method: None,
                            path: None,
                            data: None,
                            retryable: false,
                        });
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return Err(self.transport_error(e)),
            }
        }
        if let Some(coding) = content_coding(resp.headers()).filter(|_| !bytes.is_empty()) {
            return Err(compressed_body(status.as_u16(), &coding));
        }
        if status.is_success() || status.is_redirection() {
            return Ok(self.answer(status.as_u16(), headers, &bytes, &content_type));
        }
        let data = self.decode(&bytes, &content_type).into_value(&content_type);
        Err(self.status_error(status, data, req))
    }

    /// A 2xx/3xx answer as the code gets it: `{status, headers, data}`, or
    /// for a binary body `{status, headers, data: null, "$bytes": base64}`
    /// — a top-level key only the host sets (a JSON body cannot), which the
    /// client bridge turns into `data` as a `Uint8Array`. The bytes are
    /// scrubbed before they are encoded (literal forms of every secret; a
    /// match becomes `[REDACTED]` in the bytes).
    fn answer(&self, status: u16, headers: Map<String, Value>, bytes: &[u8], content_type: &str) -> Value {
        match self.decode(bytes, content_type) {
            Decoded::Value(data) => json!({"status": status, "headers": headers, "data": data}),
            Decoded::Bytes => {
                let clean = self.scrubber.scrub_bytes(bytes);
                let b64 = base64::engine::general_purpose::STANDARD.encode(&clean);
                json!({"status": status, "headers": headers, "data": null, (body::BYTES_KEY): b64})
            }
        }
    }

    fn decode(&self, bytes: &[u8], content_type: &str) -> Decoded {
        if bytes.is_empty() {
            return Decoded::Value(Value::Null);
        }
        // Not scrubbed here: `send` scrubs the decoded value (every string and
        // key after JSON decoding, so escapes do not hide a secret).
        let text = match std::str::from_utf8(bytes) {
            Ok(t) if !is_binary_type(content_type) => t,
            _ => return Decoded::Bytes,
        };
        if content_type.contains("json") || text.trim_start().starts_with(['{', '[']) {
            if let Ok(v) = serde_json::from_str(text) {
                return Decoded::Value(v);
            }
        }
        Decoded::Value(Value::String(text.to_string()))
    }

    fn status_error(&self, status: reqwest::StatusCode, data: Value, req: &ApiRequest) -> UpstreamError {
        let code = status.as_u16();
        let reason = status.canonical_reason().unwrap_or("");
        let upstream_says = upstream_message(&data).map(|m| format!(": {m}")).unwrap_or_default();
        let mut message = format!("{} {} → {code} {reason}{upstream_says}", req.method, req.path);
        let retryable = matches!(code, 408 | 429 | 500 | 502 | 503 | 504);
        match code {
            401 | 403 => match self.config.auth {
                Auth::None => message.push_str(
                    ". No credential is configured for this API, so none was sent; retrying will not help. Set `auth` for it in the codemode config.",
                ),
                _ => message.push_str(&format!(
                    ". The API refused {}; retrying will not help. {}",
                    self.config.auth.describe(),
                    if code == 401 {
                        "The credential is missing, invalid or expired."
                    } else {
                        "The credential lacks a permission this operation needs."
                    }
                )),
            },
            404 => message.push_str(". Check the path and its parameters against the spec with `search`."),
            400 | 422 => {
                message.push_str(". Check the parameters and body against the operation's schema with `search`.")
            }
            _ if retryable => message.push_str(". This may be temporary: retrying later can succeed."),
            _ => {}
        }
        UpstreamError {
            name: "UpstreamError",
            message,
            status: Some(code),
            method: None,
            path: None,
            data: Some(data),
            retryable,
        }
    }
}

/// A response body, decoded.
enum Decoded {
    /// JSON or text.
    Value(Value),
    /// Not text: handed to the code as bytes.
    Bytes,
}

impl Decoded {
    /// As the `data` of an error, where a binary body is only described
    /// (error bodies are for reading, and rarely binary).
    fn into_value(self, content_type: &str) -> Value {
        match self {
            Decoded::Value(v) => v,
            Decoded::Bytes => json!({"binary": true, "contentType": content_type}),
        }
    }
}

/// The response's `Content-Encoding` when it is not `identity`: codemode
/// decodes none (it asks for `identity`), so such a body is opaque to the
/// scrubber.
fn content_coding(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(reqwest::header::CONTENT_ENCODING)?.to_str().unwrap_or("?").trim().to_ascii_lowercase();
    (!v.is_empty() && v != "identity").then_some(v)
}

/// The error for a body codemode cannot check for credentials: an echoed
/// credential inside compressed bytes would pass every scrub, and code can
/// decompress in JavaScript, so the body is withheld (status kept).
fn compressed_body(status: u16, coding: &str) -> UpstreamError {
    UpstreamError {
        name: "UpstreamError",
        message: format!(
            "the API answered {status} with a compressed body (`Content-Encoding: {}`) although codemode asked for `identity`; \
             codemode does not decode it, so it cannot check it for credentials, and withholds it. \
             Remove any `Accept-Encoding` header you set, or use an endpoint that answers uncompressed",
            coding.chars().take(40).collect::<String>()
        ),
        status: Some(status),
        method: None,
        path: None,
        data: None,
        retryable: false,
    }
}

/// Content types whose bodies are bytes even when they happen to be valid
/// UTF-8 (a small PNG or random bytes can be): images (but SVG, which is
/// XML text), audio, video, fonts, and the common binary application types.
/// Any other body that is not UTF-8 is bytes too.
fn is_binary_type(content_type: &str) -> bool {
    let mime = content_type.split(';').next().unwrap_or("").trim();
    let (kind, sub) = mime.split_once('/').unwrap_or((mime, ""));
    match kind {
        "image" => !sub.starts_with("svg"),
        "audio" | "video" | "font" => true,
        "application" => matches!(
            sub,
            "octet-stream"
                | "pdf"
                | "zip"
                | "gzip"
                | "x-gzip"
                | "x-tar"
                | "x-7z-compressed"
                | "wasm"
                | "protobuf"
                | "x-protobuf"
                | "vnd.apache.parquet"
                | "x-bzip2"
                | "zstd"
        ),
        _ => false,
    }
}

/// The upstream's own error message, from the usual places.
fn upstream_message(data: &Value) -> Option<String> {
    let pick = |v: &Value| -> Option<String> {
        match v {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Object(o) => ["message", "error_description", "detail", "error", "title"]
                .iter()
                .find_map(|k| o.get(*k).and_then(Value::as_str).map(String::from)),
            _ => None,
        }
    };
    let found = match data {
        Value::Object(o) => pick(data)
            .or_else(|| o.get("errors").and_then(|e| e.as_array()).and_then(|a| a.first()).and_then(pick))
            .or_else(|| o.get("error").and_then(pick)),
        Value::String(s) => Some(s.clone()),
        _ => None,
    }?;
    let found = found.trim().to_string();
    Some(if found.chars().count() > 300 {
        format!("{}…", found.chars().take(300).collect::<String>())
    } else {
        found
    })
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(when.duration_since(std::time::SystemTime::now()).unwrap_or(Duration::ZERO))
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur: &(dyn std::error::Error + 'static) = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let a = Auth::Bearer { token: Secret::new("canary-123456".into()), source: "$TOKEN".into() };
        assert!(!format!("{a:?}").contains("canary"));
        assert_eq!(a.describe(), "the bearer token from $TOKEN");
    }

    #[test]
    fn responses_are_scrubbed_of_credentials() {
        let mut c = UpstreamConfig::new("t", Url::parse("http://127.0.0.1:1/").unwrap());
        c.auth = Auth::Basic { user: "u".into(), password: Secret::new("hunter22".into()), source: "$P".into() };
        let _ = rustls::crypto::ring::default_provider().install_default();
        let u = Upstream::new(c).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode("u:hunter22");
        let body = format!("{{\"auth\": \"Basic {b64}\", \"p\": \"hunter22\"}}");
        let v = u.answer(200, Map::new(), body.as_bytes(), "application/json");
        let v = u.scrubber().scrubbed(v);
        assert_eq!(v["data"], json!({"auth": "Basic [REDACTED]", "p": "[REDACTED]"}));
        // Bytes are scrubbed before they are encoded for the code.
        let v = u.answer(200, Map::new(), b"\x89PNG\0 hunter22 \xff", "image/png");
        let bytes = base64::engine::general_purpose::STANDARD.decode(v["$bytes"].as_str().unwrap()).unwrap();
        assert_eq!(bytes, b"\x89PNG\0 [REDACTED] \xff");
        assert_eq!(v["data"], Value::Null);
    }

    #[test]
    fn a_per_call_credential_is_sent_alone_and_scrubbed() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut c = UpstreamConfig::new("t", Url::parse("http://127.0.0.1:1/").unwrap());
        c.auth = Auth::Bearer { token: Secret::new("service-token-1".into()), source: "$S".into() };
        let shared = Upstream::new(c).unwrap();
        let user = shared
            .with_credential(Auth::Bearer { token: Secret::new("user-token-2".into()), source: "sign-in".into() });
        let req = request::parse(&json!([{"path": "/x"}])).unwrap();
        let h = user.headers(&req, None).unwrap();
        assert_eq!(h[reqwest::header::AUTHORIZATION], "Bearer user-token-2");
        assert!(h[reqwest::header::AUTHORIZATION].is_sensitive());
        let v = user.answer(200, Map::new(), b"{\"echo\": \"Bearer user-token-2\"}", "application/json");
        assert_eq!(user.scrubber().scrubbed(v)["data"], json!({"echo": "Bearer [REDACTED]"}));
        // The shared client keeps its own credential.
        assert_eq!(shared.headers(&req, None).unwrap()[reqwest::header::AUTHORIZATION], "Bearer service-token-1");
    }

    #[test]
    fn binary_bodies_are_bytes_and_text_stays_text() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let u = Upstream::new(UpstreamConfig::new("t", Url::parse("http://127.0.0.1:1/").unwrap())).unwrap();
        for (ct, body) in
            [("image/png", &b"abc"[..]), ("application/octet-stream", b"abc"), ("text/plain", b"\xff\xfe")]
        {
            let v = u.answer(200, Map::new(), body, ct);
            assert_eq!(
                v["$bytes"].as_str().map(|b| base64::engine::general_purpose::STANDARD.decode(b).unwrap()),
                Some(body.to_vec()),
                "{ct}"
            );
        }
        for (ct, body) in [("image/svg+xml", &b"<svg/>"[..]), ("text/csv", b"a,b"), ("", b"plain")] {
            let v = u.answer(200, Map::new(), body, ct);
            assert!(v.get("$bytes").is_none() && v["data"].is_string(), "{ct}: {v}");
        }
    }

    #[test]
    fn upstream_messages_are_found() {
        assert_eq!(
            upstream_message(&json!({"errors": [{"code": 9109, "message": "Invalid token"}]})).as_deref(),
            Some("Invalid token")
        );
        assert_eq!(upstream_message(&json!({"message": "Not Found"})).as_deref(), Some("Not Found"));
        assert_eq!(upstream_message(&json!({"error": {"message": "x"}})).as_deref(), Some("x"));
    }
}
