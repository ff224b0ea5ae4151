"""Helpers for the HTTP tests (no tests here): start the release binary with
`serve --transport http` on a free loopback port, connect the official
Python SDK to it, and run an OAuth issuer (RFC 8414 metadata + JWKS) on
loopback that signs real RS256 JWTs."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from conftest import BINARY, ROOT

from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

BOOKSHELF = ROOT / "examples" / "bookshelf.yaml"
HTTP_CLIENTS = ROOT / ".peers" / "http-clients" / "node_modules"

# The bundled example API in rehearsal mode: offline, answered from the spec.
BOOKSHELF_API = f"""
[[api]]
name = "bookshelf"
spec = "{BOOKSHELF}"
mock = true
allow_writes = true
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise TypeError(v)


def get(url: str, headers: dict | None = None, timeout: float = 5) -> tuple[int, dict, bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


class Server:
    """A running `codemode serve --transport http`."""

    def __init__(self, proc: subprocess.Popen, base: str, log_path: Path):
        self.proc = proc
        self.base = base
        self.url = base + "/mcp"
        self.log_path = log_path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    # Returns as soon as the line is there: the bound only ends a wait for
    # a line that never comes, so it is generous for a busy machine.
    def wait_log(self, needle: str, timeout: float = 60) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.log():
                return True
            time.sleep(0.05)
        return False

    def wait_calls_started(self, count: int, timeout: float = 120) -> None:
        """Waits until the server has accepted `count` tool calls in all (its
        debug line "tool call started"): the signal that a call runs, instead
        of a sleep that guesses how long a busy machine takes to get there."""
        deadline = time.monotonic() + timeout
        while self.log().count("tool call started") < count:
            assert time.monotonic() < deadline, f"fewer than {count} tool calls started:\n{self.log()}"
            time.sleep(0.02)

    def busy_ticks(self, ticks: int = 30, timeout: float = 120) -> tuple[int, float]:
        """Waits until the server's processes have used `ticks` CPU ticks and
        returns (ticks, seconds it took): how fast it burns CPU, measured over
        however long a loaded machine needs rather than a fixed second."""
        start, t0 = self.cpu_ticks(), time.monotonic()
        while self.cpu_ticks() - start < ticks:
            assert time.monotonic() - t0 < timeout, "the server used no CPU"
            time.sleep(0.05)
        return self.cpu_ticks() - start, time.monotonic() - t0

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def cpu_ticks(self) -> int:
        """CPU ticks of the server and its sandbox worker processes: the
        server's utime + stime + reaped children's (cutime + cstime), plus
        utime + stime of every live descendant."""
        def stat(pid: int) -> list[str]:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()

        fields = stat(self.proc.pid)
        total = sum(int(fields[i]) for i in (11, 12, 13, 14))
        todo, seen = [self.proc.pid], {self.proc.pid}
        while todo:
            parent = todo.pop()
            for d in Path("/proc").iterdir():
                if not d.name.isdigit() or int(d.name) in seen:
                    continue
                try:
                    f = stat(int(d.name))
                except OSError:
                    continue
                if int(f[1]) == parent:
                    seen.add(int(d.name))
                    todo.append(int(d.name))
                    total += int(f[11]) + int(f[12])
        return total

    def stop(self, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def write_http_config(
    tmp_path: Path, port: int, server: dict | None = None, auth: str = "", apis: str = BOOKSHELF_API, limits: str = ""
) -> Path:
    lines = ["[server]", 'transport = "http"', f'listen = "127.0.0.1:{port}"']
    lines += [f"{k} = {toml_value(v)}" for k, v in (server or {}).items()]
    text = "\n".join(lines) + "\n" + limits + "\n" + auth + "\n" + apis
    p = tmp_path / f"codemode-{port}.toml"
    p.write_text(text)
    return p


@contextlib.contextmanager
def codemode_http(
    tmp_path: Path,
    server: dict | None = None,
    auth: str = "",
    apis: str = BOOKSHELF_API,
    limits: str = "",
    env: dict | None = None,
    wait_ready: bool = True,
):
    """Starts the binary over HTTP with a generated config; yields a Server."""
    assert BINARY.exists(), f"build the release binary first: {BINARY}"
    port = free_port()
    cfg = write_http_config(tmp_path, port, server, auth, apis, limits)
    log_path = tmp_path / f"codemode-{port}.log"
    full_env = {"PATH": os.environ.get("PATH", ""), "CODEMODE_LOG": "info,codemode_http::calls=debug,rmcp=warn"}
    full_env.update(env or {})
    with open(log_path, "w") as log:
        proc = subprocess.Popen([str(BINARY), "serve", "--config", str(cfg)], stdout=subprocess.DEVNULL, stderr=log, env=full_env)
    s = Server(proc, f"http://127.0.0.1:{port}", log_path)
    try:
        # Start-up loads specs and starts workers: on a busy 2-core machine
        # that takes what it takes; the loop ends the moment it is ready.
        deadline = time.monotonic() + 180
        want = "/readyz" if wait_ready else "/healthz"
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"codemode exited with {proc.returncode}:\n{s.log()}")
            try:
                if get(s.base + want, timeout=1)[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"codemode did not get ready:\n{s.log()}")
            time.sleep(0.05)
        yield s
    finally:
        s.stop()


@contextlib.asynccontextmanager
async def http_session(url: str, token: str | None = None, **session_kwargs):
    """An initialised Python SDK ClientSession over Streamable HTTP (extra keyword
    arguments, such as `elicitation_callback`, go to the ClientSession)."""
    headers = {"Authorization": f"Bearer {token}"} if token else None
    async with create_mcp_http_client(headers=headers) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write, **session_kwargs) as session:
                await session.initialize()
                yield session


def text_of(result) -> str:
    return "\n".join(c.text for c in result.content if getattr(c, "type", "") == "text")


def raw_request(base: str, method: str, path: str, headers: dict, body: bytes = b"", timeout: float = 10) -> tuple[int, dict, bytes]:
    """One HTTP/1.1 exchange with exactly these headers (Host included)."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        head += f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        sock.sendall(head.encode() + body)
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = {k.lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
    return status, hdrs, rest


INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}},
}
MCP_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


def post_mcp(s: Server, body: dict, headers: dict | None = None, timeout: float = 10, query: str = "") -> tuple[int, dict, bytes]:
    req = urllib.request.Request(s.url + query, data=json.dumps(body).encode(), method="POST", headers={**MCP_HEADERS, **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def jsonrpc_of(body: bytes) -> dict:
    """The JSON-RPC response in a JSON or SSE body."""
    text = body.decode()
    if text.lstrip().startswith("{"):
        return json.loads(text)
    for line in text.splitlines():
        if line.startswith("data:") and line[5:].strip():
            v = json.loads(line[5:])
            if "id" in v:
                return v
    raise AssertionError(f"no JSON-RPC response in {text!r}")


# --- an OAuth issuer on loopback --------------------------------------------


class Issuer:
    """RFC 8414 metadata and a JWKS over HTTP; signs RS256 access tokens."""

    def __init__(self):
        from cryptography.hazmat.primitives.asymmetric import rsa

        self._rsa = rsa
        self.keys: dict[str, object] = {}  # kid -> private key
        self.published: list[str] = []  # kids in the JWKS
        self.jwks_hits = 0
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                if self.path == "/jwks":
                    issuer.jwks_hits += 1
                    body = json.dumps({"keys": [issuer.jwk(k) for k in issuer.published]}).encode()
                elif self.path == "/.well-known/oauth-authorization-server":
                    body = json.dumps({"issuer": issuer.url, "jwks_uri": issuer.url + "/jwks",
                                       "authorization_endpoint": issuer.url + "/authorize",
                                       "token_endpoint": issuer.url + "/token"}).encode()
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def new_key(self, kid: str, publish: bool = True):
        self.keys[kid] = self._rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if publish:
            self.published.append(kid)

    def jwk(self, kid: str) -> dict:
        from jwt.algorithms import RSAAlgorithm

        d = RSAAlgorithm.to_jwk(self.keys[kid].public_key(), as_dict=True)
        return {**d, "kid": kid, "use": "sig", "alg": "RS256"}

    def token(self, audience: str, kid: str = "k1", key=None, **claims) -> str:
        import jwt

        now = int(time.time())
        body = {"iss": self.url, "aud": audience, "sub": "alice", "iat": now, "exp": now + 300, **claims}
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode(body, key or self.keys[kid], algorithm="RS256", headers={"kid": kid, "typ": "at+jwt"})

    def close(self):
        self.httpd.shutdown()


def oauth_config(issuer: Issuer, **extra) -> str:
    lines = ["[auth.oauth]", f'issuer = "{issuer.url}"'] + [f"{k} = {toml_value(v)}" for k, v in extra.items()]
    return "\n".join(lines) + "\n"
