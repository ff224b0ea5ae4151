"""`execute` against real HTTP APIs on loopback: Kinto, httpbin and Prism."""

from __future__ import annotations

import http.server
import json
import threading

import pytest

from conftest import SPECS, mcp_session, text_of, write_config

pytestmark = pytest.mark.anyio

KINTO_SPEC = str(SPECS / "kinto-26.5.0.swagger.json")
HTTPBIN_SPEC = str(SPECS / "httpbin-0.10.4.spec.json")
CLOUDFLARE = str(SPECS / "cloudflare-2024-08-06.openapi.json")
CANARY = "canary-7f3a9c2e-token-DO-NOT-LEAK"


def kinto_config(tmp_path, kinto, allow_writes):
    return write_config(tmp_path, f"""
[[api]]
name = "kinto"
spec = "{KINTO_SPEC}"
base_url = "{kinto.url}"
allow_writes = {str(allow_writes).lower()}
auth = {{ type = "basic", user = "{kinto.user}", password_env = "KINTO_PASSWORD" }}
""")


async def test_kinto_crud_with_basic_auth(tmp_path, kinto_peer):
    cfg = kinto_config(tmp_path, kinto_peer, True)
    async with mcp_session(["--config", str(cfg)], env={"KINTO_PASSWORD": kinto_peer.password}) as s:
        r = await s.call_tool("execute", {"code": """async () => {
            const b = await kinto.request({method: 'POST', path: '/buckets', body: {data: {id: 'cm-bucket'}}});
            const c = await kinto.request('POST /buckets/{bid}/collections', {bid: 'cm-bucket', data: {id: 'notes'}});
            const rec = await api.request({method: 'POST', path: '/buckets/cm-bucket/collections/notes/records', body: {data: {title: 'hello from codemode'}}});
            const back = await api.request('GET /buckets/{bid}/collections/{cid}/records/{id}', {bid: 'cm-bucket', cid: 'notes', id: rec.data.data.id});
            return {statuses: [b.status, c.status, rec.status, back.status], title: back.data.data.title};
        }"""})
        assert not r.is_error, text_of(r)
        out = json.loads(r.content[0].text)
        assert out == {"statuses": [201, 201, 201, 200], "title": "hello from codemode"}
        # The password never reaches the sandbox, results or logs.
        assert kinto_peer.password not in text_of(r)


async def test_kinto_writes_refused_unless_allowed(tmp_path, kinto_peer):
    cfg = kinto_config(tmp_path, kinto_peer, False)
    async with mcp_session(["--config", str(cfg)], env={"KINTO_PASSWORD": kinto_peer.password}) as s:
        r = await s.call_tool("execute", {"code": "async () => kinto.request({method: 'POST', path: '/buckets', body: {data: {id: 'nope'}}})"})
        assert r.is_error
        assert "allow_writes" in text_of(r) and "PolicyError" in text_of(r)
        r = await s.call_tool("execute", {"code": "async () => (await kinto.request('GET /buckets')).status"})
        assert not r.is_error and r.content[0].text == "200"


async def test_httpbin_headers_credentials_errors_and_timeouts(tmp_path, httpbin_peer):
    cfg = write_config(tmp_path, f"""
[limits]
timeout_secs = 3
[[api]]
name = "httpbin"
spec = "{HTTPBIN_SPEC}"
base_url = "{httpbin_peer}"
headers = {{ "X-Static" = "from-config" }}
auth = {{ type = "bearer", token_env = "HTTPBIN_TOKEN" }}
""")
    errlog = open(tmp_path / "stderr.log", "w+")
    async with mcp_session(["--config", str(cfg)], env={"HTTPBIN_TOKEN": CANARY}, errlog=errlog) as s:
        r = await s.call_tool("execute", {"code": "async () => (await api.request({path: '/headers', headers: {'X-Trace': 'abc'}})).data.headers"})
        assert not r.is_error, text_of(r)
        headers = json.loads(r.content[0].text)
        assert headers["X-Trace"] == "abc"
        assert headers["X-Static"] == "from-config"
        # httpbin echoes the Authorization it received: it was sent, and scrubbed on the way back.
        assert headers["Authorization"] == "Bearer [REDACTED]"

        r = await s.call_tool("execute", {"code": "async () => (await api.request('GET /bearer')).data"})
        assert not r.is_error, text_of(r)
        assert json.loads(r.content[0].text)["authenticated"] is True

        # The code can neither set credentials nor leave the API.
        for code, needle in [
            ("api.request({path: '/headers', headers: {Authorization: 'Bearer mine'}})", "cannot be set"),
            ("api.request({path: '/headers', headers: {'X-A': 'a\\r\\nX-Injected: 1'}})", "CR, LF"),
            ("api.request({path: 'http://example.com/'})", "refused"),
            ("api.request({path: '//example.com/x'})", "refused"),
            ("api.request({path: '/anything/%2e%2e/%2e%2e/etc'})", "refused"),
        ]:
            r = await s.call_tool("execute", {"code": f"async () => {code}"})
            assert r.is_error and needle in text_of(r), (code, text_of(r))

        # Error statuses reject with catchable errors carrying the status.
        r = await s.call_tool("execute", {"code": """async () => {
            try { await api.request('GET /status/{code}', {code: 418}); } catch (e) { return [e.name, e.status, e.method, e.path]; }
        }"""})
        assert json.loads(r.content[0].text) == ["UpstreamError", 418, "GET", "/status/418"]
        r = await s.call_tool("execute", {"code": "async () => api.request('GET /status/403')"})
        assert r.is_error and "retrying will not help" in text_of(r) and "$HTTPBIN_TOKEN" in text_of(r)

        # A delay beyond the call's time limit ends the call at the limit.
        r = await s.call_tool("execute", {"code": "async () => api.request('GET /delay/{n}', {n: 8})"})
        assert r.is_error and "time limit" in text_of(r)

    errlog.seek(0)
    logs = errlog.read()
    assert "upstream request" in logs
    assert CANARY not in logs


async def test_prism_cloudflare_requires_the_bearer_token(tmp_path, prism_cloudflare):
    without = write_config(tmp_path, f"""
[[api]]
name = "cloudflare"
spec = "{CLOUDFLARE}"
base_url = "{prism_cloudflare}"
""")
    async with mcp_session(["--config", str(without)]) as s:
        r = await s.call_tool("execute", {"code": "async () => cloudflare.request('GET /zones')"})
        assert r.is_error
        assert "401" in text_of(r) and "No credential is configured" in text_of(r)
    async with mcp_session(["--spec", CLOUDFLARE, "--base-url", prism_cloudflare, "--bearer-env", "CF_TOKEN"], env={"CF_TOKEN": CANARY}) as s:
        r = await s.call_tool("execute", {"code": """async () => {
            const r = await cloudflare.request('GET /zones', {per_page: 5});
            return {status: r.status, success: r.data.success, isArray: Array.isArray(r.data.result)};
        }"""})
        assert not r.is_error, text_of(r)
        assert json.loads(r.content[0].text) == {"status": 200, "success": True, "isArray": True}


class _Flaky(http.server.BaseHTTPRequestHandler):
    hits = 0

    def do_GET(self):
        type(self).hits += 1
        if type(self).hits < 3:
            self.send_response(503)
            self.send_header("Retry-After", "1")
            self.end_headers()
            self.wfile.write(b"busy")
        else:
            body = json.dumps({"ok": True, "hits": type(self).hits}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def log_message(self, *args):
        pass


async def test_503_with_retry_after_is_retried(tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        async with mcp_session(["--spec", HTTPBIN_SPEC, "--base-url", base]) as s:
            r = await s.call_tool("execute", {"code": "async () => (await api.request('GET /get')).data"})
            assert not r.is_error, text_of(r)
            assert json.loads(r.content[0].text) == {"ok": True, "hits": 3}
    finally:
        server.shutdown()


async def test_spec_from_url_sizes_and_bodies(tmp_path, httpbin_peer):
    # The spec itself is fetched over HTTP (httpbin serves its own at /spec.json).
    cfg = write_config(tmp_path, f"""
[limits]
max_response_kib = 8
max_request_kib = 1
[[api]]
name = "httpbin"
spec = "{httpbin_peer}/spec.json"
base_url = "{httpbin_peer}"
allow_writes = true
""")
    async with mcp_session(["--config", str(cfg)]) as s:
        r = await s.call_tool("search", {"code": "async () => spec.paths['/anything'] !== undefined"})
        assert not r.is_error and r.content[0].text == "true", text_of(r)
        # Non-JSON bodies come back as text.
        r = await s.call_tool("execute", {"code": "async () => { const r = await api.request('GET /html'); return [typeof r.data, r.data.includes('Herman Melville'), r.headers['content-type']]; }"})
        assert json.loads(r.content[0].text) == ["string", True, "text/html; charset=utf-8"]
        # Response and request bodies over their limits are refused with the limit named.
        r = await s.call_tool("execute", {"code": "async () => api.request('GET /bytes/{n}', {n: 20000})"})
        assert r.is_error and "larger than the limit of 8192 bytes" in text_of(r)
        r = await s.call_tool("execute", {"code": "async () => api.request({method: 'POST', path: '/post', body: {blob: 'x'.repeat(5000)}})"})
        assert r.is_error and "larger than the limit of 1024 bytes" in text_of(r)
        # 5xx rejects as a catchable error marked retryable.
        r = await s.call_tool("execute", {"code": "async () => { try { await api.request('GET /status/500') } catch (e) { return [e.status, e.retryable] } }"})
        assert json.loads(r.content[0].text) == [500, True]
        # JSON bodies are sent as JSON.
        r = await s.call_tool("execute", {"code": "async () => (await api.request('POST /post', {name: 'n', tags: ['a']})).data.json"})
        assert json.loads(r.content[0].text) == {"name": "n", "tags": ["a"]}


async def test_a_refused_connection_is_a_catchable_error():
    async with mcp_session(["--spec", HTTPBIN_SPEC, "--base-url", "http://127.0.0.1:9"]) as s:
        r = await s.call_tool("execute", {"code": "async () => { try { await api.request('GET /get') } catch (e) { return [e.name, e.message.includes('could not connect')] } }"})
        assert json.loads(r.content[0].text) == ["UpstreamError", True]
