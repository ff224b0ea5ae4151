"""Runs last: no canary credential, in any encoding, in the stderr log of any
codemode server the suite started (every profile, every restart)."""

from __future__ import annotations

from harness import leaks


def test_no_canary_in_any_server_log(ctx):
    logs = sorted(ctx.tmp.glob("*.stderr.log"))
    assert logs, "no server logs found"
    found = {p.name: leaks(p.read_text(errors="replace")) for p in logs}
    found = {k: v for k, v in found.items() if v}
    assert not found, found
