"""Machinery for the hostile corpus (no tests here).

- `Canaries`: the secret values configured for every auth kind (API and
  portal) and a detector that finds them in any encoding.
- `CountingServer`: a tiny HTTP upstream on loopback that records every
  request (so a test can tell "refused, nothing sent" from "sent") and can
  echo the credential it received in many encodings, redirect, or stall.
- `Codemode`: one long-lived `codemode serve` (stdio or HTTP) driven by the
  official Python MCP SDK from asyncio tasks; restartable when a call hangs,
  so one hung case does not take every later case down with it.
- `run_cases`: runs corpus cases concurrently against a server and records,
  for each, the hostile call's outcome, timing, the benign call after it and
  what the counting servers saw.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import dataclasses
import gzip
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
BINARY = Path(os.environ.get("CODEMODE_BIN", ROOT / "target" / "release" / "codemode"))
SPECS = Path(os.environ.get("CODEMODE_SPECS_DIR", ROOT.parent / "shared" / "specs"))
sys.path.insert(0, str(ROOT / "tests" / "peers"))

import peers  # noqa: E402

from mcp import ClientSession  # noqa: E402
from mcp.client.stdio import StdioServerParameters, stdio_client  # noqa: E402

# How many hostile calls run at once (the machine has 2 cores shared with other work).
JOBS = int(os.environ.get("HOSTILE_JOBS", "3"))
# A call that has not answered this long after its deadline is declared hung: the
# case fails and the server is restarted so later cases are judged on their own.
HANG_GRACE = float(os.environ.get("HOSTILE_HANG_GRACE", "4"))
SLACK = 0.25  # every limit ends the call within limit + 250 ms
BENIGN_WITHIN = 1.0

# --------------------------------------------------------------------------- canaries

BASIC_USER = "hostile-user"
CANARIES = {
    # env var -> value. Mixed case, a length that is not a multiple of 3, and
    # (for some) '/', '+' so JSON `\/` escaping and percent-encoding matter.
    "CM_CNT_BEARER": "cnryBearerQ7fV2kP9xW4mZ1sR8tY3uLw",
    "CM_RO_KEY": "cnryApiKey-H5jN8bV3cX6zA9sD2fG4hJ",
    "CM_BAS_PW": "cnryBasicPw/T4rE7wQ1yU8+iO5pL2kM",
    "CM_HB_BEARER": "cnryHbBearer8Kq3Zm5Xw2Nv7Pr4Ts9Y",
    "CM_HBK_KEY": "cnryHbKey-Ld6Fj1Hs4Ga8Kq2We5Rt7Yx",
    "CM_HBB_PW": "cnryHbBasicPw9Qw2Er4Ty6Ui8Op1As3",
    "CM_PORTAL_ENV": "cnryPortalEnv-Zx3Cv5Bn7Mq9Wr2Ty4U",
    "CM_PORTAL_HDR": "Bearer cnryPortalHdr-Gh6Jk8Lm1Np3Qr5",
    "CM_PORTAL_KEY": "cnryPortalKey/Vb2Nm4Qw6Er8Ty1Ui3O",
    # Not read from the environment: test_reload_apart writes them into a
    # token file, rotating the first for the second at a reload.
    "CM_ROT_OLD": "cnryRotOld-Qa4Ws6Ed8Rf1Tg3Yh5Uj",
    "CM_ROT_NEW": "cnryRotNew-Ik7Ol9Pz2Xs4Cd6Vf8Bg",
}


# Credentials an MCP client presents over HTTP for pass-through (not in any
# environment: the client sends them on its requests), label -> value.
PRESENTED = {
    "PT_BEARER": "cnryPresentedBearer-Wq4Er7Ty2Ui9Op3As6Dk",
}


def secret_forms() -> dict[str, bytes]:
    """Every byte string whose appearance (in any encoding) is a leak, with a label."""
    forms: dict[str, bytes] = {}
    for env, v in {**CANARIES, **PRESENTED}.items():
        forms[env] = v.encode()
    forms["PT_BEARER:header"] = f"Bearer {PRESENTED['PT_BEARER']}".encode()
    for env in ("CM_CNT_BEARER", "CM_HB_BEARER"):
        forms[env + ":header"] = f"Bearer {CANARIES[env]}".encode()
    for env in ("CM_BAS_PW", "CM_HBB_PW"):
        up = f"{BASIC_USER}:{CANARIES[env]}".encode()
        forms[env + ":userpass"] = up
        forms[env + ":header"] = b"Basic " + base64.b64encode(up)
    forms["CM_PORTAL_HDR:token"] = CANARIES["CM_PORTAL_HDR"].split(" ", 1)[1].encode()
    return forms


def _b64_cores(data: bytes, urlsafe: bool) -> list[str]:
    """For each alignment (0-2 bytes before `data`), the base64 characters that
    depend only on `data`'s bytes: whatever surrounds it, these appear."""
    out = []
    enc = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    for k in range(3):
        full = enc(b"\0" * k + data).decode().rstrip("=")
        start = -(-8 * k // 6)  # first 6-bit group starting inside data
        end = (8 * (k + len(data))) // 6  # groups ending inside data
        core = full[start:end]
        if len(core) >= 12:
            out.append(core)
    return out


def _needles() -> list[tuple[str, str, bool]]:
    """(label, needle, case_insensitive)."""
    out = []
    for label, b in secret_forms().items():
        s = b.decode()
        out.append((label + " raw", s, True))
        # any 16-character window of the raw value (a leak cut short is still a leak)
        if len(s) > 20:
            for i in range(0, len(s) - 16, 4):
                out.append((label + " raw-part", s[i:i + 16], False))
        for core in _b64_cores(b, False):
            out.append((label + " base64", core, False))
        for core in _b64_cores(b, True):
            out.append((label + " base64url", core, False))
        out.append((label + " hex", b.hex(), True))
        out.append((label + " percent", "".join(f"%{c:02x}" for c in b), True))
        q = urllib.parse.quote(s, safe="")
        if q != s:
            out.append((label + " urlquote", q, True))
    return out


NEEDLES = _needles()
_U_ESC = re.compile(r"\\u([0-9a-fA-F]{4})")
_X_ESC = re.compile(r"\\x([0-9a-fA-F]{2})")


def _unescape(text: str) -> str:
    t = text
    for _ in range(3):  # nested JSON-in-JSON
        t2 = _U_ESC.sub(lambda m: chr(int(m.group(1), 16)), t)
        t2 = _X_ESC.sub(lambda m: chr(int(m.group(1), 16)), t2)
        t2 = t2.replace("\\/", "/").replace('\\"', '"').replace("\\\\", "\\")
        if t2 == t:
            break
        t = t2
    return t


_B64_RUN = re.compile(r"[A-Za-z0-9+/]{16,}={0,2}")


def _inflated(text: str) -> list[str]:
    """Whatever compressed data (gzip, zlib, raw deflate) sits base64-encoded
    in `text`, decompressed: code can inflate bytes in JavaScript, so a
    credential inside compressed bytes the code received is a leak."""
    out = []
    for m in _B64_RUN.finditer(text):
        with contextlib.suppress(Exception):
            raw = base64.b64decode(m.group(0) + "=" * (-len(m.group(0)) % 4))
            for wbits in (31, 15, -15):  # gzip, zlib, raw deflate
                with contextlib.suppress(Exception):
                    out.append(zlib.decompressobj(wbits).decompress(raw, 1 << 22).decode("latin-1"))
                    break
    return out


def leaks(text: str) -> list[str]:
    """Labels of every canary form found in `text` (raw, base64 at every alignment,
    base64url, hex, percent; also after undoing JSON/percent escapes, and inside
    base64-encoded compressed data)."""
    if not text:
        return []
    variants = [text, _unescape(text), *_inflated(text)]
    with contextlib.suppress(Exception):
        variants.append(urllib.parse.unquote(variants[1]))
    found = []
    lowered = [v.lower() for v in variants]
    for label, needle, ci in NEEDLES:
        hay = lowered if ci else variants
        n = needle.lower() if ci else needle
        if any(n in h for h in hay):
            found.append(label)
    return sorted(set(found))


# --------------------------------------------------------------------------- counting upstream


@dataclasses.dataclass
class Hit:
    method: str
    path: str
    headers: list
    body: bytes

    def text(self) -> str:
        return f"{self.method} {self.path}\n" + "\n".join(f"{k}: {v}" for k, v in self.headers) + "\n" + self.body.decode("latin-1")


def _credential(prefix: str, headers) -> tuple[str, str]:
    """(the secret itself, the full header value) as the counting server received them."""
    h = {k.lower(): v for k, v in headers.items()}
    if prefix == "/ro":
        v = h.get("x-api-key", "")
        return v, v
    auth = h.get("authorization", "")
    if auth.startswith("Bearer "):
        return auth[7:], auth
    if auth.startswith("Basic "):
        with contextlib.suppress(Exception):
            return base64.b64decode(auth[6:]).decode().split(":", 1)[1], auth
    return auth, auth


def leak_response(enc: str, cred: str, full: str):
    """(status, headers, body) echoing `cred` encoded as `enc`."""
    j = "application/json"
    b = cred.encode()
    if enc == "json":
        return 200, {"Content-Type": j}, json.dumps({"echo": cred}).encode()
    if enc == "json-u-all":
        return 200, {"Content-Type": j}, ('{"echo": "' + "".join(f"\\u{ord(c):04x}" for c in cred) + '"}').encode()
    if enc == "json-u-one":
        return 200, {"Content-Type": j}, ('{"echo": "' + cred[:5] + f"\\u{ord(cred[5]):04x}" + cred[6:] + '"}').encode()
    if enc == "json-slash":
        return 200, {"Content-Type": j}, ('{"echo": "' + cred.replace("/", "\\/").replace("-", "\\u002d") + '"}').encode()
    if enc == "text":
        return 200, {"Content-Type": "text/plain"}, b"token=" + b + b"\n"
    if enc.startswith("b64-"):
        k = int(enc[4:])
        return 200, {"Content-Type": j}, json.dumps({"b64": base64.b64encode(b"x" * k + b).decode()}).encode()
    if enc == "b64-hdr":
        return 200, {"Content-Type": j}, json.dumps({"b64": base64.b64encode(full.encode()).decode()}).encode()
    if enc.startswith("b64url-"):
        k = int(enc[7:])
        return 200, {"Content-Type": j}, json.dumps({"b64": base64.urlsafe_b64encode(b"y" * k + b).decode().rstrip("=")}).encode()
    if enc == "hex":
        return 200, {"Content-Type": j}, json.dumps({"hex": b.hex()}).encode()
    if enc == "HEX":
        return 200, {"Content-Type": j}, json.dumps({"hex": b.hex().upper()}).encode()
    if enc == "pct":
        return 200, {"Content-Type": j}, json.dumps({"pct": "".join(f"%{c:02X}" for c in b)}).encode()
    if enc == "hdr-value":
        return 200, {"Content-Type": j, "X-Echo": cred}, b"{}"
    if enc == "hdr-name":
        safe = re.sub(r"[^A-Za-z0-9-]", "-", cred)
        return 200, {"Content-Type": j, f"X-{safe}": "1", f"X-{cred.replace('/', '-')}-b": "1"}, b"{}"
    if enc == "location":
        return 302, {"Location": "/outside/?t=" + urllib.parse.quote(cred, safe=""), "X-Loc": cred}, b""
    if enc in ("400", "403", "401", "500"):
        hdrs = {"Content-Type": j}
        if enc == "401":
            hdrs["WWW-Authenticate"] = f'Bearer realm="{cred}"'
        return int(enc), hdrs, json.dumps({"error": f"bad credential {cred}", "got": full}).encode()
    if enc == "set-cookie":
        return 200, {"Content-Type": j, "Set-Cookie": f"sid={cred}; Path=/; HttpOnly"}, b"{}"
    if enc == "gzip":
        return 200, {"Content-Type": j, "Content-Encoding": "gzip"}, gzip.compress(json.dumps({"echo": cred}).encode())
    return 404, {"Content-Type": j}, b'{"error":"unknown encoding"}'


class CountingServer:
    """Loopback HTTP server that records every request and answers:

    - `<prefix>/slow`: after 10 s
    - `<prefix>/redir?to=URL&code=302`: a redirect
    - `<prefix>/leak/<enc>`: the credential it received, encoded (see `leak_response`)
    - anything else: 200 `{"ok": true, "method", "path"}`
    """

    def __init__(self):
        self.hits: list[Hit] = []
        self.lock = threading.Lock()
        srv = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                with srv.lock:
                    srv.hits.append(Hit(self.command, self.path, list(self.headers.items()), body))
                u = urllib.parse.urlsplit(self.path)
                path = u.path
                prefix = next((p for p in ("/api", "/ro", "/bas") if path.startswith(p + "/")), "")
                rest = path[len(prefix):]
                q = dict(urllib.parse.parse_qsl(u.query))
                status, hdrs, out = 200, {"Content-Type": "application/json"}, None
                if rest == "/slow":
                    time.sleep(10)
                elif rest == "/redir":
                    status, hdrs, out = int(q.get("code", "302")), {"Location": q.get("to", "/")}, b""
                elif rest.startswith("/leak/") and prefix:
                    cred, full = _credential(prefix, self.headers)
                    status, hdrs, out = leak_response(rest[6:], cred, full)
                if out is None:
                    out = json.dumps({"ok": True, "method": self.command, "path": self.path}).encode()
                self.send_response(status)
                for k, v in hdrs.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(out)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _any
            do_TRACE = do_CONNECT = do_PROPFIND = _any

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.host}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def marked(self, marker: str) -> list[Hit]:
        with self.lock:
            return [h for h in self.hits if marker in h.text()]

    def close(self):
        self.httpd.shutdown()


MINIMAL_SPEC = {
    "openapi": "3.0.3",
    "info": {"title": "counting upstream", "version": "1"},
    "paths": {
        "/items": {"get": {"operationId": "listItems", "responses": {"200": {"description": "ok"}}}},
        "/items/{id}": {"get": {"operationId": "getItem", "parameters": [
            {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Node"}}}}}}},
        "/once/{id}": {"post": {"operationId": "once", "parameters": [
            {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": {"description": "ok"}}}},
    },
    "components": {"schemas": {"Node": {"type": "object", "properties": {
        "name": {"type": "string"}, "next": {"$ref": "#/components/schemas/Node"}}}}},
}


def write_spec(directory: Path, name: str = "cnt.json") -> Path:
    p = directory / name
    p.write_text(json.dumps(MINIMAL_SPEC))
    return p


# --------------------------------------------------------------------------- a portal echo server over HTTP


def start_echo_http(tmp: Path):
    """Starts tests/hostile/echo_mcp.py --http on a free port; returns (proc, url)."""
    port = peers.free_port()
    log = open(tmp / f"echo-http-{port}.log", "wb")
    proc = subprocess.Popen([sys.executable, str(HERE / "echo_mcp.py"), "--http", str(port)],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"http://127.0.0.1:{port}/mcp"
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("echo MCP HTTP server did not start")


# --------------------------------------------------------------------------- codemode


def proc_tree(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                ppid = int(Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def rss_kib(pid: int, exclude: tuple[str, ...] = ("python", "node")) -> int:
    """Resident memory of a process plus its descendants (sandbox worker
    processes), but not portal upstreams it started (python/node). Each
    process counts its Pss (proportional set size, /proc/PID/smaps_rollup):
    the workers all map the same binary, and summing their VmRSS would count
    those shared pages once per worker — a replaced worker that has touched
    other code pages would look like growth that is not memory. Falls back
    to VmRSS where smaps_rollup is missing."""
    total = 0
    for p in proc_tree(pid):
        with contextlib.suppress(OSError, StopIteration):
            status = Path(f"/proc/{p}/status").read_text()
            name = next(l.split()[1] for l in status.splitlines() if l.startswith("Name:"))
            if p != pid and any(name.startswith(x) for x in exclude):
                continue
            try:
                rollup = Path(f"/proc/{p}/smaps_rollup").read_text()
                total += next(int(l.split()[1]) for l in rollup.splitlines() if l.startswith("Pss:"))
            except (OSError, StopIteration):
                total += next(int(l.split()[1]) for l in status.splitlines() if l.startswith("VmRSS:"))
    return total


def find_pid(needle: str) -> int | None:
    for d in os.listdir("/proc"):
        if d.isdigit():
            with contextlib.suppress(OSError):
                cmd = Path(f"/proc/{d}/cmdline").read_bytes().split(b"\0")
                if cmd and cmd[0] == str(BINARY).encode() and needle.encode() in b" ".join(cmd):
                    return int(d)
    return None


def base_env() -> dict:
    env = {"PATH": os.environ.get("PATH", ""), "CODEMODE_LOG": "info,rmcp=warn"}
    env.update(CANARIES)
    return env


@dataclasses.dataclass
class Outcome:
    is_error: bool
    text: str
    elapsed: float
    hung: bool = False
    rpc_error: str | None = None  # a JSON-RPC error instead of a tool result
    broken: str | None = None  # the session died under the call


def text_of(result) -> str:
    return "\n".join(getattr(c, "text", "") for c in result.content if getattr(c, "type", "") == "text")


class SessionTask:
    """An initialised ClientSession living in its own asyncio task (anyio cancel
    scopes must be entered and left in one task); calls come from any task."""

    def __init__(self, factory):
        self.factory = factory  # () -> async context manager yielding a ClientSession
        self.session: ClientSession | None = None
        self._ready = asyncio.Event()
        self._stop = asyncio.Event()
        self._error: BaseException | None = None
        self._task: asyncio.Task | None = None

    async def start(self, timeout: float = 60):
        self._task = asyncio.create_task(self._run())
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except asyncio.TimeoutError:
            raise RuntimeError("MCP session did not initialise") from self._error
        if self._error:
            raise RuntimeError(f"MCP session failed: {self._error!r}") from self._error

    async def _run(self):
        try:
            async with self.factory() as s:
                self.session = s
                self._ready.set()
                await self._stop.wait()
        except BaseException as e:  # noqa: BLE001
            self._error = e
            self._ready.set()
        finally:
            self.session = None

    async def stop(self):
        self._stop.set()
        if self._task:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(self._task, 15)

    async def call(self, tool: str, code, timeout: float) -> Outcome:
        t0 = time.monotonic()
        s = self.session
        if s is None:
            return Outcome(True, "", 0.0, broken=f"session is gone ({self._error!r})")
        args = {"code": code} if not isinstance(code, dict) else code
        try:
            r = await asyncio.wait_for(s.call_tool(tool, args), timeout)
        except asyncio.TimeoutError:
            return Outcome(True, "", time.monotonic() - t0, hung=True)
        except Exception as e:  # noqa: BLE001
            el = time.monotonic() - t0
            if type(e).__name__ == "McpError":
                return Outcome(True, str(e), el, rpc_error=str(e))
            return Outcome(True, repr(e), el, broken=repr(e))
        return Outcome(bool(r.is_error), text_of(r), time.monotonic() - t0)


class Codemode:
    """One `codemode serve --config CFG` (stdio, or HTTP when the config says so),
    long-lived; `restart()` replaces it after a hang."""

    def __init__(self, name: str, config: Path, tmp: Path, env: dict | None = None, http: bool = False,
                 token: str | None = None):
        self.name = name
        self.token = token  # HTTP: the bearer every session presents
        self.config = config
        self.tmp = tmp
        self.env = {**base_env(), **(env or {})}
        self.http = http
        self.generation = 0
        self.logs: list[Path] = []
        self.sessions: list[SessionTask] = []
        self.proc: subprocess.Popen | None = None
        self.url = ""
        self.restarts: list[str] = []

    # -- lifecycle
    async def start(self, sessions: int = 1):
        assert BINARY.exists(), f"build the release binary first: {BINARY}"
        self.generation += 1
        log = self.tmp / f"{self.name}-{self.generation}.stderr.log"
        self.logs.append(log)
        if self.http:
            port = peers.free_port()
            text = self.config.read_text().replace("%LISTEN%", f"127.0.0.1:{port}")
            cfg = self.tmp / f"{self.name}-{self.generation}.toml"
            cfg.write_text(text)
            self.url = f"http://127.0.0.1:{port}/mcp"
            with open(log, "w") as f:
                self.proc = subprocess.Popen([str(BINARY), "serve", "--config", str(cfg)],
                                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=f, env=self.env)
            deadline = time.monotonic() + 60
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"codemode exited {self.proc.returncode}:\n{log.read_text()[-3000:]}")
                with contextlib.suppress(OSError):
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                        if r.status == 200:
                            break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"codemode not ready:\n{log.read_text()[-3000:]}")
                await asyncio.sleep(0.05)
            self.sessions = [SessionTask(lambda: http_client_session(self.url, self.token)) for _ in range(sessions)]
        else:
            errlog = open(log, "w")
            params = StdioServerParameters(command=str(BINARY), args=["serve", "--config", str(self.config)], env=self.env)

            @contextlib.asynccontextmanager
            async def factory():
                async with stdio_client(params, errlog=errlog) as (r, w):
                    async with ClientSession(r, w) as s:
                        await s.initialize()
                        yield s

            self.sessions = [SessionTask(factory)]
        for s in self.sessions:
            await s.start()

    def pid(self) -> int | None:
        if self.proc is not None:
            return self.proc.pid
        return find_pid(str(self.config))

    def rss(self) -> int:
        pid = self.pid()
        return rss_kib(pid) if pid else 0

    async def stop(self):
        for s in self.sessions:
            await s.stop()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        else:
            pid = find_pid(str(self.config))
            if pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    async def restart(self, why: str):
        self.restarts.append(why)
        n = len(self.sessions)
        await self.stop()
        await self.start(sessions=n)

    def alive(self) -> bool:
        pid = self.pid()
        return bool(pid) and Path(f"/proc/{pid}").exists() and all(s.session is not None for s in self.sessions)

    async def call(self, tool, code, timeout: float, session: int = 0) -> Outcome:
        return await self.sessions[session % len(self.sessions)].call(tool, code, timeout)

    def log_text(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.logs if p.exists())


@contextlib.asynccontextmanager
async def http_client_session(url: str, token: str | None = None):
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    headers = {"Authorization": f"Bearer {token}"} if token else None
    async with create_mcp_http_client(headers=headers) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                yield session


BENIGN = {"search": ("async () => 1", "1"), "execute": ("async () => 2", "2")}


async def benign(cm: Codemode, tool: str, session: int = 0) -> Outcome:
    code, _ = BENIGN[tool]
    return await cm.call(tool, code, BENIGN_WITHIN + HANG_GRACE, session)


def benign_problems(tool: str, o: Outcome, within: float = BENIGN_WITHIN) -> list[str]:
    want = BENIGN[tool][1]
    if o.hung:
        return [f"benign {tool} after it did not answer within {within + HANG_GRACE:.1f} s"]
    if o.broken or o.rpc_error:
        return [f"benign {tool} after it failed: {o.broken or o.rpc_error}"]
    out = []
    if o.is_error or o.text.strip() != want:
        out.append(f"benign {tool} after it answered {o.text[:200]!r} (error={o.is_error}), not {want!r}")
    if o.elapsed > within:
        out.append(f"benign {tool} after it took {o.elapsed:.2f} s (> {within} s)")
    return out


# --------------------------------------------------------------------------- running and judging cases

LIMIT_WORDS = {
    "time": ("time limit",),
    "memory": ("memory",),
    "stack": ("recursion", "stack"),
    # an engine size limit hit before the memory limit is as good an ending
    "length": ("too long", "invalid string length", "invalid array buffer length", "too large", "invalid array length"),
}
INSIDE = ("/api/", "/ro/", "/bas/")


@dataclasses.dataclass
class Record:
    case: object
    marker: str
    outcome: Outcome | None = None
    benign: Outcome | None = None
    hits: list = dataclasses.field(default_factory=list)
    evil_hits: list = dataclasses.field(default_factory=list)
    problems: list = dataclasses.field(default_factory=list)
    attempts: int = 1

    def report(self) -> str:
        o = self.outcome
        lines = [f"case {self.case.id} ({self.case.category}, {self.case.tool}), expect {self.case.expect[0]} {self.case.expect[1]}"]
        lines += [f"  PROBLEM: {p}" for p in self.problems]
        if o:
            lines.append(f"  outcome: error={o.is_error} elapsed={o.elapsed:.2f}s hung={o.hung} rpc={o.rpc_error!r} broken={o.broken!r}")
            lines.append("  text: " + o.text[:1500].replace("\n", "\n        "))
        if self.hits or self.evil_hits:
            lines.append(f"  upstream saw: {[h.method + ' ' + h.path[:120] for h in self.hits]} evil: {[h.path[:120] for h in self.evil_hits]}")
        lines.append("  code: " + self.case.code[:600].replace("\n", "\n        "))
        return "\n".join(lines)


def substitute(code: str, marker: str, ctx) -> str:
    return code.replace("%MK%", marker).replace("%EVIL%", ctx.evil.host).replace("%CNT%", ctx.cnt.host)


def judge(rec: Record, timeout: float, max_requests: int) -> list[str]:
    case, o, marker = rec.case, rec.outcome, rec.marker
    kind, any_of, none_of = case.expect
    probs: list[str] = []
    if o.hung:
        probs.append(f"no answer within {timeout + HANG_GRACE:.1f} s (the time limit is {timeout} s): hung")
    elif o.broken:
        probs.append(f"the server or session broke under the call: {o.broken}")
    elif o.rpc_error:
        probs.append(f"a JSON-RPC error instead of a tool result: {o.rpc_error[:300]}")
    else:
        text, low = o.text, o.text.lower()
        if o.elapsed > timeout + SLACK:
            probs.append(f"took {o.elapsed:.2f} s, more than the time limit + 250 ms ({timeout + SLACK:.2f} s)")
        if kind == "ok":
            if o.is_error or text.strip() != any_of[0]:
                probs.append(f"expected the result {any_of[0]!r}, got {'an error' if o.is_error else 'result'} {text[:300]!r}")
        elif kind == "has":
            if o.is_error or not any(n in text for n in any_of):
                probs.append(f"expected a result containing one of {any_of}, got {'an error' if o.is_error else 'result'} {text[:300]!r}")
        elif kind in ("err", "refused", "once"):
            if not o.is_error:
                probs.append(f"expected an error, got the result {text[:300]!r}")
            elif any_of and not any(n.lower() in low for n in any_of):
                probs.append(f"the error names none of {any_of}: {text[:300]!r}")
        elif kind == "limit":
            words = []
            for k in any_of:
                words += LIMIT_WORDS.get(k, (f"limit of {max_requests} upstream requests",))
            if not o.is_error:
                probs.append(f"expected an error naming the {'/'.join(any_of)} limit, got the result {text[:300]!r}")
            elif not any(w in low for w in words):
                probs.append(f"the error does not name the {'/'.join(any_of)} limit ({words}): {text[:300]!r}")
        if kind == "once":
            n = text.count(f"once-{marker}")
            if n != 1:
                probs.append(f"the console line appears {n} times, not once")
        for n in none_of:
            if n in text:
                probs.append(f"the text contains {n!r}")
        lk = leaks(text)
        if lk:
            probs.append(f"canary credential in the text: {lk}")
    # What reached the upstreams.
    if rec.evil_hits:
        probs.append(f"{len(rec.evil_hits)} request(s) reached the evil upstream: {[h.path[:100] for h in rec.evil_hits]}")
    outside = [h for h in rec.hits if not h.path.startswith(INSIDE)]
    if outside:
        probs.append(f"request(s) left the API's base path: {[h.method + ' ' + h.path[:100] for h in outside]}")
    if kind == "refused" and rec.hits:
        probs.append(f"refused, but {len(rec.hits)} request(s) carrying the case were sent: {[h.method + ' ' + h.path[:100] for h in rec.hits]}")
    if kind == "nohit":
        followed = [h for h in rec.hits if not h.path.split("?")[0].endswith("/redir")]
        if followed:
            probs.append(f"the redirect was followed out of bounds: {[h.method + ' ' + h.path[:100] for h in followed]}")
    if kind == "follow":
        inside = [h for h in rec.hits if h.path.startswith("/api/items")]
        if len(inside) != 1:
            probs.append(f"expected the in-base redirect followed once, saw {len(inside)}")
        elif dict((k.lower(), v) for k, v in inside[0].headers).get("authorization") != f"Bearer {CANARIES['CM_CNT_BEARER']}":
            probs.append("the followed redirect did not carry the API's credential")
    if kind == "once":
        posts = [h for h in rec.hits if h.method == "POST"]
        if len(posts) != 1:
            probs.append(f"the upstream received {len(posts)} POSTs, not exactly one")
    if rec.benign is not None:
        probs += benign_problems(case.tool, rec.benign)
    elif not o.hung and not o.broken:
        probs.append("no benign call after")
    return probs


async def run_cases(cm: Codemode, cases, ctx, timeout: float, max_requests: int, jobs: int = JOBS,
                    marker_prefix: str = "mkq") -> dict:
    """Runs every case (hostile call, then a benign call of the same tool) with
    `jobs` at a time on the long-lived server `cm`. A hung call fails its case and
    restarts the server; cases caught in the restart are re-run once."""
    results: dict = {}
    sem = asyncio.Semaphore(jobs)
    gate = asyncio.Event()
    gate.set()
    restart_lock = asyncio.Lock()

    async def restart(gen, why):
        async with restart_lock:
            if cm.generation == gen:
                gate.clear()
                await asyncio.sleep(0.2)
                await cm.restart(why)
                gate.set()

    async def attempt(case, marker):
        async with sem:
            await gate.wait()
            gen = cm.generation
            rec = Record(case, marker)
            code = substitute(case.code, marker, ctx)
            rec.outcome = await cm.call(case.tool, code, timeout + HANG_GRACE)
            o = rec.outcome
            if not o.hung and not o.broken:
                rec.benign = await benign(cm, case.tool)
            await asyncio.sleep(0.05)
            rec.hits = ctx.cnt.marked(marker)
            rec.evil_hits = ctx.evil.marked(marker) + [h for h in ctx.evil.hits if marker in h.text()]
            rec.evil_hits = list({id(h): h for h in rec.evil_hits}.values())
            collateral = cm.generation != gen or (o.broken is not None and not o.hung)
            poisoned = o.hung or (rec.benign is not None and rec.benign.hung) or not cm.alive()
            return rec, gen, collateral, poisoned

    async def one(i, case):
        marker = f"{marker_prefix}{i:04d}z"
        for n in range(2):
            rec, gen, collateral, poisoned = await attempt(case, marker + ("r" if n else ""))
            rec.attempts = n + 1
            if poisoned and not collateral:
                await restart(gen, case.id)
                break
            if not collateral:
                break
        rec.problems = judge(rec, timeout, max_requests)
        results[case.id] = rec

    await asyncio.gather(*(one(i, c) for i, c in enumerate(cases)))
    return results
