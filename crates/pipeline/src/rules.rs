//! Rules: which operations a principal may send, must not send, or may send
//! only after a human approves.
//!
//! A [`RuleSet`] is three lists of patterns — `allow`, `deny`, `approve` —
//! from an `[[api]]` or `[[mcp]]` table or from a group's table in
//! `[policy.groups.<group>]`. For an API a pattern is one of
//!
//! - `"METHOD /path/glob"` — `METHOD` may be `*` or alternatives `GET|HEAD`;
//! - `"/path/glob"` — any method;
//! - `"operationId:<glob>"`, `"tag:<glob>"`;
//! - for a GraphQL API, `"query.<glob>"`, `"mutation.<glob>"` over the
//!   operation's root fields (`"mutation.deleteRepository"`,
//!   `"mutation.delete*"`): `deny` and `approve` catch an operation when
//!   any of its root fields matches, `allow` lets it through only when
//!   every one does (path patterns never match a GraphQL operation);
//!
//! where in a path glob `*` matches one segment or part of one (`dns_*`) and
//! `**` any number of segments. A pattern matches when it matches the
//! spec's path template of the operation (`/zones/{zone_id}`) or the
//! concrete path. For an MCP server a pattern is a glob (`*`, `?`) over the
//! tool's name as the server gives it or as the code calls it
//! (`fs_write_file`).
//!
//! Paths are compared as a server would route them, so that no encoding
//! steps around a deny rule: percent-escapes decoded, `\` taken as `/`,
//! empty and `.` segments dropped, `..` applied, `;parameters` ignored,
//! letters compared without case.
//!
//! The decision for one call ([`Policy::decide`]): a matching `deny` refuses;
//! a non-empty `allow` that does not match refuses; with no `allow` a write
//! to an API needs `allow_writes`; then each of the principal's groups that
//! has a table for the target applies its `deny`, and at least one of them
//! must allow the call; finally a matching `approve` (base or group) asks a
//! human. Groups narrow, never widen.

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::{Access, BoxReply, Call, HostError, Layer, Next, Operation, Principal};

/// The three lists as written in the config.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleLists {
    /// When non-empty: only matching operations.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Never these. Deny wins.
    #[serde(default)]
    pub deny: Vec<String>,
    /// Ask the user before sending these.
    #[serde(default)]
    pub approve: Vec<String>,
}

/// What the rules are about: an OpenAPI API or an MCP server's tools.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetKind {
    /// Patterns over `METHOD /path`, `operationId:`, `tag:`.
    Api,
    /// Globs over tool names.
    Tools,
}

#[derive(Clone, Debug)]
enum Seg {
    /// `**`: any number of segments.
    Many,
    /// One segment, a glob of lower-case characters.
    One(String),
}

#[derive(Clone, Debug)]
enum Kind {
    Http {
        methods: Option<Vec<String>>,
        path: Vec<Seg>,
    },
    OperationId(String),
    Tag(String),
    Tool(String),
    /// `mutation.<glob>`: a GraphQL root field (kind and name, lower case).
    Field(String),
}

/// One compiled pattern.
#[derive(Clone, Debug)]
pub struct Pattern {
    text: String,
    kind: Kind,
}

const METHODS: [&str; 8] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"];

impl Pattern {
    /// Compiles a pattern; the error says what is wrong and how to write it.
    pub fn parse(text: &str, kind: TargetKind) -> Result<Pattern, String> {
        let t = text.trim();
        if t.is_empty() {
            return Err("an empty pattern matches nothing; remove it".into());
        }
        let kind = match kind {
            TargetKind::Tools => Kind::Tool(t.to_lowercase()),
            TargetKind::Api => {
                if ["query.", "mutation.", "subscription."].iter().any(|k| t.starts_with(k)) {
                    Kind::Field(t.to_lowercase())
                } else if let Some(g) = t.strip_prefix("operationId:") {
                    Kind::OperationId(g.trim().to_lowercase())
                } else if let Some(g) = t.strip_prefix("tag:") {
                    Kind::Tag(g.trim().to_lowercase())
                } else {
                    let (method, path) = match t.split_once(char::is_whitespace) {
                        Some((m, p)) if !m.starts_with('/') => (Some(m), p.trim()),
                        _ => (None, t),
                    };
                    // `DELETE *`: every path.
                    let path = if method.is_some() && (path == "*" || path == "**") { "/**" } else { path };
                    if !path.starts_with('/') {
                        return Err(format!(
                            "`{t}` is not a pattern: write \"METHOD /path/glob\" (e.g. \"DELETE /zones/*/dns_records/*\"), \"/path/glob\", \"operationId:<glob>\", \"tag:<glob>\" or, for a GraphQL API, \"mutation.<field glob>\" or \"query.<field glob>\""
                        ));
                    }
                    let methods = match method {
                        None | Some("*") => None,
                        Some(m) => {
                            let list: Vec<String> = m.split('|').map(|x| x.trim().to_ascii_uppercase()).collect();
                            if let Some(bad) = list.iter().find(|x| !METHODS.contains(&x.as_str())) {
                                return Err(format!(
                                    "`{t}`: `{bad}` is not an HTTP method; use one of {} (or `*`, or alternatives like GET|HEAD)",
                                    METHODS.join(", ")
                                ));
                            }
                            Some(list)
                        }
                    };
                    let path =
                        normalize(path).into_iter().map(|s| if s == "**" { Seg::Many } else { Seg::One(s) }).collect();
                    Kind::Http { methods, path }
                }
            }
        };
        Ok(Pattern { text: t.to_string(), kind })
    }

    /// The pattern as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether the pattern matches under SOME reading of the path (for
    /// `deny` and `approve`: a request is caught if any server could route
    /// it there).
    fn matches(&self, call: &Prepared<'_>) -> bool {
        self.matches_as(call, false)
    }

    /// Whether the pattern matches under EVERY reading of the path (for
    /// `allow`: a request is let through only if no server could route it
    /// elsewhere), or matches the spec's template of its operation.
    fn matches_every(&self, call: &Prepared<'_>) -> bool {
        self.matches_as(call, true)
    }

    fn matches_as(&self, call: &Prepared<'_>, every: bool) -> bool {
        match (&self.kind, call) {
            (Kind::Http { methods, path }, Prepared::Http { method, readings, template, .. }) => {
                let on = |r: &Vec<String>| segments_match(path, r);
                methods.as_ref().is_none_or(|m| m.iter().any(|x| x == method))
                    && (template.as_ref().is_some_and(|t| segments_match(path, t))
                        || if every { readings.iter().all(on) } else { readings.iter().any(on) })
            }
            (Kind::OperationId(g), Prepared::Http { operation_id: Some(id), .. }) => glob_match(g, id),
            (Kind::Tag(g), Prepared::Http { tags, .. }) => tags.iter().any(|t| glob_match(g, t)),
            (Kind::Tool(g), Prepared::Tool { tool, name }) => glob_match(g, tool) || glob_match(g, name),
            (Kind::Field(g), Prepared::Graphql { fields }) => {
                if every {
                    fields.iter().all(|f| glob_match(g, f))
                } else {
                    fields.iter().any(|f| glob_match(g, f))
                }
            }
            _ => false,
        }
    }
}

/// A call in the form patterns match against, computed once per call.
enum Prepared<'a> {
    Http {
        method: &'a str,
        /// The concrete path as the different kinds of server route it.
        readings: Vec<Vec<String>>,
        template: Option<Vec<String>>,
        operation_id: Option<String>,
        tags: Vec<String>,
    },
    Tool {
        tool: String,
        name: String,
    },
    Graphql {
        /// `mutation.addcomment`, one per root field.
        fields: Vec<String>,
    },
}

impl<'a> Prepared<'a> {
    fn of(call: &'a Call) -> Self {
        match &call.op {
            Operation::Http(h) => Prepared::Http {
                method: &h.request.method,
                readings: readings(&h.request.path),
                template: h.template.as_deref().map(normalize),
                operation_id: h.operation_id.as_ref().map(|s| s.to_lowercase()),
                tags: h.tags.iter().map(|t| t.to_lowercase()).collect(),
            },
            Operation::Tool(t) => Prepared::Tool { tool: t.tool.to_lowercase(), name: t.name.to_lowercase() },
            Operation::Graphql(g) => {
                Prepared::Graphql { fields: g.coordinates().iter().map(|f| f.to_lowercase()).collect() }
            }
        }
    }
}

/// The ways servers route one path, each as lower-case segments:
/// - decoded first, then split (proxies that decode, `%2F` a separator),
///   `\` as `/`, `;params` cut, dot segments applied (Tomcat, nginx);
/// - split first, then each segment decoded (Go, Express, ASP.NET: `%2F`
///   stays inside its segment), `;params` cut, dot segments applied;
/// - split first, segments decoded, nothing else (a router that takes
///   `..;` and `;` literally).
fn readings(path: &str) -> Vec<Vec<String>> {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let mut out = vec![normalize(path)];
    let raw: Vec<String> = path.split('/').map(percent_decode).collect();
    let mut split_first: Vec<String> = Vec::new();
    let mut literal: Vec<String> = Vec::new();
    for seg in &raw {
        let lower = seg.to_lowercase();
        if !lower.is_empty() {
            literal.push(lower.clone());
        }
        match lower.split(';').next().unwrap_or_default() {
            "" | "." => {}
            ".." => {
                split_first.pop();
            }
            s => split_first.push(s.to_string()),
        }
    }
    for r in [split_first, literal] {
        if !out.contains(&r) {
            out.push(r);
        }
    }
    out
}

/// A path (or a template) as a server that decodes first would route it:
/// percent-decoded, `\` as `/`, empty and `.` segments dropped, `..`
/// applied, `;params` cut, lower case.
fn normalize(path: &str) -> Vec<String> {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let decoded = percent_decode(path);
    let mut out: Vec<String> = Vec::new();
    for seg in decoded.split(['/', '\\']) {
        let seg = seg.split(';').next().unwrap_or_default();
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s.to_lowercase()),
        }
    }
    out
}

/// Decodes every `%XX`, repeatedly while escapes remain (a double-encoded
/// `%2564` is what some proxies decode twice), up to eight times.
fn percent_decode(s: &str) -> String {
    let mut cur = s.to_string();
    for _ in 0..8 {
        if !cur.contains('%') {
            break;
        }
        let bytes = cur.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' && i + 2 < bytes.len() {
                let hex = |b: u8| (b as char).to_digit(16);
                if let (Some(a), Some(b)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    out.push((a * 16 + b) as u8);
                    i += 3;
                    continue;
                }
            }
            out.push(bytes[i]);
            i += 1;
        }
        let next = String::from_utf8_lossy(&out).into_owned();
        if next == cur {
            break;
        }
        cur = next;
    }
    cur
}

fn segments_match(pattern: &[Seg], path: &[String]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((Seg::Many, rest)) => (0..=path.len()).any(|skip| segments_match(rest, &path[skip..])),
        Some((Seg::One(g), rest)) => match path.split_first() {
            Some((seg, more)) => glob_match(g, seg) && segments_match(rest, more),
            None => false,
        },
    }
}

/// `*` (any run of characters) and `?` (one character).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    // On the hot path of every call: no allocation for the common cases.
    if !pattern.contains(['*', '?']) {
        return pattern == text;
    }
    if pattern.is_ascii() && text.is_ascii() {
        return glob_units(pattern.as_bytes(), text.as_bytes());
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    glob_units(&p, &t)
}

fn glob_units<T: Copy + PartialEq + From<u8>>(p: &[T], t: &[T]) -> bool {
    let (star_c, any_c) = (T::from(b'*'), T::from(b'?'));
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == any_c || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == star_c {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == star_c {
        pi += 1;
    }
    pi == p.len()
}

/// Compiled `allow`, `deny` and `approve` lists.
#[derive(Clone, Debug, Default)]
pub struct RuleSet {
    allow: Vec<Pattern>,
    deny: Vec<Pattern>,
    approve: Vec<Pattern>,
}

impl RuleSet {
    /// Compiles the lists; each problem is `(key, message)`, key like `deny[1]`.
    pub fn compile(lists: &RuleLists, kind: TargetKind) -> Result<RuleSet, Vec<(String, String)>> {
        let mut problems = Vec::new();
        let mut one = |key: &str, list: &[String]| -> Vec<Pattern> {
            let mut out = Vec::new();
            for (i, t) in list.iter().enumerate() {
                match Pattern::parse(t, kind) {
                    Ok(p) => out.push(p),
                    Err(m) => problems.push((format!("{key}[{i}]"), m)),
                }
            }
            out
        };
        let set = RuleSet {
            allow: one("allow", &lists.allow),
            deny: one("deny", &lists.deny),
            approve: one("approve", &lists.approve),
        };
        if problems.is_empty() {
            Ok(set)
        } else {
            Err(problems)
        }
    }

    /// True when no list has an entry.
    pub fn is_empty(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty() && self.approve.is_empty()
    }

    /// Number of patterns.
    pub fn len(&self) -> usize {
        self.allow.len() + self.deny.len() + self.approve.len()
    }
}

/// The rules of one API or MCP server.
#[derive(Clone, Debug)]
pub struct TargetRules {
    /// `api bookshelf` or `mcp fs`, for messages.
    pub from: String,
    /// The target's own lists.
    pub rules: RuleSet,
    /// Whether writes are allowed when no `allow` list says otherwise (an
    /// API's `allow_writes`; always true for MCP servers, whose read-only
    /// mode hides tools instead).
    pub writes: bool,
}

/// What the rules say about one call.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Send it.
    Allow,
    /// Ask a human first; the matching rule, described.
    Approve(String),
    /// Refuse it: message and the `rule` field of the error.
    Deny(String, Value),
}

/// Every target's rules and every group's.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    targets: HashMap<String, TargetRules>,
    groups: HashMap<String, HashMap<String, RuleSet>>,
}

impl Policy {
    /// An empty policy: APIs read-only, tools allowed.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the rules of an API or MCP server.
    pub fn target(&mut self, name: &str, rules: TargetRules) {
        self.targets.insert(name.to_string(), rules);
    }

    /// The refusal for a tool the portal hides by the server's own rules:
    /// the matching deny or allow rule, or `read_only` when no rule explains it.
    pub fn hidden_tool(&self, server: &str, tool: &str, name: &str, reason: &str) -> (String, Value) {
        let op = crate::ToolOp { server: server.into(), tool: tool.into(), name: name.into(), arguments: Value::Null };
        let call = Call::new(Operation::Tool(op), Access::Write, std::sync::Arc::new(crate::Execution::new(None)));
        match self.decide_for(None, &call) {
            Verdict::Deny(m, rule) => (m, rule),
            _ => (
                format!("codemode.{name} is refused: {reason}. This tool is not available here; do the task another way, or tell the user."),
                json!({"effect": "read_only", "pattern": "read_only = true", "from": format!("mcp {server}")}),
            ),
        }
    }

    /// Sets the table of `group` for `target`.
    pub fn group(&mut self, group: &str, target: &str, rules: RuleSet) {
        self.groups.entry(group.to_string()).or_default().insert(target.to_string(), rules);
    }

    /// Names of the groups that have rules.
    pub fn group_names(&self) -> Vec<String> {
        let mut g: Vec<String> = self.groups.keys().cloned().collect();
        g.sort();
        g
    }

    /// Number of patterns in all rules.
    pub fn pattern_count(&self) -> usize {
        self.targets.values().map(|t| t.rules.len()).sum::<usize>()
            + self.groups.values().flat_map(|g| g.values()).map(RuleSet::len).sum::<usize>()
    }

    /// The decision for `call` (see the module docs for the order).
    pub fn decide(&self, call: &Call) -> Verdict {
        self.decide_for(call.exec.principal.as_ref(), call)
    }

    /// Whether `principal` may see tool `tool` (as the server names it;
    /// `name` in the code) of `server` in `search`: false when its rules
    /// refuse every call of it.
    pub fn tool_visible(&self, principal: Option<&Principal>, server: &str, tool: &str, name: &str) -> bool {
        let op = crate::ToolOp { server: server.into(), tool: tool.into(), name: name.into(), arguments: Value::Null };
        let call = Call::new(Operation::Tool(op), Access::Read, std::sync::Arc::new(crate::Execution::new(None)));
        !matches!(self.decide_for(principal, &call), Verdict::Deny(..))
    }

    fn decide_for(&self, principal: Option<&Principal>, call: &Call) -> Verdict {
        self.decide_traced(principal, call).0
    }

    /// The decision, and for a call that is let through, what let it
    /// through (`allow "GET /**" (api books)`, `allow_writes (api books)`,
    /// `reads (api books)`, `default (mcp fs)`), for the audit trail.
    pub fn decide_traced(&self, principal: Option<&Principal>, call: &Call) -> (Verdict, String) {
        let (v, why) = self.decide_inner(principal, call);
        (v, why.unwrap_or_default())
    }

    fn decide_inner(&self, principal: Option<&Principal>, call: &Call) -> (Verdict, Option<String>) {
        let prepared = Prepared::of(call);
        let what = call.describe();
        let target = call.target();
        let base = self.targets.get(target);
        let from = base.map(|b| b.from.clone()).unwrap_or_else(|| target.to_string());
        let empty = RuleSet::default();
        let rules = base.map(|b| &b.rules).unwrap_or(&empty);
        let writes = base.map(|b| b.writes).unwrap_or(matches!(call.op, Operation::Tool(_)));
        let mut allowed_by = match (&call.op, call.access) {
            (Operation::Tool(_), _) => format!("default ({from})"),
            (_, Access::Write) => format!("allow_writes ({from})"),
            (_, Access::Read) => format!("reads ({from})"),
        };
        if let Some(p) = rules.deny.iter().find(|p| p.matches(&prepared)) {
            return (deny_rule(&what, p, &from), None);
        }
        if !rules.allow.is_empty() {
            match rules.allow.iter().find(|p| p.matches_every(&prepared)) {
                Some(p) => allowed_by = format!("allow \"{}\" ({from})", p.text),
                None => return (allow_miss(&what, &rules.allow, &from), None),
            }
        } else if call.access == Access::Write && !writes && matches!(call.op, Operation::Graphql(_)) {
            return (Verdict::Deny(
                format!(
                    "{what} is refused: `{target}` is read-only here (only GraphQL queries are sent, no mutations). Use a query; if the task needs this change, tell the user that this API does not allow writes for you."
                ),
                json!({"effect": "allow_writes", "pattern": "allow_writes = false", "from": from}),
            ), None);
        } else if call.access == Access::Write && !writes {
            return (Verdict::Deny(
                format!(
                    "{what} is refused: `{target}` is read-only here (only GET and HEAD are sent). Use GET/HEAD requests; if the task needs this change, tell the user that this API does not allow writes for you."
                ),
                json!({"effect": "allow_writes", "pattern": "allow_writes = false", "from": from}),
            ), None);
        }
        let mut approve =
            rules.approve.iter().find(|p| p.matches(&prepared)).map(|p| format!("approve \"{}\" ({from})", p.text));
        let groups: Vec<(&str, &RuleSet)> = match principal {
            Some(pr) => pr
                .groups
                .iter()
                .filter_map(|g| self.groups.get(g).and_then(|t| t.get(target)).map(|r| (g.as_str(), r)))
                .collect(),
            None => vec![],
        };
        if !groups.is_empty() {
            for (g, r) in &groups {
                if let Some(p) = r.deny.iter().find(|p| p.matches(&prepared)) {
                    return (deny_rule(&what, p, &format!("group {g}")), None);
                }
            }
            let allowed =
                groups.iter().any(|(_, r)| r.allow.is_empty() || r.allow.iter().any(|p| p.matches_every(&prepared)));
            if !allowed {
                let all: Vec<Pattern> = groups.iter().flat_map(|(_, r)| r.allow.iter().cloned()).collect();
                let names: Vec<&str> = groups.iter().map(|(g, _)| *g).collect();
                return (allow_miss(&what, &all, &format!("group {}", names.join(", group "))), None);
            }
            let names: Vec<&str> = groups.iter().map(|(g, _)| *g).collect();
            allowed_by.push_str(&format!(" and group {}", names.join(", group ")));
            if approve.is_none() {
                approve = groups.iter().find_map(|(g, r)| {
                    r.approve
                        .iter()
                        .find(|p| p.matches(&prepared))
                        .map(|p| format!("approve \"{}\" (group {g})", p.text))
                });
            }
        }
        match approve {
            Some(rule) => (Verdict::Approve(rule), Some(allowed_by)),
            None => (Verdict::Allow, Some(allowed_by)),
        }
    }
}

fn deny_rule(what: &str, p: &Pattern, from: &str) -> Verdict {
    Verdict::Deny(
        format!(
            "{what} is refused by the rule deny \"{}\" ({from}). This operation is not permitted for you; retrying or encoding the request differently will not help. Do the task another way, or tell the user it needs a change of policy.",
            p.text
        ),
        json!({"effect": "deny", "pattern": p.text, "from": from}),
    )
}

fn allow_miss(what: &str, allow: &[Pattern], from: &str) -> Verdict {
    let list: Vec<String> = allow.iter().take(20).map(|p| format!("\"{}\"", p.text)).collect();
    let more = if allow.len() > 20 { format!(" and {} more", allow.len() - 20) } else { String::new() };
    Verdict::Deny(
        format!(
            "{what} is refused: it matches none of the operations allowed for you ({from}: {}{more}). Use one of those operations; if the task needs this one, tell the user.",
            list.join(", ")
        ),
        json!({"effect": "allow", "pattern": allow.iter().map(|p| p.text.clone()).collect::<Vec<_>>(), "from": from}),
    )
}

/// The layer: refuses what the rules deny and marks what needs approval.
#[derive(Debug)]
pub struct RuleLayer {
    policy: std::sync::Arc<Policy>,
}

impl RuleLayer {
    /// A layer deciding by `policy` (shared with the search catalog, which
    /// hides what it refuses).
    pub fn new(policy: std::sync::Arc<Policy>) -> Self {
        RuleLayer { policy }
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }
}

impl Layer for RuleLayer {
    fn handle<'a>(&'a self, mut call: Call, next: Next<'a>) -> BoxReply<'a> {
        let (verdict, allowed_by) = self.policy.decide_traced(call.exec.principal.as_ref(), &call);
        if !allowed_by.is_empty() {
            call.note("allowedBy", allowed_by);
        }
        match verdict {
            Verdict::Allow => next.run(call),
            Verdict::Approve(rule) => {
                call.needs_approval = Some(rule);
                next.run(call)
            }
            Verdict::Deny(message, rule) => {
                let mut e = HostError::new("PolicyError", message);
                e.fields = call.context();
                e.fields.insert("rule".into(), rule);
                e.fields.insert("retryable".into(), false.into());
                Box::pin(async move { Err(e) })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use codemode_upstream::request;

    use super::*;
    use crate::{Execution, HttpOp, Principal, ToolOp};

    fn lists(allow: &[&str], deny: &[&str], approve: &[&str]) -> RuleLists {
        let v = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
        RuleLists { allow: v(allow), deny: v(deny), approve: v(approve) }
    }

    fn http(method: &str, path: &str, template: Option<&str>, principal: Option<Principal>) -> Call {
        let request = request::parse(&json!([{"method": method, "path": path}])).unwrap();
        let op = HttpOp {
            api: "cf".into(),
            request,
            template: template.map(str::to_string),
            operation_id: Some("dnsRecordsDelete".into()),
            tags: vec!["DNS Records".into()],
        };
        Call::new(Operation::Http(op), Access::of_method(method), Arc::new(Execution::new(principal)))
    }

    /// A GraphQL call of `document` to API `cf`.
    fn graphql(document: &str) -> Call {
        let schema = codemode_graphql::Schema::from_sdl(
            "type Query { repo: Int } type Mutation { addComment: Int deleteRepository: Int deleteIssue: Int }",
            "t.graphql",
        )
        .unwrap();
        let request = codemode_graphql::Request { query: document.into(), ..Default::default() };
        let checked = schema.check(&request, &codemode_graphql::Limits::default()).unwrap();
        let access = Access::of_graphql(checked.kind);
        let op = crate::GraphqlOp {
            api: "cf".into(),
            request: request::parse(&json!([{"method": "POST", "path": "/graphql", "body": checked.body}])).unwrap(),
            checked: Arc::new(checked),
            partial: false,
        };
        Call::new(Operation::Graphql(op), access, Arc::new(Execution::new(None)))
    }

    #[test]
    fn graphql_rules_name_root_fields() {
        let deny = policy(lists(&[], &["mutation.delete*"], &[]), true);
        assert_eq!(deny.decide(&graphql("mutation { addComment }")), Verdict::Allow);
        // One denied root field refuses the whole document, aliases or not.
        let v = deny.decide(&graphql("mutation { addComment x: deleteRepository }"));
        assert!(matches!(&v, Verdict::Deny(m, _) if m.contains("mutation.delete*")), "{v:?}");
        // Allow needs every root field.
        let allow = policy(lists(&["query.*", "mutation.addComment"], &[], &[]), false);
        assert_eq!(allow.decide(&graphql("{ repo }")), Verdict::Allow);
        assert_eq!(allow.decide(&graphql("mutation { addComment }")), Verdict::Allow);
        assert!(matches!(allow.decide(&graphql("mutation { addComment deleteIssue }")), Verdict::Deny(..)));
        // A mutation is a write: refused without allow_writes, queries pass.
        let read_only = policy(lists(&[], &[], &[]), false);
        let v = read_only.decide(&graphql("mutation { addComment }"));
        assert!(matches!(&v, Verdict::Deny(m, _) if m.contains("no mutations")), "{v:?}");
        assert_eq!(read_only.decide(&graphql("query { repo }")), Verdict::Allow);
        // Path patterns never match a GraphQL operation; approve names fields.
        let approve = policy(lists(&[], &["POST /**"], &["mutation.addComment"]), true);
        assert!(matches!(approve.decide(&graphql("mutation { addComment }")), Verdict::Approve(_)));
        assert!(Pattern::parse("mutation.deleteRepository", TargetKind::Api).is_ok());
    }

    fn policy(l: RuleLists, writes: bool) -> Policy {
        let mut p = Policy::new();
        p.target(
            "cf",
            TargetRules { from: "api cf".into(), rules: RuleSet::compile(&l, TargetKind::Api).unwrap(), writes },
        );
        p
    }

    #[test]
    fn deny_wins_and_names_the_rule() {
        let p = policy(lists(&[], &["DELETE /zones/*/dns_records/*"], &[]), true);
        let v = p.decide(&http("DELETE", "/zones/z1/dns_records/r1", None, None));
        let Verdict::Deny(m, rule) = v else { panic!("{v:?}") };
        assert!(m.contains("deny \"DELETE /zones/*/dns_records/*\" (api cf)"), "{m}");
        assert_eq!(rule["effect"], "deny");
        assert_eq!(p.decide(&http("GET", "/zones/z1/dns_records/r1", None, None)), Verdict::Allow);
        assert_eq!(p.decide(&http("DELETE", "/zones/z1", None, None)), Verdict::Allow);
    }

    #[test]
    fn encodings_do_not_step_around_a_deny() {
        let p = policy(lists(&[], &["DELETE /zones/*/dns_records/*"], &[]), true);
        for path in [
            "/Zones/z1/DNS_records/r1",
            "/zones/z1/%64ns_records/r1",
            "/zones/z1/dns_records/r1/",
            "/zones//z1/dns_records/r1",
            "/zones/z1%2Fdns_records/r1",
            "/zones/z1/dns_records/r1;jsessionid=1",
            "/zones/z1/dns_records/%2572%2531",
            "/zones/z1/dns_records/%25252572%2531",
            "/other/..;/zones/z1/dns_records/r1",
        ] {
            let v = p.decide(&http("DELETE", path, None, None));
            assert!(matches!(v, Verdict::Deny(..)), "{path} was not refused: {v:?}");
        }
    }

    #[test]
    fn an_encoded_slash_is_read_both_ways() {
        // Split-then-decode servers see `a/b` as one segment; decode-then-split
        // ones see two. A deny holds for both; an allow must hold for both.
        let p = policy(lists(&[], &["POST /items/*/publish"], &[]), true);
        assert!(matches!(p.decide(&http("POST", "/items/a%2Fb/publish", None, None)), Verdict::Deny(..)));
        let p = policy(lists(&[], &["* /admin/**"], &[]), true);
        assert!(matches!(p.decide(&http("GET", "/admin/..;/items/1", None, None)), Verdict::Deny(..)));
        let p = policy(lists(&["GET /items/*"], &[], &[]), true);
        assert_eq!(p.decide(&http("GET", "/items/a", None, None)), Verdict::Allow);
        assert!(matches!(p.decide(&http("GET", "/items/a%2Fb", None, None)), Verdict::Deny(..)));
    }

    #[test]
    fn templates_operation_ids_and_tags_match() {
        let p = policy(lists(&[], &["DELETE /zones/{zone_id}/dns_records/{id}"], &[]), true);
        let v = p.decide(&http("DELETE", "/zones/a/dns_records/b", Some("/zones/{zone_id}/dns_records/{id}"), None));
        assert!(matches!(v, Verdict::Deny(..)));
        let p = policy(lists(&[], &["operationId:dnsRecords*"], &[]), true);
        assert!(matches!(p.decide(&http("DELETE", "/x", None, None)), Verdict::Deny(..)));
        let p = policy(lists(&[], &["tag:dns *"], &[]), true);
        assert!(matches!(p.decide(&http("GET", "/x", None, None)), Verdict::Deny(..)));
    }

    #[test]
    fn allow_lists_only_and_grant_writes() {
        let p = policy(lists(&["GET /zones/**", "POST /zones"], &[], &[]), false);
        assert_eq!(p.decide(&http("GET", "/zones/a/b/c", None, None)), Verdict::Allow);
        assert_eq!(p.decide(&http("GET", "/zones", None, None)), Verdict::Allow);
        assert_eq!(p.decide(&http("POST", "/zones", None, None)), Verdict::Allow);
        let Verdict::Deny(m, rule) = p.decide(&http("GET", "/accounts", None, None)) else { panic!() };
        assert!(m.contains("none of the operations allowed"), "{m}");
        assert_eq!(rule["effect"], "allow");
    }

    #[test]
    fn writes_need_allow_writes_without_an_allow_list() {
        let p = policy(RuleLists::default(), false);
        let Verdict::Deny(m, _) = p.decide(&http("POST", "/zones", None, None)) else { panic!() };
        assert!(m.contains("read-only"), "{m}");
        assert_eq!(p.decide(&http("HEAD", "/zones", None, None)), Verdict::Allow);
    }

    #[test]
    fn approve_marks_the_call() {
        // `DELETE *` is every DELETE; in a path `*` is one segment.
        let p = policy(lists(&[], &[], &["DELETE *"]), true);
        let v = p.decide(&http("DELETE", "/a/b", None, None));
        assert_eq!(v, Verdict::Approve("approve \"DELETE *\" (api cf)".into()));
        assert_eq!(p.decide(&http("GET", "/a", None, None)), Verdict::Allow);
        let p = policy(lists(&[], &[], &["DELETE /*"]), true);
        assert!(matches!(p.decide(&http("DELETE", "/a", None, None)), Verdict::Approve(_)));
        assert_eq!(p.decide(&http("DELETE", "/a/b", None, None)), Verdict::Allow);
    }

    #[test]
    fn groups_narrow_and_never_widen() {
        let mut p = policy(RuleLists::default(), true);
        p.group("finance", "cf", RuleSet::compile(&lists(&["GET /**"], &[], &[]), TargetKind::Api).unwrap());
        p.group("eng", "cf", RuleSet::compile(&lists(&[], &[], &["DELETE /**"]), TargetKind::Api).unwrap());
        let fin = Principal::unrestricted("f").in_groups(["finance"]);
        let eng = Principal::unrestricted("e").in_groups(["eng"]);
        let both = Principal::unrestricted("b").in_groups(["finance", "eng"]);
        let Verdict::Deny(m, rule) = p.decide(&http("POST", "/z", None, Some(fin.clone()))) else { panic!() };
        assert!(m.contains("group finance"), "{m}");
        assert_eq!(rule["from"], "group finance");
        assert_eq!(p.decide(&http("GET", "/z", None, Some(fin))), Verdict::Allow);
        assert_eq!(p.decide(&http("POST", "/z", None, Some(eng.clone()))), Verdict::Allow);
        assert!(matches!(p.decide(&http("DELETE", "/z", None, Some(eng))), Verdict::Approve(_)));
        assert!(matches!(p.decide(&http("DELETE", "/z", None, Some(both))), Verdict::Approve(_)));
        // A group cannot grant what the base refuses.
        let mut ro = policy(RuleLists::default(), false);
        ro.group("eng", "cf", RuleSet::compile(&lists(&[], &[], &[]), TargetKind::Api).unwrap());
        let eng = Principal::unrestricted("e").in_groups(["eng"]);
        assert!(matches!(ro.decide(&http("POST", "/z", None, Some(eng))), Verdict::Deny(..)));
    }

    #[test]
    fn tool_globs() {
        let mut p = Policy::new();
        let rules = RuleSet::compile(&lists(&[], &["fs_write_*"], &["edit_*"]), TargetKind::Tools).unwrap();
        p.target("fs", TargetRules { from: "mcp fs".into(), rules, writes: true });
        let tool = |t: &str| {
            let op = ToolOp { server: "fs".into(), tool: t.into(), name: format!("fs_{t}"), arguments: json!({}) };
            Call::new(Operation::Tool(op), Access::Write, Arc::new(Execution::new(None)))
        };
        assert!(matches!(p.decide(&tool("write_file")), Verdict::Deny(..)));
        assert!(matches!(p.decide(&tool("edit_file")), Verdict::Approve(_)));
        assert_eq!(p.decide(&tool("read_file")), Verdict::Allow);
    }

    #[test]
    fn globs() {
        assert!(glob_match("*", ""));
        assert!(glob_match("read_*", "read_file"));
        assert!(!glob_match("read_*", "write_file"));
        assert!(glob_match("*_file", "read_text_file"));
        assert!(glob_match("get-?um", "get-sum"));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b*c", "axxbyy"));
        assert!(glob_match("echo", "echo"));
        assert!(!glob_match("echo", "echo2"));
    }

    #[test]
    fn bad_patterns_say_how_to_write_them() {
        let e = RuleSet::compile(&lists(&["listZones"], &["FETCH /x"], &[]), TargetKind::Api).unwrap_err();
        assert_eq!(e[0].0, "allow[0]");
        assert!(e[0].1.contains("operationId:"), "{}", e[0].1);
        assert_eq!(e[1].0, "deny[0]");
        assert!(e[1].1.contains("not an HTTP method"), "{}", e[1].1);
    }
}
