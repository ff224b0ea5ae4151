"""Per-principal upstream sessions cannot be reached by another principal.

An upstream MCP server authenticated per user (tests/integration/users_mcp.py,
the official Python SDK) behind codemode over HTTP, with alice holding an
upstream credential and mallory holding either none, a refused one, or one
of her own. alice keeps a secret in her session. mallory's code then tries
everything a clever model might: the same tool names, name variants and
property tricks, passing alice's MCP session id (which she learns from an
earlier alice answer) as arguments and `_meta`, racing her calls against
alice's, and calling right after her own 401. She never sees alice's
identity, alice's session state or alice's token; alice's answers stay hers
throughout, and never carry mallory's."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import BINARY, ROOT

from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

pytestmark = pytest.mark.anyio

USERS_MCP = ROOT / "tests" / "integration" / "users_mcp.py"
ALICE_UP = "alice-up-hostile-3c9e1f7a0b2d4e68"
MALLORY_UP = "mallory-up-hostile-8d2a6b0c4e1f3a97"
REFUSED = "refused-up-hostile-5e7f9a1b3c5d7e9f"
TOKENS = {ALICE_UP: "alice", MALLORY_UP: "mallory"}
CM = {n: f"codemode-{n}-hostile-0123456789" for n in ("alice", "mallory")}


@pytest.fixture
def anyio_backend():
    return "asyncio"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, what: str):
    deadline = time.monotonic() + 180
    while True:
        assert proc.poll() is None, f"{what} exited"
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        assert time.monotonic() < deadline, f"{what} did not listen"
        time.sleep(0.05)


@contextlib.contextmanager
def servers(tmp: Path):
    up_port, cm_port = free_port(), free_port()
    up_log = tmp / "users.jsonl"
    up_log.write_text("")
    up = subprocess.Popen([sys.executable, str(USERS_MCP), str(up_port), str(up_log)],
                          env={**os.environ, "USERS_TOKENS": json.dumps(TOKENS)},
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cfg = tmp / "sessions.toml"
    cfg.write_text(f"""
[server]
transport = "http"
listen = "127.0.0.1:{cm_port}"

[limits]
timeout_secs = 20
max_concurrent_executions = 8

[auth]
header = "X-Codemode-Token"
[[auth.tokens]]
name = "alice"
token_env = "CM_ALICE"
scopes = ["*"]
[[auth.tokens]]
name = "mallory"
token_env = "CM_MALLORY"
scopes = ["*"]

[[mcp]]
name = "users"
url = "http://127.0.0.1:{up_port}/mcp"
auth = {{ type = "passthrough" }}
""")
    log = tmp / "codemode.log"
    env = {"PATH": os.environ.get("PATH", ""), "CODEMODE_LOG": "info,rmcp=warn",
           "CM_ALICE": CM["alice"], "CM_MALLORY": CM["mallory"]}
    with open(log, "w") as f:
        cm = subprocess.Popen([str(BINARY), "serve", "--config", str(cfg)], stdout=subprocess.DEVNULL, stderr=f, env=env)
    try:
        wait_port(up_port, up, "users_mcp.py")
        wait_port(cm_port, cm, "codemode")
        yield f"http://127.0.0.1:{cm_port}/mcp", up_log, log
    finally:
        cm.terminate()
        try:
            cm.wait(timeout=20)
        except subprocess.TimeoutExpired:
            cm.kill()
        up.kill()
        up.wait()


async def run(url: str, name: str, upstream: str | None, code: str, tool: str = "execute"):
    headers = {"X-Codemode-Token": CM[name]}
    if upstream:
        headers["Authorization"] = f"Bearer {upstream}"
    async with create_mcp_http_client(headers=headers) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write) as s:
                await s.initialize()
                r = await s.call_tool(tool, {"code": code})
                return r.is_error, "\n".join(c.text for c in r.content if getattr(c, "type", "") == "text")


def probes(alice_sid: str) -> list[str]:
    """What mallory's code tries, each returning whatever it could get."""
    sid = json.dumps(alice_sid)
    grab = "async () => { try { return await (%s); } catch (e) { return 'ERR ' + e.name + ': ' + e.message; } }"
    return [grab % e for e in (
        "codemode.users_whoami({})",
        "codemode.users_recall({key: 'diary'})",
        "codemode['users_whoami']({})",
        "codemode.users_recall({key: 'diary', sessionId: %s, 'mcp-session-id': %s})" % (sid, sid),
        "codemode.users_recall({key: 'diary', _meta: {'mcp-session-id': %s}})" % sid,
        "codemode.users__whoami({})",
        "codemode.USERS_whoami({})",
        "codemode.users_echo_token({})",
        "Promise.all([1,2,3,4,5,6].map(() => codemode.users_recall({key: 'diary'})))",
    )]


@pytest.mark.parametrize("mallory_token", [None, REFUSED, MALLORY_UP], ids=["none", "refused", "own"])
async def test_mallory_never_reaches_alices_session(tmp_path, mallory_token):
    with servers(tmp_path) as (url, up_log, log):
        err, text = await run(url, "alice", ALICE_UP,
                              "async () => { await codemode.users_remember({key: 'diary', value: 'alice-diary-7f3e'}); "
                              "return codemode.users_whoami({}); }")
        assert not err, text
        alice = json.loads(text)
        assert alice["user"] == "alice"

        async def alice_keeps_going():
            outs = []
            for _ in range(6):
                outs.append(await run(url, "alice", ALICE_UP,
                                      "async () => [await codemode.users_whoami({}), await codemode.users_recall({key: 'diary'})]"))
            return outs

        async def mallory_tries():
            return [await run(url, "mallory", mallory_token, p) for p in probes(alice["session"])]

        alice_outs, mallory_outs = await asyncio.gather(alice_keeps_going(), mallory_tries())
        for err, text in mallory_outs:
            assert "alice" not in text, text
            assert alice["session"] not in text, text
            assert ALICE_UP not in text and "alice-diary-7f3e" not in text, text
            if mallory_token is None:
                assert "CredentialRequired" in text or "ToolNotFound" in text or "not a tool" in text, text
            if mallory_token == MALLORY_UP:
                assert MALLORY_UP not in text, text
        if mallory_token == MALLORY_UP:
            # Her own session works, and is hers alone.
            who = json.loads(mallory_outs[0][1])
            assert who["user"] == "mallory" and who["session"] != alice["session"], who
            assert json.loads(mallory_outs[1][1])["value"] is None
        for err, text in alice_outs:
            assert not err, text
            me, diary = json.loads(text)
            assert me == alice and diary["value"] == "alice-diary-7f3e", text
        codemode_log = log.read_text()
    # The upstream's log: alice's session only ever carried alice's token.
    lines = [json.loads(x) for x in up_log.read_text().splitlines() if x.strip()]
    assert {x["user"] for x in lines if x["session"] == alice["session"]} == {"alice"}, lines
    for t in (ALICE_UP, MALLORY_UP, REFUSED):
        assert t not in codemode_log
