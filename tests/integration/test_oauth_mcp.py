"""OAuth to upstream MCP servers, end to end with real components: an OpenID
provider (npm `oidc-provider`, the shared tests/peers/oidc/server.mjs), an
upstream MCP server that requires its tokens (the official Python SDK's
resource-server support, oauth_mcp/tickets_mcp.py), the release binary's
`codemode login` driven by a headless user agent that posts the provider's
sign-in and consent forms, and `codemode serve` driven by the Python SDK.

Checked: sign-in (discovery from the 401, dynamic registration, PKCE, the
loopback redirect), calls through `execute` as the signed-in user, refresh
before expiry (short access-token lifetime), revocation -> a clear
model-facing error and no reconnect loop, the client credentials grant, and
that no token reaches a result, an error, the logs, the audit store or the
token file in clear.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import anyio
import pytest
import requests

from conftest import BINARY, ROOT, mcp_session, text_of, write_config

pytestmark = pytest.mark.anyio

HERE = Path(__file__).resolve().parent / "oauth_mcp"
VENV_PYTHON = ROOT / ".peers" / "venv" / "bin" / "python"
OIDC_DIR = Path(os.environ.get("OIDC_PROVIDER_DIR", ROOT / ".peers" / "oidc"))
SERVER_MJS = ROOT / "tests" / "peers" / "oidc" / "server.mjs"
TTL = 6  # seconds an access token lives: long enough for one call, short enough to see refreshes
SCOPES = "tickets:read tickets:write"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, what: str, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not answer at {url} within {timeout}s")


def provider_config(resource: str, m2m_secret: str, **extra) -> dict:
    """tests/peers/oidc/server.mjs's config for these tests: dynamic
    registration, PKCE, resource indicators (opaque tokens for the MCP
    server), refresh tokens, introspection (the MCP server's token
    verifier), revocation, client credentials, the test revoke route."""
    return {
        "clients": [
            # The MCP server itself, to introspect tokens.
            {"client_id": "tickets-rs", "client_secret": "rs-secret-0123456789abcdef",
             "grant_types": [], "response_types": [], "redirect_uris": []},
            # A machine client (client credentials).
            {"client_id": "m2m", "client_secret": m2m_secret, "grant_types": ["client_credentials"],
             "response_types": [], "redirect_uris": [], "scope": SCOPES,
             "token_endpoint_auth_method": "client_secret_post"},
        ],
        "scopes": ["openid", "offline_access", "tickets:read", "tickets:write"],
        "ttl": {"AccessToken": TTL, "ClientCredentials": TTL, "RefreshToken": 24 * 3600, "Grant": 24 * 3600,
                "Session": 24 * 3600, "AuthorizationCode": 60},
        "features": {"registration": {"enabled": True}, "introspection": {"enabled": True},
                     "clientCredentials": {"enabled": True}},
        "resource": {"url": resource, "scope": SCOPES, "ttl": TTL},
        "test_routes": True,
        **extra,
    }


@contextlib.contextmanager
def peers(tmp_path: Path, m2m_secret: str = "m2m-secret-0123456789abcdef", **provider_extra):
    """The provider and the OAuth-protected MCP server on free loopback ports."""
    assert (OIDC_DIR / "node_modules" / "oidc-provider").exists(), f"run tests/peers/setup.sh (oidc-provider in {OIDC_DIR})"
    p_port, m_port = free_port(), free_port()
    issuer, resource = f"http://127.0.0.1:{p_port}", f"http://127.0.0.1:{m_port}/mcp"
    log = tmp_path / "tickets.log"
    cfg = tmp_path / "provider.json"
    cfg.write_text(json.dumps(provider_config(resource, m2m_secret, **provider_extra)))
    plog = open(tmp_path / "provider.log", "w")
    env = {**os.environ, "OIDC_PROVIDER_DIR": str(OIDC_DIR)}
    procs = []
    try:
        prov = subprocess.Popen(["node", str(SERVER_MJS), "--port", str(p_port), "--config", str(cfg)],
                                stdout=subprocess.DEVNULL, stderr=plog, text=True, env=env, start_new_session=True)
        procs.append(prov)
        wait_http(f"{issuer}/.well-known/openid-configuration", prov, "oidc-provider")
        mcp = subprocess.Popen([str(VENV_PYTHON), str(HERE / "tickets_mcp.py"), str(m_port), issuer, str(log)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
        procs.append(mcp)
        wait_http(f"http://127.0.0.1:{m_port}/.well-known/oauth-protected-resource/mcp", mcp, "tickets MCP server")
        yield {"issuer": issuer, "url": resource, "log": log, "provider_log": tmp_path / "provider.log"}
    finally:
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, 15)
        for p in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=10)
        plog.close()


def provider_events(path: Path) -> list[dict]:
    """What the provider logged (one JSON object a line)."""
    out = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
    return out


def verified(log: Path) -> list[dict]:
    """The MCP server's record of each token it checked."""
    return [json.loads(l) for l in log.read_text().splitlines()] if log.exists() else []


def raw_tokens(log: Path) -> set[str]:
    p = Path(str(log) + ".raw")
    return set(p.read_text().split()) if p.exists() else set()


def form(html: str, base: str) -> tuple[str, dict]:
    """The one form of an oidc-provider interaction page: its action and hidden fields."""
    action = re.search(r'<form[^>]*action="([^"]+)"', html)
    assert action, f"no form on the page: {html[:500]}"
    fields = dict(re.findall(r'<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"', html))
    return urllib.parse.urljoin(base, action.group(1)), fields


def user_agent_signs_in(auth_url: str, user: str = "alice") -> requests.Response:
    """A browser-free user agent: follows the authorization URL, posts the
    provider's sign-in form, then its consent form, and follows the redirect
    back to codemode's loopback listener."""
    s = requests.Session()
    r = s.get(auth_url, timeout=30)
    for _ in range(4):
        if not r.url.startswith(auth_url.split("/auth")[0]) or "<form" not in r.text:
            return r
        action, fields = form(r.text, r.url)
        if fields.get("prompt") == "login":
            fields.update({"login": user, "password": "any"})
        r = s.post(action, data=fields, timeout=30)
    return r


def config(tmp_path: Path, url: str, auth: str) -> Path:
    return write_config(tmp_path, f"""
[audit]
path = "{tmp_path / 'audit.db'}"

[[mcp]]
name = "tickets"
url = "{url}"
auth = {auth}
""")


def run_login(cfg: Path, env: dict) -> tuple[int, str, str]:
    """`codemode login tickets`: reads the URL it prints, signs in headless."""
    proc = subprocess.Popen([str(BINARY), "login", "tickets", "-c", str(cfg), "--timeout-secs", "60"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("http"):
            page = user_agent_signs_in(line.strip())
            assert page.status_code == 200 and "Signed in" in page.text, (page.status_code, page.url, page.text[:300])
            break
    out, err = proc.communicate(timeout=60)
    return proc.returncode, "".join(lines) + out, err


def env_for(tmp_path: Path, **extra) -> dict:
    return {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "CODEMODE_DATA_DIR": str(tmp_path / "data"),
            "CODEMODE_LOG": "info,rmcp=warn", **extra}


def value(text: str):
    """A result's value: JSON, or a string result as the text it is."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


async def execute(session, code: str):
    r = await session.call_tool("execute", {"code": code})
    return r, text_of(r)


async def test_sign_in_calls_refresh_revocation_and_no_token_leaks(tmp_path):
    assert BINARY.exists(), f"build the release binary first: {BINARY}"
    with peers(tmp_path) as p:
        cfg = config(tmp_path, p["url"], '{ type = "oauth" }')
        env = env_for(tmp_path)

        # Before anyone signed in: `check` says what to run.
        c = subprocess.run([str(BINARY), "check", "-c", str(cfg)], capture_output=True, text=True, env=env, timeout=60)
        assert c.returncode != 0 and "needs sign-in" in c.stdout and "codemode login tickets" in c.stdout, c.stdout

        errlog = open(tmp_path / "serve.log", "w")
        async with mcp_session(["--config", str(cfg)], env=env, errlog=errlog) as s:
            # Not signed in: status and calls say so, in the model's words, and nothing loops.
            r = await s.call_tool("search", {"code": "async () => codemode.status()"})
            status = json.loads(text_of(r))
            assert status[0]["state"] == "needs_sign_in" and "codemode login tickets" in status[0]["error"], status
            r, t = await execute(s, "async () => await codemode.tickets_list_tickets({})")
            assert "codemode login tickets" in t, t
            await anyio.sleep(1.5)
            assert verified(p["log"]) == [], "codemode sent requests without a token"

            # A person signs in (in another process) while serve runs.
            rc, out, err = await anyio.to_thread.run_sync(run_login, cfg, env)
            assert rc == 0, (out, err)
            assert "signed in to `tickets`" in out and "tickets:read" in out and "encrypted" in out, out
            assert "refreshes it" in out, out

            # serve notices the new token file (it looks every second, without
            # network) and connects; then calls run as alice.
            for _ in range(100):
                r = await s.call_tool("search", {"code": "async () => codemode.status()[0].state"})
                if value(text_of(r)) == "ready":
                    break
                await anyio.sleep(0.1)
            assert value(text_of(r)) == "ready", text_of(r)
            r, t = await execute(s, "async () => await codemode.tickets_list_tickets({})")
            assert not r.is_error, t
            body = json.loads(t)
            assert body["caller"] == "alice" and "tickets:read" in body["scopes"], body
            first = {v["sha256"] for v in verified(p["log"])}

            # Past the access token's lifetime: refreshed before expiry, so the
            # upstream never saw an expired token.
            await anyio.sleep(TTL + 1)
            r, t = await execute(s, "async () => (await codemode.tickets_list_tickets({})).caller")
            assert not r.is_error and value(t) == "alice", t
            seen = verified(p["log"])
            assert len({v["sha256"] for v in seen}) > len(first), "no new access token after the old one expired"
            assert all(v["active"] for v in seen), [v for v in seen if not v["active"]]

            # A hostile upstream echoes the token: raw, as a header, base64, hex, in an error.
            r, echoed = await execute(s, "async () => await codemode.tickets_echo_credentials({})")
            assert not r.is_error and "[REDACTED]" in echoed, echoed
            r, failed = await execute(s, "async () => await codemode.tickets_fail_with_credentials({})")
            assert "bad token" in failed, failed
            r, status_text = await execute(s, "async () => 1")

            # Revocation (an admin ends every grant): the next call says to sign in again.
            assert requests.post(f"{p['issuer']}/__test/revoke", timeout=10).json()["revoked"] >= 1
            r, t = await execute(s, "async () => await codemode.tickets_list_tickets({})")
            assert "needs sign-in" in t and "codemode login tickets" in t, t
            r = await s.call_tool("search", {"code": "async () => codemode.status()[0]"})
            st = json.loads(text_of(r))
            assert st["state"] == "needs_sign_in", st
            # Parked, not looping: after the old session's goodbye (its DELETE)
            # the upstream hears nothing more, though the portal would have
            # retried within 0.25 s, 0.5 s, 1 s… on an ordinary failure.
            await anyio.sleep(1)
            n = len(verified(p["log"]))
            await anyio.sleep(3)
            assert len(verified(p["log"])) == n, "codemode kept retrying a server that needs sign-in"
            outputs = [echoed, failed, status_text, t, json.dumps(st)]
        errlog.close()

        tokens = raw_tokens(p["log"])
        assert len(tokens) >= 2, tokens
        store = list((tmp_path / "data" / "oauth").glob("*.tokens"))
        assert len(store) == 1
        places = {
            "results": "\n".join(outputs),
            "serve log": (tmp_path / "serve.log").read_text(),
            "login output": out + err,
            "token file": store[0].read_text(),
            "audit store": b"".join(f.read_bytes() for f in tmp_path.glob("audit.db*")).decode("latin-1"),
        }
        for tok in tokens:
            forms = [tok, base64.b64encode(tok.encode()).decode()[:-4], tok.encode().hex()]
            for where, text in places.items():
                for f in forms:
                    assert f not in text, f"a token reached the {where}"
        assert "needs sign-in" in places["serve log"]


async def test_client_credentials_machine_to_machine(tmp_path):
    assert BINARY.exists(), f"build the release binary first: {BINARY}"
    with peers(tmp_path) as p:
        auth = '{ type = "oauth", grant = "client_credentials", client_id = "m2m", client_secret_env = "M2M_SECRET", scopes = ["tickets:read"] }'
        cfg = config(tmp_path, p["url"], auth)
        env = env_for(tmp_path, M2M_SECRET="m2m-secret-0123456789abcdef")
        c = subprocess.run([str(BINARY), "check", "-c", str(cfg)], capture_output=True, text=True, env=env, timeout=60)
        assert c.returncode == 0, c.stdout + c.stderr
        async with mcp_session(["--config", str(cfg)], env=env) as s:
            r, t = await execute(s, "async () => await codemode.tickets_list_tickets({})")
            assert not r.is_error, t
            assert json.loads(t)["caller"] == "m2m", t
            # No refresh token for this grant: a new token before the old one expires.
            await anyio.sleep(TTL + 1)
            r, t = await execute(s, "async () => (await codemode.tickets_list_tickets({})).caller")
            assert not r.is_error and value(t) == "m2m", t
            seen = verified(p["log"])
            assert len({v["sha256"] for v in seen}) >= 2 and all(v["active"] for v in seen), seen
            r, echoed = await execute(s, "async () => await codemode.tickets_echo_credentials({})")
            for tok in raw_tokens(p["log"]):
                assert tok not in echoed and base64.b64encode(tok.encode()).decode()[:-4] not in echoed
        assert not list((tmp_path / "data").glob("**/*.tokens")), "client credentials tokens are not stored"

        # A wrong secret: a clear error that names the fix, and no retry loop.
        env = env_for(tmp_path, M2M_SECRET="wrong-secret-0123456789")
        async with mcp_session(["--config", str(cfg)], env=env) as s:
            r = await s.call_tool("search", {"code": "async () => codemode.status()[0]"})
            st = json.loads(text_of(r))
            assert st["state"] == "needs_sign_in" and "client credentials" in st["error"], st
            assert "wrong-secret" not in json.dumps(st)


async def wait_ready(session) -> None:
    """Until the portal reports the server ready (it connects in the background)."""
    for _ in range(300):
        r = await session.call_tool("search", {"code": "async () => codemode.status()[0].state"})
        if value(text_of(r)) == "ready":
            return
        await anyio.sleep(0.1)
    raise AssertionError(f"the server never became ready: {text_of(r)}")


async def test_two_processes_share_one_sign_in_and_refresh_in_turn(tmp_path):
    """Two `codemode serve` processes on one token file, against a provider
    that rotates refresh tokens (a reused one revokes the whole grant) and
    answers refreshes late, so the two refreshes overlap. The file lock
    makes the second refresher wait, re-read the file and use the first
    one's new refresh token: both end with a working token, the grant alive."""
    assert BINARY.exists(), f"build the release binary first: {BINARY}"
    delay_ms = 1500
    with peers(tmp_path, rotate_refresh_tokens=True, refresh_delay_ms=delay_ms) as p:
        cfg = config(tmp_path, p["url"], '{ type = "oauth" }')
        env = env_for(tmp_path)
        rc, out, err = await anyio.to_thread.run_sync(run_login, cfg, env)
        assert rc == 0, (out, err)
        logs = [open(tmp_path / f"serve-{i}.log", "w") for i in range(2)]
        callers = {}
        async with mcp_session(["--config", str(cfg)], env=env, errlog=logs[0]) as a, \
                mcp_session(["--config", str(cfg)], env=env, errlog=logs[1]) as b:
            await wait_ready(a)
            await wait_ready(b)
            # Past the lifetime of whatever token is in the file now: the next
            # call of each process has to refresh first, and both start together.
            await anyio.sleep(TTL + 1)

            async def call(name, s):
                r, t = await execute(s, "async () => (await codemode.tickets_list_tickets({})).caller")
                callers[name] = (r.is_error, t)

            async with anyio.create_task_group() as tg:
                tg.start_soon(call, "a", a)
                tg.start_soon(call, "b", b)
            assert callers == {"a": (False, "alice"), "b": (False, "alice")}, callers
            # The grant is alive: both still work afterwards.
            for s in (a, b):
                r, t = await execute(s, "async () => (await codemode.tickets_list_tickets({})).caller")
                assert not r.is_error and value(t) == "alice", t
        for f in logs:
            f.close()
        events = provider_events(p["provider_log"])
        refreshes = [e for e in events if e["event"] == "refresh"]
        assert len(refreshes) >= 2, f"both processes should have refreshed: {refreshes}"
        assert all(e["status"] == 200 for e in refreshes), f"a refresh was refused (a reused refresh token?): {refreshes}"
        assert not [e for e in events if e["event"].startswith("grant.revoked")], "the provider revoked the grant"
        # Taken in turn: each refresh began after the one before it was answered.
        at = sorted(e["at"] for e in refreshes)
        assert all(later - earlier >= delay_ms - 50 for earlier, later in zip(at, at[1:])), at
        assert all(v["active"] for v in verified(p["log"])), "the MCP server saw a dead token"
