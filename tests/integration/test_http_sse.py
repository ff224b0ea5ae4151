"""The release binary over the legacy HTTP+SSE transport (MCP 2024-11-05,
`GET /sse` + `POST /messages?sessionId=`), driven by the official Python
SDK's `sse_client` and the MCP Inspector CLI's SSE transport: list, search,
execute; with and without a bearer token; sessions bound to their
principal; graceful shutdown ends open streams. And the portal's SSE
client: `[[mcp]] transport = "sse"` to server-everything in SSE mode, and to
another codemode's `/sse` with a bearer token."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request

import anyio
import pytest

from mcp import ClientSession
from mcp.client.sse import sse_client

from test_http_helpers import BOOKSHELF_API, ROOT, codemode_http, free_port, get, http_session, text_of

EVERYTHING = ROOT / ".peers" / "portal-node" / "node_modules" / "@modelcontextprotocol" / "server-everything" / "dist" / "index.js"

pytestmark = pytest.mark.anyio

SEARCH = "async () => Object.keys(spec.paths)"
EXECUTE = 'async () => (await bookshelf.request("GET /books")).data.books.map(b => b.title)'

OPS_TOKEN = "ops-token-from-env-0123456789"
CI_TOKEN = "ci-token-from-env-0123456789"
TOKENS = """
[[auth.tokens]]
name = "ops"
token_env = "OPS_TOKEN"
scopes = ["*"]

[[auth.tokens]]
name = "ci"
token_env = "CI_TOKEN"
scopes = ["bookshelf:read"]
"""
TOKEN_ENV = {"OPS_TOKEN": OPS_TOKEN, "CI_TOKEN": CI_TOKEN}


def post(url: str, body: dict, token: str | None = None) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


async def _list_search_execute(url: str, token: str | None = None, on_session=None) -> str:
    """Lists, searches and executes over one SSE session; its protocol version."""
    headers = {"Authorization": f"Bearer {token}"} if token else None
    async with sse_client(url, headers=headers, on_session_created=on_session) as (read, write):
        async with ClientSession(read, write) as s:
            init = await s.initialize()
            tools = [t.name for t in (await s.list_tools()).tools]
            assert tools == ["search", "execute"]
            r = await s.call_tool("search", {"code": SEARCH})
            assert not r.is_error, text_of(r)
            assert "/books" in json.loads(text_of(r))
            r = await s.call_tool("execute", {"code": EXECUTE})
            assert not r.is_error, text_of(r)
            assert isinstance(json.loads(text_of(r)), list) and json.loads(text_of(r))
            return str(init.protocol_version)


async def test_python_sdk_over_sse(tmp_path):
    with codemode_http(tmp_path) as srv:
        version = await _list_search_execute(srv.base + "/sse")
        assert version, version
        assert srv.wait_log("SSE session opened") and srv.wait_log("SSE session closed"), srv.log()
        # Both transports at once, on one listener.
        status, _, _ = get(srv.base + "/readyz")
        assert status == 200


async def test_python_sdk_over_sse_with_bearer_tokens(tmp_path):
    with codemode_http(tmp_path, auth=TOKENS, env=TOKEN_ENV) as srv:
        status, headers, body = get(srv.base + "/sse", {"Accept": "text/event-stream"})
        assert status == 401, body
        assert headers.get("www-authenticate", headers.get("WWW-Authenticate")) == 'Bearer realm="codemode"'
        status, _, _ = get(srv.base + "/sse", {"Accept": "text/event-stream", "Authorization": "Bearer nope"})
        assert status == 401

        sessions: list[str] = []
        headers = {"Authorization": f"Bearer {OPS_TOKEN}"}
        async with sse_client(srv.base + "/sse", headers=headers, on_session_created=sessions.append) as (read, write):
            async with ClientSession(read, write) as s:
                await s.initialize()
                assert not (await s.call_tool("search", {"code": SEARCH})).is_error
                endpoint = f"{srv.base}/messages?sessionId={sessions[0]}"
                ping = {"jsonrpc": "2.0", "id": 99, "method": "ping"}
                # Someone else's credential, or none: the session is not theirs.
                assert (await anyio.to_thread.run_sync(lambda: post(endpoint, ping, CI_TOKEN)))[0] == 404
                assert (await anyio.to_thread.run_sync(lambda: post(endpoint, ping)))[0] == 401
                # The owner's session still works.
                r = await s.call_tool("execute", {"code": EXECUTE})
                assert not r.is_error, text_of(r)
        assert srv.wait_log("tool call answered"), srv.log()
        answered = [l for l in srv.log().splitlines() if "tool call answered" in l]
        assert answered and all("principal=ops" in l for l in answered), answered
        # The other principal, on a session of its own.
        assert await _list_search_execute(srv.base + "/sse", CI_TOKEN)
        # A session that has ended is not found.
        status, body = post(f"{srv.base}/messages?sessionId={sessions[0]}", {"jsonrpc": "2.0", "method": "x"}, OPS_TOKEN)
        assert status == 404 and b"GET /sse" in body, body


async def test_messages_without_or_with_an_unknown_session(tmp_path):
    with codemode_http(tmp_path) as srv:
        status, body = post(srv.base + "/messages", {"jsonrpc": "2.0", "id": 1, "method": "ping"})
        assert status == 400 and b"sessionId" in body, body
        status, body = post(srv.base + "/messages?sessionId=nope", {"jsonrpc": "2.0", "id": 1, "method": "ping"})
        assert status == 404 and b"no such SSE session" in body, body


async def test_legacy_sse_off(tmp_path):
    with codemode_http(tmp_path, server={"legacy_sse": False}) as srv:
        status, _, body = get(srv.base + "/sse")
        assert status == 404 and body == b"Not Found: the MCP endpoint is /mcp", body


async def test_sigterm_ends_open_sse_streams(tmp_path):
    # An open stream is no running call: the server ends it at once instead of
    # waiting out the grace period (60 s here), which bounds the waits below.
    grace = 60
    with codemode_http(tmp_path, server={"shutdown_grace_secs": grace}) as srv:
        host, port = srv.base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=grace) as sock:
            sock.sendall(f"GET /sse HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: text/event-stream\r\n\r\n".encode())
            head = b""
            while b"event: endpoint" not in head:
                chunk = sock.recv(4096)
                assert chunk, head
                head += chunk
            assert head.startswith(b"HTTP/1.1 200"), head
            t = time.monotonic()
            srv.proc.send_signal(15)
            # The stream ends (EOF), and the server exits, promptly.
            while sock.recv(4096):
                assert time.monotonic() - t < grace, "the stream stayed open"
            assert srv.proc.wait(timeout=grace) == 0
            assert time.monotonic() - t < grace, time.monotonic() - t


# The Inspector CLI over SSE: test_http.py::test_inspector_cli[sse].

def wait_port(port: int, within: float = 120) -> None:
    deadline = time.monotonic() + within
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert time.monotonic() < deadline, f"nothing listens on {port}"
            time.sleep(0.05)


@pytest.mark.skipif(not EVERYTHING.exists(), reason="run crates/portal/tests/peers-setup.sh")
async def test_portal_upstream_over_sse_server_everything(tmp_path):
    port = free_port()
    node = subprocess.Popen(["node", str(EVERYTHING), "sse"], env={"PATH": "/usr/bin:/bin:/usr/local/bin", "PORT": str(port)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        mcp = f"""
[[mcp]]
name = "old"
url = "http://127.0.0.1:{port}/sse"
transport = "sse"
"""
        with codemode_http(tmp_path, apis=BOOKSHELF_API + mcp) as srv:
            async with http_session(srv.url) as s:
                r = await s.call_tool("execute", {"code": 'async () => codemode.old_echo({message: "over sse"})'})
                assert not r.is_error, text_of(r)
                assert "Echo: over sse" in text_of(r)
                r = await s.call_tool("search", {"code": "async () => codemode.tools().filter(t => t.server === 'old').length"})
                assert not r.is_error and int(text_of(r)) == 13, text_of(r)
    finally:
        node.kill()
        node.wait()


async def test_portal_upstream_over_sse_to_codemode_with_a_token(tmp_path):
    inner_dir = tmp_path / "inner"
    inner_dir.mkdir()
    with codemode_http(inner_dir, auth=TOKENS, env=TOKEN_ENV) as inner:
        mcp = f"""
[[mcp]]
name = "inner"
url = "{inner.base}/sse"
transport = "sse"
headers_env = {{ Authorization = "INNER_AUTH" }}
"""
        with codemode_http(tmp_path, apis=BOOKSHELF_API + mcp, env={"INNER_AUTH": f"Bearer {OPS_TOKEN}"}) as outer:
            async with http_session(outer.url) as s:
                code = f"async () => codemode.inner_execute({{code: {json.dumps(EXECUTE)}}})"
                r = await s.call_tool("execute", {"code": code})
                assert not r.is_error, text_of(r) + outer.log()
                assert "[" in text_of(r), text_of(r)
        assert inner.wait_log("SSE session opened"), inner.log()
        answered = [l for l in inner.log().splitlines() if "tool call answered" in l]
        assert answered and all("principal=ops" in l for l in answered), inner.log()
