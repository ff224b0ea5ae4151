"""MCP 2026-07-28 next to the handshake revisions, over stdio and Streamable
HTTP (sessions and stateless), driven by the official Python SDK (2.x, which
speaks both eras: `initialize` or `server/discover`) and by raw requests:
negotiation, the capabilities declared and the methods answered, cache hints
and the order of tools/list, header validation."""

from __future__ import annotations

import contextlib
import json

import pytest
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError

from conftest import BINARY, ROOT
from test_http_helpers import INIT, codemode_http, jsonrpc_of, post_mcp, text_of

pytestmark = pytest.mark.anyio

BOOKSHELF = ROOT / "examples" / "bookshelf.yaml"
SEARCH = "async () => Object.keys(spec.paths)"
EXECUTE = 'async () => (await bookshelf.request("GET /books")).data.books.map(b => b.title)'
VERSIONS = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28"]
MODERN = "2026-07-28"
META = {
    "io.modelcontextprotocol/protocolVersion": MODERN,
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
}


@contextlib.asynccontextmanager
async def stdio(era: str):
    params = StdioServerParameters(command=str(BINARY), args=["serve", "--spec", str(BOOKSHELF), "--mock"],
                                   env={"CODEMODE_LOG": "warn"})
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as s:
            await (s.discover() if era == "discover" else s.initialize())
            yield s


@contextlib.asynccontextmanager
async def http(url: str, era: str):
    async with create_mcp_http_client() as client:
        async with streamable_http_client(url, http_client=client) as (read, write):
            async with ClientSession(read, write) as s:
                await (s.discover() if era == "discover" else s.initialize())
                yield s


async def check_session(s: ClientSession, era: str):
    if era == "discover":
        d = s.discover_result
        assert d.supported_versions == VERSIONS
        caps = d.capabilities.model_dump(exclude_none=True)
    else:
        assert s.initialize_result.protocol_version == "2025-11-25"
        caps = s.initialize_result.capabilities.model_dump(exclude_none=True)
    # Exactly what codemode serves: tools (no logging, prompts, resources, completions).
    assert set(caps) - {"experimental", "extensions"} == {"tools"}, caps
    listed = await s.list_tools()
    assert [t.name for t in listed.tools] == ["search", "execute"], "the order is fixed"
    if era == "discover":
        assert listed.ttl_ms == 600_000 and listed.cache_scope == "public", listed
    again = await s.list_tools()
    assert [t.model_dump() for t in again.tools] == [t.model_dump() for t in listed.tools]
    r = await s.call_tool("search", {"code": SEARCH})
    assert not r.is_error and "/books" in json.loads(text_of(r))
    r = await s.call_tool("execute", {"code": EXECUTE})
    assert not r.is_error and isinstance(json.loads(text_of(r)), list), text_of(r)
    # Undeclared capabilities: the spec's "method not found".
    for call in (s.list_prompts, s.list_resources, s.list_resource_templates):
        with pytest.raises(MCPError) as e:
            await call()
        assert e.value.error.code == -32601, e.value.error


@pytest.mark.parametrize("era", ["discover", "initialize"])
async def test_python_sdk_over_stdio(era):
    async with stdio(era) as s:
        await check_session(s, era)


@pytest.mark.parametrize("era", ["discover", "initialize"])
@pytest.mark.parametrize("mode", ["sessions", "stateless"])
async def test_python_sdk_over_http(tmp_path, era, mode):
    server = {"stateless": True} if mode == "stateless" else {}
    with codemode_http(tmp_path, server=server) as srv:
        async with http(srv.url, era) as s:
            await check_session(s, era)


def modern(method: str, id: int = 1, params: dict | None = None, name: str | None = None):
    body = {"jsonrpc": "2.0", "id": id, "method": method, "params": {**(params or {}), "_meta": dict(META)}}
    headers = {"MCP-Protocol-Version": MODERN, "Mcp-Method": method}
    if name:
        headers["Mcp-Name"] = name
    return body, headers


@pytest.mark.parametrize("mode", ["sessions", "stateless"])
async def test_raw_2026_requests_over_http(tmp_path, mode):
    server = {"stateless": True, "json_response": True} if mode == "stateless" else {}
    with codemode_http(tmp_path, server=server) as srv:
        status, headers, raw = post_mcp(srv, *modern("server/discover"))
        assert status == 200, raw
        d = jsonrpc_of(raw)["result"]
        assert d["supportedVersions"] == VERSIONS
        # tools, and the tasks extension (tests/integration/test_tasks.py).
        assert d["capabilities"] == {"tools": {}, "extensions": {"io.modelcontextprotocol/tasks": {}}}, d["capabilities"]
        assert "mcp-session-id" not in headers, "2026-07-28 has no sessions"

        status, _, raw = post_mcp(srv, *modern("tools/list", 2))
        r = jsonrpc_of(raw)["result"]
        assert status == 200 and [t["name"] for t in r["tools"]] == ["search", "execute"]
        assert r["ttlMs"] == 600_000 and r["cacheScope"] == "public" and r["resultType"] == "complete"

        body, headers = modern("tools/call", 3, {"name": "execute", "arguments": {"code": EXECUTE}}, name="execute")
        status, _, raw = post_mcp(srv, body, headers)
        r = jsonrpc_of(raw)["result"]
        assert status == 200 and not r.get("isError"), r
        assert r["resultType"] == "complete"

        # Methods codemode does not serve (and ones 2026-07-28 removed).
        for i, method in enumerate(["prompts/list", "resources/list", "completion/complete", "logging/setLevel",
                                    "ping", "no/such"]):
            params = {"ref": {"type": "ref/prompt", "name": "x"}, "argument": {"name": "a", "value": ""}} \
                if method == "completion/complete" else {"level": "info"} if method == "logging/setLevel" else {}
            status, _, raw = post_mcp(srv, *modern(method, 10 + i, params))
            e = jsonrpc_of(raw)
            assert e["id"] == 10 + i and e["error"]["code"] == -32601, (method, status, e)

        # Headers must match the body (SEP-2243): a mismatch is refused before dispatch.
        body, headers = modern("tools/list", 30)
        status, _, raw = post_mcp(srv, body, {**headers, "Mcp-Method": "tools/call"})
        assert status == 400 and jsonrpc_of(raw)["error"]["code"] == -32020, raw
        body, headers = modern("tools/call", 31, {"name": "search", "arguments": {"code": SEARCH}}, name="execute")
        status, _, raw = post_mcp(srv, body, headers)
        assert status == 400 and jsonrpc_of(raw)["error"]["code"] == -32020, raw
        # Per-request metadata is required.
        body, headers = modern("tools/list", 32)
        del body["params"]["_meta"]
        status, _, raw = post_mcp(srv, body, headers)
        assert status == 400 and jsonrpc_of(raw)["error"]["code"] == -32602, raw
        # A version the server does not speak: the spec's error, with what it does.
        body, headers = modern("tools/list", 33)
        body["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] = "2099-01-01"
        status, _, raw = post_mcp(srv, body, {**headers, "MCP-Protocol-Version": "2099-01-01"})
        e = jsonrpc_of(raw)["error"]
        assert status == 400 and e["code"] == -32022 and e["data"]["supported"] == VERSIONS, raw

        # The handshake revisions still negotiate on the same endpoint.
        for version in VERSIONS[:-1]:
            body = {**INIT, "params": {**INIT["params"], "protocolVersion": version}}
            status, _, raw = post_mcp(srv, body)
            assert status == 200 and jsonrpc_of(raw)["result"]["protocolVersion"] == version, raw
