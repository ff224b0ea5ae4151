"""Rehearsal mode through the release binary: the README's quick start, and a
mocked real spec, driven by the official Python MCP SDK."""

from __future__ import annotations

import json

import pytest

from conftest import ROOT, SPECS, mcp_session, text_of

pytestmark = pytest.mark.anyio

EXAMPLE = str(ROOT / "examples" / "codemode.toml")


async def test_bundled_example_offline():
    async with mcp_session(["--config", EXAMPLE]) as s:
        tools = {t.name: t for t in (await s.list_tools()).tools}
        assert "bookshelf" in tools["execute"].description
        r = await s.call_tool("search", {"code": "async () => Object.keys(spec.paths)"})
        assert json.loads(r.content[0].text) == ["/books", "/books/{book_id}", "/authors", "/authors/{author_id}", "/shelves/{shelf_id}"]
        r = await s.call_tool("execute", {"code": "async () => (await bookshelf.request('GET /books')).data.books.map(b => b.title)"})
        assert json.loads(r.content[0].text) == ["The Left Hand of Darkness", "A Wizard of Earthsea", "Kindred"]
        # Synthesised from the schema, deterministic for the same request.
        code = "async () => (await api.request('GET /shelves/{shelf_id}', {shelf_id: 7})).data"
        a = (await s.call_tool("execute", {"code": code})).content[0].text
        b = (await s.call_tool("execute", {"code": code})).content[0].text
        assert a == b and "children" in json.loads(a)
        # Validation, routing and security errors say what to fix.
        r = await s.call_tool("execute", {"code": "async () => api.request('POST /books', {title: 'x', year: 3000})"})
        assert r.is_error and "author_id" in text_of(r) and "year" in text_of(r)
        r = await s.call_tool("execute", {"code": "async () => api.request('GET /book')"})
        assert r.is_error and "404" in text_of(r) and "GET /books" in text_of(r)
        r = await s.call_tool("execute", {"code": "async () => api.request('PUT /books')"})
        assert r.is_error and "405" in text_of(r)
        r = await s.call_tool("execute", {"code": "async () => api.request('DELETE /books/{id}', {id: '5f0c7a1e-2d3b-4c5d-8e9f-0a1b2c3d4e5f'})"})
        assert r.is_error and "401" in text_of(r)
        # Prefer picks another documented response, to rehearse error handling.
        r = await s.call_tool("execute", {"code": """async () => {
            try { await api.request({path: '/books/5f0c7a1e-2d3b-4c5d-8e9f-0a1b2c3d4e5f', headers: {Prefer: 'code=404'}}); }
            catch (e) { return [e.status, typeof e.data.message]; }
        }"""})
        assert json.loads(r.content[0].text) == [404, "string"]


async def test_mock_flag_on_a_real_spec_still_applies_policy():
    spec = str(SPECS / "cloudflare-2024-08-06.openapi.json")
    async with mcp_session(["--spec", spec, "--mock", "--bearer-env", "CF_TOKEN"], env={"CF_TOKEN": "rehearsal"}) as s:
        r = await s.call_tool("execute", {"code": "async () => { const r = await cloudflare.request('GET /zones', {per_page: 5}); return [r.status, r.headers['x-codemode-mock'], Object.keys(r.data).sort()]; }"})
        assert not r.is_error, text_of(r)
        status, mocked, keys = json.loads(r.content[0].text)
        assert status == 200 and mocked == "true" and "result" in keys and "success" in keys
        # Writes are still refused unless allowed: rehearsal changes where answers come from, not the policy.
        r = await s.call_tool("execute", {"code": "async () => cloudflare.request('POST /zones', {name: 'example.com', account: {id: 'x'}})"})
        assert r.is_error and "allow_writes" in text_of(r)
