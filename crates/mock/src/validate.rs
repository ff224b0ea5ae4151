//! Checking a request against its operation: parameters and the JSON body.
//!
//! Each operation gets one [`Checker`], built the first time the operation
//! is called: its parameters (path-item ones overridden by the operation's
//! own, by name and location), its body media types, and one compiled
//! JSON Schema for the whole request shaped as
//! `{"path": {..}, "query": {..}, "header": {..}, "body": ..}`, so one
//! validation pass reports every problem with a location such as
//! `query.per_page` or `body.items[0].name`.
//!
//! Query, path and header values arrive as text; they are coerced to the
//! parameter schema's type first (integer, number, boolean; arrays from
//! repeated keys or comma lists; `deepObject` objects from `name[key]`), and
//! left as text when they do not parse, so the schema reports the mismatch.

use codemode_spec::{Graph, NodeId};
use codemode_upstream::{ApiRequest, Body};
use reqwest::header::HeaderMap;
use serde_json::{json, Map, Value};

use crate::doc::{entries, get_bool, get_str, get_strs, items};
use crate::schema::{Converter, Direction};

/// Where a parameter lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum In {
    Path,
    Query,
    Header,
    Cookie,
}

impl In {
    fn key(self) -> &'static str {
        match self {
            In::Path => "path",
            In::Query => "query",
            In::Header => "header",
            In::Cookie => "cookie",
        }
    }
}

/// The type a text value is coerced to.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Coerce {
    Text,
    Integer,
    Number,
    Boolean,
    Object,
    Array(Box<Coerce>),
    Any,
}

/// A documented media type and its schema.
pub(crate) type Media = (String, Option<NodeId>);

/// One documented parameter.
#[derive(Debug)]
pub(crate) struct Param {
    pub name: String,
    pub location: In,
    pub required: bool,
    pub schema: Option<NodeId>,
    coerce: Coerce,
    deep_object: bool,
    json_content: bool,
}

/// One problem with a request.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Problem {
    /// `query.per_page`, `body.name`, `body`.
    pub location: String,
    /// What is wrong.
    pub message: String,
}

/// What checking found.
pub(crate) enum Verdict {
    /// Accepted, with notes on what rehearsal let through (see
    /// [`Checker::check`]'s `lenient_body`).
    Ok(Vec<String>),
    /// 400 with these problems.
    Invalid(Vec<Problem>),
    /// 415: the body's media type is not one the operation takes.
    Unsupported(String, Vec<String>),
}

/// The documented request of one operation, ready to check requests.
pub(crate) struct Checker {
    pub params: Vec<Param>,
    /// Whether a body is required, and the documented media types with schemas.
    pub body: Option<(bool, Vec<Media>)>,
    /// `None` when the schema could not be compiled (then only required-ness
    /// is checked; the reason is logged).
    validator: Option<jsonschema::Validator>,
}

/// The parameters of an operation: the path item's, overridden by the
/// operation's own with the same name and location.
pub(crate) fn parameters(g: &Graph, item: NodeId, op: NodeId) -> Vec<Param> {
    let mut out: Vec<Param> = Vec::new();
    for source in [item, op] {
        let Some(list) = g.get(source, "parameters") else { continue };
        for p in items(g, list) {
            let p = g.deref(*p);
            let Some(name) = get_str(g, p, "name") else { continue };
            let location = match get_str(g, p, "in") {
                Some("path") => In::Path,
                Some("query") => In::Query,
                Some("header") => In::Header,
                Some("cookie") => In::Cookie,
                _ => continue,
            };
            let (schema, json_content) = match g.get(p, "schema") {
                Some(s) => (Some(s), false),
                None => {
                    let media = g.get(p, "content").and_then(|c| entries(g, c).first().map(|(_, m)| *m));
                    (media.and_then(|m| g.get(m, "schema")), true)
                }
            };
            let coerce = schema.map(|s| coerce_of(g, s, 0)).unwrap_or(Coerce::Any);
            let param = Param {
                name: name.to_string(),
                location,
                required: location == In::Path || get_bool(g, p, "required") == Some(true),
                schema,
                coerce,
                deep_object: get_str(g, p, "style") == Some("deepObject"),
                json_content,
            };
            match out.iter_mut().find(|q| q.name == param.name && q.location == param.location) {
                Some(q) => *q = param,
                None => out.push(param),
            }
        }
    }
    out
}

/// The type text should be coerced to for `schema`.
fn coerce_of(g: &Graph, schema: NodeId, depth: usize) -> Coerce {
    let s = g.deref(schema);
    let types = get_strs(g, s, "type");
    if types.contains(&"array") {
        let inner = g.get(s, "items").map(|i| coerce_of(g, i, depth + 1)).unwrap_or(Coerce::Any);
        return Coerce::Array(Box::new(inner));
    }
    for (t, c) in [
        ("string", Coerce::Text),
        ("integer", Coerce::Integer),
        ("number", Coerce::Number),
        ("boolean", Coerce::Boolean),
        ("object", Coerce::Object),
    ] {
        if types.contains(&t) {
            return c;
        }
    }
    if depth < 4 {
        for k in ["allOf", "oneOf", "anyOf"] {
            if let Some(list) = g.get(s, k) {
                for b in items(g, list) {
                    let c = coerce_of(g, *b, depth + 1);
                    if c != Coerce::Any {
                        return c;
                    }
                }
            }
        }
    }
    Coerce::Any
}

/// Text → JSON of the coerced type; unparseable text stays text.
fn coerce_text(text: &str, c: &Coerce) -> Value {
    match c {
        Coerce::Integer => {
            if let Ok(i) = text.parse::<i64>() {
                return json!(i);
            }
            if let Ok(f) = text.parse::<f64>() {
                if f.is_finite() {
                    return json!(f);
                }
            }
        }
        Coerce::Number => {
            if let Ok(i) = text.parse::<i64>() {
                return json!(i);
            }
            if let Ok(f) = text.parse::<f64>() {
                if f.is_finite() {
                    return json!(f);
                }
            }
        }
        Coerce::Boolean => match text {
            "true" => return json!(true),
            "false" => return json!(false),
            _ => {}
        },
        Coerce::Object => {
            if let Ok(v @ Value::Object(_)) = serde_json::from_str::<Value>(text) {
                return v;
            }
        }
        Coerce::Array(inner) => {
            return Value::Array(text.split(',').map(|p| coerce_text(p, inner)).collect());
        }
        Coerce::Text | Coerce::Any => {}
    }
    Value::String(text.to_string())
}

/// The JSON value of one parameter from its text values.
fn coerce_values(values: &[&str], p: &Param) -> Value {
    if p.json_content {
        if let Some(v) = values.first().and_then(|t| serde_json::from_str(t).ok()) {
            return v;
        }
    }
    match &p.coerce {
        Coerce::Array(inner) if values.len() > 1 => {
            Value::Array(values.iter().map(|t| coerce_text(t, inner)).collect())
        }
        c => coerce_text(values[0], c),
    }
}

/// True for JSON media types (`application/json`, `application/problem+json`,
/// `application/vnd.x+json; charset=utf-8`).
pub(crate) fn is_json(media: &str) -> bool {
    let m = media.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    m == "application/json" || m.ends_with("+json") || m == "*/*" || m == "application/*" || m == "text/json"
}

/// True for form media types (their schema describes the fields as an object).
fn is_form(media: &str) -> bool {
    let m = media.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    m == "application/x-www-form-urlencoded" || m == "multipart/form-data"
}

/// The media type whose schema a JSON body is checked against: JSON first,
/// then forms (same fields, other encoding), then anything with a schema.
pub(crate) fn primary_media(media: &[(String, Option<NodeId>)]) -> Option<&(String, Option<NodeId>)> {
    media.iter().find(|(m, _)| is_json(m)).or_else(|| media.iter().find(|(m, _)| is_form(m))).or_else(|| media.first())
}

impl Checker {
    /// Reads the operation and compiles its schema.
    pub fn new(g: &Graph, item: NodeId, op: NodeId) -> Checker {
        let params = parameters(g, item, op);
        let body = g.get(op, "requestBody").map(|rb| {
            let required = get_bool(g, rb, "required") == Some(true);
            let media: Vec<(String, Option<NodeId>)> = g
                .get(rb, "content")
                .map(|c| entries(g, c).iter().map(|(m, n)| (m.to_string(), g.get(*n, "schema"))).collect())
                .unwrap_or_default();
            (required, media)
        });
        let body_schema = body.as_ref().and_then(|(_, m)| primary_media(m)).and_then(|(_, s)| *s);
        let build = |patterns: bool| -> Value {
            let mut c = Converter::new(g, Direction::Request, patterns).any_of_for_one_of();
            let roots: Vec<NodeId> = params.iter().filter_map(|p| p.schema).chain(body_schema).collect();
            c.count(&roots);
            let mut sections: Map<String, Value> = Map::new();
            for p in &params {
                let Some(s) = p.schema else { continue };
                let converted = c.convert(s);
                let section = sections.entry(p.location.key()).or_insert_with(|| json!({"properties": {}}));
                section["properties"][&p.name] = converted;
            }
            if let Some(s) = body_schema {
                sections.insert("body".into(), c.convert(s));
            }
            crate::schema::with_defs(json!({ "properties": sections }), c.finish())
        };
        let validator = match crate::schema::compile(&build(true), || build(false)) {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::warn!(error = %e, "mock: cannot compile the request schema; checking required parameters only");
                None
            }
        };
        Checker { params, body, validator }
    }

    /// Checks a request whose path matched with `path_params`. With
    /// `lenient_body`, a missing required body is a note, not a problem:
    /// specs mark bodies required on methods that usually lack one (DELETE,
    /// GET) that the real API accepts without.
    pub fn check(
        &self,
        req: &ApiRequest,
        path_params: &[(String, String)],
        headers: &HeaderMap,
        lenient_body: bool,
    ) -> Verdict {
        let mut notes = Vec::new();
        let mut problems = Vec::new();
        let mut sections: Map<String, Value> = Map::new();
        for p in &self.params {
            let values: Vec<String> = match p.location {
                In::Path => path_params.iter().filter(|(n, _)| *n == p.name).map(|(_, v)| v.clone()).collect(),
                In::Query => {
                    if p.deep_object {
                        let prefix = format!("{}[", p.name);
                        let mut obj = Map::new();
                        for (k, v) in &req.query {
                            if let Some(key) = k.strip_prefix(&prefix).and_then(|r| r.strip_suffix(']')) {
                                obj.insert(key.to_string(), coerce_deep(v));
                            }
                        }
                        if !obj.is_empty() {
                            sections.entry("query").or_insert_with(|| json!({}))[&p.name] = Value::Object(obj);
                            continue;
                        }
                    }
                    let bracket = format!("{}[]", p.name);
                    req.query.iter().filter(|(k, _)| *k == p.name || *k == bracket).map(|(_, v)| v.clone()).collect()
                }
                In::Header => {
                    let lower = p.name.to_ascii_lowercase();
                    if matches!(lower.as_str(), "accept" | "content-type" | "authorization") {
                        continue;
                    }
                    headers.get_all(lower.as_str()).iter().filter_map(|v| v.to_str().ok()).map(String::from).collect()
                }
                // The code cannot set cookies; cookie parameters are not checked.
                In::Cookie => continue,
            };
            if values.is_empty() {
                if p.required {
                    problems.push(Problem {
                        location: format!("{}.{}", p.location.key(), p.name),
                        message: format!("the required {} parameter `{}` is missing", p.location.key(), p.name),
                    });
                }
                continue;
            }
            let refs: Vec<&str> = values.iter().map(String::as_str).collect();
            sections.entry(p.location.key()).or_insert_with(|| json!({}))[&p.name] = coerce_values(&refs, p);
        }
        if let Some((required, media)) = &self.body {
            match &req.body {
                Body::None => {
                    if *required && lenient_body {
                        notes.push(format!(
                            "the spec marks a request body as required, which a {} rarely carries; rehearsal accepted \
                             the request without one (set mock_strict = true to refuse it)",
                            req.method
                        ));
                    } else if *required {
                        let types: Vec<&str> = media.iter().map(|(m, _)| m.as_str()).collect();
                        problems.push(Problem {
                            location: "body".into(),
                            message: format!("a request body is required ({})", types.join(", ")),
                        });
                    }
                }
                Body::Json(v, ct) => {
                    let ct = ct.as_deref().unwrap_or("application/json");
                    if !media.is_empty() && !media.iter().any(|(m, _)| is_json(m) || is_form(m) || same_media(m, ct)) {
                        return Verdict::Unsupported(ct.to_string(), media.iter().map(|(m, _)| m.clone()).collect());
                    }
                    sections.insert("body".into(), v.clone());
                }
                // Bytes and forms are checked for their media type only: a
                // form's values are all text, so checking them against a
                // schema of numbers and booleans would refuse good requests.
                Body::Bytes(_, ct) => {
                    if !media.is_empty() && !media.iter().any(|(m, _)| same_media(m, ct)) {
                        return Verdict::Unsupported(ct.clone(), media.iter().map(|(m, _)| m.clone()).collect());
                    }
                }
                Body::Form(_) => {
                    let ct = req.body.content_type().unwrap_or_default();
                    if !media.is_empty() && !media.iter().any(|(m, _)| same_media(m, &ct)) {
                        return Verdict::Unsupported(ct, media.iter().map(|(m, _)| m.clone()).collect());
                    }
                }
                Body::Raw(text, ct) => {
                    if !media.is_empty() && !media.iter().any(|(m, _)| same_media(m, ct)) {
                        return Verdict::Unsupported(ct.clone(), media.iter().map(|(m, _)| m.clone()).collect());
                    }
                    if is_json(ct) {
                        match serde_json::from_str::<Value>(text) {
                            Ok(v) => {
                                sections.insert("body".into(), v);
                            }
                            Err(e) => problems.push(Problem {
                                location: "body".into(),
                                message: format!("the body is not valid JSON: {e}"),
                            }),
                        }
                    }
                }
            }
        }
        if let Some(validator) = &self.validator {
            let instance = Value::Object(sections);
            for e in validator.iter_errors(&instance).take(50) {
                let location = location_of(&e.instance_path().to_string());
                let mut message = e.to_string();
                if message.chars().count() > 300 {
                    message = format!("{}…", message.chars().take(300).collect::<String>());
                }
                problems.push(Problem { location, message });
            }
        }
        if problems.is_empty() {
            Verdict::Ok(notes)
        } else {
            Verdict::Invalid(problems)
        }
    }
}

fn coerce_deep(text: &str) -> Value {
    if let Ok(i) = text.parse::<i64>() {
        return json!(i);
    }
    match text {
        "true" => json!(true),
        "false" => json!(false),
        _ => Value::String(text.to_string()),
    }
}

fn same_media(documented: &str, sent: &str) -> bool {
    let base = |m: &str| m.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let (d, s) = (base(documented), base(sent));
    d == s || d == "*/*" || (d.ends_with("/*") && s.starts_with(&d[..d.len() - 1]))
}

/// `/query/per_page` → `query.per_page`; `/body/items/0/name` →
/// `body.items[0].name`; `` → `request`.
fn location_of(pointer: &str) -> String {
    let mut out = String::new();
    for token in pointer.split('/').skip(1) {
        let token = token.replace("~1", "/").replace("~0", "~");
        if !out.is_empty() && token.parse::<usize>().is_ok() {
            out.push_str(&format!("[{token}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&token);
        }
    }
    if out.is_empty() {
        "request".into()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_read_like_code() {
        assert_eq!(location_of("/query/per_page"), "query.per_page");
        assert_eq!(location_of("/body/items/0/name"), "body.items[0].name");
        assert_eq!(location_of("/body/a~1b"), "body.a/b");
        assert_eq!(location_of(""), "request");
    }

    #[test]
    fn text_is_coerced_to_the_schema_type() {
        assert_eq!(coerce_text("50", &Coerce::Integer), json!(50));
        assert_eq!(coerce_text("x", &Coerce::Integer), json!("x"));
        assert_eq!(coerce_text("2.5", &Coerce::Number), json!(2.5));
        assert_eq!(coerce_text("true", &Coerce::Boolean), json!(true));
        assert_eq!(coerce_text("1,2", &Coerce::Array(Box::new(Coerce::Integer))), json!([1, 2]));
        assert_eq!(coerce_text("007", &Coerce::Text), json!("007"));
    }
}
