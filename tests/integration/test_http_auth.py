"""Inbound auth over HTTP with real RS256 JWTs from an issuer on loopback
(RFC 8414 metadata + JWKS), and static bearer tokens: every failure gets
its status and challenge; scopes narrow what each principal may do; tool
calls are attributed to their principal in the logs."""

from __future__ import annotations

import hashlib
import json
import time

import pytest

from test_http_helpers import (
    INIT,
    Issuer,
    codemode_http,
    get,
    http_session,
    jsonrpc_of,
    oauth_config,
    post_mcp,
    text_of,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def issuer():
    i = Issuer()
    i.new_key("k1")
    yield i
    i.close()


def challenge(headers: dict) -> str:
    return headers.get("www-authenticate", "")


def auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


async def test_jwt_failures_get_the_right_status_and_challenge(tmp_path, issuer):
    with codemode_http(tmp_path, auth=oauth_config(issuer, jwks_min_refresh_secs=1)) as srv:
        resource = srv.url
        metadata_url = srv.base + "/.well-known/oauth-protected-resource/mcp"

        # Protected Resource Metadata (RFC 9728), both locations.
        for path in ["/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"]:
            status, _, body = get(srv.base + path)
            assert status == 200
            m = json.loads(body)
            assert m["resource"] == resource
            assert m["authorization_servers"] == [issuer.url]
            assert m["scopes_supported"] == ["bookshelf:read", "bookshelf:write"]

        # No token: 401, challenge pointing at the metadata, no error code.
        status, headers, _ = post_mcp(srv, INIT)
        assert status == 401
        assert challenge(headers) == (
            f'Bearer realm="codemode", scope="bookshelf:read bookshelf:write", resource_metadata="{metadata_url}"'
        )

        other = Issuer()
        other.new_key("k1")
        now = int(time.time())
        cases = {
            "malformed": ("eyJhbGciOi.not.base64!", "opaque access tokens are not accepted"),
            "opaque": ("3f2a9c0d8e7b6a5f4e3d2c1b0a998877", "opaque access tokens are not accepted"),
            "bad signature": (issuer.token(resource, key=other.keys["k1"], scope="bookshelf:read"), "signature does not verify"),
            "wrong issuer": (issuer.token(resource, iss="https://evil.example", scope="bookshelf:read"), "issued by `https://evil.example`"),
            "wrong audience": (issuer.token("https://other.example/mcp", scope="bookshelf:read"), "audience"),
            "expired": (issuer.token(resource, exp=now - 120, scope="bookshelf:read"), "expired"),
            "not yet valid": (issuer.token(resource, nbf=now + 600, scope="bookshelf:read"), "nbf"),
            "no expiry": (issuer.token(resource, exp=None, scope="bookshelf:read"), "no expiry"),
        }
        other.close()
        for name, (token, reason) in cases.items():
            status, headers, body = post_mcp(srv, INIT, auth(token))
            assert status == 401, name
            c = challenge(headers)
            assert c.startswith('Bearer realm="codemode", error="invalid_token", error_description="'), (name, c)
            assert reason in c and f'resource_metadata="{metadata_url}"' in c, (name, c)
            assert json.loads(body)["error"] == "invalid_token"

        # A token with no scope for any API here: 403 insufficient_scope.
        status, headers, _ = post_mcp(srv, INIT, auth(issuer.token(resource, scope="openid profile")))
        assert status == 403
        c = challenge(headers)
        assert 'error="insufficient_scope"' in c and 'scope="bookshelf:read bookshelf:write"' in c, c

        # A good one.
        status, _, body = post_mcp(srv, INIT, auth(issuer.token(resource, scope="bookshelf:read")))
        assert status == 200 and jsonrpc_of(body)["result"]["serverInfo"]["name"] == "codemode"
        assert "credential refused" in srv.log() and "alice" not in srv.log().split("credential refused")[0]


async def test_unknown_kid_then_rotated_keys(tmp_path, issuer):
    with codemode_http(tmp_path, auth=oauth_config(issuer, jwks_min_refresh_secs=1)) as srv:
        resource = srv.url
        assert post_mcp(srv, INIT, auth(issuer.token(resource, scope="bookshelf:read")))[0] == 200
        time.sleep(1.1)
        issuer.new_key("k2", publish=False)  # signed with a key not yet published
        t2 = issuer.token(resource, kid="k2", scope="bookshelf:read")
        hits = issuer.jwks_hits
        for _ in range(10):
            status, headers, _ = post_mcp(srv, INIT, auth(t2))
            assert status == 401 and "`k2` is not among the issuer" in challenge(headers)
        assert issuer.jwks_hits - hits == 1, "an unknown kid refreshes the key set once, not per request"
        issuer.published = ["k2"]  # rotation: k1 retired, k2 published
        time.sleep(1.1)
        assert post_mcp(srv, INIT, auth(t2))[0] == 200
        assert issuer.jwks_hits - hits == 2
        status, headers, _ = post_mcp(srv, INIT, auth(issuer.token(resource, kid="k1", scope="bookshelf:read")))
        assert status == 401, "the retired key no longer signs"


async def test_scopes_narrow_what_a_principal_may_do(tmp_path, issuer):
    with codemode_http(tmp_path, auth=oauth_config(issuer)) as srv:
        reader = issuer.token(srv.url, sub="reader-bot", scope="bookshelf:read")
        writer = issuer.token(srv.url, sub="writer-bot", scope="bookshelf:read bookshelf:write")
        post = 'async () => (await bookshelf.request({method: "POST", path: "/books", body: {title: "Dune", author_id: "9b2e4f60-1c1d-4e2f-a3b4-c5d6e7f80912"}})).status'
        get_books = 'async () => (await bookshelf.request("GET /books")).status'
        async with http_session(srv.url, reader) as s:
            assert not (await s.call_tool("search", {"code": "async () => Object.keys(spec.paths).length"})).is_error
            r = await s.call_tool("execute", {"code": get_books})
            assert not r.is_error and text_of(r) == "200", text_of(r)
            r = await s.call_tool("execute", {"code": post})
            assert r.is_error, text_of(r)
            assert "bookshelf:write" in text_of(r), text_of(r)
        async with http_session(srv.url, writer) as s:
            r = await s.call_tool("execute", {"code": post})
            assert not r.is_error, text_of(r)
        # Every tool call is attributed to its principal.
        log = srv.log()
        assert "principal=reader-bot tool=execute" in log and "principal=writer-bot tool=execute" in log, log


async def test_static_tokens_by_hash_and_from_the_environment(tmp_path):
    secret = "s3cr3t-token-for-ci-0123456789"
    digest = hashlib.sha256(secret.encode()).hexdigest()
    config = f"""
[[auth.tokens]]
name = "ci"
sha256 = "{digest}"
scopes = ["bookshelf:read"]

[[auth.tokens]]
name = "ops"
token_env = "OPS_TOKEN"
scopes = ["*"]
"""
    with codemode_http(tmp_path, auth=config, env={"OPS_TOKEN": "ops-token-from-env-0123456789"}) as srv:
        status, headers, _ = post_mcp(srv, INIT)
        assert status == 401 and challenge(headers) == 'Bearer realm="codemode"'
        status, headers, _ = post_mcp(srv, INIT, auth("not-a-token"))
        assert status == 401 and 'error="invalid_token"' in challenge(headers)
        async with http_session(srv.url, secret) as s:
            r = await s.call_tool("execute", {"code": 'async () => (await bookshelf.request("GET /books")).status'})
            assert text_of(r) == "200"
        async with http_session(srv.url, "ops-token-from-env-0123456789") as s:
            r = await s.call_tool("search", {"code": "async () => 1"})
            assert text_of(r) == "1"
        log = srv.log()
        assert "principal=ci tool=execute" in log and "principal=ops tool=search" in log
        assert secret not in log and "ops-token-from-env" not in log


async def test_a_literal_token_in_the_config_is_refused(tmp_path):
    import subprocess

    from conftest import BINARY

    from test_http_helpers import BOOKSHELF_API, write_http_config

    cfg = write_http_config(tmp_path, 0, auth='[[auth.tokens]]\nname = "x"\ntoken = "abc"\nscopes = ["*"]\n', apis=BOOKSHELF_API)
    p = subprocess.run([str(BINARY), "serve", "--config", str(cfg)], capture_output=True, text=True, timeout=30)
    assert p.returncode == 2
    assert "auth.tokens[0].token: a literal token in the config is refused" in p.stderr
