//! The sandbox against hostile and ordinary code, behind both walls: every
//! call runs in a worker process and in-process, and both must agree. The
//! host here is an in-process echo (the real HTTP client is tested in the
//! codemode crate, against real servers).

use std::sync::Arc;
use std::time::{Duration, Instant};

use codemode_sandbox::{
    Client, ErrorKind, ExecuteEnv, Host, HostFuture, Isolation, JsValue, Limits, Outcome, Sandbox, SearchCall,
    SearchSpec, SyncHost,
};
use serde_json::{json, Value};

mod common;
use common::sandbox;

struct Echo;
impl Host for Echo {
    fn call(&self, client: &str, method: &str, args: Value) -> HostFuture {
        let (client, method) = (client.to_string(), method.to_string());
        Box::pin(async move {
            match args.get(0).and_then(|a| a.get("fail")) {
                Some(status) => Err(json!({"message": "upstream said no", "status": status, "name": "UpstreamError"})),
                None => {
                    // A binary response, as codemode-upstream sends one.
                    if let Some(b64) = args.get(0).and_then(|a| a.get("echo_bytes")) {
                        return Ok(json!({"status": 200, "headers": {}, "data": null, "$bytes": b64}));
                    }
                    if let Some(ms) = args.get(0).and_then(|a| a.get("sleep_ms")).and_then(Value::as_u64) {
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                    }
                    Ok(json!({"client": client, "method": method, "args": args}))
                }
            }
        })
    }
}

fn limits() -> Limits {
    Limits { timeout: Duration::from_millis(1500), memory_bytes: 16 << 20, ..Limits::default() }
}

async fn exec(code: &str) -> Outcome {
    exec_with(code, limits()).await
}

const WALLS: [Isolation; 2] = [Isolation::Process, Isolation::InProcess];

/// Checks that two walls gave the same answer.
fn same(a: &Outcome, b: &Outcome, code: &str) {
    match (&a.result, &b.result) {
        (Ok(x), Ok(y)) => assert_eq!(x, y, "{code}: the walls disagree"),
        (Err(x), Err(y)) => assert_eq!(x.kind, y.kind, "{code}: the walls disagree: {x:?} / {y:?}"),
        (x, y) => panic!("{code}: the walls disagree: {x:?} / {y:?}"),
    }
    assert_eq!(a.console, b.console, "{code}: console differs");
}

/// Runs `code` behind both walls; returns the process wall's outcome.
async fn exec_with(code: &str, limits: Limits) -> Outcome {
    let env = Arc::new(ExecuteEnv {
        clients: vec![Client { global: "demo".into(), methods: vec!["request".into()] }],
        aliases: vec![("api".into(), "demo".into())],
        dynamic_clients: vec!["codemode".into()],
    });
    let mut outs = Vec::new();
    for wall in WALLS {
        let sb = sandbox(wall, limits.clone(), vec![], 1).await;
        outs.push(sb.execute(code.to_string(), env.clone(), Arc::new(Echo)).await);
    }
    same(&outs[0], &outs[1], code);
    outs.swap_remove(0)
}

fn ok(o: &Outcome) -> &JsValue {
    match &o.result {
        Ok(v) => v,
        Err(e) => panic!("expected success, got {e:?}"),
    }
}

fn err(o: &Outcome) -> &codemode_sandbox::ScriptError {
    match &o.result {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e,
    }
}

#[tokio::test]
async fn accepts_every_form_models_send() {
    assert_eq!(ok(&exec("async () => 1 + 1").await), &JsValue::Json(json!(2)));
    assert_eq!(ok(&exec("```js\nasync () => ({a: 1})\n```").await), &JsValue::Json(json!({"a": 1})));
    assert_eq!(ok(&exec("[1, 2, 3].map(x => x * 2)").await), &JsValue::Json(json!([2, 4, 6])));
    assert_eq!(ok(&exec("const x = 20;\nreturn x + 1;").await), &JsValue::Json(json!(21)));
    assert_eq!(
        ok(&exec("const r = await api.request({path: '/x'});\nr.method").await),
        &JsValue::String("request".into())
    );
    assert_eq!(ok(&exec("async function main() { return 'hi' }").await), &JsValue::String("hi".into()));
    assert_eq!(ok(&exec("async () => { }").await), &JsValue::Undefined);
}

#[tokio::test]
async fn syntax_errors_point_into_the_models_code() {
    let o = exec("async () => {\n  const x = ;\n}").await;
    let e = err(&o);
    assert_eq!(e.kind, ErrorKind::Syntax, "{e:?}");
    assert_eq!(e.line, Some(2), "{e:?}");
    let o = exec("```js\nasync () => {\n  return 1 +;\n}\n```").await;
    assert_eq!(err(&o).line, Some(3), "{:?}", err(&o));
}

#[tokio::test]
async fn runtime_errors_have_positions_and_console_so_far() {
    let o = exec("async () => {\n  console.log('before');\n  const o = null;\n  return o.x;\n}").await;
    let e = err(&o);
    assert_eq!(e.kind, ErrorKind::Runtime);
    assert_eq!(e.name, "TypeError");
    assert_eq!(e.line, Some(4), "{e:?}");
    assert_eq!(o.console, vec!["before".to_string()]);
}

#[tokio::test]
async fn console_levels_are_prefixed() {
    let o =
        exec("async () => { console.log('a', 1, {b: 2}); console.warn('w'); console.error(new Error('boom')); }").await;
    assert_eq!(o.console, vec!["a 1 {\"b\":2}", "[warn] w", "[error] Error: boom"]);
}

#[tokio::test]
async fn infinite_loops_and_catastrophic_regexes_stop_at_the_limit() {
    for code in [
        "async () => { while (true) {} }",
        "async () => { for (;;) { try { while(true){} } catch (e) {} } }",
        "async () => /^(a+)+$/.test('a'.repeat(40) + 'b')",
    ] {
        let o = exec(code).await;
        assert_eq!(err(&o).kind, ErrorKind::Timeout, "{code}: {:?}", err(&o));
        assert!(o.elapsed < Duration::from_millis(1500 + 250), "{code} took {:?}", o.elapsed);
    }
}

#[tokio::test]
async fn memory_bombs_fail_fast() {
    let o = exec("async () => { const a = []; while (true) a.push('x'.repeat(1e5) + Math.random()); }").await;
    assert_eq!(err(&o).kind, ErrorKind::OutOfMemory, "{:?}", err(&o));
    assert!(o.elapsed < Duration::from_millis(1400), "{:?}", o.elapsed);
    let o = exec("async () => 'x'.repeat(2 ** 28)").await;
    assert!(matches!(err(&o).kind, ErrorKind::OutOfMemory | ErrorKind::Runtime), "{:?}", err(&o));
}

#[tokio::test]
async fn deep_recursion_is_a_clear_error() {
    let o = exec("async () => { const f = (n) => f(n + 1) + 1; return f(0); }").await;
    assert_eq!(err(&o).kind, ErrorKind::StackOverflow, "{:?}", err(&o));
}

#[tokio::test]
async fn a_promise_that_never_settles_ends_at_once() {
    let o = exec("async () => { await new Promise(() => {}); }").await;
    assert_eq!(err(&o).kind, ErrorKind::NeverSettles);
    assert!(o.elapsed < Duration::from_millis(500));
}

#[tokio::test]
async fn a_slow_host_call_is_bounded_by_the_timeout() {
    let o = exec("async () => api.request({sleep_ms: 10000})").await;
    assert_eq!(err(&o).kind, ErrorKind::Timeout);
    assert!(o.elapsed < Duration::from_millis(1500 + 250), "{:?}", o.elapsed);
}

#[tokio::test]
async fn host_calls_run_in_parallel_and_errors_are_catchable() {
    let o = exec("async () => (await Promise.all([1,2,3,4,5].map(i => api.request({sleep_ms: 300, i})))).length").await;
    assert_eq!(ok(&o), &JsValue::Json(json!(5)));
    assert!(o.elapsed < Duration::from_millis(1000), "{:?}", o.elapsed);
    let o = exec("async () => { try { await demo.request({fail: 404}); } catch (e) { return [e instanceof Error, e.name, e.message, e.status]; } }").await;
    assert_eq!(ok(&o), &JsValue::Json(json!([true, "UpstreamError", "upstream said no", 404])));
    let o = exec("async () => demo.request({fail: 500})").await;
    let e = err(&o);
    assert_eq!(e.details.as_ref().unwrap()["status"], 500);
}

#[tokio::test]
async fn bytes_cross_the_wall_as_base64_both_ways() {
    // A binary response: `data` is a Uint8Array, `.base64` the same bytes,
    // and the shape stays {status, headers, data}.
    let o = exec("async () => { const r = await demo.request({echo_bytes: 'AAEC/w=='}); return [r.data instanceof Uint8Array, Array.from(r.data), Object.keys(r), r.base64, (await r.bytes()).length, (await r.arrayBuffer()).byteLength]; }").await;
    assert_eq!(ok(&o), &JsValue::Json(json!([true, [0, 1, 2, 255], ["status", "headers", "data"], "AAEC/w==", 4, 4])));
    let o = exec("async () => { const r = await demo.request({echo_bytes: 'aGk='}); return r.text(); }").await;
    assert_eq!(ok(&o), &JsValue::String("hi".into()));
    // Arguments: every kind of buffer view becomes {"$bytes": base64}.
    let o = exec("async () => (await demo.request({rawBody: new Uint8Array([1, 2, 255]), ab: new Uint16Array([1]).buffer, dv: new DataView(new Uint8Array([1, 2, 3]).buffer, 1)})).args[0]").await;
    assert_eq!(
        ok(&o),
        &JsValue::Json(json!({"rawBody": {"$bytes": "AQL/"}, "ab": {"$bytes": "AQA="}, "dv": {"$bytes": "AgM="}}))
    );
    // A result: bytes, not an object of numbers.
    let o = exec("async () => [new Uint8Array([137, 80, 78, 71]), new Uint8Array(0)]").await;
    assert_eq!(ok(&o), &JsValue::Json(json!([{"$bytes": "iVBORw=="}, {"$bytes": ""}])));
    // A response whose `$bytes` is not base64 (the host never sends one) is an error, not a crash.
    let o = exec("async () => demo.request({echo_bytes: '!!'})").await;
    assert!(err(&o).message.contains("not base64"), "{:?}", err(&o));
}

#[tokio::test]
async fn host_calls_are_limited_per_execution() {
    let o = exec_with(
        "async () => { for (let i = 0; i < 10; i++) await api.request({i}); }",
        Limits { max_host_calls: 3, ..limits() },
    )
    .await;
    let e = err(&o);
    assert!(e.message.contains("limit of 3 upstream requests"), "{e:?}");
    assert_eq!(o.host_calls, 3);
}

#[tokio::test]
async fn nothing_of_the_host_is_reachable() {
    let o = exec("async () => [typeof require, typeof process, typeof fetch, typeof std, typeof os, typeof setImmediate, typeof XMLHttpRequest, typeof WebSocket, typeof Buffer]").await;
    assert_eq!(ok(&o), &JsValue::Json(Value::from(vec!["undefined"; 9])));
    // The web-standard globals are there, and none of them is the host.
    let o = exec("async () => [typeof setTimeout, typeof URL, typeof TextEncoder, typeof crypto.getRandomValues, typeof structuredClone, setTimeout.constructor('return typeof process')()]").await;
    assert_eq!(
        ok(&o),
        &JsValue::Json(json!(["function", "function", "function", "function", "function", "undefined"]))
    );
    let o = exec("async () => { const m = await import('fs'); return m }").await;
    assert!(o.result.is_err());
}

#[tokio::test]
async fn other_clients_methods_say_to_call_request() {
    let m = err(&exec("async () => demo.get('/items?page=2')").await).message.clone();
    assert!(m.starts_with("`demo.get()` does not exist: a client has only `request`. Write `await demo.request(\"GET /items?page=2\")`"), "{m}");
    let m = err(&exec("async () => demo.post('/items', {name: 'x'})").await).message.clone();
    assert!(m.contains("`await demo.request({ method: \"POST\", path: \"/items\", body })`"), "{m}");
    let e = err(&exec("async () => demo.rest.issues.listForRepo({owner: 'o', repo: 'r'})").await).clone();
    assert_eq!(e.name, "TypeError");
    assert!(
        e.message.starts_with("`demo.rest` does not exist") && e.message.contains("demo.request(\"GET /repos/"),
        "{e:?}"
    );
    // The client still shows `request` alone, and stays frozen.
    let o = exec("async () => [Object.keys(demo), JSON.stringify(demo), Object.isFrozen(demo), Object.isExtensible(demo), typeof demo.request, 'get' in demo]").await;
    assert_eq!(ok(&o), &JsValue::Json(json!([["request"], "{}", true, false, "function", true])));
    let o = exec("async () => { 'use strict'; try { demo.get = () => 1; } catch (e) { return e.name } }").await;
    assert_eq!(ok(&o), &JsValue::String("TypeError".into()));
}

#[tokio::test]
async fn calls_are_isolated() {
    let a = exec("async () => { globalThis.leak = 1; Object.prototype.polluted = 1; Array.prototype.map = () => 'hijacked'; return 1; }").await;
    assert!(a.result.is_ok());
    let b = exec("async () => [typeof leak, ({}).polluted, [1].map(x => x)]").await;
    assert_eq!(ok(&b), &JsValue::Json(json!(["undefined", null, [1]])));
}

fn graph(v: Value) -> Arc<codemode_spec::Graph> {
    let dir = std::env::temp_dir().join(format!("codemode-sandbox-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{}.json", rand_name()));
    std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let spec = std::thread::spawn(move || rt.block_on(codemode_spec::load(path.to_str().unwrap(), &http)).unwrap())
        .join()
        .unwrap();
    spec.graph
}

fn rand_name() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!("spec{}", N.fetch_add(1, Ordering::Relaxed))
}

fn demo_graph() -> Arc<codemode_spec::Graph> {
    graph(json!({
        "openapi": "3.0.0",
        "paths": {
            "/zones/{id}/rulesets": {"get": {"summary": "List rulesets", "tags": ["waf"],
                "responses": {"200": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Tree"}}}}}}},
            "/zones/{id}/dns": {"get": {"summary": "List DNS", "parameters": [
                {"name": "a", "in": "query", "schema": {"$ref": "#/components/schemas/Kind"}},
                {"name": "b", "in": "query", "schema": {"$ref": "#/components/schemas/Kind"}}
            ]}}
        },
        "components": {"schemas": {
            "Kind": {"type": "string", "enum": ["A", "AAAA", "CNAME"]},
            "Tree": {"type": "object", "properties": {"children": {"type": "array", "items": {"$ref": "#/components/schemas/Tree"}}, "kind": {"$ref": "#/components/schemas/Kind"}}}
        }}
    }))
}

/// The demo spec behind both walls; `run` runs code behind each and checks
/// that they agree.
struct Pool {
    walls: Vec<Sandbox>,
}

impl Pool {
    async fn run(&self, code: String) -> Outcome {
        self.run_with(code, SearchCall::default()).await
    }
    async fn run_with(&self, code: String, call: SearchCall) -> Outcome {
        let mut outs = Vec::new();
        for sb in &self.walls {
            outs.push(sb.search(code.clone(), call.clone()).await);
        }
        same(&outs[0], &outs[1], &code);
        outs.swap_remove(0)
    }
}

async fn pool(workers: usize) -> Pool {
    let specs = vec![SearchSpec { name: "demo".into(), graph: demo_graph(), global: Default::default() }];
    let mut walls = Vec::new();
    for wall in WALLS {
        walls.push(sandbox(wall, limits(), specs.clone(), workers).await);
    }
    Pool { walls }
}

#[tokio::test(flavor = "multi_thread")]
async fn search_sees_the_resolved_spec() {
    let p = pool(1).await;
    let o = p.run("async () => Object.entries(spec.paths).filter(([p]) => p.includes('rulesets')).map(([p, i]) => [p, i.get.summary])".into()).await;
    assert_eq!(ok(&o), &JsValue::Json(json!([["/zones/{id}/rulesets", "List rulesets"]])));
    // Repeated (non-circular) references are expanded both times.
    let o = p.run("async () => spec.paths['/zones/{id}/dns'].get.parameters.map(p => p.schema.enum)".into()).await;
    assert_eq!(ok(&o), &JsValue::Json(json!([["A", "AAAA", "CNAME"], ["A", "AAAA", "CNAME"]])));
    // Only recursion on the current path is marked circular.
    let o = p.run("async () => spec.components.schemas.Tree.properties".into()).await;
    assert_eq!(
        ok(&o),
        &JsValue::Json(json!({
            "children": {"type": "array", "items": {"$circular": "#/components/schemas/Tree"}},
            "kind": {"type": "string", "enum": ["A", "AAAA", "CNAME"]}
        }))
    );
    let o = p.run("async () => specs.demo.paths['/zones/{id}/rulesets'].get.responses['200'].content['application/json'].schema.properties.children.items".into()).await;
    assert_eq!(ok(&o), &JsValue::Json(json!({"$circular": "#/components/schemas/Tree"})));
}

#[tokio::test(flavor = "multi_thread")]
async fn search_calls_cannot_change_what_the_next_one_sees() {
    let p = pool(1).await;
    let attacks = [
        "async () => { spec.paths['/x'] = 1; spec.openapi = 'hacked'; delete spec.paths['/zones/{id}/dns']; }",
        "async () => { 'use strict'; spec.paths['/x'] = 1; }",
        "async () => { Object.getPrototypeOf(spec.paths).polluted = 1; }",
        "async () => { spec.constructor.prototype.polluted = 1; }",
        "async () => { const G = spec.constructor.constructor('return globalThis')(); G.leak = 1; }",
        "async () => { spec.components.schemas.Kind.enum.push('X'); }",
        "async () => { Object.getPrototypeOf(spec.components.schemas.Kind.enum).push = null; }",
        "async () => { globalThis.spec = 1; }",
    ];
    for a in attacks {
        let _ = p.run(a.into()).await;
    }
    let o = p.run("async () => [spec.openapi, Object.keys(spec.paths).length, ({}).polluted, spec.constructor.constructor('return globalThis')().leak, spec.components.schemas.Kind.enum.length, typeof [].push]".into()).await;
    assert_eq!(ok(&o), &JsValue::Json(json!(["3.0.0", 2, null, null, 3, "function"])));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_runaway_search_does_not_block_the_other_worker() {
    let p = Arc::new(pool(2).await);
    let p2 = p.clone();
    let slow = tokio::spawn(async move { p2.run("async () => { while (true) {} }".into()).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let t = Instant::now();
    let o = p.run("async () => Object.keys(spec.paths).length".into()).await;
    assert_eq!(ok(&o), &JsValue::Json(json!(2)));
    assert!(t.elapsed() < Duration::from_millis(500), "{:?}", t.elapsed());
    assert_eq!(err(&slow.await.unwrap()).kind, ErrorKind::Timeout);
    // …and the worker that ran it still works.
    for _ in 0..4 {
        assert!(p.run("async () => 1".into()).await.result.is_ok());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn search_memory_bombs_leave_the_spec_intact() {
    let p = pool(1).await;
    let o = p.run("async () => { const a = []; while (true) a.push(new Array(1e5).fill(1)); }".into()).await;
    assert_eq!(err(&o).kind, ErrorKind::OutOfMemory, "{:?}", err(&o));
    let o = p.run("async () => Object.keys(spec.paths).length".into()).await;
    assert_eq!(ok(&o), &JsValue::Json(json!(2)));
}

#[tokio::test]
async fn dynamic_clients_route_any_method_to_the_host() {
    let o = exec(
        "async () => { const r = await codemode.memory_create_entities({x: 1}); return [r.client, r.method, r.args]; }",
    )
    .await;
    assert_eq!(ok(&o), &JsValue::Json(json!(["codemode", "memory_create_entities", [{"x": 1}]])));
    // `then` is not a method: awaiting the object itself must not call the host.
    let o = exec("async () => { const c = await codemode; return typeof c; }").await;
    assert_eq!(ok(&o), &JsValue::String("object".into()));
    assert_eq!(o.host_calls, 0);
}

struct Catalog;
impl SyncHost for Catalog {
    fn call(&self, method: &str, args: Value) -> Result<Value, Value> {
        match method {
            "tools" => Ok(json!([{"name": "time_get_current_time", "server": "time"}])),
            "types" if args.get(0).is_some_and(|a| a == "nope") => {
                Err(json!({"message": "no tool named nope", "name": "TypeError"}))
            }
            "types" => Ok(json!("declare const codemode: {}")),
            _ => Err(json!({"message": "unknown"})),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn search_gets_a_codemode_global_from_the_sync_host() {
    let p = pool(1).await;
    let host: Arc<dyn SyncHost> = Arc::new(Catalog);
    let call = SearchCall { host: Some(host.clone()), visible: None };
    let o = p.run_with("async () => [codemode.tools()[0].name, codemode.types()]".into(), call.clone()).await;
    assert_eq!(ok(&o), &JsValue::Json(json!(["time_get_current_time", "declare const codemode: {}"])));
    let o = p
        .run_with(
            "async () => { try { codemode.types('nope') } catch (e) { return [e.name, e.message] } }".into(),
            call,
        )
        .await;
    assert_eq!(ok(&o), &JsValue::Json(json!(["TypeError", "no tool named nope"])));
    let o = p.run("async () => typeof codemode".into()).await;
    assert_eq!(ok(&o), &JsValue::String("undefined".into()));
}

#[tokio::test(flavor = "multi_thread")]
async fn search_sees_only_the_specs_it_may() {
    let p = pool(1).await;
    let hidden = SearchCall { host: None, visible: Some(vec![]) };
    let o = p.run_with("async () => [typeof spec, Object.keys(specs)]".into(), hidden).await;
    assert_eq!(ok(&o), &JsValue::Json(json!(["undefined", []])));
    let shown = SearchCall { host: None, visible: Some(vec!["demo".into()]) };
    let o = p.run_with("async () => [typeof spec, Object.keys(specs)]".into(), shown).await;
    assert_eq!(ok(&o), &JsValue::Json(json!(["object", ["demo"]])));
}

#[tokio::test]
async fn typescript_runs_in_every_form() {
    let o = exec("async (): Promise<number> => { const x: number = 41; return x + 1 }").await;
    assert_eq!(ok(&o), &JsValue::Json(json!(42)));
    // Interfaces before the arrow leave it readable as one expression.
    let o =
        exec("interface Echo { method: string }\nasync () => ((await api.request({path: '/x'})) as Echo).method").await;
    assert_eq!(ok(&o), &JsValue::String("request".into()));
    // A script with top-level await.
    let o =
        exec("type R = { method: string };\nconst r = await api.request<R>({path: '/x'});\nr!.method as string").await;
    assert_eq!(ok(&o), &JsValue::String("request".into()));
    // Statements ending in `return`, with an enum and a generic function.
    let o = exec(
        "enum Color { Red, Green = 4, Blue }\nfunction pick<T>(xs: T[], i: number): T { return xs[i]! }\nreturn [Color.Blue, Color[4], pick<string>(['a', 'b'], 1)];",
    )
    .await;
    assert_eq!(ok(&o), &JsValue::Json(json!([5, "Green", "b"])));
    let o = exec("class Box<T> { private readonly v: T; constructor(v: T) { this.v = v } get(): T { return this.v } }\nreturn new Box<number>(7).get()").await;
    assert_eq!(ok(&o), &JsValue::Json(json!(7)));
}

#[tokio::test]
async fn typescript_errors_are_where_the_model_wrote_them() {
    // The same code with the types blanked by hand throws at the same line
    // and column: positions are the model's, no source map.
    let ts = exec("async () => {\n  const o: { x: number } | null = null;\n  return o!.x;\n}").await;
    let js = exec("async () => {\n  const o                         = null;\n  return o .x;\n}").await;
    let (t, j) = (err(&ts), err(&js));
    assert_eq!(t.name, "TypeError");
    assert_eq!((t.line, t.column), (j.line, j.column), "{t:?} / {j:?}");
    assert_eq!(t.line, Some(3));
    // A TypeScript syntax error: oxc's, positioned, in the usual shape.
    let o = exec("```ts\nasync () => {\n  const x: number = ;\n}\n```").await;
    let e = err(&o);
    assert_eq!(e.kind, ErrorKind::Syntax, "{e:?}");
    assert_eq!(e.name, "SyntaxError");
    assert_eq!(e.line, Some(3), "{e:?}");
    assert!(e.message.contains("TypeScript is accepted"), "{e:?}");
    // What cannot be blanked says what to write instead.
    let o = exec("namespace N { export const x = 1 }\nreturn N.x").await;
    let e = err(&o);
    assert_eq!(e.kind, ErrorKind::Syntax);
    assert!(e.message.contains("use an object instead"), "{e:?}");
    assert_eq!(e.line, Some(1));
}

#[tokio::test]
async fn sloppy_javascript_still_runs() {
    // Read as TypeScript first, yet left as it is: `with` and octal literals.
    let o = exec("with (Math) { return max(010, 2) }").await;
    assert_eq!(ok(&o), &JsValue::Json(json!(8)));
}

#[tokio::test(flavor = "multi_thread")]
async fn search_runs_typescript() {
    let p = pool(1).await;
    let o = p
        .run("async (): Promise<string[]> => Object.keys(spec.paths as Record<string, unknown>).filter((p: string): boolean => p.includes('dns'))".into())
        .await;
    assert_eq!(ok(&o), &JsValue::Json(json!(["/zones/{id}/dns"])));
}

#[tokio::test]
async fn code_too_deep_for_the_typescript_parser_is_a_clean_error() {
    // Far past the parser's budget: refused before parsing, and the worker
    // lives on to answer the next call.
    let deep = format!("async (): number => {}1{}", "(".repeat(60_000), ")".repeat(60_000));
    let o = exec(&deep).await;
    let e = err(&o);
    assert_eq!(e.kind, ErrorKind::Syntax, "{e:?}");
    assert!(e.message.contains("too large to be read as TypeScript"), "{e:?}");
    // Plain JavaScript that large is still QuickJS's to judge (its own
    // stack limit).
    let o = exec(&format!("{}1{}", "[".repeat(60_000), "]".repeat(60_000))).await;
    assert!(
        matches!(&o.result, Err(e) if e.kind == ErrorKind::StackOverflow || e.kind == ErrorKind::Syntax),
        "{:?}",
        o.result
    );
    assert_eq!(ok(&exec("async (): Promise<number> => 1").await), &JsValue::Json(json!(1)));
}
