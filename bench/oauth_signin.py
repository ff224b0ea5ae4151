"""Added latency per nested call of an OAuth-backed credential (a signed-in
user's upstream token, cached by the host) next to a static credential, in
one run against the same httpbin: one codemode with two APIs on the same
httpbin, `static` (bearer from the environment) and `user` (`auth = {type =
"signin"}`), a real sign-in through oidc-provider, then `execute` runs of N
sequential GETs on each, alternating, timed inside the sandbox.

    .peers/venv/bin/python bench/oauth_signin.py [N] [ROUNDS]
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "integration"))
sys.path.insert(0, str(ROOT / "tests" / "peers"))

import httpx2 as httpx  # noqa: E402
import peers  # noqa: E402
import test_oauth_signin as t  # noqa: E402
from test_http_helpers import free_port, http_session, text_of  # noqa: E402


async def main(n: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as d, peers.httpbin() as httpbin:
        d = Path(d)
        port = free_port()
        with t.start_provider(d, [port], access_ttl=3600) as provider:
            spec = t.HTTPBIN_SPEC
            apis = f"""
[[api]]
name = "fixed"
spec = "{spec}"
base_url = "{httpbin}"
auth = {{ type = "bearer", token_env = "STATIC_TOKEN" }}

[[api]]
name = "user"
spec = "{spec}"
base_url = "{httpbin}"
auth = {{ type = "signin" }}
"""
            auth = t.signin_config(provider, d, access_ttl=600).replace(
                '{ name = "echo:read", description = "read the echo service" },',
                '{ name = "fixed:read" }, { name = "user:read" },')
            import test_http_helpers as h
            real = h.free_port
            h.free_port = lambda: port
            env = {**t.env(), "STATIC_TOKEN": "static-token-0123456789"}
            try:
                with h.codemode_http(d, auth=auth, apis=apis, env=env) as srv:
                    redirect_uri = "http://127.0.0.1:1/cb"
                    client_id = t.register(srv, redirect_uri)
                    verifier, challenge = t.pkce()
                    with httpx.Client(follow_redirects=False) as ua:
                        page = t.consent_page(ua, srv, t.authorize_params(client_id, redirect_uri, challenge, srv))
                        back = t.finish_signin(ua, page, ["fixed:read", "user:read"], redirect_uri)
                    tok = t.token_request(srv, grant_type="authorization_code", code=back["code"], redirect_uri=redirect_uri,
                                          client_id=client_id, code_verifier=verifier).json()["access_token"]
                    code = """async () => {{ const t0 = Date.now();
  for (let i = 0; i < {n}; i++) await {api}.request({{path: '/get'}});
  return (Date.now() - t0) / {n}; }}"""
                    per = {"fixed": [], "user": []}
                    async with http_session(srv.url, tok) as s:
                        for api in per:  # warm-up (the first upstream token lookup included)
                            await s.call_tool("execute", {"code": code.format(n=5, api=api)})
                        for _ in range(rounds):
                            for api in per:
                                r = await s.call_tool("execute", {"code": code.format(n=n, api=api)})
                                per[api].append(float(json.loads(text_of(r))))
            finally:
                h.free_port = real
    med = {k: statistics.median(v) for k, v in per.items()}
    print(json.dumps({"n": n, "rounds": rounds, "ms_per_call_median": med,
                      "ratio_user_to_fixed": round(med["user"] / med["fixed"], 3),
                      "all": per}, indent=1))


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 100, int(sys.argv[2]) if len(sys.argv) > 2 else 5))
