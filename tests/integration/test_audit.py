"""The audit trail end to end, through the release binary: a mixed stdio session
against Kinto read back with `codemode audit --json` / `--show ID --json`, no
credential in the SQLite files, durability of every answered call across a
SIGKILL, and redaction plus a DLP refusal against httpbin.

Real components only: Kinto (writes read back over plain HTTP), httpbin, the
release binary driven by the official Python MCP SDK or by raw JSON-RPC lines."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import BINARY, SPECS, mcp_session, text_of, write_config
from test_governance import fresh_bucket, kinto_api, kinto_http, records_path, run, run_ok, titles

pytestmark = pytest.mark.anyio

HTTPBIN_SPEC = SPECS / "httpbin-0.10.4.spec.json"


def audit(db: Path, *args: str):
    """`codemode audit --db DB ARGS`: stdout parsed as JSON (or JSONL for --jsonl)."""
    p = subprocess.run([str(BINARY), "audit", "--db", str(db), *args], capture_output=True, text=True, timeout=30,
                       env={"PATH": os.environ.get("PATH", "")})
    assert p.returncode == 0, f"codemode audit {args} failed ({p.returncode}):\n{p.stderr}"
    if "--jsonl" in args:
        return [json.loads(line) for line in p.stdout.splitlines() if line.strip()]
    return json.loads(p.stdout)


def db_bytes(db: Path) -> bytes:
    """Every file of the store (db, -wal, -shm, journals)."""
    return b"".join(f.read_bytes() for f in db.parent.glob(db.name + "*") if f.is_file())


# --- 1. a mixed session against Kinto ------------------------------------------


async def test_mixed_session_is_listed_and_shown_with_its_calls(tmp_path, kinto_peer):
    kinto = kinto_peer
    bid = fresh_bucket(kinto)
    seed_status, _ = kinto_http(kinto, "PUT", f"{records_path(bid)}/keep", {"data": {"title": "keep me"}})
    assert seed_status in (200, 201)
    db = tmp_path / "audit.db"
    cfg = write_config(tmp_path, f'[audit]\npath = "{db}"\n\n' + kinto_api(kinto, allow_writes=True, deny=["DELETE /**"]))
    rec = records_path(bid)

    search_code = "async () => codemode.tools().length"
    rw_code = f"""async () => {{
  const g = await kinto.request('GET {rec}');
  const p = await kinto.request({{method: 'POST', path: '{rec}', body: {{data: {{title: 'audited post'}}}}}});
  return {{get: g.status, post: p.status}};
}}"""
    del_code = f"async () => kinto.request({{method: 'DELETE', path: '{rec}/keep'}})"
    throw_code = "async () => { throw new Error('thrown on purpose'); }"

    async with mcp_session(["--config", str(cfg)], env={"KINTO_PASSWORD": kinto.password}) as s:
        await run_ok(s, search_code, tool="search")
        _, out = await run_ok(s, rw_code)
        assert out == {"get": 200, "post": 201}, out
        r, _ = await run(s, del_code)
        assert r.is_error and "PolicyError" in text_of(r), text_of(r)
        r, _ = await run(s, throw_code)
        assert r.is_error and "thrown on purpose" in text_of(r), text_of(r)

    # The POST really landed; the denied DELETE did not.
    assert titles(kinto, bid) == ["audited post", "keep me"]

    listed = audit(db, "--json")
    assert isinstance(listed, list) and len(listed) == 4, json.dumps(listed, indent=1)
    listed.sort(key=lambda e: e["id"])
    assert [e["tool"] for e in listed] == ["search", "execute", "execute", "execute"], listed
    assert [e["outcome"] == "ok" for e in listed] == [True, True, False, False], listed
    assert [e["calls"] for e in listed] == [0, 2, 1, 0], listed

    shown = [audit(db, "--show", str(e["id"]), "--json") for e in listed]
    assert [e["code"] for e in shown] == [search_code, rw_code, del_code, throw_code], shown
    assert [e["tool"] for e in shown] == ["search", "execute", "execute", "execute"]
    for e in shown:
        assert e["principal"] is None or isinstance(e["principal"], str), e

    calls = shown[1]["calls"]
    assert [(c["target"], c["method"], c["path"], c["status"]) for c in calls] == [
        ("kinto", "GET", rec, 200), ("kinto", "POST", rec, 201)], calls
    assert all(c["ok"] and not c.get("refused") for c in calls), calls
    assert calls[1]["allowedBy"] and "allow_writes" in calls[1]["allowedBy"], calls[1]

    (deleted,) = shown[2]["calls"]
    assert (deleted["method"], deleted["path"]) == ("DELETE", f"{rec}/keep"), deleted
    assert not deleted["ok"] and deleted["status"] is None, deleted
    assert deleted["refused"] and deleted["refused"]["error"] == "PolicyError", deleted
    assert "DELETE /**" in json.dumps(deleted["refused"]), deleted
    assert shown[3]["calls"] == [], shown[3]
    assert "thrown on purpose" in (shown[3].get("errorMessage") or ""), shown[3]

    # Checked against Kinto's own access log: the requests codemode sent (its user agent)
    # to this test's bucket are exactly the calls the store says were sent — the refused
    # DELETE never reached Kinto — with the same method, path and status.
    sent = [(c["method"], "/v1" + c["path"], c["status"]) for e in shown for c in e["calls"] if not c.get("refused")]
    upstream_saw = []
    for _ in range(50):  # Kinto's log line follows its answer; give it a moment
        upstream_saw = [r for r in kinto.access_log("codemode/") if f"/buckets/{bid}/" in r[1]]
        if len(upstream_saw) >= len(sent):
            break
        time.sleep(0.1)
    assert upstream_saw == sent, f"Kinto served {upstream_saw}, the audit store says {sent}"

    # Credentials never reach the store.
    raw = db_bytes(db)
    assert b"audited post" in raw, "the store should hold the code (so the checks below mean something)"
    assert kinto.password.encode() not in raw, "the Kinto password is in the audit store"
    assert base64.b64encode(f"{kinto.user}:{kinto.password}".encode()) not in raw, "the Basic credential is in the store"


# --- 2. SIGKILL: nothing answered is lost ----------------------------------------


async def test_every_answered_call_survives_sigkill(tmp_path, httpbin_peer):
    db = tmp_path / "audit.db"
    cfg = write_config(tmp_path, f'[audit]\npath = "{db}"\n\n[[api]]\nname = "bin"\nspec = "{HTTPBIN_SPEC}"\n'
                                 f'base_url = "{httpbin_peer}"\n')
    proc = await asyncio.create_subprocess_exec(
        str(BINARY), "serve", "--config", str(cfg), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL, env={"PATH": os.environ.get("PATH", ""), "CODEMODE_LOG": "warn"})

    async def send(msg: dict):
        proc.stdin.write((json.dumps(msg) + "\n").encode())
        await proc.stdin.drain()

    answered: set[int] = set()

    async def reader():
        while True:
            line = await proc.stdout.readline()
            if not line:
                return
            msg = json.loads(line)
            if "id" in msg and msg["id"] >= 100 and "result" in msg and not msg["result"].get("isError"):
                answered.add(msg["id"])

    try:
        await send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "sigkill", "version": "1"}}})
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert json.loads(line)["id"] == 1
        await send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        task = asyncio.create_task(reader())
        n = 400
        for i in range(n):
            await send({"jsonrpc": "2.0", "id": 100 + i, "method": "tools/call",
                        "params": {"name": "execute", "arguments": {"code": f"async () => {i}"}}})
            if i == n // 2:
                # Let some answers come back, then kill it while the rest are in flight.
                for _ in range(200):
                    if len(answered) >= 20:
                        break
                    await asyncio.sleep(0.01)
                proc.send_signal(signal.SIGKILL)
                break
        await proc.wait()
        await asyncio.wait_for(task, 10)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()

    assert proc.returncode == -signal.SIGKILL
    assert len(answered) >= 20, f"only {len(answered)} answers before the kill"
    print(f"answered {len(answered)} of {i + 1} sent before SIGKILL")
    stored = {e["code"] for e in audit(db, "--jsonl")}
    missing = sorted(i - 100 for i in answered if f"async () => {i - 100}" not in stored)
    assert not missing, f"{len(missing)} answered executions are not in the store: {missing[:20]}"


# --- 3. redaction and DLP against httpbin ------------------------------------------


def b64url(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


EMAIL = "ada.lovelace@example.org"
CARD = "4111 1111 1111 1111"
JWT = ".".join([b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()),
                b64url(json.dumps({"sub": "x"}).encode()),
                b64url(b"not-really-a-signature-but-long-enough")])


async def test_redaction_and_dlp(tmp_path, httpbin_peer):
    db = tmp_path / "audit.db"
    apis = "".join(f"""
[[api]]
name = "{name}"
spec = "{HTTPBIN_SPEC}"
base_url = "{httpbin_peer}"
allow_writes = true
""" for name in ("bin", "crm"))
    cfg = write_config(tmp_path, f"""[audit]
path = "{db}"
{apis}
[[redact]]
detectors = ["all"]

[[dlp]]
id = "no-cards-to-crm"
detectors = ["card"]
apis = ["crm"]
""")
    body = json.dumps({"email": EMAIL, "card": CARD, "token": JWT})
    to_bin = f"async () => (await bin.request('POST /anything', {body})).data"
    to_crm = f"""async () => {{
  try {{ await crm.request('POST /anything', {{card: {json.dumps(CARD)}}}); return 'sent'; }}
  catch (e) {{ return {{name: e.name, message: String(e.message), rule: e.rule === undefined ? null : e.rule,
                        detector: e.detector === undefined ? null : e.detector}}; }}
}}"""
    async with mcp_session(["--config", str(cfg)]) as s:
        r, _ = await run_ok(s, to_bin)
        seen = json.dumps(r.model_dump(mode="json"))
        for marker in ("[redacted:email]", "[redacted:card]", "[redacted:jwt]"):
            assert marker in seen, f"{marker} missing from:\n{seen[:3000]}"
        for rawv in (EMAIL, CARD, CARD.replace(" ", ""), JWT):
            assert rawv not in seen, f"{rawv!r} came back to the model:\n{seen[:3000]}"
        _, out = await run_ok(s, to_crm)
        assert isinstance(out, dict) and out["name"] == "DlpError", out
        assert "no-cards-to-crm" in out["message"] or "no-cards-to-crm" in json.dumps(out["rule"]), out
        assert CARD not in json.dumps(out), out

    shown = [audit(db, "--show", str(e["id"]), "--json") for e in sorted(audit(db, "--json"), key=lambda e: e["id"])]
    assert [e["code"] for e in shown] == [to_bin, to_crm], shown
    (sent,) = shown[0]["calls"]
    assert (sent["target"], sent["method"], sent["path"], sent["status"]) == ("bin", "POST", "/anything", 200), sent
    (refusal,) = shown[1]["calls"]
    assert (refusal["target"], refusal["method"], refusal["path"]) == ("crm", "POST", "/anything"), refusal
    assert refusal["refused"] and refusal["refused"]["error"] == "DlpError", refusal
    assert "no-cards-to-crm" in json.dumps(refusal["refused"]), refusal
    assert CARD not in json.dumps(refusal), refusal
