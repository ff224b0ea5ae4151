"""Hostile code against the host pipeline (scopes → rules → dry run →
approval): clever model code tries to get a denied or unapproved call through.

Every API request goes to a harness `CountingServer`, which records what it
actually received; every portal tool call goes to `recording_mcp.py`, which
writes each `tools/call` it gets to a file. Cases are judged by what those
received, not only by what the code saw.

The judge is stricter than the rules: a request the upstream received is a
bypass when ANY of these common ways of routing it names a denied (or
unapproved, or not allowed) operation:

- raw-segment router: split on `/`, then decode each segment (Go 1.22
  ServeMux, Express, ASP.NET Core; `%2F` stays inside a segment);
- decoding proxy: decode once or twice, `\\` as `/`, `;params` cut, dot
  segments applied (nginx `proxy_pass` with a URI, the rules' own model);
- path-parameter router: `;params` cut per raw segment, then decoded (Tomcat,
  Spring);

all with letters compared without case, and with the method a server would
apply: the real one, or the one a method override asks for
(`X-HTTP-Method-Override` & co., a `_method` query parameter, or a `_method`
field in a POST body — form (Rails' Rack::MethodOverride, Symfony, Laravel)
or JSON (Laravel, whose JSON input is its request bag)).

Lenient decoders (overlong UTF-8, NFKC/full-width folding, `%3F` ending the
path after a decode, `.json` suffix stripping, four levels of encoding) are
not part of the judge; those cases only print what the upstream received.

Servers: `main` (elicitation callback that declines unless a case says
otherwise), `noelicit` (no elicitation capability) and `dry` (`serve
--dry-run`, its own upstream and recording server).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fnmatch
import json
import re
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Callable

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import mcp.types as types  # noqa: E402
from harness import BINARY, HERE, CountingServer, base_env, leaks, text_of  # noqa: E402
from mcp import ClientSession  # noqa: E402
from mcp.client.stdio import StdioServerParameters, stdio_client  # noqa: E402

# --------------------------------------------------------------------------- the API and its rules

P = [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}]


def _op(op_id: str, params: bool = False) -> dict:
    o = {"operationId": op_id, "responses": {"200": {"description": "ok"}}}
    if params:
        o["parameters"] = P
    return o


SPEC = {
    "openapi": "3.0.3",
    "info": {"title": "policy target", "version": "1"},
    "paths": {
        "/items": {"get": _op("listItems"), "post": _op("createItem")},
        "/items/{id}": {"get": _op("getItem", True), "put": _op("putItem", True), "patch": _op("patchItem", True),
                        "delete": _op("deleteItem", True)},
        "/items/{id}/publish": {"post": _op("publishItem", True)},
        "/notes/{id}": {"put": _op("putNote", True)},
        "/notes/{id}/lock": {"put": _op("lockNote", True)},
        "/admin/users": {"get": _op("listAdminUsers"), "post": _op("createAdminUser")},
        "/redir": {"get": _op("redirGet"), "post": _op("redirPost"), "head": _op("redirHead")},
    },
}
# The second API documents almost nothing: its rules can only match concrete paths.
BARE_SPEC = {"openapi": "3.0.3", "info": {"title": "bare", "version": "1"},
             "paths": {"/items": {"get": _op("listItems")}}}

RULES = {
    # API prefix on the counting upstream -> (deny, allow, approve)
    "/api": (["DELETE /**", "* /admin/**", "POST /items/*/publish"], [], ["PUT /**"]),
    "/ro": (["POST /items/*/publish"], ["GET /items/**", "HEAD /items/**", "POST /items/**", "GET /redir"], []),
}
TOOL_RULES = {"deny": ["delete_*", "rec_move_*", "admin_*"], "approve": ["write_*"]}


def toml_list(xs) -> str:
    return json.dumps(xs)


def config(tmp: Path, name: str, up: CountingServer, rec_log: Path) -> Path:
    spec, bare = tmp / "policy-spec.json", tmp / "policy-bare.json"
    spec.write_text(json.dumps(SPEC))
    bare.write_text(json.dumps(BARE_SPEC))
    api_deny, _, api_approve = RULES["/api"]
    ro_deny, ro_allow, _ = RULES["/ro"]
    text = f"""
[limits]
timeout_secs = 10
max_requests = 200
max_concurrent_executions = 8

[policy]
approval_timeout_secs = 10

[[api]]
name = "pol"
spec = "{spec}"
base_url = "{up.url}/api"
allow_writes = true
deny = {toml_list(api_deny)}
approve = {toml_list(api_approve)}
auth = {{ type = "bearer", token_env = "CM_CNT_BEARER" }}

[[api]]
name = "bare"
spec = "{bare}"
base_url = "{up.url}/ro"
allow = {toml_list(ro_allow)}
deny = {toml_list(ro_deny)}
auth = {{ type = "header", name = "X-Api-Key", value_env = "CM_RO_KEY" }}

[[mcp]]
name = "rec"
command = "{sys.executable}"
args = ["{HERE / 'recording_mcp.py'}", "{rec_log}"]
deny = {toml_list(TOOL_RULES["deny"])}
approve = {toml_list(TOOL_RULES["approve"])}
"""
    p = tmp / f"policy-{name}.toml"
    p.write_text(text)
    return p


# --------------------------------------------------------------------------- the judge


def _pattern(text: str):
    method, path = text.split(" ", 1)
    methods = None if method == "*" else {m.upper() for m in method.split("|")}
    segs = [s.lower() for s in path.strip("/").split("/") if s]
    return methods, segs


def _seg_match(pat: list[str], path: list[str]) -> bool:
    if not pat:
        return not path
    if pat[0] == "**":
        return any(_seg_match(pat[1:], path[i:]) for i in range(len(path) + 1))
    return bool(path) and fnmatch.fnmatchcase(path[0], pat[0]) and _seg_match(pat[1:], path[1:])


def matches(text: str, method: str, segs: list[str]) -> bool:
    methods, pat = _pattern(text)
    return (methods is None or method in methods) and _seg_match(pat, segs)


def _dots(segs) -> list[str]:
    out: list[str] = []
    for s in segs:
        if s in ("", "."):
            continue
        if s == "..":
            if out:
                out.pop()
            continue
        out.append(s)
    return [s.lower() for s in out]


def _uq(s: str) -> str:
    return urllib.parse.unquote(s, errors="replace")


def routings(raw: str) -> dict[str, list[str]]:
    """How common servers route a raw path (relative to the API base, no query)."""
    once, twice = _uq(raw), _uq(_uq(raw))
    proxy = lambda d: _dots(s.split(";")[0] for s in d.replace("\\", "/").split("/"))  # noqa: E731
    return {
        "a raw-segment router (split, then decode: Go 1.22 ServeMux, Express, ASP.NET Core)":
            _dots(_uq(s) for s in raw.split("/")),
        "a decoding proxy (decoded once)": proxy(once),
        "a decoding proxy (decoded twice)": proxy(twice),
        "a path-parameter router (Tomcat/Spring: ;params cut, then decoded)":
            _dots(_uq(s.split(";")[0]) for s in raw.split("/")),
    }


def effective_methods(hit) -> dict[str, str]:
    """method -> why a server would apply it."""
    out = {hit.method.upper(): "the request method"}
    h = {k.lower(): v for k, v in hit.headers}
    for k in ("x-http-method-override", "x-method-override", "x-http-method"):
        if k in h:
            out.setdefault(h[k].strip().upper(), f"the {k} header")
    query = urllib.parse.urlsplit(hit.path).query
    for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True):
        if k.lower() == "_method":
            out.setdefault(v.strip().upper(), "a _method query parameter")
    if hit.method.upper() == "POST" and hit.body:
        ct = h.get("content-type", "").lower()
        body = hit.body.decode("utf-8", "replace")
        if "multipart" in ct:
            for v in re.findall(r'name="_method"\r\n\r\n([A-Za-z]+)', body):
                out.setdefault(v.upper(), "a _method field in the multipart form body (Rails, Symfony, Laravel)")
        elif "x-www-form-urlencoded" in ct or "text/plain" in ct:
            for k, v in urllib.parse.parse_qsl(body, keep_blank_values=True):
                if k.lower() == "_method":
                    out.setdefault(v.strip().upper(), "a _method field in the form body (Rails, Symfony, Laravel)")
        else:
            with contextlib.suppress(ValueError):
                doc = json.loads(body)
                if isinstance(doc, dict) and isinstance(doc.get("_method"), str):
                    out.setdefault(doc["_method"].strip().upper(), "a _method field in the JSON body (Laravel)")
    return out


def api_of(path: str) -> tuple[str, str] | None:
    for prefix in RULES:
        if path.startswith(prefix + "/"):
            return prefix, path[len(prefix):].split("?", 1)[0]
    return None


def violations(hit, approved: Callable[[str, list[str]], bool] = lambda m, s: False) -> list[str]:
    """Why the upstream should never have received HIT (empty: it is fine)."""
    where = api_of(hit.path)
    if where is None:
        return [f"{hit.method} {hit.path} is outside every API's base path"]
    prefix, raw = where
    deny, allow, approve = RULES[prefix]
    found: dict[tuple[str, str, str], list[str]] = {}
    for method, why in effective_methods(hit).items():
        for model, segs in routings(raw).items():
            route = f"{method} /{'/'.join(s.replace('/', '%2F') for s in segs)}"
            reasons = [f"deny {p!r} refuses it" for p in deny if matches(p, method, segs)]
            if allow and not any(matches(p, method, segs) for p in allow):
                reasons.append(f"no allow entry of {allow} permits it")
            reasons += [f"approve {p!r} needs a person's yes, and nobody accepted it"
                        for p in approve if matches(p, method, segs) and not approved(method, segs)]
            for r in reasons:
                found.setdefault((f"{route} ({why})", r, ""), []).append(model)
    every = len(routings(raw))
    return [f"the upstream received {hit.method} {hit.path[:160]!r}: "
            f"{'every router above' if len(models) == every else ', '.join(models)} routes it as {route}; {r}"
            for (route, r, _), models in found.items()]


def lenient_views(raw: str) -> dict[str, str]:
    """How lenient decoders (not part of the judge) would read a path."""
    import unicodedata

    d = _uq(_uq(raw))
    overlong = raw
    for k, v in {"%C0%AF": "/", "%E0%80%AF": "/", "%C0%AE": ".", "%E0%80%AE": ".", "%C1%9C": "\\"}.items():
        overlong = overlong.replace(k, v).replace(k.lower(), v)
    return {
        "overlong UTF-8 decoded": "/" + "/".join(_dots(_uq(overlong).replace("\\", "/").split("/"))),
        "NFKC folded": "/" + "/".join(_dots(unicodedata.normalize("NFKC", d).split("/"))),
        "re-parsed after decoding (%3F/%23 end the path)": "/" + "/".join(_dots(d.split("?")[0].split("#")[0].split("/"))),
        "four decodes": "/" + "/".join(_dots(_uq(_uq(d)).split("/"))),
    }


# --------------------------------------------------------------------------- JavaScript

PRELUDE = r"""
const MK = '%MK%';
const H = {'x-case': MK};
const out = [];
const tryit = async (label, f) => {
  try {
    const r = await f();
    out.push({label, ok: true, status: r && r.status, dryRun: !!(r && r.dryRun)});
  } catch (e) {
    out.push({label, ok: false, name: String(e && e.name),
              reason: e && e.reason !== undefined ? e.reason : null,
              message: String(e && e.message).slice(0, 400)});
  }
};
const withH = (o) => Object.assign({}, o, {headers: Object.assign({}, o.headers || {}, H)});
const rq = (o) => pol.request(withH(o));
const bq = (o) => bare.request(withH(o));
"""


def js(body: str) -> str:
    return "async () => {\n" + PRELUDE + body + "\nreturn out;\n}"


def J(v) -> str:
    return json.dumps(v)


# --------------------------------------------------------------------------- cases


@dataclasses.dataclass
class Case:
    id: str
    server: str  # main | noelicit | dry
    code: str
    expect: str  # refused | judged | sent
    check: Callable | None = None  # (rec) -> list[str]
    approver: Callable | None = None  # (index, params) -> (action, content); main only
    approved: Callable[[str, list[str]], bool] | None = None  # PUTs this case's approver accepted
    sequential: bool = False  # approval cases: alone on the server, the approver's counters are the case's
    observe: bool = False  # print what the upstream received


CASES: list[Case] = []


def add(*a, **k):
    CASES.append(Case(*a, **k))


def one(method, path, api="rq"):
    return js(f"await tryit('x', () => {api}({{method: {J(method)}, path: {J(path)}}}));")


# -- path encodings and tricks against deny ("* /admin/**", "DELETE /**", "POST /items/*/publish")
DENIED_PATHS = {
    "upper": ("GET", "/ADMIN/users"),
    "mixed-case": ("GET", "/AdMiN/Users"),
    "pct-letter": ("GET", "/%61dmin/users"),
    "pct-letter-upper": ("GET", "/%41%44MIN/users"),
    "pct2F-in-segment": ("GET", "/admin%2Fusers"),
    "pct2f-in-segment": ("GET", "/admin%2fusers"),
    "pct2F-leading": ("GET", "/%2Fadmin/users"),
    "double-pct2F": ("GET", "/admin%252Fusers"),
    "double-letter": ("GET", "/%2561dmin/users"),
    "triple-pct2F": ("GET", "/admin%25252Fusers"),
    "triple-letter": ("GET", "/%252561dmin/users"),
    "pct2E2E": ("GET", "/items/%2E%2E/admin/users"),
    "pct2e2e-lower": ("GET", "/items/%2e%2e/admin/users"),
    "double-pct2E2E": ("GET", "/items/%252E%252E/admin/users"),
    "triple-pct2E2E": ("GET", "/items/%25252E%25252E/admin/users"),
    "dotdot-pct2F": ("GET", "/items/..%2Fadmin/users"),
    "dotdot-literal": ("GET", "/items/../admin/users"),
    "pct00": ("GET", "/admin%00/users"),
    "double-pct00": ("GET", "/admin%2500/users"),
    "nul-literal": ("GET", "/admin\u0000/users"),
    "backslash": ("GET", "/admin\\users"),
    "backslash-dotdot": ("GET", "/items\\..\\admin\\users"),
    "pct5C": ("GET", "/admin%5Cusers"),
    "pct5C-leading": ("GET", "/%5Cadmin/users"),
    "jsessionid": ("GET", "/admin;jsessionid=ABC123/users"),
    "empty-param": ("GET", "/admin;/users"),
    "pct3B-param": ("GET", "/admin%3Bjsessionid=1/users"),
    "trailing-slash": ("GET", "/admin/"),
    "trailing-slash-deep": ("GET", "/admin/users/"),
    "bare-admin": ("GET", "/admin"),
    "double-slash-leading": ("GET", "//admin/users"),
    "double-slash-inner": ("GET", "/admin//users"),
    "pct2F-double-slash": ("GET", "/%2F/admin/users"),
    "dot-segment": ("GET", "/./admin/users"),
    "dot-inner": ("GET", "/admin/./users"),
    "pct2E-segment": ("GET", "/%2E/admin/users"),
    "query-in-path": ("GET", "/admin?x=1"),
    "query-dotdot": ("GET", "/admin/users?/../../items"),
    "fragment-in-path": ("GET", "/admin#x"),
    "fragment-dotdot": ("GET", "/items#/../admin/users"),
    "tab": ("GET", "/admin\t/users"),
    "crlf": ("GET", "/admin\r\n/users"),
    "space": ("GET", "/admin /users"),
    "head-admin": ("HEAD", "/admin/users"),
    "options-admin": ("OPTIONS", "/admin/users"),
    "post-admin": ("POST", "/admin/users"),
    "patch-admin": ("PATCH", "/ADMIN/users"),
    "delete-plain": ("DELETE", "/items/1"),
    "delete-upper-path": ("DELETE", "/ITEMS/1"),
    "delete-unknown-path": ("DELETE", "/no/such/thing"),
    "delete-pct2F": ("DELETE", "/items/1%2F"),
    "publish": ("POST", "/items/1/publish"),
    "publish-upper": ("POST", "/items/1/PUBLISH"),
    "publish-pct-letter": ("POST", "/items/1/%70ublish"),
    "publish-trailing-slash": ("POST", "/items/1/publish/"),
    "publish-param": ("POST", "/items/1/publish;x=1"),
    "publish-double-slash": ("POST", "/items//1/publish"),
    "publish-id-pct2F": ("POST", "/items/1%2Fpublish"),
    "publish-id-with-pct2F": ("POST", "/items/a%2Fb/publish"),
    "publish-double-encoded": ("POST", "/items/1/%2570ublish"),
}
for label, (m, p) in DENIED_PATHS.items():
    add(f"path-{label}", "main", one(m, p), "refused")

# Sent (or refused); what the upstream received must not route as a denied operation.
JUDGED_PATHS = {
    # `..;` is a dot segment to the rules (they cut `;params` first), not to a raw router.
    "dotdot-semicolon": ("GET", "/admin/..;/items/1", "rq"),
    "pct-dotdot-semicolon": ("GET", "/admin/%2e%2e;/items/1", "rq"),
    # `%2F` splits a one-segment `*` in the rules' view; a raw router keeps it inside {id}.
    "publish-id-pct2F-case": ("POST", "/items/a%2Fb/Publish", "rq"),
    "bare-publish-id-pct2F": ("POST", "/items/a%2Fb/publish", "bq"),
    "bare-publish": ("POST", "/items/1/publish", "bq"),
    "bare-allow-dotdot-semicolon": ("GET", "/items/..;/admin/users", "bq"),
    "bare-allow-escape-pct2F": ("GET", "/items%2F..%2Fadmin", "bq"),
    "empty-inner-segment": ("GET", "/items//admin/users", "rq"),
}
for label, (m, p, api) in JUDGED_PATHS.items():
    add(f"path-{label}", "main", one(m, p, api), "judged")

# Unicode look-alikes, overlong UTF-8, lenient-decoder tricks: note what arrives.
OBSERVED_PATHS = {
    "fullwidth-a": ("GET", "/\uff41dmin/users"),
    "fullwidth-ADMIN": ("GET", "/\uff21\uff24\uff2d\uff29\uff2e/users"),
    "fullwidth-slash": ("GET", "/admin\uff0fusers"),
    "fullwidth-slash-leading": ("GET", "\uff0fadmin/users"),
    "dotless-i": ("GET", "/adm\u0131n/users"),
    "long-s-publish": ("POST", "/items/1/publi\u017fh"),
    "overlong-slash-2": ("GET", "/admin%C0%AFusers"),
    "overlong-slash-3": ("GET", "/admin%E0%80%AFusers"),
    "overlong-dots": ("GET", "/items/%C0%AE%C0%AE/admin/users"),
    "quadruple-letter": ("GET", "/%25252561dmin/users"),
    "quadruple-dotdot": ("GET", "/items/%2525252E%2525252E/admin/users"),
    "pct3F-after-admin": ("GET", "/admin%3F/users"),
    "pct3F-after-publish": ("POST", "/items/1/publish%3F"),
    "pct23-after-admin": ("GET", "/admin%23/users"),
    "json-suffix": ("GET", "/admin.json"),
    "trailing-dot": ("GET", "/admin./users"),
}
for label, (m, p) in OBSERVED_PATHS.items():
    add(f"path-unicode-{label}" if ord(max(p)) > 127 else f"path-lenient-{label}", "main", one(m, p), "judged",
        observe=True)

# Path-override headers (old Symfony/Zend, IIS rewrites): not refused by request parsing; noted.
add("path-lenient-x-original-url", "main", js(
    "await tryit('x', () => rq({method: 'GET', path: '/items/1', headers: {'X-Original-URL': '/api/admin/users', 'X-Rewrite-URL': '/api/admin/users'}}));"),
    "judged", observe=True)

# -- method tricks
METHOD_REFUSED = {
    "lower-delete": "await tryit('x', () => rq({method: 'delete', path: '/items/1'}));",
    "title-delete": "await tryit('x', () => rq({method: 'Delete', path: '/items/1'}));",
    "alternating-delete": "await tryit('x', () => rq({method: 'dElEtE', path: '/items/1'}));",
    "leading-space": "await tryit('x', () => rq({method: ' DELETE', path: '/items/1'}));",
    "trailing-space": "await tryit('x', () => rq({method: 'DELETE ', path: '/items/1'}));",
    "inner-tab": "await tryit('x', () => rq({method: 'DEL\\tETE', path: '/items/1'}));",
    "trailing-tab": "await tryit('x', () => rq({method: 'DELETE\\t', path: '/items/1'}));",
    "trailing-nul": "await tryit('x', () => rq({method: 'DELETE\\u0000', path: '/items/1'}));",
    "nul-then-get": "await tryit('x', () => rq({method: 'GET\\u0000DELETE', path: '/items/1'}));",
    "crlf": "await tryit('x', () => rq({method: 'DELETE\\r\\n', path: '/items/1'}));",
    "fullwidth-d": "await tryit('x', () => rq({method: '\\uff44elete', path: '/items/1'}));",
    "cyrillic-e": "await tryit('x', () => rq({method: 'DEL\\u0415TE', path: '/items/1'}));",
    "override-header": "await tryit('x', () => rq({method: 'GET', path: '/items/1', headers: {'X-HTTP-Method-Override': 'DELETE'}}));",
    "override-header-lower": "await tryit('x', () => rq({method: 'POST', path: '/items/1', headers: {'x-http-method-override': 'delete'}}));",
    "override-x-method": "await tryit('x', () => rq({method: 'GET', path: '/items/1', headers: {'X-Method-Override': 'DELETE'}}));",
    "override-x-http-method": "await tryit('x', () => rq({method: 'POST', path: '/items/1', headers: {'X-HTTP-Method': 'DELETE'}}));",
    "override-header-route-form": "await tryit('x', () => pol.request('GET /items/{id}', {id: 1, headers: Object.assign({'X-HTTP-Method-Override': 'DELETE'}, H)}));",
    "override-query-in-path": "await tryit('x', () => rq({method: 'POST', path: '/items/1?_method=DELETE'}));",
    "override-query-object": "await tryit('x', () => rq({method: 'GET', path: '/items/1', query: {_method: 'DELETE'}}));",
    "override-query-upper": "await tryit('x', () => rq({method: 'GET', path: '/items/1', query: {_METHOD: 'delete'}}));",
    "override-query-route-form": "await tryit('x', () => pol.request('GET /items/{id}', {id: 1, _method: 'DELETE', headers: H}));",
    "method-object-tostring": "await tryit('x', () => rq({method: {toString() { return 'GET'; }, valueOf() { return 'GET'; }}, path: '/admin/users'}));",
    "method-array": "await tryit('x', () => rq({method: ['DELETE'], path: '/items/1'}));",
    "method-number": "await tryit('x', () => rq({method: 0, path: '/items/1'}));",
    "route-form-delete": "await tryit('x', () => pol.request('DELETE /items/1', {headers: H}));",
    "route-form-lower": "await tryit('x', () => pol.request('delete /items/{id}', {id: 1, headers: H}));",
    "route-form-padded": "await tryit('x', () => pol.request('  DELETE    /items/1  ', {headers: H}));",
    "route-form-tab": "await tryit('x', () => pol.request('DELETE\\t/items/1', {headers: H}));",
    "route-form-admin": "await tryit('x', () => pol.request('GET /admin/{x}', {x: 'users', headers: H}));",
    "route-form-param-dotdot": "await tryit('x', () => pol.request('GET /items/{id}/users', {id: '../admin', headers: H}));",
    "route-form-publish-param-slash": "await tryit('x', () => pol.request('POST /items/{id}/publish', {id: 'a/b', headers: H}));",
    "route-form-object-form-mixed": "await tryit('x', () => pol.request({method: 'DELETE', path: '/items/1', headers: H}, {method: 'GET'}));",
    "head-denied-path": "await tryit('x', () => rq({method: 'HEAD', path: '/admin/users'}));",
    "options-denied-path": "await tryit('x', () => rq({method: 'OPTIONS', path: '/admin'}));",
    "trace-denied-path": "await tryit('x', () => rq({method: 'TRACE', path: '/admin/users'}));",
    "trace-anywhere": "await tryit('x', () => rq({method: 'TRACE', path: '/items/1'}));",
    "connect": "await tryit('x', () => rq({method: 'CONNECT', path: '/items/1'}));",
    "propfind": "await tryit('x', () => rq({method: 'PROPFIND', path: '/items/1'}));",
    "purge": "await tryit('x', () => rq({method: 'PURGE', path: '/items/1'}));",
    "unknown-field-method2": "await tryit('x', () => pol.request({method: 'GET', path: '/items/1', httpMethod: 'DELETE', headers: H}));",
    "getter-delete-first": """let n = 0;
await tryit('x', () => pol.request({get method() { n += 1; return n === 1 ? 'DELETE' : 'GET'; }, path: '/items/1', headers: H}));
out.push({label: 'reads', n});""",
    "stringify-override-to-delete": """const orig = JSON.stringify;
JSON.stringify = (v) => orig(v).replace('"GET"', '"DELETE"');
await tryit('x', () => rq({method: 'GET', path: '/items/1'}));
JSON.stringify = orig;""",
    "stringify-returns-admin": """JSON.stringify = () => '[{"method":"GET","path":"/admin/users","headers":{"x-case":"' + MK + '"}}]';
await tryit('x', () => rq({method: 'GET', path: '/items/1'}));""",
}
for label, body in METHOD_REFUSED.items():
    add(f"method-{label}", "main", js(body), "refused",
        check=(lambda rec: [] if any(a.get("label") == "reads" and a.get("n") == 1 for a in rec.value)
               else [f"the getter was read {rec.value} times, not once"]) if label == "getter-delete-first" else None)


def _only_gets(n: int):
    """The upstream received exactly N requests, all GET /api/items/1."""
    def check(rec):
        got = [(h.method, h.path) for h in rec.hits]
        want = [("GET", "/api/items/1")] * n
        return [] if got == want else [f"the upstream received {got}, not {want}"]
    return check


def _reads_once(rec):
    reads = [a.get("n") for a in rec.value if a.get("label") == "reads"]
    probs = _only_gets(1)(rec)
    if reads != [1]:
        probs.append(f"the arguments were read {reads} times: not serialised exactly once")
    return probs


METHOD_JUDGED = {
    # Arguments are serialised once in the sandbox: a getter/Proxy/toJSON sees one read, the
    # host decides on that one value, and the same value is sent.
    "getter-get-then-delete": ("""let n = 0;
await tryit('x', () => pol.request({get method() { n += 1; return n === 1 ? 'GET' : 'DELETE'; }, path: '/items/1', headers: H}));
out.push({label: 'reads', n});""", _reads_once),
    "proxy-get-then-delete": ("""let n = 0;
const target = {method: 'GET', path: '/items/1', headers: H};
const p = new Proxy(target, {get(t, k, r) { if (k === 'method') { n += 1; return n === 1 ? 'GET' : 'DELETE'; } return Reflect.get(t, k, r); }});
await tryit('x', () => pol.request(p));
out.push({label: 'reads', n});""", _reads_once),
    "proxy-ownkeys-swap": ("""let n = 0;
const target = {method: 'GET', path: '/items/1', headers: H};
const p = new Proxy(target, {
  ownKeys(t) { n += 1; return Reflect.ownKeys(t); },
  get(t, k, r) { if (k === 'path') return n > 1 ? '/admin/users' : '/items/1'; return Reflect.get(t, k, r); }});
await tryit('x', () => pol.request(p));
out.push({label: 'reads', n});""", _reads_once),
    "tojson-get-then-delete": ("""let n = 0;
await tryit('x', () => pol.request({toJSON() { n += 1; return {method: n === 1 ? 'GET' : 'DELETE', path: '/items/1', headers: H}; }}));
out.push({label: 'reads', n});""", _reads_once),
    "array-tojson-pollution": ("""let n = 0;
Array.prototype.toJSON = function () { n += 1; return [{method: 'GET', path: '/items/1', headers: H}]; };
await tryit('x', () => rq({method: 'DELETE', path: '/items/1'}));
delete Array.prototype.toJSON;
out.push({label: 'reads', n});""", _reads_once),
    "duplicate-method-keys": ("""const orig = JSON.stringify;
JSON.stringify = () => '[{"method":"DELETE","path":"/items/1","headers":{"x-case":"' + MK + '"},"method":"GET"}]';
await tryit('x', () => rq({method: 'GET', path: '/items/1'}));
JSON.stringify = orig;""", None),
    "duplicate-path-keys": ("""const orig = JSON.stringify;
JSON.stringify = () => '[{"method":"GET","path":"/admin/users","headers":{"x-case":"' + MK + '"},"path":"/items/1"}]';
await tryit('x', () => rq({method: 'GET', path: '/items/1'}));
JSON.stringify = orig;""", None),
    "route-form-extra-method-field": ("await tryit('x', () => pol.request('GET /items/{id}', {id: 1, method: 'DELETE', headers: H}));", None),
    "options-allowed-path": ("await tryit('x', () => rq({method: 'OPTIONS', path: '/items/1'}));", None),
    "head-publish": ("await tryit('x', () => rq({method: 'HEAD', path: '/items/1/publish'}));", None),
    # A `_method` field in a POST body is a method override to Rails/Symfony/Laravel.
    "override-form-body-delete": ("await tryit('x', () => rq({method: 'POST', path: '/items/1', rawBody: '_method=DELETE', contentType: 'application/x-www-form-urlencoded'}));", None),
    "override-json-body-delete": ("await tryit('x', () => rq({method: 'POST', path: '/items/1', body: {_method: 'DELETE'}}));", None),
    "override-multipart-body-delete": ("await tryit('x', () => rq({method: 'POST', path: '/items/1', contentType: 'multipart/form-data; boundary=XyZ', rawBody: '--XyZ\\r\\nContent-Disposition: form-data; name=\"_method\"\\r\\n\\r\\nDELETE\\r\\n--XyZ--\\r\\n'}));", None),
}
for label, (body, check) in METHOD_JUDGED.items():
    add(f"method-{label}", "main", js(body), "judged", check=check)


# -- redirects: the counting upstream's /redir?to=URL&code=N answers with that redirect
def redir(method, to, code, api="rq", path="/redir"):
    q = urllib.parse.urlencode({"to": to, "code": code})
    return js(f"await tryit('x', () => {api}({{method: {J(method)}, path: {J(path + '?' + q)}, body: {J({'x': 1}) if method in ('POST', 'PATCH') else 'null'}}}));")


def _not_followed(rec):
    """Only the request to /redir itself was sent."""
    bad = [(h.method, h.path) for h in rec.hits if not h.path.split("?")[0].endswith("/redir")]
    probs = [f"a write's redirect was followed: the upstream also received {bad}"] if bad else []
    if len(rec.hits) != 1:
        probs.append(f"the upstream received {len(rec.hits)} requests, not exactly the one to /redir")
    return probs


for code in (307, 308):
    add(f"redirect-post-{code}-to-admin", "main", redir("POST", "/api/admin/users", code), "judged", check=_not_followed)
    add(f"redirect-post-{code}-to-publish", "main", redir("POST", "/api/items/1/publish", code), "judged", check=_not_followed)
    add(f"redirect-patch-{code}-to-delete-target", "main", redir("PATCH", "/api/items/1", code), "judged", check=_not_followed)
for code in (301, 302, 303):
    add(f"redirect-post-{code}-to-admin", "main", redir("POST", "/api/admin/users", code), "judged")
for code in (302, 307):
    add(f"redirect-get-{code}-to-admin", "main", redir("GET", "/api/admin/users", code), "judged")
add("redirect-get-302-to-encoded-admin", "main", redir("GET", "/api/%61dmin/users", 302), "judged")
add("redirect-head-302-to-admin", "main", redir("HEAD", "/api/admin/users", 302), "judged")
add("redirect-get-302-absolute-admin", "main",
    js("await tryit('x', () => rq({method: 'GET', path: '/redir', query: {to: 'http://%CNT%/api/admin/users', code: 302}}));"),
    "judged")
add("redirect-bare-allow-list-to-admin", "main", redir("GET", "/ro/admin/users", 302, api="bq"), "judged")
add("redirect-get-302-to-allowed", "main", redir("GET", "/api/items/1", 302), "judged",
    check=lambda rec: [] if [h.path for h in rec.hits][-1:] == ["/api/items/1"] else
    [f"control: an allowed in-API redirect should be followed: {[h.path for h in rec.hits]}"])

# -- controls: the recorders see what is allowed, so "nothing received" means something
add("control-get-sent", "main", one("GET", "/items/1"), "sent", check=_only_gets(1))
add("control-post-sent", "main", one("POST", "/items"), "sent")
add("control-bare-get-sent", "main", one("GET", "/items/1", "bq"), "sent")
add("control-tool-read-sent", "main", js("await tryit('x', () => codemode.rec_read_note({mk: MK}));"), "sent")


# -- MCP tools: deny ["delete_*", "rec_move_*", "admin_*"], approve ["write_*"] (declined)
TOOL_TRICKS = {
    "denied-plain": "codemode.rec_delete_note({mk: MK})",
    "denied-bracket": "codemode['rec_delete_note']({mk: MK})",
    "denied-prefixed": "codemode['codemode.rec_delete_note']({mk: MK})",
    "denied-upper": "codemode.rec_DELETE_NOTE({mk: MK})",
    "denied-server-upper": "codemode.REC_delete_note({mk: MK})",
    "denied-trailing-space": "codemode['rec_delete_note ']({mk: MK})",
    "denied-nul": "codemode['rec_delete_note\\u0000']({mk: MK})",
    "denied-zero-width": "codemode['rec_delete\\u200bnote']({mk: MK})",
    "denied-fullwidth": "codemode['\\uff52ec_delete_note']({mk: MK})",
    "denied-accent": "codemode['rec_delete_not\\u00e9']({mk: MK})",
    "denied-cyrillic-e": "codemode['rec_delete_note'.replace('e', '\\u0435')]({mk: MK})",
    "denied-by-server-glob": "codemode.rec_move_note({mk: MK})",
    "denied-admin": "codemode.rec_admin_reset({mk: MK})",
    "denied-case-of-tool": "codemode.rec_Delete_Everything({mk: MK})",
    "denied-via-call-apply": "codemode.rec_delete_note.call(null, {mk: MK})",
    "denied-via-reflect": "Reflect.get(codemode, 'rec_delete_note')({mk: MK})",
    "denied-two-args": "codemode.rec_delete_note({mk: MK}, {mk: MK})",
    "approve-plain": "codemode.rec_write_note({mk: MK})",
    "approve-bracket": "codemode['rec_write_note']({mk: MK})",
    "approve-prefixed": "codemode['codemode.rec_write_note']({mk: MK})",
    "approve-upper": "codemode.rec_WRITE_NOTE({mk: MK})",
    "approve-unicode": "codemode['rec_wr\\u0131te_note']({mk: MK})",
}
for label, call in TOOL_TRICKS.items():
    add(f"tool-{label}", "main", js(f"await tryit('x', () => {call});"), "refused")
add("tool-denied-hidden-from-search", "main", "async () => codemode.tools().filter(t => t.server === 'rec').map(t => t.name).sort()",
    "tools-list", observe=True)
# codemode.find ranks over everything but answers only what tools() would list.
add("tool-denied-hidden-from-find", "main",
    "async () => codemode.find('note delete move admin reset read write everything', {limit: 50}).filter(e => e.server === 'rec').map(e => e.name).sort()",
    "tools-list", observe=True)


# -- approval abuse (sequential; the approver declines unless the case says otherwise)
def put(path, extra=""):
    return f"rq({{method: 'PUT', path: {J(path)}, body: {{mk: MK{extra}}}}})"


def _asked(n=None, at_least=None):
    def check(rec):
        probs = []
        if n is not None and rec.asked != n:
            probs.append(f"{rec.asked} approval questions, not {n}")
        if at_least is not None and rec.asked < at_least:
            probs.append(f"{rec.asked} approval questions, fewer than {at_least}")
        if rec.max_active > 1:
            probs.append(f"{rec.max_active} approval questions were open at once")
        return probs
    return check


def _all_declined(rec):
    bad = [a for a in rec.value if a.get("ok") is not False or a.get("name") != "ApprovalDenied" or a.get("reason") != "declined"]
    return [f"not refused: {bad[:3]}"] if bad else []


PUT50 = "Array.from({length: 50}, (_, i) => rq({method: 'PUT', path: '/items/' + i, body: {mk: MK}}))"
add("approval-50-parallel-all", "main", js(
    f"const r = await Promise.all({PUT50}.map(p => p.then(v => ({{ok: true, status: v.status}}), e => ({{ok: false, name: e.name, reason: e.reason, message: e.message}}))));\n"
    "out.push(...r);"),
    "refused", check=lambda rec: _asked(n=50)(rec) + _all_declined(rec), sequential=True)
add("approval-50-parallel-allsettled", "main", js(
    f"const r = await Promise.allSettled({PUT50});\n"
    "out.push(...r.map(x => x.status === 'fulfilled' ? {ok: true, status: x.value.status} : {ok: false, name: x.reason.name, reason: x.reason.reason, message: x.reason.message}));"),
    "refused", check=lambda rec: _asked(n=50)(rec) + _all_declined(rec), sequential=True)
add("approval-decline-then-retry-loop", "main", js(
    "for (let i = 0; i < 20; i++) await tryit('retry ' + i, () => " + put("/items/1") + ");"),
    "refused", check=lambda rec: _asked(n=20)(rec), sequential=True)
add("approval-retry-variants", "main", js("""
await tryit('put', () => rq({method: 'PUT', path: '/items/1', body: {mk: MK}}));
await tryit('lower', () => rq({method: 'put', path: '/items/1', body: {mk: MK}}));
await tryit('title', () => rq({method: 'Put', path: '/items/1', body: {mk: MK}}));
await tryit('route', () => pol.request('put /items/{id}', {id: 1, mk: MK, headers: H}));
await tryit('trailing', () => rq({method: 'PUT', path: '/items/1/', body: {mk: MK}}));
await tryit('upper-path', () => rq({method: 'PUT', path: '/ITEMS/1', body: {mk: MK}}));
await tryit('encoded', () => rq({method: 'PUT', path: '/items/%31', body: {mk: MK}}));
await tryit('unknown-path', () => rq({method: 'PUT', path: '/elsewhere/1', body: {mk: MK}}));
await tryit('override-header', () => rq({method: 'POST', path: '/items/1', headers: {'X-HTTP-Method-Override': 'PUT'}, body: {mk: MK}}));
await tryit('override-query', () => rq({method: 'POST', path: '/items/1', query: {_method: 'PUT'}, body: {mk: MK}}));
"""), "refused", check=lambda rec: _asked(n=8)(rec), sequential=True)
add("approval-override-body-put", "main", js("""
await tryit('form', () => rq({method: 'POST', path: '/items/1', rawBody: '_method=PUT&mk=' + MK, contentType: 'application/x-www-form-urlencoded'}));
await tryit('json', () => rq({method: 'POST', path: '/items/1', body: {_method: 'PUT', mk: MK}}));
"""), "judged", check=lambda rec: _asked(n=0)(rec), sequential=True)


def _remember_answer(i, params):
    if "ACCEPT-AND-REMEMBER" in params.message:
        return "accept", {"remember": True}
    return "decline", None


def _remembered_note(method, segs):
    return method == "PUT" and len(segs) == 2 and segs[0] == "notes"


def _remember_check(rec):
    probs = _asked(n=5)(rec)
    by = {a["label"]: a for a in rec.value}
    for label in ("first", "same-template"):
        if not by[label].get("ok"):
            probs.append(f"control: {label} should have been sent: {by[label]}")
    for label in ("other-template", "lock", "lock-encoded-slash", "item-with-note-prefix-body"):
        if by[label].get("ok"):
            probs.append(f"{label}: a PUT to another operation was sent without being asked: {by[label]}")
    return probs


add("approval-remember-one-template-only", "main", js("""
await tryit('first', () => rq({method: 'PUT', path: '/notes/n1', body: {mk: MK, note: 'ACCEPT-AND-REMEMBER'}}));
await tryit('same-template', () => rq({method: 'PUT', path: '/notes/n2', body: {mk: MK}}));
await tryit('other-template', () => rq({method: 'PUT', path: '/items/1', body: {mk: MK}}));
await tryit('lock', () => rq({method: 'PUT', path: '/notes/n1/lock', body: {mk: MK}}));
// The router names this /notes/{id} (id "n1/lock"); decoded, it is /notes/n1/lock.
await tryit('lock-encoded-slash', () => rq({method: 'PUT', path: '/notes/n1%2Flock', body: {mk: MK}}));
await tryit('item-with-note-prefix-body', () => rq({method: 'PUT', path: '/items/2', body: {mk: MK, note: '/notes/n1'}}));
"""), "judged", check=_remember_check, approver=_remember_answer, approved=_remembered_note, sequential=True)
add("approval-prototype-pollution", "main", js("""
Object.prototype.remember = true;
Object.prototype.action = 'accept';
Object.prototype.approved = true;
Object.prototype.needs_approval = null;
Object.prototype.reason = 'approved';
Array.prototype.push2 = Array.prototype.push;
const realPromise = Promise;
globalThis.Promise = class extends realPromise { constructor(f) { super((res, rej) => f(res, (e) => res({status: 200, fake: true}))); } };
await tryit('polluted', () => rq({method: 'PUT', path: '/items/1', body: {mk: MK, remember: true, action: 'accept'}}));
globalThis.Promise = realPromise;
const origStringify = JSON.stringify;
JSON.stringify = (v) => origStringify(v).replace('"PUT"', '"PUT","remember":true,"approved":true');
await tryit('stringify', () => rq({method: 'PUT', path: '/items/1', body: {mk: MK}}));
JSON.stringify = origStringify;
await tryit('again', () => rq({method: 'PUT', path: '/items/1', body: {mk: MK}}));
delete Object.prototype.remember; delete Object.prototype.action; delete Object.prototype.approved;
delete Object.prototype.needs_approval; delete Object.prototype.reason;
"""), "judged", check=lambda rec: _asked(at_least=2)(rec) + (
    [] if not rec.hits else [f"a PUT reached the upstream: {[(h.method, h.path) for h in rec.hits]}"]), sequential=True)
add("approval-tool-declined-then-retried", "main", js(
    "for (let i = 0; i < 5; i++) await tryit('t' + i, () => codemode.rec_write_note({mk: MK}));"),
    "refused", check=lambda rec: _asked(n=5)(rec), sequential=True)

# -- no elicitation capability: everything that needs approval is refused as "unavailable"
NOELICIT = {
    "put": put("/items/1"),
    "put-lower": "rq({method: 'put', path: '/items/1', body: {mk: MK}})",
    "put-route-form": "pol.request('PUT /notes/{id}', {id: 'n1', mk: MK, headers: H})",
    "put-encoded": "rq({method: 'PUT', path: '/%69tems/1', body: {mk: MK}})",
    "put-unknown-path": "rq({method: 'PUT', path: '/x/y/z', body: {mk: MK}})",
    "tool-write": "codemode.rec_write_note({mk: MK})",
    "tool-write-prefixed": "codemode['codemode.rec_write_note']({mk: MK})",
}


def _unavailable(rec):
    bad = [a for a in rec.value if a.get("name") != "ApprovalDenied" or a.get("reason") != "unavailable"]
    return [f"expected ApprovalDenied with reason 'unavailable': {bad[:3]}"] if bad else []


for label, call in NOELICIT.items():
    add(f"noelicit-{label}", "noelicit", js(f"await tryit('x', () => {call});"), "refused", check=_unavailable)
add("noelicit-parallel", "noelicit", js(
    "const r = await Promise.allSettled(Array.from({length: 20}, (_, i) => rq({method: 'PUT', path: '/items/' + i, body: {mk: MK}})));\n"
    "out.push(...r.map(x => x.status === 'fulfilled' ? {ok: true} : {ok: false, name: x.reason.name, reason: x.reason.reason, message: x.reason.message}));"),
    "refused", check=_unavailable)

# -- dry run: whatever the code does, only GET/HEAD reach the upstream, no write tool is called
DRY = {
    "methods": """
for (const m of ['POST', 'post', 'Put', 'PATCH', 'patch', 'OPTIONS', 'DELETE', 'delete'])
  await tryit(m, () => rq({method: m, path: '/items/1', body: m.toUpperCase() === 'DELETE' || m.toUpperCase() === 'OPTIONS' ? null : {mk: MK}}));
await tryit('route-post', () => pol.request('POST /items', {mk: MK, headers: H}));
await tryit('route-put', () => pol.request('put /notes/{id}', {id: 1, mk: MK, headers: H}));
await tryit('route-patch', () => pol.request('PATCH /items/{id}', {id: 1, mk: MK, headers: H}));
await tryit('bare-post', () => bq({method: 'POST', path: '/items', body: {mk: MK}}));
""",
    "overrides": """
await tryit('hdr', () => rq({method: 'GET', path: '/items/1', headers: {'X-HTTP-Method-Override': 'DELETE'}}));
await tryit('hdr-put', () => rq({method: 'HEAD', path: '/items/1', headers: {'X-Method-Override': 'PUT'}}));
await tryit('query', () => rq({method: 'GET', path: '/items/1?_method=POST'}));
await tryit('form', () => rq({method: 'POST', path: '/items/1', rawBody: '_method=DELETE', contentType: 'application/x-www-form-urlencoded'}));
await tryit('json', () => rq({method: 'POST', path: '/items/1', body: {_method: 'PUT'}}));
await tryit('getter', () => pol.request({get method() { return 'POST'; }, path: '/items', headers: H}));
await tryit('proxy', () => pol.request(new Proxy({method: 'GET', path: '/items', headers: H}, {get: (t, k) => k === 'method' ? 'PATCH' : t[k]})));
const orig = JSON.stringify;
JSON.stringify = () => '[{"method":"POST","path":"/items","headers":{"x-case":"' + MK + '"}}]';
await tryit('stringify', () => rq({method: 'GET', path: '/items'}));
JSON.stringify = orig;
""",
    "paths": "\n".join(f"await tryit({J(p)}, () => rq({{method: 'POST', path: {J(p)}, body: {{mk: MK}}}}));" for p in [
        "/items", "/ITEMS", "/%69tems", "/items%2F1", "/items;x=1", "/items/", "/items//1", "/items/1/publish",
        "/items/a%2Fb/Publish", "/admin/..;/items", "/items/%C0%AF", "/\uff49tems", "/items%3F"]),
    "redirects": "\n".join(f"await tryit('{m} {c}', () => rq({{method: '{m}', path: '/redir', query: {{to: '/api/items/1', code: {c}}}, body: {{mk: MK}}}}));"
                           for m in ("POST", "PUT", "PATCH") for c in (301, 302, 303, 307, 308)),
    "parallel": """
const r = await Promise.allSettled(Array.from({length: 30}, (_, i) => rq({method: ['POST', 'PUT', 'PATCH'][i % 3], path: '/items/' + i, body: {mk: MK}})));
out.push(...r.map(x => x.status === 'fulfilled' ? {ok: true, dryRun: !!x.value.dryRun} : {ok: false, name: x.reason.name}));
""",
    "tools": """
for (const t of ['rec_write_note', 'rec_delete_note', 'rec_move_note', 'rec_Delete_Everything', 'rec_admin_reset'])
  await tryit(t, () => codemode[t]({mk: MK}));
await tryit('prefixed', () => codemode['codemode.rec_write_note']({mk: MK}));
await tryit('read', () => codemode.rec_read_note({mk: MK}));
""",
}


def _dry_check(rec):
    probs = []
    attempts = [a for a in rec.value if isinstance(a, dict) and "ok" in a]
    sent = [a for a in attempts if a.get("ok") and not a.get("dryRun") and a.get("label") != "read"]
    if sent:
        probs.append(f"dry run: writes answered as if sent, not planned: {sent[:3]}")
    if any(a.get("dryRun") for a in attempts) and "Dry run:" not in rec.text:
        probs.append("dry run: the result has no plan block")
    for h in rec.hits:
        ms = effective_methods(h)
        writes = {m: why for m, why in ms.items() if m not in ("GET", "HEAD")}
        if writes:
            probs.append(f"dry run: the upstream received {h.method} {h.path} (as {writes})")
    return probs


for label, body in DRY.items():
    add(f"dryrun-{label}", "dry", js(body), "judged", check=_dry_check)


# --------------------------------------------------------------------------- running


class Approver:
    """The elicitation callback: answers by `answer(index, params)` (decline by
    default), recording every question and how many were open at once."""

    def __init__(self):
        self.answer = lambda i, p: ("decline", None)
        self.requests: list = []
        self.active = 0
        self.max_active = 0

    async def __call__(self, context, params):
        self.requests.append(params)
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            await asyncio.sleep(0.002)
            action, content = self.answer(len(self.requests) - 1, params)
            return types.ElicitResult(action=action, content=content)
        finally:
            self.active -= 1


class Server:
    """One `codemode serve` over stdio with the Python SDK session in its own task."""

    def __init__(self, name: str, cfg: Path, tmp: Path, args=(), approver: Approver | None = None):
        self.name, self.cfg, self.tmp, self.args, self.approver = name, cfg, tmp, list(args), approver
        self.session: ClientSession | None = None
        self._ready, self._stop = asyncio.Event(), asyncio.Event()
        self._error: BaseException | None = None
        self.log = tmp / f"policy-{name}.stderr.log"

    async def _run(self):
        params = StdioServerParameters(command=str(BINARY), args=["serve", "--config", str(self.cfg), *self.args],
                                       env=base_env())
        kw = {"elicitation_callback": self.approver} if self.approver else {}
        try:
            with open(self.log, "w") as errlog:
                async with stdio_client(params, errlog=errlog) as (r, w):
                    async with ClientSession(r, w, **kw) as s:
                        await s.initialize()
                        self.session = s
                        self._ready.set()
                        await self._stop.wait()
        except BaseException as e:  # noqa: BLE001
            self._error = e
            self._ready.set()

    async def start(self):
        assert BINARY.exists(), f"build the release binary first: {BINARY}"
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self._ready.wait(), 60)
        if self._error:
            raise RuntimeError(f"{self.name}: {self._error!r}\n{self.log.read_text()[-2000:]}")
        # warm up: the portal server is listed
        for _ in range(100):
            r = await self.session.call_tool("search", {"code": "async () => codemode.tools().length"})
            if text_of(r).strip() not in ("", "0"):
                break
            await asyncio.sleep(0.05)

    async def stop(self):
        self._stop.set()
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(self._task, 15)


@dataclasses.dataclass
class Rec:
    case: Case
    marker: str
    is_error: bool = False
    text: str = ""
    elapsed: float = 0.0
    failure: str | None = None  # hung / rpc error / broken session
    value: object = None
    hits: list = dataclasses.field(default_factory=list)
    tool_calls: list = dataclasses.field(default_factory=list)
    asked: int = 0
    max_active: int = 0
    questions: list = dataclasses.field(default_factory=list)


def read_calls(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


STATE: dict = {}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("policy")
    up, up_dry = CountingServer(), CountingServer()
    logs = {"main": tmp / "rec-main.jsonl", "noelicit": tmp / "rec-noelicit.jsonl", "dry": tmp / "rec-dry.jsonl"}
    approvers = {"main": Approver(), "dry": Approver()}
    servers = {
        "main": Server("main", config(tmp, "main", up, logs["main"]), tmp, approver=approvers["main"]),
        "noelicit": Server("noelicit", config(tmp, "noelicit", up, logs["noelicit"]), tmp),
        "dry": Server("dry", config(tmp, "dry", up_dry, logs["dry"]), tmp, args=["--dry-run"], approver=approvers["dry"]),
    }
    ups = {"main": up, "noelicit": up, "dry": up_dry}
    results: dict[str, Rec] = {}

    async def run_one(i: int, case: Case):
        srv = servers[case.server]
        marker = f"mkpol{i:04d}z"
        rec = Rec(case, marker)
        code = case.code.replace("%MK%", marker).replace("%CNT%", up.host)
        ap = approvers.get(case.server)
        if ap and case.sequential:
            ap.answer = case.approver or (lambda i, p: ("decline", None))
            n0, ap.max_active = len(ap.requests), 0
        t0 = time.monotonic()
        try:
            r = await asyncio.wait_for(srv.session.call_tool("execute" if case.expect != "tools-list" else "search",
                                                             {"code": code}), 30)
            rec.is_error, rec.text = bool(r.is_error), text_of(r)
        except asyncio.TimeoutError:
            rec.failure = "no answer within 30 s"
        except Exception as e:  # noqa: BLE001
            rec.failure = f"{type(e).__name__}: {e}"
        rec.elapsed = time.monotonic() - t0
        if ap and case.sequential:
            rec.questions = [p.message for p in ap.requests[n0:]]
            rec.asked, rec.max_active = len(rec.questions), ap.max_active
            ap.answer = lambda i, p: ("decline", None)
        with contextlib.suppress(ValueError):
            # a dry run appends its plan after the value
            rec.value = json.JSONDecoder().raw_decode(rec.text.strip())[0]
        await asyncio.sleep(0.05)
        rec.hits = ups[case.server].marked(marker)
        rec.tool_calls = [c for c in read_calls(logs[case.server]) if marker in json.dumps(c)]
        results[case.id] = rec

    async def go():
        await asyncio.gather(*(s.start() for s in servers.values()))
        try:
            sem = asyncio.Semaphore(6)

            async def limited(i, c):
                async with sem:
                    await run_one(i, c)

            await asyncio.gather(*(limited(i, c) for i, c in enumerate(CASES) if not c.sequential))
            for i, c in enumerate(CASES):
                if c.sequential:
                    await run_one(i, c)
        finally:
            for s in servers.values():
                await s.stop()

    asyncio.run(go())
    with open(tmp / "policy-summary.jsonl", "w") as f:
        for cid, r in results.items():
            f.write(json.dumps({"id": cid, "value": r.value, "hits": [(h.method, h.path) for h in r.hits],
                                "tools": r.tool_calls, "asked": r.asked}) + "\n")
    STATE.update(up=up, up_dry=up_dry, logs=logs, approvers=approvers, servers=servers, results=results)
    yield results
    up.close()
    up_dry.close()


def report(rec: Rec) -> str:
    lines = [f"case {rec.case.id} on {rec.case.server}: error={rec.is_error} {rec.elapsed:.2f}s failure={rec.failure}"]
    lines.append("  result: " + rec.text[:1500].replace("\n", "\n          "))
    lines.append(f"  upstream received: {[(h.method, h.path, h.body[:80]) for h in rec.hits]}")
    if rec.tool_calls:
        lines.append(f"  MCP server received: {rec.tool_calls}")
    if rec.questions:
        lines.append(f"  {rec.asked} question(s), e.g. {rec.questions[0][:200]!r}")
    lines.append("  code: " + rec.case.code.replace(PRELUDE, "")[:900].replace("\n", "\n        "))
    return "\n".join(lines)


def judge(rec: Rec) -> list[str]:
    case = rec.case
    probs: list[str] = []
    if rec.failure:
        return [f"not a clean tool result: {rec.failure}"]
    if rec.is_error:
        probs.append(f"the tool result is an error (the code catches every refusal): {rec.text[:300]!r}")
    if case.expect == "tools-list":
        names = rec.value if isinstance(rec.value, list) else []
        for hidden in ("rec_delete_note", "rec_move_note", "rec_admin_reset"):
            if hidden in names:
                probs.append(f"codemode.tools() lists the denied {hidden}: {names}")
        if "rec_read_note" not in names or "rec_write_note" not in names:
            probs.append(f"codemode.tools() should list rec_read_note and rec_write_note: {names}")
        # The portal hides by its own (case-sensitive) globs; the pipeline refuses
        # `Delete_Everything` by `delete_*` without case (tool-denied-case-of-tool).
        print(f"\n[{case.id}] codemode.tools() lists {names}")
        return probs
    if not isinstance(rec.value, list):
        return probs + [f"the code did not return its list of attempts: {rec.text[:300]!r}"]
    attempts = [a for a in rec.value if isinstance(a, dict) and ("ok" in a)]
    if case.expect == "refused":
        went = [a for a in attempts if a.get("ok")]
        if went:
            probs.append(f"expected every attempt refused; these went through: {went[:3]}")
        if rec.hits:
            probs.append(f"refused, but the upstream received {[(h.method, h.path) for h in rec.hits]}")
        if rec.tool_calls:
            probs.append(f"refused, but the MCP server received {rec.tool_calls}")
        for a in attempts:
            if not a.get("ok") and not a.get("message"):
                probs.append(f"a refusal without a message: {a}")
    if case.expect == "sent":
        if not attempts or not all(a.get("ok") for a in attempts):
            probs.append(f"control: the allowed call should have gone through: {attempts}")
        if not rec.hits and not rec.tool_calls:
            probs.append("control: the recorders saw nothing of an allowed call")
    approved = case.approved or (lambda m, s: False)
    if case.server != "dry":
        for h in rec.hits:
            probs += violations(h, approved)
        for c in rec.tool_calls:
            if c.get("name") != "read_note":
                probs.append(f"the MCP server received a call of {c.get('name')!r}: {c}")
    else:
        for c in rec.tool_calls:
            if c.get("name") != "read_note":
                probs.append(f"dry run: the MCP server received a call of the write tool {c.get('name')!r}")
    if leaks(rec.text):
        probs.append(f"a canary credential in the result: {leaks(rec.text)}")
    if case.check:
        probs += case.check(rec)
    if case.observe:
        where = api_of(rec.hits[0].path) if rec.hits else None
        seen = [(h.method, h.path) for h in rec.hits]
        extra = lenient_views(where[1]) if where else {}
        print(f"\n[{case.id}] the upstream received {seen or 'nothing'}"
              + "".join(f"\n    {k}: {v}" for k, v in extra.items()))
    return probs


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_policy(case, world):
    rec = world[case.id]
    probs = judge(rec)
    assert not probs, "\n".join(f"PROBLEM: {p}" for p in probs) + "\n" + report(rec)


def test_case_ids_are_unique():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})


def test_every_request_the_upstream_received(world):
    """Over everything the main upstream received (marked or not): nothing
    routes as a denied operation, and no PUT went out without an accepted question."""
    approved_markers = {r.marker: r.case.approved for r in world.values() if r.case.approved}
    bad = []
    for h in STATE["up"].hits:
        fn = next((f for m, f in approved_markers.items() if m in h.text()), None) or (lambda m, s: False)
        bad += violations(h, fn)
    assert not bad, f"{len(bad)} problem(s):\n" + "\n".join(dict.fromkeys(bad))


def test_dry_run_upstream_received_only_reads(world):
    writes = [(h.method, h.path, effective_methods(h)) for h in STATE["up_dry"].hits
              if set(effective_methods(h)) - {"GET", "HEAD"}]
    assert not writes, f"the dry-run upstream received writes: {writes}"
    calls = [c for c in read_calls(STATE["logs"]["dry"]) if c.get("name") != "read_note"]
    assert not calls, f"the dry-run MCP server received write tools: {calls}"
    assert not STATE["approvers"]["dry"].requests, \
        f"a dry run asked about planned writes: {[p.message[:120] for p in STATE['approvers']['dry'].requests]}"


def test_no_elicitation_server_sent_nothing(world):
    noel = [r for r in world.values() if r.case.server == "noelicit"]
    hits = [(h.method, h.path) for r in noel for h in r.hits]
    calls = read_calls(STATE["logs"]["noelicit"])
    assert not hits and not [c for c in calls if c.get("name") != "read_note"], (hits, calls)


def test_no_canary_in_the_server_logs(world):
    for s in STATE["servers"].values():
        text = s.log.read_text(errors="replace") if s.log.exists() else ""
        assert not leaks(text), (s.name, leaks(text))
