//! `$ref` resolution into a shared [`Graph`].
//!
//! Every reference target is expanded exactly once and shared by all its uses.
//! Targets that sit on a reference cycle (a strongly connected component of
//! the "target refers to target" graph, or a target that refers to itself) are
//! not inlined: their uses become [`Node::Ref`] leaves, and whoever reads the
//! graph expands them with path-scoped cycle detection — a reference that
//! would re-enter a target already on the current path reads as
//! `{"$circular": ref}`; a target merely used twice is expanded both times
//! (this is where Cloudflare's resolver, with one "seen" set for the whole
//! walk, goes wrong). Expanding cycles eagerly instead is exponential: on
//! Stripe's spec it ran for minutes and built tens of millions of nodes.

use std::collections::HashMap;

use serde_json::Value;
use url::Url;

use crate::graph::{Graph, Node, NodeId};
use crate::source::{escape_pointer_token, Documents};

/// A reference target: the document and the JSON pointer inside it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct TargetKey {
    doc: Url,
    pointer: String,
}

/// Resolves the root document of `docs` into a graph.
pub fn resolve(docs: &Documents) -> Graph {
    let cyclic = cyclic_targets(docs);
    let mut r = Resolver { docs, graph: Graph::default(), cyclic, expanded: HashMap::new(), ref_index: HashMap::new() };
    let root = match docs.root_value() {
        Value::Object(map) => {
            let entries: Vec<(Box<str>, NodeId)> = map
                .iter()
                .map(|(k, v)| {
                    let id = if k == "components" { r.components(v) } else { r.value(v, &docs.root) };
                    (k.as_str().into(), id)
                })
                .collect();
            r.graph.push(Node::Object(entries.into()))
        }
        other => r.value(other, &docs.root),
    };
    r.graph.set_root(root);
    r.graph
}

struct Resolver<'d> {
    docs: &'d Documents,
    graph: Graph,
    /// Targets on a reference cycle.
    cyclic: std::collections::HashSet<TargetKey>,
    /// Expanded acyclic targets.
    expanded: HashMap<TargetKey, NodeId>,
    /// Declared [`Node::Ref`] index of each cyclic target.
    ref_index: HashMap<TargetKey, u32>,
}

impl<'d> Resolver<'d> {
    /// `components` entries are resolved as if referenced, so that a schema
    /// that refers to itself shows the cycle right in its own definition, and
    /// every use of a component shares the node of its definition.
    fn components(&mut self, v: &'d Value) -> NodeId {
        let root = self.docs.root.clone();
        let Value::Object(sections) = v else {
            return self.value(v, &root);
        };
        let mut out = Vec::with_capacity(sections.len());
        for (section, entries) in sections {
            let id = match entries {
                Value::Object(entries) => {
                    let items: Vec<(Box<str>, NodeId)> = entries
                        .keys()
                        .map(|name| {
                            let reference = format!(
                                "#/components/{}/{}",
                                escape_pointer_token(section),
                                escape_pointer_token(name)
                            );
                            (name.as_str().into(), self.reference(&reference, &root))
                        })
                        .collect();
                    self.graph.push(Node::Object(items.into()))
                }
                other => self.value(other, &root),
            };
            out.push((section.as_str().into(), id));
        }
        self.graph.push(Node::Object(out.into()))
    }

    fn value(&mut self, v: &'d Value, base: &Url) -> NodeId {
        match v {
            Value::Object(map) => {
                if let Some(Value::String(reference)) = map.get("$ref") {
                    let target = self.reference(reference, base);
                    if map.len() == 1 {
                        return target;
                    }
                    // OpenAPI 3.1 allows siblings next to `$ref` (summary,
                    // description, …): they override the target's fields.
                    let siblings: Vec<(Box<str>, NodeId)> = map
                        .iter()
                        .filter(|(k, _)| *k != "$ref")
                        .map(|(k, v)| (k.as_str().into(), self.value(v, base)))
                        .collect();
                    // A cyclic target is a `Ref` leaf: merge with the
                    // expansion behind it when that is already built.
                    let merge_with = match self.graph.node(target) {
                        Node::Ref(r) => self.graph.try_ref_target(*r).map(|t| t.node).unwrap_or(target),
                        _ => target,
                    };
                    return match self.graph.node(merge_with) {
                        Node::Object(entries) => {
                            let mut merged: Vec<(Box<str>, NodeId)> = entries
                                .iter()
                                .filter(|(k, _)| !siblings.iter().any(|(s, _)| s == k))
                                .cloned()
                                .collect();
                            merged.extend(siblings);
                            self.graph.push(Node::Object(merged.into()))
                        }
                        _ => target,
                    };
                }
                let entries: Vec<(Box<str>, NodeId)> =
                    map.iter().map(|(k, v)| (k.as_str().into(), self.value(v, base))).collect();
                self.graph.push(Node::Object(entries.into()))
            }
            Value::Array(items) => {
                let ids: Vec<NodeId> = items.iter().map(|v| self.value(v, base)).collect();
                self.graph.push(Node::Array(ids.into()))
            }
            scalar => self.graph.push_value(scalar),
        }
    }

    fn reference(&mut self, reference: &str, base: &Url) -> NodeId {
        let (doc, pointer) = match split_reference(reference, base) {
            Ok(t) => t,
            Err(msg) => return self.unresolved(reference, &msg),
        };
        let key = TargetKey { doc, pointer };
        if let Some(id) = self.expanded.get(&key) {
            return *id;
        }
        if let Some(index) = self.ref_index.get(&key) {
            return self.graph.push(Node::Ref(*index));
        }
        let Some(doc) = self.docs.get(&key.doc) else {
            return self.unresolved(reference, "the referenced document was not loaded");
        };
        let Some(target) = lookup_pointer(doc, &key.pointer) else {
            return self.unresolved(reference, "nothing exists at this JSON pointer");
        };
        if self.cyclic.contains(&key) {
            let index = self.graph.declare_ref();
            self.ref_index.insert(key.clone(), index);
            let node = self.value(target, &key.doc);
            let name = self.canonical_name(&key);
            self.graph.set_ref_target(index, &name, node);
            return self.graph.push(Node::Ref(index));
        }
        let node = self.value(target, &key.doc);
        self.expanded.insert(key, node);
        node
    }

    /// The reference as written from the root document: `#/components/…` for
    /// the root itself, `schemas/pet.yaml#/Pet` for other files — the same
    /// whichever file the reference was written in.
    fn canonical_name(&self, key: &TargetKey) -> String {
        if key.doc == self.docs.root {
            format!("#{}", key.pointer)
        } else {
            let doc = self.docs.root.make_relative(&key.doc).unwrap_or_else(|| key.doc.to_string());
            format!("{doc}#{}", key.pointer)
        }
    }

    fn unresolved(&mut self, reference: &str, why: &str) -> NodeId {
        self.graph.push_value(&serde_json::json!({ "$unresolved": reference, "error": why }))
    }
}

/// Finds every reference target that lies on a reference cycle.
fn cyclic_targets(docs: &Documents) -> std::collections::HashSet<TargetKey> {
    // Discover targets and their direct references (not following them).
    let mut index: HashMap<TargetKey, usize> = HashMap::new();
    let mut keys: Vec<TargetKey> = Vec::new();
    let mut edges: Vec<Vec<usize>> = Vec::new();
    let mut queue: Vec<usize> = Vec::new();
    let mut intern =
        |key: TargetKey, keys: &mut Vec<TargetKey>, edges: &mut Vec<Vec<usize>>, queue: &mut Vec<usize>| {
            *index.entry(key.clone()).or_insert_with(|| {
                keys.push(key);
                edges.push(Vec::new());
                queue.push(keys.len() - 1);
                keys.len() - 1
            })
        };
    let mut found = Vec::new();
    collect_refs(docs.root_value(), &docs.root, &mut found);
    for k in found.drain(..) {
        intern(k, &mut keys, &mut edges, &mut queue);
    }
    while let Some(i) = queue.pop() {
        let key = keys[i].clone();
        if let Some(target) = docs.get(&key.doc).and_then(|d| lookup_pointer(d, &key.pointer)) {
            collect_refs(target, &key.doc, &mut found);
        }
        for k in found.drain(..) {
            let j = intern(k, &mut keys, &mut edges, &mut queue);
            edges[i].push(j);
        }
    }
    let on_cycle = tarjan_on_cycle(&edges);
    keys.into_iter().zip(on_cycle).filter(|(_, c)| *c).map(|(k, _)| k).collect()
}

fn collect_refs(v: &Value, base: &Url, out: &mut Vec<TargetKey>) {
    match v {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                if let Ok((doc, pointer)) = split_reference(r, base) {
                    out.push(TargetKey { doc, pointer });
                }
            }
            for child in map.values() {
                if matches!(child, Value::Object(_) | Value::Array(_)) {
                    collect_refs(child, base, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|c| collect_refs(c, base, out)),
        _ => {}
    }
}

/// Tarjan's strongly connected components (iterative); returns, per vertex,
/// whether it lies on a cycle (a component of two or more, or a self-loop).
fn tarjan_on_cycle(edges: &[Vec<usize>]) -> Vec<bool> {
    let n = edges.len();
    let mut idx = vec![usize::MAX; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut result = vec![false; n];
    let mut counter = 0;
    for start in 0..n {
        if idx[start] != usize::MAX {
            continue;
        }
        let mut call: Vec<(usize, usize)> = vec![(start, 0)];
        while let Some(&mut (v, ref mut next)) = call.last_mut() {
            if *next == 0 && idx[v] == usize::MAX {
                idx[v] = counter;
                low[v] = counter;
                counter += 1;
                stack.push(v);
                on_stack[v] = true;
            }
            if let Some(&w) = edges[v].get(*next) {
                *next += 1;
                if idx[w] == usize::MAX {
                    call.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(idx[w]);
                }
                continue;
            }
            call.pop();
            if let Some(&(parent, _)) = call.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == idx[v] {
                let mut component = Vec::new();
                loop {
                    let w = stack.pop().expect("tarjan stack");
                    on_stack[w] = false;
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                let cyclic = component.len() > 1 || edges[v].contains(&v);
                for w in component {
                    result[w] = cyclic;
                }
            }
        }
    }
    result
}

/// Splits a `$ref` into the absolute document URL (no fragment) and the JSON
/// pointer (percent-decoded, still `~`-escaped).
pub fn split_reference(reference: &str, base: &Url) -> Result<(Url, String), String> {
    let (doc_part, fragment) = match reference.split_once('#') {
        Some((d, f)) => (d, f),
        None => (reference, ""),
    };
    let mut url = if doc_part.is_empty() {
        base.clone()
    } else {
        base.join(doc_part).map_err(|e| format!("not a valid reference: {e}"))?
    };
    url.set_fragment(None);
    let pointer = percent_encoding::percent_decode_str(fragment)
        .decode_utf8()
        .map_err(|_| "the JSON pointer is not valid UTF-8 once percent-decoded".to_string())?
        .into_owned();
    if !pointer.is_empty() && !pointer.starts_with('/') {
        return Err(format!(
            "`#{pointer}` is not a JSON pointer (anchors are not supported); write `#/path/to/target`"
        ));
    }
    Ok((url, pointer))
}

/// Follows an RFC 6901 JSON pointer.
pub fn lookup_pointer<'v>(doc: &'v Value, pointer: &str) -> Option<&'v Value> {
    if pointer.is_empty() {
        return Some(doc);
    }
    doc.pointer(pointer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn resolve_json(v: Value) -> (Graph, Value) {
        let docs = Documents::for_tests(v);
        let g = resolve(&docs);
        let out = g.to_value(g.root());
        (g, out)
    }

    #[test]
    fn repeated_references_are_expanded_not_marked_circular() {
        let (g, out) = resolve_json(json!({
            "components": {"schemas": {"Id": {"type": "string"}}},
            "paths": {"/a": {"get": {"parameters": [
                {"schema": {"$ref": "#/components/schemas/Id"}},
                {"schema": {"$ref": "#/components/schemas/Id"}}
            ]}}}
        }));
        let params = &out["paths"]["/a"]["get"]["parameters"];
        assert_eq!(params[0]["schema"], json!({"type": "string"}));
        assert_eq!(params[1]["schema"], json!({"type": "string"}));
        // …and shared in memory: both point at the node of the component.
        let p = g.get(g.root(), "paths").unwrap();
        let get = g.get(g.get(p, "/a").unwrap(), "get").unwrap();
        let Node::Array(items) = g.node(g.get(get, "parameters").unwrap()) else { panic!() };
        assert_eq!(g.get(items[0], "schema"), g.get(items[1], "schema"));
    }

    #[test]
    fn only_path_recursion_becomes_circular() {
        let (_, out) = resolve_json(json!({
            "components": {"schemas": {
                "Node": {"type": "object", "properties": {
                    "child": {"$ref": "#/components/schemas/Node"},
                    "tag": {"$ref": "#/components/schemas/Tag"},
                    "tag2": {"$ref": "#/components/schemas/Tag"}
                }},
                "Tag": {"type": "string"}
            }}
        }));
        let node = &out["components"]["schemas"]["Node"];
        assert_eq!(node["properties"]["child"], json!({"$circular": "#/components/schemas/Node"}));
        assert_eq!(node["properties"]["tag"], json!({"type": "string"}));
        assert_eq!(node["properties"]["tag2"], json!({"type": "string"}));
    }

    #[test]
    fn mutual_recursion_depends_on_the_path() {
        // A -> B -> A: expanding A marks the inner A; expanding B marks the inner B.
        let (_, out) = resolve_json(json!({
            "components": {"schemas": {
                "A": {"properties": {"b": {"$ref": "#/components/schemas/B"}}},
                "B": {"properties": {"a": {"$ref": "#/components/schemas/A"}}}
            }},
            "x": {"$ref": "#/components/schemas/B"}
        }));
        let s = &out["components"]["schemas"];
        assert_eq!(s["A"]["properties"]["b"]["properties"]["a"], json!({"$circular": "#/components/schemas/A"}));
        assert_eq!(s["B"]["properties"]["a"]["properties"]["b"], json!({"$circular": "#/components/schemas/B"}));
        assert_eq!(out["x"], s["B"]);
    }

    #[test]
    fn cycles_are_shared_refs_and_acyclic_targets_expand_once() {
        let docs = Documents::for_tests(json!({
            "components": {"schemas": {
                "A": {"properties": {"b": {"$ref": "#/components/schemas/B"}, "t": {"$ref": "#/components/schemas/T"}}},
                "B": {"properties": {"a": {"$ref": "#/components/schemas/A"}}},
                "T": {"type": "string"}
            }}
        }));
        let g = resolve(&docs);
        assert_eq!(g.ref_count(), 2);
        assert!(g.nodes().iter().filter(|n| matches!(n, Node::String(s) if &**s == "string")).count() == 1);
    }

    #[test]
    fn broken_references_become_markers() {
        let (_, out) = resolve_json(json!({"a": {"$ref": "#/nope"}, "b": {"$ref": "#anchor"}}));
        assert_eq!(out["a"]["$unresolved"], "#/nope");
        assert!(out["b"]["error"].as_str().unwrap().contains("JSON pointer"));
    }

    #[test]
    fn siblings_override_the_target() {
        let (_, out) = resolve_json(json!({
            "defs": {"T": {"type": "string", "description": "old"}},
            "x": {"$ref": "#/defs/T", "description": "new"}
        }));
        assert_eq!(out["x"], json!({"type": "string", "description": "new"}));
    }

    #[test]
    fn escaped_pointers_resolve() {
        let (_, out) = resolve_json(json!({
            "paths": {"/a/{b}": {"x": 1}},
            "r": {"$ref": "#/paths/~1a~1%7Bb%7D"}
        }));
        assert_eq!(out["r"], json!({"x": 1}));
    }
}
