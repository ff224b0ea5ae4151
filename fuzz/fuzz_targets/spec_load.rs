//! Arbitrary bytes as a spec document, through the real loader path:
//! `source::parse_document` (JSON or YAML), Swagger 2.0 conversion, checks,
//! summary and `$ref` resolution (`load_from_value`), then `pack` and a full
//! read of the packed form, node by node against the graph.
//!
//! Also: JSON parsed straight into the hash-consed graph (`Interner`) reads
//! as serde_json reads it, and is refused exactly when serde_json refuses it.
//!
//! Invariants checked: children precede parents; every `Ref` has a target
//! in range; `deref` ends; the packed graph opens and reads back exactly
//! the graph it was packed from (kinds, numbers, strings, children, keys,
//! reference targets and texts, `has_ref_below`).
#![no_main]

use codemode_spec::{Graph, Node, NodeId, PackedGraph, PackedNode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    interned_json_reads_as_serde_json(data);
    let Ok(root) = codemode_spec::source::parse_document(data) else { return };
    // `load` resolves on a thread with a 256 MiB stack: do the same, so that
    // only what would overflow there counts.
    let data = data.to_vec();
    std::thread::Builder::new()
        .stack_size(256 * 1024 * 1024)
        .spawn(move || run(root, &data))
        .expect("spawn")
        .join()
        .expect("the loader panicked (the panic is above)");
});

/// The loader parses JSON straight into a hash-consed graph: it must accept
/// exactly what serde_json accepts and read back exactly the same value
/// (same text when serialised: key order, number forms, repeated keys).
fn interned_json_reads_as_serde_json(data: &[u8]) {
    let mut interner = codemode_spec::intern::Interner::new();
    let interned = interner.parse_json(data);
    match serde_json::from_slice::<serde_json::Value>(data) {
        Ok(v) => {
            let root = interned.expect("the interner refuses JSON that serde_json reads");
            let g = interner.graph();
            for (i, node) in g.nodes().iter().enumerate() {
                for c in match node {
                    Node::Array(a) => a.to_vec(),
                    Node::Object(o) => o.iter().map(|(_, c)| *c).collect(),
                    _ => vec![],
                } {
                    assert!((c.0 as usize) < i, "children precede parents");
                }
            }
            let back = g.to_value(root);
            assert_eq!(serde_json::to_string(&back).unwrap(), serde_json::to_string(&v).unwrap());
        }
        Err(_) => assert!(interned.is_err(), "the interner reads JSON that serde_json refuses"),
    }
}

fn run(root: serde_json::Value, _data: &[u8]) {
    let spec = codemode_spec::load_from_value("fuzz.yaml", root);
    let graph = &spec.graph;
    let _ = spec.problems.iter().map(ToString::to_string).count();
    check_graph(graph);
    let bytes = codemode_spec::pack(graph);
    let packed = PackedGraph::open(&bytes).expect("a packed graph opens");
    compare(graph, &packed);
}

fn check_graph(g: &Graph) {
    let n = g.len() as u32;
    assert!(g.root().0 < n, "root out of range");
    for (i, node) in g.nodes().iter().enumerate() {
        let id = NodeId(i as u32);
        let children: Vec<NodeId> = match node {
            Node::Array(a) => a.to_vec(),
            Node::Object(o) => o.iter().map(|(_, c)| *c).collect(),
            Node::Ref(r) => {
                let t = g.try_ref_target(*r).expect("every Ref has a target once resolved");
                assert!(t.node.0 < n, "ref target out of range");
                vec![]
            }
            _ => vec![],
        };
        for c in children {
            assert!(c < id, "child {c:?} does not precede its parent {id:?}");
        }
        // Must end, whatever the cycles (the mock reads the graph this way).
        let d = g.deref(id);
        assert!(d.0 < n);
    }
}

fn compare(g: &Graph, p: &PackedGraph<'_>) {
    assert_eq!(p.len(), g.len());
    assert_eq!(p.root(), g.root().0);
    assert_eq!(p.ref_count(), g.ref_count());
    let mut has_ref = vec![false; g.len()];
    for (i, node) in g.nodes().iter().enumerate() {
        let id = i as u32;
        let read = p.node(id).expect("every packed node reads");
        match (node, read) {
            (Node::Null, PackedNode::Null) => {}
            (Node::Bool(a), PackedNode::Bool(b)) => assert_eq!(*a, b),
            (Node::Number(a), PackedNode::Number(b)) => {
                let want = a.as_f64().unwrap_or(f64::NAN);
                assert!(want.to_bits() == b.to_bits() || want == b, "number {a} read as {b}");
            }
            (Node::String(a), PackedNode::String(b)) => assert_eq!(&**a, b),
            (Node::Array(a), PackedNode::Array(b)) => {
                assert_eq!(a.len(), b.len());
                for (x, y) in a.iter().zip(b) {
                    assert_eq!(x.0, y);
                    has_ref[i] |= has_ref[x.0 as usize];
                }
            }
            (Node::Object(a), PackedNode::Object(b)) => {
                assert_eq!(a.len(), b.len());
                for ((k, x), (pk, y)) in a.iter().zip(b) {
                    assert_eq!(&**k, pk);
                    assert_eq!(x.0, y);
                    has_ref[i] |= has_ref[x.0 as usize];
                }
            }
            (Node::Ref(a), PackedNode::Ref(b)) => {
                assert_eq!(*a, b);
                has_ref[i] = true;
                let t = g.ref_target(*a);
                let (node, text) = p.ref_target(b).expect("packed reference has its target");
                assert_eq!(t.node.0, node);
                assert_eq!(&*t.reference, text);
            }
            (a, b) => panic!("node {i}: {a:?} packed as {b:?}"),
        }
        assert_eq!(p.has_ref_below(id), has_ref[i], "has_ref_below of node {i}");
    }
    assert!(p.node(g.len() as u32).is_none());
    // Small trees expand the same both ways. Shared nodes make the expanded
    // tree exponential in the node count, so only when it is small (and
    // without cycles, whose expansion is bounded only by the path).
    if g.ref_count() == 0 {
        let mut size = vec![0u64; g.len()];
        for (i, node) in g.nodes().iter().enumerate() {
            let children: u64 = match node {
                Node::Array(a) => a.iter().map(|c| size[c.0 as usize]).fold(0, u64::saturating_add),
                Node::Object(o) => o.iter().map(|(_, c)| size[c.0 as usize]).fold(0, u64::saturating_add),
                _ => 0,
            };
            size[i] = children.saturating_add(1);
        }
        if size[g.root().0 as usize] <= 20_000 {
            assert_eq!(p.to_value(p.root()), g.to_value(g.root()));
        }
    }
}
