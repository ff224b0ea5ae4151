#!/usr/bin/env python3
"""Added latency per nested call of the identity credentials (issue 14), as
ratios to a static credential, in one run (BENCHMARKS.md, "Identity").

One `codemode serve` over HTTP with `[auth.signin]` (a real sign-in through
oidc-provider, tests/peers/oidc) and three APIs on the same loopback
upstream (a keep-alive HTTP/1.1 server answering `{"ok":true}`):

- `fixed`: a bearer token from the environment (the baseline);
- `pass`: pass-through of the `X-Upstream-Token` header the MCP client
  presents, sent upstream as `Authorization`;
- `user`: `auth = { type = "signin" }`, the signed-in user's upstream token
  (provider tokens valid for an hour, so the host's cached token is used).

One SDK session (codemode's own token, plus the pass-through header). A
round is one batch of N sequential `GET /ok` per API, back to back inside
one `execute`, in an order that rotates from round to round, timed inside
the sandbox (`Date.now()`), so MCP overhead is not counted and the three
batches of a round see the same machine (the ratios are paired per round:
on a shared machine the load changes faster than whole executes). One
warm-up execute; medians.

    .peers/venv/bin/python bench/identity_bench.py [--calls 20] [--rounds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))

import httpx2 as httpx  # noqa: E402
import test_http_helpers as h  # noqa: E402
import test_oauth_signin as signin  # noqa: E402
from mcp import ClientSession  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402
from mcp.shared._httpx_utils import create_mcp_http_client  # noqa: E402

SPEC = {
    "openapi": "3.0.0",
    "info": {"title": "ok", "version": "1"},
    "paths": {"/ok": {"get": {"operationId": "ok", "responses": {"200": {"description": "ok"}}}}},
}
APIS = ("fixed", "pass", "user")


class Ok(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall

    def do_GET(self):
        body = b'{"ok":true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def sign_in(srv) -> str:
    """A real sign-in (registration, consent, provider login) → codemode's access token."""
    redirect_uri = "http://127.0.0.1:1/cb"
    client_id = signin.register(srv, redirect_uri)
    verifier, challenge = signin.pkce()
    with httpx.Client(follow_redirects=False) as ua:
        page = signin.consent_page(ua, srv, signin.authorize_params(client_id, redirect_uri, challenge, srv))
        back = signin.finish_signin(ua, page, [f"{a}:read" for a in APIS], redirect_uri)
    r = signin.token_request(srv, grant_type="authorization_code", code=back["code"], redirect_uri=redirect_uri,
                             client_id=client_id, code_verifier=verifier)
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


ROUNDS_PER_EXECUTE = 5


async def measure(url: str, headers: dict, calls: int, rounds: int) -> dict:
    """Per round, one batch of `calls` sequential requests on each API, in
    an order that rotates, back to back inside one `execute`: the three
    batches of a round see the same machine, so their ratio is paired."""
    per_call = {a: [] for a in APIS}
    code = f"""async () => {{
        const apis = {{{", ".join(f"{a}: {a}" for a in APIS)}}};
        const names = {json.dumps(list(APIS))};
        const out = [];
        for (let r = 0; r < {ROUNDS_PER_EXECUTE}; r++) {{
            const round = {{}};
            for (let k = 0; k < names.length; k++) {{
                const name = names[(r + k) % names.length];
                const t = Date.now();
                for (let i = 0; i < {calls}; i++) {{ await apis[name].request('GET /ok'); }}
                round[name] = (Date.now() - t) / {calls};
            }}
            out.push(round);
        }}
        return out;
    }}"""
    async with create_mcp_http_client(headers=headers) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write) as s:
                await s.initialize()
                await s.call_tool("execute", {"code": code})  # warm-up (first token lookup, connections)
                rounds_done = []
                while len(rounds_done) < rounds:
                    r = await s.call_tool("execute", {"code": code})
                    assert not r.is_error, h.text_of(r)
                    rounds_done += json.loads(h.text_of(r))
    for rnd in rounds_done[:rounds]:
        for a in APIS:
            per_call[a].append(rnd[a])
    return per_call


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=20, help="requests per batch")
    ap.add_argument("--rounds", type=int, default=60, help="rounds (one batch per API each)")
    args = ap.parse_args()
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    up = f"http://127.0.0.1:{upstream.server_address[1]}"
    with tempfile.TemporaryDirectory(prefix="codemode-identity-bench-") as d:
        d = Path(d)
        spec = d / "ok.json"
        spec.write_text(json.dumps(SPEC))
        port = h.free_port()
        with signin.start_provider(d, [port], access_ttl=3600) as provider:
            auth = signin.signin_config(provider, d, access_ttl=3600).replace(
                '{ name = "echo:read", description = "read the echo service" },',
                "".join(f'{{ name = "{a}:read" }}, ' for a in APIS))
            auth = auth.replace(f'path = "{d / "audit.db"}"', 'path = "off"')
            apis = f"""
[limits]
max_requests = 1000

[[api]]
name = "fixed"
spec = "{spec}"
base_url = "{up}"
auth = {{ type = "bearer", token_env = "FIXED_TOKEN" }}

[[api]]
name = "pass"
spec = "{spec}"
base_url = "{up}"
auth = {{ type = "passthrough", header = "X-Upstream-Token", send_as = "Authorization" }}

[[api]]
name = "user"
spec = "{spec}"
base_url = "{up}"
auth = {{ type = "signin" }}
"""
            env = {"FIXED_TOKEN": "fixed-token-0123456789abcdef", "CODEMODE_LOG": "warn"}
            with signin.server_on(port, d, auth, apis, extra_env=env) as srv:
                token = sign_in(srv)
                headers = {"Authorization": f"Bearer {token}", "X-Upstream-Token": "Bearer client-token-0123456789abcdef"}
                per_call = asyncio.run(measure(srv.url, headers, args.calls, args.rounds))
    upstream.shutdown()
    med = {a: statistics.median(v) for a, v in per_call.items()}
    # Paired: each round's batch against the same round's static batch.
    paired = {a: statistics.median(x / f for x, f in zip(per_call[a], per_call["fixed"]) if f > 0)
              for a in ("pass", "user")}
    print(json.dumps({
        "calls_per_batch": args.calls,
        "rounds": args.rounds,
        "ms_per_call_p50": {a: round(v, 3) for a, v in med.items()},
        "added_ms_per_call_p50": {a: round(med[a] - med["fixed"], 3) for a in ("pass", "user")},
        "ratio_to_fixed_paired_p50": {a: round(v, 3) for a, v in paired.items()},
        "all": {a: [round(x, 3) for x in v] for a, v in per_call.items()},
    }, indent=1))


if __name__ == "__main__":
    main()
