//! Parsing and checking what the code passed to `request(...)`.
//!
//! Two forms are accepted:
//! - the object form `{method, path, query?, body?, headers?, contentType?, rawBody?, form?}`
//!   (`rawBody` text or bytes, `form` fields and files: see [`crate::body`]);
//! - the octokit-style route form `("GET /zones/{zone_id}/dns_records", {zone_id, per_page: 50})`,
//!   where path parameters are substituted percent-encoded and the remaining
//!   fields go to the query (GET/HEAD/DELETE) or the JSON body (others);
//!   a `headers` field is taken as headers.
//!
//! A path may also be a full URL inside the API's base URL (a `Next-Page`
//! or `Link` header passed on as it came): it is read as the relative path
//! it names, and any other absolute URL is refused (see [`relative_to_base`]).
//!
//! Everything here treats its input as hostile: the checks are what keep a
//! request on the configured API.

use std::borrow::Cow;

use serde_json::{Map, Value};
use url::Url;

pub use crate::body::Body;
use crate::body::{bytes_of, Field, FieldValue, File, Form, FormEncoding};
use crate::UpstreamError;

/// A request the code asked for, checked and normalised.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiRequest {
    /// Upper-case method.
    pub method: String,
    /// Path relative to the base URL, starting with `/`, already encoded.
    pub path: String,
    /// Query parameters, in order.
    pub query: Vec<(String, String)>,
    /// Extra headers (validated).
    pub headers: Vec<(String, String)>,
    /// The body to send.
    pub body: Body,
}

const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// Headers the code may never set: credentials, routing and framing belong
/// to the host.
const FORBIDDEN_HEADERS: [&str; 21] = [
    // Routing overrides (IIS, Symfony, some proxies route by these, not by
    // the request line — rules would judge one path and the server act on
    // another).
    "x-original-url",
    "x-rewrite-url",
    "x-override-url",
    "x-forwarded-prefix",
    "x-forwarded-uri",
    "authorization",
    "proxy-authorization",
    "cookie",
    "host",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-connection",
    "content-length",
    "expect",
    "forwarded",
    // W3C trace context: the host sends its own (the call's span), so the
    // code can neither forge where an upstream's trace hangs nor split it.
    "traceparent",
    "tracestate",
];

/// Headers that ask a server to treat the request as another method. Many
/// frameworks honour them, so a GET carrying `X-HTTP-Method-Override: DELETE`
/// would pass the read-only policy and still delete.
const METHOD_OVERRIDE_HEADERS: [&str; 3] = ["x-http-method-override", "x-method-override", "x-http-method"];

/// The query parameter with the same effect (Rails, Laravel, Express's
/// `method-override`, …).
const METHOD_OVERRIDE_PARAM: &str = "_method";

/// What [`parse_for`] knows of the API a request is for.
#[derive(Clone, Copy, Debug, Default)]
pub struct Api<'a> {
    /// The base URL: an absolute URL inside it is read as the path it names.
    /// Without one every absolute URL is refused.
    pub base_url: Option<&'a Url>,
    /// A path of this API for the examples in messages (`/books`); without
    /// one the messages say `/path`.
    pub example_path: Option<&'a str>,
}

impl Api<'_> {
    fn example(&self) -> &str {
        self.example_path.unwrap_or("/path")
    }
}

/// Parses the arguments array of a `request(...)` call, knowing nothing of
/// the API (absolute URLs are refused, examples are generic).
pub fn parse(args: &Value) -> Result<ApiRequest, UpstreamError> {
    parse_for(args, &Api::default())
}

/// Parses the arguments array of a `request(...)` call to `api`.
pub fn parse_for(args: &Value, api: &Api<'_>) -> Result<ApiRequest, UpstreamError> {
    let req = parse_form(args, api)?;
    check_method_override(&req)?;
    Ok(req)
}

/// Refuses requests that ask the server to apply another method than the
/// one sent (`X-HTTP-Method-Override`, `X-Method-Override`, `X-HTTP-Method`,
/// a `_method` query parameter): policy is decided on the real method, so
/// the code must send that.
pub fn check_method_override(req: &ApiRequest) -> Result<(), UpstreamError> {
    let refuse = |what: String, wanted: &str| {
        let wanted = wanted.trim().to_ascii_uppercase();
        let wanted = if wanted.is_empty() { "DELETE".to_string() } else { wanted.chars().take(20).collect() };
        Err(UpstreamError::policy(&format!(
            "{what} refused: it asks the server to treat this {} as another method, which would step around this API's method policy. Remove it and send the real method instead, e.g. request({{method: \"{wanted}\", path: \"{}\"}})",
            req.method,
            req.path.chars().take(200).collect::<String>()
        )))
    };
    for (name, value) in &req.headers {
        if METHOD_OVERRIDE_HEADERS.iter().any(|h| h.eq_ignore_ascii_case(name)) {
            return refuse(format!("the `{name}` header"), value);
        }
    }
    for (name, value) in &req.query {
        if name.eq_ignore_ascii_case(METHOD_OVERRIDE_PARAM) {
            return refuse(format!("the `{name}` query parameter"), value);
        }
    }
    // Rails, Laravel and Symfony also read `_method` from the body.
    match &req.body {
        Body::Json(Value::Object(m), _) => {
            if let Some((k, v)) = m.iter().find(|(k, _)| k.eq_ignore_ascii_case(METHOD_OVERRIDE_PARAM)) {
                return refuse(format!("the `{k}` field of the body"), v.as_str().unwrap_or_default());
            }
        }
        Body::Form(form) => {
            if let Some(f) = form.fields.iter().find(|f| f.name.eq_ignore_ascii_case(METHOD_OVERRIDE_PARAM)) {
                let wanted = match &f.value {
                    FieldValue::Text(t) => t.as_str(),
                    FieldValue::File(_) => "",
                };
                return refuse(format!("the `{}` field of the form", f.name), wanted);
            }
        }
        Body::Raw(..) | Body::Bytes(..) => {
            // Bytes that are text are read as text: a server cannot tell.
            let text = match &req.body {
                Body::Raw(text, _) => text.as_str(),
                Body::Bytes(b, _) => std::str::from_utf8(b).unwrap_or_default(),
                _ => "",
            };
            let lower = text.to_ascii_lowercase();
            // form-urlencoded (`_method=DELETE`, also percent-encoded) and
            // multipart (`name="_method"`), whatever the declared type.
            let form = lower.split('&').find_map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                let k =
                    percent_encoding::percent_decode_str(&k.replace('+', " ")).decode_utf8_lossy().trim().to_string();
                (k == METHOD_OVERRIDE_PARAM).then(|| v.to_string())
            });
            if let Some(v) = form {
                return refuse("the `_method` field of the body".into(), &v);
            }
            if lower.contains("name=\"_method\"") || lower.contains("name=_method") {
                return refuse("the `_method` part of the body".into(), "");
            }
        }
        _ => {}
    }
    Ok(())
}

fn parse_form(args: &Value, api: &Api<'_>) -> Result<ApiRequest, UpstreamError> {
    let args = args.as_array().ok_or_else(|| usage("the arguments must be an array"))?;
    match args.first() {
        Some(Value::String(route)) => parse_route(route, args.get(1), api),
        Some(Value::Object(obj)) => {
            if args.len() > 1 {
                return Err(usage("with the object form pass a single object: request({method, path, query, body})"));
            }
            parse_object(obj, api)
        }
        _ => Err(usage(
            "call request({method: \"GET\", path: \"/...\", query, body}) or request(\"GET /path/{param}\", {param, ...})",
        )),
    }
}

fn parse_object(obj: &Map<String, Value>, api: &Api<'_>) -> Result<ApiRequest, UpstreamError> {
    for k in obj.keys() {
        if !matches!(k.as_str(), "method" | "path" | "query" | "body" | "headers" | "contentType" | "rawBody" | "form")
        {
            return Err(usage(&format!(
                "unknown field `{k}`; the fields are method, path, query, body, headers, contentType, rawBody, form"
            )));
        }
    }
    let method = match obj.get("method") {
        None => "GET".to_string(),
        Some(Value::String(m)) => m.to_ascii_uppercase(),
        Some(_) => return Err(usage("`method` must be a string such as \"GET\"")),
    };
    check_method(&method)?;
    let path = obj.get("path").and_then(Value::as_str).ok_or_else(|| {
        usage(&format!("`path` is required: a path relative to the API's base URL, such as \"{}\"", api.example()))
    })?;
    let path = relative_to_base(path, api)?;
    let (path, mut query) = split_query(&path)?;
    let path = check_path_for(&path, api)?;
    match obj.get("query") {
        None | Some(Value::Null) => {}
        Some(Value::Object(q)) => query.extend(query_pairs(q)?),
        Some(_) => return Err(usage("`query` must be an object of parameter names to values")),
    }
    let headers = parse_headers(obj.get("headers"))?;
    let content_type = match obj.get("contentType") {
        None | Some(Value::Null) => None,
        Some(Value::String(c)) => Some(check_header_value("contentType", c)?.to_string()),
        Some(_) => return Err(usage("`contentType` must be a string")),
    };
    let given = |k: &str| obj.get(k).filter(|v| !v.is_null());
    let body =
        match (given("rawBody"), given("body"), given("form")) {
            (None, None, None) => Body::None,
            (Some(raw), None, None) => raw_body(raw, content_type)?,
            (None, Some(b), None) => match bytes_of(b) {
                // Bytes passed as `body` are meant as they are, not as JSON.
                Some(bytes) => Body::Bytes(bytes.map_err(|e| usage(&format!("`body`: {e}")))?, octets(content_type)),
                None => Body::Json(b.clone(), content_type),
            },
            (None, None, Some(form)) => Body::Form(parse_form_body(form, content_type.as_deref())?),
            _ => return Err(usage(
                "pass one of `body` (JSON), `rawBody` (text or bytes) and `form` (form fields and files), not several",
            )),
        };
    Ok(ApiRequest { method, path, query, headers, body })
}

/// `rawBody`: text as `text/plain`, or bytes (a `Uint8Array` or
/// `ArrayBuffer`) as `application/octet-stream`, unless `contentType` says.
fn raw_body(raw: &Value, content_type: Option<String>) -> Result<Body, UpstreamError> {
    if let Value::String(text) = raw {
        return Ok(Body::Raw(text.clone(), content_type.unwrap_or_else(|| "text/plain".into())));
    }
    match bytes_of(raw) {
        Some(bytes) => Ok(Body::Bytes(bytes.map_err(|e| usage(&format!("`rawBody`: {e}")))?, octets(content_type))),
        None => Err(usage(&format!(
            "`rawBody` must be a string or bytes (a Uint8Array or ArrayBuffer), not {}; for JSON use `body`",
            type_name(raw)
        ))),
    }
}

fn octets(content_type: Option<String>) -> String {
    content_type.unwrap_or_else(|| "application/octet-stream".into())
}

/// `form: {name: value, …}`: a value is text (a string, number or
/// boolean), a file `{data | base64, filename?, contentType?}`, an array of
/// those (the name repeated), or null (left out). Multipart when
/// `contentType` says `multipart/form-data` or a file is present;
/// otherwise urlencoded.
fn parse_form_body(form: &Value, content_type: Option<&str>) -> Result<Form, UpstreamError> {
    let Value::Object(map) = form else {
        return Err(usage(&format!(
            "`form` must be an object of field names to values, e.g. {{name: \"x\", file: {{filename: \"a.png\", contentType: \"image/png\", data: bytes}}}}, not {}",
            type_name(form)
        )));
    };
    let mut fields = Vec::new();
    for (name, value) in map {
        check_form_text("a form field name", name)?;
        let items = match value {
            Value::Array(items) => items.as_slice(),
            one => std::slice::from_ref(one),
        };
        for item in items {
            let value = match item {
                Value::Null => continue,
                Value::Object(_) => FieldValue::File(parse_file(name, item)?),
                other => FieldValue::Text(scalar_text(name, other)?),
            };
            fields.push(Field { name: name.clone(), value });
        }
    }
    let has_file = fields.iter().any(|f| matches!(f.value, FieldValue::File(_)));
    let declared = content_type.map(|c| c.trim().to_ascii_lowercase());
    let encoding = match declared.as_deref() {
        None => {
            if has_file {
                FormEncoding::Multipart
            } else {
                FormEncoding::UrlEncoded
            }
        }
        Some(c) if c.starts_with("multipart/form-data") => FormEncoding::Multipart,
        Some(c) if c.starts_with("application/x-www-form-urlencoded") => FormEncoding::UrlEncoded,
        Some(c) => {
            return Err(usage(&format!(
                "a `form` is sent as multipart/form-data or application/x-www-form-urlencoded, not `{c}`; leave `contentType` out (files make it multipart) or use `rawBody`"
            )))
        }
    };
    if encoding == FormEncoding::UrlEncoded && has_file {
        return Err(usage(
            "files cannot be sent as application/x-www-form-urlencoded; leave `contentType` out or set \"multipart/form-data\"",
        ));
    }
    Ok(Form { encoding, fields })
}

/// One file of a form.
fn parse_file(field: &str, v: &Value) -> Result<File, UpstreamError> {
    let Value::Object(m) = v else { unreachable!("called for objects") };
    if bytes_of(v).is_some() {
        // A bare Uint8Array as the value: a file with default name and type.
        let data = bytes_of(v).expect("checked").map_err(|e| usage(&format!("form field `{field}`: {e}")))?;
        return Ok(File { filename: "blob".into(), content_type: "application/octet-stream".into(), data });
    }
    for k in m.keys() {
        if !matches!(k.as_str(), "data" | "base64" | "filename" | "contentType") {
            return Err(usage(&format!(
                "form field `{field}`: unknown file field `{k}`; a file is {{data (bytes or text) or base64, filename?, contentType?}}"
            )));
        }
    }
    let data = match (m.get("data"), m.get("base64")) {
        (Some(Value::String(text)), None) => text.clone().into_bytes(),
        (Some(d), None) => match bytes_of(d) {
            Some(bytes) => bytes.map_err(|e| usage(&format!("form field `{field}`: {e}")))?,
            None => {
                return Err(usage(&format!(
                    "form field `{field}`: `data` must be bytes (a Uint8Array or ArrayBuffer) or text, not {}",
                    type_name(d)
                )))
            }
        },
        (None, Some(Value::String(b64))) => base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64)
            .map_err(|e| usage(&format!("form field `{field}`: `base64` is not valid base64 ({e})")))?,
        (None, Some(_)) => return Err(usage(&format!("form field `{field}`: `base64` must be a string"))),
        (None, None) | (Some(_), Some(_)) => {
            return Err(usage(&format!(
                "form field `{field}`: a file needs exactly one of `data` (bytes or text) and `base64`"
            )))
        }
    };
    let filename = match m.get("filename") {
        None | Some(Value::Null) => "blob".to_string(),
        Some(Value::String(f)) => check_form_text("a file name", f)?.to_string(),
        Some(_) => return Err(usage(&format!("form field `{field}`: `filename` must be a string"))),
    };
    let content_type = match m.get("contentType") {
        None | Some(Value::Null) => "application/octet-stream".to_string(),
        Some(Value::String(c)) => check_header_value("contentType", c)?.to_string(),
        Some(_) => return Err(usage(&format!("form field `{field}`: `contentType` must be a string"))),
    };
    Ok(File { filename, content_type, data })
}

/// Field and file names go into a part's headers: control characters (CR
/// and LF above all, which would start a header or a part of their own)
/// are refused. Quotes are escaped when the form is encoded.
fn check_form_text<'a>(what: &str, text: &'a str) -> Result<&'a str, UpstreamError> {
    if text.chars().any(char::is_control) {
        return Err(UpstreamError::policy(&format!(
            "{what} `{}` refused: control characters (CR, LF, NUL…) are not allowed in form names",
            text.escape_debug().take(100).collect::<String>()
        )));
    }
    Ok(text)
}

fn parse_route(route: &str, params: Option<&Value>, api: &Api<'_>) -> Result<ApiRequest, UpstreamError> {
    let (method, template) = route.trim().split_once(' ').ok_or_else(|| {
        usage(&format!("the route `{route}` must be \"METHOD /path\", e.g. \"GET {}\"", api.example()))
    })?;
    let method = method.to_ascii_uppercase();
    check_method(&method)?;
    let mut rest: Map<String, Value> = match params {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return Err(usage("the second argument must be an object of parameters")),
    };
    let headers = parse_headers(rest.remove("headers").as_ref())?;
    let template = relative_to_base(template.trim(), api)?;
    let (template, mut query) = split_query(&template)?;
    let mut path = String::with_capacity(template.len());
    let mut chars = template.char_indices();
    while let Some((i, c)) = chars.next() {
        if c != '{' {
            path.push(c);
            continue;
        }
        let end = template[i..]
            .find('}')
            .map(|e| i + e)
            .ok_or_else(|| usage(&format!("unclosed `{{` in route `{route}`")))?;
        let name = &template[i + 1..end];
        let value = rest.remove(name).ok_or_else(|| {
            usage(&format!(
                "the route needs a value for `{name}`: pass it in the second argument, e.g. {{{name}: ...}}"
            ))
        })?;
        let text = scalar_text(name, &value)?;
        if text.is_empty() {
            return Err(usage(&format!("path parameter `{name}` is empty")));
        }
        path.push_str(&encode_segment(&text));
        for _ in template[i + 1..=end].chars() {
            chars.next();
        }
    }
    let path = check_path_for(&path, api)?;
    let body = if matches!(method.as_str(), "GET" | "HEAD" | "DELETE" | "OPTIONS") {
        query.extend(query_pairs(&rest)?);
        Body::None
    } else if rest.is_empty() {
        Body::None
    } else {
        Body::Json(Value::Object(rest), None)
    };
    Ok(ApiRequest { method, path, query, headers, body })
}

fn check_method(method: &str) -> Result<(), UpstreamError> {
    if METHODS.contains(&method) {
        Ok(())
    } else {
        Err(usage(&format!("unsupported method `{method}`; use one of {}", METHODS.join(", "))))
    }
}

/// Splits `?a=1&b=2` off a path.
fn split_query(path: &str) -> Result<(String, Vec<(String, String)>), UpstreamError> {
    match path.split_once('?') {
        None => Ok((path.to_string(), vec![])),
        Some((p, q)) => {
            let pairs = url::form_urlencoded::parse(q.as_bytes()).into_owned().collect();
            Ok((p.to_string(), pairs))
        }
    }
}

/// Whether `path` is written as an absolute URL (`https://…`, any scheme)
/// rather than a path.
fn is_absolute_url(path: &str) -> bool {
    let Some((scheme, _)) = path.split_once("://") else { return false };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// Reads an absolute URL inside the API's base URL as the relative path
/// (and query) it names: `https://api.example.com/v1/items?page=2` with base
/// `https://api.example.com/v1` is `/items?page=2`. Anything else that is
/// not a URL is returned unchanged, for [`check_path`] to judge.
///
/// The match is on the text, never on a decoded or normalised form, so no
/// encoding can widen it: the scheme and host (ASCII case aside) and the
/// port must be the base URL's exactly (an explicit default port counts as
/// the default), there may be no user info (`@`) or percent sign in the
/// authority, and the base path must be a whole-segment prefix (`/v1` does
/// not cover `/v10`). The rest goes through every check of a relative path.
pub fn relative_to_base<'p>(path: &'p str, api: &Api<'_>) -> Result<Cow<'p, str>, UpstreamError> {
    if !is_absolute_url(path) {
        return Ok(Cow::Borrowed(path));
    }
    let shown: String = path.chars().take(200).collect();
    let refuse = |why: &str| {
        let to = match api.base_url {
            Some(base) => format!("relative to {}", base.as_str().trim_end_matches('/')),
            None => "relative to the API's base URL".into(),
        };
        Err(UpstreamError::policy(&format!(
            "URL `{shown}` refused: {why}: pass the path {to}, e.g. \"{}\"",
            api.example()
        )))
    };
    let Some(base) = api.base_url else {
        return refuse("absolute URLs are not allowed");
    };
    let (scheme, rest) = path.split_once("://").expect("is_absolute_url");
    let end = rest.find(['/', '?', '#', '\\']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if authority.contains(['@', '%']) {
        return refuse("absolute URLs are not allowed (this one has user info or an encoded host)");
    }
    let origin = Url::parse(&format!("{scheme}://{authority}/")).ok().map(|u| u.origin());
    let (Some(origin), Some(host)) = (origin, base.host_str()) else {
        return refuse("absolute URLs are not allowed");
    };
    // The origin compared above is normalised (case, default port); the
    // authority text must also name the base host as written, so that no
    // other spelling of an address (`0x7f.1`, a trailing dot) is taken in.
    let port = base.port().map(|p| format!(":{p}")).unwrap_or_default();
    let default_port = base.port_or_known_default().map(|p| format!(":{p}")).unwrap_or_default();
    let same_text =
        [format!("{host}{port}"), format!("{host}{default_port}")].iter().any(|a| a.eq_ignore_ascii_case(authority));
    if origin != base.origin() || !same_text {
        return refuse("absolute URLs are not allowed");
    }
    let base_path = base.path().trim_end_matches('/');
    let Some(relative) = tail.strip_prefix(base_path).filter(|r| r.is_empty() || r.starts_with(['/', '?'])) else {
        return refuse(&format!("it is on this API's host but outside its base path `{base_path}/`"));
    };
    Ok(match relative.strip_prefix('/') {
        Some(_) => Cow::Owned(relative.to_string()),
        None => Cow::Owned(format!("/{relative}")),
    })
}

/// Keeps the request on the configured API: a relative path, no scheme or
/// authority, no `..` (encoded or not), no control characters.
pub fn check_path(path: &str) -> Result<String, UpstreamError> {
    check_path_for(path, &Api::default())
}

/// [`check_path`], with examples from `api` in its messages.
fn check_path_for(path: &str, api: &Api<'_>) -> Result<String, UpstreamError> {
    let bad = |why: &str| {
        Err(UpstreamError::policy(&format!(
            "path `{}` refused: {why}. Pass a path relative to the API's base URL, such as \"{}\"",
            path.chars().take(200).collect::<String>(),
            api.example()
        )))
    };
    if !path.starts_with('/') {
        let fixed: String = path.chars().take(200).collect();
        return bad(&format!("it must start with `/` (\"/{fixed}\")"));
    }
    if path.starts_with("//") {
        return bad("a path starting with `//` would name another host");
    }
    if path.contains("://") {
        return bad("absolute URLs are not allowed; requests only go to the configured API");
    }
    if path.contains('\\') {
        return bad("backslashes are not allowed");
    }
    if path.chars().any(|c| c.is_control() || c == ' ' || c == '#') {
        return bad("it contains spaces, control characters or `#`; percent-encode parameter values");
    }
    // Decode repeatedly (double encoding) and look for dot segments.
    let mut decoded = path.to_string();
    for _ in 0..3 {
        let next = percent_encoding::percent_decode_str(&decoded).decode_utf8_lossy().into_owned();
        if next.split(['/', '\\']).any(|seg| seg == ".." || seg == ".") {
            return bad("`.` and `..` segments are not allowed");
        }
        if next.chars().any(|c| c.is_control()) {
            return bad("it contains encoded control characters");
        }
        if next == decoded {
            break;
        }
        decoded = next;
    }
    Ok(path.to_string())
}

fn parse_headers(v: Option<&Value>) -> Result<Vec<(String, String)>, UpstreamError> {
    let Some(v) = v else { return Ok(vec![]) };
    let map = match v {
        Value::Null => return Ok(vec![]),
        Value::Object(m) => m,
        _ => return Err(usage("`headers` must be an object of header names to string values")),
    };
    let mut out = Vec::with_capacity(map.len());
    for (name, value) in map {
        let lower = name.to_ascii_lowercase();
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(UpstreamError::policy(&format!("header name `{}` is not valid", name.escape_debug())));
        }
        if FORBIDDEN_HEADERS.contains(&lower.as_str()) || lower.starts_with("proxy-") || lower.starts_with("sec-") {
            return Err(UpstreamError::policy(&format!(
                "the `{name}` header cannot be set from code: credentials, cookies, the host, connection and trace-context headers are managed by codemode"
            )));
        }
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => return Err(usage(&format!("header `{name}` must have a string value"))),
        };
        out.push((name.clone(), check_header_value(name, &text)?.to_string()));
    }
    Ok(out)
}

fn check_header_value<'a>(name: &str, value: &'a str) -> Result<&'a str, UpstreamError> {
    if value.chars().any(|c| c == '\r' || c == '\n' || c == '\0') {
        return Err(UpstreamError::policy(&format!(
            "header `{name}` refused: CR, LF and NUL are not allowed in values"
        )));
    }
    if reqwest::header::HeaderValue::from_str(value).is_err() {
        return Err(UpstreamError::policy(&format!(
            "header `{name}` has a value that is not a valid HTTP header value"
        )));
    }
    Ok(value)
}

fn query_pairs(q: &Map<String, Value>) -> Result<Vec<(String, String)>, UpstreamError> {
    let mut out = Vec::new();
    for (k, v) in q {
        match v {
            Value::Null => {}
            Value::Array(items) => {
                for item in items {
                    out.push((k.clone(), scalar_text(k, item)?));
                }
            }
            other => out.push((k.clone(), scalar_text(k, other)?)),
        }
    }
    Ok(out)
}

fn scalar_text(name: &str, v: &Value) -> Result<String, UpstreamError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(usage(&format!("parameter `{name}` must be a string, number or boolean, not {}", type_name(v)))),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Percent-encodes one path segment (everything but unreserved characters).
pub fn encode_segment(s: &str) -> String {
    const SET: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
    let encoded = percent_encoding::utf8_percent_encode(s, SET).to_string();
    // A parameter that is exactly `.` or `..` must not become a dot segment.
    match encoded.as_str() {
        "." => "%2E".into(),
        ".." => "%2E%2E".into(),
        _ => encoded,
    }
}

fn usage(message: &str) -> UpstreamError {
    UpstreamError::usage(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn object_form() {
        let r = parse(&json!([{"method": "post", "path": "/zones?a=1", "query": {"b": 2, "c": [3, 4]}, "body": {"x": 1}, "headers": {"X-Trace": "t"}}])).unwrap();
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/zones");
        assert_eq!(
            r.query,
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "2".into()),
                ("c".into(), "3".into()),
                ("c".into(), "4".into())
            ]
        );
        assert_eq!(r.body, Body::Json(json!({"x": 1}), None));
        assert_eq!(r.headers, vec![("X-Trace".into(), "t".into())]);
    }

    #[test]
    fn route_form_substitutes_encoded_parameters() {
        let r = parse(&json!(["GET /zones/{zone_id}/dns_records", {"zone_id": "a/b c", "per_page": 50}])).unwrap();
        assert_eq!(r.path, "/zones/a%2Fb%20c/dns_records");
        assert_eq!(r.query, vec![("per_page".into(), "50".into())]);
        let r = parse(&json!(["PATCH /items/{id}", {"id": 7, "name": "n"}])).unwrap();
        assert_eq!(r.path, "/items/7");
        assert_eq!(r.body, Body::Json(json!({"name": "n"}), None));
        // Encoded or not, a `..` parameter would climb out of the API on
        // servers that decode before routing: refused.
        assert!(parse(&json!(["GET /x/{id}", {"id": ".."}])).is_err());
        assert!(parse(&json!(["GET /x/{id}", {}])).unwrap_err().message.contains("needs a value for `id`"));
    }

    #[test]
    fn paths_that_leave_the_api_are_refused() {
        for p in [
            "https://evil.example/x",
            "//evil.example/x",
            "/a/../../admin",
            "/a/%2e%2e/admin",
            "/a/%252e%252e/b",
            "zones",
            "/a\\..\\b",
            "/a\r\nHost: x",
            "/a/%0d%0a",
        ] {
            assert!(parse(&json!([{"path": p}])).is_err(), "{p} was accepted");
        }
    }

    fn api(base: &Url) -> Api<'_> {
        Api { base_url: Some(base), example_path: Some("/books") }
    }

    #[test]
    fn a_url_inside_the_base_url_is_the_path_it_names() {
        let base: Url = "http://127.0.0.1:8888/v1/".parse().unwrap();
        let api = api(&base);
        let r = parse_for(&json!([{"path": "http://127.0.0.1:8888/v1/buckets/b/records?_limit=1&_token=x%3D"}]), &api)
            .unwrap();
        assert_eq!(r.path, "/buckets/b/records");
        assert_eq!(r.query, vec![("_limit".into(), "1".into()), ("_token".into(), "x=".into())]);
        assert_eq!(parse_for(&json!([{"path": "http://127.0.0.1:8888/v1"}]), &api).unwrap().path, "/");
        assert_eq!(parse_for(&json!([{"path": "HTTP://127.0.0.1:8888/v1/"}]), &api).unwrap().path, "/");
        // The route form too, parameters and all.
        let r = parse_for(&json!(["GET http://127.0.0.1:8888/v1/buckets/{id}", {"id": "a b"}]), &api).unwrap();
        assert_eq!(r.path, "/buckets/a%20b");
        // No base path (GitHub), and a default port written out.
        let gh: Url = "https://api.github.com".parse().unwrap();
        let r =
            parse_for(&json!([{"path": "https://api.github.com/repositories/1/issues?page=2"}]), &api_of(&gh)).unwrap();
        assert_eq!((r.path.as_str(), r.query.len()), ("/repositories/1/issues", 1));
        assert_eq!(parse_for(&json!([{"path": "https://API.github.com:443/x"}]), &api_of(&gh)).unwrap().path, "/x");
    }

    fn api_of(base: &Url) -> Api<'_> {
        Api { base_url: Some(base), example_path: None }
    }

    #[test]
    fn urls_outside_the_base_url_are_refused_with_the_fix() {
        let base: Url = "https://api.example.com/v1".parse().unwrap();
        let api = api(&base);
        for p in [
            "https://evil.example/v1/x",
            "http://api.example.com/v1/x",       // scheme
            "https://api.example.com:8443/v1/x", // port
            "https://api.example.com.evil.example/v1/x",
            "https://user@api.example.com/v1/x", // user info
            "https://evil.example@api.example.com/v1/x",
            "https://api.example.com@evil.example/v1/x",
            "https://api%2Eexample.com/v1/x", // encoded host
            "https://api.example.com./v1/x",  // another spelling
            "https://api.example.com/v10/x",  // not a whole segment
            "https://api.example.com/v2/x",
            "https://api.example.com/",
            "https://api.example.com/%76%31/x",    // encoded base path
            "https://api.example.com/v1/../admin", // climbs out
            "https://api.example.com/v1/%2e%2e/admin",
            "https://api.example.com/v1//evil.example/x",
            "https://api.example.com/v1\\..\\admin",
            "https://api.example.com\\v1/x",
            "https://api.example.com/v1/x#frag",
            "ftp://api.example.com/v1/x",
            "javascript://api.example.com/v1/x",
        ] {
            let e = parse_for(&json!([{"path": p}]), &api).unwrap_err();
            assert_eq!(e.name, "PolicyError", "{p}");
            assert!(!e.message.contains("must start with"), "{p}: {}", e.message);
            let e = parse_for(&json!([format!("GET {p}")]), &api).unwrap_err();
            assert_eq!(e.name, "PolicyError", "{p}");
        }
        let e = parse_for(&json!([{"path": "https://evil.example/x"}]), &api).unwrap_err();
        assert!(
            e.message.contains(
                "absolute URLs are not allowed: pass the path relative to https://api.example.com/v1, e.g. \"/books\""
            ),
            "{}",
            e.message
        );
        // Knowing no base URL, every absolute URL is refused.
        let e = parse(&json!([{"path": "https://api.example.com/v1/x"}])).unwrap_err();
        assert!(
            e.message.contains("absolute URLs are not allowed: pass the path relative to the API's base URL"),
            "{}",
            e.message
        );
    }

    #[test]
    fn path_errors_give_the_apis_own_example() {
        let base: Url = "https://api.example.com/v1".parse().unwrap();
        for args in [json!([{"path": "books"}]), json!([{"method": "GET"}]), json!(["GET books"]), json!(["GETbooks"])]
        {
            let e = parse_for(&args, &api(&base)).unwrap_err();
            assert!(e.message.contains("/books\"") && !e.message.contains("zones"), "{args}: {}", e.message);
        }
        let e = parse_for(&json!([{"path": "repos/o/r"}]), &api(&base)).unwrap_err();
        assert!(e.message.contains("must start with `/` (\"/repos/o/r\")"), "{}", e.message);
        // Without an API, no made-up one.
        assert!(parse(&json!([{"path": "x"}])).unwrap_err().message.contains("such as \"/path\""));
    }

    #[test]
    fn credential_and_framing_headers_are_refused() {
        for h in ["Authorization", "cookie", "Host", "Transfer-Encoding", "Connection", "Proxy-Authorization"] {
            let e = parse(&json!([{"path": "/", "headers": {h: "x"}}])).unwrap_err();
            assert!(e.message.contains("cannot be set"), "{h}: {}", e.message);
        }
        assert!(parse(&json!([{"path": "/", "headers": {"X-A": "a\r\nInjected: 1"}}])).is_err());
        assert!(parse(&json!([{"path": "/", "headers": {"Bad Name": "a"}}])).is_err());
    }

    #[test]
    fn method_overrides_are_refused() {
        for h in ["X-HTTP-Method-Override", "x-method-override", "X-HTTP-METHOD"] {
            let e = parse(&json!([{"path": "/items/1", "headers": {h: "DELETE"}}])).unwrap_err();
            assert_eq!(e.name, "PolicyError");
            assert!(e.message.contains(h) && e.message.contains("method: \"DELETE\""), "{h}: {}", e.message);
            let e = parse(&json!(["GET /items/{id}", {"id": 1, "headers": {h: "put"}}])).unwrap_err();
            assert!(e.message.contains("send the real method"), "{}", e.message);
        }
        for q in [json!([{"path": "/items/1?_method=DELETE"}]), json!([{"path": "/x", "query": {"_METHOD": "delete"}}])]
        {
            let e = parse(&q).unwrap_err();
            assert!(e.message.contains("query parameter") && e.message.contains("DELETE"), "{}", e.message);
        }
        let e = parse(&json!(["GET /items", {"_method": "PATCH"}])).unwrap_err();
        assert!(e.message.contains("method: \"PATCH\""), "{}", e.message);
        assert!(parse(&json!([{"path": "/x", "query": {"method": "a"}, "headers": {"X-Method": "b"}}])).is_ok());
        // …and from the body, in every shape a framework reads it.
        for body in [
            json!([{"method": "POST", "path": "/i/1", "body": {"_method": "DELETE"}}]),
            json!(["POST /i/1", {"_METHOD": "DELETE"}]),
            json!([{"method": "POST", "path": "/i/1", "rawBody": "a=1&_method=DELETE", "contentType": "application/x-www-form-urlencoded"}]),
            json!([{"method": "POST", "path": "/i/1", "rawBody": "a=1&%5Fmethod=PUT", "contentType": "text/plain"}]),
            json!([{"method": "POST", "path": "/i/1", "rawBody": "--b\r\nContent-Disposition: form-data; name=\"_method\"\r\n\r\nDELETE\r\n--b--", "contentType": "multipart/form-data; boundary=b"}]),
        ] {
            let e = parse(&body).unwrap_err();
            assert_eq!(e.name, "PolicyError", "{body}");
            assert!(e.message.contains("body"), "{}", e.message);
        }
        assert!(parse(&json!([{"method": "POST", "path": "/i", "rawBody": "my_method=1"}])).is_ok());
    }

    #[test]
    fn bytes_and_forms() {
        let post = |extra: Value| {
            let mut o = json!({"method": "POST", "path": "/up"});
            o.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            parse(&json!([o]))
        };
        assert_eq!(
            post(json!({"rawBody": {"$bytes": "AAH/"}})).unwrap().body,
            Body::Bytes(vec![0, 1, 255], "application/octet-stream".into())
        );
        assert_eq!(
            post(json!({"rawBody": {"$bytes": ""}, "contentType": "image/png"})).unwrap().body,
            Body::Bytes(vec![], "image/png".into())
        );
        assert_eq!(
            post(json!({"body": {"$bytes": "AA=="}})).unwrap().body,
            Body::Bytes(vec![0], "application/octet-stream".into())
        );
        assert_eq!(post(json!({"rawBody": "t"})).unwrap().body, Body::Raw("t".into(), "text/plain".into()));
        let e = post(json!({"rawBody": {"$bytes": "%%"}})).unwrap_err();
        assert!(e.message.contains("`rawBody`: the bytes are not valid base64"), "{}", e.message);
        assert!(post(json!({"rawBody": [1, 2]})).unwrap_err().message.contains("string or bytes"));
        assert!(post(json!({"rawBody": "a", "form": {"a": 1}})).unwrap_err().message.contains("pass one of"));

        // Text only: urlencoded; a file: multipart; arrays repeat; null is left out.
        let Body::Form(f) = post(json!({"form": {"a": 1, "b": [true, "x"], "c": null}})).unwrap().body else {
            panic!()
        };
        assert_eq!(f.encoding, FormEncoding::UrlEncoded);
        assert_eq!(f.encode().0, b"a=1&b=true&b=x");
        let Body::Form(f) = post(json!({"form": {"f": {"data": {"$bytes": "AAE="}, "filename": "x.bin"}, "t": {"base64": "aGk=", "contentType": "text/plain"}, "s": {"data": "hi"}}})).unwrap().body else { panic!() };
        assert_eq!(f.encoding, FormEncoding::Multipart);
        let files: Vec<(&str, &str, &str, &[u8])> = f
            .fields
            .iter()
            .map(|x| match &x.value {
                FieldValue::File(file) => {
                    (x.name.as_str(), file.filename.as_str(), file.content_type.as_str(), file.data.as_slice())
                }
                FieldValue::Text(_) => panic!(),
            })
            .collect();
        assert_eq!(
            files,
            vec![
                ("f", "x.bin", "application/octet-stream", &[0u8, 1][..]),
                ("t", "blob", "text/plain", b"hi"),
                ("s", "blob", "application/octet-stream", b"hi")
            ]
        );
        let Body::Form(f) = post(json!({"form": {"a": "1"}, "contentType": "multipart/form-data"})).unwrap().body
        else {
            panic!()
        };
        assert_eq!(f.encoding, FormEncoding::Multipart);

        for (extra, says) in [
            (
                json!({"form": {"f": {"data": "x"}}, "contentType": "application/x-www-form-urlencoded"}),
                "files cannot be sent",
            ),
            (json!({"form": {"a": 1}, "contentType": "application/json"}), "not `application/json`"),
            (json!({"form": {"f": {"data": "x", "base64": "eA=="}}}), "exactly one of `data`"),
            (json!({"form": {"f": {"date": "x"}}}), "unknown file field `date`"),
            (json!({"form": {"f": {"base64": "***"}}}), "not valid base64"),
            (json!({"form": "a=1"}), "`form` must be an object"),
            (json!({"form": {"f": {"data": "x", "contentType": "a\r\nb: c"}}}), "CR, LF and NUL"),
        ] {
            let e = post(extra.clone()).unwrap_err();
            assert!(e.message.contains(says), "{extra}: {}", e.message);
        }
        // Names go into part headers: no control characters there.
        for form in
            [json!({"a\r\nX-Injected: 1": "v"}), json!({"f": {"data": "x", "filename": "a\nb"}}), json!({"a\u{0}": 1})]
        {
            let e = post(json!({"form": form})).unwrap_err();
            assert_eq!(e.name, "PolicyError", "{form}");
            assert!(e.message.contains("control characters"), "{}", e.message);
        }
        // `_method` in a form, or in bytes that are text, is a method override.
        assert!(post(json!({"form": {"_METHOD": "DELETE"}}))
            .unwrap_err()
            .message
            .contains("`_METHOD` field of the form"));
        let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "a=1&_method=PUT");
        assert_eq!(post(json!({"rawBody": {"$bytes": b64}})).unwrap_err().name, "PolicyError");
    }

    #[test]
    fn routing_override_headers_are_refused() {
        for h in ["X-Original-URL", "x-rewrite-url", "X-Forwarded-Prefix"] {
            assert!(parse(&json!([{"path": "/items/1", "headers": {h: "/admin"}}])).is_err(), "{h}");
        }
    }
}
