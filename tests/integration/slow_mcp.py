"""An upstream MCP server (stdio) built with the official Python SDK's
`MCPServer` whose one tool takes its time and writes down what happened to
each call — `start`, `done` or `cancelled` — in the file named on the command
line, so a test can see whether a cancellation reached the upstream.

    python slow_mcp.py LOG
"""

from __future__ import annotations

import sys

import anyio
from mcp.server.mcpserver import MCPServer

LOG = sys.argv[1]
server = MCPServer("slow")


def note(event: str, tag: str) -> None:
    with open(LOG, "a") as f:
        f.write(f"{event} {tag}\n")


@server.tool()
async def sleep(seconds: float, tag: str) -> dict:
    """Sleeps `seconds`, then answers; records start, done or cancelled under `tag`."""
    note("start", tag)
    try:
        await anyio.sleep(seconds)
    except anyio.get_cancelled_exc_class():
        note("cancelled", tag)
        raise
    note("done", tag)
    return {"slept": seconds, "tag": tag}


if __name__ == "__main__":
    server.run("stdio")
