"""Stateful rehearsal through the release binary: the Cloudflare blog's DNS
clean-up played end to end against seeded records, pagination over them,
consistent stateless answers, and state kept apart per principal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import SPECS, mcp_session, text_of, write_config
from test_http_helpers import codemode_http, http_session

pytestmark = pytest.mark.anyio

CLOUDFLARE = str(SPECS / "cloudflare-2024-08-06.openapi.json")
ZONE = "023e105f4ecef8ad9ca31a8372d0c353"
RECORDS = f"/zones/{ZONE}/dns_records"
BAD_IP = "203.0.113.42"


def seed_file(tmp_path: Path, records: int, bad_every: int = 0) -> Path:
    """`records` A records in the zone; every `bad_every`-th points at BAD_IP."""
    items = [
        {
            "type": "A",
            "name": f"host{i}.example.com",
            "content": BAD_IP if bad_every and i % bad_every == 0 else f"198.51.100.{i % 250}",
            "proxied": False,
            "ttl": 3600,
        }
        for i in range(records)
    ]
    p = tmp_path / "seed.json"
    p.write_text(json.dumps({RECORDS: items}))
    return p


def cloudflare_config(tmp_path: Path, seed: Path | None, extra: str = "") -> Path:
    seed_line = f'mock_seed = "{seed}"\n' if seed else ""
    return write_config(
        tmp_path,
        f"""
[[api]]
name = "cloudflare"
spec = "{CLOUDFLARE}"
mock = true
mock_state = "session"
{seed_line}allow_writes = true
auth = {{ type = "bearer", token_env = "CF_TOKEN" }}
{extra}
""",
    )


# The blog's clean-up, as a model would write it.
CLEAN_UP = f"""async () => {{
  const zone = "{ZONE}";
  const list = async () => {{
    const all = [];
    for (let page = 1; page <= 50; page++) {{
      const r = await cloudflare.request("GET /zones/{{zone_id}}/dns_records", {{zone_id: zone, per_page: 5, page}});
      all.push(...r.data.result);
      const info = r.data.result_info;
      if (info.page * info.per_page >= info.total_count) return all;
    }}
    throw new Error("pagination never ended");
  }};
  const before = await list();
  const bad = before.filter(r => r.content === "{BAD_IP}");
  const warnings = [];
  for (const r of bad) {{
    const d = await cloudflare.request("DELETE /zones/{{zone_id}}/dns_records/{{dns_record_id}}", {{zone_id: zone, dns_record_id: r.id}});
    if (d.headers["x-codemode-mock-warning"]) warnings.push(d.headers["x-codemode-mock-warning"]);
    if (d.data.result.id !== r.id) throw new Error("delete answered for " + d.data.result.id);
  }}
  const after = await list();
  let gone;
  try {{ await cloudflare.request("GET /zones/{{zone_id}}/dns_records/{{dns_record_id}}", {{zone_id: zone, dns_record_id: bad[0].id}}); }}
  catch (e) {{ gone = e.status; }}
  return {{before: before.length, bad: bad.length, after: after.length,
           left_bad: after.filter(r => r.content === "{BAD_IP}").length, gone, warnings: warnings.length, warning: warnings[0]}};
}}"""


async def test_dns_clean_up_plays_end_to_end(tmp_path):
    cfg = cloudflare_config(tmp_path, seed_file(tmp_path, 12, bad_every=4))
    async with mcp_session(["--config", str(cfg)], env={"CF_TOKEN": "rehearsal"}) as s:
        r = await s.call_tool("execute", {"code": CLEAN_UP})
        assert not r.is_error, text_of(r)
        out = json.loads(r.content[0].text)
        assert out["before"] == 12 and out["bad"] == 3 and out["after"] == 9 and out["left_bad"] == 0
        assert out["gone"] == 404
        # The spec marks DELETE's body required; rehearsal says so instead of refusing.
        assert out["warnings"] == 3 and "mock_strict" in out["warning"]
        # Create, read, update: the state answers, envelope and all.
        r = await s.call_tool("execute", {"code": f"""async () => {{
            const c = await cloudflare.request("POST /zones/{{zone_id}}/dns_records", {{zone_id: "{ZONE}", id: "0123456789abcdef0123456789abcdef", type: "A", name: "new.example.com", content: "192.0.2.1", ttl: 60}});
            const id = c.data.result.id;
            await cloudflare.request("PATCH /zones/{{zone_id}}/dns_records/{{dns_record_id}}", {{zone_id: "{ZONE}", dns_record_id: id, content: "192.0.2.2"}});
            const g = await cloudflare.request("GET /zones/{{zone_id}}/dns_records/{{dns_record_id}}", {{zone_id: "{ZONE}", dns_record_id: id}});
            const f = await cloudflare.request("GET /zones/{{zone_id}}/dns_records", {{zone_id: "{ZONE}", content: "192.0.2.2"}});
            return [c.data.success, g.data.result.name, g.data.result.content, f.data.result.length, f.data.result_info.total_count];
        }}"""})
        assert not r.is_error, text_of(r)
        assert json.loads(r.content[0].text) == [True, "new.example.com", "192.0.2.2", 1, 1]


async def test_pagination_returns_every_seeded_record_once(tmp_path):
    cfg = cloudflare_config(tmp_path, seed_file(tmp_path, 250))
    async with mcp_session(["--config", str(cfg)], env={"CF_TOKEN": "rehearsal"}) as s:
        r = await s.call_tool("execute", {"code": f"""async () => {{
            const seen = []; const infos = [];
            for (let page = 1; page <= 5; page++) {{
              const r = await cloudflare.request("GET /zones/{{zone_id}}/dns_records", {{zone_id: "{ZONE}", per_page: 100, page}});
              infos.push(r.data.result_info);
              if (r.data.result.length === 0) break;
              seen.push(...r.data.result.map(x => x.id));
            }}
            return {{n: seen.length, unique: new Set(seen).size, infos}};
        }}"""})
        assert not r.is_error, text_of(r)
        out = json.loads(r.content[0].text)
        assert out["n"] == 250 and out["unique"] == 250
        first, second, third = out["infos"][:3]
        assert (first["page"], first["per_page"], first["count"], first["total_count"]) == (1, 100, 100, 250)
        assert (second["page"], second["count"]) == (2, 100)
        assert (third["page"], third["count"], third["total_count"]) == (3, 50, 250)
        assert out["infos"][3]["count"] == 0


async def test_a_bad_seed_stops_start_up_with_where_and_how(tmp_path):
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps({RECORDS: [{"type": "A", "name": "x.example.com", "content": 42}], "/zonez": []}))
    cfg = cloudflare_config(tmp_path, seed)
    with pytest.raises(Exception):
        async with mcp_session(["--config", str(cfg)], env={"CF_TOKEN": "rehearsal"}, errlog=open(tmp_path / "err.log", "w")):
            pass
    err = (tmp_path / "err.log").read_text()
    assert "seed.json" in err and "/0" in err and "/~1zonez" in err, err


async def test_strict_rehearsal_refuses_the_bodyless_delete(tmp_path):
    cfg = cloudflare_config(tmp_path, seed_file(tmp_path, 1), extra="mock_strict = true")
    async with mcp_session(["--config", str(cfg)], env={"CF_TOKEN": "rehearsal"}) as s:
        r = await s.call_tool("execute", {"code": f"""async () => {{
            const l = await cloudflare.request("GET /zones/{{zone_id}}/dns_records", {{zone_id: "{ZONE}"}});
            return cloudflare.request("DELETE /zones/{{zone_id}}/dns_records/{{dns_record_id}}", {{zone_id: "{ZONE}", dns_record_id: l.data.result[0].id}});
        }}"""})
        assert r.is_error and "400" in text_of(r) and "body" in text_of(r)


async def test_stateless_answers_reflect_the_request():
    async with mcp_session(["--spec", CLOUDFLARE, "--mock", "--bearer-env", "CF_TOKEN"], env={"CF_TOKEN": "rehearsal"}) as s:
        r = await s.call_tool("execute", {"code": f"""async () => {{
            const l = await cloudflare.request("GET /zones/{{zone_id}}/dns_records", {{zone_id: "{ZONE}", per_page: 100}});
            const one = await cloudflare.request("GET /zones/{{zone_id}}/dns_records/{{dns_record_id}}", {{zone_id: "{ZONE}", dns_record_id: "372e67954025e0ba6aaa6d586b9e0b59"}});
            const ep = await cloudflare.request("GET /zones/{{zone_id}}/rulesets/phases/{{ruleset_phase}}/entrypoint", {{zone_id: "{ZONE}", ruleset_phase: "ddos_l7"}});
            return [l.data.result.length, l.data.result_info, one.data.result.id, ep.data.result.phase];
        }}"""})
        assert not r.is_error, text_of(r)
        n, info, record_id, phase = json.loads(r.content[0].text)
        assert info["per_page"] == 100 and info["count"] == n and info["total_count"] == n
        assert record_id == "372e67954025e0ba6aaa6d586b9e0b59" and phase == "ddos_l7"


async def test_principals_do_not_see_each_others_rehearsal(tmp_path):
    """Hostile: a principal cannot read, list or delete another's rehearsal state."""
    seed = seed_file(tmp_path, 3)
    apis = f"""
[[api]]
name = "cloudflare"
spec = "{CLOUDFLARE}"
mock = true
mock_state = "principal"
mock_seed = "{seed}"
allow_writes = true
auth = {{ type = "bearer", token_env = "CF_TOKEN" }}
"""
    tokens = """
[[auth.tokens]]
name = "alice"
token_env = "ALICE_TOKEN"
scopes = ["*"]

[[auth.tokens]]
name = "mallory"
token_env = "MALLORY_TOKEN"
scopes = ["*"]
"""
    alice, mallory = "alice-token-0123456789abcdef", "mallory-token-0123456789abcdef"
    env = {"CF_TOKEN": "rehearsal", "ALICE_TOKEN": alice, "MALLORY_TOKEN": mallory}
    create = f"""async () => (await cloudflare.request("POST /zones/{{zone_id}}/dns_records", {{zone_id: "{ZONE}", id: "fedcba9876543210fedcba9876543210", type: "A", name: "secret.example.com", content: "192.0.2.9"}})).data.result.id"""
    count = f"""async () => (await cloudflare.request("GET /zones/{{zone_id}}/dns_records", {{zone_id: "{ZONE}"}})).data.result.map(r => r.name)"""
    with codemode_http(tmp_path, auth=tokens, apis=apis, env=env) as srv:
        async with http_session(srv.url, alice) as a:
            r = await a.call_tool("execute", {"code": create})
            assert not r.is_error, text_of(r)
            secret_id = r.content[0].text  # a string result comes back as it is
            assert "secret.example.com" in json.loads((await a.call_tool("execute", {"code": count})).content[0].text)
        async with http_session(srv.url, mallory) as m:
            names = json.loads((await m.call_tool("execute", {"code": count})).content[0].text)
            assert len(names) == 3 and "secret.example.com" not in names
            for method in ["GET", "DELETE"]:
                r = await m.call_tool("execute", {"code": f"""async () => cloudflare.request("{method} /zones/{{zone_id}}/dns_records/{{dns_record_id}}", {{zone_id: "{ZONE}", dns_record_id: "{secret_id}"}})"""})
                assert r.is_error and "404" in text_of(r), text_of(r)
        # A new session of alice's (principal scope) still sees her record.
        async with http_session(srv.url, alice) as a:
            assert "secret.example.com" in json.loads((await a.call_tool("execute", {"code": count})).content[0].text)
