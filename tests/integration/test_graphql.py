"""GraphQL APIs behind the same two tools, against the release binary over
stdio with the official Python SDK:

- a real GraphQL server (strawberry-graphql under uvicorn, graphql_server.py)
  on loopback, behind a bearer token: the schema introspected at start-up,
  queries with variables, validation before sending (with suggestions),
  GraphQL errors rejecting with `errors` (or partial data when asked),
  mutations refused without `allow_writes` (and never sent) and sent with it,
  a rule naming one mutation, subscriptions refused, the depth limit, the
  credential scrubbed from what comes back;
- the introspected schema cached on disk: the first start introspects and
  caches, the second introspects again and finds the same schema (the entry
  not rewritten), `check` reports the copy's age, and with the endpoint down
  a start uses the copy with a warning (without one it fails as before);
- a schema of several SDL files (`spec = [..]`) with `extend type` across
  them, and an error in one naming its file and line;
- `refresh_secs` on an introspected schema (a graphql-core endpoint whose
  schema changes): introspected again, swapped without dropping calls;
- GitHub's public schema (npm @octokit/graphql-schema): SDL and
  introspection JSON both load, `codemode.types("Query.repository")`,
  `codemode.find` finding the mutation that adds a comment, and rehearsal
  mode answering a query with data of the right shape.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import anyio
import pytest

from conftest import BINARY, ROOT, mcp_session, text_of, write_config

sys.path.insert(0, str(ROOT / "tests" / "peers"))
import peers  # noqa: E402

pytestmark = pytest.mark.anyio

HERE = Path(__file__).resolve().parent
TOKEN = "gql-s3cret-token-5f1c9e"
GITHUB = ROOT / ".peers" / "graphql" / "node_modules" / "@octokit" / "graphql-schema"


@pytest.fixture(scope="module")
def books():
    """The GraphQL server on a free port: its endpoint URL."""
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(__import__("tempfile").TemporaryDirectory(prefix="peer-graphql-"))
        port = peers.free_port()
        url = f"http://127.0.0.1:{port}/graphql"
        stack.enter_context(peers._run(
            "graphql",
            [str(peers.VENV_BIN / "python"), str(HERE / "graphql_server.py"), str(port), TOKEN],
            ready_url=url,
            # Any answer (401 without the token) means it is up.
            is_ready=lambda s: s is not None,
            timeout=60,
            workdir=Path(tmp),
        ))
        yield url


def direct(url: str, query: str) -> dict:
    """A query sent straight to the server (not through codemode)."""
    req = urllib.request.Request(url, data=json.dumps({"query": query}).encode(), method="POST")
    req.add_header("Content-Type", "application/json")
    req.add_header("Authorization", f"Bearer {TOKEN}")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def config(tmp_path, url: str, extra: str = "") -> Path:
    return write_config(tmp_path, f"""
[[api]]
name = "books"
kind = "graphql"
url = "{url}"
auth = {{ type = "bearer", token_env = "BOOKS_TOKEN" }}
max_depth = 4
{extra}
""")


async def run(s, tool: str, code: str):
    r = await s.call_tool(tool, {"code": code})
    return r.is_error, text_of(r)


async def test_queries_variables_errors_and_limits(tmp_path, books):
    cfg = config(tmp_path, books)
    async with mcp_session(["--config", str(cfg)], env={"BOOKS_TOKEN": TOKEN}) as s:
        tools = {t.name: t for t in (await s.list_tools()).tools}
        assert "books.graphql(" in tools["execute"].description or "graphql(query" in tools["execute"].description
        assert "read-only: queries only" in tools["execute"].description

        # A query with variables, through the introspected schema.
        err, out = await run(s, "execute", """async () => {
            const r = await books.graphql("query($id: ID!) { book(id: $id) { title year author { name } } }", { id: "1" });
            return r;
        }""")
        assert not err, out
        assert json.loads(out) == {"data": {"book": {"title": "Dune", "year": 1965, "author": {"name": "Frank Herbert"}}}}

        # Validated before sending: the field named, the closest suggested.
        err, out = await run(s, "execute", """async () => {
            try { await books.graphql("{ books { titel } }"); return "sent"; }
            catch (e) { return { name: e.name, message: e.message, suggestions: e.errors[0].suggestions, reason: e.reason }; }
        }""")
        assert not err, out
        v = json.loads(out)
        assert v["name"] == "GraphQLValidationError" and v["reason"] == "validation", v
        assert "`Book` does not have a field `titel`" in v["message"] and "did you mean `title`" in v["message"], v
        assert v["suggestions"] == ["title"], v

        # The server's GraphQL errors reject, carrying `errors` and `data`...
        err, out = await run(s, "execute", """async () => {
            try { await books.graphql("{ books(first: 1) { title secretNote } }"); return "resolved"; }
            catch (e) { return { name: e.name, errors: e.errors, data: e.data }; }
        }""")
        assert not err, out
        v = json.loads(out)
        assert v["name"] == "GraphQLError", v
        assert v["errors"][0]["message"] == "secretNote is not readable" and v["errors"][0]["path"] == ["books", 0, "secretNote"], v
        assert v["data"] == {"books": [{"title": "Dune", "secretNote": None}]}, v
        # ... unless the code asks for partial data.
        err, out = await run(s, "execute", """async () =>
            books.graphql("{ books(first: 1) { title secretNote } }", null, { partial: true })""")
        assert not err, out
        v = json.loads(out)
        assert v["data"] == {"books": [{"title": "Dune", "secretNote": None}]} and len(v["errors"]) == 1, v

        # Subscriptions are refused; the depth limit (max_depth = 4) holds.
        err, out = await run(s, "execute", 'async () => books.graphql("subscription { ticks }")')
        assert err and "subscriptions are not supported" in out, out
        err, out = await run(s, "execute", """async () =>
            books.graphql("{ books { author { books { author { books { title } } } } } }")""")
        assert err and "nested deeper than 4 levels" in out, out
        err, out = await run(s, "execute", """async () =>
            books.graphql("{ books { author { books { title } } } }")""")
        assert not err, out

        # The credential is added by the host and scrubbed from the answer.
        err, out = await run(s, "execute", 'async () => (await books.graphql("{ echoAuthorization }")).data')
        assert not err, out
        assert TOKEN not in out and "Bearer" in out, out

        # A client of a GraphQL API teaches its one method.
        err, out = await run(s, "execute", 'async () => books.request("GET /books")')
        assert err and "books.graphql(" in out, out


async def test_mutations_need_allow_writes_and_rules_name_fields(tmp_path, books):
    before = direct(books, "{ mutationCount }")["data"]["mutationCount"]
    add = 'async () => (await books.graphql("mutation($t: String!) { addBook(title: $t, author: \\"Ann Leckie\\") { id title } }", { t: "Ancillary Justice" })).data'
    cfg = config(tmp_path, books)
    async with mcp_session(["--config", str(cfg)], env={"BOOKS_TOKEN": TOKEN}) as s:
        err, out = await run(s, "execute", add)
        assert err and "PolicyError" in out and "no mutations" in out, out
    assert direct(books, "{ mutationCount }")["data"]["mutationCount"] == before, "a refused mutation was sent"

    (tmp_path / "w").mkdir()
    cfg = config(tmp_path / "w", books, 'allow_writes = true\ndeny = ["mutation.deleteBook"]')
    async with mcp_session(["--config", str(cfg)], env={"BOOKS_TOKEN": TOKEN}) as s:
        tools = {t.name: t for t in (await s.list_tools()).tools}
        assert "queries and mutations" in tools["execute"].description
        err, out = await run(s, "execute", add)
        assert not err, out
        assert json.loads(out)["addBook"]["title"] == "Ancillary Justice"
        err, out = await run(s, "execute", 'async () => books.graphql("mutation { deleteBook(id: \\"1\\") }")')
        assert err and 'deny "mutation.deleteBook"' in out, out
        # Several root fields: one denied field refuses the whole operation.
        err, out = await run(s, "execute", """async () => books.graphql(
            "mutation { a: addBook(title: \\"X\\", author: \\"Y\\") { id } deleteBook(id: \\"2\\") }")""")
        assert err and 'deny "mutation.deleteBook"' in out, out
    assert direct(books, "{ mutationCount }")["data"]["mutationCount"] == before + 1
    assert direct(books, '{ book(id: "1") { title } }')["data"]["book"] == {"title": "Dune"}


async def test_search_reads_the_linked_schema(tmp_path, books):
    cfg = config(tmp_path, books)
    async with mcp_session(["--config", str(cfg)], env={"BOOKS_TOKEN": TOKEN}) as s:
        err, out = await run(s, "search", """async () => {
            const book = schema.queryType.fields.book;
            const author = book.named.fields.author.named;
            return {
                same: schemas.books === schema,
                arg: book.args.id.type,
                type: book.type,
                back: author.fields.books.type,
                // Book is already on this path: the cycle closes here, and
                // schema.types.Book reads it afresh.
                cycle: author.fields.books.named,
                again: schema.types[author.fields.books.named.$circular.split("/").pop()].fields.author.named.name,
                mutations: Object.keys(schema.mutationType.fields),
                frozen: Object.isFrozen(book),
            };
        }""")
        assert not err, out
        v = json.loads(out)
        assert v == {"same": True, "arg": "ID!", "type": "Book", "back": "[Book!]!",
                     "cycle": {"$circular": "#/types/Book"}, "again": "Author",
                     "mutations": ["addBook", "deleteBook"], "frozen": True}, v
        err, out = await run(s, "search", 'async () => codemode.types("Query.book")')
        assert not err, out
        ts = out  # a string result is shown as it is
        assert "// Query.book(id: ID!): Book" in ts and "id: string;" in ts and "interface Book {" in ts, ts
        err, out = await run(s, "search", 'async () => codemode.find("delete a book", {limit: 2})')
        assert not err, out
        assert json.loads(out)[0]["name"] == "mutation.deleteBook", out


@pytest.mark.parametrize("form", ["schema.graphql", "schema.json"])
async def test_github_schema_search_and_rehearsal(tmp_path, form):
    assert (GITHUB / form).exists(), "run tests/peers/setup.sh (installs @octokit/graphql-schema)"
    cfg = write_config(tmp_path, f"""
[[api]]
name = "github"
kind = "graphql"
url = "https://api.github.com/graphql"
spec = "{GITHUB / form}"
mock = true
""")
    started = time.monotonic()
    async with mcp_session(["--config", str(cfg)]) as s:
        ready = time.monotonic() - started
        print(f"github {form}: ready in {ready:.2f}s")
        err, out = await run(s, "search", 'async () => codemode.types("Query.repository")')
        assert not err, out
        ts = out
        # The two published forms list the arguments in different orders.
        sig = next(line for line in ts.splitlines() if line.startswith("// Query.repository("))
        assert sig.endswith("): Repository") and all(a in sig for a in ("owner: String!", "name: String!", "followRenames: Boolean = true")), sig
        assert "  owner: string;" in ts and "type Result = Repository | null;" in ts and "interface Repository {" in ts, ts[:400]

        err, out = await run(s, "search", 'async () => codemode.find("add a comment to an issue", {limit: 3})')
        assert not err, out
        hits = json.loads(out)
        assert hits[0]["name"] == "mutation.addComment" and hits[0]["api"] == "github", hits
        err, out = await run(s, "search", """async () => codemode.types(codemode.find("add a comment to an issue", {limit: 1})[0])""")
        assert not err and "interface AddCommentInput" in out and "subjectId: string;" in out, out[:600]

        err, out = await run(s, "search", """async () => {
            const f = schema.types.Repository.fields;
            return [f.issues.args.states.type, f.issues.named.fields.nodes.named.name, Object.keys(schema.types).length > 1000];
        }""")
        assert not err, out
        assert json.loads(out) == ["[IssueState!]", "Issue", True], out

        err, out = await run(s, "execute", """async () => (await github.graphql(`
            query($owner: String!, $name: String!) {
              repository(owner: $owner, name: $name) {
                name stargazerCount createdAt
                issues(first: 2, states: [OPEN]) { totalCount nodes { number title state author { login } } }
              }
            }`, { owner: "octocat", name: "hello-world" })).data""")
        assert not err, out
        repo = json.loads(out)["repository"]
        assert isinstance(repo["name"], str) and isinstance(repo["stargazerCount"], int), repo
        assert isinstance(repo["createdAt"], str), repo
        nodes = repo["issues"]["nodes"]
        assert len(nodes) == 2 and isinstance(nodes[0]["number"], int) and nodes[0]["state"] in ("OPEN", "CLOSED"), nodes
        assert isinstance(nodes[0]["author"]["login"], str), nodes
        assert set(repo) == {"name", "stargazerCount", "createdAt", "issues"}, repo

        # Rehearsal keeps the policy: a mutation is still a write.
        err, out = await run(s, "execute", """async () => github.graphql(
            "mutation { addComment(input: {subjectId: \\"I_1\\", body: \\"hi\\"}) { clientMutationId } }")""")
        assert err and "PolicyError" in out, out


@contextlib.contextmanager
def books_server(log: Path):
    """A GraphQL server of its own (a test stops it), logging what it gets."""
    with tempfile.TemporaryDirectory(prefix="peer-graphql-") as tmp:
        port = peers.free_port()
        url = f"http://127.0.0.1:{port}/graphql"
        with peers._run(
            "graphql",
            [str(peers.VENV_BIN / "python"), str(HERE / "graphql_server.py"), str(port), TOKEN, str(log)],
            ready_url=url,
            is_ready=lambda s: s is not None,
            timeout=60,
            workdir=Path(tmp),
        ):
            yield url


def cli(args: list[str], cache: Path) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ.get("PATH", ""), "CODEMODE_CACHE_DIR": str(cache), "CODEMODE_LOG": "warn",
           "BOOKS_TOKEN": TOKEN}
    # The binary's own start-up bounds it; this only keeps a hang from hanging the suite.
    return subprocess.run([str(BINARY), *args], capture_output=True, text=True, env=env, timeout=300)


TYPES = 'async () => Object.keys(schema.types).filter(t => !t.startsWith("__")).sort().join(",")'


def introspections(log: Path) -> int:
    return sum("IntrospectionQuery" in line for line in log.read_text().splitlines())


def test_the_introspected_schema_is_cached_revalidated_and_used_when_the_endpoint_is_down(tmp_path):
    cache, log = tmp_path / "cache", tmp_path / "received.jsonl"
    log.touch()
    with books_server(log) as url:
        cfg = config(tmp_path, url)
        first = cli(["search", "--config", str(cfg), TYPES], cache)
        assert first.returncode == 0, first.stderr
        types = first.stdout.strip()
        assert "Book" in types.split(",") and "Mutation" in types.split(","), types
        assert introspections(log) == 1
        entries = list(cache.glob("*.spec"))
        assert len(entries) == 1, "the introspection is cached"
        written = entries[0].stat().st_mtime_ns

        # The second start introspects again (a POST has no validators) and
        # finds the same schema: a confirmation, the entry not rewritten.
        second = cli(["search", "--config", str(cfg), TYPES], cache)
        assert second.returncode == 0, second.stderr
        assert second.stdout.strip() == types
        assert introspections(log) == 2
        assert "cached" not in second.stderr, "a confirmed copy is not worth a warning"
        assert entries[0].stat().st_mtime_ns == written
        assert list(cache.glob("*.checked")), "the confirmation is recorded"

        checked = cli(["check", "--config", str(cfg)], cache)
        assert f"books: schema introspected at {url}: cached copy confirmed by its server" in checked.stdout, checked.stdout

    # The endpoint is gone: the cached schema, with a warning that says so.
    third = cli(["search", "--config", str(cfg), TYPES], cache)
    assert third.returncode == 0, third.stderr
    assert third.stdout.strip() == types
    assert "using the copy cached" in third.stderr and url in third.stderr, third.stderr
    checked = cli(["check", "--config", str(cfg)], cache)
    assert checked.returncode != 0 and "using the copy cached" in checked.stdout, checked.stdout

    # Without a cached copy, an endpoint that is down stops start-up as before.
    empty = cli(["search", "--config", str(cfg), TYPES], tmp_path / "empty-cache")
    assert empty.returncode == 2 and f"introspecting {url} failed" in empty.stderr, empty.stderr


BASE_SDL = """
"A book."
type Book { id: ID! title: String! }
type Query { book(id: ID!): Book }
"""
MORE_SDL = """
extend type Book {
  "Year of first publication."
  year: Int
}
extend type Query { books(first: Int = 10): [Book!]! }
"""
MUTATION_SDL = "type Mutation { addBook(title: String!): Book }\n"


async def test_a_schema_of_several_sdl_files(tmp_path):
    schema = tmp_path / "schema"
    schema.mkdir()
    (schema / "base.graphql").write_text(BASE_SDL)
    (schema / "more.graphql").write_text(MORE_SDL)
    (schema / "mutation.graphql").write_text(MUTATION_SDL)
    # The extensions come first: order does not matter.
    cfg = write_config(tmp_path, """
[[api]]
name = "books"
kind = "graphql"
url = "https://books.invalid/graphql"
spec = ["schema/more.graphql", "schema/base.graphql", "schema/mutation.graphql"]
mock = true
""")
    async with mcp_session(["--config", str(cfg)]) as s:
        err, out = await run(s, "search", """async () => ({
            year: schema.types.Book.fields.year.description,
            books: schema.queryType.fields.books.type,
            mutations: Object.keys(schema.mutationType.fields),
        })""")
        assert not err, out
        assert json.loads(out) == {"year": "Year of first publication.", "books": "[Book!]!", "mutations": ["addBook"]}, out
        err, out = await run(s, "execute", 'async () => (await books.graphql("{ books(first: 1) { title year } }")).data')
        assert not err, out
        v = json.loads(out)
        assert len(v["books"]) == 1 and isinstance(v["books"][0]["title"], str) and "year" in v["books"][0], v

    # An error in one file names it and the line.
    (schema / "bad.graphql").write_text("extend type Book { year2: Int }\n\nextend type Author { name: String }\n")
    bad = write_config(tmp_path, """
[[api]]
name = "books"
kind = "graphql"
url = "https://books.invalid/graphql"
spec = ["schema/base.graphql", "schema/bad.graphql"]
mock = true
""")
    checked = cli(["check", "--config", str(bad)], tmp_path / "cache")
    assert checked.returncode != 0, checked.stdout
    out = checked.stdout + checked.stderr
    assert "bad.graphql, line 3, column" in out and "Author" in out, out

    # A list is for SDL files: a URL or introspection JSON in one is refused, saying why.
    wrong = write_config(tmp_path, """
[[api]]
name = "books"
kind = "graphql"
url = "https://books.invalid/graphql"
spec = ["schema/base.graphql", "https://example.com/schema.graphql", "saved.json"]
mock = true
""")
    checked = cli(["check", "--config", str(wrong)], tmp_path / "cache")
    out = checked.stdout + checked.stderr
    assert checked.returncode != 0 and "api[0].spec[1]" in out and "api[0].spec[2]" in out, out


class ChangingSchemaServer:
    """A GraphQL endpoint (graphql-core, the reference implementation's port)
    whose schema a test can change: `sdl` is read on every request.
    `introspections` counts the introspection requests it answered."""

    def __init__(self, sdl: str):
        import graphql
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        import threading

        self.sdl, self.introspections = sdl, 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                if body.get("operationName") == "IntrospectionQuery":
                    owner.introspections += 1
                result = graphql.graphql_sync(graphql.build_schema(owner.sdl), body["query"],
                                              variable_values=body.get("variables"),
                                              operation_name=body.get("operationName"))
                out = json.dumps({"data": result.data} if not result.errors else
                                 {"data": result.data, "errors": [e.formatted for e in result.errors]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/graphql"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


async def test_refresh_re_introspects_and_swaps_the_schema_without_dropping_calls(tmp_path):
    from test_http_helpers import codemode_http, http_session

    gql = ChangingSchemaServer("type Query { hello: String }")
    fields = 'async () => Object.keys(schema.queryType.fields).join(",")'
    apis = f'[[api]]\nname = "changing"\nkind = "graphql"\nurl = "{gql.url}"\nrefresh_secs = 1\n'
    try:
        with codemode_http(tmp_path, apis=apis, env={"CODEMODE_CACHE_DIR": str(tmp_path / "cache")}) as srv:
            async with http_session(srv.url) as session:
                assert text_of(await session.call_tool("search", {"code": fields})) == "hello"
                # Unchanged: each refresh introspects again, nothing reloads.
                deadline = time.monotonic() + 120
                while gql.introspections < 3:
                    assert time.monotonic() < deadline, srv.log()
                    await anyio.sleep(0.1)
                assert "reloaded" not in srv.log()
                # The endpoint's schema gains a field: calls keep answering
                # while the next schema loads, then see it.
                gql.sdl = "type Query { hello: String\n goodbye: Int }"
                failures, deadline = [], time.monotonic() + 120
                while True:
                    r = await session.call_tool("search", {"code": fields})
                    if r.is_error:
                        failures.append(text_of(r))
                    elif text_of(r) != "hello":
                        break
                    assert time.monotonic() < deadline, srv.log()
                    await anyio.sleep(0.05)
                assert not failures, failures
                assert text_of(r) == "hello,goodbye"
                assert "refresh: the schema changed on its server" in srv.log()
                r = await session.call_tool("execute", {"code": 'async () => (await changing.graphql("{ goodbye }")).data'})
                assert not r.is_error and json.loads(text_of(r)) == {"goodbye": None}, text_of(r)
    finally:
        gql.stop()
