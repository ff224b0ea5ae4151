//! The web-standard globals (URL, URLSearchParams, TextEncoder/TextDecoder,
//! atob/btoa, structuredClone, timers, crypto, console.table) in `search`
//! and `execute`, behind both walls: every snippet runs four ways and all
//! four must give the same answer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use codemode_sandbox::{
    Client, ErrorKind, ExecuteEnv, Host, HostFuture, Isolation, JsValue, Limits, Outcome, Sandbox, SearchCall,
};
use serde_json::{json, Value};

mod common;
use common::sandbox;

/// Answers after `sleep_ms` (if asked) with what it was sent.
struct Echo;
impl Host for Echo {
    fn call(&self, _client: &str, _method: &str, args: Value) -> HostFuture {
        Box::pin(async move {
            if let Some(ms) = args.get(0).and_then(|a| a.get("sleep_ms")).and_then(Value::as_u64) {
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            Ok(json!({"args": args}))
        })
    }
}

fn limits() -> Limits {
    Limits { timeout: Duration::from_millis(1500), memory_bytes: 32 << 20, ..Limits::default() }
}

/// Both walls, for both tools.
struct Walls(Vec<Sandbox>);

impl Walls {
    async fn new(limits: Limits) -> Walls {
        let mut walls = Vec::new();
        for wall in [Isolation::Process, Isolation::InProcess] {
            walls.push(sandbox(wall, limits.clone(), vec![], 1).await);
        }
        Walls(walls)
    }

    /// Runs `code` four ways (two tools × two walls); all must agree.
    /// Returns the process wall's `execute` outcome.
    async fn run(&self, code: &str) -> Outcome {
        let env = Arc::new(ExecuteEnv {
            clients: vec![Client { global: "api".into(), methods: vec!["request".into()] }],
            ..ExecuteEnv::default()
        });
        let mut outs = Vec::new();
        for sb in &self.0 {
            outs.push(sb.execute(code.to_string(), env.clone(), Arc::new(Echo)).await);
        }
        if !code.contains("api.") {
            for sb in &self.0 {
                outs.push(sb.search(code.to_string(), SearchCall { host: None, visible: None }).await);
            }
        }
        for o in &outs[1..] {
            match (&outs[0].result, &o.result) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{code}: the runs disagree"),
                (Err(a), Err(b)) => {
                    assert_eq!(
                        (a.kind, &a.name, &a.message),
                        (b.kind, &b.name, &b.message),
                        "{code}: the runs disagree"
                    )
                }
                (a, b) => panic!("{code}: the runs disagree: {a:?} / {b:?}"),
            }
            assert_eq!(outs[0].console, o.console, "{code}: the consoles differ");
        }
        outs.swap_remove(0)
    }

    async fn value(&self, code: &str) -> Value {
        match self.run(code).await.result {
            Ok(JsValue::Json(v)) => v,
            Ok(JsValue::String(s)) => Value::String(s),
            Ok(JsValue::Undefined) => Value::Null,
            Err(e) => panic!("{code}: expected a value, got {e:?}"),
        }
    }

    async fn error(&self, code: &str) -> codemode_sandbox::ScriptError {
        match self.run(code).await.result {
            Err(e) => e,
            Ok(v) => panic!("{code}: expected an error, got {v:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn url_parses_like_the_whatwg_standard() {
    let w = Walls::new(limits()).await;
    let v = w
        .value("async () => { const u = new URL('HTTPS://user:p%40ss@Example.COM:443/a/./b/../c?x=1&y=a+b#frag'); return [u.href, u.origin, u.protocol, u.username, u.password, u.host, u.hostname, u.port, u.pathname, u.search, u.hash, String(u), u.toJSON(), JSON.stringify({u})]; }")
        .await;
    assert_eq!(
        v,
        json!([
            "https://user:p%40ss@example.com/a/c?x=1&y=a+b#frag",
            "https://example.com",
            "https:",
            "user",
            "p%40ss",
            "example.com",
            "example.com",
            "",
            "/a/c",
            "?x=1&y=a+b",
            "#frag",
            "https://user:p%40ss@example.com/a/c?x=1&y=a+b#frag",
            "https://user:p%40ss@example.com/a/c?x=1&y=a+b#frag",
            "{\"u\":\"https://user:p%40ss@example.com/a/c?x=1&y=a+b#frag\"}"
        ])
    );
    // Relative references against a base, IDNA, ports, and what does not parse.
    let v = w
        .value("async () => [new URL('../d?q#h', 'https://h.test/a/b/c').href, new URL('//other.test/x', 'https://h.test/').href, new URL('https://münchen.de:8080/').host, new URL('?only', 'https://h.test/p').href, URL.canParse('nope'), URL.canParse('/p', 'https://h.test'), URL.parse('nope'), new URL('https://h.test/ä b').pathname]")
        .await;
    assert_eq!(
        v,
        json!([
            "https://h.test/a/d?q#h",
            "https://other.test/x",
            "xn--mnchen-3ya.de:8080",
            "https://h.test/p?only",
            false,
            true,
            null,
            "/%C3%A4%20b"
        ])
    );
    let e = w.error("async () => new URL('/relative')").await;
    assert_eq!((e.kind, e.name.as_str()), (ErrorKind::Runtime, "TypeError"));
    assert!(e.message.contains("Invalid URL: \"/relative\"") && e.message.contains("needs a base"), "{e:?}");
    let e = w.error("async () => new URL('x', 'not a base')").await;
    assert!(e.message.contains("against the base \"not a base\""), "{e:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn url_setters_and_search_params_stay_in_step() {
    let w = Walls::new(limits()).await;
    let v = w
        .value("async () => { const u = new URL('https://h.test/p?a=1'); const out = []; u.searchParams.append('b', 'x y&z'); out.push(u.href); u.search = '?c=3'; out.push(u.searchParams.get('c'), u.searchParams.get('a')); u.pathname = '/new path'; u.hash = 'h'; u.port = '8443'; u.hostname = 'other.test'; u.protocol = 'http'; out.push(u.href); u.port = 'nonsense'; u.protocol = 'not a scheme!'; out.push(u.href); u.searchParams.delete('c'); out.push(u.href, u.search); u.href = 'https://z.test/?k=v'; out.push(u.searchParams.get('k')); return out; }")
        .await;
    assert_eq!(
        v,
        json!([
            "https://h.test/p?a=1&b=x+y%26z",
            "3",
            null,
            "http://other.test:8443/new%20path?c=3#h",
            "http://other.test:8443/new%20path?c=3#h",
            "http://other.test:8443/new%20path#h",
            "",
            "v"
        ])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn search_params_are_form_urlencoded() {
    let w = Walls::new(limits()).await;
    let v = w
        .value("async () => { const p = new URLSearchParams('?a=1&b=x+y&a=%F0%9F%98%80&c&=e&bad=%zz%FF'); const out = [p.get('a'), p.getAll('a'), p.get('b'), p.get('c'), p.get(''), p.get('bad'), p.get('none'), p.has('a'), p.has('a', '2'), p.size]; p.set('a', 'one'); p.append('z', ' !*\\'()~é'); p.delete('c'); out.push(p.toString()); p.sort(); out.push([...p.keys()].join(','), [...p].length, JSON.stringify([...p.entries()].slice(0, 2))); const seen = []; p.forEach((v, k) => seen.push(k + '=' + v)); out.push(seen.length); out.push(new URLSearchParams({x: 1, y: 'a b'}).toString(), new URLSearchParams([['k', 'v'], ['k', 'w']]).getAll('k'), new URLSearchParams(p).size); return out; }")
        .await;
    assert_eq!(
        v,
        json!([
            "1",
            ["1", "😀"],
            "x y",
            "",
            "e",
            "%zz\u{FFFD}",
            null,
            true,
            false,
            6,
            "a=one&b=x+y&=e&bad=%25zz%EF%BF%BD&z=+%21*%27%28%29%7E%C3%A9",
            ",a,b,bad,z",
            5,
            "[[\"\",\"e\"],[\"a\",\"one\"]]",
            5,
            "x=1&y=a+b",
            ["v", "w"],
            5
        ])
    );
    let e = w.error("async () => new URLSearchParams([['only-one']])").await;
    assert!(e.message.contains("exactly two items"), "{e:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn urls_past_their_cap_get_a_clear_error() {
    let w = Walls::new(limits()).await;
    let e = w.error("async () => new URL('https://h.test/' + 'a'.repeat(2 << 20))").await;
    assert_eq!(e.name, "RangeError");
    assert!(e.message.contains("longer than the 1 MiB a URL may have here"), "{e:?}");
    let e = w.error("async () => { const u = new URL('https://h.test/'); u.search = 'q'.repeat(2 << 20); }").await;
    assert!(e.message.contains("1 MiB"), "{e:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn text_encoder_and_decoder_are_utf8() {
    let w = Walls::new(limits()).await;
    let v = w
        .value("async () => { const e = new TextEncoder(), d = new TextDecoder(); const out = [e.encoding, d.encoding, Array.from(e.encode('aé€😀')), Array.from(e.encode('x\\uD800y')), e.encode().length, d.decode(e.encode('héllo 😀')), d.decode(new Uint8Array([0xEF, 0xBB, 0xBF, 0x68, 0x69])), new TextDecoder('utf-8', {ignoreBOM: true}).decode(new Uint8Array([0xEF, 0xBB, 0xBF, 0x68])).length, d.decode(new Uint8Array([0x61, 0xF0, 0x9F, 0x98, 0x62, 0x80])), d.decode(new Uint8Array([0, 0x68, 0x69, 0]).buffer), d.decode(new DataView(new Uint8Array([0x41, 0x42, 0x43]).buffer, 1, 1)), d.decode(new Uint8Array([0x41, 0x42, 0x43]).subarray(1)), d.decode(), new TextDecoder('UTF8').fatal, new TextDecoder('utf-8', {fatal: true}).fatal]; const dst = new Uint8Array(5); out.push(e.encodeInto('a€😀', dst), Array.from(dst)); return out; }")
        .await;
    assert_eq!(
        v,
        json!([
            "utf-8",
            "utf-8",
            [0x61, 0xC3, 0xA9, 0xE2, 0x82, 0xAC, 0xF0, 0x9F, 0x98, 0x80],
            [0x78, 0xEF, 0xBF, 0xBD, 0x79],
            0,
            "héllo 😀",
            "hi",
            2,
            "a\u{FFFD}b\u{FFFD}",
            "\u{0}hi\u{0}",
            "B",
            "BC",
            "",
            false,
            true,
            {"read": 2, "written": 4},
            [0x61, 0xE2, 0x82, 0xAC, 0]
        ])
    );
    let e = w.error("async () => new TextDecoder('utf-8', {fatal: true}).decode(new Uint8Array([0x68, 0xFF]))").await;
    assert_eq!(e.name, "TypeError");
    assert!(e.message.contains("not valid UTF-8") && e.message.contains("offset 1"), "{e:?}");
    let e = w.error("async () => new TextDecoder('latin1')").await;
    assert!(e.name == "RangeError" && e.message.contains("only utf-8"), "{e:?}");
    let e = w.error("async () => new TextDecoder().decode('text')").await;
    assert!(e.message.contains("must be an ArrayBuffer"), "{e:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn atob_and_btoa_are_forgiving_base64_with_errors_that_teach() {
    let w = Walls::new(limits()).await;
    let v = w
        .value("async () => [btoa('hello'), atob('aGVsbG8='), atob(' aGVs bG8 '), atob('aGVsbG8'), btoa(''), btoa('\\u00ff'), new TextEncoder().encode('é').toBase64()]")
        .await;
    assert_eq!(v, json!(["aGVsbG8=", "hello", "hello", "hello", "", "/w==", "w6k="]));
    let e = w.error("async () => btoa('price: 5 €')").await;
    assert_eq!(e.name, "InvalidCharacterError");
    assert!(e.message.contains("U+20AC at index 9") && e.message.contains("TextEncoder"), "{e:?}");
    let e = w.error("async () => atob('a-b_')").await;
    assert_eq!(e.name, "InvalidCharacterError");
    assert!(e.message.contains("not valid base64") && e.message.contains("base64url"), "{e:?}");
    let v = w
        .value("async () => { try { btoa('€'); } catch (e) { return [e instanceof DOMException, e.code, e.name]; } }")
        .await;
    assert_eq!(v, json!([true, 5, "InvalidCharacterError"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn structured_clone_copies_data_and_refuses_the_rest() {
    let w = Walls::new(limits()).await;
    let v = w
        .value("async () => { const shared = {s: 1}; const buf = new Uint8Array([1, 2, 3]); const src = {n: 1, s: 'x', big: 10n, d: new Date(5), r: /a+/gi, m: new Map([[shared, 'v']]), set: new Set([1, shared]), a: [1, , 3], shared, again: shared, buf, view: new DataView(buf.buffer, 1), ab: new ArrayBuffer(2), err: new RangeError('bad'), boxed: new String('b'), nested: {deep: [[{x: 1}]]}, ['__proto__']: 1}; src.self = src; const c = structuredClone(src); return [c !== src, c.self === c, c.shared === c.again, c.shared !== shared, c.m.keys().next().value === c.shared, c.set.has(c.shared), c.d instanceof Date && c.d.getTime(), c.r.source + '/' + c.r.flags, c.a.length, 1 in c.a, Array.from(c.buf), c.view.getUint8(0), c.view.buffer === c.buf.buffer, c.buf.buffer !== buf.buffer, c.ab.byteLength, c.err instanceof RangeError && c.err.message, typeof c.boxed, String(c.boxed), c.nested.deep[0][0].x, typeof c.big, Object.getPrototypeOf(c) === Object.prototype, Object.keys(c).includes('__proto__')]; }")
        .await;
    assert_eq!(
        v,
        json!([
            true,
            true,
            true,
            true,
            true,
            true,
            5,
            "a+/gi",
            3,
            false,
            [1, 2, 3],
            2,
            true,
            true,
            2,
            "bad",
            "object",
            "b",
            1,
            "bigint",
            true,
            true
        ])
    );
    // Class instances come back as plain objects; deep nesting costs no stack.
    let v = w
        .value("async () => { class P { constructor() { this.x = 1; } get y() { return 2; } } const c = structuredClone(new P()); let o = {}; for (let i = 0; i < 2e4; i++) o = {o}; let d = structuredClone(o), n = 0; while (d.o) { d = d.o; n++; } return [c.constructor === Object, c.x, c.y, n]; }")
        .await;
    assert_eq!(v, json!([true, 1, null, 20000]));
    for (code, what) in [
        ("async () => structuredClone({f: () => 1})", "a function"),
        ("async () => structuredClone([Symbol('s')])", "a Symbol"),
        ("async () => structuredClone(Promise.resolve(1))", "a Promise"),
        ("async () => structuredClone(new WeakMap())", "WeakMap"),
        ("async () => structuredClone(1, {transfer: [new ArrayBuffer(1)]})", "transfer"),
    ] {
        let e = w.error(code).await;
        assert_eq!(e.name, "DataCloneError", "{code}: {e:?}");
        assert!(e.message.contains(what) && e.message.contains("plain data"), "{code}: {e:?}");
    }
    // A getter that spins is stopped by the time limit like any code.
    let e = w.error("async () => structuredClone({get x() { for (;;) {} }})").await;
    assert_eq!(e.kind, ErrorKind::Timeout);
}

#[tokio::test(flavor = "multi_thread")]
async fn timers_fire_in_order_through_the_event_loop() {
    let w = Walls::new(limits()).await;
    let v = w
        .value("async () => { const log = []; const t0 = Date.now(); setTimeout(() => log.push('b'), 20); setTimeout((x, y) => log.push('a' + x + y), 10, 1, 2); const gone = setTimeout(() => log.push('never'), 5); clearTimeout(gone); clearTimeout(12345); clearTimeout(undefined); Promise.resolve().then(() => log.push('micro')); queueMicrotask(() => log.push('queued')); setTimeout(() => { log.push('c'); Promise.resolve().then(() => log.push('c-micro')); }, 20); setTimeout(() => log.push('d'), 20); let ticks = 0; await new Promise(r => { const id = setInterval(() => { ticks++; if (ticks === 3) { clearInterval(id); r(); } }, 15); }); await new Promise(r => setTimeout(r, 30)); const waited = Date.now() - t0; return [log, ticks, waited >= 70 && waited < 1000, typeof gone]; }")
        .await;
    assert_eq!(v, json!([["micro", "queued", "a12", "b", "c", "c-micro", "d"], 3, true, "number"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn timers_wait_alongside_host_calls() {
    let w = Walls::new(limits()).await;
    let o = w
        .run("async () => { const log = []; setTimeout(() => log.push('timer'), 30); const r = await api.request({sleep_ms: 120}); log.push('request'); const race = await Promise.race([api.request({sleep_ms: 1000}).then(() => 'request'), new Promise(r => setTimeout(() => r('timeout'), 50))]); return [log, race]; }")
        .await;
    assert_eq!(o.result.unwrap(), JsValue::Json(json!([["timer", "request"], "timeout"])));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_timer_past_the_deadline_ends_the_call_at_once() {
    let w = Walls::new(limits()).await;
    let started = Instant::now();
    let e = w.error("async () => { await new Promise(r => setTimeout(r, 60000)); return 'woke'; }").await;
    // Four runs, none waiting for the 1.5 s limit.
    assert!(started.elapsed() < Duration::from_millis(1500), "{:?}", started.elapsed());
    assert_eq!((e.kind, e.name.as_str()), (ErrorKind::Timeout, "TimeoutError"));
    assert!(
        e.message.starts_with("setTimeout(…, 60000 ms) would fire after this call's time limit of 1500 ms")
            && e.message.contains("[limits] timeout_secs"),
        "{e:?}"
    );
    // Something that settles first wins; the far timer never matters.
    let v = w
        .value("async () => { setTimeout(() => {}, 60000); await new Promise(r => setTimeout(r, 10)); return 'done'; }")
        .await;
    assert_eq!(v, json!("done"));
    // An interval whose next tick lies past the deadline.
    let e = w.error("async () => { let n = 0; await new Promise(r => setInterval(() => { n++; }, 2000)); }").await;
    assert!(e.message.starts_with("setInterval(…, 2000 ms) would fire after"), "{e:?}");
    // A busy interval is stopped at the deadline like any loop.
    let started = Instant::now();
    let e = w.error("async () => { setInterval(() => {}, 0); await new Promise(() => {}); }").await;
    assert_eq!(e.kind, ErrorKind::Timeout);
    assert!(started.elapsed() < Duration::from_secs(8), "{:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread")]
async fn timers_are_capped_and_checked() {
    let w = Walls::new(limits()).await;
    let e = w.error("async () => { for (let i = 0; i < 5000; i++) setTimeout(() => {}, 0); }").await;
    assert_eq!(e.name, "RangeError");
    assert!(e.message.contains("limit of 1000 timers"), "{e:?}");
    let e = w.error("async () => setTimeout('alert(1)', 0)").await;
    assert!(e.name == "TypeError" && e.message.contains("needs a function"), "{e:?}");
    let e = w
        .error(
            "async () => { setTimeout(() => { throw new Error('from a timer'); }, 1); await new Promise(() => {}); }",
        )
        .await;
    assert_eq!(e.message, "from a timer");
    let e = w.error("async () => { setTimeout(() => {}, 1); clearTimeout(1); await new Promise(() => {}); }").await;
    assert_eq!(e.kind, ErrorKind::NeverSettles);
}

#[tokio::test(flavor = "multi_thread")]
async fn crypto_gives_random_bytes_and_uuids() {
    let w = Walls::new(limits()).await;
    // Random values differ per run, so the four runs compare shapes only.
    let v = w
        .value("async () => { const a = crypto.getRandomValues(new Uint8Array(64)); const b = crypto.getRandomValues(new Uint32Array(4)); const u = crypto.randomUUID(); const ids = new Set(Array.from({length: 200}, () => crypto.randomUUID())); const big = crypto.getRandomValues(new Uint8Array(65536)); return [a.length, a.some(x => x !== 0), b.length, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(u), ids.size, new Set(big).size > 200, crypto.getRandomValues(new Uint8Array(8).subarray(2, 4)).length, typeof Math.random()]; }")
        .await;
    assert_eq!(v, json!([64, true, 4, true, 200, true, 2, "number"]));
    let e = w.error("async () => crypto.getRandomValues(new Uint8Array(65537))").await;
    assert_eq!(e.name, "QuotaExceededError");
    assert!(e.message.contains("65537 bytes") && e.message.contains("subarray"), "{e:?}");
    let e = w.error("async () => crypto.getRandomValues(new Float64Array(2))").await;
    assert_eq!(e.name, "TypeMismatchError");
}

#[tokio::test(flavor = "multi_thread")]
async fn console_table_renders_text_within_the_cap() {
    let w = Walls::new(limits()).await;
    let o = w
        .run("async () => { console.table([{a: 1, b: 'x'}, {a: 2, c: true}]); console.table(['p', 'q']); console.table({r: {k: null}}, ['k']); console.table(5); }")
        .await;
    assert_eq!(
        o.console,
        vec![
            "┌─────────┬───┬─────┬──────┐\n│ (index) │ a │ b   │ c    │\n├─────────┼───┼─────┼──────┤\n│ 0       │ 1 │ 'x' │      │\n│ 1       │ 2 │     │ true │\n└─────────┴───┴─────┴──────┘",
            "┌─────────┬────────┐\n│ (index) │ Values │\n├─────────┼────────┤\n│ 0       │ 'p'    │\n│ 1       │ 'q'    │\n└─────────┴────────┘",
            "┌─────────┬──────┐\n│ (index) │ k    │\n├─────────┼──────┤\n│ r       │ null │\n└─────────┴──────┘",
            "5",
        ]
    );
    let small = Walls::new(Limits { console_bytes: 2048, ..limits() }).await;
    let o = small
        .run(
            "async () => { console.table(Array.from({length: 1000}, (_, i) => ({i, s: 'y'.repeat(100)}))); return 1; }",
        )
        .await;
    assert!(o.console.iter().map(String::len).sum::<usize>() <= 2048 + 3, "{:?}", o.console);
    assert_eq!(o.console_dropped, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_new_globals_are_frozen_and_fresh_in_every_call() {
    let w = Walls::new(limits()).await;
    let v = w
        .value("async () => ['URL', 'URLSearchParams', 'TextEncoder', 'TextDecoder', 'crypto', 'structuredClone', 'atob', 'btoa', 'setTimeout', 'setInterval', 'clearTimeout', 'clearInterval'].filter(n => !(Object.isFrozen(globalThis[n]) && (!globalThis[n].prototype || Object.isFrozen(globalThis[n].prototype))))")
        .await;
    assert_eq!(v, json!([]));
    // What one call does to them is gone in the next (each has a fresh runtime).
    let _ = w
        .run("async () => { globalThis.URL = function () { return 'PWNED'; }; crypto.randomUUID = () => 'PWNED'; try { Object.defineProperty(TextEncoder.prototype, 'encode', {value: () => 'PWNED'}); } catch (e) {} String.prototype.toWellFormed = () => 'PWNED'; setInterval(() => { Object.prototype.late = 'PWNED'; }, 1); return 1; }")
        .await;
    let v = w
        .value("async () => { await new Promise(r => setTimeout(r, 20)); return [new URL('https://h.test/x').href, /^[0-9a-f-]{36}$/.test(crypto.randomUUID()), new TextEncoder().encode('a').length, String(({}).late)]; }")
        .await;
    assert_eq!(v, json!(["https://h.test/x", true, 1, "undefined"]));
    // They are built on first touch; a name the code deleted or assigned
    // before that stays as the code made it.
    let v = w
        .value("async () => { const before = Object.getOwnPropertyDescriptor(globalThis, 'URL'); delete globalThis.URL; const p = new URLSearchParams('a=1'); TextEncoder = 5; const after = Object.getOwnPropertyDescriptor(globalThis, 'URLSearchParams'); return [typeof before.get, typeof URL, p.get('a'), TextEncoder, typeof TextDecoder, after.writable, after.enumerable, Object.keys(globalThis).includes('crypto')]; }")
        .await;
    assert_eq!(v, json!(["function", "undefined", "1", 5, "function", true, false, false]));
    // A script may still shadow a global for itself.
    let v = w.value("const URL = (s) => 'mine:' + s;\nreturn URL('x');").await;
    assert_eq!(v, json!("mine:x"));
}
