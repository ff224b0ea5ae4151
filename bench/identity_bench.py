#!/usr/bin/env python3
"""Added latency per nested call of a pass-through credential, as a ratio to
a static one, in one run (BENCHMARKS.md, "Identity").

One `codemode serve --transport http` with two APIs on the same loopback
upstream (a keep-alive HTTP/1.1 server answering `{"ok":true}`): `fixed`
sends a bearer token from the environment, `pass` forwards the bearer the
MCP client presents. One SDK session presents a bearer; each `execute`
makes N sequential requests to one of the two and times them inside the
sandbox (`Date.now()`), so MCP overhead is not counted. Runs alternate
(fixed, pass, fixed, …) so drift hits both alike.

    .peers/venv/bin/python bench/identity_bench.py [--calls 50] [--rounds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

ROOT = Path(__file__).resolve().parents[1]
BINARY = Path(os.environ.get("CODEMODE_BIN", ROOT / "target" / "release" / "codemode"))
SPEC = {
    "openapi": "3.0.0",
    "info": {"title": "ok", "version": "1"},
    "paths": {"/ok": {"get": {"operationId": "ok", "responses": {"200": {"description": "ok"}}}}},
}


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    up = f"http://127.0.0.1:{upstream.server_address[1]}"
    tmp = Path(tempfile.mkdtemp(prefix="codemode-identity-bench-"))
    (tmp / "ok.json").write_text(json.dumps(SPEC))
    port = free_port()
    (tmp / "codemode.toml").write_text(f"""
[server]
transport = "http"
listen = "127.0.0.1:{port}"
requests_per_minute = 0
[audit]
path = "off"
[limits]
max_requests = 1000
[[api]]
name = "fixed"
spec = "ok.json"
base_url = "{up}"
auth = {{ type = "bearer", token_env = "FIXED_TOKEN" }}
[[api]]
name = "pass"
spec = "ok.json"
base_url = "{up}"
auth = {{ type = "passthrough" }}
""")
    env = {"PATH": os.environ.get("PATH", ""), "CODEMODE_LOG": "warn", "FIXED_TOKEN": "fixed-token-0123456789abcdef"}
    log = open(tmp / "codemode.log", "w")
    proc = subprocess.Popen([str(BINARY), "serve", "--config", str(tmp / "codemode.toml")], stdout=subprocess.DEVNULL, stderr=log, env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, (tmp / "codemode.log").read_text()
            time.sleep(0.05)
        headers = {"Authorization": "Bearer client-token-0123456789abcdef"}
        async with create_mcp_http_client(headers=headers) as http:
            async with streamable_http_client(f"http://127.0.0.1:{port}/mcp", http_client=http) as (read, write):
                async with ClientSession(read, write) as s:
                    await s.initialize()
                    per_call = {"fixed": [], "pass": []}
                    for rnd in range(args.rounds + 2):
                        for api in ("fixed", "pass"):
                            code = f"""async () => {{
                                const t = Date.now();
                                for (let i = 0; i < {args.calls}; i++) {{ await {api}.request('GET /ok'); }}
                                return Date.now() - t;
                            }}"""
                            r = await s.call_tool("execute", {"code": code})
                            assert not r.is_error, r.content[0].text
                            if rnd >= 2:  # two warm-up rounds
                                per_call[api].append(float(r.content[0].text) / args.calls)
        fixed = statistics.median(per_call["fixed"])
        passed = statistics.median(per_call["pass"])
        print(json.dumps({
            "calls_per_execute": args.calls,
            "rounds": args.rounds,
            "fixed_ms_per_call_p50": round(fixed, 3),
            "passthrough_ms_per_call_p50": round(passed, 3),
            "added_ms_per_call": round(passed - fixed, 3),
            "ratio": round(passed / fixed, 3),
            "fixed_all": [round(x, 3) for x in per_call["fixed"]],
            "pass_all": [round(x, 3) for x in per_call["pass"]],
        }, indent=1))
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        upstream.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
