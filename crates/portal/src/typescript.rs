//! JSON Schema → TypeScript declarations, for models that read types better
//! than schemas.
//!
//! Covers what MCP servers publish: objects (JSDoc from `description`, with
//! `default`, `format` and bounds), optional vs required properties,
//! `additionalProperties` / `patternProperties` (`Record<string, T>`, or an
//! intersection with the declared properties), arrays (`T[]` for simple
//! element types, `Array<A | B>` otherwise, so an array of a union never
//! reads as `A | B[]`), tuples (`prefixItems`, or an `items` array with
//! `additionalItems`), `enum` and `const` literals, `type` arrays and
//! OpenAPI's `nullable`, `anyOf` / `oneOf` (unions) and `allOf`
//! (intersections), and local `$ref`s (`#`, `#/$defs/…`, `#/definitions/…`,
//! any JSON pointer) which become named types, so recursive schemas work.
//! Anything else, or a non-local `$ref`, is `unknown`.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use crate::names::{is_identifier, pascal_case};

/// Deepest nesting rendered inline; deeper parts are `unknown`.
const MAX_DEPTH: usize = 24;

/// `type <type_name> = …;` for `schema`, followed by one named type per local
/// `$ref` it reaches (`<type_name>_<Def>`), each with JSDoc taken from the
/// schema's descriptions.
///
/// ```
/// let schema = serde_json::json!({"type": "object", "properties": {
///     "tags": {"type": "array", "items": {"type": ["string", "null"]}}}});
/// let ts = codemode_portal::typescript::declaration("Input", &schema);
/// assert!(ts.contains("tags?: Array<string | null>;"), "{ts}");
/// ```
pub fn declaration(type_name: &str, schema: &Value) -> String {
    let mut g = Gen { base: type_name.to_string(), names: HashMap::new(), used: HashSet::new(), queue: vec![] };
    g.used.insert(type_name.to_string());
    g.names.insert("#".to_string(), type_name.to_string());
    let mut out = String::new();
    out.push_str(&jsdoc(schema_doc(schema, true).as_deref(), ""));
    let body = g.ty(schema, 0, "");
    out.push_str(&format!("type {type_name} = {body};\n"));
    let mut done = HashSet::new();
    done.insert("#".to_string());
    while let Some((pointer, name)) = g.queue.pop() {
        if !done.insert(pointer.clone()) {
            continue;
        }
        match resolve_pointer(schema, &pointer) {
            Some(target) => {
                out.push_str(&jsdoc(schema_doc(target, true).as_deref(), ""));
                let body = g.ty(target, 0, "");
                out.push_str(&format!("type {name} = {body};\n"));
            }
            None => out.push_str(&format!("/** `$ref` {pointer} does not resolve */\ntype {name} = unknown;\n")),
        }
    }
    out
}

/// Whether a tool taking `schema` may be called without arguments: it is not
/// an object schema with required properties.
pub(crate) fn args_optional(schema: &Value) -> bool {
    schema.get("required").and_then(Value::as_array).is_none_or(|r| r.is_empty())
        && !schema.get("allOf").and_then(Value::as_array).is_some_and(|all| all.iter().any(|s| !args_optional(s)))
}

struct Gen {
    base: String,
    /// `$ref` → type name.
    names: HashMap<String, String>,
    used: HashSet<String>,
    /// Named types still to emit: (`$ref`, name).
    queue: Vec<(String, String)>,
}

impl Gen {
    fn ref_name(&mut self, reference: &str) -> Option<String> {
        if !reference.starts_with('#') {
            return None;
        }
        if let Some(n) = self.names.get(reference) {
            return Some(n.clone());
        }
        let last = reference.rsplit('/').next().unwrap_or("");
        let last = last.replace("~1", "/").replace("~0", "~");
        let mut name = format!("{}_{}", self.base, pascal_case(&crate::names::sanitize_identifier(&last)));
        let stem = name.clone();
        let mut i = 2;
        while self.used.contains(&name) {
            name = format!("{stem}{i}");
            i += 1;
        }
        self.used.insert(name.clone());
        self.names.insert(reference.to_string(), name.clone());
        self.queue.push((reference.to_string(), name.clone()));
        Some(name)
    }

    /// The type of `s`; `indent` is the indentation of the line it starts on.
    fn ty(&mut self, s: &Value, depth: usize, indent: &str) -> String {
        let m = match s {
            Value::Bool(true) => return "unknown".into(),
            Value::Bool(false) => return "never".into(),
            Value::Object(m) => m,
            _ => return "unknown".into(),
        };
        if depth > MAX_DEPTH {
            return "unknown".into();
        }
        let nullable = m.get("nullable").and_then(Value::as_bool) == Some(true);
        let t = self.ty_inner(m, depth, indent);
        if nullable && t != "unknown" && t != "null" {
            union(vec![t, "null".into()])
        } else {
            t
        }
    }

    fn ty_inner(&mut self, m: &Map<String, Value>, depth: usize, indent: &str) -> String {
        if let Some(Value::String(r)) = m.get("$ref") {
            return match self.ref_name(r) {
                Some(n) => n,
                None => "unknown".into(),
            };
        }
        if let Some(c) = m.get("const") {
            return literal(c);
        }
        if let Some(Value::Array(values)) = m.get("enum") {
            if values.is_empty() {
                return "never".into();
            }
            return union(values.iter().map(literal).collect());
        }
        // The schema's own shape, then the combinators it carries.
        let mut parts: Vec<String> = vec![];
        let own = self.own_type(m, depth, indent);
        if let Some(t) = own {
            parts.push(t);
        }
        for key in ["allOf"] {
            if let Some(Value::Array(all)) = m.get(key) {
                for sub in all {
                    let t = self.ty(sub, depth + 1, indent);
                    if t != "unknown" {
                        parts.push(t);
                    }
                }
            }
        }
        for key in ["anyOf", "oneOf"] {
            if let Some(Value::Array(any)) = m.get(key) {
                let branches: Vec<String> = any.iter().map(|sub| self.ty(sub, depth + 1, indent)).collect();
                if branches.iter().any(|b| b == "unknown") || branches.is_empty() {
                    continue; // a branch that only adds constraints (e.g. `required`): no information
                }
                parts.push(union(branches));
            }
        }
        dedup(&mut parts);
        match parts.len() {
            0 => "unknown".into(),
            1 => parts.pop().unwrap(),
            _ => parts.iter().map(|p| paren_if(p, |c| c == '|')).collect::<Vec<_>>().join(" & "),
        }
    }

    /// The type from `type` (or implied by `properties` / `items`), if any.
    fn own_type(&mut self, m: &Map<String, Value>, depth: usize, indent: &str) -> Option<String> {
        let types: Vec<&str> = match m.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
            _ => {
                if m.contains_key("properties")
                    || m.contains_key("additionalProperties")
                    || m.contains_key("patternProperties")
                {
                    vec!["object"]
                } else if m.contains_key("items") || m.contains_key("prefixItems") {
                    vec!["array"]
                } else {
                    return None;
                }
            }
        };
        let mut out = vec![];
        for t in types {
            out.push(match t {
                "string" => "string".into(),
                "number" | "integer" => "number".into(),
                "boolean" => "boolean".into(),
                "null" => "null".into(),
                "object" => self.object(m, depth, indent),
                "array" => self.array(m, depth, indent),
                _ => "unknown".into(),
            });
        }
        dedup(&mut out);
        Some(union(out))
    }

    fn object(&mut self, m: &Map<String, Value>, depth: usize, indent: &str) -> String {
        let props = m.get("properties").and_then(Value::as_object);
        let required: HashSet<&str> = m
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        // Extra keys: additionalProperties, or patternProperties (union of their schemas).
        let mut extra: Option<String> = match m.get("additionalProperties") {
            Some(Value::Bool(false)) => Some("never".into()),
            Some(v @ Value::Object(_)) => Some(self.ty(v, depth + 1, indent)),
            _ => None,
        };
        if let Some(Value::Object(pp)) = m.get("patternProperties") {
            let mut ts: Vec<String> = pp.values().map(|v| self.ty(v, depth + 1, indent)).collect();
            if let Some(e) = extra.take().filter(|e| e != "never") {
                ts.push(e);
            }
            dedup(&mut ts);
            extra = Some(union(ts));
        }
        let props = match props {
            Some(p) if !p.is_empty() => p,
            _ => {
                return match extra.as_deref() {
                    Some("never") => "Record<string, never>".into(),
                    Some(t) => format!("Record<string, {t}>"),
                    None if props.is_some() => "{}".into(),
                    None => "Record<string, unknown>".into(),
                }
            }
        };
        let inner = format!("{indent}  ");
        let mut s = String::from("{\n");
        for (key, schema) in props {
            s.push_str(&jsdoc(schema_doc(schema, false).as_deref(), &inner));
            let opt = if required.contains(key.as_str()) { "" } else { "?" };
            let k = if is_identifier(key) { key.clone() } else { serde_json::to_string(key).unwrap_or_default() };
            let t = self.ty(schema, depth + 1, &inner);
            s.push_str(&format!("{inner}{k}{opt}: {t};\n"));
        }
        s.push_str(indent);
        s.push('}');
        match extra.as_deref() {
            None | Some("never") | Some("unknown") => s,
            Some(t) => format!("{s} & Record<string, {t}>"),
        }
    }

    fn array(&mut self, m: &Map<String, Value>, depth: usize, indent: &str) -> String {
        let (tuple, rest): (Option<&Vec<Value>>, Option<&Value>) = match (m.get("prefixItems"), m.get("items")) {
            (Some(Value::Array(p)), items) => (Some(p), items),
            (_, Some(Value::Array(p))) => (Some(p), m.get("additionalItems")),
            (_, items) => (None, items),
        };
        if let Some(elems) = tuple {
            let min = m.get("minItems").and_then(Value::as_u64).map(|n| n as usize).unwrap_or(elems.len());
            let mut parts: Vec<String> = elems
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    let t = self.ty(e, depth + 1, indent);
                    if i >= min {
                        format!("{}?", paren_if(&t, |c| c == '|' || c == '&'))
                    } else {
                        t
                    }
                })
                .collect();
            match rest {
                Some(Value::Bool(false)) | None => {}
                Some(r) => {
                    let t = self.ty(r, depth + 1, indent);
                    parts.push(format!("...{}", array_of(&t)));
                }
            }
            return format!("[{}]", parts.join(", "));
        }
        let elem = match rest {
            Some(items) => self.ty(items, depth + 1, indent),
            None => "unknown".into(),
        };
        array_of(&elem)
    }
}

/// `T[]` when `T` is a plain name, `Array<T>` otherwise (unions, objects,
/// intersections, function-free but multi-token types).
fn array_of(elem: &str) -> String {
    if elem.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$') && !elem.is_empty() {
        format!("{elem}[]")
    } else {
        format!("Array<{elem}>")
    }
}

/// A union, flattening duplicates; `never` members drop out.
fn union(mut parts: Vec<String>) -> String {
    dedup(&mut parts);
    if parts.len() > 1 {
        parts.retain(|p| p != "never");
    }
    if parts.iter().any(|p| p == "unknown") {
        return "unknown".into();
    }
    match parts.len() {
        0 => "never".into(),
        1 => parts.pop().unwrap(),
        _ => parts.iter().map(|p| paren_if(p, |c| c == '&')).collect::<Vec<_>>().join(" | "),
    }
}

fn dedup(parts: &mut Vec<String>) {
    let mut seen = HashSet::new();
    parts.retain(|p| seen.insert(p.clone()));
}

/// Parenthesises `t` if it has a top-level operator matching `op` (outside
/// braces, brackets, angle brackets and string literals).
fn paren_if(t: &str, op: impl Fn(char) -> bool) -> String {
    let mut depth = 0i32;
    let mut in_str = false;
    let mut escaped = false;
    for c in t.chars() {
        if in_str {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '{' | '[' | '<' | '(' => depth += 1,
            '}' | ']' | '>' | ')' => depth -= 1,
            c if depth == 0 && op(c) => return format!("({t})"),
            _ => {}
        }
    }
    t.to_string()
}

fn literal(v: &Value) -> String {
    match v {
        Value::Object(_) | Value::Array(_) => serde_json::to_string(v).unwrap_or_else(|_| "unknown".into()),
        _ => v.to_string(),
    }
}

/// Follows a local JSON pointer (`#`, `#/a/b~1c`).
fn resolve_pointer<'a>(root: &'a Value, reference: &str) -> Option<&'a Value> {
    let pointer = reference.strip_prefix('#')?;
    if pointer.is_empty() {
        return Some(root);
    }
    let decoded = percent_decode(pointer);
    root.pointer(&decoded)
}

fn percent_decode(s: &str) -> String {
    if !s.contains('%') {
        return s.to_string();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The documentation of a schema: description (or title for a whole type),
/// then `default`, `format`, bounds, `deprecated`.
fn schema_doc(s: &Value, whole_type: bool) -> Option<String> {
    let m = s.as_object()?;
    let mut lines: Vec<String> = vec![];
    match m.get("description").and_then(Value::as_str) {
        Some(d) if !d.trim().is_empty() => lines.push(d.trim().to_string()),
        _ => {
            if let Some(t) = m.get("title").and_then(Value::as_str).filter(|t| !whole_type && !t.trim().is_empty()) {
                lines.push(t.trim().to_string());
            }
        }
    }
    let mut facts: Vec<String> = vec![];
    if let Some(f) = m.get("format").and_then(Value::as_str) {
        facts.push(format!("format: {f}"));
    }
    for (key, label) in [
        ("minimum", ">="),
        ("exclusiveMinimum", ">"),
        ("maximum", "<="),
        ("exclusiveMaximum", "<"),
        ("minLength", "min length"),
        ("maxLength", "max length"),
        ("minItems", "min items"),
        ("maxItems", "max items"),
    ] {
        if let Some(v) = m.get(key).filter(|v| v.is_number()) {
            facts.push(format!("{label} {v}"));
        }
    }
    if let Some(p) = m.get("pattern").and_then(Value::as_str) {
        facts.push(format!("pattern: {p}"));
    }
    if !facts.is_empty() {
        lines.push(facts.join(", "));
    }
    if let Some(d) = m.get("default") {
        let text = d.to_string();
        if text.len() <= 200 {
            lines.push(format!("@default {text}"));
        }
    }
    if m.get("deprecated").and_then(Value::as_bool) == Some(true) {
        lines.push("@deprecated".into());
    }
    if lines.is_empty() {
        None
    } else {
        Some(lines.join("\n"))
    }
}

/// A JSDoc comment at `indent`, one line when it fits; `*/` in the text is
/// broken so it cannot end the comment.
pub(crate) fn jsdoc(text: Option<&str>, indent: &str) -> String {
    let Some(text) = text else { return String::new() };
    let text = text.replace("*/", "*\\/");
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    if lines.len() == 1 && lines[0].len() + indent.len() < 110 {
        return format!("{indent}/** {} */\n", lines[0]);
    }
    let mut s = format!("{indent}/**\n");
    for l in lines {
        if l.is_empty() {
            s.push_str(&format!("{indent} *\n"));
        } else {
            s.push_str(&format!("{indent} * {l}\n"));
        }
    }
    s.push_str(&format!("{indent} */\n"));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ts(schema: Value) -> String {
        declaration("T", &schema)
    }

    #[test]
    fn objects_with_jsdoc_and_optional_fields() {
        let out = ts(json!({"type": "object", "description": "Adds.", "properties": {
            "a": {"type": "number", "description": "First number"},
            "b": {"type": "integer", "minimum": 1, "default": 3},
            "my-key": {"type": "string", "format": "uri"}
        }, "required": ["a"]}));
        assert_eq!(
            out,
            "/** Adds. */\ntype T = {\n  /** First number */\n  a: number;\n  /**\n   * >= 1\n   * @default 3\n   */\n  b?: number;\n  /** format: uri */\n  \"my-key\"?: string;\n};\n"
        );
    }

    #[test]
    fn arrays_of_unions_are_not_misread() {
        let out = ts(json!({"type": "array", "items": {"type": ["string", "null"]}}));
        assert_eq!(out, "type T = Array<string | null>;\n");
        let out = ts(json!({"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "number"}]}}));
        assert_eq!(out, "type T = Array<string | number>;\n");
        let out = ts(json!({"type": "array", "items": {"type": "string", "nullable": true}}));
        assert_eq!(out, "type T = Array<string | null>;\n");
        let out = ts(json!({"type": "array", "items": {"type": "string"}}));
        assert_eq!(out, "type T = string[];\n");
        let out = ts(json!({"type": "array", "items": {"type": "array", "items": {"type": "number"}}}));
        assert_eq!(out, "type T = Array<number[]>;\n");
        let out = ts(json!({"type": "array", "items": {"enum": ["a", "b"]}}));
        assert_eq!(out, "type T = Array<\"a\" | \"b\">;\n");
    }

    #[test]
    fn tuples() {
        let out = ts(json!({"type": "array", "prefixItems": [{"type": "number"}, {"type": "string"}], "items": false}));
        assert_eq!(out, "type T = [number, string];\n");
        let out = ts(json!({"type": "array", "prefixItems": [{"type": "number"}], "items": {"type": "boolean"}}));
        assert_eq!(out, "type T = [number, ...boolean[]];\n");
        let out =
            ts(json!({"type": "array", "items": [{"type": "number"}, {"type": ["string", "null"]}], "minItems": 1}));
        assert_eq!(out, "/** min items 1 */\ntype T = [number, (string | null)?];\n");
        let out = ts(
            json!({"type": "array", "items": [{"type": "number"}], "additionalItems": {"type": ["string", "null"]}}),
        );
        assert_eq!(out, "type T = [number, ...Array<string | null>];\n");
    }

    #[test]
    fn enums_consts_and_nullable() {
        assert_eq!(ts(json!({"enum": ["a", 1, null, true]})), "type T = \"a\" | 1 | null | true;\n");
        assert_eq!(ts(json!({"const": "x"})), "type T = \"x\";\n");
        assert_eq!(ts(json!({"type": "string", "nullable": true})), "type T = string | null;\n");
        assert_eq!(ts(json!({"type": ["integer", "null"]})), "type T = number | null;\n");
        assert_eq!(ts(json!({"enum": ["a\"b"]})), "type T = \"a\\\"b\";\n");
        assert_eq!(ts(json!(true)), "type T = unknown;\n");
        assert_eq!(ts(json!({})), "type T = unknown;\n");
    }

    #[test]
    fn refs_and_recursion_become_named_types() {
        let out = ts(json!({
            "type": "object",
            "properties": {"root": {"$ref": "#/$defs/Node"}, "when": {"$ref": "#/definitions/time"}},
            "$defs": {"Node": {"type": "object", "description": "A tree node.", "properties": {
                "value": {"type": "string"},
                "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}
            }, "required": ["value"]}},
            "definitions": {"time": {"type": "string", "format": "date-time"}}
        }));
        assert!(out.contains("type T = {\n  root?: T_Node;\n  when?: T_Time;\n};\n"), "{out}");
        assert!(
            out.contains("/** A tree node. */\ntype T_Node = {\n  value: string;\n  children?: T_Node[];\n};\n"),
            "{out}"
        );
        assert!(out.contains("/** format: date-time */\ntype T_Time = string;\n"), "{out}");
        // The root itself.
        let out = ts(json!({"type": "object", "properties": {"next": {"anyOf": [{"$ref": "#"}, {"type": "null"}]}}}));
        assert_eq!(out, "type T = {\n  next?: T | null;\n};\n");
        // Unresolvable and remote refs.
        let out = ts(
            json!({"type": "object", "properties": {"a": {"$ref": "#/$defs/Nope"}, "b": {"$ref": "http://x/y.json"}}}),
        );
        assert!(
            out.contains("a?: T_Nope;") && out.contains("b?: unknown;") && out.contains("type T_Nope = unknown;"),
            "{out}"
        );
    }

    #[test]
    fn additional_properties() {
        assert_eq!(
            ts(json!({"type": "object", "additionalProperties": {"type": "number"}})),
            "type T = Record<string, number>;\n"
        );
        assert_eq!(ts(json!({"type": "object"})), "type T = Record<string, unknown>;\n");
        assert_eq!(ts(json!({"type": "object", "properties": {}})), "type T = {};\n");
        assert_eq!(
            ts(json!({"type": "object", "properties": {}, "additionalProperties": false})),
            "type T = Record<string, never>;\n"
        );
        assert_eq!(
            ts(
                json!({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"], "additionalProperties": {"type": ["string", "null"]}})
            ),
            "type T = {\n  a: string;\n} & Record<string, string | null>;\n"
        );
        assert_eq!(
            ts(json!({"type": "object", "patternProperties": {"^x-": {"type": "string"}}})),
            "type T = Record<string, string>;\n"
        );
    }

    #[test]
    fn combinators() {
        // allOf with an anyOf inside, as openapi-mcp-server emits for request bodies.
        let out = ts(json!({"allOf": [
            {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]},
            {"anyOf": [{"type": "object", "properties": {"a": {"type": "number"}}}, {"type": "object", "properties": {"b": {"type": "boolean"}}}]}
        ]}));
        assert_eq!(out, "type T = {\n  id: string;\n} & ({\n  a?: number;\n} | {\n  b?: boolean;\n});\n");
        // anyOf branches that only add `required` carry no type information.
        let out = ts(
            json!({"type": "object", "properties": {"a": {"type": "string"}}, "anyOf": [{"required": ["a"]}, {"required": ["b"]}]}),
        );
        assert_eq!(out, "type T = {\n  a?: string;\n};\n");
        let out =
            ts(json!({"oneOf": [{"type": "string"}, {"type": "object", "properties": {"x": {"type": "number"}}}]}));
        assert_eq!(out, "type T = string | {\n  x?: number;\n};\n");
    }

    #[test]
    fn nested_indentation_and_comment_safety() {
        let out = ts(
            json!({"type": "object", "properties": {"o": {"type": "object", "description": "ends */ early\nsecond line", "properties": {"x": {"type": "string"}}}}}),
        );
        assert_eq!(
            out,
            "type T = {\n  /**\n   * ends *\\/ early\n   * second line\n   */\n  o?: {\n    x?: string;\n  };\n};\n"
        );
    }

    #[test]
    fn deep_schemas_are_cut() {
        let mut s = json!({"type": "string"});
        for _ in 0..100 {
            s = json!({"type": "array", "items": s});
        }
        let out = ts(s);
        assert!(out.contains("unknown") && out.len() < 2000, "{out}");
    }

    #[test]
    fn optional_args() {
        assert!(args_optional(&json!({"type": "object", "properties": {}})));
        assert!(!args_optional(&json!({"type": "object", "required": ["a"]})));
        assert!(!args_optional(&json!({"allOf": [{"required": ["a"]}]})));
    }
}
