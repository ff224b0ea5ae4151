"""Upstream MCP sessions per principal (issue 14, part 2): a `[[mcp]]` server
authenticated per user gets one upstream session per principal, opened with
that principal's own credential on its first use, never shared.

The upstream (users_mcp.py) is built with the official Python SDK over
Streamable HTTP and authenticates each bearer token as one user; it keeps
state per MCP session and logs every HTTP request (method, session id, the
token's user). Two principals through codemode over HTTP, concurrently, each
see only their own identity and their own session's state; the upstream's
log shows distinct sessions, each only ever with its own principal's token;
neither token reaches results, errors, stderr or the audit store; a
principal without a credential gets a clear error and an upstream 401 for
one principal leaves the others' sessions alone; an idle session is closed
with DELETE."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import BINARY
from test_http_helpers import codemode_http, free_port, text_of
from test_identity import assert_nowhere, session_with, store_bytes

pytestmark = pytest.mark.anyio

HERE = Path(__file__).resolve().parent
ALICE_UP = "alice-upstream-mcp-5d0c8e2f7a914b36"
BOB_UP = "bob-upstream-mcp-91f3a6c04e2d7b58"
STRANGER = "stranger-token-00aa11bb22cc33dd"
TOKENS = {ALICE_UP: "alice", BOB_UP: "bob"}


class Upstream:
    """users_mcp.py on a free port, its request log as parsed lines."""

    def __init__(self, tmp_path: Path):
        self.port = free_port()
        self.log_path = tmp_path / f"users-{self.port}.jsonl"
        self.log_path.write_text("")
        env = {**os.environ, "USERS_TOKENS": json.dumps(TOKENS)}
        self.proc = subprocess.Popen([sys.executable, str(HERE / "users_mcp.py"), str(self.port), str(self.log_path)],
                                     env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        deadline = time.monotonic() + 60
        import socket
        while True:
            assert self.proc.poll() is None, "users_mcp.py exited"
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    break
            assert time.monotonic() < deadline, "users_mcp.py did not listen"
            time.sleep(0.05)

    def lines(self) -> list[dict]:
        return [json.loads(line) for line in self.log_path.read_text().splitlines() if line.strip()]

    def close(self):
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def upstream(tmp_path):
    u = Upstream(tmp_path)
    yield u
    u.close()


INBOUND = """
[auth]
header = "X-Codemode-Token"
[[auth.tokens]]
name = "alice"
token_env = "CM_ALICE"
scopes = ["*"]
[[auth.tokens]]
name = "bob"
token_env = "CM_BOB"
scopes = ["*"]
[[auth.tokens]]
name = "dave"
token_env = "CM_DAVE"
scopes = ["*"]
"""
ENV = {f"CM_{n.upper()}": f"codemode-{n}-0123456789abcdef" for n in ("alice", "bob", "dave")}


def headers(name: str, upstream_token: str | None) -> dict:
    h = {"X-Codemode-Token": ENV[f"CM_{name.upper()}"]}
    if upstream_token:
        h["Authorization"] = f"Bearer {upstream_token}"
    return h


async def run(url: str, hdrs: dict, tool: str, code: str):
    async with session_with(url, hdrs) as s:
        r = await s.call_tool(tool, {"code": code})
        return r.is_error, text_of(r)


PER_PRINCIPAL = """async () => {
    const me = await codemode.users_whoami({});
    await codemode.users_remember({key: 'k', value: 'secret of ' + me.user});
    const back = await codemode.users_recall({key: 'k'});
    const echo = await codemode.users_echo_token({});
    let failed = null;
    try { await codemode.users_fail_with_token({}); } catch (e) { failed = e.message; }
    return {me, back, echo, failed};
}"""


async def test_two_principals_each_their_own_session_identity_and_state(tmp_path, upstream):
    db = tmp_path / "audit.sqlite"
    apis = f"""
[audit]
path = "{db}"

[[mcp]]
name = "users"
url = "{upstream.url}"
auth = {{ type = "passthrough" }}
"""
    with codemode_http(tmp_path, apis=apis, auth=INBOUND, env=ENV) as srv:
        assert srv.wait_log("authenticated per user"), srv.log()
        assert "PASS-THROUGH: MCP server `users`" in srv.log(), srv.log()
        # Nothing is opened before a principal uses the server.
        assert upstream.lines() == [], upstream.lines()

        # search: each principal's catalog lists the tools of its own session.
        err, text = await run(srv.url, headers("alice", ALICE_UP), "search",
                              "async () => codemode.tools().map(t => t.name).sort()")
        assert not err, text
        assert "users_whoami" in json.loads(text) and "users_recall" in json.loads(text), text

        # Concurrently, three rounds each: every answer is its own principal's.
        async def one(name, token):
            out = []
            for _ in range(3):
                out.append(await run(srv.url, headers(name, token), "execute", PER_PRINCIPAL))
            return out

        results = await asyncio.gather(one("alice", ALICE_UP), one("bob", BOB_UP))
        seen_sessions = {}
        for name, rounds in zip(("alice", "bob"), results):
            for err, text in rounds:
                assert not err, text
                out = json.loads(text)
                assert out["me"]["user"] == name, out
                assert out["back"]["value"] == f"secret of {name}", out
                assert out["echo"]["raw"] == "[REDACTED]" and out["echo"]["header"] == "Bearer [REDACTED]", out
                assert "[REDACTED]" in out["failed"], out
                seen_sessions.setdefault(name, set()).add(out["me"]["session"])
        # One session per principal, reused across executes, never shared.
        assert len(seen_sessions["alice"]) == 1 and len(seen_sessions["bob"]) == 1, seen_sessions
        assert seen_sessions["alice"].isdisjoint(seen_sessions["bob"]), seen_sessions

        # bob cannot read what alice kept: his recall of her key is his own value.
        err, text = await run(srv.url, headers("bob", BOB_UP), "execute",
                              "async () => codemode.users_recall({key: 'k'})")
        assert not err and json.loads(text)["value"] == "secret of bob", text

        # No credential presented: a clear error naming the server and the header.
        err, text = await run(srv.url, headers("dave", None), "execute", "async () => codemode.users_whoami({})")
        assert err and "CredentialRequired" in text and "`users`" in text and "`Authorization`" in text, text

        # A credential the upstream refuses (401): that principal's error ...
        err, text = await run(srv.url, headers("dave", STRANGER), "execute", "async () => codemode.users_whoami({})")
        assert err and "could not open your session" in text and "Only your session is affected" in text, text
        # ... and nobody else's problem: alice and bob go on at once, on their sessions.
        for name, token in (("alice", ALICE_UP), ("bob", BOB_UP)):
            err, text = await run(srv.url, headers(name, token), "execute", "async () => codemode.users_whoami({})")
            assert not err and json.loads(text)["user"] == name, text
            assert json.loads(text)["session"] in seen_sessions[name], text
        # status() for a principal with no session: per_user, no count of others'.
        err, text = await run(srv.url, headers("dave", None), "search", "async () => codemode.status()")
        assert not err and json.loads(text)[0]["state"] == "per_user", text
        everything = srv.log()

    # The upstream's log: each session only ever carried its own principal's token.
    by_session: dict[str, set] = {}
    for line in upstream.lines():
        if line["session"] and line["status"] != 401:
            by_session.setdefault(line["session"], set()).add(line["user"])
    for name, sessions in seen_sessions.items():
        (sid,) = sessions
        assert by_session[sid] == {name}, (sid, by_session[sid])
    refused = [line for line in upstream.lines() if line["status"] == 401]
    assert refused and all(line["user"] is None for line in refused), refused
    # Shutdown closed both sessions (the transport's DELETE).
    deletes = {line["session"] for line in upstream.lines() if line["method"] == "DELETE"}
    assert seen_sessions["alice"] | seen_sessions["bob"] <= deletes, (deletes, seen_sessions)
    for token in (ALICE_UP, BOB_UP, STRANGER):
        assert_nowhere(token, everything, store_bytes(db), *(t for rounds in results for _, t in rounds))


async def test_auth_for_by_principal_and_group_and_idle_sessions_close(tmp_path, upstream):
    """Credentials from the config per principal (environment) and group
    (file); a principal with neither is refused; a session idle past
    `session_idle_secs` is closed (DELETE) and the next call opens a new one."""
    (tmp_path / "ops.token").write_text(BOB_UP + "\n")
    (tmp_path / "ops.token").chmod(0o600)
    apis = f"""
[[mcp]]
name = "users"
url = "{upstream.url}"
session_idle_secs = 1
max_sessions = 4

[[mcp.auth_for]]
principal = "alice"
auth = {{ type = "bearer", token_env = "ALICE_UP" }}

[[mcp.auth_for]]
group = "ops"
auth = {{ type = "bearer", token_file = "ops.token" }}
"""
    inbound = "\n".join(
        f'[[auth.tokens]]\nname = "{n}"\ntoken_env = "CM_{n.upper()}"\nscopes = ["*"]\ngroups = {json.dumps(g)}\n'
        for n, g in (("alice", []), ("bob", ["ops"]), ("dave", ["dev"]))
    )
    env = {**ENV, "ALICE_UP": ALICE_UP}
    with codemode_http(tmp_path, apis=apis, auth=inbound, env=env) as srv:
        who = {}
        for name in ("alice", "bob"):
            hdrs = {"Authorization": f"Bearer {env[f'CM_{name.upper()}']}"}
            err, text = await run(srv.url, hdrs, "execute", "async () => codemode.users_whoami({})")
            assert not err, text
            who[name] = json.loads(text)
            assert who[name]["user"] == name, text
        assert who["alice"]["session"] != who["bob"]["session"]
        err, text = await run(srv.url, {"Authorization": f"Bearer {env['CM_DAVE']}"}, "execute",
                              "async () => codemode.users_whoami({})")
        assert err and "CredentialRequired" in text and "`dave`" in text and "auth_for" in text, text

        # Idle: the upstream sees alice's session deleted, without any call.
        deadline = time.monotonic() + 60
        while not any(line["method"] == "DELETE" and line["session"] == who["alice"]["session"]
                      for line in upstream.lines()):
            assert time.monotonic() < deadline, upstream.lines()
            await asyncio.sleep(0.1)
        assert srv.wait_log("closed idle per-principal sessions"), srv.log()
        # The next call opens a fresh session, still alice's.
        hdrs = {"Authorization": f"Bearer {env['CM_ALICE']}"}
        err, text = await run(srv.url, hdrs, "execute", "async () => codemode.users_whoami({})")
        assert not err and json.loads(text)["user"] == "alice", text
        assert json.loads(text)["session"] != who["alice"]["session"], text
        log = srv.log()
    for token in (ALICE_UP, BOB_UP):
        assert_nowhere(token, log)


def test_check_names_per_principal_servers_and_refuses_stdio(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("""
[server]
transport = "http"

[[mcp]]
name = "users"
url = "http://127.0.0.1:9/mcp"
auth = { type = "passthrough" }
""")
    o = subprocess.run([str(BINARY), "check", "--config", str(cfg)], capture_output=True, text=True, timeout=120,
                       env={"PATH": os.environ.get("PATH", "")})
    assert "mcp: users: per principal" in o.stdout, o.stdout
    assert "PASS-THROUGH: MCP server `users`" in o.stdout, o.stdout
    cfg.write_text("""
[[mcp]]
name = "local"
command = "true"

[[mcp.auth_for]]
principal = "alice"
auth = { type = "bearer", token_env = "X" }
""")
    o = subprocess.run([str(BINARY), "check", "--config", str(cfg)], capture_output=True, text=True, timeout=120,
                       env={"PATH": os.environ.get("PATH", ""), "X": "x-token-0123456789"})
    assert o.returncode != 0
    assert "mcp[0].auth" in o.stdout and "one process with one environment for everyone" in o.stdout, o.stdout
