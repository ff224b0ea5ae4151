//! Does the request carry a credential the operation asks for?
//!
//! The operation's `security` (or, when it has none, the document's) lists
//! alternatives; an empty alternative (`{}`) makes authentication optional.
//! The mock cannot judge a credential's value, only its presence, and it is
//! deliberately lenient about *which* one: a request passes when it carries
//! any credential the alternatives could use — an `Authorization` header
//! (HTTP, OAuth 2 and OpenID Connect schemes, or an API key named
//! `Authorization`), the header, query parameter or cookie of an API-key
//! scheme. Otherwise the answer is 401 naming what the operation accepts.

use codemode_spec::{Graph, NodeId};
use reqwest::header::HeaderMap;

use crate::doc::{entries, get_str, items};

/// What the security check decided.
pub(crate) enum Access {
    /// Allowed (no requirement, an optional one, or a credential is present).
    Allowed,
    /// 401: a description of the accepted schemes, and a `WWW-Authenticate` value.
    Denied(String, Option<String>),
}

/// Checks `op` of the document rooted at `root`.
pub(crate) fn check(g: &Graph, root: NodeId, op: NodeId, headers: &HeaderMap, query: &[(String, String)]) -> Access {
    let Some(reqs) = g.get(op, "security").or_else(|| g.get(root, "security")) else { return Access::Allowed };
    let alternatives = items(g, reqs);
    if alternatives.is_empty() || alternatives.iter().any(|a| entries(g, *a).is_empty()) {
        return Access::Allowed;
    }
    let schemes = g.get(root, "components").and_then(|c| g.get(c, "securitySchemes"));
    let has_header = |name: &str| headers.contains_key(name.to_ascii_lowercase().as_str());
    let cookie = headers.get("cookie").and_then(|v| v.to_str().ok()).unwrap_or("");
    let mut described: Vec<String> = Vec::new();
    let mut challenge: Option<String> = None;
    for alt in alternatives {
        let mut parts = Vec::new();
        for (name, _) in entries(g, *alt) {
            let scheme = schemes.and_then(|s| g.get(s, name));
            let kind = scheme.and_then(|s| get_str(g, s, "type")).unwrap_or("");
            let present = match kind {
                "apiKey" => {
                    let key = scheme.and_then(|s| get_str(g, s, "name")).unwrap_or("");
                    let location = scheme.and_then(|s| get_str(g, s, "in")).unwrap_or("header");
                    parts.push(format!("{name} ({location} `{key}`)"));
                    match location {
                        "query" => query.iter().any(|(k, _)| k == key),
                        "cookie" => cookie.split(';').any(|c| c.trim().split('=').next() == Some(key)),
                        _ => !key.is_empty() && has_header(key),
                    }
                }
                "http" => {
                    let s = scheme.and_then(|s| get_str(g, s, "scheme")).unwrap_or("bearer");
                    let pretty = match s.to_ascii_lowercase().as_str() {
                        "bearer" => "Bearer".to_string(),
                        "basic" => "Basic".to_string(),
                        other => other.to_string(),
                    };
                    parts.push(format!("{name} (`Authorization: {pretty} …`)"));
                    challenge.get_or_insert(pretty);
                    has_header("authorization")
                }
                "oauth2" | "openIdConnect" => {
                    parts.push(format!("{name} ({kind}: `Authorization: Bearer …`)"));
                    challenge.get_or_insert_with(|| "Bearer".into());
                    has_header("authorization")
                }
                // Mutual TLS and unknown schemes cannot be seen in a request.
                _ => {
                    parts.push(name.to_string());
                    true
                }
            };
            if present || has_header("authorization") {
                return Access::Allowed;
            }
        }
        described.push(parts.join(" + "));
    }
    Access::Denied(described.join(", or "), challenge)
}
