//! OpenAPI schemas as JSON Schema (draft 2020-12) for the `jsonschema` crate.
//!
//! OpenAPI 3.0 schemas are a dialect: `nullable: true`, boolean
//! `exclusiveMinimum`/`exclusiveMaximum`, `readOnly`/`writeOnly` that change
//! what `required` means per direction, Swagger's `type: file`, and many
//! annotation keywords. Specs in the wild also carry values that are not
//! valid JSON Schema at all (`required: true` on a property, `maxLength:
//! "10"`). [`Converter`] writes a strict 2020-12 schema holding only the
//! assertion keywords it understands, each checked for the right shape;
//! everything else is dropped (annotations assert nothing).
//!
//! The spec graph shares every reference target, and keeps references into
//! a cycle as [`Node::Ref`] leaves. The converter keeps that sharing: each
//! cyclic reference and each schema object reached more than once becomes one
//! entry under `$defs`, referenced with `$ref`, so the output is proportional
//! to the part of the spec it covers (no exponential inlining, and recursion
//! is validated exactly rather than cut off). A `{"$circular": ..}` or an
//! unresolved `{"$ref": ..}` object, which only shows up when a spec was
//! expanded to a tree first, accepts anything.

use std::collections::{HashMap, HashSet};

use codemode_spec::{Graph, Node, NodeId};
use serde_json::{json, Map, Value};

use crate::doc::{entries, items};

/// Which side of an exchange a schema describes. OpenAPI says `readOnly`
/// properties are not sent in requests and `writeOnly` ones are not returned,
/// so a property that is `required` but read-only is not required in a
/// request (and the reverse for write-only in a response).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// A request body or parameter.
    Request,
    /// A response body or header.
    Response,
}

/// Keywords whose value is one schema.
const ONE_SCHEMA: [&str; 7] = ["not", "contains", "propertyNames", "if", "then", "else", "unevaluatedItems"];
/// Keywords whose value is a list of schemas.
const SCHEMA_LISTS: [&str; 4] = ["allOf", "anyOf", "oneOf", "prefixItems"];
/// Keywords whose value is a map of schemas.
const SCHEMA_MAPS: [&str; 3] = ["properties", "patternProperties", "dependentSchemas"];
/// JSON types a `type` may name.
const TYPES: [&str; 7] = ["string", "number", "integer", "boolean", "array", "object", "null"];

/// The schema children of a schema node (raw ids: a cyclic reference stays
/// a [`Node::Ref`]), in document order.
pub(crate) fn schema_children(g: &Graph, id: NodeId, out: &mut Vec<NodeId>) {
    for (k, v) in entries(g, id) {
        let k = &**k;
        if ONE_SCHEMA.contains(&k) || k == "additionalProperties" || k == "unevaluatedProperties" {
            out.push(*v);
        } else if k == "items" {
            match g.node(g.deref(*v)) {
                Node::Array(a) => out.extend(a.iter().copied()),
                _ => out.push(*v),
            }
        } else if SCHEMA_LISTS.contains(&k) {
            out.extend(items(g, *v).iter().copied());
        } else if SCHEMA_MAPS.contains(&k) {
            out.extend(entries(g, *v).iter().map(|(_, s)| *s));
        }
    }
}

/// Converts OpenAPI schema nodes of one graph into JSON Schema, sharing
/// `$defs` between all the roots it is given (see the module docs).
pub struct Converter<'g> {
    g: &'g Graph,
    direction: Direction,
    patterns: bool,
    any_of_for_one_of: bool,
    uses: HashMap<NodeId, u32>,
    counted: HashSet<NodeId>,
    defs: Map<String, Value>,
    queued: Vec<(String, NodeId)>,
    named: HashSet<String>,
}

impl<'g> Converter<'g> {
    /// A converter for schemas of `graph` read in `direction`. With
    /// `patterns` false, `pattern` and `patternProperties` are dropped (the
    /// fallback when a spec's regular expression does not compile).
    pub fn new(graph: &'g Graph, direction: Direction, patterns: bool) -> Self {
        Converter {
            g: graph,
            direction,
            patterns,
            any_of_for_one_of: false,
            uses: HashMap::new(),
            counted: HashSet::new(),
            defs: Map::new(),
            queued: Vec::new(),
            named: HashSet::new(),
        }
    }

    /// Writes `oneOf` as `anyOf`. Request checking uses this: specs often
    /// write `oneOf` for alternatives that overlap (objects whose properties
    /// are all optional, `{"before": ..}` / `{"after": ..}`), where a value
    /// meant for one branch also matches another; the real APIs accept
    /// such values, so rejecting them as "valid under more than one" would
    /// only mislead.
    pub fn any_of_for_one_of(mut self) -> Self {
        self.any_of_for_one_of = true;
        self
    }

    /// Counts how often each schema object is reached from `roots`, so that
    /// shared ones become `$defs`. Call with every root before [`Converter::convert`].
    pub fn count(&mut self, roots: &[NodeId]) {
        let mut stack: Vec<NodeId> = roots.to_vec();
        let mut children = Vec::new();
        while let Some(id) = stack.pop() {
            if matches!(self.g.node(id), Node::Ref(_)) {
                // A cyclic reference: always a def; count its target once.
                let target = self.g.deref(id);
                if self.counted.insert(target) {
                    stack.push(target);
                }
                continue;
            }
            let n = self.uses.entry(id).or_insert(0);
            *n += 1;
            if *n > 1 || !self.counted.insert(id) {
                continue;
            }
            children.clear();
            schema_children(self.g, id, &mut children);
            stack.extend(children.iter().copied());
        }
    }

    /// The JSON Schema for one root (its `$ref`s point into the shared
    /// `$defs`, see [`Converter::finish`]).
    pub fn convert(&mut self, id: NodeId) -> Value {
        self.node(id, true)
    }

    /// Converts everything the roots referred to and returns the `$defs`.
    pub fn finish(mut self) -> Map<String, Value> {
        while let Some((name, id)) = self.queued.pop() {
            let v = self.node(id, false);
            self.defs.insert(name, v);
        }
        self.defs
    }

    /// One self-contained schema for `id` (the root plus its `$defs`).
    pub fn standalone(graph: &'g Graph, id: NodeId, direction: Direction, patterns: bool) -> Value {
        let mut c = Converter::new(graph, direction, patterns);
        c.count(&[id]);
        let root = c.convert(id);
        with_defs(root, c.finish())
    }

    fn def_ref(&mut self, name: String, id: NodeId) -> Value {
        if self.named.insert(name.clone()) {
            self.queued.push((name.clone(), id));
        }
        json!({ "$ref": format!("#/$defs/{name}") })
    }

    fn node(&mut self, id: NodeId, allow_share: bool) -> Value {
        let g = self.g;
        match g.node(id) {
            Node::Ref(r) => {
                let target = g.deref(id);
                return self.def_ref(format!("r{r}"), target);
            }
            Node::Bool(b) => return Value::Bool(*b),
            Node::Object(_) => {}
            _ => return Value::Bool(true),
        }
        let own = entries(g, id);
        if own.iter().any(|(k, _)| &**k == "$circular" || &**k == "$ref") {
            return Value::Bool(true);
        }
        if allow_share && own.len() > 1 && self.uses.get(&id).copied().unwrap_or(0) > 1 {
            return self.def_ref(format!("n{}", id.0), id);
        }
        self.object(id, own)
    }

    fn sub(&mut self, id: NodeId) -> Value {
        self.node(id, true)
    }

    fn object(&mut self, id: NodeId, own: &[(Box<str>, NodeId)]) -> Value {
        let g = self.g;
        let mut out = Map::new();
        let mut nullable = false;
        let mut exclusive_min = false;
        let mut exclusive_max = false;
        for (k, v) in own {
            let vid = g.deref(*v);
            let node = g.node(vid);
            match &**k {
                "nullable" | "x-nullable" => nullable |= matches!(node, Node::Bool(true)),
                "type" => {
                    let names: Vec<&str> = match node {
                        Node::String(s) => vec![&**s],
                        Node::Array(a) => a.iter().filter_map(|i| g.as_str(g.deref(*i))).collect(),
                        _ => vec![],
                    };
                    let mut types: Vec<Value> = Vec::new();
                    for t in names {
                        let t = if t == "file" { "string" } else { t };
                        if TYPES.contains(&t) && !types.iter().any(|x| x == t) {
                            types.push(json!(t));
                        }
                    }
                    match types.len() {
                        0 => {}
                        1 => {
                            out.insert("type".into(), types.pop().expect("one type"));
                        }
                        _ => {
                            out.insert("type".into(), Value::Array(types));
                        }
                    }
                }
                "enum" => {
                    if let Node::Array(a) = node {
                        if !a.is_empty() {
                            out.insert(
                                "enum".into(),
                                Value::Array(a.iter().map(|i| crate::doc::value(g, *i)).collect()),
                            );
                        }
                    }
                }
                "const" => {
                    out.insert("const".into(), crate::doc::value(g, vid));
                }
                "format" => {
                    if let Node::String(s) = node {
                        out.insert("format".into(), json!(&**s));
                    }
                }
                "minimum" | "maximum" => {
                    if let Node::Number(n) = node {
                        out.insert(k.to_string(), Value::Number(n.clone()));
                    }
                }
                "exclusiveMinimum" | "exclusiveMaximum" => match node {
                    Node::Number(n) => {
                        out.insert(k.to_string(), Value::Number(n.clone()));
                    }
                    Node::Bool(true) if &**k == "exclusiveMinimum" => exclusive_min = true,
                    Node::Bool(true) => exclusive_max = true,
                    _ => {}
                },
                "multipleOf" => {
                    if let Node::Number(n) = node {
                        if n.as_f64().is_some_and(|f| f > 0.0) {
                            out.insert(k.to_string(), Value::Number(n.clone()));
                        }
                    }
                }
                "minLength" | "maxLength" | "minItems" | "maxItems" | "minProperties" | "maxProperties" => {
                    if let Some(n) = crate::doc::get_count(g, id, k) {
                        out.insert(k.to_string(), json!(n));
                    }
                }
                "uniqueItems" => {
                    if let Node::Bool(b) = node {
                        out.insert(k.to_string(), json!(b));
                    }
                }
                "pattern" => {
                    if let (true, Node::String(s)) = (self.patterns, node) {
                        out.insert(k.to_string(), json!(&**s));
                    }
                }
                "required" => {
                    if let Node::Array(a) = node {
                        let names: Vec<Value> = a
                            .iter()
                            .filter_map(|i| g.as_str(g.deref(*i)))
                            .filter(|name| !self.skipped_property(id, name))
                            .map(|s| json!(s))
                            .collect();
                        if !names.is_empty() {
                            out.insert("required".into(), Value::Array(names));
                        }
                    }
                }
                "properties" | "patternProperties" | "dependentSchemas" => {
                    if &**k == "patternProperties" && !self.patterns {
                        continue;
                    }
                    if let Node::Object(props) = node {
                        let mut m = Map::new();
                        for (name, s) in props.iter() {
                            m.insert(name.to_string(), self.sub(*s));
                        }
                        out.insert(k.to_string(), Value::Object(m));
                    }
                }
                "additionalProperties" | "unevaluatedProperties" => match node {
                    Node::Bool(b) => {
                        out.insert(k.to_string(), json!(b));
                    }
                    Node::Object(_) => {
                        let s = self.sub(*v);
                        out.insert(k.to_string(), s);
                    }
                    _ => {}
                },
                "items" => match node {
                    Node::Array(a) => {
                        let list: Vec<Value> = a.iter().map(|s| self.sub(*s)).collect();
                        out.insert("prefixItems".into(), Value::Array(list));
                    }
                    Node::Object(_) | Node::Bool(_) => {
                        let s = self.sub(*v);
                        out.insert("items".into(), s);
                    }
                    _ => {}
                },
                "allOf" | "anyOf" | "oneOf" | "prefixItems" => {
                    if let Node::Array(a) = node {
                        if !a.is_empty() {
                            let list: Vec<Value> = a.iter().map(|s| self.sub(*s)).collect();
                            let key = if &**k == "oneOf" && self.any_of_for_one_of { "anyOf" } else { k };
                            if key == "anyOf" && out.contains_key("anyOf") {
                                // Both `anyOf` and a relaxed `oneOf`: the second
                                // becomes one more `allOf` member.
                                let all = out.entry("allOf").or_insert_with(|| json!([]));
                                if let Value::Array(members) = all {
                                    members.push(json!({ "anyOf": list }));
                                }
                            } else {
                                out.insert(key.to_string(), Value::Array(list));
                            }
                        }
                    }
                }
                "not" | "contains" | "propertyNames" | "if" | "then" | "else" | "unevaluatedItems" => {
                    if matches!(node, Node::Object(_) | Node::Bool(_)) {
                        let s = self.sub(*v);
                        out.insert(k.to_string(), s);
                    }
                }
                _ => {}
            }
        }
        if exclusive_min {
            if let Some(m) = out.remove("minimum") {
                out.insert("exclusiveMinimum".into(), m);
            }
        }
        if exclusive_max {
            if let Some(m) = out.remove("maximum") {
                out.insert("exclusiveMaximum".into(), m);
            }
        }
        if nullable {
            let mut wrap = false;
            match out.get_mut("type") {
                Some(Value::String(t)) => {
                    let t = std::mem::take(t);
                    out.insert("type".into(), json!([t, "null"]));
                }
                Some(Value::Array(ts)) => {
                    if !ts.iter().any(|t| t == "null") {
                        ts.push(json!("null"));
                    }
                }
                _ => wrap = true,
            }
            if let Some(Value::Array(e)) = out.get_mut("enum") {
                if !e.contains(&Value::Null) {
                    e.push(Value::Null);
                }
            }
            let composite = ["allOf", "anyOf", "oneOf", "$ref", "const"].iter().any(|k| out.contains_key(*k));
            if wrap && composite {
                return json!({"anyOf": [{"type": "null"}, Value::Object(out)]});
            }
        }
        Value::Object(out)
    }

    /// True when property `name` of schema `id` is `readOnly` in a request
    /// or `writeOnly` in a response (so `required` does not apply).
    fn skipped_property(&self, id: NodeId, name: &str) -> bool {
        let key = match self.direction {
            Direction::Request => "readOnly",
            Direction::Response => "writeOnly",
        };
        crate::doc::property_flagged(self.g, id, name, key)
    }
}

/// Puts `$defs` beside a root schema (wrapping a boolean root).
pub(crate) fn with_defs(root: Value, defs: Map<String, Value>) -> Value {
    if defs.is_empty() {
        return root;
    }
    let mut m = match root {
        Value::Object(m) => m,
        Value::Bool(true) => Map::new(),
        other => {
            let mut m = Map::new();
            m.insert("allOf".into(), json!([other]));
            m
        }
    };
    m.insert("$defs".into(), Value::Object(defs));
    Value::Object(m)
}

/// The validation options every compiled schema uses: draft 2020-12,
/// formats asserted (`date-time`, `email`, `uuid`, ...).
pub(crate) fn options() -> jsonschema::ValidationOptions<'static> {
    jsonschema::options().with_draft(jsonschema::Draft::Draft202012).should_validate_formats(true)
}

/// Compiles a converted schema. When the spec's regular expressions do not
/// compile, `fallback` (the same schema without patterns) is tried; when even
/// that fails the error is returned.
pub(crate) fn compile(schema: &Value, fallback: impl FnOnce() -> Value) -> Result<jsonschema::Validator, String> {
    match options().build(schema) {
        Ok(v) => Ok(v),
        Err(first) => {
            let without = fallback();
            options().build(&without).map_err(|e| format!("{first}; without patterns: {e}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(v: Value) -> (Graph, NodeId) {
        let mut g = Graph::default();
        let root = g.push_value(&v);
        g.set_root(root);
        (g, root)
    }

    #[test]
    fn openapi_30_dialect_becomes_json_schema() {
        let (g, root) = graph(json!({
            "type": "object",
            "required": ["n", "id", "secret"],
            "properties": {
                "n": {"type": "integer", "nullable": true, "minimum": 0, "exclusiveMinimum": true, "example": 3},
                "id": {"type": "string", "readOnly": true},
                "secret": {"type": "string", "writeOnly": true},
                "upload": {"type": "file"},
                "loop": {"$circular": "#/components/schemas/Node"},
                "sloppy": {"type": "string", "required": true, "maxLength": "10", "discriminator": {"propertyName": "x"}}
            }
        }));
        let request = Converter::standalone(&g, root, Direction::Request, true);
        assert_eq!(
            request,
            json!({
                "type": "object",
                "required": ["n", "secret"],
                "properties": {
                    "n": {"type": ["integer", "null"], "exclusiveMinimum": 0},
                    "id": {"type": "string"},
                    "secret": {"type": "string"},
                    "upload": {"type": "string"},
                    "loop": true,
                    "sloppy": {"type": "string"}
                }
            })
        );
        let response = Converter::standalone(&g, root, Direction::Response, true);
        assert_eq!(response["required"], json!(["n", "id"]));
        let v = compile(&request, || json!(true)).unwrap();
        assert!(v.is_valid(&json!({"n": null, "secret": "s", "loop": {"anything": [1]}})));
        assert!(!v.is_valid(&json!({"n": 0, "secret": "s"})));
    }

    #[test]
    fn shared_and_cyclic_schemas_become_defs() {
        // A tree node whose `children` refer back to it (a cyclic `Ref`), and
        // one schema object used twice.
        let mut g = Graph::default();
        let r = g.declare_ref();
        let leaf = g.push(Node::Ref(r));
        let children = g.push_value(&json!({"type": "array"}));
        let Node::Object(entries) = g.node(children).clone() else { unreachable!() };
        let mut entries = entries.into_vec();
        entries.push(("items".into(), leaf));
        let children = g.push(Node::Object(entries.into()));
        let name = g.push_value(&json!({"type": "string", "minLength": 1}));
        let props = g.push(Node::Object(
            vec![("name".into(), name), ("alias".into(), name), ("children".into(), children)].into(),
        ));
        let ty = g.push_value(&json!("object"));
        let node = g.push(Node::Object(vec![("type".into(), ty), ("properties".into(), props)].into()));
        g.set_ref_target(r, "#/components/schemas/Node", node);
        g.set_root(node);
        let schema = Converter::standalone(&g, node, Direction::Response, true);
        let defs = schema["$defs"].as_object().unwrap();
        assert_eq!(defs.len(), 2, "{schema}");
        assert_eq!(schema["properties"]["children"]["items"], json!({"$ref": "#/$defs/r0"}));
        assert_eq!(schema["properties"]["name"], schema["properties"]["alias"]);
        let v = compile(&schema, || json!(true)).unwrap();
        assert!(v.is_valid(&json!({"name": "a", "children": [{"name": "b", "children": [{"name": "c"}]}]})));
        assert!(!v.is_valid(&json!({"name": "a", "children": [{"name": "b", "children": [{"name": ""}]}]})));
    }

    #[test]
    fn bad_patterns_fall_back_to_no_patterns() {
        let (g, root) = graph(json!({"type": "string", "pattern": "(?<=a)b[", "maxLength": 3}));
        let schema = Converter::standalone(&g, root, Direction::Request, true);
        let v = compile(&schema, || Converter::standalone(&g, root, Direction::Request, false)).unwrap();
        assert!(v.is_valid(&json!("abc")));
        assert!(!v.is_valid(&json!("abcd")));
    }
}
