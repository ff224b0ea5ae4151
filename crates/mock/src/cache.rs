//! Compiled things shared by every answer: generators and checkers for the
//! spec's `pattern`s and checkers for `format`s. Each is compiled the first
//! time it is needed and kept (a spec has a bounded number of them).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use codemode_spec::{Graph, NodeId};
use regex_syntax::hir::{Hir, HirKind};

use crate::schema::{Converter, Direction};

/// A compiled schema shared between threads.
type Validator = Arc<jsonschema::Validator>;

/// A `pattern` ready to generate and check strings.
pub(crate) struct Pattern {
    /// Generates strings matching the pattern (anchors and word boundaries
    /// removed, since the generator produces whole strings anyway).
    pub gen: rand_regex::Regex,
    /// Checks candidates (JSON Schema patterns are unanchored searches).
    /// `None` when the `regex` crate cannot compile the pattern.
    pub check: Option<regex::Regex>,
}

/// Shared caches (cheap to create; [`crate::MockApi`] keeps one).
#[derive(Default)]
pub struct Caches {
    patterns: Mutex<HashMap<String, Option<Arc<Pattern>>>>,
    checks: Mutex<HashMap<String, Option<Arc<regex::Regex>>>>,
    formats: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
    branches: Mutex<HashMap<(NodeId, Direction), Option<Validator>>>,
}

impl std::fmt::Debug for Caches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caches").finish_non_exhaustive()
    }
}

impl Caches {
    /// The generator for `pattern`, or `None` when it cannot be generated
    /// from (look-around, back-references, syntax the parser does not know).
    pub(crate) fn pattern(&self, pattern: &str) -> Option<Arc<Pattern>> {
        let mut map = self.patterns.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(pattern.to_string()).or_insert_with(|| compile_pattern(pattern).map(Arc::new)).clone()
    }

    /// True when `s` satisfies `pattern` (or the pattern cannot be checked).
    pub(crate) fn matches(&self, pattern: &str, s: &str) -> bool {
        let re = {
            let mut map = self.checks.lock().unwrap_or_else(|e| e.into_inner());
            map.entry(pattern.to_string()).or_insert_with(|| regex::Regex::new(pattern).ok().map(Arc::new)).clone()
        };
        re.is_none_or(|re| re.is_match(s))
    }

    /// True when `s` is valid for `format`, by the same checks validation
    /// uses (unknown formats accept everything).
    pub(crate) fn format_ok(&self, format: &str, s: &str) -> bool {
        let v = {
            let mut map = self.formats.lock().unwrap_or_else(|e| e.into_inner());
            match map.get(format) {
                Some(v) => v.clone(),
                None => {
                    let Ok(v) = crate::schema::options().build(&serde_json::json!({ "format": format })) else {
                        return true;
                    };
                    let v = Arc::new(v);
                    map.insert(format.to_string(), v.clone());
                    v
                }
            }
        };
        v.is_valid(&serde_json::Value::String(s.to_string()))
    }
}

impl Caches {
    /// The compiled schema of one `oneOf` branch (`None` when it does not compile).
    pub(crate) fn branch(&self, g: &Graph, id: NodeId, direction: Direction) -> Option<Arc<jsonschema::Validator>> {
        if let Some(v) = self.branches.lock().unwrap_or_else(|e| e.into_inner()).get(&(id, direction)) {
            return v.clone();
        }
        // Compiled outside the lock: a large branch can take a while.
        let schema = Converter::standalone(g, id, direction, true);
        let compiled =
            crate::schema::compile(&schema, || Converter::standalone(g, id, direction, false)).ok().map(Arc::new);
        self.branches.lock().unwrap_or_else(|e| e.into_inner()).insert((id, direction), compiled.clone());
        compiled
    }
}

fn compile_pattern(pattern: &str) -> Option<Pattern> {
    // ASCII classes first (`\w`, `\d` read as people expect in ids), then
    // Unicode for patterns that need it.
    let hir = match regex_syntax::ParserBuilder::new().unicode(false).build().parse(pattern) {
        Ok(h) => h,
        Err(_) => regex_syntax::ParserBuilder::new().build().parse(pattern).ok()?,
    };
    let gen = rand_regex::Regex::with_hir(strip_looks(hir), 6).ok()?;
    if !gen.is_utf8() {
        return None;
    }
    Some(Pattern { gen, check: regex::Regex::new(pattern).ok() })
}

/// Removes anchors and word-boundary assertions, which the generator
/// refuses; candidates are checked against the real pattern afterwards.
fn strip_looks(hir: Hir) -> Hir {
    match hir.into_kind() {
        HirKind::Look(_) => Hir::empty(),
        HirKind::Concat(hs) => Hir::concat(hs.into_iter().map(strip_looks).collect()),
        HirKind::Alternation(hs) => Hir::alternation(hs.into_iter().map(strip_looks).collect()),
        HirKind::Capture(mut c) => {
            c.sub = Box::new(strip_looks(*c.sub));
            Hir::capture(c)
        }
        HirKind::Repetition(mut r) => {
            r.sub = Box::new(strip_looks(*r.sub));
            Hir::repetition(r)
        }
        HirKind::Empty => Hir::empty(),
        HirKind::Literal(l) => Hir::literal(l.0),
        HirKind::Class(c) => Hir::class(c),
    }
}
