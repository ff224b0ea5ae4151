//! Which credential a request is sent with, chosen per principal at request
//! time by the host — never by the code.
//!
//! An API's [`Auth`] is resolved from the config once. Most are fixed (one
//! service credential for everyone); two are choices made per request:
//!
//! - [`Auth::Passthrough`]: the credential the MCP client presented on its
//!   own HTTP request (a header the HTTP layer captured into the
//!   principal's [`Presented`]) is forwarded as it is;
//! - [`Auth::PerPrincipal`]: a table from principal name and group to a
//!   credential, with an optional default. A principal that matches no
//!   entry and has no default is refused — never given the service
//!   credential.
//!
//! [`Auth::resolve`] turns either into a concrete credential for one
//! [`Who`]; the rest of the upstream (headers, redirects, scrubbing, error
//! messages) only ever sees concrete ones. A credential from another place
//! (a user's OAuth token from a token store) is one more variant here.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use crate::{Auth, Secret};

/// Credentials the MCP client presented on its HTTP request, captured by the
/// HTTP layer for the headers that some API forwards (`passthrough`). Names
/// are lower case. Never printed (`Debug` shows only the names).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Presented(Vec<(String, Secret)>);

impl Presented {
    /// Nothing presented (stdio, or no pass-through header configured).
    pub fn none() -> Self {
        Presented::default()
    }

    /// From `(header name, value)` pairs; names are lower-cased, empty
    /// values dropped.
    pub fn new<I: IntoIterator<Item = (String, String)>>(pairs: I) -> Self {
        Presented(
            pairs
                .into_iter()
                .filter(|(_, v)| !v.trim().is_empty())
                .map(|(k, v)| (k.to_ascii_lowercase(), Secret::new(v)))
                .collect(),
        )
    }

    /// The value presented in header `name` (any case).
    pub fn get(&self, name: &str) -> Option<&Secret> {
        self.0.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)
    }

    /// True when nothing was presented.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every presented value, for a scrubber: each is a secret of its
    /// principal for the length of one execution. A `Bearer <token>` or
    /// `Basic <b64>` value also gives its credential part (and for Basic,
    /// the decoded `user:password` and the password), so echoes of the
    /// token alone are found too.
    pub fn secrets(&self) -> Vec<String> {
        use base64::Engine as _;
        let mut out = Vec::new();
        for (_, v) in &self.0 {
            let v = v.expose().trim();
            // `Scheme credential`: the credential part is the secret (the
            // scheme word stays visible, `Bearer [REDACTED]`, as for a
            // configured credential); base64 of the whole value is found
            // through it.
            let Some((scheme, rest)) = v.split_once(' ').filter(|(s, r)| {
                !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') && !r.trim().is_empty()
            }) else {
                out.push(v.to_string());
                continue;
            };
            let rest = rest.trim();
            out.push(rest.to_string());
            if rest.len() < crate::scrub::MIN_PATTERN_LEN {
                // Too short to scrub alone: scrub the whole value instead.
                out.push(v.to_string());
            }
            if scheme.eq_ignore_ascii_case("basic") {
                if let Ok(pair) = base64::engine::general_purpose::STANDARD.decode(rest) {
                    if let Ok(pair) = String::from_utf8(pair) {
                        if let Some((_, password)) = pair.split_once(':') {
                            out.push(password.to_string());
                        }
                        out.push(pair);
                    }
                }
            }
        }
        out
    }
}

impl std::fmt::Debug for Presented {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.iter().map(|(k, _)| format!("{k}: [redacted]"))).finish()
    }
}

/// Who a request is sent for, as the host knows it: the authenticated
/// principal (none over stdio), its groups, and what its client presented.
#[derive(Clone, Copy, Debug)]
pub struct Who<'a> {
    /// The principal's name.
    pub principal: Option<&'a str>,
    /// Its groups (static token `groups`, the JWT's groups claim).
    pub groups: &'a [String],
    /// The credentials its client presented on the HTTP request.
    pub presented: &'a Presented,
}

impl Who<'_> {
    /// Nobody in particular: stdio, `codemode exec`, tests.
    pub fn nobody() -> Who<'static> {
        static NONE: std::sync::OnceLock<Presented> = std::sync::OnceLock::new();
        Who { principal: None, groups: &[], presented: NONE.get_or_init(Presented::none) }
    }
}

/// `auth = { type = "passthrough", … }`: forward what the client presented.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Passthrough {
    /// The inbound header the client's credential is read from (e.g.
    /// `Authorization`).
    pub header: String,
    /// The upstream header it is sent in (default: the same name).
    pub send_as: String,
}

/// Credentials chosen per principal: by name first, then by the first group
/// (in config order) the principal is in, then the default.
#[derive(Clone, Debug, Default)]
pub struct PerPrincipal {
    /// By principal name.
    pub principals: BTreeMap<String, Auth>,
    /// By group, in config order (the first group that matches wins).
    pub groups: Vec<(String, Auth)>,
    /// For everyone else; `None`: everyone else is refused.
    pub default: Option<Auth>,
}

impl Auth {
    /// The concrete credential (`None`, `Bearer`, `Header` or `Basic`) a
    /// request for `who` is sent with, or the refusal the code gets (a
    /// `PolicyError` saying why and what the operator can do).
    pub fn resolve<'a>(&'a self, api: &str, who: &Who<'_>) -> Result<Cow<'a, Auth>, crate::UpstreamError> {
        self.resolve_for(&format!("the `{api}` API"), who)
    }

    /// [`Auth::resolve`] for a target described by `what` (`the `github`
    /// MCP server`), which the refusal names.
    pub fn resolve_for<'a>(&'a self, what: &str, who: &Who<'_>) -> Result<Cow<'a, Auth>, crate::UpstreamError> {
        match self {
            Auth::Passthrough(p) => match who.presented.get(&p.header) {
                Some(value) => Ok(Cow::Owned(Auth::Header {
                    name: p.send_as.clone(),
                    value: value.clone(),
                    source: "the MCP client (pass-through)".into(),
                })),
                None => Err(crate::UpstreamError::policy(&format!(
                    "{what} forwards the credential your MCP client presents in its `{}` header, and this request's client sent none{}. Retrying will not help: configure the MCP client to send `{}` to codemode (e.g. the upstream token as `Authorization: Bearer <token>`).",
                    p.header,
                    if who.principal.is_none() { " (stdio and `codemode exec` have no HTTP request to take it from)" } else { "" },
                    p.header,
                ))),
            },
            Auth::PerPrincipal(table) => {
                let chosen = who
                    .principal
                    .and_then(|n| table.principals.get(n))
                    .or_else(|| table.groups.iter().find(|(g, _)| who.groups.contains(g)).map(|(_, a)| a))
                    .or(table.default.as_ref());
                match chosen {
                    // An entry may itself be a pass-through.
                    Some(a) => a.resolve_for(what, who),
                    None => Err(crate::UpstreamError::policy(&format!(
                        "no credential for {what} is configured for {}{}, and there is no default: the request was not sent. Retrying will not help; an operator can add this principal (or one of its groups) to its `auth_for`, or a default `auth`.",
                        who.principal.map(|n| format!("the principal `{n}`")).unwrap_or_else(|| "calls without a principal (stdio)".into()),
                        if who.groups.is_empty() { String::new() } else { format!(" (groups: {})", who.groups.join(", ")) },
                    ))),
                }
            }
            fixed => Ok(Cow::Borrowed(fixed)),
        }
    }

    /// True when the credential depends on who asks (pass-through or a
    /// per-principal table).
    pub fn is_dynamic(&self) -> bool {
        matches!(self, Auth::Passthrough(_) | Auth::PerPrincipal(_))
    }
}

/// Shorthand for a per-principal table in an [`Auth`].
pub fn per_principal(table: PerPrincipal) -> Auth {
    Auth::PerPrincipal(Arc::new(table))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bearer(t: &str) -> Auth {
        Auth::Bearer { token: Secret::new(t.into()), source: format!("${t}") }
    }

    fn token_of(a: &Auth) -> String {
        match a {
            Auth::Bearer { token, .. } => token.expose().to_string(),
            Auth::Header { value, .. } => value.expose().to_string(),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn per_principal_by_name_then_group_then_default_else_refused() {
        let table = per_principal(PerPrincipal {
            principals: [("alice".to_string(), bearer("ALICE"))].into(),
            groups: vec![("ops".into(), bearer("OPS")), ("dev".into(), bearer("DEV"))],
            default: None,
        });
        let none = Presented::none();
        let groups = ["dev".to_string(), "ops".to_string()];
        fn who<'a>(p: &'a str, g: &'a [String], presented: &'a Presented) -> Who<'a> {
            Who { principal: Some(p), groups: g, presented }
        }
        assert_eq!(token_of(&table.resolve("x", &who("alice", &groups, &none)).unwrap()), "ALICE");
        // Config order of the groups, not the principal's.
        assert_eq!(token_of(&table.resolve("x", &who("bob", &groups, &none)).unwrap()), "OPS");
        let e = table.resolve("x", &who("carol", &[], &none)).unwrap_err();
        assert_eq!(e.name, "PolicyError");
        assert!(e.message.contains("`carol`") && e.message.contains("auth_for"), "{}", e.message);
        let e = table.resolve("x", &Who::nobody()).unwrap_err();
        assert!(e.message.contains("stdio"), "{}", e.message);
    }

    #[test]
    fn passthrough_forwards_what_was_presented_and_refuses_without() {
        let auth = Auth::Passthrough(Passthrough { header: "Authorization".into(), send_as: "Authorization".into() });
        let presented = Presented::new([("authorization".to_string(), "Bearer tok-123456".to_string())]);
        let who = Who { principal: Some("p"), groups: &[], presented: &presented };
        let a = auth.resolve("gh", &who).unwrap();
        assert!(matches!(&*a, Auth::Header { name, .. } if name == "Authorization"));
        assert_eq!(token_of(&a), "Bearer tok-123456");
        assert!(!a.describe().contains("tok-123456"), "{}", a.describe());
        let e = auth.resolve("gh", &Who::nobody()).unwrap_err();
        assert!(e.message.contains("`Authorization`") && e.message.contains("stdio"), "{}", e.message);
        assert!(format!("{presented:?}").contains("[redacted]") && !format!("{presented:?}").contains("tok-"));
    }

    #[test]
    fn presented_secrets_include_the_credential_part() {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode("alice:s3cret-pw");
        let p = Presented::new([
            ("Authorization".to_string(), format!("Basic {b64}")),
            ("x-key".to_string(), "  ".to_string()),
        ]);
        let s = p.secrets();
        assert!(s.contains(&"alice:s3cret-pw".to_string()) && s.contains(&"s3cret-pw".to_string()), "{s:?}");
        assert!(p.get("x-key").is_none(), "an empty value is not presented");
    }
}
