"""Nothing crosses calls (corpus.PAIRS): a plant (globals, prototypes,
Error.prepareStackTrace / stackTraceLimit, Symbol.for registry, spec objects,
Atomics, WeakRefs / FinalizationRegistry, jobs queued after return, from
toJSON, from getters on thrown errors, ...) is never observable by a later
probe. Each probe first runs on a fresh server (its baseline); then
plant-then-probe runs 8 times (so every search worker and execute slot is
hit), pairs concurrently, over one long-lived stdio server and over one HTTP
server where the plant and the probe come from *different* client sessions.
Every probe must read exactly its baseline, every plant must end by its
deadline, and a benign search and execute answer within 1 s afterwards."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from conftest import HTTP_SERVER, TIMEOUT, main_config
from corpus import PAIRS
from harness import HANG_GRACE, SLACK, Codemode, benign, benign_problems, leaks

ROUNDS = 8
SESSIONS = 3  # HTTP client sessions; the plant and the probe always use different ones
CASES = [(p, tool, transport) for transport in ("stdio", "http") for p in PAIRS
         for tool in (("search", "execute") if p.tools == "both" else (p.tools,))]


def case_id(c):
    p, tool, transport = c
    return f"{p.id}-{tool[0]}-{transport}"


@dataclasses.dataclass
class Result:
    problems: list
    baseline: str = ""


def describe(o) -> str:
    if o.hung:
        return f"<no answer within {TIMEOUT + HANG_GRACE} s>"
    if o.broken or o.rpc_error:
        return f"<failed: {o.broken or o.rpc_error}>"
    return ("ERROR " if o.is_error else "") + o.text.strip()[:300]


async def run_transport(ctx, transport: str, selected) -> dict:
    limits = {"search_workers": 2, "max_concurrent_executions": 4}
    if transport == "http":
        cfg = main_config(ctx, "xcall-http", limits, server=HTTP_SERVER)
        cm = Codemode("xcall-http", cfg, ctx.tmp, http=True)
        await cm.start(sessions=SESSIONS)
    else:
        cfg = main_config(ctx, "xcall-stdio", limits)
        cm = Codemode("xcall-stdio", cfg, ctx.tmp)
        await cm.start()
    results: dict = {}
    try:
        for tool in ("search", "execute"):
            await cm.call(tool, "async () => 0", 30)
        cases = [c for c in CASES if c[2] == transport and case_id(c) in selected]
        # Baselines, on the fresh server, before any plant.
        baselines = {}
        for c in cases:
            p, tool, _ = c
            baselines[case_id(c)] = await cm.call(tool, p.probe, TIMEOUT + HANG_GRACE, session=1)

        sem = asyncio.Semaphore(3)
        poisoned: list[str] = []

        async def one(c):
            p, tool, _ = c
            cid = case_id(c)
            base = baselines[cid]
            probs = []
            if base.hung or base.broken or base.rpc_error:
                probs.append(f"the probe's baseline on a fresh server failed: {describe(base)}")
            elif p.expect is not None and (base.is_error or base.text.strip() != p.expect):
                probs.append(f"the probe's baseline {describe(base)!r} is not the expected {p.expect!r}")
            async with sem:
                for r in range(ROUNDS):
                    plant = await cm.call(tool, p.plant, TIMEOUT + HANG_GRACE, session=r)
                    if plant.hung or plant.broken or plant.rpc_error or plant.elapsed > TIMEOUT + SLACK:
                        probs.append(f"round {r}: the plant did not end by its deadline: {describe(plant)} after {plant.elapsed:.2f} s")
                        poisoned.append(cid)
                        break
                    probe = await cm.call(tool, p.probe, TIMEOUT + HANG_GRACE, session=r + 1)
                    if describe(probe) != describe(base):
                        probs.append(f"round {r}: the probe read {describe(probe)!r}, on a fresh server {describe(base)!r}")
                        break
                    for t in (plant.text, probe.text):
                        if leaks(t):
                            probs.append(f"canary in the text: {leaks(t)}")
                for t in ("search", "execute"):
                    probs += benign_problems(t, await benign(cm, t, session=ROUNDS + 2))
            results[cid] = Result(probs, describe(base))

        # Pairs that can leave a runaway job behind go last, so they do not take
        # down the workers every other pair is judged on.
        first = [c for c in cases if "requeue" not in c[0].id]
        last = [c for c in cases if "requeue" in c[0].id]
        await asyncio.gather(*(one(c) for c in first))
        for c in last:
            await one(c)
    finally:
        await cm.stop()
    return results


@pytest.fixture(scope="module")
def results(ctx, request):
    selected = {case_id(item.callspec.params["case"]) for item in request.session.items
                if item.originalname == "test_pair" and item.module.__name__ == __name__}
    transports = [t for t in ("stdio", "http") if any(s.endswith("-" + t) for s in selected)]

    async def both():
        # The two servers run side by side (each its own long-lived server).
        return await asyncio.gather(*(run_transport(ctx, t, selected) for t in transports))

    out = {}
    for part in asyncio.run(both()):
        out.update(part)
    return out


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_pair(case, results):
    p, tool, transport = case
    r = results[case_id(case)]
    assert not r.problems, (f"{case_id(case)}: plant {p.plant!r}\nprobe {p.probe!r}\n"
                            + "\n".join("PROBLEM: " + x for x in r.problems))
