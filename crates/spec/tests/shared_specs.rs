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
    let spec = codemode_spec::load(&shared_spec(name), &http)
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
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
    assert!(
        spec.problems.is_empty(),
        "{:?}",
        &spec.problems[..spec.problems.len().min(5)]
    );
    let groups = spec.summary.top_groups(10);
    assert!(
        groups.iter().any(|(g, _)| g == "zones" || g == "workers"),
        "{groups:?}"
    );
}

#[tokio::test]
async fn github() {
    let spec = load("github-octokit-23.0.2.api.github.com.json").await;
    assert!(spec.summary.operations.len() > 1000);
    assert!(
        spec.problems.is_empty(),
        "{:?}",
        &spec.problems[..spec.problems.len().min(5)]
    );
}

#[tokio::test]
async fn stripe_stays_small_in_memory() {
    let spec = load("stripe-2023-09-12.spec3.yaml").await;
    assert!(spec.summary.operations.len() > 400);
    // ~4 MB of YAML: the shared graph must stay within a small multiple of
    // that, although the fully inlined JSON would be hundreds of MB.
    assert!(spec.graph.len() < 2_000_000, "{} nodes", spec.graph.len());
    assert!(
        spec.graph.ref_count() >= 92,
        "{} cyclic refs",
        spec.graph.ref_count()
    );
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
    for name in [
        "twilio_api_v2010.json",
        "httpbin-0.10.4.spec.json",
        "kinto-26.5.0.swagger.json",
    ] {
        let spec = load(name).await;
        assert!(!spec.summary.operations.is_empty(), "{name}");
        assert!(spec.problems.is_empty(), "{name}: {:?}", spec.problems);
    }
}
