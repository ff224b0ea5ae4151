"""The hostile corpus (corpus.CASES) against one long-lived stdio server with the
main profile: escape, exfiltration, exhaustion and run-once cases, several at a
time. Each case asserts its safe outcome, the time bound, that no canary
credential shows up, what reached the upstreams, and that a benign call right
after it answers correctly within 1 s."""

from __future__ import annotations

import asyncio

import pytest

from conftest import MAX_REQUESTS, TIMEOUT, main_config
from corpus import CASES
from harness import Codemode, leaks, run_cases

MAIN = [c for c in CASES if c.profile == "main"]
STATE: dict = {}


@pytest.fixture(scope="module")
def results(ctx, request):
    # Only the cases pytest selected (-k) are run.
    wanted = {item.callspec.params["case"].id for item in request.session.items
              if item.originalname == "test_case" and item.module.__name__ == __name__}
    cases = [c for c in MAIN if c.id in wanted]
    cfg = main_config(ctx, "corpus")

    async def go():
        cm = Codemode("corpus", cfg, ctx.tmp)
        await cm.start()
        try:
            # warm up: every portal server listed, both tools answer
            for tool in ("search", "execute"):
                await cm.call(tool, "async () => 0", 30)
            res = await run_cases(cm, cases, ctx, TIMEOUT, MAX_REQUESTS)
        finally:
            await cm.stop()
        STATE["cm"] = cm
        return res

    return asyncio.run(go())


def test_corpus_has_unique_ids():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})


@pytest.mark.parametrize("case", MAIN, ids=[c.id for c in MAIN])
def test_case(case, results):
    rec = results[case.id]
    assert not rec.problems, rec.report()


def test_no_canary_in_the_server_log(results):
    cm = STATE["cm"]
    log = cm.log_text()
    assert log, "the server wrote no log at all"
    assert not leaks(log), leaks(log)


def test_the_server_never_had_to_be_restarted(results):
    cm = STATE["cm"]
    assert not cm.restarts, f"hung calls forced {len(cm.restarts)} restart(s), after: {cm.restarts}"
