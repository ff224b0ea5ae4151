//! Hash-consing: a [`Graph`] built so that every distinct subtree is stored once.
//!
//! Generators often publish specs fully dereferenced: GitHub's
//! `api.github.com.deref.json` is 73 MB and 1.2 M JSON values, but most of them
//! are copies of the same few thousand schemas. Reading such a document into a
//! tree and then into the graph held every copy twice (7.6 s and 739 MB before
//! the first request). The [`Interner`] instead builds the graph as the JSON
//! is parsed (no tree in between) and looks every new node up before storing
//! it: children are interned first, so two equal subtrees already have equal
//! child ids and comparing their roots costs only their width. A copy costs a
//! hash lookup and no memory.
//!
//! Sharing is invisible to readers: a graph's nodes are immutable and already
//! shared where a `$ref` was used twice, and every reader expands a node
//! the same way wherever it sits (cycle markers depend on the reader's path,
//! not on the node).

use std::hash::{BuildHasher, Hash, Hasher};

use hashbrown::HashTable;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Number, Value};

use crate::graph::{Graph, Node, NodeId};

/// Builds a [`Graph`] in which equal nodes are one node.
pub struct Interner {
    graph: Graph,
    /// Ids of the interned nodes, keyed by the node's hash.
    table: HashTable<NodeId>,
    hasher: foldhash::fast::FixedState,
}

impl Default for Interner {
    fn default() -> Self {
        Interner { graph: Graph::default(), table: HashTable::new(), hasher: foldhash::fast::FixedState::with_seed(0) }
    }
}

impl Interner {
    /// An empty interner.
    pub fn new() -> Self {
        Self::default()
    }

    /// The graph built so far.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The graph, for what only a builder may do ([`Graph::declare_ref`],
    /// [`Graph::set_ref_target`], [`Graph::set_root`]). Nodes pushed
    /// through it directly are not interned.
    pub fn graph_mut(&mut self) -> &mut Graph {
        &mut self.graph
    }

    /// The graph, dropping the lookup table.
    pub fn into_graph(self) -> Graph {
        self.graph
    }

    /// Returns the id of a node equal to `node`, storing it first if there is none.
    /// Children must already be in the graph (see [`Graph::push`]).
    pub fn push(&mut self, node: Node) -> NodeId {
        let hash = hash_node(&self.hasher, &node);
        let nodes = self.graph.nodes();
        if let Some(id) = self.table.find(hash, |id| same(&nodes[id.0 as usize], &node)) {
            return *id;
        }
        let id = self.graph.push(node);
        let (graph, hasher) = (&self.graph, &self.hasher);
        self.table.insert_unique(hash, id, |id| hash_node(hasher, graph.node(*id)));
        id
    }

    /// Interns a JSON value (no reference handling).
    pub fn push_value(&mut self, value: &Value) -> NodeId {
        crate::graph::push_value_with(value, &mut |node| self.push(node))
    }

    /// Parses one JSON document straight into the graph and returns its root.
    ///
    /// Reads as [`serde_json::Value`] would: numbers beyond 64 bits as the
    /// nearest `f64`, a repeated key keeps its first position and its last
    /// value, at most 128 levels of nesting, nothing but whitespace after
    /// the value.
    pub fn parse_json(&mut self, bytes: &[u8]) -> Result<NodeId, serde_json::Error> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let root = Seed(self).deserialize(&mut de)?;
        de.end()?;
        Ok(root)
    }
}

/// Equality that tells apart what JSON text tells apart: `0.0` and `-0.0`,
/// `1` and `1.0` are different numbers.
fn same(a: &Node, b: &Node) -> bool {
    match (a, b) {
        (Node::Number(x), Node::Number(y)) => number_key(x) == number_key(y),
        _ => a == b,
    }
}

#[derive(PartialEq, Eq, Hash)]
enum NumberKey {
    Unsigned(u64),
    Signed(i64),
    Float(u64),
}

fn number_key(n: &Number) -> NumberKey {
    if let Some(u) = n.as_u64() {
        NumberKey::Unsigned(u)
    } else if let Some(i) = n.as_i64() {
        NumberKey::Signed(i)
    } else {
        NumberKey::Float(n.as_f64().unwrap_or(f64::NAN).to_bits())
    }
}

fn hash_node(state: &foldhash::fast::FixedState, node: &Node) -> u64 {
    let mut h = state.build_hasher();
    std::mem::discriminant(node).hash(&mut h);
    match node {
        Node::Null => {}
        Node::Bool(b) => b.hash(&mut h),
        Node::Number(n) => number_key(n).hash(&mut h),
        Node::String(s) => s.hash(&mut h),
        Node::Array(items) => items.hash(&mut h),
        Node::Object(entries) => entries.hash(&mut h),
        Node::Ref(r) => r.hash(&mut h),
    }
    h.finish()
}

/// Objects at least this wide find a repeated key through a hash set rather
/// than by scanning (a hostile document may have one object with a million keys).
const SCAN_LIMIT: usize = 32;

/// The serde seed that interns one JSON value and returns its id.
struct Seed<'a>(&'a mut Interner);

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = NodeId;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<NodeId, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = NodeId;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<NodeId, E> {
        Ok(self.0.push(Node::Null))
    }

    fn visit_bool<E>(self, b: bool) -> Result<NodeId, E> {
        Ok(self.0.push(Node::Bool(b)))
    }

    fn visit_i64<E>(self, i: i64) -> Result<NodeId, E> {
        Ok(self.0.push(Node::Number(i.into())))
    }

    fn visit_u64<E>(self, u: u64) -> Result<NodeId, E> {
        Ok(self.0.push(Node::Number(u.into())))
    }

    fn visit_f64<E>(self, f: f64) -> Result<NodeId, E> {
        // serde_json only hands over finite numbers; `Value` maps others to null.
        Ok(self.0.push(Number::from_f64(f).map_or(Node::Null, Node::Number)))
    }

    fn visit_str<E>(self, s: &str) -> Result<NodeId, E> {
        Ok(self.0.push(Node::String(s.into())))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NodeId, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(id) = seq.next_element_seed(Seed(&mut *self.0))? {
            items.push(id);
        }
        Ok(self.0.push(Node::Array(items.into())))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NodeId, A::Error> {
        let mut entries: Vec<(Box<str>, NodeId)> = Vec::new();
        let mut wide: Option<std::collections::HashMap<Box<str>, usize>> = None;
        while let Some(key) = map.next_key::<KeyText>()? {
            let value = map.next_value_seed(Seed(&mut *self.0))?;
            let key = key.0;
            let existing = match &wide {
                Some(index) => index.get(&key).copied(),
                None => entries.iter().position(|(k, _)| *k == key),
            };
            match existing {
                // As serde_json's ordered map: first position, last value.
                Some(i) => entries[i].1 = value,
                None => {
                    if let Some(index) = &mut wide {
                        index.insert(key.clone(), entries.len());
                    }
                    entries.push((key, value));
                    if wide.is_none() && entries.len() >= SCAN_LIMIT {
                        wide = Some(entries.iter().enumerate().map(|(i, (k, _))| (k.clone(), i)).collect());
                    }
                }
            }
        }
        Ok(self.0.push(Node::Object(entries.into())))
    }
}

/// An object key, read without an intermediate `String` where the input allows.
struct KeyText(Box<str>);

impl<'de> de::Deserialize<'de> for KeyText {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = KeyText;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object key")
            }
            fn visit_str<E>(self, s: &str) -> Result<KeyText, E> {
                Ok(KeyText(s.into()))
            }
            fn visit_string<E>(self, s: String) -> Result<KeyText, E> {
                Ok(KeyText(s.into_boxed_str()))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn round_trip(text: &str) -> (Graph, NodeId) {
        let mut i = Interner::new();
        let root = i.parse_json(text.as_bytes()).unwrap();
        (i.into_graph(), root)
    }

    #[test]
    fn reads_as_serde_json_reads() {
        for text in [
            r#"{"a": [1, -2, 3.5, 1e300, 18446744073709551616, "x", null, true, {"b": {}}], "c": [], "d": "\u00e9\n"}"#,
            r#"[0, -0, 0.0, -0.0, 1, 1.0]"#,
            r#"{"k": 1, "j": 2, "k": 3}"#,
            r#""just a string""#,
        ] {
            let (g, root) = round_trip(text);
            let expected: Value = serde_json::from_str(text).unwrap();
            let got = g.to_value(root);
            assert_eq!(got, expected, "{text}");
            assert_eq!(serde_json::to_string(&got).unwrap(), serde_json::to_string(&expected).unwrap(), "{text}");
        }
    }

    #[test]
    fn equal_subtrees_are_one_node_and_different_numbers_are_not() {
        let schema = json!({"type": "object", "properties": {"id": {"type": "integer"}, "name": {"type": "string"}}});
        let doc = json!({"a": schema, "b": [schema, schema], "z": [0.0, -0.0, 0, 1, 1.0]});
        let text = serde_json::to_string(&doc).unwrap();
        let (g, root) = round_trip(&text);
        let b = g.get(root, "b").unwrap();
        let Node::Array(items) = g.node(b) else { panic!() };
        assert_eq!(items[0], items[1]);
        assert_eq!(Some(items[0]), g.get(root, "a"));
        let Node::Array(z) = g.node(g.get(root, "z").unwrap()) else { panic!() };
        let distinct: std::collections::HashSet<_> = z.iter().collect();
        assert_eq!(distinct.len(), 5, "0.0, -0.0, 0, 1 and 1.0 are five numbers");
        assert_eq!(serde_json::to_string(&g.to_value(root)).unwrap(), text);
        // "integer", "string", "object", "type" … each once.
        let strings = g.nodes().iter().filter(|n| matches!(n, Node::String(s) if &**s == "integer")).count();
        assert_eq!(strings, 1);
    }

    #[test]
    fn errors_say_where_and_trailing_text_is_refused() {
        let mut i = Interner::new();
        let e = i.parse_json(b"{\n  \"a\": 1,\n}").unwrap_err();
        assert!(e.to_string().contains("line 3"), "{e}");
        assert!(i.parse_json(b"{} {}").is_err());
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert!(i.parse_json(deep.as_bytes()).unwrap_err().to_string().contains("recursion"));
    }

    #[test]
    fn a_wide_object_with_repeated_keys_keeps_first_positions() {
        let mut text = String::from("{");
        for k in 0..100 {
            text.push_str(&format!("\"k{k}\": {k},"));
        }
        text.push_str("\"k5\": \"last\", \"k99\": null}");
        let (g, root) = round_trip(&text);
        let expected: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(serde_json::to_string(&g.to_value(root)).unwrap(), serde_json::to_string(&expected).unwrap());
    }
}
