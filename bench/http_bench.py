#!/usr/bin/env python3
"""Benchmarks of `codemode serve --transport http` on loopback (for BENCHMARKS.md).

  a. trivial `execute` (`async () => 1`) round trip, one client, sequential:
     sessions (SSE answers) and stateless (JSON answers)
  b. 64 concurrent clients, each on its own keep-alive connection, for a fixed
     time: throughput, p50, p99 (stateless JSON, and sessions)
  c. memory per idle session: RSS before and after opening N sessions
  d. cost of authentication per request: `ping` p50 without auth, with a
     static token, with RS256 and ES256 JWTs (checked against a JWKS served
     on loopback)
  e. per-operation mode on Cloudflare's spec (`/mcp?codemode=false`): the whole
     tools/list (every page) on a fresh server (the list is built on first
     use) and again warm, bytes, and one per-operation call in rehearsal mode

The client is a small asyncio HTTP/1.1 client (no SDK overhead); it runs on
the same 2 cores as the server, so throughput is a floor. Needs the release
binary; section d needs pyjwt + cryptography (in .peers/venv).

    cargo build --release && .peers/venv/bin/python bench/http_bench.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BINARY = Path(os.environ.get("CODEMODE_BIN", ROOT / "target" / "release" / "codemode"))
SPEC = ROOT / "examples" / "bookshelf.yaml"
CLK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, server_toml: str = "", auth_toml: str = "", env: dict | None = None, api_toml: str | None = None):
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="codemode-http-bench-"))
        cfg = self.dir / "codemode.toml"
        cfg.write_text(
            f'[server]\ntransport = "http"\nlisten = "127.0.0.1:{self.port}"\nrequests_per_minute = 0\n'
            f"max_concurrent_calls = 0\nmax_sessions = 100000\nmax_sessions_per_principal = 100000\n{server_toml}\n"
            f'[limits]\nmax_concurrent_executions = 64\n{auth_toml}\n'
            + (api_toml or f'[[api]]\nname = "bookshelf"\nspec = "{SPEC}"\nmock = true\n')
        )
        full_env = {"PATH": os.environ.get("PATH", ""), "CODEMODE_LOG": "info,rmcp=warn", **(env or {})}
        self.log = open(self.dir / "codemode.log", "w")
        self.proc = subprocess.Popen([str(BINARY), "serve", "--config", str(cfg)], stdout=subprocess.DEVNULL,
                                     stderr=self.log, env=full_env)
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError((self.dir / "codemode.log").read_text())
            time.sleep(0.05)

    def cpu(self) -> float:
        f = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / CLK

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


class Conn:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, port: int, token: str | None = None, headers: dict | None = None, path: str = "/mcp"):
        self.port = port
        self.path = path
        self.token = token
        self.headers = headers or {}
        self.session: str | None = None

    async def open(self):
        self.r, self.w = await asyncio.open_connection("127.0.0.1", self.port)
        return self

    async def post(self, body: dict) -> tuple[int, dict, bytes]:
        data = json.dumps(body).encode()
        head = (f"POST {self.path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nContent-Type: application/json\r\n"
                f"Accept: application/json, text/event-stream\r\nContent-Length: {len(data)}\r\n")
        if self.token:
            head += f"Authorization: Bearer {self.token}\r\n"
        if self.session:
            head += f"Mcp-Session-Id: {self.session}\r\nMCP-Protocol-Version: 2025-06-18\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in self.headers.items())
        self.w.write(head.encode() + b"\r\n" + data)
        await self.w.drain()
        status_line = await self.r.readline()
        status = int(status_line.split()[1])
        headers = {}
        while True:
            line = await self.r.readline()
            if line in (b"\r\n", b""):
                break
            k, _, v = line.decode("latin-1").partition(":")
            headers[k.strip().lower()] = v.strip()
        if "content-length" in headers:
            payload = await self.r.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding") == "chunked":
            payload = b""
            while True:
                size = int((await self.r.readline()).strip(), 16)
                if size == 0:
                    await self.r.readline()
                    break
                payload += await self.r.readexactly(size)
                await self.r.readline()
        else:
            payload = b""
        return status, headers, payload

    async def initialize(self):
        status, headers, _ = await self.post({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}})
        assert status == 200, status
        self.session = headers.get("mcp-session-id")
        await self.post({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def close(self):
        self.w.close()


EXECUTE = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
           "params": {"name": "execute", "arguments": {"code": "async () => 1"}}}
PING = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
# The same call on MCP 2026-07-28: no session, everything in the request.
MODERN_META = {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {},
               "io.modelcontextprotocol/clientInfo": {"name": "bench", "version": "1"}}
EXECUTE_2026 = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                "params": {"name": "execute", "arguments": {"code": "async () => 1"}, "_meta": MODERN_META}}
HEADERS_2026 = {"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "execute"}


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


async def sequential(port: int, n: int, body: dict, session: bool, token: str | None = None,
                     headers: dict | None = None) -> list[float]:
    c = await Conn(port, token, headers).open()
    if session:
        await c.initialize()
    for _ in range(max(20, n // 10)):  # warm-up
        assert (await c.post(body))[0] == 200
    times = []
    for _ in range(n):
        t = time.perf_counter()
        status, _, payload = await c.post(body)
        times.append((time.perf_counter() - t) * 1000)
        assert status == 200 and b'"error"' not in payload[:200], payload[:300]
    c.close()
    return times


async def concurrent(port: int, clients: int, seconds: float, session: bool) -> tuple[int, list[float]]:
    conns = [await Conn(port).open() for _ in range(clients)]
    if session:
        await asyncio.gather(*(c.initialize() for c in conns))
    times: list[float] = []
    stop = time.perf_counter() + seconds

    async def loop(c: Conn):
        while time.perf_counter() < stop:
            t = time.perf_counter()
            status, _, _ = await c.post(EXECUTE)
            assert status == 200, status
            times.append((time.perf_counter() - t) * 1000)

    await asyncio.gather(*(loop(c) for c in conns))
    for c in conns:
        c.close()
    return len(times), times


def row(name: str, times: list[float], cpu_per_call_ms: float | None = None) -> str:
    cpu = f"{cpu_per_call_ms:.2f}" if cpu_per_call_ms is not None else "–"
    return (f"| {name} | {len(times)} | {pct(times, 50):.2f} | {pct(times, 90):.2f} | {pct(times, 99):.2f} | "
            f"{statistics.mean(times):.2f} | {cpu} |")


class Issuer:
    def __init__(self):
        from cryptography.hazmat.primitives.asymmetric import ec, rsa
        from jwt.algorithms import ECAlgorithm, RSAAlgorithm

        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        keys = [{**RSAAlgorithm.to_jwk(self.rsa.public_key(), as_dict=True), "kid": "rsa", "alg": "RS256"},
                {**ECAlgorithm.to_jwk(self.ec.public_key(), as_dict=True), "kid": "ec", "alg": "ES256"}]
        body = json.dumps({"keys": keys}).encode()

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def token(self, aud: str, alg: str) -> str:
        import jwt

        now = int(time.time())
        claims = {"iss": self.url, "aud": aud, "sub": "bench", "exp": now + 3600, "scope": "bookshelf:read"}
        key, kid = (self.rsa, "rsa") if alg == "RS256" else (self.ec, "ec")
        return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    n = 200 if args.quick else 1000
    secs = 3 if args.quick else 10
    sessions_n = 200 if args.quick else 1000
    out = [f"Loopback, {os.cpu_count()} cores shared by client and server; loadavg {os.getloadavg()[0]:.2f} at start.", ""]

    # a. round trip
    out += ["### a. Trivial `execute` round trip (one client, sequential)", "",
            "| mode | calls | p50 ms | p90 ms | p99 ms | mean ms | server CPU/call ms |", "|---|---:|---:|---:|---:|---:|---:|"]
    stateless = "stateless = true\njson_response = true\n"
    p50 = {}
    for name, server_toml, session, body, headers in [
        ("sessions, 2025-06-18 (SSE answer)", "", True, EXECUTE, None),
        ("stateless, 2025-06-18 (JSON answer)", stateless, False, EXECUTE, None),
        ("stateless, 2026-07-28 (JSON answer)", stateless, False, EXECUTE_2026, HEADERS_2026),
    ]:
        s = Server(server_toml)
        try:
            await sequential(s.port, 50, body, session, headers=headers)
            c0 = s.cpu()
            times = await sequential(s.port, n, body, session, headers=headers)
            cpu = (s.cpu() - c0) * 1000 / (n + max(20, n // 10))
            out.append(row(name, times, cpu))
            p50[name] = pct(times, 50)
        finally:
            s.stop()
    ratio = p50["stateless, 2026-07-28 (JSON answer)"] / p50["stateless, 2025-06-18 (JSON answer)"]
    out += ["", f"p50 of 2026-07-28 / p50 of 2025-06-18, both stateless, same run: **{ratio:.2f}**"]

    # b. 64 concurrent clients
    out += ["", f"### b. 64 concurrent clients, trivial `execute`, {secs} s", "",
            "| mode | calls | calls/s | p50 ms | p99 ms | server CPU/call ms |", "|---|---:|---:|---:|---:|---:|"]
    for name, server_toml, session in [("stateless (JSON answer)", "stateless = true\njson_response = true\n", False),
                                       ("sessions (SSE answer)", "", True)]:
        s = Server(server_toml)
        try:
            await concurrent(s.port, 64, 1, session)  # warm-up
            c0 = s.cpu()
            t0 = time.perf_counter()
            count, times = await concurrent(s.port, 64, secs, session)
            wall = time.perf_counter() - t0
            cpu = (s.cpu() - c0) * 1000 / count
            out.append(f"| {name} | {count} | {count / wall:,.0f} | {pct(times, 50):.1f} | {pct(times, 99):.1f} | {cpu:.2f} |")
        finally:
            s.stop()

    # c. memory per idle session
    s = Server()
    try:
        c = await Conn(s.port).open()
        await c.initialize()  # first session: warms allocator and code paths
        await asyncio.sleep(0.5)
        before = s.rss_kib()
        conns = []
        for i in range(0, sessions_n, 100):
            batch = [await Conn(s.port).open() for _ in range(100)]
            await asyncio.gather(*(b.initialize() for b in batch))
            for b in batch:
                b.close()  # the session stays open on the server; the TCP connection does not
            conns += batch
        await asyncio.sleep(1.0)
        after = s.rss_kib()
        out += ["", "### c. Memory per idle session", "",
                f"{sessions_n} sessions opened (initialize + initialized), connections closed, sessions left open: "
                f"RSS {before / 1024:.1f} MiB → {after / 1024:.1f} MiB, **{(after - before) / sessions_n:.1f} KiB per idle session**."]
    finally:
        s.stop()

    # d. authentication cost
    try:
        issuer = Issuer()
    except ImportError:
        out += ["", "### d. skipped: pyjwt/cryptography not installed"]
        issuer = None
    if issuer:
        static = "bench-static-token-0123456789abcdef"
        auth = (f'[[auth.tokens]]\nname = "bench"\nsha256 = "{hashlib.sha256(static.encode()).hexdigest()}"\nscopes = ["*"]\n'
                f'[auth.oauth]\nissuer = "{issuer.url}"\njwks_url = "{issuer.url}/jwks"\n')
        out += ["", "### d. Authentication cost per request (`ping`, stateless JSON, one client)", "",
                "| credential | calls | p50 ms | p90 ms | p99 ms | mean ms | server CPU/call ms |", "|---|---:|---:|---:|---:|---:|---:|"]
        plain = Server("stateless = true\njson_response = true\n")
        try:
            c0 = plain.cpu()
            times = await sequential(plain.port, n, PING, False)
            out.append(row("none (loopback, no [auth])", times, (plain.cpu() - c0) * 1000 / (n + max(20, n // 10))))
        finally:
            plain.stop()
        s = Server("stateless = true\njson_response = true\n", auth)
        try:
            aud = f"http://127.0.0.1:{s.port}/mcp"
            for name, tok in [("static token (SHA-256)", static), ("JWT RS256 (2048-bit)", issuer.token(aud, "RS256")),
                              ("JWT ES256 (P-256)", issuer.token(aud, "ES256"))]:
                await sequential(s.port, 50, PING, False, tok)
                c0 = s.cpu()
                times = await sequential(s.port, n, PING, False, tok)
                out.append(row(name, times, (s.cpu() - c0) * 1000 / (n + max(20, n // 10))))
        finally:
            s.stop()
            issuer.httpd.shutdown()

    # e. per-operation mode on Cloudflare
    cf = Path(os.environ.get("CODEMODE_SPECS_DIR", "/work/shared/specs")) / "cloudflare-2024-08-06.openapi.json"
    api = (f'[[api]]\nname = "cf"\nspec = "{cf}"\nmock = true\nallow_writes = true\n'
           'auth = { type = "bearer", token_env = "CF_TOKEN" }\n')
    runs = 3 if args.quick else 5
    cold, warm, call_times = [], [], []
    tools = pages = size = code_size = 0
    for _ in range(runs):
        s = Server("stateless = true\njson_response = true\n", env={"CF_TOKEN": "bench-token"}, api_toml=api)
        try:
            c = await Conn(s.port, path="/mcp?codemode=false").open()
            for bucket in (cold, warm):
                t = time.perf_counter()
                cursor, tools, pages, size = None, 0, 0, 0
                while True:
                    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"cursor": cursor} if cursor else {}}
                    status, _, payload = await c.post(body)
                    assert status == 200, payload[:300]
                    r = json.loads(payload)["result"]
                    tools, pages, size = tools + len(r["tools"]), pages + 1, size + len(payload)
                    cursor = r.get("nextCursor")
                    if not cursor:
                        break
                bucket.append((time.perf_counter() - t) * 1000)
            call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "cf_zones-get", "arguments": {"per_page": 5}}}
            for _ in range(20):
                await c.post(call)
            for _ in range(100):
                t = time.perf_counter()
                status, _, payload = await c.post(call)
                assert status == 200 and b'"isError":true' not in payload, payload[:300]
                call_times.append((time.perf_counter() - t) * 1000)
            c.close()
            code = await Conn(s.port).open()
            _, _, payload = await code.post({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}})
            code_size = len(payload)
            code.close()
        finally:
            s.stop()
    out += ["", f"### e. Per-operation mode on Cloudflare (`/mcp?codemode=false`, stateless JSON, {runs} fresh servers)", "",
            "| what | median ms | min ms | max ms |", "|---|---:|---:|---:|",
            f"| whole tools/list, first after start (builds the list): {tools} tools, {pages} pages | "
            f"{statistics.median(cold):.1f} | {min(cold):.1f} | {max(cold):.1f} |",
            f"| whole tools/list again (warm) | {statistics.median(warm):.1f} | {min(warm):.1f} | {max(warm):.1f} |",
            f"| one per-operation call (`cf_zones-get`, rehearsal mode), p50 of {len(call_times)} | "
            f"{pct(call_times, 50):.2f} | {min(call_times):.2f} | {max(call_times):.2f} |",
            "", f"Bytes: the whole per-operation list **{size:,}** (JSON-RPC answers, all pages) vs **{code_size:,}** for "
            f"code mode's `search` + `execute` ({size / code_size:,.0f}×)."]

    print("\n".join(out))


if __name__ == "__main__":
    if not BINARY.exists():
        sys.exit(f"build the release binary first: {BINARY}")
    asyncio.run(main())
