//! The audit store at scale: fills a database with synthetic executions
//! (three calls each on average), times the filtered queries of
//! `codemode audit`, the cost of `record()`, and of the pipeline layer.
//!
//! ```text
//! cargo run --release -p codemode-audit --example audit_bench -- [--rows 1000000] [--db /tmp/audit-bench.db] [--keep]
//! cargo run --release -p codemode-audit --example audit_bench -- --postgres postgres://127.0.0.1:5432/test [--schema codemode_bench] [--rows 1000000] [--keep]
//! ```
//!
//! An existing `--db` (or `--schema`) with at least `--rows` executions is
//! reused (the fill takes a while); `--keep` leaves it behind. With
//! `--postgres` the same queries and `record()` run against the
//! PostgreSQL store (the pipeline layer is measured with SQLite only).

use std::sync::Arc;
use std::time::{Duration, Instant};

use codemode_audit::{
    AuditLayer, AuditLog, AuditReader, AuditSink, AuditSource, CallKind, CallRecord, ExecutionRecord, Filter, PgReader,
    PgStore, SqliteStore, Status, StoreOptions, Tool,
};
use codemode_pipeline::{Access, BoxReply, Call, Execution, HttpOp, Pipeline, Route};
use codemode_upstream::{ApiRequest, Body};
use serde_json::json;

const APIS: [&str; 10] =
    ["cloudflare", "github", "stripe", "bookshelf", "kinto", "httpbin", "slack", "jira", "fs", "search"];
const WORDS: [&str; 16] = [
    "zones", "records", "items", "filter", "map", "await", "const", "return", "data", "result", "page", "cursor",
    "length", "status", "accounts", "workers",
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn synthetic(rng: &mut Rng, i: u64, now: i64, span_ms: i64, rows: u64) -> (ExecutionRecord, Vec<CallRecord>) {
    // Time grows with i (as it does in a real trail), with a little jitter.
    let time_ms = now - span_ms + (span_ms as f64 * i as f64 / rows as f64) as i64 + rng.below(1000) as i64;
    // 20 principals, skewed: the first few run most of the code.
    let p = (rng.below(20) * rng.below(20) / 19) as usize;
    let principal = if p == 19 { None } else { Some(format!("user{p:02}")) };
    let tool = if rng.below(10) == 0 { Tool::Search } else { Tool::Execute };
    let ncalls = if tool == Tool::Search { 0 } else { 1 + rng.below(6) as u32 };
    let mut code = String::from("const out = [];\n");
    let apis: Vec<&str> = (0..ncalls).map(|_| APIS[rng.below(10) as usize]).collect();
    for (k, api) in apis.iter().enumerate() {
        code.push_str(&format!(
            "const r{k} = await {api}.request({{method: \"GET\", path: \"/v1/{}/{}\"}});\n",
            WORDS[rng.below(16) as usize],
            rng.below(100_000)
        ));
    }
    for _ in 0..(2 + rng.below(5)) {
        code.push_str(&format!(
            "out.push(r.{}.{}(x => x.{}));\n",
            WORDS[rng.below(16) as usize],
            WORDS[rng.below(16) as usize],
            WORDS[rng.below(16) as usize]
        ));
    }
    // A rare marker in one execution in 10,000.
    if rng.below(10_000) == 0 {
        code.push_str("// rare-marker-7f3a\n");
    }
    code.push_str("return out;");
    let failed = rng.below(20) == 0;
    let mut exec = ExecutionRecord::new(tool, code);
    exec.time_ms = time_ms;
    exec.principal = principal;
    exec.session_id = Some(format!("s{}", i / 50));
    exec.client_name = Some("bench-client".into());
    exec.client_version = Some("1.0".into());
    exec.duration_ms = 5.0 + rng.below(5000) as f64 / 10.0;
    exec.result_tokens = Some(rng.below(5000));
    if failed {
        exec = exec.failed("exception", "UpstreamError", "the upstream answered 502");
    }
    let calls = apis
        .iter()
        .enumerate()
        .map(|(k, api)| {
            let ok = !(failed && k + 1 == apis.len());
            CallRecord {
                seq: k as u32 + 1,
                at_ms: time_ms + k as i64,
                kind: if *api == "fs" { CallKind::Tool } else { CallKind::Api },
                target: api.to_string(),
                method: Some("GET".into()),
                path: format!("/v1/items/{}", rng.below(100_000)),
                template: Some("/v1/items/{id}".into()),
                status: Some(if ok { 200 } else { 502 }),
                ok,
                error_name: (!ok).then(|| "UpstreamError".into()),
                duration_ms: 1.0 + rng.below(1000) as f64 / 10.0,
                bytes_out: 0,
                bytes_in: rng.below(20_000),
                allowed_by: Some(format!("reads (api {api})")),
                approval: None,
                refused: None,
                dry_run: false,
            }
        })
        .collect();
    (exec, calls)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn pct(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p) as usize]
}

struct Ok200;

impl Route for Ok200 {
    fn send<'a>(&'a self, _call: Call) -> BoxReply<'a> {
        Box::pin(async {
            Ok(json!({"status": 200, "headers": {"content-type": "application/json"}, "data": {"id": 1, "name": "x"}}))
        })
    }
}

fn main() {
    let mut rows: u64 = 1_000_000;
    let mut db = std::env::temp_dir().join("codemode-audit-bench.db");
    let mut keep = false;
    let mut postgres: Option<String> = None;
    let mut schema = "codemode_bench".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--rows" => rows = args.next().and_then(|v| v.parse().ok()).expect("--rows N"),
            "--db" => db = args.next().expect("--db PATH").into(),
            "--postgres" => postgres = Some(args.next().expect("--postgres URL")),
            "--schema" => schema = args.next().expect("--schema NAME"),
            "--keep" => keep = true,
            other => panic!("unknown argument {other}"),
        }
    }
    let now = codemode_audit::time::now_ms();
    let span = 30 * 86_400_000;
    if let Some(url) = postgres {
        return postgres_bench(&url, &schema, rows, now, span, keep);
    }

    let have = AuditReader::open(&db).and_then(|r| r.count()).unwrap_or(0);
    if have < rows {
        for ext in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{ext}", db.display()));
        }
        let store = SqliteStore::open(&db, StoreOptions::default()).unwrap();
        let started = Instant::now();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let batch = 20_000;
        let mut i = 0;
        while i < rows {
            let n = batch.min(rows - i);
            let items: Vec<_> = (i..i + n).map(|k| synthetic(&mut rng, k, now, span, rows)).collect();
            store.record_many(items).wait().unwrap();
            i += n;
        }
        drop(store);
        let r = AuditReader::open(&db).unwrap();
        r.analyze().unwrap();
        println!(
            "filled {} executions, {} calls in {:.1} s ({:.0} MB)",
            r.count().unwrap(),
            r.call_count().unwrap(),
            started.elapsed().as_secs_f64(),
            std::fs::metadata(&db).unwrap().len() as f64 / 1e6
        );
    } else {
        println!("reusing {} ({have} executions)", db.display());
    }

    let r = AuditReader::open(&db).unwrap();
    queries(&r, &|f| r.explain(f).unwrap(), rows, now);
    drop(r);

    // record(): one execution with three calls, committed, on the full
    // database and on an empty one.
    for (label, path) in [("full database", db.clone()), ("empty database", db.with_extension("empty.db"))] {
        let mut options = StoreOptions::default();
        if let Some(ms) = std::env::var("AUDIT_BENCH_CHECKPOINT_MS").ok().and_then(|v| v.parse().ok()) {
            options.checkpoint_interval = Duration::from_millis(ms);
        }
        let store = SqliteStore::open(&path, options).unwrap();
        record_timing(label, &store, rows, now, span);
        drop(store);
        if path != db {
            for ext in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{ext}", path.display()));
            }
        }
    }

    // The layer: a call through a pipeline with and without it.
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    for with in [false, true] {
        let layers: Vec<Arc<dyn codemode_pipeline::Layer>> =
            if with { vec![Arc::new(AuditLayer::new())] } else { vec![] };
        let pipeline = Pipeline::new(layers, Arc::new(Ok200));
        let n = 200_000;
        let t = Instant::now();
        rt.block_on(async {
            let mut exec = Arc::new(Execution::new(None));
            for i in 0..n {
                let request = ApiRequest {
                    method: "POST".into(),
                    path: format!("/books/{i}"),
                    query: vec![],
                    headers: vec![],
                    body: Body::Json(json!({"title": "Dune", "year": 1965}), None),
                };
                let op = HttpOp { api: "books".into(), request, template: None, operation_id: None, tags: vec![] };
                pipeline
                    .run(Call::new(codemode_pipeline::Operation::Http(op), Access::Write, exec.clone()))
                    .await
                    .unwrap();
                if i % 100 == 99 {
                    // An execution of 100 calls ends: its log is read.
                    std::hint::black_box(AuditLog::calls(&exec));
                    exec = Arc::new(Execution::new(None));
                }
            }
        });
        let per = t.elapsed().as_secs_f64() * 1e9 / n as f64;
        println!("pipeline call {} the audit layer: {per:.0} ns", if with { "with" } else { "without" });
    }

    if !keep {
        for ext in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{ext}", db.display()));
        }
    }
}

/// The filtered queries of `codemode audit`, `show` and a JSONL export,
/// timed on `r` (`explain` prints plans with AUDIT_BENCH_PLANS=1).
fn queries(r: &dyn AuditSource, explain: &dyn Fn(&Filter) -> Vec<String>, rows: u64, now: i64) {
    let day = 86_400_000;
    let list = Filter { limit: Some(50), ..Filter::default() };
    let queries: Vec<(&str, Filter)> = vec![
        ("(no filter) --limit 50", list.clone()),
        (
            "--principal user03 --since 7d",
            Filter { principal: Some("user03".into()), since: Some(now - 7 * day), ..list.clone() },
        ),
        (
            "--principal user18 --since 7d (rare principal)",
            Filter { principal: Some("user18".into()), since: Some(now - 7 * day), ..list.clone() },
        ),
        (
            "--api stripe --status error",
            Filter { api: Some("stripe".into()), status: Some(Status::Error), ..list.clone() },
        ),
        ("--api nosuchapi", Filter { api: Some("nosuchapi".into()), ..list.clone() }),
        ("--status error --since 1d", Filter { status: Some(Status::Error), since: Some(now - day), ..list.clone() }),
        (
            "--tool search --since 2h",
            Filter { tool: Some(Tool::Search), since: Some(now - 2 * 3_600_000), ..list.clone() },
        ),
        ("--grep accounts (common)", Filter { grep: Some("accounts".into()), ..list.clone() }),
        ("--grep rare-marker-7f3a (1 in 10k)", Filter { grep: Some("rare-marker-7f3a".into()), ..list.clone() }),
        ("--grep absent-text (scans all)", Filter { grep: Some("absent-text-zzz".into()), ..list.clone() }),
        (
            "--grep accounts --principal user18 --since 7d",
            Filter {
                grep: Some("accounts".into()),
                principal: Some("user18".into()),
                since: Some(now - 7 * day),
                ..list.clone()
            },
        ),
    ];
    println!("\n{:<50} {:>8} {:>10} {:>10}", "query (limit 50)", "rows", "first ms", "median ms");
    for (name, f) in &queries {
        let t = Instant::now();
        let n = r.list(f).unwrap().len();
        let first = t.elapsed().as_secs_f64() * 1e3;
        let times: Vec<f64> = (0..5)
            .map(|_| {
                let t = Instant::now();
                r.list(f).unwrap();
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        println!("{name:<50} {n:>8} {first:>10.1} {:>10.1}", median(times));
        if std::env::var_os("AUDIT_BENCH_PLANS").is_some() {
            for step in explain(f) {
                println!("      {step}");
            }
        }
    }
    let t = Instant::now();
    let (exec, calls) = r.show(rows as i64 / 2).unwrap().unwrap();
    println!("show one execution ({} calls): {:.2} ms", calls.len(), t.elapsed().as_secs_f64() * 1e3);
    let _ = exec;
    let t = Instant::now();
    let mut sink = std::io::sink();
    let f = Filter { since: Some(now - day), oldest_first: true, ..Filter::default() };
    let n = r.export(&f, &mut |e, c| Ok(codemode_audit::render::write_jsonl(&e, &c, &mut sink)?)).unwrap();
    let secs = t.elapsed().as_secs_f64();
    println!("JSONL export --since 1d: {n} executions in {:.2} s ({:.0}/s)", secs, n as f64 / secs);
}

/// One execution with three calls recorded and committed, 3000 times on
/// `store`; prints the median and tail.
fn record_timing(label: &str, store: &dyn AuditSink, rows: u64, now: i64, span: i64) {
    let mut rng = Rng(42);
    let mut times = vec![];
    for k in 0..3000 {
        let (exec, mut calls) = synthetic(&mut rng, rows + k, now, span, rows);
        calls.truncate(3);
        let t = Instant::now();
        store.record(exec, calls).wait().unwrap();
        times.push(t.elapsed().as_secs_f64() * 1e6);
        if k % 10 == 0 {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    let times = times.split_off(500);
    println!(
        "record() on the {label}: median {:.0} µs, p90 {:.0} µs, p99 {:.0} µs (n = {})",
        median(times.clone()),
        pct(times.clone(), 0.9),
        pct(times.clone(), 0.99),
        times.len()
    );
}

/// The same measurements against the PostgreSQL store in `schema`.
fn postgres_bench(url: &str, schema: &str, rows: u64, now: i64, span: i64, keep: bool) {
    let have = PgReader::open(url, schema).and_then(|r| r.count()).unwrap_or(0);
    let store = PgStore::open(url, schema, StoreOptions::default()).unwrap();
    if have < rows {
        let started = Instant::now();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let batch = 5_000;
        let mut i = have;
        while i < rows {
            let n = batch.min(rows - i);
            let items: Vec<_> = (i..i + n).map(|k| synthetic(&mut rng, k, now, span, rows)).collect();
            store.record_many(items).wait().unwrap();
            i += n;
        }
        let r = PgReader::open(url, schema).unwrap();
        r.analyze().unwrap();
        println!(
            "filled {} executions, {} calls in {:.1} s (PostgreSQL, schema {schema})",
            r.count().unwrap(),
            r.call_count().unwrap(),
            started.elapsed().as_secs_f64()
        );
    } else {
        println!("reusing schema {schema} ({have} executions)");
    }
    let r = PgReader::open(url, schema).unwrap();
    queries(&r, &|f| r.explain(f).unwrap(), rows, now);
    record_timing("full PostgreSQL store", &store, rows, now, span);
    drop(store);
    let empty = format!("{schema}_empty");
    let store = PgStore::open(url, &empty, StoreOptions::default()).unwrap();
    record_timing("empty PostgreSQL store", &store, rows, now, span);
    drop(store);
    let mut drops = vec![empty];
    if !keep {
        drops.push(schema.to_string());
    }
    for s in drops {
        let status = std::process::Command::new("psql")
            .args([url, "-qc", &format!("DROP SCHEMA IF EXISTS \"{s}\" CASCADE")])
            .status();
        if !status.is_ok_and(|s| s.success()) {
            eprintln!("could not drop schema {s} (psql); drop it by hand");
        }
    }
}
