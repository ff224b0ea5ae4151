"""The release binary over stdio, driven by the official Python MCP SDK client."""

from __future__ import annotations

import json

import anyio
import pytest

from conftest import SPECS, mcp_session, text_of, write_config

pytestmark = pytest.mark.anyio

CLOUDFLARE = str(SPECS / "cloudflare-2024-08-06.openapi.json")


async def test_lists_two_annotated_tools_and_searches_cloudflare():
    async with mcp_session(["--spec", CLOUDFLARE]) as s:
        tools = {t.name: t for t in (await s.list_tools()).tools}
        assert set(tools) == {"search", "execute"}
        assert tools["search"].title and tools["execute"].title
        assert tools["search"].annotations.read_only_hint is True
        assert tools["execute"].annotations.open_world_hint is True
        # read-only API: execute is not destructive
        assert tools["execute"].annotations.destructive_hint is False
        assert tools["search"].input_schema["required"] == ["code"]
        assert "workers" in tools["search"].description

        # Cloudflare's own blog example: WAF / ruleset operations under /zones/.
        r = await s.call_tool("search", {"code": """async () => {
            const out = [];
            for (const [path, ops] of Object.entries(spec.paths)) {
              if (!path.startsWith('/zones/') || !(path.includes('waf') || path.includes('rulesets'))) continue;
              for (const [method, op] of Object.entries(ops)) out.push({method: method.toUpperCase(), path, summary: op.summary});
            }
            return out;
        }"""})
        assert not r.is_error, text_of(r)
        ops = json.loads(r.content[0].text)
        assert len(ops) > 10
        assert all(o["path"].startswith("/zones/") for o in ops)
        assert any("rulesets" in o["path"] for o in ops)

        # Walk a schema to read an enum (refs are resolved inline).
        r = await s.call_tool("search", {"code": """async () => {
            const op = spec.paths['/zones/{zone_id}/dns_records'].post;
            const schema = op.requestBody.content['application/json'].schema;
            const variants = schema.anyOf || schema.oneOf || [schema];
            return [...new Set(variants.flatMap(v => (v.allOf || [v]).flatMap(p => (p.properties && p.properties.type && p.properties.type.enum) || [])))];
        }"""})
        assert not r.is_error, text_of(r)
        types = json.loads(r.content[0].text)
        assert "A" in types and "CNAME" in types and "MX" in types


async def test_errors_are_tool_errors_with_positions():
    async with mcp_session(["--spec", CLOUDFLARE]) as s:
        r = await s.call_tool("search", {"code": "async () => {\n  return spec.paths[;\n}"})
        assert r.is_error
        assert "SyntaxError" in text_of(r) and "line 2" in text_of(r)
        r = await s.call_tool("search", {"code": "async () => {\n  console.log('looking');\n  return spec.nope.deeper;\n}"})
        assert r.is_error
        t = text_of(r)
        assert "TypeError" in t and "line 3" in t and "looking" in t
        r = await s.call_tool("search", {"code": "async () => undefined"})
        assert not r.is_error and "undefined" in text_of(r)
        r = await s.call_tool("search", {})
        assert r.is_error and "code" in text_of(r)


async def test_large_results_are_shortened_into_valid_json():
    async with mcp_session(["--spec", CLOUDFLARE]) as s:
        r = await s.call_tool("search", {"code": "async () => Object.entries(spec.paths).map(([p, o]) => ({p, ops: Object.keys(o), summary: Object.values(o)[0].summary}))"})
        assert not r.is_error
        shown = json.loads(r.content[0].text)  # still valid JSON
        assert shown[0]["p"].startswith("/") and "more items" in shown[-1]
        note = r.content[1].text
        assert "shortened" in note and "6000-token limit" in note
        # Everything, fully inlined, is more than the memory limit can hold: a clear error, not a crash.
        r = await s.call_tool("search", {"code": "async () => spec"})
        assert r.is_error and "memory" in text_of(r)
        r = await s.call_tool("search", {"code": "async () => Object.keys(spec.paths).length"})
        assert r.content[0].text == "965"


async def test_hostile_code_is_stopped_while_other_calls_are_served(tmp_path):
    cfg = write_config(tmp_path, f"""
[limits]
timeout_secs = 2
memory_mib = 32
[[api]]
name = "cloudflare"
spec = "{CLOUDFLARE}"
base_url = "http://127.0.0.1:9"
""")
    async with mcp_session(["--config", str(cfg)]) as s:
        results = {}

        async def run(name, tool, code):
            t0 = anyio.current_time()
            r = await s.call_tool(tool, {"code": code})
            results[name] = (r, anyio.current_time() - t0)

        async with anyio.create_task_group() as tg:
            tg.start_soon(run, "loop", "execute", "async () => { while (true) {} }")
            tg.start_soon(run, "search_loop", "search", "async () => { for (;;) {} }")
            await anyio.sleep(0.3)
            tg.start_soon(run, "quick", "execute", "async () => 6 * 7")
        loop, loop_t = results["loop"]
        assert loop.is_error and "time limit" in text_of(loop)
        # Pre-empted at its limit (an un-pre-empted loop never ends).
        assert 1.5 < loop_t < 60
        quick, quick_t = results["quick"]
        assert not quick.is_error and quick.content[0].text == "42"
        # Not queued behind the loop: it started 0.3 s later and ended first.
        assert quick_t + 0.3 < loop_t, (quick_t, loop_t)
        assert results["search_loop"][0].is_error

        cases = {
            "async () => { const a = []; for (;;) a.push('x'.repeat(1e6) + a.length); }": "memory",
            "async () => { const f = n => f(n + 1) + 1; return f(0); }": "recursion",
            "async () => /^(a+)+$/.test('a'.repeat(50) + 'b')": "time limit",
            "async () => { await new Promise(() => {}); }": "never settle",
            "async () => [typeof require, typeof process, typeof fetch, typeof std, typeof os].join()": None,
            "async () => import('os')": "",
        }
        for code, expect in cases.items():
            r = await s.call_tool("execute", {"code": code})
            if expect is None:
                assert not r.is_error and r.content[0].text == "undefined,undefined,undefined,undefined,undefined"
            else:
                assert r.is_error, code
                assert expect in text_of(r), (code, text_of(r))

        # Prototype pollution and globals do not leak into the next call.
        await s.call_tool("execute", {"code": "async () => { Object.prototype.polluted = 'yes'; globalThis.leak = 1; JSON.parse = () => 'hijacked'; }"})
        await s.call_tool("search", {"code": "async () => { Object.getPrototypeOf(spec).polluted = 'yes'; spec.paths.x = 1; }"})
        r = await s.call_tool("execute", {"code": "async () => [({}).polluted, typeof leak, JSON.parse('1')]"})
        assert json.loads(r.content[0].text) == [None, "undefined", 1]
        r = await s.call_tool("search", {"code": "async () => [({}).polluted, Object.getPrototypeOf(spec).polluted, 'x' in spec.paths]"})
        assert json.loads(r.content[0].text) == [None, None, False]

        # A huge output is capped, the server keeps serving.
        r = await s.call_tool("execute", {"code": "async () => 'A'.repeat(5e6)"})
        assert not r.is_error and len(r.content[0].text) < 100_000
        r = await s.call_tool("execute", {"code": "async () => 1"})
        assert r.content[0].text == "1"
