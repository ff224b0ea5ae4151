"""OAuth sign-in with downscoping, end to end: codemode is the authorization
server of its MCP clients in front of a real OpenID provider (npm
`oidc-provider`, tests/peers/oidc) on loopback. A browser-free user agent
(httpx, following redirects by hand and posting the provider's login and
consent forms and codemode's consent form) drives discovery, registration
(RFC 7591 and a Client ID Metadata Document), consent with a narrowed scope
set, the token exchange, MCP calls with the official Python SDK (one within
the granted scopes, one refused outside them), the upstream token's refresh,
codemode's refresh and revocation; then the attacks: PKCE missing or wrong,
a redirect_uri that was not registered, a token for another audience, an
expired token, a replayed code, a reused refresh token. Neither the
upstream tokens nor codemode's own reach results, logs or the audit store."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urljoin, urlparse

import httpx2 as httpx  # the HTTP client the MCP SDK 2.x ships with
import pytest

from conftest import ROOT, SPECS
from test_http_helpers import codemode_http, free_port, http_session, text_of

pytestmark = pytest.mark.anyio

OIDC_DIR = ROOT / ".peers" / "oidc"
HTTPBIN_SPEC = SPECS / "httpbin-0.10.4.spec.json"
SERVER_MJS = ROOT / "tests" / "peers" / "oidc" / "server.mjs"
CLIENT_SECRET = "codemode-upstream-secret-" + secrets.token_hex(8)
# Short upstream access tokens, so the test sees codemode refresh them.
UPSTREAM_ACCESS_TTL = 3

IDP_SPEC = {
    "openapi": "3.0.3",
    "info": {"title": "The provider's userinfo", "version": "1"},
    "paths": {
        "/me": {
            "get": {"operationId": "me", "responses": {"200": {"description": "the user's claims"}}},
            "post": {"operationId": "mePost", "responses": {"200": {"description": "the same, by POST"}}},
        }
    },
}


class Provider:
    def __init__(self, proc, issuer, log_path):
        self.proc, self.issuer, self.log_path = proc, issuer, log_path

    def events(self) -> list[dict]:
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    out.append(json.loads(line))
        return out

    def introspect(self, token: str) -> dict:
        """RFC 7662 at the provider, as codemode's client: is `token` live?"""
        r = httpx.post(self.issuer + "/token/introspection", data={"token": token}, auth=("codemode", CLIENT_SECRET))
        assert r.status_code == 200, r.text
        return r.json()

    def tokens(self) -> set[str]:
        """Every upstream token the provider issued (access and refresh)."""
        return {e["value"] for e in self.events() if e.get("value") and e["event"] != "access_token.destroyed"}


def upstream_tokens_of(provider: Provider, account: str) -> list[str]:
    """The newest upstream access and refresh token the provider issued to
    codemode's client for `account`."""
    newest = {}
    for e in provider.events():
        if e.get("client") == "codemode" and e.get("account") == account and e.get("value"):
            if e["event"] in ("access_token.saved", "refresh_token.saved"):
                newest[e["event"]] = e["value"]
    return list(newest.values())


@pytest.fixture(scope="module")
def ports():
    return {"a": free_port(), "b": free_port()}


@contextlib.contextmanager
def start_provider(d: Path, callback_ports, access_ttl: int = UPSTREAM_ACCESS_TTL):
    """oidc-provider on a free loopback port, knowing codemode's callbacks on `callback_ports`."""
    if not (OIDC_DIR / "node_modules" / "oidc-provider").exists():
        subprocess.run([str(ROOT / "tests" / "peers" / "oidc" / "install.sh")], check=True)
    node = shutil.which("node")
    assert node, "node is needed for the OpenID provider"
    port = free_port()
    cfg = {
        "clients": [{
            "client_id": "codemode",
            "client_secret": CLIENT_SECRET,
            "redirect_uris": [f"http://127.0.0.1:{p}/oauth/callback" for p in callback_ports],
            "grant_types": ["authorization_code", "refresh_token"],
        }, {
            # A machine client: its tokens are for the provider, not codemode.
            "client_id": "robot", "client_secret": "robot-secret-robot-secret",
            "grant_types": ["client_credentials"], "redirect_uris": [], "response_types": [],
        }],
        "scopes": ["openid", "profile", "email", "offline_access"],
        "claims": {"profile": ["name"], "email": ["email"]},
        "ttl": {"AccessToken": access_ttl, "ClientCredentials": 60, "IdToken": 60, "RefreshToken": 3600},
        "accounts": {"alice": {"name": "Alice Example", "email": "alice@example.com"}},
        "features": {"clientCredentials": {"enabled": True}, "introspection": {"enabled": True}},
    }
    (d / "provider.json").write_text(json.dumps(cfg))
    log_path = d / "provider.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([node, str(SERVER_MJS), "--port", str(port), "--config", str(d / "provider.json")],
                                stdout=subprocess.PIPE, stderr=log, text=True,
                                env={**os.environ, "OIDC_LOG_TOKENS": "1"})
    try:
        line = proc.stdout.readline()
        assert line.startswith("listening "), f"the provider did not start: {line!r}\n{log_path.read_text()}"
        yield Provider(proc, line.split()[1], log_path)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def provider(tmp_path_factory, ports):
    with start_provider(tmp_path_factory.mktemp("oidc"), ports.values()) as p:
        yield p


def signin_config(provider: Provider, tmp_path: Path, *, access_ttl: int, cimd: bool = False) -> str:
    return f"""
[audit]
path = "{tmp_path / 'audit.db'}"

[auth.signin]
key_env = "AUTHZ_KEY"
store = "{tmp_path / 'authz.db'}"
access_token_ttl_secs = {access_ttl}
allow_http_loopback_client_metadata = {str(cimd).lower()}
upstream = {{ issuer = "{provider.issuer}", client_id = "codemode", client_secret_env = "UPSTREAM_SECRET", scopes = ["openid"] }}
scopes = [
  {{ name = "idp:read", upstream = ["profile"], description = "read your profile" }},
  {{ name = "idp:write", upstream = ["email"], description = "send the provider writes (and see your e-mail)" }},
  {{ name = "echo:read", description = "read the echo service" }},
]
"""


def apis(provider: Provider, httpbin: str, tmp_path: Path) -> str:
    spec = tmp_path / "idp.json"
    spec.write_text(json.dumps(IDP_SPEC))
    return f"""
[[api]]
name = "idp"
spec = "{spec}"
base_url = "{provider.issuer}"
allow_writes = true
auth = {{ type = "signin" }}

[[api]]
name = "echo"
spec = "{HTTPBIN_SPEC}"
base_url = "{httpbin}"
auth = {{ type = "signin" }}
"""


def env() -> dict:
    return {"AUTHZ_KEY": secrets.token_hex(32), "UPSTREAM_SECRET": CLIENT_SECRET}


@contextlib.contextmanager
def server_on(port: int, tmp_path: Path, auth: str, api_text: str, extra_env: dict | None = None):
    """codemode on a fixed port (the provider knows its callback URL)."""
    import test_http_helpers as h
    real = h.free_port
    h.free_port = lambda: port
    try:
        with codemode_http(tmp_path, auth=auth, apis=api_text, env={**env(), **(extra_env or {})}) as srv:
            yield srv
    finally:
        h.free_port = real


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def consent_page(ua: httpx.Client, srv, params: dict) -> httpx.Response:
    return ua.get(srv.base + "/oauth/authorize", params=params)


def finish_signin(ua: httpx.Client, consent: httpx.Response, pick: list[str], redirect_uri: str, login="alice") -> dict:
    """Ticks `pick` on codemode's consent page, signs in at the provider
    (its login and consent forms), and returns the query codemode sent back
    to the client's redirect URI."""
    assert consent.status_code == 200, consent.text
    assert consent.headers["x-frame-options"] == "DENY"
    consent_id = re.search(r'name=consent value="([^"]+)"', consent.text).group(1)
    form = [("consent", consent_id), ("decision", "allow")] + [("scope", s) for s in pick]
    r = ua.post(str(consent.url.join("/oauth/consent")), content=urlencode(form),
                headers={"Content-Type": "application/x-www-form-urlencoded"})
    url = str(r.url)
    for _ in range(20):
        if r.is_redirect:
            url = urljoin(url, r.headers["location"])
            if url.startswith(redirect_uri):
                return {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}
            r = ua.get(url)
            continue
        assert r.status_code == 200, f"{url}: {r.status_code} {r.text[:500]}"
        action = urljoin(url, re.search(r'<form[^>]*action="([^"]+)"', r.text).group(1))
        if 'name="login"' in r.text:
            r = ua.post(action, data={"prompt": "login", "login": login, "password": "any"})
        else:
            r = ua.post(action, data={"prompt": "consent"})
        url = action
    raise AssertionError("the sign-in did not come back to the client")


def register(srv, redirect_uri: str) -> str:
    r = httpx.post(srv.base + "/oauth/register", json={
        "client_name": "pytest <b>client</b>", "redirect_uris": [redirect_uri], "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"]})
    assert r.status_code == 201, r.text
    return r.json()["client_id"]


def authorize_params(client_id, redirect_uri, challenge, srv, **extra) -> dict:
    p = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "state": "st-" + secrets.token_hex(4),
         "code_challenge": challenge, "code_challenge_method": "S256", "resource": srv.url}
    p.update(extra)
    return {k: v for k, v in p.items() if v is not None}


def token_request(srv, **form) -> httpx.Response:
    return httpx.post(srv.base + "/oauth/token", data=form)


def execute(code: str) -> dict:
    return {"code": code}


async def mcp_execute(srv, token: str, code: str) -> str:
    async with http_session(srv.url, token) as s:
        r = await s.call_tool("execute", execute(code))
        return text_of(r)


def mcp_status(srv, token: str | None) -> httpx.Response:
    h = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    if token:
        h["Authorization"] = f"Bearer {token}"
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
    return httpx.post(srv.url, json=init, headers=h)


async def test_signin_with_downscoping_end_to_end(tmp_path, provider, ports, httpbin_peer):
    auth = signin_config(provider, tmp_path, access_ttl=600)
    with server_on(ports["a"], tmp_path, auth, apis(provider, httpbin_peer, tmp_path)) as srv:
        # Discovery: a 401 that points at the resource metadata, which names
        # codemode as the authorization server, whose RFC 8414 metadata follows.
        r = mcp_status(srv, None)
        assert r.status_code == 401
        assert f'resource_metadata="{srv.base}/.well-known/oauth-protected-resource/mcp"' in r.headers["www-authenticate"]
        prm = httpx.get(srv.base + "/.well-known/oauth-protected-resource/mcp").json()
        assert prm["resource"] == srv.url and prm["authorization_servers"] == [srv.base]
        assert prm["scopes_supported"] == ["idp:read", "idp:write", "echo:read"]
        asm = httpx.get(srv.base + "/.well-known/oauth-authorization-server").json()
        assert asm["issuer"] == srv.base
        assert asm["code_challenge_methods_supported"] == ["S256"]
        assert asm["client_id_metadata_document_supported"] is True
        for k in ("authorization_endpoint", "token_endpoint", "registration_endpoint", "revocation_endpoint"):
            assert asm[k].startswith(srv.base + "/oauth/")

        # Registration (RFC 7591) and consent: the user ticks only two of the three scopes.
        redirect_uri = "http://127.0.0.1:1/cb"
        client_id = register(srv, redirect_uri)
        verifier, challenge = pkce()
        with httpx.Client(follow_redirects=False) as ua:
            params = authorize_params(client_id, redirect_uri, challenge, srv)
            page = consent_page(ua, srv, params)
            assert "pytest &lt;b&gt;client&lt;/b&gt;" in page.text, "the client's name must be escaped"
            back = finish_signin(ua, page, ["idp:read", "echo:read"], redirect_uri)
        assert back["state"] == params["state"] and back["iss"] == srv.base
        tokens = token_request(srv, grant_type="authorization_code", code=back["code"], redirect_uri=redirect_uri,
                               client_id=client_id, code_verifier=verifier, resource=srv.url)
        assert tokens.status_code == 200, tokens.text
        t = tokens.json()
        assert t["token_type"] == "Bearer" and t["scope"] == "echo:read idp:read" and t["expires_in"] == 600
        assert tokens.headers["cache-control"] == "no-store"
        # The provider was asked for the chosen scopes' upstream scopes only.
        issued = [e for e in provider.events() if e["event"] == "access_token.saved"]
        assert issued and issued[-1]["scope"] == "openid profile", issued[-1]

        # Within the granted scopes: the user's own upstream token reaches the
        # provider's userinfo (alice, profile but no e-mail: downscoped upstream too).
        me = json.loads(await mcp_execute(srv, t["access_token"], "(await idp.request({path: '/me'})).data"))
        assert me == {"sub": "alice", "name": "Alice Example"}, me
        # Outside them: a write needs idp:write, which the user did not tick.
        refused = await mcp_execute(srv, t["access_token"], "await idp.request({method: 'POST', path: '/me'})")
        assert "idp:write" in refused and "forbidden" in refused, refused
        # httpbin echoes the header it got: the bearer was sent, and scrubbed on the way back.
        echoed = json.loads(await mcp_execute(srv, t["access_token"], "(await echo.request({path: '/headers'})).data.headers"))
        assert echoed["Authorization"] == "Bearer [REDACTED]", echoed

        # The upstream access token expires: the host refreshes it with the upstream refresh token.
        time.sleep(UPSTREAM_ACCESS_TTL + 1)
        me = json.loads(await mcp_execute(srv, t["access_token"], "(await idp.request({path: '/me'})).data"))
        assert me["sub"] == "alice"
        assert srv.wait_log("upstream access token refreshed"), srv.log()[-3000:]

        # codemode's refresh (rotated), then revocation (RFC 7009): then 401.
        r2 = token_request(srv, grant_type="refresh_token", refresh_token=t["refresh_token"], client_id=client_id)
        assert r2.status_code == 200, r2.text
        t2 = r2.json()
        assert t2["refresh_token"] != t["refresh_token"] and t2["scope"] == "echo:read idp:read"
        assert mcp_status(srv, t2["access_token"]).status_code == 200
        # alice's current upstream tokens, live at the provider before the revocation.
        live = upstream_tokens_of(provider, "alice")
        assert live and all(provider.introspect(v)["active"] for v in live), live
        assert httpx.post(srv.base + "/oauth/revoke", data={"token": t2["refresh_token"], "client_id": client_id}).status_code == 200
        for tok in (t["access_token"], t2["access_token"]):
            r = mcp_status(srv, tok)
            assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"], r.text
        # Revoked at codemode, revoked upstream too (RFC 7009 at the provider's
        # revocation endpoint, from its metadata): the provider says so.
        for v in live:
            assert provider.introspect(v) == {"active": False}, "the upstream token outlived the revocation"
        assert srv.wait_log("upstream tokens revoked at the provider"), srv.log()[-3000:]

        # No token of anyone's in the log or the audit store; the result texts were checked above.
        srv.stop()
        upstream = provider.tokens()
        assert len(upstream) >= 3, "the provider should have logged its tokens (so the check means something)"
        ours = {t["access_token"], t["refresh_token"], t2["access_token"], t2["refresh_token"], back["code"]}
        log = srv.log()
        audit = (tmp_path / "audit.db").read_bytes() + b"".join(
            p.read_bytes() for p in tmp_path.glob("audit.db-*"))
        store = b"".join(p.read_bytes() for p in tmp_path.glob("authz.db*"))
        assert b"/me" in audit, "the audit store should hold the calls"
        for secret in upstream | ours | {CLIENT_SECRET}:
            assert secret not in log, f"a token is in the log: {secret[:6]}…"
            assert secret.encode() not in audit, f"a token is in the audit store: {secret[:6]}…"
        for secret in upstream | ours:
            assert secret.encode() not in store, f"a token is stored in the clear: {secret[:6]}…"


class MetadataDocument:
    """A Client ID Metadata Document served on loopback."""

    def __init__(self, redirect_uri: str):
        port = free_port()
        self.url = f"http://127.0.0.1:{port}/client.json"
        doc = json.dumps({"client_id": self.url, "client_name": "cimd client", "redirect_uris": [redirect_uri]}).encode()

        class H(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(doc)))
                self.end_headers()
                self.wfile.write(doc)

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), H)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


async def test_attacks_are_refused(tmp_path, provider, ports, httpbin_peer):
    access_ttl = 2
    redirect_uri = "http://127.0.0.1:2/cb"
    doc = MetadataDocument(redirect_uri)
    auth = signin_config(provider, tmp_path, access_ttl=access_ttl, cimd=True)
    try:
        with server_on(ports["b"], tmp_path, auth, apis(provider, httpbin_peer, tmp_path)) as srv:
            client_id = doc.url  # a Client ID Metadata Document, no registration

            def sign_in(pick=("idp:read",)):
                verifier, challenge = pkce()
                with httpx.Client(follow_redirects=False) as ua:
                    page = consent_page(ua, srv, authorize_params(client_id, redirect_uri, challenge, srv))
                    assert "cimd client" in page.text
                    back = finish_signin(ua, page, list(pick), redirect_uri)
                return verifier, back["code"]

            def error_redirect(**params):
                r = httpx.get(srv.base + "/oauth/authorize", params=params)
                assert r.status_code in (302, 303, 307), (r.status_code, r.text)
                q = parse_qs(urlparse(r.headers["location"]).query)
                assert r.headers["location"].startswith(redirect_uri)
                return q["error"][0], q["error_description"][0]

            _, challenge = pkce()
            # PKCE missing, or a method other than S256.
            err = error_redirect(**authorize_params(client_id, redirect_uri, None, srv, code_challenge_method=None))
            assert err[0] == "invalid_request" and "PKCE" in err[1], err
            err = error_redirect(**authorize_params(client_id, redirect_uri, challenge, srv, code_challenge_method="plain"))
            assert err[0] == "invalid_request" and "S256" in err[1], err
            # Another audience asked for at authorize and at the token endpoint.
            err = error_redirect(**authorize_params(client_id, redirect_uri, challenge, srv, resource="https://other.example/mcp"))
            assert err[0] == "invalid_target", err
            # A redirect_uri the client did not register: an error page, never a redirect.
            r = httpx.get(srv.base + "/oauth/authorize", params=authorize_params(client_id, "http://127.0.0.1:3/evil", challenge, srv))
            assert r.status_code == 400 and "location" not in r.headers and "not one this client registered" in r.text
            # An unknown client: an error page too.
            r = httpx.get(srv.base + "/oauth/authorize", params=authorize_params("nobody", redirect_uri, challenge, srv))
            assert r.status_code == 400 and "location" not in r.headers
            # Registration refuses what it cannot keep safe.
            r = httpx.post(srv.base + "/oauth/register", json={"redirect_uris": ["http://evil.example/cb"]})
            assert r.status_code == 400 and r.json()["error"] == "invalid_redirect_uri"
            r = httpx.post(srv.base + "/oauth/register", json={"redirect_uris": [redirect_uri], "token_endpoint_auth_method": "client_secret_basic"})
            assert r.status_code == 400 and r.json()["error"] == "invalid_client_metadata"

            # Wrong PKCE verifier: refused, and the code is spent.
            verifier, code = sign_in()
            r = token_request(srv, grant_type="authorization_code", code=code, redirect_uri=redirect_uri,
                              client_id=client_id, code_verifier=pkce()[0])
            assert r.status_code == 400 and r.json()["error"] == "invalid_grant" and "PKCE" in r.json()["error_description"]
            # No verifier at all.
            verifier, code = sign_in()
            r = token_request(srv, grant_type="authorization_code", code=code, redirect_uri=redirect_uri, client_id=client_id)
            assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
            # redirect_uri differing from the authorization request's; then another audience.
            verifier, code = sign_in()
            r = token_request(srv, grant_type="authorization_code", code=code, redirect_uri="http://127.0.0.1:2/other",
                              client_id=client_id, code_verifier=verifier)
            assert r.status_code == 400 and "redirect_uri" in r.json()["error_description"]
            r = token_request(srv, grant_type="authorization_code", code=code, redirect_uri=redirect_uri,
                              client_id=client_id, code_verifier=verifier, resource="https://other.example/mcp")
            assert r.status_code == 400 and r.json()["error"] == "invalid_target"

            # A replayed code: the second exchange fails and what the first gave is revoked.
            verifier, code = sign_in()
            form = dict(grant_type="authorization_code", code=code, redirect_uri=redirect_uri, client_id=client_id, code_verifier=verifier)
            first = token_request(srv, **form)
            assert first.status_code == 200, first.text
            assert mcp_status(srv, first.json()["access_token"]).status_code == 200
            again = token_request(srv, **form)
            assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
            assert mcp_status(srv, first.json()["access_token"]).status_code == 401

            # A reused refresh token revokes the grant (rotation).
            verifier, code = sign_in()
            t = token_request(srv, grant_type="authorization_code", code=code, redirect_uri=redirect_uri,
                              client_id=client_id, code_verifier=verifier).json()
            t2 = token_request(srv, grant_type="refresh_token", refresh_token=t["refresh_token"], client_id=client_id).json()
            reuse = token_request(srv, grant_type="refresh_token", refresh_token=t["refresh_token"], client_id=client_id)
            assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"
            assert mcp_status(srv, t2["access_token"]).status_code == 401
            r = token_request(srv, grant_type="refresh_token", refresh_token=t2["refresh_token"], client_id=client_id)
            assert r.status_code == 400

            # A token for another audience: the provider's own access token (client credentials).
            cc = httpx.post(provider.issuer + "/token", data={"grant_type": "client_credentials"},
                            auth=("robot", "robot-secret-robot-secret"))
            assert cc.status_code == 200, cc.text
            r = mcp_status(srv, cc.json()["access_token"])
            assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]

            # An expired token: 401 saying so (the lifetime is the config's).
            verifier, code = sign_in()
            t = token_request(srv, grant_type="authorization_code", code=code, redirect_uri=redirect_uri,
                              client_id=client_id, code_verifier=verifier).json()
            assert t["expires_in"] == access_ttl
            assert mcp_status(srv, t["access_token"]).status_code == 200
            time.sleep(access_ttl + 1)
            r = mcp_status(srv, t["access_token"])
            assert r.status_code == 401 and "expired" in r.headers["www-authenticate"], r.headers
            # …and its refresh token still gives a fresh one.
            t3 = token_request(srv, grant_type="refresh_token", refresh_token=t["refresh_token"], client_id=client_id)
            assert t3.status_code == 200 and mcp_status(srv, t3.json()["access_token"]).status_code == 200

            # A static-token-shaped guess or garbage is refused the same way.
            assert mcp_status(srv, "cm_at_" + "A" * 43).status_code == 401
    finally:
        doc.close()
