"""Start-up with an introspected GraphQL schema: live vs the cached copy.

    .peers/venv/bin/python bench/graphql_cache_bench.py [RUNS]
    .peers/venv/bin/python bench/graphql_cache_bench.py --prepare DIR

The endpoint is a loopback HTTP server that answers every POST with GitHub's
published introspection result (npm @octokit/graphql-schema `schema.json`,
5 MB: the answer a GraphQL server gives the introspection query), so the
start-up cost is what codemode spends on a real large schema. Measured,
RUNS times each (median): `codemode search` ready-and-answer with

- `live, cache off`: introspect, convert, parse (CODEMODE_CACHE_DIR=off);
- `live, cached`: introspect again and compare with the cached copy (what
  every start does with the endpoint up);
- `endpoint down, cached copy`: no endpoint; the cached copy, with a warning.

`--prepare DIR` writes `live.toml` and `down.toml` there, seeds
`DIR/cache` for both, and keeps serving the `live.toml` endpoint until
interrupted, printing the two commands to time side by side with any
whole-process timer (`/usr/bin/time -v`, hyperfine)."""

from __future__ import annotations

import os
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
SCHEMA = ROOT / ".peers" / "graphql" / "node_modules" / "@octokit" / "graphql-schema" / "schema.json"
CODE = "async () => Object.keys(schema.types).length"


def serve(body: bytes) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def config(directory: Path, name: str, url: str) -> Path:
    p = directory / f"{name}.toml"
    p.write_text(f'[[api]]\nname = "github"\nkind = "graphql"\nurl = "{url}"\n')
    return p


def search(cfg: Path, cache: str) -> tuple[float, str]:
    env = {"PATH": os.environ.get("PATH", ""), "CODEMODE_CACHE_DIR": cache, "CODEMODE_LOG": "warn"}
    started = time.monotonic()
    r = subprocess.run([str(BINARY), "search", "--config", str(cfg), CODE], capture_output=True, text=True,
                       env=env, timeout=600)
    elapsed = time.monotonic() - started
    if r.returncode != 0:
        sys.exit(f"codemode search failed ({r.returncode}): {r.stderr}")
    return elapsed, r.stderr


def prepare(directory: Path, body: bytes) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    cache = directory / "cache"
    live = serve(body)
    down = serve(body)
    live_cfg = config(directory, "live", f"http://127.0.0.1:{live.server_address[1]}/graphql")
    down_cfg = config(directory, "down", f"http://127.0.0.1:{down.server_address[1]}/graphql")
    search(live_cfg, str(cache))
    search(down_cfg, str(cache))
    down.shutdown()
    down.server_close()
    env = f"CODEMODE_CACHE_DIR={cache}"
    print(f"live:  {env} {BINARY} search --config {live_cfg} '{CODE}'")
    print(f"down:  {env} {BINARY} search --config {down_cfg} '{CODE}'", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


def main() -> None:
    assert SCHEMA.exists(), "run tests/peers/setup.sh (installs @octokit/graphql-schema)"
    # The file holds `{"__schema": …}`; an endpoint answers `{"data": {"__schema": …}}`.
    body = b'{"data": ' + SCHEMA.read_bytes() + b"}"
    if sys.argv[1:2] == ["--prepare"]:
        prepare(Path(sys.argv[2]), body)
        return
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    with tempfile.TemporaryDirectory(prefix="graphql-cache-bench-") as tmp:
        tmp = Path(tmp)
        cache = str(tmp / "cache")
        httpd = serve(body)
        url = f"http://127.0.0.1:{httpd.server_address[1]}/graphql"
        cfg = config(tmp, "live", url)
        times: dict[str, list[float]] = {"live, cache off": [], "live, cached": [], "endpoint down, cached copy": []}
        for _ in range(runs):
            times["live, cache off"].append(search(cfg, "off")[0])
        search(cfg, cache)  # seeds the cache
        for _ in range(runs):
            times["live, cached"].append(search(cfg, cache)[0])
        httpd.shutdown()
        httpd.server_close()
        for _ in range(runs):
            elapsed, stderr = search(cfg, cache)
            assert "using the copy cached" in stderr, stderr
            times["endpoint down, cached copy"].append(elapsed)
        print(f"GitHub's introspection result ({len(body) / 1e6:.1f} MB), {runs} runs each, median (min–max) seconds")
        for what, t in times.items():
            print(f"| {what} | {statistics.median(t):.2f} ({min(t):.2f}–{max(t):.2f}) |")


if __name__ == "__main__":
    main()
