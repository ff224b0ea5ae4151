//! The specs as `search` code sees them: packed graphs (shared, read-only
//! bytes; see `codemode_spec::packed`) turned into frozen JavaScript objects
//! lazily, inside the call's own runtime, by `js/spec_view.js`.
//!
//! Only the specs a call may see are handed to its runtime: the host
//! functions below hold those graphs and no others, so a call cannot reach
//! another API's spec by any path, and each spec's reference table is its
//! own.

use std::cell::RefCell;
use std::sync::Arc;

use rquickjs::{Array, Ctx, Function, Value};

use codemode_spec::packed::{PackedGraph, PackedNode};

use crate::engine::eval_prelude;

/// The bytes of one packed spec graph: mapped from the host's sealed memfd
/// (in a worker process) or held in memory (in-process).
#[derive(Clone)]
pub(crate) enum SpecBytes {
    /// Lives as long as the process (a mapping never unmapped).
    Static(&'static [u8]),
    /// Shared in memory.
    Shared(Arc<[u8]>),
}

impl SpecBytes {
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            SpecBytes::Static(b) => b,
            SpecBytes::Shared(b) => b,
        }
    }
}

/// A named spec of the worker's list.
#[derive(Clone)]
pub(crate) struct NamedSpec {
    pub name: String,
    pub bytes: SpecBytes,
    pub global: crate::SpecGlobal,
}

const TAG_VALUE: i32 = 0;
const TAG_NODE: i32 = 1;
const TAG_REF: i32 = 2;
const TAG_DEPENDENT_NODE: i32 = 3;
const TAG_LONG_STRING: i32 = 4;

/// Strings longer than this (descriptions, mostly) are read on first touch
/// instead of with their object: a walk over operations rarely reads them.
const LAZY_STRING_BYTES: usize = 96;

/// Installs `specs` (and `spec` when `single`) for one call, over `visible`;
/// GraphQL schemas go to `schemas` (and `schema`).
pub(crate) fn install<'js>(ctx: &Ctx<'js>, visible: Vec<NamedSpec>, single: bool) -> rquickjs::Result<()> {
    let graphs: Arc<Vec<SpecBytes>> = Arc::new(visible.iter().map(|s| s.bytes.clone()).collect());
    let g = graphs.clone();
    // Which keys of each spec this call's JavaScript already holds (it
    // caches them by id): each distinct key crosses once.
    let sent: RefCell<Vec<Vec<u64>>> = RefCell::new(vec![Vec::new(); graphs.len()]);
    let shape = Function::new(ctx.clone(), move |ctx: Ctx<'js>, s: u32, id: u32| -> rquickjs::Result<Array<'js>> {
        let graph = open(&ctx, &g, s)?;
        let mut sent = sent.borrow_mut();
        let bits = sent.get_mut(s as usize).ok_or_else(|| corrupt(&ctx))?;
        describe(&ctx, &graph, id, bits)
    })?;
    let g = graphs.clone();
    let target = Function::new(ctx.clone(), move |ctx: Ctx<'js>, s: u32, r: u32| -> rquickjs::Result<Array<'js>> {
        let graph = open(&ctx, &g, s)?;
        let (id, reference) = graph.ref_target(r).ok_or_else(|| corrupt(&ctx))?;
        let out = Array::new(ctx.clone())?;
        match graph.node(id).ok_or_else(|| corrupt(&ctx))? {
            PackedNode::Array(_) | PackedNode::Object(_) | PackedNode::Ref(_) => {
                out.set(0, id)?;
                out.set(1, if graph.has_ref_below(id) { TAG_DEPENDENT_NODE } else { TAG_NODE })?;
            }
            scalar => {
                out.set(0, scalar_value(&ctx, scalar)?)?;
                out.set(1, TAG_VALUE)?;
            }
        }
        out.set(2, reference)?;
        Ok(out)
    })?;
    let g = graphs.clone();
    let text = Function::new(ctx.clone(), move |ctx: Ctx<'js>, s: u32, id: u32| -> rquickjs::Result<Value<'js>> {
        let graph = open(&ctx, &g, s)?;
        match graph.node(id) {
            Some(PackedNode::String(text)) => Ok(rquickjs::String::from_str(ctx.clone(), text)?.into_value()),
            _ => Err(corrupt(&ctx)),
        }
    })?;
    let make: Function = eval_prelude(ctx, include_str!("../js/spec_view.js"))?;
    let install: Function = make.call((shape, target, text))?;
    let list = Array::new(ctx.clone())?;
    for (i, s) in visible.iter().enumerate() {
        let graph = PackedGraph::open(s.bytes.bytes()).map_err(|_| corrupt(ctx))?;
        let entry = Array::new(ctx.clone())?;
        entry.set(0, s.name.as_str())?;
        entry.set(1, graph.root())?;
        entry.set(2, graph.has_ref_below(graph.root()))?;
        entry.set(3, s.global == crate::SpecGlobal::Schemas)?;
        list.set(i, entry)?;
    }
    install.call::<_, ()>((list, single && visible.len() == 1))?;
    Ok(())
}

fn open<'a>(ctx: &Ctx<'_>, graphs: &'a [SpecBytes], s: u32) -> rquickjs::Result<PackedGraph<'a>> {
    let bytes = graphs.get(s as usize).ok_or_else(|| corrupt(ctx))?;
    PackedGraph::open(bytes.bytes()).map_err(|_| corrupt(ctx))
}

fn corrupt(ctx: &Ctx<'_>) -> rquickjs::Error {
    rquickjs::Exception::throw_internal(ctx, "the spec view was asked for a node that does not exist")
}

fn scalar_value<'js>(ctx: &Ctx<'js>, node: PackedNode<'_>) -> rquickjs::Result<Value<'js>> {
    Ok(match node {
        PackedNode::Null => Value::new_null(ctx.clone()),
        PackedNode::Bool(b) => Value::new_bool(ctx.clone(), b),
        PackedNode::Number(n) => Value::new_number(ctx.clone(), n),
        PackedNode::String(s) => rquickjs::String::from_str(ctx.clone(), s)?.into_value(),
        _ => Value::new_undefined(ctx.clone()),
    })
}

/// Appends `(tag, value)` for one child.
fn push_child<'js>(
    ctx: &Ctx<'js>,
    graph: &PackedGraph<'_>,
    out: &Array<'js>,
    at: &mut usize,
    id: u32,
) -> rquickjs::Result<()> {
    let node = graph.node(id).ok_or_else(|| corrupt(ctx))?;
    let (tag, value) = match node {
        PackedNode::Array(_) | PackedNode::Object(_) => {
            let tag = if graph.has_ref_below(id) { TAG_DEPENDENT_NODE } else { TAG_NODE };
            (tag, Value::new_number(ctx.clone(), id as f64))
        }
        PackedNode::Ref(r) => (TAG_REF, Value::new_number(ctx.clone(), r as f64)),
        PackedNode::String(text) if text.len() > LAZY_STRING_BYTES => {
            (TAG_LONG_STRING, Value::new_number(ctx.clone(), id as f64))
        }
        scalar => (TAG_VALUE, scalar_value(ctx, scalar)?),
    };
    out.set(*at, tag)?;
    out.set(*at + 1, value)?;
    *at += 2;
    Ok(())
}

/// The descriptor of one object or array node (see `js/spec_view.js`).
fn describe<'js>(
    ctx: &Ctx<'js>,
    graph: &PackedGraph<'_>,
    id: u32,
    sent: &mut Vec<u64>,
) -> rquickjs::Result<Array<'js>> {
    let out = Array::new(ctx.clone())?;
    let mut at = 1;
    match graph.node(id).ok_or_else(|| corrupt(ctx))? {
        PackedNode::Array(items) => {
            out.set(0, 1)?;
            for c in items {
                push_child(ctx, graph, &out, &mut at, c)?;
            }
        }
        PackedNode::Object(entries) => {
            out.set(0, 0)?;
            for (k, c) in entries.key_ids() {
                let (word, bit) = ((k / 64) as usize, 1u64 << (k % 64));
                if sent.len() <= word {
                    sent.resize(word + 1, 0);
                }
                if sent[word] & bit == 0 {
                    // First time: the text, then its id.
                    sent[word] |= bit;
                    out.set(at, graph.string(k).ok_or_else(|| corrupt(ctx))?)?;
                    at += 1;
                }
                out.set(at, k)?;
                at += 1;
                push_child(ctx, graph, &out, &mut at, c)?;
            }
        }
        _ => return Err(corrupt(ctx)),
    }
    Ok(out)
}
