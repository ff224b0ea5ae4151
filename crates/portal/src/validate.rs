//! Checks call arguments against a tool's input schema before they leave,
//! so the model gets an error that names the field and what was expected
//! instead of whatever the upstream says (often a bare stack trace).
//!
//! A practical subset of JSON Schema: `type` (and `nullable`), `enum`,
//! `const`, `required`, `properties`, `additionalProperties`, `items`,
//! `prefixItems` and tuple `items`, `minItems` / `maxItems`,
//! `minLength` / `maxLength`, `minimum` / `maximum` (and the exclusive
//! forms), `allOf`, `anyOf` / `oneOf` (as "any"), and local `$ref`s.
//! Formats and patterns are left to the upstream.

use serde_json::{Map, Value};

use crate::names::is_identifier;

/// Most problems reported for one call.
const MAX_PROBLEMS: usize = 8;
/// Deepest `$ref` / nesting followed.
const MAX_DEPTH: usize = 64;

/// One thing wrong with the arguments.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Problem {
    /// Where, as JavaScript: `args.entities[0].name`.
    pub path: String,
    /// What was expected and what was found.
    pub message: String,
}

/// The problems of `value` against `schema` (empty when it is valid).
pub(crate) fn validate(schema: &Value, value: &Value) -> Vec<Problem> {
    let mut v = Validator { root: schema, problems: vec![] };
    v.check(schema, value, "args", 0);
    v.problems
}

struct Validator<'a> {
    root: &'a Value,
    problems: Vec<Problem>,
}

impl<'a> Validator<'a> {
    fn report(&mut self, path: &str, message: String) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(Problem { path: path.to_string(), message });
        }
    }

    fn check(&mut self, schema: &'a Value, value: &Value, path: &str, depth: usize) {
        if depth > MAX_DEPTH || self.problems.len() >= MAX_PROBLEMS {
            return;
        }
        let m = match schema {
            Value::Bool(false) => return self.report(path, "no value is allowed here".into()),
            Value::Object(m) => m,
            _ => return,
        };
        if let Some(Value::String(r)) = m.get("$ref") {
            if let Some(target) =
                r.strip_prefix('#').and_then(|p| if p.is_empty() { Some(self.root) } else { self.root.pointer(p) })
            {
                self.check(target, value, path, depth + 1);
            }
            // Siblings of $ref are checked too (2019-09+ semantics; harmless before).
        }
        if value.is_null() && m.get("nullable").and_then(Value::as_bool) == Some(true) {
            return;
        }
        if let Some(t) = m.get("type") {
            let allowed: Vec<&str> = match t {
                Value::String(s) => vec![s.as_str()],
                Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                _ => vec![],
            };
            if !allowed.is_empty() && !allowed.iter().any(|t| type_matches(t, value)) {
                let mut expected = allowed.join(" or ");
                if let Some(d) = m.get("description").and_then(Value::as_str) {
                    expected = format!("{expected} ({})", short(d, 80));
                }
                return self.report(path, format!("expected {expected}, got {}", describe(value)));
            }
        }
        if let Some(Value::Array(options)) = m.get("enum") {
            if !options.iter().any(|o| o == value) {
                let list: Vec<String> = options.iter().take(12).map(|o| o.to_string()).collect();
                let more = if options.len() > 12 { ", …" } else { "" };
                return self
                    .report(path, format!("expected one of {}{more}, got {}", list.join(", "), describe(value)));
            }
        }
        if let Some(c) = m.get("const") {
            if c != value {
                return self.report(path, format!("expected {c}, got {}", describe(value)));
            }
        }
        match value {
            Value::Object(obj) => self.object(m, obj, path, depth),
            Value::Array(items) => self.array(m, items, path, depth),
            Value::String(s) => {
                let n = s.chars().count() as u64;
                if let Some(min) = m.get("minLength").and_then(Value::as_u64).filter(|&min| n < min) {
                    self.report(path, format!("expected at least {min} characters, got {n}"));
                }
                if let Some(max) = m.get("maxLength").and_then(Value::as_u64).filter(|&max| n > max) {
                    self.report(path, format!("expected at most {max} characters, got {n}"));
                }
            }
            Value::Number(n) => self.number(m, n.as_f64().unwrap_or(0.0), path),
            _ => {}
        }
        if let Some(Value::Array(all)) = m.get("allOf") {
            for sub in all {
                self.check(sub, value, path, depth + 1);
            }
        }
        for key in ["anyOf", "oneOf"] {
            if let Some(Value::Array(any)) = m.get(key) {
                self.any_of(any, value, path, depth);
            }
        }
    }

    fn any_of(&mut self, branches: &'a [Value], value: &Value, path: &str, depth: usize) {
        if branches.is_empty() {
            return;
        }
        let mut results: Vec<Vec<Problem>> = vec![];
        for b in branches {
            let mut sub = Validator { root: self.root, problems: vec![] };
            sub.check(b, value, path, depth + 1);
            if sub.problems.is_empty() {
                return;
            }
            results.push(sub.problems);
        }
        // Report the branch whose type fits (if exactly one does), else a summary.
        let fitting: Vec<usize> = (0..branches.len())
            .filter(|&i| {
                !results[i]
                    .iter()
                    .any(|p| p.path == path && p.message.starts_with("expected") && p.message.contains(", got "))
            })
            .collect();
        if fitting.len() == 1 {
            for p in results.swap_remove(fitting[0]) {
                self.report(&p.path, p.message);
            }
            return;
        }
        let kinds: Vec<String> = branches.iter().map(brief).collect();
        self.report(path, format!("expected one of: {}; got {}", kinds.join(" | "), describe(value)));
    }

    fn object(&mut self, m: &'a Map<String, Value>, obj: &Map<String, Value>, path: &str, depth: usize) {
        let props = m.get("properties").and_then(Value::as_object);
        if let Some(Value::Array(required)) = m.get("required") {
            for r in required.iter().filter_map(Value::as_str) {
                if !obj.contains_key(r) {
                    let what = props.and_then(|p| p.get(r)).map(|s| format!(" ({})", brief(s))).unwrap_or_default();
                    self.report(&child(path, r), format!("missing required field{what}"));
                }
            }
        }
        for (k, v) in obj {
            let sub = child(path, k);
            if let Some(s) = props.and_then(|p| p.get(k)) {
                self.check(s, v, &sub, depth + 1);
                continue;
            }
            if let Some(Value::Object(pp)) = m.get("patternProperties") {
                if !pp.is_empty() {
                    continue; // patterns are not evaluated: accept
                }
            }
            match m.get("additionalProperties") {
                Some(Value::Bool(false)) => {
                    let known: Vec<&str> = props.map(|p| p.keys().map(String::as_str).collect()).unwrap_or_default();
                    let hint = if known.is_empty() {
                        "this object takes no fields".to_string()
                    } else {
                        format!("expected one of: {}", known.join(", "))
                    };
                    self.report(&sub, format!("unknown field; {hint}"));
                }
                Some(s @ Value::Object(_)) => self.check(s, v, &sub, depth + 1),
                _ => {}
            }
        }
    }

    fn array(&mut self, m: &'a Map<String, Value>, items: &[Value], path: &str, depth: usize) {
        let n = items.len() as u64;
        if let Some(min) = m.get("minItems").and_then(Value::as_u64).filter(|&min| n < min) {
            self.report(path, format!("expected at least {min} items, got {n}"));
        }
        if let Some(max) = m.get("maxItems").and_then(Value::as_u64).filter(|&max| n > max) {
            self.report(path, format!("expected at most {max} items, got {n}"));
        }
        let (tuple, rest) = match (m.get("prefixItems"), m.get("items")) {
            (Some(Value::Array(p)), items) => (Some(p), items),
            (_, Some(Value::Array(p))) => (Some(p), m.get("additionalItems")),
            (_, items) => (None, items),
        };
        for (i, item) in items.iter().enumerate() {
            let sub = format!("{path}[{i}]");
            match tuple.and_then(|t| t.get(i)) {
                Some(s) => self.check(s, item, &sub, depth + 1),
                None => {
                    if let Some(r) = rest {
                        if tuple.is_some() && *r == Value::Bool(false) {
                            self.report(&sub, format!("expected at most {} items", tuple.map_or(0, Vec::len)));
                            break;
                        }
                        self.check(r, item, &sub, depth + 1);
                    }
                }
            }
            if self.problems.len() >= MAX_PROBLEMS {
                break;
            }
        }
    }

    fn number(&mut self, m: &Map<String, Value>, n: f64, path: &str) {
        let num = |k: &str| m.get(k).and_then(Value::as_f64);
        let flag = |k: &str| m.get(k).and_then(Value::as_bool) == Some(true);
        if let Some(min) = num("minimum") {
            if flag("exclusiveMinimum") && n <= min {
                self.report(path, format!("expected a number > {min}, got {n}"));
            } else if n < min {
                self.report(path, format!("expected a number >= {min}, got {n}"));
            }
        }
        if let Some(max) = num("maximum") {
            if flag("exclusiveMaximum") && n >= max {
                self.report(path, format!("expected a number < {max}, got {n}"));
            } else if n > max {
                self.report(path, format!("expected a number <= {max}, got {n}"));
            }
        }
        if let Some(min) = num("exclusiveMinimum").filter(|&min| n <= min) {
            self.report(path, format!("expected a number > {min}, got {n}"));
        }
        if let Some(max) = num("exclusiveMaximum").filter(|&max| n >= max) {
            self.report(path, format!("expected a number < {max}, got {n}"));
        }
    }
}

fn type_matches(t: &str, v: &Value) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        "number" => v.is_number(),
        "integer" => v.as_f64().is_some_and(|f| f.fract() == 0.0),
        _ => true,
    }
}

/// `args.a`, `args["my-key"]`.
fn child(path: &str, key: &str) -> String {
    if is_identifier(key) {
        format!("{path}.{key}")
    } else {
        format!("{path}[{}]", serde_json::to_string(key).unwrap_or_default())
    }
}

/// A value as the error message shows it: its kind, and the value when short.
fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => format!("string {}", serde_json::to_string(&short(s, 40)).unwrap_or_default()),
        Value::Array(a) => format!("an array of {} items", a.len()),
        Value::Object(_) => "an object".into(),
    }
}

/// A schema in a few words: `string`, `"a" | "b"`, `object`, plus its
/// description when it has one.
fn brief(s: &Value) -> String {
    let Some(m) = s.as_object() else { return "any".into() };
    let kind = if let Some(Value::Array(e)) = m.get("enum") {
        e.iter().take(6).map(Value::to_string).collect::<Vec<_>>().join(" | ")
    } else if let Some(c) = m.get("const") {
        c.to_string()
    } else {
        match m.get("type") {
            Some(Value::String(t)) => t.clone(),
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" | "),
            _ if m.contains_key("properties") => "object".into(),
            _ if m.contains_key("$ref") => {
                m["$ref"].as_str().unwrap_or("").rsplit('/').next().unwrap_or("").to_string()
            }
            _ => "any".into(),
        }
    };
    match m.get("description").and_then(Value::as_str) {
        Some(d) if !d.is_empty() => format!("{kind}: {}", short(d, 60)),
        _ => kind,
    }
}

fn short(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(max).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn msgs(schema: Value, v: Value) -> Vec<String> {
        validate(&schema, &v).into_iter().map(|p| format!("{}: {}", p.path, p.message)).collect()
    }

    #[test]
    fn names_the_field_and_what_was_expected() {
        let schema = json!({"type": "object", "properties": {
            "a": {"type": "number", "description": "First number"},
            "b": {"type": "number", "description": "Second number"}}, "required": ["a", "b"]});
        assert_eq!(
            msgs(schema.clone(), json!({"a": "1"})),
            vec![
                "args.b: missing required field (number: Second number)".to_string(),
                "args.a: expected number (First number), got string \"1\"".to_string()
            ]
        );
        assert!(msgs(schema, json!({"a": 1, "b": 2.5})).is_empty());
    }

    #[test]
    fn nested_arrays_enums_and_unknown_fields() {
        let schema = json!({"type": "object", "additionalProperties": false, "properties": {
            "entities": {"type": "array", "items": {"type": "object", "properties": {
                "name": {"type": "string"}, "kind": {"enum": ["a", "b"]}}, "required": ["name"]}}}});
        assert_eq!(
            msgs(schema, json!({"entities": [{"name": "x", "kind": "a"}, {"kind": "c"}], "extra": 1})),
            vec![
                "args.entities[1].name: missing required field (string)".to_string(),
                "args.entities[1].kind: expected one of \"a\", \"b\", got string \"c\"".to_string(),
                "args.extra: unknown field; expected one of: entities".to_string(),
            ]
        );
    }

    #[test]
    fn integers_bounds_nullable_and_refs() {
        let schema = json!({"type": "object", "properties": {
            "n": {"type": "integer", "minimum": 1, "maximum": 10},
            "s": {"type": "string", "nullable": true, "maxLength": 3},
            "t": {"$ref": "#/$defs/T"},
            "my-key": {"type": "boolean"}
        }, "$defs": {"T": {"type": "array", "prefixItems": [{"type": "number"}, {"type": "string"}], "items": false}}});
        assert_eq!(msgs(schema.clone(), json!({"n": 1.5})), vec!["args.n: expected integer, got number 1.5"]);
        assert_eq!(msgs(schema.clone(), json!({"n": 11})), vec!["args.n: expected a number <= 10, got 11"]);
        assert!(msgs(schema.clone(), json!({"n": 3, "s": null})).is_empty());
        assert_eq!(msgs(schema.clone(), json!({"s": "abcd"})), vec!["args.s: expected at most 3 characters, got 4"]);
        assert_eq!(msgs(schema.clone(), json!({"t": [1, 2]})), vec!["args.t[1]: expected string, got number 2"]);
        assert_eq!(msgs(schema.clone(), json!({"t": [1, "a", 3]})), vec!["args.t[2]: expected at most 2 items"]);
        assert_eq!(msgs(schema, json!({"my-key": 1})), vec!["args[\"my-key\"]: expected boolean, got number 1"]);
    }

    #[test]
    fn any_of_reports_the_fitting_branch_or_a_summary() {
        let schema = json!({"anyOf": [
            {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
            {"type": "string"}]});
        assert_eq!(msgs(schema.clone(), json!({"a": 1})), vec!["args.a: expected string, got number 1"]);
        assert_eq!(msgs(schema.clone(), json!(3)), vec!["args: expected one of: object | string; got number 3"]);
        assert!(msgs(schema, json!("x")).is_empty());
        // allOf of an object and constraints
        let schema =
            json!({"allOf": [{"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]}]});
        assert_eq!(msgs(schema, json!({})), vec!["args.id: missing required field (string)"]);
    }
}
