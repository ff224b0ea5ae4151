"""Progress of a long `execute`: the official Python SDK's progress callback
receives `notifications/progress` while the code runs — one per nested call
completed (ten sequential requests to httpbin's /delay, about 3 s) and what
the code reports with `progress(message, fraction?)` — over stdio and
Streamable HTTP, on the handshake revisions and on 2026-07-28. Hostile code
cannot flood the client: reports are rate-limited, capped per call and cut
short."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from pathlib import Path

import anyio

import pytest
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from conftest import BINARY, SPECS, text_of, write_config
from test_http_helpers import HTTP_CLIENTS, codemode_http

pytestmark = pytest.mark.anyio

HTTPBIN_SPEC = SPECS / "httpbin-0.10.4.spec.json"

TEN_CALLS = """async () => {
  const out = [];
  for (let i = 1; i <= 10; i++) {
    const r = await httpbin.request('GET /delay/{delay}', {delay: 0.3});
    out.push(r.status);
    progress(`request ${i} of 10 done`, i / 10);
  }
  return out;
}"""

FLOOD = """async () => {
  let passed = 0;
  const big = 'x'.repeat(100000);
  for (let i = 0; i < 5000; i++) if (progress(big + i, 0.5)) passed++;
  const bad = [];
  for (const args of [[42], [], ['m', 2], ['m', NaN], ['m', '0.5']]) {
    try { progress(...args); bad.push('accepted'); } catch (e) { bad.push(e.name); }
  }
  return {passed, bad};
}"""


def httpbin_api(url: str) -> str:
    return f"""
[[api]]
name = "httpbin"
spec = "{HTTPBIN_SPEC}"
base_url = "{url}"
"""


class Recorder:
    def __init__(self):
        self.events: list[tuple[float, float, float | None, str | None]] = []

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        self.events.append((time.monotonic(), progress, total, message))


@contextlib.asynccontextmanager
async def over(transport: str, era: str, tmp_path, httpbin: str):
    if transport == "stdio":
        cfg = write_config(tmp_path, httpbin_api(httpbin))
        params = StdioServerParameters(command=str(BINARY), args=["serve", "--config", str(cfg)], env={"CODEMODE_LOG": "warn"})
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as s:
                await (s.discover() if era == "discover" else s.initialize())
                yield s
    else:
        with codemode_http(tmp_path, apis=httpbin_api(httpbin)) as srv:
            async with create_mcp_http_client() as client:
                async with streamable_http_client(srv.url, http_client=client) as (read, write):
                    async with ClientSession(read, write) as s:
                        await (s.discover() if era == "discover" else s.initialize())
                        yield s


@pytest.mark.parametrize("era", ["initialize", "discover"])
@pytest.mark.parametrize("transport", ["stdio", "http"])
async def test_progress_during_a_ten_call_execute(tmp_path, httpbin_peer, transport, era):
    async with over(transport, era, tmp_path, httpbin_peer) as s:
        rec = Recorder()
        started = time.monotonic()
        r = await s.call_tool("execute", {"code": TEN_CALLS}, progress_callback=rec)
        ended = time.monotonic()
        assert not r.is_error, text_of(r)
        assert json.loads(text_of(r)) == [200] * 10
        assert ended - started >= 3.0
        events = rec.events
        calls = [e for e in events if e[3] and e[3].startswith("httpbin GET /delay/{delay}: 200")]
        reports = [e for e in events if e[3] and e[3].startswith("request ")]
        assert len(calls) == 10 and len(reports) == 10, events
        # They arrived while the code ran, not all at the end.
        assert calls[0][0] - started < 1.5, events
        assert ended - calls[0][0] > 2.0, events
        # `progress` grows with each notification; a fraction sets `total` so that progress/total is it.
        values = [e[1] for e in events]
        assert values == sorted(values) and len(set(values)) == len(values), values
        assert [round(e[1] / e[2], 6) for e in reports] == [round(i / 10, 6) for i in range(1, 11)]
        assert all(e[2] is None for e in calls)


async def test_hostile_progress_cannot_flood_the_client(tmp_path, httpbin_peer):
    async with over("stdio", "initialize", tmp_path, httpbin_peer) as s:
        rec = Recorder()
        started = time.monotonic()
        r = await s.call_tool("execute", {"code": FLOOD}, progress_callback=rec)
        assert not r.is_error, text_of(r)
        out = json.loads(text_of(r))
        # A tight loop: the first report passes, the rest come too soon.
        assert 1 <= out["passed"] <= 100
        assert out["bad"] == ["TypeError", "TypeError", "RangeError", "RangeError", "RangeError"]
        assert 1 <= len(rec.events) <= 100
        assert all(len(e[3]) <= 200 and e[3].endswith("…") for e in rec.events)
        assert time.monotonic() - started < 20
        # A report every 100 ms at most, and 100 per call at most.
        r = await s.call_tool("execute", {"code": """async () => {
            let passed = 0;
            const until = Date.now() + 12000;
            while (Date.now() < until) if (progress('tick')) passed++;
            return passed;
        }"""}, progress_callback=(rec := Recorder()))
        assert not r.is_error, text_of(r)
        assert json.loads(text_of(r)) == 100 and len(rec.events) == 100
        gaps = [b[0] - a[0] for a, b in zip(rec.events, rec.events[1:])]
        assert sum(gaps) / len(gaps) >= 0.09, gaps


def test_no_token_no_notifications_and_what_leaves_is_scrubbed_and_redacted(tmp_path, httpbin_peer):
    """Raw JSON-RPC over stdio, so every line the server writes is seen: a call
    without a progress token gets no notification at all; with one, a report
    carrying the API key (echoed by httpbin) and an e-mail address reaches the
    client scrubbed and redacted, like a result."""
    key = "sk-progress-test-5e4d3c2b1a0f9e8d7c6b"
    cfg = write_config(tmp_path, httpbin_api(httpbin_peer).replace(
        'base_url', 'auth = { type = "header", name = "X-Api-Key", value_env = "HTTPBIN_KEY" }\nbase_url', 1)
        + '\n[[redact]]\ndetectors = ["email"]\n')
    p = subprocess.Popen([str(BINARY), "serve", "--config", str(cfg)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, env={"HTTPBIN_KEY": key, "CODEMODE_LOG": "warn", "PATH": "/usr/bin:/bin"})
    try:
        def send(msg):
            p.stdin.write((json.dumps({"jsonrpc": "2.0", **msg}) + "\n").encode())
            p.stdin.flush()

        def until_answer(i):
            seen = []
            while True:
                line = json.loads(p.stdout.readline())
                if line.get("id") == i:
                    return line, seen
                seen.append(line)

        send({"id": 0, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                                                          "clientInfo": {"name": "raw", "version": "1"}}})
        until_answer(0)
        send({"method": "notifications/initialized"})
        code = """async () => {
          const h = await httpbin.request('GET /headers');
          const t = Date.now(); while (Date.now() - t < 150);
          return progress('k=' + h.data.headers['X-Api-Key'] + ' mail ann.lee@example.com');
        }"""
        send({"id": 1, "method": "tools/call", "params": {"name": "execute", "arguments": {"code": code}}})
        answer, seen = until_answer(1)
        assert not answer["result"].get("isError"), answer
        assert [m for m in seen if m.get("method") == "notifications/progress"] == [], seen
        send({"id": 2, "method": "tools/call", "params": {"name": "execute", "arguments": {"code": code},
                                                          "_meta": {"progressToken": "t-2"}}})
        answer, seen = until_answer(2)
        assert not answer["result"].get("isError"), answer
        notes = [m["params"] for m in seen if m.get("method") == "notifications/progress"]
        assert [n["progressToken"] for n in notes] == ["t-2", "t-2"], seen
        assert notes[0]["message"] == "httpbin GET /headers: 200", notes
        assert "[redacted:email]" in notes[1]["message"] and "ann.lee" not in notes[1]["message"], notes
        assert key not in json.dumps(seen), notes
    finally:
        p.stdin.close()
        p.wait(timeout=10)


TS_PROGRESS = Path(__file__).parent / "http_ts_progress.mjs"


@pytest.mark.skipif(not (HTTP_CLIENTS / "@modelcontextprotocol" / "sdk").exists(), reason="run tests/conformance/setup.sh")
async def test_typescript_sdk_onprogress_during_a_ten_call_execute(tmp_path, httpbin_peer):
    """The official TypeScript SDK's `onprogress` receives the notifications of a
    ~3 s execute of ten sequential calls while it runs."""
    with codemode_http(tmp_path, apis=httpbin_api(httpbin_peer)) as srv:
        p = await anyio.to_thread.run_sync(lambda: subprocess.run(
            ["node", str(TS_PROGRESS), srv.url], capture_output=True, text=True, timeout=90,
            env={"PATH": os.environ["PATH"], "MCP_SDK": str(HTTP_CLIENTS / "@modelcontextprotocol" / "sdk"), "CODE": TEN_CALLS},
        ))
        assert p.returncode == 0, p.stdout + p.stderr + srv.log()
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert not out["isError"] and json.loads(out["text"]) == [200] * 10, out
    assert out["elapsed"] >= 3000, out
    events = out["events"]
    calls = [e for e in events if e.get("message", "").startswith("httpbin GET /delay/{delay}: 200")]
    reports = [e for e in events if e.get("message", "").startswith("request ")]
    assert len(calls) == 10 and len(reports) == 10, events
    # While the code ran, not all at the end.
    assert calls[0]["at"] < 1500 and out["elapsed"] - calls[0]["at"] > 2000, events
    assert [round(e["progress"] / e["total"], 6) for e in reports] == [round(i / 10, 6) for i in range(1, 11)]
