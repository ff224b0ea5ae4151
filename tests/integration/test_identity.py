"""Identity end to end (issue 14, parts 1, 2 and 5): each principal acts
upstream with its own credential.

- Pass-through: the credential the MCP client presents on its HTTP request
  is forwarded by the host — to Kinto (Basic auth accounts: the record's
  owner is the account that presented it) and to httpbin (which echoes it:
  the echo reaches the code scrubbed, in every encoding).
- Per-principal credentials (`auth_for`): chosen by principal name and
  group, checked on an upstream that records what it received; a principal
  without an entry or a default is refused, never given another's.
- Secrets from files and commands load; a failing command stops start-up
  with the key that names it.

Neither credential reaches results, errors, the log (stderr) or the audit
store (the SQLite file and its WAL)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.server
import json
import os
import subprocess
import threading
import urllib.error
import urllib.request

import pytest

from conftest import BINARY, SPECS
from test_http_helpers import codemode_http, text_of

from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

pytestmark = pytest.mark.anyio

KINTO_SPEC = str(SPECS / "kinto-26.5.0.swagger.json")
HTTPBIN_SPEC = str(SPECS / "httpbin-0.10.4.spec.json")

ALICE_TOKEN = "alice-upstream-7c1e9a44b2d04f1f"
BOB_TOKEN = "bob-upstream-0d5f3e21c9ab47e8"


@contextlib.asynccontextmanager
async def session_with(url: str, headers: dict):
    """An initialised SDK session whose every HTTP request carries `headers`."""
    async with create_mcp_http_client(headers=headers) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                yield session


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def forms(secret: str) -> list[str]:
    """The forms a leak would take: raw, base64 (std, url), hex."""
    b = secret.encode()
    return [
        secret,
        base64.b64encode(b).decode().rstrip("="),
        base64.urlsafe_b64encode(b).decode().rstrip("="),
        b.hex(),
    ]


def assert_nowhere(secret: str, *texts: str):
    for text in texts:
        for f in forms(secret):
            assert f.lower() not in text.lower(), f"a form of the secret leaked: {f!r}"


def store_bytes(db) -> str:
    """Every byte of the audit store (database, WAL, shared memory)."""
    out = b""
    for suffix in ("", "-wal", "-shm"):
        p = db.parent / (db.name + suffix)
        if p.exists():
            out += p.read_bytes()
    return out.decode("latin-1")


def kinto_request(kinto, method: str, path: str, body: dict | None = None, auth: str | None = None):
    req = urllib.request.Request(
        kinto.url + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json", "Authorization": auth or kinto.authorization},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status, json.loads(r.read() or b"null")


@pytest.fixture
def kinto_accounts(kinto_peer):
    """alice and bob as Kinto accounts, and a collection both may write to."""
    passwords = {"alice": "alice-kinto-pw-5b7f0c", "bob": "bob-kinto-pw-93d1aa"}
    for user, pw in passwords.items():
        # The admin may write any account (kinto.account_write_principals).
        kinto_request(kinto_peer, "PUT", f"/accounts/{user}", {"data": {"password": pw}})
    kinto_request(kinto_peer, "PUT", "/buckets/shared", {"permissions": {"read": ["system.Authenticated"]}})
    kinto_request(
        kinto_peer,
        "PUT",
        "/buckets/shared/collections/notes",
        {"permissions": {"record:create": ["system.Authenticated"], "read": ["system.Authenticated"]}},
    )
    return passwords


async def test_passthrough_to_kinto_each_principal_owns_its_records(tmp_path, kinto_peer, kinto_accounts):
    """No inbound auth on loopback: the Basic credential each MCP client sends
    is forwarded as it is, so Kinto sees alice as alice and bob as bob."""
    db = tmp_path / "audit.sqlite"
    apis = f"""
[audit]
path = "{db}"

[[api]]
name = "kinto"
spec = "{KINTO_SPEC}"
base_url = "{kinto_peer.url}"
allow_writes = true
auth = {{ type = "passthrough" }}
"""
    with codemode_http(tmp_path, apis=apis) as srv:
        assert srv.wait_log("PASS-THROUGH: `kinto` forwards the `Authorization` header"), srv.log()
        assert "does NOT validate" in srv.log()
        seen = {}
        for user, pw in kinto_accounts.items():
            async with session_with(srv.url, {"Authorization": basic(user, pw)}) as s:
                r = await s.call_tool("execute", {"code": f"""async () => {{
                    const me = await kinto.request('GET /');
                    const rec = await kinto.request({{method: 'POST', path: '/buckets/shared/collections/notes/records',
                        body: {{data: {{title: 'note of {user}'}}}}}});
                    return {{user: me.data.user.id, writers: rec.data.permissions.write, status: rec.status,
                             echoed: JSON.stringify(me.headers)}};
                }}"""})
                assert not r.is_error, text_of(r)
                out = json.loads(text_of(r))
                seen[user] = out
                assert out["user"] == f"account:{user}", out
                assert out["writers"] == [f"account:{user}"], out
                assert out["status"] == 201
                for other_pw in kinto_accounts.values():
                    assert_nowhere(other_pw, text_of(r))
        # A client that forwards nothing: a clear refusal, nothing sent.
        async with session_with(srv.url, {}) as s:
            r = await s.call_tool("execute", {"code": "async () => kinto.request('GET /')"})
            assert r.is_error
            assert "PolicyError" in text_of(r) and "`Authorization` header" in text_of(r), text_of(r)
        log = srv.log()
    # Each forwarded credential is a principal of its own (named by an HMAC).
    assert log.count("principal=passthrough-") >= 2 or "passthrough-" in log, log[-2000:]
    for pw in kinto_accounts.values():
        assert_nowhere(pw, log, store_bytes(db))
        assert_nowhere(basic("alice", pw)[6:], log, store_bytes(db))


async def test_passthrough_echo_is_scrubbed_and_hostile_code_finds_nothing(tmp_path, httpbin_peer):
    """codemode's own tokens on `X-Codemode-Token` ([auth] header), the
    `Authorization` bearer forwarded to httpbin. httpbin echoes it back in
    every way it can (/bearer, /headers, /anything, /base64); the code gets
    `[REDACTED]`, and its attempts to re-encode what it sees find nothing."""
    db = tmp_path / "audit.sqlite"
    apis = f"""
[audit]
path = "{db}"

[[api]]
name = "bin"
spec = "{HTTPBIN_SPEC}"
base_url = "{httpbin_peer}"
auth = {{ type = "passthrough", header = "Authorization" }}
"""
    auth = """
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
"""
    env = {"CM_ALICE": "codemode-alice-0123456789abcdef", "CM_BOB": "codemode-bob-0123456789abcdef"}
    hostile = """async () => {
        const b = await bin.request('GET /bearer');
        const h = await bin.request('GET /headers');
        const a = await bin.request({method: 'GET', path: '/anything', query: {echo: h.data.headers.Authorization}});
        const seen = JSON.stringify([b.data, h.data, a.data]);
        console.log(seen);
        // Re-encode whatever came back, hoping the raw token is in it.
        const enc = new TextEncoder().encode(seen);
        const hex = Array.from(enc, x => x.toString(16).padStart(2, '0')).join('');
        return {token: b.data.token, auth: h.data.headers.Authorization, b64: btoa(seen), hex,
                reversed: seen.split('').reverse().join(''), authenticated: b.data.authenticated};
    }"""
    with codemode_http(tmp_path, apis=apis, auth=auth, env=env) as srv:
        assert srv.wait_log("codemode checks its own token in `X-Codemode-Token`"), srv.log()
        for name, upstream in (("alice", ALICE_TOKEN), ("bob", BOB_TOKEN)):
            headers = {"X-Codemode-Token": env[f"CM_{name.upper()}"], "Authorization": f"Bearer {upstream}"}
            async with session_with(srv.url, headers) as s:
                r = await s.call_tool("execute", {"code": hostile})
                assert not r.is_error, text_of(r)
                out = json.loads(r.content[0].text)
                assert out["authenticated"] is True  # httpbin did get a bearer
                assert out["token"] == "[REDACTED]" and out["auth"] == "Bearer [REDACTED]", out
                everything = "\n".join(c.text for c in r.content if c.type == "text")
                assert_nowhere(upstream, everything, base64.b64decode(out["b64"]).decode(), out["reversed"][::-1])
                assert_nowhere(ALICE_TOKEN if name == "bob" else BOB_TOKEN, everything)
                # An upstream error echoing it is scrubbed too.
                r = await s.call_tool("execute", {"code": "async () => bin.request({method: 'GET', path: '/status/401'})"})
                assert r.is_error and "the `Authorization` header from the MCP client (pass-through)" in text_of(r), text_of(r)
        # codemode's own token is still required: the forwarded one is not a way in.
        async with create_mcp_http_client(headers={"Authorization": f"Bearer {ALICE_TOKEN}"}) as http:
            resp = await http.post(srv.url, json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}},
                headers={"Accept": "application/json, text/event-stream"})
            assert resp.status_code == 401
        log = srv.log()
    assert "principal=alice" in log and "principal=bob" in log, log[-3000:]
    for t in (ALICE_TOKEN, BOB_TOKEN):
        assert_nowhere(t, log, store_bytes(db))


class Recorder:
    """An upstream that records the Authorization header of every request
    (the upstream's log) and answers `{"ok": true}` without echoing it."""

    def __init__(self):
        self.seen: list[tuple[str, str]] = []
        recorder = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                recorder.seen.append((self.path, self.headers.get("Authorization", "")))
                body = b'{"ok": true}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


RECORDER_SPEC = {
    "openapi": "3.0.0",
    "info": {"title": "recorder", "version": "1"},
    "paths": {"/who": {"get": {"operationId": "who", "responses": {"200": {"description": "ok"}}}}},
}


async def test_per_principal_credentials_by_name_group_file_and_command(tmp_path):
    """alice's token from a command, the ops group's from a file (0644: a
    warning), bob from the environment by name; carol (no entry, no default)
    is refused and nothing is sent for her."""
    rec = Recorder()
    try:
        spec = tmp_path / "recorder.json"
        spec.write_text(json.dumps(RECORDER_SPEC))
        (tmp_path / "alice.token").write_text("alice-cmd-token-4f2b8c1d\n")
        (tmp_path / "alice.token").chmod(0o600)
        (tmp_path / "ops.token").write_text("ops-file-token-9e0a7d3c\n")
        (tmp_path / "ops.token").chmod(0o644)
        apis = f"""
[[api]]
name = "rec"
spec = "{spec}"
base_url = "{rec.url}"

[[api.auth_for]]
principal = "alice"
auth = {{ type = "bearer", token_command = "cat alice.token" }}

[[api.auth_for]]
principal = "bob"
auth = {{ type = "bearer", token_env = "BOB_UPSTREAM" }}

[[api.auth_for]]
group = "ops"
auth = {{ type = "bearer", token_file = "ops.token" }}
"""
        auth = "\n".join(
            f'[[auth.tokens]]\nname = "{n}"\ntoken_env = "CM_{n.upper()}"\nscopes = ["*"]\ngroups = {json.dumps(g)}\n'
            for n, g in (("alice", ["ops"]), ("bob", []), ("dave", ["ops"]), ("carol", ["dev"]))
        )
        env = {f"CM_{n.upper()}": f"codemode-{n}-0123456789abcdef" for n in ("alice", "bob", "dave", "carol")}
        env["BOB_UPSTREAM"] = BOB_TOKEN
        with codemode_http(tmp_path, apis=apis, auth=auth, env=env) as srv:
            assert "readable by every user" in srv.log() and "ops.token" in srv.log(), srv.log()
            results = {}
            for n in ("alice", "bob", "dave", "carol"):
                async with session_with(srv.url, {"Authorization": f"Bearer {env[f'CM_{n.upper()}']}"}) as s:
                    r = await s.call_tool("execute", {"code": "async () => (await rec.request({method: 'GET', path: '/who', query: {n: '%s'}})).data" % n})
                    results[n] = (r.is_error, text_of(r))
            log = srv.log()
        by_path = {p.split("n=")[1]: a for p, a in rec.seen}
        # alice by name (not her group's token), dave by group, bob by name.
        assert by_path == {
            "alice": "Bearer alice-cmd-token-4f2b8c1d",
            "bob": f"Bearer {BOB_TOKEN}",
            "dave": "Bearer ops-file-token-9e0a7d3c",
        }, (rec.seen, results)
        assert results["alice"] == (False, '{"ok":true}'), results
        err, text = results["carol"]
        assert err and "PolicyError" in text and "`carol`" in text and "auth_for" in text, text
        for t in ("alice-cmd-token-4f2b8c1d", "ops-file-token-9e0a7d3c", BOB_TOKEN):
            assert_nowhere(t, log, *(t2 for _, t2 in results.values()))
    finally:
        rec.close()


def run_check(tmp_path, text: str, env: dict | None = None) -> subprocess.CompletedProcess:
    cfg = tmp_path / "check.toml"
    cfg.write_text(text)
    full = {"PATH": os.environ.get("PATH", ""), **(env or {})}
    return subprocess.run([str(BINARY), "check", "--config", str(cfg)], capture_output=True, text=True, env=full, timeout=60)


def test_a_failing_secret_command_stops_start_up_with_the_key(tmp_path):
    spec = tmp_path / "recorder.json"
    spec.write_text(json.dumps(RECORDER_SPEC))
    text = f"""
[[api]]
name = "rec"
spec = "{spec}"
base_url = "http://127.0.0.1:9"
auth = {{ type = "bearer", token_command = "echo 'vault: permission denied' >&2; exit 7" }}
"""
    o = run_check(tmp_path, text)
    assert o.returncode != 0
    assert "api[0].auth.token_command" in o.stdout and "exit status: 7" in o.stdout, o.stdout
    assert "vault: permission denied" in o.stdout, o.stdout
    # `serve` stops too, with the same words.
    cfg = tmp_path / "check.toml"
    p = subprocess.run([str(BINARY), "serve", "--config", str(cfg)], capture_output=True, text=True, timeout=60,
                       env={"PATH": os.environ.get("PATH", "")}, stdin=subprocess.DEVNULL)
    assert p.returncode == 2 and "api[0].auth.token_command" in p.stderr, p.stderr


def test_passthrough_over_stdio_is_an_error_at_check(tmp_path):
    spec = tmp_path / "recorder.json"
    spec.write_text(json.dumps(RECORDER_SPEC))
    text = f"""
[[api]]
name = "rec"
spec = "{spec}"
base_url = "http://127.0.0.1:9"
auth = {{ type = "passthrough" }}
"""
    o = run_check(tmp_path, text)
    assert o.returncode != 0
    assert "over stdio there is none" in o.stdout and "PASS-THROUGH" in o.stdout, o.stdout
    o = run_check(tmp_path, "[server]\ntransport = \"http\"\n" + text)
    assert o.returncode == 0, o.stdout
    assert "does NOT validate" in o.stdout, o.stdout
    # The inbound tokens and the forwarded header cannot be the same header.
    o = run_check(tmp_path, "[server]\ntransport = \"http\"\n[[auth.tokens]]\nname = \"a\"\nsha256 = \""
                  + hashlib.sha256(b"x").hexdigest() + "\"\nscopes = [\"*\"]\n" + text)
    assert o.returncode != 0 and "auth.header" in o.stdout and "X-Codemode-Token" in o.stdout, o.stdout
