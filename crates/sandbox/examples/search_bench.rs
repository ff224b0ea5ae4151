//! Times `search` calls against a real spec behind either wall, in-process
//! (no MCP plumbing): `cargo run --release -p codemode-sandbox --example
//! search_bench -- SPEC [process|in-process] [N] [QUERY]`. Prints the median and
//! minimum of each query's call time.

use std::sync::Arc;
use std::time::Duration;

use codemode_sandbox::{Isolation, Limits, Sandbox, SandboxConfig, SearchCall, SearchSpec, WorkerCommand};

const QUERIES: &[(&str, &str)] = &[
    ("floor", "async () => 1"),
    ("waf", "async () => { const out = []; for (const [path, ops] of Object.entries(spec.paths)) { if (!path.startsWith('/zones/') || !(path.includes('waf') || path.includes('rulesets'))) continue; for (const [m, op] of Object.entries(ops)) out.push({method: m.toUpperCase(), path, summary: op.summary}); } return out; }"),
    ("walk", "async () => { const out = []; for (const [path, ops] of Object.entries(spec.paths)) { for (const [m, op] of Object.entries(ops)) { if (m === 'parameters') continue; out.push({method: m.toUpperCase(), path, operationId: op.operationId, tags: op.tags || [], params: (op.parameters || []).length}); } } return {operations: out.length, parameters: out.reduce((n, o) => n + o.params, 0), tags: new Set(out.flatMap(o => o.tags)).size}; }"),
];

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args: Vec<String> = std::env::args().collect();
    let spec = args.get(1).expect("usage: search_bench SPEC [process|in-process] [N]");
    let isolation: Isolation = args.get(2).map(|s| s.parse().unwrap()).unwrap_or(Isolation::Process);
    let n: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(50);
    let only = args.get(4).cloned();
    let graph = codemode_spec::load(spec, &reqwest::Client::new()).await.unwrap().graph;
    let worker = std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().join("codemode-sandbox-worker");
    let config = SandboxConfig {
        isolation,
        limits: Limits { timeout: Duration::from_secs(30), ..Limits::default() },
        search_workers: 1,
        execute_workers: 1,
        worker: Some(WorkerCommand { program: worker, args: vec![] }),
    };
    let sb = Arc::new(
        Sandbox::start(config, vec![SearchSpec { name: "api".into(), graph, global: Default::default() }])
            .await
            .unwrap(),
    );
    for (name, code) in QUERIES.iter().filter(|(name, _)| only.as_deref().is_none_or(|o| o == *name)) {
        let mut times = Vec::new();
        for _ in 0..n {
            let o = sb.search(code.to_string(), SearchCall::default()).await;
            assert!(o.result.is_ok(), "{name}: {:?}", o.result);
            times.push(o.elapsed.as_secs_f64() * 1000.0);
        }
        times.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!("{isolation} {name}: median {:.2} ms, min {:.2} ms ({n} calls)", times[n / 2], times[0]);
    }
}
