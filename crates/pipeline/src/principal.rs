//! Who is calling, and what their scopes allow.

use std::collections::BTreeSet;

/// Who a call is made for, as inbound auth established it (over HTTP the
/// auth layer of `codemode-http` puts it in the request's extensions).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// Token name (static tokens) or the JWT's `sub`; `anonymous` on a
    /// loopback listener without auth.
    pub name: String,
    /// `None`: unrestricted (whatever the config allows). `Some`: exactly
    /// these scopes (`<api>:read`, `<api>:write`), which narrow the config
    /// and never widen it.
    pub scopes: Option<BTreeSet<String>>,
    /// Groups (from a static token's `groups` or the JWT claim
    /// `groups_claim` names): they select the group rules of the policy.
    pub groups: Vec<String>,
    /// The credentials the client presented on its HTTP request for APIs
    /// that forward them (`auth = { type = "passthrough" }`), captured by
    /// the HTTP layer; empty over stdio. Never printed, never reaches the
    /// sandbox: the host adds it to the request and to the execution's
    /// scrubber.
    pub presented: codemode_upstream::Presented,
}

impl Principal {
    /// A principal limited only by the config.
    pub fn unrestricted(name: impl Into<String>) -> Self {
        Principal { name: name.into(), scopes: None, groups: vec![], presented: Default::default() }
    }

    /// A principal with exactly `scopes`.
    pub fn with_scopes<I: IntoIterator<Item = S>, S: Into<String>>(name: impl Into<String>, scopes: I) -> Self {
        Principal {
            name: name.into(),
            scopes: Some(scopes.into_iter().map(Into::into).collect()),
            groups: vec![],
            presented: Default::default(),
        }
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

    /// The same principal, in `groups`.
    pub fn in_groups<I: IntoIterator<Item = S>, S: Into<String>>(mut self, groups: I) -> Self {
        self.groups = groups.into_iter().map(Into::into).collect();
        self
    }

    /// The same principal, with what its client presented.
    pub fn presenting(mut self, presented: codemode_upstream::Presented) -> Self {
        self.presented = presented;
        self
    }

    /// Who an upstream request is sent for (the credential's choice).
    pub fn who(&self) -> codemode_upstream::Who<'_> {
        codemode_upstream::Who { principal: Some(&self.name), groups: &self.groups, presented: &self.presented }
    }

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

    /// Does this principal carry any scope on `api` (what `search` needs)?
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
}
