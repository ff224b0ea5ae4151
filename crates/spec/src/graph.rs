//! The resolved spec as a shared, acyclic graph of JSON values.
//!
//! Fully inlining every `$ref` turns a spec into a tree whose size can explode
//! (Stripe's 4 MB spec has 92 schemas on reference cycles; expanding them
//! path by path never ends in practice). Instead every reference target is
//! expanded exactly once and *shared*: every place that refers to it points at
//! the same [`NodeId`]. References into a reference cycle stay [`Node::Ref`]
//! leaves, resolved on access by whoever walks the graph, which also decides
//! where `{"$circular": ref}` goes: only where the walk would re-enter a target
//! already on its current path. In memory the graph is proportional to the
//! source; read through [`Graph::to_value`] it is the fully inlined tree.
//!
//! Invariant: a node's children always have smaller ids than the node itself,
//! so iterating `0..len` visits children before parents. Materialisers (for
//! example the sandbox turning the graph into frozen JavaScript objects) rely
//! on this to build each node exactly once without recursion.

use serde_json::{Map, Number, Value};

/// Index of a node in a [`Graph`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub u32);

/// One JSON value whose children are other nodes.
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// Any JSON number.
    Number(Number),
    /// A string.
    String(Box<str>),
    /// An array of child nodes.
    Array(Box<[NodeId]>),
    /// An object: keys in document order, each with its child node.
    Object(Box<[(Box<str>, NodeId)]>),
    /// A reference into a reference cycle: index into [`Graph::ref_target`].
    /// Read it as the target node, unless that target is already being
    /// expanded on the current path, in which case it reads as
    /// `{"$circular": <reference>}`.
    Ref(u32),
}

/// The target of a [`Node::Ref`].
#[derive(Clone, Debug, PartialEq)]
pub struct RefTarget {
    /// The reference as written in the spec, e.g. `#/components/schemas/Node`.
    pub reference: Box<str>,
    /// The expanded target.
    pub node: NodeId,
}

/// An append-only arena of [`Node`]s with one root.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    nodes: Vec<Node>,
    refs: Vec<Option<RefTarget>>,
    root: Option<NodeId>,
}

impl Graph {
    /// Appends a node whose children (if any) are already in the graph and
    /// returns its id.
    ///
    /// # Panics
    /// If a child id does not precede the new node (the ordering invariant).
    pub fn push(&mut self, node: Node) -> NodeId {
        let id = NodeId(u32::try_from(self.nodes.len()).expect("spec graph exceeds 2^32 nodes"));
        debug_assert!(self.children(&node).all(|c| c < id));
        self.nodes.push(node);
        id
    }

    /// Copies a plain JSON value into the graph (no reference handling).
    pub fn push_value(&mut self, value: &Value) -> NodeId {
        push_value_with(value, &mut |node| self.push(node))
    }

    fn children<'a>(&self, node: &'a Node) -> impl Iterator<Item = NodeId> + 'a {
        let (arr, obj): (&[NodeId], &[(Box<str>, NodeId)]) = match node {
            Node::Array(a) => (a, &[]),
            Node::Object(o) => (&[], o),
            _ => (&[], &[]),
        };
        arr.iter().copied().chain(obj.iter().map(|(_, id)| *id))
    }

    /// Declares a new cyclic reference whose target is set later with
    /// [`Graph::set_ref_target`]; returns its index for [`Node::Ref`].
    pub fn declare_ref(&mut self) -> u32 {
        self.refs.push(None);
        (self.refs.len() - 1) as u32
    }

    /// Sets the target of a declared reference.
    pub fn set_ref_target(&mut self, index: u32, reference: &str, node: NodeId) {
        self.refs[index as usize] = Some(RefTarget { reference: reference.into(), node });
    }

    /// The target of a [`Node::Ref`].
    ///
    /// # Panics
    /// If the reference was declared but its target never set (a resolver bug).
    pub fn ref_target(&self, index: u32) -> &RefTarget {
        self.refs[index as usize].as_ref().expect("reference target set")
    }

    /// The target of a [`Node::Ref`], or `None` while it is still being built.
    pub fn try_ref_target(&self, index: u32) -> Option<&RefTarget> {
        self.refs.get(index as usize).and_then(Option::as_ref)
    }

    /// Number of cyclic references (the length of the [`Node::Ref`] table).
    pub fn ref_count(&self) -> usize {
        self.refs.len()
    }

    /// Follows [`Node::Ref`]s to the node they stand for.
    ///
    /// A cycle made of references alone (`A: {$ref: B}`, `B: {$ref: A}`)
    /// stands for no node: after following every reference once, the `Ref`
    /// node reached is returned (it reads as `{"$circular": ref}`).
    pub fn deref(&self, mut id: NodeId) -> NodeId {
        for _ in 0..self.refs.len() {
            match self.node(id) {
                Node::Ref(r) => id = self.ref_target(*r).node,
                _ => break,
            }
        }
        id
    }

    /// Marks `id` as the document root.
    pub fn set_root(&mut self, id: NodeId) {
        self.root = Some(id);
    }

    /// The document root.
    ///
    /// # Panics
    /// If no root was set.
    pub fn root(&self) -> NodeId {
        self.root.expect("graph has no root")
    }

    /// The node with this id.
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.0 as usize]
    }

    /// All nodes, children before parents.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True when the graph holds no node.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Looks up a key of an object node (following references).
    pub fn get(&self, id: NodeId, key: &str) -> Option<NodeId> {
        match self.node(self.deref(id)) {
            Node::Object(entries) => entries.iter().find(|(k, _)| &**k == key).map(|(_, v)| self.deref(*v)),
            _ => None,
        }
    }

    /// The string value of a node, if it is a string.
    pub fn as_str(&self, id: NodeId) -> Option<&str> {
        match self.node(id) {
            Node::String(s) => Some(s),
            _ => None,
        }
    }

    /// Keeps only what the root reaches (through children and reference
    /// targets), renumbered in the same order, so children still precede
    /// their parents. Building leaves garbage behind (the `{"$ref": ..}`
    /// objects a resolution replaced); readers and the packed form should
    /// not pay for it.
    pub fn retain_reachable(self) -> Graph {
        let Some(root) = self.root else { return self };
        let n = self.nodes.len();
        let mut keep = vec![false; n];
        let mut keep_ref = vec![false; self.refs.len()];
        let mut stack = vec![root];
        while let Some(id) = stack.pop() {
            if std::mem::replace(&mut keep[id.0 as usize], true) {
                continue;
            }
            match &self.nodes[id.0 as usize] {
                Node::Array(items) => stack.extend(items.iter().copied()),
                Node::Object(entries) => stack.extend(entries.iter().map(|(_, c)| *c)),
                Node::Ref(r) => {
                    keep_ref[*r as usize] = true;
                    if let Some(t) = &self.refs[*r as usize] {
                        stack.push(t.node);
                    }
                }
                _ => {}
            }
        }
        let renumber = |kept: &[bool]| {
            let mut next = 0u32;
            kept.iter()
                .map(|k| {
                    let id = next;
                    next += u32::from(*k);
                    id
                })
                .collect::<Vec<u32>>()
        };
        let new_id = renumber(&keep);
        let new_ref = renumber(&keep_ref);
        let map = |id: NodeId| NodeId(new_id[id.0 as usize]);
        let nodes = self
            .nodes
            .into_iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(node, _)| match node {
                Node::Array(items) => Node::Array(items.iter().map(|c| map(*c)).collect()),
                Node::Object(mut entries) => {
                    entries.iter_mut().for_each(|(_, c)| *c = map(*c));
                    Node::Object(entries)
                }
                Node::Ref(r) => Node::Ref(new_ref[r as usize]),
                other => other,
            })
            .collect();
        let refs = self
            .refs
            .into_iter()
            .zip(&keep_ref)
            .filter(|(_, k)| **k)
            .map(|(t, _)| t.map(|t| RefTarget { reference: t.reference, node: map(t.node) }))
            .collect();
        Graph { nodes, refs, root: Some(map(root)) }
    }

    /// Expands a node into a plain JSON tree, with `{"$circular": ref}` where
    /// a reference would re-enter a target already on the current path.
    ///
    /// Meant for tests and small subtrees: the tree of a large, cyclic spec is
    /// exactly the blow-up the graph avoids. [`Graph::to_value_bounded`]
    /// caps the number of nodes written.
    pub fn to_value(&self, id: NodeId) -> Value {
        let mut budget = usize::MAX;
        self.to_value_bounded(id, &mut budget)
    }

    /// [`Graph::to_value`] with a node budget: once `budget` nodes are
    /// written, each reference not yet expanded is written as
    /// `{"$ref": ref, "$truncated": true}` ([`TRUNCATED`]) instead, so a
    /// reader can tell a cut from a reference the spec left unresolved
    /// (see [`replace_truncated`]).
    pub fn to_value_bounded(&self, id: NodeId, budget: &mut usize) -> Value {
        let mut stack = Vec::new();
        self.expand(id, &mut stack, budget)
    }

    fn expand(&self, id: NodeId, stack: &mut Vec<u32>, budget: &mut usize) -> Value {
        *budget = budget.saturating_sub(1);
        match self.node(id) {
            Node::Null => Value::Null,
            Node::Bool(b) => Value::Bool(*b),
            Node::Number(n) => Value::Number(n.clone()),
            Node::String(s) => Value::String(s.to_string()),
            Node::Array(items) => Value::Array(items.iter().map(|c| self.expand(*c, stack, budget)).collect()),
            Node::Object(entries) => {
                let mut map = Map::with_capacity(entries.len());
                for (k, c) in entries.iter() {
                    map.insert(k.to_string(), self.expand(*c, stack, budget));
                }
                Value::Object(map)
            }
            Node::Ref(r) => {
                let target = self.ref_target(*r);
                if stack.contains(r) {
                    return serde_json::json!({ "$circular": &*target.reference });
                }
                if *budget == 0 {
                    return serde_json::json!({ "$ref": &*target.reference, TRUNCATED: true });
                }
                stack.push(*r);
                let v = self.expand(target.node, stack, budget);
                stack.pop();
                v
            }
        }
    }
}

/// The key that marks a reference left unexpanded because the budget of
/// [`Graph::to_value_bounded`] ran out.
pub const TRUNCATED: &str = "$truncated";

/// Replaces every truncation marker in `v` (see [`Graph::to_value_bounded`])
/// with `with(reference)`: for callers whose readers would take the marker's
/// `$ref` for a reference of their own (a JSON Schema, a TypeScript type).
pub fn replace_truncated(v: &mut Value, with: &dyn Fn(&str) -> Value) {
    let cut = match (v.get(TRUNCATED), v.get("$ref")) {
        (Some(Value::Bool(true)), Some(Value::String(reference))) => Some(with(reference)),
        _ => None,
    };
    if let Some(replacement) = cut {
        *v = replacement;
        return;
    }
    match v {
        Value::Object(map) => map.values_mut().for_each(|c| replace_truncated(c, with)),
        Value::Array(items) => items.iter_mut().for_each(|c| replace_truncated(c, with)),
        _ => {}
    }
}

/// Adds `value` bottom-up through `push` (children before their parent, as
/// every graph builder needs): the one conversion of a JSON value into
/// nodes, whether they are pushed as they come ([`Graph::push_value`]) or
/// hash-consed ([`crate::intern::Interner::push_value`]).
pub(crate) fn push_value_with(value: &Value, push: &mut impl FnMut(Node) -> NodeId) -> NodeId {
    let node = match value {
        Value::Null => Node::Null,
        Value::Bool(b) => Node::Bool(*b),
        Value::Number(n) => Node::Number(n.clone()),
        Value::String(s) => Node::String(s.as_str().into()),
        Value::Array(items) => Node::Array(items.iter().map(|v| push_value_with(v, push)).collect()),
        Value::Object(map) => {
            Node::Object(map.iter().map(|(k, v)| (k.as_str().into(), push_value_with(v, push))).collect())
        }
    };
    push(node)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn push_value_round_trips() {
        let v = json!({"a": [1, "x", null, true, {"b": 2.5}], "c": {}});
        let mut g = Graph::default();
        let root = g.push_value(&v);
        g.set_root(root);
        assert_eq!(g.to_value(root), v);
    }

    #[test]
    fn deref_ends_on_a_cycle_of_references_alone() {
        // Found by fuzz/spec_load: `A: {$ref: B}, B: {$ref: A}` resolves to
        // two `Ref`s targeting each other, and `deref` looped forever (the
        // mock's readers call it on every schema).
        let mut g = Graph::default();
        let a = g.declare_ref();
        let b = g.declare_ref();
        let ra = g.push(Node::Ref(a));
        let rb = g.push(Node::Ref(b));
        g.set_ref_target(a, "#/components/schemas/A", rb);
        g.set_ref_target(b, "#/components/schemas/B", ra);
        g.set_root(ra);
        assert!(matches!(g.node(g.deref(ra)), Node::Ref(_)));
        assert!(matches!(g.node(g.deref(rb)), Node::Ref(_)));
        assert_eq!(g.get(ra, "x"), None);
        // A chain that ends still ends where it should.
        let leaf = g.push_value(&json!({"type": "string"}));
        let c = g.declare_ref();
        let rc = g.push(Node::Ref(c));
        g.set_ref_target(c, "#/c", leaf);
        assert_eq!(g.deref(rc), leaf);
    }

    #[test]
    fn an_exhausted_budget_is_marked_as_a_cut() {
        let mut g = Graph::default();
        let r = g.declare_ref();
        let leaf = g.push_value(&json!({"type": "string"}));
        let rr = g.push(Node::Ref(r));
        g.set_ref_target(r, "#/components/schemas/S", leaf);
        let root = g.push(Node::Array(vec![rr, rr].into()));
        g.set_root(root);
        let mut budget = 3;
        let mut v = g.to_value_bounded(root, &mut budget);
        assert_eq!(
            v,
            json!([{"type": "string"}, {"$ref": "#/components/schemas/S", "$truncated": true}]),
            "the second use is past the budget"
        );
        replace_truncated(&mut v, &|r| json!({"description": format!("{r}: cut")}));
        assert_eq!(v[1], json!({"description": "#/components/schemas/S: cut"}));
        assert_eq!(v[0], json!({"type": "string"}));
    }

    #[test]
    fn retain_reachable_drops_garbage_and_keeps_reading_the_same() {
        let mut g = Graph::default();
        let garbage = g.push_value(&json!({"$ref": "#/x"}));
        let r = g.declare_ref();
        let _unused = g.declare_ref();
        let rr = g.push(Node::Ref(r));
        let s = g.push_value(&json!({"type": "object"}));
        let more_garbage = g.push_value(&json!([1, 2, 3]));
        let node = g.push(Node::Object(vec![("self".into(), rr), ("s".into(), s)].into()));
        g.set_ref_target(r, "#/components/schemas/N", node);
        let root = g.push(Node::Array(vec![rr, s].into()));
        g.set_root(root);
        let before = g.to_value(g.root());
        let compact = g.retain_reachable();
        assert_eq!(compact.to_value(compact.root()), before);
        assert!(compact.len() < 9, "{} nodes", compact.len());
        assert_eq!(compact.ref_count(), 1);
        assert!(!compact.nodes().iter().any(|n| matches!(n, Node::Array(a) if a.len() == 3)));
        let _ = (garbage, more_garbage);
        for (i, n) in compact.nodes().iter().enumerate() {
            assert!(compact.children(n).all(|c| (c.0 as usize) < i), "children first");
        }
    }

    #[test]
    fn shared_nodes_count_once_per_use_when_inlined() {
        let mut g = Graph::default();
        let s = g.push_value(&json!({"type": "string"}));
        let root = g.push(Node::Object(vec![("a".into(), s), ("b".into(), s)].into()));
        g.set_root(root);
        let expected = json!({"a": {"type": "string"}, "b": {"type": "string"}});
        assert_eq!(g.to_value(root), expected);
    }
}
