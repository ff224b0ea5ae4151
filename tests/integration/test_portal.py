"""Portal mode through the release binary: real upstream MCP servers behind the
same two tools, mixed with an OpenAPI API, driven by the official Python SDK."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conftest import ROOT, mcp_session, text_of, write_config

pytestmark = pytest.mark.anyio

NODE_MODULES = ROOT / ".peers" / "portal-node" / "node_modules" / "@modelcontextprotocol"


def servers_config(tmp_path: Path) -> Path:
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "team.txt").write_text("Ada Lovelace\nGrace Hopper\n")
    return write_config(tmp_path, f"""
[[mcp]]
name = "fs"
command = "node"
args = ["{NODE_MODULES / 'server-filesystem' / 'dist' / 'index.js'}", "{tmp_path / 'files'}"]

[[mcp]]
name = "memory"
command = "node"
args = ["{NODE_MODULES / 'server-memory' / 'dist' / 'index.js'}"]
env_from = {{ MEMORY_FILE_PATH = "PORTAL_MEMORY_FILE" }}

[[mcp]]
name = "broken"
command = "/nonexistent/mcp-server"

[[api]]
name = "bookshelf"
spec = "{ROOT / 'examples' / 'bookshelf.yaml'}"
mock = true
""")


async def test_portal_chains_servers_and_mixes_an_openapi_api(tmp_path):
    assert NODE_MODULES.exists(), "run crates/portal/tests/peers-setup.sh (scripts/test does)"
    cfg = servers_config(tmp_path)
    env = {"PORTAL_MEMORY_FILE": str(tmp_path / "memory.json")}
    async with mcp_session(["--config", str(cfg)], env=env) as s:
        tools = {t.name: t for t in (await s.list_tools()).tools}
        for name in ("search", "execute"):
            assert "fs" in tools[name].description and "memory" in tools[name].description
            assert "fs_read_text_file" not in tools[name].description  # servers by name only

        r = await s.call_tool("search", {"code": "async () => codemode.tools().filter(t => t.name).map(t => t.name)"})
        names = json.loads(r.content[0].text)
        assert "fs_read_text_file" in names and "memory_create_entities" in names
        # The broken upstream is reported, and blocks nothing else.
        # Every entry of tools() has the declared shape; servers that are not up are in status().
        r = await s.call_tool("search", {"code": "async () => codemode.tools().every(t => typeof t.name === 'string' && typeof t.server === 'string')"})
        assert r.content[0].text == "true"
        r = await s.call_tool("search", {"code": "async () => codemode.status().filter(s => s.state !== 'ready')"})
        down = json.loads(r.content[0].text)
        assert [d["server"] for d in down] == ["broken"] and down[0]["state"] in ("down", "reconnecting", "connecting"), down
        assert "error" not in down[0] or ("{" not in down[0]["error"] and "Error(" not in down[0]["error"]), down
        r = await s.call_tool("search", {"code": "async () => codemode.types('memory_create_entities')"})
        assert "entities" in r.content[0].text and "Array<" in r.content[0].text
        r = await s.call_tool("search", {"code": "async () => codemode.types('POST /books')"})
        assert "title" in r.content[0].text and "author_id" in r.content[0].text

        r = await s.call_tool("execute", {"code": f"""async () => {{
            const file = await codemode.fs_read_text_file({{path: {json.dumps(str(tmp_path / 'files' / 'team.txt'))}}});
            const people = (file.content || file).trim().split('\\n');
            const books = (await bookshelf.request('GET /books')).data.books;
            await codemode.memory_create_entities({{entities: [
                ...people.map(p => ({{name: p, entityType: 'person', observations: ['from team.txt']}})),
                ...books.map(b => ({{name: b.title, entityType: 'book', observations: [String(b.year)]}})),
            ]}});
            const graph = await codemode.memory_read_graph({{}});
            return graph.entities.map(e => e.name + ':' + e.entityType);
        }}"""})
        assert not r.is_error, text_of(r)
        assert json.loads(r.content[0].text) == [
            "Ada Lovelace:person", "Grace Hopper:person",
            "The Left Hand of Darkness:book", "A Wizard of Earthsea:book", "Kindred:book",
        ]

        # Arguments are validated before sending; tool errors are catchable.
        r = await s.call_tool("execute", {"code": "async () => codemode.memory_create_entities({entities: 'nope'})"})
        assert r.is_error and "entities" in text_of(r)
        r = await s.call_tool("execute", {"code": "async () => { try { await codemode.fs_read_text_file({path: '/etc/passwd'}); } catch (e) { return e.message.length > 0; } }"})
        assert r.content[0].text == "true"
        r = await s.call_tool("execute", {"code": "async () => codemode.nope_tool({})"})
        assert r.is_error

        # Parallel calls inside one execute.
        r = await s.call_tool("execute", {"code": "async () => (await Promise.all(Array.from({length: 20}, () => codemode.memory_read_graph({})))).length"})
        assert r.content[0].text == "20"


async def test_mcp_servers_json_is_accepted(tmp_path):
    servers = tmp_path / "servers.json"
    servers.write_text(json.dumps({"mcpServers": {
        "memory": {"command": "node", "args": [str(NODE_MODULES / "server-memory" / "dist" / "index.js")],
                   "env": {"MEMORY_FILE_PATH": str(tmp_path / "m.json")}},
    }}))
    async with mcp_session(["--mcp-config", str(servers)]) as s:
        r = await s.call_tool("search", {"code": "async () => codemode.tools().length"})
        assert r.content[0].text == "9"
        r = await s.call_tool("execute", {"code": "async () => (await codemode.memory_read_graph({})).entities"})
        assert json.loads(r.content[0].text) == []


async def test_scopes_govern_portal_tools_too(tmp_path):
    """Regression (issue 9): a token holding only `bookshelf:read` could call
    every portal tool over HTTP — `ScopedHost` let `codemode.*` through
    unchecked. A tool that may write needs `<server>:write`; one annotated
    `readOnlyHint` needs `<server>:read`."""
    from test_http_helpers import codemode_http, http_session

    files = tmp_path / "files"
    files.mkdir()
    (files / "team.txt").write_text("Ada Lovelace\n")
    apis = f"""
[[mcp]]
name = "fs"
command = "node"
args = ["{NODE_MODULES / 'server-filesystem' / 'dist' / 'index.js'}", "{files}"]

[[api]]
name = "bookshelf"
spec = "{ROOT / 'examples' / 'bookshelf.yaml'}"
mock = true
"""
    auth = """
[[auth.tokens]]
name = "reader"
token_env = "READER_TOKEN"
scopes = ["bookshelf:read"]

[[auth.tokens]]
name = "fs-reader"
token_env = "FS_READER_TOKEN"
scopes = ["fs:read"]

[[auth.tokens]]
name = "fs-writer"
token_env = "FS_WRITER_TOKEN"
scopes = ["fs:read", "fs:write"]
"""
    env = {
        "READER_TOKEN": "reader-token-0123456789abcdef",
        "FS_READER_TOKEN": "fs-reader-token-0123456789abcdef",
        "FS_WRITER_TOKEN": "fs-writer-token-0123456789abcdef",
    }
    write = f'async () => codemode.fs_write_file({{path: "{files / "pwned.txt"}", content: "x"}})'
    read = f'async () => codemode.fs_read_text_file({{path: "{files / "team.txt"}"}})'
    with codemode_http(tmp_path, auth=auth, apis=apis, env=env) as srv:
        tools = "async () => codemode.tools().map(t => t.server + ':' + t.name)"
        types = "async () => codemode.types()"
        async with http_session(srv.url, env["READER_TOKEN"]) as s:
            # search shows only what the scopes reach: no fs tools, no fs types.
            r = await s.call_tool("search", {"code": tools})
            assert not r.is_error and "fs:" not in text_of(r), text_of(r)
            r = await s.call_tool("search", {"code": types})
            assert "fs_write_file" not in text_of(r), text_of(r)
            r = await s.call_tool("search", {"code": 'async () => codemode.types("fs_write_file")'})
            assert r.is_error, text_of(r)
            r = await s.call_tool("execute", {"code": write})
            assert r.is_error and "fs:write" in text_of(r), text_of(r)
            r = await s.call_tool("execute", {"code": read})
            assert r.is_error and "fs:read" in text_of(r), text_of(r)
        assert not (files / "pwned.txt").exists(), "a bookshelf-only token wrote through the filesystem server"
        async with http_session(srv.url, env["FS_READER_TOKEN"]) as s:
            # A token with scopes on a server only may search its tools.
            r = await s.call_tool("search", {"code": tools})
            assert not r.is_error and "fs:fs_write_file" in text_of(r), text_of(r)
            r = await s.call_tool("search", {"code": types})
            assert "fs_write_file" in text_of(r), text_of(r)
            r = await s.call_tool("search", {"code": 'async () => typeof specs.bookshelf'})
            assert text_of(r) == "undefined", text_of(r)
            r = await s.call_tool("execute", {"code": read})
            assert not r.is_error and "Ada Lovelace" in text_of(r), text_of(r)
            r = await s.call_tool("execute", {"code": write})
            assert r.is_error and "fs:write" in text_of(r), text_of(r)
        assert not (files / "pwned.txt").exists()
        async with http_session(srv.url, env["FS_WRITER_TOKEN"]) as s:
            r = await s.call_tool("execute", {"code": write})
            assert not r.is_error, text_of(r)
        assert (files / "pwned.txt").read_text() == "x"
