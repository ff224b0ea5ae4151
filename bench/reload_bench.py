"""Remote-spec cache and live reload, measured against the release binary.

    .peers/venv/bin/python bench/reload_bench.py [SPEC] [RUNS]

SPEC (default: ../shared/specs/cloudflare-2024-08-06.openapi.json) is served
by a loopback http.server with a strong ETag. Measured, RUNS times each
(median): `codemode search` with an empty cache (download, 200), with a warm
one (revalidation, 304), and with the server down (the cached copy); then a
`serve --transport http` reloaded by SIGHUP: the `elapsed_ms` of its
`reloaded` log line (the next state built beside the running one)."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BINARY = Path(os.environ.get("CODEMODE_BIN", ROOT / "target" / "release" / "codemode"))
SPEC = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "specs" / "cloudflare-2024-08-06.openapi.json"
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 5
BODY = SPEC.read_bytes()
ETAG = '"' + hashlib.sha256(BODY).hexdigest()[:16] + '"'


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):
        if self.headers.get("If-None-Match") == ETAG:
            self.send_response(304)
            self.send_header("ETag", ETAG)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("ETag", ETAG)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)


def timed(args, env) -> float:
    t = time.monotonic()
    p = subprocess.run([str(BINARY), *args], capture_output=True, text=True, env=env, timeout=600)
    assert p.returncode == 0, p.stderr
    return (time.monotonic() - t) * 1000


def main():
    tmp = Path(tempfile.mkdtemp(prefix="codemode-reload-bench-"))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/{SPEC.name}"
    cfg = tmp / "codemode.toml"
    cfg.write_text(f'[[api]]\nname = "cloudflare"\nspec = "{url}"\nmock = true\n')
    cache = tmp / "cache"
    env = {"PATH": os.environ.get("PATH", ""), "CODEMODE_CACHE_DIR": str(cache), "CODEMODE_LOG": "error"}
    search = ["search", "--config", str(cfg), "async () => Object.keys(spec.paths).length"]
    cold, warm, down = [], [], []
    for _ in range(RUNS):
        shutil.rmtree(cache, ignore_errors=True)
        cold.append(timed(search, env))
        warm.append(timed(search, env))
    httpd.shutdown()
    httpd.server_close()
    for _ in range(RUNS):
        down.append(timed(search, env))
    print(f"spec {SPEC.name}: {len(BODY) / 1e6:.1f} MB, {RUNS} runs, median ms")
    print(f"  search, empty cache (download, 200):   {statistics.median(cold):8.0f}")
    print(f"  search, warm cache (revalidate, 304):  {statistics.median(warm):8.0f}")
    print(f"  search, server down (cached copy):     {statistics.median(down):8.0f}")

    # SIGHUP reloads of a server over HTTP (the spec now from the cache).
    port_cfg = tmp / "serve.toml"
    local = tmp / SPEC.name
    local.write_bytes(BODY)
    port_cfg.write_text(
        f'[server]\ntransport = "http"\nlisten = "127.0.0.1:0"\n[[api]]\nname = "cloudflare"\nspec = "{local}"\nmock = true\n'
    )
    log = tmp / "serve.log"
    with open(log, "w") as f:
        proc = subprocess.Popen([str(BINARY), "serve", "--config", str(port_cfg)], stderr=f, stdout=subprocess.DEVNULL,
                                env={**env, "CODEMODE_LOG": "info"})
    try:
        while "ready: serving MCP over HTTP" not in log.read_text():
            assert proc.poll() is None, log.read_text()
            time.sleep(0.05)
        reloads = []
        for i in range(RUNS):
            proc.send_signal(signal.SIGHUP)
            while len(re.findall(r"reloaded: new calls", log.read_text())) <= i:
                assert proc.poll() is None, log.read_text()
                time.sleep(0.05)
            line = [l for l in log.read_text().splitlines() if "reloaded: new calls" in l][-1]
            reloads.append(int(re.search(r"elapsed_ms=(\d+)", line).group(1)))
        print(f"  SIGHUP reload (build next state, swap): {statistics.median(reloads):8.0f}  (all: {reloads})")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
