"""`codemode.find(query, {limit, api})` in `search`, against the release
binary over stdio with the official Python SDK: operations of a real spec
(GitHub, in rehearsal mode) and the tools of a real upstream MCP server
(server-everything) ranked in one list, entries that `codemode.types` takes
as they are, the search tool's description teaching it with words of the
configured API, and bad arguments answered with the fix."""

from __future__ import annotations

import json

import pytest

from conftest import ROOT, SPECS, mcp_session, text_of, write_config

pytestmark = pytest.mark.anyio

GITHUB = SPECS / "github-octokit-23.0.2.api.github.com.json"
EVERYTHING = ROOT / ".peers" / "portal-node" / "node_modules" / "@modelcontextprotocol" / "server-everything" / "dist" / "index.js"


async def search(s, code: str):
    r = await s.call_tool("search", {"code": code})
    return r.is_error, text_of(r)


async def test_find_ranks_operations_and_tools_and_types_takes_its_entries(tmp_path):
    assert EVERYTHING.exists(), "run crates/portal/tests/peers-setup.sh (scripts/test does)"
    cfg = write_config(tmp_path, f"""
[[api]]
name = "github"
spec = "{GITHUB}"
mock = true

[[mcp]]
name = "everything"
command = "node"
args = ["{EVERYTHING}"]
""")
    async with mcp_session(["--config", str(cfg)]) as s:
        tools = {t.name: t for t in (await s.list_tools()).tools}
        assert "codemode.find(" in tools["search"].description, tools["search"].description

        err, out = await search(s, 'async () => codemode.find("create an issue comment", {limit: 3})')
        assert not err, out
        hits = json.loads(out)
        assert hits[0] == {"name": "POST /repos/{owner}/{repo}/issues/{issue_number}/comments", "api": "github",
                           "summary": "Create an issue comment"}, hits
        assert len(hits) == 3

        # A tool of the upstream server, in the same ranking.
        err, out = await search(s, 'async () => codemode.find("echo back a message", {limit: 5})')
        assert not err, out
        hits = json.loads(out)
        assert hits[0]["name"] == "everything_echo" and hits[0]["server"] == "everything", hits
        # The model's next step, as the description shows it: types of the best entries.
        err, out = await search(s, """async () => {
            const [op] = codemode.find("create an issue comment", {api: "github", limit: 1});
            const [tool] = codemode.find("echo back a message", {api: "everything", limit: 1});
            return [codemode.types(op), codemode.types(tool)];
        }""")
        assert not err, out
        op_ts, tool_ts = json.loads(out)
        assert "issue_number" in op_ts and "body" in op_ts, op_ts
        assert "message" in tool_ts, tool_ts

        err, out = await search(s, 'async () => codemode.find("issues", {top: 3})')
        assert err and "unknown option `top`" in out and "{limit: number, api: string}" in out, out
        err, out = await search(s, 'async () => codemode.find()')
        assert err and 'codemode.find("create dns record"' in out, out


async def test_the_search_description_teaches_find_with_words_of_the_api(tmp_path):
    cfg = write_config(tmp_path, f'[[api]]\nname = "bookshelf"\nspec = "{ROOT / "examples" / "bookshelf.yaml"}"\nmock = true\n')
    async with mcp_session(["--config", str(cfg)]) as s:
        tools = {t.name: t for t in (await s.list_tools()).tools}
        d = tools["search"].description
        assert "codemode.find(" in d and "find(query: string" in d, d
        example = d.split('codemode.find("')[1].split('"')[0]
        err, out = await search(s, f'async () => codemode.find({json.dumps(example)}, {{limit: 1}})')
        assert not err and json.loads(out), (example, out)
