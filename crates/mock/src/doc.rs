//! Small readers over the resolved spec graph.
//!
//! [`Graph::get`](codemode_spec::Graph::get) follows [`Node::Ref`]s
//! transparently; the schema walkers need the raw child (to notice a
//! reference cycle), so they use [`raw_get`] and [`entries`] instead.

use codemode_spec::{Graph, Node, NodeId};
use serde_json::Value;

/// The entries of an object node (following references), or none.
pub(crate) fn entries(g: &Graph, id: NodeId) -> &[(Box<str>, NodeId)] {
    match g.node(g.deref(id)) {
        Node::Object(e) => e,
        _ => &[],
    }
}

/// The items of an array node (following references), or none.
pub(crate) fn items(g: &Graph, id: NodeId) -> &[NodeId] {
    match g.node(g.deref(id)) {
        Node::Array(a) => a,
        _ => &[],
    }
}

/// A key of an object node, without following a reference in the value.
pub(crate) fn raw_get(g: &Graph, id: NodeId, key: &str) -> Option<NodeId> {
    entries(g, id).iter().find(|(k, _)| &**k == key).map(|(_, v)| *v)
}

/// A string-valued key.
pub(crate) fn get_str<'g>(g: &'g Graph, id: NodeId, key: &str) -> Option<&'g str> {
    g.get(id, key).and_then(|v| g.as_str(v))
}

/// A boolean-valued key.
pub(crate) fn get_bool(g: &Graph, id: NodeId, key: &str) -> Option<bool> {
    match g.node(g.get(id, key)?) {
        Node::Bool(b) => Some(*b),
        _ => None,
    }
}

/// A number-valued key as `f64`.
pub(crate) fn get_f64(g: &Graph, id: NodeId, key: &str) -> Option<f64> {
    match g.node(g.get(id, key)?) {
        Node::Number(n) => n.as_f64(),
        _ => None,
    }
}

/// A non-negative integer-valued key (`3` or `3.0`).
pub(crate) fn get_count(g: &Graph, id: NodeId, key: &str) -> Option<u64> {
    match g.node(g.get(id, key)?) {
        Node::Number(n) => {
            n.as_u64().or_else(|| n.as_f64().filter(|f| *f >= 0.0 && f.fract() == 0.0).map(|f| f as u64))
        }
        _ => None,
    }
}

/// Strings of an array-valued key (`required`, `type: [..]`, ...).
pub(crate) fn get_strs<'g>(g: &'g Graph, id: NodeId, key: &str) -> Vec<&'g str> {
    match g.get(id, key) {
        Some(v) => match g.node(v) {
            Node::String(s) => vec![&**s],
            Node::Array(a) => a.iter().filter_map(|i| g.as_str(g.deref(*i))).collect(),
            _ => vec![],
        },
        None => vec![],
    }
}

/// True when the node is an object.
pub(crate) fn is_object(g: &Graph, id: NodeId) -> bool {
    matches!(g.node(g.deref(id)), Node::Object(_))
}

/// Expands a small subtree (an example, an enum value) to JSON. Cycles read
/// as `{"$circular": ..}` and the size is capped: examples are data, not
/// schemas, and are almost never cyclic.
pub(crate) fn value(g: &Graph, id: NodeId) -> Value {
    let mut budget = 200_000;
    g.to_value_bounded(id, &mut budget)
}

/// True when the subtree contains a `$circular`/`$ref` marker written by
/// [`value`] (so it is not plain data).
pub(crate) fn has_markers(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.contains_key("$circular") || m.contains_key("$ref") || m.values().any(has_markers),
        Value::Array(a) => a.iter().any(has_markers),
        _ => false,
    }
}

/// True when property `name` is declared with `flag: true` (`readOnly`,
/// `writeOnly`) by schema `id` or by any schema it combines (`allOf`,
/// `oneOf`, `anyOf`, a few levels deep): a `required` list often sits beside
/// a `oneOf` whose branches declare the properties.
pub(crate) fn property_flagged(g: &Graph, id: NodeId, name: &str, flag: &str) -> bool {
    fn walk(g: &Graph, id: NodeId, name: &str, flag: &str, depth: usize) -> bool {
        if let Some(p) = g.get(id, "properties").and_then(|ps| g.get(ps, name)) {
            if get_bool(g, p, flag) == Some(true) {
                return true;
            }
        }
        depth < 4
            && ["allOf", "oneOf", "anyOf"].iter().any(|k| {
                g.get(id, k).is_some_and(|list| items(g, list).iter().any(|b| walk(g, *b, name, flag, depth + 1)))
            })
    }
    walk(g, id, name, flag, 0)
}
