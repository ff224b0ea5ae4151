//! A compact, read-only binary form of a resolved [`Graph`], read in place.
//!
//! The host serialises each resolved graph once with [`pack`]; the bytes can
//! then be shared (a sealed memfd mapped read-only by many sandbox workers, or
//! simply an `Arc<[u8]>` in-process) and read directly through
//! [`PackedGraph`], with no deserialisation step and no per-process copy.
//! [`PackedGraph::open`] checks only the header and that every section lies
//! inside the buffer; every later read is bounds-checked, so corrupt bytes
//! give `None` (or a placeholder, see [`PackedEntries`]) but never a panic.
//!
//! # Format (version 1)
//!
//! All integers are little-endian `u32` unless noted; every section starts at
//! an offset that is a multiple of 8 (padding is zero), and the whole buffer
//! is padded to a multiple of 8. Readers use `u32::from_le_bytes` on slices
//! and make no alignment assumptions. Sizes and offsets are `u32`, so a packed
//! graph is at most 4 GiB.
//!
//! Header, 80 bytes:
//!
//! | offset | field |
//! |---|---|
//! | 0 | magic `b"CMPGRAPH"` (8 bytes) |
//! | 8 | format version (`1`) |
//! | 12 | header length (`80`) |
//! | 16 | total length of the packed graph in bytes |
//! | 20 | root node id |
//! | 24 | node count `N` |
//! | 28 | child count `C` (array children, all arrays together) |
//! | 32 | entry count `E` (object entries, all objects together) |
//! | 36 | reference count `R` |
//! | 40 | string count `S` (distinct strings) |
//! | 44 | string bytes `B` |
//! | 48 | offset of the node records |
//! | 52 | offset of the child table |
//! | 56 | offset of the entry table |
//! | 60 | offset of the reference table |
//! | 64 | offset of the `has_ref_below` bitset |
//! | 68 | offset of the string index |
//! | 72 | offset of the string bytes |
//! | 76 | reserved (`0`) |
//!
//! Sections, in this order:
//!
//! - **Nodes**: `N` records of 12 bytes, `tag, a, b`:
//!   `0` null; `1` bool (`a` = 0 or 1); `2` unsigned integer, `3` negative
//!   integer, `4` float (`a` = low and `b` = high 32 bits of the `u64`, `i64`
//!   or `f64` bit pattern, so JSON numbers round-trip exactly); `5` string
//!   (`a` = string id); `6` array (`a` = first index in the child table,
//!   `b` = length); `7` object (`a` = first index in the entry table, `b` =
//!   length); `8` reference (`a` = index in the reference table).
//!   As in [`Graph`], a node's children have smaller ids than the node.
//! - **Children**: `C` node ids.
//! - **Entries**: `E` pairs `(key string id, child node id)`, keys in
//!   document order.
//! - **References**: `R` pairs `(target node id, reference string id)`;
//!   `u32::MAX` in both for a reference whose target was never set.
//! - **Bitset**: `ceil(N / 32)` words; bit `i % 32` of word `i / 32` is set
//!   when node `i` is a reference or one sits anywhere below it.
//! - **String index**: `S + 1` byte offsets into the string bytes; string `i`
//!   is `bytes[index[i]..index[i + 1]]`, UTF-8.
//! - **String bytes**: `B` bytes. Every distinct string (object keys, string
//!   values and reference texts alike) is stored once.

use std::collections::HashMap;
use std::fmt;

use serde_json::{Map, Number, Value};

use crate::graph::{Graph, Node, NodeId};

const MAGIC: &[u8; 8] = b"CMPGRAPH";
const VERSION: u32 = 1;
const HEADER_LEN: usize = 80;
const NODE_LEN: usize = 12;
const NONE: u32 = u32::MAX;
/// What an object key reads as when its bytes are corrupt.
const CORRUPT_KEY: &str = "\u{FFFD}";

const TAG_NULL: u32 = 0;
const TAG_BOOL: u32 = 1;
const TAG_U64: u32 = 2;
const TAG_I64: u32 = 3;
const TAG_F64: u32 = 4;
const TAG_STRING: u32 = 5;
const TAG_ARRAY: u32 = 6;
const TAG_OBJECT: u32 = 7;
const TAG_REF: u32 = 8;

/// Why a buffer is not a packed graph [`PackedGraph::open`] can read.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    /// Shorter than the fixed header.
    #[error("packed graph too short: {len} bytes, the header alone is {HEADER_LEN}")]
    TooShort {
        /// Length of the buffer.
        len: usize,
    },
    /// The first eight bytes are not the packed-graph magic.
    #[error("not a packed spec graph (bad magic)")]
    BadMagic,
    /// Written by a different version of the format.
    #[error("packed graph format version {found} is not supported (expected {VERSION})")]
    UnsupportedVersion {
        /// The version in the header.
        found: u32,
    },
    /// The header is inconsistent with itself.
    #[error("corrupt packed graph header: {0}")]
    BadHeader(&'static str),
    /// The buffer ends before the length the header declares.
    #[error("packed graph truncated: header declares {expected} bytes, buffer has {actual}")]
    Truncated {
        /// Length declared in the header.
        expected: usize,
        /// Length of the buffer.
        actual: usize,
    },
    /// A section does not lie inside the packed graph, or is misaligned.
    #[error("corrupt packed graph: {section} section (offset {offset}, {len} bytes) is misaligned or outside the {total} bytes")]
    BadSection {
        /// Which section.
        section: &'static str,
        /// Its declared offset.
        offset: usize,
        /// Its size implied by the counts.
        len: u64,
        /// The declared total length.
        total: usize,
    },
    /// The root id is not a node.
    #[error("corrupt packed graph: root {root} is not one of the {nodes} nodes")]
    BadRoot {
        /// The root id in the header.
        root: u32,
        /// The node count.
        nodes: u32,
    },
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// The deduplicated string table.
#[derive(Clone, Copy)]
struct Strings<'a> {
    index: &'a [u8],
    bytes: &'a [u8],
}

impl<'a> Strings<'a> {
    fn get(&self, id: u32) -> Option<&'a str> {
        let at = (id as usize).checked_mul(4)?;
        let start = read_u32(self.index, at)? as usize;
        let end = read_u32(self.index, at.checked_add(4)?)? as usize;
        std::str::from_utf8(self.bytes.get(start..end)?).ok()
    }
}

/// A packed graph, read in place from borrowed bytes (see the module docs).
#[derive(Clone, Copy)]
pub struct PackedGraph<'a> {
    root: u32,
    nodes: &'a [u8],
    children: &'a [u8],
    entries: &'a [u8],
    refs: &'a [u8],
    bits: &'a [u8],
    strings: Strings<'a>,
}

impl fmt::Debug for PackedGraph<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PackedGraph")
            .field("root", &self.root)
            .field("nodes", &self.len())
            .field("refs", &self.ref_count())
            .finish_non_exhaustive()
    }
}

/// One node of a [`PackedGraph`], borrowing its bytes.
#[derive(Clone, Debug)]
pub enum PackedNode<'a> {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// Any JSON number, as JavaScript sees it (integers beyond 2^53 lose
    /// precision here; [`PackedGraph::to_value`] keeps them exact).
    Number(f64),
    /// A string.
    String(&'a str),
    /// An array: its child node ids.
    Array(PackedItems<'a>),
    /// An object: its keys in document order, each with its child node id.
    Object(PackedEntries<'a>),
    /// A reference into a reference cycle: index for
    /// [`PackedGraph::ref_target`] (read it as in [`Node::Ref`]).
    Ref(u32),
}

/// The child node ids of a packed array, in order.
#[derive(Clone, Debug)]
pub struct PackedItems<'a> {
    /// Exactly the remaining ids, 4 bytes each.
    ids: &'a [u8],
}

impl PackedItems<'_> {
    /// Number of (remaining) items.
    pub fn len(&self) -> usize {
        self.ids.len() / 4
    }

    /// True when no item remains.
    pub fn is_empty(&self) -> bool {
        self.ids.len() < 4
    }

    /// The id of (remaining) item `i`.
    pub fn get(&self, i: usize) -> Option<u32> {
        read_u32(self.ids, i.checked_mul(4)?)
    }
}

impl Iterator for PackedItems<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        let id = read_u32(self.ids, 0)?;
        self.ids = &self.ids[4..];
        Some(id)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.len(), Some(self.len()))
    }
}

impl ExactSizeIterator for PackedItems<'_> {}

/// The entries of a packed object, in document order: `(key, child id)`.
///
/// A key whose bytes are corrupt (not UTF-8, or outside the string table)
/// reads as `"\u{FFFD}"`; a graph written by [`pack`] never has one.
#[derive(Clone)]
pub struct PackedEntries<'a> {
    /// Exactly the remaining entries, 8 bytes each.
    entries: &'a [u8],
    strings: Strings<'a>,
}

impl fmt::Debug for PackedEntries<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.clone()).finish()
    }
}

impl PackedEntries<'_> {
    /// Number of (remaining) entries.
    pub fn len(&self) -> usize {
        self.entries.len() / 8
    }

    /// True when no entry remains.
    pub fn is_empty(&self) -> bool {
        self.entries.len() < 8
    }
}

impl<'a> PackedEntries<'a> {
    /// The same entries as `(key string id, child)`: a reader that caches
    /// keys by id (see [`PackedGraph::string`]) converts each distinct key
    /// once instead of once per object.
    pub fn key_ids(self) -> impl ExactSizeIterator<Item = (u32, u32)> + 'a {
        let n = self.entries.len() / 8;
        let entries = self.entries;
        (0..n).map(move |i| {
            (read_u32(entries, i * 8).unwrap_or(u32::MAX), read_u32(entries, i * 8 + 4).unwrap_or(u32::MAX))
        })
    }
}

impl<'a> Iterator for PackedEntries<'a> {
    type Item = (&'a str, u32);

    fn next(&mut self) -> Option<(&'a str, u32)> {
        let key = read_u32(self.entries, 0)?;
        let child = read_u32(self.entries, 4)?;
        self.entries = &self.entries[8..];
        Some((self.strings.get(key).unwrap_or(CORRUPT_KEY), child))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.len(), Some(self.len()))
    }
}

impl ExactSizeIterator for PackedEntries<'_> {}

/// The raw record of one node.
#[derive(Clone, Copy)]
struct Record {
    tag: u32,
    a: u32,
    b: u32,
}

impl Record {
    fn bits64(&self) -> u64 {
        u64::from(self.a) | (u64::from(self.b) << 32)
    }
}

impl<'a> PackedGraph<'a> {
    /// Checks magic, version and that every section lies inside `bytes`
    /// (O(sections), not O(nodes)); the contents are checked on each read.
    pub fn open(bytes: &'a [u8]) -> Result<PackedGraph<'a>, PackError> {
        if bytes.len() < HEADER_LEN {
            return Err(PackError::TooShort { len: bytes.len() });
        }
        if &bytes[..8] != MAGIC {
            return Err(PackError::BadMagic);
        }
        let h = |i: usize| read_u32(bytes, 8 + 4 * i).unwrap_or(0);
        let version = h(0);
        if version != VERSION {
            return Err(PackError::UnsupportedVersion { found: version });
        }
        if h(1) as usize != HEADER_LEN {
            return Err(PackError::BadHeader("unexpected header length"));
        }
        let total = h(2) as usize;
        if total < HEADER_LEN {
            return Err(PackError::BadHeader("total length shorter than the header"));
        }
        if bytes.len() < total {
            return Err(PackError::Truncated { expected: total, actual: bytes.len() });
        }
        let bytes = &bytes[..total];
        let root = h(3);
        let [nodes, children, entries, refs, strings, string_bytes] = [h(4), h(5), h(6), h(7), h(8), h(9)];
        let section = |name: &'static str, field: usize, len: u64| -> Result<&'a [u8], PackError> {
            let offset = h(10 + field) as usize;
            let bad = || PackError::BadSection { section: name, offset, len, total };
            if offset & 7 != 0 || offset < HEADER_LEN {
                return Err(bad());
            }
            let end = (offset as u64).checked_add(len).filter(|&end| end <= total as u64).ok_or_else(bad)?;
            Ok(&bytes[offset..end as usize])
        };
        let n = u64::from(nodes);
        let graph = PackedGraph {
            root,
            nodes: section("node", 0, n * NODE_LEN as u64)?,
            children: section("child", 1, u64::from(children) * 4)?,
            entries: section("entry", 2, u64::from(entries) * 8)?,
            refs: section("reference", 3, u64::from(refs) * 8)?,
            bits: section("bitset", 4, n.div_ceil(32) * 4)?,
            strings: Strings {
                index: section("string index", 5, (u64::from(strings) + 1) * 4)?,
                bytes: section("string", 6, u64::from(string_bytes))?,
            },
        };
        if root >= nodes {
            return Err(PackError::BadRoot { root, nodes });
        }
        Ok(graph)
    }

    /// The document root's node id.
    pub fn root(&self) -> u32 {
        self.root
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len() / NODE_LEN
    }

    /// True when the graph holds no node (never, for a graph that opened).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of cyclic references (the length of the reference table).
    pub fn ref_count(&self) -> usize {
        self.refs.len() / 8
    }

    fn record(&self, id: u32) -> Option<Record> {
        let at = (id as usize).checked_mul(NODE_LEN)?;
        Some(Record {
            tag: read_u32(self.nodes, at)?,
            a: read_u32(self.nodes, at + 4)?,
            b: read_u32(self.nodes, at + 8)?,
        })
    }

    /// The node with this id; `None` when the id is out of range or the
    /// record is corrupt (unknown tag, children or string outside the buffer).
    /// Never panics, whatever the bytes.
    pub fn node(&self, id: u32) -> Option<PackedNode<'a>> {
        let r = self.record(id)?;
        let span = |table: &'a [u8], width: usize| -> Option<&'a [u8]> {
            let start = (r.a as usize).checked_mul(width)?;
            let end = start.checked_add((r.b as usize).checked_mul(width)?)?;
            table.get(start..end)
        };
        Some(match r.tag {
            TAG_NULL => PackedNode::Null,
            TAG_BOOL => PackedNode::Bool(r.a != 0),
            TAG_U64 => PackedNode::Number(r.bits64() as f64),
            TAG_I64 => PackedNode::Number(r.bits64() as i64 as f64),
            TAG_F64 => PackedNode::Number(f64::from_bits(r.bits64())),
            TAG_STRING => PackedNode::String(self.strings.get(r.a)?),
            TAG_ARRAY => PackedNode::Array(PackedItems { ids: span(self.children, 4)? }),
            TAG_OBJECT => PackedNode::Object(PackedEntries { entries: span(self.entries, 8)?, strings: self.strings }),
            TAG_REF => PackedNode::Ref(r.a),
            _ => return None,
        })
    }

    /// True when node `id` is a [`PackedNode::Ref`] or one sits anywhere
    /// below it (precomputed by [`pack`]); false for an id out of range.
    pub fn has_ref_below(&self, id: u32) -> bool {
        if id as usize >= self.len() {
            return false;
        }
        read_u32(self.bits, (id as usize / 32) * 4).is_some_and(|w| w >> (id % 32) & 1 == 1)
    }

    /// String `id` of the string table (object keys, via
    /// [`PackedEntries::key_ids`]); `None` when out of range or corrupt.
    pub fn string(&self, id: u32) -> Option<&'a str> {
        self.strings.get(id)
    }

    /// The target node of cyclic reference `r` and the reference text (e.g.
    /// `#/components/schemas/Node`); `None` when `r` is out of range, its
    /// target was never set or its text is corrupt.
    pub fn ref_target(&self, r: u32) -> Option<(u32, &'a str)> {
        let at = (r as usize).checked_mul(8)?;
        let node = read_u32(self.refs, at)?;
        let text = read_u32(self.refs, at + 4)?;
        if node == NONE {
            return None;
        }
        Some((node, self.strings.get(text)?))
    }

    /// Expands a node into a plain JSON tree exactly like
    /// [`Graph::to_value`]: `{"$circular": ref}` where a reference would
    /// re-enter a target already on the current path.
    ///
    /// Meant for tests and small subtrees (a large cyclic spec fully expanded
    /// is huge). Corrupt parts read as `null` (a missing node, a child that
    /// does not precede its parent, a number that is not finite) or
    /// `{"$ref": null}` (a reference without a target).
    pub fn to_value(&self, id: u32) -> Value {
        let mut stack = Vec::new();
        self.expand(id, &mut stack)
    }

    fn expand(&self, id: u32, stack: &mut Vec<u32>) -> Value {
        let Some(node) = self.node(id) else { return Value::Null };
        // Children precede parents; refusing anything else keeps a corrupt
        // buffer from sending the walk round in a loop.
        let child = |c: u32, stack: &mut Vec<u32>| if c < id { self.expand(c, stack) } else { Value::Null };
        match node {
            PackedNode::Null => Value::Null,
            PackedNode::Bool(b) => Value::Bool(b),
            PackedNode::Number(f) => {
                let Some(r) = self.record(id) else { return Value::Null };
                match r.tag {
                    TAG_U64 => Value::Number(Number::from(r.bits64())),
                    TAG_I64 => Value::Number(Number::from(r.bits64() as i64)),
                    _ => Number::from_f64(f).map_or(Value::Null, Value::Number),
                }
            }
            PackedNode::String(s) => Value::String(s.to_string()),
            PackedNode::Array(items) => Value::Array(items.map(|c| child(c, stack)).collect()),
            PackedNode::Object(entries) => {
                let mut map = Map::with_capacity(entries.len());
                for (k, c) in entries {
                    map.insert(k.to_string(), child(c, stack));
                }
                Value::Object(map)
            }
            PackedNode::Ref(r) => {
                let Some((target, reference)) = self.ref_target(r) else { return serde_json::json!({ "$ref": null }) };
                if stack.contains(&r) {
                    return serde_json::json!({ "$circular": reference });
                }
                stack.push(r);
                let v = self.expand(target, stack);
                stack.pop();
                v
            }
        }
    }
}

/// Interns strings in first-use order.
#[derive(Default)]
struct Interner<'g> {
    ids: HashMap<&'g str, u32>,
    order: Vec<&'g str>,
}

impl<'g> Interner<'g> {
    fn intern(&mut self, s: &'g str) -> u32 {
        *self.ids.entry(s).or_insert_with(|| {
            self.order.push(s);
            to_u32(self.order.len() - 1)
        })
    }
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).expect("packed spec graph exceeds 4 GiB")
}

fn put(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn pad8(out: &mut Vec<u8>) {
    out.resize(out.len().next_multiple_of(8), 0);
}

/// Serialises a graph into the format described in the module docs.
/// Deterministic: the same graph always gives the same bytes.
///
/// # Panics
/// If the graph has no root, or the packed form would exceed 4 GiB.
pub fn pack(graph: &Graph) -> Vec<u8> {
    let nodes = graph.nodes();
    let mut strings = Interner::default();
    let mut records: Vec<u8> = Vec::with_capacity(nodes.len() * NODE_LEN);
    let mut children: Vec<u8> = Vec::new();
    let mut entries: Vec<u8> = Vec::new();
    let mut has_ref = vec![false; nodes.len()];
    let below = |has_ref: &[bool], c: NodeId| has_ref.get(c.0 as usize).copied().unwrap_or(false);

    for (i, node) in nodes.iter().enumerate() {
        let (tag, a, b) = match node {
            Node::Null => (TAG_NULL, 0, 0),
            Node::Bool(v) => (TAG_BOOL, u32::from(*v), 0),
            Node::Number(n) => {
                let (tag, bits) = if let Some(u) = n.as_u64() {
                    (TAG_U64, u)
                } else if let Some(i) = n.as_i64() {
                    (TAG_I64, i as u64)
                } else {
                    (TAG_F64, n.as_f64().unwrap_or(f64::NAN).to_bits())
                };
                (tag, bits as u32, (bits >> 32) as u32)
            }
            Node::String(s) => (TAG_STRING, strings.intern(s), 0),
            Node::Array(items) => {
                let start = to_u32(children.len() / 4);
                for c in items.iter() {
                    put(&mut children, c.0);
                    has_ref[i] |= below(&has_ref, *c);
                }
                (TAG_ARRAY, start, to_u32(items.len()))
            }
            Node::Object(map) => {
                let start = to_u32(entries.len() / 8);
                for (k, c) in map.iter() {
                    put(&mut entries, strings.intern(k));
                    put(&mut entries, c.0);
                    has_ref[i] |= below(&has_ref, *c);
                }
                (TAG_OBJECT, start, to_u32(map.len()))
            }
            Node::Ref(r) => {
                has_ref[i] = true;
                (TAG_REF, *r, 0)
            }
        };
        put(&mut records, tag);
        put(&mut records, a);
        put(&mut records, b);
    }

    let mut refs: Vec<u8> = Vec::with_capacity(graph.ref_count() * 8);
    for r in 0..graph.ref_count() {
        match graph.try_ref_target(to_u32(r)) {
            Some(t) => {
                put(&mut refs, t.node.0);
                put(&mut refs, strings.intern(&t.reference));
            }
            None => {
                put(&mut refs, NONE);
                put(&mut refs, NONE);
            }
        }
    }

    let mut bits = vec![0u32; nodes.len().div_ceil(32)];
    for (i, _) in has_ref.iter().enumerate().filter(|(_, b)| **b) {
        bits[i / 32] |= 1 << (i % 32);
    }

    let mut string_index: Vec<u8> = Vec::with_capacity((strings.order.len() + 1) * 4);
    let mut string_bytes: Vec<u8> = Vec::new();
    put(&mut string_index, 0);
    for s in &strings.order {
        string_bytes.extend_from_slice(s.as_bytes());
        put(&mut string_index, to_u32(string_bytes.len()));
    }

    let bits: Vec<u8> = bits.iter().flat_map(|w| w.to_le_bytes()).collect();
    let sections: [&[u8]; 7] = [&records, &children, &entries, &refs, &bits, &string_index, &string_bytes];
    let mut offsets = [0u32; 7];
    let mut at = HEADER_LEN;
    for (o, s) in offsets.iter_mut().zip(sections) {
        *o = to_u32(at);
        at = (at + s.len()).next_multiple_of(8);
    }
    let total = to_u32(at);

    let mut out = Vec::with_capacity(at);
    out.extend_from_slice(MAGIC);
    for v in [
        VERSION,
        HEADER_LEN as u32,
        total,
        graph.root().0,
        to_u32(nodes.len()),
        to_u32(children.len() / 4),
        to_u32(entries.len() / 8),
        to_u32(graph.ref_count()),
        to_u32(strings.order.len()),
        to_u32(string_bytes.len()),
    ] {
        put(&mut out, v);
    }
    for o in offsets {
        put(&mut out, o);
    }
    put(&mut out, 0);
    debug_assert_eq!(out.len(), HEADER_LEN);
    for s in sections {
        out.extend_from_slice(s);
        pad8(&mut out);
    }
    debug_assert_eq!(out.len(), at);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A small graph with every kind of node, shared nodes and a cycle.
    fn small() -> Graph {
        let mut g = Graph::default();
        let r = g.declare_ref();
        let reference = g.push(Node::Ref(r));
        let ty = g.push_value(&json!("object"));
        let next = g.push(Node::Object(vec![("type".into(), ty), ("next".into(), reference)].into()));
        g.set_ref_target(r, "#/components/schemas/Node", next);
        let scalars = g.push_value(&json!([
            null,
            true,
            false,
            0,
            -7,
            18446744073709551615u64,
            -9007199254740993i64,
            2.5,
            "é ünïcode",
            ""
        ]));
        let shared = g.push_value(&json!({"type": "string", "description": "type"}));
        let empty = g.push_value(&json!({}));
        let root = g.push(Node::Object(
            vec![
                ("node".into(), next),
                ("scalars".into(), scalars),
                ("a".into(), shared),
                ("b".into(), shared),
                ("empty".into(), empty),
            ]
            .into(),
        ));
        g.set_root(root);
        g
    }

    /// Node-by-node comparison, with `has_ref_below` computed independently.
    fn assert_same(g: &Graph, p: &PackedGraph<'_>) {
        assert_eq!(p.len(), g.len());
        assert_eq!(p.ref_count(), g.ref_count());
        assert_eq!(p.root(), g.root().0);
        let mut has_ref = Vec::with_capacity(g.len());
        for (i, node) in g.nodes().iter().enumerate() {
            let id = i as u32;
            let packed = p.node(id).unwrap_or_else(|| panic!("node {i} missing"));
            let below = match (node, packed) {
                (Node::Null, PackedNode::Null) => false,
                (Node::Bool(a), PackedNode::Bool(b)) => {
                    assert_eq!(*a, b);
                    false
                }
                (Node::Number(n), PackedNode::Number(f)) => {
                    assert_eq!(n.as_f64().unwrap().to_bits(), f.to_bits(), "node {i}");
                    assert_eq!(p.to_value(id), Value::Number(n.clone()), "node {i}");
                    false
                }
                (Node::String(a), PackedNode::String(b)) => {
                    assert_eq!(&**a, b);
                    false
                }
                (Node::Array(a), PackedNode::Array(b)) => {
                    assert_eq!(a.len(), b.len());
                    for (k, c) in a.iter().enumerate() {
                        assert_eq!(b.get(k), Some(c.0));
                    }
                    assert_eq!(b.get(a.len()), None);
                    assert_eq!(a.iter().map(|c| c.0).collect::<Vec<_>>(), b.collect::<Vec<_>>());
                    a.iter().any(|c| has_ref[c.0 as usize])
                }
                (Node::Object(a), PackedNode::Object(b)) => {
                    assert_eq!(a.len(), b.len());
                    let b: Vec<_> = b.collect();
                    assert_eq!(a.iter().map(|(k, c)| (&**k, c.0)).collect::<Vec<_>>(), b);
                    a.iter().any(|(_, c)| has_ref[c.0 as usize])
                }
                (Node::Ref(a), PackedNode::Ref(b)) => {
                    assert_eq!(*a, b);
                    true
                }
                (a, b) => panic!("node {i}: {a:?} packed as {b:?}"),
            };
            assert_eq!(p.has_ref_below(id), below, "node {i}");
            has_ref.push(below);
        }
        assert!(p.node(g.len() as u32).is_none());
        assert!(!p.has_ref_below(g.len() as u32));
        for r in 0..g.ref_count() as u32 {
            let t = g.ref_target(r);
            assert_eq!(p.ref_target(r), Some((t.node.0, &*t.reference)));
        }
        assert_eq!(p.ref_target(g.ref_count() as u32), None);
    }

    #[test]
    fn small_graph_round_trips() {
        let g = small();
        let bytes = pack(&g);
        assert_eq!(bytes, pack(&g), "deterministic");
        assert_eq!(bytes.len() % 8, 0);
        let p = PackedGraph::open(&bytes).unwrap();
        assert_same(&g, &p);
        let expected = g.to_value(g.root());
        assert_eq!(expected["node"]["next"]["next"], json!({"$circular": "#/components/schemas/Node"}));
        assert_eq!(p.to_value(p.root()), expected);
        for id in 0..g.len() as u32 {
            assert_eq!(p.to_value(id), g.to_value(NodeId(id)));
        }
        // Works the same from shared, owned bytes.
        let shared: std::sync::Arc<[u8]> = bytes.into();
        assert_eq!(PackedGraph::open(&shared).unwrap().to_value(0), g.to_value(NodeId(0)));
    }

    #[test]
    fn strings_are_stored_once() {
        let mut g = Graph::default();
        let items: Vec<Value> = (0..100).map(|_| json!({"type": "string", "description": "type"})).collect();
        let root = g.push_value(&Value::Array(items));
        g.set_root(root);
        let bytes = pack(&g);
        let p = PackedGraph::open(&bytes).unwrap();
        assert_eq!(p.strings.index.len(), 4 * 4, "three distinct strings");
        // First use order: a child (the value "string") is packed before its parent's keys.
        assert_eq!(p.strings.bytes, b"stringtypedescription");
        assert_same(&g, &p);
    }

    /// Reads everything reachable, as a worker would; must never panic.
    fn walk(p: &PackedGraph<'_>) {
        let n = p.len() as u32;
        for id in 0..n + 3 {
            let _ = p.has_ref_below(id);
            match p.node(id) {
                Some(PackedNode::Array(items)) => {
                    let len = items.len();
                    assert_eq!(items.clone().count(), len);
                    let _ = items.get(len);
                }
                Some(PackedNode::Object(entries)) => {
                    let len = entries.len();
                    assert_eq!(entries.clone().count(), len);
                }
                _ => {}
            }
        }
        for r in 0..p.ref_count() as u32 + 2 {
            let _ = p.ref_target(r);
        }
        let _ = p.to_value(p.root());
        for id in 0..n.min(64) {
            let _ = p.to_value(id);
        }
    }

    #[test]
    fn truncated_buffers_are_refused() {
        let bytes = pack(&small());
        for len in 0..bytes.len() {
            assert!(PackedGraph::open(&bytes[..len]).is_err(), "prefix of {len} bytes opened");
        }
        // Extra bytes after the graph (a page-rounded mapping) are fine.
        let mut longer = bytes.clone();
        longer.extend_from_slice(&[0xAB; 100]);
        assert_same(&small(), &PackedGraph::open(&longer).unwrap());
    }

    #[test]
    fn corrupt_buffers_never_panic() {
        let bytes = pack(&small());
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut opened = 0;
        for round in 0..20_000 {
            let mut b = bytes.clone();
            for _ in 0..1 + round % 4 {
                let at = next() as usize % b.len();
                b[at] = match next() % 3 {
                    0 => b[at] ^ (1 << (next() % 8)),
                    1 => 0xFF,
                    _ => next() as u8,
                };
            }
            if let Ok(p) = PackedGraph::open(&b) {
                opened += 1;
                walk(&p);
            }
        }
        // Header-only garbage, every length.
        for len in 0..200 {
            let mut b: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if len >= 8 {
                b[..8].copy_from_slice(MAGIC);
            }
            if let Ok(p) = PackedGraph::open(&b) {
                walk(&p);
            }
        }
        assert!(opened > 1000, "most flips land in the body and still open ({opened})");
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let bytes = pack(&small());
        assert!(matches!(PackedGraph::open(&[]), Err(PackError::TooShort { len: 0 })));
        let mut b = bytes.clone();
        b[0] = b'X';
        assert!(matches!(PackedGraph::open(&b), Err(PackError::BadMagic)));
        let mut b = bytes.clone();
        b[8] = 2;
        let e = PackedGraph::open(&b).unwrap_err();
        assert_eq!(e.to_string(), "packed graph format version 2 is not supported (expected 1)");
        let e = PackedGraph::open(&bytes[..bytes.len() - 1]).unwrap_err();
        assert!(e.to_string().contains("truncated"), "{e}");
    }

    fn shared_spec(name: &str) -> String {
        let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/specs");
        dir.join(name).to_string_lossy().into_owned()
    }

    /// Size of the fully expanded subtree of each node, saturating; a
    /// reference counts as unbounded (its expansion depends on the path).
    fn expanded_sizes(g: &Graph) -> Vec<usize> {
        let mut size: Vec<usize> = Vec::with_capacity(g.len());
        for node in g.nodes() {
            let s = match node {
                Node::Array(a) => a.iter().fold(1usize, |s, c| s.saturating_add(size[c.0 as usize])),
                Node::Object(o) => o.iter().fold(1usize, |s, (_, c)| s.saturating_add(size[c.0 as usize])),
                Node::Ref(_) => usize::MAX,
                _ => 1,
            };
            size.push(s);
        }
        size
    }

    #[tokio::test]
    async fn shared_specs_round_trip() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::new();
        for name in [
            "httpbin-0.10.4.spec.json",
            "kinto-26.5.0.swagger.json",
            "twilio_api_v2010.json",
            "kubernetes-1.12-2018-10.swagger.json",
            "cloudflare-2024-08-06.openapi.json",
            "stripe-2023-09-12.spec3.yaml",
            "github-octokit-23.0.2.api.github.com.json",
        ] {
            let spec = crate::load(&shared_spec(name), &http).await.unwrap_or_else(|e| panic!("{name}: {e}"));
            let g = &*spec.graph;
            let t = std::time::Instant::now();
            let bytes = pack(g);
            let pack_time = t.elapsed();
            let t = std::time::Instant::now();
            let p = PackedGraph::open(&bytes).unwrap();
            let open_time = t.elapsed();
            assert_same(g, &p);
            let sizes = expanded_sizes(g);
            let root = g.root();
            if sizes[root.0 as usize] <= 3_000_000 {
                assert_eq!(p.to_value(root.0), g.to_value(root), "{name}");
            }
            let mut compared = 0;
            for (i, s) in sizes.iter().enumerate().step_by(31) {
                if *s <= 20_000 {
                    assert_eq!(p.to_value(i as u32), g.to_value(NodeId(i as u32)), "{name} node {i}");
                    compared += 1;
                }
            }
            eprintln!(
                "{name}: {} nodes, {} refs, {} packed bytes ({:.1} B/node; nodes {} children {} entries {} strings {} in {} distinct), pack {pack_time:?}, open {open_time:?}, root {}expanded, {compared} subtrees compared",
                g.len(),
                g.ref_count(),
                bytes.len(),
                bytes.len() as f64 / g.len() as f64,
                p.nodes.len(),
                p.children.len(),
                p.entries.len(),
                p.strings.bytes.len() + p.strings.index.len(),
                p.strings.index.len() / 4 - 1,
                if sizes[root.0 as usize] <= 3_000_000 { "" } else { "not " },
            );
        }
    }
}
