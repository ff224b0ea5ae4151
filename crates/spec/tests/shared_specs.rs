//! Every real spec in ../shared/specs loads, converts and resolves, and the
//! resolved graph stays proportional to its source.

use std::path::PathBuf;

fn shared_spec(name: &str) -> String {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/specs");
    dir.join(name).to_string_lossy().into_owned()
}

async fn load(name: &str) -> codemode_spec::Spec {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder().build().unwrap();
    let t = std::time::Instant::now();
    let spec = codemode_spec::load(&shared_spec(name), &http).await.unwrap_or_else(|e| panic!("{name}: {e}"));
    eprintln!(
        "{name}: {} ops, {} nodes, {} cyclic refs, {} problems, {:?}",
        spec.summary.operations.len(),
        spec.graph.len(),
        spec.graph.ref_count(),
        spec.problems.len(),
        t.elapsed()
    );
    spec
}

#[tokio::test]
async fn cloudflare() {
    let spec = load("cloudflare-2024-08-06.openapi.json").await;
    assert_eq!(spec.summary.operations.len(), 1533);
    assert!(spec.problems.is_empty(), "{:?}", &spec.problems[..spec.problems.len().min(5)]);
    let groups = spec.summary.top_groups(10);
    assert!(groups.iter().any(|(g, _)| g == "zones" || g == "workers"), "{groups:?}");
}

#[tokio::test]
async fn github() {
    let spec = load("github-octokit-23.0.2.api.github.com.json").await;
    assert!(spec.summary.operations.len() > 1000);
    assert!(spec.problems.is_empty(), "{:?}", &spec.problems[..spec.problems.len().min(5)]);
}

#[tokio::test]
async fn stripe_stays_small_in_memory() {
    let spec = load("stripe-2023-09-12.spec3.yaml").await;
    assert!(spec.summary.operations.len() > 400);
    // ~4 MB of YAML: the shared graph must stay within a small multiple of
    // that, although the fully inlined JSON would be hundreds of MB.
    assert!(spec.graph.len() < 2_000_000, "{} nodes", spec.graph.len());
    assert!(spec.graph.ref_count() >= 92, "{} cyclic refs", spec.graph.ref_count());
}

#[tokio::test]
async fn kubernetes_swagger2_is_presented_as_openapi3() {
    let spec = load("kubernetes-1.12-2018-10.swagger.json").await;
    assert!(spec.converted_from_swagger2);
    assert!(spec.problems.is_empty(), "{:?}", spec.problems);
    let g = &spec.graph;
    let paths = g.get(g.root(), "paths").unwrap();
    let item = g.get(paths, "/api/v1/namespaces/{namespace}/pods").unwrap();
    let post = g.get(item, "post").unwrap();
    let body = g.get(post, "requestBody").unwrap();
    let content = g.get(body, "content").unwrap();
    // Kubernetes declares `consumes: ["*/*"]` for this operation.
    let json = g.get(content, "*/*").unwrap();
    let schema = g.get(json, "schema").unwrap();
    assert!(g.get(schema, "properties").is_some());
}

#[tokio::test]
async fn small_specs() {
    for name in ["twilio_api_v2010.json", "httpbin-0.10.4.spec.json", "kinto-26.5.0.swagger.json"] {
        let spec = load(name).await;
        assert!(!spec.summary.operations.is_empty(), "{name}");
        assert!(spec.problems.is_empty(), "{name}: {:?}", spec.problems);
    }
}

fn fixture(path: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(path).to_string_lossy().into_owned()
}

#[tokio::test]
async fn multi_file_yaml_with_a_cycle_across_files() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let spec = codemode_spec::load(&fixture("multi/openapi.yaml"), &http).await.unwrap();
    assert_eq!(spec.documents, 4);
    assert!(spec.problems.is_empty(), "{:?}", spec.problems);
    assert_eq!(spec.summary.servers, vec!["https://pets.example.com/v1".to_string()]);
    let g = &spec.graph;
    let pets = g.get(g.get(g.root(), "paths").unwrap(), "/pets").unwrap();
    let get = g.get(pets, "get").unwrap();
    let v = g.to_value(get);
    assert_eq!(v["parameters"][0]["name"], "limit");
    let pet = &v["responses"]["200"]["content"]["application/json"]["schema"]["items"];
    assert_eq!(pet["properties"]["kind"]["enum"], serde_json::json!(["cat", "dog"]));
    // Pet → Owner → Pet: the inner Pet is circular, Owner itself is expanded.
    assert_eq!(pet["properties"]["owner"]["properties"]["name"]["type"], "string");
    assert_eq!(
        pet["properties"]["owner"]["properties"]["pets"]["items"],
        serde_json::json!({"$circular": "schemas/pet.yaml#/Pet"})
    );
    // OpenAPI 3.1 sibling of $ref overrides the target's description.
    let one = g.to_value(g.get(g.get(g.get(g.root(), "paths").unwrap(), "/pets/{id}").unwrap(), "get").unwrap());
    let schema = &one["responses"]["200"]["content"]["application/json"]["schema"];
    assert_eq!(schema["description"], "A pet, described at the use site");
}

#[tokio::test]
async fn broken_specs_report_file_pointer_and_what_is_wrong() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let dir = std::env::temp_dir().join(format!("codemode-broken-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let root = dir.join("api.json");
    std::fs::write(
        &root,
        r##"{"openapi": "3.0.0", "info": {"title": "t", "version": "1"}, "paths": {
            "/a": {"get": {"responses": {"200": {"description": "x", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Missing"}}}}}}},
            "/b": {"get": {"parameters": [{"$ref": "gone.json#/p"}], "responses": {}}}
        }}"##,
    )
    .unwrap();
    let spec = codemode_spec::load(root.to_str().unwrap(), &http).await.unwrap();
    let text: Vec<String> = spec.problems.iter().map(|p| p.to_string()).collect();
    assert!(
        text.iter().any(|p| p.contains("api.json#/paths/~1a/get/responses/200/content/application~1json/schema/$ref")
            && p.contains("Missing")),
        "{text:?}"
    );
    assert!(text.iter().any(|p| p.contains("gone.json") && p.contains("cannot load")), "{text:?}");
    // Not JSON at all: a load error that says where.
    std::fs::write(&root, "{\"openapi\": \"3.0.0\",,}").unwrap();
    let err = codemode_spec::load(root.to_str().unwrap(), &http).await.unwrap_err();
    assert!(err.to_string().contains("line 1"), "{err}");
}
