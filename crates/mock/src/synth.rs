//! Values synthesised from schemas: response bodies the spec has no example
//! for, and sample requests.
//!
//! The synthesiser reads the spec graph directly (nothing is expanded to a
//! tree first). It works on a *conjunction* of schemas: `allOf` branches are
//! merged into one view (properties and `required` united, bounds
//! intersected) before a value is made, so a property constrained by two
//! branches gets one value that satisfies both. `oneOf`/`anyOf` add one
//! branch, picked by the seeded generator (a `null`-only branch only when
//! there is nothing else).
//!
//! Values honour `const`, `enum`, the schema's own `example`/`examples` and
//! `default` (when they fit the schema), `format` (date-time, date, time,
//! email, uuid, uri, ipv4, ipv6, hostname, byte, ...), `pattern` (generated
//! with `rand_regex`, checked with `regex`), string, number, array and object
//! bounds. Output stays small: arrays have one or two items unless
//! `minItems` asks for more, optional properties stop below a depth and
//! after a node budget, and a reference back into a schema already being
//! generated (a recursive type) omits the property unless it is required, in
//! which case it is `{}` for objects and `null` otherwise.
//!
//! Everything random comes from one seeded [`Xoshiro256PlusPlus`], so the
//! same seed gives the same value on every platform and run.

use std::collections::HashMap;
use std::sync::Arc;

use codemode_spec::{Graph, Node, NodeId};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use serde_json::{json, Map, Number, Value};

use crate::cache::Caches;
use crate::doc::{entries, get_bool, get_count, get_f64, get_str, get_strs, items, raw_get};
use crate::schema::Direction;

/// Optional properties are left out below this object depth.
const OPTIONAL_DEPTH: usize = 4;
/// Past this depth even required properties read as a recursion stop.
const MAX_DEPTH: usize = 32;
/// Values (of any kind) one synthesised document may hold before optional
/// parts are left out.
const BUDGET: usize = 1_000;
/// The most items an array gets, whatever `minItems` says.
const MAX_ITEMS: u64 = 64;
/// The most branches of a `oneOf` tried to find a value only one accepts.
const MAX_ATTEMPTS: usize = 6;

/// Makes values from the schemas of one graph.
pub struct Synthesizer<'g> {
    g: &'g Graph,
    direction: Direction,
    rng: Xoshiro256PlusPlus,
    caches: Arc<Caches>,
    /// Cyclic references entered on the current path.
    stack: Vec<u32>,
    budget: usize,
    depth: usize,
    /// Which retry of a `oneOf` this is (shifts the branch picked).
    attempt: usize,
    /// True while merging a picked `oneOf`/`anyOf` branch.
    in_choice: bool,
    /// The branch first picked at each `oneOf`/`anyOf` of the value being
    /// made; retries go on from there, one branch further each time.
    first_picks: HashMap<NodeId, usize>,
}

/// One value, or "this would recurse into a type already being generated".
enum Gen {
    Value(Value),
    Circular,
}

/// A conjunction of schemas merged into one set of constraints.
#[derive(Default)]
struct View<'g> {
    /// Some conjunct is a reference back into the current path.
    circular: bool,
    /// Some conjunct is `false` (nothing fits); we still produce something.
    types: Option<Vec<&'g str>>,
    nullable: bool,
    consts: Option<NodeId>,
    enums: Option<NodeId>,
    example: Option<NodeId>,
    examples: Option<NodeId>,
    default: Option<NodeId>,
    format: Option<&'g str>,
    pattern: Option<&'g str>,
    min_len: Option<u64>,
    max_len: Option<u64>,
    minimum: Option<(f64, bool)>,
    maximum: Option<(f64, bool)>,
    multiple_of: Option<f64>,
    items: Vec<NodeId>,
    min_items: Option<u64>,
    max_items: Option<u64>,
    unique: bool,
    properties: Vec<(&'g str, Vec<NodeId>)>,
    required: Vec<&'g str>,
    additional: Vec<NodeId>,
    no_additional: bool,
    min_props: Option<u64>,
    max_props: Option<u64>,
    /// Keywords that make an object more than free-form.
    structured: bool,
    /// `oneOf`/`anyOf` lists still to pick a branch of (and whether `oneOf`).
    choices: Vec<(NodeId, bool)>,
    /// The `oneOf` lists a branch was picked from.
    one_of: Vec<NodeId>,
    /// Choice lists whose plain (non-object) branch is the default.
    unexpanded: Vec<NodeId>,
}

impl<'g> Synthesizer<'g> {
    /// A synthesiser for schemas of `graph` read in `direction`, seeded with
    /// `seed` (same seed, same values).
    pub fn new(graph: &'g Graph, direction: Direction, seed: u64) -> Self {
        Self::with_caches(graph, direction, seed, Arc::new(Caches::default()))
    }

    pub(crate) fn with_caches(graph: &'g Graph, direction: Direction, seed: u64, caches: Arc<Caches>) -> Self {
        Synthesizer {
            g: graph,
            direction,
            rng: Xoshiro256PlusPlus::seed_from_u64(seed),
            caches,
            stack: Vec::new(),
            budget: BUDGET,
            depth: 0,
            attempt: 0,
            in_choice: false,
            first_picks: HashMap::new(),
        }
    }

    /// A value for the schema at `schema`.
    pub fn value(&mut self, schema: NodeId) -> Value {
        self.value_named(schema, "")
    }

    /// A value for the schema at `schema`; `name` (a property or parameter
    /// name) shapes plain strings, e.g. ids.
    pub fn value_named(&mut self, schema: NodeId, name: &str) -> Value {
        self.budget = BUDGET;
        match self.gen(&[schema], name) {
            Gen::Value(v) => v,
            Gen::Circular => Value::Null,
        }
    }

    fn gen(&mut self, conj: &[NodeId], hint: &str) -> Gen {
        let outer_picks = std::mem::take(&mut self.first_picks);
        let out = self.gen_attempts(conj, hint);
        self.first_picks = outer_picks;
        out
    }

    fn gen_attempts(&mut self, conj: &[NodeId], hint: &str) -> Gen {
        let mut first: Option<Value> = None;
        for attempt in 0..MAX_ATTEMPTS {
            let mut view = View::default();
            let mark = self.stack.len();
            let saved = self.attempt;
            self.attempt = attempt;
            for id in conj {
                self.collect(*id, &mut view, 0);
            }
            self.resolve_choices(&mut view);
            self.attempt = saved;
            if view.circular || self.depth > MAX_DEPTH {
                self.stack.truncate(mark);
                return Gen::Circular;
            }
            let v = self.make(&view, hint);
            self.stack.truncate(mark);
            // `oneOf` wants exactly one branch to match: when the value
            // matches several (or none), try the next branch.
            if view.one_of.iter().all(|site| self.exactly_one(*site, &v)) {
                return Gen::Value(v);
            }
            if first.is_none() {
                first = Some(v);
            }
            let widest = view.one_of.iter().map(|s| items(self.g, *s).len()).max().unwrap_or(0);
            if attempt + 1 >= widest {
                break;
            }
        }
        Gen::Value(first.unwrap_or(Value::Null))
    }

    /// Picks one branch of every `oneOf`/`anyOf` met so far, once the rest of
    /// the conjunction is known, so the branch agrees with its type.
    fn resolve_choices(&mut self, view: &mut View<'g>) {
        let mut i = 0;
        while i < view.choices.len() && i < 64 {
            // What the still-open choices allow narrows this one: with
            // `anyOf: [object, string]` beside `anyOf: [{allOf: [object..]}]`
            // the first must pick `object`.
            let mut want: Option<Vec<&'g str>> = view.types.clone();
            for (list, _) in &view.choices[i + 1..] {
                let mut union: Vec<&'g str> = Vec::new();
                let mut open = false;
                for b in items(self.g, *list) {
                    match implied(self.g, *b, 0) {
                        Some(ts) => union.extend(ts),
                        None => open = true,
                    }
                }
                if open {
                    continue;
                }
                want = Some(match want {
                    None => union,
                    Some(w) => {
                        let both: Vec<&str> = w.iter().copied().filter(|t| union.contains(t)).collect();
                        if both.is_empty() {
                            w
                        } else {
                            both
                        }
                    }
                });
            }
            let (list, one_of) = view.choices[i];
            let plain = view.unexpanded.contains(&list);
            if let Some(b) = self.choose(list, want.as_deref(), plain) {
                if one_of {
                    view.one_of.push(list);
                }
                let saved = std::mem::replace(&mut self.in_choice, true);
                self.collect(b, view, 1);
                self.in_choice = saved;
            }
            i += 1;
        }
    }

    /// True when `v` is valid under exactly one branch of the `oneOf` at `site`.
    fn exactly_one(&self, site: NodeId, v: &Value) -> bool {
        let mut n = 0;
        for b in items(self.g, site) {
            match self.caches.branch(self.g, *b, self.direction) {
                Some(validator) => n += usize::from(validator.is_valid(v)),
                None => return true,
            }
        }
        n == 1
    }

    /// Merges the schema `id` (and its `allOf`, and one chosen `oneOf`/`anyOf`
    /// branch) into `view`.
    fn collect(&mut self, id: NodeId, view: &mut View<'g>, nesting: usize) {
        let g = self.g;
        if nesting > 64 {
            return;
        }
        let id = match g.node(id) {
            Node::Ref(r) => {
                if self.stack.contains(r) {
                    view.circular = true;
                    return;
                }
                self.stack.push(*r);
                g.deref(id)
            }
            _ => id,
        };
        let own = match g.node(id) {
            Node::Object(e) => e,
            _ => return,
        };
        if own.iter().any(|(k, _)| &**k == "$circular" || &**k == "$ref") {
            return;
        }
        for (k, v) in own.iter() {
            let vid = g.deref(*v);
            match &**k {
                "type" => {
                    let mut ts = get_strs(g, id, "type");
                    for t in ts.iter_mut() {
                        if *t == "file" {
                            *t = "string";
                        }
                    }
                    if ts.contains(&"null") {
                        view.nullable = true;
                    }
                    view.types = Some(match view.types.take() {
                        None => ts,
                        Some(prev) => {
                            let both: Vec<&str> = prev
                                .iter()
                                .copied()
                                .filter_map(|t| {
                                    if ts.contains(&t) {
                                        Some(t)
                                    } else if (t == "number" && ts.contains(&"integer"))
                                        || (t == "integer" && ts.contains(&"number"))
                                    {
                                        Some("integer")
                                    } else {
                                        None
                                    }
                                })
                                .collect();
                            // Contradictory conjuncts (an envelope saying
                            // `object`, the operation saying `array`): the
                            // later, more specific one wins, unless it is a
                            // `oneOf`/`anyOf` branch picked for want of one
                            // that agrees.
                            if both.is_empty() {
                                if self.in_choice {
                                    prev
                                } else {
                                    ts
                                }
                            } else {
                                both
                            }
                        }
                    });
                }
                "nullable" | "x-nullable" => view.nullable |= matches!(g.node(vid), Node::Bool(true)),
                "const" => view.consts = view.consts.or(Some(vid)),
                "enum" if !items(g, vid).is_empty() => view.enums = view.enums.or(Some(vid)),
                "example" => view.example = view.example.or(Some(vid)),
                "examples" => view.examples = view.examples.or(Some(vid)),
                "default" => view.default = view.default.or(Some(vid)),
                "format" => view.format = view.format.or(g.as_str(vid)),
                "pattern" => view.pattern = view.pattern.or(g.as_str(vid)),
                "minLength" => view.min_len = max_opt(view.min_len, get_count(g, id, k)),
                "maxLength" => view.max_len = min_opt(view.max_len, get_count(g, id, k)),
                "minItems" => view.min_items = max_opt(view.min_items, get_count(g, id, k)),
                "maxItems" => view.max_items = min_opt(view.max_items, get_count(g, id, k)),
                "minProperties" => view.min_props = max_opt(view.min_props, get_count(g, id, k)),
                "maxProperties" => view.max_props = min_opt(view.max_props, get_count(g, id, k)),
                "uniqueItems" => view.unique |= matches!(g.node(vid), Node::Bool(true)),
                "multipleOf" => view.multiple_of = view.multiple_of.or(get_f64(g, id, k).filter(|m| *m > 0.0)),
                "minimum" | "exclusiveMinimum" | "maximum" | "exclusiveMaximum" => {}
                "items" => match g.node(vid) {
                    Node::Array(a) => view.items.extend(a.first().copied()),
                    _ => view.items.push(*v),
                },
                "properties" => {
                    view.structured = true;
                    for (name, s) in entries(g, vid) {
                        match view.properties.iter_mut().find(|(n, _)| *n == &**name) {
                            Some((_, list)) => list.push(*s),
                            None => view.properties.push((name, vec![*s])),
                        }
                    }
                }
                "required" => {
                    view.structured = true;
                    for name in get_strs(g, id, "required") {
                        if !view.required.contains(&name) && !self.skipped(id, name) {
                            view.required.push(name);
                        }
                    }
                }
                "additionalProperties" => match g.node(vid) {
                    Node::Bool(false) => view.no_additional = true,
                    Node::Object(_) => {
                        view.structured = true;
                        view.additional.push(*v)
                    }
                    _ => {}
                },
                "allOf" => {
                    view.structured = true;
                    for b in items(g, vid) {
                        self.collect(*b, view, nesting + 1);
                    }
                }
                "oneOf" | "anyOf" => {
                    view.structured = true;
                    view.choices.push((vid, &**k == "oneOf"));
                    // Stripe's expandable fields (`anyOf: [id, object]`
                    // marked `x-expansionResources`) are ids unless expanded.
                    if raw_get(g, id, "x-expansionResources").is_some() {
                        view.unexpanded.push(vid);
                    }
                }
                _ => {}
            }
        }
        // Bounds, read together because OpenAPI 3.0 writes exclusivity as a
        // boolean beside the bound.
        let excl = |key: &str| get_bool(g, id, key) == Some(true);
        let lower = match (get_f64(g, id, "minimum"), get_f64(g, id, "exclusiveMinimum")) {
            (_, Some(x)) => Some((x, true)),
            (Some(m), None) => Some((m, excl("exclusiveMinimum"))),
            _ => None,
        };
        let upper = match (get_f64(g, id, "maximum"), get_f64(g, id, "exclusiveMaximum")) {
            (_, Some(x)) => Some((x, true)),
            (Some(m), None) => Some((m, excl("exclusiveMaximum"))),
            _ => None,
        };
        if let Some(l) = lower {
            view.minimum = Some(match view.minimum {
                Some(p) if p.0 > l.0 || (p.0 == l.0 && p.1) => p,
                _ => l,
            });
        }
        if let Some(u) = upper {
            view.maximum = Some(match view.maximum {
                Some(p) if p.0 < u.0 || (p.0 == u.0 && p.1) => p,
                _ => u,
            });
        }
    }

    /// Picks a branch of `oneOf`/`anyOf`: seeded, preferring branches that
    /// are not just `null`.
    fn choose(&mut self, list: NodeId, want: Option<&[&'g str]>, plain: bool) -> Option<NodeId> {
        let g = self.g;
        let branches = items(g, list);
        let not_null: Vec<NodeId> = branches
            .iter()
            .copied()
            .filter(|b| {
                let t = get_strs(g, g.deref(*b), "type");
                !(t.len() == 1 && t[0] == "null")
            })
            .collect();
        let pool = if not_null.is_empty() { branches.to_vec() } else { not_null };
        // Branches whose type agrees with the type the rest of the
        // conjunction asks for.
        let agreeing: Vec<NodeId> = match want {
            Some(want) if !want.is_empty() => pool
                .iter()
                .copied()
                .filter(|b| {
                    let have = implied_types(g, g.deref(*b));
                    have.is_empty()
                        || have.iter().any(|t| want.contains(t) || (*t == "integer" && want.contains(&"number")))
                })
                .collect(),
            _ => vec![],
        };
        let pool = if agreeing.is_empty() { pool } else { agreeing };
        // Branches that would not recurse into a type being generated.
        let finite: Vec<NodeId> = pool.iter().copied().filter(|b| !self.recurses(*b)).collect();
        let pool = if finite.is_empty() { pool } else { finite };
        // Deep down or short of budget, prefer plain values (an id rather than
        // the expanded object, as Stripe's expandable fields have it).
        let pool = if plain || self.depth >= OPTIONAL_DEPTH / 2 || self.budget < BUDGET / 2 {
            let plain: Vec<NodeId> = pool
                .iter()
                .copied()
                .filter(|b| {
                    let t = implied_types(g, g.deref(*b));
                    !t.is_empty() && !t.iter().any(|t| *t == "object" || *t == "array")
                })
                .collect();
            if plain.is_empty() {
                pool
            } else {
                plain
            }
        } else {
            pool
        };
        if pool.is_empty() {
            return None;
        }
        let rng = &mut self.rng;
        let first = *self.first_picks.entry(list).or_insert_with(|| rng.random_range(0..pool.len()));
        Some(pool[(first + self.attempt) % pool.len()])
    }

    /// True when a branch is (or directly combines) a reference back into a
    /// type already being generated.
    fn recurses(&self, branch: NodeId) -> bool {
        let g = self.g;
        if let Node::Ref(r) = g.node(branch) {
            return self.stack.contains(r);
        }
        ["allOf", "anyOf", "oneOf"].iter().any(|k| {
            raw_get(g, branch, k).is_some_and(|list| {
                items(g, list).iter().any(|b| matches!(g.node(*b), Node::Ref(r) if self.stack.contains(r)))
            })
        })
    }

    /// True when property `name` of schema `id` is read-only in a request or
    /// write-only in a response.
    fn skipped(&self, id: NodeId, name: &str) -> bool {
        let key = match self.direction {
            Direction::Request => "readOnly",
            Direction::Response => "writeOnly",
        };
        crate::doc::property_flagged(self.g, id, name, key)
    }

    fn flagged(&self, schema: NodeId) -> bool {
        let key = match self.direction {
            Direction::Request => "readOnly",
            Direction::Response => "writeOnly",
        };
        get_bool(self.g, schema, key) == Some(true)
    }

    fn make(&mut self, view: &View<'g>, hint: &str) -> Value {
        let g = self.g;
        self.budget = self.budget.saturating_sub(1);
        if let Some(c) = view.consts {
            return crate::doc::value(g, c);
        }
        if let Some(e) = view.enums {
            let options: Vec<Value> = items(g, e)
                .iter()
                .map(|i| crate::doc::value(g, *i))
                .filter(|v| !v.is_null() && self.fits(v, view, false))
                .collect();
            if !options.is_empty() {
                let i = self.rng.random_range(0..options.len());
                return options[i].clone();
            }
            if let Some(first) = items(g, e).first() {
                return crate::doc::value(g, *first);
            }
        }
        let kind = self.kind(view);
        // The schema's own example or default, when it fits.
        let mut candidates = Vec::new();
        candidates.extend(view.example);
        if let Some(ex) = view.examples {
            candidates.extend(items(g, ex).first().copied());
        }
        candidates.extend(view.default);
        let usable = match kind {
            "object" => !view.structured,
            "array" => true,
            _ => true,
        };
        if usable {
            for c in candidates {
                let v = crate::doc::value(g, c);
                if !v.is_null() && !crate::doc::has_markers(&v) && self.fits(&v, view, true) {
                    return v;
                }
            }
        }
        match kind {
            "null" => Value::Null,
            "boolean" => Value::Bool(self.rng.random_bool(0.5)),
            "integer" => self.integer(view),
            "number" => self.number(view),
            "string" => Value::String(self.string(view, hint)),
            "array" => self.array(view, hint),
            _ => self.object(view),
        }
    }

    /// The JSON type to produce.
    fn kind(&self, view: &View<'g>) -> &'static str {
        const ORDER: [&str; 6] = ["object", "array", "string", "integer", "number", "boolean"];
        if let Some(ts) = &view.types {
            for t in ORDER {
                if ts.contains(&t) {
                    return t;
                }
            }
            if ts.contains(&"null") {
                return "null";
            }
        }
        if view.structured || view.min_props.is_some() || view.max_props.is_some() {
            "object"
        } else if !view.items.is_empty() || view.min_items.is_some() || view.max_items.is_some() {
            "array"
        } else if view.format.is_some() || view.pattern.is_some() || view.min_len.is_some() || view.max_len.is_some() {
            "string"
        } else if view.minimum.is_some() || view.maximum.is_some() || view.multiple_of.is_some() {
            "number"
        } else if let Some(c) = view.example.or(view.default) {
            match g_kind(&crate::doc::value(self.g, c)) {
                Some(k) => k,
                None => "object",
            }
        } else {
            "object"
        }
    }

    /// Whether a documented value (example, default, enum member) satisfies
    /// the view's own constraints. `deep` also checks array items.
    fn fits(&mut self, v: &Value, view: &View<'g>, deep: bool) -> bool {
        if let Some(ts) = &view.types {
            let ok = ts.iter().any(|t| match *t {
                "integer" => {
                    v.as_i64().is_some() || v.as_u64().is_some() || v.as_f64().is_some_and(|f| f.fract() == 0.0)
                }
                "number" => v.is_number(),
                "string" => v.is_string(),
                "boolean" => v.is_boolean(),
                "array" => v.is_array(),
                "object" => v.is_object(),
                "null" => v.is_null(),
                _ => true,
            });
            if !ok && !ts.is_empty() {
                return false;
            }
        }
        if let Some(e) = view.enums {
            if !items(self.g, e).iter().any(|i| &crate::doc::value(self.g, *i) == v) {
                return false;
            }
        }
        match v {
            Value::Number(n) => {
                let Some(f) = n.as_f64() else { return true };
                if let Some((m, ex)) = view.minimum {
                    if f < m || (ex && f == m) {
                        return false;
                    }
                }
                if let Some((m, ex)) = view.maximum {
                    if f > m || (ex && f == m) {
                        return false;
                    }
                }
                if let Some(m) = view.multiple_of {
                    let q = f / m;
                    if (q - q.round()).abs() > 1e-9 {
                        return false;
                    }
                }
                true
            }
            Value::String(s) => {
                let len = s.chars().count() as u64;
                if view.min_len.is_some_and(|m| len < m) || view.max_len.is_some_and(|m| len > m) {
                    return false;
                }
                if let Some(p) = view.pattern {
                    if !self.caches.matches(p, s) {
                        return false;
                    }
                }
                if let Some(f) = view.format {
                    if !self.caches.format_ok(f, s) {
                        return false;
                    }
                }
                true
            }
            Value::Array(a) => {
                let len = a.len() as u64;
                if view.min_items.is_some_and(|m| len < m) || view.max_items.is_some_and(|m| len > m) {
                    return false;
                }
                if !deep || view.items.is_empty() {
                    return true;
                }
                let mut item_view = View::default();
                let mark = self.stack.len();
                for i in view.items.clone() {
                    self.collect(i, &mut item_view, 0);
                }
                self.stack.truncate(mark);
                if item_view.structured || item_view.circular {
                    return false;
                }
                a.iter().all(|x| self.fits(x, &item_view, false))
            }
            Value::Object(o) => {
                let len = o.len() as u64;
                !(view.min_props.is_some_and(|m| len < m) || view.max_props.is_some_and(|m| len > m))
            }
            _ => true,
        }
    }

    fn integer(&mut self, view: &View<'g>) -> Value {
        let lo = view.minimum.map(|(m, ex)| if ex { m.floor() + 1.0 } else { m.ceil() });
        let hi = view.maximum.map(|(m, ex)| if ex { m.ceil() - 1.0 } else { m.floor() });
        let (lo, hi) = range(lo, hi);
        let (lo, hi) = (lo.max(i64::MIN as f64) as i64, hi.min(i64::MAX as f64) as i64);
        let step = view.multiple_of.filter(|m| m.fract() == 0.0 && *m >= 1.0).map(|m| m as i64).unwrap_or(1);
        let first = lo.div_euclid(step) + i64::from(lo.rem_euclid(step) != 0);
        let last = hi.div_euclid(step);
        if first > last {
            return json!(lo);
        }
        let k = if last - first > 1_000_000 {
            first + self.rng.random_range(0..100)
        } else {
            self.rng.random_range(first..=last)
        };
        json!(k * step)
    }

    fn number(&mut self, view: &View<'g>) -> Value {
        let lo = view.minimum.map(|(m, ex)| if ex { m + f64::EPSILON.max(m.abs() * 1e-9) } else { m });
        let hi = view.maximum.map(|(m, ex)| if ex { m - f64::EPSILON.max(m.abs() * 1e-9) } else { m });
        let (lo, hi) = range(lo, hi);
        if let Some(m) = view.multiple_of {
            let first = (lo / m).ceil();
            let last = (hi / m).floor();
            if first <= last {
                let k = first + (self.rng.random_range(0..=((last - first).min(100.0) as u64)) as f64);
                return number(k * m);
            }
        }
        // Prefer whole numbers (they read naturally), else the middle.
        let (a, b) = (lo.ceil(), hi.floor());
        if a <= b {
            let span = (b - a).min(1_000_000.0) as u64;
            return number(a + self.rng.random_range(0..=span) as f64);
        }
        number((lo + hi) / 2.0)
    }

    fn string(&mut self, view: &View<'g>, hint: &str) -> String {
        let min = view.min_len.unwrap_or(0) as usize;
        let max = view.max_len.map(|m| m as usize).unwrap_or(usize::MAX).max(min);
        let fits_len = |s: &str| (min..=max).contains(&s.chars().count());
        if let Some(f) = view.format {
            if let Some(s) = self.formatted(f, hint) {
                if fits_len(&s) && view.pattern.is_none_or(|p| self.caches.matches(p, &s)) {
                    return s;
                }
            }
        }
        if let Some(p) = view.pattern {
            if let Some(pat) = self.caches.pattern(p) {
                for _ in 0..12 {
                    let s: String = self.rng.sample(&pat.gen);
                    if fits_len(&s) && pat.check.as_ref().is_none_or(|re| re.is_match(&s)) {
                        return s;
                    }
                }
            }
        }
        let mut s = self.word(hint);
        let n = s.chars().count();
        if n > max {
            s = s.chars().take(max).collect();
        }
        while s.chars().count() < min {
            s.push(char::from(b'a' + self.rng.random_range(0..26u8)));
        }
        s
    }

    /// A plain string: ids look like ids, other names are echoed.
    fn word(&mut self, hint: &str) -> String {
        let lower = hint.to_ascii_lowercase();
        if lower.ends_with("id") || lower.ends_with("identifier") || lower.ends_with("_tag") || lower == "tag" {
            return self.hex(32);
        }
        let base: String =
            lower.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-').take(24).collect();
        if base.is_empty() {
            format!("string-{}", self.hex(4))
        } else {
            format!("{base}-{}", self.hex(4))
        }
    }

    fn hex(&mut self, n: usize) -> String {
        (0..n).map(|_| char::from(b"0123456789abcdef"[self.rng.random_range(0..16usize)])).collect()
    }

    /// A string in a named format, or `None` for formats we do not know.
    fn formatted(&mut self, format: &str, hint: &str) -> Option<String> {
        let r = &mut self.rng;
        let n: u32 = r.random_range(1..1000);
        let (mo, d, h, mi, s) = (
            r.random_range(1..=12),
            r.random_range(1..=28),
            r.random_range(0..24),
            r.random_range(0..60),
            r.random_range(0..60),
        );
        let slug: String = hint.to_ascii_lowercase().chars().filter(|c| c.is_ascii_alphanumeric()).take(16).collect();
        let slug = if slug.is_empty() { "resource".to_string() } else { slug };
        Some(match format {
            "date-time" => format!("2024-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z"),
            "date" => format!("2024-{mo:02}-{d:02}"),
            "time" => format!("{h:02}:{mi:02}:{s:02}Z"),
            "email" | "idn-email" => format!("user{n}@example.com"),
            "uuid" => {
                let a: u128 = r.random();
                let a = (a & !(0xf << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
                let h = format!("{a:032x}");
                format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
            }
            "uri" | "url" | "iri" | "uri-reference" | "iri-reference" => format!("https://example.com/{slug}/{n}"),
            "uri-template" => "https://example.com/{id}".to_string(),
            "ipv4" => format!("192.0.2.{}", n % 254 + 1),
            "ipv6" => format!("2001:db8::{n:x}"),
            "hostname" | "idn-hostname" => format!("host{n}.example.com"),
            "byte" => "bW9jayBkYXRh".to_string(),
            "binary" => "mock data".to_string(),
            "password" => format!("p4ssw0rd-{n}"),
            "duration" => format!("PT{n}M"),
            "regex" => "^[a-z]+$".to_string(),
            "json-pointer" => format!("/{slug}/0"),
            "relative-json-pointer" => "0/name".to_string(),
            "int32" | "int64" | "integer" | "unix-time" | "timestamp" => n.to_string(),
            "decimal" | "float" | "double" | "number" => format!("{n}.5"),
            "cidr" => "192.0.2.0/24".to_string(),
            "mac" => "00:00:5e:00:53:01".to_string(),
            _ => return None,
        })
    }

    fn array(&mut self, view: &View<'g>, hint: &str) -> Value {
        let min = view.min_items.unwrap_or(0).min(MAX_ITEMS);
        let max = view.max_items.unwrap_or(u64::MAX).min(MAX_ITEMS.max(min));
        let want = if self.budget == 0 || self.depth >= OPTIONAL_DEPTH {
            min
        } else {
            self.rng.random_range(1..=2u64).clamp(min, max.max(min))
        };
        let want = want.min(max);
        let singular = hint.strip_suffix('s').unwrap_or(hint).to_string();
        let mut out: Vec<Value> = Vec::new();
        let mut tries = 0;
        while (out.len() as u64) < want && tries < want * 4 + 4 {
            tries += 1;
            if view.items.is_empty() {
                out.push(Value::String(self.word(&singular)));
                continue;
            }
            self.depth += 1;
            let v = self.gen(&view.items.clone(), &singular);
            self.depth -= 1;
            match v {
                Gen::Value(v) => {
                    if view.unique && out.contains(&v) {
                        continue;
                    }
                    out.push(v);
                }
                // Items that recurse: an empty list unless one is required.
                Gen::Circular => {
                    if min == 0 {
                        break;
                    }
                    out.push(json!({}));
                }
            }
        }
        Value::Array(out)
    }

    fn object(&mut self, view: &View<'g>) -> Value {
        let mut out = Map::new();
        let max_props = view.max_props.map(|m| m as usize).unwrap_or(usize::MAX);
        // Required properties first (in declaration order), then optional.
        let mut order: Vec<(&'g str, bool)> = Vec::new();
        for (name, _) in &view.properties {
            if view.required.contains(name) {
                order.push((name, true));
            }
        }
        for r in &view.required {
            if !view.properties.iter().any(|(n, _)| n == r) {
                order.push((r, true));
            }
        }
        for (name, _) in &view.properties {
            if !view.required.contains(name) {
                order.push((name, false));
            }
        }
        for (name, required) in order {
            if out.len() >= max_props && !required {
                continue;
            }
            let schemas: Vec<NodeId> =
                view.properties.iter().find(|(n, _)| *n == name).map(|(_, s)| s.clone()).unwrap_or_default();
            if !required {
                if self.depth >= OPTIONAL_DEPTH || self.budget == 0 {
                    continue;
                }
                if schemas.iter().any(|s| self.flagged(*s)) {
                    continue;
                }
            }
            // Deep down or out of budget, a required property that may be
            // null is null (Stripe marks most fields required and nullable).
            if required && (self.depth >= OPTIONAL_DEPTH || self.budget == 0) && self.all_nullable(&schemas) {
                out.insert(name.to_string(), Value::Null);
                continue;
            }
            let schemas = if schemas.is_empty() { view.additional.clone() } else { schemas };
            self.depth += 1;
            let v =
                if schemas.is_empty() { Gen::Value(Value::String(self.word(name))) } else { self.gen(&schemas, name) };
            self.depth -= 1;
            match v {
                Gen::Value(v) => {
                    out.insert(name.to_string(), v);
                }
                Gen::Circular if required => {
                    let placeholder = self.placeholder(&schemas);
                    out.insert(name.to_string(), placeholder);
                }
                Gen::Circular => {}
            }
        }
        // Maps (`additionalProperties` with a schema) get one entry; more when
        // `minProperties` asks.
        let min_props = view.min_props.unwrap_or(0) as usize;
        let wanted = if view.properties.is_empty() && !view.additional.is_empty() && self.budget > 0 {
            min_props.max(1)
        } else {
            min_props
        };
        let mut i = 1;
        while out.len() < wanted.min(max_props).min(64) && !view.no_additional {
            let key = format!("additionalProp{i}");
            i += 1;
            if out.contains_key(&key) {
                continue;
            }
            let v = if view.additional.is_empty() {
                Gen::Value(Value::String(self.word(&key)))
            } else {
                self.depth += 1;
                let v = self.gen(&view.additional.clone(), "");
                self.depth -= 1;
                v
            };
            match v {
                Gen::Value(v) => {
                    out.insert(key, v);
                }
                Gen::Circular => {
                    out.insert(key, json!({}));
                }
            }
        }
        Value::Object(out)
    }

    /// True when every schema of the list accepts `null` (`nullable`,
    /// `type: [.., "null"]`, or a `null` branch of its `anyOf`/`oneOf`).
    fn all_nullable(&self, schemas: &[NodeId]) -> bool {
        let g = self.g;
        !schemas.is_empty()
            && schemas.iter().all(|s| {
                let s = g.deref(*s);
                let null_type = |id: NodeId| get_strs(g, g.deref(id), "type").contains(&"null");
                get_bool(g, s, "nullable") == Some(true)
                    || get_bool(g, s, "x-nullable") == Some(true)
                    || null_type(s)
                    || ["anyOf", "oneOf"].iter().any(|k| {
                        g.get(s, k).is_some_and(|l| {
                            items(g, l)
                                .iter()
                                .any(|b| null_type(*b) || get_bool(g, g.deref(*b), "nullable") == Some(true))
                        })
                    })
            })
    }

    /// What a required property that would recurse gets: `{}` for objects,
    /// `[]` for arrays, otherwise `null`.
    fn placeholder(&self, schemas: &[NodeId]) -> Value {
        let g = self.g;
        for s in schemas {
            let t = get_strs(g, g.deref(*s), "type");
            if t.contains(&"object") || raw_get(g, g.deref(*s), "properties").is_some() {
                return json!({});
            }
            if t.contains(&"array") {
                return json!([]);
            }
        }
        let any_object = schemas.iter().any(|s| get_str(g, g.deref(*s), "type").is_none());
        if any_object {
            json!({})
        } else {
            Value::Null
        }
    }
}

/// The types a schema declares, or implies by its keywords.
fn implied_types(g: &Graph, id: NodeId) -> Vec<&str> {
    implied(g, id, 0).unwrap_or_default()
}

/// The types a schema allows, from `type`, from keywords that only make sense
/// for one type, or through `allOf` (intersection) and `oneOf`/`anyOf`
/// (union); `None` when it allows any type.
fn implied(g: &Graph, id: NodeId, depth: usize) -> Option<Vec<&str>> {
    let id = g.deref(id);
    let declared = get_strs(g, id, "type");
    if !declared.is_empty() {
        return Some(declared);
    }
    if raw_get(g, id, "properties").is_some() || raw_get(g, id, "additionalProperties").is_some() {
        return Some(vec!["object"]);
    }
    if raw_get(g, id, "items").is_some() {
        return Some(vec!["array"]);
    }
    if depth > 6 {
        return None;
    }
    let mut out: Option<Vec<&str>> = None;
    if let Some(list) = raw_get(g, id, "allOf") {
        for b in items(g, list) {
            if let Some(ts) = implied(g, *b, depth + 1) {
                out = Some(match out {
                    None => ts,
                    Some(prev) => prev.into_iter().filter(|t| ts.contains(t)).collect(),
                });
            }
        }
    }
    for k in ["oneOf", "anyOf"] {
        if let Some(list) = raw_get(g, id, k) {
            let mut union: Vec<&str> = Vec::new();
            for b in items(g, list) {
                match implied(g, *b, depth + 1) {
                    Some(ts) => union.extend(ts.into_iter().filter(|t| !union.contains(t)).collect::<Vec<_>>()),
                    None => return out,
                }
            }
            out = Some(match out {
                None => union,
                Some(prev) => prev.into_iter().filter(|t| union.contains(t)).collect(),
            });
        }
    }
    out
}

fn g_kind(v: &Value) -> Option<&'static str> {
    Some(match v {
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
        Value::Null => return None,
    })
}

fn max_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, y) => x.or(y),
    }
}

fn min_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

/// A sensible numeric range from optional bounds: 1..=100 when open.
fn range(lo: Option<f64>, hi: Option<f64>) -> (f64, f64) {
    match (lo, hi) {
        (Some(l), Some(h)) => (l, h.max(l)),
        (Some(l), None) => (l, l + 100.0),
        (None, Some(h)) if h >= 1.0 => (1.0, h.clamp(1.0, 100.0)),
        (None, Some(h)) => (h - 100.0, h),
        (None, None) => (1.0, 100.0),
    }
}

fn number(f: f64) -> Value {
    if f.fract() == 0.0 && f.abs() < 9.0e15 {
        json!(f as i64)
    } else {
        Number::from_f64(f).map(Value::Number).unwrap_or(json!(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Converter;

    fn graph(v: Value) -> (Graph, NodeId) {
        let mut g = Graph::default();
        let root = g.push_value(&v);
        g.set_root(root);
        (g, root)
    }

    /// Synthesises with several seeds and checks each value against the
    /// schema's own JSON Schema.
    fn valid_values(schema: Value) -> Vec<Value> {
        let (g, root) = graph(schema);
        let json_schema = Converter::standalone(&g, root, Direction::Response, true);
        let v = crate::schema::compile(&json_schema, || json!(true)).unwrap();
        (0..20)
            .map(|seed| {
                let value = Synthesizer::new(&g, Direction::Response, seed).value(root);
                let errors: Vec<String> = v.iter_errors(&value).map(|e| e.to_string()).collect();
                assert!(errors.is_empty(), "{value} is invalid for {json_schema}: {errors:?}");
                value
            })
            .collect()
    }

    #[test]
    fn formats_are_honoured() {
        for format in ["date-time", "date", "time", "email", "uuid", "uri", "ipv4", "ipv6", "hostname", "duration"] {
            valid_values(json!({"type": "string", "format": format}));
        }
    }

    #[test]
    fn bounds_patterns_and_enums_are_honoured() {
        valid_values(json!({"type": "integer", "minimum": 5, "maximum": 9, "exclusiveMaximum": true, "multipleOf": 2}));
        valid_values(json!({"type": "number", "minimum": 0.1, "maximum": 0.2}));
        valid_values(json!({"type": "string", "pattern": "^[A-Z]{2}-\\d{3}$"}));
        valid_values(json!({"type": "string", "minLength": 40, "maxLength": 41}));
        valid_values(
            json!({"type": "array", "items": {"type": "string", "enum": ["a", "b", "c"]}, "minItems": 3, "uniqueItems": true}),
        );
        valid_values(json!({"type": "object", "additionalProperties": {"type": "integer"}, "minProperties": 2}));
        let values = valid_values(json!({"type": "string", "enum": ["x", "y"], "example": "nope"}));
        assert!(values.iter().any(|v| v == "x") && values.iter().any(|v| v == "y"));
        // A fitting example is used as it is.
        assert!(valid_values(json!({"type": "string", "example": "hello"})).iter().all(|v| v == "hello"));
    }

    #[test]
    fn all_of_merges_and_one_of_picks_exactly_one() {
        let values = valid_values(json!({
            "allOf": [
                {"type": "object", "required": ["a"], "properties": {"a": {"type": "integer", "minimum": 10}}},
                {"properties": {"a": {"maximum": 12}, "b": {"type": "boolean"}}, "required": ["b"]}
            ]
        }));
        assert!(values.iter().all(|v| v["a"].as_i64().is_some_and(|a| (10..=12).contains(&a)) && v["b"].is_boolean()));
        // Overlapping branches: only a value with `kind` = "b" matches one.
        valid_values(json!({
            "oneOf": [
                {"type": "object", "properties": {"kind": {"type": "string"}}},
                {"type": "object", "required": ["kind"], "properties": {"kind": {"enum": ["b"]}}, "additionalProperties": false}
            ]
        }));
        // `anyOf` with a null branch picks the useful one.
        let values = valid_values(json!({"anyOf": [{"type": "null"}, {"type": "integer"}]}));
        assert!(values.iter().all(Value::is_i64));
    }

    #[test]
    fn same_seed_same_value() {
        let (g, root) = graph(
            json!({"type": "object", "properties": {"id": {"type": "string"}, "n": {"type": "integer"}, "at": {"type": "string", "format": "date-time"}}}),
        );
        let a = Synthesizer::new(&g, Direction::Response, 42).value(root);
        let b = Synthesizer::new(&g, Direction::Response, 42).value(root);
        let c = Synthesizer::new(&g, Direction::Response, 43).value(root);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a["id"].as_str().unwrap().len(), 32, "ids look like ids: {a}");
    }
}
