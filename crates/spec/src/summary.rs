//! What a spec offers, in a few words: its operations and the groups they fall
//! into. Used to write tool descriptions and the one-tool-per-operation
//! comparison.

use serde_json::Value;

/// HTTP methods that can appear in a path item, in the order we list them.
pub const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// One operation of the API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    /// Upper-case HTTP method.
    pub method: String,
    /// Path template as in the spec, e.g. `/zones/{zone_id}/dns_records`.
    pub path: String,
    /// `operationId`, when the spec gives one.
    pub operation_id: Option<String>,
    /// `summary`, when the spec gives one.
    pub summary: Option<String>,
    /// `tags`.
    pub tags: Vec<String>,
}

/// The short description of an API.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// `info.title`.
    pub title: String,
    /// `info.version`.
    pub version: String,
    /// Server URLs, in spec order.
    pub servers: Vec<String>,
    /// Every operation, in spec order.
    pub operations: Vec<Operation>,
}

impl Summary {
    /// Reads the summary from an OpenAPI 3 shaped document.
    pub fn from_document(doc: &Value) -> Summary {
        let info = doc.get("info");
        let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_string();
        let servers = doc
            .get("servers")
            .and_then(Value::as_array)
            .map(|s| s.iter().filter_map(|s| s.get("url").and_then(Value::as_str)).map(String::from).collect())
            .unwrap_or_default();
        let mut operations = Vec::new();
        if let Some(paths) = doc.get("paths").and_then(Value::as_object) {
            for (path, item) in paths {
                for method in METHODS {
                    let Some(op) = item.get(method).filter(|o| o.is_object()) else {
                        continue;
                    };
                    operations.push(Operation {
                        method: method.to_ascii_uppercase(),
                        path: path.clone(),
                        operation_id: op.get("operationId").and_then(Value::as_str).map(String::from),
                        summary: op.get("summary").and_then(Value::as_str).map(String::from),
                        tags: op
                            .get("tags")
                            .and_then(Value::as_array)
                            .map(|t| t.iter().filter_map(Value::as_str).map(String::from).collect())
                            .unwrap_or_default(),
                    });
                }
            }
        }
        Summary {
            title: text(info.and_then(|i| i.get("title"))),
            version: text(info.and_then(|i| i.get("version"))),
            servers,
            operations,
        }
    }

    /// The largest groups of operations, most operations first, with their
    /// counts. Groups are tags when the spec tags nearly every operation with
    /// a manageable number of tags; otherwise "products": the first path
    /// segment that is not a collection/identifier pair, as Cloudflare's own
    /// description does (`/zones/{zone_id}/dns_records/…` → `dns_records`).
    pub fn top_groups(&self, limit: usize) -> Vec<(String, usize)> {
        let tagged = self.operations.iter().filter(|o| !o.tags.is_empty()).count();
        let mut distinct_tags: Vec<&str> =
            self.operations.iter().flat_map(|o| o.tags.iter().map(String::as_str)).collect();
        distinct_tags.sort_unstable();
        distinct_tags.dedup();
        let use_tags =
            !self.operations.is_empty() && tagged * 10 >= self.operations.len() * 9 && distinct_tags.len() <= 80;
        let mut counts: indexmap::IndexMap<String, usize> = indexmap::IndexMap::new();
        for op in &self.operations {
            let group = if use_tags { op.tags.first().cloned() } else { product_of(&op.path) };
            if let Some(g) = group {
                *counts.entry(g).or_default() += 1;
            }
        }
        let mut groups: Vec<(String, usize)> = counts.into_iter().collect();
        groups.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        groups.truncate(limit);
        groups
    }
}

/// The "product" a path belongs to: the first segment that is neither a
/// parameter nor a collection immediately followed by a parameter.
pub fn product_of(path: &str) -> Option<String> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let is_param = |s: &str| s.starts_with('{') && s.ends_with('}');
    let mut i = 0;
    while i < segments.len() {
        let s = segments[i];
        if is_param(s) {
            i += 1;
            continue;
        }
        let next_is_param = segments.get(i + 1).is_some_and(|n| is_param(n));
        let has_more_after = i + 2 < segments.len();
        if next_is_param && has_more_after {
            i += 2;
            continue;
        }
        return Some(s.to_string());
    }
    segments.first().map(|s| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_skip_collection_id_pairs() {
        assert_eq!(product_of("/zones/{zone_id}/dns_records/{id}").as_deref(), Some("dns_records"));
        assert_eq!(product_of("/accounts/{account_id}/workers/scripts").as_deref(), Some("workers"));
        assert_eq!(product_of("/repos/{owner}/{repo}/issues").as_deref(), Some("issues"));
        assert_eq!(product_of("/zones/{zone_id}").as_deref(), Some("zones"));
        assert_eq!(product_of("/user/repos").as_deref(), Some("user"));
    }
}
