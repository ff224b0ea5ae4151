//! `[[dlp]]`: a call whose request carries what a rule's detectors find is
//! refused before it is sent.

use std::borrow::Cow;
use std::sync::LazyLock;

use codemode_pipeline::{BoxReply, Call, HostError, Layer, Next, Operation};
use codemode_upstream::{Body, FieldValue};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::detect::{Builtin, Detector};
use crate::redact::{check_apis, compile_detectors, DetectorSet};
use crate::Problem;

/// The detector id a DLP rule's custom `pattern` is reported as.
pub const PATTERN_DETECTOR: &str = "pattern";

/// One `[[dlp]]` table of the config.
///
/// ```toml
/// [[dlp]]
/// id = "no-cards-to-crm"           # named in the error and the audit record
/// detectors = ["card", "iban"]     # built-in ids, or ["all"]
/// pattern = "EMP-[0-9]{6}"         # and/or a custom regex (reported as `pattern`)
/// apis = ["crm"]                   # only calls to these APIs / MCP servers; omitted: every one
/// action = "block"                 # the default, and for now the only action
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DlpRule {
    /// The rule's id: named in the error and the audit record (letters,
    /// digits, `_`, `.`, `-`; unique).
    pub id: String,
    /// Built-in detector ids, or `"all"`.
    #[serde(default)]
    pub detectors: Vec<String>,
    /// A custom regex; its finds are reported as the detector `pattern`.
    #[serde(default)]
    pub pattern: Option<String>,
    /// Only calls to these APIs or MCP servers. Omitted: every call.
    #[serde(default)]
    pub apis: Option<Vec<String>>,
    /// What happens to a matching call.
    #[serde(default)]
    pub action: DlpAction,
}

/// What a DLP rule does with a call that matches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DlpAction {
    /// Refuse it before sending, with a `DlpError`.
    #[default]
    Block,
}

/// Why a call was refused: which rule, which detector, and where in the
/// request (never the data itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DlpMatch {
    /// The rule's id.
    pub rule: String,
    /// The detector's id (`card`, …; `pattern` for the rule's own regex).
    pub detector: String,
    /// Where, in words: `the body at /payment/number`, `the query parameter
    /// \`q\``, `the path`, `the header \`x-note\``, `the arguments at /to`.
    /// Names and keys in it are themselves redacted.
    pub location: String,
    /// When the find was in the request path: the path with it replaced by
    /// a marker (what error fields and records should show instead).
    pub redacted_path: Option<String>,
}

struct Rule {
    id: String,
    set: DetectorSet,
    apis: Option<Vec<String>>,
}

/// The DLP layer of the host pipeline. Every call to an API or MCP server
/// that a `[[dlp]]` rule covers is checked before it goes on: its path,
/// query parameters (names and values), header values and body (JSON
/// strings, keys and numbers; raw text), or a tool's arguments — each also
/// percent-decoded where it has `%` escapes. The first rule (in config
/// order) that finds something refuses the call with a `DlpError` and notes
/// `dlp: {rule, detector}` on the call for the audit record; calls that no
/// rule matches pass through untouched.
#[derive(Default)]
pub struct DlpLayer {
    rules: Vec<Rule>,
}

impl std::fmt::Debug for DlpLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.rules.iter().map(|r| &r.id)).finish()
    }
}

impl DlpLayer {
    /// The layer for the `[[dlp]]` rules. Every problem is returned at once,
    /// as `(key, message)` with keys like `dlp[0].detectors[1]`.
    pub fn new(rules: &[DlpRule]) -> Result<DlpLayer, Vec<Problem>> {
        let mut problems = vec![];
        let mut out = vec![];
        let mut ids = std::collections::HashSet::new();
        for (i, r) in rules.iter().enumerate() {
            let key = format!("dlp[{i}]");
            if !crate::detect::valid_name(&r.id) {
                problems.push((
                    format!("{key}.id"),
                    format!("`{}` must be 1 to 40 letters, digits, `_`, `.` or `-`", r.id),
                ));
            } else if !ids.insert(r.id.as_str()) {
                problems.push((
                    format!("{key}.id"),
                    format!("`{}` is the id of two [[dlp]] rules; ids must be unique", r.id),
                ));
            }
            if r.detectors.is_empty() && r.pattern.is_none() {
                problems.push((
                    key.clone(),
                    format!("give `detectors` (all, {}) or a `pattern`", crate::detect::builtin_ids()),
                ));
            }
            check_apis(&key, &r.apis, &mut problems);
            let dets =
                compile_detectors(&key, &r.detectors, r.pattern.as_deref(), Some(PATTERN_DETECTOR), &mut problems);
            out.push(Rule { id: r.id.clone(), set: DetectorSet::new(dets), apis: r.apis.clone() });
        }
        if problems.is_empty() {
            Ok(DlpLayer { rules: out })
        } else {
            Err(problems)
        }
    }

    /// True when there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// True when some rule covers calls to `target`.
    pub fn applies_to(&self, target: &str) -> bool {
        self.rules.iter().any(|r| covers(r, target))
    }

    /// The first rule that `call` matches, and where.
    pub fn inspect(&self, call: &Call) -> Option<DlpMatch> {
        let target = call.target();
        for rule in self.rules.iter().filter(|r| covers(r, target)) {
            let found = match &call.op {
                Operation::Http(h) => inspect_http(&rule.set, &h.request),
                Operation::Graphql(g) => inspect_http(&rule.set, &g.request),
                Operation::Tool(t) => inspect_json(&rule.set, &t.arguments, "the arguments"),
            };
            if let Some((det, location, redacted_path)) = found {
                return Some(DlpMatch {
                    rule: rule.id.clone(),
                    detector: rule.set.id(det).to_string(),
                    location,
                    redacted_path,
                });
            }
        }
        None
    }

    /// The error a matched call is refused with: `DlpError`, naming the rule
    /// and the detector and saying what to do; fields `rule`, `detector`,
    /// `location`, `api`/`server`, `method`/`tool`, `path`, `retryable`.
    pub fn error(call: &Call, m: &DlpMatch) -> HostError {
        let what = Builtin::from_id(&m.detector).map(Builtin::what).unwrap_or("data this rule describes");
        let advice = match Builtin::from_id(&m.detector) {
            Some(Builtin::Email) => "leave the address out, or refer to the person by an id the API knows",
            Some(Builtin::Card) => "send a payment token or only the last four digits instead of the card number",
            Some(Builtin::Iban) => {
                "refer to the account by an id the API knows, or mask all but its last four characters"
            }
            Some(_) => "credentials never belong in a request: the host adds the API's own credential itself",
            None => "remove or mask that data",
        };
        let (noun, target) = match &call.op {
            Operation::Http(h) => ("API", h.api.as_str()),
            Operation::Graphql(g) => ("API", g.api.as_str()),
            Operation::Tool(t) => ("MCP server", t.server.as_str()),
        };
        let message = format!(
            "DLP rule `{}` blocked this call to the {noun} `{target}`: {} looks like it contains {what} (detector `{}`). \
             Nothing was sent. Change the request and call again — {advice}; the same request will be blocked again.",
            m.rule, m.location, m.detector
        );
        let mut e = HostError::new("DlpError", message);
        for (k, v) in call.context() {
            e = e.with(&k, v);
        }
        if let Some(p) = &m.redacted_path {
            e = e.with("path", p.as_str());
        }
        e.with("rule", m.rule.as_str())
            .with("detector", m.detector.as_str())
            .with("location", m.location.as_str())
            .with("retryable", false)
    }
}

impl Layer for DlpLayer {
    fn handle<'a>(&'a self, call: Call, next: Next<'a>) -> BoxReply<'a> {
        match self.inspect(&call) {
            None => next.run(call),
            Some(m) => {
                call.note("dlp", json!({"rule": m.rule, "detector": m.detector}));
                let e = DlpLayer::error(&call, &m);
                Box::pin(async move { Err(e) })
            }
        }
    }
}

fn covers(rule: &Rule, target: &str) -> bool {
    rule.apis.as_ref().is_none_or(|a| a.iter().any(|t| t == target))
}

/// Every built-in: names and keys shown in a location are redacted with it.
static ALL: LazyLock<DetectorSet> = LazyLock::new(|| DetectorSet::new(Builtin::ALL.map(Detector::Builtin)));

/// A name or key as it may appear in a message: redacted, at most 60
/// characters.
fn shown(name: &str) -> String {
    let clean = ALL.redact(name, &mut vec![], &mut vec![], &mut Default::default());
    let mut s: String = clean.chars().take(60).collect();
    if clean.chars().nth(60).is_some() {
        s.push('…');
    }
    s
}

/// The first detector of `set` that matches `text`, or its percent-decoded
/// form (`+` as a space when `form` is set).
fn text_match(set: &DetectorSet, text: &str, form: bool) -> Option<usize> {
    set.first_match(text).or_else(|| match decoded(text, form) {
        Cow::Owned(d) => set.first_match(&d),
        Cow::Borrowed(_) => None,
    })
}

fn decoded(text: &str, form: bool) -> Cow<'_, str> {
    let plus = form && text.contains('+');
    if !text.contains('%') && !plus {
        return Cow::Borrowed(text);
    }
    let spaced: Cow<'_, str> = if plus { Cow::Owned(text.replace('+', " ")) } else { Cow::Borrowed(text) };
    let d = percent_encoding::percent_decode_str(&spaced).decode_utf8_lossy().into_owned();
    if d == text {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(d)
    }
}

type Found = (usize, String, Option<String>);

fn inspect_http(set: &DetectorSet, req: &codemode_upstream::ApiRequest) -> Option<Found> {
    if let Some(d) = text_match(set, &req.path, false) {
        let raw = set.redact(&req.path, &mut vec![], &mut vec![], &mut Default::default());
        let path = match raw {
            Cow::Owned(p) => p,
            // Only the decoded path matched: show it decoded and redacted.
            Cow::Borrowed(_) => {
                let dec = decoded(&req.path, false);
                set.redact(&dec, &mut vec![], &mut vec![], &mut Default::default()).into_owned()
            }
        };
        return Some((d, "the path".into(), Some(path)));
    }
    for (k, v) in &req.query {
        if let Some(d) = text_match(set, k, false) {
            return Some((d, "the name of a query parameter".into(), None));
        }
        if let Some(d) = text_match(set, v, false) {
            return Some((d, format!("the query parameter `{}`", shown(k)), None));
        }
    }
    for (k, v) in &req.headers {
        if let Some(d) = text_match(set, v, false) {
            return Some((d, format!("the header `{}`", shown(k)), None));
        }
    }
    match &req.body {
        Body::None => None,
        Body::Json(v, _) => inspect_json(set, v, "the body").map(|(d, l, _)| (d, l, None)),
        Body::Raw(text, ctype) => {
            let form = ctype.to_ascii_lowercase().contains("x-www-form-urlencoded");
            text_match(set, text, form).map(|d| (d, "the body".into(), None))
        }
        // Bytes that are text are scanned as text; other bytes (an image,
        // an archive) are not: detectors are for text.
        Body::Bytes(bytes, _) => std::str::from_utf8(bytes)
            .ok()
            .and_then(|text| text_match(set, text, false))
            .map(|d| (d, "the body".into(), None)),
        Body::Form(form) => form.fields.iter().find_map(|f| {
            if let Some(d) = text_match(set, &f.name, false) {
                return Some((d, "the name of a form field".into(), None));
            }
            let found = match &f.value {
                FieldValue::Text(t) => text_match(set, t, false),
                FieldValue::File(file) => text_match(set, &file.filename, false)
                    .or_else(|| std::str::from_utf8(&file.data).ok().and_then(|t| text_match(set, t, false))),
            };
            found.map(|d| (d, format!("the form field `{}`", shown(&f.name)), None))
        }),
    }
}

/// One step of a JSON pointer.
enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

/// Depth-first, in document order: keys before their values.
fn inspect_json(set: &DetectorSet, root: &Value, what: &str) -> Option<Found> {
    // Pointer steps with their parent, so a pointer is built only for a find.
    let mut steps: Vec<(usize, Seg<'_>)> = vec![];
    let mut stack: Vec<(&Value, usize)> = vec![(root, usize::MAX)];
    let at = |steps: &[(usize, Seg<'_>)], node: usize, key: bool| -> String {
        let mut segs = vec![];
        let mut n = node;
        while n != usize::MAX {
            let (parent, seg) = &steps[n];
            segs.push(match seg {
                Seg::Key(k) => shown(k).replace('~', "~0").replace('/', "~1"),
                Seg::Index(i) => i.to_string(),
            });
            n = *parent;
        }
        segs.reverse();
        let pointer: String = segs.iter().map(|s| format!("/{s}")).collect();
        match (key, pointer.is_empty()) {
            (true, true) => format!("a key of {what}"),
            (true, false) => format!("a key of {what} at {pointer}"),
            (false, true) => what.to_string(),
            (false, false) => format!("{what} at {pointer}"),
        }
    };
    while let Some((v, node)) = stack.pop() {
        match v {
            Value::String(s) => {
                if let Some(d) = text_match(set, s, false) {
                    return Some((d, at(&steps, node, false), None));
                }
            }
            Value::Number(n) => {
                if let Some(d) = set.first_match_number(n) {
                    return Some((d, at(&steps, node, false), None));
                }
            }
            Value::Array(items) => {
                for (i, c) in items.iter().enumerate().rev() {
                    steps.push((node, Seg::Index(i)));
                    stack.push((c, steps.len() - 1));
                }
            }
            Value::Object(m) => {
                for (k, c) in m {
                    if let Some(d) = set.first_match(k) {
                        return Some((d, at(&steps, node, true), None));
                    }
                    if let Some(d) = set.aws_secret_under(k, c) {
                        steps.push((node, Seg::Key(k)));
                        return Some((d, at(&steps, steps.len() - 1, false), None));
                    }
                }
                for (k, c) in m.iter().rev() {
                    steps.push((node, Seg::Key(k)));
                    stack.push((c, steps.len() - 1));
                }
            }
            Value::Null | Value::Bool(_) => {}
        }
    }
    None
}
