//! How fast the mock is on Cloudflare's spec (1,533 operations): time to
//! prepare it, the first (compiling) answer, and answers per second for a
//! simple GET and for a POST whose body is validated. Medians of a few runs.
//!
//! ```sh
//! cargo run --release -p codemode-mock --example mock_bench [-- SPEC]
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use codemode_mock::MockApi;
use codemode_upstream::{ApiRequest, Body, Responder};
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::json;

const RUNS: usize = 5;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn rate(mock: &MockApi, req: &ApiRequest, headers: &HeaderMap, expect: u16) -> (f64, Duration) {
    let first = Instant::now();
    let r = mock.respond(req, headers);
    let first = first.elapsed();
    assert_eq!(r.status, expect, "{}", String::from_utf8_lossy(&r.body));
    let n = 2_000;
    let mut runs = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        for _ in 0..n {
            std::hint::black_box(mock.respond(req, headers));
        }
        runs.push(t.elapsed());
    }
    (n as f64 / median(runs).as_secs_f64(), first)
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let path = std::env::args().nth(1).unwrap_or_else(|| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/specs/cloudflare-2024-08-06.openapi.json").to_string()
    });
    let rt = tokio::runtime::Runtime::new().unwrap();
    let t = Instant::now();
    let spec = Arc::new(rt.block_on(codemode_spec::load(&path, &reqwest::Client::new())).expect("spec loads"));
    println!("spec: {path}\n  load + resolve (codemode-spec, not the mock): {:.0?}", t.elapsed());

    let prepare = median(
        (0..RUNS)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(MockApi::new(spec.clone()));
                t.elapsed()
            })
            .collect(),
    );
    let mock = MockApi::new(spec.clone());
    println!("  prepare MockApi::new ({} operations): {prepare:.2?} (median of {RUNS})", mock.operations().count());

    let mut headers = HeaderMap::new();
    headers.insert("authorization", HeaderValue::from_static("Bearer x"));

    // Every operation once with a request built from its schemas: the first
    // pass compiles each operation's request schema, the second reuses it.
    let ops: Vec<(String, String)> = mock.operations().map(|(m, t)| (m.to_string(), t.to_string())).collect();
    let requests: Vec<ApiRequest> =
        ops.iter().enumerate().map(|(i, (m, t))| mock.sample_request(m, t, i as u64).unwrap()).collect();
    let mut with_json = headers.clone();
    with_json.insert("content-type", HeaderValue::from_static("application/json"));
    for pass in ["cold (compiling)", "warm"] {
        let mut sizes = Vec::new();
        let t = Instant::now();
        for req in &requests {
            let h = if matches!(req.body, Body::Json(..)) { &with_json } else { &headers };
            let mut h = h.clone();
            for (k, v) in &req.headers {
                if let (Ok(k), Ok(v)) =
                    (reqwest::header::HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(v))
                {
                    h.insert(k, v);
                }
            }
            let r = std::hint::black_box(mock.respond(req, &h));
            if std::env::var("MOCK_BENCH_SHOW").is_ok() && r.body.len() > 15_000 && pass == "warm" {
                println!(
                    "    {} {}: {} bytes\n{}",
                    req.method,
                    req.path,
                    r.body.len(),
                    String::from_utf8_lossy(&r.body)
                );
            }
            sizes.push(r.body.len());
        }
        let e = t.elapsed();
        sizes.sort_unstable();
        println!(
            "  every operation once, {pass}: {e:.0?} ({:.0?} per operation); body bytes median {}, p90 {}, max {}",
            e / requests.len().max(1) as u32,
            sizes[sizes.len() / 2],
            sizes[sizes.len() * 9 / 10],
            sizes[sizes.len() - 1]
        );
    }

    if mock.success_status("GET", "/zones").is_none() {
        return;
    }
    let get = ApiRequest {
        method: "GET".into(),
        path: "/zones".into(),
        query: vec![("per_page".into(), "20".into()), ("status".into(), "active".into())],
        headers: vec![],
        body: Body::None,
    };
    let (per_sec, first) = rate(&mock, &get, &headers, 200);
    println!("  GET /zones?per_page=20&status=active: {per_sec:.0} answers/s (first answer, compiling the operation: {first:.2?})");

    let mut json_headers = headers.clone();
    json_headers.insert("content-type", HeaderValue::from_static("application/json"));
    // Cloudflare's spec lists `id` among the required fields of the record
    // schema the create operation takes (and `proxiable`, `created_on`,
    // `modified_on`, which are read-only and so not required in requests).
    let post = ApiRequest {
        method: "POST".into(),
        path: "/zones/023e105f4ecef8ad9ca31a8372d0c353/dns_records".into(),
        query: vec![],
        headers: vec![],
        body: Body::Json(
            json!({"id": "023e105f4ecef8ad9ca31a8372d0c353", "type": "A", "name": "www.example.com", "content": "198.51.100.4", "ttl": 3600, "proxied": false, "comment": "bench"}),
            None,
        ),
    };
    let (per_sec, first) = rate(&mock, &post, &json_headers, 200);
    println!(
        "  POST /zones/{{zone_id}}/dns_records (body validated): {per_sec:.0} answers/s (first answer, compiling the operation: {first:.2?})"
    );

    let mut bad = post.clone();
    bad.body = Body::Json(
        json!({"id": "023e105f4ecef8ad9ca31a8372d0c353", "type": "A", "name": "www.example.com", "content": "198.51.100.4", "ttl": "one hour"}),
        None,
    );
    let (per_sec, _) = rate(&mock, &bad, &json_headers, 400);
    println!("  the same POST with an invalid body (400): {per_sec:.0} answers/s");
}
