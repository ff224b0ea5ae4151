"""Protocol abuse. Over stdio (raw lines to one long-lived server): each bad
message gets a JSON-RPC error response, and a ping right after answers within
1 s. Over HTTP (raw requests to one long-lived server): Host with userinfo,
foreign Origins, invalid session ids, bad bodies each get a 4xx or a JSON-RPC
error, and the server keeps serving.

Already covered elsewhere and not repeated here (tests/integration/test_http_abuse.py):
oversized and chunked bodies (413), slow-loris connections, 300 sessions at
once, request floods (429), concurrent-call limits, clients that disconnect
mid-execution; (tests/conformance) DNS-rebinding Host/Origin checks."""

from __future__ import annotations

import http.client
import json
import queue
import subprocess
import threading
import time

import pytest

from conftest import HTTP_SERVER, main_config
from harness import BINARY, base_env, leaks, peers

INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}}


def line(obj) -> bytes:
    return json.dumps(obj).encode()


def call(id, name="execute", arguments=None, **extra):
    params = {"name": name, "arguments": arguments if arguments is not None else {"code": "async () => 1"}}
    return line({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params, **extra})


BIG = 17 * 1024 * 1024
# (id, raw line without the newline, expect, the id the error must carry or None for any)
#   error: a JSON-RPC error response
#   error-or-tool-error: a JSON-RPC error, or a tool result with isError
#   any-response: some response (error or result) with this id
#   quiet: no response needed; the server stays up
STDIO = [
    ("params-string", line({"jsonrpc": "2.0", "id": 101, "method": "tools/call", "params": "execute"}), "error", 101),
    ("params-number", line({"jsonrpc": "2.0", "id": 102, "method": "tools/call", "params": 5}), "error", 102),
    ("params-array", line({"jsonrpc": "2.0", "id": 103, "method": "tools/call", "params": ["execute", {}]}), "error", 103),
    ("params-null", line({"jsonrpc": "2.0", "id": 104, "method": "tools/call", "params": None}), "error", 104),
    ("line-17mib-call", call(105, arguments={"code": "async () => '" + "x" * BIG + "'"}), "error", None),
    ("line-17mib-garbage", b"x" * BIG, "error", None),
    ("line-17mib-whitespace-then-ping", b" " * BIG + line({"jsonrpc": "2.0", "id": 106, "method": "ping"}), "any-response", None),
    ("invalid-json", b'{"jsonrpc":"2.0","id":', "error", None),
    ("invalid-json-trailing", b'{"jsonrpc":"2.0","id":107,"method":"ping"} garbage', "error", None),
    ("batch-array", b'[{"jsonrpc":"2.0","id":108,"method":"ping"},{"jsonrpc":"2.0","id":109,"method":"ping"}]', "error", None),
    ("batch-empty", b"[]", "error", None),
    ("non-utf8", b'\xff\xfe{"jsonrpc":"2.0","id":110,"method":"ping"}', "error", None),
    ("non-utf8-in-string", b'{"jsonrpc":"2.0","id":111,"method":"tools/call","params":{"name":"execute","arguments":{"code":"\xc3("}}}', "error", None),
    ("scalar-number", b"42", "error", None),
    ("scalar-string", b'"ping"', "error", None),
    ("scalar-null", b"null", "error", None),
    ("missing-method", line({"jsonrpc": "2.0", "id": 112}), "error", None),
    ("method-number", line({"jsonrpc": "2.0", "id": 113, "method": 7}), "error", None),
    ("wrong-version", line({"jsonrpc": "1.0", "id": 114, "method": "ping"}), "error", None),
    ("no-version", line({"id": 115, "method": "ping"}), "error", None),
    ("id-object", line({"jsonrpc": "2.0", "id": {"a": 1}, "method": "ping"}), "error", None),
    ("id-huge-string", line({"jsonrpc": "2.0", "id": "i" * 1_000_000, "method": "ping"}), "any-response", None),
    ("unknown-method", line({"jsonrpc": "2.0", "id": 116, "method": "nope/nope"}), "error", 116),
    ("tools-call-no-name", line({"jsonrpc": "2.0", "id": 117, "method": "tools/call", "params": {"arguments": {}}}), "error", 117),
    ("tools-call-unknown-tool", call(118, name="rm_rf"), "error-or-tool-error", 118),
    ("tools-call-arguments-array", line({"jsonrpc": "2.0", "id": 119, "method": "tools/call", "params": {"name": "execute", "arguments": ["x"]}}), "error-or-tool-error", 119),
    ("tools-call-code-number", call(120, arguments={"code": 42}), "error-or-tool-error", 120),
    ("tools-call-code-missing", call(121, arguments={}), "error-or-tool-error", 121),
    ("tools-call-code-object", call(122, arguments={"code": {"toString": "x"}}), "error-or-tool-error", 122),
    ("deep-nesting", b'{"jsonrpc":"2.0","id":123,"method":"tools/call","params":' + b"[" * 100_000 + b"]" * 100_000 + b"}", "error", None),
    ("cancel-unknown", line({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 999}}), "quiet", None),
    ("notification-unknown", line({"jsonrpc": "2.0", "method": "notifications/evil", "params": "x"}), "quiet", None),
    ("response-without-request", line({"jsonrpc": "2.0", "id": 9999, "result": {}}), "quiet", None),
]


class RawStdio:
    def __init__(self, cfg, log):
        self.proc = subprocess.Popen([str(BINARY), "serve", "--config", str(cfg)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=open(log, "wb"), env=base_env())
        self.q: queue.Queue = queue.Queue()
        self.junk: list[bytes] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for raw in self.proc.stdout:
            try:
                self.q.put(json.loads(raw))
            except ValueError:
                self.junk.append(raw)

    def send(self, data: bytes):
        self.proc.stdin.write(data + b"\n")
        self.proc.stdin.flush()

    def responses(self, within: float, until_id=None) -> list:
        out, deadline = [], time.monotonic() + within
        while time.monotonic() < deadline:
            try:
                m = self.q.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            out.append(m)
            if until_id is not None and isinstance(m, dict) and m.get("id") == until_id:
                break
        return out


@pytest.fixture(scope="module")
def stdio(ctx):
    cfg = main_config(ctx, "protocol-stdio", portal=False)
    s = RawStdio(cfg, ctx.tmp / "protocol-stdio.stderr.log")
    s.send(line(INIT))
    assert any(m.get("id") == 1 for m in s.responses(30, until_id=1))
    s.send(line({"jsonrpc": "2.0", "method": "notifications/initialized"}))
    yield s
    s.proc.kill()
    s.proc.wait()


@pytest.mark.parametrize("case", STDIO, ids=[c[0] for c in STDIO])
def test_stdio_bad_message_gets_an_error_and_the_server_answers(case, stdio):
    name, data, expect, want_id = case
    assert stdio.proc.poll() is None, "the server is gone (an earlier case killed it)"
    ping_id = 7000 + STDIO.index(case)
    stdio.send(data)
    got = stdio.responses(1.5 if expect != "quiet" else 0.3)
    stdio.send(line({"jsonrpc": "2.0", "id": ping_id, "method": "ping"}))
    t0 = time.monotonic()
    after = stdio.responses(3, until_id=ping_id)
    elapsed = time.monotonic() - t0
    got += [m for m in after if not (isinstance(m, dict) and m.get("id") == ping_id)]
    pong = [m for m in after if isinstance(m, dict) and m.get("id") == ping_id]
    flat = [m for g in got for m in (g if isinstance(g, list) else [g]) if isinstance(m, dict)]
    errors = [m for m in flat if "error" in m and (want_id is None or m.get("id") == want_id)]
    tool_errors = [m for m in flat if (m.get("result") or {}).get("isError") and (want_id is None or m.get("id") == want_id)]
    probs = []
    if expect == "error" and not errors:
        probs.append(f"no JSON-RPC error response (id {want_id}); got {json.dumps(flat)[:300]}")
    if expect == "error-or-tool-error" and not (errors or tool_errors):
        probs.append(f"neither a JSON-RPC error nor a tool error (id {want_id}); got {json.dumps(flat)[:300]}")
    if expect == "any-response" and not flat:
        probs.append("no response at all")
    if stdio.proc.poll() is not None:
        probs.append(f"the server exited ({stdio.proc.returncode})")
    elif not pong:
        probs.append("a ping right after got no answer within 3 s")
    elif elapsed > 1:
        probs.append(f"a ping right after took {elapsed:.2f} s")
    if stdio.junk:
        probs.append(f"stdout carried non-JSON: {stdio.junk[:2]!r}")
    assert not probs, "\n".join(probs)


# --------------------------------------------------------------------------- HTTP


class RawHttp:
    def __init__(self, cfg, log, port):
        self.port = port
        self.proc = subprocess.Popen([str(BINARY), "serve", "--config", str(cfg)], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=open(log, "wb"), env=base_env())
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if self.request("GET", "/readyz", b"", {})[0] == 200:
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("codemode over HTTP did not get ready")

    def request(self, method, path, body: bytes, headers: dict, host: str | None = None, timeout=10):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        c.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        c.putheader("Host", host or f"127.0.0.1:{self.port}")
        for k, v in headers.items():
            c.putheader(k, v)
        c.putheader("Content-Length", str(len(body)))
        c.endheaders(body)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data

    def mcp(self, body: bytes, headers=None, host=None):
        h = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream", **(headers or {})}
        return self.request("POST", "/mcp", body, h, host)

    def session(self) -> str:
        status, headers, _ = self.mcp(line(INIT))
        assert status == 200, status
        sid = headers["mcp-session-id"]
        self.mcp(line({"jsonrpc": "2.0", "method": "notifications/initialized"}), {"Mcp-Session-Id": sid})
        return sid

    def benign(self) -> tuple[float, bytes]:
        t0 = time.monotonic()
        sid = self.session()
        status, _, body = self.mcp(call(2), {"Mcp-Session-Id": sid})
        return time.monotonic() - t0, body if status == 200 else b"status %d" % status


@pytest.fixture(scope="module")
def httpsrv(ctx):
    port = peers.free_port()
    cfg = main_config(ctx, "protocol-http", portal=False, server=HTTP_SERVER.replace("%LISTEN%", f"127.0.0.1:{port}"))
    s = RawHttp(cfg, ctx.tmp / "protocol-http.stderr.log", port)
    yield s
    s.proc.kill()
    s.proc.wait()


def jsonrpc_error(body: bytes) -> bool:
    text = body.decode(errors="replace")
    for chunk in [text] + [l[5:] for l in text.splitlines() if l.startswith("data:")]:
        try:
            v = json.loads(chunk)
        except ValueError:
            continue
        if isinstance(v, dict) and "error" in v:
            return True
        if isinstance(v, list) and any(isinstance(x, dict) and "error" in x for x in v):
            return True
    return False


HTTP = [
    # (id, what to send: a function of the server and a valid session id -> (status, body), expect)
    ("host-userinfo", lambda s, sid: s.mcp(line(INIT), host=f"evil@127.0.0.1:{s.port}")[::2], "4xx"),
    ("host-userinfo-after", lambda s, sid: s.mcp(line(INIT), host=f"127.0.0.1:{s.port}@evil.example")[::2], "4xx"),
    ("host-userinfo-password", lambda s, sid: s.mcp(line(INIT), host=f"u:p@127.0.0.1:{s.port}")[::2], "4xx"),
    ("origin-evil", lambda s, sid: s.mcp(line(INIT), {"Origin": "http://evil.example"})[::2], "4xx"),
    ("origin-null", lambda s, sid: s.mcp(line(INIT), {"Origin": "null"})[::2], "4xx"),
    ("session-unknown", lambda s, sid: s.mcp(call(3), {"Mcp-Session-Id": "3f2a9c0d-0000-4000-8000-000000000000"})[::2], "404"),
    ("session-garbage", lambda s, sid: s.mcp(call(3), {"Mcp-Session-Id": "../../etc/passwd"})[::2], "4xx"),
    ("session-huge", lambda s, sid: s.mcp(call(3), {"Mcp-Session-Id": "s" * 8000})[::2], "4xx"),
    ("session-other-case", lambda s, sid: s.mcp(call(3), {"Mcp-Session-Id": sid.upper() if sid.upper() != sid else sid.lower()})[::2], "4xx"),
    ("params-string", lambda s, sid: s.mcp(line({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": "execute"}), {"Mcp-Session-Id": sid})[::2], "rpc-error"),
    ("invalid-json", lambda s, sid: s.mcp(b'{"jsonrpc":', {"Mcp-Session-Id": sid})[::2], "rpc-error"),
    ("batch", lambda s, sid: s.mcp(b'[{"jsonrpc":"2.0","id":5,"method":"ping"},{"jsonrpc":"2.0","id":6,"method":"ping"}]', {"Mcp-Session-Id": sid})[::2], "rpc-error"),
    ("non-utf8", lambda s, sid: s.mcp(b'\xff\xfe{"jsonrpc":"2.0","id":7,"method":"ping"}', {"Mcp-Session-Id": sid})[::2], "rpc-error"),
    ("scalar", lambda s, sid: s.mcp(b"42", {"Mcp-Session-Id": sid})[::2], "rpc-error"),
    ("content-type-text", lambda s, sid: s.request("POST", "/mcp", line(INIT), {"Content-Type": "text/plain", "Accept": "application/json, text/event-stream"})[::2], "4xx"),
    ("deep-nesting", lambda s, sid: s.mcp(b'{"jsonrpc":"2.0","id":8,"method":"tools/call","params":' + b"[" * 50_000 + b"]" * 50_000 + b"}", {"Mcp-Session-Id": sid})[::2], "rpc-error"),
    ("path-traversal", lambda s, sid: s.request("GET", "/mcp/../../etc/passwd", b"", {})[::2], "4xx"),
    ("absolute-form-other-authority", lambda s, sid: s.request("POST", "http://evil.example/mcp", line(INIT), {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"})[::2], "4xx"),
]


@pytest.mark.parametrize("case", HTTP, ids=[c[0] for c in HTTP])
def test_http_abuse_is_refused_and_the_server_serves(case, httpsrv):
    name, send, expect = case
    sid = httpsrv.session()
    status, body = send(httpsrv, sid)
    probs = []
    if expect == "4xx" and not 400 <= status < 500:
        probs.append(f"expected a 4xx, got {status}: {body[:200]!r}")
    if expect == "404" and status != 404:
        probs.append(f"expected 404, got {status}: {body[:200]!r}")
    if expect == "rpc-error" and not (400 <= status < 500 or jsonrpc_error(body)):
        probs.append(f"expected a JSON-RPC error or a 4xx, got {status}: {body[:200]!r}")
    if leaks(body.decode(errors="replace")):
        probs.append("canary in the answer")
    if httpsrv.proc.poll() is not None:
        probs.append("the server exited")
    else:
        elapsed, b = httpsrv.benign()
        if b'"text":"1"' not in b.replace(b" ", b""):
            probs.append(f"a benign call after failed: {b[:200]!r}")
        elif elapsed > 1:
            probs.append(f"a benign call after took {elapsed:.2f} s")
    assert not probs, "\n".join(probs)
