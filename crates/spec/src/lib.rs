//! Loads an API description for codemode's `search` tool.
//!
//! Accepts OpenAPI 3.0, 3.1 and Swagger 2.0, JSON or YAML, local or over
//! http(s), split across files whose `$ref`s point at each other. The result is
//! a [`Spec`]: the whole document in OpenAPI 3 shape with every reference
//! resolved into a shared [`Graph`] (see [`graph`] for why it is a graph and
//! not a tree), a [`Summary`] of its operations, and the [`Problem`]s found on
//! the way.
//!
//! ```no_run
//! # async fn demo() -> Result<(), codemode_spec::LoadError> {
//! let http = reqwest::Client::new();
//! let spec = codemode_spec::load("openapi.yaml", &http).await?;
//! println!("{} operations", spec.summary.operations.len());
//! # Ok(()) }
//! ```

pub mod cache;
mod check;
pub mod graph;
pub mod intern;
pub mod packed;
mod resolve;
pub mod routes;
pub mod source;
pub mod summary;
pub mod swagger2;
pub mod yaml;

use std::fmt;

pub use graph::{Graph, Node, NodeId};
pub use packed::{pack, PackError, PackedEntries, PackedGraph, PackedItems, PackedNode};
pub use summary::{Operation, Summary};

/// Something wrong in a spec that does not stop it from loading (an
/// unresolvable reference, a malformed path item, a document a `$ref` points
/// at that cannot be read). `codemode check` lists them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// What kind of problem: callers decide by it which ones stop them.
    pub kind: ProblemKind,
    /// The file (or URL) that holds the problem.
    pub file: String,
    /// JSON pointer to the offending value inside `file` (empty: the root).
    pub pointer: String,
    /// What is wrong and, where it helps, how to fix it.
    pub message: String,
}

/// The kinds of [`Problem`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProblemKind {
    /// A document that a `$ref` points at could not be read or parsed: every
    /// reference into it reads as `{"$unresolved": ..}`, so part of the API
    /// is missing. codemode refuses to start on it unless the API's config
    /// allows it.
    UnreadableDocument,
    /// The spec breaks a rule (a reference to nothing, a path that does not
    /// start with `/`); it loads around the mistake.
    Invalid,
    /// A value reads in another form than written, because JSON or OpenAPI 3
    /// has no exact equivalent (a YAML number no `f64` holds, kept as its
    /// text; a Swagger 2.0 `collectionFormat: tsv`).
    Converted,
    /// A remote document could not be fetched (the server is down, or
    /// answered an error) and its cached copy was used instead: the API may
    /// have changed since (see [`cache`]).
    StaleCopy,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.pointer.is_empty() {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}#{}: {}", self.file, self.pointer, self.message)
        }
    }
}

/// A spec that could not be loaded at all.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}{}: {}", self.file, if self.pointer.is_empty() { String::new() } else { format!("#{}", self.pointer) }, self.message)]
pub struct LoadError {
    /// The file or URL that failed.
    pub file: String,
    /// JSON pointer inside it, when the failure is about one value.
    pub pointer: String,
    /// What went wrong.
    pub message: String,
}

impl LoadError {
    pub(crate) fn new(file: &str, pointer: &str, message: impl Into<String>) -> Self {
        LoadError { file: file.into(), pointer: pointer.into(), message: message.into() }
    }
}

/// A loaded, resolved spec.
#[derive(Debug)]
pub struct Spec {
    /// Where it was loaded from, as given.
    pub location: String,
    /// The document in OpenAPI 3 shape, every `$ref` resolved (shared with
    /// the sandbox, which builds it once per runtime).
    pub graph: std::sync::Arc<Graph>,
    /// Title, servers and operations.
    pub summary: Summary,
    /// Problems found on the way (see [`Problem`]): none stops the loading;
    /// callers decide by [`Problem::kind`] (codemode refuses to start on a
    /// [`ProblemKind::UnreadableDocument`] unless the config allows it).
    pub problems: Vec<Problem>,
    /// True when the source was Swagger 2.0 and was converted.
    pub converted_from_swagger2: bool,
    /// Number of documents the spec spans (1 for a single file).
    pub documents: usize,
}

/// Loads, converts and resolves the spec at `location` (a path or URL).
///
/// Fails only when the root document cannot be read or parsed; everything
/// else is reported in [`Spec::problems`].
pub async fn load(location: &str, http: &reqwest::Client) -> Result<Spec, LoadError> {
    let mut problems = Vec::new();
    let docs = source::load_documents(location, http, &mut problems).await?;
    let location = location.to_string();
    // Conversion and resolution are CPU work on deep recursive structures: run
    // them off the async runtime, on a thread with a generous stack.
    tokio::task::spawn_blocking(move || {
        std::thread::Builder::new()
            .name("spec-resolve".into())
            .stack_size(256 * 1024 * 1024)
            .spawn(move || build(location, docs, problems))
            .expect("spawn spec resolver thread")
            .join()
            .expect("spec resolver panicked")
    })
    .await
    .map_err(|e| LoadError::new("", "", format!("spec loader failed: {e}")))
}

/// Converts, checks and resolves one in-memory root document, as [`load`]
/// does after reading it, without touching the filesystem or the network:
/// for callers that already hold the document (and for the fuzz harnesses).
///
/// `location` becomes [`Spec::location`]; problems name the document
/// `/spec.json`. A `$ref` to another document is not followed: it resolves to an
/// `$unresolved` marker, as for a document that cannot be read. Runs on the
/// calling thread, whose stack must be deep enough for the document (the
/// parsers stop at 128 levels of nesting; [`load`] uses a 256 MiB stack).
pub fn load_from_value(location: &str, root: serde_json::Value) -> Spec {
    let url = url::Url::parse("file:///spec.json").expect("static URL");
    let docs = source::Documents::single(url, &root);
    build(location.to_string(), docs, Vec::new())
}

/// Conversion, checks, summary and resolution: what [`load`] and
/// [`load_from_value`] share once the documents are read.
fn build(location: String, mut docs: source::Documents, mut problems: Vec<Problem>) -> Spec {
    let g = docs.graph();
    let root = docs.root_node();
    let converted = g.get(root, "swagger").and_then(|v| g.as_str(v)).is_some_and(swagger2::is_swagger2_version);
    if converted {
        let root_file = source::display_url(&docs.root);
        // The converter rewrites a tree; Swagger 2.0 documents are written
        // with references, so the tree is the size of the file.
        let mut value = g.to_value(root);
        for note in swagger2::convert(&mut value) {
            problems.push(Problem {
                kind: ProblemKind::Converted,
                file: root_file.clone(),
                pointer: note.pointer,
                message: note.message,
            });
        }
        docs.replace_root(&value);
    }
    check::check(&docs, &mut problems);
    let documents = docs.len();
    let graph = std::sync::Arc::new(resolve::resolve(docs));
    // From the resolved graph, so that a path item that is a `$ref` counts.
    let summary = Summary::from_graph(&graph);
    Spec { location, graph, summary, problems, converted_from_swagger2: converted, documents }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_from_value_resolves_in_memory() {
        let root = source::parse_document(
            b"openapi: 3.0.0\ninfo: {title: T, version: '1'}\npaths:\n  /a:\n    get:\n      responses:\n        '200': {$ref: '#/components/responses/Ok'}\n      parameters: [{$ref: 'other.yaml#/P'}]\ncomponents:\n  responses:\n    Ok: {description: fine}\n",
        )
        .unwrap();
        let spec = load_from_value("mem.yaml", root);
        assert_eq!(spec.documents, 1);
        assert_eq!(spec.summary.operations.len(), 1);
        let v = spec.graph.to_value(spec.graph.root());
        assert_eq!(v["paths"]["/a"]["get"]["responses"]["200"], serde_json::json!({"description": "fine"}));
        // External documents are not read.
        assert!(v["paths"]["/a"]["get"]["parameters"][0]["$unresolved"].is_string());
    }

    #[test]
    fn a_cycle_of_references_alone_reads_as_circular() {
        // The input fuzz/spec_load hung on (in `Graph::deref`).
        let root = source::parse_document(
            br##"{"components":{"schemas":{"A":{"$ref":"#/components/schemas/B"},"B":{"$ref":"#/components/schemas/A"}}}}"##,
        )
        .unwrap();
        let spec = load_from_value("cycle.json", root);
        let g = &spec.graph;
        for i in 0..g.len() as u32 {
            let _ = g.deref(NodeId(i));
        }
        let schemas = g.get(g.root(), "components").and_then(|c| g.get(c, "schemas")).unwrap();
        assert_eq!(g.get(schemas, "A"), Some(g.deref(g.get(schemas, "A").unwrap())));
        let v = g.to_value(g.root());
        assert_eq!(v["components"]["schemas"]["A"], serde_json::json!({"$circular": "#/components/schemas/A"}));
    }
}
