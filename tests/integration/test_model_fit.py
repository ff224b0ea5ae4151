"""What models already write, against the release binary over stdio with the
official Python SDK: code written for Cloudflare's envelope
(`response.result`) and for fetch (`await response.json()`, `response.ok`)
works while a response stays `{status, headers, data}`; a `.result` that is
not there, and globals the sandbox leaves out (`fetch`, `require`,
`process`, `setImmediate`), fail with the fix; and the tools' examples come
from the configured APIs, never from a hard-coded one."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from conftest import ROOT, SPECS, mcp_session, text_of, write_config

pytestmark = pytest.mark.anyio

CLOUDFLARE = SPECS / "cloudflare-2024-08-06.openapi.json"
BOOKSHELF = ROOT / "examples" / "bookshelf.yaml"
HERE = Path(__file__).parent
ENV = {"CF_TOKEN": "rehearsal-token-0123456789"}


async def run(s, code: str):
    r = await s.call_tool("execute", {"code": code})
    return r.is_error, text_of(r)


async def test_cloudflare_shaped_and_fetch_shaped_code_works_and_a_response_keeps_its_shape(tmp_path):
    cfg = write_config(tmp_path, f"""
[[api]]
name = "cloudflare"
spec = "{CLOUDFLARE}"
mock = true
auth = {{ type = "bearer", token_env = "CF_TOKEN" }}
""")
    async with mcp_session(["--config", str(cfg)], env=ENV) as s:
        # The blog's code: the envelope's `result`, next to `.data`.
        err, out = await run(s, """async () => {
            const response = await cloudflare.request('GET /zones', {per_page: 5});
            return {
                names: response.result.map(z => typeof z.name),
                same: response.result === response.data.result,
                success: response.success, info: typeof response.result_info,
                keys: Object.keys(response), json: Object.keys(JSON.parse(JSON.stringify(response))),
                ok: response.ok, body: (await response.json()) === response.data,
            };
        }""")
        assert not err, out
        out = json.loads(out)
        assert out["names"] and set(out["names"]) == {"string"} and out["same"] and out["success"] is True, out
        assert out["keys"] == out["json"] == ["status", "headers", "data"], "the extras must stay invisible"
        assert out["ok"] is True and out["body"] is True and out["info"] == "object", out


async def test_a_missing_result_and_missing_globals_fail_with_the_fix(tmp_path):
    cfg = write_config(tmp_path, f'[[api]]\nname = "bookshelf"\nspec = "{BOOKSHELF}"\nmock = true\n')
    async with mcp_session(["--config", str(cfg)]) as s:
        err, out = await run(s, "async () => (await bookshelf.request('GET /books')).result.map(b => b.title)")
        assert err and "has no `.result`" in out and "`.data`" in out and "`books`" in out, out
        err, out = await run(s, "async () => (await bookshelf.request('GET /books')).data.books.length")
        assert not err and out == "3", out
        for name, needle in [("fetch('https://example.com')", "bookshelf.request('GET /books')"),
                             ("require('fs')", "no modules"),
                             ("process.env.TOKEN", "credentials stay in the host"),
                             ("setImmediate(() => 1)", "Promise.all")]:
            err, out = await run(s, f"async () => {name}")
            assert err and "is not defined — " in out and needle in out, out
        # Examples in the tool schemas come from this config, not from Cloudflare.
        tools = {t.name: t for t in (await s.list_tools()).tools}
        for t in tools.values():
            described = t.input_schema["properties"]["code"]["description"] + t.description
            assert "zones" not in described and "dns" not in described, described
        assert "bookshelf.request('GET /books')" in tools["execute"].input_schema["properties"]["code"]["description"]


async def test_portal_only_text_fits_what_is_configured(tmp_path):
    log = tmp_path / "upstream.log"
    cfg = write_config(tmp_path, f"""
[[mcp]]
name = "slow"
command = "{sys.executable}"
args = ["{HERE / 'slow_mcp.py'}", "{log}"]
""")
    async with mcp_session(["--config", str(cfg)]) as s:
        init = s.initialize_result if hasattr(s, "initialize_result") else None
        tools = {t.name: t for t in (await s.list_tools()).tools}
        assert tools["search"].title == "Search the MCP tools" and tools["execute"].title == "Call the MCP tools", tools
        assert "codemode.slow_" in tools["execute"].input_schema["properties"]["code"]["description"]
        if init is not None:
            assert "slow" in (init.instructions or "") and "tools: ." not in (init.instructions or ""), init.instructions
        err, out = await run(s, "async () => fetch('x')")
        assert err and "codemode" in out and "network access" in out, out


async def test_limit_errors_name_the_limit_its_value_and_the_fix(tmp_path):
    cfg = write_config(tmp_path, f'[limits]\ntimeout_secs = 2\nconsole_kib = 4\nmax_requests = 3\n\n[[api]]\nname = "bookshelf"\nspec = "{BOOKSHELF}"\nmock = true\n')
    async with mcp_session(["--config", str(cfg)]) as s:
        for code, needles in [
            ("async () => { while (true) {} }", ["time limit of 2 s", "split it"]),
            ("async () => { const f = (n) => f(n + 1); return f(0); }", ["stack", "loop"]),
            ("async () => { const a = []; while (true) a.push('x'.repeat(1e6)); }", ["memory", "keep less"]),
            ("async () => { for (let i = 0; i < 5; i++) await bookshelf.request('GET /books'); }", ["limit of 3 upstream requests", "split the work"]),
        ]:
            err, out = await run(s, code)
            assert err and all(n in out for n in needles), (code, out)
        r = await s.call_tool("execute", {"code": "async () => { for (let i = 0; i < 2000; i++) console.log('line ' + i + ' ' + 'x'.repeat(50)); return 1; }"})
        console = "\n".join(c.text for c in r.content if c.type == "text" and c.text.startswith("console output:"))
        assert "console_kib" in console and "4 KiB" in console and "Log less" in console, console[-500:]
        r = await s.call_tool("execute", {"code": "async () => 'x'.repeat(200000)"})
        assert "token limit" in text_of(r) and "Return only the part you need" in text_of(r), text_of(r)[-400:]
