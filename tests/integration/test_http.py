"""The release binary over MCP Streamable HTTP, driven by the official Python
and TypeScript SDK clients and the MCP Inspector CLI: list, search, execute;
sessions, stateless mode, protocol versions, readiness."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import anyio
import pytest

from test_http_helpers import (
    BOOKSHELF,
    HTTP_CLIENTS,
    INIT,
    codemode_http,
    get,
    http_session,
    jsonrpc_of,
    post_mcp,
    raw_request,
    text_of,
)

pytestmark = pytest.mark.anyio

SEARCH = "async () => Object.keys(spec.paths)"
EXECUTE = 'async () => (await bookshelf.request("GET /books")).data.books.map(b => b.title)'
TS_CLIENT = Path(__file__).with_name("http_ts_client.mjs")


async def _list_search_execute(url: str, token: str | None = None):
    async with http_session(url, token) as s:
        tools = {t.name for t in (await s.list_tools()).tools}
        assert tools == {"search", "execute"}
        r = await s.call_tool("search", {"code": SEARCH})
        assert not r.is_error, text_of(r)
        assert "/books" in json.loads(text_of(r))
        r = await s.call_tool("execute", {"code": EXECUTE})
        assert not r.is_error, text_of(r)
        assert isinstance(json.loads(text_of(r)), list)


async def test_python_sdk_with_sessions(tmp_path):
    with codemode_http(tmp_path) as srv:
        await _list_search_execute(srv.url)
        # The SDK ends its session with DELETE when it closes.
        assert srv.wait_log("session closed by the client"), srv.log()
        assert "principal=anonymous" in srv.log()


async def test_python_sdk_stateless_json_and_sse(tmp_path):
    for server in ({"stateless": True, "json_response": True}, {"stateless": True}):
        with codemode_http(tmp_path, server=server) as srv:
            await _list_search_execute(srv.url)
            status, headers, body = post_mcp(srv, INIT)
            assert status == 200 and "mcp-session-id" not in headers
            want = "application/json" if server.get("json_response") else "text/event-stream"
            assert headers["content-type"].startswith(want)
            assert jsonrpc_of(body)["result"]["serverInfo"]["name"] == "codemode"


async def test_python_sdk_reinitialises_after_its_session_expires(tmp_path):
    env = {"CODEMODE_LOG": "info,rmcp::transport=debug"}
    with codemode_http(tmp_path, server={"session_idle_secs": 1}, env=env) as srv:
        async with http_session(srv.url) as s:
            assert not (await s.call_tool("search", {"code": SEARCH})).is_error
            # The server closes the idle session (rmcp's worker quits with IdleTimeout);
            # any request of ours would keep it alive, so watch the log instead.
            assert srv.wait_log("IdleTimeout"), srv.log()
            with pytest.raises(Exception, match="[Ss]ession terminated"):
                await s.call_tool("search", {"code": SEARCH})
        # What the SDK leaves to its user: a new session.
        await _list_search_execute(srv.url)


async def test_protocol_versions_the_sdks_negotiate(tmp_path):
    with codemode_http(tmp_path) as srv:
        for version in ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"]:
            body = {**INIT, "params": {**INIT["params"], "protocolVersion": version}}
            status, headers, raw = post_mcp(srv, body)
            assert status == 200, raw
            assert jsonrpc_of(raw)["result"]["protocolVersion"] == version
            sid = headers["mcp-session-id"]
            # Every later request carries the negotiated version.
            status, _, raw = post_mcp(srv, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
                                      {"Mcp-Session-Id": sid, "MCP-Protocol-Version": version})
            assert status == 200 and len(jsonrpc_of(raw)["result"]["tools"]) == 2
        # A version nobody knows: the server answers with its own.
        body = {**INIT, "params": {**INIT["params"], "protocolVersion": "1999-01-01"}}
        status, _, raw = post_mcp(srv, body)
        assert status == 200 and jsonrpc_of(raw)["result"]["protocolVersion"] >= "2025-06-18"
        # A bogus header on a session request is refused.
        status, headers, _ = post_mcp(srv, INIT)
        status, _, _ = post_mcp(srv, {"jsonrpc": "2.0", "id": 3, "method": "tools/list"},
                                {"Mcp-Session-Id": headers["mcp-session-id"], "MCP-Protocol-Version": "bogus"})
        assert status == 400


async def test_delete_ends_a_session(tmp_path):
    with codemode_http(tmp_path) as srv:
        status, headers, _ = post_mcp(srv, INIT)
        sid = headers["mcp-session-id"]
        port = srv.base.rsplit(":", 1)[1]
        status, _, _ = raw_request(srv.base, "DELETE", "/mcp", {"Host": f"127.0.0.1:{port}", "Mcp-Session-Id": sid})
        assert status in (200, 202, 204)
        status, _, _ = post_mcp(srv, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, {"Mcp-Session-Id": sid})
        assert status == 404


class SlowSpec(BaseHTTPRequestHandler):
    """Serves the bookshelf spec after a delay (to watch /readyz wait for it)."""

    delay = 2.0

    def log_message(self, *a):
        pass

    def do_GET(self):
        time.sleep(self.delay)
        body = BOOKSHELF.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "application/yaml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


async def test_healthz_at_once_readyz_only_once_every_api_has_loaded(tmp_path):
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), SlowSpec)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    spec_url = f"http://127.0.0.1:{httpd.server_address[1]}/bookshelf.yaml"
    apis = f'[[api]]\nname = "bookshelf"\nspec = "{spec_url}"\nmock = true\n'
    try:
        with codemode_http(tmp_path, apis=apis, wait_ready=False) as srv:
            assert get(srv.base + "/healthz")[0] == 200
            status, headers, _ = get(srv.base + "/readyz")
            assert status == 503
            status, headers, _ = post_mcp(srv, INIT)
            assert status == 503 and headers["retry-after"] == "1"
            deadline = time.monotonic() + 15
            while get(srv.base + "/readyz")[0] != 200:
                assert time.monotonic() < deadline, srv.log()
                time.sleep(0.1)
            await _list_search_execute(srv.url)
    finally:
        httpd.shutdown()


async def test_sigterm_lets_a_running_execute_finish(tmp_path):
    grace = 60
    with codemode_http(tmp_path, server={"shutdown_grace_secs": grace}) as srv:
        _, headers, _ = post_mcp(srv, INIT)
        sid = {"Mcp-Session-Id": headers["mcp-session-id"]}
        slow = 'async () => { const t = Date.now(); while (Date.now() - t < 1500) {} return "done"; }'
        call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "execute", "arguments": {"code": slow}}}
        result = {}
        t = threading.Thread(target=lambda: result.update(r=post_mcp(srv, call, sid, timeout=120)))
        t.start()
        srv.wait_calls_started(1)
        started = time.monotonic()
        srv.proc.send_signal(15)
        assert srv.wait_log("shutting down"), srv.log()
        # Draining: nothing new is accepted.
        with pytest.raises(OSError):
            get(srv.base + "/readyz", timeout=2)
        t.join(120)
        status, _, body = result["r"]
        assert status == 200
        assert jsonrpc_of(body)["result"]["content"][0]["text"] == "done", srv.log()
        assert srv.proc.wait(timeout=grace) == 0
        # It exits when the call is done, not when the grace period ends.
        assert time.monotonic() - started < grace
        log = srv.log()
        assert "shutting down" in log and "running_calls=1" in log and "grace period over" not in log


async def test_sigterm_cancels_an_execute_still_running_after_the_grace_period(tmp_path):
    with codemode_http(tmp_path, server={"shutdown_grace_secs": 0.5}, limits="[limits]\ntimeout_secs = 60\n") as srv:
        _, headers, _ = post_mcp(srv, INIT)
        sid = {"Mcp-Session-Id": headers["mcp-session-id"]}
        forever = "async () => { while (true) {} }"
        call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "execute", "arguments": {"code": forever}}}
        threading.Thread(target=lambda: post_mcp(srv, call, sid, timeout=120), daemon=True).start()
        srv.wait_calls_started(1)
        started = time.monotonic()
        srv.proc.send_signal(15)
        assert srv.proc.wait(timeout=120) == 0
        # Cancelled after the grace period, long before the call's 60 s limit.
        assert time.monotonic() - started < 60
        assert "grace period over: cancelling running tool calls" in srv.log()


async def test_startup_refuses_a_public_listener_without_auth(tmp_path):
    from conftest import BINARY

    from test_http_helpers import write_http_config

    cfg = write_http_config(tmp_path, 0, apis=f'[[api]]\nname = "bookshelf"\nspec = "{BOOKSHELF}"\nmock = true\n')
    cfg.write_text(cfg.read_text().replace('listen = "127.0.0.1:0"', 'listen = "0.0.0.0:0"'))
    p = subprocess.run([str(BINARY), "serve", "--config", str(cfg)], capture_output=True, text=True, timeout=30)
    assert p.returncode == 2
    assert "auth: listening on 0.0.0.0:0, which is not loopback, needs inbound authentication" in p.stderr
    assert "server.allowed_hosts" in p.stderr
    # The same with --listen on the command line.
    cfg2 = write_http_config(tmp_path, 1, apis=f'[[api]]\nname = "bookshelf"\nspec = "{BOOKSHELF}"\nmock = true\n')
    p = subprocess.run([str(BINARY), "serve", "--config", str(cfg2), "--listen", "0.0.0.0:0"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and "needs inbound authentication" in p.stderr


@pytest.mark.skipif(not (HTTP_CLIENTS / "@modelcontextprotocol" / "sdk").exists(), reason="run tests/conformance/setup.sh")
async def test_typescript_sdk_client_and_session_resumption(tmp_path):
    with codemode_http(tmp_path) as srv:
        p = await anyio.to_thread.run_sync(lambda: subprocess.run(
            ["node", str(TS_CLIENT), srv.url],
            capture_output=True, text=True, timeout=60,
            env={"PATH": os.environ["PATH"], "MCP_SDK": str(HTTP_CLIENTS / "@modelcontextprotocol" / "sdk")},
        ))
        assert p.returncode == 0, p.stdout + p.stderr + srv.log()
        out = json.loads(p.stdout.strip().splitlines()[-1])
        assert out["tools"] == ["search", "execute"]
        assert "/books" in out["search"]
        assert out["execute"].startswith("[")
        assert out["resumed"] is True, out  # a new transport with the old session id, no initialize
        assert out["after_terminate"].startswith("error"), out
        assert out["reinitialised"] is True


@pytest.mark.skipif(not (HTTP_CLIENTS / ".bin" / "mcp-inspector").exists(), reason="run tests/conformance/setup.sh")
@pytest.mark.parametrize("transport", ["http", "sse"])
async def test_inspector_cli(tmp_path, transport):
    """The Inspector CLI over Streamable HTTP (`/mcp`) and the legacy HTTP+SSE transport (`/sse`)."""
    inspector = str(HTTP_CLIENTS / ".bin" / "mcp-inspector")
    with codemode_http(tmp_path) as srv:
        target = srv.url if transport == "http" else srv.base + "/sse"

        def run(*args):
            return subprocess.run([inspector, "--cli", target, "--transport", transport, *args],
                                  capture_output=True, text=True, timeout=90)
        p = await anyio.to_thread.run_sync(lambda: run("--method", "tools/list"))
        assert p.returncode == 0, p.stdout + p.stderr
        assert [t["name"] for t in json.loads(p.stdout)["tools"]] == ["search", "execute"]
        p = await anyio.to_thread.run_sync(lambda: run("--method", "tools/call", "--tool-name", "search", "--tool-arg", f"code={SEARCH}"))
        assert p.returncode == 0, p.stdout + p.stderr
        assert "/books" in json.loads(p.stdout)["content"][0]["text"]
        p = await anyio.to_thread.run_sync(lambda: run("--method", "tools/call", "--tool-name", "execute", "--tool-arg", f"code={EXECUTE}"))
        assert p.returncode == 0, p.stdout + p.stderr
        r = json.loads(p.stdout)
        assert r["isError"] is False and json.loads(r["content"][0]["text"])
