"""Hostile GraphQL documents against the host's checks (issue 16).

A real GraphQL server (strawberry-graphql, tests/integration/graphql_server.py)
on loopback logs every request body it receives, exactly as received, and
counts the mutations it executes. Model code tries to get past what the host
validated: a mutation reached through a fragment on the mutation type, inline
fragments, aliases hiding a denied root field, `@skip`/`@include` hiding a
field from a naive check, a document with several operations where
`operationName` picks another one than a naive check would look at, variables
and options that try to carry a mutation, introspection that tries to get
past the depth and cost limits, and documents built to exhaust the parser or
the walk.

Each case is judged by the server's log, not only by what the code saw: a
refused case must add nothing to it, and a case that is sent must arrive as
exactly the document, variables and operation name the host validated — and
no mutation may run that the policy did not allow.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import BINARY, ROOT, peers, text_of  # noqa: E402
from mcp import ClientSession  # noqa: E402
from mcp.client.stdio import StdioServerParameters, stdio_client  # noqa: E402

pytestmark = pytest.mark.anyio

SERVER = ROOT / "tests" / "integration" / "graphql_server.py"
TOKEN = "gql-hostile-token-8d2e41"


@pytest.fixture
def anyio_backend():
    return "asyncio"


class Books:
    """The GraphQL server and its request log."""

    def __init__(self, url: str, log: Path):
        self.url, self.log = url, log

    def received(self) -> list[dict]:
        """Every body the server received, parsed (direct look-ups excluded)."""
        out = []
        for line in self.log.read_text().splitlines():
            body = json.loads(json.loads(line))
            if "# direct" not in body.get("query", ""):
                out.append(body)
        return out

    def direct(self, query: str) -> dict:
        req = urllib.request.Request(self.url, data=json.dumps({"query": "# direct\n" + query}).encode(), method="POST")
        req.add_header("Content-Type", "application/json")
        req.add_header("Authorization", f"Bearer {TOKEN}")
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())

    def mutations(self) -> int:
        return self.direct("{ mutationCount }")["data"]["mutationCount"]

    def titles(self) -> list[str]:
        return [b["title"] for b in self.direct("{ books(first: 100) { title } }")["data"]["books"]]


@pytest.fixture(scope="module")
def books():
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hostile-graphql-")))
        log = tmp / "received.jsonl"
        log.touch()
        port = peers.free_port()
        url = f"http://127.0.0.1:{port}/graphql"
        stack.enter_context(peers._run(
            "graphql",
            [str(peers.VENV_BIN / "python"), str(SERVER), str(port), TOKEN, str(log)],
            ready_url=url,
            is_ready=lambda s: s is not None,
            timeout=60,
            workdir=tmp,
        ))
        yield Books(url, log)


@contextlib.asynccontextmanager
async def codemode(tmp: Path, books: Books, extra: str):
    cfg = tmp / "codemode.toml"
    cfg.write_text(f"""
[limits]
timeout_secs = 10

[[api]]
name = "books"
kind = "graphql"
url = "{books.url}"
auth = {{ type = "bearer", token_env = "BOOKS_TOKEN" }}
max_depth = 5
max_cost = 2000
{extra}
""")
    assert BINARY.exists(), f"build the release binary first: {BINARY}"
    env = {"PATH": os.environ.get("PATH", ""), "CODEMODE_LOG": "warn", "BOOKS_TOKEN": TOKEN,
           "CODEMODE_CACHE_DIR": "off"}
    params = StdioServerParameters(command=str(BINARY), args=["serve", "--config", str(cfg)], env=env)
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            yield session


def call(document: str, variables=None, options=None) -> str:
    args = [json.dumps(document)]
    if variables is not None or options is not None:
        args.append(json.dumps(variables))
    if options is not None:
        args.append(json.dumps(options))
    return f"async () => books.graphql({', '.join(args)})"


async def attempt(s: ClientSession, code: str) -> tuple[bool, str]:
    r = await s.call_tool("execute", {"code": code})
    return r.is_error, text_of(r)


ADD = 'addBook(title: "Smuggled", author: "Mallory") { id }'

# (id, document, variables, options, what the refusal says). Read-only API;
# `query.echoAuthorization` denied.
REFUSED_READ_ONLY = [
    ("fragment-spread-on-mutation-in-a-query",
     "query { ...M } fragment M on Mutation { " + ADD + " }", None, None, "cannot be applied"),
    ("inline-fragment-on-mutation-in-a-query",
     "query { ... on Mutation { " + ADD + " } }", None, None, "cannot be applied"),
    ("mutation-through-an-inline-fragment",
     "mutation { ... on Mutation { " + ADD + " } }", None, None, "no mutations"),
    ("mutation-through-a-fragment-spread",
     "mutation { ...M } fragment M on Mutation { x: " + ADD + " }", None, None, "no mutations"),
    ("mutation-skipped-by-a-directive",
     "mutation { addBook(title: \"a\", author: \"b\") @skip(if: true) { id } }", None, None, "no mutations"),
    ("mutation-included-by-a-variable",
     "mutation($go: Boolean!) { addBook(title: \"a\", author: \"b\") @include(if: $go) { id } }",
     {"go": False}, None, "no mutations"),
    ("alias-hides-a-denied-field",
     "{ books(first: 1) { id } innocent: echoAuthorization }", None, None, "query.echoAuthorization"),
    ("alias-named-like-an-allowed-field",
     "{ books: echoAuthorization }", None, None, "query.echoAuthorization"),
    ("denied-field-in-an-inline-fragment",
     "{ ... on Query { ... on Query { echoAuthorization } } }", None, None, "query.echoAuthorization"),
    ("denied-field-in-a-fragment-spread",
     "{ ...A } fragment A on Query { ...B } fragment B on Query { x: echoAuthorization }", None, None,
     "query.echoAuthorization"),
    ("denied-field-skipped-by-a-directive",
     "{ books(first: 1) { id } echoAuthorization @skip(if: true) }", None, None, "query.echoAuthorization"),
    ("operation-name-picks-the-mutation",
     "query Q { books(first: 1) { id } } mutation M { " + ADD + " }", None, {"operationName": "M"}, "no mutations"),
    ("several-operations-without-a-name",
     "query Q { books(first: 1) { id } } mutation M { " + ADD + " }", None, None, "operationName"),
    ("operation-name-of-no-operation",
     "query Q { books(first: 1) { id } } mutation M { " + ADD + " }", None, {"operationName": "q"}, "Q, M"),
    ("an-anonymous-operation-beside-a-named-one",
     "{ books(first: 1) { id } } mutation M { " + ADD + " }", None, {"operationName": "M"}, "not valid"),
    ("two-operations-with-one-name",
     "query M { books(first: 1) { id } } mutation M { " + ADD + " }", None, {"operationName": "M"}, "not valid"),
    ("options-carry-another-query",
     "{ books(first: 1) { id } }", None, {"query": "mutation { " + ADD + " }"}, "unknown option `query`"),
    ("operation-name-not-a-string",
     "{ books(first: 1) { id } }", None, {"operationName": ["M"]}, "must be a string"),
    ("a-fragment-cycle",
     "{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }", None, None, "not valid"),
    ("introspection-past-the-depth-limit",
     "{ __schema { types { fields { type { fields { type { name } } } } } } }", None, None, "deeper than 5"),
    ("introspection-past-the-cost-limit",
     "{ __schema { types { name fields { name args { name } } } } }", None, None, "more than 2000 fields"),
    ("the-full-introspection-query",
     "query I { __schema { types { ...T } } } fragment T on __Type { kind name fields(includeDeprecated: true)"
     " { name args { name type { ...R } } type { ...R } } } fragment R on __Type { kind name ofType { kind name"
     " ofType { kind name ofType { kind name } } } }", None, None, "introspection lists count"),
    ("a-default-page-past-the-cost-limit",
     "query($n: Int = 100000) { books(first: $n) { id title year author { name } } }", None, None,
     "more than 2000 fields"),
    ("repeated-fields-past-the-cost-limit",
     "{ books { " + "title " * 300 + "} }", None, None, "more than 2000 fields"),
    ("deep-list-nesting-past-the-depth-limit",
     "{ books { " + "author { books { " * 10 + "id" + " } }" * 10 + " } }", None, None, "deeper than 5"),
    ("a-subscription",
     "subscription { ticks }", None, None, "subscriptions are not supported"),
]

# Documents that must be refused without exhausting anything (the server keeps
# answering after each): the parser's recursion (inside the 64 KiB document
# limit), the size limit, a selection that doubles with every fragment.
# Each is JavaScript that builds the document in the sandbox.
EXHAUST = [
    ("selections-nested-6000-deep", '"{ books " + "{author".repeat(6000) + "}".repeat(6000) + " }"'),
    ("a-list-literal-nested-20000-deep", '"{ book(id: " + "[".repeat(20000) + \'"1"\' + "]".repeat(20000) + ") { id } }"'),
    ("a-one-megabyte-document", '"{ books { id } }" + " ".repeat(1024 * 1024)'),
    ("fragments-that-double-twenty-times",
     '"{ ...F20 }\\nfragment F0 on Query { books { id title } }\\n" + Array.from({length: 20}, (_, i) =>'
     ' `fragment F${i + 1} on Query { ...F${i} ...F${i} }\\n`).join("")'),
]


async def test_documents_that_would_get_past_a_naive_check_are_refused_and_never_sent(tmp_path, books):
    before_mutations = books.mutations()
    failures = []
    async with codemode(tmp_path, books, 'deny = ["query.echoAuthorization"]') as s:
        # (After start-up, whose introspection the log has too.)
        before_log = len(books.received())
        for case, document, variables, options, says in REFUSED_READ_ONLY:
            err, out = await attempt(s, call(document, variables, options))
            if not err:
                failures.append(f"{case}: not refused: {out[:300]}")
            elif says is not None and says not in out:
                failures.append(f"{case}: refused without saying {says!r}: {out[:300]}")
        for case, document in EXHAUST:
            err, out = await attempt(s, f"async () => books.graphql({document})")
            if not err:
                failures.append(f"{case}: not refused: {out[:200]}")
            # The server still answers, at once.
            err, out = await attempt(s, call("{ books(first: 1) { title } }"))
            if err or "Dune" not in out:
                failures.append(f"{case}: the server did not answer a benign call after it: {out[:200]}")
    assert not failures, "\n".join(failures)
    # Nothing refused reached the upstream: only the benign calls did.
    received = books.received()[before_log:]
    assert received == [{"query": "{ books(first: 1) { title } }"}] * len(EXHAUST), received
    assert books.mutations() == before_mutations


# Sent, and they must arrive exactly as validated.
SENT_READ_ONLY = [
    ("operation-name-picks-the-query",
     "query Q { books(first: 1) { id } } mutation M { " + ADD + " }", None, {"operationName": "Q"}),
    ("a-document-in-a-string-variable",
     "query($id: ID!) { book(id: $id) { id } }",
     {"id": '1") { id } } mutation { ' + ADD + " } #"}, None),
    ("operation-name-in-a-variable",
     "query Q($operationName: ID!) { book(id: $operationName) { id } }", {"operationName": "M"},
     {"operationName": "Q"}),
    ("introspection-of-the-mutation-type",
     '{ __type(name: "Mutation") { name fields { name } } }', None, None),
    ("typename-everywhere",
     "{ __typename books(first: 2) { __typename id author { __typename name } } }", None, None),
    # Variables the operation does not declare are no variables of it (the
    # server ignores them): a document in one is only a string.
    ("undeclared-variables-carrying-a-document",
     "{ books(first: 1) { id } }", {"query": "mutation { " + ADD + " }", "operationName": "M"}, None),
    ("a-denied-looking-alias-on-an-allowed-field",
     "{ echoAuthorization: books(first: 1) { id } }", None, None),
]


async def test_what_is_sent_is_exactly_what_was_validated(tmp_path, books):
    before_mutations = books.mutations()
    expected = []
    async with codemode(tmp_path, books, 'deny = ["query.echoAuthorization"]') as s:
        before_log = len(books.received())
        for case, document, variables, options in SENT_READ_ONLY:
            err, out = await attempt(s, call(document, variables, options))
            assert not err, f"{case}: {out[:300]}"
            body = {"query": document}
            if variables:
                body["variables"] = variables
            if options and options.get("operationName"):
                body["operationName"] = options["operationName"]
            expected.append(body)
            if case == "introspection-of-the-mutation-type":
                # The schema is no secret: search shows the same fields.
                names = {f["name"] for f in json.loads(out)["data"]["__type"]["fields"]}
                assert names == {"addBook", "deleteBook"}, out
    assert books.received()[before_log:] == expected
    assert books.mutations() == before_mutations, "a query ran a mutation"


async def test_with_writes_a_denied_mutation_cannot_ride_along(tmp_path, books):
    before_mutations = books.mutations()
    delete = 'deleteBook(id: "1")'
    refused = [
        ("inline-fragment", "mutation { ... on Mutation { " + delete + " } }", None),
        ("fragment-spread-with-an-alias", "mutation { ...D } fragment D on Mutation { addBook: " + delete + " }", None),
        ("beside-an-allowed-one", "mutation { " + ADD + " " + delete + " }", None),
        ("skipped-by-a-directive", "mutation { " + ADD + " " + delete + " @skip(if: true) }", None),
        ("the-other-operation", "mutation A { " + ADD + " } mutation D { " + delete + " }", {"operationName": "D"}),
    ]
    async with codemode(tmp_path, books, 'allow_writes = true\ndeny = ["mutation.deleteBook"]') as s:
        before_log = len(books.received())
        for case, document, options in refused:
            err, out = await attempt(s, call(document, None, options))
            assert err and 'deny "mutation.deleteBook"' in out, f"{case}: {out[:300]}"
        assert books.received()[before_log:] == []
        # The allowed operation of a two-operation document runs, alone.
        document = "mutation A { " + ADD + " } mutation D { " + delete + " }"
        err, out = await attempt(s, call(document, None, {"operationName": "A"}))
        assert not err, out
    assert books.received()[before_log:] == [{"query": document, "operationName": "A"}]
    assert books.mutations() == before_mutations + 1
    assert "Dune" in books.titles(), "the denied deleteBook ran"
