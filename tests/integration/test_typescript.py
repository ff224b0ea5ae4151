"""TypeScript through the release binary: types are removed (never checked),
positions stay the model's, and what cannot be removed says what to write."""

from __future__ import annotations

import json

import pytest

from conftest import SPECS, mcp_session, text_of, write_config

pytestmark = pytest.mark.anyio

CLOUDFLARE = str(SPECS / "cloudflare-2024-08-06.openapi.json")
HTTPBIN_SPEC = str(SPECS / "httpbin-0.10.4.spec.json")


async def test_search_runs_typescript_against_a_spec():
    async with mcp_session(["--spec", CLOUDFLARE]) as s:
        tools = {t.name: t for t in (await s.list_tools()).tools}
        assert "TypeScript" in tools["search"].description
        assert "TypeScript" in tools["execute"].description

        r = await s.call_tool("search", {"code": """async (): Promise<string[]> => {
  interface Operation { summary?: string; tags?: string[] }
  type Methods = Record<string, Operation>;
  const out: string[] = [];
  for (const [path, ops] of Object.entries(spec.paths as Record<string, Methods>)) {
    if (!path.includes('dns_records')) continue;
    for (const method of Object.keys(ops)) out.push(`${method.toUpperCase()} ${path}`);
  }
  return out.sort() satisfies string[];
}"""})
        assert not r.is_error, text_of(r)
        ops = json.loads(r.content[0].text)
        assert "GET /zones/{zone_id}/dns_records" in ops

        # An enum, a generic helper and a non-null assertion, as statements.
        r = await s.call_tool("search", {"code": """enum Kind { Get = 'get', Post = 'post' }
function first<T>(xs: T[]): T | undefined { return xs[0]; }
const op = spec.paths['/zones/{zone_id}/dns_records']![Kind.Post];
return first<string>(op.tags ?? []) ?? op.summary;"""})
        assert not r.is_error, text_of(r)
        assert r.content[0].text == "DNS Records for a Zone"


async def test_typescript_errors_point_into_the_models_code():
    async with mcp_session(["--spec", CLOUDFLARE]) as s:
        # A run-time error after type-only lines: the line is the model's.
        r = await s.call_tool("search", {"code": """async () => {
  type Paths = Record<string, unknown>;
  const paths: Paths = spec.paths as Paths;
  const missing: { x: number } | undefined = undefined;
  return missing!.x;
}"""})
        assert r.is_error
        t = text_of(r)
        assert "TypeError" in t and "line 5" in t, t

        # A syntax error in TypeScript: oxc's, positioned, saying TypeScript is accepted.
        r = await s.call_tool("search", {"code": "async () => {\n  const x: number = ;\n}"})
        assert r.is_error
        t = text_of(r)
        assert "SyntaxError" in t and "line 2" in t and "TypeScript is accepted" in t, t

        # What cannot be blanked says what to write instead.
        r = await s.call_tool("search", {"code": "namespace Util { export const n = 1 }\nreturn Util.n"})
        assert r.is_error
        t = text_of(r)
        assert "namespace" in t and "use an object instead" in t, t


async def test_execute_runs_typescript_against_httpbin(tmp_path, httpbin_peer):
    cfg = write_config(tmp_path, f"""
[[api]]
name = "httpbin"
spec = "{HTTPBIN_SPEC}"
base_url = "{httpbin_peer}"
""")
    async with mcp_session(["--config", str(cfg)]) as s:
        r = await s.call_tool("execute", {"code": """interface Echo { args: Record<string, string>; url: string }
const r = await httpbin.request<Echo>({path: '/get', query: {q: 'typed'}});
const echo = r.data as Echo;
echo.args.q"""})
        assert not r.is_error, text_of(r)
        assert r.content[0].text == "typed"

        r = await s.call_tool("execute", {"code": """async (): Promise<number[]> => {
  enum Status { Ok = 200, Teapot = 418 }
  const codes: number[] = [];
  for (const code of [Status.Ok, Status.Teapot]) {
    try {
      codes.push((await httpbin.request('GET /status/{code}', {code})).status);
    } catch (e: unknown) {
      codes.push((e as { status: number }).status);
    }
  }
  return codes;
}"""})
        assert not r.is_error, text_of(r)
        assert json.loads(r.content[0].text) == [200, 418]
