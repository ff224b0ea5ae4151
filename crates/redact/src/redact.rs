//! `[[redact]]`: replacing what the detectors find with typed markers in
//! everything that goes back to the model.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::detect::{self, Builtin, Custom, Detector, Triggers};
use crate::Problem;

/// What a replaced span becomes: `[redacted:<detector>]`.
pub fn marker(detector: &str) -> String {
    format!("{MARKER_PREFIX}{detector}]")
}

/// How every marker starts.
pub const MARKER_PREFIX: &str = "[redacted:";

/// How many times a string is re-scanned after a replacement before it is
/// replaced whole (only a custom pattern that keeps matching next to its own
/// markers gets there; see [`Redactor`] on idempotence).
const MAX_PASSES: usize = 8;

/// One `[[redact]]` table of the config.
///
/// ```toml
/// [[redact]]
/// detectors = ["email", "card"]     # built-in ids, or ["all"]
///
/// [[redact]]
/// pattern = "EMP-[0-9]{6}"          # a custom regex (the `regex` crate's syntax)
/// name = "employee_id"              # its marker: [redacted:employee_id]
/// apis = ["hr"]                     # only results of these APIs / MCP servers
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RedactRule {
    /// Built-in detector ids ([`Builtin::id`]), or `"all"` for every one.
    #[serde(default)]
    pub detectors: Vec<String>,
    /// A custom regex. When it has a group named `value`, only that group is
    /// replaced.
    #[serde(default)]
    pub pattern: Option<String>,
    /// The custom pattern's marker name (`[redacted:<name>]`; letters,
    /// digits, `_`, `.`, `-`). Default `custom`.
    #[serde(default)]
    pub name: Option<String>,
    /// Only results of calls to these APIs or MCP servers. Omitted: every
    /// result, and everything else that goes back to the model.
    #[serde(default)]
    pub apis: Option<Vec<String>>,
}

/// Compiles the detectors one rule names. `key` is where the rule is in the
/// config (`redact[0]`), for problems.
pub(crate) fn compile_detectors(
    key: &str,
    detectors: &[String],
    pattern: Option<&str>,
    name: Option<&str>,
    problems: &mut Vec<Problem>,
) -> Vec<Detector> {
    let mut out = Vec::new();
    for (j, id) in detectors.iter().enumerate() {
        if id == "all" {
            out.extend(Builtin::ALL.map(Detector::Builtin));
        } else if let Some(b) = Builtin::from_id(id) {
            out.push(Detector::Builtin(b));
        } else {
            problems.push((
                format!("{key}.detectors[{j}]"),
                format!("`{id}` is not a detector; the detectors are: all, {}", detect::builtin_ids()),
            ));
        }
    }
    let name = name.unwrap_or("custom");
    if !detect::valid_name(name) {
        problems.push((
            format!("{key}.name"),
            format!(
                "`{name}` must be 1 to 40 letters, digits, `_`, `.` or `-` (it becomes the marker [redacted:<name>])"
            ),
        ));
    }
    if let Some(p) = pattern {
        match Custom::new(name, p) {
            Ok(c) => out.push(Detector::Custom(Arc::new(c))),
            Err(m) => problems.push((format!("{key}.pattern"), m)),
        }
    }
    out
}

/// Checks that `apis`, when given, lists at least one non-empty name.
pub(crate) fn check_apis(key: &str, apis: &Option<Vec<String>>, problems: &mut Vec<Problem>) {
    if let Some(list) = apis {
        if list.is_empty() {
            problems.push((
                format!("{key}.apis"),
                "an empty list matches nothing; leave `apis` out to apply the rule everywhere".into(),
            ));
        }
        for (j, a) in list.iter().enumerate() {
            if a.trim().is_empty() {
                problems.push((format!("{key}.apis[{j}]"), "must name an [[api]] or an [[mcp]] server".into()));
            }
        }
    }
}

/// How many markers each detector wrote, by detector id (for the audit
/// record and metrics). Serializes as `{"email": 3, "card": 1}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Counts(BTreeMap<String, u64>);

impl Counts {
    /// Nothing was redacted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Markers written by the detector `id`.
    pub fn get(&self, id: &str) -> u64 {
        self.0.get(id).copied().unwrap_or(0)
    }

    /// Markers written in all.
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// `(detector id, markers)`, by id.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        self.0.iter().map(|(k, &v)| (k.as_str(), v))
    }

    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &Counts) {
        for (k, v) in &other.0 {
            *self.0.entry(k.clone()).or_default() += v;
        }
    }

    /// As a JSON object `{"email": 3, …}`.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("a map of numbers serializes")
    }

    fn bump(&mut self, id: &str, by: u64) {
        match self.0.get_mut(id) {
            Some(v) => *v += by,
            None => {
                self.0.insert(id.to_string(), by);
            }
        }
    }
}

/// A found span: bytes `start..end`, found by detector `det` of the set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    pub start: usize,
    pub end: usize,
    pub det: usize,
}

/// A set of detectors applied together: one scope of a [`Redactor`], or
/// one DLP rule.
#[derive(Clone, Debug, Default)]
pub(crate) struct DetectorSet {
    dets: Vec<Detector>,
    markers: Vec<String>,
    /// `aws_key` is in the set (JSON keys naming a secret access key).
    aws: bool,
    /// A detector that can match digits only (`card`, or any custom one):
    /// numbers must be rendered and scanned.
    numbers: bool,
    /// Custom detectors are present (a number of any length may match).
    custom: bool,
}

impl DetectorSet {
    /// The set of `dets`, each once (built-ins first, in their order).
    pub(crate) fn new(dets: impl IntoIterator<Item = Detector>) -> DetectorSet {
        let mut builtins: Vec<Builtin> = vec![];
        let mut customs: Vec<Arc<Custom>> = vec![];
        for d in dets {
            match d {
                Detector::Builtin(b) if !builtins.contains(&b) => builtins.push(b),
                Detector::Builtin(_) => {}
                Detector::Custom(c) if !customs.iter().any(|x| Arc::ptr_eq(x, &c)) => customs.push(c),
                Detector::Custom(_) => {}
            }
        }
        builtins.sort();
        let aws = builtins.contains(&Builtin::AwsKey);
        let custom = !customs.is_empty();
        let numbers = custom || builtins.contains(&Builtin::Card);
        let dets: Vec<Detector> =
            builtins.into_iter().map(Detector::Builtin).chain(customs.into_iter().map(Detector::Custom)).collect();
        let markers = dets.iter().map(|d| marker(d.id())).collect();
        DetectorSet { dets, markers, aws, numbers, custom }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.dets.is_empty()
    }

    pub(crate) fn id(&self, det: usize) -> &str {
        self.dets[det].id()
    }

    /// The first detector (in set order) that finds something in `text`.
    pub(crate) fn first_match(&self, text: &str) -> Option<usize> {
        let mut buf = Vec::new();
        let t = Triggers::of(text);
        for (i, d) in self.dets.iter().enumerate() {
            d.find_with(text, &t, &mut buf);
            if buf.iter().any(|&(s, e)| s < e) {
                return Some(i);
            }
        }
        None
    }

    /// The detector that matches a JSON number, if one does.
    pub(crate) fn first_match_number(&self, n: &serde_json::Number) -> Option<usize> {
        if !self.number_may_match(n) {
            return None;
        }
        self.first_match(&n.to_string())
    }

    /// An aws_key finding for the value under a JSON key.
    pub(crate) fn aws_secret_under(&self, key: &str, value: &Value) -> Option<usize> {
        if !self.aws || !detect::names_aws_secret(key) {
            return None;
        }
        match value {
            Value::String(s) if detect::shaped_like_aws_secret(s) => {
                self.dets.iter().position(|d| matches!(d, Detector::Builtin(Builtin::AwsKey)))
            }
            _ => None,
        }
    }

    fn number_may_match(&self, n: &serde_json::Number) -> bool {
        if self.custom {
            return true;
        }
        if !self.numbers {
            return false;
        }
        // A card has at least 13 digits.
        match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => u >= 1_000_000_000_000,
            (None, Some(i)) => i <= -1_000_000_000_000,
            _ => true,
        }
    }

    /// Every span found, merged: overlapping spans become one, labelled by
    /// the detector of its longest part. Spans keep clear of escapes (a span
    /// never starts on the character a backslash escapes nor ends between a
    /// backslash and what it escapes), and cover whole existing markers.
    fn spans(&self, text: &str, raw: &mut Vec<(usize, usize)>, spans: &mut Vec<Span>) {
        spans.clear();
        let t = Triggers::of(text);
        for (det, d) in self.dets.iter().enumerate() {
            raw.clear();
            d.find_with(text, &t, raw);
            for &(start, end) in raw.iter() {
                if let Some((start, end)) = clear_of_escapes(text.as_bytes(), start, end) {
                    spans.push(Span { start, end, det });
                }
            }
        }
        if spans.is_empty() {
            return;
        }
        merge(spans);
        if text.contains(MARKER_PREFIX) {
            protect_markers(text, spans);
            // Grown spans may now overlap.
            merge(spans);
        }
    }

    /// One pass: `text` with every span replaced, or `None` when nothing was
    /// found. Adds to `counts`; returns the label of the first span too.
    fn pass(
        &self,
        text: &str,
        raw: &mut Vec<(usize, usize)>,
        spans: &mut Vec<Span>,
        counts: &mut Counts,
    ) -> Option<(String, usize)> {
        self.spans(text, raw, spans);
        let first = spans.first()?.det;
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for s in spans.iter() {
            out.push_str(&text[at..s.start]);
            out.push_str(&self.markers[s.det]);
            at = s.end;
            counts.bump(self.dets[s.det].id(), 1);
        }
        out.push_str(&text[at..]);
        Some((out, first))
    }

    /// `text` redacted to a fixed point: scanning the result again finds
    /// nothing, so redacting twice changes nothing more.
    pub(crate) fn redact<'a>(
        &self,
        text: &'a str,
        raw: &mut Vec<(usize, usize)>,
        spans: &mut Vec<Span>,
        counts: &mut Counts,
    ) -> Cow<'a, str> {
        let Some((mut out, mut label)) = self.pass(text, raw, spans, counts) else { return Cow::Borrowed(text) };
        for _ in 0..MAX_PASSES {
            match self.pass(&out, raw, spans, counts) {
                Some((next, l)) => {
                    out = next;
                    label = l;
                }
                None => return Cow::Owned(out),
            }
        }
        // A pattern that keeps finding something next to its own markers:
        // the whole string becomes one marker, which nothing matches.
        Cow::Owned(self.markers[label].clone())
    }
}

/// Moves a span off escapes: when the byte before `start` is an escaping
/// backslash, the escaped character (or `uXXXX`) is left out; when the span
/// ends on an escaping backslash, the escaped character is taken in. So a
/// marker never lands between `\` and what it escapes, in text that holds
/// JSON or JavaScript string syntax.
fn clear_of_escapes(b: &[u8], mut start: usize, mut end: usize) -> Option<(usize, usize)> {
    let escaping = |at: usize| {
        // The backslash run ending at `at` (exclusive) has odd length.
        let mut k = at;
        while k > 0 && b[k - 1] == b'\\' {
            k -= 1;
        }
        (at - k) % 2 == 1
    };
    if start > 0 && b[start - 1] == b'\\' && escaping(start) {
        start += escape_len(b, start);
    }
    if end > start && b[end - 1] == b'\\' && escaping(end) && end < b.len() {
        end += escape_len(b, end);
    }
    // Never split a UTF-8 character (escapes are ASCII; a custom span may
    // have started anywhere).
    while start < b.len() && (b[start] & 0xC0) == 0x80 {
        start += 1;
    }
    while end < b.len() && (b[end] & 0xC0) == 0x80 {
        end += 1;
    }
    (start < end).then_some((start, end.min(b.len())))
}

/// Length of the escaped part at `at` (after a backslash): `uXXXX` or one
/// character.
fn escape_len(b: &[u8], at: usize) -> usize {
    if b.get(at) == Some(&b'u') && b.len() >= at + 5 && b[at + 1..at + 5].iter().all(u8::is_ascii_hexdigit) {
        5
    } else {
        1
    }
}

/// Markers already in the text stay as they are: a span inside one is
/// dropped, a span that overlaps one grows to cover it whole.
fn protect_markers(text: &str, spans: &mut Vec<Span>) {
    let b = text.as_bytes();
    let mut markers: Vec<(usize, usize)> = vec![];
    for (i, _) in text.match_indices(MARKER_PREFIX) {
        let mut j = i + MARKER_PREFIX.len();
        while j < b.len() && detect::is_marker_name_byte(b[j]) {
            j += 1;
        }
        if j > i + MARKER_PREFIX.len() && b.get(j) == Some(&b']') {
            markers.push((i, j + 1));
        }
    }
    if markers.is_empty() {
        return;
    }
    // Both are sorted and disjoint: one sweep.
    let mut first = 0;
    spans.retain_mut(|s| {
        while first < markers.len() && markers[first].1 <= s.start {
            first += 1;
        }
        let mut k = first;
        while k < markers.len() && markers[k].0 < s.end {
            let (ms, me) = markers[k];
            if ms <= s.start && s.end <= me {
                return false;
            }
            s.start = s.start.min(ms);
            s.end = s.end.max(me);
            k += 1;
        }
        true
    });
}

/// Sorts and merges overlapping spans; each merged span keeps the label of
/// its longest part (the first detector on ties).
fn merge(spans: &mut Vec<Span>) {
    if spans.len() <= 1 {
        return;
    }
    spans.sort_unstable_by_key(|s| (s.start, std::cmp::Reverse(s.end), s.det));
    let mut w = 0;
    let mut best_len = spans[0].end - spans[0].start;
    for r in 1..spans.len() {
        let s = spans[r];
        if s.start < spans[w].end {
            let len = s.end - s.start;
            if len > best_len || (len == best_len && s.det < spans[w].det) {
                best_len = len;
                spans[w].det = s.det;
            }
            spans[w].end = spans[w].end.max(s.end);
        } else {
            w += 1;
            spans[w] = s;
            best_len = s.end - s.start;
        }
    }
    spans.truncate(w + 1);
}

/// Replaces what the configured detectors find with typed markers
/// (`[redacted:email]`) in text and in JSON trees. Built once from the
/// `[[redact]]` rules; cheap to clone and to share between threads.
///
/// - **Where**: a rule without `apis` applies to everything; one with
///   `apis` applies only to results of calls to those APIs / MCP servers.
///   Callers say which with the `target` argument: `Some("crm")` for what
///   a call to `crm` returned (its body, its error), `None` for what is not
///   one call's result (the execute's return value, console output).
/// - **JSON** ([`Redactor::redact_value`]): every string, every object key
///   (keys that redact to the same marker are told apart with `#2`, `#3`…),
///   and every number whose digits a detector matches (it becomes a
///   string); a string under a key that names an AWS secret access key
///   (`aws_secret_access_key`, `SecretAccessKey`) is an `aws_key` when it has
///   that key's shape. The tree stays valid JSON by construction.
/// - **Overlaps**: overlapping finds become one marker, named after the
///   longest.
/// - **Escapes**: a marker never splits a `\` escape, so strings that hold
///   JSON or JavaScript text stay parseable.
/// - **Idempotent**: existing markers are left as they are, and each string
///   is rescanned after replacing until nothing more is found, so redacting
///   a result twice changes nothing more. (A custom pattern that still
///   matches after 8 rescans turns the whole string into one marker.)
#[derive(Clone, Debug, Default)]
pub struct Redactor {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Rules without `apis`.
    everywhere: DetectorSet,
    /// For each API / server some rule names: the rules naming it and
    /// those without `apis`.
    targets: HashMap<String, DetectorSet>,
}

impl Redactor {
    /// A redactor for the `[[redact]]` rules. Every problem is returned at
    /// once, as `(key, message)` with keys like `redact[1].pattern`.
    pub fn new(rules: &[RedactRule]) -> Result<Redactor, Vec<Problem>> {
        let mut problems = vec![];
        let mut everywhere: Vec<Detector> = vec![];
        let mut scoped: Vec<(Vec<String>, Vec<Detector>)> = vec![];
        for (i, rule) in rules.iter().enumerate() {
            let key = format!("redact[{i}]");
            if rule.detectors.is_empty() && rule.pattern.is_none() {
                problems
                    .push((key.clone(), format!("give `detectors` (all, {}) or a `pattern`", detect::builtin_ids())));
            }
            if rule.name.is_some() && rule.pattern.is_none() {
                problems.push((format!("{key}.name"), "`name` names the marker of a custom `pattern`; add one".into()));
            }
            check_apis(&key, &rule.apis, &mut problems);
            let dets =
                compile_detectors(&key, &rule.detectors, rule.pattern.as_deref(), rule.name.as_deref(), &mut problems);
            match &rule.apis {
                None => everywhere.extend(dets),
                Some(apis) => scoped.push((apis.clone(), dets)),
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let mut per_target: HashMap<String, Vec<Detector>> = HashMap::new();
        for (apis, dets) in &scoped {
            for a in apis {
                per_target.entry(a.clone()).or_default().extend(dets.iter().cloned());
            }
        }
        let targets = per_target
            .into_iter()
            .map(|(t, dets)| (t, DetectorSet::new(everywhere.iter().cloned().chain(dets))))
            .collect();
        Ok(Redactor { inner: Arc::new(Inner { everywhere: DetectorSet::new(everywhere), targets }) })
    }

    /// A redactor that changes nothing.
    pub fn none() -> Redactor {
        Redactor::default()
    }

    /// True when no rule applies anywhere.
    pub fn is_empty(&self) -> bool {
        self.inner.everywhere.is_empty() && self.inner.targets.is_empty()
    }

    /// The ids of the detectors that apply to results of `target` (`None`:
    /// output that is not one call's result), in the order they are applied.
    pub fn detectors(&self, target: Option<&str>) -> Vec<String> {
        let set = self.set(target);
        (0..set.dets.len()).map(|i| set.id(i).to_string()).collect()
    }

    fn set(&self, target: Option<&str>) -> &DetectorSet {
        target.and_then(|t| self.inner.targets.get(t)).unwrap_or(&self.inner.everywhere)
    }

    /// `text` with every find replaced by its marker (borrowed when nothing
    /// was found), and how many markers each detector wrote. For plain text
    /// (console output, messages). Not for JSON text: a card written as a
    /// JSON number would become a bare marker; use [`Redactor::redact_value`]
    /// or [`Redactor::redact_json`], which keep the structure. (Text that
    /// merely holds JSON *strings* — a tool's text content — stays
    /// parseable: markers never split escapes.)
    pub fn redact_str<'a>(&self, text: &'a str, target: Option<&str>) -> (Cow<'a, str>, Counts) {
        let mut counts = Counts::default();
        let set = self.set(target);
        if set.is_empty() {
            return (Cow::Borrowed(text), counts);
        }
        let out = set.redact(text, &mut vec![], &mut vec![], &mut counts);
        (out, counts)
    }

    /// Redacts `text` in place; how many markers each detector wrote.
    pub fn redact_string(&self, text: &mut String, target: Option<&str>) -> Counts {
        let (out, counts) = self.redact_str(text, target);
        if let Cow::Owned(s) = out {
            *text = s;
        }
        counts
    }

    /// Redacts an error the code will see: its message and every field
    /// (`data` with an upstream's echoed body, …). Its `name` is left alone.
    pub fn redact_error(&self, error: &mut codemode_pipeline::HostError, target: Option<&str>) -> Counts {
        let mut counts = self.redact_string(&mut error.message, target);
        let mut fields = Value::Object(std::mem::take(&mut error.fields));
        counts.add(&self.redact_value(&mut fields, target));
        if let Value::Object(m) = fields {
            error.fields = m;
        }
        counts
    }

    /// JSON text in, JSON text out: parsed, redacted as a tree
    /// ([`Redactor::redact_value`]) and serialized again, so the result is
    /// always valid JSON (a text pass could put a marker where a number
    /// stood). `Err` when `text` is not JSON; use [`Redactor::redact_str`]
    /// then.
    pub fn redact_json(&self, text: &str, target: Option<&str>) -> Result<(String, Counts), serde_json::Error> {
        let mut v: Value = serde_json::from_str(text)?;
        let counts = self.redact_value(&mut v, target);
        Ok((serde_json::to_string(&v)?, counts))
    }

    /// Redacts a JSON tree in place: strings, object keys, and numbers whose
    /// digits match (they become strings). How many markers each detector
    /// wrote.
    pub fn redact_value(&self, value: &mut Value, target: Option<&str>) -> Counts {
        let mut counts = Counts::default();
        let set = self.set(target);
        if set.is_empty() {
            return counts;
        }
        let (mut raw, mut spans) = (vec![], vec![]);
        // An explicit stack: values built on the host need not respect
        // serde_json's parse depth limit.
        let mut stack: Vec<&mut Value> = vec![value];
        while let Some(v) = stack.pop() {
            match v {
                Value::String(s) => {
                    if let Cow::Owned(clean) = set.redact(s, &mut raw, &mut spans, &mut counts) {
                        *s = clean;
                    }
                }
                Value::Number(n) => {
                    if set.number_may_match(n) {
                        let text = n.to_string();
                        if let Cow::Owned(clean) = set.redact(&text, &mut raw, &mut spans, &mut counts) {
                            *v = Value::String(clean);
                        }
                    }
                }
                Value::Array(items) => stack.extend(items.iter_mut()),
                Value::Object(map) => {
                    redact_keys(set, map, &mut raw, &mut spans, &mut counts);
                    for (k, child) in map.iter_mut() {
                        if let Some(d) = set.aws_secret_under(k, child) {
                            counts.bump(set.id(d), 1);
                            *child = Value::String(set.markers[d].clone());
                        } else {
                            stack.push(child);
                        }
                    }
                }
                Value::Null | Value::Bool(_) => {}
            }
        }
        counts
    }
}

/// Redacts the keys of one object, keeping their order; keys that come out
/// equal to another key get `#2`, `#3`… so no entry is lost.
fn redact_keys(
    set: &DetectorSet,
    map: &mut Map<String, Value>,
    raw: &mut Vec<(usize, usize)>,
    spans: &mut Vec<Span>,
    counts: &mut Counts,
) {
    let mut changed: Option<Vec<(usize, String)>> = None;
    for (i, k) in map.keys().enumerate() {
        if let Cow::Owned(clean) = set.redact(k, raw, spans, counts) {
            changed.get_or_insert_with(Vec::new).push((i, clean));
        }
    }
    let Some(changed) = changed else { return };
    let old = std::mem::take(map);
    let mut renamed = changed.into_iter().peekable();
    // The next suffix to try per key, so many equal keys stay linear.
    let mut next: HashMap<String, u64> = HashMap::new();
    for (i, (k, v)) in old.into_iter().enumerate() {
        let key = match renamed.peek() {
            Some((j, _)) if *j == i => renamed.next().expect("peeked").1,
            _ => k,
        };
        let key = if map.contains_key(&key) {
            let n = next.entry(key.clone()).or_insert(2);
            loop {
                let candidate = format!("{key}#{n}");
                *n += 1;
                if !map.contains_key(&candidate) {
                    break candidate;
                }
            }
        } else {
            key
        };
        map.insert(key, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn all() -> Redactor {
        Redactor::new(&[RedactRule { detectors: vec!["all".into()], ..Default::default() }]).unwrap()
    }

    const CARD: &str = "4111 1111 1111 1111";
    const JWT_SAMPLE: &str = concat!(
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9",
        ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ",
        ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
    );
    const PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\nVJTUt9Us8cKjMzEfYyjiWA4R4/M2bS1+fWIcPm15A8+raZ4d\n-----END PRIVATE KEY-----\n";

    fn twice_is_once(r: &Redactor, v: &Value) {
        let mut again = v.clone();
        let counts = r.redact_value(&mut again, None);
        assert!(counts.is_empty(), "second pass redacted {counts:?} in {v}");
        assert_eq!(&again, v);
    }

    #[test]
    fn text_gets_typed_markers_and_counts() {
        let r = all();
        let text = format!("Jane <jane@example.com> paid with {CARD}; token: Bearer {JWT_SAMPLE}");
        let (out, counts) = r.redact_str(&text, None);
        assert_eq!(out, "Jane <[redacted:email]> paid with [redacted:card]; token: Bearer [redacted:jwt]");
        assert_eq!((counts.get("email"), counts.get("card"), counts.get("jwt"), counts.total()), (1, 1, 1, 3));
        assert_eq!(counts.to_json(), json!({"card": 1, "email": 1, "jwt": 1}));
        // Nothing found: borrowed, no counts.
        let (out, counts) = r.redact_str("nothing to see", None);
        assert!(matches!(out, Cow::Borrowed(_)) && counts.is_empty());
        // Idempotent.
        let (again, counts) = r.redact_str(&text, None);
        let (third, more) = r.redact_str(&again, None);
        assert_eq!((third.as_ref(), more.is_empty()), (again.as_ref(), true));
        assert_eq!(counts.total(), 3);
    }

    #[test]
    fn json_trees_keys_numbers_and_nesting() {
        let r = all();
        let mut v = json!({
            "customers": [
                {"id": 17, "name": "Jane Doe", "email": "jane@example.com", "card": 4111111111111111u64,
                 "iban": "DE89 3704 0044 0532 0130 00", "balance": 12.5, "active": true, "note": null},
                {"id": 18, "name": "Max", "contact": {"emails": ["max@example.org", "m.x@example.net"]},
                 "orderTotal": 1234567890123u64, "negative": -4111111111111111i64},
            ],
            "jane@example.com": {"visits": 3},
            "by_card": {"5555555555554444": "gold"},
        });
        let counts = r.redact_value(&mut v, None);
        assert_eq!(
            v,
            json!({
                "customers": [
                    {"id": 17, "name": "Jane Doe", "email": "[redacted:email]", "card": "[redacted:card]",
                     "iban": "[redacted:iban]", "balance": 12.5, "active": true, "note": null},
                    {"id": 18, "name": "Max", "contact": {"emails": ["[redacted:email]", "[redacted:email]"]},
                     "orderTotal": 1234567890123u64, "negative": "-[redacted:card]"},
                ],
                "[redacted:email]": {"visits": 3},
                "by_card": {"[redacted:card]": "gold"},
            })
        );
        assert_eq!(counts.to_json(), json!({"card": 3, "email": 4, "iban": 1}));
        // Still JSON, and redacting again changes nothing.
        let text = serde_json::to_string(&v).unwrap();
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), v);
        twice_is_once(&r, &v);
    }

    #[test]
    fn keys_that_collide_are_all_kept_in_order() {
        let r = all();
        let mut v = json!({"a@example.com": 1, "b@example.com": 2, "z": 0, "[redacted:email]#2": 9});
        r.redact_value(&mut v, None);
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["[redacted:email]", "[redacted:email]#2", "z", "[redacted:email]#2#2"]);
        assert_eq!(v["[redacted:email]#2"], 2);
        twice_is_once(&r, &v);
    }

    #[test]
    fn a_service_account_key_in_json() {
        let r = all();
        let mut v = json!({
            "type": "service_account",
            "private_key_id": "0123456789abcdef0123456789abcdef01234567",
            "private_key": PEM,
            "client_email": "svc@project.iam.gserviceaccount.com",
        });
        let counts = r.redact_value(&mut v, None);
        assert_eq!(v["private_key"], "[redacted:pem_private_key]\n");
        assert_eq!(v["client_email"], "[redacted:email]");
        assert_eq!(v["private_key_id"], "0123456789abcdef0123456789abcdef01234567");
        assert_eq!(counts.total(), 2);
        twice_is_once(&r, &v);
        // The same document as text (a tool's text content): the PEM block
        // spans `\n` escapes and the result still parses.
        let text = serde_json::to_string(&json!({"private_key": PEM, "n": 1})).unwrap();
        let (out, _) = r.redact_str(&text, None);
        assert_eq!(
            serde_json::from_str::<Value>(&out).unwrap(),
            json!({"private_key": "[redacted:pem_private_key]\n", "n": 1})
        );
    }

    #[test]
    fn aws_secret_keys_by_their_json_key() {
        let r = all();
        let secret = concat!("wJalrXUtnFEMI", "/K7MDENG/bPxRfiCYEXAMPLEKEY");
        let id = concat!("AKIA", "IOSFODNN7EXAMPLE");
        let mut v = json!({"Credentials": {"AccessKeyId": id, "SecretAccessKey": secret, "Expiration": "2030-01-01"},
                           "other": secret});
        let counts = r.redact_value(&mut v, None);
        assert_eq!(
            v["Credentials"],
            json!({"AccessKeyId": "[redacted:aws_key]", "SecretAccessKey": "[redacted:aws_key]", "Expiration": "2030-01-01"})
        );
        // Without the context, 40 base64 characters are not a key.
        assert_eq!(v["other"], secret);
        assert_eq!(counts.get("aws_key"), 2);
        twice_is_once(&r, &v);
    }

    #[test]
    fn json_held_in_strings_stays_parseable() {
        let r = all();
        // A newline escape right before an address, and a \u escape.
        let inner = r#"{"note":"line\njane@example.com","u":"\u0041bc@example.com"}"#;
        let (out, counts) = r.redact_str(inner, None);
        assert_eq!(counts.get("email"), 2);
        let parsed: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(parsed, json!({"note": "line\n[redacted:email]", "u": "A[redacted:email]"}));
    }

    #[test]
    fn scoped_rules_and_custom_patterns() {
        let rules: Vec<RedactRule> = toml::from_str::<toml::Table>(
            r#"
            [[redact]]
            detectors = ["email"]

            [[redact]]
            pattern = "EMP-[0-9]{6}"
            name = "employee_id"
            apis = ["hr"]

            [[redact]]
            pattern = "pin=(?P<value>[0-9]{4})"
            name = "pin"
            apis = ["hr", "bank"]
            "#,
        )
        .unwrap()["redact"]
            .clone()
            .try_into()
            .unwrap();
        let r = Redactor::new(&rules).unwrap();
        let text = "EMP-123456 jane@example.com pin=1234";
        assert_eq!(r.redact_str(text, Some("hr")).0, "[redacted:employee_id] [redacted:email] pin=[redacted:pin]");
        assert_eq!(r.redact_str(text, Some("bank")).0, "EMP-123456 [redacted:email] pin=[redacted:pin]");
        assert_eq!(r.redact_str(text, Some("crm")).0, "EMP-123456 [redacted:email] pin=1234");
        assert_eq!(r.redact_str(text, None).0, "EMP-123456 [redacted:email] pin=1234");
        assert_eq!(r.detectors(Some("hr")), ["email", "employee_id", "pin"]);
        assert_eq!(r.detectors(None), ["email"]);
        // Custom patterns also see numbers.
        let mut v = json!({"pin": "pin=9876", "emp": "EMP-000001"});
        let counts = r.redact_value(&mut v, Some("hr"));
        assert_eq!(v, json!({"pin": "pin=[redacted:pin]", "emp": "[redacted:employee_id]"}));
        assert_eq!(counts.to_json(), json!({"employee_id": 1, "pin": 1}));
    }

    #[test]
    fn markers_are_never_redacted_again() {
        // A custom pattern that would match inside markers and next to them.
        let rules = [
            RedactRule { detectors: vec!["email".into()], ..Default::default() },
            RedactRule { pattern: Some(r"redacted|\]-x+".into()), name: Some("word".into()), ..Default::default() },
        ];
        let r = Redactor::new(&rules).unwrap();
        // The e-mail's marker, once written, plus `-xx` matches: the new find
        // takes the whole marker in rather than cutting it.
        let (out, _) = r.redact_str("jane@example.com-xx and [redacted:card] redacted", None);
        assert_eq!(out, "[redacted:word] and [redacted:card] [redacted:word]");
        assert_eq!(r.redact_str(&out, None).0, out);
    }

    #[test]
    fn a_pattern_that_feeds_on_its_markers_still_ends_idempotent() {
        // `\b[a-z]` matches one more letter after each new marker.
        let rules =
            [RedactRule { pattern: Some(r"\b[a-z]".into()), name: Some("letter".into()), ..Default::default() }];
        let r = Redactor::new(&rules).unwrap();
        let (out, _) = r.redact_str("abcdefghijklmnopqrstuvwxyz", None);
        assert_eq!(out, "[redacted:letter]");
        assert_eq!(r.redact_str(&out, None).0, out);
        let (short, _) = r.redact_str("ab cd", None);
        assert_eq!(r.redact_str(&short, None).0, short);
    }

    #[test]
    fn overlapping_finds_become_one_marker() {
        let r = all();
        // A card number as an address's local part: one e-mail.
        let (out, counts) = r.redact_str("4111111111111111@example.com", None);
        assert_eq!((out.as_ref(), counts.total()), ("[redacted:email]", 1));
        // A JWT and a custom pattern inside it: one marker, the longer.
        let rules = [
            RedactRule { detectors: vec!["jwt".into()], ..Default::default() },
            RedactRule { pattern: Some("IkpXVCJ9".into()), name: Some("part".into()), ..Default::default() },
        ];
        let text = format!("t={JWT_SAMPLE}.");
        let (out, _) = Redactor::new(&rules).unwrap().redact_str(&text, None);
        assert_eq!(out, "t=[redacted:jwt].");
    }

    #[test]
    fn non_ascii_text_is_kept_intact() {
        let r = all();
        let (out, _) = r.redact_str("Grüße an jürgen@example.de — Karte 4111 1111 1111 1111 ✓", None);
        // (An ASCII-only local part: the address starts after the `ü`.)
        assert_eq!(out, "Grüße an jü[redacted:email] — Karte [redacted:card] ✓");
        let rules = [RedactRule { pattern: Some("ü.".into()), name: Some("u".into()), ..Default::default() }];
        let (out, _) = Redactor::new(&rules).unwrap().redact_str("Grüße", None);
        assert_eq!(out, "Gr[redacted:u]e");
    }

    #[test]
    fn deep_trees_do_not_overflow() {
        let r = all();
        let mut v = json!("jane@example.com");
        for _ in 0..100_000 {
            v = Value::Array(vec![v]);
        }
        assert_eq!(r.redact_value(&mut v, None).get("email"), 1);
        // Dropping a deep tree recursively would overflow; unwind it.
        let mut stack = vec![v];
        while let Some(x) = stack.pop() {
            if let Value::Array(items) = x {
                stack.extend(items);
            }
        }
    }

    #[test]
    fn problems_are_reported_at_their_keys() {
        let rules = [
            RedactRule { detectors: vec!["email".into(), "ssn".into()], ..Default::default() },
            RedactRule { pattern: Some("(".into()), name: Some("x".into()), ..Default::default() },
            RedactRule::default(),
            RedactRule {
                pattern: Some("a".into()),
                name: Some("bad name!".into()),
                apis: Some(vec![]),
                ..Default::default()
            },
            RedactRule { detectors: vec!["card".into()], name: Some("n".into()), ..Default::default() },
        ];
        let problems = Redactor::new(&rules).unwrap_err();
        let keys: Vec<&str> = problems.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "redact[0].detectors[1]",
                "redact[1].pattern",
                "redact[2]",
                "redact[3].apis",
                "redact[3].name",
                "redact[4].name"
            ]
        );
        assert!(
            problems[0].1.contains("`ssn` is not a detector") && problems[0].1.contains("email, card, iban"),
            "{}",
            problems[0].1
        );
        assert!(problems[1].1.starts_with("not a valid regex"), "{}", problems[1].1);
        // Unknown fields are refused by the config types.
        let e = toml::from_str::<RedactRule>("detectors = [\"email\"]\nregex = \"x\"\n").unwrap_err();
        assert!(e.to_string().contains("unknown field `regex`"), "{e}");
    }

    /// Random texts built from pieces of real finds, near-misses and noise.
    fn random_texts(n: usize) -> Vec<String> {
        const PIECES: &[&str] = &[
            "jane@example.com",
            "%40",
            "@",
            "example.org",
            "4111",
            " ",
            "-",
            "1111",
            "4111111111111111",
            "0.",
            "5555555555554444",
            "DE89",
            "3704 0044 0532 0130 00",
            "GB82WEST12345698765432",
            "AKIA",
            "IOSFODNN7EXAMPLE",
            "aws_secret_access_key=",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "AIza",
            "SyA-1234567890abcdefghijklmnopqrstu",
            "ghp_",
            "aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789",
            "xoxb-",
            "123456789012-abc",
            "sk_live_",
            "51H8xYzAbCdEfGhIjK",
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9",
            ".",
            "eyJzdWIiOiIxIn0",
            "-----BEGIN PRIVATE KEY-----",
            "\\n",
            "\n",
            "MIIEvQIBADANBgkq",
            "-----END PRIVATE KEY-----",
            "\\\"",
            "\\\\",
            "\\u0041",
            "\"",
            "[redacted:email]",
            "[redacted:",
            "]",
            "\\",
            "ü",
            "✓",
            "x",
            "Z9",
            "_",
            "--",
        ];
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        (0..n)
            .map(|_| {
                let k = 1 + next() % 12;
                (0..k).map(|_| PIECES[(next() % PIECES.len() as u64) as usize]).collect()
            })
            .collect()
    }

    #[test]
    fn triggers_never_rule_out_a_find() {
        for text in random_texts(30_000) {
            let t = Triggers::of(&text);
            for b in Builtin::ALL {
                let mut out = vec![];
                b.find(&text, &mut out);
                assert!(out.is_empty() || b.may_match(&t), "{b} found {out:?} in {text:?} but was ruled out");
            }
        }
    }

    #[test]
    fn random_texts_redact_idempotently_and_json_strings_stay_json() {
        let r = all();
        for text in random_texts(30_000) {
            let (once, _) = r.redact_str(&text, None);
            let (twice, more) = r.redact_str(&once, None);
            assert!(more.is_empty() && twice == once, "{text:?} → {once:?} → {twice:?}");
            // The text as a JSON string literal, redacted as text, is still a
            // JSON string.
            let literal = serde_json::to_string(&text).unwrap();
            let (out, _) = r.redact_str(&literal, None);
            assert!(serde_json::from_str::<String>(&out).is_ok(), "{literal} → {out}");
            // And as a tree.
            let mut v = json!({ text.clone(): [text.clone()] });
            r.redact_value(&mut v, None);
            twice_is_once(&r, &v);
        }
    }

    #[test]
    fn many_markers_and_many_equal_keys_stay_fast() {
        let r = all();
        // 20 000 markers next to 20 000 new addresses in one string.
        let text = "[redacted:email] a@example.com ".repeat(20_000);
        let t = std::time::Instant::now();
        let (out, counts) = r.redact_str(&text, None);
        assert_eq!(counts.get("email"), 20_000);
        assert_eq!(out, "[redacted:email] [redacted:email] ".repeat(20_000));
        // 20 000 keys that all become the same marker.
        let mut map = Map::new();
        for i in 0..20_000 {
            map.insert(format!("u{i}@example.com"), json!(i));
        }
        let mut v = Value::Object(map);
        r.redact_value(&mut v, None);
        assert_eq!(v.as_object().unwrap().len(), 20_000);
        assert_eq!(v["[redacted:email]#20000"], 19_999);
        assert!(t.elapsed() < std::time::Duration::from_secs(2), "{:?}", t.elapsed());
    }

    #[test]
    fn errors_are_redacted_in_message_and_fields() {
        let r = all();
        let mut e = codemode_pipeline::HostError::new("UpstreamError", "400 for jane@example.com")
            .with("data", json!({"echo": {"card": "4111111111111111"}}))
            .with("status", 400);
        let counts = r.redact_error(&mut e, Some("crm"));
        assert_eq!(e.message, "400 for [redacted:email]");
        assert_eq!(e.fields["data"], json!({"echo": {"card": "[redacted:card]"}}));
        assert_eq!((e.name.as_str(), &e.fields["status"]), ("UpstreamError", &json!(400)));
        assert_eq!(counts.total(), 2);
    }
}
