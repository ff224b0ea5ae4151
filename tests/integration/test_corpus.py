"""The model-style snippet corpus (issue 12): code the way models write it —
Cloudflare blog style, octokit-style GitHub code, Kinto and httpbin over the
network, portal chains, fenced code, bare expressions, statement bodies,
TypeScript, and the usual mistakes — each file in `corpus/` run through the
release binary over stdio with the official Python SDK, and checked against
the expectation in its own header.

A snippet is `corpus/NNN-name.js` (or `.ts`) starting with a header of
`// key: value` lines, then a blank line, then exactly what a model would
send (the header is not sent):

    // about: what the snippet shows (one line)
    // tool: search | execute
    // config: one of CONFIGS below
    // requires: typescript | globals | find     (optional; comma-separated)
    // bug: what is wrong in codemode            (optional: xfail, strict)
    // now: <text>           with `bug`: what the answer says meanwhile (repeatable)
    // result: <JSON>        the result, exactly (a JSON string: the text as is)
    // check: <Python expr>  over `value` (the result, parsed), `text`, `console`, `full`
    // error: <text>         the call is an error whose text contains this (repeatable)
    // console: <text>       the console output contains this (repeatable)
    // absent: <text>        no text of the answer contains this (repeatable)

A sidecar `NNN-name.py` defining `check(r)` (`r.value`, `r.text`,
`r.is_error`, `r.console`; assert inside) may stand in for `result`/`check`.
Without `error:` the call must succeed. A `bug` snippet states the behaviour
wanted; `now` pins what happens instead, so that it fails for that reason
only (a different failure is an error, not an expected failure).

Each config's binary is started once for the whole run, and its snippets run
one after another (configs side by side). A snippet that `requires` a feature
the binary lacks (found by a probe at the start: a TypeScript one-liner,
`typeof URL`, `typeof codemode.find`) is an expected failure, strictly: when
the feature is there, it must pass.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import sys
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from conftest import ROOT, SPECS, mcp_session, text_of

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
NODE_MCP = ROOT / ".peers" / "portal-node" / "node_modules" / "@modelcontextprotocol"
PYTHON = Path(sys.executable)
CF_TOKEN = "corpus-rehearsal-token-0123456789"
GH_TOKEN = "corpus-github-token-0123456789"
HTTPBIN_TOKEN = "corpus-httpbin-token-0123456789"
CALL_TIMEOUT = 30.0
TOOLS = ("search", "execute")
FEATURES = ("typescript", "globals", "find")
KEYS = {"about", "tool", "config", "requires", "bug", "now", "result", "check", "error", "console", "absent"}
REPEATABLE = {"error", "console", "absent", "now"}
HEADER_LINE = re.compile(r"^// ([a-z]+): ?(.*)$")


# --------------------------------------------------------------------------- snippets


@dataclasses.dataclass
class Snippet:
    """One corpus file: what to send, where, and what must come back."""

    path: Path
    fields: dict[str, list[str]]
    code: str

    @property
    def id(self) -> str:
        return self.path.stem

    def one(self, key: str) -> str | None:
        values = self.fields.get(key, [])
        return values[-1] if values else None

    @property
    def tool(self) -> str:
        return self.one("tool") or ""

    @property
    def config(self) -> str:
        return self.one("config") or ""

    @property
    def requires(self) -> list[str]:
        return [f.strip() for f in (self.one("requires") or "").split(",") if f.strip()]

    @property
    def sidecar(self) -> Path | None:
        p = self.path.with_suffix(".py")
        return p if p.exists() else None


def parse(path: Path) -> Snippet:
    """Splits a corpus file into its header fields and the code a model sends."""
    lines = path.read_text().split("\n")
    fields: dict[str, list[str]] = {}
    i = 0
    while i < len(lines) and (m := HEADER_LINE.match(lines[i])):
        fields.setdefault(m.group(1), []).append(m.group(2).strip())
        i += 1
    return Snippet(path, fields, "\n".join(lines[i:]).strip("\n") + "\n")


SNIPPETS = [parse(p) for p in sorted(CORPUS.glob("[0-9]*.[jt]s"))]


def problems_of(s: Snippet) -> list[str]:
    """What is wrong with a snippet's header (an empty list when it is well formed)."""
    out = [f"unknown key `{k}`" for k in s.fields if k not in KEYS]
    out += [f"`{k}` given {len(v)} times" for k, v in s.fields.items() if len(v) > 1 and k not in REPEATABLE]
    if "now" in s.fields and not s.one("bug"):
        out.append("`now` belongs to a `bug`")
    if "error" in s.fields and ("result" in s.fields or "check" in s.fields):
        out.append("`error` with `result` or `check`: a call either fails or answers")
    for key in ("about", "tool", "config"):
        if not s.one(key):
            out.append(f"missing `{key}`")
    if s.tool not in TOOLS:
        out.append(f"tool must be search or execute, not {s.tool!r}")
    if s.config not in CONFIGS:
        out.append(f"unknown config {s.config!r}; one of {sorted(CONFIGS)}")
    out += [f"unknown feature {f!r}" for f in s.requires if f not in FEATURES]
    if not any(k in s.fields for k in ("result", "check", "error")) and s.sidecar is None:
        out.append("no expectation: give `result`, `check`, `error` or a sidecar .py")
    if "result" in s.fields:
        try:
            json.loads(s.one("result"))
        except ValueError as e:
            out.append(f"`result` is not JSON: {e}")
    if "check" in s.fields:
        try:
            compile(s.one("check"), str(s.path), "eval")
        except SyntaxError as e:
            out.append(f"`check` is not a Python expression: {e}")
    if s.path.suffix == ".ts" and "typescript" not in s.requires:
        out.append("a .ts snippet must say `requires: typescript`")
    if not s.code.strip():
        out.append("no code after the header")
    return out


# --------------------------------------------------------------------------- configs


@dataclasses.dataclass
class Ctx:
    """What a config may need: a scratch directory and the peers (started on demand)."""

    tmp: Path
    peer: Callable[[str], Any]


@dataclasses.dataclass
class Config:
    """A config as the snippets see it: APIs and servers (TOML), the
    environment they read credentials from, and `[limits]` over BASE_LIMITS."""

    toml: str
    env: dict[str, str] = dataclasses.field(default_factory=dict)
    limits: dict[str, Any] = dataclasses.field(default_factory=dict)

    def text(self) -> str:
        limits = {**BASE_LIMITS, **self.limits}
        return "[limits]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in limits.items()) + self.toml


# Few workers per server: snippets run one at a time, and eight servers share the machine.
BASE_LIMITS = {"max_concurrent_executions": 2, "search_workers": 1}


def api(name: str, spec: Path | str, extra: str = "") -> str:
    return f'\n[[api]]\nname = "{name}"\nspec = "{spec}"\n{extra}\n'


BOOKSHELF = ROOT / "examples" / "bookshelf.yaml"
CLOUDFLARE = SPECS / "cloudflare-2024-08-06.openapi.json"
GITHUB = SPECS / "github-octokit-23.0.2.api.github.com.json"


def cfg_bookshelf(ctx: Ctx) -> Config:
    return Config(api("bookshelf", BOOKSHELF, "mock = true\nallow_writes = true"))


def cfg_cloudflare(ctx: Ctx) -> Config:
    auth = 'mock = true\nauth = { type = "bearer", token_env = "CF_TOKEN" }'
    return Config(api("cloudflare", CLOUDFLARE, auth), {"CF_TOKEN": CF_TOKEN})


def cfg_github(ctx: Ctx) -> Config:
    auth = 'mock = true\nallow_writes = true\nauth = { type = "bearer", token_env = "GITHUB_TOKEN" }'
    return Config(api("github", GITHUB, auth), {"GITHUB_TOKEN": GH_TOKEN})


def cfg_two_apis(ctx: Ctx) -> Config:
    """Two APIs in rehearsal: `specs.bookshelf`, `specs.github`, no `spec`."""
    gh = 'mock = true\nauth = { type = "bearer", token_env = "GITHUB_TOKEN" }'
    return Config(api("bookshelf", BOOKSHELF, "mock = true") + api("github", GITHUB, gh), {"GITHUB_TOKEN": GH_TOKEN})


def cfg_limits(ctx: Ctx) -> Config:
    """Small limits, so the limit errors come quickly."""
    limits = {"timeout_secs": 1.0, "console_kib": 4, "max_requests": 3}
    return Config(api("bookshelf", BOOKSHELF, "mock = true"), limits=limits)


def cfg_httpbin(ctx: Ctx) -> Config:
    url = ctx.peer("httpbin_peer")
    extra = f'base_url = "{url}"\nallow_writes = true\nauth = {{ type = "bearer", token_env = "HTTPBIN_TOKEN" }}'
    spec = SPECS / "httpbin-0.10.4.spec.json"
    return Config(api("httpbin", spec, extra), {"HTTPBIN_TOKEN": HTTPBIN_TOKEN}, {"timeout_secs": 5.0})


def cfg_kinto(ctx: Ctx) -> Config:
    k = ctx.peer("kinto_peer")
    extra = f'base_url = "{k.url}"\nallow_writes = true\nauth = {{ type = "basic", user = "{k.user}", password_env = "KINTO_PASSWORD" }}'
    return Config(api("kinto", SPECS / "kinto-26.5.0.swagger.json", extra), {"KINTO_PASSWORD": k.password})


def cfg_portal(ctx: Ctx) -> Config:
    """Three upstream MCP servers (server-everything, server-memory, a Python
    helpdesk) beside the bookshelf API in rehearsal."""
    assert NODE_MCP.exists(), "run crates/portal/tests/peers-setup.sh (scripts/test does)"
    text = f"""
[[mcp]]
name = "everything"
command = "node"
args = ["{NODE_MCP / 'server-everything' / 'dist' / 'index.js'}"]

[[mcp]]
name = "memory"
command = "node"
args = ["{NODE_MCP / 'server-memory' / 'dist' / 'index.js'}"]
env_from = {{ MEMORY_FILE_PATH = "CORPUS_MEMORY_FILE" }}

[[mcp]]
name = "helpdesk"
command = "{PYTHON}"
args = ["{CORPUS / 'helpdesk_mcp.py'}"]
""" + api("bookshelf", BOOKSHELF, "mock = true")
    return Config(text, {"CORPUS_MEMORY_FILE": str(ctx.tmp / "memory.json")})


CONFIGS: dict[str, Callable[[Ctx], Config]] = {
    "bookshelf": cfg_bookshelf,
    "cloudflare": cfg_cloudflare,
    "github": cfg_github,
    "two-apis": cfg_two_apis,
    "limits": cfg_limits,
    "httpbin": cfg_httpbin,
    "kinto": cfg_kinto,
    "portal": cfg_portal,
}

# What tells whether a feature is in the binary (run on the bookshelf config).
PROBES = {
    "typescript": ("execute", "const n: number = 41;\nn + 1", "42"),
    "globals": ("execute", "[typeof URL, typeof URLSearchParams, typeof TextEncoder, typeof TextDecoder, typeof atob, "
                "typeof btoa, typeof structuredClone, typeof setTimeout, typeof clearTimeout, "
                "typeof globalThis.crypto?.randomUUID, typeof globalThis.crypto?.getRandomValues, "
                "typeof console.table].every(t => t === 'function')", "true"),
    "find": ("search", "typeof codemode.find", "function"),
}


# --------------------------------------------------------------------------- running


@dataclasses.dataclass
class Outcome:
    """What came back for one snippet."""

    is_error: bool
    text: str  # the first content block: the result or the error
    console: str  # the console block, if any
    full: str  # every text block
    seconds: float

    @property
    def value(self) -> Any:
        try:
            return json.loads(self.text)
        except ValueError:
            return self.text


async def call(session, tool: str, code: str) -> Outcome:
    started = time.monotonic()
    try:
        r = await session.call_tool(tool, {"code": code}, read_timeout_seconds=CALL_TIMEOUT)
    except Exception as e:  # noqa: BLE001 - recorded as the outcome, judged by the test
        return Outcome(True, f"<no tool result: {type(e).__name__}: {e}>", "", "", time.monotonic() - started)
    blocks = [c.text for c in r.content if getattr(c, "type", "") == "text"]
    console = "\n".join(b for b in blocks if b.startswith("console output:"))
    return Outcome(bool(r.is_error), blocks[0] if blocks else "", console, text_of(r), time.monotonic() - started)


async def servers_ready(session, within: float = 30.0) -> None:
    """Waits until every upstream MCP server of the config is connected."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        o = await call(session, "search", "codemode.status().every((s) => s.state === 'ready')")
        if o.text == "true":
            return
        await asyncio.sleep(0.2)


async def run_config(name: str, snippets: list[Snippet], ctx: Ctx, env: dict, probes: bool) -> tuple[dict, dict]:
    cfg = ctx.tmp / f"{name}.toml"
    outcomes: dict[str, Outcome] = {}
    features: dict[str, bool] = {}
    log = ctx.tmp / f"{name}.stderr.log"
    try:
        with open(log, "w") as errlog:
            async with mcp_session(["--config", str(cfg)], env=env, errlog=errlog) as s:
                if probes:
                    for feature, (tool, code, want) in PROBES.items():
                        o = await call(s, tool, code)
                        features[feature] = not o.is_error and o.text == want
                if "[[mcp]]" in cfg.read_text():
                    await servers_ready(s)
                for snip in snippets:
                    outcomes[snip.id] = await call(s, snip.tool, snip.code)
    except Exception as e:  # noqa: BLE001 - every snippet left gets the reason
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        why = f"<the {name} server failed: {type(e).__name__}: {e}>\n--- its stderr ---\n{tail}"
        for snip in snippets:
            outcomes.setdefault(snip.id, Outcome(True, why, "", why, 0.0))
    return outcomes, features


@pytest.fixture(scope="module")
def corpus_run(request, tmp_path_factory):
    """Runs every selected snippet (one server per config, configs side by
    side) and the feature probes; returns (outcomes by id, features)."""
    wanted = {item.callspec.params["snippet"].id for item in request.session.items
              if item.originalname == "test_snippet" and item.module.__name__ == __name__}
    by_config: dict[str, list[Snippet]] = {}
    for s in SNIPPETS:
        if s.id in wanted and not problems_of(s):
            by_config.setdefault(s.config, []).append(s)
    by_config.setdefault("bookshelf", [])  # the probes run there
    tmp = tmp_path_factory.mktemp("corpus")
    ctx = Ctx(tmp, request.getfixturevalue)
    envs = {}
    for name in by_config:  # peers start here, before any server
        config = CONFIGS[name](ctx)
        (tmp / f"{name}.toml").write_text(config.text())
        envs[name] = config.env

    async def go():
        runs = (run_config(n, sn, ctx, envs[n], n == "bookshelf") for n, sn in by_config.items())
        results = await asyncio.gather(*runs)
        outcomes, features = {}, {}
        for o, f in results:
            outcomes.update(o)
            features.update(f)
        return outcomes, features

    return asyncio.run(go())


def describe(s: Snippet, o: Outcome) -> str:
    return (f"{s.path.name} ({s.tool} on {s.config}, {o.seconds:.2f} s): {s.one('about')}\n"
            f"--- code ---\n{s.code}--- is_error={o.is_error} ---\n{o.full}")


def judge(s: Snippet, o: Outcome) -> None:
    """Asserts the snippet's expectation against its outcome."""
    errors = s.fields.get("error", [])
    if errors:
        assert o.is_error, "expected an error\n" + describe(s, o)
        missing = [e for e in errors if e not in o.full]
        assert not missing, f"the error does not contain {missing}\n" + describe(s, o)
    else:
        assert not o.is_error, "expected success\n" + describe(s, o)
    missing = [c for c in s.fields.get("console", []) if c not in o.console]
    assert not missing, f"the console does not contain {missing}\n" + describe(s, o)
    present = [a for a in s.fields.get("absent", []) if a in o.full]
    assert not present, f"the answer contains {present}\n" + describe(s, o)
    if "result" in s.fields:
        want = json.loads(s.one("result"))
        got = o.text if isinstance(want, str) else o.value
        assert got == want, f"result {got!r} != {want!r}\n" + describe(s, o)
    if "check" in s.fields:
        scope = {"value": o.value, "text": o.text, "console": o.console, "full": o.full, "re": re, "json": json}
        assert eval(s.one("check"), scope), f"check failed: {s.one('check')}\n" + describe(s, o)  # noqa: S307
    if s.sidecar is not None:
        ns: dict[str, Any] = {}
        exec(compile(s.sidecar.read_text(), str(s.sidecar), "exec"), ns)  # noqa: S102
        try:
            ns["check"](o)
        except AssertionError as e:
            raise AssertionError(f"{s.sidecar.name}: {e}\n" + describe(s, o)) from None


class BugChanged(Exception):
    """A `bug` snippet fails, but no longer the way its `now` says."""


def params():
    for s in SNIPPETS:
        marks = []
        if s.one("bug"):
            marks.append(pytest.mark.xfail(strict=True, raises=AssertionError, reason=f"bug: {s.one('bug')}"))
        yield pytest.param(s, id=s.id, marks=marks)


@pytest.mark.parametrize("snippet", list(params()))
def test_snippet(snippet: Snippet, corpus_run, request):
    problems = problems_of(snippet)
    assert not problems, f"{snippet.path.name}: " + "; ".join(problems)
    outcomes, features = corpus_run
    for feature in snippet.requires:
        if not features.get(feature):
            request.applymarker(pytest.mark.xfail(strict=True, reason=f"needs {feature}"))
    outcome = outcomes[snippet.id]
    try:
        judge(snippet, outcome)
    except AssertionError:
        changed = [n for n in snippet.fields.get("now", []) if n not in outcome.full]
        if changed:
            raise BugChanged(f"the answer no longer contains {changed}: update `bug`/`now`\n"
                             + describe(snippet, outcome)) from None
        raise


def test_the_corpus_is_what_issue_12_asks_for():
    """At least 100 snippets, unique numbers, at least 60 that run on the
    binary as it is, and both languages and every kind of config."""
    assert len(SNIPPETS) >= 100, len(SNIPPETS)
    numbers = [s.id.split("-", 1)[0] for s in SNIPPETS]
    assert len(numbers) == len(set(numbers)), sorted({n for n in numbers if numbers.count(n) > 1})
    plain = [s for s in SNIPPETS if not s.requires and not s.one("bug")]
    assert len(plain) >= 60, len(plain)
    assert {s.config for s in SNIPPETS} == set(CONFIGS)
    assert {s.tool for s in SNIPPETS} == set(TOOLS)
    assert {s.path.suffix for s in SNIPPETS} == {".js", ".ts"}
    for feature in FEATURES:
        assert any(feature in s.requires for s in SNIPPETS), feature
    # Every file in corpus/ is a snippet, a sidecar of one, or a fixture.
    stems = {s.id for s in SNIPPETS}
    for p in CORPUS.iterdir():
        if p.suffix == ".py" and p.stem[:1].isdigit():
            assert p.stem in stems, f"{p.name} is the sidecar of no snippet"
