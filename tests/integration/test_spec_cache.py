"""The remote-spec cache against the release binary and a real HTTP server
on loopback (http.server with ETag and conditional GET): the first start
downloads, the second revalidates (304 in the server's own log), the third
starts with the server down (a warning, the cached spec); `check` reports
the copy's age; `refresh_secs` picks up a changed spec in a running server
without dropping calls."""

from __future__ import annotations

import hashlib
import os
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import anyio
import pytest

from conftest import BINARY
from test_http_helpers import BOOKSHELF, codemode_http, http_session, text_of

pytestmark = pytest.mark.anyio

COUNT = "async () => Object.keys(spec.paths).length"


class SpecServer:
    """Serves one spec with a strong ETag; answers 304 to a matching
    If-None-Match. `log` holds (method, path, If-None-Match, status)."""

    def __init__(self, body: bytes):
        self.body = body
        self.log: list[tuple[str, str, str | None, int]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                etag = '"' + hashlib.sha256(owner.body).hexdigest()[:16] + '"'
                asked = self.headers.get("If-None-Match")
                if asked == etag:
                    owner.log.append(("GET", self.path, asked, 304))
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.end_headers()
                    return
                owner.log.append(("GET", self.path, asked, 200))
                self.send_response(200)
                self.send_header("Content-Type", "application/yaml")
                self.send_header("ETag", etag)
                self.send_header("Content-Length", str(len(owner.body)))
                self.end_headers()
                self.wfile.write(owner.body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/bookshelf.yaml"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def config(tmp_path: Path, url: str, extra: str = "") -> Path:
    p = tmp_path / "codemode.toml"
    p.write_text(f'[[api]]\nname = "bookshelf"\nspec = "{url}"\nmock = true\n{extra}')
    return p


def run(args: list[str], cache: Path) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ.get("PATH", ""), "CODEMODE_CACHE_DIR": str(cache), "CODEMODE_LOG": "warn"}
    # The binary's own start-up bounds it; this only keeps a hang from hanging the suite.
    return subprocess.run([str(BINARY), *args], capture_output=True, text=True, env=env, timeout=300)


def test_download_then_revalidate_then_the_cached_copy_when_the_server_is_down(tmp_path):
    cache = tmp_path / "cache"
    spec = SpecServer(BOOKSHELF.read_bytes())
    cfg = config(tmp_path, spec.url)
    try:
        first = run(["search", "--config", str(cfg), COUNT], cache)
        assert first.returncode == 0, first.stderr
        paths = first.stdout.strip()
        assert int(paths) > 3
        assert spec.log == [("GET", "/bookshelf.yaml", None, 200)]
        assert list(cache.glob("*.spec")), "the download is cached"

        second = run(["search", "--config", str(cfg), COUNT], cache)
        assert second.returncode == 0, second.stderr
        assert second.stdout.strip() == paths
        assert len(spec.log) == 2 and spec.log[1][2] is not None and spec.log[1][3] == 304, spec.log
        assert "cached" not in second.stderr, "a 304 is not worth a warning"

        checked = run(["check", "--config", str(cfg)], cache)
        assert "cached copy confirmed by its server" in checked.stdout, checked.stdout
        assert "ETag" in checked.stdout
    finally:
        spec.stop()

    # The server is gone: the cached copy, with a warning that says so.
    third = run(["search", "--config", str(cfg), COUNT], cache)
    assert third.returncode == 0, third.stderr
    assert third.stdout.strip() == paths
    assert "using the copy cached" in third.stderr and spec.url in third.stderr, third.stderr
    # `check` says the same, as a problem (the API may have changed since).
    checked = run(["check", "--config", str(cfg)], cache)
    assert checked.returncode != 0 and "using the copy cached" in checked.stdout, checked.stdout

    # Without a cached copy, a server that is down stops start-up as before.
    empty = run(["search", "--config", str(cfg), COUNT], tmp_path / "empty-cache")
    assert empty.returncode == 2 and "cannot fetch" in empty.stderr, empty.stderr
    # And with the cache off nothing is written.
    off = run(["search", "--config", str(cfg), COUNT], Path("off"))
    assert off.returncode == 2
    assert not Path("off").exists()


def test_a_torn_cache_entry_is_downloaded_again(tmp_path):
    cache = tmp_path / "cache"
    spec = SpecServer(BOOKSHELF.read_bytes())
    cfg = config(tmp_path, spec.url)
    try:
        assert run(["search", "--config", str(cfg), COUNT], cache).returncode == 0
        entry = next(cache.glob("*.spec"))
        entry.write_bytes(entry.read_bytes()[:-10])
        again = run(["search", "--config", str(cfg), COUNT], cache)
        assert again.returncode == 0, again.stderr
        assert [s for *_, s in spec.log] == [200, 200], "a torn entry is no validator: a fresh download"
    finally:
        spec.stop()


async def test_refresh_picks_up_a_changed_spec_without_dropping_calls(tmp_path):
    cache = tmp_path / "cache"
    original = BOOKSHELF.read_bytes()
    spec = SpecServer(original)
    apis = f'[[api]]\nname = "bookshelf"\nspec = "{spec.url}"\nmock = true\nrefresh_secs = 1\n'
    try:
        with codemode_http(tmp_path, apis=apis, env={"CODEMODE_CACHE_DIR": str(cache)}) as srv:
            async with http_session(srv.url) as session:
                before = text_of(await session.call_tool("search", {"code": COUNT}))
                # Unchanged: each refresh is one conditional request answered 304.
                deadline = time.monotonic() + 120
                while sum(1 for *_, s in spec.log if s == 304) < 2:
                    assert time.monotonic() < deadline, spec.log
                    await anyio.sleep(0.1)
                assert "reloaded" not in srv.log()
                # The server publishes a new spec: one more path.
                spec.body = original.replace(b"\npaths:\n", b"\npaths:\n  /refreshed:\n    get:\n      operationId: refreshed\n      responses:\n        \"204\": { description: none }\n", 1)
                failures = []
                seen = None
                deadline = time.monotonic() + 120
                while True:
                    r = await session.call_tool("search", {"code": COUNT})
                    if r.is_error:
                        failures.append(text_of(r))
                    elif text_of(r) != before:
                        seen = text_of(r)
                        break
                    assert time.monotonic() < deadline, srv.log()
                    await anyio.sleep(0.05)
                assert not failures, failures
                assert int(seen) == int(before) + 1
                assert "the spec of `bookshelf` changed on its server" in srv.log()
    finally:
        spec.stop()
