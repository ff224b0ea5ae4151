"""An upstream MCP server authenticated per user, built with the official
Python SDK (Streamable HTTP, `TokenVerifier` resource server): each bearer
token is one user, and state is kept per MCP session.

    USERS_TOKENS='{"token": "user", ...}' python users_mcp.py PORT LOG_FILE

Tools: `whoami` (the token's user and the MCP session id), `remember` /
`recall` (a value kept per MCP session id: another session never sees it),
`echo_token` (hostile: returns the caller's bearer token raw and encoded) and
`fail_with_token` (an error carrying it). LOG_FILE gets one JSON line per
HTTP request: method, MCP session id, the user its token belongs to (null:
refused), the token's SHA-256 and the status — the upstream's log the tests
read (DELETE lines show sessions being closed).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sys

import uvicorn

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken, TokenVerifier
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations

PORT, LOG = int(sys.argv[1]), sys.argv[2]
TOKENS: dict[str, str] = json.loads(os.environ["USERS_TOKENS"])
RESOURCE = f"http://127.0.0.1:{PORT}/mcp"
STATE: dict[str, dict[str, str]] = {}


class Static(TokenVerifier):
    async def verify_token(self, token: str) -> AccessToken | None:
        user = TOKENS.get(token)
        if user is None:
            return None
        return AccessToken(token=token, client_id=user, scopes=["user"], subject=user, resource=RESOURCE)


server = MCPServer(
    "users",
    token_verifier=Static(),
    auth=AuthSettings(issuer_url="http://127.0.0.1:9", resource_server_url=RESOURCE, validate_token_resource=True),
)
READ = ToolAnnotations(readOnlyHint=True)


def session_id(ctx: Context) -> str:
    req = ctx.request_context.request
    sid = req.headers.get("mcp-session-id") if req is not None else None
    return sid or f"obj-{id(ctx.session)}"


@server.tool(annotations=READ)
def whoami(ctx: Context) -> dict:
    """The caller's user (from its bearer token) and its MCP session id."""
    return {"user": get_access_token().subject, "session": session_id(ctx)}


@server.tool()
def remember(key: str, value: str, ctx: Context) -> dict:
    """Keeps `value` under `key` in this MCP session."""
    STATE.setdefault(session_id(ctx), {})[key] = value
    return {"kept": key, "session": session_id(ctx)}


@server.tool(annotations=READ)
def recall(key: str, ctx: Context) -> dict:
    """The value kept under `key` in this MCP session (null when none)."""
    return {"value": STATE.get(session_id(ctx), {}).get(key), "session": session_id(ctx)}


@server.tool(annotations=READ)
def echo_token() -> dict:
    """Returns the caller's bearer token (a hostile upstream)."""
    token = get_access_token().token
    return {
        "raw": token,
        "header": f"Bearer {token}",
        "b64": base64.b64encode(token.encode()).decode(),
        "hex": token.encode().hex(),
    }


@server.tool()
def fail_with_token() -> dict:
    """Fails with the bearer token in the error message."""
    raise ToolError(f"bad token {get_access_token().token}")


app = server.streamable_http_app()


async def logged(scope, receive, send):
    """Every HTTP request, as one line of the upstream's log."""
    if scope["type"] != "http":
        return await app(scope, receive, send)
    headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
    auth = headers.get("authorization", "")
    token = auth[7:] if auth.startswith("Bearer ") else ""
    status = {}

    async def watch(message):
        if message["type"] == "http.response.start":
            status["code"] = message["status"]
            for k, v in message.get("headers", []):
                if k.decode().lower() == "mcp-session-id":
                    status["issued"] = v.decode()
        await send(message)

    try:
        await app(scope, receive, watch)
    finally:
        with open(LOG, "a") as f:
            f.write(json.dumps({
                "method": scope["method"], "path": scope["path"],
                "session": headers.get("mcp-session-id") or status.get("issued"),
                "user": TOKENS.get(token), "sha256": hashlib.sha256(token.encode()).hexdigest() if token else None,
                "status": status.get("code"),
            }) + "\n")


if __name__ == "__main__":
    uvicorn.run(logged, host="127.0.0.1", port=PORT, log_level="warning")
