//! Who is calling, and what their scopes allow.

use std::collections::BTreeSet;

/// The caller of an HTTP request, as the auth layer established it.
///
/// The auth layer puts it in the HTTP request's extensions; rmcp hands the
/// request's `http::request::Parts` to the handler in
/// `RequestContext::extensions`, so a tool call finds it with
/// [`Principal::of`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// Token name (static tokens) or the JWT's `sub`; `anonymous` on a
    /// loopback listener without auth.
    pub name: String,
    /// `None`: unrestricted (whatever the config allows). `Some`: exactly
    /// these scopes (`<api>:read`, `<api>:write`), which narrow the config
    /// and never widen it.
    pub scopes: Option<BTreeSet<String>>,
}

impl Principal {
    /// A principal limited only by the config.
    pub fn unrestricted(name: impl Into<String>) -> Self {
        Principal { name: name.into(), scopes: None }
    }

    /// A principal with exactly `scopes`.
    pub fn with_scopes<I: IntoIterator<Item = S>, S: Into<String>>(name: impl Into<String>, scopes: I) -> Self {
        Principal { name: name.into(), scopes: Some(scopes.into_iter().map(Into::into).collect()) }
    }

    /// May this principal send a request to `api` through `execute`?
    /// `write` is true for any method other than GET and HEAD. `<api>:read`
    /// permits reads and `<api>:write` writes (the config's `allow_writes`
    /// still applies on top). The error names the missing scope.
    pub fn allows(&self, api: &str, write: bool) -> Result<(), String> {
        let Some(scopes) = &self.scopes else { return Ok(()) };
        let needed = format!("{api}:{}", if write { "write" } else { "read" });
        if scopes.contains(&needed) {
            return Ok(());
        }
        let what = if write {
            format!("sending {api} a request other than GET or HEAD")
        } else {
            format!("sending {api} a GET or HEAD request")
        };
        Err(format!(
            "forbidden: {what} needs the scope `{needed}`, which the credential of `{}` does not carry (it has: {}). Retrying will not help; ask for a token with `{needed}`.",
            self.name,
            self.scope_list()
        ))
    }

    /// Has this principal any scope on `api` (what `search` needs)?
    /// May this principal call MCP tool `tool` of `server`? `write` for a
    /// tool that does not declare itself read-only.
    pub fn allows_tool(&self, server: &str, tool: &str, write: bool) -> Result<(), String> {
        let Some(scopes) = &self.scopes else { return Ok(()) };
        let needed = format!("{server}:{}", if write { "write" } else { "read" });
        if scopes.contains(&needed) {
            return Ok(());
        }
        let kind = if write { "a tool that may change things (no readOnlyHint)" } else { "a read-only tool" };
        Err(format!(
            "forbidden: calling codemode.{tool}() of the MCP server `{server}` ({kind}) needs the scope `{needed}`, which the credential of `{}` does not carry (it has: {}). Retrying will not help; ask for a token with `{needed}`.",
            self.name,
            self.scope_list()
        ))
    }

    /// Does this principal carry any scope on `api`?
    pub fn allows_any(&self, api: &str) -> bool {
        match &self.scopes {
            None => true,
            Some(s) => s.contains(&format!("{api}:read")) || s.contains(&format!("{api}:write")),
        }
    }

    /// The error for a `search` over `api` without any scope on it.
    pub fn missing_any(&self, api: &str) -> String {
        format!(
            "forbidden: using {api} needs the scope `{api}:read` (or `{api}:write`), which the credential of `{}` does not carry (it has: {}).",
            self.name,
            self.scope_list()
        )
    }

    /// The scopes, space-separated, or `all` / `none`.
    pub fn scope_list(&self) -> String {
        match &self.scopes {
            None => "all".into(),
            Some(s) if s.is_empty() => "none".into(),
            Some(s) => s.iter().cloned().collect::<Vec<_>>().join(" "),
        }
    }

    /// The principal of a tool call served over HTTP, from
    /// `RequestContext::extensions` (rmcp puts the request's
    /// `http::request::Parts` there; the auth layer put the principal in
    /// their extensions). `None` over stdio.
    pub fn of(extensions: &rmcp::model::Extensions) -> Option<&Principal> {
        extensions.get::<http::request::Parts>().and_then(|p| p.extensions.get::<Principal>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unrestricted_allows_everything() {
        let p = Principal::unrestricted("anonymous");
        assert!(p.allows("cf", true).is_ok());
        assert!(p.allows_any("cf"));
        assert_eq!(p.scope_list(), "all");
    }

    #[test]
    fn read_and_write_are_separate_scopes() {
        let p = Principal::with_scopes("ci", ["cf:read", "books:write"]);
        assert!(p.allows("cf", false).is_ok());
        let e = p.allows("cf", true).unwrap_err();
        assert!(e.contains("`cf:write`"), "{e}");
        assert!(e.contains("`ci`"), "{e}");
        assert!(e.contains("it has: books:write cf:read"), "{e}");
        assert!(p.allows("books", true).is_ok());
        assert!(p.allows("books", false).unwrap_err().contains("`books:read`"));
        assert!(p.allows_any("cf") && p.allows_any("books") && !p.allows_any("gh"));
        assert!(p.missing_any("gh").contains("`gh:read`"));
    }

    #[test]
    fn no_scopes_allow_nothing() {
        let p = Principal::with_scopes("x", Vec::<String>::new());
        assert!(p.allows("cf", false).is_err());
        assert!(!p.allows_any("cf"));
        assert_eq!(p.scope_list(), "none");
    }

    #[test]
    fn found_through_the_request_parts() {
        let (mut parts, ()) = http::Request::new(()).into_parts();
        parts.extensions.insert(Principal::unrestricted("a"));
        let mut ext = rmcp::model::Extensions::new();
        assert!(Principal::of(&ext).is_none());
        ext.insert(parts);
        assert_eq!(Principal::of(&ext).unwrap().name, "a");
    }
}
