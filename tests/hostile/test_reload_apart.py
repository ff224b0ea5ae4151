"""Nothing crosses a live reload (SIGHUP). A reload builds a new generation
beside the running one; calls in flight finish on the old one. Two ways that
could go wrong, attacked here over one HTTP server:

- **State**: every plant of corpus.PAIRS runs while the reload happens (some
  are in flight when the new generation takes over); each probe then runs on
  the new generation from another client session and must read exactly what
  it reads on a fresh server.
- **Credentials**: an API's token comes from a file (`token_file`) that is
  rotated at the reload. A call in flight keeps sending the old token and the
  calls after it send the new one, never the other way round or a mix within
  one call; neither token, in any encoding, reaches a result, whichever
  generation echoes it (both are canaries, so test_zz_logs also checks every
  server log for them).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

from conftest import HTTP_SERVER, TIMEOUT, main_config
from corpus import ENCODINGS, PAIRS
from harness import CANARIES, HANG_GRACE, Codemode, leaks, write_spec

RELOADED = "reloaded: new calls use the new config"
RELOAD_FAILED = "reload failed"
# A reload builds every spec, worker pool and portal connection anew: on a
# loaded 2-core machine that takes seconds; the bound only ends a wait for a
# reload that never comes.
RELOAD_WITHIN = 180

CASES = [(p, tool) for p in PAIRS for tool in (("search", "execute") if p.tools == "both" else (p.tools,))]


def case_id(c) -> str:
    p, tool = c
    return f"{p.id}-{tool[0]}"


def describe(o) -> str:
    if o.hung:
        return f"<no answer within {TIMEOUT + HANG_GRACE} s>"
    if o.broken or o.rpc_error:
        return f"<failed: {o.broken or o.rpc_error}>"
    return ("ERROR " if o.is_error else "") + o.text.strip()[:300]


class Reloader:
    """Sends SIGHUP to the server after changing its config file, and waits
    for the log to say the new generation serves."""

    def __init__(self, cm: Codemode):
        self.cm = cm
        self.count = 0

    def config_path(self):
        return self.cm.tmp / f"{self.cm.name}-{self.cm.generation}.toml"

    def trigger(self):
        self.count += 1
        path = self.config_path()
        path.write_text(path.read_text() + f"\n# reload {self.count}\n")
        self.cm.proc.send_signal(signal.SIGHUP)

    async def done(self):
        deadline = time.monotonic() + RELOAD_WITHIN
        while self.cm.log_text().count(RELOADED) < self.count:
            log = self.cm.log_text()
            assert RELOAD_FAILED not in log, log[-3000:]
            assert time.monotonic() < deadline, f"reload {self.count} did not finish:\n{log[-3000:]}"
            await asyncio.sleep(0.05)


def rot_api(ctx, token_file) -> str:
    return f"""
[[api]]
name = "rot"
spec = "{write_spec(ctx.tmp, "rot.json")}"
base_url = "{ctx.cnt.url}/api"
auth = {{ type = "bearer", token_file = "{token_file}" }}
"""


def bearer_of(hit) -> str:
    return next((v for k, v in hit.headers if k.lower() == "authorization"), "")


# Runs across the reload: a request, a busy second (the reload lands in it), and
# three more requests, each marked with its step.
IN_FLIGHT = """async () => {
  const seen = [];
  for (let i = 0; i < 4; i++) {
    seen.push((await rot.request('GET /items/{id}', {id: 'MARK-' + i})).status);
    if (i === 0) { const t = Date.now(); while (Date.now() - t < 1000) {} }
  }
  return seen;
}"""

ECHOES = """async () => {
  const out = [];
  for (const enc of ENCS) {
    try { const r = await rot.request('GET /leak/' + enc); out.push(JSON.stringify(r.data), JSON.stringify(r.headers)); }
    catch (e) { out.push(String(e), JSON.stringify(e)); }
  }
  return out;
}""".replace("ENCS", repr(ENCODINGS))


async def run(ctx) -> dict:
    token = ctx.tmp / "reload-rot.token"
    token.write_text(CANARIES["CM_ROT_OLD"] + "\n")
    os.chmod(token, 0o600)
    cfg = main_config(ctx, "reload-http", {"search_workers": 2, "max_concurrent_executions": 4},
                      server=HTTP_SERVER, extra=rot_api(ctx, token))
    cm = Codemode("reload-http", cfg, ctx.tmp, http=True)
    await cm.start(sessions=3)
    reload = Reloader(cm)
    out: dict = {"pairs": {}, "credentials": []}
    try:
        for tool in ("search", "execute"):
            await cm.call(tool, "async () => 0", 60)
        baselines = {case_id(c): await cm.call(c[1], c[0].probe, TIMEOUT + HANG_GRACE, session=1) for c in CASES}

        # -- state: every plant around a reload, every probe after it
        sem = asyncio.Semaphore(4)

        async def plant(c):
            async with sem:
                return await cm.call(c[1], c[0].plant, TIMEOUT + HANG_GRACE, session=0)

        plants = asyncio.gather(*(plant(c) for c in CASES if "requeue" not in c[0].id))
        await asyncio.sleep(0.2)  # some plants are in flight when the reload lands (the rest is fine either way)
        reload.trigger()
        await plants
        await reload.done()
        for c in CASES:
            if "requeue" in c[0].id:  # may leave a runaway job behind: alone, after the others
                await cm.call(c[1], c[0].plant, TIMEOUT + HANG_GRACE, session=0)
        for c in CASES:
            probe = await cm.call(c[1], c[0].probe, TIMEOUT + HANG_GRACE, session=2)
            base = baselines[case_id(c)]
            problems = []
            if describe(probe) != describe(base):
                problems.append(f"after the reload the probe read {describe(probe)!r}, on a fresh server {describe(base)!r}")
            if leaks(probe.text):
                problems.append(f"canary in the probe's text: {leaks(probe.text)}")
            out["pairs"][case_id(c)] = problems

        # -- credentials: the token file rotated at a reload during a call
        problems = out["credentials"]
        marks = []
        before = len(ctx.cnt.hits)
        flight = asyncio.create_task(cm.call("execute", IN_FLIGHT.replace("MARK", "old"), 60, session=0))
        deadline = time.monotonic() + 60
        while not ctx.cnt.marked("old-0"):
            assert time.monotonic() < deadline and not flight.done(), "the in-flight call never reached the upstream"
            await asyncio.sleep(0.02)
        token.write_text(CANARIES["CM_ROT_NEW"] + "\n")
        reload.trigger()
        await reload.done()
        old = await flight
        new = await cm.call("execute", IN_FLIGHT.replace("MARK", "new"), 60, session=1)
        for name, o in (("in flight", old), ("after", new)):
            if o.is_error or o.text.strip() != "[200,200,200,200]":
                problems.append(f"the call {name} the reload failed: {describe(o)}")
        for mark, want in (("old", "CM_ROT_OLD"), ("new", "CM_ROT_NEW")):
            for i in range(4):
                hits = [h for h in ctx.cnt.hits[before:] if f"{mark}-{i}" in h.path]
                got = {bearer_of(h) for h in hits}
                marks.append((mark, i, got))
                if got != {f"Bearer {CANARIES[want]}"}:
                    label = {f"Bearer {v}": k for k, v in CANARIES.items()}
                    problems.append(f"request {mark}-{i} carried {sorted(label.get(g, 'something else') for g in got)}, not {want}")
        # Both generations echo their token back in every encoding: redacted.
        for session in (0, 1, 2):
            o = await cm.call("execute", ECHOES, 60, session=session)
            if o.is_error and not o.text:
                problems.append(f"the echo call failed: {describe(o)}")
            if leaks(o.text):
                problems.append(f"a rotated token came back (session {session}): {leaks(o.text)}")
    finally:
        await cm.stop()
    return out


@pytest.fixture(scope="module")
def results(ctx):
    return asyncio.run(run(ctx))


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_pair_across_a_reload(case, results):
    p, _ = case
    problems = results["pairs"][case_id(case)]
    assert not problems, f"{case_id(case)}: plant {p.plant!r}\nprobe {p.probe!r}\n" + "\n".join(problems)


def test_rotated_credential_at_a_reload(results):
    assert not results["credentials"], "\n".join(results["credentials"])
