"""Live reload against the release binary: SIGHUP (and `serve --watch`)
with a good and with a bad config while a stream of calls runs over
Streamable HTTP (official Python SDK) and over stdio. No call may fail;
the new config applies to the calls after the reload; a bad one is
reported in the log and the old one keeps serving; a call running across
the reload finishes on the state it started on."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import anyio
import pytest

from conftest import BINARY, mcp_session
from test_http_helpers import BOOKSHELF, codemode_http, http_session, text_of

pytestmark = pytest.mark.anyio

# How long a reload may take before the test calls it broken: it loads
# specs and starts sandbox workers, so it is bounded like a start-up.
RELOAD_WITHIN = 120.0


def api(name: str, spec: Path | str = BOOKSHELF) -> str:
    return f'[[api]]\nname = "{name}"\nspec = "{spec}"\nmock = true\nallow_writes = true\n'


NAMES = "async () => Object.keys(specs).sort().join(',')"
# Runs long enough to be in flight when the reload happens, then makes a
# request through the API it started with.
SLOW = """async () => {
  const t = Date.now(); while (Date.now() - t < 1500) {}
  const r = await bookshelf.request("GET /books");
  return "slow:" + r.status;
}"""


async def eventually(predicate, what: str, within: float = RELOAD_WITHIN):
    """Waits (without blocking the event loop) until `predicate()` holds."""
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, f"{what}: not within {within} s"
        await anyio.sleep(0.05)


class Stream:
    """Calls `search` back to back on one session and records every answer."""

    def __init__(self, session):
        self.session = session
        self.seen: list[str] = []
        self.failures: list[str] = []
        self.stop = False

    async def run(self):
        while not self.stop:
            try:
                r = await self.session.call_tool("search", {"code": NAMES})
                if r.is_error:
                    self.failures.append(text_of(r))
                else:
                    self.seen.append(text_of(r))
            except Exception as e:  # noqa: BLE001 - every failure is the finding
                self.failures.append(repr(e))
            await anyio.sleep(0.01)


async def until_seen(stream: Stream, want: str, within: float = RELOAD_WITHIN):
    deadline = time.monotonic() + within
    start = len(stream.seen)
    while want not in stream.seen[start:]:
        assert not stream.failures, stream.failures
        assert time.monotonic() < deadline, f"never saw {want!r}; last: {stream.seen[-3:]}"
        await anyio.sleep(0.05)


async def test_sighup_over_http_applies_a_good_config_and_keeps_serving_through_a_bad_one(tmp_path):
    with codemode_http(tmp_path, apis=api("bookshelf")) as srv:
        cfg = next(tmp_path.glob("codemode-*.toml"))
        head = cfg.read_text().split("[[api]]", 1)[0]
        async with http_session(srv.url) as session:
            stream = Stream(session)
            async with anyio.create_task_group() as tg:
                tg.start_soon(stream.run)
                await until_seen(stream, "bookshelf", within=30)

                # A call in flight across the reload finishes on the state it
                # started on (its client, its sandbox).
                slow_result: dict = {}

                async def slow():
                    slow_result["r"] = await session.call_tool("execute", {"code": SLOW})

                tg.start_soon(slow)
                await anyio.sleep(0.3)

                # A good config: a second API appears.
                cfg.write_text(head + api("bookshelf") + api("library"))
                reloads = srv.log().count("reloaded: new calls use the new config")
                srv.proc.send_signal(signal.SIGHUP)
                await until_seen(stream, "bookshelf,library")
                assert srv.log().count("reloaded: new calls use the new config") == reloads + 1, srv.log()

                # A bad config (TOML that does not parse): reported, the old one serves.
                cfg.write_text(head + api("bookshelf") + "[[api]\nname = broken\n")
                srv.proc.send_signal(signal.SIGHUP)
                await eventually(lambda: "reload failed: still serving the previous config" in srv.log(), "the bad config is reported")
                assert "invalid TOML" in srv.log(), srv.log()
                # A config that parses but whose spec does not load: the same.
                cfg.write_text(head + api("bookshelf") + api("missing", tmp_path / "nope.yaml"))
                failed = srv.log().count("reload failed")
                srv.proc.send_signal(signal.SIGHUP)
                await eventually(lambda: srv.log().count("reload failed") == failed + 1, "the missing spec is reported")
                assert "nope.yaml" in srv.log()
                await until_seen(stream, "bookshelf,library")

                # A new session after all that gets the last good config.
                async with http_session(srv.url) as fresh:
                    r = await fresh.call_tool("search", {"code": NAMES})
                    assert text_of(r) == "bookshelf,library"
                stream.stop = True

            assert not stream.failures, stream.failures
            r = slow_result["r"]
            assert not r.is_error and text_of(r).strip('"') == "slow:200", text_of(r)
            assert srv.proc.poll() is None, "SIGHUP must not end the server"
            # The old generation was shut down once its last call ended.
            await eventually(lambda: "previous config retired" in srv.log(), "the old state is retired")
        assert srv.stop() == 0


def codemode_child() -> int:
    """The pid of the codemode process this test process started (stdio)."""
    me = os.getpid()
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text().rsplit(")", 1)[1].split()
            exe = os.readlink(d / "exe")
        except OSError:
            continue
        if int(stat[1]) == me and Path(exe) == BINARY.resolve():
            return int(d.name)
    raise AssertionError("no codemode child process")


async def test_sighup_over_stdio_reloads_instead_of_ending_the_session(tmp_path):
    cfg = tmp_path / "codemode.toml"
    cfg.write_text(api("bookshelf"))
    errlog = open(tmp_path / "stderr.log", "w")
    log = lambda: (tmp_path / "stderr.log").read_text()  # noqa: E731
    async with mcp_session(["--config", str(cfg)], errlog=errlog) as session:
        pid = codemode_child()
        r = await session.call_tool("search", {"code": NAMES})
        assert text_of(r) == "bookshelf"
        cfg.write_text(api("bookshelf") + api("library"))
        os.kill(pid, signal.SIGHUP)
        await eventually(lambda: "reloaded: new calls use the new config" in log(), "the reload")
        r = await session.call_tool("search", {"code": NAMES})
        assert text_of(r) == "bookshelf,library", log()
        # A bad one: the session goes on with the last good config.
        cfg.write_text("not toml [")
        os.kill(pid, signal.SIGHUP)
        await eventually(lambda: "reload failed" in log(), "the failed reload")
        r = await session.call_tool("search", {"code": NAMES})
        assert text_of(r) == "bookshelf,library"
    errlog.close()


async def test_watch_reloads_when_the_config_file_changes(tmp_path):
    cfg = tmp_path / "codemode.toml"
    cfg.write_text(api("bookshelf"))
    errlog = open(tmp_path / "stderr.log", "w")
    log = lambda: (tmp_path / "stderr.log").read_text()  # noqa: E731
    async with mcp_session(["--config", str(cfg), "--watch"], errlog=errlog) as session:
        r = await session.call_tool("search", {"code": NAMES})
        assert text_of(r) == "bookshelf"
        cfg.write_text(api("bookshelf") + api("library"))
        await eventually(lambda: "reloaded: new calls use the new config" in log(), "the reload on change")
        assert "changed" in log()
        r = await session.call_tool("search", {"code": NAMES})
        assert text_of(r) == "bookshelf,library", log()
    errlog.close()
