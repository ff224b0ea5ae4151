"""Governance end to end, through the release binary: per-API and per-server
allow/deny/approve rules, groups of principals (static tokens and real JWTs),
human approval over MCP elicitation (the official Python SDK's callback),
dry runs (`serve --dry-run`, `exec --dry-run`, `[policy] dry_run`, per API and
per server), and credentials that stay out of everything the new surfaces say.

Real components only: Kinto (writes read back over plain HTTP, behind
codemode's back), the Cloudflare spec in rehearsal mode, server-filesystem,
server-everything and the hostile echo server from tests/hostile as upstream
MCP servers, the loopback JWT issuer of test_http_helpers."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

import mcp.types as types
from conftest import BINARY, ROOT, SPECS, mcp_session, peers, text_of, write_config
from test_http_helpers import Issuer, codemode_http, free_port, http_session, oauth_config, toml_value

pytestmark = pytest.mark.anyio

KINTO_SPEC = SPECS / "kinto-26.5.0.swagger.json"
CLOUDFLARE_SPEC = peers.CLOUDFLARE_SPEC
MCP_NODE = ROOT / ".peers" / "portal-node" / "node_modules" / "@modelcontextprotocol"
FS_SERVER = MCP_NODE / "server-filesystem" / "dist" / "index.js"
EVERYTHING_SERVER = MCP_NODE / "server-everything" / "dist" / "index.js"
ECHO_MCP = ROOT / "tests" / "hostile" / "echo_mcp.py"
PYTHON = ROOT / ".peers" / "venv" / "bin" / "python"

# A Cloudflare zone and DNS record id of the documented shape (32 hex characters).
ZONE = "023e105f4ecef8ad9ca31a8372d0c353"
RECORD = "372e67954025e0ba6aaa6d586b9e0b59"

# JavaScript: run one call, and describe how it ended without throwing.
ATTEMPT = """
const attempt = async (f) => {
  try {
    const r = await f();
    return {ok: true, status: r && r.status, dryRun: r && r.dryRun};
  } catch (e) {
    return {ok: false, name: e.name, message: String(e.message), rule: e.rule === undefined ? null : e.rule,
            reason: e.reason === undefined ? null : e.reason};
  }
};
"""


def js(body: str) -> str:
    """An execute/search script: the attempt helper, then BODY."""
    return "async () => {\n" + ATTEMPT + body + "\n}"


async def run(session, code: str, tool: str = "execute"):
    """Calls TOOL with CODE; returns (result, parsed first text block)."""
    r = await session.call_tool(tool, {"code": code})
    first = r.content[0].text if r.content and getattr(r.content[0], "type", "") == "text" else ""
    try:
        value = json.loads(first)
    except ValueError:
        value = first
    return r, value


async def run_ok(session, code: str, tool: str = "execute"):
    r, value = await run(session, code, tool)
    assert not r.is_error, f"{tool} failed:\n{text_of(r)}"
    return r, value


def refused(outcome, kind: str = "PolicyError"):
    """Asserts an `attempt` outcome is a refusal of KIND; returns it."""
    assert isinstance(outcome, dict), outcome
    assert not outcome["ok"], f"expected a {kind}, but the call went through: {outcome}"
    assert outcome["name"] == kind, f"expected name {kind!r}: {outcome}"
    assert outcome["message"], f"a {kind} without a message: {outcome}"
    return outcome


def assert_rule(outcome, effect: str, pattern: str, where: str):
    """A PolicyError's `rule` names the effect, the pattern and where it is."""
    rule = outcome["rule"]
    assert isinstance(rule, dict), f"a PolicyError without a `rule` object: {outcome}"
    assert rule.get("effect") == effect, f"rule.effect should be {effect!r}: {outcome}"
    assert pattern in str(rule.get("pattern")), f"rule.pattern should name {pattern!r}: {outcome}"
    assert where in str(rule.get("from")), f"rule.from should say {where!r}: {outcome}"
    assert pattern in outcome["message"], f"the message should name the rule {pattern!r}: {outcome}"


# --- Kinto, read and written behind codemode's back ---------------------------


def kinto_http(kinto, method: str, path: str, body: dict | None = None) -> tuple[int, dict | None]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(kinto.url + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    req.add_header("Authorization", kinto.authorization)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            raw = r.read()
            return r.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        raw = e.read()
        return e.code, json.loads(raw) if raw else None


def fresh_bucket(kinto, *collections: str) -> str:
    """A new bucket (its own per test) with COLLECTIONS (default: `notes`)."""
    bid = "gov-" + uuid.uuid4().hex[:12]
    status, body = kinto_http(kinto, "PUT", f"/buckets/{bid}", {"data": {}})
    assert status in (200, 201), (status, body)
    for c in collections or ("notes",):
        status, body = kinto_http(kinto, "PUT", f"/buckets/{bid}/collections/{c}", {"data": {}})
        assert status in (200, 201), (status, body)
    return bid


def seed(kinto, bid: str, rid: str, title: str, cid: str = "notes"):
    status, body = kinto_http(kinto, "PUT", f"/buckets/{bid}/collections/{cid}/records/{rid}", {"data": {"title": title}})
    assert status in (200, 201), (status, body)


def titles(kinto, bid: str, cid: str = "notes") -> list[str]:
    """The titles of every record in the collection, sorted (straight from Kinto)."""
    status, body = kinto_http(kinto, "GET", f"/buckets/{bid}/collections/{cid}/records")
    assert status == 200, (status, body)
    return sorted(r.get("title", "") for r in body["data"])


def snapshot(kinto, bid: str, cid: str = "notes") -> list[dict]:
    status, body = kinto_http(kinto, "GET", f"/buckets/{bid}/collections/{cid}/records")
    assert status == 200, (status, body)
    return sorted(body["data"], key=lambda r: r["id"])


def kinto_api(kinto, name: str = "kinto", **keys) -> str:
    """An `[[api]]` table for the Kinto peer (Basic auth from $KINTO_PASSWORD)."""
    lines = [
        "[[api]]",
        f'name = "{name}"',
        f'spec = "{KINTO_SPEC}"',
        f'base_url = "{kinto.url}"',
        f'auth = {{ type = "basic", user = "{kinto.user}", password_env = "KINTO_PASSWORD" }}',
    ]
    lines += [f"{k} = {toml_value(v)}" for k, v in keys.items()]
    return "\n".join(lines) + "\n\n"


def fs_mcp(files: Path, name: str = "fs", **keys) -> str:
    """An `[[mcp]]` table for server-filesystem rooted at FILES."""
    assert FS_SERVER.exists(), "run crates/portal/tests/peers-setup.sh (scripts/test does)"
    lines = ["[[mcp]]", f'name = "{name}"', 'command = "node"', f'args = ["{FS_SERVER}", "{files}"]']
    lines += [f"{k} = {toml_value(v)}" for k, v in keys.items()]
    return "\n".join(lines) + "\n\n"


def files_dir(tmp_path: Path) -> Path:
    files = tmp_path / "files"
    files.mkdir(exist_ok=True)
    (files / "team.txt").write_text("Ada Lovelace\nGrace Hopper\n")
    return files


def records_path(bid: str, cid: str = "notes") -> str:
    return f"/buckets/{bid}/collections/{cid}/records"


def post_record(bid: str, title: str, cid: str = "notes", api: str = "kinto") -> str:
    """JavaScript: POST one record (object form)."""
    return f"{api}.request({{method: 'POST', path: {json.dumps(records_path(bid, cid))}, body: {{data: {{title: {json.dumps(title)}}}}}}})"


def env_for(kinto, **more) -> dict:
    return {"KINTO_PASSWORD": kinto.password, **more}


# --- 1. groups: two principals, one instance ----------------------------------

GROUPS = """
[policy.groups.finance]
kinto = { allow = ["GET /**"] }
fs = { allow = ["read_*", "list_*"] }

[policy.groups.engineering]
kinto = { deny = ["DELETE /**"] }
fs = { deny = ["move_*"] }
"""

TOOLS = "async () => codemode.tools().filter(t => t.server === 'fs').map(t => t.name).sort()"


async def check_finance(s, kinto, bid: str, files: Path):
    """finance: Kinto reads only, filesystem reads and lists only."""
    _, out = await run_ok(s, js(f"""
        return {{
          get: await attempt(() => kinto.request('GET {records_path(bid)}')),
          post: await attempt(() => {post_record(bid, 'from finance')}),
        }};"""))
    assert out["get"]["ok"] and out["get"]["status"] == 200, out
    post = refused(out["post"])
    assert_rule(post, "allow", "GET /**", "finance")
    assert "group" in str(post["rule"]["from"]), post
    assert "from finance" not in titles(kinto, bid), "finance's refused POST reached Kinto"

    team, pwned = json.dumps(str(files / "team.txt")), json.dumps(str(files / "finance.txt"))
    _, out = await run_ok(s, js(f"""
        const file = await codemode.fs_read_text_file({{path: {team}}});
        const dir = await codemode.fs_list_directory({{path: {json.dumps(str(files))}}});
        return {{
          read: JSON.stringify(file),
          list: JSON.stringify(dir),
          write: await attempt(() => codemode.fs_write_file({{path: {pwned}, content: 'x'}})),
        }};"""))
    assert "Ada Lovelace" in out["read"], out
    assert "team.txt" in out["list"], out
    write = refused(out["write"])
    assert "finance" in str(write["rule"] and write["rule"].get("from")), write
    assert not (files / "finance.txt").exists(), "finance wrote through the filesystem server"

    _, names = await run_ok(s, TOOLS, tool="search")
    assert "fs_read_text_file" in names and "fs_list_directory" in names, names
    for hidden in ("fs_write_file", "fs_edit_file", "fs_move_file", "fs_create_directory", "fs_directory_tree"):
        assert hidden not in names, f"{hidden} is not allowed to finance but codemode.tools() shows it: {names}"


async def check_engineering(s, kinto, bid: str, files: Path):
    """engineering: Kinto writes but no DELETE, every filesystem tool."""
    seed(kinto, bid, "keep", "engineering keeps this")
    _, out = await run_ok(s, js(f"""
        return {{
          post: await attempt(() => {post_record(bid, 'from engineering')}),
          del: await attempt(() => kinto.request({{method: 'DELETE', path: '{records_path(bid)}/keep'}})),
        }};"""))
    assert out["post"]["ok"] and out["post"]["status"] == 201, out
    assert "from engineering" in titles(kinto, bid), "engineering's POST did not land in Kinto"
    assert_rule(refused(out["del"]), "deny", "DELETE /**", "engineering")
    assert "engineering keeps this" in titles(kinto, bid), "a denied DELETE reached Kinto"

    target = files / "engineering.txt"
    _, out = await run_ok(s, js(f"return await attempt(() => codemode.fs_write_file({{path: {json.dumps(str(target))}, content: 'eng'}}));"))
    assert out["ok"], out
    assert target.read_text() == "eng"

    _, out = await run_ok(s, js(f"""return await attempt(() => codemode.fs_move_file(
        {{source: {json.dumps(str(target))}, destination: {json.dumps(str(files / 'moved.txt'))}}}));"""))
    assert_rule(refused(out), "deny", "move_*", "engineering")
    assert target.exists() and not (files / "moved.txt").exists(), "a denied move_file ran"

    _, names = await run_ok(s, TOOLS, tool="search")
    assert "fs_write_file" in names and "fs_read_text_file" in names and "fs_directory_tree" in names, names
    assert "fs_move_file" not in names, f"engineering's groups deny move_* but codemode.tools() shows it: {names}"


async def test_groups_split_static_tokens_on_one_instance(tmp_path, kinto_peer):
    bid = fresh_bucket(kinto_peer)
    files = files_dir(tmp_path)
    tokens = {"FIN_TOKEN": "fin-token-0123456789abcdef", "ENG_TOKEN": "eng-token-0123456789abcdef",
              "OPS_TOKEN": "ops-token-0123456789abcdef", "ENGRO_TOKEN": "engro-token-0123456789abcdef",
              "BOTH_TOKEN": "both-token-0123456789abcdef"}
    auth = """
[[auth.tokens]]
name = "fin"
token_env = "FIN_TOKEN"
scopes = ["*"]
groups = ["finance"]

[[auth.tokens]]
name = "eng"
token_env = "ENG_TOKEN"
scopes = ["*"]
groups = ["engineering"]

[[auth.tokens]]
name = "ops"
token_env = "OPS_TOKEN"
scopes = ["*"]

[[auth.tokens]]
name = "both"
token_env = "BOTH_TOKEN"
scopes = ["*"]
groups = ["finance", "engineering"]

[[auth.tokens]]
name = "eng-reader"
token_env = "ENGRO_TOKEN"
scopes = ["kinto:read", "fs:read"]
groups = ["engineering"]
"""
    apis = kinto_api(kinto_peer, allow_writes=True) + fs_mcp(files) + GROUPS
    with codemode_http(tmp_path, auth=auth, apis=apis, env=env_for(kinto_peer, **tokens)) as srv:
        async with http_session(srv.url, tokens["FIN_TOKEN"]) as s:
            await check_finance(s, kinto_peer, bid, files)
        async with http_session(srv.url, tokens["ENG_TOKEN"]) as s:
            await check_engineering(s, kinto_peer, bid, files)
        # No group: the base rules alone (allow_writes), so DELETE goes through.
        async with http_session(srv.url, tokens["OPS_TOKEN"]) as s:
            _, out = await run_ok(s, js(f"return await attempt(() => kinto.request({{method: 'DELETE', path: '{records_path(bid)}/keep'}}));"))
            assert out["ok"], f"a principal in no group is held to the base rules only: {out}"
        assert "engineering keeps this" not in titles(kinto_peer, bid)
        # In two groups: allowed when either group's table allows it (engineering's has
        # no allow list), refused when either denies it.
        seed(kinto_peer, bid, "both", "kept from both")
        async with http_session(srv.url, tokens["BOTH_TOKEN"]) as s:
            _, out = await run_ok(s, js(f"""return {{
              post: await attempt(() => {post_record(bid, 'from both')}),
              del: await attempt(() => kinto.request({{method: 'DELETE', path: '{records_path(bid)}/both'}})),
              write: await attempt(() => codemode.fs_write_file({{path: {json.dumps(str(files / 'both.txt'))}, content: 'b'}})),
              move: await attempt(() => codemode.fs_move_file({{source: {json.dumps(str(files / 'both.txt'))},
                                                                destination: {json.dumps(str(files / 'both-moved.txt'))}}})),
            }};"""))
            assert out["post"]["ok"] and out["write"]["ok"], out
            assert_rule(refused(out["del"]), "deny", "DELETE /**", "engineering")
            assert_rule(refused(out["move"]), "deny", "move_*", "engineering")
        assert "from both" in titles(kinto_peer, bid) and "kept from both" in titles(kinto_peer, bid)
        assert (files / "both.txt").exists() and not (files / "both-moved.txt").exists()
        # Groups never widen scopes: engineering allows POST, the token's scopes do not.
        async with http_session(srv.url, tokens["ENGRO_TOKEN"]) as s:
            _, out = await run_ok(s, js(f"return await attempt(() => {post_record(bid, 'from eng-reader')});"))
            refused(out, "ScopeError")
            assert "kinto:write" in out["message"], out
        assert "from eng-reader" not in titles(kinto_peer, bid)


@pytest.fixture
def issuer():
    i = Issuer()
    i.new_key("k1")
    yield i
    i.close()


async def test_groups_from_jwt_claims(tmp_path, kinto_peer, issuer):
    bid = fresh_bucket(kinto_peer)
    files = files_dir(tmp_path)
    apis = kinto_api(kinto_peer, allow_writes=True) + fs_mcp(files) + GROUPS
    scope = "kinto:read kinto:write fs:read fs:write"
    with codemode_http(tmp_path, auth=oauth_config(issuer), apis=apis, env=env_for(kinto_peer)) as srv:
        finance = issuer.token(srv.url, sub="fin-bot", scope=scope, groups=["finance"])
        # A space-separated string is a list of groups too.
        engineering = issuer.token(srv.url, sub="eng-bot", scope=scope, groups="engineering contractors")
        async with http_session(srv.url, finance) as s:
            await check_finance(s, kinto_peer, bid, files)
        async with http_session(srv.url, engineering) as s:
            await check_engineering(s, kinto_peer, bid, files)
        assert "principal=fin-bot" in srv.log() and "principal=eng-bot" in srv.log()


async def test_groups_claim_can_be_renamed(tmp_path, kinto_peer, issuer):
    bid = fresh_bucket(kinto_peer)
    apis = kinto_api(kinto_peer, allow_writes=True) + GROUPS.replace(
        'fs = { allow = ["read_*", "list_*"] }', "").replace('fs = { deny = ["move_*"] }', "")
    auth = oauth_config(issuer, groups_claim="https://codemode.test/teams")
    scope = "kinto:read kinto:write"
    with codemode_http(tmp_path, auth=auth, apis=apis, env=env_for(kinto_peer)) as srv:
        member = issuer.token(srv.url, sub="fin-bot", scope=scope, **{"https://codemode.test/teams": ["finance"]})
        # With groups_claim renamed, a `groups` claim no longer makes anyone a member.
        outsider = issuer.token(srv.url, sub="other-bot", scope=scope, groups=["finance"])
        async with http_session(srv.url, member) as s:
            _, out = await run_ok(s, js(f"return await attempt(() => {post_record(bid, 'renamed claim')});"))
            assert_rule(refused(out), "allow", "GET /**", "finance")
        async with http_session(srv.url, outsider) as s:
            _, out = await run_ok(s, js(f"return await attempt(() => {post_record(bid, 'plain groups claim')});"))
            assert out["ok"], f"only the configured claim carries groups: {out}"
    assert titles(kinto_peer, bid) == ["plain groups claim"]


# --- 2. globs on the Cloudflare spec, in rehearsal mode -----------------------


def cloudflare_api(name: str, **keys) -> str:
    lines = ["[[api]]", f'name = "{name}"', f'spec = "{CLOUDFLARE_SPEC}"', "mock = true",
             'auth = { type = "bearer", token_env = "CF_TOKEN" }']
    lines += [f"{k} = {toml_value(v)}" for k, v in keys.items()]
    return "\n".join(lines) + "\n\n"


DNS_DELETE = "DELETE /zones/*/dns_records/*"
DNS_PATCH_OP = "operationId:dns-records-for-a-zone-patch-*"
USER_TAG = "tag:User*"
EXPORT_GLOB = "GET /zones/*/dns_*/exp*"


async def test_deny_and_allow_globs_on_the_cloudflare_spec(tmp_path):
    cfg = write_config(tmp_path, cloudflare_api("cfdeny", allow_writes=True, deny=[DNS_DELETE, DNS_PATCH_OP, USER_TAG, EXPORT_GLOB])
                       + cloudflare_api("cfallow", allow=["GET /zones/**", "operationId:user-user-details",
                                                          "DELETE /zones/*/dns_records/*"]))
    async with mcp_session(["--config", str(cfg)], env={"CF_TOKEN": "rehearsal-token-123456"}) as s:
        _, out = await run_ok(s, js(f"""
            const Z = '{ZONE}', R = '{RECORD}';
            return {{
              del: await attempt(() => cfdeny.request({{method: 'DELETE', path: `/zones/${{Z}}/dns_records/${{R}}`}})),
              delRoute: await attempt(() => cfdeny.request('DELETE /zones/{{zone_id}}/dns_records/{{dns_record_id}}', {{zone_id: Z, dns_record_id: R}})),
              get: await attempt(() => cfdeny.request('GET /zones/{{zone_id}}/dns_records/{{dns_record_id}}', {{zone_id: Z, dns_record_id: R}})),
              list: await attempt(() => cfdeny.request(`GET /zones/${{Z}}/dns_records`)),
              patch: await attempt(() => cfdeny.request({{method: 'PATCH', path: `/zones/${{Z}}/dns_records/${{R}}`, body: {{comment: 'x'}}}})),
              user: await attempt(() => cfdeny.request('GET /user')),
              exp: await attempt(() => cfdeny.request(`GET /zones/${{Z}}/dns_records/export`)),
              zoneDelete: await attempt(() => cfdeny.request({{method: 'DELETE', path: `/zones/${{Z}}`}})),
            }};"""))
        assert_rule(refused(out["del"]), "deny", DNS_DELETE, "cfdeny")
        assert_rule(refused(out["delRoute"]), "deny", DNS_DELETE, "cfdeny")
        assert out["get"]["ok"] and out["get"]["status"] == 200, out["get"]
        assert out["list"]["ok"] and out["list"]["status"] == 200, out["list"]
        assert_rule(refused(out["patch"]), "deny", DNS_PATCH_OP, "cfdeny")
        assert_rule(refused(out["user"]), "deny", USER_TAG, "cfdeny")
        assert_rule(refused(out["exp"]), "deny", EXPORT_GLOB, "cfdeny")
        assert out["zoneDelete"]["ok"], f"DELETE /zones/{{zone_id}} matches no deny rule: {out['zoneDelete']}"

        # Spellings of the same path cannot step around the deny.
        tricks = [
            f"/Zones/{ZONE}/dns_records/{RECORD}",
            f"/ZONES/{ZONE}/DNS_RECORDS/{RECORD}",
            f"/zones/{ZONE}/%64ns_records/{RECORD}",
            f"/zones/{ZONE}/dns%5Frecords/{RECORD}",
            f"/%7Aones/{ZONE}/dns_records/{RECORD}",
            f"/zones/{ZONE}/dns_records/{RECORD}/",
            f"/zones//{ZONE}/dns_records/{RECORD}",
            f"/zones/{ZONE}//dns_records///{RECORD}",
            f"/zones/{ZONE}/dns_records/{RECORD}?force=true",
        ]
        _, out = await run_ok(s, js(f"""
            const out = {{}};
            for (const p of {json.dumps(tricks)}) out[p] = await attempt(() => cfdeny.request({{method: 'DELETE', path: p}}));
            out['delete lower-case'] = await attempt(() => cfdeny.request({{method: 'delete', path: {json.dumps(f"/zones/{ZONE}/dns_records/{RECORD}")}}}));
            return out;"""))
        for path, outcome in out.items():
            assert not outcome["ok"], f"DELETE {path} stepped around `{DNS_DELETE}`: {outcome}"
            assert outcome["name"] == "PolicyError", f"DELETE {path} should be refused by the deny rule: {outcome}"

        # An allow list: only matching operations; an explicit allow entry permits a
        # write even without allow_writes.
        _, out = await run_ok(s, js(f"""
            const Z = '{ZONE}', R = '{RECORD}';
            return {{
              zone: await attempt(() => cfallow.request(`GET /zones/${{Z}}`)),
              records: await attempt(() => cfallow.request(`GET /zones/${{Z}}/dns_records`)),
              user: await attempt(() => cfallow.request('GET /user')),
              accounts: await attempt(() => cfallow.request('GET /accounts')),
              accountsCase: await attempt(() => cfallow.request('GET /Accounts/')),
              patchUser: await attempt(() => cfallow.request({{method: 'PATCH', path: '/user', body: {{country: 'US'}}}})),
              createZone: await attempt(() => cfallow.request({{method: 'POST', path: '/zones', body: {{name: 'example.com', account: {{id: Z}}}}}})),
              // This spec documents a (JSON) body for the DELETE.
              delRecord: await attempt(() => cfallow.request({{method: 'DELETE', path: `/zones/${{Z}}/dns_records/${{R}}`, body: {{}}}})),
            }};"""))
        for k in ("zone", "records", "user"):
            assert out[k]["ok"] and out[k]["status"] == 200, (k, out[k])
        accounts = refused(out["accounts"])
        assert_rule(accounts, "allow", "GET /zones/**", "cfallow")
        assert "operationId:user-user-details" in str(accounts["rule"]["pattern"]), accounts
        refused(out["accountsCase"])
        refused(out["patchUser"])
        refused(out["createZone"])
        assert out["delRecord"]["ok"], f"an explicit allow entry permits the write without allow_writes: {out['delRecord']}"


# --- 3. rules on real Kinto writes --------------------------------------------


async def test_rules_decide_which_kinto_writes_land(tmp_path, kinto_peer):
    bid = fresh_bucket(kinto_peer, "notes", "locked")
    seed(kinto_peer, bid, "r1", "original")
    seed(kinto_peer, bid, "l1", "locked original", cid="locked")
    cfg = write_config(tmp_path, kinto_api(
        kinto_peer,
        # No allow_writes: the explicit allow entry alone permits the POST.
        allow=["GET|HEAD /**", "POST /buckets/*/collections/*/records"],
        deny=["DELETE /**", "PATCH /buckets/*/collections/*/records/*", "/buckets/*/collections/locked/**", "* /__*__",
              # A pattern may be written as the spec's template.
              "GET /buckets/{bucket_id}/groups"],
    ))
    before_notes, before_locked = snapshot(kinto_peer, bid), snapshot(kinto_peer, bid, "locked")
    async with mcp_session(["--config", str(cfg)], env=env_for(kinto_peer)) as s:
        r1 = records_path(bid) + "/r1"
        _, out = await run_ok(s, js(f"""
            return {{
              post: await attempt(() => {post_record(bid, 'allowed by an allow entry')}),
              postRoute: await attempt(() => kinto.request('POST /buckets/{{bucket_id}}/collections/{{collection_id}}/records',
                                                           {{bucket_id: '{bid}', collection_id: 'notes', data: {{title: 'route form'}}}})),
              put: await attempt(() => kinto.request({{method: 'PUT', path: '{r1}', body: {{data: {{title: 'overwritten'}}}}}})),
              patch: await attempt(() => kinto.request({{method: 'PATCH', path: '{r1}', body: {{data: {{title: 'patched'}}}}}})),
              del: await attempt(() => kinto.request({{method: 'DELETE', path: '{r1}'}})),
              delTrailing: await attempt(() => kinto.request({{method: 'DELETE', path: '{r1}/'}})),
              delCase: await attempt(() => kinto.request({{method: 'DELETE', path: '{r1.replace("/buckets/", "/BUCKETS/")}'}})),
              delEncoded: await attempt(() => kinto.request({{method: 'DELETE', path: '{r1.replace("/records/", "/%72ecords/")}'}})),
              locked: await attempt(() => {post_record(bid, 'into locked', cid='locked')}),
              list: await attempt(() => kinto.request('GET {records_path(bid)}')),
              head: await attempt(() => kinto.request({{method: 'HEAD', path: '{records_path(bid)}'}})),
              lockedGet: await attempt(() => kinto.request('GET {records_path(bid, "locked")}')),
              heartbeat: await attempt(() => kinto.request('GET /__heartbeat__')),
              groups: await attempt(() => kinto.request('GET /buckets/{bid}/groups')),
            }};"""))
    assert out["post"]["ok"] and out["post"]["status"] == 201, out["post"]
    assert out["postRoute"]["ok"] and out["postRoute"]["status"] == 201, out["postRoute"]
    assert out["list"]["ok"], out["list"]
    assert out["head"]["ok"] or out["head"]["name"] != "PolicyError", f"`GET|HEAD /**` allows HEAD: {out['head']}"
    put = refused(out["put"])
    assert_rule(put, "allow", "POST /buckets/*/collections/*/records", "kinto")
    assert "GET|HEAD /**" in str(put["rule"]["pattern"]), put
    # A pattern without a method covers every method; `*` is any method.
    assert_rule(refused(out["lockedGet"]), "deny", "/buckets/*/collections/locked/**", "kinto")
    assert_rule(refused(out["heartbeat"]), "deny", "* /__*__", "kinto")
    assert_rule(refused(out["groups"]), "deny", "GET /buckets/{bucket_id}/groups", "kinto")
    assert_rule(refused(out["patch"]), "deny", "PATCH /buckets/*/collections/*/records/*", "kinto")
    for k in ("del", "delTrailing", "delCase", "delEncoded"):
        assert_rule(refused(out[k]), "deny", "DELETE /**", "kinto")
    # Deny wins over a matching allow entry.
    assert_rule(refused(out["locked"]), "deny", "/buckets/*/collections/locked/**", "kinto")

    after_notes = snapshot(kinto_peer, bid)
    assert sorted(r["title"] for r in after_notes) == ["allowed by an allow entry", "original", "route form"], after_notes
    r1_now = next(r for r in after_notes if r["id"] == "r1")
    assert r1_now == next(r for r in before_notes if r["id"] == "r1"), "a refused PUT/PATCH/DELETE changed r1"
    assert snapshot(kinto_peer, bid, "locked") == before_locked, "a denied POST changed the locked collection"


async def test_an_encoded_slash_does_not_step_around_a_narrow_deny(tmp_path, kinto_peer):
    """Kinto decodes `%2F` before routing: `notes%2Frecords/r1` is the record r1."""
    bid = fresh_bucket(kinto_peer, "notes", "scratch")
    for rid in ("r1", "r2", "r3"):
        seed(kinto_peer, bid, rid, f"seeded {rid}")
    cfg = write_config(tmp_path, kinto_api(kinto_peer, allow_writes=True, deny=["DELETE /buckets/*/collections/*/records/*"]))
    async with mcp_session(["--config", str(cfg)], env=env_for(kinto_peer)) as s:
        _, out = await run_ok(s, js(f"""return {{
          plain: await attempt(() => kinto.request({{method: 'DELETE', path: '{records_path(bid)}/r1'}})),
          slash: await attempt(() => kinto.request({{method: 'DELETE', path: '/buckets/{bid}/collections/notes%2Frecords/r2'}})),
          slashLower: await attempt(() => kinto.request({{method: 'DELETE', path: '/buckets/{bid}/collections/notes%2frecords%2Fr2'}})),
          route: await attempt(() => kinto.request('DELETE /buckets/{{bucket_id}}/collections/{{id}}', {{bucket_id: '{bid}', id: 'notes/records/r3'}})),
          collection: await attempt(() => kinto.request({{method: 'DELETE', path: '/buckets/{bid}/collections/scratch'}})),
        }};"""))
    for k in ("plain", "slash", "slashLower", "route"):
        refused(out[k])
    assert titles(kinto_peer, bid) == ["seeded r1", "seeded r2", "seeded r3"], "a record was deleted around the deny"
    # The deny is narrow: deleting a collection is another operation.
    assert out["collection"]["ok"], out["collection"]
    assert kinto_http(kinto_peer, "GET", f"/buckets/{bid}/collections/scratch")[0] in (403, 404)


# --- 4. human approval over MCP elicitation -----------------------------------


class Approver:
    """An elicitation callback: answers with ANSWER (a function of the request's
    index and params returning (action, content)) after DELAY seconds, and
    records every request and how many were outstanding at once."""

    def __init__(self, answer=None, delay: float = 0.0):
        self.answer = answer or (lambda i, p: ("accept", {}))
        self.delay = delay
        self.requests: list = []
        self.active = 0
        self.max_active = 0

    async def __call__(self, context, params):
        self.requests.append(params)
        index = len(self.requests) - 1
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            action, content = self.answer(index, params)
            return types.ElicitResult(action=action, content=content)
        finally:
            self.active -= 1

    @property
    def messages(self) -> list[str]:
        return [p.message for p in self.requests]


def approval_config(tmp_path: Path, kinto, timeout_secs: int = 120, extra: str = "") -> Path:
    return write_config(tmp_path, f"[policy]\napproval_timeout_secs = {timeout_secs}\n\n" + kinto_api(
        kinto, allow_writes=True,
        approve=["POST /buckets/*/collections/*/records", "DELETE /buckets/*/collections/*/records/*"],
        deny=["POST /buckets/*/collections/locked/**"],
    ) + extra)


def try_post_then_count(bid: str, title: str) -> str:
    """JavaScript: POST a record, catch an ApprovalDenied, then read the collection."""
    return js(f"""
        let denied = null, posted = null;
        try {{ posted = (await {post_record(bid, title)}).status; }}
        catch (e) {{ denied = {{name: e.name, reason: e.reason, message: String(e.message)}}; }}
        const after = await kinto.request('GET {records_path(bid)}');
        return {{posted, denied, count: after.data.data.length, continued: true}};""")


async def test_approval_accept_decline_cancel_timeout(tmp_path, kinto_peer):
    bid = fresh_bucket(kinto_peer, "notes", "locked")
    answers = {"mode": "accept"}

    def answer(i, params):
        return {"accept": ("accept", {}), "decline": ("decline", None), "cancel": ("cancel", None)}[answers["mode"]]

    approver = Approver(answer)
    cfg = approval_config(tmp_path, kinto_peer, timeout_secs=1)
    async with mcp_session(["--config", str(cfg)], env=env_for(kinto_peer), elicitation_callback=approver) as s:
        # Reads are never asked about.
        await run_ok(s, f"async () => (await kinto.request('GET {records_path(bid)}')).status")
        assert approver.requests == [], "a GET asked for approval"

        # accept: sent.
        _, out = await run_ok(s, try_post_then_count(bid, "approved title"))
        assert out["posted"] == 201 and out["denied"] is None, out
        assert titles(kinto_peer, bid) == ["approved title"]
        assert len(approver.requests) == 1, approver.messages
        params = approver.requests[0]
        message = params.message
        for needle in ("kinto", "POST", records_path(bid), "approved title"):
            assert needle in message, f"the elicitation message should name {needle!r}: {message!r}"
        schema = params.requested_schema
        assert getattr(params, "mode", "form") in (None, "form"), params
        assert schema["type"] == "object" and schema["properties"]["remember"]["type"] == "boolean", schema
        assert "remember" not in schema.get("required", []), f"`remember` is optional: {schema}"
        assert kinto_peer.password not in message

        # A long body is summarised, not pasted whole.
        _, out = await run_ok(s, f"async () => (await {post_record(bid, 'long ' + 'x' * 50_000)}).status")
        assert out == 201 and len(approver.requests) == 2
        assert len(approver.messages[1]) < 5000, f"a {len(approver.messages[1])}-character question for a 50 kB body"
        kinto_http(kinto_peer, "DELETE", records_path(bid) + "/" + next(
            r["id"] for r in snapshot(kinto_peer, bid) if r["title"].startswith("long ")))
        approver.requests.pop()

        # A denied call is refused without asking: deny wins over approve.
        _, out = await run_ok(s, js(f"return await attempt(() => {post_record(bid, 'locked', cid='locked')});"))
        assert_rule(refused(out), "deny", "POST /buckets/*/collections/locked/**", "kinto")
        assert len(approver.requests) == 1, "a denied call asked for approval"

        # decline and cancel: refused, catchable, the script goes on.
        for mode, reason in (("decline", "declined"), ("cancel", "cancelled")):
            answers["mode"] = mode
            r, out = await run_ok(s, try_post_then_count(bid, f"{mode}d title"))
            assert out["posted"] is None and out["continued"], out
            assert out["denied"]["name"] == "ApprovalDenied" and out["denied"]["reason"] == reason, out
            assert out["count"] == 1, f"a {mode}d write reached Kinto: {out}"
        assert len(approver.requests) == 3

        # No answer within approval_timeout_secs: refused with reason "timeout"; the late
        # acceptance does not send it either.
        answers["mode"] = "accept"
        approver.delay = 10
        started = time.monotonic()
        _, out = await run_ok(s, try_post_then_count(bid, "too late"))
        assert out["denied"] and out["denied"]["name"] == "ApprovalDenied" and out["denied"]["reason"] == "timeout", out
        assert out["count"] == 1, out
        assert time.monotonic() - started < approver.delay, "the timeout did not end the wait"
        # The late answer has been given (or the request cancelled) before we look.
        deadline = time.monotonic() + approver.delay + 60
        while approver.active:
            assert time.monotonic() < deadline, "the approver never finished"
            await asyncio.sleep(0.05)
        assert titles(kinto_peer, bid) == ["approved title"], "a write approved after the timeout was sent"


async def test_approval_unavailable_without_the_elicitation_capability(tmp_path, kinto_peer):
    bid = fresh_bucket(kinto_peer)
    cfg = approval_config(tmp_path, kinto_peer)
    async with mcp_session(["--config", str(cfg)], env=env_for(kinto_peer)) as s:  # no elicitation callback
        started = time.monotonic()
        _, out = await run_ok(s, try_post_then_count(bid, "never asked"))
        assert time.monotonic() - started < 60, "without elicitation there is nobody to wait for (the wait would be 120 s)"
    denied = out["denied"]
    assert denied and denied["name"] == "ApprovalDenied" and denied["reason"] == "unavailable", out
    assert "elicitation" in denied["message"].lower(), f"the message should say why (no elicitation): {denied}"
    assert titles(kinto_peer, bid) == []


async def test_parallel_approvals_are_asked_one_at_a_time(tmp_path, kinto_peer):
    bid = fresh_bucket(kinto_peer)
    approver = Approver(delay=0.3)
    cfg = approval_config(tmp_path, kinto_peer)
    names = ["parallel 1", "parallel 2", "parallel 3"]
    all3 = ", ".join(post_record(bid, n) for n in names)
    async with mcp_session(["--config", str(cfg)], env=env_for(kinto_peer), elicitation_callback=approver) as s:
        _, out = await run_ok(s, f"async () => (await Promise.all([{all3}])).map(r => r.status)")
        assert out == [201, 201, 201], out
        assert len(approver.requests) == 3, approver.messages
        assert approver.max_active == 1, f"{approver.max_active} elicitations were outstanding at once for one execute"
        asked = [next(n for n in names if n in m) for m in approver.messages]
        assert sorted(asked) == names, approver.messages
        assert titles(kinto_peer, bid) == names

        # The second of three parallel questions declined: that call alone is refused.
        approver.requests.clear()
        approver.max_active = 0
        approver.answer = lambda i, p: ("decline", None) if i == 1 else ("accept", {})
        names = ["settled 1", "settled 2", "settled 3"]
        all3 = ", ".join(post_record(bid, n) for n in names)
        _, out = await run_ok(s, f"""async () => (await Promise.allSettled([{all3}])).map(
            r => r.status === 'fulfilled' ? r.value.status : [r.reason.name, r.reason.reason])""")
        assert len(approver.requests) == 3 and approver.max_active == 1, approver.messages
        declined = next(n for n in names if n in approver.messages[1])
        want = [["ApprovalDenied", "declined"] if n == declined else 201 for n in names]
        assert out == want, (out, approver.messages)
    assert titles(kinto_peer, bid) == sorted(["parallel 1", "parallel 2", "parallel 3"] + [n for n in names if n != declined])


async def test_remember_approves_one_operation_for_the_rest_of_the_execute(tmp_path, kinto_peer):
    bid = fresh_bucket(kinto_peer, "notes", "other")
    approver = Approver(lambda i, p: ("accept", {"remember": True} if i == 0 else {}))
    cfg = approval_config(tmp_path, kinto_peer)
    async with mcp_session(["--config", str(cfg)], env=env_for(kinto_peer), elicitation_callback=approver) as s:
        _, out = await run_ok(s, f"""async () => {{
            const a = await {post_record(bid, 'remembered 1')};
            const b = await kinto.request('POST /buckets/{{bucket_id}}/collections/{{collection_id}}/records',
                                          {{bucket_id: '{bid}', collection_id: 'notes', data: {{title: 'remembered 2'}}}});
            // The same operation (API, method, path template) in another collection.
            const o = await {post_record(bid, 'remembered other', cid='other')};
            const c = await {post_record(bid, 'remembered 3')};
            // Another operation (DELETE) is not covered by the remembered POST.
            const d = await kinto.request({{method: 'DELETE', path: '{records_path(bid)}/' + c.data.data.id}});
            return [a.status, b.status, o.status, c.status, d.status];
        }}""")
        assert out == [201, 201, 201, 201, 200], out
        assert len(approver.requests) == 2, f"remember: one question for the POSTs, one for the DELETE: {approver.messages}"
        assert "POST" in approver.messages[0] and "DELETE" in approver.messages[1], approver.messages
        # Remembering lasts for that execute only.
        _, out = await run_ok(s, f"async () => (await {post_record(bid, 'next execute')}).status")
        assert out == 201
        assert len(approver.requests) == 3, "a remembered approval outlived its execute"
        # Parallel calls queued behind the first question: `remember` covers them too.
        approver.requests.clear()
        approver.answer = lambda i, p: ("accept", {"remember": True})
        approver.delay = 0.3
        all3 = ", ".join(post_record(bid, f"queued {i}", cid="other") for i in (1, 2, 3))
        _, out = await run_ok(s, f"async () => (await Promise.all([{all3}])).map(r => r.status)")
        assert out == [201, 201, 201], out
        assert len(approver.requests) == 1, f"remembered, yet asked again: {approver.messages}"
    assert titles(kinto_peer, bid) == ["next execute", "remembered 1", "remembered 2"]
    assert titles(kinto_peer, bid, "other") == ["queued 1", "queued 2", "queued 3", "remembered other"]


async def test_waiting_for_a_person_does_not_spend_the_time_limit(tmp_path, kinto_peer):
    """approval_timeout_secs (default 120) is longer than timeout_secs (default 30):
    the wait for an answer cannot count against the execute's time limit."""
    bid = fresh_bucket(kinto_peer)
    approver = Approver(delay=3)
    cfg = approval_config(tmp_path, kinto_peer, timeout_secs=20, extra="")
    cfg.write_text("[limits]\ntimeout_secs = 2\n\n" + cfg.read_text())
    async with mcp_session(["--config", str(cfg)], env=env_for(kinto_peer), elicitation_callback=approver) as s:
        _, out = await run_ok(s, f"async () => (await {post_record(bid, 'slow human')}).status")
        assert out == 201, out
        # JavaScript itself still has its limit.
        r, _ = await run(s, "async () => { while (true) {} }")
        assert r.is_error and "time limit" in text_of(r), text_of(r)
    assert titles(kinto_peer, bid) == ["slow human"]


async def test_approval_of_mcp_tools(tmp_path):
    files = files_dir(tmp_path)
    cfg = write_config(tmp_path, fs_mcp(files, approve=["write_file"], deny=["fs_create_dir*"]))
    approver = Approver(lambda i, p: [("accept", {}), ("decline", None), ("accept", {"remember": True})][min(i, 2)])
    path = lambda name: json.dumps(str(files / name))  # noqa: E731
    write = lambda name: f"codemode.fs_write_file({{path: {path(name)}, content: 'approved'}})"  # noqa: E731
    async with mcp_session(["--config", str(cfg)], env={}, elicitation_callback=approver) as s:
        # Tools that need approval stay visible; denied ones (full name here) are hidden and refused.
        _, names = await run_ok(s, TOOLS, tool="search")
        assert "fs_write_file" in names and "fs_create_directory" not in names, names
        _, out = await run_ok(s, js(f"return await attempt(() => codemode.fs_create_directory({{path: {path('sub')}}}));"))
        assert refused(out)["name"] == "PolicyError" and "fs" in str(out["rule"] and out["rule"].get("from")), out
        assert not (files / "sub").exists()
        _, out = await run_ok(s, js(f"""return {{
          read: await attempt(() => codemode.fs_read_text_file({{path: {path('team.txt')}}})),
          yes: await attempt(() => {write('yes.txt')}),
          no: await attempt(() => {write('no.txt')}),
        }};"""))
        assert out["read"]["ok"] and out["yes"]["ok"], out
        assert refused(out["no"], "ApprovalDenied")["reason"] == "declined", out
        assert len(approver.requests) == 2, "a read-only tool asked for approval"
        message = approver.messages[0]
        assert "write_file" in message and str(files / "yes.txt") in message and "approved" in message, message
        # remember: one question for three writes with the same tool.
        _, out = await run_ok(s, f"""async () => {{
            for (const n of ['r1.txt', 'r2.txt', 'r3.txt'])
                await codemode.fs_write_file({{path: {json.dumps(str(files))} + '/' + n, content: 'remembered'}});
            return 'done';
        }}""")
        assert out == "done"
        assert len(approver.requests) == 3, approver.messages
    assert sorted(p.name for p in files.iterdir()) == ["r1.txt", "r2.txt", "r3.txt", "team.txt", "yes.txt"]


async def test_approval_over_streamable_http_for_a_group(tmp_path, kinto_peer):
    bid = fresh_bucket(kinto_peer)
    for rid in ("a", "b", "c"):
        seed(kinto_peer, bid, rid, f"record {rid}")
    tokens = {"ENG_TOKEN": "eng-token-0123456789abcdef", "OPS_TOKEN": "ops-token-0123456789abcdef"}
    auth = """
[[auth.tokens]]
name = "eng"
token_env = "ENG_TOKEN"
scopes = ["*"]
groups = ["engineering"]

[[auth.tokens]]
name = "ops"
token_env = "OPS_TOKEN"
scopes = ["*"]
"""
    groups = '[policy.groups.engineering]\nkinto = { approve = ["DELETE /**"] }\n'
    apis = kinto_api(kinto_peer, allow_writes=True) + groups
    delete = lambda rid: js(f"return await attempt(() => kinto.request({{method: 'DELETE', path: '{records_path(bid)}/{rid}'}}));")  # noqa: E731
    with codemode_http(tmp_path, auth=auth, apis=apis, env=env_for(kinto_peer, **tokens)) as srv:
        approver = Approver(lambda i, p: ("accept", {}) if i == 0 else ("decline", None))
        bystander = Approver()
        async with http_session(srv.url, tokens["ENG_TOKEN"], elicitation_callback=approver) as s, \
                http_session(srv.url, tokens["ENG_TOKEN"], elicitation_callback=bystander) as idle:
            await run_ok(idle, "async () => 1")
            _, out = await run_ok(s, delete("a"))
            assert out["ok"], out
            _, out = await run_ok(s, delete("b"))
            assert refused(out, "ApprovalDenied")["reason"] == "declined", out
        assert bystander.requests == [], "another session of the same principal was asked"
        assert len(approver.requests) == 2, approver.messages
        assert all("DELETE" in m and records_path(bid) in m for m in approver.messages), approver.messages
        assert titles(kinto_peer, bid) == ["record b", "record c"]
        # The group's approve rule is not anyone else's.
        other = Approver()
        async with http_session(srv.url, tokens["OPS_TOKEN"], elicitation_callback=other) as s:
            _, out = await run_ok(s, delete("c"))
            assert out["ok"], out
        assert other.requests == [], "a principal outside the group was asked"
        assert titles(kinto_peer, bid) == ["record b"]

    # A stateless server cannot ask mid-call: refused at once, nothing sent.
    apis = "[policy]\napproval_timeout_secs = 20\n\n" + kinto_api(kinto_peer, allow_writes=True, approve=["DELETE /**"])
    with codemode_http(tmp_path, server={"stateless": True}, apis=apis, env=env_for(kinto_peer)) as srv:
        approver = Approver()
        async with http_session(srv.url, elicitation_callback=approver) as s:
            started = time.monotonic()
            _, out = await run_ok(s, delete("b"))
            assert refused(out, "ApprovalDenied")["reason"] == "unavailable", out
            assert time.monotonic() - started < 20, "a stateless server waited (approval_timeout_secs = 20) for an answer that cannot come"
    assert titles(kinto_peer, bid) == ["record b"]


# --- 5. dry runs ----------------------------------------------------------------

def plan_of(result) -> list[dict]:
    """The planned writes from the `Dry run:` content block."""
    blocks = [c.text for c in result.content if getattr(c, "type", "") == "text" and c.text.startswith("Dry run:")]
    assert len(blocks) == 1, f"expected one `Dry run:` block, got {len(blocks)}:\n{text_of(result)}"
    _, _, rest = blocks[0].partition("\n")
    plan = json.loads(rest)
    assert isinstance(plan, list), plan
    return plan


def plan_in_output(text: str) -> list[dict]:
    """The plan printed by `codemode exec --dry-run` (stdout or stderr)."""
    at = text.find("Dry run:")
    assert at >= 0, f"no `Dry run:` in the output:\n{text}"
    rest = text[at:].partition("\n")[2].lstrip()
    plan, _ = json.JSONDecoder().raw_decode(rest)
    return plan


def assert_planned_response(v, what: str):
    assert isinstance(v, dict), (what, v)
    assert v.get("status") == 202 and v.get("data") is None and v.get("dryRun") is True, (what, v)
    assert {k.lower(): val for k, val in (v.get("headers") or {}).items()}.get("x-codemode-dry-run") == "true", (what, v)


def assert_entry(entry: dict, **want):
    for k, v in want.items():
        assert entry.get(k) == v, f"plan entry should have {k} = {v!r}: {entry}"


def dry_run_script(bid: str, files: Path) -> str:
    notes = records_path(bid)
    return f"""async () => {{
        const before = await kinto.request('GET {notes}');
        const w1 = await kinto.request({{method: 'POST', path: '{notes}', body: {{data: {{title: 'planned 1'}}}}}});
        const w2 = await kinto.request({{method: 'PUT', path: '{notes}/r1', body: {{data: {{title: 'planned rewrite'}}}}}});
        const w3 = await kinto.request({{method: 'DELETE', path: '{notes}/r1'}});
        let denied = null;
        try {{ await kinto.request({{method: 'PATCH', path: '{notes}/r1', body: {{data: {{title: 'denied'}}}}}}); }}
        catch (e) {{ denied = e.name; }}
        const f = await codemode.fs_write_file({{path: {json.dumps(str(files / 'planned.txt'))}, content: 'planned'}});
        const read = await codemode.fs_read_text_file({{path: {json.dumps(str(files / 'team.txt'))}}});
        const one = await kinto.request('GET {notes}/r1');
        const after = await kinto.request('GET {notes}');
        return {{before: before.data.data.map(r => r.title), after: after.data.data.map(r => r.title),
                 one: one.data.data.title, writes: [w1, w2, w3], f, denied, read: JSON.stringify(read)}};
    }}"""


def check_dry_run(result, out, bid: str, files: Path, kinto, before):
    notes = records_path(bid)
    assert out["before"] == ["seeded"] and out["after"] == ["seeded"] and out["one"] == "seeded", out
    for i, w in enumerate(out["writes"]):
        assert_planned_response(w, f"write {i + 1}")
    assert out["f"] == {"dryRun": True}, out["f"]
    assert out["denied"] == "PolicyError", "a denied write is refused in a dry run, not planned"
    assert "Ada Lovelace" in out["read"], "reads are sent in a dry run"
    plan = plan_of(result)
    assert len(plan) == 4, f"the plan should list the 4 writes, in order: {plan}"
    assert_entry(plan[0], api="kinto", method="POST", path=notes, body={"data": {"title": "planned 1"}})
    assert_entry(plan[1], api="kinto", method="PUT", path=notes + "/r1", body={"data": {"title": "planned rewrite"}})
    assert_entry(plan[2], api="kinto", method="DELETE", path=notes + "/r1", approval="required")
    assert_entry(plan[3], server="fs", tool="fs_write_file",
                 arguments={"path": str(files / "planned.txt"), "content": "planned"})
    assert "approval" not in plan[0] and "approval" not in plan[1], plan
    assert not any(e.get("method") == "PATCH" for e in plan), plan
    assert snapshot(kinto, bid) == before, "a dry run changed Kinto"
    assert not (files / "planned.txt").exists(), "a dry run wrote the file"


async def test_serve_dry_run_plans_writes_and_sends_reads(tmp_path, kinto_peer):
    bid = fresh_bucket(kinto_peer)
    seed(kinto_peer, bid, "r1", "seeded")
    files = files_dir(tmp_path)
    cfg = write_config(tmp_path, kinto_api(kinto_peer, allow_writes=True, approve=["DELETE /**"], deny=["PATCH /**"])
                       + fs_mcp(files, approve=["write_file"]))
    before = snapshot(kinto_peer, bid)
    approver = Approver()
    async with mcp_session(["--config", str(cfg), "--dry-run"], env=env_for(kinto_peer), elicitation_callback=approver) as s:
        r, out = await run_ok(s, dry_run_script(bid, files))
        check_dry_run(r, out, bid, files, kinto_peer, before)
        assert plan_of(r)[3].get("approval") == "required", plan_of(r)
        assert approver.requests == [], "approval is not asked in a dry run"
        # A script that writes nothing plans nothing.
        r, _ = await run_ok(s, f"async () => (await kinto.request('GET {records_path(bid)}')).status")
        if any(getattr(c, "text", "").startswith("Dry run:") for c in r.content):
            assert plan_of(r) == [], text_of(r)


async def test_dry_run_from_the_policy_table_and_per_api_and_per_server(tmp_path, kinto_peer):
    bid = fresh_bucket(kinto_peer)
    seed(kinto_peer, bid, "r1", "seeded")
    files = files_dir(tmp_path)
    before = snapshot(kinto_peer, bid)

    # [policy] dry_run = true: everything.
    cfg = write_config(tmp_path, "[policy]\ndry_run = true\n\n"
                       + kinto_api(kinto_peer, allow_writes=True, approve=["DELETE /**"], deny=["PATCH /**"]) + fs_mcp(files))
    async with mcp_session(["--config", str(cfg)], env=env_for(kinto_peer)) as s:
        r, out = await run_ok(s, dry_run_script(bid, files))
        check_dry_run(r, out, bid, files, kinto_peer, before)

    # dry_run on one API and one server: the others write for real.
    (tmp_path / "live").mkdir()
    cfg = write_config(tmp_path, kinto_api(kinto_peer, "rehearsed", allow_writes=True, dry_run=True)
                       + kinto_api(kinto_peer, "live", allow_writes=True)
                       + fs_mcp(files, "fsdry", dry_run=True) + fs_mcp(tmp_path / "live", "fslive"))
    async with mcp_session(["--config", str(cfg)], env=env_for(kinto_peer)) as s:
        r, out = await run_ok(s, f"""async () => {{
            const a = await {post_record(bid, 'rehearsed post', api='rehearsed')};
            const b = await {post_record(bid, 'live post', api='live')};
            const c = await codemode.fsdry_write_file({{path: {json.dumps(str(files / 'dry.txt'))}, content: 'dry'}});
            const d = await codemode.fslive_write_file({{path: {json.dumps(str(tmp_path / 'live' / 'live.txt'))}, content: 'live'}});
            return {{a, b: b.status, c, d: d === null ? null : typeof d}};
        }}""")
        assert_planned_response(out["a"], "POST through the dry-run API")
        assert out["b"] == 201, out
        assert out["c"] == {"dryRun": True}, out
        plan = plan_of(r)
        assert len(plan) == 2, plan
        assert_entry(plan[0], api="rehearsed", method="POST", path=records_path(bid), body={"data": {"title": "rehearsed post"}})
        assert_entry(plan[1], server="fsdry", tool="fsdry_write_file")
    assert titles(kinto_peer, bid) == ["live post", "seeded"]
    assert not (files / "dry.txt").exists()
    assert (tmp_path / "live" / "live.txt").read_text() == "live"


async def test_exec_dry_run_on_the_command_line(tmp_path, kinto_peer):
    bid = fresh_bucket(kinto_peer)
    seed(kinto_peer, bid, "r1", "seeded")
    cfg = write_config(tmp_path, kinto_api(kinto_peer, allow_writes=True))
    before = snapshot(kinto_peer, bid)
    code = f"""async () => {{
        const seen = (await kinto.request('GET {records_path(bid)}')).data.data.map(r => r.title);
        const w = await {post_record(bid, 'planned from exec')};
        await kinto.request({{method: 'DELETE', path: '{records_path(bid)}/r1'}});
        return {{seen, status: w.status, dryRun: w.dryRun}};
    }}"""
    env = {"PATH": os.environ.get("PATH", ""), "CODEMODE_LOG": "warn", **env_for(kinto_peer)}
    p = subprocess.run([str(BINARY), "exec", "--config", str(cfg), "--dry-run", code],
                       capture_output=True, text=True, timeout=60, env=env)
    assert p.returncode == 0, f"exit {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
    result, _ = json.JSONDecoder().raw_decode(p.stdout.lstrip())
    assert result == {"seen": ["seeded"], "status": 202, "dryRun": True}, p.stdout
    plan = plan_in_output(p.stdout + "\n" + p.stderr)
    assert [(e.get("method"), e.get("path")) for e in plan] == [
        ("POST", records_path(bid)), ("DELETE", records_path(bid) + "/r1")], plan
    assert snapshot(kinto_peer, bid) == before, "exec --dry-run changed Kinto"


async def test_exec_cannot_send_what_needs_approval(tmp_path, kinto_peer):
    """`codemode exec` has no MCP client to ask: a call needing approval is refused."""
    bid = fresh_bucket(kinto_peer)
    cfg = write_config(tmp_path, kinto_api(kinto_peer, allow_writes=True, approve=["POST /**"]))
    code = js(f"return await attempt(() => {post_record(bid, 'from exec')});")
    env = {"PATH": os.environ.get("PATH", ""), "CODEMODE_LOG": "warn", **env_for(kinto_peer)}
    p = subprocess.run([str(BINARY), "exec", "--config", str(cfg), code], capture_output=True, text=True, timeout=60, env=env)
    assert p.returncode == 0, f"exit {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
    out = json.loads(p.stdout)
    assert refused(out, "ApprovalDenied")["reason"] == "unavailable", out
    assert titles(kinto_peer, bid) == []


# --- 6. credentials of upstream MCP servers stay out -------------------------

ENV_CANARY = "envq7Z3x0-c4fe-11aa9e-from-env_from"
HDR_CANARY = "hdrK2m8w1-b33f-22bb8f-via-headers_env"
API_CANARY = "apiP5n4v2-f4ce-33cc7d-api-bearer"


def canary_forms(secret: str) -> dict[str, str]:
    """The canary raw, hex, percent-encoded, and 8-character windows of its base64 at
    every alignment (lower-cased: matching is case-insensitive)."""
    b = secret.encode()
    forms = {"raw": secret, "hex": b.hex(), "pct": "".join(f"%{c:02x}" for c in b)}
    for k in range(3):
        enc = base64.b64encode(b"x" * k + b).decode()
        start, end = -(-8 * k // 6), 8 * (k + len(b)) // 6
        inner = enc[start:end]
        for i in range(0, len(inner) - 8, 4):
            forms[f"b64-{k}-{i}"] = inner[i:i + 8]
    return {k: v.lower() for k, v in forms.items()}


def leaks(text: str) -> list[str]:
    """Which canary forms are in TEXT (case-insensitive)."""
    low = text.lower()
    found = []
    for label, secret in (("env_from", ENV_CANARY), ("headers_env", HDR_CANARY), ("api", API_CANARY)):
        found += [f"{label}/{name}" for name, form in canary_forms(secret).items() if form in low]
    return found


def start_echo_http(tmp_path: Path):
    port = free_port()
    log = open(tmp_path / "echo-http.log", "wb")
    proc = subprocess.Popen([str(PYTHON), str(ECHO_MCP), "--http", str(port)], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    import socket

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"http://127.0.0.1:{port}/mcp"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("echo MCP server did not start")


async def test_mcp_credentials_stay_out_of_results_errors_approvals_plans_and_debug_logs(tmp_path, httpbin_peer):
    assert EVERYTHING_SERVER.exists(), "run crates/portal/tests/peers-setup.sh (scripts/test does)"
    echo_proc, echo_url = start_echo_http(tmp_path)
    try:
        cfg = write_config(tmp_path, f"""
[[mcp]]
name = "everything"
command = "node"
args = ["{EVERYTHING_SERVER}"]
env_from = {{ EVERYTHING_SECRET = "GOV_ENV_CANARY" }}
approve = ["echo"]

[[mcp]]
name = "echoenv"
command = "{PYTHON}"
args = ["{ECHO_MCP}"]
env_from = {{ ECHO_SECRET = "GOV_ENV_CANARY" }}

[[mcp]]
name = "echohttp"
url = "{echo_url}"
headers_env = {{ Authorization = "GOV_HDR_CANARY", "X-Portal-Key" = "GOV_HDR_CANARY" }}
approve = ["args"]

[[api]]
name = "httpbin"
spec = "{SPECS / 'httpbin-0.10.4.spec.json'}"
base_url = "{httpbin_peer}"
allow_writes = true
auth = {{ type = "bearer", token_env = "GOV_API_CANARY" }}
approve = ["POST /anything"]
deny = ["DELETE /**"]
""")
        env = {"GOV_ENV_CANARY": ENV_CANARY, "GOV_HDR_CANARY": f"Bearer {HDR_CANARY}", "GOV_API_CANARY": API_CANARY,
               "CODEMODE_LOG": "debug"}
        seen: list[str] = []
        approver = Approver()
        errlog_path = tmp_path / "stderr.log"
        calls = [
            "async () => codemode.everything_get_env({})",
            "async () => codemode.echoenv_env({})",
            "async () => codemode.echoenv_fail({})",
            "async () => codemode.echohttp_headers({})",
            "async () => codemode.echohttp_secret({enc: 'b64'})",
            "async () => { const e = await codemode.everything_get_env({}); console.log(JSON.stringify(e)); throw new Error(JSON.stringify(e)); }",
            "async () => (await httpbin.request('GET /headers')).data",
            # Approval: the question shown to the user names the call, not the credential.
            "async () => codemode.everything_echo({message: 'hello'})",
            "async () => codemode.echohttp_args({x: 1})",
            "async () => (await httpbin.request('POST /anything', {note: 'approve me'})).data",
            # A refusal names the rule, not the credential.
            "async () => httpbin.request({method: 'DELETE', path: '/anything'})",
        ]
        with open(errlog_path, "w+") as errlog:
            async with mcp_session(["--config", str(cfg)], env=env, errlog=errlog, elicitation_callback=approver) as s:
                for code in calls:
                    r = await s.call_tool("execute", {"code": code})
                    seen.append(f"{code}\n-> {json.dumps(r.model_dump(mode='json'))}")
                r = await s.call_tool("search", {"code": "async () => codemode.tools()"})
                seen.append(json.dumps(r.model_dump(mode="json")))
            assert len(approver.requests) == 3, approver.messages
            seen += [json.dumps(p.model_dump(mode="json")) for p in approver.requests]

            # And a dry run: the plan carries the arguments and body the code gave, nothing the host adds.
            async with mcp_session(["--config", str(cfg), "--dry-run"], env=env, errlog=errlog) as s:
                r = await s.call_tool("execute", {"code": """async () => {
                    await httpbin.request('POST /anything', {note: 'planned'});
                    await httpbin.request({method: 'PUT', path: '/anything/x', body: {n: 1}, headers: {'X-Trace': 't'}});
                    await codemode.echohttp_args({y: 2});
                    return (await codemode.echoenv_env({})) !== null;
                }"""})
                seen.append(json.dumps(r.model_dump(mode="json")))
                assert not r.is_error, text_of(r)
                plan = plan_of(r)
                assert len(plan) >= 3, plan
            errlog.seek(0)
            log = errlog.read()
        for i, text in enumerate(seen):
            found = leaks(text)
            assert not found, f"a canary came back ({found}) in:\n{text[:3000]}"
        # The canaries did reach the upstreams (so the checks above mean something).
        assert "[REDACTED]" in "\n".join(seen[:5]), "\n".join(seen[:5])[:3000]
        assert "DEBUG" in log, "CODEMODE_LOG=debug should log at debug level"
        found = leaks(log)
        assert not found, f"a canary is in the debug log: {found}\n" + "\n".join(
            line for line in log.splitlines() if leaks(line))[:3000]
    finally:
        echo_proc.kill()
        echo_proc.wait()
