"""The web-standard globals of the sandbox in real use: `execute` code that
builds URLs and queries with URL/URLSearchParams, encodes with TextEncoder
and btoa/atob, and paces and races its requests with setTimeout, against a
real httpbin — plus the timer bound, named in the error."""

from __future__ import annotations

import json
import time

import pytest

from conftest import SPECS, mcp_session, text_of, write_config

pytestmark = pytest.mark.anyio

HTTPBIN_SPEC = str(SPECS / "httpbin-0.10.4.spec.json")


def config(tmp_path, httpbin):
    return write_config(tmp_path, f"""
[limits]
timeout_secs = 4
[[api]]
name = "httpbin"
spec = "{HTTPBIN_SPEC}"
base_url = "{httpbin}"
""")


async def test_execute_uses_url_encoding_and_timers_against_httpbin(tmp_path, httpbin_peer):
    async with mcp_session(["--config", str(config(tmp_path, httpbin_peer))]) as s:
        # A query built with URL/URLSearchParams reaches httpbin as sent.
        r = await s.call_tool("execute", {"code": """async () => {
            const u = new URL('/anything/search', 'https://placeholder.invalid');
            u.searchParams.set('q', 'café & crème');
            u.searchParams.append('tag', 'a b');
            u.searchParams.append('tag', '100%');
            const res = await httpbin.request('GET ' + u.pathname + u.search);
            const back = new URL(res.data.url);
            return {sent: u.search, args: res.data.args, path: back.pathname, tags: back.searchParams.getAll('tag')};
        }"""})
        assert not r.is_error, text_of(r)
        out = json.loads(r.content[0].text)
        assert out["sent"] == "?q=caf%C3%A9+%26+cr%C3%A8me&tag=a+b&tag=100%25"
        assert out["args"] == {"q": "café & crème", "tag": ["a b", "100%"]}
        assert out["path"] == "/anything/search" and out["tags"] == ["a b", "100%"]

        # UTF-8 bytes through base64: btoa over TextEncoder's bytes, decoded by
        # httpbin (/base64/{value} takes base64url), and back through atob.
        r = await s.call_tool("execute", {"code": """async () => {
            const text = 'héllo wörld ✓';
            const b64 = btoa(String.fromCharCode(...new TextEncoder().encode(text)));
            const url = b64.replace(/\\+/g, '-').replace(/\\//g, '_');
            const res = await httpbin.request('GET /base64/{value}', {value: url});
            const roundTrip = new TextDecoder().decode(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)));
            return {decoded: res.data, roundTrip, same: res.data === text};
        }"""})
        assert not r.is_error, text_of(r)
        out = json.loads(r.content[0].text)
        assert out == {"decoded": "héllo wörld ✓", "roundTrip": "héllo wörld ✓", "same": True}

        # setTimeout paces requests (a back-off) and races a slow one.
        t0 = time.monotonic()
        r = await s.call_tool("execute", {"code": """async () => {
            const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
            const t0 = Date.now();
            const statuses = [];
            for (const code of [503, 200]) {
                try { statuses.push((await httpbin.request('GET /status/{code}', {code})).status); }
                catch (e) { statuses.push(e.status); await sleep(200); }
            }
            const paced = Date.now() - t0;
            const race = await Promise.race([
                httpbin.request('GET /delay/{n}', {n: 10}).then(() => 'response'),
                sleep(300).then(() => 'gave up'),
            ]);
            return {statuses, paced: paced >= 200, race, id: crypto.randomUUID().length};
        }"""})
        assert not r.is_error, text_of(r)
        assert json.loads(r.content[0].text) == {"statuses": [503, 200], "paced": True, "race": "gave up", "id": 36}
        # The call ended when its promise settled, not when the slow (10 s) request did.
        assert time.monotonic() - t0 < 10, time.monotonic() - t0

        # A timer that could only fire past the time limit ends the call at
        # once, with an error naming the limit and the setting.
        t0 = time.monotonic()
        r = await s.call_tool("execute", {"code": "async () => { await new Promise((r) => setTimeout(r, 60000)); return 'woke'; }"})
        assert r.is_error
        text = text_of(r)
        assert "setTimeout(…, 60000 ms) would fire after this call's time limit of 4 s" in text, text
        assert "[limits] timeout_secs" in text, text
        # At once: well before the 4 s limit would have ended it.
        assert time.monotonic() - t0 < 4, time.monotonic() - t0

        # search has them too.
        r = await s.call_tool("search", {"code": "async () => [new URL(spec.servers?.[0]?.url ?? '/', 'https://h.test/').protocol, new URLSearchParams({a: 'b c'}).toString(), structuredClone({x: [1]}).x[0]]"})
        assert not r.is_error, text_of(r)
        assert json.loads(r.content[0].text)[1:] == ["a=b+c", 1]

        # What is still missing gets a hint, not a bare ReferenceError.
        r = await s.call_tool("execute", {"code": "async () => setImmediate(() => 1)"})
        assert r.is_error and "setTimeout(fn, 0)" in text_of(r), text_of(r)
