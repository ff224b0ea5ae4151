//! Reading spec documents: local files or http(s) URLs, JSON or YAML, and every
//! other document their `$ref`s point at (relative to the document that holds
//! the reference).

use std::collections::HashMap;

use serde_json::Value;
use url::Url;

use crate::{LoadError, Problem};

/// Largest document we agree to read, local or remote.
const MAX_DOCUMENT_BYTES: usize = 256 * 1024 * 1024;

/// The root document and every external document reachable through `$ref`s,
/// keyed by URL without fragment.
#[derive(Debug)]
pub struct Documents {
    /// URL of the root document.
    pub root: Url,
    docs: HashMap<Url, Value>,
}

impl Documents {
    /// The document at `url` (fragment ignored), if it was loaded.
    pub fn get(&self, url: &Url) -> Option<&Value> {
        self.docs.get(&strip_fragment(url))
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
        Documents { root: url.clone(), docs: HashMap::from([(url, root)]) }
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
/// `$ref` with a non-fragment part. A missing external document is recorded
/// as a [`Problem`] (its references resolve to an error marker later); a
/// missing or unparsable root document is a [`LoadError`].
pub async fn load_documents(
    location: &str,
    http: &reqwest::Client,
    problems: &mut Vec<Problem>,
) -> Result<Documents, LoadError> {
    let root = location_to_url(location)?;
    let root_value = fetch_and_parse(&root, http).await?;
    let mut docs = HashMap::new();
    let mut queue = Vec::new();
    collect_external_refs(&root, &root_value, "", &mut queue);
    docs.insert(root.clone(), root_value);
    while let Some((target, from_doc, from_pointer)) = queue.pop() {
        if docs.contains_key(&target) {
            continue;
        }
        match fetch_and_parse(&target, http).await {
            Ok(value) => {
                collect_external_refs(&target, &value, "", &mut queue);
                docs.insert(target, value);
            }
            Err(e) => {
                problems.push(Problem {
                    file: display_url(&from_doc),
                    pointer: from_pointer,
                    message: format!("cannot load the referenced document {}: {}", display_url(&target), e.message),
                });
                // Remember the failure so we don't try again for every reference.
                docs.insert(target, Value::Null);
            }
        }
    }
    Ok(Documents { root, docs })
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

async fn fetch_and_parse(url: &Url, http: &reqwest::Client) -> Result<Value, LoadError> {
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
        "http" | "https" => {
            let resp = http
                .get(url.clone())
                .timeout(std::time::Duration::from_secs(60))
                .send()
                .await
                .map_err(|e| LoadError::new(&shown, "", format!("cannot fetch: {e}")))?;
            if !resp.status().is_success() {
                return Err(LoadError::new(&shown, "", format!("fetching it returned HTTP {}", resp.status())));
            }
            let body = resp.bytes().await.map_err(|e| LoadError::new(&shown, "", format!("cannot read body: {e}")))?;
            if body.len() > MAX_DOCUMENT_BYTES {
                return Err(LoadError::new(&shown, "", "document is larger than 256 MiB"));
            }
            body.to_vec()
        }
        other => return Err(LoadError::new(&shown, "", format!("unsupported URL scheme `{other}`"))),
    };
    parse_document(&bytes).map_err(|msg| LoadError::new(&shown, "", msg))
}

/// Parses JSON or YAML (JSON when the first significant character is `{` or `[`).
pub fn parse_document(bytes: &[u8]) -> Result<Value, String> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if matches!(first, Some(b'{') | Some(b'[')) {
        serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON: {e}"))
    } else {
        // Through serde_norway's own Value so that non-string keys (YAML reads
        // `200:` as an integer) become strings instead of failing.
        let yaml: serde_norway::Value = serde_norway::from_slice(bytes).map_err(|e| format!("invalid YAML: {e}"))?;
        yaml_to_json(yaml)
    }
}

fn yaml_to_json(v: serde_norway::Value) -> Result<Value, String> {
    use serde_norway::Value as Y;
    Ok(match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                n.as_f64().and_then(serde_json::Number::from_f64).map(Value::Number).unwrap_or(Value::Null)
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(yaml_to_json).collect::<Result<_, _>>()?),
        Y::Mapping(map) => {
            let mut out = serde_json::Map::with_capacity(map.len());
            for (k, v) in map {
                let key = match k {
                    Y::String(s) => s,
                    Y::Number(n) => n.to_string(),
                    Y::Bool(b) => b.to_string(),
                    Y::Null => "null".to_string(),
                    other => return Err(format!("unsupported YAML mapping key {other:?}")),
                };
                out.insert(key, yaml_to_json(v)?);
            }
            Value::Object(out)
        }
        Y::Tagged(t) => yaml_to_json(t.value)?,
    })
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
