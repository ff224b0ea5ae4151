//! Builds a resolved spec ([`codemode_spec::Graph`]) as frozen JavaScript
//! objects inside a holder realm, once per runtime, and hands each `search`
//! call a view of it.

use rquickjs::{Array, Ctx, Function, Object, Persistent, Value};

use codemode_spec::{Graph, Node};

use crate::engine::eval_prelude;

/// The functions of `js/spec_view.js`, kept alive across calls.
pub(crate) struct ViewFns {
    root: Persistent<Function<'static>>,
}

impl ViewFns {
    /// Installs the view helpers in the holder realm.
    pub(crate) fn install<'js>(ctx: &Ctx<'js>) -> rquickjs::Result<(ViewFns, Object<'js>)> {
        let make: Function = eval_prelude(ctx, include_str!("../js/spec_view.js"))?;
        let fns: Object = make.call(())?;
        let root: Function = fns.get("root")?;
        Ok((ViewFns { root: Persistent::save(ctx, root) }, fns))
    }

    /// A fresh read-only view of a built spec root, for one call.
    pub(crate) fn view<'js>(&self, ctx: &Ctx<'js>, root: &Persistent<Value<'static>>) -> rquickjs::Result<Value<'js>> {
        let f = self.root.clone().restore(ctx)?;
        let r = root.clone().restore(ctx)?;
        f.call((r,))
    }
}

/// Builds every node of `graph` as a frozen JS value (children first, so each
/// node is built once and shared by all its parents) and returns the root.
pub(crate) fn build<'js>(ctx: &Ctx<'js>, fns: &Object<'js>, graph: &Graph) -> rquickjs::Result<Value<'js>> {
    let marker: Function = fns.get("marker")?;
    let mark_view: Function = fns.get("markView")?;
    let set_targets: Function = fns.get("setTargets")?;
    let freeze: Function = ctx.globals().get::<_, Object>("Object")?.get("freeze")?;

    let nodes = graph.nodes();
    let mut built: Vec<Value<'js>> = Vec::with_capacity(nodes.len());
    // Does a reference marker sit anywhere below this node?
    let mut has_ref: Vec<bool> = Vec::with_capacity(nodes.len());
    for node in nodes {
        let (value, below) = match node {
            Node::Null => (Value::new_null(ctx.clone()), false),
            Node::Bool(b) => (Value::new_bool(ctx.clone(), *b), false),
            Node::Number(n) => {
                let v = match n.as_i64() {
                    Some(i) if i32::try_from(i).is_ok() => Value::new_int(ctx.clone(), i as i32),
                    _ => Value::new_float(ctx.clone(), n.as_f64().unwrap_or(f64::NAN)),
                };
                (v, false)
            }
            Node::String(s) => (rquickjs::String::from_str(ctx.clone(), s)?.into_value(), false),
            Node::Array(items) => {
                let arr = Array::new(ctx.clone())?;
                let mut below = false;
                for (i, c) in items.iter().enumerate() {
                    arr.set(i, built[c.0 as usize].clone())?;
                    below |= has_ref[c.0 as usize];
                }
                (arr.into_value(), below)
            }
            Node::Object(entries) => {
                let obj = Object::new(ctx.clone())?;
                let mut below = false;
                for (k, c) in entries.iter() {
                    obj.set(&**k, built[c.0 as usize].clone())?;
                    below |= has_ref[c.0 as usize];
                }
                (obj.into_value(), below)
            }
            Node::Ref(r) => (marker.call::<_, Value>((*r,))?, true),
        };
        if matches!(node, Node::Array(_) | Node::Object(_)) {
            freeze.call::<_, ()>((value.clone(),))?;
            if below {
                mark_view.call::<_, ()>((value.clone(),))?;
            }
        }
        built.push(value);
        has_ref.push(below);
    }
    let targets = Array::new(ctx.clone())?;
    let names = Array::new(ctx.clone())?;
    for i in 0..graph.ref_count() {
        let t = graph.ref_target(i as u32);
        targets.set(i, built[t.node.0 as usize].clone())?;
        names.set(i, &*t.reference)?;
    }
    set_targets.call::<_, ()>((targets, names))?;
    Ok(built[graph.root().0 as usize].clone())
}
