//! Load time, memory and per-call check cost for a real schema (the
//! numbers in BENCHMARKS.md):
//!
//! ```text
//! cargo run --release -p codemode-graphql --example load -- .peers/graphql/node_modules/@octokit/graphql-schema/schema.graphql
//! ```

use std::time::Instant;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").parse().unwrap_or(0))
        })
        .unwrap_or(0)
}

fn main() {
    let path = std::env::args().nth(1).expect("usage: load <schema.graphql | schema.json>");
    let text = std::fs::read_to_string(&path).expect("readable schema");
    let before = rss_kib();
    let started = Instant::now();
    let schema = codemode_graphql::Schema::from_text(&text, &path).expect("valid schema");
    let parsed = started.elapsed();
    let after_schema = rss_kib();
    let started = Instant::now();
    let view = schema.view();
    let view_time = started.elapsed();
    let view_bytes = view.to_string().len();
    let fields = schema.fields().len();
    println!(
        "{path}: {} bytes, {} types, {fields} fields; parse+validate {:.1} ms, +{} KiB RSS; view {:.1} ms, {} KiB JSON",
        text.len(),
        schema.type_count(),
        parsed.as_secs_f64() * 1000.0,
        after_schema.saturating_sub(before),
        view_time.as_secs_f64() * 1000.0,
        view_bytes / 1024
    );
    let query = r#"query($owner: String!, $name: String!) {
  repository(owner: $owner, name: $name) {
    name description stargazerCount
    issues(first: 20, states: [OPEN]) { totalCount nodes { number title author { login } labels(first: 5) { nodes { name } } } }
    pullRequests(first: 10) { nodes { number title mergeable } }
  }
}"#;
    let mut request = codemode_graphql::Request { query: query.into(), ..Default::default() };
    request.variables.insert("owner".into(), serde_json::json!("octocat"));
    request.variables.insert("name".into(), serde_json::json!("hello-world"));
    let limits = codemode_graphql::Limits::default();
    let n = 2000;
    let started = Instant::now();
    let mut cost = 0;
    for _ in 0..n {
        cost = schema.check(&request, &limits).expect("valid query").cost;
    }
    let per = started.elapsed().as_secs_f64() * 1e6 / n as f64;
    println!("check of a 4-level query with variables (cost {cost}): {per:.1} µs per call ({n} calls)");
}
