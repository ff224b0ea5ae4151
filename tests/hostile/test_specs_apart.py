"""Specs stay apart: Stripe and Kubernetes (both with reference cycles)
configured together over HTTP, with principals scoped to one API each, read
exactly as each does when loaded alone, and nothing of one is reachable
through the other."""

from __future__ import annotations

import asyncio

import pytest

from harness import SPECS, Codemode, http_client_session, SessionTask

STRIPE = SPECS / "stripe-2023-09-12.spec3.yaml"
K8S = SPECS / "kubernetes-1.12-2018-10.swagger.json"
TOKENS = {"CM_TOKEN_STRIPE": "tok-stripe-only-0123456789abcdef", "CM_TOKEN_K8S": "tok-k8s-only-0123456789abcdef",
          "CM_TOKEN_ALL": "tok-all-apis-0123456789abcdef"}
LIMITS = """[limits]
timeout_secs = 60
memory_mib = 512
max_output_tokens = 200000
search_workers = 1
"""
API = {"stripe": f'[[api]]\nname = "stripe"\nspec = "{STRIPE}"\nbase_url = "http://127.0.0.1:9"\n',
       "kubernetes": f'[[api]]\nname = "kubernetes"\nspec = "{K8S}"\nbase_url = "http://127.0.0.1:9"\n'}
AUTH = """
[[auth.tokens]]
name = "stripe-only"
token_env = "CM_TOKEN_STRIPE"
scopes = ["stripe:read"]

[[auth.tokens]]
name = "k8s-only"
token_env = "CM_TOKEN_K8S"
scopes = ["kubernetes:read"]

[[auth.tokens]]
name = "all"
token_env = "CM_TOKEN_ALL"
scopes = ["*"]
"""
# Deep reads of schemas on reference cycles.
DEEP = {"stripe": ["account", "charge", "customer", "invoice", "payment_intent", "subscription", "balance_transaction",
                   "api_errors", "file", "bank_account", "setup_intent", "issuing.card"],
        "kubernetes": ["io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1beta1.JSONSchemaProps",
                       "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1beta1.CustomResourceDefinition",
                       "io.k8s.api.core.v1.Pod", "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]}
FOREIGN = {"stripe": "io.k8s", "kubernetes": "payment_intent"}

SIG = """async () => {
  const S = specs.API;
  if (S === undefined) return 'NO SPEC';
  const schemas = (S.components && S.components.schemas) || {};
  let budget = 0, foreign = false;
  const sig = (v, d) => {
    if (--budget < 0) return '~';
    if (v === null || typeof v !== 'object') { if (typeof v === 'string' && v.includes('FOREIGN')) foreign = true; return JSON.stringify(v); }
    if (Array.isArray(v)) return d <= 0 ? '[' + v.length + ']' : '[' + v.slice(0, 20).map(x => sig(x, d - 1)).join(',') + ']';
    const ks = Object.keys(v).sort();
    if (ks.some(k => k.includes('FOREIGN'))) foreign = true;
    if (d <= 0) return '{' + ks.join(',') + '}';
    return '{' + ks.map(k => k + ':' + sig(v[k], d - 1)).join(',') + '}';
  };
  const hash = s => { let h = 2166136261; for (let i = 0; i < s.length; i++) { h ^= s.charCodeAt(i); h = Math.imul(h, 16777619); } return (h >>> 0).toString(36) + ':' + s.length; };
  const out = {names: Object.keys(schemas).length, shallow: {}, deep: {}};
  for (const name of Object.keys(schemas)) { budget = 3000; const s = schemas[name]; out.shallow[name] = s === undefined ? 'UNDEFINED' : hash(sig(s, 3)); }
  for (const name of DEEP) { budget = 20000; const s = schemas[name]; out.deep[name] = s === undefined ? 'UNDEFINED' : hash(sig(s, 14)); }
  out.foreign = foreign;
  out.specs = Object.keys(specs).sort();
  return out;
}"""


def sig_code(api: str) -> str:
    import json
    return SIG.replace("API", api).replace("FOREIGN", FOREIGN[api]).replace("DEEP", json.dumps(DEEP[api]))


@pytest.fixture(scope="module")
def reads(ctx):
    import json

    async def alone(api):
        cfg = ctx.tmp / f"specs-alone-{api}.toml"
        cfg.write_text(LIMITS + API[api])
        cm = Codemode(f"specs-alone-{api}", cfg, ctx.tmp)
        await cm.start()
        try:
            o = await cm.call("search", sig_code(api), 120)
        finally:
            await cm.stop()
        return o

    async def together():
        cfg = ctx.tmp / "specs-together.toml"
        cfg.write_text('[server]\ntransport = "http"\nlisten = "%LISTEN%"\n' + LIMITS + API["stripe"] + API["kubernetes"] + AUTH)
        cm = Codemode("specs-together", cfg, ctx.tmp, env=TOKENS, http=True)
        cm.sessions = []
        await cm.start(sessions=0)
        out = {}
        try:
            for who, tok in (("all", "CM_TOKEN_ALL"), ("stripe-only", "CM_TOKEN_STRIPE"), ("k8s-only", "CM_TOKEN_K8S")):
                st = SessionTask(lambda t=TOKENS[tok]: http_client_session(cm.url, t))
                await st.start()
                for api in ("stripe", "kubernetes"):
                    out[(who, api)] = await st.call("search", sig_code(api), 120)
                await st.stop()
        finally:
            await cm.stop()
        return out

    async def go():
        a, b, t = await asyncio.gather(alone("stripe"), alone("kubernetes"), together())
        return {"alone": {"stripe": a, "kubernetes": b}, "together": t}

    r = asyncio.run(go())

    def parse(o):
        if o.hung or o.is_error:
            return {"error": o.text[:500] or "hung"}
        try:
            return json.loads(o.text)
        except ValueError:
            return {"error": o.text[:500]}

    return {"alone": {k: parse(v) for k, v in r["alone"].items()}, "together": {k: parse(v) for k, v in r["together"].items()}}


def diff(alone: dict, other: dict) -> list[str]:
    if "error" in alone:
        return [f"alone, the read failed: {alone['error']}"]
    if "error" in other:
        return [f"together, the read failed: {other['error']}"]
    probs = []
    for part in ("shallow", "deep"):
        bad = [n for n in alone[part] if alone[part][n] != other[part].get(n)]
        undefined = [n for n in bad if other[part].get(n) == "UNDEFINED"]
        if bad:
            probs.append(f"{len(bad)} of {len(alone[part])} schemas read differently ({part}); {len(undefined)} as undefined; e.g. {bad[:8]}")
    if other["foreign"]:
        probs.append("the other API's schema names are reachable through this spec")
    return probs


@pytest.mark.parametrize("api", ["stripe", "kubernetes"])
def test_each_spec_reads_as_when_loaded_alone(api, reads):
    alone = reads["alone"][api]
    assert "error" not in alone and not alone["foreign"], alone.get("error")
    probs = diff(alone, reads["together"][("all", api)])
    assert not probs, "\n".join(probs)


@pytest.mark.parametrize("who,api,other", [("stripe-only", "stripe", "kubernetes"), ("k8s-only", "kubernetes", "stripe")])
def test_a_scoped_principal_reads_only_its_api_and_exactly(who, api, other, reads):
    mine = reads["together"][(who, api)]
    probs = diff(reads["alone"][api], mine)
    if "error" not in mine and mine.get("specs") != [api]:
        probs.append(f"specs lists {mine.get('specs')}, not only [{api!r}]")
    theirs = reads["together"][(who, other)]
    if "error" not in theirs:
        probs.append(f"the principal without {other}:read could read specs.{other}: {str(theirs)[:200]}")
    assert not probs, "\n".join(probs)
