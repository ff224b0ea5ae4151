"""An upstream MCP server (stdio) built with the official Python SDK's
`MCPServer`: its one tool answers with the `_meta` of the `tools/call` it
received, so a test can see whether the W3C trace context (`traceparent`,
SEP-414) reached the upstream server.

    python trace_mcp.py
"""

from __future__ import annotations

from mcp.server.mcpserver import Context, MCPServer

server = MCPServer("trace-echo")


@server.tool()
def received_meta(ctx: Context) -> dict:
    """The `_meta` of this call, as this server received it."""
    meta = ctx.request_context.meta
    if meta is None:
        return {}
    if hasattr(meta, "model_dump"):
        return meta.model_dump(exclude_none=True)
    return dict(meta)


if __name__ == "__main__":
    server.run("stdio")
