//! The wall under attack: native work that QuickJS never interrupts, state
//! planted for the next caller, jobs left behind, code that would run twice,
//! and what a worker process may still do after lockdown.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use codemode_sandbox::{
    Client, ErrorKind, ExecuteEnv, Host, HostFuture, Isolation, JsValue, Limits, Sandbox, SandboxConfig, SearchCall,
    SearchSpec, WorkerCommand,
};
use serde_json::{json, Value};

mod common;

/// Counts the calls it receives, answers each with its arguments.
#[derive(Default)]
struct Counter(AtomicU32);
impl Host for Counter {
    fn call(&self, _: &str, _: &str, args: Value) -> HostFuture {
        self.0.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move { Ok(json!({ "args": args })) })
    }
}

const LIMIT: Duration = Duration::from_millis(1000);

fn limits() -> Limits {
    Limits { timeout: LIMIT, memory_bytes: 64 << 20, ..Limits::default() }
}

async fn sandbox(isolation: Isolation, workers: usize, specs: Vec<SearchSpec>) -> Sandbox {
    sandbox_with(isolation, workers, specs, limits()).await
}

async fn sandbox_with(isolation: Isolation, workers: usize, specs: Vec<SearchSpec>, limits: Limits) -> Sandbox {
    common::sandbox(isolation, limits, specs, workers).await
}

fn env() -> Arc<ExecuteEnv> {
    Arc::new(ExecuteEnv {
        clients: vec![Client { global: "demo".into(), methods: vec!["request".into()] }],
        aliases: vec![("api".into(), "demo".into())],
        dynamic_clients: vec![],
    })
}

fn graph(v: Value) -> Arc<codemode_spec::Graph> {
    let path = std::env::temp_dir().join(format!("codemode-wall-{}-{}.json", std::process::id(), rand()));
    std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
    load(path.to_str().unwrap())
}

fn load(location: &str) -> Arc<codemode_spec::Graph> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let location = location.to_string();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(codemode_spec::load(&location, &reqwest::Client::new())).unwrap().graph
    })
    .join()
    .unwrap()
}

fn rand() -> u32 {
    static N: AtomicU32 = AtomicU32::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

fn demo() -> Vec<SearchSpec> {
    vec![SearchSpec {
        name: "demo".into(),
        graph: graph(json!({"openapi": "3.0.0", "info": {"title": "t"}, "paths": {"/a": {"get": {"summary": "A"}}}})),
        global: Default::default(),
    }]
}

/// Native loops QuickJS polls its interrupt handler around only every
/// ~10,000 branches, or not at all until they return.
const NATIVE: &[&str] = &[
    "async () => Array.prototype.join.call({length: 2**53-1}, '')",
    "async () => Array.prototype.reverse.call({length: 2**53-1})",
    "async () => Array.prototype.copyWithin.call({length: 2**53-1}, 0, 1)",
    "async () => Array.prototype.flat.call({length: 2**53-1})",
    "async () => Array.prototype.flatMap.call({length: 2**53-1}, x => x)",
    "async () => Array.prototype.shift.call({length: 2**53-1})",
    "async () => Array.prototype.unshift.call({length: 2**53-2}, 1)",
    "async () => Array.prototype.splice.call({length: 2**53-1}, 0, 1)",
    "async () => Array.prototype.sort.call({length: 2**32-1})",
    "async () => Array.prototype.toLocaleString.call({length: 2**53-1})",
    "async () => new Array(2**32-1).join('')",
    "async () => (10n ** 300000n) / (7n ** 100000n) + (10n ** 300000n) / (3n ** 150000n)",
    "async () => { const big = 'x'.repeat(10e6); let n = 0; for (;;) n += big.indexOf('y'); }",
    "async () => { const a = Array.from({length: 2e5}, (_, i) => 's' + i); for (;;) a.join(','); }",
    "async () => { const a = Array.from({length: 1e5}, (_, i) => ({i})); for (;;) JSON.stringify(a); }",
    "async () => { const q = () => Promise.resolve().then(() => { q(); const t = Date.now(); while (Date.now() - t < 50) {} }); q(); await new Promise(() => {}); }",
    "async () => { const bomb = () => { Promise.resolve().then(bomb); Promise.resolve().then(bomb); }; bomb(); await new Promise(() => {}); }",
    "async () => { const loops = []; for (let i = 0; i < 20000; i++) loops.push((async () => { for (;;) await null; })()); await Promise.all(loops); }",
    "async () => { const o = {}; let p = o; for (let i = 0; i < 1e5; i++) { p.a = {}; p = p.a; } for (;;) console.log(Array(1000).fill(o.a.a)); }",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_work_ends_at_the_limit_behind_the_process_wall() {
    let sb = sandbox(Isolation::Process, 1, demo()).await;
    for code in NATIVE {
        for tool in ["execute", "search"] {
            let t = Instant::now();
            let o = match tool {
                "execute" => sb.execute(code.to_string(), env(), Arc::new(Counter::default())).await,
                _ => sb.search(code.to_string(), SearchCall::default()).await,
            };
            let took = t.elapsed();
            let e = o.result.as_ref().expect_err(code);
            assert!(
                matches!(e.kind, ErrorKind::Timeout | ErrorKind::OutOfMemory | ErrorKind::Runtime),
                "{tool} {code}: {e:?}"
            );
            if e.kind == ErrorKind::Timeout {
                assert!(e.message.contains("time limit of 1 s"), "{}", e.message);
            }
            assert!(took < LIMIT + Duration::from_millis(250), "{tool} {code} took {took:?}");
            // The worker that ran it (or its replacement) answers promptly.
            let t = Instant::now();
            let o = sb.execute("async () => 2".into(), env(), Arc::new(Counter::default())).await;
            assert_eq!(o.result.unwrap(), JsValue::Json(json!(2)), "after {code}");
            assert!(t.elapsed() < Duration::from_millis(250), "benign call after {code} took {:?}", t.elapsed());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stuck_calls_do_not_deny_execute_to_everyone() {
    // As many stuck calls as there are executors, then a benign one: it
    // answers within the limit (the stuck ones are killed at theirs).
    let sb = Arc::new(sandbox(Isolation::Process, 2, demo()).await);
    let mut stuck = Vec::new();
    for _ in 0..2 {
        let sb = sb.clone();
        stuck.push(tokio::spawn(async move {
            sb.execute(NATIVE[0].to_string(), env(), Arc::new(Counter::default())).await
        }));
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let t = Instant::now();
    let o = sb.execute("async () => 3".into(), env(), Arc::new(Counter::default())).await;
    assert_eq!(o.result.unwrap(), JsValue::Json(json!(3)));
    assert!(t.elapsed() < LIMIT + Duration::from_millis(400), "{:?}", t.elapsed());
    for s in stuck {
        assert_eq!(s.await.unwrap().result.unwrap_err().kind, ErrorKind::Timeout);
    }
}

/// Plant something for the next caller, then look for it.
const PLANTS: &[&str] = &[
    "async () => { Error.prepareStackTrace = (e, s) => { globalThis.stolen = 1; return 'rewritten'; }; return 1; }",
    "async () => { Error.stackTraceLimit = { valueOf() { globalThis.stolen = 1; return 10; } }; return 1; }",
    "async () => { Object.defineProperty(Error.prototype, 'message', { get() { return 'rewritten'; } }); return 1; }",
    "async () => { Object.prototype.polluted = 'yes'; Array.prototype.map = () => 'hijacked'; return 1; }",
    "async () => { Symbol.for('codemode').leak = 1; globalThis.leak = 1; return 1; }",
    "async () => { Promise.resolve().then(function again() { globalThis.leak = 1; Promise.resolve().then(again); }); return 1; }",
    "async () => ({ toJSON() { Promise.resolve().then(() => { for (;;) {} }); return 1; } })",
    "async () => { const e = new Error('x'); Object.defineProperty(e, 'name', { get() { Promise.resolve().then(() => { for (;;) {} }); return 'Error'; } }); throw e; }",
    "async () => { new FinalizationRegistry(() => { for (;;) {} }).register({}, 1); return 1; }",
    "() => { Promise.resolve().then(() => { for (;;) {} }); return 1; }",
];

const PROBE: &str = "async () => { let stack; try { null.x } catch (e) { stack = [e.message, typeof e.stack] } return [typeof stolen, typeof leak, ({}).polluted, [1].map(x => x), Symbol.for('codemode').leak, stack]; }";

fn clean() -> JsValue {
    JsValue::Json(json!(["undefined", "undefined", null, [1], null, ["cannot read property 'x' of null", "string"]]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_planted_by_one_call_reaches_the_next() {
    for wall in [Isolation::Process, Isolation::InProcess] {
        let sb = sandbox(wall, 2, demo()).await;
        for plant in PLANTS {
            // Every worker gets planted, then probed, by both tools.
            for _ in 0..4 {
                let _ = sb.search(plant.to_string(), SearchCall::default()).await;
                let _ = sb.execute(plant.to_string(), env(), Arc::new(Counter::default())).await;
            }
            for _ in 0..4 {
                let t = Instant::now();
                let s = sb.search(PROBE.into(), SearchCall::default()).await;
                assert_eq!(s.result.unwrap(), clean(), "{wall:?} search after {plant}");
                let e = sb.execute(PROBE.into(), env(), Arc::new(Counter::default())).await;
                assert_eq!(e.result.unwrap(), clean(), "{wall:?} execute after {plant}");
                assert!(t.elapsed() < Duration::from_millis(500), "{wall:?} probe after {plant}: {:?}", t.elapsed());
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_runs_once_even_when_it_throws_a_syntax_error_at_run_time() {
    for wall in [Isolation::Process, Isolation::InProcess] {
        let sb = sandbox(wall, 1, demo()).await;
        for code in [
            "async () => { console.log('once'); await api.request({method: 'POST', path: '/x'}); eval('('); }",
            "console.log('once'); await api.request({method: 'POST', path: '/x'}); new Function('(')",
            "console.log('once');\nawait api.request({method: 'POST', path: '/x'});\nJSON.parse('{');\nreturn 1",
        ] {
            let host = Arc::new(Counter::default());
            let o = sb.execute(code.into(), env(), host.clone()).await;
            assert!(o.result.is_err(), "{code}");
            assert_eq!(o.console, vec!["once".to_string()], "{wall:?} {code}");
            assert_eq!(host.0.load(Ordering::SeqCst), 1, "{wall:?} {code}: the upstream got one request");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thrown_values_that_are_not_errors_are_described() {
    let sb = sandbox(Isolation::Process, 1, demo()).await;
    for (code, expect) in [
        ("async () => { throw 10n ** 30n }", "1000000000000000000000000000000n"),
        ("async () => { throw 10n ** 100n }", "a BigInt of 101 digits (10000000000000000000…n)"),
        ("async () => { throw 5n }", "5n"),
        ("async () => { throw new Proxy({}, {}) }", "an object that is not an Error"),
        ("async () => { throw {message: 'plain', code: 7} }", "plain"),
        ("async () => { throw 'plain text' }", "\"plain text\""),
        ("async () => { throw undefined }", "undefined"),
    ] {
        let o = sb.execute(code.into(), env(), Arc::new(Counter::default())).await;
        let e = o.result.unwrap_err();
        assert!(e.message.contains(expect), "{code}: {}", e.message);
        assert!(o.elapsed < Duration::from_millis(500), "{code}: {:?}", o.elapsed);
    }
    let o = sb
        .search(
            "async () => { let v = []; for (let i = 0; i < 200; i++) v = [v]; return v; }".into(),
            SearchCall::default(),
        )
        .await;
    assert!(o.result.unwrap_err().message.contains("nested more than"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_down_worker_can_do_nothing_but_compute() {
    let sb = sandbox(Isolation::Process, 1, demo()).await;
    let report = sb.lockdown_report().await.expect("process wall").expect("report");
    for key in ["open", "openat", "socket", "socket_unix", "execve", "fork", "kill", "ptrace", "mkdir", "setuid_root"] {
        assert_eq!(report[key], "denied", "{key}: {report}");
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc_geteuid() } == 0 {
        assert_eq!(report["uid"], "65534", "a worker started as root drops to nobody: {report}");
    }
    // And the worker still serves calls afterwards.
    let o = sb.search("async () => spec.paths['/a'].get.summary".into(), SearchCall::default()).await;
    assert_eq!(o.result.unwrap(), JsValue::String("A".into()));
}

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_hold_no_environment() {
    std::env::set_var("CODEMODE_CANARY_SECRET", "canary-7f3a");
    let sb = sandbox(Isolation::Process, 1, demo()).await;
    // No JS API reaches the environment; the check is on the process itself.
    let pids: Vec<u32> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|pid: &u32| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| s.contains("(codemode-sandbo"))
                .unwrap_or(false)
        })
        .collect();
    assert!(!pids.is_empty());
    for pid in pids {
        if let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) {
            assert!(
                !String::from_utf8_lossy(&env).contains("canary-7f3a"),
                "worker {pid} holds the host's environment"
            );
        }
    }
    drop(sb);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shared_spec_reads_the_same_alone_and_together() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/specs");
    if !dir.exists() {
        panic!("../shared/specs not found beside the repo: {}", dir.display());
    }
    let names = ["stripe", "kubernetes", "cloudflare", "github", "twilio", "kinto", "httpbin"];
    let mut specs = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        if let Some(name) = names.iter().find(|n| file.starts_with(*n)) {
            specs.push(SearchSpec {
                name: name.to_string(),
                graph: load(path.to_str().unwrap()),
                global: Default::default(),
            });
        }
    }
    assert_eq!(specs.len(), names.len());
    // Every schema (components, or Swagger 2 definitions moved there), read
    // three levels deep.
    let read = "async () => { const out = {}; for (const [n, s] of Object.entries(specs)) { const cs = (s.components || {}).schemas || s.definitions || {}; const depth = (v, d) => (v === null || typeof v !== 'object') ? v : d === 0 ? '…' : Array.isArray(v) ? v.map(x => depth(x, d - 1)) : Object.fromEntries(Object.entries(v).map(([k, x]) => [k, depth(x, d - 1)])); out[n] = Object.fromEntries(Object.entries(cs).map(([k, v]) => [k, depth(v, 3)])); } return out; }";
    let long = Limits { timeout: Duration::from_secs(60), memory_bytes: 1 << 30, ..limits() };
    let together = sandbox_with(Isolation::Process, 1, specs.clone(), long.clone()).await;
    let all = match together.search(read.into(), SearchCall::default()).await.result.unwrap() {
        JsValue::Json(v) => v,
        other => panic!("{other:?}"),
    };
    for s in &specs {
        let alone = sandbox_with(Isolation::Process, 1, vec![s.clone()], long.clone()).await;
        let one = match alone.search(read.into(), SearchCall::default()).await.result.unwrap() {
            JsValue::Json(v) => v,
            other => panic!("{other:?}"),
        };
        let schemas = one[&s.name].as_object().unwrap();
        assert!(!schemas.is_empty() || matches!(s.name.as_str(), "httpbin" | "kinto"), "{} has schemas", s.name);
        assert!(schemas.values().all(|v| !v.is_null()), "{}: a schema reads as null", s.name);
        assert_eq!(one[&s.name], all[&s.name], "{} reads differently next to the others", s.name);
        // A call that may see only this spec sees nothing of the others.
        let only = SearchCall { host: None, visible: Some(vec![s.name.clone()]) };
        let o = together.search("async () => Object.keys(specs)".into(), only).await;
        assert_eq!(o.result.unwrap(), JsValue::Json(json!([s.name])));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wall_that_cannot_start_says_what_to_do() {
    let config = SandboxConfig {
        isolation: Isolation::Process,
        limits: limits(),
        search_workers: 1,
        execute_workers: 1,
        worker: Some(WorkerCommand { program: "/bin/false".into(), args: vec![] }),
    };
    let e = Sandbox::start(config, demo()).await.err().expect("a worker that exits at once cannot serve");
    assert!(e.contains("process wall could not start") && e.contains("isolation = \"in-process\""), "{e}");
}
