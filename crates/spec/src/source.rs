//! Reading spec documents: local files or http(s) URLs, JSON or YAML, and every
//! other document their `$ref`s point at (relative to the document that holds
//! the reference).

use std::collections::HashMap;

use indexmap::IndexMap;
use serde_json::Value;
use url::Url;

use crate::yaml::{self, KeptAsText};
use crate::{LoadError, Problem, ProblemKind};

/// Largest document we agree to read, local or remote.
const MAX_DOCUMENT_BYTES: usize = 256 * 1024 * 1024;

/// The root document and every external document reachable through `$ref`s,
/// keyed by URL without fragment.
#[derive(Debug)]
pub struct Documents {
    /// URL of the root document.
    pub root: Url,
    docs: HashMap<Url, Value>,
    /// Referenced documents that could not be read or parsed (each already
    /// a [`ProblemKind::UnreadableDocument`]).
    unreadable: Vec<Url>,
}

impl Documents {
    /// The document at `url` (fragment ignored), if it was loaded.
    pub fn get(&self, url: &Url) -> Option<&Value> {
        self.docs.get(&strip_fragment(url))
    }

    /// True when `url` (fragment ignored) was referenced but could not be
    /// read or parsed.
    pub fn is_unreadable(&self, url: &Url) -> bool {
        self.unreadable.contains(&strip_fragment(url))
    }

    /// The root document.
    pub fn root_value(&self) -> &Value {
        &self.docs[&self.root]
    }

    /// Mutable access to the root document (used for Swagger 2.0 conversion).
    pub fn root_value_mut(&mut self) -> &mut Value {
        self.docs.get_mut(&self.root).expect("root document is loaded")
    }

    /// A single in-memory document at `url` (see [`crate::load_from_value`]).
    pub(crate) fn single(url: Url, root: Value) -> Self {
        Documents { root: url.clone(), docs: HashMap::from([(url, root)]), unreadable: Vec::new() }
    }

    /// A single in-memory document, for unit tests.
    #[cfg(test)]
    pub(crate) fn for_tests(root: Value) -> Self {
        Self::single(Url::parse("file:///test/spec.json").unwrap(), root)
    }

    /// Every loaded document with its URL.
    pub fn iter(&self) -> impl Iterator<Item = (&Url, &Value)> {
        self.docs.iter()
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
    let parsed = fetch_and_parse(&root, http, problems).await?;
    note_kept_as_text(&root, &parsed.kept_as_text, problems);
    let mut docs = HashMap::new();
    let mut queue = Vec::new();
    collect_external_refs(&root, &parsed.value, "", &mut queue);
    docs.insert(root.clone(), parsed.value);
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
        match fetch_and_parse(&target, http, problems).await {
            Ok(parsed) => {
                note_kept_as_text(&target, &parsed.kept_as_text, problems);
                collect_external_refs(&target, &parsed.value, "", &mut queue);
                docs.insert(target, parsed.value);
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
    Ok(Documents { root, docs, unreadable })
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
/// document, JSON pointer of the reference).
fn collect_external_refs(base: &Url, value: &Value, pointer: &str, out: &mut Vec<(Url, Url, String)>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                if !r.starts_with('#') {
                    if let Ok(target) = base.join(r) {
                        out.push((strip_fragment(&target), base.clone(), format!("{pointer}/$ref")));
                    }
                }
            }
            for (k, v) in map {
                if matches!(v, Value::Object(_) | Value::Array(_)) {
                    collect_external_refs(base, v, &format!("{pointer}/{}", escape_pointer_token(k)), out);
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                if matches!(v, Value::Object(_) | Value::Array(_)) {
                    collect_external_refs(base, v, &format!("{pointer}/{i}"), out);
                }
            }
        }
        _ => {}
    }
}

async fn fetch_and_parse(
    url: &Url,
    http: &reqwest::Client,
    problems: &mut Vec<Problem>,
) -> Result<yaml::Parsed, LoadError> {
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
    parse(&bytes).map_err(|msg| LoadError::new(&shown, "", msg))
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
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if matches!(first, Some(b'{') | Some(b'[')) {
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
