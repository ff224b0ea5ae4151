//! A spec never loses a part silently: numbers of any size load, a document
//! that cannot be read is a problem naming the file and pointer, and every
//! real spec in ../shared/specs loads with nothing dropped.

use std::path::{Path, PathBuf};

use codemode_spec::{ProblemKind, Spec};
use serde_json::json;

async fn load(path: &Path) -> Spec {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    codemode_spec::load(path.to_str().unwrap(), &http).await.unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A fresh directory with these files in it.
fn files(name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("codemode-drops-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (file, text) in files {
        std::fs::write(dir.join(file), text).unwrap();
    }
    dir
}

const BIG: &str = "type: integer\nmaximum: 18446744073709552000\nminimum: -99999999999999999999\n";

fn schema(spec: &Spec, name: &str) -> serde_json::Value {
    let g = &spec.graph;
    let schemas = g.get(g.get(g.root(), "components").unwrap(), "schemas").unwrap();
    g.to_value(g.get(schemas, name).unwrap())
}

fn kinds(spec: &Spec, kind: ProblemKind) -> Vec<String> {
    spec.problems.iter().filter(|p| p.kind == kind).map(|p| p.to_string()).collect()
}

/// The literal is what a reader of the number sees: serde_json and
/// JavaScript print this `f64` as `18446744073709552000`.
fn assert_big_values_read_back(v: &serde_json::Value) {
    let max = v["maximum"].as_f64().unwrap();
    assert_eq!(format!("{max}"), "18446744073709552000", "{v}");
    assert!(v["maximum"].is_f64());
    // No f64 reads back as this one: kept as its literal.
    assert_eq!(v["minimum"], json!("-99999999999999999999"), "{v}");
}

#[tokio::test]
async fn a_twenty_digit_integer_in_a_single_yaml_file_loads_and_reads_back() {
    let root = format!(
        "openapi: 3.0.0\ninfo: {{title: t, version: '1'}}\npaths: {{}}\ncomponents:\n  schemas:\n    Big:\n{}",
        BIG.lines().map(|l| format!("      {l}\n")).collect::<String>()
    );
    let dir = files("single", &[("api.yaml", &root)]);
    let spec = load(&dir.join("api.yaml")).await;
    assert_big_values_read_back(&schema(&spec, "Big"));
    // The one number kept as text is said, with file and pointer.
    let converted = kinds(&spec, ProblemKind::Converted);
    assert_eq!(converted.len(), 1, "{converted:?}");
    assert!(
        converted[0].contains("api.yaml#/components/schemas/Big/minimum")
            && converted[0].contains("-99999999999999999999"),
        "{converted:?}"
    );
    assert_eq!(spec.problems.len(), 1, "{:?}", spec.problems);
    // The packed form (what `search` reads) holds the same number.
    let packed = codemode_spec::pack(&spec.graph);
    let packed = codemode_spec::PackedGraph::open(&packed).unwrap();
    assert_eq!(packed.to_value(packed.root()), spec.graph.to_value(spec.graph.root()));
}

#[tokio::test]
async fn a_twenty_digit_integer_in_a_referenced_file_loads_and_reads_back() {
    let dir = files(
        "multi",
        &[
            (
                "api.yaml",
                "openapi: 3.0.0\ninfo: {title: t, version: '1'}\npaths:\n  /n:\n    get:\n      responses:\n        '200':\n          description: ok\n          content: {application/json: {schema: {$ref: 'schemas/big.yaml'}}}\ncomponents:\n  schemas:\n    Big: {$ref: 'schemas/big.yaml'}\n",
            ),
        ],
    );
    std::fs::create_dir_all(dir.join("schemas")).unwrap();
    std::fs::write(dir.join("schemas/big.yaml"), BIG).unwrap();
    let spec = load(&dir.join("api.yaml")).await;
    assert_eq!(spec.documents, 2);
    assert!(kinds(&spec, ProblemKind::UnreadableDocument).is_empty(), "{:?}", spec.problems);
    assert_big_values_read_back(&schema(&spec, "Big"));
    let g = &spec.graph;
    let op = g.get(g.get(g.get(g.root(), "paths").unwrap(), "/n").unwrap(), "get").unwrap();
    let v = g.to_value(op);
    assert_big_values_read_back(&v["responses"]["200"]["content"]["application/json"]["schema"]);
    let converted = kinds(&spec, ProblemKind::Converted);
    assert!(converted.len() == 1 && converted[0].contains("big.yaml#/minimum"), "{converted:?}");
}

fn with_refs(refs: &[&str]) -> String {
    let params: Vec<String> = refs.iter().map(|r| format!("{{\"$ref\": \"{r}\"}}")).collect();
    format!(
        r#"{{"openapi": "3.0.0", "info": {{"title": "t", "version": "1"}}, "paths": {{"/a": {{"get": {{"parameters": [{}], "responses": {{}}}}}}}}}}"#,
        params.join(", ")
    )
}

#[tokio::test]
async fn an_unreadable_or_unparsable_referenced_file_is_a_problem_with_file_and_pointer() {
    let dir = files(
        "broken",
        &[
            ("api.json", &with_refs(&["gone.yaml#/P", "bad.yaml#/P", "bad.yaml#/Q", "bad.yaml#/R"])),
            ("bad.yaml", "P: {name: a, in: query\nQ: 1\n"),
        ],
    );
    let spec = load(&dir.join("api.json")).await;
    let unreadable = kinds(&spec, ProblemKind::UnreadableDocument);
    assert_eq!(unreadable.len(), 2, "one problem per document: {unreadable:?}");
    let root = dir.join("api.json").display().to_string();
    let gone = unreadable.iter().find(|p| p.contains("gone.yaml")).expect("the missing file");
    assert!(gone.starts_with(&format!("{root}#/paths/~1a/get/parameters/0/$ref: ")), "{gone}");
    assert!(gone.contains("cannot read file") && gone.contains("Fix that document or the reference"), "{gone}");
    let bad = unreadable.iter().find(|p| p.contains("bad.yaml")).expect("the unparsable file");
    assert!(bad.contains("invalid YAML") && bad.contains("line"), "the parser's message, where: {bad}");
    assert!(bad.contains("(and 2 other references)"), "{bad}");
    assert!(bad.starts_with(&format!("{root}#/paths/~1a/get/parameters/")), "{bad}");
    // Said once per document, not again per reference.
    assert_eq!(spec.problems.len(), 2, "{:?}", spec.problems);
    // What referred into them reads as unresolved, never as null.
    let g = &spec.graph;
    let v = g.to_value(g.get(g.get(g.root(), "paths").unwrap(), "/a").unwrap());
    for p in v["get"]["parameters"].as_array().unwrap() {
        assert!(p["$unresolved"].is_string(), "{p}");
    }
}

#[tokio::test]
async fn every_shared_spec_loads_with_nothing_dropped() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/specs");
    let mut loaded = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if !matches!(path.extension().and_then(|e| e.to_str()), Some("json" | "yaml" | "yml")) {
            continue;
        }
        let spec = load(&path).await;
        let dropped = kinds(&spec, ProblemKind::UnreadableDocument);
        assert!(dropped.is_empty(), "{}: {dropped:?}", path.display());
        assert!(!spec.summary.operations.is_empty(), "{}", path.display());
        loaded += 1;
    }
    assert!(loaded >= 7, "only {loaded} specs in {}", dir.display());
}
