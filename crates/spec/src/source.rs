//! Reading spec documents: local files or http(s) URLs, JSON or YAML, and every
//! other document their `$ref`s point at (relative to the document that holds
//! the reference).

use std::collections::{HashMap, HashSet};
use std::fmt;

use indexmap::IndexMap;
use serde_json::Value;
use url::Url;

use crate::graph::{Graph, Node, NodeId};
use crate::intern::Interner;
use crate::resolve::RefBits;
use crate::yaml::{self, KeptAsText};
use crate::{LoadError, Problem, ProblemKind};

/// Largest document we agree to read, local or remote.
const MAX_DOCUMENT_BYTES: usize = 256 * 1024 * 1024;

/// The root document and every external document reachable through `$ref`s,
/// keyed by URL without fragment. All of them live in one hash-consed arena
/// ([`Interner`]): a subtree written twice, in one document or in two, is one
/// node, and resolution adds its nodes to the same arena, reusing every
/// subtree that holds no reference as it is.
pub struct Documents {
    /// URL of the root document.
    pub root: Url,
    pub(crate) arena: Interner,
    pub(crate) docs: HashMap<Url, NodeId>,
    /// Which arena nodes have a `$ref` at or below them, kept up to date with
    /// the arena: computed once here, used by `check`, external-ref discovery
    /// and resolution alike.
    pub(crate) bits: RefBits,
    /// Referenced documents that could not be read or parsed (each already
    /// a [`ProblemKind::UnreadableDocument`]).
    unreadable: Vec<Url>,
}

impl fmt::Debug for Documents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Documents")
            .field("root", &self.root.as_str())
            .field("documents", &self.docs.len())
            .field("nodes", &self.arena.graph().len())
            .finish()
    }
}

impl Documents {
    /// The root node of the document at `url` (fragment ignored), if it was loaded.
    pub fn get(&self, url: &Url) -> Option<NodeId> {
        self.docs.get(&strip_fragment(url)).copied()
    }

    /// True when `url` (fragment ignored) was referenced but could not be
    /// read or parsed.
    pub fn is_unreadable(&self, url: &Url) -> bool {
        self.unreadable.contains(&strip_fragment(url))
    }

    /// The arena holding every document (as written: no reference resolved).
    pub fn graph(&self) -> &Graph {
        self.arena.graph()
    }

    /// The root document's node.
    pub fn root_node(&self) -> NodeId {
        self.docs[&self.root]
    }

    /// Replaces the root document by `value` (Swagger 2.0 conversion).
    pub(crate) fn replace_root(&mut self, value: &Value) {
        let id = self.arena.push_value(value);
        self.bits.update(self.arena.graph());
        self.docs.insert(self.root.clone(), id);
    }

    /// A single in-memory document at `url` (see [`crate::load_from_value`]).
    pub(crate) fn single(url: Url, root: &Value) -> Self {
        let mut arena = Interner::new();
        let id = arena.push_value(root);
        let mut bits = RefBits::default();
        bits.update(arena.graph());
        Documents { root: url.clone(), arena, docs: HashMap::from([(url, id)]), bits, unreadable: Vec::new() }
    }

    /// A single in-memory document, for unit tests.
    #[cfg(test)]
    pub(crate) fn for_tests(root: Value) -> Self {
        Self::single(Url::parse("file:///test/spec.json").unwrap(), &root)
    }

    /// Every loaded document with its URL and root node.
    pub fn iter(&self) -> impl Iterator<Item = (&Url, NodeId)> {
        self.docs.iter().map(|(u, id)| (u, *id))
    }

    /// Number of documents loaded.
    pub fn len(&self) -> usize {
        self.docs.len()
    }

    /// True when no document is loaded (never, once built).
    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }
}

/// Turns a CLI/config spec location into a URL: `http(s)://…` stays a URL,
/// anything else is a path (relative to the current directory).
pub fn location_to_url(location: &str) -> Result<Url, LoadError> {
    if location.starts_with("http://") || location.starts_with("https://") {
        return Url::parse(location).map_err(|e| LoadError::new(location, "", format!("not a valid URL: {e}")));
    }
    let path = std::path::Path::new(location);
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| LoadError::new(location, "", format!("cannot read the current directory: {e}")))?
            .join(path)
    };
    let abs = std::fs::canonicalize(&abs).unwrap_or(abs);
    Url::from_file_path(&abs).map_err(|_| LoadError::new(location, "", "not a valid file path"))
}

/// Loads the root document and, transitively, every document referenced by a
/// `$ref` with a non-fragment part. A referenced document that cannot be read
/// or parsed is a [`ProblemKind::UnreadableDocument`] naming the first
/// reference to it (its references resolve to an `$unresolved` marker
/// later); a missing or unparsable root document is a [`LoadError`].
pub async fn load_documents(
    location: &str,
    http: &reqwest::Client,
    problems: &mut Vec<Problem>,
) -> Result<Documents, LoadError> {
    let root = location_to_url(location)?;
    let mut arena = Interner::new();
    let mut bits = RefBits::default();
    let parsed = fetch_and_parse(&root, http, &mut arena, problems).await?;
    note_kept_as_text(&root, &parsed.kept_as_text, problems);
    let mut docs = HashMap::new();
    let mut queue = Vec::new();
    bits.update(arena.graph());
    collect_external_refs(arena.graph(), &bits, &root, parsed.node, &mut queue);
    docs.insert(root.clone(), parsed.node);
    // Each unreadable document once: the first reference to it, the error,
    // and how many references in all point into it.
    let mut unreadable: IndexMap<Url, (Url, String, LoadError, usize)> = IndexMap::new();
    while let Some((target, from_doc, from_pointer)) = queue.pop() {
        if let Some((.., count)) = unreadable.get_mut(&target) {
            *count += 1;
            continue;
        }
        if docs.contains_key(&target) {
            continue;
        }
        match fetch_and_parse(&target, http, &mut arena, problems).await {
            Ok(parsed) => {
                note_kept_as_text(&target, &parsed.kept_as_text, problems);
                bits.update(arena.graph());
                collect_external_refs(arena.graph(), &bits, &target, parsed.node, &mut queue);
                docs.insert(target, parsed.node);
            }
            Err(e) => {
                unreadable.insert(target, (from_doc, from_pointer, e, 1));
            }
        }
    }
    for (target, (from_doc, from_pointer, e, count)) in &unreadable {
        let others = match count - 1 {
            0 => String::new(),
            1 => " (and 1 other reference)".into(),
            n => format!(" (and {n} other references)"),
        };
        let pointer = if e.pointer.is_empty() { String::new() } else { format!("#{}", e.pointer) };
        problems.push(Problem {
            kind: ProblemKind::UnreadableDocument,
            file: display_url(from_doc),
            pointer: from_pointer.clone(),
            message: format!(
                "cannot load the document this `$ref`{others} points at, so what it refers to is missing: {}{pointer}: {}. Fix that document or the reference",
                display_url(target),
                e.message
            ),
        });
    }
    let unreadable = unreadable.into_keys().collect();
    Ok(Documents { root, arena, docs, bits, unreadable })
}

/// Numbers read as text (see [`crate::yaml`]): a problem each, so the change is not silent.
fn note_kept_as_text(url: &Url, kept: &[KeptAsText], problems: &mut Vec<Problem>) {
    for k in kept {
        problems.push(Problem {
            kind: ProblemKind::Converted,
            file: display_url(url),
            pointer: k.pointer.clone(),
            message: format!(
                "the number {} has no exact JSON/JavaScript number; it reads as the string \"{}\"",
                k.literal, k.literal
            ),
        });
    }
}

/// Finds `$ref`s pointing outside `base` and queues (target document, referring
/// document, JSON pointer of the reference). Walks only subtrees that hold a
/// reference, each distinct one once (its first place names it).
fn collect_external_refs(g: &Graph, bits: &RefBits, base: &Url, doc: NodeId, out: &mut Vec<(Url, Url, String)>) {
    let mut seen = HashSet::new();
    let mut stack = vec![(doc, String::new())];
    while let Some((id, pointer)) = stack.pop() {
        if !bits.below(id) || !seen.insert(id) {
            continue;
        }
        match g.node(id) {
            Node::Object(entries) => {
                if let Some(r) = ref_string(g, entries) {
                    if !r.starts_with('#') {
                        if let Ok(target) = base.join(r) {
                            out.push((strip_fragment(&target), base.clone(), format!("{pointer}/$ref")));
                        }
                    }
                }
                for (k, c) in entries.iter().rev() {
                    stack.push((*c, format!("{pointer}/{}", escape_pointer_token(k))));
                }
            }
            Node::Array(items) => {
                for (i, c) in items.iter().enumerate().rev() {
                    stack.push((*c, format!("{pointer}/{i}")));
                }
            }
            _ => {}
        }
    }
}

/// The `$ref` of an object, when it is a string (a schema property that
/// happens to be named `$ref` is not a reference).
pub(crate) fn ref_string<'g>(g: &'g Graph, entries: &[(Box<str>, NodeId)]) -> Option<&'g str> {
    // The last of repeated keys wins, as when the document was read.
    entries.iter().rev().find(|(k, _)| &**k == "$ref").and_then(|(_, v)| g.as_str(*v))
}

/// A document read into the arena: its root, and the YAML numbers kept as text.
struct ParsedNode {
    node: NodeId,
    kept_as_text: Vec<KeptAsText>,
}

async fn fetch_and_parse(
    url: &Url,
    http: &reqwest::Client,
    arena: &mut Interner,
    problems: &mut Vec<Problem>,
) -> Result<ParsedNode, LoadError> {
    let shown = display_url(url);
    let bytes = match url.scheme() {
        "file" => {
            let path = url.to_file_path().map_err(|_| LoadError::new(&shown, "", "not a local file path"))?;
            let meta =
                std::fs::metadata(&path).map_err(|e| LoadError::new(&shown, "", format!("cannot read file: {e}")))?;
            if meta.len() as usize > MAX_DOCUMENT_BYTES {
                return Err(LoadError::new(
                    &shown,
                    "",
                    format!("file is {} bytes; the limit is {MAX_DOCUMENT_BYTES}", meta.len()),
                ));
            }
            std::fs::read(&path).map_err(|e| LoadError::new(&shown, "", format!("cannot read file: {e}")))?
        }
        // Through the on-disk cache: revalidated, and the cached copy (with
        // a warning) when the server cannot be reached.
        "http" | "https" => {
            let fetched = crate::cache::fetch(url, http, MAX_DOCUMENT_BYTES)
                .await
                .map_err(|message| LoadError::new(&shown, "", message))?;
            if let crate::cache::Origin::Stale { reason, age_secs } = &fetched.origin {
                problems.push(Problem {
                    kind: ProblemKind::StaleCopy,
                    file: shown.clone(),
                    pointer: String::new(),
                    message: format!(
                        "{reason}; using the copy cached {} ago (the API may have changed since)",
                        crate::cache::human_age(*age_secs)
                    ),
                });
            }
            fetched.body
        }
        other => return Err(LoadError::new(&shown, "", format!("unsupported URL scheme `{other}`"))),
    };
    parse_into(&bytes, arena).map_err(|msg| LoadError::new(&shown, "", msg))
}

/// [`parse`] into the arena: JSON straight from the text (no tree in
/// between), YAML through its value.
fn parse_into(bytes: &[u8], arena: &mut Interner) -> Result<ParsedNode, String> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if is_json(bytes) {
        let node = arena.parse_json(bytes).map_err(|e| format!("invalid JSON: {e}"))?;
        return Ok(ParsedNode { node, kept_as_text: Vec::new() });
    }
    let parsed = yaml::parse(bytes)?;
    Ok(ParsedNode { node: arena.push_value(&parsed.value), kept_as_text: parsed.kept_as_text })
}

/// JSON when the first significant character is `{` or `[`.
fn is_json(bytes: &[u8]) -> bool {
    matches!(bytes.iter().find(|b| !b.is_ascii_whitespace()), Some(b'{') | Some(b'['))
}

/// Parses JSON or YAML (JSON when the first significant character is `{` or
/// `[`). A YAML number that no JSON number holds is kept as its literal text
/// (see [`parse`] for where).
pub fn parse_document(bytes: &[u8]) -> Result<Value, String> {
    parse(bytes).map(|p| p.value)
}

/// [`parse_document`], with the numbers of a YAML document that were kept as
/// text. JSON numbers beyond `u64` read as the nearest `f64`, as serde_json
/// reads them (holding every literal would take serde_json's
/// `arbitrary_precision`, which changes every number of every crate).
pub fn parse(bytes: &[u8]) -> Result<yaml::Parsed, String> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if is_json(bytes) {
        let value = serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON: {e}"))?;
        Ok(yaml::Parsed { value, kept_as_text: Vec::new() })
    } else {
        yaml::parse(bytes)
    }
}

fn strip_fragment(url: &Url) -> Url {
    let mut u = url.clone();
    u.set_fragment(None);
    u
}

/// A URL as a person would write it: a plain path for local files.
pub fn display_url(url: &Url) -> String {
    if url.scheme() == "file" {
        if let Ok(p) = url.to_file_path() {
            return p.display().to_string();
        }
    }
    url.to_string()
}

/// Escapes one JSON pointer token (`~` → `~0`, `/` → `~1`).
pub fn escape_pointer_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_integer_keys_become_strings() {
        let v = parse_document(b"responses:\n  200:\n    description: ok\n").unwrap();
        assert_eq!(v["responses"]["200"]["description"], "ok");
    }

    #[test]
    fn json_errors_say_where() {
        let err = parse_document(b"{\n  \"a\": 1,\n}").unwrap_err();
        assert!(err.contains("line 3"), "{err}");
    }

    #[test]
    fn yaml_errors_say_where() {
        let err = parse_document(b"a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.contains("line"), "{err}");
    }
}
