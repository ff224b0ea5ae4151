"""Hostile and careless clients against the release binary over HTTP:
oversized bodies, slow-loris connections, many sessions at once, request
floods, and a client that disconnects mid-execution."""

from __future__ import annotations

import json
import socket
import threading
import time

import anyio
import pytest

from test_http_helpers import INIT, MCP_HEADERS, codemode_http, http_session, jsonrpc_of, post_mcp, text_of

pytestmark = pytest.mark.anyio


def connect(srv) -> socket.socket:
    host, port = srv.base.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


async def test_oversized_bodies_get_413(tmp_path):
    with codemode_http(tmp_path, server={"max_body_kib": 64}) as srv:
        _, headers, _ = post_mcp(srv, INIT)
        sid = {"Mcp-Session-Id": headers["mcp-session-id"]}
        big = {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
               "params": {"name": "execute", "arguments": {"code": "async () => '" + "x" * 100_000 + "'"}}}
        status, _, body = post_mcp(srv, big, sid)
        assert status == 413 and b"64 KiB" in body
        # Without Content-Length (chunked), refused as it arrives.
        s = connect(srv)
        port = srv.base.rsplit(":", 1)[1]
        s.sendall((f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
                   "Accept: application/json, text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n").encode())
        chunk = b"x" * 16384
        status_line = b""
        try:
            for _ in range(16):
                s.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            status_line = s.recv(64)
        except OSError:
            status_line = s.recv(64) if not status_line else status_line
        s.close()
        assert status_line.startswith(b"HTTP/1.1 413"), status_line
        # The server is fine afterwards.
        async with http_session(srv.url) as sess:
            assert text_of(await sess.call_tool("search", {"code": "async () => 42"})) == "42"


async def test_slow_loris_clients_are_cut_off_and_others_served(tmp_path):
    # The read timeouts are the thing under test: a client served while the
    # lorises hang was not queued behind them (that would take `cut` seconds),
    # and dribbling for longer than `cut` does not keep a loris open.
    cut = 5
    with codemode_http(tmp_path, server={"header_read_timeout_secs": cut, "body_read_timeout_secs": cut}) as srv:
        port = srv.base.rsplit(":", 1)[1]
        lorises = []
        for i in range(100):
            s = connect(srv)
            if i % 2:
                s.sendall(f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Slow: ".encode())  # headers never end
            else:
                s.sendall((f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
                           "Accept: application/json, text/event-stream\r\nContent-Length: 1000\r\n\r\n{").encode())  # body never ends
            lorises.append(s)
        t = time.monotonic()
        async with http_session(srv.url) as sess:
            assert text_of(await sess.call_tool("search", {"code": "async () => 1"})) == "1"
        assert time.monotonic() - t < cut
        # Dribbling a byte now and then does not keep them open.
        while time.monotonic() - t < cut + 1:
            for s in lorises[1::2]:
                try:
                    s.sendall(b"a")
                except OSError:
                    pass
            time.sleep(0.3)
        deadline = time.monotonic() + 60
        closed = 0
        for s in lorises:
            s.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                data = s.recv(4096)
                closed += 1 if (data == b"" or data.startswith(b"HTTP/1.1 408")) else 0
            except OSError:
                closed += 1
            s.close()
        assert closed == 100, closed


async def test_many_sessions_at_once_and_the_cap(tmp_path):
    with codemode_http(tmp_path, server={"max_sessions": 300, "max_sessions_per_principal": 300,
                                         "requests_per_minute": 0}) as srv:
        rss_before = srv.rss_kib()
        results = []

        def open_one():
            status, headers, body = post_mcp(srv, INIT)
            results.append((status, headers.get("mcp-session-id")))

        threads = [threading.Thread(target=open_one) for _ in range(300)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert [s for s, _ in results].count(200) == 300
        assert len({sid for _, sid in results}) == 300
        status, headers, body = post_mcp(srv, INIT)
        assert status == 503 and headers["retry-after"] == "5", body
        per_session_kib = (srv.rss_kib() - rss_before) / 300
        assert per_session_kib < 200, per_session_kib
        # Every session still works.
        for _, sid in results[:20]:
            status, _, body = post_mcp(srv, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, {"Mcp-Session-Id": sid})
            assert status == 200 and len(jsonrpc_of(body)["result"]["tools"]) == 2


async def test_a_request_flood_gets_429_with_retry_after(tmp_path):
    with codemode_http(tmp_path, server={"requests_per_minute": 6, "burst": 10}) as srv:
        statuses = []
        retry = None
        for _ in range(15):
            status, headers, _ = post_mcp(srv, INIT)
            statuses.append(status)
            retry = headers.get("retry-after", retry)
        assert statuses.count(200) == 10 and statuses.count(429) == 5, statuses
        assert retry is not None and 1 <= int(retry) <= 10, retry


async def test_a_client_that_disconnects_mid_execution_cancels_it(tmp_path):
    # One call at a time per principal, so a leaked slot would show.
    with codemode_http(tmp_path, server={"max_concurrent_calls": 1}, limits="[limits]\ntimeout_secs = 60\n") as srv:
        _, headers, _ = post_mcp(srv, INIT)
        sid = headers["mcp-session-id"]
        port = srv.base.rsplit(":", 1)[1]
        body = json.dumps({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
                           "params": {"name": "execute", "arguments": {"code": "async () => { while (true) {} }"}}}).encode()
        s = connect(srv)
        head = "".join(f"{k}: {v}\r\n" for k, v in MCP_HEADERS.items())
        s.sendall(f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{head}Mcp-Session-Id: {sid}\r\n"
                  f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        assert s.recv(4096).startswith(b"HTTP/1.1 200")  # headers and the priming event
        # The loop burns CPU: 30 ticks, in however long this machine needs for them.
        busy, window = srv.busy_ticks(30)
        s.close()  # the client goes away
        assert srv.wait_log("client disconnected before the answer: tool call cancelled"), srv.log()
        assert srv.wait_log("tool call cancelled by the client"), srv.log()
        time.sleep(0.3)
        # Over a window as long as the one that took 30 ticks while it ran,
        # the server is (nearly) idle: the JavaScript stopped.
        t0 = srv.cpu_ticks()
        time.sleep(window)
        idle = srv.cpu_ticks() - t0
        assert idle <= busy / 4, f"the JavaScript stopped: {idle} ticks in {window:.1f} s after, {busy} before"
        # Its slot is free again.
        async with http_session(srv.url) as sess:
            r = await sess.call_tool("execute", {"code": "async () => 'free'"})
            assert text_of(r) == "free", text_of(r)


async def test_concurrent_executions_are_limited_per_principal(tmp_path):
    with codemode_http(tmp_path, server={"max_concurrent_calls": 2}) as srv:
        _, headers, _ = post_mcp(srv, INIT)
        sid = {"Mcp-Session-Id": headers["mcp-session-id"]}
        def slow(i):
            return {"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {"name": "execute", "arguments": {
                "code": 'async () => { const t = Date.now(); while (Date.now() - t < 5000) {} return "ok"; }'}}}
        results = []
        threads = [threading.Thread(target=lambda i=i: results.append(post_mcp(srv, slow(i), sid, timeout=120)))
                   for i in (2, 3)]
        for t in threads:
            t.start()
        # Both run (5 s of wall time each, whatever the load) before the third comes.
        srv.wait_calls_started(2)
        status, headers, body = post_mcp(srv, slow(4), sid)
        assert status == 429 and headers["retry-after"] == "1", body
        assert b"already runs 2 tool calls" in body
        for t in threads:
            t.join(120)
        assert [r[0] for r in results] == [200, 200]
