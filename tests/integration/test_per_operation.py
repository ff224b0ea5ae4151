"""Per-operation mode (`?codemode=false`, `[tools] code_mode`): one MCP tool
per OpenAPI operation and per upstream MCP tool, on Cloudflare's spec in
rehearsal mode, against the release binary over Streamable HTTP and stdio,
driven by the official Python SDK and by raw requests. Every call passes the
same pipeline as model code: a denied operation is refused with the rule.
Also: the two tools renamed (`[tools] search_name`, `execute_name`)."""

from __future__ import annotations

import contextlib
import json
import sys
import urllib.parse
from pathlib import Path

import pytest
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from conftest import BINARY, SPECS, write_config
from test_http_helpers import codemode_http, jsonrpc_of, post_mcp, text_of

pytestmark = pytest.mark.anyio

CLOUDFLARE = SPECS / "cloudflare-2024-08-06.openapi.json"
HERE = Path(__file__).parent
STATELESS = {"stateless": True, "json_response": True}
ENV = {"CF_TOKEN": "rehearsal-token-0123456789"}


def cloudflare(extra: str = "", tools: str = "") -> str:
    return f"""{tools}
[[api]]
name = "cf"
spec = "{CLOUDFLARE}"
mock = true
allow_writes = true
auth = {{ type = "bearer", token_env = "CF_TOKEN" }}
deny = ["GET /zones/*/dns_records"]
{extra}
"""


def spec_operations(writes: bool = True) -> int:
    spec = json.loads(CLOUDFLARE.read_text())
    methods = {"get", "head", "options"} | ({"put", "post", "delete", "patch"} if writes else set())
    return sum(1 for item in spec["paths"].values() for m in item if m in methods)


def raw(srv, method: str, params: dict | None = None, query: str = "?codemode=false") -> dict:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or {}}
    status, _, payload = post_mcp(srv, body, {"MCP-Protocol-Version": "2025-06-18"}, timeout=60, query=query)
    return jsonrpc_of(payload)


def list_all(srv, query: str = "?codemode=false") -> tuple[list[dict], int]:
    tools, cursor, pages = [], None, 0
    while True:
        r = raw(srv, "tools/list", {"cursor": cursor} if cursor else {}, query)["result"]
        tools += r["tools"]
        pages += 1
        cursor = r.get("nextCursor")
        if not cursor:
            return tools, pages


def call(srv, name: str, args: dict, query: str = "?codemode=false") -> dict:
    return raw(srv, "tools/call", {"name": name, "arguments": args}, query)


async def test_every_cloudflare_operation_is_a_tool_and_calls_go_through_the_pipeline(tmp_path):
    with codemode_http(tmp_path, server=STATELESS, apis=cloudflare(), env=ENV) as srv:
        tools, pages = list_all(srv)
        names = [t["name"] for t in tools]
        assert len(tools) == spec_operations() and len(set(names)) == len(names), (len(tools), spec_operations())
        assert pages == -(-len(tools) // 200), "200 tools per page"
        assert all(n.startswith("cf_") and len(n) <= 64 for n in names)
        zones = next(t for t in tools if t["name"] == "cf_zones-get")
        assert zones["description"].startswith("GET /zones: "), zones["description"]
        assert zones["inputSchema"]["type"] == "object" and "per_page" in zones["inputSchema"]["properties"]
        assert zones["annotations"]["readOnlyHint"] is True
        create = next(t for t in tools if t["name"] == "cf_dns-records-for-a-zone-create-dns-record")
        assert create["inputSchema"]["required"][:1] == ["zone_id"] and "body" in create["inputSchema"]["properties"]
        assert create["annotations"]["readOnlyHint"] is False

        # A call runs in rehearsal mode, with the arguments in the right places.
        r = call(srv, "cf_zones-get", {"per_page": 5, "name": "example.com"})["result"]
        assert not r.get("isError"), r
        out = json.loads(text_of_raw(r))
        assert out["status"] == 200 and isinstance(out["data"]["result"], list), out
        r = call(srv, "cf_dns-records-for-a-zone-create-dns-record",
                 {"zone_id": "023e105f4ecef8ad9ca31a8372d0c353",
                  # `id` is readOnly in the spec; rehearsal mode still asks for it in requests (a known gap).
                  "body": {"id": "r1", "type": "A", "name": "www.example.com", "content": "203.0.113.42", "ttl": 3600}})["result"]
        assert not r.get("isError") and json.loads(text_of_raw(r))["status"] in (200, 201), r

        # The same rules as model code: a denied operation is refused with the rule.
        r = call(srv, "cf_dns-records-for-a-zone-list-dns-records", {"zone_id": "023e105f4ecef8ad9ca31a8372d0c353"})["result"]
        assert r.get("isError") and "PolicyError" in text_of_raw(r) and "GET /zones/*/dns_records" in text_of_raw(r), r

        # Arguments that do not fit are named; hostile values stay data.
        r = call(srv, "cf_zones-get", {"nope": 1})["result"]
        assert r.get("isError") and "`nope`" in text_of_raw(r) and "per_page" in text_of_raw(r), r
        r = call(srv, "cf_zones-0-get", {})["result"]
        assert r.get("isError") and "zone_id" in text_of_raw(r), r
        r = call(srv, "cf_zones-0-get", {"zone_id": "x/../../accounts"})["result"]
        assert r.get("isError") and "PolicyError" in text_of_raw(r), r  # one encoded segment; `..` refused
        hostile = '"); globalThis.pwned = 1; ("\u2028'
        r = call(srv, "cf_zones-get", {"name": hostile})["result"]
        assert not r.get("isError"), r
        e = call(srv, "no_such_tool", {})
        assert e["error"]["code"] == -32602 and "tools/list" in e["error"]["message"], e

        # Without the parameter, and with the portal dialect: search and execute.
        for query in ("", "?codemode=search_and_execute", "?codemode=true"):
            assert [t["name"] for t in list_all(srv, query)[0]] == ["search", "execute"], query
        e = raw(srv, "tools/list", {}, "?codemode=maybe")
        assert e["error"]["code"] == -32602 and "codemode=false" in e["error"]["message"], e
        assert "per-operation tools built tools=" in srv.log()


async def test_writes_of_a_read_only_api_are_not_listed_and_upstream_tools_are(tmp_path):
    log = tmp_path / "upstream.log"
    apis = cloudflare().replace("allow_writes = true", "allow_writes = false") + f"""
[[mcp]]
name = "slow"
command = "{sys.executable}"
args = ["{HERE / 'slow_mcp.py'}", "{log}"]
"""
    with codemode_http(tmp_path, server=STATELESS, apis=apis, env=ENV) as srv:
        tools, _ = list_all(srv)
        assert len(tools) == spec_operations(writes=False) + 1, len(tools)
        slow = tools[-1]
        assert slow["name"] == "slow_sleep" and set(slow["inputSchema"]["properties"]) == {"seconds", "tag"}, slow
        r = call(srv, "slow_sleep", {"seconds": 0, "tag": "per-op"})["result"]
        assert not r.get("isError") and json.loads(text_of_raw(r))["tag"] == "per-op", r
        assert "start per-op" in log.read_text()


async def test_the_admin_setting_decides_what_clients_may_pick(tmp_path):
    for mode, plain, asked_off, asked_on in [
        ("enforced", "code", "code", "code"),
        ("default_on", "code", "ops", "code"),
        ("opt_in", "ops", "ops", "code"),
        ("off", "ops", "ops", "ops"),
    ]:
        with codemode_http(tmp_path, server=STATELESS, apis=cloudflare(tools=f'[tools]\ncode_mode = "{mode}"\n'), env=ENV) as srv:
            got = []
            for query in ("", "?codemode=false", "?codemode=true"):
                first = raw(srv, "tools/list", {}, query)["result"]["tools"]
                got.append("code" if [t["name"] for t in first] == ["search", "execute"] else "ops")
            assert got == [plain, asked_off, asked_on], (mode, got)


@contextlib.asynccontextmanager
async def sdk_http(url: str):
    async with create_mcp_http_client() as client:
        async with streamable_http_client(url, http_client=client) as (read, write):
            async with ClientSession(read, write) as s:
                await s.initialize()
                yield s


async def test_the_python_sdk_over_http_and_stdio(tmp_path):
    with codemode_http(tmp_path, apis=cloudflare(), env=ENV) as srv:
        async with sdk_http(srv.url + "?codemode=false") as s:
            first = await s.list_tools()
            assert len(first.tools) == 200 and first.next_cursor == "200"
            r = await s.call_tool("cf_zones-get", {"per_page": 5})
            assert not r.is_error and json.loads(text_of(r))["status"] == 200, text_of(r)
    cfg = write_config(tmp_path, cloudflare(tools='[tools]\ncode_mode = "off"\n'))
    params = StdioServerParameters(command=str(BINARY), args=["serve", "--config", str(cfg)], env={"CODEMODE_LOG": "warn", **ENV})
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as s:
            init = await s.initialize()
            assert "one tool per API operation" in (init.instructions or ""), init.instructions
            listed = await s.list_tools()
            assert listed.tools[0].name.startswith("cf_")
            r = await s.call_tool("cf_zones-get", {})
            assert not r.is_error, text_of(r)


async def test_the_two_tools_can_be_renamed(tmp_path):
    tools = '[tools]\nsearch_name = "portal_codemode_search"\nexecute_name = "portal_codemode_execute"\n'
    with codemode_http(tmp_path, server=STATELESS, apis=cloudflare(tools=tools), env=ENV) as srv:
        listed = raw(srv, "tools/list", {}, "")["result"]["tools"]
        assert [t["name"] for t in listed] == ["portal_codemode_search", "portal_codemode_execute"]
        assert "`portal_codemode_execute`" in listed[0]["description"] and "`execute`" not in listed[0]["description"]
        r = raw(srv, "tools/call", {"name": "portal_codemode_search", "arguments": {"code": "async () => 1 + 1"}}, "")["result"]
        assert text_of_raw(r) == "2", r
        e = raw(srv, "tools/call", {"name": "search", "arguments": {"code": "async () => 1"}}, "")
        assert e["error"]["code"] == -32602 and "portal_codemode_search" in e["error"]["message"], e


def text_of_raw(result: dict) -> str:
    return "\n".join(c["text"] for c in result["content"] if c["type"] == "text")
