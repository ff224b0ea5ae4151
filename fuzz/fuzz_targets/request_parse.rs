//! Arbitrary JSON (the bytes, when they parse) as the arguments of a
//! `request(...)` call into `codemode_upstream::request::parse`, which treats
//! its input as hostile. Bytes that are not JSON are also tried as a route
//! string and as a path.
//!
//! Invariants checked on every request that passes: the method is one of
//! the seven; the path starts with a single `/`, has no `..`/`.` segment
//! (encoded or not), and `check_path` accepts it again unchanged; joined
//! to a base URL as the upstream client does, it stays on that origin and
//! under its base path; header names and values are valid and none is a
//! credential, hop-by-hop or method-override header; no `_method` query
//! parameter; `check_method_override` agrees.
#![no_main]

use codemode_upstream::request::{self, ApiRequest};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};

const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
const FORBIDDEN: [&str; 17] = [
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
    "x-http-method-override",
    "x-method-override",
    "x-http-method",
];

fuzz_target!(|data: &[u8]| {
    if let Ok(args) = serde_json::from_slice::<Value>(data) {
        try_parse(&args);
        // The object and route forms, with the fuzzer's value in each slot.
        if !args.is_array() {
            try_parse(&json!([args]));
        }
        if let Value::Object(map) = &args {
            if let Some(Value::String(route)) = map.get("route") {
                try_parse(&json!([route, args]));
            }
        }
    } else if let Ok(text) = std::str::from_utf8(data) {
        try_parse(&json!([text]));
        try_parse(&json!([text, {"id": text, "q": text}]));
        try_parse(&json!([{"path": text}]));
        try_parse(&json!([{"method": "POST", "path": "/a", "headers": {text: text}, "query": {text: text}}]));
        let _ = request::check_path(text);
        let _ = request::encode_segment(text);
        check_segment(text);
    }
});

fn try_parse(args: &Value) {
    if let Ok(req) = request::parse(args) {
        check(&req);
    }
}

/// A parameter value encoded as a path segment stays one segment. (It may
/// still be refused by `check_path`, which decodes up to three times and so
/// refuses values such as `%2e%2e` or `../x` on purpose.)
fn check_segment(text: &str) {
    let seg = request::encode_segment(text);
    assert!(!seg.contains(['/', '\\', '?', '#']), "{seg}");
    assert!(seg != "." && seg != "..", "{seg}");
    assert!(seg.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.~%".contains(&b)), "{seg}");
}

fn check(req: &ApiRequest) {
    assert!(METHODS.contains(&req.method.as_str()), "method {:?}", req.method);
    let path = &req.path;
    assert!(path.starts_with('/') && !path.starts_with("//"), "path {path:?}");
    assert!(!path.contains("://") && !path.contains('\\'), "path {path:?}");
    assert_eq!(request::check_path(path).ok().as_deref(), Some(path.as_str()), "check_path is not idempotent");
    // What the upstream client does with it (`url_for`).
    for base in ["https://api.example.com/v1", "https://api.example.com"] {
        let url = url::Url::parse(&format!("{base}{path}"));
        let Ok(url) = url else { continue };
        assert_eq!(url.host_str(), Some("api.example.com"), "{path:?} -> {url}");
        assert_eq!(url.port(), None, "{path:?} -> {url}");
        assert!(url.username().is_empty() && url.password().is_none(), "{path:?} -> {url}");
        let prefix = base.strip_prefix("https://api.example.com").unwrap();
        assert!(url.path().starts_with(&format!("{prefix}/")), "{path:?} leaves {base}: {url}");
        assert!(url.fragment().is_none(), "{path:?} -> {url}");
    }
    for (name, value) in &req.headers {
        let lower = name.to_ascii_lowercase();
        assert!(!FORBIDDEN.contains(&lower.as_str()), "header {name:?} passed");
        assert!(!lower.starts_with("proxy-") && !lower.starts_with("sec-"), "header {name:?} passed");
        assert!(reqwest_like_name(name), "header name {name:?}");
        assert!(!value.contains(['\r', '\n', '\0']), "header value {value:?}");
    }
    for (name, _) in &req.query {
        assert!(!name.eq_ignore_ascii_case("_method"), "query {name:?} passed");
    }
    assert!(request::check_method_override(req).is_ok());
    if let request::Body::Raw(_, ct) | request::Body::Json(_, Some(ct)) = &req.body {
        assert!(!ct.contains(['\r', '\n', '\0']), "content type {ct:?}");
    }
}

/// An HTTP token (RFC 9110), which is what `HeaderName::from_bytes` takes.
fn reqwest_like_name(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}
