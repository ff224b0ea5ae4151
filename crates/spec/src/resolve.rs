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

use std::collections::{HashMap, HashSet};

use url::Url;

use crate::graph::{Graph, Node, NodeId};
use crate::intern::Interner;
use crate::source::{escape_pointer_token, ref_string, Documents};

/// A reference target: the document and the JSON pointer inside it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct TargetKey {
    doc: Url,
    pointer: String,
}

/// Per node of the documents' arena: whether a `$ref` (a string one) sits
/// at or below it. Resolution rebuilds only such nodes; every other subtree
/// is already what it resolves to and is reused as it is, which is what
/// makes a fully dereferenced spec cost no more than reading it.
#[derive(Default)]
pub(crate) struct RefBits(Vec<bool>);

impl RefBits {
    /// Extends the bits to every node of `g` (children precede parents, so
    /// one pass over the new nodes does it).
    pub(crate) fn update(&mut self, g: &Graph) {
        for i in self.0.len()..g.len() {
            let below = match g.node(NodeId(i as u32)) {
                Node::Object(entries) => {
                    ref_string(g, entries).is_some() || entries.iter().any(|(_, c)| self.0[c.0 as usize])
                }
                Node::Array(items) => items.iter().any(|c| self.0[c.0 as usize]),
                _ => false,
            };
            self.0.push(below);
        }
    }

    /// True when a reference sits at or below `id` (or `id` is newer than the bits).
    pub(crate) fn below(&self, id: NodeId) -> bool {
        self.0.get(id.0 as usize).copied().unwrap_or(true)
    }
}

/// Resolves the root document of `docs` into a graph.
pub fn resolve(docs: Documents) -> Graph {
    let Documents { root: root_url, arena, docs, bits, .. } = docs;
    let cyclic = cyclic_targets(arena.graph(), &bits, &docs, &root_url);
    let mut r = Resolver { arena, bits, docs, root_url, cyclic, expanded: HashMap::new(), ref_index: HashMap::new() };
    let root_raw = r.docs[&r.root_url];
    let root_url = r.root_url.clone();
    let root = match r.arena.graph().node(root_raw) {
        Node::Object(entries) => {
            let entries = entries.clone();
            let resolved: Vec<(Box<str>, NodeId)> = entries
                .into_vec()
                .into_iter()
                .map(|(k, v)| {
                    let id = if &*k == "components" { r.components(v) } else { r.value(v, &root_url) };
                    (k, id)
                })
                .collect();
            r.arena.push(Node::Object(resolved.into()))
        }
        _ => r.value(root_raw, &root_url),
    };
    let mut graph = r.arena.into_graph();
    graph.set_root(root);
    graph.retain_reachable()
}

struct Resolver {
    /// The documents as written; resolution adds its nodes here.
    arena: Interner,
    /// `$ref` bits of the documents' nodes.
    bits: RefBits,
    docs: HashMap<Url, NodeId>,
    root_url: Url,
    /// Targets on a reference cycle.
    cyclic: HashSet<TargetKey>,
    /// Expanded acyclic targets.
    expanded: HashMap<TargetKey, NodeId>,
    /// Declared [`Node::Ref`] index of each cyclic target.
    ref_index: HashMap<TargetKey, u32>,
}

impl Resolver {
    /// `components` entries are resolved as if referenced, so that a schema
    /// that refers to itself shows the cycle right in its own definition, and
    /// every use of a component shares the node of its definition.
    fn components(&mut self, v: NodeId) -> NodeId {
        let root = self.root_url.clone();
        let Node::Object(sections) = self.arena.graph().node(v) else {
            return self.value(v, &root);
        };
        let sections = sections.clone();
        let mut out = Vec::with_capacity(sections.len());
        for (section, entries) in sections.into_vec() {
            let id = match self.arena.graph().node(entries) {
                Node::Object(items) => {
                    let names: Vec<Box<str>> = items.iter().map(|(k, _)| k.clone()).collect();
                    let items: Vec<(Box<str>, NodeId)> = names
                        .into_iter()
                        .map(|name| {
                            let reference = format!(
                                "#/components/{}/{}",
                                escape_pointer_token(&section),
                                escape_pointer_token(&name)
                            );
                            let id = self.reference(&reference, &root);
                            (name, id)
                        })
                        .collect();
                    self.arena.push(Node::Object(items.into()))
                }
                _ => self.value(entries, &root),
            };
            out.push((section, id));
        }
        self.arena.push(Node::Object(out.into()))
    }

    fn value(&mut self, v: NodeId, base: &Url) -> NodeId {
        if !self.bits.below(v) {
            return v;
        }
        match self.arena.graph().node(v) {
            Node::Object(map) => {
                let map = map.clone();
                if let Some(reference) = ref_string(self.arena.graph(), &map).map(str::to_owned) {
                    let target = self.reference(&reference, base);
                    if map.len() == 1 {
                        return target;
                    }
                    // OpenAPI 3.1 allows siblings next to `$ref` (summary,
                    // description, …): they override the target's fields.
                    let siblings: Vec<(Box<str>, NodeId)> = map
                        .into_vec()
                        .into_iter()
                        .filter(|(k, _)| &**k != "$ref")
                        .map(|(k, v)| (k, self.value(v, base)))
                        .collect();
                    // A cyclic target is a `Ref` leaf: merge with the
                    // expansion behind it when that is already built.
                    let g = self.arena.graph();
                    let merge_with = match g.node(target) {
                        Node::Ref(r) => g.try_ref_target(*r).map(|t| t.node).unwrap_or(target),
                        _ => target,
                    };
                    return match g.node(merge_with) {
                        Node::Object(entries) => {
                            let mut merged: Vec<(Box<str>, NodeId)> = entries
                                .iter()
                                .filter(|(k, _)| !siblings.iter().any(|(s, _)| s == k))
                                .cloned()
                                .collect();
                            merged.extend(siblings);
                            self.arena.push(Node::Object(merged.into()))
                        }
                        _ => target,
                    };
                }
                let entries: Vec<(Box<str>, NodeId)> =
                    map.into_vec().into_iter().map(|(k, c)| (k, self.value(c, base))).collect();
                self.arena.push(Node::Object(entries.into()))
            }
            Node::Array(items) => {
                let items = items.clone();
                let ids: Vec<NodeId> = items.iter().map(|c| self.value(*c, base)).collect();
                self.arena.push(Node::Array(ids.into()))
            }
            _ => v,
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
            return self.arena.push(Node::Ref(*index));
        }
        let Some(doc) = self.docs.get(&key.doc).copied() else {
            return self.unresolved(reference, "the referenced document was not loaded");
        };
        let Some(target) = lookup_pointer(self.arena.graph(), doc, &key.pointer) else {
            return self.unresolved(reference, "nothing exists at this JSON pointer");
        };
        if self.cyclic.contains(&key) {
            let index = self.arena.graph_mut().declare_ref();
            self.ref_index.insert(key.clone(), index);
            let node = self.value(target, &key.doc);
            let name = self.canonical_name(&key);
            self.arena.graph_mut().set_ref_target(index, &name, node);
            return self.arena.push(Node::Ref(index));
        }
        let node = self.value(target, &key.doc);
        self.expanded.insert(key, node);
        node
    }

    /// The reference as written from the root document: `#/components/…` for
    /// the root itself, `schemas/pet.yaml#/Pet` for other files — the same
    /// whichever file the reference was written in.
    fn canonical_name(&self, key: &TargetKey) -> String {
        if key.doc == self.root_url {
            format!("#{}", key.pointer)
        } else {
            let doc = self.root_url.make_relative(&key.doc).unwrap_or_else(|| key.doc.to_string());
            format!("{doc}#{}", key.pointer)
        }
    }

    fn unresolved(&mut self, reference: &str, why: &str) -> NodeId {
        self.arena.push_value(&serde_json::json!({ "$unresolved": reference, "error": why }))
    }
}

/// Finds every reference target that lies on a reference cycle.
fn cyclic_targets(g: &Graph, bits: &RefBits, docs: &HashMap<Url, NodeId>, root: &Url) -> HashSet<TargetKey> {
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
    if let Some(doc) = docs.get(root) {
        collect_refs(g, bits, *doc, root, &mut found);
    }
    for k in found.drain(..) {
        intern(k, &mut keys, &mut edges, &mut queue);
    }
    while let Some(i) = queue.pop() {
        let key = keys[i].clone();
        if let Some(target) = docs.get(&key.doc).and_then(|d| lookup_pointer(g, *d, &key.pointer)) {
            collect_refs(g, bits, target, &key.doc, &mut found);
        }
        for k in found.drain(..) {
            let j = intern(k, &mut keys, &mut edges, &mut queue);
            edges[i].push(j);
        }
    }
    let on_cycle = tarjan_on_cycle(&edges);
    keys.into_iter().zip(on_cycle).filter(|(_, c)| *c).map(|(k, _)| k).collect()
}

/// The references at or below `v` (each distinct subtree walked once).
fn collect_refs(g: &Graph, bits: &RefBits, v: NodeId, base: &Url, out: &mut Vec<TargetKey>) {
    let mut seen = HashSet::new();
    let mut stack = vec![v];
    while let Some(id) = stack.pop() {
        if !bits.below(id) || !seen.insert(id) {
            continue;
        }
        match g.node(id) {
            Node::Object(entries) => {
                if let Some(r) = ref_string(g, entries) {
                    if let Ok((doc, pointer)) = split_reference(r, base) {
                        out.push(TargetKey { doc, pointer });
                    }
                }
                stack.extend(entries.iter().map(|(_, c)| *c));
            }
            Node::Array(items) => stack.extend(items.iter().copied()),
            _ => {}
        }
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

/// Follows an RFC 6901 JSON pointer (still `~`-escaped) from `doc`, a node
/// of documents as written (no `Ref` nodes), as `serde_json::Value::pointer` would.
pub fn lookup_pointer(g: &Graph, doc: NodeId, pointer: &str) -> Option<NodeId> {
    if pointer.is_empty() {
        return Some(doc);
    }
    let rest = pointer.strip_prefix('/')?;
    let mut id = doc;
    for token in rest.split('/') {
        let token = token.replace("~1", "/").replace("~0", "~");
        id = match g.node(id) {
            Node::Object(entries) => entries.iter().rev().find(|(k, _)| **k == *token)?.1,
            Node::Array(items) => {
                if token.starts_with('+') || (token.starts_with('0') && token.len() > 1) {
                    return None;
                }
                *items.get(token.parse::<usize>().ok()?)?
            }
            _ => return None,
        };
    }
    Some(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn resolve_json(v: Value) -> (Graph, Value) {
        let docs = Documents::for_tests(v);
        let g = resolve(docs);
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
        let g = resolve(docs);
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
