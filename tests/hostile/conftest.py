"""Fixtures for the hostile corpus: the peers it needs (httpbin, two counting
upstreams, a hostile portal MCP server over HTTP) and the config profiles."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
from harness import BASIC_USER, HERE, SPECS, CountingServer, peers, start_echo_http, write_spec  # noqa: E402

HTTPBIN_SPEC = SPECS / "httpbin-0.10.4.spec.json"

# The main profile's limits (the corpus asserts against these numbers).
TIMEOUT = 2
MAX_REQUESTS = 5
LIMITS = {
    "timeout_secs": TIMEOUT,
    "memory_mib": 32,
    "max_requests": MAX_REQUESTS,
    "max_request_kib": 16,
    "max_response_kib": 2048,
    "request_timeout_secs": 10,
    "max_concurrent_executions": 4,
    "search_workers": 4,
}


@dataclasses.dataclass
class Ctx:
    cnt: CountingServer
    evil: CountingServer
    httpbin: str
    echo_http: str
    tmp: Path


@pytest.fixture(scope="session")
def ctx(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    cnt, evil = CountingServer(), CountingServer()
    echo_proc, echo_url = start_echo_http(tmp)
    with peers.httpbin() as hb:
        yield Ctx(cnt, evil, hb, echo_url, tmp)
    echo_proc.kill()
    cnt.close()
    evil.close()


def toml_limits(limits: dict) -> str:
    return "[limits]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in limits.items())


def main_config(ctx: Ctx, name: str, limits: dict | None = None, server: str = "", extra: str = "",
                portal: bool = True) -> Path:
    """The main profile: three APIs on the counting upstream (bearer, api-key header,
    basic), three on httpbin (same kinds), two hostile portal servers (stdio with an
    env_from canary, HTTP with headers_env canaries)."""
    spec = write_spec(ctx.tmp)
    lim = {**LIMITS, **(limits or {})}
    text = server + toml_limits(lim) + f"""
[[api]]
name = "cnt"
spec = "{spec}"
base_url = "{ctx.cnt.url}/api"
allow_writes = true
auth = {{ type = "bearer", token_env = "CM_CNT_BEARER" }}

[[api]]
name = "ro"
spec = "{spec}"
base_url = "{ctx.cnt.url}/ro"
auth = {{ type = "header", name = "X-Api-Key", value_env = "CM_RO_KEY" }}

[[api]]
name = "bas"
spec = "{spec}"
base_url = "{ctx.cnt.url}/bas"
auth = {{ type = "basic", user = "{BASIC_USER}", password_env = "CM_BAS_PW" }}

[[api]]
name = "hb"
spec = "{HTTPBIN_SPEC}"
base_url = "{ctx.httpbin}"
auth = {{ type = "bearer", token_env = "CM_HB_BEARER" }}

[[api]]
name = "hbk"
spec = "{HTTPBIN_SPEC}"
base_url = "{ctx.httpbin}"
auth = {{ type = "header", name = "X-Api-Key", value_env = "CM_HBK_KEY" }}

[[api]]
name = "hbb"
spec = "{HTTPBIN_SPEC}"
base_url = "{ctx.httpbin}"
auth = {{ type = "basic", user = "{BASIC_USER}", password_env = "CM_HBB_PW" }}
"""
    if portal:
        text += f"""
[[mcp]]
name = "echo"
command = "{sys.executable}"
args = ["{HERE / 'echo_mcp.py'}"]
env_from = {{ ECHO_SECRET = "CM_PORTAL_ENV" }}
call_timeout_secs = 30

[[mcp]]
name = "echohttp"
url = "{ctx.echo_http}"
headers_env = {{ Authorization = "CM_PORTAL_HDR", "X-Portal-Key" = "CM_PORTAL_KEY" }}
"""
    text += extra
    p = ctx.tmp / f"{name}.toml"
    p.write_text(text)
    return p


HTTP_SERVER = """[server]
transport = "http"
listen = "%LISTEN%"
max_sessions_per_principal = 1000
requests_per_minute = 0
max_concurrent_calls = 64
"""
