//! Arbitrary bytes into `PackedGraph::open` and, when it opens, a full read:
//! every node, every child and entry, every reference target, the
//! `has_ref_below` bits. The format promises that corrupt bytes read as
//! `None` or a placeholder, never a panic. (`to_value` is not called on the
//! whole graph: on corrupt bytes a shared child makes it exponential, which
//! its docs allow; it is called on leaves and on a bounded subtree.)
#![no_main]

use codemode_spec::{PackedGraph, PackedNode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Also a valid header in front of the fuzzer's bytes, so that most runs
    // get past the magic and version checks.
    read(data);
    if data.len() >= 72 {
        let mut framed = Vec::with_capacity(data.len() + 8);
        framed.extend_from_slice(b"CMPGRAPH");
        framed.extend_from_slice(&1u32.to_le_bytes());
        framed.extend_from_slice(&80u32.to_le_bytes());
        framed.extend_from_slice(&data[..]);
        read(&framed);
    }
});

fn read(bytes: &[u8]) {
    let Ok(g) = PackedGraph::open(bytes) else { return };
    let _ = format!("{g:?}");
    let n = g.len();
    assert!((g.root() as usize) < n);
    // Bounded read: a node count taken from a corrupt header can be large,
    // but every section lies inside the buffer, so `n` is at most len / 12.
    assert!(n <= bytes.len() / 12);
    for id in 0..n as u32 {
        let _ = g.has_ref_below(id);
        match g.node(id) {
            None => {}
            Some(PackedNode::Array(items)) => {
                let len = items.len();
                let _ = items.get(0);
                let _ = items.get(len);
                assert_eq!(items.count(), len);
            }
            Some(PackedNode::Object(entries)) => {
                let len = entries.len();
                let mut seen = 0;
                for (k, c) in entries {
                    let _ = (k.len(), c);
                    seen += 1;
                }
                assert_eq!(seen, len);
            }
            Some(PackedNode::Ref(r)) => {
                let _ = g.ref_target(r);
            }
            Some(leaf) => {
                let _ = format!("{leaf:?}");
                let _ = g.to_value(id);
            }
        }
    }
    for r in 0..g.ref_count() as u32 + 1 {
        let _ = g.ref_target(r);
    }
    let _ = g.node(n as u32);
    let _ = g.node(u32::MAX);
    let _ = g.has_ref_below(u32::MAX);
    let _ = g.ref_target(u32::MAX);
    // The root's subtree, when it is small (each node's expansion counted
    // with its children's: shared children make it exponential).
    if expanded_size(&g, g.root(), 0) <= 5_000 {
        let _ = g.to_value(g.root());
    }
}

/// Upper bound on the nodes `to_value(id)` writes, ignoring references
/// (which a full read above already covered); stops counting past the cap.
fn expanded_size(g: &PackedGraph<'_>, id: u32, depth: u32) -> u64 {
    const CAP: u64 = 5_001;
    if depth > 64 {
        return CAP;
    }
    let mut size = 1u64;
    let children: Vec<u32> = match g.node(id) {
        Some(PackedNode::Array(items)) => items.collect(),
        Some(PackedNode::Object(entries)) => entries.map(|(_, c)| c).collect(),
        Some(PackedNode::Ref(_)) => return CAP,
        _ => vec![],
    };
    for c in children {
        if c < id {
            size += expanded_size(g, c, depth + 1);
        } else {
            size += 1;
        }
        if size >= CAP {
            return CAP;
        }
    }
    size
}
