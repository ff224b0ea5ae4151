//! What a spec offers, in a few words: its operations and the groups they fall
//! into. Used to write tool descriptions and the one-tool-per-operation
//! comparison.

use crate::graph::{Graph, Node, NodeId};

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
    /// Reads the summary from a resolved, OpenAPI 3 shaped graph. Every
    /// reference is followed, so a path item that is itself a `$ref` (to
    /// `components/pathItems` or another file) lists its operations.
    pub fn from_graph(g: &Graph) -> Summary {
        let root = g.root();
        let text = |id: Option<NodeId>| id.and_then(|id| g.as_str(id)).unwrap_or("").to_string();
        let info = g.get(root, "info");
        let servers = items(g, g.get(root, "servers"))
            .filter_map(|s| g.get(s, "url").and_then(|u| g.as_str(u)))
            .map(String::from)
            .collect();
        let mut operations = Vec::new();
        for (path, item) in entries(g, g.get(root, "paths")) {
            for method in METHODS {
                let Some(op) = g.get(item, method).filter(|o| matches!(g.node(*o), Node::Object(_))) else {
                    continue;
                };
                let string = |key: &str| g.get(op, key).and_then(|v| g.as_str(v)).map(String::from);
                operations.push(Operation {
                    method: method.to_ascii_uppercase(),
                    path: path.to_string(),
                    operation_id: string("operationId"),
                    summary: string("summary"),
                    tags: items(g, g.get(op, "tags")).filter_map(|t| g.as_str(t)).map(String::from).collect(),
                });
            }
        }
        Summary {
            title: text(info.and_then(|i| g.get(i, "title"))),
            version: text(info.and_then(|i| g.get(i, "version"))),
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

/// The items of an array node (references followed); none for anything else.
fn items(g: &Graph, id: Option<NodeId>) -> impl Iterator<Item = NodeId> + '_ {
    let items: &[NodeId] = match id.map(|id| g.node(id)) {
        Some(Node::Array(items)) => items,
        _ => &[],
    };
    items.iter().map(|i| g.deref(*i))
}

/// The entries of an object node (references followed); none for anything else.
fn entries(g: &Graph, id: Option<NodeId>) -> impl Iterator<Item = (&str, NodeId)> + '_ {
    let entries: &[(Box<str>, NodeId)] = match id.map(|id| g.node(id)) {
        Some(Node::Object(entries)) => entries,
        _ => &[],
    };
    entries.iter().map(|(k, v)| (&**k, g.deref(*v)))
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
    fn a_path_item_that_is_a_reference_lists_its_operations() {
        let root = crate::source::parse_document(
            b"openapi: 3.1.0\ninfo: {title: T, version: '2'}\nservers: [{url: 'https://x.example'}]\npaths:\n  /a: {$ref: '#/components/pathItems/A'}\n  /b:\n    get: {operationId: getB, tags: [b], responses: {}}\ncomponents:\n  pathItems:\n    A:\n      get: {operationId: getA, summary: Read A, responses: {}}\n      delete: {operationId: deleteA, responses: {}}\n",
        )
        .unwrap();
        let spec = crate::load_from_value("mem.yaml", root);
        let s = &spec.summary;
        assert_eq!((s.title.as_str(), s.version.as_str()), ("T", "2"));
        assert_eq!(s.servers, vec!["https://x.example".to_string()]);
        let ops: Vec<(&str, &str, Option<&str>)> =
            s.operations.iter().map(|o| (o.method.as_str(), o.path.as_str(), o.operation_id.as_deref())).collect();
        assert_eq!(
            ops,
            vec![("GET", "/a", Some("getA")), ("DELETE", "/a", Some("deleteA")), ("GET", "/b", Some("getB"))]
        );
        assert_eq!(s.operations[0].summary.as_deref(), Some("Read A"));
        assert_eq!(s.operations[2].tags, vec!["b".to_string()]);
    }

    #[test]
    fn products_skip_collection_id_pairs() {
        assert_eq!(product_of("/zones/{zone_id}/dns_records/{id}").as_deref(), Some("dns_records"));
        assert_eq!(product_of("/accounts/{account_id}/workers/scripts").as_deref(), Some("workers"));
        assert_eq!(product_of("/repos/{owner}/{repo}/issues").as_deref(), Some("issues"));
        assert_eq!(product_of("/zones/{zone_id}").as_deref(), Some("zones"));
        assert_eq!(product_of("/user/repos").as_deref(), Some("user"));
    }
}
