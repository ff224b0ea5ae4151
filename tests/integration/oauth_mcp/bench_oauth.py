"""Added latency of an OAuth-backed upstream MCP server next to a static
bearer header, against the same OAuth-protected server (tickets_mcp.py) in
one run: the median and mean of N sequential `codemode.tickets_list_tickets`
calls timed inside one `execute`, two rounds each.

    N=40 .peers/venv/bin/python tests/integration/oauth_mcp/bench_oauth.py

The provider is the shared one (tests/peers/oidc/server.mjs, .peers/oidc).
"""
import asyncio, json, os, sys, tempfile
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import test_oauth_mcp as t
from conftest import mcp_session, text_of
t.TTL = 3600
N = int(os.environ.get("N", "40"))
CODE = f"""async () => {{ const ms = []; for (let i = 0; i < {N}; i++) {{ const t0 = Date.now(); await codemode.tickets_list_tickets({{}}); ms.push(Date.now() - t0); }} ms.sort((a, b) => a - b); return {{median: ms[ms.length >> 1], mean: ms.reduce((a, b) => a + b, 0) / ms.length}}; }}"""
async def run(cfg, env):
    async with mcp_session(["--config", str(cfg)], env=env) as s:
        await s.call_tool("execute", {"code": "async () => await codemode.tickets_list_tickets({})"})
        r = await s.call_tool("execute", {"code": CODE})
        return json.loads(text_of(r))
async def main():
    tmp = Path(tempfile.mkdtemp(prefix="codemode-oauth-bench-"))
    with t.peers(tmp) as p:
        tok = requests.post(p["issuer"] + "/token", data={"grant_type": "client_credentials", "client_id": "m2m", "client_secret": "m2m-secret-0123456789abcdef", "scope": "tickets:read", "resource": p["url"]}).json()["access_token"]
        static = t.write_config(tmp, f'[[mcp]]\nname = "tickets"\nurl = "{p["url"]}"\nheaders_env = {{ Authorization = "TICKETS_AUTH" }}\n')
        env = t.env_for(tmp, TICKETS_AUTH=f"Bearer {tok}", M2M_SECRET="m2m-secret-0123456789abcdef")
        res = {}
        code = t.write_config(tmp, f'[[mcp]]\nname = "tickets"\nurl = "{p["url"]}"\nauth = {{ type = "oauth" }}\n')
        rc, out, err = t.run_login(code, env)
        assert rc == 0, (out, err)
        for round in range(2):
            code = t.write_config(tmp, f'[[mcp]]\nname = "tickets"\nurl = "{p["url"]}"\nauth = {{ type = "oauth" }}\n')
            res.setdefault("oauth_code_file", []).append(await run(code, env))
            res.setdefault("static", []).append(await run(static, env))
            oauth = t.write_config(tmp, f'[[mcp]]\nname = "tickets"\nurl = "{p["url"]}"\nauth = {{ type = "oauth", grant = "client_credentials", client_id = "m2m", client_secret_env = "M2M_SECRET", scopes = ["tickets:read"] }}\n')
            res.setdefault("oauth", []).append(await run(oauth, env))
        print(json.dumps(res))
asyncio.run(main())
