"""A fleet: two replicas of the release binary behind a real load balancer
(haproxy, round-robin), recording into one PostgreSQL audit store and
sharing per-principal limits through Redis.

- A client's calls (the official Python MCP SDK over Streamable HTTP,
  stateless replicas) spread over both replicas, and every call is in the one
  audit table: `codemode audit --json` with the `[audit] url` reads them all,
  each with the replica that recorded it.
- A principal's request rate holds across the pair: with a bucket of B
  requests, the B+1th gets 429 whichever replica answers it (each replica on
  its own would allow B).

Needs haproxy (tests/peers/setup.sh installs it as root), PostgreSQL on
127.0.0.1:5432 (database `test`) and Redis on 127.0.0.1:6379; skips with the
reason when one is missing."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import BINARY
from test_http_helpers import BOOKSHELF_API, INIT, MCP_HEADERS, codemode_http, free_port, http_session, jsonrpc_of, text_of

pytestmark = pytest.mark.anyio

PG_URL = os.environ.get("CODEMODE_TEST_POSTGRES", "postgres://127.0.0.1:5432/test")
REDIS_URL = os.environ.get("CODEMODE_TEST_REDIS", "redis://127.0.0.1:6379")
TOKEN = "fleet-token-0123456789abcdef"
HAPROXY = shutil.which("haproxy") or ("/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None)


def reachable(url: str, default_port: int) -> bool:
    hostport = url.split("://", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1]
    host, _, port = hostport.partition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port or default_port)), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def fleet_peers():
    if HAPROXY is None:
        pytest.skip("haproxy is not installed (tests/peers/setup.sh installs it with apt-get when run as root)")
    if not reachable(PG_URL, 5432):
        pytest.skip(f"PostgreSQL does not answer at {PG_URL} (set CODEMODE_TEST_POSTGRES)")
    if not reachable(REDIS_URL, 6379):
        pytest.skip(f"Redis does not answer at {REDIS_URL} (set CODEMODE_TEST_REDIS)")
    tag = secrets.token_hex(4)
    schema = f"codemode_fleet_{os.getpid()}_{tag}"
    yield schema, f"codemode-fleet-{tag}:"
    # The test's schema goes with it (psql, when there is one).
    if shutil.which("psql"):
        subprocess.run(["psql", PG_URL, "-qc", f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'], capture_output=True, timeout=30)


@contextlib.contextmanager
def haproxy(tmp_path: Path, backends: dict[str, str]):
    """haproxy round-robin over `backends` (name → host:port); yields its base URL.
    Each answer says which replica gave it (X-Codemode-Replica)."""
    port = free_port()
    servers = "\n".join(f"  server {name} {addr}" for name, addr in backends.items())
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(f"""global
  maxconn 256
defaults
  mode http
  timeout connect 2s
  timeout client 60s
  timeout server 60s
frontend mcp
  bind 127.0.0.1:{port}
  default_backend replicas
backend replicas
  balance roundrobin
  http-response set-header X-Codemode-Replica %s
{servers}
""")
    check = subprocess.run([HAPROXY, "-c", "-f", str(cfg)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    log = open(tmp_path / "haproxy.log", "w")
    proc = subprocess.Popen([HAPROXY, "-db", "-f", str(cfg)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            assert proc.poll() is None, (tmp_path / "haproxy.log").read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "haproxy did not start listening"
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def replica_config(schema: str, prefix: str, host: str, rpm: int, burst: int) -> dict:
    server = {
        "stateless": True,
        "json_response": True,
        "requests_per_minute": rpm,
        "burst": burst,
        "redis_url": REDIS_URL,
        "redis_prefix": prefix,
    }
    audit = f'[audit]\nurl = "{PG_URL}"\nschema = "{schema}"\nhost = "{host}"\n'
    auth = f'[[auth.tokens]]\nname = "fleet-user"\ntoken_env = "FLEET_TOKEN"\nscopes = ["*"]\n'
    return {"server": server, "limits": audit, "auth": auth, "apis": BOOKSHELF_API, "env": {"FLEET_TOKEN": TOKEN}}


@contextlib.contextmanager
def fleet(tmp_path: Path, schema: str, prefix: str, rpm: int = 6000, burst: int = 1000):
    """Two replicas (replica-a, replica-b) and haproxy in front: yields (lb base URL, [servers])."""
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    a_dir.mkdir()
    b_dir.mkdir()
    with codemode_http(a_dir, **replica_config(schema, prefix, "replica-a", rpm, burst)) as a, \
         codemode_http(b_dir, **replica_config(schema, prefix, "replica-b", rpm, burst)) as b:
        backends = {"replica-a": a.base.removeprefix("http://"), "replica-b": b.base.removeprefix("http://")}
        with haproxy(tmp_path, backends) as lb:
            yield lb, [a, b]


def audit(config: Path, *args: str):
    p = subprocess.run([str(BINARY), "audit", "-c", str(config), *args], capture_output=True, text=True, timeout=60,
                       env={"PATH": os.environ.get("PATH", "")})
    assert p.returncode == 0, f"codemode audit {args} failed ({p.returncode}):\n{p.stderr}"
    if "--jsonl" in args:
        return [json.loads(line) for line in p.stdout.splitlines() if line.strip()]
    return json.loads(p.stdout)


def post(lb: str, body: dict) -> tuple[int, dict, bytes]:
    headers = {**MCP_HEADERS, "Authorization": f"Bearer {TOKEN}"}
    req = urllib.request.Request(lb + "/mcp", data=json.dumps(body).encode(), method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


async def test_calls_spread_over_both_replicas_into_one_audit_table(tmp_path, fleet_peers):
    schema, prefix = fleet_peers
    run = secrets.token_hex(3)
    codes = [f'async () => {{ /* fleet {run} #{i} */ return (await bookshelf.request("GET /books")).status; }}'
             for i in range(8)]
    with fleet(tmp_path, schema, prefix) as (lb, servers):
        async with http_session(lb + "/mcp", TOKEN) as s:
            for code in codes:
                r = await s.call_tool("execute", {"code": code})
                assert not r.is_error, text_of(r)
                assert json.loads(text_of(r)) == 200
        config = next(tmp_path.glob("a/codemode-*.toml"))
        listed = audit(config, "--json", "--limit", "0", "--grep", f"fleet {run}")
        # The replicas are still up: the audit CLI reads the same table they write.
        assert all(s.proc.poll() is None for s in servers)

    # Every call is in the one table, once, with the replica that recorded it …
    assert sorted(e["codeLine"] for e in listed) == sorted(c if len(c) <= 120 else c[:120] + "…" for c in codes), listed
    hosts = [e["host"] for e in sorted(listed, key=lambda e: e["id"])]
    assert set(hosts) == {"replica-a", "replica-b"}, hosts
    # … round-robin: the client's calls alternate between the two.
    assert abs(hosts.count("replica-a") - hosts.count("replica-b")) <= 2, hosts
    assert all(e["principal"] == "fleet-user" and e["outcome"] == "ok" for e in listed), listed

    # The same filters as with SQLite: per replica, and the JSONL export with each call.
    a_only = audit(config, "--json", "--limit", "0", "--grep", f"fleet {run}", "--host", "replica-a")
    assert len(a_only) == hosts.count("replica-a") and {e["host"] for e in a_only} == {"replica-a"}
    exported = audit(config, "--jsonl", "--grep", f"fleet {run}", "--api", "bookshelf", "--principal", "fleet-user")
    assert len(exported) == len(codes)
    for e in exported:
        assert [(c["target"], c["method"], c["path"], c["status"]) for c in e["calls"]] == [
            ("bookshelf", "GET", "/books", 200)], e
    shown = audit(config, "--show", str(listed[0]["id"]), "--json")
    assert shown["code"] in codes and shown["host"] in ("replica-a", "replica-b")


async def test_a_principals_rate_limit_holds_across_the_pair(tmp_path, fleet_peers):
    schema, prefix = fleet_peers
    burst = 6
    # One request a minute refills nothing during the test: the bucket is the burst.
    with fleet(tmp_path, schema, prefix, rpm=1, burst=burst) as (lb, servers):
        answers = [post(lb, {**INIT, "id": i}) for i in range(burst + 4)]
    statuses = [status for status, _, _ in answers]
    replicas = [headers.get("x-codemode-replica") for _, headers, _ in answers]
    # Both replicas answered, alternating …
    assert set(replicas) == {"replica-a", "replica-b"}, replicas
    assert replicas[:4] in (["replica-a", "replica-b"] * 2, ["replica-b", "replica-a"] * 2), replicas
    # … and the principal's B requests were counted together: the B+1th and every
    # later one is refused, on either replica (each alone would allow B).
    assert statuses == [200] * burst + [429] * 4, list(zip(statuses, replicas))
    assert {replicas[i] for i in range(burst, burst + 4)} == {"replica-a", "replica-b"}
    for status, headers, body in answers[burst:]:
        assert int(headers["retry-after"]) >= 1
        assert json.loads(body)["error"] == "rate_limited"
    for status, _, body in answers[:burst]:
        assert jsonrpc_of(body)["result"]["serverInfo"]["name"] == "codemode"
