"""Availability: with every execute slot (max_concurrent_executions = 2) or
every search worker (search_workers = 2) taken by code that does not yield
to the interrupt handler, a benign call still answers within the deadline +
1 s, the stuck calls end by their deadline + 250 ms naming the time limit,
and afterwards a benign call answers within 1 s."""

from __future__ import annotations

import asyncio
import time

import pytest

from conftest import TIMEOUT, main_config
from harness import HANG_GRACE, SLACK, Codemode, benign, benign_problems

SLOTS = 2
STUCK = [
    ("busy-loop", "both", "async () => { while (true) {} }"),
    ("native-indexOf-loop", "both", "async () => { const s = 'a'.repeat(1e7); for (;;) s.indexOf('b'); }"),
    ("native-join-huge-arraylike", "both", "async () => Array.prototype.join.call({length: 2 ** 53 - 1}, '')"),
    ("native-sort-huge-arraylike", "execute", "async () => Array.prototype.sort.call({length: 2 ** 53 - 1})"),
    ("bigint-division-loop", "execute", "async () => { for (;;) (10n ** 300000n) / (7n ** 100000n); }"),
    ("microtask-requeue", "both",
     "async () => { const f = () => { Promise.resolve().then(f); for (let i = 0; i < 1e5; i++); }; f(); await new Promise(() => {}); }"),
    ("await-loops", "execute", "async () => { await Promise.all(Array.from({length: 20000}, async () => { for (;;) await null; })); }"),
    ("regex", "search", "async () => /^(a+)+$/.test('a'.repeat(40) + 'b')"),
]
CASES = [(id, t, code) for id, tools, code in STUCK for t in (("search", "execute") if tools == "both" else (tools,))]


@pytest.fixture(scope="module")
def server(ctx):
    cfg = main_config(ctx, "availability", {"max_concurrent_executions": SLOTS, "search_workers": SLOTS}, portal=False)
    loop = asyncio.new_event_loop()
    cm = Codemode("availability", cfg, ctx.tmp)
    loop.run_until_complete(cm.start())
    yield loop, cm
    loop.run_until_complete(cm.stop())
    loop.close()


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_benign_answers_while_every_slot_is_stuck(case, server):
    loop, cm = server
    _, tool, code = case

    async def go():
        if not cm.alive():
            await cm.restart("dead before the case")
        stuck = [asyncio.create_task(cm.call(tool, code, TIMEOUT + HANG_GRACE)) for _ in range(SLOTS)]
        await asyncio.sleep(0.3)
        t0 = time.monotonic()
        b = await cm.call(tool, "async () => 1" if tool == "search" else "async () => 2", TIMEOUT + HANG_GRACE + 2)
        b_elapsed = time.monotonic() - t0
        outs = await asyncio.gather(*stuck)
        after = await benign(cm, tool)
        return b, b_elapsed, outs, after

    b, b_elapsed, outs, after = loop.run_until_complete(go())
    probs = []
    for i, o in enumerate(outs):
        if o.hung or o.broken:
            probs.append(f"stuck call {i} did not answer within {TIMEOUT + HANG_GRACE} s ({o.broken or 'hung'})")
        else:
            if o.elapsed > TIMEOUT + SLACK:
                probs.append(f"stuck call {i} took {o.elapsed:.2f} s (> {TIMEOUT + SLACK})")
            if not o.is_error or "time limit" not in o.text.lower():
                probs.append(f"stuck call {i} did not end naming the time limit: {o.text[:200]!r}")
    want = "1" if tool == "search" else "2"
    if b.hung or b.is_error or b.text.strip() != want:
        probs.append(f"the benign call while all slots were stuck failed: hung={b.hung} {b.text[:200]!r}")
    elif b_elapsed > TIMEOUT + 1:
        probs.append(f"the benign call while all slots were stuck took {b_elapsed:.2f} s (> deadline + 1 s)")
    probs += benign_problems(tool, after)
    if probs:
        loop.run_until_complete(cm.restart("after a failed availability case"))
    assert not probs, "\n".join(probs)
